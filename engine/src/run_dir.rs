//! Run folders: `runs/<experiment>/<stage>-<hash>/` with the resolved config, a manifest,
//! metrics and checkpoints (architecture.md, "Run folder").

use crate::error::{Error, Result};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// FNV-1a 64-bit hash, as 16 hex digits: the content hash of a stage's resolved config.
pub fn content_hash(bytes: &[u8]) -> String {
    format!("{:016x}", ijepa_schema::fnv1a(bytes.iter().copied()))
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, fsync, rename, fsync of
/// the folder. A crash leaves either the old file or the new one, never a torn one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |f| f.write_all(bytes))
}

/// [`write_atomic`] of what `fill` writes (buffered), for files too large to assemble in
/// memory first. On an error the temporary file is removed.
///
/// # Errors
/// [`Error::Io`] naming `path`.
pub fn write_atomic_with(path: &Path, fill: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>) -> Result<()> {
    // the rename replaces what is at `path`: only ever a regular file (never a device such as
    // /dev/null, a pipe, a symbolic link or a folder someone named as the output)
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if !m.file_type().is_file() {
            let what = if m.file_type().is_symlink() {
                "a symbolic link (give the path it points to)"
            } else if m.is_dir() {
                "a folder"
            } else {
                "not a regular file (a device or a pipe)"
            };
            return Err(Error::io(path, std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("is {what}; refusing to replace it"))));
        }
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    // one temporary file per process: two processes writing one file (a feature cache that
    // `ijepa run` and `ijepa eval` both fill, on one machine or two sharing the folder) never
    // write into, or rename, each other's
    let tmp = dir.join(ijepa_schema::temporary::name(&temp_stem(name)));
    let written = (|| -> std::io::Result<()> {
        // writes of 64 KiB and more go straight to the file
        let mut w = std::io::BufWriter::with_capacity(1 << 16, std::fs::File::create(&tmp)?);
        fill(&mut w)?;
        w.into_inner().map_err(std::io::IntoInnerError::into_error)?.sync_all()
    })();
    if let Err(e) = written {
        // no partial temporary file is left behind (it can be as large as a checkpoint)
        let _ = std::fs::remove_file(&tmp);
        // named by the file asked for (the temporary name is ours, not the user's)
        return Err(Error::io(path, e));
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    fsync_dir(path);
    remove_stale_temporaries(dir, name);
    Ok(())
}

/// The part of a temporary file's name that names the file `name`: `name` itself, or, where
/// `.NAME@HOST-PID.tmp` would pass the 255 bytes a file name may have (a legal output name of
/// 241 to 255 bytes was refused as "File name too long"), its first bytes and a hash of it.
fn temp_stem(name: &str) -> String {
    const MAX: usize = 255;
    let room = MAX.saturating_sub(ijepa_schema::temporary::overhead());
    if name.len() <= room {
        return name.to_string();
    }
    let hash = content_hash(name.as_bytes());
    let mut cut = room.saturating_sub(hash.len() + 1);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}~{hash}", &name[..cut])
}

/// Removes the temporary files of `name` that a process of this machine killed while writing
/// it left in `dir` (`.NAME@HOST-PID.tmp` of this host whose process is gone; another
/// machine's, on a shared folder, are left alone); best effort.
fn remove_stale_temporaries(dir: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() { Path::new(".") } else { dir }) else { return };
    let stem = temp_stem(name);
    for e in entries.flatten() {
        let file = e.file_name();
        // (and an earlier version's name of the same file, `.NAME.HOST-PID.tmp`)
        let gone = file.to_str().is_some_and(|f| {
            ijepa_schema::temporary::parse(f).is_some_and(|t| t.stem == stem && t.writer_gone())
                || ijepa_schema::temporary::legacy_of(f, &stem).is_some_and(|t| t.writer_gone())
        });
        if gone {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The temporary files of [`write_atomic`] in `dir` that a process of another machine left
/// (`.NAME@HOST-PID.tmp`, HOST not this one's): one killed while writing a checkpoint on the
/// node a job ran on before it was requeued on another. They are not removed (on a shared
/// folder the other machine's process may be writing them), only found.
pub fn others_temporaries(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let names: Vec<String> = entries.flatten().filter_map(|e| e.file_name().into_string().ok()).collect();
    // (an earlier version's name, `.NAME.HOST-PID.tmp`, is read for a file of the folder's:
    // any `.a.b-1.tmp` of a user's read as another machine's)
    let files: Vec<&str> = names.iter().map(String::as_str).filter(|n| !n.starts_with('.')).collect();
    let mut found: Vec<PathBuf> = names
        .iter()
        .filter(|n| {
            ijepa_schema::temporary::parse(n).is_some_and(|t| t.of_another_host())
                || files.iter().filter_map(|f| ijepa_schema::temporary::legacy_of(n, f)).any(|t| t.of_another_host())
        })
        .map(|n| dir.join(n))
        .collect();
    found.sort();
    found
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

/// One process per stage folder: an exclusive, non-blocking `flock` on `<dir>/.lock`, held
/// until dropped. The kernel releases it when the holder exits however it ends (SIGKILL, a
/// crash, a power cut on the next boot), so a lock left behind by a killed process never
/// blocks; the file stays and only names the last holder. A second `ijepa run` on the same
/// folder gets [`Error::Busy`] naming the holder instead of writing into a live run.
#[derive(Debug)]
pub struct StageLock {
    /// `None`: a folder this process cannot write (see [`StageLock::acquire`]).
    file: Option<std::fs::File>,
    path: PathBuf,
    /// Whether the folder could not be written (the lock file opened read-only, or none).
    read_only: bool,
}

impl StageLock {
    /// Takes the lock of `dir` (created if needed), or says who holds it.
    ///
    /// # Errors
    /// [`Error::Busy`] when another process (or another handle of this one) holds it;
    /// [`Error::Io`] when the folder or file cannot be created.
    ///
    /// A folder this process may read but not write (a finished run shared read-only, a
    /// read-only mount) is locked through a read-only handle of its lock file, or not at all
    /// when it has none: this process cannot write into it, so it has nothing to guard, and a
    /// stage that needs writing fails on its first write, naming the file.
    pub fn acquire(dir: &Path) -> Result<StageLock> {
        // (a second: what a `plan` probing the folder ([`StageLock::holder`]) holds it for)
        Self::acquire_within(dir, std::time::Duration::from_secs(1))
    }

    /// Who runs the stage of `dir` now: its lock file's details while a process holds the
    /// lock, found by a shared lock taken and let go at once (what `ijepa plan` shows beside
    /// a stage another process is running); `None` when none does.
    pub fn holder(dir: &Path) -> Option<String> {
        let path = dir.join(ijepa_schema::LOCK);
        if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            return None;
        }
        let file = std::fs::File::open(&path).ok()?;
        match file.try_lock_shared() {
            Ok(()) => {
                let _ = file.unlock();
                None
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                Some(if text.trim().is_empty() { "a process whose details are not written yet".into() } else { ijepa_schema::shown_lock(text.trim()) })
            }
            Err(std::fs::TryLockError::Error(_)) => None,
        }
    }

    /// [`StageLock::acquire`], waiting up to `wait` for a holder to let go: what a process
    /// that only reads a done stage takes (another such process holds it for moments; one
    /// that runs the stage for longer is still [`Error::Busy`] after the wait).
    ///
    /// # Errors
    /// As [`StageLock::acquire`].
    pub fn acquire_within(dir: &Path, wait: std::time::Duration) -> Result<StageLock> {
        let path = dir.join(ijepa_schema::LOCK);
        // not through a symbolic link: the holder's details would be written into its target
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(m) = std::fs::symlink_metadata(&path).ok().filter(|m| !m.is_file()) {
            let what = if m.file_type().is_symlink() { "a symbolic link" } else { "not a regular file" };
            let message = format!("the stage's lock file is {what}; move it aside (a lock file only names the process running the stage) and run again");
            return Err(Error::io(&path, std::io::Error::other(message)));
        }
        let t0 = std::time::Instant::now();
        let (mut file, read_only, locked) = loop {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            let opened = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).custom_flags(libc::O_NOFOLLOW).open(&path);
            let (file, read_only) = match opened {
                Ok(f) => (f, false),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem) => {
                    match std::fs::File::open(&path) {
                        Ok(f) => (f, true),
                        Err(e2) if e2.kind() == std::io::ErrorKind::NotFound => return Ok(StageLock { file: None, path, read_only: true }),
                        Err(_) => return Err(Error::io(&path, e)),
                    }
                }
                Err(e) => return Err(Error::io(&path, e)),
            };
            let mut locked = file.try_lock();
            while matches!(locked, Err(std::fs::TryLockError::WouldBlock)) && t0.elapsed() < wait {
                std::thread::sleep(std::time::Duration::from_millis(20));
                locked = file.try_lock();
            }
            // the file locked must still be the folder's lock file: a `--force` moves a done
            // stage's folder aside with its lock held, and a process that waited on the moved
            // file would otherwise hold the old folder's lock and run the stage beside the
            // process that moved it (each moving the other's folder aside)
            if locked.is_ok() && !same_file(&file, &path) {
                drop(file);
                if t0.elapsed() < wait {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    continue;
                }
                // (a file system whose file identities do not stay put would loop forever)
                return Err(Error::io(&path, std::io::Error::other("the stage's lock file was replaced while this process took it (another process moved the folder): run again")));
            }
            break (file, read_only, locked);
        };
        match locked {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                return Err(Error::Busy {
                    dir: dir.to_path_buf(),
                    holder: if holder.is_empty() { "its details are not written yet".into() } else { ijepa_schema::shown_lock(holder) },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        // (args_os: `args` panicked on a file name that is not UTF-8, leaving an empty lock)
        let cmd: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
        let text = ijepa_schema::lock_text(std::process::id(), &ijepa_schema::host_name(), since, &cmd.join(" "));
        // the details are informative only: a failure to write them does not release the lock
        if !read_only {
            let _ = file.set_len(0).and_then(|()| file.write_all(text.as_bytes())).and_then(|()| file.flush());
        }
        Ok(StageLock { file: Some(file), path, read_only })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the folder could not be written when the lock was taken: a stage that needs
    /// running there fails at once instead of at its first write, after its computing.
    pub fn read_only(&self) -> bool {
        self.read_only
    }
}

/// What this process cannot do with a stage folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// List or search the folder.
    Read,
    /// Reach it (a folder above it this user may not search).
    Reach,
    /// Write into it.
    Write,
    /// Make it (it does not exist yet): the nearest folder above it that does refuses.
    Make,
    /// Make it: a folder above it is a symbolic link to nothing (a runs folder linked to a
    /// disk that is not mounted).
    Link,
    /// Make it: a file (or a link to one) lies where it or a folder above it should be.
    File,
    /// Make it: the path to it cannot be followed (a loop of symbolic links).
    Path,
}

/// Why this process cannot use a stage folder: what it cannot do, where, and the OS's error.
#[derive(Debug)]
pub struct AccessProblem {
    /// What it cannot do.
    pub denied: Denied,
    /// The folder the OS refused (for [`Denied::Make`], the folder above the stage's).
    pub at: PathBuf,
    /// The OS's error.
    pub error: std::io::Error,
}

impl AccessProblem {
    /// Whether the folder itself cannot be read (or reached): whether its stage is done is
    /// unknown.
    pub fn unread(&self) -> bool {
        matches!(self.denied, Denied::Read | Denied::Reach)
    }
}

impl std::fmt::Display for AccessProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (at, e) = (self.at.display(), &self.error);
        match self.denied {
            Denied::Read => write!(f, "its folder {at} cannot be read ({e})"),
            Denied::Reach => write!(f, "its folder {at} cannot be reached ({e})"),
            Denied::Write => write!(f, "its folder {at} cannot be written ({e})"),
            Denied::Make => write!(f, "its folder cannot be made in {at} ({e})"),
            Denied::Link => write!(f, "its folder cannot be made: {at} is a symbolic link to nothing (a broken link) where a folder is needed"),
            Denied::File => write!(f, "its folder cannot be made: {at} is a file where a folder is needed"),
            Denied::Path => write!(f, "its folder cannot be made: {at} ({e})"),
        }
    }
}

/// Why this process could not read the stage folder `dir` (a folder it may not list or
/// search, or may not reach), or, with `write`, could not make or write it (the folder, or the
/// nearest folder above it that exists, read-only or not this user's): `None` when it can.
/// What a dry run checks of a stage to run, which the real run would stop at (a folder it
/// cannot read looks empty: its stage "to run").
pub fn access_problem(dir: &Path, write: bool) -> Option<AccessProblem> {
    use std::os::unix::ffi::OsStrExt;
    let denied = |path: &Path, mode: libc::c_int| -> Option<std::io::Error> {
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
        // SAFETY: `c` is a NUL-terminated path that outlives the call
        let rc = unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), mode, libc::AT_EACCESS) };
        (rc != 0).then(std::io::Error::last_os_error)
    };
    let problem = |denied, at: &Path, error| Some(AccessProblem { denied, at: at.to_path_buf(), error });
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {
            if let Some(e) = denied(dir, libc::R_OK | libc::X_OK) {
                return problem(Denied::Read, dir, e);
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return problem(Denied::Reach, dir, e),
        _ => {}
    }
    if !write {
        return None;
    }
    let at = dir.ancestors().find(|a| a.as_os_str().is_empty() || a.is_dir() || std::fs::symlink_metadata(a).is_ok())?;
    // (a link to nothing on the way: the run said "File exists"; the dry run saw the folder
    // above it, writable, and said "run")
    if !at.as_os_str().is_empty() && !at.is_dir() {
        return match std::fs::metadata(at) {
            // (a file, or a link to one)
            Ok(_) => problem(Denied::File, at, std::io::Error::from(std::io::ErrorKind::AlreadyExists)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => problem(Denied::Link, at, e),
            // (a loop of links)
            Err(e) => problem(Denied::Path, at, e),
        };
    }
    let at = if at.as_os_str().is_empty() { Path::new(".") } else { at };
    let e = denied(at, libc::W_OK | libc::X_OK)?;
    problem(if at == dir { Denied::Write } else { Denied::Make }, at, e)
}

/// Whether `file` is the file at `path` now (not one moved or removed since it was opened).
fn same_file(file: &std::fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

impl Drop for StageLock {
    fn drop(&mut self) {
        if let Some(f) = &self.file {
            let _ = f.unlock();
        }
    }
}

/// Moves a record that is replaced (`eval.json`, `manifest.json`: unreadable, or outdated) to
/// `<name>.<why>` beside it, so that a new one can be written without losing the old bytes;
/// returns where it went (the caller says why, and what happens next). A record set aside
/// earlier for the same reason is kept: the new one goes to `<name>.<why>.2`, `.3`, ...
///
/// # Errors
/// The rename fails.
pub fn keep_aside(path: &Path, why: &str) -> Result<PathBuf> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut aside = path.with_file_name(format!("{name}.{why}"));
    let mut n = 1u32;
    // (the caller holds the stage's lock: nothing else names records aside in this folder)
    while aside.symlink_metadata().is_ok() {
        n += 1;
        aside = path.with_file_name(format!("{name}.{why}.{n}"));
    }
    std::fs::rename(path, &aside).map_err(|e| Error::io(path, e))?;
    Ok(aside)
}

/// Removes a stage folder that holds nothing but its lock file: what a stage that failed
/// before writing anything leaves (called while the lock is still held; a process that opened
/// the lock file just before fails writing into the removed folder, with an error naming it,
/// and is run again).
pub fn remove_if_only_lock(dir: &Path) {
    let only_lock = std::fs::read_dir(dir).is_ok_and(|mut d| d.all(|e| e.is_ok_and(|e| e.file_name() == ijepa_schema::LOCK)));
    if only_lock {
        let _ = std::fs::remove_file(dir.join(ijepa_schema::LOCK));
        let _ = std::fs::remove_dir(dir);
    }
}

/// `root/<experiment>/<stage>-<first 12 hex digits of hash>`.
pub fn stage_path(root: &Path, experiment: &str, stage: &str, hash: &str) -> PathBuf {
    root.join(experiment).join(format!("{stage}-{}", &hash[..12.min(hash.len())]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_set_aside_twice_keeps_both() {
        let dir = std::env::temp_dir().join(format!("ijepa-aside-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let record = dir.join("eval.json");
        let mut kept = Vec::new();
        for bytes in ["first", "second", "third"] {
            std::fs::write(&record, bytes).unwrap();
            kept.push(keep_aside(&record, "unreadable").unwrap());
        }
        let names: Vec<String> = kept.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["eval.json.unreadable", "eval.json.unreadable.2", "eval.json.unreadable.3"]);
        let bytes: Vec<String> = kept.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
        assert_eq!(bytes, ["first", "second", "third"]);
        assert!(!record.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_lock_waited_for_is_the_folders_lock_after_the_folder_moved() {
        // `--force` moves a done stage's folder aside with its lock held and locks the new
        // folder; a second process that was waiting on the moved lock file must not come away
        // holding it (it ran the stage beside the first, each moving the other's folder aside)
        let d = crate::testdir::scratch("lock", "moved");
        let stage = d.join("pretrain-0123456789ab");
        let first = StageLock::acquire(&stage).unwrap();
        let waiter = {
            let stage = stage.clone();
            std::thread::spawn(move || StageLock::acquire_within(&stage, std::time::Duration::from_secs(3)))
        };
        std::thread::sleep(std::time::Duration::from_millis(300));
        std::fs::rename(&stage, d.join(".pretrain-0123456789ab.old-1")).unwrap();
        let again = StageLock::acquire(&stage).unwrap();
        drop(first);
        match waiter.join().unwrap() {
            Err(Error::Busy { .. }) => {}
            Err(e) => panic!("the waiting process failed otherwise: {e}"),
            Ok(lock) => panic!("the waiting process holds the lock of {}", lock.path().display()),
        }
        drop(again);
        // once the folder's lock is let go, it is taken
        assert!(StageLock::acquire(&stage).is_ok());
    }

    #[test]
    fn an_atomic_write_uses_its_own_temporary_file_and_clears_dead_ones() {
        let d = crate::testdir::scratch("atomic", "temporaries");
        let file = d.join("f.bin");
        // a killed writer's of this host (no such process), a live one's (pid 1), another
        // host's (on a shared folder: not judged from here), another file's
        let host = ijepa_schema::temporary::host();
        let (dead, live, other) = (format!(".f.bin@{host}-4000000000.tmp"), format!(".f.bin@{host}-1.tmp"), ".f.bin@elsewhere-4000000000.tmp".to_string());
        let another = format!(".g.bin@{host}-4000000000.tmp");
        // (and what an earlier version's process left, `.NAME.HOST-PID.tmp`: cleared too;
        // another machine's found, a dotted host's too; a file of the user's is neither)
        let (old_dead, old_other, old_dotted, users) =
            (format!(".f.bin.{host}-4000000001.tmp"), ".f.bin.elsewhere-4000000001.tmp".to_string(), format!(".f.bin.node.{host}-4000000001.tmp"), ".backup.v2-123.tmp".to_string());
        for stale in [&dead, &live, &other, &another, &old_dead, &old_other, &old_dotted, &users] {
            std::fs::write(d.join(stale), b"torn").unwrap();
        }
        write_atomic_with(&file, |w| std::io::Write::write_all(w, b"whole")).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"whole");
        let mut left: Vec<String> = std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        let mut want = vec![live, other.clone(), another, old_other.clone(), old_dotted.clone(), users, "f.bin".to_string()];
        want.sort();
        assert_eq!(left, want);
        // the other hosts' are found (a requeued job's node left them), no other
        assert_eq!(others_temporaries(&d), [d.join(&old_other), d.join(&old_dotted), d.join(&other)]);
    }

    /// A name of 241 to 255 bytes is legal, and written: the temporary file beside it
    /// (`.NAME@HOST-PID.tmp`) is named by a cut of it and its hash (it was refused as "File
    /// name too long"); a killed writer's temporary of it is cleared as any other's.
    #[test]
    fn an_atomic_write_of_a_name_of_255_bytes_is_written() {
        let d = crate::testdir::scratch("atomic", "long-name");
        for n in [200, 241, 255] {
            let name = format!("{}.safetensors", "é".repeat((n - 12) / 2) + &"b".repeat((n - 12) % 2));
            assert_eq!(name.len(), n);
            let file = d.join(&name);
            let stale = d.join(format!(".{}@{}-4000000000.tmp", temp_stem(&name), ijepa_schema::temporary::host()));
            if stale.file_name().unwrap().len() <= 255 {
                std::fs::write(&stale, b"torn").unwrap();
            }
            write_atomic(&file, b"whole").unwrap();
            assert_eq!(std::fs::read(&file).unwrap(), b"whole");
            assert!(!stale.exists());
        }
        let left: Vec<String> = std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(left.len(), 3, "{left:?}");
        assert!(left.iter().all(|n| !n.ends_with(".tmp")), "{left:?}");
    }

    #[test]
    fn an_atomic_write_replaces_only_a_regular_file() {
        use std::os::unix::fs::FileTypeExt;
        let d = crate::testdir::scratch("atomic", "targets");
        let file = d.join("f.bin");
        write_atomic(&file, b"one").unwrap();
        write_atomic(&file, b"two").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        let link = d.join("link.bin");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let folder = d.join("folder");
        std::fs::create_dir(&folder).unwrap();
        // a socket stands in for a device or a pipe (a regression must not clobber /dev/null)
        let socket = d.join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        for (target, says) in [(link.as_path(), "symbolic link"), (folder.as_path(), "a folder"), (socket.as_path(), "not a regular file")] {
            let e = write_atomic(target, b"x").unwrap_err().to_string();
            assert!(e.contains(&target.display().to_string()) && e.contains(says) && e.contains("refusing to replace"), "{e}");
        }
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        assert!(std::fs::symlink_metadata(&socket).unwrap().file_type().is_socket());
        // nothing left behind
        assert_eq!(std::fs::read_dir(&*d).unwrap().count(), 4);
        // a failure to write names the file asked for, not the temporary one beside it
        let e = write_atomic(&d.join("missing/f.bin"), b"x").unwrap_err().to_string();
        assert!(e.contains(&d.join("missing/f.bin").display().to_string()) && !e.contains(".tmp") && e.contains("does not exist"), "{e}");
    }

    /// An OS error whose words name no cause gets the cause: the file above a path, the file
    /// or broken link where a folder is made.
    #[test]
    fn io_errors_name_what_is_in_the_way() {
        let tmp = crate::testdir::scratch("lock", "in-the-way");
        std::fs::write(tmp.join("runs"), "").unwrap();
        let err = StageLock::acquire(&tmp.join("runs/exp/pretrain-0123456789ab")).unwrap_err().to_string();
        assert!(err.contains(&format!("{} is a file, not a folder", tmp.join("runs").display())), "{err}");
        std::fs::create_dir_all(tmp.join("r/exp")).unwrap();
        std::os::unix::fs::symlink(tmp.join("nowhere"), tmp.join("r/exp/pretrain-0123456789ab")).unwrap();
        let err = StageLock::acquire(&tmp.join("r/exp/pretrain-0123456789ab")).unwrap_err().to_string();
        assert!(err.contains("a broken link"), "{err}");
        // a runs folder (or experiment folder) that is a broken link: named, not the stage
        std::os::unix::fs::symlink(tmp.join("unmounted"), tmp.join("linked")).unwrap();
        let err = StageLock::acquire(&tmp.join("linked/exp/pretrain-0123456789ab")).unwrap_err().to_string();
        assert!(err.contains(&format!("{} is a symbolic link to nothing (a broken link)", tmp.join("linked").display())), "{err}");
        assert!(!tmp.join("unmounted").exists(), "nothing made at the link's target");
        std::fs::write(tmp.join("r/exp/eval-x"), "").unwrap();
        let err = StageLock::acquire(&tmp.join("r/exp/eval-x")).unwrap_err().to_string();
        assert!(err.contains("a file where a folder is needed"), "{err}");
    }

    #[test]
    fn one_holder_per_stage_folder() {
        let tmp = crate::testdir::scratch("lock", "one-holder");
        let dir = tmp.join("exp/pretrain-0123456789ab");
        let held = StageLock::acquire(&dir).unwrap();
        // a second handle (flock locks are per open file) is refused, naming the holder
        let err = StageLock::acquire(&dir).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Busy { .. }), "{err:?}");
        assert!(msg.contains(&format!("pid {}", std::process::id())) && msg.contains("pretrain-0123456789ab"), "{msg}");
        // another folder is independent
        let other = StageLock::acquire(&tmp.join("exp/eval-knn-0123456789ab")).unwrap();
        drop(held);
        // released on drop: the next holder gets it (the file stays, naming the last holder)
        let again = StageLock::acquire(&dir).unwrap();
        assert!(again.path().is_file());
        drop((again, other));
        // a lock file that is a symbolic link is refused, its target untouched
        let linked = tmp.join("exp/pretrain-linked");
        std::fs::create_dir_all(&linked).unwrap();
        let target = tmp.join("precious.txt");
        std::fs::write(&target, "precious").unwrap();
        std::os::unix::fs::symlink(&target, linked.join(ijepa_schema::LOCK)).unwrap();
        let err = StageLock::acquire(&linked).unwrap_err().to_string();
        assert!(err.contains("is a symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
        // a reader of a done stage waits for a holder of moments, not for a long one
        let held = StageLock::acquire(&dir).unwrap();
        // ... and a plan sees who holds it, without taking it
        assert!(StageLock::holder(&dir).is_some_and(|h| h.contains(&format!("pid {}", std::process::id()))));
        let t0 = std::time::Instant::now();
        assert!(matches!(StageLock::acquire_within(&dir, std::time::Duration::from_millis(200)), Err(Error::Busy { .. })));
        assert!(t0.elapsed() >= std::time::Duration::from_millis(200));
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            drop(held);
        });
        let again = StageLock::acquire_within(&dir, std::time::Duration::from_secs(5)).unwrap();
        release.join().unwrap();
        drop(again);
        assert_eq!(StageLock::holder(&dir), None);
    }
}
