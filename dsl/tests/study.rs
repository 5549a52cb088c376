//! The study API: `extends` (merge semantics, chains, cycles, missing and invalid bases) and
//! sweeps (grid, zip, seeds, point names, values checked per point, unknown paths), through
//! `load_study` / `parse_study` / `load` as the executor uses them.

use std::fs;
use std::path::{Path, PathBuf};

use ijepa_dsl::config::{DataSource, EvalProtocol, Experiment};
use ijepa_dsl::{Diagnostics, Study, SweepMode};

/// A fresh folder for one test's files, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ijepa-dsl-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        Dir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("sub dir");
        }
        fs::write(&path, text).expect("write file");
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn study(path: &Path) -> Study {
    match ijepa_dsl::load_study(path) {
        Ok((s, _)) => s,
        Err(d) => panic!("expected a valid study, got:\n{}", d.render_plain()),
    }
}

fn exp(path: &Path) -> Experiment {
    match ijepa_dsl::load(path) {
        Ok((e, _)) => e,
        Err(d) => panic!("expected a valid experiment, got:\n{}", d.render_plain()),
    }
}

fn failure(path: &Path) -> Diagnostics {
    match ijepa_dsl::load_study(path) {
        Ok(_) => panic!("{} should not load", path.display()),
        Err(d) => d,
    }
}

fn sweep(src: &str) -> Study {
    ijepa_dsl::parse_study("sweep.kdl", src).map_err(|d| d.render_plain()).expect("valid sweep")
}

fn sweep_err(src: &str) -> Diagnostics {
    ijepa_dsl::parse_study("sweep.kdl", src).expect_err("invalid sweep")
}

/// The text an error's primary label points at.
fn at<'a>(src: &'a str, d: &Diagnostics, i: usize) -> &'a str {
    let e = &d.errors()[i];
    let start = e.offset();
    let len = miette::Diagnostic::labels(e).and_then(|mut l| l.next()).map_or(0, |l| l.len());
    &src[start..start + len]
}

const BASE: &str = r#"
experiment "base" {
    seed 3
    data "fashion-mnist" root="/data/fmnist" {
        crop-size 32
        batch-size 64
        workers 2
    }
    encoder "vit-tiny" patch=4 rescale-init=#true
    predictor depth=4 width=96 heads=3
    mask "multi-block" {
        targets count=4 { scale 0.15 0.2; aspect 0.75 1.5 }
        min-keep 4
    }
    optimizer "adamw" {
        lr start=2e-4 peak=1e-3 final=1e-6 warmup-epochs=1
    }
    epochs 5
    distributed { backend "gloo"; timeout "10m" }
    eval "linear" { epochs 20; decay-every 6 }
    eval "knn" { k 10 }
    report
}
"#;

/// The tiny valid experiment sweeps start from.
const TINY: &str = r#"
experiment "tiny" {
    data "fashion-mnist" { crop-size 32; batch-size 16 }
    encoder width=96 depth=4 heads=3 patch=4
    predictor depth=2 width=48 heads=3
    mask "multi-block" { min-keep 3 }
    seed 7
}
"#;

#[test]
fn a_child_changes_only_what_it_writes() {
    let dir = Dir::new("merge");
    let base_path = dir.write("base.kdl", BASE);
    let child = dir.write(
        "child.kdl",
        r#"experiment "child" {
            extends "base.kdl"
            data "fashion-mnist" { batch-size 32 }
            encoder depth=6
            mask "multi-block" { targets count=3 }
            optimizer "adamw" { lr peak=2e-3 }
            distributed { bucket-mb 50 }
            eval "linear" { epochs 5 }
            eval "low-shot" fraction=0.05 { }
        }"#,
    );
    let base = exp(&base_path);
    let e = exp(&child);
    assert_eq!(e.name, "child");
    assert_eq!(e.seed, 3);
    // data: batch size changed, the rest (root, crop, workers) kept
    assert_eq!(e.data.batch_size, 32);
    assert_eq!((e.data.crop_size, e.data.workers), (32, 2));
    assert_eq!(e.data.source, DataSource::Path("/data/fmnist".into()));
    // encoder properties without a preset change the base's encoder
    assert_eq!((e.encoder.embed_dim, e.encoder.depth, e.encoder.num_heads), (192, 6, 3));
    assert_eq!((e.encoder.patch_size, e.encoder.rescale_init), (4, true));
    // `targets count=3` keeps the base's scale and aspect
    assert_eq!(e.mask.n_targets, 3);
    assert_eq!((e.mask.target_scale, e.mask.target_aspect), (base.mask.target_scale, (0.75, 1.5)));
    assert_eq!(e.mask.min_keep, 4);
    assert_eq!(
        (e.optimizer.lr.start, e.optimizer.lr.peak, e.optimizer.lr.warmup_epochs),
        (2e-4, 2e-3, 1.0)
    );
    assert_eq!(e.predictor, base.predictor);
    assert_eq!(e.epochs, 5);
    assert_eq!((e.distributed.timeout_s, e.distributed.bucket_mb), (600, 50.0));
    // evals: the base's linear block changed where written, knn kept, low-shot appended
    let protocols: Vec<EvalProtocol> = e.evals.iter().map(|c| c.protocol).collect();
    assert_eq!(protocols, [EvalProtocol::Linear, EvalProtocol::Knn, EvalProtocol::LowShot]);
    assert_eq!((e.evals[0].epochs, e.evals[0].decay_every), (5, 6));
    assert_eq!(e.evals[1].k, 10);
    assert_eq!(e.evals[2].fraction, 0.05);
    assert!(e.report);
    // a child that only extends is the base under another name
    let same = dir.write("same.kdl", "experiment \"same\" { extends \"base.kdl\" }");
    assert_eq!(exp(&same), Experiment { name: "same".into(), ..base.clone() });
    // the study lists the files
    let s = study(&child);
    assert_eq!(s.files, vec![child.clone(), base_path.clone()]);
    assert_eq!((s.name.as_str(), s.mode, s.points.len()), ("child", None, 1));
    assert_eq!(s.points[0].name, "");
    assert_eq!(s.points[0].experiment, s.base);
    assert!(s.points[0].varied.is_empty());
}

#[test]
fn presets_and_datasets_replace_what_belongs_to_them() {
    let dir = Dir::new("presets");
    dir.write("base.kdl", BASE);
    // a preset replaces width/depth/heads/mlp-ratio; the patch stays the base's
    let child =
        dir.write("child.kdl", "experiment c {\n extends \"base.kdl\"\n encoder \"vit-small\"\n}");
    let e = exp(&child).encoder;
    assert_eq!(
        (e.preset.as_deref(), e.embed_dim, e.depth, e.num_heads, e.patch_size),
        (Some("vit-small"), 384, 12, 6, 4)
    );
    // another dataset drops the base's root (it belonged to the other dataset)
    let child = dir.write(
        "cifar.kdl",
        "experiment c {\n extends \"base.kdl\"\n data \"cifar10\" root=\"/c\"\n}",
    );
    let d = exp(&child).data;
    assert_eq!((d.source, d.crop_size), (DataSource::Path("/c".into()), 32));
    let child =
        dir.write("nocifar.kdl", "experiment c {\n extends \"base.kdl\"\n data \"cifar10\"\n}");
    assert_eq!(failure(&child).codes(), ["ijepa::dsl::missing_property"]);
    // rules across settings run on the merged experiment and point at the child's text
    let child = dir.write(
        "crop.kdl",
        "experiment c {\n extends \"base.kdl\"\n data \"fashion-mnist\" { crop-size 30 }\n}",
    );
    let d = failure(&child);
    assert_eq!(d.codes(), ["ijepa::dsl::patch_crop"]);
    assert_eq!(d.file_name(), child.display().to_string());
    // only the child's settings have spans
    let src = fs::read_to_string(&child).expect("read");
    let child_ok = dir.write("ok.kdl", "experiment c {\n extends \"base.kdl\"\n epochs 9\n}");
    let p = ijepa_dsl::parse_spanned(
        &child_ok.display().to_string(),
        &fs::read_to_string(&child_ok).expect("read"),
    )
    .expect("valid");
    assert!(p.spans.contains_key("epochs") && !p.spans.contains_key("data.crop-size"));
    drop(src);
}

#[test]
fn chains_resolve_in_order() {
    let dir = Dir::new("chain");
    let c = dir.write("c.kdl", "experiment c {\n seed 1\n epochs 3\n data \"fashion-mnist\" { crop-size 32 }\n encoder \"vit-tiny\" patch=4\n mask multi-block { min-keep 4 }\n}");
    let b = dir.write("sub/b.kdl", "experiment b {\n extends \"../c.kdl\"\n seed 2\n}");
    let a = dir.write("a.kdl", "experiment a {\n extends \"sub/b.kdl\"\n epochs 4\n}");
    let e = exp(&a);
    assert_eq!((e.name.as_str(), e.seed, e.epochs, e.data.crop_size), ("a", 2, 4, 32));
    assert_eq!(study(&a).files, vec![a.clone(), dir.0.join("sub/b.kdl"), dir.0.join("c.kdl")]);
    let _ = (b, c);
}

/// A chain of bases longer than 32 files is one error at the root file's `extends` (it was
/// blamed on whichever file came 32nd, wrapped once per level: 513 lines for 40 files).
#[test]
fn a_chain_too_long_is_the_root_file_s_one_error() {
    let dir = Dir::new("long-chain");
    dir.write("c39.kdl", "experiment c39 {\n epochs 3\n}");
    for i in 0..39 {
        dir.write(&format!("c{i}.kdl"), &format!("experiment c{i} {{\n extends \"c{}.kdl\"\n}}", i + 1));
    }
    for root in ["c0.kdl", "c7.kdl"] {
        let path = dir.0.join(root);
        let d = failure(&path);
        assert_eq!(d.len(), 1, "{root}: {:?}", d.errors());
        let src = fs::read_to_string(&path).expect("read");
        let next = format!("\"c{}.kdl\"", root[1..root.len() - 4].parse::<usize>().unwrap() + 1);
        assert_eq!(at(&src, &d, 0), next, "{root}");
        let message = d.errors()[0].to_string();
        assert!(message.contains("the chain of bases is longer than 32 files (it goes on past"), "{message}");
    }
    // 32 files are a chain the language takes
    assert_eq!(exp(&dir.0.join("c8.kdl")).epochs, 3);
}

#[test]
fn cycles_are_reported_with_the_chain() {
    let dir = Dir::new("cycle");
    let a = dir.write("a.kdl", "experiment a {\n extends \"b.kdl\"\n}");
    dir.write("b.kdl", "experiment b {\n extends \"./a.kdl\"\n}");
    let d = failure(&a);
    assert_eq!(d.codes(), ["ijepa::dsl::extends_cycle"]);
    let src = fs::read_to_string(&a).expect("read");
    assert_eq!(at(&src, &d, 0), "\"b.kdl\"");
    let message = d.errors()[0].to_string();
    let b = dir.0.join("b.kdl");
    let (a, b) = (a.display(), b.display());
    assert_eq!(message, format!("`extends` makes a cycle: {a} -> {b} -> {a}"));
    // a file that extends itself
    let own = dir.write("own.kdl", "experiment own {\n extends \"own.kdl\"\n}");
    assert_eq!(failure(&own).codes(), ["ijepa::dsl::extends_cycle"]);
    // parse_str has no file on disk: `extends` of its own name is still a cycle
    let d = ijepa_dsl::parse_str("fuzz.kdl", "experiment x {\n extends \"fuzz.kdl\"\n}")
        .expect_err("cycle");
    assert_eq!(d.codes(), ["ijepa::dsl::extends_cycle"]);
}

/// Changing the recipe on top of a base of another recipe would drop what the base set for
/// its own (a predictor, a decoder, a mask the new recipe does not sample): refused at
/// `recipe`; a base that sets none of them may change recipe.
#[test]
fn a_base_of_another_recipe_keeps_its_settings_or_is_refused() {
    let dir = Dir::new("recipe-change");
    let enc = "encoder width=32 depth=1 heads=2 patch=4\n data fashion-mnist { crop-size 28 }";
    dir.write("ijepa.kdl", &format!("experiment i {{\n {enc}\n predictor depth=2 width=64 heads=4\n mask \"multi-block\" {{ min-keep 3 }}\n}}"));
    let child = dir.write("mae.kdl", "experiment c {\n extends \"ijepa.kdl\"\n recipe \"mae\"\n}");
    let d = failure(&child);
    assert_eq!(d.codes(), ["ijepa::dsl::not_of_recipe"]);
    let text = d.render_plain();
    assert!(text.contains("predictor, mask \"multi-block\" (from the base)") && text.contains("recipe \"mae\""), "{text}");
    // writing the new recipe's mask here answers for the mask; the predictor is still the base's
    let child = dir.write("mae-mask.kdl", "experiment c {\n extends \"ijepa.kdl\"\n recipe \"mae\"\n mask \"random\" { ratio 0.75; }\n}");
    let text = failure(&child).render_plain();
    assert!(text.contains("`predictor (from the base)`"), "{text}");
    // the reverse: an MAE base's decoder
    dir.write("mae-base.kdl", &format!("experiment m {{\n recipe \"mae\"\n {enc}\n decoder depth=1 width=32 heads=2\n}}"));
    let child = dir.write("ijepa-child.kdl", "experiment c {\n extends \"mae-base.kdl\"\n recipe \"ijepa\"\n mask \"multi-block\" { min-keep 3; }\n}");
    assert_eq!(failure(&child).codes(), ["ijepa::dsl::not_of_recipe"]);
    // a base with only shared settings (and its recipe's default mask) changes recipe freely
    dir.write("plain.kdl", "experiment p {\n encoder width=32 depth=1 heads=2 patch=4\n data fashion-mnist { crop-size 64; }\n epochs 2\n}");
    let child = dir.write("plain-mae.kdl", "experiment c {\n extends \"plain.kdl\"\n recipe \"mae\"\n}");
    assert_eq!(exp(&child).recipe, "mae");
    // a recipe that samples no mask (DINO) reads none: a base's mask is not refused (this file
    // could not write one in its place: DINO refuses a `mask` node)
    dir.write("masked.kdl", "experiment p {\n encoder width=32 depth=1 heads=2 patch=16\n data fashion-mnist { crop-size 224; }\n mask \"multi-block\" { min-keep 3 }\n}");
    let child = dir.write("masked-dino.kdl", "experiment c {\n extends \"masked.kdl\"\n recipe \"dino\"\n}");
    assert_eq!(exp(&child).recipe, "dino");
    // ... but the mask it carries is still refused where a recipe would sample it: a child of
    // that DINO file changing to MAE, or a sweep of it over DINO and MAE (each was an MAE
    // point silently on MAE's default mask)
    let grandchild = dir.write("masked-dino-mae.kdl", "experiment g {\n extends \"masked-dino.kdl\"\n recipe \"mae\"\n}");
    assert_eq!(failure(&grandchild).codes(), ["ijepa::dsl::not_of_recipe"]);
    let swept = dir.write("masked-sweep.kdl", "experiment s {\n extends \"masked.kdl\"\n recipe \"dino\"\n}\nsweep \"zip\" {\n vary \"recipe\" \"dino\" \"mae\"\n}");
    let d = ijepa_dsl::load_study(&swept).expect_err("an MAE point reads the base's mask");
    assert!(d.codes().contains(&"ijepa::dsl::not_of_recipe".to_string()), "{}", d.render_plain());
}

#[test]
fn missing_and_invalid_bases() {
    let dir = Dir::new("missing");
    let child = dir.write("child.kdl", "experiment c {\n extends \"nope.kdl\"\n epochs 0\n}");
    let d = failure(&child);
    // the missing base, and the child's own error (read as a layer all the same)
    assert_eq!(d.codes(), ["ijepa::dsl::extends_missing", "ijepa::dsl::out_of_range"]);
    assert_eq!(at(&fs::read_to_string(&child).expect("read"), &d, 0), "\"nope.kdl\"");
    let child = dir.write("folder.kdl", "experiment c {\n extends \".\"\n}");
    let d = failure(&child);
    assert_eq!(d.codes(), ["ijepa::dsl::extends_missing"]);
    let text = d.render_plain();
    assert!(text.contains("a folder, not an experiment file") && text.contains("cannot read this base") && text.contains("names an experiment file"), "{text}");
    assert!(!text.contains("no such base file") && !text.contains("a relative path"), "{text}");
    // a missing relative path says where it starts; an absolute one does not
    assert!(failure(&dir.0.join("child.kdl")).render_plain().contains("a relative path starts at the folder of the file that extends it"));
    let child = dir.write("absolute.kdl", "experiment c {\n extends \"/nonexistent/base.kdl\"\n}");
    let text = failure(&child).render_plain();
    assert!(text.contains("no file is at that path") && !text.contains("a relative path"), "{text}");
    let child = dir.write("empty.kdl", "experiment c {\n extends \"\"\n}");
    assert_eq!(failure(&child).codes(), ["ijepa::dsl::invalid_value"]);
    let child = dir.write("number.kdl", "experiment c {\n extends 3\n}");
    assert_eq!(failure(&child).codes(), ["ijepa::dsl::wrong_type"]);
    // a base with errors: reported against the base's own text, nested
    dir.write("broken.kdl", "experiment broken {\n epochs 0\n}");
    let child = dir.write("child2.kdl", "experiment c {\n extends \"broken.kdl\"\n}");
    let d = failure(&child);
    assert_eq!(d.codes(), ["ijepa::dsl::base_invalid"]);
    let text = d.render_plain();
    assert!(text.contains("broken.kdl has 1 error") && text.contains(" 2 |  epochs 0"), "{text}");
    // a base whose only error is its own base's passes that error on, naming the file at fault
    // once (each level wrapped it again: 31 nested blocks for an error 32 files down); a file
    // between with an error of its own keeps both, nested
    dir.write("mid1.kdl", "experiment m1 {\n extends \"broken.kdl\"\n}");
    dir.write("mid2.kdl", "experiment m2 {\n extends \"mid1.kdl\"\n}");
    dir.write("mid3.kdl", "experiment m3 {\n extends \"mid2.kdl\"\n}");
    for (base, message) in [
        ("mid1.kdl", "the base `mid1.kdl` is not a valid experiment: it extends `broken.kdl`, which has 1 error"),
        ("mid2.kdl", "the base `mid2.kdl` is not a valid experiment: it extends `broken.kdl` through 1 file with no error of its own, and `broken.kdl` has 1 error"),
        ("mid3.kdl", "the base `mid3.kdl` is not a valid experiment: it extends `broken.kdl` through 2 files with no error of their own, and `broken.kdl` has 1 error"),
    ] {
        let child = dir.write("chained.kdl", &format!("experiment c {{\n extends \"{base}\"\n}}"));
        let d = failure(&child);
        assert_eq!(d.codes(), ["ijepa::dsl::base_invalid"]);
        assert_eq!(d.errors()[0].to_string().replace(&format!("{}/", dir.0.display()), ""), message);
        let text = d.render_plain();
        assert_eq!(text.matches("base_invalid").count(), 1, "{text}");
        assert_eq!(text.matches("is not a valid experiment").count(), 1, "{text}");
        assert!(text.contains("broken.kdl has 1 error") && text.contains(" 2 |  epochs 0") && text.contains("broken.kdl`: its errors follow"), "{text}");
    }
    // a base of more errors than are listed is said to have all of them (55: it said 51, the
    // 50 listed and the line counting the rest)
    let many: String = (0..55).map(|i| format!(" unknown{i} 1\n")).collect();
    dir.write("many.kdl", &format!("experiment many {{\n{many}}}"));
    let child = dir.write("chained.kdl", "experiment c {\n extends \"many.kdl\"\n}");
    assert!(failure(&child).errors()[0].to_string().ends_with("is not a valid experiment (55 errors)"), "{}", failure(&child).errors()[0]);
    let child = dir.write("chained.kdl", "experiment c {\n extends \"mid4.kdl\"\n}");
    dir.write("mid4.kdl", "experiment m4 {\n extends \"mid3.kdl\"\n epochs -1\n}");
    let d = failure(&child);
    let shown = |e: &ijepa_dsl::DslError| e.to_string().replace(&format!("{}/", dir.0.display()), "");
    assert_eq!(shown(&d.errors()[0]), "the base `mid4.kdl` is not a valid experiment (2 errors)");
    let ijepa_dsl::DslError::BaseInvalid { base, .. } = &d.errors()[0] else { panic!("{}", d.render_plain()) };
    let inner: Vec<String> = base[0].errors().iter().map(shown).collect();
    assert!(inner.iter().any(|m| m.starts_with("the base `mid3.kdl` is not a valid experiment: it extends `broken.kdl` through 2 files")), "{inner:?}");
    // a base with a sweep cannot be extended
    dir.write("swept.kdl", "experiment s\nsweep { seeds 1 2 }");
    let child = dir.write("child3.kdl", "experiment c {\n extends \"swept.kdl\"\n}");
    assert_eq!(failure(&child).codes(), ["ijepa::dsl::invalid_value"]);
}

#[test]
fn parse_str_resolves_extends_beside_the_named_file() {
    let dir = Dir::new("parse-str");
    dir.write("base.kdl", BASE);
    let name = dir.0.join("virtual.kdl").display().to_string();
    let e = ijepa_dsl::parse_str(&name, "experiment v {\n extends \"base.kdl\"\n}")
        .map_err(|d| d.render_plain())
        .expect("valid");
    assert_eq!((e.name.as_str(), e.seed), ("v", 3));
}

#[test]
fn a_grid_is_the_product_of_its_lists() {
    let s = sweep(&format!(
        "{TINY}\nsweep \"grid\" {{\n vary \"mask.targets.scale\" {{\n - 0.075 0.2\n - 0.1 0.15\n - 0.15 0.2\n }}\n vary \"optimizer.lr.peak\" 1e-3 2e-3\n}}"
    ));
    assert_eq!((s.mode, s.points.len(), s.name.as_str()), (Some(SweepMode::Grid), 6, "tiny"));
    let names: Vec<&str> = s.points.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "targets-scale-0.075-0.2_lr-peak-0.001",
            "targets-scale-0.075-0.2_lr-peak-0.002",
            "targets-scale-0.1-0.15_lr-peak-0.001",
            "targets-scale-0.1-0.15_lr-peak-0.002",
            "targets-scale-0.15-0.2_lr-peak-0.001",
            "targets-scale-0.15-0.2_lr-peak-0.002",
        ]
    );
    let p = &s.points[3];
    assert_eq!(p.experiment.name, "tiny-targets-scale-0.1-0.15_lr-peak-0.002");
    assert_eq!(
        (p.experiment.mask.target_scale, p.experiment.optimizer.lr.peak),
        ((0.1, 0.15), 2e-3)
    );
    assert_eq!(p.varied["mask.targets.scale"], "0.1 0.15");
    assert_eq!(p.varied["optimizer.lr.peak"], "2e-3");
    assert_eq!(p.varied.len(), 2);
    // everything else is the base's; no seeds: the experiment's seed
    assert_eq!(p.experiment.seed, 7);
    assert_eq!(
        Experiment {
            name: s.base.name.clone(),
            mask: s.base.mask.clone(),
            optimizer: s.base.optimizer.clone(),
            ..p.experiment.clone()
        },
        s.base
    );
    assert_eq!(s.base.mask.target_scale, (0.15, 0.2));
}

#[test]
fn seeds_cross_every_point() {
    let s = sweep(&format!("{TINY}\nsweep \"zip\" {{\n vary \"data.batch-size\" 8 16\n vary \"optimizer.lr.peak\" 1e-3 2e-3\n seeds 0 1 2\n}}"));
    assert_eq!((s.mode, s.points.len()), (Some(SweepMode::Zip), 6));
    assert_eq!(s.points[0].name, "data-batch-size-8_lr-peak-0.001_seed-0");
    assert_eq!(s.points[5].name, "data-batch-size-16_lr-peak-0.002_seed-2");
    let p = &s.points[4];
    assert_eq!(
        (p.experiment.data.batch_size, p.experiment.optimizer.lr.peak, p.experiment.seed),
        (16, 2e-3, 1)
    );
    assert_eq!(p.varied["seed"], "1");
    // seeds alone
    let s = sweep(&format!("{TINY}\nsweep {{ seeds 5 6 }}"));
    let seeds: Vec<u64> = s.points.iter().map(|p| p.experiment.seed).collect();
    assert_eq!((s.mode, seeds), (Some(SweepMode::Grid), vec![5, 6]));
    assert_eq!(s.points[1].experiment.name, "tiny-seed-6");
    assert!(!s.warnings().iter().any(|w| w.contains("one seed")), "{:?}", s.warnings());
    // one seed listed is one seed: `seeds 3` (three seeds, as a count elsewhere) is said
    let w = sweep(&format!("{TINY}\nsweep {{ seeds 3 }}")).warnings();
    assert!(w.iter().any(|w| w.contains("lists one seed, 3") && w.ends_with("for 3 seeds write `seeds 0 1 2`")), "{w:?}");
    let w = sweep(&format!("{TINY}\nsweep {{ vary \"epochs\" 1 2; vary \"seed\" 4 }}")).warnings();
    assert!(w.iter().any(|w| w.contains("lists one seed, 4")), "{w:?}");
    // one seed that reads as no count (a seed written down on purpose beside a sweep): nothing
    for one in [0, 1] {
        let w = sweep(&format!("{TINY}\nsweep {{ vary \"epochs\" 1 2; seeds {one} }}")).warnings();
        assert!(!w.iter().any(|w| w.contains("one seed")), "{w:?}");
    }
}

#[test]
fn zip_lists_must_have_one_length() {
    let src = format!("{TINY}\nsweep \"zip\" {{\n vary \"data.batch-size\" 8 16 32\n vary \"optimizer.lr.peak\" 1e-3 2e-3\n}}");
    let d = sweep_err(&src);
    assert_eq!(d.codes(), ["ijepa::dsl::zip_length"]);
    assert_eq!(at(&src, &d, 0), "\"optimizer.lr.peak\"");
}

#[test]
fn a_zip_sweep_may_repeat_values_but_not_points() {
    // one setting changed at a time: each `vary` repeats its base value
    let src = format!(
        "{TINY}\nsweep \"zip\" {{\n vary \"optimizer.lr.peak\" 1e-3 1e-3 2e-3\n vary \"ema.start\" 0.996 0.99 0.996\n}}"
    );
    let s = sweep(&src);
    assert_eq!(s.points.len(), 3);
    assert_ne!(s.points[0].experiment.name, s.points[1].experiment.name);
    assert_eq!((s.points[1].experiment.optimizer.lr.peak, s.points[1].experiment.ema.start), (1e-3, 0.99));
    // the same tuple twice is the same run twice
    let src = format!("{TINY}\nsweep \"zip\" {{\n vary \"optimizer.lr.peak\" 1e-3 2e-3 1e-3\n vary \"ema.start\" 0.99 0.996 0.99\n}}");
    let d = sweep_err(&src);
    assert_eq!(d.codes(), ["ijepa::dsl::invalid_value"]);
    assert_eq!(at(&src, &d, 0), "1e-3");
    // a grid still refuses a value listed twice
    let src = format!("{TINY}\nsweep \"grid\" {{\n vary \"optimizer.lr.peak\" 1e-3 1e-3\n}}");
    assert_eq!(sweep_err(&src).codes(), ["ijepa::dsl::invalid_value"]);
    // ... also written once as an integer and once as a float, alone or in a pair
    let src = format!("{TINY}\nsweep \"grid\" {{\n vary \"optimizer.lr.peak\" 1 1.0\n}}");
    assert_eq!(sweep_err(&src).codes(), ["ijepa::dsl::invalid_value"]);
    let src = format!("{TINY}\nsweep \"grid\" {{\n vary \"data.crop-scale\" {{\n - 0.3 1.0\n - 0.3 1\n }}\n}}");
    assert_eq!(sweep_err(&src).codes(), ["ijepa::dsl::invalid_value"]);
    // two integers compare exactly (as f64 these two seeds are one number)
    let src = format!("{TINY}\nsweep \"grid\" {{\n vary \"seed\" 9007199254740992 9007199254740993\n}}");
    assert_eq!(sweep(&src).points.len(), 2);
    // a folder spelled two ways is one folder, as the stage hashes spell it (three points were
    // one pretraining under three labels); in a zip, as part of a repeated point
    let src = format!("{TINY}\nsweep \"grid\" {{\n vary \"data.root\" \"/d/fm\" \"/d/fm/\" \"/d//./fm\" \"fm\"\n}}");
    let d = sweep_err(&src);
    let text = d.render_plain();
    assert_eq!(d.codes(), ["ijepa::dsl::invalid_value", "ijepa::dsl::invalid_value"], "{text}");
    assert!(text.contains("`/d/fm/` is listed twice (as `/d/fm` first)") && text.contains("`/d//./fm` is listed twice (as `/d/fm` first)"), "{text}");
    let src = format!("{TINY}\nsweep \"zip\" {{\n vary \"data.test-root\" \"./t\" \"t/\"\n vary \"seed\" 1 1\n}}");
    assert_eq!(sweep_err(&src).codes(), ["ijepa::dsl::invalid_value"]);
    // ... where other strings stay as written
    let src = format!("{TINY}\nsweep \"grid\" {{\n vary \"data.root\" \"/d/fm\" \"/d/fm2\"\n vary \"mask\" \"random\" \"block\"\n}}");
    assert_eq!(sweep(&src).points.len(), 4);
}

#[test]
fn point_names_are_unique_and_folder_safe() {
    // file names with a slash, a colon and a space (a low-shot split file, which needs an
    // image folder)
    let folder = TINY.replace(
        "data \"fashion-mnist\" { crop-size 32; batch-size 16 }",
        "data \"image-folder\" root=\"/data/train\" { test-root \"/data/val\"; crop-size 32; batch-size 16 }\n    eval \"low-shot\"",
    );
    let s = sweep(&format!(
        "{folder}\nsweep {{\n vary \"eval.low-shot.split-file\" \"a/b.txt\" \"a:b.txt\" \"a b.txt\"\n vary \"encoder.width\" 96 192\n vary \"predictor.width\" 48 96\n vary \"device\" \"cpu\" \"cuda:0\"\n}}"
    ));
    assert_eq!(s.points.len(), 24);
    let mut names: Vec<&str> = s.points.iter().map(|p| p.name.as_str()).collect();
    for n in &names {
        assert!(n.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)), "{n}");
        assert!(!n.starts_with('.') && n.len() <= 80, "{n}");
    }
    // two settings named `width`: both get their full path
    assert_eq!(
        names[0],
        "low-shot-split-file-a-b.txt_encoder-width-96_predictor-width-48_device-cpu"
    );
    assert!(names
        .contains(&"low-shot-split-file-a-b.txt_encoder-width-96_predictor-width-48_device-cpu-2"));
    assert_eq!(s.points[1].varied["device"], "cuda:0");
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 24);
}

#[test]
fn a_bad_value_is_reported_at_its_point() {
    let src = format!(
        "{TINY}\nsweep \"grid\" {{\n vary \"mask.targets.scale\" {{\n - 0.1 0.15\n - 0.2 1.5\n }}\n vary \"epochs\" 1 2\n}}"
    );
    let d = sweep_err(&src);
    assert_eq!(d.codes(), ["ijepa::dsl::sweep_point"]);
    let text = d.render_plain();
    assert!(text.contains("sweep point 3 of 4 (`targets-scale-0.2-1.5_epochs-1`)"), "{text}");
    let ijepa_dsl::DslError::SweepPoint { errors, index, .. } = &d.errors()[0] else {
        panic!("wrapper")
    };
    assert_eq!(*index, 3);
    assert_eq!(errors.len(), 1, "reported once, not once per point");
    let e = &errors[0];
    assert_eq!(e.code_str(), "ijepa::dsl::out_of_range");
    assert_eq!(&src[e.offset()..e.offset() + 3], "1.5");
    // a wrong type, a value of the wrong shape
    let d = sweep_err(&format!("{TINY}\nsweep {{ vary \"data.crop-size\" 32 \"64\" }}"));
    assert_eq!(d.codes(), ["ijepa::dsl::sweep_point"]);
    assert!(d.render_plain().contains("wrong type for `data.crop-size`"));
    let d = sweep_err(&format!(
        "{TINY}\nsweep {{ vary \"mask.targets.scale\" {{ - 0.1 0.15; - 0.2 }} }}"
    ));
    assert!(
        d.render_plain().contains("`scale` is missing the argument HIGH"),
        "{}",
        d.render_plain()
    );
    // a rule across settings broken by a value, pointing at the value
    let src = format!("{TINY}\nsweep {{ vary \"data.crop-size\" 32 30 }}");
    let d = sweep_err(&src);
    let ijepa_dsl::DslError::SweepPoint { errors, .. } = &d.errors()[0] else { panic!("wrapper") };
    assert_eq!(errors[0].code_str(), "ijepa::dsl::patch_crop");
    assert!(errors.iter().any(|e| miette::Diagnostic::labels(e)
        .is_some_and(|mut l| l.any(|l| &src[l.offset()..l.offset() + l.len()] == "30"))));
}

#[test]
fn errors_of_every_point_are_plain_errors() {
    // the experiment's own crop does not fit its patch; the sweep is not to blame
    let d = sweep_err("experiment t {\n data fashion-mnist { crop-size 30 }\n encoder \"vit-tiny\" patch=4\n}\nsweep { seeds 1 2 }");
    assert_eq!(d.codes(), ["ijepa::dsl::patch_crop"]);
    // a setting's own error in the experiment is reported before any point is built
    let d = sweep_err(&format!("{}\nsweep {{ seeds 1 2 }}", TINY.replace("seed 7", "seed -7")));
    assert_eq!(d.codes(), ["ijepa::dsl::out_of_range"]);
}

#[test]
fn the_swept_setting_may_complete_the_experiment() {
    // the experiment alone breaks a rule (heads 5 do not divide 96) that every point fixes
    let s = sweep(&format!(
        "{}\nsweep {{ vary \"encoder.heads\" 3 4 }}",
        TINY.replace("heads=3 patch", "heads=5 patch")
    ));
    assert_eq!(s.points.len(), 2);
    assert_eq!(s.base.encoder.num_heads, 5);
    assert_eq!(s.points[1].experiment.encoder.num_heads, 4);
}

#[test]
fn unknown_paths_get_a_suggestion() {
    let src = format!("{TINY}\nsweep {{ vary \"mask.target.scale\" {{ - 0.1 0.15 }} }}");
    let d = sweep_err(&src);
    assert_eq!(d.codes(), ["ijepa::dsl::unknown_sweep_path"]);
    assert_eq!(at(&src, &d, 0), "\"mask.target.scale\"");
    assert!(d.render_plain().contains("did you mean `mask.targets.scale`?"));
    let d = sweep_err(&format!("{TINY}\nsweep {{ vary \"peak\" 1 }}"));
    assert!(d.render_plain().contains("`optimizer.lr.peak`"), "{}", d.render_plain());
    // a path that is not a string is said as `vary`'s first argument (it named an internal
    // `sweep.vary.#0.path`, with a preset's help)
    let text = sweep_err(&format!("{TINY}\nsweep {{ vary 1 2 }}")).render_plain();
    assert!(text.contains("wrong type for `vary`: expected a setting's path in quotes, found 1") && !text.contains("#0") && !text.contains("vit-tiny"), "{text}");
    // a node of several settings names them (it suggested `optimizer.eps`)
    let text = sweep_err(&format!("{TINY}\nsweep {{ vary \"optimizer.lr\" 1 2 }}")).render_plain();
    assert!(text.contains("`optimizer.lr` holds several settings:") && text.contains("`optimizer.lr.peak`") && !text.contains("eps"), "{text}");
    let d = sweep_err(&format!("{TINY}\nsweep {{ vary \"masks\" 1 }}"));
    assert_eq!(d.codes(), ["ijepa::dsl::unknown_sweep_path"]);
    // `mask` is the kind: a number is the wrong type of value for it
    let d = sweep_err(&format!("{TINY}\nsweep {{ vary \"mask\" 1 }}"));
    assert_eq!(d.codes(), ["ijepa::dsl::wrong_type"]);
}

#[test]
fn sweep_form_errors() {
    let codes = |body: &str| sweep_err(&format!("{TINY}\n{body}")).codes();
    assert_eq!(codes("sweep \"grid\""), ["ijepa::dsl::invalid_value"]);
    assert_eq!(codes("sweep \"random\" { seeds 1 }"), ["ijepa::dsl::unknown_value"]);
    assert_eq!(
        codes("sweep { vary \"mask.targets.scale\" 0.1 0.15 }"),
        ["ijepa::dsl::invalid_value"]
    );
    assert_eq!(codes("sweep { vary \"epochs\" 1 2 { - 3 } }"), ["ijepa::dsl::invalid_value"]);
    assert_eq!(codes("sweep { vary \"epochs\" }"), ["ijepa::dsl::missing_argument"]);
    assert_eq!(codes("sweep { vary \"epochs\" 1 2 1 }"), ["ijepa::dsl::invalid_value"]);
    assert_eq!(
        codes("sweep { vary \"epochs\" 1 2; vary \"epochs\" 3 }"),
        ["ijepa::dsl::duplicate_node"]
    );
    assert_eq!(codes("sweep { vary \"seed\" 1 2; seeds 3 4 }"), ["ijepa::dsl::duplicate_node"]);
    assert_eq!(codes("sweep { vary \"epochs\" { value 3 } }"), ["ijepa::dsl::unknown_node"]);
    assert_eq!(codes("sweep { vary \"epochs\" { - 3 x=1 } }"), ["ijepa::dsl::unknown_property"]);
    assert_eq!(codes("sweep { seeds 1 }\nsweep { seeds 2 }"), ["ijepa::dsl::duplicate_node"]);
    assert_eq!(codes("sweep { seeds 1; epochs 2 }"), ["ijepa::dsl::unknown_node"]);
    let many = "sweep { vary \"data.batch-size\" 1 2 3 4 5 6 7 8 9 10; vary \"epochs\" 1 2 3 4 5 6 7 8 9 10; vary \"seed\" 1 2 3 4 5 6 7 8 9 10; vary \"predictor.depth\" 1 2 3 4 5 6 7 8 9 10 11 }";
    assert_eq!(codes(many), ["ijepa::dsl::invalid_value"]);
}

#[test]
fn single_experiment_api_refuses_sweeps() {
    let src = format!("{TINY}\nsweep {{ seeds 0 1; vary \"epochs\" 1 2 }}");
    let d = ijepa_dsl::parse_str("s.kdl", &src).expect_err("a sweep");
    assert_eq!(d.codes(), ["ijepa::dsl::sweep_file"]);
    assert!(d.render_plain().contains("this file defines a sweep of 4 points; use load_study"));
    let dir = Dir::new("load-sweep");
    let path = dir.write("s.kdl", &src);
    assert_eq!(ijepa_dsl::load(&path).expect_err("a sweep").codes(), ["ijepa::dsl::sweep_file"]);
    let (s, text) = ijepa_dsl::load_study(&path).map_err(|d| d.render_plain()).expect("valid");
    assert_eq!((s.points.len(), text), (4, src));
}

#[test]
fn sweeps_reach_every_block() {
    let s = sweep(&format!(
        "{TINY}\nsweep \"zip\" {{\n vary \"encoder\" \"vit-tiny\" \"vit-small\"\n vary \"eval.linear.epochs\" 10 20\n vary \"ema.start\" 0.99 0.996\n vary \"mask.targets.count\" 2 3\n vary \"optimizer.betas\" {{ - 0.9 0.95; - 0.9 0.999 }}\n}}"
    ));
    let e = &s.points[1].experiment;
    // a preset keeps the experiment's patch
    assert_eq!(
        (e.encoder.preset.as_deref(), e.encoder.embed_dim, e.encoder.patch_size),
        (Some("vit-small"), 384, 4)
    );
    assert_eq!((e.evals.len(), e.evals[0].epochs), (1, 20));
    assert_eq!(
        (e.ema.start, e.mask.n_targets, e.optimizer.betas),
        (0.996, 3, (0.9, 0.999))
    );
    assert_eq!(s.points[0].experiment.ema.start, 0.99);
    // longer than 80 bytes: cut, with a hash of the whole name
    let n = &s.points[0].name;
    assert!(
        n.starts_with("encoder-vit-tiny_linear-epochs-10_ema-start-0.99_targets-count-"),
        "{n}"
    );
    assert_eq!(n.len(), 80);
    assert_ne!(n, &s.points[1].name);
}

/// The layout is the launch's: a sweep over it trained every point on the layout the study
/// was launched with, under the others' labels.
#[test]
fn a_sweep_over_the_layout_is_refused() {
    for path in ["distributed.gpus-per-node", "distributed.nodes"] {
        let src = format!("{TINY}\nsweep \"grid\" {{\n vary \"{path}\" 1 2\n}}");
        let d = sweep_err(&src);
        let text = d.render_plain();
        assert!(d.codes() == ["ijepa::dsl::invalid_value"] && text.contains("the launch's layout") && text.contains("one file per layout"), "{text}");
    }
    // and the process group's, in a grid or a zip: one group for every point (each trained
    // with the first point's timeout, a zip's point "each with its own" included)
    for (path, values) in [("distributed.timeout", "\"30m\" \"1h\""), ("distributed.backend", "\"gloo\" \"nccl\"")] {
        for mode in ["grid", "zip"] {
            let src = format!("{TINY}\nsweep \"{mode}\" {{\n vary \"epochs\" 1 2\n vary \"{path}\" {values}\n}}");
            let d = sweep_err(&src);
            let text = d.render_plain();
            assert!(d.codes() == ["ijepa::dsl::invalid_value"] && text.contains(&format!("`{path}` is the process group's")), "{mode} {path}: {text}");
        }
    }
    // and the SLURM job's settings: one script for every point (it wrote point 0's)
    let src = format!("{TINY}\nsweep \"grid\" {{\n vary \"distributed.slurm.time\" \"10\" \"600\"\n}}");
    let text = sweep_err(&src).render_plain();
    assert!(text.contains("`distributed.slurm.time` is the SLURM job's") && text.contains("one file per job setting"), "{text}");
    // and what no stage counts (logging, checkpoints, loader threads, the launch): its points
    // shared one pretraining, run with one of the values, the others' labels untrue
    for (path, values) in [
        ("log-every", "1 2"),
        ("checkpoint.keep-every", "1 5"),
        ("checkpoint.every-steps", "0 10"),
        ("data.workers", "1 2"),
        ("data.prefetch", "1 2"),
        ("distributed.launcher", "\"slurm\" \"torchrun\""),
    ] {
        let src = format!("{TINY}\nsweep \"grid\" {{\n vary \"{path}\" {values}\n}}");
        let d = sweep_err(&src);
        let text = d.render_plain();
        assert!(
            d.codes() == ["ijepa::dsl::invalid_value"] && text.contains(&format!("`{path}` changes how a run is carried out")) && text.contains("no stage counts it"),
            "{path}: {text}"
        );
    }
    // in a zip beside a counted setting each point is a pretraining of its own, with its value
    let s = sweep(&format!("{TINY}\nsweep \"zip\" {{\n vary \"epochs\" 8 9\n vary \"checkpoint.every-steps\" 500 0\n}}"));
    assert_eq!((s.points[0].experiment.checkpoint.every_steps, s.points[1].experiment.checkpoint.every_steps), (500, 0));
    // ... but two points that differ in it alone are one pretraining: said
    let src = format!("{TINY}\nsweep \"zip\" {{\n vary \"epochs\" 8 9 8\n vary \"log-every\" 1 1 2\n}}");
    let d = sweep_err(&src);
    let text = d.render_plain();
    assert!(d.codes() == ["ijepa::dsl::invalid_value"] && text.contains("point 3 differs from point 1 only in `log-every`, which no stage counts"), "{text}");
    assert_eq!(at(&src, &d, 0), "2");
    // nor beside an evaluation's setting alone: the points share the pretraining, which ran
    // with the first point's value without a word
    let with_knn = TINY.trim_end().strip_suffix('}').map(|t| format!("{t}    eval \"knn\"\n}}")).unwrap();
    let src = format!("{with_knn}\nsweep \"zip\" {{\n vary \"log-every\" 1 100\n vary \"eval.knn.k\" 5 6\n}}");
    let d = sweep_err(&src);
    let said = d.errors().iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n");
    assert!(d.codes() == ["ijepa::dsl::invalid_value"] && said.contains("points 1 and 2 share one pretraining (they differ only in their evaluations), which runs once, with point 1's `log-every`: point 2's is not used"), "{said}");
    assert_eq!(at(&src, &d, 0), "100");
    // the peak learning rate varied as `peak=` and as `blr=`: the last `vary` won, silently
    for mode in ["grid", "zip"] {
        let src = format!("{TINY}\nsweep \"{mode}\" {{\n vary \"optimizer.lr.blr\" 1e-3 2e-3\n vary \"optimizer.lr.peak\" 5e-4 1e-3\n}}");
        let d = sweep_err(&src);
        let said = d.errors().iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n");
        assert!(said.contains("`optimizer.lr.blr` and `optimizer.lr.peak` both set the peak learning rate"), "{mode}: {said}");
    }
    // the same value of it beside the evaluations is an evaluation sweep
    let s = sweep(&format!("{with_knn}\nsweep \"zip\" {{\n vary \"log-every\" 1 1\n vary \"eval.knn.k\" 5 6\n}}"));
    assert_eq!(s.points.len(), 2);
}

#[test]
fn a_sweep_over_mask_kinds_and_targets() {
    let s = sweep(&format!(
        "{TINY}\nsweep \"grid\" {{\n vary \"mask\" \"multi-block\" \"rasterized\" \"block\" \"random\"\n vary \"target\" \"representation\" \"pixels\"\n}}"
    ));
    assert_eq!(s.points.len(), 8);
    let names: Vec<&str> = s.points.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names[0], "mask-multi-block_target-representation");
    assert_eq!(names[7], "mask-random_target-pixels");
    let kinds: Vec<_> = s.points.iter().map(|p| p.experiment.mask.kind.name()).collect();
    assert_eq!(kinds, ["multi-block", "multi-block", "rasterized", "rasterized", "block", "block", "random", "random"]);
    let block = &s.points[4].experiment.mask;
    assert_eq!((block.n_targets, block.target_scale), (1, (0.6, 0.6)));
    assert_eq!(s.points[6].experiment.mask.ratio, 0.6);
    let masking = sweep(&format!("{TINY}\nsweep {{\n vary \"target.masking\" \"output\" \"input\"\n}}"));
    assert_eq!(masking.points[1].name, "target-masking-input");
    assert_eq!(masking.points[1].experiment.target.masking, ijepa_dsl::config::TargetMasking::Input);
}

#[test]
fn a_sweep_over_an_extended_experiment() {
    let dir = Dir::new("sweep-extends");
    let base = dir.write("base.kdl", BASE);
    let path = dir.write(
        "scales.kdl",
        "experiment \"fmnist-target-scale\" {\n extends \"base.kdl\"\n epochs 2\n mask multi-block { min-keep 3 }\n}\nsweep {\n vary \"mask.targets.scale\" {\n - 0.075 0.2\n - 0.15 0.2\n }\n}",
    );
    let s = study(&path);
    assert_eq!(s.files, vec![path.clone(), base]);
    assert_eq!((s.name.as_str(), s.points.len()), ("fmnist-target-scale", 2));
    let e = &s.points[0].experiment;
    assert_eq!(
        (e.name.as_str(), e.epochs, e.data.crop_size, e.mask.target_scale),
        ("fmnist-target-scale-targets-scale-0.075-0.2", 2, 32, (0.075, 0.2))
    );
}

/// The mask-scale sweep of docs/language.md (the shape of the paper's Table 8).
#[test]
fn the_documented_sweep_parses() {
    let docs = include_str!("../../docs/language.md");
    let start =
        docs.find("experiment \"fmnist-target-scale\"").expect("the example is in the docs");
    let end = start + docs[start..].find("```").expect("end of the example");
    let example = &docs[start..end];
    let dir = Dir::new("docs");
    dir.write("quickstart.kdl", include_str!("../../experiments/quickstart.kdl"));
    let path = dir.write("fmnist-target-scale.kdl", example);
    let s = study(&path);
    let names: Vec<&str> = s.points.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "targets-scale-0.075-0.2",
            "targets-scale-0.1-0.2",
            "targets-scale-0.125-0.2",
            "targets-scale-0.15-0.2",
        ]
    );
    // the shipped example is the documented one
    let shipped = study(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments/fmnist-target-scale.kdl"));
    assert_eq!(shipped.points.len(), 4);
    for (a, b) in s.points.iter().zip(&shipped.points) {
        assert_eq!(a.name, b.name);
        assert_eq!(a.experiment, b.experiment);
    }
}

/// A sweep over recipes whose file leaves the optimizer and the data pipeline to each recipe's
/// defaults compares more than the methods: said, setting by setting (the report showed
/// `recipe=mae` alone); written in the experiment, the points agree and nothing is said. A
/// point compares with those that vary nothing else, and DINO's multi-crop reads no crop or
/// flip of the data block.
#[test]
fn a_methods_sweep_says_which_settings_its_recipes_default_apart() {
    let tiny = TINY.replace("    seed 7\n", "    seed 7\n    dino { local-size 12; }\n    optimizer \"adamw\" { lr start=1e-4 peak=5e-4 final=1e-6 warmup-epochs=1; weight-decay start=0.04 final=0.4 }\n");
    let s = sweep(&format!("{tiny}\nsweep \"grid\" {{ vary \"recipe\" \"ijepa\" \"mae\" \"dino\"; seeds 0 1 }}"));
    let apart = s.recipe_defaults_apart();
    assert_eq!(
        apart,
        [
            "optimizer betas: dino 0.9 0.999, ijepa 0.9 0.999, mae 0.9 0.95",
            "data crop-scale: ijepa 0.3 1, mae 0.2 1",
            "data horizontal-flip: ijepa 0, mae 0.5",
            "data interpolation: dino bicubic, ijepa bilinear, mae bicubic",
        ],
        "{apart:#?}"
    );
    let held = tiny.replace("seed 7\n", "seed 7\n    data \"fashion-mnist\" { crop-size 32; batch-size 16; crop-scale 0.3 1.0; horizontal-flip 0; interpolation \"bicubic\" }\n").replace("    data \"fashion-mnist\" { crop-size 32; batch-size 16 }\n", "");
    let held = held.replace("weight-decay start=0.04 final=0.4 }", "weight-decay start=0.04 final=0.4; betas 0.9 0.95 }").replace("    dino { local-size 12; }\n", "");
    let s = sweep(&format!("{held}\nsweep \"grid\" {{ vary \"recipe\" \"ijepa\" \"mae\" }}"));
    assert_eq!(s.recipe_defaults_apart(), Vec::<String>::new());
    // a zip that gives each method its own epochs still trains them on other betas: said (it
    // compared only points that varied the recipe alone, and never a real methods sweep)
    let tiny = tiny.replace("    dino { local-size 12; }\n", "");
    let s = sweep(&format!("{tiny}\nsweep \"zip\" {{ vary \"recipe\" \"ijepa\" \"mae\"; vary \"epochs\" 8 9 }}"));
    assert!(s.recipe_defaults_apart().contains(&"optimizer betas: ijepa 0.9 0.999, mae 0.9 0.95".to_string()), "{:?}", s.recipe_defaults_apart());
    // a setting the sweep varies itself is the file's choice per point
    let s = sweep(&format!("{tiny}\nsweep \"zip\" {{ vary \"recipe\" \"ijepa\" \"mae\"; vary \"optimizer.betas\" {{ - 0.9 0.999; - 0.9 0.95; }} }}"));
    assert!(!s.recipe_defaults_apart().iter().any(|l| l.starts_with("optimizer betas")), "{:?}", s.recipe_defaults_apart());
}

/// `vary "encoder"` starts each point from its preset's shape (only `patch` stays): the shape
/// the experiment writes beside its preset (`depth=1`), or in place of one, is dropped at the
/// points, which `check` and `plan` say (a 1-block `encoder "vit-tiny" depth=1` swept over
/// "vit-tiny" trained 12 blocks, and `check` showed the file's 1). Varied beside the preset,
/// the setting is the sweep's own; a file that writes the preset alone drops nothing, nor
/// does one that writes its shape without a preset (the presets replace it by design), except
/// an MLP ratio other than the presets' 4.
#[test]
fn a_preset_sweep_says_which_written_shape_its_points_drop() {
    let beside = TINY.replace("encoder width=96 depth=4 heads=3 patch=4", "encoder \"vit-tiny\" depth=1 patch=4");
    let s = sweep(&format!("{beside}\nsweep {{ vary \"encoder\" \"vit-tiny\" \"vit-small\" }}"));
    assert_eq!(s.points[0].experiment.encoder.depth, 12, "the documented rule this warning is about");
    let w = s.encoder_shape_dropped().expect("depth=1 is dropped");
    assert!(w.contains("the experiment's depth=1 is not applied at them"), "{w}");
    // `vary "encoder.preset"` is named as written
    let s = sweep(&format!("{beside}\nsweep {{ vary \"encoder.preset\" \"vit-small\" }}"));
    assert!(s.encoder_shape_dropped().expect("depth=1 is dropped").starts_with("the points of `vary \"encoder.preset\"`"));
    // no preset: presets replace the file's own shape, what varying them means; nothing said
    assert_eq!(sweep(&format!("{TINY}\nsweep {{ vary \"encoder\" \"vit-tiny\" }}")).encoder_shape_dropped(), None);
    // ... but of an MLP ratio other than every preset's 4 (it was lost unsaid)
    let ratio = TINY.replace("encoder width=96 depth=4 heads=3 patch=4", "encoder width=96 depth=4 heads=3 patch=4 mlp-ratio=2.0");
    let s = sweep(&format!("{ratio}\nsweep {{ vary \"encoder\" \"vit-tiny\" }}"));
    assert_eq!(s.points[0].experiment.encoder.mlp_ratio, 4.0, "the documented rule this warning is about");
    let w = s.encoder_shape_dropped().expect("mlp-ratio=2 is dropped");
    assert!(w.contains("the experiment's mlp-ratio=2 is not applied at them"), "{w}");
    // varied beside the preset: kept, nothing said
    let s = sweep(&format!("{beside}\nsweep {{ vary \"encoder\" \"vit-tiny\" \"vit-small\"; vary \"encoder.depth\" 1 }}"));
    assert_eq!(s.points[1].experiment.encoder.depth, 1);
    assert_eq!(s.encoder_shape_dropped(), None);
    // the preset alone, or a sweep that does not vary the encoder: nothing to say
    let alone = TINY.replace("encoder width=96 depth=4 heads=3 patch=4", "encoder \"vit-tiny\" patch=4");
    assert_eq!(sweep(&format!("{alone}\nsweep {{ vary \"encoder\" \"vit-tiny\" \"vit-small\" }}")).encoder_shape_dropped(), None);
    assert_eq!(sweep(&format!("{TINY}\nsweep {{ vary \"encoder.depth\" 2 3 }}")).encoder_shape_dropped(), None);
}
