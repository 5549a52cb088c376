//! The I-JEPA Vision Transformer (official `src/models/vision_transformer.py`): encoder
//! without CLS token, and the narrow predictor. Parameter names equal the official keys.

pub mod attention;
pub mod block;
pub mod encoder;
pub mod mlp;
pub mod patch_embed;

pub use encoder::{VisionTransformer, VitConfig};

use tch::{Kind, Tensor};

/// Official `apply_masks`: for each mask `[B, K]` of patch indices, gather `x[b, m[b, k], :]`,
/// then concatenate the results along the batch (mask-major order).
///
/// # Shapes
/// `x: [B, N, D]`, each mask `[B, K]` -> `[n_masks * B, K, D]`
pub fn apply_masks(x: &Tensor, masks: &[Tensor]) -> Tensor {
    let d = x.size()[2];
    let parts: Vec<Tensor> = masks
        .iter()
        .map(|m| {
            let idx = m.to_kind(Kind::Int64).unsqueeze(-1).expand([-1, -1, d], false);
            x.gather(1, &idx, false)
        })
        .collect();
    Tensor::cat(&parts, 0)
}

/// Official `repeat_interleave_batch`: x holds N chunks of B rows; each chunk is repeated
/// `repeat` times in place: [c0, c0, .., c1, c1, ..].
///
/// # Shapes
/// `[N * B, ...]` -> `[N * repeat * B, ...]`
pub fn repeat_interleave_batch(x: &Tensor, b: i64, repeat: i64) -> Tensor {
    if repeat == 1 {
        return x.shallow_clone();
    }
    let n = x.size()[0] / b;
    let mut parts = Vec::with_capacity((n * repeat) as usize);
    for i in 0..n {
        let chunk = x.narrow(0, i * b, b);
        for _ in 0..repeat {
            parts.push(chunk.shallow_clone());
        }
    }
    Tensor::cat(&parts, 0)
}
