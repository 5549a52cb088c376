//! Photometric and geometric augmentations on float RGB images: horizontal flip, colour
//! jitter (brightness, contrast, saturation, hue), grayscale and Gaussian blur.
//!
//! Every function works in place on a channel-major `[3, height, width]` f32 image with values
//! in `[0, 1]` (what ToTensor gives), and mirrors torchvision's tensor functional
//! (`torchvision.transforms.functional` on float tensors), in f32:
//!
//! - `_blend(a, b, r) = clamp(r * a + (1 - r) * b, 0, 1)`, with `r` and `1 - r` computed in
//!   f64 and rounded to f32 as PyTorch does for a Python scalar;
//! - [`adjust_brightness`] blends with black, [`adjust_contrast`] with the mean of the
//!   grayscale image, [`adjust_saturation`] with the grayscale image, [`adjust_hue`] shifts the
//!   hue through torchvision's `_rgb2hsv` / `_hsv2rgb`;
//! - the grayscale weights are ITU-R 601-2's `0.299, 0.587, 0.114`, as PIL's `convert("L")`
//!   (what the official pipeline runs, since its jitter acts on PIL images); torchvision's
//!   tensor path uses `0.2989` for red, a difference of at most `1e-4 * r`.
//!
//! Differences from the official code, which applies these to 8-bit PIL images before
//! ToTensor: we never round to 8 bits between operations, and the blur is a true Gaussian
//! (see [`gaussian_blur`]) where PIL's `ImageFilter.GaussianBlur` uses three extended box
//! blurs of the same standard deviation.
//!
//! The random parameters ([`ColorJitter::get_params`]) are drawn as torchvision draws them
//! (a permutation of the four operations, then each enabled factor in the order brightness,
//! contrast, saturation, hue), from our keyed [`Rng`].

use crate::error::{Error, Result};
use crate::rng::Rng;

/// Grayscale weights of red, green and blue (ITU-R 601-2 luma, PIL's `convert("L")`).
pub const GREY_WEIGHTS: [f32; 3] = [0.299, 0.587, 0.114];

/// Splits a `[3, n]` image into its three planes; errors unless `img.len() == 3 * n`.
fn planes(img: &mut [f32], n: usize) -> Result<(&mut [f32], &mut [f32], &mut [f32])> {
    if img.len() != 3 * n || n == 0 {
        return Err(Error::Config(format!(
            "augment: image of {} floats is not a non-empty [3, {n}] image",
            img.len()
        )));
    }
    let (r, gb) = img.split_at_mut(n);
    let (g, b) = gb.split_at_mut(n);
    Ok((r, g, b))
}

/// `r` and `1 - r` as the f32 scalars PyTorch multiplies by.
fn blend_ratio(factor: f64) -> (f32, f32) {
    (factor as f32, (1.0 - factor) as f32)
}

#[inline]
fn luma(r: f32, g: f32, b: f32) -> f32 {
    GREY_WEIGHTS[0] * r + GREY_WEIGHTS[1] * g + GREY_WEIGHTS[2] * b
}

/// Mirrors each row of every channel of a `[channels, height, width]` image (torchvision
/// `hflip`). Errors unless `img.len() == channels * height * width`.
pub fn hflip(img: &mut [f32], channels: usize, height: usize, width: usize) -> Result<()> {
    if img.len() != channels * height * width {
        return Err(Error::Config(format!(
            "hflip: {} floats is not a {channels}x{height}x{width} image",
            img.len()
        )));
    }
    if width > 0 {
        img.chunks_exact_mut(width).for_each(|row| row.reverse());
    }
    Ok(())
}

/// torchvision `adjust_brightness`: `clamp(f * x, 0, 1)` (a blend with black), for `n` pixels.
pub fn adjust_brightness(img: &mut [f32], n: usize, factor: f64) -> Result<()> {
    planes(img, n)?;
    let (r, omr) = blend_ratio(factor);
    for x in img.iter_mut() {
        *x = (r * *x + omr * 0.0).clamp(0.0, 1.0);
    }
    Ok(())
}

/// torchvision `adjust_contrast`: a blend with the mean of the grayscale image, for `n`
/// pixels (the mean is accumulated in f64).
pub fn adjust_contrast(img: &mut [f32], n: usize, factor: f64) -> Result<()> {
    let (r, g, b) = planes(img, n)?;
    let sum: f64 = r
        .iter()
        .zip(g.iter())
        .zip(b.iter())
        .map(|((&r, &g), &b)| luma(r, g, b) as f64)
        .sum();
    let mean = (sum / n as f64) as f32;
    let (k, omk) = blend_ratio(factor);
    for x in img.iter_mut() {
        *x = (k * *x + omk * mean).clamp(0.0, 1.0);
    }
    Ok(())
}

/// torchvision `adjust_saturation`: a blend with the grayscale image, for `n` pixels.
pub fn adjust_saturation(img: &mut [f32], n: usize, factor: f64) -> Result<()> {
    let (r, g, b) = planes(img, n)?;
    let (k, omk) = blend_ratio(factor);
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        let l = luma(*r, *g, *b);
        *r = (k * *r + omk * l).clamp(0.0, 1.0);
        *g = (k * *g + omk * l).clamp(0.0, 1.0);
        *b = (k * *b + omk * l).clamp(0.0, 1.0);
    }
    Ok(())
}

/// torchvision `_rgb2hsv` of one pixel: `(h, s, v)`, all in `[0, 1]`.
pub fn rgb_to_hsv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let maxc = r.max(g).max(b);
    let minc = r.min(g).min(b);
    let eqc = maxc == minc;
    let cr = maxc - minc;
    let s = cr / if eqc { 1.0 } else { maxc };
    let crd = if eqc { 1.0 } else { cr };
    let rc = (maxc - r) / crd;
    let gc = (maxc - g) / crd;
    let bc = (maxc - b) / crd;
    let h = if maxc == r {
        bc - gc
    } else if maxc == g {
        2.0 + rc - bc
    } else {
        4.0 + gc - rc
    };
    // torch.fmod((h / 6 + 1), 1): the argument is positive, so the plain remainder.
    let h = (h / 6.0 + 1.0) % 1.0;
    (h, s, maxc)
}

/// torchvision `_hsv2rgb` of one pixel: `(r, g, b)`.
pub fn hsv_to_rgb(h: f32, s: f32, v: f32) -> (f32, f32, f32) {
    let i = (h * 6.0).floor();
    let f = h * 6.0 - i;
    let p = (v * (1.0 - s)).clamp(0.0, 1.0);
    let q = (v * (1.0 - s * f)).clamp(0.0, 1.0);
    let t = (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0);
    match (i as i32).rem_euclid(6) {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    }
}

/// torchvision `adjust_hue`: RGB -> HSV, `h = (h + factor) mod 1`, HSV -> RGB, for `n`
/// pixels. `factor` must be in `[-0.5, 0.5]`.
pub fn adjust_hue(img: &mut [f32], n: usize, factor: f64) -> Result<()> {
    if !(-0.5..=0.5).contains(&factor) {
        return Err(Error::Config(format!(
            "hue factor {factor} is not in [-0.5, 0.5]"
        )));
    }
    let (r, g, b) = planes(img, n)?;
    let f = factor as f32;
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        let (h, s, v) = rgb_to_hsv(*r, *g, *b);
        // Python's `%`: the result has the sign of the divisor.
        let h = (h + f).rem_euclid(1.0);
        (*r, *g, *b) = hsv_to_rgb(h, s, v);
    }
    Ok(())
}

/// torchvision `rgb_to_grayscale(img, num_output_channels=3)` (with [`GREY_WEIGHTS`]), for
/// `n` pixels: every channel becomes the luma.
pub fn to_grayscale(img: &mut [f32], n: usize) -> Result<()> {
    let (r, g, b) = planes(img, n)?;
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        let l = luma(*r, *g, *b);
        (*r, *g, *b) = (l, l, l);
    }
    Ok(())
}

/// Half-width of the Gaussian kernel of standard deviation `sigma`: `ceil(3 sigma)`, >= 1.
fn kernel(sigma: f64) -> Vec<f32> {
    let half = ((3.0 * sigma).ceil() as usize).max(1);
    let w: Vec<f64> = (0..=2 * half)
        .map(|k| {
            let x = k as f64 - half as f64;
            (-x * x / (2.0 * sigma * sigma)).exp()
        })
        .collect();
    let s: f64 = w.iter().sum();
    w.iter().map(|&x| (x / s) as f32).collect()
}

/// Gaussian blur of a `[channels, height, width]` image with standard deviation `sigma`
/// pixels, the stand-in for PIL's `ImageFilter.GaussianBlur(radius=sigma)`.
///
/// A separable, normalised Gaussian kernel truncated at `ceil(3 sigma)` pixels, edges
/// extended (clamp-to-edge, like PIL's box blur). PIL instead runs three extended box blurs
/// per axis whose combined variance is `sigma^2` (a piecewise-quadratic kernel of the same
/// standard deviation and support `~ 2.6 sigma`), extending the border after each pass, so
/// values differ by a few grey levels within the image (0.6 on average at sigma 2) and by up
/// to ~30 in its first and last rows and columns (measured on a port against PIL). A constant image stays constant; the sum is preserved exactly wherever the
/// image is constant within the kernel's reach of its border. `sigma <= 0` leaves it as is.
pub fn gaussian_blur(
    img: &mut [f32],
    channels: usize,
    height: usize,
    width: usize,
    sigma: f64,
) -> Result<()> {
    if img.len() != channels * height * width {
        return Err(Error::Config(format!(
            "blur: {} floats is not a {channels}x{height}x{width} image",
            img.len()
        )));
    }
    if !sigma.is_finite() {
        return Err(Error::Config(format!("blur sigma {sigma}")));
    }
    if sigma <= 0.0 || height == 0 || width == 0 {
        return Ok(());
    }
    let k = kernel(sigma);
    let half = (k.len() / 2) as isize;
    let clampi = |i: isize, n: usize| i.clamp(0, n as isize - 1) as usize;
    let mut tmp = vec![0f32; height * width];
    for plane in img.chunks_exact_mut(height * width) {
        // horizontal: plane -> tmp
        for (src, dst) in plane.chunks_exact(width).zip(tmp.chunks_exact_mut(width)) {
            for (x, d) in dst.iter_mut().enumerate() {
                let x0 = x as isize - half;
                *d = if x0 >= 0 && (x0 as usize) + k.len() <= width {
                    let s = &src[x0 as usize..x0 as usize + k.len()];
                    s.iter().zip(&k).map(|(&v, &w)| v * w).sum()
                } else {
                    k.iter()
                        .enumerate()
                        .map(|(j, &w)| src[clampi(x0 + j as isize, width)] * w)
                        .sum()
                };
            }
        }
        // vertical: tmp -> plane, row-wise accumulation
        for (y, dst) in plane.chunks_exact_mut(width).enumerate() {
            dst.fill(0.0);
            for (j, &w) in k.iter().enumerate() {
                let yy = clampi(y as isize - half + j as isize, height);
                for (d, &v) in dst.iter_mut().zip(&tmp[yy * width..(yy + 1) * width]) {
                    *d += v * w;
                }
            }
        }
    }
    Ok(())
}

/// PIL `ImageOps.solarize(img, threshold=128)` on `[0, 1]` values (ToTensor's `v / 255`):
/// every value at or above 128/255 becomes `1 - v`.
pub fn solarize(img: &mut [f32]) {
    const THRESHOLD: f32 = 128.0 / 255.0;
    for v in img.iter_mut().filter(|v| **v >= THRESHOLD) {
        *v = 1.0 - *v;
    }
}

/// torchvision `ColorJitter(brightness, contrast, saturation, hue)`: the factor ranges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColorJitter {
    /// Brightness factor range `[max(0, 1 - b), 1 + b]`; `None` when `b == 0`.
    pub brightness: Option<(f64, f64)>,
    /// Contrast factor range `[max(0, 1 - c), 1 + c]`; `None` when `c == 0`.
    pub contrast: Option<(f64, f64)>,
    /// Saturation factor range `[max(0, 1 - s), 1 + s]`; `None` when `s == 0`.
    pub saturation: Option<(f64, f64)>,
    /// Hue shift range `[-h, h]`; `None` when `h == 0`.
    pub hue: Option<(f64, f64)>,
}

/// One draw of [`ColorJitter::get_params`]: the order of the operations and their factors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JitterParams {
    /// A permutation of `0..4`: 0 brightness, 1 contrast, 2 saturation, 3 hue.
    pub order: [usize; 4],
    /// Brightness factor, if enabled.
    pub brightness: Option<f64>,
    /// Contrast factor, if enabled.
    pub contrast: Option<f64>,
    /// Saturation factor, if enabled.
    pub saturation: Option<f64>,
    /// Hue shift, if enabled.
    pub hue: Option<f64>,
}

impl ColorJitter {
    /// Jitter strengths as torchvision's `ColorJitter(b, c, s, h)` takes them (non-negative;
    /// `h <= 0.5`).
    pub fn new(brightness: f64, contrast: f64, saturation: f64, hue: f64) -> Result<Self> {
        let range = |name: &str, v: f64| -> Result<Option<(f64, f64)>> {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::Config(format!(
                    "colour jitter {name} {v} must be finite and >= 0"
                )));
            }
            Ok((v > 0.0).then(|| ((1.0 - v).max(0.0), 1.0 + v)))
        };
        if !(hue.is_finite() && (0.0..=0.5).contains(&hue)) {
            return Err(Error::Config(format!(
                "colour jitter hue {hue} must be in [0, 0.5]"
            )));
        }
        Ok(Self {
            brightness: range("brightness", brightness)?,
            contrast: range("contrast", contrast)?,
            saturation: range("saturation", saturation)?,
            hue: (hue > 0.0).then_some((-hue, hue)),
        })
    }

    /// The official `get_color_distortion(s)` jitter: `ColorJitter(0.8s, 0.8s, 0.8s, 0.2s)`.
    pub fn from_strength(s: f64) -> Result<Self> {
        Self::new(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)
    }

    /// True when no operation is enabled (applying it is the identity and draws nothing).
    pub fn is_identity(&self) -> bool {
        self.brightness.is_none()
            && self.contrast.is_none()
            && self.saturation.is_none()
            && self.hue.is_none()
    }

    /// torchvision `ColorJitter.get_params`: a permutation of the four operations, then a
    /// uniform factor for each enabled one, in the order brightness, contrast, saturation, hue.
    pub fn get_params(&self, rng: &mut Rng) -> JitterParams {
        let p = rng.permutation(4);
        let order = [p[0], p[1], p[2], p[3]];
        let mut draw = |r: Option<(f64, f64)>| r.map(|(lo, hi)| rng.uniform_range(lo, hi));
        let brightness = draw(self.brightness);
        let contrast = draw(self.contrast);
        let saturation = draw(self.saturation);
        let hue = draw(self.hue);
        JitterParams {
            order,
            brightness,
            contrast,
            saturation,
            hue,
        }
    }
}

impl JitterParams {
    /// Applies the drawn operations in their order to a `[3, n]` image (ColorJitter.forward).
    pub fn apply(&self, img: &mut [f32], n: usize) -> Result<()> {
        for &op in &self.order {
            match (op, self) {
                (
                    0,
                    JitterParams {
                        brightness: Some(f),
                        ..
                    },
                ) => adjust_brightness(img, n, *f)?,
                (
                    1,
                    JitterParams {
                        contrast: Some(f), ..
                    },
                ) => adjust_contrast(img, n, *f)?,
                (
                    2,
                    JitterParams {
                        saturation: Some(f),
                        ..
                    },
                ) => adjust_saturation(img, n, *f)?,
                (3, JitterParams { hue: Some(f), .. }) => adjust_hue(img, n, *f)?,
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn px(img: &[f32], n: usize, i: usize) -> [f32; 3] {
        [img[i], img[n + i], img[2 * n + i]]
    }

    fn close(a: [f32; 3], b: [f32; 3]) -> bool {
        a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6)
    }

    /// Pixels: red, (0.2, 0.4, 0.6), white, black.
    fn sample() -> Vec<f32> {
        vec![1.0, 0.2, 1.0, 0.0, 0.0, 0.4, 1.0, 0.0, 0.0, 0.6, 1.0, 0.0]
    }

    #[test]
    fn flip_is_a_mirror() {
        let mut img: Vec<f32> = (0..2 * 3 * 4).map(|x| x as f32).collect();
        let orig = img.clone();
        hflip(&mut img, 2, 3, 4).unwrap();
        for c in 0..2 {
            for y in 0..3 {
                for x in 0..4 {
                    assert_eq!(img[(c * 3 + y) * 4 + x], orig[(c * 3 + y) * 4 + 3 - x]);
                }
            }
        }
        assert!(hflip(&mut img, 2, 3, 5).is_err());
    }

    #[test]
    fn brightness_contrast_saturation_by_hand() {
        let n = 4;
        let mut a = sample();
        adjust_brightness(&mut a, n, 1.5).unwrap();
        assert!(close(px(&a, n, 0), [1.0, 0.0, 0.0])); // clamped
        assert!(close(px(&a, n, 1), [0.3, 0.6, 0.9]));
        let mut a = sample();
        adjust_brightness(&mut a, n, 0.0).unwrap();
        assert!(a.iter().all(|&x| x == 0.0));

        // grey levels: red 0.299, (0.2,0.4,0.6) 0.363, white 1, black 0; mean 0.4155.
        let mean = (0.299 + 0.363 + 1.0) / 4.0;
        let mut a = sample();
        adjust_contrast(&mut a, n, 0.5).unwrap();
        let m = |x: f32| 0.5 * x + 0.5 * mean as f32;
        assert!(close(px(&a, n, 1), [m(0.2), m(0.4), m(0.6)]), "{a:?}");
        assert!(close(px(&a, n, 3), [m(0.0); 3]));
        let mut a = sample();
        adjust_contrast(&mut a, n, 0.0).unwrap();
        assert!(a.iter().all(|&x| (x - mean as f32).abs() < 1e-6));

        // saturation 0: grey; saturation 2: away from grey, clamped.
        let mut a = sample();
        adjust_saturation(&mut a, n, 0.0).unwrap();
        assert!(close(px(&a, n, 0), [0.299; 3]));
        assert!(close(px(&a, n, 1), [0.363; 3]));
        assert!(close(px(&a, n, 2), [1.0; 3]));
        let mut a = sample();
        adjust_saturation(&mut a, n, 2.0).unwrap();
        let l = 0.363f32;
        assert!(close(
            px(&a, n, 1),
            [2.0 * 0.2 - l, 2.0 * 0.4 - l, 2.0 * 0.6 - l]
        ));
        assert!(close(px(&a, n, 0), [1.0, 0.0, 0.0]));
    }

    #[test]
    fn hue_by_hand() {
        let n = 4;
        let mut a = sample();
        adjust_hue(&mut a, n, 0.5).unwrap();
        assert!(close(px(&a, n, 0), [0.0, 1.0, 1.0]), "red -> cyan {a:?}");
        // (0.2, 0.4, 0.6): h = 7/12, s = 2/3, v = 0.6; +0.5 -> h = 1/12: (0.6, 0.4, 0.2)
        assert!(close(px(&a, n, 1), [0.6, 0.4, 0.2]), "{a:?}");
        assert!(close(px(&a, n, 2), [1.0; 3]));
        assert!(close(px(&a, n, 3), [0.0; 3]));
        // red shifted by 1/3 is green, by -1/3 blue; zero shift is the identity.
        let mut a = sample();
        adjust_hue(&mut a, n, 1.0 / 3.0).unwrap();
        assert!(close(px(&a, n, 0), [0.0, 1.0, 0.0]), "{a:?}");
        let mut a = sample();
        adjust_hue(&mut a, n, -1.0 / 3.0).unwrap();
        assert!(close(px(&a, n, 0), [0.0, 0.0, 1.0]), "{a:?}");
        let mut a = sample();
        adjust_hue(&mut a, n, 0.0).unwrap();
        for (x, y) in a.iter().zip(sample()) {
            assert!((x - y).abs() < 1e-6);
        }
        let (h, s, v) = rgb_to_hsv(0.2, 0.4, 0.6);
        assert!((h - 7.0 / 12.0).abs() < 1e-6 && (s - 2.0 / 3.0).abs() < 1e-6 && v == 0.6);
        assert!(adjust_hue(&mut a, n, 0.6).is_err());
        assert!(adjust_hue(&mut a, 5, 0.1).is_err());
    }

    #[test]
    fn grayscale_weights() {
        let n = 4;
        let mut a = sample();
        to_grayscale(&mut a, n).unwrap();
        assert!(close(px(&a, n, 0), [0.299; 3]));
        assert!(close(
            px(&a, n, 1),
            [0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6; 3]
        ));
        assert!(close(px(&a, n, 2), [1.0; 3]));
        let mut g = vec![0.0, 1.0, 0.0];
        to_grayscale(&mut g, 1).unwrap();
        assert!(close([g[0], g[1], g[2]], [0.587; 3]));
    }

    #[test]
    fn blur_keeps_constants_and_the_mean() {
        for sigma in [0.1, 0.7, 2.0] {
            let mut a = vec![0.37f32; 3 * 9 * 11];
            gaussian_blur(&mut a, 3, 9, 11, sigma).unwrap();
            assert!(a.iter().all(|&x| (x - 0.37).abs() < 1e-6), "{sigma}");
        }
        // A pattern 12 px away from the border (> ceil(3 * 2)): the sum is preserved, and
        // the blur spreads it (the peak drops).
        let (h, w) = (32, 32);
        let mut a = vec![0f32; 3 * h * w];
        let mut s = 12345u32;
        for c in 0..3 {
            for y in 12..20 {
                for x in 12..20 {
                    s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    a[(c * h + y) * w + x] = (s >> 16) as f32 / 65536.0;
                }
            }
        }
        let before: Vec<f64> = a
            .chunks(h * w)
            .map(|p| p.iter().map(|&x| x as f64).sum())
            .collect();
        let peak = a.iter().cloned().fold(0.0, f32::max);
        gaussian_blur(&mut a, 3, h, w, 2.0).unwrap();
        let after: Vec<f64> = a
            .chunks(h * w)
            .map(|p| p.iter().map(|&x| x as f64).sum())
            .collect();
        for (b, a) in before.iter().zip(&after) {
            assert!((b - a).abs() < 1e-4 * b, "{b} {a}");
        }
        assert!(a.iter().cloned().fold(0.0, f32::max) < peak);
        // a random image everywhere: the mean moves only through the edges, a little
        let mut a: Vec<f32> = (0..h * w)
            .map(|i| ((i * 7919) % 101) as f32 / 100.0)
            .collect();
        let m0: f32 = a.iter().sum::<f32>() / (h * w) as f32;
        gaussian_blur(&mut a, 1, h, w, 1.0).unwrap();
        let m1: f32 = a.iter().sum::<f32>() / (h * w) as f32;
        assert!((m0 - m1).abs() < 0.01, "{m0} {m1}");
        assert!(gaussian_blur(&mut a, 3, h, w, 1.0).is_err());
        assert!(gaussian_blur(&mut a, 1, h, w, f64::NAN).is_err());
    }

    #[test]
    fn jitter_params_and_application() {
        let j = ColorJitter::from_strength(1.0).unwrap();
        assert_eq!(j.brightness, Some((0.19999999999999996, 1.8)));
        assert_eq!(j.hue, Some((-0.2, 0.2)));
        let j0 = ColorJitter::new(0.0, 0.0, 0.0, 0.0).unwrap();
        assert!(j0.is_identity());
        assert!(ColorJitter::new(0.0, 0.0, 0.0, 0.6).is_err());
        assert!(ColorJitter::new(-1.0, 0.0, 0.0, 0.1).is_err());
        let big = ColorJitter::new(2.0, 0.0, 0.0, 0.0).unwrap();
        assert_eq!(big.brightness, Some((0.0, 3.0)));

        let mut rng = Rng::from_key(&[1]);
        for _ in 0..1000 {
            let p = j.get_params(&mut rng);
            let mut o = p.order;
            o.sort();
            assert_eq!(o, [0, 1, 2, 3]);
            let b = p.brightness.unwrap();
            assert!((0.2..1.8).contains(&b));
            assert!((-0.2..0.2).contains(&p.hue.unwrap()));
        }
        // Only brightness enabled: applying equals adjust_brightness whatever the order.
        let jb = ColorJitter::new(0.5, 0.0, 0.0, 0.0).unwrap();
        let p = jb.get_params(&mut rng);
        assert!(p.contrast.is_none() && p.hue.is_none());
        let mut a = sample();
        p.apply(&mut a, 4).unwrap();
        let mut want = sample();
        adjust_brightness(&mut want, 4, p.brightness.unwrap()).unwrap();
        assert_eq!(a, want);
    }
}
