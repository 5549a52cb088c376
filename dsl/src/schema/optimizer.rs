//! The `optimizer "adamw" { lr ...; weight-decay ...; betas ...; eps ... }` block (official
//! `optimization` section: `start_lr`, `lr`, `final_lr`, `warmup`, `weight_decay`,
//! `final_weight_decay`; `WarmupCosineSchedule`, `CosineWDSchedule`).

use crate::config::{Experiment, OptimizerConfig, WdShape};
use crate::diagnostics::DslError;
use crate::reader::{read_children, Bound, Ctx, Field, Node, Shape};

/// Optimizers this version implements.
pub const OPTIMIZERS: &[&str] = &["adamw"];

/// Shape of the `optimizer` node.
pub(crate) const SHAPE: Shape = Shape {
    args: &["NAME"],
    required: 1,
    props: &[],
    children: true,
    usage: "optimizer \"adamw\" { lr ...; weight-decay ...; betas 0.9 0.999; eps 1e-8 }",
};

/// Nodes of the optimizer block.
pub(crate) const FIELDS: &[Field<OptimizerConfig>] = &[
    Field {
        name: "lr",
        shape: Shape::props(
            &["start", "peak", "blr", "final", "warmup-epochs"],
            "lr start=2e-4 peak=1e-3 final=1e-6 warmup-epochs=40  (or blr=1.5e-4 for peak = blr x batch / 256)",
        ),
        read: lr,
    },
    Field {
        name: "weight-decay",
        shape: Shape::props(
            &["start", "final", "schedule"],
            "weight-decay start=0.04 final=0.4 schedule=\"cosine\"",
        ),
        read: weight_decay,
    },
    Field {
        name: "betas",
        shape: Shape::pair(&["BETA1", "BETA2"], "betas 0.9 0.999"),
        read: betas,
    },
    Field { name: "eps", shape: Shape::scalar(&["EPS"], "eps 1e-8"), read: eps },
];

/// Reads the optimizer block into `exp.optimizer`.
pub(crate) fn read(cx: &mut Ctx, n: &Node, exp: &mut Experiment) {
    let choices: Vec<(&str, ())> = OPTIMIZERS.iter().map(|o| (*o, ())).collect();
    if let Some(e) = n.arg(0) {
        if cx.keyword(e, &n.sub("name"), "optimizer", &choices).is_none() {
            cx.poison(&n.path);
        }
    }
    read_children(cx, n.children(), &n.path, "optimizer", FIELDS, &mut exp.optimizer);
}

fn lr(cx: &mut Ctx, n: &Node, o: &mut OptimizerConfig) {
    let l = &mut o.lr;
    for (key, slot) in [
        ("start", &mut l.start),
        ("peak", &mut l.peak),
        ("final", &mut l.final_),
        ("warmup-epochs", &mut l.warmup_epochs),
    ] {
        if let Some(v) = n.prop(key).and_then(|e| cx.f64_in(e, &n.sub(key), Bound::NonNegative)) {
            *slot = v;
        }
    }
    if let Some(v) = n.prop("blr").and_then(|e| cx.f64_in(e, &n.sub("blr"), Bound::Positive)) {
        if n.prop("peak").is_some() {
            cx.err(DslError::InvalidValue {
                what: "blr".into(),
                message: "`peak=` and `blr=` both set the peak learning rate".into(),
                span: cx.span_or(&[&n.sub("blr"), &n.path]),
                help: "keep one: `peak=` as is, or `blr=` for peak = blr x global batch / 256 (MAE's rule)".into(),
            });
        }
        l.blr = Some(v);
    } else if n.prop("peak").is_some() {
        // a peak written here replaces a base's blr
        l.blr = None;
    }
}

fn weight_decay(cx: &mut Ctx, n: &Node, o: &mut OptimizerConfig) {
    const SHAPES: &[(&str, WdShape)] = &[("cosine", WdShape::Cosine), ("linear", WdShape::Linear)];
    let w = &mut o.weight_decay;
    for (key, slot) in [("start", &mut w.start), ("final", &mut w.final_)] {
        if let Some(v) = n.prop(key).and_then(|e| cx.f64_in(e, &n.sub(key), Bound::NonNegative)) {
            *slot = v;
        }
    }
    if let Some(v) =
        n.prop("schedule").and_then(|e| cx.keyword(e, &n.sub("schedule"), "schedule", SHAPES))
    {
        w.shape = v;
    }
}

fn betas(cx: &mut Ctx, n: &Node, o: &mut OptimizerConfig) {
    if let Some(v) = cx.pair(n, Bound::UnitClosedOpen, false) {
        o.betas = v;
    }
}

fn eps(cx: &mut Ctx, n: &Node, o: &mut OptimizerConfig) {
    // (the optimizer computes in float32: 1e-46 is 0 there, and the first step divided by
    // it, NaN naming no setting; 1e39 is infinite, and no weight moved without a word)
    if let Some(v) = n.arg(0).and_then(|e| cx.f64_in(e, &n.path, Bound::PositiveF32)) {
        o.eps = v;
    }
}
