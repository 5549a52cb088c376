//! Our checkpoint format: one safetensors file holding every tensor a run needs (models,
//! optimiser moments) with the training position and a SHA-256 of the tensor data in its
//! metadata, so a file verifies itself. Written atomically: temporary file, fsync, rename,
//! fsync of the folder — a crash leaves the previous checkpoint intact.

use crate::error::{Error, Result};
use safetensors::tensor::{Dtype, SafeTensors, View};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use tch::{Kind, Tensor};

/// Identifies our checkpoints in their metadata.
pub const FORMAT: &str = "ijepa-checkpoint-v1";

/// The metadata key of the SHA-256 of a file's tensor data (every file we write carries it).
pub const DATA_SHA256: &str = "data_sha256";

/// Where in training a checkpoint was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Position {
    /// Optimiser steps done in the whole run.
    pub global_step: u64,
    /// Epoch of the next batch (0-based).
    pub epoch: u64,
    /// Step within that epoch of the next batch.
    pub step_in_epoch: u64,
    /// The optimiser's own step count (bias correction).
    pub optimizer_step: u64,
    /// Steps an epoch of the run that wrote it (0: not recorded, an earlier version's file):
    /// a resume on data that gives another count is refused (its schedules would not be the
    /// run's).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub steps_per_epoch: u64,
    /// The pretraining stage that wrote it: its hash's first 16 hex digits as a number (0: not
    /// recorded, an earlier version's file). A resume refuses another stage's checkpoint.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stage: u64,
    /// Training images of the run that wrote it (0: not recorded, an earlier version's file): a
    /// resume on data that gained or lost images is refused even where the steps an epoch
    /// agree (its epochs would draw another order of other images).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub images: u64,
    /// The training data's [`Dataset::fingerprint`](crate::data::Dataset::fingerprint) as a
    /// number (0: not recorded, an earlier version's file): a resume on as many images but
    /// other ones (a file renamed, moved to another class, or replaced by another of another
    /// name) is refused too.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub data: u64,
}

/// The [`Position::stage`] of a stage hash (hex).
pub fn stage_id(hash: &str) -> u64 {
    u64::from_str_radix(hash.get(..16).unwrap_or(hash), 16).unwrap_or(0)
}

impl Position {
    /// Whether it was written by a stage other than `stage` (a [`stage_id`]); unknown (0) on
    /// either side is not another.
    pub fn of_another_stage(&self, stage: u64) -> bool {
        self.stage != 0 && stage != 0 && self.stage != stage
    }

    /// Why this position cannot be one a run of `epochs` epochs saved, if it cannot: its step
    /// is not its epoch's start plus its step in the epoch (for a file that records its steps
    /// an epoch), or it lies past the end of training. The position is metadata, outside the
    /// tensors' checksum: a changed digit resumed the run on other schedules (step 110 read as
    /// 910), or wrote a barely trained run's weights as its final ones (a step past the end).
    pub fn impossible(&self, epochs: u64) -> Option<String> {
        let n = self.steps_per_epoch;
        let at = format!("step {}, epoch {}, step {} of the epoch", self.global_step, self.epoch, self.step_in_epoch);
        if n > 0 && (self.step_in_epoch >= n || self.epoch.checked_mul(n).and_then(|s| s.checked_add(self.step_in_epoch)) != Some(self.global_step)) {
            return Some(format!("its position ({at}) does not add up at {n} steps an epoch: the file is damaged"));
        }
        if self.epoch > epochs || (self.epoch == epochs && self.step_in_epoch > 0) {
            return Some(format!("its position ({at}) lies past the end of the run's {epochs} epochs: the file is damaged"));
        }
        None
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A tensor's bytes ready for safetensors.
struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn raw(t: &Tensor) -> Result<Raw> {
    let t = t.f_detach()?.f_to_device(tch::Device::Cpu)?;
    let (t, dtype) = match t.kind() {
        Kind::Int64 => (t, Dtype::I64),
        _ => (t.f_to_kind(Kind::Float)?, Dtype::F32),
    };
    let t = t.f_contiguous()?;
    let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
    let numel: usize = shape.iter().product();
    let elt = if dtype == Dtype::I64 { 8 } else { 4 };
    let mut data = vec![0u8; numel * elt];
    t.f_copy_data_u8(&mut data, numel)?;
    Ok(Raw { dtype, shape, data })
}

/// A safetensors file with a canonical layout: tensors in name order, the metadata's keys
/// sorted, the header padded with spaces to 8 bytes. The same tensors and metadata always give
/// the same bytes (the safetensors crate writes its metadata map in hash order, which differs
/// between processes), so a resumed run's files are bit-identical to an uninterrupted run's.
/// Returns the file's first bytes (header length and header) and the order of the tensors
/// whose data follow them.
fn layout<'a>(raws: &'a [(String, Raw)], meta: &HashMap<String, String>) -> (Vec<u8>, Vec<&'a (String, Raw)>) {
    let q = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    let mut order: Vec<&(String, Raw)> = raws.iter().collect();
    order.sort_by(|a, b| a.0.cmp(&b.0));
    let mut keys: Vec<(&String, &String)> = meta.iter().collect();
    keys.sort();
    let mut header = String::from("{\"__metadata__\":{");
    header.push_str(&keys.iter().map(|(k, v)| format!("{}:{}", q(k), q(v))).collect::<Vec<_>>().join(","));
    header.push('}');
    let mut offset = 0usize;
    for (name, r) in &order {
        let dtype = match r.dtype {
            Dtype::I64 => "I64",
            _ => "F32",
        };
        let shape: Vec<String> = r.shape.iter().map(|d| d.to_string()).collect();
        header.push_str(&format!(
            ",{}:{{\"dtype\":\"{dtype}\",\"shape\":[{}],\"data_offsets\":[{offset},{}]}}",
            q(name),
            shape.join(","),
            offset + r.data.len()
        ));
        offset += r.data.len();
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut prefix = Vec::with_capacity(8 + header.len());
    prefix.extend_from_slice(&(header.len() as u64).to_le_bytes());
    prefix.extend_from_slice(header.as_bytes());
    (prefix, order)
}

/// SHA-256 of the tensors' bytes in name order (what the metadata records).
fn data_digest(tensors: &[(String, &[u8])]) -> String {
    let mut h = Sha256::new();
    for (name, bytes) in tensors {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of the file at `path`, which must be a regular file
/// ([`super::import::regular_file`]): a named pipe put in a checkpoint's place blocked the read
/// (a resume waited for a writer that never came).
fn read_file(path: &Path) -> Result<Vec<u8>> {
    super::import::regular_file(path)?;
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// SHA-256 of a whole file, as hex; read in pieces (the file was read whole into memory: a
/// checkpoint's size again, 10 GB for ViT-H's with its optimizer, to hash it).
pub fn sha256_file(path: &Path) -> Result<String> {
    use std::io::Read as _;
    super::import::regular_file(path)?;
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Ok(hex(&hasher.finalize()))
}

/// Tensors copied out of live training state (to the CPU, float32 / int64, contiguous) with
/// their metadata: everything a file needs, owned, so that [`Snapshot::write`] (which also
/// computes the SHA-256 of the data, `data_sha256`) can run on another thread while training
/// changes the tensors (`checkpoint::writer`).
pub struct Snapshot {
    raws: Vec<(String, Raw)>,
    meta: HashMap<String, String>,
}

impl Snapshot {
    fn new(tensors: &[(String, Tensor)], meta: HashMap<String, String>) -> Result<Self> {
        let raws: Vec<(String, Raw)> = tensors.iter().map(|(n, t)| Ok((n.clone(), raw(t)?))).collect::<Result<_>>()?;
        Ok(Self { raws, meta })
    }

    /// The metadata with the SHA-256 of the tensors' data (`data_sha256`) added.
    fn full_meta(&self) -> HashMap<String, String> {
        let mut sorted: Vec<(String, &[u8])> = self.raws.iter().map(|(n, r)| (n.clone(), r.data.as_slice())).collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut meta = self.meta.clone();
        meta.insert(DATA_SHA256.to_string(), data_digest(&sorted));
        meta
    }

    /// A training checkpoint of `tensors` at `pos` ([`save`]'s content).
    ///
    /// # Errors
    /// A tensor that cannot be copied to the CPU.
    pub fn checkpoint(tensors: &[(String, Tensor)], pos: Position) -> Result<Self> {
        let position = serde_json::to_string(&pos).map_err(|e| Error::Train(format!("serialising the position: {e}")))?;
        Self::new(tensors, HashMap::from([("format".to_string(), FORMAT.to_string()), ("position".to_string(), position)]))
    }

    /// With `key` = `value` in the file's metadata as well (e.g. [`ENCODER_HEADS`]).
    #[must_use]
    pub fn with_meta(mut self, key: &str, value: String) -> Self {
        self.meta.insert(key.to_string(), value);
        self
    }

    /// Writes the file to each of `paths` (the same bytes), each atomically: a temporary
    /// file beside it, fsync, rename, fsync of the folder; a crash leaves the previous file
    /// intact. Streams the tensors' bytes without assembling the file in memory. Returns the
    /// file's SHA-256.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file that could not be written.
    pub fn write(&self, paths: &[&Path]) -> Result<String> {
        let (prefix, order) = layout(&self.raws, &self.full_meta());
        let parts = || std::iter::once(prefix.as_slice()).chain(order.iter().map(|(_, r)| r.data.as_slice()));
        let mut h = Sha256::new();
        let Some((first, rest)) = paths.split_first() else {
            parts().for_each(|p| h.update(p));
            return Ok(hex(&h.finalize()));
        };
        // the first file is hashed as it is written; the others get the same bytes
        crate::run_dir::write_atomic_with(first, |f| {
            parts().try_for_each(|p| {
                h.update(p);
                f.write_all(p)
            })
        })?;
        for path in rest {
            crate::run_dir::write_atomic_with(path, |f| parts().try_for_each(|p| f.write_all(p)))?;
        }
        Ok(hex(&h.finalize()))
    }

    /// The whole file in memory.
    #[cfg(test)]
    fn file_bytes(&self) -> Vec<u8> {
        let (prefix, order) = layout(&self.raws, &self.full_meta());
        let mut out = prefix;
        for (_, r) in &order {
            out.extend_from_slice(&r.data);
        }
        out
    }
}

/// Writes `tensors` to `path` atomically with `meta` plus the SHA-256 of their data
/// (`data_sha256`) in the metadata; returns the file's SHA-256.
fn write_checksummed(path: &Path, tensors: &[(String, Tensor)], meta: HashMap<String, String>) -> Result<String> {
    Snapshot::new(tensors, meta)?.write(&[path])
}

/// The `data_sha256` of a read file's tensors (what [`write_checksummed`] recorded).
fn digest_of(st: &SafeTensors<'_>) -> String {
    let mut sorted: Vec<(String, &[u8])> = st.tensors().into_iter().map(|(n, v)| (n, v.data())).collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    data_digest(&sorted)
}

/// Writes `tensors` and `pos` to `path` atomically; returns the file's SHA-256.
pub fn save(path: &Path, tensors: &[(String, Tensor)], pos: Position) -> Result<String> {
    Snapshot::checkpoint(tensors, pos)?.write(&[path])
}

/// Format of plain weight files ([`save_weights`]): `"pt"`, what Hugging Face loaders expect.
pub const WEIGHTS_FORMAT: &str = "pt";

/// Writes plain weights (float32 / int64, CPU) to `path` atomically, with the SHA-256 of the
/// tensor data in the metadata (`data_sha256`) so every reader can verify the file; returns the
/// file's SHA-256.
pub fn save_weights(path: &Path, tensors: &[(String, Tensor)]) -> Result<String> {
    save_weights_with(path, tensors, &[])
}

/// [`save_weights`] with `extra` entries in the metadata (read back by [`metadata_of`]).
pub fn save_weights_with(path: &Path, tensors: &[(String, Tensor)], extra: &[(&str, &str)]) -> Result<String> {
    let mut meta = HashMap::from([("format".to_string(), WEIGHTS_FORMAT.to_string())]);
    meta.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    write_checksummed(path, tensors, meta)
}

/// Verifies the `data_sha256` of a safetensors file's metadata when it has one (ours do;
/// files from elsewhere may not). Returns whether a checksum was there.
///
/// # Errors
/// An unreadable header, or tensor data that does not match its checksum.
pub fn verify_file(path: &Path) -> Result<bool> {
    let bytes = read_file(path)?;
    Ok(verified(path, &bytes)?.is_some())
}

/// What to do about a damaged `final.safetensors` of a pretraining run folder (empty for any
/// other file): a finished run without it writes it again from its last checkpoint.
fn way_out(path: &Path) -> String {
    let in_run = path.file_name().is_some_and(|n| n == ijepa_schema::FINAL)
        && path.parent().is_some_and(|c| c.file_name().is_some_and(|n| n == ijepa_schema::CHECKPOINTS) && c.join(ijepa_schema::LATEST).is_file());
    if in_run {
        "; move it aside (or delete it) and run the experiment again: its last checkpoint (latest.safetensors) writes it again without training".into()
    } else {
        String::new()
    }
}

/// The tensors of `bytes` (the file at `path`), verified against the `data_sha256` of its
/// metadata: `None` when it carries none. The one check behind [`verify_file`],
/// [`read_verified`] and [`load`].
fn verified<'a>(path: &Path, bytes: &'a [u8]) -> Result<Option<SafeTensors<'a>>> {
    let bad = |message: String| Error::Checkpoint { path: path.to_path_buf(), message: format!("{message}{}", way_out(path)) };
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| bad(format!("not a readable safetensors file ({e}); truncated or corrupt?")))?;
    let Some(want) = header.metadata().as_ref().and_then(|m| m.get(DATA_SHA256).cloned()) else {
        return Ok(None);
    };
    let st = SafeTensors::deserialize(bytes).map_err(|e| bad(format!("corrupt tensor data: {e}")))?;
    if digest_of(&st) != want {
        return Err(bad("checksum mismatch: the tensor data is corrupt".into()));
    }
    Ok(Some(st))
}

/// Refuses a floating-point tensor with NaN or Inf values, naming it.
///
/// # Errors
/// [`Error::Checkpoint`] naming the tensor and how many values are not finite.
pub fn check_finite(path: &Path, name: &str, t: &Tensor) -> Result<()> {
    if !t.is_floating_point() {
        return Ok(());
    }
    let bad = t.f_isfinite()?.f_logical_not()?.f_sum(Kind::Int64)?.int64_value(&[]);
    if bad > 0 {
        return Err(Error::Checkpoint {
            path: path.to_path_buf(),
            message: format!("tensor `{name}` has {bad} non-finite value(s) (NaN or Inf) of {}: the weights are unusable", t.numel()),
        });
    }
    Ok(())
}

/// The training position a checkpoint's header records, read from the header alone (not
/// verified: [`load`] does that): what `ijepa plan` shows when the manifest does not say.
pub fn position_of(path: &Path) -> Option<Position> {
    serde_json::from_str(metadata_of(path)?.get("position")?).ok()
}

/// The header of a safetensors file (its JSON) and the file's length, read without the data.
pub(crate) fn header_of(path: &Path) -> Option<(serde_json::Value, u64, u64)> {
    use std::io::Read;
    // (a pipe would block the read)
    super::import::regular_file(path).ok()?;
    let mut f = std::fs::File::open(path).ok()?;
    let size = f.metadata().ok()?.len();
    let mut len = [0u8; 8];
    f.read_exact(&mut len).ok()?;
    let len = u64::from_le_bytes(len);
    // a safetensors header is JSON of a few KiB; a larger length is a damaged file
    if len > 100 << 20 {
        return None;
    }
    let mut header = vec![0u8; len as usize];
    f.read_exact(&mut header).ok()?;
    Some((serde_json::from_slice(&header).ok()?, len, size))
}

/// The metadata of a safetensors file, read from the header alone (not verified).
pub fn metadata_of(path: &Path) -> Option<HashMap<String, String>> {
    let (v, _, _) = header_of(path)?;
    serde_json::from_value(v.get("__metadata__")?.clone()).ok()
}

/// Whether `path` is a training checkpoint (its metadata's `format` is [`FORMAT`]), read from
/// the header alone.
pub fn is_training_checkpoint(path: &Path) -> bool {
    metadata_of(path).is_some_and(|m| m.get("format").map(String::as_str) == Some(FORMAT))
}

/// Whether `path` holds models under their module names (`encoder.`, `target_encoder.`,
/// `predictor.`, a decoder, DINO's `teacher.` / `student.`: a pretraining's weights, an
/// imported official checkpoint), not a bare encoder as an export under the official names
/// writes; read from the header alone.
pub fn holds_models(path: &Path) -> bool {
    const MODULES: [&str; 6] = ["encoder.", "target_encoder.", "predictor.", "decoder", "teacher.", "student."];
    header_of(path).is_some_and(|(v, _, _)| v.as_object().is_some_and(|o| o.keys().any(|k| MODULES.iter().any(|m| k.starts_with(m)))))
}

/// Metadata key of the recipe that trained an encoder exported under the official names
/// (`ijepa export --format official`): an evaluation under another recipe's experiment labelled
/// its scores as that recipe's.
pub const RECIPE: &str = "recipe";

/// Metadata key of the encoder's number of attention heads, which no tensor's shape carries:
/// written in a pretraining's checkpoints (and the official-names export), so that a copy
/// taken out of its run folder still says it.
pub const ENCODER_HEADS: &str = "encoder_heads";

/// The encoder's head count a file records ([`ENCODER_HEADS`]), if it does: `Err` with the
/// value written where it is no head count (0, not a number: a damaged file, whose value was
/// passed over as if none were recorded).
pub fn encoder_heads_of(path: &Path) -> Option<std::result::Result<usize, String>> {
    let raw = metadata_of(path)?.get(ENCODER_HEADS)?.clone();
    Some(raw.parse().ok().filter(|&h| (1..=1 << 20).contains(&h)).ok_or(raw))
}

/// Why the head count `raw` a file's metadata records ([`encoder_heads_of`]) is refused.
pub fn damaged_heads(raw: &str) -> String {
    format!("its metadata records `{ENCODER_HEADS}` {raw:?}, not a head count: the file is damaged")
}

/// Whether the file is shorter than its readable header says (the header's length, the
/// header, and the end of its last tensor's data), read from the header alone: a copy cut
/// short is. Anything else — a whole file, a file whose header cannot be read, one longer than
/// it says — is not *cut short* (reading it says what is wrong; a flipped byte is found by the
/// data checksum of [`load`]).
pub fn is_cut_short(path: &Path) -> bool {
    let Some((v, len, size)) = header_of(path) else { return false };
    let Some(entries) = v.as_object() else { return false };
    let mut end = 0u64;
    for (name, t) in entries {
        if name == "__metadata__" {
            continue;
        }
        match t["data_offsets"].as_array().and_then(|o| o.get(1)).and_then(serde_json::Value::as_u64) {
            Some(e) => end = end.max(e),
            None => return false,
        }
    }
    8u64.checked_add(len).and_then(|n| n.checked_add(end)).is_some_and(|whole| size < whole)
}

/// Whether `path` is a file with a readable safetensors header naming at least one tensor,
/// not [cut short](is_cut_short): a run's final weights that count as written (`ijepa plan`'s
/// "done", and the run that would otherwise write them again). An empty file, one that is no
/// safetensors file, or one of no tensor (a header alone) is not: a run "done" over it skipped
/// its evaluations, and a new evaluation failed on it.
pub fn is_whole_file(path: &Path) -> bool {
    let holds_a_tensor = |(v, _, _): (serde_json::Value, u64, u64)| v.as_object().is_some_and(|o| o.keys().any(|k| k != "__metadata__"));
    path.is_file() && header_of(path).is_some_and(holds_a_tensor) && !is_cut_short(path)
}

/// Reads a checkpoint written by [`save`], verifying its data checksum.
pub fn load(path: &Path) -> Result<(HashMap<String, Tensor>, Position)> {
    let bad = |message: String| Error::Checkpoint { path: path.to_path_buf(), message };
    let bytes = read_file(path)?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(format!("not a readable safetensors file ({e}); truncated or corrupt?")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        let format = meta.get("format").map_or("absent".to_string(), |f| format!("`{f}`"));
        return Err(bad(format!("not an ijepa training checkpoint (its metadata's format is {format}, not `{FORMAT}`)")));
    }
    let pos: Position = meta
        .get("position")
        .and_then(|p| serde_json::from_str(p).ok())
        .ok_or_else(|| bad("the training position in the metadata is missing or malformed".into()))?;
    // ours always carry a checksum: none is a mismatch
    let st = verified(path, &bytes)?.ok_or_else(|| bad("checksum mismatch: the tensor data is corrupt".into()))?;
    Ok((tensors_of(path, &st)?, pos))
}

/// The tensors of a file that carries the checksum of its data ([`save_weights`], [`save`]),
/// read once and verified against it: `Ok(None)` when the file carries none (written
/// elsewhere, or by an earlier version). [`verify_file`] then a second read, in one pass.
///
/// # Errors
/// An unreadable or corrupt file, a checksum mismatch, a dtype other than F32 / I64, a
/// non-finite value.
pub fn read_verified(path: &Path) -> Result<Option<HashMap<String, Tensor>>> {
    let bytes = read_file(path)?;
    verified(path, &bytes)?.map(|st| tensors_of(path, &st)).transpose()
}

/// The F32 / I64 tensors of a deserialised file, each checked finite.
fn tensors_of(path: &Path, st: &SafeTensors<'_>) -> Result<HashMap<String, Tensor>> {
    let mut out = HashMap::with_capacity(st.len());
    for (name, view) in st.tensors() {
        let kind = match view.dtype() {
            Dtype::F32 => Kind::Float,
            Dtype::I64 => Kind::Int64,
            d => return Err(Error::Checkpoint { path: path.to_path_buf(), message: format!("tensor `{name}` has dtype {d:?}; expected F32 or I64") }),
        };
        if super::shape_out_of_range(view.shape().iter().map(|&d| d as u64)) {
            return Err(Error::Checkpoint { path: path.to_path_buf(), message: format!("tensor `{name}` has shape {:?}, past what a tensor can hold: the file is damaged", view.shape()) });
        }
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let t = Tensor::f_from_data_size(view.data(), &shape, kind)?;
        check_finite(path, &name, &t)?;
        out.insert(name, t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A position a run cannot have saved: a step that is not its epoch's start plus its step
    /// in the epoch, a step in the epoch past the epoch's end, an epoch past the run's end
    /// (a finished run's own is at the end, step 0); a file of an earlier version, which
    /// records no steps an epoch, is held to the end alone.
    #[test]
    fn impossible_positions_are_named() {
        let at = |global_step, epoch, step_in_epoch, steps_per_epoch| Position { global_step, epoch, step_in_epoch, optimizer_step: global_step, steps_per_epoch, stage: 0, images: 0, data: 0 };
        assert_eq!(at(110, 13, 6, 8).impossible(300), None);
        assert_eq!(at(2400, 300, 0, 8).impossible(300), None, "a finished run's last position");
        assert!(at(910, 13, 6, 8).impossible(300).unwrap().contains("(step 910, epoch 13, step 6 of the epoch) does not add up at 8 steps an epoch"));
        assert!(at(112, 13, 8, 8).impossible(300).unwrap().contains("does not add up"), "a step in the epoch past its end");
        assert!(at(u64::MAX, u64::MAX, 6, 8).impossible(300).unwrap().contains("does not add up"), "no overflow");
        assert!(at(5000, 625, 0, 8).impossible(300).unwrap().contains("lies past the end of the run's 300 epochs"));
        assert!(at(2401, 300, 1, 8).impossible(300).unwrap().contains("lies past the end"));
        assert_eq!(at(7, 1, 2, 0).impossible(300), None, "an earlier version's file");
        assert!(at(7000, 301, 2, 0).impossible(300).unwrap().contains("lies past the end"));
    }

    /// A named pipe in a checkpoint's place is refused, not read: the read blocked for a
    /// writer that never came (a resume hung before its first step).
    #[test]
    fn a_pipe_is_not_read_as_a_checkpoint() {
        let d = crate::testdir::scratch("state", "fifo");
        let p = d.join("latest.safetensors");
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo(3) on a NUL-terminated path
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        for e in [load(&p).map(|_| ()), verify_file(&p).map(|_| ()), read_verified(&p).map(|_| ()), sha256_file(&p).map(|_| ())] {
            let e = e.unwrap_err().to_string();
            assert!(e.contains("not a regular file"), "{e}");
        }
        assert!(metadata_of(&p).is_none() && position_of(&p).is_none());
    }

    /// A checkpoint cut short after its header (at a tensor's edge, one byte short) is cut
    /// short; the whole file is not, nor what is no such copy (a header cut too, bytes after
    /// the data, no file): reading those says what is wrong with them.
    #[test]
    fn a_file_cut_short_is_told_from_the_whole_one() {
        let d = tmpdir("complete");
        let p = d.join("final.safetensors");
        save_weights(&p, &sample()).unwrap();
        assert!(!is_cut_short(&p));
        let bytes = std::fs::read(&p).unwrap();
        let cut = d.join("cut.safetensors");
        let header = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        for n in [header, header + 12, bytes.len() - 1] {
            std::fs::write(&cut, &bytes[..n]).unwrap();
            assert!(is_cut_short(&cut), "cut at {n} of {}", bytes.len());
        }
        for n in [0, 7, 20] {
            std::fs::write(&cut, &bytes[..n]).unwrap();
            assert!(!is_cut_short(&cut), "cut at {n} of {}", bytes.len());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        std::fs::write(&cut, &longer).unwrap();
        assert!(!is_cut_short(&cut));
        assert!(!is_cut_short(&d.join("absent.safetensors")));
        // final weights count as written when whole: not cut short, not empty, not garbage
        assert!(is_whole_file(&p));
        for bad in [&bytes[..0], &bytes[..bytes.len() - 1], b"not a safetensors file at all".as_slice()] {
            std::fs::write(&cut, bad).unwrap();
            assert!(!is_whole_file(&cut), "{} bytes", bad.len());
        }
    }

    fn tmpdir(name: &str) -> crate::testdir::Scratch {
        crate::testdir::scratch("ckpt", name)
    }

    fn sample() -> Vec<(String, Tensor)> {
        vec![
            ("a.weight".into(), Tensor::arange(12, (Kind::Float, tch::Device::Cpu)).view([3, 4])),
            ("b".into(), Tensor::from_slice(&[1i64, 2, 3])),
        ]
    }

    /// The bytes of a checkpoint are pinned: the streamed writer was checked byte for byte
    /// against a checkpoint the earlier writer (which assembled the file in memory) had written
    /// (a real run's `epoch-0011.safetensors`, reloaded and saved again: same SHA-256), and this
    /// hash keeps the layout from drifting.
    #[test]
    fn the_file_layout_is_pinned() {
        let d = tmpdir("golden");
        let pos = Position { global_step: 7, epoch: 1, step_in_epoch: 2, optimizer_step: 7, steps_per_epoch: 0, stage: 0, images: 0, data: 0 };
        let sha = save(&d.join("g.safetensors"), &sample(), pos).unwrap();
        assert_eq!(sha, "4e207de32750acfa75ac30716614ba17efdc92309ff27d2aad2a98bd360e8074");
    }

    #[test]
    fn round_trip_is_exact() {
        let d = tmpdir("rt");
        let p = d.join("x.safetensors");
        let pos = Position { global_step: 7, epoch: 1, step_in_epoch: 2, optimizer_step: 7, steps_per_epoch: 0, stage: 0, images: 0, data: 0 };
        let sha = save(&p, &sample(), pos).unwrap();
        assert_eq!(sha, sha256_file(&p).unwrap());
        let (t, back) = load(&p).unwrap();
        assert_eq!(back, pos);
        // the header alone says it too (ijepa plan without a manifest); a non-checkpoint does not
        assert_eq!(position_of(&p), Some(pos));
        assert_eq!(position_of(&d.join("missing.safetensors")), None);
        std::fs::write(d.join("junk"), b"\xff\xff\xff\xff\xff\xff\xff\xffjunk").unwrap();
        assert_eq!(position_of(&d.join("junk")), None);
        assert!(t["a.weight"].equal(&sample()[0].1));
        assert!(t["b"].equal(&sample()[1].1));
    }

    #[test]
    fn corruption_and_truncation_are_detected() {
        let d = tmpdir("bad");
        let p = d.join("x.safetensors");
        save(&p, &sample(), Position { global_step: 1, epoch: 0, step_in_epoch: 1, optimizer_step: 1, steps_per_epoch: 0, stage: 0, images: 0, data: 0 }).unwrap();
        let mut bytes = std::fs::read(&p).unwrap();
        let n = bytes.len();
        bytes[n - 3] ^= 0xff; // flip a data byte
        std::fs::write(&p, &bytes).unwrap();
        assert!(load(&p).unwrap_err().to_string().contains("checksum mismatch"));
        std::fs::write(&p, &bytes[..n / 2]).unwrap();
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains("truncated") || e.contains("corrupt"), "{e}");
        std::fs::write(&p, b"").unwrap();
        assert!(load(&p).is_err());
    }

    #[test]
    fn files_are_canonical_and_readable_by_other_tools() {
        let d = tmpdir("canon");
        let (a, b) = (d.join("a.safetensors"), d.join("b.safetensors"));
        let mut rev = sample();
        rev.reverse();
        save_weights(&a, &sample()).unwrap();
        save_weights(&b, &rev).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "same tensors, different bytes");
        // libtorch's own reader (tch) reads them back exactly
        let back = Tensor::read_safetensors(&a).unwrap();
        let get = |n: &str| back.iter().find(|(k, _)| k == n).map(|(_, t)| t.shallow_clone()).unwrap();
        assert!(get("a.weight").equal(&sample()[0].1) && get("b").equal(&sample()[1].1));
        let bytes = std::fs::read(&a).unwrap();
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!(header.metadata().as_ref().unwrap()["format"], WEIGHTS_FORMAT);
        // the streamed writes hold the assembled file's bytes, in each copy, and the hash is
        // theirs, also with no file to write
        let snap = Snapshot::checkpoint(&sample(), Position { global_step: 5, epoch: 1, step_in_epoch: 0, optimizer_step: 5, steps_per_epoch: 0, stage: 0, images: 0, data: 0 }).unwrap();
        let (c, e) = (d.join("c.safetensors"), d.join("e.safetensors"));
        let sha = snap.write(&[c.as_path(), e.as_path()]).unwrap();
        assert_eq!(std::fs::read(&c).unwrap(), snap.file_bytes());
        assert_eq!(std::fs::read(&e).unwrap(), snap.file_bytes());
        assert_eq!(sha, sha256_file(&c).unwrap());
        assert_eq!(snap.write(&[]).unwrap(), sha);
    }

    #[test]
    fn weights_verify_themselves_and_non_finite_tensors_are_named() {
        let d = tmpdir("weights");
        let p = d.join("final.safetensors");
        let sha = save_weights(&p, &sample()).unwrap();
        assert_eq!(sha, sha256_file(&p).unwrap());
        assert!(verify_file(&p).unwrap());
        let mut bytes = std::fs::read(&p).unwrap();
        let n = bytes.len();
        bytes[n - 30] ^= 0x01;
        std::fs::write(&p, &bytes).unwrap();
        let e = verify_file(&p).unwrap_err().to_string();
        assert!(e.contains("checksum mismatch") && !e.contains("move it aside"), "{e}");
        // the final weights of a run folder say how to get them back
        let ck = d.join("run").join(ijepa_schema::CHECKPOINTS);
        std::fs::create_dir_all(&ck).unwrap();
        std::fs::write(ck.join(ijepa_schema::FINAL), &bytes).unwrap();
        std::fs::write(ck.join("latest.safetensors"), b"").unwrap();
        let e = verify_file(&ck.join(ijepa_schema::FINAL)).unwrap_err().to_string();
        assert!(e.contains("checksum mismatch") && e.contains("move it aside (or delete it) and run the experiment again"), "{e}");
        // a file without a checksum (written elsewhere) passes verification as unverified
        let foreign = d.join("foreign.safetensors");
        Tensor::write_safetensors(&sample(), &foreign).unwrap();
        assert!(!verify_file(&foreign).unwrap());
        let t = Tensor::from_slice(&[1.0f32, f32::NAN, f32::INFINITY]);
        let e = check_finite(&p, "blocks.0.attn.qkv.weight", &t).unwrap_err().to_string();
        assert!(e.contains("`blocks.0.attn.qkv.weight` has 2 non-finite"), "{e}");
        check_finite(&p, "b", &Tensor::from_slice(&[1i64, 2])).unwrap();
    }
}
