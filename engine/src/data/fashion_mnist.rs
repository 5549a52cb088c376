//! Fashion-MNIST (Xiao, Rasul, Vollgraf 2017; Zalando Research, MIT licence): 28x28 grey
//! images of 10 clothing classes, from a folder of idx(.gz) files or from the small subset
//! embedded in the binary.
//!
//! Plays the role of the official `src/datasets/imagenet1k.py` dataset (an indexable set of
//! (image, label) pairs); the transform and the sampler live in [`super::transform`] and
//! [`super::loader`]. The embedded subset (`data/fashion-mnist-subset/`, made by
//! `scripts/make-fmnist-subset.py`: the first 1,000 training / 200 test images of each class in
//! file order) needs nothing installed and works from any working directory.

use std::path::{Path, PathBuf};

use ijepa_dsl::config::DataSource;

use super::idx::{self, MAGIC_IMAGES, MAGIC_LABELS};
use crate::error::{Error, Result};

/// Which half of the dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training split (`train-*`; 60,000 images, 10,000 in the embedded subset).
    Train,
    /// The test split (`t10k-*`; 10,000 images, 2,000 in the embedded subset).
    Test,
}

impl Split {
    /// File-name prefix of the split (`train` or `t10k`).
    pub fn prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }

    /// Standard file name of the split's images (`train-images-idx3-ubyte.gz`).
    pub fn images_file(self) -> String {
        format!("{}-images-idx3-ubyte.gz", self.prefix())
    }

    /// Standard file name of the split's labels (`train-labels-idx1-ubyte.gz`).
    pub fn labels_file(self) -> String {
        format!("{}-labels-idx1-ubyte.gz", self.prefix())
    }
}

const EMB_TRAIN_IMAGES: &[u8] =
    include_bytes!("../../../data/fashion-mnist-subset/train-images-idx3-ubyte.gz");
const EMB_TRAIN_LABELS: &[u8] =
    include_bytes!("../../../data/fashion-mnist-subset/train-labels-idx1-ubyte.gz");
const EMB_TEST_IMAGES: &[u8] =
    include_bytes!("../../../data/fashion-mnist-subset/t10k-images-idx3-ubyte.gz");
const EMB_TEST_LABELS: &[u8] =
    include_bytes!("../../../data/fashion-mnist-subset/t10k-labels-idx1-ubyte.gz");

/// An in-memory Fashion-MNIST split: `len()` grey images of `rows x cols` bytes with labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FashionMnist {
    /// Pixels, row-major, `len() * rows * cols` bytes (0 = background, 255 = ink).
    pub images: Vec<u8>,
    /// Class of each image, `0..NUM_CLASSES`.
    pub labels: Vec<u8>,
    /// Image height (28).
    pub rows: usize,
    /// Image width (28).
    pub cols: usize,
}

impl FashionMnist {
    /// Number of classes.
    pub const NUM_CLASSES: usize = 10;

    /// Class names, indexed by label.
    pub const CLASS_NAMES: [&'static str; 10] = [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ];

    /// Loads a split from `source`: the embedded subset, or a folder holding the standard
    /// files (`train-images-idx3-ubyte.gz` etc., or the same names without `.gz`).
    pub fn load(source: &DataSource, split: Split) -> Result<Self> {
        match source {
            DataSource::Embedded => Self::embedded(split),
            DataSource::Path(dir) => Self::from_dir(dir, split),
        }
    }

    /// The embedded subset (10,000 training / 2,000 test images, 10 balanced classes).
    pub fn embedded(split: Split) -> Result<Self> {
        let (images, labels) = match split {
            Split::Train => (EMB_TRAIN_IMAGES, EMB_TRAIN_LABELS),
            Split::Test => (EMB_TEST_IMAGES, EMB_TEST_LABELS),
        };
        let name = |f: String| format!("embedded data/fashion-mnist-subset/{f}");
        Self::from_idx_bytes(
            images,
            labels,
            &name(split.images_file()),
            &name(split.labels_file()),
        )
    }

    /// Loads a split from the folder `dir`.
    pub fn from_dir(dir: &Path, split: Split) -> Result<Self> {
        let images_path = find_file(dir, &split.images_file())?;
        let labels_path = find_file(dir, &split.labels_file())?;
        let images = std::fs::read(&images_path).map_err(|e| Error::io(&images_path, e))?;
        let labels = std::fs::read(&labels_path).map_err(|e| Error::io(&labels_path, e))?;
        Self::from_idx_bytes(
            &images,
            &labels,
            &images_path.display().to_string(),
            &labels_path.display().to_string(),
        )
    }

    /// Builds a split from the bytes of an idx image file and an idx label file (plain or
    /// gzip); the names are used in errors.
    pub fn from_idx_bytes(
        images: &[u8],
        labels: &[u8],
        images_name: &str,
        labels_name: &str,
    ) -> Result<Self> {
        let im = idx::parse(images, MAGIC_IMAGES, images_name)?;
        let lb = idx::parse(labels, MAGIC_LABELS, labels_name)?;
        let (n, rows, cols) = (im.dims[0], im.dims[1], im.dims[2]);
        // every MNIST-family set is 28x28; a header saying otherwise over the same bytes read
        // the images at another shape, without a word (and the test split apart from the
        // training one's)
        if (rows, cols) != (28, 28) {
            return Err(Error::Data(format!(
                "{images_name}: its header gives images of {rows}x{cols}; the MNIST family's idx files hold 28x28 images \
                 (another size is an image folder's: `data \"image-folder\"`)"
            )));
        }
        // (an empty split was "loader: the dataset is empty", naming no file)
        if n == 0 {
            return Err(Error::Data(format!("{images_name}: its header gives 0 images: an empty idx file (truncated when written?)")));
        }
        if lb.dims[0] != n {
            return Err(Error::Data(format!(
                "{images_name} holds {n} images but {labels_name} holds {} labels",
                lb.dims[0]
            )));
        }
        if let Some((i, &l)) = lb
            .data
            .iter()
            .enumerate()
            .find(|(_, &l)| l as usize >= Self::NUM_CLASSES)
        {
            return Err(Error::Data(format!(
                "{labels_name}: label {l} of item {i} is not a class (0 to {})",
                Self::NUM_CLASSES - 1
            )));
        }
        Ok(Self {
            images: im.data,
            labels: lb.data,
            rows,
            cols,
        })
    }

    /// Keeps only the first `limit` images (all of them for `None` or a larger limit).
    pub fn limit(mut self, limit: Option<usize>) -> Self {
        if let Some(n) = limit {
            if n < self.len() {
                self.images.truncate(n * self.rows * self.cols);
                self.labels.truncate(n);
            }
        }
        self
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there is no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels of image `i` (`rows * cols` bytes, row-major). Panics if `i >= len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        let s = self.rows * self.cols;
        &self.images[i * s..(i + 1) * s]
    }

    /// Label of image `i`. Panics if `i >= len()`.
    pub fn label(&self, i: usize) -> u8 {
        self.labels[i]
    }
}

/// `dir/name` if it exists, else `dir/name` without its `.gz`, else a not-found error
/// naming both.
fn find_file(dir: &Path, name: &str) -> Result<PathBuf> {
    let gz = dir.join(name);
    if gz.is_file() {
        return Ok(gz);
    }
    let plain = dir.join(name.trim_end_matches(".gz"));
    if plain.is_file() {
        return Ok(plain);
    }
    // there, but no file (a folder, a named pipe, a link to nothing): said as such
    super::no_file_among(&[&gz, &plain])?;
    let why = if dir.is_dir() {
        format!("no such file (nor {})", plain.display())
    } else {
        format!("the folder {} does not exist", dir.display())
    };
    Err(Error::io(
        gz,
        std::io::Error::new(std::io::ErrorKind::NotFound, why),
    ))
}

impl super::dataset::Dataset for FashionMnist {
    fn len(&self) -> usize {
        FashionMnist::len(self)
    }

    fn label(&self, i: usize) -> i64 {
        FashionMnist::label(self, i) as i64
    }

    fn num_classes(&self) -> usize {
        Self::NUM_CLASSES
    }

    fn describe(&self, i: usize) -> String {
        format!("Fashion-MNIST image #{i}")
    }

    fn fingerprint(&self) -> String {
        let mut h = super::dataset::Digest::new();
        h.update(&(self.rows as u64).to_le_bytes());
        h.update(&(self.cols as u64).to_le_bytes());
        h.update(&self.images);
        h.update(&self.labels);
        h.hex()
    }

    fn size(&self, _i: usize) -> Result<(usize, usize)> {
        Ok((self.rows, self.cols))
    }

    /// Grey images are stored decoded: the shrink hint is ignored (factor 1).
    fn load(&self, i: usize, _max_shrink: u32) -> Result<(super::dataset::Image, u32)> {
        if i >= FashionMnist::len(self) {
            return Err(Error::Data(format!("Fashion-MNIST has {} images, no #{i}", FashionMnist::len(self))));
        }
        let img = super::dataset::Image { height: self.rows, width: self.cols, channels: 1, pixels: self.image(i).to_vec() };
        Ok((img, 1))
    }
}

#[cfg(test)]
mod tests {
    /// The subset's README gives each file's SHA-256 (what `scripts/make-fmnist-subset.py`
    /// reproduces): those of the files embedded (they were the earlier, smaller subset's).
    #[test]
    fn the_readme_names_the_embedded_files_hashes() {
        use sha2::{Digest, Sha256};
        let readme = include_str!("../../../data/fashion-mnist-subset/README.md");
        let files: [(&str, &[u8]); 4] = [
            ("train-images-idx3-ubyte.gz", super::EMB_TRAIN_IMAGES),
            ("train-labels-idx1-ubyte.gz", super::EMB_TRAIN_LABELS),
            ("t10k-images-idx3-ubyte.gz", super::EMB_TEST_IMAGES),
            ("t10k-labels-idx1-ubyte.gz", super::EMB_TEST_LABELS),
        ];
        for (name, bytes) in files {
            let line = readme.lines().find(|l| l.starts_with(name) && l.contains("sha256")).unwrap_or_else(|| panic!("{name}: no hash line"));
            let said = line.split_whitespace().last().unwrap();
            let hex: String = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(said, hex, "{name}");
        }
    }

    use super::*;
    use ijepa_dsl::config::DataConfig;

    #[test]
    fn embedded_subset_is_balanced() {
        for (split, per_class) in [(Split::Train, 1000), (Split::Test, 200)] {
            let ds = FashionMnist::load(&DataSource::Embedded, split).unwrap();
            assert_eq!((ds.rows, ds.cols), (28, 28));
            assert_eq!(ds.len(), per_class * 10);
            if split == Split::Train {
                // (what `ijepa check` counts on without reading it)
                assert_eq!(ds.len(), ijepa_dsl::config::EMBEDDED_FASHION_MNIST_TRAIN);
            }
            assert_eq!(ds.images.len(), ds.len() * 28 * 28);
            let mut counts = [0usize; 10];
            for &l in &ds.labels {
                counts[l as usize] += 1;
            }
            assert_eq!(counts, [per_class; 10]);
            // real images: mostly background with some ink
            let mean = ds.images.iter().map(|&p| p as f64).sum::<f64>() / ds.images.len() as f64;
            assert!((40.0..110.0).contains(&mean), "{mean}");
        }
    }

    #[test]
    fn limit_keeps_the_first_images() {
        let ds = FashionMnist::embedded(Split::Train).unwrap();
        let small = ds.clone().limit(Some(5));
        assert_eq!(small.len(), 5);
        assert_eq!(small.image(4), ds.image(4));
        assert_eq!(small.labels[..], ds.labels[..5]);
        assert_eq!(ds.clone().limit(Some(1_000_000)).len(), ds.len());
        assert_eq!(ds.clone().limit(None).len(), ds.len());
        let cfg = DataConfig {
            limit: Some(7),
            ..DataConfig::default()
        };
        // `limit` applies to the training split only (crate::data::open_dataset)
        assert_eq!(crate::data::open_dataset(&cfg, Split::Train).unwrap().len(), 7);
        assert_eq!(crate::data::open_dataset(&cfg, Split::Test).unwrap().len(), 2000);
    }

    #[test]
    fn folder_source_reads_gz_or_plain_and_reports_missing_files() {
        let dir = std::env::temp_dir().join(format!("ijepa-fmnist-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // gz copies of the embedded test split, and a plain copy of the labels
        std::fs::write(dir.join("t10k-images-idx3-ubyte.gz"), EMB_TEST_IMAGES).unwrap();
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(EMB_TEST_LABELS), &mut plain).unwrap();
        std::fs::write(dir.join("t10k-labels-idx1-ubyte"), &plain).unwrap();
        let a = FashionMnist::load(&DataSource::Path(dir.clone()), Split::Test).unwrap();
        assert_eq!(a, FashionMnist::embedded(Split::Test).unwrap());
        let e = FashionMnist::load(&DataSource::Path(dir.clone()), Split::Train).unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e:?}");
        assert!(e.to_string().contains("train-images-idx3-ubyte.gz"), "{e}");
        // mismatched counts
        let mut lab = plain.to_vec();
        lab[7] = 99; // header now says 1891 labels for 2000 bytes
        std::fs::write(dir.join("t10k-labels-idx1-ubyte"), &lab).unwrap();
        let e = FashionMnist::load(&DataSource::Path(dir.clone()), Split::Test).unwrap_err();
        assert!(e.to_string().contains("t10k-labels-idx1-ubyte"), "{e}");
        // no images: said with the file (it was the loader's "the dataset is empty")
        let empty = |magic: u32, dims: &[u32]| magic.to_be_bytes().into_iter().chain(dims.iter().flat_map(|d| d.to_be_bytes())).collect::<Vec<u8>>();
        let e = FashionMnist::from_idx_bytes(&empty(idx::MAGIC_IMAGES, &[0, 28, 28]), &empty(idx::MAGIC_LABELS, &[0]), "i.idx", "l.idx").unwrap_err();
        assert!(e.to_string().contains("i.idx: its header gives 0 images"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
        let e = FashionMnist::load(&DataSource::Path(dir.clone()), Split::Test).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }

    #[test]
    fn bad_labels_are_rejected() {
        let mut lab = 0x0000_0801u32.to_be_bytes().to_vec();
        lab.extend_from_slice(&1u32.to_be_bytes());
        lab.push(12);
        let images = |rows: u32, cols: u32| {
            let mut img = 0x0000_0803u32.to_be_bytes().to_vec();
            for d in [1u32, rows, cols] {
                img.extend_from_slice(&d.to_be_bytes());
            }
            img.extend_from_slice(&vec![0; (rows * cols) as usize]);
            img
        };
        let e = FashionMnist::from_idx_bytes(&images(28, 28), &lab, "i", "l").unwrap_err();
        assert!(e.to_string().contains("label 12"), "{e}");
        // the same 784 bytes under a header of 14x56 (they were read at that shape)
        let e = FashionMnist::from_idx_bytes(&images(14, 56), &lab, "i", "l").unwrap_err();
        assert!(e.to_string().contains("images of 14x56; the MNIST family's idx files hold 28x28"), "{e}");
    }

    /// The full dataset from Debian's `dataset-fashion-mnist`, when installed. CI sets
    /// IJEPA_REQUIRE_FULL_DATA=1 (it installs the package), so there a missing set fails
    /// instead of skipping.
    #[test]
    fn debian_full_dataset_when_installed() {
        let dir = PathBuf::from("/usr/share/datasets/fashion-mnist");
        if !dir.join("train-images-idx3-ubyte.gz").is_file() {
            assert!(std::env::var_os("IJEPA_REQUIRE_FULL_DATA").is_none(), "{} is not installed (IJEPA_REQUIRE_FULL_DATA is set)", dir.display());
            eprintln!("skipped: {} not installed", dir.display());
            return;
        }
        let test = FashionMnist::load(&DataSource::Path(dir), Split::Test).unwrap();
        assert_eq!(test.len(), 10_000);
        // the embedded subset is the first 200 per class in file order
        let sub = FashionMnist::embedded(Split::Test).unwrap();
        let mut seen = [0usize; 10];
        let mut k = 0;
        for i in 0..test.len() {
            let l = test.label(i) as usize;
            if seen[l] < 200 {
                seen[l] += 1;
                assert_eq!(sub.image(k), test.image(i));
                assert_eq!(sub.label(k), test.label(i));
                k += 1;
            }
        }
        assert_eq!(k, 2000);
    }
}
