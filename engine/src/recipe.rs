//! The `Recipe` trait: what a self-supervised method provides to the training loop
//! (conventions §7). A recipe owns its models, optimiser and EMA pairs, builds the per-batch
//! extras (masks) the loader collates, and runs one step.

use crate::error::Result;
use crate::model::vit::VisionTransformer;
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Tensor};

/// Hyper-parameters of one step, from the schedules.
#[derive(Debug, Clone, Copy)]
pub struct Hyper {
    /// Learning rate.
    pub lr: f64,
    /// Weight decay of the decayed groups.
    pub wd: f64,
    /// EMA momentum.
    pub momentum: f64,
}

/// What one step reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// Loss value (averaged over ranks when distributed).
    pub loss: f64,
    /// Context tokens per context mask.
    pub context_len: usize,
    /// Target tokens per target mask.
    pub target_len: usize,
}

/// What a distributed run does between backward and the optimiser step (DDP): averages the
/// gradients of the trainable parameters across ranks, and the loss for logging.
pub trait GradSync: Send {
    /// Averages every trainable parameter's gradient in place across ranks; `loss` is this
    /// rank's loss; returns the mean loss over ranks.
    fn sync(&mut self, loss: &Tensor) -> Result<f64>;
}

impl std::fmt::Debug for dyn GradSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GradSync")
    }
}

/// Builds the per-batch extras (e.g. masks) in the loader threads.
pub use crate::data::CollateFn as Collate;

/// A self-supervised recipe.
pub trait Recipe {
    /// What the loader collates beside the images.
    type Extras: Send + 'static;

    /// Registry name.
    fn name(&self) -> &'static str;

    /// The device the models live on.
    fn device(&self) -> Device;

    /// The collate function for the loader (seeded per (epoch, step, rank)).
    fn collate(&self) -> Collate<Self::Extras>;

    /// One optimisation step on `images` `[B, 3, H, W]` (already on the device).
    fn step(&mut self, images: &Tensor, extras: &Self::Extras, hyper: Hyper) -> Result<StepStats>;

    /// Every tensor a checkpoint holds, under official names with the module prefix
    /// (`encoder.…`, `predictor.…`, `target_encoder.…`).
    fn state(&self) -> Vec<(String, Tensor)>;

    /// Everything exact resume needs beyond [`Recipe::state`]: optimiser moments (names
    /// prefixed `optimizer.`) and the optimiser step count.
    fn optimizer_state(&self) -> (Vec<(String, Tensor)>, u64);

    /// Restores models and optimiser from a checkpoint's tensors (as [`Recipe::state`] plus
    /// [`Recipe::optimizer_state`] wrote them). Strict: a missing, unexpected or mis-shaped
    /// tensor is an error naming the key; `origin` names the file.
    fn restore(&mut self, tensors: &HashMap<String, Tensor>, optimizer_step: u64, origin: &Path) -> Result<()>;

    /// Trainable parameter count.
    fn num_params(&self) -> i64;

    /// The trainable parameters, in an order that is identical on every rank.
    fn trainable(&self) -> Vec<Tensor>;

    /// Installs the gradient synchronisation of a distributed run (before the first step).
    fn set_grad_sync(&mut self, sync: Box<dyn GradSync>);

    /// The encoders whose frozen features the learning monitors measure, by name, the one the
    /// evaluations read first (I-JEPA: `target`, then `context`). Default: none.
    fn feature_encoders(&self) -> Vec<(&'static str, &VisionTransformer)> {
        Vec::new()
    }

    /// Whether the forward pass runs under bf16 autocast (features are measured the same way).
    fn bf16(&self) -> bool {
        false
    }
}
