//! How the engine's `tracing` events reach the terminal. The engine and the library never print:
//! they emit events, and a program that runs them decides what to show. [`init`] installs what
//! the `ijepa` binary shows:
//!
//! - `info` events (progress: the stages run, the epoch lines, the monitors, the probes) on
//!   **stdout**, as the bare message followed by any fields (`key=value`);
//! - `warn` and `error` events on **stderr**, as `warning: ...` / `error: ...`;
//! - `debug` and `trace` events (off unless `RUST_LOG` asks) on stderr, as
//!   `debug: TARGET: ...` / `trace: TARGET: ...`.
//!
//! By default every ijepa crate's `info` events show (`ijepa` is a prefix of `ijepa_engine`,
//! `ijepa_recipes`, ...), and only warnings from other crates. `RUST_LOG` with per-target
//! directives adds to that or overrides it for the targets it names
//! (`RUST_LOG=ijepa_engine::dist=debug` adds the process group's setup; `RUST_LOG=ijepa=warn`
//! leaves warnings only); a `RUST_LOG` with a bare level (`RUST_LOG=debug`, `RUST_LOG=warn`)
//! replaces the default altogether, as everywhere else.
//! A closed stdout or stderr (`ijepa run ... | head`) drops the lines and never stops a run.
//! In a distributed run (`RANK` and `WORLD_SIZE` set, as `ijepa launch`, torchrun and srun set
//! them), the warnings and errors of a rank other than 0 name it (`warning: rank 1: ...`): every
//! rank says what it saw, and the launcher's terminal interleaves them.

use std::fmt;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// What shows without `RUST_LOG`: the progress lines of ijepa's crates (the target prefix
/// `ijepa` covers `ijepa_engine`, `ijepa_recipes`, `ijepa::exec`, ...), and warnings.
pub const DEFAULT_FILTER: &str = "warn,ijepa=info";

/// The line format of [`init`]: `info` bare, `warning: `, `error: `, `debug: TARGET: `; with a
/// rank other than 0, `warning: rank N: ` and `error: rank N: `.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plain {
    /// The process's rank in a distributed run, when not 0.
    pub rank: Option<usize>,
}

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        match *meta.level() {
            Level::INFO => {}
            Level::WARN => write!(w, "warning: {}", self.prefix())?,
            Level::ERROR => write!(w, "error: {}", self.prefix())?,
            Level::DEBUG => write!(w, "debug: {}: ", meta.target())?,
            Level::TRACE => write!(w, "trace: {}: ", meta.target())?,
        }
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

impl Plain {
    /// `rank N: ` for a rank other than 0.
    fn prefix(&self) -> String {
        self.rank.map(|r| format!("rank {r}: ")).unwrap_or_default()
    }

    /// The format for this process: a rank other than 0 of a world of several (`RANK`,
    /// `WORLD_SIZE`) names itself.
    pub fn from_env(rank: Option<&str>, world: Option<&str>) -> Self {
        let parse = |v: Option<&str>| v.and_then(|v| v.trim().parse::<usize>().ok());
        match (parse(rank), parse(world)) {
            (Some(r), Some(w)) if w > 1 && r > 0 => Self { rank: Some(r) },
            _ => Self::default(),
        }
    }
}

/// The filter: [`DEFAULT_FILTER`] followed by the directives of `rust_log` (a later directive
/// for the same target wins), or `rust_log` alone when it has a bare level (`debug`, `warn`).
/// An unparsable `rust_log` is ignored, and said so in the returned warning.
pub fn filter(rust_log: Option<&str>) -> (EnvFilter, Option<String>) {
    let Some(env) = rust_log.map(str::trim).filter(|s| !s.is_empty()) else {
        return (EnvFilter::new(DEFAULT_FILTER), None);
    };
    let bare_level = env.split(',').any(|d| {
        let d = d.trim();
        !d.contains('=') && d.parse::<tracing_subscriber::filter::LevelFilter>().is_ok()
    });
    let text = if bare_level { env.to_string() } else { format!("{DEFAULT_FILTER},{env}") };
    match EnvFilter::try_new(&text) {
        Ok(f) => (f, None),
        Err(e) => (EnvFilter::new(DEFAULT_FILTER), Some(format!("RUST_LOG={env:?} is not a valid filter ({e}); using the default"))),
    }
}

/// A subscriber with the [`Plain`] format: `info` events to `out`, every other level to `err`.
pub fn subscriber<O, E>(filter: EnvFilter, out: O, err: E) -> impl Subscriber + Send + Sync
where
    O: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    E: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    subscriber_with(filter, out, err, Plain::default())
}

/// [`subscriber`] with the given line format (a rank's).
pub fn subscriber_with<O, E>(filter: EnvFilter, out: O, err: E, format: Plain) -> impl Subscriber + Send + Sync
where
    O: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    E: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // one filter, not with_max_level + with_min_level: nested, those pass an empty writer to
    // `or_else`, which then drops debug events instead of sending them to `err`
    let writer = out.with_filter(|m| *m.level() == Level::INFO).or_else(err);
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false) // no colours or italics in the fields: the lines go to files and pipes too
        .log_internal_errors(false) // a closed pipe drops the line without a complaint
        .event_format(format)
        .with_writer(writer)
        .finish()
}

/// Standard output for the log lines, whose failed writes (a full disk, not a closed pipe) are
/// kept for the command's end ([`ijepa_engine::stdout::failed`]): the subscriber drops them in
/// silence, and `ijepa run --dry-run > full-disk/plan.txt` exited 0 with nothing written.
struct NotedStdout;

/// The writer of one log line ([`NotedStdout`]).
pub struct NotedWriter(std::io::Stdout);

impl std::io::Write for NotedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf).inspect_err(ijepa_engine::stdout::note_error)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush().inspect_err(ijepa_engine::stdout::note_error)
    }
}

impl<'a> MakeWriter<'a> for NotedStdout {
    type Writer = NotedWriter;

    fn make_writer(&'a self) -> NotedWriter {
        NotedWriter(std::io::stdout())
    }
}

/// Installs the [`Plain`] subscriber on stdout/stderr for the whole process, filtered by
/// [`DEFAULT_FILTER`] and `RUST_LOG`. A second call (a subscriber is already set) does nothing.
pub fn init() {
    let rust_log = std::env::var("RUST_LOG").ok();
    let (filter, warning) = filter(rust_log.as_deref());
    let format = Plain::from_env(std::env::var("RANK").ok().as_deref(), std::env::var("WORLD_SIZE").ok().as_deref());
    if tracing::subscriber::set_global_default(subscriber_with(filter, NotedStdout, std::io::stderr, format)).is_ok() {
        if let Some(w) = warning {
            tracing::warn!("{w}");
        }
    }
}

/// Prints the line `ijepa` ends with on an error: `error: MESSAGE`, or `error: rank N: MESSAGE`
/// for a rank other than 0 of a distributed run (as [`Plain`] writes warnings), in one write:
/// the ranks of a launch share its stderr, and two ranks' errors were cut into each other
/// (`error: error: ...`) and did not say which rank failed.
pub fn print_error(message: &dyn std::fmt::Display) {
    use std::io::Write;
    let format = Plain::from_env(std::env::var("RANK").ok().as_deref(), std::env::var("WORLD_SIZE").ok().as_deref());
    let _ = std::io::stderr().lock().write_all(error_line(&message.to_string(), format).as_bytes());
}

/// The line [`print_error`] writes (a message that names its rank already, `rank 1 of 2:
/// ...`, is not prefixed again).
fn error_line(message: &str, format: Plain) -> String {
    let named = format.rank.is_some_and(|r| message.starts_with(&format!("rank {r} of ")));
    format!("error: {}{message}\n", if named { String::new() } else { format.prefix() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[test]
    fn an_error_line_names_its_rank_once() {
        let rank = |r: &str| Plain::from_env(Some(r), Some("2"));
        assert_eq!(error_line("no batch", rank("0")), "error: no batch\n");
        assert_eq!(error_line("no batch", rank("1")), "error: rank 1: no batch\n");
        assert_eq!(error_line("rank 1 of 2: a peer died", rank("1")), "error: rank 1 of 2: a peer died\n");
        assert_eq!(error_line("rank 0 of 2: gone", rank("1")), "error: rank 1: rank 0 of 2: gone\n");
    }

    /// A `MakeWriter` appending to a shared buffer.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl<'a> MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }
    impl Buf {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// Emits one event of each level under the subscriber built from `rust_log`.
    fn emit(rust_log: Option<&str>) -> (String, String) {
        let (out, err) = (Buf::default(), Buf::default());
        let (f, warning) = filter(rust_log);
        assert!(warning.is_none(), "{warning:?}");
        tracing::subscriber::with_default(subscriber(f, out.clone(), err.clone()), || {
            tracing::info!(target: "ijepa_engine::train", "epoch   1/2  loss 0.1000");
            tracing::info!(target: "ijepa_engine::stages", features = "last", heldout_top1 = 85.5, "probe on one feature set");
            tracing::info!(target: "ijepa::exec", "== run pretrain");
            tracing::warn!(target: "ijepa_engine::train", "epoch 1: the rank fell");
            tracing::error!(target: "ijepa", "the manifest could not be written");
            tracing::debug!(target: "ijepa_engine::dist", rank = 1, "process group ready");
            tracing::info!(target: "other_crate", "not ours");
            tracing::warn!(target: "other_crate", "theirs, a warning");
        });
        (out.text(), err.text())
    }

    #[test]
    fn info_goes_bare_to_stdout_and_the_rest_to_stderr() {
        let (out, err) = emit(None);
        assert_eq!(out, "epoch   1/2  loss 0.1000\nprobe on one feature set features=\"last\" heldout_top1=85.5\n== run pretrain\n");
        assert_eq!(
            err,
            "warning: epoch 1: the rank fell\nerror: the manifest could not be written\nwarning: theirs, a warning\n"
        );
    }

    /// A rank other than 0 of a distributed run names itself in its warnings and errors (each
    /// rank says a "said once a run" warning once: the launcher's terminal showed it twice,
    /// alike); its progress lines, and a single process's lines, stay as they are.
    #[test]
    fn a_rank_other_than_0_names_itself_in_its_warnings() {
        assert_eq!(Plain::from_env(Some("1"), Some("2")).rank, Some(1));
        for (rank, world) in [(Some("0"), Some("2")), (Some("1"), Some("1")), (None, Some("2")), (Some("x"), Some("2")), (Some("1"), None)] {
            assert_eq!(Plain::from_env(rank, world).rank, None, "{rank:?} of {world:?}");
        }
        let (out, err) = (Buf::default(), Buf::default());
        let format = Plain::from_env(Some("3"), Some("4"));
        tracing::subscriber::with_default(subscriber_with(filter(None).0, out.clone(), err.clone(), format), || {
            tracing::info!(target: "ijepa_engine::train", "epoch   1/2");
            tracing::warn!(target: "ijepa_engine::train", "masks: the sampler dropped constraints");
            tracing::error!(target: "ijepa", "the step failed");
        });
        assert_eq!(out.text(), "epoch   1/2\n");
        assert_eq!(err.text(), "warning: rank 3: masks: the sampler dropped constraints\nerror: rank 3: the step failed\n");
    }

    #[test]
    fn rust_log_adds_to_and_overrides_the_default() {
        // debug for one module: its debug line on stderr, the progress lines still on stdout
        let (out, err) = emit(Some("ijepa_engine::dist=debug"));
        assert!(out.starts_with("epoch   1/2"), "{out}");
        assert!(err.contains("debug: ijepa_engine::dist: process group ready rank=1\n"), "{err}");
        // one crate at warn: its progress lines go, the others' stay
        let (out, err) = emit(Some("ijepa_engine=warn"));
        assert_eq!(out, "== run pretrain\n", "the engine's info lines are silenced, the library's are not");
        assert!(err.contains("warning: epoch 1: the rank fell"), "{err}");
        // every ijepa crate at warn: warnings only
        let (out, err) = emit(Some("ijepa=warn"));
        assert_eq!(out, "");
        assert!(err.starts_with("warning: epoch 1: the rank fell\nerror: "), "{err}");
        // a bare level replaces the default: `warn` silences the progress, `debug` shows all
        assert_eq!(emit(Some("warn")).0, "");
        let (out, err) = emit(Some("debug"));
        assert!(out.contains("not ours") && err.contains("debug: ijepa_engine::dist: "), "{out}{err}");
        // a filter that does not parse falls back to the default and says so
        let (f, warning) = filter(Some("ijepa_engine=loud"));
        assert!(warning.unwrap().contains("RUST_LOG=\"ijepa_engine=loud\""));
        assert_eq!(f.to_string(), EnvFilter::new(DEFAULT_FILTER).to_string());
    }

    #[test]
    fn a_closed_writer_drops_lines_without_failing() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let err = Buf::default();
        let (f, _) = filter(None);
        tracing::subscriber::with_default(subscriber(f, || Closed, err.clone()), || {
            tracing::info!(target: "ijepa", "to a closed stdout");
            tracing::warn!(target: "ijepa", "still shown");
        });
        assert_eq!(err.text(), "warning: still shown\n", "no internal-error line, no panic");
    }
}
