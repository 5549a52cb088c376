//! Loading model weights from any supported file: the official `.pth.tar` checkpoints
//! (`encoder`, `predictor`, `target_encoder` saved from DDP with `module.` prefixes), plain
//! PyTorch state dicts, and safetensors (ours, with `encoder.`/`predictor.`/`target_encoder.`
//! prefixes, or a bare encoder state dict). Shapes are checked when the weights are loaded
//! into a model ([`crate::model::ParamStore::load_strict`]).

use super::pickle::Value;
use super::state;
use super::torch_file;
use crate::error::{Error, Result};
use crate::model::vit::VitConfig;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// Named tensors of one model, in file order.
pub type StateDict = Vec<(String, Tensor)>;

/// The models found in a checkpoint file.
#[derive(Debug, Default)]
pub struct Models {
    /// The file.
    pub path: PathBuf,
    /// Context encoder (official `encoder`), if present.
    pub encoder: Option<StateDict>,
    /// Predictor, if present.
    pub predictor: Option<StateDict>,
    /// EMA target encoder, if present.
    pub target_encoder: Option<StateDict>,
    /// Modules of other recipes (e.g. MAE's `decoder`), by name, in file order.
    pub others: Vec<(String, StateDict)>,
    /// Scalar fields of an official checkpoint (`epoch`, `loss`, `lr`, `batch_size`, `world_size`).
    pub info: Vec<(String, String)>,
}

/// The names of the three models, in checkpoint order.
pub const MODELS: [&str; 3] = ["encoder", "predictor", "target_encoder"];

/// Removes DistributedDataParallel's `module.` prefix (the one place that knows about it).
pub fn strip_module(name: &str) -> &str {
    name.strip_prefix("module.").unwrap_or(name)
}

impl Models {
    /// The module called `name` (`encoder`, `predictor`, `target_encoder` or another
    /// recipe's), if present.
    pub fn module(&self, name: &str) -> Option<&StateDict> {
        match name {
            "encoder" => self.encoder.as_ref(),
            "predictor" => self.predictor.as_ref(),
            "target_encoder" => self.target_encoder.as_ref(),
            _ => self.others.iter().find(|(n, _)| n == name).map(|(_, sd)| sd),
        }
    }

    /// The encoder features should come from: the module a registered recipe's evaluations
    /// read when the checkpoint holds exactly that recipe's modules (a recipe whose online
    /// network is its `encoder` and whose evaluated one is another, as DINO's student and
    /// teacher: the `encoder` was taken); else the target encoder when present (the paper
    /// evaluates it), else the encoder, else the module any registered recipe's evaluations read.
    pub fn feature_encoder(&self) -> Option<&StateDict> {
        self.feature_encoder_named().map(|(_, sd)| sd)
    }

    /// [`Models::feature_encoder`] with its module's name (`target_encoder`, ...).
    pub fn feature_encoder_named(&self) -> Option<(String, &StateDict)> {
        if let Some(m) = self.recipe_feature_module() {
            if let Some(sd) = self.module(&m) {
                return Some((m, sd));
            }
        }
        ["target_encoder", "encoder"]
            .into_iter()
            .map(String::from)
            // another registered recipe's (DINO: `teacher.backbone`)
            .chain(crate::recipe::feature_modules())
            .find_map(|m| self.module(&m).map(|sd| (m, sd)))
    }

    /// The module the evaluations of the registered recipe whose modules are exactly this
    /// checkpoint's read ([`crate::recipe::feature_module_of`]), if one is.
    pub fn recipe_feature_module(&self) -> Option<String> {
        crate::recipe::feature_module_of(&self.module_names())
    }

    /// The one registered recipe whose modules are exactly this checkpoint's
    /// ([`crate::recipe::recipe_of_modules`]), if one is.
    pub fn recipe(&self) -> Option<String> {
        crate::recipe::recipe_of_modules(&self.module_names())
    }

    /// The names of the modules it holds (in checkpoint order, then other recipes').
    pub fn module_names(&self) -> Vec<&str> {
        MODELS
            .iter()
            .zip([&self.encoder, &self.predictor, &self.target_encoder])
            .filter(|(_, sd)| sd.is_some())
            .map(|(n, _)| *n)
            .chain(self.others.iter().map(|(n, _)| n.as_str()))
            .collect()
    }

    /// All tensors as one map with their module prefixes (`encoder.`, `predictor.`, ...).
    pub fn prefixed(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (name, sd) in MODELS.iter().zip([&self.encoder, &self.predictor, &self.target_encoder]) {
            if let Some(sd) = sd {
                out.extend(sd.iter().map(|(k, t)| (format!("{name}.{k}"), t.shallow_clone())));
            }
        }
        for (name, sd) in &self.others {
            out.extend(sd.iter().map(|(k, t)| (format!("{name}.{k}"), t.shallow_clone())));
        }
        out
    }
}

fn bad(path: &Path, message: impl Into<String>) -> Error {
    Error::Checkpoint { path: path.to_path_buf(), message: message.into() }
}

fn strip_all(sd: StateDict) -> StateDict {
    sd.into_iter().map(|(k, t)| (strip_module(&k).to_string(), t)).collect()
}

/// Refuses a checkpoint path that is not a regular file: a device (`/dev/zero` would be read
/// or hashed without end), a pipe or a folder.
///
/// # Errors
/// Not a regular file, or none there.
pub fn regular_file(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => Err(bad(path, "not a regular file (a checkpoint is a file: .safetensors, .pth.tar, .pt)")),
        Ok(_) => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Reads the models of `path`, whatever its format (detected from the first bytes).
pub fn load_models(path: &Path) -> Result<Models> {
    regular_file(path)?;
    // the first 14 bytes (fewer in a shorter file)
    let mut first = Vec::with_capacity(14);
    {
        use std::io::Read;
        let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        f.take(14).read_to_end(&mut first).map_err(|e| Error::io(path, e))?;
    }
    let n = first.len();
    if n < 8 {
        return Err(bad(path, format!("the file is {n} bytes long: not a checkpoint")));
    }
    let head: [u8; 8] = first[..8].try_into().expect("8 of 14 bytes");
    if head[0] == 0x80 && (2..=5).contains(&head[1]) {
        // a pickle stream at the top level: torch.save's legacy (pre-1.6, non-zip) format
        // begins with its magic number (0x1950a86a20f9469cfc6c, pickled as a LONG1); any
        // other pickle is no torch.save file at all
        if first[2..] == [0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19] {
            return Err(bad(
                path,
                "a legacy (non-zip) torch.save file (PyTorch < 1.6), a format we do not read. \
                 Re-save it in the zip format PyTorch has written since 1.6, in Python: \
                 torch.save(torch.load(OLD, weights_only=True), NEW) (`weights_only=False` runs the file's code: only for a file you trust)",
            ));
        }
        return Err(bad(
            path,
            "a bare Python pickle, not a torch.save file nor safetensors: not a checkpoint we read \
             (never unpickle a file you do not trust: unpickling runs its code)",
        ));
    }
    // safetensors begins with its header's length (little-endian u64) and then `{`: anything
    // else that is not a zip is neither format
    let header_len = u64::from_le_bytes(head);
    if !head.starts_with(b"PK") && !(2..(1 << 30)).contains(&header_len) {
        return Err(bad(path, "neither a torch.save zip archive (.pth / .pth.tar / .pt) nor a safetensors file: not a checkpoint, or a corrupt one"));
    }
    let m = if head.starts_with(b"PK") { from_torch(path)? } else { from_safetensors(path)? };
    for (k, t) in m.prefixed() {
        state::check_finite(path, &k, &t)?;
        fits_float32(path, &k, &t)?;
    }
    Ok(m)
}

/// The tensors of the safetensors file `path` whose dtype (its header's) is none the reader
/// takes, with that dtype, in the header's order of names.
fn unread_dtypes(path: &Path) -> Vec<(String, String)> {
    const READ: [&str; 10] = ["BOOL", "U8", "I8", "I16", "I32", "I64", "F16", "BF16", "F32", "F64"];
    let Some((header, _, _)) = state::header_of(path) else { return Vec::new() };
    let Some(entries) = header.as_object() else { return Vec::new() };
    let mut out: Vec<(String, String)> = entries
        .iter()
        .filter(|(k, _)| k.as_str() != "__metadata__")
        .filter_map(|(k, v)| v.get("dtype").and_then(|d| d.as_str()).filter(|d| !READ.contains(d)).map(|d| (k.clone(), d.to_string())))
        .collect();
    out.sort();
    out
}

/// The first tensor of the safetensors header of `path` whose shape libtorch cannot hold
/// ([`super::shape_out_of_range`]), with its shape as written.
fn shapes_out_of_range(path: &Path) -> Option<(String, String)> {
    let (header, _, _) = state::header_of(path)?;
    let mut found: Vec<(String, String)> = header
        .as_object()?
        .iter()
        .filter(|(k, _)| k.as_str() != "__metadata__")
        .filter_map(|(k, v)| {
            let shape = v.get("shape")?.as_array()?;
            let dims: Option<Vec<u64>> = shape.iter().map(serde_json::Value::as_u64).collect();
            super::shape_out_of_range(dims?).then(|| (k.clone(), serde_json::Value::Array(shape.clone()).to_string()))
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

/// `t` (the tensor `name` of `path`) when its values fit in float32, where every model
/// computes: a float64 value beyond float32's range became Inf there (an imported file held
/// Inf weights, exit 0).
fn fits_float32(path: &Path, name: &str, t: &Tensor) -> Result<()> {
    if t.kind() != Kind::Double || t.numel() == 0 {
        return Ok(());
    }
    let largest = t.f_abs()?.f_max()?.double_value(&[]);
    if largest > f64::from(f32::MAX) {
        return Err(bad(
            path,
            format!("tensor `{name}` (float64) holds a value of magnitude {largest:e}, beyond float32's range (3.4e38): the models compute in float32, where it would be Inf"),
        ));
    }
    Ok(())
}

/// The top-level keys of a `torch.save` checkpoint whose tensors are read: the models' (ours and
/// the official I-JEPA's, DINO's, a `{"state_dict": ...}` / `{"model": ...}` wrapper); a plain
/// state dict's own tensors are read too.
const READ_KEYS: [&str; 8] = ["encoder", "predictor", "target_encoder", "student", "teacher", "dino_loss", "state_dict", "model"];

fn from_torch(path: &Path) -> Result<Models> {
    // a training checkpoint's optimizer moments (`opt`, MAE's and DINO's `optimizer`), its
    // scaler and anything else stay unread: they took their whole size in memory (ViT-H's
    // moments are twice its weights) to be dropped
    let v = torch_file::load_selected(path, |p| p.len() == 1 || p.first().is_some_and(|k| READ_KEYS.contains(&k.as_str())))?;
    let mut m = Models { path: path.to_path_buf(), ..Default::default() };
    let has_models = MODELS.iter().any(|k| v.get(k).is_some());
    if has_models {
        for (name, slot) in MODELS.iter().zip([&mut m.encoder, &mut m.predictor, &mut m.target_encoder]) {
            if let Some(sd) = v.get(name) {
                *slot = Some(strip_all(torch_file::state_dict(sd, path)?));
            }
        }
    } else if ["student", "teacher"].iter().any(|k| v.get(k).is_some()) {
        // an official DINO checkpoint (main_dino.py's `save_dict`): the student's and the
        // teacher's MultiCropWrapper state dicts (`backbone.*`, `head.*`) and the loss's center
        for net in ["student", "teacher"] {
            let Some(sd) = v.get(net) else { continue };
            let sd = strip_all(torch_file::state_dict(sd, path)?);
            for part in ["backbone", "head"] {
                let prefix = format!("{part}.");
                let module: StateDict = sd.iter().filter_map(|(k, t)| k.strip_prefix(&prefix).map(|r| (r.to_string(), t.shallow_clone()))).collect();
                if !module.is_empty() {
                    m.others.push((format!("{net}.{part}"), module));
                }
            }
            if let Some((k, _)) = sd.iter().find(|(k, _)| !k.starts_with("backbone.") && !k.starts_with("head.")) {
                return Err(bad(path, format!("unexpected key `{k}` in DINO's `{net}` (its keys are `backbone.*` and `head.*`)")));
            }
        }
        if let Some(loss) = v.get("dino_loss") {
            m.others.push(("dino_loss".into(), strip_all(torch_file::state_dict(loss, path)?)));
        }
    } else {
        // a plain state dict (or {"state_dict": ...} / {"model": ...}) of one encoder, or of an
        // official MAE model with its decoder (the `mae_visualize_*` releases): the decoder's
        // keys (`decoder_*`, `mask_token`) are its module
        let sd = ["state_dict", "model"].iter().find_map(|k| v.get(k)).unwrap_or(&v);
        let all = strip_all(torch_file::state_dict(sd, path).map_err(|e| {
            bad(path, format!("holds neither `encoder`/`predictor`/`target_encoder`, DINO's `student`/`teacher`, nor a plain state dict ({e})"))
        })?);
        assign_flat(&mut m, all, path)?;
    }
    // what a training checkpoint says of itself (I-JEPA's epoch, loss, lr...; MAE's and DINO's
    // epoch), and the architecture MAE's and DINO's command line (`args`, an
    // argparse.Namespace) named
    for key in &INFO_ORDER[..5] {
        match v.get(key) {
            Some(Value::Int(i)) => m.info.push((key.to_string(), i.to_string())),
            Some(Value::Float(f)) => m.info.push((key.to_string(), f.to_string())),
            _ => {}
        }
    }
    for key in ["model", "arch"] {
        if let Some(name) = v.get("args").and_then(|a| a.get(key)).and_then(Value::as_str) {
            m.info.push((format!("args.{key}"), name.to_string()));
        }
    }
    // (MAE's loss: in no tensor, and what an export's config.json records of the decoder)
    if let Some(Value::Bool(b)) = v.get("args").and_then(|a| a.get("norm_pix_loss")) {
        m.info.push(("args.norm_pix_loss".into(), b.to_string()));
    }
    Ok(m)
}

fn from_safetensors(path: &Path) -> Result<Models> {
    // ours carry a checksum of their data (final, imported, exported and training files)
    state::verify_file(path)?;
    // (a shape libtorch cannot hold failed inside its reader, with its backtrace, and was
    // called no safetensors file)
    if let Some((name, shape)) = shapes_out_of_range(path) {
        return Err(bad(path, format!("tensor `{name}` has shape {shape}, past what a tensor can hold: the file is damaged")));
    }
    let all = Tensor::read_safetensors(path).map_err(|e| match unread_dtypes(path).first() {
        // (a header the reader could not take for its dtypes: float8, unsigned 16-64 bit...)
        Some((name, dtype)) => bad(
            path,
            format!(
                "tensor `{name}` is stored as {dtype}, which is not read (F64, F32, F16, BF16, and integer and bool tensors are): convert the \
                 file's tensors to float32, e.g. in Python with safetensors: save_file({{k: v.float() for k, v in load_file(IN).items()}}, OUT)"
            ),
        ),
        None => bad(path, format!("neither a PyTorch zip checkpoint nor a readable safetensors file ({e})")),
    })?;
    // the transformers layout `ijepa export --format hf` writes is named, not reported as a
    // stray key beside the module keys
    if all.iter().any(|(k, _)| k.starts_with("embeddings.patch_embeddings.projection.")) {
        return Err(bad(
            path,
            "the file holds the Hugging Face transformers layout (`embeddings.*`, `encoder.layer.*`, as `ijepa export --format hf` \
             writes it), which is not read back: give the checkpoint it was exported from, or an export under the official names \
             (`ijepa export --format official`)",
        ));
    }
    let mut m = Models { path: path.to_path_buf(), ..Default::default() };
    assign_flat(&mut m, all, path)?;
    // what an import kept of its source ([`write_ours`]), in the order a torch file gives it
    let kept = state::metadata_of(path).unwrap_or_default();
    let mut info: Vec<(String, String)> = kept.iter().filter_map(|(k, v)| Some((k.strip_prefix(INFO_PREFIX)?.to_string(), v.clone()))).collect();
    info.sort_by_key(|(k, _)| (INFO_ORDER.iter().position(|o| o == k).unwrap_or(INFO_ORDER.len()), k.clone()));
    m.info = info;
    Ok(m)
}

/// The order of [`Models::info`]'s keys as a torch file gives them.
const INFO_ORDER: [&str; 8] = ["epoch", "loss", "lr", "batch_size", "world_size", "args.model", "args.arch", "args.norm_pix_loss"];

/// A flat state dict into `m`, whichever file it came from (a torch.save dict and a
/// safetensors file of the same tensors read the same): split by the module prefixes as our
/// files are written (`encoder.`, `predictor.`, `target_encoder.`, every registered recipe's:
/// MAE's `decoder.`, ...); without them, one encoder, or an official MAE model with its decoder
/// (the `mae_visualize_*` releases: `decoder_*` and `mask_token` are the decoder's module).
fn assign_flat(m: &mut Models, all: StateDict, path: &Path) -> Result<()> {
    let mut plain = Vec::new();
    // the module prefixes: I-JEPA's and every registered recipe's (MAE's `decoder`, ...)
    let mut modules: Vec<String> = MODELS.iter().map(|s| s.to_string()).collect();
    modules.extend(crate::recipe::module_names().into_iter().filter(|n| !MODELS.contains(&n.as_str())));
    let mut split: Vec<(String, StateDict)> = Vec::new();
    for (k, t) in all {
        // the optimiser moments of our training checkpoints are not models
        if k.starts_with("optimizer.") {
            continue;
        }
        // (DDP's `module.` before or after the module's name: an official checkpoint's models
        // flattened to `encoder.module.*` were read as missing every key)
        let k = strip_module(&k).to_string();
        match modules.iter().find(|p| k.strip_prefix(p.as_str()).is_some_and(|r| r.starts_with('.'))) {
            Some(p) => {
                let rest = strip_module(&k[p.len() + 1..]).to_string();
                match split.iter_mut().find(|(n, _)| n == p) {
                    Some((_, sd)) => sd.push((rest, t)),
                    None => split.push((p.clone(), vec![(rest, t)])),
                }
            }
            None => plain.push((k, t)),
        }
    }
    if split.is_empty() {
        if plain.iter().any(|(k, _)| k.starts_with("decoder_")) {
            let (decoder, encoder): (StateDict, StateDict) = plain.into_iter().partition(|(k, _)| k.starts_with("decoder_") || k == "mask_token");
            m.encoder = Some(encoder);
            m.others.push(("decoder".into(), decoder));
        } else {
            m.encoder = Some(plain);
        }
    } else if let Some((k, _)) = plain.first() {
        return Err(bad(path, format!("unexpected key `{k}` beside the module keys ({}.)", modules.join("., "))));
    } else {
        for (name, sd) in split {
            match name.as_str() {
                "encoder" => m.encoder = Some(sd),
                "predictor" => m.predictor = Some(sd),
                "target_encoder" => m.target_encoder = Some(sd),
                _ => m.others.push((name, sd)),
            }
        }
    }
    Ok(())
}

/// The shape of tensor `key` of a state dict; an error naming `path` when it is absent.
pub fn shape_of(sd: &StateDict, key: &str, path: &Path) -> Result<Vec<i64>> {
    sd.iter()
        .find(|(k, _)| k == key)
        .map(|(_, t)| t.size())
        .ok_or_else(|| bad(path, format!("missing key `{key}`")))
}

/// The shape of tensor `key`, which must have `rank` dimensions, none of them empty (a
/// checkpoint whose `fc1.weight` was a scalar panicked where its rows were read).
///
/// # Errors
/// A missing key, another rank or an empty dimension, naming the key and its shape.
pub fn shape_of_rank(sd: &StateDict, key: &str, rank: usize, path: &Path) -> Result<Vec<i64>> {
    let shape = shape_of(sd, key, path)?;
    if shape.len() != rank || shape.contains(&0) {
        return Err(bad(path, format!("`{key}` has shape {shape:?}: a {rank}-d tensor with no empty dimension was expected")));
    }
    Ok(shape)
}

/// Infers the encoder shape from its state dict: width and grid from `pos_embed` (one row
/// more, first, when a `cls_token` is present: MAE's), patch from
/// `patch_embed.proj.weight`, depth from the block count, MLP ratio from `fc1`. The head count
/// is not stored in weights: it comes from the preset of that width (tiny 3 ... giant 16),
/// else `heads` must be given.
pub fn infer_vit(sd: &StateDict, heads: Option<usize>, path: &Path) -> Result<VitConfig> {
    let pos = shape_of_rank(sd, "pos_embed", 3, path)?;
    let proj = shape_of_rank(sd, "patch_embed.proj.weight", 4, path)?;
    let cls_token = sd.iter().any(|(k, _)| k == "cls_token");
    let (n, d, patch) = ((pos[1] as usize).saturating_sub(usize::from(cls_token)), pos[2] as usize, proj[2] as usize);
    let grid = (n as f64).sqrt().round() as usize;
    if n == 0 {
        return Err(bad(path, format!("`pos_embed` {pos:?} has no patch position")));
    }
    if grid * grid != n {
        // (a `cls_token` beside a table of patch positions alone: "48 positions" named a count
        // the file does not hold)
        let all = pos[1] as usize;
        let square = |x: usize| ((x as f64).sqrt().round() as usize).pow(2) == x;
        if cls_token && square(all) {
            return Err(bad(path, format!("holds a `cls_token`, but `pos_embed`'s {all} positions are a square grid of patches with no class position (an I-JEPA encoder has no class token): remove `cls_token`, or give a model whose table has one")));
        }
        return Err(bad(path, format!("`pos_embed` has {n} positions{}, not a square grid", if cls_token { " besides its class position" } else { "" })));
    }
    let depth = (0..).take_while(|i| sd.iter().any(|(k, _)| k.starts_with(&format!("blocks.{i}.")))).count();
    let hidden = shape_of_rank(sd, "blocks.0.mlp.fc1.weight", 2, path)?[0] as usize;
    let preset_heads = ijepa_dsl::config::VIT_PRESETS.iter().find(|p| p.1 == d).map(|p| p.3);
    let num_heads = heads.or(preset_heads).ok_or_else(|| {
        bad(path, format!("width {d} matches no preset, so the head count is unknown; give it (`--heads`)"))
    })?;
    Ok(VitConfig {
        image_size: grid * patch,
        patch_size: patch,
        embed_dim: d,
        depth,
        num_heads,
        mlp_ratio: crate::model::vit::encoder::mlp_ratio_of(hidden, d),
        eps: 1e-6,
        rescale_init: false,
        cls_token,
        // the table's values are loaded either way; a learnt one (DINO) is only trained on
        learned_pos_embed: false,
    })
}

/// A map of a state dict (for strict loading).
pub fn to_map(sd: &StateDict) -> HashMap<String, Tensor> {
    sd.iter().map(|(k, t)| (k.clone(), t.shallow_clone())).collect()
}

/// Prefix of the metadata keys under which an imported file keeps what its source said of
/// itself ([`Models::info`]: an official checkpoint's `epoch`, `loss`..., MAE's `args.*`), read
/// back into `info` when the import is read.
pub const INFO_PREFIX: &str = "official.";

/// Writes the models as one float32 safetensors file under our (= official) names with
/// `encoder.`/`predictor.`/`target_encoder.` prefixes, with what no tensor carries in its
/// metadata: the encoder's head count and the recipe that trained it where they are known
/// ([`state::ENCODER_HEADS`], [`state::RECIPE`]), and the source's `info` ([`INFO_PREFIX`]).
/// (An import of an export dropped its recipe, and was then evaluated as another recipe's; an
/// import of an official checkpoint dropped its `epoch`, which its evaluation records.)
pub fn write_ours(models: &Models, out: &Path, encoder_heads: Option<usize>, recipe: Option<&str>) -> Result<()> {
    let tensors: Vec<(String, Tensor)> = models
        .prefixed()
        .into_iter()
        .map(|(k, t)| Ok((k, t.f_to_kind(Kind::Float)?)))
        .collect::<Result<_>>()?;
    let heads = encoder_heads.map(|h| h.to_string());
    let info: Vec<(String, &str)> = models.info.iter().map(|(k, v)| (format!("{INFO_PREFIX}{k}"), v.as_str())).collect();
    let meta: Vec<(&str, &str)> = heads
        .as_deref()
        .map(|h| (state::ENCODER_HEADS, h))
        .into_iter()
        .chain(recipe.map(|r| (state::RECIPE, r)))
        .chain(info.iter().map(|(k, v)| (k.as_str(), *v)))
        .collect();
    state::save_weights_with(out, &tensors, &meta).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A training checkpoint's optimizer state is not read (its moments took their whole size in
    /// memory to be dropped): a file whose `opt` storage is missing from the archive imports.
    #[test]
    fn a_checkpoint_s_optimizer_state_is_not_read() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/pth/unread_opt.pth");
        let m = load_models(&path).unwrap();
        let enc = m.encoder.as_ref().unwrap();
        assert_eq!((enc[0].0.as_str(), enc[0].1.size()), ("w", vec![4, 4]));
        assert_eq!(Vec::<f32>::try_from(&enc[0].1.flatten(0, -1)).unwrap()[5], 2.5);
        assert!(m.info.contains(&("epoch".to_string(), "3".to_string())));
        // (the whole file read, as before, fails on it)
        assert!(torch_file::load(&path).unwrap_err().to_string().contains("entry `archive/data/1` is missing"));
    }

    /// A `cls_token` beside a table without its class position is named as such (it read
    /// "`pos_embed` has 48 positions", a count the file does not hold).
    #[test]
    fn a_class_token_without_its_position_is_named() {
        let z = |s: &[i64]| Tensor::zeros(s, (tch::Kind::Float, tch::Device::Cpu));
        let sd: StateDict = vec![("pos_embed".into(), z(&[1, 49, 32])), ("patch_embed.proj.weight".into(), z(&[32, 3, 4, 4])), ("cls_token".into(), z(&[1, 1, 32]))];
        let e = infer_vit(&sd, Some(2), Path::new("x")).unwrap_err().to_string();
        assert!(e.contains("holds a `cls_token`, but `pos_embed`'s 49 positions are a square grid of patches with no class position"), "{e}");
        let sd: StateDict = vec![("pos_embed".into(), z(&[1, 47, 32])), ("patch_embed.proj.weight".into(), z(&[32, 3, 4, 4])), ("cls_token".into(), z(&[1, 1, 32]))];
        let e = infer_vit(&sd, Some(2), Path::new("x")).unwrap_err().to_string();
        assert!(e.contains("has 46 positions besides its class position, not a square grid"), "{e}");
    }

    /// DDP's `module.` is taken off before or after a module's name (an official checkpoint's
    /// models flattened into one safetensors file read `encoder.module.*`, and every key was
    /// said missing).
    #[test]
    fn module_prefixes_come_off_either_side_of_the_module_name() {
        let t = || Tensor::zeros([1], (tch::Kind::Float, tch::Device::Cpu));
        let all: StateDict = ["encoder.module.pos_embed", "module.predictor.mask_token", "target_encoder.module.norm.weight"].iter().map(|k| (k.to_string(), t())).collect();
        let mut m = Models::default();
        assign_flat(&mut m, all, Path::new("x.safetensors")).unwrap();
        let keys = |sd: &Option<StateDict>| sd.as_ref().map(|sd| sd.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()).unwrap_or_default();
        assert_eq!(keys(&m.encoder), ["pos_embed"]);
        assert_eq!(keys(&m.predictor), ["mask_token"]);
        assert_eq!(keys(&m.target_encoder), ["norm.weight"]);
    }

    /// A float64 weight beyond float32's range is refused, naming the tensor (it was imported
    /// as Inf, exit 0); one within it loads.
    #[test]
    fn float64_beyond_float32_is_refused() {
        let d = crate::testdir::scratch("import", "f64-range");
        let write = |name: &str, v: f64| {
            let f = d.join(name);
            let t = Tensor::from_slice(&[1.0f64, -v]).reshape([1, 2]);
            Tensor::write_safetensors(&[("pos_embed", &t)], &f).unwrap();
            f
        };
        let err = load_models(&write("big.safetensors", 1e300)).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("pos_embed` (float64) holds a value of magnitude 1e300") && err.contains("float32"), "{err}");
        assert!(load_models(&write("fits.safetensors", 3e38)).is_ok());
    }

    /// A float8 safetensors file names the tensor and its dtype (it said
    /// "InvalidHeaderDeserialization").
    #[test]
    fn a_dtype_not_read_is_named() {
        let d = crate::testdir::scratch("import", "f8");
        let data = [0x38u8; 6];
        let mut header = serde_json::json!({"pos_embed": {"dtype": "F8_E4M3", "shape": [2, 3], "data_offsets": [0, 6]}}).to_string();
        while !header.len().is_multiple_of(8) {
            header.push(' ');
        }
        let f = d.join("f8.safetensors");
        let bytes = [&(header.len() as u64).to_le_bytes()[..], header.as_bytes(), &data].concat();
        std::fs::write(&f, bytes).unwrap();
        let err = load_models(&f).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("tensor `pos_embed` is stored as F8_E4M3, which is not read"), "{err}");
    }
}
