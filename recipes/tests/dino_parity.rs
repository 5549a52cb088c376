//! DINO parity with the official code (`tests/fixtures/dino-step-{tiny,frozen}`, produced by
//! facebookresearch/dino's `main_dino.py` / `utils.py` / `vision_transformer.py` with
//! `scripts/make-dino-parity-fixture.py`): backbone and head outputs of student and teacher,
//! the loss, every clipped gradient, and what the step changed in the student (AdamW), the
//! teacher (EMA) and the centre. `tiny` is an epoch-1 step (the last layer trained);
//! `frozen` an epoch-0 step (`cancel_gradients_last_layer`: AdamW skips the prototypes).
//! The negative tests prove the tolerances catch the named mistakes.

use ijepa_recipes::parity::{run_any, ParityReport, Perturb};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../tests/fixtures/{name}.safetensors"))
}

fn replay(name: &str, p: Perturb) -> ParityReport {
    run_any(&fixture(name), p, None).unwrap()
}

fn failing(name: &str, p: Perturb) -> Vec<(&'static str, String)> {
    replay(name, p).comparisons.iter().filter(|c| !c.pass).map(|c| (c.group, c.name.clone())).collect()
}

fn matches(name: &str, gradients: usize) {
    let r = replay(name, Perturb::default());
    for (group, worst, n, pass) in r.by_group() {
        println!("{group:<12} {n:>3} tensors, worst relative err {worst:.3e} {}", if pass { "ok" } else { "FAIL" });
    }
    for c in r.comparisons.iter().filter(|c| c.rel > 1e-4) {
        println!("  beyond the plain bound, within AdamW's first-step slope: {} {} rel {:.3e}", c.group, c.name, c.rel);
    }
    let failed: Vec<_> = r.comparisons.iter().filter(|c| !c.pass).collect();
    assert!(failed.is_empty(), "failed: {failed:#?}");
    // 4 network outputs + the interpolated position table, the loss, the student's
    // gradients, 38 + 38 + 1 updates (student, teacher, centre), and the two AdamW moments of
    // the 37 trainable tensors (a cancelled last layer's: zero, as it took no step)
    let counts: Vec<usize> = r.by_group().iter().map(|g| g.2).collect();
    assert_eq!(counts, vec![5, 1, gradients, 77, 74]);
    assert!((r.loss.0 - r.loss.1).abs() < 1e-5, "{:?}", r.loss);
}

#[test]
fn official_dino_step_matches() {
    matches("dino-step-tiny", 37);
}

#[test]
fn official_dino_step_with_the_frozen_last_layer_matches() {
    // the prototypes' gradient is cancelled: 36 compared, and weight_v must not move
    matches("dino-step-frozen", 36);
}

#[test]
fn dino_learning_rate_and_weight_decay_mistakes_are_caught() {
    let bad = failing("dino-step-tiny", Perturb { lr_scale: Some(1.1), ..Default::default() });
    assert!(bad.iter().any(|(g, n)| *g == "updates" && n.starts_with("student.backbone.")), "{bad:?}");
    let bad = failing("dino-step-tiny", Perturb { wd_scale: Some(1.5), ..Default::default() });
    assert!(bad.iter().any(|(g, n)| *g == "updates" && n == "student.backbone.pos_embed"), "{bad:?}");
}

#[test]
fn dino_teacher_momentum_off_by_1e_3_is_caught() {
    let bad = failing("dino-step-tiny", Perturb { momentum: Some(0.997), ..Default::default() });
    assert!(bad.iter().any(|(g, n)| *g == "updates" && n.starts_with("teacher.")), "{bad:?}");
    assert!(!bad.iter().any(|(_, n)| n.starts_with("student.")), "the student does not depend on the momentum: {bad:?}");
}

/// DINO's betas (0.9, 0.999) are checked by the moments (the first update cannot see them);
/// on the frozen step too, where the last layer's moments must stay zero.
#[test]
fn dino_betas_are_checked() {
    for name in ["dino-step-tiny", "dino-step-frozen"] {
        let bad = failing(name, Perturb { betas: Some((0.9, 0.95)), ..Default::default() });
        assert!(bad.iter().any(|(g, n)| *g == "moments" && n.starts_with("exp_avg_sq.student.backbone.")), "{name}: {bad:?}");
        assert!(bad.iter().all(|(g, _)| *g == "moments"), "{name}: {bad:?}");
    }
}

#[test]
fn dino_zeroed_block_gradients_are_caught() {
    let bad = failing("dino-step-tiny", Perturb { zero_grads: Some("student.backbone.blocks.1."), ..Default::default() });
    assert!(bad.iter().any(|(g, n)| *g == "gradients" && n.starts_with("student.backbone.blocks.1.")), "{bad:?}");
}
