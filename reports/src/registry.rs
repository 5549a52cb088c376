//! The run registry: what `runs/<experiment>/<stage>-<hash>/` folders hold, read into plain
//! structs (see `docs/architecture.md`, "Run folder").
//!
//! A pretrain folder holds `manifest.json`, `metrics.csv` and `config.json`; an eval folder
//! holds `eval.json`. Folders with neither a manifest nor an eval file are skipped; a present
//! but malformed file (or a missing `metrics.csv`/`config.json` of a finished pretrain run) is
//! an error naming the file (a malformed `metrics.csv` or `monitor.csv` costs its run only the
//! rows).

use std::fs;
use std::path::{Path, PathBuf};


use crate::error::{ReportError, Result};

pub use ijepa_schema::{CurvePoint, EvalRecord, Manifest, MetricRow, MonitorRow, SweepPoint};

/// A pretraining stage folder.
#[derive(Debug, Clone)]
pub struct PretrainRun {
    /// The folder, e.g. `runs/quickstart/pretrain-1ba8e9dcfe8b`.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// Its metrics, in file order (empty for an unfinished run without metrics yet).
    pub metrics: Vec<MetricRow>,
    /// Its resolved config (`config.json`), when present.
    pub config: Option<serde_json::Value>,
    /// Its learning monitors (`monitor.csv`; empty when the run has none).
    pub monitor: Vec<MonitorRow>,
}

impl PretrainRun {
    /// What its training loss measures, from its config: each recipe's loss is on a scale of its
    /// own (DINO's cross-entropy, MAE's pixel error and I-JEPA's latent regression drew on one
    /// axis, I-JEPA's reading as lowest); `None` without a config.
    pub fn loss_name(&self) -> Option<String> {
        let text = |k: &str| self.config_value(k).and_then(|v| v.as_str());
        let recipe = text("recipe").unwrap_or("ijepa");
        Some(match recipe {
            "ijepa" => {
                let loss = match text("loss") {
                    Some("l2") => "MSE",
                    _ => "smooth-L1",
                };
                let on = if text("target.kind") == Some("pixels") { "normalised pixels" } else { "target representations" };
                format!("I-JEPA: {loss} on {on}")
            }
            "mae" => {
                // (config.json leaves the decoder out while it holds the defaults, whose loss
                // normalises the pixels, MAE's `norm_pix_loss`)
                let norm = self.config_value("decoder.norm_pix_loss").and_then(|v| v.as_bool()).unwrap_or(self.config_value("decoder").is_none());
                format!("MAE: MSE on {}pixels", if norm { "normalised " } else { "" })
            }
            "dino" => "DINO: cross-entropy, student vs teacher".to_string(),
            other => format!("{other}: its loss"),
        })
        .filter(|_| self.config.is_some())
    }

    /// The folder name, e.g. `pretrain-1ba8e9dcfe8b`.
    pub fn name(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The status to show: the manifest's, except `killed` for a `running` run whose process
    /// is gone from this host ([`ijepa_schema::shown_status`]).
    pub fn status(&self) -> String {
        ijepa_schema::shown_status(&self.manifest.status, &self.dir)
    }

    /// A config value by dotted path, e.g. `"encoder.embed_dim"`.
    pub fn config_value(&self, dotted: &str) -> Option<&serde_json::Value> {
        dotted
            .split('.')
            .try_fold(self.config.as_ref()?, |v, k| v.get(k))
    }

    /// Architecture in the `ViT-<dim>x<depth>/<patch>` form the eval files use, after the
    /// preset's name when the encoder names one (`vit-tiny (ViT-16x1/4)`: a preset whose width
    /// or depth the file overrode is not that preset).
    pub fn arch(&self) -> Option<String> {
        let n = |k: &str| self.config_value(k).and_then(|v| v.as_u64());
        let shape = match (n("encoder.embed_dim"), n("encoder.depth"), n("encoder.patch_size")) {
            (Some(w), Some(d), Some(p)) => Some(format!("ViT-{w}x{d}/{p}")),
            _ => None,
        };
        match (self.config_value("encoder.preset").and_then(|v| v.as_str()), shape) {
            (Some(preset), Some(shape)) => Some(format!("{preset} ({shape})")),
            (Some(preset), None) => Some(preset.to_string()),
            (None, shape) => shape,
        }
    }
}

/// An evaluation stage folder.
#[derive(Debug, Clone)]
pub struct EvalRun {
    /// The folder, e.g. `runs/quickstart/eval-linear-0123456789ab`.
    pub dir: PathBuf,
    /// Its `eval.json`.
    pub record: EvalRecord,
}

/// A stage's sweep values: setting -> value.
pub type Varied = std::collections::BTreeMap<String, String>;

/// An evaluation of a pretrained encoder a study's record plans ([`Registry::planned_evals`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedEval {
    /// Its stage folder, `<experiment>/<stage>-<hash>`.
    pub stage: String,
    /// The sweep values it is filed under.
    pub varied: Varied,
    /// The pretraining stage folder it reads; `None` in records of earlier versions.
    pub reads: Option<String>,
}

/// Everything found under a runs folder, sorted by folder path.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// The runs folder that was read.
    pub root: PathBuf,
    /// Pretraining stages.
    pub pretrains: Vec<PretrainRun>,
    /// Evaluation stages.
    pub evals: Vec<EvalRun>,
    /// Stage folders left out because a file of theirs could not be read (a malformed or
    /// missing `manifest.json`, `metrics.csv`, `config.json` or `eval.json`), each with why:
    /// the report covers the others and lists these.
    pub unreadable: Vec<String>,
    /// The files whose last `ijepa run` planned each stage (by its last two path components,
    /// `<experiment>/<stage>-<hash>`; [`ijepa_schema::PlannedStages`]); empty where no record
    /// says.
    pub planned_by: std::collections::HashMap<String, Vec<String>>,
    /// Of the evaluations such a record names, the files whose record says what sweep values it
    /// files the stage under, with those values (empty: a plain file's); records of earlier
    /// versions do not say.
    /// (`None`: a record of an earlier version, which does not say: the evaluation's own values.)
    pub placed_by: std::collections::HashMap<String, Vec<(String, Option<Varied>)>>,
    /// The evaluations of the encoders each study's records plan (study -> stage folder as in
    /// [`Registry::planned_by`], the sweep values it is filed under, the pretraining stage it
    /// reads where the record says): a point the last run never reached is in none of the
    /// folders, only here.
    pub planned_evals: std::collections::HashMap<String, Vec<PlannedEval>>,
}

impl Registry {
    /// The files whose sweep points `experiment`'s sweep table and seed means hold, when they
    /// are more than one: two files that name one experiment (their points differ in what
    /// neither varies, such as `epochs`) were pooled there, their seeds averaged together.
    /// Empty for one file, or where no record says.
    pub fn files_pooled(&self, experiment: &str) -> Vec<String> {
        // (a file whose record files the stage under other values, none for a plain file, does
        // not pool its points here: a plain file sharing a sweep's seed-0 baseline was named)
        let files_of = |e: &EvalRun| -> Vec<String> {
            let stage = ijepa_schema::PlannedStages::stage_of(&e.dir);
            match self.placed_by.get(&stage) {
                Some(placed) => placed.iter().filter(|(_, v)| v.as_ref().is_none_or(|v| *v == e.record.varied)).map(|(f, _)| f.clone()).collect(),
                None => self.planned_by.get(&stage).cloned().unwrap_or_default(),
            }
        };
        let mut files: Vec<String> =
            self.evals.iter().filter(|e| e.record.experiment == experiment && !e.record.varied.is_empty()).flat_map(files_of).collect();
        files.sort();
        files.dedup();
        if files.len() > 1 { files } else { Vec::new() }
    }

    /// Keeps, of the stages belonging to `experiments`, only those whose folders are among
    /// `dirs` (compared by their last two components, `<experiment>/<stage>-<hash>`); the
    /// stages of other experiments stay. The report `ijepa run` writes at the end of a study
    /// uses this: it covers the study as it is now, not the stages an earlier version of it
    /// left in the runs folder (another `k`, another grid), which `ijepa report` of the folder
    /// still shows. Returns how many stages were left out.
    pub fn retain_stages(&mut self, experiments: &[String], dirs: &[PathBuf]) -> usize {
        let tail = |p: &Path| -> Option<(std::ffi::OsString, std::ffi::OsString)> {
            Some((p.parent()?.file_name()?.to_owned(), p.file_name()?.to_owned()))
        };
        let keep: std::collections::HashSet<_> = dirs.iter().filter_map(|d| tail(d)).collect();
        let wanted = |exp: &str, dir: &Path| !experiments.iter().any(|e| e == exp) || tail(dir).is_some_and(|t| keep.contains(&t));
        let before = self.pretrains.len() + self.evals.len();
        // a pretraining is named after its point: one of a point the study no longer has is
        // the study's by the study its manifest records (it was shown as another experiment's)
        self.pretrains.retain(|r| wanted(r.manifest.study.as_deref().filter(|s| experiments.iter().any(|e| e == s)).unwrap_or(&r.manifest.experiment), &r.dir));
        self.evals.retain(|e| wanted(&e.record.experiment, &e.dir));
        before - self.pretrains.len() - self.evals.len()
    }

    /// Gives each evaluation whose folder is among `stages` (compared by their last two
    /// components, `<experiment>/<stage>-<hash>`) the varied settings given with it. A baseline
    /// shared with another file of the same study (a plain file and its sweep) records those
    /// of the file that ran it first; the report `ijepa run` writes places it by its stage in
    /// that run's plan (the plain file's report showed the sweep's baselines in a sweep section
    /// of their own, the sweep's report its baselines as plain rows).
    pub fn place_evals<'a>(&mut self, stages: impl IntoIterator<Item = (&'a Path, &'a std::collections::BTreeMap<String, String>)>) {
        let varied: std::collections::HashMap<PathBuf, &std::collections::BTreeMap<String, String>> =
            stages.into_iter().map(|(dir, v)| (crate::figures::tail2(dir), v)).collect();
        for e in &mut self.evals {
            if let Some(v) = varied.get(&crate::figures::tail2(&e.dir)) {
                e.record.varied = (*v).clone();
            }
        }
    }

    /// Leaves out the stages of earlier versions of experiment files, as the last `ijepa run`
    /// of each recorded it ([`load_registry`] does this; the report `ijepa run` writes does it
    /// after [`Registry::retain_stages`], for the folder's other studies). Returns what it
    /// left out, as listed in [`Registry::unreadable`].
    pub fn leave_out_earlier_versions(&mut self) -> Vec<String> {
        let left_out = earlier_versions_left_out(self);
        self.unreadable.extend(left_out.iter().cloned());
        left_out
    }

    /// When the folder read holds none of our runs (and no unreadable one, which is reported as
    /// such): a warning naming the folder and what to pass instead. Whoever reports on it
    /// gets tables with only the paper's rows, so a wrong folder (an experiment folder
    /// `runs/<experiment>` instead of `runs`, an empty or unrelated one) is worth a word;
    /// not an error, since the paper's numbers alone may be what is wanted.
    pub fn no_runs_warning(&self) -> Option<String> {
        if !(self.pretrains.is_empty() && self.evals.is_empty() && self.unreadable.is_empty()) {
            return None;
        }
        let subdirs = |d: &Path| sorted_subdirs(d).unwrap_or_default();
        let stage = |d: &Path| {
            d.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("pretrain-") || n.starts_with("eval-"))
        };
        let root = &self.root;
        let children = subdirs(root);
        let runs: Vec<&PathBuf> = children.iter().filter(|d| subdirs(d).iter().any(|e| subdirs(e).iter().any(|s| stage(s)))).collect();
        let hint = if let Some(s) = children.iter().find(|d| stage(d)) {
            let parent = root.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            format!(
                "it looks like an experiment folder (it holds stage folders such as `{}`): pass its parent, `{}`",
                s.file_name().unwrap_or_default().to_string_lossy(),
                parent.display()
            )
        } else if let [one] = runs[..] {
            format!("it holds a runs folder: pass `{}`", one.display())
        } else if !runs.is_empty() {
            let named: Vec<String> = runs.iter().take(3).map(|r| format!("`{}`", r.display())).collect();
            let more = if runs.len() > 3 { ", ..." } else { "" };
            format!("it holds {} runs folders ({}{more}): pass one of them", runs.len(), named.join(", "))
        } else {
            let what = if children.is_empty() { "it holds no folders" } else { "none of its folders holds stage folders" };
            format!("{what}: pass the runs folder, whose `<experiment>/` folders hold `pretrain-<hash>` and `eval-...` stage folders (`runs` by default)")
        };
        Some(format!("{} holds no runs, so the report has only the paper's numbers: {hint}", root.display()))
    }

    /// Experiment names that have at least one run, sorted; a study whose points ran counts,
    /// evaluated or not (every point of a sweep diverged, or `run --only` pretrained them: the
    /// study was missing and each point shown as an experiment of its own).
    pub fn experiments(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .pretrains
            .iter()
            .flat_map(|r| std::iter::once(r.manifest.experiment.clone()).chain(r.manifest.study.clone()))
            .chain(self.evals.iter().map(|e| e.record.experiment.clone()))
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// Reads every `RUNS/*/*/` stage folder (`pretrain-<12 hex digits>`, `eval-...-<12 hex
/// digits>`): pretrain manifests with their metrics and configs, and `eval.json` files; a
/// folder of another name holding a stage's record (a copy) is left out and listed.
///
/// A stage folder with a present but malformed `manifest.json`, `config.json` or `eval.json`
/// (or a finished pretrain run without its `metrics.csv` / `config.json`) is left out and
/// listed in [`Registry::unreadable`] with the error naming the file; a malformed
/// `metrics.csv` or `monitor.csv` is listed there too, and its run kept without its rows.
///
/// # Errors
/// An unreadable `runs` folder or experiment folder.
pub fn load_registry(runs: &Path) -> Result<Registry> {
    let mut reg = load_registry_for(runs, &[])?;
    reg.leave_out_earlier_versions();
    reg.file_under_each_placement(&[]);
    Ok(reg)
}

/// Takes out of `reg` (saying why of each) the stages of an earlier version of an experiment file: of each study
/// whose folder records what the last `ijepa run` of a file planned
/// ([`ijepa_schema::PlannedStages`]), the stages no such record names. A report of the whole
/// folder, which holds every version, showed a point's `k 10` and `k 5` results (or those of a
/// pretraining run again with other settings) side by side, and a sweep's figure averaged them
/// as if they were seeds. A stage another file's record names is kept (a plain file that reads a
/// sweep's pretraining), as is an evaluation of a checkpoint given to `ijepa eval`, which no
/// plan names; a study without a record (run by an earlier version) is shown whole.
fn earlier_versions_left_out(reg: &mut Registry) -> Vec<String> {
    let mut stages: std::collections::HashSet<String> = std::collections::HashSet::new();
    // each experiment a record covers, with the files whose records do
    let mut by_experiment: std::collections::BTreeMap<String, Vec<String>> = std::collections::BTreeMap::new();
    // the experiments some file's record plans stages of
    let mut planning: std::collections::HashSet<String> = std::collections::HashSet::new();
    for exp_dir in sorted_subdirs(&reg.root).unwrap_or_default() {
        let files = ijepa_schema::PlannedStages::records_in(&exp_dir);
        let read: Vec<_> = files.iter().map(|f| read_json::<ijepa_schema::PlannedStages>(f)).collect();
        // a damaged record's file is not known: its study is shown whole, the other files'
        // records of it set aside too (their study's stages not theirs were left out as
        // earlier versions, the damaged one's current ones among them)
        if let Some(e) = read.iter().find_map(|r| r.as_ref().err()) {
            reg.unreadable.push(format!("{e}: its study is shown whole"));
            continue;
        }
        for planned in read.into_iter().flatten() {
            // (a record emptied when its file renamed its experiment plans nothing here now)
            if !planned.stages.is_empty() {
                planning.extend(planned.experiments.iter().cloned());
            }
            // (the study: the folder the record lies in, where it is one of the record's)
            let folder = exp_dir.file_name().map(|n| n.to_string_lossy().into_owned());
            let study = folder.filter(|f| planned.experiments.contains(f)).or_else(|| planned.experiments.first().cloned());
            for e in planned.experiments {
                // (once: a link to a study's folder holds its records too)
                let files = by_experiment.entry(e).or_default();
                if !files.contains(&planned.file) {
                    files.push(planned.file.clone());
                }
            }
            for stage in &planned.stages {
                let files = reg.planned_by.entry(stage.clone()).or_default();
                if !files.contains(&planned.file) {
                    files.push(planned.file.clone());
                }
                let values = planned.varied.as_ref().and_then(|v| v.get(stage));
                let baseline = stage.contains("/eval-") && (stage.contains("-random-init-") || stage.contains("-raw-pixels-"));
                if let (Some(study), Some(v), false) = (&study, values, baseline) {
                    let reads = planned.reads.as_ref().and_then(|r| r.get(stage)).cloned();
                    reg.planned_evals.entry(study.clone()).or_default().push(PlannedEval { stage: stage.clone(), varied: v.clone(), reads });
                }
                let placed = reg.placed_by.entry(stage.clone()).or_default();
                let here = (planned.file.clone(), planned.varied.as_ref().map(|v| v.get(stage).cloned().unwrap_or_default()));
                if !placed.contains(&here) {
                    placed.push(here);
                }
            }
            stages.extend(planned.stages);
        }
    }
    let earlier = |exp: &str, dir: &Path| by_experiment.contains_key(exp) && !stages.contains(&ijepa_schema::PlannedStages::stage_of(dir));
    let why = |dir: &Path, exp: &str| {
        let files = by_experiment.get(exp).map_or(String::new(), |f| f.join(", "));
        // (a stage in a folder not named for its study: a copy, or a link, of its folder)
        let folder = dir.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // (the same stage folder planned in another folder: a copied or moved experiment
        // folder, `tiny-old/`, which reads as one of the study's points (one of another name is
        // said below); "an earlier version's" sent the user looking for a change that was not
        // there)
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let here = ijepa_schema::PlannedStages::stage_of(dir);
        let twin = stages.iter().filter(|s| **s != here).find(|s| s.rsplit_once('/').is_some_and(|(_, n)| n == name));
        // (but an experiment no file plans any more was renamed: a baseline's hash leaves the
        // experiment's name out, so the new name's folder holds its twin, and it read as a copy)
        let renamed = !planning.contains(exp);
        if let Some(planned) = twin.filter(|_| folder_of(&folder, exp) && !renamed) {
            return format!(
                "{}: a copy of the stage {planned} in another folder ({folder}: a copied or moved folder?); the last `ijepa run` of {files} planned it in its own folder",
                dir.display()
            );
        }
        match !folder_of(&folder, exp) {
            true => format!(
                "{}: a stage of {exp} in a folder of another name ({folder}: a copy of its folder, or a link to it?); the last `ijepa run` of {files} planned {exp}'s stages in its own folder",
                dir.display()
            ),
            // (the file names another experiment now: its record here was emptied)
            false if !planning.contains(exp) => format!(
                "{}: the last `ijepa run` of {files} planned no stage of {exp}: the file names another experiment now (this is the old name's)",
                dir.display()
            ),
            false => format!("{}: the last `ijepa run` of {files} planned other stages for {exp} (this one is an earlier version's, or of a file run before plans were recorded)", dir.display()),
        }
    };
    let mut left_out = Vec::new();
    reg.pretrains.retain(|r| {
        let exp = r.manifest.study.as_deref().filter(|s| by_experiment.contains_key(*s)).unwrap_or(&r.manifest.experiment);
        let keep = !earlier(exp, &r.dir);
        if !keep {
            left_out.push(why(&r.dir, exp));
        }
        keep
    });
    // an `ijepa eval` of a checkpoint: kept whatever the last plan; so are the baselines it ran
    // beside it (a baseline records no checkpoint, and an eval's were left out as an earlier
    // version's once the file's eval settings had changed since its last `ijepa run`): those
    // of its experiment and protocol, at its settings, on the same images where both records
    // say which (an earlier version's baseline of other data but the same settings was kept
    // beside it too; a record written before the fingerprints or the list digests were
    // recorded says nothing of them, and is not held to them)
    let given = |e: &EvalRun| e.record.pretrain_dir.is_none() && e.record.checkpoint.as_deref().is_some_and(|c| !c.is_empty());
    let beside: Vec<ijepa_schema::EvalRecord> = reg.evals.iter().filter(|e| given(e)).map(|e| e.record.clone()).collect();
    let baseline = |e: &EvalRun| matches!(e.record.model.as_str(), "random-init" | "raw-pixels");
    let beside_given = |e: &EvalRun| {
        let b = &e.record;
        baseline(e)
            && b.pretrain_dir.is_none()
            && beside.iter().any(|g| {
                g.experiment == b.experiment
                    && g.protocol == b.protocol
                    && g.resolution == b.resolution
                    && g.fraction == b.fraction
                    && (g.train_examples, g.test_examples) == (b.train_examples, b.test_examples)
                    && (g.inputs.is_empty() || b.inputs.is_empty() || g.inputs == b.inputs)
                    && (g.data_fingerprints.is_none() || b.data_fingerprints.is_none() || g.data_fingerprints == b.data_fingerprints)
                    && b.settings.iter().all(|(k, v)| g.settings.get(k) == Some(v))
            })
    };
    reg.evals.retain(|e| {
        let keep = given(e) || beside_given(e) || !earlier(&e.record.experiment, &e.dir);
        if !keep {
            left_out.push(why(&e.dir, &e.record.experiment));
        }
        keep
    });
    left_out
}

impl Registry {
    /// Files each evaluation, except those of the experiments `except` (placed by the report of
    /// a plan, [`Registry::place_evals`]), under the sweep values every file's record places it
    /// at: a baseline a plain file and its sweep share (one stage) recorded the values of the
    /// file that ran it first, and was shown under that file alone (the other file's seed mean
    /// of the baseline counted one seed fewer, or its table had no baseline row). One shown per
    /// placement, the record's own first.
    pub fn file_under_each_placement(&mut self, except: &[String]) {
        let mut more = Vec::new();
        for e in self.evals.iter_mut().filter(|e| !except.contains(&e.record.experiment)) {
            let Some(placed) = self.placed_by.get(&ijepa_schema::PlannedStages::stage_of(&e.dir)) else { continue };
            // (a record of an earlier version files it under the values it recorded)
            let mut values: Vec<std::collections::BTreeMap<String, String>> = placed.iter().map(|(_, v)| v.clone().unwrap_or_else(|| e.record.varied.clone())).collect();
            values.sort();
            values.dedup();
            if !values.contains(&e.record.varied) {
                // (no record files it under the values it recorded: the first record's)
                match values.first() {
                    Some(v) => e.record.varied = v.clone(),
                    None => continue,
                }
            }
            for v in values.into_iter().filter(|v| *v != e.record.varied) {
                let mut copy = e.clone();
                copy.record.varied = v;
                more.push(copy);
            }
        }
        self.evals.extend(more);
        self.evals.sort_by(|a, b| a.dir.cmp(&b.dir));
    }
}

/// [`load_registry`] for the report of a plan whose stages are in the folders `stages`: of two
/// copies of a stage, the one in the plan's folder is kept. (A point renamed when a new value
/// took its folder name, `-2`, runs its evaluation again in its new folder while its
/// pretraining, found by hash, stays in the old one: the old folder's record, beside the
/// pretraining, was kept as the original and the new one left out as its copy, and the report
/// of the plan, which covers only its own folders, then showed neither.)
///
/// # Errors
/// An unreadable `runs` folder or experiment folder.
pub fn load_registry_for(runs: &Path, stages: &[PathBuf]) -> Result<Registry> {
    let mut reg = Registry {
        root: runs.to_path_buf(),
        ..Registry::default()
    };
    for exp_dir in sorted_subdirs(runs)? {
        for dir in sorted_subdirs(&exp_dir)? {
            let eval_path = dir.join(ijepa_schema::EVAL);
            let manifest_path = dir.join(ijepa_schema::MANIFEST);
            let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
            // the folder's name says what it is: a stray eval.json in a pretraining's folder
            // hid the run, and a copy of a stage folder (`eval-...-0123456789ab.bak`) counted
            // its rows twice
            let staged = stage_name(&name);
            let read = if staged && name.starts_with("eval-") && eval_path.is_file() {
                read_json(&eval_path)
                    .and_then(|record: EvalRecord| percentages(&eval_path, record))
                    .and_then(|record| record_of_folder(&dir, &name, record))
                    .map(|record| reg.evals.push(EvalRun { dir, record }))
            } else if staged && name.starts_with("pretrain-") && manifest_path.is_file() {
                if eval_path.is_file() {
                    reg.unreadable.push(format!("{}: an evaluation's record in a pretraining's folder: ignored (the run is shown)", eval_path.display()));
                }
                read_json(&manifest_path).and_then(|manifest: Manifest| {
                    // (a copy of the folder under another stage's name: counted twice where
                    // no plan record named the stages)
                    if let Some(other) = manifest.other_stage(&dir) {
                        return Err(ReportError::NotAStage {
                            dir: dir.clone(),
                            why: format!("its manifest.json is the record of the stage {other}, not of the one its name says"),
                        });
                    }
                    if manifest.stage == "pretrain" {
                        let (run, monitor_error) = load_pretrain(dir, manifest)?;
                        reg.pretrains.push(run);
                        // a damaged monitor.csv costs the monitor's figure, not the run
                        reg.unreadable.extend(monitor_error);
                    }
                    Ok(())
                })
            } else if staged && name.starts_with("pretrain-") {
                Err(ReportError::Missing { path: manifest_path, what: "pretrain run" })
            } else if staged && name.starts_with("eval-") {
                // a failed evaluation is named, not silently absent from the tables
                Err(ReportError::Unfinished { dir: dir.clone() })
            } else if eval_path.is_file() || manifest_path.is_file() {
                Err(ReportError::NotAStage {
                    dir: dir.clone(),
                    why: "it holds a stage's record but its name is not a stage folder's (`pretrain-<12 hex digits>`, \
                          `eval-<protocol>-<model>-<12 hex digits>`)"
                        .into(),
                })
            } else {
                Ok(())
            };
            // one damaged folder does not hide every other run: it is listed instead
            if let Err(e) = read {
                reg.unreadable.push(e.to_string());
            }
        }
    }
    let planned: std::collections::HashSet<PathBuf> = stages.iter().map(|d| crate::figures::tail2(d)).collect();
    leave_out_copies(&mut reg, &planned);
    leave_out_outdated(&mut reg);
    name_checkpoints_apart(&mut reg.evals);
    Ok(reg)
}

/// Names apart the checkpoint files given to `ijepa eval` that share a name: an evaluation
/// of a file is named by it (`I-JEPA (final.safetensors)`), and the final checkpoints of two
/// runs read alike in every table and drew one legend entry, in one colour, for both. Each is
/// named instead by the fewest trailing components of its path that tell the files apart
/// (`I-JEPA (pretrain-a17e6aa8ebf3/checkpoints/final.safetensors)`). One file (by its SHA-256,
/// else its path) keeps one name, whichever protocols evaluated it and however its path was
/// written; files that one path gave (written again between two `ijepa eval`s) are named by
/// it and the start of their SHA-256 (`I-JEPA (final.safetensors, SHA-256 9f86d081884c)`).
fn name_checkpoints_apart(evals: &mut [EvalRun]) {
    use std::collections::{BTreeMap, BTreeSet};
    // (the file's name, and the method's prefix before it, of an evaluation of a given file
    // whose method reads `<recipe> (<file name>)`)
    let named_by_file = |e: &EvalRun| -> Option<(String, String)> {
        let path = Path::new(e.record.checkpoint.as_deref().filter(|_| e.record.pretrain_dir.is_none())?);
        let file = path.file_name()?.to_str()?;
        let prefix = e.record.method.strip_suffix(&format!(" ({file})"))?;
        Some((prefix.to_string(), file.to_string()))
    };
    let identity = |e: &EvalRun| e.record.checkpoint_sha256.clone().or_else(|| e.record.checkpoint.clone()).unwrap_or_default();
    // per name: each file (its identity) and the first path it was given by
    let mut files: BTreeMap<(String, String), BTreeMap<String, String>> = BTreeMap::new();
    for e in evals.iter() {
        if let (Some(key), Some(path)) = (named_by_file(e), e.record.checkpoint.clone()) {
            files.entry(key).or_default().entry(identity(e)).or_insert(path);
        }
    }
    // (the identities that are SHA-256s)
    let evals_sha: BTreeSet<String> = evals.iter().filter_map(|e| e.record.checkpoint_sha256.clone()).collect();
    let parts = |path: &str| path.split('/').filter(|c| !c.is_empty()).map(str::to_string).collect::<Vec<_>>();
    let tail = |path: &str, n: usize| {
        let p = parts(path);
        p[p.len().saturating_sub(n)..].join("/")
    };
    for e in evals.iter_mut() {
        let Some(key) = named_by_file(e) else { continue };
        let same = &files[&key];
        if same.len() < 2 {
            continue;
        }
        // (the paths: two files may have been given by one)
        let paths: BTreeSet<&String> = same.values().collect();
        let longest = paths.iter().map(|p| parts(p).len()).max().unwrap_or(1);
        let n = (1..=longest).find(|&n| paths.iter().map(|p| tail(p, n)).collect::<BTreeSet<_>>().len() == paths.len()).unwrap_or(longest);
        let name = tail(&same[&identity(e)], n);
        // (no end of the path tells them apart: one path, files of other contents, each told
        // by its SHA-256 where two or more record one; a record of an earlier version, which
        // recorded none, keeps the path's name: it may be one of those files)
        let recorded = same.iter().filter(|(id, p)| tail(p, n) == name && evals_sha.contains(id.as_str())).count();
        let name = match (recorded > 1, &e.record.checkpoint_sha256) {
            (true, Some(sha)) => format!("{name}, SHA-256 {}", sha.chars().take(12).collect::<String>()),
            _ => name,
        };
        e.record.method = format!("{} ({name})", key.0);
    }
}

/// Leaves out (and lists) the copies of a stage: the same stage folder (its name and hash)
/// holding the record of the same experiment (and sweep point) in two experiment folders, as a
/// copied experiment folder (`runs/plain (copy)/`, `runs/x-seed-0.bak/`) leaves them: each row
/// counted twice and skewed a seed mean. Kept: the one in the folder the run writes (a
/// pretraining's own experiment's; an evaluation's beside its pretraining, or its study's for
/// a baseline), else the first by path; before either, one in a folder of `planned` (the
/// stage folders of the plan reported on, by their last two components).
fn leave_out_copies(reg: &mut Registry, planned: &std::collections::HashSet<PathBuf>) {
    fn parent_name(dir: &Path) -> String {
        dir.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }
    fn stage_of(dir: &Path) -> String {
        dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }
    /// Keeps of each group of equal keys (`(key, how much at home, what it is)` an item: 2 in
    /// a planned folder, 1 where the run writes it, 0 elsewhere) the one most at home, else the
    /// first; says what it leaves out.
    fn keep_one<T>(items: &mut Vec<T>, keys: Vec<(String, u8, String)>, dir: impl Fn(&T) -> &Path, left_out: &mut Vec<String>) {
        let mut chosen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for (i, (key, home, _)) in keys.iter().enumerate() {
            let best = *chosen.entry(key).or_insert(i);
            if *home > keys[best].1 {
                chosen.insert(key, i);
            }
        }
        let kept: Vec<bool> = (0..keys.len()).map(|i| chosen[keys[i].0.as_str()] == i).collect();
        let mut i = 0;
        items.retain(|item| {
            let k = kept[i];
            if !k {
                left_out.push(format!("{}: a copy of {} found in another folder (its rows would count twice)", dir(item).display(), keys[i].2));
            }
            i += 1;
            k
        });
    }
    let home = |dir: &Path, written_here: bool| if planned.contains(&crate::figures::tail2(dir)) { 2 } else { u8::from(written_here) };
    let mut left_out = Vec::new();
    let keys = reg
        .pretrains
        .iter()
        .map(|r| {
            let (stage, exp) = (stage_of(&r.dir), &r.manifest.experiment);
            (format!("{stage}\0{exp}"), home(&r.dir, parent_name(&r.dir) == *exp), format!("the stage {stage} of {exp}"))
        })
        .collect();
    keep_one(&mut reg.pretrains, keys, |r| r.dir.as_path(), &mut left_out);
    let keys = reg
        .evals
        .iter()
        .map(|e| {
            let beside = match e.record.pretrain_dir.as_deref() {
                Some(p) => parent_name(Path::new(p)),
                None => e.record.experiment.clone(),
            };
            let (stage, exp) = (stage_of(&e.dir), &e.record.experiment);
            (format!("{stage}\0{exp}\0{:?}", e.record.varied), home(&e.dir, parent_name(&e.dir) == beside), format!("the evaluation {stage} of {exp}"))
        })
        .collect();
    keep_one(&mut reg.evals, keys, |e| e.dir.as_path(), &mut left_out);
    reg.unreadable.extend(left_out);
}

/// Leaves out (and lists) each evaluation of a checkpoint that is no longer its pretraining's
/// final one: the pretraining ran again since (`--force` from another file that shares it) or
/// is running again, with another final checkpoint or none yet. `ijepa plan` counts such an
/// evaluation to run again; the report showed its number beside the new run. A pretraining
/// not in this runs folder cannot be checked: its evaluations are kept.
///
/// Likewise an evaluation of one of a run's checkpoints given to `ijepa eval` (its `latest`
/// while it trained): when the run's manifest records another file under that name now (a
/// `latest` written since, at another step), the weights it measured are gone: left out (it
/// was shown under the file's name beside weights it never measured).
fn leave_out_outdated(reg: &mut Registry) {
    let root = reg.root.clone();
    let runs: std::collections::HashMap<PathBuf, &PretrainRun> = reg.pretrains.iter().map(|r| (crate::figures::tail2(&r.dir), r)).collect();
    // (the run's `<experiment>/pretrain-<hash>` and the file's record in its manifest, for a
    // checkpoint that lies in the `checkpoints/` folder of a run of this runs folder: the
    // same file, not a copy of the run elsewhere, whose file is still what was measured)
    let in_run = |checkpoint: &str| {
        let path = Path::new(checkpoint);
        let file = path.file_name()?.to_str()?;
        let run = path.parent().filter(|d| d.file_name() == Some(ijepa_schema::CHECKPOINTS.as_ref()))?.parent()?;
        let run = crate::figures::tail2(run);
        let ours = runs.get(&run)?;
        let here = ours.dir.join(ijepa_schema::CHECKPOINTS).join(file);
        match path.canonicalize() {
            Ok(path) if path != here.canonicalize().ok()? => return None,
            Ok(_) => {}
            // (a relative path, as earlier versions recorded it, from a folder other than the
            // one the report runs in: the run of this runs folder its components name; the
            // report's result depended on the folder it was run from)
            Err(_) if path.is_relative() => {}
            Err(_) => return None,
        }
        let record = ours.manifest.checkpoint(file)?;
        Some((run, file.to_string(), record.clone()))
    };
    let mut left_out = Vec::new();
    reg.evals.retain(|e| {
        if e.record.pretrain_dir.is_none() {
            let given = e.record.checkpoint.as_deref().zip(e.record.checkpoint_sha256.as_deref());
            if let Some((run, file, now)) = given.and_then(|(c, read)| in_run(c).filter(|(_, _, now)| now.sha256 != read)) {
                left_out.push(format!(
                    "{}: evaluated {file} of {}{}, which has been written again since (now the one of step {}); `ijepa eval` it again",
                    e.dir.display(),
                    run.display(),
                    e.record.checkpoint_step.map(|s| format!(" at step {s}")).unwrap_or_default(),
                    now.step
                ));
                return false;
            }
            return true;
        }
        let Some(pretrain) = e.record.pretrain_dir.as_deref().map(|d| crate::figures::tail2(Path::new(d))) else { return true };
        // (a pretraining left out as a copy of another stage's folder: what was evaluated there
        // is that stage's weights, filed as this one's; `ijepa plan` counts it to run again)
        if !runs.contains_key(&pretrain) {
            let dir = root.join(&pretrain);
            if let Some(other) = ijepa_schema::read_manifest(&dir).and_then(|m| m.other_stage(&dir)) {
                left_out.push(format!("{}: evaluated {}, whose manifest.json is the record of the stage {other} (a copy or a renamed stage folder)", e.dir.display(), pretrain.display()));
                return false;
            }
        }
        // (its final checkpoint now: "" where it has none yet; none known for a finished run
        // whose manifest, of a version before 2026-11-30, records none: its evaluations were
        // left out as of a run "trained again since, not finished")
        let final_now = runs.get(&pretrain).and_then(|r| match r.manifest.checkpoint(ijepa_schema::FINAL) {
            Some(c) => Some(c.sha256.as_str()),
            None if r.manifest.is_done() => None,
            None => Some(""),
        });
        match final_now {
            Some(now) if ijepa_schema::eval_outdated(&e.record, Some(now)) => {
                left_out.push(format!(
                    "{}: evaluated a checkpoint that is no longer the final one of its pretraining {} ({}); `ijepa run` evaluates it again",
                    e.dir.display(),
                    pretrain.display(),
                    if now.is_empty() { "trained again since, not finished" } else { "trained again since" }
                ));
                false
            }
            _ => true,
        }
    });
    reg.unreadable.extend(left_out);
}

/// Whether `name` is a stage folder's: `pretrain-` or `eval-...-`, then the 12 hex digits of
/// the stage's hash.
pub(crate) fn stage_name(name: &str) -> bool {
    let hex = |h: &str| h.len() == 12 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    match name.rsplit_once('-') {
        Some(("pretrain", h)) => hex(h),
        Some((stage, h)) => stage.starts_with("eval-") && hex(h),
        None => false,
    }
}

/// Whether a folder of a runs folder named `folder` is `experiment`'s: its own, or one of its
/// sweep points' (`<experiment>-<point>`).
pub(crate) fn folder_of(folder: &str, experiment: &str) -> bool {
    folder == experiment || folder.strip_prefix(experiment).is_some_and(|r| r.starts_with('-'))
}

/// `record` when it is a record of the evaluation its folder `name` names
/// ([`EvalRecord::of_folder`]): an `eval.json` copied into another protocol's folder showed its
/// row twice, and one whose protocol was edited showed a kNN score in the linear table.
fn record_of_folder(dir: &Path, name: &str, record: EvalRecord) -> Result<EvalRecord> {
    match record.of_folder(name) {
        Ok(()) => Ok(record),
        Err(why) => Err(ReportError::NotAStage { dir: dir.to_path_buf(), why }),
    }
}

/// `record` when its accuracies (the test top-1, the held-out sweep's, the curve's) are
/// percentages: a hand-edited 150, -5 or 1e308 was printed as measured. A sweep point may be
/// NaN (its training diverged).
fn percentages(path: &Path, record: EvalRecord) -> Result<EvalRecord> {
    record.percentages().map_err(|message| ReportError::Invalid { path: path.to_path_buf(), message })?;
    Ok(record)
}

/// A pretraining folder's run, and why its `monitor.csv`, `metrics.csv` or `config.json` could
/// not be read, if so (the run is kept without their rows or settings: its status, steps and
/// warnings are still read; a finished run without one of them was left out of the report
/// whole, its evaluations shown without it).
fn load_pretrain(dir: PathBuf, manifest: Manifest) -> Result<(PretrainRun, Option<String>)> {
    let done = manifest.is_done();
    // (a finished run's rows past its steps are another run's file copied in: drawn as its
    // curves without a word; an earlier version's manifest that records no steps is not
    // compared)
    let past = |last: Option<u64>| last.filter(|&last| done && manifest.steps > 0 && last > manifest.steps as u64);
    let metrics_path = dir.join(ijepa_schema::METRICS);
    let curves = "the run is shown without its loss and schedule figures";
    let (metrics, metrics_error) = if metrics_path.symlink_metadata().is_ok() {
        match read_metrics(&metrics_path) {
            Ok(rows) => match past(rows.iter().map(|r| r.step).max()) {
                Some(last) => (Vec::new(), Some(format!("{}: rows up to step {last}, past the run's {} steps (another run's file?) ({curves})", metrics_path.display(), manifest.steps))),
                None => (rows, None),
            },
            Err(e) => (Vec::new(), Some(format!("{e} ({curves})"))),
        }
    } else if done {
        (Vec::new(), Some(format!("{}: missing ({curves})", metrics_path.display())))
    } else {
        (Vec::new(), None)
    };
    let config_path = dir.join(ijepa_schema::CONFIG_JSON);
    let settings = "the run is shown without its settings; the next `ijepa run` of its file writes it again";
    let (config, config_error) = if config_path.symlink_metadata().is_ok() {
        match read_json::<serde_json::Value>(&config_path) {
            Ok(c) if c.is_object() => (Some(c), None),
            // (JSON that holds no settings, `null` or `[]`, showed the run with empty cells)
            Ok(_) => (None, Some(format!("{}: not a JSON object ({settings})", config_path.display()))),
            Err(e) => (None, Some(format!("{e} ({settings})"))),
        }
    } else if done {
        (None, Some(format!("{}: missing ({settings})", config_path.display())))
    } else {
        (None, None)
    };
    let monitor_path = dir.join(ijepa_schema::MONITOR);
    // (anything under that name but a file, a folder, is read and named: its figure was left
    // out without a word)
    let without = "the run is shown without its monitor rows";
    let (monitor, mut monitor_error) = match std::fs::symlink_metadata(&monitor_path).is_ok().then(|| read_monitor(&monitor_path)) {
        Some(Ok(rows)) if past(rows.iter().map(|r| r.step).max()).is_some() => {
            (Vec::new(), Some(format!("{}: rows past the run's {} steps (another run's file?) ({without})", monitor_path.display(), manifest.steps)))
        }
        // (a finished run monitors at its epoch 0 at least: a file of its header alone is
        // damaged, whose curves were left out of the figure without a word)
        Some(Ok(rows)) if rows.is_empty() && done => (Vec::new(), Some(format!("{}: no rows, though the run finished ({without})", monitor_path.display()))),
        Some(Ok(rows)) => (rows, None),
        Some(Err(e)) => (Vec::new(), Some(format!("{e} ({without})"))),
        // a finished run whose config monitors it wrote the file at its epoch 0: its figure
        // was left out without a word while its warnings were still listed
        None if done && config.as_ref().is_some_and(|c: &serde_json::Value| c.get("monitor").is_some_and(serde_json::Value::is_object)) => (
            Vec::new(),
            Some(format!("{}: missing, though the run's config.json monitors it (the run is shown without its monitor figure)", monitor_path.display())),
        ),
        None => (Vec::new(), None),
    };
    // a finished run logs a row every `log_every` steps: none where it trained that many is a
    // damaged file, whose loss and schedule figures would be missing without a word
    let log_every = config.as_ref().and_then(|c: &serde_json::Value| c.get("log_every")).and_then(serde_json::Value::as_u64).unwrap_or(1).max(1);
    let no_rows = (metrics_error.is_none() && done && metrics.is_empty() && manifest.steps as u64 >= log_every)
        .then(|| format!("{}: no rows, though the run trained {} steps (the run is shown without its loss and schedule figures)", metrics_path.display(), manifest.steps));
    for note in metrics_error.into_iter().chain(no_rows).chain(config_error) {
        monitor_error = Some(match monitor_error {
            Some(e) => format!("{e}; {note}"),
            None => note,
        });
    }
    let run = PretrainRun {
        dir,
        manifest,
        metrics,
        config,
        monitor,
    };
    Ok((run, monitor_error))
}

fn sorted_subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| ReportError::io(dir, e))? {
        let path = entry.map_err(|e| ReportError::io(dir, e))?.path();
        // hidden folders are not runs (e.g. `.pretrain-<hash>.old-<time>`, set aside by --force)
        let hidden = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
        if path.is_dir() && !hidden {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = ijepa_schema::read_text(path).map_err(|e| ReportError::io(path, e))?;
    serde_json::from_str(&text).map_err(|source| ReportError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a `metrics.csv` by header name (columns may be added or reordered over versions).
pub fn read_metrics(path: &Path) -> Result<Vec<MetricRow>> {
    let csv_err = |message: String| ReportError::Csv {
        path: path.to_path_buf(),
        message,
    };
    let bytes = ijepa_schema::read_file(path).map_err(|e| csv_err(e.to_string()))?;
    let mut rdr = csv::Reader::from_reader(bytes.as_slice());
    let headers = rdr.headers().map_err(|e| csv_err(e.to_string()))?.clone();
    let find = |name: &str| headers.iter().position(|h| h.trim() == name);
    let (Some(i_step), Some(i_loss)) = (find("step"), find("loss")) else {
        return Err(csv_err("header lacks a `step` or `loss` column".into()));
    };
    let (i_epoch, i_lr, i_wd, i_momentum, i_ms, i_ips) =
        (find("epoch"), find("lr"), find("wd"), find("momentum").or(find("teacher_momentum")), find("ms_per_step"), find("img_per_s"));
    let mut rows = Vec::new();
    let mut records = rdr.records().enumerate().peekable();
    while let Some((n, rec)) = records.next() {
        // the last row torn by a crash (a run killed mid-write: `ijepa run` drops it when it
        // resumes) is left out, not the whole run
        let last = records.peek().is_none();
        let rec = match rec {
            Ok(r) if last && r.len() != headers.len() => break,
            Err(_) if last => break,
            r => r.map_err(|e| csv_err(e.to_string()))?,
        };
        // (the file's line, blank lines counted: the record's count named the line before; the
        // reader's position is where the record before it ended, before the blank lines; a
        // lone `\r` ends a line too, which the reader's own count leaves out; counted only for
        // a message)
        let line = || {
            rec.position().map_or(n + 2, |p| {
                let start = p.byte() as usize + bytes.get(p.byte() as usize..).unwrap_or_default().iter().take_while(|b| matches!(b, b'\n' | b'\r')).count();
                1 + bytes.get(..start).unwrap_or_default().iter().enumerate().filter(|&(i, &b)| b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n'))).count()
            })
        };
        let field = |i: usize| rec.get(i).map(str::trim).unwrap_or("");
        let num = |i: usize| -> Result<f64> {
            field(i).parse::<f64>().map_err(|_| {
                csv_err(format!(
                    "line {}: `{}` in column `{}` is not a number",
                    line(),
                    field(i),
                    &headers[i]
                ))
            })
        };
        let opt = |i: Option<usize>| -> Result<Option<f64>> {
            match i {
                Some(i) if !field(i).is_empty() => num(i).map(Some),
                _ => Ok(None),
            }
        };
        // a step or epoch must be a count (`as u64` read -5 and NaN as 0)
        let count = |i: usize, v: f64| -> Result<u64> {
            if v >= 0.0 && v.fract() == 0.0 && v < 2f64.powi(53) {
                Ok(v as u64)
            } else {
                Err(csv_err(format!("line {}: `{}` in column `{}` is not a count", line(), field(i), &headers[i])))
            }
        };
        let epoch = match (i_epoch, opt(i_epoch)?) {
            (Some(i), Some(v)) => Some(count(i, v)?),
            _ => None,
        };
        rows.push(MetricRow {
            step: count(i_step, num(i_step)?)?,
            epoch,
            loss: num(i_loss)?,
            lr: opt(i_lr)?,
            wd: opt(i_wd)?,
            momentum: opt(i_momentum)?,
            ms_per_step: opt(i_ms)?,
            img_per_s: opt(i_ips)?,
        });
    }
    Ok(rows)
}

/// Reads a `monitor.csv` by header name.
pub fn read_monitor(path: &Path) -> Result<Vec<MonitorRow>> {
    let csv_err = |message: String| ReportError::Csv { path: path.to_path_buf(), message };
    let text = ijepa_schema::read_text(path).map_err(|e| csv_err(e.to_string()))?;
    MonitorRow::parse_csv(&text).map_err(csv_err)
}
