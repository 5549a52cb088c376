//! Recipes are pluggable for real: a recipe defined here, outside the `recipes` crate (a
//! linear autoencoder: a ViT encoder whose average-pooled features a linear layer maps back to
//! the image's pixels), registered through the public API, runs from a KDL file through the
//! plan, pretraining, an evaluation against its random initialisation, and the report, with
//! no change to the language, the engine or the recipes crate. Its own hyper-parameters (the
//! `ae` node: loss weight, pooling, tokens pooled) are declared by its schema and read,
//! checked, defaulted, swept and hashed by the language like the built-in recipes' settings.

use ijepa_dsl::config::{Experiment, SettingValue};
use ijepa_dsl::recipes::{RecipeSchema, SettingKey, SettingNode};
use ijepa_engine::model::linear::Linear;
use ijepa_engine::model::vit::{VisionTransformer, VitConfig};
use ijepa_engine::model::ParamStore;
use ijepa_engine::optim::AdamW;
use ijepa_engine::recipe::{register, Collate, DynRecipe, GradSync, Hyper, Recipe, RecipeEntry, StepStats};
use ijepa_engine::Result;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

mod common;

/// The encoder, a linear decoder from pooled features to pixels, AdamW.
struct LinearAe {
    encoder_store: ParamStore,
    decoder_store: ParamStore,
    encoder: VisionTransformer,
    decoder: Linear,
    optimizer: AdamW,
    device: Device,
    sync: Option<Box<dyn GradSync>>,
    /// The `ae` node: the loss's factor, `mean` or `first` token pooling, tokens pooled (0: all).
    loss_weight: f64,
    pool_first: bool,
    tokens: i64,
    /// What it calls itself (a test's variant registered under another name), and whether
    /// its step returns a statistic more than it names (a recipe's mistake, refused).
    name: &'static str,
    extra_stat: bool,
    /// Declares no encoders for the monitor (a recipe's omission, refused where one is asked).
    blind: bool,
}

fn encoder_config(exp: &Experiment) -> VitConfig {
    VitConfig::from_dsl(&exp.encoder, exp.data.crop_size)
}

impl LinearAe {
    fn new(exp: &Experiment, device: Device) -> Result<Self> {
        tch::manual_seed(exp.seed as i64);
        let cfg = encoder_config(exp);
        let encoder_store = ParamStore::new(device);
        let decoder_store = ParamStore::new(device);
        let encoder = VisionTransformer::new(&encoder_store.root(), &cfg)?;
        let pixels = (3 * cfg.image_size * cfg.image_size) as i64;
        let decoder = Linear::new(&decoder_store.root().sub("proj"), cfg.embed_dim as i64, pixels)?;
        let mut params = Vec::new();
        for (prefix, store) in [("encoder", &encoder_store), ("decoder", &decoder_store)] {
            params.extend(store.trainable().into_iter().map(|(n, t)| (format!("{prefix}.{n}"), t)));
        }
        let optimizer = AdamW::new(params, exp.optimizer.betas, exp.optimizer.eps)?;
        let setting = |key: &str| exp.setting("ae", key).expect("a key the recipe declares");
        Ok(Self {
            encoder_store,
            decoder_store,
            encoder,
            decoder,
            optimizer,
            device,
            sync: None,
            loss_weight: setting("loss-weight").as_f64().unwrap(),
            pool_first: setting("pool").as_str() == Some("first"),
            tokens: setting("tokens").as_i64().unwrap(),
            name: "linear-ae",
            extra_stat: false,
            blind: false,
        })
    }
}

impl Recipe for LinearAe {
    type Extras = ();

    fn name(&self) -> &'static str {
        self.name
    }

    fn device(&self) -> Device {
        self.device
    }

    fn collate(&self) -> Collate<()> {
        Arc::new(|_, _, _| Ok(()))
    }

    fn step(&mut self, images: &Tensor, _: &(), hyper: Hyper) -> Result<StepStats> {
        self.optimizer.zero_grad()?;
        let mut tokens = self.encoder.forward(images, None);
        if self.tokens > 0 {
            tokens = tokens.narrow(1, 0, self.tokens.min(tokens.size()[1]));
        }
        let pooled = if self.pool_first { tokens.select(1, 0) } else { tokens.mean_dim(1, false, Kind::Float) };
        let recon = self.decoder.forward(&pooled);
        let loss = recon.mse_loss(&images.flatten(1, -1), tch::Reduction::Mean) * self.loss_weight;
        loss.f_backward()?;
        let mut value = loss.double_value(&[]);
        if let Some(s) = self.sync.as_mut() {
            value = s.sync(&loss)?;
        }
        self.optimizer.step(hyper.lr, hyper.wd)?;
        let norm = pooled.norm().double_value(&[]) / (pooled.size()[0] as f64).sqrt();
        let values = if self.extra_stat { vec![norm, 0.0] } else { vec![norm] };
        Ok(StepStats { loss: value, values })
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (prefix, store) in [("encoder", &self.encoder_store), ("decoder", &self.decoder_store)] {
            out.extend(store.named().into_iter().map(|(n, t)| (format!("{prefix}.{n}"), t)));
        }
        out
    }

    fn optimizer_state(&self) -> (Vec<(String, Tensor)>, u64) {
        ijepa_engine::recipe::optimizer_state(&self.optimizer)
    }

    fn restore(&mut self, tensors: &HashMap<String, Tensor>, optimizer_step: u64, origin: &Path) -> Result<()> {
        let sub = |p: &str| ijepa_engine::recipe::prefixed(tensors, p);
        self.encoder_store.load_strict(&sub("encoder."), origin)?;
        self.decoder_store.load_strict(&sub("decoder."), origin)?;
        ijepa_engine::recipe::restore_optimizer(&mut self.optimizer, tensors, optimizer_step, origin)
    }

    fn num_params(&self) -> i64 {
        self.encoder_store.num_trainable() + self.decoder_store.num_trainable()
    }

    fn trainable(&self) -> Vec<Tensor> {
        self.optimizer.params()
    }

    fn set_grad_sync(&mut self, sync: Box<dyn GradSync>) {
        self.sync = Some(sync);
    }

    fn feature_encoders(&self) -> Vec<(&'static str, &VisionTransformer)> {
        if self.blind {
            return Vec::new();
        }
        vec![("encoder", &self.encoder)]
    }

    fn stat_names(&self) -> &'static [&'static str] {
        &["feature_norm"]
    }
}

fn entry() -> RecipeEntry {
    RecipeEntry {
        schema: RecipeSchema {
            settings: vec![SettingNode::new(
                "ae",
                vec![
                    SettingKey::number("loss-weight", 1.0).range(1e-3, 100.0),
                    SettingKey::choice("pool", "mean", &["mean", "first"]),
                    SettingKey::integer("tokens", 0).at_least(0.0),
                ],
            )],
            ..RecipeSchema::new("linear-ae", "a linear autoencoder on pooled ViT features (a test recipe)")
        },
        modules: vec!["encoder".into(), "decoder".into()],
        feature_module: ijepa_engine::recipe::fixed_module("encoder"),
        encoder_config: Arc::new(encoder_config),
        build: Arc::new(|exp, device, _, _| -> Result<Box<dyn DynRecipe>> { Ok(Box::new(LinearAe::new(exp, device)?)) }),
        cost: None,
        masks: None,
        hf_model: None,
    }
}

#[test]
fn a_recipe_defined_outside_runs_from_kdl_through_plan_pretraining_eval_and_report() {
    ijepa_recipes::register_builtins().unwrap();
    register(entry()).unwrap();
    let d = common::scratch("custom-recipe");
    let file = d.join("lae.kdl");
    std::fs::write(
        &file,
        r#"experiment "lae" {
    recipe "linear-ae"
    data "fashion-mnist" { crop-size 16; batch-size 32; workers 1; limit 256 }
    encoder width=32 depth=1 heads=2 patch=4
    ae loss-weight=2.0 tokens=8
    optimizer "adamw" { lr start=1e-3 peak=1e-3 final=1e-4 warmup-epochs=0; }
    epochs 2
    precision "fp32"
    device "cpu"
    eval "knn" { k 5; baselines "random-init" }
    report
}
"#,
    )
    .unwrap();
    // the language knows the registered recipe; another recipe's setting is refused by name
    let bad = d.join("bad.kdl");
    std::fs::write(&bad, "experiment \"bad\" {\n    recipe \"linear-ae\"\n    predictor depth=2\n}\n").unwrap();
    let err = ijepa_dsl::load(&bad).unwrap_err().render_plain();
    assert!(err.contains("`predictor` is a setting of recipe \"ijepa\", not of recipe \"linear-ae\""), "{err}");

    let (runs, reports) = (d.join("runs"), d.join("reports"));
    ijepa::run_file(&file, &runs, &reports).unwrap();
    // its plan is recorded under the file's name, as `ijepa run` records it (under none, every
    // file run through the library shared one record, and one study's run dropped the other's
    // from reports)
    let planned: Vec<serde_json::Value> = std::fs::read_dir(runs.join("lae"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("planned-lae-"))
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect();
    assert!(planned.len() == 1 && planned[0]["file"].as_str().is_some_and(|f| f.ends_with("lae.kdl")), "{planned:?}");

    let folder = |prefix: &str| {
        std::fs::read_dir(runs.join("lae"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix}* folder"))
    };
    let pretrain = folder("pretrain-");
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(pretrain.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["status"], "done", "{manifest}");
    // the resolved config records the recipe's own settings, defaults filled in
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(pretrain.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["recipe_settings"], serde_json::json!({"ae": {"loss-weight": 2.0, "pool": "mean", "tokens": 8}}), "{config}");
    let metrics = std::fs::read_to_string(pretrain.join("metrics.csv")).unwrap();
    let mut lines = metrics.lines();
    assert_eq!(lines.next(), Some("step,epoch,loss,lr,wd,feature_norm,ms_per_step,img_per_s,skipped"));
    let losses: Vec<f64> = lines.map(|l| l.split(',').nth(2).unwrap().parse().unwrap()).collect();
    assert_eq!(losses.len(), 2 * (256 / 32));
    assert!(losses.last().unwrap() < losses.first().unwrap(), "the loss did not fall: {losses:?}");
    // the checkpoint holds the recipe's own modules
    let ckpt = ijepa_engine::checkpoint::import::load_models(&pretrain.join("checkpoints/final.safetensors")).unwrap();
    assert!(ckpt.module("decoder").is_some_and(|sd| sd.iter().any(|(k, _)| k == "proj.weight")));
    for (subject, method) in [("linear-ae", "linear-ae (ours)"), ("random-init", "random init (linear-ae)")] {
        let e: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(folder(&format!("eval-knn-{subject}-")).join("eval.json")).unwrap()).unwrap();
        assert_eq!(e["model"], subject);
        assert_eq!(e["method"], method);
        assert!(e["top1"].as_f64().unwrap() > 10.0, "{e}");
    }
    let report = std::fs::read_to_string(reports.join("report.md")).unwrap();
    assert!(report.starts_with("# linear-ae report") && report.contains("linear-ae (ours)"), "{report}");
    // its modules are MAE's (`encoder`, `decoder`): the run's recipe, which names no
    // transformers class, refuses the export there by name (it went out as another class)
    let final_ = pretrain.join("checkpoints/final.safetensors");
    let err = ijepa::checkpoints::export_encoder(&final_, ijepa::checkpoints::ExportFormat::Hf, ijepa::checkpoints::Which::Target, None, &d.join("hf"))
        .expect_err("no transformers class for linear-ae")
        .to_string();
    assert!(err.contains("holds recipe linear-ae's modules, and that recipe names no transformers class"), "{err}");
}

/// The test recipe registered as `name` (its builder's recipe calls itself so), changed by
/// `tweak`: a recipe's mistakes, each refused.
fn variant(name: &'static str, summary: &str, tweak: fn(&mut LinearAe)) -> RecipeEntry {
    RecipeEntry {
        schema: RecipeSchema::new(name, summary),
        build: Arc::new(move |exp, device, _, _| -> Result<Box<dyn DynRecipe>> {
            let mut r = LinearAe::new(exp, device)?;
            r.name = name;
            tweak(&mut r);
            Ok(Box::new(r))
        }),
        ..entry()
    }
}

/// The error of `run_file` on a one-epoch experiment of the registered `recipe` on `limit`
/// images, with the `extra` lines (in a scratch folder named `scratch`).
fn refused_run(scratch: &str, recipe: &str, limit: usize, extra: &str) -> String {
    let d = common::scratch(scratch);
    let file = d.join("refused.kdl");
    std::fs::write(
        &file,
        format!(
            "experiment \"refused\" {{\n    recipe \"{recipe}\"\n    data \"fashion-mnist\" {{ crop-size 16; batch-size 32; workers 1; limit {limit} }}\n    encoder width=32 depth=1 heads=2 patch=4\n{extra}    epochs 1\n    precision \"fp32\"\n    device \"cpu\"\n}}\n"
        ),
    )
    .unwrap();
    ijepa::run_file(&file, &d.join("runs"), &d.join("reports")).expect_err("the run is refused").to_string()
}

/// A step that returns more statistics than the recipe names stops the run at its first step,
/// naming them: its rows had other columns than the header (the report could not read the
/// run; a resume dropped every row as torn).
#[test]
fn a_step_returning_other_statistics_than_it_names_is_refused() {
    ijepa_recipes::register_builtins().unwrap();
    register(entry()).unwrap();
    register(variant("miscount-ae", "the linear autoencoder with a statistic it does not name (a test recipe)", |r| r.extra_stat = true)).unwrap();
    let err = refused_run("custom-recipe-stats", "miscount-ae", 64, "");
    assert!(err.contains("recipe \"miscount-ae\"'s step returned 2 statistics for the 1 it names (feature_norm)"), "{err}");
}

/// A `monitor` block for a recipe that declares no encoders to measure is refused before its
/// first step (it measured nothing, silently, while its held-out images left pretraining).
#[test]
fn a_monitor_of_a_recipe_without_feature_encoders_is_refused() {
    ijepa_recipes::register_builtins().unwrap();
    register(entry()).unwrap();
    register(variant("blind-ae", "the linear autoencoder declaring no encoders (a test recipe)", |r| r.blind = true)).unwrap();
    let err = refused_run("custom-recipe-monitor", "blind-ae", 128, "    monitor images=32 k=5 every=1\n");
    assert!(err.contains("recipe \"blind-ae\" declares no encoders to measure"), "{err}");
}

/// The test recipe's rule: it pools at most the tokens of the grid.
fn tokens_fit_the_grid(exp: &Experiment) -> Vec<ijepa_dsl::recipes::RuleBreak> {
    let side = (exp.data.crop_size / exp.encoder.patch_size.max(1)) as i64;
    match exp.setting("ae", "tokens").and_then(|t| t.as_i64()) {
        Some(t) if t > side * side => vec![ijepa_dsl::recipes::RuleBreak {
            path: "ae.tokens".into(),
            message: format!("`ae.tokens` pools {t} tokens of a {side}x{side} grid of {}", side * side),
            help: "write at most the grid's tokens, or 0 for all".into(),
        }],
        _ => Vec::new(),
    }
}

fn load(d: &Path, name: &str, body: &str) -> std::result::Result<ijepa_dsl::Study, String> {
    let file = d.join(format!("{name}.kdl"));
    std::fs::write(&file, body).unwrap();
    ijepa_dsl::load_study(&file).map(|(s, _)| s).map_err(|e| e.render_plain())
}

#[test]
fn a_registered_recipes_own_settings_are_read_checked_defaulted_swept_and_hashed() {
    ijepa_recipes::register_builtins().unwrap();
    register(entry()).unwrap();
    let d = common::scratch("custom-recipe-settings");
    let head = "experiment \"s\" {\n    recipe \"linear-ae\"\n    encoder width=32 depth=1 heads=2 patch=4\n";
    let ae = |study: &ijepa_dsl::Study, key: &str| study.points[0].experiment.recipe_settings["ae"].get(key).cloned();

    // what the file writes, the recipe's defaults for the rest; the same values written out
    // are the same pretraining (same hash), another value another one
    let written = load(&d, "written", &format!("{head}    ae loss-weight=0.5\n}}\n")).unwrap();
    assert_eq!(ae(&written, "loss-weight"), Some(SettingValue::Float(0.5)));
    assert_eq!(ae(&written, "pool"), Some(SettingValue::Str("mean".into())));
    assert_eq!(ae(&written, "tokens"), Some(SettingValue::Int(0)));
    let none = load(&d, "none", &format!("{head}}}\n")).unwrap();
    assert_eq!(ae(&none, "loss-weight"), Some(SettingValue::Float(1.0)));
    let explicit = load(&d, "explicit", &format!("{head}    ae loss-weight=1 pool=\"mean\" tokens=0\n}}\n")).unwrap();
    let hash = |s: &ijepa_dsl::Study| ijepa_engine::plan::pretrain_hash(&s.points[0].experiment, 1);
    assert_eq!(hash(&none), hash(&explicit));
    assert_ne!(hash(&none), hash(&written));
    // the resolved experiment survives its config.json
    let e = &written.points[0].experiment;
    let back: Experiment = serde_json::from_value(serde_json::to_value(e).unwrap()).unwrap();
    assert_eq!(&back, e);

    // each wrong value at its place: range, choices, type, an unknown property, twice
    let err = load(&d, "bad", &format!("{head}    ae loss-weight=-1 pool=\"max\" tokens=1.5 colour=3\n    ae tokens=2\n}}\n")).unwrap_err();
    for want in [
        "ae.loss-weight must be in 0.001 ..= 100; found -1.0 (the default is 1.0)",
        "unknown ae.pool `max`",
        "known: `mean`, `first`",
        "wrong type for `ae.tokens`: expected a whole number",
        "colour",
        "duplicate node `ae`",
        "bad.kdl:4:",
    ] {
        assert!(err.contains(want), "missing {want:?} in\n{err}");
    }
    // a rule of the recipe's own across settings, at the setting it names: more tokens pooled
    // than the grid has
    ijepa_dsl::recipes::register_check("linear-ae", tokens_fit_the_grid);
    let many = load(&d, "many", &format!("{head}    data \"fashion-mnist\" {{ crop-size 16; }}\n    ae tokens=20\n}}\n")).unwrap_err();
    assert!(many.contains("`ae.tokens` pools 20 tokens of a 4x4 grid of 16") && many.contains("many.kdl:5:"), "{many}");
    assert!(load(&d, "few", &format!("{head}    data \"fashion-mnist\" {{ crop-size 16; }}\n    ae tokens=16\n}}\n")).is_ok());
    // a misspelt node is suggested the recipe's
    let typo = load(&d, "typo", &format!("{head}    aee pool=\"first\"\n}}\n")).unwrap_err();
    assert!(typo.contains("did you mean `ae`?"), "{typo}");
    // another recipe's experiment writing the node, by name
    let other = load(&d, "other", "experiment \"o\" {\n    recipe \"ijepa\"\n    ae pool=\"first\"\n}\n").unwrap_err();
    assert!(other.contains("`ae` is a setting of recipe \"linear-ae\", not of recipe \"ijepa\""), "{other}");

    // a sweep varies it: one pretraining per value, the others' defaults kept
    let sweep = load(&d, "sweep", &format!("{head}}}\nsweep \"grid\" {{\n    vary \"ae.pool\" \"mean\" \"first\"\n}}\n")).unwrap();
    let pools: Vec<_> = sweep.points.iter().map(|p| p.experiment.setting("ae", "pool")).collect();
    assert_eq!(pools, [Some(SettingValue::Str("mean".into())), Some(SettingValue::Str("first".into()))]);
    assert!(sweep.points.iter().all(|p| p.experiment.setting("ae", "loss-weight") == Some(SettingValue::Float(1.0))));
    // an experiment the language did not read (a config.json from before a key existed) gets
    // the declared default; an undeclared key none
    let bare = Experiment::with_defaults("bare");
    assert_eq!((bare.setting("ae", "tokens"), bare.setting("ae", "colour")), (Some(SettingValue::Int(0)), None));
    let hashes: Vec<_> = sweep.points.iter().map(|p| ijepa_engine::plan::pretrain_hash(&p.experiment, 1)).collect();
    assert_ne!(hashes[0], hashes[1]);
    let bad_value = load(&d, "sweep-bad", &format!("{head}}}\nsweep \"grid\" {{\n    vary \"ae.pool\" \"mean\" \"max\"\n}}\n")).unwrap_err();
    assert!(bad_value.contains("unknown ae.pool `max`"), "{bad_value}");
    let typo = load(&d, "sweep-typo", &format!("{head}}}\nsweep \"grid\" {{\n    vary \"ae.tokns\" 1 2\n}}\n")).unwrap_err();
    assert!(typo.contains("did you mean `ae.tokens`?"), "{typo}");

    // -0.0 is 0 in a declared default as in a written value
    assert_eq!(SettingKey::number("shift", -0.0).default.as_f64().map(f64::is_sign_positive), Some(true));
    // what a schema may declare
    let with = |node: SettingNode| RecipeSchema { settings: vec![node], ..RecipeSchema::new("settings-probe", "") };
    for (node, want) in [
        (SettingNode::new("data", vec![SettingKey::boolean("x", true)]), "the language already has `data`"),
        (SettingNode::new("ae", vec![SettingKey::boolean("x", true)]), "already a setting of recipe \"linear-ae\""),
        (SettingNode::new("probe", vec![SettingKey::number("t", 5.0).range(0.0, 1.0)]), "its default 5.0 must be in 0 ..= 1"),
        (SettingNode::new("probe", vec![SettingKey::choice("p", "a", &["b"])]), "its default \"a\" must be one of \"b\""),
        (SettingNode::new("probe", vec![SettingKey::boolean("x", true).at_least(0.0)]), "bounds are for numbers"),
        (SettingNode::new("probe", vec![]), "declares no property"),
        (SettingNode::new("limit", vec![SettingKey::boolean("x", true)]), "the language already has `limit`"),
        (SettingNode::new("probe", vec![SettingKey::number("t", 1.0).at_least(f64::NAN)]), "a bound of NaN bounds nothing"),
    ] {
        let e = ijepa_dsl::recipes::register(with(node)).unwrap_err();
        assert!(e.contains(want), "missing {want:?} in {e}");
    }
}

/// A registered recipe's cost model sizes the memory bound checked before a run builds its
/// models (a recipe the bound does not know counted only its encoder).
#[test]
fn a_registered_recipes_cost_model_sizes_the_memory_bound() {
    ijepa_recipes::register_builtins().unwrap();
    register(entry()).unwrap();
    let cost = |_: &Experiment| -> Result<ijepa_engine::estimate::StepCost> {
        Ok(ijepa_engine::estimate::StepCost { trainable_params: 1e9, frozen_params: 5e8, frozen_what: "an EMA copy".into(), flops_per_image: 1.0, activation_elems_per_image: 1.0, tokens: String::new() })
    };
    let costed = RecipeEntry { schema: RecipeSchema::new("costed-ae", "the linear autoencoder with a cost model (a test recipe)"), cost: Some(Arc::new(cost)), ..entry() };
    register(costed).unwrap();
    let exp = |recipe: &str| ijepa_dsl::parse_str("m.kdl", &format!("experiment \"m\" {{\n recipe \"{recipe}\"\n encoder width=32 depth=1 heads=2 patch=4\n data \"fashion-mnist\" {{ crop-size 16; }}\n}}\n")).unwrap();
    let with = ijepa_engine::memory::estimate(&exp("costed-ae")).state;
    let without = ijepa_engine::memory::estimate(&exp("linear-ae")).state;
    // 1e9 trained parameters with gradients and two moments, 5e8 held once, 4 bytes each
    assert!(with >= 4.0 * (4.0 * 1e9 + 5e8), "{with}");
    assert!(without < 1e7, "{without}");
    // its builder makes a recipe that calls itself `linear-ae`: refused by name (its runs
    // would be filed under another recipe's)
    let err = ijepa_engine::recipe::build(&exp("costed-ae"), Device::Cpu, 0, 1).err().expect("a misnamed recipe is refused").to_string();
    assert!(err.contains("recipe \"costed-ae\"'s builder made a recipe that calls itself \"linear-ae\""), "{err}");
}

/// A checkpoint holding exactly a registered recipe's modules gives, for evaluation and
/// export, the module that recipe's evaluations read: here `slow`, beside an online
/// `encoder` (which was taken, as the target encoder's absence left it first).
#[test]
fn a_checkpoint_of_a_registered_recipe_gives_its_evaluated_module() {
    ijepa_recipes::register_builtins().unwrap();
    register(entry()).unwrap();
    let two = RecipeEntry {
        modules: vec!["encoder".into(), "slow".into()],
        feature_module: ijepa_engine::recipe::fixed_module("slow"),
        ..variant("two-net-ae", "an online encoder and a slow copy (a test recipe)", |_| {})
    };
    register(two).unwrap();
    let d = common::scratch("custom-recipe-modules");
    let path = d.join("two.safetensors");
    let tensors = vec![("encoder.w".to_string(), Tensor::zeros([1], (Kind::Float, Device::Cpu))), ("slow.w".to_string(), Tensor::zeros([2], (Kind::Float, Device::Cpu)))];
    Tensor::write_safetensors(&tensors, &path).unwrap();
    let models = ijepa_engine::checkpoint::import::load_models(&path).unwrap();
    let enc = models.feature_encoder().expect("an encoder to evaluate");
    assert_eq!(enc.iter().map(|(k, t)| (k.as_str(), t.size())).collect::<Vec<_>>(), [("w", vec![2])]);
    // built, its recipe reads `encoder` where its entry says `slow`: refused, naming both (the
    // pretrained encoder and the random init were read from different modules)
    let exp = ijepa_dsl::parse_str("t.kdl", "experiment \"t\" {\n    recipe \"two-net-ae\"\n    data \"fashion-mnist\" { crop-size 16 }\n    encoder width=32 depth=1 heads=2 patch=4\n}\n").unwrap();
    let err = ijepa_engine::recipe::build(&exp, Device::Cpu, 0, 1).err().expect("two evaluated modules are refused").to_string();
    assert!(err.contains("recipe \"two-net-ae\"'s entry names `slow` as the module its evaluations read, and its built recipe `encoder`"), "{err}");
    // a module named as the start of another recipe's (`teacher` beside DINO's
    // `teacher.backbone`) is refused: a DINO checkpoint's keys were split under it
    let teacher = RecipeEntry {
        schema: RecipeSchema::new("teacher-ae", "a slow copy named teacher (a test recipe)"),
        modules: vec!["encoder".into(), "teacher".into()],
        feature_module: ijepa_engine::recipe::fixed_module("teacher"),
        ..entry()
    };
    let err = register(teacher).expect_err("a module named as the start of DINO's is refused").to_string();
    assert!(err.contains("recipe \"teacher-ae\"'s module `teacher` and recipe \"dino\"'s module `teacher.backbone`"), "{err}");
    assert!(ijepa_engine::recipe::entry("teacher-ae").is_err(), "nothing registered");
    // the built-in recipes' checkpoints still give theirs (I-JEPA's target encoder)
    let ijepa = ijepa_engine::checkpoint::import::load_models(Path::new("tests/fixtures/pth/official-step-tiny.pth.tar")).unwrap();
    assert!(std::ptr::eq(ijepa.feature_encoder().unwrap(), ijepa.target_encoder.as_ref().unwrap()));
}
