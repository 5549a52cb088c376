//! `ijepa-report [RUNS_DIR] [--out DIR]`: `ijepa report` without libtorch: reads a runs folder
//! (default `runs`), writes the report (default `reports-out/`) and says so in one line on
//! stdout, warnings on stderr. Unlike `ijepa report` it does not take the report folder's
//! lock: do not point it at a folder a running study's report stage writes.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

/// `println!` that never panics: a closed stdout (`ijepa-report | true`) does not stop the
/// binary after the report is written (as `ijepa report`'s); another failed write (a full
/// disk) is kept for the end, where it is an error ([`main`]), as `ijepa report`'s is.
macro_rules! println {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        ijepa_schema::stdout::note(writeln!(std::io::stdout(), $($t)*));
    }};
}

/// `eprintln!` that never panics on a closed stderr (see `println!`).
macro_rules! eprintln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

const USAGE: &str = "usage: ijepa-report [RUNS_DIR] [--out DIR]

Write paper-style tables and plots (Markdown, CSV, self-contained HTML with inline SVG figures,
SVG and PNG files) from a runs folder: `ijepa report` without libtorch. Each experiment file is
shown as its last `ijepa run` planned it; an earlier version's stages are listed as left out.

Arguments:
  [RUNS_DIR]      Root folder of the run registry [default: runs]

Options:
  --out DIR       Output folder (not the runs folder nor anything inside it, nor another
                  runs folder or its experiment folders) [default: reports-out]
  -h, --help      Print help
  -V, --version   Print version

A RUNS_DIR that starts with `-` follows `--`, after the options (`ijepa-report --out DIR -- -runs`).

Unlike `ijepa report`, it does not take the output folder's lock: do not point it at the folder
a running study's report stage writes.";

/// The folder of `--out=DIR`, whatever its encoding (`--out=` followed by a name that is not
/// UTF-8 was an unexpected argument).
fn out_value(arg: &std::ffi::OsStr) -> Option<OsString> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        arg.as_bytes().strip_prefix(b"--out=").map(|d| std::ffi::OsStr::from_bytes(d).to_os_string())
    }
    #[cfg(not(unix))]
    {
        arg.to_str().and_then(|s| s.strip_prefix("--out=")).map(OsString::from)
    }
}

fn main() -> ExitCode {
    let code = run();
    // (what was printed, lost: `--help > full-disk/x` exited 0; `failed` flushes what is left)
    match ijepa_schema::stdout::failed() {
        Some(why) => {
            eprintln!("error: writing the standard output: {why}: what ijepa-report printed there is lost or incomplete");
            ExitCode::FAILURE
        }
        None => code,
    }
}

fn run() -> ExitCode {
    // (args_os: a folder named in another encoding than UTF-8 is a folder; `args` panicked)
    let mut args = std::env::args_os().skip(1);
    let (mut runs, mut out, mut options) = (None, None, true);
    // (a usage error says so first, as `ijepa`'s do, then how the command is used)
    let usage = |why: String| {
        eprintln!("error: {why}\n\n{USAGE}");
        ExitCode::from(2)
    };
    while let Some(a) = args.next() {
        // (`--out=DIR` too; not after `--`, where it is a runs folder's name)
        let out_joined = if options { out_value(&a) } else { None };
        match a.to_str().unwrap_or_default() {
            // (after `--`, a folder whose name starts with `-`, as `ijepa report -- -runs`)
            "--" if options => options = false,
            "-h" | "--help" if options => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "-V" | "--version" if options => {
                println!("ijepa-report {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            // (a second `--out` replaced the first without a word, as `ijepa report` refuses)
            "--out" if options && out.is_some() => return usage("--out given twice: one report folder".into()),
            // (an empty one wrote the report into the working folder, past the check that keeps
            // it out of the runs folder, as `ijepa report --out ""` refuses it)
            "--out" if options => match args.next().filter(|d| !d.is_empty()) {
                Some(d) => out = Some(PathBuf::from(d)),
                None => return usage("--out needs a folder (a non-empty path)".into()),
            },
            // (`--out=DIR` as `--out DIR`, as `ijepa report` takes it)
            _ if out_joined.is_some() => match out_joined.filter(|d| !d.is_empty()) {
                _ if out.is_some() => return usage("--out given twice: one report folder".into()),
                Some(d) => out = Some(PathBuf::from(d)),
                None => return usage("--out needs a folder (a non-empty path)".into()),
            },
            // (the name itself: one that is not UTF-8 reads as "" here)
            _ if a.is_empty() => return usage("the runs folder is an empty path".into()),
            _ if runs.is_none() && !(options && a.to_string_lossy().starts_with('-')) => runs = Some(PathBuf::from(a)),
            _ => return usage(format!("unexpected argument `{}`", a.to_string_lossy())),
        }
    }
    let runs = runs.unwrap_or_else(|| PathBuf::from("runs"));
    let out = out.unwrap_or_else(|| PathBuf::from(ijepa_reports::DEFAULT_OUT));
    let result = ijepa_reports::claim_out(&runs, &out).and_then(|()| ijepa_reports::load_registry(&runs)).and_then(|reg| {
        for e in &reg.unreadable {
            eprintln!("warning: left out of the report: {e}");
        }
        if let Some(w) = reg.no_runs_warning() {
            eprintln!("warning: {w}");
        }
        ijepa_reports::write_report(&reg, &out)
    });
    match result {
        Ok(files) => {
            println!("{}", files.summary(&runs, &out));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
