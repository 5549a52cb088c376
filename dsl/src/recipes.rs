//! What the language knows of each recipe: its name, the experiment-level nodes that are its
//! own settings, and the mask kinds it samples. This is the language's half of the recipe
//! registry; `ijepa_recipes::registry` adds each recipe's runtime (models, step, features) and
//! registers the schema here, so a recipe defined outside this crate (a test's, a user's
//! crate) is known to `recipe "NAME"`, `check`, `plan` and `run` once registered.
//!
//! The built-in recipes are known from the start, so parsing works without the engine:
//!
//! | recipe | own nodes | mask kinds |
//! |---|---|---|
//! | `ijepa` | `predictor`, `ema`, `loss`, `target` | `multi-block`; `rasterized`, `block`, `random` (Table 6) |
//! | `mae` | `decoder` | `random` |
//! | `dino` | `dino` | none (multi-crop views instead) |
//!
//! A recipe may also change a shared default, each only where the experiment (or a base it
//! extends) does not write it: MAE's follow `main_pretrain.py` and its PRETRAIN.md (AdamW
//! betas (0.9, 0.95); learning rate from 0 over 40 warm-up epochs to 1.5e-4 x global batch /
//! 256, cosine to 0; constant weight decay 0.05; crops of 20-100% of the image, flipped with
//! p = 0.5, resized bicubically); DINO's follow `main_dino.py` (learning rate from 0 over 10
//! warm-up epochs to 5e-4 x global batch / 256, cosine to 1e-6; crops resized bicubically).
//!
//! A node another recipe owns (a `decoder` in an I-JEPA experiment, a `predictor` in an MAE
//! one) is a diagnostic at the node naming both recipes; so is a `mask` kind the recipe does
//! not sample, or any `mask` for a recipe that takes none.
//!
//! A recipe registered from outside declares the settings of its own in
//! [`RecipeSchema::settings`]: nodes of properties (`contrast temperature=0.1 views=2`), each
//! key typed with its default and range. The language reads, checks (with spans), defaults,
//! sweeps (`vary "contrast.temperature" 0.1 0.2`) and hashes them as it does its own nodes;
//! the recipe reads them with [`crate::config::Experiment::setting`].

use crate::config::{Interpolation, LrSchedule, MaskKind, SettingValue, WdSchedule, WdShape};
use std::sync::{LazyLock, RwLock};

/// A node of settings a registered recipe declares as its own (`contrast temperature=0.1
/// views=2`): written at the experiment level, properties only, each key at most once.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingNode {
    /// The node's name (letters, digits and `-`; not a node the language already has).
    pub name: String,
    /// Its properties.
    pub keys: Vec<SettingKey>,
}

impl SettingNode {
    /// A node named `name` with properties `keys`.
    pub fn new(name: impl Into<String>, keys: Vec<SettingKey>) -> Self {
        Self { name: name.into(), keys }
    }

    /// `contrast temperature=0.1 views=2`: the node with its defaults, for help texts.
    pub fn usage(&self) -> String {
        let mut out = self.name.clone();
        for k in &self.keys {
            out.push_str(&format!(" {}={}", k.name, k.default));
        }
        out
    }
}

/// One property of a [`SettingNode`]: its type is its default's (a number, a whole number, a
/// boolean, a string), with bounds for numbers and the accepted strings.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingKey {
    /// The property's name.
    pub name: String,
    /// Its value where the experiment writes none; also its type.
    pub default: SettingValue,
    /// Smallest value a number takes (inclusive).
    pub min: Option<f64>,
    /// Largest value a number takes (inclusive).
    pub max: Option<f64>,
    /// The strings a string setting takes (empty: any).
    pub choices: Vec<String>,
}

impl SettingKey {
    fn of(name: impl Into<String>, default: SettingValue) -> Self {
        Self { name: name.into(), default, min: None, max: None, choices: Vec::new() }
    }

    /// A finite number (an integer is read as one too).
    pub fn number(name: impl Into<String>, default: f64) -> Self {
        // (-0.0 is 0, as the language reads a written one: one setting, one hash)
        Self::of(name, SettingValue::Float(default + 0.0))
    }

    /// A whole number.
    pub fn integer(name: impl Into<String>, default: i64) -> Self {
        Self::of(name, SettingValue::Int(default))
    }

    /// `#true` or `#false`.
    pub fn boolean(name: impl Into<String>, default: bool) -> Self {
        Self::of(name, SettingValue::Bool(default))
    }

    /// One of `choices` (any string when empty).
    pub fn choice(name: impl Into<String>, default: &str, choices: &[&str]) -> Self {
        Self { choices: choices.iter().map(|c| c.to_string()).collect(), ..Self::of(name, SettingValue::Str(default.into())) }
    }

    /// Bounds a number: `min <= value <= max` (inclusive).
    pub fn range(self, min: f64, max: f64) -> Self {
        Self { min: Some(min), max: Some(max), ..self }
    }

    /// Bounds a number from below only.
    pub fn at_least(self, min: f64) -> Self {
        Self { min: Some(min), ..self }
    }

    /// Why `value` is not a value of this key, if it is not.
    pub(crate) fn refuse(&self, value: &SettingValue) -> Option<String> {
        if let Some(x) = value.as_f64() {
            if !x.is_finite() {
                return Some("must be a finite number".into());
            }
            match (self.min, self.max) {
                (Some(lo), Some(hi)) if x < lo || x > hi => return Some(format!("must be in {lo} ..= {hi}")),
                (Some(lo), _) if x < lo => return Some(format!("must be at least {lo}")),
                (_, Some(hi)) if x > hi => return Some(format!("must be at most {hi}")),
                _ => {}
            }
        }
        if let Some(v) = value.as_str() {
            if !self.choices.is_empty() && !self.choices.iter().any(|c| c == v) {
                return Some(format!("must be one of {}", self.choices.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>().join(", ")));
            }
        }
        None
    }
}

/// The language's view of one recipe.
#[derive(Debug, Clone, PartialEq)]
pub struct RecipeSchema {
    /// Registry name (`recipe "NAME"`).
    pub name: String,
    /// How reports name it (`I-JEPA`, `MAE`).
    pub display: String,
    /// One line for `--help`-style listings.
    pub summary: String,
    /// Experiment-level nodes only this recipe reads (another recipe's experiment writing
    /// one gets a diagnostic naming this recipe).
    pub own_nodes: Vec<String>,
    /// Mask kinds it samples, its default first; empty: it takes no `mask` node.
    pub mask_kinds: Vec<MaskKind>,
    /// AdamW betas when the experiment writes none (None: the language's (0.9, 0.999)).
    pub default_betas: Option<(f64, f64)>,
    /// The `ratio` of a `mask "random"` that writes none (None: the language's 0.75).
    pub default_mask_ratio: Option<f64>,
    /// The learning-rate schedule of an experiment whose `optimizer` writes no `lr` (None: the
    /// language's, I-JEPA's official).
    pub default_lr: Option<LrSchedule>,
    /// The weight-decay schedule of an experiment whose `optimizer` writes no `weight-decay`
    /// (None: the language's, I-JEPA's official cosine 0.04 -> 0.4).
    pub default_weight_decay: Option<WdSchedule>,
    /// The crop scale of a data block that writes no `crop-scale` (None: the language's 0.3-1.0).
    pub default_crop_scale: Option<(f64, f64)>,
    /// The flip probability of a data block that writes no `horizontal-flip` (None: 0).
    pub default_hflip: Option<f64>,
    /// The crops' resampling filter where the data block writes no `interpolation` (None:
    /// bilinear).
    pub default_interpolation: Option<Interpolation>,
    /// Nodes of settings only this recipe reads, declared here (a registered recipe's own
    /// hyper-parameters: `contrast temperature=0.1`); the built-in recipes' have typed fields.
    pub settings: Vec<SettingNode>,
    /// Its views are its own (DINO's multi-crop): the data block's augmentations (crop scale,
    /// flip, colour jitter, blur) are not read, nor part of its pretraining's hash.
    pub own_augmentations: bool,
    /// Its encoder learns its position table (DINO's), where the others hold a sin-cos table
    /// fixed: fine-tuning trained it before fine-tuning trained every recipe's table (the
    /// fine-tuning revision), so its fine-tunings keep their hash.
    pub learned_pos_embed: bool,
    /// Raised when the recipe's training changes in a way its settings do not show: part of
    /// its pretraining's hash (0: none), so that no run finds an earlier version's folder.
    pub hash_revision: u32,
    /// Fields of the resolved experiment besides the encoder (dotted, as `config.json` spells
    /// them: `decoder`, `dino.out_dim`) that its random initialisation of the evaluated encoder
    /// depends on: modules built before the encoder's weights are drawn move the random stream
    /// (MAE initialises after building its decoder; DINO draws its patch embedding after its
    /// head). Part of the random-init baseline's identity, so that a decoder or head of other
    /// shape is another baseline (it was one, computed for whichever point came first).
    pub init_settings: Vec<String>,
    /// Fields inside [`RecipeSchema::init_settings`] the initialisation does not read (MAE's
    /// `decoder.norm_pix_loss`, DINO's `dino.norm_last_layer`: a loss, a fixed gain of 1):
    /// keyed at their defaults ([`init_read_alike`]), so that a sweep over them shares one
    /// random-init baseline (each value computed the same features again, and the report listed
    /// the baseline twice).
    pub init_unread: Vec<String>,
}

impl RecipeSchema {
    /// A schema with no own nodes and no mask (e.g. a recipe that only needs the shared
    /// settings: data, encoder, optimizer, epochs, ...).
    pub fn new(name: impl Into<String>, summary: impl Into<String>) -> Self {
        let name = name.into();
        Self {
            display: name.clone(),
            name,
            summary: summary.into(),
            own_nodes: Vec::new(),
            mask_kinds: Vec::new(),
            default_betas: None,
            default_mask_ratio: None,
            default_lr: None,
            default_weight_decay: None,
            default_crop_scale: None,
            default_hflip: None,
            default_interpolation: None,
            settings: Vec::new(),
            own_augmentations: false,
            learned_pos_embed: false,
            hash_revision: 0,
            init_settings: Vec::new(),
            init_unread: Vec::new(),
        }
    }

    /// Every experiment-level node only this recipe reads: its `own_nodes`, then the nodes of
    /// its `settings`.
    pub fn nodes(&self) -> Vec<&str> {
        self.own_nodes.iter().map(String::as_str).chain(self.settings.iter().map(|n| n.name.as_str())).collect()
    }

    /// The mask kind this recipe samples for an experiment whose mask is of kind `kind`:
    /// `kind` itself when the recipe samples it, else the recipe's default; none when the
    /// recipe samples no mask.
    pub fn sampled_kind(&self, kind: MaskKind) -> Option<MaskKind> {
        if self.mask_kinds.contains(&kind) {
            Some(kind)
        } else {
            self.mask_kinds.first().copied()
        }
    }
}

fn builtins() -> Vec<RecipeSchema> {
    vec![
        RecipeSchema {
            name: "ijepa".into(),
            display: "I-JEPA".into(),
            summary: "I-JEPA: predict the target encoder's features of masked blocks from a context block (Assran et al., CVPR 2023)".into(),
            own_nodes: vec!["predictor".into(), "ema".into(), "loss".into(), "target".into()],
            // multi-block (the method), then the paper's Table 6 ablations
            mask_kinds: vec![MaskKind::MultiBlock, MaskKind::Rasterized, MaskKind::Block, MaskKind::Random],
            default_betas: None,
            // Table 6's "random": 60% of the patches are the target
            default_mask_ratio: Some(0.6),
            default_lr: None,
            default_weight_decay: None,
            default_crop_scale: None,
            default_hflip: None,
            default_interpolation: None,
            settings: Vec::new(),
            own_augmentations: false,
            learned_pos_embed: false,
            hash_revision: 0,
            // (its encoder is built and initialised before the predictor)
            init_settings: Vec::new(),
            init_unread: Vec::new(),
        },
        RecipeSchema {
            name: "mae".into(),
            display: "MAE".into(),
            summary: "MAE: reconstruct the pixels of randomly masked patches (He et al., CVPR 2022)".into(),
            own_nodes: vec!["decoder".into()],
            mask_kinds: vec![MaskKind::Random],
            // main_pretrain.py: torch.optim.AdamW(param_groups, lr=args.lr, betas=(0.9, 0.95))
            default_betas: Some((0.9, 0.95)),
            default_mask_ratio: None,
            // PRETRAIN.md's command (--blr 1.5e-4 --weight_decay 0.05 --warmup_epochs 40) and
            // util/lr_sched.py: linear warm-up from 0, half-cycle cosine to min_lr 0
            default_lr: Some(LrSchedule { start: 0.0, peak: 1.5e-4, final_: 0.0, warmup_epochs: 40.0, blr: Some(1.5e-4) }),
            // AdamW's weight decay, constant (no schedule in main_pretrain.py)
            default_weight_decay: Some(WdSchedule { start: 0.05, final_: 0.05, shape: WdShape::Cosine }),
            // main_pretrain.py: RandomResizedCrop(input_size, scale=(0.2, 1.0),
            // interpolation=3), RandomHorizontalFlip()
            default_crop_scale: Some((0.2, 1.0)),
            default_hflip: Some(0.5),
            default_interpolation: Some(Interpolation::Bicubic),
            settings: Vec::new(),
            own_augmentations: false,
            learned_pos_embed: false,
            hash_revision: 0,
            // the official `initialize_weights` runs after both are built
            init_settings: vec!["decoder".into()],
            // (the loss's per-patch normalisation: nothing drawn)
            init_unread: vec!["decoder.norm_pix_loss".into()],
        },
        RecipeSchema {
            name: "dino".into(),
            display: "DINO".into(),
            summary: "DINO: a student matches an EMA teacher's centred, sharpened prototypes across multi-crop views (Caron et al., ICCV 2021)".into(),
            own_nodes: vec!["dino".into()],
            mask_kinds: Vec::new(),
            default_betas: None,
            default_mask_ratio: None,
            // main_dino.py: lr = 0.0005 x batch / 256, linear warm-up from 0 over 10 epochs,
            // cosine to min_lr 1e-6 (its weight decay, cosine 0.04 -> 0.4, is the language's)
            default_lr: Some(LrSchedule { start: 0.0, peak: 5e-4, final_: 1e-6, warmup_epochs: 10.0, blr: Some(5e-4) }),
            default_weight_decay: None,
            // its own multi-crop reads no crop scale or flip of the data block;
            // DataAugmentationDINO resizes every crop with Image.BICUBIC
            default_crop_scale: None,
            default_hflip: None,
            default_interpolation: Some(Interpolation::Bicubic),
            settings: Vec::new(),
            // its multi-crop (`dino { global-scale ...; local-scale ... }`) makes its views
            own_augmentations: true,
            // (a learnt position table: vit_small's `nn.Parameter`)
            learned_pos_embed: true,
            // 2: the student's stochastic depth and the official linspace warm-up
            hash_revision: 2,
            // its patch embedding is drawn after the head is built
            init_settings: ["out_dim", "hidden_dim", "bottleneck_dim", "head_layers", "norm_last_layer"].iter().map(|f| format!("dino.{f}")).collect(),
            // (whether the last layer's gain, filled with 1, is trained: nothing drawn)
            init_unread: vec!["dino.norm_last_layer".into()],
        },
    ]
}

/// The values of the settings `recipe`'s random initialisation depends on besides the encoder
/// ([`RecipeSchema::init_settings`]), by field path; `None` when it declares none.
pub fn init_values(exp: &crate::config::Experiment) -> Option<serde_json::Value> {
    let fields = schema(&exp.recipe).map(|s| s.init_settings).unwrap_or_default();
    if fields.is_empty() {
        return None;
    }
    let all = serde_json::to_value(exp).ok()?;
    let values = fields.iter().map(|f| (f.clone(), f.split('.').fold(&all, |v, k| &v[k]).clone())).collect::<serde_json::Map<_, _>>();
    Some(serde_json::Value::Object(values))
}

/// `exp` with what its recipe's initialisation does not read ([`RecipeSchema::init_unread`])
/// at its defaults: how a random-init baseline is keyed, so that a sweep over those settings
/// shares one baseline (the settings at their defaults are unchanged, and so is their key).
pub fn init_read_alike(exp: &crate::config::Experiment) -> crate::config::Experiment {
    let unread = schema(&exp.recipe).map(|s| s.init_unread).unwrap_or_default();
    let Ok(mut all) = serde_json::to_value(exp) else { return exp.clone() };
    let defaults = crate::config::Experiment::with_defaults("");
    // (the blocks left out of the serialised form at their defaults, written out: a decoder
    // of other shape keeps its `norm_pix_loss` key, at the default's value)
    let mut default_values = serde_json::to_value(&defaults).unwrap_or_default();
    default_values["decoder"] = serde_json::to_value(&defaults.decoder).unwrap_or_default();
    default_values["dino"] = serde_json::to_value(&defaults.dino).unwrap_or_default();
    let mut changed = false;
    for f in unread {
        let at = format!("/{}", f.replace('.', "/"));
        if let (Some(v), Some(d)) = (all.pointer_mut(&at), default_values.pointer(&at)) {
            changed |= v != d;
            *v = d.clone();
        }
    }
    if !changed {
        return exp.clone();
    }
    serde_json::from_value(all).unwrap_or_else(|_| exp.clone())
}

static REGISTRY: LazyLock<RwLock<Vec<RecipeSchema>>> = LazyLock::new(|| RwLock::new(builtins()));

fn read() -> std::sync::RwLockReadGuard<'static, Vec<RecipeSchema>> {
    REGISTRY.read().unwrap_or_else(|e| e.into_inner())
}

/// Makes `schema` known to the language. Registering the same schema again is a no-op.
///
/// # Errors
/// A different schema under a name already registered, an empty name, or an own node that
/// is a shared setting of every experiment (e.g. `data`).
pub fn register(schema: RecipeSchema) -> Result<(), String> {
    if schema.name.is_empty() || !schema.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(format!("recipe name {:?}: use letters, digits, `-` and `_`", schema.name));
    }
    if let Some(shared) = schema.own_nodes.iter().find(|n| crate::schema::shared_node(n)) {
        return Err(format!("recipe {:?} cannot own `{shared}`: every experiment has it", schema.name));
    }
    check_settings(&schema)?;
    let mut all = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    match all.iter().find(|s| s.name == schema.name) {
        Some(s) if *s == schema => Ok(()),
        Some(_) => Err(format!("a different recipe {:?} is already registered", schema.name)),
        None => {
            if let Some((other, node)) = all.iter().find_map(|o| schema.nodes().into_iter().find(|n| o.settings.iter().any(|m| m.name == *n)).map(|n| (o.name.clone(), n))) {
                return Err(format!("recipe {:?}: node `{node}` is already a setting of recipe {other:?}", schema.name));
            }
            if let Some((other, node)) = schema.settings.iter().find_map(|n| all.iter().find(|o| o.own_nodes.contains(&n.name)).map(|o| (o.name.clone(), n.name.clone()))) {
                return Err(format!("recipe {:?}: node `{node}` is already recipe {other:?}'s", schema.name));
            }
            for node in &schema.settings {
                crate::schema::settings::register_node(node);
            }
            all.push(schema);
            Ok(())
        }
    }
}

/// The rules on a schema's [`RecipeSchema::settings`]: names a file can write, no node the
/// language already has, each key once, defaults of their own type and range.
fn check_settings(schema: &RecipeSchema) -> Result<(), String> {
    let word = |n: &str| !n.is_empty() && n.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    for (i, node) in schema.settings.iter().enumerate() {
        let at = format!("recipe {:?}, setting node `{}`", schema.name, node.name);
        if !word(&node.name) {
            return Err(format!("{at}: a node name starts with a letter and has letters, digits and `-`"));
        }
        // (a node of any block: its "belongs inside `data`" help would name the recipe)
        if crate::schema::experiment_node(&node.name) || crate::schema::locations().iter().any(|(n, _)| *n == node.name) {
            return Err(format!("{at}: the language already has `{}` (write the recipe's settings under a name of its own)", node.name));
        }
        if schema.own_nodes.contains(&node.name) || schema.settings[..i].iter().any(|n| n.name == node.name) {
            return Err(format!("{at}: declared twice"));
        }
        if node.keys.is_empty() {
            return Err(format!("{at}: declares no property"));
        }
        for (j, key) in node.keys.iter().enumerate() {
            let at = format!("{at}, property `{}`", key.name);
            if !word(&key.name) {
                return Err(format!("{at}: a property name starts with a letter and has letters, digits and `-`"));
            }
            if node.keys[..j].iter().any(|k| k.name == key.name) {
                return Err(format!("{at}: declared twice"));
            }
            let number = key.default.as_f64().is_some();
            if (key.min.is_some() || key.max.is_some()) && !number {
                return Err(format!("{at}: bounds are for numbers; its default is {}", key.default.kind()));
            }
            if !key.choices.is_empty() && key.default.as_str().is_none() {
                return Err(format!("{at}: choices are for strings; its default is {}", key.default.kind()));
            }
            if let Some(b) = [key.min, key.max].into_iter().flatten().find(|b| b.is_nan()) {
                return Err(format!("{at}: a bound of {b} bounds nothing"));
            }
            if let (Some(lo), Some(hi)) = (key.min, key.max) {
                if lo > hi {
                    return Err(format!("{at}: its range {lo} ..= {hi} is empty"));
                }
            }
            if let Some(why) = key.refuse(&key.default) {
                return Err(format!("{at}: its default {} {why}", key.default));
            }
        }
    }
    Ok(())
}

/// A rule a registered recipe puts across its settings (and the shared ones), run by `check`,
/// `plan` and `run` on every resolved experiment of that recipe once each setting it names is
/// valid on its own: the rule breaks it finds, each naming the setting to point at.
pub type RecipeCheck = fn(&crate::config::Experiment) -> Vec<RuleBreak>;

/// One break of a [`RecipeCheck`]: an `ijepa::dsl::invalid_value` at the setting `path`
/// (`ae.tokens`, `data.crop-size`: where it is written, else its block, else `recipe`).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleBreak {
    /// The setting the diagnostic points at (a dotted path, as `vary` writes it).
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

static CHECKS: LazyLock<RwLock<Vec<(String, RecipeCheck)>>> = LazyLock::new(|| RwLock::new(Vec::new()));

/// Adds `check` to the rules of recipe `recipe` (registering the same function again is a
/// no-op). A recipe that is not registered has its rules run once it is.
pub fn register_check(recipe: &str, check: RecipeCheck) {
    let mut all = CHECKS.write().unwrap_or_else(|e| e.into_inner());
    if !all.iter().any(|(r, c)| r == recipe && std::ptr::fn_addr_eq(*c, check)) {
        all.push((recipe.to_string(), check));
    }
}

/// The rules registered for `recipe`.
pub(crate) fn checks(recipe: &str) -> Vec<RecipeCheck> {
    CHECKS.read().unwrap_or_else(|e| e.into_inner()).iter().filter(|(r, _)| r == recipe).map(|(_, c)| *c).collect()
}

/// The setting nodes registered recipes declare ([`RecipeSchema::settings`]).
pub fn setting_nodes() -> Vec<String> {
    read().iter().flat_map(|s| s.settings.iter().map(|n| n.name.clone())).collect()
}

/// The recipe that declares the setting node `name`, with the node.
pub fn setting_node(name: &str) -> Option<(String, SettingNode)> {
    read().iter().find_map(|s| s.settings.iter().find(|n| n.name == name).map(|n| (s.name.clone(), n.clone())))
}

/// Resolves an experiment's [`crate::config::Experiment::recipe_settings`] for recipe `s`:
/// each of its setting nodes gets every key the file did not write at its default, and the
/// nodes of recipes not in `keep` (besides `s` itself) are dropped (a base of another recipe
/// brought them; the diagnostics name any the files wrote).
pub(crate) fn settings_defaults(exp: &mut crate::config::Experiment, s: &RecipeSchema, keep: &[String]) {
    exp.recipe_settings.retain(|node, _| {
        s.settings.iter().any(|n| n.name == *node) || keep.iter().filter_map(|r| schema(r)).any(|r| r.settings.iter().any(|n| n.name == *node))
    });
    for node in &s.settings {
        let values = exp.recipe_settings.entry(node.name.clone()).or_default();
        for key in &node.keys {
            values.entry(key.name.clone()).or_insert_with(|| key.default.clone());
        }
    }
}

/// The schema of `name`, if registered.
pub fn schema(name: &str) -> Option<RecipeSchema> {
    read().iter().find(|s| s.name == name).cloned()
}

/// What is said of an experiment of `recipe` where that recipe makes its own views (DINO's
/// multi-crop) and its data block `data` sets augmentations the recipe does not read, or writes
/// them at their defaults ([`crate::Study::written`]: `horizontal-flip 0`, written to hold the
/// methods' data equal, was not said, while DINO flips its views): by `check`, `plan` and `run`
/// before anything trains (once: the pretraining said it again, on every rank). `written` says
/// whether the file writes the setting at a path (`data.horizontal-flip`). `None` otherwise.
pub fn unread_augmentations_written(recipe: &str, data: &crate::config::DataConfig, written: impl Fn(&str) -> bool) -> Option<String> {
    unread_augmentations_of(recipe, &data.augmentations_set_or(|name| written(&format!("data.{name}"))))
}

fn unread_augmentations_of(recipe: &str, unread: &[&str]) -> Option<String> {
    let schema = schema(recipe).filter(|s| s.own_augmentations)?;
    let views = if recipe == "dino" {
        "its own multi-crop (`dino { global-scale ...; local-scale ... }`, with DINO's flips, colour jitter, blur and solarisation)".to_string()
    } else {
        "its own augmentations".to_string()
    };
    (!unread.is_empty()).then(|| {
        format!(
            "{}'s views come from {views}: the data block's {} {} not read by its pretraining (nor part of the pretraining's hash; a `finetune` evaluation trains with {})",
            schema.display,
            unread.join(", "),
            if unread.len() == 1 { "is" } else { "are" },
            if unread.len() == 1 { "it" } else { "them" }
        )
    })
}

/// What is said of an experiment whose evaluated encoder never leaves its initialisation: an
/// EMA that stays at momentum 1 (I-JEPA's `ema start=1 final=1` with a target encoder, DINO's
/// `momentum-teacher 1`, whose cosine rises to 1). The evaluations and monitors read that
/// encoder, and scored the random init, with no word; by `check`, `plan` and `run`. `None`
/// otherwise.
pub fn frozen_teacher(exp: &crate::config::Experiment) -> Option<String> {
    match exp.recipe.as_str() {
        "ijepa" if exp.target.kind == crate::config::TargetKind::Representation && exp.ema.start >= 1.0 && exp.ema.final_ >= 1.0 => Some(
            "the target encoder, which the evaluations and monitors read, never moves: `ema start=1 final=1` keeps it at its initialisation \
             (every evaluation scores the random init); the official momentum rises from 0.996"
                .into(),
        ),
        "dino" if exp.dino.momentum_teacher >= 1.0 => Some(
            "DINO's teacher, which the evaluations and monitors read, never moves: `momentum-teacher 1` keeps it at its initialisation \
             (every evaluation scores the random init); official 0.996"
                .into(),
        ),
        _ => None,
    }
}

/// What is said of an experiment whose learning rate is 0 throughout (`lr start=0 peak=0
/// final=0`, or `peak=0 final=0` with no warm-up, where `start` is not read; `blr=` is above
/// 0): no weight moves, and the
/// evaluations and monitors scored the random init with no word. By `check`, `plan` and
/// `run`, as [`frozen_teacher`]. `None` otherwise.
pub fn still_weights(exp: &crate::config::Experiment) -> Option<String> {
    let lr = &exp.optimizer.lr;
    let no_warmup = lr.warmup_epochs == 0.0;
    ((lr.start == 0.0 || no_warmup) && lr.peak_for(1) == 0.0 && lr.final_ == 0.0).then(|| {
        let written = if lr.start == 0.0 { "`lr start=0 peak=0 final=0`" } else { "`lr peak=0 final=0` with no warm-up, where `start=` is not read" };
        format!(
            "the learning rate is 0 throughout ({written}): no weight moves, and every evaluation and monitor scores the encoder at its \
             initialisation (the random init); give `optimizer \"adamw\" {{ lr peak=... }}` a value above 0"
        )
    })
}

/// What is said of an experiment whose learning-rate warm-up lasts at least its schedule
/// (`warmup-epochs` at least `ipe-scale` x `epochs`), or at least the run where `ipe-scale`
/// stretches the schedule past it: the rate never follows its decay (said only as pretraining
/// started: `check` and `plan` passed a warm-up of 20 epochs in a run of 10). By `check`, `plan` and `run`, as [`still_weights`];
/// the pretraining says it too where its steps' rounding makes a shorter warm-up fill the
/// schedule. `None` otherwise.
pub fn warmup_fills_schedule(exp: &crate::config::Experiment) -> Option<String> {
    let warmup = exp.optimizer.lr.warmup_epochs;
    let epochs = exp.epochs as f64;
    let schedule = exp.ipe_scale * epochs;
    // (the run stops first where ipe-scale stretches the schedule: a warm-up of 3 epochs in a
    // run of 2 whose schedule lasts 4 never decays in the run; and at least, up to the float
    // noise of the product: 0.1 x 3 is 0.30000000000000004, and a warm-up of 0.3 was not said)
    let covered = schedule.min(epochs);
    (warmup > 0.0 && warmup >= covered * (1.0 - 1e-9)).then(|| {
        let (w, e, s) = (shown_epochs(warmup), exp.epochs, shown_epochs(schedule));
        if schedule > epochs {
            return format!(
                "the learning-rate warm-up ({w} epoch(s)) lasts at least the whole run ({e} epoch(s), of a schedule ipe-scale {} stretches to {s}): \
                 the rate never decays within the run; shorten it (`optimizer \"adamw\" {{ lr warmup-epochs=... }}`, below {e}) or train more epochs",
                exp.ipe_scale
            );
        }
        let scaled = if exp.ipe_scale == 1.0 { String::new() } else { format!(" x ipe-scale {} = {s}", exp.ipe_scale) };
        // (a run past its schedule: past the warm-up, a cosine of one step, MAE's too, whose
        // final rate is 0)
        let past = if exp.ipe_scale < 1.0 && warmup < epochs {
            " (past the warm-up, the steps beyond the schedule follow a cosine of one step: the rate alternates between its peak and its final value \
             every step; I-JEPA's official scheduler does the same)"
        } else {
            ""
        };
        format!(
            "the learning-rate warm-up ({w} epoch(s)) lasts at least the whole schedule ({e} epoch(s){scaled}): the rate never follows its decay \
             to the final value{past}; shorten it (`optimizer \"adamw\" {{ lr warmup-epochs=... }}`, below {s}) or train more epochs"
        )
    })
}

/// A number of epochs as a message shows it: a product's float noise rounded away (`0.1 x 3`
/// is 0.30000000000000004 epochs), to 12 significant digits (rounded to 1e-9 epochs, a schedule
/// of ipe-scale 1e-12 was shown as 0, with a warm-up advised "below 0").
fn shown_epochs(x: f64) -> String {
    format!("{}", format!("{x:.11e}").parse::<f64>().unwrap_or(x))
}

/// What is said of an experiment whose schedules end before the run (`ipe-scale` below 1):
/// its last epochs train past them (said only as pretraining started). By `check`, `plan` and
/// `run`, as [`still_weights`]. `None` otherwise.
pub fn schedules_end_early(exp: &crate::config::Experiment) -> Option<String> {
    (exp.ipe_scale < 1.0).then(|| {
        let epochs = exp.epochs as f64;
        // (I-JEPA's EMA momentum follows a schedule too; MAE has no EMA)
        let past = if exp.recipe == "ijepa" {
            "the learning rate and weight decay follow their formulas beyond the end (a cosine turns back toward its start) rather than holding \
             their final values, and the EMA momentum holds its last value (the official code's momentum generator runs out there and its run stops)"
        } else {
            "the learning rate and weight decay follow their formulas beyond the end (a cosine turns back toward its start) rather than holding \
             their final values"
        };
        format!(
            "the schedules last ipe-scale {} x {} epoch(s) = {} epoch(s) of the run's {}: past them {past}; ipe-scale 1.0 fits them to the run",
            exp.ipe_scale,
            exp.epochs,
            shown_epochs(exp.ipe_scale * epochs),
            exp.epochs
        )
    })
}

/// What is said of a DINO experiment whose last layer stays frozen for the whole run
/// (`freeze-last-layer` at least its epochs): the prototypes keep their initialisation. Said
/// by `check`, `plan` and `run` (it was said only as pretraining started). `None` otherwise.
pub fn frozen_prototypes(exp: &crate::config::Experiment) -> Option<String> {
    let (frozen, epochs) = (exp.dino.freeze_last_layer, exp.epochs);
    (exp.recipe == "dino" && frozen >= epochs && frozen > 0).then(|| {
        format!(
            "DINO's last layer is frozen for the first {frozen} epoch(s) (`freeze-last-layer`, official 1), the whole run of {epochs}: the prototypes keep their \
             initialisation; write `freeze-last-layer 0` or more epochs to train them"
        )
    })
}

/// What one experiment's own settings warn of before anything trains ([`setting_warnings`]):
/// the schedules' two apart (a sweep says them in one line where their numbers differ by point,
/// [`crate::Study::warnings`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SettingWarnings {
    /// Augmentations the recipe does not read, a frozen teacher, a learning rate of 0
    /// throughout, DINO's frozen prototypes, a monitor whose kNN cannot show learning; in
    /// that order.
    pub others: Vec<String>,
    /// A learning-rate warm-up that fills the schedule ([`warmup_fills_schedule`]; not beside
    /// a rate of 0 throughout, which has none to follow).
    pub warmup: Option<String>,
    /// Schedules that end before the run ([`schedules_end_early`]).
    pub ends: Option<String>,
}

impl SettingWarnings {
    /// Every warning, the schedules' after the others'.
    pub fn all(self) -> Vec<String> {
        self.others.into_iter().chain(self.warmup).chain(self.ends).collect()
    }
}

/// What the pretraining settings of `exp` warn of, as `check`, `plan` and `run` say them of its
/// point (before anything trains) and its run's manifest keeps them for the report; `written`
/// says whether the file writes a setting at a path (`data.horizontal-flip`), as for
/// [`unread_augmentations_written`].
pub fn setting_warnings(exp: &crate::config::Experiment, written: impl Fn(&str) -> bool) -> SettingWarnings {
    let still = still_weights(exp);
    SettingWarnings {
        warmup: warmup_fills_schedule(exp).filter(|_| still.is_none()),
        ends: schedules_end_early(exp),
        others: [unread_augmentations_written(&exp.recipe, &exp.data, written), frozen_teacher(exp), still, frozen_prototypes(exp), exp.monitor.as_ref().and_then(|m| m.warning())]
            .into_iter()
            .flatten()
            .collect(),
    }
}

/// Every registered recipe name, built-ins first.
pub fn names() -> Vec<String> {
    read().iter().map(|s| s.name.clone()).collect()
}

/// The recipes that own the experiment-level node `node` (one of its `own_nodes` or
/// `settings`).
pub fn owners(node: &str) -> Vec<String> {
    read()
        .iter()
        .filter(|s| s.nodes().contains(&node))
        .map(|s| s.name.clone())
        .collect()
}

/// The recipes that sample masks of kind `kind`.
pub fn samplers(kind: MaskKind) -> Vec<String> {
    read().iter().filter(|s| s.mask_kinds.contains(&kind)).map(|s| s.name.clone()).collect()
}

/// Every built-in node some recipe owns (`predictor`, `decoder`, ...: what the experiment
/// block accepts besides the shared ones and the registered recipes' [`setting_nodes`]).
pub fn owned_nodes() -> Vec<String> {
    let mut out: Vec<String> = read().iter().flat_map(|s| s.own_nodes.clone()).collect();
    out.sort();
    out.dedup();
    out
}

/// The recipes a document's sweep varies (`vary "recipe" "ijepa" "mae"`, or as `- "mae"`
/// children), read from the raw nodes before the experiment is read.
pub(crate) fn swept(doc: &kdl::KdlDocument) -> Vec<String> {
    let mut out = Vec::new();
    for (_, vary) in vary_nodes(doc).filter(|(path, _)| *path == "recipe") {
        out.extend(vary.entries().iter().skip(1).filter_map(|e| e.value().as_string().map(str::to_string)));
        for child in vary.children().map(|c| c.nodes()).unwrap_or_default() {
            out.extend(child.entries().iter().filter_map(|e| e.value().as_string().map(str::to_string)));
        }
    }
    out
}

/// The settings a document's sweeps vary (`vary "PATH" ...`), read from the raw nodes.
pub(crate) fn swept_paths(doc: &kdl::KdlDocument) -> Vec<String> {
    vary_nodes(doc).map(|(path, _)| path.to_string()).collect()
}

/// Each `vary` node of a document's sweeps, with the path it varies (its first argument).
fn vary_nodes(doc: &kdl::KdlDocument) -> impl Iterator<Item = (&str, &kdl::KdlNode)> {
    doc.nodes()
        .iter()
        .filter(|n| n.name().value() == "sweep")
        .flat_map(|sweep| sweep.children().map(|c| c.nodes()).unwrap_or_default())
        .filter(|vary| vary.name().value() == "vary")
        .filter_map(|vary| Some((vary.entries().first()?.value().as_string()?, vary)))
}

/// A sweep point whose recipe was varied keeps what its recipe samples and defaults to: a
/// mask of a kind it does not sample becomes its default kind, and what is not written of its
/// defaults ([`recipe_defaults`]: betas, lr and weight-decay properties, crop scale, flip,
/// interpolation) its own.
pub(crate) fn settle(exp: &mut crate::config::Experiment, written: &dyn Fn(&str) -> bool) {
    let Some(s) = schema(&exp.recipe) else { return };
    mask_default(exp, &s, written);
    mask_ratio_default(exp, &s, written);
    recipe_defaults(exp, &s, written);
    settings_defaults(exp, &s, &[]);
}

/// The mask of a recipe `s`: where neither the file nor its bases (nor a sweep point) wrote
/// one (`written("mask")`), its default kind with its defaults; a written mask of a kind it
/// does not sample, its default kind too. (An unwritten mask of another recipe's default kind
/// that this one also samples was kept: I-JEPA extending an MAE base, or swept from one,
/// trained MAE's random mask, the Table 6 ablation, as if it had been written.)
pub(crate) fn mask_default(exp: &mut crate::config::Experiment, s: &RecipeSchema, written: &dyn Fn(&str) -> bool) {
    let kind = if written("mask") { s.sampled_kind(exp.mask.kind) } else { s.mask_kinds.first().copied() };
    if let Some(kind) = kind.filter(|&k| k != exp.mask.kind) {
        exp.mask = crate::config::MaskConfig::for_kind(kind, s.default_mask_ratio);
    }
}

/// A random mask's ratio that neither the file nor its bases wrote is the recipe's (MAE 0.75,
/// I-JEPA 0.6), wherever `recipe` is written: `mask "random"` read before `recipe "mae"` (or
/// in a base of another recipe) took the ratio of the recipe named so far.
pub(crate) fn mask_ratio_default(exp: &mut crate::config::Experiment, s: &RecipeSchema, written: &dyn Fn(&str) -> bool) {
    if exp.mask.kind == crate::config::MaskKind::Random && !written("mask.ratio") {
        exp.mask.ratio = crate::config::MaskConfig::for_kind(crate::config::MaskKind::Random, s.default_mask_ratio).ratio;
    }
}

/// The recipe's defaults (its betas, learning-rate and weight-decay schedules, crop scale,
/// flip and interpolation) for what the file did not write (`written(path)`:
/// `optimizer.betas`, `optimizer.lr.start`, `data.crop-scale`, ...); a written value is kept
/// whatever it is, the language's default included. Each `lr` and `weight-decay` property
/// defaults on its own; the peak and `blr` as one (either written keeps both).
pub(crate) fn recipe_defaults(exp: &mut crate::config::Experiment, s: &RecipeSchema, written: &dyn Fn(&str) -> bool) {
    let data = crate::config::DataConfig::default();
    if !written("data.crop-scale") {
        exp.data.crop_scale = s.default_crop_scale.unwrap_or(data.crop_scale);
    }
    if !written("data.horizontal-flip") {
        exp.data.hflip = s.default_hflip.unwrap_or(data.hflip);
    }
    if !written("data.interpolation") {
        exp.data.interpolation = s.default_interpolation.unwrap_or(data.interpolation);
    }
    let language = crate::config::OptimizerConfig::default();
    if !written("optimizer.betas") {
        exp.optimizer.betas = s.default_betas.unwrap_or(language.betas);
    }
    let d = s.default_weight_decay.clone().unwrap_or(language.weight_decay);
    let w = &mut exp.optimizer.weight_decay;
    for (key, slot, value) in [("start", &mut w.start, d.start), ("final", &mut w.final_, d.final_)] {
        if !written(&format!("optimizer.weight-decay.{key}")) {
            *slot = value;
        }
    }
    if !written("optimizer.weight-decay.schedule") {
        w.shape = d.shape;
    }
    let d = s.default_lr.clone().unwrap_or(language.lr);
    let l = &mut exp.optimizer.lr;
    for (key, slot, value) in [("start", &mut l.start, d.start), ("final", &mut l.final_, d.final_), ("warmup-epochs", &mut l.warmup_epochs, d.warmup_epochs)] {
        if !written(&format!("optimizer.lr.{key}")) {
            *slot = value;
        }
    }
    if !written("optimizer.lr.peak") && !written("optimizer.lr.blr") {
        l.peak = d.peak;
        l.blr = d.blr;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Epochs as messages show them: a product's float noise rounded away, a tiny schedule not
    /// shown as 0.
    #[test]
    fn epochs_shown() {
        assert_eq!(shown_epochs(0.1 * 3.0), "0.3");
        assert_eq!(shown_epochs(40.0), "40");
        assert_eq!(shown_epochs(1e-12), "0.000000000001");
        assert_eq!(shown_epochs(2.5e-10 * 3.0), "0.00000000075");
    }

    #[test]
    fn builtins_and_registration() {
        assert!(names().starts_with(&["ijepa".to_string(), "mae".to_string()]));
        assert_eq!(owners("decoder"), vec!["mae".to_string()]);
        assert_eq!(owners("predictor"), vec!["ijepa".to_string()]);
        let s = RecipeSchema::new("unit-test-recipe", "a test");
        register(s.clone()).unwrap();
        register(s.clone()).unwrap();
        assert!(register(RecipeSchema { summary: "other".into(), ..s }).is_err());
        assert!(register(RecipeSchema { own_nodes: vec!["data".into()], ..RecipeSchema::new("x-data", "") }).is_err());
        assert!(register(RecipeSchema::new("bad name", "")).is_err());
        assert!(schema("unit-test-recipe").is_some());
    }
}
