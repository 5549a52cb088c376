//! The `decoder depth=8 width=512 heads=16 mlp-ratio=4.0 norm-pix-loss=#true` node: MAE's
//! decoder (official `decoder_depth`, `decoder_embed_dim`, `decoder_num_heads`) and its pixel
//! target (`--norm_pix_loss`: each patch's pixels normalised to zero mean, unit variance).

use crate::config::Experiment;
use crate::reader::{Bound, Ctx, Node, Shape};

/// Shape of the `decoder` node.
pub(crate) const SHAPE: Shape = Shape::props(
    &["depth", "width", "heads", "mlp-ratio", "norm-pix-loss"],
    "decoder depth=8 width=512 heads=16 mlp-ratio=4.0 norm-pix-loss=#true",
);

/// Reads the decoder node into `exp.decoder`.
pub(crate) fn read(cx: &mut Ctx, n: &Node, exp: &mut Experiment) {
    let d = &mut exp.decoder;
    if let Some(v) = n.prop("depth").and_then(|e| cx.usize_min(e, &n.sub("depth"), 1)) {
        d.depth = v;
    }
    if let Some(v) = n.prop("width").and_then(|e| cx.usize_min(e, &n.sub("width"), 1)) {
        d.embed_dim = v;
    }
    if let Some(v) = n.prop("heads").and_then(|e| cx.usize_min(e, &n.sub("heads"), 1)) {
        d.num_heads = v;
    }
    if let Some(v) = n.prop("mlp-ratio").and_then(|e| cx.f64_in(e, &n.sub("mlp-ratio"), Bound::Positive)) {
        d.mlp_ratio = v;
    }
    if let Some(v) = n.prop("norm-pix-loss").and_then(|e| cx.value::<bool>(e, &n.sub("norm-pix-loss"))) {
        d.norm_pix_loss = v.value;
    }
}
