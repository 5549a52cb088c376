//! The `data "DATASET" root="/path" { ... }` block: dataset, crops and loader
//! (official `data` section: `crop_size`, `crop_scale`, `batch_size`, `num_workers`).

use crate::config::{DataConfig, DataSource, DatasetKind, Experiment, Interpolation, OnError};
use crate::diagnostics::DslError;
use crate::reader::{read_children, Bound, Ctx, Field, Node, Shape};

/// Shape of the `data` node.
pub(crate) const SHAPE: Shape = Shape {
    args: &["DATASET"],
    required: 1,
    props: &["root"],
    children: true,
    usage: "data \"fashion-mnist\" root=\"/path\" { crop-size 224; batch-size 128; ... }",
};

/// Dataset names.
pub(crate) const DATASETS: &[(&str, DatasetKind)] = &[
    ("fashion-mnist", DatasetKind::FashionMnist),
    ("mnist", DatasetKind::Mnist),
    ("image-folder", DatasetKind::ImageFolder),
    ("cifar10", DatasetKind::Cifar10),
    ("cifar100", DatasetKind::Cifar100),
];

/// Nodes of the data block.
pub(crate) const FIELDS: &[Field<DataConfig>] = &[
    Field {
        name: "crop-size",
        shape: Shape::scalar(&["PIXELS"], "crop-size 224"),
        read: crop_size,
    },
    Field {
        name: "crop-scale",
        shape: Shape::pair(&["LOW", "HIGH"], "crop-scale 0.3 1.0"),
        read: crop_scale,
    },
    Field { name: "batch-size", shape: Shape::scalar(&["N"], "batch-size 128"), read: batch_size },
    Field { name: "workers", shape: Shape::scalar(&["N"], "workers 10"), read: workers },
    Field { name: "prefetch", shape: Shape::scalar(&["BATCHES"], "prefetch 4"), read: prefetch },
    Field { name: "limit", shape: Shape::scalar(&["IMAGES"], "limit 1000"), read: limit },
    Field { name: "subset", shape: Shape::scalar(&["FILE"], "subset \"/data/1percent.txt\""), read: subset },
    Field { name: "test-root", shape: Shape::scalar(&["FOLDER"], "test-root \"/data/imagenet/val\""), read: test_root },
    Field { name: "horizontal-flip", shape: Shape::scalar(&["P"], "horizontal-flip 0.5"), read: hflip },
    Field { name: "interpolation", shape: Shape::scalar(&["FILTER"], "interpolation \"bicubic\""), read: interpolation },
    Field { name: "color-jitter", shape: Shape::scalar(&["STRENGTH"], "color-jitter 0.5"), read: color_jitter },
    Field { name: "gaussian-blur", shape: Shape::scalar(&["P"], "gaussian-blur 0.5"), read: blur },
    Field { name: "decode", shape: Shape::scalar(&["MODE"], "decode \"fast\""), read: decode },
    Field { name: "on-error", shape: Shape::scalar(&["ACTION"], "on-error \"fail\""), read: on_error },
];

/// Reads the data block into `exp.data`; only what is written changes, except that naming a
/// different dataset than the current one (a base's) also drops its `root` and `subset`,
/// which belong to that dataset.
pub(crate) fn read(cx: &mut Ctx, n: &Node, exp: &mut Experiment) {
    if let Some(kind) = n.arg(0).and_then(|e| cx.keyword(e, &n.sub("dataset"), "dataset", DATASETS))
    {
        if exp.data.dataset != kind {
            exp.data.source = DataSource::Embedded;
            exp.data.subset = None;
            exp.data.test_root = None;
        }
        exp.data.dataset = kind;
    }
    if let Some(root) = n.prop("root").and_then(|e| cx.value::<String>(e, &n.sub("root"))) {
        if root.value.trim().is_empty() {
            cx.poison(&n.sub("root"));
            cx.err(DslError::InvalidValue {
                what: "data root".into(),
                message: "the path is empty".into(),
                span: root.span,
                help: "give the folder holding the dataset files, or drop `root=` to use the \
                       embedded subset"
                    .into(),
            });
        } else {
            exp.data.source = DataSource::Path(root.value.into());
        }
    }
    read_children(cx, n.children(), &n.path, "data", FIELDS, &mut exp.data);
}

/// The largest crop side: 4096 pixels (over 9x the official 448) keeps every buffer a run and
/// `ijepa masks` / `estimate` allocate within reach of a machine.
pub const MAX_CROP: usize = 4096;

/// The most images in a batch of one process (the official batches are 16-128).
pub const MAX_BATCH: usize = 1 << 20;

fn crop_size(cx: &mut Ctx, n: &Node, d: &mut DataConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.usize_in(e, &n.path, 1, MAX_CROP, "over 9x the official 448")) {
        d.crop_size = v;
    }
}

fn crop_scale(cx: &mut Ctx, n: &Node, d: &mut DataConfig) {
    if let Some(v) = cx.range(n, Bound::UnitOpenClosed) {
        d.crop_scale = v;
    }
}

fn batch_size(cx: &mut Ctx, n: &Node, d: &mut DataConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.usize_in(e, &n.path, 1, MAX_BATCH, "images per process and step")) {
        d.batch_size = v;
    }
}

fn workers(cx: &mut Ctx, n: &Node, d: &mut DataConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.usize_min(e, &n.path, 0)) {
        d.workers = v;
    }
}

fn prefetch(cx: &mut Ctx, n: &Node, d: &mut DataConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.usize_min(e, &n.path, 0)) {
        d.prefetch = v;
    }
}

fn limit(cx: &mut Ctx, n: &Node, d: &mut DataConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.usize_min(e, &n.path, 1)) {
        d.limit = Some(v);
    }
}

fn subset(cx: &mut Ctx, n: &Node, d: &mut DataConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.value::<String>(e, &n.path)) {
        d.subset = Some(v.value.into());
    }
}

fn test_root(cx: &mut Ctx, n: &Node, d: &mut DataConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.value::<String>(e, &n.path)) {
        if v.value.trim().is_empty() {
            cx.poison(&n.path);
            cx.err(DslError::InvalidValue {
                what: "test root".into(),
                message: "the path is empty".into(),
                span: v.span,
                help: "give the folder of the test images, e.g. test-root \"/data/imagenet/val\"".into(),
            });
        } else {
            d.test_root = Some(v.value.into());
        }
    }
}

fn hflip(cx: &mut Ctx, n: &Node, d: &mut DataConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.f64_in(e, &n.path, Bound::Unit)) {
        d.hflip = v;
    }
}

/// The largest colour-distortion strength: its hue jitter 0.2 S must stay in torchvision's
/// [0, 0.5] (the engine refused S above it only when the run started).
const MAX_COLOR_JITTER: f64 = 2.5;

fn color_jitter(cx: &mut Ctx, n: &Node, d: &mut DataConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.value::<f64>(e, &n.path)) {
        if (0.0..=MAX_COLOR_JITTER).contains(&v.value) {
            d.color_jitter = (v.value > 0.0).then_some(v.value);
        } else {
            cx.out_of_range(
                &n.path,
                v.span,
                "must be in [0, 2.5]",
                "the strength S of ColorJitter(0.8S, 0.8S, 0.8S, 0.2S): its hue jitter 0.2S must stay within 0.5 (the official strength is 0.5)",
            );
        }
    }
}

fn blur(cx: &mut Ctx, n: &Node, d: &mut DataConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.f64_in(e, &n.path, Bound::Unit)) {
        d.blur = v;
    }
}

fn decode(cx: &mut Ctx, n: &Node, d: &mut DataConfig) {
    const MODES: &[(&str, bool)] = &[("fast", false), ("exact", true)];
    if let Some(v) = n.arg(0).and_then(|e| cx.keyword(e, &n.path, "decode mode", MODES)) {
        d.exact_decode = v;
    }
}

fn interpolation(cx: &mut Ctx, n: &Node, d: &mut DataConfig) {
    const FILTERS: &[(&str, Interpolation)] = &[("bilinear", Interpolation::Bilinear), ("bicubic", Interpolation::Bicubic)];
    if let Some(v) = n.arg(0).and_then(|e| cx.keyword(e, &n.path, "interpolation", FILTERS)) {
        d.interpolation = v;
    }
}

fn on_error(cx: &mut Ctx, n: &Node, d: &mut DataConfig) {
    const ACTIONS: &[(&str, OnError)] = &[("fail", OnError::Fail), ("skip", OnError::Skip)];
    if let Some(v) = n.arg(0).and_then(|e| cx.keyword(e, &n.path, "on-error action", ACTIONS)) {
        d.on_error = v;
    }
}
