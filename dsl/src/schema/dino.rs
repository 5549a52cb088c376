//! The `dino { ... }` block: DINO's own settings (Caron et al., ICCV 2021), named as the
//! official `main_dino.py` arguments: the head (`out_dim`, `norm_last_layer`, its hidden and
//! bottleneck widths), the multi-crop views (`global_crops_scale`, `local_crops_number`,
//! `local_crops_scale`, and the local crops' side, 96 at 224 px), the temperatures
//! (`student_temp`, `teacher_temp`, `warmup_teacher_temp`, `warmup_teacher_temp_epochs`), the
//! centre's momentum, the teacher's (`momentum_teacher`, cosine to 1), `freeze_last_layer`,
//! `clip_grad` and the student's `drop_path_rate`. The global crops' side is the data block's `crop-size`.

use crate::config::{DinoConfig, Experiment};
use crate::reader::{read_children, Bound, Ctx, Field, Node, Shape};

/// Shape of the `dino` node.
pub(crate) const SHAPE: Shape = Shape {
    args: &[],
    required: 0,
    props: &[],
    children: true,
    usage: "dino { out-dim 65536; local-crops 8; local-size 96; teacher-temp 0.04; ... }",
};

/// Settings inside `dino { }`.
pub(crate) const FIELDS: &[Field<DinoConfig>] = &[
    Field { name: "out-dim", shape: Shape::scalar(&["N"], "out-dim 65536"), read: out_dim },
    Field { name: "hidden-dim", shape: Shape::scalar(&["N"], "hidden-dim 2048"), read: hidden_dim },
    Field { name: "bottleneck-dim", shape: Shape::scalar(&["N"], "bottleneck-dim 256"), read: bottleneck_dim },
    Field { name: "head-layers", shape: Shape::scalar(&["N"], "head-layers 3"), read: head_layers },
    Field { name: "norm-last-layer", shape: Shape::scalar(&["BOOL"], "norm-last-layer #true"), read: norm_last_layer },
    Field { name: "global-scale", shape: Shape::pair(&["LOW", "HIGH"], "global-scale 0.4 1.0"), read: global_scale },
    Field { name: "local-crops", shape: Shape::scalar(&["N"], "local-crops 8"), read: local_crops },
    Field { name: "local-size", shape: Shape::scalar(&["PIXELS"], "local-size 96"), read: local_size },
    Field { name: "local-scale", shape: Shape::pair(&["LOW", "HIGH"], "local-scale 0.05 0.4"), read: local_scale },
    Field { name: "student-temp", shape: Shape::scalar(&["T"], "student-temp 0.1"), read: student_temp },
    Field { name: "teacher-temp", shape: Shape::scalar(&["T"], "teacher-temp 0.04"), read: teacher_temp },
    Field { name: "warmup-teacher-temp", shape: Shape::scalar(&["T"], "warmup-teacher-temp 0.04"), read: warmup_teacher_temp },
    Field {
        name: "warmup-teacher-temp-epochs",
        shape: Shape::scalar(&["EPOCHS"], "warmup-teacher-temp-epochs 0"),
        read: warmup_teacher_temp_epochs,
    },
    Field { name: "center-momentum", shape: Shape::scalar(&["M"], "center-momentum 0.9"), read: center_momentum },
    Field { name: "momentum-teacher", shape: Shape::scalar(&["M"], "momentum-teacher 0.996"), read: momentum_teacher },
    Field { name: "freeze-last-layer", shape: Shape::scalar(&["EPOCHS"], "freeze-last-layer 1"), read: freeze_last_layer },
    Field { name: "clip-grad", shape: Shape::scalar(&["NORM"], "clip-grad 3.0"), read: clip_grad },
    Field { name: "drop-path-rate", shape: Shape::scalar(&["RATE"], "drop-path-rate 0.1"), read: drop_path_rate },
];

/// Reads the dino block into `exp.dino`.
pub(crate) fn read(cx: &mut Ctx, n: &Node, exp: &mut Experiment) {
    read_children(cx, n.children(), &n.path, "dino", FIELDS, &mut exp.dino);
}

fn out_dim(cx: &mut Ctx, n: &Node, d: &mut DinoConfig) {
    // one prototype: both softmaxes are 1 and the loss is 0 whatever the encoder does
    if let Some(v) = n.arg(0).and_then(|e| cx.usize_min(e, &n.path, 2)) {
        d.out_dim = v;
    }
}

fn hidden_dim(cx: &mut Ctx, n: &Node, d: &mut DinoConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.usize_min(e, &n.path, 1)) {
        d.hidden_dim = v;
    }
}

fn bottleneck_dim(cx: &mut Ctx, n: &Node, d: &mut DinoConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.usize_min(e, &n.path, 1)) {
        d.bottleneck_dim = v;
    }
}

fn head_layers(cx: &mut Ctx, n: &Node, d: &mut DinoConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.usize_min(e, &n.path, 1)) {
        d.head_layers = v;
    }
}

fn norm_last_layer(cx: &mut Ctx, n: &Node, d: &mut DinoConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.value::<bool>(e, &n.path)) {
        d.norm_last_layer = v.value;
    }
}

fn global_scale(cx: &mut Ctx, n: &Node, d: &mut DinoConfig) {
    if let Some(v) = cx.range(n, Bound::UnitOpenClosed) {
        d.global_scale = v;
    }
}

fn local_crops(cx: &mut Ctx, n: &Node, d: &mut DinoConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.usize_min(e, &n.path, 0)) {
        d.local_crops = v;
    }
}

fn local_size(cx: &mut Ctx, n: &Node, d: &mut DinoConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.usize_min(e, &n.path, 1)) {
        d.local_size = v;
    }
}

fn local_scale(cx: &mut Ctx, n: &Node, d: &mut DinoConfig) {
    if let Some(v) = cx.range(n, Bound::UnitOpenClosed) {
        d.local_scale = v;
    }
}

fn student_temp(cx: &mut Ctx, n: &Node, d: &mut DinoConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.f64_in(e, &n.path, Bound::PositiveF32)) {
        d.student_temp = v;
    }
}

fn teacher_temp(cx: &mut Ctx, n: &Node, d: &mut DinoConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.f64_in(e, &n.path, Bound::PositiveF32)) {
        d.teacher_temp = v;
    }
}

fn warmup_teacher_temp(cx: &mut Ctx, n: &Node, d: &mut DinoConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.f64_in(e, &n.path, Bound::PositiveF32)) {
        d.warmup_teacher_temp = v;
    }
}

fn warmup_teacher_temp_epochs(cx: &mut Ctx, n: &Node, d: &mut DinoConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.usize_min(e, &n.path, 0)) {
        d.warmup_teacher_temp_epochs = v;
    }
}

fn center_momentum(cx: &mut Ctx, n: &Node, d: &mut DinoConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.f64_in(e, &n.path, Bound::Unit)) {
        d.center_momentum = v;
    }
}

fn momentum_teacher(cx: &mut Ctx, n: &Node, d: &mut DinoConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.f64_in(e, &n.path, Bound::Unit)) {
        d.momentum_teacher = v;
    }
}

fn freeze_last_layer(cx: &mut Ctx, n: &Node, d: &mut DinoConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.usize_min(e, &n.path, 0)) {
        d.freeze_last_layer = v;
    }
}

fn clip_grad(cx: &mut Ctx, n: &Node, d: &mut DinoConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.f64_in(e, &n.path, Bound::NonNegative)) {
        d.clip_grad = v;
    }
}

fn drop_path_rate(cx: &mut Ctx, n: &Node, d: &mut DinoConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.f64_in(e, &n.path, Bound::UnitClosedOpen)) {
        d.drop_path_rate = v;
    }
}
