//! The report's figures, built from the run registry: training loss, schedules, learning
//! monitors, probe curves and, for every sweep, the trend of top-1 against the swept value with
//! the paper's numbers beside ours (its ablations, Tables 6-11).

use std::collections::BTreeMap;

use crate::plot::{smooth, Figure, Panel, Series, Stroke, XAxis};
use crate::registry::{EvalRecord, EvalRun, MetricRow, MonitorRow, PretrainRun, Registry};
use crate::tables::{numbers, paper_ablation_rows, SEED};

/// A figure of the report with its file stem and caption.
#[derive(Debug, Clone)]
pub struct NamedFigure {
    /// File stem under `plots/` (`<stem>.svg`, `<stem>.png`).
    pub stem: String,
    /// The figure.
    pub figure: Figure,
    /// What the figure shows, for the caption.
    pub caption: String,
}

/// A file-name-safe form of an experiment name: the name itself where it is (the language's
/// names are), else with its other characters as `-` and a hash of the whole name (`α` and
/// `β`, of hand-edited or foreign records, both were `-`: one's figures overwrote the other's).
pub fn slug(name: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
    // (a long name is cut: with the figure's prefix and suffix a file name stays far below
    // the 255 bytes file systems allow, where a 240-character name failed the whole report)
    const LONGEST: usize = 100;
    let s: String = name.chars().map(|c| if safe(c) { c } else { '-' }).collect();
    if name.chars().all(safe) && s.len() <= LONGEST {
        return s;
    }
    // FNV-1a: stable across versions and machines (file names are kept between reports)
    let h = name.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    format!("{}-{h:08x}", &s[..s.len().min(LONGEST)])
}

/// `key=value, ...` of a sweep point.
fn point_text(varied: &BTreeMap<String, String>) -> String {
    varied.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

/// `<experiment folder>/<stage folder>` of a run folder: how evaluations name their encoder's
/// pretraining (`pretrain_dir`, relative to wherever the runs folder was).
pub(crate) fn tail2(p: &std::path::Path) -> std::path::PathBuf {
    let mut it = p.components().rev().take(2).collect::<Vec<_>>();
    it.reverse();
    it.iter().collect()
}

/// The pretraining runs an experiment's figures show: its own, and in a sweep (whose points
/// are experiments of their own, `<study>-<point>`) those its evaluations read.
pub fn runs_of<'a>(reg: &'a Registry, exp: &str) -> Vec<&'a PretrainRun> {
    let read: Vec<std::path::PathBuf> = reg
        .evals
        .iter()
        .filter(|e| e.record.experiment == exp)
        .filter_map(|e| e.record.pretrain_dir.as_deref().map(|d| tail2(std::path::Path::new(d))))
        .collect();
    // (and a point's that none read: it diverged or was stopped, and its manifest records the
    // study that ran it)
    reg.pretrains
        .iter()
        .filter(|r| r.manifest.experiment == exp || read.contains(&tail2(&r.dir)) || r.manifest.study.as_deref() == Some(exp))
        .collect()
}

/// Whether an experiment is only a sweep point whose runs another experiment (its study)
/// already shows.
pub fn shown_by_study(reg: &Registry, exp: &str) -> bool {
    let own: Vec<&PretrainRun> = reg.pretrains.iter().filter(|r| r.manifest.experiment == exp).collect();
    !own.is_empty()
        && !reg.evals.iter().any(|e| e.record.experiment == exp)
        && own.iter().all(|r| {
            reg.experiments().iter().any(|other| other != exp && runs_of(reg, other).iter().any(|o| o.dir == r.dir))
        })
}

/// Each pretrain folder's sweep point (by the folder's last two components), as the settings
/// it varies.
type RunPoints = BTreeMap<String, BTreeMap<String, String>>;

/// The sweep point each pretrain folder belongs to: from its manifest (the point's settings
/// that pretraining reads: one pretraining serves the points that differ only in an
/// evaluation's), else from the evaluations that read it (a run of an earlier version).
fn points_of_runs(reg: &Registry) -> RunPoints {
    let mut out = BTreeMap::new();
    for e in &reg.evals {
        if let Some(dir) = &e.record.pretrain_dir {
            // (the settings pretraining reads: a sweep over an evaluation's settings alone
            // labelled its one shared pretraining with whichever point's value was read last)
            let varied: BTreeMap<String, String> = e.record.varied.iter().filter(|(k, _)| !k.starts_with("eval.")).map(|(k, v)| (k.clone(), v.clone())).collect();
            if !varied.is_empty() {
                out.insert(tail2(std::path::Path::new(dir)).to_string_lossy().into_owned(), varied);
            }
        }
    }
    for r in reg.pretrains.iter().filter(|r| !r.manifest.varied.is_empty()) {
        out.insert(tail2(&r.dir).to_string_lossy().into_owned(), r.manifest.varied.clone());
    }
    out
}

/// A run's sweep point ([`points_of_runs`]), if any.
fn point_of<'a>(r: &PretrainRun, points: &'a RunPoints) -> Option<&'a BTreeMap<String, String>> {
    points.get(tail2(&r.dir).to_string_lossy().as_ref())
}

/// A run's legend label: its folder and, in a sweep, its point.
fn run_label(r: &PretrainRun, points: &RunPoints) -> String {
    match point_of(r, points) {
        Some(p) => format!("{} [{}]", r.name(), point_text(p)),
        None => r.name(),
    }
}

/// How many pretraining runs a figure names, each in a colour of its own. Past them the
/// palette's colours repeated (a 60-point sweep drew 60 runs in 10 colours under a legend of
/// 120 entries, a PNG 1,900 px tall): the others are drawn faint grey under one legend entry,
/// and the tables name each.
const NAMED_RUNS: usize = 6;
/// The named runs' colours, in every figure: the palette but the colours that mean one thing
/// in the whole report: orange the random init, bluish green the raw pixels (a run's colour
/// in the loss figure was a baseline's in the probe figure), black the monitor's floors and
/// grey the runs past the named ones.
const RUN_COLOURS: [usize; NAMED_RUNS] = [0, 3, 4, 5, 8, 9];
/// Colour index ([`crate::plot::PALETTE`]'s grey) of the runs past the named ones.
const OTHERS_COLOUR: usize = 7;

/// The colour of the `i`-th run of an experiment (the same in each of its figures), `None`
/// past the runs a figure names.
fn run_colour(i: usize) -> Option<usize> {
    RUN_COLOURS.get(i).copied()
}

/// The legend entry of the `n` runs (or curves) drawn faint grey, unnamed.
fn others_label(n: usize, what: &str) -> String {
    format!("{n} more {what}{} (faint grey; the tables name each)", if n == 1 { "" } else { "s" })
}

/// The caption's sentence on the `n` runs drawn faint grey, if any, with what is drawn of
/// each (`" (the smoothed curve alone)"`), if not all.
fn others_caption(n: usize, drawn: &str) -> String {
    match n {
        0 => String::new(),
        1 => format!(" The first {NAMED_RUNS} runs (a sweep's in its order) have colours of their own; the other one, which would repeat them, is drawn faint grey{drawn}, unnamed (the tables name it)."),
        _ => format!(" The first {NAMED_RUNS} runs (a sweep's in its order) have colours of their own; the other {n}, which would repeat them, are drawn faint grey{drawn}, unnamed (the tables name each)."),
    }
}

/// EMA smoothing weight that averages over about 1/40 of the curve.
fn smoothing_weight(n: usize) -> f64 {
    let window = (n as f64 / 40.0).max(1.0);
    1.0 - 2.0 / (window + 1.0)
}

fn loss_figure(exp: &str, runs: &[&PretrainRun], points: &RunPoints) -> Option<NamedFigure> {
    // one panel per loss: each recipe's is on a scale of its own
    let mut panels: Vec<Panel> = Vec::new();
    // of each panel, the highest loss of a run that did not diverge, and the series of those
    // that did
    let mut healthy_top: Vec<Option<f64>> = Vec::new();
    let mut diverged: Vec<Vec<usize>> = Vec::new();
    let others = runs.iter().enumerate().filter(|(i, r)| !r.metrics.is_empty() && run_colour(*i).is_none()).count();
    for (i, r) in runs.iter().enumerate().filter(|(_, r)| !r.metrics.is_empty()) {
        let name = r.loss_name().unwrap_or_else(|| "training loss".into());
        let at = match panels.iter().position(|p| p.title == name) {
            Some(at) => at,
            None => {
                panels.push(Panel { title: name, x_label: "optimizer step".into(), y_label: "training loss".into(), x: XAxis::Numeric, series: Vec::new() });
                healthy_top.push(None);
                diverged.push(Vec::new());
                panels.len() - 1
            }
        };
        let steps: Vec<f64> = r.metrics.iter().map(|m| m.step as f64).collect();
        let raw: Vec<f64> = r.metrics.iter().map(|m| m.loss).collect();
        let smoothed = smooth(&raw, smoothing_weight(raw.len()));
        // (a run past the named ones: its smoothed curve alone, faint grey)
        let colour = run_colour(i);
        if r.manifest.diverged().is_some() {
            let n = panels[at].series.len();
            diverged[at].extend(if colour.is_some() { vec![n, n + 1] } else { vec![n] });
        } else if let Some(top) = raw.iter().copied().filter(|v| v.is_finite()).reduce(f64::max) {
            healthy_top[at] = Some(healthy_top[at].map_or(top, |t: f64| t.max(top)));
        }
        let series = &mut panels[at].series;
        match colour {
            Some(c) => {
                series.push(Series { label: None, points: steps.iter().copied().zip(raw).collect(), colour: c, stroke: Stroke::Faint });
                series.push(Series::new(run_label(r, points), steps.into_iter().zip(smoothed).collect(), c, Stroke::Solid));
            }
            None => series.push(Series::new(others_label(others, "run"), steps.into_iter().zip(smoothed).collect(), OTHERS_COLOUR, Stroke::Faint)),
        }
    }
    if panels.is_empty() {
        return None;
    }
    // a diverged run's curve stops where it leaves twice the others' highest loss: its last
    // losses (6.5e9) set the axis, and the runs that did not diverge were one flat line at 0
    let mut cut = false;
    for ((panel, top), diverged) in panels.iter_mut().zip(&healthy_top).zip(&diverged) {
        let Some(top) = top.filter(|t| *t > 0.0) else { continue };
        for &k in diverged {
            for p in panel.series[k].points.iter_mut().filter(|p| p.1 > 2.0 * top) {
                p.1 = f64::NAN;
                cut = true;
            }
        }
    }
    let cut = if cut { " A run that diverged is drawn only where its loss stays within twice the highest loss of the runs that did not." } else { "" };
    // (one among the faint grey ones was a short grey stub, told from the others by nothing)
    let grey_diverged = runs.iter().enumerate().filter(|(i, r)| run_colour(*i).is_none() && !r.metrics.is_empty() && r.manifest.diverged().is_some()).count();
    let grey_diverged = match grey_diverged {
        0 => String::new(),
        1 => " One of the faint grey runs diverged (the pretraining table names it).".to_string(),
        n => format!(" {n} of the faint grey runs diverged (the pretraining table names them)."),
    };
    let apart = if panels.len() > 1 {
        " One panel per loss: the recipes' losses measure different things on scales of their own, and are not compared by their levels."
    } else {
        ""
    };
    // (one panel: its axis says what the loss is)
    if let [one] = &mut panels[..] {
        one.y_label = std::mem::take(&mut one.title);
    }
    Some(NamedFigure {
        stem: format!("loss-{}", slug(exp)),
        caption: format!(
            "Training loss per optimizer step, one colour per pretraining run: the smoothed curve \
             (exponential moving average over about 1/40 of the run) over the raw one (faint).{apart}{cut}{}{grey_diverged}",
            others_caption(others, " (the smoothed curve alone)")
        ),
        figure: Figure { title: format!("Training loss: {exp}"), panels },
    })
}

fn schedules_figure(exp: &str, runs: &[&PretrainRun], points: &RunPoints) -> Option<NamedFigure> {
    type Get = fn(&MetricRow) -> Option<f64>;
    let columns: [(&str, &str, Get); 3] = [
        ("Learning rate", "learning rate", |m| m.lr),
        ("Weight decay", "weight decay", |m| m.wd),
        ("Target-encoder EMA", "EMA momentum", |m| m.momentum),
    ];
    let mut panels = Vec::new();
    // (one count in every panel's legend entry: a run that logged no EMA is one of them too)
    let drawn = |r: &PretrainRun| r.metrics.iter().any(|m| columns.iter().any(|c| (c.2)(m).is_some()));
    let others = runs.iter().enumerate().filter(|(i, r)| run_colour(*i).is_none() && drawn(r)).count();
    for (title, y, get) in columns {
        let series: Vec<Series> = runs
            .iter()
            .enumerate()
            .filter(|(_, r)| r.metrics.iter().any(|m| get(m).is_some()))
            .map(|(i, r)| {
                let pts = r.metrics.iter().filter_map(|m| get(m).map(|v| (m.step as f64, v))).collect();
                match run_colour(i) {
                    Some(c) => Series::new(run_label(r, points), pts, c, Stroke::Solid),
                    None => Series::new(others_label(others, "run"), pts, OTHERS_COLOUR, Stroke::Faint),
                }
            })
            .collect();
        if !series.is_empty() {
            panels.push(Panel { title: title.into(), x_label: "optimizer step".into(), y_label: y.into(), x: XAxis::Numeric, series });
        }
    }
    if panels.is_empty() {
        return None;
    }
    Some(NamedFigure {
        stem: format!("schedules-{}", slug(exp)),
        caption: format!("The schedules each pretraining run followed, per optimizer step (from `metrics.csv`).{}", others_caption(others, "")),
        figure: Figure { title: format!("Schedules: {exp}"), panels },
    })
}

/// A run's monitored encoders in the order its `monitor.csv` first lists them, which is the
/// recipe's (`Recipe::feature_encoders`): the one evaluations read first (I-JEPA's `target`,
/// DINO's `teacher`, MAE's single `encoder`, whatever a registered recipe calls its own),
/// then the others (I-JEPA's `context`, DINO's `student`). The raw pixels are not an encoder.
fn monitored_encoders(r: &PretrainRun) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for m in &r.monitor {
        if m.encoder != "pixels" && !out.contains(&m.encoder.as_str()) {
            out.push(m.encoder.as_str());
        }
    }
    out
}

fn monitor_figure(exp: &str, runs: &[&PretrainRun], points: &RunPoints) -> Option<NamedFigure> {
    let runs: Vec<(usize, &&PretrainRun)> = runs.iter().enumerate().filter(|(_, r)| !r.monitor.is_empty()).collect();
    if runs.is_empty() {
        return None;
    }
    type Get = fn(&MonitorRow) -> f64;
    // (with the config's key of the floor below which the monitor warns of a collapse)
    let columns: [(&str, &str, Get, bool, Option<&str>); 3] = [
        ("kNN top-1 (held-out images)", "kNN top-1 (%)", |m| m.knn_top1, true, None),
        ("Effective rank (RankMe)", "effective rank", |m| m.rankme, false, Some("monitor.rank_floor")),
        ("Feature spread", "std per dimension x sqrt(D)", |m| m.spread, false, Some("monitor.spread_floor")),
    ];
    let mut panels = Vec::new();
    let mut floors_drawn = false;
    let others = runs.iter().filter(|(i, r)| run_colour(*i).is_none() && !monitored_encoders(r).is_empty()).count();
    for (title, y, get, with_pixels, floor) in columns {
        let mut series = Vec::new();
        // the pixels' level, once for the runs on the same held-out images (a study's points
        // and seeds, by their data and monitor settings), which drew one identical line each,
        // a legend entry each
        let mut pixels: Vec<PixelLevel> = Vec::new();
        for &(i, r) in &runs {
            // (at least 1: a run monitored at epoch 0 alone, killed or still in its first epoch,
            // drew its levels from 0 to 0, unseen, on an axis of +-0.004 epochs)
            let last_epoch = (r.monitor.iter().map(|m| m.epoch).max().unwrap_or(0) as f64).max(1.0);
            // the encoder evaluations read first (solid), then the other (dashed); of a run
            // past the named ones, the first alone, faint grey
            let colour = run_colour(i);
            for (k, enc) in monitored_encoders(r).iter().enumerate() {
                let pts = r.monitor.iter().filter(|m| m.encoder == *enc).map(|m| (m.epoch as f64, get(m))).collect();
                let Some(c) = colour else {
                    if k == 0 {
                        series.push(Series::new(others_label(others, "run"), pts, OTHERS_COLOUR, Stroke::Faint));
                    }
                    continue;
                };
                let stroke = if k == 0 { Stroke::Solid } else { Stroke::Dashed };
                // MAE's one encoder is `encoder`: not "encoder encoder"
                let name = if *enc == "encoder" { "encoder".to_string() } else { format!("{enc} encoder") };
                series.push(Series::new(format!("{} {name}", run_label(r, points)), pts, c, stroke));
            }
            if with_pixels {
                if let Some(p) = r.monitor.iter().find(|m| m.encoder == "pixels") {
                    PixelLevel::add(&mut pixels, r, get(p), last_epoch, (run_label(r, points), colour));
                }
            }
        }
        // (the first level in the raw pixels' colour; one of other images in its first run's,
        // else all were alike)
        for (k, PixelLevel { value, end, label, colour, runs: n, .. }) in pixels.into_iter().enumerate() {
            let name = match colour {
                _ if n > 1 => format!("raw pixels (the same images for {n} runs)"),
                Some(_) => format!("{label} raw pixels (same images)"),
                None => "raw pixels (the same images as a faint grey run)".to_string(),
            };
            let colour = if k == 0 { subject_colour("raw-pixels") } else { colour.unwrap_or(OTHERS_COLOUR) };
            series.push(Series::new(name, vec![(0.0, value), (end, value)], colour, Stroke::Dotted));
        }
        // the floor the warnings read (a rank wobbling by 0.1 filled the panel and read as a
        // collapse, or as none, with nothing to measure it against), once per value
        let mut floors: Vec<(f64, f64)> = Vec::new();
        for &(_, r) in runs.iter().filter(|_| floor.is_some()) {
            let Some(v) = floor.and_then(|k| r.config_value(k)).and_then(serde_json::Value::as_f64).filter(|v| *v > 0.0) else { continue };
            let end = (r.monitor.iter().map(|m| m.epoch).max().unwrap_or(0) as f64).max(1.0);
            match floors.iter_mut().find(|f| f.0 == v) {
                Some(f) => f.1 = f.1.max(end),
                None => floors.push((v, end)),
            }
        }
        for (v, end) in floors {
            floors_drawn = true;
            series.push(Series::new(format!("collapse-warning floor ({})", crate::plot::tick(v)), vec![(0.0, v), (end, v)], FLOOR_COLOUR, Stroke::Dotted));
        }
        panels.push(Panel { title: title.into(), x_label: "epoch (0: before training)".into(), y_label: y.into(), x: XAxis::Whole, series });
    }
    Some(NamedFigure {
        stem: format!("monitor-{}", slug(exp)),
        caption: format!("Learning monitors measured during pretraining on training images held out of pretraining \
                  (`monitor.csv`): leave-one-out kNN top-1 with the raw pixels' kNN on the same images as a \
                  dotted reference, the effective rank of the features (RankMe, Garrido et al. 2023) and \
                  their spread (1: isotropic, 0: collapsed). Solid: the encoder evaluations read (I-JEPA's \
                  target encoder, DINO's teacher, MAE's encoder); dashed: the other one (I-JEPA's context \
                  encoder, DINO's student).{}{}",
            if floors_drawn { " Black dotted: the floors of the rank and the spread below which the monitor warns of a collapse." } else { "" },
            others_caption(others, " (the encoder evaluations read alone)")
        ),
        figure: Figure { title: format!("Learning monitors: {exp}"), panels },
    })
}

/// The pretraining seconds spent by the end of `step`: the logged step times (`ms_per_step`
/// of every `log-every`-th step) times the steps each stands for. Data stalls, checkpoints and
/// monitors are left out: this is the time the method itself needs.
fn step_seconds(metrics: &[MetricRow], step: u64) -> Option<f64> {
    let mut total = 0.0;
    let mut prev = 0;
    for m in metrics.iter().take_while(|m| m.step <= step) {
        total += m.ms_per_step? * (m.step - prev) as f64 / 1e3;
        prev = m.step;
    }
    Some(total)
}

/// The raw pixels' level of the runs measured on the same held-out images, as the monitor and
/// time figures draw it, once for those runs (a study's points and seeds drew one identical
/// line each, a legend entry each).
struct PixelLevel {
    /// The value's bits and [`held_out_images`].
    key: (u64, String),
    /// The level.
    value: f64,
    /// Where it ends along x: the furthest of its runs'.
    end: f64,
    /// Its first run's label and colour (`None`: a run drawn faint grey).
    label: String,
    colour: Option<usize>,
    /// How many runs it stands for.
    runs: usize,
}

impl PixelLevel {
    /// Counts run `r`'s level `value` (ending at `end`) into `levels`: its set's, or a new one
    /// named by `(label, colour)`.
    fn add(levels: &mut Vec<PixelLevel>, r: &PretrainRun, value: f64, end: f64, (label, colour): (String, Option<usize>)) {
        let key = (value.to_bits(), held_out_images(r));
        match levels.iter_mut().find(|q| q.key == key) {
            Some(q) => {
                q.end = q.end.max(end);
                q.runs += 1;
            }
            None => levels.push(PixelLevel { key, value, end, label, colour, runs: 1 }),
        }
    }
}

/// What picks and prepares a run's monitor's held-out images, as a key: the data's source and
/// the images it keeps (`limit`, `subset`), their crop size and decoding, and the monitor's
/// images and neighbours. Not the augmentations, batch or loader settings, which each recipe
/// of a sweep over recipes sets to its own defaults (the whole data block split one level of
/// the pixels into one a recipe, each said to be of other images).
fn held_out_images(r: &PretrainRun) -> String {
    let data = r.config_value("data");
    let field = |k: &str| data.and_then(|d| d.get(k)).map(|v| v.to_string()).unwrap_or_default();
    let monitor = r.config_value("monitor");
    let of_monitor = |k: &str| monitor.and_then(|m| m.get(k)).map(|v| v.to_string()).unwrap_or_default();
    let fields: Vec<String> = ["dataset", "source", "crop_size", "limit", "subset", "exact_decode"].iter().map(|k| field(k)).collect();
    format!("{} | {} {}", fields.join(" "), of_monitor("images"), of_monitor("k"))
}

/// The paper's Figure 1 view: the held-out kNN of the encoder evaluations read, against
/// pretraining time, one line per run (method); for a study comparing recipes.
fn time_figure(exp: &str, runs: &[&PretrainRun], points: &RunPoints) -> Option<NamedFigure> {
    // (the run's index, its recipe, label and points)
    type Line = (usize, String, String, Vec<(f64, f64)>);
    let mut lines: Vec<Line> = Vec::new();
    // the pixels' levels, one for the runs on the same held-out images, as the monitor figure
    // draws them (one level was drawn, the first run's, as every run's reference)
    let mut pixels: Vec<PixelLevel> = Vec::new();
    let mut end = 0f64;
    for (i, r) in runs.iter().enumerate() {
        // the encoder evaluations read (I-JEPA's target, DINO's teacher, MAE's `encoder`),
        // otherwise the recipe's first (the `context` encoder of I-JEPA with pixel targets)
        let evaluated = monitored_encoders(r).first().copied().unwrap_or("encoder");
        let pts: Vec<(f64, f64)> = r
            .monitor
            .iter()
            .filter(|m| m.encoder == evaluated)
            .filter_map(|m| step_seconds(&r.metrics, m.step).map(|s| (s / 60.0, m.knn_top1)))
            .collect();
        if pts.len() < 2 {
            continue;
        }
        end = end.max(pts.iter().map(|p| p.0).fold(0.0, f64::max));
        if let Some(p) = r.monitor.iter().find(|m| m.encoder == "pixels") {
            PixelLevel::add(&mut pixels, r, p.knn_top1, 0.0, (run_label(r, points), run_colour(i)));
        }
        let recipe = r.config_value("recipe").and_then(|v| v.as_str()).unwrap_or("?").to_string();
        let epochs = r.config_value("epochs").and_then(|v| v.as_u64()).map(|e| format!(", {e} epoch{}", if e == 1 { "" } else { "s" })).unwrap_or_default();
        // (with the run's point: two seeds of a method read alike)
        let label = format!("{recipe}: {}{epochs}", run_label(r, points));
        lines.push((i, recipe, label, pts));
    }
    let methods: std::collections::BTreeSet<&str> = lines.iter().map(|l| l.1.as_str()).collect();
    if methods.len() < 2 {
        return None; // one method: the monitor figure already shows it against epochs
    }
    let others = lines.iter().filter(|l| run_colour(l.0).is_none()).count();
    let mut series: Vec<Series> = lines
        .into_iter()
        .map(|(i, _, label, pts)| match run_colour(i) {
            Some(c) => Series::new(label, pts, c, Stroke::Solid),
            None => Series::new(others_label(others, "run"), pts, OTHERS_COLOUR, Stroke::Faint),
        })
        .collect();
    let alike = pixels.len() == 1;
    // (each drawn over the whole time axis)
    for (k, PixelLevel { value: p, label, colour, runs: n, .. }) in pixels.into_iter().enumerate() {
        // (the first in the raw pixels' colour; one of other images in its first run's)
        let first = |c: usize| if k == 0 { subject_colour("raw-pixels") } else { c };
        let (name, colour) = match colour {
            _ if alike => ("raw pixels (same held-out images)".to_string(), subject_colour("raw-pixels")),
            c if n > 1 => (format!("raw pixels (the same held-out images for {n} runs)"), first(c.unwrap_or(OTHERS_COLOUR))),
            Some(c) => (format!("{label} raw pixels (its held-out images)"), first(c)),
            None => ("raw pixels (the held-out images of a faint grey run)".to_string(), first(OTHERS_COLOUR)),
        };
        series.push(Series::new(name, vec![(0.0, p), (end, p)], colour, Stroke::Dotted));
    }
    Some(NamedFigure {
        stem: format!("time-{}", slug(exp)),
        caption: "The paper's Figure 1 view at laptop scale: held-out kNN top-1 of the encoder each method is \
                  evaluated with (I-JEPA: the target encoder) against the pretraining time spent so far (the sum \
                  of step times from `metrics.csv`; data loading and monitors left out), one line per run, named by \
                  its method and point. Step times are this machine's as the runs found it: on a shared machine two \
                  runs of one setting can differ several-fold, so compare methods run side by side."
            .to_string()
            + &others_caption(others, ""),
        figure: Figure {
            title: format!("Accuracy against pretraining time: {exp}"),
            panels: vec![Panel {
                title: String::new(),
                x_label: "pretraining time (minutes of steps)".into(),
                y_label: "held-out kNN top-1 (%)".into(),
                x: XAxis::Numeric,
                series,
            }],
        },
    })
}

/// Colour index ([`crate::plot::PALETTE`]'s black) of the monitor's collapse-warning floors.
const FLOOR_COLOUR: usize = 6;
/// The colour of a baseline's level, and of the paper's triangles, in a grid sweep's panels
/// (grey: the lines' colours are the combinations').
const GRID_LEVEL_COLOUR: usize = 7;

/// Colour index of an evaluation subject: the pretrained encoder, random init, raw pixels.
fn subject_colour(model: &str) -> usize {
    match model {
        "random-init" => 1,
        "raw-pixels" => 2,
        _ => 0,
    }
}

fn probe_figure(exp: &str, evals: &[&EvalRun], runs: &[&PretrainRun]) -> Option<NamedFigure> {
    let mut with_curve: Vec<&&EvalRun> = evals.iter().filter(|e| !e.record.curve.is_empty()).collect();
    if with_curve.is_empty() {
        return None;
    }
    // in the sweep's order (the evaluations' folders put `1e-3` before `5e-4`)
    with_curve.sort_by(|a, b| crate::tables::point_order(&a.record.varied, &b.record.varied));
    // the encoder of a pretraining run the other figures draw: that run's colour there, where
    // each run's encoder has one curve a protocol (a sweep of the evaluations' own settings,
    // `vary "eval.linear.epochs"`, draws several of one encoder: each its own colour then).
    // Each other subject by its point (a baseline's too: the seeds of a sweep ran their own,
    // whose curves differ, and drew in one colour), recipe (`random init (MAE)` beside
    // I-JEPA's drew in one colour and stroke) and checkpoint (`ijepa eval` of two files drew
    // one colour): the first of each its subject's colour, the others free ones; past the
    // palette, none (drawn faint grey)
    let dirs: Vec<std::path::PathBuf> = runs.iter().map(|run| tail2(&run.dir)).collect();
    let run_of = |r: &EvalRecord| -> Option<usize> {
        let dir = tail2(std::path::Path::new(r.pretrain_dir.as_deref()?));
        dirs.iter().position(|d| *d == dir)
    };
    let mut curves_of: BTreeMap<(usize, &str), usize> = BTreeMap::new();
    for e in &with_curve {
        if let Some(i) = run_of(&e.record) {
            *curves_of.entry((i, e.record.protocol.as_str())).or_default() += 1;
        }
    }
    let by_run = curves_of.values().all(|&n| n == 1);
    let run_of = |r: &EvalRecord| run_of(r).filter(|_| by_run);
    let key = |r: &EvalRecord| -> (String, usize) {
        let point = point_text(&r.varied);
        match r.model.as_str() {
            "random-init" => (format!("init {} {point}", r.method), subject_colour(&r.model)),
            "raw-pixels" => (format!("pixels {point}"), subject_colour(&r.model)),
            _ => (format!("ours {} {point}", r.method), 0),
        }
    };
    // (the colours of the runs drawn here are theirs; the others' are free: a run without a
    // curve kept its colour from a checkpoint's)
    let mut taken: Vec<usize> = with_curve.iter().filter_map(|e| run_colour(run_of(&e.record)?)).collect();
    let mut colours: BTreeMap<String, Option<usize>> = BTreeMap::new();
    for e in with_curve.iter().filter(|e| run_of(&e.record).is_none()) {
        let (k, preferred) = key(&e.record);
        if colours.contains_key(&k) {
            continue;
        }
        // (the palette but the others' grey; black too, which no probe curve draws otherwise)
        let free = RUN_COLOURS.iter().chain(&[1, 2, 6]).copied().find(|c| !taken.contains(c));
        let c = if taken.contains(&preferred) { free } else { Some(preferred) };
        taken.extend(c);
        colours.insert(k, c);
    }
    let colour = |r: &EvalRecord| -> Option<usize> {
        match run_of(r) {
            Some(i) => run_colour(i),
            None => colours[&key(r).0],
        }
    };
    let others = with_curve.iter().filter(|e| colour(&e.record).is_none()).count();
    let mut series = Vec::new();
    for e in with_curve {
        let r = &e.record;
        let point = point_text(&r.varied);
        let points = r.curve.iter().map(|c| (c.epoch as f64, c.top1)).collect();
        let Some(colour) = colour(r) else {
            series.push(Series::new(others_label(others, "curve"), points, OTHERS_COLOUR, Stroke::Faint));
            continue;
        };
        let stroke = if r.protocol == "linear" { Stroke::Solid } else { Stroke::Dashed };
        let mut label = format!("{} · {}", r.method, r.protocol);
        if !point.is_empty() {
            label = format!("{label} [{point}]");
        }
        series.push(Series::new(label, points, colour, stroke));
    }
    Some(NamedFigure {
        stem: format!("probe-{}", slug(exp)),
        caption: "Probe top-1 on the test split after each probe-training (or fine-tuning) epoch (hyper-parameters, where \
                  an evaluation had several to choose from, were chosen on a held-out part of the training split), per subject: the pretrained encoder, \
                  the encoder at its random initialisation and the raw pixels, under the same protocol."
            .to_string()
            + if by_run && !curves_of.is_empty() { " A pretraining run's encoder is drawn in that run's colour in the other figures." } else { "" }
            + &match others {
                0 => String::new(),
                1 => " One curve, past the colours (of a run past the first runs, or a subject past the palette), is drawn faint grey, unnamed (the tables name it).".to_string(),
                n => format!(" {n} curves, past the colours (of runs past the first runs, or subjects past the palette), are drawn faint grey, unnamed (the tables name each)."),
            },
        figure: Figure {
            title: format!("Probe accuracy: {exp}"),
            panels: vec![Panel {
                title: String::new(),
                x_label: "probe-training epoch".into(),
                y_label: "test top-1 (%)".into(),
                x: XAxis::Whole,
                series,
            }],
        },
    })
}

fn protocol_colour(protocol: &str) -> usize {
    match protocol {
        "linear" => 0,
        "low-shot" => 3,
        "knn" => 2,
        "finetune" => 4,
        _ => 5,
    }
}

fn is_baseline(e: &EvalRun) -> bool {
    matches!(e.record.model.as_str(), "random-init" | "raw-pixels")
}

/// The recipe an evaluated subject belongs to, to compare each point with its own recipe's
/// random init: `eval.json`'s `recipe`; for records written before it, read from the display
/// name (`MAE (ours)` -> `mae`, `random init (MAE)` -> `mae`, a plain `random init` is
/// I-JEPA's, the reference). None for the raw pixels, every recipe's.
fn recipe_of(e: &EvalRun) -> Option<String> {
    if e.record.model == "raw-pixels" {
        return None;
    }
    if let Some(r) = &e.record.recipe {
        return Some(r.clone());
    }
    let m = e.record.method.as_str();
    let display = match e.record.model.as_str() {
        "random-init" => m.strip_prefix("random init (").and_then(|r| r.strip_suffix(')')).unwrap_or("I-JEPA"),
        _ => m.split(" (").next().unwrap_or(m),
    };
    // the built-in recipes' display names are their keys with capitals and a hyphen
    Some(display.to_lowercase().replace('-', ""))
}

/// The mean of `v` (NaN when empty), summed as offsets from its first value: equal values
/// have that value as their mean exactly, and a spread of exactly 0 about it (three seeds of
/// 49.45 read a mean of 49.45000000000001 and a deviation of 8.7e-15).
pub(crate) fn mean(v: &[f64]) -> f64 {
    let Some(&first) = v.first() else { return f64::NAN };
    first + v.iter().map(|x| x - first).sum::<f64>() / v.len() as f64
}

/// Distinct strings in first-seen order.
fn distinct<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for s in items {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

fn sweep_figure(reg: &Registry, exp: &str, evals: &[&EvalRun], without_result: &[String]) -> Option<NamedFigure> {
    // the x axis is the pretrained encoder's points; a baseline is drawn against them, never
    // as one of them (a baseline keeps only the settings it depends on, a subset of a point's)
    let swept: Vec<&EvalRun> = evals.iter().copied().filter(|e| !e.record.varied.is_empty() && !is_baseline(e)).collect();
    if swept.is_empty() {
        return None;
    }
    let mut keys: Vec<String> = swept.iter().flat_map(|e| e.record.varied.keys().cloned()).collect();
    keys.sort_unstable();
    keys.dedup();
    // a sweep over seeds alone replicates one setting: no trend to draw (a line joined the
    // seeds as if they were settings); the method tables and the seeds table show them
    if keys.iter().all(|k| k == SEED) {
        return None;
    }
    // a sweep's seeds beside other keys repeat each setting: the seed is no x position, the
    // runs of a setting are drawn at one x (their mean joined by the line, each as a dot)
    // (only where some setting has several seeds: a zip pairing each recipe with a seed of its
    // own drew "mean over seeds" of one seed each)
    let setting = |e: &EvalRun| format!("{} {:?}", e.record.protocol, e.record.varied.iter().filter(|(k, _)| k.as_str() != SEED).collect::<Vec<_>>());
    let repeated = swept.iter().any(|a| swept.iter().any(|b| setting(a) == setting(b) && a.record.varied.get(SEED) != b.record.varied.get(SEED)));
    let seeded = keys.len() > 1 && keys.iter().any(|k| k == SEED) && repeated;
    let shown = |k: &str| !(seeded && k == SEED);
    keys.retain(|k| shown(k));
    let key = keys.join(", ");
    let value = |e: &EvalRun| e.record.varied.iter().filter(|(k, _)| shown(k)).map(|(_, v)| v.clone()).collect::<Vec<_>>().join(", ");
    let mut values: Vec<String> = swept.iter().map(|e| value(e)).collect();
    values.sort_by(|a, b| numbers(a).partial_cmp(&numbers(b)).unwrap_or(std::cmp::Ordering::Equal).then(a.cmp(b)));
    values.dedup();
    let at = |v: &str| values.iter().position(|x| x == v).expect("every value is listed") as f64;
    // names no order joins (recipes, mask kinds, `cifar10` and `cifar100`): each point a dot,
    // not a line from one method to the next as if a setting between them were measured. Each
    // swept setting's own value is read (`1e-4, ijepa` holds a number, and a line zig-zagged
    // between the recipes along the learning rates): a number, or a range of them, with no
    // letters but an exponent's.
    let number = |v: &str| !numbers(v).is_empty() && v.chars().all(|c| !c.is_ascii_alphabetic() || c == 'e' || c == 'E');
    let ordered = swept.iter().all(|e| e.record.varied.iter().filter(|(k, _)| shown(k)).all(|(_, v)| number(v)));
    if ordered {
        if let Some(grid) = grid_figure(reg, exp, evals, &swept, &keys, seeded, without_result) {
            return Some(grid);
        }
    }
    let (line, baseline) = if ordered { (Stroke::Solid, Stroke::Dashed) } else { (Stroke::Dots, Stroke::Crosses) };
    // each x position's first point: its settings and recipe stand for the position's
    let firsts: Vec<&EvalRun> = values.iter().map(|v| *swept.iter().find(|e| value(e) == *v).expect("a point per value")).collect();
    let mut protocols: Vec<&str> = swept.iter().map(|e| e.record.protocol.as_str()).collect();
    protocols.sort_unstable();
    protocols.dedup();
    let mut series = Vec::new();
    let last = (values.len().max(1) - 1) as f64;
    for p in &protocols {
        // the line joins this study's own pretrainings; a checkpoint from elsewhere evaluated
        // at a point (`ijepa eval --point P --checkpoint F`: no pretraining folder) is drawn
        // apart, as open diamonds (it was averaged into the point: a value neither measured;
        // as open circles it read as one more seed of the point)
        let foreign = |e: &EvalRun| e.record.pretrain_dir.is_none() && e.record.checkpoint.is_some();
        let mut ours: Vec<&EvalRun> = swept.iter().copied().filter(|e| e.record.protocol == *p && !foreign(e)).collect();
        for method in distinct(swept.iter().filter(|e| e.record.protocol == *p && foreign(e)).map(|e| e.record.method.as_str())) {
            let dots: Vec<(f64, f64)> = swept
                .iter()
                .filter(|e| e.record.protocol == *p && foreign(e) && e.record.method == method)
                .map(|e| (at(&value(e)), e.record.top1))
                .collect();
            series.push(Series::new(format!("{method} · {p}"), dots, protocol_colour(p), Stroke::Diamonds));
        }
        if ours.is_empty() {
            continue;
        }
        ours.sort_by(|a, b| at(&value(a)).total_cmp(&at(&value(b))));
        let mut pts = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let top1: Vec<f64> = ours.iter().filter(|e| value(e) == *v).map(|e| e.record.top1).collect();
            if !top1.is_empty() {
                pts.push((i as f64, mean(&top1)));
            }
        }
        // the line is named for what it joins: one method, or the methods a sweep over
        // recipes compares
        let methods = distinct(ours.iter().map(|e| e.record.method.as_str()));
        let name = match methods[..] {
            [one] => one.to_string(),
            _ if methods.iter().all(|m| m.ends_with(" (ours)")) => {
                format!("ours ({})", methods.iter().map(|m| m.trim_end_matches(" (ours)")).collect::<Vec<_>>().join(", "))
            }
            _ => methods.join(" / "),
        };
        if seeded {
            series.push(Series::new(format!("{name} · {p} (mean over seeds)"), pts, protocol_colour(p), line));
            let each: Vec<(f64, f64)> = ours.iter().map(|e| (at(&value(e)), e.record.top1)).collect();
            series.push(Series::new(format!("{name} · {p}, each seed"), each, protocol_colour(p), Stroke::Points));
        } else {
            series.push(Series::new(format!("{name} · {p}"), pts, protocol_colour(p), line));
        }
        // the baselines of this protocol at each point: those of its recipe (a random init is
        // the recipe's own) whose settings are the point's (their mean over seeds); a level
        // across the figure when that is one value everywhere
        let mut models: Vec<&str> = evals.iter().filter(|e| is_baseline(e) && e.record.protocol == *p).map(|e| e.record.model.as_str()).collect();
        models.sort_unstable();
        models.dedup();
        for model in models {
            let of_model: Vec<&EvalRun> = evals.iter().copied().filter(|e| e.record.protocol == *p && e.record.model == model).collect();
            let fit = baselines_at(&of_model, &firsts, shown);
            let levels = baseline_levels(&fit);
            let level = matches!(levels[..], [Some(y), ..] if levels.iter().all(|l| *l == Some(y)));
            let pts: Vec<(f64, f64)> = match levels[..] {
                [Some(y), ..] if level => vec![(0.0, y), (last, y)],
                _ => levels.iter().enumerate().filter_map(|(i, l)| l.map(|y| (i as f64, y))).collect(),
            };
            if pts.is_empty() {
                continue;
            }
            let method = baseline_method(&fit);
            let stroke = match model {
                // (the raw pixels' marks other than the random init's: both drew crosses)
                "raw-pixels" if !level && !ordered => Stroke::Squares,
                _ if !level && !ordered => baseline,
                "raw-pixels" => Stroke::Dotted,
                _ => Stroke::Dashed,
            };
            series.push(Series::new(format!("{method} · {p}"), pts, protocol_colour(p), stroke));
        }
    }
    let (paper_series, triangles) = paper_triangles(reg, &swept, |e| at(&value(e)), |i| 6 + i);
    series.extend(paper_series);
    let names = if ordered {
        " The swept values are placed evenly in their order, not to scale."
    } else {
        " The swept values are names, not an order: each point is a dot (a baseline's, a cross), joined by no line."
    };
    let absent = match without_result {
        [] => String::new(),
        points => format!(" Not drawn, with no result: {} (the sweep table lists them).", points.iter().map(|p| crate::tables::prose(p)).collect::<Vec<_>>().join("; ")),
    };
    let (per, baselines) = if ordered { ("one line per", "dashed and dotted lines") } else { ("one colour per", "crosses, and dashed and dotted levels") };
    let seeds = match (seeded, ordered) {
        (true, true) => " With several seeds per setting, the line joins their means and a circle marks each seed's result.",
        (true, false) => " With several seeds per setting, a dot marks their mean and a circle each seed's result.",
        _ => "",
    };
    Some(NamedFigure {
        stem: format!("sweep-{}", slug(exp)),
        caption: format!(
            "Top-1 (%) on the test split against the swept `{key}`, {per} protocol; {baselines}: the random-init \
             encoder (each point's own recipe's) and the raw pixels under the same protocol (a level when \
             they depend on no swept setting; with several seeds, their mean).{names}{seeds}{triangles}{absent}"
        ),
        figure: Figure {
            title: format!("Sweep {exp}: top-1 against {key}"),
            panels: vec![Panel {
                title: String::new(),
                x_label: key.clone(),
                y_label: "top-1 (%)".into(),
                x: XAxis::Categories(values),
                series,
            }],
        },
    })
}

/// The I-JEPA paper's ablation rows (Tables 6-11) at the settings of `swept`'s points, as
/// triangles at `at` (the method's row at the method's point: a variant reads against its own
/// table's method), one colour (`colour` of the table's place) per table, several tables'
/// side by side at one point; and the caption's sentence on them (empty without any).
fn paper_triangles(reg: &Registry, swept: &[&EvalRun], at: impl Fn(&EvalRun) -> f64, colour: impl Fn(usize) -> usize) -> (Vec<Series>, String) {
    let mut paper: BTreeMap<i64, Vec<(f64, f64)>> = BTreeMap::new();
    let mut arch: BTreeMap<i64, String> = BTreeMap::new();
    // (not where the pretraining fixed a setting of Tables 6, 7 or 11 off the method's)
    for e in swept.iter().filter(|e| crate::tables::paper_rows_apply(reg, e)) {
        for row in paper_ablation_rows(&e.record.varied.iter().collect::<Vec<_>>()) {
            arch.insert(row.table, row.arch.clone());
            let pts = paper.entry(row.table).or_default();
            let p = (at(e), row.top1);
            if !pts.contains(&p) {
                pts.push(p);
            }
        }
    }
    let n = paper.len();
    let mut series = Vec::new();
    for (i, (table, mut pts)) in paper.into_iter().enumerate() {
        let shift = if n > 1 { (i as f64 - (n - 1) as f64 / 2.0) * 0.12 } else { 0.0 };
        pts.iter_mut().for_each(|p| p.0 += shift);
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let arch = arch.get(&table).map_or("", String::as_str);
        series.push(Series::new(format!("paper Table {table} ({arch}, 1% ImageNet-1k)"), pts, colour(i), Stroke::Markers));
    }
    let caption = match n {
        0 => String::new(),
        _ => format!(
            " Triangles: the I-JEPA paper's ablation{} at the same setting (a linear probe on 1% of ImageNet-1k; \
             the legend names each table's model, and each table's method is drawn at the method's point), \
             for the trend only (other data and model).",
            if n > 1 { "s" } else { "" }
        ),
    };
    (series, caption)
}

/// The baselines among `of_model` (one model's evaluations under one protocol) that stand beside
/// each of `points`: those of the point's recipe (a random init is the recipe's own) whose
/// swept settings (those `shown`) are the point's. Baselines named otherwise than this crate
/// knows (no point's recipe among them) are matched by their settings alone.
fn baselines_at<'a>(of_model: &[&'a EvalRun], points: &[&EvalRun], shown: impl Fn(&str) -> bool) -> Vec<Vec<&'a EvalRun>> {
    let fits = |b: &EvalRun, point: &EvalRun, by_recipe: bool| {
        (!by_recipe || recipe_of(b).is_none_or(|r| recipe_of(point).as_ref() == Some(&r)))
            && b.record.varied.iter().filter(|(k, _)| shown(k)).all(|(k, v)| point.record.varied.get(k) == Some(v))
    };
    let by_recipe = points.iter().any(|pt| of_model.iter().any(|b| fits(b, pt, true)));
    points.iter().map(|pt| of_model.iter().copied().filter(|b| fits(b, pt, by_recipe)).collect()).collect()
}

/// The baseline's level beside each point of [`baselines_at`]'s `fit`: the mean of the
/// evaluations that fit it, none where none does.
fn baseline_levels(fit: &[Vec<&EvalRun>]) -> Vec<Option<f64>> {
    fit.iter().map(|f| (!f.is_empty()).then(|| mean(&f.iter().map(|b| b.record.top1).collect::<Vec<_>>()))).collect()
}

/// The legend's name of a baseline drawn from `fit` ([`baselines_at`]): one name for one
/// recipe's baseline; several recipes' under one name (records that carry their recipe) are
/// still each point's own.
fn baseline_method(fit: &[Vec<&EvalRun>]) -> String {
    let used = distinct(fit.iter().flatten().map(|b| b.record.method.as_str()));
    let mut recipes: Vec<String> = fit.iter().flatten().filter_map(|b| recipe_of(b)).collect();
    recipes.sort_unstable();
    recipes.dedup();
    match used[..] {
        [one] if recipes.len() <= 1 => one.to_string(),
        [] => String::new(),
        _ => format!("{} (each point's recipe)", used[0].split(" (").next().unwrap_or(used[0])),
    }
}

/// Settings values in the sweep figure's order: by their numbers, then as written; once each.
fn in_order(mut values: Vec<String>) -> Vec<String> {
    values.sort_by(|a, b| numbers(a).partial_cmp(&numbers(b)).unwrap_or(std::cmp::Ordering::Equal).then(a.cmp(b)));
    values.dedup();
    values
}

/// The sweep figure of a grid over two or more numbers (`vary "optimizer.lr.peak" ...` beside
/// `vary "optimizer.weight-decay" ...`; a combination with no result, a diverged point, a gap
/// in its line): the setting of the most values is the x axis and each combination of the
/// others a line of its own colour, one panel per protocol. (One line through the combinations
/// in order went from one decay's largest learning rate to the next decay's smallest, as if a
/// setting between them were measured.) `None` where there are no more combinations than one
/// setting has values (a zip's settings varied together: one line through them; a zip that
/// repeats values, more combinations than that, is drawn as the part of a grid it is). Past
/// the lines' colours, the other combinations are faint grey lines under one legend entry.
fn grid_figure(reg: &Registry, exp: &str, evals: &[&EvalRun], swept: &[&EvalRun], keys: &[String], seeded: bool, without_result: &[String]) -> Option<NamedFigure> {
    // the lines' colours: the palette but for the grey of the levels and triangles
    const LINE_COLOURS: [usize; 9] = [0, 1, 2, 3, 4, 5, 8, 9, 6];
    let of = |e: &EvalRun, k: &str| e.record.varied.get(k).cloned().unwrap_or_default();
    let values: Vec<Vec<String>> = keys.iter().map(|k| in_order(swept.iter().map(|e| of(e, k)).collect())).collect();
    let mut combos: Vec<Vec<String>> = swept.iter().map(|e| keys.iter().map(|k| of(e, k)).collect()).collect();
    combos.sort_unstable();
    combos.dedup();
    let most = values.iter().map(Vec::len).max().unwrap_or(0);
    if keys.len() < 2 || values.iter().any(|v| v.len() < 2) || combos.len() <= most {
        return None;
    }
    // (the most values; of equal counts, the first key)
    let xi = (0..keys.len()).rev().max_by_key(|&i| values[i].len()).expect("two keys or more");
    let (x_key, xs) = (&keys[xi], &values[xi]);
    let others: Vec<&String> = keys.iter().enumerate().filter(|(i, _)| *i != xi).map(|(_, k)| k).collect();
    // a line's values of the other settings (its order), and its name (`k=v, ...`)
    let group = |e: &EvalRun| others.iter().map(|k| of(e, k)).collect::<Vec<_>>().join(", ");
    let named = |e: &EvalRun| others.iter().map(|k| format!("{k}={}", of(e, k))).collect::<Vec<_>>().join(", ");
    let groups = in_order(swept.iter().map(|e| group(e)).collect());
    // past the colours, the other lines faint grey under one legend entry (more lines fell
    // back to one line through every combination, zig-zagging from one decay's largest
    // learning rate to the next decay's smallest)
    let grey = groups.len().saturating_sub(LINE_COLOURS.len());
    let line_colour = |c: usize| LINE_COLOURS.get(c).copied();
    let names: Vec<String> = groups.iter().map(|g| named(swept.iter().find(|e| group(e) == *g).expect("a point per line"))).collect();
    let at = |e: &EvalRun| xs.iter().position(|x| *x == of(e, x_key)).expect("every value is listed") as f64;
    let colour = |e: &EvalRun| line_colour(groups.iter().position(|g| *g == group(e)).expect("every group is listed"));
    let shown = |k: &str| keys.iter().any(|s| s == k);
    let last = (xs.len() - 1) as f64;
    let foreign = |e: &EvalRun| e.record.pretrain_dir.is_none() && e.record.checkpoint.is_some();
    // each cell's first point (group by x): its settings and recipe stand for the cell's
    let cells: Vec<&EvalRun> = groups
        .iter()
        .flat_map(|g| xs.iter().map(move |x| (g, x)))
        .filter_map(|(g, x)| swept.iter().copied().find(|e| group(e) == *g && of(e, x_key) == *x))
        .collect();
    let protocols = distinct(swept.iter().map(|e| e.record.protocol.as_str()));
    let mut panels = Vec::new();
    for p in protocols {
        let mut series = Vec::new();
        let ours: Vec<&EvalRun> = swept.iter().copied().filter(|e| e.record.protocol == p && !foreign(e)).collect();
        let methods = distinct(ours.iter().map(|e| e.record.method.as_str()));
        let name = methods.join(" / ");
        for (c, g) in groups.iter().enumerate() {
            let line: Vec<&EvalRun> = ours.iter().copied().filter(|e| group(e) == *g).collect();
            // (a combination without a result is a gap: a point that is no number breaks the
            // line, which was drawn straight across it)
            let pts: Vec<(f64, f64)> = (0..xs.len())
                .map(|i| {
                    let top1: Vec<f64> = line.iter().filter(|e| at(e) == i as f64).map(|e| e.record.top1).collect();
                    (i as f64, if top1.is_empty() { f64::NAN } else { mean(&top1) })
                })
                .collect();
            if pts.iter().all(|p| p.1.is_nan()) {
                continue;
            }
            let Some(colour) = line_colour(c) else {
                series.push(Series::new(others_label(grey, "combination"), pts, OTHERS_COLOUR, Stroke::Faint));
                continue;
            };
            let (g, c) = (&names[c], colour);
            if seeded {
                series.push(Series::new(format!("{name} · {g} (mean over seeds)"), pts, c, Stroke::Solid));
                series.push(Series::new(format!("{name} · {g}, each seed"), line.iter().map(|e| (at(e), e.record.top1)).collect(), c, Stroke::Points));
            } else {
                series.push(Series::new(format!("{name} · {g}"), pts, c, Stroke::Solid));
            }
        }
        // a checkpoint from elsewhere evaluated at a point: open diamonds, in its cell's colour
        for e in swept.iter().filter(|e| e.record.protocol == p && foreign(e)) {
            let (label, c) = match colour(e) {
                Some(c) => (format!("{} · {}", e.record.method, named(e)), c),
                None => (format!("{} at a faint grey line's point", e.record.method), OTHERS_COLOUR),
            };
            series.push(Series::new(label, vec![(at(e), e.record.top1)], c, Stroke::Diamonds));
        }
        let models = in_order(evals.iter().filter(|e| is_baseline(e) && e.record.protocol == p).map(|e| e.record.model.clone()).collect());
        for model in models {
            let of_model: Vec<&EvalRun> = evals.iter().copied().filter(|e| e.record.protocol == p && e.record.model == model).collect();
            let fit = baselines_at(&of_model, &cells, shown);
            let levels = baseline_levels(&fit);
            let method = baseline_method(&fit);
            let stroke = if model == "raw-pixels" { Stroke::Dotted } else { Stroke::Dashed };
            // each x's values over the lines: one where the baseline depends on x alone
            let at_x: Vec<Vec<f64>> = (0..xs.len())
                .map(|i| {
                    let mut ys: Vec<f64> = cells.iter().zip(&levels).filter(|(e, _)| at(e) == i as f64).filter_map(|(_, l)| *l).collect();
                    ys.dedup();
                    ys
                })
                .collect();
            match levels[..] {
                // one value at every cell: a grey level across the panel
                [Some(y), ..] if levels.iter().all(|l| *l == Some(y)) => series.push(Series::new(method, vec![(0.0, y), (last, y)], GRID_LEVEL_COLOUR, stroke)),
                // one value at each x, at every cell (the pixels' kNN by its `k` along x): one
                // grey line (it was drawn once per line, each over the other, as if it differed
                // by them)
                _ if levels.iter().all(Option::is_some) && at_x.iter().all(|ys| ys.len() <= 1) => {
                    let pts: Vec<(f64, f64)> = at_x.iter().enumerate().filter_map(|(i, ys)| ys.first().map(|&y| (i as f64, y))).collect();
                    series.push(Series::new(method, pts, GRID_LEVEL_COLOUR, stroke));
                }
                // else each line's own, in its colour, where one fits (none beside a faint
                // grey line)
                _ => {
                    for (c, g) in groups.iter().enumerate() {
                        let pts: Vec<(f64, f64)> = cells.iter().zip(&levels).filter(|(e, _)| group(e) == *g).filter_map(|(e, l)| l.map(|y| (at(e), y))).collect();
                        if let (false, Some(colour)) = (pts.is_empty(), line_colour(c)) {
                            series.push(Series::new(format!("{method} · {}", names[c]), pts, colour, stroke));
                        }
                    }
                }
            }
        }
        series.extend(paper_triangles(reg, swept, at, |_| GRID_LEVEL_COLOUR).0);
        panels.push(Panel { title: p.to_string(), x_label: x_key.clone(), y_label: "top-1 (%)".into(), x: XAxis::Categories(xs.clone()), series });
    }
    let triangles = paper_triangles(reg, swept, at, |_| GRID_LEVEL_COLOUR).1;
    let others = others.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
    let seeds = if seeded { " With several seeds per setting, each line joins their means and a circle marks each seed's result." } else { "" };
    let grey = match grey {
        0 => String::new(),
        n => format!(
            " The first {} combinations of {others} have colours of their own; the other {n}, which would repeat them, {} drawn as faint grey \
             line{} where {} results, unnamed, without {} baselines' own levels{} (the sweep table names each).",
            LINE_COLOURS.len(),
            if n == 1 { "is" } else { "are" },
            if n == 1 { "" } else { "s" },
            if n == 1 { "it has" } else { "they have" },
            if n == 1 { "its" } else { "their" },
            if seeded { " or circles" } else { "" }
        ),
    };
    let absent = match without_result {
        [] => String::new(),
        points => format!(" Not drawn, with no result: {} (the sweep table lists them).", points.iter().map(|p| crate::tables::prose(p)).collect::<Vec<_>>().join("; ")),
    };
    Some(NamedFigure {
        stem: format!("sweep-{}", slug(exp)),
        caption: format!(
            "Top-1 (%) on the test split against the swept `{x_key}`, one panel per protocol and one colour per value of \
             {others}. Dashed: the random-init encoder; dotted: the raw pixels, under the same protocol; grey \
             when they depend on no swept setting but the one along x, else in the colour of the line they stand beside \
             (with several seeds, their mean). The swept values are placed evenly in their order, not to scale.{seeds}{grey}{triangles}{absent}"
        ),
        // (the other settings are the legend's: a long title was cut in its middle)
        figure: Figure { title: format!("Sweep {exp}: top-1 against {x_key}"), panels },
    })
}

/// The figures of one experiment, in report order: sweep trend, loss, schedules, monitors,
/// probe curves (each only when the registry has its data).
pub fn experiment_figures(reg: &Registry, exp: &str) -> Vec<NamedFigure> {
    let points = points_of_runs(reg);
    // in the sweep's order, so that the runs the figures name are its first points (the
    // folders' order named `width-12` to `width-64` and drew `width-8` faint grey)
    // (by the points the labels name)
    let mut runs = runs_of(reg, exp);
    let none = BTreeMap::new();
    runs.sort_by(|a, b| crate::tables::point_order(point_of(a, &points).unwrap_or(&none), point_of(b, &points).unwrap_or(&none)).then(a.dir.cmp(&b.dir)));
    let evals: Vec<&EvalRun> = reg.evals.iter().filter(|e| e.record.experiment == exp).collect();
    [
        sweep_figure(reg, exp, &evals, &crate::tables::points_without_result(reg, exp)),
        loss_figure(exp, &runs, &points),
        schedules_figure(exp, &runs, &points),
        monitor_figure(exp, &runs, &points),
        time_figure(exp, &runs, &points),
        probe_figure(exp, &evals, &runs),
    ]
    .into_iter()
    .flatten()
    .collect()
}
