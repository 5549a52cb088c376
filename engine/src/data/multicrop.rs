//! Multi-crop views for view-augmentation recipes (DINO; iBOT, SimCLR and LeJEPA take the
//! same path): every sample becomes several [`TrainTransform`] views of different sizes,
//! written one after the other ([`SampleTransform::view_sizes`]); the loader keeps them per
//! sample and [`crate::data::Batch::views_tensors`] hands a recipe one `[B, 3, S_v, S_v]`
//! tensor per view.
//!
//! [`MultiCrop::dino`] is the official DINO pipeline (`main_dino.py` `DataAugmentationDINO`):
//! `flip_and_color_jitter` = RandomHorizontalFlip(0.5), RandomApply(ColorJitter(0.4, 0.4,
//! 0.2, 0.1), p=0.8), RandomGrayscale(0.2); the first global crop then blurs with p = 1.0, the
//! second with p = 0.1 and solarises with p = 0.2, each local crop blurs with p = 0.5; blur
//! radius ~ U(0.1, 2.0); then ToTensor and the ImageNet Normalize. The crops are
//! RandomResizedCrop (global scale (0.4, 1.0), local (0.05, 0.4)), resized with the data
//! block's `interpolation` (DINO's default: bicubic, as `DataAugmentationDINO`).
//!
//! Randomness: view `v` of sample `i` draws from its own generator keyed by the sample's
//! generator and `v`, so a view does not depend on how many views precede it. The image is
//! decoded once, at full resolution, for all its views.

use super::dataset::{Dataset, SampleTransform};
use super::transform::{in_sample, Filter, TrainTransform, TrainTransformCfg};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// The settings of [`MultiCrop::dino`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MultiCropCfg {
    /// Side of the two global crops (the experiment's crop size; official 224).
    pub global_size: usize,
    /// Area range of the global crops (official (0.4, 1.0)).
    pub global_scale: (f64, f64),
    /// Number of local crops (official 8; 0 is allowed: two global views only).
    pub local_crops: usize,
    /// Side of the local crops (official 96).
    pub local_size: usize,
    /// Area range of the local crops (official (0.05, 0.4)).
    pub local_scale: (f64, f64),
    /// Decode at full resolution (see [`TrainTransformCfg::exact`]).
    pub exact: bool,
    /// The crops' resampling filter (official: bicubic).
    pub filter: Filter,
}

/// Several [`TrainTransform`] views per sample.
#[derive(Debug, Clone)]
pub struct MultiCrop {
    views: Vec<TrainTransform>,
}

impl MultiCrop {
    /// Views from their transforms, in order.
    ///
    /// # Errors
    /// No view.
    pub fn new(views: Vec<TrainTransform>) -> Result<Self> {
        if views.is_empty() {
            return Err(Error::Config("multi-crop: no view".into()));
        }
        Ok(Self { views })
    }

    /// The official DINO augmentation: 2 global crops, then `local_crops` local ones.
    ///
    /// # Errors
    /// Invalid sizes or scales, naming the crop.
    pub fn dino(cfg: &MultiCropCfg) -> Result<Self> {
        let base = TrainTransformCfg {
            hflip: 0.5,
            jitter: Some((0.4, 0.4, 0.2, 0.1)),
            color_jitter_p: 0.8,
            grayscale: 0.2,
            exact: cfg.exact,
            filter: cfg.filter,
            ..TrainTransformCfg::default()
        };
        let global = TrainTransformCfg { size: cfg.global_size, scale: cfg.global_scale, ..base };
        let named = |what: &str, c: TrainTransformCfg| {
            TrainTransform::new(c).map_err(|e| Error::Config(format!("{what}: {e}")))
        };
        let mut views = vec![
            named("global crop 1", TrainTransformCfg { blur: 1.0, ..global })?,
            named("global crop 2", TrainTransformCfg { blur: 0.1, solarize: 0.2, ..global })?,
        ];
        for i in 0..cfg.local_crops {
            let local = TrainTransformCfg { size: cfg.local_size, scale: cfg.local_scale, blur: 0.5, ..base };
            views.push(named(&format!("local crop {}", i + 1), local)?);
        }
        Self::new(views)
    }

    /// The transform of each view.
    pub fn views(&self) -> &[TrainTransform] {
        &self.views
    }
}

impl SampleTransform for MultiCrop {
    fn size(&self) -> usize {
        self.views[0].cfg().size
    }

    fn view_sizes(&self) -> Vec<usize> {
        self.views.iter().map(|v| v.cfg().size).collect()
    }

    fn apply(&self, rng: &mut Rng, ds: &dyn Dataset, i: usize, out: &mut [f32]) -> Result<()> {
        let want = self.sample_len();
        if out.len() != want {
            return Err(Error::Config(format!("multi-crop: {} floats for a sample of {want}", out.len())));
        }
        let key = rng.next_u64();
        // decode once at full resolution; every view crops the same pixels
        let (img, _) = ds.load(i, 1)?;
        let mut rest = out;
        for (v, t) in self.views.iter().enumerate() {
            let (head, tail) = rest.split_at_mut(t.output_len());
            let mut view_rng = Rng::from_key(&[key, v as u64]);
            t.apply_image(&mut view_rng, &img, head).map_err(|e| in_sample(ds, i, e))?;
            rest = tail;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Image, Loader, LoaderCfg};
    use std::sync::Arc;

    struct Noise(usize);
    impl Dataset for Noise {
        fn len(&self) -> usize {
            self.0
        }
        fn label(&self, i: usize) -> i64 {
            i as i64 % 3
        }
        fn num_classes(&self) -> usize {
            3
        }
        fn describe(&self, i: usize) -> String {
            format!("noise #{i}")
        }
        fn size(&self, _: usize) -> Result<(usize, usize)> {
            Ok((28, 28))
        }
        fn load(&self, i: usize, _: u32) -> Result<(Image, u32)> {
            let pixels = (0..28 * 28 * 3).map(|k| ((k * 31 + i * 7) % 256) as u8).collect();
            Ok((Image { height: 28, width: 28, channels: 3, pixels }, 1))
        }
    }

    fn cfg() -> MultiCropCfg {
        MultiCropCfg { global_size: 28, global_scale: (0.4, 1.0), local_crops: 3, local_size: 12, local_scale: (0.05, 0.4), exact: true, filter: Filter::Bicubic }
    }

    #[test]
    fn dino_views_have_their_sizes_and_differ() {
        let t = MultiCrop::dino(&cfg()).unwrap();
        assert_eq!(t.view_sizes(), vec![28, 28, 12, 12, 12]);
        assert_eq!(t.sample_len(), 3 * (2 * 28 * 28 + 3 * 12 * 12));
        let mut out = vec![0f32; t.sample_len()];
        t.apply(&mut Rng::from_key(&[1]), &Noise(4), 0, &mut out).unwrap();
        let (g1, rest) = out.split_at(3 * 28 * 28);
        let (g2, locals) = rest.split_at(3 * 28 * 28);
        assert_ne!(g1, g2, "two global crops of one image are two draws");
        assert_ne!(&locals[..3 * 144], &locals[3 * 144..6 * 144]);
        assert!(out.iter().all(|v| v.is_finite()));
        // the same key gives the same views
        let mut again = vec![0f32; t.sample_len()];
        t.apply(&mut Rng::from_key(&[1]), &Noise(4), 0, &mut again).unwrap();
        assert_eq!(out, again);
    }

    #[test]
    fn loader_delivers_one_tensor_per_view() {
        let t = Arc::new(MultiCrop::dino(&cfg()).unwrap());
        let lcfg = LoaderCfg { batch_size: 4, workers: 2, prefetch: 1, seed: 3, drop_last: true, rank: 0, world_size: 1, skip_errors: false };
        let collate: crate::data::CollateFn<()> = Arc::new(|_, _, _| Ok(()));
        let loader = Loader::new(Arc::new(Noise(8)), t.clone(), lcfg, collate).unwrap();
        let batch = loader.epoch(0).next().unwrap().unwrap();
        assert_eq!(batch.view_sizes, vec![28, 28, 12, 12, 12]);
        let views = batch.views_tensors(tch::Device::Cpu).unwrap();
        let sizes: Vec<Vec<i64>> = views.iter().map(|v| v.size()).collect();
        assert_eq!(sizes, vec![vec![4, 3, 28, 28], vec![4, 3, 28, 28], vec![4, 3, 12, 12], vec![4, 3, 12, 12], vec![4, 3, 12, 12]]);
        // sample 1's second global view is where the flat buffer says it is
        let per = t.sample_len();
        let start = per + 3 * 28 * 28;
        let expect = tch::Tensor::from_slice(&batch.images[start..start + 3 * 28 * 28]).view([3, 28, 28]);
        assert!(views[1].get(1).equal(&expect));
    }

    #[test]
    fn bad_scale_names_the_crop() {
        let err = MultiCrop::dino(&MultiCropCfg { local_scale: (0.5, 0.1), ..cfg() }).unwrap_err().to_string();
        assert!(err.contains("local crop 1"), "{err}");
    }
}
