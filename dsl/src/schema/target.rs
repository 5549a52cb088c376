//! The `target "KIND" masking="WHERE"` node of I-JEPA: what the predictor regresses (paper
//! Table 7: the target encoder's representations, or the pixels of the target patches) and
//! where the target encoder is masked (Table 11: at its output, as the method does, or at its
//! input, so that it sees only the target block's patches).

use crate::config::{Experiment, TargetKind, TargetMasking};
use crate::diagnostics::DslError;
use crate::reader::{Ctx, Node, Shape};

/// Shape of the `target` node.
pub(crate) const SHAPE: Shape = Shape {
    args: &["KIND"],
    required: 0,
    props: &["masking"],
    children: false,
    usage: "target \"representation\" masking=\"output\"",
};

/// Reads the target node into `exp.target`.
pub(crate) fn read(cx: &mut Ctx, n: &Node, exp: &mut Experiment) {
    const KINDS: &[(&str, TargetKind)] = &[("representation", TargetKind::Representation), ("pixels", TargetKind::Pixels)];
    const WHERE: &[(&str, TargetMasking)] = &[("output", TargetMasking::Output), ("input", TargetMasking::Input)];
    if let Some(v) = n.arg(0).and_then(|e| cx.keyword(e, &n.sub("kind"), "target", KINDS)) {
        exp.target.kind = v;
    }
    if let Some(e) = n.prop("masking") {
        if let Some(v) = cx.keyword(e, &n.sub("masking"), "target masking", WHERE) {
            exp.target.masking = v;
        }
    }
    if exp.target.kind == TargetKind::Pixels && exp.target.masking == TargetMasking::Input {
        let span = n.prop("masking").map(|e| e.span()).unwrap_or_else(|| cx.name_span(n.kdl));
        cx.poison(&n.path);
        cx.err(DslError::InvalidValue {
            what: "target masking".into(),
            message: "pixel targets have no target encoder to mask".into(),
            span,
            help: "write `target \"pixels\"` (the pixels of the target patches, paper Table 7) or \
                   `target \"representation\" masking=\"input\"` (Table 11)"
                .into(),
        });
    }
}
