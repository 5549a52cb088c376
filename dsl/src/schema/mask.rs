//! The `mask "KIND" { ... }` block: I-JEPA's official multi-block sampler
//! (`src/masks/multiblock.py` `MaskCollator`; paper §3 "Targets", "Context"), the per-image
//! random patches of MAE (`mask "random" { ratio 0.75 }`, official `random_masking`) and of
//! I-JEPA's Table 6 ablation (ratio 0.6), and the other Table 6 strategies of I-JEPA:
//! `mask "rasterized"` (quadrants; no settings) and `mask "block" { scale 0.6 0.6 }` (one
//! target block, the context its complement).

use crate::config::{AspectSampling, CornerSampler, Experiment, MaskConfig, MaskKind};
use crate::diagnostics::DslError;
use crate::reader::{read_children, Bound, Ctx, Field, Node, Shape};

/// Mask kinds this version implements (which recipe samples which: `crate::recipes`).
pub const MASK_KINDS: &[&str] = &["multi-block", "random", "rasterized", "block"];

/// Nodes of a `mask "rasterized"` block: none (the quadrants follow from the grid).
pub(crate) const RASTERIZED_FIELDS: &[Field<MaskConfig>] = &[];

/// Nodes of a `mask "block"` block: the one target block's scale and aspect ranges (drawn
/// once per batch, as the multi-block sampler draws its sizes) and the corner / aspect
/// samplers of the multi-block sampler.
pub(crate) const BLOCK_FIELDS_SINGLE: &[Field<MaskConfig>] = &[
    Field { name: "scale", shape: Shape::pair(&["LOW", "HIGH"], "scale 0.6 0.6"), read: single_scale },
    Field { name: "aspect", shape: Shape::pair(&["LOW", "HIGH"], "aspect 0.75 1.5"), read: single_aspect },
    Field { name: "corner", shape: Shape::scalar(&["KIND"], "corner \"official\""), read: corner },
    Field {
        name: "aspect-sampling",
        shape: Shape::scalar(&["KIND"], "aspect-sampling \"shared\""),
        read: aspect_sampling,
    },
];

fn single_scale(cx: &mut Ctx, n: &Node, m: &mut MaskConfig) {
    if let Some(v) = cx.range(n, Bound::UnitOpenClosed) {
        m.target_scale = v;
    }
}

fn single_aspect(cx: &mut Ctx, n: &Node, m: &mut MaskConfig) {
    if let Some(v) = cx.range(n, Bound::Positive) {
        m.target_aspect = v;
    }
}

/// Nodes of a `mask "random"` block.
pub(crate) const RANDOM_FIELDS: &[Field<MaskConfig>] =
    &[Field { name: "ratio", shape: Shape::scalar(&["FRACTION"], "ratio 0.75"), read: ratio }];

fn ratio(cx: &mut Ctx, n: &Node, m: &mut MaskConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.value::<f64>(e, &n.path)) {
        if v.value > 0.0 && v.value < 1.0 {
            m.ratio = v.value;
        } else {
            cx.out_of_range(&n.path, v.span, "must be above 0 and below 1", "the fraction of each image's patches that is masked: MAE's targets (official 0.75), or I-JEPA's one target (the paper's Random(0.6))");
        }
    }
}

/// Shape of the `mask` node.
pub(crate) const SHAPE: Shape = Shape {
    args: &["KIND"],
    required: 1,
    props: &[],
    children: true,
    usage: "mask \"multi-block\" { targets count=4 { ... }; context count=1 { ... }; min-keep 10 }",
};

/// Nodes of the mask block.
pub(crate) const FIELDS: &[Field<MaskConfig>] = &[
    Field {
        name: "targets",
        shape: block_shape("targets count=4 { scale 0.15 0.2; aspect 0.75 1.5 }"),
        read: targets,
    },
    Field {
        name: "context",
        shape: block_shape("context count=1 { scale 0.85 1.0; aspect 1.0 1.0 }"),
        read: context,
    },
    Field { name: "min-keep", shape: Shape::scalar(&["PATCHES"], "min-keep 10"), read: min_keep },
    Field {
        name: "allow-overlap",
        shape: Shape::scalar(&["BOOL"], "allow-overlap #false"),
        read: allow_overlap,
    },
    Field { name: "corner", shape: Shape::scalar(&["KIND"], "corner \"official\""), read: corner },
    Field {
        name: "aspect-sampling",
        shape: Shape::scalar(&["KIND"], "aspect-sampling \"shared\""),
        read: aspect_sampling,
    },
];

const fn block_shape(usage: &'static str) -> Shape {
    Shape { args: &[], required: 0, props: &["count"], children: true, usage }
}

/// One kind of block (targets or context) while it is read.
pub(crate) struct Block {
    count: usize,
    scale: (f64, f64),
    aspect: (f64, f64),
}

/// Nodes of a `targets` / `context` block.
pub(crate) const BLOCK_FIELDS: &[Field<Block>] = &[
    Field { name: "scale", shape: Shape::pair(&["LOW", "HIGH"], "scale 0.15 0.2"), read: scale },
    Field { name: "aspect", shape: Shape::pair(&["LOW", "HIGH"], "aspect 0.75 1.5"), read: aspect },
];

/// Reads the mask block into `exp.mask`.
pub(crate) fn read(cx: &mut Ctx, n: &Node, exp: &mut Experiment) {
    let mut kind = exp.mask.kind;
    if let Some(k) = n.arg(0).and_then(|e| cx.value::<String>(e, &n.sub("kind"))) {
        match k.value.as_str() {
            "multi-block" => kind = MaskKind::MultiBlock,
            "random" => kind = MaskKind::Random,
            "rasterized" => kind = MaskKind::Rasterized,
            "block" => kind = MaskKind::Block,
            _ => {
                cx.poison(&n.path);
                let kinds = "the kinds are \"multi-block\" (I-JEPA), \"random\" (MAE; I-JEPA's Table 6 ablation), \"rasterized\" and \"block\" (I-JEPA's Table 6 ablations)";
                // a misspelt kind is unknown, not "not supported yet" (`multiblock`), and the
                // kinds were listed twice
                match crate::reader::suggest(&k.value, MASK_KINDS) {
                    Some(meant) => {
                        // (another recipe's kind is said to be: MAE's `multiblock` was advised
                        // `multi-block`, which MAE refused next)
                        let theirs = crate::recipes::schema(&exp.recipe)
                            .filter(|r| !r.mask_kinds.is_empty() && !r.mask_kinds.iter().any(|k| k.name() == meant))
                            .map(|r| format!(" (recipe \"{}\" samples {})", exp.recipe, r.mask_kinds.iter().map(|k| format!("`{}`", k.name())).collect::<Vec<_>>().join(", ")))
                            .unwrap_or_default();
                        cx.err(DslError::UnknownValue {
                            what: "mask kind".into(),
                            found: k.value.clone(),
                            span: k.span,
                            help: format!("did you mean `{meant}`? {kinds}{theirs}"),
                        })
                    }
                    None => cx.err(DslError::Unsupported { what: format!("mask kind `{}`", k.value), span: k.span, help: kinds.to_string() }),
                }
            }
        }
    }
    if kind != exp.mask.kind {
        // another kind than the base's: its settings start from the defaults (a random
        // mask's ratio is the recipe's named so far: I-JEPA 0.6, MAE 0.75)
        let ratio = crate::recipes::schema(&exp.recipe).and_then(|s| s.default_mask_ratio);
        exp.mask = MaskConfig::for_kind(kind, ratio);
    }
    read_children(cx, n.children(), &n.path, "mask", fields_of(kind), &mut exp.mask);
}

fn fields_of(kind: MaskKind) -> &'static [Field<MaskConfig>] {
    match kind {
        MaskKind::MultiBlock => FIELDS,
        MaskKind::Random => RANDOM_FIELDS,
        MaskKind::Rasterized => RASTERIZED_FIELDS,
        MaskKind::Block => BLOCK_FIELDS_SINGLE,
    }
}

/// Whether a mask of `kind` has the setting `child` (`targets` of a multi-block mask, not of
/// MAE's random one).
pub(crate) fn accepts(kind: MaskKind, child: &str) -> bool {
    fields_of(kind).iter().any(|f| f.name == child)
}

/// The most blocks of one kind per image (the official configs use 4 targets and 1 context;
/// the sampler's cost grows with the square of the count).
pub const MAX_BLOCKS: usize = 100;

fn read_block(cx: &mut Ctx, n: &Node, block: &mut Block) {
    if let Some(v) = n.prop("count").and_then(|e| cx.usize_in(e, &n.sub("count"), 1, MAX_BLOCKS, "blocks per image; the official configs use 4 targets, 1 context")) {
        block.count = v;
    }
    read_children(cx, n.children(), &n.path, &n.path, BLOCK_FIELDS, block);
}

fn targets(cx: &mut Ctx, n: &Node, m: &mut MaskConfig) {
    let mut b = Block { count: m.n_targets, scale: m.target_scale, aspect: m.target_aspect };
    read_block(cx, n, &mut b);
    (m.n_targets, m.target_scale, m.target_aspect) = (b.count, b.scale, b.aspect);
}

fn context(cx: &mut Ctx, n: &Node, m: &mut MaskConfig) {
    let mut b = Block { count: m.n_context, scale: m.context_scale, aspect: m.context_aspect };
    read_block(cx, n, &mut b);
    (m.n_context, m.context_scale, m.context_aspect) = (b.count, b.scale, b.aspect);
}

fn scale(cx: &mut Ctx, n: &Node, b: &mut Block) {
    if let Some(v) = cx.range(n, Bound::UnitOpenClosed) {
        b.scale = v;
    }
}

fn aspect(cx: &mut Ctx, n: &Node, b: &mut Block) {
    if let Some(v) = cx.range(n, Bound::Positive) {
        b.aspect = v;
    }
}

fn min_keep(cx: &mut Ctx, n: &Node, m: &mut MaskConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.usize_min(e, &n.path, 0)) {
        m.min_keep = v;
    }
}

fn allow_overlap(cx: &mut Ctx, n: &Node, m: &mut MaskConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.value::<bool>(e, &n.path)) {
        m.allow_overlap = v.value;
    }
}

fn corner(cx: &mut Ctx, n: &Node, m: &mut MaskConfig) {
    const KINDS: &[(&str, CornerSampler)] =
        &[("official", CornerSampler::Official), ("unbiased", CornerSampler::Unbiased)];
    if let Some(v) = n.arg(0).and_then(|e| cx.keyword(e, &n.path, "corner sampler", KINDS)) {
        m.corner = v;
    }
}

fn aspect_sampling(cx: &mut Ctx, n: &Node, m: &mut MaskConfig) {
    const KINDS: &[(&str, AspectSampling)] =
        &[("shared", AspectSampling::Shared), ("independent", AspectSampling::Independent)];
    if let Some(v) = n.arg(0).and_then(|e| cx.keyword(e, &n.path, "aspect sampling", KINDS)) {
        m.aspect_sampling = v;
    }
}
