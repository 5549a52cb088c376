//! The `eval "PROTOCOL" { ... }` blocks (paper appendix A.2: linear probe, 1% labels; kNN as a
//! monitor) and the `report` node. An experiment may hold several `eval` blocks, one per
//! protocol; they run after pretraining on the dataset's test split.

use crate::config::{Baseline, EvalConfig, EvalProtocol, Experiment, FeatureChoice, FinetuneConfig, HeadKind};
use crate::diagnostics::DslError;
use crate::reader::{read_children, Bound, Ctx, Field, Node, Shape};

/// Up to eight values in a list node (`lr 0.01 0.05 0.001`).
const LIST: &[&str] = &["V1", "V2", "V3", "V4", "V5", "V6", "V7", "V8"];

/// Shape of the `eval` node.
pub(crate) const SHAPE: Shape = Shape {
    args: &["PROTOCOL"],
    required: 1,
    props: &["fraction"],
    children: true,
    usage: "eval \"linear\" { features \"last\"; head \"linear\"; lr 0.01 0.05 0.001; ... }",
};

/// Shape of the `report` node.
pub(crate) const REPORT_SHAPE: Shape =
    Shape { args: &[], required: 0, props: &[], children: false, usage: "report" };

pub(crate) const PROTOCOLS: &[(&str, EvalProtocol)] = &[
    ("linear", EvalProtocol::Linear),
    ("low-shot", EvalProtocol::LowShot),
    ("knn", EvalProtocol::Knn),
    ("finetune", EvalProtocol::Finetune),
];

/// Nodes of an eval block.
pub(crate) const FIELDS: &[Field<EvalConfig>] = &[
    Field {
        name: "features",
        shape: Shape { args: &["KIND1", "KIND2"], required: 1, props: &[], children: false, usage: "features \"last\" \"last4\"" },
        read: features,
    },
    Field { name: "head", shape: Shape::scalar(&["KIND"], "head \"linear\""), read: head },
    Field { name: "epochs", shape: Shape::scalar(&["N"], "epochs 50"), read: epochs },
    Field { name: "decay-every", shape: Shape::scalar(&["EPOCHS"], "decay-every 15"), read: decay_every },
    Field { name: "batch-size", shape: Shape::scalar(&["N"], "batch-size 256"), read: batch_size },
    Field { name: "lr", shape: Shape { args: LIST, required: 1, props: &[], children: false, usage: "lr 0.01 0.05 0.001" }, read: lrs },
    Field {
        name: "weight-decay",
        shape: Shape { args: LIST, required: 1, props: &[], children: false, usage: "weight-decay 5e-4 0" },
        read: wds,
    },
    Field { name: "c", shape: Shape { args: LIST, required: 1, props: &[], children: false, usage: "c 0.01 0.1 1 10" }, read: cs },
    Field { name: "held-out", shape: Shape::scalar(&["FRACTION"], "held-out 0.1"), read: heldout },
    Field { name: "split-file", shape: Shape::scalar(&["FILE"], "split-file \"1percent.txt\""), read: split_file },
    Field { name: "k", shape: Shape::scalar(&["N"], "k 20"), read: k },
    Field { name: "temperature", shape: Shape::scalar(&["T"], "temperature 0.07"), read: temperature },
    Field { name: "warmup-epochs", shape: Shape::scalar(&["EPOCHS"], "warmup-epochs 1"), read: warmup_epochs },
    Field { name: "min-lr", shape: Shape::scalar(&["LR"], "min-lr 1e-6"), read: min_lr },
    Field { name: "layer-decay", shape: Shape::scalar(&["FACTOR"], "layer-decay 0.75"), read: layer_decay },
    Field { name: "drop-path", shape: Shape::scalar(&["RATE"], "drop-path 0.1"), read: drop_path },
    Field { name: "label-smoothing", shape: Shape::scalar(&["EPS"], "label-smoothing 0.1"), read: label_smoothing },
    Field {
        name: "baselines",
        shape: Shape { args: &["B1", "B2"], required: 1, props: &[], children: false, usage: "baselines \"random-init\" \"raw-pixels\"" },
        read: baselines,
    },
];

/// Reads one `eval` block: appended to `exp.evals`, or, when the experiment already has a block
/// of this protocol (from an `extends` base), changing that block where written.
pub(crate) fn read(cx: &mut Ctx, n: &Node, exp: &mut Experiment) {
    let Some(protocol) = n.arg(0).and_then(|e| cx.keyword(e, &n.sub("protocol"), "evaluation protocol", PROTOCOLS)) else {
        cx.poison(&n.path);
        return;
    };
    // A second block of the same protocol in one file is reported by `read_children`; one
    // for a protocol the base already evaluates changes the base's block.
    let existing = exp.evals.iter().position(|e| e.protocol == protocol);
    let mut cfg = match existing {
        Some(i) => exp.evals[i].clone(),
        None => EvalConfig::defaults(protocol),
    };
    if let Some(v) = n.prop("fraction").and_then(|e| cx.f64_in(e, &n.sub("fraction"), Bound::UnitOpenClosed)) {
        if protocol != EvalProtocol::LowShot {
            cx.err(DslError::InvalidValue {
                what: "fraction".into(),
                message: "only low-shot evaluations sample a fraction of the labels".into(),
                span: cx.name_span(n.kdl),
                help: "write `eval \"low-shot\" fraction=0.01 { ... }`".into(),
            });
        }
        cfg.fraction = v;
    }
    read_children(cx, n.children(), &n.path, "eval", FIELDS, &mut cfg);
    // a setting another protocol reads would be ignored here (and still move the stage's hash)
    for &node in foreign_settings(protocol) {
        if let Some(span) = cx.span_of(&n.sub(node)) {
            cx.err(DslError::InvalidValue {
                what: node.into(),
                message: format!("`{node}` is not read by the {} evaluation: it would be ignored", cfg.name()),
                span,
                help: format!("`{node}` is a setting of {}; remove it here", readers(node)),
            });
        }
    }
    // ... as would one the chosen head (or the single feature set) does not read
    let unread: &[(&str, &str)] = match (protocol, cfg.head) {
        (EvalProtocol::LowShot, HeadKind::Logistic) => &[
            ("epochs", "the logistic head is fit by L-BFGS to convergence, for each `c`"),
            ("batch-size", "the logistic head is fit on all the labelled features at once"),
            ("lr", "the logistic head is fit by L-BFGS (its grid is `c`)"),
            ("weight-decay", "the logistic head's regularisation is `c`"),
            ("decay-every", "the logistic head has no learning-rate schedule"),
            ("held-out", "the logistic head chooses `c` (and among `features` sets) by 3-fold cross-validation of its labelled images"),
        ],
        (EvalProtocol::LowShot, _) => &[("c", "`c` is the logistic head's (`head \"logistic\"`, the default)")],
        // (unless a sweep varies the feature sets or the grid: a point may then have several to
        // choose among; at the points that have one it is left out of the stage hash)
        (EvalProtocol::Knn, _) if cfg.features.len() < 2 && !cx.swept_paths.iter().any(|p| *p == n.sub("features")) => {
            &[("held-out", "kNN holds images out only to choose among several `features` sets")]
        }
        (EvalProtocol::Finetune, _)
            if cfg.lrs.len() * cfg.wds.len() < 2 && !cx.swept_paths.iter().any(|p| *p == n.sub("lr") || *p == n.sub("weight-decay")) =>
        {
            &[("held-out", "fine-tuning holds images out only to choose among several `lr` x `weight-decay` pairs, and this block has one")]
        }
        _ => &[],
    };
    // (written here, or in a base whose block this one changes: `head "logistic"` over a
    // base's `lr`, pointed at where this block made it unread)
    for &(node, why) in unread {
        let path = n.sub(node);
        if !cx.written(&path) {
            continue;
        }
        let (span, remove) = match cx.span_of(&path) {
            Some(span) => (span, "remove it here".to_string()),
            None => (
                cx.span_of(&n.sub("head")).or(cx.span_of(&n.sub("features"))).unwrap_or(cx.name_span(n.kdl)),
                format!("the base sets `{node}`: extend a base without it, or keep its head and features"),
            ),
        };
        cx.err(DslError::InvalidValue {
            what: node.into(),
            message: format!("`{node}` is not read by this {} evaluation: it would be ignored", cfg.name()),
            span,
            help: format!("{why}; {remove}"),
        });
    }
    if protocol == EvalProtocol::LowShot && cfg.split_file.is_some() {
        if let Some(span) = n.prop("fraction").and_then(|_| cx.span_of(&n.sub("fraction"))) {
            cx.err(DslError::InvalidValue {
                what: "fraction".into(),
                message: "`split-file` names the labelled images, so `fraction` would be ignored".into(),
                span,
                help: "keep one of `fraction=` and `split-file`".into(),
            });
        }
    }
    // with nothing held out there is nothing to choose on: the run would fail after
    // pretraining (or fine-tuning would take the grid's first point without a word)
    if cfg.heldout == 0.0 {
        if let Some((choice, one)) = choice_without_heldout(&cfg) {
            cx.err(DslError::Conflict {
                message: format!("`held-out 0` holds out no training image, but the {} evaluation chooses among {choice} on held-out images", cfg.name()),
                span: cx.span_or(&[&n.sub("held-out"), &n.path]),
                label: "nothing held out".into(),
                other: None,
                other_label: String::new(),
                help: format!("hold out a part of the training split (`held-out 0.1`, the default), or write {one}"),
            });
        }
    }
    // the logistic probe scores a feature set by cross-validating its C grid: with one C
    // there is no score to choose the set by (the run would fail after pretraining)
    if protocol == EvalProtocol::LowShot && cfg.head == HeadKind::Logistic && cfg.features.len() > 1 && cfg.cs.len() < 2 {
        cx.err(DslError::Conflict {
            message: format!("the logistic probe chooses among {} feature sets by cross-validating its `c` grid, which has one value", cfg.features.len()),
            span: cx.span_or(&[&n.sub("features"), &n.sub("c"), &n.path]),
            label: "nothing to score the sets by".into(),
            other: cx.span_of(&n.sub("c")),
            other_label: "one value".into(),
            help: "give `c` at least two values (the default is 0.01 0.1 1 10), or one `features` value".into(),
        });
    }
    // a BatchNorm head takes no step on a batch of one (no batch statistics): with
    // `batch-size 1` it would never train and report its zero weights' guess
    if cfg.head == HeadKind::BnLinear && cfg.batch_size < 2 && matches!(protocol, EvalProtocol::Linear | EvalProtocol::LowShot) {
        cx.err(DslError::Conflict {
            message: "a `bn-linear` head normalises each batch by its own statistics, so it never trains on batches of one image".into(),
            span: cx.span_or(&[&n.sub("batch-size"), &n.path]),
            label: "batch-size 1".into(),
            other: cx.span_of(&n.sub("head")),
            other_label: "bn-linear".into(),
            help: "write `batch-size 2` or more, or `head \"linear\"`".into(),
        });
    }
    if cfg.head == HeadKind::Logistic && protocol == EvalProtocol::Linear {
        cx.err(DslError::InvalidValue {
            what: "head".into(),
            message: "the linear probe trains `linear` or `bn-linear` heads".into(),
            span: cx.span_or(&[&n.sub("head"), &n.path]),
            help: "use `head \"logistic\"` in `eval \"low-shot\"`".into(),
        });
    }
    if protocol == EvalProtocol::Finetune {
        if cfg.baselines.contains(&Baseline::RawPixels) {
            cx.err(DslError::InvalidValue {
                what: "baselines".into(),
                message: "fine-tuning trains an encoder; the raw pixels have none to fine-tune".into(),
                span: cx.span_or(&[&n.sub("baselines"), &n.path]),
                help: "write `baselines \"random-init\"` (training the encoder from scratch)".into(),
            });
        }
        for (node, what) in [("features", "fine-tuning pools the last block"), ("head", "fine-tuning trains a linear head")] {
            if let Some(span) = cx.span_of(&n.sub(node)) {
                cx.err(DslError::InvalidValue {
                    what: node.into(),
                    message: format!("`{node}` is a setting of the frozen-feature probes; {what}"),
                    span,
                    help: format!("remove `{node}` from `eval \"finetune\"`"),
                });
            }
        }
    }
    match existing {
        Some(i) => exp.evals[i] = cfg,
        None => exp.evals.push(cfg),
    }
}

/// What an evaluation chooses on its held-out images, when it has a choice to make: several
/// feature sets, or several points of a learning-rate / weight-decay grid (the logistic
/// probe's `c` grid is cross-validated instead).
fn choice_without_heldout(cfg: &EvalConfig) -> Option<(String, &'static str)> {
    let grid = cfg.lrs.len() * cfg.wds.len();
    // the logistic probe cross-validates: its C grid and its feature sets need nothing held out
    let logistic = cfg.protocol == EvalProtocol::LowShot && cfg.head == HeadKind::Logistic;
    // kNN has no grid
    if !logistic && cfg.protocol != EvalProtocol::Knn && grid > 1 {
        Some((format!("{grid} lr x weight-decay points"), "one `lr` and one `weight-decay` value"))
    } else if cfg.features.len() > 1 && cfg.protocol != EvalProtocol::Finetune && !logistic {
        Some((format!("{} feature sets", cfg.features.len()), "one `features` value"))
    } else {
        None
    }
}

/// The nodes of an eval block that `protocol` does not read (the fine-tuning settings and
/// `features` / `head` in fine-tuning have their own diagnostics).
fn foreign_settings(protocol: EvalProtocol) -> &'static [&'static str] {
    match protocol {
        EvalProtocol::Linear => &["c", "split-file", "k", "temperature"],
        EvalProtocol::LowShot => &["k", "temperature"],
        EvalProtocol::Knn => &["head", "epochs", "decay-every", "batch-size", "lr", "weight-decay", "c", "split-file"],
        EvalProtocol::Finetune => &["decay-every", "c", "split-file", "k", "temperature"],
    }
}

/// The evaluations that read an eval-block node, for a diagnostic's help.
fn readers(node: &str) -> &'static str {
    match node {
        "k" | "temperature" => "`eval \"knn\"`",
        "c" => "`eval \"low-shot\"` with the logistic head",
        "split-file" => "`eval \"low-shot\"`",
        "head" | "decay-every" => "`eval \"linear\"` and `eval \"low-shot\"`",
        _ => "`eval \"linear\"`, `eval \"low-shot\"` and `eval \"finetune\"`",
    }
}

/// Reads the `report` node.
pub(crate) fn read_report(_cx: &mut Ctx, _n: &Node, exp: &mut Experiment) {
    exp.report = true;
}

/// `features "last"`, or several kinds for the probe to choose among on its held-out part of
/// the training split (`features "last" "last4"`).
fn features(cx: &mut Ctx, n: &Node, c: &mut EvalConfig) {
    const KINDS: &[(&str, FeatureChoice)] = &[("last", FeatureChoice::Last), ("last4", FeatureChoice::Last4)];
    let mut kinds = Vec::new();
    for i in 0..KINDS.len() {
        let Some(e) = n.arg(i) else { break };
        let v = cx.keyword(e, &n.path, "features", KINDS);
        let Some(v) = v else { return };
        if kinds.contains(&v) {
            cx.err(DslError::InvalidValue {
                what: "features".into(),
                message: format!("`{}` is listed twice", v.name()),
                span: cx.entry_span(e),
                help: "list each kind once; with several, the probe chooses among them on its held-out data".into(),
            });
            return;
        }
        kinds.push(v);
    }
    c.features = kinds;
}

fn head(cx: &mut Ctx, n: &Node, c: &mut EvalConfig) {
    const KINDS: &[(&str, HeadKind)] =
        &[("linear", HeadKind::Linear), ("bn-linear", HeadKind::BnLinear), ("logistic", HeadKind::Logistic)];
    if let Some(v) = n.arg(0).and_then(|e| cx.keyword(e, &n.path, "head", KINDS)) {
        c.head = v;
    }
}

fn epochs(cx: &mut Ctx, n: &Node, c: &mut EvalConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.usize_min(e, &n.path, 1)) {
        c.epochs = v;
    }
}

fn decay_every(cx: &mut Ctx, n: &Node, c: &mut EvalConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.usize_min(e, &n.path, 1)) {
        c.decay_every = v;
    }
}

fn batch_size(cx: &mut Ctx, n: &Node, c: &mut EvalConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.usize_min(e, &n.path, 1)) {
        c.batch_size = v;
    }
}

fn list(cx: &mut Ctx, n: &Node, bound: Bound) -> Option<Vec<f64>> {
    let mut out = Vec::new();
    for i in 0..LIST.len() {
        let Some(e) = n.arg(i) else { break };
        let v = cx.f64_in(e, &n.path, bound)?;
        // a grid point twice is trained twice and scored alike: a slip, as in `features`
        if out.contains(&v) {
            cx.err(DslError::InvalidValue {
                what: n.path.clone(),
                message: format!("{v} is listed twice"),
                span: cx.entry_span(e),
                help: "list each value once".into(),
            });
            return None;
        }
        out.push(v);
    }
    Some(out)
}

fn lrs(cx: &mut Ctx, n: &Node, c: &mut EvalConfig) {
    if let Some(v) = list(cx, n, Bound::Positive) {
        c.lrs = v;
    }
}

fn wds(cx: &mut Ctx, n: &Node, c: &mut EvalConfig) {
    if let Some(v) = list(cx, n, Bound::NonNegative) {
        c.wds = v;
    }
}

fn cs(cx: &mut Ctx, n: &Node, c: &mut EvalConfig) {
    if let Some(v) = list(cx, n, Bound::Positive) {
        c.cs = v;
    }
}

fn heldout(cx: &mut Ctx, n: &Node, c: &mut EvalConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.f64_in(e, &n.path, Bound::UnitClosedOpen)) {
        c.heldout = v;
    }
}

fn split_file(cx: &mut Ctx, n: &Node, c: &mut EvalConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.value::<String>(e, &n.path)) {
        c.split_file = Some(v.value.into());
    }
}

fn k(cx: &mut Ctx, n: &Node, c: &mut EvalConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.usize_min(e, &n.path, 1)) {
        c.k = v;
    }
}

fn temperature(cx: &mut Ctx, n: &Node, c: &mut EvalConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.f64_in(e, &n.path, Bound::Positive)) {
        c.temperature = v;
    }
}

/// The fine-tuning settings of `c`, or a diagnostic at `n` when the block is another protocol.
fn finetune_of<'c>(cx: &mut Ctx, n: &Node, c: &'c mut EvalConfig) -> Option<&'c mut FinetuneConfig> {
    if c.finetune.is_none() {
        cx.err(DslError::InvalidValue {
            what: n.name().into(),
            message: format!("`{}` is a fine-tuning setting", n.name()),
            span: cx.name_span(n.kdl),
            help: "write it in `eval \"finetune\" { ... }`".into(),
        });
    }
    c.finetune.as_mut()
}

/// Reads a fine-tuning number within `bound` into the field `set` picks.
fn finetune_number(cx: &mut Ctx, n: &Node, c: &mut EvalConfig, bound: Bound, set: fn(&mut FinetuneConfig, f64)) {
    if let Some(v) = n.arg(0).and_then(|e| cx.f64_in(e, &n.path, bound)) {
        if let Some(f) = finetune_of(cx, n, c) {
            set(f, v);
        }
    }
}

fn warmup_epochs(cx: &mut Ctx, n: &Node, c: &mut EvalConfig) {
    finetune_number(cx, n, c, Bound::NonNegative, |f, v| f.warmup_epochs = v);
}

fn min_lr(cx: &mut Ctx, n: &Node, c: &mut EvalConfig) {
    finetune_number(cx, n, c, Bound::NonNegative, |f, v| f.min_lr = v);
}

fn layer_decay(cx: &mut Ctx, n: &Node, c: &mut EvalConfig) {
    finetune_number(cx, n, c, Bound::UnitOpenClosed, |f, v| f.layer_decay = v);
}

fn drop_path(cx: &mut Ctx, n: &Node, c: &mut EvalConfig) {
    finetune_number(cx, n, c, Bound::UnitClosedOpen, |f, v| f.drop_path = v);
}

fn label_smoothing(cx: &mut Ctx, n: &Node, c: &mut EvalConfig) {
    finetune_number(cx, n, c, Bound::UnitClosedOpen, |f, v| f.label_smoothing = v);
}

fn baselines(cx: &mut Ctx, n: &Node, c: &mut EvalConfig) {
    const KINDS: &[(&str, Baseline)] = &[("random-init", Baseline::RandomInit), ("raw-pixels", Baseline::RawPixels)];
    let mut out = Vec::new();
    for i in 0..2 {
        let Some(e) = n.arg(i) else { break };
        if let Some(b) = cx.keyword(e, &n.path, "baseline", KINDS) {
            if out.contains(&b) {
                cx.err(DslError::InvalidValue {
                    what: "baselines".into(),
                    message: "a baseline is listed twice".into(),
                    span: cx.entry_span(e),
                    help: "list each baseline once: baselines \"random-init\" \"raw-pixels\"".into(),
                });
                return;
            }
            out.push(b);
        }
    }
    c.baselines = out;
}
