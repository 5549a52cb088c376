//! The engine's error type: every failure a user can cause (a file, a dataset, a config value
//! the engine cannot honour, a checkpoint) is a variant naming its cause; no panics.

use std::path::PathBuf;

/// Result alias of the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A dataset file is malformed or missing.
    #[error("dataset: {0}")]
    Data(String),
    /// The mask sampler cannot satisfy the configuration.
    #[error("mask sampler: {0}")]
    Mask(String),
    /// A configuration value the engine cannot honour.
    #[error("config: {0}")]
    Config(String),
    /// A command-line option that does not apply to its input (`ijepa masks --png` of a
    /// recipe whose mask has no blocks): the message names both.
    #[error("{0}")]
    Usage(String),
    /// The device asked for is not on this machine (no CUDA device, or fewer than the index).
    #[error("device: {0}")]
    Device(String),
    /// A checkpoint or fixture is malformed (missing/unexpected key, wrong shape, bad file).
    #[error("checkpoint {}: {}", printable(&.path.display().to_string()), printable(.message))]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },
    /// Training diverged or another runtime failure.
    #[error("training: {0}")]
    Train(String),
    /// Pretraining diverged: a non-finite loss, or non-finite weights about to be saved.
    #[error(
        "training: {what} at step {step}{}: training diverged; {}",
        epoch.map(|e| format!(" (epoch {e})")).unwrap_or_default(),
        last_good.as_ref().map(|p| format!("the last good checkpoint is {}", p.display())).unwrap_or_else(|| "no checkpoint was written before it".into())
    )]
    Diverged {
        /// What was not finite (`the loss is NaN`, `` `encoder.blocks.0.attn.qkv.weight` holds NaN/Inf ``).
        what: String,
        /// The global step (1-based) it happened at.
        step: u64,
        /// The epoch (1-based), when known.
        epoch: Option<u64>,
        /// The checkpoint to resume from or inspect (`None`: none was written yet).
        last_good: Option<PathBuf>,
    },
    /// A distributed rendezvous or collective failed (names the rank, the operation and the
    /// likely cause).
    #[error("distributed: {0}")]
    Dist(String),
    /// This rank stopped because another rank of its distributed run failed (the message
    /// names it; the cause is in that rank's output): its exit status is 3, so that a launcher
    /// names the rank that failed, not this one.
    #[error("{0}")]
    StoppedWithRank(String),
    /// A stage folder holding the record of another stage (a copy of that one's folder, or
    /// the folder renamed): its files are not this stage's to resume or overwrite.
    #[error(
        "{}: its manifest.json is the record of the stage {other}, not of this one (a copy or a renamed stage folder?): move the folder back to {other}, or aside, for this stage to run",
        dir.display()
    )]
    OtherStage {
        /// The stage folder.
        dir: PathBuf,
        /// The stage its record names (`pretrain-<12 hex digits>`).
        other: String,
    },
    /// Another process holds the stage folder (see [`crate::run_dir::StageLock`]).
    #[error("{dir} is in use by another process ({holder}); wait for it to finish or stop it, then run again")]
    Busy {
        /// The stage folder.
        dir: PathBuf,
        /// Who holds it, as its lock file says (pid, host, start time, command).
        holder: String,
    },
    /// The run was asked to stop (SIGINT / SIGTERM) and stopped cleanly.
    #[error("{}", interrupted_text(signal, *step, dir, *finished))]
    Interrupted {
        /// The signal's name.
        signal: String,
        /// The step the pretraining stopped after (None between stages).
        step: Option<u64>,
        /// The stage folder.
        dir: PathBuf,
        /// The signal came during the last stage, which still finished: nothing is left to
        /// resume (the exit status is still a stop's).
        finished: bool,
    },
    /// libtorch could not allocate memory (see [`crate::guard`]).
    #[error("out of memory during {during}: {detail}; lower `batch-size` or the model's size, or run where more memory is free")]
    OutOfMemory {
        /// What was running (e.g. "building the models", "pretraining step 12").
        during: String,
        /// libtorch's message (its first line).
        detail: String,
    },
    /// An evaluation cannot score what it was given (features that are not finite): not a
    /// training failure, which it read as ("training: ..." of an evaluation stage).
    #[error("evaluation: {0}")]
    Eval(String),
    /// The operator profiler could not start, stop or save, or a trace could not be read
    /// (see [`crate::profile`]).
    #[error("profiler: {0}")]
    Profiler(String),
    /// An error from libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        let source = match io_hint(&path, &source) {
            Some(hint) => std::io::Error::new(source.kind(), format!("{source}: {hint}")),
            None => source,
        };
        Error::Io { path, source }
    }
}

/// What an OS error on `path` means where the OS's words name no cause (`Not a directory`
/// for a file somewhere above it, `File exists` for a file or a broken link where a folder is
/// made).
fn io_hint(path: &std::path::Path, e: &std::io::Error) -> Option<String> {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::NotADirectory => {
            // the nearest existing ancestor that is not a folder
            let file = ijepa_schema::file_in_the_way(path.parent()?)?;
            Some(format!("{} is a file, not a folder", file.display()))
        }
        ErrorKind::AlreadyExists => match std::fs::symlink_metadata(path) {
            Ok(_) if broken_link(path) => {
                Some("it is a symbolic link to nothing (a broken link): remove it or make its target".into())
            }
            Ok(m) if !m.is_dir() => Some("it is a file where a folder is needed: move it aside".into()),
            // (a folder made with those above it: a runs folder that is a link to an unmounted
            // disk said only "File exists" of the stage folder)
            Err(_) => path.ancestors().skip(1).find(|a| broken_link(a)).map(|a| {
                format!("{} is a symbolic link to nothing (a broken link) where a folder is needed: remove it or make its target", a.display())
            }),
            _ => None,
        },
        ErrorKind::NotFound => {
            // a folder on the way that is not there (the OS says only "No such file")
            let missing = path.ancestors().skip(1).filter(|a| !a.as_os_str().is_empty() && !a.exists()).last()?;
            Some(format!("the folder {} does not exist", missing.display()))
        }
        // (`x.png/` where nothing is: the OS says "Is a directory" of a folder that is not there)
        ErrorKind::IsADirectory if !path.exists() => Some("a name ending with `/` names a folder: name a file".into()),
        ErrorKind::IsADirectory => Some("it is a folder where a file is needed: move it aside".into()),
        ErrorKind::PermissionDenied => Some("this user lacks the permission (check the owner and mode of the file and its folder)".into()),
        _ => None,
    }
}

/// Whether `path` is a symbolic link whose target is not there.
fn broken_link(path: &std::path::Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) && std::fs::metadata(path).is_err()
}

/// The message of [`Error::Interrupted`].
fn interrupted_text(signal: &str, step: Option<u64>, dir: &std::path::Path, finished: bool) -> String {
    match step {
        _ if finished => format!("interrupted by {signal} during the last stage, which finished: every stage is done, nothing is left to resume"),
        Some(s) => format!("interrupted by {signal} at step {s} (checkpoint saved in {}); run the same command again to resume", dir.display()),
        // (no checkpoint of this stage: an evaluation, or a pretraining before its first
        // one, starts over; "to resume" promised what was not kept; a stop between two stages
        // cuts none short, where "this one starts over" named none)
        None => format!("interrupted by {signal}; run the same command again to go on (finished stages are kept; a stage cut short starts over)"),
    }
}

/// A number as a message shows it: a tiny or a huge one in exponent form (`1e-300` and `1e300`
/// were three hundred digits).
pub fn shown(x: f64) -> String {
    if x != 0.0 && (x.abs() < 1e-4 || x.abs() >= 1e16) {
        format!("{x:e}")
    } else {
        x.to_string()
    }
}

pub use ijepa_schema::printable;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_divergence_names_the_step_the_epoch_and_the_last_good_checkpoint() {
        let e = Error::Diverged {
            what: "the loss is NaN".into(),
            step: 12,
            epoch: Some(2),
            last_good: Some(PathBuf::from("runs/x/pretrain-1/checkpoints/latest.safetensors")),
        };
        assert_eq!(
            e.to_string(),
            "training: the loss is NaN at step 12 (epoch 2): training diverged; the last good checkpoint is runs/x/pretrain-1/checkpoints/latest.safetensors"
        );
        let e = Error::Diverged { what: "`b` holds NaN/Inf".into(), step: 3, epoch: None, last_good: None };
        assert_eq!(e.to_string(), "training: `b` holds NaN/Inf at step 3: training diverged; no checkpoint was written before it");
    }

    #[test]
    fn a_checkpoint_s_names_reach_the_terminal_escaped() {
        let e = Error::Checkpoint { path: PathBuf::from("a\u{1b}[2J.pth"), message: "unexpected key `x\u{1b}[31mFAKE\nline2`".into() };
        assert_eq!(e.to_string(), "checkpoint a\\u{1b}[2J.pth: unexpected key `x\\u{1b}[31mFAKE\\nline2`");
        let e = Error::Checkpoint { path: PathBuf::from("b.pth"), message: "missing key `norm.weight`".into() };
        assert_eq!(e.to_string(), "checkpoint b.pth: missing key `norm.weight`");
    }

    #[test]
    fn an_interrupt_says_what_is_left_to_resume() {
        let at = |step, finished| Error::Interrupted { signal: "SIGINT".into(), step, dir: PathBuf::from("runs/x/pretrain-1"), finished }.to_string();
        assert_eq!(at(Some(7), false), "interrupted by SIGINT at step 7 (checkpoint saved in runs/x/pretrain-1); run the same command again to resume");
        assert_eq!(at(None, false), "interrupted by SIGINT; run the same command again to go on (finished stages are kept; a stage cut short starts over)");
        let last = at(None, true);
        assert!(last.contains("every stage is done") && !last.contains("again to resume"), "{last}");
    }
}
