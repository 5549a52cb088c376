//! The DINO parity replay: one official `train_one_epoch` step (fp32, one process) from a
//! fixture written by `scripts/make-dino-parity-fixture.py` (`recipe: "dino"` in its JSON):
//! both networks' backbone and head outputs, the loss, the student's gradients after
//! `clip_gradients` (and `cancel_gradients_last_layer`), and what the step changed in the
//! student (AdamW), the teacher (EMA) and the centre. `ijepa parity FIXTURE` dispatches here.
//!
//! Updates are compared per element as the MAE replay does: the tensor's tolerance, two
//! float32 roundings of the weight, and what the gradient tolerance becomes through AdamW's
//! first step (`lr * eps / (|g| + eps)^2` per unit of gradient error), which is wide only
//! where a gradient is rounding noise.

use super::{Dino, DinoSpec};
use crate::parity::{compare, compare_first_adamw_update, compare_moments, get, read_fixture, ParityReport, Perturb};
use ijepa_dsl::config::{DinoConfig, Experiment};
use ijepa_engine::error::{Error, Result};
use ijepa_engine::recipe::{prefixed, Hyper};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use tch::{Device, Tensor};

/// The JSON of a DINO fixture (fields the replay reads).
#[derive(Debug, Clone, Deserialize)]
pub struct DinoFixtureSpec {
    /// Side of the global crops.
    pub global_size: usize,
    /// Side of the local crops.
    pub local_size: usize,
    /// Patch side.
    pub patch: usize,
    /// Backbone width.
    pub width: usize,
    /// Backbone depth.
    pub depth: usize,
    /// Heads.
    pub heads: usize,
    /// MLP ratio.
    pub mlp_ratio: f64,
    /// LayerNorm eps (official 1e-6, fixed in the replay's model).
    #[serde(default)]
    pub eps: Option<f64>,
    /// The head's output width.
    pub out_dim: usize,
    /// The head's hidden width.
    pub hidden_dim: usize,
    /// The head's bottleneck.
    pub bottleneck_dim: usize,
    /// The head's linear layers.
    pub nlayers: usize,
    /// `norm_last_layer`.
    pub norm_last_layer: bool,
    /// Global crops (2).
    pub n_global: usize,
    /// Local crops.
    pub n_local: usize,
    /// Student temperature.
    pub student_temp: f64,
    /// The teacher temperature the step used.
    pub teacher_temp: f64,
    /// Centre momentum.
    pub center_momentum: f64,
    /// Learning rate of the step.
    pub lr: f64,
    /// Weight decay of the step (regularised group).
    pub wd: f64,
    /// AdamW betas.
    pub betas: (f64, f64),
    /// AdamW eps.
    pub adam_eps: f64,
    /// Per-parameter clip norm.
    pub clip_grad: f64,
    /// `freeze_last_layer` epochs.
    pub freeze_last_layer: usize,
    /// The step's epoch.
    pub epoch: u64,
    /// The teacher's EMA momentum of the step.
    pub momentum: f64,
    /// The official loss.
    pub loss: f64,
    /// Student parameters whose gradient `cancel_gradients_last_layer` removed.
    #[serde(default)]
    pub no_grad_after_cancel: Vec<String>,
    /// The student's stochastic depth (`drop_path_rate`); the replay needs 0, its draws being
    /// torch's.
    #[serde(default)]
    pub drop_path_rate: f64,
    /// Images of the step (checked against the crops).
    #[serde(default)]
    pub batch: Option<i64>,
    /// Views per image (checked against `n_global + n_local`).
    #[serde(default)]
    pub ncrops: Option<i64>,
}

/// Replays a DINO fixture on the CPU.
///
/// # Errors
/// A malformed fixture.
pub fn run(path: &Path, perturb: Perturb) -> Result<ParityReport> {
    run_on(path, perturb, Device::Cpu)
}

/// Replays a DINO fixture on `device`.
///
/// # Errors
/// A malformed fixture.
pub fn run_on(path: &Path, perturb: Perturb, device: Device) -> Result<ParityReport> {
    let (f, t): (DinoFixtureSpec, _) = read_fixture(path, "DINO", device)?;
    let unit = |v: f64| (0.0..=1.0).contains(&v);
    crate::parity::in_range(path, &[
        ("lr", f.lr, f.lr >= 0.0, "at least 0"),
        ("wd", f.wd, f.wd >= 0.0, "at least 0"),
        ("adam_eps", f.adam_eps, f.adam_eps > 0.0, "positive"),
        ("student_temp", f.student_temp, f.student_temp > 0.0, "positive"),
        ("teacher_temp", f.teacher_temp, f.teacher_temp > 0.0, "positive"),
        ("center_momentum", f.center_momentum, unit(f.center_momentum), "in [0, 1]"),
        ("momentum", f.momentum, unit(f.momentum), "in [0, 1]"),
        ("beta1", f.betas.0, (0.0..1.0).contains(&f.betas.0), "in [0, 1)"),
        ("beta2", f.betas.1, (0.0..1.0).contains(&f.betas.1), "in [0, 1)"),
    ])?;
    if f.n_global != 2 {
        return Err(Error::Checkpoint { path: path.with_extension("json"), message: format!("DINO has 2 global crops, the fixture {}", f.n_global) });
    }
    if f.drop_path_rate != 0.0 {
        return Err(Error::Checkpoint {
            path: path.with_extension("json"),
            message: format!(
                "drop_path_rate {}: the replay draws no stochastic depth (the official step's draws come from torch's generator); write the fixture with drop_path_rate 0",
                f.drop_path_rate
            ),
        });
    }

    let mut exp = Experiment::with_defaults("dino-parity");
    exp.recipe = "dino".into();
    exp.data.crop_size = f.global_size;
    exp.encoder.patch_size = f.patch;
    exp.encoder.embed_dim = f.width;
    exp.encoder.depth = f.depth;
    exp.encoder.num_heads = f.heads;
    exp.encoder.mlp_ratio = f.mlp_ratio;
    exp.epochs = f.epoch as usize + 1;
    exp.optimizer.betas = perturb.betas.unwrap_or(f.betas);
    exp.optimizer.eps = f.adam_eps;
    exp.dino = DinoConfig {
        out_dim: f.out_dim,
        hidden_dim: f.hidden_dim,
        bottleneck_dim: f.bottleneck_dim,
        head_layers: f.nlayers,
        norm_last_layer: f.norm_last_layer,
        local_crops: f.n_local,
        local_size: f.local_size,
        student_temp: f.student_temp,
        teacher_temp: f.teacher_temp,
        warmup_teacher_temp: f.teacher_temp,
        warmup_teacher_temp_epochs: 0,
        center_momentum: f.center_momentum,
        // the momentum of global step 0 is the schedule's base
        momentum_teacher: perturb.momentum.unwrap_or(f.momentum),
        freeze_last_layer: f.freeze_last_layer,
        clip_grad: f.clip_grad,
        drop_path_rate: 0.0,
        ..DinoConfig::default()
    };
    // (the crops against the description's sides before a model of that size is built, as the
    // I-JEPA replay checks its images)
    crate::parity::stated(path, "ncrops", f.ncrops, (f.n_global + f.n_local) as i64)?;
    crate::parity::fixed_in_replay(path, "eps", f.eps, 1e-6)?;
    let crops: Vec<Tensor> = (0..f.n_global + f.n_local)
        .map(|i| {
            let side = Some(if i < f.n_global { f.global_size } else { f.local_size } as i64);
            crate::parity::input(&t, &format!("input.crop{i}"), path, tch::Kind::Float, &[None, Some(3), side, side]).map(|c| c.shallow_clone())
        })
        .collect::<Result<_>>()?;
    let spec = DinoSpec::from_experiment(&exp);
    let mut d = Dino::new(&spec, 0, device)?;
    d.student_store.load_strict_from(&prefixed(&t, "init.student."), path, "init.student.").map_err(crate::parity::of_description)?;
    d.teacher_store.load_strict_from(&prefixed(&t, "init.teacher."), path, "init.teacher.").map_err(crate::parity::of_description)?;
    let center = get(&t, "init.center", path)?;
    tch::no_grad(|| d.center.shallow_clone().f_copy_(center))?;

    let mut cs_pre = Vec::new();
    // every view of the step holds the same images
    for (i, c) in crops.iter().enumerate() {
        crate::parity::stated(path, "batch", f.batch, c.size()[0])?;
        if c.size()[0] != crops[0].size()[0] {
            return Err(Error::Checkpoint { path: path.to_path_buf(), message: format!("input `input.crop{i}` holds {} images, `input.crop0` {}: the views of one step are of the same images", c.size()[0], crops[0].size()[0]) });
        }
    }
    // the position table as resized for the local crops, before the step
    if f.n_local > 0 && t.contains_key("interp.pos_embed_local") {
        let ours = d.student.backbone.interpolate_pos_encoding(f.local_size as i64);
        cs_pre.push(compare("outputs", "pos_embed_local", &ours, get(&t, "interp.pos_embed_local", path)?)?);
    }
    let hyper = Hyper { lr: f.lr * perturb.lr_scale.unwrap_or(1.0), wd: f.wd * perturb.wd_scale.unwrap_or(1.0), momentum: 0.0 };
    let before: HashMap<String, Tensor> = ijepa_engine::recipe::Recipe::state(&d).into_iter().map(|(n, t)| (n, t.copy())).collect();
    d.set_position(f.epoch, 0, 1000);
    let (fwd, loss) = d.train_step(&crops, hyper)?;
    if let Some(prefix) = perturb.zero_grads {
        tch::no_grad(|| {
            for slot in d.optimizer.slots.iter().filter(|s| s.name.starts_with(prefix)) {
                let _ = slot.param.grad().zero_();
            }
        });
    }

    let mut cs = cs_pre;
    for (name, ours) in [
        ("teacher_backbone", &fwd.teacher_backbone),
        ("teacher", &fwd.teacher),
        ("student_backbone", &fwd.student_backbone),
        ("student", &fwd.student),
    ] {
        cs.push(compare("outputs", name, ours, get(&t, &format!("output.{name}"), path)?)?);
    }
    cs.push(compare("loss", "loss", &Tensor::from(loss), &Tensor::from(f.loss))?);
    let cancelled: HashSet<&str> = f.no_grad_after_cancel.iter().map(String::as_str).collect();
    let mut official_grads = HashMap::new();
    for slot in &d.optimizer.slots {
        let official = slot.name.strip_prefix("student.").unwrap_or(&slot.name);
        if cancelled.contains(official) {
            continue;
        }
        let g = get(&t, &format!("grad.{official}"), path)?;
        cs.push(compare("gradients", &slot.name, &slot.param.grad(), g)?);
        official_grads.insert(slot.name.clone(), g.shallow_clone());
    }
    // (a cancelled last layer took no step: no moments in the official optimizer, zeros in ours)
    let official_name = |name: &str| name.strip_prefix("student.").unwrap_or(name).to_string();
    compare_moments(&mut cs, &d.optimizer.slots, &t, |name| Some(official_name(name)).filter(|n| !cancelled.contains(n.as_str())), path)?;
    let expected = t.keys().filter(|k| k.starts_with("grad.")).count();
    if expected + cancelled.len() != d.optimizer.slots.len() {
        return Err(Error::Checkpoint {
            path: path.to_path_buf(),
            message: format!(
                "fixture has {expected} gradients and {} cancelled, the student {} trainable tensors",
                cancelled.len(),
                d.optimizer.slots.len()
            ),
        });
    }
    for (name, ours) in ijepa_engine::recipe::Recipe::state(&d) {
        let key = match name.strip_prefix("dino_loss.") {
            Some(rest) => format!("after.{rest}"),
            None => format!("after.{name}"),
        };
        // a teacher weight moves by (1 - m) of the student's change: the student's gradient
        // bounds it too, through (1 - m) of its update (it bounded it as the student's whole
        // update: 1 / (1 - m) too loose, a sign-flipped teacher update passed)
        let teacher_share = 1.0 - f.momentum;
        let grad = official_grads
            .get(&name)
            .map(|g| (g, 1.0))
            .or_else(|| name.strip_prefix("teacher.").and_then(|rest| official_grads.get(&format!("student.{rest}"))).map(|g| (g, teacher_share)));
        cs.push(compare_first_adamw_update(&name, &ours, &before[&name], get(&t, &key, path)?, grad, f.lr, f.adam_eps)?);
    }
    Ok(ParityReport { fixture: path.to_path_buf(), comparisons: cs, loss: (loss, f.loss) })
}
