//! The stage graph and its executor end to end: `ijepa plan` (tree and DOT) of a sweep that
//! extends a base file, `ijepa run` with `--dry-run`, `--only`, `--force`, skipping of finished
//! stages, and resuming a stage killed mid-run; `ijepa slurm` and `ijepa import-yaml`.

mod common;
use common::{ijepa, scratch, text};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BASE: &str = r#"experiment "tiny" {
    seed 1
    data "fashion-mnist" { crop-size 32; batch-size 32; workers 1; limit 128 }
    encoder width=32 depth=2 heads=2 patch=4
    predictor depth=1 width=16 heads=2
    mask "multi-block" { min-keep 3 }
    epochs EPOCHS
    precision "fp32"
    device "cpu"
    eval "knn" { baselines "raw-pixels" }
    report
}
"#;

const SWEEP: &str = r#"experiment "tiny-sweep" {
    extends "base.kdl"
}
sweep "grid" {
    vary "mask.targets.scale" {
        - 0.1 0.2
        - 0.15 0.2
    }
    seeds 1 2
}
"#;

/// A scratch folder with base.kdl (`epochs` epochs) and sweep.kdl extending it.
fn study(name: &str, epochs: usize) -> PathBuf {
    let d = scratch(name);
    std::fs::write(d.join("base.kdl"), BASE.replace("EPOCHS", &epochs.to_string())).unwrap();
    std::fs::write(d.join("sweep.kdl"), SWEEP).unwrap();
    d
}

fn run(d: &Path, extra: &[&str]) -> (bool, String) {
    run_file(d, "sweep.kdl", extra)
}

/// `ijepa run d/FILE` (with `extra` arguments) into `d/runs`, reports in `d/reports`.
fn run_file(d: &Path, file: &str, extra: &[&str]) -> (bool, String) {
    let (file, runs, reports) = (d.join(file), d.join("runs"), d.join("reports"));
    let mut args = vec!["run", file.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap(), "--reports-dir", reports.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = ijepa(&args);
    (o.status.success(), text(&o))
}

fn pretrain_dirs(runs: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(runs).into_iter().flatten().flatten() {
        for s in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
            if s.file_name().to_string_lossy().starts_with("pretrain-") {
                out.push(s.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn plan_prints_the_sweep_as_a_tree_and_as_dot() {
    let d = study("plan-tree", 1);
    let f = d.join("sweep.kdl");
    let o = ijepa(&["plan", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    // 2 scales x 2 seeds; kNN on each checkpoint; raw pixels once per seed (they do not
    // depend on the mask); one report after all 6 evaluations
    assert!(t.contains("tiny-sweep — 4 points, 4 pretrainings, 6 evaluations, 1 report"), "{t}");
    for point in ["targets-scale-0.1-0.2_seed-1", "targets-scale-0.1-0.2_seed-2", "targets-scale-0.15-0.2_seed-1", "targets-scale-0.15-0.2_seed-2"] {
        assert!(t.contains(&format!("pretrain/{point}  [")), "{point}: {t}");
        assert!(t.contains(&format!("eval-knn-ijepa/{point}  [")), "{point}: {t}");
    }
    assert_eq!(t.matches("eval-knn-raw-pixels").count(), 4, "two stages, each with its folder: {t}");
    assert!(t.contains("after all 6 evaluations"), "{t}");
    assert_eq!(t.matches("to run").count(), 11, "{t}");
    // a stage another process is running says so (here this test holds its lock)
    let line = t.lines().find(|l| l.contains("pretrain/targets-scale-0.1-0.2_seed-1  [")).unwrap();
    let dir = line.split_whitespace().find(|w| w.contains("pretrain-")).unwrap();
    let held = ijepa_engine::run_dir::StageLock::acquire(Path::new(dir)).unwrap();
    let o = ijepa(&["plan", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(t.matches(&format!("(running now: pid {} on", std::process::id())).count(), 1, "{t}");
    // ... and so does the DOT drawing (it did not)
    let o = ijepa(&["plan", "--dot", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    let dot = text(&o);
    assert_eq!(dot.matches(&format!("running now: pid {} on", std::process::id())).count(), 1, "{dot}");
    assert_eq!(dot.matches("penwidth=3").count(), 1, "{dot}");
    // ... and `run --dry-run` says the real run would refuse it (it said "run" or "resume"
    // beside "running now")
    let o = ijepa(&["run", "--dry-run", "--force", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    let t = text(&o);
    let line = t.lines().find(|l| l.contains("running now")).unwrap_or_default();
    assert!(line.starts_with("refused (in use)") || line.contains("refused (in use) "), "{t}");
    // ... and fails, as it does for the other refusals (it exited 0)
    assert!(!o.status.success() && t.contains("the run would be refused (1 reason(s), said above)"), "{t}");
    // a run refused so (every stage's folder held here) records no plan of its own: it
    // recorded stages it never ran, and the running one's results read as an earlier version's
    let dirs: Vec<&str> = t.split_whitespace().filter(|w| w.contains("/pretrain-") || w.contains("/eval-")).collect();
    let held_all: Vec<_> = dirs.iter().filter(|d| **d != dir).map(|d| ijepa_engine::run_dir::StageLock::acquire(Path::new(d)).unwrap()).collect();
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("in use by another process"), "{}", text(&o));
    let records = std::fs::read_dir(d.join("runs/tiny-sweep")).map(|r| r.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("planned-")).count()).unwrap_or(0);
    assert_eq!(records, 0, "{}", text(&o));
    drop(held_all);
    drop(held);

    let o = ijepa(&["plan", "--dot", f.to_str().unwrap()]);
    // (the graph on stdout; the file's warnings, a 40-epoch warm-up in a 1-epoch run, on stderr)
    let dot = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success() && dot.starts_with("digraph plan {") && dot.trim_end().ends_with('}'), "{dot}");
    assert_eq!(dot.matches(" -> ").count(), 4 + 6, "4 pretrain->eval and 6 eval->report edges: {dot}");
    assert_eq!(dot.matches("[label=").count(), 11, "{dot}");
}

/// A sweep over the encoder: the pixels, which read no encoder, are one stage for every point
/// (`eval-knn-raw-pixels`, shown under `every point` in the report); they were filed under the
/// first point's width (`eval-knn-raw-pixels/encoder-width-16`), the report's sweep table
/// showed them as that width's alone and its figure drew no level of them.
#[test]
fn the_pixels_of_a_sweep_over_the_encoder_are_every_points() {
    let d = study("plan-pixels-encoder", 1);
    let f = d.join("enc.kdl");
    std::fs::write(&f, "experiment \"tiny-enc\" {\n    extends \"base.kdl\"\n}\nsweep \"grid\" {\n    vary \"encoder.width\" 16 32\n}\n").unwrap();
    let o = ijepa(&["plan", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("eval-knn-raw-pixels  [") && !t.contains("eval-knn-raw-pixels/"), "{t}");
    assert!(t.contains("eval-knn-ijepa/encoder-width-16  [") && t.contains("eval-knn-ijepa/encoder-width-32  ["), "{t}");
}

/// A pretraining of one study in the folder another would write into: a plain experiment
/// named like a sweep point of another file, or a sweep whose point is named like an
/// experiment that ran on its own. Refused before anything runs, naming the folder and the
/// other experiment (the two shared the folder, and each one's report left out the other's).
#[test]
fn a_folder_of_another_study_is_refused() {
    let d = study("plan-shared", 1);
    let runs = d.join("runs");
    let manifest = |folder: &str, study: &str| {
        let m = d.join("runs").join(folder).join("pretrain-0123456789ab");
        std::fs::create_dir_all(&m).unwrap();
        let json = serde_json::json!({"stage": "pretrain", "experiment": folder, "hash": "0123456789ab0000", "status": "done",
            "started": 1, "finished": 2, "ijepa_version": "0.1.0", "host": "h", "world_size": 1, "device": "cpu",
            "precision": "fp32", "steps": 4, "resumed_at": [], "checkpoints": [], "study": study});
        std::fs::write(m.join("manifest.json"), json.to_string()).unwrap();
    };
    // the sweep's point folder holds a pretraining of a plain experiment of that name
    manifest("tiny-sweep-targets-scale-0.1-0.2_seed-1", "tiny-sweep-targets-scale-0.1-0.2_seed-1");
    // (the plan is shown, with the refusal the run will meet)
    let f = d.join("sweep.kdl");
    let o = ijepa(&["plan", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    assert!(o.status.success() && text(&o).contains("`ijepa run` of this file is refused:") && text(&o).contains("would share the folder"), "{}", text(&o));
    let (ok, t) = run(&d, &["--dry-run"]);
    assert!(!ok, "{t}");
    assert!(t.contains("tiny-sweep-targets-scale-0.1-0.2_seed-1 holds a pretraining of the experiment \"tiny-sweep-targets-scale-0.1-0.2_seed-1\" (pretrain-0123456789ab)"), "{t}");
    assert!(t.contains("its sweep point \"targets-scale-0.1-0.2_seed-1\" of \"tiny-sweep\""), "{t}");
    // a plain experiment whose folder holds a pretraining another study ran there
    manifest("tiny", "tiny-sweep");
    let base = d.join("base.kdl");
    let o = ijepa(&["run", base.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap(), "--dry-run"]);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("holds a pretraining of the experiment \"tiny-sweep\"") && t.contains("its stages of \"tiny\""), "{t}");
    // a folder of the experiment's own runs
    manifest("tiny", "tiny");
    let o = ijepa(&["run", base.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap(), "--dry-run"]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn run_skips_finished_stages_and_honours_only_force_and_dry_run() {
    let d = study("plan-run", 1);
    let runs = d.join("runs");

    let (ok, t) = run(&d, &["--dry-run"]);
    assert!(ok, "{t}");
    assert_eq!(t.matches("\nrun ").count() + usize::from(t.starts_with("run ")), 11, "{t}");
    assert!(!runs.exists(), "--dry-run writes nothing");

    // one stage alone
    let (ok, t) = run(&d, &["--only", "pretrain/targets-scale-0.15-0.2_seed-2"]);
    assert!(ok, "{t}");
    assert_eq!(pretrain_dirs(&runs).len(), 1, "{t}");
    assert!(t.contains("1 stage(s) run, 0 skipped"), "{t}");

    // an evaluation whose pretraining has not run cannot run alone
    let (ok, t) = run(&d, &["--only", "eval-knn-ijepa/targets-scale-0.1-0.2_seed-1"]);
    assert!(!ok && t.contains("needs pretrain/targets-scale-0.1-0.2_seed-1 first"), "{t}");
    // ... and leaves no folder behind (one holding a lock alone was listed by every later
    // report as a stage that failed or was stopped)
    let evals: Vec<_> = std::fs::read_dir(&runs)
        .unwrap()
        .flatten()
        .flat_map(|e| std::fs::read_dir(e.path()).into_iter().flatten().flatten())
        .filter(|e| e.file_name().to_string_lossy().starts_with("eval-"))
        .map(|e| e.path())
        .collect();
    assert!(evals.is_empty(), "a refused stage left {evals:?}");
    // ... refused before anything runs, also beside a stage that could (which ran first)
    let (ok, t) = run(&d, &["--only", "pretrain/targets-scale-0.15-0.2_seed-1", "--only", "eval-knn-ijepa/targets-scale-0.1-0.2_seed-1"]);
    assert!(!ok && t.contains("needs pretrain/targets-scale-0.1-0.2_seed-1 first"), "{t}");
    assert_eq!(pretrain_dirs(&runs).len(), 1, "nothing trained before the refusal: {t}");
    let (ok, t) = run(&d, &["--only", "no-such-stage"]);
    assert!(!ok && t.contains("selects no stage"), "{t}");

    // everything: the finished pretraining is skipped
    let (ok, t) = run(&d, &[]);
    assert!(ok, "{t}");
    assert!(t.contains("10 stage(s) run, 1 skipped"), "{t}");
    assert_eq!(pretrain_dirs(&runs).len(), 4);
    assert!(d.join("reports").join("report.md").is_file());
    let report = std::fs::read_to_string(d.join("reports").join("report.md")).unwrap();
    assert!(report.contains("Sweep `tiny-sweep`"), "the report has the sweep's ablation table: {report}");

    // again: nothing to do, no training
    let t0 = Instant::now();
    let (ok, t) = run(&d, &[]);
    assert!(ok, "{t}");
    assert!(t.contains("0 stage(s) run, 11 skipped"), "{t}");
    assert!(!t.contains("pretraining "), "{t}");
    eprintln!("second run: {:.2} s", t0.elapsed().as_secs_f64());

    // a report missing one of its files is written again (it stayed "done" without it)
    std::fs::remove_file(d.join("reports").join("report.md")).unwrap();
    let (ok, t) = run(&d, &[]);
    assert!(ok && t.contains("1 stage(s) run, 10 skipped"), "{t}");
    assert!(d.join("reports").join("report.md").is_file(), "{t}");

    // an emptied eval.json is not a result: the evaluation runs again (it was skipped and
    // left out of every report), the broken file kept beside it; the report, which read the
    // empty file, is written again
    let eval_dir = std::fs::read_dir(runs.join("tiny-sweep-targets-scale-0.15-0.2_seed-2"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("eval-knn-ijepa-"))
        .expect("the point's kNN evaluation");
    std::fs::write(eval_dir.join("eval.json"), "").unwrap();
    let (ok, t) = run(&d, &[]);
    assert!(ok, "{t}");
    assert!(t.contains("is not a readable result (damaged, an accuracy outside 0-100, or the record of another stage): evaluating again") && t.contains("2 stage(s) run, 9 skipped") && t.contains("== run report"), "{t}");
    assert!(eval_dir.join("eval.json.unreadable").is_file() && ijepa_schema::eval_done(&eval_dir));
    // ... nor is one whose accuracy is no percentage (a hand edit the report refuses: it was
    // counted done, and the point never came back to the report)
    let f = eval_dir.join("eval.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
    v["top1"] = serde_json::json!(-1.0);
    std::fs::write(&f, v.to_string()).unwrap();
    assert!(!ijepa_schema::eval_done(&eval_dir));
    let (ok, t) = run(&d, &[]);
    assert!(ok && t.contains("is not a readable result") && t.contains("2 stage(s) run, 9 skipped"), "{t}");
    assert!(ijepa_schema::eval_done(&eval_dir));
    // ... nor is another evaluation's record of the protocol copied in (the pixels', whose
    // score the pretrained encoder's row showed): each records its folder
    let pixels = std::fs::read_dir(runs.join("tiny-sweep"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("eval-knn-raw-pixels-"))
        .expect("the study's raw-pixels kNN evaluation");
    std::fs::copy(pixels.join("eval.json"), eval_dir.join("eval.json")).unwrap();
    assert!(!ijepa_schema::eval_done(&eval_dir));
    let (ok, t) = run(&d, &[]);
    assert!(ok && t.contains("is not a readable result") && t.contains("2 stage(s) run, 9 skipped"), "{t}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(eval_dir.join("eval.json")).unwrap()).unwrap();
    assert!(v["model"] == "ijepa" && v["folder"] == eval_dir.file_name().unwrap().to_str().unwrap(), "{v}");
    // ... and a link to nothing in its place is set aside before the evaluation runs (it ran
    // to its end, then refused to write through the link)
    std::fs::remove_file(eval_dir.join("eval.json")).unwrap();
    std::os::unix::fs::symlink(d.join("nowhere.json"), eval_dir.join("eval.json")).unwrap();
    let (ok, t) = run(&d, &[]);
    assert!(ok && t.contains("is not a readable result") && t.contains("2 stage(s) run, 9 skipped"), "{t}");
    assert!(ijepa_schema::eval_done(&eval_dir) && !eval_dir.join("eval.json").is_symlink());

    // a pretraining's manifest lost: the plan says it resumes, and that its evaluation is done
    // (the resume writes the same final checkpoint, which the evaluation read; the plan
    // listed it to run, and the run skipped it)
    let pre = pretrain_dirs(&runs).into_iter().find(|p| p.parent() == eval_dir.parent()).unwrap();
    std::fs::remove_file(pre.join("manifest.json")).unwrap();
    let (ok, t) = run(&d, &["--dry-run"]);
    assert!(ok, "{t}");
    let line = |id: &str| t.lines().find(|l| l.contains(id)).unwrap_or_default().to_string();
    assert!(line("pretrain/targets-scale-0.15-0.2_seed-2 ").starts_with("resume"), "{t}");
    assert!(line("eval-knn-ijepa/targets-scale-0.15-0.2_seed-2 ").starts_with("skip (done)"), "{t}");
    let (ok, t) = run(&d, &[]);
    assert!(ok && t.contains("skip eval-knn-ijepa/targets-scale-0.15-0.2_seed-2 (done"), "{t}");

    // --force reruns what it selects; a report is written again in place (its folder may
    // hold the runs folder: it is never moved)
    let before = std::fs::metadata(d.join("reports/report.md")).unwrap().modified().unwrap();
    let (ok, t) = run(&d, &["--only", "report", "--force"]);
    assert!(ok, "{t}");
    assert!(t.contains("1 stage(s) run, 0 skipped"), "{t}");
    assert!(std::fs::metadata(d.join("reports/report.md")).unwrap().modified().unwrap() > before, "written again");
    assert!(!std::fs::read_dir(&d).unwrap().flatten().any(|e| e.file_name().to_string_lossy().starts_with(".reports.old-")));
    // an evaluation another process runs again now (a `--force` of it begun after this
    // command planned: here this test holds its lock) is not left out of a report that ends
    // well: the report waits for it, then fails naming it
    let held = ijepa_engine::run_dir::StageLock::acquire(&eval_dir).unwrap();
    let written = std::fs::read(d.join("reports/report.md")).unwrap();
    let (ok, t) = run(&d, &["--only", "report", "--force"]);
    assert!(!ok && t.contains("the report reads eval-knn-ijepa/targets-scale-0.15-0.2_seed-2, which another process is running now") && !t.contains("left out of the report"), "{t}");
    assert_eq!(std::fs::read(d.join("reports/report.md")).unwrap(), written);
    drop(held);

    // forcing a pretraining sets aside what was computed from it: its evaluation and the
    // report run again (the raw-pixel baselines do not depend on it and stay done); the dry
    // run says what it would set aside
    let (ok, t) = run(&d, &["--only", "pretrain/targets-scale-0.15-0.2_seed-2", "--force", "--dry-run"]);
    assert!(ok, "{t}");
    let aside: Vec<&str> = t.lines().filter(|l| l.trim_start().starts_with("set aside")).collect();
    assert!(aside.len() == 1 && aside[0].contains("eval-knn-ijepa/targets-scale-0.15-0.2_seed-2"), "{t}");
    let (ok, t) = run(&d, &["--only", "pretrain/targets-scale-0.15-0.2_seed-2", "--force"]);
    assert!(ok, "{t}");
    let (ok, t) = run(&d, &["--dry-run"]);
    assert!(ok, "{t}");
    let to_run: Vec<&str> = t.lines().filter(|l| l.starts_with("run ")).collect();
    assert_eq!(to_run.len(), 2, "{t}");
    assert!(to_run[0].contains("eval-knn-ijepa/targets-scale-0.15-0.2_seed-2") && to_run[1].contains("report"), "{t}");
    let registry_runs = std::fs::read_dir(runs.join("tiny-sweep-targets-scale-0.15-0.2_seed-2")).unwrap().count();
    assert!(registry_runs >= 3, "the set-aside folders stay, hidden");

    // an edited study (another k): its report covers its stages as they are now, not the
    // k=20 evaluations the earlier version left beside them in the runs folder (4 of the
    // encoder, 2 of the pixels: one per seed)
    let (ok, t) = run(&d, &[]);
    assert!(ok, "{t}");
    let rows = |csv: &str, what: &str| csv.lines().filter(|l| l.contains(what)).count();
    let sweep = std::fs::read_to_string(d.join("reports/tables/ablation-tiny-sweep.csv")).unwrap();
    assert_eq!(rows(&sweep, "I-JEPA (ours)"), 4, "{sweep}");
    std::fs::write(d.join("base.kdl"), BASE.replace("EPOCHS", "1").replace("eval \"knn\" {", "eval \"knn\" { k 5;")).unwrap();
    let (ok, t) = run(&d, &[]);
    assert!(ok, "{t}");
    assert!(t.contains("6 stage(s) of tiny-sweep") && t.contains("left out of its report"), "{t}");
    let sweep = std::fs::read_to_string(d.join("reports/tables/ablation-tiny-sweep.csv")).unwrap();
    assert_eq!(rows(&sweep, "I-JEPA (ours)"), 4, "{sweep}");
}

#[test]
fn a_stage_killed_mid_run_resumes_from_its_checkpoint() {
    let d = study("plan-resume", 6);
    let runs = d.join("runs");
    let f = d.join("sweep.kdl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ijepa"))
        .args(["run", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap(), "--reports-dir", d.join("reports").to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // kill it once the first point has a checkpoint (every epoch: 4 steps) and trained on
    let t0 = Instant::now();
    loop {
        assert!(t0.elapsed() < Duration::from_secs(120), "no checkpoint appeared");
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        let dirs = pretrain_dirs(&runs);
        let rows = dirs
            .first()
            .and_then(|p| std::fs::read_to_string(p.join("metrics.csv")).ok())
            .map(|t| t.lines().count().saturating_sub(1))
            .unwrap_or(0);
        if dirs.first().is_some_and(|p| p.join("checkpoints/latest.safetensors").is_file()) && rows >= 6 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let (ok, t) = run(&d, &["--dry-run"]);
    assert!(ok && t.contains("resume "), "the plan shows the interrupted stage: {t}");
    let (ok, t) = run(&d, &[]);
    assert!(ok, "{t}");
    assert!(t.contains("== resume pretrain/") && t.contains("resuming tiny-sweep-"), "{t}");
    let (ok, t) = run(&d, &[]);
    assert!(ok && t.contains("0 stage(s) run, 11 skipped"), "{t}");
}

#[test]
fn slurm_writes_an_sbatch_script_from_the_distributed_block() {
    let d = scratch("slurm");
    let out = d.join("job.sbatch");
    // the shipped preset's root= still holds the official placeholder: refused (the job queued
    // and failed as it started); a root this machine lacks is said, the nodes may have it
    let o = ijepa(&["slurm", "experiments/vitg16_in22k.kdl", "--out", out.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("still holds the official") && text(&o).contains("ijepa::dsl::missing_input") && !out.exists(), "{}", text(&o));
    let vitg = d.join("vitg16_in22k.kdl");
    let shipped = std::fs::read_to_string("experiments/vitg16_in22k.kdl").unwrap();
    std::fs::write(&vitg, shipped.replace("$replace_this_with_absolute_path_to_your_datasets_directory/imagenet_full_size/061417/train/", "/nonexistent-here/in22k/train/")).unwrap();
    let vitg = vitg.to_str().unwrap();
    let o = ijepa(&["slurm", vitg, "--out", out.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    assert!(o.status.success() && text(&o).contains("warning: missing data root: /nonexistent-here/in22k/train/ does not exist on this machine"), "{}", text(&o));
    let s = std::fs::read_to_string(&out).unwrap();
    for line in ["#SBATCH --nodes=16", "#SBATCH --ntasks-per-node=8", "#SBATCH --gpus-per-node=8", "#SBATCH --cpus-per-task=10", "#SBATCH --mem-per-gpu=55G", "#SBATCH --signal=TERM@300", "srun --kill-on-bad-exit=1 --cpus-per-task=10 "] {
        assert!(s.contains(line), "{line}: {s}");
    }
    assert!(s.contains("run ") && s.contains("vitg16_in22k.kdl"), "{s}");
    // an experiment on the CPU asks for no GPU (nor memory per GPU)
    let cpu = d.join("cpu.kdl");
    std::fs::write(&cpu, shipped.replace("$replace_this_with_absolute_path_to_your_datasets_directory/imagenet_full_size/061417/train/", "/nonexistent-here/in22k/train/").replacen("experiment \"vitg16-in22k\" {", "experiment \"vitg16-in22k\" {\n    device \"cpu\"", 1).replace("backend \"nccl\"", "backend \"gloo\"")).unwrap();
    let o = ijepa(&["slurm", cpu.to_str().unwrap(), "--out", out.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let s = std::fs::read_to_string(&out).unwrap();
    assert!(!s.contains("--gpus-per-node") && !s.contains("--mem-per-gpu") && s.contains("#SBATCH --ntasks-per-node=8"), "{s}");
    // ... and says so when the file gave a memory per GPU of its own (dropped without a word)
    assert!(!text(&o).contains("is not applied"), "{}", text(&o));
    let src = std::fs::read_to_string(&cpu).unwrap();
    assert!(src.contains("launcher \"slurm\"\n") && !src.contains("mem-per-gpu="));
    std::fs::write(&cpu, src.replacen("launcher \"slurm\"\n", "launcher \"slurm\"\n        slurm mem-per-gpu=\"200G\"\n", 1)).unwrap();
    let o = ijepa(&["slurm", cpu.to_str().unwrap(), "--out", out.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    assert!(o.status.success() && text(&o).contains("mem-per-gpu=\"200G\" is not applied"), "{}", text(&o));
    // the tasks' SIGTERM 5 minutes before the limit, not where the limit is 20 minutes or less
    for (time, signal) in [("15", false), ("20", false), ("21", true), ("1-00:00:00", true)] {
        std::fs::write(&cpu, src.replacen("launcher \"slurm\"\n", &format!("launcher \"slurm\"\n        slurm time=\"{time}\"\n"), 1)).unwrap();
        let o = ijepa(&["slurm", cpu.to_str().unwrap(), "--out", out.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
        let s = std::fs::read_to_string(&out).unwrap();
        assert!(o.status.success() && s.contains(&format!("#SBATCH --time={time}")) && s.contains("#SBATCH --signal=TERM@300") == signal, "{time}: {s}");
    }
    // a file without a distributed block is told its launcher is the default (it was told its
    // block says "local"), one whose block names another launcher which
    let o = ijepa(&["slurm", "experiments/quickstart.kdl", "--out", out.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    assert!(o.status.success() && text(&o).contains("note: quickstart's launcher is \"local\" (the default: no distributed block names \"slurm\"); writing a SLURM script anyway"), "{}", text(&o));
    let o = ijepa(&["slurm", "experiments/quickstart-2ranks.kdl", "--out", out.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    assert!(o.status.success() && text(&o).contains("'s distributed block says launcher \"local\"; writing a SLURM script anyway"), "{}", text(&o));
    // a runs folder with a space: sbatch splits its directives at spaces, so it is quoted
    let spaced = d.join("my runs");
    let o = ijepa(&["slurm", vitg, "--out", out.to_str().unwrap(), "--runs-dir", spaced.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let s = std::fs::read_to_string(&out).unwrap();
    assert!(s.contains(&format!("#SBATCH --output=\"{}/vitg16-in22k/slurm/%j.out\"", spaced.display())), "{s}");
    // no sbatch on this machine: --submit is a clear error, after writing the script
    if Command::new("sbatch").arg("--version").output().is_err() {
        let o = ijepa(&["slurm", vitg, "--out", out.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap(), "--submit"]);
        assert!(!o.status.success() && text(&o).contains("running sbatch"), "{}", text(&o));
    }
    // --out replaces a script this command wrote (above), not a script of the user's, and
    // never a pipe (the write blocked for ever) or a link's target
    let mine = d.join("deploy.sh");
    std::fs::write(&mine, "#!/bin/bash\nrsync -a src/ host:dst/\n").unwrap();
    let fifo = d.join("pipe.sbatch");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let link = d.join("link.sbatch");
    std::os::unix::fs::symlink(&out, &link).unwrap();
    let before = std::fs::read_to_string(&out).unwrap();
    for (to, says) in [(&mine, "is not a script `ijepa slurm` wrote"), (&fifo, "exists and is a named pipe or a socket"), (&link, "symbolic link")] {
        let o = Command::new("timeout")
            .args(["60", env!("CARGO_BIN_EXE_ijepa"), "slurm", vitg, "--out", to.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!o.status.success() && text(&o).contains(says), "{}: {}", to.display(), text(&o));
    }
    assert!(std::fs::read_to_string(&mine).unwrap().contains("rsync") && std::fs::read_to_string(&out).unwrap() == before);
    // a runs folder the job's `ijepa run` would refuse (its default reports-out/ inside it) is
    // refused before the job queues (it was written, and failed on the cluster); a study that
    // writes no report is not (vitg16's, or `plan` of the masks study)
    let reported = d.join("reported.kdl");
    std::fs::write(&reported, shipped.replace("$replace_this_with_absolute_path_to_your_datasets_directory/imagenet_full_size/061417/train/", "/nonexistent-here/in22k/train/").replacen("experiment \"vitg16-in22k\" {", "experiment \"vitg16-in22k\" {\n    report", 1)).unwrap();
    let o = ijepa(&["slurm", reported.to_str().unwrap(), "--out", d.join("refused.sbatch").to_str().unwrap(), "--runs-dir", "."]);
    assert!(!o.status.success() && text(&o).contains("the job's `ijepa run` would stop at once: --reports-dir reports-out") && text(&o).contains("give --runs-dir a folder that does not hold it") && !d.join("refused.sbatch").exists(), "{}", text(&o));
    let o = ijepa(&["plan", "experiments/fmnist-ijepa-sweep-masks.kdl", "--runs-dir", "."]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn import_yaml_reproduces_the_shipped_presets() {
    let d = scratch("import-yaml");
    for (yaml, preset, name) in [
        ("in1k_vith14_ep300.yaml", "in1k_vith14_ep300.kdl", "in1k-vith14-ep300"),
        ("in22k_vitg16_ep44.yaml", "vitg16_in22k.kdl", "vitg16-in22k"),
    ] {
        // (written as `experiments/PRESET.kdl`, the path its header's commands name: run in
        // a scratch folder)
        std::fs::create_dir_all(d.join("experiments")).unwrap();
        let out = d.join("experiments").join(preset);
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("dsl/tests/fixtures/official-configs").join(yaml);
        let o = Command::new(env!("CARGO_BIN_EXE_ijepa"))
            .args(["import-yaml", src.to_str().unwrap(), "--name", name, "--out", &format!("experiments/{preset}")])
            .current_dir(&d)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let src = src.to_str().unwrap();
        let ours = std::fs::read_to_string(&out).unwrap();
        let shipped = std::fs::read_to_string(Path::new("experiments").join(preset)).unwrap();
        assert_eq!(ours, shipped, "{yaml} imports to experiments/{preset}");
        // the imported file is valid language; running it needs root= edited (the official
        // placeholder), which `check` says at the root= span
        let o = ijepa(&["check", out.to_str().unwrap()]);
        assert!(!o.status.success() && text(&o).contains("missing_input") && text(&o).contains("root="), "{}", text(&o));
        // the experiment, now perhaps edited, is not replaced by a second import
        let o = ijepa(&["import-yaml", src, "--name", name, "--out", out.to_str().unwrap()]);
        assert!(!o.status.success() && text(&o).contains("does not replace an experiment file"), "{}", text(&o));
        assert_eq!(std::fs::read_to_string(&out).unwrap(), ours);
    }
    let bad = d.join("bad.yaml");
    std::fs::write(&bad, "data:\n  batch_size: 8\n  no_such_key: 1\n").unwrap();
    let o = ijepa(&["import-yaml", bad.to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("no_such_key"), "{}", text(&o));
}

#[test]
fn points_that_differ_after_pretraining_share_one_pretraining() {
    let d = study("plan-share", 1);
    let f = d.join("knn.kdl");
    std::fs::write(&f, "experiment \"knn-k\" {\n    extends \"base.kdl\"\n}\nsweep \"grid\" {\n    vary \"eval.knn.k\" 5 10\n}\n").unwrap();
    let o = ijepa(&["plan", f.to_str().unwrap()]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    // one pretraining feeds both kNN evaluations; the raw-pixel baseline depends on k, so
    // there is one per point, each with its own id
    assert!(t.contains("knn-k — 2 points, 1 pretraining, 4 evaluations, 1 report"), "{t}");
    assert!(t.contains("eval-knn-raw-pixels/knn-k-5  [") && t.contains("eval-knn-raw-pixels/knn-k-10  ["), "{t}");
    // another protocol's baseline does not depend on k: one stage, not labelled with a k
    let f = d.join("knn-linear.kdl");
    std::fs::write(&f, "experiment \"knn-k\" {\n    extends \"base.kdl\"\n    eval \"linear\" { epochs 1; baselines \"raw-pixels\" }\n}\nsweep \"grid\" {\n    vary \"eval.knn.k\" 5 10\n}\n").unwrap();
    let o = ijepa(&["plan", f.to_str().unwrap()]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("eval-linear-raw-pixels  [") && !t.contains("eval-linear-raw-pixels/"), "{t}");
    // the plan says so of the encoder's probe at the second point (it read "to run" twice)
    assert_eq!(t.matches("(the same stage as eval-linear-ijepa/knn-k-5: computed once)").count(), 1, "{t}");
    // and its count of evaluations says how many are computed
    assert!(t.contains("knn-k — 2 points, 1 pretraining, 7 evaluations (6 computed), 1 report"), "{t}");
    // the encoder's linear probe does not depend on k either: the second point reuses the
    // first's result (recorded under its own settings) instead of training the probe again
    let runs = d.join("runs");
    // (the dry run says so: it said "run")
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap(), "--reports-dir", d.join("reports").to_str().unwrap(), "--dry-run"]);
    let t = text(&o);
    let line = |t: &str, id: &str| t.lines().find(|l| l.contains(&format!("{id} "))).unwrap_or_default().to_string();
    assert!(o.status.success() && line(&t, "eval-linear-ijepa/knn-k-5").starts_with("run "), "{t}");
    assert!(line(&t, "eval-linear-ijepa/knn-k-10").starts_with("reuse ") && line(&t, "eval-linear-ijepa/knn-k-10").ends_with("(the result of eval-linear-ijepa/knn-k-5, the same stage)"), "{t}");
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap(), "--reports-dir", d.join("reports").to_str().unwrap()]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert_eq!(t.matches("is reused").count(), 1, "{t}");
    // (and its count of stages run does not count the copy)
    assert!(t.contains("skipped (already done), 1 reused (an evaluation of the same hash done under another point's id)"), "{t}");
    assert_eq!(t.matches("eval linear   ijepa").count(), 1, "the probe trains once: {t}");
    // the shared pretraining records both points by all their settings: were it to diverge,
    // the report gives each a row (its `varied` leaves evaluation settings out)
    let pdir = std::fs::read_dir(runs.join("knn-k-knn-k-5")).unwrap().flatten().find(|e| e.file_name().to_string_lossy().starts_with("pretrain-")).unwrap();
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(pdir.path().join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["points"], serde_json::json!([{"eval.knn.k": "5"}, {"eval.knn.k": "10"}]), "{m}");
    assert!(m.get("varied").is_none(), "{m}");
    let records: Vec<serde_json::Value> = ["knn-k-knn-k-5", "knn-k-knn-k-10"]
        .iter()
        .map(|p| {
            let dir = std::fs::read_dir(runs.join(p)).unwrap().flatten().find(|e| e.file_name().to_string_lossy().starts_with("eval-linear-ijepa-")).unwrap();
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("eval.json")).unwrap()).unwrap()
        })
        .collect();
    assert_eq!(records[0]["top1"], records[1]["top1"]);
    assert_eq!((records[0]["varied"]["eval.knn.k"].as_str(), records[1]["varied"]["eval.knn.k"].as_str()), (Some("5"), Some("10")));
    // --force computes what it reruns: the probe trains again instead of copying its twin's
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap(), "--reports-dir", d.join("reports").to_str().unwrap(), "--force", "--only", "eval-linear-ijepa/knn-k-10"]);
    let t = text(&o);
    assert!(o.status.success() && !t.contains("is reused") && t.matches("eval linear   ijepa").count() == 1, "{t}");
    // the first of the twins gone, the plan says the run copies the second's result (it read
    // "to run" without a word)
    let first = std::fs::read_dir(runs.join("knn-k-knn-k-5")).unwrap().flatten().find(|e| e.file_name().to_string_lossy().starts_with("eval-linear-ijepa-")).unwrap();
    std::fs::remove_dir_all(first.path()).unwrap();
    let o = ijepa(&["plan", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap(), "--reports-dir", d.join("reports").to_str().unwrap()]);
    let t = text(&o);
    assert!(line(&t, "eval-linear-ijepa/knn-k-5").contains("to run") && line(&t, "eval-linear-ijepa/knn-k-5").ends_with("(the same stage as eval-linear-ijepa/knn-k-10, done: its result is copied)"), "{t}");
    // the values reordered, or one added in front: the shared pretraining, named after the
    // first point, is the one done under knn-k-5 (it was planned to train again under the new
    // first point's name, without a word)
    for values in ["10 5", "3 5 10"] {
        std::fs::write(&f, format!("experiment \"knn-k\" {{\n    extends \"base.kdl\"\n    eval \"linear\" {{ epochs 1; baselines \"raw-pixels\" }}\n}}\nsweep \"grid\" {{\n    vary \"eval.knn.k\" {values}\n}}\n")).unwrap();
        let o = ijepa(&["plan", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap(), "--reports-dir", d.join("reports").to_str().unwrap()]);
        let t = text(&o);
        let first = values.split(' ').next().unwrap();
        let pretrain = line(&t, &format!("pretrain/knn-k-{first} "));
        assert!(pretrain.contains("done") && pretrain.contains(&pdir.path().display().to_string()), "{values}: {t}");
    }
}

/// A file that trained as a plain experiment and then gains its first `seeds` (its point is
/// renamed `<experiment>-seed-1`, which moved its hash and folder) or becomes a sweep whose
/// point has the same settings keeps that pretraining: only the new points train.
#[test]
fn a_plain_file_made_a_sweep_keeps_its_finished_pretraining() {
    let d = study("plan-plain-then-seeds", 1);
    let (runs, reports) = (d.join("runs"), d.join("reports"));
    let plain = d.join("one.kdl");
    std::fs::write(&plain, "experiment \"one\" {\n    extends \"base.kdl\"\n}\n").unwrap();
    let go = |f: &Path, extra: &[&str]| {
        let mut args = vec!["run", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap(), "--reports-dir", reports.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = ijepa(&args);
        (o.status.success(), text(&o))
    };
    let (ok, t) = go(&plain, &[]);
    assert!(ok, "{t}");
    let trained = pretrain_dirs(&runs);
    assert_eq!(trained.len(), 1, "{trained:?}");
    // the same file with `seeds 1 2` (base.kdl's seed is 1): seed 1 is the run already done
    std::fs::write(&plain, "experiment \"one\" {\n    extends \"base.kdl\"\n}\nsweep \"grid\" {\n    seeds 1 2\n}\n").unwrap();
    let o = ijepa(&["plan", plain.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    let t = text(&o);
    let line = |id: &str| t.lines().find(|l| l.contains(id)).unwrap_or_default().to_string();
    assert!(line("pretrain/seed-1").contains("done") && line("pretrain/seed-1").contains(trained[0].to_str().unwrap()), "{t}");
    assert!(line("pretrain/seed-2").contains("to run"), "{t}");
    let (ok, t) = go(&plain, &[]);
    assert!(ok, "{t}");
    assert_eq!(t.matches("pretraining one").count(), 1, "only the new point trains: {t}");
    assert_eq!(pretrain_dirs(&runs).len(), 2);
    // a point of other settings does not take it
    std::fs::write(&plain, "experiment \"one\" {\n    extends \"base.kdl\"\n}\nsweep \"grid\" {\n    seeds 3\n}\n").unwrap();
    let o = ijepa(&["plan", plain.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    assert!(text(&o).lines().any(|l| l.contains("pretrain/seed-3") && l.contains("to run")), "{}", text(&o));
    // a sweep over an evaluation setting names its shared pretraining after its first point:
    // values added, reordered or dropped renamed it, and an identical model trained again
    let pretrains = pretrain_dirs(&runs).len();
    for values in ["3 5", "5 3", "7"] {
        std::fs::write(&plain, format!("experiment \"one\" {{\n    extends \"base.kdl\"\n}}\nsweep \"grid\" {{\n    seeds 1 2\n    vary \"eval.knn.k\" {values}\n}}\n")).unwrap();
        let (ok, t) = go(&plain, &[]);
        assert!(ok && !t.contains("== run pretrain") && !t.contains("== resume pretrain"), "k {values}: {t}");
    }
    assert_eq!(pretrain_dirs(&runs).len(), pretrains);
    // ... and the plain file run after its sweep takes the sweep's run of its settings
    let back = d.join("back.kdl");
    std::fs::write(&back, "experiment \"one\" {\n    extends \"base.kdl\"\n    seed 2\n}\n").unwrap();
    let (ok, t) = go(&back, &[]);
    assert!(ok && !t.contains("== run pretrain"), "{t}");
    assert_eq!(pretrain_dirs(&runs).len(), pretrains);
    // ... but not another experiment's whose name starts with `one-` (a `--force` of this
    // file would have set aside and trained again that experiment's run)
    let other = d.join("other.kdl");
    std::fs::write(&other, "experiment \"one-other\" {\n    extends \"base.kdl\"\n    seed 5\n}\n").unwrap();
    let (ok, t) = go(&other, &[]);
    assert!(ok, "{t}");
    std::fs::write(&back, "experiment \"one\" {\n    extends \"base.kdl\"\n    seed 5\n}\n").unwrap();
    let o = ijepa(&["plan", back.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    let t = text(&o);
    assert!(t.lines().any(|l| l.contains("pretrain  [") && l.contains("to run") && !l.contains("one-other")), "{t}");
}

/// Runs the plain file `one.kdl` of the scratch study `d` (with `extra` arguments).
fn run_one(d: &Path, extra: &[&str]) -> (bool, String) {
    run_file(d, "one.kdl", extra)
}

/// A scratch study whose plain file `one.kdl` (base.kdl for `epochs` epochs) has run with
/// `extra` arguments: the study's folder and the one pretraining's folder.
fn one_run(name: &str, epochs: usize, extra: &[&str]) -> (PathBuf, PathBuf) {
    let d = study(name, epochs);
    std::fs::write(d.join("one.kdl"), "experiment \"one\" {\n    extends \"base.kdl\"\n}\n").unwrap();
    let (ok, t) = run_one(&d, extra);
    assert!(ok, "{t}");
    let trained = pretrain_dirs(&d.join("runs"));
    assert_eq!(trained.len(), 1, "{trained:?}");
    (d, trained[0].clone())
}

/// Makes the finished pretraining in `run` one that was interrupted: its manifest says
/// running, its final weights are not there (its last checkpoint is).
fn interrupt(run: &Path) {
    let mpath = run.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&mpath).unwrap()).unwrap();
    m["status"] = "running".into();
    std::fs::write(&mpath, serde_json::to_string(&m).unwrap()).unwrap();
    std::fs::remove_file(run.join("checkpoints/final.safetensors")).unwrap();
}

/// The plain file's run that lost its manifest (a whole final checkpoint beside it) is still the
/// run of the sweep point of its settings: the point resumes there (it trained again in a
/// folder of its own).
#[test]
fn a_plain_run_that_lost_its_manifest_is_still_its_sweep_points() {
    let (d, trained) = one_run("plan-plain-lost-manifest", 1, &[]);
    let runs = d.join("runs");
    std::fs::remove_file(trained.join("manifest.json")).unwrap();
    let kept = |f: &str| std::fs::read(trained.join(f)).unwrap();
    let (weights, metrics) = (kept("checkpoints/final.safetensors"), kept("metrics.csv"));
    let plain = d.join("one.kdl");
    std::fs::write(&plain, "experiment \"one\" {\n    extends \"base.kdl\"\n}\nsweep \"grid\" {\n    seeds 1 2\n}\n").unwrap();
    let o = ijepa(&["plan", plain.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    let t = text(&o);
    let line = t.lines().find(|l| l.contains("pretrain/seed-1")).unwrap_or_default();
    assert!(line.contains(trained.to_str().unwrap()), "{t}");
    let (ok, t) = run_one(&d, &[]);
    assert!(ok, "{t}");
    assert_eq!(pretrain_dirs(&runs).len(), 2, "only seed 2 trains in a new folder: {t}");
    assert!(trained.join("manifest.json").is_file(), "the resume wrote the manifest again: {t}");
    assert!(kept("checkpoints/final.safetensors") == weights && kept("metrics.csv") == metrics, "nothing trained again: {t}");
}

/// A plain run interrupted (a checkpoint to resume from, no final weights), then made a sweep
/// (its point renamed `<study>-seed-1`): the point resumes the interrupted run where it is (it
/// trained from the start in a new folder, the old checkpoints left behind); a point with a
/// folder of its own keeps it.
#[test]
fn a_renamed_point_resumes_its_interrupted_run() {
    let (d, trained) = one_run("plan-renamed-interrupted", 2, &[]);
    let runs = d.join("runs");
    interrupt(&trained);
    let plain = d.join("one.kdl");
    std::fs::write(&plain, "experiment \"one\" {\n    extends \"base.kdl\"\n}\nsweep \"grid\" {\n    seeds 1 2\n}\n").unwrap();
    let o = ijepa(&["plan", plain.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    let t = text(&o);
    let line = t.lines().find(|l| l.contains("pretrain/seed-1")).unwrap_or_default();
    assert!(line.contains(trained.to_str().unwrap()) && line.contains("resume"), "{t}");
    let (ok, t) = run_one(&d, &[]);
    assert!(ok, "{t}");
    assert_eq!(pretrain_dirs(&runs).len(), 2, "only seed 2 trains in a new folder: {t}");
    assert!(trained.join("checkpoints/final.safetensors").is_file(), "the resume wrote the final weights: {t}");
}

/// An interrupted pretraining left behind by a changed setting (`epochs 2` made 3, to extend
/// it) is named when the new one starts from step 0, with the settings that differ (it was
/// left without a word).
#[test]
fn a_changed_setting_names_the_interrupted_run_it_leaves() {
    let (d, trained) = one_run("plan-changed-interrupted", 2, &["--only", "pretrain"]);
    interrupt(&trained);
    let plain = d.join("one.kdl");
    std::fs::write(&plain, "experiment \"one\" {\n    extends \"base.kdl\"\n    epochs 3\n}\n").unwrap();
    // `ijepa plan` says it too (only `run --dry-run` did)
    let o = ijepa(&["plan", plain.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    let t = text(&o);
    assert!(t.contains(&format!("{} holds this experiment's pretraining interrupted at step", trained.display())) && t.contains("(epochs 2 -> 3)"), "{t}");
    for extra in [&["--dry-run", "--only", "pretrain"][..], &["--only", "pretrain"]] {
        let (ok, t) = run_one(&d, extra);
        assert!(ok, "{t}");
        assert!(t.contains(&format!("{} holds this experiment's pretraining interrupted at step", trained.display())) && t.contains("(epochs 2 -> 3)"), "{t}");
    }
    // a setting that does not change the weights (the evaluations') is no difference
    std::fs::write(&plain, "experiment \"one\" {\n    extends \"base.kdl\"\n    epochs 4\n    eval \"knn\" { k 5; baselines \"raw-pixels\" }\n}\n").unwrap();
    let (ok, t) = run_one(&d, &["--dry-run"]);
    assert!(ok && t.contains("interrupted at step") && t.contains("(epochs 2 -> 4)"), "{t}");
    // the same settings on other processes (`ijepa launch` on 2, then a plain `ijepa run`: the
    // process count is part of the stage hash, no setting): named with the count
    std::fs::write(&plain, "experiment \"one\" {\n    extends \"base.kdl\"\n}\n").unwrap();
    let launched = trained.with_file_name("pretrain-000000000002");
    std::fs::rename(&trained, &launched).unwrap();
    let mpath = launched.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&mpath).unwrap()).unwrap();
    m["world_size"] = 2.into();
    // (the record of the folder's own stage: one of another stage is no run of this one's)
    m["hash"] = "0000000000020000".into();
    std::fs::write(&mpath, serde_json::to_string(&m).unwrap()).unwrap();
    let o = ijepa(&["plan", plain.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    let t = text(&o);
    assert!(t.contains(&format!("{} holds this experiment's pretraining interrupted at step", launched.display())) && t.contains("on 2 processes (this one: 1)"), "{t}");
}

/// A finished run whose final checkpoint was replaced (another run's weights moved or copied
/// over it) is refused, naming the file and both checksums; its evaluations were skipped as
/// done, the report showing what they had measured on weights no longer there. Moved aside, the
/// run writes it again; `--force` of the pretraining trains it again.
#[test]
fn a_replaced_final_checkpoint_is_refused() {
    let d = study("plan-replaced-final", 1);
    let (plain, runs, reports) = (d.join("one.kdl"), d.join("runs"), d.join("reports"));
    std::fs::write(&plain, "experiment \"one\" {\n    extends \"base.kdl\"\n}\n").unwrap();
    let go = |file: &Path, runs: &Path, extra: &[&str]| {
        let mut args = vec!["run", file.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap(), "--reports-dir", reports.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = ijepa(&args);
        (o.status.success(), text(&o))
    };
    // another run's weights of the same shapes, trained first (its file is older than ours)
    let seed2 = d.join("seed2.kdl");
    std::fs::write(&seed2, "experiment \"one\" {\n    extends \"base.kdl\"\n    seed 2\n}\n").unwrap();
    let (ok, t) = go(&seed2, &d.join("other"), &[]);
    assert!(ok, "{t}");
    let theirs = pretrain_dirs(&d.join("other"))[0].join("checkpoints/final.safetensors");
    let (ok, t) = go(&plain, &runs, &[]);
    assert!(ok, "{t}");
    let fin = pretrain_dirs(&runs)[0].join("checkpoints/final.safetensors");
    // its own bytes written again (a copy of the folder) are its own
    let bytes = std::fs::read(&fin).unwrap();
    std::fs::write(&fin, &bytes).unwrap();
    let (ok, t) = go(&plain, &runs, &[]);
    assert!(ok && !t.contains("is not the file this run wrote"), "{t}");
    // moved over it, keeping its older time
    let other = std::fs::read(&theirs).unwrap();
    std::fs::rename(&theirs, &fin).unwrap();
    let (ok, t) = go(&plain, &runs, &[]);
    assert!(
        !ok && t.contains("final.safetensors of the pretraining pretrain") && t.contains("another run's weights") && t.contains("is not the file this run wrote") && t.contains("move it aside"),
        "{t}"
    );
    let o = ijepa(&["plan", plain.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    assert!(o.status.success() && text(&o).contains("is refused") && text(&o).contains("is not the file this run wrote"), "{}", text(&o));
    // a dry run shows the plan and says so
    let (ok, t) = go(&plain, &runs, &["--dry-run"]);
    assert!(!ok && t.contains("would be refused: ") && t.contains("the run would be refused (1 reason(s)"), "{t}");
    // `ijepa eval` of it is refused too (it evaluated the other run's weights as this run's,
    // and the report then left the results out, asking to evaluate them again), writing nothing
    let evals_before = std::fs::read_dir(fin.parent().unwrap().parent().unwrap().parent().unwrap()).unwrap().count();
    let o = ijepa(&["eval", plain.to_str().unwrap(), "--checkpoint", fin.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("is not the file this run wrote") && text(&o).contains("move it aside"), "{}", text(&o));
    assert_eq!(std::fs::read_dir(fin.parent().unwrap().parent().unwrap().parent().unwrap()).unwrap().count(), evals_before);
    // moved aside, the run writes it again from its last checkpoint
    std::fs::rename(&fin, d.join("aside.safetensors")).unwrap();
    let (ok, t) = go(&plain, &runs, &[]);
    assert!(ok, "{t}");
    assert_eq!(std::fs::read(&fin).unwrap(), bytes, "written again, the same bytes");
    // ... or `--force` trains it again
    std::fs::write(&fin, &other).unwrap();
    let (ok, t) = go(&plain, &runs, &["--force", "--only", "pretrain"]);
    assert!(ok, "{t}");
    assert_eq!(std::fs::read(&fin).unwrap(), bytes, "trained again, the same bytes");
}

/// A baseline shared by a plain file and its sweep (the same study, the same settings) is placed
/// in each one's report by its stage in that file's plan: its `eval.json` records the varied
/// settings of whichever ran it first, and the sweep's report lacked that point's baseline (it
/// showed as a plain row), or the plain file's report showed it in a sweep section of its own.
#[test]
fn a_baseline_shared_by_a_plain_file_and_its_sweep_is_placed_by_each_plan() {
    let d = scratch("plan-shared-baseline");
    std::fs::write(d.join("x.kdl"), BASE.replace("EPOCHS", "1").replace("experiment \"tiny\"", "experiment \"x\"").replace("eval \"knn\" {", "eval \"knn\" { k 3;")).unwrap();
    std::fs::write(d.join("sw.kdl"), "experiment \"x\" {\n    extends \"x.kdl\"\n}\nsweep \"grid\" {\n    vary \"eval.knn.k\" 3 5\n    seeds 1 2\n}\n").unwrap();
    let go = |file: &str, runs: &str, reports: &str| {
        let o = ijepa(&["run", d.join(file).to_str().unwrap(), "--runs-dir", d.join(runs).to_str().unwrap(), "--reports-dir", d.join(reports).to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o));
    };
    // the plain file first: the sweep's table has a raw-pixels row for each of its 4 points
    go("x.kdl", "runs-a", "plain-a");
    go("sw.kdl", "runs-a", "sweep-a");
    let table = std::fs::read_to_string(d.join("sweep-a/tables/ablation-x.csv")).unwrap();
    assert_eq!(table.lines().filter(|l| l.contains("raw pixels")).count(), 4, "{table}");
    // the sweep first: the plain file's report has no sweep section
    go("sw.kdl", "runs-b", "sweep-b");
    go("x.kdl", "runs-b", "plain-b");
    assert!(!d.join("plain-b/tables/ablation-x.csv").exists(), "{:?}", std::fs::read_dir(d.join("plain-b/tables")).unwrap().flatten().map(|e| e.file_name()).collect::<Vec<_>>());
    let knn = std::fs::read_to_string(d.join("plain-b/tables/knn.csv")).unwrap();
    assert!(knn.lines().any(|l| l.contains("raw pixels")), "{knn}");
    // ... and the folder's report shows both files' as their runs did, whichever ran first (it
    // filed the shared baseline under the first file alone)
    for runs in ["runs-a", "runs-b"] {
        let out = d.join(format!("folder-{runs}"));
        let o = ijepa(&["report", d.join(runs).to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o));
        let table = std::fs::read_to_string(out.join("tables/ablation-x.csv")).unwrap();
        assert_eq!(table.lines().filter(|l| l.contains("raw pixels")).count(), 4, "{runs}: {table}");
        let knn = std::fs::read_to_string(out.join("tables/knn.csv")).unwrap();
        assert!(knn.lines().any(|l| l.contains("raw pixels")), "{runs}: {knn}");
    }
}

/// A sweep whose values were edited: its report covers the points it has now, and the
/// pretrainings of the points it no longer has (named after those points, they read as other
/// experiments' and were listed beside the new ones) are left out by the study their manifests
/// record.
#[test]
fn the_report_of_an_edited_sweep_leaves_its_old_points_pretrainings_out() {
    let d = study("plan-edited-sweep", 1);
    let f = d.join("sweep.kdl");
    let write = |values: &str| std::fs::write(&f, format!("experiment \"ed\" {{\n    extends \"base.kdl\"\n}}\nsweep \"grid\" {{\n    vary \"optimizer.lr.peak\" {values}\n}}\n")).unwrap();
    write("1e-3 2e-3");
    let (ok, t) = run(&d, &[]);
    assert!(ok, "{t}");
    write("3e-3 4e-3");
    let (ok, t) = run(&d, &[]);
    assert!(ok && t.contains("left out of its report"), "{t}");
    let table = std::fs::read_to_string(d.join("reports/tables/pretrain.csv")).unwrap();
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(rows.iter().all(|r| r.contains("0.003") || r.contains("0.004")), "{table}");
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(pretrain_dirs(&d.join("runs"))[0].join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["study"], "ed");
}

/// The runs folder however it is spelled (`runs/`, `./runs`, a link to it) is one folder: its
/// report is done under each spelling (each wrote the report again), and another folder's is
/// not.
#[test]
fn the_report_is_the_runs_folders_however_it_is_spelled() {
    let d = study("plan-spelled", 1);
    let (file, reports) = (d.join("base.kdl"), d.join("reports"));
    let go = |runs: &str| {
        let o = ijepa(&["run", file.to_str().unwrap(), "--runs-dir", runs, "--reports-dir", reports.to_str().unwrap()]);
        (o.status.success(), text(&o))
    };
    let runs = d.join("runs");
    let (ok, t) = go(runs.to_str().unwrap());
    assert!(ok, "{t}");
    std::os::unix::fs::symlink(&runs, d.join("link")).unwrap();
    for spelled in [format!("{}/", runs.display()), format!("{}/./runs", d.display()), format!("{}/nosuch/../runs", d.display()), d.join("link").display().to_string()] {
        let (ok, t) = go(&spelled);
        assert!(ok && t.contains("0 stage(s) run"), "{spelled}: {t}");
    }
    // ... and however the file is spelled (its record named it as given, and the report, which
    // reads the record, was written again)
    let spelled = format!("{}/./base.kdl", d.display());
    let o = ijepa(&["run", &spelled, "--runs-dir", runs.to_str().unwrap(), "--reports-dir", reports.to_str().unwrap()]);
    assert!(o.status.success() && text(&o).contains("0 stage(s) run"), "{}", text(&o));
    // a copy of the folder is another folder: its report is its own
    let copy = d.join("copy");
    assert!(std::process::Command::new("cp").args(["-a", runs.to_str().unwrap(), copy.to_str().unwrap()]).status().unwrap().success());
    let (ok, t) = go(copy.to_str().unwrap());
    assert!(ok && t.contains("1 stage(s) run") && t.contains("== run report"), "{t}");
}

/// A file that renames its experiment plans none of the old name's stages: its report and the
/// folder's leave them out as an earlier version's (both names' pretrainings and results were
/// shown as current), and a rename back brings them back.
#[test]
fn a_renamed_experiment_leaves_the_old_names_stages_out() {
    let d = study("plan-renamed", 1);
    let named = |name: &str| std::fs::write(d.join("base.kdl"), BASE.replace("EPOCHS", "1").replace("\"tiny\"", &format!("\"{name}\""))).unwrap();
    let pretrain_rows = |reports: &Path| {
        let table = std::fs::read_to_string(reports.join("tables/pretrain.csv")).unwrap();
        table.lines().skip(1).map(|l| l.split(',').next().unwrap_or("").to_string()).collect::<Vec<_>>()
    };
    named("rena");
    let (ok, t) = run_file(&d, "base.kdl", &[]);
    assert!(ok, "{t}");
    named("renb");
    let (ok, t) = run_file(&d, "base.kdl", &[]);
    assert!(ok, "{t}");
    assert_eq!(pretrain_rows(&d.join("reports")), ["renb"], "{t}");
    // the folder's report too (`ijepa report`), naming why
    let o = ijepa(&["report", d.join("runs").to_str().unwrap(), "--out", d.join("folder-report").to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(pretrain_rows(&d.join("folder-report")), ["renb"], "{}", text(&o));
    assert!(text(&o).contains("planned no stage of rena: the file names another experiment now"), "{}", text(&o));
    // (its baseline too, whose hash leaves the name out: the new name's folder holds its twin,
    // and it was called a copy)
    assert!(text(&o).contains("rena/eval-knn-raw-pixels-") && !text(&o).contains("a copy of the stage"), "{}", text(&o));
    // a link in the runs folder to the study's folder is that folder: its record stays
    std::os::unix::fs::symlink(d.join("runs/renb"), d.join("runs/latest")).unwrap();
    let (ok, t) = run_file(&d, "base.kdl", &[]);
    assert!(ok, "{t}");
    assert_eq!(pretrain_rows(&d.join("reports")), ["renb"], "{t}");
    std::fs::remove_file(d.join("runs/latest")).unwrap();
    // a copy of the study's folder under another name, gathered elsewhere, is said to be one
    // (it read "an earlier version's": its stages are the ones the file's run planned)
    let gather = d.join("gather");
    std::fs::create_dir_all(&gather).unwrap();
    assert!(std::process::Command::new("cp").arg("-a").arg(d.join("runs/renb")).arg(gather.join("renb (copy)")).status().unwrap().success());
    let o = ijepa(&["report", gather.to_str().unwrap(), "--out", d.join("gather-report").to_str().unwrap()]);
    assert!(o.status.success() && text(&o).contains("a stage of renb in a folder of another name (renb (copy)") && !text(&o).contains("an earlier version's"), "{}", text(&o));
    // so is one whose name reads as a point of the study's (`renb-old`, moved aside)
    std::fs::rename(gather.join("renb (copy)"), gather.join("renb-old")).unwrap();
    let o = ijepa(&["report", gather.to_str().unwrap(), "--out", d.join("gather-report").to_str().unwrap()]);
    assert!(o.status.success() && text(&o).contains("a copy of the stage renb/pretrain-") && text(&o).contains("in another folder (renb-old: a copied or moved folder?)"), "{}", text(&o));
    assert!(!text(&o).contains("an earlier version's"), "{}", text(&o));
    // renamed back: its stages are done, and the current ones again
    named("rena");
    let (ok, t) = run_file(&d, "base.kdl", &[]);
    assert!(ok && !t.contains("== run pretrain"), "{t}");
    assert_eq!(pretrain_rows(&d.join("reports")), ["rena"], "{t}");
}

/// A `--force` run stopped before its end (here by a stage another process holds; a signal
/// alike) is gone on with by the same command: the stages it ran again are not forced a second
/// time (after a Ctrl-C, "run the same command again" retrained the points of a forced sweep
/// that had finished); once one gets through, the next forces every stage again.
#[test]
fn the_same_force_command_goes_on_with_one_stopped_before_its_end() {
    let d = study("plan-force-goes-on", 1);
    let (a, b) = ("pretrain/targets-scale-0.1-0.2_seed-1", "pretrain/targets-scale-0.1-0.2_seed-2");
    let runs = d.join("runs");
    let (ok, t) = run(&d, &["--only", a, "--only", b]);
    assert!(ok, "{t}");
    let folder = |point: &str| pretrain_dirs(&runs).into_iter().find(|p| p.parent().unwrap().ends_with(format!("tiny-sweep-targets-scale-0.1-0.2_{point}"))).unwrap();
    let (dir_a, dir_b) = (folder("seed-1"), folder("seed-2"));
    let set_aside = |dir: &Path| {
        let name = format!(".{}.old-", dir.file_name().unwrap().to_string_lossy());
        std::fs::read_dir(dir.parent().unwrap()).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with(&name)).count()
    };
    let markers = || -> Vec<PathBuf> {
        std::fs::read_dir(runs.join("tiny-sweep")).unwrap().flatten().map(|e| e.path()).filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(".force-")).collect()
    };
    let force = ["--force", "--only", a, "--only", b];
    // stopped after the first: the second is another process's
    let held = ijepa_engine::run_dir::StageLock::acquire(&dir_b).unwrap();
    let (ok, t) = run(&d, &force);
    assert!(!ok && t.contains(&format!("== run {a}")) && t.contains("in use by another process"), "{t}");
    assert!((set_aside(&dir_a), set_aside(&dir_b)) == (1, 0) && markers().len() == 1, "{t}");
    drop(held);
    // (a stage it did not reach, whose records a plain run rewrote meanwhile, is still forced:
    // what it ran is recorded, not read from the files' times)
    let manifest_b = dir_b.join("manifest.json");
    std::fs::write(&manifest_b, std::fs::read(&manifest_b).unwrap()).unwrap();
    // the same command: the first is not trained a third time; the dry run says so
    let (ok, t) = run(&d, &["--dry-run", "--force", "--only", a, "--only", b]);
    let line = |t: &str, id: &str| t.lines().find(|l| l.contains(&format!("{id} "))).unwrap_or_default().to_string();
    assert!(ok && t.contains("--force: going on with the `--force` run of these stages begun"), "{t}");
    assert!(line(&t, a).starts_with("skip (forced)") && line(&t, b).starts_with("rerun (--force)"), "{t}");
    let (ok, t) = run(&d, &force);
    assert!(ok && t.contains(&format!("skip {a} (run again by the `--force` run this command goes on with")) && t.contains(&format!("== run {b}")), "{t}");
    assert!(t.contains(" 1 skipped (run again by the `--force` run this command goes on with)"), "{t}");
    assert!((set_aside(&dir_a), set_aside(&dir_b)) == (1, 1) && markers().is_empty(), "{t}");
    // ... which got through: the next forces both again
    let (ok, t) = run(&d, &force);
    assert!(ok && t.contains(&format!("== run {a}")) && t.contains(&format!("== run {b}")) && !t.contains("going on with"), "{t}");
    assert!((set_aside(&dir_a), set_aside(&dir_b)) == (2, 2) && markers().is_empty(), "{t}");
    // another selection is another command, with a record of its own: one stopped is not gone
    // on with by it, and stays for its own command
    let held = ijepa_engine::run_dir::StageLock::acquire(&dir_b).unwrap();
    let (ok, t) = run(&d, &force);
    assert!(!ok && markers().len() == 1, "{t}");
    drop(held);
    let (ok, t) = run(&d, &["--force", "--only", a]);
    assert!(ok && t.contains(&format!("== run {a}")) && !t.contains("going on with") && markers().len() == 1, "{t}");
    let (ok, t) = run(&d, &force);
    assert!(ok && t.contains("going on with") && t.contains(&format!("== run {b}")) && markers().is_empty(), "{t}");
}

/// Two studies sharing a runs folder and a reports folder (the default `reports-out`): the
/// report is the folder's, so one written by either is the other's too while nothing it read
/// changed (each marked the other's report "to run", and wrote it again in turn).
#[test]
fn two_studies_share_the_report_of_their_folder() {
    let d = study("plan-two-studies", 1);
    std::fs::write(d.join("other.kdl"), BASE.replace("EPOCHS", "1").replace("\"tiny\"", "\"other\"")).unwrap();
    for file in ["base.kdl", "other.kdl"] {
        let (ok, t) = run_file(&d, file, &[]);
        assert!(ok && t.contains("== run report"), "{t}");
    }
    let report_line = |file: &str| {
        let (f, runs, reports) = (d.join(file), d.join("runs"), d.join("reports"));
        let t = text(&ijepa(&["plan", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap(), "--reports-dir", reports.to_str().unwrap()]));
        t.lines().find(|l| l.contains("report  [")).unwrap_or_default().to_string()
    };
    assert!(report_line("base.kdl").contains("] done"), "{}", report_line("base.kdl"));
    let (ok, t) = run_file(&d, "base.kdl", &[]);
    assert!(ok && t.contains("skip report (done") && t.contains("0 stage(s) run"), "{t}");
    // ... until something it read changes: a stage of either study
    let (ok, t) = run_file(&d, "other.kdl", &["--force", "--only", "eval-knn-raw-pixels"]);
    assert!(ok, "{t}");
    assert!(report_line("base.kdl").contains("] to run"), "{}", report_line("base.kdl"));
    // ... nor where a study's folder holds a stage its plan does not list (an earlier
    // version's, `ijepa eval`'s): its own report leaves it out, the other study's shows it
    let (ok, t) = run_file(&d, "base.kdl", &[]);
    assert!(ok && report_line("other.kdl").contains("] done"), "{t}");
    let pixels = std::fs::read_dir(d.join("runs/tiny")).unwrap().flatten().map(|e| e.path()).find(|p| p.file_name().unwrap().to_string_lossy().starts_with("eval-knn-raw-pixels-")).unwrap();
    let stray = pixels.with_file_name("eval-knn-raw-pixels-ffffffffffff");
    std::fs::create_dir(&stray).unwrap();
    std::fs::copy(pixels.join("eval.json"), stray.join("eval.json")).unwrap();
    let (ok, t) = run_file(&d, "base.kdl", &[]);
    assert!(ok && t.contains("== run report"), "{t}");
    assert!(report_line("other.kdl").contains("] to run"), "{}", report_line("other.kdl"));
}

/// `--force` never moves a report folder: `--reports-dir out --runs-dir out/runs` (the report
/// beside its runs) set the whole runs folder aside with it, and the next run trained again.
#[test]
fn force_does_not_move_a_report_folder_that_holds_the_runs() {
    let d = study("plan-nested", 1);
    let (out, runs) = (d.join("out"), d.join("out/runs"));
    let go = |extra: &[&str]| {
        let mut args = vec!["run".to_string(), d.join("base.kdl").to_str().unwrap().to_string(), "--runs-dir".into(), runs.to_str().unwrap().into(), "--reports-dir".into(), out.to_str().unwrap().into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = ijepa(&args);
        (o.status.success(), text(&o))
    };
    let (ok, t) = go(&[]);
    assert!(ok && out.join("report.md").is_file(), "{t}");
    for only in ["eval-knn-raw-pixels", "report"] {
        let (ok, t) = go(&["--force", "--only", only]);
        assert!(ok && t.contains(&format!("== run {only}")), "{t}");
        assert!(!std::fs::read_dir(&d).unwrap().flatten().any(|e| e.file_name().to_string_lossy().starts_with(".out.old-")), "{t}");
        assert_eq!(pretrain_dirs(&runs).len(), 1, "the pretraining stays where it is");
    }
    let (ok, t) = go(&[]);
    assert!(ok && t.contains("0 stage(s) run"), "nothing trains again: {t}");
}

/// An evaluation of weights its pretraining no longer holds is stale: here the final
/// checkpoint and the manifest's record of it are replaced by another seed's, as `--force`
/// from another file that shares the pretraining leaves them when the weights come out
/// different (the evaluation stayed "done", and a report showed its old number as current).
/// `--dry-run` lists it to run, `run` evaluates again and keeps the old result aside.
#[test]
fn an_evaluation_of_weights_trained_again_is_stale() {
    let d = study("plan-stale-eval", 1);
    std::fs::write(d.join("seed2.kdl"), BASE.replace("EPOCHS", "1").replace("seed 1", "seed 2")).unwrap();
    let go = |file: &str, runs: &str, extra: &[&str]| {
        let (f, r, rep) = (d.join(file), d.join(runs), d.join(format!("{runs}-reports")));
        let mut args = vec!["run", f.to_str().unwrap(), "--runs-dir", r.to_str().unwrap(), "--reports-dir", rep.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = ijepa(&args);
        (o.status.success(), text(&o))
    };
    for (file, runs) in [("base.kdl", "runs"), ("seed2.kdl", "other")] {
        let (ok, t) = go(file, runs, &[]);
        assert!(ok, "{t}");
    }
    let (ours, theirs) = (pretrain_dirs(&d.join("runs")).remove(0), pretrain_dirs(&d.join("other")).remove(0));
    // a field of the manifest's record of the final checkpoint
    let final_record = |run: &Path, field: &str| -> String {
        let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
        let c = m["checkpoints"].as_array().unwrap().iter().find(|c| c["file"] == "final.safetensors").unwrap().clone();
        c[field].as_str().unwrap().to_string()
    };
    let (old, new) = (final_record(&ours, "sha256"), final_record(&theirs, "sha256"));
    assert_ne!(old, new);
    // (and the checksum of its data the manifest records with it)
    let (old_data, new_data) = (final_record(&ours, "data_sha256"), final_record(&theirs, "data_sha256"));
    std::fs::copy(theirs.join("checkpoints/final.safetensors"), ours.join("checkpoints/final.safetensors")).unwrap();
    let text_of = std::fs::read_to_string(ours.join("manifest.json")).unwrap();
    std::fs::write(ours.join("manifest.json"), text_of.replace(&old, &new).replace(&old_data, &new_data)).unwrap();
    let (ok, t) = go("base.kdl", "runs", &["--dry-run"]);
    let line = |t: &str, id: &str| t.lines().find(|l| l.split_whitespace().any(|w| w == id)).unwrap_or_default().to_string();
    assert!(ok && !line(&t, "eval-knn-ijepa").contains("skip") && line(&t, "eval-knn-raw-pixels").contains("skip"), "{t}");
    let (ok, t) = go("base.kdl", "runs", &[]);
    assert!(ok && t.contains("no longer holds"), "{t}");
    let eval = std::fs::read_dir(ours.parent().unwrap()).unwrap().flatten().map(|e| e.path()).find(|p| p.file_name().unwrap().to_string_lossy().starts_with("eval-knn-ijepa-")).unwrap();
    let record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(eval.join("eval.json")).unwrap()).unwrap();
    assert_eq!(record["checkpoint_sha256"], new.as_str());
    let aside: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(eval.join("eval.json.outdated")).unwrap()).unwrap();
    assert_eq!(aside["checkpoint_sha256"], old.as_str());
    let (ok, t) = go("base.kdl", "runs", &[]);
    assert!(ok && t.contains("0 stage(s) run"), "{t}");
    // final weights put in place of the run's own without its manifest saying so (another
    // run's file, copied by hand) are not evaluated as this run's: they were, without a word
    // (any other file: the run's own last training checkpoint)
    let own = std::fs::read(ours.join("checkpoints/final.safetensors")).unwrap();
    std::fs::copy(ours.join("checkpoints/latest.safetensors"), ours.join("checkpoints/final.safetensors")).unwrap();
    let evals = |prefix: &str| std::fs::read_dir(ours.parent().unwrap()).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with(prefix)).count();
    // (refused before anything runs: its data's checksum is not the manifest's; the finished
    // evaluation is left as it is)
    let (ok, t) = go("base.kdl", "runs", &["--force", "--only", "eval"]);
    assert!(!ok && t.contains("is not the file this run wrote") && t.contains("move it aside") && t.contains("another run's weights"), "{t}");
    assert_eq!(evals("eval-knn-ijepa-"), 1, "{t}");
    // (a manifest of an earlier version, without that checksum, written after the file: the
    // evaluation finds it when it hashes the file)
    let m = std::fs::read_to_string(ours.join("manifest.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&m).unwrap();
    for c in v["checkpoints"].as_array_mut().unwrap() {
        c.as_object_mut().unwrap().remove("data_sha256");
    }
    std::fs::write(ours.join("manifest.json"), serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let (ok, t) = go("base.kdl", "runs", &["--force", "--only", "eval"]);
    assert!(!ok && t.contains("is not the file this run wrote") && t.contains("move it aside") && !t.contains("another run's weights"), "{t}");
    // and the evaluation that failed before writing anything leaves no folder of its lock alone
    assert_eq!(evals("eval-knn-ijepa-"), 0, "{t}");
    std::fs::write(ours.join("checkpoints/final.safetensors"), &own).unwrap();
    let (ok, t) = go("base.kdl", "runs", &["--force", "--only", "eval"]);
    assert!(ok, "{t}");
}

#[test]
fn single_experiment_commands_take_a_sweep_point() {
    let o = ijepa(&["masks", "experiments/fmnist-target-scale.kdl", "--batches", "2"]);
    assert!(!o.status.success() && text(&o).contains("choose one with --point (targets-scale-0.075-0.2,"), "{}", text(&o));
    let o = ijepa(&["masks", "experiments/fmnist-target-scale.kdl", "--batches", "2", "--point", "targets-scale-0.15-0.2"]);
    assert!(o.status.success() && text(&o).contains("fmnist-target-scale-targets-scale-0.15-0.2"), "{}", text(&o));
    let o = ijepa(&["masks", "experiments/fmnist-target-scale.kdl", "--point", "nope"]);
    assert!(!o.status.success() && text(&o).contains("no sweep point \"nope\""), "{}", text(&o));
}

/// `ijepa eval --point` keeps a sweep point's baselines where `ijepa run` keeps them, in the
/// study's folder shared by every point (they went to the point's folder, and `run` computed
/// them again); the point's own evaluation goes to the point's folder.
#[test]
fn eval_of_a_sweep_point_shares_the_studys_baselines() {
    let d = study("plan-eval-point", 1);
    let (file, runs) = (d.join("sweep.kdl"), d.join("runs"));
    let point = "targets-scale-0.1-0.2_seed-1";
    let o = ijepa(&["run", file.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap(), "--only", &format!("pretrain/{point}")]);
    assert!(o.status.success(), "{}", text(&o));
    let run = pretrain_dirs(&runs).remove(0);
    let ckpt = run.join("checkpoints/final.safetensors");
    let o = ijepa(&["eval", file.to_str().unwrap(), "--point", point, "--checkpoint", ckpt.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let has = |folder: &str, prefix: &str| std::fs::read_dir(runs.join(folder)).into_iter().flatten().flatten().any(|e| e.file_name().to_string_lossy().starts_with(prefix));
    assert!(has("tiny-sweep", "eval-knn-raw-pixels-") && !has(&format!("tiny-sweep-{point}"), "eval-knn-raw-pixels-"), "{}", text(&o));
    assert!(has(&format!("tiny-sweep-{point}"), "eval-knn-ijepa-"));
    // the plan finds the point's baseline done
    let o = ijepa(&["run", file.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap(), "--dry-run"]);
    // (named by the seed it depends on alone: it was named after the first point of that seed)
    let line = text(&o).lines().find(|l| l.contains("eval-knn-raw-pixels/seed-1 ")).unwrap_or_default().to_string();
    assert!(line.starts_with("skip (done)"), "{}", text(&o));
    // the checkpoint evaluated as another point (another seed, another target scale) would be
    // filed under that point's values in the report's sweep table: refused, naming the point
    // that trained it, and nothing written for the other point
    for other in ["targets-scale-0.1-0.2_seed-2", "targets-scale-0.15-0.2_seed-1"] {
        let o = ijepa(&["eval", file.to_str().unwrap(), "--point", other, "--checkpoint", ckpt.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(1), "{t}");
        assert!(t.contains(&format!("was trained by point `{point}` of this sweep")) && t.contains(&format!("evaluate it with `--point {point}`")), "{t}");
        assert!(!has(&format!("tiny-sweep-{other}"), "eval-"), "{t}");
        // the settings apart as the sweep writes them
        let apart = if other.ends_with("seed-2") { "seed 1 -> 2" } else { "mask.targets.scale 0.1 0.2 -> 0.15 0.2" };
        assert!(t.contains(&format!("its settings against `{other}`'s: {apart})")), "{t}");
    }
    // ... and so is a copy of it outside its run folder (its manifest records the bytes)
    let copy = d.join("copy.safetensors");
    std::fs::copy(&ckpt, &copy).unwrap();
    let other = "targets-scale-0.1-0.2_seed-2";
    let o = ijepa(&["eval", file.to_str().unwrap(), "--point", other, "--checkpoint", copy.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains(&format!("was trained by point `{point}` of this sweep (a copy of a checkpoint of ")), "{t}");
    assert!(!has(&format!("tiny-sweep-{other}"), "eval-"), "{t}");
    // the copy at its own point is evaluated
    let o = ijepa(&["eval", file.to_str().unwrap(), "--point", point, "--checkpoint", copy.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
}

/// Points that share one pretraining (a recipe sweep's MAE points, which read no I-JEPA
/// predictor) each evaluate its checkpoint with `ijepa eval --point`: the refusal of another
/// point's checkpoint is by pretraining, not by setting (the checkpoint's run recorded the
/// first point's predictor depth, which the second point's differs from).
#[test]
fn eval_of_a_point_sharing_its_pretraining_is_not_refused() {
    let d = study("plan-eval-shared", 1);
    let file = d.join("rec.kdl");
    std::fs::write(&file, "experiment \"tiny-r\" {\n    extends \"base.kdl\"\n}\nsweep \"grid\" {\n    vary \"recipe\" \"mae\" \"ijepa\"\n    vary \"predictor.depth\" 1 2\n}\n").unwrap();
    let runs = d.join("runs");
    let o = ijepa(&["run", file.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap(), "--only", "pretrain/recipe-mae_predictor-depth-1"]);
    assert!(o.status.success(), "{}", text(&o));
    let ckpt = pretrain_dirs(&runs).remove(0).join("checkpoints/final.safetensors");
    let o = ijepa(&["eval", file.to_str().unwrap(), "--point", "recipe-mae_predictor-depth-2", "--checkpoint", ckpt.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    // an I-JEPA point did not train it
    let o = ijepa(&["eval", file.to_str().unwrap(), "--point", "recipe-ijepa_predictor-depth-1", "--checkpoint", ckpt.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("was trained by point `recipe-mae_predictor-depth-1` of this sweep"), "{t}");
}

/// The process count is part of a pretraining's identity. `plan` shows the layout of the
/// distributed block (what a launched run uses) and says so; a plain `run --dry-run` (no
/// launcher: one process) uses the folder `plan --world-size 1` shows. Explicit, not a surprise.
#[test]
fn plan_and_run_say_which_process_count_a_folder_is_for() {
    let d = scratch("world");
    let runs = d.join("runs");
    let r = runs.to_str().unwrap();
    let folder = |t: &str| t.lines().find(|l| l.contains("pretrain  [")).and_then(|l| l.split_whitespace().last()).map(str::to_string);
    let planned = ijepa(&["plan", "experiments/quickstart-2ranks.kdl", "--runs-dir", r]);
    let planned = text(&planned);
    assert!(planned.contains("note: planned for 2 processes"), "{planned}");
    let single = text(&ijepa(&["plan", "experiments/quickstart-2ranks.kdl", "--runs-dir", r, "--world-size", "1"]));
    assert!(!single.contains("note: planned"), "{single}");
    let (two, one) = (folder(&planned).unwrap(), folder(&single).unwrap());
    assert_ne!(two, one, "the 2-process and 1-process pretrainings share a folder");
    let dry = text(&ijepa(&["run", "--dry-run", "experiments/quickstart-2ranks.kdl", "--runs-dir", r]));
    assert!(dry.contains(&one) && !dry.contains(&two), "run --dry-run without a launcher uses the 1-process folder {one}: {dry}");
    assert!(dry.contains("asks for 2 processes") && dry.contains("trains alone"), "the dry run warns as the run does: {dry}");
    // a layout given to plan is checked as one written in the file: 200 images less the
    // monitor's 50 over 8 processes leave each less than a batch (`check` refuses that block)
    let f = d.join("small.kdl");
    std::fs::write(&f, "experiment \"small\" {\n    data \"fashion-mnist\" { crop-size 28; batch-size 32; workers 1; limit 200 }\n    encoder width=32 depth=1 heads=2 patch=4\n    predictor depth=1 width=16 heads=2\n    mask \"multi-block\" { min-keep 4 }\n    monitor every=1 images=50\n    epochs 1\n}\n").unwrap();
    let t = text(&ijepa(&["plan", f.to_str().unwrap(), "--runs-dir", r, "--world-size", "8"]));
    assert!(t.contains("less the monitor's 50 shared by 8 processes leave 18 per process, less than one batch of 32"), "{t}");
    let t = text(&ijepa(&["plan", f.to_str().unwrap(), "--runs-dir", r, "--world-size", "2"]));
    assert!(!t.contains("less than one batch"), "{t}");
    // a runs folder that is a file: refused by plan and a dry run as by the run, not planned
    let file = d.join("a-file");
    std::fs::write(&file, "").unwrap();
    for args in [vec!["plan", f.to_str().unwrap(), "--runs-dir", file.to_str().unwrap()], vec!["run", "--dry-run", f.to_str().unwrap(), "--runs-dir", file.to_str().unwrap()]] {
        let o = ijepa(&args);
        assert!(!o.status.success() && text(&o).contains("a-file: a file, not a folder"), "{args:?}: {}", text(&o));
    }
}

/// A diverged MAE or DINO run names the step that diverged as metrics.csv numbers it (the
/// one after its last row), as I-JEPA's does: it named the step before (their schedules count
/// from 0), whose row holds a finite loss.
#[test]
fn a_diverged_run_names_the_step_that_diverged() {
    for (recipe, own) in [
        ("mae", "decoder depth=1 width=16 heads=2 norm-pix-loss=#false\n    mask \"random\" { ratio 0.75 }"),
        ("dino", "dino { out-dim 16; hidden-dim 16; bottleneck-dim 8; local-crops 0; student-temp 1e-37 }"),
    ] {
        let d = scratch(&format!("diverged-{recipe}"));
        std::fs::write(
            d.join("sweep.kdl"),
            format!("experiment \"{recipe}\" {{\n    recipe \"{recipe}\"\n    data \"fashion-mnist\" {{ crop-size 16; batch-size 16; workers 1; limit 128 }}\n    encoder width=32 depth=2 heads=2 patch=4\n    {own}\n    optimizer \"adamw\" {{ lr start=1e30 peak=1e30 final=1e30 warmup-epochs=0; }}\n    epochs 2\n    precision \"fp32\"\n    log-every 1\n}}\n"),
        )
        .unwrap();
        let (ok, t) = run(&d, &[]);
        assert!(!ok && t.contains("training diverged"), "{recipe}: {t}");
        let dir = pretrain_dirs(&d.join("runs")).pop().unwrap();
        let rows = std::fs::read_to_string(dir.join("metrics.csv")).unwrap().lines().count() - 1;
        let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(m["diverged_at"].as_u64(), Some(rows as u64 + 1), "{recipe}: {m}");
        assert!(t.contains(&format!("at step {} (epoch", rows + 1)), "{recipe}: {t}");
    }
}

/// One diverged point of a learning-rate sweep does not stop the study: the other point trains
/// and is evaluated, the report is written with the diverged run as `failed`, and the run ends
/// with an error naming the point. Run again, the diverged point is not trained again (it
/// would diverge at the same step): `plan` says so, and `--force` is what trains it again.
#[test]
fn a_diverged_point_does_not_stop_the_sweep() {
    let d = scratch("diverged");
    std::fs::write(d.join("base.kdl"), BASE.replace("EPOCHS", "1")).unwrap();
    std::fs::write(
        d.join("sweep.kdl"),
        "experiment \"lr\" {\n    extends \"base.kdl\"\n}\nsweep \"grid\" {\n    vary \"optimizer.lr.peak\" 1e-3 1e9\n}\n",
    )
    .unwrap();
    let (ok, t) = run(&d, &[]);
    assert!(!ok, "{t}");
    assert!(t.contains("1 of the 2 pretraining(s) diverged (pretrain/lr-peak-1000000000 at step"), "{t}");
    assert!(t.contains("eval knn") && t.contains("report of"), "{t}");
    // the diverged pretraining ran, and is counted so (it was left out of "N stage(s) run")
    assert!(t.contains(" stage(s) run (1 of them diverged), 0 skipped"), "{t}");
    let report = std::fs::read_to_string(d.join("reports/report.md")).unwrap();
    assert!(report.contains("diverged at step"), "{report}");
    // its manifest says where: the step that diverged, and the steps done before it
    let bad = pretrain_dirs(&d.join("runs")).into_iter().find(|p| p.to_string_lossy().contains("1000000000")).unwrap();
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(bad.join("manifest.json")).unwrap()).unwrap();
    let at = m["diverged_at"].as_u64().unwrap();
    assert!(m["status"] == "failed" && m["steps"].as_u64() == Some(at - 1), "{m}");
    // run again: nothing trains, the same error; the plan shows why
    let (ok, t) = run(&d, &[]);
    assert!(!ok && t.contains("skip pretrain/lr-peak-1000000000: it diverged at step") && !t.contains("== run pretrain"), "{t}");
    // (and is counted as skipped, not as run: "N stage(s) run (1 of them diverged)" said it ran)
    assert!(t.contains("1 stage(s) run, ") && t.contains(" skipped (already done), 1 skipped (diverged in an earlier run)") && !t.contains("of them diverged"), "{t}");
    let o = ijepa(&["plan", d.join("sweep.kdl").to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    assert!(text(&o).contains("diverged at step"), "{}", text(&o));
    // the evaluation of the diverged point asked for alone says why it does not run, counts it,
    // and fails naming the divergence as the whole run does (it succeeded, counted nowhere);
    // the report alone is written with what there is
    let (ok, t) = run(&d, &["--only", "eval-knn-ijepa/lr-peak-1000000000"]);
    assert!(!ok && t.contains("skip eval-knn-ijepa/lr-peak-1000000000: the pretraining it reads diverged"), "{t}");
    assert!(t.contains("0 stage(s) run, 0 skipped (already done), 1 not run (they read a pretraining that diverged)"), "{t}");
    assert!(t.contains("1 of the 2 pretraining(s) diverged (pretrain/lr-peak-1000000000 at step"), "{t}");
    let (ok, t) = run(&d, &["--only", "report"]);
    assert!(ok && t.contains("== run report"), "{t}");
    // --force trains it again (and it diverges again)
    let (ok, t) = run(&d, &["--force", "--only", "pretrain/lr-peak-1000000000"]);
    assert!(!ok && t.contains("== run pretrain/lr-peak-1000000000") && t.contains("diverged"), "{t}");
    // had it trained (its folder stands in for a run that did not diverge: on a GPU a retrain
    // may not), the next run evaluates it and writes the report again, which was partial
    let dirs = pretrain_dirs(&d.join("runs"));
    let (good, bad) = (dirs.iter().find(|p| p.to_string_lossy().contains("0.001")).unwrap(), dirs.iter().find(|p| p.to_string_lossy().contains("1000000000")).unwrap());
    let mut manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(good.join("manifest.json")).unwrap()).unwrap();
    let bad_manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(bad.join("manifest.json")).unwrap()).unwrap();
    // (its own stage's record: one naming the good run's stage is refused as a copy)
    manifest["experiment"] = bad_manifest["experiment"].clone();
    manifest["hash"] = bad_manifest["hash"].clone();
    std::fs::write(bad.join("manifest.json"), manifest.to_string()).unwrap();
    std::fs::create_dir_all(bad.join("checkpoints")).unwrap();
    std::fs::copy(good.join("checkpoints/final.safetensors"), bad.join("checkpoints/final.safetensors")).unwrap();
    let (ok, t) = run(&d, &[]);
    assert!(ok && t.contains("== run eval-knn-ijepa/lr-peak-1000000000") && t.contains("== run report"), "{t}");
    let (ok, t) = run(&d, &[]);
    assert!(ok && t.contains("skip report (done"), "{t}");
    // an evaluation the report read, written again with another result (run again after its
    // folder was removed, the test images changed): the report is stale and written again
    let eval = std::fs::read_dir(d.join("runs/lr-lr-peak-0.001")).unwrap().flatten().map(|e| e.path()).find(|p| p.join("eval.json").is_file()).unwrap();
    let mut record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(eval.join("eval.json")).unwrap()).unwrap();
    record["top1"] = serde_json::json!(12.5);
    std::fs::write(eval.join("eval.json"), record.to_string()).unwrap();
    let (ok, t) = run(&d, &[]);
    assert!(ok && t.contains("== run report") && !t.contains("== run eval"), "{t}");
    let (ok, t) = run(&d, &[]);
    assert!(ok && t.contains("skip report (done"), "{t}");
    // the report covers every experiment of the runs folder: another experiment's run added,
    // edited or deleted there makes it stale too (it was skipped as done, showing the old)
    let other = d.join("runs/zzadded/eval-knn-ijepa-000000000000");
    std::fs::create_dir_all(&other).unwrap();
    record["experiment"] = serde_json::json!("zzadded");
    std::fs::write(other.join("eval.json"), record.to_string()).unwrap();
    let (ok, t) = run(&d, &[]);
    assert!(ok && t.contains("== run report") && !t.contains("== run eval"), "{t}");
    assert!(std::fs::read_to_string(d.join("reports/report.md")).unwrap().contains("zzadded"));
    let (ok, t) = run(&d, &[]);
    assert!(ok && t.contains("skip report (done"), "{t}");
    std::fs::remove_dir_all(d.join("runs/zzadded")).unwrap();
    let (ok, t) = run(&d, &[]);
    assert!(ok && t.contains("== run report"), "{t}");
    assert!(!std::fs::read_to_string(d.join("reports/report.md")).unwrap().contains("zzadded"));
}

/// A sweep over recipes has one random-init baseline per recipe (MAE's initialisation is not
/// I-JEPA's), each with an id of its own: both were `eval-knn-random-init`, and `--only`
/// could not select one.
#[test]
fn a_recipe_sweep_gives_each_random_init_its_own_id() {
    let d = scratch("plan-recipes");
    let f = d.join("rec.kdl");
    std::fs::write(
        &f,
        "experiment \"rec\" {\n    data \"fashion-mnist\" { crop-size 64; limit 128 }\n    encoder width=32 depth=2 heads=2 patch=4\n    predictor depth=1 width=16 heads=2\n    decoder depth=1 width=16 heads=2\n    eval \"knn\" { k 5; baselines \"random-init\" \"raw-pixels\" }\n}\nsweep \"grid\" {\n    vary \"recipe\" \"ijepa\" \"mae\"\n}\n",
    )
    .unwrap();
    let o = ijepa(&["plan", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let ids: Vec<&str> = t.lines().filter_map(|l| l.split("  [").next().filter(|_| l.contains("  [")).map(|s| s.trim_start_matches(|c: char| !c.is_ascii_alphabetic()))).collect();
    let unique: std::collections::BTreeSet<&&str> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "{ids:?}\n{t}");
    assert!(ids.contains(&"eval-knn-random-init/recipe-ijepa") && ids.contains(&"eval-knn-random-init/recipe-mae"), "{ids:?}");
    // the pixels do not depend on the recipe: one stage
    assert_eq!(ids.iter().filter(|i| i.starts_with("eval-knn-raw-pixels")).count(), 1, "{ids:?}");
}

/// A setting inside a recipe's initialisation settings that draws nothing (MAE's
/// `norm-pix-loss`, DINO's `norm-last-layer`) shares one random-init baseline, at the hash a file
/// that does not write it has (each value computed the same features again, and the report
/// listed the baseline twice); a decoder of another depth is still another baseline.
#[test]
fn a_setting_the_initialisation_does_not_read_shares_the_random_init() {
    let d = scratch("plan-init-unread");
    let ids_of = |name: &str, body: &str| -> Vec<String> {
        let f = d.join(format!("{name}.kdl"));
        std::fs::write(&f, body).unwrap();
        let o = ijepa(&["plan", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
        let t = text(&o);
        assert!(o.status.success(), "{t}");
        t.lines().filter(|l| l.contains("eval-knn-random-init")).map(|l| l.trim().to_string()).collect()
    };
    let mae = "experiment \"m\" {\n    recipe \"mae\"\n    data \"fashion-mnist\" { crop-size 16; limit 128 }\n    encoder width=32 depth=2 heads=2 patch=4\n    decoder depth=1 width=16 heads=2\n    eval \"knn\" { k 5; baselines \"random-init\" }\n}\n";
    let dino = "experiment \"m\" {\n    recipe \"dino\"\n    data \"fashion-mnist\" { crop-size 16; limit 128 }\n    encoder width=32 depth=2 heads=2 patch=4\n    dino { local-size 8; out-dim 64 }\n    eval \"knn\" { k 5; baselines \"random-init\" }\n}\n";
    let hash = |line: &str| line.split('[').nth(1).and_then(|r| r.split(']').next()).unwrap_or_default().to_string();
    for (name, file, vary) in [("mae", mae, "vary \"decoder.norm-pix-loss\" #true #false"), ("dino", dino, "vary \"dino.norm-last-layer\" #true #false")] {
        let alone = ids_of(&format!("{name}-alone"), file);
        assert_eq!(alone.len(), 1, "{alone:?}");
        let swept = ids_of(&format!("{name}-swept"), &format!("{file}sweep \"grid\" {{\n    {vary}\n}}\n"));
        assert_eq!(swept.len(), 1, "{name}: {swept:?}");
        assert_eq!(hash(&swept[0]), hash(&alone[0]), "{name}: {swept:?} {alone:?}");
    }
    let deeper = ids_of("mae-depth", &format!("{mae}sweep \"grid\" {{\n    vary \"decoder.depth\" 1 2\n}}\n"));
    assert_eq!(deeper.len(), 2, "{deeper:?}");
}

/// The README's experiment ("An experiment") is `experiments/quickstart.kdl` without its
/// comments: the two plan the same stages, to the hash (the README's copy went stale, without
/// the file's evaluations and report, and no test saw it).
#[test]
fn the_readme_experiment_is_the_quickstart() {
    let d = scratch("readme-quickstart");
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find("```kdl\nexperiment \"quickstart\"").expect("the README's experiment") + "```kdl\n".len();
    let end = start + readme[start..].find("```").unwrap();
    std::fs::write(d.join("readme.kdl"), &readme[start..end]).unwrap();
    let plan = |file: &Path| {
        let o = ijepa(&["plan", file.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o));
        text(&o)
    };
    let shipped = plan(&Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/quickstart.kdl"));
    assert!(shipped.contains("1 pretraining, 9 evaluations, 1 report"), "{shipped}");
    assert_eq!(plan(&d.join("readme.kdl")), shipped);
}
