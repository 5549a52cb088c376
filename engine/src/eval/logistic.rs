//! L2-regularised multinomial logistic regression on frozen features: the cheap, strong
//! low-shot protocol (design reference §6; the I-JEPA paper's appendix A.2 evaluates 1%
//! ImageNet labels with a linear probe, for which this is the convex, tuning-light variant,
//! as in the MSN/DINO low-shot evaluations with scikit-learn's `LogisticRegression`).
//!
//! - Features are standardised with the mean and standard deviation of the data the model is
//!   fitted on (a constant feature is only centred).
//! - The objective is `mean_i CE(W x_i + b, y_i) + lambda / 2 * |W|^2` with
//!   `lambda = 1 / (C * N)` — scikit-learn's `C * sum CE + |W|^2 / 2` divided by `C * N`;
//!   the bias is not regularised.
//! - It is minimised full-batch from zero by L-BFGS (history 10, Armijo backtracking line
//!   search, curvature pairs with `s.y <= 0` skipped) until the largest gradient entry is
//!   below `tol`, the loss stops decreasing, or `max_iter` iterations. The problem is strictly
//!   convex, so the optimum does not depend on the start.
//! - C is chosen from a grid by stratified k-fold cross-validation on the train set (pooled
//!   top-1 over the folds; default 3 folds, which suits low-shot sets of a few samples per
//!   class), or, with `folds < 2`, on a stratified held-out fraction as the linear probe
//!   does. The first best in grid order wins (list strong regularisation first to prefer it
//!   on ties); the model is then refitted on all train data.

use super::{best_of, by_class, check_pair, Features, ProbeResult, Sweep};
use crate::error::{Error, Result};
use crate::rng::{Rng, Stream};
use std::collections::BTreeMap;
use std::collections::VecDeque;
use tch::{Device, Kind, Tensor};

/// Logistic-regression configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticCfg {
    /// Inverse regularisation strengths to try (`lambda = 1 / (C * N)`).
    pub cs: Vec<f64>,
    /// Folds of the stratified cross-validation choosing C; below 2, C is chosen on a
    /// stratified held-out fraction `heldout` instead. Used only when `cs` has several.
    pub folds: usize,
    /// Held-out fraction per class choosing C when `folds < 2`.
    pub heldout: f64,
    /// L-BFGS iteration limit per fit.
    pub max_iter: usize,
    /// Convergence: largest absolute gradient entry.
    pub tol: f64,
    /// Seed of the fold assignment.
    pub seed: u64,
}

impl Default for LogisticCfg {
    fn default() -> Self {
        Self { cs: vec![0.01, 0.1, 1.0, 10.0], folds: 3, heldout: 0.1, max_iter: 500, tol: 1e-5, seed: 0 }
    }
}

/// Tag of the fold assignment in the [`Stream::Subset`] key.
const FOLD_TAG: u64 = 0x464f_4c44; // "FOLD"
/// L-BFGS history length.
const HISTORY: usize = 10;
/// Armijo sufficient-decrease constant.
const C1: f64 = 1e-4;
/// Relative loss decrease below which the optimisation stops.
const FTOL: f64 = 1e-9;

/// A fitted model: standardisation and the linear map.
struct Fit {
    mean: Tensor,
    std: Tensor,
    w: Tensor,
    b: Tensor,
    /// Whether L-BFGS stopped at its iteration limit, not converged (scikit-learn warns).
    capped: bool,
}

impl Fit {
    fn logits(&self, x: &Tensor) -> Tensor {
        ((x - &self.mean) / &self.std).matmul(&self.w.tr()) + &self.b
    }
}

/// The loss and gradient at the flat parameter vector `theta` = [W (C x F) row-major, b (C)].
fn loss_grad(theta: &Tensor, x: &Tensor, onehot: &Tensor, lambda: f64) -> (f64, Tensor) {
    let (n, f) = (x.size()[0], x.size()[1]);
    let c = onehot.size()[1];
    let w = theta.narrow(0, 0, c * f).view([c, f]);
    let b = theta.narrow(0, c * f, c);
    let lsm = (x.matmul(&w.tr()) + &b).log_softmax(1, Kind::Float);
    let wsq = w.square().sum(Kind::Float).double_value(&[]);
    let ce = -(&lsm * onehot).sum(Kind::Float).double_value(&[]) / n as f64;
    let g = (lsm.exp() - onehot) / n as f64;
    let gw = g.tr().matmul(x) + &w * lambda;
    let gb = g.sum_dim_intlist(0, false, Kind::Float);
    (ce + 0.5 * lambda * wsq, Tensor::cat(&[gw.view([-1]), gb], 0))
}

fn dot(a: &Tensor, b: &Tensor) -> f64 {
    a.dot(b).double_value(&[])
}

/// Minimises the regularised loss by L-BFGS from zero: the flat parameters, and whether the
/// iteration limit stopped it before it converged.
fn lbfgs(x: &Tensor, onehot: &Tensor, lambda: f64, cfg: &LogisticCfg) -> (Tensor, bool) {
    let (f, c) = (x.size()[1], onehot.size()[1]);
    let mut theta = Tensor::zeros([c * (f + 1)], (Kind::Float, Device::Cpu));
    let (mut loss, mut g) = loss_grad(&theta, x, onehot, lambda);
    let mut hist: VecDeque<(Tensor, Tensor, f64)> = VecDeque::with_capacity(HISTORY);
    for it in 0..cfg.max_iter {
        if g.abs().max().double_value(&[]) < cfg.tol {
            return (theta, false);
        }
        // two-loop recursion
        let mut q = -&g;
        let mut alphas = Vec::with_capacity(hist.len());
        for (s, y, rho) in hist.iter().rev() {
            let a = rho * dot(s, &q);
            q -= y * a;
            alphas.push(a);
        }
        if let Some((s, y, _)) = hist.back() {
            q *= dot(s, y) / dot(y, y);
        }
        for ((s, y, rho), a) in hist.iter().zip(alphas.into_iter().rev()) {
            let bta = rho * dot(y, &q);
            q += s * (a - bta);
        }
        let mut d = q;
        let mut gd = dot(&g, &d);
        if gd >= 0.0 || gd.is_nan() {
            hist.clear();
            d = -&g;
            gd = dot(&g, &d);
        }
        // scipy's first step: 1 / |g|_1 (at most 1); then the quasi-Newton step 1
        let mut t = if it == 0 { (1.0 / g.abs().sum(Kind::Float).double_value(&[])).min(1.0) } else { 1.0 };
        let mut accepted = None;
        for _ in 0..40 {
            let cand = &theta + &d * t;
            let (l, gn) = loss_grad(&cand, x, onehot, lambda);
            if l.is_finite() && l <= loss + C1 * t * gd {
                accepted = Some((cand, l, gn));
                break;
            }
            t *= 0.5;
        }
        let Some((cand, l, gn)) = accepted else { return (theta, false) };
        let s = &cand - &theta;
        let y = &gn - &g;
        let sy = dot(&s, &y);
        if sy > 1e-10 {
            if hist.len() == HISTORY {
                hist.pop_front();
            }
            hist.push_back((s, y, 1.0 / sy));
        }
        let decrease = loss - l;
        theta = cand;
        g = gn;
        loss = l;
        if decrease <= FTOL * loss.abs().max(1.0) {
            return (theta, false);
        }
    }
    (theta, cfg.max_iter > 0)
}

/// Fits the standardised, regularised model with strength `c` on `(x, y)`.
fn fit(x: &Tensor, y: &Tensor, num_classes: usize, c: f64, cfg: &LogisticCfg) -> Fit {
    let n = x.size()[0];
    let f = x.size()[1];
    let k = num_classes as i64;
    let mean = x.mean_dim(0, true, Kind::Float);
    let std = x.std_dim(0, false, true);
    let std = std.where_self(&std.gt(1e-8), &std.ones_like());
    let xs = (x - &mean) / &std;
    let onehot = y.one_hot(k).to_kind(Kind::Float);
    let (theta, capped) = lbfgs(&xs, &onehot, 1.0 / (c * n as f64), cfg);
    let w = theta.narrow(0, 0, k * f).view([k, f]);
    let b = theta.narrow(0, k * f, k);
    Fit { mean, std, w, b, capped }
}

/// Says that the fits at `cs` stopped at the iteration limit before converging: their scores
/// are partly the optimiser's error (at large C, 1000, cross-validation scores moved 0.5-2
/// points from scikit-learn's converged ones, which can change the C chosen).
fn warn_capped(cs: &[f64], cfg: &LogisticCfg, what: &str) {
    if cs.is_empty() {
        return;
    }
    let list = cs.iter().map(|c| format!("C = {c}")).collect::<Vec<_>>().join(", ");
    tracing::warn!(
        "logistic probe: {what} at {list} stopped at its limit of {} L-BFGS iterations before converging: its score is partly the optimiser's; \
         a smaller C converges sooner",
        cfg.max_iter
    );
}

fn select(t: &Tensor, idx: &[usize]) -> Tensor {
    t.index_select(0, &Tensor::from_slice(&idx.iter().map(|&i| i as i64).collect::<Vec<_>>()))
}

/// Stratified fold of every sample: per class, a seeded order dealt round-robin over the
/// folds, starting at a class-dependent fold so small classes spread over the folds.
fn fold_of(y: &[i64], num_classes: usize, folds: usize, seed: u64) -> Vec<usize> {
    let mut fold = vec![0; y.len()];
    for (c, idx) in by_class(y, num_classes).into_iter().enumerate() {
        let perm = Rng::derive(seed, Stream::Subset, &[FOLD_TAG, c as u64]).permutation(idx.len());
        for (j, &p) in perm.iter().enumerate() {
            fold[idx[p]] = (j + c) % folds;
        }
    }
    fold
}

/// The choice of C of [`logistic_probe`] alone: each C of the grid scored by k-fold
/// cross-validation (or on a held-out part) of `train`, in grid order, and the chosen C (the
/// first best; the only one when the grid has one, with an empty sweep). The test split is not
/// read: a probe choosing among feature sets runs this on each and refits only the winner.
///
/// Errors: as [`logistic_probe`], less the final fit's.
pub fn logistic_sweep(train: &Features, num_classes: usize, cfg: &LogisticCfg) -> Result<(Sweep, f64)> {
    let bad = |m: String| Err(Error::Config(format!("logistic probe: {m}")));
    if cfg.cs.is_empty() {
        return bad("the C grid must not be empty".into());
    }
    if let Some(c) = cfg.cs.iter().find(|c| !(c.is_finite() && **c > 0.0)) {
        return bad(format!("C = {c} must be positive"));
    }
    if !(cfg.tol.is_finite() && cfg.tol >= 0.0) {
        return bad(format!("tolerance {} must be >= 0", cfg.tol));
    }
    super::check_train(train, num_classes)?;
    let x = train.x.to_kind(Kind::Float).to_device(Device::Cpu);
    let y = super::labels(&train.y);
    let mut sweep = Vec::new();
    if cfg.cs.len() > 1 {
        let parts: Vec<(Vec<usize>, Vec<usize>)> = if cfg.folds >= 2 {
            let fold = fold_of(&train.y, num_classes, cfg.folds, cfg.seed);
            (0..cfg.folds).map(|k| (0..fold.len()).partition::<Vec<usize>, _>(|&i| fold[i] != k)).collect()
        } else {
            if !(cfg.heldout.is_finite() && (0.0..1.0).contains(&cfg.heldout)) {
                return bad(format!("held-out fraction {} must be in [0, 1)", cfg.heldout));
            }
            vec![super::stratified_split(&train.y, num_classes, cfg.heldout, cfg.seed)]
        };
        let parts: Vec<_> = parts.into_iter().filter(|(tr, va)| !tr.is_empty() && !va.is_empty()).collect();
        if parts.is_empty() {
            return bad(format!("{} train samples leave no validation data to choose C", train.len()));
        }
        let total: usize = parts.iter().map(|(_, va)| va.len()).sum();
        let mut capped = Vec::new();
        for &c in &cfg.cs {
            let mut correct = 0.0;
            for (tr, va) in &parts {
                let m = fit(&select(&x, tr), &select(&y, tr), num_classes, c, cfg);
                if m.capped && !capped.contains(&c) {
                    capped.push(c);
                }
                correct += super::top1(&m.logits(&select(&x, va)), &select(&y, va)) * va.len() as f64 / 100.0;
            }
            let score = 100.0 * correct / total as f64;
            tracing::debug!(c, score, "logistic probe cross-validation");
            sweep.push((param(c), score));
        }
        warn_capped(&capped, cfg, "the validation fit");
    }
    let c = match best_of(&sweep) {
        Some(i) => cfg.cs[i],
        None => cfg.cs[0],
    };
    // every C scored alike: the validation data cannot tell them apart (a few labels per
    // class, e.g. one per class in a fold), so the choice is the grid's first, not a finding
    if undecided(&sweep) {
        tracing::warn!(
            "logistic probe: every C of the grid scored {:.2}% in validation on {} labelled example(s); C = {c} (the grid's first) is kept \
             without evidence: more labels per class would let the validation choose",
            sweep[0].1,
            train.len()
        );
    }
    Ok((sweep, c))
}

/// Whether a validation sweep of several points scored them all alike (nothing was chosen).
pub(crate) fn undecided(sweep: &Sweep) -> bool {
    sweep.len() > 1 && sweep.iter().all(|(_, s)| *s == sweep[0].1)
}

/// The recorded form of a C.
pub(crate) fn param(c: f64) -> BTreeMap<String, f64> {
    BTreeMap::from([("C".to_string(), c)])
}

/// Logistic regression on frozen features: C chosen by k-fold cross-validation on `train`
/// ([`logistic_sweep`]), refitted on all of `train`, top-1 on `test` (see the module docs).
/// The result's `curve` is empty.
///
/// Errors: an empty or non-positive C grid, no validation data to choose among several Cs
/// (too few samples, or `folds < 2` with a zero held-out fraction), malformed features; [`Error::Train`] when the fit is not
/// finite.
pub fn logistic_probe(train: &Features, test: &Features, num_classes: usize, cfg: &LogisticCfg) -> Result<ProbeResult> {
    check_pair(train, test, num_classes)?;
    let (sweep, c) = logistic_sweep(train, num_classes, cfg)?;
    let x = train.x.to_kind(Kind::Float).to_device(Device::Cpu);
    let xt = test.x.to_kind(Kind::Float).to_device(Device::Cpu);
    let (y, yt) = (super::labels(&train.y), super::labels(&test.y));
    let m = fit(&x, &y, num_classes, c, cfg);
    if m.capped {
        warn_capped(&[c], cfg, "the final fit");
    }
    if m.w.isfinite().all().int64_value(&[]) != 1 {
        return Err(Error::Train(format!("logistic probe: the fit at C = {c} is not finite")));
    }
    let top1 = super::top1(&m.logits(&xt), &yt);
    Ok(ProbeResult { sweep, chosen: param(c), top1, curve: Vec::new() })
}

#[cfg(test)]
mod tests {
    use super::super::linear::tests::{blobs, shuffled};
    use super::*;

    #[test]
    fn a_sweep_whose_scores_all_tie_is_undecided() {
        let p = |c: f64, s: f64| (param(c), s);
        assert!(undecided(&vec![p(0.01, 40.0), p(0.1, 40.0), p(1.0, 40.0)]));
        assert!(!undecided(&vec![p(0.01, 40.0), p(0.1, 45.0)]));
        assert!(!undecided(&vec![p(0.01, 40.0)]), "one point is no choice to make");
        assert!(!undecided(&Vec::new()));
    }

    #[test]
    fn separable_blobs_and_shuffled_labels() {
        let (tr, te) = (blobs(5, 30, 32, 8.0, 1), blobs(5, 40, 32, 8.0, 2));
        let r = logistic_probe(&tr, &te, 5, &LogisticCfg::default()).unwrap();
        assert!(r.top1 >= 98.0, "{r:?}");
        assert_eq!(r.sweep.len(), 4);
        assert_eq!(logistic_probe(&tr, &te, 5, &LogisticCfg::default()).unwrap(), r);
        let r = logistic_probe(&shuffled(&tr, 1), &shuffled(&te, 2), 5, &LogisticCfg::default()).unwrap();
        assert!(r.top1 < 100.0 / 5.0 + 15.0, "{r:?}");
    }

    #[test]
    fn lbfgs_reaches_the_optimum() {
        // at the optimum the gradient vanishes: check it directly on an overlapping problem
        let f = blobs(3, 50, 6, 1.5, 3);
        let y = super::super::labels(&f.y);
        let onehot = y.one_hot(3).to_kind(Kind::Float);
        let cfg = LogisticCfg { tol: 1e-6, max_iter: 1000, ..LogisticCfg::default() };
        let lambda = 1e-2;
        let (theta, capped) = lbfgs(&f.x, &onehot, lambda, &cfg);
        let (_, g) = loss_grad(&theta, &f.x, &onehot, lambda);
        assert!(g.abs().max().double_value(&[]) < 1e-4 && !capped, "{g}");
        // a limit too low to converge is said (the fit returned as if it had)
        let (_, capped) = lbfgs(&f.x, &onehot, lambda, &LogisticCfg { max_iter: 2, ..cfg });
        assert!(capped);
    }

    #[test]
    fn one_shot_cross_validation_and_errors() {
        // one sample per class: folds still work (classes missing from a fold's train part)
        let (tr, te) = (blobs(4, 1, 8, 8.0, 1), blobs(4, 10, 8, 8.0, 2));
        let r = logistic_probe(&tr, &te, 4, &LogisticCfg::default()).unwrap();
        assert!(r.top1 >= 90.0, "{r:?}");
        assert!(logistic_probe(&tr, &te, 4, &LogisticCfg { cs: vec![], ..LogisticCfg::default() }).is_err());
        // held-out selection: one sample per class leaves nothing to hold out
        assert!(logistic_probe(&tr, &te, 4, &LogisticCfg { folds: 1, ..LogisticCfg::default() }).is_err());
        let tr2 = blobs(4, 10, 8, 8.0, 1);
        let h = logistic_probe(&tr2, &te, 4, &LogisticCfg { folds: 0, heldout: 0.2, ..LogisticCfg::default() }).unwrap();
        assert_eq!(h.sweep.len(), 4);
        assert!(h.top1 >= 90.0, "{h:?}");
        let single = LogisticCfg { cs: vec![1.0], folds: 0, ..LogisticCfg::default() };
        assert!(logistic_probe(&tr, &te, 4, &single).unwrap().sweep.is_empty());
    }
}
