//! All-reduce benchmark: seconds per op and bandwidths as nccl-tests defines them
//! (algbw = bytes / time; busbw = algbw * 2 (n - 1) / n, the per-link traffic of a ring
//! all-reduce, comparable across world sizes).

use super::{ProcessGroup, ReduceOp};
use crate::error::{Error, Result};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// One row of [`bench_all_reduce`]: (bytes, seconds per op, algbw GB/s, busbw GB/s).
pub type BenchRow = (usize, f64, f64, f64);

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// Times `iters` f32 SUM all-reduces of each size (bytes, rounded down to whole f32s, at least
/// one) on the group's device, after 2 warm-up ops and a barrier. The time is the mean over
/// ranks of each rank's mean per op (the device is synchronised before reading the clock).
/// Every rank must call it with the same arguments.
pub fn bench_all_reduce(pg: &ProcessGroup, sizes_bytes: &[usize], iters: usize) -> Result<Vec<BenchRow>> {
    if iters == 0 {
        return Err(Error::Config("bench_all_reduce: iters must be positive".into()));
    }
    let device = pg.device();
    let n = pg.world_size() as f64;
    let mut rows = Vec::with_capacity(sizes_bytes.len());
    for &bytes in sizes_bytes {
        let numel = (bytes / 4).max(1) as i64;
        let bytes = numel as usize * 4;
        let t = Tensor::f_ones([numel], (Kind::Float, device))?;
        for _ in 0..2 {
            pg.all_reduce(&t, ReduceOp::Sum)?;
        }
        sync(device);
        pg.barrier()?;
        let start = Instant::now();
        for _ in 0..iters {
            pg.all_reduce(&t, ReduceOp::Sum)?;
        }
        sync(device);
        let local = start.elapsed().as_secs_f64() / iters as f64;
        let mean = Tensor::from_slice(&[local]).f_to_device(device)?;
        pg.all_reduce(&mean, ReduceOp::Avg)?;
        let secs = f64::try_from(&mean.f_to_device(Device::Cpu)?.f_view([-1])?.f_get(0)?)?;
        let algbw = bytes as f64 / secs / 1e9;
        let busbw = if n > 1.0 { algbw * 2.0 * (n - 1.0) / n } else { algbw };
        rows.push((bytes, secs, algbw, busbw));
    }
    Ok(rows)
}
