//! Parity with the official code on the shipped fixtures (`tests/fixtures/official-step-*`,
//! produced by the official PyTorch code with `scripts/make-parity-fixture.py`): outputs, loss,
//! every gradient, every update (after minus before) of AdamW + EMA. Tolerances are
//! `ijepa_recipes::parity::TOLERANCES`, per tensor relative to its own scale; the negative tests
//! prove they catch each of the named mistakes.

use ijepa_recipes::parity::{run, Perturb, ParityReport};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../tests/fixtures/{name}.safetensors"))
}

fn show(r: &ParityReport) {
    for (group, worst, n, pass) in r.by_group() {
        println!("{group:<12} {n:>3} tensors, worst relative err {worst:.3e} {}", if pass { "ok" } else { "FAIL" });
    }
}

fn matches(name: &str) {
    let r = run(&fixture(name), Perturb::default()).unwrap();
    show(&r);
    let failed: Vec<_> = r.comparisons.iter().filter(|c| !c.pass).collect();
    assert!(failed.is_empty(), "failed: {failed:#?}");
    // what `ijepa parity` prints beside "ok": every element within its tolerance, the worst
    // a share of it at most 1 (the updates' bound is wider than their plain relative error's)
    for c in &r.comparisons {
        assert!(c.of_tolerance <= 1.0, "{} {} passes at {} of its tolerance", c.group, c.name, c.of_tolerance);
    }
    // every group was actually compared: 3 outputs, loss, 59 gradients, 90 updates, and the
    // 59 trainable tensors' two AdamW moments
    let counts: Vec<usize> = r.by_group().iter().map(|g| g.2).collect();
    assert_eq!(counts, vec![3, 1, 59, 90, 118]);
    assert!((r.loss.0 - r.loss.1).abs() < 1e-6, "{:?}", r.loss);
}

#[test]
fn official_step_matches() {
    matches("official-step-tiny");
}

/// An encoder MLP ratio other than 4 (ViT-g has 48/11): the official predictor keeps ratio 4.
/// Fixture from `scripts/make-parity-fixture.py OFFICIAL tests/fixtures/official-step-mlp3
/// --mlp-ratio 3.0 --seed 1` (the same script regenerates `official-step-tiny` to 2e-8).
#[test]
fn official_step_with_encoder_mlp_ratio_3_matches() {
    matches("official-step-mlp3");
}

/// The groups and tensors a perturbed replay fails, on both fixtures.
fn failing(p: Perturb) -> Vec<(String, &'static str, String)> {
    let mut out = Vec::new();
    for name in ["official-step-tiny", "official-step-mlp3"] {
        let r = run(&fixture(name), p).unwrap();
        // a failing tensor is past its tolerance (the share printed beside FAIL is above 1)
        for c in r.comparisons.iter().filter(|c| !c.pass) {
            assert!(c.of_tolerance > 1.0, "{name}: {} {} fails at {} of its tolerance", c.group, c.name, c.of_tolerance);
        }
        out.extend(r.comparisons.iter().filter(|c| !c.pass).map(|c| (name.to_string(), c.group, c.name.clone())));
    }
    out
}

fn caught_on_both(bad: &[(String, &'static str, String)], group: &str, prefix: &str) {
    for name in ["official-step-tiny", "official-step-mlp3"] {
        assert!(
            bad.iter().any(|(f, g, t)| f == name && *g == group && t.starts_with(prefix)),
            "{name}: no {group} failure on {prefix}*: {bad:?}"
        );
    }
}

#[test]
fn missing_weight_decay_is_caught() {
    let bad = failing(Perturb { wd_scale: Some(0.0), ..Default::default() });
    caught_on_both(&bad, "updates", "encoder.");
}

#[test]
fn weight_decay_half_is_caught() {
    let bad = failing(Perturb { wd_scale: Some(0.5), ..Default::default() });
    caught_on_both(&bad, "updates", "encoder.");
}

#[test]
fn weight_decay_one_and_a_half_is_caught() {
    let bad = failing(Perturb { wd_scale: Some(1.5), ..Default::default() });
    caught_on_both(&bad, "updates", "encoder.");
}

#[test]
fn learning_rate_ten_percent_high_is_caught() {
    let bad = failing(Perturb { lr_scale: Some(1.1), ..Default::default() });
    caught_on_both(&bad, "updates", "encoder.");
    caught_on_both(&bad, "updates", "predictor.");
}

/// Betas the first update cannot see (its bias correction cancels them: the fixture's betas
/// edited to (0.5, 0.5) still passed every update) fail the moments, and only them.
#[test]
fn wrong_adamw_betas_are_caught() {
    for betas in [(0.5, 0.5), (0.9, 0.95), (0.8, 0.999)] {
        let bad = failing(Perturb { betas: Some(betas), ..Default::default() });
        caught_on_both(&bad, "moments", if betas.1 != 0.999 { "exp_avg_sq.encoder." } else { "exp_avg.encoder." });
        assert!(bad.iter().all(|(_, g, _)| *g == "moments"), "{betas:?}: {bad:?}");
    }
}

#[test]
fn ema_momentum_off_by_1e_3_is_caught() {
    let bad = failing(Perturb { momentum: Some(0.996 + 1e-3), ..Default::default() });
    caught_on_both(&bad, "updates", "target_encoder.");
    assert!(bad.iter().all(|(_, _, t)| t.starts_with("target_encoder.")), "{bad:?}");
    let bad = failing(Perturb { momentum: Some(0.996 - 1e-3), ..Default::default() });
    caught_on_both(&bad, "updates", "target_encoder.");
}

#[test]
fn one_block_with_zeroed_gradients_is_caught() {
    let bad = failing(Perturb { zero_grads: Some("encoder.blocks.1."), ..Default::default() });
    caught_on_both(&bad, "gradients", "encoder.blocks.1.");
    // every tensor of the block fails, not a lucky few
    let n = bad.iter().filter(|(f, g, _)| f == "official-step-tiny" && *g == "gradients").count();
    assert_eq!(n, 12, "{bad:?}");
}

#[test]
fn missing_fixture_is_a_clear_error() {
    // the fixture itself is named first (it was reported as its description missing)
    let err = run(&PathBuf::from("/nonexistent/x.safetensors"), Perturb::default()).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/x.safetensors: does not exist"), "{err}");
}

// ---- MAE (tests/fixtures/mae-step-tiny, from scripts/make-mae-parity-fixture.py against
// facebookresearch/mae's models_mae.py with timm 0.4.5) ----

fn mae(p: Perturb) -> ParityReport {
    ijepa_recipes::parity::run_any(&fixture("mae-step-tiny"), p, None).unwrap()
}

fn mae_failing(p: Perturb) -> Vec<(&'static str, String)> {
    mae(p).comparisons.iter().filter(|c| !c.pass).map(|c| (c.group, c.name.clone())).collect()
}

#[test]
fn official_mae_step_matches() {
    let r = mae(Perturb::default());
    show(&r);
    let failed: Vec<_> = r.comparisons.iter().filter(|c| !c.pass).collect();
    assert!(failed.is_empty(), "failed: {failed:#?}");
    // latent, pred, mask, target; loss; 60 gradients (all but the two fixed tables); 62
    // updates; the 60 trained tensors' two AdamW moments
    let counts: Vec<usize> = r.by_group().iter().map(|g| g.2).collect();
    assert_eq!(counts, vec![4, 1, 60, 62, 120]);
    assert!((r.loss.0 - r.loss.1).abs() < 1e-6, "{:?}", r.loss);
}

#[test]
fn mae_weight_decay_and_lr_mistakes_are_caught() {
    // the class token is decayed in MAE (3-D): a wrong decay shows on it and on the weights
    for wd in [0.0, 0.5, 1.5] {
        let bad = mae_failing(Perturb { wd_scale: Some(wd), ..Default::default() });
        assert!(bad.iter().any(|(g, n)| *g == "updates" && n == "encoder.cls_token"), "wd x{wd}: {bad:?}");
        assert!(bad.iter().any(|(g, n)| *g == "updates" && n == "decoder.decoder_pred.weight"), "wd x{wd}: {bad:?}");
        assert!(!bad.iter().any(|(g, _)| *g == "gradients"), "wd x{wd} cannot change gradients: {bad:?}");
    }
    let bad = mae_failing(Perturb { lr_scale: Some(1.1), ..Default::default() });
    assert!(bad.iter().any(|(g, n)| *g == "updates" && n.ends_with(".bias")), "lr x1.1: {bad:?}");
}

/// MAE's own betas (0.9, 0.95): the language's (0.9, 0.999) in their place fails the moments,
/// and only them (the first update cannot see betas).
#[test]
fn mae_betas_are_checked() {
    let bad = mae_failing(Perturb { betas: Some((0.9, 0.999)), ..Default::default() });
    assert!(bad.iter().any(|(g, n)| *g == "moments" && n.starts_with("exp_avg_sq.encoder.")), "{bad:?}");
    assert!(bad.iter().all(|(g, _)| *g == "moments"), "{bad:?}");
}

#[test]
fn mae_zeroed_block_gradients_are_caught() {
    let bad = mae_failing(Perturb { zero_grads: Some("decoder.decoder_blocks.1."), ..Default::default() });
    assert!(bad.iter().any(|(g, n)| *g == "gradients" && n.starts_with("decoder.decoder_blocks.1.")), "{bad:?}");
    assert!(!bad.iter().any(|(_, n)| n.starts_with("encoder.")), "{bad:?}");
}

/// An edited description is refused naming the field, not a panic (a patch of 0 divided by
/// zero), a libtorch error (an MLP of a negative width) or an allocation without end.
#[test]
fn an_edited_description_is_refused_by_name() {
    let dir = std::env::temp_dir().join(format!("ijepa-parity-edited-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = fixture("official-step-tiny");
    let text = std::fs::read_to_string(src.with_extension("json")).unwrap();
    let mut desc: serde_json::Value = serde_json::from_str(&text).unwrap();
    for (field, value, says) in [
        ("patch_size", serde_json::json!(0), "patch size 0"),
        ("mlp_ratio", serde_json::json!(1e30), "mlp ratio"),
        ("predictor_depth", serde_json::json!(100_000_000u64), "predictor depth 100000000"),
    ] {
        let was = desc[field].clone();
        desc[field] = value;
        let f = dir.join(format!("edited-{field}.safetensors"));
        std::fs::copy(&src, &f).unwrap();
        std::fs::write(f.with_extension("json"), desc.to_string()).unwrap();
        let err = run(&f, Perturb::default()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains(says), "{field}: {err}");
        desc[field] = was;
    }
    // the description named instead of the tensors says which file to give
    let err = run(&src.with_extension("json"), Perturb::default()).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("official-step-tiny.safetensors (the .json beside it is read with them)"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A copy of the fixture `name` in `dir` as `file`, its tensors edited by `tensors` and its
/// description by `desc`; the replay's error (empty where it replayed).
fn edited_error(
    dir: &std::path::Path,
    file: &str,
    name: &str,
    tensors: impl FnOnce(&mut Vec<(String, tch::Tensor)>),
    desc: impl FnOnce(&mut serde_json::Value),
) -> String {
    let src = fixture(name);
    let mut all = tch::Tensor::read_safetensors(&src).unwrap();
    tensors(&mut all);
    let f = dir.join(format!("{file}.safetensors"));
    tch::Tensor::write_safetensors(&all, &f).unwrap();
    let mut d: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(src.with_extension("json")).unwrap()).unwrap();
    desc(&mut d);
    std::fs::write(f.with_extension("json"), d.to_string()).unwrap();
    ijepa_recipes::parity::run_any(&f, Perturb::default(), None).err().map(|e| e.to_string()).unwrap_or_default()
}

/// Tensors no official step writes are refused by name (exit 2 in `ijepa parity`): a NaN or
/// an infinity (every group failed, each printing its worst error as 0), a weight stored as
/// float16 (cast, and compared as the implementation's mismatch), a tensor shaped for another
/// model (a FAIL, or libtorch's error with its backtrace), betas no AdamW takes, a mask of no
/// patch (a loss of NaN).
#[test]
fn tensors_no_step_writes_are_refused_by_name() {
    let dir = std::env::temp_dir().join(format!("ijepa-parity-tensors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let set = |key: &'static str, f: fn(&tch::Tensor) -> tch::Tensor| {
        move |all: &mut Vec<(String, tch::Tensor)>| {
            let t = all.iter_mut().find(|(k, _)| k == key).unwrap_or_else(|| panic!("no {key}"));
            t.1 = f(&t.1);
        }
    };
    let keep = |_: &mut serde_json::Value| {};
    let tiny = "official-step-tiny";
    let nan = |t: &tch::Tensor| {
        let t = t.copy();
        let _ = t.flatten(0, -1).get(5).fill_(f64::NAN);
        t
    };
    let err = edited_error(&dir, "nan", tiny, set("init.encoder.blocks.0.attn.qkv.weight", nan), keep);
    assert!(err.contains("`init.encoder.blocks.0.attn.qkv.weight` holds 1 NaN or infinite value(s)"), "{err}");
    let err = edited_error(&dir, "inf", tiny, set("grad.encoder.norm.weight", |t| t.copy().fill_(f64::INFINITY)), keep);
    assert!(err.contains("`grad.encoder.norm.weight` holds 96 NaN or infinite value(s)"), "{err}");
    let err = edited_error(&dir, "half", tiny, set("init.encoder.blocks.0.attn.qkv.weight", |t| t.to_kind(tch::Kind::Half)), keep);
    assert!(err.contains("`init.encoder.blocks.0.attn.qkv.weight` is Half: a fixture holds the official step's float32 tensors"), "{err}");
    let err = edited_error(&dir, "int", tiny, set("after.encoder.norm.weight", |t| t.to_kind(tch::Kind::Int64)), keep);
    assert!(err.contains("`after.encoder.norm.weight` is Int64: a fixture holds the official step's float32 tensors"), "{err}");
    let short = |t: &tch::Tensor| t.narrow(0, 0, t.size()[0] - 1).copy();
    for (key, group) in [("grad.encoder.norm.weight", "gradients"), ("after.encoder.norm.weight", "updates"), ("output.target", "outputs"), ("opt.exp_avg.encoder.norm.weight", "moments")] {
        let err = edited_error(&dir, "short", tiny, set(key, short), keep);
        assert!(err.contains(&format!("the fixture's {group} tensor `")) && err.contains("is shaped [") && err.contains("of different models"), "{key}: {err}");
        // (the tensors' file named, not the description, which is right)
        assert!(err.contains("short.safetensors:") && !err.contains("the description's model"), "{key}: {err}");
    }
    // a description of another model: the keys named in full, the description as a cause
    let err = edited_error(&dir, "depth3", tiny, |_| {}, |d| d["depth"] = serde_json::json!(3));
    assert!(err.contains("missing key `init.encoder.blocks.2.") && err.contains("its description (depth3.json) are of different models"), "{err}");
    assert!(err.contains("the file's `init.encoder.blocks` has 2 block(s), the model's 3"), "{err}");
    // ... and MAE's and DINO's
    let err = edited_error(&dir, "mae-depth3", "mae-step-tiny", |_| {}, |d| d["depth"] = serde_json::json!(3));
    assert!(err.contains("missing key `init.blocks.2.") && err.contains("the file's `init.blocks` has 2 block(s), the model's 3") && err.contains("(mae-depth3.json) are of different models"), "{err}");
    let err = edited_error(&dir, "dino-depth3", "dino-step-tiny", |_| {}, |d| d["depth"] = serde_json::json!(3));
    assert!(err.contains("missing key `init.student.backbone.blocks.2.") && err.contains("(dino-depth3.json) are of different models"), "{err}");
    // no context (or target) block at all: libtorch's `cat` of none, exit 1, before
    for key in ["input.masks_enc", "input.masks_pred"] {
        let err = edited_error(&dir, "no-block", tiny, set(key, |t| t.narrow(0, 0, 0).copy()), |d| {
            d.as_object_mut().unwrap().remove("n_context");
            d.as_object_mut().unwrap().remove("n_targets");
        });
        assert!(err.contains(&format!("input `{key}` holds no block")), "{key}: {err}");
    }
    // a negative lr or weight decay, which no AdamW takes (a FAIL at 10^308 of the tolerance)
    let err = edited_error(&dir, "lr", tiny, |_| {}, |d| d["optimizer"]["lr"] = serde_json::json!(-0.001));
    assert!(err.contains("says optimizer lr -0.001, which must be at least 0"), "{err}");
    let err = edited_error(&dir, "wd", tiny, |_| {}, |d| d["optimizer"]["weight_decay"] = serde_json::json!(-1.0));
    assert!(err.contains("says optimizer weight_decay -1, which must be at least 0"), "{err}");
    let err = edited_error(&dir, "mae-lr", "mae-step-tiny", |_| {}, |d| d["lr"] = serde_json::json!(-0.001));
    assert!(err.contains("says lr -0.001, which must be at least 0"), "{err}");
    let err = edited_error(&dir, "dino-wd", "dino-step-tiny", |_| {}, |d| d["wd"] = serde_json::json!(-0.04));
    assert!(err.contains("says wd -0.04, which must be at least 0"), "{err}");
    let err = edited_error(&dir, "beta2", tiny, |_| {}, |d| d["optimizer"]["betas"][1] = serde_json::json!(1.0));
    assert!(err.contains("says optimizer beta2 1, which must be in [0, 1)"), "{err}");
    let err = edited_error(&dir, "mae-beta1", "mae-step-tiny", |_| {}, |d| d["betas"][0] = serde_json::json!(-0.5));
    assert!(err.contains("says beta1 -0.5, which must be in [0, 1)"), "{err}");
    let err = edited_error(&dir, "dino-beta2", "dino-step-tiny", |_| {}, |d| d["betas"][1] = serde_json::json!(1.0));
    assert!(err.contains("says beta2 1, which must be in [0, 1)"), "{err}");
    let err = edited_error(&dir, "no-patch", tiny, set("input.masks_pred", |t| t.narrow(2, 0, 0).copy()), keep);
    assert!(err.contains("input `input.masks_pred` keeps no patch of an image"), "{err}");
    // the unedited copy replays
    assert_eq!(edited_error(&dir, "same", tiny, |_| {}, keep), "");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--weights` of another dtype than the step's float32 is refused by name (exit 2), as a
/// fixture's tensors are: it was cast and every group failed (exit 1).
#[test]
fn weights_of_another_dtype_are_refused_by_name() {
    let dir = std::env::temp_dir().join(format!("ijepa-parity-weights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = fixture("official-step-tiny");
    let weights = |half: bool| -> Vec<(String, tch::Tensor)> {
        tch::Tensor::read_safetensors(&src)
            .unwrap()
            .into_iter()
            .filter_map(|(k, t)| k.strip_prefix("init.").map(|k| (k.to_string(), t)))
            .map(|(k, t)| {
                let t = if half && k == "encoder.norm.weight" { t.to_kind(tch::Kind::Half) } else { t };
                (k, t)
            })
            .collect()
    };
    let (same, half) = (dir.join("same.safetensors"), dir.join("half.safetensors"));
    tch::Tensor::write_safetensors(&weights(false), &same).unwrap();
    tch::Tensor::write_safetensors(&weights(true), &half).unwrap();
    assert!(ijepa_recipes::parity::run_with_weights(&src, Perturb::default(), Some(&same)).unwrap().pass());
    let err = ijepa_recipes::parity::run_with_weights(&src, Perturb::default(), Some(&half)).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("`encoder.norm.weight` is Half"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
