//! `torch.nn.Linear` with official names (`weight` [out, in], `bias` [out]) and init.
//! (tch's `nn::linear` would put weight and bias in one optimiser group; we need the bias in
//! the no-weight-decay group.)

use super::{init, Path};
use tch::{TchError, Tensor};

/// A fully connected layer y = x W^T + b.
#[derive(Debug)]
pub struct Linear {
    /// [out, in]
    pub weight: Tensor,
    /// [out]
    pub bias: Tensor,
}

impl Linear {
    /// Registers `weight` and `bias` under `p` with the official init.
    ///
    /// # Errors
    /// libtorch's, e.g. when the weights cannot be allocated.
    pub fn new(p: &Path, in_dim: i64, out_dim: i64) -> Result<Self, TchError> {
        let weight = p.add("weight", init::official(&[out_dim, in_dim], p.device())?, true)?;
        let bias = p.add("bias", Tensor::f_zeros([out_dim], (tch::Kind::Float, p.device()))?, true)?;
        Ok(Self { weight, bias })
    }

    /// # Shapes
    /// `[..., in]` -> `[..., out]`
    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.weight, Some(&self.bias))
    }
}
