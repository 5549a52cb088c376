//! CIFAR-10 and CIFAR-100 (Krizhevsky 2009) in their binary ("for C programs") formats:
//! 32x32 RGB images with their labels, read whole into memory.
//!
//! - CIFAR-10: `data_batch_1.bin` .. `data_batch_5.bin` (train) and `test_batch.bin` (test);
//!   each record is 1 label byte then 3072 pixel bytes (1024 red, 1024 green, 1024 blue,
//!   row-major: CHW).
//! - CIFAR-100: `train.bin` and `test.bin`; each record is a coarse (20-class) label byte, a
//!   fine (100-class) label byte, then 3072 CHW pixel bytes. The fine label is used.
//!
//! The files are looked for in the given folder, then in the sub-folder the official archive
//! unpacks to (`cifar-10-batches-bin`, `cifar-100-binary`). Plays the role of
//! `torchvision.datasets.CIFAR10/CIFAR100` (which read the pickled python version).

use std::path::{Path, PathBuf};

use super::dataset::{Dataset, Image};
use crate::error::{Error, Result};

/// Which CIFAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CifarVariant {
    /// CIFAR-10: 10 classes.
    Cifar10,
    /// CIFAR-100: 100 (fine) classes.
    Cifar100,
}

/// Which half of the dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CifarSplit {
    /// 50,000 training images.
    Train,
    /// 10,000 test images.
    Test,
}

/// Image side (32).
pub const SIDE: usize = 32;
/// Pixel bytes per image (3 x 32 x 32).
pub const PIXELS: usize = 3 * SIDE * SIDE;

impl CifarVariant {
    /// Number of classes (10 or 100).
    pub fn num_classes(self) -> usize {
        match self {
            CifarVariant::Cifar10 => 10,
            CifarVariant::Cifar100 => 100,
        }
    }

    /// Label bytes before the pixels of a record (1 or 2).
    pub fn label_bytes(self) -> usize {
        match self {
            CifarVariant::Cifar10 => 1,
            CifarVariant::Cifar100 => 2,
        }
    }

    /// Bytes per record (3073 or 3074).
    pub fn record_size(self) -> usize {
        self.label_bytes() + PIXELS
    }

    /// The sub-folder the official binary archive unpacks to.
    pub fn archive_folder(self) -> &'static str {
        match self {
            CifarVariant::Cifar10 => "cifar-10-batches-bin",
            CifarVariant::Cifar100 => "cifar-100-binary",
        }
    }

    /// File names of a split, in order.
    pub fn files(self, split: CifarSplit) -> Vec<String> {
        match (self, split) {
            (CifarVariant::Cifar10, CifarSplit::Train) => {
                (1..=5).map(|i| format!("data_batch_{i}.bin")).collect()
            }
            (CifarVariant::Cifar10, CifarSplit::Test) => vec!["test_batch.bin".into()],
            (CifarVariant::Cifar100, CifarSplit::Train) => vec!["train.bin".into()],
            (CifarVariant::Cifar100, CifarSplit::Test) => vec!["test.bin".into()],
        }
    }
}

/// A CIFAR split in memory; implements [`Dataset`] with 3-channel 32x32 HWC images.
#[derive(Debug, Clone)]
pub struct Cifar {
    variant: CifarVariant,
    /// `len() * PIXELS` bytes, CHW per image as in the files.
    pixels: Vec<u8>,
    labels: Vec<u8>,
    /// Each file read, with the index of its first image.
    files: Vec<(PathBuf, usize)>,
}

impl Cifar {
    /// Reads a split from `root` (or `root/<archive folder>`): both splits from the folder
    /// that holds the training split's first file (a stray `test_batch.bin` in the root beside
    /// the archive's folder was read as the test split of the archive's training batches). A
    /// missing file, a file whose size is not a positive multiple of the record size, or a
    /// label out of range is an error naming the file.
    pub fn open(root: &Path, variant: CifarVariant, split: CifarSplit) -> Result<Self> {
        let names = variant.files(split);
        let dirs = [root.to_path_buf(), root.join(variant.archive_folder())];
        let first_of_train = &variant.files(CifarSplit::Train)[0];
        let dir = (dirs.iter().find(|d| d.join(first_of_train).is_file()))
            .or_else(|| dirs.iter().find(|d| d.join(&names[0]).is_file()))
            .cloned()
            .ok_or_else(|| {
                // there, but no file (a folder, a pipe, a link to nothing): said as such
                if let Err(e) = super::no_file_among(&[&root.join(&names[0]), &root.join(variant.archive_folder()).join(&names[0])]) {
                    return e;
                }
                let why = if root.is_dir() {
                    format!("no such file (nor in {}/)", variant.archive_folder())
                } else {
                    format!("the folder {} does not exist", root.display())
                };
                Error::io(
                    root.join(&names[0]),
                    std::io::Error::new(std::io::ErrorKind::NotFound, why),
                )
            })?;
        let rec = variant.record_size();
        let mut ds = Cifar {
            variant,
            pixels: Vec::new(),
            labels: Vec::new(),
            files: Vec::new(),
        };
        for name in &names {
            let path = dir.join(name);
            // (one file of the split missing beside the others: an incomplete download or
            // extraction; said with the split's files, not as a bare OS error)
            if std::fs::symlink_metadata(&path).is_err() {
                return Err(Error::Data(format!(
                    "{}: no such file, though {} holds {}: the split is the files {} (an incomplete download or extraction?)",
                    path.display(),
                    dir.display(),
                    if dir.join(&names[0]).is_file() { &names[0] } else { first_of_train },
                    names.join(", ")
                )));
            }
            super::data_file(&path)?;
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            if bytes.is_empty() || bytes.len() % rec != 0 {
                return Err(Error::Data(format!(
                    "{}: {} bytes is not a positive multiple of the {rec}-byte {:?} record \
                     (truncated or not this variant?)",
                    path.display(),
                    bytes.len(),
                    variant
                )));
            }
            let first = ds.labels.len();
            for (j, r) in bytes.chunks_exact(rec).enumerate() {
                let (label, coarse) = match variant {
                    CifarVariant::Cifar10 => (r[0], None),
                    CifarVariant::Cifar100 => (r[1], Some(r[0])),
                };
                // (the label out of range named: "label 64 (coarse 20)" read as if the fine one were)
                let out = match coarse {
                    Some(c) if c >= 20 => Some(format!("coarse label {c} out of range (0-19) beside fine label {label}")),
                    Some(_) if label as usize >= variant.num_classes() => Some(format!("fine label {label} out of range (0-{})", variant.num_classes() - 1)),
                    None if label as usize >= variant.num_classes() => Some(format!("label {label} out of range (0-{})", variant.num_classes() - 1)),
                    _ => None,
                };
                if let Some(out) = out {
                    return Err(Error::Data(format!("{}: record {j}: {out} for {:?}", path.display(), variant)));
                }
                ds.labels.push(label);
                ds.pixels.extend_from_slice(&r[variant.label_bytes()..]);
            }
            ds.files.push((path, first));
        }
        Ok(ds)
    }

    /// The variant.
    pub fn variant(&self) -> CifarVariant {
        self.variant
    }

    /// Pixels of image `i` as stored: 3072 bytes, CHW. Panics if `i >= len()`.
    pub fn chw(&self, i: usize) -> &[u8] {
        &self.pixels[i * PIXELS..(i + 1) * PIXELS]
    }
}

impl Dataset for Cifar {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn label(&self, i: usize) -> i64 {
        self.labels[i] as i64
    }

    fn num_classes(&self) -> usize {
        self.variant.num_classes()
    }

    fn describe(&self, i: usize) -> String {
        let f = self.files.partition_point(|(_, first)| *first <= i).max(1) - 1;
        let (path, first) = &self.files[f];
        format!("{} record {}", path.display(), i - first)
    }

    fn fingerprint(&self) -> String {
        let mut h = super::dataset::Digest::new();
        h.update(&self.pixels);
        h.update(&self.labels);
        h.hex()
    }

    fn size(&self, _i: usize) -> Result<(usize, usize)> {
        Ok((SIDE, SIDE))
    }

    fn load(&self, i: usize, _max_shrink: u32) -> Result<(Image, u32)> {
        let chw = self.chw(i);
        let plane = SIDE * SIDE;
        let mut pixels = Vec::with_capacity(PIXELS);
        for p in 0..plane {
            pixels.extend([chw[p], chw[plane + p], chw[2 * plane + p]]);
        }
        Ok((
            Image {
                height: SIDE,
                width: SIDE,
                channels: 3,
                pixels,
            },
            1,
        ))
    }
}
