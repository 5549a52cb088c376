//! AdamW with the official parameter groups (reference §4; torch.optim.AdamW maths).
//!
//! Official `init_opt` makes four groups: encoder weights, predictor weights (weight decay,
//! following the wd schedule), and encoder / predictor biases and every 1-D tensor (weight
//! decay 0, excluded from the schedule). All share the learning rate. The state (moments and
//! step count) is plain tensors so checkpoints can hold it.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::Path;
use tch::{Kind, Tensor};

/// Which of the four official groups a parameter belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Decayed parameters (weights of dimension >= 2).
    Decay,
    /// Biases and 1-D tensors: no weight decay.
    NoDecay,
}

/// The official grouping rule: biases and 1-D tensors get no weight decay.
pub fn group_of(name: &str, t: &Tensor) -> Group {
    if name.ends_with(".bias") || t.dim() == 1 {
        Group::NoDecay
    } else {
        Group::Decay
    }
}

/// One optimised tensor with its AdamW moments.
#[derive(Debug)]
pub struct Slot {
    /// Name (with its model prefix, e.g. `encoder.blocks.0.attn.qkv.weight`).
    pub name: String,
    /// The parameter.
    pub param: Tensor,
    /// Its group.
    pub group: Group,
    /// First moment.
    pub exp_avg: Tensor,
    /// Second moment.
    pub exp_avg_sq: Tensor,
    /// This parameter's factor on the step's learning rate (1; fine-tuning's layer-wise
    /// decay sets it per block, like MAE's `lr_scale` param groups).
    pub lr_scale: f64,
    /// Steps this parameter has taken (torch keeps AdamW's `step` per parameter: one skipped
    /// while it had no gradient, e.g. DINO's frozen last layer, starts its bias correction
    /// later than the others).
    pub steps: u64,
}

/// AdamW over named parameters, in a fixed order.
#[derive(Debug)]
pub struct AdamW {
    /// Parameters and state, in creation order.
    pub slots: Vec<Slot>,
    /// Steps taken so far.
    pub step: u64,
    betas: (f64, f64),
    eps: f64,
}

impl AdamW {
    /// An optimiser over `params` (name, tensor), grouped with [`group_of`].
    ///
    /// # Errors
    /// libtorch's, e.g. when the moments cannot be allocated.
    pub fn new(params: Vec<(String, Tensor)>, betas: (f64, f64), eps: f64) -> Result<Self> {
        let slots = params
            .into_iter()
            .map(|(name, param)| {
                let group = group_of(&name, &param);
                let exp_avg = param.f_zeros_like()?.f_detach()?;
                let exp_avg_sq = param.f_zeros_like()?.f_detach()?;
                Ok(Slot { name, param, group, exp_avg, exp_avg_sq, lr_scale: 1.0, steps: 0 })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { slots, step: 0, betas, eps })
    }

    /// The optimised tensors, in slot order (identical on every rank).
    pub fn params(&self) -> Vec<Tensor> {
        self.slots.iter().map(|s| s.param.shallow_clone()).collect()
    }

    /// The moments as named tensors (`exp_avg.<param>`, `exp_avg_sq.<param>`), for checkpoints.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.slots.len());
        for s in &self.slots {
            out.push((format!("exp_avg.{}", s.name), s.exp_avg.shallow_clone()));
            out.push((format!("exp_avg_sq.{}", s.name), s.exp_avg_sq.shallow_clone()));
        }
        out
    }

    /// Restores the moments (names as [`AdamW::state_tensors`], without prefix) and the step
    /// count (every slot's too; a recipe that skips parameters sets theirs after). Strict:
    /// every moment must be present with the parameter's shape.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, step: u64, origin: &Path) -> Result<()> {
        let err = |message: String| Error::Checkpoint { path: origin.to_path_buf(), message };
        tch::no_grad(|| -> Result<()> {
            for s in &mut self.slots {
                for (kind, dst) in [("exp_avg", &mut s.exp_avg), ("exp_avg_sq", &mut s.exp_avg_sq)] {
                    let key = format!("{kind}.{}", s.name);
                    let src = tensors.get(&key).ok_or_else(|| err(format!("missing optimizer key `{key}`")))?;
                    if src.size() != dst.size() {
                        return Err(err(format!("optimizer key `{key}` has shape {:?}, expected {:?}", src.size(), dst.size())));
                    }
                    dst.f_copy_(&src.f_to_kind(Kind::Float)?.f_to_device(dst.device())?)?;
                }
            }
            Ok(())
        })?;
        self.step = step;
        for s in &mut self.slots {
            s.steps = step;
        }
        Ok(())
    }

    /// Zeroes (drops) every gradient.
    pub fn zero_grad(&mut self) {
        for s in &mut self.slots {
            let mut g = s.param.grad();
            if g.defined() {
                let _ = g.detach_();
                let _ = g.zero_();
            }
        }
    }

    /// One AdamW step with learning rate `lr` (times each slot's `lr_scale`) and weight decay
    /// `wd` (decayed group only). Parameters without a gradient are skipped, as in torch.
    pub fn step(&mut self, lr: f64, wd: f64) -> Result<()> {
        self.step_skipping(lr, wd, &|_| false)
    }

    /// [`AdamW::step`] that also skips the slots `skip` names (what torch does for a
    /// parameter whose `.grad` is None: no moment update, no weight decay, its step count
    /// unchanged; DINO's `cancel_gradients_last_layer`).
    pub fn step_skipping(&mut self, lr: f64, wd: f64, skip: &dyn Fn(&str) -> bool) -> Result<()> {
        self.step += 1;
        let (b1, b2) = self.betas;
        tch::no_grad(|| -> Result<()> {
            for s in &mut self.slots {
                let g = s.param.grad();
                if !g.defined() || skip(&s.name) {
                    continue;
                }
                s.steps += 1;
                let bc1 = 1.0 - b1.powi(s.steps as i32);
                let bc2_sqrt = (1.0 - b2.powi(s.steps as i32)).sqrt();
                let g = g.f_to_kind(Kind::Float)?;
                let lr = lr * s.lr_scale;
                let step_size = lr / bc1;
                let mut p = s.param.shallow_clone();
                let decay = match s.group {
                    Group::Decay => wd,
                    Group::NoDecay => 0.0,
                };
                if decay != 0.0 {
                    let _ = p.f_mul_scalar_(1.0 - lr * decay)?;
                }
                let _ = s.exp_avg.f_lerp_(&g, 1.0 - b1)?;
                let _ = s.exp_avg_sq.f_mul_scalar_(b2)?;
                let _ = s.exp_avg_sq.f_addcmul_(&g, &g.f_mul_scalar(1.0 - b2)?)?;
                let denom = s.exp_avg_sq.f_sqrt()?.f_div_scalar(bc2_sqrt)?.f_add_scalar(self.eps)?;
                let _ = p.f_addcdiv_(&s.exp_avg.f_mul_scalar(-step_size)?, &denom)?;
            }
            Ok(())
        })
    }
}

/// EMA update of `target` towards `online`: t = m*t + (1-m)*o, for each pair (official:
/// `param_k.data.mul_(m).add_((1.-m) * param_q.detach().data)`).
pub fn ema_update(pairs: &[(Tensor, Tensor)], m: f64) -> Result<()> {
    tch::no_grad(|| -> Result<()> {
        for (online, target) in pairs {
            let mut t = target.shallow_clone();
            let _ = t.f_mul_scalar_(m)?;
            let _ = t.f_add_(&online.f_mul_scalar(1.0 - m)?)?;
        }
        Ok(())
    })
}
