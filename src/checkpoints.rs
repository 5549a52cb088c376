//! `ijepa import-checkpoint` and `ijepa export`: a checkpoint (ours, an official `.pth.tar`, a
//! state dict) converted into our safetensors, or its encoder written under the official names
//! or as a Hugging Face transformers model. Each checks that the weights build the models they
//! claim to be before anything is written, and returns what it did for the binary to print.

use ijepa_engine::checkpoint::{export, import};
use ijepa_engine::model::vit::{VisionTransformer, VitConfig};
use ijepa_engine::model::ParamStore;
use ijepa_engine::{Error, Result};
use ijepa_recipes::ijepa::{PredictorConfig, VisionTransformerPredictor};
use std::path::{Path, PathBuf};

/// What [`import_checkpoint`] wrote.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The checkpoint read.
    pub source: PathBuf,
    /// The safetensors file written.
    pub out: PathBuf,
    /// Each module found (`encoder`, `predictor`, `target_encoder`, and the other recipes':
    /// MAE's `decoder`, DINO's `student.backbone`, ...) with its tensor count, and whether a
    /// model was built and loaded from it (the others are written as read).
    pub modules: Vec<(String, usize, bool)>,
    /// The encoder's shape, as the weights give it.
    pub vit: VitConfig,
    /// Whether the head count is known (given, or implied by a preset width); the weights
    /// alone do not fix it.
    pub heads_known: bool,
    /// What the checkpoint says of itself (epoch, ...).
    pub info: Vec<(String, String)>,
}

impl std::fmt::Display for Imported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (name, n, checked) in &self.modules {
            writeln!(f, "  {name:<16} {n} tensors{}", if *checked { "" } else { " (written as read)" })?;
        }
        let c = &self.vit;
        // (the file's own words, `args.model`: escaped, as its errors are)
        let info: Vec<String> = self.info.iter().map(|(k, v)| format!("{k}={}", ijepa_engine::error::printable(v))).collect();
        write!(
            f,
            "imported {} (ViT {}x{}x{} patch {} at {} px{}) -> {}",
            self.source.display(),
            c.embed_dim,
            c.depth,
            if self.heads_known { c.num_heads.to_string() } else { "?".into() },
            c.patch_size,
            c.image_size,
            if info.is_empty() { String::new() } else { format!("; {}", info.join(" ")) },
            self.out.display()
        )
    }
}

/// The default output of [`import_checkpoint`]: `x.pth.tar` / `x.pth` / `x.pt` -> `x.safetensors`
/// beside it.
pub fn default_import_path(file: &Path) -> PathBuf {
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("checkpoint");
    // a safetensors file (a plain state dict, another tool's) becomes NAME.imported.safetensors
    if let Some(stem) = name.strip_suffix(".safetensors") {
        return file.with_file_name(format!("{stem}.imported.safetensors"));
    }
    let stem = name.trim_end_matches(".tar").trim_end_matches(".pth").trim_end_matches(".pt");
    file.with_file_name(format!("{stem}.safetensors"))
}

fn refused(file: &Path, message: &str) -> Error {
    Error::Checkpoint { path: file.to_path_buf(), message: message.into() }
}

/// A head count recorded with the weights (their run's `config.json`, the file's metadata)
/// that fits no encoder of their width: said as the record's, not as a setting the user wrote.
fn unfit_heads(file: &Path, heads: Option<usize>, why: &str) -> Error {
    refused(file, &format!("records an encoder of {} attention heads (its run's config.json or its metadata), which does not fit its weights ({why}): the record is damaged", heads.unwrap_or(0)))
}

/// The encoder's head count of checkpoint `file`, which no tensor's shape carries: `heads`
/// (`--heads`), or what trained it records — its `run` (the run folder it lies in and that
/// run's `config.json`), else the file's own metadata (a pretraining's checkpoint copied out of
/// its run); `None` where nothing says it. A `heads` other than the recorded one is refused.
fn heads_of(file: &Path, run: Option<&(PathBuf, serde_json::Value)>, heads: Option<usize>) -> Result<Option<usize>> {
    let of_run = run.and_then(|(run, config)| config["encoder"]["num_heads"].as_u64().map(|h| (run.join(ijepa_schema::CONFIG_JSON).display().to_string(), h as usize)));
    let of_file = match ijepa_engine::checkpoint::state::encoder_heads_of(file) {
        Some(Err(raw)) => return Err(refused(file, &ijepa_engine::checkpoint::state::damaged_heads(&raw))),
        of_file => of_file.and_then(|h| h.ok()),
    };
    // (a checkpoint copied into another run's folder: the run's count was taken, and the
    // export written with it)
    if let (Some((config, theirs)), Some(own)) = (&of_run, of_file) {
        if *theirs != own {
            return Err(refused(
                file,
                &format!("records an encoder of {own} attention heads (its metadata), but the run folder it lies in trained {theirs} ({config}): a checkpoint of another run? move it out of that run's folder"),
            ));
        }
    }
    let recorded = of_run.or_else(|| of_file.map(|h| ("the file's metadata".to_string(), h)));
    match (heads, recorded) {
        (Some(h), Some((source, theirs))) if h != theirs => Err(refused(file, &format!("was trained with {theirs} attention heads ({source}), not --heads {h}"))),
        (h, theirs) => Ok(h.or(theirs.map(|t| t.1))),
    }
}

/// The recipe that trained checkpoint `file`, recorded in what [`import_checkpoint`] and an
/// export under the official names write: its `run`'s (the run folder it lies in), the file's
/// own record (an export's, an import's), or the one whose modules it holds.
fn recipe_of(file: &Path, run: Option<&(PathBuf, serde_json::Value)>, models: &import::Models) -> Option<String> {
    run.and_then(|(_, config)| config.get("recipe").and_then(|r| r.as_str()).map(str::to_string))
        .or_else(|| ijepa_engine::checkpoint::state::metadata_of(file).and_then(|m| m.get(ijepa_engine::checkpoint::state::RECIPE).cloned()))
        .or_else(|| models.recipe())
}

/// Converts the checkpoint `file` into our safetensors (official names, `module.` stripped) at
/// `out` (default: [`default_import_path`]). The encoder, predictor and target encoder it holds
/// are built and loaded strictly first; `heads` names the head count where the width implies
/// none (it shapes no tensor).
///
/// # Errors
/// An unreadable or refused file, weights that build no model (naming the key), the write.
pub fn import_checkpoint(file: &Path, out: Option<PathBuf>, heads: Option<usize>) -> Result<Imported> {
    let models = import::load_models(file)?;
    let out = out.unwrap_or_else(|| default_import_path(file));
    // check the weights form a model we can build, before writing anything
    let (shape_from, enc) = models.feature_encoder_named().ok_or_else(|| refused(file, "holds no encoder"))?;
    // an error of the module the model's shape is read from names it; one of another module
    // says where the shape came from (an encoder deeper than the target encoder read "its
    // encoder: missing key blocks.1..." as if the file lacked it)
    let of_module = |name: &str, e: Error| match e {
        Error::Checkpoint { path, message } if name == shape_from => Error::Checkpoint { path, message: format!("its {name}: {message}") },
        Error::Checkpoint { path, message } => Error::Checkpoint { path, message: format!("its {name}: {message} (the model's shape is read from its {shape_from})") },
        other => unbuildable(file, name, heads, other),
    };
    // the head count no shape carries, kept in the file written (it was dropped, and an
    // evaluation of the import under another head count was no longer refused)
    let given = heads;
    let run = ijepa_engine::stages::run_of_checkpoint(file);
    let heads = heads_of(file, run.as_ref(), heads)?;
    // the head count shapes no tensor: when the width names no preset, check with one head
    let (vit, heads_known) = match import::infer_vit(enc, heads, file).and_then(|cfg| cfg.validate().map(|()| cfg)) {
        Ok(cfg) => (cfg, true),
        Err(_) if heads.is_none() => (import::infer_vit(enc, Some(1), file).map_err(|e| of_module(&shape_from, e))?, false),
        // (a recorded count that fits no encoder of this width: said as the record's, not as
        // a setting the user never wrote)
        Err(Error::Config(why)) if given.is_none() && why.contains(" heads ") => return Err(unfit_heads(file, heads, &why)),
        Err(e) => return Err(of_module(&shape_from, e)),
    };
    let store = ParamStore::new(tch::Device::Cpu);
    VisionTransformer::new(&store.root(), &vit).map_err(|e| of_module(&shape_from, e))?;
    let mut modules = Vec::new();
    // a module that does not load is named (an encoder 96 wide beside a target encoder 64
    // wide read "key patch_embed.proj.weight has shape [96, ...]" without saying which)
    // (the module the shape is read from first: a stray key of the target encoder, which made
    // its shape a block deeper, was blamed on the encoder, missing that block)
    let mut order: Vec<_> = import::MODELS.iter().zip([&models.encoder, &models.predictor, &models.target_encoder]).collect();
    order.sort_by_key(|(name, _)| **name != shape_from);
    for (name, sd) in order {
        let Some(sd) = sd else { continue };
        if *name == "predictor" {
            let pcfg = PredictorConfig::infer(sd, &vit, file).map_err(|e| of_module(name, e))?;
            let ps = ParamStore::new(tch::Device::Cpu);
            VisionTransformerPredictor::new(&ps.root(), &pcfg).map_err(|e| of_module(name, e))?;
            ps.load_strict(&import::to_map(sd), file).map_err(|e| of_module(name, e))?;
        } else {
            store.load_strict(&import::to_map(sd), file).map_err(|e| of_module(name, e))?;
        }
        modules.push((name.to_string(), sd.len(), true));
    }
    // (listed in the file's order, whichever was checked first)
    modules.sort_by_key(|(name, ..)| import::MODELS.iter().position(|m| m == name));
    // (the same for the other modules: DINO's teacher backbone, whose shape is read, first,
    // then by name; their order was the file's reading's, and a stray key of the teacher was
    // blamed on the student one time in two)
    let mut others: Vec<&(String, _)> = models.others.iter().collect();
    others.sort_by(|a, b| (a.0 != shape_from, &a.0).cmp(&(b.0 != shape_from, &b.0)));
    let listed = modules.len();
    for (name, sd) in others {
        // DINO's backbones are ViTs: loaded as strictly as an encoder
        let checked = name.ends_with(".backbone");
        if checked {
            let bs = ParamStore::new(tch::Device::Cpu);
            VisionTransformer::new(&bs.root(), &vit)?;
            bs.load_strict(&import::to_map(sd), file).map_err(|e| of_module(name, e))?;
        }
        modules.push((name.clone(), sd.len(), checked));
    }
    // (listed in the file's order too)
    modules[listed..].sort_by_key(|(name, ..)| models.others.iter().position(|(n, _)| n == name));
    // the folder of `--out` is made, as `export` does
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    import::write_ours(&models, &out, heads, recipe_of(file, run.as_ref(), &models).as_deref())?;
    Ok(Imported { source: file.to_path_buf(), out, modules, vit, heads_known, info: models.info.clone() })
}

/// A model that cannot be built from the shapes read from `file`'s module `module` (with the
/// head count `heads` the user gave, if any), said as the file's, or as `--heads`'s where the
/// head count is the argument's; other errors as they are. ("config: encoder depth 5000..."
/// named neither the file nor where the shape came from, as if the experiment were at fault.)
fn unbuildable(file: &Path, module: &str, heads: Option<usize>, e: Error) -> Error {
    match (e, heads) {
        (Error::Config(why), Some(h)) if why.contains(" heads ") => Error::Config(format!("--heads {h}: {why} (the width is the file's)")),
        (Error::Config(why), _) => Error::Checkpoint { path: file.to_path_buf(), message: format!("its {module}'s tensors describe a model that cannot be built: {why}") },
        (e, _) => e,
    }
}

/// The formats [`export_encoder`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// A transformers model folder (`model.safetensors`, `config.json`): the class the
    /// checkpoint's recipe names (`IJepaModel`, MAE's `ViTMAEModel`, DINO's `ViTModel`).
    Hf,
    /// One safetensors file under the official names.
    Official,
}

impl std::str::FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "hf" => Ok(Self::Hf),
            "official" => Ok(Self::Official),
            other => Err(format!("unknown format {other:?} (hf or official)")),
        }
    }
}

/// Which encoder of an I-JEPA checkpoint [`export_encoder`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The one evaluations read (I-JEPA's EMA target encoder; another recipe's feature module).
    Target,
    /// The online encoder: I-JEPA's context encoder (official `encoder`), DINO's student.
    Context,
}

impl std::str::FromStr for Which {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "target" => Ok(Self::Target),
            "context" => Ok(Self::Context),
            other => Err(format!("unknown encoder {other:?} (target or context)")),
        }
    }
}

/// The transformers class the encoder of `models` is exported as: that of the registered
/// recipe holding the most of the file's modules (I-JEPA's three, MAE's `encoder` + `decoder`,
/// DINO's `student.*` / `teacher.*`), when it agrees with the encoder's class token; a bare
/// encoder (or a tie between recipes that disagree) by its class token alone: `ViTModel` with
/// one (it keeps the tokens in order, where `ViTMAEModel` shuffles them), `IJepaModel` without.
/// A tie is broken by the recipe `trained` it (its run's, when the file is in a run folder): a
/// recipe registered with MAE's two modules made an MAE checkpoint a `ViTModel`.
fn hf_model(models: &import::Models, cls_token: bool, trained: Option<&str>) -> std::result::Result<export::HfModel, String> {
    let entries = ijepa_engine::recipe::entries();
    let held = |e: &ijepa_engine::recipe::RecipeEntry| e.modules.iter().filter(|m| models.module(m).is_some()).count();
    let most = entries.iter().map(held).max().unwrap_or(0);
    let mut best: Vec<_> = entries.iter().filter(|e| most > 1 && held(e) == most).collect();
    if best.len() > 1 && best.iter().any(|e| Some(e.schema.name.as_str()) == trained) {
        best.retain(|e| Some(e.schema.name.as_str()) == trained);
    }
    if let [only] = best.as_slice() {
        return match only.hf_model {
            Some(m) if m.has_cls_token() == cls_token => Ok(m),
            Some(m) => Err(format!(
                "holds recipe {}'s modules but its encoder has {} class token, which a transformers {} {}",
                only.schema.name,
                if cls_token { "a" } else { "no" },
                m.class(),
                if cls_token { "does not have" } else { "needs" }
            )),
            None => Err(format!("holds recipe {}'s modules, and that recipe names no transformers class to export its encoder as (use --format official)", only.schema.name)),
        };
    }
    Ok(if cls_token { export::HfModel::Vit } else { export::HfModel::IJepa })
}

/// The models of facebookresearch/mae's `models_mae.py` (`--model` of `main_pretrain.py`): each
/// a decoder of 16 heads (`dec512d8b`).
const OFFICIAL_MAE_MODELS: [&str; 6] = [
    "mae_vit_base_patch16",
    "mae_vit_large_patch16",
    "mae_vit_huge_patch14",
    "mae_vit_base_patch16_dec512d8b",
    "mae_vit_large_patch16_dec512d8b",
    "mae_vit_huge_patch14_dec512d8b",
];

/// The files `--format hf` writes into its folder.
const HF_FILES: [&str; 3] = ["model.safetensors", "config.json", "preprocessor_config.json"];

/// Whether `--format hf` may write into `out`: a folder not there yet, an empty one, or one
/// that holds only an earlier export (its three files, its `config.json` a transformers
/// config, its `model.safetensors` weights an export wrote, [`export::is_hf_export`]): anything else in it (the user's files, another tool's `config.json`) is refused,
/// so that nothing but an earlier export's own files is replaced.
///
/// # Errors
/// The folder holds other files, naming them.
pub fn check_hf_folder(out: &Path) -> std::result::Result<(), String> {
    // (not there: made; not a folder: the caller's output check says so)
    let Ok(entries) = std::fs::read_dir(out) else { return Ok(()) };
    let mut others: Vec<String> = entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| !HF_FILES.contains(&n.as_str())).collect();
    others.sort();
    // each of an export's files as an export writes it: a regular file (a link, a folder or a
    // link to nothing was called foreign weights), its JSON a transformers config / an image
    // processor's, its weights an export's (a training checkpoint copied in as
    // `model.safetensors`, or a user's own transformers model, was replaced), and the three
    // together (a user's `preprocessor_config.json` alone was replaced without a word)
    let present: Vec<&str> = HF_FILES.iter().copied().filter(|f| std::fs::symlink_metadata(out.join(f)).is_ok()).collect();
    for f in present.iter().rev() {
        let path = out.join(f);
        let regular = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
        // (read once, for the keys its checks ask for)
        let value = f.ends_with(".json").then(|| std::fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())).flatten();
        let has = |key: &str| value.as_ref().is_some_and(|v| v.get(key).is_some());
        let why = if !regular {
            Some("not a regular file")
        } else {
            match *f {
                "config.json" if !(has("architectures") && has("model_type")) => Some("not a transformers config an export wrote"),
                "preprocessor_config.json" if !has("image_processor_type") => Some("not an image processor's config an export wrote"),
                "model.safetensors" if !export::is_hf_export(&path) => Some(
                    "not weights an export wrote: a training checkpoint's, or a model saved by transformers? An export by an ijepa before 2026-12-04, whose files carry no SHA-256 of their data, reads as one too: remove it by hand",
                ),
                _ => None,
            }
        };
        if let Some(why) = why {
            others.insert(0, format!("{f} ({why})"));
        }
    }
    if !present.is_empty() && present.len() < HF_FILES.len() && others.is_empty() {
        let missing: Vec<&str> = HF_FILES.iter().copied().filter(|f| !present.contains(f)).collect();
        others.push(format!("{} (without the {} an export writes beside it)", present.join(", "), missing.join(", ")));
    }
    if others.is_empty() {
        return Ok(());
    }
    let shown = others.iter().take(3).map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    let more = if others.len() > 3 { format!(" and {} more", others.len() - 3) } else { String::new() };
    Err(format!(
        "{} holds {shown}{more}: `--format hf` writes {} into a new or empty folder, or over an earlier export's; choose another --out",
        out.display(),
        HF_FILES.join(", ")
    ))
}

/// Writes one encoder of the checkpoint `file` to `out` in `format`, after building and
/// loading it strictly. Returns the line to print.
///
/// # Errors
/// An unreadable or refused file, no such encoder, weights that build no model, the write.
pub fn export_encoder(file: &Path, format: ExportFormat, which: Which, heads: Option<usize>, out: &Path) -> Result<String> {
    let models = import::load_models(file)?;
    // named as what it is: a checkpoint without a target encoder (pixel targets, MAE) gives
    // its encoder, which is said (it was called the target encoder)
    // a registered recipe's checkpoint whose evaluated module has a name of its own (not the
    // built-in `target_encoder` / `encoder`): that module is its target
    let registered = models.recipe_feature_module().filter(|m| !["target_encoder", "encoder"].contains(&m.as_str()));
    // (DINO's `teacher.backbone`: "the teacher encoder"; another recipe's by its module)
    let registered_label = registered.as_deref().map(|m| match m.strip_suffix(".backbone") {
        Some(net) => format!("{net} encoder"),
        None => format!("`{m}` encoder (the one its evaluations read)"),
    });
    let (enc, name) = match which {
        Which::Target if registered.is_some() => (registered.as_deref().and_then(|m| models.module(m)), registered_label.as_deref().unwrap_or("encoder")),
        Which::Target => match (&models.target_encoder, &models.encoder) {
            (Some(t), _) => (Some(t), "target encoder"),
            // an I-JEPA checkpoint (a predictor beside it) of pixel targets, or MAE's
            (None, Some(e)) if models.predictor.is_some() => (Some(e), "encoder (the checkpoint holds no target encoder)"),
            (None, Some(e)) => (Some(e), "encoder"),
            (None, None) => (models.feature_encoder(), "teacher encoder"),
        },
        // DINO's online network is its student (`student.backbone`)
        Which::Context => match (&models.encoder, models.module("student.backbone")) {
            (None, Some(student)) => (Some(student), "student encoder"),
            // one encoder and no predictor (MAE's, a bare encoder's): there is no context
            // encoder beside it (its export was labelled one, byte for byte the default's)
            (Some(_), _) if models.target_encoder.is_none() && models.predictor.is_none() => {
                return Err(refused(file, "holds one encoder and no context encoder beside it (an MAE or bare encoder checkpoint): export it with `--encoder target`, the default"));
            }
            (enc, _) => (enc.as_ref(), "context encoder"),
        },
    };
    let enc = enc.ok_or_else(|| refused(file, &format!("holds no {}", if which == Which::Target { "target encoder" } else { name })))?;
    // the head count is in no tensor's shape: the run that trained the weights says it
    let run = ijepa_engine::stages::run_of_checkpoint(file);
    let given = heads;
    let heads = heads_of(file, run.as_ref(), heads)?;
    // what the official-names file records (not the stand-in below)
    let known_heads = heads;
    // the official layout names tensors only: any head count builds the model that checks them
    let heads = if format == ExportFormat::Official { heads.or(Some(1)) } else { heads };
    let cfg = import::infer_vit(enc, heads, file).map_err(|e| {
        // in a run folder whose config.json is gone, say where the head count should have come from
        let in_run = file.parent().filter(|p| p.file_name() == Some(ijepa_schema::CHECKPOINTS.as_ref())).and_then(Path::parent);
        match in_run {
            Some(run) if heads.is_none() && !run.join(ijepa_schema::CONFIG_JSON).is_file() => match e {
                Error::Checkpoint { path, message } => {
                    Error::Checkpoint { path, message: format!("{message}; the run's {} that records it is missing", run.join(ijepa_schema::CONFIG_JSON).display()) }
                }
                other => other,
            },
            _ => e,
        }
    });
    let of_file = |e: Error| unbuildable(file, name, given, e);
    let cfg = cfg.map_err(of_file)?;
    cfg.validate().map_err(|e| match e {
        Error::Config(why) if given.is_none() && known_heads.is_some() && why.contains(" heads ") => unfit_heads(file, known_heads, &why),
        e => of_file(e),
    })?;
    let store = ParamStore::new(tch::Device::Cpu);
    VisionTransformer::new(&store.root(), &cfg).map_err(of_file)?;
    // the module is named (a file holds several encoders: `missing key norm.weight` did not say
    // whose), and a shape error says the model's shape came from the file's own tensors
    store.load_strict(&import::to_map(enc), file).map_err(|e| match e {
        Error::Checkpoint { path, message } => {
            let read = if message.contains(" has shape ") { " (the model's shape is read from its other tensors, which disagree with this one)" } else { "" };
            Error::Checkpoint { path, message: format!("its {name}: {message}{read}") }
        }
        other => other,
    })?;
    Ok(match format {
        ExportFormat::Hf => {
            let trained = run.as_ref().and_then(|(_, config)| config.get("recipe").and_then(|r| r.as_str()));
            let model = hf_model(&models, cfg.cls_token, trained).map_err(|why| refused(file, &why))?;
            let decoder = if model == export::HfModel::VitMae { models.module("decoder").and_then(export::decoder_shape) } else { None };
            // what the weights do not say, from the run that trained them
            // what an official MAE training checkpoint (`checkpoint-N.pth`) says of its command
            // line: `args.norm_pix_loss`, and its model (16 decoder heads, every official
            // model's)
            let args = |k: &str| models.info.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            let decoder = decoder.map(|d| {
                // (a run's config.json leaves the decoder out while it holds the defaults)
                let defaults = serde_json::to_value(ijepa_dsl::config::DecoderConfig::default()).unwrap_or_default();
                let of_run = run.as_ref().map(|(_, c)| if c["decoder"].is_object() { &c["decoder"] } else { &defaults });
                export::HfDecoder {
                    heads: of_run
                        .and_then(|c| c["num_heads"].as_u64())
                        .map(|h| h as usize)
                        .or_else(|| args("args.model").filter(|m| OFFICIAL_MAE_MODELS.contains(m)).map(|_| 16)),
                    norm_pix_loss: of_run.and_then(|c| c["norm_pix_loss"].as_bool()).or_else(|| args("args.norm_pix_loss").and_then(|v| v.parse().ok())),
                    ..d
                }
            });
            if let Some(d) = decoder.filter(|d| d.heads.is_none() || d.norm_pix_loss.is_none()) {
                // (a run's checkpoint copied elsewhere: transformers read 16 heads and no
                // pixel normalisation, whatever the run trained)
                let unsaid = match (d.heads, d.norm_pix_loss) {
                    (None, None) => "attention heads and pixel normalisation are",
                    (None, Some(_)) => "attention heads are",
                    _ => "pixel normalisation is",
                };
                let defaults = match (d.heads, d.norm_pix_loss) {
                    (None, None) => "16 heads, norm_pix_loss false",
                    (None, Some(_)) => "16 heads",
                    _ => "norm_pix_loss false",
                };
                let them = if d.heads.is_none() { "them" } else { "it" };
                tracing::warn!(
                    "{}: the MAE decoder's {unsaid} in no tensor, and neither a run's config.json beside the file nor the file's own `args` says: \
                     config.json leaves {them} to transformers' defaults ({defaults}); export from the run's `checkpoints/` folder to record {them} (the encoder is exported whole either way)",
                    file.display()
                );
            }
            // what its image processor does: the evaluations' transform of the run's data
            let dataset = run.as_ref().and_then(|(_, c)| c["data"]["dataset"].as_str());
            let pre = export::HfPreprocess::of(dataset, cfg.image_size);
            export::write_hf(enc, &cfg, model, decoder, pre, out, file)?;
            // (a head count no run, metadata or flag says is the width's preset's: a checkpoint
            // that trained another computes other features under it, which nothing said)
            let preset = if known_heads.is_none() {
                format!(
                    "; {} attention heads, the preset of width {}: nothing beside the weights says their count, give --heads if they trained another",
                    cfg.num_heads, cfg.embed_dim
                )
            } else {
                String::new()
            };
            let whose = match dataset {
                Some(_) => "the evaluation transform of the run's data",
                None => "ImageNet's 256/224 ratio: no run folder says what data trained it",
            };
            format!(
                "exported the {name} of {} as a transformers {} to {}/ (its image processor resizes the shorter side to {} px and takes the centre {}x{}: {whose}{preset})",
                file.display(),
                model.class(),
                out.display(),
                pre.resize,
                pre.crop,
                pre.crop
            )
        }
        ExportFormat::Official => {
            // the folder of `--out` is made, as for `--format hf` and `import-checkpoint`
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            }
            let recorded = known_heads.map(|h| h.to_string());
            // (and the recipe that trained it)
            let recipe = recipe_of(file, run.as_ref(), &models);
            let meta: Vec<(&str, &str)> = recorded
                .as_deref()
                .map(|h| (ijepa_engine::checkpoint::state::ENCODER_HEADS, h))
                .into_iter()
                .chain(recipe.as_deref().map(|r| (ijepa_engine::checkpoint::state::RECIPE, r)))
                .collect();
            ijepa_engine::checkpoint::state::save_weights_with(out, enc, &meta)?;
            format!("exported the {name} of {} under the official names to {}", file.display(), out.display())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_import_path_replaces_the_torch_suffixes() {
        for (from, to) in [("a/x.pth.tar", "a/x.safetensors"), ("x.pth", "x.safetensors"), ("b/x.pt", "b/x.safetensors"), ("y", "y.safetensors"), ("s/w.safetensors", "s/w.imported.safetensors")] {
            assert_eq!(default_import_path(Path::new(from)), PathBuf::from(to), "{from}");
        }
    }

    #[test]
    fn formats_and_encoders_parse_or_name_the_choices() {
        assert_eq!("hf".parse::<ExportFormat>(), Ok(ExportFormat::Hf));
        assert_eq!("official".parse::<ExportFormat>(), Ok(ExportFormat::Official));
        assert!("onnx".parse::<ExportFormat>().unwrap_err().contains("hf or official"));
        assert_eq!("context".parse::<Which>(), Ok(Which::Context));
        assert!("student".parse::<Which>().unwrap_err().contains("target or context"));
    }
}
