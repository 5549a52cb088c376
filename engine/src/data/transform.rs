//! The I-JEPA image transforms: [`TrainTransform`] (RandomResizedCrop, optional flip, colour
//! distortion and blur, ToTensor, Normalize with the ImageNet mean/std) and [`EvalTransform`]
//! (resize the shorter side, centre crop, ToTensor, Normalize), both [`SampleTransform`]s on
//! grey or RGB images, plus the grey-only [`RandomResizedCrop`] they build on.
//!
//! Mirrors the official `src/transforms.py` (`make_transforms`; its pretraining configs use
//! no flip, colour distortion or blur, our [`TrainTransformCfg::default`]) and torchvision's
//! transforms as applied to a PIL image:
//!
//! - crop parameters are sampled exactly as `RandomResizedCrop.get_params` (10 attempts of
//!   scale ~ U(scale), log-ratio ~ U(log 3/4, log 4/3), Python's round-half-even, then the
//!   centre-crop fallback) on the full-resolution size, but the uniform numbers come from our
//!   keyed [`Rng`] (torch draws them in float32; we draw in f64);
//! - the crop is resized with PIL's BILINEAR resampling (`Image.resize`): a separable triangle
//!   filter whose support grows with the downscaling factor (antialiased), pixel centres at
//!   +0.5. For 8-bit images ([`resize_bilinear_u8`], [`resize_bilinear_image`], what the
//!   transforms use) this reproduces PIL's fixed-point arithmetic bit for bit, band by band,
//!   including the rounding to 8 bits between the two passes, so our tensors equal
//!   torchvision's on the same crop box; [`resize_bilinear_f32`] is PIL's float ("F" mode)
//!   path. PIL's BICUBIC filter (MAE's and DINO's crops, [`Filter::Bicubic`]) takes the same
//!   fixed-point path with its own weights ([`resize_image`], [`resize_u8`]).
//!   Which pass runs first changed in Pillow 13 ([`PassOrder`]); the two orders can
//!   differ (by one grey level in our tests) only when the crop is taller than the output, so
//!   never when a 28 px image is cropped and resized to 28 px or more;
//! - unless `exact`, the decoder may shrink the image (JPEG DCT scaling by 2, 4 or 8) while
//!   the crop stays at least the output size ([`shrink_factor`]); the crop box is then mapped
//!   into the smaller image ([`map_crop`]), so pixels differ slightly from PIL's (a different
//!   downscaling filter, crop edges rounded to the decoded grid);
//! - flip, colour jitter, grayscale and blur act on floats in [0, 1] (see [`augment`] for how
//!   they differ from the official 8-bit PIL operations);
//! - ToTensor (`/255` in f32) and Normalize (`(x - mean) / std` in f32), a grey image
//!   replicated to 3 channels as `Image.convert("RGB")` does (after the resize, which gives
//!   the same pixels since PIL resizes every band alike).
//!
//! [`augment`]: super::augment

use std::sync::OnceLock;

use super::augment::{self, ColorJitter};
use super::dataset::{Dataset, Image, SampleTransform, SHRINK_FACTORS};
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

/// The largest decoder shrink factor of [`SHRINK_FACTORS`] that keeps a `crop_h x crop_w`
/// box at least `size` pixels on both sides once divided by it (`crop / f >= size`); 1 when
/// even the full-resolution box is smaller than `size`.
pub fn shrink_factor(crop_h: usize, crop_w: usize, size: usize) -> u32 {
    SHRINK_FACTORS
        .iter()
        .copied()
        .filter(|&f| {
            size.checked_mul(f as usize)
                .is_some_and(|m| crop_h >= m && crop_w >= m)
        })
        .max()
        .unwrap_or(1)
}

/// Checks a decoded image: non-empty, 1 or 3 channels, `height * width * channels` bytes.
fn check_decoded(img: &Image) -> Result<()> {
    if img.height == 0
        || img.width == 0
        || !(img.channels == 1 || img.channels == 3)
        || img.pixels.len() != img.height * img.width * img.channels
    {
        return Err(Error::Data(format!(
            "decoded image of {} bytes is not a non-empty {}x{}x{} image with 1 or 3 channels",
            img.pixels.len(),
            img.height,
            img.width,
            img.channels
        )));
    }
    Ok(())
}

/// Maps a crop box of the full-resolution `full = (height, width)` image into the image a
/// decoder returned after shrinking by `factor` (at most `max_shrink`).
///
/// With `factor == 1` the decoded image must have the full size and the box is unchanged.
/// Otherwise each edge is divided by `factor` and rounded to the nearest pixel (so an edge
/// moves by at most `factor / 2` full-resolution pixels), clamped to the decoded image, the
/// box kept at least one pixel wide. Errors (never panics) when the factor is not one of
/// [`SHRINK_FACTORS`], exceeds `max_shrink`, or the decoded size is not the full size divided
/// by it (up to the decoder's rounding: floor or ceil).
pub fn map_crop(
    crop: CropParams,
    full: (usize, usize),
    decoded: (usize, usize),
    factor: u32,
    max_shrink: u32,
) -> Result<CropParams> {
    if !SHRINK_FACTORS.contains(&factor) || factor > max_shrink.max(1) {
        return Err(Error::Data(format!(
            "the decoder shrank by {factor}, allowed: one of {SHRINK_FACTORS:?} up to {max_shrink}"
        )));
    }
    let f = factor as usize;
    let (fh, fw) = full;
    let (dh, dw) = decoded;
    let plausible = |d: usize, n: usize| {
        if f == 1 {
            d == n
        } else {
            d == n / f || d == n.div_ceil(f)
        }
    };
    if !plausible(dh, fh) || !plausible(dw, fw) || dh == 0 || dw == 0 {
        return Err(Error::Data(format!(
            "decoded {dh}x{dw} at 1/{factor} does not match the full size {fh}x{fw}"
        )));
    }
    crop.check(fh, fw)?;
    if f == 1 {
        return Ok(crop);
    }
    let axis = |start: usize, len: usize, dim: usize| {
        let hi = (((start + len) as f64 / f as f64).round() as usize).clamp(1, dim);
        let lo = ((start as f64 / f as f64).round() as usize).min(hi - 1);
        (lo, hi - lo)
    };
    let (top, height) = axis(crop.top, crop.height, dh);
    let (left, width) = axis(crop.left, crop.width, dw);
    Ok(CropParams {
        top,
        left,
        height,
        width,
    })
}

/// PIL bilinear resize of the `crop` box of each band of `img`: one `out_h * out_w` plane per
/// channel (PIL resamples every band of an "RGB" image with the same fixed-point weights).
fn resize_planes(
    img: &Image,
    crop: CropParams,
    out_h: usize,
    out_w: usize,
    order: PassOrder,
) -> Result<Vec<Vec<u8>>> {
    check_decoded(img)?;
    crop.check(img.height, img.width)?;
    let ch = img.channels;
    (0..ch)
        .map(|c| {
            let mut data = Vec::with_capacity(crop.height * crop.width);
            for y in crop.top..crop.top + crop.height {
                let start = (y * img.width + crop.left) * ch + c;
                let row = &img.pixels[start..start + (crop.width - 1) * ch + 1];
                // plain indexing: the strided iterator was 7% of a loader profile
                data.extend((0..crop.width).map(|x| row[x * ch]));
            }
            let plane = Plane {
                data,
                height: crop.height,
                width: crop.width,
            };
            resample(plane, out_h, out_w, order, Filter::Bilinear)
        })
        .collect()
}

/// PIL `Image.crop(box).resize((out_w, out_h), BILINEAR)` of a grey or RGB image, bit-exact
/// (each band resampled as [`resize_bilinear_u8_ordered`] does). Returns an image with the
/// same number of channels, HWC.
pub fn resize_bilinear_image(
    img: &Image,
    crop: CropParams,
    out_h: usize,
    out_w: usize,
    order: PassOrder,
) -> Result<Image> {
    resize_image(img, crop, out_h, out_w, order, Filter::Bilinear)
}

/// PIL `Image.crop(box).resize((out_w, out_h), FILTER)` of a grey or RGB image with `filter`,
/// bit-exact ([`resize_bilinear_image`] is the bilinear one).
pub fn resize_image(
    img: &Image,
    crop: CropParams,
    out_h: usize,
    out_w: usize,
    order: PassOrder,
    filter: Filter,
) -> Result<Image> {
    check_decoded(img)?;
    crop.check(img.height, img.width)?;
    if out_h == 0 || out_w == 0 {
        return Err(Error::Config(format!("resize to {out_h}x{out_w}")));
    }
    // All channels at once on the interleaved HWC bytes: the same fixed-point sums as
    // resampling each band apart (tested against it), without splitting and merging planes.
    let ch = img.channels;
    let mut data = Vec::with_capacity(crop.height * crop.width * ch);
    for y in crop.top..crop.top + crop.height {
        let start = (y * img.width + crop.left) * ch;
        data.extend_from_slice(&img.pixels[start..start + crop.width * ch]);
    }
    let (mut h, mut w) = (crop.height, crop.width);
    let (need_h, need_v) = (out_w != w, out_h != h);
    let horizontal_first = order.horizontal_first(h, w, out_h, out_w);
    for pass in 0..2 {
        let horizontal = (pass == 0) == horizontal_first;
        if horizontal && need_h {
            data = horizontal_interleaved(&data, h, w, ch, out_w, filter);
            w = out_w;
        } else if !horizontal && need_v {
            let p = u8::vertical(&Plane { data, height: h, width: w * ch }, out_h, filter);
            data = p.data;
            h = out_h;
        }
    }
    Ok(Image { height: out_h, width: out_w, channels: ch, pixels: data })
}

/// The horizontal 8-bit pass on `ch` interleaved channels (PIL's `ImagingResampleHorizontal_8bpc`).
fn horizontal_interleaved(data: &[u8], h: usize, w: usize, ch: usize, out_w: usize, filter: Filter) -> Vec<u8> {
    let taps = Coeffs::new(filter, w, out_w).fixed();
    let mut out = Vec::with_capacity(h * out_w * ch);
    if ch == 3 {
        // the common case, unrolled over the channels
        for row in data.chunks_exact(w * 3) {
            for (x0, k) in &taps {
                let px = &row[x0 * 3..(x0 + k.len()) * 3];
                let (mut r, mut g, mut b) = (HALF, HALF, HALF);
                for (p, &kw) in px.chunks_exact(3).zip(k) {
                    r += p[0] as i32 * kw;
                    g += p[1] as i32 * kw;
                    b += p[2] as i32 * kw;
                }
                out.extend_from_slice(&[clip8(r), clip8(g), clip8(b)]);
            }
        }
        return out;
    }
    let mut ss = [HALF; 4];
    for row in data.chunks_exact(w * ch) {
        for (x0, k) in &taps {
            let ss = &mut ss[..ch];
            ss.fill(HALF);
            for (j, &kw) in k.iter().enumerate() {
                let px = &row[(x0 + j) * ch..(x0 + j + 1) * ch];
                for (s, &v) in ss.iter_mut().zip(px) {
                    *s += v as i32 * kw;
                }
            }
            out.extend(ss.iter().map(|&v| clip8(v)));
        }
    }
    out
}

/// ToTensor: 1 (grey, replicated as `convert("RGB")` does) or 3 byte planes of `n` pixels to
/// a `[3, n]` float image in `[0, 1]` (`v / 255` in f32).
fn to_tensor(planes: &[Vec<u8>], n: usize, out: &mut [f32]) -> Result<()> {
    if out.len() != 3 * n || !(planes.len() == 1 || planes.len() == 3) {
        return Err(Error::Config(format!(
            "to_tensor: {} planes into {} floats for {n} pixels",
            planes.len(),
            out.len()
        )));
    }
    for (c, o) in out.chunks_exact_mut(n.max(1)).enumerate().take(3) {
        let p = &planes[c.min(planes.len() - 1)];
        for (x, &v) in o.iter_mut().zip(p) {
            *x = v as f32 / 255.0;
        }
    }
    Ok(())
}

/// ToTensor of an interleaved HWC image (1 or 3 channels) into `[3, n]` floats in [0, 1];
/// a grey image fills all three channels.
fn to_tensor_hwc(img: &Image, out: &mut [f32]) -> Result<()> {
    let (n, ch) = (img.height * img.width, img.channels);
    if out.len() != 3 * n || !(ch == 1 || ch == 3) || img.pixels.len() != n * ch {
        return Err(Error::Config(format!("to_tensor: a {}x{}x{ch} image into {} floats", img.height, img.width, out.len())));
    }
    for (c, o) in out.chunks_exact_mut(n.max(1)).enumerate().take(3) {
        let c = c.min(ch - 1);
        for (i, x) in o.iter_mut().enumerate() {
            *x = img.pixels[i * ch + c] as f32 / 255.0;
        }
    }
    Ok(())
}

/// Normalize with the ImageNet mean/std, in place on a `[3, n]` image: `(x - mean) / std` in
/// f32 (bit-identical to the look-up table of [`normalize_grey_u8`] on `v / 255`).
fn normalize_in_place(img: &mut [f32], n: usize) {
    for (c, p) in img.chunks_exact_mut(n.max(1)).enumerate().take(3) {
        for x in p.iter_mut() {
            *x = (*x - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
        }
    }
}

/// Range of the official `GaussianBlur` radius: `radius_min = 0.1`, `radius_max = 2.0`.
pub const BLUR_RADIUS: (f64, f64) = (0.1, 2.0);

/// Configuration of [`TrainTransform`]. The default is the official I-JEPA pretraining
/// transform (`make_transforms` as the configs call it: RandomResizedCrop(224, (0.3, 1.0)),
/// no flip, colour distortion or blur), with the decoder allowed to shrink (`exact: false`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainTransformCfg {
    /// Side of the square output.
    pub size: usize,
    /// RandomResizedCrop area fraction range.
    pub scale: (f64, f64),
    /// RandomResizedCrop aspect-ratio range (width / height), sampled log-uniformly.
    pub ratio: (f64, f64),
    /// Probability of a horizontal flip (RandomHorizontalFlip's `p`; the official one is 0.5).
    pub hflip: f64,
    /// Colour jitter strength `s`: `ColorJitter(0.8s, 0.8s, 0.8s, 0.2s)`; `None`: no jitter.
    pub color_jitter: Option<f64>,
    /// Explicit `ColorJitter(brightness, contrast, saturation, hue)` (DINO's is (0.4, 0.4,
    /// 0.2, 0.1)); when set it replaces `color_jitter`'s strength.
    pub jitter: Option<(f64, f64, f64, f64)>,
    /// Probability that the colour jitter is applied (RandomApply's `p`; official 0.8).
    pub color_jitter_p: f64,
    /// Probability of converting to grayscale (RandomGrayscale's `p`; official 0.2).
    pub grayscale: f64,
    /// Probability of a Gaussian blur of radius ~ U([`BLUR_RADIUS`]) (official 0.5).
    pub blur: f64,
    /// Probability of a solarisation after the blur (PIL `ImageOps.solarize`, threshold 128:
    /// values >= 128/255 become 1 - v; DINO's second global crop: 0.2).
    pub solarize: f64,
    /// True: always decode at full resolution, so the pixels equal torchvision/PIL's; false:
    /// let the decoder shrink by the largest factor that keeps the crop >= `size`.
    pub exact: bool,
    /// The crop's resampling filter (I-JEPA's bilinear; MAE's and DINO's bicubic).
    pub filter: Filter,
}

impl Default for TrainTransformCfg {
    fn default() -> Self {
        Self {
            size: 224,
            scale: (0.3, 1.0),
            ratio: DEFAULT_RATIO,
            hflip: 0.0,
            color_jitter: None,
            jitter: None,
            color_jitter_p: 0.8,
            grayscale: 0.0,
            blur: 0.0,
            solarize: 0.0,
            exact: false,
            filter: Filter::Bilinear,
        }
    }
}

impl TrainTransformCfg {
    /// The official `get_color_distortion(s)`: jitter of strength `s` with p = 0.8, then
    /// grayscale with p = 0.2.
    pub fn with_color_distortion(self, s: f64) -> Self {
        Self {
            color_jitter: Some(s),
            color_jitter_p: 0.8,
            grayscale: 0.2,
            ..self
        }
    }
}

/// The training transform: RandomResizedCrop (parameters drawn on the full-resolution size,
/// PIL bilinear or bicubic resize, optionally from a decoder-shrunk image), then horizontal flip, colour
/// jitter (RandomApply), grayscale, Gaussian blur, ToTensor and Normalize, into `[3, S, S]`.
///
/// Random draws, in this order, each only when its operation is enabled (probability > 0 or
/// jitter configured): the crop (as [`RandomResizedCrop::get_params`]); the flip (`u < p`);
/// the jitter's RandomApply (`u < p`) and, when applied, [`ColorJitter::get_params`]; the
/// grayscale (`u < p`); the blur (`u < p`) and, when applied, its radius; the solarisation
/// (`u < p`). With only the crop
/// enabled, the output (for grey, full-resolution images) equals [`RandomResizedCrop::apply`]
/// with the same generator, bit for bit.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainTransform {
    cfg: TrainTransformCfg,
    rrc: RandomResizedCrop,
    jitter: Option<ColorJitter>,
}

fn check_prob(name: &str, p: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::Config(format!(
            "{name} probability {p} is not in [0, 1]"
        )));
    }
    Ok(())
}

impl TrainTransform {
    /// Validates the configuration.
    pub fn new(cfg: TrainTransformCfg) -> Result<Self> {
        let rrc = RandomResizedCrop::with_ratio(cfg.size, cfg.scale, cfg.ratio)?;
        check_prob("horizontal flip", cfg.hflip)?;
        check_prob("colour jitter", cfg.color_jitter_p)?;
        check_prob("grayscale", cfg.grayscale)?;
        check_prob("blur", cfg.blur)?;
        check_prob("solarize", cfg.solarize)?;
        let jitter = match (cfg.jitter, cfg.color_jitter) {
            (Some((b, c, s, h)), _) => Some(ColorJitter::new(b, c, s, h)?).filter(|j| !j.is_identity()),
            (None, Some(s)) => Some(ColorJitter::from_strength(s)?).filter(|j| !j.is_identity()),
            (None, None) => None,
        };
        Ok(Self { cfg, rrc, jitter })
    }

    /// The configuration.
    pub fn cfg(&self) -> &TrainTransformCfg {
        &self.cfg
    }

    /// Number of floats written: `3 * size * size`.
    pub fn output_len(&self) -> usize {
        3 * self.cfg.size * self.cfg.size
    }

    /// Sets which Pillow's pass order the resize reproduces (default Pillow >= 13).
    pub fn with_pass_order(mut self, order: PassOrder) -> Self {
        self.rrc.pass_order = order;
        self
    }

    /// The decoder shrink factor allowed for a full-resolution crop box: 1 when `exact`,
    /// else [`shrink_factor`] of the box and the output size.
    pub fn max_shrink(&self, crop: CropParams) -> u32 {
        if self.cfg.exact {
            1
        } else {
            shrink_factor(crop.height, crop.width, self.cfg.size)
        }
    }

    /// Transforms a full-resolution in-memory image (1 or 3 channels) into `out`
    /// (`[3, size, size]`); returns the crop box. No decoder shrinking.
    pub fn apply_image(&self, rng: &mut Rng, img: &Image, out: &mut [f32]) -> Result<CropParams> {
        check_decoded(img)?;
        check_out(out.len(), self.cfg.size, self.cfg.size)?;
        let crop = self.rrc.get_params(rng, img.height, img.width);
        self.finish(rng, img, crop, out)?;
        Ok(crop)
    }

    /// Everything after the crop box: resize, flip, colour, blur, ToTensor, Normalize.
    fn finish(&self, rng: &mut Rng, img: &Image, crop: CropParams, out: &mut [f32]) -> Result<()> {
        let s = self.cfg.size;
        let n = s * s;
        let resized = resize_image(img, crop, s, s, self.rrc.pass_order, self.cfg.filter)?;
        to_tensor_hwc(&resized, out)?;
        if self.cfg.hflip > 0.0 && rng.uniform() < self.cfg.hflip {
            augment::hflip(out, 3, s, s)?;
        }
        if let Some(j) = &self.jitter {
            if rng.uniform() < self.cfg.color_jitter_p {
                j.get_params(rng).apply(out, n)?;
            }
        }
        if self.cfg.grayscale > 0.0 && rng.uniform() < self.cfg.grayscale {
            augment::to_grayscale(out, n)?;
        }
        if self.cfg.blur > 0.0 && rng.uniform() < self.cfg.blur {
            let radius = rng.uniform_range(BLUR_RADIUS.0, BLUR_RADIUS.1);
            augment::gaussian_blur(out, 3, s, s, radius)?;
        }
        if self.cfg.solarize > 0.0 && rng.uniform() < self.cfg.solarize {
            augment::solarize(out);
        }
        normalize_in_place(out, n);
        Ok(())
    }
}

/// Adds the sample's description to a data error.
pub(crate) fn in_sample(ds: &dyn Dataset, i: usize, e: Error) -> Error {
    match e {
        Error::Data(m) | Error::Config(m) => Error::Data(format!("{}: {m}", ds.describe(i))),
        e => e,
    }
}

impl SampleTransform for TrainTransform {
    fn size(&self) -> usize {
        self.cfg.size
    }

    /// Crop box from `ds.size(i)`, decode with [`Self::max_shrink`], map the box into the
    /// decoded image ([`map_crop`]), then as [`Self::apply_image`].
    fn apply(&self, rng: &mut Rng, ds: &dyn Dataset, i: usize, out: &mut [f32]) -> Result<()> {
        check_out(out.len(), self.cfg.size, self.cfg.size)?;
        let (h, w) = ds.size(i)?;
        if h == 0 || w == 0 {
            return Err(Error::Data(format!(
                "{}: empty {h}x{w} image",
                ds.describe(i)
            )));
        }
        let crop = self.rrc.get_params(rng, h, w);
        let max_shrink = self.max_shrink(crop);
        let (img, f) = ds.load(i, max_shrink)?;
        let mut run = || {
            check_decoded(&img)?;
            let bx = map_crop(crop, (h, w), (img.height, img.width), f, max_shrink)?;
            self.finish(rng, &img, bx, out)
        };
        run().map_err(|e| in_sample(ds, i, e))
    }
}

/// Evaluation transform: resize the shorter side to `resize` (PIL bilinear; torchvision
/// `_compute_resized_output_size`), centre-crop `crop x crop` (torchvision's rounding
/// `int(round((size - crop) / 2))`), ToTensor + Normalize. Grey images are replicated to 3
/// channels. `resize == crop` on a square image is a plain resize to `crop x crop`; the
/// ImageNet convention is `resize = crop * 256/224`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvalTransform {
    /// Target length of the shorter side.
    pub resize: usize,
    /// Side of the square centre crop (<= `resize`).
    pub crop: usize,
    /// Which Pillow's pass order the resize reproduces.
    pub pass_order: PassOrder,
    /// True (default): decode at full resolution; false: let the decoder shrink while the
    /// shorter side stays >= `resize`.
    pub exact: bool,
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
            exact: true,
        })
    }

    /// Resize to `size x size` (for square inputs).
    pub fn resize_only(size: usize) -> Result<Self> {
        Self::new(size, size)
    }

    /// Number of floats written: `3 * crop * crop`.
    pub fn output_len(&self) -> usize {
        3 * self.crop * self.crop
    }

    /// The resized `(height, width)` of a `height x width` image (torchvision
    /// `_compute_resized_output_size` for an int size: the longer side is truncated).
    pub fn resized_size(&self, height: usize, width: usize) -> (usize, usize) {
        let (short, long) = if width <= height {
            (width, height)
        } else {
            (height, width)
        };
        let new_long = (self.resize as f64 * long as f64 / short.max(1) as f64) as usize;
        if width <= height {
            (new_long, self.resize)
        } else {
            (self.resize, new_long)
        }
    }

    /// The decoder shrink factor allowed for a full-resolution `height x width` image.
    pub fn max_shrink(&self, height: usize, width: usize) -> u32 {
        if self.exact {
            1
        } else {
            shrink_factor(height.min(width), height.min(width), self.resize)
        }
    }

    /// Transforms a full-resolution grey or RGB image into `out` (`[3, crop, crop]`).
    pub fn apply_image(&self, img: &Image, out: &mut [f32]) -> Result<()> {
        check_decoded(img)?;
        let full = CropParams::full(img.height, img.width);
        self.resize_crop(img, full, self.resized_size(img.height, img.width), out)
    }

    /// Resizes the `bx` box of `img` to `(new_h, new_w)`, centre-crops, normalises.
    fn resize_crop(
        &self,
        img: &Image,
        bx: CropParams,
        (new_h, new_w): (usize, usize),
        out: &mut [f32],
    ) -> Result<()> {
        check_out(out.len(), self.crop, self.crop)?;
        if new_h < self.crop || new_w < self.crop {
            return Err(Error::Data(format!(
                "eval transform: {}x{} resized to {new_h}x{new_w}, smaller than the crop {}",
                img.height, img.width, self.crop
            )));
        }
        let planes = resize_planes(img, bx, new_h, new_w, self.pass_order)?;
        let top = ((new_h - self.crop) as f64 / 2.0).round_ties_even() as usize;
        let left = ((new_w - self.crop) as f64 / 2.0).round_ties_even() as usize;
        let k = self.crop;
        let cropped: Vec<Vec<u8>> = planes
            .iter()
            .map(|p| {
                (top..top + k)
                    .flat_map(|y| p[y * new_w + left..y * new_w + left + k].iter().copied())
                    .collect()
            })
            .collect();
        to_tensor(&cropped, k * k, out)?;
        normalize_in_place(out, k * k);
        Ok(())
    }
}

impl SampleTransform for EvalTransform {
    fn size(&self) -> usize {
        self.crop
    }

    /// Decodes sample `i` (shrunk only when `exact == false`), resizes it as the
    /// full-resolution image would be resized, centre-crops, normalises. Draws nothing.
    fn apply(&self, _rng: &mut Rng, ds: &dyn Dataset, i: usize, out: &mut [f32]) -> Result<()> {
        // decoded at full size (`exact`), the image gives its own size: its header was read
        // first, every evaluation and monitor image opened and read twice
        let (h, w, decoded) = if self.exact {
            let (img, f) = ds.load(i, 1)?;
            (img.height, img.width, Some((img, f)))
        } else {
            let (h, w) = ds.size(i)?;
            (h, w, None)
        };
        if h == 0 || w == 0 {
            return Err(Error::Data(format!(
                "{}: empty {h}x{w} image",
                ds.describe(i)
            )));
        }
        let max_shrink = self.max_shrink(h, w);
        let (img, f) = match decoded {
            Some(d) => d,
            None => ds.load(i, max_shrink)?,
        };
        let mut run = || {
            check_decoded(&img)?;
            let bx = map_crop(
                CropParams::full(h, w),
                (h, w),
                (img.height, img.width),
                f,
                max_shrink,
            )?;
            self.resize_crop(&img, bx, self.resized_size(h, w), out)
        };
        run().map_err(|e| in_sample(ds, i, e))
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

/// PIL's resampling filter (torchvision's `interpolation`): the official I-JEPA transforms
/// resize bilinearly (RandomResizedCrop's default), MAE's and DINO's bicubically
/// (`interpolation=3`, `Image.BICUBIC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Filter {
    /// PIL BILINEAR: the triangle filter, support 1.
    #[default]
    Bilinear,
    /// PIL BICUBIC: the cubic convolution with a = -0.5, support 2 (its weights can be
    /// negative: the 8-bit path saturates at 0 and 255).
    Bicubic,
}

impl Filter {
    /// Half-width of the filter at scale 1 (PIL's `filter->support`).
    fn support(self) -> f64 {
        match self {
            Filter::Bilinear => 1.0,
            Filter::Bicubic => 2.0,
        }
    }

    /// PIL's `bilinear_filter` / `bicubic_filter`.
    fn weight(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Filter::Bilinear => {
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
            Filter::Bicubic => {
                const A: f64 = -0.5;
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
        }
    }
}

/// Resampling weights of one axis (PIL `precompute_coeffs`).
struct Coeffs {
    /// Per output pixel: first input pixel and weights of the consecutive input pixels.
    taps: Vec<(usize, Vec<f64>)>,
}

impl Coeffs {
    /// Weights of `filter` mapping `in_size` pixels onto `out_size` (both > 0).
    fn new(filter: Filter, in_size: usize, out_size: usize) -> Self {
        let scale = in_size as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = filter.support() * filterscale;
        let ss = 1.0 / filterscale;
        let taps = (0..out_size)
            .map(|xx| {
                let center = (xx as f64 + 0.5) * scale;
                // C's (int) cast truncates toward zero, as `as i64` does.
                let xmin = ((center - support + 0.5) as i64).max(0) as usize;
                let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
                let mut k: Vec<f64> = (xmin..xmax)
                    .map(|x| filter.weight((x as f64 - center + 0.5) * ss))
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
    fn horizontal(p: &Plane<Self>, out_w: usize, f: Filter) -> Plane<Self>;
    fn vertical(p: &Plane<Self>, out_h: usize, f: Filter) -> Plane<Self>;
}

impl Pass for u8 {
    fn horizontal(p: &Plane<u8>, out_w: usize, f: Filter) -> Plane<u8> {
        let taps = Coeffs::new(f, p.width, out_w).fixed();
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

    fn vertical(p: &Plane<u8>, out_h: usize, f: Filter) -> Plane<u8> {
        let taps = Coeffs::new(f, p.height, out_h).fixed();
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
    fn horizontal(p: &Plane<f32>, out_w: usize, f: Filter) -> Plane<f32> {
        let c = Coeffs::new(f, p.width, out_w);
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

    fn vertical(p: &Plane<f32>, out_h: usize, f: Filter) -> Plane<f32> {
        let c = Coeffs::new(f, p.height, out_h);
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
fn resample<T: Pass>(p: Plane<T>, out_h: usize, out_w: usize, order: PassOrder, f: Filter) -> Result<Vec<T>> {
    if out_h == 0 || out_w == 0 {
        return Err(Error::Config(format!("resize to {out_h}x{out_w}")));
    }
    let (need_h, need_v) = (out_w != p.width, out_h != p.height);
    let p = if order.horizontal_first(p.height, p.width, out_h, out_w) {
        let p = if need_h { T::horizontal(&p, out_w, f) } else { p };
        if need_v {
            T::vertical(&p, out_h, f)
        } else {
            p
        }
    } else {
        let p = if need_v { T::vertical(&p, out_h, f) } else { p };
        if need_h {
            T::horizontal(&p, out_w, f)
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
    resize_u8(img, height, width, crop, out_h, out_w, order, Filter::Bilinear)
}

/// PIL `Image.resize((out_w, out_h), FILTER)` of the `crop` box of a grey 8-bit image with
/// `filter` and pass `order`, bit-exact with PIL's fixed-point path ([`resize_bilinear_u8`]
/// is the bilinear one).
#[allow(clippy::too_many_arguments)]
pub fn resize_u8(
    img: &[u8],
    height: usize,
    width: usize,
    crop: CropParams,
    out_h: usize,
    out_w: usize,
    order: PassOrder,
    filter: Filter,
) -> Result<Vec<u8>> {
    resample(Plane::crop(img, height, width, crop)?, out_h, out_w, order, filter)
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
    resample(Plane::crop(img, height, width, crop)?, out_h, out_w, order, Filter::Bilinear)
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

    /// MAE's and DINO's resize (`Image.BICUBIC`), bit-exact with Pillow 13.0.0's 8-bit path:
    /// upscaling (weights below 0 and above 1: saturation at 0 and 255), a crop and a
    /// downscale (support 2 x the scale), the vertical-first pass order, and an RGB image.
    ///
    /// ```python
    /// a = np.array([0, 50, 200, 255, 10, 100, 30, 90, 255, 0, 128, 64], np.uint8).reshape(3, 4)
    /// Image.fromarray(a).resize((7, 5), Image.BICUBIC)
    /// b = (np.arange(63, dtype=np.uint32).reshape(7, 9) * 4 % 251).astype(np.uint8)
    /// Image.fromarray(b).crop((1, 2, 8, 7)).resize((3, 2), Image.BICUBIC)
    /// c = (np.arange(63, dtype=np.uint32).reshape(7, 9) * 37 % 251).astype(np.uint8)
    /// Image.fromarray(c).resize((8, 2), Image.BICUBIC)
    /// r = (np.arange(5 * 6 * 3, dtype=np.uint32).reshape(5, 6, 3) * 53 % 256).astype(np.uint8)
    /// Image.fromarray(r).crop((1, 0, 6, 4)).resize((7, 6), Image.BICUBIC)
    /// ```
    #[test]
    fn bicubic_resize_matches_pil() {
        let order = PassOrder::Pillow13;
        let a: [u8; 12] = [0, 50, 200, 255, 10, 100, 30, 90, 255, 0, 128, 64];
        let up = resize_u8(&a, 3, 4, CropParams::full(3, 4), 5, 7, order, Filter::Bicubic).unwrap();
        assert_eq!(up, [0, 7, 39, 129, 220, 255, 255, 0, 14, 66, 105, 141, 182, 200, 3, 40, 98, 67, 31, 69, 95, 167, 128, 42, 55, 87, 73, 64, 255, 183, 1, 51, 136, 89, 56]);
        // not the bilinear result
        assert_ne!(up, PIL_UP_L);
        let b: Vec<u8> = (0..63u32).map(|i| (i * 4 % 251) as u8).collect();
        let crop = CropParams { top: 2, left: 1, height: 5, width: 7 };
        assert_eq!(resize_u8(&b, 7, 9, crop, 2, 3, order, Filter::Bicubic).unwrap(), [110, 119, 128, 192, 201, 210]);
        let c: Vec<u8> = (0..63u32).map(|i| (i * 37 % 251) as u8).collect();
        assert_eq!(resize_u8(&c, 7, 9, CropParams::full(7, 9), 2, 8, order, Filter::Bicubic).unwrap(), [108, 117, 137, 133, 124, 127, 87, 111, 168, 119, 132, 111, 116, 127, 142, 121]);
        let r = Image { height: 5, width: 6, channels: 3, pixels: (0..90u32).map(|i| (i * 53 % 256) as u8).collect() };
        let crop = CropParams { top: 0, left: 1, height: 4, width: 5 };
        let got = resize_image(&r, crop, 6, 7, order, Filter::Bicubic).unwrap();
        assert_eq!(got.pixels, [171, 223, 0, 88, 170, 101, 87, 80, 157, 226, 6, 76, 165, 143, 201, 72, 151, 203, 8, 79, 132, 129, 190, 99, 140, 118, 129, 168, 71, 110, 192, 110, 27, 105, 148, 164, 90, 102, 164, 121, 29, 82, 64, 134, 205, 180, 84, 138, 239, 97, 56, 139, 207, 20, 75, 129, 121, 132, 57, 128, 224, 25, 78, 6, 76, 147, 121, 159, 66, 177, 209, 53, 93, 149, 168, 192, 49, 113, 202, 90, 154, 154, 185, 234, 112, 25, 82, 133, 135, 103, 110, 189, 138, 40, 93, 161, 177, 116, 65, 176, 151, 118, 95, 172, 231, 224, 0, 40, 160, 92, 156, 67, 139, 214, 6, 59, 112, 131, 198, 24, 133, 197, 79, 62, 114, 184]);
    }

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
        e.apply_image(&grey(28, 28, img.clone()), &mut out).unwrap();
        let big = resize_bilinear_u8(&img, 28, 28, CropParams::full(28, 28), 36, 36).unwrap();
        let mut want = vec![0f32; 3 * 32 * 32];
        let crop: Vec<u8> = (0..32)
            .flat_map(|y| big[(y + 2) * 36 + 2..(y + 2) * 36 + 34].to_vec())
            .collect();
        normalize_grey_u8(&crop, &mut want);
        assert_eq!(out, want);
        // non-square: shorter side (height 10) -> 20, width 30 -> 60
        let e = EvalTransform::resize_only(20).unwrap();
        assert_eq!(e.resized_size(10, 30), (20, 60));
        let mut out = vec![0f32; e.output_len()];
        e.apply_image(&grey(10, 30, img[..300].to_vec()), &mut out)
            .unwrap();
        assert!(EvalTransform::new(20, 21).is_err());
    }

    fn grey(height: usize, width: usize, pixels: Vec<u8>) -> Image {
        Image {
            height,
            width,
            channels: 1,
            pixels,
        }
    }

    /// A pseudo-random `h x w x c` image.
    fn noise(h: usize, w: usize, c: usize, seed: u64) -> Image {
        let mut rng = Rng::from_key(&[seed]);
        Image {
            height: h,
            width: w,
            channels: c,
            pixels: (0..h * w * c).map(|_| rng.below(256) as u8).collect(),
        }
    }

    /// A smooth RGB image (for comparing shrunk and full-resolution decodes).
    fn smooth(h: usize, w: usize) -> Image {
        let mut pixels = Vec::with_capacity(h * w * 3);
        for y in 0..h {
            for x in 0..w {
                let (fy, fx) = (y as f64 / h as f64, x as f64 / w as f64);
                pixels.push((255.0 * fx) as u8);
                pixels.push((255.0 * fy) as u8);
                pixels.push((127.5 + 127.0 * (6.0 * fx + 4.0 * fy).sin()) as u8);
            }
        }
        Image {
            height: h,
            width: w,
            channels: 3,
            pixels,
        }
    }

    /// How [`TestDs`] misbehaves.
    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Fault {
        None,
        ShortPixels,
        BadFactor,
        EmptySize,
    }

    /// One image; `load` shrinks by exactly `max_shrink` (box average, ceil size) and records
    /// the factor it was allowed.
    struct TestDs {
        img: Image,
        asked: std::sync::Mutex<Vec<u32>>,
        fault: Fault,
    }

    impl TestDs {
        fn new(img: Image) -> Self {
            Self {
                img,
                asked: Default::default(),
                fault: Fault::None,
            }
        }
        fn asked(&self) -> Vec<u32> {
            self.asked.lock().unwrap().clone()
        }
    }

    impl Dataset for TestDs {
        fn len(&self) -> usize {
            1
        }
        fn label(&self, _: usize) -> i64 {
            0
        }
        fn num_classes(&self) -> usize {
            1
        }
        fn describe(&self, i: usize) -> String {
            format!("test sample {i}")
        }
        fn size(&self, _: usize) -> Result<(usize, usize)> {
            if self.fault == Fault::EmptySize {
                return Ok((0, 7));
            }
            Ok((self.img.height, self.img.width))
        }
        fn load(&self, _: usize, max_shrink: u32) -> Result<(Image, u32)> {
            self.asked.lock().unwrap().push(max_shrink);
            let f = max_shrink as usize;
            let im = &self.img;
            let (h, w, c) = (im.height.div_ceil(f), im.width.div_ceil(f), im.channels);
            let mut pixels = Vec::with_capacity(h * w * c);
            for y in 0..h {
                for x in 0..w {
                    for ch in 0..c {
                        let (mut s, mut k) = (0usize, 0usize);
                        for yy in y * f..((y + 1) * f).min(im.height) {
                            for xx in x * f..((x + 1) * f).min(im.width) {
                                s += im.pixels[(yy * im.width + xx) * c + ch] as usize;
                                k += 1;
                            }
                        }
                        pixels.push(((s + k / 2) / k) as u8);
                    }
                }
            }
            if self.fault == Fault::ShortPixels {
                pixels.pop();
            }
            let factor = if self.fault == Fault::BadFactor {
                3
            } else {
                max_shrink
            };
            Ok((
                Image {
                    height: h,
                    width: w,
                    channels: c,
                    pixels,
                },
                factor,
            ))
        }
    }

    fn channel(img: &Image, c: usize) -> Vec<u8> {
        img.pixels
            .iter()
            .skip(c)
            .step_by(img.channels)
            .copied()
            .collect()
    }

    #[test]
    fn rgb_resize_is_the_per_channel_grey_resize() {
        let img = noise(23, 31, 3, 1);
        let crop = CropParams {
            top: 2,
            left: 5,
            height: 19,
            width: 24,
        };
        for order in [PassOrder::Pillow13, PassOrder::HorizontalFirst] {
            for (oh, ow) in [(9, 40), (50, 17), (7, 3), (19, 24)] {
                let out = resize_bilinear_image(&img, crop, oh, ow, order).unwrap();
                assert_eq!((out.height, out.width, out.channels), (oh, ow, 3));
                for c in 0..3 {
                    let want =
                        resize_bilinear_u8_ordered(&channel(&img, c), 23, 31, crop, oh, ow, order)
                            .unwrap();
                    assert_eq!(channel(&out, c), want, "{order:?} {oh}x{ow} channel {c}");
                }
            }
        }
        let bad = Image {
            channels: 2,
            ..img.clone()
        };
        assert!(resize_bilinear_image(&bad, crop, 4, 4, PassOrder::Pillow13).is_err());
        let outside = CropParams { top: 10, ..crop };
        assert!(resize_bilinear_image(&img, outside, 4, 4, PassOrder::Pillow13).is_err());
    }

    fn full_aug(size: usize) -> TrainTransformCfg {
        TrainTransformCfg {
            size,
            hflip: 0.5,
            blur: 0.5,
            exact: true,
            ..TrainTransformCfg::default()
        }
        .with_color_distortion(1.0)
    }

    #[test]
    fn grey_equals_grey_replicated_to_rgb() {
        let g = noise(30, 26, 1, 2);
        let rgb = Image {
            channels: 3,
            pixels: g.pixels.iter().flat_map(|&v| [v, v, v]).collect(),
            ..g.clone()
        };
        for cfg in [
            TrainTransformCfg {
                size: 20,
                ..Default::default()
            },
            full_aug(20),
        ] {
            let t = TrainTransform::new(cfg).unwrap();
            for k in 0..20 {
                let (mut a, mut b) = (vec![0f32; t.output_len()], vec![0f32; t.output_len()]);
                let ca = t.apply_image(&mut Rng::from_key(&[k]), &g, &mut a).unwrap();
                let cb = t
                    .apply_image(&mut Rng::from_key(&[k]), &rgb, &mut b)
                    .unwrap();
                assert_eq!(ca, cb);
                assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn default_train_transform_is_random_resized_crop() {
        let img: Vec<u8> = (0..28 * 28).map(|i| (i * 37 % 256) as u8).collect();
        let rrc = RandomResizedCrop::new(32, (0.3, 1.0)).unwrap();
        let t = TrainTransform::new(TrainTransformCfg {
            size: 32,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(SampleTransform::size(&t), 32);
        let ds = TestDs::new(grey(28, 28, img.clone()));
        for k in 0..50 {
            let mut want = vec![0f32; rrc.output_len()];
            let c = rrc
                .apply(&mut Rng::from_key(&[k]), &img, 28, 28, &mut want)
                .unwrap();
            let mut got = vec![0f32; t.output_len()];
            assert_eq!(
                t.apply_image(
                    &mut Rng::from_key(&[k]),
                    &grey(28, 28, img.clone()),
                    &mut got
                )
                .unwrap(),
                c
            );
            assert_eq!(got, want);
            let mut got = vec![0f32; t.output_len()];
            t.apply(&mut Rng::from_key(&[k]), &ds, 0, &mut got).unwrap();
            assert_eq!(got, want);
        }
        // a 28 px image never holds a crop of 2 x 32: always full resolution
        assert!(ds.asked().iter().all(|&f| f == 1));
    }

    /// `filter` Bicubic resizes the crop bicubically (MAE's and DINO's crops): the output is
    /// the bicubic resize of the same crop box, normalised, and not the bilinear one.
    #[test]
    fn a_bicubic_train_transform_resizes_its_crop_bicubically() {
        let img: Vec<u8> = (0..28 * 28).map(|i| (i * 37 % 256) as u8).collect();
        let t = TrainTransform::new(TrainTransformCfg { size: 32, filter: Filter::Bicubic, ..Default::default() }).unwrap();
        let bilinear = TrainTransform::new(TrainTransformCfg { size: 32, ..Default::default() }).unwrap();
        for k in 0..10 {
            let mut got = vec![0f32; t.output_len()];
            let c = t.apply_image(&mut Rng::from_key(&[k]), &grey(28, 28, img.clone()), &mut got).unwrap();
            let resized = resize_u8(&img, 28, 28, c, 32, 32, PassOrder::default(), Filter::Bicubic).unwrap();
            let mut want = vec![0f32; t.output_len()];
            normalize_grey_u8(&resized, &mut want);
            assert_eq!(got, want);
            let mut other = vec![0f32; t.output_len()];
            bilinear.apply_image(&mut Rng::from_key(&[k]), &grey(28, 28, img.clone()), &mut other).unwrap();
            assert_ne!(got, other);
        }
    }

    #[test]
    fn flip_mirrors_the_output() {
        let img = noise(40, 40, 3, 3);
        let s = 16;
        let plain = TrainTransform::new(TrainTransformCfg {
            size: s,
            ..Default::default()
        })
        .unwrap();
        let flip = TrainTransform::new(TrainTransformCfg {
            size: s,
            hflip: 1.0,
            ..Default::default()
        })
        .unwrap();
        for k in 0..10 {
            let (mut a, mut b) = (vec![0f32; 3 * s * s], vec![0f32; 3 * s * s]);
            plain
                .apply_image(&mut Rng::from_key(&[k]), &img, &mut a)
                .unwrap();
            flip.apply_image(&mut Rng::from_key(&[k]), &img, &mut b)
                .unwrap();
            for row in 0..3 * s {
                let (ra, rb) = (&a[row * s..(row + 1) * s], &b[row * s..(row + 1) * s]);
                assert!(ra.iter().eq(rb.iter().rev()));
            }
        }
    }

    /// The draw order: crop, (flip), jitter apply, jitter params, (grayscale), (blur).
    #[test]
    fn jitter_is_drawn_and_applied_in_order() {
        let img = noise(50, 60, 3, 4);
        let s = 24;
        let t = TrainTransform::new(TrainTransformCfg {
            size: s,
            color_jitter: Some(1.0),
            color_jitter_p: 1.0,
            exact: true,
            ..Default::default()
        })
        .unwrap();
        for k in 0..10 {
            let mut got = vec![0f32; 3 * s * s];
            t.apply_image(&mut Rng::from_key(&[k]), &img, &mut got)
                .unwrap();

            let mut rng = Rng::from_key(&[k]);
            let crop = RandomResizedCrop::new(s, (0.3, 1.0))
                .unwrap()
                .get_params(&mut rng, 50, 60);
            assert!(rng.uniform() < 1.0);
            let p = ColorJitter::from_strength(1.0)
                .unwrap()
                .get_params(&mut rng);
            let r = resize_bilinear_image(&img, crop, s, s, PassOrder::Pillow13).unwrap();
            let mut want: Vec<f32> = (0..3)
                .flat_map(|c| channel(&r, c))
                .map(|v| v as f32 / 255.0)
                .collect();
            p.apply(&mut want, s * s).unwrap();
            normalize_in_place(&mut want, s * s);
            assert_eq!(got, want);
        }
    }

    #[test]
    fn shrink_factor_logic() {
        assert_eq!(shrink_factor(400, 400, 32), 8);
        assert_eq!(shrink_factor(255, 400, 32), 4);
        assert_eq!(shrink_factor(400, 100, 32), 2);
        assert_eq!(shrink_factor(64, 64, 32), 2);
        assert_eq!(shrink_factor(63, 64, 32), 1);
        assert_eq!(shrink_factor(10, 10, 32), 1);
        assert_eq!(shrink_factor(usize::MAX, usize::MAX, usize::MAX), 1);

        // 800x800, scale 1/4 and ratio 1: always a 400x400 crop.
        let img = smooth(800, 800);
        for (size, exact, want) in [
            (32, false, 8),
            (64, false, 4),
            (150, false, 2),
            (32, true, 1),
        ] {
            let t = TrainTransform::new(TrainTransformCfg {
                size,
                scale: (0.25, 0.25),
                ratio: (1.0, 1.0),
                exact,
                ..Default::default()
            })
            .unwrap();
            let ds = TestDs::new(img.clone());
            let mut got = vec![0f32; t.output_len()];
            t.apply(&mut Rng::from_key(&[7]), &ds, 0, &mut got).unwrap();
            assert_eq!(ds.asked(), vec![want], "size {size} exact {exact}");
            assert_eq!(
                t.max_shrink(CropParams {
                    top: 0,
                    left: 0,
                    height: 400,
                    width: 400
                }),
                want
            );
            // close to the full-resolution result on a smooth image
            let mut full = vec![0f32; t.output_len()];
            let c = t
                .apply_image(&mut Rng::from_key(&[7]), &img, &mut full)
                .unwrap();
            assert_eq!((c.height, c.width), (400, 400));
            let mad = got
                .iter()
                .zip(&full)
                .map(|(a, b)| (a - b).abs())
                .sum::<f32>()
                / got.len() as f32;
            if exact {
                assert_eq!(got, full);
            } else {
                assert!(mad < 0.05, "size {size}: mean abs diff {mad}");
            }
        }
    }

    #[test]
    fn crop_mapping_into_shrunk_images() {
        let crop = CropParams {
            top: 10,
            left: 3,
            height: 401,
            width: 33,
        };
        // edges: 10/4 = 2.5 -> 3, 411/4 = 102.75 -> 103; 3/4 -> 1, 36/4 = 9
        assert_eq!(
            map_crop(crop, (800, 600), (200, 150), 4, 8).unwrap(),
            CropParams {
                top: 3,
                left: 1,
                height: 100,
                width: 8
            }
        );
        assert_eq!(map_crop(crop, (800, 600), (800, 600), 1, 8).unwrap(), crop);
        // a 4 px box at the bottom of an 801 px image, shrunk by 8 (floor size 100)
        let edge = CropParams {
            top: 797,
            left: 0,
            height: 4,
            width: 4,
        };
        for dh in [100, 101] {
            let m = map_crop(edge, (801, 8), (dh, 1), 8, 8).unwrap();
            assert!(
                m.height >= 1 && m.top + m.height <= dh && m.width == 1,
                "{m:?}"
            );
        }
        assert!(map_crop(crop, (800, 600), (200, 150), 3, 8).is_err());
        assert!(map_crop(crop, (800, 600), (200, 150), 4, 2).is_err());
        assert!(map_crop(crop, (800, 600), (210, 150), 4, 8).is_err());
        assert!(map_crop(crop, (800, 600), (799, 600), 1, 1).is_err());
        assert!(map_crop(crop, (100, 600), (25, 150), 4, 4).is_err()); // box outside
    }

    #[test]
    fn determinism_and_faults() {
        let t = TrainTransform::new(full_aug(32)).unwrap();
        let ds = TestDs::new(smooth(300, 200));
        let run = |k: u64| {
            let mut out = vec![0f32; t.output_len()];
            t.apply(&mut Rng::derive(1, Stream::Crop, &[0, k]), &ds, 0, &mut out)
                .unwrap();
            out
        };
        let outs: Vec<Vec<f32>> = (0..30).map(run).collect();
        for (k, o) in outs.iter().enumerate() {
            assert_eq!(*o, run(k as u64));
            assert!(o.iter().all(|x| x.is_finite()));
        }
        assert!(outs.windows(2).all(|w| w[0] != w[1]));

        let mut out = vec![0f32; t.output_len()];
        let mut rng = Rng::from_key(&[0]);
        for fault in [Fault::ShortPixels, Fault::BadFactor, Fault::EmptySize] {
            let ds = TestDs {
                fault,
                ..TestDs::new(smooth(300, 200))
            };
            let e = t.apply(&mut rng, &ds, 0, &mut out).unwrap_err();
            assert!(e.to_string().contains("test sample 0"), "{e}");
            let e = EvalTransform::new(40, 32).unwrap();
            let shrinking = EvalTransform { exact: false, ..EvalTransform::new(40, 32).unwrap() };
            assert!(SampleTransform::apply(&shrinking, &mut rng, &ds, 0, &mut out).is_err());
            // (decoded at full size, the image's own size is read, not the header's)
            let exact = SampleTransform::apply(&e, &mut rng, &ds, 0, &mut out);
            assert_eq!(exact.is_ok(), fault == Fault::EmptySize, "{fault:?}: {exact:?}");
        }
        assert!(t.apply(&mut rng, &ds, 0, &mut out[..5]).is_err());
        for bad in [
            TrainTransformCfg {
                hflip: 1.5,
                ..Default::default()
            },
            TrainTransformCfg {
                blur: f64::NAN,
                ..Default::default()
            },
            TrainTransformCfg {
                color_jitter: Some(3.0), // hue 0.6 > 0.5
                ..Default::default()
            },
            TrainTransformCfg {
                size: 0,
                ..Default::default()
            },
        ] {
            assert!(TrainTransform::new(bad).is_err());
        }
        // jitter strength 0 is no jitter (and draws nothing)
        let t0 = TrainTransform::new(TrainTransformCfg {
            size: 16,
            color_jitter: Some(0.0),
            ..Default::default()
        })
        .unwrap();
        let t1 = TrainTransform::new(TrainTransformCfg {
            size: 16,
            ..Default::default()
        })
        .unwrap();
        let img = noise(20, 20, 3, 5);
        let (mut a, mut b) = (vec![0f32; 768], vec![0f32; 768]);
        let mut r0 = Rng::from_key(&[3]);
        let mut r1 = Rng::from_key(&[3]);
        t0.apply_image(&mut r0, &img, &mut a).unwrap();
        t1.apply_image(&mut r1, &img, &mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(r0.next_u64(), r1.next_u64());
    }

    #[test]
    fn eval_transform_on_rgb() {
        let img = noise(30, 44, 3, 6);
        let e = EvalTransform::new(36, 32).unwrap();
        assert_eq!(e.resized_size(30, 44), (36, 52));
        let ds = TestDs::new(img.clone());
        let mut out = vec![0f32; e.output_len()];
        SampleTransform::apply(&e, &mut Rng::from_key(&[0]), &ds, 0, &mut out).unwrap();
        assert_eq!(ds.asked(), vec![1]);
        let mut direct = vec![0f32; e.output_len()];
        e.apply_image(&img, &mut direct).unwrap();
        assert_eq!(out, direct);
        // per channel: resize to 36x52, crop at top = round(2) = 2, left = round(10) = 10
        let n = 32 * 32;
        for c in 0..3 {
            let big =
                resize_bilinear_u8(&channel(&img, c), 30, 44, CropParams::full(30, 44), 36, 52)
                    .unwrap();
            let crop: Vec<u8> = (0..32)
                .flat_map(|y| big[(y + 2) * 52 + 10..(y + 2) * 52 + 42].to_vec())
                .collect();
            let mut want = vec![0f32; 3 * n];
            normalize_grey_u8(&crop, &mut want);
            assert_eq!(out[c * n..(c + 1) * n], want[c * n..(c + 1) * n]);
        }
        // torchvision's centre-crop rounding: (37 - 32) / 2 = 2.5 -> 2 (half to even)
        let e = EvalTransform::new(37, 32).unwrap();
        let mut out = vec![0f32; e.output_len()];
        e.apply_image(&img, &mut out).unwrap();
        let big = resize_bilinear_u8(&channel(&img, 0), 30, 44, CropParams::full(30, 44), 37, 54)
            .unwrap();
        let crop: Vec<u8> = (0..32)
            .flat_map(|y| big[(y + 2) * 54 + 11..(y + 2) * 54 + 43].to_vec())
            .collect();
        let mut want = vec![0f32; 3 * n];
        normalize_grey_u8(&crop, &mut want);
        assert_eq!(out[..n], want[..n]);
        // shrinking allowed: 800x600 with the shorter side to 64 -> 600 / 8 = 75 >= 64
        let e = EvalTransform {
            exact: false,
            ..EvalTransform::new(64, 64).unwrap()
        };
        let big = smooth(600, 800);
        let ds = TestDs::new(big.clone());
        let mut out = vec![0f32; e.output_len()];
        SampleTransform::apply(&e, &mut Rng::from_key(&[0]), &ds, 0, &mut out).unwrap();
        assert_eq!(ds.asked(), vec![8]);
        let mut full = vec![0f32; e.output_len()];
        e.apply_image(&big, &mut full).unwrap();
        let mad = out
            .iter()
            .zip(&full)
            .map(|(a, b)| (a - b).abs())
            .sum::<f32>()
            / out.len() as f32;
        assert!(mad < 0.05, "{mad}");
    }
}
