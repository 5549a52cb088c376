//! The deterministic arithmetic of the official multi-block mask sampler
//! (`src/masks/multiblock.py`, `MaskCollator._sample_block_size` / `_sample_block_mask`;
//! paper §3 "Targets" and "Context").
//!
//! The DSL uses it to reject mask settings the sampler can never satisfy; the engine's
//! sampler must use the *same* functions so both agree on every block size.
//!
//! Official block size for a uniform draw `r` in [0, 1) on a `H x W` patch grid:
//!
//! ```text
//! s        = s_lo + r * (s_hi - s_lo)
//! max_keep = int(H * W * s)
//! a        = a_lo + r * (a_hi - a_lo)          # the same r: scale and aspect are correlated
//! h        = int(round(sqrt(max_keep * a)))    # Python round: ties to even
//! w        = int(round(sqrt(max_keep / a)))
//! while h >= H: h -= 1
//! while w >= W: w -= 1
//! ```
//!
//! A block is then resampled until it keeps *more than* `min_keep` patches; if `h * w <=
//! min_keep` that never happens and the official code loops forever.

use crate::config::{AspectSampling, MaskConfig};

/// Python's `round` on floats: to nearest, ties to even (`round(2.5) == 2`).
pub fn round_half_even(x: f64) -> f64 {
    x.round_ties_even()
}

/// A point of a `(lo, hi)` range: `lo + r * (hi - lo)` (the official expression order).
pub fn lerp(range: (f64, f64), r: f64) -> f64 {
    range.0 + r * (range.1 - range.0)
}

/// Block height and width, in patches, for a block of `scale` (fraction of the grid) and
/// `aspect` (height / width) on a `grid_h x grid_w` patch grid, exactly as the official
/// `_sample_block_size`: `area = floor(H*W*scale)`, `h = round(sqrt(area*aspect))`,
/// `w = round(sqrt(area/aspect))` with round-half-to-even, then clamped to at most `H-1`,
/// `W-1`. (A zero-sized grid yields 0 where Python would yield -1.)
pub fn block_size(grid_h: usize, grid_w: usize, scale: f64, aspect: f64) -> (usize, usize) {
    let cells = grid_h as f64 * grid_w as f64;
    let max_keep = (cells * scale).trunc().max(0.0);
    let h = round_half_even((max_keep * aspect).sqrt());
    let w = round_half_even((max_keep / aspect).sqrt());
    // `as` saturates (NaN -> 0), so nonsense inputs give small blocks rather than panics.
    let h = (h as usize).min(grid_h.saturating_sub(1));
    let w = (w as usize).min(grid_w.saturating_sub(1));
    (h, w)
}

/// Intervals the feasibility check splits a range into (it tests `STEPS + 1` points).
pub const FEASIBILITY_STEPS: usize = 1000;

/// One block size the sampler can produce, with the scale/aspect that give it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockShape {
    /// Block scale (fraction of the grid).
    pub scale: f64,
    /// Block aspect ratio (height / width).
    pub aspect: f64,
    /// Height in patches.
    pub h: usize,
    /// Width in patches.
    pub w: usize,
}

impl BlockShape {
    /// Patches in the block.
    pub fn patches(&self) -> usize {
        self.h.saturating_mul(self.w)
    }
}

/// The smallest block (fewest patches) the sampler can draw from these ranges, checked on
/// `FEASIBILITY_STEPS + 1` evenly spaced draws. With [`AspectSampling::Shared`] scale and aspect
/// come from one draw `r`; with [`AspectSampling::Independent`] they are independent, and since
/// the block grows with the scale, the smallest block has the lowest scale.
pub fn smallest_block(
    grid_h: usize,
    grid_w: usize,
    scale: (f64, f64),
    aspect: (f64, f64),
    sampling: AspectSampling,
) -> BlockShape {
    let mut best: Option<BlockShape> = None;
    for i in 0..=FEASIBILITY_STEPS {
        let r = i as f64 / FEASIBILITY_STEPS as f64;
        let s = match sampling {
            AspectSampling::Shared => lerp(scale, r),
            AspectSampling::Independent => scale.0,
        };
        let a = lerp(aspect, r);
        let (h, w) = block_size(grid_h, grid_w, s, a);
        let shape = BlockShape { scale: s, aspect: a, h, w };
        if best.is_none_or(|b| shape.patches() < b.patches()) {
            best = Some(shape);
        }
    }
    best.unwrap_or(BlockShape { scale: scale.0, aspect: aspect.0, h: 0, w: 0 })
}

/// Which block of the multi-block mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// A prediction target block.
    Target,
    /// The context block.
    Context,
}

impl BlockKind {
    /// `target` / `context`.
    pub fn name(self) -> &'static str {
        match self {
            BlockKind::Target => "target",
            BlockKind::Context => "context",
        }
    }
}

/// A block the sampler would spin on forever: its smallest size keeps no more than `min_keep`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Infeasible {
    /// Which block.
    pub block: BlockKind,
    /// Its smallest size.
    pub smallest: BlockShape,
    /// The mask's `min_keep`.
    pub min_keep: usize,
}

/// Every block of `mask` that can be drawn too small to ever satisfy `min_keep` on a
/// `grid_h x grid_w` patch grid (empty when the sampler always terminates).
/// The context block is checked unconstrained: the official sampler relaxes the
/// no-overlap constraint step by step until the bare block remains.
pub fn check_feasible(mask: &MaskConfig, grid_h: usize, grid_w: usize) -> Vec<Infeasible> {
    let blocks = [
        (BlockKind::Target, mask.target_scale, mask.target_aspect),
        (BlockKind::Context, mask.context_scale, mask.context_aspect),
    ];
    blocks
        .into_iter()
        .filter_map(|(block, scale, aspect)| {
            let smallest = smallest_block(grid_h, grid_w, scale, aspect, mask.aspect_sampling);
            (smallest.patches() <= mask.min_keep).then_some(Infeasible {
                block,
                smallest,
                min_keep: mask.min_keep,
            })
        })
        .collect()
}

/// The multi-block settings a single-block mask (`mask "block"`) samples with: one target
/// block, its context the complement, no `min-keep` (a whole block is never cut by a region,
/// so it always keeps h*w).
pub fn single_block(mask: &MaskConfig) -> MaskConfig {
    MaskConfig { n_targets: 1, n_context: 1, min_keep: 0, ..mask.clone() }
}

/// The smallest block of a single-block mask ([`single_block`]), when it can round to no
/// patch on a `grid_h x grid_w` grid: its sampler would redraw it for ever.
pub fn empty_single_block(mask: &MaskConfig, grid_h: usize, grid_w: usize) -> Option<Infeasible> {
    check_feasible(&single_block(mask), grid_h, grid_w).into_iter().find(|b| b.block == BlockKind::Target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_rounding() {
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(3.5), 4.0);
        assert_eq!(round_half_even(2.4999), 2.0);
        assert_eq!(round_half_even(-0.5), -0.0);
    }

    #[test]
    fn official_vith14_sizes() {
        // 224/14 = 16x16 grid, the official defaults.
        // r = 0: scale 0.15 -> area int(38.4) = 38; aspect 0.75 -> h = round(5.34) = 5,
        // w = round(7.12) = 7.
        assert_eq!(block_size(16, 16, 0.15, 0.75), (5, 7));
        // r = 1: scale 0.2 -> area 51; aspect 1.5 -> h = round(8.75) = 9, w = round(5.83) = 6.
        assert_eq!(block_size(16, 16, 0.2, 1.5), (9, 6));
        // context: scale 1.0, aspect 1 -> 16x16 clamped to 15x15.
        assert_eq!(block_size(16, 16, 1.0, 1.0), (15, 15));
    }

    #[test]
    fn ties_round_to_even() {
        // area int(25 * 0.25) = 6; 6 * 1.0416666 = 6.25 -> sqrt 2.5 -> round 2 (not 3).
        let aspect = 6.25 / 6.0;
        let (h, _) = block_size(5, 5, 0.25, aspect);
        assert_eq!(h, 2);
    }

    #[test]
    fn degenerate_grids_do_not_panic() {
        assert_eq!(block_size(0, 0, 0.5, 1.0), (0, 0));
        assert_eq!(block_size(1, 1, 1.0, 1.0), (0, 0));
        assert_eq!(block_size(8, 8, f64::NAN, 1.0), (0, 0));
    }

    #[test]
    fn default_mask_on_small_grid_is_infeasible() {
        // 32 px / patch 4 = 8x8: the smallest target is 3x3 = 9 <= min_keep 10.
        let bad = check_feasible(&MaskConfig::default(), 8, 8);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].block, BlockKind::Target);
        assert_eq!(bad[0].smallest.patches(), 9);
        let ok = MaskConfig { min_keep: 4, ..MaskConfig::default() };
        assert!(check_feasible(&ok, 8, 8).is_empty());
        // The official configuration on 16x16 is feasible.
        assert!(check_feasible(&MaskConfig::default(), 16, 16).is_empty());
    }

    #[test]
    fn independent_sampling_uses_lowest_scale() {
        let s = smallest_block(16, 16, (0.15, 0.2), (0.75, 1.5), AspectSampling::Independent);
        assert_eq!(s.scale, 0.15);
        assert!(s.patches() <= block_size(16, 16, 0.15, 0.75).0 * block_size(16, 16, 0.15, 0.75).1);
    }
}
