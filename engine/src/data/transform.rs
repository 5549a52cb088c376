//! The I-JEPA image transform: RandomResizedCrop, ToTensor, Normalize (ImageNet mean/std),
//! and the evaluation transform (resize the shorter side, centre crop).
//!
//! Mirrors the official `src/transforms.py` (`make_transforms` with the pretraining defaults:
//! no flip, colour distortion or blur) and torchvision's `RandomResizedCrop` as applied to a
//! PIL image:
//!
//! - crop parameters are sampled exactly as `RandomResizedCrop.get_params` (10 attempts of
//!   scale ~ U(scale), log-ratio ~ U(log 3/4, log 4/3), Python's round-half-even, then the
//!   centre-crop fallback), but the uniform numbers come from our keyed [`Rng`] (torch draws
//!   them in float32; we draw in f64);
//! - the crop is resized with PIL's BILINEAR resampling (`Image.resize`): a separable triangle
//!   filter whose support grows with the downscaling factor (antialiased), pixel centres at
//!   +0.5. For 8-bit images ([`resize_bilinear_u8`], what the transforms use) this
//!   reproduces PIL's fixed-point arithmetic bit for bit, including the rounding to 8 bits
//!   between the two passes, so our tensors equal torchvision's on the same crop box;
//!   [`resize_bilinear_f32`] is PIL's float ("F" mode) path. Which pass runs first changed
//!   in Pillow 13 ([`PassOrder`]); the two orders can differ (by one grey level in our
//!   tests) only when the crop is taller than the output, so never when a 28 px image is
//!   cropped and resized to 28 px or more;
//! - ToTensor (`/255` in f32) and Normalize (`(x - mean) / std` in f32), the grey channel
//!   replicated to 3 channels as `Image.convert("RGB")` does.

use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::rng::Rng;

/// ImageNet channel means (RGB) of the official Normalize.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (RGB) of the official Normalize.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// torchvision's default RandomResizedCrop aspect-ratio range (3/4, 4/3).
pub const DEFAULT_RATIO: (f64, f64) = (3.0 / 4.0, 4.0 / 3.0);

/// A crop box in pixels: rows `top..top+height`, columns `left..left+width`
/// (torchvision's `(i, j, h, w)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CropParams {
    /// First row.
    pub top: usize,
    /// First column.
    pub left: usize,
    /// Number of rows (> 0).
    pub height: usize,
    /// Number of columns (> 0).
    pub width: usize,
}

impl CropParams {
    /// The whole `height x width` image.
    pub fn full(height: usize, width: usize) -> Self {
        Self {
            top: 0,
            left: 0,
            height,
            width,
        }
    }

    fn check(&self, height: usize, width: usize) -> Result<()> {
        if self.height == 0
            || self.width == 0
            || self.height > height
            || self.width > width
            || self.top > height - self.height
            || self.left > width - self.width
        {
            return Err(Error::Config(format!(
                "crop {self:?} does not fit in a {height}x{width} image"
            )));
        }
        Ok(())
    }
}

/// torchvision `RandomResizedCrop(size, scale, ratio, interpolation=BILINEAR)` on a grey
/// image, followed by ToTensor and the ImageNet Normalize, output replicated to 3 channels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomResizedCrop {
    /// Side of the square output.
    pub size: usize,
    /// Range of the crop area as a fraction of the image area (official default 0.3..1.0).
    pub scale: (f64, f64),
    /// Range of the crop aspect ratio width/height, sampled log-uniformly.
    pub ratio: (f64, f64),
    /// Which Pillow's pass order the resize reproduces.
    pub pass_order: PassOrder,
}

impl RandomResizedCrop {
    /// A crop to `size x size` with area fraction in `scale` and the default ratio range.
    pub fn new(size: usize, scale: (f64, f64)) -> Result<Self> {
        Self::with_ratio(size, scale, DEFAULT_RATIO)
    }

    /// A crop with an explicit aspect-ratio range.
    pub fn with_ratio(size: usize, scale: (f64, f64), ratio: (f64, f64)) -> Result<Self> {
        if size == 0 {
            return Err(Error::Config("crop size must be > 0".into()));
        }
        if !(scale.0.is_finite()
            && scale.1.is_finite()
            && 0.0 <= scale.0
            && scale.0 <= scale.1
            && scale.1 > 0.0)
        {
            return Err(Error::Config(format!(
                "crop scale {scale:?} must satisfy 0 <= min <= max, max > 0"
            )));
        }
        if !(ratio.0.is_finite() && ratio.1.is_finite() && 0.0 < ratio.0 && ratio.0 <= ratio.1) {
            return Err(Error::Config(format!(
                "crop ratio {ratio:?} must satisfy 0 < min <= max"
            )));
        }
        Ok(Self {
            size,
            scale,
            ratio,
            pass_order: PassOrder::default(),
        })
    }

    /// Number of floats [`Self::apply`] writes: `3 * size * size`.
    pub fn output_len(&self) -> usize {
        3 * self.size * self.size
    }

    /// Samples a crop box of a `height x width` image (`RandomResizedCrop.get_params`).
    /// The box is always inside the image and non-empty (an empty image gives an empty box
    /// without drawing).
    pub fn get_params(&self, rng: &mut Rng, height: usize, width: usize) -> CropParams {
        self.sample(rng, height, width).0
    }

    /// The crop box and whether one of the 10 attempts was accepted (false: the fallback).
    fn sample(&self, rng: &mut Rng, height: usize, width: usize) -> (CropParams, bool) {
        if height == 0 || width == 0 {
            return (CropParams::full(height, width), false);
        }
        let area = (height * width) as f64;
        let (lr0, lr1) = (self.ratio.0.ln(), self.ratio.1.ln());
        for _ in 0..10 {
            let target_area = area * rng.uniform_range(self.scale.0, self.scale.1);
            let aspect = rng.uniform_range(lr0, lr1).exp();
            let w = (target_area * aspect).sqrt().round_ties_even();
            let h = (target_area / aspect).sqrt().round_ties_even();
            if 0.0 < w && w <= width as f64 && 0.0 < h && h <= height as f64 {
                let (w, h) = (w as usize, h as usize);
                let top = rng.randint(0, (height - h + 1) as i64) as usize;
                let left = rng.randint(0, (width - w + 1) as i64) as usize;
                return (
                    CropParams {
                        top,
                        left,
                        height: h,
                        width: w,
                    },
                    true,
                );
            }
        }
        // Fallback to a central crop, clamped to the ratio range.
        let in_ratio = width as f64 / height as f64;
        let (w, h) = if in_ratio < self.ratio.0 {
            (
                width,
                ((width as f64 / self.ratio.0).round_ties_even() as usize).clamp(1, height),
            )
        } else if in_ratio > self.ratio.1 {
            (
                ((height as f64 * self.ratio.1).round_ties_even() as usize).clamp(1, width),
                height,
            )
        } else {
            (width, height)
        };
        (
            CropParams {
                top: (height - h) / 2,
                left: (width - w) / 2,
                height: h,
                width: w,
            },
            false,
        )
    }

    /// Crops a grey `height x width` image (row-major bytes) at a random box, resizes it to
    /// `size x size` (PIL bilinear), and writes the normalised 3-channel result into `out`
    /// (`[3, size, size]`, channel-major). Returns the box.
    pub fn apply(
        &self,
        rng: &mut Rng,
        img: &[u8],
        height: usize,
        width: usize,
        out: &mut [f32],
    ) -> Result<CropParams> {
        check_image(img.len(), height, width)?;
        check_out(out.len(), self.size, self.size)?;
        let crop = self.get_params(rng, height, width);
        let resized = resize_bilinear_u8_ordered(
            img,
            height,
            width,
            crop,
            self.size,
            self.size,
            self.pass_order,
        )?;
        normalize_grey_u8(&resized, out);
        Ok(crop)
    }
}

/// Evaluation transform: resize the shorter side to `resize` (PIL bilinear), centre-crop
/// `crop x crop`, ToTensor + Normalize, replicated to 3 channels. `resize == crop` on a square
/// image is a plain resize to `crop x crop`; the ImageNet convention is `resize = crop * 256/224`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvalTransform {
    /// Target length of the shorter side.
    pub resize: usize,
    /// Side of the square centre crop (<= `resize`).
    pub crop: usize,
    /// Which Pillow's pass order the resize reproduces.
    pub pass_order: PassOrder,
}

impl EvalTransform {
    /// Resize the shorter side to `resize`, then centre-crop `crop`.
    pub fn new(resize: usize, crop: usize) -> Result<Self> {
        if crop == 0 || crop > resize {
            return Err(Error::Config(format!(
                "eval transform: crop {crop} must be in 1..={resize} (the resized shorter side)"
            )));
        }
        Ok(Self {
            resize,
            crop,
            pass_order: PassOrder::default(),
        })
    }

    /// Resize to `size x size` (for square inputs).
    pub fn resize_only(size: usize) -> Result<Self> {
        Self::new(size, size)
    }

    /// Number of floats [`Self::apply`] writes: `3 * crop * crop`.
    pub fn output_len(&self) -> usize {
        3 * self.crop * self.crop
    }

    /// Transforms a grey `height x width` image into `out` (`[3, crop, crop]`).
    pub fn apply(&self, img: &[u8], height: usize, width: usize, out: &mut [f32]) -> Result<()> {
        check_image(img.len(), height, width)?;
        check_out(out.len(), self.crop, self.crop)?;
        // torchvision `_compute_resized_output_size` for an int size.
        let (short, long) = if width <= height {
            (width, height)
        } else {
            (height, width)
        };
        let new_long = (self.resize as f64 * long as f64 / short as f64) as usize;
        let (new_h, new_w) = if width <= height {
            (new_long, self.resize)
        } else {
            (self.resize, new_long)
        };
        let full = CropParams::full(height, width);
        let resized =
            resize_bilinear_u8_ordered(img, height, width, full, new_h, new_w, self.pass_order)?;
        // torchvision `center_crop`: int(round((size - crop) / 2.0)).
        let top = ((new_h - self.crop) as f64 / 2.0).round_ties_even() as usize;
        let left = ((new_w - self.crop) as f64 / 2.0).round_ties_even() as usize;
        let mut cropped = Vec::with_capacity(self.crop * self.crop);
        for y in top..top + self.crop {
            cropped.extend_from_slice(&resized[y * new_w + left..y * new_w + left + self.crop]);
        }
        normalize_grey_u8(&cropped, out);
        Ok(())
    }
}

fn check_image(len: usize, height: usize, width: usize) -> Result<()> {
    if height == 0 || width == 0 || len != height * width {
        return Err(Error::Data(format!(
            "image of {len} bytes is not a non-empty {height}x{width} grey image"
        )));
    }
    Ok(())
}

fn check_out(len: usize, h: usize, w: usize) -> Result<()> {
    if len != 3 * h * w {
        return Err(Error::Config(format!(
            "output buffer holds {len} floats, the transform writes 3x{h}x{w}"
        )));
    }
    Ok(())
}

/// ToTensor + Normalize look-up table: `lut[c][v] = (v / 255 - mean[c]) / std[c]` in f32,
/// the same operations (and so the same bits) as torchvision's.
fn norm_lut() -> &'static [[f32; 256]; 3] {
    static LUT: OnceLock<[[f32; 256]; 3]> = OnceLock::new();
    LUT.get_or_init(|| {
        let mut lut = [[0f32; 256]; 3];
        for (c, row) in lut.iter_mut().enumerate() {
            for (v, x) in row.iter_mut().enumerate() {
                *x = (v as f32 / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
            }
        }
        lut
    })
}

/// ToTensor + Normalize of a grey 8-bit image replicated to RGB: writes
/// `out[c * n + i] = (grey[i] / 255 - mean[c]) / std[c]` for `n = grey.len()`.
/// Panics if `out.len() != 3 * grey.len()`.
pub fn normalize_grey_u8(grey: &[u8], out: &mut [f32]) {
    assert_eq!(
        out.len(),
        3 * grey.len(),
        "normalize_grey_u8: output length"
    );
    let lut = norm_lut();
    for (c, plane) in out.chunks_exact_mut(grey.len().max(1)).enumerate().take(3) {
        for (o, &g) in plane.iter_mut().zip(grey) {
            *o = lut[c][g as usize];
        }
    }
}

/// Order of PIL's two resampling passes, which decides where the 8-bit intermediate is
/// rounded (so results can differ by one grey level).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PassOrder {
    /// Pillow >= 13: horizontal first, unless the height shrinks by more than twice as many
    /// pixels as the width (`h_in - h_out > 0 && h_in - h_out > 2 * (w_in - w_out)`), then
    /// vertical first (Pillow PR #9549).
    #[default]
    Pillow13,
    /// Pillow <= 12 (the official I-JEPA era): always horizontal first.
    HorizontalFirst,
}

impl PassOrder {
    fn horizontal_first(self, in_h: usize, in_w: usize, out_h: usize, out_w: usize) -> bool {
        match self {
            PassOrder::HorizontalFirst => true,
            PassOrder::Pillow13 => {
                let dh = in_h as i64 - out_h as i64;
                let dw = in_w as i64 - out_w as i64;
                !(dh > 0 && dh > dw * 2)
            }
        }
    }
}

/// Resampling weights of one axis (PIL `precompute_coeffs` with the bilinear filter).
struct Coeffs {
    /// Per output pixel: first input pixel and weights of the consecutive input pixels.
    taps: Vec<(usize, Vec<f64>)>,
}

impl Coeffs {
    /// Weights mapping `in_size` pixels onto `out_size` (both > 0).
    fn bilinear(in_size: usize, out_size: usize) -> Self {
        let scale = in_size as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = filterscale; // the bilinear (triangle) filter has support 1
        let ss = 1.0 / filterscale;
        let taps = (0..out_size)
            .map(|xx| {
                let center = (xx as f64 + 0.5) * scale;
                // C's (int) cast truncates toward zero, as `as i64` does.
                let xmin = ((center - support + 0.5) as i64).max(0) as usize;
                let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
                let mut k: Vec<f64> = (xmin..xmax)
                    .map(|x| {
                        let t = ((x as f64 - center + 0.5) * ss).abs();
                        if t < 1.0 {
                            1.0 - t
                        } else {
                            0.0
                        }
                    })
                    .collect();
                let ww: f64 = k.iter().sum();
                if ww != 0.0 {
                    k.iter_mut().for_each(|w| *w /= ww);
                }
                (xmin, k)
            })
            .collect();
        Self { taps }
    }

    /// The weights in PIL's 8-bit fixed point (22 fractional bits, rounded half away from 0).
    fn fixed(&self) -> Vec<(usize, Vec<i32>)> {
        self.taps
            .iter()
            .map(|(x0, k)| {
                let k = k
                    .iter()
                    .map(|&w| {
                        if w < 0.0 {
                            (-0.5 + w * ONE) as i32
                        } else {
                            (0.5 + w * ONE) as i32
                        }
                    })
                    .collect();
                (*x0, k)
            })
            .collect()
    }
}

/// PIL's PRECISION_BITS for 8-bit resampling: 32 - 8 - 2.
const PRECISION_BITS: u32 = 22;
const ONE: f64 = (1u32 << PRECISION_BITS) as f64;
/// Rounding offset added before the shift (PIL starts each sum at 1 << (PRECISION_BITS - 1)).
const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// PIL `clip8`: the fixed-point sum back to a byte, saturating. Sums cannot overflow i32:
/// the weights of one output pixel add up to about 1 << 22 and pixels are < 256.
#[inline]
fn clip8(ss: i32) -> u8 {
    if ss >= 1 << PRECISION_BITS << 8 {
        255
    } else if ss <= 0 {
        0
    } else {
        (ss >> PRECISION_BITS) as u8
    }
}

/// A row-major single-channel image.
struct Plane<T> {
    data: Vec<T>,
    height: usize,
    width: usize,
}

impl<T: Copy> Plane<T> {
    /// The `crop` box of a `height x width` image, validated.
    fn crop(img: &[T], height: usize, width: usize, crop: CropParams) -> Result<Self> {
        check_image(img.len(), height, width)?;
        crop.check(height, width)?;
        let mut data = Vec::with_capacity(crop.height * crop.width);
        for y in crop.top..crop.top + crop.height {
            data.extend_from_slice(&img[y * width + crop.left..y * width + crop.left + crop.width]);
        }
        Ok(Self {
            data,
            height: crop.height,
            width: crop.width,
        })
    }
}

/// One resampling pass along x (`horizontal`) or y, for one pixel type.
trait Pass: Sized + Copy {
    fn horizontal(p: &Plane<Self>, out_w: usize) -> Plane<Self>;
    fn vertical(p: &Plane<Self>, out_h: usize) -> Plane<Self>;
}

impl Pass for u8 {
    fn horizontal(p: &Plane<u8>, out_w: usize) -> Plane<u8> {
        let taps = Coeffs::bilinear(p.width, out_w).fixed();
        let mut data = Vec::with_capacity(p.height * out_w);
        for row in p.data.chunks_exact(p.width) {
            for (x0, k) in &taps {
                let ss = row[*x0..]
                    .iter()
                    .zip(k)
                    .fold(HALF, |s, (&v, &w)| s + v as i32 * w);
                data.push(clip8(ss));
            }
        }
        Plane {
            data,
            height: p.height,
            width: out_w,
        }
    }

    fn vertical(p: &Plane<u8>, out_h: usize) -> Plane<u8> {
        let taps = Coeffs::bilinear(p.height, out_h).fixed();
        let w = p.width;
        let mut data = Vec::with_capacity(out_h * w);
        let mut acc = vec![0i32; w];
        for (y0, k) in &taps {
            // Row-wise accumulation: the same sums as PIL's per-pixel loop (taps in order).
            acc.fill(HALF);
            for (j, &kw) in k.iter().enumerate() {
                let row = &p.data[(y0 + j) * w..(y0 + j + 1) * w];
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a += v as i32 * kw;
                }
            }
            data.extend(acc.iter().map(|&ss| clip8(ss)));
        }
        Plane {
            data,
            height: out_h,
            width: w,
        }
    }
}

impl Pass for f32 {
    fn horizontal(p: &Plane<f32>, out_w: usize) -> Plane<f32> {
        let c = Coeffs::bilinear(p.width, out_w);
        let mut data = Vec::with_capacity(p.height * out_w);
        for row in p.data.chunks_exact(p.width) {
            for (x0, k) in &c.taps {
                let ss = row[*x0..]
                    .iter()
                    .zip(k)
                    .fold(0.0f64, |s, (&v, &w)| s + v as f64 * w);
                data.push(ss as f32);
            }
        }
        Plane {
            data,
            height: p.height,
            width: out_w,
        }
    }

    fn vertical(p: &Plane<f32>, out_h: usize) -> Plane<f32> {
        let c = Coeffs::bilinear(p.height, out_h);
        let w = p.width;
        let mut data = Vec::with_capacity(out_h * w);
        let mut acc = vec![0f64; w];
        for (y0, k) in &c.taps {
            // Row-wise accumulation, taps in PIL's order (so the same f64 rounding).
            acc.fill(0.0);
            for (j, &kw) in k.iter().enumerate() {
                let row = &p.data[(y0 + j) * w..(y0 + j + 1) * w];
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a += v as f64 * kw;
                }
            }
            data.extend(acc.iter().map(|&ss| ss as f32));
        }
        Plane {
            data,
            height: out_h,
            width: w,
        }
    }
}

/// PIL `ImagingResampleInner` on a cropped plane: each needed pass, in `order`.
fn resample<T: Pass>(p: Plane<T>, out_h: usize, out_w: usize, order: PassOrder) -> Result<Vec<T>> {
    if out_h == 0 || out_w == 0 {
        return Err(Error::Config(format!("resize to {out_h}x{out_w}")));
    }
    let (need_h, need_v) = (out_w != p.width, out_h != p.height);
    let p = if order.horizontal_first(p.height, p.width, out_h, out_w) {
        let p = if need_h { T::horizontal(&p, out_w) } else { p };
        if need_v {
            T::vertical(&p, out_h)
        } else {
            p
        }
    } else {
        let p = if need_v { T::vertical(&p, out_h) } else { p };
        if need_h {
            T::horizontal(&p, out_w)
        } else {
            p
        }
    };
    Ok(p.data)
}

/// PIL `Image.resize((out_w, out_h), BILINEAR)` of the `crop` box of a grey 8-bit
/// `height x width` image, as torchvision's `resized_crop` does it (crop first, so pixels
/// outside the box never contribute), with Pillow >= 13's pass order. Bit-exact with PIL's
/// "L" (and per-channel "RGB") fixed-point path. Returns `out_h * out_w` bytes, row-major.
pub fn resize_bilinear_u8(
    img: &[u8],
    height: usize,
    width: usize,
    crop: CropParams,
    out_h: usize,
    out_w: usize,
) -> Result<Vec<u8>> {
    resize_bilinear_u8_ordered(img, height, width, crop, out_h, out_w, PassOrder::default())
}

/// [`resize_bilinear_u8`] with an explicit pass order (the Pillow version to match).
pub fn resize_bilinear_u8_ordered(
    img: &[u8],
    height: usize,
    width: usize,
    crop: CropParams,
    out_h: usize,
    out_w: usize,
    order: PassOrder,
) -> Result<Vec<u8>> {
    resample(Plane::crop(img, height, width, crop)?, out_h, out_w, order)
}

/// PIL `Image.resize((out_w, out_h), BILINEAR)` of the `crop` box of a float ("F" mode)
/// `height x width` image: f64 weights and sums, f32 storage after each pass, as PIL does.
pub fn resize_bilinear_f32(
    img: &[f32],
    height: usize,
    width: usize,
    crop: CropParams,
    out_h: usize,
    out_w: usize,
    order: PassOrder,
) -> Result<Vec<f32>> {
    resample(Plane::crop(img, height, width, crop)?, out_h, out_w, order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Stream;

    #[test]
    fn crop_params_are_always_in_bounds() {
        let mut rng = Rng::derive(0, Stream::Crop, &[0]);
        let scales = [(0.3, 1.0), (0.08, 1.0), (1.0, 1.0), (0.0, 0.01), (0.9, 2.0)];
        for h in (1..=40).step_by(3).chain([1, 2, 100]) {
            for w in (1..=40).step_by(5).chain([1, 2, 100]) {
                for &s in &scales {
                    let t = RandomResizedCrop::new(8, s).unwrap();
                    for _ in 0..50 {
                        let c = t.get_params(&mut rng, h, w);
                        assert!(c.height >= 1 && c.width >= 1, "{c:?} in {h}x{w} {s:?}");
                        assert!(
                            c.top + c.height <= h && c.left + c.width <= w,
                            "{c:?} in {h}x{w} {s:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn fallback_is_torchvisions_central_crop() {
        // Scale 1 of a 10x100 image never fits: fallback, in_ratio 10 > 4/3 -> h = 10,
        // w = round(10 * 4/3) = 13, centred: left = (100 - 13) // 2 = 43.
        let t = RandomResizedCrop::new(8, (1.0, 1.0)).unwrap();
        let mut rng = Rng::from_key(&[1]);
        let (c, ok) = t.sample(&mut rng, 10, 100);
        assert!(!ok);
        assert_eq!(
            c,
            CropParams {
                top: 0,
                left: 43,
                height: 10,
                width: 13
            }
        );
        // tall: in_ratio 0.1 < 3/4 -> w = 10, h = round(10 / 0.75) = 13, top = (100 - 13) // 2.
        let (c, ok) = t.sample(&mut rng, 100, 10);
        assert!(!ok);
        assert_eq!(
            c,
            CropParams {
                top: 43,
                left: 0,
                height: 13,
                width: 10
            }
        );
        // Scale 2 of a square image: the whole image.
        let t = RandomResizedCrop::new(8, (2.0, 2.0)).unwrap();
        assert_eq!(
            t.sample(&mut rng, 28, 28),
            (CropParams::full(28, 28), false)
        );
        // An empty image: an empty box, no panic.
        assert_eq!(t.get_params(&mut rng, 0, 5), CropParams::full(0, 5));
    }

    /// The accepted crops follow the definition: the distribution of one attempt conditioned
    /// on acceptance, computed here by midpoint quadrature over (scale, log-ratio).
    #[test]
    fn crop_statistics_match_the_definition() {
        let (hh, ww) = (28usize, 28usize);
        let scale = (0.3, 1.0);
        let t = RandomResizedCrop::new(16, scale).unwrap();
        let (lr0, lr1) = (DEFAULT_RATIO.0.ln(), DEFAULT_RATIO.1.ln());
        let area = (hh * ww) as f64;
        let g = 1000;
        let (mut acc, mut frac_sum, mut logr_sum) = (0usize, 0.0, 0.0);
        for i in 0..g {
            let s = scale.0 + (i as f64 + 0.5) / g as f64 * (scale.1 - scale.0);
            for j in 0..g {
                let r = (lr0 + (j as f64 + 0.5) / g as f64 * (lr1 - lr0)).exp();
                let w = (area * s * r).sqrt().round_ties_even();
                let h = (area * s / r).sqrt().round_ties_even();
                if 0.0 < w && w <= ww as f64 && 0.0 < h && h <= hh as f64 {
                    acc += 1;
                    frac_sum += w * h / area;
                    logr_sum += (w / h).ln();
                }
            }
        }
        let p_accept = acc as f64 / (g * g) as f64;
        let want_frac = frac_sum / acc as f64;
        let want_logr = logr_sum / acc as f64;

        let n = 200_000;
        let (mut fallbacks, mut got_frac, mut got_logr, mut centre_dev) = (0usize, 0.0, 0.0, 0.0);
        for k in 0..n {
            let mut rng = Rng::derive(3, Stream::Crop, &[0, k]);
            let (c, ok) = t.sample(&mut rng, hh, ww);
            if !ok {
                fallbacks += 1;
                continue;
            }
            got_frac += (c.width * c.height) as f64 / area;
            got_logr += (c.width as f64 / c.height as f64).ln();
            // top ~ U{0..H-h}: its mean is (H-h)/2, same for left
            centre_dev += c.top as f64 - (hh - c.height) as f64 / 2.0;
            centre_dev += c.left as f64 - (ww - c.width) as f64 / 2.0;
        }
        let m = (n as usize - fallbacks) as f64;
        let (got_frac, got_logr, centre_dev) = (got_frac / m, got_logr / m, centre_dev / m);
        assert!((0.5..1.0).contains(&p_accept), "{p_accept}");
        assert!(
            (got_frac - want_frac).abs() < 0.003,
            "mean area fraction {got_frac} vs {want_frac}"
        );
        assert!(
            (got_logr - want_logr).abs() < 0.003,
            "mean log ratio {got_logr} vs {want_logr}"
        );
        assert!(centre_dev.abs() < 0.05, "corner bias {centre_dev}");
        let want_fallback = (1.0 - p_accept).powi(10) * n as f64;
        assert!(
            (fallbacks as f64) < 10.0 * want_fallback + 10.0,
            "{fallbacks} vs {want_fallback}"
        );

        // Without rejections or rounding (a large image, small scales) the accepted scale is
        // U(0.08, 0.5): mean 0.29.
        let t = RandomResizedCrop::new(16, (0.08, 0.5)).unwrap();
        let mut rng = Rng::from_key(&[9]);
        let mean = (0..20_000)
            .map(|_| {
                let c = t.get_params(&mut rng, 2000, 2000);
                (c.width * c.height) as f64 / 4e6
            })
            .sum::<f64>()
            / 20_000.0;
        assert!((mean - 0.29).abs() < 0.003, "{mean}");
    }

    #[test]
    fn resize_of_a_constant_image_is_constant() {
        for v in [0u8, 1, 77, 254, 255] {
            let img = vec![v; 28 * 28];
            for (crop, s) in [
                (
                    CropParams {
                        top: 3,
                        left: 5,
                        height: 17,
                        width: 20,
                    },
                    224,
                ),
                (CropParams::full(28, 28), 9),
                (CropParams::full(28, 28), 3),
            ] {
                let out = resize_bilinear_u8(&img, 28, 28, crop, s, s + 1).unwrap();
                assert!(out.iter().all(|&x| x == v), "{v} {crop:?} {s}");
                let f: Vec<f32> = img.iter().map(|&x| x as f32).collect();
                let out =
                    resize_bilinear_f32(&f, 28, 28, crop, s, s + 1, PassOrder::Pillow13).unwrap();
                assert!(
                    out.iter().all(|&x| (x - v as f32).abs() < 1e-4),
                    "{v} {crop:?} {s}"
                );
            }
        }
    }

    #[test]
    fn resize_to_the_same_size_is_the_identity() {
        let img: Vec<u8> = (0..28 * 28).map(|i| (i * 37 % 256) as u8).collect();
        assert_eq!(
            resize_bilinear_u8(&img, 28, 28, CropParams::full(28, 28), 28, 28).unwrap(),
            img
        );
        let crop = CropParams {
            top: 2,
            left: 4,
            height: 10,
            width: 7,
        };
        let out = resize_bilinear_u8(&img, 28, 28, crop, 10, 7).unwrap();
        for y in 0..10 {
            assert_eq!(
                out[y * 7..y * 7 + 7],
                img[(y + 2) * 28 + 4..(y + 2) * 28 + 11]
            );
        }
        // the identity through the filter too (one axis resized, the other kept)
        let f: Vec<f32> = img.iter().map(|&x| x as f32).collect();
        let out = resize_bilinear_f32(
            &f,
            28,
            28,
            CropParams::full(28, 28),
            28,
            28,
            PassOrder::Pillow13,
        )
        .unwrap();
        assert_eq!(out, f);
    }

    /// Expected values from Pillow 13.0.0 (in a throwaway venv; these cases run the
    /// horizontal pass first in every Pillow version):
    /// ```python
    /// from PIL import Image; import numpy as np
    /// a = np.array([[0, 50, 200, 255], [10, 100, 30, 90], [255, 0, 128, 64]], np.uint8)
    /// Image.fromarray(a).resize((7, 5), Image.BILINEAR)                  # "L" upscale
    /// Image.fromarray(a.astype(np.float32)).resize((7, 5), Image.BILINEAR) # "F" upscale
    /// b = np.arange(63, dtype=np.uint8).reshape(7, 9) * 4 % 251
    /// Image.fromarray(b).crop((1, 2, 8, 7)).resize((3, 2), Image.BILINEAR) # crop + downscale
    /// ```
    #[test]
    fn resize_matches_pil() {
        let a: [u8; 12] = [0, 50, 200, 255, 10, 100, 30, 90, 255, 0, 128, 64];
        let want_l: [u8; 35] = PIL_UP_L;
        let got = resize_bilinear_u8(&a, 3, 4, CropParams::full(3, 4), 5, 7).unwrap();
        assert_eq!(got, want_l);
        let af: Vec<f32> = a.iter().map(|&x| x as f32).collect();
        let got = resize_bilinear_f32(&af, 3, 4, CropParams::full(3, 4), 5, 7, PassOrder::Pillow13)
            .unwrap();
        for (g, w) in got.iter().zip(PIL_UP_F) {
            assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "{got:?}");
        }
        let b: Vec<u8> = (0..63u32).map(|i| (i * 4 % 251) as u8).collect();
        let crop = CropParams {
            top: 2,
            left: 1,
            height: 5,
            width: 7,
        };
        let got = resize_bilinear_u8(&b, 7, 9, crop, 2, 3).unwrap();
        assert_eq!(got, PIL_DOWN_L);

        // The pass order: 7x9 -> 2x8 shrinks the height by 5 > 2 * 1 pixels, so Pillow 13
        // runs the vertical pass first; Pillow 12 runs the horizontal one first.
        let c: Vec<u8> = (0..63u32).map(|i| (i * 37 % 251) as u8).collect();
        let full = CropParams::full(7, 9);
        let p13 = resize_bilinear_u8_ordered(&c, 7, 9, full, 2, 8, PassOrder::Pillow13).unwrap();
        let p12 =
            resize_bilinear_u8_ordered(&c, 7, 9, full, 2, 8, PassOrder::HorizontalFirst).unwrap();
        assert_eq!(p13, PIL13_ORDER_L);
        assert_eq!(p12, PIL12_ORDER_L);
        let cf: Vec<f32> = c.iter().map(|&x| x as f32).collect();
        let f13 = resize_bilinear_f32(&cf, 7, 9, full, 2, 8, PassOrder::Pillow13).unwrap();
        let f12 = resize_bilinear_f32(&cf, 7, 9, full, 2, 8, PassOrder::HorizontalFirst).unwrap();
        assert_eq!(f13[0], 111.583_72_f32);
        assert_eq!(f12[0], 111.583_725_f32);
    }

    /// ```python
    /// c = (np.arange(63, dtype=np.uint32).reshape(7, 9) * 37 % 251).astype(np.uint8)
    /// Image.fromarray(c).resize((8, 2), Image.BILINEAR)   # Pillow 13.0.0, then 12.3.0
    /// ```
    #[rustfmt::skip]
    const PIL13_ORDER_L: [u8; 16] = [111, 117, 136, 135, 124, 123, 93, 110, 161, 122, 130, 111, 116, 128, 138, 123];
    #[rustfmt::skip]
    const PIL12_ORDER_L: [u8; 16] = [112, 117, 136, 135, 124, 123, 94, 110, 162, 122, 131, 111, 116, 128, 138, 123];

    // Printed by the Pillow 13.0.0 run documented on `resize_matches_pil` (note where "L"
    // differs from the rounded "F" values: 87.77 -> 87, 79.54 -> 80, from the 8-bit
    // intermediate between the passes).
    #[rustfmt::skip]
    const PIL_UP_L: [u8; 35] = [
        0, 18, 46, 125, 204, 235, 255,
        4, 28, 65, 101, 136, 169, 189,
        10, 42, 94, 65, 34, 69, 90,
        157, 115, 48, 64, 87, 80, 74,
        255, 164, 18, 64, 123, 87, 64,
    ];
    #[rustfmt::skip]
    const PIL_UP_F: [f32; 35] = [
        0.0, 17.857143, 46.42857, 125.0, 203.92857, 235.35715, 255.0,
        4.0, 27.571428, 65.28571, 101.0, 136.07143, 168.64286, 189.0,
        10.0, 42.142857, 93.57143, 65.0, 34.285713, 68.57143, 90.0,
        157.0, 115.21429, 48.35714, 64.4, 87.77143, 79.542854, 74.4,
        255.0, 163.92857, 18.214285, 64.0, 123.42857, 86.85714, 64.0,
    ];
    const PIL_DOWN_L: [u8; 6] = [115, 124, 133, 187, 196, 205];

    #[test]
    fn normalisation_is_torchvisions() {
        let grey = [0u8, 128, 255];
        let mut out = [0f32; 9];
        normalize_grey_u8(&grey, &mut out);
        for c in 0..3 {
            for (i, &g) in grey.iter().enumerate() {
                let want = (g as f32 / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
                assert_eq!(out[c * 3 + i].to_bits(), want.to_bits());
            }
        }
        assert!((out[0] - (-0.485 / 0.229)).abs() < 1e-6);
        assert!((out[8] - ((1.0 - 0.406) / 0.225)).abs() < 1e-6);
    }

    #[test]
    fn apply_and_eval_shapes_and_errors() {
        let img: Vec<u8> = (0..28 * 28).map(|i| (i % 256) as u8).collect();
        let t = RandomResizedCrop::new(32, (0.3, 1.0)).unwrap();
        let mut out = vec![0f32; t.output_len()];
        let mut rng = Rng::from_key(&[5]);
        let c = t.apply(&mut rng, &img, 28, 28, &mut out).unwrap();
        let mut rng2 = Rng::from_key(&[5]);
        assert_eq!(t.get_params(&mut rng2, 28, 28), c);
        // the three channels are the same grey plane, normalised per channel
        let n = 32 * 32;
        for i in 0..n {
            let g0 = out[i] * IMAGENET_STD[0] + IMAGENET_MEAN[0];
            let g2 = out[2 * n + i] * IMAGENET_STD[2] + IMAGENET_MEAN[2];
            assert!((g0 - g2).abs() < 1e-5);
        }
        assert!(t.apply(&mut rng, &img[..100], 28, 28, &mut out).is_err());
        assert!(t.apply(&mut rng, &img, 28, 28, &mut out[..10]).is_err());
        assert!(RandomResizedCrop::new(0, (0.3, 1.0)).is_err());
        assert!(RandomResizedCrop::new(8, (0.5, 0.3)).is_err());
        assert!(RandomResizedCrop::new(8, (f64::NAN, 0.3)).is_err());

        // eval: resize 28 -> 36, centre crop 32 (offset 2); equals resize then manual crop
        let e = EvalTransform::new(36, 32).unwrap();
        let mut out = vec![0f32; e.output_len()];
        e.apply(&img, 28, 28, &mut out).unwrap();
        let big = resize_bilinear_u8(&img, 28, 28, CropParams::full(28, 28), 36, 36).unwrap();
        let mut want = vec![0f32; 3 * 32 * 32];
        let crop: Vec<u8> = (0..32)
            .flat_map(|y| big[(y + 2) * 36 + 2..(y + 2) * 36 + 34].to_vec())
            .collect();
        normalize_grey_u8(&crop, &mut want);
        assert_eq!(out, want);
        // non-square: shorter side (height 10) -> 20, width 30 -> 60
        let e = EvalTransform::resize_only(20).unwrap();
        let mut out = vec![0f32; e.output_len()];
        e.apply(&img[..300], 10, 30, &mut out).unwrap();
        assert!(EvalTransform::new(20, 21).is_err());
    }
}
