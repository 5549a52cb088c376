//! The `ijepa` library: what the `ijepa` binary runs, for programs and tests that embed it
//! (for example with recipes of their own, registered with
//! [`ijepa_engine::recipe::register`]). [`exec`] runs a plan stage by stage; [`run_file`] is
//! `ijepa run FILE` in this process.

pub mod checkpoints;
pub mod estimate;
pub mod exec;
pub mod logging;
pub mod outputs;

use std::path::Path;

/// `ijepa run FILE --runs-dir RUNS --reports-dir REPORTS` in this process, on one process:
/// registers the built-in recipes (I-JEPA, MAE, DINO; idempotent), checks the file and its inputs,
/// resolves `precision "auto"`, plans and runs every stage.
///
/// # Errors
/// The file's diagnostics (rendered), or the first stage's error.
pub fn run_file(file: &Path, runs_dir: &Path, reports_dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    ijepa_recipes::register_builtins()?;
    let (mut study, source) = ijepa_dsl::load_study_checked(file).map_err(|d| d.render_plain())?;
    for p in &mut study.points {
        ijepa_engine::precision::resolve_experiment(&mut p.experiment)?;
    }
    // (the folders as `ijepa run` checks them)
    if let Some(file) = ijepa_schema::file_in_the_way(runs_dir) {
        return Err(format!("runs folder {}: {} is a file, not a folder", runs_dir.display(), file.display()).into());
    }
    if study.points.iter().any(|p| p.experiment.report) {
        ijepa_reports::check_out(runs_dir, reports_dir).map_err(|e| format!("reports folder {e}"))?;
    }
    let plan = ijepa_engine::plan::Plan::build(&study, runs_dir, reports_dir, 1);
    // (the plan recorded under the file's name, as the command records it: under none, every
    // file's plan was one file's, and a study run after another left the other out of reports)
    let source = exec::with_bases(&source, &study.files);
    let opts = exec::ExecOptions { runs_dir: runs_dir.to_path_buf(), source, file: file.to_path_buf(), ..Default::default() };
    exec::run(&plan, &opts, None)
}
