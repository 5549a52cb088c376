//! The I-JEPA recipe (official `src/train.py`, reference §3): a context encoder and a predictor
//! trained to regress the layer-normed outputs of an EMA target encoder at the target blocks.
//! Its own parts: the predictor ([`predictor`]), the mask samplers ([`mask`]: multi-block and
//! the paper's Table 6 alternatives) and the mask picture of `ijepa masks --png` ([`mask_png`]).

pub mod cost;
pub mod mask;
pub mod mask_png;
pub mod predictor;

pub use mask::{MaskBatch, MaskSampler, MultiBlock};
pub use predictor::{PredictorConfig, VisionTransformerPredictor};

use ijepa_dsl::config::{Experiment, LossKind, Precision, TargetConfig, TargetKind, TargetMasking};
use ijepa_engine::autocast;
use ijepa_engine::error::{Error, Result};
use ijepa_engine::model::vit::{apply_masks, repeat_interleave_batch, VisionTransformer, VitConfig};
use ijepa_engine::model::ParamStore;
use ijepa_engine::optim::{ema_update, AdamW};
use ijepa_engine::recipe::{backward_step, Collate, GradSync, Hyper, Modules, Recipe, StepStats};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tch::{Device, Reduction, Tensor};

/// Everything that defines the I-JEPA models and step, independent of data and schedules.
#[derive(Debug, Clone)]
pub struct IJepaSpec {
    /// Encoder shape.
    pub encoder: VitConfig,
    /// Predictor shape.
    pub predictor: PredictorConfig,
    /// Regression loss.
    pub loss: LossKind,
    /// The regression target (representations or pixels) and where the target encoder is
    /// masked (paper Tables 7 and 11).
    pub target: TargetConfig,
    /// bf16 autocast for the forward pass.
    pub bf16: bool,
    /// Adam betas.
    pub betas: (f64, f64),
    /// Adam epsilon.
    pub eps: f64,
}

/// The checkpoint module I-JEPA's evaluations read: the target encoder (as the paper), or,
/// with pixel targets, which leave none, the encoder (the registry's entry and the built
/// recipe both answer with this).
pub fn feature_module(target: TargetKind) -> &'static str {
    match target {
        TargetKind::Representation => "target_encoder",
        TargetKind::Pixels => "encoder",
    }
}

impl IJepaSpec {
    /// The spec of an experiment.
    pub fn from_experiment(exp: &Experiment) -> Self {
        let encoder = VitConfig::from_dsl(&exp.encoder, exp.data.crop_size);
        let out_dim = match exp.target.kind {
            TargetKind::Representation => encoder.embed_dim,
            TargetKind::Pixels => encoder.patch_size * encoder.patch_size * 3,
        };
        let predictor = PredictorConfig {
            grid: encoder.grid(),
            encoder_dim: encoder.embed_dim,
            out_dim,
            embed_dim: exp.predictor.embed_dim,
            depth: exp.predictor.depth,
            num_heads: exp.predictor.num_heads.unwrap_or(encoder.num_heads),
            mlp_ratio: exp.predictor.mlp_ratio,
            eps: 1e-6,
            rescale_init: exp.encoder.rescale_init,
        };
        Self {
            encoder,
            predictor,
            loss: exp.loss,
            target: exp.target,
            bf16: exp.precision == Precision::Bf16,
            betas: exp.optimizer.betas,
            eps: exp.optimizer.eps,
        }
    }
}

/// Outputs of the forward pass of one step.
#[derive(Debug)]
pub struct Forward {
    /// The regression targets at the target blocks `[n_tgt*n_ctx*B, K_t, D]`: layer-normed
    /// target-encoder features (or per-patch normalised pixels, `D = p*p*3`).
    pub target: Tensor,
    /// Context-encoder output `[n_ctx*B, K_c, D]`.
    pub context: Tensor,
    /// Predictor output `[n_tgt*n_ctx*B, K_t, D]` (D as in `target`).
    pub prediction: Tensor,
    /// The loss (scalar).
    pub loss: Tensor,
}

/// The I-JEPA models, optimiser and step.
#[derive(Debug)]
pub struct IJepa {
    /// Context-encoder parameters (official names).
    pub encoder_store: ParamStore,
    /// Predictor parameters.
    pub predictor_store: ParamStore,
    /// Target-encoder parameters (EMA of the encoder; no gradients); none for pixel targets.
    pub target_store: Option<ParamStore>,
    /// Context encoder.
    pub encoder: VisionTransformer,
    /// Predictor.
    pub predictor: VisionTransformerPredictor,
    /// Target encoder (none for pixel targets).
    pub target_encoder: Option<VisionTransformer>,
    /// AdamW over encoder and predictor.
    pub optimizer: AdamW,
    ema_pairs: Vec<(Tensor, Tensor)>,
    spec: IJepaSpec,
    /// (sampler, seed, rank, world size).
    sampler: Option<(MaskSampler, u64, u64, u64)>,
    device: Device,
    /// Gradient averaging of a distributed run, and the rank-averaged loss of the last step.
    grad_sync: Option<Box<dyn GradSync>>,
    /// The loss of the last step (the mean over ranks when distributed).
    last_loss: f64,
    /// The three models under their checkpoint prefixes (the shared duties).
    modules: Modules,
    /// Of the images this process trained, those whose masks the sampler relaxed (context
    /// overlapping targets) and all ([`MaskBatch::relaxed`]), with the first and last global
    /// step (1-based) they were of: what [`Recipe::notes`] says.
    relaxed: (u64, u64, Option<(u64, u64)>),
    /// The global step of the next step (from [`Recipe::set_progress`]).
    at: u64,
}


impl IJepa {
    /// Builds the models with the official init (torch RNG seeded with `seed`), the target
    /// encoder as a copy of the encoder (none for pixel targets), and the optimiser.
    pub fn new(spec: &IJepaSpec, seed: u64, device: Device) -> Result<Self> {
        tch::manual_seed(seed as i64);
        let encoder_store = ParamStore::new(device);
        let predictor_store = ParamStore::new(device);
        let encoder = VisionTransformer::new(&encoder_store.root(), &spec.encoder)?;
        let predictor = VisionTransformerPredictor::new(&predictor_store.root(), &spec.predictor)?;
        let mut modules = vec![("encoder", encoder_store.clone()), ("predictor", predictor_store.clone())];
        let (mut target_store, mut target_encoder, mut ema_pairs) = (None, None, Vec::new());
        if spec.target.kind == TargetKind::Representation {
            let store = ParamStore::new(device);
            target_encoder = Some(VisionTransformer::new(&store.root(), &spec.encoder)?);
            store.freeze();
            store.copy_from(&encoder_store)?;
            let target_map: HashMap<String, Tensor> = store.named().into_iter().collect();
            ema_pairs = encoder_store
                .trainable()
                .into_iter()
                .filter_map(|(n, t)| target_map.get(&n).map(|tt| (t, tt.shallow_clone())))
                .collect();
            modules.push(("target_encoder", store.clone()));
            target_store = Some(store);
        }
        let modules = Modules::new(modules);
        let optimizer = AdamW::new(modules.trainable(&["encoder", "predictor"]), spec.betas, spec.eps)?;
        Ok(Self {
            encoder_store,
            predictor_store,
            target_store,
            encoder,
            predictor,
            target_encoder,
            optimizer,
            ema_pairs,
            spec: spec.clone(),
            sampler: None,
            device,
            grad_sync: None,
            last_loss: f64::NAN,
            modules,
            relaxed: (0, 0, None),
            at: 0,
        })
    }

    /// The target encoder's parameters; an error for pixel targets, which build none.
    pub fn target_store(&self) -> Result<&ParamStore> {
        self.target_store.as_ref().ok_or_else(|| Error::Config("this I-JEPA regresses pixels: it has no target encoder".into()))
    }

    /// The recipe for an experiment: models plus its mask sampler, seeded by the experiment,
    /// drawing rank `rank`'s share of each global batch of `world` ranks
    /// ([`MaskSampler::sample_shard`]).
    pub fn for_experiment(exp: &Experiment, device: Device, rank: u64, world: u64) -> Result<Self> {
        let mut spec = IJepaSpec::from_experiment(exp);
        spec.bf16 = ijepa_engine::precision::uses_bf16(exp.precision, device);
        let sampler = MaskSampler::new(&exp.mask, exp.data.crop_size, exp.encoder.patch_size)?;
        let mut r = Self::new(&spec, exp.seed, device)?;
        r.sampler = Some((sampler, exp.seed, rank, world.max(1)));
        Ok(r)
    }

    /// The forward pass of a step (reference §3, steps 1-3), with gradients on the context path.
    ///
    /// # Shapes
    /// `images: [B, 3, H, W]`, `masks_enc`: n_ctx `[B, K_c]`, `masks_pred`: n_tgt `[B, K_t]`
    pub fn forward(&self, images: &Tensor, masks_enc: &[Tensor], masks_pred: &[Tensor]) -> Result<Forward> {
        autocast::bf16(self.device, self.spec.bf16, || {
            let b = images.size()[0];
            let n_ctx = masks_enc.len() as i64;
            let target = tch::no_grad(|| {
                let at_targets = match &self.target_encoder {
                    // the paper's Table 7: the per-patch normalised pixels of the target patches
                    None => apply_masks(&crate::mae::target(images, self.spec.encoder.patch_size as i64, true), masks_pred),
                    Some(t) => {
                        // Table 11's input masking: the target encoder sees only each target
                        // block's patches; the method: it encodes the whole image, then the
                        // target patches are gathered
                        let input = (self.spec.target.masking == TargetMasking::Input).then_some(masks_pred);
                        // (all patches: in cache-sized chunks on a CPU, the same values up to
                        // float32 rounding)
                        let h = match input {
                            Some(m) => t.forward(images, Some(m)),
                            None => t.forward_chunked(images),
                        };
                        let d = h.size()[2];
                        let h = h.layer_norm([d], None::<Tensor>, None::<Tensor>, 1e-5, true);
                        if input.is_some() { h } else { apply_masks(&h, masks_pred) }
                    }
                };
                repeat_interleave_batch(&at_targets, b, n_ctx)
            });
            let context = self.encoder.forward(images, Some(masks_enc));
            let prediction = self.predictor.forward(&context, masks_enc, masks_pred);
            let loss = match self.spec.loss {
                LossKind::SmoothL1 => prediction.smooth_l1_loss(&target, Reduction::Mean, 1.0),
                LossKind::L2 => prediction.mse_loss(&target, Reduction::Mean),
            };
            Forward { target, context, prediction, loss }
        })
    }

    /// Backward, AdamW step with `hyper.lr`/`hyper.wd`, EMA update with `hyper.momentum`.
    /// Returns the forward outputs (with gradients still on the parameters).
    pub fn train_step(&mut self, images: &Tensor, masks_enc: &[Tensor], masks_pred: &[Tensor], hyper: Hyper) -> Result<Forward> {
        self.optimizer.zero_grad()?;
        let fwd = self.forward(images, masks_enc, masks_pred)?;
        self.last_loss = backward_step(&fwd.loss, self.grad_sync.as_mut(), &mut self.optimizer, hyper.lr, hyper.wd)?;
        ema_update(&self.ema_pairs, hyper.momentum)?;
        Ok(fwd)
    }
}

impl Recipe for IJepa {
    type Extras = MaskBatch;

    fn name(&self) -> &'static str {
        "ijepa"
    }

    fn device(&self) -> Device {
        self.device
    }

    fn collate(&self) -> Collate<MaskBatch> {
        match &self.sampler {
            Some((sampler, seed, rank, world)) => {
                let (sampler, seed, rank, world) = (sampler.clone(), *seed, *rank, *world);
                Arc::new(move |epoch, step, batch| sampler.sample_shard(seed, epoch, step, rank, world, batch))
            }
            None => Arc::new(|_, _, _| Err(Error::Config("this I-JEPA instance has no mask sampler".into()))),
        }
    }

    fn step(&mut self, images: &Tensor, masks: &MaskBatch, hyper: Hyper) -> Result<StepStats> {
        let enc = masks.context_tensors(self.device);
        let pred = masks.target_tensors(self.device);
        self.train_step(images, &enc, &pred, hyper)?;
        // (the images of the steps trained: a batch drawn ahead and never trained is not one)
        let (relaxed, drawn, steps) = &mut self.relaxed;
        *relaxed += masks.relaxed as u64;
        *drawn += masks.drawn as u64;
        let step = self.at + 1;
        *steps = Some(steps.map_or((step, step), |(first, _)| (first, step)));
        let loss = self.last_loss;
        Ok(StepStats { loss, values: vec![masks.k_context as f64, masks.k_target as f64] })
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        self.modules.state()
    }

    fn notes(&self) -> Vec<String> {
        let (relaxed, drawn, Some((first, last))) = self.relaxed else { return Vec::new() };
        let Some((MaskSampler::MultiBlock(m) | MaskSampler::Block(m), ..)) = self.sampler.as_ref().filter(|_| relaxed > 0) else { return Vec::new() };
        let (gh, gw) = m.grid();
        let c = m.config();
        vec![format!(
            "masks: at steps {first}-{last} the context block overlapped its target(s) in {relaxed} of the {drawn} images trained ({:.2}%): no place \
             outside the {} target block(s) kept more than min-keep = {} patches of the {gh}x{gw} grid, so the sampler dropped constraints, as the \
             official sampler does (`ijepa masks FILE` gives the share before a run); smaller targets or context, or fewer targets, avoid it",
            100.0 * relaxed as f64 / drawn.max(1) as f64,
            c.n_targets,
            c.min_keep
        )]
    }

    fn set_progress(&mut self, _epoch: u64, global_step: u64, _total_steps: u64) {
        self.at = global_step;
    }

    fn optimizer_state(&self) -> (Vec<(String, Tensor)>, u64) {
        ijepa_engine::recipe::optimizer_state(&self.optimizer)
    }

    fn restore(&mut self, tensors: &HashMap<String, Tensor>, optimizer_step: u64, origin: &Path) -> Result<()> {
        self.modules.restore(tensors, origin)?;
        ijepa_engine::recipe::restore_optimizer(&mut self.optimizer, tensors, optimizer_step, origin)
    }

    fn num_params(&self) -> i64 {
        self.modules.num_trainable(&["encoder", "predictor"])
    }

    fn trainable(&self) -> Vec<Tensor> {
        self.optimizer.params()
    }

    fn set_grad_sync(&mut self, sync: Box<dyn GradSync>) {
        self.grad_sync = Some(sync);
    }

    fn feature_encoders(&self) -> Vec<(&'static str, &VisionTransformer)> {
        match &self.target_encoder {
            Some(t) => vec![("target", t), ("context", &self.encoder)],
            None => vec![("context", &self.encoder)],
        }
    }

    fn feature_module(&self) -> &'static str {
        feature_module(self.spec.target.kind)
    }

    fn stat_names(&self) -> &'static [&'static str] {
        &["context_len", "target_len"]
    }

    fn uses_momentum(&self) -> bool {
        self.target_encoder.is_some()
    }

    fn bf16(&self) -> bool {
        self.spec.bf16
    }
}

pub use ijepa_engine::recipe::prefixed as sub_map;
