//! Checkpoint import and export through the CLI: an official-layout `.pth.tar` written by
//! PyTorch (`tests/fixtures/pth/make_official_step_pth.py`: the official-step fixture's weights
//! with DDP `module.` prefixes, AdamW state and scalar fields) reproduces the official step;
//! bad checkpoints give clear errors; a diverging run stops with an error naming the step.

mod common;
use common::{ijepa, scratch, text};

use std::path::{Path, PathBuf};
use std::process::Output;

const FIXTURE: &str = "tests/fixtures/official-step-tiny.safetensors";
const PTH: &str = "tests/fixtures/pth/official-step-tiny.pth.tar";

fn fails_with(o: &Output, needles: &[&str]) {
    fails_with_code(o, 1, needles);
}

/// `parity`'s exit status where no comparison was made (1 is a step that differs).
fn fails_with_code(o: &Output, code: i32, needles: &[&str]) {
    let t = text(o);
    assert_eq!(o.status.code(), Some(code), "{t}");
    for n in needles {
        assert!(t.contains(n), "expected {n:?} in: {t}");
    }
    assert!(!t.contains("panicked"), "{t}");
}

#[test]
fn official_pth_tar_reproduces_the_official_step() {
    let o = ijepa(&["parity", FIXTURE, "--weights", PTH]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).trim_end().ends_with("PASS"), "{}", text(&o));
}

#[test]
fn import_then_parity_and_hf_export() {
    let d = scratch("import");
    // (into a folder not made yet: made, as `export` makes its own)
    let out = d.join("new").join("tiny.safetensors");
    let o = ijepa(&["import-checkpoint", PTH, "--out", out.to_str().unwrap()]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("epoch=1") && t.contains("ViT 96x2x"), "{t}");
    // the converted file holds the three models under our names and still reproduces the step
    let o = ijepa(&["parity", FIXTURE, "--weights", out.to_str().unwrap()]);
    assert!(o.status.success() && text(&o).trim_end().ends_with("PASS"), "{}", text(&o));
    // the default output never replaces a file the user did not name; --out does
    let pth = d.join("model.pth.tar");
    std::fs::copy(PTH, &pth).unwrap();
    let theirs = d.join("model.safetensors");
    std::fs::copy("tests/fixtures/mae-step-tiny.safetensors", &theirs).unwrap();
    fails_with(&ijepa(&["import-checkpoint", pth.to_str().unwrap()]), &["model.safetensors exists", "--out"]);
    assert_eq!(std::fs::read(&theirs).unwrap(), std::fs::read("tests/fixtures/mae-step-tiny.safetensors").unwrap());
    std::fs::remove_file(&theirs).unwrap();
    let o = ijepa(&["import-checkpoint", pth.to_str().unwrap()]);
    assert!(o.status.success() && theirs.is_file(), "{}", text(&o));
    fails_with(&ijepa(&["import-checkpoint", pth.to_str().unwrap()]), &["model.safetensors exists"]);
    let o = ijepa(&["import-checkpoint", pth.to_str().unwrap(), "--out", theirs.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));

    let hf = d.join("hf");
    let o = ijepa(&["export", out.to_str().unwrap(), "--format", "hf", "--heads", "3", "--out", hf.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(hf.join("config.json")).unwrap()).unwrap();
    assert_eq!((cfg["model_type"].as_str(), cfg["hidden_size"].as_u64(), cfg["num_hidden_layers"].as_u64()), (Some("ijepa"), Some(96), Some(2)));
    let st = std::fs::read(hf.join("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(st[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&st[8..8 + n]).unwrap();
    for key in [
        "embeddings.position_embeddings",
        "embeddings.patch_embeddings.projection.weight",
        "encoder.layer.1.attention.attention.query.weight",
        "encoder.layer.1.attention.attention.value.bias",
        "encoder.layer.0.attention.output.dense.weight",
        "encoder.layer.0.intermediate.dense.weight",
        "encoder.layer.0.output.dense.bias",
        "encoder.layer.0.layernorm_before.weight",
        "layernorm.bias",
    ] {
        assert!(header.get(key).is_some(), "HF export lacks {key}");
    }
    assert_eq!(header["encoder.layer.1.attention.attention.query.weight"]["shape"], serde_json::json!([96, 96]));
    // again over that export: its own three files are replaced
    let o = ijepa(&["export", out.to_str().unwrap(), "--format", "hf", "--heads", "3", "--out", hf.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    // a folder holding anything else is refused, and left as it was: the user's files, or
    // another tool's config.json (both were replaced or written beside without a word)
    let busy = d.join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), "mine").unwrap();
    fails_with(&ijepa(&["export", out.to_str().unwrap(), "--format", "hf", "--heads", "3", "--out", busy.to_str().unwrap()]), &["busy", "`notes.txt`", "choose another --out"]);
    assert_eq!(std::fs::read_dir(&busy).unwrap().count(), 1);
    let theirs = d.join("theirs");
    std::fs::create_dir_all(&theirs).unwrap();
    std::fs::write(theirs.join("config.json"), r#"{"x": 1}"#).unwrap();
    fails_with(&ijepa(&["export", out.to_str().unwrap(), "--format", "hf", "--heads", "3", "--out", theirs.to_str().unwrap()]), &["config.json (not a transformers config"]);
    assert_eq!(std::fs::read_to_string(theirs.join("config.json")).unwrap(), r#"{"x": 1}"#);
    // weights an export did not write, beside a transformers config: a training checkpoint
    // copied in as `model.safetensors`, or a model transformers saved (no `data_sha256`),
    // were replaced without a word
    for (name, weights) in [("copied", std::fs::read(&out).unwrap()), ("saved", {
        let mut st = std::fs::read(hf.join("model.safetensors")).unwrap();
        let n = u64::from_le_bytes(st[..8].try_into().unwrap()) as usize;
        let mut header: serde_json::Value = serde_json::from_slice(&st[8..8 + n]).unwrap();
        header["__metadata__"] = serde_json::json!({"format": "pt"});
        let mut h = header.to_string().into_bytes();
        h.resize(n, b' ');
        st[8..8 + n].copy_from_slice(&h);
        st
    })] {
        let folder = d.join(name);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::copy(hf.join("config.json"), folder.join("config.json")).unwrap();
        std::fs::write(folder.join("model.safetensors"), &weights).unwrap();
        fails_with(&ijepa(&["export", out.to_str().unwrap(), "--format", "hf", "--heads", "3", "--out", folder.to_str().unwrap()]), &["model.safetensors (not weights an export wrote"]);
        assert_eq!(std::fs::read(folder.join("model.safetensors")).unwrap(), weights, "{name}");
    }
    // a user's image processor config alone, or an export's own files without the rest, were
    // replaced; a link to an export's weights was called foreign weights
    let processor = d.join("processor");
    std::fs::create_dir_all(&processor).unwrap();
    std::fs::copy(hf.join("preprocessor_config.json"), processor.join("preprocessor_config.json")).unwrap();
    fails_with(&ijepa(&["export", out.to_str().unwrap(), "--format", "hf", "--heads", "3", "--out", processor.to_str().unwrap()]), &["preprocessor_config.json (without the model.safetensors, config.json an export writes beside it)"]);
    std::fs::write(processor.join("preprocessor_config.json"), "mine").unwrap();
    fails_with(&ijepa(&["export", out.to_str().unwrap(), "--format", "hf", "--heads", "3", "--out", processor.to_str().unwrap()]), &["preprocessor_config.json (not an image processor's config an export wrote)"]);
    assert_eq!(std::fs::read_to_string(processor.join("preprocessor_config.json")).unwrap(), "mine");
    let linked = d.join("linked");
    std::fs::create_dir_all(&linked).unwrap();
    for f in ["config.json", "preprocessor_config.json"] {
        std::fs::copy(hf.join(f), linked.join(f)).unwrap();
    }
    std::os::unix::fs::symlink(hf.join("model.safetensors"), linked.join("model.safetensors")).unwrap();
    fails_with(&ijepa(&["export", out.to_str().unwrap(), "--format", "hf", "--heads", "3", "--out", linked.to_str().unwrap()]), &["model.safetensors (not a regular file)"]);
    // given back to ijepa, the export is named for what it is (it read "unexpected key
    // `embeddings.position_embeddings` beside the module keys")
    fails_with(&ijepa(&["import-checkpoint", hf.join("model.safetensors").to_str().unwrap()]), &["the Hugging Face transformers layout", "--format official"]);
    // the official-names export
    let off = d.join("enc.safetensors");
    let o = ijepa(&["export", PTH, "--format", "official", "--heads", "3", "--out", off.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    // past a file-size limit (`ulimit -f`): an error naming the file, and no temporary file
    // left behind (the signal killed the process without a word, and the file it left made
    // the folder refuse the next export)
    let small = d.join("small");
    std::fs::create_dir_all(&small).unwrap();
    let o = std::process::Command::new("sh")
        .args(["-c", "ulimit -f 1; exec \"$0\" \"$@\"", env!("CARGO_BIN_EXE_ijepa"), "export", PTH, "--format", "official", "--heads", "3"])
        .arg("--out")
        .arg(small.join("enc.safetensors"))
        .output()
        .unwrap();
    assert!(o.status.code() == Some(1) && text(&o).contains("enc.safetensors"), "{:?}: {}", o.status, text(&o));
    assert_eq!(std::fs::read_dir(&small).unwrap().count(), 0, "nothing left in {}", small.display());
    // never over a run's own files: the run folder itself (its config.json) or a file in it
    // (the checkpoint a resume reads); a new file inside one is fine
    let run = d.join("run");
    std::fs::create_dir_all(run.join("checkpoints")).unwrap();
    std::fs::write(run.join("manifest.json"), "{}").unwrap();
    std::fs::copy(&off, run.join("checkpoints/latest.safetensors")).unwrap();
    let latest = std::fs::read(run.join("checkpoints/latest.safetensors")).unwrap();
    let hf_over = ["export", PTH, "--format", "hf", "--heads", "3", "--out", run.to_str().unwrap()];
    let file_over = ["export", PTH, "--format", "official", "--heads", "3", "--out", run.join("checkpoints/latest.safetensors").to_str().unwrap()].map(str::to_string);
    // nor the folder of its checkpoints (an HF export wrote config.json and model.safetensors
    // beside them)
    let hf_in_checkpoints = ["export", PTH, "--format", "hf", "--heads", "3", "--out", run.join("checkpoints").to_str().unwrap()].map(str::to_string);
    // nor through a folder still to be created: the writer creates `nosuch`, and `..` out of it
    // is the run folder (an HF export replaced its config.json; `checkpoints/nosuch/..` led to
    // the checkpoint a resume reads)
    let hf_through_new = ["export", PTH, "--format", "hf", "--heads", "3", "--out", &format!("{}/nosuch/..", run.display())].map(str::to_string);
    let file_through_new = ["import-checkpoint", PTH, "--out", &format!("{}/checkpoints/nosuch/../latest.safetensors", run.display())].map(str::to_string);
    for args in [hf_over.map(str::to_string).to_vec(), file_over.to_vec(), hf_in_checkpoints.to_vec(), hf_through_new.to_vec(), file_through_new.to_vec()] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails_with(&ijepa(&args), &["is a pretraining's run folder", "choose another path"]);
    }
    assert!(!run.join("config.json").exists() && !run.join("checkpoints/config.json").exists() && std::fs::read(run.join("checkpoints/latest.safetensors")).unwrap() == latest);
    // a file of the user's inside it is written, and written again
    for _ in 0..2 {
        let o = ijepa(&["export", PTH, "--format", "official", "--heads", "3", "--out", run.join("checkpoints/encoder.safetensors").to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o));
    }
}

/// A valid torch.save file (torch 2.11; an official-layout I-JEPA checkpoint of a 64x2 ViT,
/// no `module.` prefixes) on which the zip crate's search for where the archive starts failed
/// ("Invalid Central Directory header"; 1 in 80 re-saves of one checkpoint, by where its
/// records fell): the archive is read from byte 0, where torch.save starts it.
#[test]
fn a_torch_save_file_whose_archive_start_is_not_searched_for() {
    let d = scratch("zip-offset");
    let out = d.join("o.safetensors");
    let o = ijepa(&["import-checkpoint", "tests/fixtures/pth/zip-offset-search.pth.tar", "--out", out.to_str().unwrap()]);
    let t = text(&o);
    assert!(o.status.success() && t.contains("epoch=1") && t.contains("ViT 64x2x"), "{t}");
}

#[test]
fn bad_checkpoints_are_clear_errors() {
    let d = scratch("bad");
    // truncated official checkpoint
    let bytes = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(PTH)).unwrap();
    let cut = d.join("cut.pth.tar");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    fails_with(&ijepa(&["import-checkpoint", cut.to_str().unwrap()]), &["cut.pth.tar"]);
    // a pickle that would run a shell command
    fails_with(&ijepa(&["import-checkpoint", "tests/fixtures/pth/evil_os_system.pth"]), &["forbidden pickle global", "system"]);
    // not a checkpoint at all
    let junk = d.join("junk.bin");
    std::fs::write(&junk, b"hello, this is not a checkpoint at all").unwrap();
    fails_with(&ijepa(&["import-checkpoint", junk.to_str().unwrap()]), &["junk.bin", "neither a torch.save zip archive"]);
    // missing file
    fails_with(&ijepa(&["import-checkpoint", "/nonexistent/x.pth.tar"]), &["/nonexistent/x.pth.tar"]);
    // legacy (non-zip) torch.save: says what the file is and how to convert it
    let legacy = d.join("old.pth");
    std::fs::write(&legacy, b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02M\xe9\x03.").unwrap();
    fails_with(&ijepa(&["import-checkpoint", legacy.to_str().unwrap()]), &["old.pth", "legacy (non-zip) torch.save", "torch.save(torch.load(OLD, weights_only=True)"]);
    // any other pickle is no torch.save file: not called one (whose advice, to unpickle it,
    // would run its code)
    let pickle = d.join("evil.pkl");
    std::fs::write(&pickle, b"\x80\x04\x95\x1d\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x04true\x94\x85\x94R\x94.").unwrap();
    let o = ijepa(&["import-checkpoint", pickle.to_str().unwrap()]);
    fails_with(&o, &["evil.pkl", "a bare Python pickle"]);
    assert!(!text(&o).contains("legacy") && !text(&o).contains("torch.load("), "{}", text(&o));
    // weights shaped for no model: the file and the module named (it read "config: predictor
    // width 6 must be a multiple of 4", as if the experiment were at fault)
    let out = d.join("o.safetensors");
    fails_with(
        &ijepa(&["import-checkpoint", "tests/fixtures/pth/official_layout.pth", "--heads", "2", "--out", out.to_str().unwrap()]),
        &["official_layout.pth: its predictor's tensors describe a model that cannot be built: predictor width 6 must be a multiple of 4"],
    );
    // ... but a head count that does not divide the file's width is the argument's fault
    for cmd in [&["import-checkpoint", "tests/fixtures/pth/official_layout.pth"][..], &["export", "tests/fixtures/pth/official_layout.pth", "--format", "official"]] {
        let o = ijepa(&[cmd, &["--heads", "3", "--out", out.to_str().unwrap()]].concat());
        fails_with(&o, &["--heads 3: 3 heads do not divide the width 8 (the width is the file's)"]);
        assert!(!text(&o).contains("tensors describe"), "{}", text(&o));
    }
    // a tensor of no element whose shape libtorch cannot hold: one line naming it (libtorch's
    // error, with its C++ backtrace, called the file no safetensors file)
    let header = br#"{"pos_embed":{"dtype":"F32","shape":[9223372036854775813,0],"data_offsets":[0,0]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    let huge = d.join("huge.safetensors");
    std::fs::write(&huge, bytes).unwrap();
    let o = ijepa(&["import-checkpoint", huge.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    fails_with(&o, &["huge.safetensors", "tensor `pos_embed` has shape [9223372036854775813,0], past what a tensor can hold"]);
    assert!(!text(&o).contains("frame #") && text(&o).lines().count() <= 2, "{}", text(&o));
}

/// An evaluation of a checkpoint from elsewhere (here the official-code fixture) is labelled
/// by its file, not as our pretraining, and claims no pretraining epochs.
#[test]
fn an_imported_checkpoint_is_labelled_by_its_source() {
    let d = scratch("label");
    let f = d.join("ev.kdl");
    std::fs::write(
        &f,
        "experiment \"ev\" {\n    data \"fashion-mnist\" { crop-size 32; limit 512 }\n    encoder width=96 depth=2 heads=3 patch=4\n    predictor depth=2 width=48\n    mask \"multi-block\" { min-keep 4 }\n    eval \"knn\" { k 5; baselines \"random-init\" \"raw-pixels\" }\n}\n",
    )
    .unwrap();
    let runs = d.join("runs");
    let o = ijepa(&["eval", f.to_str().unwrap(), "--checkpoint", PTH, "--runs-dir", runs.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let eval = std::fs::read_dir(runs.join("ev"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("eval-knn-ijepa-"))
        .expect("the checkpoint's evaluation")
        .join("eval.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&eval).unwrap()).unwrap();
    assert_eq!(v["method"], "I-JEPA (official-step-tiny.pth.tar)");
    // (the epochs it says it was trained for: the official `epoch`, saved as epoch + 1)
    assert_eq!(v["pretrain_epochs"], 1, "{v}");
    // the checkpoint is recorded by the evaluation that read it, and by no baseline (the random
    // init and the pixels recorded the file given to `ijepa eval`, which they never read)
    let mut baselines = 0;
    for e in std::fs::read_dir(runs.join("ev")).unwrap() {
        let p = e.unwrap().path().join("eval.json");
        let Ok(t) = std::fs::read_to_string(&p) else { continue };
        let r: serde_json::Value = serde_json::from_str(&t).unwrap();
        let given = r["checkpoint"].as_str().unwrap();
        if r["method"] == "I-JEPA (official-step-tiny.pth.tar)" {
            assert!(given.ends_with("official-step-tiny.pth.tar"), "{r}");
        } else {
            baselines += 1;
            assert_eq!(given, "", "{r}");
        }
    }
    assert!(baselines > 0, "the baselines ran");
    // `ijepa eval` holds its stage folders as `ijepa run` does: a second process there is
    // told who holds it, and writes nothing beside it
    std::fs::remove_file(&eval).unwrap();
    let held = ijepa_engine::run_dir::StageLock::acquire(eval.parent().unwrap()).unwrap();
    let o = ijepa(&["eval", f.to_str().unwrap(), "--checkpoint", PTH, "--runs-dir", runs.to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("in use by another process") && !eval.exists(), "{}", text(&o));
    drop(held);
    let o = ijepa(&["eval", f.to_str().unwrap(), "--checkpoint", PTH, "--runs-dir", runs.to_str().unwrap()]);
    assert!(o.status.success() && eval.exists(), "{}", text(&o));
    // an evaluation that fails before it stores features leaves no empty feature cache
    // (an MAE encoder has a class token this I-JEPA checkpoint lacks)
    let mae = d.join("evm.kdl");
    std::fs::write(
        &mae,
        "experiment \"evm\" {\n    recipe \"mae\"\n    data \"fashion-mnist\" { crop-size 32; limit 512 }\n    encoder width=96 depth=2 heads=3 patch=4\n    decoder depth=1 width=48 heads=3\n    mask \"random\" { ratio 0.75 }\n    eval \"knn\" { k 5 }\n}\n",
    )
    .unwrap();
    let o = ijepa(&["eval", mae.to_str().unwrap(), "--checkpoint", PTH, "--runs-dir", runs.to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("cls_token"), "{}", text(&o));
    assert!(!runs.join("evm/features").exists(), "{:?}", std::fs::read_dir(runs.join("evm")).map(|d| d.map(|e| e.unwrap().file_name()).collect::<Vec<_>>()));
    // its encoder exported under the official names records the recipe that trained it: an
    // experiment of that recipe evaluates it, another's is refused (an MAE export evaluated
    // under a DINO experiment ran without a word and was filed as DINO's)
    let exported = d.join("exported.safetensors");
    let o = ijepa(&["export", PTH, "--format", "official", "--heads", "3", "--out", exported.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let header = std::fs::read(&exported).unwrap();
    let n = u64::from_le_bytes(header[..8].try_into().unwrap()) as usize;
    let meta: serde_json::Value = serde_json::from_slice(&header[8..8 + n]).unwrap();
    assert_eq!(meta["__metadata__"]["recipe"], "ijepa", "{meta}");
    let o = ijepa(&["eval", f.to_str().unwrap(), "--checkpoint", exported.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let dino = d.join("evd.kdl");
    std::fs::write(
        &dino,
        "experiment \"evd\" {\n    recipe \"dino\"\n    data \"fashion-mnist\" { crop-size 32; limit 512 }\n    encoder width=96 depth=2 heads=3 patch=4\n    dino { out-dim 8; hidden-dim 8; bottleneck-dim 4; local-crops 1; local-size 16 }\n    eval \"knn\" { k 5 }\n}\n",
    )
    .unwrap();
    let o = ijepa(&["eval", dino.to_str().unwrap(), "--checkpoint", exported.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("records an encoder trained by ijepa (its metadata), where evd's recipe is dino"), "{}", text(&o));
    // an import keeps what its source said of itself: the export's recipe (an import of an MAE
    // export was evaluated under a DINO experiment and filed as DINO's), and the official
    // checkpoint's epoch (the import's evaluation recorded no epochs)
    let reimported = d.join("reimported.safetensors");
    let o = ijepa(&["import-checkpoint", exported.to_str().unwrap(), "--out", reimported.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let o = ijepa(&["eval", dino.to_str().unwrap(), "--checkpoint", reimported.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("records an encoder trained by ijepa (its metadata), where evd's recipe is dino"), "{}", text(&o));
    let imported = d.join("imported.safetensors");
    let o = ijepa(&["import-checkpoint", PTH, "--out", imported.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let o = ijepa(&["import-checkpoint", imported.to_str().unwrap(), "--out", d.join("again.safetensors").to_str().unwrap()]);
    assert!(o.status.success() && text(&o).contains("epoch=1"), "{}", text(&o));
    let o = ijepa(&["eval", f.to_str().unwrap(), "--checkpoint", imported.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let records: Vec<serde_json::Value> = std::fs::read_dir(runs.join("ev"))
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path().join("eval.json")).ok())
        .map(|t| serde_json::from_str(&t).unwrap())
        .collect();
    let of_import = records.iter().find(|v| v["method"] == "I-JEPA (imported.safetensors)").unwrap_or_else(|| panic!("{records:?}"));
    assert_eq!(of_import["pretrain_epochs"], 1, "{of_import}");
}

/// Writes a safetensors file of the fixture's init weights with one change applied.
fn edited_weights(d: &Path, name: &str, edit: impl Fn(&mut Vec<(String, Vec<usize>, Vec<f32>)>)) -> PathBuf {
    let st = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE)).unwrap();
    let n = u64::from_le_bytes(st[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&st[8..8 + n]).unwrap();
    let data = &st[8 + n..];
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    for (k, v) in header.as_object().unwrap() {
        let Some(rest) = k.strip_prefix("init.") else { continue };
        let shape: Vec<usize> = v["shape"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
        let (a, b) = (v["data_offsets"][0].as_u64().unwrap() as usize, v["data_offsets"][1].as_u64().unwrap() as usize);
        let vals = data[a..b].chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        tensors.push((rest.to_string(), shape, vals));
    }
    edit(&mut tensors);
    // serialise by hand (safetensors layout)
    let mut hdr = serde_json::Map::new();
    let mut blob = Vec::new();
    for (k, shape, vals) in &tensors {
        let a = blob.len();
        for v in vals {
            blob.extend_from_slice(&v.to_le_bytes());
        }
        hdr.insert(k.clone(), serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [a, blob.len()]}));
    }
    let h = serde_json::to_vec(&hdr).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(&blob);
    let p = d.join(name);
    std::fs::write(&p, out).unwrap();
    p
}

/// A fixture path that is no regular file, or whose description is none, is refused at once,
/// saying so: /dev/null was said not to exist, and a FIFO as the description blocked the read.
#[test]
fn a_parity_fixture_that_is_no_regular_file_is_named_so() {
    let d = scratch("parity-fifo");
    fails_with_code(&ijepa(&["parity", "/dev/null"]), 2, &["/dev/null: is not a regular file"]);
    let tensors = d.join("step.safetensors");
    std::fs::copy(FIXTURE, &tensors).unwrap();
    let fifo = std::process::Command::new("mkfifo").arg(d.join("step.json")).status().unwrap();
    assert!(fifo.success());
    let t = std::time::Instant::now();
    fails_with_code(&ijepa(&["parity", tensors.to_str().unwrap()]), 2, &["its description", "is not a regular file"]);
    assert!(t.elapsed().as_secs() < 60);
}

#[test]
fn wrong_shape_missing_and_unexpected_keys_are_named() {
    let d = scratch("keys");
    let ok = edited_weights(&d, "ok.safetensors", |_| {});
    let o = ijepa(&["parity", FIXTURE, "--weights", ok.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let shape = edited_weights(&d, "shape.safetensors", |t| {
        let e = t.iter_mut().find(|e| e.0 == "encoder.norm.weight").unwrap();
        e.1 = vec![48];
        e.2.truncate(48);
    });
    fails_with_code(&ijepa(&["parity", FIXTURE, "--weights", shape.to_str().unwrap()]), 2, &["norm.weight", "shape"]);
    let missing = edited_weights(&d, "missing.safetensors", |t| t.retain(|e| e.0 != "predictor.mask_token"));
    fails_with_code(&ijepa(&["parity", FIXTURE, "--weights", missing.to_str().unwrap()]), 2, &["missing key `mask_token`"]);
    let extra = edited_weights(&d, "extra.safetensors", |t| t.push(("encoder.cls_token".into(), vec![1], vec![0.0])));
    fails_with_code(&ijepa(&["parity", FIXTURE, "--weights", extra.to_str().unwrap()]), 2, &["unexpected key `cls_token`"]);
    // import names the module whose key does not fit (the encoder's here), and so does export
    // (it said "key `norm.weight`" of a file of several encoders)
    fails_with(&ijepa(&["import-checkpoint", shape.to_str().unwrap(), "--out", d.join("i.safetensors").to_str().unwrap()]), &["its encoder: key `norm.weight`"]);
    fails_with(
        &ijepa(&["export", shape.to_str().unwrap(), "--encoder", "context", "--heads", "3", "--out", d.join("e.safetensors").to_str().unwrap()]),
        &["its context encoder: key `norm.weight` has shape [48]", "(the model's shape is read from its other tensors, which disagree with this one)"],
    );
    // ... also where the model's shape is read (it said "missing key `pos_embed`" of no module),
    // and a module that disagrees with that shape says where the shape came from
    let no_pos = edited_weights(&d, "no-pos.safetensors", |t| t.retain(|e| e.0 != "encoder.pos_embed"));
    fails_with(&ijepa(&["import-checkpoint", no_pos.to_str().unwrap(), "--out", d.join("i.safetensors").to_str().unwrap()]), &["its encoder: missing key `pos_embed`"]);
    // a stray key of the target encoder (the module the shape is read from) is its own fault:
    // it was blamed on the encoder, "missing" the block the stray key made up
    let stray = edited_weights(&d, "stray.safetensors", |t| {
        let target: Vec<_> = t.iter().filter(|e| e.0.starts_with("encoder.")).map(|e| (e.0.replacen("encoder.", "target_encoder.", 1), e.1.clone(), e.2.clone())).collect();
        let norm = target.iter().find(|e| e.0 == "target_encoder.blocks.0.norm1.weight").unwrap().clone();
        t.extend(target);
        t.push(("target_encoder.blocks.2.norm1.weight".into(), norm.1, norm.2));
    });
    let o = ijepa(&["import-checkpoint", stray.to_str().unwrap(), "--out", d.join("i.safetensors").to_str().unwrap()]);
    fails_with(&o, &["its target_encoder: missing key `blocks.2."]);
    assert!(!text(&o).contains("its encoder"), "{}", text(&o));
    let pred = edited_weights(&d, "pred.safetensors", |t| {
        let e = t.iter_mut().find(|e| e.0 == "predictor.predictor_pos_embed").unwrap();
        let per = e.2.len() / e.1[1];
        e.1[1] += 1;
        e.2.extend(vec![0.0; per]);
    });
    fails_with(
        &ijepa(&["import-checkpoint", pred.to_str().unwrap(), "--out", d.join("i.safetensors").to_str().unwrap()]),
        &["its predictor: key `predictor_pos_embed` has shape", "(the model's shape is read from its encoder)"],
    );
    // a 0-d tensor where the shape is read (it panicked: "index out of bounds") is an error
    // naming the key
    for key in ["encoder.blocks.0.mlp.fc1.weight", "predictor.predictor_embed.weight"] {
        let scalar = edited_weights(&d, "scalar.safetensors", |t| {
            let e = t.iter_mut().find(|e| e.0 == key).unwrap();
            e.1 = vec![];
            e.2.truncate(1);
        });
        let field = key.split_once('.').unwrap().1;
        for args in [
            vec!["import-checkpoint", scalar.to_str().unwrap(), "--out", d.join("i.safetensors").to_str().unwrap()],
            vec!["export", scalar.to_str().unwrap(), "--format", "official", "--encoder", "context", "--out", d.join("e.safetensors").to_str().unwrap()],
        ] {
            let o = ijepa(&args);
            if key.starts_with("predictor") && args[0] == "export" {
                // the encoder alone is exported: the predictor is not read
                continue;
            }
            assert_eq!(o.status.code(), Some(1), "{:?}: {}", args, text(&o));
            assert!(text(&o).contains(&format!("`{field}` has shape []")), "{}", text(&o));
        }
    }
}

/// Our own run whose predictor's heads do not divide by the encoder's (a preset width, its
/// head count implied: ViT 192 with 3 heads, predictor 64 wide with 4) imports; it was
/// refused ("3 heads do not divide the width 64"). And no export or import writes a
/// checkpoint's name into a run's checkpoints folder reached through a symbolic link (to
/// scratch space, as clusters do), by the link or by its target.
#[test]
fn our_checkpoints_import_and_a_linked_checkpoints_folder_is_guarded() {
    let d = scratch("own-import");
    let f = d.join("p.kdl");
    std::fs::write(
        &f,
        "experiment \"p\" {\n    data \"fashion-mnist\" { crop-size 28; batch-size 16; workers 1; limit 64 }\n    encoder width=192 depth=1 heads=3 patch=4\n    predictor depth=1 width=64 heads=4\n    mask \"multi-block\" { min-keep 4 }\n    epochs 1\n    precision \"fp32\"\n    device \"cpu\"\n}\n",
    )
    .unwrap();
    let runs = d.join("runs");
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let run = std::fs::read_dir(runs.join("p")).unwrap().map(|e| e.unwrap().path()).find(|p| p.join("manifest.json").is_file()).unwrap();
    let fin = run.join("checkpoints/final.safetensors");
    let o = ijepa(&["import-checkpoint", fin.to_str().unwrap(), "--out", d.join("i.safetensors").to_str().unwrap()]);
    assert!(o.status.success() && text(&o).contains("ViT 192x1x3"), "{}", text(&o));
    // the checkpoints folder moved to scratch space, a link in its place
    let scratch_dir = d.join("scratch");
    std::fs::rename(run.join("checkpoints"), &scratch_dir).unwrap();
    std::os::unix::fs::symlink(&scratch_dir, run.join("checkpoints")).unwrap();
    let latest = std::fs::read(scratch_dir.join("latest.safetensors")).unwrap();
    for out in [run.join("checkpoints/epoch-0001.safetensors"), scratch_dir.join("latest.safetensors"), scratch_dir.join("epoch-0002.safetensors")] {
        let o = ijepa(&["export", fin.to_str().unwrap(), "--format", "official", "--out", out.to_str().unwrap()]);
        fails_with(&o, &["choose another path"]);
        let o = ijepa(&["import-checkpoint", fin.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        fails_with(&o, &["choose another path"]);
    }
    assert_eq!(std::fs::read(scratch_dir.join("latest.safetensors")).unwrap(), latest);
    assert!(!scratch_dir.join("epoch-0002.safetensors").exists());
    // a file of another name there is the user's
    let o = ijepa(&["export", fin.to_str().unwrap(), "--format", "official", "--out", scratch_dir.join("encoder.safetensors").to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    // a folder of `--out` that does not exist yet is made (it said "the folder ... does not exist")
    let nested = d.join("exports/new/encoder.safetensors");
    let o = ijepa(&["export", fin.to_str().unwrap(), "--format", "official", "--out", nested.to_str().unwrap()]);
    assert!(o.status.success() && nested.is_file(), "{}", text(&o));
}

#[test]
fn a_diverging_run_stops_with_the_step_and_keeps_the_last_good_checkpoint() {
    let d = scratch("nan");
    let f = d.join("nan.kdl");
    std::fs::write(
        &f,
        r#"experiment "nan" {
    data "fashion-mnist" { crop-size 32; batch-size 16; workers 1; limit 256 }
    encoder width=32 depth=1 heads=2 patch=4
    predictor depth=1 width=16 heads=2
    mask "multi-block" { min-keep 4 }
    optimizer "adamw" { lr start=1e30 peak=1e30 final=1e30 warmup-epochs=0; }
    epochs 3
    precision "fp32"
    device "cpu"
    checkpoint every-steps=1
}
"#,
    )
    .unwrap();
    let runs = d.join("runs");
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    fails_with(&o, &["training diverged", "at step", "latest.safetensors"]);
    let run = common::pretrain_in(&runs.join("nan")).expect("a pretraining folder");
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["status"], "failed");
    assert!(m["error"].as_str().unwrap().contains("at step"));
    assert!(run.join("checkpoints/latest.safetensors").exists());
}

/// Weights gone non-finite at an epoch's last step, found by the epoch's monitor (its features,
/// before any check of the weights): the run diverged at that step, the checkpoint before it is
/// kept, and a rerun skips it. (The monitor's RankMe failed inside libtorch: a failed run, which
/// every rerun trained and failed again, and a sweep's later points never ran.)
#[test]
fn weights_diverged_at_an_epochs_end_are_a_divergence_the_monitor_names() {
    let d = scratch("nan-monitor");
    let f = d.join("nanmon.kdl");
    std::fs::write(
        &f,
        r#"experiment "nanmon" {
    data "fashion-mnist" { crop-size 28; batch-size 16; workers 1; limit 40 }
    encoder width=32 depth=1 heads=2 patch=4
    predictor depth=1 width=16 heads=2
    mask "multi-block" { min-keep 3 }
    optimizer "adamw" { lr start=1e300 peak=1e300 final=1e300 warmup-epochs=0; }
    monitor every=1 images=24 k=5
    epochs 3
    precision "fp32"
    device "cpu"
}
"#,
    )
    .unwrap();
    let runs = d.join("runs");
    let o = ijepa(&["run", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    fails_with(&o, &["features of the monitor's held-out images are not finite", "at step 1 (epoch 1): training diverged"]);
    assert!(!text(&o).contains("libtorch"), "{}", text(&o));
    let run = common::pretrain_in(&runs.join("nanmon")).expect("a pretraining folder");
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["diverged_at"], 1, "{m}");
    let o = ijepa(&["plan", f.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()]);
    assert!(text(&o).contains("diverged at step 1"), "{}", text(&o));
}

/// The official MAE and DINO release layouts import: MAE's `{"model": ...}` with its decoder
/// beside the encoder (`mae_visualize_*`; its decoder keys were "unexpected"), MAE's training
/// checkpoint and DINO's `checkpoint.pth` (`student` / `teacher` / `dino_loss`; "neither ... nor
/// a plain state dict"; both with the optimizer, the scaler and the `args` Namespace that was
/// "forbidden pickle global `argparse.Namespace`"), their modules under our names; a flat dict
/// reads the same from either file format. Fixtures: tests/fixtures/pth/make_mae_dino_release_pth.py.
#[test]
fn official_mae_and_dino_layouts_import() {
    let d = scratch("release-layouts");
    let keys = |p: &Path| -> std::collections::BTreeMap<String, tch::Tensor> { tch::Tensor::read_safetensors(p).unwrap().into_iter().collect() };
    let mae = d.join("mae.safetensors");
    let o = ijepa(&["import-checkpoint", "tests/fixtures/pth/mae-visualize-tiny.pth", "--out", mae.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let k = keys(&mae);
    assert!(k.contains_key("encoder.blocks.0.attn.qkv.weight") && k.contains_key("encoder.cls_token"), "{:?}", k.keys());
    assert!(k.contains_key("decoder.mask_token") && k.contains_key("decoder.decoder_pred.weight") && !k.contains_key("encoder.mask_token"), "{:?}", k.keys());
    // the same tensors as one flat dict read the same from a torch.save file or a safetensors
    // file: under our module prefixes (the torch file read as one encoder: "missing key
    // `pos_embed`"), or in the official layout (the safetensors file: "its encoder: unexpected
    // key `decoder_pos_embed`")
    let flat_pth = d.join("flat-pth.safetensors");
    let o = ijepa(&["import-checkpoint", "tests/fixtures/pth/mae-flat-prefixed.pth", "--out", flat_pth.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let official: Vec<(String, tch::Tensor)> = k.iter().map(|(n, t)| (n.split_once('.').unwrap().1.to_string(), t.shallow_clone())).collect();
    let official_st = d.join("official-layout.safetensors");
    tch::Tensor::write_safetensors(&official, &official_st).unwrap();
    let flat_st = d.join("flat-st.safetensors");
    let o = ijepa(&["import-checkpoint", official_st.to_str().unwrap(), "--out", flat_st.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    for read in [keys(&flat_pth), keys(&flat_st)] {
        assert_eq!(read.keys().collect::<Vec<_>>(), k.keys().collect::<Vec<_>>());
        assert!(read.iter().all(|(n, t)| t.equal(&k[n])));
    }
    // MAE has one encoder: no context encoder to export (it was labelled one, the same bytes)
    let ctx = d.join("mae-context.safetensors");
    fails_with(&ijepa(&["export", mae.to_str().unwrap(), "--format", "official", "--encoder", "context", "--out", ctx.to_str().unwrap()]), &["no context encoder", "--encoder target"]);
    assert!(!ctx.exists());
    // the training checkpoint holds the same model
    let mae_train = d.join("mae-train.safetensors");
    let o = ijepa(&["import-checkpoint", "tests/fixtures/pth/mae-checkpoint-tiny.pth", "--out", mae_train.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("epoch=39 args.model=mae_vit_tiny_patch4 (fixture) args.norm_pix_loss=false"), "{}", text(&o));
    // its `args` say the loss's pixel normalisation, which an export's config.json records (its
    // decoder's heads, in no tensor and no argument of a model not the official ones, it does not)
    let hf = d.join("mae-train-hf");
    let o = ijepa(&["export", "tests/fixtures/pth/mae-checkpoint-tiny.pth", "--format", "hf", "--heads", "2", "--out", hf.to_str().unwrap()]);
    assert!(o.status.success() && text(&o).contains("the MAE decoder's attention heads are in no tensor") && text(&o).contains("(16 heads)"), "{}", text(&o));
    let cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(hf.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["norm_pix_loss"], false);
    // (and so does an export of its import: the import keeps what the checkpoint said)
    let o = ijepa(&["import-checkpoint", mae_train.to_str().unwrap(), "--out", d.join("mae-train-again.safetensors").to_str().unwrap()]);
    assert!(text(&o).contains("epoch=39 args.model=mae_vit_tiny_patch4 (fixture) args.norm_pix_loss=false"), "{}", text(&o));
    let hf = d.join("mae-import-hf");
    let o = ijepa(&["export", mae_train.to_str().unwrap(), "--format", "hf", "--heads", "2", "--out", hf.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(hf.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["norm_pix_loss"], false);
    let k2 = keys(&mae_train);
    assert_eq!(k.keys().collect::<Vec<_>>(), k2.keys().collect::<Vec<_>>());
    for (n, t) in &k {
        assert!(t.equal(&k2[n]), "{n}");
    }
    let dino = d.join("dino.safetensors");
    let o = ijepa(&["import-checkpoint", "tests/fixtures/pth/dino-checkpoint-tiny.pth", "--out", dino.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("epoch=1 args.arch=vit_tiny (fixture)"), "{}", text(&o));
    let k = keys(&dino);
    for n in ["student.backbone.pos_embed", "student.head.last_layer.weight_v", "teacher.backbone.cls_token", "teacher.head.mlp.0.weight", "dino_loss.center"] {
        assert!(k.contains_key(n), "{n} missing: {:?}", k.keys());
    }
    // the teacher's backbone is what evaluations and `export` read
    let out = d.join("teacher.safetensors");
    let o = ijepa(&["export", dino.to_str().unwrap(), "--format", "official", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    for (n, t) in keys(&out) {
        assert!(t.equal(&k[&format!("teacher.backbone.{n}")]), "{n}");
    }
}
