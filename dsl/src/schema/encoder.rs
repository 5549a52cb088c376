//! The `encoder "PRESET" patch=16 width= depth= heads= mlp-ratio= rescale-init=` node: the
//! context/target ViT (official `model_name` + `patch_size`; presets from
//! `vision_transformer.py`). Properties override the preset; without a preset `width`,
//! `depth` and `heads` are required.

use crate::config::{EncoderConfig, Experiment, VIT_PRESETS};
use crate::diagnostics::DslError;
use crate::reader::{choices_help, Bound, Ctx, Node, Shape};

/// Patch size when `patch=` is not written.
pub const DEFAULT_PATCH: usize = 16;

/// Shape of the `encoder` node.
pub(crate) const SHAPE: Shape = Shape {
    args: &["PRESET"],
    required: 0,
    props: &["patch", "width", "depth", "heads", "mlp-ratio", "rescale-init"],
    children: false,
    usage: "encoder \"vit-base\" patch=16  or  encoder width=96 depth=4 heads=3 patch=4",
};

/// Reads the encoder node into `exp.encoder`. A preset sets the width, depth, heads and
/// mlp-ratio; properties override it. Without a preset, a standalone file must give width,
/// depth and heads, while a layer on a base (`extends`, a sweep point) changes only what it
/// writes. An unwritten `patch=` is 16 in a standalone file and the base's in a layer.
pub(crate) fn read(cx: &mut Ctx, n: &Node, exp: &mut Experiment) {
    let layered = cx.layered;
    let current = exp.encoder.clone();
    let default_patch = if layered { current.patch_size } else { DEFAULT_PATCH };
    let patch =
        n.prop("patch").and_then(|e| cx.usize_min(e, &n.sub("patch"), 1)).unwrap_or(default_patch);
    let mut enc = match n.arg(0) {
        Some(e) => match preset(cx, n, e, patch) {
            Some(enc) => EncoderConfig {
                rescale_init: if layered { current.rescale_init } else { enc.rescale_init },
                ..enc
            },
            None => {
                // Reported; still type-check the properties, but cross-checks skip the encoder.
                cx.poison(&n.path);
                EncoderConfig { patch_size: patch, ..current }
            }
        },
        None if layered => EncoderConfig { patch_size: patch, ..current },
        None => EncoderConfig {
            preset: None,
            patch_size: patch,
            embed_dim: 0,
            depth: 0,
            num_heads: 0,
            mlp_ratio: 4.0,
            rescale_init: false,
        },
    };
    let needs_shape = n.arg(0).is_none() && !layered;
    for (key, slot) in
        [("width", &mut enc.embed_dim), ("depth", &mut enc.depth), ("heads", &mut enc.num_heads)]
    {
        let path = n.sub(key);
        match n.prop(key) {
            Some(e) => {
                if let Some(v) = cx.usize_min(e, &path, 1) {
                    *slot = v;
                }
            }
            None if needs_shape => {
                cx.poison(&path);
                cx.err(DslError::MissingProperty {
                    node: "encoder".into(),
                    name: key.into(),
                    span: cx.span_or(&[&n.path]),
                    help: format!(
                        "without a preset name the encoder needs width=, depth= and heads=; or \
                         start from a preset: {}",
                        VIT_PRESETS
                            .iter()
                            .map(|p| format!("`{}`", p.0))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            None => {}
        }
    }
    if let Some(v) =
        n.prop("mlp-ratio").and_then(|e| cx.f64_in(e, &n.sub("mlp-ratio"), Bound::Positive))
    {
        enc.mlp_ratio = v;
    }
    if let Some(v) =
        n.prop("rescale-init").and_then(|e| cx.value::<bool>(e, &n.sub("rescale-init")))
    {
        enc.rescale_init = v.value;
    }
    exp.encoder = enc;
}

fn preset(cx: &mut Ctx, n: &Node, e: &kdl::KdlEntry, patch: usize) -> Option<EncoderConfig> {
    let path = n.sub("preset");
    let name = cx.value::<String>(e, &path)?;
    if let Some(enc) = EncoderConfig::preset(&name.value, patch) {
        return Some(enc);
    }
    let names: Vec<&str> = VIT_PRESETS.iter().map(|p| p.0).collect();
    cx.poison(&path);
    cx.err(DslError::UnknownValue {
        what: "encoder preset".into(),
        found: name.value.clone(),
        span: name.span,
        help: format!(
            "{}; or give the shape yourself: `encoder width=192 depth=12 heads=3 patch=16`",
            choices_help(&name.value, &names)
        ),
    });
    None
}
