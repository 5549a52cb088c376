//! DINO, self-distillation with no labels (Caron et al., ICCV 2021; official code
//! facebookresearch/dino, `main_dino.py`, `vision_transformer.py`, `utils.py`): the
//! view-augmentation recipe beside I-JEPA's masked prediction (paper Table 1, second group).
//!
//! Per image the loader delivers two global crops and several local ones
//! ([`ijepa_engine::data::MultiCrop::dino`]). The student (a ViT with a class token and a
//! learnt, interpolated position table, then a [`head::DinoHead`]) sees every crop, with
//! stochastic depth (`drop_path_rate`, each image's own draws: [`Dino::student_keep`]); the
//! teacher, an EMA of the student, sees the two global ones, without. The loss is the cross-entropy
//! between the teacher's centred, sharpened softmax (temperature warming up from
//! `warmup_teacher_temp` to `teacher_temp`) and the student's softmax (`student_temp`), over
//! every (teacher global crop, student crop of another index) pair. After backward: each
//! gradient is clipped to norm `clip_grad` on its own (`utils.clip_gradients`), the last
//! layer's is dropped during the first `freeze_last_layer` epochs (AdamW then skips it, as
//! torch skips a parameter whose grad is None), AdamW steps (no weight decay on biases and
//! 1-D tensors; the class token and position table are decayed, `get_params_groups`), the
//! teacher follows with momentum cosine from `momentum_teacher` to 1, and the centre with
//! `center_momentum`.
//!
//! Checkpoint names are the official checkpoint's: `student.backbone.*`, `student.head.*`,
//! `teacher.backbone.*`, `teacher.head.*` (the state dicts of `MultiCropWrapper`) and
//! `dino_loss.center`. Evaluations read `teacher.backbone` (as the official `eval_linear.py`
//! and `eval_knn.py` do with `--checkpoint_key teacher`), average-pooling the patch tokens as
//! for every recipe here (the official probes read the class token).
//!
//! Distributed runs average the gradients as every recipe does, and the centre's batch mean
//! over the ranks (`DINOLoss.update_center`'s all-reduce): the centre is the global batch's.

pub mod cost;
pub mod head;
pub mod parity;

use head::{DinoHead, HeadConfig};
use ijepa_dsl::config::{DataConfig, DinoConfig, Experiment};
use ijepa_engine::autocast;
use ijepa_engine::data::{MultiCrop, MultiCropCfg, SampleTransform};
use ijepa_engine::error::{Error, Result};
use ijepa_engine::model::vit::block::{drop_path_rates, Keep};
use ijepa_engine::model::vit::{VisionTransformer, VitConfig};
use ijepa_engine::model::ParamStore;
use ijepa_engine::optim::{ema_update, AdamW};
use ijepa_engine::recipe::{backward_sync, Collate, GradSync, Hyper, Modules, Recipe, StepStats};
use ijepa_engine::rng::{Rng, Stream};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// Everything a DINO step is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct DinoSpec {
    /// The backbone (class token, learnt position table).
    pub backbone: VitConfig,
    /// The head.
    pub head: HeadConfig,
    /// The `dino` block's settings (temperatures, crops, momentum, freezing, clipping).
    pub dino: DinoConfig,
    /// Epochs of the run (the teacher temperature schedule's length).
    pub epochs: usize,
    /// AdamW betas.
    pub betas: (f64, f64),
    /// AdamW eps.
    pub eps: f64,
    /// Forward under bf16 autocast.
    pub bf16: bool,
}

/// DINO's backbone for an experiment: the `encoder` node's ViT at the global crop size, with
/// a class token and a learnt position table.
pub fn encoder_config(exp: &Experiment) -> VitConfig {
    VitConfig { cls_token: true, learned_pos_embed: true, rescale_init: false, ..VitConfig::from_dsl(&exp.encoder, exp.data.crop_size) }
}

impl DinoSpec {
    /// The spec of an experiment.
    pub fn from_experiment(exp: &Experiment) -> Self {
        let backbone = encoder_config(exp);
        let d = &exp.dino;
        let head = HeadConfig {
            in_dim: backbone.embed_dim,
            out_dim: d.out_dim,
            hidden_dim: d.hidden_dim,
            bottleneck_dim: d.bottleneck_dim,
            nlayers: d.head_layers,
            norm_last_layer: d.norm_last_layer,
        };
        Self { backbone, head, dino: d.clone(), epochs: exp.epochs, betas: exp.optimizer.betas, eps: exp.optimizer.eps, bf16: false }
    }

    /// The teacher temperature of `epoch` (official `DINOLoss.teacher_temp_schedule`: a
    /// linspace from `warmup_teacher_temp` to `teacher_temp` over the warm-up epochs, then
    /// constant).
    pub fn teacher_temp(&self, epoch: u64) -> f64 {
        let d = &self.dino;
        let w = d.warmup_teacher_temp_epochs as u64;
        match w {
            _ if epoch >= w => d.teacher_temp,
            1 => d.warmup_teacher_temp,
            _ => d.warmup_teacher_temp + (d.teacher_temp - d.warmup_teacher_temp) * epoch as f64 / (w - 1) as f64,
        }
    }

    /// The teacher's EMA momentum at global step `it` of `total` (official
    /// `cosine_scheduler(momentum_teacher, 1, epochs, niter_per_ep)`).
    pub fn teacher_momentum(&self, it: u64, total: u64) -> f64 {
        let base = self.dino.momentum_teacher;
        1.0 + 0.5 * (base - 1.0) * (1.0 + (std::f64::consts::PI * it as f64 / total.max(1) as f64).cos())
    }
}

/// The DINO loss of one step (official `DINOLoss.forward`, without the centre update).
///
/// # Shapes
/// `student: [ncrops * B, K]`, `teacher: [2 * B, K]`, `center: [1, K]` -> scalar
pub fn dino_loss(student: &Tensor, teacher: &Tensor, center: &Tensor, ncrops: i64, student_temp: f64, teacher_temp: f64) -> Tensor {
    let s = (student / student_temp).chunk(ncrops, 0);
    let t = ((teacher - center) / teacher_temp).softmax(-1, Kind::Float).detach().chunk(2, 0);
    let mut total: Option<Tensor> = None;
    let mut terms = 0;
    for (iq, q) in t.iter().enumerate() {
        for (v, sv) in s.iter().enumerate() {
            if v == iq {
                continue;
            }
            let l = (-q * sv.log_softmax(-1, Kind::Float)).sum_dim_intlist([-1i64].as_slice(), false, Kind::Float).mean(Kind::Float);
            total = Some(match total {
                Some(acc) => acc + l,
                None => l,
            });
            terms += 1;
        }
    }
    total.expect("at least two crops") / terms as f64
}

/// A backbone with its head (official `utils.MultiCropWrapper`).
#[derive(Debug)]
pub struct Network {
    /// The ViT (`backbone.*`).
    pub backbone: VisionTransformer,
    /// The head (`head.*`).
    pub head: DinoHead,
}

impl Network {
    fn new(store: &ParamStore, spec: &DinoSpec) -> Result<Self> {
        let root = store.root();
        let backbone = VisionTransformer::new(&root.sub("backbone"), &spec.backbone)?;
        let head = DinoHead::new(&root.sub("head"), &spec.head)?;
        Ok(Self { backbone, head })
    }

    /// `MultiCropWrapper.forward`: consecutive crops of one side run through the backbone
    /// together, the class-token outputs are concatenated in crop order, then the head.
    ///
    /// # Shapes
    /// each crop `[B, 3, S_v, S_v]` -> (`[n * B, D]` backbone, `[n * B, K]` head)
    pub fn forward(&self, crops: &[Tensor]) -> (Tensor, Tensor) {
        self.forward_keep(crops, &[])
    }

    /// [`Self::forward`] with stochastic depth of given draws: `keep[g]` for the `g`-th run
    /// of crops of one side ([`side_groups`]), one entry per block
    /// ([`VisionTransformer::forward_cls_keep`]); empty: no stochastic depth (the teacher).
    ///
    /// # Shapes
    /// each crop `[B, 3, S_v, S_v]`, `keep[g]`'s masks `[n_g * B]` -> (`[n * B, D]`, `[n * B, K]`)
    pub fn forward_keep(&self, crops: &[Tensor], keep: &[Vec<Option<Keep>>]) -> (Tensor, Tensor) {
        let outs: Vec<Tensor> = side_groups(crops)
            .into_iter()
            .enumerate()
            .map(|(g, (start, end))| {
                let x = Tensor::cat(&crops[start..end], 0);
                match keep.get(g) {
                    Some(k) => self.backbone.forward_cls_keep(&x, k),
                    None => self.backbone.forward_cls(&x),
                }
            })
            .collect();
        let feats = Tensor::cat(&outs, 0);
        let logits = self.head.forward(&feats);
        (feats, logits)
    }
}

/// The runs of consecutive crops of one side, `(start, end)` (`MultiCropWrapper`'s
/// `idx_crops`: each run goes through the backbone as one batch).
pub fn side_groups(crops: &[Tensor]) -> Vec<(usize, usize)> {
    let mut groups = Vec::new();
    let mut start = 0;
    while start < crops.len() {
        let side = crops[start].size()[3];
        let mut end = start + 1;
        while end < crops.len() && crops[end].size()[3] == side {
            end += 1;
        }
        groups.push((start, end));
        start = end;
    }
    groups
}

/// What one step computed (for the parity replay).
#[derive(Debug)]
pub struct DinoForward {
    /// The teacher's backbone outputs on the global crops `[2B, D]`.
    pub teacher_backbone: Tensor,
    /// The teacher's head outputs `[2B, K]`.
    pub teacher: Tensor,
    /// The student's backbone outputs on every crop `[ncrops B, D]`.
    pub student_backbone: Tensor,
    /// The student's head outputs `[ncrops B, K]`.
    pub student: Tensor,
    /// The loss.
    pub loss: Tensor,
}

/// The DINO recipe.
#[derive(Debug)]
pub struct Dino {
    /// The student's parameters (`backbone.*`, `head.*`).
    pub student_store: ParamStore,
    /// The teacher's parameters (same names, no gradient).
    pub teacher_store: ParamStore,
    /// `center` `[1, K]`.
    pub center_store: ParamStore,
    /// The student.
    pub student: Network,
    /// The teacher.
    pub teacher: Network,
    /// The centre of the teacher's outputs.
    pub center: Tensor,
    /// AdamW over the student's trainable tensors.
    pub optimizer: AdamW,
    spec: DinoSpec,
    device: Device,
    /// (epoch, global step, total steps) of the coming step.
    progress: (u64, u64, u64),
    grad_sync: Option<Box<dyn GradSync>>,
    modules: Modules,
    ema_pairs: Vec<(Tensor, Tensor)>,
    /// Restored from a checkpoint, the frozen steps not yet taken off the last layer's count.
    restored: bool,
    /// The run's seed (the stochastic-depth draws' key).
    seed: u64,
    /// The coming step's epoch and dataset indices ([`Recipe::set_samples`]).
    samples: Option<(u64, Vec<usize>)>,
}

/// Whether a student parameter belongs to the last layer (`utils.cancel_gradients_last_layer`
/// matches `"last_layer" in name`).
fn is_last_layer(name: &str) -> bool {
    name.contains("last_layer")
}

impl Dino {
    /// Student, teacher (a copy of the student) and centre (zeros), with the official
    /// initialisation under torch's generator seeded with `seed`.
    ///
    /// # Errors
    /// An invalid shape, or libtorch's.
    pub fn new(spec: &DinoSpec, seed: u64, device: Device) -> Result<Self> {
        if !spec.backbone.cls_token || !spec.backbone.learned_pos_embed {
            return Err(Error::Config("DINO's backbone has a class token and a learnt position table".into()));
        }
        let patch = spec.backbone.patch_size;
        if spec.dino.local_crops > 0 && (spec.dino.local_size < patch || !spec.dino.local_size.is_multiple_of(patch)) {
            return Err(Error::Config(format!(
                "dino local-size {} is not a multiple of the patch size {patch}: write a local-size the patch divides",
                spec.dino.local_size
            )));
        }
        // (the language refuses it too; a spec built by hand may not have been checked)
        if spec.dino.local_crops > 0 && spec.dino.local_size > spec.backbone.image_size {
            return Err(Error::Config(format!(
                "dino local-size {} is larger than the {} px global crops: the local crops are the small views (write a local-size of at most {})",
                spec.dino.local_size, spec.backbone.image_size, spec.backbone.image_size
            )));
        }
        tch::manual_seed(seed as i64);
        let student_store = ParamStore::new(device);
        let student = Network::new(&student_store, spec)?;
        // official ViT init: Linear trunc_normal(.02) / zero bias and LayerNorm one / zero
        // (what VisionTransformer::new does); the patch embedding is a Conv2d, which DINO's
        // `_init_weights` leaves at PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        tch::no_grad(|| -> Result<()> {
            let w = &student.backbone.patch_embed.weight;
            let fan_in: i64 = w.size()[1..].iter().product();
            let bound = 1.0 / (fan_in as f64).sqrt();
            let _ = w.shallow_clone().f_uniform_(-bound, bound)?;
            let _ = student.backbone.patch_embed.bias.shallow_clone().f_uniform_(-bound, bound)?;
            Ok(())
        })?;
        let teacher_store = ParamStore::new(device);
        let teacher = Network::new(&teacher_store, spec)?;
        teacher_store.copy_from(&student_store)?;
        teacher_store.freeze();
        let center_store = ParamStore::new(device);
        let center = center_store.root().add("center", Tensor::f_zeros([1, spec.head.out_dim as i64], (Kind::Float, device))?, false)?;
        let modules = Modules::new(vec![("student", student_store.clone()), ("teacher", teacher_store.clone()), ("dino_loss", center_store.clone())]);
        let optimizer = AdamW::new(modules.trainable(&["student"]), spec.betas, spec.eps)?;
        let teacher_named: HashMap<String, Tensor> = teacher_store.named().into_iter().collect();
        let ema_pairs = student_store
            .named()
            .into_iter()
            .map(|(n, s)| (s, teacher_named[&n].shallow_clone()))
            .collect();
        Ok(Self {
            student_store,
            teacher_store,
            center_store,
            student,
            teacher,
            center,
            optimizer,
            spec: spec.clone(),
            device,
            progress: (0, 0, 1),
            grad_sync: None,
            modules,
            ema_pairs,
            restored: false,
            seed,
            samples: None,
        })
    }

    /// The recipe for an experiment.
    ///
    /// # Errors
    /// An invalid shape or schedule setting, or libtorch's.
    pub fn for_experiment(exp: &Experiment, device: Device, _rank: u64, _world: u64) -> Result<Self> {
        if exp.ipe_scale != 1.0 {
            return Err(Error::Config(format!(
                "ipe-scale {} stretches the lr and wd schedules, but DINO's schedules (teacher momentum and temperature too) span the run's own steps: remove `ipe-scale` from this DINO experiment",
                exp.ipe_scale
            )));
        }
        let mut spec = DinoSpec::from_experiment(exp);
        spec.bf16 = ijepa_engine::precision::uses_bf16(exp.precision, device);
        Self::new(&spec, exp.seed, device)
    }

    /// The spec it was built from.
    pub fn spec(&self) -> &DinoSpec {
        &self.spec
    }

    /// Sets (epoch, global step, total steps) for the next step (the trait's
    /// `set_progress`, public for the parity replay).
    pub fn set_position(&mut self, epoch: u64, global_step: u64, total_steps: u64) {
        self.progress = (epoch, global_step, total_steps.max(1));
    }

    /// The forward pass of both networks and the loss (no centre update).
    ///
    /// # Errors
    /// Fewer than two crops, or libtorch's.
    pub fn forward(&self, crops: &[Tensor]) -> Result<DinoForward> {
        if crops.len() < 2 {
            return Err(Error::Config(format!("DINO needs two global crops per image, got {} view(s)", crops.len())));
        }
        let temp = self.spec.teacher_temp(self.progress.0);
        let keep = self.student_keep(crops)?;
        autocast::bf16(self.device, self.spec.bf16, || {
            let (teacher_backbone, teacher) = tch::no_grad(|| self.teacher.forward(&crops[..2]));
            let (student_backbone, student) = self.student.forward_keep(crops, &keep);
            let (teacher, student) = (teacher.to_kind(Kind::Float), student.to_kind(Kind::Float));
            let loss = dino_loss(&student, &teacher, &self.center, crops.len() as i64, self.spec.dino.student_temp, temp);
            DinoForward { teacher_backbone, teacher, student_backbone, student, loss }
        })
    }

    /// The student's stochastic-depth draws for `crops` (official `DropPath` in each block
    /// of rate `drop_path_rate * i / (depth - 1)`, one draw per image, view and branch), one
    /// list per run of crops of one side ([`side_groups`]); empty when no block drops.
    ///
    /// Each image's draws come from its own generator, keyed by the run's seed, the epoch,
    /// the image's dataset index ([`Recipe::set_samples`]) and the view, never from a shared
    /// one: two ranks of batch B draw for each image what one process of batch 2B draws for
    /// it, and a resumed run draws what the uninterrupted one did. Without indices (bench,
    /// tests) the key is the global step and the image's place in the batch.
    ///
    /// # Shapes
    /// each crop `[B, 3, S_v, S_v]` -> per run of `n_g` crops of one side, per block, masks
    /// `[n_g * B]`
    ///
    /// # Errors
    /// Indices of another number of images than the batch's, or libtorch's (the masks' copy to
    /// the device).
    pub fn student_keep(&self, crops: &[Tensor]) -> Result<Vec<Vec<Option<Keep>>>> {
        let depth = self.spec.backbone.depth;
        let rates = drop_path_rates(self.spec.dino.drop_path_rate, depth);
        let Some(first) = crops.first() else { return Ok(Vec::new()) };
        if rates.iter().all(|&r| r <= 0.0) {
            return Ok(Vec::new());
        }
        let b = first.size()[0] as usize;
        // (which key, its time word, each image's word)
        let (tag, time, images): (u64, u64, Vec<u64>) = match &self.samples {
            Some((epoch, idx)) if idx.len() == b => (1, *epoch, idx.iter().map(|&i| i as u64).collect()),
            // keyed by place, the draws would depend on the ranks' split of the batch
            Some((_, idx)) => {
                return Err(Error::Train(format!(
                    "DINO's stochastic depth: the step was given the dataset indices of {} images for a batch of {b}",
                    idx.len()
                )))
            }
            None => (0, self.progress.1, (0..b as u64).collect()),
        };
        side_groups(crops)
            .into_iter()
            .map(|(start, end)| {
                // u[block][branch][row], rows in the batch order of the concatenated views
                let rows = (end - start) * b;
                let mut u = vec![[Vec::with_capacity(rows), Vec::with_capacity(rows)]; depth];
                for view in start..end {
                    for &image in &images {
                        let mut rng = Rng::derive(self.seed, Stream::DropPath, &[tag, time, image, view as u64]);
                        for block in u.iter_mut() {
                            block[0].push(rng.uniform());
                            block[1].push(rng.uniform());
                        }
                    }
                }
                rates
                    .iter()
                    .zip(&u)
                    .map(|(&rate, [attn, mlp])| match rate > 0.0 {
                        true => Keep::from_uniforms(rate, attn, mlp, self.device).map(Some).map_err(Error::from),
                        false => Ok(None),
                    })
                    .collect()
            })
            .collect()
    }

    /// One training step: forward, backward, per-parameter clipping, the frozen last layer,
    /// AdamW, the teacher's EMA and the centre's update. Returns the forward pass and the
    /// loss (mean over ranks).
    ///
    /// # Errors
    /// libtorch's, or the gradient synchronisation's.
    pub fn train_step(&mut self, crops: &[Tensor], hyper: Hyper) -> Result<(DinoForward, f64)> {
        self.optimizer.zero_grad()?;
        let fwd = self.forward(crops)?;
        let loss = backward_sync(&fwd.loss, self.grad_sync.as_mut())?;
        let clip = self.spec.dino.clip_grad;
        if clip > 0.0 {
            tch::no_grad(|| -> Result<()> {
                for s in &self.optimizer.slots {
                    let mut g = s.param.grad();
                    if !g.defined() {
                        continue;
                    }
                    let norm = g.f_norm()?.f_double_value(&[])?;
                    let coef = clip / (norm + 1e-6);
                    if coef < 1.0 {
                        let _ = g.f_mul_scalar_(coef)?;
                    }
                }
                Ok(())
            })?;
        }
        let frozen = (self.progress.0 as usize) < self.spec.dino.freeze_last_layer;
        self.optimizer.step_skipping(hyper.lr, hyper.wd, &|name| frozen && is_last_layer(name))?;
        let m = self.spec.teacher_momentum(self.progress.1, self.progress.2);
        ema_update(&self.ema_pairs, m)?;
        tch::no_grad(|| -> Result<()> {
            // the mean over the global batch: each rank's mean, averaged over the ranks (the
            // official `dist.all_reduce(batch_center)` then the division by the world size)
            let batch_center = fwd.teacher.f_mean_dim([0i64].as_slice(), true, Kind::Float)?;
            if let Some(sync) = self.grad_sync.as_mut() {
                sync.average(&batch_center)?;
            }
            let cm = self.spec.dino.center_momentum;
            let mut c = self.center.shallow_clone();
            let _ = c.f_mul_scalar_(cm)?;
            let _ = c.f_add_(&batch_center.f_mul_scalar(1.0 - cm)?)?;
            Ok(())
        })?;
        Ok((fwd, loss))
    }

    /// After a restore: the last layer's AdamW step count excludes the frozen steps (torch's
    /// per-parameter `step`).
    fn fix_frozen_steps(&mut self, steps_per_epoch: u64) {
        let frozen = steps_per_epoch * self.spec.dino.freeze_last_layer as u64;
        for s in self.optimizer.slots.iter_mut().filter(|s| is_last_layer(&s.name)) {
            s.steps = s.steps.saturating_sub(frozen);
        }
    }
}

/// The multi-crop transform of DINO for a data block and its settings.
///
/// # Errors
/// Invalid crop settings, naming the crop.
pub fn multi_crop(data: &DataConfig, d: &DinoConfig) -> Result<MultiCrop> {
    MultiCrop::dino(&MultiCropCfg {
        global_size: data.crop_size,
        global_scale: d.global_scale,
        local_crops: d.local_crops,
        local_size: d.local_size,
        local_scale: d.local_scale,
        exact: data.exact_decode,
        filter: ijepa_engine::data::filter(data.interpolation),
    })
}

impl Recipe for Dino {
    type Extras = ();

    fn name(&self) -> &'static str {
        "dino"
    }

    /// `main_dino.py` reads `lr_schedule[it]` and `wd_schedule[it]` with `it` from 0.
    fn first_schedule_step(&self) -> usize {
        0
    }

    /// Its cosine has no floor at the final rate (`cosine_scheduler`).
    fn lr_final_floor(&self) -> bool {
        false
    }

    /// `cosine_scheduler`'s warm-up is `np.linspace(0, peak, W)`.
    fn linspace_warmup(&self) -> bool {
        true
    }

    fn device(&self) -> Device {
        self.device
    }

    fn collate(&self) -> Collate<()> {
        Arc::new(|_, _, _| Ok(()))
    }

    fn step(&mut self, images: &Tensor, extras: &(), hyper: Hyper) -> Result<StepStats> {
        self.step_views(std::slice::from_ref(images), extras, hyper)
    }

    fn step_views(&mut self, views: &[Tensor], _extras: &(), hyper: Hyper) -> Result<StepStats> {
        let temp = self.spec.teacher_temp(self.progress.0);
        let m = self.spec.teacher_momentum(self.progress.1, self.progress.2);
        let step = self.train_step(views, hyper);
        // the indices were this step's: a later step without its own is keyed by place
        self.samples = None;
        let (_, loss) = step?;
        Ok(StepStats { loss, values: vec![temp, m] })
    }

    fn train_transform(&self, data: &DataConfig) -> Result<Arc<dyn SampleTransform>> {
        // DINO's multi-crop has its own augmentations: the data block's are not read (the
        // file's checks say so, `ijepa_dsl::recipes::unread_augmentations_written`; said here
        // too, it was said twice by `run` and once more by each rank of `launch`)
        Ok(Arc::new(multi_crop(data, &self.spec.dino)?))
    }

    fn set_samples(&mut self, epoch: u64, indices: &[usize]) {
        self.samples = Some((epoch, indices.to_vec()));
    }

    fn set_progress(&mut self, epoch: u64, global_step: u64, total_steps: u64) {
        self.set_position(epoch, global_step, total_steps);
        if std::mem::take(&mut self.restored) {
            // the first step after a resume: the steps per epoch are known now
            let per_epoch = total_steps / self.spec.epochs.max(1) as u64;
            self.fix_frozen_steps(per_epoch);
        }
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        self.modules.state()
    }

    fn optimizer_state(&self) -> (Vec<(String, Tensor)>, u64) {
        ijepa_engine::recipe::optimizer_state(&self.optimizer)
    }

    fn restore(&mut self, tensors: &HashMap<String, Tensor>, optimizer_step: u64, origin: &Path) -> Result<()> {
        self.modules.restore(tensors, origin)?;
        ijepa_engine::recipe::restore_optimizer(&mut self.optimizer, tensors, optimizer_step, origin)?;
        self.restored = true;
        Ok(())
    }

    fn num_params(&self) -> i64 {
        self.modules.num_trainable(&["student"])
    }

    fn trainable(&self) -> Vec<Tensor> {
        self.optimizer.params()
    }

    fn set_grad_sync(&mut self, sync: Box<dyn GradSync>) {
        self.grad_sync = Some(sync);
    }

    fn feature_encoders(&self) -> Vec<(&'static str, &VisionTransformer)> {
        vec![("teacher", &self.teacher.backbone), ("student", &self.student.backbone)]
    }

    fn stat_names(&self) -> &'static [&'static str] {
        &["teacher_temp", "teacher_momentum"]
    }

    fn feature_module(&self) -> &'static str {
        "teacher.backbone"
    }

    fn bf16(&self) -> bool {
        self.spec.bf16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DinoSpec {
        let exp = {
            let mut e = Experiment::with_defaults("t");
            e.recipe = "dino".into();
            e.encoder.embed_dim = 32;
            e.encoder.depth = 2;
            e.encoder.num_heads = 2;
            e.encoder.patch_size = 4;
            e.data.crop_size = 16;
            e.epochs = 4;
            e.dino = DinoConfig { out_dim: 64, hidden_dim: 48, bottleneck_dim: 16, local_crops: 2, local_size: 8, warmup_teacher_temp_epochs: 3, warmup_teacher_temp: 0.04, teacher_temp: 0.07, ..Default::default() };
            e
        };
        DinoSpec::from_experiment(&exp)
    }

    #[test]
    fn schedules_follow_the_official_formulas() {
        let s = spec();
        // np.linspace(0.04, 0.07, 3) then 0.07
        let temps: Vec<f64> = (0..5).map(|e| s.teacher_temp(e)).collect();
        for (t, want) in temps.iter().zip([0.04, 0.055, 0.07, 0.07, 0.07]) {
            assert!((t - want).abs() < 1e-12, "{temps:?}");
        }
        assert!((s.teacher_momentum(0, 100) - 0.996).abs() < 1e-12);
        assert!((s.teacher_momentum(50, 100) - 0.998).abs() < 1e-12);
        assert!(s.teacher_momentum(99, 100) > 0.99999);
    }

    #[test]
    fn a_step_trains_the_student_moves_the_teacher_and_freezes_the_last_layer() {
        let mut d = Dino::new(&spec(), 0, Device::Cpu).unwrap();
        let views: Vec<Tensor> = [16, 16, 8, 8].iter().map(|&s| Tensor::randn([3, 3, s, s], (Kind::Float, Device::Cpu))).collect();
        let v_before = d.student.head.weight_v.copy();
        let q_before = d.student.backbone.blocks[0].attn.qkv.weight.copy();
        let t_before = d.teacher.backbone.blocks[0].attn.qkv.weight.copy();
        d.set_position(0, 0, 8);
        let stats = d.step_views(&views, &(), Hyper { lr: 1e-3, wd: 0.04, momentum: 0.0 }).unwrap();
        assert!(stats.loss.is_finite() && stats.loss > 0.0);
        // epoch 0 < freeze-last-layer 1: the prototypes do not move; the backbone does
        assert!(d.student.head.weight_v.equal(&v_before));
        assert!(!d.student.backbone.blocks[0].attn.qkv.weight.equal(&q_before));
        assert!(!d.teacher.backbone.blocks[0].attn.qkv.weight.equal(&t_before));
        assert!(d.center.abs().sum(Kind::Float).double_value(&[]) > 0.0, "the centre moved");
        let last = d.optimizer.slots.iter().find(|s| s.name.contains("last_layer")).unwrap();
        assert_eq!(last.steps, 0);
        // weight_g is fixed (norm_last_layer): not optimised at all
        assert!(!d.optimizer.slots.iter().any(|s| s.name.ends_with("weight_g")));
        d.set_position(1, 2, 8);
        d.step_views(&views, &(), Hyper { lr: 1e-3, wd: 0.04, momentum: 0.0 }).unwrap();
        assert!(!d.student.head.weight_v.equal(&v_before), "epoch 1 trains the last layer");
        let names: Vec<String> = d.state().into_iter().map(|(n, _)| n).collect();
        for want in ["student.backbone.cls_token", "student.backbone.pos_embed", "student.head.mlp.4.weight", "teacher.head.last_layer.weight_v", "dino_loss.center"] {
            assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
        }
    }

    #[test]
    fn the_students_stochastic_depth_is_drawn_per_image_not_per_place_in_a_batch() {
        let mut s = spec();
        s.dino.drop_path_rate = 0.5;
        let mut d = Dino::new(&s, 0, Device::Cpu).unwrap();
        // two global views of 16 px, two local ones of 8 px: two runs of one side
        let views = |b: i64| -> Vec<Tensor> { [16, 16, 8, 8].iter().map(|&side| Tensor::zeros([b, 3, side, side], (Kind::Float, Device::Cpu))).collect() };
        let values = |t: &Tensor| Vec::<f32>::try_from(t).unwrap();
        // one process holding images 3, 8, 11 and 40; a rank holding 11 and 40 of the same batch
        d.set_samples(2, &[3, 8, 11, 40]);
        let all = d.student_keep(&views(4)).unwrap();
        d.set_samples(2, &[11, 40]);
        let part = d.student_keep(&views(2)).unwrap();
        assert_eq!((all.len(), all[0].len()), (2, 2));
        // rates linspace(0, 0.5, 2): the first block drops nothing
        assert!(all.iter().chain(&part).all(|g| g[0].is_none() && g[1].is_some()));
        for g in 0..2 {
            let (a, p) = (all[g][1].as_ref().unwrap(), part[g][1].as_ref().unwrap());
            assert_eq!(a.rate, 0.5);
            for (mask_all, mask_part) in [(values(&a.attn), values(&p.attn)), (values(&a.mlp), values(&p.mlp))] {
                // rows view by view, the images in batch order within each view
                assert_eq!(mask_all.len(), 8);
                for view in 0..2 {
                    assert_eq!(mask_all[view * 4 + 2..view * 4 + 4], mask_part[view * 2..view * 2 + 2], "group {g}");
                }
            }
        }
        // another epoch draws anew; over many images half of each branch is dropped
        let images: Vec<usize> = (0..2000).collect();
        d.set_samples(0, &images);
        let epoch0 = d.student_keep(&views(2000)).unwrap();
        d.set_samples(1, &images);
        let epoch1 = d.student_keep(&views(2000)).unwrap();
        let attn0 = values(&epoch0[0][1].as_ref().unwrap().attn);
        assert_ne!(attn0, values(&epoch1[0][1].as_ref().unwrap().attn));
        let kept = attn0.iter().sum::<f32>() / attn0.len() as f32;
        assert!((kept - 0.5).abs() < 0.03, "kept {kept}");
        // the two branches draw apart
        assert_ne!(attn0, values(&epoch0[0][1].as_ref().unwrap().mlp));
        // indices of another batch are an error, not draws keyed by place
        d.set_samples(0, &[1, 2, 3]);
        let e = d.student_keep(&views(4)).unwrap_err().to_string();
        assert!(e.contains("the dataset indices of 3 images for a batch of 4"), "{e}");
        // no rate, no draws: the student runs as the teacher does
        s.dino.drop_path_rate = 0.0;
        assert!(Dino::new(&s, 0, Device::Cpu).unwrap().student_keep(&views(4)).unwrap().is_empty());
    }

    #[test]
    fn ipe_scale_is_refused_by_name() {
        let mut e = Experiment::with_defaults("t");
        e.recipe = "dino".into();
        e.ipe_scale = 1.25;
        let err = Dino::for_experiment(&e, Device::Cpu, 0, 1).unwrap_err().to_string();
        assert!(err.contains("ipe-scale 1.25"), "{err}");
        // (a distributed run is not refused: tests/distributed.rs trains one on two ranks)
    }

    #[test]
    fn a_one_layer_head_is_named_as_the_official_nn_linear() {
        let mut s = spec();
        s.head.nlayers = 1;
        let d = Dino::new(&s, 0, Device::Cpu).unwrap();
        let names: Vec<String> = d.student_store.named().into_iter().map(|(n, _)| n).filter(|n| n.starts_with("head.")).collect();
        assert_eq!(names, ["head.mlp.weight", "head.mlp.bias", "head.last_layer.weight_g", "head.last_layer.weight_v"]);
    }

    #[test]
    fn local_crops_interpolate_the_position_table() {
        let d = Dino::new(&spec(), 0, Device::Cpu).unwrap();
        let pe = d.student.backbone.interpolate_pos_encoding(8);
        assert_eq!(pe.size(), vec![1, 1 + 4, 32]);
        assert!(d.student.backbone.interpolate_pos_encoding(16).equal(&d.student.backbone.pos_embed));
    }
}
