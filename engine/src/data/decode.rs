//! Image file decoding to 3-channel RGB bytes: JPEG (through libjpeg-turbo, with DCT-domain
//! scaling) and PNG (through the `png` crate), the format told by its magic bytes, never by
//! the file name (ImageNet holds a PNG named `.JPEG` and CMYK JPEGs).
//!
//! Plays the role of PIL's `Image.open(path).convert('RGB')` in torchvision's `ImageFolder`
//! loader (the official `src/datasets/imagenet1k.py`), and of `Image.draft` when a reduced
//! scale is enough:
//!
//! - JPEG: baseline and progressive, greyscale (replicated to RGB), YCbCr, RGB, and CMYK/YCCK
//!   (stored inverted, as Photoshop writes it with its Adobe APP14 segment; PIL reads every CMYK
//!   JPEG so, with the segment or without, and so do we; then `R = (255 - K) - C * (255 - K) /
//!   255` as PIL's CMYK-to-RGB conversion). Decoded with
//!   libjpeg-turbo's default accurate integer IDCT and fancy upsampling, as PIL does, so pixels
//!   match PIL's. A scale of 1/2, 1/4 or 1/8 is applied inside the IDCT (cheaper than a full
//!   decode) when the caller allows it.
//! - PNG: grey, grey + alpha, RGB, RGBA, palette, 1..16-bit; 16-bit samples keep their high
//!   byte; alpha (and `tRNS` transparency) is dropped, like `convert('RGB')`. Never scaled.
//!
//! The JPEG decoder was chosen by measurement (500x375 q90 4:2:0 JPEGs of 52 and 86 KB, one
//! thread, release, ms per image at scales 1, 1/2, 1/4, 1/8): libjpeg-turbo 2.1 0.49-0.82,
//! 0.37-0.64, 0.35-0.61, 0.31-0.54; `jpeg-decoder` 0.3 0.88-1.18, 0.70-0.99, 0.54-0.83,
//! 0.52-0.79; `zune-jpeg` 0.5 (no scaled decoding) 0.81-0.97 at full scale.
//!
//! A truncated or corrupt file is an [`Error::Data`] naming the file and the cause. libjpeg
//! warnings about recoverable damage (extraneous bytes before a marker, in the header too) are
//! tolerated like PIL does (and a scan cut short by the next marker, "premature end of data
//! segment"); a premature end of the file (a truncated file) is an error.

use std::cell::RefCell;
use std::ffi::{c_int, c_ulong, CStr};

use turbojpeg_sys as tj;

use super::dataset::{Image, SHRINK_FACTORS};
use crate::error::{Error, Result};

/// An image file format, told by its leading bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// JPEG (`FF D8 FF`).
    Jpeg,
    /// PNG (`89 'PNG' 0D 0A 1A 0A`).
    Png,
    /// A format recognised but not decoded here (BMP, GIF, TIFF, WebP, PNM), by name.
    Unsupported(&'static str),
    /// Leading bytes of no known image format.
    Unknown,
}

const PNG_MAGIC: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];

/// The format of an image file from its first bytes (16 are enough).
pub fn sniff(bytes: &[u8]) -> Format {
    let b = bytes;
    if b.starts_with(&[0xff, 0xd8, 0xff]) {
        Format::Jpeg
    } else if b.starts_with(&PNG_MAGIC) {
        Format::Png
    } else if b.starts_with(b"BM") {
        Format::Unsupported("BMP")
    } else if b.starts_with(b"GIF8") {
        Format::Unsupported("GIF")
    } else if b.starts_with(b"II*\0") || b.starts_with(b"MM\0*") {
        Format::Unsupported("TIFF")
    } else if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        Format::Unsupported("WebP")
    } else if b.len() >= 2 && b[0] == b'P' && (b'1'..=b'7').contains(&b[1]) {
        Format::Unsupported("PNM (PPM/PGM/PBM)")
    } else {
        Format::Unknown
    }
}

pub(crate) fn unsupported(name: &str, bytes: &[u8]) -> Error {
    match sniff(bytes) {
        Format::Unsupported(f) => Error::Data(format!(
            "{name}: unsupported format: {f} (only JPEG and PNG are decoded)"
        )),
        _ => {
            let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
            Error::Data(format!(
                "{name}: unsupported format: not a JPEG or PNG file (first bytes: {})",
                if head.is_empty() {
                    "none, the file is empty".to_string()
                } else {
                    head.join(" ")
                }
            ))
        }
    }
}

/// The largest factor of [`SHRINK_FACTORS`] not above `max_shrink` (1 for 0 or 1).
pub fn shrink_factor(max_shrink: u32) -> u32 {
    SHRINK_FACTORS
        .iter()
        .copied()
        .filter(|&s| s <= max_shrink.max(1))
        .max()
        .unwrap_or(1)
}

/// Decodes a JPEG or PNG file's bytes to an RGB [`Image`] (3 channels). A JPEG is shrunk by
/// the largest factor of [`SHRINK_FACTORS`] not above `max_shrink` (its size is then
/// `ceil(full / factor)`); a PNG is never shrunk. Returns the image and the factor applied.
/// `name` (the file) is used in errors.
pub fn decode(bytes: &[u8], max_shrink: u32, name: &str) -> Result<(Image, u32)> {
    match sniff(bytes) {
        Format::Jpeg => {
            let s = shrink_factor(max_shrink);
            Ok((decode_jpeg(bytes, s, name)?, s))
        }
        Format::Png => Ok((decode_png(bytes, name)?, 1)),
        _ => Err(unsupported(name, bytes)),
    }
}

/// Full-resolution `(height, width)` of a JPEG or PNG file, from its header only (the bytes
/// may be just a prefix of the file holding the header). `name` is used in errors.
pub fn image_size(bytes: &[u8], name: &str) -> Result<(usize, usize)> {
    match header_size(bytes, name)? {
        Some(hw) => Ok(hw),
        None => Err(Error::Data(format!(
            "{name}: truncated file: the header ends before the image size"
        ))),
    }
}

/// Like [`image_size`], but `Ok(None)` when `bytes` end before the size is found (read more
/// of the file and try again).
pub fn header_size(bytes: &[u8], name: &str) -> Result<Option<(usize, usize)>> {
    match sniff(bytes) {
        Format::Jpeg => Ok(jpeg_sof(bytes, name)?.map(|(h, w, _)| (h, w))),
        Format::Png => {
            // signature, IHDR length and type, then width and height (big-endian)
            if bytes.len() < 24 {
                return Ok(None);
            }
            if &bytes[12..16] != b"IHDR" {
                return Err(Error::Data(format!(
                    "{name}: corrupt PNG: no IHDR chunk first"
                )));
            }
            let w = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]) as usize;
            let h = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]) as usize;
            if w == 0 || h == 0 {
                return Err(Error::Data(format!(
                    "{name}: corrupt PNG: image of size {w}x{h}"
                )));
            }
            Ok(Some((h, w)))
        }
        // a few bytes that begin a signature: more of the file may follow (any others are no
        // image, however short: a 6-byte text file is not a "truncated" one)
        _ if !bytes.is_empty() && (PNG_MAGIC.starts_with(bytes) || [0xff, 0xd8, 0xff].starts_with(bytes)) => Ok(None),
        _ => Err(unsupported(name, bytes)),
    }
}

/// Walks the JPEG marker segments up to the first SOFn and reads its (height, width, number
/// of components); `None` when the bytes end first.
fn jpeg_sof(b: &[u8], name: &str) -> Result<Option<(usize, usize, usize)>> {
    let mut i = 2;
    loop {
        let Some((m, at)) = next_marker(b, i) else { return Ok(None) };
        i = at;
        if matches!(m, 0xd9 | 0xda) {
            return Err(Error::Data(format!(
                "{name}: corrupt JPEG: no frame header (SOF) before the image data"
            )));
        }
        if i + 2 > b.len() {
            return Ok(None);
        }
        let len = u16::from_be_bytes([b[i], b[i + 1]]) as usize;
        if len < 2 {
            return Err(Error::Data(format!(
                "{name}: corrupt JPEG: segment of length {len}"
            )));
        }
        let is_sof = matches!(m, 0xc0..=0xcf) && !matches!(m, 0xc4 | 0xc8 | 0xcc);
        if is_sof {
            if i + 8 > b.len() {
                return Ok(None);
            }
            let h = u16::from_be_bytes([b[i + 3], b[i + 4]]) as usize;
            let w = u16::from_be_bytes([b[i + 5], b[i + 6]]) as usize;
            if w == 0 || h == 0 {
                return Err(Error::Data(format!(
                    "{name}: corrupt JPEG: image of size {w}x{h}"
                )));
            }
            return Ok(Some((h, w, b[i + 7] as usize)));
        }
        i += len;
    }
}

/// The next marker of a JPEG's bytes from `i` on: its code and the index of what follows it (a
/// segment's length), or `None` when the bytes end first. Bytes that start no marker are
/// skipped, as PIL does ("Skip non-0xFF junk") and libjpeg (a warning, "extraneous bytes
/// before marker"): both read such a file; so are standalone markers and stuffed 0xFF bytes.
fn next_marker(b: &[u8], mut i: usize) -> Option<(u8, usize)> {
    loop {
        while i < b.len() && b[i] != 0xff {
            i += 1;
        }
        // a marker: one or more 0xFF fill bytes then the code
        while i < b.len() && b[i] == 0xff {
            i += 1;
        }
        let &m = b.get(i)?;
        i += 1;
        // (standalone markers; 0x00: a stuffed 0xFF, junk here, as to PIL and libjpeg)
        if !matches!(m, 0xd0..=0xd7 | 0x01 | 0x00) {
            return Some((m, i));
        }
    }
}

/// Whether a JPEG's bytes end before its scan's header does (a file cut in its header, which
/// libjpeg reports as "image of size 0x0", "contains no image" or "Bogus marker length", and
/// PIL as a truncated file).
fn jpeg_cut_before_scan(b: &[u8]) -> bool {
    let mut i = 2;
    loop {
        let Some((m, at)) = next_marker(b, i) else { return true };
        if m == 0xd9 {
            return false;
        }
        let Some(len) = b.get(at..at + 2).map(|l| u16::from_be_bytes([l[0], l[1]]) as usize) else { return true };
        if m == 0xda || len < 2 {
            return m == 0xda && at + len > b.len();
        }
        i = at + len;
    }
}

/// A TurboJPEG decompressor, one per thread (creating one costs an allocation of ~tens of KB).
struct Handle(tj::tjhandle);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from tjInitDecompress and is destroyed once.
        unsafe {
            tj::tjDestroy(self.0);
        }
    }
}

thread_local! {
    static HANDLE: RefCell<Option<Handle>> = const { RefCell::new(None) };
}

fn tj_message(h: tj::tjhandle) -> String {
    // SAFETY: tjGetErrorStr2 returns a NUL-terminated string owned by the handle (or a static).
    unsafe {
        let p = tj::tjGetErrorStr2(h);
        if p.is_null() {
            "unknown libjpeg-turbo error".to_string()
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

fn decode_jpeg(bytes: &[u8], shrink: u32, name: &str) -> Result<Image> {
    HANDLE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            // SAFETY: plain constructor; a null result is checked below.
            let h = unsafe { tj::tjInitDecompress() };
            if h.is_null() {
                return Err(Error::Data(format!(
                    "{name}: cannot create a libjpeg-turbo decompressor"
                )));
            }
            *slot = Some(Handle(h));
        }
        let h = match slot.as_ref() {
            Some(h) => h.0,
            None => return Err(Error::Data(format!("{name}: no JPEG decompressor"))),
        };
        decode_jpeg_with(h, bytes, shrink, name)
    })
}

fn decode_jpeg_with(h: tj::tjhandle, bytes: &[u8], shrink: u32, name: &str) -> Result<Image> {
    let corrupt = |what: String| {
        // (a JPEG process this libjpeg-turbo does not decode is not damage: lossless JPEG needs
        // libjpeg-turbo 3, which PIL's wheels bundle)
        if what.contains("Unsupported JPEG process") {
            return Error::Data(format!(
                "{name}: a JPEG this system's libjpeg-turbo does not decode ({what}; lossless JPEG needs libjpeg-turbo 3): convert it, e.g. to PNG"
            ));
        }
        if jpeg_cut_before_scan(bytes) {
            return Error::Data(format!("{name}: truncated file: it ends before its image data (libjpeg: {what})"));
        }
        Error::Data(format!("{name}: corrupt JPEG: {what}"))
    };
    let (mut w, mut hh, mut subsamp, mut cs): (c_int, c_int, c_int, c_int) = (0, 0, 0, 0);
    let size = bytes.len() as c_ulong;
    // SAFETY: the buffer and its length are valid; the outputs are plain ints.
    let rc = unsafe {
        tj::tjDecompressHeader3(
            h,
            bytes.as_ptr(),
            size,
            &mut w,
            &mut hh,
            &mut subsamp,
            &mut cs,
        )
    };
    if rc != 0 {
        let msg = tj_message(h);
        // SAFETY: plain query on a valid handle.
        let warning = unsafe { tj::tjGetErrorCode(h) } == tj::TJERR_TJERR_WARNING as c_int;
        // libjpeg-turbo 2.x's header query rejects sampling layouts it has no name for (such as
        // CMYK with subsampled C, M, Y) although it decodes them, and stops at a warning
        // (extraneous bytes before a marker) that the decoder passes: read the frame header here
        match jpeg_sof(bytes, name)? {
            Some((sh, sw, n)) if msg.contains("subsampling") || warning => {
                (hh, w) = (sh as c_int, sw as c_int);
                cs = if n == 4 {
                    tj::TJCS_TJCS_CMYK as c_int
                } else {
                    tj::TJCS_TJCS_YCbCr as c_int
                };
            }
            _ => return Err(corrupt(msg)),
        }
    }
    if w <= 0 || hh <= 0 {
        return Err(corrupt(format!("image of size {w}x{hh}")));
    }
    check_pixels(name, w as u64, hh as u64)?;
    let s = shrink.max(1) as c_int;
    let (sw, sh) = ((w + s - 1) / s, (hh + s - 1) / s);
    let cmyk = cs == tj::TJCS_TJCS_CMYK as c_int || cs == tj::TJCS_TJCS_YCCK as c_int;
    let (format, channels) = if cmyk {
        (tj::TJPF_TJPF_CMYK, 4)
    } else {
        (tj::TJPF_TJPF_RGB, 3)
    };
    let mut out = vec![0u8; sw as usize * sh as usize * channels];
    // SAFETY: `out` holds sw * sh * channels bytes, the size TurboJPEG writes for the scaling
    // factor it picks for (sw, sh) (1/s exactly: s is a power of two up to 8); pitch 0 = packed.
    let rc = unsafe {
        tj::tjDecompress2(
            h,
            bytes.as_ptr(),
            size,
            out.as_mut_ptr(),
            sw,
            0,
            sh,
            format,
            0,
        )
    };
    if rc != 0 {
        // SAFETY: plain query on a valid handle.
        let warning = unsafe { tj::tjGetErrorCode(h) } == tj::TJERR_TJERR_WARNING as c_int;
        let msg = tj_message(h);
        // ("Premature end of JPEG file": the file ends before the image, which PIL calls
        // truncated; "Corrupt JPEG data: premature end of data segment", a scan cut short by
        // the next marker, PIL decodes)
        let cut = msg.to_ascii_lowercase().contains("premature end of jpeg file");
        if !warning || cut {
            // (one cut before its scan is said so by `corrupt`)
            let cause = if cut && !jpeg_cut_before_scan(bytes) {
                format!("truncated file ({msg})")
            } else {
                msg
            };
            return Err(corrupt(cause));
        }
    }
    let pixels = if cmyk {
        let mut rgb = Vec::with_capacity(sw as usize * sh as usize * 3);
        for p in out.chunks_exact(4) {
            // ink amounts C, M, Y, K in 0..=255: stored inverted, with or without Adobe's
            // APP14 segment (PIL reads every CMYK JPEG as "CMYK;I", "assume adobe conventions")
            let (c, m, y, k) = (255 - p[0], 255 - p[1], 255 - p[2], 255 - p[3]);
            let nk = 255 - k as u32;
            for ink in [c, m, y] {
                rgb.push((nk - div255(ink as u32 * nk) as u32) as u8);
            }
        }
        rgb
    } else {
        out
    };
    Ok(Image {
        height: sh as usize,
        width: sw as usize,
        channels: 3,
        pixels,
    })
}

/// `round(x / 255)` for `x <= 255 * 255` (PIL's MULDIV255).
fn div255(x: u32) -> u8 {
    let t = x + 128;
    (((t >> 8) + t) >> 8) as u8
}

/// The most pixels an image may have: PIL's decompression-bomb limit (`Image.MAX_IMAGE_PIXELS`
/// x 2, where PIL raises an error). A header claiming more is refused before any allocation:
/// a corrupt or hostile file, never an abort of the run.
pub const MAX_IMAGE_PIXELS: u64 = 2 * 89_478_485;

/// Refuses an image whose header claims more than [`MAX_IMAGE_PIXELS`].
fn check_pixels(name: &str, width: u64, height: u64) -> Result<()> {
    match width.checked_mul(height) {
        Some(n) if n <= MAX_IMAGE_PIXELS => Ok(()),
        _ => Err(Error::Data(format!(
            "{name}: its header claims {width}x{height} pixels, more than the {MAX_IMAGE_PIXELS} an image may have (a corrupt header or a decompression bomb; PIL refuses it too)"
        ))),
    }
}

fn decode_png(bytes: &[u8], name: &str) -> Result<Image> {
    // a wrong CRC before the image data is an error, as PIL's (a header whose height was
    // damaged read half the image without a word; the png crate passes over an ancillary
    // chunk's, a text's)
    if let Some(kind) = bad_header_crc(bytes) {
        return Err(Error::Data(format!(
            "{name}: corrupt PNG: wrong CRC in its {kind} chunk, before the image data (PIL refuses such a file too)"
        )));
    }
    match png_image(bytes, name, false) {
        // a file PIL reads though the png crate does not: cut after its image data (no IEND,
        // common in scraped images), or with a wrong CRC in its image data or after it (PIL
        // checks the chunks before the first IDAT only): its rows read one by one, as many as
        // the image has, checksums not verified
        Err(e) if e.contains("EOF") || e.to_ascii_lowercase().contains("unexpected end") || e.contains("CRC") => match png_image(bytes, name, true) {
            Ok(image) => image,
            Err(_) => Err(png_error(name, &e)),
        },
        Err(e) => Err(png_error(name, &e)),
        Ok(image) => image,
    }
}

/// The first chunk of a PNG before its first `IDAT` (`IHDR`, `PLTE`, text...) whose CRC is
/// wrong, by its type: PIL verifies those when it opens a file (a wrong one: "broken PNG file",
/// not opened), and no later one. A file cut before its image data has none (its decoding
/// fails on the cut).
fn bad_header_crc(bytes: &[u8]) -> Option<String> {
    let mut at = 8usize;
    while let Some(head) = bytes.get(at..at + 8) {
        let kind = &head[4..8];
        if kind == b"IDAT" {
            return None;
        }
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let end = (at + 8).checked_add(len)?;
        let stored = bytes.get(end..end.checked_add(4)?)?;
        let mut crc = flate2::Crc::new();
        crc.update(&bytes[at + 4..end]);
        if crc.sum() != u32::from_be_bytes([stored[0], stored[1], stored[2], stored[3]]) {
            return Some(String::from_utf8_lossy(kind).into_owned());
        }
        at = end + 4;
    }
    None
}

fn png_error(name: &str, e: &str) -> Error {
    let cause = if e.contains("EOF") || e.to_ascii_lowercase().contains("unexpected end") { format!("truncated file ({e})") } else { e.to_string() };
    Error::Data(format!("{name}: corrupt PNG: {cause}"))
}

/// The PNG `bytes`: `Ok(Err(_))` when refused before decoding (too many pixels), `Err(_)` the
/// decoder's failure (a panic of it included). `rows`: a non-interlaced image's rows read one
/// by one, nothing after the last one, checksums not verified.
fn png_image(bytes: &[u8], name: &str, rows: bool) -> std::result::Result<Result<Image>, String> {
    let run = || -> std::result::Result<Result<Image>, String> {
        let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
        dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        if rows {
            dec.ignore_checksums(true);
        }
        let mut reader = dec.read_info().map_err(|e| e.to_string())?;
        let (iw, ih) = (reader.info().width, reader.info().height);
        if let Err(e) = check_pixels(name, iw as u64, ih as u64) {
            return Ok(Err(e));
        }
        let (buf, w, h, color_type, bit_depth, line) = if rows && !reader.info().interlaced {
            let (color_type, bit_depth) = reader.output_color_type();
            let line = reader.output_line_size(iw).ok_or_else(|| "image too large".to_string())?;
            let mut buf = vec![0u8; line * ih as usize];
            for row in buf.chunks_exact_mut(line) {
                reader.read_row(row).map_err(|e| e.to_string())?;
            }
            (buf, iw as usize, ih as usize, color_type, bit_depth, line)
        } else {
            let len = reader.output_buffer_size().ok_or_else(|| "image too large".to_string())?;
            let mut buf = vec![0u8; len];
            let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
            (buf, info.width as usize, info.height as usize, info.color_type, info.bit_depth, info.line_size)
        };
        let ch = match color_type {
            png::ColorType::Grayscale => 1,
            png::ColorType::GrayscaleAlpha => 2,
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
            png::ColorType::Indexed => return Err("palette not expanded".into()),
        };
        if bit_depth != png::BitDepth::Eight {
            return Err(format!("unexpected bit depth {bit_depth:?} after expansion"));
        }
        if line < w * ch || buf.len() < line * h {
            return Err("decoded buffer smaller than the image".into());
        }
        let mut pixels = Vec::with_capacity(w * h * 3);
        for row in buf.chunks_exact(line).take(h) {
            let row = &row[..w * ch];
            match ch {
                1 | 2 => row.chunks_exact(ch).for_each(|p| pixels.extend([p[0]; 3])),
                3 => pixels.extend_from_slice(row),
                _ => row.chunks_exact(4).for_each(|p| pixels.extend(&p[..3])),
            }
        }
        Ok(Ok(Image { height: h, width: w, channels: 3, pixels }))
    };
    std::panic::catch_unwind(run).unwrap_or_else(|_| Err("the decoder panicked".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrink_factors_round_down() {
        let got: Vec<u32> = [0, 1, 2, 3, 4, 7, 8, 100].map(shrink_factor).to_vec();
        assert_eq!(got, vec![1, 1, 2, 2, 4, 4, 8, 8]);
    }

    #[test]
    fn div255_rounds_like_pil() {
        for x in 0..=255u32 * 255 {
            assert_eq!(div255(x) as u32, (x as f64 / 255.0).round() as u32, "{x}");
        }
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for &b in bytes {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 == 1 { (c >> 1) ^ 0xedb8_8320 } else { c >> 1 };
            }
        }
        !c
    }

    /// A PNG of a header (IHDR, the start of a zlib stream, IEND) claiming `w` x `h` RGB pixels.
    fn png_header(w: u32, h: u32) -> Vec<u8> {
        let mut out = PNG_MAGIC.to_vec();
        for (kind, data) in [(&b"IHDR"[..], [&w.to_be_bytes()[..], &h.to_be_bytes(), &[8, 2, 0, 0, 0]].concat()), (&b"IDAT"[..], vec![0x78, 0x9c]), (&b"IEND"[..], Vec::new())] {
            out.extend((data.len() as u32).to_be_bytes());
            let body = [kind, &data].concat();
            out.extend(&body);
            out.extend(crc32(&body).to_be_bytes());
        }
        out
    }

    /// A header that claims more pixels than any image may have is a data error naming the
    /// file (skippable under `on-error "skip"`), refused before the decoder allocates: the
    /// run never aborts on a failed allocation.
    #[test]
    fn a_header_claiming_too_many_pixels_is_refused_before_decoding() {
        let e = decode(&png_header(100_000, 100_000), 1, "bomb.png").unwrap_err();
        assert!(matches!(e, Error::Data(_)), "{e:?}");
        let e = e.to_string();
        assert!(e.contains("bomb.png") && e.contains("100000x100000") && e.contains("178956970"), "{e}");
        // at the limit's side: a header within it goes on to the decoder (which finds no data)
        let e = decode(&png_header(4, 4), 1, "small.png").unwrap_err().to_string();
        assert!(e.contains("corrupt PNG"), "{e}");
        // a JPEG whose frame header says 60000 x 60000 (libjpeg-turbo's own limit is 65500 a side)
        let mut jpeg = Vec::new();
        jpeg_encoder::Encoder::new(&mut jpeg, 90).encode(&[128u8; 8 * 8 * 3], 8, 8, jpeg_encoder::ColorType::Rgb).unwrap();
        let sof = jpeg.windows(2).position(|m| m == [0xff, 0xc0]).expect("a baseline frame header");
        jpeg[sof + 5..sof + 9].copy_from_slice(&[0xea, 0x60, 0xea, 0x60]);
        let e = decode(&jpeg, 1, "bomb.jpg").unwrap_err().to_string();
        assert!(e.contains("bomb.jpg") && e.contains("60000x60000") && e.contains("more than"), "{e}");
    }

    /// A PNG cut after its image data (no IEND: common in scraped images) or with a wrong
    /// IDAT CRC decodes to its pixels, as PIL decodes it (both were "corrupt PNG"); one cut
    /// inside its image data is still a truncated file, and one with a wrong CRC before its
    /// image data an error, as for PIL.
    #[test]
    fn a_png_without_its_end_or_with_a_bad_idat_crc_decodes_as_pil_does() {
        let (w, h) = (37u32, 23u32);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
        let mut file = Vec::new();
        {
            let mut e = png::Encoder::new(&mut file, w, h);
            e.set_color(png::ColorType::Rgb);
            e.set_depth(png::BitDepth::Eight);
            e.write_header().unwrap().write_image_data(&rgb).unwrap();
        }
        let whole = decode(&file, 1, "whole.png").unwrap().0;
        assert_eq!(whole.pixels, rgb);
        // no IEND (its 12 bytes)
        let no_end = &file[..file.len() - 12];
        assert_eq!(decode(no_end, 1, "noiend.png").unwrap_or_else(|e| panic!("{e}")).0.pixels, rgb);
        // the IDAT's CRC (the 4 bytes before IEND) flipped
        let mut bad_crc = file.clone();
        let at = file.len() - 12 - 1;
        bad_crc[at] ^= 0xff;
        assert_eq!(decode(&bad_crc, 1, "badcrc.png").unwrap_or_else(|e| panic!("{e}")).0.pixels, rgb);
        // a wrong CRC before the image data PIL refuses: the header's (its height halved, the
        // old CRC kept: the top half of the image was read, without a word) and a text chunk's
        let mut short = file.clone();
        short[8 + 8 + 4..8 + 8 + 8].copy_from_slice(&(h / 2).to_be_bytes());
        let e = decode(&short, 1, "short.png").unwrap_err().to_string();
        assert!(e.contains("short.png: corrupt PNG: wrong CRC in its IHDR chunk, before the image data"), "{e}");
        let text = [&(5u32.to_be_bytes())[..], b"tEXta\0xyz", &[0, 0, 0, 0]].concat();
        let with_text = [&file[..33], &text[..], &file[33..]].concat();
        let e = decode(&with_text, 1, "text.png").unwrap_err().to_string();
        assert!(e.contains("text.png: corrupt PNG: wrong CRC in its tEXt chunk"), "{e}");
        // (with its right CRC, the text chunk is read over)
        let mut good_text = text.clone();
        let mut crc = flate2::Crc::new();
        crc.update(&text[4..13]);
        good_text[13..].copy_from_slice(&crc.sum().to_be_bytes());
        assert_eq!(decode(&[&file[..33], &good_text[..], &file[33..]].concat(), 1, "t.png").unwrap_or_else(|e| panic!("{e}")).0.pixels, rgb);
        // cut inside the image data
        let e = decode(&file[..file.len() / 2], 1, "cut.png").unwrap_err().to_string();
        assert!(e.contains("cut.png") && e.contains("corrupt PNG") && e.contains("truncated file"), "{e}");
    }

    /// Damage libjpeg recovers from with a warning ("Corrupt JPEG data: premature end of data
    /// segment": a scan's data cut short by the next marker) decodes, as PIL (and so
    /// torchvision) decodes it; a file that ends before its image does ("Premature end of JPEG
    /// file") is a truncated one, as for PIL.
    #[test]
    fn recoverable_jpeg_damage_decodes_and_a_cut_file_does_not() {
        let noise: Vec<u8> = (0..48 * 64 * 3u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let mut jpeg = Vec::new();
        jpeg_encoder::Encoder::new(&mut jpeg, 90).encode(&noise, 64, 48, jpeg_encoder::ColorType::Rgb).unwrap();
        assert!(decode(&jpeg, 1, "ok.jpg").is_ok());
        // the scan cut in half and closed by its end marker (PIL decodes it; the cut file alone
        // it calls truncated)
        let n = jpeg.len();
        let garbled = [&jpeg[..n / 2], &[0xff, 0xd9]].concat();
        let (img, _) = decode(&garbled, 1, "garbled.jpg").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((img.width, img.height), (64, 48));
        let e = decode(&jpeg[..n / 2], 1, "cut.jpg").unwrap_err().to_string();
        assert!(e.contains("cut.jpg") && e.contains("truncated file") && e.contains("Premature end of JPEG file"), "{e}");
        // cut in its header: before the frame header, after it, inside the scan's header (libjpeg
        // said "image of size 0x0", "contains no image", "Bogus marker length": corrupt)
        let at = |marker: u8| jpeg.windows(2).position(|w| w == [0xff, marker]).unwrap();
        for cut in [20, at(0xc4), at(0xda) + 8] {
            let e = decode(&jpeg[..cut], 1, "head.jpg").unwrap_err().to_string();
            assert!(e.contains("head.jpg: truncated file: it ends before its image data"), "{cut}: {e}");
        }
    }

    #[test]
    fn sniffs_formats() {
        assert_eq!(sniff(&[0xff, 0xd8, 0xff, 0xe0]), Format::Jpeg);
        assert_eq!(sniff(&PNG_MAGIC), Format::Png);
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Format::Unsupported("WebP"));
        assert_eq!(sniff(b"hello"), Format::Unknown);
        // a short text file is no image (it was called a truncated one); a signature's first
        // bytes may be
        let e = image_size(b"hello\n", "t.jpg").unwrap_err().to_string();
        assert!(e.contains("t.jpg: unsupported format: not a JPEG or PNG file (first bytes: 68 65"), "{e}");
        assert!(image_size(&[0xff, 0xd8], "cut.jpg").unwrap_err().to_string().contains("truncated"));
        let e = decode(b"BM\0\0\0\0", 1, "x.bmp").unwrap_err().to_string();
        assert!(
            e.contains("x.bmp") && e.contains("unsupported format: BMP"),
            "{e}"
        );
    }
}
