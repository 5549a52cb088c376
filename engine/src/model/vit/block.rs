//! Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x)).

use super::{attention::Attention, mlp::Mlp};
use crate::model::{layer_norm::LayerNorm, Path};
use tch::{TchError, Tensor};

/// Official `Block` (drop-path 0).
#[derive(Debug)]
pub struct Block {
    /// `norm1`
    pub norm1: LayerNorm,
    /// `attn`
    pub attn: Attention,
    /// `norm2`
    pub norm2: LayerNorm,
    /// `mlp`
    pub mlp: Mlp,
}

impl Block {
    /// Registers the block's parameters under `p` (`norm1`, `attn`, `norm2`, `mlp`).
    ///
    /// # Errors
    /// libtorch's, e.g. when the weights cannot be allocated.
    pub fn new(p: &Path, dim: i64, heads: i64, mlp_hidden: i64, eps: f64) -> Result<Self, TchError> {
        Ok(Self {
            norm1: LayerNorm::new(&p.sub("norm1"), dim, eps)?,
            attn: Attention::new(&p.sub("attn"), dim, heads)?,
            norm2: LayerNorm::new(&p.sub("norm2"), dim, eps)?,
            mlp: Mlp::new(&p.sub("mlp"), dim, mlp_hidden)?,
        })
    }

    /// The constructors' residual rescale: divide attn.proj and mlp.fc2 weights by
    /// sqrt(2 * layer_id) (`layer_id` starts at 1). Official training re-initialises it away.
    ///
    /// # Errors
    /// libtorch's.
    pub fn rescale(&self, layer_id: usize) -> Result<(), TchError> {
        let s = (2.0 * layer_id as f64).sqrt();
        tch::no_grad(|| {
            let _ = self.attn.proj.weight.shallow_clone().f_div_scalar_(s)?;
            let _ = self.mlp.fc2.weight.shallow_clone().f_div_scalar_(s)?;
            Ok(())
        })
    }

    /// # Shapes
    /// `[B, N, D]` -> `[B, N, D]`
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let x = x + self.attn.forward(&self.norm1.forward(x));
        &x + self.mlp.forward(&self.norm2.forward(&x))
    }
}
