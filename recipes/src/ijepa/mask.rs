//! Multi-block masking (official `src/masks/multiblock.py` `MaskCollator`, reference §2).
//!
//! Per batch: one target block size and one context block size (official: a single uniform
//! number sets both the scale and the aspect ratio). Per image: `n_targets` target blocks, then
//! `n_context` context blocks restricted to the complement of the targets (relaxing one
//! constraint after every 20 failed tries). Every mask of a kind is truncated to the shortest
//! in the batch so they stack into `[B, K]` index tensors.
//!
//! Differences from the official code, all deliberate:
//! * randomness is keyed by (seed, epoch, step, rank) instead of a shared counter and the
//!   global torch RNG, so a resumed run draws the same masks;
//! * where the official loop spins forever (a block that can never keep more than `min_keep`
//!   patches, issue #68) we return [`Error::Mask`] naming the cause;
//! * `corner = unbiased` and `aspect-sampling = independent` are opt-in fixes.
//!
//! [`MaskSampler`] is what the recipe samples with: the multi-block sampler, or one of the
//! paper's Table 6 alternatives (§5 "Masking strategy"), read as follows:
//! * `rasterized`: the grid is cut into four quadrants of `floor(H/2) x floor(W/2)` patches
//!   at its corners; per image one quadrant (uniformly drawn) is the context and the other
//!   three are three target masks. On an odd grid the middle row and column belong to no
//!   quadrant, so all four have the same size and nothing is truncated.
//! * `block`: one target block per image (scale and aspect drawn once per batch, like the
//!   multi-block sizes; the paper's "Block(0.6)"), the context its complement.
//! * `random`: per image, `round(ratio * N)` uniformly drawn patches are the one target
//!   mask (the paper's "Random(0.6)"), the rest the context.

use ijepa_engine::error::{Error, Result};
use ijepa_engine::rng::{Rng, Stream};
use ijepa_dsl::config::{AspectSampling, CornerSampler, MaskConfig, MaskKind};
use tch::Tensor;

/// Number of failed tries before one acceptable-region constraint is dropped (official).
const TIMEOUT: usize = 20;

/// The masks of one batch, as flat row-major index arrays.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskBatch {
    /// Images in the batch.
    pub batch: usize,
    /// Context masks per image.
    pub n_context: usize,
    /// Patches kept per context mask (after truncation to the batch minimum).
    pub k_context: usize,
    /// `[n_context, batch, k_context]` patch indices, ascending within a mask.
    pub context: Vec<i64>,
    /// Target masks per image.
    pub n_targets: usize,
    /// Patches per target mask (after truncation).
    pub k_target: usize,
    /// `[n_targets, batch, k_target]` patch indices.
    pub targets: Vec<i64>,
    /// Of the `drawn` images of the (global) batch these masks were drawn with, those whose
    /// context overlaps their targets: the multi-block sampler dropped its constraints
    /// (kept with the run: [`crate::ijepa::IJepa`]'s notes).
    pub relaxed: usize,
    /// The images of the draw (a rank's masks are its share of the global batch's).
    pub drawn: usize,
}

impl MaskBatch {
    /// The context masks as `n_context` tensors `[B, K]` on `device`.
    pub fn context_tensors(&self, device: tch::Device) -> Vec<Tensor> {
        split(&self.context, self.n_context, self.batch, self.k_context, device)
    }

    /// The target masks as `n_targets` tensors `[B, K]` on `device`.
    pub fn target_tensors(&self, device: tch::Device) -> Vec<Tensor> {
        split(&self.targets, self.n_targets, self.batch, self.k_target, device)
    }

    /// The indices of context mask `j` of image `b`.
    pub fn context_of(&self, j: usize, b: usize) -> &[i64] {
        let k = self.k_context;
        &self.context[(j * self.batch + b) * k..(j * self.batch + b + 1) * k]
    }

    /// The indices of target mask `j` of image `b`.
    pub fn target_of(&self, j: usize, b: usize) -> &[i64] {
        let k = self.k_target;
        &self.targets[(j * self.batch + b) * k..(j * self.batch + b + 1) * k]
    }
}

fn split(flat: &[i64], n: usize, b: usize, k: usize, device: tch::Device) -> Vec<Tensor> {
    (0..n)
        .map(|j| Tensor::from_slice(&flat[j * b * k..(j + 1) * b * k]).view([b as i64, k as i64]).to_device(device))
        .collect()
}

pub use ijepa_dsl::multiblock::block_size;

/// The multi-block sampler for one grid.
#[derive(Debug, Clone)]
pub struct MultiBlock {
    cfg: MaskConfig,
    gh: usize,
    gw: usize,
    /// Whether the warning that context blocks overlap their targets was given (once a run,
    /// shared by the clones the loader threads sample with).
    overlap_warned: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl MultiBlock {
    /// A sampler for `crop / patch` grids.
    pub fn new(cfg: &MaskConfig, crop: usize, patch: usize) -> Result<Self> {
        if patch == 0 || !crop.is_multiple_of(patch) || crop / patch < 2 {
            return Err(Error::Config(format!("patch size {patch} must divide the crop size {crop} into at least 2x2")));
        }
        if cfg.n_targets == 0 || cfg.n_context == 0 {
            return Err(Error::Config("the multi-block sampler needs at least one target and one context block".into()));
        }
        Ok(Self { cfg: cfg.clone(), gh: crop / patch, gw: crop / patch, overlap_warned: Default::default() })
    }

    /// Grid (rows, columns).
    pub fn grid(&self) -> (usize, usize) {
        (self.gh, self.gw)
    }

    /// The settings it samples with.
    pub fn config(&self) -> &MaskConfig {
        &self.cfg
    }

    fn sample_size(&self, rng: &mut Rng, scale: (f64, f64), aspect: (f64, f64)) -> (usize, usize) {
        let r = rng.uniform();
        let ra = match self.cfg.aspect_sampling {
            AspectSampling::Shared => r,
            AspectSampling::Independent => rng.uniform(),
        };
        let s = scale.0 + r * (scale.1 - scale.0);
        let a = aspect.0 + ra * (aspect.1 - aspect.0);
        block_size(self.gh, self.gw, s, a)
    }

    /// Samples one block of size (h, w), optionally restricted to the intersection of
    /// `acceptable` regions (official `_sample_block_mask`). Returns (indices, complement,
    /// how many of the regions were dropped to find it).
    fn sample_block(&self, rng: &mut Rng, (h, w): (usize, usize), acceptable: Option<&[Vec<bool>]>) -> (Vec<i64>, Vec<bool>, usize) {
        let (gh, gw) = (self.gh, self.gw);
        let extra = match self.cfg.corner {
            CornerSampler::Official => 0,
            CornerSampler::Unbiased => 1,
        };
        let mut tries = 0usize;
        let mut timeout = TIMEOUT;
        loop {
            let top = rng.randint(0, (gh - h + extra) as i64) as usize;
            let left = rng.randint(0, (gw - w + extra) as i64) as usize;
            let mut keep = vec![false; gh * gw];
            for r in top..top + h {
                for c in left..left + w {
                    keep[r * gw + c] = true;
                }
            }
            if let Some(regions) = acceptable {
                let n = regions.len().saturating_sub(tries);
                for region in &regions[..n] {
                    for (k, ok) in keep.iter_mut().zip(region) {
                        *k &= *ok;
                    }
                }
            }
            let idx: Vec<i64> = keep.iter().enumerate().filter(|(_, k)| **k).map(|(i, _)| i as i64).collect();
            if idx.len() > self.cfg.min_keep {
                let mut complement = vec![true; gh * gw];
                for r in top..top + h {
                    for c in left..left + w {
                        complement[r * gw + c] = false;
                    }
                }
                return (idx, complement, tries.min(acceptable.map_or(0, <[_]>::len)));
            }
            timeout -= 1;
            if timeout == 0 {
                tries += 1;
                timeout = TIMEOUT;
            }
        }
    }

    /// Checks that an (h, w) block can ever keep more than `min_keep` patches; the official
    /// sampler would spin forever otherwise.
    fn feasible(&self, what: &str, (h, w): (usize, usize), scale: f64) -> Result<()> {
        if h * w <= self.cfg.min_keep {
            return Err(Error::Mask(format!(
                "a {what} block of scale {scale:.3} on the {}x{} patch grid is {h}x{w} = {} patches, \
                 which can never be more than min-keep = {} (the official sampler spins forever here); \
                 raise the {what} scale, use a smaller patch or a larger crop, or lower min-keep",
                self.gh,
                self.gw,
                h * w,
                self.cfg.min_keep
            )));
        }
        Ok(())
    }

    /// Leaves a relaxation of the constraints to rank 0 to say: every rank draws the whole
    /// global batch ([`MultiBlock::sample_shard`]), and each said the same image of the same
    /// draw.
    fn said_by_rank_0(&self, rank: u64) {
        if rank != 0 {
            self.overlap_warned.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Samples the masks of batch `step` of `epoch` on `rank` for `batch` images.
    pub fn sample(&self, seed: u64, epoch: u64, step: u64, rank: u64, batch: usize) -> Result<MaskBatch> {
        let c = &self.cfg;
        let mut rng = Rng::derive(seed, Stream::Mask, &[epoch, step, rank]);
        let p_size = self.sample_size(&mut rng, c.target_scale, c.target_aspect);
        let e_size = self.sample_size(&mut rng, c.context_scale, c.context_aspect);
        self.feasible("target", p_size, c.target_scale.0)?;
        self.feasible("context", e_size, c.context_scale.0)?;
        let n = self.gh * self.gw;
        let (mut min_p, mut min_e) = (n, n);
        let mut preds: Vec<Vec<Vec<i64>>> = Vec::with_capacity(batch);
        let mut encs: Vec<Vec<Vec<i64>>> = Vec::with_capacity(batch);
        // the images whose context blocks dropped a constraint
        let mut dropped_any = Vec::with_capacity(batch);
        for _ in 0..batch {
            let mut masks_p = Vec::with_capacity(c.n_targets);
            let mut complements = Vec::with_capacity(c.n_targets);
            for _ in 0..c.n_targets {
                let (m, comp, _) = self.sample_block(&mut rng, p_size, None);
                min_p = min_p.min(m.len());
                masks_p.push(m);
                complements.push(comp);
            }
            let acceptable = if c.allow_overlap { None } else { Some(complements.as_slice()) };
            let mut masks_e = Vec::with_capacity(c.n_context);
            // an image counts once however many of its context blocks relaxed (the share is of images)
            let mut image_relaxed = false;
            for _ in 0..c.n_context {
                let (m, _, dropped) = self.sample_block(&mut rng, e_size, acceptable);
                min_e = min_e.min(m.len());
                masks_e.push(m);
                image_relaxed |= dropped > 0;
            }
            dropped_any.push(image_relaxed);
            preds.push(masks_p);
            encs.push(masks_e);
        }
        // of those, the images whose context overlaps a target in the masks trained on (each
        // truncated to the batch's shortest), as `ijepa masks` counts them: a block drawn with
        // a constraint dropped can still miss the target (the run's note said 14 of 600 images
        // overlapped where `ijepa masks` counted 12 on the same masks)
        let relaxed = (0..batch)
            .filter(|&b| {
                dropped_any[b] && {
                    let targets: std::collections::HashSet<i64> = preds[b].iter().flat_map(|m| m[..min_p].iter().copied()).collect();
                    encs[b].iter().any(|m| m[..min_e].iter().any(|i| targets.contains(i)))
                }
            })
            .count();
        if relaxed > 0 && !self.overlap_warned.swap(true, std::sync::atomic::Ordering::Relaxed) {
            // the official sampler relaxes the same way, with a log line each time
            tracing::warn!(
                "masks: in {relaxed} of the {batch} images of batch {} of epoch {} (counted from 1), the context block ({}x{} patches) found no \
                 place keeping more than min-keep = {} patches outside the {} target block(s) of {}x{} on the {}x{} grid, so \
                 the sampler dropped constraints and they overlap targets, as the official sampler does (said once a run; \
                 `ijepa masks FILE` gives the share over many batches): smaller targets or context, or fewer targets, avoid it",
                step + 1,
                epoch + 1,
                e_size.0,
                e_size.1,
                c.min_keep,
                c.n_targets,
                p_size.0,
                p_size.1,
                self.gh,
                self.gw
            );
        }
        let flatten = |all: &[Vec<Vec<i64>>], n_masks: usize, k: usize| -> Vec<i64> {
            let mut out = Vec::with_capacity(n_masks * batch * k);
            for j in 0..n_masks {
                for per_image in all {
                    out.extend_from_slice(&per_image[j][..k]);
                }
            }
            out
        };
        Ok(MaskBatch {
            batch,
            n_context: c.n_context,
            k_context: min_e,
            context: flatten(&encs, c.n_context, min_e),
            n_targets: c.n_targets,
            k_target: min_p,
            targets: flatten(&preds, c.n_targets, min_p),
            relaxed,
            drawn: batch,
        })
    }
}

impl MultiBlock {
    /// Rank `rank`'s share of the masks of a global batch of `batch * world` images: the
    /// global batch's masks are drawn (keyed by (seed, epoch, step) alone) and truncated to the
    /// global minimum, and this rank takes images `rank, rank + world, ...` — the positions the
    /// loader's sharding gives it. So a run on W ranks of batch B sees exactly the masks of a
    /// single-process run of batch W*B and the two train alike (the official code instead
    /// truncates per rank). With `world == 1` this is [`MultiBlock::sample`] on rank 0.
    pub fn sample_shard(&self, seed: u64, epoch: u64, step: u64, rank: u64, world: u64, batch: usize) -> Result<MaskBatch> {
        self.said_by_rank_0(rank);
        Ok(shard(self.sample(seed, epoch, step, 0, batch * world as usize)?, rank, world, batch))
    }
}

/// Rank `rank`'s images (`rank, rank + world, ...`) of the masks of a global batch.
fn shard(all: MaskBatch, rank: u64, world: u64, batch: usize) -> MaskBatch {
    if world == 1 {
        return all;
    }
    let global = batch * world as usize;
    let pick = |flat: &[i64], n_masks: usize, k: usize| -> Vec<i64> {
        let mut out = Vec::with_capacity(n_masks * batch * k);
        for j in 0..n_masks {
            for b in 0..batch {
                let g = b * world as usize + rank as usize;
                let at = (j * global + g) * k;
                out.extend_from_slice(&flat[at..at + k]);
            }
        }
        out
    };
    MaskBatch {
        batch,
        context: pick(&all.context, all.n_context, all.k_context),
        targets: pick(&all.targets, all.n_targets, all.k_target),
        ..all
    }
}

/// Anything that samples the masks of a batch (what [`statistics`] summarises).
pub trait SampleMasks {
    /// Grid (rows, columns).
    fn grid(&self) -> (usize, usize);
    /// The masks of batch `step` of `epoch` on `rank` for `batch` images.
    fn sample(&self, seed: u64, epoch: u64, step: u64, rank: u64, batch: usize) -> Result<MaskBatch>;
}

impl SampleMasks for MultiBlock {
    fn grid(&self) -> (usize, usize) {
        MultiBlock::grid(self)
    }
    fn sample(&self, seed: u64, epoch: u64, step: u64, rank: u64, batch: usize) -> Result<MaskBatch> {
        MultiBlock::sample(self, seed, epoch, step, rank, batch)
    }
}

/// The I-JEPA recipe's mask sampler (`mask "KIND"`): multi-block, or a Table 6 alternative.
#[derive(Debug, Clone)]
pub enum MaskSampler {
    /// The official multi-block sampler.
    MultiBlock(MultiBlock),
    /// Four quadrants: one context, three targets.
    Rasterized {
        /// Grid rows.
        gh: usize,
        /// Grid columns.
        gw: usize,
    },
    /// One target block (the wrapped sampler draws its size and place), the context its
    /// complement.
    Block(MultiBlock),
    /// `ratio` of the patches, drawn per image, are the target; the rest the context.
    Random {
        /// Grid rows.
        gh: usize,
        /// Grid columns.
        gw: usize,
        /// Fraction of the patches in the target.
        ratio: f64,
    },
}

impl MaskSampler {
    /// The sampler of `cfg.kind` for `crop / patch` grids.
    pub fn new(cfg: &MaskConfig, crop: usize, patch: usize) -> Result<Self> {
        let grid = |what: &str| -> Result<(usize, usize)> {
            if patch == 0 || !crop.is_multiple_of(patch) || crop / patch < 2 {
                return Err(Error::Config(format!("patch size {patch} must divide the crop size {crop} into at least 2x2 ({what} masks)")));
            }
            Ok((crop / patch, crop / patch))
        };
        Ok(match cfg.kind {
            MaskKind::MultiBlock => Self::MultiBlock(MultiBlock::new(cfg, crop, patch)?),
            MaskKind::Rasterized => {
                let (gh, gw) = grid("rasterized")?;
                Self::Rasterized { gh, gw }
            }
            MaskKind::Block => {
                let (gh, gw) = grid("block")?;
                // an empty block would be redrawn for ever (the language refuses it too)
                if let Some(b) = ijepa_dsl::multiblock::empty_single_block(cfg, gh, gw) {
                    return Err(Error::Config(format!(
                        "the block mask's smallest block (scale {:.4}, aspect {:.4}) is {}x{} = no patch on the {gh}x{gw} grid: raise its scale",
                        b.smallest.scale, b.smallest.aspect, b.smallest.h, b.smallest.w
                    )));
                }
                Self::Block(MultiBlock::new(&ijepa_dsl::multiblock::single_block(cfg), crop, patch)?)
            }
            MaskKind::Random => {
                let (gh, gw) = grid("random")?;
                if !(cfg.ratio > 0.0 && cfg.ratio < 1.0) {
                    return Err(Error::Config(format!("the random mask's ratio {} must be above 0 and below 1", cfg.ratio)));
                }
                Self::Random { gh, gw, ratio: cfg.ratio }
            }
        })
    }

    /// Context masks per image (one for every kind but multi-block).
    pub fn n_context(&self) -> usize {
        match self {
            Self::MultiBlock(m) => m.cfg.n_context,
            _ => 1,
        }
    }

    /// Target masks per image.
    pub fn n_targets(&self) -> usize {
        match self {
            Self::MultiBlock(m) => m.cfg.n_targets,
            Self::Rasterized { .. } => 3,
            Self::Block(_) | Self::Random { .. } => 1,
        }
    }

    /// Rank `rank`'s share of the masks of a global batch of `batch * world` images (see
    /// [`MultiBlock::sample_shard`]).
    pub fn sample_shard(&self, seed: u64, epoch: u64, step: u64, rank: u64, world: u64, batch: usize) -> Result<MaskBatch> {
        if let Self::MultiBlock(m) = self {
            m.said_by_rank_0(rank);
        }
        Ok(shard(self.sample(seed, epoch, step, 0, batch * world as usize)?, rank, world, batch))
    }

    /// A single-line description of the kind and its settings (for `ijepa masks`).
    pub fn describe(&self) -> String {
        match self {
            Self::MultiBlock(m) => {
                let c = &m.cfg;
                format!(
                    "multi-block: {} of scale {}-{}, aspect {}-{}; {} of scale {}-{} {}",
                    if c.n_targets == 1 { "1 target block".to_string() } else { format!("{} target blocks", c.n_targets) },
                    c.target_scale.0,
                    c.target_scale.1,
                    c.target_aspect.0,
                    c.target_aspect.1,
                    if c.n_context == 1 { "context block".to_string() } else { format!("{} context blocks", c.n_context) },
                    c.context_scale.0,
                    c.context_scale.1,
                    if c.allow_overlap { "(allowed to overlap them)" } else { "outside them" }
                )
            }
            Self::Rasterized { gh, gw } => format!(
                "rasterized: four {}x{} quadrants, one (drawn per image) the context, the other three the targets",
                gh / 2,
                gw / 2
            ),
            Self::Block(m) => {
                let c = &m.cfg;
                format!(
                    "block: one target block of scale {}-{}, aspect {}-{}; the context its complement",
                    c.target_scale.0, c.target_scale.1, c.target_aspect.0, c.target_aspect.1
                )
            }
            Self::Random { gh, gw, ratio } => {
                let t = random_targets(gh * gw, *ratio);
                format!("random: {t} of {} patches drawn per image are the target (ratio {ratio}), the other {} the context", gh * gw, gh * gw - t)
            }
        }
    }
}

/// Patches in the target of a random mask: `round(ratio * n)`, at least 1 and at most n - 1.
pub fn random_targets(n: usize, ratio: f64) -> usize {
    ((ratio * n as f64).round() as usize).clamp(1, n.saturating_sub(1).max(1))
}

impl SampleMasks for MaskSampler {
    fn grid(&self) -> (usize, usize) {
        MaskSampler::grid(self)
    }
    fn sample(&self, seed: u64, epoch: u64, step: u64, rank: u64, batch: usize) -> Result<MaskBatch> {
        MaskSampler::sample(self, seed, epoch, step, rank, batch)
    }
}

impl MaskSampler {
    /// The same sampler without its "the sampler dropped constraints" warning (`ijepa masks`
    /// prints the share of such images itself; `ijepa estimate` only counts tokens): the
    /// warning speaks of a run's batches.
    pub fn quiet(self) -> Self {
        if let Self::MultiBlock(m) | Self::Block(m) = &self {
            m.overlap_warned.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        self
    }

    /// Grid (rows, columns).
    pub fn grid(&self) -> (usize, usize) {
        match self {
            Self::MultiBlock(m) | Self::Block(m) => m.grid(),
            Self::Rasterized { gh, gw } | Self::Random { gh, gw, .. } => (*gh, *gw),
        }
    }

    /// Samples the masks of batch `step` of `epoch` on `rank` for `batch` images; every kind
    /// but multi-block gives one context mask per image.
    pub fn sample(&self, seed: u64, epoch: u64, step: u64, rank: u64, batch: usize) -> Result<MaskBatch> {
        let mut rng = Rng::derive(seed, Stream::Mask, &[epoch, step, rank]);
        // per image: (context, targets), each ascending
        let mut per_image: Vec<(Vec<i64>, Vec<Vec<i64>>)> = Vec::with_capacity(batch);
        match self {
            Self::MultiBlock(m) => return m.sample(seed, epoch, step, rank, batch),
            Self::Rasterized { gh, gw } => {
                let (qh, qw) = (gh / 2, gw / 2);
                // top-left corners of the quadrants, in reading order
                let corners = [(0, 0), (0, gw - qw), (gh - qh, 0), (gh - qh, gw - qw)];
                let quadrant = |q: usize| -> Vec<i64> {
                    let (top, left) = corners[q];
                    (top..top + qh).flat_map(|r| (left..left + qw).map(move |c| (r * gw + c) as i64)).collect()
                };
                for _ in 0..batch {
                    let q = rng.below(4) as usize;
                    per_image.push((quadrant(q), (1..4).map(|k| quadrant((q + k) % 4)).collect()));
                }
            }
            Self::Block(m) => {
                let c = &m.cfg;
                let size = m.sample_size(&mut rng, c.target_scale, c.target_aspect);
                let n = m.gh * m.gw;
                if size.0 * size.1 >= n {
                    return Err(Error::Mask(format!(
                        "a target block of {}x{} patches covers the whole {}x{} grid and leaves no context; lower the block's scale",
                        size.0, size.1, m.gh, m.gw
                    )));
                }
                for _ in 0..batch {
                    let (target, complement, _) = m.sample_block(&mut rng, size, None);
                    let context = (0..n).filter(|&i| complement[i]).map(|i| i as i64).collect();
                    per_image.push((context, vec![target]));
                }
            }
            Self::Random { gh, gw, ratio } => {
                let n = gh * gw;
                let t = random_targets(n, *ratio);
                for _ in 0..batch {
                    let perm = rng.permutation(n);
                    let mut target: Vec<i64> = perm[..t].iter().map(|&i| i as i64).collect();
                    let mut context: Vec<i64> = perm[t..].iter().map(|&i| i as i64).collect();
                    target.sort_unstable();
                    context.sort_unstable();
                    per_image.push((context, vec![target]));
                }
            }
        }
        // every kind but multi-block gives masks of one length per batch: nothing is truncated
        let n_targets = per_image.first().map_or(self.n_targets(), |(_, t)| t.len());
        let k_context = per_image.first().map_or(0, |(c, _)| c.len());
        let k_target = per_image.first().and_then(|(_, t)| t.first()).map_or(0, Vec::len);
        let mut context = Vec::with_capacity(batch * k_context);
        for (c, _) in &per_image {
            debug_assert_eq!(c.len(), k_context);
            context.extend_from_slice(c);
        }
        let mut targets = Vec::with_capacity(n_targets * batch * k_target);
        for j in 0..n_targets {
            for (_, t) in &per_image {
                debug_assert_eq!(t[j].len(), k_target);
                targets.extend_from_slice(&t[j]);
            }
        }
        Ok(MaskBatch { batch, n_context: 1, k_context, context, n_targets, k_target, targets, relaxed: 0, drawn: batch })
    }
}

/// Summary statistics of a series (mean, std (population), min, max).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// Mean.
    pub mean: f64,
    /// Population standard deviation.
    pub std: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
}

impl Stats {
    /// Statistics of `xs` (all zero for an empty slice).
    pub fn of(xs: &[f64]) -> Self {
        if xs.is_empty() {
            return Self { mean: 0.0, std: 0.0, min: 0.0, max: 0.0 };
        }
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let min = xs.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        Self { mean, std: var.sqrt(), min, max }
    }
}

/// Mask-length statistics over `batches` batches (what `ijepa masks` prints).
#[derive(Debug, Clone)]
pub struct MaskStats {
    /// Context length per batch (after truncation).
    pub context_len: Stats,
    /// Target length per batch (after truncation).
    pub target_len: Stats,
    /// Fraction of target patches at each grid position.
    pub target_frequency: Vec<f64>,
    /// Fraction of images whose context shares a patch with one of their targets (with
    /// `allow-overlap #false`, where the sampler had to drop constraints).
    pub overlapping: f64,
}

/// The most images times patches a batch [`statistics`] samples may hold (`ijepa masks
/// --batch-size`, `ijepa estimate`'s global batch): its masks take ~20 bytes a patch of each
/// image (1.8 GB at 262,144 images of 256 patches, 4.0 GB at 262,144 of 784), so about 5 GB.
pub const MAX_STATISTICS_CELLS: usize = 1 << 28;

/// Samples `batches` batches of `batch` images and summarises them; a batch of more than
/// [`MAX_STATISTICS_CELLS`] images times patches is refused.
pub fn statistics<S: SampleMasks>(sampler: &S, seed: u64, batches: usize, batch: usize) -> Result<MaskStats> {
    // (one batch's masks are held at once, ~20 bytes a patch of each image: a global batch of
    // 33 million ran for minutes and aborted out of memory; a bound in images alone let a
    // 28x28 grid's take 15 GB)
    let (gh, gw) = sampler.grid();
    let most = MAX_STATISTICS_CELLS / (gh * gw).max(1);
    if batch > most {
        return Err(ijepa_engine::error::Error::Config(format!(
            "the mask statistics sample whole batches, and a batch of {batch} images is more than the {most} they sample at most on a {gh}x{gw} patch grid \
             (its masks alone would take about {:.0} GB; the truncation to the shortest mask changes little past a few thousand images): \
             use a smaller batch or layout",
            (batch * gh * gw) as f64 * 20.0 / 1e9
        )));
    }
    let mut ctx = Vec::with_capacity(batches);
    let mut tgt = Vec::with_capacity(batches);
    let mut freq = vec![0f64; gh * gw];
    let mut total = 0f64;
    let (mut overlapping, mut images) = (0usize, 0usize);
    for step in 0..batches {
        let m = sampler.sample(seed, 0, step as u64, 0, batch)?;
        for b in 0..m.batch {
            let targets: std::collections::HashSet<i64> = (0..m.n_targets).flat_map(|j| m.target_of(j, b).iter().copied()).collect();
            overlapping += usize::from((0..m.n_context).any(|j| m.context_of(j, b).iter().any(|i| targets.contains(i))));
        }
        images += m.batch;
        ctx.push(m.k_context as f64);
        tgt.push(m.k_target as f64);
        for &i in &m.targets {
            freq[i as usize] += 1.0;
        }
        total += m.targets.len() as f64;
    }
    for f in &mut freq {
        *f /= total.max(1.0);
    }
    Ok(MaskStats { context_len: Stats::of(&ctx), target_len: Stats::of(&tgt), target_frequency: freq, overlapping: overlapping as f64 / images.max(1) as f64 })
}

/// What `ijepa masks` prints for an I-JEPA experiment (the recipe's [`MasksFn`] entry): the
/// sampler, the context and target lengths over `query.batches` batches, and the drawing of the
/// first batch when `query.png` asks for one.
///
/// [`MasksFn`]: ijepa_engine::recipe::MasksFn
///
/// # Errors
/// A mask configuration the sampler cannot honour, or the PNG's file.
pub fn report(exp: &ijepa_dsl::config::Experiment, query: &ijepa_engine::recipe::MaskQuery) -> Result<String> {
    let sampler = MaskSampler::new(&exp.mask, exp.data.crop_size, exp.encoder.patch_size)?.quiet();
    let (batches, batch) = (query.batches, query.batch_size);
    let (gh, gw) = sampler.grid();
    let st = statistics(&sampler, exp.seed, batches, batch)?;
    let mut out = format!("masks of {:?}: {gh}x{gw} patch grid, {batches} batch{} of {batch}; {}", exp.name, if batches == 1 { "" } else { "es" }, sampler.describe());
    for (what, s) in [("context length", st.context_len), ("target length", st.target_len)] {
        out += &format!("\n  {what:<15} mean {:>7.2}  std {:>6.2}  min {:>4}  max {:>4}", s.mean, s.std, s.min, s.max);
    }
    if st.overlapping > 0.0 {
        out += &format!(
            "\n  context overlapping a target: {:.1}% of the images{}",
            100.0 * st.overlapping,
            if exp.mask.allow_overlap { "" } else { " (allow-overlap #false: no place outside the targets kept more than min-keep patches, so the sampler dropped constraints, as the official one does)" }
        );
    }
    if let Some(png) = query.png {
        let m = sampler.sample(exp.seed, 0, 0, 0, batch)?;
        super::mask_png::write(png, &m, gh, gw, 8)?;
        // (a context patch under a target shows the target's colour: with `allow-overlap`, the
        // picture's blue patches were fewer than the context length printed)
        out += &format!(
            "\nwrote {} (blue: context, warm colours: {}, drawn over the context where they overlap it; grey: unused)",
            png.display(),
            match sampler.n_targets() {
                1 => "the target mask".to_string(),
                n => format!("the {n} target masks"),
            }
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> MaskConfig {
        MaskConfig::default()
    }

    /// The statistics' bound is in images times patches: a 28x28 grid (ViT-H/16 at 448 px)
    /// samples at most 342,392 images a batch (at 1,048,576 images it took ~15 GB).
    #[test]
    fn the_statistics_bound_counts_the_patches() {
        let s = MaskSampler::new(&cfg(), 448, 16).unwrap().quiet();
        let e = statistics(&s, 0, 1, 400_000).unwrap_err().to_string();
        assert!(e.contains("more than the 342392 they sample at most on a 28x28 patch grid") && e.contains("about 6 GB"), "{e}");
    }

    #[test]
    fn block_size_matches_python() {
        // 14x14 grid, scale 0.15 -> area int(29.4) = 29, aspect 0.75: sqrt(21.75)=4.66 -> 5,
        // sqrt(38.67) = 6.22 -> 6
        assert_eq!(block_size(14, 14, 0.15, 0.75), (5, 6));
        // context scale 1.0 -> area 196, 14x14 decremented to 13x13
        assert_eq!(block_size(14, 14, 1.0, 1.0), (13, 13));
        // round half to even: area 2, aspect 2 -> sqrt(4) = 2, sqrt(1) = 1; area 6.25 case
        assert_eq!((2.5f64).round_ties_even(), 2.0);
    }

    /// The images a run counts as overlapping are those whose masks overlap, as `ijepa masks`
    /// counts them: a context block drawn after a constraint was dropped can still miss the
    /// targets (the run's note said 14 of 600 images where the statistics counted 12).
    #[test]
    fn relaxed_images_are_those_whose_masks_overlap() {
        let c = MaskConfig { n_targets: 4, context_scale: (0.3, 0.4), min_keep: 20, ..cfg() };
        let sampler = MaskSampler::MultiBlock(MultiBlock::new(&c, 56, 4).unwrap());
        let (mut relaxed, mut overlapping) = (0, 0);
        for step in 0..600 {
            let m = sampler.sample(0, 0, step, 0, 1).unwrap();
            relaxed += m.relaxed;
            let targets: std::collections::HashSet<i64> = (0..m.n_targets).flat_map(|j| m.target_of(j, 0).iter().copied()).collect();
            overlapping += usize::from((0..m.n_context).any(|j| m.context_of(j, 0).iter().any(|i| targets.contains(i))));
        }
        assert!(overlapping > 0, "the setting relaxes");
        assert_eq!(relaxed, overlapping);
    }

    /// A context block that cannot avoid the targets drops constraints (the official
    /// relaxation) and says how many, which `sample` turns into a warning: one 6x6 target on a
    /// 7x7 grid leaves no room for a context of more than min-keep patches outside it.
    #[test]
    fn a_context_that_cannot_avoid_the_targets_says_so() {
        let c = MaskConfig { n_targets: 1, min_keep: 3, ..cfg() };
        let s = MultiBlock::new(&c, 28, 4).unwrap();
        let mut rng = Rng::derive(0, Stream::Mask, &[0]);
        let (target, complement, dropped) = s.sample_block(&mut rng, (6, 6), None);
        assert_eq!((target.len(), dropped), (36, 0));
        let (context, _, dropped) = s.sample_block(&mut rng, (6, 6), Some(std::slice::from_ref(&complement)));
        assert_eq!(dropped, 1);
        assert!(context.iter().any(|i| target.contains(i)), "it overlaps");
        // a small target leaves room: nothing dropped, no overlap
        let (small, complement, _) = s.sample_block(&mut rng, (2, 2), None);
        let (context, _, dropped) = s.sample_block(&mut rng, (3, 3), Some(&[complement]));
        assert_eq!(dropped, 0);
        assert!(!context.iter().any(|i| small.contains(i)));
        // sampled in a batch, its masks count the images it relaxed, of the global batch's
        // (a rank's share carries them: rank 0 keeps the run's)
        let c = MaskConfig { target_scale: (0.73, 0.74), target_aspect: (1.0, 1.0), ..c };
        let sampler = MaskSampler::MultiBlock(MultiBlock::new(&c, 28, 4).unwrap());
        let m = sampler.sample_shard(0, 0, 0, 0, 2, 4).unwrap();
        assert_eq!((m.batch, m.relaxed, m.drawn), (4, 8, 8));
        // a sampler that keeps room counts none
        let roomy = MaskSampler::MultiBlock(MultiBlock::new(&MaskConfig { n_targets: 1, ..cfg() }, 224, 16).unwrap());
        let m = roomy.sample(0, 0, 0, 0, 8).unwrap();
        assert_eq!((m.relaxed, m.drawn), (0, 8));
        // two context blocks that both relax count their image once: the share stays of images
        let twice = MaskSampler::MultiBlock(MultiBlock::new(&MaskConfig { n_context: 2, ..c }, 28, 4).unwrap());
        let m = twice.sample(0, 0, 0, 0, 4).unwrap();
        assert_eq!((m.relaxed, m.drawn), (4, 4));
    }

    #[test]
    fn invariants_hold() {
        let s = MultiBlock::new(&cfg(), 224, 16).unwrap();
        for step in 0..50 {
            let m = s.sample(3, 1, step, 0, 8).unwrap();
            assert_eq!(m.context.len(), m.n_context * m.batch * m.k_context);
            assert_eq!(m.targets.len(), m.n_targets * m.batch * m.k_target);
            assert!(m.k_context > 0 && m.k_target > 0);
            for b in 0..m.batch {
                let ctx = m.context_of(0, b);
                assert!(ctx.windows(2).all(|w| w[0] < w[1]), "ascending");
                assert!(ctx.iter().all(|&i| (0..196).contains(&i)));
                for j in 0..m.n_targets {
                    let t = m.target_of(j, b);
                    assert!(t.iter().all(|&i| (0..196).contains(&i)));
                    // context and targets are disjoint (context restricted to complements)
                    assert!(t.iter().all(|i| !ctx.contains(i)), "overlap at step {step}");
                }
            }
        }
    }

    #[test]
    fn deterministic_per_key() {
        let s = MultiBlock::new(&cfg(), 224, 16).unwrap();
        assert_eq!(s.sample(1, 2, 3, 0, 4).unwrap(), s.sample(1, 2, 3, 0, 4).unwrap());
        assert_ne!(s.sample(1, 2, 3, 0, 4).unwrap(), s.sample(1, 2, 4, 0, 4).unwrap());
        assert_ne!(s.sample(1, 2, 3, 0, 4).unwrap(), s.sample(1, 2, 3, 1, 4).unwrap());
    }

    #[test]
    fn official_corner_never_touches_last_row_or_column() {
        let s = MultiBlock::new(&cfg(), 224, 16).unwrap();
        let st = statistics(&s, 0, 100, 8).unwrap();
        for r in 0..14 {
            assert_eq!(st.target_frequency[r * 14 + 13], 0.0, "last column is never a target");
            assert_eq!(st.target_frequency[13 * 14 + r], 0.0, "last row is never a target");
        }
        let unbiased = MaskConfig { corner: CornerSampler::Unbiased, ..cfg() };
        let s = MultiBlock::new(&unbiased, 224, 16).unwrap();
        let st = statistics(&s, 0, 100, 8).unwrap();
        assert!(st.target_frequency[13 * 14 + 13] > 0.0);
    }

    #[test]
    fn infeasible_config_errors_instead_of_hanging() {
        // 32 px, patch 8: 4x4 grid; a target of scale 0.2 is int(3.2) = 3 patches <= 4
        let c = MaskConfig { min_keep: 4, ..cfg() };
        let s = MultiBlock::new(&c, 32, 8).unwrap();
        let t = std::time::Instant::now();
        let err = s.sample(0, 0, 0, 0, 8).unwrap_err().to_string();
        assert!(err.contains("min-keep = 4") && err.contains("target"), "{err}");
        assert!(t.elapsed().as_secs() < 1);
    }

    #[test]
    fn shards_are_the_interleaved_rows_of_the_global_batch() {
        let cfg = MaskConfig { min_keep: 4, ..MaskConfig::default() };
        let s = MultiBlock::new(&cfg, 64, 8).unwrap();
        let global = s.sample_shard(3, 1, 5, 0, 1, 6).unwrap();
        assert_eq!(global, s.sample(3, 1, 5, 0, 6).unwrap());
        for rank in 0..3u64 {
            let part = s.sample_shard(3, 1, 5, rank, 3, 2).unwrap();
            assert_eq!((part.batch, part.k_context, part.k_target), (2, global.k_context, global.k_target));
            for b in 0..2 {
                let g = b * 3 + rank as usize;
                for j in 0..cfg.n_context {
                    assert_eq!(part.context_of(j, b), global.context_of(j, g));
                }
                for j in 0..cfg.n_targets {
                    assert_eq!(part.target_of(j, b), global.target_of(j, g));
                }
            }
        }
    }
    fn kind(kind: MaskKind) -> MaskConfig {
        MaskConfig::for_kind(kind, Some(0.6))
    }

    /// Every mask of every image is ascending, on the grid, of the batch's one length, and
    /// disjoint from the image's context.
    fn check_batch(m: &MaskBatch, n: i64) {
        assert_eq!(m.context.len(), m.n_context * m.batch * m.k_context);
        assert_eq!(m.targets.len(), m.n_targets * m.batch * m.k_target);
        assert!(m.k_context > 0 && m.k_target > 0);
        for b in 0..m.batch {
            let ctx = m.context_of(0, b);
            assert!(ctx.windows(2).all(|w| w[0] < w[1]), "context ascending");
            assert!(ctx.iter().all(|i| (0..n).contains(i)));
            for j in 0..m.n_targets {
                let t = m.target_of(j, b);
                assert!(t.windows(2).all(|w| w[0] < w[1]), "target ascending");
                assert!(t.iter().all(|i| (0..n).contains(i)));
                assert!(t.iter().all(|i| !ctx.contains(i)), "target {j} of image {b} overlaps the context");
            }
        }
    }

    #[test]
    fn table6_kinds_keep_their_invariants_on_every_grid() {
        for k in [MaskKind::Rasterized, MaskKind::Block, MaskKind::Random] {
            // 2x2 (the smallest grid), 7x7 (odd: Fashion-MNIST at patch 4), 14x14
            for (crop, patch) in [(8, 4), (28, 4), (224, 16)] {
                let s = MaskSampler::new(&kind(k), crop, patch).unwrap();
                let g = (crop / patch) as i64;
                let t = std::time::Instant::now();
                for step in 0..20 {
                    check_batch(&s.sample(1, 0, step, 0, 16).unwrap(), g * g);
                }
                assert!(t.elapsed().as_secs() < 2, "{k:?} on {g}x{g} took {:?}", t.elapsed());
            }
        }
    }

    #[test]
    fn rasterized_is_one_quadrant_of_context_and_three_of_targets() {
        // 7x7: quadrants of 3x3; the middle row and column belong to none
        let s = MaskSampler::new(&kind(MaskKind::Rasterized), 28, 4).unwrap();
        let m = s.sample(0, 0, 0, 0, 64).unwrap();
        assert_eq!((m.n_context, m.k_context, m.n_targets, m.k_target), (1, 9, 3, 9));
        let mut context_quadrants = std::collections::HashSet::new();
        for b in 0..m.batch {
            let mut all: Vec<i64> = m.context_of(0, b).to_vec();
            for j in 0..3 {
                all.extend_from_slice(m.target_of(j, b));
            }
            all.sort_unstable();
            all.dedup();
            assert_eq!(all.len(), 36, "four disjoint quadrants");
            assert!(all.iter().all(|i| i / 7 != 3 && i % 7 != 3), "the middle row and column are unused");
            context_quadrants.insert(m.context_of(0, b)[0]);
        }
        assert_eq!(context_quadrants.len(), 4, "every quadrant is the context of some image");
    }

    #[test]
    fn block_context_is_the_complement_of_one_block() {
        let s = MaskSampler::new(&kind(MaskKind::Block), 224, 16).unwrap();
        for step in 0..10 {
            let m = s.sample(2, 0, step, 0, 8).unwrap();
            assert_eq!((m.n_context, m.n_targets), (1, 1));
            assert_eq!(m.k_context + m.k_target, 196, "context + target cover the grid");
            // scale 0.6 of 196 patches: int(117.6) = 117, rounded to a block of h x w
            assert!((100..=135).contains(&m.k_target), "target {} patches", m.k_target);
            let t = m.target_of(0, 0);
            let (rows, cols): (Vec<i64>, Vec<i64>) = t.iter().map(|i| (i / 14, i % 14)).unzip();
            let h = rows.iter().max().unwrap() - rows.iter().min().unwrap() + 1;
            let w = cols.iter().max().unwrap() - cols.iter().min().unwrap() + 1;
            assert_eq!((h * w) as usize, m.k_target, "the target is one rectangle");
        }
    }

    #[test]
    fn an_empty_block_is_refused_not_redrawn_for_ever() {
        let tiny = MaskConfig { target_scale: (0.01, 0.01), ..kind(MaskKind::Block) };
        let e = MaskSampler::new(&tiny, 28, 4).expect_err("refused").to_string();
        assert!(e.contains("no patch on the 7x7 grid"), "{e}");
        assert!(MaskSampler::new(&kind(MaskKind::Block), 28, 4).is_ok());
    }

    #[test]
    fn random_targets_are_the_ratio_of_the_grid_and_differ_per_image() {
        let s = MaskSampler::new(&kind(MaskKind::Random), 224, 16).unwrap();
        let m = s.sample(0, 0, 0, 0, 8).unwrap();
        assert_eq!((m.n_targets, m.k_target, m.k_context), (1, 118, 78), "round(0.6 * 196) = 118");
        assert_ne!(m.target_of(0, 0), m.target_of(0, 1));
        // frequency of each patch being a target is ~0.6 everywhere (no corner bias)
        let st = statistics(&s, 0, 200, 16).unwrap();
        let per_patch: Vec<f64> = st.target_frequency.iter().map(|f| f * 118.0).collect();
        assert!(per_patch.iter().all(|f| (0.5..0.7).contains(f)), "{per_patch:?}");
        assert_eq!(random_targets(4, 0.99), 3, "at least one context patch");
        assert_eq!(random_targets(4, 0.01), 1, "at least one target patch");
    }

    #[test]
    fn shards_of_the_table6_kinds_are_the_rows_of_the_global_batch() {
        let s = MaskSampler::new(&kind(MaskKind::Random), 64, 8).unwrap();
        let global = s.sample(3, 1, 5, 0, 6).unwrap();
        let part = s.sample_shard(3, 1, 5, 2, 3, 2).unwrap();
        assert_eq!(part.target_of(0, 1), global.target_of(0, 5));
        assert_eq!(part.context_of(0, 0), global.context_of(0, 2));
    }
}
