//! ijepa-schema: the one typed description of a run folder, written by training and the
//! evaluation stages, read by the plan (what is done), `ijepa status`-style tools and the
//! reports. No libtorch: the reports crate depends on it alone.
//!
//! ```text
//! runs/<experiment>/
//!   pretrain-<hash>/   config.json  config.kdl  manifest.json  metrics.csv  monitor.csv
//!                      checkpoints/{latest,epoch-NNNN,final}.safetensors
//!   eval-<protocol>-<model>-<hash>/eval.json
//!   features/          cached frozen features
//!   planned-<file>-<digest>.json  the stages the last `ijepa run` of a file planned
//! ```
//!
//! Every struct reads older files: fields added later have serde defaults.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// `manifest.json` of a pretraining stage.
pub const MANIFEST: &str = "manifest.json";
/// The resolved experiment of a pretraining stage, as JSON.
pub const CONFIG_JSON: &str = "config.json";
/// The resolved experiment of a pretraining stage, as KDL.
pub const CONFIG_KDL: &str = "config.kdl";
/// Per-step training metrics (CSV; columns in [`MetricRow`]).
pub const METRICS: &str = "metrics.csv";
/// The learning monitors (CSV; columns in [`MonitorRow`]).
pub const MONITOR: &str = "monitor.csv";
/// The checkpoints folder of a pretraining stage.
pub const CHECKPOINTS: &str = "checkpoints";
/// The final weights of a finished pretraining, in [`CHECKPOINTS`]: what evaluations read.
pub const FINAL: &str = "final.safetensors";
/// The checkpoint a pretraining resumes from, in [`CHECKPOINTS`] (rewritten as it trains).
pub const LATEST: &str = "latest.safetensors";

/// Whether `name` is a kept epoch checkpoint of [`CHECKPOINTS`] (`epoch-NNNN.safetensors`).
pub fn is_kept_checkpoint(name: &str) -> bool {
    name.starts_with("epoch-") && name.ends_with(".safetensors")
}
/// The record of an evaluation stage.
pub const EVAL: &str = "eval.json";
/// File in a report folder recording which study's report stage wrote it (its hash and what
/// it read); `ijepa report` of a runs folder removes it.
pub const REPORT_MARKER: &str = "report-stage.json";
/// Cached frozen features, per experiment folder.
pub const FEATURES: &str = "features";

/// 64-bit FNV-1a of `bytes`: a digest that stays the same across builds and machines (stage
/// hashes, the names of the records a study's folder keeps).
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// What the last `ijepa run` of an experiment file planned, kept in its study's folder
/// (`runs/<study>/planned-<file stem>-<digest>.json`, one per file: a plain file and its sweep may share
/// a study): the report of the whole runs folder shows these stages of the study, and lists the
/// others, an earlier version's (another `k`, a pretraining of other settings), as left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedStages {
    /// The experiment file, as given to `ijepa run`.
    pub file: String,
    /// The experiments its stages belong to: the study and its sweep points.
    pub experiments: Vec<String>,
    /// Its stage folders, `<experiment>/<stage>-<hash>`, relative to the runs folder.
    pub stages: Vec<String>,
    /// The sweep values it files each of its evaluations under that has any (stage folder as in
    /// `stages` -> setting -> value); a listed evaluation absent here has none (a plain
    /// file's). A baseline a plain file and its sweep share records the values of the file that
    /// ran it first: the report of the folder files it under each file's. `None` in records of
    /// earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub varied: Option<BTreeMap<String, BTreeMap<String, String>>>,
    /// The pretraining each of its evaluations of a pretrained encoder reads (stage folder ->
    /// stage folder, as in `stages`): a point the run never reached is told from one whose
    /// pretraining (shared, or adopted from a plain file's run) is there. `None` in records of
    /// earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reads: Option<BTreeMap<String, String>>,
}

impl PlannedStages {
    /// Where the record of `file`'s plan lies in its study's folder `study_dir`:
    /// `planned-<stem>-<digest of its full path>.json`, one per file (the stem alone, its
    /// other characters as `_`, named `knn-α.kdl` and `knn-β.kdl`, or `a/x.kdl` and `b/x.kdl`,
    /// alike: each run's record replaced the other's, whose current results were left out).
    /// (A link to a file is the file: the stem is the file's, as the digest is.)
    pub fn path(study_dir: &Path, file: &Path) -> std::path::PathBuf {
        let full = file.canonicalize().unwrap_or_else(|_| file.to_path_buf());
        let stem = full.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        // (the first 100 characters: a file of a 240-character name, which the file system
        // holds, gave a record name it refuses, and no record was written)
        let stem: String = stem.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).take(Self::STEM_CHARS).collect();
        let digest = fnv1a(full.to_string_lossy().bytes());
        study_dir.join(format!("planned-{stem}-{:08x}.json", digest >> 32))
    }

    /// How many characters of a file's stem name its record.
    const STEM_CHARS: usize = 100;

    /// How a record names the stage folder `dir`: its last two components,
    /// `<experiment>/<stage>-<hash>` (the runs folder may have moved since).
    pub fn stage_of(dir: &Path) -> String {
        let parts: Vec<_> = dir.components().rev().take(2).collect();
        parts.iter().rev().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
    }

    /// Whether `path` is such a record (by its name).
    pub fn is_one(path: &Path) -> bool {
        path.is_file() && path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("planned-") && n.ends_with(".json"))
    }

    /// The records in the study folder `study_dir`, sorted by name (none where it cannot be
    /// read).
    pub fn records_in(study_dir: &Path) -> Vec<std::path::PathBuf> {
        let mut records: Vec<_> = std::fs::read_dir(study_dir).map(|r| r.flatten().map(|e| e.path()).filter(|p| Self::is_one(p)).collect()).unwrap_or_default();
        records.sort();
        records
    }
}

/// A `--force` run of a study's stages that has not got through them (a signal or an error
/// stopped it, or a point diverged), kept in the study's folder
/// (`runs/<study>/.force-<digest of its stages>.json`, one per command) until one does: the
/// same command goes on with it, and does not force a second time the stages it ran again
/// (after a Ctrl-C, "run the same command again" retrained the points of a forced sweep that
/// had finished).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForcedRun {
    /// The stages it forces, `<id> <hash>` each, in the plan's order: another selection, or
    /// stages of other settings, is another command.
    pub stages: Vec<String>,
    /// When it began, in seconds since the Unix epoch.
    pub began: f64,
    /// The stages it has run again (or that diverged again), as in `stages`.
    #[serde(default)]
    pub done: Vec<String>,
}

impl ForcedRun {
    /// Its file in the study folder `study_dir`: `.force-<digest of stages>.json`.
    pub fn path(study_dir: &Path, stages: &[String]) -> std::path::PathBuf {
        let digest = fnv1a(stages.iter().flat_map(|s| s.bytes().chain([0u8])));
        study_dir.join(format!(".force-{digest:016x}.json"))
    }

    /// The record of the command forcing `stages` in `study_dir`, if one is there and readable
    /// (a damaged one, or one of other stages, is none: the command then forces every stage it
    /// selects, as a first `--force` does).
    pub fn read(study_dir: &Path, stages: &[String]) -> Option<Self> {
        read_file(&Self::path(study_dir, stages))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .filter(|r: &Self| r.stages == stages && r.began_at().is_some())
    }

    /// When it began (`None` for a time no clock holds: a damaged record).
    pub fn began_at(&self) -> Option<std::time::SystemTime> {
        let d = std::time::Duration::try_from_secs_f64(self.began).ok()?;
        std::time::UNIX_EPOCH.checked_add(d)
    }
}

/// What became of the writes to standard output: the first failed write other than a closed
/// pipe, kept by the binaries' `println!` (`ijepa`'s through the engine, `ijepa-report`'s) and
/// said at their end. Here, beside the run-folder schema, because `ijepa-report` has no libtorch.
pub mod stdout {
    use std::sync::OnceLock;

    static FAILED: OnceLock<String> = OnceLock::new();

    /// Keeps the first error of a write to stdout other than a closed pipe (a reader that
    /// stopped reading, `| head`, wants no more).
    pub fn note(r: std::io::Result<()>) {
        if let Err(e) = r {
            note_error(&e);
        }
    }

    /// Keeps `e`, a failed write to stdout (the binary's log lines' writer reports its own
    /// here), unless it is a closed pipe.
    pub fn note_error(e: &std::io::Error) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            let _ = FAILED.set(e.to_string());
        }
    }

    /// The first failed write to stdout, after flushing what is left: output lost (`plan
    /// --dot > full-disk/plan.dot` wrote part of the graph and exited 0).
    pub fn failed() -> Option<&'static str> {
        use std::io::Write as _;
        note(std::io::stdout().flush());
        FAILED.get().map(String::as_str)
    }
}

/// The status of a stage in its manifest.
pub mod status {
    /// Training in progress (or killed without a chance to say so).
    pub const RUNNING: &str = "running";
    /// Finished.
    pub const DONE: &str = "done";
    /// Stopped by a signal at a step boundary, checkpoint saved.
    pub const INTERRUPTED: &str = "interrupted";
    /// Stopped by an error (`error` says which).
    pub const FAILED: &str = "failed";
    /// Never written: what [`super::shown_status`] says of a `running` stage whose process
    /// is gone (SIGKILL, out of memory, a crash), so a report does not call it running.
    pub const KILLED: &str = "killed";
}

/// The lock file of a stage folder: an exclusive `flock` held by the process writing the
/// stage, whose text names it ([`lock_text`]).
pub const LOCK: &str = ".lock";

/// The first of `path` and the folders above it that exists and is not a folder (a file, a
/// device), where a folder is to be made: the runs folder's and the report folder's checks
/// refuse it before anything runs.
pub fn file_in_the_way(path: &Path) -> Option<&Path> {
    path.ancestors().filter(|a| !a.as_os_str().is_empty()).find(|a| std::fs::metadata(a).is_ok_and(|m| !m.is_dir()))
}

/// The path `p` names once a writer has created its missing folders: resolved a component at
/// a time, each link that exists followed (a link reached through a folder not made yet,
/// `new/../link/x`, too), `.` and `..` of the folders not made yet taken by their names; `p`
/// itself where the working folder cannot be read. (What a check of where output may go
/// compares: the report folder with the runs folder, an `--out` with a run's folder.)
pub fn as_created(p: &Path) -> std::path::PathBuf {
    use std::path::Component;
    let Ok(abs) = std::path::absolute(p) else { return p.to_path_buf() };
    let mut at = std::path::PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                at.pop();
            }
            Component::CurDir => {}
            c => at.push(c),
        }
        // (each prefix made canonical as far as it exists: the next `..` pops a real folder)
        if let Ok(real) = at.canonicalize() {
            at = real;
        }
    }
    at
}

/// This host's name, as manifests, lock files and temporary files' names record it: the
/// kernel's (`/proc/sys/kernel/hostname`, what `hostname` prints), else `/etc/hostname`, else
/// `unknown`. (`/etc/hostname` alone named every node of a cluster whose nodes share one
/// system image, or have none, alike: a process there took another node's live run for a dead
/// one of its own machine, and could remove its temporary files.)
pub fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|f| std::fs::read_to_string(f).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

/// Whether process `pid` of this machine is alive: listed in `/proc` and not a zombie (a
/// process killed, as the out-of-memory killer kills, whose parent has not waited for it yet
/// keeps its entry: its run read as `running`). `None` without `/proc`.
pub fn process_alive(pid: u32) -> Option<bool> {
    if !Path::new("/proc/self").exists() {
        return None;
    }
    Some(match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // (the state follows the command's name, in parentheses that it may itself hold)
        Ok(stat) => stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()) != Some("Z"),
        Err(_) => Path::new(&format!("/proc/{pid}")).exists(),
    })
}

/// When process `pid` of this machine started, in seconds since the Unix epoch (its start in
/// clock ticks after boot, `/proc/PID/stat`'s 22nd field, at Linux's fixed 100 ticks a second
/// for user space, after the boot time `/proc/stat` gives), where `/proc` says.
pub fn process_started(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks: u64 = stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()?;
    let boot: u64 = std::fs::read_to_string("/proc/stat").ok()?.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()?;
    Some(boot + ticks / 100)
}

/// Temporary files written beside a file and renamed over it (the engine's checkpoints and
/// caches, a report's files): `.NAME@HOST-PID.tmp`, naming the machine and the process that
/// writes them, so that a process removes only what a dead process of its own machine left.
/// `@` cannot be part of a host name, so the name splits one way (a `.` both a file's name and
/// a host's hold made host `b`'s files of `a.b`'s).
pub mod temporary {
    /// This machine's name as temporary files carry it ([`super::host_name`], anything but
    /// letters, digits, `.`, `-` and `_` made `_`).
    pub fn host() -> &'static str {
        &tag().0
    }

    /// `HOST-PID` of this process (read once).
    fn tag() -> &'static (String, String) {
        static TAG: std::sync::LazyLock<(String, String)> = std::sync::LazyLock::new(|| {
            let host: String = super::host_name().chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect();
            // (an empty host name gave names no reader took: the host never cleared its own)
            let host = if host.is_empty() { "unknown".to_string() } else { host };
            let tag = format!("{host}-{}", std::process::id());
            (host, tag)
        });
        &TAG
    }

    /// The name of this process's temporary file of the file named `stem`.
    pub fn name(stem: &str) -> String {
        format!(".{stem}@{}.tmp", tag().1)
    }

    /// The bytes [`name`] adds to `stem`.
    pub fn overhead() -> usize {
        ".".len() + "@".len() + tag().1.len() + ".tmp".len()
    }

    /// A temporary file's name read back ([`name`]).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Temporary<'a> {
        /// The name of the file it was to replace (or its shortened form).
        pub stem: &'a str,
        /// The machine whose process wrote it ([`host`] there).
        pub host: &'a str,
        /// The process that wrote it.
        pub pid: u32,
    }

    impl Temporary<'_> {
        /// Whether another machine wrote it (on a shared folder its process cannot be seen).
        pub fn of_another_host(&self) -> bool {
            self.host != host()
        }

        /// Whether the process that wrote it was of this machine and is gone: what it left can
        /// be removed (never this process's own, nor one whose process cannot be told: no
        /// `/proc`).
        pub fn writer_gone(&self) -> bool {
            !self.of_another_host() && self.pid != std::process::id() && super::process_alive(self.pid) == Some(false)
        }
    }

    /// `file_name` read as a temporary file's name, if it is one.
    pub fn parse(file_name: &str) -> Option<Temporary<'_>> {
        let body = file_name.strip_prefix('.')?.strip_suffix(".tmp")?;
        let (stem, owner) = body.rsplit_once('@')?;
        let (host, pid) = owner.rsplit_once('-')?;
        let pid = digits(pid).filter(|_| !stem.is_empty() && !host.is_empty())?;
        Some(Temporary { stem, host, pid })
    }

    /// `file_name` read as the temporary file of the file named `stem` as earlier versions named
    /// it, `.STEM.HOST-PID.tmp` (a host's name there cannot be told from the file's in general:
    /// only the file's own name, given, splits it), if it is one.
    pub fn legacy_of<'a>(file_name: &'a str, stem: &'a str) -> Option<Temporary<'a>> {
        let owner = file_name.strip_prefix('.')?.strip_prefix(stem)?.strip_prefix('.')?.strip_suffix(".tmp")?;
        let (host, pid) = owner.rsplit_once('-')?;
        let pid = digits(pid).filter(|_| !stem.is_empty() && !host.is_empty() && !host.contains('@'))?;
        Some(Temporary { stem, host, pid })
    }

    /// A process id written as decimal digits only.
    fn digits(pid: &str) -> Option<u32> {
        pid.parse().ok().filter(|_| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
    }
}

/// The text of a lock file: `pid N on HOST, since unix time T: COMMAND`.
pub fn lock_text(pid: u32, host: &str, since: u64, command: &str) -> String {
    format!("pid {pid} on {host}, since unix time {since}: {command}\n")
}

/// `text` with its control characters escaped (`\u{1b}`, `\n`): a checkpoint's key names reach
/// its errors, and one holding a terminal's escape sequences cleared the screen and printed
/// what it liked (the engine's errors and a lock file's text; the experiment language's
/// rendered diagnostics keep their line breaks and colours: `ijepa_dsl::printable`).
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(char::is_control) {
        text.chars().map(|c| if c.is_control() { c.escape_debug().to_string() } else { c.to_string() }).collect::<String>().into()
    } else {
        text.into()
    }
}

/// A lock file's text ([`lock_text`]) as a message shows it: its start time followed by how
/// long ago that was (`since unix time 1796510410, 3 min ago: ...`; the bare number was all a
/// person read), the text as it is where it names no time; its control characters escaped
/// (`\u{1b}`: another process writes the file, and a terminal's escape sequences there
/// cleared the screen of whoever read the plan, or set its title).
pub fn shown_lock(text: &str) -> String {
    let escaped = printable(text);
    let text = escaped.as_ref();
    const SINCE: &str = ", since unix time ";
    let Some(at) = text.find(SINCE).map(|i| i + SINCE.len()) else { return text.to_string() };
    let digits = text[at..].bytes().take_while(u8::is_ascii_digit).count();
    let Ok(since) = text[at..at + digits].parse::<u64>() else { return text.to_string() };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let Some(age) = now.checked_sub(since) else { return text.to_string() };
    let ago = match age {
        0..120 => format!("{age} s ago"),
        120..7200 => format!("{} min ago", age / 60),
        _ => format!("{:.1} h ago", age as f64 / 3600.0),
    };
    format!("{}, {ago}{}", &text[..at + digits], &text[at + digits..])
}

/// The process id and host a lock file's text names ([`lock_text`]), if it reads as one.
pub fn lock_holder(text: &str) -> Option<(u32, String)> {
    let rest = text.trim_start().strip_prefix("pid ")?;
    let (pid, rest) = rest.split_once(" on ")?;
    let (host, _) = rest.split_once(", since ")?;
    Some((pid.parse().ok()?, host.to_string()))
}

/// Whether the process last named in `dir`'s lock file still lives: `Some(false)` when it
/// ran on this host and no such process exists (or one that is a zombie, or that started
/// after the lock was taken: its id reused since), `Some(true)` when it does, `None` when it
/// cannot be told (no readable lock file, another host, no `/proc`). Reads only: it never
/// takes the lock, so it cannot race a run that is starting.
pub fn lock_holder_alive(dir: &Path) -> Option<bool> {
    let text = std::fs::read_to_string(dir.join(LOCK)).ok()?;
    let (pid, host) = lock_holder(&text)?;
    if host != host_name() {
        return None;
    }
    let alive = process_alive(pid)?;
    // (a minute of slack: the start is read in whole seconds, against the boot time as the
    // clock gives it now, which a clock set forward since moves later)
    let since = text.split_once(", since unix time ").and_then(|(_, r)| r.split(':').next()).and_then(|t| t.trim().parse::<u64>().ok());
    let reused = matches!((since, process_started(pid)), (Some(since), Some(start)) if since > 0 && start > since + 60);
    Some(alive && !reused)
}

/// The status to show for a stage whose manifest says `status`: the manifest's word, except
/// a `running` stage whose process is gone from this host ([`lock_holder_alive`]), which is
/// [`status::KILLED`] (`ijepa run` resumes it from its last checkpoint).
pub fn shown_status(status: &str, dir: &Path) -> String {
    if status == status::RUNNING && lock_holder_alive(dir) == Some(false) {
        return status::KILLED.to_string();
    }
    status.to_string()
}

/// One checkpoint file a manifest vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    /// File name inside `checkpoints/`.
    pub file: String,
    /// Optimiser steps done when it was written.
    pub step: u64,
    /// SHA-256 of the file.
    pub sha256: String,
    /// The `data_sha256` its metadata carries (the SHA-256 of its tensors' data), recorded for
    /// `final.safetensors`: read from the header alone, it tells another run's weights put in
    /// its place without hashing the file. Absent in earlier versions' manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_sha256: Option<String>,
}

/// `manifest.json` of a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Stage kind (`pretrain`).
    pub stage: String,
    /// Experiment name (the `runs/<experiment>/` folder).
    pub experiment: String,
    /// Content hash of the resolved config (the folder suffix is its first 12 hex digits).
    #[serde(default)]
    pub hash: String,
    /// One of [`status`].
    #[serde(default)]
    pub status: String,
    /// Unix seconds.
    #[serde(default)]
    pub started: u64,
    /// Unix seconds, when finished.
    #[serde(default)]
    pub finished: Option<u64>,
    /// ijepa version.
    #[serde(default)]
    pub ijepa_version: String,
    /// Host name.
    #[serde(default)]
    pub host: String,
    /// Number of processes.
    #[serde(default)]
    pub world_size: usize,
    /// Device, e.g. `cpu` or `cuda:0 (NVIDIA H100)`.
    #[serde(default)]
    pub device: String,
    /// The precision the run computes in, and why (`bf16 (native: this CPU has AMX-BF16)`).
    #[serde(default)]
    pub precision: String,
    /// The kernel of the dense layers' matrix products on a CPU, `blas` or `onednn` (the
    /// engine's `products`), which a resumed run keeps; absent on a GPU and in older manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_products: Option<String>,
    /// Optimiser steps done.
    #[serde(default)]
    pub steps: usize,
    /// Final loss: the mean of the last [`final_loss_window`] logged losses.
    #[serde(default)]
    pub final_loss: Option<f64>,
    /// Error message of a failed run.
    #[serde(default)]
    pub error: Option<String>,
    /// The step a failed run diverged at (a non-finite loss or weights): training it again
    /// diverges again, so `ijepa run` leaves it (and what reads it) unless `--force`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diverged_at: Option<u64>,
    /// Steps at which this run was resumed from a checkpoint.
    #[serde(default)]
    pub resumed_at: Vec<u64>,
    /// The `log-every` its latest attempt wrote `metrics.csv` rows at (a resume under another
    /// tells the rows it may lack from those lost); absent in earlier versions' manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_every: Option<usize>,
    /// Seconds the run's processes have spent on it, over every attempt (start-up, training,
    /// monitors, checkpoints), without the time it stood stopped between an interruption and
    /// its resume, which `finished - started` counts; `None` in earlier versions' manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// Checkpoints on disk (latest and the kept ones), with checksums.
    #[serde(default)]
    pub checkpoints: Vec<CheckpointRecord>,
    /// Distributed runs: a digest of the final weights on each rank (all equal, or the run
    /// fails: DDP keeps the replicas bit-identical).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rank_digests: Vec<String>,
    /// The study (the file's experiment name, before sweep suffixes) whose plan ran it: a
    /// sweep point's pretraining is named after the point, and the report of the study tells
    /// the points an earlier version of it left from other experiments by this; `None` for a
    /// run of an earlier version or of the library alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub study: Option<String>,
    /// The settings its sweep point varies that pretraining reads (`optimizer.lr.peak` ->
    /// `1e-3`; a point's evaluation settings are not the pretraining's), as the point's
    /// evaluations record them: the report places a point that has no evaluation (it diverged,
    /// it was stopped) in its study's sweep by this. Empty outside a sweep and in earlier
    /// versions' manifests.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub varied: BTreeMap<String, String>,
    /// Every sweep point whose pretraining this is, by all the settings it varies (evaluation
    /// settings included), where those points vary evaluation settings: points that differ
    /// only in them share one pretraining, whose `varied` then cannot tell them apart (and is
    /// empty in a sweep of evaluation settings alone). The report gives each a row when the
    /// pretraining has no evaluation (it diverged). Empty otherwise and in earlier versions'
    /// manifests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub points: Vec<BTreeMap<String, String>>,
    /// The list files the run read (`data.subset`), by setting, with a digest of each one's
    /// bytes ([`inputs_match`]); empty for a run that read none and in earlier versions'
    /// manifests.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, String>,
    /// What the monitors warned of its learning (an encoder not learning, or collapsing) at
    /// its latest monitored epoch (`epoch 3: the target encoder is not learning: ...`): kept
    /// with the run, which the terminal was not, for the report to show beside its numbers
    /// ([`Manifest::monitor_warnings`]). Empty without warnings and in earlier versions'
    /// manifests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// What its settings warned of before it trained (a learning-rate warm-up that fills the
    /// schedule, a learning rate of 0 throughout, a teacher that never moves, ...: what `ijepa
    /// check` says of its point, and the pretraining of its steps): kept with the run, as
    /// [`Manifest::warnings`], for the report to show beside its numbers. Empty without
    /// warnings and in earlier versions' manifests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setting_warnings: Vec<String>,
    /// What its recipe warned of while it trained, one line an attempt of the steps it trained
    /// (`masks: at steps 1-620 the context block overlapped its target(s) in 3 of the 19840
    /// images trained (0.02%) ...`: I-JEPA's mask sampler relaxed its constraints; a resumed
    /// run's attempts each say theirs): kept with the run, as [`Manifest::warnings`], for the
    /// report to show beside its numbers. Empty without warnings and in earlier versions'
    /// manifests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub training_warnings: Vec<String>,
}

/// Whether a stage that recorded the list-file digests `recorded` read the lists that are
/// `current` now: the same digests, or none recorded (a stage of an earlier version, which did
/// not record them: its lists are taken as they are).
pub fn inputs_match(recorded: &BTreeMap<String, String>, current: &BTreeMap<String, String>) -> bool {
    recorded.is_empty() || recorded == current
}

impl Manifest {
    /// The stage this record names where it is not the one its folder `dir` is named after
    /// (`pretrain-<first 12 hex digits of its hash>`): `pretrain-<its own 12>`, of a copy or a
    /// renamed stage folder. A record without a hash (an earlier version's), or a folder named
    /// otherwise, is the folder's.
    pub fn other_stage(&self, dir: &Path) -> Option<String> {
        let named = dir.file_name().and_then(|n| n.to_str()).and_then(|n| n.rsplit_once('-')).map_or("", |(_, h)| h);
        (self.hash.len() >= 12 && !self.hash.starts_with(named)).then(|| format!("pretrain-{}", printable(self.hash.get(..12).unwrap_or(&self.hash))))
    }

    /// Sets [`Manifest::warnings`] to what the monitors warned of after `epoch`, the latest
    /// monitored epoch (`epoch 3: ...` each): a warning a later epoch no longer raises is gone
    /// (a collapse the run recovered from read as the run's state beside its final numbers).
    pub fn monitor_warnings(&mut self, epoch: usize, warnings: &[String]) {
        self.warnings = warnings.iter().map(|w| format!("epoch {epoch}: {w}")).collect();
    }

    /// Keeps `note` in [`Manifest::training_warnings`], once (a resumed run's attempt says it
    /// of its own steps, beside the earlier attempts').
    pub fn training_warning(&mut self, note: String) {
        if !self.training_warnings.contains(&note) {
            self.training_warnings.push(note);
        }
    }

    /// Records `rec`, replacing an older record of the same file.
    pub fn record(&mut self, rec: CheckpointRecord) {
        self.checkpoints.retain(|c| c.file != rec.file);
        self.checkpoints.push(rec);
    }

    /// Whether the stage finished.
    pub fn is_done(&self) -> bool {
        self.status == status::DONE
    }

    /// The sweep points it is the pretraining of, by their settings: [`Manifest::points`], else
    /// its own point ([`Manifest::varied`]); none outside a sweep.
    pub fn points_of(&self) -> &[BTreeMap<String, String>] {
        if !self.points.is_empty() {
            &self.points
        } else if !self.varied.is_empty() {
            std::slice::from_ref(&self.varied)
        } else {
            &[]
        }
    }

    /// The step it diverged at, when it failed so.
    pub fn diverged(&self) -> Option<u64> {
        self.diverged_at.filter(|_| self.status == status::FAILED)
    }

    /// Its record of the checkpoint file `file` (`latest.safetensors`, `final.safetensors`, ...).
    pub fn checkpoint(&self, file: &str) -> Option<&CheckpointRecord> {
        self.checkpoints.iter().find(|c| c.file == file)
    }
}

/// `std::fs::read` of a regular file (through links): a folder, a pipe or a device where a
/// run folder holds a file is an error, not a read that waits for a pipe's writer forever
/// (`plan`, `run` and the report hung on a `mkfifo eval.json`).
///
/// # Errors
/// Of the kind `InvalidInput` for what is not a regular file; else as `std::fs::read`.
pub fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        let what = if meta.is_dir() { "is a folder, not a file" } else { "is not a regular file (a pipe or a device)" };
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, what));
    }
    std::fs::read(path)
}

/// [`read_file`] as UTF-8 text.
///
/// # Errors
/// As [`read_file`]; of the kind `InvalidData` for bytes that are not UTF-8.
pub fn read_text(path: &Path) -> std::io::Result<String> {
    String::from_utf8(read_file(path)?).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// The readable `manifest.json` of a stage folder.
pub fn read_manifest(dir: &Path) -> Option<Manifest> {
    read_text(&dir.join(MANIFEST)).ok().and_then(|t| serde_json::from_str(&t).ok())
}

/// One row of `metrics.csv`. The file's columns are `step,epoch,loss,lr,wd`, the recipe's
/// schedules (`momentum`), the recipe's step statistics, then `ms_per_step,img_per_s,skipped`;
/// only `step` and `loss` are required to read a row.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    /// Global optimizer step (1-based).
    pub step: u64,
    /// Epoch (1-based), when logged.
    pub epoch: Option<u64>,
    /// Training loss (may be NaN for a diverged run).
    pub loss: f64,
    /// Learning rate.
    pub lr: Option<f64>,
    /// Weight decay.
    pub wd: Option<f64>,
    /// Target-encoder EMA momentum (recipes with a target encoder).
    pub momentum: Option<f64>,
    /// Milliseconds per step.
    pub ms_per_step: Option<f64>,
    /// Images per second.
    pub img_per_s: Option<f64>,
}

/// The header of `monitor.csv` (`seconds`: the measure's cost).
pub const MONITOR_HEADER: &str = "step,epoch,encoder,knn_top1,rankme,spread,seconds";

/// One row of `monitor.csv`: the learning monitors of one encoder after some epochs.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorRow {
    /// Global step (0: before training).
    pub step: u64,
    /// Epochs done (0: before training).
    pub epoch: u64,
    /// `target`, `context` or `pixels`.
    pub encoder: String,
    /// Leave-one-out kNN top-1 (%) on the held-out training images.
    pub knn_top1: f64,
    /// Effective rank (RankMe) of the features.
    pub rankme: f64,
    /// Feature spread (1: isotropic, 0: collapsed).
    pub spread: f64,
}

impl MonitorRow {
    /// Parses the text of a `monitor.csv`: columns found by their header names (any order,
    /// extra columns ignored), so older and newer files read alike. The one reader of the file
    /// (training's stall warning and the reports use it).
    ///
    /// # Errors
    /// A header without one of the columns, or a field that is not a number, named with its
    /// line.
    pub fn parse_csv(text: &str) -> Result<Vec<MonitorRow>, String> {
        // (a byte-order mark, as some editors save a CSV, is not part of the first header)
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = text.lines();
        let headers: Vec<&str> = lines.next().unwrap_or("").split(',').map(str::trim).collect();
        let find = |name: &str| headers.iter().position(|h| *h == name).ok_or_else(|| format!("header lacks a `{name}` column"));
        let cols = [find("step")?, find("epoch")?, find("knn_top1")?, find("rankme")?, find("spread")?];
        let i_enc = find("encoder")?;
        let mut rows = Vec::new();
        let lines: Vec<&str> = lines.collect();
        // a last line torn by a crash (no newline after it, fields missing) is left out, as a
        // resume drops it, not the whole file
        let torn = !text.ends_with('\n') && lines.last().is_some_and(|l| l.split(',').count() < headers.len());
        let whole = lines.len() - usize::from(torn);
        for (n, line) in lines[..whole].iter().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let field = |i: usize| fields.get(i).copied().unwrap_or("");
            let mut v = [0f64; 5];
            for (slot, &i) in v.iter_mut().zip(&cols) {
                *slot = field(i).parse().map_err(|_| format!("line {}: `{}` in column `{}` is not a number", n + 2, field(i), headers[i]))?;
            }
            // what the monitor can measure (NaN: features of weights that are not finite); a
            // hand-edited 250% or -1 was drawn as measured
            let line = n + 2;
            for (j, &i) in cols.iter().enumerate() {
                let x = v[j];
                let (fits, what) = match j {
                    0 | 1 => (x >= 0.0 && x.fract() == 0.0 && x < 2f64.powi(53), "a count"),
                    2 => (x.is_nan() || (0.0..=100.0).contains(&x), "a percentage (0-100)"),
                    3 => (x.is_nan() || (0.0..f64::INFINITY).contains(&x), "an effective rank (0 or more)"),
                    // at most 1 (isotropic features), up to rounding
                    _ => (x.is_nan() || (0.0..=1.001).contains(&x), "a feature spread (0-1)"),
                };
                if !fits {
                    return Err(format!("line {line}: `{}` in column `{}` is not {what}", field(i), headers[i]));
                }
            }
            rows.push(MonitorRow {
                step: v[0] as u64,
                epoch: v[1] as u64,
                encoder: field(i_enc).to_string(),
                knn_top1: v[2],
                rankme: v[3],
                spread: v[4],
            });
        }
        Ok(rows)
    }
}

/// One point of a head's hyper-parameter sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    /// Hyper-parameters of the point, e.g. `{"lr": 0.01, "wd": 0.0005}`.
    #[serde(default)]
    pub params: BTreeMap<String, f64>,
    /// Top-1 (percent) on the held-out split of the training set; NaN for a point whose
    /// training diverged (written as JSON `null`, read back as NaN: such a record could not be
    /// read, so its evaluation ran again on every run and no report showed it).
    #[serde(deserialize_with = "null_as_nan")]
    pub heldout_top1: f64,
}

/// One point of a learning curve of the final probe (or fine-tuning).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Epoch of the probe training (1-based).
    pub epoch: u64,
    /// Test top-1 (percent) after that epoch.
    pub top1: f64,
}

/// Whether `dir` holds a readable `eval.json`: a finished evaluation. An empty or damaged one
/// is not (the stage runs again, instead of being skipped and left out of every report).
pub fn eval_done(dir: &Path) -> bool {
    read_eval(dir).is_some()
}

/// The readable `eval.json` of a stage folder, whose accuracies are percentages
/// ([`EvalRecord::percentages`]: one the report refuses is not a finished evaluation either;
/// it counted as done, and the point never came back to the report).
///
/// Nor is the record of another evaluation ([`EvalRecord::of_folder`]: an `eval.json` copied
/// into another protocol's folder counted as its result, and the stage never ran).
pub fn read_eval(dir: &Path) -> Option<EvalRecord> {
    let name = dir.file_name().and_then(|n| n.to_str());
    read_file(&dir.join(EVAL))
        .ok()
        .and_then(|b| serde_json::from_slice::<EvalRecord>(&b).ok())
        .filter(|r| r.percentages().is_ok() && name.is_none_or(|n| r.of_folder(n).is_ok()))
}

impl EvalRecord {
    /// Whether it is the record of the evaluation its folder `name` (`<stage>-<subject>-<hash>`)
    /// names: its stage begins the name and is its protocol's (`eval-<protocol>`), and the
    /// folder it was written in is this one (where it records one: a record copied from
    /// another subject's, experiment's or sweep point's evaluation of the same protocol was
    /// taken as this one's). A record of an earlier version, without its stage, is taken as it
    /// is.
    ///
    /// # Errors
    /// Which of these it is not.
    pub fn of_folder(&self, name: &str) -> std::result::Result<(), String> {
        if self.stage.is_empty() {
            return Ok(());
        }
        if !name.starts_with(&format!("{}-", self.stage)) {
            return Err(format!("its eval.json is the record of an `{}` evaluation, not of the stage its name says", self.stage));
        }
        if self.stage != format!("eval-{}", self.protocol) {
            return Err(format!("its eval.json records the protocol `{}`, not the one of its stage `{}`", self.protocol, self.stage));
        }
        if let Some(folder) = self.folder.as_deref().filter(|f| *f != name) {
            return Err(format!("its eval.json is the record of the stage folder {folder}, not of this one (copied from there?)"));
        }
        Ok(())
    }

    /// Whether its accuracies (the test top-1, the held-out sweep's, the curve's) are
    /// percentages; `Err` names the first that is not (a hand-edited 150, -5 or 1e308). A
    /// sweep point may be NaN (its training diverged).
    ///
    /// # Errors
    /// `"top1 -1 is not a percentage (0-100)"`, and the like.
    pub fn percentages(&self) -> std::result::Result<(), String> {
        let all = std::iter::once(("top1", self.top1))
            .chain(self.sweep.iter().map(|p| ("sweep heldout_top1", p.heldout_top1)).filter(|(_, v)| !v.is_nan()))
            .chain(self.curve.iter().map(|c| ("curve top1", c.top1)));
        for (what, v) in all {
            if !(0.0..=100.0).contains(&v) {
                return Err(format!("{what} {v} is not a percentage (0-100)"));
            }
        }
        Ok(())
    }
}

/// Whether a finished evaluation read a pretrained checkpoint other than `sha256` (the
/// pretraining's final checkpoint now): it evaluated weights that are gone.
pub fn eval_outdated(record: &EvalRecord, sha256: Option<&str>) -> bool {
    matches!((record.checkpoint_sha256.as_deref(), sha256), (Some(read), Some(now)) if read != now)
}

/// `eval.json`: the result of one evaluation stage. Unknown fields are ignored when read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// Experiment (the study's name in a sweep, so its points form one table).
    pub experiment: String,
    /// Stage name, e.g. `"eval-linear"`.
    #[serde(default)]
    pub stage: String,
    /// Protocol: `"linear"`, `"low-shot"`, `"knn"` or `"finetune"`.
    pub protocol: String,
    /// What was evaluated: the recipe (`"ijepa"`, `"mae"`), `"random-init"` or `"raw-pixels"`.
    pub model: String,
    /// Display name of the method, e.g. `"I-JEPA (ours)"`, `"random init"`, `"raw pixels"`.
    pub method: String,
    /// The recipe whose encoder was evaluated, pretrained or at its random initialisation
    /// (`"ijepa"`, `"mae"`, `"dino"`); null for the raw pixels, and absent from records written
    /// before it was recorded (reports then read it from `method`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<String>,
    /// Architecture, e.g. `"ViT-192x6/4"` (`<embed dim>x<depth>/<patch>`), or `"pixels"`.
    pub arch: String,
    /// Pretraining epochs of the encoder: the experiment's for its pretraining; for a file given
    /// to `ijepa eval`, what the file says (a training checkpoint taken at an epoch's end, an
    /// official checkpoint's `epoch`, a run's final weights'); null for baselines and files
    /// that do not say.
    #[serde(default)]
    pub pretrain_epochs: Option<u64>,
    /// Dataset name, e.g. `"Fashion-MNIST"`.
    #[serde(default)]
    pub data: String,
    /// Input resolution in pixels.
    #[serde(default)]
    pub resolution: Option<u64>,
    /// What the head reads: `"last"`, `"last4"`, `"pixels"`, or `"finetuned"`.
    #[serde(default)]
    pub features: String,
    /// The head: `"linear"`, `"bn-linear"`, `"logistic"`, `"knn"` or `"finetune"`.
    #[serde(default)]
    pub head: String,
    /// Fraction of the training labels used (low-shot), null for all.
    #[serde(default)]
    pub fraction: Option<f64>,
    /// The head's hyper-parameter sweep (held-out scores).
    #[serde(default, deserialize_with = "null_as_default")]
    pub sweep: Vec<SweepPoint>,
    /// The chosen hyper-parameters.
    #[serde(default, deserialize_with = "null_as_default")]
    pub chosen: BTreeMap<String, f64>,
    /// Test top-1 accuracy in percent.
    pub top1: f64,
    /// Number of labelled training examples the head saw.
    #[serde(default)]
    pub train_examples: u64,
    /// Number of test examples.
    #[serde(default)]
    pub test_examples: u64,
    /// The fingerprints of the training split (its distinct files) and the test split it read
    /// (`Dataset::fingerprint`: names, classes, for a file of arrays its contents): a run that
    /// skips the stage as done says when the data now gives others (the stage is keyed by the
    /// data's path as written, not by the folder's contents). Absent from records written
    /// before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_fingerprints: Option<[String; 2]>,
    /// The sweep point this run belongs to, e.g. `{"mask.targets.scale": "0.15-0.2"}`; empty
    /// for a plain run.
    #[serde(default, deserialize_with = "null_as_default")]
    pub varied: BTreeMap<String, String>,
    /// The pretraining folder the encoder came from (null for baselines and checkpoints).
    #[serde(default)]
    pub pretrain_dir: Option<String>,
    /// The checkpoint file evaluated: one given to `ijepa eval` by its absolute path (earlier
    /// versions wrote it as given, relative to the folder the command ran in); a pretraining's
    /// final weights as the runs folder was spelled.
    #[serde(default)]
    pub checkpoint: Option<String>,
    /// SHA-256 of the pretrained checkpoint file evaluated (absent for baselines and from
    /// records written before it): a pretraining that ran again since (`--force` from another
    /// file that shares it) holds other weights, and the evaluation is stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_sha256: Option<String>,
    /// The training step the checkpoint evaluated was written at, when it says (ours do; an
    /// official checkpoint or a state dict does not): evaluations of a run's `latest` weights
    /// taken at two moments differed in nothing else. Absent from records written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_step: Option<u64>,
    /// Test top-1 per epoch of the final probe, when recorded.
    #[serde(default, deserialize_with = "null_as_default")]
    pub curve: Vec<CurvePoint>,
    /// The protocol's own settings as it ran (probe `epochs`, `batch-size`, `decay-every`,
    /// `held-out`; the logistic probe's `folds`; fine-tuning's schedule), beside the
    /// hyper-parameters it chose (`chosen`). Absent from records written before it.
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, f64>,
    /// Wall-clock seconds of the evaluation.
    #[serde(default)]
    pub wall_s: f64,
    /// The precision the encoder's features were computed in (`fp32`, `bf16`); absent for the
    /// raw pixels and from records written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    /// The device the evaluation ran on (`cpu`, `cuda:0 (NVIDIA H100 ...)`); absent from
    /// records written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// On a CPU, the kernel of the dense layers' matrix products it ran on (`blas`, `onednn`:
    /// the manifest's `cpu_products`), which moves scores in the last bits; absent on a GPU and
    /// from records written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_products: Option<String>,
    /// The list files the evaluation read (`data.subset`, its `split-file`), by setting, with a
    /// digest of each one's bytes, as [`Manifest::inputs`]; absent when it read none.
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, String>,
    /// The name of the stage folder it was written in (`eval-knn-ijepa-0123456789ab`): a record
    /// copied into the folder of another evaluation of its protocol (another subject's, another
    /// experiment's, another sweep point's) is not that one's result ([`EvalRecord::of_folder`]).
    /// Absent from records written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<String>,
}

/// Reads `null` as NaN (serde_json writes a NaN as `null`).
fn null_as_nan<'de, D>(d: D) -> Result<f64, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Reads `null` as the type's default (an empty list or map).
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// How many of a run's `n` logged losses its final (and initial) loss averages: half of
/// them, between 1 and 10.
pub fn final_loss_window(n: usize) -> usize {
    (n / 2).clamp(1, 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What is not a regular file where a run folder holds one is an error, not a read that
    /// waits forever for a pipe's writer (`plan`, `run` and the report hung on a `mkfifo
    /// eval.json`); a link to a file is read through.
    #[test]
    fn a_temporary_name_reads_back_one_way() {
        use temporary::{parse, Temporary};
        let mine = temporary::name("f.bin");
        let t = parse(&mine).unwrap();
        assert_eq!((t.stem, t.host, t.pid), ("f.bin", temporary::host(), std::process::id()));
        assert!(!t.of_another_host() && !t.writer_gone(), "its own process lives");
        // dots and dashes in the file's name and the host's: host `b` is not `a.b`
        assert_eq!(parse(".f.a.bin@a.b-12.tmp"), Some(Temporary { stem: "f.a.bin", host: "a.b", pid: 12 }));
        assert_eq!(parse(".f@x.bin@node-1-12.tmp"), Some(Temporary { stem: "f@x.bin", host: "node-1", pid: 12 }));
        for not in [".f.bin.tmp", ".f.bin@h.tmp", ".f@h-x.tmp", ".f@h-+1.tmp", "f@h-1.tmp", ".@h-1.tmp", ".f@-1.tmp", ".f.bin@h-1"] {
            assert_eq!(parse(not), None, "{not}");
        }
        // an earlier version's name, `.NAME.HOST-PID.tmp`, read for the file it names: a dotted
        // host is told from the file's name by that name
        let host = temporary::host();
        let old = format!(".f.bin.{host}-4000000000.tmp");
        assert_eq!(parse(&old), None);
        assert_eq!(temporary::legacy_of(&old, "f.bin"), Some(Temporary { stem: "f.bin", host, pid: 4_000_000_000 }));
        assert!(temporary::legacy_of(&old, "f.bin").unwrap().writer_gone());
        assert_eq!(temporary::legacy_of(".f.bin.node.b-12.tmp", "f.bin").map(|t| t.host), Some("node.b"));
        assert_eq!(temporary::legacy_of(".f.bin.node.b-12.tmp", "f.bin.node"), Some(Temporary { stem: "f.bin.node", host: "b", pid: 12 }));
        for not in [".f.bin.h-x.tmp", ".f.bin.-1.tmp", ".g.bin.h-1.tmp", ".f.bin@h-1.tmp", ".f.binh-1.tmp"] {
            assert_eq!(temporary::legacy_of(not, "f.bin"), None, "{not}");
        }
        // a process of this machine that is gone (no such pid) left it; another machine's is not judged
        assert!(parse(&format!(".f@{}-4000000000.tmp", temporary::host())).unwrap().writer_gone());
        let other = parse(".f@elsewhere-4000000000.tmp").unwrap();
        assert!(other.of_another_host() && !other.writer_gone());
    }

    #[test]
    fn only_regular_files_are_read() {
        let dir = std::env::temp_dir().join(format!("ijepa-schema-regular-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("folder")).unwrap();
        std::fs::create_dir_all(dir.join("eval-knn-ijepa-0123456789ab")).unwrap();
        std::fs::write(dir.join("file"), "{}").unwrap();
        std::os::unix::fs::symlink(dir.join("file"), dir.join("link")).unwrap();
        let pipe = dir.join("eval-knn-ijepa-0123456789ab").join(EVAL);
        let made = std::process::Command::new("mkfifo").arg(&pipe).status().is_ok_and(|s| s.success());
        assert_eq!(read_text(&dir.join("link")).unwrap(), "{}");
        let e = read_file(&dir.join("folder")).unwrap_err();
        assert!(e.kind() == std::io::ErrorKind::InvalidInput && e.to_string() == "is a folder, not a file", "{e}");
        if made {
            let e = read_file(&pipe).unwrap_err();
            assert!(e.kind() == std::io::ErrorKind::InvalidInput && e.to_string().contains("a pipe"), "{e}");
            assert!(read_eval(pipe.parent().unwrap()).is_none());
        }
        assert_eq!(read_file(&dir.join("absent")).unwrap_err().kind(), std::io::ErrorKind::NotFound);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// One record per file: two files whose stems read alike once their other characters are
    /// `_` (or of one name in two folders) get records of their own.
    #[test]
    fn each_file_has_its_own_record() {
        let dir = Path::new("runs/s");
        let (a, b) = (PlannedStages::path(dir, Path::new("knn-α.kdl")), PlannedStages::path(dir, Path::new("knn-β.kdl")));
        assert_ne!(a, b);
        assert_ne!(PlannedStages::path(dir, Path::new("a/x.kdl")), PlannedStages::path(dir, Path::new("b/x.kdl")));
        assert_eq!(PlannedStages::path(dir, Path::new("a/x.kdl")), PlannedStages::path(dir, Path::new("a/x.kdl")));
        assert!(a.file_name().unwrap().to_str().unwrap().starts_with("planned-knn-_-"), "{a:?}");
        assert_eq!(PlannedStages::stage_of(Path::new("/r/runs/exp/pretrain-0123456789ab")), "exp/pretrain-0123456789ab");
        // a file of a long name (240 characters, which a file system holds): a name of at most
        // 122 bytes, its own
        let long = |c: &str| PlannedStages::path(dir, Path::new(&format!("{}{c}.kdl", "a".repeat(239))));
        let name = long("x").file_name().unwrap().to_str().unwrap().to_string();
        assert!(name.len() <= 122 && name.starts_with(&format!("planned-{}-", "a".repeat(100))), "{name}");
        assert_ne!(long("x"), long("y"));
        // a link to a file is the file (its run's record was kept apart, and shown an earlier
        // version of the file beside the current one)
        let d = std::env::temp_dir().join(format!("ijepa-schema-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("x.kdl"), "").unwrap();
        let _ = std::fs::remove_file(d.join("link.kdl"));
        std::os::unix::fs::symlink(d.join("x.kdl"), d.join("link.kdl")).unwrap();
        assert_eq!(PlannedStages::path(dir, &d.join("link.kdl")), PlannedStages::path(dir, &d.join("x.kdl")));
        let _ = std::fs::remove_dir_all(&d);
    }

    /// A record is its folder's result only where it is that stage's: one copied into another
    /// protocol's folder, or with its protocol edited, is not a finished evaluation there (it
    /// counted as done, and the stage never ran); one of an earlier version without its stage is.
    #[test]
    fn a_record_is_done_only_in_its_own_stages_folder() {
        let root = std::env::temp_dir().join(format!("ijepa-schema-eval-{}", std::process::id()));
        let knn = r#"{"experiment": "x", "stage": "eval-knn", "protocol": "knn", "model": "ijepa", "method": "I-JEPA (ours)", "arch": "a", "top1": 80.0}"#;
        let put = |folder: &str, text: &str| {
            let d = root.join(folder);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(EVAL), text).unwrap();
            d
        };
        assert!(read_eval(&put("eval-knn-ijepa-0123456789ab", knn)).is_some());
        assert!(read_eval(&put("eval-low-shot-ijepa-0123456789ab", &knn.replace("knn", "low-shot"))).is_some());
        assert!(read_eval(&put("eval-linear-ijepa-0123456789ab", knn)).is_none());
        assert!(read_eval(&put("eval-knn-random-init-0123456789ab", &knn.replace(r#""protocol": "knn""#, r#""protocol": "linear""#))).is_none());
        assert!(read_eval(&put("eval-linear-raw-pixels-0123456789ab", &knn.replace(r#""stage": "eval-knn", "#, ""))).is_some());
        let record: EvalRecord = serde_json::from_str(knn).unwrap();
        assert!(record.of_folder("eval-linear-ijepa-0123456789ab").unwrap_err().contains("the record of an `eval-knn` evaluation"));
        // one that records another folder: another subject's evaluation of the protocol (the
        // pretrained encoder's folder showed the random init's score), another experiment's or
        // sweep point's
        let written = knn.replace(r#""stage": "eval-knn", "#, r#""stage": "eval-knn", "folder": "eval-knn-ijepa-0123456789ab", "#);
        assert!(read_eval(&put("eval-knn-ijepa-0123456789ab", &written)).is_some());
        assert!(read_eval(&put("eval-knn-ijepa-ba9876543210", &written)).is_none());
        assert!(read_eval(&put("eval-knn-random-init-0123456789ab", &written)).is_none());
        let record: EvalRecord = serde_json::from_str(&written).unwrap();
        assert!(record.of_folder("eval-knn-ijepa-ba9876543210").unwrap_err().contains("the record of the stage folder eval-knn-ijepa-0123456789ab, not of this one"));
        let _ = std::fs::remove_dir_all(&root);
    }

    /// A run keeps what its latest monitored epoch warned of: a warning a later epoch no
    /// longer raises is gone.
    #[test]
    fn a_manifest_keeps_the_latest_epochs_warnings() {
        let mut m: Manifest = serde_json::from_str(r#"{"stage": "pretrain", "experiment": "x"}"#).unwrap();
        let stalled = "the target encoder is not learning: held-out kNN 40.1% against 40.0% at its initialisation".to_string();
        let collapsing = "the context encoder's features are collapsing (effective rank 1.99 < rank-floor 2): the loss can still fall".to_string();
        m.monitor_warnings(19, &[stalled.clone(), collapsing]);
        m.monitor_warnings(25, std::slice::from_ref(&stalled));
        assert_eq!(m.warnings, [format!("epoch 25: {stalled}")]);
        let back: Manifest = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back.warnings, m.warnings);
        m.monitor_warnings(40, &[]);
        assert!(m.warnings.is_empty());
        assert!(!serde_json::to_string(&m).unwrap().contains("warnings"));
    }

    /// A recipe's warnings while training are kept once each: a resumed run's attempt says
    /// its own steps' beside the earlier attempts'.
    #[test]
    fn a_manifest_keeps_each_attempts_training_warnings_once() {
        let mut m: Manifest = serde_json::from_str(r#"{"stage": "pretrain", "experiment": "x"}"#).unwrap();
        m.training_warning("masks: at steps 1-8 in 2 of the 8 images".into());
        m.training_warning("masks: at steps 9-24 in 1 of the 16 images".into());
        m.training_warning("masks: at steps 1-8 in 2 of the 8 images".into());
        assert_eq!(m.training_warnings, ["masks: at steps 1-8 in 2 of the 8 images", "masks: at steps 9-24 in 1 of the 16 images"]);
        let back: Manifest = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back.training_warnings, m.training_warnings);
    }

    /// A record names another stage where its hash does not begin with its folder's name; a
    /// damaged hash (a character of several bytes across its twelfth) is shown, not a panic.
    #[test]
    fn a_record_of_another_stage_is_told_by_its_folder_s_name() {
        let mut m: Manifest = serde_json::from_str(r#"{"stage":"pretrain","experiment":"q","hash":"0123456789ab0000"}"#).unwrap();
        assert_eq!(m.other_stage(Path::new("runs/q/pretrain-0123456789ab")), None);
        assert_eq!(m.other_stage(Path::new("runs/q/pretrain-ba9876543210")).as_deref(), Some("pretrain-0123456789ab"));
        m.hash = "a€€€€".into();
        assert_eq!(m.other_stage(Path::new("runs/q/pretrain-0123456789ab")).as_deref(), Some("pretrain-a€€€€"));
        // (an earlier version's record without a hash is the folder's)
        m.hash.clear();
        assert_eq!(m.other_stage(Path::new("runs/q/pretrain-0123456789ab")), None);
    }

    #[test]
    fn a_running_stage_whose_process_is_gone_shows_as_killed() {
        let text = lock_text(4242, "node-7", 1_795_000_000, "ijepa run x.kdl");
        assert_eq!(lock_holder(&text), Some((4242, "node-7".to_string())));
        assert_eq!(lock_holder("garbage"), None);
        assert_eq!(lock_holder("pid x on h, since unix time 1: c"), None);
        // (shown with how long ago it began; as it is where no time reads)
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(shown_lock(&format!("pid 7 on h, since unix time {}: ijepa run x.kdl", now - 300)), format!("pid 7 on h, since unix time {}, 5 min ago: ijepa run x.kdl", now - 300));
        // (a second may pass between the two readings of the clock)
        let seconds = shown_lock(&format!("pid 7 on h, since unix time {}: c", now - 5));
        assert!([5, 6].iter().any(|s| seconds == format!("pid 7 on h, since unix time {}, {s} s ago: c", now - 5)), "{seconds}");
        assert_eq!(shown_lock(&format!("pid 7 on h, since unix time {}: c", now - 36_000)), format!("pid 7 on h, since unix time {}, 10.0 h ago: c", now - 36_000));
        assert_eq!(shown_lock("a process whose details are not written yet"), "a process whose details are not written yet");
        assert_eq!(shown_lock("pid 7 on h: \u{1b}]0;TITLE\u{7}\u{1b}[2J"), "pid 7 on h: \\u{1b}]0;TITLE\\u{7}\\u{1b}[2J");
        assert_eq!(shown_lock(&format!("pid 7 on h, since unix time {}: c", now + 1000)), format!("pid 7 on h, since unix time {}: c", now + 1000));

        let dir = std::env::temp_dir().join(format!("ijepa-schema-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // no lock file (a folder of an older version): nothing can be told
        assert_eq!(lock_holder_alive(&dir), None);
        assert_eq!(shown_status(status::RUNNING, &dir), "running");
        // this process: alive
        std::fs::write(dir.join(LOCK), lock_text(std::process::id(), &host_name(), 0, "t")).unwrap();
        assert_eq!(lock_holder_alive(&dir), Some(true));
        assert_eq!(shown_status(status::RUNNING, &dir), "running");
        // a child that has exited and been reaped: gone
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        std::fs::write(dir.join(LOCK), lock_text(pid, &host_name(), 0, "t")).unwrap();
        assert_eq!(lock_holder_alive(&dir), Some(false));
        assert_eq!(shown_status(status::RUNNING, &dir), "killed");
        // only `running` is reinterpreted
        assert_eq!(shown_status(status::DONE, &dir), "done");
        assert_eq!(shown_status(status::INTERRUPTED, &dir), "interrupted");
        // another host: its processes cannot be seen from here
        std::fs::write(dir.join(LOCK), lock_text(pid, "another-host-than-this", 0, "t")).unwrap();
        assert_eq!(lock_holder_alive(&dir), None);
        assert_eq!(shown_status(status::RUNNING, &dir), "running");
        // a zombie (killed, its parent not waiting for it yet): gone
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        std::fs::write(dir.join(LOCK), lock_text(child.id(), &host_name(), 0, "t")).unwrap();
        assert_eq!(lock_holder_alive(&dir), Some(true));
        child.kill().unwrap();
        let stat = format!("/proc/{}/stat", child.id());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read_to_string(&stat).is_ok_and(|t| !t.contains(") Z ")) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(lock_holder_alive(&dir), Some(false));
        child.wait().unwrap();
        // a process id taken by a process that started after the lock was: not its holder
        let started = process_started(std::process::id()).expect("/proc says when this process started");
        std::fs::write(dir.join(LOCK), lock_text(std::process::id(), &host_name(), started.saturating_sub(120), "t")).unwrap();
        assert_eq!(lock_holder_alive(&dir), Some(false));
        std::fs::write(dir.join(LOCK), lock_text(std::process::id(), &host_name(), started, "t")).unwrap();
        assert_eq!(lock_holder_alive(&dir), Some(true));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The host's name is the kernel's (what `hostname` prints): nodes sharing one system
    /// image's `/etc/hostname` were one host.
    #[test]
    fn the_host_is_named_by_the_kernel() {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();
        if !kernel.is_empty() {
            assert_eq!(host_name(), kernel);
        }
    }

    #[test]
    fn old_and_partial_files_read_with_defaults() {
        let m: Manifest = serde_json::from_str(r#"{"stage":"pretrain","experiment":"q","status":"done","steps":5}"#).unwrap();
        assert!(m.is_done() && m.steps == 5 && m.checkpoints.is_empty() && m.finished.is_none());
        let e: EvalRecord = serde_json::from_str(
            r#"{"experiment":"q","protocol":"knn","model":"ijepa","method":"I-JEPA (ours)","arch":"ViT-192x6/4",
                "top1":71.5,"sweep":null,"chosen":null,"varied":null,"curve":null,"extra":1}"#,
        )
        .unwrap();
        assert_eq!((e.top1, e.sweep.len(), e.varied.len(), e.checkpoint.clone()), (71.5, 0, 0, None));
        // a record round-trips
        let back: EvalRecord = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
        // ... also with a diverged sweep point (NaN, written as null): it could not be read back
        let mut d = e.clone();
        d.sweep = vec![SweepPoint { params: BTreeMap::from([("lr".to_string(), 1.0)]), heldout_top1: f64::NAN }];
        let text = serde_json::to_string(&d).unwrap();
        assert!(text.contains("\"heldout_top1\":null"), "{text}");
        let back: EvalRecord = serde_json::from_str(&text).unwrap();
        assert!(back.sweep[0].heldout_top1.is_nan());
    }

    #[test]
    fn record_replaces_the_same_file() {
        let mut m: Manifest = serde_json::from_str(r#"{"stage":"pretrain","experiment":"q"}"#).unwrap();
        m.record(CheckpointRecord { file: "latest.safetensors".into(), step: 1, sha256: "a".into(), data_sha256: None });
        m.record(CheckpointRecord { file: "latest.safetensors".into(), step: 2, sha256: "b".into(), data_sha256: None });
        assert_eq!(m.checkpoints.len(), 1);
        assert_eq!(m.checkpoints[0].step, 2);
    }

    #[test]
    fn monitor_rows_read_by_header_name_and_bad_fields_are_named() {
        let text = format!("{MONITOR_HEADER}\n0,0,target,42.70,2.858,0.1526,1.39\n1812,1,context,60.5,16.4,0.63,1.3\n");
        let rows = MonitorRow::parse_csv(&text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[1].step, rows[1].epoch, rows[1].encoder.as_str(), rows[1].knn_top1), (1812, 1, "context", 60.5));
        // another column order and no `seconds` (an older file)
        let rows = MonitorRow::parse_csv("encoder,epoch,step,spread,rankme,knn_top1\npixels,0,0,0.71,328.7,78.8\n").unwrap();
        assert_eq!((rows[0].encoder.as_str(), rows[0].rankme, rows[0].knn_top1), ("pixels", 328.7, 78.8));
        let err = MonitorRow::parse_csv("step,epoch,encoder,knn_top1,rankme\n").unwrap_err();
        assert!(err.contains("`spread`"), "{err}");
        let err = MonitorRow::parse_csv(&format!("{MONITOR_HEADER}\n0,0,target,x,2.8,0.15,1\n")).unwrap_err();
        assert!(err.contains("line 2") && err.contains("knn_top1"), "{err}");
        // values the monitor cannot measure are named (they were drawn as measured), NaN is kept
        for (row, what) in [
            ("90,-1,target,50,2.8,0.15,1", "`-1` in column `epoch` is not a count"),
            ("90,1.9,target,50,2.8,0.15,1", "`1.9` in column `epoch`"),
            ("NaN,1,target,50,2.8,0.15,1", "column `step`"),
            ("90,1,target,250,2.8,0.15,1", "`250` in column `knn_top1` is not a percentage"),
            ("90,1,target,50,inf,0.15,1", "column `rankme`"),
            ("90,1,target,50,-2,0.15,1", "column `rankme`"),
            ("90,1,target,50,2.8,-0.5,1", "`-0.5` in column `spread` is not a feature spread"),
            ("90,1,target,50,2.8,1.5,1", "column `spread`"),
        ] {
            let err = MonitorRow::parse_csv(&format!("{MONITOR_HEADER}\n0,0,target,42.70,2.858,0.1526,1.39\n{row}\n")).unwrap_err();
            assert!(err.contains("line 3") && err.contains(what), "{row}: {err}");
        }
        let rows = MonitorRow::parse_csv(&format!("\u{feff}{MONITOR_HEADER}\n90,1,target,NaN,NaN,NaN,1\n")).unwrap();
        assert!(rows[0].knn_top1.is_nan() && rows[0].rankme.is_nan() && rows[0].spread.is_nan());
    }
}
