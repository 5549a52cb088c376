//! `ijepa-report RUNS_DIR [--out DIR]`: reads a run folder, writes the report (default
//! `reports-out/`), prints the Markdown to stdout and the written paths to stderr. Needs no libtorch.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: ijepa-report RUNS_DIR [--out DIR]";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut runs, mut out) = (None, PathBuf::from("reports-out"));
    while let Some(a) = args.next() {
        match a.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "--out" | "-o" => match args.next() {
                Some(d) => out = PathBuf::from(d),
                None => {
                    eprintln!("--out needs a folder\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            _ if runs.is_none() && !a.starts_with('-') => runs = Some(PathBuf::from(a)),
            _ => {
                eprintln!("unexpected argument `{a}`\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(runs) = runs else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = ijepa_reports::claim_out(&runs, &out).and_then(|()| ijepa_reports::load_registry(&runs)).and_then(|reg| {
        for e in &reg.unreadable {
            eprintln!("warning: left out of the report: {e}");
        }
        if let Some(w) = reg.no_runs_warning() {
            eprintln!("warning: {w}");
        }
        let files = ijepa_reports::write_report(&reg, &out)?;
        let md = std::fs::read_to_string(&files.markdown).map_err(|e| {
            ijepa_reports::ReportError::Io {
                path: files.markdown.clone(),
                source: e,
            }
        })?;
        Ok((md, files))
    });
    match result {
        Ok((md, files)) => {
            println!("{md}");
            for p in files.all() {
                eprintln!("wrote {}", p.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
