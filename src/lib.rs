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
    let plan = ijepa_engine::plan::Plan::build(&study, runs_dir, reports_dir, 1);
    let opts = exec::ExecOptions { runs_dir: runs_dir.to_path_buf(), source, ..Default::default() };
    exec::run(&plan, &opts, None)
}
