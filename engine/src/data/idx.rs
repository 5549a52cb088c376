//! Reader of the idx file format of (Fashion-)MNIST, plain or gzip-compressed.
//!
//! Mirrors what torchvision's `datasets/mnist.py` (`read_sn3_pascalvincent_tensor`) accepts,
//! restricted to unsigned-byte payloads: a big-endian header `0x00 0x00 TYPE NDIM`, then NDIM
//! big-endian u32 dimensions, then the data. Images are `0x00000803` (`[N, rows, cols]`),
//! labels `0x00000801` (`[N]`). Gzip is detected by its magic bytes (`1f 8b`), not by the name.
//! Every malformed input is an [`Error::Data`] naming the file and the cause, never a panic.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// idx type code of unsigned bytes, the only payload type (Fashion-)MNIST uses.
pub const TYPE_UBYTE: u8 = 0x08;
/// Magic number of an idx image file: unsigned bytes, 3 dimensions `[N, rows, cols]`.
pub const MAGIC_IMAGES: u32 = 0x0000_0803;
/// Magic number of an idx label file: unsigned bytes, 1 dimension `[N]`.
pub const MAGIC_LABELS: u32 = 0x0000_0801;

/// Refuse to inflate more than this many bytes (a corrupt or hostile stream cannot make us
/// allocate without bound; the full Fashion-MNIST training images are 47 MB).
const MAX_DECODED_BYTES: u64 = 1 << 32;

/// A decoded idx array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions, outermost first (`[N, rows, cols]` for images, `[N]` for labels).
    pub dims: Vec<usize>,
    /// Row-major payload, `dims.iter().product()` bytes.
    pub data: Vec<u8>,
}

/// True when `bytes` start with the gzip magic number.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
}

/// Inflates the gzip stream `bytes` of an idx file only as far as its header says the data
/// goes, and one byte more (to tell trailing bytes): a few MB of gzip that inflate to GBs of
/// zeros behind a small header were inflated whole (up to 4 GiB) before the header was read.
/// A header that is no idx header stops the inflating there (the parse then says why).
fn inflate_idx<'a>(bytes: &[u8], expected_magic: u32, name: &str) -> Result<std::borrow::Cow<'a, [u8]>> {
    let corrupt = |e: std::io::Error| Error::Data(format!("{name}: corrupt or truncated gzip stream: {e}"));
    let mut dec = Members { rest: bytes, member: None, after_member: false };
    let mut out = Vec::new();
    // up to `want` bytes in all (fewer at the stream's end)
    let mut fill = |out: &mut Vec<u8>, want: u64| -> Result<()> {
        let have = out.len() as u64;
        if want > have {
            (&mut dec).take(want - have).read_to_end(out).map_err(corrupt)?;
        }
        Ok(())
    };
    fill(&mut out, 4)?;
    // (another payload type or dimension count is said by the parse: a header of type 0x12
    // and 52 dimensions was called too large, not of the wrong type)
    if out.len() < 4 || u32::from_be_bytes([out[0], out[1], out[2], out[3]]) != expected_magic {
        return Ok(std::borrow::Cow::Owned(out));
    }
    let header = 4 + 4 * out[3] as u64;
    fill(&mut out, header)?;
    if (out.len() as u64) < header {
        return Ok(std::borrow::Cow::Owned(out));
    }
    let len = out[4..]
        .chunks_exact(4)
        .try_fold(1u64, |acc, d| acc.checked_mul(u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as u64))
        .and_then(|l| l.checked_add(header));
    match len {
        Some(total) if total <= MAX_DECODED_BYTES => fill(&mut out, total + 1)?,
        _ => {
            return Err(Error::Data(format!(
                "{name}: the idx header declares more than {MAX_DECODED_BYTES} bytes of data: not inflated"
            )))
        }
    }
    Ok(std::borrow::Cow::Owned(out))
}

/// The members of a gzip file one after another (a concatenation of gzip files is one file, as
/// for gzip and Python's `gzip`), then nothing: zero bytes after the last member are padding,
/// as gzip and Python read them (a file copied in blocks); other bytes there must be a member.
struct Members<'a> {
    /// The input after the members read so far (the current one's included).
    rest: &'a [u8],
    member: Option<flate2::bufread::GzDecoder<&'a [u8]>>,
    /// Whether the current member follows another and none of it has been read.
    after_member: bool,
}

impl Read for Members<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(member) = &mut self.member {
                let n = match member.read(buf) {
                    Err(e) if self.after_member => {
                        let what = "are neither another gzip member nor zero padding";
                        return Err(std::io::Error::new(e.kind(), format!("the {} bytes after the gzip data {what} ({e})", self.rest.len())));
                    }
                    r => r?,
                };
                if n > 0 || buf.is_empty() {
                    self.after_member &= n == 0;
                    return Ok(n);
                }
                // the member's end: what follows it is the next member, padding or nothing
                self.rest = self.member.take().map_or(self.rest, |m| m.into_inner());
                self.after_member = true;
            }
            // zero bytes after a member are padding, before the next member too (gzip and
            // Python skip them)
            let padding = self.rest.iter().take_while(|&&b| b == 0).count();
            self.rest = &self.rest[padding..];
            if self.rest.is_empty() {
                return Ok(0);
            }
            self.member = Some(flate2::bufread::GzDecoder::new(self.rest));
        }
    }
}

/// Parses an idx file (plain or gzip) held in memory and checks that its magic number is
/// `expected_magic` (e.g. [`MAGIC_IMAGES`]). `name` names the source in errors.
pub fn parse(bytes: &[u8], expected_magic: u32, name: &str) -> Result<IdxArray> {
    let gzipped = is_gzip(bytes);
    let raw = if gzipped { inflate_idx(bytes, expected_magic, name)? } else { std::borrow::Cow::Borrowed(bytes) };
    let raw: &[u8] = &raw;
    if raw.len() < 4 {
        return Err(Error::Data(format!(
            "{name}: truncated idx header ({} bytes, need at least 4)",
            raw.len()
        )));
    }
    let magic = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
    if raw[0] != 0 || raw[1] != 0 {
        return Err(Error::Data(format!(
            "{name}: not an idx file (magic {magic:#010x}; an idx file starts with two zero bytes)"
        )));
    }
    if raw[2] != TYPE_UBYTE {
        return Err(Error::Data(format!(
            "{name}: idx payload type {:#04x} is not supported (only unsigned bytes, 0x08)",
            raw[2]
        )));
    }
    if magic != expected_magic {
        return Err(Error::Data(format!(
            "{name}: idx magic {magic:#010x}, expected {expected_magic:#010x} \
             ({} dimensions instead of {})",
            raw[3],
            expected_magic & 0xff
        )));
    }
    let ndim = raw[3] as usize;
    let header = 4 + 4 * ndim;
    if raw.len() < header {
        return Err(Error::Data(format!(
            "{name}: truncated idx header ({} bytes, need {header} for {ndim} dimensions)",
            raw.len()
        )));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| {
            let o = 4 + 4 * i;
            u32::from_be_bytes([raw[o], raw[o + 1], raw[o + 2], raw[o + 3]]) as usize
        })
        .collect();
    let len = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::Data(format!("{name}: idx dimensions {dims:?} overflow")))?;
    let body = &raw[header..];
    if body.len() < len {
        return Err(Error::Data(format!(
            "{name}: truncated idx data: dimensions {dims:?} need {len} bytes after the {header}-byte header, the file{} has {}",
            if gzipped { " (inflated)" } else { "" },
            body.len()
        )));
    }
    if body.len() > len {
        // (a gzip stream is inflated only one byte past the data its header declares)
        let trailing = if gzipped { "more".to_string() } else { (body.len() - len).to_string() };
        return Err(Error::Data(format!("{name}: {trailing} trailing bytes after the idx data of dimensions {dims:?}")));
    }
    Ok(IdxArray {
        dims,
        data: body.to_vec(),
    })
}

/// Reads and parses an idx file (plain or gzip) from disk; see [`parse`].
pub fn read(path: &Path, expected_magic: u32) -> Result<IdxArray> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse(&bytes, expected_magic, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn idx_bytes(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn err(r: Result<IdxArray>) -> String {
        match r {
            Ok(a) => panic!("expected an error, got dims {:?}", a.dims),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn plain_and_gzip_parse_the_same() {
        let data: Vec<u8> = (0..24).collect();
        let plain = idx_bytes(MAGIC_IMAGES, &[2, 3, 4], &data);
        let a = parse(&plain, MAGIC_IMAGES, "x").unwrap();
        let b = parse(&gz(&plain), MAGIC_IMAGES, "x").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.dims, vec![2, 3, 4]);
        assert_eq!(a.data, data);
        let l = parse(
            &idx_bytes(MAGIC_LABELS, &[3], &[1, 2, 3]),
            MAGIC_LABELS,
            "l",
        )
        .unwrap();
        assert_eq!((l.dims, l.data), (vec![3], vec![1, 2, 3]));
    }

    #[test]
    fn malformed_inputs_are_clear_errors() {
        let data: Vec<u8> = (0..24).collect();
        let good = idx_bytes(MAGIC_IMAGES, &[2, 3, 4], &data);
        assert!(
            err(parse(&good[..2], MAGIC_IMAGES, "f.idx")).contains("f.idx: truncated idx header")
        );
        assert!(err(parse(&good[..9], MAGIC_IMAGES, "f.idx")).contains("truncated idx header"));
        assert!(err(parse(&good[..30], MAGIC_IMAGES, "f.idx")).contains("truncated idx data"));
        let mut long = good.clone();
        long.push(0);
        assert!(err(parse(&long, MAGIC_IMAGES, "f.idx")).contains("trailing bytes"));
        assert!(err(parse(&good, MAGIC_LABELS, "f.idx")).contains("expected 0x00000801"));
        assert!(err(parse(b"PK\x03\x04abcd", MAGIC_IMAGES, "f.idx")).contains("not an idx file"));
        let floats = idx_bytes(0x0000_0d01, &[1], &[0; 4]);
        assert!(err(parse(&floats, MAGIC_LABELS, "f.idx")).contains("not supported"));
        let huge = idx_bytes(MAGIC_IMAGES, &[u32::MAX, u32::MAX, u32::MAX], &[]);
        let e = err(parse(&huge, MAGIC_IMAGES, "f.idx"));
        assert!(e.contains("overflow") || e.contains("truncated"), "{e}");
        // gzip: truncated stream and corrupt stream
        let z = gz(&good);
        assert!(err(parse(&z[..z.len() / 2], MAGIC_IMAGES, "f.gz"))
            .contains("f.gz: corrupt or truncated gzip"));
        let mut bad = z.clone();
        for b in bad.iter_mut().skip(12).take(8) {
            *b ^= 0x5a;
        }
        assert!(err(parse(&bad, MAGIC_IMAGES, "f.gz")).contains("f.gz"));
        // a small header before a flood of zeros: inflated only one byte past the declared
        // data (it was inflated whole, up to 4 GiB, before the header was read)
        let mut bomb = idx_bytes(MAGIC_IMAGES, &[2, 3, 4], &data);
        bomb.resize(bomb.len() + (64 << 20), 0);
        let e = err(parse(&gz(&bomb), MAGIC_IMAGES, "f.gz"));
        assert!(e.contains("f.gz: more trailing bytes after the idx data of dimensions [2, 3, 4]"), "{e}");
        let big = idx_bytes(MAGIC_IMAGES, &[u32::MAX, 2, 2], &[]);
        assert!(err(parse(&gz(&big), MAGIC_IMAGES, "f.gz")).contains("declares more than"));
        // a gzipped header of another type or dimension count says so, not its size (type 0x12
        // and 52 dimensions was "more than 4294967296 bytes")
        let other = idx_bytes(0x0000_1234, &[0x40; 0x34], &[]);
        assert!(err(parse(&gz(&other), MAGIC_IMAGES, "f.gz")).contains("idx payload type 0x12 is not supported"));
        let dims = idx_bytes(MAGIC_LABELS, &[u32::MAX], &[]);
        assert!(err(parse(&gz(&dims), MAGIC_IMAGES, "f.gz")).contains("idx magic 0x00000801, expected 0x00000803"));
        // a gzip of a whole file still reads, and checks the stream to its end
        let mut flipped = gz(&good);
        let n = flipped.len();
        flipped[n - 5] ^= 1; // the CRC
        assert!(err(parse(&flipped, MAGIC_IMAGES, "f.gz")).contains("corrupt or truncated gzip"));
    }

    /// As gzip and Python's `gzip` read a file: members one after another are one stream, and
    /// zero bytes after the last are padding (a file copied in blocks was refused: "invalid
    /// gzip header"); other bytes there are an error that says so (it said "truncated").
    #[test]
    fn gzip_members_and_padding_read_as_gzip_reads_them() {
        let data: Vec<u8> = (0..24).collect();
        let good = idx_bytes(MAGIC_IMAGES, &[2, 3, 4], &data);
        let want = parse(&good, MAGIC_IMAGES, "f.idx").unwrap();
        let mut padded = gz(&good);
        padded.resize(padded.len() + 512, 0);
        assert_eq!(parse(&padded, MAGIC_IMAGES, "f.gz").unwrap(), want);
        for cut in [3, 10, good.len() - 1] {
            let mut two = gz(&good[..cut]);
            two.extend(gz(&good[cut..]));
            assert_eq!(parse(&two, MAGIC_IMAGES, "f.gz").unwrap(), want, "{cut}");
            two.extend([0; 7]);
            assert_eq!(parse(&two, MAGIC_IMAGES, "f.gz").unwrap(), want, "{cut}");
            // zeros between the members too
            let mut padded = gz(&good[..cut]);
            padded.extend([0; 16]);
            padded.extend(gz(&good[cut..]));
            assert_eq!(parse(&padded, MAGIC_IMAGES, "f.gz").unwrap(), want, "{cut}");
        }
        let mut junk = gz(&good);
        junk.extend(b"garbage!");
        let e = err(parse(&junk, MAGIC_IMAGES, "f.gz"));
        assert!(e.contains("f.gz: corrupt or truncated gzip stream: the 8 bytes after the gzip data are neither another gzip member nor zero padding"), "{e}");
        // data after the declared data is still trailing data, padded or not
        let mut long = good.clone();
        long.push(0);
        let mut long = gz(&long);
        long.extend([0; 4]);
        assert!(err(parse(&long, MAGIC_IMAGES, "f.gz")).contains("more trailing bytes"));
    }

    #[test]
    fn missing_file_is_an_io_error_naming_it() {
        let p = Path::new("/nonexistent/dir/train-images-idx3-ubyte.gz");
        match read(p, MAGIC_IMAGES) {
            Err(e @ Error::Io { .. }) => {
                assert!(e.to_string().contains("train-images-idx3-ubyte.gz"))
            }
            other => panic!("expected Error::Io, got {other:?}"),
        }
    }
}
