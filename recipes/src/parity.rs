//! Parity with the official code: replays one official training step from a fixture and
//! compares every output, the loss, every gradient and every weight after AdamW + EMA.
//!
//! A fixture is `NAME.safetensors` (tensors `init.{encoder,predictor}.*`, `input.images`,
//! `input.masks_enc` [n_ctx,B,K], `input.masks_pred` [n_tgt,B,K], `output.{target,context,
//! prediction}`, `grad.{encoder,predictor}.*`, `after.{encoder,predictor,target_encoder}.*`)
//! beside `NAME.json` (the model shape and optimiser values). Any fixture of this format
//! works, not only the shipped one: `ijepa parity` and the parity test share this code.

use crate::ijepa::{sub_map, IJepa, IJepaSpec};
use ijepa_dsl::config::LossKind;
use ijepa_engine::checkpoint::import;
use ijepa_engine::error::{Error, Result};
use crate::ijepa::PredictorConfig;
use ijepa_engine::model::vit::VitConfig;
use ijepa_engine::recipe::{Hyper, Recipe};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// The fixture's JSON description (fields we use; others are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct FixtureSpec {
    /// Image side.
    pub image_size: usize,
    /// Patch side.
    pub patch_size: usize,
    /// Encoder width.
    pub embed_dim: usize,
    /// Encoder depth.
    pub depth: usize,
    /// Heads (encoder and predictor).
    pub heads: usize,
    /// The encoder's MLP ratio.
    pub mlp_ratio: f64,
    /// The predictor's MLP ratio: the official `vit_predictor` always builds 4, whatever the
    /// encoder's (ViT-g's is 48/11).
    #[serde(default = "official_predictor_mlp_ratio")]
    pub predictor_mlp_ratio: f64,
    /// LayerNorm eps.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Predictor width.
    pub predictor_width: usize,
    /// Predictor depth.
    pub predictor_depth: usize,
    /// Optimiser values.
    pub optimizer: FixtureOptimizer,
    /// EMA momentum of the step.
    pub ema_momentum: f64,
    /// Official loss value.
    pub loss_value: f64,
    /// Images of the step (the tensors' batch; checked against them).
    #[serde(default)]
    pub batch: Option<i64>,
    /// Target blocks per image (checked against `input.masks_pred`).
    #[serde(default)]
    pub n_targets: Option<i64>,
    /// Context blocks per image (checked against `input.masks_enc`).
    #[serde(default)]
    pub n_context: Option<i64>,
}

fn official_predictor_mlp_ratio() -> f64 {
    4.0
}

/// Optimiser values of a fixture.
#[derive(Debug, Clone, Deserialize)]
pub struct FixtureOptimizer {
    /// Learning rate.
    pub lr: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// Adam betas.
    pub betas: (f64, f64),
    /// Adam epsilon.
    pub eps: f64,
    /// The optimiser (`adamw`: the one replayed).
    #[serde(default)]
    pub kind: Option<String>,
}

fn default_eps() -> f64 {
    1e-6
}

/// Tolerance of one comparison group, relative to each tensor's own scale: a tensor passes
/// when max |ours - official| <= `rel` * max |official| (a tensor whose official values are all
/// zero must match to `floor`).
#[derive(Debug, Clone, Copy)]
pub struct Tolerance {
    /// Largest error relative to the tensor's own largest magnitude.
    pub rel: f64,
    /// Absolute error allowed where the official tensor is all zeros.
    pub floor: f64,
}

/// The tolerances of each group. Per tensor and relative to its own scale, so a small tensor
/// (encoder gradients are ~1e-5 here) is held to the same precision as a large one. "updates"
/// compares what the step changed (after minus before, for AdamW and the EMA), not the weights,
/// whose size would hide a wrong update; an update may also differ by [`ROUNDING`] of its
/// weight (it is a difference of float32 numbers). Measured on both shipped fixtures (float32
/// kernel-order noise): on the official code's BLAS products outputs, loss and gradients
/// exact; on oneDNN's (`auto` on some AVX-512 CPUs) outputs to 1.8e-7 and gradients to
/// 2.4e-6 (README "Parity"); updates within the rounding term. The negative tests in `recipes/tests/parity.rs` prove the bounds catch lr
/// x1.1, weight decay x0.5 and x1.5 (a 4e-4 relative change of the encoder's update), an EMA
/// momentum off by 1e-3 and one block's zeroed gradients. "moments" (AdamW's `exp_avg` and
/// `exp_avg_sq` after the step, where a fixture records them: I-JEPA's) are `(1 - beta1) g` and
/// `(1 - beta2) g^2`, held as the gradients are (exact on the host that made the fixtures, as
/// are its gradients; elsewhere they carry the gradients' float noise): the first update cannot
/// see the betas (its bias correction cancels them), the moments can (betas (0.5, 0.5) fail
/// them and nothing else).
pub const TOLERANCES: [(&str, Tolerance); 5] = [
    ("outputs", Tolerance { rel: 1e-5, floor: 1e-7 }),
    ("loss", Tolerance { rel: 1e-6, floor: 1e-9 }),
    ("gradients", Tolerance { rel: 1e-5, floor: 1e-12 }),
    ("updates", Tolerance { rel: 1e-4, floor: 1e-10 }),
    ("moments", Tolerance { rel: 1e-5, floor: 1e-20 }),
];

/// What an update (after minus before, float32) may carry beyond its tolerance: two float32
/// roundings of the weight (2 x 2^-23 of its largest magnitude).
pub const ROUNDING: f64 = 2.0 * f32::EPSILON as f64;

/// Result of comparing one tensor.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Group (outputs, loss, gradients, updates).
    pub group: &'static str,
    /// Tensor name.
    pub name: String,
    /// Largest |ours - official|.
    pub max_abs: f64,
    /// Largest |official| (scale).
    pub scale: f64,
    /// `max_abs / scale` (what the tolerance bounds).
    pub rel: f64,
    /// Whether every element is within tolerance.
    pub pass: bool,
    /// The worst element's error as a share of what it may be (at most 1 passes): the
    /// updates' per-element tolerance is wider than `rel`'s bound where a gradient is noise.
    pub of_tolerance: f64,
}

/// The whole parity report.
#[derive(Debug, Clone)]
pub struct ParityReport {
    /// Fixture file.
    pub fixture: PathBuf,
    /// Every comparison.
    pub comparisons: Vec<Comparison>,
    /// Our loss and the official one.
    pub loss: (f64, f64),
}

impl ParityReport {
    /// True when every comparison passes.
    pub fn pass(&self) -> bool {
        self.comparisons.iter().all(|c| c.pass)
    }

    /// Per group: (group, worst relative error, tensors compared, all pass); "moments" only
    /// where the fixture records them.
    pub fn by_group(&self) -> Vec<(&'static str, f64, usize, bool)> {
        TOLERANCES
            .iter()
            .map(|(g, _)| {
                let cs: Vec<&Comparison> = self.comparisons.iter().filter(|c| c.group == *g).collect();
                let worst = cs.iter().map(|c| c.rel).fold(0.0, nan_max);
                (*g, worst, cs.len(), cs.iter().all(|c| c.pass))
            })
            .filter(|(g, _, n, _)| *g != "moments" || *n > 0)
            .collect()
    }

    /// The worst share of its tolerance of a group's elements (at most 1: every one passes).
    pub fn worst_of_tolerance(&self, group: &str) -> f64 {
        self.comparisons.iter().filter(|c| c.group == group).map(|c| c.of_tolerance).fold(0.0, nan_max)
    }
}

/// The larger of two errors, NaN where either is (`f64::max` drops a NaN: a group whose
/// replay computed NaN printed its worst error as 0 beside its FAIL).
fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// What to perturb in the replay (for tests proving the tolerances catch wrong formulas).
#[derive(Debug, Clone, Copy, Default)]
pub struct Perturb {
    /// Multiply the weight decay by this (1.0 = as the fixture says).
    pub wd_scale: Option<f64>,
    /// Use this EMA momentum instead of the fixture's.
    pub momentum: Option<f64>,
    /// Multiply the learning rate by this.
    pub lr_scale: Option<f64>,
    /// Zero the gradients of the trainable tensors whose name starts with this (a dropped
    /// block), before they are compared.
    pub zero_grads: Option<&'static str>,
    /// Use these AdamW betas instead of the fixture's.
    pub betas: Option<(f64, f64)>,
}

pub(crate) fn tolerance(group: &str) -> Tolerance {
    TOLERANCES.iter().find(|(g, _)| *g == group).map(|(_, t)| *t).unwrap_or(Tolerance { rel: 0.0, floor: 0.0 })
}

pub(crate) fn compare(group: &'static str, name: &str, ours: &Tensor, official: &Tensor) -> Result<Comparison> {
    let ours = ours.f_to_kind(Kind::Double)?.f_to_device(Device::Cpu)?;
    let official = official.f_to_kind(Kind::Double)?.f_to_device(Device::Cpu)?;
    // (the replay's shapes are the description's model's: the fixture's tensor is of another)
    if ours.size() != official.size() {
        return Err(shapes_differ(group, name, &official.size(), &ours.size()));
    }
    let max_abs = if ours.numel() == 0 { 0.0 } else { (&ours - &official).abs().max().double_value(&[]) };
    let scale = if official.numel() == 0 { 0.0 } else { official.abs().max().double_value(&[]) };
    let t = tolerance(group);
    let (rel, pass) = if scale > 0.0 {
        (max_abs / scale, max_abs <= t.rel * scale)
    } else {
        (if max_abs == 0.0 { 0.0 } else { f64::INFINITY }, max_abs <= t.floor)
    };
    let allowed = if scale > 0.0 { t.rel * scale } else { t.floor };
    let of_tolerance = if max_abs == 0.0 { 0.0 } else if allowed > 0.0 { max_abs / allowed } else { f64::INFINITY };
    Ok(Comparison { group, name: name.to_string(), max_abs, scale, rel, pass: pass && max_abs.is_finite(), of_tolerance })
}

/// A fixture's tensor of `group` shaped `official` where the replay of its description has
/// `ours`: no comparison can be made (it was a FAIL, exit 1, read as the implementation's
/// mismatch, or libtorch's error with its C++ backtrace).
/// (`Error::Data`: [`run_any_on`] names the tensors' file, where a `Config` error is the
/// description's: one truncated tensor was blamed on a description that was right)
fn shapes_differ(group: &str, name: &str, official: &[i64], ours: &[i64]) -> Error {
    Error::Data(format!(
        "the fixture's {group} tensor `{name}` is shaped {official:?}, the replay's {ours:?}: the fixture's tensors and its description are of different models"
    ))
}

/// The path and text of the JSON that describes the fixture `path` (`NAME.json` beside
/// `NAME.safetensors`).
///
/// # Errors
/// A missing description, said as such (a fixture is the pair of files); another I/O error
/// naming the file.
fn fixture_description(path: &Path) -> Result<(std::path::PathBuf, String)> {
    // the description named instead of the fixture: say which file to give
    if path.extension().is_some_and(|e| e == "json") {
        return Err(Error::Checkpoint {
            path: path.to_path_buf(),
            message: format!(
                "is a fixture's description: give its tensors, {} (the .json beside it is read with them)",
                path.with_extension("safetensors").display()
            ),
        });
    }
    // the fixture itself first: a path that is no file was reported as its description missing
    if !path.is_file() {
        // (a FIFO or a device, /dev/null, was said not to exist)
        let what = if path.is_dir() {
            "is a folder, not a fixture's tensors (NAME.safetensors)"
        } else if path.exists() {
            "is not a regular file (a device, a FIFO or a socket), not a fixture's tensors (NAME.safetensors)"
        } else {
            "does not exist"
        };
        return Err(Error::Checkpoint { path: path.to_path_buf(), message: what.into() });
    }
    let json_path = path.with_extension("json");
    // (a FIFO there blocked the read until something wrote to it)
    if json_path.exists() && !json_path.is_file() {
        return Err(Error::Checkpoint {
            path: path.to_path_buf(),
            message: format!("its description {} is not a regular file (a folder, a device, a FIFO or a socket)", json_path.display()),
        });
    }
    match std::fs::read_to_string(&json_path) {
        Ok(text) => Ok((json_path, text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::Checkpoint {
            path: path.to_path_buf(),
            message: format!(
                "its description {} is missing: a parity fixture is NAME.safetensors with NAME.json beside it (the generator scripts write both)",
                json_path.display()
            ),
        }),
        Err(e) => Err(Error::io(&json_path, e)),
    }
}

/// Loads the fixture's tensors and JSON (`path` is the .safetensors; the .json sits beside it).
pub fn load_fixture(path: &Path) -> Result<(FixtureSpec, HashMap<String, Tensor>)> {
    let (json_path, text) = fixture_description(path)?;
    let spec: FixtureSpec = serde_json::from_str(&text)
        .map_err(|e| Error::Checkpoint { path: json_path.clone(), message: format!("bad fixture description: {e}") })?;
    if !path.exists() {
        return Err(Error::io(path, std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")));
    }
    let tensors = Tensor::read_safetensors(path)
        .map_err(|e| Error::Checkpoint { path: path.to_path_buf(), message: format!("not a readable safetensors file: {e}") })?;
    let tensors = tensors.into_iter().collect();
    official_kinds(path, &tensors)?;
    Ok((spec, tensors))
}

/// Checks that a fixture's tensors are what an official step writes: float32 values, all
/// finite, and int64 indices (the inputs' kinds are checked with their shapes). A weight stored as float16 was cast and read as the
/// implementation's mismatch (exit 1), and a NaN or an infinity failed every group while
/// each printed its worst error as 0.
///
/// # Errors
/// The first tensor that is not, named with its dtype or its first non-finite value.
pub(crate) fn official_kinds(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<()> {
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    for name in names {
        let t = &tensors[name];
        match t.kind() {
            // (an input's kind is checked with its shape, against the description: `input`;
            // indices are int64: the masks, MAE's `ids_restore`)
            _ if name.starts_with("input.") && t.kind() != Kind::Float => {}
            Kind::Int64 if name.starts_with("output.ids_") => {}
            Kind::Float => {
                let finite = t.f_isfinite()?.f_all()?.f_int64_value(&[])? == 1;
                if !finite {
                    let bad = t.f_isfinite()?.f_logical_not()?.f_sum(Kind::Int64)?.f_int64_value(&[])?;
                    return Err(Error::Checkpoint {
                        path: path.to_path_buf(),
                        message: format!("`{name}` holds {bad} NaN or infinite value(s): not a step's (no comparison can be made of it)"),
                    });
                }
            }
            k => {
                return Err(Error::Checkpoint {
                    path: path.to_path_buf(),
                    message: format!("`{name}` is {k:?}: a fixture holds the official step's float32 tensors and int64 indices (a cast one would be compared as a mismatch)"),
                })
            }
        }
    }
    Ok(())
}

pub(crate) fn get<'a>(all: &'a HashMap<String, Tensor>, key: &str, path: &Path) -> Result<&'a Tensor> {
    all.get(key).ok_or_else(|| Error::Checkpoint { path: path.to_path_buf(), message: format!("missing key `{key}`") })
}

/// An input of the fixture checked before the step: its dtype and each dimension the
/// description (or another input) fixes, `None` for any (a hand-edited or stale fixture got
/// libtorch's error with its C++ backtrace, or an index out of bounds).
pub(crate) fn input<'a>(all: &'a HashMap<String, Tensor>, key: &str, path: &Path, kind: Kind, dims: &[Option<i64>]) -> Result<&'a Tensor> {
    let t = get(all, key, path)?;
    let size = t.size();
    if t.kind() == kind && size.len() == dims.len() && size.iter().zip(dims).all(|(s, d)| d.is_none_or(|d| *s == d)) {
        return Ok(t);
    }
    let want = dims.iter().map(|d| d.map_or("*".to_string(), |d| d.to_string())).collect::<Vec<_>>().join(", ");
    Err(Error::Checkpoint { path: path.to_path_buf(), message: format!("input `{key}` is {:?} {size:?}, where the fixture's description calls for {kind:?} [{want}]", t.kind()) })
}

/// A fixture's initial weights that do not load into the model its description builds: the
/// description named as a cause beside the key (named in full by the caller's
/// `load_strict_from`): a `depth 3` written over a 2-block fixture said "missing key
/// `blocks.2.norm1.weight`", a key of no file, blaming the tensors alone.
pub(crate) fn of_description(e: Error) -> Error {
    match e {
        Error::Checkpoint { path, message } => {
            let description = path.with_extension("json").file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            Error::Checkpoint { path, message: format!("{message}: the fixture's tensors and its description ({description}) are of different models") }
        }
        e => e,
    }
}

/// Checks a count the fixture's description states (`batch`, `n_targets`, ...) against what
/// its tensors hold: an edited or stale description replayed what the tensors said and passed.
pub(crate) fn stated(path: &Path, what: &str, said: Option<i64>, holds: i64) -> Result<()> {
    match said {
        Some(s) if s != holds => Err(Error::Checkpoint {
            path: path.with_extension("json"),
            message: format!("says {what} {s}, but the fixture's tensors hold {holds}: the description and the tensors are of different steps"),
        }),
        _ => Ok(()),
    }
}

/// Checks that a setting the description states and the replay cannot change (`what`, a
/// constant of the official model, `fixed`) is that constant: an edited description was
/// ignored and still passed.
pub(crate) fn fixed_in_replay(path: &Path, what: &str, said: Option<f64>, fixed: f64) -> Result<()> {
    match said {
        Some(s) if s != fixed => Err(Error::Checkpoint {
            path: path.with_extension("json"),
            message: format!("says {what} {s}, but the replay computes with the official {fixed} (a fixed constant of its model): not a step it can replay"),
        }),
        _ => Ok(()),
    }
}

/// Checks that each of the description's `values` (`(name, value, whether it is in range,
/// the range)`) can be a step's: an AdamW eps of -1e-8 or a momentum of 2 replayed NaNs and
/// read as a mismatch of the implementation (exit 1), not of the description.
pub(crate) fn in_range(path: &Path, values: &[(&str, f64, bool, &str)]) -> Result<()> {
    match values.iter().find(|(_, v, ok, _)| !(*ok && v.is_finite())) {
        Some((what, v, _, range)) => Err(Error::Checkpoint { path: path.with_extension("json"), message: format!("says {what} {v}, which must be {range}: no step has it") }),
        None => Ok(()),
    }
}

/// Checks that the patch indices of the mask input `key` are in `0..n` (the patch grid).
fn indices_below(t: &Tensor, key: &str, path: &Path, n: i64) -> Result<()> {
    if t.numel() == 0 {
        return Ok(());
    }
    let (lo, hi) = (t.f_min()?.f_int64_value(&[])?, t.f_max()?.f_int64_value(&[])?);
    if lo < 0 || hi >= n {
        return Err(Error::Checkpoint { path: path.to_path_buf(), message: format!("input `{key}` holds patch indices {lo}..={hi}, outside the {n} patches of the description's grid") });
    }
    Ok(())
}

/// Replays the fixture's step (fp32, CPU) and compares everything.
pub fn run(path: &Path, perturb: Perturb) -> Result<ParityReport> {
    run_with_weights(path, perturb, None)
}

/// Like [`run`], but the initial weights come from `weights` (any checkpoint file
/// [`import::load_models`] reads, e.g. an official `.pth.tar`) instead of the fixture's `init.*`.
pub fn run_with_weights(path: &Path, perturb: Perturb, weights: Option<&Path>) -> Result<ParityReport> {
    run_with_weights_on(path, perturb, weights, Device::Cpu)
}

/// Moves a fixture's tensors to `device` (a no-op on the CPU). On CUDA it also switches cuDNN
/// off for the replay: its convolutions may use TF32, which would take the patch embedding's
/// float32 product to 10-bit mantissas.
pub(crate) fn to_device(t: HashMap<String, Tensor>, device: Device) -> Result<HashMap<String, Tensor>> {
    if device == Device::Cpu {
        return Ok(t);
    }
    if device.is_cuda() {
        tch::Cuda::set_user_enabled_cudnn(false);
    }
    t.into_iter().map(|(k, v)| Ok((k, v.f_to_device(device)?))).collect()
}

/// Like [`run_with_weights`], on `device` (cuDNN off on CUDA, see `to_device`); the
/// comparison still happens in float64 on the CPU.
pub fn run_with_weights_on(path: &Path, perturb: Perturb, weights: Option<&Path>, device: Device) -> Result<ParityReport> {
    let (f, t) = load_fixture(path)?;
    // (a negative lr or weight decay, which torch's AdamW refuses, was replayed and read as
    // the implementation's mismatch, exit 1, at a tolerance of 10^308)
    in_range(path, &[
        ("optimizer lr", f.optimizer.lr, f.optimizer.lr >= 0.0, "at least 0"),
        ("optimizer weight_decay", f.optimizer.weight_decay, f.optimizer.weight_decay >= 0.0, "at least 0"),
        ("optimizer eps", f.optimizer.eps, f.optimizer.eps > 0.0, "positive"),
        ("ema_momentum", f.ema_momentum, (0.0..=1.0).contains(&f.ema_momentum), "in [0, 1]"),
        ("optimizer beta1", f.optimizer.betas.0, (0.0..1.0).contains(&f.optimizer.betas.0), "in [0, 1)"),
        ("optimizer beta2", f.optimizer.betas.1, (0.0..1.0).contains(&f.optimizer.betas.1), "in [0, 1)"),
    ])?;
    let t = to_device(t, device)?;
    let encoder = VitConfig {
        image_size: f.image_size,
        patch_size: f.patch_size,
        embed_dim: f.embed_dim,
        depth: f.depth,
        num_heads: f.heads,
        mlp_ratio: f.mlp_ratio,
        eps: f.layer_norm_eps,
        rescale_init: false,
        cls_token: false,
        learned_pos_embed: false,
    };
    // an edited description is refused by name (a patch of 0 divided by zero below)
    encoder.validate().map_err(|e| {
        let e = match e {
            Error::Config(m) => m,
            e => e.to_string(),
        };
        Error::Checkpoint { path: path.with_extension("json"), message: format!("the description's encoder: {e}") }
    })?;
    // the images against the description's side before a model of that side is built (an
    // edited `image_size` of 2^33 overflowed building the position table: a panic, not exit 2)
    let side = Some(f.image_size as i64);
    let images = input(&t, "input.images", path, Kind::Float, &[None, Some(3), side, side])?;
    let predictor = PredictorConfig {
        out_dim: encoder.embed_dim,
        grid: encoder.grid(),
        encoder_dim: f.embed_dim,
        embed_dim: f.predictor_width,
        depth: f.predictor_depth,
        num_heads: f.heads,
        mlp_ratio: f.predictor_mlp_ratio,
        eps: f.layer_norm_eps,
        rescale_init: false,
    };
    let spec = IJepaSpec {
        encoder,
        predictor,
        loss: LossKind::SmoothL1,
        target: Default::default(),
        bf16: false,
        betas: perturb.betas.unwrap_or(f.optimizer.betas),
        eps: f.optimizer.eps,
    };
    let mut m = IJepa::new(&spec, 0, device)?;
    match weights {
        None => {
            m.encoder_store.load_strict_from(&sub_map(&t, "init.encoder."), path, "init.encoder.").map_err(of_description)?;
            m.predictor_store.load_strict_from(&sub_map(&t, "init.predictor."), path, "init.predictor.").map_err(of_description)?;
            m.target_store()?.load_strict_from(&sub_map(&t, "init.encoder."), path, "init.encoder.").map_err(of_description)?;
        }
        Some(w) => {
            let models = import::load_models(w)?;
            let missing = |what: &str| Error::Checkpoint { path: w.to_path_buf(), message: format!("holds no {what}") };
            let enc = models.encoder.as_ref().ok_or_else(|| missing("encoder"))?;
            let pred = models.predictor.as_ref().ok_or_else(|| missing("predictor"))?;
            let target = models.target_encoder.as_ref().unwrap_or(enc);
            // (weights of another dtype were cast and read as the implementation's mismatch,
            // exit 1, as a fixture's were)
            for (prefix, sd) in [("encoder.", enc), ("predictor.", pred), ("target_encoder.", target)] {
                let named: HashMap<String, Tensor> = import::to_map(sd).into_iter().map(|(k, t)| (format!("{prefix}{k}"), t)).collect();
                official_kinds(w, &named)?;
            }
            m.encoder_store.load_strict(&import::to_map(enc), w)?;
            m.predictor_store.load_strict(&import::to_map(pred), w)?;
            m.target_store()?.load_strict(&import::to_map(target), w)?;
        }
    }

    let batch = Some(images.size()[0]);
    let patches = (f.image_size / f.patch_size.max(1)).pow(2) as i64;
    let split = |key: &str| -> Result<Vec<Tensor>> {
        let m = input(&t, key, path, Kind::Int64, &[None, batch, None])?;
        indices_below(m, key, path, patches)?;
        // (no block: `cat` of none, libtorch's error with its backtrace, exit 1 as a mismatch)
        if m.size()[0] == 0 {
            return Err(Error::Checkpoint { path: path.to_path_buf(), message: format!("input `{key}` holds no block: a step samples at least one context and one target block") });
        }
        // (a block of no patch: the loss is a mean over none, NaN, read as a mismatch)
        if m.size()[2] == 0 {
            return Err(Error::Checkpoint { path: path.to_path_buf(), message: format!("input `{key}` keeps no patch of an image: no step has it") });
        }
        Ok((0..m.size()[0]).map(|i| m.get(i)).collect())
    };
    let (masks_enc, masks_pred) = (split("input.masks_enc")?, split("input.masks_pred")?);
    stated(path, "batch", f.batch, images.size()[0])?;
    stated(path, "n_targets", f.n_targets, masks_pred.len() as i64)?;
    stated(path, "n_context", f.n_context, masks_enc.len() as i64)?;
    if let Some(kind) = f.optimizer.kind.as_deref().filter(|k| *k != "adamw") {
        return Err(Error::Checkpoint { path: path.with_extension("json"), message: format!("says optimizer {kind:?}: the replay steps AdamW, the official code's") });
    }
    let hyper = Hyper {
        lr: f.optimizer.lr * perturb.lr_scale.unwrap_or(1.0),
        wd: f.optimizer.weight_decay * perturb.wd_scale.unwrap_or(1.0),
        momentum: perturb.momentum.unwrap_or(f.ema_momentum),
    };
    // the weights before the step: "updates" compares after minus before
    let target_store = m.target_store()?.clone();
    let before: HashMap<String, Tensor> = [("encoder", &m.encoder_store), ("predictor", &m.predictor_store), ("target_encoder", &target_store)]
        .iter()
        .flat_map(|(prefix, store)| store.named().into_iter().map(move |(n, t)| (format!("{prefix}.{n}"), t.copy())))
        .collect();
    let fwd = m.train_step(images, &masks_enc, &masks_pred, hyper)?;
    if let Some(prefix) = perturb.zero_grads {
        tch::no_grad(|| {
            for slot in m.optimizer.slots.iter().filter(|s| s.name.starts_with(prefix)) {
                let _ = slot.param.grad().zero_();
            }
        });
    }

    let mut cs = Vec::new();
    for (name, ours) in [("target", &fwd.target), ("context", &fwd.context), ("prediction", &fwd.prediction)] {
        cs.push(compare("outputs", name, ours, get(&t, &format!("output.{name}"), path)?)?);
    }
    let loss = fwd.loss.double_value(&[]);
    cs.push(compare("loss", "loss", &Tensor::from(loss), &Tensor::from(f.loss_value))?);
    let mut official_grads = HashMap::new();
    for slot in &m.optimizer.slots {
        let key = format!("grad.{}", slot.name);
        let Some(official) = t.get(&key) else {
            return Err(Error::Checkpoint { path: path.to_path_buf(), message: format!("missing key `{key}`") });
        };
        cs.push(compare("gradients", &slot.name, &slot.param.grad(), official)?);
        official_grads.insert(slot.name.clone(), official.shallow_clone());
    }
    compare_moments(&mut cs, &m.optimizer.slots, &t, |name| Some(name.to_string()), path)?;
    let expected_grads = t.keys().filter(|k| k.starts_with("grad.")).count();
    if expected_grads != m.optimizer.slots.len() {
        return Err(Error::Checkpoint {
            path: path.to_path_buf(),
            message: format!("fixture has {expected_grads} gradients, the model {} trainable tensors", m.optimizer.slots.len()),
        });
    }
    for (prefix, store) in [("encoder", &m.encoder_store), ("predictor", &m.predictor_store), ("target_encoder", &target_store)] {
        for (name, ours) in store.named() {
            let key = format!("after.{prefix}.{name}");
            let full = format!("{prefix}.{name}");
            // the trained weights' first AdamW update, bounded as the other recipes' (a
            // gradient that is rounding noise may turn the update's sign: measured on an AMD
            // EPYC, where the same fixture's fc weights moved 2.5e-4 of their scale apart at such
            // elements); the EMA target's update (no gradient) within the plain tolerance and
            // the rounding of its weights
            cs.push(compare_first_adamw_update(&full, &ours, &before[&full], get(&t, &key, path)?, official_grads.get(&full).map(|g| (g, 1.0)), f.optimizer.lr, f.optimizer.eps)?);
        }
    }
    Ok(ParityReport { fixture: path.to_path_buf(), comparisons: cs, loss: (loss, f.loss_value) })
}

/// Compares AdamW's moments after the step (`exp_avg`, `exp_avg_sq` of each slot) with the
/// fixture's `opt.exp_avg.<key>` / `opt.exp_avg_sq.<key>`, `key` the official name of a slot
/// (`None`: a slot the official step did not update, e.g. DINO's cancelled last layer, whose
/// moments must still be zero). A fixture records every updated tensor's moments or none (an
/// older fixture: nothing compared).
///
/// # Errors
/// A fixture with some moments but not those of every updated tensor.
pub(crate) fn compare_moments(
    cs: &mut Vec<Comparison>,
    slots: &[ijepa_engine::optim::Slot],
    t: &HashMap<String, Tensor>,
    key: impl Fn(&str) -> Option<String>,
    path: &Path,
) -> Result<()> {
    let recorded = t.keys().filter(|k| k.starts_with("opt.")).count();
    if recorded == 0 {
        return Ok(());
    }
    let mut compared = 0;
    for slot in slots {
        for (moment, ours) in [("exp_avg", &slot.exp_avg), ("exp_avg_sq", &slot.exp_avg_sq)] {
            let name = format!("{moment}.{}", slot.name);
            match key(&slot.name) {
                Some(k) => {
                    cs.push(compare("moments", &name, ours, get(t, &format!("opt.{moment}.{k}"), path)?)?);
                    compared += 1;
                }
                None => cs.push(compare("moments", &name, ours, &ours.zeros_like())?),
            }
        }
    }
    if compared != recorded {
        return Err(Error::Checkpoint { path: path.to_path_buf(), message: format!("fixture has {recorded} AdamW moments, the replay compared {compared}") });
    }
    Ok(())
}

/// Reads a fixture's JSON description (`what` names the recipe in errors) and its tensors,
/// moved to `device`.
///
/// # Errors
/// An unreadable or malformed file, naming it.
pub(crate) fn read_fixture<T: serde::de::DeserializeOwned>(path: &Path, what: &str, device: Device) -> Result<(T, HashMap<String, Tensor>)> {
    let (json_path, text) = fixture_description(path)?;
    let f: T = serde_json::from_str(&text)
        .map_err(|e| Error::Checkpoint { path: json_path.clone(), message: format!("bad {what} fixture description: {e}") })?;
    let t: HashMap<String, Tensor> = Tensor::read_safetensors(path)
        .map_err(|e| Error::Checkpoint { path: path.to_path_buf(), message: format!("not a readable safetensors file: {e}") })?
        .into_iter()
        .collect();
    official_kinds(path, &t)?;
    Ok((f, to_device(t, device)?))
}

/// Compares what one step changed in a tensor (`ours - was` against `after - was`) per
/// element: within the updates' tolerance of the tensor's scale, two float32 roundings of the
/// weight ([`ROUNDING`]), and what the gradient tolerance becomes through AdamW's first step
/// (`lr * eps / (|g| + eps)^2` per unit of gradient error, with `grad` the official gradient
/// that drove the update, if any), which is wide only where a gradient is rounding noise.
///
/// # Errors
/// libtorch's.
pub(crate) fn compare_first_adamw_update(name: &str, ours: &Tensor, was: &Tensor, after: &Tensor, grad: Option<(&Tensor, f64)>, lr: f64, adam_eps: f64) -> Result<Comparison> {
    for (group, official) in [("updates", Some(after)), ("gradients", grad.map(|g| g.0))] {
        if let Some(t) = official.filter(|t| t.size() != was.size()) {
            return Err(shapes_differ(group, name, &t.size(), &was.size()));
        }
    }
    let want = after - was;
    let mut c = compare("updates", name, &(ours - was), &want)?;
    let rounding = ROUNDING * was.abs().max().double_value(&[]);
    let tol = tolerance("updates").rel;
    let slope_bound = match grad {
        // (`share`: of the update the gradient drives, 1 - m of it for an EMA teacher)
        Some((g, share)) => {
            let dg = tolerance("gradients").rel * g.abs().max().double_value(&[]);
            let denom = (g.abs() + adam_eps).square();
            (denom.reciprocal() * (share * lr * adam_eps * dg)).to_kind(Kind::Double)
        }
        None => Tensor::zeros_like(&want).to_kind(Kind::Double),
    };
    let diff = (ours - was - &want).abs().to_kind(Kind::Double);
    let bound = slope_bound + (tol * c.scale + rounding);
    let within = diff.le_tensor(&bound).all().int64_value(&[]) == 1;
    c.pass = c.max_abs.is_finite() && within;
    c.of_tolerance = if diff.numel() == 0 { 0.0 } else { (diff / bound.clamp_min(f64::MIN_POSITIVE)).max().double_value(&[]) };
    c.rel = c.max_abs / c.scale.max(rounding / tol).max(f64::MIN_POSITIVE);
    Ok(c)
}

/// The JSON of a MAE fixture (`scripts/make-mae-parity-fixture.py`).
#[derive(Debug, Clone, Deserialize)]
pub struct MaeFixtureSpec {
    /// Image side.
    pub image_size: usize,
    /// Patch side.
    pub patch: usize,
    /// Encoder width, depth, heads.
    pub width: usize,
    /// Encoder depth.
    pub depth: usize,
    /// Encoder heads.
    pub heads: usize,
    /// Decoder width.
    pub dec_width: usize,
    /// Decoder depth.
    pub dec_depth: usize,
    /// Decoder heads.
    pub dec_heads: usize,
    /// MLP ratio (encoder and decoder).
    pub mlp_ratio: f64,
    /// LayerNorm eps.
    pub eps: f64,
    /// The normalised-pixel target's eps (official 1e-6, fixed in the replay).
    #[serde(default)]
    pub norm_pix_eps: Option<f64>,
    /// Masked fraction.
    pub mask_ratio: f64,
    /// Per-patch normalised targets.
    pub norm_pix_loss: bool,
    /// Learning rate of the step.
    pub lr: f64,
    /// Weight decay of the step.
    pub wd: f64,
    /// AdamW betas.
    pub betas: (f64, f64),
    /// AdamW eps.
    pub adam_eps: f64,
    /// The official loss.
    pub loss: f64,
    /// Images of the step (checked against the tensors).
    #[serde(default)]
    pub batch: Option<i64>,
    /// Patches per image (checked against the image and patch sizes).
    #[serde(default)]
    pub num_patches: Option<i64>,
    /// Patches kept visible (checked against `mask_ratio`: `int(L * (1 - mask_ratio))`).
    #[serde(default)]
    pub len_keep: Option<i64>,
}

/// Which recipe a fixture records: its JSON's `recipe` (I-JEPA's fixtures predate the field).
pub fn fixture_recipe(path: &Path) -> Result<String> {
    let (json_path, text) = fixture_description(path)?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Checkpoint { path: json_path.clone(), message: format!("bad fixture description: {e}") })?;
    Ok(v.get("recipe").and_then(|r| r.as_str()).unwrap_or("ijepa").to_string())
}

/// Replays the fixture's step with the recipe it names (`ijepa parity` uses this).
///
/// # Errors
/// An unreadable or malformed fixture, or `weights` given for a recipe other than I-JEPA.
pub fn run_any(path: &Path, perturb: Perturb, weights: Option<&Path>) -> Result<ParityReport> {
    run_any_on(path, perturb, weights, Device::Cpu)
}

/// Like [`run_any`], on `device` (`ijepa parity --device cuda`).
///
/// # Errors
/// As [`run_any`].
pub fn run_any_on(path: &Path, perturb: Perturb, weights: Option<&Path>, device: Device) -> Result<ParityReport> {
    // a model the description's values cannot build is the description's error, named so
    // (DINO's `depth 0`, I-JEPA's `predictor_depth 0` read "config: ..." of no file)
    let described = |r: Result<ParityReport>| {
        r.map_err(|e| match e {
            Error::Config(m) => Error::Checkpoint { path: path.with_extension("json"), message: format!("the description's model: {m}") },
            Error::Data(m) => Error::Checkpoint { path: path.to_path_buf(), message: m },
            e => e,
        })
    };
    match fixture_recipe(path)?.as_str() {
        "ijepa" => described(run_with_weights_on(path, perturb, weights, device)),
        "mae" if weights.is_none() => described(run_mae_on(path, perturb, device)),
        "mae" => Err(Error::Config("--weights replaces I-JEPA fixtures' initial weights; a MAE fixture has its own".into())),
        "dino" if weights.is_none() => described(crate::dino::parity::run_on(path, perturb, device)),
        "dino" => Err(Error::Config("--weights replaces I-JEPA fixtures' initial weights; a DINO fixture has its own".into())),
        other => Err(Error::Checkpoint { path: path.to_path_buf(), message: format!("fixture of unknown recipe `{other}`") }),
    }
}

/// Replays a MAE fixture's step (fp32, CPU): outputs, loss, gradients and AdamW updates.
///
/// The updates are compared per element against the tensor's tolerance plus what the
/// gradient tolerance becomes through AdamW's first step: the step is
/// `lr * g / (|g| + eps)`, whose slope `lr * eps / (|g| + eps)^2` turns a gradient error of
/// `dg` (at most the gradient group's tolerance times the gradient's scale) into an update
/// error; where |g| is near rounding noise (the key part of `attn.qkv.bias`, whose gradient is
/// zero in exact arithmetic) that slope is steep and the bound is wide, elsewhere it is tiny.
///
/// # Errors
/// A malformed fixture.
pub fn run_mae(path: &Path, perturb: Perturb) -> Result<ParityReport> {
    run_mae_on(path, perturb, Device::Cpu)
}

/// Like [`run_mae`], on `device` (cuDNN off on CUDA, as [`run_with_weights_on`]).
///
/// # Errors
/// A malformed fixture.
pub fn run_mae_on(path: &Path, perturb: Perturb, device: Device) -> Result<ParityReport> {
    use crate::mae::{DecoderConfig, Mae, MaeSpec};
    let (f, t): (MaeFixtureSpec, _) = read_fixture(path, "MAE", device)?;
    in_range(path, &[
        ("lr", f.lr, f.lr >= 0.0, "at least 0"),
        ("wd", f.wd, f.wd >= 0.0, "at least 0"),
        ("adam_eps", f.adam_eps, f.adam_eps > 0.0, "positive"),
        ("beta1", f.betas.0, (0.0..1.0).contains(&f.betas.0), "in [0, 1)"),
        ("beta2", f.betas.1, (0.0..1.0).contains(&f.betas.1), "in [0, 1)"),
    ])?;
    let encoder = VitConfig {
        image_size: f.image_size,
        patch_size: f.patch,
        embed_dim: f.width,
        depth: f.depth,
        num_heads: f.heads,
        mlp_ratio: f.mlp_ratio,
        eps: f.eps,
        rescale_init: false,
        cls_token: true,
        learned_pos_embed: false,
    };
    // (before its grid is read: a patch of 0 divided by zero; `run_any_on` names the
    // description of a model that cannot be built)
    encoder.validate()?;
    // (the images against the description's side before the model is built, as the I-JEPA
    // replay checks them)
    let side = Some(f.image_size as i64);
    let images = input(&t, "input.imgs", path, Kind::Float, &[None, Some(3), side, side])?;
    let decoder = DecoderConfig {
        grid: encoder.grid(),
        patch_size: f.patch,
        encoder_dim: f.width,
        embed_dim: f.dec_width,
        depth: f.dec_depth,
        num_heads: f.dec_heads,
        mlp_ratio: f.mlp_ratio,
        eps: f.eps,
    };
    let spec = MaeSpec { encoder, decoder, mask_ratio: f.mask_ratio, norm_pix_loss: f.norm_pix_loss, betas: perturb.betas.unwrap_or(f.betas), eps: f.adam_eps, bf16: false };
    let mut m = Mae::new(&spec, 0, device)?;
    // official names are flat: the decoder's start with `decoder_` or are the mask token
    let is_decoder = |k: &str| k.starts_with("decoder_") || k == "mask_token";
    let init = sub_map(&t, "init.");
    let pick = |dec: bool| init.iter().filter(|(k, _)| is_decoder(k) == dec).map(|(k, v)| (k.clone(), v.shallow_clone())).collect::<HashMap<_, _>>();
    m.encoder_store.load_strict_from(&pick(false), path, "init.").map_err(of_description)?;
    m.decoder_store.load_strict_from(&pick(true), path, "init.").map_err(of_description)?;
    let official = |k: &str| k.split_once('.').map(|(_, rest)| rest.to_string()).unwrap_or_default();

    let patches = (f.image_size / f.patch.max(1)).pow(2) as i64;
    let noise = input(&t, "input.noise", path, Kind::Float, &[Some(images.size()[0]), Some(patches)])?;
    stated(path, "batch", f.batch, images.size()[0])?;
    stated(path, "num_patches", f.num_patches, patches)?;
    stated(path, "len_keep", f.len_keep, (patches as f64 * (1.0 - f.mask_ratio)) as i64)?;
    fixed_in_replay(path, "norm_pix_eps", f.norm_pix_eps, 1e-6)?;
    let hyper = Hyper {
        lr: f.lr * perturb.lr_scale.unwrap_or(1.0),
        wd: f.wd * perturb.wd_scale.unwrap_or(1.0),
        momentum: 0.0,
    };
    let before: HashMap<String, Tensor> = m.state().into_iter().map(|(n, t)| (n, t.copy())).collect();
    let fwd = m.train_step(images, noise, hyper)?;
    if let Some(prefix) = perturb.zero_grads {
        tch::no_grad(|| {
            for slot in m.optimizer.slots.iter().filter(|s| s.name.starts_with(prefix)) {
                let _ = slot.param.grad().zero_();
            }
        });
    }
    let mut cs = Vec::new();
    for (name, ours) in [("latent", &fwd.latent), ("pred", &fwd.pred), ("mask", &fwd.mask), ("target", &fwd.target)] {
        cs.push(compare("outputs", name, ours, get(&t, &format!("output.{name}"), path)?)?);
    }
    let loss = fwd.loss.double_value(&[]);
    cs.push(compare("loss", "loss", &Tensor::from(loss), &Tensor::from(f.loss))?);
    let mut official_grads = HashMap::new();
    for slot in &m.optimizer.slots {
        let key = format!("grad.{}", official(&slot.name));
        let g = get(&t, &key, path)?;
        cs.push(compare("gradients", &slot.name, &slot.param.grad(), g)?);
        official_grads.insert(slot.name.clone(), g.shallow_clone());
    }
    compare_moments(&mut cs, &m.optimizer.slots, &t, |name| Some(official(name)), path)?;
    let expected = t.keys().filter(|k| k.starts_with("grad.")).count();
    if expected != m.optimizer.slots.len() {
        return Err(Error::Checkpoint {
            path: path.to_path_buf(),
            message: format!("fixture has {expected} gradients, the model {} trainable tensors", m.optimizer.slots.len()),
        });
    }
    for (name, ours) in m.state() {
        let after = get(&t, &format!("after.{}", official(&name)), path)?;
        cs.push(compare_first_adamw_update(&name, &ours, &before[&name], after, official_grads.get(&name).map(|g| (g, 1.0)), f.lr, f.adam_eps)?);
    }
    Ok(ParityReport { fixture: path.to_path_buf(), comparisons: cs, loss: (loss, f.loss) })
}
