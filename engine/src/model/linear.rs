//! `torch.nn.Linear` with official names (`weight` [out, in], `bias` [out]) and init.
//! (tch's `nn::linear` would put weight and bias in one optimiser group; we need the bias in
//! the no-weight-decay group.)

use super::{init, Path};
use crate::products::Products;
use tch::{TchError, Tensor};

/// A fully connected layer y = x W^T + b.
#[derive(Debug)]
pub struct Linear {
    /// [out, in]
    pub weight: Tensor,
    /// [out]
    pub bias: Tensor,
}

impl Linear {
    /// Registers `weight` and `bias` under `p` with the official init.
    ///
    /// # Errors
    /// libtorch's, e.g. when the weights cannot be allocated.
    pub fn new(p: &Path, in_dim: i64, out_dim: i64) -> Result<Self, TchError> {
        let weight = p.add("weight", init::official(&[out_dim, in_dim], p.device())?, true)?;
        let bias = p.add("bias", Tensor::f_zeros([out_dim], (tch::Kind::Float, p.device()))?, true)?;
        Ok(Self { weight, bias })
    }

    /// # Shapes
    /// `[..., in]` -> `[..., out]`
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let p = if x.device() == tch::Device::Cpu { crate::products::current() } else { Products::Blas };
        // (libtorch's errors panic as in tch's `linear`, `f_linear(..).unwrap()`: `guard::torch`
        // knows that panic's message for a libtorch error, an allocation failure among them)
        product(p, x, &self.weight, &self.bias).unwrap()
    }
}

/// `x W^T + b` with the kernel `p` ([`crate::products`]); a shape the convolution does not take
/// falls back to `linear`.
///
/// # Shapes
/// `x` `[..., in]`, `weight` `[out, in]`, `bias` `[out]` -> `[..., out]`
///
/// # Errors
/// libtorch's (mismatched shapes).
pub fn product(p: Products, x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor, TchError> {
    if p == Products::OneDnn {
        if let Some(y) = f_as_convolution(x, weight, bias) {
            return y;
        }
    }
    x.f_linear(weight, Some(bias))
}

/// The product as a 1x1 convolution, which libtorch runs with oneDNN: the `M` rows of `x` as
/// 16 images of `M/16 x 1` pixels with `in` channels, channels-last (the same memory as `x`,
/// no copy), and the weight as `out` filters of `in x 1 x 1`; the output, channels-last, is
/// `[..., out]` in memory. 16 images: libtorch's rule hands a 1x1 convolution of fewer than 16
/// images on one thread to its own slower kernel. `None` where that does not fit (no rows, or
/// rows not in groups of 16 on one thread).
fn f_as_convolution(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Option<Result<Tensor, TchError>> {
    let mut sizes = x.size();
    let k = *sizes.last()?;
    let m: i64 = sizes[..sizes.len() - 1].iter().product();
    let groups = if m > 0 && m % 16 == 0 {
        16
    } else if m > 0 && tch::get_num_threads() > 1 {
        1
    } else {
        return None;
    };
    let n = weight.size().first().copied()?;
    *sizes.last_mut()? = n;
    Some((|| {
        let x4 = x.f_reshape([groups, m / groups, 1, k])?.f_permute([0, 3, 1, 2])?;
        let y = x4.f_conv2d(&weight.f_view([n, k, 1, 1])?, Some(bias), [1, 1], [0, 0], [1, 1], 1)?;
        y.f_permute([0, 2, 3, 1])?.f_reshape(sizes)
    })())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// Output and the three gradients of `product(p, ..)` for the given input.
    fn run(p: Products, x: &Tensor, w: &Tensor, b: &Tensor, g: &Tensor) -> [Tensor; 4] {
        let (x, w, b) = (x.detach().set_requires_grad(true), w.detach().set_requires_grad(true), b.detach().set_requires_grad(true));
        let y = product(p, &x, &w, &b).unwrap();
        (&y * g).sum(Kind::Float).backward();
        [y.detach(), x.grad(), w.grad(), b.grad()]
    }

    #[test]
    fn the_convolution_computes_linear_and_its_gradients() {
        let o = (Kind::Float, Device::Cpu);
        // [B, N, in] in groups of 16 rows, rows not in groups of 16, a 2-d input, a strided one
        for (shape, strided) in [(vec![4i64, 12, 24], false), (vec![3, 5, 24], false), (vec![7, 24], false), (vec![4, 12, 24], true)] {
            let x = if strided { Tensor::randn([shape[0], shape[1], 2 * shape[2]], o).slice(2, 0, None, 2) } else { Tensor::randn(&shape[..], o) };
            let w = Tensor::randn([40, 24], o) * 0.2;
            let b = Tensor::randn([40], o);
            let mut out = shape.clone();
            *out.last_mut().unwrap() = 40;
            let g = Tensor::randn(&out[..], o);
            let blas = run(Products::Blas, &x, &w, &b, &g);
            let conv = run(Products::OneDnn, &x, &w, &b, &g);
            assert_eq!(conv[0].size(), out);
            for (name, (a, c)) in ["output", "input grad", "weight grad", "bias grad"].iter().zip(blas.iter().zip(conv.iter())) {
                assert_eq!(a.size(), c.size(), "{name} {shape:?}");
                let err = (a - c).abs().max().double_value(&[]) / a.abs().max().double_value(&[]);
                assert!(err < 1e-5, "{name} {shape:?} strided {strided}: relative error {err}");
            }
        }
        // (the same computation by both, not the same code: the convolution ran)
        let x = Tensor::randn([4, 12, 24], o);
        let w = Tensor::randn([40, 24], o);
        let y = f_as_convolution(&x, &w, &Tensor::zeros([40], o)).expect("16-row groups take the convolution").unwrap();
        assert_eq!(y.size(), [4, 12, 40]);
    }
}
