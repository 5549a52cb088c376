//! Pretraining from an `image-folder` dataset end to end through the language, on a small
//! generated folder (PNG files in class sub-folders), and the `on-error` policies on a corrupt
//! file: "fail" names the file, "skip" substitutes it and counts it in the metrics.

mod common;
use common::{ijepa, make_folder, scratch, text, watch_stdout};

use std::path::Path;

fn experiment(root: &Path, on_error: &str) -> String {
    format!(
        r#"experiment "folder" {{
    data "image-folder" root="{}" {{
        crop-size 32
        batch-size 16
        workers 2
        horizontal-flip 0.5
        color-jitter 0.5
        gaussian-blur 0.5
        on-error "{on_error}"
    }}
    encoder width=32 depth=1 heads=2 patch=8
    predictor depth=1 width=16 heads=2
    mask "multi-block" {{
        targets count=2 {{ scale 0.15 0.4; }}
        min-keep 1
    }}
    epochs 2
    precision "fp32"
    device "cpu"
}}
"#,
        root.display()
    )
}

/// [`experiment`] (on-error "fail") with its test images in `test` and the evaluation block
/// `eval`, run into `d/runs`: the output.
fn run_evaluated(d: &Path, data: &Path, test: &Path, eval: &str) -> std::process::Output {
    let exp = experiment(data, "fail")
        .replace("on-error \"fail\"", &format!("on-error \"fail\"\n        test-root \"{}\"", test.display()))
        .replace("    device \"cpu\"\n", &format!("    device \"cpu\"\n    {eval}\n"));
    let f = d.join("exp.kdl");
    std::fs::write(&f, exp).unwrap();
    ijepa(&["run", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()])
}

/// A dry run of a subset list naming no file says the refusal once, and counts it once: the
/// evaluations' check opened the training split the pretraining's check could not, and said
/// it again ("2 reason(s)").
#[test]
fn a_dry_run_says_a_refusal_once() {
    let d = scratch("dry-once");
    make_folder(&d.join("data"), 2, 12);
    make_folder(&d.join("test"), 2, 3);
    let list = d.join("list.txt");
    std::fs::write(&list, "class_0/img_0.png\nclass_0/nothing.png\n").unwrap();
    let exp = experiment(&d.join("data"), "fail")
        .replace("on-error \"fail\"", &format!("on-error \"fail\"\n        test-root \"{}\"\n        subset \"{}\"", d.join("test").display(), list.display()))
        .replace("    device \"cpu\"\n", "    device \"cpu\"\n    eval \"knn\" { k 3; }\n");
    let f = d.join("exp.kdl");
    std::fs::write(&f, exp).unwrap();
    let o = ijepa(&["run", f.to_str().unwrap(), "--dry-run", "--runs-dir", d.join("runs").to_str().unwrap()]);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("name no file") && t.contains("(1 reason(s), said above)"), "{t}");
    assert_eq!(t.matches("the run would be refused:").count(), 1, "{t}");
}

#[test]
fn pretrains_from_an_image_folder() {
    let d = scratch("ok");
    make_folder(&d.join("data"), 3, 12);
    let f = d.join("exp.kdl");
    std::fs::write(&f, experiment(&d.join("data"), "fail")).unwrap();
    let o = ijepa(&["check", f.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("on 36 images") && t.contains("done: 4 steps"), "{t}");
    assert!(!t.contains("without an image") && !t.contains("one level too high"), "{t}");
    // `limit` takes the first images in class order: the classes it leaves out are said
    let limited = experiment(&d.join("data"), "fail").replace("on-error \"fail\"", "on-error \"fail\"\n        limit 16");
    std::fs::write(&f, limited).unwrap();
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert_eq!(t.matches("`limit 16` keeps the first 16 of the 36 training images").count(), 1, "{t}");
    assert!(t.contains("leaves 1 of its 3 classes without an image"), "{t}");
}

/// A root one level too high (`data/` holding `train/` and `val/`) pretrains on the splits as
/// two classes, the test images among them: it runs, with a warning naming the likely cause,
/// once, for the training folder (a test folder of the same classes is not `root=`).
#[test]
fn a_root_holding_the_splits_is_warned_of() {
    let d = scratch("splits");
    for split in ["train", "val"] {
        make_folder(&d.join("data").join(split), 2, 8);
        make_folder(&d.join("test").join(split), 2, 2);
    }
    let o = run_evaluated(&d, &d.join("data"), &d.join("test"), "eval \"knn\" { k 3 }");
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert_eq!(t.matches("its class folders include train, val, the names of a data set's splits: is `root=` one level too high?").count(), 1, "{t}");
    assert!(t.contains(&format!("{}: its class folders include", d.join("data").display())), "{t}");
}

/// A signal stops a run whose loader waits for data that never comes (an image that turns into
/// a pipe once listed: reading it blocks, as a read from a hung network file system does): exit 143 within
/// seconds, not a run that waits forever for its next step.
#[test]
fn a_signal_stops_a_run_waiting_for_data() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let d = scratch("stuck");
    let data = d.join("data");
    make_folder(&data, 2, 16);
    let stuck = data.join("class_1").join("zz_stuck.png");
    std::fs::copy(data.join("class_1").join("img_0.png"), &stuck).unwrap();
    let f = d.join("exp.kdl");
    // 33 files, batches of 16: the file is drawn into a batch within a few epochs (of many:
    // the run must not end before the file turns into a pipe)
    std::fs::write(&f, experiment(&data, "fail").replace("    epochs 2\n", "    epochs 500\n")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ijepa"))
        .args(["run", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // once the folder is listed (a named pipe there is refused), the file turns into a pipe
    // nobody writes: its reads never return, like a hung network file system's
    let (rx, _reader) = watch_stdout(&mut child, |line| line.starts_with("pretraining folder"));
    rx.recv_timeout(Duration::from_secs(120)).expect("the pretraining did not start");
    // (made beside it and renamed over it: a moment without the file would fail the run)
    let pipe = d.join("pipe");
    assert!(Command::new("mkfifo").arg(&pipe).status().unwrap().success());
    std::fs::rename(&pipe, &stuck).unwrap();
    std::thread::sleep(Duration::from_secs(8));
    assert!(child.try_wait().unwrap().is_none(), "the run ended although one of its files never reads");
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("SIGTERM did not stop a run waiting for data within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(143), "{err}");
    assert!(err.contains("interrupted by SIGTERM") && !err.contains("panicked"), "{err}");
}

/// An image folder's evaluations score on its test folder (`test-root`, the same classes),
/// never on the training images; without one the file is refused before anything runs, and a
/// test folder with other classes is an error naming them.
#[test]
fn evaluations_score_on_the_test_folder() {
    let d = scratch("test-root");
    make_folder(&d.join("train"), 3, 12);
    make_folder(&d.join("val"), 3, 4);
    let base = experiment(&d.join("train"), "fail").replace("    epochs 2\n", "    epochs 1\n    eval \"knn\" { k 1; baselines \"raw-pixels\" }\n");
    let f = d.join("no-test.kdl");
    std::fs::write(&f, &base).unwrap();
    let o = ijepa(&["check", f.to_str().unwrap()]);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("ijepa::dsl::conflict") && t.contains("this image folder has none") && t.contains("test-root"), "{t}");
    let with = |val: &Path| base.replace("        on-error", &format!("        test-root \"{}\"\n        on-error", val.display()));
    let f = d.join("exp.kdl");
    std::fs::write(&f, with(&d.join("val"))).unwrap();
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("(36 train / 12 test examples") && !t.contains("/ 36 test examples"), "{t}");
    // a test folder without one of the classes: every label after it would shift
    std::fs::remove_dir_all(d.join("val").join("class_1")).unwrap();
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", d.join("runs2").to_str().unwrap()]);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("does not have the classes") && t.contains("only in training: class_1"), "{t}");
    // a missing test folder is found by `check`
    std::fs::write(&f, with(&d.join("nope"))).unwrap();
    let o = ijepa(&["check", f.to_str().unwrap()]);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("missing_input") && t.contains("test root"), "{t}");
}

#[test]
fn a_corrupt_image_fails_or_is_skipped() {
    let d = scratch("corrupt");
    let data = d.join("data");
    make_folder(&data, 2, 16);
    std::fs::write(data.join("class_1").join("img_3.png"), b"\x89PNG\r\n\x1a\n truncated").unwrap();
    let f = d.join("fail.kdl");
    std::fs::write(&f, experiment(&data, "fail")).unwrap();
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("img_3.png") && !t.contains("panicked"), "{t}");

    // three unreadable files in a row: each counted once per epoch, not once per attempt
    for i in [4, 5] {
        std::fs::write(data.join("class_1").join(format!("img_{i}.png")), b"\x89PNG\r\n\x1a\n truncated").unwrap();
    }
    let f = d.join("skip.kdl");
    std::fs::write(&f, experiment(&data, "skip")).unwrap();
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", d.join("runs2").to_str().unwrap()]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let run = common::pretrain_in(&d.join("runs2").join("folder")).expect("a pretraining folder");
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let skipped: usize = metrics.lines().skip(1).map(|l| l.rsplit(',').next().unwrap().parse::<usize>().unwrap()).sum();
    assert_eq!(skipped, 2 * 3, "each corrupt image is counted once per epoch: {metrics}");
    // named in the log and listed in the run folder, once each
    let listed = std::fs::read_to_string(run.join("skipped.txt")).unwrap();
    let mut lines: Vec<&str> = listed.lines().collect();
    lines.sort();
    assert_eq!(lines.len(), 3, "{listed}");
    for (l, i) in lines.iter().zip([3, 4, 5]) {
        assert!(l.contains(&format!("img_{i}.png")), "{listed}");
    }
    assert!(t.contains("warning: skipping unreadable") && t.contains("img_5.png"), "{t}");
    // one line per file over the whole run (not per attempt, not per epoch), with the cause
    let named: Vec<&str> = t.lines().filter(|l| l.starts_with("warning: skipping unreadable")).collect();
    assert_eq!(named.len(), 3, "{t}");
    let line = named.iter().find(|l| l.contains("img_5.png")).unwrap();
    let after = &line[line.find("img_5.png").unwrap() + "img_5.png".len()..];
    assert!(after.starts_with(": ") && after.contains("(on-error \"skip\"; listed in "), "the cause, then where it is listed: {line}");
    // the file named once (it read "img_5.png: dataset: .../img_5.png: ...")
    assert_eq!(line.matches("img_5.png").count(), 1, "{line}");
}

/// A class folder of broken copies (23 unreadable files in a row, more than any fixed number
/// of substitutes) is skipped past with `on-error "skip"`, each file counted once an epoch.
#[test]
fn a_long_run_of_unreadable_files_is_skipped() {
    let d = scratch("longrun");
    let data = d.join("data");
    make_folder(&data, 2, 24);
    // every file of class_1 but the last in name order (img_9)
    for i in (0..24).filter(|&i| i != 9) {
        std::fs::write(data.join("class_1").join(format!("img_{i}.png")), b"\x89PNG\r\n\x1a\n broken").unwrap();
    }
    let f = d.join("skip.kdl");
    std::fs::write(&f, experiment(&data, "skip")).unwrap();
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let run = common::pretrain_in(&d.join("runs").join("folder")).expect("a pretraining folder");
    let listed = std::fs::read_to_string(run.join("skipped.txt")).unwrap();
    assert_eq!(listed.lines().count(), 23, "{listed}");
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let skipped: usize = metrics.lines().skip(1).map(|l| l.rsplit(',').next().unwrap().parse::<usize>().unwrap()).sum();
    assert_eq!(skipped, 2 * 23, "each counted once an epoch: {metrics}");
    // an evaluation reads every image of its splits (here the same broken training images):
    // an error that says the setting covers the pretraining's images only
    let test = d.join("test");
    make_folder(&test, 2, 4);
    let exp = experiment(&data, "skip")
        .replace("on-error \"skip\"", &format!("on-error \"skip\"\n        test-root \"{}\"", test.display()))
        .replace("    device \"cpu\"\n", "    device \"cpu\"\n    eval \"knn\" { k 3; }\n");
    std::fs::write(&f, exp).unwrap();
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("class_1/img_0.png") && t.contains("substitutes the pretraining's images only"), "{t}");
    // so does the monitor, which holds its images out of the training split: the way out is a
    // readable copy under the file's name (removed, the training images change)
    let exp = experiment(&data, "skip").replace("    device \"cpu\"\n", "    device \"cpu\"\n    monitor images=24 k=3\n");
    std::fs::write(&f, exp).unwrap();
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", d.join("monitored").to_str().unwrap()]);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("class_1/img_") && t.contains("substitutes the pretraining's images only"), "{t}");
    assert!(t.contains("the monitor reads every image it holds out: put a readable copy in its place, under its name"), "{t}");
}

#[test]
fn folder_errors_are_clear_at_start_up() {
    let d = scratch("errors");
    let f = d.join("missing.kdl");
    std::fs::write(&f, experiment(&d.join("nope"), "fail")).unwrap();
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("nope") && !t.contains("panicked"), "{t}");
    // an empty class folder
    let data = d.join("data");
    make_folder(&data, 2, 4);
    std::fs::create_dir_all(data.join("class_9")).unwrap();
    let f = d.join("empty.kdl");
    std::fs::write(&f, experiment(&data, "fail")).unwrap();
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("class_9") && !t.contains("panicked"), "{t}");
    // a monitor that leaves pretraining less than a batch says so (the loader's error named
    // only the images left)
    let data = d.join("data30");
    make_folder(&data, 2, 15);
    let f = d.join("monitor.kdl");
    std::fs::write(&f, experiment(&data, "fail").replace("    device \"cpu\"\n", "    device \"cpu\"\n    monitor every=1 images=20 k=3\n")).unwrap();
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    // (fewer held-out images cannot help: a monitor holds out at least 20)
    assert!(t.contains("less than one batch of 16: lower the batch size (`batch-size`) to at most 10") && t.contains("after the monitor holds out its 20: remove `monitor`, which holds out at least 20"), "{t}");
}

/// `scripts/bench-e2e.sh` (the loader-keeps-the-step-fed benchmark): one round on a small
/// folder at 32 px prints the run's and the step's images/s and the three shares; a path that
/// is not a folder is refused before anything runs.
#[test]
fn bench_e2e_compares_the_run_with_the_step() {
    let d = scratch("bench-e2e");
    make_folder(&d.join("data"), 3, 12);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench-e2e.sh");
    let bench = |args: &[&str]| {
        std::process::Command::new("bash")
            .arg(&script)
            .args(args)
            .env("IJEPA_BIN", env!("CARGO_BIN_EXE_ijepa"))
            .env("TMPDIR", &d)
            .output()
            .unwrap()
    };
    let data = d.join("data");
    let o = bench(&[
        data.to_str().unwrap(),
        "--rounds", "1", "--epochs", "2", "--size", "32", "--patch", "4", "--batch", "6", "--pred-depth", "1",
        "--pred-width", "24", "--targets", "2", "--min-keep", "1", "--preset", "vit-tiny",
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    // 36 images, batch 6: 6 steps an epoch, 2 epochs
    assert!(t.contains("run:  72 images in"), "{t}");
    let shares: Vec<f64> = t
        .lines()
        .filter(|l| l.trim_start().starts_with("run, "))
        .map(|l| l.split('=').nth(1).and_then(|v| v.split('%').next()).unwrap().trim().parse().unwrap())
        .collect();
    assert_eq!(shares.len(), 3, "{t}");
    assert!(shares.iter().all(|s| *s > 1.0 && *s < 1000.0), "{t}");
    // the scratch experiment and its runs are removed
    assert!(std::fs::read_dir(&d).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with("ijepa-bench-e2e")), "{t}");
    let o = bench(&[d.join("missing").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("is not a folder"), "{}", text(&o));
}

/// Images added to the folders after a run: the evaluations' cached features are not read for
/// the new images (the cache is keyed by the images, not only by the data settings), and a
/// stopped run does not resume on a training folder whose epochs now have other steps (its
/// schedules would not be the ones it began) but stops naming both counts.
#[test]
fn a_changed_folder_is_neither_read_from_cache_nor_resumed() {
    let d = scratch("changed");
    let (data, test) = (d.join("data"), d.join("test"));
    make_folder(&data, 3, 12);
    make_folder(&test, 3, 4);
    let exp = experiment(&data, "fail").replace(
        "on-error \"fail\"",
        &format!("on-error \"fail\"\n        test-root \"{}\"", test.display()),
    );
    // (every epoch's checkpoint kept: the stopped run below resumes from the first)
    let exp = exp.replace("    device \"cpu\"\n", "    device \"cpu\"\n    checkpoint keep-every=1\n    eval \"knn\" { k 3; }\n");
    let f = d.join("exp.kdl");
    std::fs::write(&f, exp).unwrap();
    let runs = d.join("runs");
    let run = || ijepa(&["run", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    let o = run();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("(36 train / 12 test examples"), "{t}");
    // two more test images a class; the evaluations' records removed to evaluate again
    make_folder(&test, 3, 6);
    let folder = runs.join("folder");
    for e in std::fs::read_dir(&folder).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap().to_string_lossy().starts_with("eval-") {
            std::fs::remove_dir_all(p).unwrap();
        }
    }
    let o = run();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("(36 train / 18 test examples"), "{t}");
    // the run said to be stopped after its first epoch, then one more training image: 37
    // images give the 2 steps an epoch the checkpoint's run had, but other epochs (it resumed
    // over them without a word). (A run stopped at its end resumes only to write its final
    // weights, which any data allows.)
    let pretrain = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("pretrain-"))
        .unwrap();
    let mpath = pretrain.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&mpath).unwrap()).unwrap();
    m["status"] = "interrupted".into();
    // (as a run stopped after its first epoch leaves it: no record of a later checkpoint)
    m["checkpoints"] = serde_json::json!([]);
    std::fs::write(&mpath, m.to_string()).unwrap();
    let ckpt = pretrain.join("checkpoints");
    std::fs::copy(ckpt.join("epoch-0001.safetensors"), ckpt.join("latest.safetensors")).unwrap();
    std::fs::copy(data.join("class_0/img_0.png"), data.join("class_0/img_extra.png")).unwrap();
    let o = run();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("a run on 36 training images; the data now gives 37") && t.contains("or move") && t.contains("aside to train from the start"), "{t}");
    // (refused before any stage runs, as every pretraining's data is checked: a sweep's later
    // point was refused once the earlier points had trained; a dry run says so)
    assert!(t.contains("checked before pretraining: checkpoint"), "{t}");
    let dry = || ijepa(&["run", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap(), "--dry-run"]);
    let o = dry();
    let t = text(&o);
    assert!(!o.status.success() && t.contains("the run would be refused") && t.contains("the data now gives 37"), "{t}");
    // the checkpoint checked is the one the resume would start from: with `latest` gone, the
    // kept epoch checkpoint it falls back to (not checked before; the second epoch's, at the
    // end of training, would only write the final weights, which any data allows)...
    let second = d.join("epoch-0002.aside");
    std::fs::rename(ckpt.join("epoch-0002.safetensors"), &second).unwrap();
    std::fs::remove_file(ckpt.join("latest.safetensors")).unwrap();
    let t = text(&dry());
    assert!(t.contains("the run would be refused") && t.contains("epoch-0001.safetensors: taken at step") && t.contains("the data now gives 37"), "{t}");
    // ... and a damaged `latest` with no kept checkpoint is no refusal: the resume starts over
    // (it was refused as taken on 36 images)
    let aside = d.join("epoch-0001.aside");
    std::fs::rename(ckpt.join("epoch-0001.safetensors"), &aside).unwrap();
    let mut bytes = std::fs::read(&aside).unwrap();
    *bytes.last_mut().unwrap() ^= 0xff;
    std::fs::write(ckpt.join("latest.safetensors"), &bytes).unwrap();
    let o = dry();
    let t = text(&o);
    assert!(o.status.success() && !t.contains("would be refused"), "{t}");
    std::fs::rename(&aside, ckpt.join("epoch-0001.safetensors")).unwrap();
    std::fs::rename(&second, ckpt.join("epoch-0002.safetensors")).unwrap();
    std::fs::copy(ckpt.join("epoch-0001.safetensors"), ckpt.join("latest.safetensors")).unwrap();
    // as many images, but not the same: one moved to another class (it resumed without a word)
    std::fs::remove_file(data.join("class_0/img_extra.png")).unwrap();
    std::fs::rename(data.join("class_0/img_0.png"), data.join("class_1/img_moved.png")).unwrap();
    let o = run();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("a run on 36 training images; the data now gives as many, but not the same ones") && t.contains("aside to train from the start"), "{t}");
    // put back, it resumes, the root spelled otherwise (one stage hash; its fingerprint was
    // another, and the resume was refused as "not the same ones")
    std::fs::rename(data.join("class_1/img_moved.png"), data.join("class_0/img_0.png")).unwrap();
    let written = std::fs::read_to_string(&f).unwrap();
    let spelled = written.replace(&format!("\"{}\"", data.display()), &format!("\"{}/./data\"", d.display()));
    assert_ne!(written, spelled);
    std::fs::write(&f, spelled).unwrap();
    let o = run();
    let t = text(&o);
    assert!(o.status.success() && t.contains("resum"), "{t}");
}

/// A test folder the evaluations cannot use (here without one of the training classes) stops
/// the run before pretraining, not after it.
#[test]
fn a_bad_test_folder_stops_the_run_before_pretraining() {
    let d = scratch("badtest");
    let (data, test) = (d.join("data"), d.join("test"));
    make_folder(&data, 3, 12);
    make_folder(&test, 2, 4);
    let o = run_evaluated(&d, &data, &test, "eval \"knn\" { k 3; }");
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("checked before pretraining") && t.contains("class_2"), "{t}");
    let trained = std::fs::read_dir(d.join("runs/folder")).map(|r| r.count()).unwrap_or(0);
    assert_eq!(trained, 0, "{t}");
}

/// A test image that is no image (macOS's `._` companion files, a web page saved as .jpg)
/// stops the run before pretraining, naming the file: the evaluations stopped on it after
/// the whole pretraining.
#[test]
fn a_test_file_that_is_no_image_stops_the_run_before_pretraining() {
    let d = scratch("junktest");
    let (data, test) = (d.join("data"), d.join("test"));
    make_folder(&data, 2, 12);
    make_folder(&test, 2, 4);
    std::fs::write(test.join("class_1/._img_0.png"), b"\x00\x05\x16\x07 Mac OS X").unwrap();
    let o = run_evaluated(&d, &data, &test, "eval \"knn\" { k 3; }");
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("1 test image(s) cannot be read as JPEG or PNG (") && !t.contains("(dataset: ") && t.contains("._img_0.png: unsupported format: not a JPEG or PNG file (first bytes: 00 05 16 07"), "{t}");
    let trained = std::fs::read_dir(d.join("runs/folder")).map(|r| r.count()).unwrap_or(0);
    assert_eq!(trained, 0, "{t}");
}

/// The training folder given as the test folder is evaluated (a training accuracy can be
/// wanted) with a warning that says what the score is.
#[test]
fn the_training_folder_as_test_folder_is_said() {
    let d = scratch("sametest");
    let data = d.join("data");
    make_folder(&data, 3, 12);
    let o = run_evaluated(&d, &data, &data, "eval \"knn\" { k 3; }");
    let t = text(&o);
    assert!(o.status.success() && t.contains("is the training folder: the knn evaluation scores the images it trains on"), "{t}");
}

/// A training split of one class (every probe then scores 100% on a test split of that class,
/// whatever the encoder) is said.
#[test]
fn a_training_split_of_one_class_is_said() {
    let d = scratch("oneclass");
    let (data, test) = (d.join("data"), d.join("test"));
    make_folder(&data, 1, 20);
    make_folder(&test, 1, 6);
    let o = run_evaluated(&d, &data, &test, "eval \"knn\" { k 3; }");
    let t = text(&o);
    assert!(o.status.success() && t.contains("the knn evaluation's training split holds one class, 0 (class_0): whatever") && t.contains("100%, the test split holding that class alone"), "{t}");
}

/// A stage is keyed by the data's path as written, not by the folder's contents: a finished
/// pretraining and its evaluations over a folder that gained images since are skipped as done
/// (as documented), and the skip now says that they are of the earlier images, once a data
/// block (it said nothing, and `eval.json` kept the old count); a folder as it was says
/// nothing; `--force` runs them again.
#[test]
fn a_finished_stage_over_changed_data_is_said_at_its_skip() {
    let d = scratch("changed-data");
    let (data, test) = (d.join("data"), d.join("test"));
    make_folder(&data, 2, 16);
    make_folder(&test, 2, 4);
    let o = run_evaluated(&d, &data, &test, "eval \"knn\" { k 3; }");
    assert!(o.status.success(), "{}", text(&o));
    let o = run_evaluated(&d, &data, &test, "eval \"knn\" { k 3; }");
    let t = text(&o);
    assert!(o.status.success() && t.contains("skip pretrain") && !t.contains("is done, but"), "{t}");
    // the folders spelled otherwise (`d/./data`, one stage hash): the same images, nothing said
    let o = run_evaluated(&d, &d.join(".").join("data"), &d.join(".").join("test"), "eval \"knn\" { k 3; }");
    let t = text(&o);
    assert!(o.status.success() && t.contains("skip pretrain") && !t.contains("is done, but"), "{t}");
    // the test split alone: the evaluations say it
    std::fs::copy(test.join("class_0/img_0.png"), test.join("class_0/extra.png")).unwrap();
    let o = run_evaluated(&d, &data, &test, "eval \"knn\" { k 3; }");
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains(&format!("eval-knn-ijepa is done, but its test split ({}) now gives other images than it read", test.display())), "{t}");
    assert!(t.contains("`--force --only eval-knn-ijepa` runs it again (the evaluation alone)"), "{t}");
    assert_eq!(t.matches("is done, but").count(), 1, "{t}");
    // a dry run says it too
    let f = d.join("exp.kdl");
    let o = ijepa(&["run", f.to_str().unwrap(), "--dry-run", "--runs-dir", d.join("runs").to_str().unwrap()]);
    assert!(o.status.success() && text(&o).contains("eval-knn-ijepa is done, but its test split"), "{}", text(&o));
    // following its advice evaluates again, and the next run has nothing to say
    let o = ijepa(&["run", f.to_str().unwrap(), "--force", "--only", "eval-knn-ijepa", "--runs-dir", d.join("runs").to_str().unwrap()]);
    assert!(o.status.success() && text(&o).contains("9 test"), "{}", text(&o));
    let o = run_evaluated(&d, &data, &test, "eval \"knn\" { k 3; }");
    assert!(o.status.success() && !text(&o).contains("is done, but"), "{}", text(&o));
    // the training split: the pretraining says it, once for the block
    std::fs::copy(data.join("class_1/img_0.png"), data.join("class_1/extra.png")).unwrap();
    let o = run_evaluated(&d, &data, &test, "eval \"knn\" { k 3; }");
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains(&format!("pretrain is done, but it trained on 32 images and {} now gives 33", data.display())), "{t}");
    assert_eq!(t.matches("is done, but").count(), 1, "{t}");
    // as many, renamed: said as what a folder's check can see (not "other contents": an image
    // rewritten in place is not noticed)
    std::fs::rename(data.join("class_1/extra.png"), d.join("extra.png")).unwrap();
    std::fs::rename(data.join("class_1/img_0.png"), data.join("class_1/renamed.png")).unwrap();
    let t = text(&run_evaluated(&d, &data, &test, "eval \"knn\" { k 3; }"));
    assert!(t.contains("now gives as many training images as it trained on, but not the same ones (files renamed, moved to another class or replaced by files of other names)"), "{t}");
    std::fs::rename(data.join("class_1/renamed.png"), data.join("class_1/img_0.png")).unwrap();
    std::fs::rename(d.join("extra.png"), data.join("class_1/extra.png")).unwrap();
    // under `limit` an image added past the limit changes nothing it read: not said (the
    // fingerprint of a limited split holds the whole folder's)
    let limited = |f: &Path| std::fs::write(f, std::fs::read_to_string(f).unwrap().replace("on-error \"fail\"", "on-error \"fail\"\n        limit 20")).unwrap();
    let f = d.join("exp.kdl");
    limited(&f);
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::copy(data.join("class_1/img_0.png"), data.join("class_1/zz.png")).unwrap();
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    let t = text(&o);
    assert!(o.status.success() && t.contains("skip pretrain") && !t.contains("pretrain is done, but"), "{t}");
    // a class gone from the test folder, whose classes no longer match the training folder's:
    // the split cannot be opened now, which the skip says (it said nothing)
    std::fs::rename(test.join("class_1"), d.join("class_1-aside")).unwrap();
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    let t = text(&o);
    assert!(o.status.success() && !t.contains("pretrain is done, but"), "{t}");
    assert!(t.contains("eval-knn-ijepa is done, but its data cannot be read now (") && t.contains("only in training: class_1") && t.contains("its results are of the data it read then"), "{t}");
    assert_eq!(t.matches("is done, but").count(), 1, "{t}");
}

/// A class folder that is a broken symbolic link is said, not dropped without a word (the
/// labels would miss a class).
#[test]
fn a_broken_class_link_is_said() {
    let d = scratch("brokenlink");
    let data = d.join("data");
    make_folder(&data, 2, 16);
    std::os::unix::fs::symlink(d.join("gone"), data.join("class_9")).unwrap();
    let f = d.join("exp.kdl");
    std::fs::write(&f, experiment(&data, "fail")).unwrap();
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("class_9: a symbolic link to") && t.contains("which does not exist: not a class folder"), "{t}");
    // once a run, not once a listing (the check, the pretraining, each evaluation: 5 times)
    assert_eq!(t.matches("which does not exist: not a class folder").count(), 1, "{t}");
}

/// A run that fails part way (here on an unreadable image) records in its manifest the steps
/// it did, as its metrics do (it recorded 0).
#[test]
fn a_failed_run_records_the_steps_it_did() {
    let d = scratch("failed-steps");
    let data = d.join("data");
    make_folder(&data, 2, 64);
    std::fs::write(data.join("class_1").join("img_3.png"), b"\x89PNG\r\n\x1a\n truncated").unwrap();
    let f = d.join("f.kdl");
    std::fs::write(
        &f,
        format!(
            "experiment \"f\" {{\n    data \"image-folder\" root=\"{}\" {{ crop-size 32; batch-size 8; workers 1 }}\n    encoder width=16 depth=1 heads=2 patch=4\n    predictor depth=1 width=8 heads=2\n    mask \"multi-block\" {{ min-keep 3 }}\n    epochs 3\n    log-every 1\n    precision \"fp32\"\n}}\n",
            data.display()
        ),
    )
    .unwrap();
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    let run = common::pretrain_in(&d.join("runs").join("f")).expect("a pretraining folder");
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let last: u64 = metrics.lines().last().unwrap().split(',').next().unwrap().parse().unwrap();
    assert_eq!((m["status"].as_str(), m["steps"].as_u64()), (Some("failed"), Some(last)), "{m}\n{metrics}");
    assert!(last > 0, "the image fails after some steps here: {metrics}");
    // the steps done are checkpointed (they were lost back to the last epoch's end), and once
    // the image is readable the same command resumes there
    assert!(t.contains(&format!("the {last} steps done are checkpointed in")) && run.join("checkpoints/latest.safetensors").is_file(), "{t}");
    std::fs::copy(data.join("class_1").join("img_4.png"), data.join("class_1").join("img_3.png")).unwrap();
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    let t = text(&o);
    assert!(o.status.success() && t.contains(&format!("at step {last} ")), "{t}");
}

/// Class folders whose names are not UTF-8 are told apart by their bytes: a test folder with
/// another class than the training folder's is refused (both read `x\u{FFFD}` once made UTF-8,
/// and every test label was shifted by one without a word).
#[test]
fn class_names_that_are_not_utf8_are_compared_exactly() {
    use std::os::unix::ffi::OsStrExt;
    let d = scratch("non-utf8");
    let (data, test) = (d.join("data"), d.join("test"));
    make_folder(&data, 2, 12);
    make_folder(&test, 2, 4);
    let name = |b: &[u8]| std::ffi::OsStr::from_bytes(b).to_os_string();
    for (root, names) in [(&data, [b"x\xe8", b"x\xe9"]), (&test, [b"x\xe9", b"x\xea"])] {
        for (c, n) in names.iter().enumerate() {
            std::fs::rename(root.join(format!("class_{c}")), root.join(name(&n[..]))).unwrap();
        }
    }
    let o = run_evaluated(&d, &data, &test, "eval \"knn\" { k 3; }");
    let t = text(&o);
    assert!(!o.status.success() && t.contains("does not have the classes of the training folder"), "{t}");
    assert!(t.contains(r#"only in training: "x\xE8""#) && t.contains(r#"only in test: "x\xEA""#), "{t}");
    // names that print alike, `café` composed (é) and decomposed (e and a combining accent),
    // are told apart in the message (it read "only in training: café; only in test: café")
    for (root, names) in [(&data, ["caf\u{e9}", "x\u{e9}"]), (&test, ["cafe\u{301}", "x\u{e9}"])] {
        let classes: Vec<_> = std::fs::read_dir(root).unwrap().flatten().map(|e| e.path()).collect();
        for (class, n) in classes.into_iter().zip(names) {
            std::fs::rename(class, root.join(n)).unwrap();
        }
    }
    let o = run_evaluated(&d, &data, &test, "eval \"knn\" { k 3; }");
    let t = text(&o);
    assert!(t.contains(r"only in training: caf\u{e9}") && t.contains(r"only in test: cafe\u{301}") && t.contains("Unicode normalisation"), "{t}");
}

/// A named pipe with an image's name (opening it waits for a writer forever: the run hung) is
/// refused by name when the folder is listed.
#[test]
fn a_named_pipe_in_an_image_folder_is_refused() {
    let d = scratch("fifo");
    let data = d.join("data");
    make_folder(&data, 2, 8);
    let pipe = data.join("class_1").join("pipe.png");
    let c = std::ffi::CString::new(pipe.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let f = d.join("exp.kdl");
    std::fs::write(&f, experiment(&data, "skip")).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ijepa"))
        .args(["run", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > std::time::Duration::from_secs(120) {
            child.kill().unwrap();
            panic!("the run hung on a named pipe");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("pipe.png: not a regular file (a named pipe, a socket or a device)"), "{t}");
}

/// A low-shot `split-file` is read before pretraining, as the test folder is (a line naming no
/// file stopped the run only after its pretraining), and one that labels no image of a class
/// says so.
#[test]
fn a_split_file_is_checked_before_pretraining() {
    let d = scratch("split-file");
    let data = d.join("data");
    make_folder(&data, 3, 12);
    let list = d.join("split.txt");
    std::fs::write(&list, "class_0/img_1.png\nclass_1/img_2.png\nclass_2/nonexistent.png\n").unwrap();
    let eval = format!("eval \"low-shot\" {{ split-file \"{}\"; }}", list.display());
    let o = run_evaluated(&d, &data, &data, &eval);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("split-file, checked before pretraining") && t.contains("line 3: class_2/nonexistent.png"), "{t}");
    let trained = std::fs::read_dir(d.join("runs/folder")).map(|r| r.count()).unwrap_or(0);
    assert_eq!(trained, 0, "{t}");
    // a linear head choosing among its grid on a held-out part of the list's few, which holds
    // out none of one image a class: refused before pretraining (it stopped after it)
    std::fs::write(&list, "class_0/img_1.png\nclass_1/img_2.png\nclass_2/img_3.png\n").unwrap();
    let linear = format!("eval \"low-shot\" {{ split-file \"{}\"; head \"linear\"; }}", list.display());
    let o = run_evaluated(&d, &data, &data, &linear);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("checked before pretraining") && t.contains("of 3 labelled images leaves no held-out sample"), "{t}");
    assert_eq!(std::fs::read_dir(d.join("runs/folder")).map(|r| r.count()).unwrap_or(0), 0, "{t}");
    // a list of one class: refused before pretraining (its probe answers that class whatever
    // the features; it ran, and scored the test split's share of the class)
    std::fs::write(&list, "class_0/img_1.png\nclass_0/img_2.png\n").unwrap();
    let o = run_evaluated(&d, &data, &data, &eval);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("names images of one class only (class_0)"), "{t}");
    assert_eq!(std::fs::read_dir(d.join("runs/folder")).map(|r| r.count()).unwrap_or(0), 0, "{t}");
    // a list without class_2: runs, and says the probe can never predict it (once)
    std::fs::write(&list, "class_0/img_1.png\nclass_1/img_2.png\n").unwrap();
    let o = run_evaluated(&d, &data, &data, &eval);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert_eq!(t.matches("names no image of 1 of the 3 classes (class_2)").count(), 1, "{t}");
    // an edited list evaluates again, under other folders (it was "done" with the old list's
    // results); the pretraining, which does not read it, stays done
    let folders = |prefix: &str| -> usize {
        std::fs::read_dir(d.join("runs/folder")).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with(prefix)).count()
    };
    let (pretrains, lowshots) = (folders("pretrain-"), folders("eval-low-shot-"));
    assert!(lowshots > 0);
    std::fs::write(&list, "class_0/img_1.png\nclass_1/img_2.png\nclass_2/img_3.png\n").unwrap();
    let o = run_evaluated(&d, &data, &data, &eval);
    let t = text(&o);
    assert!(o.status.success() && !t.contains("names no image of 1 of the 3 classes"), "{t}");
    assert_eq!((folders("pretrain-"), folders("eval-low-shot-")), (pretrains, 2 * lowshots), "{t}");
}

/// A file that cannot be an image (bytes of no JPEG or PNG under `.bmp`) is found when the
/// folder is listed, not when read: with evaluations, `on-error "skip"` stops before
/// pretraining (the probes read every training image: they stopped after it), and a `subset`
/// that leaves the file out runs (the check once refused it for a file it never reads).
#[test]
fn files_that_cannot_be_images_are_found_when_listed() {
    let d = scratch("unreadable");
    let data = d.join("data");
    make_folder(&data, 3, 12);
    std::fs::write(data.join("class_0/zz.bmp"), b"not an image at all").unwrap();
    let test = d.join("test");
    make_folder(&test, 3, 4);
    let skip = |s: String| s.replace("on-error \"fail\"", "on-error \"skip\"");
    let exp = skip(experiment(&data, "fail"))
        .replace("on-error \"skip\"", &format!("on-error \"skip\"\n        test-root \"{}\"", test.display()))
        .replace("    device \"cpu\"\n", "    device \"cpu\"\n    eval \"knn\"\n");
    let f = d.join("exp.kdl");
    std::fs::write(&f, &exp).unwrap();
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("1 training image(s) cannot be read") && t.contains("zz.bmp (neither JPEG nor PNG"), "{t}");
    assert!(!d.join("runs/folder").exists() || std::fs::read_dir(d.join("runs/folder")).unwrap().count() == 0, "{t}");
    // a subset without it: trains and evaluates
    let list = d.join("subset.txt");
    let lines: String = (0..3).flat_map(|c| (0..8).map(move |i| format!("class_{c}/img_{i}.png\n"))).collect();
    std::fs::write(&list, lines).unwrap();
    std::fs::write(&f, exp.replace("on-error \"skip\"", &format!("on-error \"fail\"\n        subset \"{}\"", list.display()))).unwrap();
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    let t = text(&o);
    assert!(o.status.success() && t.contains("eval knn"), "{t}");
}

/// A hidden sub-folder (`.ipynb_checkpoints`) is a class, as torchvision makes it, and images
/// in the root itself are in none: both said once (both went by without a word; the hidden
/// class shifts every label after it).
#[test]
fn hidden_class_folders_and_loose_images_are_said() {
    let d = scratch("hidden");
    let data = d.join("data");
    make_folder(&data, 2, 16);
    std::fs::create_dir(data.join(".ipynb_checkpoints")).unwrap();
    std::fs::copy(data.join("class_0/img_0.png"), data.join(".ipynb_checkpoints/img_0.png")).unwrap();
    std::fs::copy(data.join("class_0/img_0.png"), data.join("loose.png")).unwrap();
    let f = d.join("exp.kdl");
    std::fs::write(&f, experiment(&data, "fail")).unwrap();
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert_eq!(t.matches(".ipynb_checkpoints: a hidden folder, taken as a class").count(), 1, "{t}");
    assert_eq!(t.matches("1 image(s) lie in the root itself, in no class folder").count(), 1, "{t}");
}

/// `bench data` times the loader once every thread has delivered a batch, over whole rounds of
/// a batch a thread: the threads start together, so with fewer warm-up batches than threads the
/// others' first batches arrived ready within the timing and inflated the rate.
#[test]
fn bench_data_warms_up_every_thread() {
    let d = scratch("bench-data");
    make_folder(&d.join("data"), 2, 16);
    let o = ijepa(&["bench", "data", d.join("data").to_str().unwrap(), "--threads", "4", "--warmup", "1", "--batches", "2", "--batch", "2", "--size", "32"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    // (and whole rounds of one batch a thread are timed: 2 batches of 4 threads came decoded
    // before the window, and the rate out 1000x too high)
    assert!(t.contains(" warmup=4 ") && t.contains(" batches=4 ") && t.contains("note: timing 4 batches, not 2"), "{t}");
    // (a window that short is noted: the batches queued ahead of it still count)
    assert!(t.contains("note: the timed window lasted") && t.contains("time more batches (`--batches`)"), "{t}");
    let o = ijepa(&["bench", "data", d.join("data").to_str().unwrap(), "--threads", "1", "--warmup", "3", "--batches", "2", "--batch", "2", "--size", "32"]);
    let t = text(&o);
    assert!(o.status.success() && t.contains(" warmup=3 "), "{t}");
    // an unreadable image is named, without a run's ways out (resuming, the data block's
    // `on-error`), which a benchmark has not
    std::fs::write(d.join("data/class_0/broken.jpg"), [0xff, 0xfe]).unwrap();
    let o = ijepa(&["bench", "data", d.join("data").to_str().unwrap(), "--threads", "1", "--warmup", "1", "--batches", "40", "--batch", "2", "--size", "32"]);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("broken.jpg: unsupported format") && !t.contains("resumes") && !t.contains("on-error"), "{t}");
    // a link to nothing is named as the listing finds it, as a run names it (it read "No
    // such file or directory" of a file `ls` lists, once a loader thread reached it)
    std::fs::remove_file(d.join("data/class_0/broken.jpg")).unwrap();
    std::os::unix::fs::symlink(d.join("nowhere.png"), d.join("data/class_0/dangling.png")).unwrap();
    let o = ijepa(&["bench", "data", d.join("data").to_str().unwrap(), "--threads", "1", "--warmup", "1", "--batches", "2", "--batch", "2", "--size", "32"]);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("dangling.png (a symbolic link to nothing)"), "{t}");
    std::fs::remove_file(d.join("data/class_0/dangling.png")).unwrap();
    // fewer images than a batch: the flag to lower is `--batch` (it said the language's
    // `batch-size`, and ranks)
    let o = ijepa(&["bench", "data", d.join("data").to_str().unwrap(), "--threads", "1", "--batch", "64", "--size", "32"]);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("32 image(s), less than one batch of 64 (`--batch`): lower `--batch` to at most 32") && !t.contains("batch-size") && !t.contains("rank"), "{t}");
}

/// A skipped file whose name holds a line break or bytes that are not UTF-8 is one line of
/// `skipped.txt`, escaped as class names are, naming that file: the line break split it over
/// two lines and the bytes were replaced by U+FFFD, a path that does not exist.
#[cfg(unix)]
#[test]
fn skipped_names_are_one_line_each_and_name_the_file() {
    use std::os::unix::ffi::OsStrExt;
    let d = scratch("skipped-names");
    let data = d.join("data");
    make_folder(&data, 2, 16);
    let broken = b"\x89PNG\r\n\x1a\n broken";
    std::fs::write(data.join("class_1").join("evil\nsecond.png"), broken).unwrap();
    std::fs::write(data.join("class_1").join(std::ffi::OsStr::from_bytes(b"bad\xff.png")), broken).unwrap();
    let f = d.join("skip.kdl");
    std::fs::write(&f, experiment(&data, "skip")).unwrap();
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let run = common::pretrain_in(&d.join("runs").join("folder")).expect("a pretraining folder");
    let listed = std::fs::read_to_string(run.join("skipped.txt")).unwrap();
    let mut lines: Vec<&str> = listed.lines().collect();
    lines.sort();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(lines[0].starts_with('"') && lines[0].ends_with("class_1/bad\\xFF.png\""), "{listed}");
    assert!(lines[1].starts_with('"') && lines[1].ends_with("class_1/evil\\nsecond.png\""), "{listed}");
    assert!(t.contains("class_1/evil\\nsecond.png") && !t.contains('\u{FFFD}'), "{t}");
}
