//! Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x)); with stochastic
//! depth (timm's `DropPath`) for fine-tuning.

use super::{attention::Attention, mlp::Mlp};
use crate::model::{layer_norm::LayerNorm, Path};
use tch::{TchError, Tensor};

/// Official `Block` (drop-path 0 in pretraining; [`Block::forward_drop_path`] for fine-tuning).
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

    /// [`Block::forward`] with stochastic depth of rate `p` on both residual branches (timm's
    /// `DropPath`, training mode): per sample, a branch is kept with probability `1 - p` and
    /// then scaled by `1 / (1 - p)`; the draws come from libtorch's global generator. `p = 0`
    /// is exactly [`Block::forward`].
    ///
    /// # Shapes
    /// `[B, N, D]` -> `[B, N, D]`
    pub fn forward_drop_path(&self, x: &Tensor, p: f64) -> Tensor {
        if p <= 0.0 {
            return self.forward(x);
        }
        let x = x + drop_path(&self.attn.forward(&self.norm1.forward(x)), p);
        &x + drop_path(&self.mlp.forward(&self.norm2.forward(&x)), p)
    }
}

/// timm's `drop_path(x, p, training=True)`: `x / (1 - p) * floor(1 - p + U[0, 1))` with one
/// draw per sample.
///
/// # Shapes
/// `[B, ...]` -> `[B, ...]`
pub fn drop_path(x: &Tensor, p: f64) -> Tensor {
    let keep = 1.0 - p;
    let mut shape = vec![x.size()[0]];
    shape.resize(x.dim(), 1);
    let mask = (Tensor::rand(shape.as_slice(), (x.kind(), x.device())) + keep).floor();
    x.divide_scalar(keep) * mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn drop_path_keeps_or_drops_whole_samples_and_preserves_the_mean() {
        tch::manual_seed(0);
        let x = Tensor::ones([4000, 3, 2], (Kind::Float, Device::Cpu));
        let y = drop_path(&x, 0.25);
        // each sample is all zeros or all 1/0.75
        let per = y.view([4000, 6]);
        let (lo, hi) = (per.min_dim(1, false).0, per.max_dim(1, false).0);
        assert!(lo.eq_tensor(&hi).all().int64_value(&[]) == 1);
        let kept = hi.gt(0.0).to_kind(Kind::Float).mean(Kind::Float).double_value(&[]);
        assert!((kept - 0.75).abs() < 0.03, "kept {kept}");
        assert!((y.mean(Kind::Float).double_value(&[]) - 1.0).abs() < 0.05);
        assert!(hi.max().double_value(&[]) > 1.33 && hi.max().double_value(&[]) < 1.34);
    }
}
