//! The `ema start=0.996 final=1.0` node: target-encoder momentum, linear over the run
//! (official `ema` pair, paper §3 "the target encoder ... exponential moving average").

use crate::config::Experiment;
use crate::reader::{Bound, Ctx, Node, Shape};

/// Shape of the `ema` node.
pub(crate) const SHAPE: Shape = Shape::props(&["start", "final"], "ema start=0.996 final=1.0");

/// Reads the ema node into `exp.ema`.
pub(crate) fn read(cx: &mut Ctx, n: &Node, exp: &mut Experiment) {
    if let Some(v) = n.prop("start").and_then(|e| cx.f64_in(e, &n.sub("start"), Bound::Unit)) {
        exp.ema.start = v;
    }
    if let Some(v) = n.prop("final").and_then(|e| cx.f64_in(e, &n.sub("final"), Bound::Unit)) {
        exp.ema.final_ = v;
    }
}
