//! Mask statistics at 224 px / patch 16 against the official sampler's
//! (`tests/fixtures/official-masks-224-16.json`: 400 batches of 32 from the official
//! `MaskCollator`), plus the invariants and the never-hang guarantee.

use ijepa_dsl::config::MaskConfig;
use ijepa_recipes::ijepa::mask::{statistics, MultiBlock};
use serde_json::Value;

fn official() -> Value {
    let path = format!("{}/../tests/fixtures/official-masks-224-16.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn lengths_match_the_official_sampler() {
    let o = official();
    let c = &o["config"];
    let cfg = MaskConfig { min_keep: c["min_keep"].as_u64().unwrap() as usize, ..MaskConfig::default() };
    assert_eq!(c["n_targets"].as_u64(), Some(cfg.n_targets as u64));
    let sampler = MultiBlock::new(&cfg, 224, 16).unwrap();
    let batches = c["batches"].as_u64().unwrap() as usize;
    let batch = c["batch"].as_u64().unwrap() as usize;
    let ours = statistics(&sampler, 0, batches, batch).unwrap();
    for (name, s) in [("context_len", ours.context_len), ("target_len", ours.target_len)] {
        let mean = o[name]["mean"].as_f64().unwrap();
        let std = o[name]["std"].as_f64().unwrap();
        println!("{name}: ours mean {:.2} std {:.2}, official mean {mean:.2} std {std:.2}", s.mean, s.std);
        assert!((s.mean - mean).abs() / mean < 0.03, "{name}: mean {} vs official {mean}", s.mean);
        assert!((s.std - std).abs() / std < 0.25, "{name}: std {} vs official {std}", s.std);
    }
    // where targets fall on the grid: same shape as the official map (incl. the never-used
    // last row and column of the corner off-by-one)
    let freq: Vec<f64> = o["target_patch_frequency"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(freq.len(), ours.target_frequency.len());
    let l1: f64 = freq.iter().zip(&ours.target_frequency).map(|(a, b)| (a - b).abs()).sum();
    println!("target frequency map L1 distance {l1:.4}");
    assert!(l1 < 0.05, "target frequency map differs: L1 {l1}");
    for (i, (a, b)) in freq.iter().zip(&ours.target_frequency).enumerate() {
        assert_eq!(*a == 0.0, *b == 0.0, "patch {i}: official {a}, ours {b}");
    }
}

#[test]
fn tiny_grid_with_large_min_keep_errors_quickly() {
    // 32 px, patch 8: a 4x4 grid; target blocks hold at most 3 patches, min-keep 4
    let cfg = MaskConfig { min_keep: 4, ..MaskConfig::default() };
    let sampler = MultiBlock::new(&cfg, 32, 8).unwrap();
    let t = std::time::Instant::now();
    let err = sampler.sample(0, 0, 0, 0, 16).unwrap_err().to_string();
    assert!(t.elapsed().as_millis() < 500);
    assert!(err.contains("min-keep") && err.contains("spins forever"), "{err}");
}
