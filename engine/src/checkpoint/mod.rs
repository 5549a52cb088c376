//! Checkpoints: our safetensors format (atomic writes, exact resume) and the official
//! PyTorch `.pth.tar` files (zip + pickle), read with a restricted unpickler that never runs code.

pub mod export;
pub mod import;
pub mod pickle;
pub mod state;
pub mod torch_file;
pub mod writer;

/// Whether libtorch cannot hold a tensor of `shape`: a dimension past i64's range, or
/// contiguous strides (the product of the dimensions, an empty one counted as 1) that overflow
/// it. Such a shape, even of no element (`[0, 2^62, 2^62]`), failed inside libtorch with its
/// C++ backtrace as the error's text.
pub(crate) fn shape_out_of_range(shape: impl IntoIterator<Item = u64>) -> bool {
    shape.into_iter().try_fold(1i64, |acc, d| i64::try_from(d).ok().and_then(|d| acc.checked_mul(d.max(1)))).is_none()
}

#[cfg(test)]
mod tests {
    #[test]
    fn shapes_past_libtorch_s_range_are_told() {
        use super::shape_out_of_range as out;
        assert!(!out([2, 3, 4]) && !out([0, 5]) && !out([]));
        assert!(out([0, 1 << 62, 1 << 62]), "no element, but strides past i64");
        assert!(out([(1u64 << 63) + 5, 0]), "a dimension past i64");
    }
}
