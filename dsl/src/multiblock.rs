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

/// Draws the feasibility check tests evenly besides the exact ones (and all it tests where the
/// ranges are too wide to list every size change: see [`smallest_block`]).
pub const FEASIBILITY_STEPS: usize = 1000;

/// Most draws [`smallest_block`] lists exactly before it falls back to a dense grid of draws.
const MAX_EXACT_DRAWS: usize = 4_000_000;

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

/// The smallest block (fewest patches) the sampler can draw from these ranges. With
/// [`AspectSampling::Shared`] scale and aspect come from one draw `r`; with
/// [`AspectSampling::Independent`] they are independent, and since the block grows with the
/// scale, the smallest block has the lowest scale.
///
/// Exact: the block's size is a step function of the draw, which changes only where
/// `H*W*scale` crosses a whole number or `sqrt(area*aspect)` / `sqrt(area/aspect)` crosses a
/// half; every such draw in the range (and the floats beside it) and a draw inside every
/// interval between two of them is tested, with `FEASIBILITY_STEPS + 1` evenly spaced draws.
/// (It tested those evenly spaced draws alone, which could step over a narrow interval of a
/// smaller block: `check` passed a mask the sampler then refused thousands of steps into a
/// run.) Past `MAX_EXACT_DRAWS` such draws (grids of hundreds of patches a side with wide
/// ranges) it tests as many evenly spaced ones instead.
pub fn smallest_block(
    grid_h: usize,
    grid_w: usize,
    scale: (f64, f64),
    aspect: (f64, f64),
    sampling: AspectSampling,
) -> BlockShape {
    let shape_at = |r: f64| {
        let s = match sampling {
            AspectSampling::Shared => lerp(scale, r),
            AspectSampling::Independent => scale.0,
        };
        let a = lerp(aspect, r);
        let (h, w) = block_size(grid_h, grid_w, s, a);
        BlockShape { scale: s, aspect: a, h, w }
    };
    let mut draws: Vec<f64> = (0..=FEASIBILITY_STEPS).map(|i| i as f64 / FEASIBILITY_STEPS as f64).collect();
    match size_changes(grid_h, grid_w, scale, aspect, sampling) {
        Some(mut cuts) => {
            cuts.retain(|r| (0.0..=1.0).contains(r));
            cuts.sort_by(f64::total_cmp);
            cuts.dedup();
            for pair in cuts.windows(2) {
                draws.push(pair[0] + (pair[1] - pair[0]) / 2.0);
            }
            for r in cuts {
                draws.extend([r.next_down(), r, r.next_up()].into_iter().filter(|r| (0.0..=1.0).contains(r)));
            }
        }
        None => draws.extend((0..=MAX_EXACT_DRAWS).map(|i| i as f64 / MAX_EXACT_DRAWS as f64)),
    }
    let mut best: Option<BlockShape> = None;
    for r in draws {
        let shape = shape_at(r);
        // (the first of the smallest in draw order: the evenly spaced draws come first)
        if best.is_none_or(|b| shape.patches() < b.patches()) {
            best = Some(shape);
        }
    }
    best.unwrap_or(BlockShape { scale: scale.0, aspect: aspect.0, h: 0, w: 0 })
}

/// The draws `r` at which the block size can change (see [`smallest_block`]); `None` when there
/// are more than `MAX_EXACT_DRAWS` of them.
fn size_changes(grid_h: usize, grid_w: usize, scale: (f64, f64), aspect: (f64, f64), sampling: AspectSampling) -> Option<Vec<f64>> {
    let cells = grid_h as f64 * grid_w as f64;
    let (s_lo, s_hi) = match sampling {
        AspectSampling::Shared => scale,
        AspectSampling::Independent => (scale.0, scale.0),
    };
    let finite = [s_lo, s_hi, aspect.0, aspect.1].iter().all(|x| x.is_finite()) && aspect.0 > 0.0 && aspect.1 > 0.0;
    if !finite || cells <= 0.0 {
        return Some(Vec::new());
    }
    // the draw at which a linear setting over `range` reaches `x` (none for a fixed setting)
    let draw_of = |range: (f64, f64), x: f64| (range.1 != range.0).then(|| (x - range.0) / (range.1 - range.0));
    let (k_lo, k_hi) = ((cells * s_lo.min(s_hi)).floor().max(0.0), (cells * s_lo.max(s_hi)).floor().max(0.0));
    let (a_lo, a_hi) = (aspect.0.min(aspect.1), aspect.0.max(aspect.1));
    // (a rough count: areas times the half-crossings of sqrt(area * aspect) and sqrt(area / aspect))
    let per_area = 4.0 + k_hi.sqrt() * ((a_hi.sqrt() - a_lo.sqrt()) + (1.0 / a_lo.sqrt() - 1.0 / a_hi.sqrt()));
    if (k_hi - k_lo + 1.0) * per_area > MAX_EXACT_DRAWS as f64 {
        return None;
    }
    let mut cuts = Vec::new();
    let mut k = k_lo;
    while k <= k_hi {
        if sampling == AspectSampling::Shared {
            cuts.extend(draw_of((s_lo, s_hi), k / cells));
        }
        if k > 0.0 {
            // h = round(sqrt(k * a)) steps where k * a = (m + 1/2)^2; w = round(sqrt(k / a))
            // where k / a = (m + 1/2)^2
            let halves = |lo: f64, hi: f64| (lo.floor() as i64 - 1).max(0)..=(hi.ceil() as i64 + 1);
            for m in halves((k * a_lo).sqrt(), (k * a_hi).sqrt()) {
                let half = m as f64 + 0.5;
                cuts.extend(draw_of(aspect, half * half / k));
            }
            for m in halves((k / a_hi).sqrt(), (k / a_lo).sqrt()) {
                let half = m as f64 + 0.5;
                cuts.extend(draw_of(aspect, k / (half * half)));
            }
        }
        k += 1.0;
    }
    Some(cuts)
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

    /// The smallest block is found where evenly spaced draws step over it: scale 0.12-0.69
    /// and aspect 0.53-2.77 on a 16x16 grid draw a 4x7 block (28 patches) only for draws near
    /// r = 0.0015, between two of the 1,001 evenly spaced ones (whose smallest is 32 patches):
    /// `check` passed min-keep 30, and the sampler refused it thousands of steps into a run.
    #[test]
    fn a_narrow_interval_of_a_smaller_block_is_found() {
        let s = smallest_block(16, 16, (0.12, 0.69), (0.53, 2.77), AspectSampling::Shared);
        assert_eq!((s.h, s.w, s.patches()), (4, 7, 28), "{s:?}");
        let evenly = (0..=FEASIBILITY_STEPS).map(|i| {
            let r = i as f64 / FEASIBILITY_STEPS as f64;
            let (h, w) = block_size(16, 16, lerp((0.12, 0.69), r), lerp((0.53, 2.77), r));
            h * w
        });
        assert_eq!(evenly.min(), Some(32), "the evenly spaced draws alone miss it");
        // the shape reported is one the sampler draws
        assert_eq!(block_size(16, 16, s.scale, s.aspect), (4, 7));
        // and a brute force over a million draws finds nothing smaller
        let dense = (0..=1_000_000).map(|i| {
            let r = i as f64 / 1e6;
            let (h, w) = block_size(16, 16, lerp((0.12, 0.69), r), lerp((0.53, 2.77), r));
            h * w
        });
        assert!(dense.min().unwrap() >= 28);
        let mask = MaskConfig { n_targets: 1, target_scale: (0.12, 0.69), target_aspect: (0.53, 2.77), min_keep: 30, ..MaskConfig::default() };
        assert!(check_feasible(&mask, 16, 16).iter().any(|b| b.block == BlockKind::Target && b.smallest.patches() == 28));
    }

    /// Over many random settings, the exact search finds a block at least as small as a dense
    /// grid of draws does (it never misses one), and only blocks the sampler draws.
    #[test]
    fn the_exact_search_never_misses_a_smaller_block() {
        let mut seed = 12345u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        for _ in 0..200 {
            let g = 4 + (next() * 20.0) as usize;
            let s0 = 0.05 + next() * 0.5;
            let s1 = s0 + next() * 0.4;
            let a0 = 0.3 + next();
            let a1 = a0 + next() * 2.5;
            let best = smallest_block(g, g, (s0, s1), (a0, a1), AspectSampling::Shared);
            assert_eq!(block_size(g, g, best.scale, best.aspect), (best.h, best.w));
            let dense = (0..=100_000).map(|i| {
                let r = i as f64 / 1e5;
                let (h, w) = block_size(g, g, lerp((s0, s1), r), lerp((a0, a1), r));
                h * w
            });
            assert!(best.patches() <= dense.min().unwrap(), "{g} {s0} {s1} {a0} {a1}: {best:?}");
        }
    }

    #[test]
    fn independent_sampling_uses_lowest_scale() {
        let s = smallest_block(16, 16, (0.15, 0.2), (0.75, 1.5), AspectSampling::Independent);
        assert_eq!(s.scale, 0.15);
        assert!(s.patches() <= block_size(16, 16, 0.15, 0.75).0 * block_size(16, 16, 0.15, 0.75).1);
    }
}
