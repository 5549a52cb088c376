//! Paper-style tables as polars DataFrames: our evaluation results beside the I-JEPA paper's
//! numbers (Assran et al., CVPR 2023: Table 1 = ImageNet linear probe, Table 2 = 1% ImageNet,
//! Tables 6-11 = ablations on 1% ImageNet: masking, targets, where the target is masked).
//!
//! The paper's rows are ImageNet-1k results, shown for reference only: our runs use small
//! datasets and models, so the numbers are not comparable, only the ordering and trends.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use polars::prelude::*;

use crate::registry::{EvalRun, Registry};

/// The paper's tables (`data/paper-tables.csv`), embedded at compile time.
pub const PAPER_TABLES_CSV: &str = include_str!("../data/paper-tables.csv");

/// Data name used for the paper's rows.
pub const PAPER_DATA: &str = "ImageNet-1k";

/// One row of the paper's tables.
#[derive(Debug, Clone, PartialEq)]
pub struct PaperRow {
    /// Table number in the paper (1, 2, 6-11, 15).
    pub table: i64,
    /// Group inside the table (`no-view-aug` / `view-aug`), empty if none.
    pub group: String,
    /// Method name, e.g. `I-JEPA`.
    pub method: String,
    /// Architecture, e.g. `ViT-H/14`.
    pub arch: String,
    /// Pretraining resolution.
    pub resolution: i64,
    /// Pretraining epochs.
    pub epochs: i64,
    /// Pretraining data (`IN1k`).
    pub pretrain: String,
    /// Evaluation protocol, e.g. `in1k-linear`, `in1k-1pct`.
    pub eval: String,
    /// Ablation setting, e.g. `target-scale=0.15-0.2` (Tables 8-10), `mask=rasterized`
    /// (Table 6), `target=pixels` (Table 7), `mask-at=input` (Table 11); empty elsewhere.
    pub setting: String,
    /// Top-1 accuracy, percent.
    pub top1: f64,
}

/// Parses the embedded paper CSV; identical duplicate rows are kept once.
pub fn paper_rows() -> Vec<PaperRow> {
    let mut rdr = csv::Reader::from_reader(PAPER_TABLES_CSV.as_bytes());
    let mut seen = HashSet::new();
    let mut rows = Vec::new();
    for rec in rdr.records() {
        // The CSV is compiled in and checked by a unit test; a failure here is a build bug.
        let rec = rec.expect("embedded paper-tables.csv is valid CSV");
        let f = |i: usize| rec.get(i).unwrap_or("").trim().to_string();
        let n = |i: usize| {
            f(i).parse::<f64>()
                .expect("embedded paper-tables.csv has numeric columns")
        };
        if !seen.insert(rec.iter().collect::<Vec<_>>().join(",")) {
            continue;
        }
        rows.push(PaperRow {
            table: n(0) as i64,
            group: f(1),
            method: f(2),
            arch: f(3),
            resolution: n(4) as i64,
            epochs: n(5) as i64,
            pretrain: f(6),
            eval: f(7),
            setting: f(8),
            top1: n(9),
        });
    }
    rows
}

fn frame(columns: Vec<Column>) -> DataFrame {
    // Every caller builds its columns from one row list, so lengths always agree.
    DataFrame::new_infer_height(columns).expect("table columns have equal length")
}

fn str_col(name: &str, v: Vec<String>) -> Column {
    Column::new(name.into(), v)
}

fn opt_str_col(name: &str, v: Vec<Option<String>>) -> Column {
    Column::new(name.into(), v)
}

/// Whether rows hold more than one value of a setting (`None`: a row that has none): a column
/// of it tells them apart.
fn apart<T: std::hash::Hash + Eq>(values: impl Iterator<Item = Option<T>>) -> bool {
    values.flatten().collect::<HashSet<T>>().len() > 1
}

fn nonempty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// The paper's tables as a DataFrame with the CSV's columns: `table` (i64), `group`, `method`,
/// `arch`, `resolution` (i64), `epochs` (i64), `pretrain`, `eval`, `setting` (strings; empty
/// group/setting are null) and `top1` (f64).
pub fn paper_table() -> DataFrame {
    let rows = paper_rows();
    frame(vec![
        Column::new(
            "table".into(),
            rows.iter().map(|r| r.table).collect::<Vec<_>>(),
        ),
        opt_str_col("group", rows.iter().map(|r| nonempty(&r.group)).collect()),
        str_col("method", rows.iter().map(|r| r.method.clone()).collect()),
        str_col("arch", rows.iter().map(|r| r.arch.clone()).collect()),
        Column::new(
            "resolution".into(),
            rows.iter().map(|r| r.resolution).collect::<Vec<_>>(),
        ),
        Column::new(
            "epochs".into(),
            rows.iter().map(|r| r.epochs).collect::<Vec<_>>(),
        ),
        str_col(
            "pretrain",
            rows.iter().map(|r| r.pretrain.clone()).collect(),
        ),
        str_col("eval", rows.iter().map(|r| r.eval.clone()).collect()),
        opt_str_col(
            "setting",
            rows.iter().map(|r| nonempty(&r.setting)).collect(),
        ),
        Column::new(
            "top1".into(),
            rows.iter().map(|r| r.top1).collect::<Vec<_>>(),
        ),
    ])
}

/// One row of a results table (ours or the paper's).
struct ResultRow {
    /// Our experiment (the study of a sweep point), none for the paper's rows.
    experiment: Option<String>,
    method: String,
    arch: String,
    epochs: Option<i64>,
    data: String,
    /// The features the head read (`last`, `last4`, `pixels`...; the set a probe over several
    /// chose on its held-out split), ours only.
    features: Option<String>,
    fraction: Option<f64>,
    top1: f64,
    source: &'static str,
    /// A sweep point's settings besides its recipe (`seed=1`), ours only.
    point: Option<String>,
    /// The evaluation's folder name (`eval-knn-ijepa-cc469cc11cb5`), ours only: shown where
    /// two rows would read the same (evaluations of one pretraining with other settings).
    stage: Option<String>,
    /// kNN's `k` that voted, ours only: a column of the kNN table where our rows have more
    /// than one (rows of k 20 and k 200 read alike but for their score).
    k: Option<f64>,
    /// The precision the encoder's features were computed in (`fp32`, `bf16`), ours only: a
    /// column where our rows were computed in more than one (one checkpoint evaluated by an
    /// `auto` file on a bf16 machine and by an `fp32` copy read alike but for their score).
    precision: Option<String>,
    /// kNN's temperature, ours only: a column where our rows voted at more than one.
    temperature: Option<f64>,
    /// The probe's head (`bn-linear`, `linear`, `logistic`), ours only: a column where our
    /// rows were fit with more than one (a low-shot table's logistic and linear rows read alike
    /// but for their score).
    head: Option<String>,
}

impl ResultRow {
    fn ours(e: &EvalRun) -> Self {
        let r = &e.record;
        Self {
            experiment: Some(r.experiment.clone()),
            method: r.method.clone(),
            arch: r.arch.clone(),
            epochs: r.pretrain_epochs.map(|x| x as i64),
            data: r.data.clone(),
            features: nonempty(&r.features),
            fraction: r.fraction,
            top1: r.top1,
            source: "ours",
            // (the recipe is the row's method)
            point: point_text(r.varied.iter().filter(|(k, _)| k.as_str() != "recipe")),
            stage: e.dir.file_name().map(|n| n.to_string_lossy().into_owned()),
            k: r.chosen.get("k").copied().filter(|_| r.protocol == "knn"),
            precision: r.precision.clone(),
            temperature: r.chosen.get("temperature").copied().filter(|_| r.protocol == "knn"),
            head: nonempty(&r.head),
        }
    }

    fn paper(p: &PaperRow, fraction: Option<f64>) -> Self {
        Self {
            experiment: None,
            method: p.method.clone(),
            // (the paper's ViT-H/16 at 448 px read as a 224 px result beside the ViT-H/14's)
            arch: match p.resolution {
                224 => p.arch.clone(),
                px => format!("{} ({px} px)", p.arch),
            },
            epochs: Some(p.epochs),
            data: PAPER_DATA.to_string(),
            features: None,
            fraction,
            top1: p.top1,
            source: "paper",
            point: None,
            stage: None,
            k: None,
            precision: None,
            temperature: None,
            head: None,
        }
    }
}

/// Our evaluations of one protocol in studies of one setting per method: plain experiments,
/// sweeps over seeds alone (the same experiment replicated: its rows were only in the sweep's
/// sections, the method tables showing the paper's rows alone) and sweeps over recipes (a
/// methods comparison: each point is a method of the table, with its raw pixels, which vary no
/// recipe), each point's other settings in its `point`; of a sweep over a setting (one
/// recipe's points at several learning rates), only a plain file's rows that share its study.
/// By experiment, then method, the method with the best top-1 first, each method's rows (its
/// seeds) together, best first.
fn our_rows(reg: &Registry, protocol: &str) -> Vec<ResultRow> {
    // a study that varies a setting (a grid of recipes x learning rates) is a sweep, shown in
    // its own sections: its random inits and pixels, which vary only the recipe or nothing,
    // stood in the table without the methods they are baselines of
    let of_methods_or_seeds = |k: &String| k == "recipe" || k == SEED;
    // (a study is a sweep where one recipe's points take several values of another setting; a
    // zip giving each method its own epochs and learning rate, one value each, is a methods
    // comparison: fmnist-methods)
    // (the encoders' points only: a baseline names no recipe, and the raw pixels of a zip
    // giving each method its own `data.limit` held two values under none)
    let mut values: HashMap<(&str, Option<&String>, &String), HashSet<&String>> = HashMap::new();
    for e in reg.evals.iter().filter(|e| !is_baseline(e)) {
        for (k, v) in e.record.varied.iter().filter(|(k, _)| !of_methods_or_seeds(k)) {
            values.entry((e.record.experiment.as_str(), e.record.varied.get("recipe"), k)).or_default().insert(v);
        }
    }
    let swept: HashSet<&str> = values.iter().filter(|(_, v)| v.len() > 1).map(|((exp, _, _), _)| *exp).collect();
    // (a plain file may share its study with a sweep: its own results, and the baselines they
    // share, which vary nothing, are still plain rows)
    let plain: HashSet<&str> = reg.evals.iter().filter(|e| e.record.varied.is_empty() && !is_baseline(e)).map(|e| e.record.experiment.as_str()).collect();
    let mut evals: Vec<&EvalRun> = reg
        .evals
        .iter()
        .filter(|e| {
            let exp = e.record.experiment.as_str();
            e.record.protocol == protocol && (!swept.contains(exp) || (e.record.varied.is_empty() && (!is_baseline(e) || plain.contains(exp))))
        })
        .collect();
    let mut best: HashMap<(&str, &str), f64> = HashMap::new();
    for e in &evals {
        let b = best.entry((e.record.experiment.as_str(), e.record.method.as_str())).or_insert(f64::NEG_INFINITY);
        *b = b.max(e.record.top1);
    }
    let best_of = |e: &EvalRun| best[&(e.record.experiment.as_str(), e.record.method.as_str())];
    evals.sort_by(|a, b| {
        a.record
            .experiment
            .cmp(&b.record.experiment)
            .then(best_of(b).total_cmp(&best_of(a)))
            .then(a.record.method.cmp(&b.record.method))
            .then(b.record.top1.total_cmp(&a.record.top1))
    });
    evals.into_iter().map(ResultRow::ours).collect()
}

/// How our rows' methods are shown: beside another recipe's `random init (MAE)`, I-JEPA's
/// plain `random init` reads as a baseline of every method, so it is named `random init
/// (I-JEPA)` (a table of I-JEPA alone keeps the plain name). Read by the method tables and the
/// sweep table, which named it apart (`knn.csv` said `random init (I-JEPA)`, `sweep.csv` the
/// plain name).
fn random_init_named<'a>(mut ours: impl Iterator<Item = &'a str>) -> impl Fn(&str) -> String {
    let recipes_apart = ours.any(|m| m.starts_with("random init ("));
    move |m: &str| if recipes_apart && m == "random init" { "random init (I-JEPA)".to_string() } else { m.to_string() }
}

/// The rows as a table; with an `experiment` column first when our rows come from more than
/// one experiment (else rows of two experiments could read as one result twice).
fn result_frame(rows: &[ResultRow], with_fraction: bool) -> DataFrame {
    let experiments: HashSet<&str> = rows.iter().filter_map(|r| r.experiment.as_deref()).collect();
    let mut cols = Vec::new();
    if experiments.len() > 1 {
        cols.push(opt_str_col("experiment", rows.iter().map(|r| r.experiment.clone()).collect()));
    }
    let method = random_init_named(rows.iter().filter(|r| r.source == "ours").map(|r| r.method.as_str()));
    cols.extend([
        str_col("method", rows.iter().map(|r| if r.source == "ours" { method(&r.method) } else { r.method.clone() }).collect()),
        str_col("arch", rows.iter().map(|r| r.arch.clone()).collect()),
        Column::new(
            "epochs".into(),
            rows.iter().map(|r| r.epochs).collect::<Vec<_>>(),
        ),
        str_col("data", rows.iter().map(|r| r.data.clone()).collect()),
        opt_str_col("features", rows.iter().map(|r| r.features.clone()).collect()),
    ]);
    if with_fraction {
        cols.push(Column::new(
            "fraction".into(),
            rows.iter().map(|r| r.fraction).collect::<Vec<_>>(),
        ));
    }
    // kNN rows that voted with other k
    let ks_apart = apart(rows.iter().map(|r| r.k.map(f64::to_bits)));
    if ks_apart {
        cols.push(Column::new("k".into(), rows.iter().map(|r| r.k.map(|k| k as i64)).collect::<Vec<_>>()));
    }
    // ... at another temperature
    let temperatures_apart = apart(rows.iter().map(|r| r.temperature.map(f64::to_bits)));
    if temperatures_apart {
        cols.push(Column::new("temperature".into(), rows.iter().map(|r| r.temperature).collect::<Vec<_>>()));
    }
    // probes fit with other heads
    let heads_apart = apart(rows.iter().map(|r| r.head.as_deref()));
    if heads_apart {
        cols.push(opt_str_col("head", rows.iter().map(|r| r.head.clone()).collect()));
    }
    // features computed in other precisions (the raw pixels have none)
    let precisions_apart = apart(rows.iter().map(|r| r.precision.as_deref()));
    if precisions_apart {
        cols.push(opt_str_col("precision", rows.iter().map(|r| r.precision.clone()).collect()));
    }
    // a sweep's points beside its recipes (its seeds) are told apart by their settings
    if rows.iter().any(|r| r.point.is_some()) {
        cols.push(opt_str_col("point", rows.iter().map(|r| r.point.clone()).collect()));
    }
    // and rows that still read the same (one pretraining evaluated with other settings, by
    // two files) by their folder
    let key = |r: &ResultRow| {
        format!(
            "{:?}|{}|{}|{:?}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
            r.experiment,
            r.method,
            r.arch,
            r.epochs,
            r.data,
            r.features,
            r.fraction,
            r.point,
            r.k.filter(|_| ks_apart),
            r.precision.as_ref().filter(|_| precisions_apart),
            r.temperature.filter(|_| temperatures_apart),
            r.head.as_ref().filter(|_| heads_apart)
        )
    };
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in rows.iter().filter(|r| r.source == "ours") {
        *seen.entry(key(r)).or_default() += 1;
    }
    if seen.values().any(|&n| n > 1) {
        cols.push(opt_str_col("stage", rows.iter().map(|r| r.stage.clone().filter(|_| seen.get(&key(r)).is_some_and(|&n| n > 1))).collect()));
    }
    cols.push(Column::new(
        "top1".into(),
        rows.iter().map(|r| r.top1).collect::<Vec<_>>(),
    ));
    cols.push(str_col(
        "source",
        rows.iter().map(|r| r.source.to_string()).collect(),
    ));
    frame(cols)
}

/// Table-1 layout (linear probe on frozen features): columns `method`, `arch` (the paper's with
/// its resolution where it is not 224 px: `ViT-H/16 (448 px)`), `epochs`
/// (pretraining, null for baselines), `data`, `features` (what our head read: `last`, `last4`,
/// `pixels`...; null for the paper's rows), `top1` (percent), `source` (`"ours"`/`"paper"`),
/// and first `experiment` (null for the paper's rows) when our rows come from more than one
/// experiment (so is every other results table); `point` (a seeds or recipe sweep's other
/// settings, e.g. `seed=1`) when a row has one, `precision` (`fp32`, `bf16`) when our rows'
/// features were computed in more than one, and `stage` (the evaluation's folder) on rows that
/// would otherwise read the same.
/// Our rows are the `protocol: "linear"` evaluations that are not part of a sweep (`varied`
/// empty), or are points of a sweep over seeds or recipes alone; the paper's rows are its Table 1
/// (ImageNet-1k).
pub fn linear_table(reg: &Registry) -> DataFrame {
    ours_beside_paper(reg, "linear", 1, None)
}

/// Our rows of `protocol`, then the paper's rows of `table` (with `fraction`, when the
/// table's protocol uses part of the labels).
fn ours_beside_paper(reg: &Registry, protocol: &str, table: i64, fraction: Option<f64>) -> DataFrame {
    let mut rows = our_rows(reg, protocol);
    rows.extend(
        paper_rows()
            .iter()
            .filter(|p| p.table == table)
            .map(|p| ResultRow::paper(p, fraction)),
    );
    result_frame(&rows, fraction.is_some())
}

/// Table-2 layout (low-shot linear probe): columns `method`, `arch`, `epochs`, `data`,
/// `features`, `fraction` (of the training labels), `top1`, `source`. Our rows are the plain
/// `protocol: "low-shot"` evaluations; the paper's rows are its Table 2 (1% of ImageNet-1k).
pub fn lowshot_table(reg: &Registry) -> DataFrame {
    ours_beside_paper(reg, "low-shot", 2, Some(0.01))
}

/// k-NN evaluations (ours only; the paper reports none): columns `method`, `arch`, `epochs`,
/// `data`, `features`, `top1`, `source`; and `k` (the neighbours that voted) where the rows
/// have more than one.
pub fn knn_table(reg: &Registry) -> DataFrame {
    result_frame(&our_rows(reg, "knn"), false)
}

/// Table-15 layout (full fine-tuning): columns `method`, `arch`, `epochs`, `data`,
/// `features`, `top1`, `source`. Our rows are the `protocol: "finetune"` evaluations (plain or
/// points of a sweep over recipes); the paper's rows are its Table 15 (ImageNet-1k
/// fine-tuning).
pub fn finetune_table(reg: &Registry) -> DataFrame {
    ours_beside_paper(reg, "finetune", 15, None)
}

/// Whether the registry holds any of our evaluations under `protocol`.
pub fn has_protocol(reg: &Registry, protocol: &str) -> bool {
    reg.evals.iter().any(|e| e.record.protocol == protocol)
}

/// One row per pretraining run: `experiment`, `run` (folder name), `point` (a sweep point's
/// settings, where any run has them), `status`, `arch`, `data`,
/// `epochs`, `steps`, `final_loss` (the manifest's mean of the last min(10, half of the)
/// losses `metrics.csv` logs, one every `log-every` steps, else, for a run still running or
/// stopped, the mean of as many of its last logged losses; null for a failed
/// run without one, whose last logged loss may be the divergence itself), `minutes` (the time its processes spent on it, every attempt; a killed run's up to its last
/// checkpoint, none before its first; wall clock from start to end for an earlier version's
/// manifest), `device` and `precision`; before `final_loss`, `loss` (what
/// it measures, [`crate::PretrainRun::loss_name`]) where the runs' losses differ.
pub fn pretrain_table(reg: &Registry) -> DataFrame {
    let runs = &reg.pretrains;
    let s = |f: &dyn Fn(&crate::PretrainRun) -> Option<String>| -> Vec<Option<String>> {
        runs.iter().map(f).collect()
    };
    let mut cols = vec![
        str_col(
            "experiment",
            runs.iter().map(|r| r.manifest.experiment.clone()).collect(),
        ),
        str_col("run", runs.iter().map(|r| r.name()).collect()),
        // (a run that diverged: said so, where it read `failed` as any other stop)
        str_col(
            "status",
            runs.iter().map(|r| r.manifest.diverged().map_or_else(|| r.status(), |step| format!("diverged at step {step}"))).collect(),
        ),
        opt_str_col("arch", s(&|r| r.arch())),
        opt_str_col(
            "data",
            s(&|r| {
                r.config_value("data.dataset")
                    .and_then(|v| v.as_str())
                    .map(String::from)
            }),
        ),
        Column::new(
            "epochs".into(),
            runs.iter()
                .map(|r| r.config_value("epochs").and_then(|v| v.as_i64()))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "steps".into(),
            runs.iter()
                .map(|r| {
                    // a manifest counts its steps when the run ends; while it runs, the metrics do
                    Some(r.manifest.steps as u64)
                        .filter(|&s| s > 0)
                        .or(r.metrics.last().map(|m| m.step))
                        .map(|x| x as i64)
                })
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "final_loss".into(),
            runs.iter()
                .map(|r| match r.status().as_str() {
                    // a failed run has no final loss: its last logged one is often the
                    // divergence itself (31739187200 before the NaN)
                    ijepa_schema::status::FAILED => r.manifest.final_loss,
                    // a running (or stopped) run's, over as many of its logged losses as a
                    // finished run's window has steps (the metrics keep one a `log-every`)
                    _ => r.manifest.final_loss.or_else(|| {
                        let n = r.metrics.len();
                        let w = ijepa_schema::final_loss_window(n).min(n);
                        (n > 0).then(|| r.metrics[n - w..].iter().map(|m| m.loss).sum::<f64>() / w as f64)
                    }),
                })
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "minutes".into(),
            runs.iter()
                .map(|r| match (r.manifest.seconds, r.manifest.started, r.manifest.finished) {
                    // the time spent on it (not the days it stood stopped before a resume); a run
                    // stopped (interrupted, killed, failed) spent what its manifest last counted
                    // (the cell was empty), one still running is not over; a killed one counted
                    // up to its last manifest, which before its first checkpoint was written at
                    // its start (`2.97e-8` minutes for 20 s of steps): empty
                    (Some(_), _, _) if r.status() == ijepa_schema::status::KILLED && r.manifest.checkpoints.is_empty() => None,
                    (Some(s), _, _) if r.manifest.finished.is_some() || r.status() != ijepa_schema::status::RUNNING => Some(s / 60.0),
                    (None, a, Some(b)) if a > 0 => Some(b.saturating_sub(a) as f64 / 60.0),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        opt_str_col("device", s(&|r| nonempty(&r.manifest.device))),
        // (`fp32 (no native bf16: this CPU has neither ...)`: the precision, the why is the manifest's)
        opt_str_col("precision", s(&|r| r.manifest.precision.split_whitespace().next().map(str::to_string))),
    ];
    // a sweep point's settings, which its experiment's name gives only while it is short
    // (a long one is cut and hashed: `grid-data-root-...-5f3a9c01`)
    if runs.iter().any(|r| !r.manifest.varied.is_empty()) {
        cols.insert(2, opt_str_col("point", s(&|r| point_text(r.manifest.varied.iter()))));
    }
    // what each final loss measures, where the runs' losses differ (a methods sweep's DINO
    // cross-entropy, MAE pixel error and I-JEPA latent loss in one column read as one scale)
    let losses = s(&|r| r.loss_name());
    if losses.iter().flatten().collect::<HashSet<_>>().len() > 1 {
        let at = cols.iter().position(|c| c.name().as_str() == "final_loss").expect("a final_loss column");
        cols.insert(at, opt_str_col("loss", losses));
    }
    frame(cols)
}

/// A sweep point's settings as a table cell (`optimizer.lr.peak=1e-3, seed=1`), if any.
fn point_text<'a>(settings: impl Iterator<Item = (&'a String, &'a String)>) -> Option<String> {
    let settings: Vec<String> = settings.map(|(k, v)| format!("{k}={v}")).collect();
    (!settings.is_empty()).then(|| settings.join(", "))
}

/// What each pretraining's settings warned of before it trained
/// ([`ijepa_schema::Manifest::setting_warnings`], `before training: ...`), its recipe while it
/// trained ([`ijepa_schema::Manifest::training_warnings`], `while training: masks: ...`) and its
/// monitors during it ([`ijepa_schema::Manifest::warnings`], `epoch 3: ...`): one row per
/// warning, with its run; empty when none warned.
pub fn warnings_table(reg: &Registry) -> DataFrame {
    let rows: Vec<(&crate::PretrainRun, String)> = reg
        .pretrains
        .iter()
        .flat_map(|r| {
            let m = &r.manifest;
            let before = m.setting_warnings.iter().map(|w| format!("before training: {w}"));
            let during = m.training_warnings.iter().map(|w| format!("while training: {w}"));
            before.chain(during).chain(m.warnings.iter().cloned()).map(move |w| (r, w))
        })
        .collect();
    frame(vec![
        str_col("experiment", rows.iter().map(|(r, _)| r.manifest.experiment.clone()).collect()),
        str_col("run", rows.iter().map(|(r, _)| r.name()).collect()),
        str_col("warning", rows.iter().map(|(_, w)| w.clone()).collect()),
    ])
}

/// The sweep key of a point's seed (a sweep's `seeds`): runs that differ only in it are
/// repeats of one setting.
pub const SEED: &str = "seed";

/// Maps a sweep key to the prefix of the paper's ablation `setting` column.
fn paper_setting_prefix(key: &str) -> Option<&'static str> {
    match key {
        "mask.targets.scale" | "mask.target_scale" => Some("target-scale"),
        "mask.context.scale" | "mask.context_scale" => Some("context-scale"),
        "mask.targets.count" | "mask.n_targets" => Some("targets"),
        _ => None,
    }
}

/// The numbers in a value such as `0.15-0.2`, `[0.15, 0.2]`, `4`, `1e-3` or `[-0.5, 7.5e-2]`:
/// decimal literals with an exponent; a `-` is a sign at the start or after a space, `[`, `,`
/// or `(`, and a range's separator after a digit (`0.15-0.2`).
pub(crate) fn numbers(value: &str) -> Vec<f64> {
    let b = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let sign = b[i] == b'-' && (i == 0 || matches!(b[i - 1], b' ' | b'[' | b',' | b'(')) && b.get(i + 1).is_some_and(|c| c.is_ascii_digit() || *c == b'.');
        if !(b[i].is_ascii_digit() || b[i] == b'.' || sign) {
            i += 1;
            continue;
        }
        let start = i;
        i += usize::from(sign);
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
            i += 1;
        }
        // an exponent: e or E, an optional sign, at least one digit
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            let mut j = i + 1;
            if j < b.len() && (b[j] == b'-' || b[j] == b'+') {
                j += 1;
            }
            if j < b.len() && b[j].is_ascii_digit() {
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                i = j;
            }
        }
        if let Ok(x) = value[start..i].parse() {
            out.push(x);
        }
    }
    out
}

/// The paper's `setting` of an I-JEPA variant with a word for a value (Tables 6, 7, 11):
/// `mask` -> `mask=KIND`, `target` -> `target=KIND` (`representation`, `pixels`),
/// `target.masking` -> `mask-at=input` or `mask-at=target-encoder-output`; with whether the
/// value is the method's own (multi-block masks, representation targets, masking the target
/// encoder's output).
fn paper_variant(key: &str, value: &str) -> Option<(i64, String, bool)> {
    let value = value.trim_matches('"');
    match key {
        "mask" | "mask.kind" => Some((6, format!("mask={value}"), value == "multi-block")),
        "target" | "target.kind" => Some((7, format!("target={value}"), value == "representation")),
        "target.masking" => Some(match value {
            "output" => (11, "mask-at=target-encoder-output".to_string(), true),
            v => (11, format!("mask-at={v}"), false),
        }),
        _ => None,
    }
}

/// A study's results over its seeds (`seeds` in the sweep): for each setting (the point's other
/// settings, `setting`; empty where the sweep varies the seed alone), protocol and method, how
/// many seeds were evaluated (`seeds`), and their top-1's `mean`, sample standard deviation
/// (`std`, null for one seed), `min` and `max`; by protocol, then setting. Empty where no
/// evaluation of the study has a seed. The sweep table lists each seed's row; a difference
/// between settings reads against the spread of their seeds here.
pub fn seeds_table(reg: &Registry, experiment: &str) -> DataFrame {
    type Group = ((String, String, String), Vec<f64>);
    let mut groups: Vec<Group> = Vec::new();
    for e in reg.evals.iter().filter(|e| e.record.experiment == experiment && e.record.varied.contains_key(SEED)) {
        let setting = point_text(e.record.varied.iter().filter(|(k, _)| k.as_str() != SEED)).unwrap_or_default();
        let key = (setting, e.record.protocol.clone(), e.record.method.clone());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, top1)) => top1.push(e.record.top1),
            None => groups.push((key, vec![e.record.top1])),
        }
    }
    groups.sort_by(|((sa, pa, ma), _), ((sb, pb, mb), _)| {
        pa.cmp(pb).then(numbers(sa).partial_cmp(&numbers(sb)).unwrap_or(std::cmp::Ordering::Equal)).then(sa.cmp(sb)).then(ma.cmp(mb))
    });
    let stat = |f: &dyn Fn(&[f64]) -> Option<f64>| groups.iter().map(|(_, t)| f(t)).collect::<Vec<_>>();
    let mean = crate::figures::mean;
    // (named as the method and sweep tables name them: `random init (I-JEPA)` beside another
    // recipe's; this table said the plain name, and the CSVs did not join)
    let method = random_init_named(groups.iter().map(|((_, _, m), _)| m.as_str()));
    frame(vec![
        str_col("setting", groups.iter().map(|((s, _, _), _)| s.clone()).collect()),
        str_col("protocol", groups.iter().map(|((_, p, _), _)| p.clone()).collect()),
        str_col("method", groups.iter().map(|((_, _, m), _)| method(m)).collect()),
        Column::new("seeds".into(), groups.iter().map(|(_, t)| t.len() as i64).collect::<Vec<_>>()),
        Column::new("mean".into(), stat(&|t| Some(mean(t)))),
        Column::new("std".into(), stat(&|t| (t.len() > 1).then(|| (t.iter().map(|x| (x - mean(t)).powi(2)).sum::<f64>() / (t.len() - 1) as f64).sqrt()))),
        Column::new("min".into(), stat(&|t| t.iter().copied().reduce(f64::min))),
        Column::new("max".into(), stat(&|t| t.iter().copied().reduce(f64::max))),
    ])
}

/// The paper's row for a sweep point (its varied keys and values): a single numeric key as in
/// [`paper_ablation`]; for the I-JEPA variants of Tables 6, 7 and 11 (keys `mask`, `target`,
/// `target.masking`, varied together in a zip), the table of the one key the point moves off
/// the method, or Table 6's multi-block row for the method itself. The seed (a sweep's
/// `seeds`, key [`SEED`]) and an evaluation's settings are no settings of the paper's
/// ablations, which change the pretraining: they are left out of the match.
///
/// A point that moves two of them off the method (`random, pixels` in a grid over `mask` and
/// `target`) has no row: the paper measured each change alone (it was given the first one's).
pub fn paper_ablation_point(varied: &[(&String, &String)]) -> Option<PaperRow> {
    let varied: Vec<(&String, &String)> = varied.iter().copied().filter(|(k, _)| pretraining_key(k)).collect();
    if let [(k, v)] = varied[..] {
        return paper_ablation(k, v);
    }
    let variants: Vec<(i64, String, bool)> = varied.iter().map(|(k, v)| paper_variant(k, v)).collect::<Option<_>>()?;
    let mut off = variants.iter().filter(|(_, _, own)| !own);
    let (table, setting, _) = match (off.next(), off.next()) {
        (Some(one), None) => one,
        (None, _) => variants.first()?,
        (Some(_), Some(_)) => return None,
    };
    paper_rows().into_iter().find(|p| p.table == *table && p.setting == *setting)
}

/// Whether the paper's ablation rows may stand beside `e` ([`of_the_paper`]), the table's
/// and the figure's one rule: not where its pretraining held one of Tables 6, 7 and 11's
/// settings (the mask's kind, the target, where the target is masked) fixed off the method's
/// (its `config.json`, which leaves the defaults, the method's, out): a file that fixes
/// `mask "random"` and varies `target.masking` was given Table 11's rows, which were measured
/// with multi-block masks. Nothing is held fixed where no pretraining of the report holds the
/// point's.
pub(crate) fn paper_rows_apply(reg: &Registry, e: &crate::registry::EvalRun) -> bool {
    if !of_the_paper(e) {
        return false;
    }
    let Some(dir) = e.record.pretrain_dir.as_deref() else { return true };
    let want = crate::figures::tail2(std::path::Path::new(dir));
    let Some(cfg) = reg.pretrains.iter().find(|r| crate::figures::tail2(&r.dir) == want).and_then(|r| r.config.as_ref()) else {
        return true;
    };
    let varied = |keys: &[&str]| keys.iter().any(|k| e.record.varied.contains_key(*k));
    [(&["mask", "mask.kind"][..], &cfg["mask"]["kind"]), (&["target", "target.kind"][..], &cfg["target"]["kind"]), (&["target.masking"][..], &cfg["target"]["masking"])]
        .into_iter()
        .filter(|(keys, _)| !varied(keys))
        .all(|(keys, value)| value.as_str().and_then(|v| paper_variant(keys[0], v)).is_none_or(|(_, _, own)| own))
}

/// Whether a varied setting may match a setting of the paper's ablations: not the seed, nor an
/// evaluation's (`vary "eval.knn.k"` beside the target scale lost every paper row).
fn pretraining_key(key: &str) -> bool {
    key != SEED && !key.starts_with("eval.")
}

/// Whether the paper's ablation rows (Tables 6-11, I-JEPA's) may stand beside this result:
/// an I-JEPA encoder's, or a record that names no recipe (the raw pixels, records written
/// before the recipe was recorded); not another recipe's sweep over a setting of the same
/// name.
fn of_the_paper(e: &crate::registry::EvalRun) -> bool {
    e.record.recipe.as_deref().is_none_or(|r| r == "ijepa")
}

/// Every paper row a sweep point stands for: [`paper_ablation_point`]'s, and for the method
/// itself in a zip over the variants of Tables 6, 7 and 11 (each table's reference row), the
/// method's row of every table a varied key belongs to: a figure draws each table's method
/// beside its variants (Table 11's input masking against its own 67.3, not Table 6's 54.2).
pub fn paper_ablation_rows(varied: &[(&String, &String)]) -> Vec<PaperRow> {
    let keys: Vec<(&String, &String)> = varied.iter().copied().filter(|(k, _)| pretraining_key(k)).collect();
    let variants: Option<Vec<(i64, String, bool)>> = keys.iter().map(|(k, v)| paper_variant(k, v)).collect();
    match variants {
        // (each variant's own setting is its table's method row)
        Some(v) if v.len() > 1 && v.iter().all(|(_, _, own)| *own) => v.iter().filter_map(|(table, _, _)| paper_method_row(*table)).collect(),
        _ => paper_ablation_point(varied).into_iter().collect(),
    }
}

/// The method's own setting in each ablation table (Tables 6-11): the row the others are
/// changes of (54.2 in Tables 6 and 8-10, ViT-B/16; 66.9 in Table 7, ViT-L/16; 67.3 in Table
/// 11, ViT-H/16).
const METHOD_SETTINGS: [(i64, &str); 6] = [
    (6, "mask=multi-block"),
    (7, "target=representation"),
    (8, "target-scale=0.15-0.2"),
    (9, "context-scale=0.85-1.0"),
    (10, "targets=4"),
    (11, "mask-at=target-encoder-output"),
];

/// The method's row of ablation table `table`, if it is one.
pub fn paper_method_row(table: i64) -> Option<PaperRow> {
    let (_, setting) = METHOD_SETTINGS.iter().find(|(t, _)| *t == table)?;
    paper_rows().into_iter().find(|p| p.table == table && p.setting == *setting)
}

/// The paper's ablation row (Tables 8-10 by numbers; Tables 6, 7, 11 by the variant's word)
/// for a single varied key and value, if any.
pub fn paper_ablation(key: &str, value: &str) -> Option<PaperRow> {
    if let Some((table, setting, _)) = paper_variant(key, value) {
        return paper_rows().into_iter().find(|p| p.table == table && p.setting == setting);
    }
    let prefix = paper_setting_prefix(key)?;
    let ours = numbers(value);
    paper_rows().into_iter().find(|p| {
        (8..=10).contains(&p.table)
            && p.setting.split_once('=').is_some_and(|(k, v)| {
                let theirs = numbers(v);
                k == prefix
                    && theirs.len() == ours.len()
                    && theirs.iter().zip(&ours).all(|(a, b)| (a - b).abs() < 1e-9)
            })
    })
}

/// A pretraining of study `experiment` (one with points: those that shared it, by all their
/// settings, else its own).
fn of_study(r: &crate::registry::PretrainRun, experiment: &str) -> bool {
    r.manifest.study.as_deref() == Some(experiment) && !r.manifest.points_of().is_empty()
}

/// The runs of study `experiment` (by [`crate::figures::tail2`] of their folders) that a later
/// version of the study replaced (another run of the same point started later: the file
/// edited, in a report of the whole folder, which holds every version): neither their
/// evaluations nor their status are the point's rows, which showed twice, and could not be
/// told apart.
fn superseded_runs(reg: &Registry, experiment: &str) -> HashSet<std::path::PathBuf> {
    let of_study = |r: &&crate::registry::PretrainRun| of_study(r, experiment);
    reg.pretrains
        .iter()
        .filter(of_study)
        .filter(|r| {
            reg.pretrains.iter().filter(of_study).any(|o| {
                o.dir != r.dir && o.manifest.experiment == r.manifest.experiment && o.manifest.points_of() == r.manifest.points_of() && o.manifest.started > r.manifest.started
            })
        })
        .map(|r| crate::figures::tail2(&r.dir))
        .collect()
}

/// The points of study `experiment` whose pretraining no evaluation read (a pretraining that
/// diverged, or was stopped; any evaluation counts: a plain file's of the run its sweep
/// trained), runs in `superseded` left out, each with its pretraining's state (`diverged at
/// step N`, `done, not evaluated`, or its status), by its settings: the sweep table's rows
/// without a result, where the sweep showed only the points that were evaluated.
fn points_without_evaluation<'a>(
    reg: &'a Registry,
    experiment: &str,
    superseded: &HashSet<std::path::PathBuf>,
) -> Vec<(&'a BTreeMap<String, String>, String)> {
    let evaluated: HashSet<std::path::PathBuf> = reg
        .evals
        .iter()
        .filter_map(|e| e.record.pretrain_dir.as_deref().map(|d| crate::figures::tail2(std::path::Path::new(d))))
        .collect();
    let mut unevaluated: Vec<_> = reg
        .pretrains
        .iter()
        .filter(|r| of_study(r, experiment))
        .filter(|r| !evaluated.contains(&crate::figures::tail2(&r.dir)) && !superseded.contains(&crate::figures::tail2(&r.dir)))
        .flat_map(|r| r.manifest.points_of().iter().map(move |p| (p, r)))
        .collect();
    unevaluated.sort_by(|(a, ra), (b, rb)| a.cmp(b).then(ra.dir.cmp(&rb.dir)));
    let state = |r: &crate::registry::PretrainRun| match r.manifest.diverged() {
        Some(step) => format!("diverged at step {step}"),
        None => match r.status().as_str() {
            ijepa_schema::status::DONE => "done, not evaluated".to_string(),
            s => s.to_string(),
        },
    };
    let mut rows: Vec<(&BTreeMap<String, String>, String)> = unevaluated.iter().map(|&(point, r)| (point, state(r))).collect();
    // the points the file's last run planned whose evaluations have no folder, by the settings
    // the plan files them under, and the pretraining the plan has them read: there, its state
    // (a point added to a sweep of evaluation settings shares a pretraining that never named
    // it); nowhere, `not started` (the run stopped before it: the point was in no row). Not for
    // records of earlier versions, which do not say what an evaluation reads.
    let known: Vec<&BTreeMap<String, String>> = reg
        .evals
        .iter()
        .filter(|e| e.record.experiment == experiment)
        .map(|e| &e.record.varied)
        .chain(rows.iter().map(|(p, _)| *p))
        .collect();
    let mut planned: Vec<(&BTreeMap<String, String>, String)> = reg
        .planned_evals
        .get(experiment)
        .into_iter()
        .flatten()
        .filter(|e| !e.varied.is_empty() && !known.contains(&&e.varied) && !reg.root.join(&e.stage).exists())
        .filter_map(|e| {
            let reads = e.reads.as_deref()?;
            let run = reg.pretrains.iter().find(|r| crate::figures::tail2(&r.dir) == std::path::Path::new(reads));
            Some((&e.varied, run.map_or_else(|| "not started".to_string(), state)))
        })
        .collect();
    planned.sort();
    planned.dedup_by(|a, b| a.0 == b.0);
    rows.extend(planned);
    rows.sort_by(|(a, _), (b, _)| point_order(a, b));
    rows
}

/// Two sweep points in the order of the sweep's values (`5e-4` before `1e-3`), then as text.
pub(crate) fn point_order(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> std::cmp::Ordering {
    a.keys().cmp(b.keys()).then(numbers(&joined_values(a)).partial_cmp(&numbers(&joined_values(b))).unwrap_or(std::cmp::Ordering::Equal)).then(joined_values(a).cmp(&joined_values(b)))
}

/// The sweep table's points without a result, as it lists them (`1e4 (pretraining diverged
/// at step 4)`), for the sweep figure, which draws none of them, and says so.
pub(crate) fn points_without_result(reg: &Registry, experiment: &str) -> Vec<String> {
    points_without_evaluation(reg, experiment, &superseded_runs(reg, experiment))
        .into_iter()
        .map(|(point, status)| format!("{} (pretraining {status})", joined_values(point)))
        .collect()
}

/// A point's settings, joined in their order (`mask.targets.scale, optimizer.lr.peak`).
fn joined_keys(v: &BTreeMap<String, String>) -> String {
    v.keys().cloned().collect::<Vec<_>>().join(", ")
}

/// A point's values, joined in its settings' order (`0.15-0.2, 1e-3`).
fn joined_values(v: &BTreeMap<String, String>) -> String {
    v.values().cloned().collect::<Vec<_>>().join(", ")
}

/// The sweep table's `value` of a baseline every point shares.
pub const EVERY_POINT: &str = "every point";

/// A random-init or raw-pixel evaluation.
fn is_baseline(e: &EvalRun) -> bool {
    matches!(e.record.model.as_str(), "random-init" | "raw-pixels")
}

/// Sweep results of one experiment: one row per evaluation whose `varied` is non-empty, with
/// columns `key` and `value` (the sweep point; several keys are joined with `, `), `protocol`,
/// `method`, `top1`, and, when the point maps to a row of the paper's Tables 8-10
/// (`mask.targets.scale` -> `target-scale=LO-HI`, `mask.context.scale` -> `context-scale=LO-HI`,
/// `mask.targets.count` -> `targets=N`) or of Tables 6, 7 and 11 ([`paper_ablation_point`]:
/// `mask`, `target`, `target.masking`), `paper_table`, `paper_setting` and `paper_top1`
/// (null otherwise), with `paper_method_top1`, the method's row of that same table (each
/// table has its own model: a variant reads against its table's method, not another's), and
/// `eval_dir`, the evaluation's folder under the runs folder (`<experiment>-<point>/eval-...`;
/// null on a point's row without one).
/// The paper's ablations are 1%-label linear probes: the `paper_*` columns are filled on the
/// `low-shot` rows (in a sweep without them, on the `linear` rows, else the `knn`, else the `finetune` rows), not
/// repeated beside every protocol. Sorted by key,
/// protocol, the value's numbers and its text (a random init or the pixels that vary none of
/// the swept settings, which every point shares, read `every point`, first of their protocol,
/// under the sweep's setting where it has one; in a seeded sweep each seed's, shared by every
/// point of that seed, `every point, seed N`); then a row for each point of the study whose
/// pretraining no evaluation read (`protocol` `none (pretraining diverged at step N)`, or its
/// status), or that the file's last run planned and never began (`none (pretraining not
/// started)`), by its settings, in the order of their values.
pub fn ablation_table(reg: &Registry, experiment: &str) -> DataFrame {
    let superseded = superseded_runs(reg, experiment);
    let mut evals: Vec<&EvalRun> = reg
        .evals
        .iter()
        .filter(|e| e.record.experiment == experiment && !e.record.varied.is_empty())
        .filter(|e| !e.record.pretrain_dir.as_deref().is_some_and(|d| superseded.contains(&crate::figures::tail2(std::path::Path::new(d)))))
        .collect();
    // the random init and pixels that vary none of the swept settings, shared by every point
    // (a sweep of learning rates): rows of their own, under the sweep's setting (they were in
    // no table: the method tables leave a sweep's baselines to its sections, and the sweep
    // figure alone drew them); not where a plain file shares the study: the baselines that
    // vary nothing are that file's, rows of the method tables
    // (the encoders' points': a recipe's random init varies the recipe alone)
    let swept_keys: Vec<String> = evals.iter().filter(|e| !is_baseline(e)).map(|e| joined_keys(&e.record.varied)).collect::<BTreeSet<_>>().into_iter().collect();
    let shared_key = if swept_keys.len() == 1 { swept_keys[0].clone() } else { String::new() };
    let plain_file = reg.evals.iter().any(|e| e.record.experiment == experiment && e.record.varied.is_empty() && !is_baseline(e));
    // (in a sweep over recipes a random init is its recipe's, not every point's)
    let recipes_swept = swept_keys.iter().any(|k| k.split(", ").any(|x| x == "recipe"));
    if !evals.is_empty() && !plain_file {
        evals.extend(
            reg.evals
                .iter()
                .filter(|e| e.record.experiment == experiment && e.record.varied.is_empty() && is_baseline(e))
                .filter(|e| !(recipes_swept && e.record.model == "random-init")),
        );
    }
    // (in a seeded sweep a baseline varies the seed alone: each seed's is shared by every
    // point of that seed; filed under the key `seed`, they came after every point's rows)
    let seed_only = |e: &EvalRun| is_baseline(e) && e.record.varied.len() == 1 && e.record.varied.contains_key(SEED);
    let of_every_point = |e: &EvalRun| e.record.varied.is_empty() || (seed_only(e) && !shared_key.is_empty() && shared_key != SEED);
    let key_of = |e: &EvalRun| if of_every_point(e) { shared_key.clone() } else { joined_keys(&e.record.varied) };
    let value_of = |e: &EvalRun| match (e.record.varied.is_empty(), of_every_point(e)) {
        (true, _) => EVERY_POINT.to_string(),
        // (the seed alone)
        (false, true) => format!("{EVERY_POINT}, seed {}", joined_values(&e.record.varied)),
        (false, false) => joined_values(&e.record.varied),
    };
    evals.sort_by(|a, b| {
        let nums = |e: &EvalRun| numbers(&value_of(e));
        key_of(a)
            .cmp(&key_of(b))
            .then(a.record.protocol.cmp(&b.record.protocol))
            .then(of_every_point(b).cmp(&of_every_point(a)))
            .then(
                nums(a)
                    .partial_cmp(&nums(b))
                    .unwrap_or(std::cmp::Ordering::Equal),
            )
            .then(value_of(a).cmp(&value_of(b)))
            .then(a.record.method.cmp(&b.record.method))
    });
    // the paper's protocol is a linear probe on 1% of the labels: its numbers sit beside our
    // low-shot rows, or, in a sweep without them, beside one protocol's (linear, else kNN,
    // else fine-tuning)
    let paper_protocol = ["low-shot", "linear", "knn", "finetune"].into_iter().find(|p| evals.iter().any(|e| e.record.protocol == *p));
    let mut paper: Vec<Option<PaperRow>> = evals
        .iter()
        .map(|e| {
            (Some(e.record.protocol.as_str()) == paper_protocol && paper_rows_apply(reg, e))
                .then(|| paper_ablation_point(&e.record.varied.iter().collect::<Vec<_>>()))
                .flatten()
        })
        .collect();
    let mut method_top1: Vec<Option<f64>> =
        paper.iter().map(|p| p.as_ref().and_then(|p| paper_method_row(p.table)).map(|m| m.top1)).collect();
    let method = random_init_named(evals.iter().map(|e| e.record.method.as_str()));
    let mut rows: Vec<[String; 4]> = evals
        .iter()
        .map(|e| [key_of(e), value_of(e), e.record.protocol.clone(), method(&e.record.method)])
        .collect();
    let mut top1: Vec<Option<f64>> = evals.iter().map(|e| Some(e.record.top1)).collect();
    // (the folder each number is read from, under the runs folder: a row was traced back to
    // its run by rebuilding the point's name from its values)
    let mut folders: Vec<Option<String>> = evals.iter().map(|e| Some(crate::figures::tail2(&e.dir).display().to_string())).collect();
    // the study's points with no evaluation: a row each, saying so
    for (point, status) in points_without_evaluation(reg, experiment, &superseded) {
        rows.push([joined_keys(point), joined_values(point), format!("none (pretraining {status})"), String::new()]);
        top1.push(None);
        folders.push(None);
        paper.push(None);
        method_top1.push(None);
    }
    let col = |i: usize| rows.iter().map(|r| r[i].clone()).collect::<Vec<_>>();
    frame(vec![
        str_col("key", col(0)),
        str_col("value", col(1)),
        str_col("protocol", col(2)),
        str_col("method", col(3)),
        Column::new("top1".into(), top1),
        Column::new(
            "paper_table".into(),
            paper
                .iter()
                .map(|p| p.as_ref().map(|p| p.table))
                .collect::<Vec<_>>(),
        ),
        opt_str_col(
            "paper_setting",
            paper
                .iter()
                .map(|p| p.as_ref().map(|p| p.setting.clone()))
                .collect(),
        ),
        Column::new(
            "paper_top1".into(),
            paper
                .iter()
                .map(|p| p.as_ref().map(|p| p.top1))
                .collect::<Vec<_>>(),
        ),
        Column::new("paper_method_top1".into(), method_top1),
        opt_str_col("eval_dir", folders),
    ])
}

/// `x` with `decimals` decimals, a half rounded away from zero as on the decimal value the
/// number stands for: 47.35 (a top-1 over 2,000 images, stored as 47.34999...) reads 47.4, as
/// 15.95 reads 16.0, whichever side of the half its binary form falls (`format!` rounds the
/// binary value, so it writes 47.4 but 15.9).
pub fn fixed(x: f64, decimals: usize) -> String {
    let scale = 10f64.powi(decimals as i32);
    let t = x * scale;
    let ulps = 8.0 * f64::EPSILON * t.abs();
    // a magnitude too large for a fraction to show (or no number) is written as it is
    if !t.is_finite() || ulps >= 0.1 {
        return format!("{x:.decimals$}");
    }
    // within a few ulps of a half: the decimal value is the half itself
    let half = ((t - t.trunc()).abs() - 0.5).abs() <= ulps;
    let r = if half { t.trunc() + t.signum() } else { t.round() };
    format!("{:.decimals$}", r / scale)
}

/// One cell as text: nulls empty, `top1`-like floats with two decimals in Markdown, a
/// trailing zero dropped (`79.3`, the paper's; `82.65`, ours: a top-1 over 2,000 test images
/// moves by 0.05, and one decimal read 64.35 and 64.4 alike), other
/// floats with up to 4 decimals (both rounding a half away from zero, [`fixed`]), or 3
/// significant digits where those would show a nonzero value as 0; CSV keeps full precision
/// (the shortest decimal that reads back as the same float, `77.0`, `1.5e-9`: polars' own
/// display kept 6 digits).
fn cell(v: &AnyValue<'_>, column: &str, markdown: bool) -> String {
    match v {
        AnyValue::Null => String::new(),
        AnyValue::Float64(x) if markdown && column.contains("top1") => {
            let s = fixed(*x, 2);
            s.strip_suffix('0').map(str::to_string).unwrap_or(s)
        }
        // (a loss of 1e-9, a collapsing run's, read as exactly 0)
        AnyValue::Float64(x) if markdown && *x != 0.0 && x.abs() < 5e-5 => format!("{x:.2e}"),
        AnyValue::Float64(x) if markdown => {
            let s = fixed(*x, 4);
            let s = s.trim_end_matches('0').trim_end_matches('.');
            s.to_string()
        }
        AnyValue::Float64(x) => format!("{x:?}"),
        AnyValue::Float32(x) => format!("{x:?}"),
        AnyValue::String(s) => s.to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        other => other.to_string(),
    }
}

/// The table's rows as text cells (header first).
pub fn rows_as_text(df: &DataFrame, markdown: bool) -> Vec<Vec<String>> {
    let names: Vec<String> = df.columns().iter().map(|c| c.name().to_string()).collect();
    let mut out = vec![names.clone()];
    for i in 0..df.height() {
        out.push(
            df.columns()
                .iter()
                .zip(&names)
                .map(|(c, n)| c.get(i).map(|v| cell(&v, n, markdown)).unwrap_or_default())
                .collect(),
        );
    }
    out
}

/// Renders a DataFrame as a GitHub-flavoured Markdown table.
pub fn to_markdown(df: &DataFrame) -> String {
    let rows = rows_as_text(df, true);
    // a cell holds names from the runs' records: nothing in one may end the cell, the row or
    // the table (`|`, a line break), open a code span, or pass as HTML to a viewer that renders it
    let esc = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('&', "&amp;")
            .replace('|', "\\|")
            .replace('`', "\\`")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace(['\r', '\n'], " ")
    };
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        out.push_str("| ");
        out.push_str(&row.iter().map(|c| md_marks(&esc(c))).collect::<Vec<_>>().join(" | "));
        out.push_str(" |\n");
        if i == 0 {
            out.push_str(&format!("|{}\n", " --- |".repeat(row.len())));
        }
    }
    out
}

/// `s` with Markdown's emphasis, link and strike-through marks (`*`, `_`, `[`, `]`, `~`)
/// escaped: `plain-_u_` was shown as plain-*u*, a file named `[l](http:u)` as a link.
fn md_marks(s: &str) -> String {
    ['*', '_', '[', ']', '~'].iter().fold(s.to_string(), |s, c| s.replace(*c, &format!("\\{c}")))
}

/// `s` as Markdown text (a heading, a list item): its line breaks as spaces, and outside its
/// code spans (between backticks, left as they are) backslashes, `*`, `_`, `[`, `]` and `~`
/// escaped and `&`, `<`, `>` as entities (a name holding `&amp;` is shown as written, not as
/// `&`), so that a name from a run's records is shown as written (`plain-_u_` was plain-*u*),
/// never run as HTML by a viewer that renders HTML in Markdown. With an odd number of
/// backticks (a folder name holding one, beside a message's own code spans) none is a span:
/// each is escaped (the viewer paired the name's backtick with the message's, and showed the
/// text between as code).
///
/// A run of several backticks (a name holding ```` ``` ````) makes none a span either: Markdown
/// pairs runs of equal length only, so the text after an unclosed run was no code, and its
/// `<img ...>` passed as HTML where it was left as code.
pub fn md_text(s: &str) -> String {
    let spans = s.matches('`').count().is_multiple_of(2) && !s.contains("``");
    if !spans {
        return s.split('`').map(md_text).collect::<Vec<_>>().join("\\`");
    }
    s.split('`')
        .enumerate()
        .map(|(i, part)| {
            let part = part.replace(['\r', '\n'], " ");
            if spans && i % 2 == 1 {
                part
            } else {
                md_marks(&part.replace('\\', "\\\\").replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;"))
            }
        })
        .collect::<Vec<_>>()
        .join("`")
}

/// A value of the runs' records (a swept value, a file's name) as it is placed in a caption's
/// or a note's prose, whose own backticks mark code: its backticks shown as `ˋ` (U+02CB) and
/// its line breaks as spaces (a value holding a backtick began a code span in the HTML that
/// ran on to the end of the sentence).
pub fn prose(s: &str) -> String {
    s.replace('`', "\u{2cb}").replace(['\r', '\n'], " ")
}

/// Renders a DataFrame as CSV (header line first, full precision).
pub fn to_csv(df: &DataFrame) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in rows_as_text(df, false) {
        // Writing to a Vec cannot fail.
        w.write_record(&row).expect("CSV to memory");
    }
    String::from_utf8(w.into_inner().expect("CSV to memory")).expect("CSV of UTF-8 cells is UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Equal seeds have their value as mean and a spread of 0 (the seeds table read a mean of
    /// 49.45000000000001 and a standard deviation of 8.7e-15).
    #[test]
    fn equal_values_have_their_mean_exactly() {
        let m = crate::figures::mean(&[49.45, 49.45, 49.45]);
        assert_eq!(m, 49.45);
        assert_eq!([49.45f64; 3].iter().map(|x| (x - m).powi(2)).sum::<f64>(), 0.0);
        assert_eq!(crate::figures::mean(&[1.0, 2.0, 6.0]), 3.0);
        assert!(crate::figures::mean(&[]).is_nan());
    }

    #[test]
    fn numbers_read_exponents_signs_and_ranges() {
        assert_eq!(numbers("0.15-0.2"), [0.15, 0.2]);
        assert_eq!(numbers("[0.15, 0.2]"), [0.15, 0.2]);
        assert_eq!(numbers("4"), [4.0]);
        assert_eq!(numbers("1e-3"), [1e-3]);
        assert_eq!(numbers("5E+2"), [500.0]);
        assert_eq!(numbers("[7.5e-2, 0.2]"), [0.075, 0.2]);
        assert_eq!(numbers("-0.5"), [-0.5]);
        assert_eq!(numbers("[-1, -2e-1]"), [-1.0, -0.2]);
        assert_eq!(numbers("\"multi-block\""), Vec::<f64>::new());
        // the order a sweep over a learning rate is drawn in
        let mut v = vec!["1e-3", "1e-4", "5e-4"];
        v.sort_by(|a, b| numbers(a).partial_cmp(&numbers(b)).unwrap());
        assert_eq!(v, ["1e-4", "5e-4", "1e-3"]);
    }

    #[test]
    fn paper_csv_parses_and_dedups() {
        let rows = paper_rows();
        assert!(rows
            .iter()
            .any(|r| r.table == 1 && r.arch == "ViT-H/14" && r.top1 == 79.3));
        let t1_mae_b = rows
            .iter()
            .filter(|r| r.table == 1 && r.method == "MAE" && r.arch == "ViT-B/16");
        assert_eq!(t1_mae_b.count(), 1);
        assert_eq!(paper_table().height(), rows.len());
    }

    #[test]
    fn paper_rows_say_a_resolution_other_than_224() {
        // Table 1's I-JEPA ViT-H/16 at 448 px (81.1) read as a 224 px result beside the ViT-H/14
        let t = linear_table(&Registry::default());
        let arch = t.column("arch").unwrap().str().unwrap();
        let top1 = t.column("top1").unwrap().f64().unwrap();
        let at = |v: f64| (0..t.height()).find(|&i| top1.get(i) == Some(v)).and_then(|i| arch.get(i)).unwrap();
        assert_eq!(at(81.1), "ViT-H/16 (448 px)");
        assert_eq!(at(79.3), "ViT-H/14");
        let t = finetune_table(&Registry::default());
        let arch: Vec<_> = t.column("arch").unwrap().str().unwrap().iter().flatten().collect();
        assert!(arch.contains(&"ViT-H/14 (448 px)") && arch.contains(&"ViT-H/16 (448 px)"), "{arch:?}");
    }

    #[test]
    fn ablation_mapping() {
        assert_eq!(
            paper_ablation("mask.targets.scale", "0.15-0.2").map(|p| p.top1),
            Some(54.2)
        );
        assert_eq!(
            paper_ablation("mask.context.scale", "0.4-1.0").map(|p| p.top1),
            Some(31.2)
        );
        assert_eq!(
            paper_ablation("mask.targets.count", "2").map(|p| p.top1),
            Some(22.0)
        );
        assert!(paper_ablation("mask.targets.scale", "0.5-0.6").is_none());
        assert!(paper_ablation("optimizer.lr", "0.15-0.2").is_none());
        // Tables 6, 7 and 11 by the variant's word
        assert_eq!(paper_ablation("mask", "rasterized").map(|p| (p.table, p.top1)), Some((6, 15.5)));
        assert_eq!(paper_ablation("target", "pixels").map(|p| (p.table, p.top1)), Some((7, 40.7)));
        assert_eq!(paper_ablation("target.masking", "input").map(|p| (p.table, p.top1)), Some((11, 56.1)));
        assert_eq!(paper_ablation("target.masking", "output").map(|p| p.top1), Some(67.3));
        assert!(paper_ablation("mask", "checkerboard").is_none());
        // a zip over the three: the key the point moves off the method decides the table
        let point = |m: &str, t: &str, a: &str| {
            let (km, kt, ka) = ("mask".to_string(), "target".to_string(), "target.masking".to_string());
            let (vm, vt, va) = (m.to_string(), t.to_string(), a.to_string());
            paper_ablation_point(&[(&km, &vm), (&kt, &vt), (&ka, &va)]).map(|p| (p.table, p.top1))
        };
        assert_eq!(point("multi-block", "representation", "output"), Some((6, 54.2)));
        assert_eq!(point("block", "representation", "output"), Some((6, 20.2)));
        assert_eq!(point("random", "representation", "output"), Some((6, 17.6)));
        assert_eq!(point("multi-block", "pixels", "output"), Some((7, 40.7)));
        assert_eq!(point("multi-block", "representation", "input"), Some((11, 56.1)));
        // two changes at once: a setting the paper did not measure (it had Table 6's row of
        // the first), in the table and in the figure
        assert_eq!(point("random", "pixels", "output"), None);
        assert_eq!(point("multi-block", "pixels", "input"), None);
        let (km, kt, vm, vt) = ("mask".to_string(), "target".to_string(), "random".to_string(), "pixels".to_string());
        assert!(paper_ablation_rows(&[(&km, &vm), (&kt, &vt)]).is_empty());
        let (k, v) = ("optimizer.lr.peak".to_string(), "0.001".to_string());
        assert!(paper_ablation_point(&[(&k, &v), (&k, &v)]).is_none());
        // the method itself stands for each table's method row; a variant for its own row
        let rows = |m: &str, t: &str, a: &str| {
            let (km, kt, ka) = ("mask".to_string(), "target".to_string(), "target.masking".to_string());
            let (vm, vt, va) = (m.to_string(), t.to_string(), a.to_string());
            paper_ablation_rows(&[(&km, &vm), (&kt, &vt), (&ka, &va)]).iter().map(|p| (p.table, p.top1)).collect::<Vec<_>>()
        };
        assert_eq!(rows("multi-block", "representation", "output"), [(6, 54.2), (7, 66.9), (11, 67.3)]);
        assert_eq!(rows("multi-block", "representation", "input"), [(11, 56.1)]);
        // each table's method row, the reference its variants read against
        let method = |t: i64| paper_method_row(t).map(|p| p.top1);
        assert_eq!([6, 7, 8, 9, 10, 11].map(method), [Some(54.2), Some(66.9), Some(54.2), Some(54.2), Some(54.2), Some(67.3)]);
        assert!(paper_method_row(1).is_none());
    }

    /// A sweep's seed is a repeat, not a setting: the paper's row of a seeded point is the
    /// row of its setting.
    #[test]
    fn a_seed_does_not_hide_the_paper_row() {
        let (k, v, s, n) = ("mask.targets.scale".to_string(), "0.15 0.2".to_string(), "seed".to_string(), "1".to_string());
        assert_eq!(paper_ablation_point(&[(&k, &v), (&s, &n)]).map(|p| (p.table, p.top1)), Some((8, 54.2)));
        assert_eq!(paper_ablation_point(&[(&s, &n), (&k, &v)]).map(|p| p.top1), Some(54.2));
        // a seed alone maps to nothing
        assert!(paper_ablation_point(&[(&s, &n)]).is_none());
        // nor does an evaluation's setting change the pretraining the paper's row is of
        let (e, five) = ("eval.knn.k".to_string(), "5".to_string());
        assert_eq!(paper_ablation_point(&[(&e, &five), (&s, &n), (&k, &v)]).map(|p| p.top1), Some(54.2));
        assert_eq!(paper_ablation_rows(&[(&e, &five), (&k, &v)]).iter().map(|p| p.top1).collect::<Vec<_>>(), [54.2]);
        assert!(paper_ablation_point(&[(&e, &five)]).is_none());
    }

    /// Scores exact in decimal (top-1 over 2,000 images: multiples of 0.05) round a half away
    /// from zero, whichever side of it their binary form falls.
    #[test]
    fn halves_round_away_from_zero() {
        for (x, one) in [(15.95, "16.0"), (33.05, "33.1"), (47.35, "47.4"), (0.05, "0.1"), (-0.05, "-0.1"), (71.234, "71.2"), (71.25, "71.3"), (99.949, "99.9")] {
            assert_eq!(fixed(x, 1), one, "{x}");
        }
        assert_eq!(fixed(0.00005, 4), "0.0001");
        assert_eq!(fixed(0.12344, 4), "0.1234");
        // magnitudes with no fraction left, and non-finite values, are written as they are
        assert_eq!(fixed(31739187200.0, 4), "31739187200.0000");
        assert_eq!(fixed(9.5e20, 1), format!("{:.1}", 9.5e20));
        assert_eq!(fixed(f64::NAN, 1), "NaN");
        // a top-1 shows two decimals (over 2,000 test images it moves by 0.05: one decimal read
        // 64.35 and 64.4 alike), a trailing zero dropped (the paper's 79.3)
        let df = df!("top1" => [15.95, 33.05, 47.35, 79.3, 80.0, 71.235], "lr" => [0.00125, 0.5, 2.5, 1.0, 1.0, 1.0]).unwrap();
        let md = to_markdown(&df);
        for row in ["| 15.95 | 0.0013 |", "| 33.05 | 0.5 |", "| 47.35 | 2.5 |", "| 79.3 | 1 |", "| 80.0 | 1 |", "| 71.24 | 1 |"] {
            assert!(md.contains(row), "{row}: {md}");
        }
        // CSV keeps the value itself
        assert_eq!(to_csv(&df.head(Some(3))), "top1,lr\n15.95,0.00125\n33.05,0.5\n47.35,2.5\n");
    }

    /// CSV cells keep every digit, whatever the magnitude; Markdown shows a tiny nonzero value
    /// with its exponent (a loss of 1.2e-9 read "0").
    #[test]
    fn csv_keeps_full_precision_and_markdown_no_false_zero() {
        let df = df!("final_loss" => [0.141946180164814, 1.23456789e-9, 123456789012.5, 0.0]).unwrap();
        assert_eq!(to_csv(&df), "final_loss\n0.141946180164814\n1.23456789e-9\n123456789012.5\n0.0\n");
        let md = to_markdown(&df);
        assert!(md.contains("| 0.1419 |") && md.contains("| 1.23e-9 |") && md.contains("| 0 |"), "{md}");
    }

    #[test]
    fn markdown_and_csv() {
        let df = df!("method" => ["a|b"], "top1" => [71.234], "loss" => [0.5]).unwrap();
        let md = to_markdown(&df);
        assert!(md.contains("| a\\|b | 71.23 | 0.5 |"), "{md}");
        assert_eq!(to_csv(&df), "method,top1,loss\na|b,71.234,0.5\n");
        // emphasis, a link and strike-through in a name are shown as written (`plain-_u_` was
        // plain-*u*; a file named `[l](http:u)` a link)
        let df = df!("method" => ["plain-_u_ *x* [l](http:u) ~~s~~"], "top1" => [1.0]).unwrap();
        let md = to_markdown(&df);
        assert!(md.contains("| plain-\\_u\\_ \\*x\\* \\[l\\](http:u) \\~\\~s\\~\\~ | 1.0 |"), "{md}");
        assert!(md.contains("| method | top1 |"), "{md}");
        assert_eq!(md_text("Training loss: plain-_u_ `a_b` <i>"), "Training loss: plain-\\_u\\_ `a_b` &lt;i&gt;");
        // a backtick of a name beside a code span: none is a span
        assert_eq!(md_text("runs/a`b: `ijepa eval` it"), "runs/a\\`b: \\`ijepa eval\\` it");
        // a run of backticks (Markdown pairs runs of equal length only): none is a span, and
        // what follows is escaped (its `<img>` passed as HTML)
        assert_eq!(md_text("d ```<img>`: it"), "d \\`\\`\\`&lt;img&gt;\\`: it");
        // a value in prose: its backticks cannot end a caption's code span, nor its line breaks a line
        assert_eq!(prose("a`b\nc"), "a\u{2cb}b c");
        assert_eq!(md_text(&format!("`ijepa run` of {}", prose("<i>`x"))), "`ijepa run` of &lt;i&gt;\u{2cb}x");
    }
}
