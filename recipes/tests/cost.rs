//! The recipes' cost models (`ijepa estimate`) against the models they describe: the
//! parameter counts equal the built modules' (a wrong term in a shape formula shows here),
//! and the FLOP counts follow the token counts they claim.

use ijepa_dsl::config::Experiment;
use ijepa_engine::recipe::Recipe;
use ijepa_recipes::{Dino, IJepa, Mae};
use tch::Device;

fn exp(src: &str) -> Experiment {
    ijepa_dsl::parse_str("t.kdl", src).unwrap()
}

#[test]
fn ijepa_parameters_match_the_built_model_and_flops_follow_the_masks() {
    for (enc, pred, ratio) in [("width=96 depth=2 heads=3", "depth=2 width=48 heads=3", ""), ("width=128 depth=4 heads=4", "depth=3 width=64", " mlp-ratio=3.0")] {
        let e = exp(&format!(
            "experiment \"t\" {{ data \"fashion-mnist\" {{ crop-size 28; batch-size 8 }}; encoder {enc} patch=4{ratio}; predictor {pred}; mask \"multi-block\" {{ min-keep 4 }} }}"
        ));
        let cost = ijepa_recipes::ijepa::cost::cost(&e).unwrap();
        let built = IJepa::for_experiment(&e, Device::Cpu, 0, 1).unwrap();
        assert_eq!(cost.trainable_params as i64, built.num_params(), "{enc} / {pred}{ratio}");
        // the target encoder is the encoder's copy
        assert!(cost.frozen_params > 0.0 && cost.frozen_params < cost.trainable_params);
        assert!(cost.tokens.starts_with("49 patches"), "{}", cost.tokens);
    }
    // two target blocks leave a longer context than four: more encoder work, fewer predictor runs
    let base = "experiment \"t\" { data \"fashion-mnist\" { crop-size 28; batch-size 32 }; encoder width=128 depth=4 heads=4 patch=4; predictor depth=2 width=64 heads=4";
    let four = ijepa_recipes::ijepa::cost::cost(&exp(&format!("{base}; mask \"multi-block\" {{ min-keep 4 }} }}"))).unwrap();
    let two = ijepa_recipes::ijepa::cost::cost(&exp(&format!("{base}; mask \"multi-block\" {{ targets count=2; min-keep 4 }} }}"))).unwrap();
    assert!(two.tokens.contains("(x2)") && four.tokens.contains("(x4)"), "{} / {}", two.tokens, four.tokens);
    assert_ne!(two.flops_per_image, four.flops_per_image);
}

#[test]
fn mae_parameters_match_the_built_model() {
    let e = exp(
        "experiment \"t\" { recipe \"mae\"; data \"fashion-mnist\" { crop-size 28; batch-size 8 }; encoder width=96 depth=2 heads=3 patch=4; decoder depth=1 width=64 heads=4; mask \"random\" { ratio 0.75 } }",
    );
    let cost = ijepa_recipes::mae::cost(&e).unwrap();
    let built = Mae::for_experiment(&e, Device::Cpu, 0, 1).unwrap();
    assert_eq!(cost.trainable_params as i64, built.num_params());
    assert_eq!(cost.frozen_params, 0.0);
    // 49 patches, 12 visible (int(49 * 0.25)): the encoder's blocks see 13 tokens with the class token
    assert!(cost.tokens.contains("encoder on 12 visible"), "{}", cost.tokens);
}

#[test]
fn dino_parameters_match_the_built_student_and_flops_follow_the_crops() {
    // (a head of one layer has no hidden layer: `hidden-dim` is written with three)
    for (head, fixed) in [("head-layers 3; hidden-dim 48", ""), ("head-layers 1; norm-last-layer #false", " (gain trained)")] {
        let src = format!(
            "experiment \"t\" {{ recipe \"dino\"; data \"fashion-mnist\" {{ crop-size 16; batch-size 4 }}; encoder width=32 depth=2 heads=2 patch=4; dino {{ out-dim 64; bottleneck-dim 16; local-crops 2; local-size 8; {head} }} }}"
        );
        let e = exp(&src);
        let cost = ijepa_recipes::dino::cost::cost(&e).unwrap();
        let built = Dino::for_experiment(&e, Device::Cpu, 0, 1).unwrap();
        assert_eq!(cost.trainable_params as i64, built.num_params(), "{head}{fixed}");
        assert!(cost.frozen_params > cost.trainable_params, "the teacher's copy and the centre");
        assert!(cost.tokens.contains("2 global crops of 16 patches") && cost.tokens.contains("2 local of 4"), "{}", cost.tokens);
    }
    // more local crops: more student work, the teacher's unchanged
    let base = "experiment \"t\" { recipe \"dino\"; data \"fashion-mnist\" { crop-size 16; batch-size 4 }; encoder width=32 depth=2 heads=2 patch=4; dino { out-dim 64; local-size 8; ";
    let two = ijepa_recipes::dino::cost::cost(&exp(&format!("{base}local-crops 2 }} }}"))).unwrap();
    let six = ijepa_recipes::dino::cost::cost(&exp(&format!("{base}local-crops 6 }} }}"))).unwrap();
    assert!(six.flops_per_image > two.flops_per_image && six.activation_elems_per_image > two.activation_elems_per_image);
    assert_eq!(six.trainable_params, two.trainable_params);
}
