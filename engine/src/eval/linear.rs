//! The linear probe on frozen features (I-JEPA paper, appendix A.2; design reference §6).
//!
//! Paper recipe (ImageNet): LARS, batch 16384, 50 epochs, learning rate divided by 10 every
//! 15 epochs, lr in {0.01, 0.05, 0.001}, weight decay in {5e-4, 0}; head Linear or
//! BatchNorm(no affine) + Linear, the best reported. Here, with the defaults of
//! [`LinearCfg`] scaled for small data (batch 256):
//!
//! - **Features** are used as given (no standardisation) for [`Head::Linear`]; for
//!   [`Head::BnLinear`] they pass through a parameter-free BatchNorm exactly like
//!   `torch.nn.BatchNorm1d(affine=False)`: batch statistics while training (a last batch of a
//!   single sample is skipped), running statistics (momentum 0.1, eps 1e-5, unbiased running
//!   variance) at evaluation.
//! - **Optimiser**: LARS as in the MAE/DeiT code the I-JEPA evaluations build on: for the
//!   weight matrix `d = grad + wd * w`, scaled by the trust ratio `trust * |w| / |d|` (1 when
//!   either norm is 0), into a momentum-0.9 buffer, `w -= lr * buf`. The bias is excluded from
//!   the trust ratio and from weight decay (plain SGD with momentum). Weights and bias start
//!   at zero (deterministic). The learning rate is `lr / 10^(epoch / decay_every)`.
//!   The trust coefficient ([`TRUST`]) is 1.0, not LARS's customary 0.001: the customary value
//!   goes with learning rates ~100x larger (`base_lr * batch / 256` at batch 16384), while at
//!   the paper's lr grid and small batches it leaves the probe far from converged after 50
//!   epochs (raw Fashion-MNIST pixels, 2000 train images: 61% test top-1 against 82%).
//!   With coefficient 1, `lr` is the relative step size of the weights.
//! - **Selection**: each lr x wd combination is trained on the train split minus a held-out
//!   fraction (stratified per class, seeded) and scored (top-1) on the held-out part; the first
//!   best combination is retrained on the whole train split and scored on the test split,
//!   with the test top-1 recorded after every epoch.
//! - Gradients are computed in closed form (softmax cross-entropy of a linear map of frozen
//!   inputs), so no autograd graph is built.

use super::{best_of, check_pair, stratified_split, Features, ProbeResult, Sweep};
use crate::error::{Error, Result};
use crate::rng::{Rng, Stream};
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

/// The probe's head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Head {
    /// A linear layer on the raw features.
    Linear,
    /// BatchNorm without affine parameters, then a linear layer.
    BnLinear,
}

/// Linear-probe configuration (see the module docs for the protocol).
#[derive(Debug, Clone, PartialEq)]
pub struct LinearCfg {
    /// Training epochs (paper: 50).
    pub epochs: usize,
    /// The learning rate is divided by 10 every this many epochs (paper: 15).
    pub decay_every: usize,
    /// Mini-batch size (paper: 16384 on ImageNet; default 256).
    pub batch: usize,
    /// Learning rates of the grid (paper: 0.01, 0.05, 0.001).
    pub lrs: Vec<f64>,
    /// Weight decays of the grid (paper: 5e-4, 0).
    pub wds: Vec<f64>,
    /// Fraction of each class of the train split held out to choose lr and wd.
    pub heldout: f64,
    /// The head.
    pub head: Head,
    /// Seed of the held-out split and of the epoch shuffles.
    pub seed: u64,
    /// Labels are few by design (a low-shot probe): a choice on few held-out images a class
    /// is what the protocol gives, not said; a grid whose points all tie still is.
    pub few_labels: bool,
}

/// LARS momentum.
pub const MOMENTUM: f64 = 0.9;
/// LARS trust coefficient (see the module docs for why 1 and not 0.001).
pub const TRUST: f64 = 1.0;

impl Default for LinearCfg {
    fn default() -> Self {
        Self {
            epochs: 50,
            decay_every: 15,
            batch: 256,
            lrs: vec![0.01, 0.05, 0.001],
            wds: vec![5e-4, 0.0],
            heldout: 0.1,
            head: Head::Linear,
            seed: 0,
            few_labels: false,
        }
    }
}

impl LinearCfg {
    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(format!("linear probe: {m}")));
        if self.epochs == 0 || self.decay_every == 0 || self.batch == 0 {
            return bad(format!(
                "epochs ({}), decay_every ({}) and batch ({}) must be positive",
                self.epochs, self.decay_every, self.batch
            ));
        }
        if self.lrs.is_empty() || self.wds.is_empty() {
            return bad("the lr and weight-decay grids must not be empty".into());
        }
        // a BatchNorm head skips batches of one image (no batch statistics): it would never
        // train, and its zero weights would score as a result
        if self.head == Head::BnLinear && self.batch < 2 {
            return bad("a bn-linear head needs batches of at least 2 images (it takes no step on a batch of one)".into());
        }
        if let Some(lr) = self.lrs.iter().find(|l| !(l.is_finite() && **l > 0.0)) {
            return bad(format!("learning rate {lr} must be positive"));
        }
        if let Some(wd) = self.wds.iter().find(|w| !(w.is_finite() && **w >= 0.0)) {
            return bad(format!("weight decay {wd} must be >= 0"));
        }
        if !(self.heldout.is_finite() && (0.0..1.0).contains(&self.heldout)) {
            return bad(format!("held-out fraction {} must be in [0, 1)", self.heldout));
        }
        Ok(())
    }
}

/// BatchNorm1d(affine=False) defaults.
const BN_MOMENTUM: f64 = 0.1;
const BN_EPS: f64 = 1e-5;
/// Tag of the linear probe's shuffles in the [`Stream::Shuffle`] key.
const LINEAR_TAG: u64 = 0x4c49_4e45; // "LINE"

/// A trained head.
struct Model {
    w: Tensor,
    b: Tensor,
    /// Running mean and variance of the BatchNorm head.
    bn: Option<(Tensor, Tensor)>,
}

impl Model {
    fn logits(&self, x: &Tensor) -> Tensor {
        let x = match &self.bn {
            Some((mean, var)) => (x - mean) / (var + BN_EPS).sqrt(),
            None => x.shallow_clone(),
        };
        x.matmul(&self.w.tr()) + &self.b
    }

    fn is_finite(&self) -> bool {
        let ok = |t: &Tensor| t.isfinite().all().int64_value(&[]) == 1;
        ok(&self.w) && ok(&self.b) && self.bn.as_ref().is_none_or(|(m, v)| ok(m) && ok(v))
    }
}

/// Trains a head on `(x, y)` with one lr/wd point; when `eval` is given, records its top-1
/// after every epoch. `run` keys the shuffles. A stop request (SIGINT/SIGTERM) ends it
/// between epochs with [`Error::Interrupted`].
fn train(
    x: &Tensor,
    y: &Tensor,
    num_classes: usize,
    (lr, wd): (f64, f64),
    cfg: &LinearCfg,
    run: u64,
    eval: Option<(&Tensor, &Tensor)>,
) -> Result<(Model, Vec<(usize, f64)>)> {
    let (n, f) = (x.size()[0], x.size()[1]);
    let c = num_classes as i64;
    let opts = (Kind::Float, Device::Cpu);
    let mut m = Model {
        w: Tensor::zeros([c, f], opts),
        b: Tensor::zeros([c], opts),
        bn: (cfg.head == Head::BnLinear).then(|| (Tensor::zeros([f], opts), Tensor::ones([f], opts))),
    };
    let (mut mu_w, mut mu_b) = (Tensor::zeros([c, f], opts), Tensor::zeros([c], opts));
    let mut curve = Vec::new();
    for epoch in 0..cfg.epochs {
        crate::interrupt::check()?;
        let lr_e = lr * 0.1f64.powi((epoch / cfg.decay_every) as i32);
        let perm = Rng::derive(cfg.seed, Stream::Shuffle, &[LINEAR_TAG, run, epoch as u64]).permutation(n as usize);
        for chunk in perm.chunks(cfg.batch) {
            let bsz = chunk.len() as i64;
            if m.bn.is_some() && bsz < 2 {
                continue; // BatchNorm needs two samples for batch statistics
            }
            let idx = Tensor::from_slice(&chunk.iter().map(|&i| i as i64).collect::<Vec<_>>());
            let mut xb = x.index_select(0, &idx);
            let yb = y.index_select(0, &idx);
            if let Some((rm, rv)) = &mut m.bn {
                let mean = xb.mean_dim(0, false, Kind::Float);
                let var = xb.var_dim(0, false, false);
                let unbiased = &var * (bsz as f64 / (bsz - 1) as f64);
                *rm = &*rm * (1.0 - BN_MOMENTUM) + mean.shallow_clone() * BN_MOMENTUM;
                *rv = &*rv * (1.0 - BN_MOMENTUM) + unbiased * BN_MOMENTUM;
                xb = (xb - mean) / (var + BN_EPS).sqrt();
            }
            let logits = xb.matmul(&m.w.tr()) + &m.b;
            let g = (logits.softmax(1, Kind::Float) - yb.one_hot(c).to_kind(Kind::Float)) / bsz as f64;
            let gw = g.tr().matmul(&xb);
            let gb = g.sum_dim_intlist(0, false, Kind::Float);
            // LARS on the weight matrix: weight decay, then the layer-wise trust ratio
            let d = gw + &m.w * wd;
            let (pn, un) = (m.w.norm().double_value(&[]), d.norm().double_value(&[]));
            let q = if pn > 0.0 && un > 0.0 { TRUST * pn / un } else { 1.0 };
            mu_w = mu_w * MOMENTUM + d * q;
            mu_b = mu_b * MOMENTUM + gb;
            m.w = &m.w - &mu_w * lr_e;
            m.b = &m.b - &mu_b * lr_e;
        }
        if let Some((xt, yt)) = eval {
            curve.push((epoch + 1, super::top1(&m.logits(xt), yt)));
        }
    }
    Ok((m, curve))
}

/// The grid search of [`linear_probe`] alone: every lr x wd point trained on the training part
/// of `train` and scored on its held-out part (in grid order), and the chosen point `(lr, wd)`
/// (the first best; the only point when there is no held-out part). The test split is not read:
/// a probe choosing among feature sets runs this on each and retrains only the winner.
///
/// Errors: as [`linear_probe`], less the final run's.
pub fn linear_sweep(train_f: &Features, num_classes: usize, cfg: &LinearCfg) -> Result<(Sweep, (f64, f64))> {
    cfg.validate()?;
    super::check_train(train_f, num_classes)?;
    let x = train_f.x.to_kind(Kind::Float).to_device(Device::Cpu);
    let y = super::labels(&train_f.y);
    let grid: Vec<(f64, f64)> = cfg.lrs.iter().flat_map(|&lr| cfg.wds.iter().map(move |&wd| (lr, wd))).collect();
    let (tr_idx, held_idx) = stratified_split(&train_f.y, num_classes, cfg.heldout, cfg.seed);
    let mut sweep = Vec::new();
    if !held_idx.is_empty() {
        let sel = |t: &Tensor, idx: &[usize]| t.index_select(0, &Tensor::from_slice(&idx.iter().map(|&i| i as i64).collect::<Vec<_>>()));
        let (xa, ya) = (sel(&x, &tr_idx), sel(&y, &tr_idx));
        let (xh, yh) = (sel(&x, &held_idx), sel(&y, &held_idx));
        for (run, &(lr, wd)) in grid.iter().enumerate() {
            let (m, _) = train(&xa, &ya, num_classes, (lr, wd), cfg, run as u64, None)?;
            let score = if m.is_finite() { super::top1(&m.logits(&xh), &yh) } else { f64::NAN };
            tracing::debug!(lr, wd, score, "linear probe held-out");
            sweep.push((params(lr, wd), score));
        }
    } else if grid.len() > 1 {
        return Err(Error::Config(format!(
            "linear probe: held-out fraction {} leaves no held-out sample to choose among {} lr/wd points {}",
            cfg.heldout,
            grid.len(),
            super::why_none_held_out(&train_f.y, num_classes, cfg.heldout)
        )));
    }
    let point = match best_of(&sweep) {
        Some(i) => grid[i],
        None if sweep.is_empty() => grid[0],
        None => return Err(Error::Train("linear probe: every lr/wd point diverged".into())),
    };
    if let Some(why) = thin_choice(&sweep, (tr_idx.len(), held_idx.len()), num_classes, cfg.few_labels) {
        tracing::warn!("linear probe: lr {} and wd {} {why}", point.0, point.1);
    }
    Ok((sweep, point))
}

/// Why a grid's choice on `held` held-out images of `num_classes` classes, its points fitted on
/// `fitted` others, means little, if it does: fewer than 10 images a class (a score moves in
/// steps of `100 / held` points: one image chose among the points; not said with
/// `few_labels`, where that is the protocol), or every point scored alike (the first is kept).
/// What would help is a larger held-out part, or a smaller one where the points were fitted on
/// fewer images than it holds (`held-out 0.99` was advised to grow).
fn thin_choice(sweep: &Sweep, (fitted, held): (usize, usize), num_classes: usize, few_labels: bool) -> Option<String> {
    if sweep.len() < 2 {
        return None;
    }
    let advice = super::held_out_advice(fitted, held);
    // (a diverged point, NaN, is no score)
    let scores: Vec<f64> = sweep.iter().map(|(_, s)| *s).filter(|s| !s.is_nan()).collect();
    if scores.len() > 1 && scores.iter().all(|s| *s == scores[0]) {
        return Some(format!(
            "are kept without evidence: every point scored {:.2}% on the {held} held-out image(s); {advice}",
            scores[0]
        ));
    }
    (!few_labels && held < 10 * num_classes).then(|| {
        format!(
            "were chosen on {held} held-out image(s), {:.1} a class (a score moves in steps of {:.1} points): {advice}",
            held as f64 / num_classes.max(1) as f64,
            100.0 / held as f64
        )
    })
}

/// The recorded form of an lr x wd point.
pub(crate) fn params(lr: f64, wd: f64) -> BTreeMap<String, f64> {
    BTreeMap::from([("lr".to_string(), lr), ("wd".to_string(), wd)])
}

/// The linear probe: grid search of lr x wd on a held-out part of `train` ([`linear_sweep`]),
/// retraining of the best on all of `train`, top-1 on `test` (see the module docs).
///
/// Errors: an invalid configuration, malformed features, or a grid of more than one point
/// with no held-out sample (fraction 0 or one sample per class); [`Error::Train`] when the
/// final run diverges.
pub fn linear_probe(train_f: &Features, test_f: &Features, num_classes: usize, cfg: &LinearCfg) -> Result<ProbeResult> {
    cfg.validate()?;
    check_pair(train_f, test_f, num_classes)?;
    let (sweep, (lr, wd)) = linear_sweep(train_f, num_classes, cfg)?;
    let x = train_f.x.to_kind(Kind::Float).to_device(Device::Cpu);
    let xt = test_f.x.to_kind(Kind::Float).to_device(Device::Cpu);
    let (y, yt) = (super::labels(&train_f.y), super::labels(&test_f.y));
    let (m, curve) = train(&x, &y, num_classes, (lr, wd), cfg, u64::MAX, Some((&xt, &yt)))?;
    if !m.is_finite() {
        return Err(Error::Train(format!("linear probe diverged at lr {lr}, wd {wd}")));
    }
    if let Some(why) = below_chance(&m, (&x, &y), num_classes, (lr, wd), !sweep.is_empty()) {
        tracing::warn!("{why}");
    }
    let top1 = super::top1(&m.logits(&xt), &yt);
    Ok(ProbeResult { sweep, chosen: params(lr, wd), top1, curve })
}

/// Why the head `m`, trained at `(lr, wd)`, is no probe of its features, if it is not: it ends
/// below chance on its own training images `(x, y)`. Once features of large margins are fitted
/// (their gradient vanishes), LARS's trust ratio scales the weight decay's pull on the weights
/// to `lr` times their norm, whatever `wd`, and its momentum turns them around: a probe scored
/// 0.00% on separable images at the grid's own lr 0.05 and wd 5e-4. `chosen`: a grid chose the
/// point on its held-out part (which then scored it best: its advice is not to choose).
fn below_chance(m: &Model, (x, y): (&Tensor, &Tensor), num_classes: usize, (lr, wd): (f64, f64), chosen: bool) -> Option<String> {
    let fit = super::top1(&m.logits(x), y);
    let chance = 100.0 / num_classes.max(1) as f64;
    (wd > 0.0 && fit < chance).then(|| {
        let fix = if chosen { "a lower `lr` or `weight-decay 0` avoids it" } else { "a lower `lr`, `weight-decay 0`, or a grid of several points chosen on a held-out part avoids it" };
        format!(
            "linear probe: at lr {lr} and wd {wd} it ends at {fit:.2}% on its own training images, below chance ({chance:.2}%): likely, once the features were fitted, LARS's trust ratio gave the weight decay a pull of lr times the weights' norm and its momentum turned them around; its score then measures that, not the features ({fix})"
        )
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `per_class` Gaussian samples around `classes` random centres of norm ~`sep` in `dim`
    /// dimensions (unit noise), and their labels; deterministic in `seed`.
    pub(crate) fn blobs(classes: usize, per_class: usize, dim: usize, sep: f64, seed: u64) -> Features {
        let mut r = Rng::from_key(&[seed, 77]);
        let mut gauss = move || {
            let (u, v) = (r.uniform().max(1e-300), r.uniform());
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        };
        let mut centre_rng = Rng::from_key(&[1234]);
        let centres: Vec<Vec<f64>> = (0..classes)
            .map(|_| (0..dim).map(|_| (centre_rng.uniform() * 2.0 - 1.0) * sep * (3.0 / dim as f64).sqrt()).collect())
            .collect();
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..classes * per_class {
            let c = i % classes;
            x.extend(centres[c].iter().map(|m| (m + gauss()) as f32));
            y.push(c as i64);
        }
        Features { x: Tensor::from_slice(&x).view([(classes * per_class) as i64, dim as i64]), y }
    }

    /// The labels of `f` permuted by `seed`.
    pub(crate) fn shuffled(f: &Features, seed: u64) -> Features {
        let p = Rng::from_key(&[seed, 5]).permutation(f.len());
        Features { x: f.x.shallow_clone(), y: p.into_iter().map(|i| f.y[i]).collect() }
    }

    fn small_cfg(head: Head) -> LinearCfg {
        LinearCfg { epochs: 20, decay_every: 8, batch: 64, head, ..LinearCfg::default() }
    }

    #[test]
    fn separable_blobs_are_learned_with_both_heads() {
        let (tr, te) = (blobs(5, 60, 32, 8.0, 1), blobs(5, 40, 32, 8.0, 2));
        for head in [Head::Linear, Head::BnLinear] {
            let r = linear_probe(&tr, &te, 5, &small_cfg(head)).unwrap();
            assert!(r.top1 >= 98.0, "{head:?}: {r:?}");
            assert_eq!(r.sweep.len(), 6);
            assert_eq!(r.curve.len(), 20);
            assert_eq!(r.curve.last().unwrap().1, r.top1);
            assert!(r.chosen.contains_key("lr") && r.chosen.contains_key("wd"));
            // deterministic
            assert_eq!(linear_probe(&tr, &te, 5, &small_cfg(head)).unwrap(), r);
        }
    }

    /// Features of large margins, fitted, at the grid's lr 0.05 and wd 5e-4: the weight
    /// decay's pull turns the weights around and the probe ends below chance, which is said;
    /// not without weight decay, nor at the grid's lr 0.01.
    #[test]
    fn a_probe_turned_around_by_its_weight_decay_is_said() {
        let tr = blobs(10, 4, 32, 200.0, 1);
        let (x, y) = (tr.x.to_kind(Kind::Float), super::super::labels(&tr.y));
        let cfg = LinearCfg { heldout: 0.0, ..LinearCfg::default() };
        let fitted = |lr: f64, wd: f64| train(&x, &y, 10, (lr, wd), &cfg, u64::MAX, None).unwrap().0;
        let said = below_chance(&fitted(0.05, 5e-4), (&x, &y), 10, (0.05, 5e-4), false).expect("below chance");
        assert!(said.contains("at lr 0.05 and wd 0.0005 it ends at 0.00% on its own training images, below chance (10.00%)"), "{said}");
        assert!(said.contains("a grid of several points"), "{said}");
        // (a grid that chose the point is not advised to choose)
        let said = below_chance(&fitted(0.05, 5e-4), (&x, &y), 10, (0.05, 5e-4), true).expect("below chance");
        assert!(!said.contains("grid"), "{said}");
        assert_eq!(below_chance(&fitted(0.05, 0.0), (&x, &y), 10, (0.05, 0.0), false), None);
        assert_eq!(below_chance(&fitted(0.01, 5e-4), (&x, &y), 10, (0.01, 5e-4), false), None);
    }

    #[test]
    fn shuffled_labels_give_chance() {
        let (tr, te) = (blobs(5, 60, 32, 8.0, 1), blobs(5, 40, 32, 8.0, 2));
        let r = linear_probe(&shuffled(&tr, 1), &shuffled(&te, 2), 5, &small_cfg(Head::Linear)).unwrap();
        assert!(r.top1 < 100.0 / 5.0 + 15.0, "{r:?}");
    }

    #[test]
    fn bad_configs_are_refused() {
        let (tr, te) = (blobs(3, 10, 4, 8.0, 1), blobs(3, 5, 4, 8.0, 2));
        let bad = |cfg: LinearCfg| linear_probe(&tr, &te, 3, &cfg).is_err();
        assert!(bad(LinearCfg { epochs: 0, ..LinearCfg::default() }));
        assert!(bad(LinearCfg { lrs: vec![], ..LinearCfg::default() }));
        assert!(bad(LinearCfg { lrs: vec![-1.0], ..LinearCfg::default() }));
        assert!(bad(LinearCfg { heldout: 1.0, ..LinearCfg::default() }));
        // a choice on one held-out image, or among equal scores, is said to mean little
        let two = |a: f64, b: f64| vec![(params(0.1, 0.0), a), (params(0.01, 0.0), b)];
        assert!(thin_choice(&two(0.0, 100.0), (100, 1), 10, false).is_some_and(|w| w.contains("1 held-out image(s), 0.1 a class")));
        assert!(thin_choice(&two(50.0, 50.0), (50000, 5000), 10, false).is_some_and(|w| w.contains("without evidence")));
        let mut diverged_first = two(50.0, 50.0);
        diverged_first.insert(0, (params(1.0, 0.0), f64::NAN));
        assert!(thin_choice(&diverged_first, (50000, 5000), 10, false).is_some_and(|w| w.contains("without evidence")));
        assert_eq!(thin_choice(&two(80.0, 81.0), (1000, 100), 10, false), None);
        assert_eq!(thin_choice(&two(0.0, 100.0)[..1].to_vec(), (100, 1), 10, false), None, "no choice made");
        // a low-shot probe's few labels are its protocol: only a tie is said
        assert_eq!(thin_choice(&two(0.0, 100.0), (100, 1), 10, true), None);
        assert!(thin_choice(&two(50.0, 50.0), (20, 2), 10, true).is_some_and(|w| w.contains("without evidence")));
        // the advice fits the split: a held-out part larger than what the points were fitted on
        // is to shrink (`held-out 0.99` of 640 images was advised to grow)
        assert!(thin_choice(&two(10.0, 10.0), (10, 630), 10, false).is_some_and(|w| w.contains("a smaller `held-out`") && !w.contains("a larger")));
        assert!(thin_choice(&two(10.0, 10.0), (630, 10), 10, false).is_some_and(|w| w.contains("a larger `held-out`")));
        assert!(bad(LinearCfg { heldout: 0.0, ..LinearCfg::default() }), "grid without held-out data");
        // a BatchNorm head never steps on batches of one (it scored its zero weights' guess)
        assert!(bad(LinearCfg { batch: 1, head: Head::BnLinear, ..LinearCfg::default() }));
        assert!(!bad(LinearCfg { batch: 1, head: Head::Linear, epochs: 1, ..LinearCfg::default() }));
        // a single point needs no held-out data
        let one = LinearCfg { heldout: 0.0, lrs: vec![0.05], wds: vec![0.0], epochs: 5, ..LinearCfg::default() };
        let r = linear_probe(&tr, &te, 3, &one).unwrap();
        assert!(r.sweep.is_empty());
        assert_eq!(r.chosen["lr"], 0.05);
        assert!(linear_probe(&tr, &te, 2, &LinearCfg::default()).is_err(), "label 2 out of range");
    }
}
