//! The schema of the language: which nodes exist where, their shapes, and how each is read
//! into [`crate::config::Experiment`]. One file per block; each block is a table of
//! [`Field`]s, so a new node is one row plus one reader function.
//!
//! ```text
//! file        := experiment "NAME" { ... }            (exactly one)
//! experiment  := recipe seed data encoder predictor mask optimizer ema loss epochs
//!                ipe-scale precision device log-every  (each at most once, any order)
//! ```

mod data;
mod ema;
mod encoder;
mod eval;
mod experiment;
mod mask;
mod optimizer;
mod predictor;

use kdl::KdlDocument;

pub use encoder::DEFAULT_PATCH;
pub use experiment::KNOWN_RECIPES;
pub use mask::MASK_KINDS;
pub use optimizer::OPTIMIZERS;

use crate::config::Experiment;
use crate::diagnostics::DslError;
use crate::reader::{read_children, Ctx, Field, Shape};

/// What the top level of a file holds.
#[derive(Default)]
pub(crate) struct TopLevel {
    /// The experiment, once read.
    pub experiment: Option<Experiment>,
}

/// Nodes of the top level.
const TOP: &[Field<TopLevel>] = &[Field {
    name: "experiment",
    shape: Shape {
        args: &["NAME"],
        required: 1,
        props: &[],
        children: true,
        usage: "experiment \"NAME\" { ... }",
    },
    read: experiment::read,
}];

/// Nodes that later versions of the language will add: (name, block, what to say).
pub(crate) const PLANNED: &[(&str, &str, &str)] = &[
    ("sweep", "", "sweeps are planned; for now write one experiment per file"),
    ("extends", "experiment", "`extends` is planned; for now copy the base experiment"),
    ("distributed", "experiment", "multi-GPU/multi-node settings are planned; runs use one device"),
];

/// Every (node name, block it belongs in), for "`crop-size` belongs inside `data`" hints.
pub(crate) fn locations() -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    let mut add = |names: Vec<&'static str>, home: &'static str| {
        out.extend(names.into_iter().map(|n| (n, home)));
    };
    add(experiment::FIELDS.iter().map(|f| f.name).collect(), "experiment");
    add(data::FIELDS.iter().map(|f| f.name).collect(), "data");
    add(mask::FIELDS.iter().map(|f| f.name).collect(), "mask");
    add(mask::BLOCK_FIELDS.iter().map(|f| f.name).collect(), "mask.targets");
    add(optimizer::FIELDS.iter().map(|f| f.name).collect(), "optimizer");
    add(eval::FIELDS.iter().map(|f| f.name).collect(), "eval");
    out
}

/// Reads a whole document: exactly one `experiment` node.
pub(crate) fn read_document(cx: &mut Ctx, doc: &KdlDocument) -> Option<Experiment> {
    let mut top = TopLevel::default();
    read_children(cx, doc.nodes(), "", "", TOP, &mut top);
    if top.experiment.is_none() && !doc.nodes().iter().any(|n| n.name().value() == "experiment") {
        let span = doc.nodes().first().map(|n| cx.name_span(n)).unwrap_or_else(|| (0..0).into());
        cx.err(DslError::MissingExperiment {
            span,
            help: "a file holds one `experiment \"NAME\" { ... }` node; see docs/language.md"
                .into(),
        });
    }
    top.experiment
}
