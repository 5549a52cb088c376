//! The encoder `VisionTransformer`: patchify, add the fixed sin-cos position table, keep the
//! masked-in patches, blocks, final norm. I-JEPA's has no class token; MAE's
//! ([`VitConfig::cls_token`]) prepends a learnt `cls_token` (plus the table's extra first row,
//! zeros) after masking, as the official `forward_encoder` does.

use super::{apply_masks, block::{Block, Keep}, patch_embed::PatchEmbed};
use crate::error::{Error, Result};
use crate::model::{layer_norm::LayerNorm, pos_embed, Path};
use tch::Tensor;

/// Encoder shape (all sizes in pixels / channels).
#[derive(Debug, Clone, PartialEq)]
pub struct VitConfig {
    /// Square input side in pixels.
    pub image_size: usize,
    /// Patch side in pixels.
    pub patch_size: usize,
    /// Token width D.
    pub embed_dim: usize,
    /// Number of blocks.
    pub depth: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// MLP ratio (hidden = int(D * ratio)).
    pub mlp_ratio: f64,
    /// LayerNorm epsilon (1e-6).
    pub eps: f64,
    /// Apply the constructors' sqrt(2*layer) rescale of attn.proj/mlp.fc2.
    pub rescale_init: bool,
    /// A learnt class token before the patch tokens (MAE; I-JEPA: false). The position table
    /// then has one more row, first, of zeros (official `get_2d_sincos_pos_embed(cls_token=True)`).
    pub cls_token: bool,
    /// A learnt position table (DINO: `trunc_normal_(pos_embed, std=.02)`, trained, and
    /// interpolated bicubically for inputs of another size) instead of the fixed sin-cos one.
    pub learned_pos_embed: bool,
}

impl VitConfig {
    /// From the language's encoder block and the crop size.
    pub fn from_dsl(e: &ijepa_dsl::config::EncoderConfig, image_size: usize) -> Self {
        Self {
            image_size,
            patch_size: e.patch_size,
            embed_dim: e.embed_dim,
            depth: e.depth,
            num_heads: e.num_heads,
            mlp_ratio: e.mlp_ratio,
            eps: 1e-6,
            rescale_init: e.rescale_init,
            cls_token: false,
            learned_pos_embed: false,
        }
    }

    /// Patches per side.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// Patches per image.
    pub fn num_patches(&self) -> usize {
        self.grid() * self.grid()
    }

    /// MLP hidden width, `int(D * mlp_ratio)` as Python computes it.
    pub fn mlp_hidden(&self) -> usize {
        mlp_hidden(self.embed_dim, self.mlp_ratio)
    }

    /// Checks the shape constraints the model needs (also checked by the language).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.patch_size == 0 || !self.image_size.is_multiple_of(self.patch_size) {
            return bad(format!("patch size {} does not divide the image size {}", self.patch_size, self.image_size));
        }
        // (an edited fixture's `image_size 0` was blamed on its tensors' shapes, `depth 0` on
        // an unexpected key, and an `eps` of -1 replayed NaNs as a mismatch)
        if self.image_size == 0 {
            return bad("image size 0: an image holds at least one patch".into());
        }
        if self.depth == 0 {
            return bad("encoder depth 0: an encoder has at least one block".into());
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return bad(format!("layer-norm eps {}: must be a positive number", self.eps));
        }
        if self.num_heads == 0 || !self.embed_dim.is_multiple_of(self.num_heads) {
            return bad(format!("{} heads do not divide the width {}", self.num_heads, self.embed_dim));
        }
        if !self.embed_dim.is_multiple_of(4) && !self.learned_pos_embed {
            return bad(format!("the width {} must be a multiple of 4 (2-D sin-cos table)", self.embed_dim));
        }
        check_blocks("encoder", self.embed_dim, self.depth, self.mlp_ratio)
    }
}

/// The most blocks of a module (the largest ViTs have 48) and the widest layer (ViT-g's MLP is
/// 6,144 wide): a description past them (an edited fixture, an imported file) is refused
/// instead of allocating until the memory runs out.
pub const MAX_DEPTH: usize = 1024;
/// See [`MAX_DEPTH`].
pub const MAX_WIDTH: usize = 1 << 24;

/// A stack of `depth` blocks of `width` with MLPs of `int(width x mlp_ratio)`: at least one
/// wide, at most [`MAX_WIDTH`], and at most [`MAX_DEPTH`] blocks.
///
/// # Errors
/// [`Error::Config`] naming `module` and the value.
pub fn check_blocks(module: &str, width: usize, depth: usize, mlp_ratio: f64) -> Result<()> {
    let bad = |m: String| Err(Error::Config(m));
    if width == 0 || width > MAX_WIDTH {
        return bad(format!("{module} width {width}: must be in 1..={MAX_WIDTH}"));
    }
    if depth > MAX_DEPTH {
        return bad(format!("{module} depth {depth}: more than {MAX_DEPTH} blocks"));
    }
    // (a ratio that is no number saturates the cast: refused by the finiteness check)
    if !mlp_ratio.is_finite() || !(1..=MAX_WIDTH).contains(&mlp_hidden(width, mlp_ratio)) {
        return bad(format!("{module} mlp ratio {mlp_ratio}: the MLP would be int({width} x {mlp_ratio}) wide, not in 1..={MAX_WIDTH}"));
    }
    Ok(())
}

/// `int(dim * ratio)` as Python computes it: the float product, truncated (a tolerance added
/// to it made `int(180 * 0.7)` 126, not Python's 125, and refused the official checkpoint of
/// such a model). A ratio read back from a hidden width is [`mlp_ratio_of`]'s, which
/// round-trips.
pub fn mlp_hidden(dim: usize, ratio: f64) -> usize {
    (dim as f64 * ratio).floor() as usize
}

/// The MLP ratio of a block `dim` wide whose MLP is `hidden` wide, as read from a checkpoint's
/// shapes: `hidden / dim`, or the next float above it where the product rounds below `hidden`
/// (`mlp_hidden(dim, mlp_ratio_of(hidden, dim)) == hidden` for every width).
pub fn mlp_ratio_of(hidden: usize, dim: usize) -> f64 {
    let r = hidden as f64 / dim.max(1) as f64;
    if mlp_hidden(dim, r) < hidden {
        r.next_up()
    } else {
        r
    }
}

/// On a CPU, the most bytes a block's largest activation may take in one chunk of a forward
/// without gradients ([`VisionTransformer::forward_chunked`]). The memory-bound operators
/// (the copies of the attention's reshapes, GELU, the attention's batched products) slow
/// down once their tensors outgrow the cache: on a 2-core AMD EPYC (AVX2, 512 KiB L2 a core,
/// 32 MiB L3), fp32, a ViT 192x6 at 64 patches extracted 56-63 GFLOP/s in batches of 256
/// (50 MB MLP activations), 69-83 in batches of 128, 92-96 in batches of 32 (6 MB) and
/// 79-95 in batches of 8-16, and the official code's own forward at batch 64 spent 3x as
/// long in those operators as in chunks of 32. Smaller chunks cost little: the matrix
/// products keep hundreds of rows.
pub const CPU_CHUNK_BYTES: usize = 6 << 20;

/// This process's chunk budget (`ijepa bench --chunk-bytes`; 0: whole batches).
static CHUNK_BYTES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(CPU_CHUNK_BYTES);

/// Sets this process's budget for [`VisionTransformer::images_per_chunk`] on a CPU, in place
/// of [`CPU_CHUNK_BYTES`]; 0 runs whole batches (what `ijepa bench --chunk-bytes` compares).
pub fn set_cpu_chunk_bytes(bytes: usize) {
    CHUNK_BYTES.store(bytes, std::sync::atomic::Ordering::Relaxed);
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Chunks of at most `per_chunk` of `b` images (a multiple of `unit`, at least `unit`), as
/// even as that allows: 33 images at 32 a chunk are chunks of 17 and 16, not 32 and 1.
fn balanced(b: i64, per_chunk: i64, unit: i64) -> i64 {
    let unit = unit.max(1);
    let per = (per_chunk / unit * unit).max(unit);
    if per >= b {
        return b;
    }
    let n = (b + per - 1) / per;
    let even = (b + n - 1) / n;
    ((even + unit - 1) / unit * unit).min(b)
}

/// `f` over chunks of `per_chunk` of `x`'s rows (all at once: `None`, or at least as many as
/// `x` has), its outputs concatenated along the first dimension.
fn chunks_of(x: &Tensor, per_chunk: Option<i64>, f: impl Fn(&Tensor) -> Tensor) -> Tensor {
    match per_chunk {
        Some(c) if c < x.size()[0] => Tensor::cat(&x.split(c, 0).iter().map(&f).collect::<Vec<_>>(), 0),
        _ => f(x),
    }
}

/// The encoder.
#[derive(Debug)]
pub struct VisionTransformer {
    /// `patch_embed`
    pub patch_embed: PatchEmbed,
    /// `cls_token` `[1, 1, D]` (MAE), if the encoder has one.
    pub cls_token: Option<Tensor>,
    /// `pos_embed` [1, N, D], fixed.
    pub pos_embed: Tensor,
    /// `blocks.{i}`
    pub blocks: Vec<Block>,
    /// `norm`
    pub norm: LayerNorm,
    /// Its shape.
    pub cfg: VitConfig,
}

impl VisionTransformer {
    /// Registers every parameter under `p` with the official names and init.
    pub fn new(p: &Path, cfg: &VitConfig) -> Result<Self> {
        cfg.validate()?;
        let d = cfg.embed_dim as i64;
        let patch_embed = PatchEmbed::new(&p.sub("patch_embed"), 3, d, cfg.patch_size as i64)?;
        let cls_token = match cfg.cls_token {
            true => Some(p.add("cls_token", crate::model::init::official(&[1, 1, d], p.device())?, true)?),
            false => None,
        };
        let pos_embed = if cfg.learned_pos_embed {
            let rows = (cfg.num_patches() + usize::from(cfg.cls_token)) as i64;
            p.add("pos_embed", crate::model::init::official(&[1, rows, d], p.device())?, true)?
        } else {
            let table = pos_embed::sincos_2d(cfg.embed_dim, cfg.grid(), cfg.grid())?;
            let table = match cfg.cls_token {
                true => Tensor::f_cat(&[Tensor::f_zeros([1, 1, d], (tch::Kind::Float, tch::Device::Cpu))?, table], 1)?,
                false => table,
            };
            p.add("pos_embed", table, false)?
        };
        let blocks = (0..cfg.depth)
            .map(|i| Block::new(&p.sub("blocks").sub(i), d, cfg.num_heads as i64, cfg.mlp_hidden() as i64, cfg.eps))
            .collect::<Result<Vec<Block>, _>>()?;
        if cfg.rescale_init {
            for (i, b) in blocks.iter().enumerate() {
                b.rescale(i + 1)?;
            }
        }
        let norm = LayerNorm::new(&p.sub("norm"), d, cfg.eps)?;
        Ok(Self { patch_embed, cls_token, pos_embed, blocks, norm, cfg: cfg.clone() })
    }

    /// Encodes images, keeping only the patches of `masks` (None: all patches).
    ///
    /// # Shapes
    /// `x: [B, 3, H, W]`, each mask `[B, K]` -> `[n_masks * B, K (+1), D]` (or `[B, N (+1),
    /// D]` without masks; +1: the class token's row, when the encoder has one)
    pub fn forward(&self, x: &Tensor, masks: Option<&[Tensor]>) -> Tensor {
        let mut x = self.embed(x, masks);
        for b in &self.blocks {
            x = b.forward(&x);
        }
        self.norm.forward(&x)
    }

    /// [`Self::forward`] on all patches, run on a CPU in chunks of
    /// [`Self::images_per_chunk`] images and concatenated; the whole batch at once elsewhere.
    /// Each image's tokens are computed on their own (a product's rows are independent), so
    /// the values are those of one forward up to float32 rounding (to the last bit where we
    /// compared: the official model on MKL's fp32 products; a test checks them within float32
    /// rounding), on the same kernel as the whole batch ([`Self::kernel_unit`]). For forwards
    /// without gradients (the target encoder, feature extraction): with gradients, a chunked
    /// graph would also sum the weights' gradients in another order.
    ///
    /// # Shapes
    /// `x: [B, 3, H, W]` -> `[B, N (+1), D]`
    pub fn forward_chunked(&self, x: &Tensor) -> Tensor {
        self.chunked(x, |c| self.forward(c, None))
    }

    /// `f` over chunks of `x`'s images ([`Self::images_per_chunk`]), its outputs concatenated
    /// along the batch (every output of `f` must have the batch first).
    pub fn chunked(&self, x: &Tensor, f: impl Fn(&Tensor) -> Tensor) -> Tensor {
        let per = self.images_per_chunk(x.device()).map(|c| balanced(x.size()[0], c, self.kernel_unit()));
        chunks_of(x, per, f)
    }

    /// The tokens a block sees for an image: every patch, and the class token if any.
    fn tokens(&self) -> usize {
        self.cfg.num_patches() + usize::from(self.cls_token.is_some())
    }

    /// The fewest images whose tokens the dense layers' kernel takes as it takes a whole
    /// batch's: on oneDNN with one thread ([`crate::model::linear::product`]), rows in groups
    /// of 16 (others fall back to BLAS: a chunk would compute on another kernel than its
    /// batch); 1 elsewhere.
    fn kernel_unit(&self) -> i64 {
        if crate::products::current() != crate::products::Products::OneDnn || tch::get_num_threads() > 1 {
            return 1;
        }
        16 / gcd(self.tokens() as i64, 16)
    }

    /// Images per forward chunk on `device`: on a CPU, as many as keep a block's largest
    /// activation of the chunk (the MLP's hidden layer `[n, K, hidden]`, the attention's
    /// `[n, K, 3D]` qkv or its weights `[n, heads, K, K]`, counted in float32, for all K
    /// patches (+ class token) of an image) within [`CPU_CHUNK_BYTES`]
    /// ([`set_cpu_chunk_bytes`]), at least one; `None` (the whole batch) elsewhere, or with a
    /// budget of 0. [`Self::chunked`] evens the chunks out.
    pub fn images_per_chunk(&self, device: tch::Device) -> Option<i64> {
        self.images_within(device, CHUNK_BYTES.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// [`Self::images_per_chunk`] for a budget of `budget` bytes.
    fn images_within(&self, device: tch::Device, budget: usize) -> Option<i64> {
        if device != tch::Device::Cpu || budget == 0 {
            return None;
        }
        let k = self.tokens();
        let per_image = 4 * k * self.cfg.mlp_hidden().max(3 * self.cfg.embed_dim).max(self.cfg.num_heads * k);
        Some((budget / per_image.max(1)).max(1) as i64)
    }

    /// [`Self::forward`] on all patches with stochastic depth (fine-tuning): block `i` drops
    /// its residual branches at rate `drop_path[i]` ([`Block::forward_drop_path`]).
    ///
    /// # Shapes
    /// `x: [B, 3, H, W]` -> `[B, N (+1), D]`
    pub fn forward_drop_path(&self, x: &Tensor, drop_path: &[f64]) -> Tensor {
        let mut x = self.embed(x, None);
        for (i, b) in self.blocks.iter().enumerate() {
            x = b.forward_drop_path(&x, drop_path.get(i).copied().unwrap_or(0.0));
        }
        self.norm.forward(&x)
    }

    /// Patch embedding plus positions, the patches of `masks` kept, the class token (with its
    /// position row) prepended when the encoder has one.
    ///
    /// # Shapes
    /// `x: [B, 3, H, W]` -> `[n_masks * B, K (+1), D]`
    fn embed(&self, x: &Tensor, masks: Option<&[Tensor]>) -> Tensor {
        let n = self.cfg.num_patches() as i64;
        let x = self.patch_embed.forward(x);
        let x = match &self.cls_token {
            Some(_) => x + self.pos_embed.narrow(1, 1, n),
            None => x + &self.pos_embed,
        };
        let x = match masks {
            Some(m) => apply_masks(&x, m),
            None => x,
        };
        match &self.cls_token {
            Some(cls) => {
                let c = (cls + self.pos_embed.narrow(1, 0, 1)).expand([x.size()[0], -1, -1], false);
                Tensor::cat(&[c, x], 1)
            }
            None => x,
        }
    }

    /// The class token's output (after the final norm) for images of any side that the
    /// patch divides (official DINO `VisionTransformer.forward`: `prepare_tokens`, blocks,
    /// norm, `x[:, 0]`); a side other than the table's interpolates the position table
    /// ([`Self::interpolate_pos_encoding`]).
    ///
    /// # Shapes
    /// `x: [B, 3, H, H]` -> `[B, D]`
    pub fn forward_cls(&self, x: &Tensor) -> Tensor {
        self.forward_cls_keep(x, &[])
    }

    /// [`Self::forward_cls`] with stochastic depth of given draws (DINO's student): block `i`
    /// keeps its branches as `keep[i]` says ([`Block::forward_keep`]); a block with `None`,
    /// or past the end of `keep`, drops nothing.
    ///
    /// # Shapes
    /// `x: [B, 3, H, H]`, each [`Keep`]'s masks `[B]` -> `[B, D]`
    pub fn forward_cls_keep(&self, x: &Tensor, keep: &[Option<Keep>]) -> Tensor {
        let cls = self.cls_token.as_ref().expect("forward_cls needs an encoder with a class token");
        let side = x.size()[3];
        let t = self.patch_embed.forward(x);
        let b = t.size()[0];
        let mut x = Tensor::cat(&[cls.expand([b, -1, -1], false), t], 1) + self.interpolate_pos_encoding(side);
        for (i, blk) in self.blocks.iter().enumerate() {
            x = match keep.get(i) {
                Some(Some(k)) => blk.forward_keep(&x, k),
                _ => blk.forward(&x),
            };
        }
        self.norm.forward(&x).select(1, 0)
    }

    /// The position table (class row first) for square inputs of side `side` (official DINO
    /// `interpolate_pos_encoding`): the table itself at the trained size, otherwise its patch
    /// rows resized bicubically by the factor `(side / patch + 0.1) / grid` (the official
    /// `+ 0.1` against float error, passed to the kernel as its scale, as
    /// `F.interpolate(scale_factor=...)` does).
    ///
    /// # Shapes
    /// -> `[1, c + (side / patch)^2, D]`, `c` 1 with a class token, else 0
    pub fn interpolate_pos_encoding(&self, side: i64) -> Tensor {
        let g = self.cfg.grid() as i64;
        let p = self.cfg.patch_size as i64;
        let n_cls = i64::from(self.cls_token.is_some());
        if side / p == g {
            return self.pos_embed.shallow_clone();
        }
        let d = self.cfg.embed_dim as i64;
        let g0 = side / p;
        let scale = (g0 as f64 + 0.1) / g as f64;
        let patch = self.pos_embed.narrow(1, n_cls, g * g).reshape([1, g, g, d]).permute([0, 3, 1, 2]);
        let out_side = (g as f64 * scale).floor() as i64;
        let resized = patch.upsample_bicubic2d([out_side, out_side], false, scale, scale);
        let resized = resized.permute([0, 2, 3, 1]).reshape([1, -1, d]);
        match n_cls {
            1 => Tensor::cat(&[self.pos_embed.narrow(1, 0, 1), resized], 1),
            _ => resized,
        }
    }

    /// The patch tokens of an output of [`Self::forward`] or [`Self::forward_layers`] (the
    /// class token, if any, left out): what evaluations average.
    ///
    /// # Shapes
    /// `[B, K (+1), D]` -> `[B, K, D]`
    pub fn patch_tokens(&self, out: &Tensor) -> Tensor {
        match &self.cls_token {
            Some(_) => out.narrow(1, 1, out.size()[1] - 1),
            None => out.shallow_clone(),
        }
    }

    /// Outputs of every block for all patches (before the final norm, except the last which
    /// is normed) — used by evaluation to pool the last layers.
    pub fn forward_layers(&self, x: &Tensor) -> Vec<Tensor> {
        let mut x = self.embed(x, None);
        let mut outs = Vec::with_capacity(self.blocks.len());
        for (i, b) in self.blocks.iter().enumerate() {
            x = b.forward(&x);
            outs.push(if i + 1 == self.blocks.len() { self.norm.forward(&x) } else { x.shallow_clone() });
        }
        outs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn vit(image: usize, patch: usize, width: usize, heads: usize, cls: bool) -> VisionTransformer {
        let cfg = VitConfig {
            image_size: image,
            patch_size: patch,
            embed_dim: width,
            depth: 2,
            num_heads: heads,
            mlp_ratio: 4.0,
            eps: 1e-6,
            rescale_init: true,
            cls_token: cls,
            learned_pos_embed: false,
        };
        VisionTransformer::new(&crate::model::ParamStore::new(Device::Cpu).root(), &cfg).unwrap()
    }

    /// `int(dim * ratio)` as Python has it (`int(180 * 0.7)` is 125: the product is
    /// 125.99999999999999), ViT-g's 48/11 exact, and a ratio read back from a width gives it.
    #[test]
    fn the_mlp_width_is_pythons_and_a_ratio_read_back_round_trips() {
        assert_eq!(mlp_hidden(180, 0.7), 125);
        assert_eq!(mlp_hidden(90, 0.7), 62);
        assert_eq!(mlp_hidden(1408, 48.0 / 11.0), 6144);
        assert_eq!(mlp_hidden(192, 4.0), 768);
        for dim in 1..=1024 {
            for hidden in (1..=4 * dim + 3).step_by(7) {
                assert_eq!(mlp_hidden(dim, mlp_ratio_of(hidden, dim)), hidden, "{hidden} / {dim}");
            }
        }
    }

    #[test]
    fn a_chunk_holds_the_images_whose_largest_activation_fits_the_budget() {
        // 64 patches x 768 hidden x 4 bytes = 196,608 bytes an image: 32 in 6 MiB
        let v = vit(32, 4, 192, 3, false);
        assert_eq!(v.images_within(Device::Cpu, 6 << 20), Some(32));
        assert_eq!(v.images_within(Device::Cpu, 196_607), Some(1), "at least one image");
        assert_eq!(v.images_within(Device::Cpu, 0), None, "0: whole batches");
        assert_eq!(v.images_within(Device::Cuda(0), 6 << 20), None, "a GPU runs whole batches");
        // the class token counts, and the attention weights where they outgrow the MLP:
        // 65 tokens x 8 heads x 65 x 4 = 135,200 > 65 x 32 x 4
        let v = vit(32, 4, 8, 8, true);
        assert_eq!(v.images_within(Device::Cpu, 135_200 * 3 + 1), Some(3));
        // and the qkv where the MLP is narrower (ratio 2: 2D < 3D): 64 x 3 x 192 x 4 bytes
        let mut cfg = vit(32, 4, 192, 3, false).cfg;
        cfg.mlp_ratio = 2.0;
        let v = VisionTransformer::new(&crate::model::ParamStore::new(Device::Cpu).root(), &cfg).unwrap();
        assert_eq!(v.images_within(Device::Cpu, 147_456 * 5), Some(5));
    }

    #[test]
    fn chunks_are_even_and_in_whole_kernel_units() {
        assert_eq!(balanced(64, 32, 1), 32);
        assert_eq!(balanced(33, 32, 1), 17, "17 + 16, not 32 + 1");
        assert_eq!(balanced(20, 100, 1), 20, "one chunk");
        assert_eq!(balanced(64, 1, 1), 1);
        // 49 tokens an image: chunks of 16 images (784 rows, 49 groups of 16)
        assert_eq!(balanced(64, 41, 16), 32);
        assert_eq!(balanced(64, 5, 16), 16, "at least one unit");
        assert_eq!(balanced(10, 5, 16), 10, "a batch below the unit: whole");
        assert_eq!(gcd(49, 16), 1);
        assert_eq!(gcd(65, 16), 1);
        assert_eq!(gcd(196, 16), 4);
    }

    #[test]
    fn the_chunked_forward_gives_the_whole_batch_forward() {
        tch::manual_seed(0);
        let v = vit(16, 4, 32, 2, false);
        let x = Tensor::randn([7, 3, 16, 16], (Kind::Float, Device::Cpu));
        let whole = tch::no_grad(|| v.forward(&x, None));
        for (per, want_calls) in [(1, 7), (2, 4), (3, 3), (7, 1), (100, 1)] {
            let calls = std::cell::Cell::new(0);
            let chunked = tch::no_grad(|| {
                chunks_of(&x, Some(per), |c| {
                    calls.set(calls.get() + 1);
                    v.forward(c, None)
                })
            });
            assert_eq!(calls.get(), want_calls, "{per} a chunk");
            assert_eq!(chunked.size(), whole.size());
            // each image alone: rows of the products are independent (float32 rounding at most)
            let diff = (&chunked - &whole).abs().max().double_value(&[]);
            assert!(diff <= 1e-6, "{per} a chunk: off by {diff}");
        }
    }
}
