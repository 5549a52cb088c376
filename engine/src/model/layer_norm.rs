//! `torch.nn.LayerNorm` over the last dimension (weight one, bias zero; eps 1e-6 in the ViT).

use super::Path;
use tch::{Kind, TchError, Tensor};

/// Layer normalisation with affine weight and bias.
#[derive(Debug)]
pub struct LayerNorm {
    /// [dim]
    pub weight: Tensor,
    /// [dim]
    pub bias: Tensor,
    dim: i64,
    eps: f64,
}

impl LayerNorm {
    /// Registers `weight` (ones) and `bias` (zeros) under `p`.
    ///
    /// # Errors
    /// libtorch's, e.g. when the weights cannot be allocated.
    pub fn new(p: &Path, dim: i64, eps: f64) -> Result<Self, TchError> {
        let opts = (Kind::Float, p.device());
        let weight = p.add("weight", Tensor::f_ones([dim], opts)?, true)?;
        let bias = p.add("bias", Tensor::f_zeros([dim], opts)?, true)?;
        Ok(Self { weight, bias, dim, eps })
    }

    /// # Shapes
    /// `[..., dim]` -> `[..., dim]`
    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.layer_norm([self.dim], Some(&self.weight), Some(&self.bias), self.eps, true)
    }
}
