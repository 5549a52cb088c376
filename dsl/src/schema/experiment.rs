//! The `experiment "NAME" { ... }` block and its one-value settings (recipe, seed, loss,
//! epochs, ipe-scale, precision, device, log-every, checkpoint). An `extends "base.kdl"`
//! first in the block makes the base's resolved experiment the starting point.

use crate::config::{Experiment, LossKind, Precision};
use crate::diagnostics::DslError;
use crate::reader::{read_children, Bound, Ctx, Field, Node, Shape};

use super::{data, decoder, dino, distributed, ema, encoder, eval, mask, optimizer, predictor, target, TopLevel};

/// Nodes of the experiment block.
pub(crate) const FIELDS: &[Field<Experiment>] = &[
    Field {
        name: "recipe",
        shape: Shape::scalar(&["NAME"], "recipe \"ijepa\""),
        read: read_recipe,
    },
    Field { name: "seed", shape: Shape::scalar(&["SEED"], "seed 0"), read: read_seed },
    Field { name: "data", shape: data::SHAPE, read: data::read },
    Field { name: "encoder", shape: encoder::SHAPE, read: encoder::read },
    Field { name: "predictor", shape: predictor::SHAPE, read: predictor::read },
    Field { name: "decoder", shape: decoder::SHAPE, read: decoder::read },
    Field { name: "dino", shape: dino::SHAPE, read: dino::read },
    Field { name: "mask", shape: mask::SHAPE, read: mask::read },
    Field { name: "optimizer", shape: optimizer::SHAPE, read: optimizer::read },
    Field { name: "ema", shape: ema::SHAPE, read: ema::read },
    Field { name: "loss", shape: Shape::scalar(&["KIND"], "loss \"smooth-l1\""), read: read_loss },
    Field { name: "target", shape: target::SHAPE, read: target::read },
    Field { name: "epochs", shape: Shape::scalar(&["N"], "epochs 300"), read: read_epochs },
    Field {
        name: "ipe-scale",
        shape: Shape::scalar(&["X"], "ipe-scale 1.0"),
        read: read_ipe_scale,
    },
    Field {
        name: "precision",
        shape: Shape::scalar(&["KIND"], "precision \"auto\""),
        read: read_precision,
    },
    Field {
        name: "device",
        shape: Shape::scalar(&["DEVICE"], "device \"auto\""),
        read: read_device,
    },
    Field {
        name: "log-every",
        shape: Shape::scalar(&["STEPS"], "log-every 1"),
        read: read_log_every,
    },
    Field { name: "eval", shape: eval::SHAPE, read: eval::read },
    Field { name: "report", shape: eval::REPORT_SHAPE, read: eval::read_report },
    Field {
        name: "checkpoint",
        shape: Shape::props(
            &["every-steps", "keep-every"],
            "checkpoint every-steps=0 keep-every=50",
        ),
        read: read_checkpoint,
    },
    Field { name: "distributed", shape: distributed::SHAPE, read: distributed::read },
    Field {
        name: "monitor",
        shape: Shape::props(
            &["every", "images", "k", "rank-floor", "spread-floor"],
            "monitor every=1 images=2000 k=20 rank-floor=2 spread-floor=0.05",
        ),
        read: read_monitor,
    },
    // Read before the others when first (see `read`); anywhere else it is misplaced.
    Field { name: "extends", shape: crate::extends::SHAPE, read: misplaced_extends },
    Field {
        name: "sweep",
        shape: Shape { args: &["MODE"], required: 0, props: &[], children: true, usage: "sweep" },
        read: misplaced_sweep,
    },
];

/// Nodes of the experiment block that are not settings (a sweep cannot vary them).
pub(crate) const NOT_SETTINGS: &[&str] = &["extends", "sweep", "report", "eval"];

/// Reads `experiment "NAME" { ... }` into `top.experiment`: from the defaults, or from the
/// base experiment when the block starts with `extends`.
pub(crate) fn read(cx: &mut Ctx, n: &Node, top: &mut TopLevel) {
    let name = n.arg(0).and_then(|e| cx.value::<String>(e, "name"));
    let mut exp = Experiment::with_defaults("unnamed");
    let mut nodes = n.children();
    let mut base = None;
    if let Some((first, rest)) = nodes.split_first().filter(|(f, _)| f.name().value() == "extends")
    {
        let node = Node::check(cx, first, "extends".into(), &crate::extends::SHAPE);
        // Even when the base cannot be used, the rest is read as a layer on top of a base, so
        // its errors are the ones it would have with a working base.
        cx.layered = true;
        match crate::extends::resolve(cx, &node) {
            Some(b) => {
                exp = b.clone();
                base = Some(b);
            }
            None => cx.poison("extends"),
        }
        nodes = rest;
    }
    if let Some(name) = name {
        if let Err(message) = check_name(&name.value) {
            cx.err(DslError::InvalidValue {
                what: "experiment name".into(),
                message,
                span: name.span,
                help: "the name is a folder under runs/: use letters, digits, `-`, `_` and `.`, \
                       e.g. \"vitb16-in1k\""
                    .into(),
            });
        }
        exp.name = name.value;
    }
    // a registered recipe's own setting nodes are not in the field table
    let (own, shared): (Vec<_>, Vec<_>) = nodes.iter().cloned().partition(is_recipe_node);
    read_children(cx, &shared, "", "experiment", FIELDS, &mut exp);
    read_recipe_nodes(cx, &own, &mut exp);
    if let Some(base) = &base {
        base_of_another_recipe(cx, nodes, base, &exp);
    }
    recipe_rules(cx, nodes, &mut exp, base.as_ref());
    pixels_read_no_ema(cx, &exp);
    top.experiment = Some(exp);
}

/// Pixel targets have no target encoder: an `ema` written beside them (here or in a base) is
/// never read, yet it moved the pretraining's hash (the same model trained again under
/// another folder). A sweep that varies `target` reads it at its representation points.
fn pixels_read_no_ema(cx: &mut Ctx, exp: &Experiment) {
    let target_swept = cx.swept_paths.iter().any(|p| p == "target" || p.starts_with("target."));
    let ema_written = cx.written("ema.start") || cx.written("ema.final");
    if exp.target.kind != crate::config::TargetKind::Pixels || target_swept || !ema_written || !cx.ok(&["target", "ema"]) {
        return;
    }
    cx.err(DslError::InvalidValue {
        what: "ema".into(),
        message: "`target \"pixels\"` has no target encoder for an EMA to update: `ema` would be ignored".into(),
        span: cx.span_or(&["ema.start", "ema.final", "target"]),
        help: "remove `ema` (the pixels are the targets), or regress `target \"representation\"`".into(),
    });
}

/// A file that extends a base of another recipe and changes the recipe: what the base set for
/// its own recipe (`predictor`, `decoder`, `dino`, ... or a mask the new recipe does not
/// sample) would be dropped or replaced without a word; it is a diagnostic at `recipe`.
/// (A sweep over recipes keeps each recipe's settings: not checked there.)
fn base_of_another_recipe(cx: &mut Ctx, nodes: &[kdl::KdlNode], base: &Experiment, exp: &Experiment) {
    if base.recipe == exp.recipe || !cx.ok(&["recipe"]) || cx.swept_recipes.contains(&base.recipe) {
        return;
    }
    let (Some(old), Some(new)) = (crate::recipes::schema(&base.recipe), crate::recipes::schema(&exp.recipe)) else { return };
    let defaults = serde_json::to_value(Experiment::with_defaults("")).unwrap_or_default();
    let set = serde_json::to_value(base).unwrap_or_default();
    let mut dropped: Vec<String> = old
        .own_nodes
        .iter()
        .filter(|node| !new.own_nodes.contains(node))
        .filter(|node| set.get(node.as_str()).is_some_and(|v| defaults.get(node.as_str()) != Some(v)))
        .cloned()
        .collect();
    // a registered recipe's setting nodes the base wrote away from their defaults
    for node in old.settings.iter().filter(|n| !new.settings.iter().any(|m| m.name == n.name)) {
        let values = base.recipe_settings.get(&node.name);
        if node.keys.iter().any(|k| values.and_then(|v| v.get(&k.name)).is_some_and(|v| *v != k.default)) {
            dropped.push(node.name.clone());
        }
    }
    // a mask the base wrote (not its recipe's default; for a base of a recipe that samples
    // none, DINO, which may carry its own base's: not the language's default) that the new
    // recipe cannot sample, where this file writes none: it would become the new recipe's
    // default mask. Unless no recipe of this file samples a mask (DINO, not swept with one that
    // does): none reads the base's, and this file could not write one in its place
    let base_default = Some(match old.mask_kinds.first() {
        Some(k) => crate::config::MaskConfig::for_kind(*k, old.default_mask_ratio),
        None => Experiment::with_defaults("").mask,
    });
    let mask_written_here = nodes.iter().any(|k| k.name().value() == "mask");
    let samples = |r: &str| crate::recipes::schema(r).is_some_and(|s| !s.mask_kinds.is_empty());
    let a_reader = samples(&exp.recipe) || cx.swept_recipes.iter().any(|r| samples(r));
    if !mask_written_here && a_reader && !new.mask_kinds.contains(&base.mask.kind) && base_default.as_ref().is_some_and(|d| *d != base.mask) {
        dropped.push(format!("mask \"{}\"", base.mask.kind.name()));
    }
    if dropped.is_empty() {
        return;
    }
    cx.err(DslError::NotOfRecipe {
        node: format!("{} (from the base)", dropped.join(", ")),
        owner: format!("\"{}\"", base.recipe),
        recipe: exp.recipe.clone(),
        span: cx.span_or(&["recipe"]),
        help: format!(
            "the base configures {} for recipe \"{}\", which recipe \"{}\" does not read: extend a base of recipe \"{}\" (or one without them){}",
            dropped.iter().map(|d| format!("`{d}`")).collect::<Vec<_>>().join(", "),
            base.recipe,
            exp.recipe,
            exp.recipe,
            if dropped.iter().any(|d| d.starts_with("mask")) { ", or write this recipe's `mask` here" } else { "" }
        ),
    });
}

/// Whether `node` is a setting node a registered recipe declares
/// ([`crate::recipes::RecipeSchema::settings`]).
pub(crate) fn is_recipe_node(node: &kdl::KdlNode) -> bool {
    let name = node.name().value();
    !FIELDS.iter().any(|f| f.name == name) && crate::recipes::setting_node(name).is_some()
}

/// Reads registered recipes' setting nodes (`contrast temperature=0.2`) into
/// `exp.recipe_settings`: the node's shape (properties it declares, nothing else), each value
/// of its key's type and range, each node once. Whose node it is, and the defaults of what is
/// not written, are [`recipe_rules`]'.
pub(crate) fn read_recipe_nodes(cx: &mut Ctx, nodes: &[kdl::KdlNode], exp: &mut Experiment) {
    use crate::config::SettingValue;
    let mut seen: Vec<(&str, miette::SourceSpan)> = Vec::new();
    for kdl in nodes {
        let name = kdl.name().value();
        let (Some((_, decl)), Some(shape)) = (crate::recipes::setting_node(name), super::settings::recipe_node_shape(name)) else { continue };
        let span = cx.name_span(kdl);
        if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
            cx.err(DslError::DuplicateNode {
                name: name.to_string(),
                span,
                first: *first,
                help: format!("`{name}` may appear once in `experiment`; write its properties on one node"),
            });
            continue;
        }
        seen.push((name, span));
        let n = Node::check(cx, kdl, name.to_string(), &shape);
        for key in &decl.keys {
            let Some(entry) = n.prop(&key.name) else { continue };
            let path = n.sub(&key.name);
            let value = match &key.default {
                SettingValue::Float(_) => cx.value::<f64>(entry, &path).map(|v| (SettingValue::Float(v.value), v.span)),
                SettingValue::Int(_) => cx.value::<i64>(entry, &path).map(|v| (SettingValue::Int(v.value), v.span)),
                SettingValue::Bool(_) => cx.value::<bool>(entry, &path).map(|v| (SettingValue::Bool(v.value), v.span)),
                SettingValue::Str(_) => cx.value::<String>(entry, &path).map(|v| (SettingValue::Str(v.value), v.span)),
            };
            let Some((value, vspan)) = value else { continue };
            if let (SettingValue::Str(found), false) = (&value, key.choices.is_empty()) {
                if !key.choices.contains(found) {
                    let known: Vec<&str> = key.choices.iter().map(String::as_str).collect();
                    cx.poison(&path);
                    cx.err(DslError::UnknownValue { what: path.clone(), found: found.clone(), span: vspan, help: crate::reader::choices_help(found, &known) });
                    continue;
                }
            }
            if let Some(why) = key.refuse(&value) {
                cx.out_of_range(&path, vspan, &why, &format!("{path} {why}; found {value} (the default is {})", key.default));
                continue;
            }
            exp.recipe_settings.entry(name.to_string()).or_default().insert(key.name.clone(), value);
        }
    }
}

fn misplaced_extends(cx: &mut Ctx, n: &Node, _exp: &mut Experiment) {
    cx.err(DslError::Misplaced {
        node: "extends".into(),
        message: "must be the first node of the experiment, and written once".into(),
        span: cx.name_span(n.kdl),
        help: "move `extends \"FILE\"` to the top of the `experiment` block: the settings \
               after it apply on top of the base"
            .into(),
    });
}

fn misplaced_sweep(cx: &mut Ctx, n: &Node, _exp: &mut Experiment) {
    cx.err(DslError::Misplaced {
        node: "sweep".into(),
        message: "belongs at the top level of the file, after the experiment".into(),
        span: cx.name_span(n.kdl),
        help: "move the `sweep` block out of `experiment { ... }`: `experiment \"x\" { ... }` \
               then `sweep \"grid\" { vary ... }`"
            .into(),
    });
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.len() > 100 {
        return Err("it is longer than 100 bytes".into());
    }
    if name.starts_with('.') {
        return Err("it starts with `.`".into());
    }
    match name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
        Some(c) => Err(format!("it contains {c:?}")),
        None => Ok(()),
    }
}

fn read_recipe(cx: &mut Ctx, n: &Node, exp: &mut Experiment) {
    let names = crate::recipes::names();
    let choices: Vec<(&str, &str)> = names.iter().map(|r| (r.as_str(), r.as_str())).collect();
    if let Some(r) = n.arg(0).and_then(|e| cx.keyword(e, &n.path, "recipe", &choices)) {
        exp.recipe = r.to_string();
    }
}

/// The rules a recipe puts on the nodes written in this experiment block: a node another
/// recipe owns is a diagnostic naming both; a `mask` kind the recipe does not sample (or any
/// `mask` for a recipe without one) too. Without a `mask` node, the mask is the recipe's
/// default kind.
fn recipe_rules(cx: &mut Ctx, nodes: &[kdl::KdlNode], exp: &mut Experiment, base: Option<&Experiment>) {
    if !cx.ok(&["recipe"]) {
        return;
    }
    let Some(schema) = crate::recipes::schema(&exp.recipe) else { return };
    // in a sweep over recipes, the block holds the settings of each swept recipe
    let mut allowed = vec![schema.name.clone()];
    allowed.extend(cx.swept_recipes.iter().cloned());
    let swept_kinds: Vec<crate::config::MaskKind> =
        allowed.iter().filter_map(|r| crate::recipes::schema(r)).flat_map(|s| s.mask_kinds).collect();
    for kdl in nodes {
        let name = kdl.name().value();
        let owners = crate::recipes::owners(name);
        if owners.is_empty() || owners.iter().any(|o| allowed.contains(o)) {
            continue;
        }
        cx.poison(name);
        cx.err(DslError::NotOfRecipe {
            node: name.to_string(),
            owner: owners.iter().map(|o| format!("\"{o}\"")).collect::<Vec<_>>().join(" / "),
            recipe: schema.name.clone(),
            span: cx.name_span(kdl),
            help: format!(
                "`{name}` configures recipe {}; remove it, or write `recipe \"{}\"`{}",
                owners.iter().map(|o| format!("\"{o}\"")).collect::<Vec<_>>().join(" / "),
                owners[0],
                {
                    let own = schema.nodes();
                    if own.is_empty() {
                        String::new()
                    } else {
                        format!(" (recipe \"{}\" has {})", schema.name, own.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "))
                    }
                }
            ),
        });
    }
    // in a sweep over recipes every point trains one of the swept recipes: a setting (or a
    // mask kind) only the block's own recipe reads, which the sweep leaves out, is read by no
    // point (it was dropped without a word)
    if !cx.swept_recipes.is_empty() && !cx.swept_recipes.contains(&schema.name) {
        let swept = cx.swept_recipes.clone();
        let swept_text = swept.iter().map(|r| format!("\"{r}\"")).collect::<Vec<_>>().join(", ");
        let sampled: Vec<crate::config::MaskKind> = swept.iter().filter_map(|r| crate::recipes::schema(r)).flat_map(|s| s.mask_kinds).collect();
        for kdl in nodes {
            let name = kdl.name().value();
            let owners = if name == "mask" {
                if sampled.contains(&exp.mask.kind) || !cx.ok(&["mask"]) {
                    continue;
                }
                crate::recipes::samplers(exp.mask.kind)
            } else {
                crate::recipes::owners(name)
            };
            if owners.is_empty() || owners.iter().any(|o| swept.contains(o)) || !cx.ok(&[name]) {
                continue;
            }
            let node = if name == "mask" { format!("mask \"{}\"", exp.mask.kind.name()) } else { name.to_string() };
            cx.poison(name);
            cx.err(DslError::NotOfRecipe {
                owner: owners.iter().map(|o| format!("\"{o}\"")).collect::<Vec<_>>().join(" / "),
                recipe: swept.join("\" / \""),
                span: cx.name_span(kdl),
                help: format!(
                    "every point of this sweep trains one of the recipes it varies ({swept_text}), none of which reads `{node}`: remove it, or add \"{}\" to `vary \"recipe\"`",
                    owners[0]
                ),
                node,
            });
        }
    }
    match base {
        // a base of this recipe has its defaults already, and what it wrote stays
        Some(b) if b.recipe == exp.recipe => {}
        // the recipe's defaults for what neither this file nor its bases wrote (a base of
        // another recipe brought that recipe's defaults); what they wrote is kept, the
        // language's default value included
        _ => crate::recipes::recipe_defaults(exp, &schema, &|path| cx.written(path)),
    }
    crate::recipes::settings_defaults(exp, &schema, &allowed);
    crate::recipes::mask_ratio_default(exp, &schema, &|path| cx.written(path));
    let written = nodes.iter().find(|k| k.name().value() == "mask");
    match written {
        // (one a base wrote is kept where this recipe samples it)
        None => crate::recipes::mask_default(exp, &schema, &|path| cx.written(path)),
        Some(kdl) if cx.ok(&["mask"]) && !swept_kinds.contains(&exp.mask.kind) => {
            let kinds: Vec<String> = schema.mask_kinds.iter().map(|k| format!("\"{}\"", k.name())).collect();
            cx.poison("mask");
            cx.err(DslError::NotOfRecipe {
                node: format!("mask \"{}\"", exp.mask.kind.name()),
                owner: crate::recipes::samplers(exp.mask.kind).iter().map(|o| format!("\"{o}\"")).collect::<Vec<_>>().join(" / "),
                recipe: schema.name.clone(),
                span: cx.name_span(kdl),
                help: match kinds.is_empty() {
                    true => format!("recipe \"{}\" samples no mask: remove the `mask` node", schema.name),
                    false => format!("recipe \"{}\" samples mask {}", schema.name, kinds.join(" or ")),
                },
            });
        }
        _ => {}
    }
}

fn read_seed(cx: &mut Ctx, n: &Node, exp: &mut Experiment) {
    if let Some(v) = n.arg(0).and_then(|e| cx.value::<u64>(e, &n.path)) {
        exp.seed = v.value;
    }
}

fn read_loss(cx: &mut Ctx, n: &Node, exp: &mut Experiment) {
    const LOSSES: &[(&str, LossKind)] = &[("smooth-l1", LossKind::SmoothL1), ("l2", LossKind::L2)];
    if let Some(v) = n.arg(0).and_then(|e| cx.keyword(e, &n.path, "loss", LOSSES)) {
        exp.loss = v;
    }
}

fn read_epochs(cx: &mut Ctx, n: &Node, exp: &mut Experiment) {
    if let Some(v) = n.arg(0).and_then(|e| cx.usize_in(e, &n.path, 1, 100_000, "the official runs take 66-300; step counts stay far from overflow")) {
        exp.epochs = v;
    }
}

fn read_ipe_scale(cx: &mut Ctx, n: &Node, exp: &mut Experiment) {
    if let Some(v) = n.arg(0).and_then(|e| cx.f64_in(e, &n.path, Bound::Positive)) {
        exp.ipe_scale = v;
    }
}

fn read_precision(cx: &mut Ctx, n: &Node, exp: &mut Experiment) {
    const KINDS: &[(&str, Precision)] = &[("auto", Precision::Auto), ("bf16", Precision::Bf16), ("fp32", Precision::Fp32)];
    if let Some(v) = n.arg(0).and_then(|e| cx.keyword(e, &n.path, "precision", KINDS)) {
        exp.precision = v;
    }
}

fn read_device(cx: &mut Ctx, n: &Node, exp: &mut Experiment) {
    let Some(v) = n.arg(0).and_then(|e| cx.value::<String>(e, &n.path)) else { return };
    let ok = match v.value.as_str() {
        "auto" | "cpu" | "cuda" => true,
        other => other.strip_prefix("cuda:").is_some_and(|i| {
            !i.is_empty() && i.len() <= 4 && i.bytes().all(|b| b.is_ascii_digit())
        }),
    };
    if ok {
        exp.device = v.value;
    } else {
        cx.poison(&n.path);
        cx.err(DslError::InvalidValue {
            what: "device".into(),
            message: format!("{:?} is not a device", v.value),
            span: v.span,
            help: "write \"auto\" (CUDA when present), \"cpu\", \"cuda\" or \"cuda:N\"".into(),
        });
    }
}

fn read_log_every(cx: &mut Ctx, n: &Node, exp: &mut Experiment) {
    if let Some(v) = n.arg(0).and_then(|e| cx.usize_min(e, &n.path, 1)) {
        exp.log_every = v;
    }
}

/// The fewest images a monitor holds out (its leave-one-out kNN votes among them).
pub const MIN_MONITOR_IMAGES: usize = 20;

/// The fewest images a monitor voting among `k` neighbours can hold out: [`MIN_MONITOR_IMAGES`],
/// and more than `k` (what `check`'s and the run's advice on a small training split count).
pub fn fewest_monitor_images(k: usize) -> usize {
    // (saturating: k = 2^64-1 wrapped to a least of 20, and the run failed in libtorch)
    MIN_MONITOR_IMAGES.max(k.saturating_add(1))
}

fn read_monitor(cx: &mut Ctx, n: &Node, exp: &mut Experiment) {
    let m = exp.monitor.get_or_insert_with(Default::default);
    if let Some(v) = n.prop("every").and_then(|e| cx.usize_min(e, &n.sub("every"), 1)) {
        m.every = v;
    }
    if let Some(v) = n.prop("k").and_then(|e| cx.usize_min(e, &n.sub("k"), 1)) {
        m.k = v;
    }
    // leave-one-out kNN needs at least 20 images and more than k: checked on the experiment as
    // a whole, with the k it ends with (`validate`: a sweep's point sets images= and k= one
    // after the other, and `images=16` was told ">= 20", then at 20 that 20 neighbours need
    // more; `images=0` was told ">= 1", then at 1 ">= 21")
    if let Some(v) = n.prop("images").and_then(|e| cx.usize_min(e, &n.sub("images"), 0)) {
        m.images = v;
    }
    if let Some(v) = n.prop("rank-floor").and_then(|e| cx.f64_in(e, &n.sub("rank-floor"), Bound::NonNegative)) {
        m.rank_floor = v;
    }
    // (the spread is at most 1: that of isotropic features)
    if let Some(v) = n.prop("spread-floor").and_then(|e| cx.f64_in(e, &n.sub("spread-floor"), Bound::UnitClosedOpen)) {
        m.spread_floor = v;
    }
}

fn read_checkpoint(cx: &mut Ctx, n: &Node, exp: &mut Experiment) {
    if let Some(v) = n.prop("every-steps").and_then(|e| cx.usize_min(e, &n.sub("every-steps"), 0)) {
        exp.checkpoint.every_steps = v;
    }
    if let Some(v) = n.prop("keep-every").and_then(|e| cx.usize_min(e, &n.sub("keep-every"), 0)) {
        exp.checkpoint.keep_every = v;
    }
}
