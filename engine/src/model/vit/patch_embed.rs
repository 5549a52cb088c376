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
    ///
    /// The tokens are made contiguous here, once (the official `flatten(2).transpose(1, 2)`
    /// leaves them strided `[B, D, N]`, a layout every later elementwise op keeps: each layer
    /// norm and linear of an unmasked pass then copies them again). Values are unchanged.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.conv2d(&self.weight, Some(&self.bias), [self.patch, self.patch], [0, 0], [1, 1], 1)
            .flatten(2, 3)
            .transpose(1, 2)
            .contiguous()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ParamStore;

    #[test]
    fn tokens_are_contiguous_and_in_row_major_patch_order() {
        let store = ParamStore::new(tch::Device::Cpu);
        let pe = PatchEmbed::new(&store.root().sub("patch_embed"), 3, 8, 4).unwrap();
        let x = Tensor::arange(2 * 3 * 8 * 12, (Kind::Float, tch::Device::Cpu)).reshape([2, 3, 8, 12]) / 100.0;
        let t = pe.forward(&x);
        assert_eq!(t.size(), [2, 6, 8]);
        assert!(t.is_contiguous());
        // token 4 = grid row 1, column 1: the conv over pixels [4..8) x [4..8)
        let patch = x.narrow(2, 4, 4).narrow(3, 4, 4);
        let want = patch.conv2d(&pe.weight, Some(&pe.bias), [4, 4], [0, 0], [1, 1], 1).reshape([2, 8]);
        assert!((t.select(1, 4) - want).abs().max().double_value(&[]) < 1e-6);
    }
}
