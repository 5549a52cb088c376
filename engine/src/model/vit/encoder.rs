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

/// `int(dim * ratio)` with a tolerance for the float rounding of ratios such as 48/11.
pub fn mlp_hidden(dim: usize, ratio: f64) -> usize {
    let h = dim as f64 * ratio;
    (h + 1e-6).floor() as usize
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
    /// `x: [B, 3, H, W]`, each mask `[B, K]` -> `[n_masks * B, K, D]` (or `[B, N, D]`)
    pub fn forward(&self, x: &Tensor, masks: Option<&[Tensor]>) -> Tensor {
        let mut x = self.embed(x, masks);
        for b in &self.blocks {
            x = b.forward(&x);
        }
        self.norm.forward(&x)
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
    /// -> `[1, 1 + (side / patch)^2, D]`
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
