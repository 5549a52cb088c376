//! Every setting a sweep can vary, by dotted path (`data.crop-size`, `mask.targets.scale`,
//! `optimizer.lr.peak`, `eval.linear.epochs`, ...), derived from the field tables, and how one
//! value of it is written as nodes.
//!
//! A sweep value is applied by building the nodes a person would write for it
//! (`mask "multi-block" { targets { scale 0.1 0.15 } }`) around the value entries exactly as
//! they were written (with their spans) and reading them through the same field tables as the
//! experiment, so one reader per setting does every type and range check, and errors point at
//! the value in the sweep.

use std::sync::OnceLock;

use kdl::{KdlDocument, KdlEntry, KdlNode, KdlValue};
use miette::SourceSpan;

use super::{data, dino, distributed, eval, experiment, mask, optimizer};
use crate::config::Experiment;
use crate::reader::{join, suggest, Field, Shape};

/// What a block node around a setting gets as its argument when the setting is written alone.
#[derive(Debug, Clone, Copy)]
enum Arg {
    /// No argument (`targets`, `distributed`).
    None,
    /// A fixed argument (`mask "multi-block"`, `optimizer "adamw"`, `eval "linear"`).
    Lit(&'static str),
    /// The current dataset (`data "fashion-mnist"`), so the data block keeps its source.
    Dataset,
    /// The current mask kind (`mask "multi-block"`, MAE's `mask "random"`), so a point keeps
    /// the experiment's kind and the other settings of its mask.
    MaskKind,
}

impl Arg {
    fn value(self, exp: &Experiment) -> Option<KdlValue> {
        match self {
            Arg::None => None,
            Arg::Lit(s) => Some(KdlValue::String(s.to_string())),
            Arg::Dataset => data::DATASETS
                .iter()
                .find(|(_, k)| *k == exp.data.dataset)
                .map(|(name, _)| KdlValue::String(name.to_string())),
            // the kind the point's recipe samples (in a sweep over recipes the recipe's value
            // is applied before its mask settles: MAE's `ratio` goes under its random mask)
            Arg::MaskKind => {
                let kind = crate::recipes::schema(&exp.recipe).and_then(|s| s.sampled_kind(exp.mask.kind)).unwrap_or(exp.mask.kind);
                Some(KdlValue::String(kind.name().to_string()))
            }
        }
    }
}

/// Where the value goes on the node that holds it.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// Its positional arguments (`crop-size 32`, `scale 0.1 0.15`, `encoder "vit-tiny"`).
    Args,
    /// One property (`lr peak=1e-3`).
    Prop(&'static str),
}

/// One setting a sweep can vary.
#[derive(Debug, Clone)]
pub(crate) struct Setting {
    /// Its dotted path.
    pub path: String,
    /// The nodes from the experiment block down to the one holding the value.
    chain: Vec<(&'static str, Arg)>,
    /// Where the value goes on the last node.
    slot: Slot,
    /// Shape of the last node.
    shape: Shape,
}

/// Settings with two paths: (the alias, the block's own path).
const ALIASES: [(&str, &str); 3] = [("data.dataset", "data"), ("encoder.preset", "encoder"), ("mask.kind", "mask")];

impl Setting {
    /// The path of what this setting writes: its own, or for an alias the block's
    /// (`encoder.preset` is `encoder`): two `vary` of one canonical path set one thing twice.
    pub fn canonical(&self) -> &str {
        ALIASES.iter().find(|(alias, _)| *alias == self.path).map_or(self.path.as_str(), |(_, of)| of)
    }

    /// Fewest and most entries one value of this setting has (`scale`: 2 and 2).
    pub fn arity(&self) -> (usize, usize) {
        match self.slot {
            Slot::Prop(_) => (1, 1),
            Slot::Args => (self.shape.required.max(1), self.shape.args.len()),
        }
    }

    /// The node's form (`scale 0.15 0.2`), for help texts; a property's, where the setting is
    /// one (`lr peak=V`: the whole `lr` node's form was given for `optimizer.lr.peak`).
    pub fn usage(&self) -> String {
        match (self.slot, self.chain.last()) {
            (Slot::Prop(p), Some((node, _))) => format!("{node} {p}=V"),
            _ => self.shape.usage.to_string(),
        }
    }

    /// The experiment-level node that writes `values` into this setting, e.g.
    /// `mask "multi-block" { targets { scale 0.1 0.15 } }`. The value entries keep their
    /// spans; the node holding them is named at `value_span`, the nodes around it at
    /// `path_span`; `exp` supplies the arguments of enclosing blocks.
    pub fn synthesize(
        &self,
        values: &[KdlEntry],
        exp: &Experiment,
        path_span: SourceSpan,
        value_span: SourceSpan,
    ) -> KdlNode {
        let mut inner: Option<KdlNode> = None;
        let last = self.chain.len().saturating_sub(1);
        for (i, (name, arg)) in self.chain.iter().enumerate().rev() {
            let mut node = KdlNode::new(*name);
            node.name_mut().set_span(if i == last { value_span } else { path_span });
            match self.slot {
                Slot::Args if i == last => node.entries_mut().extend(values.iter().cloned()),
                _ => {
                    if let Some(v) = arg.value(exp) {
                        let mut e = KdlEntry::new(v);
                        e.set_span(path_span);
                        node.entries_mut().push(e);
                    }
                }
            }
            if let (Slot::Prop(key), true) = (self.slot, i == last) {
                for v in values {
                    let mut e = KdlEntry::new_prop(key, v.value().clone());
                    e.set_span(v.span());
                    node.entries_mut().push(e);
                }
            }
            if let Some(child) = inner.take() {
                let mut doc = KdlDocument::new();
                doc.nodes_mut().push(child);
                node.set_children(doc);
            }
            inner = Some(node);
        }
        inner.unwrap_or_else(|| KdlNode::new("experiment"))
    }
}

/// Every setting, in schema order.
pub(crate) fn all() -> &'static [Setting] {
    static ALL: OnceLock<Vec<Setting>> = OnceLock::new();
    ALL.get_or_init(build)
}

/// The settings of registered recipes' own nodes ([`crate::recipes::SettingNode`]), one per
/// property, added as each recipe registers.
static RECIPES: std::sync::RwLock<Vec<&'static Setting>> = std::sync::RwLock::new(Vec::new());

fn recipe_settings() -> Vec<&'static Setting> {
    RECIPES.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Makes each property of a registered recipe's setting node a setting a sweep can vary
/// (`contrast.temperature`). Called once per node, when its recipe first registers (the
/// registry refuses a second, different recipe of the same name): the names are leaked, as
/// the schema's own are static.
pub(crate) fn register_node(node: &crate::recipes::SettingNode) {
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let name = leak(node.name.clone());
    let props: &'static [&'static str] = Box::leak(node.keys.iter().map(|k| leak(k.name.clone())).collect::<Vec<_>>().into_boxed_slice());
    let shape = Shape::props(props, leak(node.usage()));
    let mut all = RECIPES.write().unwrap_or_else(|e| e.into_inner());
    for key in props {
        let setting = Setting { path: join(name, key), chain: vec![(name, Arg::None)], slot: Slot::Prop(key), shape };
        all.push(Box::leak(Box::new(setting)));
    }
}

/// The shape of a registered recipe's setting node `name` (`contrast temperature=.. views=..`).
pub(crate) fn recipe_node_shape(name: &str) -> Option<Shape> {
    recipe_settings().into_iter().find(|s| s.chain.first().is_some_and(|(n, _)| *n == name)).map(|s| s.shape)
}

/// The setting at `path`.
pub(crate) fn find(path: &str) -> Option<&'static Setting> {
    all().iter().find(|s| s.path == path).or_else(|| recipe_settings().into_iter().find(|s| s.path == path))
}

/// Help for a path that names no setting: a close path, the settings of the block it starts
/// with, or the general form.
pub(crate) fn unknown_help(path: &str) -> String {
    let paths: Vec<&str> = all().iter().chain(recipe_settings()).map(|s| s.path.as_str()).collect();
    let quoted = |ps: &[&str]| ps.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ");
    let tail = format!(".{path}");
    let tails: Vec<&str> = paths.iter().copied().filter(|p| p.ends_with(&tail)).collect();
    if (1..=3).contains(&tails.len()) {
        return format!("did you mean {}? paths start at the experiment", quoted(&tails));
    }
    // a node whose values are its properties (`optimizer.lr`: `start`, `peak`, ...): its
    // settings, not the closest spelling (it was "did you mean `optimizer.eps`?")
    let inner = format!("{path}.");
    let children: Vec<&str> = paths.iter().copied().filter(|p| p.starts_with(&inner)).collect();
    if !children.is_empty() {
        let more = if children.len() > 12 { ", ..." } else { "" };
        return format!("`{path}` holds several settings: {}{more}", quoted(&children[..children.len().min(12)]));
    }
    if let Some(s) = suggest(path, &paths) {
        return format!("did you mean `{s}`?");
    }
    let head = path.split('.').next().unwrap_or_default();
    let under: Vec<&str> = paths
        .iter()
        .copied()
        .filter(|p| *p == head || p.strip_prefix(head).is_some_and(|r| r.starts_with('.')))
        .collect();
    if !under.is_empty() {
        let more = if under.len() > 12 { ", ..." } else { "" };
        return format!(
            "the settings under `{head}` are {}{more}",
            quoted(&under[..under.len().min(12)])
        );
    }
    "a path names a setting as it is written in the experiment, block by block: `seed`, \
     `data.crop-size`, `encoder.width`, `mask.targets.scale`, `optimizer.lr.peak`, \
     `eval.linear.epochs` (docs/language.md lists them all)"
        .into()
}

fn table<T>(fields: &[Field<T>]) -> Vec<(&'static str, Shape)> {
    fields.iter().map(|f| (f.name, f.shape)).collect()
}

fn push(
    out: &mut Vec<Setting>,
    path: String,
    chain: &[(&'static str, Arg)],
    slot: Slot,
    shape: Shape,
) {
    out.push(Setting { path, chain: chain.to_vec(), slot, shape });
}

/// A node without sub-blocks: its arguments (when it has any) and each property.
fn leaf(
    out: &mut Vec<Setting>,
    parent: &str,
    chain: &[(&'static str, Arg)],
    name: &'static str,
    shape: Shape,
) {
    let path = join(parent, name);
    let mut chain = chain.to_vec();
    chain.push((name, Arg::None));
    if !shape.args.is_empty() {
        push(out, path.clone(), &chain, Slot::Args, shape);
    }
    for p in shape.props {
        push(out, join(&path, p), &chain, Slot::Prop(p), shape);
    }
}

/// A block at `path` (whose own node is the last of `chain`): its arguments when `args` (a
/// dataset), its properties, and its child nodes.
fn block(
    out: &mut Vec<Setting>,
    path: &str,
    chain: &[(&'static str, Arg)],
    shape: Shape,
    args: bool,
    fields: &[(&'static str, Shape)],
) {
    if args && !shape.args.is_empty() {
        push(out, path.to_string(), chain, Slot::Args, shape);
    }
    for p in shape.props {
        push(out, join(path, p), chain, Slot::Prop(p), shape);
    }
    for (name, s) in fields {
        leaf(out, path, chain, name, *s);
    }
}

fn build() -> Vec<Setting> {
    let mut out = Vec::new();
    for f in experiment::FIELDS {
        if experiment::NOT_SETTINGS.contains(&f.name) {
            continue;
        }
        match f.name {
            "data" => block(
                &mut out,
                "data",
                &[("data", Arg::Dataset)],
                f.shape,
                true,
                &table(data::FIELDS),
            ),
            "mask" => {
                // the kind itself (`vary "mask" "multi-block" "rasterized"`): a point writes
                // `mask "KIND"`, which starts that kind from its defaults
                push(&mut out, "mask".into(), &[("mask", Arg::None)], Slot::Args, mask::SHAPE);
                let chain = [("mask", Arg::MaskKind)];
                // a random mask's own node (MAE's `ratio`)
                for g in mask::RANDOM_FIELDS {
                    leaf(&mut out, "mask", &chain, g.name, g.shape);
                }
                // a block mask's own nodes (Table 6's Block(0.6): `scale`, `aspect`; its
                // `corner` and `aspect-sampling` are the multi-block sampler's, below)
                for g in mask::BLOCK_FIELDS_SINGLE.iter().filter(|g| !mask::FIELDS.iter().any(|f| f.name == g.name)) {
                    leaf(&mut out, "mask", &chain, g.name, g.shape);
                }
                for g in mask::FIELDS {
                    if g.shape.children {
                        let mut sub = chain.to_vec();
                        sub.push((g.name, Arg::None));
                        let path = format!("mask.{}", g.name);
                        block(&mut out, &path, &sub, g.shape, false, &table(mask::BLOCK_FIELDS));
                    } else {
                        leaf(&mut out, "mask", &chain, g.name, g.shape);
                    }
                }
            }
            "optimizer" => block(
                &mut out,
                "optimizer",
                &[("optimizer", Arg::Lit(optimizer::OPTIMIZERS[0]))],
                f.shape,
                false,
                &table(optimizer::FIELDS),
            ),
            "dino" => block(&mut out, "dino", &[("dino", Arg::None)], f.shape, false, &table(dino::FIELDS)),
            "distributed" => block(
                &mut out,
                "distributed",
                &[("distributed", Arg::None)],
                f.shape,
                false,
                &table(distributed::FIELDS),
            ),
            _ => leaf(&mut out, "", &[], f.name, f.shape),
        }
    }
    for (protocol, _) in eval::PROTOCOLS {
        let path = format!("eval.{protocol}");
        block(
            &mut out,
            &path,
            &[("eval", Arg::Lit(protocol))],
            eval::SHAPE,
            false,
            &table(eval::FIELDS),
        );
    }
    // The first argument of a block also goes by the name its reader records it under.
    for (alias, of) in ALIASES {
        if let Some(s) = out.iter().find(|s| s.path == of).cloned() {
            out.push(Setting { path: alias.to_string(), ..s });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_cover_the_schema() {
        for p in [
            "seed",
            "epochs",
            "data",
            "data.dataset",
            "data.root",
            "data.crop-size",
            "data.crop-scale",
            "encoder",
            "encoder.preset",
            "encoder.patch",
            "encoder.width",
            "predictor.depth",
            "mask.targets.scale",
            "mask.targets.count",
            "mask.context.aspect",
            "mask.min-keep",
            "optimizer.lr.peak",
            "optimizer.weight-decay.schedule",
            "optimizer.betas",
            "ema.start",
            "checkpoint.keep-every",
            "distributed.nodes",
            "distributed.slurm.time",
            "eval.linear.epochs",
            "eval.low-shot.fraction",
            "eval.knn.k",
            "mask",
            "mask.kind",
            "mask.ratio",
            "dino.teacher-temp",
            "dino.local-crops",
            "dino.global-scale",
        ] {
            assert!(find(p).is_some(), "{p} should be a setting");
        }
        for p in ["optimizer", "eval", "eval.linear", "report", "extends", "sweep", "name"]
        {
            assert!(find(p).is_none(), "{p} should not be a setting");
        }
        let mut paths: Vec<&str> = all().iter().map(|s| s.path.as_str()).collect();
        let n = paths.len();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), n, "paths are unique");
    }

    #[test]
    fn arity() {
        assert_eq!(find("mask.targets.scale").map(Setting::arity), Some((2, 2)));
        assert_eq!(find("optimizer.lr.peak").map(Setting::arity), Some((1, 1)));
        assert_eq!(find("encoder").map(Setting::arity), Some((1, 1)));
        assert_eq!(find("eval.linear.lr").map(Setting::arity), Some((1, 8)));
    }

    #[test]
    fn unknown_path_help() {
        assert!(unknown_help("mask.target.scale").contains("`mask.targets.scale`"));
        assert!(unknown_help("targets.scale").contains("`mask.targets.scale`"));
        assert!(unknown_help("lr.peak").contains("`optimizer.lr.peak`"));
        assert!(unknown_help("data.nonsense-setting").contains("`data.crop-size`"));
        assert!(unknown_help("zzz").contains("docs/language.md"));
    }
}
