//! The recipes' cost models (`ijepa estimate`) against the models they describe: the
//! parameter counts equal the built modules' (a wrong term in a shape formula shows here),
//! and the FLOP counts follow the token counts they claim.

use ijepa_dsl::config::Experiment;
use ijepa_engine::recipe::Recipe;
use ijepa_recipes::{IJepa, Mae};
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
