//! The `predictor depth=12 width=384 heads=16 mlp-ratio=4.0` node: the narrow ViT that predicts
//! target tokens (official `pred_depth`, `pred_emb_dim`; heads default to the encoder's).

use crate::config::Experiment;
use crate::reader::{Bound, Ctx, Node, Shape};

/// Shape of the `predictor` node.
pub(crate) const SHAPE: Shape = Shape::props(
    &["depth", "width", "heads", "mlp-ratio"],
    "predictor depth=12 width=384 heads=16 mlp-ratio=4.0",
);

/// Reads the predictor node into `exp.predictor`.
pub(crate) fn read(cx: &mut Ctx, n: &Node, exp: &mut Experiment) {
    let p = &mut exp.predictor;
    if let Some(v) = n.prop("depth").and_then(|e| cx.usize_min(e, &n.sub("depth"), 1)) {
        p.depth = v;
    }
    if let Some(v) = n.prop("width").and_then(|e| cx.usize_min(e, &n.sub("width"), 1)) {
        p.embed_dim = v;
    }
    if let Some(v) = n.prop("heads").and_then(|e| cx.usize_min(e, &n.sub("heads"), 1)) {
        p.num_heads = Some(v);
    }
    if let Some(v) =
        n.prop("mlp-ratio").and_then(|e| cx.f64_in(e, &n.sub("mlp-ratio"), Bound::Positive))
    {
        p.mlp_ratio = v;
    }
}
