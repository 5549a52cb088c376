//! Evaluation end to end on the embedded Fashion-MNIST subset (I-JEPA paper, appendix A.2
//! protocols): feature shapes and determinism of a tiny random ViT, the feature cache, and
//! the raw-pixel baseline through kNN and logistic regression.

use ijepa_engine::data::{Dataset, EvalTransform, FashionMnist, Split};
use ijepa_engine::eval::{self, FeatureKind, Features, Head, LinearCfg, LogisticCfg};
use ijepa_engine::model::vit::{VisionTransformer, VitConfig};
use ijepa_engine::model::ParamStore;
use tch::{Device, Kind};

/// A fine-tuning classifier: [`tiny_vit`] with a fresh 10-class head.
fn tiny_classifier() -> ijepa_engine::Result<ijepa_engine::eval::finetune::Classifier> {
    let store = ParamStore::new(Device::Cpu);
    let vit = tiny_vit(&store);
    ijepa_engine::eval::finetune::Classifier::new(store, vit, 10)
}

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
        learned_pos_embed: false,
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

#[test]
fn finetune_trains_the_whole_encoder_with_layer_decay_and_selects_on_held_out_data() {
    use ijepa_engine::eval::finetune::{self, FinetuneCfg};
    use ijepa_engine::optim::Group;
    use std::sync::Arc;
    let train: Arc<dyn Dataset> = Arc::new(FashionMnist::embedded(Split::Train).unwrap().limit(Some(2000)));
    let test = FashionMnist::embedded(Split::Test).unwrap().limit(Some(500));
    let eval_tf = EvalTransform::resize_only(28).unwrap();
    let train_tf: Arc<dyn ijepa_engine::data::SampleTransform> = Arc::new(
        ijepa_engine::data::TrainTransform::new(ijepa_engine::data::TrainTransformCfg {
            size: 28,
            scale: (0.5, 1.0),
            ..Default::default()
        })
        .unwrap(),
    );
    let build = tiny_classifier;
    // the optimiser's groups: MAE's layer-wise scales, no decay on 1-D tensors
    let m = build().unwrap();
    let opt = m.optimizer(0.5).unwrap();
    let slot = |name: &str| opt.slots.iter().find(|s| s.name == name).unwrap();
    assert_eq!(slot("patch_embed.proj.weight").lr_scale, 0.5f64.powi(6));
    assert_eq!(slot("blocks.0.attn.qkv.weight").lr_scale, 0.5f64.powi(5));
    assert_eq!(slot("blocks.4.mlp.fc1.weight").lr_scale, 0.5);
    assert_eq!(slot("head.weight").lr_scale, 1.0);
    assert_eq!(slot("head.weight").group, Group::Decay);
    assert_eq!(slot("head.bias").group, Group::NoDecay);
    assert_eq!(slot("fc_norm.weight").group, Group::NoDecay);
    // the position table is trained, as MAE's fine-tuning model (timm's) has it, with the
    // embeddings' scale and no weight decay
    assert_eq!(slot("pos_embed").lr_scale, 0.5f64.powi(6));
    assert_eq!(slot("pos_embed").group, Group::NoDecay);
    assert!(m.encoder.pos_embed.requires_grad());
    let std = m.head.weight.std(true).double_value(&[]);
    assert!((1.5e-5..2.5e-5).contains(&std), "the head starts at std 2e-5, not {std}");

    let cfg = FinetuneCfg {
        epochs: 6,
        batch: 64,
        lrs: vec![1e-5, 1e-2],
        wds: vec![0.05],
        warmup_epochs: 0.5,
        min_lr: 1e-6,
        layer_decay: 0.75,
        drop_path: 0.1,
        label_smoothing: 0.1,
        heldout: 0.1,
        seed: 0,
        workers: 2,
        bf16: false,
    };
    let r = finetune::finetune(&build, train.clone(), Arc::new(test), train_tf, &eval_tf, 10, &cfg, Device::Cpu).unwrap();
    eprintln!("{r:?}");
    // both grid points scored on the held-out part; the tiny learning rate barely moves
    assert_eq!(r.sweep.len(), 2, "{r:?}");
    assert!(r.sweep[1].1 > r.sweep[0].1 + 10.0, "{r:?}");
    assert_eq!(r.chosen["lr"], 1e-2);
    assert_eq!(r.curve.len(), 6);
    assert_eq!(r.top1, r.curve[5].1);
    assert!(r.top1 > 45.0, "{r:?}");
}

/// [`tiny_classifier`] fine-tuned for one epoch of batch 32 (no warm-up, drop-path or label
/// smoothing; 20% of each class held out to compare several rates) on the first `images`
/// training images at the rates `lrs`, scored on 100 test images.
fn finetune_one_epoch(images: usize, lrs: Vec<f64>) -> ijepa_engine::Result<ijepa_engine::eval::ProbeResult> {
    use ijepa_engine::eval::finetune::{self, FinetuneCfg};
    use std::sync::Arc;
    let train: Arc<dyn Dataset> = Arc::new(FashionMnist::embedded(Split::Train).unwrap().limit(Some(images)));
    let test = FashionMnist::embedded(Split::Test).unwrap().limit(Some(100));
    let eval_tf = EvalTransform::resize_only(28).unwrap();
    let train_tf: Arc<dyn ijepa_engine::data::SampleTransform> = Arc::new(
        ijepa_engine::data::TrainTransform::new(ijepa_engine::data::TrainTransformCfg { size: 28, ..Default::default() }).unwrap(),
    );
    let cfg = FinetuneCfg {
        epochs: 1,
        batch: 32,
        lrs,
        wds: vec![0.05],
        warmup_epochs: 0.0,
        min_lr: 1e-6,
        layer_decay: 0.75,
        drop_path: 0.0,
        label_smoothing: 0.0,
        heldout: 0.2,
        seed: 0,
        workers: 1,
        bf16: false,
    };
    finetune::finetune(&tiny_classifier, train, Arc::new(test), train_tf, &eval_tf, 10, &cfg, Device::Cpu)
}

#[test]
fn finetune_grid_point_that_diverges_is_no_score_and_the_others_are_compared() {
    // an AdamW step of 1e30 overflows the next forward: the loss is NaN
    let r = finetune_one_epoch(400, vec![1e30, 1e-3]).unwrap();
    assert_eq!(r.sweep.len(), 2, "{r:?}");
    assert!(r.sweep[0].1.is_nan(), "the diverged point has no score: {r:?}");
    assert!(r.sweep[1].1.is_finite(), "{r:?}");
    assert_eq!(r.chosen["lr"], 1e-3);
    assert!(r.top1.is_finite(), "{r:?}");
    // every point diverging, or the final fit diverging, is still an error naming it
    let e = finetune_one_epoch(400, vec![1e30, 1e31]).unwrap_err();
    assert!(e.to_string().contains("every grid point diverged"), "{e}");
    let e = finetune_one_epoch(400, vec![1e30]).unwrap_err();
    assert!(e.to_string().contains("fine-tuning diverged at lr 1.0e30, wd 0.05: loss "), "{e}");
}

/// A fit that overflows on its last step has a finite loss at every step (each read before its
/// step's update): its outputs are checked after the step, and it is no score either.
#[test]
fn finetune_that_overflows_on_its_last_step_is_no_score() {
    // 40 images: one step of 32 on the 32 a held-out fit of 20% trains on, as on the whole split
    let r = finetune_one_epoch(40, vec![1e30, 1e-3]).unwrap();
    assert!(r.sweep[0].1.is_nan(), "the point that overflowed has no score: {r:?}");
    assert_eq!(r.chosen["lr"], 1e-3, "{r:?}");
    let e = finetune_one_epoch(40, vec![1e30]).unwrap_err();
    assert!(e.to_string().contains("fine-tuning diverged at lr 1.0e30, wd 0.05: ") && e.to_string().contains("not finite after"), "{e}");
}
