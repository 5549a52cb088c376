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

/// The images whose masks the estimate samples (a batch of a million took two minutes),
/// beyond [`MIN_BATCHES`].
const MAX_IMAGES: usize = 200_000;

/// Batches sampled at least, while they hold at most [`MAX_SAMPLED`] images: the truncation
/// to a batch's shortest mask varies from batch to batch (at a global batch of 65,536, a
/// context of 42-85 patches, std 12.5), and the 3 batches of [`MAX_IMAGES`] there put its mean
/// at 61.3 where 100 batches give 53.2.
const MIN_BATCHES: usize = 8;

/// The most images [`MIN_BATCHES`] samples (~15 s).
const MAX_SAMPLED: usize = 1_000_000;

/// Batches of `global` images the estimate samples the masks of.
fn batches_for(global: usize) -> usize {
    let least = MIN_BATCHES.min((MAX_SAMPLED / global.max(1)).max(1));
    (MAX_IMAGES / global.max(1)).clamp(least, BATCHES)
}

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
    let st = statistics(&sampler, exp.seed, batches_for(global), global)?;
    let (nc, nt) = (st.context_len.mean, st.target_len.mean);
    let (contexts, targets) = (sampler.n_context() as f64, sampler.n_targets() as f64);
    let embed = patch_embed_flops(n, p, d);
    // the target encoder: none for pixel targets; once per target block on its patches when
    // masked at the input (the patch embedding once, over every patch, as for the context:
    // it was counted once per block); once over every patch otherwise
    let target_fwd = match (exp.target.kind, exp.target.masking) {
        (TargetKind::Pixels, _) => 0.0,
        (_, TargetMasking::Input) => embed + targets * enc.flops(nt),
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
        frozen_what: "the EMA target encoder".into(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The presets' global batch of 2,048 samples 97 batches, as before; a global batch of
    /// 65,536 samples 8 (it sampled 3, whose mean context was 15% off), a million 1, and a
    /// batch past the statistics' largest is refused with the reason (it ran for minutes and
    /// aborted out of memory).
    #[test]
    fn large_global_batches_sample_enough_batches_or_are_refused() {
        assert_eq!(batches_for(2048), 97);
        assert_eq!(batches_for(128), 1000);
        assert_eq!(batches_for(65_536), 8);
        assert_eq!(batches_for(200_000), 5);
        assert_eq!(batches_for(1 << 20), 1);
        let mut exp = ijepa_dsl::parse_str("t.kdl", "experiment \"t\" { data \"fashion-mnist\" { crop-size 32 }; encoder width=32 depth=1 heads=2 patch=4; mask \"multi-block\" { min-keep 4 } }").unwrap();
        exp.distributed.nodes = 4096;
        exp.distributed.procs_per_node = 64;
        let e = cost(&exp).expect_err("refused").to_string();
        assert!(e.contains("more than the 4194304 they sample at most on a 8x8 patch grid") && e.contains("GB"), "{e}");
    }

    /// Table 11's input masking runs the target encoder once per target block on its patches,
    /// after one patch embedding over every patch (as the encoder embeds, then keeps each
    /// mask's): the embedding was counted once per block.
    #[test]
    fn input_masking_embeds_the_patches_once() {
        let file = |masking: &str| format!("experiment \"t\" {{ data \"fashion-mnist\" {{ crop-size 32 }}; encoder width=32 depth=1 heads=2 patch=4; target masking=\"{masking}\"; mask \"multi-block\" {{ targets count=4; min-keep 4 }} }}");
        let input = ijepa_dsl::parse_str("t.kdl", &file("input")).unwrap();
        let output = ijepa_dsl::parse_str("t.kdl", &file("output")).unwrap();
        let enc = Stack::new(32, 1, 2, input.encoder.mlp_ratio);
        let sampler = MaskSampler::new(&input.mask, 32, 4).unwrap().quiet();
        let global = input.global_batch();
        let nt = statistics(&sampler, input.seed, batches_for(global), global).unwrap().target_len.mean;
        // the two differ in the target encoder's forward alone: 4 blocks of nt patches against
        // one pass over all 64, the embedding the same
        let diff = cost(&input).unwrap().flops_per_image - cost(&output).unwrap().flops_per_image;
        let want = 4.0 * enc.flops(nt) - enc.flops(64.0);
        assert!((diff - want).abs() <= 1e-9 * want.abs(), "{diff} against {want}");
    }
}
