//! The predictor `VisionTransformerPredictor`: embeds context tokens to the predictor width,
//! appends one mask token (plus its position) per target patch, runs full attention over
//! [context, targets], and projects the target outputs back to the encoder width.

use ijepa_engine::model::vit::{apply_masks, block::Block, encoder::mlp_hidden, repeat_interleave_batch, VitConfig};
use ijepa_engine::checkpoint::import::{shape_of, shape_of_rank, StateDict};
use ijepa_engine::error::{Error, Result};
use ijepa_engine::model::{init, layer_norm::LayerNorm, linear::Linear, pos_embed, Path};
use std::path::Path as FsPath;
use tch::Tensor;

/// Predictor shape.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictorConfig {
    /// Patch grid side (same as the encoder's).
    pub grid: usize,
    /// Encoder width D (the input width).
    pub encoder_dim: usize,
    /// Output width: D for representation targets, `patch * patch * 3` for pixel targets.
    pub out_dim: usize,
    /// Predictor width Dp.
    pub embed_dim: usize,
    /// Number of predictor blocks.
    pub depth: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// MLP ratio.
    pub mlp_ratio: f64,
    /// LayerNorm epsilon.
    pub eps: f64,
    /// Constructors' residual rescale.
    pub rescale_init: bool,
}

impl PredictorConfig {
    /// Checks heads divide the width and the width suits the sin-cos table.
    pub fn validate(&self) -> Result<()> {
        // (a fixture's `predictor_depth 0` was blamed on an unexpected key)
        if self.depth == 0 {
            return Err(Error::Config("predictor depth 0: a predictor has at least one block".into()));
        }
        if self.num_heads == 0 || !self.embed_dim.is_multiple_of(self.num_heads) {
            return Err(Error::Config(format!(
                "predictor: {} heads do not divide the width {}",
                self.num_heads, self.embed_dim
            )));
        }
        if !self.embed_dim.is_multiple_of(4) {
            return Err(Error::Config(format!("predictor width {} must be a multiple of 4", self.embed_dim)));
        }
        ijepa_engine::model::vit::encoder::check_blocks("predictor", self.embed_dim, self.depth, self.mlp_ratio)
    }
}

/// The predictor.
#[derive(Debug)]
pub struct VisionTransformerPredictor {
    /// `predictor_embed` D -> Dp
    pub predictor_embed: Linear,
    /// `mask_token` [1, 1, Dp]
    pub mask_token: Tensor,
    /// `predictor_pos_embed` [1, N, Dp], fixed
    pub predictor_pos_embed: Tensor,
    /// `predictor_blocks.{i}`
    pub predictor_blocks: Vec<Block>,
    /// `predictor_norm`
    pub predictor_norm: LayerNorm,
    /// `predictor_proj` Dp -> D (or the pixels of a patch)
    pub predictor_proj: Linear,
}

impl VisionTransformerPredictor {
    /// Registers every parameter under `p` with the official names and init.
    pub fn new(p: &Path, cfg: &PredictorConfig) -> Result<Self> {
        cfg.validate()?;
        let (d, dp) = (cfg.encoder_dim as i64, cfg.embed_dim as i64);
        let predictor_embed = Linear::new(&p.sub("predictor_embed"), d, dp)?;
        let mask_token = p.add("mask_token", init::official(&[1, 1, dp], p.device())?, true)?;
        let predictor_pos_embed =
            p.add("predictor_pos_embed", pos_embed::sincos_2d(cfg.embed_dim, cfg.grid, cfg.grid)?, false)?;
        let hidden = mlp_hidden(cfg.embed_dim, cfg.mlp_ratio) as i64;
        let predictor_blocks = (0..cfg.depth)
            .map(|i| Block::new(&p.sub("predictor_blocks").sub(i), dp, cfg.num_heads as i64, hidden, cfg.eps))
            .collect::<Result<Vec<Block>, _>>()?;
        if cfg.rescale_init {
            for (i, b) in predictor_blocks.iter().enumerate() {
                b.rescale(i + 1)?;
            }
        }
        let predictor_norm = LayerNorm::new(&p.sub("predictor_norm"), dp, cfg.eps)?;
        let predictor_proj = Linear::new(&p.sub("predictor_proj"), dp, cfg.out_dim as i64)?;
        Ok(Self { predictor_embed, mask_token, predictor_pos_embed, predictor_blocks, predictor_norm, predictor_proj })
    }

    /// Predicts the target-patch representations from the context tokens.
    ///
    /// # Shapes
    /// `x: [n_ctx * B, K_ctx, D]`, `masks_x`: n_ctx masks `[B, K_ctx]`, `masks`: n_tgt masks
    /// `[B, K_tgt]` -> `[n_tgt * n_ctx * B, K_tgt, out_dim]`
    pub fn forward(&self, x: &Tensor, masks_x: &[Tensor], masks: &[Tensor]) -> Tensor {
        let b = x.size()[0] / masks_x.len() as i64;
        let x = self.predictor_embed.forward(x);
        let pos = self.predictor_pos_embed.repeat([b, 1, 1]);
        let x = x + apply_masks(&pos, masks_x);
        let n_ctx = x.size()[1];
        let pos_embs = repeat_interleave_batch(&apply_masks(&pos, masks), b, masks_x.len() as i64);
        let (rows, k) = (pos_embs.size()[0], pos_embs.size()[1]);
        let pred_tokens = self.mask_token.repeat([rows, k, 1]) + pos_embs;
        let x = x.repeat([masks.len() as i64, 1, 1]);
        let mut x = Tensor::cat(&[x, pred_tokens], 1);
        for blk in &self.predictor_blocks {
            x = blk.forward(&x);
        }
        let x = self.predictor_norm.forward(&x);
        let x = x.narrow(1, n_ctx, x.size()[1] - n_ctx);
        self.predictor_proj.forward(&x)
    }
}

impl PredictorConfig {
    /// The predictor shape of an (official or our) state dict; `path` names the file in
    /// errors. Its head count is in no tensor's shape: the encoder's (as in the official code)
    /// where it divides the predictor's width, else 1 (a run may give its predictor other
    /// heads: ours of 4 heads at width 64 beside a 3-head encoder was refused as "3 heads do
    /// not divide the width 64").
    ///
    /// # Errors
    /// A missing `predictor_embed.weight` or `predictor_blocks.0.mlp.fc1.weight`, or one of
    /// another rank.
    pub fn infer(sd: &StateDict, enc: &VitConfig, path: &FsPath) -> Result<Self> {
        let embed = shape_of_rank(sd, "predictor_embed.weight", 2, path)?;
        let depth = (0..).take_while(|i| sd.iter().any(|(k, _)| k.starts_with(&format!("predictor_blocks.{i}.")))).count();
        let hidden = shape_of_rank(sd, "predictor_blocks.0.mlp.fc1.weight", 2, path)?[0] as usize;
        let dp = embed[0] as usize;
        let out_dim = match shape_of(sd, "predictor_proj.weight", path) {
            Ok(_) => shape_of_rank(sd, "predictor_proj.weight", 2, path)?[0] as usize,
            Err(_) => enc.embed_dim,
        };
        let num_heads = if enc.num_heads > 0 && dp.is_multiple_of(enc.num_heads) { enc.num_heads } else { 1 };
        Ok(Self {
            grid: enc.grid(),
            encoder_dim: enc.embed_dim,
            out_dim,
            embed_dim: dp,
            depth,
            num_heads,
            mlp_ratio: ijepa_engine::model::vit::encoder::mlp_ratio_of(hidden, dp),
            eps: 1e-6,
            rescale_init: false,
        })
    }
}

