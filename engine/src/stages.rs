//! Evaluation stages: after pretraining, each `eval` block of an experiment runs its protocol
//! on the frozen target encoder (and on the baselines it names) and writes
//! `runs/<experiment>/eval-<protocol>-<model>-<hash>/eval.json`, the record the reports read.
//! A stage whose `eval.json` exists is not repeated. Features are cached per checkpoint.

use crate::checkpoint::import;
use crate::data::{self, Dataset, EvalTransform, SampleTransform, Split};
use crate::error::{Error, Result};
use crate::eval::features::{self, FeatureKind, Features};
use crate::eval::{finetune, knn, linear, logistic, lowshot, ProbeResult};
use crate::model::vit::VisionTransformer;
use crate::model::ParamStore;
use crate::run_dir::{self, content_hash};
use ijepa_dsl::config::{Baseline, DataConfig, DatasetKind, EvalConfig, EvalProtocol, Experiment, FeatureChoice, HeadKind};
use ijepa_schema::{CurvePoint, EvalRecord, SweepPoint};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tch::Device;

/// The model an evaluation looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// The pretrained target encoder.
    Pretrained,
    /// The same architecture at its random initialisation.
    RandomInit,
    /// The normalised pixels.
    RawPixels,
}

impl Subject {
    /// Short name used in stage ids, folders and `eval.json`'s `model`: the recipe's name for
    /// the pretrained encoder (`ijepa`, `mae`), `random-init`, `raw-pixels`.
    pub fn key(self, recipe: &str) -> String {
        match self {
            Subject::Pretrained => recipe.to_string(),
            Subject::RandomInit => "random-init".into(),
            Subject::RawPixels => "raw-pixels".into(),
        }
    }

    /// The method column of the report tables (`I-JEPA (ours)`, `MAE (ours)`, ...).
    pub fn method(self, recipe: &str) -> String {
        match self {
            Subject::Pretrained => format!("{} (ours)", display_name(recipe)),
            // I-JEPA's is the reference; another recipe's initialisation is named (MAE's
            // differs: xavier weights, a class token)
            Subject::RandomInit if recipe == "ijepa" => "random init".into(),
            Subject::RandomInit => format!("random init ({})", display_name(recipe)),
            Subject::RawPixels => "raw pixels".into(),
        }
    }
}

/// A recipe's display name (`I-JEPA`, `MAE`; the registry name for others).
pub fn display_name(recipe: &str) -> String {
    ijepa_dsl::recipes::schema(recipe).map(|s| s.display).unwrap_or_else(|| recipe.to_string())
}

/// The method column of a subject, by its source: our pretraining is "I-JEPA (ours)" (the
/// recipe's display name); an encoder from a checkpoint file (`ijepa eval --checkpoint`, e.g.
/// an official `.pth.tar`) is named by that file, never passed off as ours, and by the module
/// evaluated where the file's settings choose another than the recipe's usual one (a `target
/// "pixels"` file scores the context `encoder` of the same file: two rows read alike).
pub fn method_of(subject: Subject, source: &Source, exp: &Experiment) -> String {
    match (subject, &source.pretrain_dir) {
        // (the module before the file: the report tells rows of one file name apart by a
        // label that ends in " (file)")
        (Subject::Pretrained, None) => format!(
            "{}{} ({})",
            display_name(&exp.recipe),
            module_unless_usual(exp).map_or(String::new(), |m| format!(" `{m}`")),
            source.checkpoint.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "checkpoint".into())
        ),
        _ => subject.method(&exp.recipe),
    }
}

/// Where the weights come from and what they are.
#[derive(Debug, Clone)]
pub struct Source {
    /// The checkpoint file (ours or an official `.pth.tar`).
    pub checkpoint: PathBuf,
    /// The pretraining run folder, when the checkpoint came from one.
    pub pretrain_dir: Option<PathBuf>,
}

/// A checkpoint read once, for `ijepa eval`: its SHA-256, the training position its header
/// records and the weights of the module evaluated, all of one version of the file. A run's
/// `latest`, evaluated while the run trains, is replaced every few steps: read apart, the hash,
/// the step and the weights were of other versions (one `ijepa eval` recorded steps 80, 105
/// and 145 under one hash, and could compute features of other weights than it hashed).
struct Held {
    sha256: String,
    position: Option<crate::checkpoint::state::Position>,
    /// The pretraining epochs the weights had: a training checkpoint's at an epoch's end, an
    /// official checkpoint's `epoch`, a run's final weights' (its `epochs`); none mid-epoch.
    epochs: Option<u64>,
    /// The evaluated module's weights and the prefix of their names in the file.
    weights: (import::StateDict, String),
}

/// A file's identity: a rename over it or a rewrite in place changes it.
fn identity(path: &Path) -> Result<(u64, u64, u64, Option<std::time::SystemTime>)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    Ok((m.dev(), m.ino(), m.len(), m.modified().ok()))
}

/// The weights of the evaluated module of a checkpoint's models, and their names' prefix.
type Select<'a> = &'a dyn Fn(&import::Models) -> Result<(import::StateDict, String)>;

/// Reads `path` as [`Held`], the weights `select` picks: again while the file changed under
/// the reading (at most 5 times).
fn read_held(path: &Path, select: Select) -> Result<Held> {
    const TRIES: usize = 5;
    for _ in 0..TRIES {
        let before = identity(path)?;
        let sha256 = crate::checkpoint::state::sha256_file(path)?;
        let position = crate::checkpoint::state::position_of(path);
        let models = import::load_models(path)?;
        let weights = select(&models)?;
        if identity(path)? == before {
            // (the official checkpoint's `epoch` is the epochs done: it saves epoch + 1)
            let official = || models.info.iter().find(|(k, _)| k == "epoch").and_then(|(_, v)| v.parse::<u64>().ok());
            let epochs = match position {
                Some(p) => (p.step_in_epoch == 0).then_some(p.epoch),
                None => official(),
            };
            return Ok(Held { sha256, position, epochs, weights });
        }
    }
    Err(Error::Checkpoint {
        path: path.to_path_buf(),
        message: format!(
            "was written again each of the {TRIES} times it was read (a run's `latest` as the run trains?): evaluate a copy of it, or a checkpoint the run no longer writes (an epoch checkpoint, its final weights)"
        ),
    })
}

fn dataset_label(kind: &DatasetKind) -> &'static str {
    match kind {
        DatasetKind::FashionMnist => "Fashion-MNIST",
        DatasetKind::Mnist => "MNIST-family",
        DatasetKind::ImageFolder => "image folder",
        DatasetKind::Cifar10 => "CIFAR-10",
        DatasetKind::Cifar100 => "CIFAR-100",
    }
}

/// The evaluation transform: ImageNet's resize 256 / centre crop 224 ratio for image folders,
/// a plain resize to the crop size for the small-image datasets.
/// The evaluation transform of an experiment's data (also what the monitors see).
pub fn eval_transform(exp: &Experiment) -> Result<EvalTransform> {
    let crop = exp.data.crop_size;
    match exp.data.dataset {
        DatasetKind::ImageFolder => EvalTransform::new(crop * 256 / 224, crop),
        _ => EvalTransform::resize_only(crop),
    }
}

/// The weights of the module `exp`'s recipe evaluates in `models` (read from `path`), and the
/// prefix of their names there.
fn feature_weights(exp: &Experiment, models: &import::Models, path: &Path) -> Result<(import::StateDict, String)> {
    let entry = crate::recipe::entry(&exp.recipe)?;
    // a bare `encoder` (an export) stands for the recipe's module; beside other modules
    // it is another recipe's (MAE's encoder and decoder under DINO, which reads `teacher`)
    let held = models.module_names();
    let bare = held == ["encoder"];
    let module = (entry.feature_module)(exp);
    // (modules of the recipe's own without the evaluated one, a DINO checkpoint of its student
    // alone, were asked whether they were another recipe's)
    let own = !held.is_empty() && held.iter().all(|m| entry.modules.iter().any(|o| o == m));
    // (one `ijepa export --encoder context` writes alone: I-JEPA's `encoder`, DINO's student)
    let context = held.iter().any(|m| *m == "encoder" || *m == "student.backbone");
    let sd = models.module(&module).or(models.encoder.as_ref().filter(|_| bare)).ok_or_else(|| Error::Checkpoint {
        path: path.to_path_buf(),
        message: format!(
            "holds no `{module}`{} to evaluate, but {}: {} (recipe \"{}\" evaluates `{module}` here)",
            if module == "encoder" { "" } else { " (nor an `encoder` alone)" },
            if held.is_empty() { "no module".to_string() } else { held.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ") },
            match (own, context) {
                (true, true) => "modules of this recipe saved without the one it evaluates; to evaluate its context encoder, `ijepa export --format official --encoder context` writes it as an encoder alone",
                (true, false) => "modules of this recipe saved without the one it evaluates, nor an encoder to evaluate instead",
                (false, _) => "a checkpoint of another recipe?",
            },
            exp.recipe,
        ),
    })?;
    // (its keys named in full: a checkpoint holds several encoders)
    let prefix = if models.module(&module).is_some() { format!("{module}.") } else { String::new() };
    Ok((sd.iter().map(|(k, t)| (k.clone(), t.shallow_clone())).collect(), prefix))
}

/// Builds the encoder the experiment's recipe evaluates (its registry entry's shape) with the
/// weights of `source` (the recipe's feature module, e.g. I-JEPA's target encoder, when
/// present; `held` where `ijepa eval` read them already), or at the recipe's own
/// initialisation drawn on the CPU from the experiment's seed: the same weights on every
/// machine, those a pretraining on a CPU starts from (one on a GPU draws its own from CUDA's
/// generator, of the same distribution).
fn encoder(exp: &Experiment, source: &Source, subject: Subject, device: Device, held: Option<&Held>) -> Result<(ParamStore, VisionTransformer)> {
    let entry = crate::recipe::entry(&exp.recipe)?;
    let cfg = (entry.encoder_config)(exp);
    tch::manual_seed(exp.seed as i64);
    let store = ParamStore::new(device);
    let vit = VisionTransformer::new(&store.root(), &cfg)?;
    match subject {
        Subject::Pretrained => {
            let read;
            let (sd, prefix) = match held {
                Some(h) => &h.weights,
                None => {
                    read = feature_weights(exp, &import::load_models(&source.checkpoint)?, &source.checkpoint)?;
                    &read
                }
            };
            store.load_strict_from(&import::to_map(sd), &source.checkpoint, prefix)?;
        }
        _ => {
            // the recipe's initialisation (I-JEPA: trunc-normal; MAE: xavier, class token)
            // (through the registry's build: its checks of the built recipe, the module it
            // reads among them)
            let init = crate::recipe::build(exp, Device::Cpu, 0, 1)?;
            let map: std::collections::HashMap<String, tch::Tensor> = init.feature_state().into_iter().collect();
            store.load_strict(&map, Path::new("<the recipe's initialisation>"))?;
        }
    }
    Ok((store, vit))
}

/// Runs every `eval` block of `exp` on the checkpoint of `source` (and the baselines each
/// names), skipping stages already done; returns the stage folders. This is `ijepa eval
/// --checkpoint`: the stages are keyed by the checkpoint's SHA-256. (`ijepa run` goes through
/// the plan, which keys them by the pretraining's hash.) `point` is the sweep point `exp` is
/// (its study's name and varied settings, as the plan records them): the baselines go to the
/// study's folder, where `ijepa run` keeps them for every point, not the point's.
pub fn run_evals(exp: &Experiment, point: &EvalMeta, source: &Source, runs_dir: &Path, device: Device) -> Result<Vec<PathBuf>> {
    // before it is hashed: a device (`/dev/zero`) would be read without end
    crate::checkpoint::import::regular_file(&source.checkpoint)?;
    // (the run folder it lies in, looked up once: its config.json is read for both checks)
    let run = run_of_checkpoint(&source.checkpoint);
    check_run_encoder(exp, &source.checkpoint, run.as_ref())?;
    check_run_final(&source.checkpoint, run.as_ref().map(|(dir, _)| dir.as_path()))?;
    let mut shared = EvalCache::default();
    // the weights, and what computes features from them that they do not carry: the encoder's
    // head count (not in any shape) and the precision
    let ckpt_hash = shared.hold(exp, &source.checkpoint)?;
    // (of weights of the experiment's width: a file of another width was warned of at this
    // width's preset, then refused for its shape)
    let width = |h: &Held| h.weights.0.iter().find(|(k, _)| k.ends_with("patch_embed.proj.weight")).and_then(|(_, t)| t.size().first().copied());
    let of_this_width = shared.held.as_ref().and_then(width) == Some(exp.encoder.embed_dim as i64);
    if let Some(warning) = (run.is_none() && of_this_width).then(|| heads_unrecorded(exp, &source.checkpoint)).flatten() {
        tracing::warn!("{warning}");
    }
    // (a run's final weights carry no position: their epochs are the run's)
    if let (Some(held), Some((_, config))) = (shared.held.as_mut(), run.as_ref()) {
        if held.epochs.is_none() && source.checkpoint.file_name().is_some_and(|n| n == ijepa_schema::FINAL) {
            held.epochs = config.get("epochs").and_then(serde_json::Value::as_u64);
        }
    }
    // (the encoder as the plan spells it: a preset named and its numbers written out were two
    // stages of one evaluation; the module evaluated where the file's settings choose another
    // than its recipe's usual one: a `target "pixels"` file's context encoder shared the stage
    // of the target encoder of the same weights, and the first score was both files')
    let mut input = serde_json::json!({"weights": ckpt_hash, "encoder": encoder_spelled_alike(exp), "precision": exp.precision});
    if let Some(module) = module_unless_usual(exp) {
        input["module"] = module.into();
    }
    let input = content_hash(input.to_string().as_bytes());
    let mut out = Vec::new();
    for cfg in &exp.evals {
        for subject in subjects(cfg) {
            let (folder, varied) = match subject {
                Subject::Pretrained => (&exp.name, point.varied.clone()),
                _ => (&point.experiment, crate::plan::baseline_varied(&point.varied, cfg, subject, &exp.recipe)),
            };
            let (_, dir) = crate::plan::eval_stage(runs_dir, folder, exp, cfg, subject, &input);
            let meta = EvalMeta { experiment: point.experiment.clone(), varied };
            // as `ijepa run` holds each stage's folder: a second process on the same stage is
            // told who holds it instead of writing beside it
            let lock = crate::run_dir::StageLock::acquire(&dir)?;
            let done = run_eval(exp, cfg, subject, source, &dir, device, &meta, &mut shared);
            // (removed while still held; a process that opened the lock file just before fails
            // writing into the removed folder, with an error naming it, and is run again)
            if done.is_err() {
                // a stage that wrote nothing (a file that is no checkpoint) leaves no folder
                run_dir::remove_if_only_lock(&dir);
            }
            drop(lock);
            done?;
            out.push(dir);
        }
    }
    Ok(out)
}

/// The encoder's settings as the plan spells them ([`crate::plan::spelled_alike`]): named by
/// the preset of its numbers, if any, whether the file named the preset or wrote the numbers.
fn encoder_spelled_alike(exp: &Experiment) -> ijepa_dsl::config::EncoderConfig {
    let mut e = exp.encoder.clone();
    e.preset = e.preset_of_numbers().map(str::to_string);
    e
}

/// The module `exp` evaluates where it is not the one its recipe evaluates with its usual
/// targets (I-JEPA's context `encoder` under `target "pixels"`, which has no target encoder):
/// keyed into an `ijepa eval` stage and its features, which are those of other weights.
fn module_unless_usual(exp: &Experiment) -> Option<String> {
    let entry = crate::recipe::entry(&exp.recipe).ok()?;
    let module = (entry.feature_module)(exp);
    let usual = Experiment { target: Default::default(), ..exp.clone() };
    (module != (entry.feature_module)(&usual)).then_some(module)
}

/// The pretraining run folder a checkpoint lies in (`<run>/checkpoints/<file>`) and its
/// resolved experiment (`<run>/config.json`), when it is in one: as the path is written (a
/// run whose checkpoints folder is a symbolic link to scratch space), else with its symbolic
/// links resolved (a link to a run's checkpoint, or to its checkpoints folder, is that run's).
/// An unreadable `config.json` is warned about and reads as none.
pub fn run_of_checkpoint(checkpoint: &Path) -> Option<(PathBuf, serde_json::Value)> {
    let run_of = |c: &Path| {
        let run = c.parent().filter(|p| p.file_name() == Some(ijepa_schema::CHECKPOINTS.as_ref()))?.parent()?.to_path_buf();
        run.join(ijepa_schema::CONFIG_JSON).is_file().then_some(run)
    };
    let run = run_of(checkpoint).or_else(|| run_of(&checkpoint.canonicalize().ok()?))?;
    let config = run.join(ijepa_schema::CONFIG_JSON);
    let text = std::fs::read_to_string(&config).ok()?;
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(v) => Some((run, v)),
        Err(e) => {
            tracing::warn!("{} is not readable JSON ({e}): the checkpoint is not checked against the run that wrote it", config.display());
            None
        }
    }
}

/// What `precision "auto"` resolves to on the machine a run trained on, from the precision
/// its manifest records with the reason (`bf16 (native: ...)`, `fp32 (bf16 would be native:
/// ...)`, `fp32 (no native bf16: ...)`, `bf16 (emulated: ...)`); where the reason does not say
/// (earlier versions wrote `bf16 (auto: ...)`, `bf16 (this CPU has ...)` or a bare `fp32`), the
/// precision the run took; `None` for a manifest without one.
pub fn auto_where_trained(recorded: &str) -> Option<ijepa_dsl::config::Precision> {
    use ijepa_dsl::config::Precision;
    if recorded.contains("(native:") || recorded.contains("bf16 would be native") {
        Some(Precision::Bf16)
    } else if recorded.contains("no native bf16") || recorded.contains("(emulated:") {
        Some(Precision::Fp32)
    } else {
        match recorded.split_whitespace().next() {
            Some("bf16") => Some(Precision::Bf16),
            Some("fp32") => Some(Precision::Fp32),
            _ => None,
        }
    }
}

/// `ijepa eval --point WANT` of a checkpoint that another point of the same sweep trained:
/// refused, naming that point. Its scores would be filed under `want`'s values (the report's
/// sweep table), beside or instead of that point's own model. `points` are the sweep's points
/// as the file resolves them. A point trained the checkpoint when its
/// pretraining's hash ([`crate::plan::pretrain_hash`], at the process count and, for `auto`,
/// what it resolves to on the machine the run trained on: [`auto_where_trained`]) is the
/// run's: points that share one pretraining
/// (a sweep over the test set, over another recipe's settings) all did. Known only when the
/// checkpoint lies in a run folder ([`run_of_checkpoint`]) with a manifest, or is a copy of a
/// checkpoint that the manifest of a point's run in `runs_dir` records (by its SHA-256: a copy
/// was evaluated as any point's); a checkpoint that no point trained (an earlier version's
/// run, another file's, an export) is evaluated as before, labelled by its path.
///
/// # Errors
/// [`Error::Checkpoint`] naming the point that trained it and the settings apart.
pub fn check_checkpoint_point(points: &[ijepa_dsl::Point], want: &str, checkpoint: &Path, runs_dir: &Path) -> Result<()> {
    match run_of_checkpoint(checkpoint) {
        Some((run, _)) => check_run_point(points, want, checkpoint, &run, false),
        // (bytes two points' runs both wrote, a schedule's end no step reached: a copy is
        // either's; refused only when no run of them is `want`'s)
        None => {
            let verdicts: Vec<Result<()>> = runs_recording(points, checkpoint, runs_dir).iter().map(|run| check_run_point(points, want, checkpoint, run, true)).collect();
            match verdicts.iter().any(Result::is_ok) {
                true => Ok(()),
                false => verdicts.into_iter().next().unwrap_or(Ok(())),
            }
        }
    }
}

/// [`check_checkpoint_point`] of a checkpoint of the pretraining `run` (`copy`: a copy of one
/// outside it).
fn check_run_point(points: &[ijepa_dsl::Point], want: &str, checkpoint: &Path, run: &Path, copy: bool) -> Result<()> {
    use ijepa_dsl::config::Precision;
    let Some(manifest) = ijepa_schema::read_manifest(run) else { return Ok(()) };
    // (`auto` as it resolves on the machine the run trained on, which its manifest's reason
    // says: not the precision the run took, which a point may have written out)
    let recorded = auto_where_trained(&manifest.precision);
    // (under the name of the point that ran it: a pretraining's hash holds its name, and the
    // points that share it share the first one's)
    let as_trained = |exp: &Experiment| {
        let mut e = exp.clone();
        if let (Precision::Auto, Some(p)) = (e.precision, recorded) {
            e.precision = p;
        }
        e.name = manifest.experiment.clone();
        e
    };
    let trained = |exp: &Experiment| crate::plan::pretrain_hash(&as_trained(exp), manifest.world_size.max(1)) == manifest.hash;
    let Some(mine) = points.iter().find(|p| p.name == want).map(|p| &p.experiment) else { return Ok(()) };
    if trained(mine) {
        return Ok(());
    }
    let Some(other) = points.iter().find(|p| p.name != want && trained(&p.experiment)) else { return Ok(()) };
    // (the sweep's settings as its file writes them: `config.json`'s field names read
    // `optimizer.weight_decay.final_` and `encoder.embed_dim`; those of the pretraining alone,
    // as `plan::weight_settings_apart` leaves out the evaluations', the layout's, the logging's)
    let of_pretraining = |k: &str| !["eval.", "report", "distributed.", "log-every", "checkpoint.", "data.workers", "data.prefetch", "data.test-root"].iter().any(|p| k.starts_with(p));
    let apart: Vec<String> = points
        .iter()
        .find(|p| p.name == want)
        .map(|p| &p.varied)
        .into_iter()
        .flatten()
        .filter(|(k, _)| of_pretraining(k))
        .filter_map(|(k, v)| other.varied.get(k).filter(|o| *o != v).map(|o| format!("{k} {o} -> {v}")))
        .collect();
    let other = &other.name;
    Err(Error::Checkpoint {
        path: checkpoint.to_path_buf(),
        message: format!(
            "was trained by point `{other}` of this sweep ({}{}{}), not by `{want}`, whose pretraining is another: evaluated as `{want}`, its scores would be filed under `{want}`'s values in the report; evaluate it with `--point {other}`",
            if copy { "a copy of a checkpoint of " } else { "" },
            run.display(),
            if apart.is_empty() { String::new() } else { format!("; its settings against `{want}`'s: {}", apart.join(", ")) }
        ),
    })
}

/// The pretraining runs of the sweep's `points` (in `runs_dir`) whose manifests record a
/// checkpoint of `checkpoint`'s SHA-256: the runs it is a copy of one of. (The file is hashed
/// only where some point's run records a checkpoint.)
fn runs_recording(points: &[ijepa_dsl::Point], checkpoint: &Path, runs_dir: &Path) -> Vec<PathBuf> {
    let runs: Vec<(PathBuf, ijepa_schema::Manifest)> = points
        .iter()
        .flat_map(|p| std::fs::read_dir(runs_dir.join(&p.experiment.name)).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|d| d.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("pretrain-")))
        .filter_map(|d| ijepa_schema::read_manifest(&d).map(|m| (d, m)))
        .filter(|(_, m)| !m.checkpoints.is_empty())
        .collect();
    if runs.is_empty() {
        return Vec::new();
    }
    let Ok(sha) = crate::checkpoint::state::sha256_file(checkpoint) else { return Vec::new() };
    runs.into_iter().filter(|(_, m)| m.checkpoints.iter().any(|c| c.sha256 == sha)).map(|(d, _)| d).collect()
}

/// A finished run's `final.safetensors` must be the file that run wrote
/// ([`crate::plan::replaced_final`]), as `ijepa run` requires of it: another run's weights
/// copied over it were evaluated as this run's, and the report then left the results out as
/// "written again since", where evaluating again could not help. `run`: the run folder the
/// checkpoint lies in ([`run_of_checkpoint`]).
///
/// # Errors
/// [`Error::Checkpoint`] saying what to do ([`not_the_runs_final`]).
fn check_run_final(checkpoint: &Path, run: Option<&Path>) -> Result<()> {
    let Some(run) = run else { return Ok(()) };
    let fin = checkpoint.file_name().is_some_and(|n| n == ijepa_schema::FINAL) || checkpoint.canonicalize().is_ok_and(|c| c.file_name().is_some_and(|n| n == ijepa_schema::FINAL));
    if fin && crate::plan::replaced_final(run).is_some() {
        return Err(Error::Checkpoint { path: checkpoint.to_path_buf(), message: not_the_runs_final(run) });
    }
    Ok(())
}

/// When `checkpoint` lies in a pretraining run folder (`run`: [`run_of_checkpoint`]), the run must
/// have trained the experiment's recipe and encoder. The weights carry every shape but the
/// number of attention heads: another head count loads without a complaint and computes other
/// features, and its stage would share the folder (keyed by the weights) of the right
/// evaluation; another recipe's weights would be labelled as this recipe's. A checkpoint
/// elsewhere is checked by what its metadata records (the head count of ours, and of an
/// export under the official names the recipe that trained it); an official `.pth.tar` is not.
///
/// # Errors
/// [`Error::Checkpoint`] naming each setting that differs.
fn check_run_encoder(exp: &Experiment, checkpoint: &Path, run: Option<&(PathBuf, serde_json::Value)>) -> Result<()> {
    // a copy out of its run folder still records its head count (our checkpoints do), and so
    // does a copy into another run's folder (read by that run's config.json alone, it was
    // evaluated with the other run's head count): checked once the run's record agrees
    let own_record = || match crate::checkpoint::state::encoder_heads_of(checkpoint) {
        Some(Err(raw)) => Err(Error::Checkpoint { path: checkpoint.to_path_buf(), message: crate::checkpoint::state::damaged_heads(&raw) }),
        Some(Ok(h)) if h != exp.encoder.num_heads => Err(Error::Checkpoint {
            path: checkpoint.to_path_buf(),
            message: format!(
                "records an encoder of {h} attention heads (its metadata), where {} has {}: the weights load with any head count and compute other features; evaluate it with the experiment that trained it",
                exp.name, exp.encoder.num_heads
            ),
        }),
        // (an encoder exported under the official names records the recipe that trained it)
        _ => match crate::checkpoint::state::metadata_of(checkpoint).and_then(|m| m.get(crate::checkpoint::state::RECIPE).cloned()) {
            Some(recipe) if recipe != exp.recipe => Err(Error::Checkpoint {
                path: checkpoint.to_path_buf(),
                message: format!(
                    "records an encoder trained by {recipe} (its metadata), where {}'s recipe is {}: its scores would be filed as {}'s; evaluate it with an experiment of {recipe}",
                    exp.name, exp.recipe, exp.recipe
                ),
            }),
            _ => Ok(()),
        },
    };
    let Some((run, config)) = run else { return own_record() };
    let mut differ = Vec::new();
    if let Some(recipe) = config.get("recipe").and_then(|r| r.as_str()).filter(|r| *r != exp.recipe) {
        differ.push(format!("recipe {recipe} there, {} here", exp.recipe));
    }
    let theirs = &config["encoder"];
    let mine = serde_json::to_value(&exp.encoder).map_err(|e| Error::Train(format!("serialising the encoder config: {e}")))?;
    differ.extend(
        ["patch_size", "embed_dim", "depth", "num_heads", "mlp_ratio"]
            .iter()
            .filter(|k| theirs.get(**k).is_some_and(|v| Some(v) != mine.get(**k)))
            .map(|k| format!("{k} {} there, {} here", theirs[*k], mine[*k])),
    );
    if differ.is_empty() {
        return own_record();
    }
    Err(Error::Checkpoint {
        path: checkpoint.to_path_buf(),
        message: format!(
            "trained by {} with another recipe or encoder than {}'s ({}); evaluate it with the experiment that trained it (its config.kdl; config.json holds the resolved settings, the settings of the files it extends included)",
            run.display(),
            exp.name,
            differ.join(", ")
        ),
    })
}

/// A checkpoint no run folder holds and whose metadata records no head count (an official
/// `.pth.tar`, a state dict, an import made without `--heads`) is evaluated with the
/// experiment's: warned of where that count is not the one every official model of the width
/// has (the official code builds its models from those presets: a file of it evaluated with
/// `heads=6` at width 192 computed other features, said nowhere).
fn heads_unrecorded(exp: &Experiment, checkpoint: &Path) -> Option<String> {
    if crate::checkpoint::state::encoder_heads_of(checkpoint).is_some() {
        return None;
    }
    let (width, heads) = (exp.encoder.embed_dim, exp.encoder.num_heads);
    let &(preset, _, _, official, _) = ijepa_dsl::config::VIT_PRESETS.iter().find(|p| p.1 == width)?;
    (official != heads).then(|| format!(
        "{}: no tensor carries the encoder's attention-head count and the file records none: it is evaluated with {}'s {heads} heads, where the official models of width {width} ({}) have {official}; if it was trained with {official}, its features under {heads} are not the ones it learnt: write heads={official} on `encoder` (or record its count with `ijepa import-checkpoint --heads N`)",
        checkpoint.display(),
        exp.name,
        preset.replace('-', "_")
    ))
}

/// The models an `eval` block evaluates: the pretrained encoder, then its baselines.
pub fn subjects(cfg: &EvalConfig) -> Vec<Subject> {
    let mut out = vec![Subject::Pretrained];
    out.extend(cfg.baselines.iter().map(|b| match b {
        Baseline::RandomInit => Subject::RandomInit,
        Baseline::RawPixels => Subject::RawPixels,
    }));
    out
}

/// What an `eval.json` says about where it belongs.
#[derive(Debug, Clone, Default)]
pub struct EvalMeta {
    /// The experiment (the study's name in a sweep, so its points form one ablation table).
    pub experiment: String,
    /// The sweep point's settings (empty outside sweeps).
    pub varied: BTreeMap<String, String>,
}

/// The training and test splits of a dataset.
type Splits = (Arc<dyn Dataset>, Arc<dyn Dataset>);

/// What the evaluation stages of one invocation share, so that each is done once: the opened
/// datasets (per data config) and the SHA-256 of each checkpoint (the feature-cache key; a
/// checkpoint can be gigabytes).
#[derive(Default)]
pub struct EvalCache {
    datasets: HashMap<String, Splits>,
    checkpoints: HashMap<PathBuf, String>,
    /// [`Dataset::fingerprint`] of the (training, test) splits, by data config as
    /// `datasets` (memoised: hashing a split reads all of it).
    fingerprints: HashMap<String, (String, String)>,
    /// Recompute cached features instead of reading them (`ijepa run --force`): each file
    /// once per process, then it is read as usual.
    pub refresh: bool,
    refreshed: std::collections::HashSet<PathBuf>,
    /// The checkpoint `ijepa eval` evaluates, read once ([`EvalCache::hold`]).
    held: Option<Held>,
}

/// What the datasets of `data` are kept under in an [`EvalCache`]: its settings and the
/// contents of its `subset` list as they are now (an edit between two evaluations of one
/// `ijepa eval` scored the second on the list it had before, recorded as the new one).
fn data_key(data: &DataConfig) -> Result<String> {
    let settings = serde_json::to_string(data).map_err(|e| Error::Train(format!("serialising the data config: {e}")))?;
    let list = data.subset.as_deref().and_then(crate::plan::list_digest_now).unwrap_or_default();
    Ok(format!("{settings}\n{list}"))
}

impl EvalCache {
    /// The training and test splits of `data`.
    fn datasets(&mut self, data: &DataConfig) -> Result<Splits> {
        let key = data_key(data)?;
        if let Some((train, test)) = self.datasets.get(&key) {
            return Ok((train.clone(), test.clone()));
        }
        let (train, copies) = data::distinct(data::open_dataset(data, Split::Train)?);
        if copies > 0 {
            tracing::warn!(
                "the evaluations train on each file of the training split once: {copies} further copies that `subset` lists are left out (a copy in a probe's held-out part scored against its twin)"
            );
        }
        let pair = (train, data::open_dataset(data, Split::Test)?);
        self.datasets.insert(key, (pair.0.clone(), pair.1.clone()));
        Ok(pair)
    }

    /// The fingerprints ([`Dataset::fingerprint`]) of the training and test splits of `data`.
    fn fingerprints(&mut self, data: &DataConfig) -> Result<(String, String)> {
        let key = data_key(data)?;
        if let Some(fp) = self.fingerprints.get(&key) {
            return Ok(fp.clone());
        }
        let (train, test) = self.datasets(data)?;
        let fp = (train.fingerprint(), test.fingerprint());
        self.fingerprints.insert(key, fp.clone());
        Ok(fp)
    }

    /// [`features::cached_as`] of `shape` (`[images, width]`), or with [`EvalCache::refresh`]
    /// the features computed once more.
    fn features(&mut self, path: &Path, shape: [usize; 2], compute: impl FnOnce() -> Result<Features>) -> Result<Features> {
        if self.refresh && self.refreshed.insert(path.to_path_buf()) && path.exists() {
            std::fs::remove_file(path).map_err(|e| Error::io(path, e))?;
        }
        features::cached_as(path, Some(shape.map(|n| n as i64)), compute)
    }

    /// Reads the checkpoint `ijepa eval` evaluates once ([`Held`]): the SHA-256 every stage is
    /// keyed by and records, the step it records, and the weights each stage evaluates are of
    /// one version of the file. Returns the SHA-256.
    fn hold(&mut self, exp: &Experiment, path: &Path) -> Result<String> {
        self.hold_with(path, &|models| feature_weights(exp, models, path))
    }

    /// [`EvalCache::hold`] of the weights `select` picks.
    fn hold_with(&mut self, path: &Path, select: Select) -> Result<String> {
        let held = read_held(path, select)?;
        let sha = held.sha256.clone();
        self.checkpoints.insert(path.to_path_buf(), sha.clone());
        self.held = Some(held);
        Ok(sha)
    }

    /// The SHA-256 of a checkpoint file.
    pub fn checkpoint_sha256(&mut self, path: &Path) -> Result<String> {
        if let Some(sha) = self.checkpoints.get(path) {
            return Ok(sha.clone());
        }
        let sha = crate::checkpoint::state::sha256_file(path)?;
        self.checkpoints.insert(path.to_path_buf(), sha.clone());
        Ok(sha)
    }
}

/// What is said of a final checkpoint of the pretraining in `run` that is not the file the run
/// wrote (its SHA-256 is not the one its manifest records), and how to recover.
pub fn not_the_runs_final(run: &Path) -> String {
    format!(
        "is not the file this run wrote (its SHA-256 differs from the one {} records for it): move it aside (or delete it) and run again: {}",
        run.join(ijepa_schema::MANIFEST).display(),
        if run.join(ijepa_schema::CHECKPOINTS).join(ijepa_schema::LATEST).is_file() {
            "the run writes its final weights again from its last checkpoint"
        } else {
            "the run trains again (unless a kept epoch checkpoint is left)"
        }
    )
}

/// Runs one evaluation stage — protocol `cfg` on `subject` — into `dir`, unless its
/// `eval.json` exists. The features are cached under `dir/../features/`.
#[allow(clippy::too_many_arguments)]
pub fn run_eval(
    exp: &Experiment,
    cfg: &EvalConfig,
    subject: Subject,
    source: &Source,
    dir: &Path,
    device: Device,
    meta: &EvalMeta,
    shared: &mut EvalCache,
) -> Result<()> {
    // a run's final weights are the file its manifest recorded: another put in its place
    // (copied by hand from another run) was evaluated as this run's without a word
    if let (Subject::Pretrained, Some(run)) = (subject, &source.pretrain_dir) {
        let recorded = ijepa_schema::read_manifest(run).and_then(|m| m.checkpoint(ijepa_schema::FINAL).map(|c| c.sha256.clone()));
        if let Some(recorded) = recorded.filter(|_| source.checkpoint == run.join(ijepa_schema::CHECKPOINTS).join(ijepa_schema::FINAL)) {
            if shared.checkpoint_sha256(&source.checkpoint)? != recorded {
                return Err(Error::Checkpoint {
                    path: source.checkpoint.clone(),
                    message: not_the_runs_final(run),
                });
            }
        }
    }
    let record = dir.join(ijepa_schema::EVAL);
    if let Some(done) = ijepa_schema::read_eval(dir) {
        let now = match (subject, &source.pretrain_dir) {
            (Subject::Pretrained, Some(_)) => Some(shared.checkpoint_sha256(&source.checkpoint)?),
            _ => None,
        };
        if !ijepa_schema::eval_outdated(&done, now.as_deref()) {
            // (`ijepa eval` of the same weights under another path — a run's `latest` then its
            // kept `epoch-NNNN`, a copy written over since — kept the first path, and the
            // report left the result out once that file held other weights: the path given
            // now is recorded, the weights being the same)
            if let (Subject::Pretrained, None) = (subject, &source.pretrain_dir) {
                let given = std::path::absolute(&source.checkpoint).unwrap_or_else(|_| source.checkpoint.clone()).display().to_string();
                if done.checkpoint.as_deref().is_some_and(|c| c != given) {
                    let was = done.checkpoint.clone().unwrap_or_default();
                    // (with what this path says of the weights, as a first evaluation of it
                    // records: the step and epochs its run's manifest and config give)
                    let sha = shared.checkpoint_sha256(&source.checkpoint)?;
                    let step = checkpoint_step(&source.checkpoint, Some(&sha), shared.held.as_ref());
                    let epochs = shared.held.as_ref().and_then(|h| h.epochs);
                    let method = method_of(subject, source, exp);
                    run_dir::write_json(&record, &ijepa_schema::EvalRecord { checkpoint: Some(given.clone()), checkpoint_step: step, pretrain_epochs: epochs, method, ..done })?;
                    tracing::info!("{} is already done, of the same weights as {was}: recorded as {given} now", dir.display());
                    return Ok(());
                }
            }
            tracing::info!("{} is already done", dir.display());
            return Ok(());
        }
        // the pretraining ran again since (`--force` from another file that shares it)
        let aside = run_dir::keep_aside(&record, "outdated")?;
        tracing::warn!(
            "{} evaluated a checkpoint its pretraining no longer holds (it was trained again): evaluating again (the old result is kept as {})",
            dir.display(),
            aside.display()
        );
    } else if record.symlink_metadata().is_ok() {
        // the evaluation runs again (its features are cached); a link (one that leads nowhere
        // too, which `exists` does not see: the evaluation ran to its end, then refused to
        // write through it) is set aside as itself
        let aside = run_dir::keep_aside(&record, "unreadable")?;
        tracing::warn!("{} is not a readable result (damaged, an accuracy outside 0-100, or the record of another stage): evaluating again (the old file is kept as {})", record.display(), aside.display());
    }
    // a libtorch failure (e.g. out of memory extracting features) is an error naming the stage
    crate::guard::torch(&format!("the {} evaluation of {}", cfg.name(), subject.key(&exp.recipe)), || {
        eval_stage(exp, cfg, subject, source, dir, device, meta, shared)
    })
}

#[allow(clippy::too_many_arguments)]
fn eval_stage(
    exp: &Experiment,
    cfg: &EvalConfig,
    subject: Subject,
    source: &Source,
    dir: &Path,
    device: Device,
    meta: &EvalMeta,
    shared: &mut EvalCache,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let t0 = Instant::now();
    let bf16 = crate::precision::uses_bf16(exp.precision, device);
    // the kernel of the CPU's products by the process's policy (`IJEPA_CPU_PRODUCTS`), for the
    // whole evaluation: a fine-tuning or the pixels' probe ran on whatever an earlier stage of
    // the process had chosen (BLAS when none had), and the record named that
    crate::products::prepare(device, bf16);
    // the list files as the evaluation starts, which its result must have read
    let inputs = crate::plan::eval_inputs_now(exp, cfg);
    let (train_ds, test_ds) = shared.datasets(&exp.data)?;
    check_splits(cfg, train_ds.as_ref(), test_ds.as_ref())?;
    if let (ijepa_dsl::config::DataSource::Path(root), Some(test)) = (&exp.data.source, &exp.data.test_root) {
        if std::fs::canonicalize(root).ok().is_some_and(|r| std::fs::canonicalize(test).ok() == Some(r)) {
            tracing::warn!(
                "test-root {} is the training folder: the {} evaluation scores the images it trains on (a training accuracy, not a test one)",
                test.display(),
                cfg.name()
            );
        }
    }
    // what the run checked before pretraining, said again here: an evaluation run over a
    // finished pretraining (a `held-out` changed after it, `ijepa eval`, `--only`) had no word
    // of a class its choice never scores (warned once a process)
    // (the training split is of distinct files already: `EvalCache::datasets`; the pixels are
    // one feature set, whatever the block's `features`)
    let labels: Vec<i64> = (0..train_ds.len()).map(|i| train_ds.label(i)).collect();
    let one_set = EvalConfig { features: cfg.features.iter().take(1).copied().collect(), ..cfg.clone() };
    check_held_out(exp, if subject == Subject::RawPixels { &one_set } else { cfg }, (&labels, train_ds.num_classes()), None)?;
    let transform = eval_transform(exp)?;
    let (result, n_train, n_test, kind) = if cfg.protocol == EvalProtocol::Finetune {
        let (r, n_train, n_test) = finetune_stage(exp, cfg, subject, source, &train_ds, &test_ds, &transform, device, shared.held.as_ref())?;
        (r, n_train, n_test, FeatureChoice::Last)
    } else {
        let sets = frozen_features(exp, cfg, subject, source, dir, &train_ds, &test_ds, &transform, device, shared)?;
        let n_test = sets[0].2.y.len();
        let (result, n_train, kind) = if sets.len() == 1 {
            let (kind, train, test) = &sets[0];
            let (r, n) = evaluate(exp, cfg, train, test, train_ds.num_classes())?;
            (r, n, *kind)
        } else {
            // several feature sets: each set's hyper-parameters chosen on the held-out part of
            // the training split, the set with the best held-out score kept
            // (eval::choose_features), and only that one retrained on the whole training split
            // and scored on the test split: the test split is not read to choose, nor for the
            // sets that lost
            let mut runs = Vec::new();
            for (kind, train, _) in &sets {
                let r = choose_on_heldout(exp, cfg, train, train_ds.num_classes())?;
                let heldout = r.sweep.iter().map(|p| p.1).filter(|s| !s.is_nan()).fold(f64::NAN, f64::max);
                tracing::info!("{} features `{}`: held-out top-1 {heldout:.2}% (the better of the sets is kept)", cfg.name(), kind.name());
                runs.push((kind.blocks(), r));
            }
            let (win, chosen) = crate::eval::choose_features(runs)?;
            let (kind, train, test) = &sets[win];
            let (last, n_train) = evaluate_at(exp, cfg, train, test, train_ds.num_classes(), &chosen.chosen)?;
            (ProbeResult { top1: last.top1, curve: last.curve, ..chosen }, n_train, *kind)
        };
        (result, n_train, n_test, kind)
    };
    let mut record = record(exp, cfg, subject, source, &result, n_train, n_test, meta);
    if subject != Subject::RawPixels && cfg.protocol != EvalProtocol::Finetune {
        record.features = kind.name().to_string();
    }
    // which weights were measured: a pretraining's final ones, or any checkpoint given to
    // `ijepa eval` (a run's `latest`, evaluated while it trains, is other weights an hour later)
    if subject == Subject::Pretrained {
        record.checkpoint_sha256 = Some(shared.checkpoint_sha256(&source.checkpoint)?);
        record.checkpoint_step = checkpoint_step(&source.checkpoint, record.checkpoint_sha256.as_deref(), shared.held.as_ref());
        // (a file given to `ijepa eval`: the epochs it says it was trained for)
        if source.pretrain_dir.is_none() {
            record.pretrain_epochs = shared.held.as_ref().and_then(|h| h.epochs);
        }
    }
    // (the images it read, for a later run that skips it as done to compare with the data's)
    let (train_fp, test_fp) = shared.fingerprints(&exp.data)?;
    record.data_fingerprints = Some([train_fp, test_fp]);
    record.wall_s = t0.elapsed().as_secs_f64();
    // (what tells a record copied into another evaluation's folder of its protocol)
    record.folder = dir.file_name().and_then(|n| n.to_str()).map(String::from);
    if record.inputs != inputs {
        return Err(Error::Config(format!(
            "a list file of the {} evaluation ({}) changed while it ran: its result is not recorded; run the command again",
            cfg.name(),
            exp.data.subset.iter().chain(&cfg.split_file).map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )));
    }
    record.device = Some(crate::device::describe_machine(device));
    // (the kernel its products ran on: the same checkpoint scored in the last bits apart under
    // `blas` and `onednn`, and nothing said which)
    record.cpu_products = (device == Device::Cpu).then(|| crate::products::current().name().to_string());
    // (the pixels are no encoder's features)
    record.precision = (subject != Subject::RawPixels).then(|| if bf16 { "bf16" } else { "fp32" }.to_string());
    run_dir::write_json(&dir.join(ijepa_schema::EVAL), &record)?;
    tracing::info!(
        "eval {:<8} {:<13} top-1 {:>6.2}%  ({} train / {} test examples, {:.1} s) -> {}",
        cfg.name(),
        subject.key(&exp.recipe),
        record.top1,
        record.train_examples,
        record.test_examples,
        t0.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(())
}

/// An evaluation needs test images (a score of no images would read as 0%), and a probe
/// trained on some of the classes only cannot predict the others: said once, before it runs.
fn check_splits(cfg: &EvalConfig, train: &dyn Dataset, test: &dyn Dataset) -> Result<()> {
    if test.is_empty() {
        return Err(Error::Data(format!("the test split has no images: the {} evaluation has nothing to score", cfg.name())));
    }
    if train.is_empty() {
        return Err(Error::Data(format!("the training split has no images: the {} evaluation has nothing to train on", cfg.name())));
    }
    let classes = |ds: &dyn Dataset| (0..ds.len()).map(|i| ds.label(i)).collect::<std::collections::BTreeSet<i64>>();
    let (seen, wanted) = (classes(train), classes(test));
    // (a class by its index and, where the data names it, its name: `2 (c_green)`)
    let named = |c: i64| train.class_name(c).map_or(c.to_string(), |n| format!("{c} ({})", crate::error::printable(&n)));
    if let [only] = seen.iter().collect::<Vec<_>>()[..] {
        let only = named(*only);
        // (a folder of one class, or a split file that kept one: every answer is that class)
        tracing::warn!(
            "the {} evaluation's training split holds one class, {only}: whatever the features, a classifier trained on it answers that class, so its accuracy is the test split's share of it ({}), not a measure of the features",
            cfg.name(),
            if wanted.len() == 1 && wanted == seen { "100%, the test split holding that class alone" } else { "below 100%" }
        );
    }
    let missing: Vec<i64> = wanted.difference(&seen).copied().collect();
    if !missing.is_empty() {
        // (the first five: a `limit` on ImageNet listed 998 classes, 17,000 characters a line)
        tracing::warn!(
            "the {} evaluation trains on {} of the {} classes of the test split (none of class {}): its test images of those classes cannot be classified right",
            cfg.name(),
            wanted.len() - missing.len(),
            wanted.len(),
            crate::data::first_five(missing.iter().map(|&c| named(c)), missing.len(), ", ")
        );
    }
    Ok(())
}

/// The frozen feature sets a probe reads, `(kind, train, test)` in the order of the eval
/// block's `features` (one set for the raw pixels), cached under `dir/../features/`. When
/// `last4` is among the kinds, `last` is its last quarter (the same numbers,
/// [`FeatureKind::Last4`]), so the encoder runs once.
#[allow(clippy::too_many_arguments)]
fn frozen_features(
    exp: &Experiment,
    cfg: &EvalConfig,
    subject: Subject,
    source: &Source,
    dir: &Path,
    train_ds: &Arc<dyn Dataset>,
    test_ds: &Arc<dyn Dataset>,
    transform: &EvalTransform,
    device: Device,
    shared: &mut EvalCache,
) -> Result<Vec<(FeatureChoice, Features, Features)>> {
    let feature_dir = dir.parent().unwrap_or(Path::new(".")).join(ijepa_schema::FEATURES);
    if feature_dir.exists() && !feature_dir.is_dir() {
        return Err(Error::Data(format!("{} is a file, where the evaluations keep their feature cache (a folder): move it away", feature_dir.display())));
    }
    // (made when the first features are stored: an evaluation that fails before leaves none)
    let bf16 = crate::precision::uses_bf16(exp.precision, device);
    let kind = if cfg.features.contains(&FeatureChoice::Last4) { FeatureKind::Last4 } else { FeatureKind::Last };
    // features computed under bf16 autocast differ from fp32 ones: the precision keys the cache;
    // so does oneDNN's kernel on a CPU (in the last bits: an evaluation on BLAS read them, and
    // recorded BLAS) (BLAS's key is the one it always had)
    let onednn = device == Device::Cpu && crate::products::current() == crate::products::Products::OneDnn;
    // and a GPU's kernels (an evaluation on the CPU read features a GPU computed, and recorded
    // the CPU as their device) (the CPU's key is the one it always had)
    let gpu = device.is_cuda();
    let prec = format!("{}{}{}", if bf16 { "-bf16" } else { "" }, if onednn { "-onednn" } else { "" }, if gpu { "-cuda" } else { "" });
    // the weights and the encoder's settings (its head count is not in the weights' shapes)
    let encoder_key = content_hash(serde_json::to_string(&exp.encoder).unwrap_or_default().as_bytes());
    let model_key = match subject {
        Subject::Pretrained => {
            // (another module of a file given to `ijepa eval`: other features; a run's own
            // checkpoint holds the module its settings evaluate, its key as it was)
            let module = module_unless_usual(exp).filter(|_| source.pretrain_dir.is_none()).map_or(String::new(), |m| format!("-{}", m.replace('.', "_")));
            format!("{}-{}{module}-{:?}{prec}", &shared.checkpoint_sha256(&source.checkpoint)?[..16], &encoder_key[..8], kind)
        }
        // the recipe's initialisation: I-JEPA's key predates the recipe (unchanged), another
        // recipe's (MAE: xavier, a class token) is keyed by it
        Subject::RandomInit => {
            let recipe = if exp.recipe == "ijepa" { String::new() } else { format!("-{}", exp.recipe) };
            // (the settings the recipe's initialisation depends on besides the encoder: MAE's
            // decoder, DINO's head; cached features of another decoder were read back)
            let init = ijepa_dsl::recipes::init_values(exp).map_or(String::new(), |v| format!("-{}", &content_hash(v.to_string().as_bytes())[..8]));
            format!("init{}{recipe}{init}-{encoder_key}-{:?}{prec}", exp.seed, kind)
        }
        Subject::RawPixels => "pixels".to_string(),
    };
    // the images and their transform: not the pretraining's batch size, loader threads or
    // augmentations (an earlier version's files, keyed by the whole block and without a
    // checksum, are not read: the features are computed once more under this key)
    // and the images themselves (their fingerprint: a folder that gained or lost images, or
    // idx files replaced, are other features)
    let data_key = content_hash(serde_json::to_string(&exp.data.read_by_evaluation(false)).unwrap_or_default().as_bytes());
    let (train_fp, test_fp) = shared.fingerprints(&exp.data)?;
    let key = |split: &str, fp: &str| feature_dir.join(format!("{model_key}-{split}-{data_key}-{fp}.safetensors"));
    let (train_key, test_key) = (key("train", &train_fp), key("test", &test_fp));
    Ok(match subject {
        Subject::RawPixels => {
            let px = |ds: &Arc<dyn Dataset>| features::raw_pixels(ds.as_ref(), transform, 256).map_err(|e| data::outside_skip(&exp.data, e));
            let width = 3 * transform.size() * transform.size();
            vec![(cfg.features[0], shared.features(&train_key, [train_ds.len(), width], || px(train_ds))?, shared.features(&test_key, [test_ds.len(), width], || px(test_ds))?)]
        }
        _ => {
            let (_store, vit) = encoder(exp, source, subject, device, shared.held.as_ref())?;
            let ex = |ds: &Arc<dyn Dataset>, split: &str| {
                let f = features::extract(&vit, ds.as_ref(), transform as &dyn SampleTransform, kind, 256, device, bf16).map_err(|e| data::outside_skip(&exp.data, e))?;
                finite_features(f, subject, split)
            };
            let width = vit.cfg.embed_dim * if kind == FeatureKind::Last4 { 4 } else { 1 };
            let (train, test) = (
                shared.features(&train_key, [train_ds.len(), width], || ex(train_ds, "training"))?,
                shared.features(&test_key, [test_ds.len(), width], || ex(test_ds, "test"))?,
            );
            let mut sets: Vec<_> = (cfg.features.iter())
                .filter(|&&c| c == FeatureChoice::Last && kind == FeatureKind::Last4)
                .map(|&c| (c, last_of_last4(&train), last_of_last4(&test)))
                .collect();
            // the extracted set itself, at its place in the block's order
            let at = cfg.features.iter().position(|&c| c != FeatureChoice::Last || kind == FeatureKind::Last).unwrap_or(0);
            sets.insert(at.min(sets.len()), (cfg.features[at], train, test));
            sets
        }
    })
}

/// `f`, when every value is finite: an encoder whose forward pass overflows (finite weights
/// too large: a pretraining about to diverge) gives NaN features, on which every probe
/// scored by chance without a word (kNN's votes all went to class 0).
fn finite_features(f: Features, subject: Subject, split: &str) -> Result<Features> {
    let bad = f.x.isfinite().logical_not().any_dim(1, false).sum(tch::Kind::Int64).int64_value(&[]);
    if bad > 0 {
        return Err(Error::Eval(format!(
            "the {} encoder's features of {bad} of the {} {split} images are not finite (NaN/Inf): its forward pass overflows (weights grown too large: a pretraining about to diverge?), and a probe on them would score by chance",
            if subject == Subject::RandomInit { "randomly initialised" } else { "pretrained" },
            f.y.len()
        )));
    }
    Ok(f)
}

/// The `last` feature inside a `last4` one: its last quarter (the last block's pooled output,
/// normed; [`FeatureKind::Last4`]).
fn last_of_last4(f: &Features) -> Features {
    let width = f.dim() as i64 / 4;
    Features { x: f.x.narrow(1, 3 * width, width).contiguous(), y: f.y.clone() }
}

/// Fine-tunes the subject's encoder ([`crate::eval::finetune`]); returns the result with the
/// number of training and test images.
#[allow(clippy::too_many_arguments)]
fn finetune_stage(
    exp: &Experiment,
    cfg: &EvalConfig,
    subject: Subject,
    source: &Source,
    train_ds: &Arc<dyn Dataset>,
    test_ds: &Arc<dyn Dataset>,
    transform: &EvalTransform,
    device: Device,
    held: Option<&Held>,
) -> Result<(ProbeResult, usize, usize)> {
    if subject == Subject::RawPixels {
        return Err(Error::Config("fine-tuning needs an encoder: the raw pixels have none".into()));
    }
    let ft = cfg.finetune.clone().unwrap_or_default();
    let fcfg = finetune::FinetuneCfg {
        epochs: cfg.epochs,
        batch: cfg.batch_size,
        lrs: cfg.lrs.clone(),
        wds: cfg.wds.clone(),
        warmup_epochs: ft.warmup_epochs,
        min_lr: ft.min_lr,
        layer_decay: ft.layer_decay,
        drop_path: ft.drop_path,
        label_smoothing: ft.label_smoothing,
        heldout: cfg.heldout,
        seed: exp.seed,
        workers: exp.data.workers,
        bf16: crate::precision::uses_bf16(exp.precision, device),
    };
    let num_classes = train_ds.num_classes();
    let build = || -> Result<finetune::Classifier> {
        let (store, vit) = encoder(exp, source, subject, device, held)?;
        finetune::Classifier::new(store, vit, num_classes)
    };
    let train_tf = data::train_transform(&exp.data)?;
    let result = finetune::finetune(&build, train_ds.clone(), test_ds.clone(), train_tf, transform, num_classes, &fcfg, device)?;
    Ok((result, train_ds.len(), test_ds.len()))
}

/// The linear probe's settings from an eval block.
fn linear_cfg(exp: &Experiment, cfg: &EvalConfig) -> linear::LinearCfg {
    linear::LinearCfg {
        epochs: cfg.epochs,
        decay_every: cfg.decay_every,
        batch: cfg.batch_size,
        lrs: cfg.lrs.clone(),
        wds: cfg.wds.clone(),
        heldout: cfg.heldout,
        head: if cfg.head == HeadKind::BnLinear { linear::Head::BnLinear } else { linear::Head::Linear },
        seed: exp.seed,
        few_labels: cfg.protocol == EvalProtocol::LowShot,
    }
}

/// The logistic probe's settings from an eval block.
fn logistic_cfg(exp: &Experiment, cfg: &EvalConfig) -> logistic::LogisticCfg {
    logistic::LogisticCfg { cs: cfg.cs.clone(), heldout: cfg.heldout, seed: exp.seed, ..Default::default() }
}

/// Whether the evaluation `cfg` can make the choices it has to make on a held-out part of the
/// training split whose labels are `labels`: checked before pretraining, where the probe
/// stopped on it after pretraining, and again as each evaluation starts (one over a finished
/// pretraining had no word of a class its choice never scores). A choice is a grid of more
/// than one (lr, weight decay) point, or several feature sets; the held-out part is each
/// class's share rounded, which can be none; a low-shot probe's part is of its labelled few
/// (`fraction` of each class, or its `split-file`'s images: read now, a list of two images a
/// class was found out after pretraining). (The logistic probe, which chooses by
/// cross-validation, is checked when it runs.) Fine-tuning's batch is
/// checked too against the images its smallest fit trains on (the training split, less the
/// held-out part while it compares points): it stopped on it after pretraining.
///
/// `split`: the low-shot `split-file`'s images as [`check_split_file`] read them (read here
/// where not given: a sweep's every evaluation walked the folder again).
///
/// # Errors
/// [`Error::Config`] naming the evaluation, the fraction and what would hold an image out (or
/// fine-tuning's batch-size and its images).
pub fn check_held_out(exp: &Experiment, cfg: &EvalConfig, (labels, num_classes): (&[i64], usize), split: Option<&[usize]>) -> Result<()> {
    let grid = cfg.lrs.len().max(1) * cfg.wds.len().max(1);
    let features = cfg.features.len() > 1;
    let chooses_on = |y: &[i64], what: &str| -> Result<()> {
        let (rest, held) = crate::eval::stratified_split(y, num_classes, cfg.heldout, exp.seed);
        if held.is_empty() || rest.is_empty() {
            return Err(Error::Config(format!(
                "the {} evaluation: held-out fraction {} of {} {what} leaves no held-out sample to choose {} {}",
                cfg.name(),
                cfg.heldout,
                y.len(),
                if grid > 1 && cfg.protocol != EvalProtocol::Knn { format!("among its {grid} (lr, weight decay) points") } else { "among its feature sets".into() },
                crate::eval::why_none_held_out(y, num_classes, cfg.heldout)
            )));
        }
        // a class too small for a rounded share of its own is never scored by the choice (a
        // held-out part of "2.7 images a class" had none of one class)
        let missing = crate::eval::classes_not_held_out(y, &held, num_classes);
        if !missing.is_empty() {
            // (once: each subject and sweep point of the evaluation checks it)
            let it = if missing.len() == 1 { "it" } else { "them" };
            // (a class of one image keeps it for training at any fraction: "a larger
            // `held-out` includes them" could not be followed)
            let single: Vec<usize> = missing.iter().copied().filter(|&c| y.iter().filter(|&&l| l == c as i64).count() < 2).collect();
            let names = |cs: &[usize]| cs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            let larger: Vec<usize> = missing.iter().copied().filter(|c| !single.contains(c)).collect();
            let advice = match (larger.is_empty(), single.is_empty()) {
                (true, _) => format!(
                    "{}, which stays in training at any `held-out`: only more images of {} let the choice score {it}{}",
                    if single.len() == 1 { "it has a single image" } else { "they have one image each" },
                    if single.len() == 1 { "that class" } else { "those classes" },
                    // (a larger fraction labels more images of a class the training split
                    // holds more of)
                    if cfg.protocol == EvalProtocol::LowShot && single.iter().any(|&c| labels.iter().filter(|&&l| l == c as i64).count() > 1) {
                        " (low-shot: a larger `fraction`)"
                    } else {
                        ""
                    }
                ),
                (false, true) => format!("a larger `held-out` includes {it}"),
                (false, false) => format!(
                    "a larger `held-out` includes class{} {}; {} {}, which stays in training at any `held-out`",
                    if larger.len() == 1 { "" } else { "es" },
                    names(&larger),
                    if single.len() == 1 { format!("class {} has", names(&single)) } else { format!("classes {} have", names(&single)) },
                    if single.len() == 1 { "one image" } else { "one image each" },
                ),
            };
            let message = format!(
                "the {} evaluation: held-out fraction {} holds out no image of class{} {} (too few {what} for a share of {} own): its choice never scores {it}; {advice}",
                cfg.name(),
                cfg.heldout,
                if missing.len() == 1 { "" } else { "es" },
                names(&missing),
                if missing.len() == 1 { "its" } else { "their" },
            );
            crate::data::warn_once(message.clone(), message);
        }
        Ok(())
    };
    match cfg.protocol {
        EvalProtocol::Linear if grid > 1 || features => chooses_on(labels, "training images"),
        EvalProtocol::LowShot if cfg.head != HeadKind::Logistic && (grid > 1 || features) => {
            // (a split file names files of the whole folder, whose labels `labels` are)
            let idx = match (&cfg.split_file, split) {
                (Some(_), Some(idx)) => idx.to_vec(),
                (Some(list), None) => split_indices(exp, list)?,
                (None, _) => lowshot::sample_per_class(labels, num_classes, cfg.fraction, exp.seed),
            };
            let few: Vec<i64> = idx.into_iter().filter_map(|i| labels.get(i).copied()).collect();
            chooses_on(&few, "labelled images")
        }
        EvalProtocol::Knn if features => chooses_on(labels, "training images"),
        EvalProtocol::Finetune => {
            let fit = if grid > 1 && cfg.heldout > 0.0 {
                chooses_on(labels, "training images")?;
                crate::eval::stratified_split(labels, num_classes, cfg.heldout, exp.seed).0.len()
            } else {
                labels.len()
            };
            finetune::check_batch(cfg.batch_size, fit)
        }
        _ => Ok(()),
    }
}

/// The labelled few of a low-shot protocol: the split file's images, or `fraction` of each
/// class drawn by the experiment's seed (the same for every subject and feature set).
fn lowshot_few(exp: &Experiment, cfg: &EvalConfig, train: &Features, num_classes: usize) -> Result<Features> {
    let idx = match &cfg.split_file {
        Some(list) => split_indices(exp, list)?,
        None => lowshot::sample_per_class(&train.y, num_classes, cfg.fraction, exp.seed),
    };
    lowshot::subset(train, &idx)
}

/// Runs a frozen-feature protocol; returns its result and the number of training labels used.
fn evaluate(exp: &Experiment, cfg: &EvalConfig, train: &Features, test: &Features, num_classes: usize) -> Result<(ProbeResult, usize)> {
    let (result, n_train) = match cfg.protocol {
        EvalProtocol::Linear => (linear::linear_probe(train, test, num_classes, &linear_cfg(exp, cfg))?, train.y.len()),
        EvalProtocol::LowShot => {
            let few = lowshot_few(exp, cfg, train, num_classes)?;
            let r = match cfg.head {
                HeadKind::Logistic => logistic::logistic_probe(&few, test, num_classes, &logistic_cfg(exp, cfg))?,
                _ => linear::linear_probe(&few, test, num_classes, &linear_cfg(exp, cfg))?,
            };
            (r, few.y.len())
        }
        EvalProtocol::Knn => {
            if cfg.k > train.y.len() {
                tracing::warn!("kNN: k {} is more than the {} training images: every image votes (k {} is recorded)", cfg.k, train.y.len(), train.y.len());
            }
            let top1 = knn::knn(train, test, num_classes, cfg.k, cfg.temperature)?;
            (ProbeResult { sweep: Vec::new(), chosen: knn_point(cfg, train.y.len()), top1, curve: Vec::new() }, train.y.len())
        }
        EvalProtocol::Finetune => return Err(Error::Config("fine-tuning does not read frozen features".into())),
    };
    Ok((result, n_train))
}

/// kNN's (fixed) hyper-parameters, as recorded: the `k` that voted (at most the `neighbours`
/// there were, as [`knn::knn`] clamps it).
fn knn_point(cfg: &EvalConfig, neighbours: usize) -> BTreeMap<String, f64> {
    BTreeMap::from([("k".to_string(), cfg.k.min(neighbours.max(1)) as f64), ("temperature".to_string(), cfg.temperature)])
}

/// The first phase of a probe over several feature sets: its hyper-parameters chosen on the
/// held-out part of `train` alone (the linear probe's grid, the logistic probe's
/// cross-validation, kNN's vote of the held-out images against the rest). The test split is not
/// read: the result's `top1` is NaN and `curve` empty.
fn choose_on_heldout(exp: &Experiment, cfg: &EvalConfig, train: &Features, num_classes: usize) -> Result<ProbeResult> {
    let lr_wd = |(sweep, (lr, wd))| (sweep, linear::params(lr, wd));
    let (sweep, chosen) = match cfg.protocol {
        EvalProtocol::Linear => lr_wd(linear::linear_sweep(train, num_classes, &linear_cfg(exp, cfg))?),
        EvalProtocol::LowShot => {
            let few = lowshot_few(exp, cfg, train, num_classes)?;
            match cfg.head {
                HeadKind::Logistic => {
                    let (sweep, c) = logistic::logistic_sweep(&few, num_classes, &logistic_cfg(exp, cfg))?;
                    (sweep, logistic::param(c))
                }
                _ => lr_wd(linear::linear_sweep(&few, num_classes, &linear_cfg(exp, cfg))?),
            }
        }
        EvalProtocol::Knn => {
            // the held-out images vote against the rest alone: its `k` is at most their number
            // (recorded as `k` unclamped, without a word, where the final fit warns)
            let (heldout, rest) = knn::knn_heldout(train, num_classes, cfg.k, cfg.temperature, cfg.heldout, exp.seed)?;
            if cfg.k > rest {
                tracing::warn!("kNN on the held-out images: k {} is more than the {rest} training images beside them: every image votes (k {rest} is recorded for the choice)", cfg.k);
            }
            (vec![(knn_point(cfg, rest), heldout)], knn_point(cfg, train.y.len()))
        }
        EvalProtocol::Finetune => return Err(Error::Config("fine-tuning does not read frozen features".into())),
    };
    Ok(ProbeResult { sweep, chosen, top1: f64::NAN, curve: Vec::new() })
}

/// The second phase: the probe at the point [`choose_on_heldout`] chose (`chosen`; other keys,
/// such as the feature set's `blocks`, are ignored) with no grid of its own, trained on all of
/// `train` and scored on `test` — the run [`evaluate`] makes after its own sweep, so the score
/// is the one a single-set probe with that point would report.
fn evaluate_at(
    exp: &Experiment,
    cfg: &EvalConfig,
    train: &Features,
    test: &Features,
    num_classes: usize,
    chosen: &BTreeMap<String, f64>,
) -> Result<(ProbeResult, usize)> {
    let get = |key: &str| chosen.get(key).copied().ok_or_else(|| Error::Config(format!("the {} probe's chosen point has no {key}", cfg.name())));
    let mut one = cfg.clone();
    match (cfg.protocol, cfg.head) {
        (EvalProtocol::LowShot, HeadKind::Logistic) => one.cs = vec![get("C")?],
        (EvalProtocol::Linear | EvalProtocol::LowShot, _) => {
            one.lrs = vec![get("lr")?];
            one.wds = vec![get("wd")?];
            one.heldout = 0.0;
        }
        _ => {}
    }
    evaluate(exp, &one, train, test, num_classes)
}

/// The training step `checkpoint` was written at: its run's manifest's record of that file
/// with that SHA-256 (the final weights carry no position; the hash ties the step to the bytes
/// hashed, where a `latest` replaced since would not be), else its own header's position (a
/// training checkpoint not recorded yet, or out of its run: as `held` read it, where `ijepa
/// eval` did); `None` for a file that says neither (an official checkpoint).
fn checkpoint_step(checkpoint: &Path, sha256: Option<&str>, held: Option<&Held>) -> Option<u64> {
    let recorded = || {
        let name = checkpoint.file_name()?.to_str()?;
        let run = checkpoint.parent().filter(|d| d.file_name().is_some_and(|n| n == ijepa_schema::CHECKPOINTS))?.parent()?;
        let manifest = ijepa_schema::read_manifest(run)?;
        manifest.checkpoints.iter().rev().find(|c| c.file == name && Some(c.sha256.as_str()) == sha256).map(|c| c.step)
    };
    let header = match held {
        Some(h) => h.position,
        None => crate::checkpoint::state::position_of(checkpoint),
    };
    recorded().or_else(|| header.map(|p| p.global_step))
}

/// The `eval.json` record of a stage (the run-folder schema's [`EvalRecord`]).
#[allow(clippy::too_many_arguments)]
fn record(
    exp: &Experiment,
    cfg: &EvalConfig,
    subject: Subject,
    source: &Source,
    result: &ProbeResult,
    n_train: usize,
    n_test: usize,
    meta: &EvalMeta,
) -> EvalRecord {
    let head = match (cfg.protocol, cfg.head) {
        (EvalProtocol::Knn, _) => "knn",
        (EvalProtocol::Finetune, _) => "finetune",
        (_, HeadKind::Linear) => "linear",
        (_, HeadKind::BnLinear) => "bn-linear",
        (_, HeadKind::Logistic) => "logistic",
    };
    let features = if subject == Subject::RawPixels {
        "pixels"
    } else if cfg.protocol == EvalProtocol::Finetune {
        "finetuned"
    } else {
        cfg.features[0].name()
    };
    let e = &exp.encoder;
    EvalRecord {
        experiment: meta.experiment.clone(),
        stage: format!("eval-{}", cfg.name()),
        protocol: cfg.name().into(),
        model: subject.key(&exp.recipe),
        method: method_of(subject, source, exp),
        recipe: (subject != Subject::RawPixels).then(|| exp.recipe.clone()),
        arch: if subject == Subject::RawPixels { "pixels".to_string() } else { format!("ViT-{}x{}/{}", e.embed_dim, e.depth, e.patch_size) },
        // the experiment's epochs describe the encoder only when we pretrained it
        pretrain_epochs: (subject == Subject::Pretrained && source.pretrain_dir.is_some()).then_some(exp.epochs as u64),
        data: dataset_label(&exp.data.dataset).into(),
        resolution: Some(exp.data.crop_size as u64),
        features: features.into(),
        head: head.into(),
        // a split file names the labelled images: `train_examples` says how many, no fraction
        fraction: (cfg.protocol == EvalProtocol::LowShot && cfg.split_file.is_none()).then_some(cfg.fraction),
        sweep: result.sweep.iter().map(|(p, acc)| SweepPoint { params: p.clone(), heldout_top1: *acc }).collect(),
        chosen: result.chosen.clone(),
        top1: result.top1,
        train_examples: n_train as u64,
        test_examples: n_test as u64,
        data_fingerprints: None,
        varied: meta.varied.clone(),
        pretrain_dir: source.pretrain_dir.as_ref().map(|d| d.display().to_string()),
        // (a file given to `ijepa eval` by its absolute path: the report checks whether it was
        // written again since from whichever folder it runs in; a baseline reads no file and
        // records an empty one, under `ijepa eval` too, where it recorded the file given)
        checkpoint: Some(
            match (subject, &source.pretrain_dir) {
                (Subject::RandomInit | Subject::RawPixels, _) => PathBuf::new(),
                (Subject::Pretrained, None) => std::path::absolute(&source.checkpoint).unwrap_or_else(|_| source.checkpoint.clone()),
                (Subject::Pretrained, Some(_)) => source.checkpoint.clone(),
            }
            .display()
            .to_string(),
        ),
        checkpoint_sha256: None,
        checkpoint_step: None,
        curve: result.curve.iter().map(|&(ep, acc)| CurvePoint { epoch: ep as u64, top1: acc }).collect(),
        settings: protocol_settings(exp, cfg, subject == Subject::RawPixels),
        wall_s: 0.0,
        inputs: crate::plan::eval_inputs_now(exp, cfg),
        precision: None,
        device: None,
        cpu_products: None,
        folder: None,
    }
}

/// What `eval.json` records of the protocol's own settings (see `EvalRecord::settings`).
fn protocol_settings(exp: &Experiment, cfg: &EvalConfig, pixels: bool) -> BTreeMap<String, f64> {
    let entries = |pairs: &[(&str, f64)]| pairs.iter().map(|&(k, v)| (k.to_string(), v)).collect::<BTreeMap<_, _>>();
    // what every trained head (a probe, fine-tuning) runs with
    let trained = [("epochs", cfg.epochs as f64), ("batch-size", cfg.batch_size as f64)];
    let mut m = match (cfg.protocol, cfg.head) {
        (EvalProtocol::Linear, _) | (EvalProtocol::LowShot, HeadKind::Linear | HeadKind::BnLinear) => {
            let mut m = entries(&trained);
            m.insert("decay-every".to_string(), cfg.decay_every as f64);
            m
        }
        (EvalProtocol::LowShot, HeadKind::Logistic) => entries(&[("folds", logistic_cfg(exp, cfg).folds as f64)]),
        (EvalProtocol::Knn, _) => BTreeMap::new(),
        (EvalProtocol::Finetune, _) => {
            let ft = cfg.finetune.clone().unwrap_or_default();
            let mut m = entries(&trained);
            m.extend(entries(&[
                ("warmup-epochs", ft.warmup_epochs),
                ("min-lr", ft.min_lr),
                ("layer-decay", ft.layer_decay),
                ("drop-path", ft.drop_path),
                ("label-smoothing", ft.label_smoothing),
            ]));
            m
        }
    };
    // `held-out` where it is read (kNN holds images out only to choose among feature sets, of
    // which the pixels have one; fine-tuning only among several lr x weight-decay pairs)
    if cfg.reads_heldout(pixels) {
        m.insert("held-out".to_string(), cfg.heldout);
    }
    m
}

/// Indices into the training split of the files an ImageNet-style list names (`split-file`).
fn split_indices(exp: &Experiment, list: &Path) -> Result<Vec<usize>> {
    let ijepa_dsl::config::DataSource::Path(root) = &exp.data.source else {
        return Err(Error::Config("`split-file` needs an image-folder dataset with `root=`".into()));
    };
    if exp.data.dataset != DatasetKind::ImageFolder || exp.data.subset.is_some() || exp.data.limit.is_some() {
        return Err(Error::Config(
            "`split-file` selects files of a whole image folder: use data \"image-folder\" without `subset`/`limit`".into(),
        ));
    }
    let folder = data::image_folder::ImageFolder::open(root, data::image_folder::OnError::Fail)?;
    let subset = data::list_file::Subset::from_list_once(folder, list)?;
    // a class the list labels no image of can never be predicted: said (once a list), as the
    // other protocols say a class without training images
    let mut seen = vec![false; subset.num_classes()];
    (0..subset.len()).for_each(|i| seen[subset.label(i) as usize] = true);
    let absent: Vec<&str> = seen.iter().enumerate().filter(|(_, s)| !**s).map(|(c, _)| subset.base().classes()[c].as_str()).collect();
    // one class: every answer is that class whatever the features (it ran, and scored the
    // test split's share of the class)
    if let [only] = seen.iter().enumerate().filter(|(_, s)| **s).map(|(c, _)| subset.base().classes()[c].as_str()).collect::<Vec<_>>()[..] {
        return Err(Error::Config(format!(
            "{} names images of one class only ({only}): a probe trained on them answers that class whatever the features; list images of every class",
            list.display()
        )));
    }
    if !absent.is_empty() {
        data::warn_once(
            format!("split-file {}", list.display()),
            format!(
                "{} names no image of {} of the {} classes ({}{}): the low-shot probe can never predict them",
                list.display(),
                absent.len(),
                seen.len(),
                absent.iter().take(5).copied().collect::<Vec<_>>().join(", "),
                if absent.len() > 5 { ", ..." } else { "" }
            ),
        );
    }
    Ok((0..subset.len()).map(|i| subset.base_index(i)).collect())
}

/// Reads an evaluation's `split-file` now (its lines must name files of the training folder),
/// as `ijepa run` does before pretraining: a bad list is found before the hours it would
/// otherwise wait for (a protocol without a list has nothing to check).
///
/// Returns the images it names (indices into the folder), none without a list.
///
/// # Errors
/// The list's errors (lines that name no file, or a file several class folders hold).
pub fn check_split_file(exp: &Experiment, cfg: &EvalConfig) -> Result<Option<Vec<usize>>> {
    cfg.split_file.as_ref().map(|list| split_indices(exp, list)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::linear::tests::blobs;
    use tch::Tensor;

    /// `auto` where a run trained, from its manifest's words: what the machine computes
    /// natively, not the precision a point wrote out (an fp32 point's run on a bf16 machine
    /// is not what `auto` trained there).
    #[test]
    fn auto_where_trained_reads_the_machine_not_the_choice() {
        use ijepa_dsl::config::Precision::{Bf16, Fp32};
        let cases = [
            ("bf16 (native: this CPU has AVX512-BF16)", Some(Bf16)),
            ("fp32 (bf16 would be native: this CPU has AVX512-BF16)", Some(Bf16)),
            ("fp32 (no native bf16: this CPU has neither AMX-BF16 nor AVX512-BF16)", Some(Fp32)),
            ("bf16 (emulated: this CPU has neither AMX-BF16 nor AVX512-BF16)", Some(Fp32)),
            // (earlier versions' words: the precision the run took)
            ("bf16 (auto: this CPU has AMX-BF16)", Some(Bf16)),
            ("bf16 (this CPU has AVX512-BF16)", Some(Bf16)),
            ("fp32", Some(Fp32)),
            ("", None),
        ];
        for (recorded, auto) in cases {
            assert_eq!(auto_where_trained(recorded), auto, "{recorded}");
        }
    }

    /// A checkpoint that records no head count, evaluated at a preset's width under another
    /// count than the official models of that width have, is warned of; at the official count,
    /// at a width no preset has, or from a file that records its count, nothing is said.
    #[test]
    fn an_unrecorded_head_count_off_the_presets_is_warned_of() {
        let d = crate::testdir::scratch("stages", "heads");
        let exp = |width: usize, heads: usize| ijepa_dsl::parse_str("t.kdl", &format!("experiment \"t\" {{ encoder width={width} depth=1 heads={heads} patch=4 }}")).unwrap();
        let pth = d.join("official.pth.tar");
        let w = heads_unrecorded(&exp(192, 6), &pth).expect("6 heads at width 192 (vit_tiny: 3)");
        assert!(w.contains("t's 6 heads") && w.contains("width 192 (vit_tiny) have 3") && w.contains("heads=3"), "{w}");
        assert_eq!(heads_unrecorded(&exp(192, 3), &pth), None);
        assert_eq!(heads_unrecorded(&exp(96, 4), &pth), None);
        let ours = d.join("ours.safetensors");
        crate::checkpoint::state::save_weights_with(&ours, &[("x".to_string(), Tensor::zeros([1], (tch::Kind::Float, tch::Device::Cpu)))], &[(crate::checkpoint::state::ENCODER_HEADS, "6")]).unwrap();
        assert_eq!(heads_unrecorded(&exp(192, 6), &ours), None);
    }

    /// `ijepa eval` reads its checkpoint once: the step it records is the one of the version
    /// it hashed and evaluates, not of a version that replaced the file since (a run's `latest`
    /// as the run trains recorded another step for each evaluation, under one hash).
    #[test]
    fn a_checkpoint_replaced_after_it_was_read_keeps_the_step_of_the_version_read() {
        use crate::checkpoint::state::{self, Position};
        let d = crate::testdir::scratch("stages", "held");
        let path = d.join("latest.safetensors");
        let at = |step: u64, value: f64| {
            let pos = Position { global_step: step, epoch: 0, step_in_epoch: step, optimizer_step: step, steps_per_epoch: 100, stage: 1, images: 6400, data: 1 };
            let tensors = vec![("encoder.w".to_string(), Tensor::from_slice(&[value as f32])), ("target_encoder.w".to_string(), Tensor::from_slice(&[value as f32 + 1.0]))];
            state::save(&path, &tensors, pos).unwrap()
        };
        let first = at(5, 1.0);
        let mut cache = EvalCache::default();
        // (the engine's tests register no recipe: I-JEPA's choice, its target encoder)
        let target = |m: &import::Models| Ok((m.target_encoder.as_ref().unwrap().iter().map(|(k, t)| (k.clone(), t.shallow_clone())).collect(), "target_encoder.".to_string()));
        assert_eq!(cache.hold_with(&path, &target).unwrap(), first);
        let second = at(10, 3.0);
        assert_ne!(first, second);
        let held = cache.held.as_ref().unwrap();
        assert_eq!(checkpoint_step(&path, Some(&first), Some(held)), Some(5));
        // (taken mid-epoch: no whole number of epochs)
        assert_eq!(held.epochs, None);
        // (the weights held are the target encoder's of the version read)
        assert_eq!((held.weights.1.as_str(), held.weights.0[0].1.double_value(&[0])), ("target_encoder.", 2.0));
        // every later stage is keyed by the hash read, not the file's new one
        assert_eq!(cache.checkpoint_sha256(&path).unwrap(), first);
        // (read apart, the header says the new version's step)
        assert_eq!(checkpoint_step(&path, Some(&first), None), Some(10));
    }

    /// Two "feature sets" of one labelled set: the first the blobs themselves, the second the
    /// same blobs buried in noise (so its held-out score is lower).
    fn two_sets(seed: u64) -> (Features, Features) {
        let clean = blobs(4, 40, 16, 6.0, seed);
        let noise = Tensor::randn([clean.len() as i64, 48], (tch::Kind::Float, Device::Cpu)) * 4.0;
        let noisy = Features { x: Tensor::cat(&[&clean.x * 0.2, noise], 1), y: clean.y.clone() };
        (clean, noisy)
    }

    /// Choosing a feature set on held-out data, then retraining only the winner at the point it
    /// chose (`choose_on_heldout` + `evaluate_at`), reports exactly what the whole probe reports
    /// on the winning set alone (its own sweep and retraining): for each protocol and head.
    /// Features with a NaN row are refused by name, before any probe scores them by chance.
    #[test]
    fn non_finite_features_are_refused() {
        let (clean, _) = two_sets(1);
        let n = clean.len();
        assert!(finite_features(Features { x: clean.x.shallow_clone(), y: clean.y.clone() }, Subject::Pretrained, "test").is_ok());
        let x = clean.x.copy();
        let _ = x.get(3).get(0).fill_(f64::NAN);
        let _ = x.get(7).fill_(f64::INFINITY);
        let e = finite_features(Features { x, y: clean.y.clone() }, Subject::RandomInit, "test").unwrap_err().to_string();
        assert!(e.starts_with("evaluation: ") && e.contains(&format!("randomly initialised encoder's features of 2 of the {n} test images are not finite")), "{e}");
    }

    #[test]
    fn knn_records_the_k_that_voted() {
        let cfg = EvalConfig { k: 1000, ..EvalConfig::defaults(EvalProtocol::Knn) };
        assert_eq!(knn_point(&cfg, 160)["k"], 160.0);
        assert_eq!(knn_point(&cfg, 5000)["k"], 1000.0);
        // the choice among feature sets: the held-out images vote against the rest alone, so
        // its recorded k is at most the rest's size (it recorded 1000 against 120 there)
        let (train, _) = two_sets(1);
        let mut exp = ijepa_dsl::parse_str("t.kdl", "experiment \"t\" { encoder width=32 depth=1 heads=2 patch=4; eval \"knn\" { k 1000 } }").unwrap();
        exp.evals[0].heldout = 0.25;
        let r = choose_on_heldout(&exp, &exp.evals[0], &train, 4).unwrap();
        let (rest, held) = crate::eval::stratified_split(&train.y, 4, 0.25, exp.seed);
        assert_eq!((rest.len() + held.len(), rest.len()), (160, 120));
        assert_eq!(r.sweep[0].0["k"], 120.0, "{:?}", r.sweep);
        assert_eq!(r.chosen["k"], 160.0, "the final fit votes with every training image");
    }

    #[test]
    fn the_winner_retrained_alone_scores_what_the_whole_probe_scores() {
        tch::manual_seed(0);
        let (train_a, train_b) = two_sets(1);
        let (test_a, _) = two_sets(2);
        let blocks = [
            "eval \"linear\" { epochs 3; decay-every 2; lr 0.05 0.5; weight-decay 0 1e-3; held-out 0.25 }",
            "eval \"low-shot\" fraction=0.5 { c 0.1 10; }",
            "eval \"low-shot\" fraction=0.5 { head \"linear\"; epochs 2; lr 0.05 0.5; held-out 0.25 }",
            "eval \"knn\" { k 5 }",
        ];
        for block in blocks {
            let src = format!("experiment \"t\" {{ encoder width=32 depth=1 heads=2 patch=4; {block} }}");
            let mut exp = ijepa_dsl::parse_str("t.kdl", &src).unwrap();
            // kNN holds images out only to choose among feature sets, which the language
            // allows with two sets (`last4` needs a deeper encoder than this test's): as with two
            if exp.evals[0].protocol == EvalProtocol::Knn {
                exp.evals[0].heldout = 0.25;
            }
            let cfg = &exp.evals[0];
            let a = choose_on_heldout(&exp, cfg, &train_a, 4).unwrap();
            let b = choose_on_heldout(&exp, cfg, &train_b, 4).unwrap();
            assert!(a.top1.is_nan() && b.top1.is_nan() && a.curve.is_empty(), "{block}: the first phase reads no test split");
            let (win, chosen) = crate::eval::choose_features(vec![(1, a), (4, b)]).unwrap();
            assert_eq!(win, 0, "{block}: the clean set wins held out");
            let (last, n) = evaluate_at(&exp, cfg, &train_a, &test_a, 4, &chosen.chosen).unwrap();
            let (whole, n_whole) = evaluate(&exp, cfg, &train_a, &test_a, 4).unwrap();
            assert_eq!((last.top1, &last.curve, n), (whole.top1, &whole.curve, n_whole), "{block}");
            let mut untagged = chosen.chosen.clone();
            untagged.remove(crate::eval::BLOCKS_PARAM);
            assert_eq!(untagged, whole.chosen, "{block}");
            assert!(last.top1 > 50.0, "{block}: {}", last.top1);
        }
    }
}
