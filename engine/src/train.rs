//! The pretraining loop: loader -> recipe step -> metrics, progress, checkpoint
//! (official `src/train.py` main loop, with schedules as functions of the step).

use crate::data::{self, Loader, LoaderCfg, Split};
use crate::device;
use crate::dist::{self, GradBuckets, ProcessGroup};
use crate::error::{shown, Error, Result};
use crate::recipe::{GradSync, Hyper, Recipe};
use crate::run_dir::{self, write_json};
use crate::schedule::Schedules;
use crate::monitor::{Measure, Monitor, MONITOR_HEADER};
use ijepa_dsl::config::Experiment;
use indicatif::{ProgressBar, ProgressStyle};
use crate::checkpoint::state::{self, Position, Snapshot};
use crate::checkpoint::writer::{Writer, Written};
use ijepa_schema as schema;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tch::Tensor;

/// Options of a pretraining run that are not part of the experiment.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Root of the run registry (`runs/`).
    pub runs_dir: PathBuf,
    /// The experiment's source text, saved as `config.kdl`.
    pub source: String,
    /// Show a progress bar (when stderr is a terminal).
    pub progress: bool,
    /// The process group of a distributed run (`None`: one process). Every rank trains on its
    /// shard with gradients averaged across ranks; only rank 0 writes the run folder.
    pub dist: Option<Arc<ProcessGroup>>,
    /// The stage's hash and folder as the plan chose them (every rank plans the same;
    /// [`crate::plan::point_pretrain_stage`]); `None`: [`crate::plan::pretrain_stage`] of the
    /// experiment.
    pub stage: Option<(String, PathBuf)>,
    /// The study whose plan runs it (recorded in the manifest: [`schema::Manifest::study`]).
    pub study: Option<String>,
    /// The sweep point's settings that pretraining reads ([`schema::Manifest::varied`]).
    pub varied: BTreeMap<String, String>,
    /// The points that share this pretraining, by all their varied settings, where they vary
    /// evaluation settings ([`schema::Manifest::points`]).
    pub points: Vec<BTreeMap<String, String>>,
    /// The settings the experiment file writes itself, by dotted path (`data.horizontal-flip`;
    /// a sweep point's varied ones too: `ijepa_dsl::Study::written`): the setting warnings kept
    /// in the manifest tell a value written at its default from one left out (augmentations a
    /// recipe does not read, written at their defaults, are warned of as `check` warns of them).
    /// Empty: none told apart, and only values set away from their defaults are kept.
    pub written: BTreeSet<String>,
}

impl RunOptions {
    /// (rank, world size).
    pub fn rank_world(&self) -> (usize, usize) {
        self.dist.as_ref().map(|pg| (pg.rank(), pg.world_size())).unwrap_or((0, 1))
    }
}

/// The pretraining's progress bar of `total` steps (hidden unless `show`), at step `at`: a
/// resume's; its time left estimated from this attempt's steps alone.
fn progress_bar(show: bool, total: u64, at: u64) -> ProgressBar {
    let bar = if show { ProgressBar::new(total) } else { ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::hidden()) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_position(at);
    // (a resume's jump to its step is no progress of this attempt: the estimate took it for
    // steps done in microseconds, and the bar read a few seconds left of hours, for minutes)
    bar.tick();
    bar.reset_eta();
    bar
}

/// Rank 0's value of a flag, on every rank (a one-element broadcast).
pub fn agree(dist: Option<&ProcessGroup>, value: i64) -> Result<i64> {
    let Some(pg) = dist else { return Ok(value) };
    let t = Tensor::from_slice(&[value]).to_device(pg.device());
    pg.broadcast(&t, 0)?;
    Ok(t.f_int64_value(&[0])?)
}

/// Makes `recipe` data-parallel over `pg` (DDP semantics): every rank starts from rank 0's
/// models (target encoder included), then averages its gradients with the other ranks' in
/// buckets of about `bucket_mb` MiB at every step.
pub fn install_ddp<R: Recipe>(recipe: &mut R, pg: &Arc<ProcessGroup>, bucket_mb: f64) -> Result<()> {
    let state: Vec<Tensor> = recipe.state().into_iter().map(|(_, t)| t).collect();
    dist::broadcast_tensors(pg, &state, 0)?;
    let bytes = (bucket_mb * 1024.0 * 1024.0) as usize;
    let buckets = GradBuckets::new(&recipe.trainable(), bytes.max(1))?;
    recipe.set_grad_sync(Box::new(DdpSync { pg: pg.clone(), buckets }));
    Ok(())
}

/// DDP's gradient averaging: bucketed all-reduce of the gradients, and the loss.
struct DdpSync {
    pg: Arc<ProcessGroup>,
    buckets: GradBuckets,
}

impl GradSync for DdpSync {
    fn sync(&mut self, loss: &Tensor) -> Result<f64> {
        let local = loss.f_detach()?.f_to_kind(tch::Kind::Double)?.f_double_value(&[])?;
        let mean = self.buckets.average_with(&self.pg, &[local])?;
        Ok(mean.first().copied().unwrap_or(local))
    }

    fn average(&mut self, t: &Tensor) -> Result<()> {
        self.pg.all_reduce(t, dist::ReduceOp::Avg)
    }
}

/// What a finished run reports.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// The run folder.
    pub run_dir: PathBuf,
    /// Optimiser steps taken.
    pub steps: usize,
    /// Mean loss of the first [`RunSummary::loss_window`] losses recorded (none when no loss
    /// is: a finished run that writes its final weights again, trains no step, and whose
    /// `metrics.csv` holds no row).
    pub initial_loss: Option<f64>,
    /// Mean loss of the last [`RunSummary::loss_window`] losses recorded (none as above).
    pub final_loss: Option<f64>,
    /// How many losses each mean takes: 10, or half of them in a shorter run (so the two
    /// means never read the same steps).
    pub loss_window: usize,
    /// Wall time of the training loop in seconds.
    pub wall_s: f64,
    /// The checkpoint written at the end.
    pub checkpoint: PathBuf,
}

/// The manifest and its checkpoint records: the run-folder schema's (`ijepa_schema`).
pub use ijepa_schema::{CheckpointRecord, Manifest};

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The run's precision in words: the value training computes in and why, whether it was
/// written or resolved from `auto` before planning (the experiment holds the resolved value).
fn precision_line(exp: &Experiment, dev: tch::Device) -> String {
    use ijepa_dsl::config::Precision;
    let support = crate::precision::bf16_support(dev);
    match (exp.precision, support.native) {
        (Precision::Fp32, true) => format!("fp32 (bf16 would be native: {})", support.why),
        (Precision::Fp32, false) => format!("fp32 (no native bf16: {})", support.why),
        (Precision::Bf16, true) => format!("bf16 (native: {})", support.why),
        (p, _) => crate::precision::resolve_with(p, &support).describe,
    }
}

/// The kernel of the run's CPU matrix products ([`crate::products`]) for its manifest, and a
/// line saying why: a resumed run keeps the one it last ran on (its manifest's `cpu_products`;
/// BLAS for a CPU run recorded before the field, when BLAS was all there was), so it goes on
/// bit for bit, unless the process's policy fixes another (said in a warning); otherwise the
/// process's choice. The other ranks take rank 0's. `None` off the CPU.
fn cpu_products(exp: &Experiment, dev: tch::Device, previous: Option<&Manifest>, dist: Option<&ProcessGroup>) -> Result<(Option<String>, Option<String>)> {
    use crate::products::{self, Products};
    if dev != tch::Device::Cpu {
        return Ok((None, None));
    }
    let lead = dist.is_none_or(|pg| pg.rank() == 0);
    let (mine, line) = if lead {
        let c = products::choose(dev, exp.precision == ijepa_dsl::config::Precision::Bf16).unwrap_or(products::Choice { products: Products::Blas, why: String::new() });
        let began = previous.filter(|m| m.device.starts_with("cpu")).and_then(|m| match m.cpu_products.as_deref() {
            None => Some(Products::Blas),
            Some(s) => {
                let p = Products::parse(s);
                if p.is_none() {
                    tracing::warn!("the manifest's cpu_products {s:?} is no kernel (blas or onednn): this run takes {}", c.products.name());
                }
                p
            }
        });
        let (p, line, warning) = products::for_run(began, products::policy(), &c);
        if let Some(w) = warning {
            tracing::warn!("{w}");
        }
        (p, line)
    } else {
        (Products::Blas, String::new())
    };
    let agreed = if agree(dist, i64::from(mine == Products::OneDnn))? == 1 { Products::OneDnn } else { Products::Blas };
    // (held for the run: the monitors' feature extraction keeps it)
    products::adopt(agreed);
    let line = if agreed == mine { line } else { format!("{} (rank 0's)", agreed.name()) };
    Ok((Some(agreed.name().to_string()), Some(line)))
}

/// Columns of `metrics.csv`.
/// The `metrics.csv` header of a recipe: step, epoch, loss, lr, wd, its schedules (`momentum`
/// for I-JEPA), its statistics, then ms_per_step, img_per_s, skipped. I-JEPA's is
/// `step,epoch,loss,lr,wd,momentum,context_len,target_len,ms_per_step,img_per_s,skipped`.
pub fn metrics_header<R: Recipe>(recipe: &R) -> String {
    let mut cols = vec!["step", "epoch", "loss", "lr", "wd"];
    if recipe.uses_momentum() {
        cols.push("momentum");
    }
    cols.extend(recipe.stat_names());
    cols.extend(["ms_per_step", "img_per_s", "skipped"]);
    cols.join(",")
}

/// A run folder being written: its path, manifest and checkpoint writer.
struct Run {
    dir: PathBuf,
    manifest: Manifest,
    /// Rank 0 of a distributed run (or the only process): the one that writes.
    lead: bool,
    /// Writes checkpoints while training goes on; the manifest records them once on disk.
    writer: Writer,
    /// The steps done so far (the global step of the last one), for the manifest of a run
    /// that fails.
    steps_done: Option<usize>,
    /// When this attempt started, and the seconds of the earlier ones (the manifest's
    /// `seconds`, written with every manifest).
    since: Instant,
    seconds_before: f64,
    /// The encoder's head count, recorded in every checkpoint ([`state::ENCODER_HEADS`]).
    encoder_heads: usize,
    /// No readable manifest was found (none yet, or an unreadable one set aside): what only it
    /// kept of a resumed run (the monitor's warnings) is taken again from the run's files.
    manifest_lost: bool,
    /// The `log-every` the last attempt wrote its rows at, as its manifest recorded it (none:
    /// no attempt, or an earlier version's).
    logged_every: Option<usize>,
}

impl Run {
    fn save_manifest(&self) -> Result<()> {
        if !self.lead {
            return Ok(());
        }
        let mut manifest = self.manifest.clone();
        manifest.seconds = Some(self.seconds_before + self.since.elapsed().as_secs_f64());
        write_json(&self.dir.join(schema::MANIFEST), &manifest)
    }

    /// Records checkpoints now on disk (each of their files) in the manifest.
    fn record(&mut self, written: Vec<Written>) -> Result<()> {
        if written.is_empty() {
            return Ok(());
        }
        for w in &written {
            for f in &w.files {
                let file = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                self.manifest.record(CheckpointRecord { file, step: w.step, sha256: w.sha256.clone(), data_sha256: None });
            }
            // a run killed now is seen (in the manifest, the report) at its last checkpoint,
            // what it resumes from, not at the steps it had when it started
            self.manifest.steps = self.manifest.steps.max(w.step as usize);
        }
        self.save_manifest()
    }

    /// Records the checkpoints written in the background that have finished (between steps).
    fn poll_writes(&mut self) -> Result<()> {
        let done = self.writer.poll();
        self.record_or_fail(done)
    }

    /// Waits for the checkpoint in flight and records it: where the run needs its files.
    fn finish_writes(&mut self) -> Result<()> {
        let done = self.writer.wait();
        self.record_or_fail(done)
    }

    /// Records what finished; on a failed write, still records the writes that finished
    /// before it, and returns the failure.
    fn record_or_fail(&mut self, done: Result<Vec<Written>>) -> Result<()> {
        match done {
            Ok(done) => self.record(done),
            Err(e) => {
                let earlier = self.writer.wait().unwrap_or_default();
                if let Err(m) = self.record(earlier) {
                    tracing::warn!("the manifest could not be updated: {m}");
                }
                Err(e)
            }
        }
    }
}

/// Pretrains `recipe` on the experiment's data; writes the run folder under `opts.runs_dir`.
/// A run whose folder holds a finished manifest is not repeated; one that was interrupted
/// resumes from `checkpoints/latest.safetensors` and ends bit-identical (on CPU) to an
/// uninterrupted run.
pub fn pretrain<R: Recipe>(exp: &Experiment, recipe: &mut R, opts: &RunOptions) -> Result<RunSummary> {
    let resolved = crate::plan::recorded_config_text(exp)?;
    let (rank, world) = opts.rank_world();
    let lead = rank == 0;
    // the pretraining stage's identity: everything but what runs after it (evals, report)
    let (hash, dir) = match &opts.stage {
        Some(stage) => stage.clone(),
        None => crate::plan::pretrain_stage(&opts.runs_dir, exp, world),
    };
    if lead {
        let checkpoints = dir.join(schema::CHECKPOINTS);
        std::fs::create_dir_all(&checkpoints).map_err(|e| Error::io(&checkpoints, e))?;
    }
    let manifest_path = dir.join(schema::MANIFEST);
    // (a folder, a pipe or a link to nothing in its place is set aside too: the run trained on
    // to its end, then refused to write over it)
    let read = schema::read_text(&manifest_path).map_err(|e| e.to_string()).and_then(|t| serde_json::from_str::<Manifest>(&t).map_err(|e| e.to_string()));
    let previous: Option<Manifest> = match read {
        Ok(m) => Some(m),
        Err(e) if manifest_path.symlink_metadata().is_ok() => {
            if lead {
                // the run goes on from its checkpoints, which the new manifest lists again
                // as they are written
                let aside = run_dir::keep_aside(&manifest_path, "unreadable")?;
                tracing::warn!("{} is not readable ({e}): kept as {}, a new one is written", manifest_path.display(), aside.display());
            }
            None
        }
        Err(_) => None,
    };
    // the record of another stage (a copy of its folder, or the folder renamed, under this
    // stage's name): its run read as done and its weights were evaluated as this stage's; a
    // run here would resume or overwrite another pretraining's files
    if let Some(other) = previous.as_ref().and_then(|m| m.other_stage(&dir)) {
        return Err(Error::OtherStage { dir: dir.clone(), other });
    }
    // done, with its final weights on disk: a finished run whose `final.safetensors` is gone
    // (or cut short: shorter than its header says; or no safetensors file: empty, overwritten)
    // resumes from its last checkpoint, which writes them again without training
    let final_path = dir.join(schema::CHECKPOINTS).join(schema::FINAL);
    let done = previous.as_ref().filter(|m| m.is_done()).map(|m| m.steps);
    let done = match done {
        Some(steps) if !state::is_whole_file(&final_path) => {
            if lead {
                let present = final_path.is_file();
                if present {
                    let cut = state::is_cut_short(&final_path);
                    let aside = run_dir::keep_aside(&final_path, if cut { "truncated" } else { "unreadable" })?;
                    tracing::warn!(
                        "{} {}: kept as {}",
                        final_path.display(),
                        if cut { "is shorter than its header says (cut short)" } else { "is no safetensors file of weights (empty, its header unreadable, or no tensor in it)" },
                        aside.display()
                    );
                }
                let resumable = resumable(&dir);
                // (a file set aside above is not "missing": the word sent the reader looking for
                // a deleted file)
                tracing::warn!(
                    "{} is marked done ({steps} steps) but {} is {}: {}",
                    dir.display(),
                    final_path.display(),
                    if present { "unusable" } else { "missing" },
                    if resumable {
                        "it is written again from the last checkpoint"
                    } else {
                        "no checkpoint is left either, so the run trains again from the start"
                    }
                );
            }
            None
        }
        d => d,
    };
    // every rank follows rank 0's reading of the folder
    let done = agree(opts.dist.as_deref(), done.map(|s| s as i64).unwrap_or(-1))?;
    if done >= 0 {
        let losses = if lead { read_losses(&dir.join(schema::METRICS), u64::MAX)? } else { Vec::new() };
        if lead {
            tracing::info!("{} is already done ({done} steps); nothing to run", dir.display());
            restore_config(&dir, exp);
        }
        return Ok(summary(&dir, done as usize, &losses, 0.0));
    }
    if lead {
        // `running` left behind: the process that wrote it never recorded how it ended (the
        // folder's lock is ours now, so it is gone)
        if let Some(p) = previous.as_ref().filter(|m| m.status == schema::status::RUNNING) {
            // (killed before its first checkpoint: nothing to resume, said so)
            let checkpointed = resumable(&dir);
            tracing::warn!(
                "the last run in {} (started on {}) ended without marking its manifest: stopped at once (SIGKILL, the out-of-memory killer, a second Ctrl-C), crashed, or could not write it (a full disk); {}",
                dir.display(),
                if p.host.is_empty() { "an unknown host" } else { p.host.as_str() },
                if checkpointed { "what it checkpointed is resumed" } else { "it had checkpointed nothing, so training starts from step 0" }
            );
        }
        run_dir::write_atomic(&dir.join(schema::CONFIG_KDL), opts.source.as_bytes())?;
        // (a folder an earlier version named with other monitor floors keeps them recorded:
        // they are how the next run finds it)
        let resolved = match crate::plan::with_named_floors(&dir, &hash, exp, world) {
            Some(named) => crate::plan::recorded_config_text(&named)?,
            None => resolved.clone(),
        };
        run_dir::write_atomic(&dir.join(schema::CONFIG_JSON), resolved.as_bytes())?;
    }
    let (cpu_products, products_line) = cpu_products(exp, recipe.device(), previous.as_ref(), opts.dist.as_deref())?;
    // (a resume on another CPU thread count sums the products in another order: said, as a
    // change of their kernel is; its weights differed, without a word)
    if let Some(was) = previous.as_ref().and_then(|m| cpu_threads(&m.device)).filter(|_| lead && recipe.device() == tch::Device::Cpu && resumable(&dir)) {
        let now = tch::get_num_threads().max(1) as usize;
        if was != now {
            tracing::warn!(
                "this run's last attempt ran on {was} CPU thread(s), this one on {now}: its weights will differ in the last bits from a run on one thread count throughout (OMP_NUM_THREADS={was} goes on as the last attempt went)"
            );
        }
    }
    // (an attempt stopped at once, SIGKILL, kept what its last manifest recorded)
    let seconds_before = previous.as_ref().and_then(|m| m.seconds).unwrap_or(0.0);
    let previous_missing = previous.is_none();
    let logged_every = previous.as_ref().and_then(|m| m.log_every);
    // (a finished run writing its final weights again may read no loss: it keeps this one)
    let previous_final_loss = previous.as_ref().and_then(|m| m.final_loss);
    let manifest = Manifest {
        stage: "pretrain".into(),
        experiment: exp.name.clone(),
        hash: hash.clone(),
        status: schema::status::RUNNING.into(),
        started: previous.as_ref().map(|m| m.started).unwrap_or_else(now),
        finished: None,
        ijepa_version: env!("CARGO_PKG_VERSION").into(),
        host: schema::host_name(),
        world_size: world,
        device: device::describe_machine(recipe.device()),
        precision: precision_line(exp, recipe.device()),
        cpu_products,
        steps: 0,
        final_loss: None,
        error: None,
        diverged_at: None,
        resumed_at: previous.as_ref().map(|m| m.resumed_at.clone()).unwrap_or_default(),
        log_every: Some(exp.log_every),
        // (what the attempts before a resume warned of stays the run's)
        warnings: previous.as_ref().map(|m| m.warnings.clone()).unwrap_or_default(),
        // (the file's checks said them, of the settings it writes)
        setting_warnings: ijepa_dsl::recipes::setting_warnings(exp, |path| opts.written.contains(path)).all(),
        training_warnings: previous.as_ref().map(|m| m.training_warnings.clone()).unwrap_or_default(),
        checkpoints: previous.map(|m| m.checkpoints).unwrap_or_default(),
        rank_digests: Vec::new(),
        seconds: None,
        study: opts.study.clone(),
        varied: opts.varied.clone(),
        points: opts.points.clone(),
        inputs: crate::plan::pretrain_inputs(exp),
    };
    let mut run = Run { dir, manifest, lead, writer: Writer::new(), steps_done: None, since: Instant::now(), seconds_before, encoder_heads: exp.encoder.num_heads, manifest_lost: previous_missing, logged_every };
    run.save_manifest()?;
    if lead {
        if let Some(line) = products_line {
            tracing::info!("CPU matrix products: {line}");
        }
    }
    let result = train_loop(exp, recipe, opts, &mut run);
    // (the run's kernel ends with it: a later evaluation in this process chooses its own)
    crate::products::release();
    // a checkpoint still in flight (an error left the loop) is finished and recorded; an error
    // writing it fails a run that had succeeded, and is logged beside the error of one that had not
    let result = match (result, run.finish_writes()) {
        (Ok(s), Ok(())) => Ok(s),
        (Ok(_), Err(e)) => Err(e),
        (Err(e), written) => {
            if let Err(w) = written {
                tracing::warn!("a checkpoint could not be written: {w}");
            }
            Err(e)
        }
    };
    // no rank leaves while another still needs it (the barrier also surfaces a dead peer);
    // a peer that died after the final weights were written and the replicas compared takes
    // nothing from the run: it is done (it was marked failed, and trained again to its end)
    let result = match (result, opts.dist.as_deref()) {
        (Ok(s), Some(pg)) => match pg.barrier() {
            Ok(_) => Ok(s),
            Err(e) if run.lead => {
                tracing::warn!("a rank left before the others at the end of training ({e}); the final weights were written and the replicas compared: the run is done");
                Ok(s)
            }
            Err(e) => Err(e),
        },
        (r, _) => r,
    };
    run.manifest.finished = Some(now());
    // (what the recipe warns of, of the steps this attempt trained: kept with the run, beside
    // the earlier attempts')
    for note in recipe.notes() {
        run.manifest.training_warning(note);
    }
    match &result {
        Ok(s) => {
            run.manifest.status = schema::status::DONE.into();
            run.manifest.steps = s.steps;
            // (no loss read: the one recorded before stays, not -0 of an empty mean)
            run.manifest.final_loss = s.final_loss.or(previous_final_loss);
        }
        Err(Error::Interrupted { step, .. }) => run.mark_interrupted(*step),
        Err(e) => run.mark_failed(e),
    }
    match (run.save_manifest(), result) {
        (Ok(()), result) => result,
        (Err(e), Ok(_)) => Err(e),
        // the run's own error is the one said (a full disk that stopped a checkpoint stopped
        // the manifest's record of it too, whose error was said instead: no step, no file)
        (Err(m), Err(e)) => {
            tracing::warn!("the manifest could not record how the run ended ({m}): it still says `running`, and the report calls the run killed");
            Err(e)
        }
    }
}

/// The CPU threads a manifest's `device` records (`cpu (2 threads) on AMD EPYC`), if it is a
/// CPU's.
fn cpu_threads(device: &str) -> Option<usize> {
    device.strip_prefix("cpu (")?.split(' ').next()?.parse().ok()
}

impl Run {
    /// Marks the manifest interrupted after `step` steps (none recorded: the manifest's as
    /// they were).
    fn mark_interrupted(&mut self, step: Option<u64>) {
        self.manifest.status = schema::status::INTERRUPTED.into();
        self.manifest.steps = step.map_or(self.manifest.steps, |s| s as usize);
    }

    /// Marks the manifest failed with `e`, at the steps a resume starts from.
    fn mark_failed(&mut self, e: &Error) {
        self.manifest.status = schema::status::FAILED.into();
        self.manifest.error = Some(e.to_string());
        if let Error::Diverged { step, .. } = e {
            self.manifest.diverged_at = Some(*step);
            // the steps before the one that diverged
            self.manifest.steps = step.saturating_sub(1) as usize;
        } else if let Some(done) = self.steps_done {
            // the steps done before the error (a full disk, a dead rank, a bad image) as far
            // as they are checkpointed: what a resume starts from (the checkpoint of the
            // steps done could not be written, or none was attempted)
            let saved = self.manifest.checkpoints.iter().map(|c| c.step as usize).max().unwrap_or(0);
            self.manifest.steps = done.min(saved);
        }
    }

    /// Rank 0 marks how the run ends (`e`) before a distributed run's ranks part: srun's
    /// `--kill-on-bad-exit` stops rank 0 once the others have left, and the manifest said
    /// `running` (the resume called it a run stopped at once, SIGKILL or a crash). The run's
    /// end marks it again; a failure to write is said there.
    fn mark_before_parting(&mut self, e: &Error) {
        if !self.lead {
            return;
        }
        match e {
            Error::Interrupted { step, .. } => self.mark_interrupted(*step),
            e => self.mark_failed(e),
        }
        self.manifest.finished = Some(now());
        let _ = self.save_manifest();
    }
}

/// Whether the run folder `dir` holds what a resume can start from: `latest` or a kept epoch
/// checkpoint.
fn resumable(dir: &Path) -> bool {
    let checkpoints = dir.join(schema::CHECKPOINTS);
    checkpoints.join(schema::LATEST).exists() || kept_checkpoints(&checkpoints).is_ok_and(|k| !k.is_empty())
}

/// The list of unreadable images a run skipped (`on-error "skip"`), one per line.
pub const SKIPPED_FILE: &str = "skipped.txt";

/// Names each newly skipped image once, with why it could not be read; rank 0 (`dir` given)
/// also adds it to `skipped.txt`. Another rank's images are named on its own output only.
fn record_skipped(
    dir: Option<&Path>,
    rank: usize,
    files: &[(String, String)],
    seen: &mut std::collections::BTreeSet<String>,
    bar: &ProgressBar,
) -> Result<()> {
    let new: Vec<&(String, String)> = files.iter().filter(|(f, _)| !seen.contains(f)).collect();
    if new.is_empty() {
        return Ok(());
    }
    // the run's list, open for appending, with its path, and the names it holds (another
    // rank, or this one in an earlier epoch's share, may have listed a file)
    let mut list = match dir {
        Some(d) => {
            let p = d.join(SKIPPED_FILE);
            let listed: std::collections::HashSet<String> = schema::read_text(&p).unwrap_or_default().lines().map(str::to_string).collect();
            let f = std::fs::OpenOptions::new().create(true).append(true).open(&p).map_err(|e| Error::io(&p, e))?;
            Some((f, p, listed))
        }
        None => None,
    };
    for (name, why) in new {
        match &mut list {
            Some((_, _, listed)) if listed.contains(name) => {}
            Some((f, p, _)) => {
                // one write a line: the ranks append to one file
                f.write_all(format!("{name}\n").as_bytes()).map_err(|e| Error::io(&*p, e))?;
                bar.suspend(|| tracing::warn!("skipping unreadable {name}: {why} (on-error \"skip\"; listed in {})", p.display()));
            }
            // (the log names the rank)
            None => tracing::warn!("skipping unreadable {name}: {why} (on-error \"skip\"; rank {rank} cannot reach the run's folder to list it)"),
        }
        seen.insert(name.clone());
    }
    Ok(())
}

/// The error of a run stopped by a signal after `step` steps (`None`: before its first, with
/// nothing saved).
fn interrupted(step: Option<u64>, dir: &Path) -> Error {
    Error::Interrupted { signal: crate::interrupt::requested().unwrap_or(crate::interrupt::TO_ANOTHER_RANK).to_string(), step, dir: dir.to_path_buf(), finished: false }
}

/// Ends a run stopped by a signal in the middle of an epoch or during its monitor: rank 0
/// saves `pos` (and its kept copy `keep`) and waits for the write, every rank of a distributed
/// run leaves after it ([`part`]); returns the error the run ends with.
fn stop_at<R: Recipe>(recipe: &R, run: &mut Run, pos: Position, keep: Option<String>, bar: &ProgressBar, dist: Option<&ProcessGroup>) -> Result<Error> {
    let saved = if run.lead {
        run.finish_writes().and_then(|()| {
            // (a distributed run stopped before an epoch's first step: its end's checkpoint is
            // this position, or a resumed run's: the one it resumed from)
            if run.manifest.checkpoint(schema::LATEST).is_none_or(|c| c.step != pos.global_step) {
                save_latest(recipe, run, pos, keep)?;
                run.finish_writes()?;
            }
            Ok(())
        })
    } else {
        Ok(())
    };
    let stopped = interrupted(Some(pos.global_step), &run.dir);
    if saved.is_ok() {
        run.mark_before_parting(&stopped);
    }
    part(dist);
    saved?;
    bar.finish_and_clear();
    Ok(stopped)
}

/// The ranks of a distributed run that stops together (a signal, a rank's failed loader) wait
/// here until every rank is here, rank 0 after its checkpoint is on disk: a rank that left at
/// once had its launcher (`ijepa launch`, srun's `--kill-on-bad-exit`) stop rank 0 in the
/// middle of the save. A failure here (a dead peer) is not the stop's cause: ignored.
fn part(dist: Option<&ProcessGroup>) {
    if let Some(pg) = dist {
        let _ = pg.barrier();
    }
}

/// Saves `pos` (unless the last checkpoint is already there) before a run stops on `error`;
/// says how to resume. A failure to save is said, never put in place of `error`.
fn save_after_error<R: Recipe>(recipe: &R, run: &mut Run, pos: Position, keep: Option<String>, error: &Error, bar: &ProgressBar) {
    let saved = run.finish_writes().and_then(|()| {
        // (an error on an epoch's first batch: its end's checkpoint is this position)
        if run.manifest.checkpoint(schema::LATEST).is_some_and(|c| c.step == pos.global_step) {
            return Ok(());
        }
        save_latest(recipe, run, pos, keep)?;
        run.finish_writes()
    });
    let step = pos.global_step;
    bar.suspend(|| match (&saved, error) {
        (Err(w), _) => tracing::warn!("the {step} steps done could not be checkpointed: {w}"),
        (Ok(()), Error::Data(_) | Error::Io { .. } | Error::StoppedWithRank(_)) => tracing::warn!(
            "the {step} steps done are checkpointed in {}: once the image can be read (a readable copy in its place), the same command resumes at step {step}",
            run.dir.display()
        ),
        (Ok(()), _) => tracing::warn!("the {step} steps done are checkpointed in {}: the same command resumes at step {step}", run.dir.display()),
    });
}

/// A resume's refusal `e` for other training images, where a monitor holds images out of
/// `full` (the training split) that names a file twice: an earlier version drew the held-out
/// images over a list's lines, not its files, and held out others, which is said as a cause
/// too (a run stopped under that draw was told to restore data it never touched).
fn with_draw_note(e: Error, exp: &Experiment, full: &Arc<dyn data::Dataset>) -> Error {
    match e {
        Error::Checkpoint { path, message } if exp.monitor.is_some() && data::distinct(full.clone()).1 > 0 => Error::Checkpoint {
            path,
            message: format!(
                "{message} (or, with the data unchanged: the run began under a version before 2026-12-06, which drew the monitor's held-out \
                 images over the list's lines, not its files; this list names a file twice, and other images are held out now: the run cannot go \
                 on as it began)"
            ),
        },
        e => e,
    }
}

/// A checkpoint resumes only on the training images it was taken on (their count) and where
/// its epochs have the steps this run's have: data that gained or lost images since (or
/// another number of ranks) gives other epochs, and resumed there the run would follow other
/// schedules (learning rate, weight decay, EMA) than the ones it began, or start past an
/// epoch's end. A checkpoint of an earlier version, which does not record its
/// steps an epoch, is checked by its position (step = epoch x steps an epoch + step in epoch).
///
/// # Errors
/// [`Error::Checkpoint`] naming both counts and what to do.
fn check_position(from: &Path, pos: Position, ipe: u64, (n_images, prints, folder): (usize, &data::Fingerprints, bool), batch: usize, world: usize) -> Result<()> {
    let data = state::stage_id(&prints.now);
    // `<run>/checkpoints/<file>`
    let run = from.parent().and_then(Path::parent).unwrap_or(from);
    // (as many images, other ones: renamed, moved to another class, one replaced by a file of
    // another name; for a data set in one file, other contents)
    if pos.images == n_images as u64 && pos.data != 0 && data != 0 && !prints.match_id(pos.data) {
        // (a folder's files renamed or moved also reorder the epochs; a data set in one file
        // with other bytes keeps its order and gives other images)
        let what = data::other_images_cause(folder);
        let how = if folder { "over other images in another order" } else { "over other images" };
        return Err(Error::Checkpoint {
            path: from.to_path_buf(),
            message: format!(
                "taken at step {} of a run on {n_images} training images; the data now gives as many, but not the same ones ({what}; its fingerprint was \
                 {:016x}, now {data:016x}): resumed here the run would go on {how} than it began. Restore the data the run started on{}, or move {} \
                 aside to train from the start",
                pos.global_step,
                pos.data,
                if folder { " (an unreadable image: a readable copy in its place, under its name)" } else { "" },
                run.display()
            ),
        });
    }
    if pos.images != 0 && pos.images != n_images as u64 {
        return Err(Error::Checkpoint {
            path: from.to_path_buf(),
            message: format!(
                "taken at step {} of a run on {} training images; the data now gives {n_images}: the training images changed since, and resumed here \
                 the run would go on over other images in another order than it began. Restore the data the run started on (an unreadable image: a \
                 readable copy in its place), or move {} aside to train from the start",
                pos.global_step,
                pos.images,
                run.display()
            ),
        });
    }
    let then = match pos.steps_per_epoch {
        0 if pos.step_in_epoch <= ipe && pos.epoch * ipe + pos.step_in_epoch == pos.global_step => return Ok(()),
        0 => "another number".to_string(),
        n if n == ipe => return Ok(()),
        n => n.to_string(),
    };
    let ranks = if world > 1 { format!(" x {world} ranks") } else { String::new() };
    Err(Error::Checkpoint {
        path: from.to_path_buf(),
        message: format!(
            "taken at step {} of a run of {then} steps an epoch; the data now gives {ipe} ({n_images} images, batches of {batch}{ranks}): \
             the training images (or the number of ranks) changed since, and resumed here the run would follow other schedules than it began. \
             Restore the data the run started on, or move {} aside to train from the start",
            pos.global_step,
            run.display()
        ),
    })
}

/// Losses of the metrics rows with step <= `max_step`.
fn read_losses(path: &Path, max_step: u64) -> Result<Vec<f64>> {
    let text = schema::read_text(path).map_err(|e| Error::io(path, e))?;
    Ok(text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut cols = l.split(',');
            let step: u64 = cols.next()?.parse().ok()?;
            let loss: f64 = cols.nth(1)?.parse().ok()?;
            (step <= max_step).then_some(loss)
        })
        .collect())
}

/// Keeps the header and the complete rows with step <= `max_step` (rows after the checkpoint
/// are recomputed by the resumed run; a row torn by a crash, with fewer columns than the
/// header, is dropped, with a warning when it is not one the resume recomputes). A file that is
/// gone starts again from `header`, with a warning: the rows it held are lost, the run is not.
/// Returns what it kept and the number of torn rows dropped at or before `max_step`.
fn truncate_metrics(path: &Path, max_step: u64, header: &str) -> Result<(Kept, usize)> {
    // (a pipe in its place is an error naming it, not a read that waits for its writer)
    let text = match schema::read_text(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!("{} is missing: it starts again from its header (the rows of steps 1-{max_step} are lost; the checkpoint is not)", path.display());
            String::new()
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    let header = text.lines().next().unwrap_or(header);
    let columns = header.split(',').count();
    let mut kept = String::with_capacity(text.len().max(header.len() + 1));
    kept.push_str(header);
    kept.push('\n');
    let mut rows = Kept::default();
    let mut torn = 0;
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let step = line.split(',').next().and_then(|s| s.parse::<u64>().ok());
        let whole = line.split(',').count() == columns;
        match step {
            Some(s) if s <= max_step && whole => {
                kept.push_str(line);
                kept.push('\n');
                rows.gap = s.saturating_sub(rows.last);
                rows.last = s;
            }
            Some(s) if s > max_step => {} // after the checkpoint: the resume writes it again
            _ => torn += 1,
        }
    }
    if torn > 0 {
        tracing::warn!(
            "{}: dropped {torn} torn row(s) (fewer columns than the header, or no step) at or before the checkpoint's step {max_step}: those rows are lost (the weights are not)",
            path.display()
        );
    }
    run_dir::write_atomic(path, kept.as_bytes())?;
    Ok((rows, torn))
}

/// The rows a resume keeps of a metrics file: the step of the last (0: none) and the steps
/// between it and the row before (the first from step 0): the `log-every` it was written at,
/// which a run resumed with a shorter one does not say.
#[derive(Debug, Default, PartialEq)]
struct Kept {
    last: u64,
    gap: u64,
}

fn summary(dir: &Path, steps: usize, losses: &[f64], wall_s: f64) -> RunSummary {
    let window = schema::final_loss_window(losses.len());
    let head = &losses[..losses.len().min(window)];
    let tail = &losses[losses.len().saturating_sub(window)..];
    let mean = |xs: &[f64]| (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64);
    RunSummary {
        run_dir: dir.to_path_buf(),
        steps,
        loss_window: window,
        initial_loss: mean(head),
        final_loss: mean(tail),
        wall_s,
        checkpoint: dir.join(schema::CHECKPOINTS).join(schema::FINAL),
    }
}

/// Whether `latest` (at step `step`) is the file the manifest recorded: `None` when it is, or
/// when it is newer than the record (a run stopped after writing it and before recording it);
/// else why not (an older step: a stale copy; the recorded step with other bytes: another
/// run's file).
fn foreign_latest(latest: &Path, pos: &Position, (stage, epochs): (u64, u64), recorded: Option<&schema::CheckpointRecord>) -> Result<Option<String>> {
    if pos.of_another_stage(stage) {
        return Ok(Some(format!("it was written by another pretraining (stage {:016x}, this one is {stage:016x}): another run's file", pos.stage)));
    }
    if let Some(why) = pos.impossible(epochs) {
        return Ok(Some(why));
    }
    let step = pos.global_step;
    let Some(rec) = recorded else { return Ok(None) };
    if step > rec.step {
        return Ok(None);
    }
    if step < rec.step {
        return Ok(Some(format!("it is at step {step}, but the manifest recorded it at step {}: an older or another run's file", rec.step)));
    }
    let sha = state::sha256_file(latest)?;
    Ok((sha != rec.sha256).then(|| format!("its SHA-256 is not the one the manifest recorded for step {step}: another run's file")))
}

/// A weight decay as the epoch line shows it: 3 decimals, or 3 significant digits below 0.01
/// (a decay of 1e-4 read `wd 0.000`).
fn shown_decay(wd: f64) -> String {
    if wd == 0.0 || wd.abs() >= 0.01 { format!("{wd:.3}") } else { format!("{wd:.2e}") }
}

/// An EMA momentum as the epoch line shows it: to 6 decimals, trailing zeros dropped (at 4, the
/// last epochs of the official 0.996 -> 1 over 300 read `1.0000`, a target that looked frozen).
fn shown_momentum(m: f64) -> String {
    let s = format!("{m:.6}");
    let s = s.trim_end_matches('0');
    if s.ends_with('.') { format!("{s}0") } else { s.to_string() }
}

/// A checkpoint to resume from: its tensors, its position and the file they came from.
type Resumable = (std::collections::HashMap<String, Tensor>, Position, PathBuf);

/// What a resume would start from, read without touching a file: `latest` when it verifies
/// and is this run's ([`foreign_latest`]), else the newest kept `epoch-NNNN.safetensors` that
/// verifies, else none. [`latest_or_fallback`] acts on it; `ijepa run --dry-run` says it (it
/// said "resume" at the step `latest`'s header names, where the run then started over).
struct ResumeChoice {
    /// The checkpoint read, if any verifies.
    from: Option<Resumable>,
    /// Why `latest` is not it (`None`: it is).
    latest_unusable: Option<Error>,
    /// Each kept checkpoint passed over, with why.
    passed: Vec<(PathBuf, String)>,
    /// Whether `latest` is missing, and whether any checkpoint is kept.
    missing: bool,
    kept_any: bool,
}

/// See [`ResumeChoice`]. A link or a folder in `latest`'s place is an error (the run's next
/// checkpoint could not replace it).
fn choose_resume(latest: &Path, (stage, epochs): (u64, u64), recorded: Option<&schema::CheckpointRecord>) -> Result<ResumeChoice> {
    // the run replaces the file at every checkpoint: a link (or a folder) in its place failed
    // at the first one, after the steps since the resume were trained again
    if let Some(m) = std::fs::symlink_metadata(latest).ok().filter(|m| !m.is_file()) {
        let what = if m.file_type().is_symlink() { "a symbolic link" } else if m.is_dir() { "a folder" } else { "not a regular file" };
        return Err(Error::Checkpoint {
            path: latest.to_path_buf(),
            message: format!("is {what}, which the run's next checkpoint cannot replace: put the file itself in its place (or move it aside to resume from a kept checkpoint)"),
        });
    }
    let missing = !latest.exists();
    let err = if missing {
        Error::Checkpoint { path: latest.to_path_buf(), message: "it is missing".into() }
    } else {
        match state::load(latest) {
            Ok(loaded) => match foreign_latest(latest, &loaded.1, (stage, epochs), recorded)? {
                None => {
                    let from = Some((loaded.0, loaded.1, latest.to_path_buf()));
                    return Ok(ResumeChoice { from, latest_unusable: None, passed: Vec::new(), missing, kept_any: false });
                }
                Some(why) => Error::Checkpoint { path: latest.to_path_buf(), message: why },
            },
            Err(e) => e,
        }
    };
    let dir = latest.parent().unwrap_or(Path::new("."));
    let kept = if missing && !dir.exists() { Vec::new() } else { kept_checkpoints(dir)? };
    let mut passed = Vec::new();
    for candidate in kept.iter().rev() {
        match state::load(candidate) {
            Ok(loaded) if loaded.1.of_another_stage(stage) => passed.push((candidate.clone(), "written by another pretraining".to_string())),
            Ok((_, pos)) if let Some(why) = pos.impossible(epochs) => passed.push((candidate.clone(), why)),
            Ok(loaded) => {
                let from = Some((loaded.0, loaded.1, candidate.clone()));
                return Ok(ResumeChoice { from, latest_unusable: Some(err), passed, missing, kept_any: true });
            }
            Err(e) => passed.push((candidate.clone(), e.to_string())),
        }
    }
    Ok(ResumeChoice { from: None, latest_unusable: Some(err), passed, missing, kept_any: !kept.is_empty() })
}

/// Where the pretraining in `dir` (stage `hash`, of `epochs` epochs) would resume, as its run
/// chooses it ([`ResumeChoice`]: every candidate verified, which reads it whole): the file and
/// its step, or why none is used (the run starts over). Nothing is written.
///
/// # Errors
/// A link or a folder in `latest`'s place; an I/O error listing the checkpoints.
pub fn resume_point(dir: &Path, hash: &str, epochs: u64) -> Result<std::result::Result<(PathBuf, u64), String>> {
    let latest = dir.join(schema::CHECKPOINTS).join(schema::LATEST);
    let recorded = schema::read_manifest(dir).and_then(|m| m.checkpoint(schema::LATEST).cloned());
    let c = choose_resume(&latest, (state::stage_id(hash), epochs), recorded.as_ref())?;
    Ok(match (c.from, c.latest_unusable) {
        (Some((_, pos, from)), _) => Ok((from, pos.global_step)),
        (None, Some(e)) if !c.missing => Err(format!("{e}, and no kept checkpoint verifies")),
        (None, _) => Err(format!("{} is missing and no kept checkpoint verifies", latest.display())),
    })
}

/// Reads `latest` for a resume; when it is unusable (corrupt, truncated, non-finite, or not the
/// file the manifest recorded: see [`foreign_latest`]), warns and falls back to the newest kept
/// `epoch-NNNN.safetensors` that verifies, copying it over `latest` (so every rank reads the
/// same file); when none does, sets `latest` aside and the run starts over. Returns the tensors,
/// the position and the file they came from.
fn latest_or_fallback(latest: &Path, (stage, epochs): (u64, u64), recorded: Option<&schema::CheckpointRecord>) -> Result<Option<Resumable>> {
    let c = choose_resume(latest, (stage, epochs), recorded)?;
    for (candidate, why) in &c.passed {
        tracing::warn!("{} is unusable too ({why})", candidate.display());
    }
    let err = match (c.from, c.latest_unusable) {
        (Some(loaded), None) => return Ok(Some(loaded)),
        (Some(loaded), Some(err)) => {
            let candidate = loaded.2.clone();
            tracing::warn!("{} is unusable ({err}); resuming from {} (step {}) instead", latest.display(), candidate.display(), loaded.1.global_step);
            // (through a temporary file of this process's, synced before the rename: a fixed
            // name was left behind by a failed or killed copy)
            run_dir::write_atomic_with(latest, |f| std::io::copy(&mut std::fs::File::open(&candidate)?, f).map(|_| ()))?;
            return Ok(Some(loaded));
        }
        (None, err) => err,
    };
    if c.missing {
        if c.kept_any {
            tracing::warn!("{} is missing and no kept checkpoint verifies: the run starts over", latest.display());
        } else if let Some(r) = recorded {
            // deleted by hand (the checkpoints folder, or its files): said, not a silent restart
            tracing::warn!(
                "{} is missing (the manifest records it at step {}) and no kept checkpoint is left: the run starts over from step 0",
                latest.display(),
                r.step
            );
        }
        return Ok(None);
    }
    let err = err.map(|e| e.to_string()).unwrap_or_default();
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let aside = latest.with_file_name(format!("latest.safetensors.unusable-{secs}"));
    std::fs::rename(latest, &aside).map_err(|e| Error::io(latest, e))?;
    tracing::warn!(
        "{} is unusable ({err}) and no kept checkpoint verifies; it is kept as {} and the run starts over",
        latest.display(),
        aside.display()
    );
    Ok(None)
}

/// Starts writing `checkpoints/latest.safetensors` (models + optimiser + position), and the
/// same bytes to `checkpoints/<keep>` when given, in the background ([`Writer`]); the
/// manifest records them once they are on disk. Waits first for the write in flight (one
/// snapshot at a time). Refuses diverged weights before any copy.
fn save_latest<R: Recipe>(recipe: &R, run: &mut Run, pos: Position, keep: Option<String>) -> Result<PathBuf> {
    run.finish_writes()?;
    let folder = run.dir.join(schema::CHECKPOINTS);
    let path = folder.join(schema::LATEST);
    let (mut tensors, optimizer_step) = recipe.optimizer_state();
    tensors.extend(recipe.state());
    // never replace a good checkpoint with diverged weights
    for (name, t) in &tensors {
        if !crate::model::all_finite(t)? {
            return Err(Error::Diverged {
                what: format!("`{name}` holds NaN/Inf"),
                step: pos.global_step,
                epoch: None,
                last_good: path.exists().then(|| path.clone()),
            });
        }
    }
    let snapshot = Snapshot::checkpoint(&tensors, Position { optimizer_step, ..pos })?.with_meta(state::ENCODER_HEADS, run.encoder_heads.to_string());
    // the kept copy first: a run killed between the two resumes from the previous `latest`
    // and writes this epoch's copy again, so a kept epoch is never skipped
    let mut files: Vec<PathBuf> = keep.map(|k| folder.join(k)).into_iter().collect();
    files.push(path.clone());
    run.writer.submit(snapshot, files, pos.global_step)?;
    Ok(path)
}

/// The kept epoch checkpoints (`epoch-NNNN.safetensors`) of a checkpoints folder, oldest
/// first.
///
/// # Errors
/// The folder cannot be listed.
fn kept_checkpoints(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut kept: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(schema::is_kept_checkpoint))
        .collect();
    kept.sort();
    Ok(kept)
}

/// Writes a finished run's `config.json` (the resolved experiment the report and `export`
/// read) again when it was lost, or is not readable JSON (cut short, a folder in its place: the
/// report left the run out, and every run skipped it as done; the old one is set aside): `exp`
/// has every setting the folder's hash covers (the model, the data, the schedules) as the run
/// had them; what the hash leaves out (evaluations, cadence, loader threads) is this file's.
/// One that cannot be set aside or written (a read-only runs folder, whose finished stages
/// still run) is a warning: the run's results are not in it.
pub fn restore_config(dir: &Path, exp: &Experiment) {
    let config = dir.join(schema::CONFIG_JSON);
    if !dir.join(schema::MANIFEST).is_file() {
        return;
    }
    let why = if config.symlink_metadata().is_ok() {
        // (JSON that holds no settings, `null` or `[]`, is no config either)
        let read = schema::read_text(&config).map_err(|e| e.to_string()).and_then(|t| match serde_json::from_str::<serde_json::Value>(&t) {
            Ok(v) if v.is_object() => Ok(()),
            Ok(_) => Err("not a JSON object".to_string()),
            Err(e) => Err(e.to_string()),
        });
        let Err(e) = read else { return };
        format!("is not readable ({e})")
    } else {
        "was missing".to_string()
    };
    let restored = || -> Result<String> {
        let aside = match config.symlink_metadata() {
            Ok(_) => format!(": kept as {},", run_dir::keep_aside(&config, "unreadable")?.display()),
            Err(_) => ":".to_string(),
        };
        run_dir::write_atomic(&config, crate::plan::recorded_config_text(exp)?.as_bytes())?;
        Ok(aside)
    };
    match restored() {
        Ok(aside) => tracing::warn!("{} {why}{aside} written again", config.display()),
        Err(e) => tracing::warn!("{} {why} and could not be written again ({e}): the report shows the run without its settings", config.display()),
    }
}

/// A finished run's collapse warnings under `exp`'s monitor floors where its `config.json`
/// records others: the floors are not in the stage's hash (they decide only those warnings),
/// so a file whose `rank-floor` changed skipped the run as done, and its warnings, the report's
/// and the figure's floor line stayed the old floors'. Its collapse warnings at its last
/// monitored epoch are read again from its `monitor.csv` (the values as the file rounds them;
/// the other warnings, said from the live values, are kept) and recorded in its manifest, and
/// the floors in its `config.json`. Returns what to say: the floors, then every warning the
/// run now has; or why they could not be recorded. `None` where nothing changed, or the folder
/// lacks a readable config, manifest or `monitor.csv`; the caller holds the stage's lock, and leaves out a
/// folder an earlier version named by its floors ([`crate::plan::with_named_floors`]).
pub fn refloor(dir: &Path, exp: &Experiment) -> Option<std::result::Result<(String, Vec<String>), String>> {
    let cfg = exp.monitor.as_ref()?;
    let config_path = dir.join(schema::CONFIG_JSON);
    let mut config: serde_json::Value = serde_json::from_str(&schema::read_text(&config_path).ok()?).ok()?;
    let floor = |c: &serde_json::Value, k: &str| c["monitor"][k].as_f64();
    let (rank, spread) = (floor(&config, "rank_floor")?, floor(&config, "spread_floor")?);
    if (rank, spread) == (cfg.rank_floor, cfg.spread_floor) {
        return None;
    }
    let mut manifest = schema::read_manifest(dir)?;
    // (a manifest warning is `epoch N: <warning>`)
    let collapse = |w: &str| warning_key(w.split_once(": ").map_or(w, |(_, rest)| rest)).ends_with("features are collapsing");
    let rows = crate::monitor::read_rows(&dir.join(schema::MONITOR));
    // (a monitor.csv gone or unreadable holds nothing to read them from: the run's are kept)
    if !rows.iter().any(|r| r.encoder != "pixels") {
        return None;
    }
    let now: Vec<String> = match warnings_of_rows(&rows, cfg, crate::monitor::Levers::of(exp)) {
        Some((last, all)) => all.into_iter().filter(|w| collapse(w)).map(|w| format!("epoch {last}: {w}")).collect(),
        None => Vec::new(),
    };
    let before = manifest.warnings.len();
    // (as the monitor orders them: collapses, then the others)
    manifest.warnings = now.into_iter().chain(manifest.warnings.iter().filter(|w| !collapse(w)).cloned()).collect();
    config["monitor"]["rank_floor"] = serde_json::json!(cfg.rank_floor);
    config["monitor"]["spread_floor"] = serde_json::json!(cfg.spread_floor);
    let floors = format!("rank-floor {} and spread-floor {} (it ran with {rank} and {spread})", cfg.rank_floor, cfg.spread_floor);
    let written = run_dir::write_json(&dir.join(schema::MANIFEST), &manifest).and_then(|()| run_dir::write_json(&config_path, &config));
    Some(match written {
        Ok(()) => Ok((
            format!(
                "the monitor's floors are now {floors}: its collapse warnings are read again from {} ({} warning(s) before, {} now){}",
                schema::MONITOR,
                before,
                manifest.warnings.len(),
                if manifest.warnings.is_empty() { "" } else { ":" }
            ),
            manifest.warnings,
        )),
        Err(e) => Err(format!("the monitor's floors are now {floors}, but its warnings could not be recorded again ({e}): its report shows the earlier floors' warnings")),
    })
}

/// Whether `flag` holds on any rank (the flag itself on one process): a sum over ranks.
fn any_rank(dist: Option<&ProcessGroup>, flag: bool) -> Result<bool> {
    let Some(pg) = dist else { return Ok(flag) };
    let t = Tensor::from_slice(&[i64::from(flag)]).to_device(pg.device());
    pg.all_reduce(&t, crate::dist::ReduceOp::Sum)?;
    Ok(t.f_int64_value(&[0])? > 0)
}

/// Rank 0's monitor outcome `measured` (`Ok(None)` on the other ranks, which measure nothing),
/// told to every rank of a distributed run, which waits here while rank 0 measures (one small
/// collective): the others stop with rank 0 when its monitor failed or was stopped by a signal
/// (they waited in their next collective and blamed a closed connection, and the launcher could
/// name one of them as the rank that failed). A stop is an [`Error::Interrupted`] on every rank.
fn monitor_outcome(measured: Result<Option<Measure>>, dist: Option<&ProcessGroup>, epoch: usize, dir: &Path) -> Result<Option<Measure>> {
    let measured = measured.map_err(|e| match e {
        Error::Interrupted { .. } => interrupted(None, dir),
        e => e,
    });
    let Some(pg) = dist else { return measured };
    let code = match &measured {
        Ok(_) => 0,
        Err(Error::Interrupted { .. }) => 2,
        Err(_) => 1,
    };
    let told = gather(pg, &[code]);
    match (measured, told) {
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(e),
        (Ok(_), Ok(all)) if all.first() == Some(&1) => Err(Error::StoppedWithRank(format!(
            "rank 0's monitor at epoch {epoch} failed (the cause is in its output); this rank stopped with it"
        ))),
        (Ok(_), Ok(all)) if all.first() == Some(&2) => Err(interrupted(None, dir)),
        (Ok(m), Ok(_)) => Ok(m),
    }
}

/// `e`, the error a distributed run's ranks stop with together: rank 0 records it, and every
/// rank waits for the others ([`part`]); one process's is returned as it is.
fn parted(run: &mut Run, e: Error, dist: Option<&ProcessGroup>) -> Error {
    if dist.is_some() {
        run.mark_before_parting(&e);
    }
    part(dist);
    e
}

/// What the ranks of a distributed run agreed before a step.
#[derive(Debug, PartialEq, Eq)]
enum Agreement {
    /// Every rank has its batch and no stop was requested.
    Go,
    /// A stop was requested on some rank (and every rank has its batch).
    Stop,
    /// These ranks' loaders failed (each says its cause itself).
    Failed(Vec<usize>),
}

/// The ranks' agreement before a step: each says whether its loader `failed`, whether a stop
/// was requested on it, and how many unreadable images its batch replaced (`skipped`; one
/// all-gather of three integers a rank); with the step's skipped images over every rank.
fn agree_before_step(pg: &ProcessGroup, failed: bool, skipped: usize) -> Result<(Agreement, usize)> {
    let mine = [i64::from(failed), i64::from(crate::interrupt::requested().is_some()), skipped as i64];
    let all = gather(pg, &mine)?;
    let pairs: Vec<i64> = all.chunks(3).flat_map(|c| c[..2].to_vec()).collect();
    Ok((agreement(&pairs), all.chunks(3).map(|c| c[2].max(0) as usize).sum()))
}

/// Every rank's `mine`, rank after rank (one all-gather).
fn gather(pg: &ProcessGroup, mine: &[i64]) -> Result<Vec<i64>> {
    let all = pg.all_gather(&Tensor::from_slice(mine).f_to_device(pg.device())?)?;
    Ok(Vec::<i64>::try_from(all.f_to_device(tch::Device::Cpu)?.f_reshape([-1])?)?)
}

/// [`Agreement`] from the ranks' `[failed, stop]` pairs, rank after rank.
fn agreement(all: &[i64]) -> Agreement {
    let failed: Vec<usize> = all.chunks(2).enumerate().filter(|(_, f)| f[0] != 0).map(|(r, _)| r).collect();
    if !failed.is_empty() {
        Agreement::Failed(failed)
    } else if all.chunks(2).any(|f| f.get(1).is_some_and(|s| *s != 0)) {
        Agreement::Stop
    } else {
        Agreement::Go
    }
}

/// "rank 1", "ranks 1 and 3", "ranks 0, 1 and 3".
fn plural_ranks(ranks: &[usize]) -> String {
    match ranks {
        [r] => format!("rank {r}"),
        [init @ .., last] => format!("ranks {} and {last}", init.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
        [] => "no rank".to_string(),
    }
}

/// Every rank trains the same experiment: the ranks compare their pretraining hashes (every
/// setting that changes the run, the resolved precision included) before the first
/// collective of training, so a rank started with another file fails at once, naming the
/// ranks, instead of aborting in a collective of another size or training on with another
/// seed's data.
fn same_experiment_on_every_rank(pg: &ProcessGroup, exp: &Experiment, world: usize) -> Result<()> {
    let hash = crate::plan::pretrain_hash(exp, world);
    let mine = u64::from_str_radix(&hash[..hash.len().min(16)], 16).unwrap_or(0) as i64;
    let all = gather(pg, &[mine])?;
    let differ: Vec<String> = all.iter().enumerate().filter(|(_, h)| **h != all[0]).map(|(r, h)| format!("rank {r} ({:016x})", *h as u64)).collect();
    if differ.is_empty() {
        return Ok(());
    }
    Err(Error::Config(format!(
        "the ranks do not train one experiment: {} against rank 0's pretraining hash {:016x}; start every rank with the same file (and, with precision \"auto\", on machines that resolve it alike)",
        differ.join(", "),
        all[0] as u64
    )))
}

/// The training images a pretraining of `exp` trains on out of `dataset` (the training split,
/// less the monitor's held-out images): their count and fingerprint as a checkpoint's
/// position records them ([`Position::images`], [`Position::data`]); `None` where the monitor
/// cannot hold its images out of it. A run that skips a finished pretraining compares them with
/// its last checkpoint's: a stage is keyed by the data's path as written, not by the folder's
/// contents, so images added or removed since leave it done.
pub fn trained_data(exp: &Experiment, dataset: Arc<dyn data::Dataset>, world: usize) -> Option<(u64, data::Fingerprints)> {
    // (quiet: the run said what it left out when it trained)
    let (rest, _) = split_monitor(exp, dataset, world, true).ok()?;
    Some((rest.len() as u64, data::Fingerprints::of(rest.as_ref())))
}

/// What a pretraining checks of its data before it trains, with no model built: the
/// monitor's held-out images, at least one batch a rank each epoch, schedules of at least one
/// step. `ijepa run` checks every pretraining it is about to train this way before the first
/// one starts (a sweep's later point was refused only after the earlier points had trained);
/// each pretraining checks the same again as it starts.
///
/// # Errors
/// What the pretraining would stop on at its start ([`Error::Config`]: the setting to change).
pub fn check_data(exp: &Experiment, dataset: Arc<dyn data::Dataset>, world: usize) -> Result<()> {
    let (rest, _) = split_monitor(exp, dataset, world, false)?;
    let n_images = rest.len();
    let cfg = LoaderCfg::from_data_config(&exp.data, exp.seed, 0, world);
    cfg.check(n_images).map_err(|e| with_monitor_advice(e, exp, n_images, world))?;
    schedules(exp, cfg.steps_per_epoch(n_images), world).map(|_| ())
}

/// What a pretraining stopped part way in `dir` (the stage `hash`) checks of its data as it
/// resumes, made before any stage runs: the checkpoint it would resume from was taken on these
/// training images, in epochs of the steps they give now ([`check_position`]). A sweep's later
/// point whose data changed was refused once the earlier points had trained. The candidates
/// are those [`latest_or_fallback`] tries, in its order (`latest`, then the kept checkpoints,
/// newest first), each read by its header; one that would be refused is read whole, as the
/// resume reads it ([`state::load`], and for `latest` [`foreign_latest`]), and refused only
/// where the resume would use it (a damaged `latest` with nothing kept starts over): the
/// checkpoints are read in full only for a refusal. Nothing to resume from is no refusal.
///
/// # Errors
/// [`Error::Checkpoint`] as the resume would refuse it; [`Error::OtherStage`] for a folder
/// holding another stage's record, which the run refuses.
pub fn check_resume(exp: &Experiment, (dir, hash): (&Path, &str), dataset: Arc<dyn data::Dataset>, world: usize) -> Result<()> {
    // (the folder of another stage's record is refused by the run: said before, by a dry run too)
    if let Some(other) = schema::read_manifest(dir).and_then(|m| m.other_stage(dir)) {
        return Err(Error::OtherStage { dir: dir.to_path_buf(), other });
    }
    let latest = dir.join(schema::CHECKPOINTS).join(schema::LATEST);
    // (a link or a folder in its place: the resume refuses the folder for that, at its turn)
    if std::fs::symlink_metadata(&latest).is_ok_and(|m| !m.is_file()) {
        return Ok(());
    }
    let (stage, epochs) = (state::stage_id(hash), exp.epochs as u64);
    let recorded = schema::read_manifest(dir).and_then(|m| m.checkpoint(schema::LATEST).cloned());
    let kept = kept_checkpoints(&dir.join(schema::CHECKPOINTS)).unwrap_or_default();
    let candidates: Vec<PathBuf> = std::iter::once(latest.clone()).filter(|l| l.is_file()).chain(kept.into_iter().rev()).collect();
    // (nothing to resume from: the training images are not fingerprinted, a hash of the whole
    // split that a dry run of a 10,000-point sweep computed once per point, 77 s)
    if candidates.is_empty() {
        return Ok(());
    }
    let full = dataset.clone();
    let (rest, _) = split_monitor(exp, dataset, world, true)?;
    let ipe = LoaderCfg::from_data_config(&exp.data, exp.seed, 0, world).steps_per_epoch(rest.len());
    let folder = exp.data.dataset == ijepa_dsl::config::DatasetKind::ImageFolder;
    let prints = data::Fingerprints::of(rest.as_ref());
    for from in candidates {
        let Some(pos) = state::position_of(&from).filter(|p| !p.of_another_stage(stage) && p.impossible(epochs).is_none()) else { continue };
        // (a finished run that lost its final weights trains no more: any data writes them)
        if pos.epoch >= epochs {
            return Ok(());
        }
        let Err(refused) = check_position(&from, pos, ipe as u64, (rest.len(), &prints, folder), exp.data.batch_size, world) else { return Ok(()) };
        let refused = with_draw_note(refused, exp, &full);
        let used = state::load(&from).is_ok() && (from != latest || matches!(foreign_latest(&from, &pos, (stage, epochs), recorded.as_ref()), Ok(None)));
        if used {
            return Err(refused);
        }
    }
    Ok(())
}

/// The images a pretraining trains on, and the monitor's settings with its held-out images.
type MonitorSplit<'a> = (Arc<dyn data::Dataset>, Option<(&'a ijepa_dsl::config::MonitorConfig, Arc<dyn data::Dataset>)>);

/// The training split less the monitor's held-out images, and those images with the monitor's
/// settings (none without a monitor); `quiet`: nothing said of the samples left out
/// ([`data::HoldOutNeeds::quiet`]).
fn split_monitor(exp: &Experiment, dataset: Arc<dyn data::Dataset>, world: usize, quiet: bool) -> Result<MonitorSplit<'_>> {
    match &exp.monitor {
        Some(cfg) => {
            let (rest, held) = data::hold_out(dataset, cfg.images, data::HoldOutNeeds { quiet, ..data::HoldOutNeeds::new(exp.data.batch_size, world, cfg.k) })?;
            Ok((rest, Some((cfg, held))))
        }
        None => Ok((dataset, None)),
    }
}

/// The loader's refusal of `n_images` (less than a batch a rank) with where the monitor's
/// held-out images went, and what to change.
fn with_monitor_advice(e: Error, exp: &Experiment, n_images: usize, world: usize) -> Error {
    match (e, &exp.monitor) {
        // the images the monitor holds out are where the rest went (`limit` or a small folder)
        // (said only where no monitor would give each rank a batch; fewer held-out images only
        // where the fewest a monitor takes would)
        (Error::Config(m), Some(mon)) if (n_images + mon.images) / world >= exp.data.batch_size => {
            let needs = data::HoldOutNeeds::new(exp.data.batch_size, world, mon.k);
            let fix = match needs.fit_in(n_images + mon.images) {
                true => "lower `monitor images=`".to_string(),
                false => format!("remove `monitor`, which holds out at least {}", needs.least),
            };
            Error::Config(format!("{m} (the training images left after the monitor holds out its {}: {fix})", mon.images))
        }
        (e, _) => e,
    }
}

/// The schedules of `ipe` steps an epoch on `world` ranks; refuses schedules of 0 steps.
fn schedules(exp: &Experiment, ipe: usize, world: usize) -> Result<Schedules> {
    // MAE's `blr=`: the peak follows the global batch (blr x batch x ranks / 256)
    let mut lr = exp.optimizer.lr.clone();
    lr.peak = lr.peak_for(exp.data.batch_size * world);
    let sched = Schedules::new(&lr, &exp.optimizer.weight_decay, &exp.ema, ipe, exp.epochs, exp.ipe_scale);
    // the official code divides by the schedule's length (ZeroDivisionError): a clear error
    if sched.total_steps() == 0 {
        return Err(Error::Config(format!(
            "ipe-scale {} x {} epoch(s) x {ipe} step(s) an epoch gives schedules of 0 steps: raise ipe-scale (1.0: the run's own length)",
            shown(exp.ipe_scale),
            exp.epochs
        )));
    }
    Ok(sched)
}

fn train_loop<R: Recipe>(exp: &Experiment, recipe: &mut R, opts: &RunOptions, run: &mut Run) -> Result<RunSummary> {
    let dev = recipe.device();
    let uses_momentum = recipe.uses_momentum();
    let (rank, world) = opts.rank_world();
    let lead = run.lead;
    if let Some(pg) = opts.dist.as_deref() {
        same_experiment_on_every_rank(pg, exp, world)?;
    }
    let dataset = data::open_dataset(&exp.data, Split::Train)?;
    // the list the loader read is the one the folder is named by and the manifest records (an
    // edit while the run started would train on other images under this folder)
    if crate::plan::pretrain_inputs_now(exp) != run.manifest.inputs {
        return Err(Error::Config(format!(
            "the subset list {} changed while the run started (its folder is named by the contents it had): run the command again",
            exp.data.subset.as_deref().map(|p| p.display().to_string()).unwrap_or_default()
        )));
    }
    // the monitor's images are held out of pretraining
    let full = dataset.clone();
    let (dataset, monitor) = match split_monitor(exp, dataset, world, false)? {
        (rest, Some((cfg, held))) => (rest, Some(Monitor::new(cfg.clone(), crate::monitor::Levers::of(exp), held, crate::stages::eval_transform(exp)?))),
        (rest, None) => (rest, None),
    };
    // (a registered recipe's: the built-ins declare theirs and autocast their steps)
    if monitor.is_some() && recipe.feature_encoders().is_empty() {
        return Err(Error::Config(format!(
            "recipe {:?} declares no encoders to measure (`Recipe::feature_encoders`), so its `monitor` block would measure nothing: declare them in the recipe, or remove the block",
            recipe.name()
        )));
    }
    if lead && crate::precision::uses_bf16(exp.precision, dev) && !recipe.bf16() {
        tracing::warn!(
            "recipe {:?} says its step runs in fp32 (`Recipe::bf16` is false) where this run's precision is bf16: it trains in fp32 while the manifest records bf16 and the evaluations extract its features in bf16; write `precision \"fp32\"`, or have its step autocast when the precision resolves to bf16 (as the built-in recipes do)",
            recipe.name()
        );
    }
    let monitor = monitor.filter(|_| lead);
    let n_images = dataset.len();
    // every rank trains on its share of one data set: ranks that read other sets (a relative
    // `root` read from each node's working folder, one copy larger) trained on other
    // schedules under one folder and aborted in a collective at the end of the shorter epoch
    // (compared before the loader, which refuses a share smaller than a batch on one rank)
    if let Some(pg) = opts.dist.as_deref() {
        let all = gather(pg, &[n_images as i64])?;
        if all.iter().any(|&n| n != all[0]) {
            let counts: Vec<String> = all.iter().enumerate().map(|(r, n)| format!("rank {r}: {n}")).collect();
            return Err(Error::Config(format!(
                "the ranks read training sets of different sizes ({} images): every rank trains on its share of one data set; give each rank the same data (a relative `root` or `subset` is read from each rank's working folder)",
                counts.join(", ")
            )));
        }
    }
    // (what a resume checks it trains on: as many images are not the same images; the
    // fingerprint's 16 hex digits as a number, as a stage's)
    // (and as an earlier version fingerprinted them: a checkpoint it took matches that)
    let prints = data::Fingerprints::of(dataset.as_ref());
    let data_id = state::stage_id(&prints.now);
    let transform = recipe.train_transform(&exp.data)?;
    let loader = Loader::new(dataset, transform, LoaderCfg::from_data_config(&exp.data, exp.seed, rank, world), recipe.collate())
        .map_err(|e| with_monitor_advice(e, exp, n_images, world))?;
    let ipe = loader.steps_per_epoch(); // >= 1: the loader rejects data smaller than a batch
    let sched = schedules(exp, ipe, world)?.with_linspace_warmup(recipe.linspace_warmup()).with_final_floor(recipe.lr_final_floor());
    // (ipe-scale below 1: the learning rate's and weight decay's formulas run past their end,
    // as I-JEPA's official code runs them; its momentum generator runs out there, which stops
    // the official run: its last value holds; the file's checks say so,
    // `ijepa_dsl::recipes::schedules_end_early`)
    let run_steps = ipe * exp.epochs;
    // (a warm-up that fills the schedule in epochs is said by the file's checks; here only
    // where the steps' rounding makes a shorter one fill it)
    if lead && sched.warmup_steps() >= sched.total_steps() && ijepa_dsl::recipes::warmup_fills_schedule(exp).is_none() {
        // (a run that trains past the warm-up: ipe-scale below 1; its steps' schedule indices
        // run from the recipe's first, I-JEPA's 1; the first step past it is at the peak)
        let beyond = (run_steps + recipe.first_schedule_step()).saturating_sub(sched.warmup_steps());
        let past = if beyond > 1 {
            format!(
                " (its last {beyond} steps, past the warm-up, follow a cosine of one step: the rate alternates between its peak and its final value every step, as I-JEPA's official scheduler has it)"
            )
        } else {
            String::new()
        };
        let w = format!(
            "the learning-rate warmup ({} steps: {} epoch(s)) is at least as long as the schedule ({} steps): the rate never follows a decay to its final value{past}; shorten it with `optimizer \"adamw\" {{ lr warmup-epochs=... }}`",
            sched.warmup_steps(),
            exp.optimizer.lr.warmup_epochs,
            sched.total_steps()
        );
        tracing::warn!("{w}");
        // (kept with the run for the report, as the file's checks' are)
        if !run.manifest.setting_warnings.contains(&w) {
            run.manifest.setting_warnings.push(w);
            run.save_manifest()?;
        }
    }
    let metrics_path = run.dir.join(schema::METRICS);
    let monitor_path = run.dir.join(schema::MONITOR);
    let latest = run.dir.join(schema::CHECKPOINTS).join(schema::LATEST);
    // a position of this run (the optimiser's own count is the recipe's, filled in when saved)
    let stage = state::stage_id(&run.manifest.hash);
    let at = |global_step: u64, epoch: u64, step_in_epoch: u64| Position { global_step, epoch, step_in_epoch, optimizer_step: 0, steps_per_epoch: ipe as u64, stage, images: n_images as u64, data: data_id };
    let mut start = at(0, 0, 0);
    // (every step's, for the progress bar; and those `metrics.csv` records, one every
    // log-every steps, whose means the summary and the manifest's final loss are: a resumed
    // run's first ones are the rows before its checkpoint, and were an uninterrupted run's
    // every step)
    let mut losses: Vec<f64> = Vec::new();
    let mut logged: Vec<f64> = Vec::new();
    // (the rows a resume read back: a run resumed with a longer log-every may log none after
    // its checkpoint, and its final loss was the loss there, not at its end)
    let mut resumed_rows = 0usize;
    // a resumed run's monitor.csv was gone: its pixels' row is measured again
    let mut monitor_lost = false;
    // rank 0 decides whether to resume (and from which step); the others load the same file
    // (a shared file system, as on every SLURM cluster) and check they see that step
    // (rank 0 reads the checkpoint once: it is verified, and can be gigabytes)
    let recorded = run.manifest.checkpoint(schema::LATEST).cloned();
    // (another machine's attempt killed while writing a checkpoint left its temporary file,
    // a checkpoint's size, which this machine's clean-up does not touch: said, not left unseen)
    if lead {
        for f in [run.dir.clone(), run.dir.join(schema::CHECKPOINTS)].iter().flat_map(|d| run_dir::others_temporaries(d)) {
            let mb = std::fs::metadata(&f).map_or(0, |m| m.len()) as f64 / (1u64 << 20) as f64;
            tracing::warn!(
                "{} ({mb:.1} MB) is a temporary file another machine's process left writing this run (an attempt killed there, e.g. before a requeue): remove it unless a process on that machine still writes this folder",
                f.display()
            );
        }
    }
    // (a missing `latest` falls back to a kept epoch checkpoint too, not to step 0)
    let mine = if lead { latest_or_fallback(&latest, (stage, exp.epochs as u64), recorded.as_ref())? } else { None };
    let resume_at = agree(opts.dist.as_deref(), mine.as_ref().map_or(-1, |(_, pos, _)| pos.global_step as i64))?;
    if resume_at >= 0 {
        let (tensors, pos, from) = match mine {
            Some(loaded) => loaded,
            None => {
                let (t, p) = state::load(&latest).map_err(|e| Error::Train(format!("rank {rank} cannot read the checkpoint rank 0 resumes from (ranks need a shared file system): {e}")))?;
                (t, p, latest.clone())
            }
        };
        if pos.global_step as i64 != resume_at {
            return Err(Error::Train(format!(
                "rank {rank} sees {} at step {}, rank 0 at step {resume_at}: the ranks do not share one file system",
                latest.display(),
                pos.global_step
            )));
        }
        // (a finished run that lost its final weights trains no more: any data writes them)
        if (pos.epoch as usize) < exp.epochs {
            let folder = exp.data.dataset == ijepa_dsl::config::DatasetKind::ImageFolder;
            check_position(&from, pos, ipe as u64, (n_images, &prints, folder), exp.data.batch_size, world).map_err(|e| with_draw_note(e, exp, &full))?;
        }
        recipe.restore(&tensors, pos.optimizer_step, &latest)?;
        if lead {
            let (rows, _) = truncate_metrics(&metrics_path, pos.global_step, &metrics_header(recipe))?;
            if let Some(m) = monitor.as_ref().filter(|_| monitor_path.exists()) {
                truncate_metrics(&monitor_path, pos.global_step, MONITOR_HEADER)?;
                // (a manifest that was unreadable took the warnings of the epochs done with it)
                if run.manifest_lost {
                    if let Some((epoch, said)) = warnings_of_rows(&crate::monitor::read_rows(&monitor_path), &m.cfg, m.levers) {
                        run.manifest.monitor_warnings(epoch, &said);
                    }
                }
            } else if monitor.is_some() && pos.global_step > 0 {
                // (it started again without a word, and with its epoch-0 row went the check
                // that the encoders learn, which compares with it)
                tracing::warn!(
                    "{} is missing: it starts again from its header (the monitor's rows of steps 0-{} are lost, and with the epoch-0 row the check that the encoders learn better than at their initialisation; the weights are not lost); the pixels' row is measured again",
                    monitor_path.display(),
                    pos.global_step
                );
                monitor_lost = true;
            }
            losses = read_losses(&metrics_path, pos.global_step)?;
            logged.clone_from(&losses);
            resumed_rows = losses.len();
            // rows are written every log-every steps: a longer gap before the checkpoint's step
            // is rows lost (a truncated file), said once here; the rows were written at the
            // log-every of their attempts, which may be longer than this one's (it warned of
            // rows lost where a longer one had written none): the last attempt's, recorded, and
            // the last row's (an attempt that wrote none since; an earlier version's manifest)
            let cadence = run.logged_every.unwrap_or(exp.log_every).max(rows.gap as usize).max(1) as u64;
            if pos.global_step.saturating_sub(rows.last) > cadence {
                tracing::warn!(
                    "{} ends at step {} and the checkpoint is at step {}: the rows between are lost (the weights are not)",
                    metrics_path.display(),
                    rows.last,
                    pos.global_step
                );
            }
            run.manifest.resumed_at.push(pos.global_step);
            // a resumed run is at its checkpoint's steps (killed before its first checkpoint of
            // this attempt, its manifest said 0)
            run.manifest.steps = pos.global_step as usize;
            run.save_manifest()?;
            if pos.epoch as usize >= exp.epochs {
                tracing::info!("resuming {} from {} at step {}, the end of training: the final weights are written", exp.name, from.display(), pos.global_step);
            } else {
                tracing::info!("resuming {} from {} at step {} (epoch {}, step {} of {ipe})", exp.name, from.display(), pos.global_step, pos.epoch + 1, pos.step_in_epoch);
            }
        }
        start = pos;
    } else if lead {
        run_dir::write_atomic(&metrics_path, format!("{}\n", metrics_header(recipe)).as_bytes())?;
        // (started over: an earlier attempt's steps are not this run's)
        run.manifest.training_warnings.clear();
    }
    // a `log-every` longer than the run records no step: no curves in the report, and the
    // final loss is of steps no file keeps (a resume keeps the rows its earlier attempts
    // logged before its checkpoint, which are drawn)
    if lead && exp.log_every > run_steps && resumed_rows == 0 {
        let w = format!(
            "log-every {} is more than the run's {run_steps} steps ({} epoch(s) of {ipe}): metrics.csv records no step, so the report draws no loss or schedule curves; lower `log-every` to {} or less",
            exp.log_every,
            exp.epochs,
            run_steps
        );
        tracing::warn!("{w}");
        if !run.manifest.setting_warnings.contains(&w) {
            run.manifest.setting_warnings.push(w);
            run.save_manifest()?;
        }
    }
    // a new monitor.csv when there is none, and when starting over (an earlier attempt's rows
    // are not this run's)
    if monitor.is_some() && (resume_at < 0 || !monitor_path.exists()) {
        run_dir::write_atomic(&monitor_path, format!("{MONITOR_HEADER}\n").as_bytes())?;
    }
    // (the pixels do not depend on the weights: their baseline row is the same as before;
    // rank 0 alone knows the file was lost, and every rank learns how the measure went)
    if exp.monitor.is_some() && resume_at >= 0 {
        let measured = match monitor.as_ref().filter(|_| monitor_lost) {
            Some(m) => m
                .measure_pixels()
                .map_err(|e| data::monitor_unreadable(&exp.data, e))
                .and_then(|px| append_rows(&monitor_path, &format!("{}\n", px.csv_row(0, 0))))
                .map(|()| None),
            None => Ok(None),
        };
        if let Err(e) = monitor_outcome(measured, opts.dist.as_deref(), 0, &run.dir) {
            return Err(parted(run, e, opts.dist.as_deref()));
        }
    }
    if let Some(pg) = &opts.dist {
        install_ddp(recipe, pg, exp.distributed.bucket_mb)?;
    }
    let mut metrics = if lead {
        let file = std::fs::OpenOptions::new().append(true).open(&metrics_path).map_err(|e| Error::io(&metrics_path, e))?;
        Some(std::io::BufWriter::new(file))
    } else {
        None
    };

    if lead {
        tracing::info!(
            "pretraining {} ({}, {:.2}M params) on {} images, {} epoch{} x {ipe} steps of {}{}, {}, {} -> {}",
            exp.name,
            recipe.name(),
            recipe.num_params() as f64 / 1e6,
            n_images,
            exp.epochs,
            if exp.epochs == 1 { "" } else { "s" },
            exp.data.batch_size,
            if world > 1 { format!(" x {world} ranks") } else { String::new() },
            device::describe(dev),
            run.manifest.precision,
            run.dir.display()
        );
        if let Some(b) = exp.optimizer.lr.blr {
            tracing::info!("peak lr {:.4e} = blr {b:e} x global batch {} / 256", exp.optimizer.lr.peak_for(exp.data.batch_size * world), exp.data.batch_size * world);
        }
    }
    let total = exp.epochs * ipe;
    let bar = progress_bar(opts.progress && lead, total as u64, start.global_step);
    let t_start = Instant::now();
    let mut global = start.global_step as usize;
    run.steps_done = Some(global);
    let mut monitor_s = 0.0;
    // (the monitor warnings said in full by this process)
    let mut told = Told::default();
    // unreadable images skipped so far (`on-error "skip"`), listed in skipped.txt
    let mut skipped_seen: std::collections::BTreeSet<String> = schema::read_text(&run.dir.join(SKIPPED_FILE))
        .map(|t| t.lines().map(str::to_string).collect())
        .unwrap_or_default();
    if start.global_step == 0 {
        let measured = observe(monitor.as_ref(), recipe, &monitor_path, 0, 0, &bar, &mut monitor_s, &mut run.manifest, &mut told).map_err(|e| data::monitor_unreadable(&exp.data, e));
        let measured = if exp.monitor.is_some() { monitor_outcome(measured, opts.dist.as_deref(), 0, &run.dir) } else { measured };
        match measured {
            Ok(Some(t)) => bar.suspend(|| tracing::info!("epoch   0/{}  monitor: {}", exp.epochs, t.summary())),
            Ok(None) => {}
            Err(e) => {
                bar.finish_and_clear();
                return Err(parted(run, e, opts.dist.as_deref()));
            }
        }
        // a stop requested during the epoch-0 monitor (seconds to minutes): before the first
        // step, not after it (the loader's batches are ready, so its wait would not see it)
        if exp.monitor.is_some() && any_rank(opts.dist.as_deref(), crate::interrupt::requested().is_some())? {
            bar.finish_and_clear();
            return Err(parted(run, interrupted(None, &run.dir), opts.dist.as_deref()));
        }
    } else if exp.monitor.is_some() && start.step_in_epoch == 0 {
        // resumed at an epoch's end whose monitor was stopped or failed (the run saved the
        // epoch's steps first): measured now, before the next step, as it would have been
        // (rank 0 alone knows: every rank of a distributed run learns how it went)
        let e = start.epoch as usize;
        let due = monitor.as_ref().is_some_and(|m| e.is_multiple_of(m.cfg.every) || e == exp.epochs);
        let measured = || crate::monitor::read_rows(&monitor_path).iter().any(|r| r.epoch as usize == e && r.encoder != "pixels");
        let seen = if due && !measured() {
            observe(monitor.as_ref(), recipe, &monitor_path, e, start.global_step as usize, &bar, &mut monitor_s, &mut run.manifest, &mut told).map_err(|e| data::monitor_unreadable(&exp.data, e))
        } else {
            Ok(None)
        };
        match monitor_outcome(seen, opts.dist.as_deref(), e, &run.dir) {
            Ok(Some(t)) => bar.suspend(|| tracing::info!("epoch {e:>3}/{}  monitor (measured on the resume): {}", exp.epochs, t.summary())),
            Ok(None) => {}
            // (stopped again: the checkpoint it resumed from is kept)
            Err(Error::Interrupted { .. }) => {
                bar.finish_and_clear();
                return Err(parted(run, interrupted(Some(start.global_step), &run.dir), opts.dist.as_deref()));
            }
            Err(e) => {
                bar.finish_and_clear();
                return Err(parted(run, e, opts.dist.as_deref()));
            }
        }
    }
    for epoch in start.epoch as usize..exp.epochs {
        bar.set_prefix(format!("{}/{}", epoch + 1, exp.epochs));
        let first = if epoch as u64 == start.epoch { start.step_in_epoch } else { 0 };
        let t_epoch = Instant::now();
        let (mut ep_loss, mut ep_steps, mut ep_step_s) = (0.0, 0usize, 0.0);
        // where the epoch stands: a stop while the loader is still preparing a batch saves here
        let mut in_epoch = first;
        for batch in loader.epoch_from(epoch as u64, first).stop_on_signal(opts.dist.is_none()) {
            let batch = match batch {
                Ok(b) => b,
                // one process, stopped while waiting for data: the steps done so far are kept
                Err(Error::Interrupted { .. }) if global == 0 => {
                    bar.finish_and_clear();
                    return Err(interrupted(None, &run.dir));
                }
                Err(Error::Interrupted { .. }) => {
                    let pos = at(global as u64, epoch as u64, in_epoch);
                    return Err(stop_at(recipe, run, pos, None, &bar, None)?);
                }
                // an unreadable image (on-error "fail"), or another failure of the loader: the
                // steps done since the last checkpoint are saved first (they were lost: up to an
                // epoch's), then the error. A distributed run's ranks learn of it first (they
                // wait in the agreement below), so rank 0 saves whichever rank failed
                Err(e) => {
                    if let Some(pg) = opts.dist.as_deref() {
                        // (a failure to tell them is not this error's cause: they see a dead peer)
                        let _ = agree_before_step(pg, true, 0);
                    }
                    if lead && global > start.global_step as usize {
                        save_after_error(recipe, run, at(global as u64, epoch as u64, in_epoch), None, &e, &bar);
                    }
                    return Err(parted(run, e, opts.dist.as_deref()));
                }
            };
            // the unreadable images this step's batches replaced (every rank's, once agreed)
            let mut step_skipped = batch.skipped;
            // a distributed run's ranks agree before each step that every rank has its batch
            // and none was asked to stop (SIGINT/SIGTERM/SIGHUP): one small collective a step,
            // where a rank whose loader failed used to leave the others in the step's gradient
            // collective (a dead peer, the steps since the last checkpoint lost)
            if let Some(pg) = opts.dist.as_deref() {
                let (agreed, skipped) = agree_before_step(pg, false, batch.skipped)?;
                step_skipped = skipped;
                match agreed {
                    Agreement::Go => {}
                    Agreement::Stop if global == 0 => {
                        bar.finish_and_clear();
                        return Err(interrupted(None, &run.dir));
                    }
                    Agreement::Stop => return Err(stop_at(recipe, run, at(global as u64, epoch as u64, in_epoch), None, &bar, Some(pg))?),
                    Agreement::Failed(ranks) => {
                        let e = Error::StoppedWithRank(format!(
                            "{} could not load {} batch for step {} (the cause is in {} output); this rank stopped with it",
                            plural_ranks(&ranks),
                            if ranks.len() == 1 { "its" } else { "their" },
                            global + 1,
                            if ranks.len() == 1 { "its" } else { "their" },
                        ));
                        if lead && global > start.global_step as usize {
                            save_after_error(recipe, run, at(global as u64, epoch as u64, in_epoch), None, &e, &bar);
                        }
                        return Err(parted(run, e, Some(pg)));
                    }
                }
            }
            in_epoch = batch.step + 1;
            let views: Vec<Tensor> = batch.views_tensors(dev)?;
            recipe.set_progress(epoch as u64, global as u64, total as u64);
            recipe.set_samples(epoch as u64, &batch.indices);
            let k = global + recipe.first_schedule_step();
            let hyper = Hyper { lr: sched.lr(k), wd: sched.wd(k), momentum: sched.momentum(global) };
            let t0 = Instant::now();
            // a libtorch failure in the step (e.g. out of memory) is an error naming the step
            let computing = crate::data::loader::StepOnCpu::begin(dev);
            // (named as metrics.csv numbers it, from 1: `k` is the schedules' index, from 0 for
            // MAE and DINO, which named the step before the one that failed)
            let stats = crate::guard::torch(&format!("pretraining step {}", global + 1), || recipe.step_views(&views, &batch.masks, hyper))?;
            // (a registered recipe's statistics that its names do not fit wrote rows of other
            // columns than the header: the report could not read the run, a resume dropped
            // every row as torn)
            if stats.values.len() != recipe.stat_names().len() {
                return Err(Error::Train(format!(
                    "recipe {:?}'s step returned {} statistics for the {} it names ({}): a recipe's `step` returns one value per `stat_names` entry, in order",
                    recipe.name(),
                    stats.values.len(),
                    recipe.stat_names().len(),
                    recipe.stat_names().join(", ")
                )));
            }
            device::synchronize(dev);
            drop(computing);
            let dt = t0.elapsed().as_secs_f64();
            if !stats.loss.is_finite() {
                // the checkpoint in flight (if any) is the last good one: on disk before it is named
                if lead {
                    run.finish_writes()?;
                }
                let e = Error::Diverged {
                    what: format!("the loss is {}", stats.loss),
                    step: global as u64 + 1,
                    epoch: Some(epoch as u64 + 1),
                    last_good: latest.exists().then(|| latest.clone()),
                };
                // (every rank sees the same mean loss: they part together, rank 0's manifest
                // recording the divergence first; a launcher killing the job at the first exit,
                // srun's --kill-on-bad-exit, left it `running`, and the next submission trained
                // the diverged run again)
                return Err(parted(run, e, opts.dist.as_deref()));
            }
            global += 1;
            run.steps_done = Some(global);
            losses.push(stats.loss);
            if global.is_multiple_of(exp.log_every.max(1)) {
                // (as metrics.csv records it, 6 decimals: a resume reads the rows back, and its
                // final loss was the uninterrupted run's to float rounding only)
                logged.push(format!("{:.6}", stats.loss).parse().unwrap_or(stats.loss));
            }
            ep_loss += stats.loss;
            ep_steps += 1;
            ep_step_s += dt;
            if let Some(metrics) = metrics.as_mut().filter(|_| global.is_multiple_of(exp.log_every.max(1))) {
                // (the weight decay to 7 significant digits, as the rate: at 6 decimals a decay of
                // 1e-7 read 0.000000; the momentum in full: over a long run 0.996 -> 1 moves by
                // less than 1e-8 a step, a staircase at 6 decimals)
                let mut row = format!("{global},{},{:.6},{:.6e},{:.6e}", epoch + 1, stats.loss, hyper.lr, hyper.wd);
                if uses_momentum {
                    row.push_str(&format!(",{}", hyper.momentum));
                }
                for v in &stats.values {
                    row.push_str(&format!(",{v}"));
                }
                writeln!(metrics, "{row},{:.2},{:.1},{}", dt * 1e3, (batch.len() * world) as f64 / dt, step_skipped)
                .and_then(|_| metrics.flush())
                .map_err(|e| Error::io(&metrics_path, e))?;
            }
            if !batch.skipped_files.is_empty() {
                // every rank lists its own in the run's list, where it can reach the folder (a
                // shared file system; rank 0 made it): rank 1's skips were only warned about
                record_skipped((lead || run.dir.is_dir()).then_some(run.dir.as_path()), rank, &batch.skipped_files, &mut skipped_seen, &bar)?;
            }
            if lead {
                run.poll_writes()?;
            }
            let mid_epoch = batch.step + 1 < ipe as u64;
            if lead && mid_epoch && exp.checkpoint.every_steps > 0 && global.is_multiple_of(exp.checkpoint.every_steps) {
                let pos = at(global as u64, epoch as u64, batch.step + 1);
                save_latest(recipe, run, pos, None)?;
            }
            // one process: a stop request (SIGINT/SIGTERM/SIGHUP) is honoured between steps
            // (a distributed run's ranks agree on it before the next step); the epoch's last
            // step leaves it to the epoch's end
            if mid_epoch && opts.dist.is_none() && crate::interrupt::requested().is_some() {
                let pos = at(global as u64, epoch as u64, in_epoch);
                return Err(stop_at(recipe, run, pos, None, &bar, None)?);
            }
            let recent = &losses[losses.len().saturating_sub(20)..];
            bar.set_message(format!("loss {:.4}", recent.iter().sum::<f64>() / recent.len() as f64));
            bar.inc(1);
        }
        let wall = t_epoch.elapsed().as_secs_f64();
        let last = epoch + 1 == exp.epochs;
        // measured before the epoch's checkpoint: a run killed in between resumes from the
        // previous checkpoint, which drops this row (its step is later) and measures again
        let due = exp.monitor.as_ref().is_some_and(|m| (epoch + 1).is_multiple_of(m.every) || last);
        let pos = at(global as u64, epoch as u64 + 1, 0);
        // the epoch's checkpoint, and the same bytes as a kept copy every keep-every epochs
        let keep = (last || (exp.checkpoint.keep_every > 0 && (epoch + 1).is_multiple_of(exp.checkpoint.keep_every)))
            .then(|| format!("epoch-{:04}.safetensors", epoch + 1));
        let seen = if due {
            let measured = observe(monitor.as_ref(), recipe, &monitor_path, epoch + 1, global, &bar, &mut monitor_s, &mut run.manifest, &mut told).map_err(|e| data::monitor_unreadable(&exp.data, e));
            match monitor_outcome(measured, opts.dist.as_deref(), epoch + 1, &run.dir) {
                // a stop during the monitor (seconds to minutes of feature extraction) saves the
                // epoch's steps, whose monitor the resume measures (the error said "this one
                // starts over" and the steps since the last checkpoint, a whole epoch, were lost)
                Err(Error::Interrupted { .. }) => return Err(stop_at(recipe, run, pos, keep, &bar, opts.dist.as_deref())?),
                // features gone non-finite: diverged at the epoch's last step, whose weights are
                // not saved (a checkpoint is never replaced by diverged weights; the last good
                // one stays)
                Err(Error::Diverged { what, .. }) => {
                    bar.finish_and_clear();
                    let e = Error::Diverged { what, step: global as u64, epoch: Some(epoch as u64 + 1), last_good: latest.exists().then(|| latest.clone()) };
                    return Err(parted(run, e, opts.dist.as_deref()));
                }
                // so does a failure (a held-out image gone or damaged since the run began), then
                // says it; the other ranks stop with it
                Err(e) => {
                    if lead {
                        save_after_error(recipe, run, pos, keep, &e, &bar);
                    }
                    bar.finish_and_clear();
                    return Err(parted(run, e, opts.dist.as_deref()));
                }
                Ok(seen) => seen,
            }
        } else {
            None
        };
        if !lead {
            continue;
        }
        save_latest(recipe, run, pos, keep)?;
        bar.suspend(|| {
            tracing::info!(
                "epoch {:>3}/{}  loss {:.4}{}  lr {:.2e}  wd {}{}  {:.0} ms/step  {:.0} img/s  {:.1} s{}",
                epoch + 1,
                exp.epochs,
                ep_loss / ep_steps.max(1) as f64,
                // an epoch resumed mid-way: the means are over the steps this process ran
                if first > 0 { format!(" (steps {}-{ipe} of the epoch, since the resume)", first + 1) } else { String::new() },
                // what the epoch's last step used (its schedule index: MAE's and DINO's count
                // from 0, and showed the next step's)
                sched.lr(global.saturating_sub(1) + recipe.first_schedule_step()),
                shown_decay(sched.wd(global.saturating_sub(1) + recipe.first_schedule_step())),
                if uses_momentum { format!("  ema {}", shown_momentum(sched.momentum(global.saturating_sub(1)))) } else { String::new() },
                ep_step_s / ep_steps.max(1) as f64 * 1e3,
                (ep_steps * exp.data.batch_size * world) as f64 / wall,
                wall,
                seen.map(|m| format!("  | {}", m.summary())).unwrap_or_default()
            )
        });
        // at an epoch's end the checkpoint is already saved (one process: the ranks of a
        // distributed run stop at the next step instead, where they agree)
        if !last && opts.dist.is_none() && crate::interrupt::requested().is_some() {
            run.finish_writes()?;
            bar.finish_and_clear();
            return Err(interrupted(Some(global as u64), &run.dir));
        }
    }
    bar.finish_and_clear();
    // (a run shorter than its log-every logs no row: its every step's, as before; so a run
    // whose rows stop before its last log-every steps, resumed with a longer one)
    let resumed_at = start.global_step as usize;
    // (rows logged by this attempt, a resume at the end that trained none, or a run long enough
    // for its log-every, which an uninterrupted run would have summed up by its rows: one
    // stopped within its last log-every steps summed up rows and steps together)
    let recorded = !logged.is_empty() && (logged.len() > resumed_rows || global == resumed_at || global >= exp.log_every.max(1));
    let s = summary(&run.dir, global, if recorded { &logged } else { &losses }, t_start.elapsed().as_secs_f64());
    if let Some(pg) = &opts.dist {
        run.manifest.rank_digests = check_replicas(pg, &recipe.state())?;
    }
    if !lead {
        return Ok(s);
    }
    // the last epoch's checkpoint is on disk and recorded before the final weights
    run.finish_writes()?;
    let sha256 = state::save_weights_with(&s.checkpoint, &recipe.state(), &[(state::ENCODER_HEADS, &run.encoder_heads.to_string())])?;
    let data_sha256 = state::metadata_of(&s.checkpoint).and_then(|m| m.get(state::DATA_SHA256).cloned());
    run.manifest.record(CheckpointRecord { file: schema::FINAL.into(), step: global as u64, sha256, data_sha256 });
    run.save_manifest()?;
    let w = s.loss_window;
    // (a resumed run's time is this attempt's: said so, with its steps, and the run's in all)
    let steps = match start.global_step {
        0 => format!("{} steps in {:.1} s", s.steps, s.wall_s),
        from => format!(
            "{} steps, the last {} in {:.1} s (this attempt; {:.1} s in all)",
            s.steps,
            (s.steps as u64).saturating_sub(from),
            s.wall_s,
            run.seconds_before + run.since.elapsed().as_secs_f64()
        ),
    };
    // (a run shorter than its log-every recorded none: its steps', this attempt's)
    let of = match (recorded, start.global_step) {
        (true, _) => "recorded",
        (false, 0) => "steps",
        (false, _) if resumed_rows == 0 => "steps of this attempt",
        (false, _) => "steps, those before the resume as recorded",
    };
    let losses = match (s.initial_loss, s.final_loss) {
        (Some(first), Some(last)) => format!("loss {first:.4} (first {w} {of}) -> {last:.4} (last {w})"),
        // (a finished run writing its final weights again, whose metrics.csv holds no row)
        _ => format!("no loss recorded ({} holds no row and this attempt trained no step)", run.dir.join(schema::METRICS).display()),
    };
    tracing::info!("done: {steps}; {losses}; checkpoint {}", s.checkpoint.display());
    if monitor.is_some() {
        tracing::info!(
            "monitor: {monitor_s:.1} s of the {:.1} s ({:.1}%); {}",
            s.wall_s,
            100.0 * monitor_s / s.wall_s.max(1e-9),
            monitor_path.display()
        );
    }
    Ok(s)
}

/// Runs the monitor (when there is one) on the recipe's encoders after `epoch` epochs
/// (`global` steps): appends the rows to `monitor.csv`, prints collapse and not-learning
/// warnings and keeps this epoch's in the run's `manifest`, adds the time taken to `spent`;
/// returns the first encoder's measure (the one evaluations read). A warning this process
/// `told` in full, which its previous monitored epoch raised too, is said again in one line
/// with the others that go on (four warnings of a few lines each came every epoch).
#[allow(clippy::too_many_arguments)]
fn observe<R: Recipe>(
    monitor: Option<&Monitor>,
    recipe: &R,
    path: &Path,
    epoch: usize,
    global: usize,
    bar: &ProgressBar,
    spent: &mut f64,
    manifest: &mut schema::Manifest,
    told: &mut Told,
) -> Result<Option<Measure>> {
    let Some(m) = monitor else { return Ok(None) };
    let mut measures = crate::guard::torch(&format!("the monitor at epoch {epoch}"), || {
        m.measure(&recipe.feature_encoders(), recipe.device(), recipe.bf16())
    })?;
    // after training has started: a collapse (at epoch 0 the features are the random
    // initialisation's, whose rank says nothing about training), and features no better than
    // the initial ones (read back from the file, so a resumed run compares with its own epoch 0)
    if epoch > 0 {
        let said = monitor_warnings(&measures, &crate::monitor::read_rows(path), &m.cfg, m.levers);
        let (new, again) = told_again(&said, told.last.as_ref(), &told.said);
        for w in new {
            bar.suspend(|| tracing::warn!("epoch {epoch}: {w}"));
            told.said.insert(warning_key(w).to_string());
        }
        if let (false, Some((at, _))) = (again.is_empty(), &told.last) {
            bar.suspend(|| tracing::warn!("epoch {epoch}, as at epoch {at}: {} (the numbers: {})", again.join("; "), schema::MONITOR));
        }
        // (this process's own reading of the epoch, not one recomputed from the file's rounded
        // values, which could raise what the live values did not)
        told.last = Some((epoch, said.clone()));
        manifest.monitor_warnings(epoch, &said);
    }
    // the pixels, the baseline to beat, once before training
    let pixels = if epoch == 0 { Some(m.measure_pixels()?) } else { None };
    if let Some(px) = &pixels {
        bar.suspend(|| tracing::info!("monitor baseline: {}", px.summary()));
    }
    let mut rows = String::new();
    for ms in measures.iter().chain(&pixels) {
        rows.push_str(&ms.csv_row(epoch, global));
        rows.push('\n');
        *spent += ms.seconds;
    }
    append_rows(path, &rows)?;
    Ok((!measures.is_empty()).then(|| measures.swap_remove(0)))
}

/// What the monitor warns of, after training has started, for the `measures` of one epoch:
/// collapsing features, and features no better than the same encoder's at epoch 0, read from
/// the run's `monitor.csv` `rows`; advising within the run's `levers`.
fn monitor_warnings(measures: &[Measure], rows: &[schema::MonitorRow], cfg: &ijepa_dsl::config::MonitorConfig, levers: crate::monitor::Levers) -> Vec<String> {
    // (an EMA target: I-JEPA's target encoder, DINO's teacher, whose momentum is not the
    // `ema` schedule `uses_momentum` names)
    let levers = crate::monitor::Levers { ema: measures.iter().any(Measure::is_ema_target), ..levers };
    let collapsed = measures.iter().filter_map(|ms| ms.collapse_warning(cfg, &levers).map(|w| format!("{w}{}", crate::monitor::collapse_context(ms, rows, cfg))));
    // (a kNN voting among half the held-out images or more cannot show learning, as `check`
    // warned: `k=20 images=21` scored 0% at every epoch, and was told it was not learning)
    let informative = cfg.warning().is_none();
    let stalled = measures.iter().filter(|_| informative).filter_map(|ms| crate::monitor::epoch0_knn(rows, &ms.encoder).and_then(|k0| ms.stall_warning(k0, &levers)));
    collapsed.chain(stalled).collect()
}

/// The monitor warnings a process has said: in full (by [`warning_key`]), and those of its
/// last monitored epoch after 0, with that epoch (none before its first, a resumed process's
/// too: it says its first in full).
#[derive(Default)]
struct Told {
    said: BTreeSet<String>,
    last: Option<(usize, Vec<String>)>,
}

/// An epoch's monitor warnings `said`, apart: those to say in full, and (by their
/// [`warning_key`]) those already `told` in full that the previous monitored epoch raised too
/// (`before`, with that epoch), to say again in one line. One that stopped and came back is
/// said in full again.
fn told_again<'a>(said: &'a [String], before: Option<&(usize, Vec<String>)>, told: &BTreeSet<String>) -> (Vec<&'a String>, Vec<&'a str>) {
    let going_on = |w: &str| told.contains(warning_key(w)) && before.is_some_and(|(_, ws)| ws.iter().any(|b| warning_key(b) == warning_key(w)));
    let (again, new): (Vec<&String>, Vec<&String>) = said.iter().partition(|w| going_on(w));
    (new, again.into_iter().map(|w| warning_key(w)).collect())
}

/// The part of a monitor warning that names its encoder and what it warns of (`the target
/// encoder's features are collapsing`, `the context encoder is not learning`): without its
/// numbers and advice.
fn warning_key(w: &str) -> &str {
    let end = [w.find(" ("), w.find(':')].into_iter().flatten().min().unwrap_or(w.len());
    &w[..end]
}

/// The monitor's warnings at the last epoch after 0 that `monitor.csv`'s `rows` hold, as they
/// were said there, with that epoch: a resumed run whose manifest was unreadable (set aside,
/// a new one written) kept none, and its report showed a collapsing run without a word.
fn warnings_of_rows(rows: &[schema::MonitorRow], cfg: &ijepa_dsl::config::MonitorConfig, levers: crate::monitor::Levers) -> Option<(usize, Vec<String>)> {
    let last = rows.iter().map(|r| r.epoch).filter(|&e| e > 0).max()?;
    let measures: Vec<Measure> = rows
        .iter()
        .filter(|r| r.epoch == last && r.encoder != "pixels")
        .map(|r| Measure { encoder: r.encoder.clone(), knn: r.knn_top1, rankme: r.rankme, spread: r.spread, seconds: 0.0 })
        .collect();
    Some((last as usize, monitor_warnings(&measures, rows, cfg, levers)))
}

/// Appends `rows` (whole lines) to the CSV file at `path`.
fn append_rows(path: &Path, rows: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).map_err(|e| Error::io(path, e))?;
    f.write_all(rows.as_bytes()).and_then(|_| f.flush()).map_err(|e| Error::io(path, e))
}

/// The first 8 bytes of the SHA-256 of every tensor's bytes, as an integer.
fn digest(tensors: &[(String, Tensor)]) -> Result<i64> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (name, t) in tensors {
        let t = t.f_detach()?.f_to_device(tch::Device::Cpu)?.f_contiguous()?;
        let mut bytes = vec![0u8; t.numel() * t.kind().elt_size_in_bytes()];
        t.f_copy_data_u8(&mut bytes, t.numel())?;
        h.update(name.as_bytes());
        h.update(&bytes);
    }
    let d = h.finalize();
    Ok(i64::from_le_bytes(d[..8].try_into().expect("8 bytes")))
}

/// Compares the weights of every rank (a digest each, gathered): DDP keeps the replicas
/// bit-identical, so a difference means a desynchronised run and is an error. Returns the
/// digests in rank order.
fn check_replicas(pg: &ProcessGroup, state: &[(String, Tensor)]) -> Result<Vec<String>> {
    let all = gather(pg, &[digest(state)?])?;
    let hex: Vec<String> = all.iter().map(|d| format!("{:016x}", *d as u64)).collect();
    if all.iter().any(|d| *d != all[0]) {
        return Err(Error::Train(format!("the ranks' weights differ after training (digests {hex:?}): the replicas desynchronised")));
    }
    Ok(hex)
}

#[cfg(test)]
mod tests {
    /// A manifest's CPU thread count is read from its `device`, as [`device::describe_machine`]
    /// writes it; a GPU's records none.
    #[test]
    fn a_manifest_s_cpu_threads_are_read() {
        assert_eq!(super::cpu_threads("cpu (1 thread) on AMD EPYC"), Some(1));
        assert_eq!(super::cpu_threads(&crate::device::describe_machine(tch::Device::Cpu)), Some(tch::get_num_threads() as usize));
        assert_eq!(super::cpu_threads("cuda:0"), None);
    }

    /// The epoch line's weight decay and momentum keep what a rounding to fixed decimals hid.
    #[test]
    fn the_epoch_line_s_rates_keep_their_digits() {
        use super::{shown_decay, shown_momentum};
        assert_eq!([shown_decay(0.04), shown_decay(0.4), shown_decay(0.0), shown_decay(1e-4)], ["0.040", "0.400", "0.000", "1.00e-4"]);
        assert_eq!([shown_momentum(0.996), shown_momentum(0.9999928571), shown_momentum(1.0)], ["0.996", "0.999993", "1.0"]);
    }

    /// A resumed run's bar estimates its time left from its own steps: the jump to the step it
    /// resumes at read as steps done in microseconds (0 s left of half the run).
    #[test]
    fn a_resumed_bar_estimates_from_its_own_steps() {
        let bar = progress_bar(false, 1000, 500);
        for _ in 0..5 {
            std::thread::sleep(std::time::Duration::from_millis(20));
            bar.inc(1);
            bar.tick();
        }
        // 495 steps left at ~20 ms each: ~10 s
        let left = bar.eta().as_secs_f64();
        assert!(left > 4.0, "{left} s left at {} of {:?}, {} steps/s, finished {}", bar.position(), bar.length(), bar.per_sec(), bar.is_finished());
    }

    use super::*;

    #[test]
    fn a_tiny_number_is_shown_in_exponent_form() {
        assert_eq!((shown(1e-300), shown(0.01), shown(2.0), shown(0.0)), ("1e-300".to_string(), "0.01".to_string(), "2".to_string(), "0".to_string()));
    }

    /// Before a step the ranks' `[failed, stop]` pairs decide: any failed loader stops the run
    /// naming the failed ranks (a stop request beside it changes nothing), else any stop
    /// request stops it.
    #[test]
    fn the_ranks_agree_on_a_failed_loader_before_a_stop() {
        assert_eq!(agreement(&[0, 0, 0, 0]), Agreement::Go);
        assert_eq!(agreement(&[0, 0, 0, 1]), Agreement::Stop);
        assert_eq!(agreement(&[0, 1, 1, 0]), Agreement::Failed(vec![1]));
        assert_eq!(agreement(&[1, 0, 0, 0, 1, 1]), Agreement::Failed(vec![0, 2]));
        assert_eq!(plural_ranks(&[1]), "rank 1");
        assert_eq!(plural_ranks(&[0, 2]), "ranks 0 and 2");
        assert_eq!(plural_ranks(&[0, 1, 3]), "ranks 0, 1 and 3");
    }

    /// A resume on as many images but other ones is refused: a folder's say its files were
    /// renamed or moved (another order of other images), a data set in one file's that its
    /// contents differ (its order is the same).
    #[test]
    fn a_resume_on_other_images_says_what_changed_by_the_kind_of_data() {
        let pos = Position { global_step: 4, epoch: 1, step_in_epoch: 0, optimizer_step: 4, steps_per_epoch: 4, stage: 1, images: 64, data: 0xabc };
        let prints = data::Fingerprints { now: "0123456789abcdef0123".into(), earlier: Vec::new() };
        let refused = |folder| match check_position(Path::new("run/checkpoints/latest.safetensors"), pos, 4, (64, &prints, folder), 16, 1) {
            Err(Error::Checkpoint { message, .. }) => message,
            other => panic!("{other:?}"),
        };
        let folder = refused(true);
        assert!(folder.contains("files renamed, moved to another class") && folder.contains("over other images in another order"), "{folder}");
        let array = refused(false);
        assert!(array.contains("but not the same ones (other contents in its files;") && array.contains("go on over other images than it began"), "{array}");
        assert!(!array.contains("renamed") && !array.contains("another order") && !array.contains("unreadable image"), "{array}");
        // the same images resume
        let same = data::Fingerprints { now: format!("{:016x}", 0xabc), earlier: Vec::new() };
        assert!(check_position(Path::new("run/checkpoints/latest.safetensors"), pos, 4, (64, &same, false), 16, 1).is_ok());
    }

    /// The monitor's warnings of a run are those its `monitor.csv` rows give at their last epoch
    /// after 0 (a resumed run whose manifest was unreadable kept none): collapse and no better
    /// than at the initialisation, as the monitor said them there.
    #[test]
    fn the_monitors_warnings_are_taken_again_from_its_rows() {
        use ijepa_dsl::config::MonitorConfig;
        let row = |epoch: u64, encoder: &str, knn: f64, rankme: f64, spread: f64| schema::MonitorRow { step: epoch * 10, epoch, encoder: encoder.into(), knn_top1: knn, rankme, spread };
        let cfg = MonitorConfig::default();
        const L: crate::monitor::Levers = crate::monitor::Levers { ema: false, ema_frozen: false, lr_zero: false };
        let rows = [row(0, "target", 40.0, 3.0, 0.2), row(0, "pixels", 80.0, 300.0, 0.7), row(1, "target", 60.0, 20.0, 0.3), row(2, "target", 40.5, 20.0, 0.3)];
        let (epoch, said) = warnings_of_rows(&rows, &cfg, L).unwrap();
        let live = monitor_warnings(&[Measure { encoder: "target".into(), knn: 40.5, rankme: 20.0, spread: 0.3, seconds: 1.0 }], &rows, &cfg, L);
        assert_eq!((epoch, &said), (2, &live));
        assert!(said.len() == 1 && said[0].contains("not learning"), "{said:?}");
        // (collapsed features)
        let (_, said) = warnings_of_rows(&[rows[0].clone(), row(1, "target", 60.0, 1.0, 0.0)], &cfg, L).unwrap();
        assert!(said.iter().any(|w| w.contains("collaps")), "{said:?}");
        // (before training, nothing to say)
        assert_eq!(warnings_of_rows(&rows[..2], &cfg, L), None);
        // (nor is a kNN voting among most of its held-out images told it is not learning)
        let most = MonitorConfig { images: 21, k: 20, ..MonitorConfig::default() };
        assert_eq!(warnings_of_rows(&rows, &most, L), Some((2, vec![])));
    }

    /// A monitor warning said in full is said again in one line while it goes on from one
    /// monitored epoch to the next (four warnings of a few lines each came every epoch), by
    /// what it names alone; a new one, or one that stopped and came back, in full.
    #[test]
    fn a_monitor_warning_that_goes_on_is_said_again_in_short() {
        use ijepa_dsl::config::MonitorConfig;
        let cfg = MonitorConfig { rank_floor: 31.0, ..MonitorConfig::default() };
        let m = |encoder: &str, knn: f64| Measure { encoder: encoder.into(), knn, rankme: 5.0, spread: 0.3, seconds: 1.0 };
        let levers = crate::monitor::Levers::default();
        let collapse = m("target", 40.0).collapse_warning(&cfg, &levers).unwrap();
        let stall = m("context", 40.5).stall_warning(40.0, &levers).unwrap();
        let blind = m("target", 99.0).stall_warning(98.5, &levers).unwrap();
        assert_eq!(warning_key(&collapse), "the target encoder's features are collapsing");
        assert_eq!(warning_key(&stall), "the context encoder is not learning");
        assert_eq!(warning_key(&blind), "the target encoder's held-out kNN cannot show learning on these images");
        // epoch 1: nothing told yet; epoch 2: both go on; the stall told but not raised at the
        // previous epoch (it stopped): in full
        let said = [collapse.clone(), stall.clone()];
        let told: BTreeSet<String> = said.iter().map(|w| warning_key(w).to_string()).collect();
        assert_eq!(told_again(&said, None, &BTreeSet::new()), (said.iter().collect(), vec![]));
        let before = (1, vec![stall.replace("40.5", "40.2"), collapse.replace("5.00", "5.10")]);
        assert_eq!(told_again(&said, Some(&before), &told), (vec![], vec!["the target encoder's features are collapsing", "the context encoder is not learning"]));
        let before = (3, vec![collapse.clone()]);
        assert_eq!(told_again(&said, Some(&before), &told), (vec![&stall], vec!["the target encoder's features are collapsing"]));
        // (raised before but never told by this process: a resumed run says it in full)
        assert_eq!(told_again(&said, Some(&before), &BTreeSet::new()), (said.iter().collect(), vec![]));
    }

    /// On resume the metrics keep their header and the complete rows up to the checkpoint's
    /// step: later rows and a row torn by a crash go; a deleted file starts again from the
    /// header instead of failing the resume.
    #[test]
    fn metrics_are_cut_at_the_checkpoint_and_a_torn_or_missing_file_recovers() {
        let d = crate::testdir::scratch("train", "truncate");
        let path = d.join("metrics.csv");
        std::fs::write(&path, "step,epoch,loss\n1,1,0.5\n2,1,0.4\n3,1,0.3\n4,1\n").unwrap();
        assert_eq!(truncate_metrics(&path, 3, "step,epoch,loss").unwrap(), (Kept { last: 3, gap: 1 }, 0), "the last row kept; a torn row after it is not counted");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "step,epoch,loss\n1,1,0.5\n2,1,0.4\n3,1,0.3\n");
        truncate_metrics(&path, 2, "step,epoch,loss").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "step,epoch,loss\n1,1,0.5\n2,1,0.4\n");
        // a torn row at or before the step (a crash while writing it) is dropped too, counted
        std::fs::write(&path, "step,epoch,loss\n1,1,0.5\n2,1\n3,1,0.3\n,\n").unwrap();
        assert_eq!(truncate_metrics(&path, 5, "step,epoch,loss").unwrap(), (Kept { last: 3, gap: 2 }, 2));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "step,epoch,loss\n1,1,0.5\n3,1,0.3\n");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(truncate_metrics(&path, 7, "step,epoch,loss").unwrap(), (Kept::default(), 0));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "step,epoch,loss\n");
        assert!(read_losses(&path, 7).unwrap().is_empty());
    }
}
