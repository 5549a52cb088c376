//! The pretraining loop: loader -> recipe step -> metrics, progress, checkpoint
//! (official `src/train.py` main loop, with schedules as functions of the step).

use crate::data::{FashionMnist, Loader, LoaderCfg, Split};
use crate::device;
use crate::error::{Error, Result};
use crate::recipe::{Hyper, Recipe};
use crate::run_dir::{self, content_hash, write_json};
use crate::schedule::Schedules;
use ijepa_dsl::config::Experiment;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
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
}

/// What a finished run reports.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// The run folder.
    pub run_dir: PathBuf,
    /// Optimiser steps taken.
    pub steps: usize,
    /// Mean loss of the first epoch's first 10 steps.
    pub initial_loss: f64,
    /// Mean loss of the last 10 steps.
    pub final_loss: f64,
    /// Wall time of the training loop in seconds.
    pub wall_s: f64,
    /// The checkpoint written at the end.
    pub checkpoint: PathBuf,
}

/// The manifest of a stage (`manifest.json`).
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// Stage kind.
    pub stage: String,
    /// Experiment name.
    pub experiment: String,
    /// Content hash of the resolved config.
    pub hash: String,
    /// running, done or failed.
    pub status: String,
    /// Unix seconds.
    pub started: u64,
    /// Unix seconds, when finished.
    pub finished: Option<u64>,
    /// ijepa version.
    pub ijepa_version: String,
    /// Host name.
    pub host: String,
    /// Number of processes.
    pub world_size: usize,
    /// Device.
    pub device: String,
    /// Steps done.
    pub steps: usize,
    /// Final loss.
    pub final_loss: Option<f64>,
    /// Error message of a failed run.
    pub error: Option<String>,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn host() -> String {
    std::fs::read_to_string("/etc/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "unknown".into())
}

/// Columns of `metrics.csv`.
pub const METRICS_HEADER: &str = "step,epoch,loss,lr,wd,momentum,context_len,target_len,ms_per_step,img_per_s";

/// Pretrains `recipe` on the experiment's data; writes the run folder under `opts.runs_dir`.
pub fn pretrain<R: Recipe>(exp: &Experiment, recipe: &mut R, opts: &RunOptions) -> Result<RunSummary> {
    let resolved = serde_json::to_string_pretty(exp).map_err(|e| Error::Train(format!("serialising the config: {e}")))?;
    let hash = content_hash(resolved.as_bytes());
    let dir = run_dir::stage_dir(&opts.runs_dir, &exp.name, "pretrain", &hash)?;
    run_dir::write_atomic(&dir.join("config.kdl"), opts.source.as_bytes())?;
    run_dir::write_atomic(&dir.join("config.json"), resolved.as_bytes())?;
    let mut manifest = Manifest {
        stage: "pretrain".into(),
        experiment: exp.name.clone(),
        hash: hash.clone(),
        status: "running".into(),
        started: now(),
        finished: None,
        ijepa_version: env!("CARGO_PKG_VERSION").into(),
        host: host(),
        world_size: 1,
        device: device::describe(recipe.device()),
        steps: 0,
        final_loss: None,
        error: None,
    };
    write_json(&dir.join("manifest.json"), &manifest)?;
    let result = train_loop(exp, recipe, opts, &dir);
    manifest.finished = Some(now());
    match &result {
        Ok(s) => {
            manifest.status = "done".into();
            manifest.steps = s.steps;
            manifest.final_loss = Some(s.final_loss);
        }
        Err(e) => {
            manifest.status = "failed".into();
            manifest.error = Some(e.to_string());
        }
    }
    write_json(&dir.join("manifest.json"), &manifest)?;
    result
}

fn train_loop<R: Recipe>(exp: &Experiment, recipe: &mut R, opts: &RunOptions, dir: &Path) -> Result<RunSummary> {
    let dev = recipe.device();
    let dataset = FashionMnist::from_config(&exp.data, Split::Train)?;
    let n_images = dataset.len();
    let loader = Loader::new(Arc::new(dataset), LoaderCfg::from_data_config(&exp.data, exp.seed, 0, 1), recipe.collate())?;
    let ipe = loader.steps_per_epoch(); // >= 1: the loader rejects data smaller than a batch
    let sched = Schedules::new(&exp.optimizer.lr, &exp.optimizer.weight_decay, &exp.ema, ipe, exp.epochs, exp.ipe_scale);
    let metrics_path = dir.join("metrics.csv");
    let mut metrics = std::io::BufWriter::new(std::fs::File::create(&metrics_path).map_err(|e| Error::io(&metrics_path, e))?);
    writeln!(metrics, "{METRICS_HEADER}").map_err(|e| Error::io(&metrics_path, e))?;

    println!(
        "pretraining {} ({}, {:.2}M params) on {} images, {} epochs x {ipe} steps of {}, {} -> {}",
        exp.name,
        recipe.name(),
        recipe.num_params() as f64 / 1e6,
        n_images,
        exp.epochs,
        exp.data.batch_size,
        device::describe(dev),
        dir.display()
    );
    let total = exp.epochs * ipe;
    let bar = if opts.progress { ProgressBar::new(total as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{spinner} epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let t_start = Instant::now();
    let mut losses: Vec<f64> = Vec::with_capacity(total);
    let mut global = 0usize;
    for epoch in 0..exp.epochs {
        bar.set_prefix(format!("{}/{}", epoch + 1, exp.epochs));
        let t_epoch = Instant::now();
        let (mut ep_loss, mut ep_steps, mut ep_step_s) = (0.0, 0usize, 0.0);
        for batch in loader.epoch(epoch as u64) {
            let batch = batch?;
            let images: Tensor = batch.images_tensor(dev)?;
            let k = global + 1;
            let hyper = Hyper { lr: sched.lr(k), wd: sched.wd(k), momentum: sched.momentum(global) };
            let t0 = Instant::now();
            let stats = recipe.step(&images, &batch.masks, hyper)?;
            device::synchronize(dev);
            let dt = t0.elapsed().as_secs_f64();
            if !stats.loss.is_finite() {
                return Err(Error::Train(format!("the loss is {} at step {k} (epoch {}): training diverged", stats.loss, epoch + 1)));
            }
            global += 1;
            losses.push(stats.loss);
            ep_loss += stats.loss;
            ep_steps += 1;
            ep_step_s += dt;
            if global.is_multiple_of(exp.log_every.max(1)) {
                writeln!(
                    metrics,
                    "{global},{},{:.6},{:.6e},{:.6},{:.6},{},{},{:.2},{:.1}",
                    epoch + 1,
                    stats.loss,
                    hyper.lr,
                    hyper.wd,
                    hyper.momentum,
                    stats.context_len,
                    stats.target_len,
                    dt * 1e3,
                    batch.len() as f64 / dt
                )
                .and_then(|_| metrics.flush())
                .map_err(|e| Error::io(&metrics_path, e))?;
            }
            let recent = &losses[losses.len().saturating_sub(20)..];
            bar.set_message(format!("loss {:.4}", recent.iter().sum::<f64>() / recent.len() as f64));
            bar.inc(1);
        }
        let wall = t_epoch.elapsed().as_secs_f64();
        bar.suspend(|| {
            println!(
                "epoch {:>3}/{}  loss {:.4}  lr {:.2e}  wd {:.3}  ema {:.4}  {:.0} ms/step  {:.0} img/s  {:.1} s",
                epoch + 1,
                exp.epochs,
                ep_loss / ep_steps.max(1) as f64,
                sched.lr(global),
                sched.wd(global),
                sched.momentum(global.saturating_sub(1)),
                ep_step_s / ep_steps.max(1) as f64 * 1e3,
                (ep_steps * exp.data.batch_size) as f64 / wall,
                wall
            )
        });
    }
    bar.finish_and_clear();
    let ckpt = dir.join("checkpoints").join("final.safetensors");
    save_safetensors(&ckpt, &recipe.state())?;
    let head = &losses[..losses.len().min(10)];
    let tail = &losses[losses.len().saturating_sub(10)..];
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
    let summary = RunSummary {
        run_dir: dir.to_path_buf(),
        steps: global,
        initial_loss: mean(head),
        final_loss: mean(tail),
        wall_s: t_start.elapsed().as_secs_f64(),
        checkpoint: ckpt,
    };
    println!(
        "done: {} steps in {:.1} s; loss {:.4} (first 10 steps) -> {:.4} (last 10); checkpoint {}",
        summary.steps,
        summary.wall_s,
        summary.initial_loss,
        summary.final_loss,
        summary.checkpoint.display()
    );
    Ok(summary)
}

/// Saves named tensors as safetensors (float32, CPU), atomically.
pub fn save_safetensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    let tmp = path.with_extension("safetensors.tmp");
    let cpu: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(n, t)| Ok((n.clone(), t.f_detach()?.f_to_device(tch::Device::Cpu)?.f_contiguous()?)))
        .collect::<Result<_>>()?;
    Tensor::write_safetensors(&cpu, &tmp).map_err(|e| Error::Checkpoint { path: tmp.clone(), message: e.to_string() })?;
    let f = std::fs::File::open(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    Ok(())
}
