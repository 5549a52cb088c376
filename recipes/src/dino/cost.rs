//! DINO's cost model for `ijepa estimate` ([`ijepa_engine::estimate`]), as the official
//! `train_one_epoch` runs a step: the student (backbone and head) forward and backward over
//! the two global crops and every local crop, the teacher forward alone over the two global
//! crops. Each crop is a sequence of its patches plus the class token; the head runs on the
//! class token's output (its MLP, then the prototypes). Softmax, centring, the
//! weight normalisation of the prototypes and the EMA are element-wise and not counted.

use ijepa_dsl::config::Experiment;
use ijepa_engine::error::Result;
use ijepa_engine::estimate::{patch_embed_flops, Stack, StepCost};

/// The (in, out) widths of the head's MLP layers (official `DINOHead`: one layer into the
/// bottleneck, or in -> hidden, hidden -> hidden x (nlayers - 2), hidden -> bottleneck).
fn head_layers(d: f64, exp: &Experiment) -> Vec<(f64, f64)> {
    let c = &exp.dino;
    let (h, b) = (c.hidden_dim as f64, c.bottleneck_dim as f64);
    match c.head_layers {
        0 | 1 => vec![(d, b)],
        n => std::iter::once((d, h)).chain((0..n - 2).map(|_| (h, h))).chain(std::iter::once((h, b))).collect(),
    }
}

/// The step's cost for `exp`.
///
/// # Errors
/// None today (the signature is the registry's).
pub fn cost(exp: &Experiment) -> Result<StepCost> {
    let e = &exp.encoder;
    let c = &exp.dino;
    let (d, p) = (e.embed_dim as f64, e.patch_size as f64);
    let patches = |side: usize| {
        let g = side / e.patch_size.max(1);
        (g * g) as f64
    };
    let (global, local) = (patches(exp.data.crop_size), patches(c.local_size));
    let locals = c.local_crops as f64;
    let enc = Stack::new(e.embed_dim, e.depth, e.num_heads, e.mlp_ratio);
    // patch embedding, class token, the learnt position table (the global crop's grid + the
    // class token; the local crops interpolate it), blocks + norm
    let backbone_params = 3.0 * p * p * d + d + d + (global + 1.0) * d + enc.params();
    let layers = head_layers(d, exp);
    let (b, out) = (c.bottleneck_dim as f64, c.out_dim as f64);
    let mlp_params: f64 = layers.iter().map(|(a, z)| a * z + z).sum();
    // the prototypes: weight_v trained, weight_g [out, 1] trained unless fixed at 1
    let gain = out;
    let head_params = mlp_params + b * out + if c.norm_last_layer { 0.0 } else { gain };
    let backbone = |n: f64| patch_embed_flops(n, p, d) + enc.flops(n + 1.0);
    let head: f64 = 2.0 * (layers.iter().map(|(a, z)| a * z).sum::<f64>() + b * out);
    let student_fwd = 2.0 * (backbone(global) + head) + locals * (backbone(local) + head);
    let teacher_fwd = 2.0 * (backbone(global) + head);
    // per crop: the patch embedding's output and the blocks; the head's hidden outputs (before
    // and after the GELU), the normalised bottleneck, the logits and their log-softmax
    let hidden: f64 = layers.iter().take(layers.len().saturating_sub(1)).map(|(_, z)| 2.0 * z).sum();
    let crop = |n: f64| n * d + enc.activations(n + 1.0) + hidden + 2.0 * b + 2.0 * out;
    Ok(StepCost {
        trainable_params: backbone_params + head_params,
        // the teacher (backbone and head, its gain included), the student's fixed gain, the centre
        frozen_params: backbone_params + mlp_params + b * out + gain + if c.norm_last_layer { gain } else { 0.0 } + out,
        frozen_what: format!("the EMA teacher{}, and the centre", if c.norm_last_layer { ", the student's fixed gain" } else { "" }),
        // (the patch embedding's backward is its weights' gradient alone: the crops need none)
        flops_per_image: teacher_fwd + 3.0 * student_fwd - (2.0 * patch_embed_flops(global, p, d) + locals * patch_embed_flops(local, p, d)),
        activation_elems_per_image: 2.0 * crop(global) + locals * crop(local),
        tokens: format!(
            "student on 2 global crops of {global:.0} patches + class token and {locals:.0} local of {local:.0}, teacher on the 2 global; head to {out:.0} prototypes"
        ),
    })
}
