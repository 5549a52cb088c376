//! End-to-end tests of the `ijepa` binary: tiny real runs, diagnostics, parity, masks, bench.

mod common;
use common::{ijepa, scratch};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// (stdout, stderr) apart.
fn outputs(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

/// What a file says before anything trains, in `check` and `plan` alike: the data block's
/// augmentations a DINO experiment does not read (it was said only where pretraining started),
/// and a sweep over recipes that leaves the optimizer and data pipeline to each recipe's
/// defaults (the methods were compared on other flips and betas without a word).
#[test]
fn check_and_plan_say_what_a_file_leaves_unread_or_apart() {
    let d = scratch("check-warnings");
    let dino = write(&d, "dino.kdl", "experiment \"d\" {\n    recipe \"dino\"\n    data \"fashion-mnist\" { crop-size 16; batch-size 16; crop-scale 0.5 1.0; }\n    encoder width=32 depth=2 heads=2 patch=4\n    dino { local-size 8; }\n}\n");
    let dino_flip0 = write(&d, "dino-flip0.kdl", "experiment \"d\" {\n    recipe \"dino\"\n    data \"fashion-mnist\" { crop-size 16; batch-size 16; horizontal-flip 0; }\n    encoder width=32 depth=2 heads=2 patch=4\n    dino { local-size 8; }\n}\n");
    let frozen_dino = write(&d, "frozen-dino.kdl", "experiment \"d\" {\n    recipe \"dino\"\n    data \"fashion-mnist\" { crop-size 16; batch-size 16; }\n    encoder width=32 depth=2 heads=2 patch=4\n    dino { local-size 8; momentum-teacher 1.0; }\n}\n");
    let frozen_last = write(&d, "frozen-last.kdl", "experiment \"d\" {\n    recipe \"dino\"\n    data \"fashion-mnist\" { crop-size 16; batch-size 16; }\n    encoder width=32 depth=2 heads=2 patch=4\n    dino { local-size 8; freeze-last-layer 2; }\n    epochs 2\n}\n");
    let frozen_ijepa = write(&d, "frozen-ijepa.kdl", "experiment \"i\" {\n    data \"fashion-mnist\" { crop-size 32; batch-size 16; }\n    encoder width=32 depth=2 heads=2 patch=4\n    predictor depth=1 width=16 heads=2\n    mask \"multi-block\" { min-keep 3; }\n    ema start=1 final=1\n}\n");
    let still = write(&d, "still.kdl", "experiment \"s\" {\n    recipe \"mae\"\n    data \"fashion-mnist\" { crop-size 16; batch-size 16; }\n    encoder width=32 depth=2 heads=2 patch=4\n    optimizer \"adamw\" { lr start=0 peak=0 final=0; }\n}\n");
    let still_no_warmup = write(&d, "still-no-warmup.kdl", "experiment \"s\" {\n    data \"fashion-mnist\" { crop-size 32; batch-size 16; }\n    encoder width=32 depth=2 heads=2 patch=4\n    predictor depth=1 width=16 heads=2\n    mask \"multi-block\" { min-keep 3; }\n    optimizer \"adamw\" { lr peak=0 final=0 warmup-epochs=0; }\n}\n");
    let methods = write(&d, "methods.kdl", "experiment \"m\" {\n    data \"fashion-mnist\" { crop-size 32; batch-size 16; }\n    encoder width=32 depth=2 heads=2 patch=4\n    predictor depth=1 width=16 heads=2\n    mask \"multi-block\" { min-keep 3; }\n}\nsweep { vary \"recipe\" \"ijepa\" \"mae\"; }\n");
    let long_warmup = write(&d, "long-warmup.kdl", "experiment \"l\" {\n    data \"fashion-mnist\" { crop-size 32; batch-size 16; }\n    encoder width=32 depth=2 heads=2 patch=4\n    predictor depth=1 width=16 heads=2\n    mask \"multi-block\" { min-keep 3; }\n    optimizer \"adamw\" { lr warmup-epochs=3; }\n    epochs 4\n    ipe-scale 0.5\n}\n");
    // (a warm-up equal to a schedule whose product carries float noise, 0.1 x 3; one as long as
    // a run whose schedule ipe-scale stretches; MAE's, whose rate does not alternate past its
    // schedule and which has no EMA; and a sweep whose points' warm-ups differ)
    let noisy = write(&d, "noisy.kdl", "experiment \"n\" {\n    data \"fashion-mnist\" { crop-size 32; batch-size 16; }\n    encoder width=32 depth=2 heads=2 patch=4\n    predictor depth=1 width=16 heads=2\n    mask \"multi-block\" { min-keep 3; }\n    optimizer \"adamw\" { lr warmup-epochs=0.3; }\n    epochs 3\n    ipe-scale 0.1\n}\n");
    let stretched = write(&d, "stretched.kdl", "experiment \"t\" {\n    data \"fashion-mnist\" { crop-size 32; batch-size 16; }\n    encoder width=32 depth=2 heads=2 patch=4\n    predictor depth=1 width=16 heads=2\n    mask \"multi-block\" { min-keep 3; }\n    optimizer \"adamw\" { lr warmup-epochs=3; }\n    epochs 2\n    ipe-scale 2\n}\n");
    let mae_short = write(&d, "mae-short.kdl", "experiment \"m\" {\n    recipe \"mae\"\n    data \"fashion-mnist\" { crop-size 16; batch-size 16; }\n    encoder width=32 depth=2 heads=2 patch=4\n    optimizer \"adamw\" { lr blr=1.5e-4 warmup-epochs=1.5; }\n    epochs 2\n    ipe-scale 0.5\n}\n");
    let recipes = write(&d, "recipes.kdl", "experiment \"r\" {\n    data \"fashion-mnist\" { crop-size 32; batch-size 16; }\n    encoder width=32 depth=2 heads=2 patch=4\n    predictor depth=1 width=16 heads=2\n    mask \"multi-block\" { min-keep 3; }\n    dino { local-size 16; }\n    epochs 2\n}\nsweep { vary \"recipe\" \"ijepa\" \"mae\" \"dino\"; }\n");
    let warmup = write(&d, "warmup.kdl", "experiment \"w\" {\n    data \"fashion-mnist\" { crop-size 32; batch-size 16; }\n    encoder width=32 depth=2 heads=2 patch=4\n    predictor depth=1 width=16 heads=2\n    mask \"multi-block\" { min-keep 3; }\n    eval \"finetune\" { epochs 1; baselines \"random-init\"; }\n}\n");
    for cmd in ["check", "plan"] {
        let runs = d.join("runs");
        let args = |file: &Path| -> Vec<String> {
            let mut a = vec![cmd.to_string(), file.display().to_string()];
            if cmd == "plan" {
                a.extend(["--runs-dir".to_string(), runs.display().to_string()]);
            }
            a
        };
        let o = ijepa(&args(&dino).iter().map(String::as_str).collect::<Vec<_>>());
        let (out, err) = outputs(&o);
        assert!(o.status.success() && err.contains("DINO's views come from its own multi-crop") && err.contains("the data block's crop-scale is not read"), "{cmd}: {out}{err}");
        // written at its default, an augmentation is asked for too: DINO's views still flip
        let o = ijepa(&args(&dino_flip0).iter().map(String::as_str).collect::<Vec<_>>());
        let (out, err) = outputs(&o);
        assert!(o.status.success() && err.contains("the data block's horizontal-flip is not read"), "{cmd}: {out}{err}");
        assert!(!err.contains("never moves") && !err.contains("the learning rate is 0"), "{cmd}: {err}");
        // a teacher (or target encoder) whose EMA stays at 1 is what every evaluation reads
        for frozen in [&frozen_dino, &frozen_ijepa] {
            let o = ijepa(&args(frozen).iter().map(String::as_str).collect::<Vec<_>>());
            let (out, err) = outputs(&o);
            assert!(o.status.success() && err.contains("never moves") && err.contains("keeps it at its initialisation"), "{cmd}: {out}{err}");
        }
        // ... as is every weight under a learning rate of 0 throughout (said by nothing)
        let o = ijepa(&args(&still).iter().map(String::as_str).collect::<Vec<_>>());
        let (out, err) = outputs(&o);
        assert!(o.status.success() && err.contains("the learning rate is 0 throughout (`lr start=0 peak=0 final=0`): no weight moves"), "{cmd}: {out}{err}");
        // (with no warm-up, `start` is not read: I-JEPA's default 2e-4 there trains nothing too)
        let o = ijepa(&args(&still_no_warmup).iter().map(String::as_str).collect::<Vec<_>>());
        let (out, err) = outputs(&o);
        assert!(o.status.success() && err.contains("(`lr peak=0 final=0` with no warm-up, where `start=` is not read)"), "{cmd}: {out}{err}");
        // ... as are DINO's prototypes frozen for the whole run (said only as pretraining began)
        let o = ijepa(&args(&frozen_last).iter().map(String::as_str).collect::<Vec<_>>());
        let (out, err) = outputs(&o);
        assert!(o.status.success() && err.contains("DINO's last layer is frozen for the first 2 epoch(s)") && err.contains("the whole run of 2"), "{cmd}: {out}{err}");
        let o = ijepa(&args(&methods).iter().map(String::as_str).collect::<Vec<_>>());
        let (out, err) = outputs(&o);
        assert!(o.status.success() && err.contains("the points of `vary \"recipe\"` train with other settings beside their recipe") && err.contains("optimizer betas: ijepa 0.9 0.999, mae 0.9 0.95"), "{cmd}: {out}{err}");
        // a fine-tuning warm-up (default 1 epoch) as long as its 1 epoch: said once, before
        // anything runs (its stages said it as each began, after the pretraining)
        let o = ijepa(&args(&warmup).iter().map(String::as_str).collect::<Vec<_>>());
        let (out, err) = outputs(&o);
        assert!(o.status.success() && err.matches("the fine-tuning's learning-rate warmup (1 epoch(s)) is at least as long as its 1 epoch(s)").count() == 1, "{cmd}: {out}{err}");
        // a pretraining warm-up longer than its schedule (said only as pretraining began, in
        // steps), and schedules that end before the run
        let o = ijepa(&args(&long_warmup).iter().map(String::as_str).collect::<Vec<_>>());
        let (out, err) = outputs(&o);
        assert!(o.status.success() && err.matches("the learning-rate warm-up (3 epoch(s)) lasts at least the whole schedule (4 epoch(s) x ipe-scale 0.5 = 2)").count() == 1, "{cmd}: {out}{err}");
        assert!(err.contains("the rate alternates between its peak and its final value") && err.contains("below 2)"), "{cmd}: {err}");
        assert!(err.matches("the schedules last ipe-scale 0.5 x 4 epoch(s) = 2 epoch(s) of the run's 4").count() == 1, "{cmd}: {err}");
        let err = outputs(&ijepa(&args(&noisy).iter().map(String::as_str).collect::<Vec<_>>())).1;
        assert!(err.contains("the learning-rate warm-up (0.3 epoch(s)) lasts at least the whole schedule (3 epoch(s) x ipe-scale 0.1 = 0.3)") && err.contains("= 0.3 epoch(s) of the run's 3") && !err.contains("0000000"), "{cmd}: {err}");
        let err = outputs(&ijepa(&args(&stretched).iter().map(String::as_str).collect::<Vec<_>>())).1;
        assert!(err.contains("the learning-rate warm-up (3 epoch(s)) lasts at least the whole run (2 epoch(s), of a schedule ipe-scale 2 stretches to 4): the rate never decays within the run") && err.contains("below 2)"), "{cmd}: {err}");
        let err = outputs(&ijepa(&args(&mae_short).iter().map(String::as_str).collect::<Vec<_>>())).1;
        assert!(err.contains("the learning-rate warm-up (1.5 epoch(s)) lasts at least the whole schedule") && err.contains("alternates") && !err.contains("EMA") && err.contains("past them the learning rate and weight decay follow their formulas"), "{cmd}: {err}");
        let err = outputs(&ijepa(&args(&recipes).iter().map(String::as_str).collect::<Vec<_>>())).1;
        assert!(err.contains("(40 epoch(s)) lasts at least the whole schedule (2 epoch(s))") && err.contains("train more epochs (at points `recipe-ijepa`, `recipe-mae`)") && err.contains("(10 epoch(s))") && err.contains("train more epochs (at point `recipe-dino`)"), "{cmd}: {err}");
        // (not of the files whose warm-up ends within their schedules)
        let o = ijepa(&args(&still).iter().map(String::as_str).collect::<Vec<_>>());
        assert!(!outputs(&o).1.contains("lasts at least the whole schedule") && !outputs(&o).1.contains("the schedules last"), "{cmd}");
    }
    // ... and `ijepa eval` of the file says it too (the evaluation said it as it began)
    let o = ijepa(&["eval", warmup.to_str().unwrap(), "--checkpoint", d.join("none.safetensors").to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(err.matches("the fine-tuning's learning-rate warmup (1 epoch(s)) is at least as long as its 1 epoch(s)").count() == 1, "{out}{err}");
    // in a launched job rank 0 alone says it (every rank printed the same lines)
    for rank in ["0", "1"] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_ijepa"))
            .args(["run", "--dry-run", methods.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()])
            .envs([("RANK", rank), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "29500")])
            .output()
            .unwrap();
        let (out, err) = outputs(&o);
        assert!(o.status.success(), "rank {rank}: {out}{err}");
        assert_eq!(err.contains("train with other settings beside their recipe"), rank == "0", "rank {rank}: {err}");
    }
    // `check` of several files names the file each warning is of (stderr alone could not tell)
    let o = ijepa(&["check", frozen_dino.to_str().unwrap(), still.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(o.status.success() && err.contains("frozen-dino.kdl: DINO's teacher") && err.contains("still.kdl: the learning rate is 0"), "{out}{err}");
    let o = ijepa(&["check", still.to_str().unwrap()]);
    assert!(outputs(&o).1.contains("warning: the learning rate is 0"), "{}", outputs(&o).1);
}

#[test]
fn check_accepts_every_shipped_experiment() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "kdl"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    // the four official presets keep the official placeholder for the datasets folder: the
    // language accepts them, the input check refuses to run them until root= is edited
    let (presets, runnable): (Vec<String>, Vec<String>) =
        files.into_iter().partition(|f| std::fs::read_to_string(f).unwrap().contains("root=\"$replace_this"));
    assert_eq!(presets.len(), 4, "{presets:?}");
    let args: Vec<&str> = std::iter::once("check").chain(runnable.iter().map(|s| s.as_str())).collect();
    let o = ijepa(&args);
    let (out, err) = outputs(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert_eq!(out.lines().filter(|l| l.starts_with("ok: ")).count(), runnable.len(), "{out}");
    // a sweep says what its points vary (the line's settings are the experiment's before it)
    assert!(out.lines().any(|l| l.contains("fmnist-ijepa-sweep-crop.kdl") && l.contains("sweep of 2 points varying data.crop-scale")), "{out}");
    for preset in &presets {
        assert!(ijepa_dsl::load_study(Path::new(preset)).is_ok(), "{preset} does not parse");
        let o = ijepa(&["check", preset]);
        let (out, err) = outputs(&o);
        assert!(!o.status.success() && err.contains("ijepa::dsl::missing_input") && err.contains("placeholder"), "{out}\n{err}");
    }
}

#[test]
fn check_reports_an_unknown_node_with_its_span() {
    let d = scratch("unknown-node");
    let f = write(&d, "x.kdl", "experiment \"x\" {\n    encoder \"vit-tiny\" patch=4\n    data \"fashion-mnist\" { crop-size 32 }\n    mask \"multi-block\" { min-keep 4 }\n    learning-rate 0.1\n}\n");
    let o = ijepa(&["check", f.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(err.contains("ijepa::dsl::unknown_node"), "{err}");
    assert!(err.contains("learning-rate"), "{err}");
    assert!(err.contains("x.kdl:5:5"), "span (line 5, column 5) missing: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn check_reports_a_string_where_a_number_belongs() {
    let d = scratch("wrong-type");
    let f = write(&d, "y.kdl", "experiment \"y\" {\n    encoder \"vit-tiny\" patch=4\n    data \"fashion-mnist\" {\n        crop-size 32\n        batch-size \"sixty-four\"\n    }\n    mask \"multi-block\" { min-keep 4 }\n}\n");
    let o = ijepa(&["check", f.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(err.contains("ijepa::dsl::wrong_type"), "{err}");
    assert!(err.contains("y.kdl:5:20"), "span (line 5, column 20) missing: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// A runs or report folder whose name is not UTF-8 (a Latin-1 name) is a folder: the lock
/// recorded the command line through `std::env::args`, which panicked on it, leaving an empty
/// lock behind.
#[test]
fn a_folder_name_that_is_not_utf8_is_a_folder() {
    use std::os::unix::ffi::OsStrExt;
    let d = scratch("not-utf8");
    let runs = d.join(std::ffi::OsStr::from_bytes(b"runs-\xff"));
    std::fs::create_dir_all(&runs).unwrap();
    let out = d.join(std::ffi::OsStr::from_bytes(b"rep-\xff"));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ijepa")).arg("report").arg(&runs).arg("--out").arg(&out).output().unwrap();
    let (stdout, err) = outputs(&o);
    assert!(o.status.success() && !err.contains("panicked") && out.join("report.md").is_file(), "{stdout}{err}");
    let lock = std::fs::read_to_string(out.join(".lock")).unwrap_or_default();
    assert!(lock.contains("report"), "{lock}");
}

#[test]
fn check_of_a_missing_file_is_a_clear_error() {
    let o = ijepa(&["check", "/nonexistent/exp.kdl"]);
    let (_, err) = outputs(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("/nonexistent/exp.kdl"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn parity_passes_on_the_shipped_fixture() {
    let o = ijepa(&["parity", "tests/fixtures/official-step-tiny.safetensors"]);
    let (out, err) = outputs(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.trim_end().ends_with("PASS"), "{out}");
    // outputs, loss, gradients, updates, moments
    assert_eq!(out.matches(" ok").count(), 5, "{out}");
    // the tensors without their description: the pair is named, not a bare "No such file"
    let d = scratch("parity-alone");
    let alone = d.join("step.safetensors");
    std::fs::copy("tests/fixtures/official-step-tiny.safetensors", &alone).unwrap();
    let o = ijepa(&["parity", alone.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(o.status.code() == Some(2) && err.contains("step.json is missing: a parity fixture is NAME.safetensors with NAME.json beside it"), "{out}{err}");
    // a path that is no file is said so (it was "its description ... is missing")
    let o = ijepa(&["parity", d.join("nothing.safetensors").to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(o.status.code() == Some(2) && err.contains("nothing.safetensors: does not exist"), "{out}{err}");
    // inputs that do not fit the description are named before the step, exit 2 (no
    // comparison made; 1 is a step that differs): libtorch's errors with a C++ backtrace before
    std::fs::copy("tests/fixtures/official-step-tiny.json", d.join("step.json")).unwrap();
    let tensors: Vec<(String, tch::Tensor)> = tch::Tensor::read_safetensors("tests/fixtures/official-step-tiny.safetensors").unwrap();
    let edited = |name: &str, key: &str, f: &dyn Fn(&tch::Tensor) -> tch::Tensor| {
        let path = d.join(format!("{name}.safetensors"));
        let t: Vec<(String, tch::Tensor)> = tensors.iter().map(|(k, v)| (k.clone(), if k == key { f(v) } else { v.shallow_clone() })).collect();
        tch::Tensor::write_safetensors(&t, &path).unwrap();
        std::fs::copy("tests/fixtures/official-step-tiny.json", d.join(format!("{name}.json"))).unwrap();
        path
    };
    for (name, key, f, want) in [
        ("half", "input.images", (|t: &tch::Tensor| t.to_kind(tch::Kind::Half)) as fn(&tch::Tensor) -> tch::Tensor, "input `input.images` is Half [4, 3, 32, 32], where the fixture's description calls for Float [*, 3, 32, 32]"),
        ("batch", "input.images", |t| t.narrow(0, 0, 2), "input `input.masks_enc` is Int64 [1, 4, 10], where the fixture's description calls for Int64 [*, 2, *]"),
        ("index", "input.masks_enc", |t| t.fill(100_000), "input `input.masks_enc` holds patch indices 100000..=100000, outside the 64 patches"),
        // tensors no official step writes (every group failed, exit 1, or libtorch's backtrace)
        ("nan", "grad.encoder.norm.weight", |t| t.fill(f64::NAN), "`grad.encoder.norm.weight` holds 96 NaN or infinite value(s)"),
        ("shaped", "after.encoder.norm.weight", |t| t.narrow(0, 0, 95), "the fixture's updates tensor `encoder.norm.weight` is shaped [95], the replay's [96]"),
        ("init-half", "init.encoder.norm.weight", |t| t.to_kind(tch::Kind::Half), "`init.encoder.norm.weight` is Half"),
    ] {
        let o = ijepa(&["parity", edited(name, key, &f).to_str().unwrap()]);
        let (out, err) = outputs(&o);
        assert!(o.status.code() == Some(2) && err.contains(want) && !err.contains("frame #"), "{name}: {out}{err}");
    }
    // a description that contradicts its tensors (edited, or of another step) is refused: it
    // passed, the replay reading only the tensors
    for (fixture, field, value, want) in [
        ("official-step-tiny", "/batch", serde_json::json!(8), "says batch 8, but the fixture's tensors hold 4"),
        ("official-step-tiny", "/n_targets", serde_json::json!(3), "says n_targets 3"),
        ("official-step-tiny", "/optimizer/kind", serde_json::json!("sgd"), "says optimizer \"sgd\""),
        ("mae-step-tiny", "/len_keep", serde_json::json!(20), "says len_keep 20"),
        ("dino-step-tiny", "/ncrops", serde_json::json!(5), "says ncrops 5"),
        // a description no model can have is said to be one, exit 2: NaNs replayed as a
        // mismatch (exit 1), or its tensors' shapes and keys were blamed
        ("official-step-tiny", "/layer_norm_eps", serde_json::json!(-1.0), "the description's encoder: layer-norm eps -1"),
        ("official-step-tiny", "/image_size", serde_json::json!(0), "the description's encoder: image size 0"),
        // a side the images do not have, before a model of it is built (2^33 overflowed building
        // its position table: a panic)
        ("official-step-tiny", "/image_size", serde_json::json!(8589934592u64), "where the fixture's description calls for Float [*, 3, 8589934592, 8589934592]"),
        ("mae-step-tiny", "/image_size", serde_json::json!(8589934592u64), "where the fixture's description calls for Float [*, 3, 8589934592, 8589934592]"),
        ("dino-step-tiny", "/global_size", serde_json::json!(8589934592u64), "where the fixture's description calls for Float [*, 3, 8589934592, 8589934592]"),
        ("official-step-tiny", "/depth", serde_json::json!(0), "the description's encoder: encoder depth 0"),
        ("official-step-tiny", "/predictor_depth", serde_json::json!(0), "contradicts--predictor_depth.json: the description's model: predictor depth 0: a predictor has at least one block"),
        ("mae-step-tiny", "/dec_depth", serde_json::json!(0), "contradicts--dec_depth.json: the description's model: decoder depth 0: a decoder has at least one block"),
        ("mae-step-tiny", "/eps", serde_json::json!(-1.0), "the description's model: layer-norm eps -1"),
        // (a patch of 0 panicked dividing by zero; DINO's and the predictor's read "config:")
        ("mae-step-tiny", "/patch", serde_json::json!(0), "the description's model: patch size 0"),
        ("mae-step-tiny", "/dec_width", serde_json::json!(0), "the description's model: decoder width 0"),
        ("dino-step-tiny", "/depth", serde_json::json!(0), "contradicts--depth.json: the description's model: encoder depth 0"),
        // values no step has (they replayed NaNs, read as a mismatch: exit 1)
        ("official-step-tiny", "/ema_momentum", serde_json::json!(2.0), "says ema_momentum 2, which must be in [0, 1]"),
        ("official-step-tiny", "/optimizer/eps", serde_json::json!(-1e-8), "says optimizer eps -0.00000001, which must be positive"),
        ("mae-step-tiny", "/adam_eps", serde_json::json!(-1e-8), "says adam_eps -0.00000001, which must be positive"),
        ("dino-step-tiny", "/student_temp", serde_json::json!(0.0), "says student_temp 0, which must be positive"),
        ("dino-step-tiny", "/center_momentum", serde_json::json!(2.0), "says center_momentum 2, which must be in [0, 1]"),
        ("official-step-tiny", "/optimizer/betas/1", serde_json::json!(1.0), "says optimizer beta2 1, which must be in [0, 1)"),
        // a constant of the official model the replay cannot change: stated otherwise, the
        // description was ignored and passed
        ("mae-step-tiny", "/norm_pix_eps", serde_json::json!(0.0), "says norm_pix_eps 0, but the replay computes with the official 0.000001"),
        ("dino-step-tiny", "/eps", serde_json::json!(-1.0), "says eps -1, but the replay computes with the official 0.000001"),
    ] {
        let name = format!("contradicts-{}", field.replace('/', "-"));
        std::fs::copy(format!("tests/fixtures/{fixture}.safetensors"), d.join(format!("{name}.safetensors"))).unwrap();
        let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(format!("tests/fixtures/{fixture}.json")).unwrap()).unwrap();
        *json.pointer_mut(field).unwrap() = value;
        std::fs::write(d.join(format!("{name}.json")), json.to_string()).unwrap();
        let o = ijepa(&["parity", d.join(format!("{name}.safetensors")).to_str().unwrap()]);
        let (out, err) = outputs(&o);
        assert!(o.status.code() == Some(2) && err.contains(want), "{fixture} {field}: {out}{err}");
    }
    // no step replayed under a kernel that is none: 2, not a step that differs
    let o = Command::new(env!("CARGO_BIN_EXE_ijepa")).args(["parity", "tests/fixtures/official-step-tiny.safetensors"]).env("IJEPA_CPU_PRODUCTS", "mkl").output().unwrap();
    let (out, err) = outputs(&o);
    assert!(o.status.code() == Some(2) && err.contains("IJEPA_CPU_PRODUCTS"), "{out}{err}");
    // a mismatch says its relative error of what it is relative to (an EMA target's update
    // was said "5.8e-3 of its scale 4.0e-6" of an error of 1.0e-6)
    std::fs::copy("tests/fixtures/official-step-tiny.safetensors", d.join("ema.safetensors")).unwrap();
    let json = std::fs::read_to_string("tests/fixtures/official-step-tiny.json").unwrap();
    let mut desc: serde_json::Value = serde_json::from_str(&json).unwrap();
    desc["ema_momentum"] = serde_json::json!(0.997);
    std::fs::write(d.join("ema.json"), desc.to_string()).unwrap();
    let o = ijepa(&["parity", d.join("ema.safetensors").to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    let lines: Vec<&str> = out.lines().filter(|l| l.contains("mismatch: updates target_encoder.")).collect();
    assert!(!lines.is_empty(), "{out}");
    for l in lines {
        let num = |after: &str| -> f64 { l.split(after).nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap() };
        let (err_abs, rel, of) = (num("max abs err "), num(" = "), l.split(" of ").nth(1).unwrap().trim_start_matches("its scale ").split_whitespace().next().unwrap().parse::<f64>().unwrap());
        assert!((err_abs / of - rel).abs() <= 2e-3 * rel, "{l}");
    }
}

#[test]
fn parity_passes_on_the_mae_fixture() {
    let o = ijepa(&["parity", "tests/fixtures/mae-step-tiny.safetensors"]);
    let (out, err) = outputs(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.trim_end().ends_with("PASS") && out.contains("62 tensors") && out.contains("120 tensors"), "{out}");
}

#[test]
fn parity_passes_on_the_dino_fixtures() {
    for name in ["dino-step-tiny", "dino-step-frozen"] {
        let o = ijepa(&["parity", &format!("tests/fixtures/{name}.safetensors")]);
        let (out, err) = outputs(&o);
        assert!(o.status.success(), "{out}{err}");
        assert!(out.trim_end().ends_with("PASS") && out.contains("77 tensors") && out.contains("74 tensors"), "{out}");
    }
    // a fixture written with the student's stochastic depth cannot be replayed (the official
    // draws are torch's): refused by name, not a mismatch
    let d = scratch("dino-parity-drop-path");
    std::fs::copy("tests/fixtures/dino-step-tiny.safetensors", d.join("f.safetensors")).unwrap();
    let json = std::fs::read_to_string("tests/fixtures/dino-step-tiny.json").unwrap();
    assert!(json.contains("\"drop_path_rate\": 0.0"), "{json}");
    std::fs::write(d.join("f.json"), json.replace("\"drop_path_rate\": 0.0", "\"drop_path_rate\": 0.1")).unwrap();
    let o = ijepa(&["parity", d.join("f.safetensors").to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(!o.status.success() && err.contains("drop_path_rate 0.1: the replay draws no stochastic depth"), "{out}{err}");
}

/// A DINO run end to end: multi-crop views through the loader, the monitors on the teacher
/// and student backbones, its evaluations reading `teacher.backbone`, `ijepa eval` of its
/// checkpoint, and `bench step --recipe dino`.
#[test]
fn a_dino_run_trains_and_evaluates_its_teacher() {
    let d = scratch("dino-cli");
    let f = write(
        &d,
        "dino.kdl",
        "experiment \"dino\" {\n    recipe \"dino\"\n    data \"fashion-mnist\" { crop-size 16; batch-size 16; workers 1; limit 96 }\n    encoder width=32 depth=2 heads=2 patch=4\n    dino { out-dim 64; hidden-dim 32; bottleneck-dim 16; local-crops 2; local-size 8; freeze-last-layer 1; }\n    epochs 2\n    checkpoint keep-every=1\n    precision \"fp32\"\n    monitor every=1 images=32 k=5\n    eval \"knn\" { k 5; baselines \"random-init\" }\n}\n",
    );
    let runs = d.join("runs");
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("(dino,") && out.contains("teacher kNN") && out.contains("eval knn      dino "), "{out}");
    let pretrain = std::fs::read_dir(runs.join("dino")).unwrap().map(|e| e.unwrap().path()).find(|p| p.to_string_lossy().contains("pretrain-")).unwrap();
    let metrics = std::fs::read_to_string(pretrain.join("metrics.csv")).unwrap();
    assert!(metrics.lines().next().unwrap().contains("teacher_temp,teacher_momentum"), "{metrics}");
    // both evaluated encoders record their recipe (the report pairs each with its own random init)
    let recipes: Vec<(String, Option<String>)> =
        eval_records(&runs.join("dino")).iter().map(|r| (r["model"].as_str().unwrap().to_string(), r["recipe"].as_str().map(String::from))).collect();
    assert!(recipes.len() == 2 && recipes.iter().all(|(_, r)| r.as_deref() == Some("dino")), "{recipes:?}");
    let fin = pretrain.join("checkpoints/final.safetensors");
    let names: Vec<String> = tch::Tensor::read_safetensors(&fin).unwrap().into_iter().map(|(n, _)| n).collect();
    for n in ["student.backbone.pos_embed", "student.head.last_layer.weight_v", "teacher.backbone.cls_token", "teacher.head.mlp.0.weight", "dino_loss.center"] {
        assert!(names.iter().any(|x| x == n), "{n} missing: {names:?}");
    }
    let runs2 = d.join("runs2");
    let o = ijepa(&["eval", f.to_str().unwrap(), "--checkpoint", fin.to_str().unwrap(), "--runs-dir", runs2.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(o.status.success(), "{out}{err}");
    // the record says which weights it measured: the file's SHA-256 and the step it was written at
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(pretrain.join("manifest.json")).unwrap()).unwrap();
    let final_sha = manifest["checkpoints"].as_array().unwrap().iter().rev().find(|c| c["file"] == "final.safetensors").unwrap()["sha256"].clone();
    let given: Vec<serde_json::Value> = eval_records(&runs2.join("dino")).into_iter().filter(|r| r["model"] == "dino").collect();
    assert!(!given.is_empty() && given.iter().all(|r| r["checkpoint_sha256"] == final_sha && r["checkpoint_step"] == manifest["steps"]), "{given:?}");
    // ... and the epochs the run's final weights had (they were left out)
    assert!(given.iter().all(|r| r["pretrain_epochs"] == 2), "{given:?}");
    // (an epoch's checkpoint says its own; by its absolute path)
    let epoch1 = pretrain.join("checkpoints/epoch-0001.safetensors");
    let runs3 = d.join("runs3");
    let o = ijepa(&["eval", f.to_str().unwrap(), "--checkpoint", epoch1.to_str().unwrap(), "--runs-dir", runs3.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", outputs(&o));
    let given: Vec<serde_json::Value> = eval_records(&runs3.join("dino")).into_iter().filter(|r| r["model"] == "dino").collect();
    assert!(!given.is_empty() && given.iter().all(|r| r["pretrain_epochs"] == 1 && r["checkpoint"] == std::path::absolute(&epoch1).unwrap().to_str().unwrap()), "{given:?}");
    // its teacher's backbone is a transformers ViTModel (class token, learnt positions, tokens
    // in order), not an MAE one (which would shuffle the tokens and has a decoder config)
    let hf = d.join("hf");
    let o = ijepa(&["export", fin.to_str().unwrap(), "--format", "hf", "--out", hf.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(o.status.success() && out.contains("the teacher encoder") && out.contains("as a transformers ViTModel"), "{out}{err}");
    let cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(hf.join("config.json")).unwrap()).unwrap();
    assert_eq!((cfg["model_type"].as_str(), cfg["architectures"][0].as_str(), cfg["num_attention_heads"].as_u64()), (Some("vit"), Some("ViTModel"), Some(2)), "{cfg}");
    assert!(cfg.get("mask_ratio").is_none() && cfg.get("decoder_hidden_size").is_none(), "{cfg}");
    let hf_names: Vec<String> = tch::Tensor::read_safetensors(hf.join("model.safetensors")).unwrap().into_iter().map(|(n, _)| n).collect();
    assert!(hf_names.iter().any(|n| n == "embeddings.cls_token") && hf_names.iter().any(|n| n == "encoder.layer.1.attention.attention.value.weight"), "{hf_names:?}");
    // the same weights as a bare encoder (the official names) are a ViTModel too
    let bare = d.join("teacher.safetensors");
    let o = ijepa(&["export", fin.to_str().unwrap(), "--format", "official", "--out", bare.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", outputs(&o));
    let o = ijepa(&["export", bare.to_str().unwrap(), "--format", "hf", "--heads", "2", "--out", d.join("hf-bare").to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(o.status.success() && out.contains("as a transformers ViTModel"), "{out}{err}");
    // `--encoder context` is DINO's student (its online network): its backbone's weights
    let student = d.join("student.safetensors");
    let o = ijepa(&["export", fin.to_str().unwrap(), "--format", "official", "--encoder", "context", "--out", student.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(o.status.success() && out.contains("the student encoder"), "{out}{err}");
    let ckpt: std::collections::HashMap<String, tch::Tensor> = tch::Tensor::read_safetensors(&fin).unwrap().into_iter().collect();
    for (n, t) in tch::Tensor::read_safetensors(&student).unwrap() {
        assert!(t.equal(&ckpt[&format!("student.backbone.{n}")]), "{n}");
    }
    // the data block's augmentations are I-JEPA's and MAE's: DINO's multi-crop does not read
    // them, so they leave its run (hash) alone and a run that sets them says so
    let text = std::fs::read_to_string(&f).unwrap().replace("limit 96 }", "limit 96; crop-scale 0.5 1.0; horizontal-flip 0.5 }");
    let aug = write(&d, "dino-aug.kdl", &text);
    let o = ijepa(&["plan", aug.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(o.status.success() && out.lines().any(|l| l.contains("pretrain ") && l.contains("] done")), "{out}{err}");
    let o = ijepa(&["run", aug.to_str().unwrap(), "--runs-dir", d.join("runs-aug").to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(o.status.success() && err.contains("the data block's crop-scale, horizontal-flip are not read"), "{out}{err}");
    let o = ijepa(&["masks", f.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(o.status.success() && out.contains("samples no masks: each image becomes 4 views of sides 16, 16, 8, 8"), "{out}{err}");
    // its cost model: the student over every crop, the teacher over the global ones, and a
    // measured step
    let o = ijepa(&["estimate", f.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(o.status.success() && out.contains("student on 2 global crops of 16 patches") && out.contains("measured here   "), "{out}{err}");
    let o = ijepa(&["bench", "step", "--recipe", "dino", "--width", "32", "--depth", "1", "--heads", "2", "--size", "16", "--batch", "4", "--local-crops", "2", "--out-dim", "64", "--hidden-dim", "32", "--bottleneck-dim", "16", "--steps", "2", "--warmup", "1", "--precision", "fp32"]);
    let (out, err) = outputs(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("recipe=dino") && out.contains("local_crops=2 local_size=8 out_dim=64 hidden_dim=32 bottleneck_dim=16"), "{out}");
    // the head the flags give, not the official 2048/256 one (alone ~4.8M parameters here)
    assert!(out.contains("params=0.02M"), "{out}");
    // the line names the encoder the overrides made, not only the preset they started from
    assert!(out.contains("preset=vit-tiny width=32 depth=1 heads=2"), "{out}");
    // DINO's two global crops alone, as `local-crops 0` in the language
    let o = ijepa(&["bench", "step", "--recipe", "dino", "--width", "32", "--depth", "1", "--heads", "2", "--size", "16", "--batch", "4", "--local-crops", "0", "--out-dim", "64", "--steps", "1", "--warmup", "1", "--precision", "fp32"]);
    let (out, err) = outputs(&o);
    assert!(o.status.success() && out.contains("local_crops=0"), "{out}{err}");
    // local crops larger than the global ones are refused, as the language refuses them
    let o = ijepa(&["bench", "step", "--recipe", "dino", "--width", "32", "--depth", "1", "--heads", "2", "--size", "16", "--batch", "4", "--local-size", "32", "--steps", "1", "--warmup", "1", "--precision", "fp32"]);
    let (out, err) = outputs(&o);
    assert!(!o.status.success() && err.contains("--local-size 32") && err.contains("at most --size 16"), "{out}{err}");
}

/// Each recipe reads its schedules where its official code does: I-JEPA's first step takes
/// the values at step 1 (its schedulers are stepped first), MAE's and DINO's at step 0 (their
/// per-iteration tables), so their first step's learning rate is the warm-up's start (0).
#[test]
fn recipes_read_their_schedules_at_their_official_steps() {
    let d = scratch("schedule-steps");
    let body = |recipe: &str, own: &str| {
        format!(
            "experiment \"{recipe}\" {{\n    recipe \"{recipe}\"\n    data \"fashion-mnist\" {{ crop-size 28; batch-size 32; workers 1; limit 128 }}\n    encoder width=32 depth=1 heads=2 patch=4\n    {own}\n    optimizer \"adamw\" {{\n        lr start=0 peak=1e-3 final=0 warmup-epochs=1\n        weight-decay start=0.04 final=0.4\n    }}\n    epochs 2\n    log-every 1\n    precision \"fp32\"\n}}\n"
        )
    };
    // 128 images of batch 32: 4 steps an epoch, 4 of warm-up, 8 in all
    for (recipe, own, first, second) in [
        ("ijepa", "predictor depth=1 width=16 heads=2\n    mask \"multi-block\" { min-keep 4 }", 2.5e-4, 5e-4),
        ("mae", "decoder depth=1 width=16 heads=2", 0.0, 2.5e-4),
        // DINO's warm-up is np.linspace(0, 1e-3, 4): the peak on its last step, 1e-3 / 3 on its second
        ("dino", "dino { out-dim 64; hidden-dim 32; bottleneck-dim 16; local-crops 0; }", 0.0, 1e-3 / 3.0),
    ] {
        let f = write(&d, &format!("{recipe}.kdl"), &body(recipe, own));
        let runs = d.join("runs");
        let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
        let (out, err) = outputs(&o);
        assert!(o.status.success(), "{recipe}: {out}{err}");
        let run = std::fs::read_dir(runs.join(recipe)).unwrap().map(|e| e.unwrap().path()).find(|p| p.join("metrics.csv").is_file()).unwrap();
        let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
        let header: Vec<&str> = metrics.lines().next().unwrap().split(',').collect();
        let col = |row: usize, name: &str| -> f64 {
            let i = header.iter().position(|h| *h == name).unwrap();
            metrics.lines().nth(row).unwrap().split(',').nth(i).unwrap().parse().unwrap()
        };
        assert_eq!((col(1, "step"), col(2, "step")), (1.0, 2.0), "{metrics}");
        // (metrics.csv writes lr with 7 significant digits)
        assert!((col(1, "lr") - first).abs() < 1e-10 && (col(2, "lr") - second).abs() < 1e-10, "{recipe}: {metrics}");
        // each epoch's line shows what its last step used (MAE's and DINO's showed the next
        // step's rates)
        for (epoch, row) in [(1, 4), (2, 8)] {
            let line = format!("{out}{err}").lines().find(|l| l.starts_with(&format!("epoch   {epoch}/2"))).map(str::to_string).unwrap_or_default();
            for name in ["lr", "wd"] {
                let want = if name == "lr" { format!("lr {:.2e}", col(row, name)) } else { format!("wd {:.3}", col(row, name)) };
                assert!(line.contains(&want), "{recipe}: {want:?} in {line:?}\n{metrics}");
            }
        }
    }
}

/// An MAE run end to end: pretraining, `ijepa eval` of its checkpoint, `masks`, and
/// `export --format hf` as a transformers ViTMAEModel (with the class token) or under the
/// official names.
#[test]
fn an_mae_checkpoint_goes_through_eval_and_export() {
    let d = scratch("mae-cli");
    let f = write(
        &d,
        "mae.kdl",
        "experiment \"mae\" {\n    recipe \"mae\"\n    data \"fashion-mnist\" { crop-size 16; batch-size 32; workers 1; limit 128 }\n    encoder width=32 depth=2 heads=2 patch=4\n    decoder depth=1 width=16 heads=2 norm-pix-loss=#false\n    mask \"random\" { ratio 0.75 }\n    epochs 1\n    precision \"fp32\"\n    eval \"knn\" { k 5; baselines \"random-init\" }\n}\n",
    );
    let runs = d.join("runs");
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("eval knn      mae ") && out.contains("random-init"), "{out}");
    let pretrain = std::fs::read_dir(runs.join("mae")).unwrap().map(|e| e.unwrap().path()).find(|p| p.to_string_lossy().contains("pretrain-")).unwrap();
    let fin = pretrain.join("checkpoints/final.safetensors");
    // the evaluations of the file on the checkpoint, labelled by its source
    let runs2 = d.join("runs2");
    let o = ijepa(&["eval", f.to_str().unwrap(), "--checkpoint", fin.to_str().unwrap(), "--runs-dir", runs2.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(o.status.success(), "{out}{err}");
    // another head count loads the same weights without a complaint: the run's config.json
    // says what trained them, and the evaluation is refused instead of reported "already done"
    let text = std::fs::read_to_string(&f).unwrap().replace("width=32 depth=2 heads=2", "width=32 depth=2 heads=4");
    let f4 = write(&d, "mae-heads4.kdl", &text);
    let o = ijepa(&["eval", f4.to_str().unwrap(), "--checkpoint", fin.to_str().unwrap(), "--runs-dir", runs2.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(!o.status.success() && err.contains("num_heads 2 there, 4 here") && err.contains("another recipe or encoder"), "{out}{err}");
    // ... through a symbolic link to the checkpoint, or to the run's checkpoints folder, too
    // (the path's text led to no run, and the other head count was evaluated without a word)
    let (file_link, dir_link) = (d.join("final-link.safetensors"), d.join("ckpts-link"));
    std::os::unix::fs::symlink(&fin, &file_link).unwrap();
    std::os::unix::fs::symlink(pretrain.join("checkpoints"), &dir_link).unwrap();
    for linked in [file_link.clone(), dir_link.join("final.safetensors")] {
        let o = ijepa(&["eval", f4.to_str().unwrap(), "--checkpoint", linked.to_str().unwrap(), "--runs-dir", runs2.to_str().unwrap()]);
        let (out, err) = outputs(&o);
        assert!(!o.status.success() && err.contains("num_heads 2 there, 4 here"), "{out}{err}");
        let o = ijepa(&["export", linked.to_str().unwrap(), "--heads", "4", "--out", d.join("linked-hf").to_str().unwrap()]);
        let (out, err) = outputs(&o);
        assert!(!o.status.success() && err.contains("was trained with 2 attention heads"), "{out}{err}");
    }
    // ... and a copy out of the run: the checkpoint records its head count itself, and so does
    // its official-names export
    let copied = d.join("copied.safetensors");
    std::fs::copy(&fin, &copied).unwrap();
    let exported = d.join("exported-official.safetensors");
    let o = ijepa(&["export", copied.to_str().unwrap(), "--format", "official", "--out", exported.to_str().unwrap()]);
    assert!(o.status.success(), "{}", outputs(&o).1);
    // ... and its import (the head count was dropped: the import of a run's checkpoint was
    // evaluated under 4 heads without a word)
    let imported = d.join("imported.safetensors");
    let o = ijepa(&["import-checkpoint", copied.to_str().unwrap(), "--out", imported.to_str().unwrap()]);
    assert!(o.status.success() && outputs(&o).0.contains("ViT 32x2x2 "), "{:?}", outputs(&o));
    let o = ijepa(&["import-checkpoint", fin.to_str().unwrap(), "--heads", "4", "--out", d.join("imported4.safetensors").to_str().unwrap()]);
    assert!(!o.status.success() && outputs(&o).1.contains("was trained with 2 attention heads") && !d.join("imported4.safetensors").exists(), "{:?}", outputs(&o));
    for file in [&copied, &exported, &imported] {
        assert_eq!(ijepa_engine::checkpoint::state::encoder_heads_of(file), Some(Ok(2)), "{}", file.display());
        let o = ijepa(&["eval", f4.to_str().unwrap(), "--checkpoint", file.to_str().unwrap(), "--runs-dir", runs2.to_str().unwrap()]);
        let (out, err) = outputs(&o);
        assert!(!o.status.success() && err.contains("records an encoder of 2 attention heads (its metadata), where mae has 4"), "{out}{err}");
        let o = ijepa(&["export", file.to_str().unwrap(), "--heads", "4", "--out", d.join("copied-hf").to_str().unwrap()]);
        let (out, err) = outputs(&o);
        assert!(!o.status.success() && err.contains("was trained with 2 attention heads (the file's metadata), not --heads 4"), "{out}{err}");
    }
    let o = ijepa(&["export", copied.to_str().unwrap(), "--out", d.join("copied-hf").to_str().unwrap()]);
    assert!(o.status.success(), "{}", outputs(&o).1);
    let cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("copied-hf/config.json")).unwrap()).unwrap();
    assert_eq!(cfg["num_attention_heads"], 2);
    // nor is an MAE run's encoder evaluated as an I-JEPA one
    let text = std::fs::read_to_string(&f).unwrap().replace("recipe \"mae\"", "recipe \"ijepa\"").replace("decoder depth=1 width=16 heads=2 norm-pix-loss=#false", "predictor depth=1 width=16 heads=2");
    let fi = write(&d, "as-ijepa.kdl", &text);
    let o = ijepa(&["eval", fi.to_str().unwrap(), "--checkpoint", fin.to_str().unwrap(), "--runs-dir", runs2.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(!o.status.success() && err.contains("recipe mae there, ijepa here"), "{out}{err}");
    // ... nor a copy of it outside its run folder (no config.json to compare with): its
    // modules are MAE's, and I-JEPA evaluates its `target_encoder`
    let loose = d.join("loose-mae.safetensors");
    std::fs::copy(&fin, &loose).unwrap();
    let o = ijepa(&["eval", fi.to_str().unwrap(), "--checkpoint", loose.to_str().unwrap(), "--runs-dir", runs2.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(!o.status.success() && err.contains("holds no `target_encoder`") && err.contains("`encoder`, `decoder`") && err.contains("a checkpoint of another recipe?"), "{out}{err}");
    // modules of the recipe's own without the one it evaluates (a DINO checkpoint of its
    // student alone) are not asked whether they are another recipe's
    let decoder_only = d.join("decoder-only.safetensors");
    let decoder: Vec<(String, tch::Tensor)> = tch::Tensor::read_safetensors(&fin).unwrap().into_iter().filter(|(k, _)| k.starts_with("decoder.")).collect();
    tch::Tensor::write_safetensors(&decoder, &decoder_only).unwrap();
    let o = ijepa(&["eval", f.to_str().unwrap(), "--checkpoint", decoder_only.to_str().unwrap(), "--runs-dir", runs2.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(!o.status.success() && err.contains("holds no `encoder` to evaluate, but `decoder`: modules of this recipe saved without the one it evaluates, nor an encoder to evaluate instead"), "{out}{err}");
    let o = ijepa(&["masks", f.to_str().unwrap()]);
    assert!(outputs(&o).0.contains("4 of 16 patches visible, 12 masked"), "{:?}", outputs(&o));
    // MAE's recipe describes its masks; there are no blocks to draw, and nothing is written
    let png = d.join("mae-masks.png");
    let o = ijepa(&["masks", f.to_str().unwrap(), "--png", png.to_str().unwrap()]);
    assert!(!o.status.success() && outputs(&o).1.contains("MAE's random mask has no blocks to draw") && !outputs(&o).1.contains("config:") && !png.exists(), "{:?}", outputs(&o));
    // the head count is the run's (config.json): another one is refused, none reads it
    let hf = d.join("hf");
    let o = ijepa(&["export", fin.to_str().unwrap(), "--format", "hf", "--heads", "4", "--out", hf.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(!o.status.success() && err.contains("was trained with 2 attention heads") && !hf.exists(), "{out}{err}");
    let o = ijepa(&["export", fin.to_str().unwrap(), "--format", "hf", "--out", hf.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(o.status.success() && out.contains("ViTMAEModel"), "{out}{err}");
    // outside a run folder and without its metadata (its head count: a copy keeps it, see
    // below), width 32 names no preset: hf needs --heads, the official names do not
    let alone = d.join("alone.safetensors");
    tch::Tensor::write_safetensors(&tch::Tensor::read_safetensors(&fin).unwrap(), &alone).unwrap();
    assert_eq!(ijepa_engine::checkpoint::state::encoder_heads_of(&alone), None);
    let o = ijepa(&["export", alone.to_str().unwrap(), "--format", "hf", "--out", d.join("hf-alone").to_str().unwrap()]);
    assert!(!o.status.success() && outputs(&o).1.contains("give it (`--heads`)"), "{:?}", outputs(&o));
    let o = ijepa(&["export", alone.to_str().unwrap(), "--format", "official", "--out", d.join("off.safetensors").to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", outputs(&o));
    // imported with the head count given, the file records it; without, nothing is guessed
    let o = ijepa(&["import-checkpoint", alone.to_str().unwrap(), "--heads", "2", "--out", d.join("alone2.safetensors").to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", outputs(&o));
    assert_eq!(ijepa_engine::checkpoint::state::encoder_heads_of(&d.join("alone2.safetensors")), Some(Ok(2)));
    // a damaged record (one byte of the header) is refused naming it, never passed over as
    // none (0, not a number) nor said as a setting the user wrote (3 for width 32)
    let two = std::fs::read(d.join("alone2.safetensors")).unwrap();
    let at = two.windows(18).position(|w| w == br#""encoder_heads":"2"#).expect("the record") + 17;
    for (byte, says) in [(b'0', "records `encoder_heads` \"0\", not a head count"), (b'x', "records `encoder_heads` \"x\", not a head count"), (b'3', "records an encoder of 3 attention heads (its run's config.json or its metadata), which does not fit its weights (3 heads do not divide the width 32)")] {
        let mut bytes = two.clone();
        bytes[at] = byte;
        let damaged = d.join(format!("damaged-{}.safetensors", byte as char));
        std::fs::write(&damaged, bytes).unwrap();
        for args in [&["import-checkpoint", damaged.to_str().unwrap(), "--out", d.join("re.safetensors").to_str().unwrap()][..], &["export", damaged.to_str().unwrap(), "--format", "official", "--out", d.join("ex.safetensors").to_str().unwrap()]] {
            let o = ijepa(args);
            assert!(!o.status.success() && outputs(&o).1.contains(says) && outputs(&o).1.contains("damaged"), "{args:?}: {:?}", outputs(&o));
        }
    }
    let o = ijepa(&["import-checkpoint", alone.to_str().unwrap(), "--out", d.join("alone-.safetensors").to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", outputs(&o));
    assert_eq!(ijepa_engine::checkpoint::state::encoder_heads_of(&d.join("alone-.safetensors")), None);
    // a checkpoint recording 4 heads, copied into this run's folder (which trained 2): its own
    // record is read too (the run's was taken alone: exported and evaluated with 2 heads)
    let mut four = two.clone();
    four[at] = b'4';
    let into_run = pretrain.join("checkpoints/from-h4.safetensors");
    std::fs::write(&into_run, four).unwrap();
    let o = ijepa(&["export", into_run.to_str().unwrap(), "--format", "hf", "--out", d.join("hf-h4").to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(!o.status.success() && err.contains("records an encoder of 4 attention heads (its metadata), but the run folder it lies in trained 2") && !d.join("hf-h4").exists(), "{out}{err}");
    let o = ijepa(&["eval", f.to_str().unwrap(), "--checkpoint", into_run.to_str().unwrap(), "--runs-dir", runs2.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(!o.status.success() && err.contains("records an encoder of 4 attention heads (its metadata), where mae has 2"), "{out}{err}");
    std::fs::remove_file(&into_run).unwrap();
    let cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(hf.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["model_type"], "vit_mae");
    assert_eq!(cfg["hidden_size"], 32);
    assert_eq!((cfg["decoder_hidden_size"].as_i64(), cfg["decoder_num_hidden_layers"].as_i64()), (Some(16), Some(1)));
    // what the weights do not hold comes from the run (it was `true` and no head count)
    assert_eq!((cfg["decoder_num_attention_heads"].as_i64(), cfg["norm_pix_loss"].as_bool()), (Some(2), Some(false)), "{cfg}");
    let pre: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(hf.join("preprocessor_config.json")).unwrap()).unwrap();
    // the run's evaluation transform (Fashion-MNIST: resized to the crop), grey images made RGB
    assert_eq!((pre["size"]["shortest_edge"].as_i64(), pre["crop_size"]["height"].as_i64(), pre["do_convert_rgb"].as_bool()), (Some(16), Some(16), Some(true)), "{pre}");
    let names: Vec<String> = tch::Tensor::read_safetensors(hf.join("model.safetensors")).unwrap().into_iter().map(|(n, _)| n).collect();
    for n in ["embeddings.cls_token", "embeddings.position_embeddings", "encoder.layer.1.attention.attention.key.weight", "layernorm.bias"] {
        assert!(names.iter().any(|x| x == n), "{n} missing: {names:?}");
    }
    assert!(!names.iter().any(|n| n.contains("decoder")), "only the encoder is exported: {names:?}");
    // a run of the default decoder (its config.json leaves the decoder out): its defaults, the
    // official 16 heads and norm_pix_loss, are exported (the fields were left out, and
    // transformers read norm_pix_loss as false)
    let config_path = pretrain.join("config.json");
    let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    config.as_object_mut().unwrap().remove("decoder");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let hf2 = d.join("hf-default-decoder");
    let o = ijepa(&["export", fin.to_str().unwrap(), "--format", "hf", "--out", hf2.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", outputs(&o));
    let cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(hf2.join("config.json")).unwrap()).unwrap();
    assert_eq!((cfg["decoder_num_attention_heads"].as_i64(), cfg["norm_pix_loss"].as_bool()), (Some(16), Some(true)), "{cfg}");
    assert!(!outputs(&o).1.contains("transformers' defaults"), "{:?}", outputs(&o));
    // the checkpoint copied out of its run: what only the run knew is said to be missing
    let copy = d.join("copied-mae.safetensors");
    std::fs::copy(&fin, &copy).unwrap();
    let o = ijepa(&["export", copy.to_str().unwrap(), "--format", "hf", "--out", d.join("hf-copied").to_str().unwrap()]);
    assert!(o.status.success() && outputs(&o).1.contains("config.json leaves them to transformers' defaults (16 heads, norm_pix_loss false)"), "{:?}", outputs(&o));
}

#[test]
fn masks_prints_statistics_and_draws_a_png() {
    let d = scratch("masks");
    // (in a folder not made yet: it is made, as for every other output)
    let png = d.join("figures/masks.png");
    let o = ijepa(&["masks", "experiments/quickstart.kdl", "--batches", "20", "--png", png.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("context length") && out.contains("target length"), "{out}");
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(bytes.len() > 500);
    // a PNG that cannot be written is refused before the masks are sampled (found after
    // minutes of sampling, it took their statistics with it): here before the sample's size is
    // (past what `masks` samples), which is checked before sampling
    let blocked = d.join("a-file");
    std::fs::write(&blocked, "x").unwrap();
    for (png, why) in [(blocked.join("m.png"), "a-file: File exists (os error 17): it is a file where a folder is needed"), (d.join("m.png/"), "a name ending with `/` names a folder")] {
        let o = ijepa(&["masks", "experiments/quickstart.kdl", "--batches", "1000000000", "--png", png.to_str().unwrap()]);
        let (out, err) = outputs(&o);
        assert!(!o.status.success() && err.contains(why) && !err.contains("more than the"), "{out}{err}");
    }
    assert!(!d.join("m.png").exists());
    // a run of 2 processes truncates each step's masks over the global batch: the default
    // batch is that one (it was one process's), and the estimate counts its tokens the same way
    let o = ijepa(&["masks", "experiments/quickstart-2ranks.kdl", "--batches", "20"]);
    let (out, err) = outputs(&o);
    assert!(o.status.success() && out.contains("20 batches of 32;"), "{out}{err}");
    let context = |out: &str| out.lines().find(|l| l.contains("context length")).map(String::from).unwrap_or_default();
    let o = ijepa(&["masks", "experiments/quickstart-2ranks.kdl", "--batches", "20", "--batch-size", "32"]);
    assert_eq!(context(&outputs(&o).0), context(&out));
}

#[test]
fn bench_step_prints_one_line() {
    let o = ijepa(&["bench", "step", "--steps", "2", "--warmup", "1", "--batch", "8", "--device", "cpu"]);
    let (out, err) = outputs(&o);
    assert!(o.status.success(), "{out}{err}");
    let line = out.lines().find(|l| l.starts_with("bench step ")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("ms_per_step=") && line.contains("img_per_s="), "{line}");
    // a size no machine holds (4 TiB of attention maps) is refused with the bound `run` uses,
    // before anything is built (the kernel killed the step without a word)
    let o = ijepa(&["bench", "step", "--width", "32", "--depth", "1", "--heads", "2", "--size", "4096", "--patch", "16", "--batch", "128", "--steps", "1", "--warmup", "0"]);
    let (out, err) = outputs(&o);
    assert!(!o.status.success() && err.contains("bench needs at least") && err.contains("one block's activations for a batch of 128"), "{out}{err}");
    // masks that cannot be sampled: the advice names the bench's own flags (it named a target
    // scale the bench has no flag for)
    let o = ijepa(&["bench", "step", "--width", "32", "--depth", "1", "--heads", "2", "--size", "8", "--steps", "1", "--warmup", "0"]);
    let (out, err) = outputs(&o);
    assert!(!o.status.success() && err.contains("min-keep = 4") && err.contains("; use a smaller --patch or a larger --size, or lower --min-keep") && !err.contains("raise the"), "{out}{err}");
    // zero threads, patches, batches are refused by the command line, not by libtorch or a panic
    for flag in ["--threads", "--patch", "--batch", "--size", "--steps", "--width"] {
        let o = ijepa(&["bench", "step", flag, "0"]);
        let (out, err) = outputs(&o);
        assert_eq!(o.status.code(), Some(2), "{flag}: {out}{err}");
        assert!(err.contains(&format!("invalid value '0' for '{flag}")) && !err.contains("panicked") && !err.contains("frame #"), "{flag}: {err}");
    }
    // another recipe's flags are refused before anything is timed (they were ignored)
    for (args, says) in [
        (&["--recipe", "dino", "--dec-depth", "3", "--mask-ratio", "0.5"][..], "--dec-depth, --mask-ratio are recipe \"mae\"'s, not read by --recipe dino"),
        (&["--recipe", "mae", "--local-crops", "2"][..], "--local-crops is recipe \"dino\"'s, not read by --recipe mae"),
        (&["--out-dim", "256"][..], "--out-dim is recipe \"dino\"'s, not read by --recipe ijepa"),
        (&["--recipe", "dino", "--targets", "2"][..], "--targets is recipe \"ijepa\"'s, not read by --recipe dino"),
    ] {
        let o = ijepa(&[&["bench", "step", "--steps", "1"][..], args].concat());
        let (out, err) = outputs(&o);
        assert!(!o.status.success() && err.contains(says) && !out.contains("bench step "), "{args:?}: {out}{err}");
    }
}

/// The kernel of the CPU's products: `--products` fixes it and the bench line names it; a bad
/// IJEPA_CPU_PRODUCTS is a clear error in a command that computes, and unread by one that does not.
#[test]
fn the_cpu_products_kernel_is_named_and_a_bad_one_refused() {
    for p in ["blas", "onednn"] {
        let o = ijepa(&["bench", "step", "--steps", "1", "--warmup", "0", "--batch", "8", "--device", "cpu", "--precision", "fp32", "--products", p]);
        let (out, err) = outputs(&o);
        assert!(o.status.success(), "{out}{err}");
        assert!(out.contains(&format!(" products={p} ")), "{out}");
    }
    let bad = |args: &[&str]| std::process::Command::new(env!("CARGO_BIN_EXE_ijepa")).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).env("IJEPA_CPU_PRODUCTS", "mkl").output().unwrap();
    let o = bad(&["bench", "step", "--steps", "1", "--device", "cpu"]);
    let (out, err) = outputs(&o);
    assert!(!o.status.success(), "{out}{err}");
    assert!(err.contains("IJEPA_CPU_PRODUCTS: \"mkl\" is not a kernel") && err.contains("auto, blas or onednn"), "{err}");
    let o = bad(&["check", "experiments/quickstart.kdl"]);
    assert!(o.status.success(), "{:?}", outputs(&o));
    // a bench on a GPU does not read it (here, with no GPU, the device is what is refused)
    let o = bad(&["bench", "step", "--steps", "1", "--device", "cuda"]);
    let (out, err) = outputs(&o);
    assert!(!err.contains("IJEPA_CPU_PRODUCTS"), "{out}{err}");
    let o = ijepa(&["bench", "step", "--products", "mkl"]);
    assert_eq!(o.status.code(), Some(2), "{:?}", outputs(&o));
}

/// An evaluation runs on the kernel IJEPA_CPU_PRODUCTS names and records it, whatever ran
/// before it in the process: a fine-tuning or the pixels' probe run alone took BLAS (and said
/// so under `onednn`), and features cached under one kernel were read under the other.
#[test]
fn an_evaluation_records_the_kernel_it_ran_on() {
    let d = scratch("eval-kernel");
    let f = write(
        &d,
        "k.kdl",
        r#"experiment "k" {
    data "fashion-mnist" { crop-size 28; batch-size 16; workers 1; limit 64; }
    encoder width=32 depth=1 heads=2 patch=7
    predictor depth=1 width=16 heads=2
    mask "multi-block" {
        targets count=2 { scale 0.15 0.4; }
        min-keep 1
    }
    epochs 1
    precision "fp32"
    device "cpu"
    eval "knn" { k 3; baselines "raw-pixels"; }
    eval "finetune" { epochs 1; batch-size 16; }
}
"#,
    );
    let runs = d.join("runs");
    let run = |products: &str, extra: &[&str]| {
        let mut args = vec!["run", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_ijepa")).args(&args).env("IJEPA_CPU_PRODUCTS", products).output().unwrap();
        assert!(o.status.success(), "{:?}", outputs(&o));
    };
    let kernels = || {
        let mut k: Vec<(String, String)> = std::fs::read_dir(runs.join("k"))
            .unwrap()
            .flatten()
            // (not the folders `--force` set aside)
            .filter(|e| e.file_name().to_string_lossy().starts_with("eval-") && e.path().join("eval.json").is_file())
            .map(|e| {
                let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(e.path().join("eval.json")).unwrap()).unwrap();
                (format!("{}/{}", r["protocol"].as_str().unwrap(), r["model"].as_str().unwrap()), r["cpu_products"].as_str().unwrap_or("").to_string())
            })
            .collect();
        k.sort();
        k
    };
    // pretrained on BLAS; the evaluations alone, in a process of their own, on oneDNN
    run("blas", &["--only", "pretrain"]);
    run("onednn", &[]);
    let all = |p: &str| ["finetune/ijepa", "knn/ijepa", "knn/raw-pixels"].map(|m| (m.to_string(), p.to_string())).to_vec();
    assert_eq!(kernels(), all("onednn"));
    // again on BLAS: the features cached under oneDNN are not read
    run("blas", &["--force", "--only", "eval-*"]);
    assert_eq!(kernels(), all("blas"));
    let cached: Vec<String> = std::fs::read_dir(runs.join("k/features")).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert!(cached.iter().any(|n| n.contains("-onednn-")) && cached.iter().any(|n| !n.contains("-onednn") && !n.starts_with("pixels")), "{cached:?}");
}

#[test]
fn bench_step_profile_prints_the_operators_and_keeps_the_trace() {
    let d = scratch("bench-profile");
    let trace = d.join("step.json");
    let args = ["bench", "step", "--width", "32", "--depth", "1", "--heads", "2", "--size", "32", "--batch", "4", "--pred-depth", "1", "--pred-width", "16", "--steps", "1", "--warmup", "0"];
    let o = ijepa(&[&args[..], &["--precision", "fp32", "--profile", "2", "--trace", trace.to_str().unwrap()]].concat());
    let (out, err) = outputs(&o);
    assert!(o.status.success(), "{out}{err}");
    let head = out.lines().find(|l| l.starts_with("profile of 2 steps")).unwrap_or_else(|| panic!("{out}"));
    assert!(head.contains("matrix products") && head.contains("% of the ops' self time"), "{head}");
    // the table: up to 15 operators by self time, each with its calls a step
    let rows: Vec<&str> = out.lines().skip_while(|l| !l.starts_with("operator")).skip(1).take(15).collect();
    let calls = |r: &str| {
        let f: Vec<&str> = r.split_whitespace().collect();
        f.len().checked_sub(4).and_then(|i| f[i].parse::<f64>().ok())
    };
    assert!(rows.len() == 15 && rows.iter().all(|r| calls(r).is_some_and(|c| c > 0.0)), "{out}");
    // the trace: every operator of the two steps, among them two fused AdamW calls a step
    // (decayed weights, and biases with 1-D tensors)
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&trace).unwrap()).unwrap();
    let events = json["traceEvents"].as_array().unwrap();
    assert_eq!(events.iter().filter(|e| e["name"] == "aten::_fused_adamw_").count(), 4);
    assert!(events.len() > 100);
    // --trace without --profile is refused by the argument parser
    let o = ijepa(&[&args[..], &["--trace", trace.to_str().unwrap()]].concat());
    assert!(!o.status.success());
    // libtorch renames its `PATH.tmp` over PATH: an earlier trace is replaced; a folder, a
    // JSON file that is no trace, a missing folder or a `PATH.tmp` of the user's are refused
    // before anything is timed (a folder and /dev/null became trace files)
    let o = ijepa(&[&args[..], &["--precision", "fp32", "--profile", "1", "--trace", trace.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{:?}", outputs(&o));
    let (folder, settings, tmp_of) = (d.join("a-folder"), d.join("settings.json"), d.join("new.json"));
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(&settings, r#"{"my": "settings"}"#).unwrap();
    std::fs::write(d.join("new.json.tmp"), "notes").unwrap();
    for (path, says) in [
        (folder.clone(), "is not a regular file"),
        (settings.clone(), "is not a Chrome trace"),
        (d.join("nosuch/t.json"), "does not exist"),
        (tmp_of.clone(), "new.json.tmp first, which exists"),
    ] {
        let o = ijepa(&[&args[..], &["--profile", "1", "--trace", path.to_str().unwrap()]].concat());
        let (out, err) = outputs(&o);
        assert!(!o.status.success() && err.contains(says) && !out.contains("bench step"), "{}: {out}{err}", path.display());
    }
    assert!(folder.is_dir() && std::fs::read_to_string(&settings).unwrap() == r#"{"my": "settings"}"# && std::fs::read_to_string(d.join("new.json.tmp")).unwrap() == "notes");
    // ... and a default trace whose folder, TMPDIR's, is none (it failed after the timing,
    // naming a path the user never typed)
    let o = Command::new(env!("CARGO_BIN_EXE_ijepa")).args([&args[..], &["--profile", "1"]].concat()).env("TMPDIR", d.join("nosuch")).output().unwrap();
    let (out, err) = outputs(&o);
    assert!(!o.status.success() && err.contains("(TMPDIR), which is not a folder") && !out.contains("bench step"), "{out}{err}");
    // (an empty TMPDIR is the working folder, as it was)
    let o = Command::new(env!("CARGO_BIN_EXE_ijepa")).args([&args[..], &["--precision", "fp32", "--profile", "1"]].concat()).env("TMPDIR", "").current_dir(&d).output().unwrap();
    assert!(o.status.success() && d.join("ijepa-step-trace.json").is_file(), "{:?}", outputs(&o));
    // counts and sizes the language would refuse are refused (a warm-up that overflowed its sum
    // with the steps timed nothing and printed "inf images/s"; a huge size or step count
    // panicked or aborted on its allocation)
    for (flag, value) in [("--warmup", "18446744073709551614"), ("--steps", "18446744073709551615"), ("--size", "4000000000"), ("--batch", "18446744073709551615")] {
        let o = ijepa(&["bench", "step", flag, value]);
        let (out, err) = outputs(&o);
        assert!(o.status.code() == Some(2) && err.contains("at most") && !err.contains("panicked"), "{flag}: {out}{err}");
    }
    // --profile profiles the 1-process step: with --no-step (bench features, bench dist) it
    // is refused, naming both, before anything is timed or launched
    for cmd in ["features", "dist"] {
        let o = ijepa(&["bench", cmd, "--no-step", "--profile", "2"]);
        let (out, err) = outputs(&o);
        assert!(!o.status.success(), "{cmd}: {out}{err}");
        assert!(err.contains("--profile") && err.contains("--no-step"), "{cmd}: {err}");
        assert!(!out.contains("all-reduce") && !out.contains("bench features"), "{cmd}: {out}");
    }
    // bench dist: one rank has nothing to all-reduce
    let o = ijepa(&["bench", "dist", "--nproc", "1"]);
    assert!(!o.status.success() && outputs(&o).1.contains("give at least 2"), "{:?}", outputs(&o));
    // ... nor as many processes as it is asked for (100,000 were started), nor zero all-reduces
    let o = ijepa(&["bench", "dist", "--nproc", "100000"]);
    assert!(!o.status.success() && outputs(&o).1.contains("at most 64"), "{:?}", outputs(&o));
    let o = ijepa(&["bench", "dist", "--iters", "0"]);
    assert!(!o.status.success() && outputs(&o).1.contains("must be at least 1"), "{:?}", outputs(&o));
    // a checkpoint's heads are a count too (`0 heads do not divide the width 96`)
    for cmd in ["import-checkpoint", "export"] {
        let o = ijepa(&[cmd, "tests/fixtures/pth/official-step-tiny.pth.tar", "--heads", "0", "--out", "/nonexistent/x"]);
        assert!(o.status.code() == Some(2) && outputs(&o).1.contains("'--heads <HEADS>': must be at least 1"), "{cmd}: {:?}", outputs(&o));
    }
    // bench data's threads are bounded (100,000 raised the warm-up to as many batches)
    let o = ijepa(&["bench", "data", "/nonexistent", "--threads", "100000"]);
    assert!(o.status.code() == Some(2) && outputs(&o).1.contains("at most 1024 (loader threads)"), "{:?}", outputs(&o));
    // bench data's local crops are the small views, as in the language
    let o = ijepa(&["bench", "data", "/nonexistent", "--size", "16", "--multi-crop", "2", "--local-size", "96"]);
    assert!(!o.status.success() && outputs(&o).1.contains("at most --size 16"), "{:?}", outputs(&o));
    // estimate's measured steps are bounded as a benchmark's (4294967295 aborted allocating),
    // and a negative rate reaches its range check (clap said "unexpected argument '-0'")
    let o = ijepa(&["estimate", "experiments/quickstart.kdl", "--steps", "4294967295"]);
    assert!(o.status.code() == Some(2) && outputs(&o).1.contains("at most 1000000"), "{:?}", outputs(&o));
    let o = ijepa(&["estimate", "experiments/quickstart.kdl", "--no-measure", "--mfu", "-0.5"]);
    assert!(!o.status.success() && outputs(&o).1.contains("--mfu -0.5 is not a fraction"), "{:?}", outputs(&o));
    for h in ["-10", "-1e-3"] {
        let o = ijepa(&["estimate", "experiments/quickstart.kdl", "--no-measure", "--budget-hours", h]);
        assert!(!o.status.success() && outputs(&o).1.contains(&format!("--budget-hours {} is not a number of hours", h.parse::<f64>().unwrap())), "{:?}", outputs(&o));
    }
}

#[test]
fn estimate_counts_measures_and_projects() {
    let d = scratch("estimate");
    let f = write(
        &d,
        "tiny.kdl",
        r#"experiment "tiny" {
    data "fashion-mnist" { crop-size 28; batch-size 16; limit 640 }
    encoder width=64 depth=2 heads=2 patch=4
    predictor depth=1 width=32 heads=2
    mask "multi-block" { min-keep 4 }
    epochs 3
    precision "fp32"
}
"#,
    );
    let o = ijepa(&["estimate", f.to_str().unwrap(), "--steps", "1", "--budget-hours", "1"]);
    let (out, err) = outputs(&o);
    assert!(o.status.success(), "{out}{err}");
    // 640 images / batch 16 = 40 steps an epoch, 3 epochs; measured here (a small model)
    for want in ["parameters", "held untrained (the EMA target encoder)", "step FLOPs", "MFLOP per image", "images          640", "measured here", "120 steps (40 x 3 epochs)", "on 1 x a100", "budget"] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    // a budget that is no number of hours is refused (NaN was taken for no budget)
    for h in ["NaN", "0", "1e-30", "1e300"] {
        let o = ijepa(&["estimate", f.to_str().unwrap(), "--no-measure", "--budget-hours", h]);
        assert!(!o.status.success() && outputs(&o).1.contains("is not a number of hours"), "{h}: {:?}", outputs(&o));
    }
    // the parameter count is the built model's (what pretraining prints)
    let o = ijepa(&["estimate", f.to_str().unwrap(), "--no-measure", "--gpu", "v100"]);
    let (out, err) = outputs(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("measured here   no: --no-measure") && out.contains("on 1 x v100"), "{out}");
    assert!(!out.contains("does not fit"), "{out}");
    // a bf16 file on a GPU without bf16: no projection, and the budget says why (it was left
    // out without a word, the memory line saying "bf16 as on --gpu v100")
    let bf16 = write(&d, "bf16.kdl", &std::fs::read_to_string(&f).unwrap().replace("precision \"fp32\"", "precision \"bf16\""));
    let o = ijepa(&["estimate", bf16.to_str().unwrap(), "--no-measure", "--gpu", "v100", "--budget-hours", "1"]);
    let (out, err) = outputs(&o);
    assert!(o.status.success() && out.contains("(bf16 as the file asks, which --gpu v100 lacks)") && out.contains("budget          1 GPU-hours on v100: no MFU to compare with"), "{out}{err}");
    // a batch whose activations cannot be held by the GPU is said not to fit it
    let big = write(&d, "big.kdl", &std::fs::read_to_string(&f).unwrap().replace("crop-size 28; batch-size 16; limit 640", "crop-size 224; batch-size 16384").replace("patch=4", "patch=8"));
    let o = ijepa(&["estimate", big.to_str().unwrap(), "--no-measure", "--gpu", "h100", "--images", "1281167"]);
    let (out, err) = outputs(&o);
    assert!(o.status.success() && out.contains("does not fit") && out.contains("80.00 GiB of one h100: the projection above cannot run"), "{out}{err}");
    // bad input names its cause
    let o = ijepa(&["estimate", f.to_str().unwrap(), "--no-measure", "--gpu", "tpu"]);
    let (_, err) = outputs(&o);
    assert!(!o.status.success() && err.contains("unknown GPU \"tpu\"") && err.contains("a100"), "{err}");
    for mfu in ["1.5", "1e-300"] {
        let o = ijepa(&["estimate", f.to_str().unwrap(), "--no-measure", "--mfu", mfu]);
        // (as written: 1e-300 was three hundred digits)
        assert!(!o.status.success() && outputs(&o).1.contains(&format!("--mfu {mfu} is not a fraction")), "{}", outputs(&o).1);
    }
    // a small budget is printed as given (0.001 hours read "0 GPU-hours")
    let o = ijepa(&["estimate", f.to_str().unwrap(), "--no-measure", "--budget-hours", "0.001"]);
    assert!(o.status.success() && outputs(&o).0.contains("budget          0.001 GPU-hours"), "{:?}", outputs(&o));
    // fewer images than one batch: no step, said so (not "0 steps, 0.0 s"); no zero steps
    let o = ijepa(&["estimate", f.to_str().unwrap(), "--no-measure", "--images", "15"]);
    assert!(!o.status.success() && outputs(&o).1.contains("make no full global batch of 16"), "{:?}", outputs(&o));
    let o = ijepa(&["estimate", f.to_str().unwrap(), "--steps", "0"]);
    assert!(!o.status.success() && outputs(&o).1.contains("--steps"), "{:?}", outputs(&o));
    // past any data set's count: refused (1e17 wrapped the budget's FLOPs total)
    let o = ijepa(&["estimate", f.to_str().unwrap(), "--no-measure", "--images", "100000000000000000"]);
    assert!(!o.status.success() && outputs(&o).1.contains("more than the 1000000000000 images"), "{:?}", outputs(&o));
    // a `subset` list is what the run trains on: its lines, counted without the images (here
    // none: the folder is not on this machine), in place of --images (the full set's count
    // projected 100 times the steps of ImageNet's 1%); a list not here leaves N standing
    let list = write(&d, "subset.txt", "\u{feff}a/1.png\n\nb/2.png\na/1.png\n");
    let sub = write(&d, "sub.kdl", &format!("experiment \"sub\" {{\n    data \"image-folder\" root=\"{}\" {{ subset \"{}\"; crop-size 28; batch-size 1 }}\n    encoder width=64 depth=2 heads=2 patch=4\n    predictor depth=1 width=32 heads=2\n    mask \"multi-block\" {{ min-keep 4 }}\n}}\n", d.join("no-such-folder").display(), list.display()));
    for args in [vec![], vec!["--images", "1281167"]] {
        let o = ijepa(&[&["estimate", sub.to_str().unwrap(), "--no-measure"][..], &args[..]].concat());
        let (out, err) = outputs(&o);
        assert!(o.status.success() && out.contains("images          3 (the 3 lines of the `subset` list"), "{args:?}: {out}{err}");
    }
    std::fs::remove_file(&list).unwrap();
    let o = ijepa(&["estimate", sub.to_str().unwrap(), "--no-measure", "--images", "12811"]);
    let (out, err) = outputs(&o);
    assert!(o.status.success() && out.contains("images          12811 (12811 given with --images; the `subset` list") && out.contains("12811 is taken as the images it names"), "{out}{err}");
    let o = ijepa(&["estimate", sub.to_str().unwrap(), "--no-measure"]);
    assert!(!o.status.success() && outputs(&o).1.contains("give the number of images the list names with --images N"), "{:?}", outputs(&o));
    // --images is the split's size: the file's `limit` and the monitor's held-out images
    // apply to it as to the counted one (a million images projected 31,250 steps of a run
    // that trains on 640)
    let o = ijepa(&["estimate", f.to_str().unwrap(), "--no-measure", "--images", "1000000"]);
    let (out, err) = outputs(&o);
    assert!(o.status.success() && out.contains("images          640 (1000000 given with --images, `limit`ed to 640)") && out.contains("120 steps of"), "{out}{err}");
    let monitored = write(&d, "monitored.kdl", &std::fs::read_to_string(&f).unwrap().replace("    epochs 3\n", "    epochs 3\n    monitor images=320 k=5\n"));
    let o = ijepa(&["estimate", monitored.to_str().unwrap(), "--no-measure", "--images", "1000000"]);
    let (out, err) = outputs(&o);
    assert!(o.status.success() && out.contains("images          320 (1000000 given with --images, `limit`ed to 640, less the monitor's 320 held-out images)") && out.contains("60 steps of"), "{out}{err}");
    // a forced measurement that cannot fit in this machine's memory is refused, not started
    // (a ViT of 200 billion parameters: its state alone is terabytes)
    let huge = write(&d, "huge.kdl", &std::fs::read_to_string(&f).unwrap().replace("crop-size 28; batch-size 16; limit 640", "crop-size 224; batch-size 16").replace("width=64 depth=2 heads=2 patch=4", "width=16384 depth=64 heads=64 patch=16"));
    let o = ijepa(&["estimate", huge.to_str().unwrap(), "--measure", "--images", "2000000"]);
    let (out, err) = outputs(&o);
    assert!(!o.status.success() && err.contains("more than the") && err.contains("available here (the machine's free memory, or this process's memory cgroup or `ulimit -v` where they leave less): it would run out of memory"), "{out}{err}");
    let folder = write(&d, "folder.kdl", "experiment \"f\" {\n    data \"image-folder\" root=\"/nonexistent/train\" { crop-size 32; batch-size 8 }\n    encoder width=64 depth=2 heads=2 patch=4\n    mask \"multi-block\" { min-keep 4 }\n}\n");
    let o = ijepa(&["estimate", folder.to_str().unwrap(), "--no-measure"]);
    let (_, err) = outputs(&o);
    assert!(!o.status.success() && err.contains("--images N"), "{err}");
}

#[test]
fn bench_features_prints_both_rates() {
    let o = ijepa(&[
        "bench", "features", "--images", "300", "--extract-batch", "128", "--width", "64", "--depth", "2", "--heads", "2", "--size", "28",
        "--steps", "1", "--warmup", "1", "--batch", "8", "--precision", "fp32", "--device", "cpu",
    ]);
    let (out, err) = outputs(&o);
    assert!(o.status.success(), "{out}{err}");
    let line = out.lines().find(|l| l.starts_with("bench features ")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("encoder=64x2") && line.contains("images=300") && line.contains("extraction/step FLOP rate"), "{line}");
    // the chunks of the forward: 49 patches x 256 hidden x 4 bytes an image, 10 in 501,760
    // bytes; 0: whole batches
    for (bytes, chunk) in [("501760", "chunk=10 "), ("0", "chunk=batch ")] {
        let o = ijepa(&[
            "bench", "features", "--images", "30", "--extract-batch", "16", "--width", "64", "--depth", "2", "--heads", "2", "--size", "28",
            "--precision", "fp32", "--device", "cpu", "--no-step", "--chunk-bytes", bytes,
        ]);
        let (out, err) = outputs(&o);
        assert!(o.status.success() && out.contains(chunk), "{out}{err}");
    }
    // bf16 on a CPU without native bf16 is warned of without the step's timing too (the
    // step's said it; `--no-step` said nothing)
    let native = ijepa_engine::precision::bf16_support(tch::Device::Cpu).native;
    let o = ijepa(&[
        "bench", "features", "--images", "8", "--extract-batch", "8", "--width", "32", "--depth", "1", "--heads", "2", "--size", "28",
        "--precision", "bf16", "--device", "cpu", "--no-step",
    ]);
    let (out, err) = outputs(&o);
    assert!(o.status.success() && err.matches("warning: precision \"bf16\"").count() == usize::from(!native), "{out}{err}");
    // more images than the embedded subset holds: said so (it warned of a `limit` no file wrote)
    let o = ijepa(&["bench", "features", "--images", "20000", "--width", "64", "--depth", "2", "--heads", "2", "--size", "28"]);
    let (out, err) = outputs(&o);
    assert!(!o.status.success() && err.contains("the embedded Fashion-MNIST subset holds 10000 images"), "{out}{err}");
    // a mask ratio that is no fraction is refused by the argument's reader
    let o = ijepa(&["bench", "step", "--recipe", "mae", "--mask-ratio", "NaN"]);
    assert!(!o.status.success() && outputs(&o).1.contains("is not a fraction in (0, 1)"), "{:?}", outputs(&o));
}

#[test]
fn gpu_checks_refuse_clearly_without_a_gpu() {
    if tch::Cuda::is_available() {
        return; // this machine has one: scripts/device-check.sh is the real check
    }
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/official-step-tiny.safetensors");
    let o = ijepa(&["parity", fixture.to_str().unwrap(), "--device", "cuda"]);
    let (_, err) = outputs(&o);
    assert!(!o.status.success() && err.contains("device: \"cuda\" asked for, but this machine has 0 CUDA device"), "{err}");
    // the device check stops at once, exit 2, with the reason (no driver, or no CUDA torch)
    let d = scratch("device-check");
    let o = std::process::Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/device-check.sh"))
        .env("OUT", &d)
        .output()
        .unwrap();
    let (out, err) = outputs(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    assert!(err.contains("device-check: FAILED") && (err.contains("NVIDIA") || err.contains("CUDA")), "{err}");
}

/// scripts/device-check.sh runs only where a GPU is, so a change of the CLI that breaks it is
/// otherwise found by the first session lent one (its estimate step once passed `--images 1`,
/// which `estimate` refuses since: the script ended before its last figure). What it runs that
/// needs no GPU runs here: every experiment it trains passes `check`, and its estimate command,
/// as written in the script, prints the FLOP count it reads.
#[test]
fn device_check_commands_that_need_no_gpu_run() {
    let script = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/device-check.sh")).unwrap();
    let d = scratch("device-check-cpu");
    // the experiments: `cat >"$out/NAME.kdl" <<'EOF'` ... `EOF`
    let mut files = std::collections::BTreeMap::new();
    for (i, _) in script.match_indices("cat >\"$out/") {
        let head = &script[i..];
        let name = &head["cat >\"$out/".len()..head.find("\" <<'EOF'\n").expect("a quoted heredoc")];
        let body_at = head.find("<<'EOF'\n").unwrap() + "<<'EOF'\n".len();
        let body = &head[body_at..body_at + head[body_at..].find("\nEOF\n").expect("its EOF")];
        files.insert(name.to_string(), write(&d, name, body));
    }
    assert!(files.contains_key("nccl.kdl") && files.contains_key("vitb16.kdl"), "{:?}", files.keys());
    // (those it trains; the estimate's names a folder that is not there: it reads no data)
    let trained = |name: &str| script.lines().any(|l| (l.contains("\"$bin\" launch ") || l.contains("\"$bin\" run ")) && l.contains(&format!("\"$out/{name}\"")));
    assert!(trained("nccl.kdl"));
    for (name, f) in files.iter().filter(|(n, _)| trained(n)) {
        let o = ijepa(&["check", f.to_str().unwrap()]);
        assert!(o.status.success(), "{name}: {:?}", outputs(&o));
    }
    // `"$bin" estimate "$out/vitb16.kdl" --images 64 --no-measure 2>&1`, with its options
    let line = script.lines().find(|l| l.contains("\"$bin\" estimate ")).expect("the estimate step");
    let opts = &line[line.find(".kdl\"").unwrap() + ".kdl\"".len()..];
    let opts: Vec<&str> = opts.split_whitespace().take_while(|w| !w.starts_with("2>") && !w.starts_with(')')).collect();
    let args: Vec<&str> = ["estimate", files["vitb16.kdl"].to_str().unwrap()].into_iter().chain(opts.iter().copied()).collect();
    let o = ijepa(&args);
    let (out, err) = outputs(&o);
    assert!(o.status.success() && out.contains("GFLOP per image"), "{args:?}: {out}{err}");
}

/// A tiny real run: the loss falls, metrics rows are complete, the checkpoint holds the three
/// models under the official names.
#[test]
fn run_trains_and_writes_the_run_folder() {
    let d = scratch("run");
    let f = write(
        &d,
        "tiny.kdl",
        r#"experiment "tiny" {
    seed 1
    data "fashion-mnist" {
        crop-size 32
        batch-size 32
        workers 2
        limit 512
    }
    encoder width=64 depth=2 heads=2 patch=4
    predictor depth=1 width=32 heads=2
    mask "multi-block" { min-keep 4 }
    optimizer "adamw" {
        lr start=2e-4 peak=2e-3 final=1e-5 warmup-epochs=1
    }
    epochs 5
    precision "fp32"
    device "cpu"
}
"#,
    );
    let runs = d.join("runs");
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(o.status.success(), "{out}{err}");
    // the first line names the precision, the manifest records it
    assert!(out.lines().any(|l| l.starts_with("pretraining tiny") && l.contains(", fp32")), "{out}");
    let run = common::pretrain_in(&runs.join("tiny")).expect("a pretraining folder");
    assert!(run.file_name().unwrap().to_str().unwrap().starts_with("pretrain-"));
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let mut lines = metrics.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header, ["step", "epoch", "loss", "lr", "wd", "momentum", "context_len", "target_len", "ms_per_step", "img_per_s", "skipped"]);
    let rows: Vec<Vec<f64>> = lines.map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect();
    assert_eq!(rows.len(), 5 * (512 / 32));
    let loss = |r: &[Vec<f64>]| r.iter().map(|x| x[2]).sum::<f64>() / r.len() as f64;
    let (first, last) = (loss(&rows[..8]), loss(&rows[rows.len() - 8..]));
    assert!(last < 0.6 * first, "loss did not fall enough: {first} -> {last}");
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["status"], "done");
    // the value and why (written here; `auto` resolved before planning reads the same)
    let p = manifest["precision"].as_str().unwrap();
    assert!(p.starts_with("fp32 (") && p.contains("native"), "{manifest}");
    assert!(!run.join("monitor.csv").exists(), "no monitor block, no monitor");
    assert!(run.join("config.kdl").exists() && run.join("config.json").exists());
    let ckpt = std::fs::read(run.join("checkpoints/final.safetensors")).unwrap();
    let n = u64::from_le_bytes(ckpt[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&ckpt[8..8 + n]).unwrap();
    for key in ["encoder.pos_embed", "encoder.blocks.1.attn.qkv.weight", "predictor.mask_token", "predictor.predictor_proj.bias", "target_encoder.norm.weight"] {
        assert!(header.get(key).is_some(), "checkpoint lacks {key}");
    }
}

#[test]
fn run_with_a_batch_larger_than_the_data_is_a_clear_error() {
    let d = scratch("bigbatch");
    let f = write(&d, "big.kdl", "experiment \"big\" {\n    data \"fashion-mnist\" { crop-size 32; batch-size 64; limit 10 }\n    encoder width=32 depth=1 heads=2 patch=4\n    predictor depth=1 width=16 heads=2\n    mask \"multi-block\" { min-keep 4 }\n    device \"cpu\"\n}\n");
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(err.contains("10 images") && err.contains("batch of 64"), "{err}");
}

/// The `eval.json` records of an experiment's run folder.
fn eval_records(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path().join("eval.json"))
        .filter(|p| p.exists())
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

/// `ijepa eval` keys its stage and features by the module it evaluates where the file's
/// settings choose another than the recipe's usual one: a `target "pixels"` file evaluates the
/// context encoder, and shared the target encoder's stage (the first score was both files').
/// And the same weights given under another path are recorded under it (the first path was
/// kept, and the report left the result out once that file held other weights).
#[test]
fn ijepa_eval_keys_the_module_and_records_the_path_given() {
    let d = scratch("eval-module");
    let f = write(
        &d,
        "t.kdl",
        "experiment \"t\" {\n    data \"fashion-mnist\" { crop-size 16; batch-size 16; workers 1; limit 64 }\n    encoder width=16 depth=1 heads=2 patch=4\n    predictor depth=1 width=8 heads=2\n    mask \"multi-block\" { min-keep 0 }\n    epochs 1\n    precision \"fp32\"\n    eval \"knn\" { k 3 }\n}\n",
    );
    let pixels = write(&d, "pixels.kdl", &std::fs::read_to_string(&f).unwrap().replace("    epochs 1", "    target \"pixels\"\n    epochs 1"));
    let runs = d.join("runs");
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", outputs(&o));
    let pretrain = std::fs::read_dir(runs.join("t")).unwrap().map(|e| e.unwrap().path()).find(|p| p.to_string_lossy().contains("pretrain-")).unwrap();
    let copy = d.join("copy.safetensors");
    std::fs::copy(pretrain.join("checkpoints/final.safetensors"), &copy).unwrap();
    let runs2 = d.join("runs2");
    let eval = |file: &Path, ckpt: &Path| {
        let o = ijepa(&["eval", file.to_str().unwrap(), "--checkpoint", ckpt.to_str().unwrap(), "--runs-dir", runs2.to_str().unwrap()]);
        let (out, err) = outputs(&o);
        assert!(o.status.success(), "{out}{err}");
        format!("{out}{err}")
    };
    eval(&f, &copy);
    let t = eval(&pixels, &copy);
    assert!(!t.contains("already done"), "{t}");
    let records = eval_records(&runs2.join("t"));
    assert_eq!(records.len(), 2, "{records:?}");
    // (the rows say which: they read alike)
    let mut methods: Vec<&str> = records.iter().map(|r| r["method"].as_str().unwrap()).collect();
    methods.sort();
    assert_eq!(methods, ["I-JEPA (copy.safetensors)", "I-JEPA `encoder` (copy.safetensors)"], "{records:?}");
    // the same weights under another path: done, recorded under the path given now
    let moved = d.join("moved.safetensors");
    std::fs::copy(&copy, &moved).unwrap();
    let t = eval(&f, &moved);
    assert!(t.contains("already done, of the same weights as"), "{t}");
    let records = eval_records(&runs2.join("t"));
    let moved_abs = std::path::absolute(&moved).unwrap();
    assert_eq!(records.iter().filter(|r| r["checkpoint"] == moved_abs.to_str().unwrap()).count(), 1, "{records:?}");
}

/// A run's `config.kdl` of a file that extends a base keeps the base's text too (commented):
/// the run folder says what it was trained from when the base changes or moves.
#[test]
fn config_kdl_keeps_the_bases_text() {
    let d = scratch("config-bases");
    write(
        &d,
        "base.kdl",
        r#"experiment "base" {
    data "fashion-mnist" { crop-size 32; batch-size 32; workers 1; limit 64 }
    encoder width=32 depth=1 heads=2 patch=8
    predictor depth=1 width=16 heads=2
    mask "multi-block" { targets count=2 { scale 0.15 0.4; }; min-keep 1; }
    precision "fp32"
    device "cpu"
}
"#,
    );
    let f = write(&d, "child.kdl", "experiment \"child\" {\n    extends \"base.kdl\"\n    epochs 1\n}\n");
    let runs = d.join("runs");
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(o.status.success(), "{out}{err}");
    let pretrain = std::fs::read_dir(runs.join("child")).unwrap().flatten().find(|e| e.file_name().to_string_lossy().starts_with("pretrain-")).unwrap().path();
    let kept = std::fs::read_to_string(pretrain.join("config.kdl")).unwrap();
    assert!(kept.starts_with("experiment \"child\""), "{kept}");
    assert!(kept.contains("a base this file extends") && kept.contains("//     encoder width=32 depth=1 heads=2 patch=8"), "{kept}");
    // still a file the language reads (the base's text is a comment)
    assert!(ijepa_dsl::parse_str("config.kdl", &kept.replace("extends \"base.kdl\"", "")).is_ok());
}

/// Pixel targets (the paper's Table 7) train no target encoder: the evaluations read the
/// encoder (they were refused: "holds no target_encoder ... but encoder, predictor").
#[test]
fn a_pixel_target_run_is_evaluated_on_its_encoder() {
    let d = scratch("pixel-eval");
    let f = write(
        &d,
        "px.kdl",
        r#"experiment "px" {
    data "fashion-mnist" { crop-size 32; batch-size 32; workers 2; limit 128 }
    encoder width=32 depth=2 heads=2 patch=8
    predictor depth=1 width=16 heads=2
    mask "multi-block" { targets count=2 { scale 0.15 0.4; }; min-keep 1; }
    target "pixels"
    epochs 1
    precision "fp32"
    device "cpu"
    eval "knn" { k 5 }
}
"#,
    );
    let runs = d.join("runs");
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(o.status.success(), "{out}{err}");
    let evals = eval_records(&runs.join("px"));
    assert_eq!(evals.len(), 1, "{out}{err}");
    assert!(evals[0]["top1"].as_f64().unwrap() > 0.0, "{}", evals[0]);
    // its export says which encoder it is (it was called the target encoder)
    let pretrain = std::fs::read_dir(runs.join("px")).unwrap().flatten().find(|e| e.file_name().to_string_lossy().starts_with("pretrain-")).unwrap().path();
    let fin = pretrain.join("checkpoints/final.safetensors");
    let o = ijepa(&["export", fin.to_str().unwrap(), "--format", "official", "--out", d.join("px-encoder.safetensors").to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(o.status.success() && out.contains("exported the encoder (the checkpoint holds no target encoder)"), "{out}{err}");
    // a folder named through a symbolic link is the folder it leads to: not the run's
    let link = d.join("link-to-run");
    std::os::unix::fs::symlink(&pretrain, &link).unwrap();
    let config = std::fs::read(pretrain.join("config.json")).unwrap();
    let o = ijepa(&["export", fin.to_str().unwrap(), "--format", "hf", "--heads", "2", "--out", link.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(!o.status.success() && err.contains("is a pretraining's run folder"), "{out}{err}");
    assert_eq!(std::fs::read(pretrain.join("config.json")).unwrap(), config);
    // a profile's trace never replaces an experiment file (checked before any timing)
    let o = ijepa(&["bench", "step", "--width", "32", "--depth", "1", "--heads", "2", "--pred-depth", "1", "--pred-width", "16", "--batch", "2", "--steps", "1", "--profile", "1", "--trace", f.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(!o.status.success() && err.contains("is not a Chrome trace"), "{out}{err}");
    assert!(std::fs::read_to_string(&f).unwrap().starts_with("experiment \"px\""));
    // masks of more images than the statistics need are refused, not an out-of-memory abort
    let o = ijepa(&["masks", f.to_str().unwrap(), "--batches", "4294967296", "--batch-size", "1"]);
    let (out, err) = outputs(&o);
    assert!(!o.status.success() && err.contains("lower --batches or --batch-size"), "{out}{err}");
}

/// What a run's settings warned of before it trained is kept in its manifest and shown by
/// the report beside the monitors' warnings: the file's checks' (schedules that end before
/// the run) and the pretraining's own (a warm-up its steps' rounding makes fill the schedule:
/// 1.9 of the 1.98 epochs, 15 of 15 steps), each once; a run with none keeps none.
#[test]
fn a_runs_setting_warnings_are_kept_for_the_report() {
    let d = scratch("setting-warnings");
    let body = |name: &str, extra: &str| {
        format!(
            r#"experiment "{name}" {{
    data "fashion-mnist" {{ crop-size 32; batch-size 32; workers 2; limit 256 }}
    encoder width=32 depth=2 heads=2 patch=8
    predictor depth=1 width=16 heads=2
    mask "multi-block" {{ targets count=2 {{ scale 0.2 0.3; }}; min-keep 1; }}
    epochs 2
    {extra}
    precision "fp32"
    device "cpu"
}}
"#
        )
    };
    let warned = write(&d, "warned.kdl", &body("warned", "ipe-scale 0.99\n    optimizer \"adamw\" { lr warmup-epochs=1.9; }"));
    let quiet = write(&d, "quiet.kdl", &body("quiet", "optimizer \"adamw\" { lr warmup-epochs=1; }"));
    // (targets of 3x3 on the 4x4 grid: no context keeps more than min-keep patches outside
    // them, and the sampler drops its constraints, said once on the terminal)
    let relaxed = body("relaxed", "optimizer \"adamw\" { lr warmup-epochs=1; }\n    checkpoint keep-every=1")
        .replace("targets count=2 { scale 0.2 0.3; }; min-keep 1;", "targets count=1 { scale 0.56 0.57; aspect 1 1; }; min-keep 8;");
    let relaxed = write(&d, "relaxed.kdl", &relaxed);
    let runs = d.join("runs");
    for f in [&warned, &quiet, &relaxed] {
        let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
        let (out, err) = outputs(&o);
        assert!(o.status.success(), "{out}{err}");
    }
    let kept = |exp: &str| -> Vec<String> {
        let dir = std::fs::read_dir(runs.join(exp)).unwrap().flatten().map(|e| e.path()).find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("pretrain-")).unwrap();
        let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
        m["setting_warnings"].as_array().map(|a| a.iter().map(|w| w.as_str().unwrap().to_string()).collect()).unwrap_or_default()
    };
    // an augmentation DINO does not read, written at its default (to hold the methods' data
    // equal): said by `check`, kept too (it was not: only values away from a default were)
    let dino = write(
        &d,
        "dino.kdl",
        r#"experiment "dino" {
    recipe "dino"
    data "fashion-mnist" { crop-size 28; batch-size 16; workers 1; limit 64; horizontal-flip 0 }
    encoder width=16 depth=1 heads=2 patch=7
    dino { local-crops 1; local-size 14; out-dim 8; hidden-dim 8; bottleneck-dim 4 }
    epochs 1
    precision "fp32"
    device "cpu"
}
"#,
    );
    let o = ijepa(&["run", dino.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(o.status.success() && err.contains("DINO's views come from its own multi-crop"), "{out}{err}");
    let of_dino = kept("dino");
    assert!(of_dino[0].starts_with("DINO's views come from its own multi-crop") && of_dino[0].contains("horizontal-flip"), "{of_dino:?}");
    let said = kept("warned");
    assert_eq!(said.len(), 2, "{said:?}");
    assert!(said[0].starts_with("the schedules last ipe-scale 0.99 x 2 epoch(s) = 1.98 epoch(s)"), "{said:?}");
    assert!(said[1].starts_with("the learning-rate warmup (15 steps: 1.9 epoch(s)) is at least as long as the schedule (15 steps)"), "{said:?}");
    assert!(kept("quiet").is_empty());
    // what the recipe warned of while it trained is kept too
    let manifest = |exp: &str| -> serde_json::Value {
        let dir = std::fs::read_dir(runs.join(exp)).unwrap().flatten().map(|e| e.path()).find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("pretrain-")).unwrap();
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
    };
    let during = manifest("relaxed")["training_warnings"].clone();
    assert!(during.as_array().is_some_and(|a| a.len() == 1 && a[0].as_str().unwrap().starts_with("masks: at steps 1-16 the context block overlapped its target(s) in 512 of the 512 images trained (100.00%)")), "{during}");
    assert!(manifest("quiet").get("training_warnings").is_none());
    // resumed after its first epoch, the run keeps each attempt's steps (the images of
    // steps 9-16 trained twice, once each attempt)
    let dir = std::fs::read_dir(runs.join("relaxed")).unwrap().flatten().map(|e| e.path()).find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("pretrain-")).unwrap();
    let mut m = manifest("relaxed");
    m["status"] = "interrupted".into();
    m["checkpoints"] = serde_json::json!([]);
    std::fs::write(dir.join("manifest.json"), m.to_string()).unwrap();
    std::fs::copy(dir.join("checkpoints/epoch-0001.safetensors"), dir.join("checkpoints/latest.safetensors")).unwrap();
    let o = ijepa(&["run", relaxed.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    assert!(o.status.success() && outputs(&o).0.contains("resuming relaxed"), "{}{}", outputs(&o).0, outputs(&o).1);
    let during: Vec<String> = manifest("relaxed")["training_warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap().to_string()).collect();
    assert!(during.len() == 2 && during[0].starts_with("masks: at steps 1-16 ") && during[1].starts_with("masks: at steps 9-16 the context block overlapped its target(s) in 256 of the 256 images trained"), "{during:?}");
    let reports = d.join("reports");
    let o = ijepa(&["report", runs.to_str().unwrap(), "--out", reports.to_str().unwrap()]);
    assert!(o.status.success(), "{}", outputs(&o).1);
    let md = std::fs::read_to_string(reports.join("report.md")).unwrap();
    assert!(md.contains("## Warnings of the settings and the monitors"), "{md}");
    assert!(md.contains("before training: the learning-rate warmup (15 steps: 1.9 epoch(s))") && md.matches("before training:").count() == 2 + of_dino.len(), "{md}");
    assert!(md.contains("| relaxed | pretrain-") && md.contains("while training: masks: at steps 1-16 the context block overlapped"), "{md}");
    let csv = std::fs::read_to_string(reports.join("tables/warnings.csv")).unwrap();
    assert!(csv.lines().count() == 5 + of_dino.len() && csv.contains("DINO's views come from") && !csv.contains("quiet"), "{csv}");
}

/// Pretraining followed by the evaluation stages and a report: eval.json records for the
/// pretrained encoder and the baselines, tables with the paper's rows beside ours.
#[test]
fn run_with_evals_and_report() {
    let d = scratch("evals");
    let f = write(
        &d,
        "ev.kdl",
        r#"experiment "ev" {
    data "fashion-mnist" { crop-size 32; batch-size 32; workers 2; limit 256 }
    encoder width=32 depth=2 heads=2 patch=8
    predictor depth=1 width=16 heads=2
    mask "multi-block" { targets count=2 { scale 0.15 0.4; }; min-keep 1; }
    epochs 1
    precision "fp32"
    device "cpu"
    eval "linear" { epochs 3; decay-every 2; lr 0.05; weight-decay 0; baselines "random-init" "raw-pixels" }
    eval "low-shot" fraction=0.1 { c 1; }
    eval "knn" { k 5 }
    monitor every=1 images=64 k=5 rank-floor=31
    report
}
"#,
    );
    let (runs, reports) = (d.join("runs"), d.join("reports"));
    let args = ["run", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap(), "--reports-dir", reports.to_str().unwrap()];
    let o = ijepa(&args);
    let (out, err) = outputs(&o);
    assert!(o.status.success(), "{out}{err}");
    let mut evals = eval_records(&runs.join("ev"));
    evals.sort_by_key(|e| format!("{}-{}", e["protocol"], e["model"]));
    let keys: Vec<String> = evals.iter().map(|e| format!("{}/{}", e["protocol"].as_str().unwrap(), e["model"].as_str().unwrap())).collect();
    assert_eq!(keys, ["knn/ijepa", "linear/ijepa", "linear/random-init", "linear/raw-pixels", "low-shot/ijepa"]);
    // each record says what computed it: the precision of the encoder's features, the device
    for e in &evals {
        let precision = if e["model"] == "raw-pixels" { serde_json::Value::Null } else { serde_json::json!("fp32") };
        assert_eq!(&e["precision"], &precision, "{e}");
        // (and the processor, which its timings depend on)
        assert!(e["device"].as_str().is_some_and(|d| d.starts_with("cpu (") && d.contains(") on ") && !d.ends_with(" on ")), "{e}");
    }
    for e in &evals {
        let top1 = e["top1"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&top1), "{e}");
        assert_eq!(e["test_examples"], 2000);
    }
    // the monitor: before training (both encoders and the pixels) and after the epoch, on the
    // 64 held-out images; pretraining saw the other 192 (6 steps of 32)
    assert!(out.contains("on 192 images") && out.contains("monitor: target kNN") && out.contains("| target kNN"), "{out}");
    let pre = std::fs::read_dir(runs.join("ev")).unwrap().map(|e| e.unwrap().path()).find(|p| p.join("monitor.csv").exists()).unwrap();
    // the kernel of the CPU's matrix products, which moves scores in the last bits: the
    // pretraining's, chosen by the same rule
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(pre.join("manifest.json")).unwrap()).unwrap();
    assert!(manifest["cpu_products"].as_str().is_some_and(|k| k == "blas" || k == "onednn"), "{manifest}");
    for e in &evals {
        assert_eq!(e["cpu_products"], manifest["cpu_products"], "{e}");
    }
    let monitor = std::fs::read_to_string(pre.join("monitor.csv")).unwrap();
    let rows: Vec<Vec<&str>> = monitor.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let keys: Vec<String> = rows.iter().map(|r| format!("{}/{}/{}", r[0], r[1], r[2])).collect();
    assert_eq!(keys, ["0/0/target", "0/0/context", "0/0/pixels", "6/1/target", "6/1/context"], "{monitor}");
    for r in &rows {
        let knn: f64 = r[3].parse().unwrap();
        let rank: f64 = r[4].parse().unwrap();
        assert!((0.0..=100.0).contains(&knn) && (1.0..=96.0).contains(&rank), "{monitor}");
    }
    assert!(out.contains("monitor baseline: pixels kNN"), "{out}");
    // a floor no 32-wide encoder reaches: warned, kept in the manifest, shown in the report
    assert!(err.contains("epoch 1: the target encoder's features are collapsing (effective rank"), "{err}");
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(pre.join("manifest.json")).unwrap()).unwrap();
    let kept: Vec<&str> = manifest["warnings"].as_array().unwrap().iter().filter_map(|w| w.as_str()).collect();
    assert!(kept.iter().any(|w| w.starts_with("epoch 1: the target encoder's features are collapsing")) && kept.iter().any(|w| w.starts_with("epoch 1: the context encoder's")), "{kept:?}");
    let md = std::fs::read_to_string(reports.join("report.md")).unwrap();
    assert!(md.contains("## Warnings of the settings and the monitors") && md.contains("epoch 1: the target encoder's features are collapsing"), "{md}");
    // 10% of 256 training images, per class
    let low = evals.iter().find(|e| e["protocol"] == "low-shot").unwrap();
    assert!((20..=35).contains(&low["train_examples"].as_u64().unwrap()), "{low}");
    let md = std::fs::read_to_string(reports.join("report.md")).unwrap();
    assert!(md.contains("79.3") && md.contains("I-JEPA (ours)") && md.contains("random init"), "{md}");
    assert!(reports.join("report.html").exists() && reports.join("plots/loss-ev.png").exists());
    assert!(reports.join("plots/monitor-ev.png").exists() && reports.join("plots/monitor-ev.svg").exists());
    // a second run repeats nothing
    let o = ijepa(&args);
    let (out, _) = outputs(&o);
    assert!(out.contains("already done") && !out.contains("top-1"), "{out}");
    // a floor changed in the file (not hashed: the run stays done) is the warnings' floor: read
    // again from monitor.csv, recorded, and the report written again (they stayed the old
    // floor's, and its figure drew the old floor)
    std::fs::write(&f, std::fs::read_to_string(&f).unwrap().replace("rank-floor=31", "rank-floor=1")).unwrap();
    let o = ijepa(&args);
    let (out, err) = outputs(&o);
    assert!(o.status.success() && out.contains("pretrain: the monitor's floors are now rank-floor 1 and spread-floor 0.05 (it ran with 31 and 0.05)") && !err.contains("collapsing"), "{out}{err}");
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(pre.join("manifest.json")).unwrap()).unwrap();
    assert!(!manifest["warnings"].to_string().contains("collapsing"), "{manifest}");
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(pre.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["monitor"]["rank_floor"], 1.0);
    assert!(!std::fs::read_to_string(reports.join("report.md")).unwrap().contains("features are collapsing (effective rank"));
    // ... and once: the next run repeats nothing
    let (out, _) = outputs(&ijepa(&args));
    assert!(out.contains("already done") && !out.contains("floors are now") && !out.contains("== run"), "{out}");
    // `ijepa report` writes beside the runs, never into the runs folder or a stage folder
    // (also a folder inside one, made or not yet)
    std::fs::create_dir_all(pre.join("made")).unwrap();
    // (nor anywhere inside the runs folder: an experiment's folder, a new one)
    for into in [runs.clone(), pre.clone(), pre.join("new"), pre.join("made"), runs.join("ev"), runs.join("reports")] {
        let o = ijepa(&["report", runs.to_str().unwrap(), "--out", into.to_str().unwrap()]);
        let (out, err) = outputs(&o);
        assert!(!o.status.success() && err.contains("the runs folder, inside it or inside a stage folder"), "{out}{err}");
        assert!(!into.join("report.md").exists() && !into.join("plots").exists());
    }
    // nor does `run` or `plan` with such a `--reports-dir` (run wrote its report into the
    // pretraining's checkpoints/, plan listed it done there), a runs folder not made yet too
    // (spelt through a folder not made yet and `..`, or through a link)
    let fresh = d.join("fresh-runs");
    std::os::unix::fs::symlink(&d, d.join("selflink")).unwrap();
    let detour = d.join("not-yet/../fresh-runs");
    for (cmd, runs_dir, into) in [
        ("run", &runs, pre.join("checkpoints")),
        ("plan", &runs, runs.clone()),
        ("run", &fresh, fresh.join("reports")),
        ("plan", &fresh, fresh.join("x/../reports")),
        ("run", &detour, fresh.join("reports")),
        ("plan", &fresh, d.join("selflink/fresh-runs/reports")),
        ("plan", &fresh, d.join("not-yet/../selflink/fresh-runs/reports")),
    ] {
        let o = ijepa(&[cmd, f.to_str().unwrap(), "--runs-dir", runs_dir.to_str().unwrap(), "--reports-dir", into.to_str().unwrap()]);
        let (out, err) = outputs(&o);
        assert!(!o.status.success() && err.contains("--reports-dir") && err.contains("the runs folder, inside it or inside a stage folder"), "{cmd} {into:?}: {out}{err}");
        assert!(!into.join("report.md").exists() && !fresh.exists(), "{cmd} {into:?}");
    }
    let o = ijepa(&["report", runs.to_str().unwrap(), "--out", d.join("again").to_str().unwrap()]);
    assert!(o.status.success() && d.join("again/report.md").is_file(), "{}", outputs(&o).1);
    // an experiment file given for the runs folder is said to be one (it failed as "Not a
    // directory (os error 20)")
    let o = ijepa(&["report", f.to_str().unwrap(), "--out", d.join("of-a-file").to_str().unwrap()]);
    assert!(!o.status.success() && outputs(&o).1.contains("a file, not a runs folder") && outputs(&o).1.contains("`ijepa run FILE` again"), "{}", outputs(&o).1);
    // `ijepa report` of another runs folder (a copy: the same files) into the study's report
    // folder: the study's report stage is to run again (it stayed done over the other
    // folder's report)
    let plan = ["plan", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap(), "--reports-dir", reports.to_str().unwrap()];
    let report_line = |o: &std::process::Output| outputs(o).0.lines().find(|l| l.contains("report  [")).unwrap_or_default().to_string();
    assert!(report_line(&ijepa(&plan)).contains(" done"), "{}", outputs(&ijepa(&plan)).0);
    let copied = std::process::Command::new("cp").arg("-r").arg(&runs).arg(d.join("other-runs")).status().unwrap();
    assert!(copied.success());
    let o = ijepa(&["report", d.join("other-runs").to_str().unwrap(), "--out", reports.to_str().unwrap()]);
    assert!(o.status.success(), "{}", outputs(&o).1);
    assert!(report_line(&ijepa(&plan)).contains("to run"), "{}", outputs(&ijepa(&plan)).0);
}

/// `features "last" "last4"`: each probe runs on both feature sets and keeps the one with the
/// better held-out score (recorded per set, tagged `blocks`); the pixels have one set.
#[test]
fn probes_choose_their_feature_set_on_held_out_data() {
    let d = scratch("feature-choice");
    let f = write(
        &d,
        "fc.kdl",
        r#"experiment "fc" {
    data "fashion-mnist" { crop-size 28; batch-size 32; workers 2; limit 256 }
    encoder width=32 depth=4 heads=2 patch=7
    predictor depth=1 width=16 heads=2
    mask "multi-block" { targets count=1 { scale 0.15 0.4; }; min-keep 1; }
    epochs 1
    precision "fp32"
    device "cpu"
    eval "linear" { epochs 2; decay-every 2; lr 0.05; weight-decay 0; features "last" "last4"; baselines "raw-pixels" }
    eval "knn" { k 5; features "last" "last4"; held-out 0.2; baselines "raw-pixels" }
}
"#,
    );
    let runs = d.join("runs");
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(o.status.success(), "{out}{err}");
    let evals = eval_records(&runs.join("fc"));
    assert_eq!(evals.len(), 4);
    for e in &evals {
        let sweep = e["sweep"].as_array().unwrap();
        if e["model"] == "raw-pixels" {
            assert_eq!(e["features"], "pixels", "{e}");
            assert!(sweep.iter().all(|p| p["params"].get("blocks").is_none()), "{e}");
            // (their kNN has one feature set, and holds nothing out: not a setting it ran with)
            if e["protocol"] == "knn" {
                assert!(e["settings"].get("held-out").is_none(), "{e}");
            }
            continue;
        }
        // one held-out score per set (one grid point each), the chosen set the better one
        let score = |b: f64| sweep.iter().find(|p| p["params"]["blocks"] == b).unwrap()["heldout_top1"].as_f64().unwrap();
        assert_eq!(sweep.len(), 2, "{e}");
        let blocks = e["chosen"]["blocks"].as_f64().unwrap();
        let want = if score(4.0) > score(1.0) { 4.0 } else { 1.0 };
        assert_eq!(blocks, want, "{e}");
        assert_eq!(e["features"], if blocks == 4.0 { "last4" } else { "last" }, "{e}");
        // the protocol's own settings as it ran, beside what it chose
        let settings = &e["settings"];
        if e["protocol"] == "linear" {
            assert_eq!((settings["epochs"].as_f64(), settings["decay-every"].as_f64(), settings["held-out"].as_f64()), (Some(2.0), Some(2.0), Some(0.1)), "{e}");
        } else {
            assert_eq!(settings["held-out"].as_f64(), Some(0.2), "{e}");
        }
    }
    // last4 on an encoder of depth 2 is refused before pretraining
    let bad = write(&d, "bad.kdl", &std::fs::read_to_string(&f).unwrap().replace("depth=4", "depth=2"));
    let o = ijepa(&["check", bad.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(!o.status.success() && format!("{out}{err}").contains("last four blocks"), "{out}{err}");
}

/// Inputs are checked before anything runs: a missing data root is a diagnostic at the root=
/// span from `check`, `plan` and `run --dry-run` (never a failure after the model is built).
#[test]
fn a_missing_data_root_is_caught_before_anything_runs() {
    let d = scratch("missing-root");
    let f = d.join("x.kdl");
    std::fs::write(
        &f,
        "experiment \"x\" {\n    data \"image-folder\" root=\"/nonexistent/imgs\" { crop-size 32 }\n    encoder width=64 depth=2 heads=2 patch=4\n    mask \"multi-block\" { min-keep 4 }\n}\n",
    )
    .unwrap();
    let runs = d.join("runs");
    for args in [vec!["check"], vec!["plan", "--runs-dir", runs.to_str().unwrap()], vec!["run", "--dry-run", "--runs-dir", runs.to_str().unwrap()]] {
        let mut a = args.clone();
        a.push(f.to_str().unwrap());
        let o = ijepa(&a);
        let (out, err) = outputs(&o);
        assert!(!o.status.success(), "{args:?}: {out}");
        assert!(err.contains("ijepa::dsl::missing_input") && err.contains("/nonexistent/imgs does not exist") && err.contains("x.kdl:2:"), "{args:?}: {err}");
    }
    assert!(!runs.exists(), "nothing was written");
    // a root a sweep varies is reported at its value (it was at the experiment node, line 1)
    let f = d.join("y.kdl");
    std::fs::write(
        &f,
        "experiment \"y\" {\n    encoder width=64 depth=2 heads=2 patch=4\n    mask \"multi-block\" { min-keep 4 }\n}\nsweep \"grid\" {\n    vary \"data.root\" \"/nonexistent/fm\"\n}\n",
    )
    .unwrap();
    let o = ijepa(&["check", f.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(!o.status.success(), "{out}");
    assert!(err.contains("ijepa::dsl::missing_input") && err.contains("/nonexistent/fm does not exist") && err.contains("y.kdl:6:22"), "{err}");
}

/// A libtorch allocation failure past the estimate (here: a step whose activations need tens
/// of GB under an address-space limit) is an error naming the step, the manifest says
/// "failed" with it, and nothing panics or hangs. The limit (`ulimit -v`) is 5 GB above the
/// smallest whole number of GB under which the binary's libraries load (their mapping size
/// differs by machine): room for the model, the loader and the lower bound checked before
/// pretraining (a few GiB, one block's activations; the limit counts toward what is
/// available), not for the step (every block's, 14.5 GiB). A narrow encoder at a large batch:
/// the wide one (384 at batch 1024, the same activations at twice the FLOPs) computed for
/// minutes before its allocation failed, past the 300 s limit on a loaded machine.
#[test]
fn an_allocation_failure_in_a_step_is_an_error_naming_the_step() {
    let d = scratch("step-oom");
    let f = d.join("big-step.kdl");
    std::fs::write(
        &f,
        "experiment \"big-step\" {\n    data \"fashion-mnist\" { crop-size 56; batch-size 2048 }\n    encoder width=192 depth=6 heads=3 patch=4\n    predictor depth=2 width=96 heads=3\n    mask \"multi-block\" { min-keep 3 }\n    precision \"fp32\"\n    epochs 1\n}\n",
    )
    .unwrap();
    let runs = d.join("runs");
    let bin = env!("CARGO_BIN_EXE_ijepa");
    let limited = |gb: u64, args: &[&str]| {
        std::process::Command::new("timeout")
            .args(["300", "sh", "-c", &format!("ulimit -v {}; exec \"$0\" \"$@\"", gb << 20), bin])
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap()
    };
    let loads = (2..=32u64)
        .find(|&gb| limited(gb, &["check", f.to_str().unwrap()]).status.success())
        .expect("the binary does not start under a 32 GB address-space limit");
    let gb = loads + 5;
    let t0 = std::time::Instant::now();
    let o = limited(gb, &["run", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert_ne!(o.status.code(), Some(124), "{gb} GB: hung (killed after 300 s)\n{out}\n{err}");
    assert_eq!(o.status.code(), Some(1), "{gb} GB: {out}\n{err}");
    assert!(!err.contains("panicked") && !err.contains("backtrace"), "{gb} GB: {err}");
    assert!(err.contains("error: out of memory during pretraining step 1: "), "{gb} GB: {err}");
    let manifest = common::pretrain_in(&runs.join("big-step")).expect("a pretraining folder").join("manifest.json");
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    assert_eq!(m["status"], "failed", "{m}");
    assert!(m["error"].as_str().unwrap().contains("out of memory during pretraining step 1"), "{m}");
    eprintln!("libraries load under {loads} GB; the step was refused under {gb} GB in {:?}", t0.elapsed());
}

/// Sizes that cannot fit are an error with the estimate before any model is built (never an
/// allocation abort or a panic).
#[test]
fn a_size_that_cannot_fit_is_an_error_with_the_estimate() {
    let d = scratch("oversize");
    for (name, body) in [
        ("width", "encoder width=1000000 depth=2 heads=1 patch=4\n    data \"fashion-mnist\" { crop-size 28 }"),
        ("crop", "encoder width=64 depth=2 heads=1 patch=16\n    data \"fashion-mnist\" { crop-size 4096 }"),
    ] {
        let f = d.join(format!("{name}.kdl"));
        std::fs::write(&f, format!("experiment \"{name}\" {{\n    {body}\n    predictor depth=1 width=32 heads=1\n    mask \"multi-block\" {{ min-keep 4 }}\n}}\n")).unwrap();
        let t0 = std::time::Instant::now();
        let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap()]);
        let (out, err) = outputs(&o);
        assert_eq!(o.status.code(), Some(1), "{name}: {out}\n{err}");
        assert!(err.contains("needs at least") && err.contains("GiB") && !err.contains("panicked"), "{name}: {err}");
        assert!(t0.elapsed() < std::time::Duration::from_secs(60), "{name}: refused only after {:?}", t0.elapsed());
    }
    // sizes past the language's ceilings are refused by `check` itself, before `masks`,
    // `estimate` or a run allocate anything for them
    for (name, body, says) in [
        ("crop", "encoder width=64 depth=2 heads=1 patch=4\n    data \"fashion-mnist\" { crop-size 1000000 }", "must be at most 4096"),
        ("grid", "encoder width=64 depth=2 heads=1 patch=1\n    data \"fashion-mnist\" { crop-size 4096 }", "4096x4096 grid"),
        ("batch", "encoder width=64 depth=2 heads=1 patch=4\n    data \"fashion-mnist\" { crop-size 28; batch-size 100000000000 }", "must be at most 1048576"),
        ("targets", "encoder width=64 depth=2 heads=1 patch=4\n    data \"fashion-mnist\" { crop-size 28 }\n    epochs 1000000", "must be at most 100000"),
    ] {
        let f = d.join(format!("ceiling-{name}.kdl"));
        std::fs::write(&f, format!("experiment \"{name}\" {{\n    {body}\n    predictor depth=1 width=32 heads=1\n    mask \"multi-block\" {{ min-keep 4 }}\n}}\n")).unwrap();
        for cmd in ["check", "masks", "estimate"] {
            let o = ijepa(&[cmd, f.to_str().unwrap()]);
            let (out, err) = outputs(&o);
            assert_eq!(o.status.code(), Some(1), "{name} {cmd}: {out}\n{err}");
            assert!(err.contains("ijepa::dsl::out_of_range") && err.contains(says), "{name} {cmd}: {err}");
        }
    }
    let f = d.join("ceiling-count.kdl");
    std::fs::write(&f, "experiment \"c\" {\n    encoder width=64 depth=2 heads=1 patch=4\n    data \"fashion-mnist\" { crop-size 28 }\n    mask \"multi-block\" { targets count=100000 { scale 0.1 0.2; }; min-keep 1 }\n}\n").unwrap();
    let o = ijepa(&["masks", f.to_str().unwrap()]);
    assert!(!o.status.success() && outputs(&o).1.contains("must be at most 100"), "{:?}", outputs(&o));
}

/// A report folder that cannot be written is refused before any stage runs (not found by the
/// report stage at the end of the pretraining and evaluations).
#[test]
fn an_unwritable_report_folder_is_refused_before_training() {
    let d = scratch("reports-dir");
    let file = d.join("not-a-folder");
    std::fs::write(&file, b"").unwrap();
    let runs = d.join("runs");
    let o = ijepa(&["run", "experiments/quickstart.kdl", "--runs-dir", runs.to_str().unwrap(), "--reports-dir", file.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(err.contains(&format!("--reports-dir {}: it is a file where a folder is needed: move it aside", file.display())), "{err}");
    assert!(!runs.join("quickstart").exists(), "a stage ran before the refusal");
    // `plan` and a dry run say it too (they accepted it), also for a folder under the file
    for args in [&["plan"][..], &["run", "--dry-run"][..]] {
        for dir in [file.clone(), file.join("sub")] {
            let o = ijepa(&[args, &["experiments/quickstart.kdl", "--runs-dir", runs.to_str().unwrap(), "--reports-dir", dir.to_str().unwrap()][..]].concat());
            let (out, err) = outputs(&o);
            let says = if dir == file { format!("--reports-dir {}: it is a file where a folder is needed", file.display()) } else { format!("--reports-dir {}: {} is a file where a folder is needed", dir.display(), file.display()) };
            assert!(!o.status.success() && err.contains(&says), "{args:?} {dir:?}: {out}{err}");
        }
    }
    // ... and a link to nothing
    let dangling = d.join("dangling");
    std::os::unix::fs::symlink(d.join("nowhere"), &dangling).unwrap();
    for args in [&["plan"][..], &["run", "--dry-run"][..], &["run"][..]] {
        let o = ijepa(&[args, &["experiments/quickstart.kdl", "--runs-dir", runs.to_str().unwrap(), "--reports-dir", dangling.to_str().unwrap()][..]].concat());
        let (out, err) = outputs(&o);
        assert!(!o.status.success() && err.contains("a symbolic link to nothing (a broken link) where a folder is needed"), "{args:?}: {out}{err}");
    }
    assert!(!runs.join("quickstart").exists(), "a stage ran before the refusal");
    // ... and a runs folder under a file (the run failed at its first stage)
    for args in [&["plan"][..], &["run", "--dry-run"][..]] {
        let under = file.join("runs");
        let o = ijepa(&[args, &["experiments/quickstart.kdl", "--runs-dir", under.to_str().unwrap(), "--reports-dir", d.join("rep").to_str().unwrap()][..]].concat());
        let (out, err) = outputs(&o);
        assert!(!o.status.success() && err.contains(&format!("--runs-dir {}: {} is a file, not a folder", under.display(), file.display())), "{args:?}: {out}{err}");
    }
}

/// `ijepa launch` starts as many processes as it is told: the count is bounded as the
/// language bounds `gpus-per-node`, and port 0 (no TCP port) is refused before any rank starts.
#[test]
fn launch_refuses_a_process_count_or_port_it_cannot_use() {
    let d = scratch("launch-args");
    let f = write(&d, "x.kdl", "experiment \"x\" {\n    data \"fashion-mnist\" { crop-size 32; batch-size 8; limit 32 }\n    encoder width=16 depth=1 heads=2 patch=4\n    predictor depth=1 width=8 heads=2\n    mask \"multi-block\" { min-keep 3 }\n}\n");
    let o = ijepa(&["launch", "--nproc-per-node", "100000", f.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(!o.status.success() && err.contains("at most 64"), "{out}{err}");
    let o = ijepa(&["launch", "--master-port", "0", f.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(!o.status.success() && err.contains("--master-port") && !d.join("runs").exists(), "{out}{err}");
    let o = ijepa(&["plan", "--world-size", "99999999999", f.to_str().unwrap()]);
    assert!(!o.status.success() && outputs(&o).1.contains("at most"), "{:?}", outputs(&o));
    // the ranks' `run` arguments are read once, before any rank starts: `-- --help` prints
    // `run`'s help once (each rank printed it), an argument `run` refuses is said once
    let o = ijepa(&["launch", "--nproc-per-node", "2", f.to_str().unwrap(), "--", "--help"]);
    let (out, err) = outputs(&o);
    assert!(o.status.success() && out.matches("--runs-dir").count() == 1 && !err.contains("launched"), "{out}{err}");
    let o = ijepa(&["launch", "--nproc-per-node", "2", f.to_str().unwrap(), "--", "--no-such-flag"]);
    let (out, err) = outputs(&o);
    assert!(!o.status.success() && err.matches("unexpected argument '--no-such-flag'").count() == 1 && !err.contains("launched") && !d.join("runs").exists(), "{out}{err}");
}

/// Special files given where a file is read are refused at once: `/dev/zero` as a checkpoint
/// (it was hashed until memory ran out) or as a YAML config (read up to the size bound: a pipe
/// still works there), a folder as a checkpoint.
#[test]
fn special_files_are_refused_as_inputs() {
    let d = scratch("special");
    let f = write(&d, "x.kdl", "experiment \"x\" {\n    data \"fashion-mnist\" { crop-size 32; batch-size 8; limit 32 }\n    encoder width=16 depth=1 heads=2 patch=4\n    predictor depth=1 width=8 heads=2\n    mask \"multi-block\" { min-keep 3 }\n    eval \"knn\" { k 5 }\n}\n");
    let runs = d.join("runs");
    for (args, says) in [
        (vec!["eval", f.to_str().unwrap(), "--checkpoint", "/dev/zero", "--runs-dir", runs.to_str().unwrap()], "not a regular file"),
        (vec!["eval", f.to_str().unwrap(), "--checkpoint", d.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()], "not a regular file"),
        (vec!["import-yaml", "/dev/zero"], "larger than the"),
        (vec!["import-checkpoint", "/dev/zero", "--out", d.join("z.safetensors").to_str().unwrap()], "not a regular file"),
    ] {
        let o = ijepa(&args);
        let (out, err) = outputs(&o);
        assert!(!o.status.success() && err.contains(says) && !err.contains("panicked"), "{args:?}: {out}{err}");
    }
    assert!(!runs.exists(), "nothing is written for a refused input");
    // a regular file that is no checkpoint: refused, and no empty stage folder is left
    let junk = write(&d, "junk.safetensors", "not a checkpoint at all");
    let o = ijepa(&["eval", f.to_str().unwrap(), "--checkpoint", junk.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    assert!(!o.status.success(), "{:?}", outputs(&o));
    let left: Vec<_> = std::fs::read_dir(runs.join("x")).map(|d| d.map(|e| e.unwrap().file_name()).filter(|n| n.to_string_lossy().starts_with("eval-")).collect()).unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    // an output path naming an existing file of another kind is refused, the file kept
    let before = std::fs::read(&f).unwrap();
    for args in [
        vec!["export", junk.to_str().unwrap(), "--format", "official", "--out", f.to_str().unwrap()],
        vec!["masks", f.to_str().unwrap(), "--png", f.to_str().unwrap()],
        vec!["import-checkpoint", junk.to_str().unwrap(), "--out", f.to_str().unwrap()],
    ] {
        let o = ijepa(&args);
        let (out, err) = outputs(&o);
        assert!(!o.status.success() && (err.contains("exists and is not") || err.contains("is the input file")), "{args:?}: {out}{err}");
    }
    // nor a safetensors file this command does not write: a training checkpoint (its
    // optimiser state and position were lost to an encoder's weights), an HF export's weights
    let header = br#"{"__metadata__":{"format":"ijepa-checkpoint-v1"}}"#;
    let mut state = (header.len() as u64).to_le_bytes().to_vec();
    state.extend_from_slice(header);
    let training = d.join("backup.safetensors");
    std::fs::write(&training, &state).unwrap();
    let hf = d.join("hf");
    std::fs::create_dir_all(&hf).unwrap();
    std::fs::write(hf.join("config.json"), r#"{"architectures":["IJepaModel"],"model_type":"ijepa"}"#).unwrap();
    let mut weights = 2u64.to_le_bytes().to_vec();
    weights.extend_from_slice(b"{}");
    std::fs::write(hf.join("model.safetensors"), &weights).unwrap();
    // ... nor one of models under their module names without optimiser state (a copy of a run's
    // final weights, an imported official checkpoint: replaced by one encoder's)
    let header = br#"{"predictor.w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
    let mut models = (header.len() as u64).to_le_bytes().to_vec();
    models.extend_from_slice(header);
    models.extend_from_slice(&[0; 4]);
    let final_copy = d.join("final-backup.safetensors");
    std::fs::write(&final_copy, &models).unwrap();
    for (to, says) in [(training.clone(), "is a training checkpoint"), (hf.join("model.safetensors"), "is the weights of a Hugging Face export"), (final_copy.clone(), "holds whole models' weights")] {
        let o = ijepa(&["export", junk.to_str().unwrap(), "--format", "official", "--out", to.to_str().unwrap()]);
        let (out, err) = outputs(&o);
        assert!(!o.status.success() && err.contains(says), "{}: {out}{err}", to.display());
    }
    assert_eq!(std::fs::read(&training).unwrap(), state);
    assert_eq!(std::fs::read(&final_copy).unwrap(), models);
    assert_eq!(std::fs::read(hf.join("model.safetensors")).unwrap(), weights);
    let doc = write(&d, "notes.txt", "my notes");
    let o = ijepa(&["masks", f.to_str().unwrap(), "--png", doc.to_str().unwrap()]);
    assert!(!o.status.success() && outputs(&o).1.contains("exists and is not a PNG image"), "{:?}", outputs(&o));
    assert_eq!(std::fs::read(&f).unwrap(), before);
    assert_eq!(std::fs::read_to_string(&doc).unwrap(), "my notes");
}

/// An evaluation that must choose on a held-out part of the training split (a grid of
/// learning rates, several feature sets) with a `held-out` fraction that holds out no image
/// (each class's share rounds to 0) stops the run before pretraining, naming it: the linear
/// probe and kNN stopped after pretraining, and fine-tuning "chose" on no image (every point
/// 0.00%) without a word.
#[test]
fn a_held_out_part_of_no_image_is_found_before_pretraining() {
    let d = scratch("held-out-none");
    let base = "experiment \"h\" {\n    data \"fashion-mnist\" { crop-size 28; batch-size 16; workers 1; limit 200 }\n    encoder width=16 depth=4 heads=2 patch=7\n    predictor depth=1 width=8 heads=2\n    mask \"multi-block\" { min-keep 0 }\n    epochs 1\n    precision \"fp32\"\n    EVAL\n}\n";
    let runs = d.join("runs");
    for (name, eval, says) in [
        ("linear", "eval \"linear\" { epochs 1; held-out 0.001; lr 0.01 0.02 }", "the linear evaluation: held-out fraction 0.001 of 200 training images leaves no held-out sample to choose among its 4 (lr, weight decay) points"),
        ("knn", "eval \"knn\" { features \"last\" \"last4\"; held-out 0.001 }", "the knn evaluation: held-out fraction 0.001 of 200 training images leaves no held-out sample to choose among its feature sets"),
        ("finetune", "eval \"finetune\" { epochs 1; batch-size 8; held-out 0.001; lr 0.01 0.02; weight-decay 0 }", "the finetune evaluation: held-out fraction 0.001"),
    ] {
        let f = write(&d, &format!("{name}.kdl"), &base.replace("EVAL", eval));
        let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
        let (out, err) = outputs(&o);
        assert!(!o.status.success() && err.contains("checked before pretraining") && err.contains(says) && err.contains("rounds to 0"), "{name}: {out}{err}");
        assert!(!out.contains("== run pretrain") && !runs.join("h").exists(), "{name}: {out}{err}");
    }
    // a held-out part of one image a class is enough
    let f = write(&d, "enough.kdl", &base.replace("EVAL", "eval \"knn\" { features \"last\" \"last4\"; held-out 0.05 }"));
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", outputs(&o));
}

/// A fine-tuning grid whose every point diverges is an error naming the points (it said
/// only "every grid point diverged"), and each point's warning counts epochs and steps from 1,
/// as the epoch lines do.
#[test]
fn a_fine_tuning_grid_that_diverges_everywhere_names_its_points() {
    let d = scratch("finetune-diverged");
    let f = write(
        &d,
        "f.kdl",
        "experiment \"f\" {\n    data \"fashion-mnist\" { crop-size 28; batch-size 8; workers 1; limit 40 }\n    encoder width=16 depth=1 heads=2 patch=7\n    predictor depth=1 width=8 heads=2\n    mask \"multi-block\" { min-keep 0 }\n    epochs 1\n    precision \"fp32\"\n    eval \"finetune\" { epochs 2; batch-size 8; warmup-epochs 0; lr 1e3 1e4; baselines \"random-init\" }\n}\n",
    );
    let runs = d.join("runs");
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    let (out, err) = outputs(&o);
    assert!(!o.status.success() && err.contains("every grid point diverged (lr 1.0e3 wd 0.05, lr 1.0e4 wd 0.05)"), "{out}{err}");
    assert!(!err.contains("at epoch 0,") && !err.contains(", step 0 ("), "{err}");
}

/// A class its held-out part holds no image of is said by the evaluation itself, not only by
/// the check before a pretraining trains: a `held-out` changed after the pretraining finished
/// had no word. A class of one image is told apart (it stays in training at any fraction: "a
/// larger `held-out` includes them" could not be followed).
#[test]
fn a_class_the_held_out_part_never_scores_is_said_over_a_finished_pretraining() {
    let d = scratch("held-out-class");
    let base = "experiment \"h\" {\n    data \"fashion-mnist\" { crop-size 28; batch-size 4; workers 1; limit 12 }\n    encoder width=16 depth=1 heads=2 patch=7\n    predictor depth=1 width=8 heads=2\n    mask \"multi-block\" { min-keep 0 }\n    epochs 1\n    precision \"fp32\"\n    EVAL\n}\n";
    let runs = d.join("runs");
    let f = write(&d, "h.kdl", &base.replace("EVAL", ""));
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", outputs(&o));
    for (held_out, says) in [
        ("0.9", "held-out fraction 0.9 holds out no image of classes 3, 7 (too few training images for a share of their own): its choice never scores them; they have one image each, which stays in training at any `held-out`: only more images of those classes let the choice score them"),
        ("0.2", "held-out fraction 0.2 holds out no image of classes 2, 3, 5, 7, 9 (too few training images for a share of their own): its choice never scores them; a larger `held-out` includes classes 2, 5, 9; classes 3, 7 have one image each, which stays"),
    ] {
        let f = write(&d, "h.kdl", &base.replace("EVAL", &format!("eval \"linear\" {{ epochs 1; lr 0.01 0.02; weight-decay 0; held-out {held_out} }}")));
        let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
        let (out, err) = outputs(&o);
        assert!(o.status.success() && out.contains("skip pretrain") && err.contains(says), "{held_out}: {out}{err}");
    }
}

/// The raw pixels of a split too large to hold (3,750 GiB at 4096 px) are refused with their
/// size before any image is read: the kernel killed the run (under a limit, the error blamed
/// the batch size).
#[test]
fn raw_pixels_too_large_to_hold_are_refused_with_their_size() {
    let d = scratch("raw-pixels-size");
    let f = write(&d, "rp.kdl", "experiment \"rp\" {\n    data \"fashion-mnist\" { crop-size 4096; batch-size 16; workers 1; }\n    encoder width=16 depth=1 heads=2 patch=16\n    predictor depth=1 width=8 heads=2\n    mask \"multi-block\" { min-keep 0 }\n    epochs 1\n    precision \"fp32\"\n    eval \"knn\" { baselines \"raw-pixels\"; }\n}\n");
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", d.join("runs").to_str().unwrap(), "--only", "eval-knn-raw-pixels"]);
    let (out, err) = outputs(&o);
    assert!(!o.status.success() && err.contains("the raw pixels of 10000 images at 4096 px are 3750.0 GiB") && err.contains("a smaller crop-size, or fewer images"), "{out}{err}");
}

/// What a pretraining would stop on at its start (less than one batch of images, schedules of
/// 0 steps, a size the machine cannot hold) and a fine-tuning batch larger than its fit's
/// images are refused before the first
/// pretraining trains: a sweep's later point (or the fine-tuning after pretraining) stopped
/// only after the earlier points had trained. `--dry-run` says so and plans on. The error names
/// the stage.
#[test]
fn a_point_that_cannot_train_is_refused_before_any_point_trains() {
    let d = scratch("refused-before");
    let base = "experiment \"r\" {\n    data \"fashion-mnist\" { crop-size 28; batch-size 16; workers 1; limit 200 }\n    encoder width=16 depth=1 heads=2 patch=7\n    predictor depth=1 width=8 heads=2\n    mask \"multi-block\" { min-keep 0 }\n    epochs 1\n    precision \"fp32\"\n    EVAL\n}\nSWEEP\n";
    let runs = d.join("runs");
    for (name, eval, sweep, says) in [
        ("ipe", "", "sweep \"grid\" { vary \"ipe-scale\" 1.0 0.01; }", "pretrain/ipe-scale-0.01, checked before pretraining: config: ipe-scale 0.01 x 1 epoch(s) x 12 step(s) an epoch gives schedules of 0 steps"),
        // (no `limit`: `check` does not hold a batch to the embedded images, `estimate` projects it)
        ("batch", "", "sweep \"grid\" { vary \"data.batch-size\" 16 20000; }", "pretrain/data-batch-size-20000, checked before pretraining: config: loader: 10000 images shared by 1 rank(s) give 10000 per rank, less than one batch of 20000"),
        ("finetune", "eval \"finetune\" { epochs 1; batch-size 190; lr 0.01 0.02; weight-decay 0 }", "", "eval-finetune-ijepa, checked before pretraining: config: fine-tuning: its batch-size 190 is more than the 179 images a fit trains on"),
        // a size this machine cannot hold (refused at the point's start once the points before
        // it had trained)
        // (4 TiB of attention maps: more than any machine holds)
        ("memory", "", "sweep \"zip\" { vary \"data.crop-size\" 28 4096; vary \"encoder.patch\" 7 16; vary \"data.batch-size\" 16 128; }", "pretrain/data-crop-size-4096_encoder-patch-16_data-batch-size-128, checked before pretraining: config: r-data-crop-size-4096_encoder-patch-16_data-batch-size-128 needs at least"),
    ] {
        let text = base.replace("EVAL", eval).replace("SWEEP", sweep);
        let f = write(&d, &format!("{name}.kdl"), &if name == "batch" { text.replace(" limit 200", "") } else { text });
        let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
        let (out, err) = outputs(&o);
        assert!(!o.status.success() && err.contains(says), "{name}: {out}{err}");
        assert!(!out.contains("== run pretrain") && !runs.join("r").exists(), "{name}: {out}{err}");
        let o = ijepa(&["run", f.to_str().unwrap(), "--dry-run", "--runs-dir", runs.to_str().unwrap()]);
        let (out, err) = outputs(&o);
        let refused = format!("the run would be refused: {}", says.split(" checked").next().unwrap());
        // (it shows the plan, and fails: a script does not go on to a run that stops at once)
        assert!(!o.status.success() && err.contains(&refused) && out.contains("run              pretrain"), "{name}: {out}{err}");
        assert!(err.contains("the run would be refused (1 reason(s), said above)"), "{name}: {out}{err}");
    }
}

/// A write to stdout that fails (a full disk) is an error at the end and exit status 1: the
/// plan written to a file was cut short and the command exited 0. A reader that stops reading
/// (`| head -1`) is no error.
#[test]
fn a_failed_write_to_stdout_is_an_error() {
    use std::process::{Command, Stdio};
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        return;
    };
    let o = Command::new(env!("CARGO_BIN_EXE_ijepa"))
        .args(["plan", "experiments/quickstart.kdl", "--dot"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.code() == Some(1) && err.contains("error: writing the standard output: ") && err.contains("`ijepa plan` printed there is lost or incomplete"), "{:?} {err}", o.status);
    // ... and so is one of the log lines' (a dry run's plan), and of clap's help
    let runs = scratch("stdout-full").join("runs");
    for args in [&["run", "experiments/quickstart.kdl", "--dry-run", "--runs-dir", runs.to_str().unwrap()][..], &["--help"]] {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_ijepa")).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).stdout(full).stderr(Stdio::piped()).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.code() == Some(1) && err.contains("error: writing the standard output: "), "{args:?}: {:?} {err}", o.status);
    }
    // a closed pipe: exit 0, nothing said
    let mut child = Command::new(env!("CARGO_BIN_EXE_ijepa"))
        .args(["plan", "experiments/quickstart.kdl", "--dot"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success() && !String::from_utf8_lossy(&o.stderr).contains("standard output"), "{o:?}");
}
