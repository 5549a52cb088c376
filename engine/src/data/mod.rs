//! Data: datasets, the I-JEPA image transform and the threaded batch loader.
//!
//! Mirrors the data side of the official code: `src/datasets/imagenet1k.py` (dataset +
//! `DistributedSampler` + `DataLoader`), `src/transforms.py` (`make_transforms`:
//! RandomResizedCrop, ToTensor, Normalize) and torchvision's `RandomResizedCrop`, with every
//! random draw keyed by (seed, epoch, sample) instead of worker-local generators, so a batch
//! is the same for any number of loader threads and after a resume.
//!
//! - [`idx`]: the idx(.gz) file format of (Fashion-)MNIST.
//! - [`fashion_mnist`]: the Fashion-MNIST dataset, from a folder or embedded in the binary.
//! - [`transform`]: RandomResizedCrop (torchvision-exact parameters, PIL-exact bilinear
//!   resize), ToTensor + ImageNet Normalize, and the evaluation transform.
//! - [`loader`]: background workers building whole batches (images, labels, masks) in order.
//! - [`multicrop`]: several views of different sizes per image (DINO's global and local crops).

pub mod augment;
pub mod cifar;
pub mod dataset;
pub mod decode;
pub mod fashion_mnist;
pub mod idx;
pub mod image_folder;
pub mod list_file;
pub mod loader;
pub mod multicrop;
pub mod transform;

pub use dataset::{Dataset, Fingerprints, Image, SampleTransform};
pub use fashion_mnist::{FashionMnist, Split};
pub use loader::{Batch, CollateFn, EpochIter, Loader, LoaderCfg};
pub use multicrop::{MultiCrop, MultiCropCfg};
pub use transform::{
    CropParams, EvalTransform, Filter, PassOrder, RandomResizedCrop, TrainTransform, TrainTransformCfg,
    IMAGENET_MEAN, IMAGENET_STD,
};

use crate::error::Result;
use ijepa_dsl::config::{DataConfig, DataSource, DatasetKind};
use std::path::Path;
use std::sync::Arc;

/// The samples of another dataset at `indices` (the language's `limit N`, the monitor's
/// held-out images and the pretraining set without them).
struct Indexed {
    inner: Arc<dyn Dataset>,
    indices: Vec<usize>,
}

impl Indexed {
    /// The fingerprint of these indices into a dataset of fingerprint `inner`.
    fn of(&self, inner: &str) -> String {
        let mut h = dataset::Digest::new();
        h.update(inner.as_bytes());
        for &i in &self.indices {
            h.update(&(i as u64).to_le_bytes());
        }
        h.hex()
    }
}

impl Dataset for Indexed {
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn label(&self, i: usize) -> i64 {
        self.inner.label(self.indices[i])
    }
    fn num_classes(&self) -> usize {
        self.inner.num_classes()
    }
    fn describe(&self, i: usize) -> String {
        self.inner.describe(self.indices[i])
    }
    /// Of the images kept alone where the data is known by its images' names
    /// ([`Dataset::fingerprint_at`]), else of the indices into the whole data's fingerprint.
    fn fingerprint(&self) -> String {
        match self.inner.fingerprint_at(&self.indices) {
            Some((now, _)) => now,
            None => self.of(&self.inner.fingerprint()),
        }
    }
    /// (With the indices into the whole data's fingerprints, as versions before 2026-12-07
    /// knew the images kept of a folder.)
    fn earlier_fingerprints(&self) -> Vec<String> {
        let mut earlier = Vec::new();
        if let Some((_, written)) = self.inner.fingerprint_at(&self.indices) {
            earlier.extend(written);
            earlier.push(self.of(&self.inner.fingerprint()));
        }
        earlier.extend(self.inner.earlier_fingerprints().iter().map(|f| self.of(f)));
        earlier
    }
    fn fingerprint_at(&self, indices: &[usize]) -> Option<(String, Vec<String>)> {
        self.inner.fingerprint_at(&indices.iter().map(|&i| self.indices[i]).collect::<Vec<_>>())
    }
    fn size(&self, i: usize) -> Result<(usize, usize)> {
        self.inner.size(self.indices[i])
    }
    fn may_repeat(&self) -> bool {
        self.inner.may_repeat()
    }
    fn unreadable(&self) -> Vec<(usize, &'static str)> {
        selected_unreadable(self.inner.as_ref(), &self.indices)
    }
    fn check_format(&self, i: usize) -> Result<()> {
        self.inner.check_format(self.indices[i])
    }
    fn class_name(&self, c: i64) -> Option<String> {
        self.inner.class_name(c)
    }
    fn load(&self, i: usize, max_shrink: u32) -> Result<(Image, u32)> {
        self.inner.load(self.indices[i], max_shrink)
    }
}

/// The unreadable samples of `inner` among `indices`, by their position there.
pub(crate) fn selected_unreadable(inner: &dyn Dataset, indices: &[usize]) -> Vec<(usize, &'static str)> {
    let bad: std::collections::HashMap<usize, &'static str> = inner.unreadable().into_iter().collect();
    if bad.is_empty() {
        return Vec::new();
    }
    indices.iter().enumerate().filter_map(|(j, i)| bad.get(i).map(|why| (j, *why))).collect()
}

/// What makes a data set give as many training images as a run began on but not the same
/// ones, by its kind (`folder`: an image folder, known by its files' names; else a data set in
/// one file, known by its bytes): how a refused resume and the plan's warning name the cause.
pub fn other_images_cause(folder: bool) -> &'static str {
    if folder {
        "files renamed, moved to another class or replaced by files of other names"
    } else {
        "other contents in its files"
    }
}

/// The samples of `ds` whose first bytes are no JPEG or PNG file ([`Dataset::check_format`]):
/// how many, and the first five's errors; `None` when every one is. (A file that cannot be
/// opened counts as one: it is as unreadable.)
pub fn wrong_formats(ds: &dyn Dataset) -> Option<(usize, String)> {
    let bad: Vec<crate::Error> = (0..ds.len()).filter_map(|i| ds.check_format(i).err()).collect();
    if bad.is_empty() {
        return None;
    }
    // (each one's error without the `dataset:` its kind prefixes, once for the list)
    let shown = bad.iter().map(|e| match e {
        crate::Error::Data(m) => m.clone(),
        e => e.to_string(),
    });
    Some((bad.len(), first_five(shown, bad.len(), "; ")))
}

/// The first five of `n` items joined by `sep`, with `...` after them when there are more:
/// how a message lists the samples it is about.
pub fn first_five(items: impl Iterator<Item = String>, n: usize, sep: &str) -> String {
    let shown: Vec<String> = items.take(5).collect();
    format!("{}{}", shown.join(sep), if n > 5 { format!("{sep}...") } else { String::new() })
}

/// How many samples of `ds` are known not to be readable images ([`Dataset::unreadable`]),
/// and the first five as an error names them (`FILE (why)`); `None` when there are none.
pub fn unreadable_listed(ds: &dyn Dataset) -> Option<(usize, String)> {
    let bad = ds.unreadable();
    if bad.is_empty() {
        return None;
    }
    let shown = bad.iter().map(|(i, why)| format!("{} ({why})", ds.describe(*i)));
    Some((bad.len(), first_five(shown, bad.len(), ", ")))
}

/// Refuses (or, for pretraining's images under `on-error "skip"`, warns of) the samples of
/// `ds` known not to be readable images ([`Dataset::unreadable`]: an image folder's links to
/// nothing and files of formats not decoded): found when listed, not when the loader reached
/// them (a run stopped mid-epoch, or in a test folder after pretraining). Only the samples
/// kept count: a stray file a `subset` list leaves out is never read.
pub fn check_unreadable(ds: &dyn Dataset, cfg: &DataConfig, split: Split) -> Result<()> {
    let Some((n, listed)) = unreadable_listed(ds) else { return Ok(()) };
    let skip = cfg.on_error == ijepa_dsl::config::OnError::Skip;
    match split {
        Split::Train if skip => {
            warn_once(
                format!("unreadable {listed}"),
                format!(
                    "{n} training image(s) cannot be read: {listed}; pretraining skips them (on-error \"skip\"), but the evaluations and the monitor read every image of their sets and stop on them"
                ),
            );
            Ok(())
        }
        Split::Train => Err(crate::Error::Data(format!(
            "{n} training image(s) cannot be read: {listed}; convert them to JPEG or PNG or remove them (`on-error \"skip\"` pretrains without them, but the evaluations and the monitor read every image)"
        ))),
        Split::Test => Err(crate::Error::Data(format!(
            "{n} test image(s) cannot be read: {listed}; the evaluations read every test image: convert them to JPEG or PNG or remove them"
        ))),
    }
}

/// An image the evaluations or the monitor could not read, under `on-error "skip"` (which
/// substitutes the pretraining's images only: a probe or a monitor scores every image of its
/// set): said in the error, so the setting does not look ignored.
/// Under `on-error "fail"` the error says the way out too.
pub fn outside_skip(cfg: &DataConfig, e: crate::Error) -> crate::Error {
    match e {
        crate::Error::Data(m) if cfg.on_error == ijepa_dsl::config::OnError::Skip => crate::Error::Data(format!(
            "{m} (on-error \"skip\" substitutes the pretraining's images only; the evaluations and the monitor read every image of their sets: fix or remove the file)"
        )),
        crate::Error::Data(m) => crate::Error::Data(format!("{m} (the evaluations and the monitor read every image of their sets: fix or remove the file)")),
        e => e,
    }
}

/// An image the monitor could not read, during a pretraining: as [`outside_skip`], but the way
/// out is a readable copy under the file's name. The monitor's images are held out of the
/// training split, so a removed one changes the training images, which no checkpoint of the
/// run resumes on.
pub fn monitor_unreadable(cfg: &DataConfig, e: crate::Error) -> crate::Error {
    let skip = if cfg.on_error == ijepa_dsl::config::OnError::Skip {
        "on-error \"skip\" substitutes the pretraining's images only; "
    } else {
        ""
    };
    match e {
        crate::Error::Data(m) => crate::Error::Data(format!(
            "{m} ({skip}the monitor reads every image it holds out: put a readable copy in its place, under its name; removing the file changes the \
             training images, which a checkpoint of this run does not resume on)"
        )),
        e => e,
    }
}

/// The samples of `ds` at `indices`, in that order (e.g. a held-out split).
pub fn subset(ds: Arc<dyn Dataset>, indices: Vec<usize>) -> Arc<dyn Dataset> {
    Arc::new(Indexed { inner: ds, indices })
}

/// What a monitor's hold-out must leave and take: a batch on each of `world` processes for
/// pretraining, and at least `least` images for the monitor (its minimum, and more than its
/// kNN's `k`).
#[derive(Debug, Clone, Copy)]
pub struct HoldOutNeeds {
    /// The pretraining's batch size (one process's).
    pub batch: usize,
    /// Processes sharing the rest.
    pub world: usize,
    /// The fewest images the monitor may hold out.
    pub least: usize,
    /// Says nothing of samples left out (a run that only compares a finished pretraining's
    /// images with the data's said it at every skip).
    pub quiet: bool,
}

impl HoldOutNeeds {
    /// For a monitor voting among `k` neighbours, a batch of `batch` on each of `world`.
    pub fn new(batch: usize, world: usize, k: usize) -> Self {
        Self { batch: batch.max(1), world: world.max(1), least: ijepa_dsl::fewest_monitor_images(k), quiet: false }
    }

    /// Whether `len` images hold the fewest held-out images and a batch on every process.
    pub fn fit_in(&self, len: usize) -> bool {
        len >= self.least + self.batch * self.world
    }
}

/// The way out of a monitor holding out more than the `len` images there are: fewer held-out
/// images where the fewest the monitor takes leaves pretraining its batches, else no monitor
/// (and a smaller batch where even all `len` images give a process less than one).
pub fn fewer_held_out(len: usize, needs: HoldOutNeeds) -> String {
    let leave = needs.batch * needs.world;
    let least = needs.least;
    if needs.fit_in(len) {
        format!("lower `monitor images=` to at most {} (it takes at least {least}; pretraining needs {leave} more), or remove `monitor`", len - leave)
    } else if len < needs.world {
        format!("too few for a monitor, and fewer than the {} processes: give more training images, or run fewer processes", needs.world)
    } else if len / needs.world >= needs.batch {
        format!("too few for a monitor (it holds out at least {least}, and pretraining needs {leave} more): remove `monitor`, or give more training images")
    } else {
        format!(
            "too few for a monitor, and for a batch of {} on each process without one: remove `monitor` and lower the batch size (`batch-size`) to at most {}, or give more training images",
            needs.batch,
            len / needs.world
        )
    }
}

/// Splits `ds` into (the rest, `n` held-out samples). The held-out samples are a fixed random
/// draw (the same for every seed and experiment on the same dataset), in index order, of its
/// files: where a list names a file twice ([`Dataset::describe`], [`Dataset::may_repeat`]) the
/// draw is over its distinct files (each first sample), and a sample of the rest that is the
/// same file as a held-out one is left out of the rest. (Drawn over the samples, a file listed
/// many times was held out as often, and all its copies left pretraining: 43% of a list that
/// weighted ten files up.) Without repeats the draw is the samples' as it always was.
///
/// Errors: `n` not below the dataset's size (the error names a way out that meets `needs`:
/// [`fewer_held_out`]).
pub fn hold_out(ds: Arc<dyn Dataset>, n: usize, needs: HoldOutNeeds) -> Result<(Arc<dyn Dataset>, Arc<dyn Dataset>)> {
    let len = ds.len();
    if n >= len {
        return Err(crate::Error::Config(format!("the monitor holds out {n} images, but the training split has only {len}: {}", fewer_held_out(len, needs))));
    }
    // a file listed twice (a `subset` list keeps duplicates, as the official ImageNetSubset
    // does) is one image: the monitor holds it out once (two copies scored each other at
    // cosine 1 in its leave-one-out kNN: 94% where the distinct images gave 70%), and its other
    // copies leave pretraining too, or the monitor would score images the encoder trains on
    // (only a dataset that can repeat a file is read for it: a path per sample costs seconds
    // on a folder of millions)
    let files: Option<Vec<String>> = ds.may_repeat().then(|| (0..len).map(|i| ds.describe(i)).collect());
    let firsts: Vec<usize> = match &files {
        Some(files) => {
            let mut seen = std::collections::HashSet::new();
            (0..len).filter(|&i| seen.insert(files[i].as_str())).collect()
        }
        None => (0..len).collect(),
    };
    let m = firsts.len();
    if n >= m {
        return Err(crate::Error::Config(format!(
            "the monitor holds out {n} images, but the training split names only {m} different files: {}",
            fewer_held_out(m, needs)
        )));
    }
    // "MONITOR" in ASCII, and the count: a key of its own, independent of the experiment seed
    let perm = crate::rng::Rng::from_key(&[0x004d_4f4e_4954_4f52, m as u64]).permutation(m);
    let mut held: Vec<usize> = perm[m - n..].iter().map(|&j| firsts[j]).collect();
    let mut rest: Vec<usize> = match &files {
        Some(files) => {
            let held_files: std::collections::HashSet<&str> = held.iter().map(|&i| files[i].as_str()).collect();
            (0..len).filter(|&i| !held_files.contains(files[i].as_str())).collect()
        }
        None => perm[..m - n].to_vec(),
    };
    let before = len - n;
    held.sort_unstable();
    rest.sort_unstable();
    if rest.len() < before && !needs.quiet {
        // (once a process: the run's check and its pretraining each hold out)
        let said = format!(
            "{} pretraining sample(s) repeat an image the monitor holds out (a file listed twice): left out of pretraining, so the monitor's images stay unseen",
            before - rest.len()
        );
        warn_once(said.clone(), said);
    }
    if rest.is_empty() {
        return Err(crate::Error::Config(format!("the monitor holds out {n} images and every other sample repeats one of them: {}", fewer_held_out(n, needs))));
    }
    Ok((Arc::new(Indexed { inner: ds.clone(), indices: rest }), Arc::new(Indexed { inner: ds, indices: held })))
}

/// `ds` with each file once (its first sample; a `subset` list may name a file twice, as the
/// official ImageNetSubset keeps), and how many copies were left out. The evaluations train
/// on it: a copy in a probe's held-out part scored against its twin in the part it trained on
/// and inflated the score its hyper-parameters were chosen by. A dataset that cannot repeat a
/// file is returned as it is.
pub fn distinct(ds: Arc<dyn Dataset>) -> (Arc<dyn Dataset>, usize) {
    if !ds.may_repeat() {
        return (ds, 0);
    }
    let mut seen = std::collections::HashSet::new();
    let indices: Vec<usize> = (0..ds.len()).filter(|&i| seen.insert(ds.describe(i))).collect();
    let copies = ds.len() - indices.len();
    if copies == 0 {
        return (ds, 0);
    }
    (Arc::new(Indexed { inner: ds, indices }), copies)
}

/// The dataset a data block describes, for `split` (the train split for pretraining).
pub fn open_dataset(cfg: &DataConfig, split: Split) -> Result<Arc<dyn Dataset>> {
    let root = match &cfg.source {
        DataSource::Path(p) => Some(p.as_path()),
        DataSource::Embedded => None,
    };
    let need_root = || {
        root.ok_or_else(|| crate::Error::Config(format!("the {:?} dataset needs `root=` (no embedded copy)", cfg.dataset)))
    };
    let on_error = match cfg.on_error {
        ijepa_dsl::config::OnError::Fail => image_folder::OnError::Fail,
        ijepa_dsl::config::OnError::Skip => image_folder::OnError::Skip,
    };
    let ds: Arc<dyn Dataset> = match cfg.dataset {
        DatasetKind::FashionMnist => Arc::new(FashionMnist::load(&cfg.source, split)?),
        // the same idx layout and file names; only Fashion-MNIST has an embedded copy
        DatasetKind::Mnist => Arc::new(FashionMnist::from_dir(need_root()?, split)?),
        DatasetKind::ImageFolder if split == Split::Test => {
            // the test images: their own folder, with the training folder's classes (the same
            // names give the same labels)
            let test = cfg.test_root.as_deref().ok_or_else(|| {
                crate::Error::Config("an image folder's evaluations need its test images: `test-root` in the data block".into())
            })?;
            let folder = image_folder::ImageFolder::open(test, on_error)?;
            // the training folder's class names only: its images are not listed again
            same_classes(need_root()?, &image_folder::class_names(need_root()?)?, &folder)?;
            Arc::new(folder)
        }
        DatasetKind::ImageFolder => {
            let folder = image_folder::ImageFolder::open(need_root()?, on_error)?;
            // (said, as nothing else would: the run trains, the test images among its classes)
            if let Some(splits) = folder.split_named_classes() {
                warn_once(
                    format!("split classes {}", folder.root().display()),
                    format!(
                        "{}: its class folders include {}, the names of a data set's splits: is `root=` one level too high? (it names the training split's folder, whose sub-folders are the classes; the test split goes to `test-root`; ignore this if they are classes)",
                        folder.root().display(),
                        splits.join(", ")
                    ),
                );
            }
            match &cfg.subset {
                Some(list) => Arc::new(list_file::Subset::from_list(folder, list)?),
                None => Arc::new(folder),
            }
        }
        DatasetKind::Cifar10 | DatasetKind::Cifar100 => {
            let variant = if cfg.dataset == DatasetKind::Cifar10 { cifar::CifarVariant::Cifar10 } else { cifar::CifarVariant::Cifar100 };
            let split = match split {
                Split::Train => cifar::CifarSplit::Train,
                Split::Test => cifar::CifarSplit::Test,
            };
            Arc::new(cifar::Cifar::open(need_root()?, variant, split)?)
        }
    };
    let ds: Arc<dyn Dataset> = match cfg.limit {
        Some(n) if split == Split::Train && n < ds.len() => {
            warn_missing_classes(ds.as_ref(), n);
            Arc::new(Indexed { inner: ds, indices: (0..n).collect() })
        }
        Some(n) if split == Split::Train && n > ds.len() => {
            warn_once(
                format!("limit {n} {}", ds.describe(0)),
                format!(
                    "`limit {n}` is more than the {} training images this dataset has: it trains on all of them (the folder's name \
                     still counts {n}: without `limit`, or with `limit {}`, the same data trains again under another)",
                    ds.len(),
                    ds.len()
                ),
            );
            ds
        }
        _ => ds,
    };
    check_unreadable(ds.as_ref(), cfg, split)?;
    Ok(ds)
}

/// `Ok` when `path` (a dataset's file: an idx or CIFAR batch file) is a regular file (a link
/// to one counts); else an error saying what it is: a named pipe or a device was read without
/// end (a pipe's `open` waits for a writer forever, `/dev/zero` filled the memory), a folder or
/// a link to nothing was "no such file".
pub(crate) fn data_file(path: &Path) -> Result<()> {
    let why = match std::fs::metadata(path) {
        Ok(m) if m.is_file() => return Ok(()),
        Ok(m) if m.is_dir() => "a folder, not a data file",
        Ok(_) => "not a regular file (a named pipe, a device or a socket): reading it would wait forever or never end",
        Err(_) if path.symlink_metadata().is_ok() => "a symbolic link to nothing (its target does not exist)",
        Err(e) => return Err(crate::Error::io(path, e)),
    };
    Err(crate::Error::Data(format!("{}: {why}", path.display())))
}

/// [`data_file`]'s error for the first of `paths` that is there (a folder, a named pipe, a link
/// to nothing) when none of them is a file to read: where a dataset's file was looked for in
/// several places, "no such file" is said only when none is there at all.
pub(crate) fn no_file_among(paths: &[&Path]) -> Result<()> {
    paths.iter().find(|p| p.symlink_metadata().is_ok()).map_or(Ok(()), |p| data_file(p))
}

/// Says `message` once per process for `key` (a dataset is opened by every stage of a study).
pub(crate) fn warn_once(key: String, message: String) {
    static WARNED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut warned = WARNED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !warned.contains(&key) {
        warned.push(key);
        tracing::warn!("{message}");
    }
}

/// Warns (once per dataset and limit) when the first `n` images of `ds` leave classes out:
/// an image folder lists its classes one after another, so `limit` keeps the first few
/// classes only, while the test split has them all (the probes then cannot score above the
/// share of the classes kept).
fn warn_missing_classes(ds: &dyn Dataset, n: usize) {
    let mut seen = vec![false; ds.num_classes()];
    for i in 0..n {
        if let Some(s) = usize::try_from(ds.label(i)).ok().and_then(|c| seen.get_mut(c)) {
            *s = true;
        }
    }
    let missing = seen.iter().filter(|s| !**s).count();
    if missing == 0 {
        return;
    }
    // (why: a dataset of mixed classes, Fashion-MNIST's, was said to list them one after another)
    let grouped = (1..n).all(|i| ds.label(i - 1) <= ds.label(i));
    warn_once(
        format!("{} {n}", ds.describe(0)),
        format!(
            "`limit {n}` keeps the first {n} of the {} training images in the dataset's order, which leaves {missing} of its {} classes without an image \
             ({}); the test split has them all, so the probes cannot score above the share of classes kept",
            ds.len(),
            ds.num_classes(),
            if grouped { "the dataset lists its classes one after another, as an image folder does" } else { "too few images for its classes" }
        ),
    );
}

/// A test folder must hold the training folder's classes, in the same sorted order: a label is
/// a class's index, so a class missing or added on one side would shift every label after it.
fn same_classes(train_root: &Path, train: &[String], test: &image_folder::ImageFolder) -> Result<()> {
    if train == test.classes() {
        return Ok(());
    }
    // (each side's count, and its first five names: five of a hundred read as five)
    let only = |a: &[String], b: &[String]| -> (usize, Vec<String>) {
        let b: std::collections::HashSet<&String> = b.iter().collect();
        let not_in_b: Vec<&String> = a.iter().filter(|c| !b.contains(c)).collect();
        (not_in_b.len(), not_in_b.into_iter().take(5).cloned().collect())
    };
    let ((n_train_only, mut train_only), (n_test_only, mut test_only)) = (only(train, test.classes()), only(test.classes(), train));
    let listed = |n: usize, names: &[String]| if n > names.len() { format!("{n}, of which {}, ...", names.join(", ")) } else { names.join(", ") };
    // names on both sides with characters beyond ASCII may print alike and differ (`café`
    // written as é, or as e and a combining accent): shown with those characters as codes
    let mut note = "";
    let wide = |v: &[String]| v.iter().any(|s| !s.is_ascii());
    if !train_only.is_empty() && !test_only.is_empty() && (wide(&train_only) || wide(&test_only)) {
        let escape = |v: &mut Vec<String>| {
            for s in v.iter_mut() {
                *s = s.chars().map(|c| if c.is_ascii() { c.to_string() } else { c.escape_unicode().to_string() }).collect();
            }
        };
        escape(&mut train_only);
        escape(&mut test_only);
        note = " (characters beyond ASCII as their codes: names that print alike can differ, e.g. in their Unicode normalisation)";
    }
    Err(crate::Error::Data(format!(
        "the test folder {} does not have the classes of the training folder {} ({} against {} classes{}{}{note}): a label is a class's index, so both need the same class folders",
        test.root().display(),
        train_root.display(),
        test.classes().len(),
        train.len(),
        if train_only.is_empty() { String::new() } else { format!("; only in training: {}", listed(n_train_only, &train_only)) },
        if test_only.is_empty() { String::new() } else { format!("; only in test: {}", listed(n_test_only, &test_only)) },
    )))
}

/// The resampling filter of an `interpolation` setting.
pub fn filter(i: ijepa_dsl::config::Interpolation) -> Filter {
    match i {
        ijepa_dsl::config::Interpolation::Bilinear => Filter::Bilinear,
        ijepa_dsl::config::Interpolation::Bicubic => Filter::Bicubic,
    }
}

/// The pretraining transform a data block describes.
pub fn train_transform(cfg: &DataConfig) -> Result<Arc<dyn SampleTransform>> {
    let mut t = TrainTransformCfg {
        size: cfg.crop_size,
        scale: cfg.crop_scale,
        hflip: cfg.hflip,
        blur: cfg.blur,
        exact: cfg.exact_decode,
        filter: filter(cfg.interpolation),
        ..Default::default()
    };
    if let Some(s) = cfg.color_jitter {
        t = t.with_color_distortion(s);
    }
    Ok(Arc::new(TrainTransform::new(t)?))
}
