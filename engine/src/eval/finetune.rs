//! Full fine-tuning of a pretrained encoder with a linear head: MAE's protocol
//! (facebookresearch/mae `main_finetune.py`, `engine_finetune.py`, `util/lr_decay.py`,
//! `util/lr_sched.py`, `models_vit.py` with `global_pool`), which the I-JEPA paper uses for its
//! Table 15.
//!
//! - **Model**: the encoder (every weight trainable, the position table too: a fixed sin-cos
//!   table in I-JEPA's and MAE's pretraining, a parameter in MAE's fine-tuning, timm's
//!   `VisionTransformer`, loaded from the checkpoint), its patch tokens average-pooled, a fresh
//!   LayerNorm `fc_norm` and a linear `head` (weights trunc-normal with std 2e-5, bias 0, as
//!   `main_finetune.py` sets them). Unlike MAE's `global_pool`, which drops the encoder's final
//!   norm, the pretrained `norm` is kept: it is part of what every recipe pretrained and what
//!   the probes read.
//! - **Optimiser**: AdamW (betas 0.9, 0.999) with MAE's layer-wise learning-rate decay
//!   (`param_groups_lrd`): the patch embedding and class token get `decay^(depth + 1)` of the
//!   rate, block i `decay^(depth - i)`, the final norm, `fc_norm` and the head 1; no weight
//!   decay on 1-D tensors, the class token and the position table.
//! - **Schedule**, per iteration (`adjust_learning_rate`): linear warm-up from 0 over
//!   `warmup_epochs`, then a half-cycle cosine down to `min_lr`; constant weight decay.
//! - **Regularisation**: stochastic depth rising linearly over the blocks to `drop_path` at the
//!   last (timm's `dpr`), label-smoothed cross-entropy. Not implemented: RandAugment, mixup,
//!   cutmix and random erasing (MAE's ImageNet augmentations); the images pass through the
//!   experiment's own training transform (random resized crop, flip as configured).
//! - **Selection**: with more than one (lr, weight decay) pair, each is fine-tuned on the
//!   training split minus a held-out part (stratified per class, seeded) and scored there; the
//!   first best pair is fine-tuned again on the whole split and scored on the test split, with
//!   the test top-1 recorded after every epoch (recorded only, never used to choose); the
//!   result is the last epoch's (MAE prints the best epoch's, chosen on the test split).
//! - **Divergence**: a fit whose loss is not finite, or whose weights or logits are not after
//!   its last step, diverged: no score.
//! - Under bf16 autocast when asked (the experiment's precision), like pretraining.

use super::{best_of, by_class, stratified_split, ProbeResult};
use crate::autocast;
use crate::data::{self, Dataset, Loader, LoaderCfg, SampleTransform};
use crate::error::{Error, Result};
use crate::model::layer_norm::LayerNorm;
use crate::model::linear::Linear;
use crate::model::vit::VisionTransformer;
use crate::model::{init, ParamStore};
use crate::optim::{AdamW, Group};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use tch::{Device, Kind, Reduction, Tensor};

pub use crate::model::vit::block::drop_path_rates;

/// Fine-tuning configuration (see the module docs for the protocol).
#[derive(Debug, Clone, PartialEq)]
pub struct FinetuneCfg {
    /// Epochs over the training split.
    pub epochs: usize,
    /// Images per step.
    pub batch: usize,
    /// Peak learning rates of the grid.
    pub lrs: Vec<f64>,
    /// Weight decays of the grid.
    pub wds: Vec<f64>,
    /// Warm-up epochs (may be fractional).
    pub warmup_epochs: f64,
    /// Learning rate at the end of the cosine.
    pub min_lr: f64,
    /// Layer-wise learning-rate decay factor.
    pub layer_decay: f64,
    /// Stochastic-depth rate of the last block.
    pub drop_path: f64,
    /// Label smoothing.
    pub label_smoothing: f64,
    /// Fraction of each class held out to choose (lr, weight decay), when the grid has more
    /// than one pair.
    pub heldout: f64,
    /// Seed of the held-out split, the shuffles, the augmentations, the head and the drops.
    pub seed: u64,
    /// Loader threads.
    pub workers: usize,
    /// bf16 autocast for the forward pass.
    pub bf16: bool,
}

/// The encoder with its classification head.
#[derive(Debug)]
pub struct Classifier {
    /// Every parameter: the encoder's (official names), then `fc_norm.*` and `head.*`.
    pub store: ParamStore,
    /// The encoder.
    pub encoder: VisionTransformer,
    /// LayerNorm of the pooled tokens.
    pub fc_norm: LayerNorm,
    /// The linear classifier.
    pub head: Linear,
}

impl Classifier {
    /// Adds `fc_norm` and `head` for `num_classes` classes to the store of `encoder` (whose
    /// weights are already loaded), and makes the position table trainable, as MAE's
    /// fine-tuning model has it.
    ///
    /// # Errors
    /// libtorch's.
    pub fn new(store: ParamStore, encoder: VisionTransformer, num_classes: usize) -> Result<Self> {
        store.unfreeze("pos_embed");
        let d = encoder.cfg.embed_dim as i64;
        let root = store.root();
        let fc_norm = LayerNorm::new(&root.sub("fc_norm"), d, encoder.cfg.eps)?;
        let head = Linear::new(&root.sub("head"), d, num_classes as i64)?;
        tch::no_grad(|| -> Result<()> {
            let w = init::trunc_normal(&[num_classes as i64, d], 0.0, 2e-5, -2.0, 2.0, store.device())?;
            head.weight.shallow_clone().f_copy_(&w)?;
            Ok(())
        })?;
        Ok(Self { store, encoder, fc_norm, head })
    }

    /// Logits, with stochastic depth `drop_path[i]` in block i (empty: none, evaluation).
    ///
    /// # Shapes
    /// `x: [B, 3, S, S]` -> `[B, classes]`
    pub fn forward(&self, x: &Tensor, drop_path: &[f64]) -> Tensor {
        let out = self.encoder.forward_drop_path(x, drop_path);
        let pooled = self.encoder.patch_tokens(&out).mean_dim(1, false, None);
        self.head.forward(&self.fc_norm.forward(&pooled))
    }

    /// AdamW over every trainable parameter with MAE's layer-wise decay and weight-decay groups.
    ///
    /// # Errors
    /// libtorch's.
    pub fn optimizer(&self, layer_decay: f64) -> Result<AdamW> {
        let depth = self.encoder.blocks.len();
        let mut opt = AdamW::new(self.store.trainable(), (0.9, 0.999), 1e-8)?;
        for s in &mut opt.slots {
            s.lr_scale = layer_decay.powi((depth + 1 - layer_id(&s.name, depth)) as i32);
            if s.param.dim() == 1 || s.name == "cls_token" || s.name == "pos_embed" {
                s.group = Group::NoDecay;
            }
        }
        Ok(opt)
    }
}

/// MAE's `get_layer_id_for_vit`: 0 for the embeddings, `i + 1` for block i, `depth + 1` for
/// everything after the blocks.
pub fn layer_id(name: &str, depth: usize) -> usize {
    if name == "cls_token" || name == "pos_embed" || name.starts_with("patch_embed") {
        return 0;
    }
    match name.strip_prefix("blocks.").and_then(|r| r.split('.').next()).and_then(|i| i.parse::<usize>().ok()) {
        Some(i) => i + 1,
        None => depth + 1,
    }
}

/// MAE's `adjust_learning_rate` at fractional epoch `e`: linear warm-up from 0, then a
/// half-cycle cosine from `peak` to `min_lr`.
pub fn lr_at(e: f64, peak: f64, min_lr: f64, warmup: f64, epochs: f64) -> f64 {
    if e < warmup {
        peak * e / warmup
    } else {
        let span = (epochs - warmup).max(f64::MIN_POSITIVE);
        min_lr + (peak - min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * (e - warmup) / span).cos())
    }
}

/// Top-1 (percent) of `model` on `ds` through the evaluation transform; NaN when a logit is
/// not finite (weights that overflowed: its argmax would name a class all the same).
pub fn accuracy(model: &Classifier, ds: &dyn Dataset, transform: &dyn SampleTransform, batch: usize, device: Device, bf16: bool) -> Result<f64> {
    let s = transform.size() as i64;
    let (mut correct, mut total) = (0i64, 0i64);
    let mut finite = true;
    super::features::for_each_batch(ds, transform, batch, |_, buf, ys| {
        crate::interrupt::check()?;
        let b = ys.len() as i64;
        let x = Tensor::f_from_slice(&buf)?.f_view([b, 3, s, s])?.f_to_device(device)?;
        let logits = autocast::bf16(device, bf16, || tch::no_grad(|| model.forward(&x, &[])))?;
        finite &= crate::model::all_finite(&logits)?;
        let y = Tensor::f_from_slice(&ys)?.f_to_device(device)?;
        correct += logits.f_argmax(1, false)?.f_eq_tensor(&y)?.f_sum(Kind::Int64)?.int64_value(&[]);
        total += b;
        Ok(())
    })?;
    Ok(match (total, finite) {
        (_, false) => f64::NAN,
        (0, _) => 0.0,
        _ => 100.0 * correct as f64 / total as f64,
    })
}

/// Whether every trainable weight of `model` is finite.
fn weights_finite(model: &Classifier) -> Result<bool> {
    for (_, t) in model.store.trainable() {
        if !crate::model::all_finite(&t)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// How one fit of [`train_one`] ended.
enum Fit {
    /// The trained model and its curve (top-1 on the test split after every epoch, when given).
    Trained(Box<Classifier>, Vec<(usize, f64)>),
    /// The loss was not finite: what, where and at which learning rate.
    Diverged(String),
}

/// Refuses a batch larger than the `n` images a fit trains on: its last incomplete batch is
/// dropped, so it would take no step (checked again before pretraining, from the labels).
///
/// # Errors
/// [`Error::Config`] naming the batch-size and the images.
pub fn check_batch(batch: usize, n: usize) -> Result<()> {
    if n < batch {
        return Err(Error::Config(format!(
            "fine-tuning: its batch-size {batch} is more than the {n} images a fit trains on (the training split, less its held-out part while lr/wd points are compared; the last incomplete batch is dropped): lower the finetune evaluation's `batch-size`"
        )));
    }
    Ok(())
}

/// Fine-tunes one model built by `build` on `train` with peak lr `lr` and weight decay `wd`;
/// after every epoch, scores it on `test` when given (the returned curve). A non-finite loss,
/// or weights or test logits that are not finite after an epoch's last step, end the fit as
/// [`Fit::Diverged`]: a grid point that diverges is no score, not the end of the comparison.
#[allow(clippy::too_many_arguments)]
fn train_one(
    build: &dyn Fn() -> Result<Classifier>,
    train: Arc<dyn Dataset>,
    train_tf: Arc<dyn SampleTransform>,
    test: Option<(&dyn Dataset, &dyn SampleTransform)>,
    cfg: &FinetuneCfg,
    lr: f64,
    wd: f64,
    device: Device,
) -> Result<Fit> {
    tch::manual_seed(cfg.seed as i64);
    let model = build()?;
    let mut opt = model.optimizer(cfg.layer_decay)?;
    let rates = drop_path_rates(cfg.drop_path, model.encoder.blocks.len());
    let loader_cfg = LoaderCfg {
        batch_size: cfg.batch,
        workers: cfg.workers.max(1),
        prefetch: 2,
        seed: cfg.seed,
        drop_last: true,
        rank: 0,
        world_size: 1,
        skip_errors: false,
    };
    let n = train.len();
    check_batch(cfg.batch, n)?;
    let loader = Loader::<()>::new(train, train_tf, loader_cfg, Arc::new(|_, _, _| Ok(())))?;
    let ipe = loader.steps_per_epoch();
    let mut curve = Vec::new();
    for epoch in 0..cfg.epochs {
        let t0 = Instant::now();
        let (mut loss_sum, mut steps) = (0.0, 0usize);
        let mut lr_now = 0.0;
        for (it, batch) in loader.epoch(epoch as u64).enumerate() {
            crate::interrupt::check()?;
            let batch = batch?;
            lr_now = lr_at(epoch as f64 + it as f64 / ipe as f64, lr, cfg.min_lr, cfg.warmup_epochs, cfg.epochs as f64);
            let x = batch.images_tensor(device)?;
            let y = batch.labels_tensor(device)?;
            let logits = autocast::bf16(device, cfg.bf16, || model.forward(&x, &rates))?;
            let loss = logits.f_to_kind(Kind::Float)?.f_cross_entropy_loss::<Tensor>(&y, None, Reduction::Mean, -100, cfg.label_smoothing)?;
            let value = loss.f_double_value(&[])?;
            if !value.is_finite() {
                // (counted from 1, as the epoch lines count them)
                return Ok(Fit::Diverged(format!("loss {value} at epoch {}, step {} (lr {lr_now:.3e})", epoch + 1, it + 1)));
            }
            opt.zero_grad()?;
            loss.f_backward()?;
            opt.step(lr_now, wd)?;
            loss_sum += value;
            steps += 1;
        }
        // (the loss is read before each step: the last one's update is seen here)
        if !weights_finite(&model)? {
            return Ok(Fit::Diverged(format!("weights not finite after the last step of epoch {} (lr {lr_now:.3e})", epoch + 1)));
        }
        let mut line = format!(
            "finetune epoch {}/{} lr {lr:.1e} wd {wd}: loss {:.4} (last lr {lr_now:.2e}), {n} images, {:.1} s",
            epoch + 1,
            cfg.epochs,
            loss_sum / steps.max(1) as f64,
            t0.elapsed().as_secs_f64()
        );
        if let Some((ds, tf)) = test {
            let acc = accuracy(&model, ds, tf, 256, device, cfg.bf16)?;
            if acc.is_nan() {
                return Ok(Fit::Diverged(format!("test logits not finite after epoch {} (lr {lr_now:.3e})", epoch + 1)));
            }
            line.push_str(&format!(", test top-1 {acc:.2}%"));
            curve.push((epoch + 1, acc));
        }
        tracing::info!("{line}");
    }
    Ok(Fit::Trained(Box::new(model), curve))
}

/// Where a fine-tuning warm-up shorter than its `epochs` still lasts past its last step, with
/// `ipe` steps an epoch (each step's rate is read at `epoch + step / ipe`, [`lr_at`]): the
/// epoch of that last step, at which the rate is still rising. `None` where a step reaches the
/// peak, and where the warm-up is at least the epochs (the file's checks say that one) or
/// there are no steps (refused elsewhere).
pub fn warmup_outlasts_steps(warmup: f64, epochs: usize, ipe: usize) -> Option<f64> {
    let last = epochs as f64 - 1.0 / ipe as f64;
    (ipe > 0 && epochs > 0 && warmup < epochs as f64 && warmup > last).then_some(last)
}

fn params(lr: f64, wd: f64) -> BTreeMap<String, f64> {
    BTreeMap::from([("lr".to_string(), lr), ("wd".to_string(), wd)])
}

/// Runs the protocol: `build` returns a fresh classifier (the encoder at the weights under
/// evaluation, a new head) each time it is called; `train_tf` is the training augmentation,
/// `eval_tf` the deterministic evaluation transform.
///
/// Errors: an empty grid, a training split without samples, an unusable batch, every grid
/// point diverging on the held-out comparison (one that diverges is recorded with no score,
/// NaN), the final fit diverging, and anything loading or libtorch reports.
#[allow(clippy::too_many_arguments)]
pub fn finetune(
    build: &dyn Fn() -> Result<Classifier>,
    train: Arc<dyn Dataset>,
    test: Arc<dyn Dataset>,
    train_tf: Arc<dyn SampleTransform>,
    eval_tf: &dyn SampleTransform,
    num_classes: usize,
    cfg: &FinetuneCfg,
    device: Device,
) -> Result<ProbeResult> {
    if cfg.lrs.is_empty() || cfg.wds.is_empty() {
        return Err(Error::Config("fine-tuning needs at least one learning rate and one weight decay".into()));
    }
    if cfg.epochs == 0 {
        return Err(Error::Config("fine-tuning needs at least one epoch".into()));
    }
    // (a warm-up that never reaches its peak is said by the file's warnings, EvalConfig::warnings;
    // here one that its steps end before: a warm-up of 0.99 epoch in 1 epoch of 10 steps)
    // (`which`: the fits said; the comparison fits train on the split less its held-out part,
    // fewer steps an epoch, and were not: they never reached their peak without a word)
    let warn_warmup = |images: usize, which: &str| {
        let ipe = images / cfg.batch.max(1);
        if let Some(last) = warmup_outlasts_steps(cfg.warmup_epochs, cfg.epochs, ipe) {
            // (shown to 4 decimals, rounded down: 2/3 of an epoch is no 0.6666666666666667)
            let last = (last * 1e4).floor() / 1e4;
            tracing::warn!(
                "the fine-tuning's learning-rate warmup ({} epoch(s)) ends after the last step of {which} (at epoch {last} of {}: {ipe} steps an epoch): the rate only rises and never reaches its peak; lower the finetune evaluation's `warmup-epochs` to {last} or less",
                cfg.warmup_epochs,
                cfg.epochs
            );
            true
        } else {
            false
        }
    };
    let grid: Vec<(f64, f64)> = cfg.lrs.iter().flat_map(|&lr| cfg.wds.iter().map(move |&wd| (lr, wd))).collect();
    let mut warned = false;
    let mut sweep = Vec::new();
    let (lr, wd) = if grid.len() > 1 && cfg.heldout > 0.0 {
        let labels: Vec<i64> = (0..train.len()).map(|i| train.label(i)).collect();
        if by_class(&labels, num_classes).iter().filter(|c| !c.is_empty()).count() == 0 {
            return Err(Error::Data("fine-tuning: the training split has no labelled sample".into()));
        }
        let (fit, held) = stratified_split(&labels, num_classes, cfg.heldout, cfg.seed);
        // (scored on no image, every point read 0% and the first was "chosen")
        if held.is_empty() {
            return Err(Error::Config(format!(
                "fine-tuning: held-out fraction {} leaves no held-out sample to choose among {} (lr, weight decay) pairs {}",
                cfg.heldout,
                grid.len(),
                super::why_none_held_out(&labels, num_classes, cfg.heldout)
            )));
        }
        // (the comparison fits' steps are fewer: the advice, said once, is theirs)
        warned = warn_warmup(fit.len(), "the held-out comparison's fits");
        let (fit, held) = (data::subset(train.clone(), fit), data::subset(train.clone(), held));
        for (i, &(lr, wd)) in grid.iter().enumerate() {
            // (a diverged point scores NaN, recorded as null, and the others are still compared)
            let scored = match train_one(build, fit.clone(), train_tf.clone(), None, cfg, lr, wd, device)? {
                Fit::Trained(model, _) => match accuracy(&model, held.as_ref(), eval_tf, 256, device, cfg.bf16)? {
                    acc if acc.is_nan() => Err(format!("held-out logits not finite after the last epoch (lr {lr:.3e})")),
                    acc => Ok(acc),
                },
                Fit::Diverged(why) => Err(why),
            };
            let acc = match scored {
                Ok(acc) => {
                    tracing::info!("finetune lr {lr:.1e} wd {wd}: held-out top-1 {acc:.2}%");
                    acc
                }
                Err(why) => {
                    let rest = if i + 1 < grid.len() { "the other points are compared" } else { "the points before it are compared" };
                    tracing::warn!("finetune lr {lr:.1e} wd {wd} diverged ({why}): no held-out score, {rest}");
                    f64::NAN
                }
            };
            sweep.push((params(lr, wd), acc));
        }
        let best = best_of(&sweep).ok_or_else(|| {
            let points: Vec<String> = grid.iter().map(|(lr, wd)| format!("lr {lr:.1e} wd {wd}")).collect();
            Error::Train(format!("fine-tuning: every grid point diverged ({}): lower the `lr` values", points.join(", ")))
        })?;
        grid[best]
    } else {
        if grid.len() > 1 {
            tracing::warn!("fine-tuning: `held-out 0` leaves nothing to choose among {} (lr, weight decay) pairs; using the first", grid.len());
        }
        grid[0]
    };
    // (the final fit on the whole split: said where the comparison's fits were not)
    if !warned {
        warn_warmup(train.len(), "the fit");
    }
    let curve = match train_one(build, train, train_tf, Some((test.as_ref(), eval_tf)), cfg, lr, wd, device)? {
        Fit::Trained(_, curve) => curve,
        Fit::Diverged(why) => return Err(Error::Train(format!("fine-tuning diverged at lr {lr:.1e}, wd {wd}: {why}"))),
    };
    let top1 = curve.last().map(|c| c.1).unwrap_or(f64::NAN);
    Ok(ProbeResult { sweep, chosen: params(lr, wd), top1, curve })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_ids_and_scales_follow_mae() {
        assert_eq!(layer_id("patch_embed.proj.weight", 6), 0);
        assert_eq!(layer_id("cls_token", 6), 0);
        assert_eq!(layer_id("blocks.0.attn.qkv.weight", 6), 1);
        assert_eq!(layer_id("blocks.5.mlp.fc2.bias", 6), 6);
        assert_eq!(layer_id("norm.weight", 6), 7);
        assert_eq!(layer_id("head.weight", 6), 7);
        assert_eq!(layer_id("fc_norm.bias", 6), 7);
    }

    #[test]
    fn schedule_warms_up_then_follows_the_half_cosine() {
        assert_eq!(lr_at(0.0, 1e-3, 1e-6, 1.0, 10.0), 0.0);
        assert!((lr_at(0.5, 1e-3, 1e-6, 1.0, 10.0) - 5e-4).abs() < 1e-15);
        assert!((lr_at(1.0, 1e-3, 1e-6, 1.0, 10.0) - 1e-3).abs() < 1e-15);
        assert!((lr_at(5.5, 1e-3, 1e-6, 1.0, 10.0) - (1e-6 + (1e-3 - 1e-6) * 0.5)).abs() < 1e-15);
        assert!((lr_at(10.0, 1e-3, 1e-6, 1.0, 10.0) - 1e-6).abs() < 1e-15);
        // no warm-up
        assert_eq!(lr_at(0.0, 1e-3, 0.0, 0.0, 4.0), 1e-3);
    }

    #[test]
    fn a_warm_up_past_the_last_step_is_found() {
        // 1 epoch of 10 steps: the last step reads epoch 0.9, still in a warm-up of 0.95
        assert_eq!(warmup_outlasts_steps(0.95, 1, 10), Some(0.9));
        assert!(lr_at(0.9, 1e-3, 1e-6, 0.95, 1.0) < 1e-3);
        // one that the last step reaches, or a warm-up of the whole fine-tuning (the file's)
        assert_eq!(warmup_outlasts_steps(0.9, 1, 10), None);
        assert_eq!(warmup_outlasts_steps(1.0, 1, 10), None);
        assert_eq!(warmup_outlasts_steps(5.0, 10, 100), None);
        assert_eq!(warmup_outlasts_steps(9.995, 10, 100), Some(9.99));
        assert_eq!(warmup_outlasts_steps(0.5, 1, 0), None);
    }

    #[test]
    fn drop_path_rates_are_linspace() {
        assert_eq!(drop_path_rates(0.1, 3), vec![0.0, 0.05, 0.1]);
        assert_eq!(drop_path_rates(0.1, 1), vec![0.0]);
        assert!(drop_path_rates(0.1, 0).is_empty());
    }
}
