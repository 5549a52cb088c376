//! Our parameter names and shapes equal the official state-dict key lists
//! (`tests/fixtures/official-keys-*.txt`, dumped from the official code) for ViT-H/14,
//! ViT-g/16 and ViT-B/16 with their predictors, so released checkpoints load without remapping.

use ijepa_dsl::config::EncoderConfig;
use ijepa_engine::model::vit::{VisionTransformer, VitConfig};
use ijepa_recipes::ijepa::{PredictorConfig, VisionTransformerPredictor};
use ijepa_engine::model::ParamStore;
use std::collections::BTreeMap;
use tch::Device;

type Keys = BTreeMap<String, Vec<i64>>;

fn official(file: &str) -> (Keys, Keys, usize, usize) {
    let path = format!("{}/../tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let header = text.lines().next().unwrap();
    // "# official vit_huge patch 14 @224, predictor depth 12 width 384"
    let words: Vec<&str> = header.split_whitespace().collect();
    let at = |w: &str| words.iter().position(|x| *x == w).map(|i| words[i + 1].trim_end_matches(',').parse::<usize>().unwrap()).unwrap();
    let (depth, width) = (at("depth"), at("width"));
    let (mut enc, mut pred) = (Keys::new(), Keys::new());
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let shape: Vec<i64> = cols[2].trim_matches(|c| c == '[' || c == ']').split(',').map(|s| s.trim().parse().unwrap()).collect();
        match cols[0] {
            "encoder" => enc.insert(cols[1].to_string(), shape),
            "predictor" => pred.insert(cols[1].to_string(), shape),
            other => panic!("unknown dict {other}"),
        };
    }
    (enc, pred, depth, width)
}

fn ours(store: &ParamStore) -> Keys {
    store.named().into_iter().map(|(n, t)| (n, t.size())).collect()
}

fn check(file: &str, preset: &str, patch: usize) {
    let (enc, pred, pdepth, pwidth) = official(file);
    let cfg = VitConfig::from_dsl(&EncoderConfig::preset(preset, patch).unwrap(), 224);
    let es = ParamStore::new(Device::Cpu);
    VisionTransformer::new(&es.root(), &cfg).unwrap();
    assert_eq!(ours(&es), enc, "{file}: encoder keys");
    drop(es);
    let ps = ParamStore::new(Device::Cpu);
    let pcfg = PredictorConfig {
        grid: cfg.grid(),
        encoder_dim: cfg.embed_dim,
        out_dim: cfg.embed_dim,
        embed_dim: pwidth,
        depth: pdepth,
        num_heads: cfg.num_heads,
        mlp_ratio: 4.0,
        eps: 1e-6,
        rescale_init: false,
    };
    VisionTransformerPredictor::new(&ps.root(), &pcfg).unwrap();
    assert_eq!(ours(&ps), pred, "{file}: predictor keys");
}

#[test]
fn vit_base_16_keys() {
    check("official-keys-vit-base-16-224.txt", "vit-base", 16);
}

#[test]
fn vit_huge_14_keys() {
    check("official-keys-vit-huge-14-224.txt", "vit-huge", 14);
}

#[test]
fn vit_giant_16_keys() {
    check("official-keys-vit-giant-16-224.txt", "vit-giant", 16);
}
