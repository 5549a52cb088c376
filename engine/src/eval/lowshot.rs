//! Low-shot label subsets (I-JEPA paper, appendix A.2: the 1% ImageNet protocol, about 13
//! labelled images per class): a deterministic, per-class-stratified fraction of the labels.
//!
//! The official 1% split is a fixed file list (see `data::list_file`); this sampler is the
//! seeded equivalent for any dataset, so low-shot results can be averaged over seeds.

use super::Features;
use crate::error::{Error, Result};
use crate::rng::{Rng, Stream};
use tch::{Device, Tensor};

/// Tag of the low-shot sampler in the [`Stream::Subset`] key.
const LOWSHOT_TAG: u64 = 0x4c4f_5753; // "LOWS"

/// Indices (sorted) of a deterministic `fraction` of the samples of each class: for a class
/// with `n` samples, `round(fraction * n)` of them, at least 1 and at most `n`, drawn
/// uniformly without replacement by a generator keyed by `(seed, class)`. Labels outside
/// `0..num_classes` are never chosen; a non-finite or negative fraction counts as 0 (one
/// sample per present class), a fraction above 1 as 1.
pub fn sample_per_class(labels: &[i64], num_classes: usize, fraction: f64, seed: u64) -> Vec<usize> {
    let fraction = if fraction.is_finite() { fraction.clamp(0.0, 1.0) } else { 0.0 };
    let mut out = Vec::new();
    for (c, idx) in super::by_class(labels, num_classes).into_iter().enumerate() {
        let n = idx.len();
        if n == 0 {
            continue;
        }
        let k = super::share(fraction, n).clamp(1, n);
        let perm = Rng::derive(seed, Stream::Subset, &[LOWSHOT_TAG, c as u64]).permutation(n);
        out.extend(perm[..k].iter().map(|&p| idx[p]));
    }
    out.sort_unstable();
    out
}

/// The rows `idx` of `f` (in the order given, repeats allowed).
///
/// Errors: an index past the end of `f`, or `f.x` not a 2-D tensor with one row per label.
pub fn subset(f: &Features, idx: &[usize]) -> Result<Features> {
    let size = f.x.size();
    if size.len() != 2 || size[0] as usize != f.y.len() {
        return Err(Error::Data(format!("subset: features of shape {size:?} with {} labels", f.y.len())));
    }
    if let Some(&bad) = idx.iter().find(|&&i| i >= f.y.len()) {
        return Err(Error::Config(format!("subset: index {bad} is out of range for {} samples", f.y.len())));
    }
    let rows: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
    let t = Tensor::from_slice(&rows).to_device(f.x.device());
    let x = f.x.index_select(0, &t).to_device(Device::Cpu);
    let y = idx.iter().map(|&i| f.y[i]).collect();
    Ok(Features { x, y })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    fn labels() -> Vec<i64> {
        // class c has 10 * (c + 1) samples, interleaved
        let mut y = Vec::new();
        for c in 0..5i64 {
            y.extend(std::iter::repeat_n(c, 10 * (c as usize + 1)));
        }
        let perm = Rng::from_key(&[9]).permutation(y.len());
        perm.into_iter().map(|i| y[i]).collect()
    }

    #[test]
    fn counts_per_class_determinism_and_seeds() {
        let y = labels();
        let s = sample_per_class(&y, 5, 0.25, 1);
        for c in 0..5 {
            let n = 10 * (c + 1);
            let want = ((0.25 * n as f64).round() as usize).max(1);
            assert_eq!(s.iter().filter(|&&i| y[i] == c as i64).count(), want, "class {c}");
        }
        assert!(s.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
        assert_eq!(sample_per_class(&y, 5, 0.25, 1), s);
        assert_ne!(sample_per_class(&y, 5, 0.25, 2), s);
        // at least one per class, even for a tiny fraction
        let one = sample_per_class(&y, 5, 0.001, 1);
        assert_eq!(one.len(), 5);
        let mut cls: Vec<i64> = one.iter().map(|&i| y[i]).collect();
        cls.sort();
        assert_eq!(cls, vec![0, 1, 2, 3, 4]);
        // everything for fraction 1 (and above), nothing for unknown classes
        assert_eq!(sample_per_class(&y, 5, 1.5, 0), (0..y.len()).collect::<Vec<_>>());
        assert_eq!(sample_per_class(&[-1, 7], 5, 0.5, 0), Vec::<usize>::new());
    }

    #[test]
    fn subset_takes_rows_and_rejects_bad_indices() {
        let f = Features { x: Tensor::arange(8, (Kind::Float, Device::Cpu)).view([4, 2]), y: vec![0, 1, 2, 3] };
        let s = subset(&f, &[3, 1]).unwrap();
        assert_eq!(s.y, vec![3, 1]);
        assert_eq!(Vec::<f32>::try_from(s.x.view([-1])).unwrap(), vec![6.0, 7.0, 2.0, 3.0]);
        assert!(subset(&f, &[4]).is_err());
        assert_eq!(subset(&f, &[]).unwrap().x.size(), vec![0, 2]);
    }
}
