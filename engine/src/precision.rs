//! Which precision a run computes in: the language's `precision "auto"` resolved for the
//! device at hand, and the warning for an explicit bf16 where the device has no bf16 units.
//!
//! bf16 autocast pays off only where the hardware multiplies bf16 natively: CUDA from compute
//! capability 8.0 (Ampere), and CPUs with AMX-BF16 (Sapphire Rapids and later) or
//! AVX512-BF16 (Cooper Lake, Zen 4). Elsewhere oneDNN falls back to converting paths: on a
//! 2-core AVX2-only EPYC a ViT-Tiny step took 16.0 s in bf16 against 1.23 s in fp32.
//!
//! `auto` is resolved before planning, so the stage hash, `config.json` and the manifest hold
//! the concrete value. The same file on a machine of another kind may therefore resolve
//! differently and plan a new pretraining instead of resuming the old one: one run never
//! mixes precisions (a resume is bit-identical only in the precision the run began in).
//! Writing the precision explicitly resumes the existing run on any machine.

use crate::error::{Error, Result};
use ijepa_dsl::config::{Experiment, Precision};
use tch::Device;

/// What the device offers for bf16.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bf16Support {
    /// bf16 matrix units (or instructions) the kernels use.
    pub native: bool,
    /// Why, in words: the CPU flag or the CUDA compute capability found.
    pub why: String,
}

/// The x86 flags (as `/proc/cpuinfo` spells them) that give native bf16 arithmetic.
pub const BF16_CPU_FLAGS: [&str; 2] = ["amx_bf16", "avx512_bf16"];

/// bf16 support of a CPU from its `/proc/cpuinfo` text (or just its `flags` line).
pub fn cpu_bf16(cpuinfo: &str) -> Bf16Support {
    let flags: Vec<&str> = crate::device::cpuinfo_field(cpuinfo, &["flags", "Features"]).unwrap_or(cpuinfo).split_whitespace().collect();
    match BF16_CPU_FLAGS.iter().find(|f| flags.contains(f)) {
        Some(f) => Bf16Support { native: true, why: format!("this CPU has {}", f.to_uppercase().replace('_', "-")) },
        None => Bf16Support {
            native: false,
            why: if flags.is_empty() {
                "the CPU flags could not be read".into()
            } else {
                "this CPU has neither AMX-BF16 nor AVX512-BF16".into()
            },
        },
    }
}

/// bf16 support of a CUDA device of compute capability `major.minor`.
pub fn cuda_bf16(major: i32, minor: i32) -> Bf16Support {
    Bf16Support { native: major >= 8, why: format!("CUDA compute capability {major}.{minor}") }
}

/// The compute capability of CUDA device `ordinal`, from the driver (`libcuda.so.1`).
fn cuda_capability(ordinal: usize) -> Option<(i32, i32)> {
    type Init = unsafe extern "C" fn(u32) -> i32;
    type Get = unsafe extern "C" fn(*mut i32, i32) -> i32;
    type Attr = unsafe extern "C" fn(*mut i32, i32, i32) -> i32;
    // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR / _MINOR
    const MAJOR: i32 = 75;
    const MINOR: i32 = 76;
    // SAFETY: dlopen/dlsym of the CUDA driver; the symbols have the C signatures above (CUDA
    // driver API, stable since CUDA 2); every out-pointer is a live local.
    unsafe {
        let lib = libc::dlopen(c"libcuda.so.1".as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
        if lib.is_null() {
            return None;
        }
        let sym = |name: &std::ffi::CStr| {
            let p = libc::dlsym(lib, name.as_ptr());
            (!p.is_null()).then_some(p)
        };
        let (init, get, attr) = (sym(c"cuInit")?, sym(c"cuDeviceGet")?, sym(c"cuDeviceGetAttribute")?);
        let init: Init = std::mem::transmute(init);
        let get: Get = std::mem::transmute(get);
        let attr: Attr = std::mem::transmute(attr);
        let (mut dev, mut major, mut minor) = (0i32, 0i32, 0i32);
        if init(0) != 0 || get(&mut dev, ordinal as i32) != 0 {
            return None;
        }
        if attr(&mut major, MAJOR, dev) != 0 || attr(&mut minor, MINOR, dev) != 0 {
            return None;
        }
        Some((major, minor))
    }
}

/// bf16 support of `device` on this machine.
pub fn bf16_support(device: Device) -> Bf16Support {
    match device {
        Device::Cuda(i) => match cuda_capability(i) {
            Some((major, minor)) => cuda_bf16(major, minor),
            None => Bf16Support { native: false, why: "the CUDA compute capability could not be read".into() },
        },
        _ => cpu_bf16(&std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default()),
    }
}

/// A precision resolved for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Fp32 or Bf16 (never Auto).
    pub precision: Precision,
    /// One line: the value, and why (`bf16 (auto: this CPU has AMX-BF16)`).
    pub describe: String,
    /// Set for an explicit bf16 on a device without native bf16: the cause and the cost.
    pub warning: Option<String>,
}

/// The name the language uses for a precision.
pub fn name(p: Precision) -> &'static str {
    match p {
        Precision::Auto => "auto",
        Precision::Fp32 => "fp32",
        Precision::Bf16 => "bf16",
    }
}

/// Resolves `requested` for a device with `support`.
pub fn resolve_with(requested: Precision, support: &Bf16Support) -> Resolved {
    match requested {
        Precision::Auto => {
            let p = if support.native { Precision::Bf16 } else { Precision::Fp32 };
            Resolved { precision: p, describe: format!("{} (auto: {})", name(p), support.why), warning: None }
        }
        Precision::Fp32 => Resolved { precision: Precision::Fp32, describe: "fp32".into(), warning: None },
        Precision::Bf16 => Resolved {
            precision: Precision::Bf16,
            describe: if support.native { format!("bf16 ({})", support.why) } else { format!("bf16 (emulated: {})", support.why) },
            warning: (!support.native).then(|| {
                format!(
                    "precision \"bf16\" on a device without native bf16 ({}): autocast falls back to slow \
                     conversion paths, measured up to 13x slower than fp32 (a ViT-Tiny step: 16.0 s vs 1.23 s \
                     on an AVX2-only CPU); `precision \"auto\"` picks fp32 here",
                    support.why
                )
            }),
        },
    }
}

/// Whether `requested` means bf16 autocast on `device` (`auto` resolved on the spot).
pub fn uses_bf16(requested: Precision, device: Device) -> bool {
    match requested {
        Precision::Auto => bf16_support(device).native,
        p => p == Precision::Bf16,
    }
}

/// Resolves the experiment's precision for its device in place (device `auto` is looked up
/// as training will); returns the resolution. A precision written out needs no device: a GPU
/// experiment is planned on a machine without one (a cluster's login node), and training
/// there refuses the device itself.
///
/// # Errors
/// `precision "auto"` for a device this machine does not have: what auto means depends on it.
pub fn resolve_experiment(exp: &mut Experiment) -> Result<Resolved> {
    let device = match crate::device::resolve(&exp.device) {
        Ok(device) => device,
        Err(_) if exp.precision != Precision::Auto => {
            return Ok(Resolved { precision: exp.precision, describe: name(exp.precision).to_string(), warning: None });
        }
        Err(Error::Device(m)) => {
            return Err(Error::Device(format!(
                "{m}; `precision \"auto\"` resolves on the device the run trains on (bf16 where it computes it natively, else fp32), and a stage's hash \
                 holds the resolved value: to plan it here, write the precision the run will take (`precision \"bf16\"` on an A100 or newer)"
            )))
        }
        Err(e) => return Err(e),
    };
    let r = resolve_with(exp.precision, &bf16_support(device));
    exp.precision = r.precision;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flags line of the 2-core AMD EPYC (AVX2 only) the issue was measured on.
    const EPYC_AVX2: &str = "flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl nonstop_tsc cpuid extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext invpcid_single ssbd ibrs ibpb stibp vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 rdseed adx smap clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 clzero xsaveerptr rdpru wbnoinvd arat npt nrip_save umip rdpid";
    /// Sapphire Rapids (this project's Intel development machine): AMX-BF16 and AVX512-BF16.
    const SAPPHIRE_RAPIDS: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep avx2 smep bmi2 erms invpcid rtm avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves avx_vnni avx512_bf16 arat avx512vbmi umip avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq rdpid cldemote movdiri movdir64b fsrm serialize tsxldtrk amx_bf16 avx512_fp16 amx_tile amx_int8 arch_capabilities\nbugs\t\t: spectre_v1\n";
    /// Ice Lake server: AVX-512 without its bf16 extension.
    const ICE_LAKE: &str = "flags\t\t: fpu sse sse2 avx avx2 avx512f avx512dq avx512cd avx512bw avx512vl avx512_vnni avx512_bitalg avx512_vpopcntdq";
    /// Zen 4: AVX512-BF16, no AMX.
    const ZEN4: &str = "flags\t\t: fpu sse sse2 avx avx2 avx512f avx512dq avx512_bf16 avx512_vnni";

    #[test]
    fn detection_on_captured_cpu_flags() {
        assert!(!cpu_bf16(EPYC_AVX2).native);
        assert!(!cpu_bf16(ICE_LAKE).native, "avx512f alone is not bf16");
        let spr = cpu_bf16(SAPPHIRE_RAPIDS);
        assert!(spr.native);
        assert_eq!(spr.why, "this CPU has AMX-BF16");
        assert!(cpu_bf16(ZEN4).native);
        assert_eq!(cpu_bf16(ZEN4).why, "this CPU has AVX512-BF16");
        assert!(!cpu_bf16("").native);
        // a word that merely contains the flag name is not the flag
        assert!(!cpu_bf16("flags : xamx_bf16x avx2").native);
    }

    /// A precision written out resolves without the device (a GPU experiment planned on a
    /// machine without one keeps its hash); `auto` on a device that is not here says why it
    /// cannot resolve and what to write.
    #[test]
    fn a_written_precision_needs_no_device() {
        if tch::Cuda::device_count() > 0 {
            return;
        }
        let mut exp = Experiment::with_defaults("gpu");
        exp.device = "cuda".into();
        exp.precision = Precision::Bf16;
        let r = resolve_experiment(&mut exp).unwrap();
        assert_eq!((r.precision, exp.precision, r.warning), (Precision::Bf16, Precision::Bf16, None));
        exp.precision = Precision::Auto;
        let e = resolve_experiment(&mut exp).unwrap_err().to_string();
        // (CUDA_VISIBLE_DEVICES, where the shell sets it, is named between the two)
        assert!(e.starts_with("device: \"cuda\" asked for, but this machine has 0 CUDA device(s)"), "{e}");
        assert!(e.contains("; `precision \"auto\"` resolves on the device"), "{e}");
    }

    #[test]
    fn auto_resolves_by_support_and_bf16_warns_without_it() {
        let avx2 = cpu_bf16(EPYC_AVX2);
        let amx = cpu_bf16(SAPPHIRE_RAPIDS);
        let r = resolve_with(Precision::Auto, &avx2);
        assert_eq!((r.precision, r.warning.is_none()), (Precision::Fp32, true));
        assert_eq!(r.describe, "fp32 (auto: this CPU has neither AMX-BF16 nor AVX512-BF16)");
        let r = resolve_with(Precision::Auto, &amx);
        assert_eq!((r.precision, r.warning.is_none()), (Precision::Bf16, true));
        let r = resolve_with(Precision::Bf16, &avx2);
        assert_eq!(r.precision, Precision::Bf16);
        assert!(r.warning.as_deref().is_some_and(|w| w.contains("13x") && w.contains("neither AMX-BF16")));
        assert!(resolve_with(Precision::Bf16, &amx).warning.is_none());
        assert!(resolve_with(Precision::Fp32, &amx).warning.is_none());
        assert_eq!(resolve_with(Precision::Fp32, &amx).precision, Precision::Fp32);
    }

    #[test]
    fn cuda_from_ampere_on() {
        assert!(!cuda_bf16(7, 0).native, "V100");
        assert!(!cuda_bf16(7, 5).native, "T4");
        assert!(cuda_bf16(8, 0).native, "A100");
        assert!(cuda_bf16(9, 0).native, "H100");
        assert_eq!(resolve_with(Precision::Auto, &cuda_bf16(7, 0)).precision, Precision::Fp32);
    }
}
