//! The top-level `sweep "grid" { vary ...; seeds ... }` node: which settings vary over which
//! values. Reading checks the form (paths name settings, value counts, zip lengths); the values
//! themselves are checked when each point is built (`crate::study`), by the same readers as the
//! experiment's settings.

use kdl::{KdlEntry, KdlValue};
use miette::SourceSpan;

use super::settings::{self, Setting};
use super::TopLevel;
use crate::diagnostics::DslError;
use crate::reader::{join_spans, read_children, Ctx, Field, Node, Shape};
use crate::study::SweepMode;

/// Most points a sweep may have.
pub(crate) const MAX_POINTS: usize = 10_000;

/// Argument names of a node taking up to 64 values.
const VALUES: &[&str] = &["VALUE"; 64];

/// `vary "PATH" V1 V2 ...`: the path, then up to 64 values.
const VARY_ARGS: &[&str] = &{
    let mut args = ["VALUE"; 65];
    args[0] = "PATH";
    args
};

/// Shape of the `sweep` node.
pub(crate) const SHAPE: Shape = Shape {
    args: &["MODE"],
    required: 0,
    props: &[],
    children: true,
    usage: "sweep \"grid\" { vary \"optimizer.lr.peak\" 1e-3 2e-3; seeds 0 1 2 }",
};

/// Shape of one `- VALUE...` child of a `vary`.
const VALUE_SHAPE: Shape =
    Shape { args: VALUES, required: 1, props: &[], children: false, usage: "- 0.15 0.2" };

/// Nodes of the sweep block.
pub(crate) const FIELDS: &[Field<SweepSpec>] = &[
    Field {
        name: "vary",
        shape: Shape {
            args: VARY_ARGS,
            required: 1,
            props: &[],
            children: true,
            usage: "vary \"optimizer.lr.peak\" 1e-3 2e-3  or  vary \"mask.targets.scale\" { - 0.1 0.15; - 0.15 0.2 }",
        },
        read: vary,
    },
    Field { name: "seeds", shape: Shape { args: VALUES, required: 1, props: &[], children: false, usage: "seeds 0 1 2" }, read: seeds },
];

/// A sweep as written.
#[derive(Debug)]
pub(crate) struct SweepSpec {
    /// Grid (cartesian product) or zip (lockstep).
    pub mode: SweepMode,
    /// The `sweep` node's name.
    pub span: SourceSpan,
    /// The varied settings, in the order written.
    pub vary: Vec<Vary>,
    /// The `seeds` list (crossed with every point), as a `vary` of `seed`.
    pub seeds: Option<Vary>,
}

/// One varied setting.
#[derive(Debug)]
pub(crate) struct Vary {
    /// The setting.
    pub setting: &'static Setting,
    /// Its path as written.
    pub path: String,
    /// The path string.
    pub span: SourceSpan,
    /// The values, in order.
    pub values: Vec<Value>,
}

/// One value of a varied setting: one or more entries (`0.1 0.15` for a range).
#[derive(Debug)]
pub(crate) struct Value {
    /// The entries as parsed, with their spans.
    pub entries: Vec<KdlEntry>,
    /// From the first entry to the last.
    pub span: SourceSpan,
    /// As written, strings without quotes: `0.1 0.15`, `1e-3`, `vit-tiny`.
    pub text: String,
}

impl SweepSpec {
    /// Number of points: the product (grid) or the common length (zip) of the value lists,
    /// times the number of seeds; `None` past [`MAX_POINTS`].
    pub fn points(&self) -> Option<usize> {
        let mut lists = self.vary.iter().map(|v| v.values.len());
        let n = match self.mode {
            SweepMode::Grid => lists.try_fold(1usize, |acc, n| acc.checked_mul(n))?,
            SweepMode::Zip => lists.max().unwrap_or(1),
        };
        let n = n.checked_mul(self.seeds.as_ref().map_or(1, |s| s.values.len()))?;
        (n <= MAX_POINTS).then_some(n)
    }
}

/// Reads the `sweep` node into `top.sweep`.
pub(crate) fn read(cx: &mut Ctx, n: &Node, top: &mut TopLevel) {
    const MODES: &[(&str, SweepMode)] = &[("grid", SweepMode::Grid), ("zip", SweepMode::Zip)];
    let mode = match n.arg(0) {
        Some(e) => cx.keyword(e, "sweep.mode", "sweep mode", MODES).unwrap_or(SweepMode::Grid),
        None => SweepMode::Grid,
    };
    let span = cx.name_span(n.kdl);
    let mut spec = SweepSpec { mode, span, vary: Vec::new(), seeds: None };
    read_children(cx, n.children(), "sweep", "sweep", FIELDS, &mut spec);
    let written = |name: &str| n.children().iter().any(|c| c.name().value() == name);
    if !written("vary") && !written("seeds") {
        cx.err(DslError::InvalidValue {
            what: "sweep".into(),
            message: "it varies nothing".into(),
            span,
            help: "add `vary \"PATH\" VALUE...` (e.g. `vary \"optimizer.lr.peak\" 1e-3 2e-3`) or \
                   `seeds 0 1 2`"
                .into(),
        });
    }
    if let (Some(seeds), Some(v)) =
        (&spec.seeds, spec.vary.iter().find(|v| v.setting.path == "seed"))
    {
        // (the one written second is "written again", whichever it is)
        let seeds_later = seeds.span.offset() > v.span.offset();
        let (name, span, first) = if seeds_later { ("seeds", seeds.span, v.span) } else { ("vary \"seed\"", v.span, seeds.span) };
        cx.err(DslError::DuplicateNode {
            name: name.into(),
            span,
            first,
            help: "`seeds` and `vary \"seed\"` both vary the seed; drop one of them".into(),
        });
    }
    // one setting varied twice (`vary "encoder"` and `vary "encoder.preset"`): a point would
    // be named after both values and hold only the last
    for (i, v) in spec.vary.iter().enumerate() {
        if let Some(first) = spec.vary[..i].iter().find(|f| f.setting.canonical() == v.setting.canonical()) {
            cx.err(DslError::DuplicateNode {
                name: format!("vary \"{}\"", v.path),
                span: v.span,
                first: first.span,
                help: if first.path == v.path {
                    format!("list every value of `{}` in one `vary`", v.path)
                } else {
                    format!("`{}` and `{}` are one setting: list every value in one `vary`", first.path, v.path)
                },
            });
        }
    }
    // two settings of one value: the peak learning rate as `peak=` and as `blr=` (one node
    // writing both is refused; varied both, the last `vary` won and the points named after
    // the other trained alike)
    let lr = |p: &str| ["optimizer.lr.peak", "optimizer.lr.blr"].contains(&p);
    if let (Some(first), Some(second)) = (spec.vary.iter().find(|v| lr(&v.path)), spec.vary.iter().filter(|v| lr(&v.path)).nth(1)) {
        cx.err(DslError::InvalidValue {
            what: "vary".into(),
            message: format!("`{}` and `{}` both set the peak learning rate: each point would hold only the value written last", first.path, second.path),
            span: second.span,
            help: format!("vary one of them (`{}` alone, say)", first.path),
        });
    }
    if spec.mode == SweepMode::Zip {
        if let Some((first, rest)) = spec.vary.split_first() {
            for v in rest.iter().filter(|v| v.values.len() != first.values.len()) {
                cx.err(DslError::ZipLength {
                    path: v.path.clone(),
                    count: v.values.len(),
                    first_path: first.path.clone(),
                    first_count: first.values.len(),
                    span: v.span,
                    first: first.span,
                    help: "in a zip sweep point i takes the i-th value of every `vary`: give each \
                           the same number of values, or use `sweep \"grid\"` for every \
                           combination"
                        .into(),
                });
            }
        }
    }
    if spec.mode == SweepMode::Zip {
        zip_points_differ(cx, &spec);
    }
    if spec.points().is_none() {
        cx.err(DslError::InvalidValue {
            what: "sweep".into(),
            message: format!("it has more than {MAX_POINTS} points"),
            span,
            help: "split it into several sweeps, or vary fewer settings at once".into(),
        });
    }
    top.sweep = Some(spec);
}

/// Whether `path` is a setting no stage's hash counts: the cadence of logging and
/// checkpoints, the loader's threads, the launch (`distributed.*`; its layout and SLURM job
/// are refused with their own reasons first).
pub(crate) fn unhashed(path: &str) -> bool {
    ["log-every", "data.workers", "data.prefetch"].contains(&path) || path == "checkpoint" || path.starts_with("checkpoint.") || path.starts_with("distributed.")
}

fn vary(cx: &mut Ctx, n: &Node, spec: &mut SweepSpec) {
    // (said as `vary`'s first argument: it read "wrong type for `sweep.vary.#0.path`", with
    // the help of a preset name)
    if let Some(e) = n.arg(0).filter(|e| e.value().as_string().is_none()) {
        cx.err(DslError::WrongType {
            what: "vary".into(),
            expected: "a setting's path in quotes".into(),
            found: e.value().to_string(),
            span: cx.entry_span(e),
            help: "`vary` names the setting first, then its values: `vary \"optimizer.lr.peak\" 1e-3 2e-3`".into(),
        });
        return;
    }
    let Some(path) = n.arg(0).and_then(|e| cx.value::<String>(e, &n.sub("path"))) else { return };
    let Some(setting) = settings::find(&path.value) else {
        cx.err(DslError::UnknownSweepPath {
            path: path.value.clone(),
            span: path.span,
            help: settings::unknown_help(&path.value),
        });
        return;
    };
    // settings one for the whole study: the number of processes is the launch's (`ijepa
    // launch` and `ijepa slurm` start every point on it, so each point but one trained under
    // another layout than its label says, and all shared one pretraining); the SLURM job's
    // (`ijepa slurm` wrote point 0's time, partition, account... for every point, saying nothing)
    let refused = if ["distributed.nodes", "distributed.gpus-per-node"].contains(&path.value.as_str()) {
        Some((
            format!("`{}` is the launch's layout, one for every point of a study: its points would all train on the layout the study is launched with", path.value),
            "write one file per layout (each `extends` a common base) and launch each",
        ))
    } else if ["distributed.timeout", "distributed.backend"].contains(&path.value.as_str()) {
        // (every point trained with the first point's: one process group serves the study)
        Some((
            format!("`{}` is the process group's, one for every point of a study: a launch forms one group for all its points, with the first point's value", path.value),
            "write one file per value (each `extends` a common base) and launch each",
        ))
    } else if path.value.starts_with("distributed.slurm.") {
        Some((
            format!("`{}` is the SLURM job's, one for every point of a study: `ijepa slurm` writes one script for them all", path.value),
            "write one file per job setting (each `extends` a common base) and submit each",
        ))
    } else if unhashed(&path.value) && spec.mode != SweepMode::Zip {
        // (the engine's `pretrain_hash` leaves these out: in a grid its points shared one
        // pretraining, run once with one point's value, and the others' labels said what never
        // ran; a zip whose points differ in a counted setting too is checked point by point,
        // in `zip_points_differ`)
        Some((
            format!(
                "`{}` changes how a run is carried out (its logging, checkpoints, loader threads or launch), not what it computes: no stage counts it, so \
                 the points would share one pretraining, run with one of the values",
                path.value
            ),
            "to compare the values, run one file per value (each `extends` a common base), each with its own `--runs-dir` (their stages are the same); to time loader threads, `ijepa bench data --threads N`",
        ))
    } else {
        None
    };
    if let Some((message, help)) = refused {
        cx.err(DslError::InvalidValue { what: "vary".into(), message, span: path.span, help: help.into() });
        return;
    }
    let args: Vec<&KdlEntry> =
        n.kdl.entries().iter().filter(|e| e.name().is_none()).skip(1).collect();
    let children = n.children();
    let mut values = Vec::new();
    let (least, most) = setting.arity();
    if !args.is_empty() && !children.is_empty() {
        cx.err(DslError::InvalidValue {
            what: "vary".into(),
            message: "values are given both as arguments and as children".into(),
            span: path.span,
            help: "write `vary \"PATH\" V1 V2 ...` for one-value settings, or one `- VALUE` \
                   child per value"
                .into(),
        });
        return;
    }
    if !args.is_empty() && most != 1 {
        let span = args.iter().map(|e| cx.entry_span(e)).reduce(join_spans).unwrap_or(path.span);
        cx.err(DslError::InvalidValue {
            what: "vary".into(),
            message: format!("one value of `{}` is a list, so values cannot follow the path", path.value),
            span,
            help: {
                // the values written, one child each where one entry is a value
                let children = match least <= 1 {
                    true => args.iter().map(|e| format!("- {}", e.value().as_string().map_or_else(|| e.value().to_string(), |s| format!("{s:?}")))).collect::<Vec<_>>().join("; "),
                    false => "- 0.1 0.15; - 0.15 0.2".to_string(),
                };
                format!("its form is `{}`: write each value as a child, e.g. `vary \"{}\" {{ {children} }}`", setting.usage(), path.value)
            },
        });
        return;
    }
    for e in args {
        values.push(value(cx, &[e]));
    }
    for child in children {
        if values.len() >= MAX_POINTS {
            // more values than a sweep may have points: stop reading (a runaway list must not
            // cost time proportional to its square)
            cx.err(DslError::InvalidValue {
                what: "vary".into(),
                message: format!("`{}` lists more than {MAX_POINTS} values", path.value),
                span: path.span,
                help: "a sweep has at most 10,000 points: split it into several sweeps".into(),
            });
            return;
        }
        let name = child.name().value();
        if name != "-" {
            cx.err(DslError::UnknownNode {
                name: name.to_string(),
                parent: "`vary`".into(),
                span: cx.name_span(child),
                help: "list each value as a `-` child: `- 0.15 0.2` for a range, `- 1e-3` for \
                       a number"
                    .into(),
            });
            continue;
        }
        let node = Node::check(cx, child, n.sub("-"), &VALUE_SHAPE);
        let entries: Vec<&KdlEntry> =
            node.kdl.entries().iter().filter(|e| e.name().is_none()).collect();
        if !entries.is_empty() {
            values.push(value(cx, &entries));
        }
    }
    if values.is_empty() && n.kdl.entries().len() == 1 && children.is_empty() {
        cx.err(DslError::MissingArgument {
            node: "vary".into(),
            what: "its values".into(),
            span: cx.name_span(n.kdl),
            help: format!(
                "`vary \"{}\" V1 V2 ...`, or one `- VALUE` child per value; its form is `{}`",
                path.value,
                setting.usage()
            ),
        });
    }
    // a zip sweep may repeat a value in one `vary` (one setting changed at a time); its
    // points must differ as tuples, which `read` checks once every `vary` is known
    let values = if spec.mode == SweepMode::Zip { values } else { dedup(cx, &path.value, values) };
    if !values.is_empty() {
        spec.vary.push(Vary { setting, path: path.value, span: path.span, values });
    }
}

fn seeds(cx: &mut Ctx, n: &Node, spec: &mut SweepSpec) {
    let Some(setting) = settings::find("seed") else { return };
    let entries: Vec<&KdlEntry> = n.kdl.entries().iter().filter(|e| e.name().is_none()).collect();
    let values: Vec<Value> = entries.iter().map(|e| value(cx, &[e])).collect();
    let values = dedup(cx, "seed", values);
    if !values.is_empty() {
        let span = cx.name_span(n.kdl);
        spec.seeds = Some(Vary { setting, path: "seed".into(), span, values });
    }
}

/// One value from its entries.
fn value(cx: &Ctx, entries: &[&KdlEntry]) -> Value {
    let spans: Vec<SourceSpan> = entries.iter().map(|e| cx.entry_span(e)).collect();
    let text = entries
        .iter()
        .zip(&spans)
        .map(|(e, s)| match e.value() {
            KdlValue::String(v) => v.clone(),
            _ => cx.src.get(s.offset()..s.offset() + s.len()).unwrap_or_default().to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ");
    let span = spans.iter().copied().reduce(join_spans).unwrap_or_else(|| (0..0).into());
    Value { entries: entries.iter().map(|e| (*e).clone()).collect(), span, text }
}

/// Whether two written values of the setting at `path` are the same setting: numbers compare
/// as numbers (`1` and `1.0`, `1e-3` and `0.001`), a file or folder as the stage hashes spell
/// it (`/data/x`, `/data/x/` and `/data//./x`: repeated and trailing slashes and `.`
/// components dropped), everything else as written.
fn same_entry(path: &str, x: &kdl::KdlValue, y: &kdl::KdlValue) -> bool {
    use kdl::KdlValue::{Float, Integer, String};
    let alike = |p: &str| crate::config::path_alike(std::path::Path::new(p));
    match (x, y) {
        // two integers exactly (seeds beyond 2^53 are distinct); an integer and a float as numbers
        (Integer(a), Float(b)) | (Float(b), Integer(a)) => *a as f64 == *b,
        (String(a), String(b)) if is_file_setting(path) => a == b || alike(a) == alike(b),
        _ => x == y,
    }
}

/// Whether the setting at `path` names a file or folder (the data's root, test root and list,
/// an evaluation's split file).
fn is_file_setting(path: &str) -> bool {
    ["data.root", "data.test-root", "data.subset"].contains(&path) || path.ends_with(".split-file")
}

/// Whether two written values of the setting at `path` are the same ([`same_entry`], entry by
/// entry).
fn same_value(path: &str, a: &Value, b: &Value) -> bool {
    a.entries.len() == b.entries.len() && a.entries.iter().zip(&b.entries).all(|(x, y)| same_entry(path, x.value(), y.value()))
}

/// In a zip sweep, reports a point equal to an earlier one in every `vary` (the same run
/// twice), or in every `vary` that a stage counts (the two differ only in settings of how a
/// run is carried out, [`unhashed`]: one pretraining under two labels), or in every `vary` the
/// pretraining counts while they differ in how it is carried out (`log-every` beside an
/// evaluation's `k`: the evaluations differ, and the one pretraining they share ran with the
/// first point's `log-every` without a word).
fn zip_points_differ(cx: &mut Ctx, spec: &SweepSpec) {
    let n = spec.vary.iter().map(|v| v.values.len()).min().unwrap_or(0);
    let counted: Vec<&Vary> = spec.vary.iter().filter(|v| !unhashed(&v.path)).collect();
    let by_pretraining: Vec<&Vary> = counted.iter().copied().filter(|v| !(v.path == "eval" || v.path.starts_with("eval."))).collect();
    for j in 1..n {
        let same = |vs: &[&Vary]| (0..j).find(|&i| vs.iter().all(|v| same_value(&v.path, &v.values[i], &v.values[j])));
        if let Some(i) = same(&spec.vary.iter().collect::<Vec<_>>()) {
            let first = &spec.vary[0];
            cx.err(DslError::InvalidValue {
                what: "sweep value".into(),
                message: format!("point {} repeats point {} in every `vary` (the same run twice)", j + 1, i + 1),
                span: first.values[j].span,
                help: "change one of its values, or drop the point".into(),
            });
        } else if let Some(i) = same(&counted) {
            let apart: Vec<&str> = spec.vary.iter().filter(|v| unhashed(&v.path)).map(|v| v.path.as_str()).collect();
            cx.err(DslError::InvalidValue {
                what: "sweep value".into(),
                message: format!(
                    "point {} differs from point {} only in {}, which no stage counts (how a run is carried out, not what it computes): the two would share one pretraining, run with one of the values",
                    j + 1,
                    i + 1,
                    apart.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
                ),
                span: spec.vary.iter().find(|v| unhashed(&v.path)).map_or(spec.vary[0].values[j].span, |v| v.values[j].span),
                help: "change a setting a stage counts between the two, or drop the point".into(),
            });
        } else if let Some(i) = same(&by_pretraining) {
            // (they share a pretraining: a setting of how it is carried out that differs is lost)
            let differ: Vec<&Vary> = spec.vary.iter().filter(|v| unhashed(&v.path) && !same_value(&v.path, &v.values[i], &v.values[j])).collect();
            let Some(first) = differ.first() else { continue };
            cx.err(DslError::InvalidValue {
                what: "sweep value".into(),
                message: format!(
                    "points {} and {} share one pretraining (they differ only in their evaluations), which runs once, with point {}'s {}: point {}'s is not used",
                    i + 1,
                    j + 1,
                    i + 1,
                    differ.iter().map(|v| format!("`{}`", v.path)).collect::<Vec<_>>().join(", "),
                    j + 1
                ),
                span: first.values[j].span,
                help: "give the points the same value of it, or change a setting the pretraining counts between them".into(),
            });
        }
    }
}

/// Reports and drops values listed twice.
fn dedup(cx: &mut Ctx, path: &str, values: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for v in values {
        if let Some(first) = out.iter().find(|a| same_value(path, a, &v)) {
            let message = match first.text == v.text {
                true => format!("`{}` is listed twice", v.text),
                false => format!("`{}` is listed twice (as `{}` first)", v.text, first.text),
            };
            cx.err(DslError::InvalidValue {
                what: "sweep value".into(),
                message,
                span: v.span,
                help: "list each value once (every point of a sweep is a different run)".into(),
            });
        } else {
            out.push(v);
        }
    }
    out
}
