//! Studies: an experiment file resolved to the experiments it runs — one, or one per point of
//! its sweep (paper Tables 8-10 vary the target scale, context scale and target count this way).
//!
//! Each point starts from the resolved experiment; its values are written as the nodes a
//! person would write (see `schema::settings`) and read through the experiment's own field
//! tables on top of it, then the point is validated like any experiment. Errors point at the
//! sweep values; an error shared by every point is reported once as a plain error, one
//! specific to some points under the first point that has it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::Experiment;
use crate::diagnostics::DslError;
use crate::reader::{Ctx, SpanMap};
use crate::schema::{self, SweepSpec, Vary};

/// How the value lists of a sweep combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SweepMode {
    /// Every combination (cartesian product), the last `vary` changing fastest.
    Grid,
    /// Point i takes the i-th value of every `vary` (all lists the same length).
    Zip,
}

/// An experiment file resolved: the experiments it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Study {
    /// The experiment's name (before point suffixes).
    pub name: String,
    /// The resolved experiment without sweep values applied. Without a sweep it is validated
    /// (and equal to the one point's experiment); with one, each setting is checked but the
    /// rules across settings are checked on the points.
    pub base: Experiment,
    /// The experiments to run: one per sweep point, or exactly one (named `""`, nothing
    /// varied) without a sweep.
    pub points: Vec<Point>,
    /// `None` without a sweep.
    pub mode: Option<SweepMode>,
    /// The file, then every base it extends (transitively), for provenance.
    pub files: Vec<PathBuf>,
    /// Every setting path written in the file or its bases (`data.horizontal-flip`): what the
    /// file asks for, also where it asks for a default (not part of any hash).
    #[serde(skip)]
    pub written: std::collections::BTreeSet<String>,
}

/// One experiment of a study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Folder-safe name built from the varied values (`targets-scale-0.075-0.2_seed-1`);
    /// `""` without a sweep.
    pub name: String,
    /// The fully resolved, validated experiment; its name is `<experiment>-<point>` in a
    /// sweep.
    pub experiment: Experiment,
    /// Setting path -> value as written (`"mask.targets.scale"` -> `"0.075 0.2"`,
    /// `"optimizer.lr.peak"` -> `"1e-3"`, `"seed"` -> `"1"`).
    pub varied: BTreeMap<String, String>,
    /// The parts of its name, one a varied setting, in the sweep's order: (setting path, part)
    /// (`("seed", "seed-1")`); not recorded.
    #[serde(skip)]
    pub parts: Vec<(String, String)>,
}

impl Point {
    /// The point's name made of the parts of the settings `keep` takes alone (`seed-1` of
    /// `targets-scale-0.1-0.15_seed-1`): what names a stage that depends on those alone (a
    /// sweep's baseline, shared by the points that differ in the others). The point's name
    /// where no part is kept.
    pub fn name_of(&self, keep: impl Fn(&str) -> bool) -> String {
        let kept: Vec<&str> = self.parts.iter().filter(|(path, _)| keep(path)).map(|(_, part)| part.as_str()).collect();
        if kept.is_empty() {
            self.name.clone()
        } else {
            folder_safe(&kept.join("_"))
        }
    }
}

/// Files warning `w` of the point `name` under `of` (each text once, with the points it is of).
fn file_under<'a>(of: &mut Vec<(String, Vec<&'a str>)>, w: String, name: &'a str) {
    match of.iter_mut().find(|(x, _)| *x == w) {
        Some((_, names)) => names.push(name),
        None => of.push((w, vec![name])),
    }
}

/// Points named in a warning: the first three, then how many more (`` `a`, `b`, `c` and 36
/// more ``).
fn point_list(names: &[&str]) -> String {
    const SHOWN: usize = 3;
    let listed: Vec<String> = names.iter().take(SHOWN).map(|n| format!("`{n}`")).collect();
    let more = if names.len() > SHOWN { format!(" and {} more", names.len() - SHOWN) } else { String::new() };
    format!("{}{more}", listed.join(", "))
}

impl Study {
    /// What `check`, `plan` and `run` say of the study before anything trains: a sweep over
    /// recipes whose methods train with other settings beside their recipe, left to each
    /// recipe's defaults ([`Study::recipe_defaults_apart`]); an encoder shape a sweep's presets
    /// drop ([`Study::encoder_shape_dropped`]); augmentations a point's recipe does not read
    /// (DINO's multi-crop), an EMA that never moves, a learning rate of 0 throughout, DINO's
    /// prototypes frozen for the whole run, a monitor's kNN voting among half its images or
    /// more, a fine-tuning warm-up that never reaches its peak, a pretraining warm-up that
    /// never decays and schedules that end before the run (each text once; in a sweep, naming
    /// the points it is of where not all, and a warm-up or schedule that differs by point, or
    /// whose settings are swept, in one line with advice on the sweep's values).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let apart = self.recipe_defaults_apart();
        if !apart.is_empty() {
            out.push(format!(
                "the points of `vary \"recipe\"` train with other settings beside their recipe, which this file leaves to each recipe's defaults ({}): a \
                 comparison of the methods compares these too; write them in the experiment to hold them equal, or `vary` them beside the recipe to keep \
                 each method's own by choice",
                apart.join("; ")
            ));
        }
        out.extend(self.encoder_shape_dropped());
        // the monitor's floors decide only its warnings and are not in the pretraining's hash:
        // points that differ in them alone share one pretraining, whose warnings follow one
        // point's floors (the other point's were never applied, without a word)
        // (only where two points differ in nothing else the pretraining reads: in a zip beside
        // a learning rate each point has a pretraining of its own; beside `log-every`, or an
        // evaluation's setting, they share one)
        const FLOORS: [&str; 2] = ["monitor.rank-floor", "monitor.spread-floor"];
        type Settings<'a> = Vec<(&'a String, &'a String)>;
        fn split(p: &Point) -> (Settings<'_>, Settings<'_>) {
            p.varied.iter().filter(|(k, _)| !k.starts_with("eval.") && !schema::unhashed(k)).partition(|(k, _)| FLOORS.contains(&k.as_str()))
        }
        // (floors by their numbers: `4` and `4.0` are one floor)
        let numbers = |floors: &Settings<'_>| -> Vec<(String, Option<f64>)> { floors.iter().map(|(k, v)| (k.to_string(), v.parse().ok())).collect() };
        let mut floors: BTreeSet<&str> = BTreeSet::new();
        for (i, a) in self.points.iter().enumerate() {
            let (floors_a, rest_a) = split(a);
            for b in &self.points[i + 1..] {
                let (floors_b, rest_b) = split(b);
                // (the floors that differ: one held equal in the zip is not varied)
                let (na, nb) = (numbers(&floors_a), numbers(&floors_b));
                if rest_a == rest_b && na != nb {
                    let value = |n: &[(String, Option<f64>)], k: &str| n.iter().find(|(key, _)| key == k).map(|(_, v)| *v);
                    floors.extend(FLOORS.iter().copied().filter(|k| value(&na, k) != value(&nb, k)));
                }
            }
        }
        if !floors.is_empty() {
            let names: Vec<String> = floors.iter().map(|f| format!("`{}`", f.trim_start_matches("monitor."))).collect();
            let (decide, are, it) = if names.len() == 1 { ("decides", "is", "it") } else { ("decide", "are", "them") };
            out.push(format!(
                "the sweep varies the monitor's {}, which {decide} only its warnings and {are} not in the pretraining's hash: points that differ in {it} \
                 alone share one pretraining, whose warnings follow the first of those points' floors (its report shows that point's); to read a run \
                 under other floors, change them in the file and run it again (its collapse warnings are read again from its monitor.csv)",
                names.join(" and ")
            ));
        }
        // `seeds 3` is the seed 3, not three seeds (a count elsewhere): one value that reads
        // as a count, said (not `seeds 0`, nor `seeds 1`, one seed either way)
        let seeds: std::collections::BTreeSet<&str> = self.points.iter().filter_map(|p| p.varied.get("seed").map(String::as_str)).collect();
        if let ([only], true) = (seeds.iter().copied().collect::<Vec<_>>().as_slice(), self.points.iter().all(|p| p.varied.contains_key("seed"))) {
            if let Some(n) = only.parse::<u64>().ok().filter(|&n| (2..=64).contains(&n)) {
                out.push(format!(
                    "the sweep lists one seed, {n}: every point trains once, with seed {n} (the values are the seeds themselves, not their count); for {n} seeds write `seeds {}`",
                    (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(" ")
                ));
            }
        }
        // seeds that libtorch's CPU generator takes alike: it keeps a seed's low 32 bits for the
        // weights' initialisation (`seeds 0 4294967296` initialised both points alike, and the
        // report read them as independent; CUDA's takes all 64)
        let mut by_low: std::collections::BTreeMap<u32, BTreeSet<u64>> = std::collections::BTreeMap::new();
        for p in &self.points {
            by_low.entry(p.experiment.seed as u32).or_default().insert(p.experiment.seed);
        }
        for alike in by_low.values().filter(|s| s.len() > 1) {
            let listed: Vec<String> = alike.iter().map(u64::to_string).collect();
            out.push(format!(
                "the seeds {} initialise alike on a CPU: libtorch's CPU generator keeps a seed's low 32 bits (they differ by a multiple of 2^32), so the weights \
                 a CPU run starts from, and on any device the random-init baselines' encoder (built on the CPU), are the same (masks and crops still \
                 differ; a GPU's generator takes all 64 bits for the pretraining); for independent initialisations use seeds that differ below 2^32",
                listed.join(", ")
            ));
        }
        // each point's, once, with the points it is of where not all (a sweep over recipes was
        // told of a 40-epoch warm-up and of a 10-epoch one, and not which recipe's is which)
        let mut of_points: Vec<(String, Vec<&str>)> = Vec::new();
        // (the schedules' warnings, whose numbers differ by point: apart)
        let mut warmups: Vec<(&str, String)> = Vec::new();
        let mut ends: Vec<(&str, String)> = Vec::new();
        for p in &self.points {
            let e = &p.experiment;
            let evals = e.evals.iter().flat_map(|c| c.warnings());
            // (a value a point's `vary` gives is written too, at a default as well)
            let written = |path: &str| self.written.contains(path) || p.varied.contains_key(path);
            let said = crate::recipes::setting_warnings(e, written);
            warmups.extend(said.warmup.map(|w| (p.name.as_str(), w)));
            ends.extend(said.ends.map(|w| (p.name.as_str(), w)));
            for w in said.others.into_iter().chain(evals) {
                file_under(&mut of_points, w, &p.name);
            }
        }
        // a warm-up or schedule whose numbers differ by point, or whose settings the sweep
        // varies, in one line (a warm-up swept over 39 values drew 39 lines, each advising a
        // value in the `optimizer` block, which the sweep's own values override)
        // (a setting a point's `vary` gives, itself or in the block it varies whole: a swept
        // `optimizer.lr.peak` is no swept warm-up)
        let swept = |path: &str| self.points.iter().any(|p| p.varied.keys().any(|k| k == path || path.starts_with(&format!("{k}."))));
        let names = |of: &[(&str, String)]| point_list(&of.iter().map(|(n, _)| *n).collect::<Vec<_>>());
        // (a few texts, each of its points, stay apart: a sweep over recipes, each its own
        // default warm-up)
        let many = |of: &[(&str, String)]| of.iter().map(|(_, w)| w).collect::<BTreeSet<_>>().len() > 3;
        let shorten = if swept("optimizer.lr.warmup-epochs") { "lower the sweep's warm-up values below each point's schedule" } else { "shorten it (`optimizer \"adamw\" { lr warmup-epochs=... }`) below each point's schedule" };
        let more = if swept("epochs") { "give those points more epochs (the sweep's `epochs` values)" } else { "train more epochs" };
        // (each: its points' warnings, whether the settings it depends on are swept, and its one
        // line, before and after the points it names)
        let kinds = [
            (
                warmups,
                swept("optimizer.lr.warmup-epochs") || swept("epochs") || swept("ipe-scale"),
                "the learning-rate warm-up lasts at least the whole schedule (`ipe-scale` x `epochs`, or the run where ipe-scale stretches the schedule past it)",
                format!(": the rate never decays there; {shorten}, or {more}"),
            ),
            (
                ends,
                swept("ipe-scale") || swept("epochs"),
                "the schedules end before the run (`ipe-scale` below 1)",
                ": past them the learning rate and weight decay follow their formulas beyond the end rather than holding their final values (I-JEPA's \
                 EMA momentum holds its last value); an ipe-scale of 1.0 or more fits them to the run"
                    .to_string(),
            ),
        ];
        for (of, settings_swept, what, then) in kinds {
            if !of.is_empty() && (settings_swept || many(&of)) {
                out.push(format!("{what} at {} of the {} points ({}){then}", of.len(), self.points.len(), names(&of)));
            } else {
                for (n, w) in of {
                    file_under(&mut of_points, w, n);
                }
            }
        }
        for (w, names) in of_points {
            let w = if names.len() < self.points.len() {
                format!("{w} (at point{} {})", if names.len() == 1 { "" } else { "s" }, point_list(&names))
            } else {
                w
            };
            if !out.contains(&w) {
                out.push(w);
            }
        }
        out
    }

    /// Where the points of a sweep over recipes train with other settings than one another
    /// beside their recipe, because the file leaves those settings to each recipe's defaults
    /// (MAE's betas, learning rate and weight decay, crops, flips and interpolation): one line
    /// per setting, `optimizer betas: ijepa 0.9 0.999, mae 0.9 0.95`. A comparison of the
    /// methods then compares these too, which nothing else says (the report shows `recipe=mae`
    /// alone). A setting the sweep varies itself is the file's choice and not compared; the
    /// data block's augmentations only among recipes that read them (not DINO's multi-crop).
    pub fn recipe_defaults_apart(&self) -> Vec<String> {
        use std::collections::BTreeMap;
        type Shown = fn(&Experiment) -> Option<String>;
        fn f(x: f64) -> String {
            format!("{x}")
        }
        // (the data block's augmentations only among recipes that read them)
        fn reads_data(e: &Experiment) -> bool {
            !crate::recipes::schema(&e.recipe).is_some_and(|s| s.own_augmentations)
        }
        // each setting: its name, the path that writes it, its value as shown
        let settings: [(&str, &str, Shown); 6] = [
            ("optimizer betas", "optimizer.betas", |e| Some(format!("{} {}", f(e.optimizer.betas.0), f(e.optimizer.betas.1)))),
            ("optimizer lr", "optimizer.lr", |e| {
                let lr = &e.optimizer.lr;
                Some(match lr.blr {
                    Some(blr) => format!("blr={} warmup-epochs={} final={}", f(blr), f(lr.warmup_epochs), f(lr.final_)),
                    None => format!("start={} peak={} final={} warmup-epochs={}", f(lr.start), f(lr.peak), f(lr.final_), f(lr.warmup_epochs)),
                })
            }),
            ("optimizer weight-decay", "optimizer.weight-decay", |e| Some(format!("start={} final={}", f(e.optimizer.weight_decay.start), f(e.optimizer.weight_decay.final_)))),
            ("data crop-scale", "data.crop-scale", |e| reads_data(e).then(|| format!("{} {}", f(e.data.crop_scale.0), f(e.data.crop_scale.1)))),
            ("data horizontal-flip", "data.horizontal-flip", |e| reads_data(e).then(|| f(e.data.hflip))),
            ("data interpolation", "data.interpolation", |e| Some(e.data.interpolation.name().to_string())),
        ];
        let points: Vec<&Point> = self.points.iter().filter(|p| p.varied.contains_key("recipe")).collect();
        // a setting a point varies (or its whole block: another dataset, optimizer) is the
        // file's own choice per point, compared no more
        let varied = |path: &str| points.iter().flat_map(|p| p.varied.keys()).any(|k| k == path || k.starts_with(&format!("{path}.")) || path.starts_with(&format!("{k}.")));
        let mut out = Vec::new();
        for (what, path, shown) in settings {
            if varied(path) {
                continue;
            }
            let by_recipe: BTreeMap<&str, String> = points.iter().filter_map(|p| Some((p.experiment.recipe.as_str(), shown(&p.experiment)?))).collect();
            if by_recipe.values().collect::<BTreeSet<_>>().len() > 1 {
                out.push(format!("{what}: {}", by_recipe.iter().map(|(r, v)| format!("{r} {v}")).collect::<Vec<_>>().join(", ")));
            }
        }
        out
    }
}

impl Study {
    /// Where a sweep's `vary "encoder"` drops the shape the experiment writes beside its
    /// preset: a point's preset starts its encoder from that preset's
    /// width, depth, heads and MLP ratio (only `patch` is kept), so `encoder "vit-tiny"
    /// depth=1` with `vary "encoder" "vit-tiny" "vit-small"` trains 12-block encoders. One
    /// line naming the settings dropped (`depth=1`), `None` where nothing was (a setting the
    /// sweep varies itself is its own choice).
    pub fn encoder_shape_dropped(&self) -> Option<String> {
        let base = &self.base.encoder;
        // an encoder's shape, setting by setting
        let shape = |e: &crate::config::EncoderConfig| {
            [("width", e.embed_dim.to_string()), ("depth", e.depth.to_string()), ("heads", e.num_heads.to_string()), ("mlp-ratio", e.mlp_ratio.to_string())]
        };
        // what the experiment gives beside its preset; without one, its MLP ratio other than
        // every preset's 4 (a width, depth and heads written without a preset are replaced by
        // the presets a sweep names: what varying them means; the ratio was lost unsaid)
        let own: Vec<(&str, String)> = match base.preset.as_deref() {
            Some(name) => {
                let defaults = crate::config::EncoderConfig::preset(name, base.patch_size)?;
                shape(base).into_iter().zip(shape(&defaults)).filter(|(v, d)| v != d).map(|(v, _)| v).collect()
            }
            None => shape(base).into_iter().filter(|(k, _)| *k == "mlp-ratio").filter(|_| base.mlp_ratio != 4.0).collect(),
        };
        if own.is_empty() {
            return None;
        }
        let mut dropped: Vec<String> = Vec::new();
        let mut path = "encoder";
        for p in self.points.iter().filter(|p| p.varied.contains_key("encoder") || p.varied.contains_key("encoder.preset")) {
            if p.varied.contains_key("encoder.preset") {
                path = "encoder.preset";
            }
            let at_point = shape(&p.experiment.encoder);
            for (key, value) in &own {
                let there = at_point.iter().find(|(k, _)| k == key).map(|(_, v)| v);
                let shown = format!("{key}={value}");
                if there != Some(value) && !p.varied.contains_key(&format!("encoder.{key}")) && !dropped.contains(&shown) {
                    dropped.push(shown);
                }
            }
        }
        (!dropped.is_empty()).then(|| {
            format!(
                "the points of `vary \"{path}\"` start from their preset's shape (only `patch` stays as written): the experiment's {} {} not applied at them; \
                 vary the setting beside the preset (`vary \"encoder.depth\" ...`) to keep it",
                dropped.join(" "),
                if dropped.len() == 1 { "is" } else { "are" }
            )
        })
    }
}

/// Longest point name kept as is; longer ones are cut and end in a hash of the full name.
const MAX_NAME: usize = 80;

/// The points of `spec` on top of `base` (read from `src`, whose settings were written at
/// `spans`), validated; or every error, pointing into `src`.
pub(crate) fn expand(
    src: &str,
    base: &Experiment,
    spans: &SpanMap,
    base_written: &BTreeSet<String>,
    spec: &SweepSpec,
    swept_recipes: &[String],
    evaluating: bool,
) -> Result<Vec<Point>, Vec<DslError>> {
    let dims: Vec<&Vary> = spec.vary.iter().chain(spec.seeds.as_ref()).collect();
    let combos = combinations(spec);
    let labels = labels(&dims);
    // every point's own name (its settings and values), reserved before any is given: a name
    // taken twice gets `-2`, `-3`, ..., never one that is another point's own (the values
    // `a b`, `a-b`, `a-b-2` were named `a-b`, `a-b-2`, `a-b-2-2`: `a-b-2` named the wrong value)
    let parts_of: Vec<Vec<(String, String)>> = combos
        .iter()
        .map(|combo| {
            dims.iter()
                .zip(combo)
                .zip(&labels)
                .map(|((dim, &i), label)| {
                    let shown: Vec<String> = dim.values[i].entries.iter().map(|e| normal(e.value())).collect();
                    (dim.path.clone(), format!("{label}-{}", shown.join("-")))
                })
                .collect()
        })
        .collect();
    let own: Vec<String> = parts_of.iter().map(|parts| folder_safe(&parts.iter().map(|(_, p)| p.as_str()).collect::<Vec<_>>().join("_"))).collect();
    let reserved: BTreeSet<String> = own.iter().cloned().collect();
    let mut names = BTreeSet::new();
    let locations = schema::locations();
    let mut points = Vec::with_capacity(combos.len());
    let mut errors: Vec<Vec<DslError>> = Vec::with_capacity(combos.len());
    let recipe_swept = dims.iter().any(|d| d.path == "recipe");
    // which `vary` some point applied (a mask setting is skipped at the points of a recipe
    // whose mask lacks it: one no point has is an error, not a sweep that varies nothing)
    let mut applied = vec![false; dims.len()];
    for ((combo, own), parts) in combos.iter().zip(own).zip(parts_of) {
        let mut cx = Ctx::new(src, locations.clone(), schema::PLANNED);
        cx.spans = spans.clone();
        cx.base_written = base_written.clone();
        cx.layered = true;
        // what depends on a varied setting is read at some of the points (see validate)
        cx.swept_paths = dims.iter().map(|d| d.path.clone()).collect();
        cx.swept_values = dims.iter().map(|d| (d.path.clone(), d.values.iter().map(|v| v.text.clone()).collect())).collect();
        cx.swept_recipes = swept_recipes.to_vec();
        cx.origin.evaluating = evaluating;
        let mut exp = base.clone();
        let mut varied = BTreeMap::new();
        // a block's kind first (`recipe`, `data`, `encoder`, `mask`: writing one starts its
        // block from that kind's defaults), then the settings inside blocks, whatever the
        // order of the `vary` lines: a setting is never reset by a kind written after it
        let mut order: Vec<usize> = (0..dims.len()).collect();
        order.sort_by_key(|&d| dims[d].setting.canonical().contains('.'));
        for &d in &order {
            let (dim, value) = (dims[d], &dims[d].values[combo[d]]);
            // a sweep over recipes: a mask setting the point's mask does not have (`targets`
            // under MAE's random mask, DINO's none) is ignored there, as every setting its
            // recipe does not read (it was an unknown node in a mask nobody wrote)
            if recipe_swept {
                if let Some(child) = dim.path.strip_prefix("mask.").and_then(|r| r.split('.').next()) {
                    // (the kind this point's recipe samples: MAE's random mask for a multi-block one)
                    let kind = crate::recipes::schema(&exp.recipe).and_then(|r| r.sampled_kind(exp.mask.kind));
                    if !kind.is_some_and(|k| schema::mask::accepts(k, child)) {
                        varied.insert(dim.path.clone(), value.text.clone());
                        continue;
                    }
                }
            }
            applied[d] = true;
            let node = dim.setting.synthesize(&value.entries, &exp, dim.span, value.span);
            // where the point's value writes: its setting (and what is inside it). The blocks
            // around it (`encoder` for `encoder.heads`) and their arguments are only there to
            // hold the value: they keep where the file wrote them (or stay unwritten), so an
            // error of another setting of the block, shown at the block, is not shown at this
            // value (and once, not once per value)
            let before = cx.spans.clone();
            schema::read_experiment_node(&mut cx, &node, &mut exp);
            let own = dim.setting.canonical();
            let mine = |k: &str| k.strip_prefix(own).is_some_and(|rest| rest.is_empty() || rest.starts_with('.'));
            cx.spans.retain(|k, _| mine(k) || before.contains_key(k));
            for (k, span) in before.iter().filter(|(k, _)| !mine(k)) {
                cx.spans.insert(k.clone(), *span);
            }
            // a preset starts the encoder from its own shape (only `patch` stays as written):
            // the file's shape, dropped at this point, is no place to show an error of it (`3
            // heads` was labelled at the file's `heads=2`); the preset value is
            if own == "encoder" {
                for k in ["encoder.width", "encoder.depth", "encoder.heads", "encoder.mlp-ratio"] {
                    if before.get(k).is_some_and(|at| cx.spans.get(k) == Some(at)) {
                        cx.spans.remove(k);
                    }
                }
            }
            varied.insert(dim.path.clone(), value.text.clone());
        }
        if varied.contains_key("recipe") {
            crate::recipes::settle(&mut exp, &|path| cx.written(path));
        }
        // (a sweep over recipes gives each point every varied value: a zip can pair a
        // recipe with a value only another reads, which its point ignores, and its pretraining
        // hash leaves out)
        if !varied.contains_key("recipe") {
            not_read_by_recipe(&mut cx, &dims, &exp);
        }
        let name = unique(&mut names, &reserved, own);
        exp.name = format!("{}-{name}", base.name);
        crate::validate::validate(&mut cx, &exp);
        points.push(Point { name, experiment: exp, varied, parts });
        errors.push(cx.errors);
    }
    for (dim, _) in dims.iter().zip(&applied).filter(|(_, &a)| !a) {
        if let Some(first) = errors.first_mut() {
            first.push(DslError::InvalidValue {
                what: dim.path.clone(),
                message: format!("no point of this sweep has a mask that reads `{}`: the sweep would vary nothing", dim.path),
                span: dim.span,
                help: "each point's recipe samples a mask without this setting (MAE's random mask has no `targets`); vary a setting of the mask written, or write the mask that has it".into(),
            });
        }
    }
    let errors = sort_out(&points, errors);
    if errors.is_empty() {
        Ok(points)
    } else {
        Err(errors)
    }
}

/// A varied setting the point's recipe does not read (`predictor.depth` of an MAE point, a
/// multi-block mask's `targets` under DINO): its points would train one model under as many
/// labels. The diagnostic a person writing the setting directly gets, at the `vary`.
fn not_read_by_recipe(cx: &mut Ctx, dims: &[&Vary], exp: &Experiment) {
    let Some(schema) = crate::recipes::schema(&exp.recipe) else { return };
    let target_varied = dims.iter().any(|d| d.path.split('.').next() == Some("target"));
    for dim in dims {
        let node = dim.path.split('.').next().unwrap_or("");
        // pixel targets have no target encoder for the EMA to update
        if node == "ema" && exp.target.kind == crate::config::TargetKind::Pixels && !target_varied {
            cx.err(DslError::InvalidValue {
                what: dim.path.clone(),
                message: "`target \"pixels\"` has no target encoder for an EMA to update".into(),
                span: dim.span,
                help: format!("its points would train the same model: vary `{}` with representation targets, or vary another setting", dim.path),
            });
            continue;
        }
        // DINO's views are its own multi-crop's: the data block's augmentations are not read
        // (a DINO-only sweep over them evaluated one model under as many labels, the report
        // showing an ablation of nothing) unless an evaluation fine-tunes
        // (fine-tuning trains on the experiment's transform: there they are a real ablation)
        let finetunes = exp.evals.iter().any(|e| e.protocol == crate::config::EvalProtocol::Finetune);
        if schema.own_augmentations && !finetunes && dim.path.strip_prefix("data.").is_some_and(|k| crate::config::AUGMENTATIONS.contains(&k)) {
            let readers: Vec<String> = crate::recipes::names()
                .into_iter()
                .filter(|n| crate::recipes::schema(n).is_some_and(|s| !s.own_augmentations))
                .map(|n| format!("\"{n}\""))
                .collect();
            cx.err(DslError::NotOfRecipe {
                node: dim.path.clone(),
                owner: readers.join(" / "),
                recipe: exp.recipe.clone(),
                span: dim.span,
                help: format!(
                    "recipe \"{}\" makes its views with its own multi-crop and does not read `{}`: its points would train the same model; vary a setting it reads (its own: {})",
                    exp.recipe,
                    dim.path,
                    schema.nodes().iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                ),
            });
            continue;
        }
        // a setting another of the point turns off, where the sweep does not vary that one:
        // its points trained one model under as many labels and hashes
        if let Some((why, help)) = turned_off_at(&dim.path, exp).filter(|_| !dims.iter().any(|d| switches(&d.path, &dim.path))) {
            cx.err(DslError::InvalidValue {
                what: dim.path.clone(),
                message: format!("`{}` is not read with {why}: its points would train the same model", dim.path),
                span: dim.span,
                help: help.into(),
            });
            continue;
        }
        let owners: Vec<String> = if node == "mask" {
            if schema.mask_kinds.contains(&exp.mask.kind) {
                continue;
            }
            crate::recipes::samplers(exp.mask.kind)
        } else {
            crate::recipes::owners(node)
        };
        if owners.is_empty() || owners.contains(&exp.recipe) {
            continue;
        }
        let quoted: Vec<String> = owners.iter().map(|o| format!("\"{o}\"")).collect();
        cx.err(DslError::NotOfRecipe {
            node: if node == "mask" { format!("mask \"{}\"", exp.mask.kind.name()) } else { node.to_string() },
            owner: quoted.join(" / "),
            recipe: exp.recipe.clone(),
            span: dim.span,
            help: format!(
                "a point of recipe \"{}\" does not read `{}`: its points would train the same model; vary a setting recipe \"{}\" reads{}",
                exp.recipe,
                dim.path,
                exp.recipe,
                {
                    let own = schema.nodes();
                    if own.is_empty() {
                        String::new()
                    } else {
                        format!(" (its own: {})", own.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "))
                    }
                }
            ),
        });
    }
}

/// Why the setting at `path` is not read in `exp` (another of its settings turns it off), with
/// what to do: the learning rate's `start` without a warm-up, the weight decay's `schedule`
/// where it starts at its final value, fine-tuning's `drop-path` on an encoder of one block
/// (the rates rise from 0 at the first). (DINO's own are the checker's:
/// [`Experiment::dino_settings_turned_off`].)
fn turned_off_at(path: &str, exp: &Experiment) -> Option<(&'static str, &'static str)> {
    let o = &exp.optimizer;
    let finetunes = || exp.evals.iter().any(|e| e.protocol == crate::config::EvalProtocol::Finetune);
    match path {
        "optimizer.lr.start" if o.lr.warmup_epochs == 0.0 => Some(("no warm-up (`warmup-epochs=0`: the learning rate starts at `peak`)", "vary `start` with a warm-up (`warmup-epochs=` above 0), or vary another setting")),
        "optimizer.weight-decay.schedule" if o.weight_decay.start == o.weight_decay.final_ => {
            Some(("a constant weight decay (`start` equals `final`)", "vary `schedule` with a weight decay that changes (`final=` other than `start=`), or vary another setting"))
        }
        "eval.finetune.drop-path" if exp.encoder.depth < 2 && finetunes() => {
            Some(("an encoder of one block (`depth=1`: the rates rise from 0 at the first block)", "vary `drop-path` with an encoder of 2 or more blocks, or vary another setting"))
        }
        _ => None,
    }
}

/// Whether a sweep varying `varied` can turn the setting at `path` on ([`turned_off_at`]): it
/// varies the setting that switches it, or a node above that one.
fn switches(varied: &str, path: &str) -> bool {
    let switch: &[&str] = match path {
        "optimizer.lr.start" => &["optimizer.lr.warmup-epochs"],
        "optimizer.weight-decay.schedule" => &["optimizer.weight-decay.start", "optimizer.weight-decay.final"],
        "eval.finetune.drop-path" => &["encoder.depth"],
        _ => &[],
    };
    switch.iter().any(|s| s.strip_prefix(varied).is_some_and(|rest| rest.is_empty() || rest.starts_with('.')))
}

/// Value indices of every point, in order: grid (odometer, last `vary` fastest) or zip, with
/// the seeds innermost either way.
fn combinations(spec: &SweepSpec) -> Vec<Vec<usize>> {
    let lens: Vec<usize> = spec.vary.iter().map(|v| v.values.len()).collect();
    let mut combos: Vec<Vec<usize>> = match spec.mode {
        SweepMode::Grid => {
            let mut out = vec![Vec::new()];
            for &n in &lens {
                out = out
                    .into_iter()
                    .flat_map(|c| {
                        (0..n).map(move |i| {
                            let mut c = c.clone();
                            c.push(i);
                            c
                        })
                    })
                    .collect();
            }
            out
        }
        SweepMode::Zip => {
            let n = lens.iter().copied().min().unwrap_or(1);
            (0..n).map(|i| vec![i; lens.len()]).collect()
        }
    };
    if let Some(seeds) = &spec.seeds {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                (0..seeds.values.len()).map(move |i| {
                    let mut c = c.clone();
                    c.push(i);
                    c
                })
            })
            .collect();
    }
    combos
}

/// The name of each varied setting in point names: its last two path segments
/// (`targets-scale`, `lr-peak`, `data-crop-size`, `seed`), or the whole path when two
/// settings would share a name.
fn labels(dims: &[&Vary]) -> Vec<String> {
    let short = |p: &str| {
        let segs: Vec<&str> = p.split('.').collect();
        segs[segs.len().saturating_sub(2)..].join("-")
    };
    let shorts: Vec<String> = dims.iter().map(|d| short(&d.path)).collect();
    dims.iter()
        .zip(&shorts)
        .map(|(d, s)| {
            if shorts.iter().filter(|o| *o == s).count() > 1 {
                d.path.replace('.', "-")
            } else {
                s.clone()
            }
        })
        .collect()
}

/// A value in point names: numbers in their plain decimal form (`1e-3` -> `0.001`), strings
/// as they are.
fn normal(v: &kdl::KdlValue) -> String {
    match v {
        kdl::KdlValue::String(s) => s.clone(),
        kdl::KdlValue::Integer(i) => i.to_string(),
        kdl::KdlValue::Float(f) => f.to_string(),
        kdl::KdlValue::Bool(b) => b.to_string(),
        kdl::KdlValue::Null => "null".into(),
    }
}

/// Only ASCII letters, digits, `.`, `_` and `-` (anything else becomes `-`), at most
/// [`MAX_NAME`] bytes (a longer name is cut and ends in a hash of the whole).
fn folder_safe(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' })
        .collect();
    if s.starts_with('.') {
        s.replace_range(0..1, "-");
    }
    if s.len() > MAX_NAME {
        let hash = fnv1a(name.as_bytes());
        s.truncate(MAX_NAME - 17);
        s = format!("{s}-{hash:016x}");
    }
    s
}

/// 64-bit FNV-1a: a stable short hash for long names.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// `name`, or when taken `name-2`, `name-3`, ..., the first neither taken nor `reserved` (another
/// point's own name).
fn unique(taken: &mut BTreeSet<String>, reserved: &BTreeSet<String>, name: String) -> String {
    let mut candidate = name.clone();
    let mut i = 2;
    while taken.contains(&candidate) || (candidate != name && reserved.contains(&candidate)) {
        candidate = format!("{name}-{i}");
        i += 1;
    }
    taken.insert(candidate.clone());
    candidate
}

/// Errors of every point: those all points share once, as they are; the others once each,
/// under the first point that has them.
fn sort_out(points: &[Point], per_point: Vec<Vec<DslError>>) -> Vec<DslError> {
    let key = |e: &DslError| format!("{}|{}|{e}", e.code_str(), e.offset());
    let total = points.len();
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for errs in &per_point {
        let keys: BTreeSet<String> = errs.iter().map(key).collect();
        for k in keys {
            *count.entry(k).or_default() += 1;
        }
    }
    let mut out = Vec::new();
    let mut reported = BTreeSet::new();
    for (i, errs) in per_point.into_iter().enumerate() {
        let mut own = Vec::new();
        for e in errs {
            let k = key(&e);
            if !reported.insert(k.clone()) {
                continue;
            }
            // shared by every point (or the only point): not the sweep's doing
            if count.get(&k) == Some(&total) {
                out.push(e);
            } else {
                own.push(e);
            }
        }
        if !own.is_empty() {
            own.sort_by_key(DslError::offset);
            out.push(DslError::SweepPoint {
                index: i + 1,
                total,
                name: points[i].name.clone(),
                errors: own,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_folder_safe() {
        assert_eq!(folder_safe("lr-peak-0.001_seed-1"), "lr-peak-0.001_seed-1");
        assert_eq!(folder_safe("device-cuda:0"), "device-cuda-0");
        assert_eq!(folder_safe("root-/data/x y"), "root--data-x-y");
        assert_eq!(folder_safe(".hidden"), "-hidden");
        let long = folder_safe(&"x".repeat(300));
        assert_eq!(long.len(), MAX_NAME);
        assert_ne!(long, folder_safe(&"x".repeat(301)));
    }

    #[test]
    fn unique_names() {
        let (mut taken, none) = (BTreeSet::new(), BTreeSet::new());
        assert_eq!(unique(&mut taken, &none, "a".into()), "a");
        assert_eq!(unique(&mut taken, &none, "a".into()), "a-2");
        assert_eq!(unique(&mut taken, &none, "a".into()), "a-3");
        // another point's own name is skipped: `a b`, `a-b`, `a-b-2` (all `a-b...` once safe)
        let mut taken = BTreeSet::new();
        let reserved: BTreeSet<String> = ["a-b", "a-b-2"].map(String::from).into();
        assert_eq!(unique(&mut taken, &reserved, "a-b".into()), "a-b");
        assert_eq!(unique(&mut taken, &reserved, "a-b".into()), "a-b-3");
        assert_eq!(unique(&mut taken, &reserved, "a-b-2".into()), "a-b-2");
    }

    #[test]
    fn normal_numbers() {
        use kdl::KdlValue;
        assert_eq!(normal(&KdlValue::Float(1e-3)), "0.001");
        assert_eq!(normal(&KdlValue::Float(0.075)), "0.075");
        assert_eq!(normal(&KdlValue::Integer(32)), "32");
        assert_eq!(normal(&KdlValue::String("vit-tiny".into())), "vit-tiny");
    }
}
