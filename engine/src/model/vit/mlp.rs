//! Transformer MLP: `mlp.fc1` -> GELU (exact erf form) -> `mlp.fc2`.

use crate::model::{linear::Linear, Path};
use tch::{TchError, Tensor};

/// Official `MLP` (no dropout).
#[derive(Debug)]
pub struct Mlp {
    /// D -> hidden
    pub fc1: Linear,
    /// hidden -> D
    pub fc2: Linear,
}

impl Mlp {
    /// Registers `fc1` and `fc2` under `p`.
    ///
    /// # Errors
    /// libtorch's, e.g. when the weights cannot be allocated.
    pub fn new(p: &Path, dim: i64, hidden: i64) -> Result<Self, TchError> {
        Ok(Self { fc1: Linear::new(&p.sub("fc1"), dim, hidden)?, fc2: Linear::new(&p.sub("fc2"), hidden, dim)? })
    }

    /// # Shapes
    /// `[..., D]` -> `[..., D]`
    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.fc2.forward(&self.fc1.forward(x).gelu("none"))
    }
}
