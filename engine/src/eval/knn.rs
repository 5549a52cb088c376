//! Weighted k-nearest-neighbour classification of frozen features (the DINO protocol, a
//! training-free companion to the linear probes of the I-JEPA paper's appendix A.2).
//!
//! Train and test features are L2-normalised; each test row takes its `k` most
//! cosine-similar train rows, each voting for its label with weight `exp(sim / T)`; the
//! class with the largest total wins (ties: the lowest class index).

use super::{check_pair, Features};
use crate::error::{Error, Result};
use tch::{Kind, Tensor};

/// Similarity entries computed at once (test rows x train rows), bounding memory.
const CHUNK_ELEMS: i64 = 1 << 24;

/// Top-1 accuracy (percent) of weighted kNN with `k` neighbours (at most the train size) and
/// temperature `t` (DINO: k = 20, T = 0.07). Zero-norm rows are left at zero.
///
/// Errors: `k == 0`, a non-positive or non-finite `t`, malformed or mismatched features.
pub fn knn(train: &Features, test: &Features, num_classes: usize, k: usize, t: f64) -> Result<f64> {
    if k == 0 {
        return Err(Error::Config("kNN: k must be positive".into()));
    }
    if !(t.is_finite() && t > 0.0) {
        return Err(Error::Config(format!("kNN: the temperature must be positive, got {t}")));
    }
    check_pair(train, test, num_classes)?;
    if test.is_empty() {
        return Ok(0.0);
    }
    let normed = |x: &Tensor| {
        let x = x.to_kind(Kind::Float);
        let n = x.norm_scalaropt_dim(2.0, [1i64].as_slice(), true).clamp_min(1e-12);
        x / n
    };
    let (tr, te) = (normed(&train.x), normed(&test.x));
    let ntrain = tr.size()[0];
    // (a k past i64's range was negative, and libtorch refused it after the pretraining)
    let k = i64::try_from(k).unwrap_or(i64::MAX).min(ntrain);
    let ytr = super::labels(&train.y);
    let yte = super::labels(&test.y);
    let rows = (CHUNK_ELEMS / ntrain).max(1);
    let trt = tr.tr();
    let mut correct = 0i64;
    let nt = te.size()[0];
    for start in (0..nt).step_by(rows as usize) {
        let len = rows.min(nt - start);
        let sim = te.narrow(0, start, len).matmul(&trt);
        let (vals, idx) = sim.topk(k, 1, true, true);
        let nb = ytr.index_select(0, &idx.view([-1])).view([len, k]);
        // exp((sim - max) / T): the same vote ranking as exp(sim / T), without overflow
        let w = ((&vals - vals.narrow(1, 0, 1)) / t).exp();
        let votes = Tensor::zeros([len, num_classes as i64], (Kind::Float, tch::Device::Cpu)).scatter_add(1, &nb, &w);
        let pred = votes.argmax(1, false);
        correct += pred.eq_tensor(&yte.narrow(0, start, len)).to_kind(Kind::Int64).sum(Kind::Int64).int64_value(&[]);
    }
    Ok(100.0 * correct as f64 / nt as f64)
}

/// Top-1 accuracy (percent) of [`knn`] on a stratified held-out `fraction` of `train`
/// ([`super::stratified_split`] with `seed`, as the linear probe holds out), the rest of
/// `train` being the neighbours: the score by which a kNN evaluation chooses among settings
/// without reading the test split. With it, the number of those neighbours (at most that
/// many vote, whatever `k`).
///
/// Errors: those of [`knn`], and a fraction that holds out no sample.
pub fn knn_heldout(train: &Features, num_classes: usize, k: usize, t: f64, fraction: f64, seed: u64) -> Result<(f64, usize)> {
    super::check_features(train, num_classes, "train")?;
    let (rest, held) = super::stratified_split(&train.y, num_classes, fraction, seed);
    if held.is_empty() || rest.is_empty() {
        return Err(Error::Config(format!(
            "kNN: held-out fraction {fraction} of {} train samples leaves no held-out sample to choose with {}",
            train.len(),
            super::why_none_held_out(&train.y, num_classes, fraction)
        )));
    }
    Ok((knn(&super::subset(train, &rest)?, &super::subset(train, &held)?, num_classes, k, t)?, rest.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn votes_follow_k_and_temperature() {
        let x = Tensor::from_slice(&[1.0f32, 0.0, 0.9, 0.1, 0.8, 0.2]).view([3, 2]);
        let train = Features { x, y: vec![0, 1, 1] };
        let test = Features { x: Tensor::from_slice(&[2.0f32, 0.0]).view([1, 2]), y: vec![1] };
        // one neighbour: class 0; three with a flat temperature: two votes for class 1
        assert_eq!(knn(&train, &test, 2, 1, 0.07).unwrap(), 0.0);
        assert_eq!(knn(&train, &test, 2, 3, 100.0).unwrap(), 100.0);
        // a sharp temperature lets the closest neighbour outvote the two others
        assert_eq!(knn(&train, &test, 2, 3, 0.01).unwrap(), 0.0);
        // k larger than the train set is clamped
        assert_eq!(knn(&train, &test, 2, 50, 100.0).unwrap(), 100.0);
        // (one past i64's range too: it turned negative, and libtorch refused it)
        assert_eq!(knn(&train, &test, 2, usize::MAX, 100.0).unwrap(), 100.0);
        assert!(knn(&train, &test, 2, 0, 0.07).is_err());
        assert!(knn(&train, &test, 2, 1, 0.0).is_err());
        assert!(knn(&train, &test, 1, 1, 0.07).is_err(), "label 1 is out of range");
        let empty = Features { x: Tensor::zeros([0, 2], (Kind::Float, Device::Cpu)), y: vec![] };
        assert_eq!(knn(&train, &empty, 2, 1, 0.07).unwrap(), 0.0);
    }

    #[test]
    fn heldout_score_reads_only_the_train_split() {
        use super::super::linear::tests::{blobs, shuffled};
        let sep = blobs(4, 50, 16, 12.0, 1);
        let (acc, _) = knn_heldout(&sep, 4, 10, 0.07, 0.2, 0).unwrap();
        assert!(acc > 95.0, "separable blobs: {acc}");
        let (chance, _) = knn_heldout(&shuffled(&sep, 3), 4, 10, 0.07, 0.2, 0).unwrap();
        assert!(chance < 45.0, "shuffled labels: {chance}");
        // deterministic in the seed; no held-out sample is an error, not a score
        assert_eq!(knn_heldout(&sep, 4, 10, 0.07, 0.2, 0).unwrap().0, acc);
        assert!(knn_heldout(&sep, 4, 10, 0.07, 0.0, 0).is_err());
    }
}
