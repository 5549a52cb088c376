//! The schema of the language: which nodes exist where, their shapes, and how each is read
//! into [`crate::config::Experiment`]. One file per block; each block is a table of
//! [`Field`]s, so a new node is one row plus one reader function.
//!
//! ```text
//! file        := experiment "NAME" { ... }            (exactly one)
//!                sweep "grid"|"zip" { vary ...; seeds ... }   (at most one)
//! experiment  := [extends "FILE"] then recipe seed data encoder predictor mask optimizer
//!                ema loss epochs ipe-scale precision device log-every checkpoint
//!                distributed report (each at most once, any order), eval (once per protocol)
//! ```

pub(crate) mod data;
mod decoder;
mod dino;
pub(crate) mod distributed;
mod ema;
mod encoder;
mod eval;
mod experiment;
pub(crate) mod mask;
mod optimizer;
mod predictor;
pub(crate) mod settings;
mod sweep;
mod target;

use kdl::{KdlDocument, KdlNode};

pub use experiment::{fewest_monitor_images, MIN_MONITOR_IMAGES};
pub use encoder::DEFAULT_PATCH;
pub use mask::{MASK_KINDS, MAX_BLOCKS};
pub use optimizer::OPTIMIZERS;
pub(crate) use sweep::{unhashed, SweepSpec, Vary};

use crate::config::Experiment;
use crate::diagnostics::DslError;
use crate::reader::{read_children, Ctx, Field, Shape};

/// What the top level of a file holds.
#[derive(Default)]
pub(crate) struct TopLevel {
    /// The experiment, once read.
    pub experiment: Option<Experiment>,
    /// The sweep, when the file has one.
    pub sweep: Option<SweepSpec>,
}

/// Nodes of the top level.
const TOP: &[Field<TopLevel>] = &[
    Field {
        name: "experiment",
        shape: Shape {
            args: &["NAME"],
            required: 1,
            props: &[],
            children: true,
            usage: "experiment \"NAME\" { ... }",
        },
        read: experiment::read,
    },
    Field { name: "sweep", shape: sweep::SHAPE, read: sweep::read },
];

/// Nodes that later versions of the language will add: (name, block, what to say). None at
/// the moment; a name listed here gets an `unsupported` diagnostic instead of `unknown_node`.
pub(crate) const PLANNED: &[(&str, &str, &str)] = &[];

/// Every (node name, block it belongs in), for "`crop-size` belongs inside `data`" hints.
pub(crate) fn locations() -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    let mut add = |names: Vec<&'static str>, home: &'static str| {
        out.extend(names.into_iter().map(|n| (n, home)));
    };
    // (`sweep` is read inside `experiment` only to say it belongs at the top level)
    add(experiment::FIELDS.iter().map(|f| f.name).filter(|n| *n != "sweep").collect(), "experiment");
    add(vec!["sweep"], "");
    add(data::FIELDS.iter().map(|f| f.name).collect(), "data");
    add(mask::FIELDS.iter().map(|f| f.name).collect(), "mask");
    add(mask::RANDOM_FIELDS.iter().map(|f| f.name).collect(), "mask");
    add(dino::FIELDS.iter().map(|f| f.name).collect(), "dino");
    add(mask::BLOCK_FIELDS.iter().map(|f| f.name).collect(), "mask.targets");
    add(optimizer::FIELDS.iter().map(|f| f.name).collect(), "optimizer");
    add(eval::FIELDS.iter().map(|f| f.name).collect(), "eval");
    add(distributed::FIELDS.iter().map(|f| f.name).collect(), "distributed");
    add(sweep::FIELDS.iter().map(|f| f.name).collect(), "sweep");
    out
}

/// Whether `name` is a node every experiment has (not a recipe's own setting): what a
/// registered recipe may not claim.
pub(crate) fn shared_node(name: &str) -> bool {
    const BUILTIN_OWNED: &[&str] = &["predictor", "ema", "loss", "target", "decoder", "dino"];
    experiment::FIELDS.iter().any(|f| f.name == name) && !BUILTIN_OWNED.contains(&name)
}

/// Whether the experiment block has a node `name` of its own (shared, or a built-in
/// recipe's): what a registered recipe's setting node may not be called.
pub(crate) fn experiment_node(name: &str) -> bool {
    experiment::FIELDS.iter().any(|f| f.name == name)
}

/// Reads one node written at the experiment level (a sweep point's setting) into `exp`.
pub(crate) fn read_experiment_node(cx: &mut Ctx, node: &KdlNode, exp: &mut Experiment) {
    let nodes = std::slice::from_ref(node);
    if experiment::is_recipe_node(node) {
        experiment::read_recipe_nodes(cx, nodes, exp);
    } else {
        read_children(cx, nodes, "", "experiment", experiment::FIELDS, exp);
    }
}

/// Reads a whole document: exactly one `experiment` node, at most one `sweep`.
pub(crate) fn read_document(cx: &mut Ctx, doc: &KdlDocument) -> TopLevel {
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
    top
}
