//! I-JEPA's cost model for `ijepa estimate` ([`ijepa_engine::estimate`]): the target encoder's
//! forward over every patch, the context encoder's forward and backward over the context, the
//! predictor's forward and backward over context + target tokens once per (context, target)
//! pair (its `predictor_embed` once per context), the patch embedding once with its weights'
//! gradient, as the official `train_step` runs them. The token counts are the means of the
//! experiment's own mask sampler (multi-block: after the official truncation to the batch's
//! shortest mask).

use super::mask::{statistics, MaskSampler};
use ijepa_dsl::config::{Experiment, TargetKind, TargetMasking};
use ijepa_engine::error::Result;
use ijepa_engine::estimate::{patch_embed_flops, Stack, StepCost};

/// Batches sampled for the mean token counts at most (fewer when they would exceed
/// [`MAX_IMAGES`]): 100 moved the quickstart's mean context by half a token from one seed to
/// the next (its FLOPs by 2-3%).
const BATCHES: usize = 1000;

/// The most images whose masks the estimate samples (a batch of a million took two minutes).
const MAX_IMAGES: usize = 200_000;

/// The step's cost for `exp`.
///
/// # Errors
/// The mask sampler's, for a configuration it cannot satisfy.
pub fn cost(exp: &Experiment) -> Result<StepCost> {
    let e = &exp.encoder;
    let (d, p) = (e.embed_dim as f64, e.patch_size as f64);
    let grid = exp.data.crop_size / e.patch_size.max(1);
    let n = (grid * grid) as f64;
    let enc = Stack::new(e.embed_dim, e.depth, e.num_heads, e.mlp_ratio);
    let pc = &exp.predictor;
    let pred = Stack::new(pc.embed_dim, pc.depth, pc.num_heads.unwrap_or(e.num_heads), pc.mlp_ratio);
    let dp = pred.width;
    // patch embedding (conv as a matrix product) + blocks + norm; the sin-cos position tables
    // are fixed buffers
    let patch_params = 3.0 * p * p * d + d;
    let encoder_params = patch_params + enc.params();
    // predictor_embed, mask_token, blocks + predictor_norm, predictor_proj
    let out = match exp.target.kind {
        TargetKind::Representation => d,
        TargetKind::Pixels => 3.0 * p * p,
    };
    let predictor_params = d * dp + dp + dp + pred.params() + dp * out + out;
    let sampler = MaskSampler::new(&exp.mask, exp.data.crop_size, e.patch_size)?.quiet();
    // the masks training draws: each step's for the global batch, truncated over it
    let global = exp.global_batch().max(1);
    let st = statistics(&sampler, exp.seed, (MAX_IMAGES / global).clamp(1, BATCHES), global)?;
    let (nc, nt) = (st.context_len.mean, st.target_len.mean);
    let (contexts, targets) = (sampler.n_context() as f64, sampler.n_targets() as f64);
    let embed = patch_embed_flops(n, p, d);
    // the target encoder: none for pixel targets; once per target block on its patches when
    // masked at the input; once over every patch otherwise
    let target_fwd = match (exp.target.kind, exp.target.masking) {
        (TargetKind::Pixels, _) => 0.0,
        (_, TargetMasking::Input) => targets * (embed + enc.flops(nt)),
        (_, TargetMasking::Output) => embed + enc.flops(n),
    };
    // the official encoder embeds every patch once, then keeps each context's (`apply_masks`);
    // the patch embedding's backward is its weights' gradient alone (the images need none)
    let context_fwd = contexts * enc.flops(nc);
    // `predictor_embed` runs once per context, then its rows are repeated for each target
    let predictor_fwd = contexts * 2.0 * nc * d * dp + contexts * targets * (pred.flops(nc + nt) + 2.0 * nt * dp * out);
    let activations = n * d + contexts * enc.activations(nc) + contexts * targets * pred.activations(nc + nt);
    Ok(StepCost {
        trainable_params: encoder_params + predictor_params,
        frozen_params: if exp.target.kind == TargetKind::Pixels { 0.0 } else { encoder_params },
        flops_per_image: target_fwd + 2.0 * embed + 3.0 * (context_fwd + predictor_fwd),
        activation_elems_per_image: activations,
        tokens: format!(
            "{n:.0} patches; {}, context encoder on {nc:.1} (x{contexts:.0}), predictor on {nc:.1} + {nt:.1} (x{:.0})",
            match (exp.target.kind, exp.target.masking) {
                (TargetKind::Pixels, _) => "no target encoder (pixel targets)".to_string(),
                (_, TargetMasking::Input) => format!("target encoder on each target block's {nt:.1} (x{targets:.0})"),
                (_, TargetMasking::Output) => "target encoder on all".to_string(),
            },
            contexts * targets
        ),
    })
}
