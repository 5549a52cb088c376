//! Weight initialisation, as the official training code leaves it (`ijepa-reference.md` §1):
//! truncated normal (std 0.02, cut at ±2 *absolute*, i.e. `torch.nn.init.trunc_normal_`'s
//! defaults), biases zero, LayerNorm weight one.

use tch::{Device, Kind, TchError, Tensor};

/// `torch.nn.init.trunc_normal_(t, mean, std, a, b)` with torch's algorithm: sample uniformly
/// between the normal CDF values of the cut points, map through erfinv, scale and clamp.
///
/// # Errors
/// libtorch's, e.g. when the tensor cannot be allocated.
pub fn trunc_normal(dims: &[i64], mean: f64, std: f64, a: f64, b: f64, device: Device) -> Result<Tensor, TchError> {
    let norm_cdf = |x: f64| (1.0 + erf(x / std::f64::consts::SQRT_2)) / 2.0;
    let l = norm_cdf((a - mean) / std);
    let u = norm_cdf((b - mean) / std);
    tch::no_grad(|| {
        let mut t = Tensor::f_empty(dims, (Kind::Float, device))?;
        let _ = t.f_uniform_(2.0 * l - 1.0, 2.0 * u - 1.0)?;
        let _ = t.f_erfinv_()?;
        let _ = t.f_mul_scalar_(std * std::f64::consts::SQRT_2)?;
        let _ = t.f_add_scalar_(mean)?;
        t.f_clamp_(a, b)
    })
}

/// The official Linear / patch-embed weight init: trunc_normal(std=0.02, a=-2, b=2).
///
/// # Errors
/// libtorch's, e.g. when the tensor cannot be allocated.
pub fn official(dims: &[i64], device: Device) -> Result<Tensor, TchError> {
    trunc_normal(dims, 0.0, 0.02, -2.0, 2.0, device)
}

/// erf(x) (Abramowitz-Stegun 7.1.26 is too coarse; use the libm-quality series via f64 ops).
fn erf(x: f64) -> f64 {
    // erf via the complementary error function continued fraction / series (W. J. Cody's
    // rational approximations are overkill here: the cut points are at ±100 std for the
    // official init, where erf is ±1 to double precision).
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let tau = t
        * (-x * x - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        1.0 - tau
    } else {
        tau - 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_is_accurate() {
        assert!((erf(0.5) - 0.520_499_877_8).abs() < 1e-6);
        assert!((erf(-1.0) + 0.842_700_792_9).abs() < 1e-6);
        assert!((erf(1000.0) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn trunc_normal_has_std_and_respects_cut() {
        tch::manual_seed(0);
        let t = trunc_normal(&[200_000], 0.0, 1.0, -1.0, 1.0, Device::Cpu).unwrap();
        let max = t.abs().max().double_value(&[]);
        assert!(max <= 1.0);
        // std of a standard normal truncated to [-1, 1] is 0.5376
        let std = t.std(true).double_value(&[]);
        assert!((std - 0.5376).abs() < 0.01, "{std}");
        let t = official(&[100_000], Device::Cpu).unwrap();
        let std = t.std(true).double_value(&[]);
        assert!((std - 0.02).abs() < 0.0005, "{std}");
    }
}
