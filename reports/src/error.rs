//! The crate's error type: every variant that comes from a file names that file.

use std::path::PathBuf;

/// Errors from loading a run registry or writing a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A JSON file (manifest.json, eval.json, config.json) is malformed, or is JSON that is no
    /// valid record (a field missing, `null` or a string where a number is).
    #[error("{path}: {}: {source}", if source.is_data() { "not a valid record" } else { "invalid JSON" })]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's error (with line and column).
        source: serde_json::Error,
    },
    /// A CSV file (metrics.csv, the paper tables) is malformed.
    #[error("{path}: {message}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line number where known.
        message: String,
    },
    /// A record whose values cannot be what was measured (an accuracy outside 0-100).
    #[error("{}: {message}", .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An evaluation's folder without its record: it failed, was stopped, or runs now.
    #[error("{}: an evaluation without its eval.json (it failed, was stopped, or is running now)", .dir.display())]
    Unfinished {
        /// The evaluation's folder.
        dir: PathBuf,
    },
    /// A folder that holds a stage's files under a name no stage has (`<stage>-<12 hex
    /// digits>`): a copy or a renamed folder, whose rows would count twice.
    #[error("{}: {why}: left out (a copy or a renamed stage folder? its rows would count twice; move it out of the runs folder)", .dir.display())]
    NotAStage {
        /// The folder.
        dir: PathBuf,
        /// What does not match.
        why: String,
    },
    /// A required file of a run folder is missing.
    #[error("{path}: missing (required for a finished {what})")]
    Missing {
        /// The file that should exist.
        path: PathBuf,
        /// What kind of run needed it.
        what: &'static str,
    },
    /// The report's folder names a file (`ijepa-report --out FILE`; it said "FILE/report-stage.json:
    /// Not a directory", `ijepa report` this).
    #[error("{}", not_a_folder(.out, .path))]
    NotAFolder {
        /// The folder asked for.
        out: PathBuf,
        /// The file: that folder, or one above it.
        path: PathBuf,
    },
    /// A figure could not be drawn or encoded.
    #[error("{path}: {message}")]
    Plot {
        /// The figure's file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A DataFrame operation failed (a bug in this crate if it ever happens).
    #[error("table: {0}")]
    Polars(#[from] polars::prelude::PolarsError),
}

/// `Result` with [`ReportError`].
pub type Result<T> = std::result::Result<T, ReportError>;

/// `out: it is a file ...`, or `out: FILE above it is a file ...`.
fn not_a_folder(out: &std::path::Path, file: &std::path::Path) -> String {
    if out == file {
        format!("{}: it is a file where a folder is needed: move it aside", out.display())
    } else {
        format!("{}: {} is a file where a folder is needed: move it aside", out.display(), file.display())
    }
}

impl ReportError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
