//! Which kernel computes the dense layers' matrix products on a CPU ([`Linear`]).
//!
//! libtorch computes `torch.nn.functional.linear` in fp32 with its BLAS (MKL's sgemm on x86
//! builds, what the official code runs); the same product is also a 1x1 convolution over a
//! channels-last view of the tokens, which libtorch hands to oneDNN, with no copy. The two give
//! the same values up to float32 rounding (the parity fixtures replay either way), but not at the
//! same speed everywhere: on an AMD EPYC with AVX-512, MKL runs its AVX2 code and oneDNN its
//! AVX-512 code, about twice as fast; elsewhere they can be level, or BLAS ahead. So nothing
//! here is tuned to one machine: where the binary lets it ([`Policy::Auto`], `IJEPA_CPU_PRODUCTS`
//! unset or `auto`), a process measures both on its model's layer shapes, forward and backward
//! at its precision and threads, and takes oneDNN only when it is at least 10% faster
//! ([`calibrate`]). The choice holds for the whole process; a pretraining records it in its
//! manifest (`cpu_products`) and a resumed run takes the recorded one again, so it stays bit for
//! bit on the path it began on. Libraries and tests that never set a policy keep BLAS.
//!
//! [`Linear`]: crate::model::linear::Linear

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// A kernel for the dense products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Products {
    /// `linear`: libtorch's BLAS (the official code's path).
    Blas,
    /// A 1x1 convolution over a channels-last view: oneDNN.
    OneDnn,
}

impl Products {
    /// The name the manifest and `IJEPA_CPU_PRODUCTS` use: `blas` or `onednn`.
    pub fn name(self) -> &'static str {
        match self {
            Products::Blas => "blas",
            Products::OneDnn => "onednn",
        }
    }

    /// The inverse of [`Products::name`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "blas" => Some(Products::Blas),
            "onednn" => Some(Products::OneDnn),
            _ => None,
        }
    }
}

/// How a process picks its kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Measure both on the first model and take the faster (oneDNN only when 10% faster).
    Auto,
    /// Always this one.
    Fixed(Products),
}

impl Policy {
    /// `auto`, `blas` or `onednn` (what `IJEPA_CPU_PRODUCTS` and `bench --products` accept).
    ///
    /// # Errors
    /// Any other word, named.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(Policy::Auto),
            _ => Products::parse(s).map(Policy::Fixed).ok_or_else(|| format!("{s:?} is not a kernel for the CPU's matrix products: auto, blas or onednn")),
        }
    }
}

const BLAS: u8 = 0;
const ONEDNN: u8 = 1;
/// The kernel [`Linear`](crate::model::linear::Linear) uses on CPU tensors.
static CURRENT: AtomicU8 = AtomicU8::new(BLAS);
/// The process's policy and what it settled on (`None`: not yet chosen).
static STATE: Mutex<(Policy, Option<Choice>)> = Mutex::new((Policy::Fixed(Products::Blas), None));

/// A settled choice and how it was made.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    /// The kernel.
    pub products: Products,
    /// Milliseconds of the measured products with BLAS and with oneDNN (`None`: not measured).
    pub measured: Option<(f64, f64)>,
}

impl Choice {
    /// One line for the run's log and `bench`: the kernel and, when measured, both times.
    pub fn describe(&self) -> String {
        let what = match self.products {
            Products::Blas => "BLAS (linear)",
            Products::OneDnn => "oneDNN (1x1 convolution)",
        };
        match self.measured {
            Some((blas, onednn)) => format!("{what}; measured here: BLAS {blas:.1} ms, oneDNN {onednn:.1} ms"),
            None => what.to_string(),
        }
    }
}

/// The kernel CPU products use now.
pub fn current() -> Products {
    if CURRENT.load(Ordering::Relaxed) == ONEDNN {
        Products::OneDnn
    } else {
        Products::Blas
    }
}

fn set_current(p: Products) {
    CURRENT.store(if p == Products::OneDnn { ONEDNN } else { BLAS }, Ordering::Relaxed);
}

fn state() -> std::sync::MutexGuard<'static, (Policy, Option<Choice>)> {
    STATE.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sets the process's policy (the binary: from `IJEPA_CPU_PRODUCTS`, default `auto`). A fixed
/// kernel applies at once; `auto` measures at the first [`prepare`].
pub fn set_policy(policy: Policy) {
    let mut s = state();
    s.0 = policy;
    s.1 = match policy {
        Policy::Fixed(p) => {
            set_current(p);
            Some(Choice { products: p, measured: None })
        }
        Policy::Auto => None,
    };
}

/// The process's policy.
pub fn policy() -> Policy {
    state().0
}

/// Settles the kernel for a model of width `width` on `device` at `bf16` (autocast or not)
/// and returns it: what the process already settled on, else (policy `auto`) a measurement.
/// `None` off the CPU (the products there are the device's).
///
/// # Errors
/// libtorch's, from the measurement.
pub fn prepare(device: Device, width: i64, bf16: bool) -> Result<Option<Choice>> {
    if device != Device::Cpu {
        return Ok(None);
    }
    let mut s = state();
    if let Some(c) = &s.1 {
        return Ok(Some(c.clone()));
    }
    let choice = calibrate(width, bf16)?;
    set_current(choice.products);
    tracing::debug!("CPU matrix products: {}", choice.describe());
    s.1 = Some(choice.clone());
    Ok(Some(choice))
}

/// Makes `p` the process's kernel from now on (a resumed run's recorded one, or rank 0's).
pub fn adopt(p: Products) {
    let mut s = state();
    set_current(p);
    match &mut s.1 {
        Some(c) if c.products == p => {}
        other => *other = Some(Choice { products: p, measured: None }),
    }
}

/// Times both kernels on the products of a transformer block of width `width` (`width ->
/// 4 width` and back, forward and backward, at `bf16` autocast or not, on the process's
/// threads), alternating them over five rounds after two untimed ones, and keeps each
/// kernel's fastest round. oneDNN is chosen when it takes at most 0.9 of BLAS's time.
///
/// # Errors
/// libtorch's (a product that fails with BLAS); a oneDNN product that fails chooses BLAS.
pub fn calibrate(width: i64, bf16: bool) -> Result<Choice> {
    // (a model wider than 2048 measures at 2048: the kernels' relative speed, not its cost)
    let w = width.clamp(8, 2048);
    // about 2^28 multiply-adds a product, in a whole number of 16-row groups (256-4096 rows)
    let rows = ((1i64 << 28) / (4 * w * w)).clamp(256, 4096) / 16 * 16;
    let opts = (Kind::Float, Device::Cpu);
    let shapes = [(w, 4 * w), (4 * w, w)];
    let data: Vec<(Tensor, Tensor, Tensor, Tensor)> = shapes
        .iter()
        .map(|&(k, n)| {
            let x = Tensor::randn([16, rows / 16, k], opts).set_requires_grad(true);
            let weight = (Tensor::randn([n, k], opts) * (1.0 / (k as f64).sqrt())).set_requires_grad(true);
            let bias = Tensor::zeros([n], opts).set_requires_grad(true);
            let g = Tensor::randn([16, rows / 16, n], opts);
            (x, weight, bias, g)
        })
        .collect();
    let run = |p: Products| -> Result<f64> {
        let t = Instant::now();
        for (x, weight, bias, g) in &data {
            let y = crate::autocast::bf16(Device::Cpu, bf16, || crate::model::linear::product(p, x, weight, bias))??;
            y.f_mul(g)?.f_sum(Kind::Float)?.f_backward()?;
        }
        Ok(t.elapsed().as_secs_f64() * 1e3)
    };
    for _ in 0..2 {
        run(Products::Blas)?;
        if let Err(e) = run(Products::OneDnn) {
            tracing::debug!("oneDNN products failed ({e}): BLAS");
            return Ok(Choice { products: Products::Blas, measured: None });
        }
    }
    let (mut blas, mut onednn) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..5 {
        blas = blas.min(run(Products::Blas)?);
        onednn = onednn.min(run(Products::OneDnn)?);
    }
    let products = if onednn <= 0.9 * blas { Products::OneDnn } else { Products::Blas };
    Ok(Choice { products, measured: Some((blas, onednn)) })
}

/// The policy `IJEPA_CPU_PRODUCTS` asks for (unset: `auto`).
///
/// # Errors
/// A value other than auto, blas or onednn, named.
pub fn policy_from_env() -> Result<Policy> {
    match std::env::var("IJEPA_CPU_PRODUCTS") {
        Ok(v) => Policy::parse(v.trim()).map_err(|e| Error::Usage(format!("IJEPA_CPU_PRODUCTS={v:?}: {e}"))),
        Err(std::env::VarError::NotPresent) => Ok(Policy::Auto),
        Err(std::env::VarError::NotUnicode(v)) => Err(Error::Usage(format!("IJEPA_CPU_PRODUCTS={v:?} is not text: auto, blas or onednn"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_name_the_bad_word() {
        assert_eq!(Policy::parse("auto"), Ok(Policy::Auto));
        assert_eq!(Policy::parse("onednn"), Ok(Policy::Fixed(Products::OneDnn)));
        assert_eq!(Policy::parse("blas"), Ok(Policy::Fixed(Products::Blas)));
        let e = Policy::parse("mkl").unwrap_err();
        assert!(e.contains("\"mkl\"") && e.contains("auto, blas or onednn"), "{e}");
        for p in [Products::Blas, Products::OneDnn] {
            assert_eq!(Products::parse(p.name()), Some(p));
        }
    }

    #[test]
    fn calibration_measures_both_and_chooses_by_the_margin() {
        let c = calibrate(32, false).unwrap();
        let (blas, onednn) = c.measured.expect("both kernels run on this CPU");
        assert!(blas > 0.0 && onednn > 0.0, "{c:?}");
        assert_eq!(c.products == Products::OneDnn, onednn <= 0.9 * blas, "{c:?}");
        assert!(c.describe().contains("measured here"), "{}", c.describe());
    }
}
