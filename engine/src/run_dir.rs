//! Run folders: `runs/<experiment>/<stage>-<hash>/` with the resolved config, a manifest,
//! metrics and checkpoints (architecture.md, "Run folder").

use crate::error::{Error, Result};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// FNV-1a 64-bit hash, as 16 hex digits: the content hash of a stage's resolved config.
pub fn content_hash(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, fsync, rename, fsync of
/// the folder. A crash leaves either the old file or the new one, never a torn one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("file")));
    {
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    fsync_dir(path);
    Ok(())
}

/// Flushes the folder holding `path` (makes a rename durable); best effort.
pub fn fsync_dir(path: &Path) {
    if let Some(d) = path.parent().and_then(|d| std::fs::File::open(if d.as_os_str().is_empty() { Path::new(".") } else { d }).ok()) {
        let _ = d.sync_all();
    }
}

/// Writes `value` as pretty JSON, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Train(format!("serialising {}: {e}", path.display())))?;
    write_atomic(path, text.as_bytes())
}

/// `root/<experiment>/<stage>-<first 12 hex digits of hash>`.
pub fn stage_path(root: &Path, experiment: &str, stage: &str, hash: &str) -> PathBuf {
    root.join(experiment).join(format!("{stage}-{}", &hash[..12.min(hash.len())]))
}

/// Creates (if needed) and returns [`stage_path`].
pub fn stage_dir(root: &Path, experiment: &str, stage: &str, hash: &str) -> Result<PathBuf> {
    let dir = stage_path(root, experiment, stage, hash);
    std::fs::create_dir_all(dir.join("checkpoints")).map_err(|e| Error::io(&dir, e))?;
    Ok(dir)
}
