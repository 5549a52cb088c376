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

/// The teacher's update is bounded through (1 - m) of the student's gradient slope, as it
/// moves (1 - m) of the student's change: a fixture's teacher updates turned in sign where
/// they are at least a fifth of the tensor's largest and the student's whole slope would
/// cover them (where its gradient is small) fail; they passed, bounded as the student's
/// whole update.
#[test]
fn a_teacher_update_turned_in_sign_is_caught() {
    use ijepa_recipes::parity::{ROUNDING, TOLERANCES};
    let dir = std::env::temp_dir().join(format!("ijepa-dino-flip-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = fixture("dino-step-tiny");
    let desc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(src.with_extension("json")).unwrap()).unwrap();
    let (lr, eps) = (desc["lr"].as_f64().unwrap(), desc["adam_eps"].as_f64().unwrap());
    let tol = |g: &str| TOLERANCES.iter().find(|t| t.0 == g).unwrap().1.rel;
    let all = tch::Tensor::read_safetensors(&src).unwrap();
    let by_name: std::collections::HashMap<String, tch::Tensor> = all.iter().map(|(k, t)| (k.clone(), t.to_kind(tch::Kind::Double))).collect();
    let mut turned_in = Vec::new();
    let edited: Vec<(String, tch::Tensor)> = all
        .into_iter()
        .map(|(k, t)| {
            let Some(rest) = k.strip_prefix("after.teacher.") else { return (k, t) };
            let Some(g) = by_name.get(&format!("grad.{rest}")) else { return (k, t) };
            let was = &by_name[&format!("init.teacher.{rest}")];
            let u = &by_name[&k] - was;
            let scale = u.abs().max().double_value(&[]);
            // the student's whole slope, as the teacher's bound was
            let whole = (g.abs() + eps).square().reciprocal() * (lr * eps * tol("gradients") * g.abs().max().double_value(&[]))
                + tol("updates") * scale
                + ROUNDING * was.abs().max().double_value(&[]);
            let pick = (u.abs() * 2.0).lt_tensor(&(whole * 0.9)).logical_and(&u.abs().gt(0.2 * scale));
            if pick.any().int64_value(&[]) == 0 {
                return (k, t);
            }
            turned_in.push(format!("teacher.{rest}"));
            let turned = was + u.where_self(&pick.logical_not(), &(-&u));
            (k, turned.to_kind(tch::Kind::Float))
        })
        .collect();
    assert!(!turned_in.is_empty());
    let f = dir.join("turned.safetensors");
    tch::Tensor::write_safetensors(&edited, &f).unwrap();
    std::fs::copy(src.with_extension("json"), f.with_extension("json")).unwrap();
    let r = run_any(&f, Perturb::default(), None).unwrap();
    let mut bad: Vec<String> = r.comparisons.iter().filter(|c| !c.pass).map(|c| c.name.clone()).collect();
    bad.sort();
    turned_in.sort();
    assert_eq!(bad, turned_in, "every tensor turned in, and only those, fail");
    let _ = std::fs::remove_dir_all(&dir);
}
