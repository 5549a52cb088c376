//! Unit tests of the schema: every node, its defaults, and the error code of each mistake.

use std::path::PathBuf;

use crate::config::*;
use crate::{parse_spanned, parse_str};

fn ok(src: &str) -> Experiment {
    match parse_str("test.kdl", src) {
        Ok(e) => e,
        Err(d) => panic!("expected success, got:\n{}", d.render_plain()),
    }
}

/// Wraps `body` in an experiment block.
fn exp(body: &str) -> Experiment {
    ok(&format!("experiment \"t\" {{\n{body}\n}}\n"))
}

fn codes(src: &str) -> Vec<String> {
    match parse_str("test.kdl", src) {
        Ok(_) => vec![],
        Err(d) => d
            .codes()
            .into_iter()
            .map(|c| c.trim_start_matches("ijepa::dsl::").to_string())
            .collect(),
    }
}

/// Codes of errors for `body` inside an experiment.
fn errs(body: &str) -> Vec<String> {
    codes(&format!("experiment \"t\" {{\n{body}\n}}\n"))
}

/// A fresh folder `ijepa-dsl-<tag>-<pid>` under the temporary folder holding `files`
/// (name, text): a file and the bases it extends.
fn files_in(tag: &str, files: &[(&str, &str)]) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ijepa-dsl-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    for (name, text) in files {
        std::fs::write(d.join(name), text).unwrap();
    }
    d
}

#[test]
fn empty_experiment_is_all_defaults() {
    assert_eq!(ok("experiment \"x\""), Experiment::with_defaults("x"));
    assert_eq!(ok("experiment x {}"), Experiment::with_defaults("x"));
}

#[test]
fn scalars() {
    let e = exp("recipe \"ijepa\"\nseed 42\nloss \"l2\"\nepochs 7\nipe-scale 1.25\nprecision fp32\ndevice \"cuda:1\"\nlog-every 10");
    assert_eq!(e.recipe, "ijepa");
    assert_eq!(e.seed, 42);
    assert_eq!(e.loss, LossKind::L2);
    assert_eq!(e.epochs, 7);
    assert_eq!(e.ipe_scale, 1.25);
    assert_eq!(e.precision, Precision::Fp32);
    assert_eq!(e.device, "cuda:1");
    assert_eq!(e.log_every, 10);
    assert_eq!(exp("loss \"smooth-l1\"").loss, LossKind::SmoothL1);
    assert_eq!(exp("precision \"bf16\"").precision, Precision::Bf16);
    for d in ["auto", "cpu", "cuda", "cuda:0"] {
        assert_eq!(exp(&format!("device \"{d}\"")).device, d);
    }
}

#[test]
fn integers_are_accepted_where_floats_belong() {
    assert_eq!(exp("ipe-scale 2").ipe_scale, 2.0);
    assert_eq!(exp("ema start=1 final=1").ema.start, 1.0);
    assert_eq!(exp("data fashion-mnist { crop-scale 1 1 }").data.crop_scale, (1.0, 1.0));
}

#[test]
fn floats_are_rejected_where_integers_belong() {
    assert_eq!(errs("epochs 2.0"), ["wrong_type"]);
    assert_eq!(errs("data fashion-mnist { batch-size 1.5 }"), ["wrong_type"]);
    assert_eq!(errs("encoder \"vit-tiny\" patch=4.0"), ["wrong_type"]);
}

#[test]
fn data_block() {
    let e = exp(
        "data \"fashion-mnist\" root=\"/usr/share/datasets/fashion-mnist\" {\n crop-size 32\n \
         crop-scale 0.5 0.9\n batch-size 16\n workers 0\n prefetch 2\n limit 1000\n}\n\
         encoder \"vit-tiny\" patch=4\nmask multi-block { min-keep 4 }",
    );
    let d = &e.data;
    assert_eq!(d.dataset, DatasetKind::FashionMnist);
    assert_eq!(d.source, DataSource::Path(PathBuf::from("/usr/share/datasets/fashion-mnist")));
    assert_eq!((d.crop_size, d.crop_scale, d.batch_size), (32, (0.5, 0.9), 16));
    assert_eq!((d.workers, d.prefetch, d.limit), (0, 2, Some(1000)));
    // Nothing written: defaults, embedded source.
    let d = exp("data \"fashion-mnist\"").data;
    assert_eq!(d, DataConfig::default());
    assert_eq!(d.source, DataSource::Embedded);
}

#[test]
fn encoder_presets_and_overrides() {
    let e = exp("encoder \"vit-tiny\"").encoder;
    assert_eq!(e, EncoderConfig::preset("vit-tiny", 16).unwrap());
    assert_eq!(e.patch_size, crate::DEFAULT_PATCH);
    let e = exp("encoder \"vit-base\" patch=16 depth=6 mlp-ratio=2 rescale-init=#true").encoder;
    assert_eq!(e.preset.as_deref(), Some("vit-base"));
    assert_eq!((e.embed_dim, e.depth, e.num_heads, e.mlp_ratio), (768, 6, 12, 2.0));
    assert!(e.rescale_init);
    for (name, ..) in VIT_PRESETS {
        let e = exp(&format!("encoder \"{name}\" patch=14")).encoder;
        assert_eq!(e.preset.as_deref(), Some(*name));
    }
}

#[test]
fn encoder_without_preset() {
    let e = exp("data fashion-mnist { crop-size 32 }\nencoder width=96 depth=4 heads=3 patch=4\nmask multi-block { min-keep 4 }").encoder;
    assert_eq!(e.preset, None);
    assert_eq!((e.patch_size, e.embed_dim, e.depth, e.num_heads, e.mlp_ratio), (4, 96, 4, 3, 4.0));
    assert!(!e.rescale_init);
    assert_eq!(errs("encoder width=96 patch=16"), ["missing_property", "missing_property"]);
}

#[test]
fn predictor() {
    let p = exp("predictor depth=4 width=96 heads=3 mlp-ratio=4.0").predictor;
    assert_eq!((p.depth, p.embed_dim, p.num_heads, p.mlp_ratio), (4, 96, Some(3), 4.0));
    assert_eq!(exp("predictor").predictor, PredictorConfig::default());
    assert_eq!(exp("predictor depth=6").predictor.depth, 6);
}

#[test]
fn mask_block() {
    let m = exp("mask \"multi-block\" {\n targets count=2 { scale 0.1 0.3; aspect 0.5 2 }\n \
         context count=1 { scale 0.8 1.0; aspect 0.9 1.1 }\n min-keep 5\n allow-overlap #true\n \
         corner \"unbiased\"\n aspect-sampling \"independent\"\n}")
    .mask;
    assert_eq!((m.n_targets, m.target_scale, m.target_aspect), (2, (0.1, 0.3), (0.5, 2.0)));
    assert_eq!((m.n_context, m.context_scale, m.context_aspect), (1, (0.8, 1.0), (0.9, 1.1)));
    assert_eq!(m.min_keep, 5);
    assert!(m.allow_overlap);
    assert_eq!(m.corner, CornerSampler::Unbiased);
    assert_eq!(m.aspect_sampling, AspectSampling::Independent);
    assert_eq!(exp("mask \"multi-block\"").mask, MaskConfig::default());
    // A partial block keeps the other defaults.
    let m = exp("mask \"multi-block\" { targets count=3 }").mask;
    assert_eq!((m.n_targets, m.target_scale), (3, (0.15, 0.2)));
    let m = exp(
        "mask \"multi-block\" { corner official; aspect-sampling shared; allow-overlap #false }",
    )
    .mask;
    assert_eq!(m, MaskConfig::default());
}

#[test]
fn optimizer_block() {
    let o = exp("optimizer \"adamw\" {\n lr start=1e-4 peak=2e-3 final=0 warmup-epochs=5\n \
         weight-decay start=0.05 final=0.1 schedule=\"linear\"\n betas 0.8 0.95\n eps 1e-6\n}")
    .optimizer;
    assert_eq!((o.lr.start, o.lr.peak, o.lr.final_, o.lr.warmup_epochs), (1e-4, 2e-3, 0.0, 5.0));
    assert_eq!((o.weight_decay.start, o.weight_decay.final_), (0.05, 0.1));
    assert_eq!(o.weight_decay.shape, WdShape::Linear);
    assert_eq!((o.betas, o.eps), ((0.8, 0.95), 1e-6));
    assert_eq!(exp("optimizer \"adamw\"").optimizer, OptimizerConfig::default());
    assert_eq!(exp("optimizer adamw { lr peak=5e-4 }").optimizer.lr.start, 2e-4);
}

#[test]
fn base_learning_rate_scales_with_the_global_batch() {
    let l = exp("optimizer adamw { lr start=0 blr=1.5e-4 final=0 warmup-epochs=40 }").optimizer.lr;
    assert_eq!(l.blr, Some(1.5e-4));
    // MAE's rule: 1.5e-4 x 4096 / 256 = 2.4e-3
    assert!((l.peak_for(4096) - 2.4e-3).abs() < 1e-15);
    assert!((l.peak_for(32) - 1.875e-5).abs() < 1e-18);
    // without blr, the peak is the written one whatever the batch
    let p = exp("optimizer adamw { lr peak=5e-4 }").optimizer.lr;
    assert_eq!((p.blr, p.peak_for(4096)), (None, 5e-4));
    // an experiment without blr serialises as before (its stage hash does not move)
    assert!(!serde_json::to_string(&p).unwrap().contains("blr"));
    assert_eq!(errs("optimizer adamw { lr peak=1e-3 blr=1e-4 }"), ["invalid_value"]);
    assert_eq!(errs("optimizer adamw { lr blr=0 }"), ["out_of_range"]);
}

#[test]
fn ema() {
    let e = exp("ema start=0.99 final=0.999").ema;
    assert_eq!((e.start, e.final_), (0.99, 0.999));
    assert_eq!(exp("ema").ema, EmaConfig::default());
}

#[test]
fn comments_and_slashdash_are_ignored() {
    let e = exp("/- epochs 1\nepochs 3 // three\n/* block */ seed 1");
    assert_eq!((e.epochs, e.seed), (3, 1));
}

#[test]
fn quickstart_parses() {
    let src = include_str!("../../experiments/quickstart.kdl");
    let e = ok(src);
    assert_eq!(e.name, "quickstart");
    assert_eq!(e.data.source, DataSource::Embedded);
    assert_eq!((e.data.crop_size, e.data.batch_size, e.data.workers), (28, 32, 2));
    assert_eq!(
        (e.encoder.embed_dim, e.encoder.depth, e.encoder.num_heads, e.encoder.patch_size),
        (128, 4, 4, 4)
    );
    assert_eq!((e.predictor.depth, e.predictor.embed_dim, e.predictor.num_heads), (2, 64, Some(4)));
    assert_eq!((e.mask.min_keep, e.mask.target_scale), (3, (0.125, 0.2)));
    assert_eq!(e.optimizer.lr.warmup_epochs, 1.0);
    assert_eq!(
        (e.epochs, e.precision, e.device.as_str(), e.log_every),
        (10, Precision::Auto, "auto", 1)
    );
    let m = e.monitor.expect("the quickstart monitors learning");
    assert_eq!((m.every, m.images, m.k), (4, 1000, 20));
}

#[test]
fn monitor_reads_and_checks_its_settings() {
    let e = exp("monitor every=2 images=500 k=10 rank-floor=1.5 spread-floor=0.1");
    let m = e.monitor.expect("a monitor");
    assert_eq!((m.every, m.images, m.k, m.rank_floor, m.spread_floor), (2, 500, 10, 1.5, 0.1));
    assert_eq!(exp("monitor").monitor, Some(crate::config::MonitorConfig::default()));
    assert_eq!(exp("epochs 3").monitor, None, "off unless asked for");
    assert_eq!(errs("monitor every=0"), ["out_of_range"]);
    assert_eq!(errs("monitor images=10"), ["out_of_range"]);
    assert!(parse_str("t.kdl", "experiment \"t\" {\nmonitor images=0 k=20\n}\n").unwrap_err().render_plain().contains("must be at least 21"));
    // (more than k: said where images= is written, as the least it may be)
    assert_eq!(errs("monitor images=50 k=50"), ["out_of_range"]);
    assert_eq!(errs("monitor images=20"), ["out_of_range"]);
    assert_eq!(errs("monitor images=20 k=19"), Vec::<String>::new());
    assert_eq!(errs("monitor k=2000"), ["out_of_range"]);
    // (k + 1 wrapped to 0 at the largest k: images=40 passed, and the run failed in libtorch)
    assert_eq!(errs("monitor images=40 k=18446744073709551615"), ["out_of_range"]);
    // (below the floor of 20, lowering k cannot help: not advised)
    let text = |src: &str| parse_str("t.kdl", &format!("experiment \"t\" {{\n{src}\n}}\n")).map_or_else(|d| d.render_plain(), |_| String::new());
    assert!(text("monitor k=5 images=5").contains("must be at least 20") && !text("monitor k=5 images=5").contains("lower k="));
    assert!(text("monitor images=16").contains("must be at least 21") && !text("monitor images=16").contains("lower k="));
    assert!(text("monitor images=20").contains("must be at least 21") && text("monitor images=20").contains("lower k="));
    // images= from a base file is the base's, not "the default" (2000)
    let d = std::env::temp_dir().join(format!("ijepa-dsl-monitor-base-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("base.kdl"), "experiment \"b\" {\n monitor every=1 images=24 k=5\n}\n").unwrap();
    std::fs::write(d.join("x.kdl"), "experiment \"x\" {\n extends \"base.kdl\"\n monitor k=30\n}\n").unwrap();
    let text = crate::load_study(&d.join("x.kdl")).expect_err("24 images, k=30").render_plain();
    assert!(text.contains("images=24 (the base file's) must be at least 31") && !text.contains("(the default)"), "{text}");
    let _ = std::fs::remove_dir_all(&d);
    // a sweep's point sets images= and k= in turn: checked on the point as a whole, whatever
    // the order of the `vary` lines (images=21 was refused against the file's k=30)
    for vary in ["vary \"monitor.images\" 21 40\n vary \"monitor.k\" 5 30", "vary \"monitor.k\" 5 30\n vary \"monitor.images\" 21 40"] {
        let src = format!("experiment \"s\" {{\n monitor images=40 k=30\n}}\nsweep \"zip\" {{\n {vary}\n}}\n");
        assert!(crate::parse_study("s.kdl", &src).is_ok(), "{vary}");
        let bad = src.replace("21 40", "21 30");
        assert!(crate::parse_study("s.kdl", &bad).expect_err("images=30 with k=30").render_plain().contains("must be at least 31"), "{vary}");
    }
    assert_eq!(errs("monitor rank-floor=-1"), ["out_of_range"]);
    // floors a run cannot meet (warned "collapsing" at every epoch of a healthy run)
    assert_eq!(errs("monitor spread-floor=1"), ["out_of_range"]);
    assert_eq!(errs("monitor spread-floor=1.5"), ["out_of_range"]);
    assert_eq!(errs("encoder width=32 depth=2 heads=2 patch=4\n    monitor rank-floor=32"), ["invalid_value"]);
    assert_eq!(errs("encoder width=32 depth=2 heads=2 patch=4\n    monitor rank-floor=31.5"), Vec::<String>::new());
    assert_eq!(errs("monitor images=20 k=5 rank-floor=20"), ["invalid_value"]);
    assert_eq!(errs("monitor often=1"), ["unknown_property"]);
    assert_eq!(exp("precision \"auto\"").precision, Precision::Auto);
}

#[test]
fn spans_are_recorded() {
    let src = "experiment \"t\" {\n  encoder \"vit-tiny\" patch=16\n  mask multi-block { targets { scale 0.1 0.2 } }\n}";
    let p = parse_spanned("t.kdl", src).unwrap();
    let at = |k: &str| {
        let s = p.spans[k];
        &src[s.offset()..s.offset() + s.len()]
    };
    assert_eq!(at("encoder.patch"), "patch=16");
    assert_eq!(at("encoder"), "encoder");
    assert_eq!(at("mask.targets.scale"), "0.1 0.2");
    assert_eq!(at("experiment"), "experiment");
    assert!(!p.spans.contains_key("data.crop-size"));
}

#[test]
fn structural_errors() {
    assert_eq!(codes(""), ["missing_experiment"]);
    assert_eq!(codes("seed 1"), ["unknown_node", "missing_experiment"]);
    assert_eq!(codes("experiment a\nexperiment b"), ["duplicate_node"]);
    assert_eq!(codes("experiment"), ["missing_argument"]);
    assert_eq!(codes("experiment a b"), ["extra_argument"]);
    assert_eq!(codes("experiment \"a b\""), ["invalid_value"]);
    assert_eq!(codes("sweep x"), ["invalid_value", "missing_experiment", "unknown_value"]);
    assert_eq!(errs("epochs 1\nepochs 2"), ["duplicate_node"]);
    assert_eq!(errs("epoch 1"), ["unknown_node"]);
    assert_eq!(errs("distributed nodes=2"), ["unknown_property"]);
    assert_eq!(errs("eval \"linear\"\neval \"linear\""), ["duplicate_node"]);
    assert_eq!(errs("epochs 1\nextends \"x.kdl\""), ["misplaced"]);
    assert_eq!(errs("sweep { seeds 1 }"), ["misplaced"]);
    assert_eq!(errs("vary \"seed\" 1 2"), ["unknown_node"]);
    assert_eq!(errs("eval \"probe\""), ["unknown_value"]);
    assert_eq!(errs("eval \"knn\" fraction=0.1"), ["invalid_value"]);
    assert_eq!(errs("crop-size 32"), ["unknown_node"]);
    // a misspelled setting is one error: the rules across settings leave the setting it
    // likely names out (the default encoder's patch 14 against a crop of 32 was a second)
    assert_eq!(errs("encodr \"vit-tiny\" patch=4\ndata \"fashion-mnist\" { crop-size 32; batch-size 32; }\nmask \"multi-block\" { min-keep 3 }"), ["unknown_node"]);
    assert_eq!(errs("encoder \"vit-tiny\" patch=4\ndata \"fashion-mnist\" { crop-size 30; batch-size 32; }\nmask \"multi-block\" { min-keep 3 }"), ["patch_crop"]);
    // ... but where the setting is written too, its own errors stand, whichever comes first
    assert_eq!(errs("encoder-x 1\nencoder \"vit-tiny\" patch=4\ndata \"fashion-mnist\" { crop-size 30; batch-size 32; }\nmask \"multi-block\" { min-keep 3 }"), ["unknown_node", "patch_crop"]);
    assert_eq!(errs("encoder \"vit-tiny\" patch=4\ndata \"fashion-mnist\" { crop-size 30; batch-size 32; }\nmask \"multi-block\" { min-keep 3 }\nencoder-x 1"), ["patch_crop", "unknown_node"]);
    assert_eq!(errs("epochs"), ["missing_argument"]);
    assert_eq!(errs("epochs 1 2"), ["extra_argument"]);
    assert_eq!(errs("epochs 1 x=2"), ["unknown_property"]);
    assert_eq!(errs("epochs 1 { x }"), ["unexpected_children"]);
    assert_eq!(errs("epochs (u8)1"), ["unsupported"]);
    assert_eq!(errs("ema start=0.9 start=0.99"), ["duplicate_property"]);
    assert_eq!(errs("predictor dpeth=4"), ["unknown_property"]);
    assert_eq!(errs("data fashion-mnist { crop-scale 0.3 }"), ["missing_argument"]);
}

#[test]
fn value_errors() {
    assert_eq!(errs("recipe \"ibot\""), ["unknown_value"]);
    // one mistake, one error: a misspelled recipe is not checked as I-JEPA (whose mask would
    // not fit this small grid)
    assert_eq!(errs("recipe \"maee\"\n data \"fashion-mnist\" { crop-size 28 }\n encoder width=64 depth=2 heads=4 patch=4"), ["unknown_value"]);
    assert_eq!(errs("seed -1"), ["out_of_range"]);
    assert_eq!(errs("seed \"1\""), ["wrong_type"]);
    assert_eq!(errs("epochs 0"), ["out_of_range"]);
    assert_eq!(errs("ipe-scale 0"), ["out_of_range"]);
    assert_eq!(errs("ipe-scale #inf"), ["out_of_range"]);
    // a literal beyond the largest float is read as inf: the help names that case too (it
    // said only "#inf, #-inf and #nan are not allowed" to someone who wrote `1e400`)
    assert_eq!(errs("ipe-scale 1e400"), ["out_of_range"]);
    // a whole float past an integer setting's range is too large, not advised as an integer
    // (`epochs 1e40` was told to write 340282366920938463463374607431768211455)
    assert_eq!(errs("epochs 1e40"), ["out_of_range"]);
    assert_eq!(errs("seed 18446744073709551616.0"), ["out_of_range"]);
    assert_eq!(errs("epochs 3.0"), ["wrong_type"]);
    // a whole number spelt as a float or in quotes is checked against the setting's range
    // before its spelling is advised (`epochs 1e6` was advised 1000000, which the range refused
    // next; `"-3"` was advised -3; `"1e3"` was advised 1e3, then 1000; `"1.5"` 1.5)
    for (src, said) in [
        ("epochs 1e6", "must be at most 100000"),
        ("data fashion-mnist { crop-size 1e4 }", "must be at most 4096"),
        ("epochs 0.0", "must be at least 1"),
        ("epochs \"-3\"", "must be at least 1"),
        ("epochs \"1e3\"", "write `1000` instead of `\"1e3\"`"),
        ("epochs \"1.5\"", "write a whole number such as `4`, without quotes"),
        ("epochs 1e2", "write the integer without a decimal point: `100`"),
        ("epochs 1e300", "found 1e300"),
        // (settings read without a range: a quoted negative, a quoted 2^64)
        ("seed \"-3\"", "a whole number that is not negative, written without quotes"),
        ("seed \"18446744073709551616\"", "is beyond any value this setting takes"),
        ("seed \"1e30\"", "is beyond any value this setting takes"),
        ("seed \"7\"", "write `7` instead of `\"7\"`"),
    ] {
        let text = parse_str("t.kdl", &format!("experiment \"t\" {{\n {src}\n}}\n")).unwrap_err().render_plain().split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(text.contains(said), "{src}: {text}");
    }
    let text = parse_str("t.kdl", "experiment \"t\" {\n ipe-scale 1e400\n}\n").unwrap_err().render_plain().replace('\n', " ").split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("beyond the largest float") && text.contains("1e400"), "{text}");
    assert_eq!(errs("loss \"l1\""), ["unknown_value"]);
    assert_eq!(errs("precision \"fp16\""), ["unknown_value"]);
    assert_eq!(errs("device \"gpu\""), ["invalid_value"]);
    assert_eq!(errs("device \"cuda:\""), ["invalid_value"]);
    assert_eq!(errs("log-every 0"), ["out_of_range"]);
    assert_eq!(errs("data \"imagenet\""), ["unknown_value"]);
    assert_eq!(errs("data fashion-mnist root=\"\""), ["invalid_value"]);
    assert_eq!(errs("data fashion-mnist { batch-size 0 }"), ["out_of_range"]);
    assert_eq!(errs("data fashion-mnist { crop-scale 0 1 }"), ["out_of_range"]);
    assert_eq!(errs("data fashion-mnist { crop-scale 0.9 0.3 }"), ["range_order"]);
    assert_eq!(errs("data fashion-mnist { crop-scale 0.3 1.5 }"), ["out_of_range"]);
    assert_eq!(errs("encoder \"vit-enormous\""), ["unknown_value"]);
    assert_eq!(errs("encoder \"vit-tiny\" patch=0"), ["out_of_range"]);
    assert_eq!(errs("encoder \"vit-tiny\" rescale-init=1"), ["wrong_type"]);
    assert_eq!(errs("mask \"random\" { targets count=2 }"), ["unknown_node"]);
    assert_eq!(errs("mask \"checkerboard\""), ["unsupported"]);
    // (a misspelt kind is unknown, not "not supported yet")
    assert_eq!(errs("mask \"multiblock\""), ["unknown_value"]);
    let text = parse_str("t.kdl", "experiment \"t\" {\n recipe \"mae\"\n mask \"multiblock\"\n}\n").unwrap_err().render_plain().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("(recipe \"mae\" samples `random`)"), "{text}");
    assert_eq!(errs("mask multi-block { targets count=0 }"), ["out_of_range"]);
    assert_eq!(errs("mask multi-block { targets { aspect 0 1 } }"), ["out_of_range"]);
    assert_eq!(errs("mask multi-block { context { scale 0.2 0.1 } }"), ["range_order"]);
    assert_eq!(errs("mask multi-block { corner \"random\" }"), ["unknown_value"]);
    assert_eq!(errs("mask multi-block { allow-overlap \"no\" }"), ["wrong_type"]);
    assert_eq!(errs("optimizer \"sgd\""), ["unknown_value"]);
    assert_eq!(errs("optimizer adamw { lr peak=-1e-3 }"), ["out_of_range"]);
    assert_eq!(errs("optimizer adamw { weight-decay schedule=\"step\" }"), ["unknown_value"]);
    assert_eq!(errs("optimizer adamw { betas 0.9 1.0 }"), ["out_of_range"]);
    assert_eq!(errs("optimizer adamw { eps 0 }"), ["out_of_range"]);
    // (a float32 optimizer: 0 there, or infinite)
    assert_eq!(errs("optimizer adamw { eps 1e-46 }"), ["out_of_range"]);
    assert_eq!(errs("optimizer adamw { eps 1e39 }"), ["out_of_range"]);
    assert!(errs("optimizer adamw { eps 1e-30 }").is_empty());
    assert_eq!(errs("ema start=1.5"), ["out_of_range"]);
    assert_eq!(errs("ema final=-0.1"), ["out_of_range"]);
}

#[test]
fn cross_field_errors() {
    assert_eq!(
        errs("data fashion-mnist { crop-size 30 }\nencoder \"vit-tiny\" patch=4"),
        ["patch_crop"]
    );
    // The default encoder (vit-huge/14) does not fit a 32-pixel crop either.
    assert_eq!(errs("data fashion-mnist { crop-size 32 }"), ["patch_crop"]);
    // the help's suggestions are crops the next rule accepts (a 2x2 grid at least, for a
    // recipe that masks patches: "try crop-size 32 or 16" for patch 16, and 16 was one patch)
    // and a patch that divides the crop
    let d = parse_str("t.kdl", "experiment \"t\" {\n data \"fashion-mnist\" { crop-size 28 }\n encoder width=64 depth=2 heads=2 patch=16\n}\n").unwrap_err();
    let help = d.render_plain().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains("try crop-size 32, or patch=14") && !help.contains("or 16"), "{help}");
    // (applied, neither suggestion is refused for the grid: crop 32 is 2x2, patch 14 is 2x2)
    for fixed in ["data fashion-mnist { crop-size 32 }\nencoder width=64 depth=2 heads=2 patch=16", "data fashion-mnist { crop-size 28 }\nencoder width=64 depth=2 heads=2 patch=14"] {
        let codes = errs(fixed);
        assert!(!codes.iter().any(|c| *c == "patch_crop" || *c == "conflict"), "{fixed}: {codes:?}");
    }
    let d = parse_str("t.kdl", "experiment \"t\" {\n data \"fashion-mnist\" { crop-size 36 }\n encoder width=64 depth=2 heads=2 patch=16\n}\n").unwrap_err();
    let help = d.render_plain().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains("try crop-size 48 or 32, or patch=12"), "{help}");
    // DINO's patch divides its local crops too (patch 7 for crop 28 was refused next for local
    // crops of 16)
    let d = parse_str("t.kdl", "experiment \"t\" {\n recipe \"dino\"\n data \"fashion-mnist\" { crop-size 28 }\n encoder width=64 depth=2 heads=2 patch=8\n dino { local-size 16 }\n}\n").unwrap_err();
    let help = d.render_plain().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains(", or patch=4") && !help.contains("patch=7"), "{help}");
    // nor a patch or crop beyond the 256x256 grid (514 px was advised patch=2, 257x257 patches,
    // whose refusal advised 3 again; 770 px in 3 px patches was advised 771)
    for (crop, advised) in [(514, "try crop-size 516 or 513"), (770, "try crop-size 768")] {
        let d = parse_str("t.kdl", &format!("experiment \"t\" {{\n data \"fashion-mnist\" {{ crop-size {crop} }}\n encoder width=64 depth=2 heads=2 patch=3\n}}\n")).unwrap_err();
        let help = d.render_plain().split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(help.ends_with(advised) && !help.contains("patch=2") && !help.contains("771"), "{help}");
    }
    // at a sweep's point, advice that holds at every point: a patch that divides every swept
    // crop (`patch=3` for a swept 30 broke its 28 and 32), a crop every swept patch divides,
    // and no patch the sweep lists already; each followed, the file checks
    for (written, advised, fixed) in [
        ("encoder width=16 depth=1 heads=2 patch=4\n}\nsweep { vary \"data.crop-size\" 28 30 32; }", "try crop-size 36 or 24, or patch=2 (it divides every swept crop-size)", ("patch=4", "patch=2")),
        ("encoder width=16 depth=1 heads=2 patch=3\n}\nsweep { vary \"encoder.patch\" 3 5 4; }", "try crop-size 60 (a multiple of every swept patch), or patch=2", ("crop-size 30", "crop-size 60")),
    ] {
        let text = format!("experiment \"t\" {{\n data \"fashion-mnist\" {{ crop-size 30; }}\n mask \"multi-block\" {{ min-keep 1; }}\n {written}\n");
        let d = crate::parse_study("t.kdl", &text).unwrap_err();
        let help = d.render_plain().split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(help.contains(advised), "{help}");
        assert!(crate::parse_study("t.kdl", &text.replace(fixed.0, fixed.1)).is_ok(), "{}", text.replace(fixed.0, fixed.1));
    }
    // a zip or grid of both: no number that holds at this point alone (`patch=3` in a zip of
    // patches 3 5 4 over one crop made two points alike)
    let text = "experiment \"t\" {\n data \"fashion-mnist\" { crop-size 30; }\n mask \"multi-block\" { min-keep 1; }\n encoder width=16 depth=1 heads=2 patch=3\n}\nsweep \"zip\" { vary \"encoder.patch\" 3 5 4; vary \"data.crop-size\" 30 30 30; }\n";
    let help = crate::parse_study("t.kdl", text).unwrap_err().render_plain().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains("change the sweep's values so that each point's crop-size is a multiple of its patch") && !help.contains("patch=3") && !help.contains("try crop-size"), "{help}");
    // DINO's swept local crops: a patch that divides each (`patch=3` for 12 and 10 was refused
    // next for the 10)
    let text = "experiment \"t\" {\n recipe \"dino\"\n data \"fashion-mnist\" { crop-size 30; }\n encoder width=16 depth=1 heads=2 patch=4\n dino { local-size 12; }\n}\nsweep { vary \"dino.local-size\" 12 10; }\n";
    let help = crate::parse_study("t.kdl", text).unwrap_err().render_plain().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains("or patch=2") && !help.contains("patch=3"), "{help}");
    assert_eq!(errs("encoder width=100 depth=2 heads=3 patch=16"), ["heads_width"]);
    // a patch of 2^32 is refused at once (the help's search for a patch dividing the crop
    // counted down from it for minutes)
    let t = std::time::Instant::now();
    assert_eq!(errs("data fashion-mnist { crop-size 28 }\nencoder width=32 depth=1 heads=2 patch=4294967296"), ["patch_crop"]);
    assert!(t.elapsed() < std::time::Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(errs("predictor width=100 heads=3"), ["heads_width"]);
    // a width neither its heads nor the sin-cos table take: one error, whose help gives a width
    // both take (it was two errors, the heads' advising heads=3, which 30 refuses again)
    assert_eq!(errs("encoder width=30 depth=2 heads=4 patch=16"), ["heads_width"]);
    let d = parse_str("t.kdl", "experiment \"t\" {\n encoder width=30 depth=2 heads=4 patch=16\n}\n").unwrap_err();
    let help = d.render_plain().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains("e.g. width=28 or width=32") && !help.contains("heads=3"), "{help}");
    // DINO's learnt table takes any width: the heads alone are advised
    assert_eq!(errs("recipe \"dino\"\nencoder width=30 depth=2 heads=4 patch=16"), ["heads_width"]);
    assert_eq!(errs("encoder width=30 depth=2 heads=3 patch=16"), ["out_of_range"]);
    // a head count near 2^64 (its multiple of 4 overflows) is advised no width it cannot take
    let d = parse_str("t.kdl", "experiment \"t\" {\n encoder width=6 depth=2 heads=9223372036854775809 patch=16\n}\n").unwrap_err();
    let help = d.render_plain().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(!help.contains("width=1") && !help.contains("width=4 ") && help.contains("lower heads="), "{help}");
    // ... whose help advises widths its heads divide too (it advised 28 or 32 to 3 heads)
    let d = parse_str("t.kdl", "experiment \"t\" {\n encoder width=30 depth=2 heads=3 patch=16\n}\n").unwrap_err();
    let help = d.render_plain().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains("e.g. width=24 or width=36 (multiples of 4 that its 3 heads divide)"), "{help}");
    // Inherited heads: vit-tiny has 3 heads, predictor width 384 is fine, 100 is not.
    assert_eq!(errs("encoder \"vit-tiny\"\npredictor width=100"), ["heads_width"]);
    // Default mask on an 8x8 grid: the smallest target block is 9 patches, min-keep is 10.
    assert_eq!(
        errs("data fashion-mnist { crop-size 32 }\nencoder \"vit-tiny\" patch=4"),
        ["infeasible_mask"]
    );
    // at a sweep point, the label is on the varied value that made the mask infeasible (it
    // was on the experiment's min-keep)
    let src = "experiment \"s\" {\n data fashion-mnist { crop-size 28 }\n encoder width=32 depth=1 heads=2 patch=4\n mask \"multi-block\" { min-keep 3 }\n}\nsweep \"grid\" {\n vary \"encoder.patch\" 4 7\n}\n";
    let d = crate::parse_study("s.kdl", src).expect_err("patch 7 leaves target blocks of 1 patch");
    let text = d.render_plain();
    let at = text.find("target blocks can be as small as 1 patch").expect("the label");
    let shown = &text[..at];
    assert!(shown.rfind("vary \"encoder.patch\" 4 7").is_some_and(|v| shown[v..].lines().count() <= 3), "{text}");
    // a swept aspect that thins the block: labelled at its value, and advised (it was labelled
    // at the mask node, and only the scale advised)
    let src = "experiment \"a\" {\n data fashion-mnist { crop-size 28 }\n encoder width=32 depth=1 heads=2 patch=4\n mask \"multi-block\" { min-keep 3 }\n}\nsweep \"grid\" {\n vary \"mask.targets.aspect\" {\n  - 0.75 1.5\n  - 0.1 10.0\n }\n vary \"mask.min-keep\" 3 6\n}\n";
    let text = crate::parse_study("a.kdl", src).expect_err("min-keep 6 against 5 patches").render_plain();
    let at = text.find("target blocks can be as small as 5 patches").expect("the label");
    assert!(text[..at].rfind("- 0.1 10.0").is_some_and(|v| text[v..at].lines().count() <= 3), "{text}");
    assert!(text.contains("or bring the target aspect range closer to 1"), "{text}");
    // ... labelled at the aspect where the scale is swept too and is fine with another aspect
    // (it was labelled at the scale); not advised where a square block fails too
    let src = "experiment \"a\" {\n data fashion-mnist { crop-size 28 }\n encoder width=32 depth=1 heads=2 patch=4\n mask \"multi-block\" { min-keep 3 }\n}\nsweep \"grid\" {\n vary \"mask.targets.scale\" {\n  - 0.1 0.2\n  - 0.15 0.2\n }\n vary \"mask.targets.aspect\" {\n  - 0.75 1.5\n  - 0.1 10.0\n }\n}\n";
    let text = crate::parse_study("a.kdl", src).expect_err("thin blocks").render_plain();
    let at = text.find("target blocks can be as small as").expect("the label");
    assert!(text[..at].rfind("- 0.1 10.0").is_some_and(|v| text[v..at].lines().count() <= 3), "{text}");
    let square_fails = "data fashion-mnist { crop-size 28 }\nencoder width=32 depth=1 heads=2 patch=4\nmask \"multi-block\" { targets { scale 0.1 0.2; aspect 0.3 3.0; }; min-keep 4; }";
    let text = parse_str("t.kdl", &format!("experiment \"t\" {{\n{square_fails}\n}}\n")).expect_err("a 1x3 block").render_plain();
    assert!(text.contains("Lower min-keep to at most") && !text.contains("aspect range closer to 1"), "{text}");
    // a preset point drops the file's shape: the heads it gives the predictor are labelled at
    // the preset value, not at the file's `heads=2` (which said "3 heads")
    let src = "experiment \"p\" {\n data fashion-mnist { crop-size 28 }\n encoder width=32 depth=1 heads=2 patch=4\n predictor depth=1 width=64\n mask \"multi-block\" { min-keep 3 }\n}\nsweep \"grid\" {\n vary \"encoder\" \"vit-tiny\" \"vit-small\"\n}\n";
    let text = crate::parse_study("p.kdl", src).expect_err("3 and 6 heads against 64").render_plain();
    let at = text.find("`-- 3 heads").expect("the heads' label");
    assert!(text[..at].rfind("vary \"encoder\" \"vit-tiny\"").is_some_and(|v| text[v..at].lines().count() <= 3), "{text}");
    // an error of a setting the file does not write (the default patch), at a point that
    // varies another setting of its block: shown at the block as the file writes it, once
    // (it was shown at each `encoder.heads` value, once per value)
    let src = "experiment \"s\" {\n data fashion-mnist { crop-size 28 }\n encoder width=32 depth=1 heads=2\n mask \"multi-block\" { min-keep 3 }\n}\nsweep \"grid\" {\n vary \"encoder.heads\" 2 4\n vary \"data.crop-size\" 32 30\n}\n";
    let text = crate::parse_study("s.kdl", src).expect_err("crop 30 in 16 px patches").render_plain();
    assert_eq!(text.matches("patch size 16 does not divide the crop size 30").count(), 1, "{text}");
    let label = text.find("`-- patch 16").expect("the patch's label");
    assert!(text[..label].rfind(" encoder width=32 depth=1 heads=2").is_some_and(|at| text[at..label].lines().count() <= 3), "{text}");
    // with the scale at its default, the mask node carries the blocks' label and min-keep its
    // own (both landed on min-keep, and "a block must keep more than 9" was dropped)
    let d = parse_str("m.kdl", "experiment \"m\" {\n data fashion-mnist { crop-size 28 }\n encoder width=32 depth=1 heads=2 patch=4\n mask \"multi-block\" { min-keep 9; }\n}\n").unwrap_err();
    let text = d.render_plain();
    assert!(d.codes() == ["ijepa::dsl::infeasible_mask"] && text.contains("a block must keep more than 9 patches") && text.contains("target blocks can be as small as"), "{text}");
    // the layout is bounded: `ijepa launch` starts gpus-per-node processes here, and the
    // product never wraps
    assert_eq!(errs("distributed { gpus-per-node 100000; }"), ["out_of_range"]);
    assert_eq!(errs("distributed { nodes 4294967296; gpus-per-node 64; launcher \"slurm\" }"), ["out_of_range"]);
    // `mask "block"`: a block that rounds to no patch would be redrawn for ever
    assert_eq!(
        errs("data fashion-mnist { crop-size 28 }\nencoder \"vit-tiny\" patch=4\nmask \"block\" { scale 0.01 0.01 }"),
        ["invalid_value"]
    );
    assert_eq!(
        errs("data fashion-mnist { crop-size 8 }\nencoder \"vit-tiny\" patch=4\nmask \"block\" { aspect 100 100 }"),
        ["invalid_value"]
    );
    let text = parse_str("t.kdl", "experiment \"t\" {\n data \"fashion-mnist\" { crop-size 28 }\n encoder \"vit-tiny\" patch=4\n mask \"block\" { scale 0.01 0.01 }\n}\n").unwrap_err().render_plain();
    assert!(text.contains("the block mask's block can be empty") && !text.contains("min-keep"), "{text}");
    assert!(errs("data fashion-mnist { crop-size 28 }\nencoder \"vit-tiny\" patch=4\nmask \"block\" { scale 0.1 0.2 }").is_empty());
    // A rejected value does not cascade into cross-field errors.
    assert_eq!(
        errs("data fashion-mnist { crop-size 0 }\nencoder \"vit-tiny\" patch=4"),
        ["out_of_range"]
    );
    assert_eq!(errs("encoder \"vit-tny\" patch=5"), ["unknown_value"]);
}

#[test]
fn all_errors_are_reported_at_once() {
    let c = errs("epochs -1\nseed x\nfoo 1\ndata fashion-mnist { batch-size 0 }\nema start=2");
    assert_eq!(c, ["out_of_range", "wrong_type", "unknown_node", "out_of_range", "out_of_range"]);
}

#[test]
fn data_kinds_augmentations_and_source_rules() {
    let e = exp(r#"data "image-folder" root="/in1k/train" {
        crop-size 224; subset "/in1k/1percent.txt"; horizontal-flip 0.5; color-jitter 0.5
        gaussian-blur 0.5; decode "exact"; on-error "skip"
    }"#);
    assert_eq!(e.data.dataset, crate::config::DatasetKind::ImageFolder);
    assert_eq!(e.data.subset.as_deref(), Some(std::path::Path::new("/in1k/1percent.txt")));
    assert_eq!((e.data.hflip, e.data.color_jitter, e.data.blur), (0.5, Some(0.5), 0.5));
    assert!(e.data.exact_decode);
    assert_eq!(e.data.on_error, crate::config::OnError::Skip);
    assert_eq!(
        exp(r#"data "cifar100" root="/c""#).data.dataset,
        crate::config::DatasetKind::Cifar100
    );
    // only Fashion-MNIST has an embedded copy; subsets select image-folder files
    assert_eq!(errs(r#"data "mnist""#), ["missing_property"]);
    assert_eq!(errs(r#"data "cifar10" root="/c" { subset "x.txt" }"#), ["invalid_value"]);
    assert_eq!(errs(r#"data "fashion-mnist" { horizontal-flip 1.5 }"#), ["out_of_range"]);
    assert_eq!(errs(r#"data "fashion-mnist" { on-error "retry" }"#), ["unknown_value"]);
}

#[test]
fn eval_blocks_and_report() {
    use crate::config::{Baseline, EvalProtocol, FeatureChoice, HeadKind};
    let e = exp(r#"eval "linear" {
        features "last4"; head "bn-linear"; epochs 20; decay-every 6; batch-size 128
        lr 0.01 0.05; weight-decay 5e-4 0; held-out 0.2; baselines "random-init" "raw-pixels"
    }
    eval "low-shot" fraction=0.05 { c 0.1 1; }
    eval "knn" { k 10; temperature 0.1 }
    report"#);
    assert_eq!(e.evals.len(), 3);
    let l = &e.evals[0];
    assert_eq!(
        (l.protocol, l.features.clone(), l.head),
        (EvalProtocol::Linear, vec![FeatureChoice::Last4], HeadKind::BnLinear)
    );
    assert_eq!((l.epochs, l.decay_every, l.batch_size, l.heldout), (20, 6, 128, 0.2));
    assert_eq!((l.lrs.clone(), l.wds.clone()), (vec![0.01, 0.05], vec![5e-4, 0.0]));
    assert_eq!(l.baselines, vec![Baseline::RandomInit, Baseline::RawPixels]);
    let s = &e.evals[1];
    assert_eq!(
        (s.protocol, s.head, s.fraction, s.cs.clone()),
        (EvalProtocol::LowShot, HeadKind::Logistic, 0.05, vec![0.1, 1.0])
    );
    assert_eq!((e.evals[2].k, e.evals[2].temperature), (10, 0.1));
    assert!(e.report);
    assert!(!exp("").report && exp("").evals.is_empty());
}

#[test]
fn finetune_block_has_its_own_settings_and_refuses_the_probes() {
    use crate::config::{Baseline, EvalProtocol};
    let e = exp(r#"eval "finetune" {
        epochs 5; batch-size 64; lr 5e-4 1e-3; layer-decay 0.65; drop-path 0.2
        label-smoothing 0; warmup-epochs 0.5; min-lr 0; baselines "random-init"
    }"#);
    let f = &e.evals[0];
    assert_eq!((f.protocol, f.epochs, f.batch_size, f.lrs.clone(), f.wds.clone()), (EvalProtocol::Finetune, 5, 64, vec![5e-4, 1e-3], vec![0.05]));
    let ft = f.finetune.clone().unwrap();
    assert_eq!((ft.layer_decay, ft.drop_path, ft.label_smoothing, ft.warmup_epochs, ft.min_lr), (0.65, 0.2, 0.0, 0.5, 0.0));
    assert_eq!(f.baselines, vec![Baseline::RandomInit]);
    assert!(f.warnings().is_empty());
    // a warm-up as long as the fine-tuning is warned of (the other protocols have none)
    let long = exp(r#"eval "finetune" { epochs 2; warmup-epochs 2 }"#).evals[0].warnings();
    assert!(long.len() == 1 && long[0].contains("warmup (2 epoch(s)) is at least as long as its 2 epoch(s)"), "{long:?}");
    assert!(exp(r#"eval "finetune" { epochs 3; warmup-epochs 2.5 }"#).evals[0].warnings().is_empty());
    assert!(exp(r#"eval "linear" { epochs 1 }"#).evals[0].warnings().is_empty());
    // a `min-lr` above a rate of the grid: its cosine climbs (1e-4 rose to 0.485); at a rate
    // it is the constant the code computes, not warned of
    let climbs = exp(r#"eval "finetune" { epochs 3; lr 1e-4 1e-2; min-lr 0.5 }"#).evals[0].warnings();
    assert!(climbs.len() == 1 && climbs[0].contains("`min-lr` 5e-1 is above its `lr` 1e-4, 1e-2: the half-cycle cosine climbs from each of those rates to 5e-1"), "{climbs:?}");
    assert!(exp(r#"eval "finetune" { epochs 3; lr 1e-4; min-lr 1e-4 }"#).evals[0].warnings().is_empty());
    // (with a warm-up as long as the run there is no cosine: the warm-up's warning alone)
    let both = exp(r#"eval "finetune" { epochs 2; warmup-epochs 2; lr 1e-4; min-lr 0.5 }"#).evals[0].warnings();
    assert!(both.len() == 1 && both[0].contains("warmup"), "{both:?}");
    // MAE's defaults
    let d = exp(r#"eval "finetune""#).evals[0].clone();
    assert_eq!((d.lrs.clone(), d.wds.clone(), d.finetune.clone().unwrap()), (vec![1e-3], vec![0.05], crate::config::FinetuneConfig::default()));
    // the other protocols serialise as before (their stage hashes must not move)
    let json = serde_json::to_string(&exp(r#"eval "linear""#).evals[0]).unwrap();
    assert!(!json.contains("finetune"), "{json}");
    assert_eq!(errs(r#"eval "linear" { layer-decay 0.75 }"#), ["invalid_value"]);
    assert_eq!(errs(r#"eval "knn" { drop-path 0.1 }"#), ["invalid_value"]);
    assert_eq!(errs(r#"eval "finetune" { baselines "raw-pixels" }"#), ["invalid_value"]);
    assert_eq!(errs(r#"eval "finetune" { features "last4" }"#), ["invalid_value"]);
    // several feature sets: the probe chooses on held-out data; one serialises as before
    let two = exp(r#"eval "knn" { features "last" "last4" }"#).evals[0].clone();
    assert_eq!(two.features, vec![crate::config::FeatureChoice::Last, crate::config::FeatureChoice::Last4]);
    let json = serde_json::to_string(&two).unwrap();
    assert!(json.contains(r#""features":["last","last4"]"#), "{json}");
    let back: crate::config::EvalConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, two);
    let one = serde_json::to_string(&exp(r#"eval "knn" { features "last4" }"#).evals[0]).unwrap();
    assert!(one.contains(r#""features":"last4""#), "{one}");
    assert_eq!(errs(r#"eval "knn" { features "last" "last" }"#), ["invalid_value"]);
    assert_eq!(errs(r#"eval "knn" { features "last" "first" }"#), ["unknown_value"]);
    // last4 on fewer than four blocks is found before anything runs
    assert_eq!(errs(r#"encoder width=64 depth=2 heads=2 patch=4; eval "knn" { features "last" "last4" }"#), ["conflict"]);
    assert!(errs(r#"encoder width=64 depth=4 heads=2 patch=4; eval "knn" { features "last4" }"#).is_empty());
    assert_eq!(errs(r#"eval "finetune" { layer-decay 0 }"#), ["out_of_range"]);
    assert_eq!(errs(r#"eval "finetune" { drop-path 1 }"#), ["out_of_range"]);
    // a BatchNorm head never trains on batches of one (it reported its zero weights' guess)
    assert_eq!(errs(r#"eval "linear" { batch-size 1 }"#), ["conflict"]);
    assert_eq!(errs(r#"eval "low-shot" { head "bn-linear"; batch-size 1 }"#), ["conflict"]);
    assert!(errs(r#"eval "linear" { head "linear"; batch-size 1 }"#).is_empty());
    assert!(errs(r#"eval "linear" { batch-size 2 }"#).is_empty());
    // fine-tuning's batch (256 by default) within the images `limit` keeps: found before
    // pretraining, where the run stopped on it after
    assert_eq!(errs("data \"fashion-mnist\" { limit 200; batch-size 16 }\n eval \"finetune\" { epochs 1 }"), ["conflict"]);
    assert!(errs("data \"fashion-mnist\" { limit 200; batch-size 16 }\n eval \"finetune\" { epochs 1; batch-size 64 }").is_empty());
    // kNN trains no head: its batch size is another protocol's setting, said once
    assert_eq!(errs(r#"eval "knn" { batch-size 1 }"#), ["invalid_value"]);
    // a setting only another protocol reads is refused, not ignored (it would still have moved
    // the stage's hash)
    for body in [
        r#"eval "linear" { k 3 }"#,
        r#"eval "linear" { c 5 }"#,
        r#"eval "linear" { temperature 0.5 }"#,
        r#"eval "linear" { split-file "s.txt" }"#,
        r#"eval "knn" { head "linear" }"#,
        r#"eval "knn" { epochs 7 }"#,
        r#"eval "knn" { lr 0.5 }"#,
        r#"eval "knn" { batch-size 3 }"#,
        r#"eval "knn" { split-file "s.txt" }"#,
        r#"eval "low-shot" { k 7 }"#,
        r#"eval "finetune" { decay-every 2 }"#,
        r#"eval "finetune" { c 1 }"#,
    ] {
        assert_eq!(errs(body), ["invalid_value"], "{body}");
    }
    // what each protocol reads stays accepted
    for body in [
        r#"eval "linear" { epochs 2; decay-every 1; batch-size 8; lr 0.1; weight-decay 0; held-out 0.2; head "bn-linear" }"#,
        r#"eval "low-shot" { c 1 10 }"#,
        r#"eval "low-shot" fraction=0.1 { head "linear"; epochs 2; lr 0.1; held-out 0.2 }"#,
        r#"eval "knn" { k 5; temperature 0.1; held-out 0.2; features "last" "last4" }"#,
        r#"eval "finetune" { epochs 2; batch-size 8; lr 1e-3 2e-3; weight-decay 0.05; held-out 0.1 }"#,
    ] {
        assert!(errs(body).is_empty() || errs(body) == ["conflict"], "{body}: {:?}", errs(body));
    }
    // a split file names files of a whole image folder
    assert_eq!(errs(r#"eval "low-shot" { split-file "s.txt" }"#), ["invalid_value"], "fashion-mnist has no files");
    // the labelled images come from the split file or from a fraction, not both
    // (two errors here: both, and a split file on a dataset without files)
    assert_eq!(errs(r#"eval "low-shot" fraction=0.1 { split-file "s.txt" }"#), ["invalid_value", "invalid_value"]);
}

#[test]
fn spans_of_eval_blocks_use_the_protocol() {
    let src = "experiment \"t\" {\n  eval \"linear\" { epochs 3 }\n  eval knn { k 5 }\n}";
    let p = parse_spanned("t.kdl", src).unwrap();
    let at = |k: &str| {
        let s = p.spans[k];
        &src[s.offset()..s.offset() + s.len()]
    };
    assert_eq!(at("eval.linear"), "eval");
    assert_eq!(at("eval.linear.epochs"), "3");
    assert_eq!(at("eval.knn.k"), "5");
}

#[test]
fn distributed_defaults() {
    assert_eq!(exp("distributed").distributed, DistributedConfig::default());
    assert_eq!(exp("distributed {}").distributed, DistributedConfig::default());
    let d = DistributedConfig::default();
    assert_eq!(
        (d.nodes, d.procs_per_node, d.backend, d.launcher),
        (1, 1, DistBackend::Auto, Launcher::Local)
    );
    assert_eq!((d.timeout_s, d.bucket_mb, d.world_size()), (1800, 25.0, 1));
    assert_eq!(d.slurm, SlurmConfig::default());
}

#[test]
fn distributed_every_property() {
    let d = exp(r#"distributed {
        nodes 2
        gpus-per-node 8
        backend "nccl"
        launcher "slurm"
        slurm partition="learnlab" account="x" qos="y" time="72:00:00" cpus-per-task=12 mem-per-gpu="64G" constraint="volta32gb"
        timeout "1h30m"
        bucket-mb 50
    }"#)
    .distributed;
    assert_eq!((d.nodes, d.procs_per_node, d.world_size()), (2, 8, 16));
    assert_eq!((d.backend, d.launcher), (DistBackend::Nccl, Launcher::Slurm));
    let s = &d.slurm;
    assert_eq!(
        (s.partition.as_deref(), s.account.as_deref(), s.qos.as_deref(), s.time.as_deref()),
        (Some("learnlab"), Some("x"), Some("y"), Some("72:00:00"))
    );
    assert_eq!(
        (s.cpus_per_task, s.mem_per_gpu.as_deref(), s.constraint.as_deref()),
        (12, Some("64G"), Some("volta32gb"))
    );
    assert_eq!((d.timeout_s, d.bucket_mb), (5400, 50.0));
    // the other keywords and forms
    let d = exp("distributed { backend gloo; launcher torchrun; timeout 90; bucket-mb 0.5 }")
        .distributed;
    assert_eq!(
        (d.backend, d.launcher, d.timeout_s, d.bucket_mb),
        (DistBackend::Gloo, Launcher::Torchrun, 90, 0.5)
    );
    assert_eq!(
        exp("distributed { backend \"auto\"; launcher \"local\"; timeout \"90s\" }")
            .distributed
            .timeout_s,
        90
    );
    // a partial slurm node keeps the other defaults
    let s = exp("distributed { launcher slurm; slurm time=\"1-12:00\" }").distributed.slurm;
    assert_eq!(
        (s.time.as_deref(), s.cpus_per_task, s.mem_per_gpu.as_deref()),
        (Some("1-12:00"), 10, Some("55G"))
    );
    // nccl on cuda, or with the device chosen at run time, is fine
    assert_eq!(
        exp("device cuda\ndistributed { backend nccl; gpus-per-node 4 }")
            .distributed
            .procs_per_node,
        4
    );
    assert_eq!(exp("distributed { backend nccl }").distributed.backend, DistBackend::Nccl);
    // several processes on the CPU share its cores
    assert_eq!(exp("device cpu\ndistributed { gpus-per-node 2 }").distributed.world_size(), 2);
}

#[test]
fn distributed_errors() {
    assert_eq!(errs("distributed { nodes 0 }"), ["out_of_range"]);
    assert_eq!(errs("distributed { gpus-per-node 0 }"), ["out_of_range"]);
    assert_eq!(errs("distributed { nodes 1.5 }"), ["wrong_type"]);
    assert_eq!(errs("distributed { backend \"mpi\" }"), ["unknown_value"]);
    assert_eq!(errs("distributed { launcher \"mpirun\" }"), ["unknown_value"]);
    assert_eq!(errs("device cpu\ndistributed { backend nccl }"), ["conflict"]);
    assert_eq!(errs("distributed { nodes 2 }"), ["conflict"]);
    assert_eq!(errs("distributed { nodes 2; launcher local }"), ["conflict"]);
    assert_eq!(errs("distributed { nodes 2; launcher torchrun }"), Vec::<String>::new());
    assert_eq!(errs("device \"cuda:1\"\ndistributed { gpus-per-node 2 }"), ["conflict"]);
    // one GPU per machine under SLURM: the job's GPU is `cuda:0` (or `cuda`), never `cuda:1`
    assert_eq!(errs("device \"cuda:1\"\ndistributed { launcher \"slurm\" }"), ["conflict"]);
    assert_eq!(errs("device \"cuda:2\"\ndistributed { launcher \"slurm\"; gpus-per-node 4 }"), ["conflict"]);
    assert!(errs("device \"cuda:0\"\ndistributed { launcher \"slurm\" }").is_empty());
    assert!(errs("device \"cuda:1\"\ndistributed { launcher \"torchrun\" }").is_empty());
    assert_eq!(errs("distributed { slurm partition=\"x\" }"), ["conflict"]);
    assert_eq!(errs("distributed { launcher slurm; slurm time=\"72h\" }"), ["invalid_value"]);
    assert_eq!(errs("distributed { launcher slurm; slurm time=\"1:61\" }"), ["invalid_value"]);
    assert_eq!(errs("distributed { launcher slurm; slurm time=72 }"), ["wrong_type"]);
    assert_eq!(errs("distributed { launcher slurm; slurm partition=\"a b\" }"), ["invalid_value"]);
    assert_eq!(errs("distributed { launcher slurm; slurm partition=\"\" }"), ["invalid_value"]);
    assert_eq!(
        errs("distributed { launcher slurm; slurm mem-per-gpu=\"55GB\" }"),
        ["invalid_value"]
    );
    assert_eq!(errs("distributed { launcher slurm; slurm cpus-per-task=0 }"), ["out_of_range"]);
    assert_eq!(errs("distributed { launcher slurm; slurm nodes=2 }"), ["unknown_property"]);
    assert_eq!(errs("distributed { timeout \"30 minutes\" }"), ["invalid_value"]);
    assert_eq!(errs("distributed { timeout \"0s\" }"), ["out_of_range"]);
    assert_eq!(errs("distributed { timeout 0 }"), ["out_of_range"]);
    assert_eq!(errs("distributed { timeout -5 }"), ["out_of_range"]);
    assert_eq!(errs("distributed { timeout 1.5 }"), ["wrong_type"]);
    assert_eq!(errs("distributed { bucket-mb 0 }"), ["out_of_range"]);
    assert_eq!(errs("distributed { gpus 8 }"), ["unknown_node"]);
    assert_eq!(errs("gpus-per-node 8"), ["unknown_node"]);
}

#[test]
fn nccl_on_cpu_points_at_the_backend() {
    let src = "experiment \"t\" {\n device \"cpu\"\n distributed { backend \"nccl\" }\n}";
    let d = parse_str("t.kdl", src).unwrap_err();
    let e = &d.errors()[0];
    assert_eq!(&src[e.offset()..e.offset() + 6], "\"nccl\"");
    assert!(d.render_plain().contains("gloo"));
}

/// Bounded inputs: nesting depth, error count, file kind and size (issue: hardening).
#[test]
fn deep_nesting_is_a_diagnostic_not_a_stack_overflow() {
    let src = format!("experiment \"x\" {{{}{}}}", " a {".repeat(5000), " }".repeat(5000));
    let err = crate::parse_str("deep.kdl", &src).unwrap_err();
    assert_eq!(err.errors().len(), 1);
    assert!(err.errors()[0].to_string().contains("nested more than"), "{}", err.errors()[0]);
    // braces inside strings and comments do not count
    let ok = format!("experiment \"x\" {{\n  // {}\n  data \"fashion-mnist\" {{ crop-size 28 }}\n}}\n", "{".repeat(500));
    assert!(crate::parse_str("ok.kdl", &ok).is_ok() || !crate::parse_str("ok.kdl", &ok).unwrap_err().errors()[0].to_string().contains("nested"));
}

#[test]
fn thousands_of_errors_are_capped_with_a_count() {
    let body: String = (0..5000).map(|i| format!("  bogus{i} 1\n")).collect();
    let err = crate::parse_str("many.kdl", &format!("experiment \"x\" {{\n{body}}}\n")).unwrap_err();
    assert_eq!(err.errors().len(), crate::diagnostics::MAX_ERRORS + 1);
    let last = err.errors().last().unwrap().to_string();
    assert!(last.contains(&format!("{} more", 5000 - crate::diagnostics::MAX_ERRORS)), "{last}");
    assert_eq!(err.to_string(), "many.kdl has 5000 errors");
}

#[test]
fn devices_folders_and_huge_files_are_refused() {
    for p in ["/dev/zero", "/tmp"] {
        let err = crate::load_study(std::path::Path::new(p)).unwrap_err();
        assert!(err.errors()[0].to_string().contains("not a regular file"), "{p}: {}", err.errors()[0]);
    }
    let big = std::env::temp_dir().join(format!("ijepa-big-{}.kdl", std::process::id()));
    std::fs::write(&big, vec![b'/'; (crate::MAX_FILE_BYTES + 10) as usize]).unwrap();
    let err = crate::load_study(&big).unwrap_err();
    assert!(err.errors()[0].to_string().contains("larger than"), "{}", err.errors()[0]);
    assert!(err.render_plain().contains("check that this is the file you meant"), "{}", err.render_plain());
    // invalid UTF-8 says so, and not to check the permissions
    std::fs::write(&big, b"experiment \"x\" {\n epochs 1 // \xff\xfe\n}\n").unwrap();
    let text = crate::load_study(&big).unwrap_err().render_plain();
    assert!(text.contains("not UTF-8 text") && text.contains("save it as UTF-8") && !text.contains("permissions"), "{text}");
    std::fs::remove_file(&big).unwrap();
}

#[test]
fn mae_experiments_read_their_decoder_and_random_mask() {
    let e = exp("recipe \"mae\"\n decoder depth=2 width=64 heads=4 norm-pix-loss=#false\n encoder width=96 depth=2 heads=3 patch=4");
    assert_eq!(e.recipe, "mae");
    assert_eq!(e.decoder, DecoderConfig { depth: 2, embed_dim: 64, num_heads: 4, mlp_ratio: 4.0, norm_pix_loss: false });
    // without a mask node, the recipe's default kind
    assert_eq!(e.mask.kind, MaskKind::Random);
    assert_eq!(e.mask.ratio, 0.75);
    assert_eq!(e.optimizer.betas, (0.9, 0.95), "MAE's official betas unless written");
    let e = exp("recipe \"mae\"\n optimizer \"adamw\" { betas 0.9 0.99; }");
    assert_eq!(e.optimizer.betas, (0.9, 0.99));
    // a written value is kept, also when it is the language's default
    let e = exp("recipe \"mae\"\n optimizer \"adamw\" { betas 0.9 0.999; }");
    assert_eq!(e.optimizer.betas, (0.9, 0.999));
    let e = exp("recipe \"mae\"\n mask \"random\" { ratio 0.6 }");
    assert_eq!((e.mask.kind, e.mask.ratio), (MaskKind::Random, 0.6));
    // the recipe may come after the mask
    let e = exp("mask \"random\" { ratio 0.5 }\n recipe \"mae\"");
    assert_eq!(e.mask.ratio, 0.5);
    assert_eq!(errs("recipe \"mae\"\n mask \"random\" { ratio 1.0 }"), vec!["out_of_range"]);
    assert_eq!(errs("recipe \"mae\"\n mask \"random\" { min-keep 3 }"), vec!["unknown_node"]);
    assert_eq!(errs("recipe \"mae\"\n decoder width=60 heads=16"), vec!["heads_width"]);
}

/// An MAE experiment takes the official pretraining recipe for what it does not write
/// (`main_pretrain.py`, PRETRAIN.md): crops of 20-100% flipped with p = 0.5 and resized
/// bicubically, lr from 0 over 40 warm-up epochs to blr 1.5e-4 then to 0, weight decay 0.05
/// throughout; DINO's crops are bicubic; I-JEPA keeps the language's (its official) values.
/// Written values stay, property by property, the language's defaults included.
#[test]
fn recipes_default_to_their_official_data_and_optimizer_settings() {
    use crate::config::{Interpolation, WdShape};
    let e = exp("recipe \"mae\"");
    assert_eq!((e.data.crop_scale, e.data.hflip, e.data.interpolation), ((0.2, 1.0), 0.5, Interpolation::Bicubic));
    let l = &e.optimizer.lr;
    assert_eq!((l.start, l.blr, l.final_, l.warmup_epochs), (0.0, Some(1.5e-4), 0.0, 40.0));
    let w = &e.optimizer.weight_decay;
    assert_eq!((w.start, w.final_, w.shape), (0.05, 0.05, WdShape::Cosine));
    let e = exp("recipe \"mae\"\n data \"fashion-mnist\" { crop-scale 0.3 1.0; horizontal-flip 0; interpolation \"bilinear\"; }\n optimizer \"adamw\" { weight-decay final=0.4; }");
    assert_eq!((e.data.crop_scale, e.data.hflip, e.data.interpolation), ((0.3, 1.0), 0.0, Interpolation::Bilinear));
    assert_eq!((e.optimizer.weight_decay.start, e.optimizer.weight_decay.final_), (0.05, 0.4));
    let e = exp("recipe \"dino\"\n encoder \"vit-small\" patch=16");
    assert_eq!((e.data.crop_scale, e.data.hflip, e.data.interpolation), ((0.3, 1.0), 0.0, Interpolation::Bicubic));
    let e = exp("");
    assert_eq!((e.data.crop_scale, e.data.hflip, e.data.interpolation), ((0.3, 1.0), 0.0, Interpolation::Bilinear));
    assert_eq!((e.optimizer.weight_decay.start, e.optimizer.weight_decay.final_), (0.04, 0.4));
    // bilinear is not serialised: the stage hashes of I-JEPA experiments stay
    assert!(!serde_json::to_string(&e).unwrap().contains("interpolation"));
    assert!(serde_json::to_string(&exp("data \"fashion-mnist\" { interpolation \"bicubic\"; }")).unwrap().contains("\"interpolation\":\"bicubic\""));
    assert_eq!(errs("data \"fashion-mnist\" { interpolation \"lanczos\"; }"), vec!["unknown_value"]);
    // a sweep's MAE point gets MAE's data defaults where the base writes none
    let src = "experiment \"m\" {\n encoder width=96 depth=2 heads=3 patch=4\n data \"fashion-mnist\" { crop-scale 0.3 1.0; }\n}\nsweep \"grid\" {\n vary \"recipe\" \"ijepa\" \"mae\"\n}\n";
    let study = crate::parse_study("m.kdl", src).map_err(|d| d.render_plain()).unwrap();
    let (ij, mae) = (&study.points[0].experiment.data, &study.points[1].experiment.data);
    assert_eq!((ij.crop_scale, ij.hflip, ij.interpolation), ((0.3, 1.0), 0.0, Interpolation::Bilinear));
    assert_eq!((mae.crop_scale, mae.hflip, mae.interpolation), ((0.3, 1.0), 0.5, Interpolation::Bicubic));
}

#[test]
fn dino_experiments_read_their_block() {
    let e = exp("recipe \"dino\"\n dino {\n out-dim 4096\n hidden-dim 512\n bottleneck-dim 64\n norm-last-layer #false\n local-crops 6\n local-size 28\n local-scale 0.1 0.5\n global-scale 0.3 1.0\n teacher-temp 0.07\n warmup-teacher-temp-epochs 3\n momentum-teacher 0.99\n freeze-last-layer 0\n clip-grad 0\n }");
    assert_eq!(e.recipe, "dino");
    let d = &e.dino;
    assert_eq!((d.out_dim, d.hidden_dim, d.bottleneck_dim, d.norm_last_layer), (4096, 512, 64, false));
    assert_eq!((d.local_crops, d.local_size, d.local_scale, d.global_scale), (6, 28, (0.1, 0.5), (0.3, 1.0)));
    assert_eq!((d.teacher_temp, d.warmup_teacher_temp, d.warmup_teacher_temp_epochs), (0.07, 0.04, 3));
    assert_eq!((d.momentum_teacher, d.freeze_last_layer, d.clip_grad, d.student_temp), (0.99, 0, 0.0, 0.1));
    // the official defaults; not serialised while default (stage hashes of other experiments keep)
    let e = exp("recipe \"dino\"\n encoder \"vit-small\" patch=16");
    assert_eq!(e.dino, DinoConfig::default());
    assert_eq!((e.dino.out_dim, e.dino.local_crops, e.dino.local_size), (65536, 8, 96));
    assert!(!serde_json::to_string(&e).unwrap().contains("\"dino\":{"));
    // local crops are whole patches and smaller than the global crops (the default 96 px is
    // the official size at 224 px: at 28 px it is refused, with the scaled size to write)
    let small = "recipe \"dino\"\n data \"fashion-mnist\" { crop-size 28; }\n encoder width=64 depth=2 heads=2 patch=4";
    assert_eq!(errs(small), vec!["conflict"]);
    let text = match parse_str("t.kdl", &format!("experiment \"t\" {{\n{small}\n}}\n")) {
        Err(d) => d.render_plain(),
        Ok(_) => String::new(),
    };
    assert!(text.contains("local crops of 96 px (the default 96) are larger than its 28 px global crops") && text.contains("local-size 12"), "{text}");
    assert_eq!(errs(&format!("{small}\n dino {{ local-size 10; }}")), vec!["conflict"]);
    assert!(errs(&format!("{small}\n dino {{ local-size 12; }}")).is_empty());
    assert!(errs(&format!("{small}\n dino {{ local-crops 0; }}")).is_empty());
    // the bare defaults too (the language's ViT-H/14: 96 px is no whole number of 14 px
    // patches), and what a base wrote: the run failed building the model, or trained on
    // local crops larger than the global ones
    assert_eq!(errs("recipe \"dino\""), vec!["conflict"]);
    let d = std::env::temp_dir().join(format!("ijepa-dino-base-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("base.kdl"), "experiment \"b\" {\n recipe \"mae\"\n data \"fashion-mnist\" { crop-size 28; }\n encoder width=32 depth=2 heads=2 patch=4\n}\n").unwrap();
    std::fs::write(d.join("child.kdl"), "experiment \"c\" {\n extends \"base.kdl\"\n recipe \"dino\"\n dino { out-dim 64; local-crops 2; }\n}\n").unwrap();
    let text = crate::load(&d.join("child.kdl")).map(|_| String::new()).unwrap_or_else(|e| e.render_plain());
    assert!(text.contains("local crops of 96 px (the default 96) are larger than its 28 px global crops") && text.contains("child.kdl:4:"), "{text}");
    // a size the base wrote is the base's, not the default
    std::fs::write(d.join("dino-base.kdl"), "experiment \"b\" {\n recipe \"dino\"\n data \"fashion-mnist\" { crop-size 28; }\n encoder width=32 depth=2 heads=2 patch=4\n dino { local-size 12; }\n}\n").unwrap();
    std::fs::write(d.join("dino-child.kdl"), "experiment \"c\" {\n extends \"dino-base.kdl\"\n data \"fashion-mnist\" { crop-size 8; }\n}\n").unwrap();
    let text = crate::load(&d.join("dino-child.kdl")).map(|_| String::new()).unwrap_or_else(|e| e.render_plain());
    assert!(text.contains("local crops of 12 px (from the base) are"), "{text}");
    std::fs::remove_dir_all(&d).ok();
    // MAE's random mask must keep a patch of the grid
    let mae = "recipe \"mae\"\n data \"fashion-mnist\" { crop-size 16; }\n encoder width=64 depth=2 heads=2 patch=4\n decoder depth=1 width=32 heads=2";
    assert_eq!(errs(&format!("{mae}\n mask \"random\" {{ ratio 0.99; }}")), vec!["conflict"]);
    // a single-patch grid is one error, not also the masks that cannot fit in it
    assert_eq!(errs("data \"fashion-mnist\" { crop-size 4; }\n encoder width=64 depth=2 heads=2 patch=4"), vec!["conflict"]);
    assert!(errs(&format!("{mae}\n mask \"random\" {{ ratio 0.9; }}")).is_empty());
    // ... and mask one: 16 patches x (1 - 0.05) keeps 15, 1e-17 keeps all 16 (a 0/0 loss)
    assert!(errs(&format!("{mae}\n mask \"random\" {{ ratio 0.07; }}")).is_empty());
    for small in ["0.001", "1e-15"] {
        assert!(errs(&format!("{mae}\n mask \"random\" {{ ratio {small}; }}")).is_empty(), "{small}");
    }
    let text = parse_str("t.kdl", &format!("experiment \"t\" {{\n{mae}\n mask \"random\" {{ ratio 1e-17; }}\n}}\n")).unwrap_err().render_plain();
    assert!(text.contains("masks no patch of the 4x4 grid's 16") && text.contains("any ratio of 1e-15 or more masks at least one of the 16 patches"), "{text}");
    // the bound the help gives is itself accepted: 48/49 = 0.97959... is shown rounded down
    let mae7 = "recipe \"mae\"\n data \"fashion-mnist\" { crop-size 28; }\n encoder width=64 depth=2 heads=2 patch=4\n decoder depth=1 width=32 heads=2";
    let text = parse_str("t.kdl", &format!("experiment \"t\" {{\n{mae7}\n mask \"random\" {{ ratio 0.98; }}\n}}\n")).unwrap_err().render_plain();
    assert!(text.contains("at most 0.9795 keeps one patch of 49"), "{text}");
    assert!(errs(&format!("{mae7}\n mask \"random\" {{ ratio 0.9795; }}")).is_empty());
    // ... on grids where the bound to the digit keeps none in floating point (1 - 1/400 is
    // 0.9975, and 400 x (1 - 0.9975) is 0.99999...: it was advised, and refused again)
    for (crop, bound) in [(80, Some("0.9974")), (200, None), (400, None), (1000, None)] {
        let mae = format!("recipe \"mae\"\n data \"fashion-mnist\" {{ crop-size {crop}; }}\n encoder width=64 depth=2 heads=2 patch=4\n decoder depth=1 width=32 heads=2");
        let text = parse_str("t.kdl", &format!("experiment \"t\" {{\n{mae}\n mask \"random\" {{ ratio 0.9999999; }}\n}}\n")).unwrap_err().render_plain();
        let advised = text.split("at most ").nth(1).and_then(|t| t.split_whitespace().next()).unwrap_or_else(|| panic!("{text}"));
        assert!(bound.is_none_or(|b| b == advised), "{crop}: {text}");
        assert!(errs(&format!("{mae}\n mask \"random\" {{ ratio {advised}; }}")).is_empty(), "{crop}: {advised}");
        // (the least it masks beyond one patch: a digit higher keeps none)
        let decimals = advised.len() - 2;
        let over = format!("{:.*}", decimals, advised.parse::<f64>().unwrap() + 10f64.powi(-(decimals as i32)));
        assert!(!errs(&format!("{mae}\n mask \"random\" {{ ratio {over}; }}")).is_empty(), "{crop}: {over}");
    }
    // main_dino.py's learning rate unless written: from 0 over 10 epochs to blr 5e-4 x batch / 256
    assert_eq!((e.optimizer.lr.start, e.optimizer.lr.warmup_epochs, e.optimizer.lr.blr, e.optimizer.lr.final_), (0.0, 10.0, Some(5e-4), 1e-6));
    let e = exp("recipe \"dino\"\n encoder \"vit-small\" patch=16\n optimizer \"adamw\" { lr start=1e-4 peak=5e-4 final=1e-6 warmup-epochs=1; }");
    assert_eq!((e.optimizer.lr.start, e.optimizer.lr.blr), (1e-4, None));
    // ... also I-JEPA's schedule written out (the language's default values)
    let e = exp("recipe \"dino\"\n encoder \"vit-small\" patch=16\n optimizer \"adamw\" { lr start=2e-4 peak=1e-3 final=1e-6 warmup-epochs=40; }");
    assert_eq!((e.optimizer.lr.start, e.optimizer.lr.peak, e.optimizer.lr.warmup_epochs, e.optimizer.lr.blr), (2e-4, 1e-3, 40.0, None));
    // what is not written is DINO's: a peak alone keeps DINO's start and warm-up
    let e = exp("recipe \"dino\"\n encoder \"vit-small\" patch=16\n optimizer \"adamw\" { lr peak=1e-3; }");
    assert_eq!((e.optimizer.lr.start, e.optimizer.lr.peak, e.optimizer.lr.warmup_epochs, e.optimizer.lr.blr), (0.0, 1e-3, 10.0, None));
    assert_eq!(errs("recipe \"dino\"\n encoder \"vit-small\" patch=16\n dino { local-crops -1 }"), vec!["out_of_range"]);
    assert_eq!(errs("recipe \"dino\"\n encoder \"vit-small\" patch=16\n dino { teacher-temp 0 }"), vec!["out_of_range"]);
    // a temperature float32 cannot hold (0 or a subnormal there: the loss was NaN at step 0)
    // (or infinity there: a uniform softmax, the loss ln(out-dim) whatever the weights)
    for t in ["student-temp 1e-46", "teacher-temp 1e-39", "warmup-teacher-temp 1e-300; warmup-teacher-temp-epochs 1", "student-temp 1e39", "teacher-temp 1e300"] {
        assert_eq!(errs(&format!("recipe \"dino\"\n encoder \"vit-small\" patch=16\n epochs 2\n dino {{ {t} }}")), vec!["out_of_range"], "{t}");
    }
    // the student's stochastic depth: official 0.1, a rate in [0, 1); a written dino block of
    // a run's config.json from before the setting reads as none (those runs had none)
    assert_eq!(exp("recipe \"dino\"\n encoder \"vit-small\" patch=16").dino.drop_path_rate, 0.1);
    assert_eq!(exp("recipe \"dino\"\n encoder \"vit-small\" patch=16\n dino { drop-path-rate 0 }").dino.drop_path_rate, 0.0);
    assert_eq!(errs("recipe \"dino\"\n encoder \"vit-small\" patch=16\n dino { drop-path-rate 1 }"), vec!["out_of_range"]);
    assert_eq!(errs("recipe \"dino\"\n encoder \"vit-small\" patch=16\n dino { drop-path-rate -0.1 }"), vec!["out_of_range"]);
    // one block drops nothing (rates linspace(0, r, 1) = [0]): a written rate would be ignored
    let one = "recipe \"dino\"\n data \"fashion-mnist\" { crop-size 28; }\n encoder width=32 depth=1 heads=2 patch=4";
    assert_eq!(errs(&format!("{one}\n dino {{ local-size 12; drop-path-rate 0.5 }}")), vec!["invalid_value"]);
    assert!(errs(&format!("{one}\n dino {{ local-size 12 }}")).is_empty());
    // a head of one layer has no hidden layer; a temperature warm-up longer than the run never
    // reaches the teacher temperature (the official code fails there)
    assert_eq!(errs(&format!("{one}\n dino {{ local-size 12; head-layers 1; hidden-dim 32 }}")), vec!["invalid_value"]);
    assert!(errs(&format!("{one}\n dino {{ local-size 12; head-layers 1 }}")).is_empty());
    assert_eq!(errs(&format!("{one}\n epochs 2\n dino {{ local-size 12; warmup-teacher-temp-epochs 3 }}")), vec!["invalid_value"]);
    assert!(errs(&format!("{one}\n epochs 3\n dino {{ local-size 12; warmup-teacher-temp-epochs 3 }}")).is_empty());
    // local crops all larger than the global ones swap the two kinds of views
    assert_eq!(errs(&format!("{one}\n dino {{ local-size 12; local-scale 0.5 1.0; global-scale 0.05 0.1 }}")), vec!["conflict"]);
    assert!(errs(&format!("{one}\n dino {{ local-size 12; local-scale 0.05 0.5; global-scale 0.4 1.0 }}")).is_empty());
    // ... unless a sweep varies the depth, or the encoder above it: other points read the rate
    for vary in ["vary \"encoder.depth\" 1 2", "vary \"encoder\" \"vit-tiny\""] {
        let src = format!("experiment \"d\" {{\n{one}\n dino {{ local-size 12; drop-path-rate 0.5 }}\n}}\nsweep \"grid\" {{\n {vary}\n}}\n");
        assert!(crate::parse_study("d.kdl", &src).is_ok(), "{vary}: {}", crate::parse_study("d.kdl", &src).err().map(|d| d.render_plain()).unwrap_or_default());
    }
    let mut old = serde_json::to_value(exp("recipe \"dino\"\n encoder \"vit-small\" patch=16\n dino { out-dim 64 }")).unwrap();
    old["dino"].as_object_mut().unwrap().remove("drop_path_rate");
    assert_eq!(serde_json::from_value::<Experiment>(old).unwrap().dino.drop_path_rate, 0.0);
    assert_eq!(errs("recipe \"dino\"\n encoder \"vit-small\" patch=16\n dino { out-dims 10 }"), vec!["unknown_node"]);
    assert_eq!(errs("recipe \"dino\"\n encoder \"vit-small\" patch=16\n mask \"random\""), vec!["not_of_recipe"]);
    assert_eq!(errs("dino { out-dim 10 }"), vec!["not_of_recipe"]);
    assert_eq!(errs("recipe \"dino\"\n encoder \"vit-small\" patch=16\n dino { out-dim 1 }"), vec!["out_of_range"]);
}

#[test]
fn a_setting_of_another_recipe_names_both() {
    for (body, node) in [
        ("recipe \"ijepa\"\n decoder depth=2", "decoder"),
        ("recipe \"mae\"\n predictor depth=2", "predictor"),
        ("recipe \"mae\"\n ema start=0.99", "ema"),
        ("predictor depth=2\n recipe \"mae\"", "predictor"),
    ] {
        let src = format!("experiment \"t\" {{\n{body}\n}}\n");
        let d = parse_str("test.kdl", &src).expect_err(body);
        let text = d.render_plain();
        assert_eq!(d.codes(), vec!["ijepa::dsl::not_of_recipe".to_string()], "{text}");
        assert!(text.contains(&format!("`{node}` is a setting of recipe")), "{text}");
    }
    let d = parse_str("test.kdl", "experiment \"t\" {\n recipe \"mae\"\n mask \"multi-block\" { min-keep 3 }\n}\n").unwrap_err();
    let text = d.render_plain();
    assert!(d.codes() == vec!["ijepa::dsl::not_of_recipe".to_string()] && text.contains("samples mask \"random\""), "{text}");
    // I-JEPA's per-block rescale of the initialisation: MAE and DINO do not read it (accepted,
    // it moved the hash and trained the same model), alone or at a sweep's point
    for recipe in ["mae", "dino"] {
        let own = if recipe == "dino" { " dino { local-size 8 }\n" } else { "" };
        let src = format!("experiment \"t\" {{\n recipe \"{recipe}\"\n encoder width=32 depth=2 heads=2 patch=4 rescale-init=#true\n{own}}}\n");
        let d = parse_str("test.kdl", &src).expect_err(recipe);
        let text = d.render_plain();
        assert!(d.codes() == vec!["ijepa::dsl::not_of_recipe".to_string()] && text.contains("`encoder rescale-init` is a setting of recipe \"ijepa\"") && text.contains("remove `rescale-init=#true`"), "{text}");
        let src = format!("experiment \"t\" {{\n recipe \"{recipe}\"\n encoder width=32 depth=2 heads=2 patch=4\n{own}}}\nsweep \"grid\" {{\n vary \"encoder.rescale-init\" #false #true\n}}\n");
        let text = crate::parse_study("t.kdl", &src).expect_err(recipe).render_plain();
        assert!(text.contains("`encoder rescale-init` is a setting of recipe"), "{text}");
    }
    assert!(parse_str("test.kdl", "experiment \"t\" {\n encoder width=32 depth=2 heads=2 patch=4 rescale-init=#true\n}\n").is_ok());
    // a sweep over recipes keeps it for its I-JEPA points, as it keeps each recipe's settings
    // (its MAE point as it was before the rule)
    let methods = "experiment \"t\" {\n encoder width=32 depth=2 heads=2 patch=4 rescale-init=#true\n predictor depth=1 width=16 heads=2\n decoder depth=1 width=16 heads=2\n mask \"multi-block\" { min-keep 3 }\n}\nsweep { vary \"recipe\" \"ijepa\" \"mae\"; }\n";
    let study = crate::parse_study("t.kdl", methods).unwrap_or_else(|d| panic!("{}", d.render_plain()));
    assert!(study.points.iter().all(|p| p.experiment.encoder.rescale_init));
    // ... also where it varies the encoder beside the recipe; but a sweep over MAE and DINO
    // alone has no point that reads it
    let presets = methods.replace("sweep { vary \"recipe\" \"ijepa\" \"mae\"; }", "sweep { vary \"recipe\" \"ijepa\" \"mae\"; vary \"encoder.depth\" 1 2; }");
    assert!(crate::parse_study("t.kdl", &presets).is_ok(), "{}", crate::parse_study("t.kdl", &presets).unwrap_err().render_plain());
    let unread = methods.replace("sweep { vary \"recipe\" \"ijepa\" \"mae\"; }", "sweep { vary \"recipe\" \"mae\" \"dino\"; }").replace(" predictor depth=1 width=16 heads=2\n", " dino { local-size 8 }\n").replace(" mask \"multi-block\" { min-keep 3 }\n", "");
    let text = crate::parse_study("t.kdl", &unread).unwrap_err().render_plain();
    assert!(text.contains("`encoder rescale-init` is a setting of recipe"), "{text}");
    let d = parse_str("test.kdl", "experiment \"t\" {\n recipe \"mae\"\n mask \"block\"\n}\n").unwrap_err();
    assert!(d.render_plain().contains("samples mask \"random\""), "{}", d.render_plain());
}

#[test]
fn ijepa_reads_the_table6_mask_kinds_and_its_target_node() {
    let e = exp("mask \"rasterized\"");
    assert_eq!(e.mask.kind, MaskKind::Rasterized);
    let e = exp("mask \"block\"");
    assert_eq!((e.mask.kind, e.mask.n_targets, e.mask.target_scale), (MaskKind::Block, 1, (0.6, 0.6)));
    let e = exp("mask \"block\" { scale 0.5 0.7; aspect 1.0 1.0 }");
    assert_eq!((e.mask.target_scale, e.mask.target_aspect), ((0.5, 0.7), (1.0, 1.0)));
    let e = exp("mask \"random\"");
    assert_eq!((e.mask.kind, e.mask.ratio), (MaskKind::Random, 0.6), "Table 6's 60% for I-JEPA");
    let e = exp("recipe \"mae\"\n mask \"random\"");
    assert_eq!(e.mask.ratio, 0.75, "MAE's own default");
    // wherever `recipe` is written (it took I-JEPA's 0.6 when written after the mask)
    let e = exp("mask \"random\"\n recipe \"mae\"");
    assert_eq!(e.mask.ratio, 0.75, "MAE's own default, recipe written last");
    let e = exp("mask \"random\" { ratio 0.6 }\n recipe \"mae\"");
    assert_eq!(e.mask.ratio, 0.6, "a written ratio is kept");
    assert_eq!(errs("mask \"rasterized\" { scale 0.5 0.5 }"), ["unknown_node"]);
    assert_eq!(errs("mask \"block\" { targets count=2 }"), ["unknown_node"]);
    assert_eq!(errs("mask \"block\" { scale 0 0.5 }"), ["out_of_range"]);
    assert_eq!(errs("recipe \"mae\"\n mask \"rasterized\""), ["not_of_recipe"]);
    assert_eq!(exp("target \"pixels\"").target, TargetConfig { kind: TargetKind::Pixels, masking: TargetMasking::Output });
    assert_eq!(exp("target masking=\"input\"").target, TargetConfig { kind: TargetKind::Representation, masking: TargetMasking::Input });
    assert_eq!(errs("target \"pixels\" masking=\"input\""), ["invalid_value"]);
    assert_eq!(errs("target \"voxels\""), ["unknown_value"]);
    assert_eq!(errs("target masking=\"middle\""), ["unknown_value"]);
    assert_eq!(errs("recipe \"mae\"\n target \"pixels\""), ["not_of_recipe"]);
    // the method's own target stays out of the serialised form (stage hashes unchanged)
    let text = serde_json::to_string(&exp("target \"representation\" masking=\"output\"")).unwrap();
    assert!(!text.contains("\"target\""), "{text}");
    assert!(serde_json::to_string(&exp("target \"pixels\"")).unwrap().contains("\"target\":{\"kind\":\"pixels\""));
}

#[test]
fn ijepa_experiments_serialise_as_before() {
    // the new fields stay out of an I-JEPA experiment's serialised form (stage hashes)
    let text = serde_json::to_string(&exp("encoder width=96 depth=2 heads=3 patch=4")).unwrap();
    assert!(!text.contains("\"decoder\"") && !text.contains("\"kind\"") && !text.contains("\"ratio\""), "{text}");
}

#[test]
fn a_sweep_over_recipes_keeps_each_points_settings() {
    let src = r#"experiment "m" {
    encoder width=96 depth=2 heads=3 patch=4
    predictor depth=2 width=48
    decoder depth=1 width=32 heads=2
    mask "multi-block" { min-keep 3 }
}
sweep "grid" {
    vary "recipe" "ijepa" "mae"
}
"#;
    let study = crate::parse_study("m.kdl", src).map_err(|d| d.render_plain()).unwrap();
    let (ij, mae) = (&study.points[0].experiment, &study.points[1].experiment);
    assert_eq!((ij.recipe.as_str(), ij.mask.kind, ij.mask.min_keep, ij.optimizer.betas), ("ijepa", MaskKind::MultiBlock, 3, (0.9, 0.999)));
    assert_eq!((mae.recipe.as_str(), mae.mask.kind, mae.optimizer.betas), ("mae", MaskKind::Random, (0.9, 0.95)));
    assert_eq!(mae.decoder.depth, 1);
    // a DINO point gets DINO's learning-rate schedule, as a DINO file does; a written
    // property stays on every point
    let src = "experiment \"m\" {\n encoder width=96 depth=2 heads=3 patch=4\n optimizer \"adamw\" { lr final=1e-5; }\n}\nsweep \"grid\" {\n vary \"recipe\" \"ijepa\" \"dino\"\n}\n";
    let study = crate::parse_study("m.kdl", src).map_err(|d| d.render_plain()).unwrap();
    let (ij, dino) = (&study.points[0].experiment.optimizer.lr, &study.points[1].experiment.optimizer.lr);
    assert_eq!((ij.start, ij.peak, ij.warmup_epochs, ij.blr, ij.final_), (2e-4, 1e-3, 40.0, None, 1e-5));
    assert_eq!((dino.start, dino.warmup_epochs, dino.blr, dino.final_), (0.0, 10.0, Some(5e-4), 1e-5));
    // without the sweep, the decoder is another recipe's setting
    assert_eq!(errs("encoder width=96 depth=2 heads=3 patch=4\n decoder depth=1"), vec!["not_of_recipe"]);
}

/// A sweep varies only what its points' recipe reads (another recipe's setting would train
/// one model under several labels), and each recipe's own settings can be varied: MAE's mask
/// ratio, DINO's block.
#[test]
fn a_sweep_varies_what_its_recipe_reads() {
    let sweep = |recipe: &str, vary: &str| -> Vec<String> {
        let src = format!("experiment \"s\" {{\n recipe \"{recipe}\"\n encoder width=96 depth=2 heads=3 patch=4\n}}\nsweep \"grid\" {{\n {vary}\n}}\n");
        match crate::parse_study("s.kdl", &src) {
            Ok(_) => vec![],
            Err(d) => d.codes().into_iter().map(|c| c.trim_start_matches("ijepa::dsl::").to_string()).collect(),
        }
    };
    assert_eq!(sweep("mae", "vary \"predictor.depth\" 1 2"), ["not_of_recipe"]);
    assert_eq!(sweep("ijepa", "vary \"decoder.width\" 32 64"), ["not_of_recipe"]);
    assert_eq!(sweep("dino", "vary \"decoder.depth\" 1 2"), ["not_of_recipe"]);
    assert_eq!(sweep("dino", "vary \"mask.targets.scale\" { - 0.1 0.2; - 0.15 0.2; }"), ["not_of_recipe"]);
    // DINO's views are its own multi-crop's: the data block's augmentations are not read
    assert_eq!(sweep("dino", "vary \"data.horizontal-flip\" 0.0 0.5"), ["not_of_recipe"]);
    assert_eq!(sweep("dino", "vary \"data.crop-scale\" { - 0.3 1.0; - 0.5 1.0; }"), ["not_of_recipe"]);
    assert_eq!(sweep("mae", "vary \"data.horizontal-flip\" 0.0 0.5"), Vec::<String>::new());
    // ... unless an evaluation fine-tunes, through the experiment's training transform
    let finetuned = "experiment \"s\" {\n recipe \"dino\"\n encoder width=96 depth=2 heads=3 patch=4\n eval \"finetune\" { epochs 1; }\n}\nsweep \"grid\" {\n vary \"data.horizontal-flip\" 0.0 0.5\n}\n";
    assert!(crate::parse_study("s.kdl", finetuned).is_ok());
    assert!(sweep("ijepa", "vary \"predictor.depth\" 1 2").is_empty());
    // a sweep over recipes pairs values with recipes: a point ignores what its recipe does not read
    assert!(sweep("ijepa", "vary \"recipe\" \"ijepa\" \"mae\"\n vary \"predictor.depth\" 1 2").is_empty());
    // ... a multi-block mask's settings too (MAE's random mask has no `targets`: "unknown node")
    assert!(sweep("ijepa", "vary \"recipe\" \"ijepa\" \"mae\" \"dino\"\n vary \"mask.targets.count\" 2 3").is_empty());
    let src = "experiment \"s\" {\n encoder width=96 depth=2 heads=3 patch=4\n mask \"multi-block\" { min-keep 4 }\n}\nsweep \"grid\" {\n vary \"recipe\" \"ijepa\" \"mae\"\n vary \"mask.targets.count\" 2 3\n}\n";
    let study = crate::parse_study("s.kdl", src).map_err(|d| d.render_plain()).unwrap();
    let targets: Vec<(String, MaskKind, usize)> = study.points.iter().map(|p| (p.experiment.recipe.clone(), p.experiment.mask.kind, p.experiment.mask.n_targets)).collect();
    assert_eq!(targets[..2], [("ijepa".to_string(), MaskKind::MultiBlock, 2), ("ijepa".to_string(), MaskKind::MultiBlock, 3)]);
    assert!(targets[2..].iter().all(|(r, k, _)| r == "mae" && *k == MaskKind::Random), "{targets:?}");
    // a setting only the block's own recipe reads, where the sweep's recipes leave it out, is
    // read by no point: refused (an MAE/DINO sweep dropped the I-JEPA predictor and mask)
    let src = "experiment \"s\" {\n encoder width=96 depth=2 heads=3 patch=4\n predictor depth=1 width=48\n mask \"multi-block\" { min-keep 4 }\n}\nsweep \"grid\" {\n vary \"recipe\" \"mae\" \"dino\"\n}\n";
    let d = crate::parse_study("s.kdl", src).expect_err("no point reads them");
    let text = d.render_plain();
    assert_eq!(d.codes(), ["ijepa::dsl::not_of_recipe", "ijepa::dsl::not_of_recipe"], "{text}");
    assert!(text.contains("`predictor` is a setting of recipe \"ijepa\", not of recipe \"mae\" / \"dino\"") && text.contains("`mask \"multi-block\"`"), "{text}");
    assert!(text.contains("add \"ijepa\" to `vary \"recipe\"`"), "{text}");
    // ... as long as one swept recipe reads it, it is kept for that recipe's points
    let src = "experiment \"s\" {\n encoder width=96 depth=2 heads=3 patch=4\n predictor depth=1 width=48\n}\nsweep \"grid\" {\n vary \"recipe\" \"ijepa\" \"mae\"\n}\n";
    assert!(crate::parse_study("s.kdl", src).is_ok());
    // ... but one no point's mask has is refused (it varied nothing, without a word)
    let src = "experiment \"s\" {\n encoder width=96 depth=2 heads=3 patch=4\n mask \"random\"\n}\nsweep \"grid\" {\n vary \"recipe\" \"ijepa\" \"mae\"\n vary \"mask.targets.count\" 2 3\n}\n";
    let text = crate::parse_study("s.kdl", src).expect_err("no point reads it").render_plain();
    assert!(text.contains("no point of this sweep has a mask that reads `mask.targets.count`"), "{text}");
    // each recipe's own settings, applied to its points
    assert!(sweep("mae", "vary \"mask.ratio\" 0.6 0.75").is_empty());
    assert!(sweep("dino", "vary \"dino.teacher-temp\" 0.04 0.07").is_empty());
    let src = "experiment \"s\" {\n recipe \"mae\"\n encoder width=96 depth=2 heads=3 patch=4\n}\nsweep \"grid\" {\n vary \"mask.ratio\" 0.6 0.75\n}\n";
    let study = crate::parse_study("s.kdl", src).map_err(|d| d.render_plain()).unwrap();
    let ratios: Vec<(MaskKind, f64)> = study.points.iter().map(|p| (p.experiment.mask.kind, p.experiment.mask.ratio)).collect();
    assert_eq!(ratios, [(MaskKind::Random, 0.6), (MaskKind::Random, 0.75)]);
    let src = "experiment \"s\" {\n recipe \"dino\"\n encoder width=96 depth=2 heads=3 patch=4\n}\nsweep \"grid\" {\n vary \"dino.local-crops\" 2 4\n}\n";
    let study = crate::parse_study("s.kdl", src).map_err(|d| d.render_plain()).unwrap();
    assert_eq!(study.points.iter().map(|p| p.experiment.dino.local_crops).collect::<Vec<_>>(), [2, 4]);
    // in a sweep over recipes, MAE's ratio goes under the random mask its points sample
    let src = "experiment \"s\" {\n encoder width=96 depth=2 heads=3 patch=4\n}\nsweep \"grid\" {\n vary \"recipe\" \"mae\"\n vary \"mask.ratio\" 0.6 0.75\n}\n";
    let study = crate::parse_study("s.kdl", src).map_err(|d| d.render_plain()).unwrap();
    let ratios: Vec<(MaskKind, f64)> = study.points.iter().map(|p| (p.experiment.mask.kind, p.experiment.mask.ratio)).collect();
    assert_eq!(ratios, [(MaskKind::Random, 0.6), (MaskKind::Random, 0.75)]);
    // a random mask written without a ratio, swept over recipes: each point has its recipe's
    let src = "experiment \"s\" {\n encoder width=96 depth=2 heads=3 patch=4\n mask \"random\"\n}\nsweep \"grid\" {\n vary \"recipe\" \"mae\" \"ijepa\"\n}\n";
    let study = crate::parse_study("s.kdl", src).map_err(|d| d.render_plain()).unwrap();
    let ratios: Vec<(String, f64)> = study.points.iter().map(|p| (p.experiment.recipe.clone(), p.experiment.mask.ratio)).collect();
    assert_eq!(ratios, [("mae".to_string(), 0.75), ("ijepa".to_string(), 0.6)]);
    // a kind is applied before the settings inside it, whatever the order of the `vary` lines:
    // a setting the kind lacks is an error either way (it was silently dropped when the kind
    // came second), and one it has is kept
    let order = |first: &str, second: &str| {
        let src = format!("experiment \"s\" {{\n encoder width=96 depth=2 heads=3 patch=4\n}}\nsweep \"grid\" {{\n {first}\n {second}\n}}\n");
        crate::parse_study("s.kdl", &src).map(|s| s.points.iter().map(|p| (p.experiment.mask.kind, p.experiment.mask.min_keep)).collect::<Vec<_>>()).map_err(|d| d.render_plain())
    };
    let (kind, keep) = ("vary \"mask\" \"multi-block\" \"rasterized\"", "vary \"mask.min-keep\" 3 4");
    assert!(order(kind, keep).unwrap_err().contains("unknown node `min-keep` in `mask`"));
    assert!(order(keep, kind).unwrap_err().contains("unknown node `min-keep` in `mask`"));
    let kind = "vary \"mask\" \"multi-block\"";
    assert_eq!(order(keep, kind).unwrap(), [(MaskKind::MultiBlock, 3), (MaskKind::MultiBlock, 4)]);
    // a mask setting applies to the experiment's own kind: on a kind without it, an error at
    // the value (it was a silent switch to a multi-block mask with that setting)
    let src = "experiment \"s\" {\n encoder width=96 depth=2 heads=3 patch=4\n mask \"rasterized\"\n}\nsweep \"grid\" {\n vary \"mask.min-keep\" 3 4\n}\n";
    let e = crate::parse_study("s.kdl", src).unwrap_err().render_plain();
    assert!(e.contains("unknown node `min-keep` in `mask`"), "{e}");
    // a block mask's own scale and aspect (Table 6's Block(0.6), swept: they were no sweep
    // paths at all)
    let src = "experiment \"s\" {\n data \"fashion-mnist\" { crop-size 56 }\n encoder width=96 depth=2 heads=3 patch=4\n mask \"block\"\n}\nsweep \"grid\" {\n vary \"mask.scale\" { - 0.5 0.5; - 0.6 0.6; }\n vary \"mask.aspect\" { - 1.0 1.0; }\n}\n";
    let study = crate::parse_study("s.kdl", src).map_err(|d| d.render_plain()).unwrap();
    let blocks: Vec<_> = study.points.iter().map(|p| (p.experiment.mask.kind, p.experiment.mask.target_scale, p.experiment.mask.target_aspect)).collect();
    assert_eq!(blocks, [(MaskKind::Block, (0.5, 0.5), (1.0, 1.0)), (MaskKind::Block, (0.6, 0.6), (1.0, 1.0))]);
    // ... and on a multi-block mask, which has none, an error at the value
    let e = crate::parse_study("s.kdl", &src.replace("mask \"block\"", "mask \"multi-block\"")).unwrap_err().render_plain();
    assert!(e.contains("unknown node `scale` in `mask`"), "{e}");
}

/// Rules found by an adversarial pass: each was accepted by `check` and failed (or trained
/// something else) at run time.
#[test]
fn run_time_failures_are_found_at_check() {
    let mask = "mask \"multi-block\" { min-keep 4 }";
    // nothing held out to choose among a grid or among feature sets
    assert_eq!(errs("eval \"linear\" { held-out 0 }"), ["conflict"]);
    assert_eq!(errs("eval \"knn\" { held-out 0; features \"last\" \"last4\" }\nencoder width=32 depth=4 heads=2 patch=14"), ["conflict"]);
    assert_eq!(errs("eval \"finetune\" { held-out 0; lr 1e-3 2e-3 }"), ["conflict"]);
    // (with one pair, `held-out` is never read: refused as unread, 0 too)
    assert_eq!(errs("eval \"finetune\" { held-out 0 }"), ["invalid_value"]);
    assert!(errs("eval \"linear\" { held-out 0; lr 0.1; weight-decay 0 }").is_empty());
    // pixel targets have no target encoder: a sweep of the EMA would train one model
    let src = "experiment \"p\" {\n target \"pixels\"\n mask \"multi-block\" { min-keep 4 }\n}\nsweep \"grid\" {\n vary \"ema.start\" 0.99 0.996\n}\n";
    let codes = crate::parse_study("p.kdl", src).err().map(|d| d.codes()).unwrap_or_default();
    assert_eq!(codes, ["ijepa::dsl::invalid_value"]);
    assert!(crate::parse_study("p.kdl", &src.replace("target \"pixels\"\n", "")).is_ok());
    // decoding settings on a dataset of arrays would be ignored
    assert_eq!(errs("data \"fashion-mnist\" { decode \"exact\" }"), ["invalid_value"]);
    assert_eq!(errs("data \"fashion-mnist\" { on-error \"skip\" }"), ["invalid_value"]);
    // ... unless a sweep varies the dataset (its image-folder points read them)
    let src = "experiment \"p\" {\n data \"image-folder\" root=\"/x\" { decode \"exact\" }\n}\nsweep \"grid\" {\n vary \"data\" \"fashion-mnist\" \"image-folder\"\n}\n";
    let r = crate::parse_study("p.kdl", src);
    assert!(r.as_ref().err().is_none_or(|d| !d.codes().contains(&"ijepa::dsl::invalid_value".to_string())), "{:?}", r.err().map(|d| d.render_plain()));
    // DINO settings another turns off: the warm-up's start with no warm-up, local crops' size
    // and scale with none
    let dino = "recipe \"dino\"\n data \"fashion-mnist\" { crop-size 28; }\n encoder width=64 depth=2 heads=2 patch=4";
    assert_eq!(errs(&format!("{dino}\n dino {{ warmup-teacher-temp 0.02; local-size 12; }}")), ["invalid_value"]);
    let text = parse_str("t.kdl", &format!("experiment \"t\" {{\n{dino}\n dino {{ warmup-teacher-temp 0.02; local-size 12; }}\n}}\n")).unwrap_err().render_plain();
    assert!(text.contains("`warmup-teacher-temp` is not read with no warm-up") && text.contains("official 30"), "{text}");
    assert!(errs(&format!("{dino}\n dino {{ warmup-teacher-temp 0.02; warmup-teacher-temp-epochs 2; local-size 12; }}")).is_empty());
    assert_eq!(errs(&format!("{dino}\n dino {{ local-crops 0; local-size 12; local-scale 0.1 0.3; warmup-teacher-temp-epochs 2; }}")), ["invalid_value", "invalid_value"]);
    assert!(errs(&format!("{dino}\n dino {{ local-crops 0; }}")).is_empty());
    // a sweep over the warm-up reads the start temperature at its other points; a sweep over
    // the start temperature with no warm-up would train one model under every label
    let sweep = |body: &str, vary: &str| {
        let src = format!("experiment \"p\" {{\n{dino}\n dino {{ local-size 12; {body} }}\n}}\nsweep \"grid\" {{\n {vary}\n}}\n");
        crate::parse_study("p.kdl", &src).err().map(|d| d.render_plain()).unwrap_or_default()
    };
    assert_eq!(sweep("warmup-teacher-temp 0.02;", "vary \"dino.warmup-teacher-temp-epochs\" 0 2"), "");
    assert!(sweep("", "vary \"dino.warmup-teacher-temp\" 0.02 0.03").contains("`warmup-teacher-temp` is not read with no warm-up"));
    assert_eq!(sweep("local-crops 0; local-scale 0.1 0.3;", "vary \"dino.local-crops\" 0 2"), "");
    // ... and an `ema` written beside pixel targets would be ignored (and moved the hash)
    assert_eq!(errs("target \"pixels\"\n ema start=0.9 final=0.95"), ["invalid_value"]);
    assert!(errs("target \"pixels\"").is_empty());
    // unless a sweep varies the target: its representation points read it
    let src = "experiment \"p\" {\n target \"pixels\"\n ema start=0.99 final=1.0\n}\nsweep \"grid\" {\n vary \"target\" \"representation\" \"pixels\"\n}\n";
    assert!(crate::parse_study("p.kdl", src).is_ok(), "{:?}", crate::parse_study("p.kdl", src).err().map(|d| d.render_plain()));
    // kNN holds images out only to choose among feature sets: with one, `held-out` is unread
    assert_eq!(errs("eval \"knn\" { held-out 0 }"), ["invalid_value"]);
    // unless a sweep varies the feature sets (as fine-tuning's grid): a point with several reads it
    let src = "experiment \"p\" {\n eval \"knn\" { held-out 0.2 }\n}\nsweep \"grid\" {\n vary \"eval.knn.features\" { - \"last\"; - \"last\" \"last4\"; }\n}\n";
    assert!(crate::parse_study("p.kdl", src).is_ok(), "{:?}", crate::parse_study("p.kdl", src).err().map(|d| d.render_plain()));
    let src = "experiment \"p\" {\n eval \"knn\" { held-out 0.2 }\n}\nsweep \"grid\" {\n vary \"eval.knn.k\" 10 20\n}\n";
    assert!(crate::parse_study("p.kdl", src).is_err());
    // a colour jitter whose hue (0.2 S) leaves [0, 0.5] checked, then failed at the run's start
    assert_eq!(errs("data \"fashion-mnist\" { color-jitter 3 }"), ["out_of_range"]);
    assert!(errs("data \"fashion-mnist\" { color-jitter 2.5 }").is_empty());
    // fine-tuning holds images out only to choose among lr x weight-decay pairs: with one (its
    // defaults), `held-out` is unread (it moved the hash: a sweep over it ran one fine-tuning twice)
    assert_eq!(errs("eval \"finetune\" { held-out 0.2 }"), ["invalid_value"]);
    assert!(errs("eval \"finetune\" { held-out 0.2; lr 1e-3 1e-4 }").is_empty());
    // ... as are a head's settings the chosen head does not read
    for (body, unread) in [
        ("eval \"low-shot\" { epochs 5 }", "epochs"),
        ("eval \"low-shot\" { head \"logistic\"; lr 0.1 }", "lr"),
        ("eval \"low-shot\" { decay-every 3 }", "decay-every"),
        ("eval \"low-shot\" { head \"linear\"; c 5 }", "c"),
    ] {
        let text = parse_str("t.kdl", &format!("experiment \"t\" {{\n{body}\n}}\n")).unwrap_err().render_plain();
        assert!(text.contains(&format!("`{unread}` is not read by this low-shot evaluation")), "{body}: {text}");
    }
    assert!(errs("eval \"low-shot\" { head \"linear\"; epochs 5; lr 0.1 }").is_empty());
    // the logistic probe cross-validates its C grid, and its feature sets on it: it holds
    // nothing out, and a `held-out` written for it is unread (it moved the hash, no result)
    assert!(errs("eval \"low-shot\" { c 1 10 }").is_empty());
    assert_eq!(errs("eval \"low-shot\" { held-out 0.05; c 1 10 }"), ["invalid_value"]);
    let deep = "encoder width=32 depth=4 heads=2 patch=14";
    assert!(errs(&format!("{deep}\neval \"low-shot\" {{ head \"logistic\"; features \"last\" \"last4\" }}")).is_empty());
    assert_eq!(errs(&format!("{deep}\neval \"low-shot\" {{ head \"logistic\"; features \"last\" \"last4\"; held-out 0.5 }}")), ["invalid_value"]);
    assert_eq!(errs(&format!("{deep}\neval \"low-shot\" {{ head \"logistic\"; features \"last\" \"last4\"; c 1 }}")), ["conflict"]);
    // a single patch leaves nothing to mask (I-JEPA, MAE); DINO has no masks
    let one = "data fashion-mnist { crop-size 4 }\nencoder width=32 depth=1 heads=2 patch=4";
    assert_eq!(errs(&format!("{one}\nmask \"random\" {{ ratio 0.5 }}")), ["conflict"]);
    assert_eq!(errs(&format!("{one}\nrecipe \"mae\"")), ["conflict"]);
    assert!(errs(&format!("{one}\nrecipe \"dino\"\ndino {{ local-crops 0; }}")).is_empty());
    // `limit` with the monitor's images and the batch
    let small = format!("data fashion-mnist {{ crop-size 28; limit 64; batch-size 16 }}\nencoder width=32 depth=1 heads=2 patch=4\n{mask}");
    assert!(errs(&small).is_empty());
    assert_eq!(errs(&format!("{small}\nmonitor images=64")), ["conflict"]);
    assert_eq!(errs(&format!("{small}\nmonitor images=50")), ["conflict"], "14 images left, batch 16");
    assert!(errs(&format!("{small}\nmonitor images=40 k=5")).is_empty());
    // a limit below what the smallest monitor holds out: the help asks for a larger limit
    // (it said "lower `monitor images=` below 10", which is under the monitor's 20)
    let tiny = small.replace("limit 64", "limit 10");
    let text = match parse_str("t.kdl", &format!("experiment \"t\" {{\n{tiny}\nmonitor images=20 k=5\n}}\n")) {
        Err(d) => d.render_plain(),
        Ok(_) => String::new(),
    };
    assert!(text.contains("raise `limit` to at least 36 (the monitor's 20 images and a batch of 16 to train on)"), "{text}");
    // a monitor voting among 30 neighbours holds out at least 31: 45 images cannot give it
    // that and a batch of 16, however few it is asked for
    let mid = small.replace("limit 64", "limit 45");
    let text = match parse_str("t.kdl", &format!("experiment \"t\" {{\n{mid}\nmonitor images=60 k=30\n}}\n")) {
        Err(d) => d.render_plain(),
        Ok(_) => String::new(),
    };
    assert!(text.contains("raise `limit` to at least 76") && !text.contains("lower `monitor images=`"), "{text}");
    // on the embedded subset, no `limit` past its 10,000 images is suggested (it keeps no more)
    let text = parse_str("t.kdl", "experiment \"t\" {\n data \"fashion-mnist\" { batch-size 9500; limit 9600 }\n monitor images=1000\n}\n").unwrap_err().render_plain().replace('\n', " ").split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("lower `batch-size` to at most 8600, or to at most 9000 with `limit` raised to 10000, the embedded subset's size (a larger one keeps no more)"), "{text}");
    // ... each way the help gives is taken when followed (it said "at most 0" for 16 processes,
    // that a larger `limit` kept no more below the subset's size, and the full data set alone)
    let flat = |src: &str| parse_str("t.kdl", &format!("experiment \"t\" {{\n{src}\n}}\n")).unwrap_err().render_plain().split_whitespace().filter(|w| *w != "|").collect::<Vec<_>>().join(" ");
    let sixteen = "distributed { gpus-per-node 16; backend \"gloo\" }\n monitor images=21";
    let text = flat(&format!("data \"fashion-mnist\" {{ batch-size 10000; limit 30 }}\n {sixteen}"));
    assert!(text.contains("lower `batch-size` to at most 623 and raise `limit` to 10000") && text.contains("the full data set's 60000 images are fewer than the 160021 a batch a process needs") && !text.contains("at most 0") && !text.contains("root="), "{text}");
    assert!(errs(&format!("data \"fashion-mnist\" {{ batch-size 623; limit 10000 }}\n {sixteen}")).is_empty());
    let text = flat("data \"fashion-mnist\" { batch-size 10000; limit 30 }\n monitor images=21");
    assert!(text.contains("lower `batch-size` to at most 9, or to at most 9979 with `limit` raised to 10000"), "{text}");
    assert!(errs("data \"fashion-mnist\" { batch-size 9979; limit 10000 }\n monitor images=21").is_empty());
    // without `limit`, the embedded subset's 10,000 images are known too (only the run said so,
    // with no place in the file); data in a folder is not counted here
    let embedded = "encoder width=32 depth=1 heads=2 patch=4\nmonitor images=10000";
    assert_eq!(errs(embedded), ["conflict"]);
    let text = match parse_str("t.kdl", &format!("experiment \"t\" {{\n{embedded}\n}}\n")) {
        Err(d) => d.render_plain(),
        Ok(_) => String::new(),
    };
    // (the rendering wraps its lines)
    let flat = text.split_whitespace().filter(|w| *w != "|").collect::<Vec<_>>().join(" ");
    assert!(flat.contains("the monitor holds out 10000 images, and the embedded Fashion-MNIST subset has 10000 training images") && flat.contains("give the full data set"), "{text}");
    // with `limit` above the subset, the batch is held to the subset's 10,000 images
    assert_eq!(errs("data \"fashion-mnist\" { limit 20000; batch-size 30000; }\nencoder width=32 depth=1 heads=2 patch=4"), ["conflict"]);
    // (without `limit` it is not: `ijepa estimate --images N` projects such files)
    assert!(errs(&embedded.replace("10000", "2000").replace("patch=4", "patch=4\ndata \"fashion-mnist\" { batch-size 65536; }")).is_empty());
    assert!(errs(&embedded.replace("10000", "2000")).is_empty());
    assert!(errs(&format!("data \"fashion-mnist\" root=\"/nowhere\"\n{embedded}")).iter().all(|e| e != "conflict"));
    assert_eq!(errs(&format!("data \"fashion-mnist\" {{ limit 20000; }}\n{embedded}")), ["conflict"], "a limit above the subset keeps all of it");
    // -0.0 is 0: one setting, one stage hash
    let neg = exp("data \"fashion-mnist\" { horizontal-flip -0.0; }\noptimizer \"adamw\" { lr start=-0.0; }");
    assert!(neg.data.hflip.is_sign_positive() && neg.optimizer.lr.start.is_sign_positive());
    assert_eq!(serde_json::to_string(&neg).unwrap(), serde_json::to_string(&exp("data \"fashion-mnist\" { horizontal-flip 0; }\noptimizer \"adamw\" { lr start=0; }")).unwrap());
    assert_eq!(errs(&small.replace("batch-size 16", "batch-size 128")), ["conflict"]);
    assert_eq!(errs(&format!("{small}\ndistributed {{ gpus-per-node 8 }}")), ["conflict"], "8 per process");
    // an MLP rounded to no width
    assert_eq!(errs("encoder width=128 depth=1 heads=2 patch=14 mlp-ratio=0.001"), ["conflict"]);
    // the least ratio advised is accepted (1/196 was advised, and 196 x (1/196) is 0.999...)
    for width in [196, 392, 588, 128, 1000] {
        let enc = format!("encoder width={width} depth=1 heads=1 patch=14 mlp-ratio=");
        let text = parse_str("t.kdl", &format!("experiment \"t\" {{\n{enc}0.0001\n}}\n")).unwrap_err().render_plain();
        let advised = text.split("use mlp-ratio of at least ").nth(1).and_then(|t| t.split_whitespace().next()).unwrap_or_else(|| panic!("{text}"));
        assert!(errs(&format!("{enc}{advised}")).is_empty(), "width {width}: {advised}");
        // (the least in three significant digits: a digit less is refused)
        if width == 196 {
            assert_eq!(advised, "0.00511");
            assert!(!errs(&format!("{enc}0.0051")).is_empty());
        }
    }
    // the rank floor is advised under the smaller of the held-out images and the width (it was
    // advised "well under the encoder's width", 32, where 21 images were the bound)
    let text = parse_str("t.kdl", "experiment \"t\" {\n data \"fashion-mnist\" { crop-size 28 }\n encoder width=32 depth=1 heads=2 patch=4\n mask \"multi-block\" { min-keep 3 }\n monitor images=21 k=5 rank-floor=25\n}\n").unwrap_err().render_plain();
    assert!(text.split_whitespace().collect::<Vec<_>>().join(" ").contains("a floor well under 21, the smaller of the held-out images (21) and the encoder's width (32)"), "{text}");
    // DINO's warm-up temperature without warm-up epochs: the epochs advised are at most the
    // run's (the official 30 was refused next in a run of fewer)
    let text = parse_str("t.kdl", "experiment \"t\" {\n recipe \"dino\"\n data \"fashion-mnist\" { crop-size 28 }\n encoder width=32 depth=1 heads=2 patch=4\n dino { local-size 8; warmup-teacher-temp 0.04; }\n epochs 2\n}\n").unwrap_err().render_plain();
    assert!(text.split_whitespace().collect::<Vec<_>>().join(" ").contains("at most the run's epochs"), "{text}");
    // a dataset without its root is advised a root= of its own kind (it was an image folder's)
    let text = parse_str("t.kdl", "experiment \"t\" {\n data \"cifar10\"\n}\n").unwrap_err().render_plain().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("data \"cifar10\" root=") && !text.contains("image-folder"), "{text}");
    assert!(errs("encoder width=128 depth=1 heads=2 patch=14 mlp-ratio=0.01").is_empty());
    assert_eq!(errs("predictor width=64 heads=2 mlp-ratio=0.01"), ["conflict"]);
    // DINO's schedules are not stretched
    assert_eq!(errs("recipe \"dino\"\nencoder \"vit-small\" patch=16\nipe-scale 1.25"), ["invalid_value"]);
    // a value or a baseline listed twice (as `features` already was)
    assert_eq!(errs("eval \"linear\" { lr 0.1 0.1 }"), ["invalid_value"]);
    assert_eq!(errs("eval \"low-shot\" { c 1 1 }"), ["invalid_value"]);
    assert_eq!(errs("eval \"knn\" { baselines \"random-init\" \"random-init\" }"), ["invalid_value"]);
    // a collective timeout libtorch's clock cannot hold
    assert_eq!(errs("distributed { timeout 10000000000 }"), ["out_of_range"]);
    assert_eq!(errs("distributed { timeout \"9999999h\" }"), ["out_of_range"]);
    assert!(errs("distributed { timeout \"720h\" }").is_empty());
}

#[test]
fn one_setting_varied_twice_is_refused() {
    let base = "experiment \"t\" {\n encoder width=32 depth=1 heads=2 patch=14\n}\n";
    let codes_of = |sweep: &str| match crate::parse_study("t.kdl", &format!("{base}{sweep}")) {
        Ok(_) => vec![],
        Err(d) => d.codes().into_iter().map(|c| c.trim_start_matches("ijepa::dsl::").to_string()).collect::<Vec<_>>(),
    };
    assert_eq!(codes_of("sweep { vary \"encoder\" \"vit-tiny\"; vary \"encoder.preset\" \"vit-small\" }"), ["duplicate_node"]);
    assert_eq!(codes_of("sweep { vary \"mask\" \"block\"; vary \"mask.kind\" \"random\" }"), ["duplicate_node"]);
    assert_eq!(codes_of("sweep { vary \"epochs\" 1 2; vary \"epochs\" 3 }"), ["duplicate_node"]);
    assert!(codes_of("sweep { vary \"epochs\" 1 2; vary \"seed\" 3 4 }").is_empty());
}

/// A number without a digit before its point is one error at the number, with the spelling
/// to write (the parser reported an unclosed block at `experiment`'s `{` and four more); one in
/// a string or a comment is no number.
#[test]
fn a_number_without_a_leading_digit_is_named() {
    let src = "experiment \"x\" {\n    data \"fashion-mnist\" root=\"a .5\" // .5\n    ipe-scale .5\n}\n";
    match parse_str("t.kdl", src) {
        Err(d) => {
            assert_eq!(d.errors().iter().map(|e| e.offset()).collect::<Vec<_>>(), [src.find("ipe-scale .5").unwrap() + 10], "{}", d.render_plain());
            assert!(d.render_plain().contains("write `0.5`"), "{}", d.render_plain());
        }
        Ok(_) => panic!(".5 parsed"),
    }
    let text = match parse_str("t.kdl", "experiment \"x\" {\n    ipe-scale=-.5\n}\n") {
        Err(d) => d.render_plain(),
        Ok(_) => panic!("-.5 parsed"),
    };
    assert!(text.contains("`-.5` is not a KDL number") && text.contains("write `-0.5`"), "{text}");
    assert_eq!(crate::leading_point_number("a \"x .5\" 0.5 // .5\nb 1.5"), None);
    // nor in a block comment (nested), a multi-line string, a raw string, after an escaped quote
    for text in ["a /* x .5 /* y */ .5 */ 1", "a \"\"\"\n .5\n \"\"\"", "a #\"x \" .5\"# 1", "a \"q\\\" .5\" 1", "a ##\"\"\"\n\"# .5\n\"\"\"## 1"] {
        assert_eq!(crate::leading_point_number(text), None, "{text}");
    }
    assert_eq!(crate::leading_point_number("a /* c */ .5"), Some(10));
    assert_eq!(crate::leading_point_number("a{.5}"), Some(2));
    // a real error elsewhere in a file whose comment holds a `.5` is the parser's own
    let text = match parse_str("t.kdl", "experiment \"x\" {\n    /* tried ipe-scale .5: too slow */\n    data \"fashion-mnist\" {\n}\n") {
        Err(d) => d.render_plain(),
        Ok(_) => panic!("an open block parsed"),
    };
    assert!(!text.contains("not a KDL number"), "{text}");
}

/// Mistakes the KDL parser reports as something else get a help that names them.
#[test]
fn kdl_v1_raw_strings_and_open_comments_are_named() {
    let help = |src: &str| match parse_str("t.kdl", src) {
        Ok(_) => panic!("{src} should not parse"),
        Err(d) => d.render_plain(),
    };
    let text = help("experiment \"x\" {\n    data \"fashion-mnist\" root=r\"/tmp\"\n}\n");
    assert!(text.contains("KDL v2 raw strings"), "{text}");
    let text = help("experiment \"x\" {\n    epochs 2 /* a comment\n}\n");
    assert!(text.contains("comment is never closed"), "{text}");
    // ... and the `/*` is the place shown (the parser marked the whole file, from line 1)
    match parse_str("t.kdl", "experiment \"x\" {\n    data \"fashion-mnist\"\n    /* a comment\n    epochs 2\n}\n") {
        Err(d) => assert_eq!(d.errors().iter().map(|e| e.offset()).collect::<Vec<_>>(), [46], "{}", d.render_plain()),
        Ok(_) => panic!("an open comment parsed"),
    }
    // another syntax error of the file keeps its place
    match parse_str("t.kdl", "experiment \"x\" {\n    data \"fashion-mnist\"\n    epochs 2 ]\n    /* a comment\n}\n") {
        Err(d) => {
            let at: Vec<usize> = d.errors().iter().map(|e| e.offset()).collect();
            assert!(at.contains(&55) && at.contains(&61), "{at:?}: {}", d.render_plain());
        }
        Ok(_) => panic!("a stray bracket parsed"),
    }
}

/// The "belongs inside" hint names a block the node can go to: not `mask.targets` for a
/// random mask's `scale` (its kind has no targets), and the top level for a nested `sweep`.
#[test]
fn belongs_inside_hints_name_a_real_home() {
    let text = parse_str("t.kdl", "experiment \"t\" {\n mask \"random\" { scale 0.5 0.6 }\n}\n").unwrap_err().render_plain();
    assert!(!text.contains("belongs inside") && text.contains("ratio"), "{text}");
    let text = parse_str("t.kdl", "experiment \"t\" {\n mask \"multi-block\" { scale 0.15 0.2 }\n}\n").unwrap_err().render_plain();
    assert!(text.contains("`scale` belongs inside the `mask.targets` block"), "{text}");
    let text = parse_str("t.kdl", "experiment \"t\" {\n data \"fashion-mnist\" { crop-size 28 }\n crop-scale 0.3 1.0\n}\n").unwrap_err().render_plain();
    assert!(text.contains("`crop-scale` belongs inside the `data` block"), "{text}");
    // an official YAML config given as an experiment: one error naming the converter
    let yaml = "data:\n  batch_size: 128\n  crop_size: 224\nmask:\n  min_keep: 10\n";
    let err = parse_str("in1k_vith14_ep300.yaml", yaml).unwrap_err();
    let text = err.render_plain();
    assert_eq!(err.codes().len(), 1, "{text}");
    assert!(text.contains("this is a YAML file") && text.contains("ijepa import-yaml in1k_vith14_ep300.yaml"), "{text}");
    // a KDL file misnamed .yml keeps its own syntax errors
    let text = parse_str("x.yml", "experiment \"x\" {\n epochs 3\n").unwrap_err().render_plain();
    assert!(!text.contains("this is a YAML file"), "{text}");
    // a sweep's `seed` is told where it belongs, and what the sweep's own node is
    let src = "experiment \"t\" {\n encoder width=32 depth=2 heads=2 patch=4\n}\nsweep \"grid\" {\n seed 1 2\n}\n";
    let text = crate::parse_study("t.kdl", src).expect_err("refused").render_plain().replace('\n', " ").split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("`seed` belongs inside the `experiment` block; here, did you mean `seeds`?"), "{text}");
    // `seeds` and `vary "seed"` together: the one written second is "written again", the
    // first "first written" (`seeds` was "written again" even when it came first)
    for (nodes, again) in [(" seeds 0 1\n vary \"seed\" 0 1\n", "vary \"seed\""), (" vary \"seed\" 0 1\n seeds 0 1\n", "seeds")] {
        let src = format!("experiment \"t\" {{\n encoder width=32 depth=2 heads=2 patch=4\n}}\nsweep \"grid\" {{\n{nodes}}}\n");
        let err = crate::parse_study("t.kdl", &src).expect_err("refused");
        let text = err.render_plain();
        assert!(text.contains(&format!("duplicate node `{again}`")) && text.contains("both vary the seed"), "{text}");
        // the "written again" label is on line 6, the second of the two
        let again_at = text.lines().position(|l| l.contains("written again here")).unwrap();
        let line6 = text.lines().position(|l| l.trim_start().starts_with("6 |")).unwrap();
        assert!(again_at > line6, "{text}");
    }
    // a list-valued setting varied with bare values: each value as a child, from what was written
    let src = "experiment \"t\" {\n encoder width=32 depth=4 heads=2 patch=4\n eval \"knn\" { held-out 0.2 }\n}\nsweep \"grid\" {\n vary \"eval.knn.features\" \"last\" \"last4\"\n}\n";
    let text = crate::parse_study("t.kdl", src).expect_err("refused").render_plain().replace('\n', " ").split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("is a list") && text.contains("`vary \"eval.knn.features\" { - \"last\"; - \"last4\" }`"), "{text}");
    let src = "experiment \"t\" {\n mask \"multi-block\" { min-keep 4 }\n}\nsweep \"grid\" {\n vary \"epochs\" 1 2\n sweep \"zip\"\n}\n";
    let text = crate::parse_study("t.kdl", src).expect_err("refused").render_plain();
    assert!(text.contains("`sweep` belongs at the top level of the file") && !text.contains("inside the `experiment`"), "{text}");
}

/// What an `extends` base wrote counts as written: its optimizer settings stay on every point
/// of a sweep over recipes (they were reset to each recipe's defaults), and a child of another
/// recipe takes that recipe's defaults for the rest, property by property.
#[test]
fn a_base_s_written_settings_are_kept_across_recipes() {
    let d = files_in(
        "base-written",
        &[
            ("base.kdl", "experiment \"b\" {\n encoder width=96 depth=2 heads=3 patch=4\n mask \"multi-block\" { min-keep 4 }\n optimizer \"adamw\" { lr peak=5e-4 final=1e-5; betas 0.9 0.98; }\n}\n"),
            ("sweep.kdl", "experiment \"s\" {\n extends \"base.kdl\"\n}\nsweep \"grid\" {\n vary \"recipe\" \"ijepa\" \"dino\"\n}\n"),
        ],
    );
    let sweep = d.join("sweep.kdl");
    let (study, _) = crate::load_study(&sweep).map_err(|e| e.render_plain()).unwrap();
    for p in &study.points {
        let o = &p.experiment.optimizer;
        assert_eq!((o.lr.peak, o.lr.final_, o.lr.blr, o.betas), (5e-4, 1e-5, None, (0.9, 0.98)), "{}", p.name);
    }
    // DINO's own defaults for what no file wrote
    let dino = &study.points[1].experiment.optimizer.lr;
    assert_eq!((dino.start, dino.warmup_epochs), (0.0, 10.0));
    let child = d.join("child.kdl");
    std::fs::write(d.join("plain.kdl"), "experiment \"b\" {\n encoder width=96 depth=2 heads=3 patch=4\n optimizer \"adamw\" { lr peak=5e-4 final=1e-5; }\n}\n").unwrap();
    std::fs::write(&child, "experiment \"c\" {\n extends \"plain.kdl\"\n recipe \"dino\"\n}\n").unwrap();
    let (exp, _) = crate::load(&child).map_err(|e| e.render_plain()).unwrap();
    assert_eq!((exp.optimizer.lr.start, exp.optimizer.lr.peak, exp.optimizer.lr.warmup_epochs, exp.optimizer.lr.final_), (0.0, 5e-4, 10.0, 1e-5));
    let _ = std::fs::remove_dir_all(&d);
}

/// A sweep varying a setting another setting of its points turns off (and that the sweep does
/// not vary) is refused: its points trained one model under as many hashes.
#[test]
fn a_sweep_over_a_setting_turned_off_is_refused() {
    let study = |exp: &str, vary: &str| {
        let encoder = if exp.contains("encoder") { "" } else { "encoder width=96 depth=2 heads=3 patch=4\n" };
        crate::parse_study("s.kdl", &format!("experiment \"s\" {{\n {encoder} {exp}\n}}\nsweep \"grid\" {{\n {vary}\n}}\n"))
    };
    let refused = [
        ("optimizer \"adamw\" { lr warmup-epochs=0; }", "vary \"optimizer.lr.start\" 1e-4 1e-2", "`optimizer.lr.start` is not read with no warm-up"),
        ("optimizer \"adamw\" { weight-decay start=0.05 final=0.05; }", "vary \"optimizer.weight-decay.schedule\" \"cosine\" \"linear\"", "is not read with a constant weight decay"),
        ("encoder width=96 depth=1 heads=3 patch=4\n eval \"finetune\"", "vary \"eval.finetune.drop-path\" 0 0.5", "is not read with an encoder of one block"),
    ];
    for (exp, vary, says) in refused {
        let d = study(exp, vary).expect_err(vary);
        // (the rendering wraps long lines)
        let text = d.render_plain().split_whitespace().filter(|w| *w != "|").collect::<Vec<_>>().join(" ");
        assert!(d.codes() == ["ijepa::dsl::invalid_value"] && text.contains(says) && text.contains("its points would train the same model"), "{text}");
    }
    // ... where the sweep varies what turns it on too, or the point reads it, it is a sweep
    for (exp, vary) in [
        ("optimizer \"adamw\" { lr warmup-epochs=0; }", "vary \"optimizer.lr.start\" 1e-4 1e-2\n vary \"optimizer.lr.warmup-epochs\" 0 1"),
        ("optimizer \"adamw\" { weight-decay start=0.05 final=0.05; }", "vary \"optimizer.weight-decay.schedule\" \"cosine\" \"linear\"\n vary \"optimizer.weight-decay.final\" 0.05 0.2"),
        ("encoder width=96 depth=1 heads=3 patch=4\n eval \"finetune\"", "vary \"eval.finetune.drop-path\" 0 0.5\n vary \"encoder.depth\" 1 2"),
        ("optimizer \"adamw\" { lr warmup-epochs=1; }", "vary \"optimizer.lr.start\" 1e-4 1e-2"),
        ("eval \"finetune\"", "vary \"eval.finetune.drop-path\" 0 0.5"),
    ] {
        assert!(study(exp, vary).is_ok(), "{exp} {vary}: {}", study(exp, vary).map_err(|d| d.render_plain()).unwrap_err());
    }
}

/// A mask no file wrote is the recipe's default, whatever recipe a base or the experiment
/// named: I-JEPA extending (or swept from) MAE trained MAE's random mask, which I-JEPA also
/// samples; a mask a base wrote is kept where the recipe samples it.
#[test]
fn an_unwritten_mask_is_the_recipe_s_default() {
    use crate::config::MaskKind;
    let d = files_in(
        "mask-default",
        &[
            ("mae.kdl", "experiment \"b\" {\n recipe \"mae\"\n}\n"),
            ("child.kdl", "experiment \"c\" {\n extends \"mae.kdl\"\n recipe \"ijepa\"\n}\n"),
            ("sweep.kdl", "experiment \"s\" {\n recipe \"mae\"\n}\nsweep \"grid\" {\n vary \"recipe\" \"mae\" \"ijepa\"\n}\n"),
            ("written.kdl", "experiment \"b\" {\n recipe \"mae\"\n mask \"random\" { ratio 0.5; }\n}\n"),
            ("child-written.kdl", "experiment \"c\" {\n extends \"written.kdl\"\n recipe \"ijepa\"\n}\n"),
        ],
    );
    let (exp, _) = crate::load(&d.join("child.kdl")).map_err(|e| e.render_plain()).unwrap();
    assert_eq!(exp.mask, Experiment::with_defaults("").mask);
    assert_eq!(exp.mask.kind, MaskKind::MultiBlock);
    let (study, _) = crate::load_study(&d.join("sweep.kdl")).map_err(|e| e.render_plain()).unwrap();
    let kinds: Vec<_> = study.points.iter().map(|p| (p.experiment.recipe.as_str(), p.experiment.mask.kind)).collect();
    assert_eq!(kinds, [("mae", MaskKind::Random), ("ijepa", MaskKind::MultiBlock)]);
    let (exp, _) = crate::load(&d.join("child-written.kdl")).map_err(|e| e.render_plain()).unwrap();
    assert_eq!((exp.mask.kind, exp.mask.ratio), (MaskKind::Random, 0.5));
    let _ = std::fs::remove_dir_all(&d);
}

/// An eval block that changes its base's head makes the base's settings of the other head
/// unread: refused at the change, as when written in one file.
#[test]
fn a_child_s_head_makes_the_base_s_settings_unread() {
    let d = std::env::temp_dir().join(format!("ijepa-dsl-child-head-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("base.kdl"), "experiment \"b\" {\n eval \"low-shot\" { head \"linear\"; lr 0.1; }\n}\n").unwrap();
    let child = d.join("child.kdl");
    std::fs::write(&child, "experiment \"c\" {\n extends \"base.kdl\"\n eval \"low-shot\" { head \"logistic\"; }\n}\n").unwrap();
    let text = crate::load(&child).expect_err("refused").render_plain();
    assert!(text.contains("`lr` is not read by this") && text.contains("the base sets `lr`"), "{text}");
    // a child that keeps the head is accepted
    std::fs::write(&child, "experiment \"c\" {\n extends \"base.kdl\"\n eval \"low-shot\" { lr 0.2; }\n}\n").unwrap();
    assert!(crate::load(&child).is_ok());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_sweep_files_rules_across_settings_are_listed_with_its_other_errors() {
    // a setting's own error (epochs 2.5) beside a rule across settings (7 heads do not divide
    // a width of 36): one `check` lists both (the rule waited for the first to be fixed)
    let body = "experiment \"t\" {\n encoder width=36 depth=2 heads=7 patch=4\n predictor depth=1 width=28\n mask \"multi-block\" { min-keep 4 }\n data \"fashion-mnist\" { crop-size 28; }\n epochs 2.5\n}\n";
    let seeds = codes(&format!("{body}sweep \"grid\" {{\n vary \"seed\" 1 2\n}}\n"));
    assert_eq!(seeds, codes(body));
    assert_eq!(seeds, ["heads_width", "wrong_type"]);
    // a rule on a setting the sweep varies is the points' (7 heads divide 28 and 56)
    assert_eq!(codes(&format!("{body}sweep \"grid\" {{\n vary \"encoder.width\" 28 56\n}}\n")), ["wrong_type"]);
    assert_eq!(codes(&format!("{body}sweep \"grid\" {{\n vary \"encoder\" \"vit-tiny\" \"vit-small\"\n}}\n")), ["wrong_type"]);
    // a misspelt path: what it meant to vary is not known, so the base is not judged
    assert_eq!(codes(&format!("{body}sweep \"grid\" {{\n vary \"heads\" 4 6\n}}\n")), ["wrong_type", "unknown_sweep_path"]);
}

#[test]
fn help_texts_say_what_a_node_takes() {
    let render = |src: &str| match parse_str("t.kdl", src) {
        Err(d) => d.render_plain(),
        Ok(_) => String::new(),
    };
    // the path of a `vary` is no value: 64 values, not "1 to 65 arguments"
    let many: Vec<String> = (0..65).map(|i| i.to_string()).collect();
    let text = render(&format!("experiment \"t\" {{\n}}\nsweep \"grid\" {{\n vary \"seed\" {}\n}}\n", many.join(" ")));
    assert!(text.contains("`vary` takes the setting's path and up to 64 values as arguments (more as `-` children)"), "{text}");
    // a block with no settings says so (the list of what it accepts was empty)
    let text = render("experiment \"t\" {\n mask \"rasterized\" { min-keep 3 }\n}\n");
    assert!(text.contains("takes no nodes here") && !text.contains("accepts: \n"), "{text}");
    // the experiment's list leaves out `sweep`, which belongs after it (it was listed)
    let text = render("experiment \"t\" {\n bogus1 1\n}\n");
    assert!(text.contains("`experiment` accepts: recipe,") && text.contains("extends") && !text.contains("sweep"), "{text}");
}

/// What a recipe's initialisation does not read is keyed at its default
/// ([`crate::recipes::init_read_alike`]): a file that writes the default (or nothing) is
/// unchanged (its random-init baseline keeps its hash), and the other value is keyed alike.
#[test]
fn init_read_alike_sets_unread_settings_to_their_defaults() {
    use crate::recipes::{init_read_alike, init_values};
    let mae = exp("recipe \"mae\"\n decoder depth=1 width=16 heads=2");
    assert_eq!(init_read_alike(&mae), mae);
    let off = exp("recipe \"mae\"\n decoder depth=1 width=16 heads=2 norm-pix-loss=#false");
    assert_ne!(init_values(&off), init_values(&mae));
    assert_eq!(init_values(&init_read_alike(&off)), init_values(&mae));
    assert!(init_read_alike(&off).decoder.norm_pix_loss);
    let deeper = exp("recipe \"mae\"\n decoder depth=2 width=16 heads=2");
    assert_ne!(init_values(&init_read_alike(&deeper)), init_values(&mae));
    let dino = exp("recipe \"dino\"\n encoder \"vit-small\" patch=16\n dino { out-dim 64 }");
    assert_eq!(init_read_alike(&dino), dino);
    let trained = exp("recipe \"dino\"\n encoder \"vit-small\" patch=16\n dino { out-dim 64; norm-last-layer #false }");
    assert_eq!(init_values(&init_read_alike(&trained)), init_values(&dino));
    // a recipe that declares none (I-JEPA) is as it was
    let ijepa = exp("encoder width=32 depth=2 heads=2 patch=4");
    assert_eq!(init_read_alike(&ijepa), ijepa);
}

/// DINO's unread data-block augmentations are said when the file writes them at a default,
/// and when a point's `vary` gives one (a sweep's `horizontal-flip 0` was not said).
#[test]
fn unread_augmentations_are_said_when_written_or_varied() {
    let says = |src: &str| crate::parse_study("t.kdl", src).unwrap_or_else(|d| panic!("{}", d.render_plain())).warnings().iter().any(|w| w.contains("the data block's horizontal-flip is not read"));
    let base = "experiment \"d\" {\n recipe \"dino\"\n data \"fashion-mnist\" { crop-size 16; FLIP }\n encoder width=32 depth=2 heads=2 patch=4\n dino { local-size 8 }\n}\n";
    assert!(!says(&base.replace("FLIP", "")));
    assert!(says(&base.replace("FLIP", "horizontal-flip 0")));
    assert!(says(&format!("{}sweep {{ vary \"data.horizontal-flip\" 0; }}\n", base.replace("FLIP", "")).replace("recipe \"dino\"\n", "")
        .replace("sweep {", "sweep { vary \"recipe\" \"dino\";")));
}

/// A value carrying control characters is shown with them escaped, in the rendering of its
/// error: `precision "a\u{1b}[2J"` cleared the terminal of whoever read the error, a name
/// holding `\u{1b}]0;T\u{7}` set its title. A rendering's own colours stay.
#[test]
fn control_characters_of_values_are_shown_escaped() {
    let src = "experiment \"t\" {\n precision \"a\\u{1b}[2J\\u{1b}]0;T\\u{7}b\"\n loss \"x\\u{8}\"\n}\n";
    let text = parse_str("t.kdl", src).unwrap_err().render_plain();
    assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text:?}");
    assert!(text.contains("a\\u{1b}[2J\\u{1b}]0;T\\u{7}b") && text.contains("x\\u{8}"), "{text}");
    // (colour sequences are kept where asked: a terminal rendering's)
    assert_eq!(crate::printable("\u{1b}[31mred\u{1b}[0m \u{1b}[2J\r\u{7}", true), "\u{1b}[31mred\u{1b}[0m \\u{1b}[2J\\u{d}\\u{7}");
    assert_eq!(crate::printable("\u{1b}[31m\tok\n", false), "\\u{1b}[31m\tok\n");
    // a NUL written raw in the file is named, where it is (it read "Expected integer")
    let d = parse_str("t.kdl", "experiment \"t\" {\n epochs 1\u{0}\n}\n").unwrap_err();
    assert_eq!(d.codes(), ["ijepa::dsl::syntax"]);
    let text = d.render_plain();
    assert!(text.contains("the file holds a NUL byte") && text.contains("t.kdl:2:10"), "{text}");
}

/// `ijepa eval` reads a file's data, encoder and evaluations: the rules of settings only the
/// pretraining reads are left out, a sweep's points' and bases' too (a probe file on 28 px
/// images was refused for the default mask, the official one for 224 px crops).
#[test]
fn a_file_read_for_eval_skips_the_pretraining_rules() {
    let d = files_in(
        "eval",
        &[
            ("base.kdl", "experiment \"b\" {\n data \"fashion-mnist\" { crop-size 28; limit 100; batch-size 128; }\n encoder width=32 depth=2 heads=2 patch=4\n}\n"),
            ("probe.kdl", "experiment \"p\" {\n extends \"base.kdl\"\n eval \"knn\"\n}\nsweep { vary \"encoder.depth\" 2 3; }\n"),
        ],
    );
    let file = d.join("probe.kdl");
    let codes = |r: Result<(crate::Study, String), crate::Diagnostics>| r.err().map(|d| d.codes()).unwrap_or_default();
    // (the default mask's blocks on a 7x7 grid; 100 images against a batch of 128)
    let refused = crate::load_study_checked(&file).expect_err("refused for its pretraining").render_plain();
    assert!(refused.contains("min-keep is 10") && refused.split_whitespace().collect::<Vec<_>>().join(" ").contains("less than one batch of 128"), "{refused}");
    let study = crate::load_study_for_eval(&file).expect("the evaluations read neither").0;
    assert_eq!(study.points.len(), 2);
    // the rules of what the evaluations read still hold
    std::fs::write(&file, "experiment \"p\" {\n extends \"base.kdl\"\n encoder width=32 depth=2 heads=3 patch=4\n eval \"knn\"\n}\n").unwrap();
    assert!(codes(crate::load_study_for_eval(&file)).iter().any(|c| c.ends_with("heads_width")), "3 heads against 32");
    std::fs::remove_dir_all(&d).ok();
}

/// A monitor whose kNN votes among half its held-out images or more is said to follow the
/// classes' frequencies (`k=20 images=21`, the least accepted, scored 0% at every epoch, and
/// the run was told it was not learning), by `check`, `plan` and `run` alike.
#[test]
fn a_monitor_voting_among_most_of_its_images_is_warned_of() {
    let warned = |src: &str| crate::parse_study("t.kdl", &format!("experiment \"t\" {{\n data \"fashion-mnist\" {{ crop-size 28 }}\n encoder width=32 depth=1 heads=2 patch=4\n mask \"multi-block\" {{ min-keep 3 }}\n {src}\n}}\n")).unwrap().warnings();
    let w = warned("monitor images=21");
    assert!(w.iter().any(|w| w.contains("votes among k=20 of its 21 held-out images")), "{w:?}");
    assert!(warned("monitor images=40 k=20").iter().any(|w| w.contains("k=20 of its 40")));
    assert!(!warned("monitor images=41 k=20").iter().any(|w| w.contains("kNN votes")));
    assert!(!warned("monitor images=64 k=5").iter().any(|w| w.contains("kNN votes")));
    // (k and images unbounded with folder data: `2 * k` wrapped for k = 2^63)
    let huge = crate::config::MonitorConfig { k: 1 << 63, images: (1 << 63) + 1, ..Default::default() };
    assert!(huge.warning().is_some());
    assert!(errs("monitor k=9223372036854775808").iter().all(|c| c == "out_of_range"));
}

/// A sweep's schedule warnings: a warm-up that differs by point, or whose settings the sweep
/// varies, is one line naming the points, with advice on the sweep's values (a warm-up swept
/// over 39 values drew 39 lines advising the `optimizer` block, which the sweep overrides); a
/// warning of some points alone names them; one of every point names none; none beside a rate
/// of 0 throughout.
#[test]
fn a_sweeps_schedule_warnings_are_one_line_naming_their_points() {
    let base = "experiment \"t\" {\n data \"fashion-mnist\" { crop-size 28; }\n encoder width=16 depth=1 heads=2 patch=4\n mask \"multi-block\" { min-keep 1; }\n epochs 2\n";
    let warnings = |rest: &str| crate::parse_study("t.kdl", &format!("{base}{rest}")).unwrap_or_else(|d| panic!("{}", d.render_plain())).warnings();
    let w = warnings(" optimizer \"adamw\" { lr warmup-epochs=1; }\n}\nsweep { vary \"optimizer.lr.warmup-epochs\" 1 2 3 4 5; }\n");
    let lines: Vec<&String> = w.iter().filter(|w| w.contains("warm-up")).collect();
    assert_eq!(lines.len(), 1, "{w:?}");
    assert!(lines[0].contains("at 4 of the 5 points (`lr-warmup-epochs-2`, `lr-warmup-epochs-3`, `lr-warmup-epochs-4` and 1 more)") && lines[0].contains("lower the sweep's warm-up values"), "{}", lines[0]);
    // (epochs swept: the advice points at them)
    let w = warnings(" optimizer \"adamw\" { lr warmup-epochs=3; }\n}\nsweep { vary \"epochs\" 2 3 6; }\n");
    let lines: Vec<&String> = w.iter().filter(|w| w.contains("warm-up")).collect();
    assert!(lines.len() == 1 && lines[0].contains("at 2 of the 3 points") && lines[0].contains("the sweep's `epochs` values") && lines[0].contains("shorten it (`optimizer"), "{w:?}");
    // one warning of every point, the same text: said as it is (a swept peak is no swept
    // warm-up: its advice stays the optimizer block's)
    for sweep in ["seeds 0 1", "vary \"optimizer.lr.peak\" 1e-3 2e-3"] {
        let w = warnings(&format!(" optimizer \"adamw\" {{ lr warmup-epochs=3; }}\n}}\nsweep {{ {sweep}; }}\n"));
        assert!(w.iter().any(|w| w.starts_with("the learning-rate warm-up (3 epoch(s)) lasts at least the whole schedule (2 epoch(s))") && !w.contains("at point")), "{sweep}: {w:?}");
    }
    // none beside a rate of 0 throughout
    let w = warnings(" optimizer \"adamw\" { lr start=0 peak=0 final=0; }\n}\n");
    assert!(w.iter().any(|w| w.contains("the learning rate is 0 throughout")) && !w.iter().any(|w| w.contains("warm-up")), "{w:?}");
    // schedules that end early at some points
    let w = warnings(" optimizer \"adamw\" { lr warmup-epochs=0.1; }\n}\nsweep { vary \"ipe-scale\" 0.5 0.8 1.0; }\n");
    let lines: Vec<&String> = w.iter().filter(|w| w.contains("schedules end")).collect();
    assert!(lines.len() == 1 && lines[0].contains("at 2 of the 3 points (`ipe-scale-0.5`, `ipe-scale-0.8`)"), "{w:?}");
    // seeds libtorch's generator takes alike (its low 32 bits) are said, others not
    let w = warnings(" optimizer \"adamw\" { lr warmup-epochs=0.1; }\n}\nsweep { seeds 0 1 4294967296 8589934593; }\n");
    let alike: Vec<&String> = w.iter().filter(|w| w.contains("initialise alike on a CPU")).collect();
    assert!(alike.len() == 2 && alike[0].starts_with("the seeds 0, 4294967296 initialise") && alike[1].starts_with("the seeds 1, 8589934593 initialise"), "{w:?}");
    assert!(!warnings(" optimizer \"adamw\" { lr warmup-epochs=0.1; }\n}\nsweep { seeds 0 1 2; }\n").iter().any(|w| w.contains("alike")));
    // a sweep over the monitor's floors, which its points' one pretraining cannot follow
    let w = warnings(" monitor images=64 k=5\n optimizer \"adamw\" { lr warmup-epochs=0.1; }\n}\nsweep { vary \"monitor.rank-floor\" 4 6; }\n");
    assert!(w.iter().any(|w| w.starts_with("the sweep varies the monitor's `rank-floor`, which decides only its warnings")), "{w:?}");
    assert!(!warnings(" monitor images=64 k=5\n optimizer \"adamw\" { lr warmup-epochs=0.1; }\n}\nsweep { vary \"monitor.images\" 64 128; }\n").iter().any(|w| w.contains("floor")));
    // (not where each point has a pretraining of its own: a zip beside a learning rate)
    let w = warnings(" monitor images=64 k=5\n optimizer \"adamw\" { lr warmup-epochs=0.1; }\n}\nsweep \"zip\" { vary \"monitor.rank-floor\" 4 6; vary \"optimizer.lr.peak\" 1e-3 2e-3; }\n");
    assert!(!w.iter().any(|w| w.contains("varies the monitor's")), "{w:?}");
    // (but where they share one: beside `log-every`, which no hash counts; and floors are
    // numbers, `4` and `4.0` one floor)
    let w = warnings(" monitor images=64 k=5\n optimizer \"adamw\" { lr warmup-epochs=0.1; }\n}\nsweep \"zip\" { vary \"monitor.rank-floor\" 4 6; vary \"log-every\" 5 10; }\n");
    assert!(w.iter().any(|w| w.starts_with("the sweep varies the monitor's `rank-floor`")), "{w:?}");
    let w = warnings(" monitor images=64 k=5\n optimizer \"adamw\" { lr warmup-epochs=0.1; }\n}\nsweep \"zip\" { vary \"monitor.rank-floor\" 4 4.0; vary \"eval.knn.k\" 5 10; }\n");
    assert!(!w.iter().any(|w| w.contains("varies the monitor's")), "{w:?}");
    // (a floor held equal beside one that is varied is not named)
    let w = warnings(" monitor images=64 k=5\n optimizer \"adamw\" { lr warmup-epochs=0.1; }\n}\nsweep \"zip\" { vary \"monitor.rank-floor\" 2 4; vary \"monitor.spread-floor\" 0.05 0.05; }\n");
    assert!(w.iter().any(|w| w.starts_with("the sweep varies the monitor's `rank-floor`, which decides")), "{w:?}");
    // (the momentum holds its last value there, as each point's own warning says: the line
    // said it followed its formula)
    assert!(lines[0].contains("(I-JEPA's EMA momentum holds its last value)") && !lines[0].contains("and I-JEPA's EMA momentum) follow"), "{w:?}");
}
