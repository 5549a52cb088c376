//! Multi-head self-attention with a fused qkv projection (`attn.qkv`, `attn.proj`).

use crate::model::{linear::Linear, Path};
use tch::{TchError, Tensor};

/// Official `Attention` (no dropout, qkv bias on, scale head_dim^-0.5).
#[derive(Debug)]
pub struct Attention {
    /// D -> 3D
    pub qkv: Linear,
    /// D -> D
    pub proj: Linear,
    heads: i64,
}

impl Attention {
    /// Registers `qkv` and `proj` under `p`.
    ///
    /// # Errors
    /// libtorch's, e.g. when the weights cannot be allocated.
    pub fn new(p: &Path, dim: i64, heads: i64) -> Result<Self, TchError> {
        Ok(Self { qkv: Linear::new(&p.sub("qkv"), dim, 3 * dim)?, proj: Linear::new(&p.sub("proj"), dim, dim)?, heads })
    }

    /// Softmax attention over all tokens: `softmax(q @ k^T * scale) @ v` (official form).
    ///
    /// # Shapes
    /// `[B, N, D]` -> `[B, N, D]`
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let (b, n, c) = x.size3().expect("attention input is [B, N, D]");
        let qkv = self.qkv.forward(x).reshape([b, n, 3, self.heads, c / self.heads]).permute([2, 0, 3, 1, 4]);
        // unbind, not three selects (the official `qkv[0], qkv[1], qkv[2]`): the same values,
        // but its backward stacks the three gradients instead of zero-filling a qkv-sized
        // tensor for each and summing them
        let [q, k, v]: [Tensor; 3] = qkv.unbind(0).try_into().expect("qkv has 3 parts");
        let scale = ((c / self.heads) as f64).powf(-0.5);
        // CUDA: the fused kernel (flash / memory-efficient). CPU: the official explicit form,
        // measured faster here under bf16 autocast (289 vs 449 ms/step for the default bench)
        // and equal in fp32.
        let y = if x.device().is_cuda() {
            Tensor::scaled_dot_product_attention(&q, &k, &v, None::<Tensor>, 0.0, false, scale, false)
        } else {
            (q.matmul(&k.transpose(-2, -1)) * scale).softmax(-1, None::<tch::Kind>).matmul(&v)
        };
        self.proj.forward(&y.transpose(1, 2).reshape([b, n, c]))
    }
}
