//! The I-JEPA variants of the paper's ablations, built and stepped: Table 6's mask kinds, Table
//! 7's pixel targets (no target encoder is built or updated) and Table 11's masking of the
//! target encoder at its input. The cost model's parameter count follows each variant.

use ijepa_dsl::config::Experiment;
use ijepa_engine::recipe::{Hyper, Recipe};
use ijepa_recipes::IJepa;
use tch::{Device, Kind, Tensor};

/// A tiny I-JEPA experiment in fp32 (`auto` would be bf16 autocast on a CPU with AMX).
fn exp(body: &str) -> Experiment {
    ijepa_dsl::parse_str(
        "t.kdl",
        &format!("experiment \"t\" {{ data \"fashion-mnist\" {{ crop-size 28; batch-size 4 }}; encoder width=32 depth=1 heads=2 patch=4; predictor depth=1 width=16 heads=2; precision \"fp32\"; {body} }}"),
    )
    .unwrap()
}

const HYPER: Hyper = Hyper { lr: 1e-3, wd: 0.04, momentum: 0.99 };

/// One step of `e` on random images; returns the recipe after it and the step's loss.
fn step(e: &Experiment) -> (IJepa, f64) {
    let mut r = IJepa::for_experiment(e, Device::Cpu, 0, 1).unwrap();
    let masks = r.collate()(0, 0, 4).unwrap();
    let images = Tensor::randn([4, 3, 28, 28], (Kind::Float, Device::Cpu));
    let stats = r.step(&images, &masks, HYPER).unwrap();
    assert!(stats.loss.is_finite() && stats.loss > 0.0, "loss {}", stats.loss);
    (r, stats.loss)
}

#[test]
fn every_table6_mask_kind_trains() {
    for kind in ["rasterized", "block", "random"] {
        let e = exp(&format!("mask \"{kind}\""));
        let (r, _) = step(&e);
        let masks = r.collate()(0, 1, 4).unwrap();
        let n_targets = match kind {
            "rasterized" => 3,
            _ => 1,
        };
        assert_eq!((masks.n_context, masks.n_targets), (1, n_targets), "{kind}");
        let cost = ijepa_recipes::ijepa::cost::cost(&e).unwrap();
        assert_eq!(cost.trainable_params as i64, r.num_params(), "{kind}");
    }
}

#[test]
fn pixel_targets_build_no_target_encoder() {
    let e = exp("target \"pixels\"; mask \"multi-block\" { targets count=2; min-keep 4 }");
    let (r, _) = step(&e);
    assert!(r.target_encoder.is_none() && r.target_store.is_none());
    let state = r.state();
    assert!(!state.iter().any(|(n, _)| n.starts_with("target_encoder.")), "no target encoder in the checkpoint");
    assert!(state.iter().any(|(n, _)| n.starts_with("encoder.")));
    // the predictor regresses a patch's pixels: 4 x 4 x 3
    let proj = state.iter().find(|(n, _)| n == "predictor.predictor_proj.weight").map(|(_, t)| t.size());
    assert_eq!(proj, Some(vec![48, 16]));
    assert!(!r.uses_momentum());
    assert_eq!(r.feature_module(), "encoder", "evaluations read the (only) encoder");
    assert_eq!(r.feature_encoders().iter().map(|(n, _)| *n).collect::<Vec<_>>(), ["context"]);
    assert!(r.target_store().is_err());
    let cost = ijepa_recipes::ijepa::cost::cost(&e).unwrap();
    assert_eq!((cost.trainable_params as i64, cost.frozen_params), (r.num_params(), 0.0));
    // the representation recipe has one, a copy of the encoder
    let (r, _) = step(&exp("mask \"multi-block\" { targets count=2; min-keep 4 }"));
    assert!(r.target_encoder.is_some() && r.uses_momentum());
}

#[test]
fn input_masking_encodes_only_the_target_patches() {
    let out = exp("mask \"multi-block\" { targets count=2; min-keep 4 }");
    let input = exp("target masking=\"input\"; mask \"multi-block\" { targets count=2; min-keep 4 }");
    let images = Tensor::randn([4, 3, 28, 28], (Kind::Float, Device::Cpu));
    let a = IJepa::for_experiment(&out, Device::Cpu, 0, 1).unwrap();
    let b = IJepa::for_experiment(&input, Device::Cpu, 0, 1).unwrap();
    let masks = a.collate()(0, 0, 4).unwrap();
    let (enc, pred) = (masks.context_tensors(Device::Cpu), masks.target_tensors(Device::Cpu));
    let fa = a.forward(&images, &enc, &pred).unwrap();
    let fb = b.forward(&images, &enc, &pred).unwrap();
    // same weights (same seed), same shapes, different targets: attention over the target
    // block alone is not attention over the image
    assert_eq!(fa.target.size(), fb.target.size());
    assert_eq!(fa.prediction.size(), fb.prediction.size());
    let diff = (&fa.target - &fb.target).abs().max().double_value(&[]);
    assert!(diff > 1e-3, "targets equal: {diff}");
    // the input-masked target equals the target encoder run on the target patches alone
    let t = b.target_encoder.as_ref().unwrap();
    let manual = tch::no_grad(|| t.forward(&images, Some(&pred[..1])));
    let d = manual.size()[2];
    let manual = manual.layer_norm([d], None::<Tensor>, None::<Tensor>, 1e-5, true);
    let first = fb.target.narrow(0, 0, 4);
    let err = (&first - &manual).abs().max().double_value(&[]);
    assert!(err < 1e-5, "max |difference| {err}, target {:?} vs manual {:?}", first.size(), manual.size());
    step(&input);
}
