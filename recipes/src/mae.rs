//! MAE, masked autoencoders (He et al., CVPR 2022; official code facebookresearch/mae,
//! `models_mae.py` `MaskedAutoencoderViT`, `engine_pretrain.py`, `main_pretrain.py`).
//!
//! Per image, a random 75% of the patches is masked by sorting per-sample noise
//! ([`random_masking`]); the encoder (a ViT with a class token and a fixed sin-cos table) sees
//! only the visible patches; the decoder puts a shared mask token at every masked position,
//! restores the original order, adds its own fixed table and predicts every patch's pixels;
//! the loss is the mean squared error on the masked patches of the (optionally per-patch
//! normalised, `norm_pix_loss`) pixels. AdamW with betas (0.9, 0.95); no weight decay on
//! biases and 1-D tensors (timm's `add_weight_decay`; the class and mask tokens *are* decayed,
//! being 3-D). Parameter names are the official state dict's: the encoder's (`cls_token`,
//! `pos_embed`, `patch_embed.proj.*`, `blocks.*`, `norm.*`) and the decoder's
//! (`decoder_embed.*`, `mask_token`, `decoder_pos_embed`, `decoder_blocks.*`, `decoder_norm.*`,
//! `decoder_pred.*`); checkpoints prefix them with `encoder.` / `decoder.`.
//!
//! Initialisation as `initialize_weights`: xavier-uniform for every linear weight and for the
//! patch embedding seen as a matrix, zero biases (the patch embedding's keeps PyTorch's default
//! conv init), LayerNorms one/zero, class and mask tokens normal(0, 0.02).

use ijepa_dsl::config::{Experiment, Precision};
use ijepa_engine::autocast;
use ijepa_engine::error::{Error, Result};
use ijepa_engine::model::layer_norm::LayerNorm;
use ijepa_engine::model::linear::Linear;
use ijepa_engine::model::vit::block::Block;
use ijepa_engine::model::vit::encoder::mlp_hidden;
use ijepa_engine::model::vit::{VisionTransformer, VitConfig};
use ijepa_engine::model::{pos_embed, ParamStore, Path as ModelPath};
use ijepa_engine::optim::AdamW;
use ijepa_engine::recipe::{backward_step, Collate, GradSync, Hyper, Modules, Recipe, StepStats};
use ijepa_engine::rng::{Rng, Stream};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// The decoder's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct DecoderConfig {
    /// Patch grid side (image side / patch side).
    pub grid: usize,
    /// Patch side in pixels (the prediction is `patch^2 * 3` values per patch).
    pub patch_size: usize,
    /// The encoder's width.
    pub encoder_dim: usize,
    /// Decoder width (official 512).
    pub embed_dim: usize,
    /// Decoder blocks (official 8).
    pub depth: usize,
    /// Decoder heads (official 16).
    pub num_heads: usize,
    /// MLP ratio (official 4).
    pub mlp_ratio: f64,
    /// LayerNorm eps (official 1e-6).
    pub eps: f64,
}

impl DecoderConfig {
    /// Checks that the shape can be built.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting.
    pub fn validate(&self) -> Result<()> {
        if self.depth == 0 {
            return Err(Error::Config("decoder depth 0: a decoder has at least one block".into()));
        }
        if self.num_heads == 0 || !self.embed_dim.is_multiple_of(self.num_heads) {
            return Err(Error::Config(format!("decoder: {} heads do not divide the width {}", self.num_heads, self.embed_dim)));
        }
        if !self.embed_dim.is_multiple_of(4) {
            return Err(Error::Config(format!("decoder width {} must be a multiple of 4 (2-D sin-cos table)", self.embed_dim)));
        }
        // (a width of 0 reached libtorch: "from is out of bounds")
        ijepa_engine::model::vit::encoder::check_blocks("decoder", self.embed_dim, self.depth, self.mlp_ratio)
    }
}

/// The official decoder (the `decoder_*` half of `MaskedAutoencoderViT`).
#[derive(Debug)]
pub struct MaeDecoder {
    /// `decoder_embed`: encoder width -> decoder width.
    pub decoder_embed: Linear,
    /// `mask_token` `[1, 1, Dd]`.
    pub mask_token: Tensor,
    /// `decoder_pos_embed` `[1, 1 + L, Dd]`, fixed (first row zeros: the class token's).
    pub decoder_pos_embed: Tensor,
    /// `decoder_blocks.{i}`.
    pub decoder_blocks: Vec<Block>,
    /// `decoder_norm`.
    pub decoder_norm: LayerNorm,
    /// `decoder_pred`: decoder width -> `patch^2 * 3`.
    pub decoder_pred: Linear,
}

/// The fixed sin-cos table with a leading zero row for the class token
/// (`get_2d_sincos_pos_embed(dim, grid, cls_token=True)`).
fn table_with_cls(dim: usize, grid: usize) -> Result<Tensor> {
    let t = pos_embed::sincos_2d(dim, grid, grid)?;
    Ok(Tensor::f_cat(&[Tensor::f_zeros([1, 1, dim as i64], (Kind::Float, Device::Cpu))?, t], 1)?)
}

impl MaeDecoder {
    /// Registers the decoder's parameters under `p` (official names).
    ///
    /// # Errors
    /// An invalid shape, or libtorch's (e.g. when the weights cannot be allocated).
    pub fn new(p: &ModelPath, cfg: &DecoderConfig) -> Result<Self> {
        cfg.validate()?;
        let (d, dd) = (cfg.encoder_dim as i64, cfg.embed_dim as i64);
        let decoder_embed = Linear::new(&p.sub("decoder_embed"), d, dd)?;
        let mask_token = p.add("mask_token", Tensor::f_zeros([1, 1, dd], (Kind::Float, p.device()))?, true)?;
        let decoder_pos_embed = p.add("decoder_pos_embed", table_with_cls(cfg.embed_dim, cfg.grid)?, false)?;
        let hidden = mlp_hidden(cfg.embed_dim, cfg.mlp_ratio) as i64;
        let decoder_blocks = (0..cfg.depth)
            .map(|i| Block::new(&p.sub("decoder_blocks").sub(i), dd, cfg.num_heads as i64, hidden, cfg.eps))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let decoder_norm = LayerNorm::new(&p.sub("decoder_norm"), dd, cfg.eps)?;
        let out = (cfg.patch_size * cfg.patch_size * 3) as i64;
        let decoder_pred = Linear::new(&p.sub("decoder_pred"), dd, out)?;
        Ok(Self { decoder_embed, mask_token, decoder_pos_embed, decoder_blocks, decoder_norm, decoder_pred })
    }

    /// The official `forward_decoder`: embed, mask tokens at the masked positions, original
    /// order restored, positions, blocks, norm, pixel prediction; the class token dropped.
    ///
    /// # Shapes
    /// `latent: [B, 1 + K, D]`, `ids_restore: [B, L]` -> `[B, L, patch^2 * 3]`
    pub fn forward(&self, latent: &Tensor, ids_restore: &Tensor) -> Tensor {
        let x = self.decoder_embed.forward(latent);
        let (b, k1, dd) = (x.size()[0], x.size()[1], x.size()[2]);
        let l = ids_restore.size()[1];
        let mask_tokens = self.mask_token.repeat([b, l + 1 - k1, 1]);
        let rest = Tensor::cat(&[x.narrow(1, 1, k1 - 1), mask_tokens], 1);
        let rest = rest.gather(1, &ids_restore.unsqueeze(-1).repeat([1, 1, dd]), false);
        let mut x = Tensor::cat(&[x.narrow(1, 0, 1), rest], 1) + &self.decoder_pos_embed;
        for blk in &self.decoder_blocks {
            x = blk.forward(&x);
        }
        let x = self.decoder_pred.forward(&self.decoder_norm.forward(&x));
        x.narrow(1, 1, l)
    }
}

/// Which patches a step keeps, from per-sample noise (official `random_masking`).
#[derive(Debug)]
pub struct Masking {
    /// The kept patches, in noise order `[B, K]` (int64).
    pub ids_keep: Tensor,
    /// 0 kept, 1 masked, in patch order `[B, L]` (float32).
    pub mask: Tensor,
    /// The permutation back to patch order `[B, L]` (int64).
    pub ids_restore: Tensor,
}

pub use ijepa_dsl::config::len_keep;

/// What `ijepa masks` prints for an MAE experiment (the recipe's `MasksFn` entry): the grid
/// and how many patches the random mask keeps. There are no blocks to draw, so a PNG is refused.
///
/// # Errors
/// [`Error::Config`] when `query.png` asks for a drawing.
pub fn masks_report(exp: &Experiment, query: &ijepa_engine::recipe::MaskQuery) -> Result<String> {
    if query.png.is_some() {
        return Err(Error::Usage("--png draws I-JEPA's context and target masks; MAE's random mask has no blocks to draw".into()));
    }
    let g = exp.data.crop_size / exp.encoder.patch_size.max(1);
    let keep = len_keep(g * g, exp.mask.ratio);
    Ok(format!(
        "masks of {:?}: {g}x{g} patch grid, random per image: {keep} of {} patches visible, {} masked (ratio {})",
        exp.name,
        g * g,
        g * g - keep,
        exp.mask.ratio
    ))
}

/// The official per-sample masking: ascending noise order, the first `len_keep` kept.
///
/// # Shapes
/// `noise: [B, L]` (uniform in [0, 1)) -> [`Masking`]
pub fn random_masking(noise: &Tensor, mask_ratio: f64) -> Result<Masking> {
    let (n, l) = noise.size2()?;
    let keep = len_keep(l as usize, mask_ratio) as i64;
    let ids_shuffle = noise.f_argsort(1, false)?;
    let ids_restore = ids_shuffle.f_argsort(1, false)?;
    let ids_keep = ids_shuffle.f_narrow(1, 0, keep)?;
    let opts = (Kind::Float, noise.device());
    let sorted = Tensor::f_cat(&[Tensor::f_zeros([n, keep], opts)?, Tensor::f_ones([n, l - keep], opts)?], 1)?;
    let mask = sorted.f_gather(1, &ids_restore, false)?;
    Ok(Masking { ids_keep, mask, ids_restore })
}

/// Images to patch rows (official `patchify`, pixel order (p, q, c)).
///
/// # Shapes
/// `[B, 3, H, W]` -> `[B, (H/p)*(W/p), p*p*3]`
pub fn patchify(images: &Tensor, patch: i64) -> Tensor {
    let (b, c, h, w) = images.size4().expect("images are [B, 3, H, W]");
    let (gh, gw) = (h / patch, w / patch);
    images.reshape([b, c, gh, patch, gw, patch]).permute([0, 2, 4, 3, 5, 1]).reshape([b, gh * gw, patch * patch * c])
}

/// The regression target: patchified pixels, per patch normalised to zero mean and unit
/// (unbiased) variance when `norm_pix` (official `forward_loss`).
pub fn target(images: &Tensor, patch: i64, norm_pix: bool) -> Tensor {
    let t = patchify(images, patch);
    if !norm_pix {
        return t;
    }
    let mean = t.mean_dim(-1, true, Kind::Float);
    let var = t.var_dim(-1, true, true);
    (t - mean) / (var + 1e-6).sqrt()
}

/// Mean over the masked patches of the per-patch mean squared error.
///
/// # Shapes
/// `pred, target: [B, L, P]`, `mask: [B, L]` -> scalar
pub fn masked_mse(pred: &Tensor, target: &Tensor, mask: &Tensor) -> Tensor {
    let per_patch = (pred - target).square().mean_dim(-1, false, Kind::Float);
    (per_patch * mask).sum(Kind::Float) / mask.sum(Kind::Float)
}

/// Everything a MAE step is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct MaeSpec {
    /// The encoder (with a class token).
    pub encoder: VitConfig,
    /// The decoder.
    pub decoder: DecoderConfig,
    /// Fraction of the patches masked (official 0.75).
    pub mask_ratio: f64,
    /// Per-patch normalised pixel targets (official pretraining: on).
    pub norm_pix_loss: bool,
    /// AdamW betas (official (0.9, 0.95)).
    pub betas: (f64, f64),
    /// AdamW eps (1e-8).
    pub eps: f64,
    /// Forward under bf16 autocast.
    pub bf16: bool,
}

impl MaeSpec {
    /// The spec of an experiment: its encoder with a class token, its `decoder`, its
    /// `mask "random"` ratio, its optimiser's betas and eps.
    pub fn from_experiment(exp: &Experiment) -> Self {
        let encoder = encoder_config(exp);
        let d = &exp.decoder;
        let decoder = DecoderConfig {
            grid: encoder.grid(),
            patch_size: encoder.patch_size,
            encoder_dim: encoder.embed_dim,
            embed_dim: d.embed_dim,
            depth: d.depth,
            num_heads: d.num_heads,
            mlp_ratio: d.mlp_ratio,
            eps: 1e-6,
        };
        Self {
            encoder,
            decoder,
            mask_ratio: exp.mask.ratio,
            norm_pix_loss: d.norm_pix_loss,
            betas: exp.optimizer.betas,
            eps: exp.optimizer.eps,
            bf16: exp.precision == Precision::Bf16,
        }
    }
}

/// MAE's encoder for an experiment: the `encoder` node's ViT with a class token.
pub fn encoder_config(exp: &Experiment) -> VitConfig {
    VitConfig { cls_token: true, ..VitConfig::from_dsl(&exp.encoder, exp.data.crop_size) }
}

/// What one forward pass computed.
#[derive(Debug)]
pub struct MaeForward {
    /// The encoder's output on the visible patches `[B, 1 + K, D]`.
    pub latent: Tensor,
    /// The decoder's prediction `[B, L, p*p*3]`.
    pub pred: Tensor,
    /// 1 where masked `[B, L]`.
    pub mask: Tensor,
    /// The regression target `[B, L, p*p*3]`.
    pub target: Tensor,
    /// The loss (scalar).
    pub loss: Tensor,
}

/// The MAE recipe: encoder, decoder, AdamW, and the per-step masking noise.
#[derive(Debug)]
pub struct Mae {
    /// The encoder's parameters (official names).
    pub encoder_store: ParamStore,
    /// The decoder's parameters (official names).
    pub decoder_store: ParamStore,
    /// The encoder.
    pub encoder: VisionTransformer,
    /// The decoder.
    pub decoder: MaeDecoder,
    /// AdamW over both.
    pub optimizer: AdamW,
    spec: MaeSpec,
    device: Device,
    /// (seed, rank, world size) of the noise draw (the per-rank batch is the loader's).
    noise_key: Option<(u64, u64, u64)>,
    grad_sync: Option<Box<dyn GradSync>>,
    last_loss: f64,
    modules: Modules,
}

/// The tag that separates MAE's noise draws from other `Stream::Mask` users.
const NOISE_TAG: u64 = 0x004d_4145; // "MAE"

/// xavier-uniform in place: U(-a, a), a = sqrt(6 / (fan_in + fan_out)) of `[out, in]`.
fn xavier_uniform_(t: &Tensor, fan_out: i64, fan_in: i64) -> Result<()> {
    let a = (6.0 / (fan_in + fan_out) as f64).sqrt();
    let _ = t.shallow_clone().f_uniform_(-a, a)?;
    Ok(())
}

impl Mae {
    /// Builds encoder and decoder with the official initialisation (torch RNG seeded with
    /// `seed`) and the optimiser.
    ///
    /// # Errors
    /// An invalid shape, or libtorch's.
    pub fn new(spec: &MaeSpec, seed: u64, device: Device) -> Result<Self> {
        if !spec.encoder.cls_token {
            return Err(Error::Config("MAE's encoder has a class token".into()));
        }
        let n = spec.encoder.num_patches();
        let keep = len_keep(n, spec.mask_ratio);
        let grid = spec.encoder.grid();
        // (a NaN ratio is neither in range nor out of it: refused as keeping nothing)
        if spec.mask_ratio.is_nan() || spec.mask_ratio >= 1.0 || keep == 0 {
            return Err(Error::Config(format!("mask ratio {} keeps no patch of the {n} ({grid} x {grid})", spec.mask_ratio)));
        }
        if spec.mask_ratio <= 0.0 || keep == n {
            return Err(Error::Config(format!(
                "mask ratio {} masks no patch of the {n} ({grid} x {grid}): the loss, over the masked patches, would be 0/0",
                spec.mask_ratio
            )));
        }
        tch::manual_seed(seed as i64);
        let encoder_store = ParamStore::new(device);
        let decoder_store = ParamStore::new(device);
        let encoder = VisionTransformer::new(&encoder_store.root(), &spec.encoder)?;
        let decoder = MaeDecoder::new(&decoder_store.root(), &spec.decoder)?;
        let m = Self::initialize(encoder_store, decoder_store, encoder, decoder, spec, device)?;
        Ok(m)
    }

    fn initialize(
        encoder_store: ParamStore,
        decoder_store: ParamStore,
        encoder: VisionTransformer,
        decoder: MaeDecoder,
        spec: &MaeSpec,
        device: Device,
    ) -> Result<Self> {
        tch::no_grad(|| -> Result<()> {
            // the patch embedding as a matrix [D, 3 p p]; its bias keeps the conv default
            let w = &encoder.patch_embed.weight;
            let (d, fan_in) = (w.size()[0], w.size()[1..].iter().product::<i64>());
            xavier_uniform_(w, d, fan_in)?;
            let b = 1.0 / (fan_in as f64).sqrt();
            let _ = encoder.patch_embed.bias.shallow_clone().f_uniform_(-b, b)?;
            for store in [&encoder_store, &decoder_store] {
                for (name, t) in store.named() {
                    if name.ends_with(".weight") && t.dim() == 2 {
                        xavier_uniform_(&t, t.size()[0], t.size()[1])?;
                    } else if name.ends_with(".bias") && !name.starts_with("patch_embed.") {
                        let _ = t.shallow_clone().f_zero_()?;
                    }
                }
            }
            for tok in [encoder.cls_token.as_ref(), Some(&decoder.mask_token)].into_iter().flatten() {
                let _ = tok.shallow_clone().f_normal_(0.0, 0.02)?;
            }
            Ok(())
        })?;
        let modules = Modules::new(vec![("encoder", encoder_store.clone()), ("decoder", decoder_store.clone())]);
        let optimizer = AdamW::new(modules.trainable(&["encoder", "decoder"]), spec.betas, spec.eps)?;
        Ok(Self {
            encoder_store,
            decoder_store,
            encoder,
            decoder,
            optimizer,
            spec: spec.clone(),
            device,
            noise_key: None,
            grad_sync: None,
            last_loss: f64::NAN,
            modules,
        })
    }

    /// The recipe for an experiment: models seeded by the experiment, bf16 where the
    /// experiment's precision resolves to it on `device`, the masking noise keyed by (seed,
    /// rank) so W ranks draw what one process of their total batch draws.
    ///
    /// # Errors
    /// An invalid shape, or libtorch's.
    pub fn for_experiment(exp: &Experiment, device: Device, rank: u64, world: u64) -> Result<Self> {
        let mut spec = MaeSpec::from_experiment(exp);
        spec.bf16 = ijepa_engine::precision::uses_bf16(exp.precision, device);
        let mut m = Self::new(&spec, exp.seed, device)?;
        m.set_noise_key(exp.seed, rank, world);
        Ok(m)
    }

    /// The spec it was built from.
    pub fn spec(&self) -> &MaeSpec {
        &self.spec
    }

    /// Sets the key of the per-step noise: (experiment seed, rank, world size). The loader
    /// deals a global batch's images to the ranks in turn (rank r's row i is row `i * W + r`
    /// of one process's batch of W*B), and each image's noise is keyed by that global row, so
    /// W ranks of batch B draw what one process of batch W*B draws. (It was keyed by `r * B +
    /// i`, the rows' order by rank: two ranks masked every image otherwise than one process.)
    pub fn set_noise_key(&mut self, seed: u64, rank: u64, world: u64) {
        self.noise_key = Some((seed, rank, world.max(1)));
    }

    /// The forward pass (official `forward`) with the masking of `noise`.
    ///
    /// # Shapes
    /// `images: [B, 3, H, W]`, `noise: [B, L]`
    ///
    /// # Errors
    /// libtorch's.
    pub fn forward(&self, images: &Tensor, noise: &Tensor) -> Result<MaeForward> {
        let m = random_masking(noise, self.spec.mask_ratio)?;
        autocast::bf16(self.device, self.spec.bf16, || {
            let latent = self.encoder.forward(images, Some(std::slice::from_ref(&m.ids_keep)));
            let pred = self.decoder.forward(&latent, &m.ids_restore);
            let target = target(images, self.spec.encoder.patch_size as i64, self.spec.norm_pix_loss);
            let loss = masked_mse(&pred.to_kind(Kind::Float), &target, &m.mask);
            MaeForward { latent, pred, mask: m.mask.shallow_clone(), target, loss }
        })
    }

    /// Backward and the AdamW step with `hyper.lr` / `hyper.wd` (the momentum is unused).
    ///
    /// # Errors
    /// libtorch's, or the gradient synchronisation's.
    pub fn train_step(&mut self, images: &Tensor, noise: &Tensor, hyper: Hyper) -> Result<MaeForward> {
        self.optimizer.zero_grad()?;
        let fwd = self.forward(images, noise)?;
        self.last_loss = backward_step(&fwd.loss, self.grad_sync.as_mut(), &mut self.optimizer, hyper.lr, hyper.wd)?;
        Ok(fwd)
    }
}

/// The noise of one rank's batch: uniform [0, 1) float32, keyed by (seed, epoch, step, global
/// sample index); `(rank, world)` places the batch's rows in the global batch as the loader
/// deals them (rank r's row i is global row `i * world + r`).
pub fn draw_noise(seed: u64, epoch: u64, step: u64, (rank, world): (u64, u64), batch: usize, num_patches: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(batch * num_patches);
    for i in 0..batch as u64 {
        let mut rng = Rng::derive(seed, Stream::Mask, &[NOISE_TAG, epoch, step, i * world.max(1) + rank]);
        out.extend((0..num_patches).map(|_| rng.uniform() as f32));
    }
    out
}

/// One batch's masking noise, as the loader threads collate it.
#[derive(Debug, Clone)]
pub struct Noise {
    /// `[B * L]`, row-major.
    pub values: Vec<f32>,
    /// B.
    pub batch: usize,
    /// L.
    pub num_patches: usize,
}

impl Noise {
    /// As a `[B, L]` tensor on `device`.
    ///
    /// # Errors
    /// libtorch's.
    pub fn tensor(&self, device: Device) -> Result<Tensor> {
        Ok(Tensor::f_from_slice(&self.values)?.f_view([self.batch as i64, self.num_patches as i64])?.f_to_device(device)?)
    }
}

impl Recipe for Mae {
    type Extras = Noise;

    fn name(&self) -> &'static str {
        "mae"
    }

    /// `engine_pretrain.py` sets the rate at `data_iter_step / len(data_loader) + epoch`
    /// before each step: from 0 (the first step's rate is the warm-up's start, 0).
    fn first_schedule_step(&self) -> usize {
        0
    }

    /// Its cosine has no floor at the final rate (`adjust_learning_rate`).
    fn lr_final_floor(&self) -> bool {
        false
    }

    fn device(&self) -> Device {
        self.device
    }

    fn collate(&self) -> Collate<Noise> {
        let (seed, rank, world) = self.noise_key.unwrap_or((0, 0, 1));
        let l = self.spec.encoder.num_patches();
        Arc::new(move |epoch, step, batch| {
            Ok(Noise { values: draw_noise(seed, epoch, step, (rank, world), batch, l), batch, num_patches: l })
        })
    }

    fn step(&mut self, images: &Tensor, noise: &Noise, hyper: Hyper) -> Result<StepStats> {
        let noise = noise.tensor(self.device)?;
        self.train_step(images, &noise, hyper)?;
        let loss = self.last_loss;
        let l = self.spec.encoder.num_patches();
        let keep = len_keep(l, self.spec.mask_ratio);
        Ok(StepStats { loss, values: vec![keep as f64, (l - keep) as f64] })
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        self.modules.state()
    }

    fn optimizer_state(&self) -> (Vec<(String, Tensor)>, u64) {
        ijepa_engine::recipe::optimizer_state(&self.optimizer)
    }

    fn restore(&mut self, tensors: &HashMap<String, Tensor>, optimizer_step: u64, origin: &Path) -> Result<()> {
        self.modules.restore(tensors, origin)?;
        ijepa_engine::recipe::restore_optimizer(&mut self.optimizer, tensors, optimizer_step, origin)
    }

    fn num_params(&self) -> i64 {
        self.modules.num_trainable(&["encoder", "decoder"])
    }

    fn trainable(&self) -> Vec<Tensor> {
        self.optimizer.params()
    }

    fn set_grad_sync(&mut self, sync: Box<dyn GradSync>) {
        self.grad_sync = Some(sync);
    }

    fn feature_encoders(&self) -> Vec<(&'static str, &VisionTransformer)> {
        vec![("encoder", &self.encoder)]
    }

    fn stat_names(&self) -> &'static [&'static str] {
        &["visible", "masked"]
    }

    fn bf16(&self) -> bool {
        self.spec.bf16
    }
}

/// MAE's cost model for `ijepa estimate` ([`ijepa_engine::estimate`]), as the official
/// `forward` runs: the patch embedding over every patch, the encoder (with its class token)
/// over the visible ones, the decoder over all of them (embedding, blocks, the pixel
/// prediction), all with backward.
///
/// # Errors
/// None today (the signature is the registry's).
pub fn cost(exp: &Experiment) -> Result<ijepa_engine::estimate::StepCost> {
    use ijepa_engine::estimate::{patch_embed_flops, Stack, StepCost};
    let e = &exp.encoder;
    let (d, p) = (e.embed_dim as f64, e.patch_size as f64);
    let grid = exp.data.crop_size / e.patch_size.max(1);
    let n = grid * grid;
    let keep = len_keep(n, exp.mask.ratio) as f64;
    let n = n as f64;
    let enc = Stack::new(e.embed_dim, e.depth, e.num_heads, e.mlp_ratio);
    let dc = &exp.decoder;
    let dec = Stack::new(dc.embed_dim, dc.depth, dc.num_heads, dc.mlp_ratio);
    let dd = dec.width;
    let pixels = 3.0 * p * p;
    // patch embedding, class token, blocks + norm; decoder_embed, mask_token, blocks +
    // decoder_norm, decoder_pred; the sin-cos position tables are fixed buffers
    let encoder_params = pixels * d + d + d + enc.params();
    let decoder_params = d * dd + dd + dd + dec.params() + dd * pixels + pixels;
    let forward = patch_embed_flops(n, p, d) + enc.flops(keep + 1.0) + 2.0 * (keep + 1.0) * d * dd + dec.flops(n + 1.0) + 2.0 * (n + 1.0) * dd * pixels;
    Ok(StepCost {
        trainable_params: encoder_params + decoder_params,
        frozen_params: 0.0,
        frozen_what: String::new(),
        // (the patch embedding's backward is its weights' gradient alone: the images need none)
        flops_per_image: 3.0 * forward - patch_embed_flops(n, p, d),
        activation_elems_per_image: n * d + enc.activations(keep + 1.0) + dec.activations(n + 1.0),
        tokens: format!("{n:.0} patches; encoder on {keep:.0} visible + class token, decoder on {:.0}", n + 1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> MaeSpec {
        let encoder = VitConfig {
            image_size: 16,
            patch_size: 4,
            embed_dim: 32,
            depth: 2,
            num_heads: 2,
            mlp_ratio: 4.0,
            eps: 1e-6,
            rescale_init: false,
            cls_token: true,
            learned_pos_embed: false,
        };
        let decoder = DecoderConfig { grid: 4, patch_size: 4, encoder_dim: 32, embed_dim: 16, depth: 1, num_heads: 2, mlp_ratio: 4.0, eps: 1e-6 };
        MaeSpec { encoder, decoder, mask_ratio: 0.75, norm_pix_loss: true, betas: (0.9, 0.95), eps: 1e-8, bf16: false }
    }

    #[test]
    fn masking_keeps_the_lowest_noise_and_restores_the_order() {
        let noise = Tensor::from_slice(&[0.9f32, 0.1, 0.5, 0.3, 0.2, 0.8, 0.7, 0.4]).view([1, 8]);
        let m = random_masking(&noise, 0.75).unwrap();
        assert_eq!(Vec::<i64>::try_from(m.ids_keep.view([-1])).unwrap(), vec![1, 4]);
        assert_eq!(Vec::<f32>::try_from(m.mask.view([-1])).unwrap(), vec![1., 0., 1., 1., 0., 1., 1., 1.]);
        let shuffle = noise.argsort(1, false);
        let back = shuffle.gather(1, &m.ids_restore, false);
        assert_eq!(Vec::<i64>::try_from(back.view([-1])).unwrap(), (0..8).collect::<Vec<i64>>());
    }

    /// W ranks of batch B draw the noise one process of batch W*B draws for the same images:
    /// the loader deals the global batch's rows in turn (rank r's row i is global row i*W + r),
    /// and each row's noise follows its global row (it followed r*B + i: two ranks masked the
    /// images otherwise than one process, where I-JEPA's and DINO's matched).
    #[test]
    fn ranks_draw_the_noise_of_their_rows_of_the_global_batch() {
        let (b, l) = (3usize, 5usize);
        let global = draw_noise(7, 1, 4, (0, 1), 2 * b, l);
        for rank in 0..2u64 {
            let part = draw_noise(7, 1, 4, (rank, 2), b, l);
            for i in 0..b {
                let g = i * 2 + rank as usize;
                assert_eq!(part[i * l..(i + 1) * l], global[g * l..(g + 1) * l], "rank {rank} row {i}");
            }
        }
    }

    #[test]
    fn patchify_orders_pixels_as_the_official_einsum() {
        // [1, 3, 4, 4], patch 2: patch (0, 1) holds rows 0-1, columns 2-3, channels last
        let img = Tensor::arange(48, (Kind::Float, Device::Cpu)).view([1, 3, 4, 4]);
        let p = patchify(&img, 2);
        assert_eq!(p.size(), vec![1, 4, 12]);
        let row: Vec<f32> = p.get(0).get(1).try_into().unwrap();
        // (p, q, c): (0,0,c) = 2 + 16c, (0,1,c) = 3 + 16c, (1,0,c) = 6 + 16c, (1,1,c) = 7 + 16c
        assert_eq!(row, vec![2., 18., 34., 3., 19., 35., 6., 22., 38., 7., 23., 39.]);
    }

    #[test]
    fn a_step_learns_and_names_are_official() {
        let spec = tiny();
        let mut m = Mae::new(&spec, 0, Device::Cpu).unwrap();
        let names: Vec<String> = m.state().into_iter().map(|(n, _)| n).collect();
        for n in ["encoder.cls_token", "encoder.pos_embed", "encoder.patch_embed.proj.weight", "encoder.blocks.1.mlp.fc2.bias", "decoder.mask_token", "decoder.decoder_pos_embed", "decoder.decoder_blocks.0.attn.qkv.weight", "decoder.decoder_pred.weight"] {
            assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
        }
        let pe: Vec<f32> = m.encoder_store.get("pos_embed").unwrap().get(0).get(0).try_into().unwrap();
        assert!(pe.iter().all(|&v| v == 0.0), "the class token's position row is zeros");
        tch::manual_seed(1);
        let images = Tensor::randn([4, 3, 16, 16], (Kind::Float, Device::Cpu));
        let noise = Tensor::from_slice(&draw_noise(0, 0, 0, (0, 1), 4, 16)).view([4, 16]);
        let hyper = Hyper { lr: 1e-3, wd: 0.05, momentum: 0.0 };
        let first = m.train_step(&images, &noise, hyper).unwrap().loss.double_value(&[]);
        let mut last = first;
        for _ in 0..30 {
            last = m.train_step(&images, &noise, hyper).unwrap().loss.double_value(&[]);
        }
        assert!(last < 0.8 * first, "loss {first} -> {last}");
        assert_eq!(m.num_params(), m.trainable().iter().map(|t| t.numel() as i64).sum::<i64>());
    }
}
