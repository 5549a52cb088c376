//! The background batch loader: worker threads build whole batches (crops, labels, masks)
//! and deliver them to the training loop in step order.
//!
//! Plays the role of the official `src/datasets/imagenet1k.py` `make_imagenet1k`
//! (`DistributedSampler` + `DataLoader(drop_last=True, collate_fn=MaskCollator)`), with two
//! deliberate differences that make runs exactly repeatable:
//!
//! - randomness is keyed, not stateful: the epoch permutation comes from
//!   `Rng::derive(seed, Stream::Shuffle, [epoch])`, the crop of sample `i` in epoch `e` from
//!   `Rng::derive(seed, Stream::Crop, [e, i])`, and the collate function (mask sampler) is
//!   called with `(epoch, step, batch size)` so it can key its own generator. A batch is
//!   therefore the same for any number of workers, and a resumed run can restart at any step
//!   ([`Loader::epoch_from`]);
//! - sharding drops the tail instead of padding: with `N` samples and world size `W` every
//!   rank takes `floor(N / W)` samples, rank `r` the permuted positions `r, r + W, ...`
//!   (torch's `DistributedSampler(drop_last=True)`); the official sampler pads by repeating
//!   samples, which only matters when `W` does not divide `N`.
//!
//! Workers claim steps from a shared counter and may run at most `workers + prefetch`
//! steps ahead of the consumer, which bounds memory; a reorder buffer restores step order.
//! An error in a worker (transform, collate function, even a panic) reaches the consumer as
//! `Err` at its step, after every earlier batch; dropping the iterator stops and joins the
//! workers.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use ijepa_dsl::config::DataConfig;
use tch::{Device, Tensor};

use super::dataset::{Dataset, SampleTransform};
use crate::error::{Error, Result};
use crate::rng::{Rng, Stream};

/// The per-batch collate function: `(epoch, step in epoch, batch size) -> masks`. It must be
/// a pure function of its arguments (and of what it captured, e.g. seed and rank) for runs to
/// be repeatable; it is called from worker threads, possibly concurrently.
pub type CollateFn<M> = Arc<dyn Fn(u64, u64, usize) -> Result<M> + Send + Sync>;

/// What an unreadable image's error says a run can do (appended to the image's own error;
/// a benchmark, which resumes nothing, takes it off).
pub const RUN_ADVICE: &str = " (replace it with a readable copy under the same name and run again, which resumes; removing it, or `on-error \"skip\"` in the data block, trains on other images, from step 0: after a removal the run asks to move its folder aside first)";

/// Loader settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LoaderCfg {
    /// Images per batch (per rank).
    pub batch_size: usize,
    /// Worker threads (0 is treated as 1).
    pub workers: usize,
    /// Extra batches that may wait, built, for the consumer (beyond one per worker).
    pub prefetch: usize,
    /// Root seed of the run.
    pub seed: u64,
    /// Drop the last incomplete batch of each epoch (official: true).
    pub drop_last: bool,
    /// This process's rank.
    pub rank: usize,
    /// Number of ranks.
    pub world_size: usize,
    /// Replace unreadable images by deterministic substitutes (counted in
    /// [`Batch::skipped`]) instead of failing.
    pub skip_errors: bool,
}

impl LoaderCfg {
    /// The loader settings of a data config, for rank `rank` of `world_size`.
    pub fn from_data_config(cfg: &DataConfig, seed: u64, rank: usize, world_size: usize) -> Self {
        Self {
            batch_size: cfg.batch_size,
            workers: cfg.workers,
            prefetch: cfg.prefetch,
            seed,
            drop_last: true,
            rank,
            world_size,
            skip_errors: cfg.on_error == ijepa_dsl::config::OnError::Skip,
        }
    }

    /// Samples a rank sees per epoch of `n` images: `floor(n / world_size)`.
    pub fn samples_per_rank(&self, n: usize) -> usize {
        n / self.world_size.max(1)
    }

    /// Batches per epoch a rank gets of `n` images (the official `ipe`).
    pub fn steps_per_epoch(&self, n: usize) -> usize {
        let per = self.samples_per_rank(n);
        match (self.batch_size, self.drop_last) {
            (0, _) => 0,
            (b, true) => per / b,
            (b, false) => per.div_ceil(b),
        }
    }

    /// Refuses settings a loader of `n` images cannot run: no batch, a rank outside the world,
    /// no image, less than one batch a rank each epoch ([`Loader::new`] checks it; a run checks
    /// it before it trains, without a loader).
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting to change ([`Error::Data`] for no image).
    pub fn check(&self, n: usize) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::Config("loader: batch size must be > 0".into()));
        }
        if self.world_size == 0 || self.rank >= self.world_size {
            return Err(Error::Config(format!(
                "loader: rank {} is not in a world of {}",
                self.rank, self.world_size
            )));
        }
        if n == 0 {
            return Err(Error::Data("loader: the dataset is empty".into()));
        }
        if self.steps_per_epoch(n) == 0 {
            let per = self.samples_per_rank(n);
            return Err(Error::Config(format!(
                "loader: {n} images shared by {} rank(s) give {per} per rank, less than one batch of {}: {}",
                self.world_size,
                self.batch_size,
                match per {
                    0 => "give more images, or run fewer processes".to_string(),
                    _ => format!("lower the batch size (`batch-size`) to at most {per}, or give more images"),
                }
            )));
        }
        Ok(())
    }
}

/// One batch of transformed images with labels and masks.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch<M> {
    /// Normalised images, `[B, 3, S, S]` row-major (`S = crop_size`); with several views per
    /// sample (`view_sizes`), each sample's views one after the other.
    pub images: Vec<f32>,
    /// Class labels, `[B]`.
    pub labels: Vec<i64>,
    /// Dataset indices of the images, `[B]`.
    pub indices: Vec<usize>,
    /// What the collate function returned for this batch.
    pub masks: M,
    /// Epoch of the batch.
    pub epoch: u64,
    /// Step of the batch within its epoch (0-based).
    pub step: u64,
    /// Side `S` of the images (of the first view).
    pub crop_size: usize,
    /// The side of each view of a sample (one entry for single-view transforms).
    pub view_sizes: Vec<usize>,
    /// Distinct unreadable images replaced by substitutes in this batch (`skip_errors` only).
    pub skipped: usize,
    /// Those images, described (their file where the dataset has files), each with why it
    /// could not be read.
    pub skipped_files: Vec<(String, String)>,
}

impl<M> Batch<M> {
    /// Number of images `B`.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the batch holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The images as a float tensor `[B, 3, S, S]` on `device`. On CUDA the host copy is
    /// pinned and the transfer is non-blocking, so it overlaps with queued GPU work.
    pub fn images_tensor(&self, device: Device) -> Result<Tensor> {
        let s = self.crop_size as i64;
        to_device_pinned(Tensor::f_from_slice(&self.images)?.f_view([self.len() as i64, 3, s, s])?, device)
    }

    /// Every view as its own tensor `[B, 3, S_v, S_v]` on `device`, in the transform's view
    /// order (one tensor for a single-view transform, the same as [`Batch::images_tensor`]).
    ///
    /// # Errors
    /// libtorch's.
    pub fn views_tensors(&self, device: Device) -> Result<Vec<Tensor>> {
        if self.view_sizes.len() <= 1 {
            return Ok(vec![self.images_tensor(device)?]);
        }
        let per: Vec<i64> = self.view_sizes.iter().map(|&s| (3 * s * s) as i64).collect();
        let all = to_device_pinned(Tensor::f_from_slice(&self.images)?.f_view([self.len() as i64, per.iter().sum::<i64>()])?, device)?;
        let mut out = Vec::with_capacity(per.len());
        let mut offset = 0;
        for (&n, &s) in per.iter().zip(&self.view_sizes) {
            let s = s as i64;
            out.push(all.f_narrow(1, offset, n)?.f_contiguous()?.f_view([self.len() as i64, 3, s, s])?);
            offset += n;
        }
        Ok(out)
    }

    /// The labels as an int64 tensor `[B]` on `device`.
    pub fn labels_tensor(&self, device: Device) -> Result<Tensor> {
        Ok(Tensor::f_from_slice(&self.labels)?.f_to_device(device)?)
    }
}

/// A host tensor on `device`: on CUDA through a pinned copy and a non-blocking transfer, so it
/// overlaps with queued GPU work; elsewhere as it is.
fn to_device_pinned(t: Tensor, device: Device) -> Result<Tensor> {
    Ok(match device {
        Device::Cuda(_) => t.f_pin_memory(device)?.f_to_device_(device, tch::Kind::Float, true, false)?,
        _ => t,
    })
}

/// A dataset with its transform, sampler and collate function; [`Loader::epoch`] starts the
/// workers of one epoch.
pub struct Loader<M> {
    dataset: Arc<dyn Dataset>,
    cfg: LoaderCfg,
    transform: Arc<dyn SampleTransform>,
    collate: CollateFn<M>,
}

impl<M> std::fmt::Debug for Loader<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader")
            .field("dataset_len", &self.dataset.len())
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl<M: Send + 'static> Loader<M> {
    /// A loader over `dataset`; errors when the settings are unusable or leave this rank
    /// less than one batch per epoch.
    pub fn new(
        dataset: Arc<dyn Dataset>,
        transform: Arc<dyn SampleTransform>,
        cfg: LoaderCfg,
        collate: CollateFn<M>,
    ) -> Result<Self> {
        cfg.check(dataset.len())?;
        tune_allocator();
        Ok(Self {
            dataset,
            cfg,
            transform,
            collate,
        })
    }

    /// The settings.
    pub fn cfg(&self) -> &LoaderCfg {
        &self.cfg
    }

    /// The dataset.
    pub fn dataset(&self) -> &Arc<dyn Dataset> {
        &self.dataset
    }

    /// Samples this rank sees per epoch: `floor(N / world_size)`.
    pub fn samples_per_rank(&self) -> usize {
        self.cfg.samples_per_rank(self.dataset.len())
    }

    /// Batches per epoch on this rank (the official `ipe`).
    pub fn steps_per_epoch(&self) -> usize {
        self.cfg.steps_per_epoch(self.dataset.len())
    }

    /// This rank's dataset indices for `epoch`, in order (before batching).
    pub fn shard(&self, epoch: u64) -> Vec<usize> {
        let perm =
            Rng::derive(self.cfg.seed, Stream::Shuffle, &[epoch]).permutation(self.dataset.len());
        let per_rank = self.samples_per_rank();
        perm.into_iter()
            .skip(self.cfg.rank)
            .step_by(self.cfg.world_size)
            .take(per_rank)
            .collect()
    }

    /// The batches of `epoch`, in step order.
    pub fn epoch(&self, epoch: u64) -> EpochIter<M> {
        self.epoch_from(epoch, 0)
    }

    /// The batches of `epoch` from step `first_step` on (for resuming mid-epoch); the same
    /// batches an iteration from step 0 yields at those steps.
    pub fn epoch_from(&self, epoch: u64, first_step: u64) -> EpochIter<M> {
        let steps = self.steps_per_epoch() as u64;
        let first = first_step.min(steps);
        let workers = self.cfg.workers.max(1);
        // Never more in flight than the epoch has steps (and no huge channel for a huge
        // prefetch setting).
        let window = workers
            .saturating_add(self.cfg.prefetch)
            .min((steps as usize).max(1)) as u64;
        let shared = Arc::new(Shared {
            dataset: Arc::clone(&self.dataset),
            transform: Arc::clone(&self.transform),
            skip_errors: self.cfg.skip_errors,
            collate: Arc::clone(&self.collate),
            shard: self.shard(epoch),
            batch_size: self.cfg.batch_size,
            seed: self.cfg.seed,
            epoch,
            window,
            stop: AtomicBool::new(false),
            ctl: Mutex::new(Ctl {
                next_claim: first,
                consumed: first,
                limit: steps,
            }),
            cv: Condvar::new(),
            unreadable: Mutex::new(Default::default()),
        });
        let (tx, rx) = sync_channel(window as usize);
        let mut it = EpochIter {
            shared: Arc::clone(&shared),
            rx: Some(rx),
            pending: BTreeMap::new(),
            next: first,
            end: steps,
            done: false,
            handles: Vec::new(),
            startup_error: None,
            stop_on_signal: false,
        };
        let n_threads = (workers as u64).min(steps - first) as usize;
        for w in 0..n_threads {
            let (sh, tx) = (Arc::clone(&shared), tx.clone());
            match std::thread::Builder::new()
                .name(format!("ijepa-loader-{w}"))
                .spawn(move || worker(sh, tx))
            {
                Ok(h) => it.handles.push(h),
                Err(e) => {
                    it.startup_error = Some(Error::Data(format!(
                        "loader: cannot start a worker thread: {e}"
                    )));
                    break;
                }
            }
        }
        it
    }
}

/// Keeps image-sized buffers (decoded JPEGs, batches) on the malloc heap instead of a fresh
/// mmap per allocation: glibc maps every block over its (dynamic) threshold, and the page
/// faults of those maps took ~20% of the loader's time. Measured with `ijepa bench data` on
/// 224 px crops: 616 -> 752 images/s on one thread. Linux/glibc only; once per process.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only sets allocator parameters; called before the workers start.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20);
                libc::mallopt(libc::M_TOP_PAD, 16 << 20);
            }
        });
    }
}

/// How many training steps of this process compute on the CPU now ([`StepOnCpu`]), and the
/// workers' wait for it to be none.
static CPU_STEPS: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

/// Held while a training step computes on the CPU: the loader's workers pause between images
/// until it is dropped, and build batches in the gaps between steps.
///
/// torch's threads take every core for the step's operators; a worker decoding beside them
/// took a core from one of them, and the others waited for it at each operator's end: the
/// run's steps were ~13% slower than `ijepa bench step`'s on 2 cores while the workers used
/// ~2.5% of the CPU. Paused, the workers decode one batch between steps instead.
/// `IJEPA_LOADER=overlap` keeps them running beside the step (what a step on a GPU does
/// anyway: it is not paused there).
pub struct StepOnCpu {
    held: bool,
}

impl StepOnCpu {
    /// Pauses the workers while a step computes on `device` (a CPU), unless
    /// `IJEPA_LOADER=overlap`.
    pub fn begin(device: Device) -> StepOnCpu {
        let held = device == Device::Cpu && !overlap_wanted();
        if held {
            *CPU_STEPS.0.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        }
        StepOnCpu { held }
    }
}

impl Drop for StepOnCpu {
    fn drop(&mut self) {
        if self.held {
            let mut n = CPU_STEPS.0.lock().unwrap_or_else(|e| e.into_inner());
            *n = n.saturating_sub(1);
            CPU_STEPS.1.notify_all();
        }
    }
}

/// `IJEPA_LOADER=overlap`: the loader's workers run beside the step on a CPU too.
fn overlap_wanted() -> bool {
    static WANTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WANTED.get_or_init(|| loader_setting(std::env::var("IJEPA_LOADER").ok().as_deref()))
}

/// Whether the variable's value asks for overlap; another value is warned of (`overlapp`
/// was ignored in silence, and the user believed the loader overlapped).
fn loader_setting(value: Option<&str>) -> bool {
    match value.map(str::trim) {
        Some(v) if v.eq_ignore_ascii_case("overlap") => true,
        Some("") | None => false,
        Some(v) => {
            tracing::warn!("IJEPA_LOADER={v:?} is not a setting of the loader (the one there is: `overlap`): ignored, the loader's threads pause while a step computes on the CPU (the default)");
            false
        }
    }
}

/// Waits while a training step computes on the CPU ([`StepOnCpu`]), or until `stop`.
fn wait_for_cpu_steps(stop: &AtomicBool) {
    let mut n = CPU_STEPS.0.lock().unwrap_or_else(|e| e.into_inner());
    while *n > 0 && !stop.load(Ordering::Relaxed) {
        n = CPU_STEPS.1.wait_timeout(n, std::time::Duration::from_millis(20)).map(|(g, _)| g).unwrap_or_else(|e| e.into_inner().0);
    }
}

/// What the workers of one epoch share.
struct Shared<M> {
    dataset: Arc<dyn Dataset>,
    transform: Arc<dyn SampleTransform>,
    skip_errors: bool,
    collate: CollateFn<M>,
    shard: Vec<usize>,
    batch_size: usize,
    seed: u64,
    epoch: u64,
    /// Workers claim step `s` only while `s < consumed + window`.
    window: u64,
    /// Set (under `ctl`'s lock) when the consumer is gone.
    stop: AtomicBool,
    ctl: Mutex<Ctl>,
    cv: Condvar,
    /// The unreadable images found so far this epoch, as soon as they are found, each with
    /// why: the search for a substitute passes it without decoding it again, and its own slot
    /// reports it.
    unreadable: Mutex<std::collections::BTreeMap<usize, String>>,
}

struct Ctl {
    /// Next step a worker will claim.
    next_claim: u64,
    /// Next step the consumer waits for.
    consumed: u64,
    /// No step at or past this is claimed (the epoch's end, lowered after an error).
    limit: u64,
}

impl<M> Shared<M> {
    fn lock(&self) -> MutexGuard<'_, Ctl> {
        // No code that can panic runs under this lock, but never propagate poisoning anyway.
        self.ctl.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Builds batch `step`.
    fn build(&self, step: u64) -> Result<Batch<M>> {
        let start = step as usize * self.batch_size;
        let end = (start + self.batch_size).min(self.shard.len());
        let mut indices = self.shard[start..end].to_vec();
        let size = self.transform.size();
        let view_sizes = self.transform.view_sizes();
        let per = self.transform.sample_len();
        // the batch's one large buffer: a failed allocation is an error, not an abort
        let mut images: Vec<f32> = Vec::new();
        images.try_reserve_exact(indices.len() * per).map_err(|e| Error::OutOfMemory {
            during: format!("loading batch {} of epoch {}", step + 1, self.epoch + 1),
            detail: format!("{} MB of pixels: {e}", (indices.len() * per * 4) >> 20),
        })?;
        images.resize(indices.len() * per, 0.0);
        // the unreadable images of this batch's slots (a run of bad files is met by several
        // slots, possibly in other batches, while they look for a substitute: each is reported
        // by its own slot, whichever found it first, the same batch for any thread timing and
        // after a resume, which reported again one found before its checkpoint)
        let mut failed = std::collections::BTreeMap::new();
        for (slot, out) in indices.iter_mut().zip(images.chunks_exact_mut(per)) {
            wait_for_cpu_steps(&self.stop);
            if self.stop.load(Ordering::Relaxed) {
                return Err(Error::Data("loader stopped".into()));
            }
            failed.extend(self.sample(slot, out)?);
        }
        let labels = indices.iter().map(|&i| self.dataset.label(i)).collect();
        let masks = (self.collate)(self.epoch, step, indices.len())?;
        // (the batch's own slots: a substitute's search crosses the other ranks' images, and
        // each rank counting what it met counted a file once a rank)
        let skipped_files: Vec<(String, String)> = failed.into_iter().map(|(j, why)| (self.dataset.describe(j), why)).collect();
        Ok(Batch { images, labels, indices, masks, epoch: self.epoch, step, crop_size: size, view_sizes, skipped: skipped_files.len(), skipped_files })
    }

    /// Transforms sample `*i` into `out`. With `skip_errors`, an unreadable sample is replaced
    /// by the next readable one in dataset order (`*i` is updated), cropped as the slot's own
    /// image would have been (its own crop is the substitute's in its own slot: the same pixels
    /// twice an epoch); returns the slot's own image if it is unreadable, with its error.
    ///
    /// The search goes as far as it must (a class folder of broken copies is a long run of
    /// unreadable files), over images not already found unreadable this epoch (each is read
    /// once, so a long run costs one look-up per image after the first attempt); only a
    /// dataset with no readable image at all is an error.
    fn sample(&self, i: &mut usize, out: &mut [f32]) -> Result<Vec<(usize, String)>> {
        let n = self.dataset.len();
        let first = *i;
        let mut failed = Vec::new();
        for k in 0..n.max(1) {
            let j = (first + k) % n;
            if self.skip_errors {
                if let Some(why) = self.unreadable.lock().unwrap_or_else(|e| e.into_inner()).get(&j) {
                    if k == 0 {
                        failed.push((j, why.clone()));
                    }
                    continue;
                }
            }
            // (keyed by the slot's image, readable or not)
            let mut rng = Rng::derive(self.seed, Stream::Crop, &[self.epoch, first as u64]);
            match self.transform.apply(&mut rng, self.dataset.as_ref(), j, out) {
                Ok(()) => {
                    *i = j;
                    return Ok(failed);
                }
                Err(e) if self.skip_errors => {
                    tracing::debug!("skipping unreadable {}: {e}", self.dataset.describe(j));
                    // why, without the file's name (whoever reports it names the file)
                    let name = self.dataset.describe(j);
                    let why = match &e {
                        Error::Data(m) => m.strip_prefix(&format!("{name}: ")).unwrap_or(m).to_string(),
                        e => e.to_string(),
                    };
                    // known at once to the other slots and workers (another may have decoded it
                    // at the same time); reported by its own slot
                    self.unreadable.lock().unwrap_or_else(|e| e.into_inner()).entry(j).or_insert_with(|| why.clone());
                    if k == 0 {
                        failed.push((j, why));
                    }
                }
                // (the ways out named, and which of them resumes)
                Err(Error::Data(m)) => return Err(Error::Data(format!("{m}{RUN_ADVICE}"))),
                Err(e) => return Err(e),
            }
        }
        Err(Error::Data(format!(
            "loader: none of the {n} images is readable (on-error \"skip\" has nothing to substitute; {})",
            match failed.first() {
                Some((j, why)) => format!("{}: {why}", self.dataset.describe(*j)),
                None => format!("from {} on, each was found unreadable earlier this epoch", self.dataset.describe(first)),
            }
        )))
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

type Item<M> = (u64, Result<Batch<M>>);

fn worker<M: Send + 'static>(sh: Arc<Shared<M>>, tx: SyncSender<Item<M>>) {
    loop {
        let step = {
            let mut ctl = sh.lock();
            loop {
                if sh.stop.load(Ordering::Relaxed) || ctl.next_claim >= ctl.limit {
                    return;
                }
                if ctl.next_claim < ctl.consumed + sh.window {
                    break;
                }
                ctl = sh.cv.wait(ctl).unwrap_or_else(|e| e.into_inner());
            }
            ctl.next_claim += 1;
            ctl.next_claim - 1
        };
        let item = catch_unwind(AssertUnwindSafe(|| sh.build(step))).unwrap_or_else(|p| {
            Err(Error::Data(format!(
                "loader: a worker panicked building step {step} of epoch {}: {}",
                sh.epoch,
                panic_message(p.as_ref())
            )))
        });
        if item.is_err() {
            // Later steps are not needed: the consumer stops at this error.
            let mut ctl = sh.lock();
            ctl.limit = ctl.limit.min(step + 1);
        }
        if tx.send((step, item)).is_err() {
            return;
        }
    }
}

/// The batches of one epoch, in step order; yields `Err` once (then ends) if a batch could
/// not be built. Dropping it stops and joins the workers.
pub struct EpochIter<M> {
    shared: Arc<Shared<M>>,
    rx: Option<Receiver<Item<M>>>,
    pending: BTreeMap<u64, Result<Batch<M>>>,
    next: u64,
    end: u64,
    done: bool,
    handles: Vec<JoinHandle<()>>,
    startup_error: Option<Error>,
    stop_on_signal: bool,
}

impl<M> EpochIter<M> {
    /// Makes a wait for the next batch end with [`Error::Interrupted`] once a stop is requested
    /// (SIGINT / SIGTERM, [`crate::interrupt`]) when `on` (one process: a run whose loader is
    /// slow, or stuck, still stops; a distributed run's ranks stop together between steps).
    pub fn stop_on_signal(mut self, on: bool) -> Self {
        self.stop_on_signal = on;
        self
    }

    /// Steps still to be yielded.
    pub fn remaining(&self) -> usize {
        if self.done {
            0
        } else {
            (self.end - self.next) as usize
        }
    }

    /// Stops the workers and waits for them.
    fn finish(&mut self) {
        self.done = true;
        {
            let _ctl = self.shared.lock();
            self.shared.stop.store(true, Ordering::Relaxed);
            self.shared.cv.notify_all();
        }
        self.rx = None; // a worker blocked in send() returns
        self.pending.clear();
        for h in self.handles.drain(..) {
            // A worker catches panics of the batch code; a panic elsewhere is a bug we
            // cannot report from here beyond not hanging.
            let _ = h.join();
        }
    }
}

impl<M> Iterator for EpochIter<M> {
    type Item = Result<Batch<M>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if let Some(e) = self.startup_error.take() {
            self.finish();
            return Some(Err(e));
        }
        if self.next >= self.end {
            self.finish();
            return None;
        }
        loop {
            if let Some(item) = self.pending.remove(&self.next) {
                self.next += 1;
                {
                    let mut ctl = self.shared.lock();
                    ctl.consumed = self.next;
                    self.shared.cv.notify_all();
                }
                if item.is_err() {
                    self.finish();
                }
                return Some(item);
            }
            let received = match &self.rx {
                Some(rx) if self.stop_on_signal => loop {
                    match rx.recv_timeout(std::time::Duration::from_millis(100)) {
                        Ok(item) => break Some(item),
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break None,
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                            if let Err(e) = crate::interrupt::check() {
                                // a worker may be stuck in a read that never returns (a hung
                                // network file system): told to stop, but not waited for
                                self.handles.clear();
                                self.finish();
                                return Some(Err(e));
                            }
                        }
                    }
                },
                Some(rx) => rx.recv().ok(),
                None => None,
            };
            match received {
                Some((step, item)) => {
                    self.pending.insert(step, item);
                }
                None => {
                    let step = self.next;
                    self.finish();
                    return Some(Err(Error::Data(format!(
                        "loader: the workers stopped before delivering step {step} of epoch {}",
                        self.shared.epoch
                    ))));
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining()))
    }
}

impl<M> Drop for EpochIter<M> {
    fn drop(&mut self) {
        if !self.done || !self.handles.is_empty() {
            self.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{FashionMnist, TrainTransform, TrainTransformCfg};
    use std::sync::atomic::AtomicUsize;
    use std::time::{Duration, Instant};

    fn dataset() -> Arc<dyn Dataset> {
        Arc::new(FashionMnist::embedded(crate::data::Split::Train).unwrap().limit(Some(300)))
    }

    /// `overlap` in any case asks for overlap; nothing, blank or another value (warned of)
    /// does not.
    #[test]
    fn the_loader_variable_is_read() {
        assert!(loader_setting(Some(" Overlap ")) && loader_setting(Some("overlap")));
        assert!(!loader_setting(None) && !loader_setting(Some("")) && !loader_setting(Some("overlapp")));
    }

    /// A loader with the default train transform at 20 px.
    fn new_loader<M: Send + 'static>(ds: Arc<dyn Dataset>, cfg: LoaderCfg, collate: CollateFn<M>) -> Result<Loader<M>> {
        let t = TrainTransform::new(TrainTransformCfg { size: 20, scale: (0.3, 1.0), ..Default::default() })?;
        Loader::new(ds, Arc::new(t), cfg, collate)
    }

    fn cfg(workers: usize) -> LoaderCfg {
        LoaderCfg {
            batch_size: 16,
            workers,
            prefetch: 2,
            seed: 7,
            drop_last: true,
            rank: 0,
            world_size: 1,
            skip_errors: false,
        }
    }

    /// Masks: a value keyed like the real mask sampler, so order mistakes show.
    fn collate() -> CollateFn<Vec<u64>> {
        Arc::new(|epoch, step, b| {
            let mut r = Rng::derive(7, Stream::Mask, &[epoch, step, 0]);
            Ok((0..b).map(|_| r.next_u64()).collect())
        })
    }

    fn run(loader: &Loader<Vec<u64>>, epoch: u64) -> Vec<Batch<Vec<u64>>> {
        loader.epoch(epoch).collect::<Result<Vec<_>>>().unwrap()
    }

    /// The embedded images with `bad` unreadable.
    struct Broken {
        inner: Arc<dyn Dataset>,
        bad: std::collections::BTreeSet<usize>,
    }

    impl Dataset for Broken {
        fn len(&self) -> usize {
            self.inner.len()
        }
        fn label(&self, i: usize) -> i64 {
            self.inner.label(i)
        }
        fn num_classes(&self) -> usize {
            self.inner.num_classes()
        }
        fn describe(&self, i: usize) -> String {
            format!("image {i}")
        }
        fn size(&self, i: usize) -> Result<(usize, usize)> {
            self.inner.size(i)
        }
        fn load(&self, i: usize, max_shrink: u32) -> Result<(crate::data::Image, u32)> {
            match self.bad.contains(&i) {
                true => Err(Error::Data(format!("image {i}: broken"))),
                false => self.inner.load(i, max_shrink),
            }
        }
    }

    /// With `on-error "skip"`, each unreadable image is counted in the batch of its own slot,
    /// for any number of workers (the first slot to meet one in its search for a substitute
    /// counted it, which hung on the threads' timing), and a substitute is cropped as its
    /// slot's image would have been, not as its own slot crops it (the same pixels twice).
    #[test]
    fn unreadable_images_count_in_their_own_batch_and_substitutes_are_cropped_anew() {
        // a run of bad images, so that slots search past their neighbours
        let bad: std::collections::BTreeSet<usize> = (40..52).chain([7, 150, 151]).collect();
        let ds: Arc<dyn Dataset> = Arc::new(Broken { inner: dataset(), bad: bad.clone() });
        let skipping = |workers| LoaderCfg { skip_errors: true, batch_size: 4, ..cfg(workers) };
        let counts = |workers| -> Vec<(Vec<usize>, Vec<String>)> {
            let loader = new_loader(Arc::clone(&ds), skipping(workers), collate()).unwrap();
            run(&loader, 0).into_iter().map(|b| (b.indices.clone(), b.skipped_files.iter().map(|f| f.0.clone()).collect())).collect()
        };
        let one = counts(1);
        assert_eq!(one, counts(4));
        // each bad image of the epoch's slots, once, in the batch that held its slot
        let loader = new_loader(Arc::clone(&ds), skipping(1), collate()).unwrap();
        let order = loader.shard(0);
        for (step, (_, named)) in one.iter().enumerate() {
            let own: Vec<String> = order[step * 4..step * 4 + 4].iter().filter(|i| bad.contains(i)).map(|i| format!("image {i}")).collect();
            let mut named = named.clone();
            named.sort();
            let mut own = own;
            own.sort();
            own.dedup();
            assert_eq!(named, own, "batch {step}");
        }
        // a substitute's pixels are not those of its own slot
        let batches = run(&loader, 0);
        let per = batches[0].images.len() / batches[0].indices.len();
        let pixels: std::collections::HashMap<usize, Vec<Vec<f32>>> = batches.iter().flat_map(|b| b.indices.iter().copied().zip(b.images.chunks(per).map(<[f32]>::to_vec))).fold(
            std::collections::HashMap::new(),
            |mut m, (i, p)| {
                m.entry(i).or_insert_with(Vec::new).push(p);
                m
            },
        );
        let twice: Vec<&Vec<Vec<f32>>> = pixels.values().filter(|v| v.len() > 1).collect();
        assert!(!twice.is_empty());
        assert!(twice.iter().all(|v| v[0] != v[1]), "a substitute cropped as its own slot");
    }

    #[test]
    fn workers_pause_while_a_step_computes_on_the_cpu() {
        let built = Arc::new(AtomicUsize::new(0));
        let counted: CollateFn<Vec<u64>> = {
            let built = Arc::clone(&built);
            Arc::new(move |e, s, b| {
                built.fetch_add(1, Ordering::SeqCst);
                collate()(e, s, b)
            })
        };
        let loader = new_loader(dataset(), cfg(2), counted).unwrap();
        let expected = run(&loader, 0);
        built.store(0, Ordering::SeqCst);
        // a step on a GPU does not pause them
        let gpu = StepOnCpu::begin(Device::Cuda(0));
        assert_eq!(run(&loader, 0).len(), expected.len());
        drop(gpu);
        built.store(0, Ordering::SeqCst);
        let step = StepOnCpu::begin(Device::Cpu);
        let mut it = loader.epoch(0);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(built.load(Ordering::SeqCst), 0, "a worker built a batch while the step computed");
        drop(step);
        let first = it.next().unwrap().unwrap();
        assert_eq!((first.step, &first.masks), (0, &expected[0].masks));
        assert_eq!(it.count() + 1, expected.len(), "the epoch goes on once the step is done");
    }

    #[test]
    fn batches_are_in_order_and_well_formed() {
        let ds = dataset();
        let loader = new_loader(ds.clone(), cfg(3), collate()).unwrap();
        assert_eq!(loader.steps_per_epoch(), 300 / 16);
        let batches = run(&loader, 0);
        assert_eq!(batches.len(), 18);
        let mut seen = std::collections::HashSet::new();
        for (s, b) in batches.iter().enumerate() {
            assert_eq!((b.step, b.epoch, b.len()), (s as u64, 0, 16));
            assert_eq!(b.images.len(), 16 * 3 * 20 * 20);
            assert_eq!(b.masks, (collate())(0, s as u64, 16).unwrap());
            for (&i, &l) in b.indices.iter().zip(&b.labels) {
                assert_eq!(ds.label(i), l);
                assert!(seen.insert(i));
            }
            assert!(b
                .images
                .iter()
                .all(|x| x.is_finite() && (-2.2..2.7).contains(x)));
        }
        let t = batches[0].images_tensor(Device::Cpu).unwrap();
        assert_eq!(t.size(), vec![16, 3, 20, 20]);
        assert_eq!(
            batches[0].labels_tensor(Device::Cpu).unwrap().size(),
            vec![16]
        );
        let v: Vec<f32> = Vec::try_from(t.flatten(0, -1)).unwrap();
        assert_eq!(v, batches[0].images);
        // a different epoch shuffles differently
        assert_ne!(run(&loader, 1)[0].indices, batches[0].indices);
    }

    #[test]
    fn results_do_not_depend_on_worker_count_or_run() {
        let ds = dataset();
        let one = run(&new_loader(ds.clone(), cfg(1), collate()).unwrap(), 2);
        let three = run(&new_loader(ds.clone(), cfg(3), collate()).unwrap(), 2);
        let again = run(
            &new_loader(
                ds.clone(),
                LoaderCfg {
                    prefetch: 0,
                    ..cfg(3)
                },
                collate(),
            )
            .unwrap(),
            2,
        );
        assert_eq!(one.len(), three.len());
        for ((a, b), c) in one.iter().zip(&three).zip(&again) {
            let bits =
                |x: &Batch<Vec<u64>>| x.images.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(a), bits(b));
            assert_eq!(bits(a), bits(c));
            assert_eq!(
                (&a.labels, &a.indices, &a.masks),
                (&b.labels, &b.indices, &b.masks)
            );
        }
        // resuming mid-epoch yields the same batches
        let loader = new_loader(ds, cfg(2), collate()).unwrap();
        let tail: Vec<_> = loader.epoch_from(2, 5).collect::<Result<_>>().unwrap();
        assert_eq!(tail.len(), one.len() - 5);
        assert_eq!(tail[..], one[5..]);
        assert_eq!(loader.epoch_from(2, 1000).count(), 0);
    }

    #[test]
    fn two_ranks_are_disjoint_and_cover_the_epoch() {
        let ds: Arc<dyn Dataset> = Arc::new(FashionMnist::embedded(crate::data::Split::Train).unwrap().limit(Some(101)));
        let mk = |rank| {
            let c = LoaderCfg {
                rank,
                world_size: 2,
                batch_size: 10,
                drop_last: false,
                ..cfg(2)
            };
            new_loader(ds.clone(), c, collate()).unwrap()
        };
        let (r0, r1) = (mk(0), mk(1));
        assert_eq!((r0.samples_per_rank(), r0.steps_per_epoch()), (50, 5));
        let idx = |l: &Loader<Vec<u64>>| {
            run(l, 3)
                .into_iter()
                .flat_map(|b| b.indices)
                .collect::<Vec<_>>()
        };
        let (a, b) = (idx(&r0), idx(&r1));
        assert_eq!((a.len(), b.len()), (50, 50));
        let mut all: Vec<usize> = a.iter().chain(&b).copied().collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 100, "ranks overlap");
        // together they are the epoch's permutation less its last (dropped) element
        let perm = Rng::derive(7, Stream::Shuffle, &[3]).permutation(101);
        let mut want = perm[..100].to_vec();
        want.sort();
        assert_eq!(all, want);
        // drop_last: an incomplete last batch is dropped, or kept
        let c = LoaderCfg {
            batch_size: 16,
            drop_last: false,
            ..cfg(2)
        };
        let l = new_loader(ds.clone(), c, collate()).unwrap();
        let bs = run(&l, 0);
        assert_eq!((bs.len(), bs[6].len()), (7, 5));
        assert_eq!(
            new_loader(ds.clone(), cfg(2), collate())
                .unwrap()
                .steps_per_epoch(),
            6
        );
    }

    #[test]
    fn collate_errors_and_panics_reach_the_consumer_in_order() {
        let ds = dataset();
        let failing: CollateFn<Vec<u64>> = Arc::new(|_, step, _| {
            if step == 4 {
                Err(Error::Mask("cannot place the blocks".into()))
            } else {
                Ok(vec![step])
            }
        });
        let loader = new_loader(ds.clone(), cfg(3), failing).unwrap();
        let items: Vec<_> = loader.epoch(0).collect();
        assert_eq!(items.len(), 5);
        for (s, it) in items[..4].iter().enumerate() {
            assert_eq!(it.as_ref().unwrap().masks, vec![s as u64]);
        }
        assert!(
            matches!(items[4], Err(Error::Mask(_))),
            "{:?}",
            items[4].as_ref().err()
        );

        let panicking: CollateFn<Vec<u64>> = Arc::new(|_, step, _| {
            if step == 2 {
                panic!("bug in the collator");
            }
            Ok(vec![step])
        });
        let loader = new_loader(ds, cfg(2), panicking).unwrap();
        let items: Vec<_> = loader.epoch(0).collect();
        assert_eq!(items.len(), 3);
        let e = items[2]
            .as_ref()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("panicked") && e.contains("bug in the collator"),
            "{e}"
        );
    }

    #[test]
    fn dropping_mid_epoch_stops_the_workers() {
        let ds = dataset();
        let calls = Arc::new(AtomicUsize::new(0));
        let c2 = Arc::clone(&calls);
        let slow: CollateFn<Vec<u64>> = Arc::new(move |_, step, _| {
            c2.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(20));
            Ok(vec![step])
        });
        let loader = new_loader(
            ds.clone(),
            LoaderCfg {
                batch_size: 4,
                ..cfg(3)
            },
            slow,
        )
        .unwrap();
        assert_eq!(loader.steps_per_epoch(), 75);
        let t0 = Instant::now();
        {
            let mut it = loader.epoch(0);
            assert_eq!(it.next().unwrap().unwrap().step, 0);
            assert_eq!(it.next().unwrap().unwrap().step, 1);
        } // dropped here: joins the workers
        assert!(t0.elapsed() < Duration::from_secs(5));
        let after_drop = calls.load(Ordering::SeqCst);
        // bounded by the window: 2 consumed + workers + prefetch
        assert!(after_drop <= 2 + 3 + 2, "{after_drop} batches built");
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            after_drop,
            "workers still running"
        );
        // an iterator dropped before its first batch
        drop(loader.epoch(1));
    }

    #[test]
    fn unusable_settings_are_config_errors() {
        let ds = dataset();
        let bad = |c: LoaderCfg| {
            new_loader(ds.clone(), c, collate())
                .unwrap_err()
                .to_string()
        };
        assert!(bad(LoaderCfg {
            batch_size: 0,
            ..cfg(1)
        })
        .contains("batch size"));
        assert!(bad(LoaderCfg {
            rank: 2,
            world_size: 2,
            ..cfg(1)
        })
        .contains("rank 2"));
        assert!(bad(LoaderCfg {
            batch_size: 301,
            ..cfg(1)
        })
        .contains("less than one batch"));
        // workers = 0 runs with one worker
        let l = new_loader(
            ds.clone(),
            LoaderCfg {
                workers: 0,
                ..cfg(0)
            },
            collate(),
        )
        .unwrap();
        assert_eq!(l.epoch(0).count(), 18);
        // a huge prefetch is capped by the epoch length
        let c = LoaderCfg {
            prefetch: usize::MAX,
            ..cfg(2)
        };
        let l = new_loader(ds, c, collate()).unwrap();
        assert_eq!(l.epoch(0).count(), 18);
    }
}
