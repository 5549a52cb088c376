//! bf16 autocast on CPU and CUDA through `at::autocast` (csrc/shim.cpp). tch's own
//! `autocast` only toggles CUDA; this CPU has AMX-BF16, where autocast makes steps ~2x faster.

use crate::error::{Error, Result};
use tch::Device;

extern "C" {
    fn ijepa_autocast_enter(device: i32, dtype: i32) -> i32;
    fn ijepa_autocast_exit(device: i32, prev: i32) -> i32;
    fn ijepa_autocast_is_enabled(device: i32) -> i32;
}

/// c10::ScalarType::BFloat16
const BFLOAT16: i32 = 15;

fn device_code(device: Device) -> i32 {
    match device {
        Device::Cuda(_) => 1,
        _ => 0,
    }
}

/// Runs `f` with bf16 autocast enabled for `device` when `enabled` (else runs it as is).
pub fn bf16<T>(device: Device, enabled: bool, f: impl FnOnce() -> T) -> Result<T> {
    if !enabled {
        return Ok(f());
    }
    let dev = device_code(device);
    // SAFETY: plain C functions over thread-local autocast state; no pointers cross.
    let prev = unsafe { ijepa_autocast_enter(dev, BFLOAT16) };
    if prev < 0 {
        return Err(Error::Config("bf16 autocast is not available on this device".into()));
    }
    let out = f();
    // SAFETY: as above; restores the state saved by enter.
    if unsafe { ijepa_autocast_exit(dev, prev) } < 0 {
        return Err(Error::Train("leaving bf16 autocast failed".into()));
    }
    Ok(out)
}

/// Whether autocast is currently on for `device` (for tests).
pub fn is_enabled(device: Device) -> bool {
    // SAFETY: reads thread-local state.
    unsafe { ijepa_autocast_is_enabled(device_code(device)) == 1 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    #[test]
    fn cpu_autocast_runs_matmul_in_bf16_and_restores_state() {
        let a = Tensor::randn([4, 8], (Kind::Float, Device::Cpu));
        let w = Tensor::randn([3, 8], (Kind::Float, Device::Cpu));
        assert!(!is_enabled(Device::Cpu));
        let y = bf16(Device::Cpu, true, || {
            assert!(is_enabled(Device::Cpu));
            a.linear(&w, None::<Tensor>)
        })
        .unwrap();
        assert_eq!(y.kind(), Kind::BFloat16);
        assert!(!is_enabled(Device::Cpu));
        let y = bf16(Device::Cpu, false, || a.linear(&w, None::<Tensor>)).unwrap();
        assert_eq!(y.kind(), Kind::Float);
    }
}
