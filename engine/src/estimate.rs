//! What a pretraining will cost before it is launched (`ijepa estimate`): parameters, FLOPs per
//! image of the training step, memory per process at the experiment's batch, and the projected
//! wall time and GPU-hours of the whole run on its planned layout.
//!
//! The FLOPs are counted analytically from the shapes: every matrix product counts 2 FLOPs per
//! multiply-add (patch embedding, qkv, attention's two products, projection, MLP, the
//! predictor's / decoder's input and output layers); a trained module's backward counts twice
//! its forward (the usual 3x rule); element-wise work (norms, softmax, GELU, AdamW, EMA) is not
//! counted. Each recipe declares its own count ([`crate::recipe::RecipeEntry::cost`]): which
//! modules run on how many tokens, with or without backward. The projection divides the FLOPs
//! of all steps by a device's peak rate times an assumed model FLOP utilisation (MFU), both
//! printed: a projection, not a measurement.
//!
//! Memory: weights, gradients and AdamW's moments in float32 are exact; activations are the
//! tensors autograd keeps per block for its backward (layer-norm inputs and outputs, q/k/v,
//! the attention map, attention output, the MLP's two hidden tensors), an approximation that
//! `ijepa estimate` prints beside a measured figure where the machine can run the step.

use crate::error::Result;
use crate::model::vit::encoder::mlp_hidden;
use ijepa_dsl::config::{Experiment, Precision};
use std::sync::Arc;

/// The cost of one training step, per image, as a recipe counts it.
#[derive(Debug, Clone, PartialEq)]
pub struct StepCost {
    /// Parameters the optimiser updates.
    pub trainable_params: f64,
    /// Parameters held but not trained (an EMA target encoder).
    pub frozen_params: f64,
    /// What [`Self::frozen_params`] are, in words (`"the EMA target encoder"`); empty without.
    pub frozen_what: String,
    /// FLOPs of one image through the step (forward, backward of the trained modules).
    pub flops_per_image: f64,
    /// Bytes of activations autograd keeps for the backward, per image, at 4 bytes an element
    /// (halve the matrix products' outputs for bf16: [`activation_bytes`]).
    pub activation_elems_per_image: f64,
    /// The token counts the FLOPs assume, in words (e.g. "context 97.3, 4 targets of 41.2").
    pub tokens: String,
}

/// A recipe's cost model: the step's cost for an experiment.
pub type CostFn = Arc<dyn Fn(&Experiment) -> Result<StepCost> + Send + Sync>;

/// Parameters of one pre-norm ViT block of width `d` and MLP hidden width `h` (two layer
/// norms, qkv and projection, the MLP, with biases).
pub fn block_params(d: f64, h: f64) -> f64 {
    4.0 * d + 3.0 * d * d + 3.0 * d + d * d + d + d * h + h + h * d + d
}

/// Forward FLOPs of one block over one sequence of `n` tokens (width `d`, MLP hidden `h`).
pub fn block_flops(n: f64, d: f64, h: f64) -> f64 {
    // qkv + proj + fc1 + fc2, then q k^T and attn v
    2.0 * n * (3.0 * d * d + d * d + 2.0 * d * h) + 4.0 * n * n * d
}

/// Forward FLOPs of the patch embedding (a convolution with stride = kernel = `patch`, i.e. a
/// matrix product per patch) over `patches` patches of 3 channels into width `d`.
pub fn patch_embed_flops(patches: f64, patch: f64, d: f64) -> f64 {
    2.0 * patches * 3.0 * patch * patch * d
}

/// Forward FLOPs of a whole ViT encoder over one image: the patch embedding of every patch and
/// the blocks over every token (with the class token where the encoder has one).
pub fn vit_forward_flops(cfg: &crate::model::vit::VitConfig) -> f64 {
    let n = cfg.num_patches() as f64;
    let blocks = Stack::new(cfg.embed_dim, cfg.depth, cfg.num_heads, cfg.mlp_ratio);
    patch_embed_flops(n, cfg.patch_size as f64, cfg.embed_dim as f64) + blocks.flops(n + f64::from(u8::from(cfg.cls_token)))
}

/// Elements one block keeps for its backward over a sequence of `n` tokens (width `d`, MLP
/// hidden `h`, `heads` attention maps of n x n).
pub fn block_activation_elems(n: f64, d: f64, h: f64, heads: f64) -> f64 {
    // ln1 in/out, q k v, attention output, ln2 in/out, fc1 out, gelu out; the softmax output
    n * (8.0 * d + 2.0 * h) + heads * n * n
}

/// The shape numbers of a ViT stack as the estimate needs them.
#[derive(Debug, Clone, Copy)]
pub struct Stack {
    /// Width.
    pub width: f64,
    /// Blocks.
    pub depth: f64,
    /// MLP hidden width.
    pub hidden: f64,
    /// Attention heads.
    pub heads: f64,
}

impl Stack {
    /// A stack of `depth` blocks of width `width`, `heads` heads, MLP ratio `ratio`.
    pub fn new(width: usize, depth: usize, heads: usize, ratio: f64) -> Self {
        Self { width: width as f64, depth: depth as f64, hidden: mlp_hidden(width, ratio) as f64, heads: heads.max(1) as f64 }
    }

    /// Parameters of the blocks and the final norm.
    pub fn params(&self) -> f64 {
        self.depth * block_params(self.width, self.hidden) + 2.0 * self.width
    }

    /// Forward FLOPs of the blocks over one sequence of `n` tokens.
    pub fn flops(&self, n: f64) -> f64 {
        self.depth * block_flops(n, self.width, self.hidden)
    }

    /// Activation elements the blocks keep over one sequence of `n` tokens.
    pub fn activations(&self, n: f64) -> f64 {
        self.depth * block_activation_elems(n, self.width, self.hidden, self.heads)
    }
}

/// The bytes of `elems` activation elements at a precision: 4 in fp32; under bf16 autocast the
/// matrix products' outputs (about two thirds of them) are 2 bytes, norms stay 4.
pub fn activation_bytes(elems: f64, precision: Precision) -> f64 {
    match precision {
        Precision::Bf16 => elems * (2.0 * 2.0 / 3.0 + 4.0 / 3.0),
        _ => elems * 4.0,
    }
}

/// Bytes of the optimiser-side state: float32 weights (trained and frozen), gradients and
/// AdamW's two moments of the trained ones.
pub fn state_bytes(cost: &StepCost) -> f64 {
    16.0 * cost.trainable_params + 4.0 * cost.frozen_params
}

/// An accelerator's dense peak rates (FLOP/s), from its vendor's data sheet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accelerator {
    /// Name on the command line.
    pub name: &'static str,
    /// What it is.
    pub description: &'static str,
    /// Dense bf16 (tensor cores) peak.
    pub bf16: f64,
    /// Dense fp32 peak (without TF32; torch's default for matrix products).
    pub fp32: f64,
    /// Device memory in bytes (the largest model of the name: A100 80 GB, V100 32 GB).
    pub memory: f64,
}

const GIB: f64 = (1u64 << 30) as f64;
/// (the H200's 141 GB is what `nvidia-smi` reports as 143771 MiB: 140.4 GiB, not 131.3)
const MIB: f64 = (1u64 << 20) as f64;

/// The accelerators `ijepa estimate --gpu` knows (dense peaks, no sparsity).
pub const ACCELERATORS: &[Accelerator] = &[
    Accelerator { name: "a100", description: "NVIDIA A100 SXM (312 TFLOP/s bf16, 19.5 fp32)", bf16: 312e12, fp32: 19.5e12, memory: 80.0 * GIB },
    Accelerator { name: "h100", description: "NVIDIA H100 SXM (989 TFLOP/s bf16, 67 fp32)", bf16: 989e12, fp32: 67e12, memory: 80.0 * GIB },
    Accelerator { name: "h200", description: "NVIDIA H200 (989 TFLOP/s bf16, 67 fp32)", bf16: 989e12, fp32: 67e12, memory: 143_771.0 * MIB },
    Accelerator { name: "v100", description: "NVIDIA V100 SXM (no bf16: 15.7 TFLOP/s fp32)", bf16: 0.0, fp32: 15.7e12, memory: 32.0 * GIB },
];

/// The accelerator called `name`.
pub fn accelerator(name: &str) -> Option<&'static Accelerator> {
    ACCELERATORS.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

/// Steps, images and time of a whole pretraining on a layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    /// Processes (GPUs).
    pub world: usize,
    /// Steps per epoch (the loader drops the last incomplete global batch).
    pub steps_per_epoch: u64,
    /// Steps of the whole run.
    pub steps: u64,
    /// Seconds per step.
    pub step_seconds: f64,
    /// Wall seconds of the whole pretraining (steps only: no data stalls, evaluations or
    /// checkpoints).
    pub wall_seconds: f64,
    /// Device-hours: wall time x processes.
    pub device_hours: f64,
}

/// Projects `exp` over `images` training images with `step_seconds` per step on each of its
/// `nodes x procs-per-node` processes.
pub fn project(exp: &Experiment, images: u64, step_seconds: f64) -> Projection {
    let world = exp.distributed.nodes.max(1) * exp.distributed.procs_per_node.max(1);
    let global = (exp.data.batch_size.max(1) * world) as u64;
    let steps_per_epoch = images / global;
    let steps = steps_per_epoch.saturating_mul(exp.epochs as u64);
    let wall_seconds = steps as f64 * step_seconds;
    Projection { world, steps_per_epoch, steps, step_seconds, wall_seconds, device_hours: wall_seconds * world as f64 / 3600.0 }
}

/// Seconds of one step on `acc` at `mfu` for a per-process batch of `batch` images.
pub fn gpu_step_seconds(cost: &StepCost, batch: usize, acc: &Accelerator, precision: Precision, mfu: f64) -> Option<f64> {
    let peak = match precision {
        Precision::Bf16 => acc.bf16,
        _ => acc.fp32,
    };
    (peak > 0.0 && mfu > 0.0).then(|| cost.flops_per_image * batch as f64 / (peak * mfu))
}

/// The MFU at which `flops` of work take `hours` on `devices` devices of peak `peak` FLOP/s.
pub fn implied_mfu(flops: f64, hours: f64, devices: f64, peak: f64) -> f64 {
    flops / (hours * 3600.0 * devices * peak)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_counts_by_hand() {
        // d = 2, h = 8: ln 8, qkv 12+6, proj 4+2, fc1 16+8, fc2 16+2
        assert_eq!(block_params(2.0, 8.0), 74.0);
        // n = 3: 2*3*(12 + 4 + 32) + 4*9*2 = 288 + 72
        assert_eq!(block_flops(3.0, 2.0, 8.0), 360.0);
        assert_eq!(block_activation_elems(3.0, 2.0, 8.0, 1.0), 3.0 * 32.0 + 9.0);
    }

    #[test]
    fn projection_drops_the_last_global_batch_and_counts_every_process() {
        let mut e = Experiment::with_defaults("p");
        e.data.batch_size = 128;
        e.distributed.nodes = 2;
        e.distributed.procs_per_node = 8;
        e.epochs = 300;
        let p = project(&e, 1_281_167, 2.0);
        assert_eq!(p.world, 16);
        assert_eq!(p.steps_per_epoch, 625); // 1,281,167 / 2,048
        assert_eq!(p.steps, 187_500);
        assert_eq!(p.wall_seconds, 375_000.0);
        assert!((p.device_hours - 375_000.0 * 16.0 / 3600.0).abs() < 1e-9);
    }

    #[test]
    fn gpu_time_uses_the_precision_peak_and_refuses_what_the_device_lacks() {
        let c = StepCost { trainable_params: 1.0, frozen_params: 0.0, frozen_what: String::new(), flops_per_image: 1e12, activation_elems_per_image: 0.0, tokens: String::new() };
        let a100 = accelerator("A100").unwrap();
        let t = gpu_step_seconds(&c, 128, a100, Precision::Bf16, 0.5).unwrap();
        assert!((t - 128e12 / 156e12).abs() < 1e-12);
        assert!(gpu_step_seconds(&c, 128, accelerator("v100").unwrap(), Precision::Bf16, 0.5).is_none());
        assert!((implied_mfu(312e12 * 3600.0, 1.0, 1.0, 312e12) - 1.0).abs() < 1e-12);
    }
}
