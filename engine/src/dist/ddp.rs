//! The two collective steps of data-parallel training, as in
//! `torch.nn.parallel.DistributedDataParallel`: rank 0's initial weights are broadcast to every
//! rank ([`broadcast_tensors`]), and after each backward the gradients are averaged across
//! ranks in flat buckets of ~25 MiB ([`GradBuckets`]), so that every rank's optimizer takes
//! the same step.

use super::{ProcessGroup, ReduceOp};
use crate::error::{Error, Result};
use tch::{Device, Kind, Tensor};

/// DDP's default bucket size (`bucket_cap_mb=25`).
pub const DEFAULT_BUCKET_BYTES: usize = 25 * 1024 * 1024;

/// Flat buffers of [`broadcast_tensors`] (bounds the temporary memory it needs).
const BROADCAST_BUCKET_BYTES: usize = 64 * 1024 * 1024;

/// Splits tensors (by index) into buckets: one group per (dtype, device) in order of first
/// appearance, each group cut into runs of at most `cap_bytes` (a tensor larger than the cap
/// gets a bucket of its own). Deterministic given the list, so identical on every rank.
fn plan(items: &[(Kind, Device, usize)], cap_bytes: usize) -> Vec<Vec<usize>> {
    let mut groups: Vec<((Kind, Device), Vec<usize>)> = Vec::new();
    for (i, &(kind, device, _)) in items.iter().enumerate() {
        match groups.iter_mut().find(|(k, _)| *k == (kind, device)) {
            Some((_, v)) => v.push(i),
            None => groups.push(((kind, device), vec![i])),
        }
    }
    let mut buckets = Vec::new();
    for (_, idx) in groups {
        let mut cur: Vec<usize> = Vec::new();
        let mut bytes = 0usize;
        for i in idx {
            let (kind, _, numel) = items[i];
            let b = numel * kind.elt_size_in_bytes();
            if !cur.is_empty() && bytes + b > cap_bytes {
                buckets.push(std::mem::take(&mut cur));
                bytes = 0;
            }
            cur.push(i);
            bytes += b;
        }
        if !cur.is_empty() {
            buckets.push(cur);
        }
    }
    buckets
}

/// Copies `src` (flat) into `dst` (any shape, any strides) without autograd.
fn copy_into(dst: &Tensor, src: &Tensor) -> Result<()> {
    let mut d = dst.detach();
    d.f_copy_(&src.f_view(d.size().as_slice())?)?;
    Ok(())
}

/// Broadcasts `tensors` from rank `root` in place (every rank passes the same list in the same
/// order: parameters, buffers). Tensors are packed into flat buffers of up to 64 MiB per
/// dtype/device, one broadcast each.
pub fn broadcast_tensors(pg: &ProcessGroup, tensors: &[Tensor], root: usize) -> Result<()> {
    let items: Vec<_> = tensors.iter().map(|t| (t.kind(), t.device(), t.numel())).collect();
    for bucket in plan(&items, BROADCAST_BUCKET_BYTES) {
        let flats: Vec<Tensor> =
            bucket.iter().map(|&i| tensors[i].detach().f_reshape([-1])).collect::<std::result::Result<_, _>>()?;
        let flat = Tensor::f_cat(&flats, 0)?;
        pg.broadcast(&flat, root)?;
        let mut off = 0i64;
        for &i in &bucket {
            let n = tensors[i].numel() as i64;
            copy_into(&tensors[i], &flat.f_narrow(0, off, n)?)?;
            off += n;
        }
    }
    Ok(())
}

/// One bucket: parameter indices and its element count.
#[derive(Debug)]
struct Bucket {
    members: Vec<usize>,
    numel: i64,
    kind: Kind,
    device: Device,
}

/// Gradient averaging across ranks in flat buckets (DDP's all-reduce step, done after
/// backward rather than overlapped with it).
///
/// Each bucket's gradients are copied into one contiguous buffer, all-reduced (sum), divided
/// by the world size and copied back: one collective per bucket instead of one per parameter.
///
/// A parameter whose `.grad()` is undefined on this rank (unused in this step's graph)
/// contributes zeros, so every rank runs the same collectives. Each bucket also carries one
/// "defined" flag per parameter: if any rank had a gradient, ranks without one get it
/// materialised (the average of the others' gradients and zeros), so every rank's optimizer
/// sees the same gradients; if no rank had one, it stays undefined everywhere (a parameter
/// unused by all is skipped by all).
#[derive(Debug)]
pub struct GradBuckets {
    params: Vec<Tensor>,
    buckets: Vec<Bucket>,
}

impl GradBuckets {
    /// Plans the buckets for `params` (the same list, in the same order, on every rank), each
    /// holding at most `bucket_bytes` of gradients ([`DEFAULT_BUCKET_BYTES`] is DDP's).
    /// Parameters that do not require grad are left out.
    pub fn new(params: &[Tensor], bucket_bytes: usize) -> Result<Self> {
        if bucket_bytes == 0 {
            return Err(Error::Config("gradient bucket size must be positive".into()));
        }
        let params: Vec<Tensor> = params.iter().filter(|p| p.requires_grad()).map(Tensor::shallow_clone).collect();
        let items: Vec<_> = params.iter().map(|p| (p.kind(), p.device(), p.numel())).collect();
        let buckets = plan(&items, bucket_bytes)
            .into_iter()
            .map(|members| {
                let numel = members.iter().map(|&i| items[i].2 as i64).sum();
                let (kind, device, _) = items[members[0]];
                Bucket { members, numel, kind, device }
            })
            .collect();
        Ok(GradBuckets { params, buckets })
    }

    /// Number of buckets (= collectives per [`GradBuckets::average`]).
    pub fn num_buckets(&self) -> usize {
        self.buckets.len()
    }

    /// Parameter count per bucket, in order.
    pub fn bucket_lens(&self) -> Vec<usize> {
        self.buckets.iter().map(|b| b.members.len()).collect()
    }

    /// Averages every parameter's gradient across the ranks of `pg`, in place.
    pub fn average(&self, pg: &ProcessGroup) -> Result<()> {
        self.average_with(pg, &[]).map(|_| ())
    }

    /// [`GradBuckets::average`], also averaging `extra` scalars (the loss, say) in the same
    /// collectives: they ride in the first bucket when its dtype is f32/f64, else take one
    /// more small f64 all-reduce. Returns their means across ranks.
    pub fn average_with(&self, pg: &ProcessGroup, extra: &[f64]) -> Result<Vec<f64>> {
        let world = pg.world_size() as f64;
        let mut extras_out = None;
        for (bi, b) in self.buckets.iter().enumerate() {
            let nm = b.members.len() as i64;
            let carry_extra = bi == 0 && !extra.is_empty() && matches!(b.kind, Kind::Float | Kind::Double);
            let ne = if carry_extra { extra.len() as i64 } else { 0 };
            let mut flat = Tensor::f_zeros([b.numel + nm + ne], (b.kind, b.device))?;
            let mut flags = vec![0f64; b.members.len()];
            let mut off = 0i64;
            for (k, &i) in b.members.iter().enumerate() {
                let p = &self.params[i];
                let n = p.numel() as i64;
                let g = p.grad();
                if g.defined() {
                    flat.f_narrow(0, off, n)?.f_copy_(&g.detach().f_reshape([-1])?)?;
                    flags[k] = 1.0;
                }
                off += n;
            }
            let mut tail = flags.clone();
            if carry_extra {
                tail.extend_from_slice(extra);
            }
            let tail_t = Tensor::from_slice(&tail).f_to_kind(b.kind)?.f_to_device(b.device)?;
            flat.f_narrow(0, b.numel, nm + ne)?.f_copy_(&tail_t)?;
            pg.all_reduce(&flat, ReduceOp::Sum)?;
            let _ = flat.f_div_scalar_(world)?;
            if carry_extra {
                let e = flat.f_narrow(0, b.numel + nm, ne)?.f_to_kind(Kind::Double)?.f_to_device(Device::Cpu)?;
                extras_out = Some(Vec::<f64>::try_from(&e)?);
            }
            // Read the reduced flags only when this rank lacks a gradient somewhere in the
            // bucket (a device sync); otherwise every flag is > 0 already.
            let any_missing = flags.contains(&0.0);
            let reduced_flags: Vec<f64> = if any_missing {
                let f = flat.f_narrow(0, b.numel, nm)?.f_to_kind(Kind::Double)?.f_to_device(Device::Cpu)?;
                Vec::<f64>::try_from(&f)?
            } else {
                flags.clone()
            };
            let mut off = 0i64;
            for (k, &i) in b.members.iter().enumerate() {
                let p = &self.params[i];
                let n = p.numel() as i64;
                let src = flat.f_narrow(0, off, n)?;
                off += n;
                if flags[k] > 0.0 {
                    copy_into(&p.grad(), &src)?;
                } else if reduced_flags[k] > 0.0 {
                    materialize_grad(p)?;
                    copy_into(&p.grad(), &src)?;
                }
            }
        }
        if extra.is_empty() {
            return Ok(Vec::new());
        }
        match extras_out {
            Some(v) => Ok(v),
            None => {
                let t = Tensor::from_slice(extra).f_to_device(pg.device())?;
                pg.all_reduce(&t, ReduceOp::Avg)?;
                Ok(Vec::<f64>::try_from(&t.f_to_device(Device::Cpu)?)?)
            }
        }
    }
}

/// Gives `p` a zero gradient (autograd accumulates `d(0 * sum p)/dp = 0` into `p.grad`).
fn materialize_grad(p: &Tensor) -> Result<()> {
    tch::with_grad(|| -> Result<()> {
        p.f_mul_scalar(0.0)?.f_sum(None::<Kind>)?.f_backward()?;
        Ok(())
    })?;
    if !p.grad().defined() {
        return Err(Error::Dist("could not materialise a missing gradient".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_groups_by_dtype_and_caps_bytes() {
        let c = Device::Cpu;
        let items = [
            (Kind::Float, c, 10),   // 40 B
            (Kind::BFloat16, c, 4), // 8 B
            (Kind::Float, c, 10),   // 40 B
            (Kind::Float, c, 100),  // 400 B, over the cap: alone
            (Kind::Float, c, 5),    // 20 B
        ];
        assert_eq!(plan(&items, 100), vec![vec![0, 2], vec![3], vec![4], vec![1]]);
        assert_eq!(plan(&items, 1 << 20), vec![vec![0, 2, 3, 4], vec![1]]);
        assert!(plan(&[], 10).is_empty());
    }
}
