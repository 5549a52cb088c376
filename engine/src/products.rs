//! Which kernel computes the dense layers' matrix products on a CPU ([`Linear`]).
//!
//! libtorch computes `torch.nn.functional.linear` in fp32 with its BLAS (MKL's sgemm on x86
//! builds: the official code's path); the same product is also a 1x1 convolution over a
//! channels-last view of the tokens, which libtorch hands to oneDNN, with no copy. The two give
//! the same values up to float32 rounding (the parity fixtures replay either way), not always at
//! the same speed: MKL runs its AVX-512 code only on Intel's CPUs, so on an x86 CPU of another
//! maker with AVX-512 (AMD's Zen 4 and later) it runs AVX2 code where oneDNN runs AVX-512
//! (measured on a 2-core AMD EPYC: 1.6-2x on a ViT-Tiny's layers). So `auto` (the binary's
//! default, [`Policy::Auto`]) decides by detection, like `precision "auto"`, never by a timing
//! (which would make two runs of one file on one machine differ in the last bits): oneDNN for
//! fp32 on such a CPU, BLAS elsewhere and under bf16 autocast (where `linear` already runs on
//! oneDNN) ([`rule`]). A pretraining records its kernel in its manifest (`cpu_products`) and a
//! resumed run keeps the recorded one ([`adopt`]), so it goes on bit for bit. Libraries and
//! tests that never set a policy keep BLAS.
//!
//! [`Linear`]: crate::model::linear::Linear

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use tch::Device;

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

    /// The inverse of [`Products::name`] (any case, spaces around ignored).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "blas" => Some(Products::Blas),
            "onednn" => Some(Products::OneDnn),
            _ => None,
        }
    }
}

/// How a process picks its kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// By detection ([`rule`]).
    Auto,
    /// Always this one.
    Fixed(Products),
}

impl Policy {
    /// `auto`, `blas` or `onednn`, in any case (what `IJEPA_CPU_PRODUCTS` and `bench
    /// --products` accept).
    ///
    /// # Errors
    /// Any other word, named.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Policy::Auto),
            w => Products::parse(w).map(Policy::Fixed).ok_or_else(|| format!("{s:?} is not a kernel for the CPU's matrix products: auto, blas or onednn")),
        }
    }
}

/// A kernel and why it was taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    /// The kernel.
    pub products: Products,
    /// Why, in words (`auto: this AuthenticAMD CPU has AVX-512, where MKL runs AVX2 code ...`).
    pub why: String,
}

impl Choice {
    /// One line for a log: the kernel and why.
    pub fn describe(&self) -> String {
        let what = match self.products {
            Products::Blas => "BLAS (linear)",
            Products::OneDnn => "oneDNN (1x1 convolution)",
        };
        format!("{what}: {}", self.why)
    }
}

/// The kernel `auto` takes for a CPU of this `/proc/cpuinfo` text (or its `vendor_id` and
/// `flags` lines) at `bf16` autocast or not: oneDNN for fp32 on an x86 CPU with AVX-512 whose
/// maker is not Intel, BLAS elsewhere.
pub fn rule(cpuinfo: &str, bf16: bool) -> Choice {
    let vendor = crate::device::cpuinfo_field(cpuinfo, &["vendor_id"]).unwrap_or_default();
    let flags = crate::device::cpuinfo_field(cpuinfo, &["flags"]).unwrap_or_default();
    let avx512 = flags.split_whitespace().any(|f| f == "avx512f");
    let (products, why) = if bf16 {
        (Products::Blas, "auto: under bf16 autocast `linear` runs on oneDNN already".to_string())
    } else if avx512 && !vendor.is_empty() && vendor != "GenuineIntel" {
        (Products::OneDnn, format!("auto: this {vendor} CPU has AVX-512, where MKL runs AVX2 code and oneDNN AVX-512"))
    } else if avx512 {
        (Products::Blas, "auto: MKL runs AVX-512 code on this Intel CPU".to_string())
    } else if vendor.is_empty() && flags.is_empty() && crate::device::cpuinfo_field(cpuinfo, &["CPU implementer", "Features"]).is_some() {
        // (an Arm CPU's /proc/cpuinfo names its maker and features so: it read "could not be
        // read", of a file that was)
        (Products::Blas, "auto: not an x86 CPU".to_string())
    } else if vendor.is_empty() && flags.is_empty() {
        (Products::Blas, "auto: the CPU's maker and flags could not be read".to_string())
    } else {
        (Products::Blas, "auto: no AVX-512 on this CPU".to_string())
    };
    Choice { products, why }
}

const BLAS: u8 = 0;
const ONEDNN: u8 = 1;
/// The kernel [`Linear`](crate::model::linear::Linear) uses on CPU tensors.
static CURRENT: AtomicU8 = AtomicU8::new(BLAS);
/// The process's policy, and the kernel a resumed run (or rank 0) imposed, if any.
static STATE: Mutex<(Policy, Option<Products>)> = Mutex::new((Policy::Fixed(Products::Blas), None));

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

fn state() -> std::sync::MutexGuard<'static, (Policy, Option<Products>)> {
    STATE.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sets the process's policy (the binary: from `IJEPA_CPU_PRODUCTS`, default `auto`); applied
/// by the next [`choose`].
pub fn set_policy(policy: Policy) {
    state().0 = policy;
}

/// The process's policy.
pub fn policy() -> Policy {
    state().0
}

/// Chooses the kernel for work on `device` at `bf16` by the policy (a fixed kernel, or
/// [`rule`] for this CPU), drops what an earlier [`adopt`] imposed, and returns it; `None` off
/// the CPU (the products there are the device's).
pub fn choose(device: Device, bf16: bool) -> Option<Choice> {
    if device != Device::Cpu {
        return None;
    }
    let mut s = state();
    let c = match s.0 {
        Policy::Fixed(p) => Choice { products: p, why: "fixed (IJEPA_CPU_PRODUCTS or --products; BLAS where a library sets no policy)".into() },
        Policy::Auto => rule(&std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default(), bf16),
    };
    s.1 = None;
    set_current(c.products);
    Some(c)
}

/// Like [`choose`], but keeping what an [`adopt`] imposed (feature extraction inside a resumed
/// run stays on the run's kernel).
pub fn prepare(device: Device, bf16: bool) {
    // (the lock is released before `choose` takes it again)
    let adopted = state().1;
    match adopted {
        Some(p) if device == Device::Cpu => set_current(p),
        _ => {
            choose(device, bf16);
        }
    }
}

/// Makes `p` the process's kernel until the next [`choose`] or [`release`] (a run's: its
/// recorded one, or rank 0's).
pub fn adopt(p: Products) {
    state().1 = Some(p);
    set_current(p);
}

/// Ends what [`adopt`] imposed (a run that returns): the next [`prepare`] chooses afresh, so a
/// later evaluation in the same process takes the kernel `ijepa eval` alone would.
pub fn release() {
    state().1 = None;
}

/// What a pretraining runs on, from what it `began` with (a resume: its manifest's kernel, the
/// one its last attempt ran on: an `IJEPA_CPU_PRODUCTS` override is recorded there in turn),
/// the process's `policy` and the kernel that policy gives (`chosen`): the kernel, a line for
/// the log, and a warning where a fixed policy changes a resumed run's kernel.
pub fn for_run(began: Option<Products>, policy: Policy, chosen: &Choice) -> (Products, String, Option<String>) {
    match began {
        Some(p) if policy == Policy::Auto => (p, format!("{} (the kernel this run last ran on)", p.name()), None),
        Some(p) if p != chosen.products => (
            chosen.products,
            chosen.describe(),
            Some(format!(
                "this run last ran on {} matrix products and goes on on {} (IJEPA_CPU_PRODUCTS): its weights will differ in the last bits from an uninterrupted run's",
                p.name(),
                chosen.products.name()
            )),
        ),
        _ => (chosen.products, chosen.describe(), None),
    }
}

/// The policy `IJEPA_CPU_PRODUCTS` asks for (unset or empty: `auto`).
///
/// # Errors
/// A value other than auto, blas or onednn, named.
pub fn policy_from_env() -> Result<Policy> {
    match std::env::var("IJEPA_CPU_PRODUCTS") {
        Ok(v) if v.trim().is_empty() => Ok(Policy::Auto),
        Ok(v) => Policy::parse(&v).map_err(|e| Error::Usage(format!("IJEPA_CPU_PRODUCTS: {e}"))),
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
        assert_eq!(Policy::parse(" OneDNN "), Ok(Policy::Fixed(Products::OneDnn)));
        assert_eq!(Products::parse("ONEDNN"), Some(Products::OneDnn));
        assert_eq!(Policy::parse("blas"), Ok(Policy::Fixed(Products::Blas)));
        let e = Policy::parse("mkl").unwrap_err();
        assert!(e.contains("\"mkl\"") && e.contains("auto, blas or onednn"), "{e}");
        for p in [Products::Blas, Products::OneDnn] {
            assert_eq!(Products::parse(p.name()), Some(p));
        }
    }

    /// A resumed run keeps its kernel under `auto` whatever the rule gives; a fixed policy wins,
    /// with a warning where it changes the kernel; a fresh run takes the choice.
    #[test]
    fn a_run_keeps_the_kernel_it_began_with() {
        use Products::{Blas, OneDnn};
        for (rule_gives, began) in [(Blas, OneDnn), (OneDnn, Blas)] {
            let chosen = Choice { products: rule_gives, why: "auto: test".into() };
            let (p, line, warn) = for_run(Some(began), Policy::Auto, &chosen);
            assert_eq!((p, warn), (began, None));
            assert!(line.contains("the kernel this run last ran on"), "{line}");
            let fixed = Choice { products: rule_gives, why: "fixed".into() };
            let (p, _, warn) = for_run(Some(began), Policy::Fixed(rule_gives), &fixed);
            assert_eq!(p, rule_gives);
            assert!(warn.is_some_and(|w| w.contains("last bits")));
            assert_eq!(for_run(Some(rule_gives), Policy::Fixed(rule_gives), &fixed).2, None);
            assert_eq!(for_run(None, Policy::Auto, &chosen).0, rule_gives);
        }
    }

    /// `prepare` with nothing adopted chooses, and returns (it once held the state's lock into
    /// `choose`, which takes it again: a deadlock). Touches no global setting a library's
    /// default does not already have: policy BLAS, nothing adopted.
    #[test]
    fn prepare_without_an_adopted_kernel_returns() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            prepare(Device::Cpu, false);
            tx.send(current()).unwrap();
        });
        let got = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("prepare returned");
        assert_eq!(got, Products::Blas);
    }

    /// The rule on captured CPU descriptions: AMD with AVX-512 (Zen 4), Intel with AVX-512
    /// (Sapphire Rapids), AMD with AVX2 only (Zen 3), an unreadable one; bf16 keeps `linear`.
    #[test]
    fn the_rule_on_captured_cpus() {
        const ZEN4: &str = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16 avx512_vnni\n";
        const SAPPHIRE_RAPIDS: &str = "vendor_id\t: GenuineIntel\nflags\t\t: fpu avx2 avx512f avx512dq avx512_bf16 amx_bf16 amx_tile\n";
        const ZEN3: &str = "vendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx avx2 fma\n";
        assert_eq!(rule(ZEN4, false).products, Products::OneDnn);
        assert!(rule(ZEN4, false).why.contains("AuthenticAMD"), "{:?}", rule(ZEN4, false));
        assert_eq!(rule(ZEN4, true).products, Products::Blas);
        assert_eq!(rule(SAPPHIRE_RAPIDS, false).products, Products::Blas);
        assert_eq!(rule(ZEN3, false).products, Products::Blas);
        assert_eq!(rule("", false).products, Products::Blas);
        assert!(rule("", false).why.contains("could not be read"));
        // an Arm CPU's file, which has no vendor_id nor flags, is read
        let graviton = "processor\t: 0\nBogoMIPS\t: 243.75\nFeatures\t: fp asimd sve bf16\nCPU implementer\t: 0x41\nCPU part\t: 0xd40\n";
        assert_eq!((rule(graviton, false).products, rule(graviton, false).why.as_str()), (Products::Blas, "auto: not an x86 CPU"));
        // "avx512f" is a whole flag, not a prefix of another
        assert_eq!(rule("vendor_id\t: AuthenticAMD\nflags\t\t: avx512fx\n", false).products, Products::Blas);
    }
}
