//! Device selection from the language's `device` value.

use crate::error::{Error, Result};
use tch::Device;

/// `auto` (CUDA 0 when available, else CPU), `cpu`, `cuda` or `cuda:N`.
pub fn resolve(spec: &str) -> Result<Device> {
    let cuda_count = || tch::Cuda::device_count() as usize;
    match spec {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" | "cuda:0" if cuda_count() > 0 => Ok(Device::Cuda(0)),
        // (`cudax` or `cuda:x` was read as cuda:0)
        s if s == "cuda" || s.strip_prefix("cuda:").is_some_and(|i| i.parse::<usize>().is_ok()) => {
            let idx: usize = s.strip_prefix("cuda:").and_then(|i| i.parse().ok()).unwrap_or(0);
            if idx < cuda_count() {
                Ok(Device::Cuda(idx))
            } else {
                Err(Error::Device(shortage(s, cuda_count(), std::env::var("CUDA_VISIBLE_DEVICES").ok().as_deref())))
            }
        }
        other => Err(Error::Config(format!("unknown device {other:?} (use auto, cpu, cuda or cuda:N)"))),
    }
}

/// Why `spec` names no device of the `n` this process sees; `cvd`, CUDA_VISIBLE_DEVICES where
/// set (an empty value hides every GPU: "0 CUDA devices" on a machine of eight named no cause).
fn shortage(spec: &str, n: usize, cvd: Option<&str>) -> String {
    let limit = cvd.map_or(String::new(), |v| format!(" (CUDA_VISIBLE_DEVICES={v:?} limits which this process sees)"));
    format!("{spec:?} asked for, but this machine has {n} CUDA device(s){limit}")
}

/// Waits for queued kernels, so wall-clock timings are honest on CUDA.
pub fn synchronize(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// The value of the first line of `/proc/cpuinfo` text that starts with one of `names` (what
/// follows its `:`, trimmed): the model name, the vendor, the flags.
pub fn cpuinfo_field<'a>(cpuinfo: &'a str, names: &[&str]) -> Option<&'a str> {
    cpuinfo.lines().find(|l| names.iter().any(|n| l.starts_with(n))).and_then(|l| l.split_once(':')).map(|(_, v)| v.trim())
}

/// The CPU's model name (the first `model name` of `/proc/cpuinfo`), for measurement lines;
/// an Arm CPU's, which has none, by its implementer and part codes (it read "unknown").
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| model_of(&t)).unwrap_or_else(|| "unknown".into())
}

/// [`cpu_model`] of `/proc/cpuinfo` text.
fn model_of(cpuinfo: &str) -> Option<String> {
    if let Some(m) = cpuinfo_field(cpuinfo, &["model name"]) {
        return Some(m.to_string());
    }
    let implementer = cpuinfo_field(cpuinfo, &["CPU implementer"])?;
    let part = cpuinfo_field(cpuinfo, &["CPU part"]).unwrap_or("?");
    Some(format!("Arm CPU (implementer {implementer}, part {part})"))
}

/// [`describe`] with the machine's processor for a CPU (`cpu (2 threads) on AMD EPYC`): what a
/// run's or an evaluation's record names, since its timings depend on it.
pub fn describe_machine(device: Device) -> String {
    match device {
        Device::Cpu => format!("{} on {}", describe(device), cpu_model()),
        other => describe(other),
    }
}

/// Human-readable name of a device.
pub fn describe(device: Device) -> String {
    match device {
        Device::Cuda(i) => format!("cuda:{i}"),
        Device::Cpu => match tch::get_num_threads() {
            1 => "cpu (1 thread)".to_string(),
            n => format!("cpu ({n} threads)"),
        },
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The model name of an x86 CPU; an Arm CPU's, which has none, by its codes.
    #[test]
    fn the_cpu_model_is_named_on_arm_too() {
        assert_eq!(model_of("vendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\n").as_deref(), Some("AMD EPYC"));
        assert_eq!(model_of("Features\t: fp asimd\nCPU implementer\t: 0x41\nCPU part\t: 0xd40\n").as_deref(), Some("Arm CPU (implementer 0x41, part 0xd40)"));
        assert_eq!(model_of(""), None);
    }

    #[test]
    fn a_device_name_is_read_whole() {
        assert_eq!(resolve("cpu").unwrap(), Device::Cpu);
        // (read as cuda:0 before)
        for bad in ["cudax", "cuda:x", "cuda:", "gpu"] {
            let e = resolve(bad).unwrap_err().to_string();
            assert!(e.contains("unknown device") && e.contains("use auto, cpu, cuda or cuda:N"), "{bad}: {e}");
        }
        // a CUDA device this machine lacks is said so, naming what it has
        let n = tch::Cuda::device_count();
        let e = resolve(&format!("cuda:{n}")).unwrap_err().to_string();
        assert!(e.contains(&format!("this machine has {n} CUDA device(s)")), "{e}");
        // CUDA_VISIBLE_DEVICES, where set, is named as what limits them
        assert_eq!(shortage("cuda", 0, Some("")), r#""cuda" asked for, but this machine has 0 CUDA device(s) (CUDA_VISIBLE_DEVICES="" limits which this process sees)"#);
        assert_eq!(shortage("cuda:2", 1, None), r#""cuda:2" asked for, but this machine has 1 CUDA device(s)"#);
    }
}
