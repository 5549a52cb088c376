//! The `Recipe` trait: what a self-supervised method provides to the training loop
//! (conventions §7). A recipe owns its models, optimiser and EMA pairs, builds the per-batch
//! extras (masks) the loader collates, and runs one step.

use crate::error::Result;
use crate::model::vit::VisionTransformer;
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Tensor};

/// Hyper-parameters of one step, from the schedules.
#[derive(Debug, Clone, Copy)]
pub struct Hyper {
    /// Learning rate.
    pub lr: f64,
    /// Weight decay of the decayed groups.
    pub wd: f64,
    /// EMA momentum.
    pub momentum: f64,
}

/// What one step reports: the loss, and the recipe's own statistics in the order of
/// [`Recipe::stat_names`] (metrics columns; I-JEPA: context and target lengths).
#[derive(Debug, Clone, PartialEq)]
pub struct StepStats {
    /// Loss value (averaged over ranks when distributed).
    pub loss: f64,
    /// The recipe's statistics, one per [`Recipe::stat_names`] entry.
    pub values: Vec<f64>,
}

/// What a distributed run does between backward and the optimiser step (DDP): averages the
/// gradients of the trainable parameters across ranks, and the loss for logging.
pub trait GradSync: Send {
    /// Averages every trainable parameter's gradient in place across ranks; `loss` is this
    /// rank's loss; returns the mean loss over ranks.
    fn sync(&mut self, loss: &Tensor) -> Result<f64>;

    /// Replaces `t` in place by its mean over ranks (a statistic of each rank's batch that the
    /// recipe keeps, e.g. DINO's centre). Default: nothing (one process).
    fn average(&mut self, _t: &Tensor) -> Result<()> {
        Ok(())
    }
}

impl std::fmt::Debug for dyn GradSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GradSync")
    }
}

/// A recipe's models under their checkpoint prefixes, with the duties every recipe shares
/// done once here: name prefixing ([`Modules::state`]), the optimiser's prefixed parameter
/// list ([`Modules::trainable`]), strict restore ([`Modules::restore`]) and, with
/// [`backward_step`], backward + gradient synchronisation + the AdamW step. The stores are
/// shared handles: a recipe keeps its own fields for its forward pass.
#[derive(Debug, Clone)]
pub struct Modules {
    modules: Vec<(&'static str, crate::model::ParamStore)>,
}

impl Modules {
    /// The modules, in checkpoint order (e.g. `[("encoder", ..), ("predictor", ..)]`).
    pub fn new(modules: Vec<(&'static str, crate::model::ParamStore)>) -> Self {
        Self { modules }
    }

    /// Every tensor of every module, named `<module>.<official name>`.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (prefix, store) in &self.modules {
            out.extend(store.named().into_iter().map(|(n, t)| (format!("{prefix}.{n}"), t)));
        }
        out
    }

    /// The trainable tensors of the modules named in `which`, prefixed (the optimiser's list).
    pub fn trainable(&self, which: &[&str]) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (prefix, store) in self.modules.iter().filter(|(p, _)| which.contains(p)) {
            out.extend(store.trainable().into_iter().map(|(n, t)| (format!("{prefix}.{n}"), t)));
        }
        out
    }

    /// Trainable values in the modules named in `which`.
    pub fn num_trainable(&self, which: &[&str]) -> i64 {
        self.modules.iter().filter(|(p, _)| which.contains(p)).map(|(_, s)| s.num_trainable()).sum()
    }

    /// Restores every module from a checkpoint's tensors (keys `<module>.<name>`; the
    /// `optimizer.` ones are left to the optimiser). Strict: a key of no module, a missing or
    /// mis-shaped tensor is an error naming the key.
    ///
    /// # Errors
    /// [`crate::Error::Checkpoint`] naming the key and `origin`.
    pub fn restore(&self, tensors: &HashMap<String, Tensor>, origin: &Path) -> Result<()> {
        let owned = |k: &str| self.modules.iter().any(|(p, _)| k.strip_prefix(p).is_some_and(|r| r.starts_with('.')));
        if let Some(k) = tensors.keys().find(|k| !k.starts_with("optimizer.") && !owned(k)) {
            return Err(crate::Error::Checkpoint { path: origin.to_path_buf(), message: format!("unexpected key `{k}`") });
        }
        for (prefix, store) in &self.modules {
            store.load_strict_from(&prefixed(tensors, &format!("{prefix}.")), origin, &format!("{prefix}."))?;
        }
        Ok(())
    }
}

/// The entries of `all` whose key starts with `prefix`, with the prefix removed.
pub fn prefixed(all: &HashMap<String, Tensor>, prefix: &str) -> HashMap<String, Tensor> {
    all.iter().filter_map(|(k, v)| k.strip_prefix(prefix).map(|rest| (rest.to_string(), v.shallow_clone()))).collect()
}

/// The optimiser's part of a checkpoint, as [`Recipe::optimizer_state`] returns it: AdamW's
/// moments named `optimizer.<moment>.<param>` and its step count.
pub fn optimizer_state(optimizer: &crate::optim::AdamW) -> (Vec<(String, Tensor)>, u64) {
    let t = optimizer.state_tensors().into_iter().map(|(n, t)| (format!("optimizer.{n}"), t)).collect();
    (t, optimizer.step)
}

/// Restores AdamW from a checkpoint's `optimizer.` tensors (see [`optimizer_state`]).
///
/// # Errors
/// A missing or mis-shaped moment, naming it and `origin`.
pub fn restore_optimizer(optimizer: &mut crate::optim::AdamW, tensors: &HashMap<String, Tensor>, step: u64, origin: &Path) -> Result<()> {
    optimizer.load_state(&prefixed(tensors, "optimizer."), step, origin)
}

/// Backward of `loss` and, when `sync` is installed, the gradient averaging of a distributed
/// run. Returns the loss to log: the mean over ranks, or this process's. (A recipe that works
/// on the gradients before the optimiser step, as DINO clips them, calls this and then steps.)
///
/// # Errors
/// libtorch's, or the synchronisation's.
pub fn backward_sync(loss: &Tensor, sync: Option<&mut Box<dyn GradSync>>) -> Result<f64> {
    loss.f_backward()?;
    match sync {
        Some(s) => s.sync(loss),
        None => Ok(loss.f_to_kind(tch::Kind::Double)?.f_double_value(&[])?),
    }
}

/// The end of every step: [`backward_sync`], then the AdamW step with `lr` / `wd`. Returns the
/// loss to log.
///
/// # Errors
/// libtorch's, or the synchronisation's.
pub fn backward_step(loss: &Tensor, sync: Option<&mut Box<dyn GradSync>>, optimizer: &mut crate::optim::AdamW, lr: f64, wd: f64) -> Result<f64> {
    let value = backward_sync(loss, sync)?;
    optimizer.step(lr, wd)?;
    Ok(value)
}

/// Builds the per-batch extras (e.g. masks) in the loader threads.
pub use crate::data::CollateFn as Collate;

/// A self-supervised recipe.
pub trait Recipe {
    /// What the loader collates beside the images.
    type Extras: Send + 'static;

    /// Registry name.
    fn name(&self) -> &'static str;

    /// The device the models live on.
    fn device(&self) -> Device;

    /// The collate function for the loader (seeded per (epoch, step, rank)).
    fn collate(&self) -> Collate<Self::Extras>;

    /// One optimisation step on `images` `[B, 3, H, W]` (already on the device).
    fn step(&mut self, images: &Tensor, extras: &Self::Extras, hyper: Hyper) -> Result<StepStats>;

    /// One step on every view of the batch (`views[v]`: `[B, 3, S_v, S_v]`, in the order of
    /// [`Recipe::train_transform`]'s views). The training loop calls this; the default runs
    /// [`Recipe::step`] on the only view (single-view recipes).
    fn step_views(&mut self, views: &[Tensor], extras: &Self::Extras, hyper: Hyper) -> Result<StepStats> {
        match views {
            [images] => self.step(images, extras, hyper),
            _ => Err(crate::Error::Config(format!("recipe {} takes one view per image, the batch has {}", self.name(), views.len()))),
        }
    }

    /// The pretraining transform for the experiment's data block. Default: the data block's
    /// single-view transform ([`crate::data::train_transform`]); multi-view recipes return a
    /// [`crate::data::MultiCrop`].
    fn train_transform(&self, data: &ijepa_dsl::config::DataConfig) -> Result<Arc<dyn crate::data::SampleTransform>> {
        crate::data::train_transform(data)
    }

    /// Where training stands before each step: the epoch (0-based), the global step (0-based)
    /// and the run's total steps, for recipes whose schedules the shared [`Hyper`] does not
    /// carry (DINO's teacher temperature and momentum, its frozen last layer). Default: ignored.
    fn set_progress(&mut self, _epoch: u64, _global_step: u64, _total_steps: u64) {}

    /// The dataset indices of the coming step's images on this rank (the batch's order), in
    /// `epoch`: for recipes that key per-image randomness on the image rather than on its
    /// place in a rank's batch, so that N ranks draw as one process with the global batch
    /// and a resumed run draws as the uninterrupted one (DINO's stochastic depth). Called
    /// before each step, after [`Recipe::set_progress`]. Default: ignored.
    fn set_samples(&mut self, _epoch: u64, _indices: &[usize]) {}

    /// Every tensor a checkpoint holds, under official names with the module prefix
    /// (`encoder.…`, `predictor.…`, `target_encoder.…`).
    fn state(&self) -> Vec<(String, Tensor)>;

    /// Everything exact resume needs beyond [`Recipe::state`]: optimiser moments (names
    /// prefixed `optimizer.`) and the optimiser step count.
    fn optimizer_state(&self) -> (Vec<(String, Tensor)>, u64);

    /// Restores models and optimiser from a checkpoint's tensors (as [`Recipe::state`] plus
    /// [`Recipe::optimizer_state`] wrote them). Strict: a missing, unexpected or mis-shaped
    /// tensor is an error naming the key; `origin` names the file.
    fn restore(&mut self, tensors: &HashMap<String, Tensor>, optimizer_step: u64, origin: &Path) -> Result<()>;

    /// Trainable parameter count.
    fn num_params(&self) -> i64;

    /// What the recipe warns of, of the steps it trained in this process (I-JEPA's mask
    /// sampler relaxing its constraints: the share of the images trained), for the run to keep
    /// in its manifest beside its earlier attempts' and show in the report: each names its
    /// subject and this attempt's steps (`masks: at steps 9-16 ...`). Read at the run's end.
    /// Default: none.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }

    /// The trainable parameters, in an order that is identical on every rank.
    fn trainable(&self) -> Vec<Tensor>;

    /// Installs the gradient synchronisation of a distributed run (before the first step).
    fn set_grad_sync(&mut self, sync: Box<dyn GradSync>);

    /// The encoders whose frozen features the learning monitors measure, by name, the one the
    /// evaluations read first (I-JEPA: `target`, then `context`). Default: none.
    fn feature_encoders(&self) -> Vec<(&'static str, &VisionTransformer)> {
        Vec::new()
    }

    /// Names of the statistics [`Recipe::step`] reports beside the loss: `metrics.csv`
    /// columns (after the schedules). Default: none.
    fn stat_names(&self) -> &'static [&'static str] {
        &[]
    }

    /// The schedules' counter at the first optimiser step: the learning rate and weight decay
    /// of step `i` (from 0) are the schedules at `i + first_schedule_step()`. Default 1: the
    /// official I-JEPA schedulers are stepped before each step (`scheduler.step()`, counter 1
    /// on the first); MAE (`lr_sched.adjust_learning_rate` at `data_iter_step / len + epoch`)
    /// and DINO (`lr_schedule[it]`, `wd_schedule[it]`) index theirs from 0, so their first
    /// step's rate is the warm-up's start (0 by default).
    fn first_schedule_step(&self) -> usize {
        1
    }

    /// Whether the learning-rate warm-up reaches the peak on its last step, as DINO's
    /// `np.linspace(start, peak, W)` does (step `i < W` at `start + (peak - start) i / (W - 1)`),
    /// rather than on the step after it (I-JEPA's `WarmupCosineSchedule`, MAE's `lr * epoch /
    /// warmup_epochs`: `i / W`). Default: no.
    fn linspace_warmup(&self) -> bool {
        false
    }

    /// Whether the learning rate's cosine is floored at its final value, as I-JEPA's
    /// `WarmupCosineSchedule` (`max(final_lr, ...)`) floors it: a final rate above the peak then
    /// holds from the warm-up's end. MAE's `adjust_learning_rate` and DINO's `cosine_scheduler`
    /// have no floor (they rise to such a rate along the half cosine). Default: yes.
    fn lr_final_floor(&self) -> bool {
        true
    }

    /// Whether the recipe follows the EMA momentum schedule (a `momentum` metrics column and
    /// the epoch line's `ema`). Default: no.
    fn uses_momentum(&self) -> bool {
        false
    }

    /// The checkpoint module evaluations read (a prefix of [`Recipe::state`]'s names; the
    /// first of [`Recipe::feature_encoders`]). Default: `encoder`.
    fn feature_module(&self) -> &'static str {
        "encoder"
    }

    /// Whether the forward pass runs under bf16 autocast (features are measured the same way).
    fn bf16(&self) -> bool {
        false
    }
}

// ---------------------------------------------------------------------------------------
// The registry: one list of recipes, used by the language (through the schema each entry
// registers in `ijepa_dsl::recipes`), the plan and executor, `bench`, `eval`, import and
// export. `ijepa_recipes::register_builtins` adds I-JEPA, MAE and DINO; any crate (a test, a
// user's) adds its own with [`register`].
// ---------------------------------------------------------------------------------------

use crate::data::CollateFn;
use crate::dist::ProcessGroup;
use crate::model::vit::VitConfig;
use crate::train::{RunOptions, RunSummary};
use ijepa_dsl::config::Experiment;
use ijepa_dsl::recipes::RecipeSchema;
use std::sync::{Arc, LazyLock, RwLock};

/// What the engine drives, without the recipe's types: the object-safe face of every
/// [`Recipe`] (implemented for all of them).
pub trait DynRecipe {
    /// Registry name.
    fn recipe_name(&self) -> &'static str;
    /// Pretrains `exp` with this recipe ([`crate::train::pretrain`]).
    fn pretrain(&mut self, exp: &Experiment, opts: &RunOptions) -> Result<RunSummary>;
    /// The extras the loader would collate beside a batch of `batch` images at (epoch, step),
    /// for [`DynRecipe::bench_step`] (`bench step` collates before its timer starts, as the
    /// loader does it ahead of the step in a run).
    fn bench_collate(&mut self, epoch: u64, step: u64, batch: usize) -> Result<Box<dyn std::any::Any + Send>>;
    /// One step on `views` (one tensor per view; single-view recipes take one) with extras
    /// from [`DynRecipe::bench_collate`] (for `bench step`).
    fn bench_step(&mut self, views: &[Tensor], extras: &(dyn std::any::Any + Send), hyper: Hyper) -> Result<StepStats>;
    /// The side of each view a step takes for `data` (one entry: single view).
    fn view_sizes(&self, data: &ijepa_dsl::config::DataConfig) -> Result<Vec<usize>>;
    /// Broadcasts the weights from rank 0 and installs gradient averaging ([`crate::train::install_ddp`]).
    fn install_ddp(&mut self, pg: &Arc<ProcessGroup>, bucket_mb: f64) -> Result<()>;
    /// Trainable parameter count.
    fn params(&self) -> i64;
    /// The named tensors of the encoder evaluations read (its first feature encoder), names
    /// without a module prefix.
    fn feature_state(&self) -> Vec<(String, Tensor)>;
    /// The module evaluations read ([`Recipe::feature_module`]).
    fn evaluated_module(&self) -> &'static str;
}

impl<R: Recipe> DynRecipe for R {
    fn recipe_name(&self) -> &'static str {
        self.name()
    }

    fn pretrain(&mut self, exp: &Experiment, opts: &RunOptions) -> Result<RunSummary> {
        crate::train::pretrain(exp, self, opts)
    }

    fn bench_collate(&mut self, epoch: u64, step: u64, batch: usize) -> Result<Box<dyn std::any::Any + Send>> {
        let collate: CollateFn<R::Extras> = self.collate();
        Ok(Box::new(collate(epoch, step, batch)?))
    }

    fn bench_step(&mut self, views: &[Tensor], extras: &(dyn std::any::Any + Send), hyper: Hyper) -> Result<StepStats> {
        let Some(extras) = extras.downcast_ref::<R::Extras>() else {
            return Err(crate::Error::Config(format!("bench_step of recipe {}: extras not from its bench_collate", self.name())));
        };
        self.step_views(views, extras, hyper)
    }

    fn view_sizes(&self, data: &ijepa_dsl::config::DataConfig) -> Result<Vec<usize>> {
        Ok(self.train_transform(data)?.view_sizes())
    }

    fn install_ddp(&mut self, pg: &Arc<ProcessGroup>, bucket_mb: f64) -> Result<()> {
        crate::train::install_ddp(self, pg, bucket_mb)
    }

    fn params(&self) -> i64 {
        self.num_params()
    }

    fn evaluated_module(&self) -> &'static str {
        self.feature_module()
    }

    fn feature_state(&self) -> Vec<(String, Tensor)> {
        let prefix = format!("{}.", self.feature_module());
        self.state().into_iter().filter_map(|(n, t)| n.strip_prefix(&prefix).map(|r| (r.to_string(), t))).collect()
    }
}

/// One random batch per view `recipe` takes for `data` (DINO: global and local crops; one for
/// single-view recipes): `[batch, 3, S_v, S_v]` standard-normal values on `device`, what
/// [`time_steps`] is given by `bench step` and `ijepa estimate`.
///
/// # Errors
/// The recipe's transform settings, or libtorch's.
pub fn random_views(recipe: &dyn DynRecipe, data: &ijepa_dsl::config::DataConfig, batch: usize, device: Device) -> Result<Vec<Tensor>> {
    recipe
        .view_sizes(data)?
        .iter()
        .map(|&s| Ok(Tensor::f_randn([batch as i64, 3, s as i64, s as i64], (tch::Kind::Float, device))?))
        .collect()
}

/// The `(epoch, step in epoch)` whose extras (masks) step `i` of [`time_steps`] draws, of
/// `warmup` untimed steps then `steps` timed ones. `None`: epoch 0's step `i`, warm-up
/// included. `Some(n)`: the timed steps draw what a run of `n` steps an epoch draws at its
/// steps 1, 2, ... (epoch 0's `n`, then epoch 1's, ...), so a comparison with that run times
/// the very masks it trained on (a step's cost follows its context length); warm-up step `i`
/// draws the extras of timed step `i % steps`.
pub fn bench_key(i: usize, warmup: usize, steps: usize, epoch_steps: Option<u64>) -> (u64, u64) {
    match epoch_steps {
        None => (0, i as u64),
        Some(n) => {
            let j = if i < warmup { (i % steps.max(1)) as u64 } else { (i - warmup) as u64 };
            let n = n.max(1);
            (j / n, j % n)
        }
    }
}

/// Times `warmup + steps` training steps of `recipe` on `views` (a batch of `batch`, one tensor per view) on
/// `device`, returning the seconds of the last `steps`: each step's extras are collated before
/// its timer starts (as the loader does ahead of a step), and CUDA is synchronised around it;
/// step `i` draws the extras of [`bench_key`]`(i, warmup, steps, epoch_steps)`.
/// What `bench step`, `bench dist` and `ijepa estimate` time.
///
/// # Errors
/// The recipe's.
#[allow(clippy::too_many_arguments)]
pub fn time_steps(
    recipe: &mut dyn DynRecipe,
    views: &[Tensor],
    batch: usize,
    warmup: usize,
    steps: usize,
    epoch_steps: Option<u64>,
    hyper: Hyper,
    device: Device,
) -> Result<Vec<f64>> {
    let mut times = Vec::with_capacity(steps);
    for i in 0..warmup + steps {
        let (epoch, step) = bench_key(i, warmup, steps, epoch_steps);
        let extras = recipe.bench_collate(epoch, step, batch)?;
        crate::device::synchronize(device);
        let t0 = std::time::Instant::now();
        recipe.bench_step(views, extras.as_ref(), hyper)?;
        crate::device::synchronize(device);
        if i >= warmup {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    Ok(times)
}

/// Runs `steps` more steps of `recipe` under libtorch's operator profiler ([`crate::profile`])
/// and writes its Chrome trace to `trace`. Returns the wall time per step, seconds (the
/// profiler's own overhead included).
pub fn profile_steps(recipe: &mut dyn DynRecipe, views: &[Tensor], batch: usize, steps: usize, hyper: Hyper, device: Device, trace: &Path) -> Result<f64> {
    let extras: Vec<_> = (0..steps).map(|i| recipe.bench_collate(0, (1 << 20) + i as u64, batch)).collect::<Result<_>>()?;
    crate::device::synchronize(device);
    crate::profile::start()?;
    let t0 = std::time::Instant::now();
    let run = extras.iter().try_for_each(|x| recipe.bench_step(views, x.as_ref(), hyper).map(|_| ()));
    crate::device::synchronize(device);
    let wall = t0.elapsed().as_secs_f64();
    let stopped = crate::profile::stop(trace);
    run?;
    stopped?;
    Ok(wall / steps.max(1) as f64)
}

/// Builds a recipe for an experiment on a device, as rank `rank` of `world`.
pub type BuildFn = Arc<dyn Fn(&Experiment, Device, u64, u64) -> Result<Box<dyn DynRecipe>> + Send + Sync>;

/// The encoder shape a recipe's evaluations build for an experiment.
pub type EncoderConfigFn = Arc<dyn Fn(&Experiment) -> VitConfig + Send + Sync>;

/// The checkpoint module a recipe's evaluations read for an experiment (I-JEPA: its target
/// encoder, or its encoder where pixel targets leave it none).
pub type FeatureModuleFn = Arc<dyn Fn(&Experiment) -> String + Send + Sync>;

/// A [`FeatureModuleFn`] that reads `name` whatever the experiment (MAE's `encoder`).
pub fn fixed_module(name: &'static str) -> FeatureModuleFn {
    Arc::new(move |_| name.to_string())
}

/// What `ijepa masks` asks of a recipe's masking.
#[derive(Debug, Clone, Copy)]
pub struct MaskQuery<'a> {
    /// Batches to sample for the statistics.
    pub batches: usize,
    /// Images per batch.
    pub batch_size: usize,
    /// Where to draw the first batch's masks (a PNG), if asked.
    pub png: Option<&'a Path>,
}

/// A recipe's description of its masks for an experiment (statistics of sampled batches,
/// and the drawing when [`MaskQuery::png`] asks for one), as lines of text for `ijepa masks`.
pub type MasksFn = Arc<dyn Fn(&Experiment, &MaskQuery) -> Result<String> + Send + Sync>;

/// One registered recipe.
#[derive(Clone)]
pub struct RecipeEntry {
    /// What the language knows of it (registered in `ijepa_dsl::recipes` too).
    pub schema: RecipeSchema,
    /// Its checkpoint modules, the prefixes of its state (`encoder`, `predictor`,
    /// `target_encoder` for I-JEPA; `encoder`, `decoder` for MAE).
    pub modules: Vec<String>,
    /// The module evaluations read, for an experiment (I-JEPA: `target_encoder`, as the
    /// paper, or `encoder` with pixel targets; MAE: `encoder`); the same as the built
    /// recipe's [`Recipe::feature_module`].
    pub feature_module: FeatureModuleFn,
    /// The evaluated encoder's shape for an experiment.
    pub encoder_config: EncoderConfigFn,
    /// Builds the recipe (models at their initialisation, optimiser, per-batch extras).
    pub build: BuildFn,
    /// Its cost model for `ijepa estimate` (FLOPs, parameters, activations of one step); a
    /// recipe without one is refused there by name.
    pub cost: Option<crate::estimate::CostFn>,
    /// What `ijepa masks` prints of its masks; `None`: the recipe samples no masks (the
    /// command names the views each image becomes instead).
    pub masks: Option<MasksFn>,
    /// The transformers class `ijepa export --format hf` writes its feature encoder as (I-JEPA:
    /// `IJepaModel`, MAE: `ViTMAEModel`, DINO: `ViTModel`); `None`: refused there by name.
    pub hf_model: Option<crate::checkpoint::export::HfModel>,
}

impl std::fmt::Debug for RecipeEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecipeEntry").field("name", &self.schema.name).field("modules", &self.modules).finish()
    }
}

static ENTRIES: LazyLock<RwLock<Vec<RecipeEntry>>> = LazyLock::new(|| RwLock::new(Vec::new()));

/// Registers `entry` (its schema into the language too). Registering the same name again
/// replaces the runtime part when the schema is the same.
///
/// # Errors
/// [`crate::Error::Config`] when the language refuses the schema (a name taken by a different
/// schema, a shared node claimed), or when a module's name is a dotted prefix of another
/// recipe's module (or has one): a checkpoint's keys are split by these names, and a `teacher`
/// beside DINO's `teacher.backbone` took DINO's keys (its evaluations then found no encoder).
pub fn register(entry: RecipeEntry) -> Result<()> {
    {
        let all = ENTRIES.read().unwrap_or_else(|e| e.into_inner());
        let under = |a: &str, b: &str| b.strip_prefix(a).is_some_and(|r| r.starts_with('.'));
        for other in all.iter().filter(|e| e.schema.name != entry.schema.name) {
            for a in &entry.modules {
                if let Some(b) = other.modules.iter().find(|b| under(a, b) || under(b, a)) {
                    return Err(crate::Error::Config(format!(
                        "recipe {:?}'s module `{a}` and recipe {:?}'s module `{b}`: one name begins the other's, so a checkpoint's keys could not be told apart between them; name the module otherwise",
                        entry.schema.name, other.schema.name
                    )));
                }
            }
        }
    }
    ijepa_dsl::recipes::register(entry.schema.clone()).map_err(crate::Error::Config)?;
    let mut all = ENTRIES.write().unwrap_or_else(|e| e.into_inner());
    all.retain(|e| e.schema.name != entry.schema.name);
    all.push(entry);
    Ok(())
}

/// The entry of recipe `name`.
///
/// # Errors
/// [`crate::Error::Config`] when no runtime is registered under that name.
pub fn entry(name: &str) -> Result<RecipeEntry> {
    let all = ENTRIES.read().unwrap_or_else(|e| e.into_inner());
    all.iter().find(|e| e.schema.name == name).cloned().ok_or_else(|| {
        let known: Vec<String> = all.iter().map(|e| e.schema.name.clone()).collect();
        crate::Error::Config(format!(
            "no recipe {name:?} is registered with the engine (registered: {}); a program embedding the engine calls ijepa_recipes::register_builtins() and registers its own",
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        ))
    })
}

/// Every registered entry, in registration order.
pub fn entries() -> Vec<RecipeEntry> {
    ENTRIES.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Every module name of every registered recipe (the prefixes checkpoints may hold).
pub fn module_names() -> Vec<String> {
    let all = ENTRIES.read().unwrap_or_else(|e| e.into_inner());
    let mut out: Vec<String> = all.iter().flat_map(|e| e.modules.clone()).collect();
    out.sort();
    out.dedup();
    out
}

/// The module `e`'s evaluations read for an experiment of its defaults.
fn default_feature_module(e: &RecipeEntry) -> String {
    let mut exp = Experiment::with_defaults("");
    exp.recipe = e.schema.name.clone();
    (e.feature_module)(&exp)
}

/// The module every registered recipe's evaluations read at its defaults (`target_encoder`,
/// `encoder`, DINO's `teacher.backbone`), in registration order, without repeats.
pub fn feature_modules() -> Vec<String> {
    let all = ENTRIES.read().unwrap_or_else(|e| e.into_inner());
    let mut out: Vec<String> = Vec::new();
    for e in all.iter() {
        let m = default_feature_module(e);
        if !out.contains(&m) {
            out.push(m);
        }
    }
    out
}

/// Whether the checkpoint modules of recipe `e` are exactly `modules` (in any order).
fn has_modules(e: &RecipeEntry, modules: &[&str]) -> bool {
    e.modules.len() == modules.len() && e.modules.iter().all(|m| modules.contains(&m.as_str()))
}

/// The module evaluations read of the one registered recipe whose checkpoint modules are
/// exactly `modules` (in any order); `None` when none is, or when recipes of those modules
/// read different ones.
pub fn feature_module_of(modules: &[&str]) -> Option<String> {
    let all = ENTRIES.read().unwrap_or_else(|e| e.into_inner());
    let mut found: Option<String> = None;
    for e in all.iter().filter(|e| has_modules(e, modules)) {
        let m = default_feature_module(e);
        match &found {
            Some(f) if *f != m => return None,
            _ => found = Some(m),
        }
    }
    found
}

/// The one registered recipe whose checkpoint modules are exactly `modules` (in any order);
/// `None` when none is, or several are.
pub fn recipe_of_modules(modules: &[&str]) -> Option<String> {
    let all = ENTRIES.read().unwrap_or_else(|e| e.into_inner());
    let mut of = all.iter().filter(|e| has_modules(e, modules));
    match (of.next(), of.next()) {
        (Some(e), None) => Some(e.schema.name.clone()),
        _ => None,
    }
}

/// Builds the recipe of `exp` through the registry.
///
/// # Errors
/// An unregistered recipe, or the recipe's own.
pub fn build(exp: &Experiment, device: Device, rank: u64, world: u64) -> Result<Box<dyn DynRecipe>> {
    let e = entry(&exp.recipe)?;
    let built = (e.build)(exp, device, rank, world)?;
    // the name its metrics, checkpoints and evaluations are filed under is the registered one
    if built.recipe_name() != e.schema.name {
        return Err(crate::Error::Config(format!(
            "recipe {:?}'s builder made a recipe that calls itself {:?}: `Recipe::name` must return the name it is registered under",
            e.schema.name,
            built.recipe_name()
        )));
    }
    // the pretrained encoder is read from the checkpoint by the entry's module, the random
    // init's from the built recipe's: two names compared two different encoders
    let registered = (e.feature_module)(exp);
    if built.evaluated_module() != registered {
        return Err(crate::Error::Config(format!(
            "recipe {:?}'s entry names `{registered}` as the module its evaluations read, and its built recipe `{}` (`Recipe::feature_module`): the pretrained encoder and its random initialisation would be different modules; make them one",
            e.schema.name,
            built.evaluated_module()
        )));
    }
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::bench_key;

    #[test]
    fn bench_keys_follow_a_run_of_the_given_epoch_length() {
        // default: epoch 0's steps, warm-up included
        assert_eq!((0..5).map(|i| bench_key(i, 2, 3, None)).collect::<Vec<_>>(), [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4)]);
        // a run of 4 steps an epoch, 2 warm-up steps and 9 timed: the timed steps draw the
        // run's steps 1-9 in order (epoch 0's four, epoch 1's four, epoch 2's first), the
        // warm-up steps the first timed steps' masks
        let keys: Vec<_> = (0..11).map(|i| bench_key(i, 2, 9, Some(4))).collect();
        assert_eq!(keys, [(0, 0), (0, 1), (0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1), (1, 2), (1, 3), (2, 0)]);
        // more warm-up steps than timed ones wrap around the timed steps' masks
        assert_eq!((0..4).map(|i| bench_key(i, 3, 2, Some(16))).collect::<Vec<_>>(), [(0, 0), (0, 1), (0, 0), (0, 0)]);
    }
}
