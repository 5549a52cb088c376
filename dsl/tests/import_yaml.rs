//! `ijepa_dsl::import_yaml`: the four official I-JEPA YAML configs (copied verbatim into
//! `tests/fixtures/official-configs/`) import to KDL that parses, carries the YAML's values
//! exactly, and equals the presets shipped in `experiments/` (as text and as parsed
//! `Experiment`s). Plus the errors: unknown keys, values we cannot honour, malformed YAML.
//!
//! Regenerate the presets with `UPDATE_SNAPSHOTS=1 cargo test -p ijepa-dsl --test import_yaml`
//! and review the diff.

use std::fs;
use std::path::{Path, PathBuf};

use ijepa_dsl::config::{DataSource, DatasetKind, Experiment, Launcher, Precision};
use ijepa_dsl::import_yaml::{default_name, yaml_to_kdl, yaml_to_kdl_at, ImportError};
use yaml_rust2::{Yaml, YamlLoader};

/// (official YAML stem, shipped preset file, experiment name).
const CONFIGS: &[(&str, &str, &str)] = &[
    ("in1k_vith14_ep300", "in1k_vith14_ep300.kdl", "in1k-vith14-ep300"),
    ("in1k_vith16-448_ep300", "in1k_vith16-448_ep300.kdl", "in1k-vith16-448-ep300"),
    ("in22k_vith14_ep66", "in22k_vith14_ep66.kdl", "in22k-vith14-ep66"),
    ("in22k_vitg16_ep44", "vitg16_in22k.kdl", "vitg16-in22k"),
];

fn fixture_path(stem: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/official-configs")
        .join(format!("{stem}.yaml"))
}

fn fixture(stem: &str) -> String {
    fs::read_to_string(fixture_path(stem)).expect("fixture is readable")
}

fn preset_path(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments").join(file)
}

fn import(stem: &str, name: &str) -> String {
    yaml_to_kdl(&fixture(stem), &format!("{stem}.yaml"), name)
        .unwrap_or_else(|e| panic!("{stem}.yaml does not import: {e}"))
}

fn parse(file: &str, src: &str) -> Experiment {
    ijepa_dsl::parse_str(file, src)
        .unwrap_or_else(|d| panic!("{file} does not parse:\n{}\n--- text\n{src}", d.render_plain()))
}

/// The YAML read independently of the importer (yaml-rust2's own loader).
fn yaml(stem: &str) -> Yaml {
    YamlLoader::load_from_str(&fixture(stem)).expect("valid YAML").remove(0)
}

fn f(y: &Yaml) -> f64 {
    match y {
        Yaml::Real(s) => s.parse().expect("a float"),
        Yaml::Integer(i) => *i as f64,
        other => panic!("not a number: {other:?}"),
    }
}

fn u(y: &Yaml) -> usize {
    y.as_i64().and_then(|i| usize::try_from(i).ok()).expect("a non-negative integer")
}

fn pair(y: &Yaml) -> (f64, f64) {
    let v = y.as_vec().expect("a list");
    assert_eq!(v.len(), 2);
    (f(&v[0]), f(&v[1]))
}

#[test]
fn official_configs_import_to_the_shipped_presets() {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v != "0");
    let mut failures = Vec::new();
    for &(stem, file, name) in CONFIGS {
        let kdl = import(stem, name);
        let imported = parse(&format!("{stem} (imported)"), &kdl);
        let path = preset_path(file);
        if update {
            fs::write(&path, &kdl).expect("preset is writable");
        }
        let shipped_text = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_SNAPSHOTS=1)", path.display()));
        let shipped = parse(file, &shipped_text);
        if imported != shipped {
            failures.push(format!(
                "{file}: parses to a different experiment than {stem}.yaml imports to\n\
                 imported: {imported:#?}\nshipped: {shipped:#?}"
            ));
        } else if shipped_text != kdl {
            failures.push(format!(
                "{file}: text differs from the importer's output for {stem}.yaml (run with \
                 UPDATE_SNAPSHOTS=1 and review)\n--- importer\n{kdl}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn presets_carry_the_yaml_values_exactly() {
    for &(stem, file, name) in CONFIGS {
        let y = yaml(stem);
        let exp = parse(file, &fs::read_to_string(preset_path(file)).expect("preset exists"));
        let (data, mask, meta, opt) = (&y["data"], &y["mask"], &y["meta"], &y["optimization"]);

        assert_eq!(exp.name, name);
        assert_eq!(exp.recipe, "ijepa");
        assert_eq!(exp.seed, 0, "{stem}: official _GLOBAL_SEED");
        // data
        assert_eq!(exp.data.dataset, DatasetKind::ImageFolder);
        let root = match &exp.data.source {
            DataSource::Path(p) => p.to_string_lossy().into_owned(),
            DataSource::Embedded => panic!("{stem}: no root"),
        };
        let expected_root = format!(
            "{}/{}train/",
            data["root_path"].as_str().expect("root_path"),
            data["image_folder"].as_str().expect("image_folder")
        );
        assert_eq!(root, expected_root, "{stem}: root_path/image_folder/train/");
        assert_eq!(exp.data.crop_size, u(&data["crop_size"]), "{stem}: crop_size");
        assert_eq!(exp.data.crop_scale, pair(&data["crop_scale"]), "{stem}: crop_scale");
        assert_eq!(exp.data.batch_size, u(&data["batch_size"]), "{stem}: batch_size");
        assert_eq!(exp.data.workers, u(&data["num_workers"]), "{stem}: num_workers");
        let flag = |k: &str| data[k].as_bool().expect("a bool");
        assert_eq!(exp.data.hflip, if flag("use_horizontal_flip") { 0.5 } else { 0.0 });
        assert_eq!(exp.data.blur, if flag("use_gaussian_blur") { 0.5 } else { 0.0 });
        assert_eq!(exp.data.color_jitter.is_some(), flag("use_color_distortion"));
        // model
        let preset = meta["model_name"].as_str().expect("model_name").replace('_', "-");
        assert_eq!(exp.encoder.preset.as_deref(), Some(preset.as_str()), "{stem}: model_name");
        assert_eq!(exp.encoder.patch_size, u(&mask["patch_size"]), "{stem}: mask.patch_size");
        assert_eq!(exp.predictor.depth, u(&meta["pred_depth"]), "{stem}: pred_depth");
        assert_eq!(exp.predictor.embed_dim, u(&meta["pred_emb_dim"]), "{stem}: pred_emb_dim");
        assert_eq!(exp.predictor.num_heads, None, "{stem}: predictor heads = encoder heads");
        let bf16 = meta["use_bfloat16"].as_bool().expect("a bool");
        assert_eq!(exp.precision, if bf16 { Precision::Bf16 } else { Precision::Fp32 });
        // mask
        assert_eq!(exp.mask.n_targets, u(&mask["num_pred_masks"]), "{stem}: num_pred_masks");
        assert_eq!(exp.mask.n_context, u(&mask["num_enc_masks"]), "{stem}: num_enc_masks");
        assert_eq!(exp.mask.target_scale, pair(&mask["pred_mask_scale"]), "{stem}");
        assert_eq!(exp.mask.target_aspect, pair(&mask["aspect_ratio"]), "{stem}");
        assert_eq!(exp.mask.context_scale, pair(&mask["enc_mask_scale"]), "{stem}");
        assert_eq!(exp.mask.context_aspect, (1.0, 1.0));
        assert_eq!(exp.mask.min_keep, u(&mask["min_keep"]), "{stem}: min_keep");
        assert_eq!(exp.mask.allow_overlap, mask["allow_overlap"].as_bool().expect("a bool"));
        // optimisation: bit-identical floats
        let lr = &exp.optimizer.lr;
        assert_eq!(lr.start, f(&opt["start_lr"]), "{stem}: start_lr");
        assert_eq!(lr.peak, f(&opt["lr"]), "{stem}: lr");
        assert_eq!(lr.final_, f(&opt["final_lr"]), "{stem}: final_lr");
        assert_eq!(lr.final_, 1.0e-06);
        assert_eq!(lr.warmup_epochs, f(&opt["warmup"]), "{stem}: warmup");
        let wd = &exp.optimizer.weight_decay;
        assert_eq!(wd.start, f(&opt["weight_decay"]), "{stem}: weight_decay");
        assert_eq!(wd.final_, f(&opt["final_weight_decay"]), "{stem}: final_weight_decay");
        assert_eq!((exp.ema.start, exp.ema.final_), pair(&opt["ema"]), "{stem}: ema");
        assert_eq!(exp.epochs, u(&opt["epochs"]), "{stem}: epochs");
        assert_eq!(exp.ipe_scale, f(&opt["ipe_scale"]), "{stem}: ipe_scale");
        assert_eq!(exp.checkpoint.keep_every, 50, "{stem}: official checkpoint_freq");
        // every official config trains with a global batch of 2048 (its logging folder's bs.2048)
        let d = &exp.distributed;
        assert_eq!(d.world_size() * exp.data.batch_size, 2048, "{stem}: global batch");
        assert_eq!((d.procs_per_node, d.launcher), (8, Launcher::Slurm), "{stem}");
    }
}

#[test]
fn derived_world_sizes() {
    let expect = [
        ("in1k_vith14_ep300", 2, 128),
        ("in1k_vith16-448_ep300", 16, 16),
        ("in22k_vith14_ep66", 8, 32),
        ("in22k_vitg16_ep44", 16, 16),
    ];
    for (stem, nodes, batch) in expect {
        let kdl = import(stem, "x");
        assert!(kdl.contains(&format!("        nodes {nodes}\n")), "{stem}:\n{kdl}");
        assert!(kdl.contains("        gpus-per-node 8\n"), "{stem}");
        assert!(kdl.contains(&format!("batch-size {batch}")), "{stem}");
        assert!(kdl.contains("2048 images"), "{stem}: the comment explains the derivation");
    }
}

#[test]
fn output_is_commented_and_fits_in_100_columns() {
    for &(stem, _, name) in CONFIGS {
        let kdl = import(stem, name);
        for line in kdl.lines() {
            // a path is one unbreakable string: it gets a line of its own
            let path_line = line.trim_start().starts_with("root=\"");
            assert!(line.chars().count() <= 100 || path_line, "{stem}: line too long: {line}");
            assert_eq!(line, line.trim_end(), "{stem}: trailing space: {line:?}");
        }
        for key in [
            "pin_mem",
            "logging.folder",
            "logging.write_tag",
            "meta.copy_data",
            "meta.load_checkpoint",
            "meta.read_checkpoint",
        ] {
            assert!(kdl.contains(key), "{stem}: dropped key {key} is not mentioned");
        }
        assert!(kdl.contains("$replace_this_with_absolute_path_to_your_datasets_directory"));
        assert!(kdl.contains("EDIT root="), "{stem}: the placeholder is pointed out");
        assert!(kdl.contains("ijepa slurm experiments/"), "{stem}: how to run");
        assert!(kdl.contains("Table"), "{stem}: which paper table");
    }
    // the IN-22K YAMLs' own header note is carried over
    assert!(import("in22k_vith14_ep66", "x")
        .contains("ImageNet-22K (IN22k) dataloader is not implemented"));
}

// ------------------------------------------------------------------------------------------
// Variants of a config
// ------------------------------------------------------------------------------------------

fn base() -> String {
    fixture("in1k_vith14_ep300")
}

fn edit(from: &str, to: &str) -> String {
    let src = base();
    assert!(src.contains(from), "fixture lacks {from:?}");
    src.replacen(from, to, 1)
}

fn err(yaml: &str) -> ImportError {
    match yaml_to_kdl(yaml, "variant.yaml", "variant") {
        Ok(kdl) => panic!("imported without error:\n{kdl}"),
        Err(e) => e,
    }
}

fn ok(yaml: &str) -> (String, Experiment) {
    let kdl = yaml_to_kdl(yaml, "variant.yaml", "variant").unwrap_or_else(|e| panic!("{e}"));
    let exp = parse("variant.kdl", &kdl);
    (kdl, exp)
}

#[test]
fn unknown_key_is_an_error_naming_it() {
    let e = err(&edit("  batch_size: 128\n", "  batch_size: 128\n  batchsize: 64\n"));
    assert_eq!(
        e,
        ImportError::UnknownKey {
            key: "data.batchsize".into(),
            line: 3,
            suggestion: Some("data.batch_size".into())
        }
    );
    let msg = e.to_string();
    assert!(msg.contains("`data.batchsize`") && msg.contains("line 3"), "{msg}");
    assert!(msg.contains("did you mean `data.batch_size`"), "{msg}");

    // a key in the wrong section, and an unknown section
    let e = err(&edit("  min_keep: 10\n", "  min_keep: 10\n  crop_size: 224\n"));
    assert!(
        matches!(&e, ImportError::UnknownKey { key, suggestion: Some(s), .. }
        if key == "mask.crop_size" && s == "data.crop_size"),
        "{e:?}"
    );
    let e = err(&format!("{}evaluation:\n  lr: 0.1\n", base()));
    assert!(matches!(&e, ImportError::UnknownKey { key, .. } if key == "evaluation"), "{e:?}");
}

#[test]
fn values_we_cannot_honour_are_errors() {
    let e = err(&edit("copy_data: false", "copy_data: true"));
    assert!(matches!(&e, ImportError::Unsupported { key, .. } if key == "meta.copy_data"), "{e:?}");
    assert!(e.to_string().contains("meta.copy_data: true"), "{e}");

    let e = err(&edit("load_checkpoint: false", "load_checkpoint: true")
        .replace("read_checkpoint: null", "read_checkpoint: jepa-ep100.pth.tar"));
    assert!(
        matches!(&e, ImportError::Unsupported { key, .. } if key == "meta.load_checkpoint"),
        "{e:?}"
    );
    assert!(e.to_string().contains("jepa-ep100.pth.tar"), "{e}");

    let e = err(&edit("model_name: vit_huge", "model_name: vit_enormous"));
    assert!(
        matches!(&e, ImportError::Unsupported { key, .. } if key == "meta.model_name"),
        "{e:?}"
    );
    // (the official names only: `vit-huge` is a KeyError in the official `vit.__dict__`)
    let e = err(&edit("model_name: vit_huge", "model_name: vit-huge"));
    assert!(matches!(&e, ImportError::Unsupported { key, .. } if key == "meta.model_name"), "{e:?}");

    let e = err(&edit("use_color_distortion: false", "use_color_distortion: true"));
    assert!(
        matches!(&e, ImportError::Unsupported { key, .. } if key == "data.color_jitter_strength"),
        "{e:?}"
    );
}

#[test]
fn integers_pyyaml_reads_otherwise_are_errors() {
    // a leading zero is octal to PyYAML, the official loader (`0300` epochs: 192 there)
    let e = err(&edit("epochs: 300", "epochs: 0300"));
    assert!(matches!(&e, ImportError::Unsupported { key, value, .. } if key == "optimization.epochs" && value == "0300"), "{e:?}");
    assert!(e.to_string().contains("octal (192, where this importer would read 300)"), "{e}");
    let e = err(&edit("num_workers: 10", "num_workers: 010"));
    assert!(matches!(&e, ImportError::Unsupported { key, .. } if key == "data.num_workers"), "{e:?}");
    // `0o14` is a string to PyYAML; `089` too; in a range as well
    let e = err(&edit("epochs: 300", "epochs: 0o14"));
    assert!(e.to_string().contains("reads `0o...` as a string"), "{e}");
    let e = err(&edit("epochs: 300", "epochs: 089"));
    assert!(e.to_string().contains("as a string"), "{e}");
    let e = err(&edit("- 0.3\n  - 1.0", "- 0.3\n  - 010"));
    assert!(matches!(&e, ImportError::Unsupported { key, .. } if key == "data.crop_scale"), "{e:?}");
    // the same value to both: imported (PyYAML's `!!int` takes the `0o` prefix)
    let (_, exp) = ok(&edit("epochs: 300", "epochs: 07"));
    assert_eq!(exp.epochs, 7);
    let (_, exp) = ok(&edit("epochs: 300", "epochs: !!int 0o14"));
    assert_eq!(exp.epochs, 12);
    // tagged, a leading zero is still octal to PyYAML; a sign is kept in both readings
    let e = err(&edit("epochs: 300", "epochs: !!int 0300"));
    assert!(e.to_string().contains("octal (192, where this importer would read 300)"), "{e}");
    let e = err(&edit("start_lr: 0.0002", "start_lr: -0300"));
    assert!(e.to_string().contains("octal (-192, where this importer would read -300)"), "{e}");
}

#[test]
fn floats_pyyaml_reads_as_strings_are_errors() {
    // PyYAML's floats need a decimal point and a signed exponent: `2e-4` and `2.0e4` are strings
    // to it (the official schedulers then fail on them)
    let e = err(&edit("start_lr: 0.0002", "start_lr: 2e-4"));
    assert!(matches!(&e, ImportError::Unsupported { key, value, .. } if key == "optimization.start_lr" && value == "2e-4"), "{e:?}");
    assert!(e.to_string().contains("reads it as a string") && e.to_string().contains("write `0.0002`"), "{e}");
    let e = err(&edit("start_lr: 0.0002", "start_lr: 2.0e4"));
    assert!(e.to_string().contains("write `20000.0`"), "{e}");
    let e = err(&edit("start_lr: 0.0002", "start_lr: -.5"));
    assert!(e.to_string().contains("write `-0.5`"), "{e}");
    // in a range too
    let e = err(&edit("- 0.3\n  - 1.0", "- 3e-1\n  - 1.0"));
    assert!(matches!(&e, ImportError::Unsupported { key, .. } if key == "data.crop_scale"), "{e:?}");
    // what PyYAML reads as the same float is imported
    for (text, want) in [("2.0e-4", 0.0002), ("2.E-4", 0.0002), ("+0.0002", 0.0002), (".0002", 0.0002), ("!!float 2e-4", 0.0002), ("0.000_2", 0.0002)] {
        let (_, exp) = ok(&edit("start_lr: 0.0002", &format!("start_lr: {text}")));
        assert!((exp.optimizer.lr.start - want).abs() < 1e-12, "{text}: {}", exp.optimizer.lr.start);
    }
    // ... but the weight decays, which the official code reads with Python's float(): a
    // string PyYAML hands it is the number it spells (the official run trains)
    for (text, want) in [("4e-2", 0.04), ("'0.04'", 0.04), ("\" 4E-2 \"", 0.04), ("'1_0.5'", 10.5), ("0.04", 0.04)] {
        let (_, exp) = ok(&edit("  weight_decay: 0.04", &format!("  weight_decay: {text}")));
        assert_eq!(exp.optimizer.weight_decay.start, want, "{text}");
        let (_, exp) = ok(&edit("final_weight_decay: 0.4", &format!("final_weight_decay: {text}")));
        assert_eq!(exp.optimizer.weight_decay.final_, want, "{text}");
    }
    for text in ["'abc'", "'inf'", "'1__0'", "'_1'", "true"] {
        let e = err(&edit("  weight_decay: 0.04", &format!("  weight_decay: {text}")));
        assert!(matches!(&e, ImportError::WrongType { key, .. } if key == "optimization.weight_decay"), "{text}: {e:?}");
    }
    // (where PyYAML reads an int, its value stands: a leading zero is octal there too)
    let e = err(&edit("  weight_decay: 0.04", "  weight_decay: 010"));
    assert!(e.to_string().contains("octal (8, where this importer would read 10)"), "{e}");
}

/// YAML 1.1 ints that YAML 1.2 reads as strings: underscores are PyYAML's int as for floats
/// (`3_00` is 300 epochs), binary and base 60 are refused naming PyYAML's value (they were a
/// bare "expected an integer, found `5:00`"), and an int past 64 bits is a range error, not
/// "PyYAML reads it as a string; write 18446744073709552000.0".
#[test]
fn ints_pyyaml_reads_otherwise_are_read_or_named() {
    for text in ["3_00", "300_", "+3_0_0"] {
        let (_, exp) = ok(&edit("epochs: 300", &format!("epochs: {text}")));
        assert_eq!(exp.epochs, 300, "{text}");
    }
    for (text, value, form) in [("0b100101100", "300", "binary"), ("5:00", "300", "base-60"), ("1:0", "60", "base-60"), ("1:00:00", "3600", "base-60")] {
        let e = err(&edit("epochs: 300", &format!("epochs: {text}")));
        assert!(matches!(&e, ImportError::Unsupported { key, .. } if key == "optimization.epochs"), "{text}: {e:?}");
        assert!(e.to_string().contains(&format!("the {form} number {value}")) && e.to_string().contains(&format!("write {value}")), "{text}: {e}");
    }
    let e = err(&edit("epochs: 300", "epochs: 18446744073709551616"));
    assert!(!e.to_string().contains("reads it as a string") && e.to_string().contains("too large"), "{e}");
    let e = err(&edit("epochs: 300", "epochs: _3:00"));
    assert!(!e.to_string().contains("base-60"), "{e}");
}

#[test]
fn malformed_yaml_is_an_error_with_its_position() {
    let e = err("data:\n  batch_size: 128\n crop_size: 224\n");
    match &e {
        ImportError::Syntax { line, column, .. } => {
            assert_eq!(*line, 3, "{e}");
            assert!(*column >= 1, "{e}");
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
    assert!(e.to_string().contains("line 3, column"), "{e}");
    let e = err("data: [1, 2\n");
    assert!(matches!(e, ImportError::Syntax { .. }), "{e:?}");
    assert!(matches!(err(""), ImportError::Document(_)));
    assert!(matches!(err(&format!("{}---\n{}", base(), base())), ImportError::Document(_)));
    assert!(matches!(err("- 1\n- 2\n"), ImportError::WrongType { .. }));
    // aliases of aliases ("billion laughs": 9^7 values from seven short lines) are refused
    // while they are read, not expanded until memory runs out (it aborted the process)
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
    for (name, prev) in ["b", "c", "d", "e", "f", "g"].iter().zip(["a", "b", "c", "d", "e", "f"]) {
        bomb.push_str(&format!("{name}: &{name} [{}]\n", vec![format!("*{prev}"); 9].join(", ")));
    }
    let e = err(&bomb);
    assert!(matches!(e, ImportError::Syntax { line: 6, .. }) && e.to_string().contains("more than 100000 values once its aliases"), "{e}");
    // an alias or two stay what they are: the value they name
    let (_, exp) = ok(&edit("  - 0.3\n  - 1.0\n", "  - 0.3\n  - &one 1.0\n").replace("  - 0.85\n  - 1.0\n", "  - 0.85\n  - *one\n"));
    assert_eq!((exp.data.crop_scale, exp.mask.context_scale), ((0.3, 1.0), (0.85, 1.0)));
}

#[test]
fn missing_duplicate_and_mistyped_keys() {
    let e = err(&edit("  min_keep: 10\n", ""));
    assert_eq!(e, ImportError::MissingKeys { keys: vec!["mask.min_keep".into()] });
    assert!(e.to_string().contains("`mask.min_keep`"), "{e}");

    let e = err(&edit("  min_keep: 10\n", "  min_keep: 10\n  min_keep: 12\n"));
    assert!(matches!(&e, ImportError::DuplicateKey { key, .. } if key == "mask.min_keep"), "{e:?}");

    for (from, to, key) in [
        ("batch_size: 128", "batch_size: 12.5", "data.batch_size"),
        ("batch_size: 128", "batch_size: -1", "data.batch_size"),
        ("epochs: 300", "epochs: '300'", "optimization.epochs"),
        ("lr: 0.001", "lr: fast", "optimization.lr"),
        ("lr: 0.001", "lr: .inf", "optimization.lr"),
        ("allow_overlap: false", "allow_overlap: 0", "mask.allow_overlap"),
        ("image_folder: imagenet_full_size/061417/", "image_folder: 61417", "data.image_folder"),
        // `!!float 224` is a float (PyYAML's too), and a size must be an integer
        ("crop_size: 224", "crop_size: !!float 224", "data.crop_size"),
        // a tag on a list or mapping is refused as on a scalar (it was dropped without a word)
        ("crop_scale:\n  - 0.3\n  - 1.0", "crop_scale: !!python/tuple [0.3, 1.0]", "data.crop_scale"),
    ] {
        let e = err(&edit(from, to));
        assert!(matches!(&e, ImportError::WrongType { key: k, .. } if k == key), "{to}: {e:?}");
        assert!(e.to_string().contains(key), "{e}");
    }
    let e = err(&edit("  - 0.3\n  - 1.0\n", "  - 0.3\n"));
    assert!(matches!(&e, ImportError::WrongType { key, .. } if key == "data.crop_scale"), "{e:?}");
    let e = err(&edit("crop_size: 224", "crop_size: !!float 224"));
    assert!(e.to_string().contains("found `!!float 224`"), "{e}");
    let e = err(&edit("crop_scale:\n  - 0.3\n  - 1.0", "crop_scale: !!python/tuple [0.3, 1.0]"));
    assert!(e.to_string().contains("`!!python/tuple [...]` (YAML tags are not supported)"), "{e}");
    // YAML's own collection tags are the collections themselves
    let (_, exp) = ok(&edit("crop_scale:\n  - 0.3\n  - 1.0", "crop_scale: !!seq [0.3, 1.0]"));
    assert_eq!(exp.data.crop_scale, (0.3, 1.0));
}

#[test]
fn harmless_variants_import() {
    // resuming from the latest checkpoint is what ijepa does anyway
    let (kdl, _) = ok(&edit("load_checkpoint: false", "load_checkpoint: true"));
    assert!(kdl.contains("resuming from the latest checkpoint is automatic"), "{kdl}");

    // an editor's byte-order mark is read as PyYAML reads it (it was part of the first key)
    let (_, bom) = ok(&format!("\u{feff}{}", base()));
    assert_eq!(bom, ok(&base()).1);

    // augmentations on; PyYAML's yes/no booleans; a float written as an integer
    let (_, exp) = ok(&edit("use_horizontal_flip: false", "use_horizontal_flip: yes")
        .replace("use_gaussian_blur: false", "use_gaussian_blur: true")
        .replace("use_color_distortion: false", "use_color_distortion: true")
        .replace("color_jitter_strength: 0.0", "color_jitter_strength: 0.5")
        .replace("ipe_scale: 1.0", "ipe_scale: 1.25")
        .replace("lr: 0.001", "lr: 1"));
    assert_eq!((exp.data.hflip, exp.data.blur, exp.data.color_jitter), (0.5, 0.5, Some(0.5)));
    assert_eq!((exp.ipe_scale, exp.optimizer.lr.peak), (1.25, 1.0));

    // optional keys may be left out; no logging folder: no distributed block, a comment instead
    let lean: String = base()
        .lines()
        .filter(|l| {
            ![
                "pin_mem",
                "copy_data",
                "load_checkpoint",
                "read_checkpoint",
                "logging",
                "folder",
                "write_tag",
            ]
            .iter()
            .any(|k| l.trim_start().starts_with(k))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let (kdl, exp) = ok(&lean);
    assert_eq!(exp.distributed, Default::default());
    assert!(kdl.contains("The YAML gives no world size"), "{kdl}");

    // a global batch that is not 8 GPUs per node: one node
    let (kdl, exp) = ok(&edit("bs.2048", "bs.384"));
    assert_eq!((exp.distributed.nodes, exp.distributed.procs_per_node), (1, 3), "{kdl}");
    // not a multiple of the per-GPU batch: no block
    let (kdl, exp) = ok(&edit("bs.2048", "bs.1000"));
    assert_eq!(exp.distributed, Default::default());
    assert!(kdl.contains("not a multiple of batch-size 128"), "{kdl}");
    // a layout the language refuses (75 GPUs on one node; 8,192 nodes): no block, and a word
    // (the import failed whole)
    for (bs, layout) in [("bs.9600", "1 node(s) x 75"), ("bs.8388608", "8192 node(s) x 8")] {
        let (kdl, exp) = ok(&edit("bs.2048", bs));
        assert_eq!(exp.distributed, Default::default());
        let flat = kdl.lines().map(|l| l.trim_start_matches([' ', '/']).trim_end()).collect::<Vec<_>>().join(" ");
        assert!(flat.contains(layout) && flat.contains("past the language's"), "{kdl}");
    }
}

#[test]
fn numbers_round_trip_exactly() {
    let (_, exp) = ok(&edit("final_lr: 1.0e-06", "final_lr: 1.2345678901234567e-07")
        .replace("start_lr: 0.0002", "start_lr: 0.1")
        .replace("weight_decay: 0.04", "weight_decay: 3.0e+00"));
    assert_eq!(exp.optimizer.lr.final_, 1.2345678901234567e-07);
    assert_eq!(exp.optimizer.lr.start, 0.1);
    assert_eq!(exp.optimizer.weight_decay.start, 3.0);
}

#[test]
fn names() {
    assert_eq!(
        default_name(Path::new("/x/configs/in1k_vith16-448_ep300.yaml")),
        "in1k_vith16-448_ep300"
    );
    assert_eq!(default_name(Path::new("my config (v2).yml")), "my-config--v2-");
    assert_eq!(default_name(Path::new(".hidden.yaml")), "hidden");
    assert_eq!(default_name(Path::new("")), "imported");
    // `ijepa import-yaml <(cat cfg.yaml)`: the pipe's number is no name
    assert_eq!(default_name(Path::new("/dev/fd/63")), "imported");
    assert_eq!(default_name(Path::new("/proc/self/fd/0")), "imported");
    assert_eq!(default_name(Path::new("/data/fd/vit.yaml")), "vit");
    assert!(matches!(
        yaml_to_kdl(&base(), "a.yaml", "bad name"),
        Err(ImportError::InvalidName { .. })
    ));
    // a quote or backslash in a path is escaped in the KDL
    let (_, exp) =
        ok(&edit("image_folder: imagenet_full_size/061417/", "image_folder: 'we\"ird\\dir'"));
    let DataSource::Path(root) = exp.data.source else { panic!("no root") };
    assert!(root.to_string_lossy().ends_with("/we\"ird\\dir/train/"), "{root:?}");
}

#[test]
fn fixtures_are_the_official_configs() {
    // the four YAMLs are verbatim copies; make sure none went missing
    for &(stem, _, _) in CONFIGS {
        let y = yaml(stem);
        assert!(y["meta"]["model_name"].as_str().is_some(), "{}", fixture_path(stem).display());
    }
}

/// The header's commands name the file written (`--out`), not the shipped experiment's path,
/// and a YAML whose `root_path` names a folder is not told to set `root=` (it is set).
#[test]
fn the_header_names_the_file_written_and_a_set_root_is_not_to_be_set() {
    let shipped = yaml_to_kdl(&base(), "in1k_vith14_ep300.yaml", "x").unwrap();
    assert!(shipped.contains("// Check: `ijepa check experiments/in1k_vith14_ep300.kdl`") && shipped.contains("Before running: set root="), "{shipped}");
    let mine = yaml_to_kdl_at(&base(), "in1k_vith14_ep300.yaml", "x", Some("my/vit.kdl")).unwrap();
    assert!(mine.contains("Run: `ijepa slurm my/vit.kdl`") && mine.matches("my/vit.kdl`").count() == 2 && !mine.contains("experiments/in1k"), "{mine}");
    // (a path with a space is quoted, so the command pastes)
    let spaced = yaml_to_kdl_at(&base(), "in1k_vith14_ep300.yaml", "x", Some("my runs/vit.kdl")).unwrap();
    assert!(spaced.contains("Run: `ijepa slurm 'my runs/vit.kdl'`"), "{spaced}");
    // (a path with a line break would end the comment: the shipped one is named)
    let odd = yaml_to_kdl_at(&base(), "in1k_vith14_ep300.yaml", "x", Some("a\nb.kdl")).unwrap();
    assert!(odd.contains("`ijepa check experiments/in1k_vith14_ep300.kdl`"), "{odd}");
    let set = base().replace("root_path: $replace_this_with_absolute_path_to_your_datasets_directory", "root_path: /data/sets");
    assert_ne!(set, base());
    let kdl = yaml_to_kdl(&set, "in1k_vith14_ep300.yaml", "x").unwrap();
    assert!(kdl.contains("root=\"/data/sets/") && !kdl.contains("set root=") && !kdl.contains("EDIT root="), "{kdl}");
}

/// YAML 1.1's merge keys, which PyYAML (the official loader) applies: the mapping's own keys
/// win, then the first mapping of a list (`data.<<` was an unknown key).
#[test]
fn merge_keys_merge_as_pyyaml_does() {
    let (_, exp) = ok(&edit("  crop_size: 224", "  <<: {crop_size: 224}"));
    assert_eq!(exp.data.crop_size, 224);
    let (_, exp) = ok(&edit("  crop_size: 224", "  crop_size: 224\n  <<: {crop_size: 448}"));
    assert_eq!(exp.data.crop_size, 224);
    let (_, exp) = ok(&edit("  crop_size: 224", "  <<: [{crop_size: 224}, {crop_size: 448, batch_size: 99}]").replace("  batch_size: 128\n", ""));
    assert_eq!((exp.data.crop_size, exp.data.batch_size), (224, 99));
    for (text, found) in [("  <<: 3", "`3`"), ("  <<: [{crop_size: 224}, 3]", "a list of other values than mappings")] {
        let e = err(&edit("  crop_size: 224", text));
        assert!(matches!(&e, ImportError::WrongType { key, found: f, .. } if key == "data.<<" && f == found), "{text}: {e:?}");
    }
}

/// The header calls a file the official run, with the paper's numbers, by its settings, not
/// by its name: an official file edited for a short run under its name says what it changed
/// (it was "the official I-JEPA pretraining ... 100 epochs", credited with Table 1), and a
/// renamed copy of one is still the official run (the paths and the loader's settings aside).
#[test]
fn the_header_calls_a_file_official_by_its_settings() {
    let flat = |s: &str| s.lines().take_while(|l| l.starts_with("//")).map(|l| l.trim_start_matches("//").trim()).collect::<Vec<_>>().join(" ");
    let edited = flat(&yaml_to_kdl(&edit("  epochs: 300", "  epochs: 100").replace("  lr: 0.001", "  lr: 0.005"), "in1k_vith14_ep300.yaml", "x").unwrap());
    assert!(edited.starts_with("x - I-JEPA pretraining of a ViT-H/14 at 224 px, 100 epochs."), "{edited}");
    assert!(edited.contains("the official config `in1k_vith14_ep300.yaml` (facebookresearch/ijepa, configs/) with 2 settings changed: optimization.epochs (300 -> 100), optimization.lr (0.001 -> 0.005)"), "{edited}");
    assert!(!edited.contains("Table 1") && !edited.contains("experiments/in1k") && edited.contains("`ijepa check FILE.kdl`"), "{edited}");
    let renamed = flat(&yaml_to_kdl(&base().replace("root_path: $replace_this_with_absolute_path_to_your_datasets_directory", "root_path: /data/sets").replace("num_workers: 10", "num_workers: 4"), "mine.yaml", "x").unwrap());
    assert!(renamed.starts_with("x - the official I-JEPA pretraining of a ViT-H/14 on ImageNet-1K at 224 px, 300 epochs."), "{renamed}");
    assert!(renamed.contains("`mine.yaml`, whose settings are the official config `in1k_vith14_ep300.yaml`'s") && renamed.contains("Table 1 (79.3% top-1"), "{renamed}");
    assert!(!renamed.contains("experiments/in1k"), "{renamed}");
    // the logging folder's `bs.N` gives the processes, so the global batch: another one is
    // another run (`bs.2000` was called the official run, trained on one process)
    let folder = base().lines().find(|l| l.trim_start().starts_with("folder:")).expect("a logging folder").to_string();
    for (to, changed) in [("bs.2000", "(16 -> 1)"), ("bs.1024", "(16 -> 8)")] {
        let other = flat(&yaml_to_kdl(&base().replace(&folder, &folder.replace("bs.2048", to)), "in1k_vith14_ep300.yaml", "x").unwrap());
        assert!(other.contains(&format!("with 1 setting changed: logging.folder's bs.N (processes) {changed}")) && !other.contains("Table 1"), "{to}: {other}");
    }
    // every official file is its own official run
    for (stem, ..) in CONFIGS {
        let kdl = flat(&yaml_to_kdl(&fixture(stem), &format!("{stem}.yaml"), "x").unwrap());
        assert!(kdl.contains("the official I-JEPA pretraining") && kdl.contains(&format!("from the official config `{stem}.yaml`")), "{stem}: {kdl}");
    }
}

/// PyYAML's readings of values the official code takes without complaint: `Null` and `NULL`
/// are null (YAML 1.2's core schema too), a null switch is false (`if copy_data:`), and a
/// number is a `write_tag` (`f'{tag}_r{rank}.csv'`).
#[test]
fn null_spellings_null_switches_and_a_numeric_tag_read_as_the_official_code_reads_them() {
    for null in ["Null", "NULL", "~"] {
        // load_checkpoint: true with no file resumes from the latest checkpoint: dropped
        let (kdl, _) = ok(&edit("load_checkpoint: false", "load_checkpoint: true").replace("read_checkpoint: null", &format!("read_checkpoint: {null}")));
        assert!(kdl.contains("meta.load_checkpoint: true - resuming from the latest checkpoint is automatic"), "{null}: {kdl}");
    }
    // a quoted "Null" stays a string (a file of that name)
    let e = err(&edit("load_checkpoint: false", "load_checkpoint: true").replace("read_checkpoint: null", "read_checkpoint: 'Null'"));
    assert!(matches!(&e, ImportError::Unsupported { key, .. } if key == "meta.load_checkpoint"), "{e:?}");
    let (kdl, _) = ok(&edit("copy_data: false", "copy_data: null"));
    assert!(kdl.contains("meta.copy_data: false - the data is read in place"), "{kdl}");
    let (kdl, _) = ok(&edit("write_tag: jepa", "write_tag: 2024"));
    assert!(kdl.contains("logging.write_tag \"2024\""), "{kdl}");
    // a null tag or folder is said where it is dropped (it went without a word)
    let (kdl, _) = ok(&edit("write_tag: jepa", "write_tag: null"));
    assert!(kdl.contains("logging.write_tag: null - no value to carry over"), "{kdl}");
    // a code point KDL forbids is no part of a comment
    let (kdl, _) = ok(&edit("write_tag: jepa", "write_tag: \"a\u{202e}b\""));
    assert!(kdl.contains("logging.write_tag \"a b\""), "{kdl}");
    // a list is no tag
    let e = err(&edit("write_tag: jepa", "write_tag: [a, b]"));
    assert!(matches!(&e, ImportError::WrongType { key, .. } if key == "logging.write_tag"), "{e:?}");
}

/// The line separators KDL v2 reads as newlines (U+2028, U+2029) are escaped in strings and
/// blanked in comments: after one in the YAML's leading comment, the rest was read as KDL.
#[test]
fn unicode_line_separators_neither_end_a_comment_nor_a_string() {
    for sep in ['\u{2028}', '\u{2029}'] {
        let yaml = format!("# a note{sep}# second line\n{}", edit("root_path: $replace_this_with_absolute_path_to_your_datasets_directory", &format!("root_path: \"/data/a{sep}b\"")));
        let (kdl, exp) = ok(&yaml);
        assert!(!kdl.contains(sep), "{kdl}");
        let DataSource::Path(root) = &exp.data.source else { panic!("{:?}", exp.data.source) };
        assert!(root.to_string_lossy().starts_with(&format!("/data/a{sep}b")), "{root:?}");
    }
}

/// A range with an element that is not a number names that element ("found a list" said
/// nothing of a list of two).
#[test]
fn a_range_names_its_element_that_is_not_a_number() {
    let e = err(&edit("  - 0.75\n  - 1.5", "  - 0.75\n  - '1.5'"));
    assert!(e.to_string().contains("`mask.aspect_ratio`") && e.to_string().contains("a list whose second element is the string \"1.5\""), "{e}");
    let e = err(&edit("  - 0.75\n  - 1.5", "  - .inf\n  - 1.5"));
    assert!(e.to_string().contains("a list whose first element is `.inf`"), "{e}");
}

/// The header names the shipped preset only for the official file itself: with its root set
/// (or another key that leaves the training alone changed), it names `FILE.kdl`, as for any
/// other import to stdout (it named the preset, which holds the placeholder root).
#[test]
fn the_header_names_the_preset_only_for_the_official_text() {
    let set = base().replace("root_path: $replace_this_with_absolute_path_to_your_datasets_directory", "root_path: /data/sets");
    let kdl = yaml_to_kdl(&set, "in1k_vith14_ep300.yaml", "x").unwrap();
    assert!(kdl.contains("Run: `ijepa slurm FILE.kdl`") && !kdl.contains("experiments/in1k"), "{kdl}");
    // CRLF line endings are the same text
    let crlf = base().replace('\n', "\r\n");
    let kdl = yaml_to_kdl(&crlf, "in1k_vith14_ep300.yaml", "x").unwrap();
    assert!(kdl.contains("Run: `ijepa slurm experiments/in1k_vith14_ep300.kdl`"), "{kdl}");
}
