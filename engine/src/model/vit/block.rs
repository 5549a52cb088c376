//! Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x)); with stochastic
//! depth (timm's `DropPath`) for fine-tuning, and with given draws for DINO's student.

use super::{attention::Attention, mlp::Mlp};
use crate::model::{layer_norm::LayerNorm, Path};
use tch::{TchError, Tensor};

/// Official `Block` (no drop-path in I-JEPA's and MAE's pretraining; [`Block::forward_drop_path`]
/// for fine-tuning, [`Block::forward_keep`] for DINO's student).
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

    /// [`Block::forward`] with stochastic depth of rate `keep.rate` whose draws are given
    /// ([`Keep`]): a sample's branch is kept (and scaled by `1 / (1 - rate)`) where its
    /// entry is 1 and dropped where it is 0, as timm's and DINO's `DropPath` with those draws.
    ///
    /// # Shapes
    /// `x: [B, N, D]`, `keep.attn`, `keep.mlp`: `[B]` -> `[B, N, D]`
    pub fn forward_keep(&self, x: &Tensor, keep: &Keep) -> Tensor {
        let x = x + keep_scaled(&self.attn.forward(&self.norm1.forward(x)), keep.rate, &keep.attn);
        &x + keep_scaled(&self.mlp.forward(&self.norm2.forward(&x)), keep.rate, &keep.mlp)
    }
}

/// Given stochastic-depth draws of one block: which samples keep each residual branch.
#[derive(Debug)]
pub struct Keep {
    /// The block's drop rate (in (0, 1)).
    pub rate: f64,
    /// `[B]`: 1 where the attention branch is kept, 0 where it is dropped.
    pub attn: Tensor,
    /// `[B]`: the same for the MLP branch.
    pub mlp: Tensor,
}

impl Keep {
    /// The draws of a block of rate `rate` from one uniform `u[b]` in [0, 1) per sample and
    /// branch (`[B]` each): kept where `floor(1 - rate + u) = 1`, i.e. `u >= rate` (timm's
    /// `random_tensor = keep_prob + torch.rand(...); random_tensor.floor_()`).
    ///
    /// # Errors
    /// libtorch's, e.g. when the tensors cannot be made on `device`.
    pub fn from_uniforms(rate: f64, attn: &[f64], mlp: &[f64], device: tch::Device) -> Result<Self, TchError> {
        let mask = |u: &[f64]| -> Result<Tensor, TchError> {
            let kept: Vec<f32> = u.iter().map(|&u| ((1.0 - rate) + u).floor() as f32).collect();
            Tensor::f_from_slice(&kept)?.f_to_device(device)
        };
        Ok(Self { rate, attn: mask(attn)?, mlp: mask(mlp)? })
    }
}

/// Stochastic-depth rates of `depth` blocks rising linearly from 0 to `rate` (timm's and
/// DINO's `torch.linspace(0, drop_path_rate, depth)`).
pub fn drop_path_rates(rate: f64, depth: usize) -> Vec<f64> {
    match depth {
        0 => Vec::new(),
        1 => vec![0.0],
        _ => (0..depth).map(|i| rate * i as f64 / (depth - 1) as f64).collect(),
    }
}

/// `x / (1 - p) * keep` with `keep` `[B]` broadcast over the other dimensions, in `x`'s kind
/// (timm's `x.div(keep_prob) * random_tensor`).
///
/// # Shapes
/// `x: [B, ...]`, `keep: [B]` -> `[B, ...]`
fn keep_scaled(x: &Tensor, p: f64, keep: &Tensor) -> Tensor {
    let mut shape = vec![x.size()[0]];
    shape.resize(x.dim(), 1);
    x.divide_scalar(1.0 - p) * keep.to_kind(x.kind()).view(shape.as_slice())
}

/// timm's `drop_path(x, p, training=True)`: `x / (1 - p) * floor(1 - p + U[0, 1))` with one
/// draw per sample.
///
/// # Shapes
/// `[B, ...]` -> `[B, ...]`
pub fn drop_path(x: &Tensor, p: f64) -> Tensor {
    let keep = (Tensor::rand([x.size()[0]], (x.kind(), x.device())) + (1.0 - p)).floor();
    keep_scaled(x, p, &keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn given_draws_drop_whole_branches_of_whole_samples() {
        tch::manual_seed(0);
        let p = crate::model::ParamStore::new(Device::Cpu).root();
        let block = Block::new(&p, 8, 2, 16, 1e-6).unwrap();
        let x = Tensor::randn([3, 5, 8], (Kind::Float, Device::Cpu));
        // sample 0 keeps both branches, sample 1 only the attention, sample 2 neither
        let keep = Keep::from_uniforms(0.25, &[0.9, 0.25, 0.1], &[0.5, 0.2, 0.0], Device::Cpu).unwrap();
        assert_eq!(Vec::<f32>::try_from(&keep.attn).unwrap(), [1.0, 1.0, 0.0]);
        assert_eq!(Vec::<f32>::try_from(&keep.mlp).unwrap(), [1.0, 0.0, 0.0]);
        let y = block.forward_keep(&x, &keep);
        let row = |t: &Tensor, i: i64| t.narrow(0, i, 1);
        // by hand: x + branch / (1 - p) where kept
        let a0 = row(&x, 0) + block.attn.forward(&block.norm1.forward(&row(&x, 0))) / 0.75;
        let want0 = &a0 + block.mlp.forward(&block.norm2.forward(&a0)) / 0.75;
        let want1 = row(&x, 1) + block.attn.forward(&block.norm1.forward(&row(&x, 1))) / 0.75;
        assert!(row(&y, 0).allclose(&want0, 1e-5, 1e-6, false));
        assert!(row(&y, 1).allclose(&want1, 1e-5, 1e-6, false));
        assert!(row(&y, 2).equal(&row(&x, 2)), "both branches dropped: the input itself");
    }

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
