//! The stage graph of a study: an experiment file (one experiment, or a sweep of points)
//! compiled to a petgraph DAG of stages — a pretraining run per point, the evaluations that
//! read its checkpoint, evaluations of baselines (which need no pretraining), and a report
//! after every evaluation. Each stage has a content hash (its resolved settings plus the
//! hashes of its inputs) that names its folder, so a finished stage is recognised and skipped
//! and a changed setting gets a fresh folder. Pure: nothing here runs or writes anything.

use crate::run_dir::{self, content_hash};
use crate::stages::Subject;
use ijepa_dsl::config::{path_alike, Baseline, DataConfig, EvalConfig, EvalProtocol, Experiment};
use ijepa_dsl::{Point, Study};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The three kinds of stage, in the order a plan runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StageKind {
    /// Pretraining of one point.
    Pretrain,
    /// One evaluation protocol on one model.
    Eval,
    /// Tables and plots of every evaluation.
    Report,
}

/// What a stage does.
#[derive(Debug, Clone, PartialEq)]
pub enum Task {
    /// Pretrain point `point`.
    Pretrain {
        /// Index into [`Plan::points`].
        point: usize,
    },
    /// Evaluation `eval` of point `point` on `subject`.
    Eval {
        /// Index into [`Plan::points`] (for baselines: the first point that needs it).
        point: usize,
        /// Index into the point's `evals`.
        eval: usize,
        /// The model evaluated.
        subject: Subject,
    },
    /// The report.
    Report,
}

/// One node of the plan.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Readable unique name: `pretrain`, `eval-linear-ijepa`, `eval-knn-raw-pixels`, with
    /// `/<point>` appended in a sweep, and `report`.
    pub id: String,
    /// What it does.
    pub task: Task,
    /// Content hash (16 hex digits).
    pub hash: String,
    /// Its folder (the report's output folder for the report).
    pub dir: PathBuf,
    /// Setting path -> value of the sweep point this stage belongs to (only the settings
    /// that matter to it: a baseline does not depend on masking or optimiser settings).
    pub varied: BTreeMap<String, String>,
    /// The list files it reads, with their digests when the plan was made ([`pretrain_inputs`],
    /// [`eval_inputs`]): its hash counts them, so a list edited before the stage runs is
    /// refused ([`Plan::changed_inputs`]), not read under the folder of its earlier contents.
    pub inputs: BTreeMap<String, String>,
}

impl Stage {
    /// The stage's kind.
    pub fn kind(&self) -> StageKind {
        match self.task {
            Task::Pretrain { .. } => StageKind::Pretrain,
            Task::Eval { .. } => StageKind::Eval,
            Task::Report => StageKind::Report,
        }
    }
}

/// Whether a stage has run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Its output exists: it is skipped.
    Done,
    /// An interrupted pretraining with a checkpoint at `step`: it resumes from there.
    Partial {
        /// Optimiser steps in the checkpoint.
        step: u64,
    },
    /// Not run yet.
    Pending,
    /// A pretraining that diverged at `step` (its manifest says so): left as it is, with what
    /// reads it, unless `--force` trains it again.
    Diverged {
        /// The step of the non-finite loss or weights.
        step: u64,
    },
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Done => f.write_str("done"),
            Status::Partial { step } => write!(f, "resumes at step {step}"),
            Status::Pending => f.write_str("to run"),
            Status::Diverged { step } => write!(f, "diverged at step {step} (--force trains it again)"),
        }
    }
}

/// A compiled study: its points and the DAG of their stages (edges: input -> consumer).
#[derive(Debug, Clone)]
pub struct Plan {
    /// Name of the study (the experiment's name, before sweep suffixes).
    pub name: String,
    /// The sweep points (one when the file has no sweep).
    pub points: Vec<Point>,
    /// The stages.
    pub graph: DiGraph<Stage, ()>,
    /// Processes of a pretraining run (part of its hash: the global batch depends on it).
    pub world_size: usize,
    /// The report's output folder.
    pub reports_dir: PathBuf,
    /// The runs folder the stages' folders are in (and the report reads, every experiment's).
    pub runs_dir: PathBuf,
    /// The settings the study's file writes itself, by dotted path ([`ijepa_dsl::Study`]'s
    /// `written`): what its pretrainings' setting warnings tell from defaults left out.
    pub written: BTreeSet<String>,
}

/// The content hash of a pretraining run: every setting that can change its result, plus the
/// number of processes; evaluations, the report, loader threads, the launcher and the cadence
/// of logging and checkpoints (`log-every`, `checkpoint`: which rows and files are written,
/// not the weights), and for DINO the data block's augmentations (its multi-crop has its
/// own) are not part of it (adding an evaluation, changing `workers` or keeping
/// more checkpoints never retrains); nor are the settings of other recipes (in a sweep over
/// recipes, I-JEPA's `predictor` or `ema` changed does not retrain the MAE and DINO points),
/// nor a `peak` learning rate that a `blr=` overrides, nor the monitor's collapse-warning
/// floors (`rank-floor`, `spread-floor`: which warnings are said, not the weights; a floor
/// changed after a warning trained the run again).
/// The contents of the list file it reads (`data.subset`) count too ([`pretrain_inputs`]): an
/// edited list trains again, under another folder.
///
/// Spellings of one setting hash alike ([`spelled_alike`]): a path with or without its
/// trailing slash, a predictor's head count written or left to the encoder's, a preset named
/// beside its numbers, `device "cuda:N"` as `cuda`.
pub fn pretrain_hash(exp: &Experiment, world_size: usize) -> String {
    as_written_pretrain_hash(&without_warning_floors(&spelled_alike(exp)), world_size)
}

/// `exp` with the monitor's collapse-warning floors at their defaults ([`pretrain_hash`]).
fn without_warning_floors(exp: &Experiment) -> Experiment {
    let mut e = exp.clone();
    if let Some(m) = e.monitor.as_mut() {
        let d = ijepa_dsl::config::MonitorConfig::default();
        (m.rank_floor, m.spread_floor) = (d.rank_floor, d.spread_floor);
    }
    e
}

/// [`pretrain_hash`] of the settings as the file spells them: the hash of earlier versions.
fn as_written_pretrain_hash(exp: &Experiment, world_size: usize) -> String {
    with_inputs(listless_pretrain_hash(exp, world_size), &pretrain_inputs(exp))
}

/// An evaluation's settings as [`spelled_alike`] spells them: its list file's path.
fn eval_spelled_alike(cfg: &EvalConfig) -> EvalConfig {
    EvalConfig { split_file: cfg.split_file.as_deref().map(path_alike), ..cfg.clone() }
}

/// `exp` with the settings that several spellings give one value spelled one way, so that
/// rewriting a file without changing what it trains finds the stages it ran before: the data's
/// paths ([`path_alike`]); the encoder's preset name (its numbers are what builds it: `encoder
/// "vit-tiny" patch=4` and `encoder width=192 depth=12 heads=3 patch=4` are one model, and a
/// preset whose numbers the file overrode is not that preset); the predictor's head count
/// where it is the encoder's (written or left out, one predictor); the
/// device `cuda:N` written as `cuda` (the same on every machine; not `cpu` as `auto`, which
/// means it only where there is no CUDA); a setting another one turns off, whatever it says
/// ([`Experiment::without_settings_turned_off`]: the points of a sweep that varies the switch).
pub fn spelled_alike(exp: &Experiment) -> Experiment {
    use ijepa_dsl::config::DataSource;
    // (and a setting another turns off, at its default: one model, whatever it says)
    let mut e = exp.without_settings_turned_off();
    if let DataSource::Path(p) = &e.data.source {
        e.data.source = DataSource::Path(path_alike(p));
    }
    e.data.subset = e.data.subset.as_deref().map(path_alike);
    e.data.test_root = e.data.test_root.as_deref().map(path_alike);
    for cfg in &mut e.evals {
        *cfg = eval_spelled_alike(cfg);
    }
    // (spelled as the files that named a preset and the defaults always were: the preset of
    // those numbers, if any, and no predictor head count where it is the encoder's)
    e.encoder.preset = e.encoder.preset_of_numbers().map(str::to_string);
    if e.predictor.num_heads == Some(e.encoder.num_heads) {
        e.predictor.num_heads = None;
    }
    // (`cuda:0` is `cuda` on every machine, and so is `cuda:N`: another GPU of the same
    // machine trains the same model, and a run moved to a free GPU resumes; `cpu` is `auto`
    // only on a machine without CUDA, and a hash that depended on the machine would not find
    // a run from another kind, nor let the ranks of a CPU run on mixed nodes agree)
    if e.device.strip_prefix("cuda:").is_some_and(|n| n.parse::<usize>().is_ok()) {
        e.device = "cuda".into();
    }
    e
}

/// [`pretrain_hash`] without the list files' contents: the hash of earlier versions, which
/// named a run by its lists' paths alone.
fn listless_pretrain_hash(exp: &Experiment, world_size: usize) -> String {
    cadence_free_hash(&without_unread_peak(without_other_recipes(exp)), world_size)
}

/// The list files a pretraining of `exp` reads (`data.subset`), by setting, with a digest of
/// each one's bytes; a list that cannot be read is left out (the run refuses it before
/// training). The manifest records them ([`ijepa_schema::Manifest::inputs`]).
pub fn pretrain_inputs(exp: &Experiment) -> BTreeMap<String, String> {
    list_inputs(exp, None, false)
}

/// The list files the evaluation `cfg` of `exp` reads (`data.subset`, the evaluation's
/// `split-file`), as [`pretrain_inputs`]; `eval.json` records them.
pub fn eval_inputs(exp: &Experiment, cfg: &EvalConfig) -> BTreeMap<String, String> {
    list_inputs(exp, Some(cfg), false)
}

/// [`pretrain_inputs`] read from the files now, not from what this process read before: what
/// a check that the lists did not change compares.
pub fn pretrain_inputs_now(exp: &Experiment) -> BTreeMap<String, String> {
    list_inputs(exp, None, true)
}

/// [`eval_inputs`] read from the files now (see [`pretrain_inputs_now`]).
pub fn eval_inputs_now(exp: &Experiment, cfg: &EvalConfig) -> BTreeMap<String, String> {
    list_inputs(exp, Some(cfg), true)
}

/// The digest of the list file at `path` as read now (`None`: unreadable), as the stage
/// hashes count it.
pub fn list_digest_now(path: &Path) -> Option<String> {
    file_digest(path, true)
}

fn list_inputs(exp: &Experiment, cfg: Option<&EvalConfig>, now: bool) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    if let Some(d) = exp.data.subset.as_deref().and_then(|p| file_digest(p, now)) {
        m.insert("data.subset".to_string(), d);
    }
    if let Some(cfg) = cfg {
        if let Some(d) = cfg.split_file.as_deref().and_then(|p| file_digest(p, now)) {
            m.insert(format!("eval.{}.split-file", cfg.name()), d);
        }
    }
    m
}

/// A digest of the list file at `path` as it is read ([`content_hash`] of its lines, each
/// trimmed, blank ones and a byte-order mark left out, as `Subset::from_list` reads them: a
/// list saved with other line endings is the same list); `None` when it cannot be read.
/// Cached by path, file, size and change times (a plan of many sweep points reads it once),
/// unless `now`: a check that it did not change reads the file itself (an edit of the same
/// size with its modification time put back, or within a file system's coarse clock, kept
/// the key).
fn file_digest(path: &Path, now: bool) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    type Key = (PathBuf, u64, u64, u64, i64, i64, i64, i64);
    static CACHE: std::sync::OnceLock<std::sync::Mutex<HashMap<Key, String>>> = std::sync::OnceLock::new();
    let m = std::fs::metadata(path).ok()?;
    let key = (path.to_path_buf(), m.dev(), m.ino(), m.len(), m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec());
    let cache = CACHE.get_or_init(Default::default);
    if let Some(d) = cache.lock().ok().filter(|_| !now).and_then(|c| c.get(&key).cloned()) {
        return Some(d);
    }
    let bytes = std::fs::read(path).ok()?;
    let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
    let mut lines = Vec::with_capacity(text.len());
    for line in text.split(|&b| b == b'\n').map(<[u8]>::trim_ascii).filter(|l| !l.is_empty()) {
        lines.extend_from_slice(line);
        lines.push(b'\n');
    }
    let digest = content_hash(&lines);
    if let Ok(mut c) = cache.lock() {
        c.insert(key, digest.clone());
    }
    Some(digest)
}

/// `hash` with the list files' digests `inputs` counted: `hash` itself when there are none
/// (the stages of files without lists keep their folders).
fn with_inputs(hash: String, inputs: &BTreeMap<String, String>) -> String {
    if inputs.is_empty() {
        return hash;
    }
    content_hash(json!({"hash": hash, "inputs": inputs}).to_string().as_bytes())
}

/// `exp` with the `peak` a `blr=` overrides (the peak is blr x global batch / 256) set to the
/// blr: the language's 1e-3 when a file writes `blr=`, the blr itself in the recipes' defaults,
/// so a blr written at its default trained again under another hash.
fn without_unread_peak(mut exp: Experiment) -> Experiment {
    if let Some(b) = exp.optimizer.lr.blr {
        exp.optimizer.lr.peak = b;
    }
    exp
}

/// `exp` with every node another recipe owns (I-JEPA's `predictor`, `ema`, `loss`, `target`,
/// MAE's `decoder`, DINO's `dino`, as the recipe registry declares them) at its default, and
/// the `mask` of a recipe that samples none (DINO): what the recipe does not read.
fn without_other_recipes(exp: &Experiment) -> Experiment {
    let unread = unread_nodes(&exp.recipe);
    let (Ok(mut v), Ok(d)) = (serde_json::to_value(exp), serde_json::to_value(Experiment::with_defaults(""))) else { return exp.clone() };
    for node in &unread {
        match (v.as_object_mut(), d.get(node.as_str())) {
            (Some(o), Some(default)) => {
                o.insert(node.clone(), default.clone());
            }
            (Some(o), None) => {
                o.remove(node.as_str());
            }
            _ => {}
        }
    }
    let mut out: Experiment = serde_json::from_value(v).unwrap_or_else(|_| exp.clone());
    // a registered recipe's setting nodes: only its own are read (a sweep over recipes keeps
    // every swept recipe's in each point)
    let settings = ijepa_dsl::recipes::schema(&exp.recipe).map(|s| s.settings).unwrap_or_default();
    out.recipe_settings.retain(|node, _| settings.iter().any(|n| n.name == *node));
    out
}

/// The setting nodes of other recipes that `recipe` does not read (I-JEPA's `predictor`,
/// `ema`, `loss` in an MAE or DINO run; the `mask` where the recipe masks nothing).
fn unread_nodes(recipe: &str) -> Vec<String> {
    let schema = ijepa_dsl::recipes::schema(recipe);
    let own = schema.as_ref().map(|s| s.own_nodes.clone()).unwrap_or_default();
    let mut unread: Vec<String> = ijepa_dsl::recipes::owned_nodes().into_iter().filter(|n| !own.contains(n)).collect();
    if schema.is_some_and(|s| s.mask_kinds.is_empty()) {
        unread.push("mask".into());
    }
    unread
}

/// `exp` as a pretraining's `config.json` records it ([`as_recorded`]).
pub fn recorded_config(exp: &Experiment) -> Value {
    let mut v = serde_json::to_value(exp).unwrap_or(Value::Null);
    as_recorded(&mut v);
    v
}

/// [`recorded_config`] as pretty JSON text, its keys in the order of the experiment's fields
/// (through a `Value`, whose maps sort them, `name` and `recipe` came last and a diff of an
/// earlier version's file changed every line); keys the record adds end their object.
///
/// # Errors
/// A serialisation failure.
pub fn recorded_config_text(exp: &Experiment) -> crate::error::Result<String> {
    let text = || -> serde_json::Result<String> {
        let order: KeyOrder = serde_json::from_str(&serde_json::to_string(exp)?)?;
        serde_json::to_string_pretty(&Ordered { v: &recorded_config(exp), order: &order })
    };
    text().map_err(|e| crate::error::Error::Train(format!("serialising the config: {e}")))
}

/// The keys of a JSON text's objects in the order it writes them (an array's: its elements'
/// keys, in the order they first appear).
#[derive(Default)]
struct KeyOrder(Vec<(String, KeyOrder)>);

impl KeyOrder {
    fn merge(&mut self, other: KeyOrder) {
        for (k, sub) in other.0 {
            match self.0.iter_mut().find(|(o, _)| *o == k) {
                Some((_, mine)) => mine.merge(sub),
                None => self.0.push((k, sub)),
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for KeyOrder {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = KeyOrder;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<KeyOrder, A::Error> {
                let mut out = Vec::new();
                while let Some((k, sub)) = map.next_entry::<String, KeyOrder>()? {
                    out.push((k, sub));
                }
                Ok(KeyOrder(out))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<KeyOrder, A::Error> {
                let mut out = KeyOrder::default();
                while let Some(e) = seq.next_element::<KeyOrder>()? {
                    out.merge(e);
                }
                Ok(out)
            }
            fn visit_bool<E>(self, _: bool) -> Result<KeyOrder, E> {
                Ok(KeyOrder::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<KeyOrder, E> {
                Ok(KeyOrder::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<KeyOrder, E> {
                Ok(KeyOrder::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<KeyOrder, E> {
                Ok(KeyOrder::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<KeyOrder, E> {
                Ok(KeyOrder::default())
            }
            fn visit_unit<E>(self) -> Result<KeyOrder, E> {
                Ok(KeyOrder::default())
            }
        }
        d.deserialize_any(Keys)
    }
}

/// `v` serialised with its objects' keys in `order` (the keys it has beyond it after them).
struct Ordered<'a> {
    v: &'a Value,
    order: &'a KeyOrder,
}

impl serde::Serialize for Ordered<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        let unordered = KeyOrder::default();
        match self.v {
            Value::Object(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, sub) in &self.order.0 {
                    if let Some(v) = m.get(k) {
                        map.serialize_entry(k, &Ordered { v, order: sub })?;
                    }
                }
                for (k, v) in m.iter().filter(|(k, _)| !self.order.0.iter().any(|(o, _)| o == *k)) {
                    map.serialize_entry(k, &Ordered { v, order: &unordered })?;
                }
                map.end()
            }
            Value::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(&Ordered { v, order: self.order })?;
                }
                seq.end()
            }
            other => other.serialize(s),
        }
    }
}

/// A resolved experiment's JSON (the serialised form, or a `config.json` of any version) as a
/// pretraining's `config.json` records it: the settings its recipe reads, another recipe's
/// left out (an MAE or DINO run recorded I-JEPA's predictor, EMA, loss and multi-block mask
/// at their defaults, as if in force; the random mask, its ratio alone), and the settings the
/// serialised form leaves out at a default written (the crops' `interpolation` at bilinear,
/// which an MAE or DINO run's reader took for its own default, bicubic; the random mask's
/// `ratio`). Left as it is where the recipe is not registered.
pub fn as_recorded(v: &mut Value) {
    let recipe = v.get("recipe").and_then(Value::as_str).unwrap_or("ijepa").to_string();
    let Some(schema) = ijepa_dsl::recipes::schema(&recipe) else { return };
    let Some(o) = v.as_object_mut() else { return };
    for node in unread_nodes(&recipe) {
        o.remove(&node);
    }
    if let Some(Value::Object(settings)) = o.get_mut("recipe_settings") {
        settings.retain(|node, _| schema.settings.iter().any(|n| n.name == *node));
        if settings.is_empty() {
            o.remove("recipe_settings");
        }
    }
    if let Some(Value::Object(mask)) = o.get_mut("mask") {
        if mask.get("kind").and_then(Value::as_str) == Some("random") {
            mask.retain(|k, _| k == "kind" || k == "ratio");
            mask.entry("ratio").or_insert(json!(ijepa_dsl::config::default_mask_ratio()));
        }
    }
    if let Some(Value::Object(data)) = o.get_mut("data") {
        data.entry("interpolation").or_insert(json!("bilinear"));
    }
}

/// The hash of the logging and checkpoint cadence left out: [`pretrain_hash`] of what the
/// recipe reads, and alone the previous version's hash (which counted other recipes'
/// settings), whose folders [`pretrain_stage`] still finds.
fn cadence_free_hash(exp: &Experiment, world_size: usize) -> String {
    let mut e = exp.clone();
    e.log_every = Experiment::with_defaults("").log_every;
    e.checkpoint = Default::default();
    // a recipe whose views are its own (DINO's multi-crop) reads none of the data block's
    // augmentations
    if ijepa_dsl::recipes::schema(&e.recipe).is_some_and(|s| s.own_augmentations) {
        e.data = e.data.without_augmentations();
    }
    legacy_pretrain_hash(&e, world_size)
}

/// The hash and folder of `exp`'s pretraining under `runs_dir`: those of [`pretrain_hash`],
/// or, when that folder does not exist and an earlier version's holds a manifest recording no
/// other list contents than today's (without the lists' contents, with the peak a blr
/// overrides, with other recipes' settings, with the cadence: [`legacy_pretrain_hash`]), that
/// one, so that a run started before is skipped or resumed, not repeated. `ijepa plan`,
/// `ijepa run` and every rank agree on it.
pub fn pretrain_stage(runs_dir: &Path, exp: &Experiment, world_size: usize) -> (String, PathBuf) {
    let hash = pretrain_hash(exp, world_size);
    let dir = run_dir::stage_path(runs_dir, &exp.name, "pretrain", &hash);
    if !dir.exists() {
        // the earlier versions' hashes, newest first (the monitor's floors counted; the list
        // files' contents did not count; the peak a blr overrides counted; other recipes'
        // settings counted too; the cadence counted too); a folder whose manifest recorded
        // other lists than today's is not this run
        let current = pretrain_inputs(exp);
        for old in earlier_hashes(exp, world_size) {
            let old_dir = run_dir::stage_path(runs_dir, &exp.name, "pretrain", &old);
            if old != hash
                && old_dir.join(ijepa_schema::MANIFEST).is_file()
                && ijepa_schema::read_manifest(&old_dir).is_none_or(|m| ijepa_schema::inputs_match(&m.inputs, &current))
            {
                return (old, old_dir);
            }
        }
        if let Some(found) = with_other_floors(runs_dir, exp, world_size) {
            return found;
        }
    }
    (hash, dir)
}

/// The hashes earlier versions gave `exp`'s pretraining, newest first ([`pretrain_stage`]).
fn earlier_hashes(exp: &Experiment, world_size: usize) -> [String; 6] {
    [
        as_written_pretrain_hash(&spelled_alike(exp), world_size),
        as_written_pretrain_hash(exp, world_size),
        listless_pretrain_hash(exp, world_size),
        cadence_free_hash(&without_other_recipes(exp), world_size),
        cadence_free_hash(exp, world_size),
        legacy_pretrain_hash(exp, world_size),
    ]
}

/// The monitor's floors `dir`'s `config.json` records, where they are not `exp`'s.
fn recorded_floors(dir: &Path, exp: &Experiment) -> Option<Experiment> {
    let config: Value = serde_json::from_str(&ijepa_schema::read_text(&dir.join(ijepa_schema::CONFIG_JSON)).ok()?).ok()?;
    let floor = |k: &str| config["monitor"][k].as_f64();
    let (rank, spread) = (floor("rank_floor")?, floor("spread_floor")?);
    let mut then = exp.clone();
    let m = then.monitor.as_mut()?;
    if (m.rank_floor, m.spread_floor) == (rank, spread) {
        return None;
    }
    (m.rank_floor, m.spread_floor) = (rank, spread);
    Some(then)
}

/// `exp` with the floors its pretraining folder `dir` (named `hash`) was named with, where an
/// earlier version named it with other floors than `exp`'s: what a resume there records in its
/// `config.json`, by which [`pretrain_stage`] finds the folder (rewritten with today's floors,
/// it was found no more once the resume stopped).
pub fn with_named_floors(dir: &Path, hash: &str, exp: &Experiment, world_size: usize) -> Option<Experiment> {
    (hash != pretrain_hash(exp, world_size)).then(|| recorded_floors(dir, exp)).flatten()
}

/// A pretraining of `exp` an earlier version named with the monitor's floors counted, under
/// other floors than `exp`'s (their change trains no more, but that folder's name holds its
/// own): each sibling folder's floors, read from its `config.json`, are put in `exp` and the
/// hashes they give ([`earlier_hashes`]) compared with the folder's manifest's.
fn with_other_floors(runs_dir: &Path, exp: &Experiment, world_size: usize) -> Option<(String, PathBuf)> {
    exp.monitor.as_ref()?;
    let mut folders: Vec<PathBuf> = std::fs::read_dir(runs_dir.join(&exp.name))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("pretrain-")))
        .collect();
    folders.sort();
    for dir in folders {
        let Some(manifest) = ijepa_schema::read_manifest(&dir) else { continue };
        let Some(then) = recorded_floors(&dir, exp) else { continue };
        if let Some(old) = earlier_hashes(&then, world_size).into_iter().find(|h| *h == manifest.hash) {
            if dir == run_dir::stage_path(runs_dir, &exp.name, "pretrain", &old) {
                return Some((old, dir));
            }
        }
    }
    None
}

/// A pretraining of an experiment interrupted with other settings ([`interrupted_elsewhere`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elsewhere {
    /// Its folder.
    pub dir: PathBuf,
    /// The step it reached.
    pub step: u64,
    /// How it stands apart.
    pub apart: Apart,
}

/// What sets an interrupted pretraining apart from the one planned ([`Elsewhere`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Apart {
    /// Its settings that differ (`epochs 12 -> 13`; the first few).
    Settings(Vec<String>),
    /// With the same settings, the processes it ran on (a run of `ijepa launch` on 2, then a
    /// plain `ijepa run`: the process count is no setting, the stage hash counts it).
    Processes(usize),
}

/// Pretrainings of `exp`'s experiment interrupted with other settings, or on other processes
/// than `world_size` (in its folder beside `dir`, a checkpoint to resume from). A changed
/// setting trains from the start in a fresh folder: said, so that one who only meant to extend
/// a run sees what is left.
pub fn interrupted_elsewhere(exp: &Experiment, dir: &Path, world_size: usize) -> Vec<Elsewhere> {
    let Some(parent) = dir.parent() else { return Vec::new() };
    let Ok(now) = serde_json::to_value(exp) else { return Vec::new() };
    let mut out = Vec::new();
    let mut others: Vec<PathBuf> = std::fs::read_dir(parent)
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("pretrain-")) && p != dir).collect())
        .unwrap_or_default();
    others.sort();
    for other in others {
        let Status::Partial { step } = pretrain_status(&other) else { continue };
        let Some(then) = ijepa_schema::read_text(&other.join(ijepa_schema::CONFIG_JSON)).ok().and_then(|t| serde_json::from_str::<Value>(&t).ok()) else { continue };
        let differ = weight_settings_apart(&then, &now);
        let apart = if differ.is_empty() {
            ijepa_schema::read_manifest(&other).map(|m| m.world_size).filter(|&n| n != world_size).map(Apart::Processes)
        } else {
            Some(Apart::Settings(differ))
        };
        if let Some(apart) = apart {
            out.push(Elsewhere { dir: other, step, apart });
        }
    }
    out
}

/// The settings of two resolved experiments (as `config.json` records them) that differ and
/// change the weights a pretraining ends with, as `path then -> now` (at most 6): not the
/// evaluations', the report's, the layout's, the logging's and checkpointing's, the name.
pub fn weight_settings_apart(then: &Value, now: &Value) -> Vec<String> {
    // (left out before comparing: six differences of the evaluations would hide the rest)
    let weights = |v: &Value| -> Value {
        let mut v = v.clone();
        // (a config.json of an earlier version recorded the settings its recipe does not read)
        as_recorded(&mut v);
        if let Some(o) = v.as_object_mut() {
            for k in ["evals", "report", "distributed", "log_every", "checkpoint", "name"] {
                o.remove(k);
            }
        }
        v
    };
    let mut differ = Vec::new();
    json_differences("", &weights(then), &weights(now), &mut differ);
    differ
}

/// The leaves of two JSON values that differ, as `path then -> now` (at most 6).
fn json_differences(path: &str, then: &Value, now: &Value, out: &mut Vec<String>) {
    if out.len() >= 6 || then == now {
        return;
    }
    match (then, now) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let sub = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                json_differences(&sub, a.get(k).unwrap_or(&Value::Null), b.get(k).unwrap_or(&Value::Null), out);
            }
        }
        _ => out.push(format!("{path} {then} -> {now}")),
    }
}

/// [`pretrain_stage`] of a point of the study `study` (its one point, or a sweep point), or,
/// when that folder holds no manifest and the point's settings are those of a pretraining that
/// finished under another name of the study (its final checkpoint on disk; under the study's
/// own name, also one whose manifest was lost), that one; failing that, when the point has no
/// folder at all, one interrupted under another name (a checkpoint to resume from), which
/// resumes where it is. The
/// names tried: the study's own (the run the file trained before it
/// became a sweep or gained its first `seeds`, which renamed its one point `<study>-seed-N`,
/// and so its hash and folder), then the study's other point names in the runs folder
/// (`<study>-...`: points named after an evaluation setting a sweep varies, renamed when that
/// sweep gained, lost or reordered values, or a point run by the sweep before the plain file):
/// `holders`, [`pretrain_holders`] less the study's current points' own names (another point's
/// folder holds that point's settings, named by its values).
pub fn point_pretrain_stage(runs_dir: &Path, exp: &Experiment, world_size: usize, study: &str, holders: &[String]) -> (String, PathBuf) {
    let own = pretrain_stage(runs_dir, exp, world_size);
    if own.1.join(ijepa_schema::MANIFEST).is_file() {
        return own;
    }
    let names = holders.iter().filter(|n| **n != exp.name).cloned();
    // an interrupted run of these settings under another of the study's names (a sweep renamed
    // since): resumed where it is when the point has no folder of its own (it trained from the
    // start under the new name, the checkpoints of the old one left behind)
    let mut interrupted = None;
    for name in names {
        let plain = name == study;
        // (a folder of that name holds this pretraining only if its hash under that name is there)
        let earlier = pretrain_stage(runs_dir, &Experiment { name, ..exp.clone() }, world_size);
        // ... and it is this study's: `<study>-x` may be another experiment's name (`t-x`
        // beside `t`), whose run a `--force` of this study would have set aside and trained
        // again (a manifest of an earlier version, which names no study, is taken)
        let manifest = ijepa_schema::read_manifest(&earlier.1);
        let of_another_study = manifest.as_ref().and_then(|m| m.study.as_deref()).is_some_and(|s| s != study);
        // the plain file's run whose manifest was lost (or damaged) beside a whole final
        // checkpoint of this stage is finished too: the stage resumes there and writes the same
        // file again (a run replays bit for bit), where the point trained the whole run again
        // in its own folder. (Under another name a folder without a manifest may be another
        // experiment's: not taken.)
        let finished = pretrain_status(&earlier.1) == Status::Done || (plain && manifest.is_none() && final_of_stage(&earlier.1, &earlier.0, exp));
        if finished && !of_another_study {
            return earlier;
        }
        if interrupted.is_none() && manifest.is_some() && !of_another_study && matches!(pretrain_status(&earlier.1), Status::Partial { .. }) {
            interrupted = Some(earlier);
        }
    }
    match interrupted {
        Some(earlier) if !own.1.exists() => earlier,
        _ => own,
    }
}

/// The names under `runs_dir` a point of the study `study` may have trained under before: the
/// study's own and `<study>-...`, those holding a pretraining's folder (`pretrain-*`), the
/// study's first, then sorted. Read once a plan: each point without a run of its own hashed
/// itself under every `<study>-*` folder, empty ones too (ten minutes for a 1,000-point sweep
/// edited after it ran).
pub fn pretrain_holders(runs_dir: &Path, study: &str) -> Vec<String> {
    let prefix = format!("{study}-");
    let holds = |name: &str| {
        std::fs::read_dir(runs_dir.join(name)).is_ok_and(|d| d.flatten().any(|e| e.file_name().to_str().is_some_and(|n| n.starts_with("pretrain-"))))
    };
    let mut others: Vec<String> = std::fs::read_dir(runs_dir)
        .map(|d| d.flatten().filter_map(|e| e.file_name().into_string().ok()).filter(|n| n.starts_with(&prefix)).collect())
        .unwrap_or_default();
    others.sort();
    std::iter::once(study.to_string()).chain(others).filter(|n| holds(n)).collect()
}

/// Whether the folder `dir` of the pretraining stage `hash` of `exp` holds a whole final
/// checkpoint of that stage: its weights (which record no stage) beside the `latest` checkpoint
/// of that stage's last epoch, from which a resume writes them again without training (without
/// it, the point would train from the start in another run's folder).
fn final_of_stage(dir: &Path, hash: &str, exp: &Experiment) -> bool {
    use crate::checkpoint::state::{is_whole_file, position_of, stage_id};
    let checkpoints = dir.join(ijepa_schema::CHECKPOINTS);
    is_whole_file(&checkpoints.join(ijepa_schema::FINAL))
        && position_of(&checkpoints.join(ijepa_schema::LATEST)).is_some_and(|p| !p.of_another_stage(stage_id(hash)) && p.epoch as usize >= exp.epochs)
}

/// The hash earlier versions gave a pretraining: [`pretrain_hash`] with `log-every` and
/// `checkpoint` counted (and, for DINO, the data block's augmentations it does not read). It
/// equals [`pretrain_hash`] for files that leave those at their defaults; for the others
/// [`pretrain_stage`] still finds their folders.
fn legacy_pretrain_hash(exp: &Experiment, world_size: usize) -> String {
    let mut e = exp.clone();
    e.evals.clear();
    e.report = false;
    e.distributed = Default::default();
    e.data.workers = 0;
    e.data.prefetch = 0;
    // the evaluations' test images do not change what is pretrained
    e.data.test_root = None;
    // (legacy, kept so that existing hashes stay; not a pattern for new recipes, whose own
    // nodes `without_other_recipes` resets) DINO's settings change only DINO runs (another
    // recipe's point of a sweep that varies the recipe keeps its hash; the older own nodes,
    // `predictor` / `decoder`, still count for every recipe)
    if e.recipe != "dino" {
        e.dino = Default::default();
    }
    // a recipe whose training changed where its settings do not show declares a revision
    // (DINO's 2: the student's stochastic depth, the linspace warm-up), part of the hash as
    // `<recipe>_revision`, so that no run of it finds an earlier version's folder
    match ijepa_dsl::recipes::schema(&e.recipe).map_or(0, |s| s.hash_revision) {
        0 => content_hash(json!({"experiment": e, "world_size": world_size}).to_string().as_bytes()),
        revision => {
            let mut v = serde_json::Map::new();
            v.insert("experiment".into(), json!(e));
            v.insert("world_size".into(), json!(world_size));
            v.insert(format!("{}_revision", e.recipe), json!(revision));
            content_hash(serde_json::Value::Object(v).to_string().as_bytes())
        }
    }
}

/// The content hash of an evaluation of `subject` whose weights come from `input` (the
/// pretraining hash, or a checkpoint's SHA-256); baselines ignore `input`, and of the data
/// block they count only what the evaluation reads ([`DataConfig::read_by_evaluation`]: a
/// sweep over the batch size or the augmentations evaluates the pixels once).
///
/// [`DataConfig::read_by_evaluation`]: ijepa_dsl::config::DataConfig::read_by_evaluation
///
/// The contents of the list files it reads count too ([`eval_inputs`]).
///
/// Spellings of one setting hash alike, as for [`pretrain_hash`].
///
/// A random init is keyed with what its recipe's initialisation does not read at its defaults
/// ([`ijepa_dsl::recipes::init_read_alike`]: MAE's `norm-pix-loss`).
pub fn eval_hash(exp: &Experiment, cfg: &EvalConfig, subject: Subject, input: &str) -> String {
    heldout_as_written_eval_hash(exp, &cfg.heldout_read_alike(subject == Subject::RawPixels), subject, input)
}

/// [`eval_hash`] as versions before [`EvalConfig::heldout_read_alike`] gave it (a sweep
/// point's unread `held-out` was keyed).
fn heldout_as_written_eval_hash(exp: &Experiment, cfg: &EvalConfig, subject: Subject, input: &str) -> String {
    let exp = spelled_alike(exp);
    let exp = if subject == Subject::RandomInit { ijepa_dsl::recipes::init_read_alike(&exp) } else { exp };
    as_written_eval_hash(&exp, &eval_spelled_alike(cfg), subject, input)
}

/// [`eval_hash`] of a frozen-feature baseline as versions before it left out the data block's
/// JPEG decoding and `on-error` gave it (settings of the pretraining's images alone: a sweep
/// over `decode` evaluated the pixels once a point).
fn decode_counted_eval_hash(exp: &Experiment, cfg: &EvalConfig, subject: Subject, input: &str) -> String {
    let exp = spelled_alike(exp);
    let exp = if subject == Subject::RandomInit { ijepa_dsl::recipes::init_read_alike(&exp) } else { exp };
    let cfg = eval_spelled_alike(&cfg.heldout_read_alike(subject == Subject::RawPixels));
    let data = DataConfig { exact_decode: exp.data.exact_decode, on_error: exp.data.on_error, ..exp.data.read_by_evaluation(false) };
    with_inputs(eval_hash_of(&exp, &cfg, subject, input, Some(data)), &eval_inputs(&exp, &cfg))
}

/// [`eval_hash`] as versions before [`ijepa_dsl::recipes::init_read_alike`] gave it (a random
/// init of MAE with `norm-pix-loss=#false` was keyed by it).
fn init_as_written_eval_hash(exp: &Experiment, cfg: &EvalConfig, subject: Subject, input: &str) -> String {
    as_written_eval_hash(&spelled_alike(exp), &eval_spelled_alike(cfg), subject, input)
}

/// [`eval_hash`] of the settings as the file spells them: the hash of earlier versions.
fn as_written_eval_hash(exp: &Experiment, cfg: &EvalConfig, subject: Subject, input: &str) -> String {
    with_inputs(listless_eval_hash(exp, cfg, subject, input), &eval_inputs(exp, cfg))
}

/// [`eval_hash`] without the list files' contents (earlier versions' hash).
fn listless_eval_hash(exp: &Experiment, cfg: &EvalConfig, subject: Subject, input: &str) -> String {
    let data = match subject {
        // a recipe that makes its own views (DINO's multi-crop) trains one model whatever the
        // data block's augmentations, and a frozen-feature evaluation of it does not read them
        // either: they are left at their defaults (a sweep over them for its fine-tuning
        // evaluated that one model's features once a point); elsewhere the whole block counts,
        // as it always did
        Subject::Pretrained if cfg.protocol != EvalProtocol::Finetune && ijepa_dsl::recipes::schema(&exp.recipe).is_some_and(|s| s.own_augmentations) => {
            Some(DataConfig { workers: 0, prefetch: 0, ..exp.data.without_augmentations() })
        }
        Subject::Pretrained => None,
        Subject::RandomInit | Subject::RawPixels => Some(exp.data.read_by_evaluation(cfg.protocol == EvalProtocol::Finetune)),
    };
    eval_hash_of(exp, cfg, subject, input, data)
}

/// The hash earlier versions gave an evaluation: [`eval_hash`] with the whole data block
/// counted for the baselines too (less its loader threads). [`eval_stage`] still finds their
/// folders.
fn legacy_eval_hash(exp: &Experiment, cfg: &EvalConfig, subject: Subject, input: &str) -> String {
    eval_hash_of(exp, cfg, subject, input, None)
}

fn eval_hash_of(exp: &Experiment, cfg: &EvalConfig, subject: Subject, input: &str, data: Option<DataConfig>) -> String {
    let data = data.unwrap_or_else(|| DataConfig { workers: 0, prefetch: 0, ..exp.data.clone() });
    let model = match subject {
        Subject::Pretrained => json!({"weights": input}),
        // a random encoder's features depend on the precision they are computed in
        // (and on the recipe's initialisation: keyed by the recipe except I-JEPA's, whose
        // hashes predate the key)
        Subject::RandomInit if exp.recipe == "ijepa" => json!({"encoder": exp.encoder, "seed": exp.seed, "precision": exp.precision}),
        // (and on the settings it declares its initialisation depends on: MAE's decoder, DINO's
        // head; a recipe declaring none keeps its earlier hash)
        Subject::RandomInit => {
            let mut model = json!({"encoder": exp.encoder, "seed": exp.seed, "precision": exp.precision, "recipe": exp.recipe});
            if let Some(init) = ijepa_dsl::recipes::init_values(exp) {
                model["init"] = init;
            }
            model
        }
        Subject::RawPixels => json!("pixels"),
    };
    let mut cfg = cfg.clone();
    cfg.baselines.clear();
    // the pixels have one feature set whatever the block lists: listing `last4` beside `last`
    // does not repeat their evaluation (the hash of the default `last` is the one they had)
    if subject == Subject::RawPixels {
        cfg.features = vec![ijepa_dsl::config::FeatureChoice::Last];
    }
    let mut key = json!({"eval": cfg, "subject": subject.key(&exp.recipe), "model": model, "data": data, "seed": exp.seed});
    // fine-tuning that trains the position table (MAE's model; earlier versions held it fixed):
    // no earlier version's folder is found, under any of its hashes (an encoder that learns
    // its table, DINO's, was fine-tuned so before: its folders are still found)
    if cfg.protocol == EvalProtocol::Finetune && !ijepa_dsl::recipes::schema(&exp.recipe).is_some_and(|s| s.learned_pos_embed) {
        key["finetune_revision"] = json!(FINETUNE_REVISION);
    }
    content_hash(key.to_string().as_bytes())
}

/// Revision of the fine-tuning protocol, keyed in its evaluations' hashes: 1 since it trains
/// the position table as MAE's fine-tuning does (before: no key, the table held fixed).
const FINETUNE_REVISION: u32 = 1;

/// The hash and folder of the evaluation `cfg` of `subject` under `runs_dir/<experiment>`:
/// those of [`eval_hash`], or, when that folder does not exist, an earlier version's that
/// holds a result recording no other list contents than today's: the hash without the lists'
/// contents ([`listless_eval_hash`]), and the one that counted the whole data block
/// ([`legacy_eval_hash`]: a baseline's, a DINO encoder's), so that evaluations done before are
/// not repeated.
pub fn eval_stage(runs_dir: &Path, experiment: &str, exp: &Experiment, cfg: &EvalConfig, subject: Subject, input: &str) -> (String, PathBuf) {
    let folder = format!("eval-{}-{}", cfg.name(), subject.key(&exp.recipe));
    let hash = eval_hash(exp, cfg, subject, input);
    let dir = run_dir::stage_path(runs_dir, experiment, &folder, &hash);
    if !dir.exists() {
        // earlier versions' hashes: without the lists' contents, and for a baseline with the
        // whole data block counted; a result that recorded other lists than today's is not
        // this evaluation
        let current = eval_inputs(exp, cfg);
        let legacy = legacy_eval_hash(exp, cfg, subject, input);
        let mut old = vec![
            heldout_as_written_eval_hash(exp, cfg, subject, input),
            as_written_eval_hash(exp, cfg, subject, input),
            listless_eval_hash(exp, cfg, subject, input),
            legacy.clone(),
        ];
        // (a random init keyed by a setting its initialisation does not read: the version before)
        if subject == Subject::RandomInit {
            old.insert(0, init_as_written_eval_hash(exp, cfg, subject, input));
        }
        if subject != Subject::Pretrained && cfg.protocol != EvalProtocol::Finetune {
            old.insert(0, decode_counted_eval_hash(exp, cfg, subject, input));
        }
        // (a DINO evaluation of earlier versions, which counted the augmentations, and its lists)
        if subject == Subject::Pretrained {
            old.push(with_inputs(legacy, &current));
        }
        for old in old {
            let old_dir = run_dir::stage_path(runs_dir, experiment, &folder, &old);
            if old != hash && ijepa_schema::read_eval(&old_dir).is_some_and(|r| ijepa_schema::inputs_match(&r.inputs, &current)) {
                return (old, old_dir);
            }
        }
    }
    (hash, dir)
}

/// The settings of a sweep point a baseline of the `protocol` evaluation depends on (data,
/// encoder (not the pixels'), seed, that evaluation's own settings: not another protocol's; the recipe and the
/// precision for a random init, which is the recipe's, computed in that precision).
pub(crate) fn baseline_varied(varied: &BTreeMap<String, String>, cfg: &EvalConfig, subject: Subject, recipe: &str) -> BTreeMap<String, String> {
    let own = format!("eval.{}", cfg.name());
    // (a random init's own settings, as setting paths: `dino.out_dim` is `dino.out-dim`)
    // (less what the initialisation does not read: MAE's `decoder.norm-pix-loss`)
    let schema = ijepa_dsl::recipes::schema(recipe);
    let setting = |fields: Vec<String>| fields.iter().map(|f| f.replace('_', "-")).collect::<Vec<String>>();
    let init = setting(schema.as_ref().map(|s| s.init_settings.clone()).unwrap_or_default());
    let unread = setting(schema.map(|s| s.init_unread).unwrap_or_default());
    let of_init = |k: &str| subject == Subject::RandomInit && init.iter().any(|f| k == f || k.starts_with(&format!("{f}."))) && !unread.iter().any(|f| k == f);
    let of_own = |k: &str| k.strip_prefix(own.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with('.'));
    let augmented = cfg.protocol == EvalProtocol::Finetune;
    let data_read = |k: &str| k.strip_prefix("data.").is_some_and(|name| DataConfig::read_by_evaluation_named(name, augmented));
    varied
        .iter()
        // (a random encoder's features are computed in the experiment's precision: in a sweep
        // over it the random-init stages were two of one id, which `--only` could not tell apart)
        // (the pixels read no encoder: in a sweep over one they were filed under its first value)
        .filter(|(k, _)| data_read(k) || (k.starts_with("encoder") && subject != Subject::RawPixels) || of_own(k) || k.as_str() == "seed" || (matches!(k.as_str(), "recipe" | "precision") && subject == Subject::RandomInit) || of_init(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn suffix(point: &Point) -> String {
    if point.name.is_empty() {
        String::new()
    } else {
        format!("/{}", point.name)
    }
}

/// `n` things: `1 report`, `0 reports`, `4 pretrainings`.
pub fn counted(n: usize, thing: &str) -> String {
    format!("{n} {thing}{}", if n == 1 { "" } else { "s" })
}

impl Plan {
    /// Compiles a study into its stage graph, with folders under `runs_dir` (report under
    /// `reports_dir`) for runs of `world_size` processes.
    pub fn build(study: &Study, runs_dir: &Path, reports_dir: &Path, world_size: usize) -> Plan {
        let mut graph: DiGraph<Stage, ()> = DiGraph::new();
        let mut by_dir: HashMap<PathBuf, NodeIndex> = HashMap::new();
        // points that differ only in what runs after pretraining (evaluation settings, loader
        // threads) share one pretraining: keyed by its hash under the study's name
        let mut pretrains: HashMap<String, (NodeIndex, String)> = HashMap::new();
        // baseline stages by (folder kind, this version's hash)
        let mut baselines: HashMap<(String, String), NodeIndex> = HashMap::new();
        let mut evals = Vec::new();
        // (the evaluations' ids so far: a baseline's id is checked against them, where it
        // scanned the graph, for every point)
        let mut eval_ids: std::collections::HashSet<String> = std::collections::HashSet::new();
        // (the folders a point may have trained under before, read once; less the current
        // points' own)
        let current: std::collections::BTreeSet<&str> = study.points.iter().map(|p| p.experiment.name.as_str()).collect();
        let (holders, current_holders): (Vec<String>, Vec<String>) = pretrain_holders(runs_dir, &study.name).into_iter().partition(|n| !current.contains(n.as_str()));
        let current_holders: std::collections::HashSet<String> = current_holders.into_iter().collect();
        // each point's pretraining, by its hash under the study's name
        let keys: Vec<String> = study
            .points
            .iter()
            .map(|point| {
                let mut anonymous = point.experiment.clone();
                anonymous.name = study.name.clone();
                pretrain_hash(&anonymous, world_size)
            })
            .collect();
        // ... and the points of each
        let mut sharers: HashMap<&str, Vec<&str>> = HashMap::new();
        for (point, key) in study.points.iter().zip(&keys) {
            sharers.entry(key.as_str()).or_default().push(point.experiment.name.as_str());
        }
        for (pi, point) in study.points.iter().enumerate() {
            let exp = &point.experiment;
            let key = keys[pi].clone();
            let (pretrain, phash) = match pretrains.get(&key) {
                Some((n, h)) => (*n, h.clone()),
                None => {
                    // a pretraining shared by points is named after the first: one that trained
                    // under another of them (a sweep over an evaluation setting whose values were
                    // reordered, or gained one in front) is found there too, where it trained
                    // again
                    let sharing: Vec<String> = sharers[key.as_str()].iter().filter(|n| **n != exp.name && current_holders.contains(**n)).map(|n| n.to_string()).collect();
                    let holders: std::borrow::Cow<'_, [String]> = if sharing.is_empty() { holders.as_slice().into() } else { [sharing, holders.clone()].concat().into() };
                    let (phash, dir) = point_pretrain_stage(runs_dir, exp, world_size, &study.name, &holders);
                    let n = graph.add_node(Stage {
                        id: format!("pretrain{}", suffix(point)),
                        task: Task::Pretrain { point: pi },
                        dir,
                        hash: phash.clone(),
                        varied: point.varied.clone(),
                        inputs: pretrain_inputs(exp),
                    });
                    pretrains.insert(key, (n, phash.clone()));
                    (n, phash)
                }
            };
            for (ei, cfg) in exp.evals.iter().enumerate() {
                let mut subjects = vec![Subject::Pretrained];
                subjects.extend(cfg.baselines.iter().map(|b| match b {
                    Baseline::RandomInit => Subject::RandomInit,
                    Baseline::RawPixels => Subject::RawPixels,
                }));
                for subject in subjects {
                    let folder = format!("eval-{}-{}", cfg.name(), subject.key(&exp.recipe));
                    // (a baseline's key among the plan's baselines: see below)
                    let (id, hash, dir, varied, baseline) = if subject == Subject::Pretrained {
                        let (hash, dir) = eval_stage(runs_dir, &exp.name, exp, cfg, subject, &phash);
                        (format!("{folder}{}", suffix(point)), hash, dir, point.varied.clone(), None)
                    } else {
                        // baselines do not depend on pretraining: one stage for every point
                        // that shares its settings (keyed by this version's hash: points an
                        // earlier version evaluated apart share the first folder found)
                        let varied = baseline_varied(&point.varied, cfg, subject, &point.experiment.recipe);
                        let key = (folder.clone(), eval_hash(exp, cfg, subject, &phash));
                        let (hash, dir) = match baselines.get(&key) {
                            Some(&n) => (graph[n].hash.clone(), graph[n].dir.clone()),
                            None => eval_stage(runs_dir, &study.name, exp, cfg, subject, &phash),
                        };
                        // (named by the settings it depends on: a baseline shared by the points
                        // of every scale was named after the first, `.../targets-scale-0.1-0.15_seed-0`;
                        // by the point's name where another stage has that id: a stage of this
                        // folder is found by it below, and its id is not used)
                        let id = if varied.is_empty() || point.name.is_empty() {
                            folder.clone()
                        } else {
                            let own = format!("{folder}/{}", point.name_of(|path| varied.contains_key(path)));
                            match eval_ids.contains(&own) {
                                true => format!("{folder}/{}", point.name),
                                false => own,
                            }
                        };
                        (id, hash, dir, varied, Some(key))
                    };
                    let node = match by_dir.get(&dir) {
                        Some(&n) => n,
                        None => {
                            let task = Task::Eval { point: pi, eval: ei, subject };
                            eval_ids.insert(id.clone());
                            let n = graph.add_node(Stage { id, task, hash, dir: dir.clone(), varied, inputs: eval_inputs(exp, cfg) });
                            by_dir.insert(dir, n);
                            evals.push(n);
                            n
                        }
                    };
                    match baseline {
                        Some(key) => {
                            baselines.entry(key).or_insert(node);
                        }
                        None => {
                            graph.update_edge(pretrain, node, ());
                        }
                    }
                }
            }
        }
        if study.points.iter().any(|p| p.experiment.report) {
            let mut hashes: Vec<&str> = evals.iter().map(|&n| graph[n].hash.as_str()).collect();
            hashes.sort_unstable();
            // the runs folder too: a report of another folder's stages is not this one's (the
            // folder itself, however it is spelled: `runs`, `./runs/`, a link to it, its full
            // path each wrote the report again), named within the working folder where it lies
            // there (`runs`: the hash earlier versions gave it, wherever the project is); a
            // folder elsewhere, or reached through a link, by its full path
            let runs_at = ijepa_schema::as_created(runs_dir);
            let cwd = std::env::current_dir().map(|d| ijepa_schema::as_created(&d));
            let named = cwd.ok().and_then(|d| runs_at.strip_prefix(d).ok().filter(|r| !r.as_os_str().is_empty()).map(Path::to_path_buf)).unwrap_or(runs_at);
            let hash = content_hash(format!("{},{}", hashes.join(","), named.display()).as_bytes());
            let report = graph.add_node(Stage {
                id: "report".into(),
                task: Task::Report,
                hash,
                dir: reports_dir.to_path_buf(),
                varied: BTreeMap::new(),
                inputs: BTreeMap::new(),
            });
            for n in evals {
                graph.add_edge(n, report, ());
            }
        }
        Plan {
            name: study.name.clone(),
            points: study.points.clone(),
            graph,
            world_size,
            reports_dir: reports_dir.to_path_buf(),
            runs_dir: runs_dir.to_path_buf(),
            written: study.written.clone(),
        }
    }

    /// Stages in the order they run: topological, pretraining first, then evaluations, then
    /// the report (edges only go that way), in plan order within a kind.
    pub fn order(&self) -> Vec<NodeIndex> {
        let mut nodes: Vec<NodeIndex> = self.graph.node_indices().collect();
        nodes.sort_by_key(|&n| (self.graph[n].kind(), n.index()));
        nodes
    }

    /// The stages `n` reads from.
    pub fn inputs(&self, n: NodeIndex) -> Vec<NodeIndex> {
        self.graph.edges_directed(n, Direction::Incoming).map(|e| e.source()).collect()
    }

    /// The experiment a stage belongs to.
    pub fn experiment(&self, n: NodeIndex) -> Option<&Experiment> {
        match self.graph[n].task {
            Task::Pretrain { point } | Task::Eval { point, .. } => Some(&self.points[point].experiment),
            Task::Report => None,
        }
    }

    /// Whether a stage has run, from what is on disk.
    pub fn status(&self, n: NodeIndex) -> Status {
        let stage = &self.graph[n];
        match stage.task {
            Task::Pretrain { .. } => pretrain_status(&stage.dir),
            Task::Eval { .. } if ijepa_schema::read_eval(&stage.dir).is_some_and(|r| !self.eval_outdated(n, &r)) => Status::Done,
            Task::Report
                // (a marker an earlier version wrote hashed the folders in plan order)
                // (or another study's: a report is the whole runs folder's, and two studies sharing
                // a reports folder, as they do by default, marked each other's report "to run"
                // and wrote it again in turn; not a partial one, written while points of that
                // study had diverged)
                if report_marker(&stage.dir).is_some_and(|m| {
                    (m.hash == stage.hash || (m.study.as_deref().is_some_and(|s| s != self.name && self.report_of_other_is_ours(s)) && !m.hash.starts_with("partial-")))
                        && (m.inputs == self.report_inputs() || m.inputs == self.report_inputs_in(true, false) || m.inputs == self.report_inputs_in(false, false))
                }) =>
            {
                Status::Done
            }
            _ => Status::Pending,
        }
    }

    /// The list files of stage `n` whose contents are not what they were when the plan was
    /// made (its folder is named by those), each as `setting (path)`; empty when none changed.
    pub fn changed_inputs(&self, n: NodeIndex) -> Vec<String> {
        let stage = &self.graph[n];
        let (now, exp, cfg) = match stage.task {
            Task::Pretrain { point } => (pretrain_inputs_now(&self.points[point].experiment), &self.points[point].experiment, None),
            Task::Eval { point, eval, .. } => {
                let exp = &self.points[point].experiment;
                (eval_inputs_now(exp, &exp.evals[eval]), exp, Some(&exp.evals[eval]))
            }
            Task::Report => return Vec::new(),
        };
        let keys: std::collections::BTreeSet<&String> = stage.inputs.keys().chain(now.keys()).collect();
        keys.into_iter()
            .filter(|k| stage.inputs.get(*k) != now.get(*k))
            .map(|k| {
                let path = if k.as_str() == "data.subset" { exp.data.subset.as_deref() } else { cfg.and_then(|c| c.split_file.as_deref()) };
                format!("`{k}` ({})", path.map(|p| p.display().to_string()).unwrap_or_default())
            })
            .collect()
    }

    /// Whether a finished evaluation read another checkpoint than its pretraining's final one
    /// now (the manifest's record of it): the pretraining was trained again since, e.g. by
    /// `--force` from another file that shares it.
    fn eval_outdated(&self, n: NodeIndex, record: &ijepa_schema::EvalRecord) -> bool {
        self.inputs(n).into_iter().filter(|&p| self.graph[p].kind() == StageKind::Pretrain).any(|p| {
            let dir = &self.graph[p].dir;
            let manifest = ijepa_schema::read_manifest(dir);
            // no final checkpoint recorded: the pretraining is not done, and runs first; but a
            // manifest lost (or damaged) beside a whole final checkpoint: the run resumes and
            // writes that file again, the same bytes (a run replays bit for bit), so it is what
            // the evaluation will be checked against (the plan listed the evaluation to run,
            // and the run skipped it as done)
            let fin = dir.join(ijepa_schema::CHECKPOINTS).join(ijepa_schema::FINAL);
            // (the record of another stage, a copy or a renamed folder: what was evaluated is
            // that stage's weights; the pretraining runs first, refused until it is moved)
            if manifest.as_ref().is_some_and(|m| m.other_stage(dir).is_some()) {
                return true;
            }
            // (a finished run whose manifest, of a version before 2026-11-30, records no final
            // checkpoint: the file's own, as the evaluation checks it; "" read as outdated, the
            // plan listed the evaluation to run at every plan, the run skipped it as done)
            let last = match &manifest {
                Some(m) if m.is_done() && m.checkpoint(ijepa_schema::FINAL).is_none() && crate::checkpoint::state::is_whole_file(&fin) => file_sha256(&fin),
                Some(m) => m.checkpoint(ijepa_schema::FINAL).map(|c| c.sha256.clone()),
                None if crate::checkpoint::state::is_whole_file(&fin) => file_sha256(&fin),
                None => None,
            };
            ijepa_schema::eval_outdated(record, Some(last.as_deref().unwrap_or("")))
        })
    }

    /// What a report reads, hashed: the plan's stages' folders and every other stage folder of
    /// the runs folder (the report covers each experiment there, as `ijepa report` does), each
    /// by its record (a pretraining's manifest, an evaluation's `eval.json`). A report written
    /// before one of them changed (an evaluation run again, a run resumed, another experiment's
    /// run added, edited or deleted) is stale although its own hash is not.
    pub fn report_inputs(&self) -> String {
        self.report_inputs_in(true, true)
    }

    /// [`Plan::report_inputs`] with the folders in folder order (`sorted`), or in the order
    /// earlier versions hashed them (the plan's, then the others'), and named `within` the runs
    /// folder, or by their paths as given (as earlier versions named them): their markers still
    /// count.
    fn report_inputs_in(&self, sorted: bool, within: bool) -> String {
        let mut dirs: Vec<PathBuf> = self.order().into_iter().map(|n| &self.graph[n]).filter(|s| s.kind() != StageKind::Report).map(|s| s.dir.clone()).collect();
        // the folders `ijepa_reports::load_registry` reads: `RUNS/<experiment>/<stage>/`,
        // hidden ones (set aside by `--force`) not
        let subdirs = |d: &Path| -> Vec<PathBuf> {
            let mut v: Vec<PathBuf> = std::fs::read_dir(d)
                .map(|r| {
                    r.flatten()
                        .map(|e| e.path())
                        .filter(|p| p.is_dir() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
                        .collect()
                })
                .unwrap_or_default();
            v.sort();
            v
        };
        // (a folder named as a stage, or holding a record, which the registry lists as left
        // out when its name is not a stage's)
        let mut seen: std::collections::HashSet<PathBuf> = dirs.iter().cloned().collect();
        for exp in subdirs(&self.runs_dir) {
            for d in stage_folders_in(&exp) {
                if seen.insert(d.clone()) {
                    dirs.push(d);
                }
            }
        }
        // in folder order, as the registry reads them: a sweep whose values were reordered
        // (its points, and so its stages, in another order) reports the same stages
        if sorted {
            dirs.sort();
        }
        // (each folder named within the runs folder: the same inputs however it is spelled)
        let within = |p: &Path| if within { p.strip_prefix(&self.runs_dir).unwrap_or(p) } else { p }.to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        for dir in dirs {
            bytes.extend_from_slice(within(&dir).as_bytes());
            bytes.push(0);
            let eval = ijepa_schema::read_file(&dir.join(ijepa_schema::EVAL));
            bytes.extend(eval.or_else(|_| ijepa_schema::read_file(&dir.join(ijepa_schema::MANIFEST))).unwrap_or_default());
            bytes.push(0);
        }
        // the records of what each file's last run planned, which say what the report shows
        // (another file's edited record left this report "done" and stale)
        for exp in subdirs(&self.runs_dir) {
            for r in ijepa_schema::PlannedStages::records_in(&exp) {
                bytes.extend_from_slice(within(&r).as_bytes());
                bytes.push(0);
                bytes.extend(ijepa_schema::read_file(&r).unwrap_or_default());
                bytes.push(0);
            }
        }
        crate::run_dir::content_hash(&bytes)
    }

    /// Whether the report the run of the study `other` wrote of this runs folder is this
    /// plan's too (with equal inputs, [`Plan::report_inputs`]): each study is one file's, whose
    /// last plan lists every stage folder its experiments' folders hold. A report stage leaves
    /// out of its own study what its plan does not list (an earlier version's stages, another
    /// file's, results of `ijepa eval`), which another study's report of the folder shows.
    fn report_of_other_is_ours(&self, other: &str) -> bool {
        let of_study = |study: &str| -> Option<ijepa_schema::PlannedStages> {
            let [one] = ijepa_schema::PlannedStages::records_in(&self.runs_dir.join(study)).try_into().ok()?;
            serde_json::from_slice(&ijepa_schema::read_file(&one).ok()?).ok()
        };
        // (every stage folder of its experiments is one it lists)
        let lists_all = |experiments: &[String], listed: &BTreeSet<String>| {
            experiments.iter().all(|e| stage_folders_in(&self.runs_dir.join(e)).iter().all(|d| listed.contains(&ijepa_schema::PlannedStages::stage_of(d))))
        };
        // (our study's one record is this plan's: another file of the study, which ran last,
        // leaves its own)
        let ours: BTreeSet<String> = self.graph.node_weights().filter(|s| s.kind() != StageKind::Report).map(|s| ijepa_schema::PlannedStages::stage_of(&s.dir)).collect();
        let (Some(mine), Some(theirs)) = (of_study(&self.name), of_study(other)) else { return false };
        let (my_stages, their_stages): (BTreeSet<String>, BTreeSet<String>) = (mine.stages.iter().cloned().collect(), theirs.stages.iter().cloned().collect());
        my_stages == ours && lists_all(&mine.experiments, &my_stages) && lists_all(&theirs.experiments, &their_stages)
    }

    /// The evaluation done under another id with the same hash as evaluation `n` (points that
    /// differ only in another protocol's settings, `vary "eval.knn.k"` for a linear probe): `run`
    /// records its result under `n`'s settings instead of computing it again (unless `--force`).
    /// `None` for a stage that is not an evaluation.
    pub fn done_twin(&self, n: NodeIndex) -> Option<NodeIndex> {
        let stage = &self.graph[n];
        if stage.kind() != StageKind::Eval {
            return None;
        }
        self.graph
            .node_indices()
            .find(|&m| m != n && self.graph[m].hash == stage.hash && self.graph[m].kind() == StageKind::Eval && self.status(m) == Status::Done)
    }

    /// Stages whose id is `pattern`, starts with `pattern/`, or whose kind is `pattern`
    /// (`pretrain`, `eval`, `report`); `*` in the pattern matches any text.
    pub fn select(&self, pattern: &str) -> Vec<NodeIndex> {
        self.order()
            .into_iter()
            .filter(|&n| {
                let s = &self.graph[n];
                let kind = match s.kind() {
                    StageKind::Pretrain => "pretrain",
                    StageKind::Eval => "eval",
                    StageKind::Report => "report",
                };
                kind == pattern
                    || glob(pattern, &s.id)
                    || s.id.strip_prefix(pattern).is_some_and(|rest| rest.starts_with('/'))
            })
            .collect()
    }

    /// The plan as an indented tree: each pretraining with the evaluations of its checkpoint,
    /// then the baseline evaluations, then the report; with hashes, status and folders.
    pub fn tree(&self) -> String {
        let mut out = String::new();
        let count = |k: StageKind| self.graph.node_weights().filter(|s| s.kind() == k).count();
        // the first evaluation of each hash: a later one (another point with the same settings,
        // a sweep over another protocol's settings) is computed once, recorded under each point
        let mut first_eval: std::collections::HashMap<&str, NodeIndex> = std::collections::HashMap::new();
        for m in self.graph.node_indices().filter(|&m| self.graph[m].kind() == StageKind::Eval) {
            first_eval.entry(self.graph[m].hash.as_str()).or_insert(m);
        }
        let evals = count(StageKind::Eval);
        let _ = writeln!(
            out,
            "{} — {}, {}, {}{}, {}{}",
            self.name,
            counted(self.points.len(), "point"),
            counted(count(StageKind::Pretrain), "pretraining"),
            counted(evals, "evaluation"),
            // (the twins below are computed once: "14 evaluations" ran 12)
            if first_eval.len() < evals { format!(" ({} computed)", first_eval.len()) } else { String::new() },
            counted(count(StageKind::Report), "report"),
            if self.world_size > 1 { format!("; pretraining on {} processes", self.world_size) } else { String::new() }
        );
        let line = |out: &mut String, prefix: &str, n: NodeIndex| {
            let s = &self.graph[n];
            let status = self.status(n);
            // a stage another process is running right now says so (its status is that of the
            // folder as that process left it so far)
            let busy = crate::run_dir::StageLock::holder(&s.dir).map(|h| format!("  (running now: {h})")).unwrap_or_default();
            // (one whose twin is done, before or after it in the plan: `run --only` of the later
            // one left the first "to run" without a word, and the run copies its result)
            let twin = match (status != Status::Done).then(|| self.done_twin(n)).flatten() {
                Some(m) => format!("  (the same stage as {}, done: its result is copied)", self.graph[m].id),
                None => first_eval
                    .get(s.hash.as_str())
                    .filter(|&&m| m != n && s.kind() == StageKind::Eval && status != Status::Done)
                    .map(|&m| format!("  (the same stage as {}: computed once)", self.graph[m].id))
                    .unwrap_or_default(),
            };
            let (_, status) = self.status_shown(n, status);
            let _ = writeln!(out, "{prefix}{}  [{}] {}  {}{busy}{twin}", s.id, &s.hash[..12], status, s.dir.display());
        };
        let tops: Vec<NodeIndex> =
            self.order().into_iter().filter(|&n| self.graph[n].kind() != StageKind::Report && self.inputs(n).is_empty()).collect();
        let report: Vec<NodeIndex> = self.order().into_iter().filter(|&n| self.graph[n].kind() == StageKind::Report).collect();
        for (i, &n) in tops.iter().enumerate() {
            let last = i + 1 == tops.len() && report.is_empty();
            line(&mut out, if last { "└─ " } else { "├─ " }, n);
            let children: Vec<NodeIndex> = {
                let mut c: Vec<NodeIndex> = self
                    .graph
                    .edges_directed(n, Direction::Outgoing)
                    .map(|e| e.target())
                    .filter(|&c| self.graph[c].kind() == StageKind::Eval)
                    .collect();
                c.sort_by_key(|c| c.index());
                c
            };
            for (j, &c) in children.iter().enumerate() {
                let branch = if j + 1 == children.len() { "└─ " } else { "├─ " };
                line(&mut out, &format!("{}{branch}", if last { "   " } else { "│  " }), c);
            }
        }
        for &n in &report {
            line(&mut out, "└─ ", n);
            let _ = writeln!(out, "      after all {} evaluations", self.inputs(n).len());
        }
        out
    }

    /// How `plan` shows the status of stage `n` (read: `status`), and whether it is known:
    /// "status unknown" with why where this process cannot read its folder (it looks empty:
    /// its stage read "to run").
    fn status_shown(&self, n: NodeIndex, status: Status) -> (bool, String) {
        match crate::run_dir::access_problem(&self.graph[n].dir, false) {
            Some(p) => (false, format!("status unknown (its folder cannot be {}: {})", if p.denied == crate::run_dir::Denied::Reach { "reached" } else { "read" }, p.error)),
            None => (true, status.to_string()),
        }
    }

    /// The plan in Graphviz DOT (`ijepa plan --dot FILE | dot -Tsvg > plan.svg`).
    pub fn dot(&self) -> String {
        let mut out = String::from("digraph plan {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n");
        for n in self.order() {
            let s = &self.graph[n];
            // (read once: a status reads the stage's files)
            let status = self.status(n);
            let (known, shown) = self.status_shown(n, status);
            let color = match status {
                _ if !known => "lightgrey",
                Status::Done => "palegreen",
                Status::Partial { .. } => "khaki",
                Status::Pending => "white",
                Status::Diverged { .. } => "lightpink",
            };
            // a stage another process holds now, as the tree says it ("running now: ...")
            let busy = crate::run_dir::StageLock::holder(&s.dir).map(|h| format!("\\nrunning now: {}", dot_escape(&h))).unwrap_or_default();
            let _ = writeln!(
                out,
                "  n{} [label=\"{}\\n{}\\n{}{busy}\", style=filled, fillcolor={color}{}];",
                n.index(),
                dot_escape(&s.id),
                &s.hash[..12],
                dot_escape(&shown),
                if busy.is_empty() { "" } else { ", penwidth=3" }
            );
        }
        for e in self.graph.edge_references() {
            let _ = writeln!(out, "  n{} -> n{};", e.source().index(), e.target().index());
        }
        out.push_str("}\n");
        out
    }
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `*` matches any run of characters; everything else literally.
fn glob(pattern: &str, text: &str) -> bool {
    if !pattern.contains('*') {
        return pattern == text;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for p in &parts[1..parts.len() - 1] {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

/// Status of a pretraining folder: its manifest says done and its final weights are there; or
/// a checkpoint to resume from (a done run that lost `final.safetensors` resumes to write it).
pub fn pretrain_status(dir: &Path) -> Status {
    let manifest = ijepa_schema::read_manifest(dir);
    // (the record of another stage, in a copy or a renamed folder: nothing here is this
    // stage's; its run read as done, and its weights were evaluated as this stage's; the run
    // refuses the folder, saying why)
    if manifest.as_ref().is_some_and(|m| m.other_stage(dir).is_some()) {
        return Status::Pending;
    }
    // (a final checkpoint cut short, e.g. by an interrupted copy of the folder, is not done: the
    // run writes it again from its last checkpoint)
    let fin = dir.join(ijepa_schema::CHECKPOINTS).join(ijepa_schema::FINAL);
    if manifest.as_ref().is_some_and(|m| m.is_done()) && crate::checkpoint::state::is_whole_file(&fin) {
        return Status::Done;
    }
    if let Some(step) = manifest.as_ref().and_then(|m| m.diverged()) {
        return Status::Diverged { step };
    }
    let latest = dir.join(ijepa_schema::CHECKPOINTS).join(ijepa_schema::LATEST);
    if latest.is_file() {
        // where a resume starts: the manifest's record, or the checkpoint's own header when
        // the manifest has none (lost or damaged) or an older step (a run killed between
        // writing the file and recording it: the resume reads the newer file, if it is this
        // stage's)
        let recorded = manifest.as_ref().and_then(|m| m.checkpoint(ijepa_schema::LATEST).map(|c| c.step));
        let stage = manifest.as_ref().map_or(0, |m| crate::checkpoint::state::stage_id(&m.hash));
        // (a header whose position does not add up is damaged: not read as a step, 2^64 - 1
        // made the stage read as done)
        let own = crate::checkpoint::state::position_of(&latest).filter(|p| !p.of_another_stage(stage) && p.impossible(u64::MAX).is_none()).map(|p| p.global_step);
        let step = match (recorded, own) {
            (Some(r), Some(o)) => r.max(o),
            (r, o) => r.or(o).unwrap_or(0),
        };
        return Status::Partial { step };
    }
    Status::Pending
}

/// The final checkpoint of the finished pretraining in `dir` when it is not the file the run
/// wrote: `(what it holds, what the manifest records)`, SHA-256s. The checksum of its tensors'
/// data in its header is compared with the one the manifest records (read from the header
/// alone: another run's weights put in its place, however copied or moved); for a manifest of
/// an earlier version, which records only the file's SHA-256, the file is hashed when it was
/// written after the manifest. A cut-short or empty file is not this (the run writes it again
/// from its last checkpoint). A run whose final checkpoint was replaced was still `done`: its
/// evaluations were skipped as done and the report showed what they had measured on weights
/// no longer there.
pub fn replaced_final(dir: &Path) -> Option<(String, String)> {
    use crate::checkpoint::state;
    let manifest = ijepa_schema::read_manifest(dir).filter(|m| m.is_done())?;
    let record = manifest.checkpoint(ijepa_schema::FINAL)?;
    let fin = dir.join(ijepa_schema::CHECKPOINTS).join(ijepa_schema::FINAL);
    if !state::is_whole_file(&fin) {
        return None;
    }
    if let Some(recorded) = &record.data_sha256 {
        let now = state::metadata_of(&fin).and_then(|m| m.get(state::DATA_SHA256).cloned()).unwrap_or_default();
        return (now != *recorded).then(|| (now, recorded.clone()));
    }
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&fin)? <= modified(&dir.join(ijepa_schema::MANIFEST))? {
        return None;
    }
    let now = file_sha256(&fin)?;
    (now != record.sha256).then(|| (now, record.sha256.clone()))
}

/// The sha256 of a file, cached by path, length and modification time: a plan asks for a
/// final checkpoint's (whose manifest is lost) once for each evaluation of it and each time it
/// reads their status, and a ViT-H checkpoint is gigabytes.
fn file_sha256(path: &Path) -> Option<String> {
    type Key = (PathBuf, u64, Option<std::time::SystemTime>);
    static CACHE: std::sync::Mutex<BTreeMap<Key, String>> = std::sync::Mutex::new(BTreeMap::new());
    let m = std::fs::metadata(path).ok()?;
    let key = (path.to_path_buf(), m.len(), m.modified().ok());
    let mut cache = CACHE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(sha) = cache.get(&key) {
        return Some(sha.clone());
    }
    let sha = crate::checkpoint::state::sha256_file(path).ok()?;
    cache.insert(key, sha.clone());
    Some(sha)
}

/// The stage folders in the experiment folder `dir` (`RUNS/<experiment>/`), as the report's
/// registry lists them: named as a stage, or holding a record (not `features/`, `slurm/`, nor
/// hidden ones, set aside by `--force`), sorted.
fn stage_folders_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
                .filter(|d| {
                    d.file_name().is_some_and(|n| n.to_string_lossy().starts_with("pretrain-") || n.to_string_lossy().starts_with("eval-"))
                        || d.join(ijepa_schema::EVAL).is_file()
                        || d.join(ijepa_schema::MANIFEST).is_file()
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// File in the report folder recording which plan wrote it.
pub use ijepa_schema::REPORT_MARKER;

/// What the last report stage that wrote a report folder recorded ([`report_marker`]).
pub struct ReportMarker {
    /// Its stage hash (`partial-<hash>` for a report written while points had diverged).
    pub hash: String,
    /// The hash of what it read ([`Plan::report_inputs`]).
    pub inputs: String,
    /// The study whose run wrote it (absent from earlier versions' markers).
    pub study: Option<String>,
}

/// What the last report stage that wrote `dir` recorded, while every file it wrote is still
/// there (an earlier version's marker has no inputs, and a report missing a file, e.g. a
/// deleted `report.md`, is written again).
pub fn report_marker(dir: &Path) -> Option<ReportMarker> {
    let text = ijepa_schema::read_text(&dir.join(REPORT_MARKER)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    // (a marker of a version that did not list them: the two documents)
    let written: Vec<&str> = match v["written"].as_array() {
        Some(files) => files.iter().filter_map(|f| f.as_str()).collect(),
        None => vec!["report.md", "report.html"],
    };
    if !written.iter().all(|f| dir.join(f).is_file()) {
        return None;
    }
    Some(ReportMarker { hash: v["hash"].as_str()?.to_string(), inputs: v["inputs"].as_str()?.to_string(), study: v["study"].as_str().map(str::to_string) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches() {
        assert!(glob("eval-*-ijepa", "eval-linear-ijepa"));
        assert!(glob("*", "report"));
        assert!(glob("pre*/a", "pretrain/a"));
        assert!(!glob("eval-*-ijepa", "eval-linear-raw-pixels"));
        assert!(!glob("report", "reports"));
    }

    /// DINO trains one model whatever the data block's augmentations (its multi-crop is its
    /// own): in a sweep over them (for its fine-tuning evaluation) the points share the
    /// pretraining and now its kNN evaluation too, which was computed once a point; the
    /// fine-tuning, which trains on them, is each point's; a folder an earlier version named
    /// is still found.
    #[test]
    fn a_dino_sweep_over_augmentations_evaluates_its_one_model_once() {
        let src = r#"experiment "d" {
            recipe "dino"
            data "fashion-mnist" { crop-size 28; batch-size 16; limit 64 }
            encoder width=16 depth=1 heads=2 patch=7
            dino { local-crops 1; local-size 14; out-dim 8; hidden-dim 8; bottleneck-dim 4 }
            eval "knn" { k 5 }
            eval "finetune" { epochs 1; batch-size 16 }
        }
        sweep "grid" {
            vary "data.horizontal-flip" 0.0 0.5
        }"#;
        let study = ijepa_dsl::parse_study("d.kdl", src).unwrap();
        let root = crate::testdir::scratch("plan", "dino-augmentations");
        let plan = Plan::build(&study, &root, &root.join("reports"), 1);
        let hashes = |prefix: &str| -> Vec<String> {
            let mut h: Vec<String> = plan.graph.node_weights().filter(|s| s.id.starts_with(prefix)).map(|s| s.hash.clone()).collect();
            h.dedup();
            h
        };
        assert_eq!(hashes("pretrain").len(), 1);
        assert_eq!(hashes("eval-knn").len(), 1, "one model, one kNN");
        assert_eq!(plan.graph.node_weights().filter(|s| s.id.starts_with("eval-finetune")).map(|s| s.hash.clone()).collect::<std::collections::BTreeSet<_>>().len(), 2);
        // the folder of an earlier version's hash (the whole data block) is found
        let flipped = &study.points[1].experiment;
        let knn = &flipped.evals[0];
        let old = legacy_eval_hash(flipped, knn, Subject::Pretrained, "p");
        assert_ne!(old, eval_hash(flipped, knn, Subject::Pretrained, "p"));
        let old_dir = run_dir::stage_path(&root, "d", "eval-knn-dino", &old);
        std::fs::create_dir_all(&old_dir).unwrap();
        std::fs::write(old_dir.join(ijepa_schema::EVAL), r#"{"experiment": "d", "protocol": "knn", "model": "dino", "method": "DINO", "arch": "x", "top1": 50.0}"#).unwrap();
        assert_eq!(eval_stage(&root, "d", flipped, knn, Subject::Pretrained, "p"), (old, old_dir));
        // I-JEPA reads them: its evaluations keep the whole block, as they always did
        let ijepa = Experiment { recipe: "ijepa".into(), ..flipped.clone() };
        assert_eq!(eval_hash(&ijepa, knn, Subject::Pretrained, "p"), legacy_eval_hash(&ijepa, knn, Subject::Pretrained, "p"));
    }

    /// In a sweep over the precision each random-init baseline (computed in that precision)
    /// is a stage of its own id, which `--only` can select; the pixels stay one stage.
    #[test]
    fn random_init_baselines_of_a_precision_sweep_have_their_own_ids() {
        let src = r#"experiment "p" {
            data "fashion-mnist" { crop-size 28; batch-size 16; limit 64 }
            encoder width=16 depth=1 heads=2 patch=4
            mask "multi-block" { min-keep 4 }
            eval "knn" { k 5; baselines "random-init" "raw-pixels" }
        }
        sweep "grid" {
            vary "precision" "bf16" "fp32"
        }"#;
        let study = ijepa_dsl::parse_study("p.kdl", src).unwrap();
        let root = crate::testdir::scratch("plan", "precision-baselines");
        let plan = Plan::build(&study, &root, &root.join("reports"), 1);
        let ids = |prefix: &str| -> Vec<String> { plan.graph.node_weights().filter(|s| s.id.starts_with(prefix)).map(|s| s.id.clone()).collect() };
        let random = ids("eval-knn-random-init");
        assert_eq!(random.len(), 2, "{random:?}");
        assert_ne!(random[0], random[1]);
        assert_eq!(ids("eval-knn-raw-pixels").len(), 1);
    }

    /// A random init is the recipe's: where the encoder's initial weights depend on another
    /// module's shape (MAE initialises after building its decoder, DINO draws its patch
    /// embedding after building its head), a sweep over that shape has a random-init baseline
    /// per value (it had one, computed for the first point and shown for both); settings that
    /// do not move the initialisation (DINO's temperatures, I-JEPA's predictor) still share one.
    #[test]
    fn random_init_baselines_follow_what_moves_the_initialisation() {
        let count = |recipe: &str, node: &str, vary: &str| {
            let src = format!(
                "experiment \"p\" {{\n recipe \"{recipe}\"\n data \"fashion-mnist\" {{ crop-size 28; batch-size 16; limit 64 }}\n encoder width=16 depth=1 heads=2 patch=4\n {node}\n eval \"knn\" {{ k 5; baselines \"random-init\" }}\n}}\nsweep \"grid\" {{\n {vary}\n}}"
            );
            let study = ijepa_dsl::parse_study("p.kdl", &src).map_err(|e| e.render_plain()).unwrap();
            let root = crate::testdir::scratch("plan", &format!("init-{recipe}-{}", vary.len()));
            let plan = Plan::build(&study, &root, &root.join("reports"), 1);
            let random: std::collections::BTreeSet<String> = plan.graph.node_weights().filter(|s| s.id.starts_with("eval-knn-random-init")).map(|s| s.hash.clone()).collect();
            random.len()
        };
        assert_eq!(count("mae", "decoder depth=1 width=16 heads=2", "vary \"decoder.width\" 16 32"), 2);
        assert_eq!(count("dino", "dino { out-dim 64; hidden-dim 32; bottleneck-dim 16; local-size 12 }", "vary \"dino.head-layers\" 1 3"), 2);
        assert_eq!(count("dino", "dino { out-dim 64; hidden-dim 32; bottleneck-dim 16; local-size 12 }", "vary \"dino.teacher-temp\" 0.04 0.07"), 1);
        assert_eq!(count("ijepa", "mask \"multi-block\" { min-keep 4 }", "vary \"predictor.depth\" 1 2"), 1);
    }

    #[test]
    fn listing_feature_sets_moves_the_encoders_eval_hashes_not_the_pixels() {
        use ijepa_dsl::config::{EvalConfig, EvalProtocol, FeatureChoice};
        let exp = Experiment::with_defaults("x");
        let one = EvalConfig::defaults(EvalProtocol::Knn);
        let two = EvalConfig { features: vec![FeatureChoice::Last, FeatureChoice::Last4], ..one.clone() };
        let h = |c: &EvalConfig, s: Subject| eval_hash(&exp, c, s, "p");
        assert_eq!(h(&one, Subject::RawPixels), h(&two, Subject::RawPixels));
        assert_ne!(h(&one, Subject::Pretrained), h(&two, Subject::Pretrained));
        assert_ne!(h(&one, Subject::RandomInit), h(&two, Subject::RandomInit));
    }

    /// A `held-out` an evaluation does not read (fine-tuning with one `lr` x `weight-decay`
    /// pair, kNN of one feature set, the pixels' kNN) does not move its hash: a sweep over
    /// fine-tuning's `lr` with `held-out 0.2` evaluated its one-pair point under another hash
    /// than the same fine-tuning without it. Where it is read, it counts; an earlier version's
    /// folder of such a point is found.
    #[test]
    fn an_unread_held_out_does_not_move_an_evaluations_hash() {
        use ijepa_dsl::config::{EvalConfig, EvalProtocol, FeatureChoice};
        let exp = Experiment::with_defaults("x");
        let h = |c: &EvalConfig, s: Subject| eval_hash(&exp, c, s, "p");
        let held = |c: &EvalConfig| EvalConfig { heldout: 0.2, ..c.clone() };
        let finetune = EvalConfig::defaults(EvalProtocol::Finetune);
        let knn = EvalConfig::defaults(EvalProtocol::Knn);
        let knn2 = EvalConfig { features: vec![FeatureChoice::Last, FeatureChoice::Last4], ..knn.clone() };
        let grid = EvalConfig { lrs: vec![1e-3, 2e-3], ..finetune.clone() };
        for s in [Subject::Pretrained, Subject::RandomInit, Subject::RawPixels] {
            assert_eq!(h(&finetune, s), h(&held(&finetune), s), "{s:?}");
            assert_eq!(h(&knn, s), h(&held(&knn), s), "{s:?}");
            assert_ne!(h(&grid, s), h(&held(&grid), s), "{s:?}");
        }
        assert_ne!(h(&knn2, Subject::Pretrained), h(&held(&knn2), Subject::Pretrained));
        assert_eq!(h(&knn2, Subject::RawPixels), h(&held(&knn2), Subject::RawPixels));
        let linear = EvalConfig::defaults(EvalProtocol::Linear);
        assert_ne!(h(&linear, Subject::RawPixels), h(&held(&linear), Subject::RawPixels));
        // (the default's hash is the one it always had)
        assert_eq!(h(&finetune, Subject::Pretrained), heldout_as_written_eval_hash(&exp, &finetune, Subject::Pretrained, "p"));
        // an earlier version's folder of the point is found
        let runs = crate::testdir::scratch("plan", "heldout-read-alike");
        let old = heldout_as_written_eval_hash(&exp, &held(&finetune), Subject::Pretrained, "p");
        assert_ne!(old, h(&finetune, Subject::Pretrained));
        let folder = format!("eval-finetune-{}", Subject::Pretrained.key(&exp.recipe));
        let old_dir = run_dir::stage_path(&runs, "x", &folder, &old);
        std::fs::create_dir_all(&old_dir).unwrap();
        let record = serde_json::json!({"experiment": "x", "protocol": "finetune", "model": "ijepa", "method": "I-JEPA", "arch": "x", "top1": 50.0});
        std::fs::write(old_dir.join(ijepa_schema::EVAL), record.to_string()).unwrap();
        assert!(ijepa_schema::read_eval(&old_dir).is_some(), "the test's record must read");
        assert_eq!(eval_stage(&runs, "x", &exp, &held(&finetune), Subject::Pretrained, "p"), (old, old_dir));
    }

    /// Fine-tuning that trains the position table is another evaluation than the one earlier
    /// versions ran (the table fixed): its hash moved, and an earlier version's folder, under
    /// any of the hashes it had, is not found; the probes' hashes did not move, nor DINO's
    /// fine-tunings (its encoder learns its table: trained before too).
    #[test]
    fn finetunings_revision_moves_its_hashes_alone() {
        use ijepa_dsl::config::{EvalConfig, EvalProtocol};
        let exp = Experiment::with_defaults("x");
        let finetune = EvalConfig::defaults(EvalProtocol::Finetune);
        // (the hashes versions before the revision gave these defaults, the same under each
        // of their variants)
        for (s, old) in [(Subject::Pretrained, "420bc04a48b2bcf7"), (Subject::RandomInit, "929536f8776903b0")] {
            let now = eval_hash(&exp, &finetune, s, "p");
            assert_ne!(now, old, "{s:?}");
            let runs = crate::testdir::scratch("plan", &format!("finetune-revision-{s:?}"));
            let folder = format!("eval-finetune-{}", s.key(&exp.recipe));
            let old_dir = run_dir::stage_path(&runs, "x", &folder, old);
            std::fs::create_dir_all(&old_dir).unwrap();
            let record = serde_json::json!({"experiment": "x", "protocol": "finetune", "model": "ijepa", "method": "I-JEPA", "arch": "x", "top1": 50.0});
            std::fs::write(old_dir.join(ijepa_schema::EVAL), record.to_string()).unwrap();
            assert!(ijepa_schema::read_eval(&old_dir).is_some(), "the test's record must read");
            assert_eq!(eval_stage(&runs, "x", &exp, &finetune, s, "p"), (now.clone(), run_dir::stage_path(&runs, "x", &folder, &now)), "{s:?}");
        }
        // a probe's hash is the one it had
        assert_eq!(eval_hash(&exp, &EvalConfig::defaults(EvalProtocol::Knn), Subject::Pretrained, "p"), "a9a48424a8c2f84f");
        // DINO's encoder learns its table: fine-tuned so before, its fine-tunings keep their hash
        let dino = Experiment { recipe: "dino".into(), ..exp.clone() };
        assert_eq!(eval_hash(&dino, &finetune, Subject::Pretrained, "p"), "f7563f48629952a0");
        assert_eq!(eval_hash(&dino, &finetune, Subject::RandomInit, "p"), "72218357218c0029");
    }

    /// A baseline's evaluation reads the images, not the pretraining's batch size, loader
    /// threads or augmentations (fine-tuning trains with the augmentations): a sweep over them
    /// evaluates the pixels once; an earlier version's folder of the same evaluation is found.
    #[test]
    fn baselines_do_not_depend_on_the_pretrainings_data_settings() {
        use ijepa_dsl::config::{EvalConfig, EvalProtocol};
        let exp = Experiment::with_defaults("x");
        let mut other = exp.clone();
        other.data.batch_size = 32;
        other.data.workers = 2;
        other.data.hflip = 0.5;
        other.data.crop_scale = (0.6, 1.0);
        let linear = EvalConfig::defaults(EvalProtocol::Linear);
        let finetune = EvalConfig::defaults(EvalProtocol::Finetune);
        let h = |e: &Experiment, c: &EvalConfig, s: Subject| eval_hash(e, c, s, "p");
        for s in [Subject::RawPixels, Subject::RandomInit] {
            assert_eq!(h(&exp, &linear, s), h(&other, &linear, s), "{s:?}");
        }
        // fine-tuning a random encoder trains on augmented images; the batch size is its own
        assert_ne!(h(&exp, &finetune, Subject::RandomInit), h(&other, &finetune, Subject::RandomInit));
        let batch_only = Experiment { data: DataConfig { batch_size: 32, ..exp.data.clone() }, ..exp.clone() };
        assert_eq!(h(&exp, &finetune, Subject::RandomInit), h(&batch_only, &finetune, Subject::RandomInit));
        // what the evaluation reads still counts
        let mut bigger = exp.clone();
        bigger.data.crop_size = 32;
        assert_ne!(h(&exp, &linear, Subject::RawPixels), h(&bigger, &linear, Subject::RawPixels));
        let mut fewer = exp.clone();
        fewer.data.limit = Some(100);
        assert_ne!(h(&exp, &linear, Subject::RawPixels), h(&fewer, &linear, Subject::RawPixels));
        // nor the JPEG decoding (the evaluation transform decodes exactly) or `on-error` (the
        // pretraining's images only): a baseline evaluated under them is found where it is
        let mut exact = exp.clone();
        exact.data.exact_decode = true;
        exact.data.on_error = ijepa_dsl::config::OnError::Skip;
        let runs = crate::testdir::scratch("plan", "baseline-decode");
        for s in [Subject::RawPixels, Subject::RandomInit] {
            assert_eq!(h(&exp, &linear, s), h(&exact, &linear, s), "{s:?}");
            let before = decode_counted_eval_hash(&exact, &linear, s, "p");
            assert_ne!(before, h(&exact, &linear, s));
            let old_dir = run_dir::stage_path(&runs, "x", &format!("eval-linear-{}", s.key("ijepa")), &before);
            std::fs::create_dir_all(&old_dir).unwrap();
            let record = r#"{"experiment":"x","protocol":"linear","model":"raw-pixels","method":"raw pixels","arch":"pixels","top1":80.0}"#;
            std::fs::write(old_dir.join(ijepa_schema::EVAL), record).unwrap();
            assert_eq!(eval_stage(&runs, "x", &exact, &linear, s, "p"), (before, old_dir), "{s:?}");
        }
        assert_ne!(h(&exp, &finetune, Subject::RandomInit), h(&exact, &finetune, Subject::RandomInit));
        // the pretrained encoder's evaluations and the defaults hash as they always did
        assert_eq!(h(&other, &linear, Subject::Pretrained), legacy_eval_hash(&other, &linear, Subject::Pretrained, "p"));
        assert_eq!(h(&exp, &linear, Subject::RawPixels), legacy_eval_hash(&exp, &linear, Subject::RawPixels, "p"));

        // the sweep's points varied only the batch size and the flips: one pixel stage, whose
        // id names no point
        let src = r#"experiment "s" {
            encoder width=32 depth=1 heads=2 patch=4
            mask "multi-block" { min-keep 4 }
            data "fashion-mnist" { crop-size 28; limit 64 }
            eval "linear" { baselines "raw-pixels" }
        }
        sweep "grid" {
            vary "data.batch-size" { - 16; - 32 }
            vary "data.horizontal-flip" { - 0.0; - 0.5 }
        }"#;
        let study = ijepa_dsl::parse_study("s.kdl", src).unwrap();
        let root = crate::testdir::scratch("plan", "baseline-data");
        let plan = Plan::build(&study, &root, &root.join("reports"), 1);
        let ids = |kind: StageKind| -> Vec<String> {
            plan.graph.node_weights().filter(|s| s.kind() == kind).map(|s| s.id.clone()).collect()
        };
        assert_eq!(ids(StageKind::Pretrain).len(), 4);
        let evals = ids(StageKind::Eval);
        assert_eq!(evals.iter().filter(|id| id.starts_with("eval-linear-raw-pixels")).collect::<Vec<_>>(), ["eval-linear-raw-pixels"]);
        assert_eq!(evals.len(), 5, "{evals:?}");

        // an evaluation an earlier version ran under the hash that counted the batch size
        let (hash, dir) = eval_stage(&root, "x", &other, &linear, Subject::RawPixels, "p");
        let old = legacy_eval_hash(&other, &linear, Subject::RawPixels, "p");
        assert_ne!(old, hash);
        let old_dir = run_dir::stage_path(&root, "x", "eval-linear-raw-pixels", &old);
        std::fs::create_dir_all(&old_dir).unwrap();
        assert_eq!(eval_stage(&root, "x", &other, &linear, Subject::RawPixels, "p").1, dir, "a folder without a result is not one");
        std::fs::write(old_dir.join(ijepa_schema::EVAL), "{}").unwrap();
        assert_eq!(eval_stage(&root, "x", &other, &linear, Subject::RawPixels, "p").1, dir, "nor one without a readable result");
        let record = r#"{"experiment":"x","protocol":"linear","model":"raw-pixels","method":"raw pixels","arch":"pixels","top1":80.0}"#;
        std::fs::write(old_dir.join(ijepa_schema::EVAL), record).unwrap();
        assert_eq!(eval_stage(&root, "x", &other, &linear, Subject::RawPixels, "p"), (old, old_dir));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(eval_stage(&root, "x", &other, &linear, Subject::RawPixels, "p"), (hash, dir));

        // the sweep's points each evaluated the pixels under an earlier version (one folder a
        // batch size): they share the first such folder, one stage
        let root = crate::testdir::scratch("plan", "baseline-legacy-points");
        for point in &study.points {
            let cfg = &point.experiment.evals[0];
            let old = legacy_eval_hash(&point.experiment, cfg, Subject::RawPixels, "p");
            let dir = run_dir::stage_path(&root, "s", "eval-linear-raw-pixels", &old);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(ijepa_schema::EVAL), record).unwrap();
        }
        let plan = Plan::build(&study, &root, &root.join("reports"), 1);
        let pixels: Vec<&Stage> = plan.graph.node_weights().filter(|s| s.id.starts_with("eval-linear-raw-pixels")).collect();
        assert_eq!(pixels.len(), 1, "{:?}", pixels.iter().map(|s| &s.dir).collect::<Vec<_>>());
        assert!(ijepa_schema::eval_done(&pixels[0].dir));
    }

    /// A random init is keyed with what its initialisation does not read at its default (MAE's
    /// `norm-pix-loss`), and a finished one keyed by it, as earlier versions keyed it, is
    /// still found (it was evaluated again, and the report left the first out).
    #[test]
    fn a_random_init_keyed_by_a_setting_it_does_not_read_is_found_under_its_old_hash() {
        let src = "experiment \"m\" {\n recipe \"mae\"\n data \"fashion-mnist\" { crop-size 16; batch-size 16; limit 64 }\n encoder width=32 depth=2 heads=2 patch=4\n decoder depth=1 width=16 heads=2 norm-pix-loss=#false\n eval \"knn\" { baselines \"random-init\" }\n}\n";
        let exp = ijepa_dsl::parse_study("m.kdl", src).unwrap().points[0].experiment.clone();
        let knn = &exp.evals[0];
        let root = crate::testdir::scratch("plan", "init-unread-old");
        let (hash, dir) = eval_stage(&root, "m", &exp, knn, Subject::RandomInit, "p");
        let mut on = exp.clone();
        on.decoder.norm_pix_loss = true;
        assert_eq!(hash, eval_hash(&on, knn, Subject::RandomInit, "p"));
        let old = init_as_written_eval_hash(&exp, knn, Subject::RandomInit, "p");
        assert_ne!(old, hash);
        let folder = dir.file_name().unwrap().to_string_lossy().rsplit_once('-').unwrap().0.to_string();
        let old_dir = run_dir::stage_path(&root, "m", &folder, &old);
        std::fs::create_dir_all(&old_dir).unwrap();
        let record = r#"{"experiment":"m","protocol":"knn","model":"random-init","method":"random init (MAE)","arch":"vit","top1":40.0}"#;
        std::fs::write(old_dir.join(ijepa_schema::EVAL), record).unwrap();
        assert_eq!(eval_stage(&root, "m", &exp, knn, Subject::RandomInit, "p"), (old, old_dir));
        // the value at its default keys as it always did
        assert_eq!(eval_hash(&on, knn, Subject::RandomInit, "p"), init_as_written_eval_hash(&on, knn, Subject::RandomInit, "p"));
    }

    /// Logging and checkpoint cadence leave the pretraining's identity alone; a folder an
    /// earlier version named with them counted is still the run's.
    #[test]
    fn cadence_is_not_part_of_the_pretraining_hash_and_old_folders_are_found() {
        let exp = Experiment::with_defaults("x");
        let mut chatty = exp.clone();
        chatty.log_every = 10;
        chatty.checkpoint.every_steps = 500;
        chatty.checkpoint.keep_every = 1;
        assert_eq!(pretrain_hash(&exp, 1), pretrain_hash(&chatty, 1));
        // the defaults hash as they always did
        assert_eq!(pretrain_hash(&exp, 1), legacy_pretrain_hash(&exp, 1));
        let mut other = exp.clone();
        other.epochs += 1;
        assert_ne!(pretrain_hash(&exp, 1), pretrain_hash(&other, 1));
        // the data block's augmentations train I-JEPA differently; DINO does not read them
        let mut flipped = exp.clone();
        flipped.data.hflip = 0.5;
        flipped.data.crop_scale = (0.6, 1.0);
        assert_ne!(pretrain_hash(&exp, 1), pretrain_hash(&flipped, 1));
        let (mut dino, mut dino_flipped) = (exp.clone(), flipped.clone());
        dino.recipe = "dino".into();
        dino_flipped.recipe = "dino".into();
        assert_eq!(pretrain_hash(&dino, 1), pretrain_hash(&dino_flipped, 1));

        let root = crate::testdir::scratch("plan", "legacy-hash");
        let (hash, dir) = pretrain_stage(&root, &chatty, 1);
        assert_eq!((hash.as_str(), dir.clone()), (pretrain_hash(&chatty, 1).as_str(), run_dir::stage_path(&root, "x", "pretrain", &hash)));
        // a run of an earlier version, under the hash that counted the cadence
        let old = legacy_pretrain_hash(&chatty, 1);
        assert_ne!(old, hash);
        let old_dir = run_dir::stage_path(&root, "x", "pretrain", &old);
        std::fs::create_dir_all(&old_dir).unwrap();
        assert_eq!(pretrain_stage(&root, &chatty, 1).1, dir, "a folder without a manifest is not a run");
        std::fs::write(old_dir.join(ijepa_schema::MANIFEST), "{}").unwrap();
        assert_eq!(pretrain_stage(&root, &chatty, 1), (old.clone(), old_dir.clone()));
        // once this version's folder exists, it is the one
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(pretrain_stage(&root, &chatty, 1), (hash, dir));
    }

    /// The monitor's collapse-warning floors leave the pretraining's identity alone (a floor
    /// changed after its warning trained again); a folder named with them counted is found.
    #[test]
    fn warning_floors_are_not_part_of_the_pretraining_hash_and_old_folders_are_found() {
        let mut exp = Experiment::with_defaults("x");
        exp.monitor = Some(ijepa_dsl::config::MonitorConfig::default());
        let mut strict = exp.clone();
        let m = strict.monitor.as_mut().unwrap();
        (m.rank_floor, m.spread_floor) = (10.0, 0.3);
        assert_eq!(pretrain_hash(&exp, 1), pretrain_hash(&strict, 1));
        // (the default floors hash as they did; what the monitor holds out still counts)
        assert_eq!(pretrain_hash(&exp, 1), as_written_pretrain_hash(&spelled_alike(&exp), 1));
        let mut fewer = exp.clone();
        fewer.monitor.as_mut().unwrap().images = 500;
        assert_ne!(pretrain_hash(&exp, 1), pretrain_hash(&fewer, 1));
        let root = crate::testdir::scratch("plan", "floor-hash");
        let old = as_written_pretrain_hash(&spelled_alike(&strict), 1);
        assert_ne!(old, pretrain_hash(&strict, 1));
        let old_dir = run_dir::stage_path(&root, "x", "pretrain", &old);
        std::fs::create_dir_all(&old_dir).unwrap();
        std::fs::write(old_dir.join(ijepa_schema::MANIFEST), "{}").unwrap();
        assert_eq!(pretrain_stage(&root, &strict, 1), (old.clone(), old_dir.clone()));
        // and under other floors than its own (the change of a floor the run warned of): found
        // by the floors its config.json records, which give its manifest's hash
        std::fs::write(old_dir.join(ijepa_schema::MANIFEST), serde_json::json!({"stage": "pretrain", "experiment": "x", "hash": old}).to_string()).unwrap();
        assert!(ijepa_schema::read_manifest(&old_dir).is_some_and(|m| m.hash == old));
        std::fs::write(old_dir.join(ijepa_schema::CONFIG_JSON), serde_json::json!({"monitor": {"rank_floor": 10.0, "spread_floor": 0.3}}).to_string()).unwrap();
        assert_eq!(pretrain_stage(&root, &exp, 1), (old.clone(), old_dir.clone()));
        // a resume there records the floors the folder was named with, not `exp`'s (rewritten,
        // the folder was found no more once the resume stopped)
        let named = with_named_floors(&old_dir, &old, &exp, 1).expect("the folder's own floors");
        assert_eq!(named.monitor.as_ref().map(|m| (m.rank_floor, m.spread_floor)), Some((10.0, 0.3)));
        assert!(with_named_floors(&old_dir, &pretrain_hash(&exp, 1), &exp, 1).is_none(), "a folder of today's name records today's floors");
        // (a folder whose floors give another hash than its manifest's is not taken)
        std::fs::write(old_dir.join(ijepa_schema::CONFIG_JSON), serde_json::json!({"monitor": {"rank_floor": 9.0, "spread_floor": 0.3}}).to_string()).unwrap();
        assert_eq!(pretrain_stage(&root, &exp, 1).0, pretrain_hash(&exp, 1));
    }

    /// A list edited after the plan was made (before a later point of a sweep ran) is named
    /// by [`Plan::changed_inputs`] for the stages that read it, which `ijepa run` refuses to run
    /// under the folders of the earlier contents.
    #[test]
    fn lists_edited_after_planning_are_named() {
        let root = crate::testdir::scratch("plan", "changed-lists");
        let (list, split) = (root.join("subset.txt"), root.join("split.txt"));
        std::fs::write(&list, "a/1.png\n").unwrap();
        std::fs::write(&split, "a/1.png\n").unwrap();
        let plan_of = |data: &str, evals: &str| {
            let src = format!(
                r#"experiment "s" {{
            encoder width=32 depth=1 heads=2 patch=4
            mask "multi-block" {{ min-keep 4 }}
            data "image-folder" root="{root}" {{ crop-size 32; test-root "{root}"; {data} }}
            {evals}
        }}"#,
                root = root.display()
            );
            let study = ijepa_dsl::parse_study("s.kdl", &src).unwrap();
            Plan::build(&study, &root.join("runs"), &root.join("reports"), 1)
        };
        let changed = |plan: &Plan| -> Vec<(String, Vec<String>)> {
            plan.graph.node_indices().map(|n| (plan.graph[n].id.clone(), plan.changed_inputs(n))).filter(|(_, c)| !c.is_empty()).collect()
        };
        // a split file: the low-shot evaluation reads it
        let plan = plan_of("", &format!(r#"eval "knn"; eval "low-shot" {{ split-file "{}" }}"#, split.display()));
        assert!(changed(&plan).is_empty());
        std::fs::write(&split, "a/1.png\nb/22.png\n").unwrap();
        let c = changed(&plan);
        assert_eq!(c.len(), 1, "{c:?}");
        assert!(c[0].0 == "eval-low-shot-ijepa" && c[0].1[0].contains("split-file") && c[0].1[0].contains(&split.display().to_string()), "{c:?}");
        // a subset list: the pretraining and every evaluation read it
        let plan = plan_of(&format!(r#"subset "{}""#, list.display()), r#"eval "knn""#);
        assert!(changed(&plan).is_empty());
        std::fs::write(&list, "a/1.png\nb/22.png\n").unwrap();
        let c = changed(&plan);
        assert_eq!(c.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["pretrain", "eval-knn-ijepa"], "{c:?}");
        assert!(c[0].1[0].contains("data.subset") && c[0].1[0].contains(&list.display().to_string()), "{c:?}");
    }

    /// A sweep whose values are listed in another order plans the same report: its stage hash
    /// and what it reads (the folders in another order re-ran a report that was done).
    #[test]
    fn a_reordered_sweep_plans_the_same_report() {
        let src = |values: &str| {
            format!(
                r#"experiment "s" {{
            encoder width=32 depth=1 heads=2 patch=4
            mask "multi-block" {{ min-keep 4 }}
            data "fashion-mnist" {{ crop-size 28; limit 64 }}
            eval "linear" {{ baselines "raw-pixels" }}
            report
        }}
        sweep "grid" {{
            vary "data.batch-size" {{ {values} }}
        }}"#
            )
        };
        let root = crate::testdir::scratch("plan", "reordered-report");
        let report = |values: &str| {
            let study = ijepa_dsl::parse_study("s.kdl", &src(values)).unwrap();
            let plan = Plan::build(&study, &root, &root.join("reports"), 1);
            let n = plan.order().into_iter().find(|&n| plan.graph[n].kind() == StageKind::Report).unwrap();
            // (each stage's folder with a record, as after a run)
            for s in plan.graph.node_weights().filter(|s| s.kind() == StageKind::Eval) {
                std::fs::create_dir_all(&s.dir).unwrap();
                std::fs::write(s.dir.join(ijepa_schema::EVAL), format!("{{\"stage\": \"{}\"}}", s.id)).unwrap();
            }
            (plan.graph[n].hash.clone(), plan.report_inputs())
        };
        let forward = report("- 16; - 32; - 64");
        assert_eq!(forward, report("- 64; - 16; - 32"));
        assert_ne!(forward, report("- 16; - 32"));
        // a report an earlier version marked done (its inputs hashed in plan order) stays done
        let study = ijepa_dsl::parse_study("s.kdl", &src("- 64; - 16; - 32")).unwrap();
        let plan = Plan::build(&study, &root, &root.join("reports"), 1);
        let n = plan.order().into_iter().find(|&n| plan.graph[n].kind() == StageKind::Report).unwrap();
        std::fs::create_dir_all(root.join("reports")).unwrap();
        let mark = |inputs: String| {
            let marker = serde_json::json!({"hash": plan.graph[n].hash, "inputs": inputs, "written": []});
            std::fs::write(root.join("reports").join(REPORT_MARKER), marker.to_string()).unwrap();
        };
        assert_ne!(plan.report_inputs_in(false, false), plan.report_inputs());
        mark(plan.report_inputs_in(false, false));
        assert_eq!(plan.status(n), Status::Done);
        // ... as does one whose folders it named by their paths, sorted (before they were
        // named within the runs folder)
        assert_ne!(plan.report_inputs_in(true, false), plan.report_inputs());
        mark(plan.report_inputs_in(true, false));
        assert_eq!(plan.status(n), Status::Done);
        mark("other".into());
        assert_eq!(plan.status(n), Status::Pending);
        // another file's record of what it planned (which says what the report shows) is an
        // input too: edited, the report is stale (it stayed "done")
        let before = plan.report_inputs();
        std::fs::create_dir_all(root.join("s")).unwrap();
        std::fs::write(root.join("s").join("planned-other-0123abcd.json"), "{}").unwrap();
        assert_ne!(plan.report_inputs(), before);
    }

    /// The contents of a `subset` list and of an evaluation's `split-file` name their stages
    /// (an edited list was found "done" under its path's folder, with the old list's results);
    /// files without lists keep their hashes, and a folder of the version that did not count
    /// the contents is still found unless its record names other contents.
    #[test]
    fn a_list_files_contents_are_part_of_the_stage_hashes() {
        let root = crate::testdir::scratch("plan", "list-digests");
        let list = root.join("subset.txt");
        std::fs::write(&list, "a/1.png\n").unwrap();
        let plain = Experiment::with_defaults("x");
        assert_eq!(pretrain_hash(&plain, 1), listless_pretrain_hash(&plain, 1));
        let mut exp = plain.clone();
        exp.data.dataset = ijepa_dsl::config::DatasetKind::ImageFolder;
        exp.data.subset = Some(list.clone());
        let mut cfg = EvalConfig::defaults(EvalProtocol::LowShot);
        cfg.split_file = Some(root.join("split.txt"));
        std::fs::write(cfg.split_file.as_ref().unwrap(), "a/1.png\n").unwrap();
        let runs = root.join("runs");
        let (first, first_dir) = pretrain_stage(&runs, &exp, 1);
        let first_eval = eval_hash(&exp, &cfg, Subject::RawPixels, &first);
        assert_ne!(first, listless_pretrain_hash(&exp, 1));
        assert_eq!(pretrain_inputs(&exp).keys().collect::<Vec<_>>(), ["data.subset"]);
        assert_eq!(eval_inputs(&exp, &cfg).keys().collect::<Vec<_>>(), ["data.subset", "eval.low-shot.split-file"]);
        // an edited list: another pretraining, other evaluations
        std::fs::write(&list, "a/1.png\nb/2.png\n").unwrap();
        let (second, _) = pretrain_stage(&runs, &exp, 1);
        assert_ne!(first, second);
        assert_ne!(first_eval, eval_hash(&exp, &cfg, Subject::RawPixels, &second));
        // an edited split file: the low-shot evaluations only
        let pixels = eval_hash(&exp, &cfg, Subject::RawPixels, &second);
        std::fs::write(cfg.split_file.as_ref().unwrap(), "b/22.png\n").unwrap();
        assert_ne!(pixels, eval_hash(&exp, &cfg, Subject::RawPixels, &second));
        assert_eq!(pretrain_stage(&runs, &exp, 1).0, second);
        // the same list read the same way (other line endings, a byte-order mark, blank lines,
        // spaces): the same stage
        std::fs::write(&list, "\u{feff}a/1.png\r\n\r\n  b/2.png \r\n").unwrap();
        assert_eq!(pretrain_stage(&runs, &exp, 1).0, second);
        // a run of the earlier version (no contents recorded) is found; one that recorded
        // other contents is not
        let old = listless_pretrain_hash(&exp, 1);
        let old_dir = run_dir::stage_path(&runs, "x", "pretrain", &old);
        std::fs::create_dir_all(&old_dir).unwrap();
        let manifest = |inputs: BTreeMap<String, String>| {
            let mut m = serde_json::json!({"stage": "pretrain", "experiment": "x", "hash": old});
            if !inputs.is_empty() {
                m["inputs"] = serde_json::json!(inputs);
            }
            std::fs::write(old_dir.join(ijepa_schema::MANIFEST), m.to_string()).unwrap();
        };
        manifest(BTreeMap::new());
        assert_eq!(pretrain_stage(&runs, &exp, 1), (old.clone(), old_dir.clone()));
        manifest(BTreeMap::from([("data.subset".to_string(), "0123".to_string())]));
        assert_eq!(pretrain_stage(&runs, &exp, 1).0, second);
        assert_ne!(first_dir, old_dir);
        // the same for an evaluation's result
        let input = "p".to_string();
        let old_eval = listless_eval_hash(&exp, &cfg, Subject::Pretrained, &input);
        let folder = format!("eval-{}-ijepa", cfg.name());
        let old_eval_dir = run_dir::stage_path(&runs, "x", &folder, &old_eval);
        std::fs::create_dir_all(&old_eval_dir).unwrap();
        let record = |inputs: serde_json::Value| {
            let r = serde_json::json!({"experiment": "x", "protocol": "low-shot", "model": "ijepa", "method": "I-JEPA",
                "arch": "ViT", "top1": 50.0, "inputs": inputs});
            std::fs::write(old_eval_dir.join(ijepa_schema::EVAL), r.to_string()).unwrap();
        };
        record(serde_json::Value::Null);
        assert_eq!(eval_stage(&runs, "x", &exp, &cfg, Subject::Pretrained, &input).1, old_eval_dir);
        record(serde_json::json!({"data.subset": "0123"}));
        let (hash, dir) = eval_stage(&runs, "x", &exp, &cfg, Subject::Pretrained, &input);
        assert_eq!(hash, eval_hash(&exp, &cfg, Subject::Pretrained, &input));
        assert_ne!(dir, old_eval_dir);
    }

    /// A pretraining's `config.json` records what its recipe reads: an MAE or DINO run recorded
    /// I-JEPA's predictor, EMA, loss and multi-block mask at their defaults, as if in force, and
    /// left out a bilinear `interpolation`, which read as their bicubic; an I-JEPA run records
    /// its own. An earlier version's config.json of the same settings is no other settings.
    #[test]
    fn config_json_records_what_the_recipe_reads() {
        let exp = |recipe: &str, more: &str| {
            let src = format!(
                "experiment \"m\" {{\n recipe \"{recipe}\"\n data \"fashion-mnist\" {{ crop-size 16; batch-size 16; limit 64; interpolation \"bilinear\" }}\n encoder width=32 depth=2 heads=2 patch=4\n {more}\n}}\n"
            );
            ijepa_dsl::parse_study("m.kdl", &src).unwrap().points[0].experiment.clone()
        };
        for (recipe, more, nodes) in [
            ("ijepa", "mask \"multi-block\" { min-keep 0 }", &["predictor", "ema", "loss", "mask"][..]),
            ("mae", "decoder depth=1 width=16 heads=2", &["decoder", "mask"][..]),
            ("dino", "dino { out-dim 8; hidden-dim 8; bottleneck-dim 4; local-crops 1; local-size 8 }", &["dino"][..]),
        ] {
            let e = exp(recipe, more);
            let recorded = recorded_config(&e);
            assert_eq!(recorded["data"]["interpolation"], "bilinear", "{recorded}");
            // (written in the order of the experiment's fields, not sorted: the same value)
            let text = recorded_config_text(&e).unwrap();
            assert!(text.starts_with("{\n  \"name\": \"m\",\n  \"recipe\": "), "{text}");
            let data = text.find("\"data\"").unwrap();
            assert!(text[data..].find("\"dataset\"").unwrap() < text[data..].find("\"crop_size\"").unwrap(), "{text}");
            assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), recorded);
            let all = ["predictor", "ema", "loss", "mask", "decoder", "dino"];
            for node in all {
                assert_eq!(recorded.get(node).is_some(), nodes.contains(&node), "{recipe} {node}: {recorded}");
            }
            if recipe == "mae" {
                assert_eq!(recorded["mask"], json!({"kind": "random", "ratio": 0.75}));
            }
            // (as an earlier version recorded it: the serialised form)
            let then = serde_json::to_value(&e).unwrap();
            assert!(recipe == "ijepa" || then != recorded);
            assert_eq!(weight_settings_apart(&then, &recorded), Vec::<String>::new());
            let mut other = e.clone();
            other.data.interpolation = ijepa_dsl::config::Interpolation::Bicubic;
            assert_eq!(weight_settings_apart(&then, &recorded_config(&other)), vec!["data.interpolation \"bilinear\" -> \"bicubic\"".to_string()]);
        }
    }

    /// A recipe's pretraining is keyed by what it reads: another recipe's settings (in a sweep
    /// over recipes, I-JEPA's predictor changed beside an MAE point) leave it alone, its own
    /// do not, and a folder the previous version named with them counted is still found.
    #[test]
    fn other_recipes_settings_are_not_part_of_the_pretraining_hash() {
        let mut mae = Experiment::with_defaults("x");
        mae.recipe = "mae".into();
        let mut mae_pred = mae.clone();
        mae_pred.predictor.depth += 2;
        mae_pred.ema.start = 0.99;
        assert_eq!(pretrain_hash(&mae, 1), pretrain_hash(&mae_pred, 1));
        let mut mae_dec = mae.clone();
        mae_dec.decoder.depth += 1;
        assert_ne!(pretrain_hash(&mae, 1), pretrain_hash(&mae_dec, 1));
        let ijepa = Experiment::with_defaults("x");
        let mut ijepa_pred = ijepa.clone();
        ijepa_pred.predictor.depth += 2;
        assert_ne!(pretrain_hash(&ijepa, 1), pretrain_hash(&ijepa_pred, 1));
        let mut ijepa_dec = ijepa.clone();
        ijepa_dec.decoder.depth += 1;
        assert_eq!(pretrain_hash(&ijepa, 1), pretrain_hash(&ijepa_dec, 1));
        // files that leave other recipes' nodes alone hash as they did
        assert_eq!(pretrain_hash(&ijepa, 1), cadence_free_hash(&ijepa, 1));
        assert_eq!(pretrain_hash(&mae, 1), cadence_free_hash(&mae, 1));
        // the previous version's folder of an MAE point with I-JEPA's predictor changed
        let root = crate::testdir::scratch("plan", "recipe-hash");
        let old = cadence_free_hash(&mae_pred, 1);
        assert_ne!(old, pretrain_hash(&mae_pred, 1));
        let old_dir = run_dir::stage_path(&root, "x", "pretrain", &old);
        std::fs::create_dir_all(&old_dir).unwrap();
        std::fs::write(old_dir.join(ijepa_schema::MANIFEST), "{}").unwrap();
        assert_eq!(pretrain_stage(&root, &mae_pred, 1), (old, old_dir));
        // DINO samples no mask: a mask setting (swept for the I-JEPA points) leaves it alone
        let mut dino = Experiment::with_defaults("x");
        dino.recipe = "dino".into();
        let mut dino_mask = dino.clone();
        dino_mask.mask.min_keep += 3;
        assert_eq!(pretrain_hash(&dino, 1), pretrain_hash(&dino_mask, 1));
        let mut ijepa_mask = ijepa.clone();
        ijepa_mask.mask.min_keep += 3;
        assert_ne!(pretrain_hash(&ijepa, 1), pretrain_hash(&ijepa_mask, 1));
    }

    /// MAE's and DINO's default learning rate is a `blr=`: written at its default it is the
    /// same pretraining (the `peak` a written blr leaves at the language's 1e-3 is not read),
    /// and a folder the previous version named with that peak counted is still found.
    #[test]
    fn a_blr_written_at_its_default_is_the_default() {
        for (recipe, blr) in [("mae", "1.5e-4"), ("dino", "5e-4")] {
            let parse = |opt: &str| {
                let src = format!("experiment \"x\" {{\n recipe \"{recipe}\"\n encoder width=96 depth=2 heads=3 patch=16\n data \"fashion-mnist\" {{ crop-size 224 }}\n {opt}\n}}\n");
                ijepa_dsl::parse_str("x.kdl", &src).map_err(|d| d.render_plain()).unwrap()
            };
            let (plain, written) = (parse(""), parse(&format!("optimizer \"adamw\" {{ lr blr={blr} }}")));
            assert_ne!(plain.optimizer.lr.peak, written.optimizer.lr.peak, "{recipe}: the case this guards");
            assert_eq!(pretrain_hash(&plain, 1), pretrain_hash(&written, 1), "{recipe}");
            // another blr is another pretraining
            let other = parse("optimizer \"adamw\" { lr blr=1e-3 }");
            assert_ne!(pretrain_hash(&plain, 1), pretrain_hash(&other, 1), "{recipe}");
            // the folder of a run the previous version hashed with the unread peak
            let root = crate::testdir::scratch("plan", &format!("blr-{recipe}"));
            let old = cadence_free_hash(&written, 1);
            assert_ne!(old, pretrain_hash(&written, 1));
            let old_dir = run_dir::stage_path(&root, "x", "pretrain", &old);
            std::fs::create_dir_all(&old_dir).unwrap();
            std::fs::write(old_dir.join(ijepa_schema::MANIFEST), "{}").unwrap();
            assert_eq!(pretrain_stage(&root, &written, 1), (old, old_dir), "{recipe}");
            // ... and that of a point of a sweep over recipes, which keeps another recipe's
            // settings (a predictor) that its hash leaves out
            let mut point = written.clone();
            point.predictor.depth += 1;
            let old = cadence_free_hash(&without_other_recipes(&point), 1);
            assert_ne!(old, pretrain_hash(&point, 1));
            assert_ne!(old, cadence_free_hash(&point, 1), "{recipe}: the case this guards");
            let old_dir = run_dir::stage_path(&root, "x", "pretrain", &old);
            std::fs::create_dir_all(&old_dir).unwrap();
            std::fs::write(old_dir.join(ijepa_schema::MANIFEST), "{}").unwrap();
            assert_eq!(pretrain_stage(&root, &point, 1), (old, old_dir), "{recipe}");
        }
    }

    /// DINO's training changed where its settings do not show (the student's stochastic depth,
    /// the linspace warm-up): a DINO file that writes no `dino` block serialises as before, yet
    /// must not find the folder the previous version trained (047bef5d8d4d3425 was that
    /// version's hash of this experiment), nor any of its fallbacks.
    #[test]
    fn dino_runs_of_the_previous_training_are_not_found() {
        let mut dino = Experiment::with_defaults("x");
        dino.recipe = "dino".into();
        assert!(!serde_json::to_string(&dino).unwrap().contains("\"dino\":"), "a default dino block is not serialised");
        let before = "047bef5d8d4d3425";
        assert_ne!(pretrain_hash(&dino, 1), before);
        // this version's (the revision now declared by DINO's schema: unchanged)
        assert_eq!(pretrain_hash(&dino, 1), "77beb42127b25361");
        let root = crate::testdir::scratch("plan", "dino-revision");
        let old_dir = run_dir::stage_path(&root, "x", "pretrain", before);
        std::fs::create_dir_all(&old_dir).unwrap();
        std::fs::write(old_dir.join(ijepa_schema::MANIFEST), "{}").unwrap();
        assert_ne!(pretrain_stage(&root, &dino, 1).1, old_dir);
    }

    /// Rewriting a file without changing what it trains finds the stages it ran: a data path
    /// with a trailing slash, `//` or `./` in it; a preset named beside its numbers, or its
    /// numbers written out; the predictor's head count written as the encoder's; `cuda:0` as
    /// `cuda`. A stage an earlier version hashed as the file spelled it
    /// is still found, and a real change still trains again.
    #[test]
    fn spellings_of_one_setting_hash_alike() {
        use ijepa_dsl::config::DataSource;
        let mut exp = Experiment::with_defaults("x");
        exp.data.source = DataSource::Path("/data/fmnist".into());
        exp.evals.push(EvalConfig::defaults(EvalProtocol::Knn));
        let knn = exp.evals[0].clone();
        let same = |e: &Experiment| {
            assert_eq!(pretrain_hash(e, 1), pretrain_hash(&exp, 1), "{e:?}");
            for subject in [Subject::Pretrained, Subject::RandomInit, Subject::RawPixels] {
                assert_eq!(eval_hash(e, &e.evals[0], subject, "p"), eval_hash(&exp, &knn, subject, "p"), "{subject:?}");
            }
        };
        for spelling in ["/data/fmnist/", "/data//fmnist", "/data/./fmnist/", "/data/fmnist/."] {
            let mut e = exp.clone();
            e.data.source = DataSource::Path(spelling.into());
            same(&e);
        }
        // a relative path: with or without `./`; `.` alone stays `.`
        assert_eq!(path_alike(Path::new("./data/")), Path::new("data"));
        assert_eq!(path_alike(Path::new(".")), Path::new("."));
        assert_eq!(path_alike(Path::new("./")), Path::new("./"));
        assert_eq!(path_alike(Path::new("/")), Path::new("/"));
        assert_eq!(path_alike(Path::new("../d/./x/")), Path::new("../d/x"));
        // the defaults (vit-base, the encoder's heads) hash as they always did
        assert_eq!(pretrain_hash(&exp, 1), as_written_pretrain_hash(&exp, 1));
        let mut numbers = exp.clone();
        numbers.encoder.preset = None;
        same(&numbers);
        let mut heads = exp.clone();
        heads.predictor.num_heads = Some(exp.encoder.num_heads);
        same(&heads);
        let mut cuda = exp.clone();
        cuda.device = "cuda".into();
        let mut zero = exp.clone();
        zero.device = "cuda:0".into();
        assert_eq!(pretrain_hash(&cuda, 1), pretrain_hash(&zero, 1));
        // another GPU of the machine (a run moved to a free one trained again from scratch)
        let mut one = exp.clone();
        one.device = "cuda:1".into();
        assert_eq!(pretrain_hash(&cuda, 1), pretrain_hash(&one, 1));
        // `cpu` is not `auto`, which means the CPU only on some machines: a hash of one
        // machine would not find the run on another
        let mut cpu = exp.clone();
        cpu.device = "cpu".into();
        assert_ne!(pretrain_hash(&cpu, 1), pretrain_hash(&exp, 1));
        // a preset whose numbers were overridden is not that preset: the overridden model named
        // without it is the same model
        let mut small = exp.clone();
        small.encoder.depth = 4;
        let mut unnamed = small.clone();
        unnamed.encoder.preset = None;
        assert_eq!(pretrain_hash(&small, 1), pretrain_hash(&unnamed, 1));
        assert_ne!(pretrain_hash(&small, 1), pretrain_hash(&exp, 1));
        // what differs still differs: another path, another head count, a `..`
        for change in [
            |e: &mut Experiment| e.data.source = DataSource::Path("/data/fmnist2".into()),
            |e: &mut Experiment| e.data.source = DataSource::Path("/data/x/../fmnist".into()),
            |e: &mut Experiment| e.predictor.num_heads = Some(1),
        ] {
            let mut e = exp.clone();
            change(&mut e);
            assert_ne!(pretrain_hash(&e, 1), pretrain_hash(&exp, 1), "{e:?}");
        }
        // stages run before under the hash of the file as it was spelled are found
        let root = crate::testdir::scratch("plan", "spellings");
        let mut slash = exp.clone();
        slash.data.source = DataSource::Path("/data/fmnist/".into());
        let old = as_written_pretrain_hash(&slash, 1);
        assert_ne!(old, pretrain_hash(&slash, 1));
        let old_dir = run_dir::stage_path(&root, "x", "pretrain", &old);
        std::fs::create_dir_all(&old_dir).unwrap();
        assert_ne!(pretrain_stage(&root, &slash, 1).1, old_dir, "a folder without a manifest is not a run");
        std::fs::write(old_dir.join(ijepa_schema::MANIFEST), "{}").unwrap();
        assert_eq!(pretrain_stage(&root, &slash, 1), (old, old_dir));
        assert_eq!(pretrain_stage(&root, &exp, 1).0, pretrain_hash(&exp, 1), "the folder spelled otherwise is the other file's");
        let old = as_written_eval_hash(&slash, &knn, Subject::RawPixels, "p");
        assert_ne!(old, eval_hash(&slash, &knn, Subject::RawPixels, "p"));
        let old_dir = run_dir::stage_path(&root, "x", "eval-knn-raw-pixels", &old);
        std::fs::create_dir_all(&old_dir).unwrap();
        let record = r#"{"experiment":"x","protocol":"knn","model":"raw-pixels","method":"raw pixels","arch":"pixels","top1":80.0}"#;
        std::fs::write(old_dir.join(ijepa_schema::EVAL), record).unwrap();
        assert_eq!(eval_stage(&root, "x", &slash, &knn, Subject::RawPixels, "p"), (old, old_dir));
    }

    /// A setting another one turns off is not part of the hash at the points of a sweep where it
    /// is off: a DINO grid over `local-crops 0 2` and `local-size 8 12` trains three models, not
    /// four (its two `local-crops 0` points trained one model twice, byte for byte); likewise
    /// the warm-up's start temperature with no warm-up, a one-layer head's hidden width, and an
    /// `ema` beside pixel targets.
    #[test]
    fn settings_turned_off_do_not_tell_points_apart() {
        let src = r#"experiment "d" {
            recipe "dino"
            data "fashion-mnist" { crop-size 28; batch-size 8; limit 64 }
            encoder width=16 depth=2 heads=2 patch=4
            dino { out-dim 16; hidden-dim 16; bottleneck-dim 8; local-size 8; }
            epochs 1
        }
        sweep "grid" {
            vary "dino.local-crops" 0 2
            vary "dino.local-size" 8 12
        }"#;
        let study = ijepa_dsl::parse_study("d.kdl", src).unwrap();
        let root = crate::testdir::scratch("plan", "turned-off");
        let plan = Plan::build(&study, &root, &root.join("reports"), 1);
        assert_eq!(study.points.len(), 4);
        assert_eq!(plan.graph.node_weights().filter(|s| s.kind() == StageKind::Pretrain).count(), 3);
        let dino = study.points[0].experiment.clone();
        let hash = |f: &dyn Fn(&mut Experiment)| {
            let mut e = dino.clone();
            f(&mut e);
            pretrain_hash(&e, 1)
        };
        let none = |e: &mut Experiment| e.dino.local_crops = 0;
        assert_eq!(hash(&none), hash(&|e| {
            none(e);
            e.dino.local_scale = (0.1, 0.3);
        }));
        assert_eq!(hash(&|e| e.dino.warmup_teacher_temp = 0.02), hash(&|_| {}));
        assert_ne!(hash(&|e| { e.dino.warmup_teacher_temp = 0.02; e.dino.warmup_teacher_temp_epochs = 1 }), hash(&|e| e.dino.warmup_teacher_temp_epochs = 1));
        assert_eq!(hash(&|e| { e.dino.head_layers = 1; e.dino.hidden_dim = 32 }), hash(&|e| e.dino.head_layers = 1));
        assert_ne!(hash(&|e| e.dino.hidden_dim = 32), hash(&|_| {}));
        assert_eq!(hash(&|e| { e.encoder.depth = 1; e.dino.drop_path_rate = 0.3 }), hash(&|e| e.encoder.depth = 1));
        let mut pixels = Experiment::with_defaults("p");
        pixels.target.kind = ijepa_dsl::config::TargetKind::Pixels;
        let mut other_ema = pixels.clone();
        other_ema.ema.start = 0.9;
        assert_eq!(pretrain_hash(&pixels, 1), pretrain_hash(&other_ema, 1));
        let mut represented = other_ema.clone();
        represented.target.kind = ijepa_dsl::config::TargetKind::Representation;
        assert_ne!(pretrain_hash(&represented, 1), pretrain_hash(&Experiment::with_defaults("p"), 1));
    }
}
