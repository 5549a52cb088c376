//! Learning monitors during pretraining: is the encoder learning, or collapsing?
//!
//! A falling loss says little about the features (the complaint of facebookresearch/ijepa#55);
//! these measures look at the features themselves, on labelled images held out of the
//! training split (pretraining never sees them), at epoch 0 and every `every` epochs:
//!
//! - **kNN top-1**: leave-one-out weighted kNN among the held-out images (each image voted on
//!   by its `k` most cosine-similar others, weights `exp(sim / 0.07)`, the DINO vote of
//!   [`crate::eval::knn`]). Rises as the features learn the classes.
//! - **RankMe** (Garrido et al., ICML 2023): `exp(entropy(p))` with `p_k = s_k / sum(s) + eps`
//!   over the singular values `s` of the `[N, D]` embedding matrix: the effective rank, from 1
//!   (every image the same direction) to D.
//! - **spread**: the mean over dimensions of the per-dimension standard deviation of the
//!   L2-normalised features, times `sqrt(D)`: about 1 for isotropic features, 0 when every
//!   image maps to the same point (SimSiam's collapse indicator, scaled to be width-free).
//!
//! Features are the average-pooled last-layer tokens, as the evaluations use. Before training
//! the same measures are taken of the normalised pixels (`pixels`), the baseline to beat.

use crate::data::{Dataset, EvalTransform};
use crate::error::{Error, Result};
use crate::eval::features::{self, FeatureKind, Features};
use crate::model::vit::VisionTransformer;
use ijepa_dsl::config::MonitorConfig;
use std::sync::Arc;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Header of `monitor.csv` (the run-folder schema's).
pub use ijepa_schema::MONITOR_HEADER;

/// kNN vote temperature (DINO's).
const TEMPERATURE: f64 = 0.07;

/// RankMe of `[N, D]` features (float; any device): `exp(-sum p log p)`,
/// `p = s / sum(s) + 1e-7`, `s` the min(N, D) singular values. 0 for an empty or all-zero
/// matrix.
pub fn rankme(x: &Tensor) -> Result<f64> {
    let size = x.size();
    if size.len() != 2 || x.numel() == 0 {
        return Ok(0.0);
    }
    // singular values as the square roots of the eigenvalues of the smaller Gram matrix, in
    // float64 (float32's rounding, square-rooted, would lift the zero singular values into
    // the entropy; and no LAPACK driver choice to make): D x D for an encoder's features,
    // N x N for wider ones — the pixels of a 224 px crop have D = 150,528, whose D x D Gram
    // matrix alone would be 181 GB — summed over column blocks, so that no float64 copy of
    // the whole features is made
    let gram = if size[0] < size[1] {
        const BLOCK: i64 = 8192;
        let x = x.f_to_device(Device::Cpu)?;
        let mut gram = Tensor::f_zeros([size[0], size[0]], (Kind::Double, Device::Cpu))?;
        for start in (0..size[1]).step_by(BLOCK as usize) {
            let b = x.f_narrow(1, start, BLOCK.min(size[1] - start))?.f_to_kind(Kind::Double)?;
            gram = gram.f_add(&b.f_matmul(&b.f_tr()?)?)?;
        }
        gram
    } else {
        let x = x.f_to_kind(Kind::Double)?.f_to_device(Device::Cpu)?;
        x.f_tr()?.f_matmul(&x)?
    };
    let s = Tensor::f_linalg_eigvalsh(&gram, "L")?.f_clamp_min(0.0)?.f_sqrt()?;
    let total = s.f_sum(Kind::Double)?.f_double_value(&[])?;
    if total <= 0.0 || !total.is_finite() {
        return Ok(0.0);
    }
    let p = (s / total) + 1e-7;
    let entropy = -(&p * p.f_log()?).f_sum(Kind::Double)?.f_double_value(&[])?;
    Ok(entropy.exp())
}

/// The mean per-dimension standard deviation of the L2-normalised rows of `[N, D]` features,
/// times `sqrt(D)` (about 1 for isotropic features, 0 for identical rows).
pub fn spread(x: &Tensor) -> Result<f64> {
    let x = x.f_to_kind(Kind::Double)?.f_to_device(Device::Cpu)?;
    let size = x.size();
    if size.len() != 2 || size[0] < 2 || size[1] == 0 {
        return Ok(0.0);
    }
    let norm = x.f_norm_scalaropt_dim(2.0, [1i64].as_slice(), true)?.f_clamp_min(1e-12)?;
    let z = x / norm;
    let std = z.f_std_dim([0i64].as_slice(), false, false)?;
    Ok(std.f_mean(Kind::Double)?.f_double_value(&[])? * (size[1] as f64).sqrt())
}

/// Leave-one-out weighted kNN top-1 (percent) among the rows of `x` with labels `y`: each row
/// is classified by its `k` most cosine-similar other rows.
///
/// Errors: fewer than `k + 1` rows, `k == 0`, labels not matching the rows or out of range.
pub fn knn_loo(x: &Tensor, y: &[i64], num_classes: usize, k: usize) -> Result<f64> {
    let n = y.len() as i64;
    if k == 0 || i64::try_from(k).map_or(true, |k| k >= n) {
        return Err(Error::Config(format!("monitor kNN: k = {k} needs more than {n} images")));
    }
    if x.size().first().copied() != Some(n) {
        return Err(Error::Config(format!("monitor kNN: {} feature rows for {n} labels", x.size().first().copied().unwrap_or(0))));
    }
    if let Some(bad) = y.iter().find(|&&l| l < 0 || l as usize >= num_classes) {
        return Err(Error::Config(format!("monitor kNN: label {bad} outside 0..{num_classes}")));
    }
    let x = x.f_to_kind(Kind::Float)?.f_to_device(Device::Cpu)?;
    let z = &x / x.f_norm_scalaropt_dim(2.0, [1i64].as_slice(), true)?.f_clamp_min(1e-12)?;
    let labels = Tensor::from_slice(y);
    let eye = Tensor::f_eye(n, (Kind::Bool, Device::Cpu))?;
    let mut correct = 0i64;
    let rows = (1i64 << 22) / n.max(1);
    for start in (0..n).step_by(rows.max(1) as usize) {
        let len = rows.max(1).min(n - start);
        let sim = z.f_narrow(0, start, len)?.f_matmul(&z.f_tr()?)?;
        // a row is not its own neighbour
        let sim = sim.f_masked_fill(&eye.f_narrow(0, start, len)?, f64::NEG_INFINITY)?;
        let (vals, idx) = sim.f_topk(k as i64, 1, true, true)?;
        let nb = labels.f_index_select(0, &idx.f_view([-1])?)?.f_view([len, k as i64])?;
        let w = ((&vals - vals.f_narrow(1, 0, 1)?) / TEMPERATURE).f_exp()?;
        let votes = Tensor::f_zeros([len, num_classes as i64], (Kind::Float, Device::Cpu))?.f_scatter_add(1, &nb, &w)?;
        let pred = votes.f_argmax(1, false)?;
        correct += pred.f_eq_tensor(&labels.f_narrow(0, start, len)?)?.f_sum(Kind::Int64)?.f_int64_value(&[])?;
    }
    Ok(100.0 * correct as f64 / n as f64)
}

/// One measurement of one encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct Measure {
    /// Which encoder (`target`, `context`).
    pub encoder: String,
    /// Leave-one-out kNN top-1, percent.
    pub knn: f64,
    /// RankMe.
    pub rankme: f64,
    /// Feature spread.
    pub spread: f64,
    /// Seconds this measure took (features included).
    pub seconds: f64,
}

impl Measure {
    /// The measures of features `f`.
    pub fn of(encoder: &str, f: &Features, num_classes: usize, k: usize, t0: Instant) -> Result<Self> {
        Ok(Self {
            encoder: encoder.to_string(),
            knn: knn_loo(&f.x, &f.y, num_classes, k)?,
            rankme: rankme(&f.x)?,
            spread: spread(&f.x)?,
            seconds: t0.elapsed().as_secs_f64(),
        })
    }

    /// The `monitor.csv` row of this measure at `epoch` (0 = before training) and `step`.
    pub fn csv_row(&self, epoch: usize, step: usize) -> String {
        format!("{step},{epoch},{},{:.2},{:.3},{:.4},{:.2}", self.encoder, self.knn, self.rankme, self.spread, self.seconds)
    }

    /// A few words for the epoch line: `target kNN 71.3% rank 38.2 spread 0.412`.
    pub fn summary(&self) -> String {
        format!("{} kNN {:.1}% rank {:.1} spread {:.3}", self.encoder, self.knn, self.rankme, self.spread)
    }

    /// The "not learning" warning: after some training, held-out kNN no more than
    /// [`STALL_MARGIN`] points above `knn0`, the same encoder's at epoch 0 (its random
    /// initialisation). It catches what the floors of [`Measure::collapse_warning`] cannot: a
    /// run whose loss falls while its features stay as (un)informative as the initial ones
    /// (facebookresearch/ijepa#55), e.g. at a learning rate too high for the batch.
    pub fn stall_warning(&self, knn0: f64, levers: &Levers) -> Option<String> {
        // (at a random initialisation that already scores within the margin of 100%, no run
        // can show more: said so, not called not learning)
        if knn0 + STALL_MARGIN >= 100.0 && self.knn <= knn0 + STALL_MARGIN {
            return Some(format!(
                "{}'s held-out kNN cannot show learning on these images: {:.1}% at its initialisation (epoch 0), {:.1}% now; the monitor's kNN cannot tell a learning run from one that is not here (its rank and spread still can)",
                self.who(),
                knn0,
                self.knn
            ));
        }
        (self.knn <= knn0 + STALL_MARGIN).then(|| {
            format!(
                "{} is not learning: held-out kNN {:.1}% against {:.1}% at its initialisation \
                 (epoch 0), effective rank {:.1}; a falling loss alone does not show learning (see \
                 facebookresearch/ijepa#55): {}",
                self.who(), self.knn, knn0, self.rankme, advice(levers, self.masked(), self.is_ema_target())
            )
        })
    }

    /// Whether this is the EMA target itself (I-JEPA's target encoder, DINO's teacher).
    pub(crate) fn is_ema_target(&self) -> bool {
        matches!(self.encoder.as_str(), "target" | "teacher")
    }

    /// Whether this encoder's recipe masks patches (DINO's teacher and student see crops).
    fn masked(&self) -> bool {
        !matches!(self.encoder.as_str(), "teacher" | "student")
    }

    /// [`who`] of this measure's encoder.
    fn who(&self) -> String {
        who(&self.encoder)
    }

    /// The collapse warning for these measures under `cfg`'s floors, if any floor is crossed.
    pub fn collapse_warning(&self, cfg: &MonitorConfig, levers: &Levers) -> Option<String> {
        let mut why = Vec::new();
        if self.rankme < cfg.rank_floor {
            why.push(format!("effective rank {:.2} < rank-floor {}", self.rankme, cfg.rank_floor));
        }
        if self.spread < cfg.spread_floor {
            why.push(format!("feature spread {:.4} < spread-floor {}", self.spread, cfg.spread_floor));
        }
        (!why.is_empty()).then(|| {
            format!(
                "{}'s features are collapsing ({}): the loss can still fall while every image maps \
                 to nearly the same feature; {}",
                self.who(),
                why.join(", "),
                advice(levers, self.masked(), self.is_ema_target())
            )
        })
    }
}

/// "the target encoder", or "the encoder" for a recipe's one encoder (named `encoder`).
fn who(encoder: &str) -> String {
    if encoder == "encoder" {
        "the encoder".into()
    } else {
        format!("the {encoder} encoder")
    }
}

/// What a run's settings leave a monitor's warning to advise.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Levers {
    /// The run has an EMA target: I-JEPA's target encoder, DINO's teacher (not MAE, nor
    /// I-JEPA's `target "pixels"`).
    pub ema: bool,
    /// That target's momentum is 1 throughout ([`ijepa_dsl::recipes::frozen_teacher`]): it
    /// never moves, and "raise the momentum" was advised of it.
    pub ema_frozen: bool,
    /// The learning rate is 0 throughout ([`ijepa_dsl::recipes::still_weights`]): no weight
    /// moves, and "lower the learning rate" was advised of it.
    pub lr_zero: bool,
}

impl Levers {
    /// What `exp`'s settings rule out (`ema` is the measured encoders' to say).
    pub fn of(exp: &ijepa_dsl::config::Experiment) -> Self {
        Self { ema: false, ema_frozen: ijepa_dsl::recipes::frozen_teacher(exp).is_some(), lr_zero: ijepa_dsl::recipes::still_weights(exp).is_some() }
    }
}

/// What a monitor's warning advises: the momentum of an EMA target only where the run has one;
/// neither a lower learning rate where it is 0 throughout, nor a higher momentum where it is 1
/// throughout (each the cause itself, said as such, of the EMA target (`target`); of the other
/// encoders it is said beside the rest). (`masked`: the recipe masks patches; DINO's views are
/// crops alone, and were told to check its masks)
fn advice(levers: &Levers, masked: bool, target: bool) -> String {
    if levers.lr_zero {
        return "the learning rate is 0 throughout (`lr peak=0 final=0`): no weight moves; give it a peak above 0".into();
    }
    let check = if masked { "check the masks (or crops)" } else { "check the crops" };
    let setting = if masked { "I-JEPA's `ema`, DINO's `momentum-teacher`" } else { "DINO's `momentum-teacher`" };
    let frozen = if masked { "`ema start=1 final=1`" } else { "`momentum-teacher 1`" };
    match (levers.ema, levers.ema_frozen) {
        // (only I-JEPA's and DINO's are said to be: the one masks, the other crops)
        (true, true) if !target => format!(
            "lower the learning rate, or {check} (the EMA target, at momentum 1 throughout ({frozen}), never moves: its targets are its initialisation's)"
        ),
        (true, true) => format!(
            "the momentum of the EMA target is 1 throughout ({frozen}): the target never moves from its initialisation; lower {} (official 0.996)",
            if masked { "its start" } else { "it" }
        ),
        (true, false) => format!("lower the learning rate, {check}, or raise the momentum of the EMA target ({setting})"),
        (false, _) => "lower the learning rate, or check the masks (or crops)".into(),
    }
}

/// What the monitor's epoch-0 rows (`rows`) add to a collapse warning of `ms` under `cfg`'s
/// floors: where the held-out images themselves (the pixels) are below a floor, the data is
/// the first suspect (constant images were told to lower the learning rate); where the
/// encoder was below it at its initialisation, it has not fallen there. Empty otherwise.
pub fn collapse_context(ms: &Measure, rows: &[ijepa_schema::MonitorRow], cfg: &MonitorConfig) -> String {
    let at0 = |encoder: &str| rows.iter().find(|r| r.epoch == 0 && r.encoder == encoder);
    let below = |r: &ijepa_schema::MonitorRow| r.rankme < cfg.rank_floor || r.spread < cfg.spread_floor;
    if let Some(px) = at0("pixels").filter(|r| below(r)) {
        return format!(
            "; the held-out images themselves are below the floors (the pixels: effective rank {:.2}, spread {:.4}): look at the data (constant or near-identical images?), or at the floors (`monitor rank-floor=` and `spread-floor=`)",
            px.rankme, px.spread
        );
    }
    match at0(&ms.encoder).filter(|r| below(r)) {
        Some(r) => format!(
            " (it was below them at its initialisation, epoch 0: effective rank {:.2}, spread {:.4}; the floors may not fit this encoder and data: `monitor rank-floor=` and `spread-floor=`)",
            r.rankme, r.spread
        ),
        None => String::new(),
    }
}

/// Held-out kNN points above its epoch-0 value an encoder must gain to count as learning
/// (see [`Measure::stall_warning`]).
pub const STALL_MARGIN: f64 = 2.0;

/// The rows of a `monitor.csv` (none when the file is absent or unreadable).
pub fn read_rows(path: &std::path::Path) -> Vec<ijepa_schema::MonitorRow> {
    ijepa_schema::read_text(path).ok().and_then(|t| ijepa_schema::MonitorRow::parse_csv(&t).ok()).unwrap_or_default()
}

/// The held-out kNN (%) of `encoder` at epoch 0 among a `monitor.csv`'s rows (the first row of
/// that encoder at epoch 0), if any.
pub fn epoch0_knn(rows: &[ijepa_schema::MonitorRow], encoder: &str) -> Option<f64> {
    rows.iter().find(|r| r.epoch == 0 && r.encoder == encoder).map(|r| r.knn_top1)
}

/// The monitor of a run: its held-out images, transform and settings.
pub struct Monitor {
    /// Settings.
    pub cfg: MonitorConfig,
    /// What the run's settings leave its warnings to advise.
    pub levers: Levers,
    held: Arc<dyn Dataset>,
    transform: EvalTransform,
}

impl Monitor {
    /// A monitor over the held-out images `held`, seen through `transform` (the evaluation's),
    /// whose warnings advise within `levers`.
    pub fn new(cfg: MonitorConfig, levers: Levers, held: Arc<dyn Dataset>, transform: EvalTransform) -> Self {
        Self { cfg, levers, held, transform }
    }

    /// The same measures on the normalised pixels themselves (encoder name `pixels`): the
    /// baseline the encoders' features should beat.
    pub fn measure_pixels(&self) -> Result<Measure> {
        let t0 = Instant::now();
        let f = features::raw_pixels(self.held.as_ref(), &self.transform, 256)?;
        Measure::of("pixels", &f, self.held.num_classes(), self.cfg.k, t0)
    }

    /// Measures each `(name, encoder)` (frozen; no gradients) on `device`.
    pub fn measure(&self, encoders: &[(&str, &VisionTransformer)], device: Device, bf16: bool) -> Result<Vec<Measure>> {
        let classes = self.held.num_classes();
        encoders
            .iter()
            .map(|(name, enc)| {
                let t0 = Instant::now();
                let f = features::extract(enc, self.held.as_ref(), &self.transform, FeatureKind::Last, 256, device, bf16)?;
                // weights gone non-finite, or so large that the forward overflows: training
                // diverged (RankMe's eigen-decomposition failed inside libtorch, and the run was
                // a failure that every rerun trained and failed again); the training loop
                // fills in the step
                if !crate::model::all_finite(&f.x)? {
                    return Err(Error::Diverged {
                        what: format!("{}'s features of the monitor's held-out images are not finite (NaN/Inf)", who(name)),
                        step: 0,
                        epoch: None,
                        last_good: None,
                    });
                }
                Measure::of(name, &f, classes, self.cfg.k, t0)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn randn(shape: &[i64], seed: i64) -> Tensor {
        tch::manual_seed(seed);
        Tensor::randn(shape, (Kind::Float, Device::Cpu))
    }

    /// A run with an EMA target whose schedules move.
    const EMA: Levers = Levers { ema: true, ema_frozen: false, lr_zero: false };

    #[test]
    fn rankme_recovers_a_known_rank() {
        // rank 5 in 64 dimensions: 2000 samples of a random 5-dimensional subspace
        let x = randn(&[2000, 5], 1).matmul(&randn(&[5, 64], 2));
        let r = rankme(&x).unwrap();
        assert!((4.0..=5.05).contains(&r), "rank-5 features gave RankMe {r}");
        // isotropic 64-dimensional features use (nearly) all dimensions
        let r = rankme(&randn(&[2000, 64], 3)).unwrap();
        assert!(r > 60.0, "isotropic features gave RankMe {r}");
        // identical rows: rank 1
        let r = rankme(&Tensor::ones([500, 64], (Kind::Float, Device::Cpu))).unwrap();
        assert!((r - 1.0).abs() < 0.01, "constant features gave RankMe {r}");
        assert_eq!(rankme(&Tensor::zeros([10, 4], (Kind::Float, Device::Cpu))).unwrap(), 0.0);
        // wider than tall (the pixels of a large crop): the N x N Gram matrix gives the same
        // spectrum as the transposed features, and a width whose D x D Gram matrix would need
        // 181 GB (150,528: 224 x 224 x 3) is measured in memory the size of the features
        let x = randn(&[300, 5], 5).matmul(&randn(&[5, 700], 6));
        let (wide, tall) = (rankme(&x).unwrap(), rankme(&x.tr().contiguous()).unwrap());
        assert!((wide - tall).abs() < 1e-3 * tall && (4.0..=5.05).contains(&wide), "{wide} vs {tall}");
        let r = rankme(&randn(&[8, 150_528], 7)).unwrap();
        assert!((7.0..=8.0).contains(&r), "8 random rows of 224 px pixels: {r}");
    }

    #[test]
    fn spread_is_one_for_isotropic_and_zero_for_constant() {
        let s = spread(&randn(&[4000, 64], 4)).unwrap();
        assert!((0.9..1.1).contains(&s), "isotropic spread {s}");
        let s = spread(&(Tensor::ones([100, 64], (Kind::Float, Device::Cpu)) * 3.0)).unwrap();
        assert!(s < 1e-6, "constant spread {s}");
    }

    /// Ten well-separated Gaussian blobs in 32 dimensions, 50 points each.
    fn blobs() -> (Tensor, Vec<i64>) {
        let centres = randn(&[10, 32], 5) * 10.0;
        let y: Vec<i64> = (0..500).map(|i| i % 10).collect();
        let idx = Tensor::from_slice(&y);
        let x = centres.index_select(0, &idx) + randn(&[500, 32], 6);
        (x, y)
    }

    #[test]
    fn knn_separates_blobs_and_is_at_chance_on_shuffled_labels() {
        let (x, y) = blobs();
        let acc = knn_loo(&x, &y, 10, 20).unwrap();
        assert!(acc > 99.0, "separable blobs: {acc}%");
        // labels shuffled independently of the features: chance is 10%
        let mut rng = crate::rng::Rng::from_key(&[7]);
        let perm = rng.permutation(y.len());
        let shuffled: Vec<i64> = perm.iter().map(|&i| y[i]).collect();
        let acc = knn_loo(&x, &shuffled, 10, 20).unwrap();
        assert!((2.0..20.0).contains(&acc), "shuffled labels: {acc}%");
        // a point is never its own neighbour: with k = 1 and each point alone in its class,
        // nothing can be right
        let lone: Vec<i64> = (0..10).collect();
        let x10 = randn(&[10, 4], 8);
        assert_eq!(knn_loo(&x10, &lone, 10, 1).unwrap(), 0.0);
        assert!(knn_loo(&x10, &lone, 10, 10).is_err(), "k must be below the count");
        assert!(knn_loo(&x10, &lone, 5, 1).is_err(), "labels out of range");
    }

    /// A collapse warning says what epoch 0 said: the held-out images themselves below the
    /// floors (constant images were told to lower the learning rate), or the encoder below them
    /// since its initialisation; DINO's encoders are not told to check masks it has none of.
    #[test]
    fn a_collapse_warning_says_what_epoch_0_measured() {
        let cfg = MonitorConfig::default();
        let row = |encoder: &str, rankme: f64, spread: f64| ijepa_schema::MonitorRow { step: 0, epoch: 0, encoder: encoder.into(), knn_top1: 10.0, rankme, spread };
        let now = Measure { encoder: "target".into(), knn: 10.0, rankme: 1.0, spread: 0.0, seconds: 0.0 };
        let c = collapse_context(&now, &[row("target", 1.0, 0.0), row("pixels", 1.0, 0.0)], &cfg);
        assert!(c.contains("the held-out images themselves are below the floors") && c.contains("look at the data (constant"), "{c}");
        let c = collapse_context(&now, &[row("target", 1.5, 0.01), row("pixels", 20.0, 0.5)], &cfg);
        assert!(c.contains("below them at its initialisation, epoch 0: effective rank 1.50"), "{c}");
        assert_eq!(collapse_context(&now, &[row("target", 30.0, 0.5), row("pixels", 20.0, 0.5)], &cfg), "");
        let teacher = Measure { encoder: "teacher".into(), ..now };
        let w = teacher.collapse_warning(&cfg, &EMA).unwrap();
        assert!(w.contains("check the crops") && !w.contains("masks"), "{w}");
    }

    #[test]
    fn collapse_warning_fires_on_constant_features_only() {
        let cfg = MonitorConfig::default();
        let t0 = Instant::now();
        let y: Vec<i64> = (0..400).map(|i| i % 10).collect();
        let constant = Features { x: Tensor::ones([400, 64], (Kind::Float, Device::Cpu)), y: y.clone() };
        let m = Measure::of("target", &constant, 10, 20, t0).unwrap();
        let w = m.collapse_warning(&cfg, &EMA).expect("constant features collapse");
        assert!(w.contains("target") && w.contains("effective rank") && w.contains("spread"), "{w}");
        let iso = Features { x: randn(&[400, 64], 9), y };
        let m = Measure::of("target", &iso, 10, 20, t0).unwrap();
        assert!(m.collapse_warning(&cfg, &EMA).is_none(), "isotropic features: {m:?}");
    }

    #[test]
    fn stall_warning_compares_with_epoch_zero_read_from_the_file() {
        let dir = crate::testdir::scratch("monitor", "stall");
        let path = dir.join("monitor.csv");
        // the rows of a run whose loss fell while its features stayed at their initial level
        std::fs::write(
            &path,
            format!("{MONITOR_HEADER}\n0,0,target,42.60,3.037,0.1392,2.37\n0,0,context,41.00,3.0,0.14,2.2\n0,0,pixels,76.20,296.6,0.70,0.71\n1124,4,target,40.70,3.3,0.17,1.76\n"),
        )
        .unwrap();
        let rows = read_rows(&path);
        assert_eq!(epoch0_knn(&rows, "target"), Some(42.6));
        assert_eq!(epoch0_knn(&rows, "context"), Some(41.0));
        assert_eq!(epoch0_knn(&rows, "predictor"), None);
        assert_eq!(epoch0_knn(&read_rows(&dir.join("absent.csv")), "target"), None);
        let at = |knn: f64| Measure { encoder: "target".into(), knn, rankme: 3.3, spread: 0.17, seconds: 1.0 };
        let w = at(40.7).stall_warning(42.6, &EMA).expect("no better than at initialisation");
        assert!(w.starts_with("the target encoder is not learning") && w.contains("40.7%") && w.contains("42.6%"), "{w}");
        // a recipe's one encoder (MAE's) is "the encoder", not "the encoder encoder"
        let one = Measure { encoder: "encoder".into(), ..at(40.7) };
        assert!(one.stall_warning(42.6, &Levers::default()).unwrap().starts_with("the encoder is not learning"));
        // the momentum is advised only where the run has an EMA target (not MAE's one encoder)
        assert!(w.contains("raise the momentum of the EMA target") && !one.stall_warning(42.6, &Levers::default()).unwrap().contains("momentum"), "{w}");
        assert!(at(44.6).stall_warning(42.6, &EMA).is_some(), "within the margin");
        assert!(at(54.7).stall_warning(42.6, &EMA).is_none(), "a learning run: 54.7 vs 42.6");
        // (an initialisation at the ceiling is not called not learning)
        let w = at(100.0).stall_warning(100.0, &EMA).unwrap();
        assert!(w.starts_with("the target encoder's held-out kNN cannot show learning") && !w.contains("not learning"), "{w}");
    }

    #[test]
    fn the_advice_does_not_ask_for_what_the_settings_rule_out() {
        // a momentum of 1 throughout was told to be raised, a learning rate of 0 to be lowered
        let m = Measure { encoder: "target".into(), knn: 40.7, rankme: 3.3, spread: 0.17, seconds: 1.0 };
        let frozen = m.stall_warning(42.6, &Levers { ema_frozen: true, ..EMA }).unwrap();
        assert!(frozen.contains("1 throughout (`ema start=1 final=1`): the target never moves") && !frozen.contains("raise"), "{frozen}");
        let teacher = Measure { encoder: "teacher".into(), ..m.clone() };
        let w = teacher.stall_warning(42.6, &Levers { ema_frozen: true, ..EMA }).unwrap();
        assert!(w.contains("(`momentum-teacher 1`)") && w.contains("lower it (official 0.996)"), "{w}");
        // (of the other encoders, beside the rest: a context encoder has gradients of its own)
        let context = Measure { encoder: "context".into(), ..m.clone() };
        let w = context.stall_warning(42.6, &Levers { ema_frozen: true, ..EMA }).unwrap();
        assert!(w.contains("lower the learning rate, or check the masks (or crops) (the EMA target, at momentum 1 throughout") && !w.contains("raise"), "{w}");
        for levers in [Levers { lr_zero: true, ..EMA }, Levers { lr_zero: true, ..Levers::default() }] {
            let w = m.stall_warning(42.6, &levers).unwrap();
            assert!(w.contains("the learning rate is 0 throughout") && !w.contains("lower the learning rate"), "{w}");
        }
        // (a schedule that moves keeps the advice it had)
        assert!(m.stall_warning(42.6, &EMA).unwrap().contains("lower the learning rate, check the masks (or crops), or raise the momentum"));
    }
}
