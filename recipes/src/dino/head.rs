//! The DINO projection head (official `vision_transformer.py` `DINOHead`, without batch
//! norm as DINO's ViTs use it): an MLP `mlp.0` -> GELU -> `mlp.2` -> GELU -> `mlp.4` (with
//! `nlayers` = 3) into the bottleneck, L2 normalisation, then the weight-normalised
//! prototypes `last_layer` (`weight_g` `[out, 1]`, fixed at 1 when `norm_last_layer`;
//! `weight_v` `[out, bottleneck]`; no bias).
//!
//! Initialisation as the official: the MLP's linear weights trunc_normal(std 0.02), biases
//! zero (`_init_weights`); `last_layer` is created after that, so `weight_v` keeps
//! `nn.Linear`'s default init, U(-1/sqrt(in), 1/sqrt(in)), and `weight_g` is filled with 1.

use ijepa_engine::error::{Error, Result};
use ijepa_engine::model::linear::Linear;
use ijepa_engine::model::Path as ModelPath;
use tch::{Kind, Tensor};

/// The head's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadConfig {
    /// Input width (the backbone's).
    pub in_dim: usize,
    /// Prototypes (`out_dim`).
    pub out_dim: usize,
    /// Hidden width of the MLP.
    pub hidden_dim: usize,
    /// Bottleneck width.
    pub bottleneck_dim: usize,
    /// Linear layers of the MLP (>= 1).
    pub nlayers: usize,
    /// `weight_g` fixed at 1 (not trained).
    pub norm_last_layer: bool,
}

/// `DINOHead`.
#[derive(Debug)]
pub struct DinoHead {
    /// `mlp.{0,2,4,..}`: the MLP's linear layers (`mlp` itself with one layer).
    pub mlp: Vec<Linear>,
    /// `last_layer.weight_g` `[out, 1]`.
    pub weight_g: Tensor,
    /// `last_layer.weight_v` `[out, bottleneck]`.
    pub weight_v: Tensor,
}

impl DinoHead {
    /// Registers the head under `p` (`p` is the `head` path).
    ///
    /// # Errors
    /// A zero width or layer count, or libtorch's.
    pub fn new(p: &ModelPath, cfg: &HeadConfig) -> Result<Self> {
        if cfg.nlayers == 0 || cfg.out_dim == 0 || cfg.hidden_dim == 0 || cfg.bottleneck_dim == 0 {
            return Err(Error::Config(format!("DINO head: widths and layers must be positive ({cfg:?})")));
        }
        let (i, h, b, o) = (cfg.in_dim as i64, cfg.hidden_dim as i64, cfg.bottleneck_dim as i64, cfg.out_dim as i64);
        let dims: Vec<(i64, i64)> = match cfg.nlayers {
            1 => vec![(i, b)],
            n => std::iter::once((i, h)).chain((0..n - 2).map(|_| (h, h))).chain(std::iter::once((h, b))).collect(),
        };
        let mlp_path = p.sub("mlp");
        // one layer is `self.mlp = nn.Linear(...)` (`mlp.weight`); more are an nn.Sequential
        // with GELUs between (`mlp.0`, `mlp.2`, ...)
        let mlp = match dims.as_slice() {
            [(a, z)] => vec![Linear::new(&mlp_path, *a, *z)?],
            _ => dims
                .iter()
                .enumerate()
                .map(|(k, &(a, z))| Linear::new(&mlp_path.sub(2 * k), a, z))
                .collect::<std::result::Result<Vec<_>, _>>()?,
        };
        let last = p.sub("last_layer");
        let weight_g = last.add("weight_g", Tensor::f_ones([o, 1], (Kind::Float, p.device()))?, !cfg.norm_last_layer)?;
        let bound = 1.0 / (b as f64).sqrt();
        let weight_v = last.add("weight_v", Tensor::f_empty([o, b], (Kind::Float, p.device()))?.f_uniform_(-bound, bound)?, true)?;
        Ok(Self { mlp, weight_g, weight_v })
    }

    /// The prototypes' weight, `g * v / ||v||` per output row (`torch._weight_norm`, dim 0).
    pub fn last_layer_weight(&self) -> Tensor {
        let norm = self.weight_v.norm_scalaropt_dim(2.0, [1i64].as_slice(), true);
        &self.weight_g * (&self.weight_v / norm)
    }

    /// # Shapes
    /// `[N, in]` -> `[N, out]`
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let mut x = x.shallow_clone();
        for (k, l) in self.mlp.iter().enumerate() {
            x = l.forward(&x);
            if k + 1 < self.mlp.len() {
                x = x.gelu("none");
            }
        }
        // F.normalize(x, dim=-1, p=2): x / max(||x||, 1e-12)
        let n = x.norm_scalaropt_dim(2.0, [-1i64].as_slice(), true).clamp_min(1e-12);
        (x / n).linear::<Tensor>(&self.last_layer_weight(), None)
    }
}
