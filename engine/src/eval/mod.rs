//! Evaluation of frozen encoders (I-JEPA paper, appendix A.2; design reference §6).
//!
//! Features come from the (target) encoder, average-pooled over the patch tokens — there is
//! no CLS token — from the last block or the concatenation of the last four blocks
//! ([`features`]). On them run:
//!
//! - [`linear`]: the paper's linear probe (LARS, 50 epochs, lr / 10 every 15, grid over
//!   lr x weight decay chosen on a held-out part of the train split), head Linear or
//!   BatchNorm(no affine) + Linear;
//! - [`logistic`]: L2-regularised multinomial logistic regression solved to convergence
//!   (L-BFGS), the cheap strong low-shot protocol (1% labels);
//! - [`knn`]: DINO-style weighted k-nearest-neighbours on cosine similarity;
//! - [`lowshot`]: deterministic per-class label subsets (e.g. 1% of the labels).
//!
//! And, training the whole encoder rather than reading frozen features, [`finetune`]: MAE's
//! full fine-tuning protocol (the paper's Table 15).
//!
//! Everything is deterministic given its seeds: splits and shuffles come from
//! [`crate::rng::Rng`] keyed by the seed, weights start at zero, no hidden global RNG is used.

pub mod features;
pub mod finetune;
pub mod knn;
pub mod linear;
pub mod logistic;
pub mod lowshot;

pub use features::{cached, extract, raw_pixels, FeatureKind, Features};
pub use knn::knn;
pub use linear::{linear_probe, linear_sweep, Head, LinearCfg};
pub use logistic::{logistic_probe, logistic_sweep, LogisticCfg};
pub use lowshot::{sample_per_class, subset};

use crate::error::{Error, Result};
use crate::rng::{Rng, Stream};
use std::collections::BTreeMap;
use tch::{Kind, Tensor};

/// A probe's hyper-parameter sweep: each point (its named values) with its held-out (or
/// cross-validated) top-1 accuracy in percent, in grid order.
pub type Sweep = Vec<(BTreeMap<String, f64>, f64)>;

/// The outcome of a probe: its hyper-parameter sweep, the chosen point and its test score.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeResult {
    /// Every hyper-parameter combination tried with its held-out (or cross-validated) top-1
    /// accuracy in percent, in grid order. Empty when there was nothing to choose from and
    /// no held-out data.
    pub sweep: Sweep,
    /// The chosen combination (the first best of the sweep).
    pub chosen: BTreeMap<String, f64>,
    /// Top-1 accuracy in percent on the test features of the chosen combination, retrained on
    /// the whole train split.
    pub top1: f64,
    /// Test top-1 (percent) after each epoch (1-based) of the final run; empty for probes
    /// without epochs (logistic regression).
    pub curve: Vec<(usize, f64)>,
}

/// Checks that `f` is a well-formed feature set for `num_classes` classes: `x` is a 2-D
/// float tensor with one row per label, every label in `0..num_classes`.
pub(crate) fn check_features(f: &Features, num_classes: usize, what: &str) -> Result<()> {
    if num_classes == 0 {
        return Err(Error::Config("evaluation needs at least one class".into()));
    }
    let size = f.x.size();
    if size.len() != 2 {
        return Err(Error::Data(format!("{what} features: expected a [N, F] tensor, got shape {size:?}")));
    }
    if !matches!(f.x.kind(), Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16) {
        return Err(Error::Data(format!("{what} features: expected floats, got {:?}", f.x.kind())));
    }
    if size[0] as usize != f.y.len() {
        return Err(Error::Data(format!("{what} features: {} rows but {} labels", size[0], f.y.len())));
    }
    if let Some((i, &l)) = f.y.iter().enumerate().find(|(_, &l)| l < 0 || l as usize >= num_classes) {
        return Err(Error::Data(format!("{what} features: label {l} of sample {i} is outside 0..{num_classes}")));
    }
    Ok(())
}

/// Checks training features alone (the probes' held-out sweeps read no test split): well
/// formed for `num_classes` classes ([`check_features`]) and not empty.
pub(crate) fn check_train(train: &Features, num_classes: usize) -> Result<()> {
    check_features(train, num_classes, "train")?;
    if train.y.is_empty() {
        return Err(Error::Data("train features are empty".into()));
    }
    Ok(())
}

/// Checks a train/test pair: both well-formed, same feature width, non-empty train.
pub(crate) fn check_pair(train: &Features, test: &Features, num_classes: usize) -> Result<()> {
    check_train(train, num_classes)?;
    check_features(test, num_classes, "test")?;
    let (a, b) = (train.x.size()[1], test.x.size()[1]);
    if a != b {
        return Err(Error::Data(format!("train features have width {a}, test features {b}")));
    }
    Ok(())
}

/// Percentage of rows of `logits` ([N, C]) whose argmax equals the label; 0 for no rows.
pub(crate) fn top1(logits: &Tensor, y: &Tensor) -> f64 {
    let n = y.size()[0];
    if n == 0 {
        return 0.0;
    }
    let correct = logits.argmax(1, false).eq_tensor(y).to_kind(Kind::Int64).sum(Kind::Int64).int64_value(&[]);
    100.0 * correct as f64 / n as f64
}

/// Labels as a CPU int64 tensor.
pub(crate) fn labels(y: &[i64]) -> Tensor {
    Tensor::from_slice(y)
}

/// Per class, the sample indices of that class in order.
pub(crate) fn by_class(y: &[i64], num_classes: usize) -> Vec<Vec<usize>> {
    let mut classes = vec![Vec::new(); num_classes];
    for (i, &l) in y.iter().enumerate() {
        if l >= 0 && (l as usize) < num_classes {
            classes[l as usize].push(i);
        }
    }
    classes
}

/// Tag of the held-out split in the [`Stream::Subset`] key (distinct from the low-shot
/// sampler's keys).
const HELDOUT_TAG: u64 = 0x4845_4c44; // "HELD"

/// `fraction` x `n` rounded, a half up, as the fraction is written in decimal (`0.145` x 100
/// is 14.5, which rounds to 15: in floating point it is 14.499999999999998, which rounded to
/// 14); a fraction in `[0, 1]`.
pub(crate) fn share(fraction: f64, n: usize) -> usize {
    // the shortest decimal that reads back as `fraction` (Rust's `Display`), as digits over a
    // power of ten; a whole number, or one of more than 20 decimals (a tiny fraction), is
    // rounded in floating point
    let text = fraction.to_string();
    let Some((whole, decimals)) = text.split_once('.').filter(|(_, d)| d.len() <= 20) else {
        return (fraction * n as f64).round() as usize;
    };
    let digits: u128 = format!("{whole}{decimals}").parse().unwrap_or(0);
    let scale = 10u128.pow(decimals.len() as u32);
    ((2 * digits * n as u128 + scale) / (2 * scale)) as usize
}

/// A deterministic per-class-stratified split of the samples into (train, held-out)
/// indices, both sorted: per class, `round(fraction * count)` samples are held out, but at
/// least one sample of each class stays in train.
pub(crate) fn stratified_split(y: &[i64], num_classes: usize, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let fraction = if fraction.is_finite() { fraction.clamp(0.0, 1.0) } else { 0.0 };
    let (mut train, mut held) = (Vec::new(), Vec::new());
    for (c, idx) in by_class(y, num_classes).into_iter().enumerate() {
        let n = idx.len();
        if n == 0 {
            continue;
        }
        let k = share(fraction, n).min(n - 1);
        let perm = Rng::derive(seed, Stream::Subset, &[HELDOUT_TAG, c as u64]).permutation(n);
        for (j, &p) in perm.iter().enumerate() {
            if j < k { held.push(idx[p]) } else { train.push(idx[p]) }
        }
    }
    train.sort_unstable();
    held.sort_unstable();
    (train, held)
}

/// The classes of `y` with images but none in the held-out part `held` (indices into `y`): too
/// small for a rounded share of their own, so the choice made on `held` never scores them.
pub(crate) fn classes_not_held_out(y: &[i64], held: &[usize], num_classes: usize) -> Vec<usize> {
    let mut present = vec![false; num_classes];
    let mut held_out = vec![false; num_classes];
    for &l in y.iter().filter(|&&l| l >= 0 && (l as usize) < num_classes) {
        present[l as usize] = true;
    }
    for &l in held.iter().map(|&i| &y[i]).filter(|&&l| l >= 0 && (l as usize) < num_classes) {
        held_out[l as usize] = true;
    }
    (0..num_classes).filter(|&c| present[c] && !held_out[c]).collect()
}

/// Why [`stratified_split`] held out nothing at `fraction`: each class holds out its rounded
/// share, and every class here is too small for it; what fraction holds out one image.
pub(crate) fn why_none_held_out(y: &[i64], num_classes: usize, fraction: f64) -> String {
    let largest = by_class(y, num_classes).iter().map(Vec::len).max().unwrap_or(0);
    if largest < 2 {
        return "(each class holds out its share rounded, and keeps at least one image: these classes have one image each)".into();
    }
    format!(
        "(each class holds out its share rounded: {fraction} x at most {largest} images a class rounds to 0; `held-out` {} or more holds out an image of the largest class)",
        (0.5 / largest as f64 * 1000.0).ceil() / 1000.0
    )
}

/// The first best entry of a sweep (NaN scores never win).
pub(crate) fn best_of(sweep: &[(BTreeMap<String, f64>, f64)]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, (_, s)) in sweep.iter().enumerate() {
        if s.is_nan() {
            continue;
        }
        if best.is_none_or(|b| *s > sweep[b].1) {
            best = Some(i);
        }
    }
    best
}

/// What would let a choice made on `held` held-out images, among points fitted on `fitted`
/// others, mean something: more training images, and a larger held-out part, or a smaller one
/// where it holds more images than the points were fitted on.
pub(crate) fn held_out_advice(fitted: usize, held: usize) -> String {
    if fitted < held {
        format!("more training images, or a smaller `held-out` (the points were fitted on {fitted} image(s)), would let the choice mean something")
    } else {
        "more training images or a larger `held-out` would let the choice mean something".into()
    }
}

/// Name of the sweep parameter that tags a point with its feature set: how many of the last
/// blocks the feature concatenates (1: `last`, 4: `last4`).
pub const BLOCKS_PARAM: &str = "blocks";

/// A probe run on several feature sets (each tagged with its [`BLOCKS_PARAM`] value): the one
/// whose best held-out score (its sweep's maximum) is highest wins, the first on ties. The
/// result is the winner's, its `chosen` tagged, and its sweep every candidate's points, each
/// tagged, in candidate order; the index of the winner comes with it.
///
/// Errors: no candidate, or a candidate without held-out scores (nothing to choose by: the
/// test split is never read to choose).
pub fn choose_features(candidates: Vec<(usize, ProbeResult)>) -> Result<(usize, ProbeResult)> {
    if candidates.is_empty() {
        return Err(Error::Config("no feature set to evaluate".into()));
    }
    let mut sweep = Vec::new();
    let mut scores = Vec::new();
    for (blocks, r) in &candidates {
        if r.sweep.is_empty() {
            return Err(Error::Config(format!(
                "choosing among feature sets needs held-out scores: the probe on the last {blocks} block(s) has none \
                 (set a held-out fraction above 0, or a grid of several points for the low-shot logistic probe)"
            )));
        }
        let mut best = f64::NAN;
        for (p, s) in &r.sweep {
            let mut p = p.clone();
            p.insert(BLOCKS_PARAM.to_string(), *blocks as f64);
            sweep.push((p, *s));
            if !s.is_nan() && (best.is_nan() || *s > best) {
                best = *s;
            }
        }
        scores.push((BTreeMap::new(), best));
    }
    let Some(win) = best_of(&scores) else {
        return Err(Error::Train("every feature set's probe diverged on the held-out data".into()));
    };
    // (a tie is no evidence: said, as the probes' own grids say it)
    if scores.len() > 1 && scores.iter().all(|(_, s)| *s == scores[win].1) {
        tracing::warn!(
            "every feature set scored {:.2}% on the held-out images: the first (the last {} block(s)) is kept without evidence; \
             more training images would let the choice mean something",
            scores[win].1,
            candidates[win].0
        );
    }
    let (blocks, mut result) = candidates.into_iter().nth(win).expect("win indexes the candidates");
    result.chosen.insert(BLOCKS_PARAM.to_string(), blocks as f64);
    result.sweep = sweep;
    Ok((win, result))
}

#[cfg(test)]
mod tests {
    /// A share is rounded as the fraction is written, a half up (0.145 x 100 rounded to 14 in
    /// floating point); the common fractions' shares are what floating point gave.
    #[test]
    fn shares_round_a_written_half_up() {
        use super::share;
        assert_eq!((share(0.145, 100), share(0.125, 100), share(0.155, 100)), (15, 13, 16));
        assert_eq!((share(0.1, 5), share(0.1, 15), share(0.1, 35), share(0.01, 1300)), (1, 2, 4, 13));
        assert_eq!((share(0.0, 7), share(1.0, 7), share(1e-300, 7), share(0.5, 3)), (0, 7, 0, 2));
        for n in 0..400 {
            for f in [0.01, 0.05, 0.1, 0.2, 0.25, 0.3, 0.5] {
                assert_eq!(share(f, n), (f * n as f64).round() as usize, "{f} x {n}");
            }
        }
    }

    use super::*;

    #[test]
    fn choose_features_takes_the_best_held_out_score_never_the_test_score() {
        let r = |held: &[f64], top1: f64| ProbeResult {
            sweep: held.iter().enumerate().map(|(i, &s)| (BTreeMap::from([("lr".to_string(), i as f64)]), s)).collect(),
            chosen: BTreeMap::from([("lr".to_string(), 0.0)]),
            top1,
            curve: Vec::new(),
        };
        // the second set is better held out though worse on the test split
        let (win, got) = choose_features(vec![(1, r(&[70.0, 80.0], 90.0)), (4, r(&[f64::NAN, 81.0], 85.0))]).unwrap();
        assert_eq!((win, got.top1), (1, 85.0));
        assert_eq!(got.chosen[BLOCKS_PARAM], 4.0);
        assert_eq!(got.sweep.len(), 4);
        assert_eq!(got.sweep[0].0[BLOCKS_PARAM], 1.0);
        assert_eq!(got.sweep[3].0[BLOCKS_PARAM], 4.0);
        // ties: the first
        assert_eq!(choose_features(vec![(1, r(&[80.0], 1.0)), (4, r(&[80.0], 2.0))]).unwrap().0, 0);
        // nothing held out: an error, not a choice by the test score
        assert!(choose_features(vec![(1, r(&[], 90.0)), (4, r(&[80.0], 85.0))]).is_err());
        assert!(choose_features(vec![(1, r(&[f64::NAN], 90.0)), (4, r(&[f64::NAN], 85.0))]).is_err());
        assert!(choose_features(Vec::new()).is_err());
    }

    #[test]
    fn stratified_split_holds_out_per_class_and_keeps_one() {
        // a fraction too small for every class says what would hold one out, and does
        let y30: Vec<i64> = (0..90).map(|i| (i % 3) as i64).collect();
        assert!(stratified_split(&y30, 3, 0.01, 3).1.is_empty());
        let why = why_none_held_out(&y30, 3, 0.01);
        assert!(why.contains("0.01 x at most 30 images a class rounds to 0; `held-out` 0.017 or more"), "{why}");
        assert_eq!(stratified_split(&y30, 3, 0.017, 3).1.len(), 3);
        let y: Vec<i64> = (0..100).map(|i| (i % 4) as i64).chain([4]).collect();
        let (tr, he) = stratified_split(&y, 5, 0.2, 3);
        assert_eq!(tr.len() + he.len(), 101);
        for c in 0..4 {
            assert_eq!(he.iter().filter(|&&i| y[i] == c).count(), 5);
        }
        // the single sample of class 4 stays in train, and is said to be held out nowhere
        assert!(tr.contains(&100));
        assert_eq!(classes_not_held_out(&y, &he, 5), [4]);
        assert_eq!(classes_not_held_out(&y30, &stratified_split(&y30, 3, 0.017, 3).1, 3), Vec::<usize>::new());
        assert_eq!(stratified_split(&y, 5, 0.2, 3), (tr.clone(), he.clone()));
        assert_ne!(stratified_split(&y, 5, 0.2, 4).1, he);
    }

    #[test]
    fn best_of_takes_the_first_maximum() {
        let m = BTreeMap::new;
        let s = vec![(m(), 1.0), (m(), f64::NAN), (m(), 3.0), (m(), 3.0)];
        assert_eq!(best_of(&s), Some(2));
        assert_eq!(best_of(&[]), None);
    }
}
