//! Exact resume: a run killed with SIGKILL at a random step and started again ends with the
//! same final weights (bit for bit) and the same metrics rows (timing columns aside) as an
//! uninterrupted run; crashes during checkpoint writes leave a usable checkpoint.

mod common;
use common::{scratch, watch_stdout};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const EXP: &str = r#"experiment "resume" {
    seed 3
    data "fashion-mnist" { crop-size 32; batch-size 32; workers 2; limit 320 }
    encoder width=64 depth=2 heads=2 patch=4
    predictor depth=1 width=32 heads=2
    mask "multi-block" { min-keep 4 }
    optimizer "adamw" { lr start=2e-4 peak=2e-3 final=1e-5 warmup-epochs=1; }
    epochs 4
    precision "PRECISION"
    device "cpu"
    checkpoint every-steps=3 keep-every=2
    monitor every=1 images=64 k=5
}
"#;

fn command(file: &Path, runs: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ijepa"));
    c.args(["run", file.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    c
}

fn run_to_end(file: &Path, runs: &Path) -> String {
    run_to_end_on(file, runs, None)
}

/// [`run_to_end`] with `IJEPA_CPU_PRODUCTS` set to `products` where given.
fn run_to_end_on(file: &Path, runs: &Path, products: Option<&str>) -> String {
    let mut c = command(file, runs);
    if let Some(p) = products {
        c.env("IJEPA_CPU_PRODUCTS", p);
    }
    let o = c.output().unwrap();
    // stdout, then the warnings (stderr)
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{out}");
    out
}

fn run_folder(runs: &Path) -> PathBuf {
    common::pretrain_in(&runs.join("resume")).expect("a pretraining folder")
}

/// The first `n` columns of every row of a CSV file of the run (leaving out timings).
fn columns(run: &Path, file: &str, n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(run.join(file)).unwrap();
    text.lines().map(|l| l.split(',').take(n).collect::<Vec<_>>().join(",")).collect()
}

/// Metrics rows without the timing columns (ms_per_step, img_per_s and what follows).
fn rows(run: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let n = text.lines().next().unwrap().split(',').position(|c| c == "ms_per_step").expect("a ms_per_step column");
    columns(run, "metrics.csv", n)
}

/// [`EXP`] as an MAE experiment: a decoder instead of the predictor, MAE's random mask.
fn mae_exp(precision: &str) -> String {
    EXP.replace("PRECISION", precision)
        .replace("    seed 3\n", "    recipe \"mae\"\n    seed 3\n")
        .replace("predictor depth=1 width=32 heads=2", "decoder depth=1 width=32 heads=2")
        .replace("mask \"multi-block\" { min-keep 4 }", "mask \"random\" { ratio 0.75 }")
}

/// [`EXP`] as a DINO experiment: multi-crop views, the last layer frozen for the first epoch
/// (a resume must restart its AdamW step count where torch's per-parameter count would be),
/// the student's stochastic depth (a resume must draw what the uninterrupted run drew).
fn dino_exp(precision: &str) -> String {
    EXP.replace("PRECISION", precision)
        .replace("    seed 3\n", "    recipe \"dino\"\n    seed 3\n")
        .replace(
            "predictor depth=1 width=32 heads=2",
            "dino { out-dim 64; hidden-dim 32; bottleneck-dim 16; local-crops 2; local-size 16; freeze-last-layer 1; drop-path-rate 0.3; }",
        )
        .replace("    mask \"multi-block\" { min-keep 4 }\n", "")
}

fn count_rows(run: &Path) -> usize {
    std::fs::read_to_string(run.join("metrics.csv")).map(|t| t.lines().count().saturating_sub(1)).unwrap_or(0)
}

fn resume_equals_uninterrupted(precision: &str) {
    resume_equals_uninterrupted_for(precision, &EXP.replace("PRECISION", precision), 2);
}

/// `encoders`: the encoders the monitor measures (I-JEPA: target and context; MAE: one; DINO:
/// teacher and student).
fn resume_equals_uninterrupted_for(precision: &str, exp: &str, encoders: usize) {
    resume_equals_uninterrupted_on(precision, exp, encoders, None);
}

/// [`resume_equals_uninterrupted_for`] where the uninterrupted run and the killed one use the
/// CPU matrix-product kernel `products` (`IJEPA_CPU_PRODUCTS`) and the resume is left to `auto`
/// (which, by itself, would take the rule's kernel for this CPU).
fn resume_equals_uninterrupted_on(precision: &str, exp: &str, encoders: usize, products: Option<&str>) {
    let d = scratch(&format!("{precision}-{}-{}", exp.len(), products.unwrap_or("default")));
    let file = d.join("resume.kdl");
    std::fs::write(&file, exp).unwrap();
    let (a, b) = (d.join("a"), d.join("b"));
    run_to_end_on(&file, &a, products);
    // the monitor holds 64 of the 320 images out of pretraining
    let total = 4 * (256 / 32);

    // kill at a random step after the first checkpoint (step 3; printed, so a failure can be
    // replayed); a run killed before any checkpoint simply starts over
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as usize;
    let kill_at = 4 + nanos % (total - 10);
    println!("{precision}: killing at step >= {kill_at} of {total}");
    let mut killed = command(&file, &b);
    if let Some(p) = products {
        killed.env("IJEPA_CPU_PRODUCTS", p);
    }
    let mut child = killed.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let t = Instant::now();
    loop {
        // the experiment's folder can exist a moment before the run folder inside it
        let started = std::fs::read_dir(b.join("resume")).is_ok_and(|mut d| d.next().is_some());
        let done = started && count_rows(&run_folder(&b)) >= kill_at;
        if done || t.elapsed() > Duration::from_secs(120) {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let run_b = run_folder(&b);
    let killed_rows = count_rows(&run_b);
    assert!(killed_rows < total, "the run finished before it was killed ({killed_rows} rows)");
    // the manifest still says `running`; the report shows what became of the process
    let status = |dir: &Path| {
        let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
        m["status"].as_str().unwrap().to_string()
    };
    assert_eq!(status(&run_b), "running");
    assert_eq!(ijepa_schema::shown_status(&status(&run_b), &run_b), "killed");
    // its steps are those of its last recorded checkpoint (what a resume starts from; 0 with
    // none recorded yet)
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run_b.join("manifest.json")).unwrap()).unwrap();
    let last = m["checkpoints"].as_array().unwrap().iter().map(|c| c["step"].as_u64().unwrap()).max().unwrap_or(0);
    println!("killed with {last} steps checkpointed");
    assert_eq!(m["steps"].as_u64(), Some(last), "{m}");
    let out = run_to_end_on(&file, &b, products.map(|_| "auto"));
    assert!(out.contains("resuming resume from"), "{out}");
    if let Some(p) = products {
        assert!(out.contains(&format!("CPU matrix products: {p} (the kernel this run last ran on)")), "{out}");
    }
    assert!(out.contains("ended without marking its manifest"), "the resume names the kill: {out}");

    let run_a = run_folder(&a);
    assert_eq!(rows(&run_a), rows(&run_b), "metrics rows differ after resume");
    // the monitor's rows too (seconds aside): one per encoder and epoch, the pixels once
    let monitor = columns(&run_b, "monitor.csv", 6);
    assert_eq!(columns(&run_a, "monitor.csv", 6), monitor, "monitor rows differ after resume");
    // header, the pixels once, every encoder before training and after each of the 4 epochs
    assert_eq!(monitor.len(), 1 + 1 + encoders * 5, "{monitor:?}");
    let fa = std::fs::read(run_a.join("checkpoints/final.safetensors")).unwrap();
    let fb = std::fs::read(run_b.join("checkpoints/final.safetensors")).unwrap();
    assert!(fa == fb, "final weights differ after resume");
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run_b.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["status"], "done");
    assert!(!manifest["resumed_at"].as_array().unwrap().is_empty());
    if let Some(p) = products {
        assert_eq!(manifest["cpu_products"], p, "{manifest}");
    }
    for kept in ["epoch-0002.safetensors", "epoch-0004.safetensors", "latest.safetensors"] {
        assert!(run_b.join("checkpoints").join(kept).exists(), "{kept} missing");
    }
    // a finished run is not repeated
    let again = run_to_end(&file, &b);
    assert!(again.contains("already done"), "{again}");
}

#[test]
fn resume_after_kill_is_bit_identical_fp32() {
    resume_equals_uninterrupted("fp32");
}

/// A resumed run keeps the CPU matrix-product kernel its manifest records, whatever the
/// resuming process would measure: begun on each kernel (fixed), resumed with `auto`, it ends
/// bit for bit as an uninterrupted run on the kernel it began with (on any CPU, at least one of
/// the two is not the one `auto` takes there).
#[test]
fn a_resume_keeps_the_matrix_product_kernel_it_began_with() {
    for p in ["blas", "onednn"] {
        resume_equals_uninterrupted_on("fp32", &EXP.replace("PRECISION", "fp32"), 2, Some(p));
    }
}

/// A CPU run whose manifest predates `cpu_products` (when BLAS was all there was) goes on on
/// BLAS, whatever `auto` would take here.
#[test]
fn a_run_recorded_before_the_kernel_field_goes_on_on_blas() {
    let d = scratch("before-the-kernel-field");
    let file = d.join("resume.kdl");
    std::fs::write(&file, EXP.replace("PRECISION", "fp32")).unwrap();
    let runs = d.join("runs");
    run_to_end_on(&file, &runs, Some("blas"));
    let run = run_folder(&runs);
    let path = run.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(m["cpu_products"], "blas", "{m}");
    m.as_object_mut().unwrap().remove("cpu_products");
    std::fs::write(&path, m.to_string()).unwrap();
    // (a finished run whose final weights are gone writes them again from its last checkpoint)
    std::fs::remove_file(run.join("checkpoints/final.safetensors")).unwrap();
    let out = run_to_end_on(&file, &runs, Some("auto"));
    assert!(out.contains("CPU matrix products: blas (the kernel this run last ran on)"), "{out}");
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(m["cpu_products"], "blas", "{m}");
}

#[test]
fn resume_after_kill_is_bit_identical_bf16() {
    resume_equals_uninterrupted("bf16");
}

/// MAE resumes like I-JEPA: its masking noise is keyed by (seed, epoch, step, sample), so the
/// resumed steps draw what the uninterrupted run drew.
#[test]
fn mae_resume_after_kill_is_bit_identical_fp32() {
    resume_equals_uninterrupted_for("fp32", &mae_exp("fp32"), 1);
}

/// DINO resumes bit for bit: its views are keyed like every crop, the teacher, centre and
/// optimiser are in the checkpoint, and the frozen last layer's step count is restored.
#[test]
fn dino_resume_after_kill_is_bit_identical_fp32() {
    resume_equals_uninterrupted_for("fp32", &dino_exp("fp32"), 2);
}

/// A resumed run's summary is the run's: its first losses are the first rows `metrics.csv`
/// records (one every `log-every` steps), as an uninterrupted run's are (they were every
/// step's there, so the two said other first losses), and its time says it is this attempt's.
#[test]
fn a_resumed_run_sums_up_as_an_uninterrupted_one() {
    let d = scratch("summary");
    let file = d.join("resume.kdl");
    std::fs::write(&file, EXP.replace("PRECISION", "fp32").replace("keep-every=2", "keep-every=1").replace("    epochs 4\n", "    epochs 4\n    log-every 3\n")).unwrap();
    let runs = d.join("runs");
    let done_line = |out: &str| out.lines().find(|l| l.starts_with("done: ")).map(|l| l.to_string()).unwrap_or_else(|| panic!("no done line: {out}"));
    let losses = |line: &str| line.split("; loss ").nth(1).and_then(|l| l.split("; checkpoint").next()).unwrap().to_string();
    let first = done_line(&run_to_end(&file, &runs));
    let run = run_folder(&runs);
    let manifest = |run: &Path| -> serde_json::Value { serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap() };
    let final_loss = manifest(&run)["final_loss"].clone();
    // stopped after an epoch (as a run stopped there leaves it)
    let stop_after = |run: &Path, epoch: usize| {
        let mut m = manifest(run);
        m["status"] = "interrupted".into();
        m["checkpoints"] = serde_json::json!([]);
        std::fs::write(run.join("manifest.json"), m.to_string()).unwrap();
        std::fs::copy(run.join(format!("checkpoints/epoch-{epoch:04}.safetensors")), run.join("checkpoints/latest.safetensors")).unwrap();
    };
    let stop_after_epoch_2 = |run: &Path| stop_after(run, 2);
    stop_after_epoch_2(&run);
    let out = run_to_end(&file, &runs);
    assert!(out.contains("resuming resume from"), "{out}");
    let resumed = done_line(&out);
    assert_eq!(losses(&resumed), losses(&first), "{first}\n{resumed}");
    assert!(resumed.starts_with("done: 32 steps, the last 16 in ") && resumed.contains(" s (this attempt; ") && !first.contains("this attempt"), "{resumed}");
    assert_eq!(manifest(&run)["final_loss"], final_loss);
    // a run shorter than its log-every logs no row: its summary is of its steps (it was -0)
    std::fs::write(&file, std::fs::read_to_string(&file).unwrap().replace("log-every 3", "log-every 100")).unwrap();
    let short = done_line(&run_to_end(&file, &d.join("short")));
    let fl = manifest(&run_folder(&d.join("short")))["final_loss"].as_f64().unwrap();
    assert!(fl > 0.0 && !short.contains("-0.0000"), "{short} {fl}");
    // ... of the steps, none recorded (it said "first 10 recorded"); the run is warned, and the
    // warning kept with it for the report, which draws no curve of it
    assert!(short.contains(" steps) -> ") && !short.contains("recorded"), "{short}");
    let kept = manifest(&run_folder(&d.join("short")))["setting_warnings"].to_string();
    assert!(kept.contains("log-every 100 is more than the run's 32 steps"), "{kept}");
    // resumed with a longer log-every, which logs no row after the checkpoint: its final loss is
    // of its last steps, not of the rows before the checkpoint (the loss there, with a done
    // run's 32 steps beside it), and no warning says metrics.csv records no step
    stop_after_epoch_2(&run);
    let out = run_to_end(&file, &runs);
    let line = done_line(&out);
    assert!(out.contains("resuming resume from") && line.contains(" steps, those before the resume as recorded) -> "), "{out}");
    let rows: Vec<f64> = std::fs::read_to_string(run.join("metrics.csv")).unwrap().lines().skip(1).map(|l| l.split(',').nth(2).unwrap().parse().unwrap()).collect();
    let window = ijepa_schema::final_loss_window(rows.len());
    let at_checkpoint = rows[rows.len() - window..].iter().sum::<f64>() / window as f64;
    let resumed = manifest(&run)["final_loss"].as_f64().unwrap();
    assert!((resumed - at_checkpoint).abs() > 1e-9 && rows.len() < 32, "{resumed} {at_checkpoint} {rows:?}");
    // (the resume is exact: the loss of the last steps is the uninterrupted run's at this
    // log-every, `short`'s)
    assert_eq!(resumed, fl, "{line}");
    assert!(!manifest(&run)["setting_warnings"].to_string().contains("log-every"), "{}", manifest(&run));
    // resumed with a shorter log-every than its rows were written at: no row is lost (it said
    // "the rows between are lost" of the steps after the last row of log-every 7, where
    // log-every 2 would have written one); a file cut short still says so
    let set_log_every = |n: usize| {
        let text = std::fs::read_to_string(&file).unwrap();
        let old = text.lines().find(|l| l.trim_start().starts_with("log-every")).unwrap().to_string();
        std::fs::write(&file, text.replace(&old, &format!("    log-every {n}"))).unwrap();
    };
    set_log_every(7);
    stop_after_epoch_2(&run);
    run_to_end(&file, &runs);
    let steps = |run: &Path| -> Vec<u64> { std::fs::read_to_string(run.join("metrics.csv")).unwrap().lines().skip(1).map(|l| l.split(',').next().unwrap().parse().unwrap()).collect() };
    assert_eq!(steps(&run), [3, 6, 9, 12, 15, 21, 28]);
    set_log_every(2);
    stop_after(&run, 3);
    let out = run_to_end(&file, &runs);
    assert!(out.contains("resuming resume from") && !out.contains("lost"), "{out}");
    let mut rows = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    rows.truncate(rows.find("\n12,").unwrap() + 1);
    std::fs::write(run.join("metrics.csv"), rows).unwrap();
    stop_after(&run, 3);
    let out = run_to_end(&file, &runs);
    assert!(out.contains("metrics.csv ends at step 9 and the checkpoint is at step 24: the rows between are lost (the weights are not)"), "{out}");
    // a run whose log-every (100) wrote no row before its checkpoint, resumed with log-every 1:
    // none lost either (its manifest records the log-every it wrote at)
    let short_run = run_folder(&d.join("short"));
    stop_after(&short_run, 2);
    set_log_every(1);
    let out = run_to_end(&file, &d.join("short"));
    assert!(out.contains("resuming resume from") && !out.contains("lost"), "{out}");
    assert_eq!(manifest(&short_run)["log_every"], 1);
    // stopped within its last log-every steps (log-every 11: rows 11 and 22, the checkpoint at
    // 24, no row after it): summed up by its rows as the uninterrupted run was (it mixed the
    // two rows with the steps after the resume, and called them "steps")
    set_log_every(11);
    let eleven = d.join("eleven");
    run_to_end(&file, &eleven);
    let run11 = run_folder(&eleven);
    let whole = manifest(&run11)["final_loss"].clone();
    stop_after(&run11, 3);
    let line = done_line(&run_to_end(&file, &eleven));
    assert_eq!(manifest(&run11)["final_loss"], whole, "{line}");
    assert!(line.contains(" recorded) -> "), "{line}");
    // a finished run that writes its final weights again with no row to read (log-every 100
    // wrote none) and no step to train: its final loss stays the one recorded (it became -0)
    set_log_every(100);
    let again = d.join("again");
    run_to_end(&file, &again);
    let done_run = run_folder(&again);
    let recorded = manifest(&done_run)["final_loss"].as_f64().unwrap();
    std::fs::remove_file(done_run.join("checkpoints/final.safetensors")).unwrap();
    let line = done_line(&run_to_end(&file, &again));
    assert!(line.contains("no loss recorded") && !line.contains("-0.0000"), "{line}");
    assert_eq!(manifest(&done_run)["final_loss"].as_f64(), Some(recorded));
}

/// A checkpoint that cannot be written (here past the file-size limit: EFBIG, as a full disk
/// gives ENOSPC) fails the run naming the file, and its manifest counts the steps as far as
/// they are checkpointed, where a resume starts (it counted the steps trained, 4, where none
/// was saved).
#[test]
fn a_checkpoint_that_cannot_be_written_fails_the_run_at_its_saved_steps() {
    use std::os::unix::process::CommandExt;
    let d = scratch("efbig");
    let file = d.join("resume.kdl");
    std::fs::write(&file, EXP.replace("PRECISION", "fp32").replace("epochs 4", "epochs 2")).unwrap();
    let runs = d.join("runs");
    let mut c = command(&file, &runs);
    // SAFETY: signal(2) and setrlimit(2) only, between fork and exec
    unsafe {
        c.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit { rlim_cur: 96 << 10, rlim_max: 96 << 10 };
            libc::setrlimit(libc::RLIMIT_FSIZE, &limit);
            Ok(())
        });
    }
    let o = c.output().unwrap();
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(!o.status.success() && out.contains("writing the checkpoint of step 3") && out.contains("latest.safetensors"), "{out}");
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run_folder(&runs).join("manifest.json")).unwrap()).unwrap();
    assert_eq!((m["status"].as_str(), m["steps"].as_u64()), (Some("failed"), Some(0)), "{m}");
}

#[test]
fn crash_during_a_checkpoint_write_leaves_the_previous_one_usable() {
    let d = scratch("crash");
    let file = d.join("resume.kdl");
    std::fs::write(&file, EXP.replace("PRECISION", "fp32").replace("epochs 4", "epochs 2")).unwrap();
    let runs = d.join("runs");
    run_to_end(&file, &runs);
    let run = run_folder(&runs);
    // pretend the run was interrupted in the middle of writing a newer checkpoint: the manifest
    // says running, and a torn temporary file lies beside the intact latest checkpoint
    let mpath = run.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&mpath).unwrap()).unwrap();
    m["status"] = "running".into();
    std::fs::write(&mpath, serde_json::to_string(&m).unwrap()).unwrap();
    let latest = run.join("checkpoints/latest.safetensors");
    let bytes = std::fs::read(&latest).unwrap();
    // (the writer's temporary file is `.latest.safetensors.tmp`; also a plain `.tmp` name)
    std::fs::write(run.join("checkpoints/.latest.safetensors.tmp"), &bytes[..bytes.len() / 3]).unwrap();
    std::fs::write(run.join("checkpoints/latest.safetensors.tmp"), &bytes[..bytes.len() / 3]).unwrap();
    let out = run_to_end(&file, &runs);
    assert!(out.contains("resuming"), "{out}");

    // monitor.csv lost: said (it started again without a word, the check against epoch 0
    // quietly off), and the pixels' row, which no weights change, is measured again
    let pixels_row = |text: &str| text.lines().find(|l| l.split(',').nth(2) == Some("pixels")).map(|l| l.split(',').take(6).collect::<Vec<_>>().join(","));
    let whole = std::fs::read_to_string(run.join("monitor.csv")).unwrap();
    let before = pixels_row(&whole).expect("a pixels row");
    std::fs::remove_file(run.join("monitor.csv")).unwrap();
    m["status"] = "running".into();
    std::fs::write(&mpath, serde_json::to_string(&m).unwrap()).unwrap();
    let out = run_to_end(&file, &runs);
    assert!(out.contains("monitor.csv is missing: it starts again from its header") && out.contains("the check that the encoders learn"), "{out}");
    let text = std::fs::read_to_string(run.join("monitor.csv")).unwrap();
    assert_eq!(pixels_row(&text).as_deref(), Some(before.as_str()), "{text}");
    // (the whole file again, for the checks below)
    std::fs::write(run.join("monitor.csv"), whole).unwrap();

    // another run's latest (it verifies on its own) is not this stage's, at an earlier step
    // (1 epoch) or a later one than the manifest recorded (6 epochs; a crash after a write
    // can leave a newer own file): the run resumes from its newest kept checkpoint, and says
    // why and which (a later one was resumed into a mixed run)
    for epochs in [1, 6] {
        let other = d.join(format!("other-{epochs}.kdl"));
        std::fs::write(&other, EXP.replace("PRECISION", "fp32").replace("epochs 4", &format!("epochs {epochs}"))).unwrap();
        let other_runs = d.join(format!("runs-{epochs}"));
        run_to_end(&other, &other_runs);
        m["status"] = "running".into();
        std::fs::write(&mpath, serde_json::to_string(&m).unwrap()).unwrap();
        std::fs::copy(run_folder(&other_runs).join("checkpoints/latest.safetensors"), &latest).unwrap();
        let o = command(&file, &runs).output().unwrap();
        let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(o.status.success(), "{out}");
        assert!(out.contains("latest.safetensors is unusable") && out.contains("written by another pretraining"), "{epochs}: {out}");
        assert!(out.contains("from ") && out.contains("epoch-0002.safetensors at step"), "{epochs}: {out}");
    }

    // a torn latest checkpoint (not via our writer): a warning naming the cause, and the run
    // resumes from the newest kept checkpoint that verifies
    m["status"] = "running".into();
    std::fs::write(&mpath, serde_json::to_string(&m).unwrap()).unwrap();
    std::fs::write(&latest, &bytes[..bytes.len() / 2]).unwrap();
    // (the dry run says where the run resumes: the kept checkpoint, not the step latest's
    // header names)
    let dry = |runs: &Path| {
        let o = command(&file, runs).arg("--dry-run").output().unwrap();
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    };
    let said = dry(&runs);
    let line = said.lines().find(|l| l.starts_with("resume")).unwrap_or_else(|| panic!("{said}"));
    assert!(line.ends_with("(from step 16: checkpoints/epoch-0002.safetensors)"), "{said}");
    let o = command(&file, &runs).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("latest.safetensors is unusable") && (err.contains("truncated") || err.contains("corrupt")), "{err}");
    assert!(err.contains("resuming from") && !err.contains("panicked"), "{err}");
    // a deleted latest: the newest kept checkpoint, not step 0
    let monitor_rows = std::fs::read_to_string(run.join("monitor.csv")).unwrap().lines().count();
    std::fs::write(&mpath, serde_json::to_string(&m).unwrap()).unwrap();
    std::fs::remove_file(&latest).unwrap();
    // (the dry run said "run" of it: `latest` is gone, and the run resumes from a kept one)
    let said = dry(&runs);
    let line = said.lines().find(|l| l.starts_with("resume")).unwrap_or_else(|| panic!("{said}"));
    assert!(line.ends_with("(from step 16: checkpoints/epoch-0002.safetensors)"), "{said}");
    let o = command(&file, &runs).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("latest.safetensors is unusable (") && err.contains("it is missing"), "{err}");
    assert!(err.contains("resuming from") && err.contains("epoch-0002.safetensors"), "{err}");
    // nothing verifies: latest is set aside and the run starts over, its monitor rows with it
    std::fs::write(&mpath, serde_json::to_string(&m).unwrap()).unwrap();
    for f in std::fs::read_dir(run.join("checkpoints")).unwrap() {
        let p = f.unwrap().path();
        let b = std::fs::read(&p).unwrap();
        std::fs::write(&p, &b[..b.len() / 2]).unwrap();
    }
    let said = dry(&runs);
    assert!(said.lines().any(|l| l.starts_with("run ") && l.contains("pretrain")), "{said}");
    assert!(said.contains("no kept checkpoint verifies: the run starts it over from step 0"), "{said}");
    let o = command(&file, &runs).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("no kept checkpoint verifies") && err.contains("starts over"), "{err}");
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&mpath).unwrap()).unwrap();
    assert_eq!(m["status"], "done");
    assert_eq!(std::fs::read_to_string(run.join("monitor.csv")).unwrap().lines().count(), monitor_rows, "no earlier attempt's rows");

    // the checkpoints folder deleted under a run that recorded one: said, and it starts over
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&mpath).unwrap()).unwrap();
    m["status"] = "running".into();
    std::fs::write(&mpath, serde_json::to_string(&m).unwrap()).unwrap();
    std::fs::remove_dir_all(run.join("checkpoints")).unwrap();
    let o = command(&file, &runs).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("latest.safetensors is missing (the manifest records it at step") && err.contains("starts over from step 0"), "{err}");
    assert!(run.join("checkpoints/final.safetensors").is_file(), "{err}");

    // a lost config.json of a finished run is written again (the report and export read it)
    std::fs::remove_file(run.join("config.json")).unwrap();
    let out = run_to_end(&file, &runs);
    assert!(out.contains("config.json was missing: written again") && run.join("config.json").is_file(), "{out}");
    // ... as is a damaged one (cut short: the report left the run out, and every run skipped
    // it as done), the old one kept beside
    let config = std::fs::read_to_string(run.join("config.json")).unwrap();
    std::fs::write(run.join("config.json"), &config[..config.len() / 2]).unwrap();
    let out = run_to_end(&file, &runs);
    assert!(out.contains("config.json is not readable (") && out.contains("config.json.unreadable, written again"), "{out}");
    assert_eq!(std::fs::read_to_string(run.join("config.json")).unwrap(), config);
    // (JSON that holds no settings is no config either)
    std::fs::write(run.join("config.json"), "[]").unwrap();
    let out = run_to_end(&file, &runs);
    assert!(out.contains("config.json is not readable (not a JSON object)") && out.contains("config.json.unreadable.2, written again"), "{out}");
    assert_eq!(std::fs::read_to_string(run.join("config.json")).unwrap(), config);
    // a folder in the manifest's place: set aside as a damaged one (the run refused to write
    // over it at its end)
    let kept = std::fs::read_to_string(&mpath).unwrap();
    std::fs::remove_file(&mpath).unwrap();
    std::fs::create_dir(&mpath).unwrap();
    let o = command(&file, &runs).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && err.contains("manifest.json is not readable (is a folder, not a file)") && run.join("manifest.json.unreadable").is_dir(), "{err}");
    std::fs::remove_dir(run.join("manifest.json.unreadable")).unwrap();
    std::fs::write(&mpath, kept).unwrap();
    // a damaged manifest: kept beside, the run goes on from its checkpoint under a new one
    std::fs::write(&mpath, "{ not json").unwrap();
    let o = command(&file, &runs).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("manifest.json is not readable") && run.join("manifest.json.unreadable").is_file(), "{err}");
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&mpath).unwrap()).unwrap();
    assert_eq!(m["status"], "done");
}

/// One process per stage folder: a second `ijepa run` of the same experiment into the same runs
/// folder while the first trains is refused with the holder named, and the first run loses
/// nothing (every metrics row, a done manifest). The lock of a SIGKILLed run never blocks: the
/// resume tests above run again into the folder of a killed process.
#[test]
fn a_second_run_on_a_live_stage_folder_is_refused() {
    let d = scratch("lock");
    let file = d.join("resume.kdl");
    std::fs::write(&file, EXP.replace("PRECISION", "fp32")).unwrap();
    let runs = d.join("runs");
    let total = 4 * (256 / 32);
    let first = command(&file, &runs).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let t = Instant::now();
    while !(std::fs::read_dir(runs.join("resume")).is_ok_and(|mut d| d.next().is_some()) && count_rows(&run_folder(&runs)) >= 2) {
        assert!(t.elapsed() < Duration::from_secs(120), "the first run did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    let second = command(&file, &runs).output().unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "the second run was let in: {err}");
    assert!(err.contains("is in use by another process") && err.contains(&format!("pid {}", first.id())), "{err}");
    let o = first.wait_with_output().unwrap();
    assert!(o.status.success(), "the first run failed");
    let run = run_folder(&runs);
    assert_eq!(count_rows(&run), total, "metrics rows were lost");
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["status"], "done");
    assert!(run_to_end(&file, &runs).contains("already done"));
}

fn flip_data_byte(path: &Path, out: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let n = bytes.len();
    bytes[n - 101] ^= 0x10; // inside the last tensor's data
    std::fs::write(out, bytes).unwrap();
}

/// Every checkpoint carries the checksum of its data and every reader verifies it and refuses
/// non-finite tensors, naming the tensor: `ijepa eval` and `ijepa export` of a flipped or NaN
/// `final`, resume of a corrupt `latest` (which falls back to the newest kept checkpoint that
/// verifies, with a warning). The manifest lists `final` with its SHA-256.
#[test]
fn weights_are_verified_by_every_reader() {
    let d = scratch("verified");
    let file = d.join("resume.kdl");
    let exp = EXP.replace("PRECISION", "fp32").replace("epochs 4", "epochs 2").replace("keep-every=2", "keep-every=1");
    std::fs::write(&file, exp.replace("    monitor every=1 images=64 k=5\n", "    monitor every=1 images=64 k=5\n    eval \"knn\" { k 5 }\n")).unwrap();
    let runs = d.join("runs");
    run_to_end(&file, &runs);
    let run = std::fs::read_dir(runs.join("resume"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("pretrain-"))
        .unwrap();
    let fin = run.join("checkpoints/final.safetensors");
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    let rec = manifest["checkpoints"].as_array().unwrap().iter().find(|c| c["file"] == "final.safetensors").expect("final in the manifest");
    let sha_of = |p: &Path| {
        use sha2::Digest;
        sha2::Sha256::digest(std::fs::read(p).unwrap()).iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    assert_eq!(rec["sha256"].as_str().unwrap(), sha_of(&fin));
    // a finished run whose final weights are gone: `plan` no longer calls it done, and `run`
    // writes them again from the last checkpoint (the same bytes) without training a step
    let original = std::fs::read(&fin).unwrap();
    let metrics_before = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    // after `damage` to the final weights: `plan` says the run resumes at its last step, and
    // `run` says `says` and writes them again (the same bytes) without training a step
    let written_again = |damage: &dyn Fn(), says: &[&str]| {
        damage();
        let o = Command::new(env!("CARGO_BIN_EXE_ijepa")).args(["plan", file.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]).output().unwrap();
        let plan = String::from_utf8_lossy(&o.stdout);
        let pretrain_line = plan.lines().find(|l| l.contains("pretrain  [")).unwrap_or_default();
        assert!(pretrain_line.contains(&format!("resumes at step {}", manifest["steps"])), "{plan}");
        let out = run_to_end(&file, &runs);
        assert!(says.iter().all(|s| out.contains(s)), "{says:?}: {out}");
        assert_eq!(std::fs::read(&fin).unwrap(), original, "final weights written again differ");
        assert_eq!(std::fs::read_to_string(run.join("metrics.csv")).unwrap(), metrics_before, "steps were trained again");
    };
    written_again(&|| std::fs::remove_file(&fin).unwrap(), &["is marked done", "final.safetensors is missing"]);
    // ... and so are final weights cut short (an interrupted copy of the folder): `plan` called
    // the run done and its evaluations failed on the file; now it is kept aside and written again
    written_again(&|| std::fs::write(&fin, &original[..original.len() / 2]).unwrap(), &["shorter than its header says", "final.safetensors.truncated", "final.safetensors is unusable"]);
    assert_eq!(std::fs::read(run.join("checkpoints/final.safetensors.truncated")).unwrap().len(), original.len() / 2);
    std::fs::remove_file(run.join("checkpoints/final.safetensors.truncated")).unwrap();
    // ... and an empty one (the run was "done" over it, its evaluations skipped)
    written_again(&|| std::fs::write(&fin, b"").unwrap(), &["is no safetensors file", "final.safetensors.unreadable", "final.safetensors is unusable"]);
    std::fs::remove_file(run.join("checkpoints/final.safetensors.unreadable")).unwrap();
    // ... and a safetensors file of no tensor (a header alone: "done", and its evaluations
    // failed on it)
    written_again(&|| tch::Tensor::write_safetensors(&Vec::<(String, tch::Tensor)>::new(), &fin).unwrap(), &["no tensor in it", "final.safetensors.unreadable"]);
    std::fs::remove_file(run.join("checkpoints/final.safetensors.unreadable")).unwrap();
    // the checkpoints written in the background are each recorded once on disk, with the
    // SHA-256 of the file as it stands (the latest record is the last epoch's, whose kept copy
    // holds the same bytes), and no temporary file is left
    let records = manifest["checkpoints"].as_array().unwrap();
    let last_record = |name: &str| records.iter().rev().find(|c| c["file"] == name).unwrap_or_else(|| panic!("{name} not in {records:?}"));
    for name in ["latest.safetensors", "epoch-0001.safetensors", "epoch-0002.safetensors"] {
        assert_eq!(last_record(name)["sha256"].as_str().unwrap(), sha_of(&run.join("checkpoints").join(name)), "{name}");
    }
    assert_eq!(last_record("latest.safetensors")["sha256"], last_record("epoch-0002.safetensors")["sha256"]);
    assert_eq!(last_record("latest.safetensors")["step"], manifest["steps"]);
    for f in std::fs::read_dir(run.join("checkpoints")).unwrap() {
        let name = f.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".tmp"), "{name} left behind");
        assert!(records.iter().any(|c| c["file"] == name.as_str()), "{name} is not in the manifest");
    }
    // a run killed between writing `latest` and recording it: the manifest's record is of an
    // older step, and `plan` says where a resume starts, the file's own newer step (it said
    // the record's)
    let manifest_text = std::fs::read_to_string(run.join("manifest.json")).unwrap();
    let mut stale = manifest.clone();
    stale["status"] = "running".into();
    for c in stale["checkpoints"].as_array_mut().unwrap().iter_mut().filter(|c| c["file"] == "latest.safetensors") {
        c["step"] = 1.into();
    }
    std::fs::write(run.join("manifest.json"), stale.to_string()).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_ijepa")).args(["plan", file.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]).output().unwrap();
    let plan = String::from_utf8_lossy(&o.stdout);
    assert!(plan.lines().any(|l| l.contains("pretrain  [") && l.contains(&format!("resumes at step {}", manifest["steps"]))), "{plan}");
    std::fs::write(run.join("manifest.json"), manifest_text).unwrap();

    let run_cmd = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_ijepa")).args(args).output().unwrap();
        (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
    };
    let s = |p: &Path| p.to_str().unwrap().to_string();
    // flipped bytes: refused by eval and export
    let flipped = d.join("flipped.safetensors");
    flip_data_byte(&fin, &flipped);
    let (ok, out) = run_cmd(&["export", &s(&flipped), "--format", "official", "--heads", "2", "--out", &s(&d.join("x.safetensors"))]);
    assert!(!ok && out.contains("checksum mismatch") && out.contains("flipped.safetensors"), "{out}");
    assert!(!d.join("x.safetensors").exists());
    let (ok, out) = run_cmd(&["eval", &s(&file), "--checkpoint", &s(&flipped), "--runs-dir", &s(&d.join("ev"))]);
    assert!(!ok && out.contains("checksum mismatch"), "{out}");
    // a NaN in a file without a checksum (written by other tools): refused, naming the tensor
    let mut tensors = tch::Tensor::read_safetensors(&fin).unwrap();
    let (name, t) = tensors.iter_mut().find(|(n, _)| n == "target_encoder.blocks.0.attn.qkv.weight").unwrap();
    let _ = t.get(0).get(0).fill_(f64::NAN);
    let name = name.clone();
    let nan = d.join("nan.safetensors");
    tch::Tensor::write_safetensors(&tensors, &nan).unwrap();
    let (ok, out) = run_cmd(&["export", &s(&nan), "--format", "official", "--heads", "2", "--out", &s(&d.join("y.safetensors"))]);
    assert!(!ok && out.contains(&format!("`{name}` has 1 non-finite")), "{out}");
    let (ok, out) = run_cmd(&["eval", &s(&file), "--checkpoint", &s(&nan), "--runs-dir", &s(&d.join("ev"))]);
    assert!(!ok && out.contains("non-finite"), "{out}");
    // the intact file goes through export
    let (ok, out) = run_cmd(&["export", &s(&fin), "--format", "official", "--heads", "2", "--out", &s(&d.join("z.safetensors"))]);
    assert!(ok, "{out}");

    // a corrupt latest of an interrupted run: resume falls back to the newest kept checkpoint
    let mpath = run.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&mpath).unwrap()).unwrap();
    m["status"] = "running".into();
    std::fs::write(&mpath, serde_json::to_string(&m).unwrap()).unwrap();
    let latest = run.join("checkpoints/latest.safetensors");
    flip_data_byte(&latest, &latest);
    let o = command(&file, &runs).output().unwrap();
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{out}");
    assert!(out.contains("latest.safetensors is unusable") && out.contains("resuming from") && out.contains("epoch-0002.safetensors"), "{out}");
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&mpath).unwrap()).unwrap();
    assert_eq!(m["status"], "done");

    // a changed digit in the position the file records (metadata, outside the tensors'
    // checksum): a step that does not add up resumed on other schedules (110 read as 910), an
    // epoch past the end wrote the weights it held as the final ones (`Position::impossible`);
    // both are damage, and the run falls back to its newest kept checkpoint that holds a
    // possible position
    let good = std::fs::read(&latest).unwrap();
    for (key, change) in [("global_step", 9u64), ("epoch", 7)] {
        let mut running = m.clone();
        running["status"] = "running".into();
        std::fs::write(&mpath, serde_json::to_string(&running).unwrap()).unwrap();
        std::fs::write(&latest, &good).unwrap();
        set_position_digit(&latest, key, change);
        let o = command(&file, &runs).output().unwrap();
        let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(o.status.success(), "{key}: {out}");
        let at = if key == "epoch" { "step 16, epoch 7," } else { "step 96, epoch 2," };
        assert!(out.contains("latest.safetensors is unusable (") && out.contains(&format!("its position ({at} step 0 of the epoch) does not add up at 8 steps an epoch")), "{key}: {out}");
        assert!(out.contains("resuming from") && out.contains("epoch-0002.safetensors"), "{key}: {out}");
        let now: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&mpath).unwrap()).unwrap();
        assert_eq!((&now["status"], &now["steps"]), (&m["status"], &m["steps"]), "{key}: done at the run's own steps");
    }
}

/// Sets the first digit of `key` in the position a checkpoint's header records to `digit`
/// (the header keeps its length: the file reads as a valid checkpoint).
fn set_position_digit(path: &Path, key: &str, digit: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    let needle = format!("\\\"{key}\\\":");
    let at = bytes.windows(needle.len()).position(|w| w == needle.as_bytes()).unwrap_or_else(|| panic!("no {needle} in the header")) + needle.len();
    assert!(bytes[at].is_ascii_digit() && bytes[at] != b'0' + digit as u8, "{}", bytes[at] as char);
    bytes[at] = b'0' + digit as u8;
    std::fs::write(path, bytes).unwrap();
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]).status().unwrap().success();
    assert!(ok, "kill -{sig} {pid}");
}

/// SIGINT and SIGTERM stop a run at a step boundary with a checkpoint, the manifest says
/// `interrupted`, the exit status is 128 + the signal, the message says how to resume, and
/// the resumed run ends bit-identical to an uninterrupted one. A second signal stops at once.
/// A closed stdout (`ijepa run ... | head -1`) never stops training.
#[test]
fn signals_stop_cleanly_and_a_closed_stdout_does_not() {
    let d = scratch("signals");
    let file = d.join("resume.kdl");
    std::fs::write(&file, EXP.replace("PRECISION", "fp32")).unwrap();
    let reference = d.join("ref");
    run_to_end(&file, &reference);
    let total = 4 * (256 / 32);
    let wait_rows = |runs: &Path, n: usize| {
        let t = Instant::now();
        while !(std::fs::read_dir(runs.join("resume")).is_ok_and(|mut d| d.next().is_some()) && count_rows(&run_folder(runs)) >= n) {
            assert!(t.elapsed() < Duration::from_secs(120), "the run did not reach step {n}");
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    for (sig, code) in [("INT", 130), ("TERM", 143), ("HUP", 129)] {
        let runs = d.join(sig);
        let child = command(&file, &runs).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        wait_rows(&runs, 5);
        signal(child.id(), sig);
        let o = child.wait_with_output().unwrap();
        let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert_eq!(o.status.code(), Some(code), "{out}");
        assert!(out.contains(&format!("interrupted by SIG{sig} at step")) && out.contains("run the same command again to resume"), "{out}");
        let run = run_folder(&runs);
        let stopped = count_rows(&run);
        assert!(stopped < total, "stopped after the end");
        let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(m["status"], "interrupted");
        // the manifest's `seconds` count the attempts, not the time stopped between them
        let first = m["seconds"].as_f64().expect("seconds in the manifest");
        if sig == "INT" {
            std::thread::sleep(Duration::from_secs(3));
        }
        let out = run_to_end(&file, &runs);
        assert!(out.contains(&format!("at step {stopped} ")), "resumed elsewhere than step {stopped}: {out}");
        let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
        let (seconds, wall) = (m["seconds"].as_f64().unwrap(), (m["finished"].as_u64().unwrap() - m["started"].as_u64().unwrap()) as f64);
        assert!(seconds > first && (sig != "INT" || seconds <= wall - 2.0), "seconds {seconds} (first attempt {first}), start to end {wall}");
        // the epoch line of an epoch resumed mid-way says its means cover the steps since
        let ipe = 256 / 32;
        if !stopped.is_multiple_of(ipe) {
            assert!(out.contains(&format!("(steps {}-{ipe} of the epoch, since the resume)", stopped % ipe + 1)), "{out}");
        }
        assert_eq!(rows(&run_folder(&reference)), rows(&run), "metrics rows differ after SIG{sig} and resume");
        let fa = std::fs::read(run_folder(&reference).join("checkpoints/final.safetensors")).unwrap();
        let fb = std::fs::read(run.join("checkpoints/final.safetensors")).unwrap();
        assert!(fa == fb, "final weights differ after SIG{sig} and resume");
    }
    // a second signal: at once
    let runs = d.join("twice");
    let child = command(&file, &runs).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    wait_rows(&runs, 3);
    signal(child.id(), "INT");
    signal(child.id(), "INT");
    let o = child.wait_with_output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert!(o.status.signal() == Some(2) || o.status.code() == Some(130), "{:?}", o.status);
    if o.status.signal() == Some(2) {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("second signal: stopping now"), "one line says so: {err}");
    }
    // a signal ignored when the run started stays ignored (`nohup ijepa run ...`: logging out
    // sent SIGHUP and stopped it), and a file-size limit is an error naming the file (it
    // killed the process with SIGXFSZ, nothing said)
    let runs = d.join("nohup");
    let mut c = command(&file, &runs);
    // SAFETY: between fork and exec, signal(2) only (async-signal-safe)
    unsafe {
        use std::os::unix::process::CommandExt;
        c.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let child = c.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    wait_rows(&runs, 3);
    signal(child.id(), "HUP");
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{:?} {}", o.status, String::from_utf8_lossy(&o.stderr));
    assert_eq!(count_rows(&run_folder(&runs)), total);
    let mut c = command(&file, &d.join("fsize"));
    // SAFETY: between fork and exec, setrlimit(2) only (async-signal-safe)
    unsafe {
        use std::os::unix::process::CommandExt;
        c.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: 64 * 1024, rlim_max: 64 * 1024 };
            libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
            Ok(())
        });
    }
    let o = c.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.code() == Some(1) && err.contains("File too large"), "{:?} {err}", o.status);

    // a closed stdout: the reader goes away after the first line, training goes on to the end
    let runs = d.join("pipe");
    let mut child = command(&file, &runs).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    {
        use std::io::BufRead;
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    } // stdout's read end closed here
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run = run_folder(&runs);
    assert_eq!(count_rows(&run), total);
    assert_eq!(rows(&run_folder(&reference)), rows(&run));

    // a signal during an evaluation stops it between epochs of its probe (a million epochs
    // would take the better part of an hour): exit 143, no eval.json (nor a folder of its lock
    // alone), the pretraining stays done
    let evalf = d.join("resume-eval.kdl");
    let body = EXP.replace("PRECISION", "fp32").replace("    monitor every=1", "    eval \"linear\" { epochs 1000000; lr 0.01; weight-decay 0 }\n    monitor every=1");
    std::fs::write(&evalf, body).unwrap();
    let runs = d.join("eval");
    let mut child = command(&evalf, &runs).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (rx, reader) = watch_stdout(&mut child, |line| line.starts_with("== run eval"));
    rx.recv_timeout(Duration::from_secs(120)).expect("the evaluation stage did not start");
    std::thread::sleep(Duration::from_millis(500));
    signal(child.id(), "TERM");
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("the evaluation did not stop within 60 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    let out = reader.join().unwrap();
    assert_eq!(status.code(), Some(143), "{out}{err}");
    assert!(err.contains("interrupted by SIGTERM; run the same command again to go on (finished stages are kept; a stage cut short starts over)"), "{err}");
    let mut evals = 0;
    for e in std::fs::read_dir(runs.join("resume")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("eval-") {
            evals += 1;
            assert!(!p.join("eval.json").exists(), "{name} finished although it was stopped");
        } else if name.starts_with("pretrain-") {
            let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p.join("manifest.json")).unwrap()).unwrap();
            assert_eq!(m["status"], "done");
        }
    }
    // (the stopped evaluation wrote nothing: its folder, which held only its lock, is gone)
    assert_eq!(evals, 0, "{out}");
}

/// [`EXP`] in fp32 with a monitor of 1,000 images at 112 px (seconds long: a signal sent after
/// its start lands in it) and 500 images left to train on.
fn slow_monitor_exp() -> String {
    EXP.replace("PRECISION", "fp32")
        .replace("limit 320", "limit 1500")
        .replace("crop-size 32", "crop-size 112")
        .replace("encoder width=64 depth=2 heads=2 patch=4", "encoder width=32 depth=1 heads=2 patch=16")
        .replace("monitor every=1 images=64 k=5", "monitor every=1 images=1000 k=5")
}

/// A signal during the epoch-0 monitor stops the run before its first step: exit 130, the
/// manifest `interrupted`, no step trained, no checkpoint. (Here the signal lands in the
/// feature extraction, which stops at its next batch; one landing after it, in the kNN or the
/// pixels' measure, used to train and checkpoint step 1: the loader's batches were ready, so its
/// wait never looked. That window is too narrow to aim a signal at from a test.)
#[test]
fn a_signal_during_the_first_monitor_stops_before_the_first_step() {
    let d = scratch("monitor-signal");
    let file = d.join("resume.kdl");
    std::fs::write(&file, slow_monitor_exp()).unwrap();
    let runs = d.join("runs");
    let mut child = command(&file, &runs).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // (logged right before the epoch-0 monitor)
    let (rx, reader) = watch_stdout(&mut child, |line| line.contains("pretraining resume ("));
    rx.recv_timeout(Duration::from_secs(120)).expect("the pretraining did not start");
    std::thread::sleep(Duration::from_millis(300));
    signal(child.id(), "INT");
    let o = child.wait_with_output().unwrap();
    let err = format!("{}{}", reader.join().unwrap(), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted by SIGINT; run the same command again to go on") && !err.contains("epoch   1/"), "{err}");
    let run = run_folder(&runs);
    assert_eq!(count_rows(&run), 0, "a step was trained after the signal: {err}");
    assert!(!run.join("checkpoints/latest.safetensors").exists(), "{err}");
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["status"], "interrupted");
}

/// A signal during an epoch's monitor (after its last step, before its checkpoint) saves the
/// epoch's steps and stops (it said "this one starts over", and the steps since the last
/// checkpoint, a whole epoch here, were lost); the resume measures that epoch's monitor before
/// its next step, and the monitor holds each epoch once.
#[test]
fn a_signal_during_an_epoch_s_monitor_keeps_the_epoch() {
    let d = scratch("epoch-monitor-signal");
    let file = d.join("resume.kdl");
    // (a monitor of 2,000 images: the signal, sent as the epoch's last row is written, lands in
    // it on a fast machine too)
    let body = slow_monitor_exp()
        .replace("limit 1500", "limit 2500")
        .replace("images=1000", "images=2000")
        .replace("epochs 4", "epochs 2\n    log-every 1")
        .replace("checkpoint every-steps=3 keep-every=2", "checkpoint keep-every=0");
    std::fs::write(&file, body).unwrap();
    let runs = d.join("runs");
    let mut child = command(&file, &runs).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (rx, reader) = watch_stdout(&mut child, |line| line.contains("pretraining resume ("));
    rx.recv_timeout(Duration::from_secs(120)).expect("the pretraining did not start");
    // (500 images of batch 32: 15 steps an epoch, the monitor after the 15th)
    let t0 = Instant::now();
    while common::pretrain_in(&runs.join("resume")).is_none_or(|run| count_rows(&run) < 15) {
        assert!(t0.elapsed() < Duration::from_secs(300), "epoch 1 did not end");
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(child.id(), "INT");
    let o = child.wait_with_output().unwrap();
    let err = format!("{}{}", reader.join().unwrap(), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted by SIGINT") && !err.contains("starts over") && !err.contains("epoch   1/2"), "{err}");
    let run = run_folder(&runs);
    assert_eq!(count_rows(&run), 15, "{err}");
    let pos = |run: &Path| {
        let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
        m["checkpoints"].as_array().unwrap().iter().filter(|c| c["file"] == "latest.safetensors").map(|c| c["step"].as_u64().unwrap()).max()
    };
    assert_eq!(pos(&run), Some(15), "{err}");
    let out = run_to_end(&file, &runs);
    assert!(out.contains("epoch   1/2  monitor (measured on the resume)"), "{out}");
    let rows: Vec<String> = std::fs::read_to_string(run.join("monitor.csv")).unwrap().lines().skip(1).map(|l| l.split(',').take(3).collect::<Vec<_>>().join(",")).collect();
    assert_eq!(rows, ["0,0,target", "0,0,context", "0,0,pixels", "15,1,target", "15,1,context", "30,2,target", "30,2,context"], "{out}");
}

/// A finished runs folder that this process may read but not write (another user's, shared
/// read-only) is read, not refused on its lock files: `ijepa run` skips its done stages and
/// `ijepa plan` shows them done. Root writes anywhere, so as root the commands run as `nobody`
/// (util-linux's `setpriv`).
#[test]
fn a_read_only_finished_runs_folder_is_read() {
    use std::os::unix::fs::PermissionsExt;
    let d = scratch("read-only");
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let file = d.join("ro.kdl");
    let body = EXP
        .replace("PRECISION", "fp32")
        .replace("epochs 4", "epochs 1")
        .replace("    monitor every=1 images=64 k=5\n", "    eval \"knn\" { k 5; baselines \"random-init\" }\n    report\n");
    std::fs::write(&file, body).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_ijepa")).args(["run", "ro.kdl", "--runs-dir", "runs", "--reports-dir", "reports"]).current_dir(&d).output().unwrap();
    let first = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success() && first.contains("4 stage(s) run"), "{first}");
    let chmod = |mode: &str| assert!(Command::new("chmod").args(["-R", mode, d.to_str().unwrap()]).status().unwrap().success());
    chmod("a-w,a+rX");
    let root = unsafe { libc::geteuid() } == 0;
    let as_reader = |args: &[&str]| {
        let mut c = if root {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", env!("CARGO_BIN_EXE_ijepa")]);
            c
        } else {
            Command::new(env!("CARGO_BIN_EXE_ijepa"))
        };
        let o = c.args(args).current_dir(&d).env("HOME", &d).output().expect("setpriv (util-linux) runs the binary as nobody");
        (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
    };
    let ran = as_reader(&["run", "ro.kdl", "--runs-dir", "runs", "--reports-dir", "reports"]);
    // a stage that needs running there says so at once, before computing anything (here the
    // report, stale once the evaluation it read is gone, is the first to say it)
    let eval = std::fs::read_dir(d.join("runs/resume")).unwrap().flatten().map(|e| e.path()).find(|p| p.file_name().unwrap().to_string_lossy().starts_with("eval-knn-ijepa-")).unwrap();
    chmod("u+w");
    std::fs::remove_file(eval.join("eval.json")).unwrap();
    chmod("a-w,a+rX");
    let stale = as_reader(&["run", "ro.kdl", "--runs-dir", "runs", "--reports-dir", "reports"]);
    let alone = as_reader(&["run", "ro.kdl", "--runs-dir", "runs", "--reports-dir", "reports", "--only", "eval-knn-ijepa"]);
    chmod("u+w");
    assert!(ran.0 && ran.1.contains("0 stage(s) run, 4 skipped"), "{}", ran.1);
    assert!(!stale.0 && stale.1.contains("the report folder reports cannot be written"), "{}", stale.1);
    assert!(!stale.1.contains("== run"), "{}", stale.1);
    assert!(!alone.0 && alone.1.contains("stage eval-knn-ijepa needs running, but its folder") && alone.1.contains("cannot be written (read-only)"), "{}", alone.1);
    assert!(!alone.1.contains("== run"), "{}", alone.1);
}

/// A run killed before its first checkpoint left a manifest saying `running` and nothing to
/// resume: the next run says it starts over (it said "what it checkpointed is resumed" and
/// trained from step 0), and ends as an uninterrupted run does.
#[test]
fn a_run_killed_before_its_first_checkpoint_is_said_to_start_over() {
    let d = scratch("killed-early");
    let file = d.join("resume.kdl");
    std::fs::write(&file, EXP.replace("PRECISION", "fp32").replace("epochs 4", "epochs 1")).unwrap();
    let (a, b) = (d.join("a"), d.join("b"));
    run_to_end(&file, &a);
    // what a SIGKILL during start-up leaves: the manifest of a run that is running, no checkpoint
    run_to_end(&file, &b);
    let run = run_folder(&b);
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    m["status"] = "running".into();
    m["checkpoints"] = serde_json::json!([]);
    m["steps"] = 0.into();
    std::fs::write(run.join("manifest.json"), m.to_string()).unwrap();
    std::fs::remove_dir_all(run.join("checkpoints")).unwrap();
    std::fs::remove_file(run.join("metrics.csv")).unwrap();
    let out = run_to_end(&file, &b);
    assert!(out.contains("ended without marking its manifest") && out.contains("it had checkpointed nothing, so training starts from step 0"), "{out}");
    assert!(!out.contains("what it checkpointed is resumed"), "{out}");
    assert_eq!(rows(&run_folder(&a)), rows(&run), "metrics rows differ after the restart");
}

/// A finished pretraining's folder renamed (or copied) to another stage's name was read as that
/// stage's finished run: the plan said done and its weights were evaluated as the other
/// stage's. The plan says it is to run, and the run refuses the folder naming the stage its
/// record is of; nothing is evaluated.
#[test]
fn a_stage_folder_renamed_to_another_stage_is_refused() {
    let d = scratch("renamed-stage");
    let body = EXP.replace("PRECISION", "fp32").replace("epochs 4", "epochs 1").replace("    monitor every=1 images=64 k=5\n", "    eval \"knn\" { k 5; }\n");
    let (first, second) = (d.join("a.kdl"), d.join("b.kdl"));
    std::fs::write(&first, &body).unwrap();
    std::fs::write(&second, body.replace("seed 3", "seed 4")).unwrap();
    let runs = d.join("runs");
    run_to_end(&first, &runs);
    let ijepa = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_ijepa")).args(args).output().unwrap();
        (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
    };
    let (b, runs_s) = (second.to_str().unwrap(), runs.to_str().unwrap());
    let (_, plan) = ijepa(&["plan", b, "--runs-dir", runs_s]);
    let other = plan.split_whitespace().find(|w| w.contains("/pretrain-")).expect("a pretraining folder").to_string();
    let trained = common::pretrain_in(&runs.join("resume")).unwrap();
    let trained_name = trained.file_name().unwrap().to_string_lossy().to_string();
    std::fs::rename(&trained, &other).unwrap();
    let (_, plan) = ijepa(&["plan", b, "--runs-dir", runs_s]);
    assert!(plan.lines().any(|l| l.contains("pretrain ") && l.contains("to run")), "{plan}");
    // (its evaluation, of the other stage's weights, is not done: it reads the pretraining again)
    assert!(plan.lines().any(|l| l.contains("eval-knn-ijepa") && l.contains("to run")), "{plan}");
    // a dry run says the run would be refused, as it does of every refusal
    let (ok, out) = ijepa(&["run", b, "--runs-dir", runs_s, "--dry-run"]);
    assert!(!ok && out.contains(&format!("its manifest.json is the record of the stage {trained_name}")), "{out}");
    let (ok, out) = ijepa(&["run", b, "--runs-dir", runs_s]);
    assert!(!ok && out.contains(&format!("its manifest.json is the record of the stage {trained_name}, not of this one")), "{out}");
    assert!(!out.contains("top-1"), "{out}");
}

/// A finished pretraining whose manifest records no final checkpoint (versions before
/// 2026-11-30 recorded none) has its evaluations done: the plan listed them to run at every
/// plan (it read the final checkpoint as ""), where the run skipped them as done.
#[test]
fn a_run_recording_no_final_checkpoint_has_its_evaluations_done() {
    let d = scratch("no-final-record");
    let body = EXP.replace("PRECISION", "fp32").replace("epochs 4", "epochs 1").replace("    monitor every=1 images=64 k=5\n", "    eval \"knn\" { k 5; }\n");
    let file = d.join("a.kdl");
    std::fs::write(&file, &body).unwrap();
    let runs = d.join("runs");
    run_to_end(&file, &runs);
    let manifest = common::pretrain_in(&runs.join("resume")).unwrap().join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    m["checkpoints"].as_array_mut().unwrap().retain(|c| c["file"] != "final.safetensors");
    std::fs::write(&manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_ijepa")).args(["plan", file.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]).output().unwrap();
    let plan = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(plan.lines().any(|l| l.contains("eval-knn-ijepa") && l.contains(" done ")), "{plan}");
    let out = run_to_end(&file, &runs);
    assert!(out.contains("0 stage(s) run"), "{out}");
}
