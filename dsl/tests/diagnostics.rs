//! Snapshot tests of rendered diagnostics: every `tests/cases/<case>.kdl` must fail to load
//! (as a study: sweeps and `extends` included), and `Diagnostics::render_plain()` must equal
//! `tests/snapshots/<case>.txt`. Base files that cases extend live in `tests/cases/bases/`
//! (not cases themselves). Cases are loaded by their path relative to the crate
//! (`tests/cases/x.kdl`, cargo runs tests there), so snapshots hold no machine paths.
//! Regenerate the snapshots with `UPDATE_SNAPSHOTS=1 cargo test -p ijepa-dsl --test diagnostics`
//! and review the diff.

use std::fs;
use std::path::{Path, PathBuf};

fn dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(sub)
}

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = fs::read_dir(dir("cases"))
        .expect("tests/cases exists")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "kdl"))
        .collect();
    cases.sort();
    cases
}

#[test]
fn snapshots() {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v != "0");
    let cases = cases();
    assert!(cases.len() >= 10, "expected at least 10 cases, found {}", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let stem = case.file_stem().and_then(|s| s.to_str()).expect("utf-8 case name");
        let rel = Path::new("tests").join("cases").join(format!("{stem}.kdl"));
        let rendered = match ijepa_dsl::load_study(&rel) {
            Ok(_) => {
                failures.push(format!("{stem}: parsed without errors, expected diagnostics"));
                continue;
            }
            Err(d) => d.render_plain(),
        };
        let snap = dir("snapshots").join(format!("{stem}.txt"));
        if update {
            fs::write(&snap, &rendered).expect("write snapshot");
            continue;
        }
        match fs::read_to_string(&snap) {
            Ok(expected) if expected == rendered => {}
            Ok(expected) => failures.push(format!(
                "{stem}: rendering differs from {}\n--- expected\n{expected}\n--- actual\n{rendered}",
                snap.display()
            )),
            Err(_) => failures.push(format!(
                "{stem}: no snapshot {} (run with UPDATE_SNAPSHOTS=1)\n--- actual\n{rendered}",
                snap.display()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_snapshot_has_a_case() {
    let cases: Vec<String> =
        cases().iter().filter_map(|c| c.file_stem()?.to_str().map(String::from)).collect();
    for snap in fs::read_dir(dir("snapshots")).expect("tests/snapshots exists") {
        let snap = snap.expect("readable dir entry").path();
        let stem = snap.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        assert!(cases.contains(&stem), "stale snapshot {} without a case", snap.display());
    }
}

#[test]
fn several_errors_are_all_reported() {
    let src = fs::read_to_string(dir("cases").join("several_errors.kdl")).expect("case");
    let d = ijepa_dsl::parse_str("several_errors.kdl", &src).expect_err("invalid");
    assert_eq!(
        d.render_plain(),
        ijepa_dsl::load_study(Path::new("tests/cases/several_errors.kdl"))
            .expect_err("invalid")
            .render_plain()
            .replace("tests/cases/", "")
    );
    assert!(d.len() >= 8, "expected every error at once, got {:?}", d.codes());
    // Sorted by position in the file.
    let offsets: Vec<usize> = d.errors().iter().map(|e| e.offset()).collect();
    let mut sorted = offsets.clone();
    sorted.sort();
    assert_eq!(offsets, sorted);
}

#[test]
fn load_reads_quickstart() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments/quickstart.kdl");
    let (exp, src) =
        ijepa_dsl::load(&path).map_err(|d| d.render_plain()).expect("quickstart is valid");
    assert_eq!(exp.name, "quickstart");
    assert!(src.contains("experiment \"quickstart\""));
}

#[test]
fn load_of_a_missing_file_is_a_diagnostic() {
    let d = ijepa_dsl::load(Path::new("/nonexistent/dir/x.kdl")).expect_err("no such file");
    assert_eq!(d.codes(), ["ijepa::dsl::io"]);
    assert!(d.render_plain().contains("cannot read `/nonexistent/dir/x.kdl`"));
}
