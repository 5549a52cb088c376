//! Strict reader of PyTorch `torch.save` files (the zip format of torch ≥ 1.6), such as the
//! official I-JEPA checkpoints (`IN1K-vit.h.14-300e.pth.tar`) and plain state-dict files.
//!
//! The archive holds `<prefix>/data.pkl` (the object tree, a pickle), `<prefix>/data/<key>`
//! (one raw little-endian record per storage), `<prefix>/version` and, since torch 2.1,
//! `<prefix>/byteorder`; torch 2.x adds `.format_version`, `.storage_alignment` and
//! `.data/serialization_id`, which are ignored. The prefix is whatever the archive uses (torch
//! names it after the file). The pickle is decoded by [`crate::checkpoint::pickle`], which never
//! runs code and rejects any global outside its allow-list; tensors are then materialised from
//! their storages: dtype from the storage class, `storage_offset`/`size`/`stride` checked to lie
//! inside the storage, copied out as contiguous CPU tensors (`requires_grad` off). Tensors that
//! share a storage (views, a transpose saved next to its base) each get their own memory; a
//! storage is read once and dropped as soon as its last tensor is built.
//!
//! Everything wrong with a file is an [`Error::Checkpoint`] naming the file and the cause
//! (legacy non-zip format, truncated or corrupt zip, compressed entry, CRC mismatch, missing
//! record, big-endian data, forbidden pickle global, storage too small for a tensor...);
//! nothing panics, and nothing is allocated beyond what the file's own size justifies.
//!
//! ```no_run
//! # use ijepa_engine::checkpoint::torch_file;
//! # fn main() -> ijepa_engine::Result<()> {
//! let path = std::path::Path::new("IN1K-vit.h.14-300e.pth.tar");
//! // only the target encoder's tensors are read; the others stay `Value::Lazy`
//! let ck = torch_file::load_selected(path, |p| p.first().map(String::as_str) == Some("target_encoder"))?;
//! if let Some(target) = ck.get("target_encoder") {
//!     for (name, t) in torch_file::state_dict(target, path)? {
//!         println!("{name} {:?}", t.size()); // names as stored: `module.patch_embed.proj.weight`...
//!     }
//! }
//! println!("epoch {:?}", ck.get("epoch").and_then(|e| e.as_int()));
//! # Ok(()) }
//! ```

use crate::checkpoint::pickle::{self, StorageRef, TensorRef, Value};
use crate::{Error, Result};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};
use zip::result::ZipError;
use zip::{CompressionMethod, ZipArchive};

/// The format versions (`<prefix>/version`) accepted: those libtorch's own reader accepts.
const VERSIONS: std::ops::RangeInclusive<u64> = 1..=10;

/// Initial buffer for an entry; larger entries grow as their bytes actually arrive.
const CHUNK: u64 = 64 << 20;
/// The most an expanded tensor (a view that repeats its storage's elements) may take once
/// materialised: its storage is bounded by the file, its view only by this. (At 1 GiB a file
/// of 617 bytes took every reading command to 4 GB: what follows the load, the checks of its
/// values and the copies into the model, takes the view's size several times over.)
const EXPANDED_MAX_BYTES: u128 = 256 << 20;

/// Reads a whole `torch.save` file, every tensor materialised as [`Value::Tensor`].
pub fn load(path: &Path) -> Result<Value> {
    load_selected(path, |_| true)
}

/// Reads a `torch.save` file's structure only: tensors stay [`Value::Lazy`] (shape, dtype,
/// storage key) and no storage data is read (so a missing or short storage goes unnoticed).
pub fn load_lazy(path: &Path) -> Result<Value> {
    load_selected(path, |_| false)
}

/// Reads a `torch.save` file, materialising only the tensors for which `keep` returns true;
/// the others stay [`Value::Lazy`].
///
/// `keep` receives the tensor's path in the tree: dict keys (str keys as they are, int keys
/// in decimal) and list/tuple indices, from the root; e.g. `["target_encoder",
/// "module.pos_embed"]` or `["opt", "state", "0", "exp_avg"]`.
pub fn load_selected(path: &Path, keep: impl FnMut(&[String]) -> bool) -> Result<Value> {
    load_within(path, keep, EXPANDED_MAX_BYTES)
}

/// [`load_selected`] with `bound` for what materialising may take beyond the file's storages
/// ([`EXPANDED_MAX_BYTES`] there).
fn load_within(path: &Path, mut keep: impl FnMut(&[String]) -> bool, bound: u128) -> Result<Value> {
    let mut archive = Archive::open(path)?;
    let mut root = archive.read_pickle()?;

    // Pass 1: storages named consistently, which tensors to read, how often each storage is used.
    let mut storages: HashMap<String, StorageRef> = HashMap::new();
    let mut uses: HashMap<String, usize> = HashMap::new();
    let mut decisions = Vec::new();
    walk(&mut root, &mut Vec::new(), &mut |v, p| {
        let Value::Lazy(r) = v else { return Ok(()) };
        let s = &r.storage;
        match storages.get(&s.key) {
            Some(known) if known.kind != s.kind || known.numel != s.numel => {
                return Err(archive.err(format!(
                    "storage `{}` is named as {} elements of {:?} and as {} elements of {:?}",
                    s.key, known.numel, known.kind, s.numel, s.kind
                )))
            }
            Some(_) => {}
            None => {
                storages.insert(s.key.clone(), s.clone());
            }
        }
        let k = keep(p);
        if k {
            *uses.entry(s.key.clone()).or_default() += 1;
        }
        decisions.push(k);
        Ok(())
    })?;

    // Pass 2: materialise.
    let mut cache = StorageCache { tensors: HashMap::new(), left: uses.clone(), total: uses, expanded: 0, bound };
    let mut next = decisions.into_iter();
    walk(&mut root, &mut Vec::new(), &mut |v, p| {
        let Value::Lazy(r) = v else { return Ok(()) };
        if next.next() == Some(true) {
            let t = archive.materialise(r, p, &mut cache)?;
            *v = Value::Tensor(t);
        }
        Ok(())
    })?;
    Ok(root)
}

/// The entries of a state dict (a dict of str → tensor, e.g. `ck["encoder"]`), in order, with
/// names exactly as stored (the official files' `module.` prefix included).
///
/// Errors (naming `path`) when `v` is not a dict, a key is not a str, or a value is not a
/// materialised tensor (the first such entry is named).
pub fn state_dict(v: &Value, path: &Path) -> Result<Vec<(String, Tensor)>> {
    let ck = |message: String| Error::Checkpoint { path: path.to_path_buf(), message };
    let items = v
        .as_dict()
        .ok_or_else(|| ck(format!("expected a state dict (a dict of tensors), found {}", v.a_type_name())))?;
    items
        .iter()
        .enumerate()
        .map(|(i, (k, x))| {
            let name = k
                .as_str()
                .ok_or_else(|| ck(format!("state dict key #{i} is {}, not a str", k.a_type_name())))?;
            match x {
                Value::Tensor(t) => Ok((name.to_string(), t.shallow_clone())),
                other => Err(ck(format!("state dict entry `{name}` is {}, not a tensor", other.a_type_name()))),
            }
        })
        .collect()
}

/// Visits every [`Value::Lazy`] leaf with its path.
fn walk(
    v: &mut Value,
    path: &mut Vec<String>,
    f: &mut dyn FnMut(&mut Value, &[String]) -> Result<()>,
) -> Result<()> {
    match v {
        Value::List(items) | Value::Tuple(items) => {
            for (i, x) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                walk(x, path, f)?;
                path.pop();
            }
        }
        Value::Dict(items) => {
            for (k, x) in items.iter_mut() {
                path.push(match k {
                    Value::Str(s) => s.clone(),
                    Value::Int(i) => i.to_string(),
                    other => format!("{other:?}"),
                });
                walk(x, path, f)?;
                path.pop();
            }
        }
        Value::Lazy(_) => f(v, path)?,
        _ => {}
    }
    Ok(())
}

/// `b` bytes in GiB or MiB when whole ones, else in bytes.
fn bytes_text(b: u128) -> String {
    if b >= 1 << 30 && b.is_multiple_of(1 << 30) {
        format!("{} GiB", b >> 30)
    } else if b >= 1 << 20 && b.is_multiple_of(1 << 20) {
        format!("{} MiB", b >> 20)
    } else {
        format!("{b} bytes")
    }
}

/// Storages read so far, kept until their last tensor is built.
struct StorageCache {
    tensors: HashMap<String, Tensor>,
    left: HashMap<String, usize>,
    total: HashMap<String, usize>,
    /// Bytes the expanded tensors materialised so far took beyond their storages', and the
    /// copies of strided views of storages several tensors read (the bound,
    /// [`EXPANDED_MAX_BYTES`], is over the whole file: one per tensor let a file of N such
    /// tensors ask for N GiB).
    expanded: u128,
    /// The bound on `expanded`.
    bound: u128,
}

struct Archive {
    path: PathBuf,
    zip: ZipArchive<BufReader<File>>,
    file_len: u64,
    /// `"<prefix>/"` (empty when `data.pkl` sits at the root).
    prefix: String,
}

impl Archive {
    fn err(&self, message: String) -> Error {
        Error::Checkpoint { path: self.path.clone(), message }
    }

    fn open(path: &Path) -> Result<Archive> {
        let ck = |message: String| Error::Checkpoint { path: path.to_path_buf(), message };
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if file_len == 0 {
            return Err(ck("empty file".into()));
        }
        let mut magic = [0u8; 4];
        let n = (&mut file).take(4).read(&mut magic).map_err(|e| Error::io(path, e))?;
        if n < 4 || &magic != b"PK\x03\x04" {
            return Err(ck(if magic[0] == 0x80 {
                "legacy torch.save format (torch < 1.6, not a zip archive) is not supported; \
                 re-save it with a recent torch"
                    .into()
            } else {
                "not a zip archive (torch.save writes a zip)".into()
            }));
        }
        file.seek(SeekFrom::Start(0)).map_err(|e| Error::io(path, e))?;
        // the archive starts at byte 0 (the magic above): the zip crate's search for where it
        // starts refused some valid torch.save files ("Invalid Central Directory header": 1 in
        // 80 re-saves of one checkpoint, by where the records fell)
        let config = zip::read::Config { archive_offset: zip::read::ArchiveOffset::Known(0) };
        let zip = ZipArchive::with_config(config, BufReader::new(file))
            .map_err(|e| ck(format!("corrupt or truncated zip archive: {e}")))?;
        if zip.has_duplicate_names() {
            return Err(ck("zip archive with duplicate entry names".into()));
        }
        let names = zip
            .file_names()
            .map(|n| n.map(|s| s.into_owned()))
            .collect::<std::result::Result<Vec<String>, ZipError>>()
            .map_err(|e| ck(format!("corrupt zip archive: {e}")))?;
        let pickles: Vec<&String> = names
            .iter()
            .filter(|n| {
                n.strip_suffix("data.pkl").is_some_and(|p| {
                    p.is_empty() || p.strip_suffix('/').is_some_and(|d| !d.is_empty() && !d.contains('/'))
                })
            })
            .collect();
        let prefix = match pickles.as_slice() {
            [one] => one.trim_end_matches("data.pkl").to_string(),
            [] => return Err(ck("no `data.pkl` in the archive (not a torch.save file)".into())),
            many => {
                let list: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
                return Err(ck(format!("several `data.pkl` in the archive: {}", list.join(", "))));
            }
        };
        let mut archive = Archive { path: path.to_path_buf(), zip, file_len, prefix };
        archive.check_records(&names)?;
        Ok(archive)
    }

    /// `version` (required, as torch's reader does) and `byteorder` (optional, little-endian).
    fn check_records(&mut self, names: &[String]) -> Result<()> {
        let candidates = [format!("{}version", self.prefix), format!("{}.data/version", self.prefix)];
        let Some(name) = candidates.iter().find(|c| names.contains(c)) else {
            return Err(self.err(format!("no `{}` record (not a torch.save file)", candidates[0])));
        };
        let raw = self.read_entry(name, None, 64, "the format version")?;
        let text = String::from_utf8_lossy(&raw);
        match text.trim().parse::<u64>() {
            Ok(v) if VERSIONS.contains(&v) => {}
            _ => return Err(self.err(format!("unsupported format version {:?} in `{name}`", text.trim()))),
        }
        let name = format!("{}byteorder", self.prefix);
        if names.contains(&name) {
            let raw = self.read_entry(&name, None, 64, "the byte order")?;
            match raw.as_slice() {
                b"little" => {}
                b"big" => return Err(self.err("big-endian checkpoint (byteorder `big`) is not supported".into())),
                other => {
                    return Err(self.err(format!("unknown byte order {:?}", String::from_utf8_lossy(other))))
                }
            }
        }
        if cfg!(target_endian = "big") {
            return Err(self.err("reading torch files needs a little-endian host".into()));
        }
        Ok(())
    }

    fn read_pickle(&mut self) -> Result<Value> {
        let name = format!("{}data.pkl", self.prefix);
        let data = self.read_entry(&name, None, u64::MAX, "the pickle")?;
        pickle::unpickle(&data).map_err(|e| self.err(format!("`{name}`: {e}")))
    }

    /// One STORED entry, whole, its CRC-32 checked; `exact`/`max` bound its size before any
    /// allocation (and it can never exceed the file's size).
    fn read_entry(&mut self, name: &str, exact: Option<u64>, max: u64, what: &str) -> Result<Vec<u8>> {
        let (path, file_len) = (self.path.clone(), self.file_len);
        let ck = |message: String| Error::Checkpoint { path: path.clone(), message };
        let mut f = match self.zip.by_name(name) {
            Ok(f) => f,
            Err(ZipError::FileNotFound) => {
                return Err(ck(format!("{what}: entry `{name}` is missing from the archive")))
            }
            Err(e) => return Err(ck(format!("{what}: entry `{name}`: {e}"))),
        };
        if f.compression() != CompressionMethod::Stored {
            return Err(ck(format!(
                "{what}: entry `{name}` is compressed ({}); torch.save stores entries uncompressed",
                f.compression()
            )));
        }
        let size = f.size();
        if f.compressed_size() != size || size > file_len {
            return Err(ck(format!(
                "{what}: entry `{name}` claims {size} bytes ({} stored) in a file of {file_len}",
                f.compressed_size()
            )));
        }
        if let Some(e) = exact {
            if e != size {
                return Err(ck(format!("{what}: entry `{name}` holds {size} bytes, expected {e}")));
            }
        }
        if size > max {
            return Err(ck(format!("{what}: entry `{name}` is {size} bytes, more than the {max} expected")));
        }
        let mut buf = Vec::with_capacity(size.min(CHUNK) as usize);
        (&mut f)
            .take(size)
            .read_to_end(&mut buf)
            .map_err(|e| ck(format!("{what}: reading entry `{name}`: {e}")))?;
        if buf.len() as u64 != size {
            return Err(ck(format!("{what}: entry `{name}` is truncated ({} of {size} bytes)", buf.len())));
        }
        // Reading on to the end makes the zip reader verify the entry's CRC-32.
        let mut probe = [0u8; 1];
        match f.read(&mut probe) {
            Ok(0) => Ok(buf),
            Ok(_) => Err(ck(format!("{what}: entry `{name}` is longer than its recorded size"))),
            Err(e) => Err(ck(format!("{what}: entry `{name}`: {e}"))),
        }
    }

    /// A storage's record as a 1-d tensor of its `numel` elements.
    fn read_storage(&mut self, s: &StorageRef) -> Result<Tensor> {
        let name = format!("{}data/{}", self.prefix, s.key);
        let what = format!("storage `{}`", s.key);
        let bytes = (s.numel as u64)
            .checked_mul(s.kind.elt_size_in_bytes() as u64)
            .ok_or_else(|| self.err(format!("{what}: size overflows")))?;
        let data = self.read_entry(&name, Some(bytes), u64::MAX, &what)?;
        if s.kind == Kind::Bool && data.iter().any(|&b| b > 1) {
            return Err(self.err(format!("{what}: a bool storage holds a byte other than 0 or 1")));
        }
        // `f_from_data_size` copies numel * element-size bytes: exactly `data`'s length (checked above).
        Tensor::f_from_data_size(&data, &[s.numel], s.kind).map_err(|e| self.err(format!("{what}: {e}")))
    }

    /// Counts `bytes` materialised beyond what the file's storages hold toward the bound; past
    /// it, an error of what `described` says of the tensor.
    fn charge(&self, cache: &mut StorageCache, bytes: u128, described: impl FnOnce() -> String) -> Result<()> {
        if cache.expanded + bytes > cache.bound {
            return Err(self.err(format!("{}, more than the {} they may take; save them `.contiguous()` if they are meant", described(), bytes_text(cache.bound))));
        }
        cache.expanded += bytes;
        Ok(())
    }

    /// The tensor `r` describes, checked against its storage, as a contiguous tensor: its own
    /// copy (an expanded one of at most [`EXPANDED_MAX_BYTES`]), or a view sharing the memory of
    /// a storage that other tensors read too.
    fn materialise(&mut self, r: &TensorRef, path: &[String], cache: &mut StorageCache) -> Result<Tensor> {
        let at = || format!("tensor `{}`", path.join("/"));
        let s = &r.storage;
        let numel = r.numel().ok_or_else(|| self.err(format!("{}: size {:?} overflows", at(), r.size)))?;
        // (of no element too: its strides overflowed inside libtorch)
        if super::shape_out_of_range(r.size.iter().map(|&d| d.max(0) as u64)) {
            return Err(self.err(format!("{}: size {:?} is past what a tensor can hold", at(), r.size)));
        }
        // The highest element index the view touches must lie inside the storage.
        if numel > 0 {
            let last = r
                .size
                .iter()
                .zip(&r.stride)
                .try_fold(r.offset, |acc, (&n, &st)| (n - 1).checked_mul(st).and_then(|x| acc.checked_add(x)));
            match last {
                Some(last) if last < s.numel => {}
                _ => {
                    return Err(self.err(format!(
                        "{}: size {:?}, stride {:?} and offset {} reach past its storage `{}` of {} elements",
                        at(),
                        r.size,
                        r.stride,
                        r.offset,
                        s.key,
                        s.numel
                    )))
                }
            }
        }
        // a view that repeats its storage's elements (a stride of 0: an expanded tensor; or
        // overlapping strides) is materialised at its full size: up to a bound, so that a
        // small file cannot ask for any memory it likes (1.6 KB asked for 4 TB before any
        // shape was checked, and failed with libtorch's backtrace)
        let bytes = (numel as u128) * s.kind.elt_size_in_bytes() as u128;
        let extra = if numel > s.numel { bytes - (s.numel as u128) * s.kind.elt_size_in_bytes() as u128 } else { 0 };
        if extra > 0 {
            self.charge(cache, extra, || {
                format!(
                    "{}: a view of {numel} elements over a storage `{}` of {} element{} (size {:?}, stride {:?}: an expanded tensor, its elements repeated), {} once its elements are its own: with the file's other expanded tensors",
                    at(),
                    s.key,
                    s.numel,
                    if s.numel == 1 { "" } else { "s" },
                    r.size,
                    r.stride,
                    crate::memory::gib(bytes as f64),
                )
            })?;
        }
        let storage = match cache.tensors.get(&s.key) {
            Some(t) => t.shallow_clone(),
            None => {
                let t = self.read_storage(s)?;
                cache.tensors.insert(s.key.clone(), t.shallow_clone());
                t
            }
        };
        if let Some(left) = cache.left.get_mut(&s.key) {
            *left = left.saturating_sub(1);
            if *left == 0 {
                cache.tensors.remove(&s.key);
            }
        }
        let sole = cache.total.get(&s.key) == Some(&1);
        let tch_err = |e: tch::TchError| self.err(format!("{}: {e}", at()));
        if numel == 0 {
            return Tensor::f_empty(r.size.as_slice(), (s.kind, Device::Cpu)).map_err(tch_err);
        }
        let view = storage.f_as_strided(r.size.as_slice(), r.stride.as_slice(), r.offset).map_err(tch_err)?;
        if sole && r.offset == 0 && numel == s.numel && view.is_contiguous() {
            return Ok(view);
        }
        // a contiguous view of a storage other tensors read too shares its memory, as torch's
        // own load does (a copy each let 300 names of one 4 MiB storage take 1.2 GB); a slice
        // of a storage read once is copied, so the rest of the storage is freed
        if !sole && numel <= s.numel && view.is_contiguous() {
            return Ok(view);
        }
        // the copy of another view (transposed, strided) of a shared storage counts toward the
        // bound, as an expanded view's elements do: the file holds its elements once
        if !sole && extra == 0 {
            self.charge(cache, bytes, || {
                format!(
                    "{}: a strided view (size {:?}, stride {:?}) of storage `{}`, which other tensors read too: its copy, with the file's other copies and expanded tensors",
                    at(),
                    r.size,
                    r.stride,
                    s.key
                )
            })?;
        }
        let mut out = Tensor::f_empty(r.size.as_slice(), (s.kind, Device::Cpu)).map_err(tch_err)?;
        out.f_copy_(&view).map_err(tch_err)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/pth").join(name)
    }

    /// 100 names of one storage: the whole storage each time shares its memory (a copy each
    /// let a small file take any memory); a strided view each time is a copy, and the copies
    /// count toward the bound.
    #[test]
    fn views_of_a_shared_storage_share_it_or_count_their_copies() {
        let v = load(&fixture("shared_views.pth")).unwrap();
        let t = |v: &Value, i: usize| v.get(&format!("w{i}")).unwrap().as_tensor().unwrap().shallow_clone();
        let want: Vec<f32> = (0..16).map(|i| i as f32 * 0.5).collect();
        assert_eq!(Vec::<f32>::try_from(&t(&v, 99)).unwrap(), want);
        assert!((1..100).all(|i| t(&v, i).data_ptr() == t(&v, 0).data_ptr()));
        let v = load(&fixture("strided_views.pth")).unwrap();
        let w = t(&v, 7);
        assert!(w.is_contiguous() && w.data_ptr() != t(&v, 8).data_ptr());
        assert_eq!(Vec::<f32>::try_from(&w.flatten(0, -1)).unwrap(), Tensor::from_slice(&want).view([4, 4]).tr().flatten(0, -1).iter::<f64>().unwrap().map(|x| x as f32).collect::<Vec<_>>());
        // 100 copies of 64 bytes: over a bound of 1,000 bytes at the 16th
        let e = load_within(&fixture("strided_views.pth"), |_| true, 1000).unwrap_err().to_string();
        assert!(e.contains("a strided view (size [4, 4], stride [1, 4]) of storage `0`, which other tensors read too") && e.contains("more than the 1000 bytes"), "{e}");
        assert!(load_within(&fixture("shared_views.pth"), |_| true, 1000).is_ok());
    }
}
