//! `PatchEmbed`: Conv2d(3, D, kernel = stride = patch), flattened to tokens.

use crate::model::{init, Path};
use tch::{Kind, TchError, Tensor};

/// Patch embedding (`patch_embed.proj.{weight,bias}`).
#[derive(Debug)]
pub struct PatchEmbed {
    /// [D, 3, p, p]
    pub weight: Tensor,
    /// [D]
    pub bias: Tensor,
    patch: i64,
}

impl PatchEmbed {
    /// Registers `proj.weight` (trunc-normal 0.02) and `proj.bias` (zero) under `p`.
    ///
    /// # Errors
    /// libtorch's, e.g. when the weights cannot be allocated.
    pub fn new(p: &Path, in_chans: i64, dim: i64, patch: i64) -> Result<Self, TchError> {
        let p = p.sub("proj");
        let weight = p.add("weight", init::official(&[dim, in_chans, patch, patch], p.device())?, true)?;
        let bias = p.add("bias", Tensor::f_zeros([dim], (Kind::Float, p.device()))?, true)?;
        Ok(Self { weight, bias, patch })
    }

    /// # Shapes
    /// `[B, 3, H, W]` -> `[B, (H/p)*(W/p), D]`
    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.conv2d(&self.weight, Some(&self.bias), [self.patch, self.patch], [0, 0], [1, 1], 1)
            .flatten(2, 3)
            .transpose(1, 2)
    }
}
