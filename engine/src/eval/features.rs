//! Frozen features for evaluation (I-JEPA paper, appendix A.2): the encoder's patch tokens
//! average-pooled (the model has no CLS token), from the last block or from the last four
//! blocks concatenated; plus the raw-pixel baseline and an on-disk feature cache.
//!
//! [`FeatureKind::Last4`] pools `norm(block_i(...))` for each of the last four blocks: the
//! encoder's final LayerNorm is applied to every one of them (not only to the last, which is
//! how [`VisionTransformer::forward_layers`] returns them), as is common for multi-layer
//! probes (e.g. the DINO/iBOT `n_last_blocks` evaluations), so the four parts are on the same
//! scale. The last part is exactly the [`FeatureKind::Last`] feature.

use crate::autocast;
use crate::data::{Dataset, SampleTransform};
use crate::error::{Error, Result};
use crate::model::vit::VisionTransformer;
use crate::rng::{Rng, Stream};
use std::path::Path;
use std::sync::mpsc;
use tch::{Device, Kind, Tensor};

/// Which encoder outputs make the feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeatureKind {
    /// Mean over patch tokens of the last block's normed output: width D.
    Last,
    /// Concatenation, oldest first, of the patch-token means of the last four blocks' outputs,
    /// each passed through the encoder's final norm: width 4D.
    Last4,
}

/// A feature matrix with its labels.
#[derive(Debug)]
pub struct Features {
    /// `[N, F]` float32 on the CPU.
    pub x: Tensor,
    /// The N labels.
    pub y: Vec<i64>,
}

impl Features {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// True when there is no sample.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Feature width F (0 when `x` is not 2-D).
    pub fn dim(&self) -> usize {
        let s = self.x.size();
        if s.len() == 2 { s[1] as usize } else { 0 }
    }

    /// A copy sharing nothing with `self`.
    pub fn deep_clone(&self) -> Self {
        Self { x: self.x.copy(), y: self.y.clone() }
    }
}

/// The fixed key of the (deterministic) evaluation transform's generator for sample `i`.
fn sample_rng(i: usize) -> Rng {
    Rng::derive(0, Stream::Crop, &[u64::MAX, i as u64])
}

/// One loaded batch: its first sample index, `[B, 3, S, S]` floats flat, labels.
type Loaded = Result<(usize, Vec<f32>, Vec<i64>)>;

/// Calls `f(start, images, labels)` for consecutive batches of `ds` transformed by
/// `transform`, in order; one background thread loads the next batch while `f` runs.
pub(crate) fn for_each_batch(
    ds: &dyn Dataset,
    transform: &dyn SampleTransform,
    batch: usize,
    mut f: impl FnMut(usize, Vec<f32>, Vec<i64>) -> Result<()>,
) -> Result<()> {
    if batch == 0 {
        return Err(Error::Config("feature extraction: the batch size must be positive".into()));
    }
    let s = transform.size();
    let per = 3 * s * s;
    let n = ds.len();
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<Loaded>(1);
        scope.spawn(move || {
            for start in (0..n).step_by(batch) {
                let end = (start + batch).min(n);
                let mut buf = vec![0f32; (end - start) * per];
                let mut ys = Vec::with_capacity(end - start);
                let mut res = Ok(());
                for (j, i) in (start..end).enumerate() {
                    res = transform.apply(&mut sample_rng(i), ds, i, &mut buf[j * per..(j + 1) * per]);
                    if res.is_err() {
                        break;
                    }
                    ys.push(ds.label(i));
                }
                let msg = res.map(|()| (start, buf, ys));
                let stop = msg.is_err();
                if tx.send(msg).is_err() || stop {
                    return;
                }
            }
        });
        for msg in rx {
            let (start, buf, ys) = msg?;
            f(start, buf, ys)?;
        }
        Ok(())
    })
}

/// Pools the encoder's output for a `[B, 3, S, S]` batch to `[B, F]` float32 on the CPU.
fn encode(encoder: &VisionTransformer, x: &Tensor, kind: FeatureKind) -> Tensor {
    let pooled = match kind {
        FeatureKind::Last => encoder.patch_tokens(&encoder.forward(x, None)).mean_dim(1, false, Kind::Float),
        FeatureKind::Last4 => {
            let outs = encoder.forward_layers(x);
            let k = outs.len();
            let parts: Vec<Tensor> = outs[k - 4..]
                .iter()
                .enumerate()
                .map(|(j, o)| {
                    // the last output is already normed by forward_layers
                    let o = if j == 3 { o.shallow_clone() } else { encoder.norm.forward(o) };
                    encoder.patch_tokens(&o).mean_dim(1, false, Kind::Float)
                })
                .collect();
            Tensor::cat(&parts, 1)
        }
    };
    pooled.to_kind(Kind::Float).to_device(Device::Cpu)
}

/// Encodes every sample of `ds` (through `transform`, whose randomness is keyed by a fixed
/// key, so a random transform is still deterministic) with the frozen `encoder` on `device`
/// in batches of `batch`, without gradients, under bf16 autocast when `bf16` (CUDA or CPU),
/// and pools the tokens as `kind` says. The encoder's parameters must live on `device`.
///
/// Errors: a zero batch, a transform size other than the encoder's image size, fewer than
/// four blocks for [`FeatureKind::Last4`], or a sample that fails to load.
pub fn extract(
    encoder: &VisionTransformer,
    ds: &dyn Dataset,
    transform: &dyn SampleTransform,
    kind: FeatureKind,
    batch: usize,
    device: Device,
    bf16: bool,
) -> Result<Features> {
    let s = transform.size();
    if s != encoder.cfg.image_size {
        return Err(Error::Config(format!(
            "feature extraction: the transform gives {s}x{s} images but the encoder takes {0}x{0}",
            encoder.cfg.image_size
        )));
    }
    if kind == FeatureKind::Last4 && encoder.blocks.len() < 4 {
        return Err(Error::Config(format!(
            "feature extraction: last-4 features need at least 4 blocks, the encoder has {}",
            encoder.blocks.len()
        )));
    }
    // the CPU's matrix products: the process's kernel (a run's, or chosen here)
    crate::products::prepare(device, bf16);
    let width = match kind {
        FeatureKind::Last => encoder.cfg.embed_dim,
        FeatureKind::Last4 => 4 * encoder.cfg.embed_dim,
    } as i64;
    let mut chunks = Vec::new();
    let mut y = Vec::with_capacity(ds.len());
    for_each_batch(ds, transform, batch, |_, buf, ys| {
        crate::interrupt::check()?;
        let b = ys.len() as i64;
        let x = Tensor::from_slice(&buf).view([b, 3, s as i64, s as i64]).to_device(device);
        // (in cache-sized chunks on a CPU: the same values up to float32 rounding, faster)
        let f = autocast::bf16(device, bf16, || tch::no_grad(|| encoder.chunked(&x, |c| encode(encoder, c, kind))))?;
        chunks.push(f);
        y.extend(ys);
        Ok(())
    })?;
    let x = if chunks.is_empty() { Tensor::zeros([0, width], (Kind::Float, Device::Cpu)) } else { Tensor::cat(&chunks, 0) };
    Ok(Features { x, y })
}

/// The raw-pixel baseline: each sample's transformed, normalised image flattened to
/// `3 * S * S` floats.
pub fn raw_pixels(ds: &dyn Dataset, transform: &dyn SampleTransform, batch: usize) -> Result<Features> {
    let s = transform.size();
    let per = (3 * s * s) as i64;
    // the split is held whole, twice while its batches are joined: refused with its size where
    // it cannot fit (the kernel killed it; under a limit, the error blamed the batch size)
    let bytes = 2.0 * ds.len() as f64 * per as f64 * 4.0;
    if let Some(left) = crate::memory::available().filter(|a| bytes > *a) {
        return Err(Error::Config(format!(
            "the raw pixels of {} images at {s} px are {} ({per} floats each, held twice while joined), more than the {} available: \
             a smaller crop-size, or fewer images (`limit`)",
            ds.len(),
            crate::memory::gib(bytes),
            crate::memory::gib(left)
        )));
    }
    let mut chunks = Vec::new();
    let mut y = Vec::with_capacity(ds.len());
    for_each_batch(ds, transform, batch, |_, buf, ys| {
        chunks.push(Tensor::from_slice(&buf).view([ys.len() as i64, per]));
        y.extend(ys);
        Ok(())
    })?;
    let x = if chunks.is_empty() { Tensor::zeros([0, per], (Kind::Float, Device::Cpu)) } else { Tensor::cat(&chunks, 0) };
    Ok(Features { x, y })
}

/// The key a cache file is written under: its file name without the extension (the caller
/// names the file by everything the features depend on), recorded in its metadata so that a
/// file copied over another's name is not read as that other's features.
fn cache_key(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Reads a cache file; `Err(why)` when it is not a usable feature file for `path` (of
/// `shape`, `[images, width]`, when given).
fn read_cache(path: &Path, shape: Option<[i64; 2]>) -> std::result::Result<Features, String> {
    // the tensors' checksum, as checkpoints carry: a flipped byte in the labels or the
    // features would otherwise change every score computed from them without a word
    // (read once: a cache of a large split is gigabytes)
    let tensors = match crate::checkpoint::state::read_verified(path) {
        Ok(Some(t)) => t,
        Ok(None) => return Err("written without a checksum, by an earlier version".into()),
        Err(Error::Checkpoint { message, .. }) => return Err(message),
        Err(e) => return Err(e.to_string()),
    };
    // files of earlier versions carry no key: read as before
    let meta = crate::checkpoint::state::metadata_of(path).unwrap_or_default();
    if let Some(key) = meta.get("key").filter(|k| **k != cache_key(path)) {
        return Err(format!("it holds the features of {key}: a file copied over another's name"));
    }
    let (Some(x), Some(y)) = (tensors.get("x"), tensors.get("y")) else {
        return Err("no `x` and `y` tensors".into());
    };
    let (x, y) = (x.shallow_clone(), y.shallow_clone());
    let (xs, ys) = (x.size(), y.size());
    if xs.len() != 2 || ys.len() != 1 || xs[0] != ys[0] || x.kind() != Kind::Float || y.kind() != Kind::Int64 {
        return Err(format!("features of shape {xs:?} with labels of shape {ys:?}"));
    }
    // (a file of another data set's or encoder's under this name scored a probe on the wrong
    // number of images, or failed later naming no file)
    if let Some([n, w]) = shape.filter(|s| *s != [xs[0], xs[1]]) {
        return Err(format!("features of {} images, {} values each, where the data has {n} images of {w} values each", xs[0], xs[1]));
    }
    let y = Vec::<i64>::try_from(&y).map_err(|e| e.to_string())?;
    Ok(Features { x, y })
}

/// The features stored at `path` (a safetensors file with `x` [N, F] f32 and `y` [N] i64),
/// or, when there is none (or it is unreadable), `compute()`'s, which are then stored there
/// atomically (written to a temporary file in the same folder, then renamed). The caller
/// keys the path by everything the features depend on (checkpoint, kind, split, transform);
/// the file records that key (its name) and is read only under it.
pub fn cached(path: &Path, compute: impl FnOnce() -> Result<Features>) -> Result<Features> {
    cached_as(path, None, compute)
}

/// [`cached`], where the features must have `shape` (`[images, width]`, when given): a file
/// of another shape under the key is recomputed, saying why.
pub fn cached_as(path: &Path, shape: Option<[i64; 2]>, compute: impl FnOnce() -> Result<Features>) -> Result<Features> {
    if path.exists() {
        match read_cache(path, shape) {
            Ok(f) => return Ok(f),
            Err(why) => tracing::warn!("{}: not a usable feature cache ({why}); recomputing", path.display()),
        }
    }
    let f = compute()?;
    let size = f.x.size();
    if size.len() != 2 || size[0] as usize != f.y.len() {
        return Err(Error::Data(format!("features to cache: shape {size:?} with {} labels", f.y.len())));
    }
    let x = f.x.to_kind(Kind::Float).to_device(Device::Cpu).contiguous();
    let y = Tensor::from_slice(&f.y);
    // atomically (a temporary file beside it, then renamed), with the data's SHA-256; a cache
    // that cannot be written (a full disk) is said, and the features computed are used (the
    // evaluation stopped, its extraction lost, where nothing needed the file)
    let saved = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e)),
        None => Ok(()),
    }
    .and_then(|()| crate::checkpoint::state::save_weights_with(path, &[("x".to_string(), x.shallow_clone()), ("y".to_string(), y)], &[("key", &cache_key(path))]));
    if let Err(e) = saved {
        tracing::warn!("the features are not cached ({e}): the evaluation goes on with them in memory, and the next one computes them again");
    }
    Ok(Features { x, y: f.y })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_round_trips_and_recomputes_broken_files() {
        let dir = crate::testdir::scratch("eval-cache", "round-trip");
        let path = dir.join("sub").join("f.safetensors");
        let x = Tensor::arange(12, (Kind::Float, Device::Cpu)).view([3, 4]);
        let a = cached(&path, || Ok(Features { x: x.copy(), y: vec![2, 0, 1] })).unwrap();
        let b = cached(&path, || Err(Error::Train("must not recompute".into()))).unwrap();
        assert_eq!(b.y, vec![2, 0, 1]);
        assert!(b.x.equal(&a.x) && b.x.equal(&x));
        // no temporary file left behind
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
        // a flipped byte of the data (the last label) is caught by the checksum
        let mut bytes = std::fs::read(&path).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let flipped = cached(&path, || Ok(Features { x: x.copy(), y: vec![2, 0, 1] })).unwrap();
        assert_eq!(flipped.y, vec![2, 0, 1], "recomputed, not read");
        // a file without a checksum (an earlier version's) is recomputed too
        Tensor::write_safetensors(&[("x", &x), ("y", &Tensor::from_slice(&[0i64, 0, 0]))], &path).unwrap();
        assert_eq!(cached(&path, || Ok(Features { x: x.copy(), y: vec![2, 0, 1] })).unwrap().y, vec![2, 0, 1]);
        // a cache that cannot be written (here its folder is a file; a full disk alike) leaves
        // the features computed in use, not an error that loses them
        let blocked = dir.join("a-file");
        std::fs::write(&blocked, b"x").unwrap();
        let f = cached(&blocked.join("f.safetensors"), || Ok(Features { x: x.copy(), y: vec![2, 0, 1] })).unwrap();
        assert!(f.x.equal(&x) && f.y == vec![2, 0, 1] && !blocked.join("f.safetensors").exists());
        std::fs::write(&path, b"garbage").unwrap();
        let c = cached(&path, || Ok(Features { x: x.copy(), y: vec![1, 1, 1] })).unwrap();
        assert_eq!(c.y, vec![1, 1, 1]);
        assert_eq!(cached(&path, || Err(Error::Train("no".into()))).unwrap().y, vec![1, 1, 1]);
        // a file copied over another key's name is not read as that key's features
        let other = dir.join("sub").join("g.safetensors");
        cached(&other, || Ok(Features { x: x.copy(), y: vec![0, 0, 0] })).unwrap();
        std::fs::copy(&other, &path).unwrap();
        assert_eq!(read_cache(&path, None).unwrap_err(), "it holds the features of g: a file copied over another's name");
        assert_eq!(cached(&path, || Ok(Features { x: x.copy(), y: vec![1, 1, 1] })).unwrap().y, vec![1, 1, 1], "recomputed");
        assert_eq!(read_cache(&path, None).unwrap().y, vec![1, 1, 1], "written under its own key");
        // a file of another shape under the key (another data set's, a forged one) is recomputed
        assert!(read_cache(&path, Some([2, 4])).unwrap_err().contains("features of 3 images, 4 values each, where the data has 2 images"));
        assert!(read_cache(&path, Some([3, 5])).unwrap_err().contains("the data has 3 images of 5 values each"));
        let two = cached_as(&path, Some([2, 4]), || Ok(Features { x: x.narrow(0, 0, 2), y: vec![0, 1] })).unwrap();
        assert_eq!(two.y, vec![0, 1], "recomputed");
        assert_eq!(cached_as(&path, Some([2, 4]), || Err(Error::Train("no".into()))).unwrap().y, vec![0, 1]);
        // a file of an earlier version (checksummed, no key) is still read
        crate::checkpoint::state::save_weights(&path, &[("x".to_string(), x.copy()), ("y".to_string(), Tensor::from_slice(&[2i64, 2, 2]))]).unwrap();
        assert_eq!(cached(&path, || Err(Error::Train("no".into()))).unwrap().y, vec![2, 2, 2]);
        // shape mismatch is refused, not written
        let bad = dir.join("bad.safetensors");
        assert!(cached(&bad, || Ok(Features { x: x.copy(), y: vec![0] })).is_err());
        assert!(!bad.exists());
    }
}
