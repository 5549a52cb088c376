//! Evaluation end to end on the embedded Fashion-MNIST subset (I-JEPA paper, appendix A.2
//! protocols): feature shapes and determinism of a tiny random ViT, the feature cache, and
//! the raw-pixel baseline through kNN and logistic regression.

use ijepa_engine::data::{Dataset, EvalTransform, FashionMnist, Split};
use ijepa_engine::eval::{self, FeatureKind, Features, Head, LinearCfg, LogisticCfg};
use ijepa_engine::model::vit::{VisionTransformer, VitConfig};
use ijepa_engine::model::ParamStore;
use tch::{Device, Kind};

fn tiny_vit(store: &ParamStore) -> VisionTransformer {
    let cfg = VitConfig {
        image_size: 28,
        patch_size: 7,
        embed_dim: 16,
        depth: 5,
        num_heads: 2,
        mlp_ratio: 2.0,
        eps: 1e-6,
        rescale_init: false,
        cls_token: false,
    };
    VisionTransformer::new(&store.root(), &cfg).unwrap()
}

#[test]
fn eval_tiny_vit_features_have_the_right_shapes_and_are_deterministic() {
    let store = ParamStore::new(Device::Cpu);
    let vit = tiny_vit(&store);
    let ds = FashionMnist::embedded(Split::Test).unwrap().limit(Some(64));
    let t = EvalTransform::resize_only(28).unwrap();
    let last = eval::extract(&vit, &ds, &t, FeatureKind::Last, 24, Device::Cpu, false).unwrap();
    assert_eq!(last.x.size(), vec![64, 16]);
    assert_eq!(last.x.kind(), Kind::Float);
    assert_eq!(last.y, (0..64).map(|i| Dataset::label(&ds, i)).collect::<Vec<_>>());
    let last4 = eval::extract(&vit, &ds, &t, FeatureKind::Last4, 64, Device::Cpu, false).unwrap();
    assert_eq!(last4.x.size(), vec![64, 64]);
    assert_eq!(last4.y, last.y);
    // the last quarter of Last4 is the Last feature; batching does not change the result
    let tail = last4.x.narrow(1, 48, 16);
    assert!(tail.allclose(&last.x, 1e-5, 1e-5, false), "{}", (&tail - &last.x).abs().max());
    let again = eval::extract(&vit, &ds, &t, FeatureKind::Last, 24, Device::Cpu, false).unwrap();
    assert!(again.x.equal(&last.x));
    // bf16 autocast on the CPU: close to f32, returned as f32
    let b = eval::extract(&vit, &ds, &t, FeatureKind::Last, 32, Device::Cpu, true).unwrap();
    assert_eq!(b.x.kind(), Kind::Float);
    assert!((&b.x - &last.x).abs().max().double_value(&[]) < 0.1);
    // mismatched transform size and too few blocks are configuration errors
    let t32 = EvalTransform::resize_only(32).unwrap();
    assert!(eval::extract(&vit, &ds, &t32, FeatureKind::Last, 8, Device::Cpu, false).is_err());
    assert!(eval::extract(&vit, &ds, &t, FeatureKind::Last, 0, Device::Cpu, false).is_err());

    // the cache stores and returns the same features
    let dir = std::env::temp_dir().join(format!("ijepa-eval-it-{}", std::process::id()));
    let path = dir.join("last.safetensors");
    let _ = std::fs::remove_dir_all(&dir);
    let c1 = eval::cached(&path, || eval::extract(&vit, &ds, &t, FeatureKind::Last, 64, Device::Cpu, false)).unwrap();
    let c2 = eval::cached(&path, || panic!("the cache must be used")).unwrap();
    assert!(c1.x.equal(&c2.x) && c2.x.equal(&last.x));
    assert_eq!(c2.y, last.y);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn eval_raw_pixel_baseline_beats_chance_by_far() {
    let t = EvalTransform::resize_only(28).unwrap();
    let train = FashionMnist::embedded(Split::Train).unwrap();
    let test = FashionMnist::embedded(Split::Test).unwrap().limit(Some(500));
    let tr = eval::raw_pixels(&train, &t, 256).unwrap();
    let te = eval::raw_pixels(&test, &t, 256).unwrap();
    assert_eq!(tr.x.size(), vec![10000, 3 * 28 * 28]);
    // grey images: three identical channels; keep one to make the probes cheaper
    let grey = |f: &Features| Features { x: f.x.narrow(1, 0, 28 * 28).contiguous(), y: f.y.clone() };
    let (tr, te) = (grey(&tr), grey(&te));
    let knn = eval::knn(&tr, &te, 10, 20, 0.07).unwrap();
    assert!(knn > 65.0, "kNN {knn}");
    // 10% of the labels, logistic regression
    let idx = eval::sample_per_class(&tr.y, 10, 0.1, 0);
    assert_eq!(idx.len(), 1000);
    let few = eval::subset(&tr, &idx).unwrap();
    let cfg = LogisticCfg { max_iter: 200, ..LogisticCfg::default() };
    let r = eval::logistic_probe(&few, &te, 10, &cfg).unwrap();
    assert!(r.top1 > 60.0, "{r:?}");
    // the linear probe (LARS, lr / 10 steps, lr x wd grid on held-out data) on all labels,
    // shortened (the paper's 50 epochs reach ~82% here)
    let cfg = LinearCfg { epochs: 12, decay_every: 5, lrs: vec![0.01, 0.05], wds: vec![0.0], head: Head::BnLinear, ..LinearCfg::default() };
    let r = eval::linear_probe(&tr, &te, 10, &cfg).unwrap();
    assert!(r.top1 > 70.0, "{r:?}");
    assert_eq!(r.curve.len(), 12);
}
