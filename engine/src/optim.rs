//! AdamW with the official parameter groups (reference §4; torch.optim.AdamW maths).
//!
//! Official `init_opt` makes four groups: encoder weights, predictor weights (weight decay,
//! following the wd schedule), and encoder / predictor biases and every 1-D tensor (weight
//! decay 0, excluded from the schedule). All share the learning rate. The state (moments and
//! step count) is plain tensors so checkpoints can hold it.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::Path;
use std::ffi::c_void;
use std::os::raw::c_char;
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

    /// Drops every gradient (`p.grad = None`: torch's `zero_grad()` default, which the
    /// official training loop calls): the next backward writes fresh gradients rather than
    /// adding into zeroed ones, and a parameter that gets none then is skipped by the step, as
    /// torch skips it.
    ///
    /// # Errors
    /// libtorch's.
    pub fn zero_grad(&mut self) -> Result<()> {
        let handles: Vec<*mut c_void> = self.slots.iter().map(|s| s.param.as_ptr() as *mut c_void).collect();
        // SAFETY: live tch tensors borrowed for the call; the shim catches every C++ exception.
        let err = unsafe { ijepa_grads_reset(handles.as_ptr(), handles.len() as i64) };
        shim_result(err, "dropping the gradients")
    }

    /// One AdamW step with learning rate `lr` (times each slot's `lr_scale`) and weight decay
    /// `wd` (decayed group only). Parameters without a gradient are skipped, as in torch.
    pub fn step(&mut self, lr: f64, wd: f64) -> Result<()> {
        self.step_skipping(lr, wd, &|_| false)
    }

    /// [`AdamW::step`] that also skips the slots `skip` names (what torch does for a
    /// parameter whose `.grad` is None: no moment update, no weight decay, its step count
    /// unchanged; DINO's `cancel_gradients_last_layer`).
    ///
    /// The slots that step are updated by libtorch's fused AdamW kernel (`_fused_adamw_`, what
    /// `torch.optim.AdamW(fused=True)` runs: one pass over each tensor instead of about ten
    /// operators), one call per set of slots sharing weight decay, learning-rate scale and step
    /// count; a slot the kernel cannot take (not float32, not contiguous) takes torch's
    /// single-tensor path ([`Self::step_one`]). Both are torch's AdamW maths; they differ only
    /// in float rounding.
    pub fn step_skipping(&mut self, lr: f64, wd: f64, skip: &dyn Fn(&str) -> bool) -> Result<()> {
        self.step += 1;
        let (betas, eps) = (self.betas, self.eps);
        tch::no_grad(|| -> Result<()> {
            // (weight decay, lr scale, steps) -> the slots and their gradients
            type Key = (u64, u64, u64);
            let mut sets: Vec<(Key, Vec<usize>, Vec<Tensor>)> = Vec::new();
            for (i, s) in self.slots.iter_mut().enumerate() {
                let g = s.param.grad();
                if !g.defined() || skip(&s.name) {
                    continue;
                }
                s.steps += 1;
                let decay = match s.group {
                    Group::Decay => wd,
                    Group::NoDecay => 0.0,
                };
                let fusable = [&s.param, &g, &s.exp_avg, &s.exp_avg_sq].iter().all(|t| t.kind() == Kind::Float && t.is_contiguous())
                    && g.device() == s.param.device();
                if !fusable {
                    Self::step_one(s, &g, lr, decay, betas, eps)?;
                    continue;
                }
                let key = (decay.to_bits(), s.lr_scale.to_bits(), s.steps);
                match sets.iter_mut().find(|(k, _, _)| *k == key) {
                    Some((_, idx, grads)) => {
                        idx.push(i);
                        grads.push(g);
                    }
                    None => sets.push((key, vec![i], vec![g])),
                }
            }
            for ((decay, lr_scale, steps), idx, grads) in sets {
                let slots: Vec<&Slot> = idx.iter().map(|&i| &self.slots[i]).collect();
                let step = Tensor::from(steps as f32).to_device(slots[0].param.device());
                fused_adamw(&slots, &grads, &step, lr * f64::from_bits(lr_scale), betas, f64::from_bits(decay), eps)?;
            }
            Ok(())
        })
    }

    /// torch's single-tensor AdamW step of one slot (`_single_tensor_adamw`), its step count
    /// already incremented.
    fn step_one(s: &mut Slot, g: &Tensor, lr: f64, decay: f64, (b1, b2): (f64, f64), eps: f64) -> Result<()> {
        let bc1 = 1.0 - b1.powi(s.steps as i32);
        let bc2_sqrt = (1.0 - b2.powi(s.steps as i32)).sqrt();
        let g = g.f_to_kind(Kind::Float)?;
        let lr = lr * s.lr_scale;
        let step_size = lr / bc1;
        let mut p = s.param.shallow_clone();
        if decay != 0.0 {
            let _ = p.f_mul_scalar_(1.0 - lr * decay)?;
        }
        let _ = s.exp_avg.f_lerp_(&g, 1.0 - b1)?;
        let _ = s.exp_avg_sq.f_mul_scalar_(b2)?;
        let _ = s.exp_avg_sq.f_addcmul_(&g, &g.f_mul_scalar(1.0 - b2)?)?;
        let denom = s.exp_avg_sq.f_sqrt()?.f_div_scalar(bc2_sqrt)?.f_add_scalar(eps)?;
        let _ = p.f_addcdiv_(&s.exp_avg.f_mul_scalar(-step_size)?, &denom)?;
        Ok(())
    }
}

extern "C" {
    fn ijepa_fused_adamw(
        params: *const *mut c_void,
        grads: *const *mut c_void,
        exp_avgs: *const *mut c_void,
        exp_avg_sqs: *const *mut c_void,
        n: i64,
        step: *mut c_void,
        lr: f64,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
        eps: f64,
    ) -> *mut c_char;
    fn ijepa_grads_reset(tensors: *const *mut c_void, n: i64) -> *mut c_char;
}

/// The shim's NULL-or-message convention as a result (`what` names the operation).
fn shim_result(err: *mut c_char, what: &str) -> Result<()> {
    match crate::ffi::take_message(err) {
        None => Ok(()),
        Some(msg) => Err(Error::Train(format!("{what}: {msg}"))),
    }
}

/// libtorch's `_fused_adamw_` over `slots` (float32, contiguous, one device) with their
/// `grads`, all at step count `step` (a float32 scalar).
fn fused_adamw(slots: &[&Slot], grads: &[Tensor], step: &Tensor, lr: f64, (b1, b2): (f64, f64), wd: f64, eps: f64) -> Result<()> {
    let handle = |t: &Tensor| t.as_ptr() as *mut c_void;
    let p: Vec<*mut c_void> = slots.iter().map(|s| handle(&s.param)).collect();
    let m: Vec<*mut c_void> = slots.iter().map(|s| handle(&s.exp_avg)).collect();
    let v: Vec<*mut c_void> = slots.iter().map(|s| handle(&s.exp_avg_sq)).collect();
    let g: Vec<*mut c_void> = grads.iter().map(handle).collect();
    // SAFETY: every handle is a live tch tensor (an at::Tensor*) borrowed for the call; the
    // shim copies the handles (sharing storage) and catches every C++ exception.
    let err = unsafe { ijepa_fused_adamw(p.as_ptr(), g.as_ptr(), m.as_ptr(), v.as_ptr(), p.len() as i64, handle(step), lr, b1, b2, wd, eps) };
    shim_result(err, "fused AdamW step")
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

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// Deterministic values of `shape` without libtorch's global generator (the tests of this
    /// process run in parallel and share it): sin of a scaled ramp.
    fn values(shape: &[i64], k: f64) -> Tensor {
        let n: i64 = shape.iter().product();
        (Tensor::arange(n, (Kind::Float, Device::Cpu)) * (0.37 + k)).sin().reshape(shape)
    }

    fn params() -> Vec<(String, Tensor)> {
        let t = |s: &[i64], k: f64| values(s, k).set_requires_grad(true);
        vec![
            ("encoder.w".into(), t(&[16, 8], 0.0)),
            ("encoder.bias".into(), t(&[16], 1.0)),
            ("predictor.w".into(), t(&[4, 4, 3], 2.0)),
            ("predictor.norm".into(), t(&[5], 3.0)),
        ]
    }

    /// Gives every parameter the gradient `g(param)` (by backward of sum(param * g)).
    fn set_grads(opt: &AdamW, g: impl Fn(&Tensor) -> Tensor) {
        let loss = opt.slots.iter().map(|s| (&s.param * g(&s.param)).sum(Kind::Float)).reduce(|a, b| a + b).unwrap();
        loss.backward();
    }

    /// Runs three steps with fixed gradients; `fused` false sends every slot down the
    /// single-tensor path. Returns parameters and moments after.
    fn run(fused: bool, skip: &dyn Fn(&str) -> bool) -> Vec<(Tensor, Tensor, Tensor, u64)> {
        let mut opt = AdamW::new(params(), (0.9, 0.95), 1e-8).unwrap();
        for s in &mut opt.slots {
            s.lr_scale = if s.name.starts_with("predictor") { 0.5 } else { 1.0 };
        }
        for step in 0..3 {
            opt.zero_grad().unwrap();
            set_grads(&opt, |p| values(&p.size(), 1.3 + step as f64) * 1e-2);
            if fused {
                opt.step_skipping(1e-2, 0.1, skip).unwrap();
            } else {
                opt.step += 1;
                for s in &mut opt.slots {
                    if skip(&s.name) {
                        continue;
                    }
                    s.steps += 1;
                    let g = s.param.grad();
                    let decay = if s.group == Group::Decay { 0.1 } else { 0.0 };
                    tch::no_grad(|| AdamW::step_one(s, &g, 1e-2, decay, (0.9, 0.95), 1e-8)).unwrap();
                }
            }
        }
        opt.slots.iter().map(|s| (s.param.copy(), s.exp_avg.copy(), s.exp_avg_sq.copy(), s.steps)).collect()
    }

    fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[]) / b.abs().max().double_value(&[]).max(1e-12)
    }

    #[test]
    fn the_fused_step_is_torchs_single_tensor_maths_to_float_rounding() {
        let (f, s) = (run(true, &|_| false), run(false, &|_| false));
        let start = params();
        for ((fp, fm, fv, fs), ((sp, sm, sv, ss), (_, p0))) in f.iter().zip(s.iter().zip(&start)) {
            assert_eq!(fs, ss);
            // the update itself (after - before) agrees to float rounding
            assert!(max_rel(&(fp - p0), &(sp - p0)) < 1e-5, "update {}", max_rel(&(fp - p0), &(sp - p0)));
            assert!(max_rel(fm, sm) < 1e-6 && max_rel(fv, sv) < 1e-6);
        }
        // and it moved the parameters: weight decay and steps happened
        assert!(f.iter().zip(&start).all(|((p, ..), (_, p0))| max_rel(p, p0) > 1e-4));
    }

    #[test]
    fn the_step_runs_the_fused_kernel_once_per_set_of_slots() {
        let mut opt = AdamW::new(params(), (0.9, 0.95), 1e-8).unwrap();
        set_grads(&opt, Tensor::ones_like);
        let trace = std::env::temp_dir().join(format!("ijepa-adamw-trace-{}.json", std::process::id()));
        let _one = crate::profile::TEST_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        crate::profile::start().unwrap();
        opt.step(1e-2, 0.1).unwrap();
        crate::profile::stop(&trace).unwrap();
        let ops = crate::profile::totals(&crate::profile::read_trace(&trace).unwrap());
        let _ = std::fs::remove_file(&trace);
        let calls = |n: &str| ops.iter().find(|o| o.name == n).map_or(0, |o| o.calls);
        // decayed weights and the undecayed bias / 1-D tensors: two calls, no per-tensor maths
        assert_eq!(calls("aten::_fused_adamw_"), 2, "{ops:?}");
        assert_eq!(calls("aten::addcdiv_"), 0);
    }

    #[test]
    fn a_skipped_slot_keeps_its_state_and_step_count() {
        let skip = |n: &str| n == "predictor.w";
        let out = run(true, &skip);
        let start = params();
        let (p, m, v, steps) = &out[2];
        assert_eq!(*steps, 0);
        assert_eq!(max_rel(p, &start[2].1), 0.0);
        assert_eq!((m.abs().sum(Kind::Float).double_value(&[]), v.abs().sum(Kind::Float).double_value(&[])), (0.0, 0.0));
        assert_eq!(out[0].3, 3);
        // the others match the single-tensor path with the same skip
        let reference = run(false, &skip);
        for i in [0, 1, 3] {
            assert!(max_rel(&(&out[i].0 - &start[i].1), &(&reference[i].0 - &start[i].1)) < 1e-5);
        }
    }

    #[test]
    fn a_slot_the_kernel_cannot_take_steps_on_the_single_tensor_path() {
        // a transposed (non-contiguous) parameter goes the single-tensor way, the others fused
        let mut ps = params();
        ps[0].1 = ps[0].1.detach().tr().set_requires_grad(true);
        let mut opt = AdamW::new(ps, (0.9, 0.999), 1e-8).unwrap();
        assert!(!opt.slots[0].param.is_contiguous());
        let before = opt.slots[0].param.copy();
        set_grads(&opt, Tensor::ones_like);
        opt.step(1e-2, 0.0).unwrap();
        // first Adam step with g = 1: exactly -lr (to eps) on every element
        let d = (&opt.slots[0].param - &before + 1e-2).abs().max().double_value(&[]);
        assert!(d < 1e-6, "{d}");
    }
}
