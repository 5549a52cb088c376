//! The dataset and per-sample transform interfaces the loader works with.
//!
//! A [`Dataset`] gives, for sample `i`, its label, a name for error messages, its
//! full-resolution size without decoding pixels, and its pixels — possibly decoded at a
//! reduced scale (JPEG DCT scaling) when the transform says a smaller image suffices. A
//! [`SampleTransform`] turns one sample into a normalised `[3, S, S]` float image.

use crate::error::Result;
use crate::rng::Rng;

/// A decoded image: row-major `height x width x channels` bytes, 1 (grey) or 3 (RGB) channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// `height * width * channels` bytes, HWC.
    pub pixels: Vec<u8>,
}

/// The incremental SHA-256 behind [`Dataset::fingerprint`] (its first 16 hex digits).
pub struct Digest(sha2::Sha256);

impl Digest {
    /// An empty digest.
    pub fn new() -> Self {
        use sha2::Digest as _;
        Digest(sha2::Sha256::new())
    }

    /// Adds `bytes`, framed by their length (so `ab`+`c` and `a`+`bc` differ).
    pub fn update(&mut self, bytes: &[u8]) {
        use sha2::Digest as _;
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    /// The first 16 hex digits.
    pub fn hex(self) -> String {
        use sha2::Digest as _;
        self.0.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

/// The [`Dataset::fingerprint`] of `n` samples of these names and labels.
pub fn fingerprint_of(n: usize, name: impl Fn(usize) -> String, label: impl Fn(usize) -> i64) -> String {
    let mut h = Digest::new();
    h.update(&(n as u64).to_le_bytes());
    for i in 0..n {
        h.update(name(i).as_bytes());
        h.update(&label(i).to_le_bytes());
    }
    h.hex()
}

/// A dataset's [`Dataset::fingerprint`] now and, where they differ, those earlier versions
/// recorded of the same images ([`Dataset::earlier_fingerprints`]): what a record (a
/// checkpoint's position, an evaluation's `eval.json`) is compared with.
#[derive(Debug, Clone, PartialEq)]
pub struct Fingerprints {
    /// [`Dataset::fingerprint`].
    pub now: String,
    /// [`Dataset::earlier_fingerprints`].
    pub earlier: Vec<String>,
}

impl Fingerprints {
    /// The fingerprints of `ds`.
    pub fn of(ds: &dyn Dataset) -> Self {
        Self { now: ds.fingerprint(), earlier: ds.earlier_fingerprints() }
    }

    /// Whether a record of `recorded` is of these images.
    pub fn match_record(&self, recorded: &str) -> bool {
        self.now == recorded || self.earlier.iter().any(|f| f == recorded)
    }

    /// Whether a checkpoint's position recording `id` ([`crate::checkpoint::state::stage_id`]
    /// of a fingerprint) is of these images.
    pub fn match_id(&self, id: u64) -> bool {
        use crate::checkpoint::state::stage_id;
        stage_id(&self.now) == id || self.earlier.iter().any(|f| stage_id(f) == id)
    }
}

impl Default for Digest {
    fn default() -> Self {
        Self::new()
    }
}

/// Shrink factors a decoder may apply (JPEG DCT scaling: 1/1, 1/2, 1/4, 1/8).
pub const SHRINK_FACTORS: [u32; 4] = [1, 2, 4, 8];

/// A labelled image dataset.
pub trait Dataset: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;

    /// True when there is no sample.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Class index of sample `i`.
    fn label(&self, i: usize) -> i64;

    /// Number of classes.
    fn num_classes(&self) -> usize;

    /// What to call sample `i` in an error message (its file, or dataset and index).
    fn describe(&self, i: usize) -> String;

    /// Full-resolution (height, width) of sample `i`, reading as little as possible.
    fn size(&self, i: usize) -> Result<(usize, usize)>;

    /// A digest of the samples (16 hex digits), which caches of what is computed from them
    /// (the evaluations' frozen features) are keyed by. This default hashes each sample's
    /// name ([`Dataset::describe`]) and label: for images read one file each, a file added,
    /// removed, renamed or moved to another class changes it (an image rewritten in place under
    /// its name does not). Datasets held in memory hash their bytes instead.
    fn fingerprint(&self) -> String {
        fingerprint_of(self.len(), |i| self.describe(i), |i| self.label(i))
    }

    /// The fingerprints earlier versions recorded of these images, where they differ from
    /// [`Dataset::fingerprint`]: before 2026-12-06 an image folder hashed its files' names
    /// under its root as the file spells it, so `./data` and `data` (one stage hash) gave two
    /// (it now hashes them under the root as stage hashes spell it,
    /// [`ijepa_dsl::config::path_alike`]); until 2026-12-07 the images `limit` keeps of a
    /// folder were known by the whole folder's fingerprint. A record of an earlier version (a
    /// checkpoint's position, an evaluation's record) that matches one is of the same images.
    fn earlier_fingerprints(&self) -> Vec<String> {
        Vec::new()
    }

    /// The fingerprint of the samples at `indices` (and their [`Dataset::earlier_fingerprints`]
    /// as a folder of the root spelled as written gave them), where this data set is known by
    /// its images' names, one file each: a hash of theirs alone, which images outside them do
    /// not change (an image added to a folder past `limit` changed the fingerprint of the
    /// images kept, and a resume of the run was refused as over "other images"). `None` for
    /// data read from one file, hashed whole.
    fn fingerprint_at(&self, _indices: &[usize]) -> Option<(String, Vec<String>)> {
        None
    }

    /// The samples known, before they are read, not to be readable images (index, why): an
    /// image folder's links to nothing and files of formats not decoded, found when listed.
    fn unreadable(&self) -> Vec<(usize, &'static str)> {
        Vec::new()
    }

    /// The name of class `c` where the data names its classes (an image folder's class
    /// folder), for messages.
    fn class_name(&self, _c: i64) -> Option<String> {
        None
    }

    /// Reads the first bytes of sample `i` where it is a file of its own, refusing one that is
    /// no JPEG or PNG file (the decoded formats): a cheap check of a whole split before hours of
    /// pretraining (a damaged image of the right kind is found only when decoded). Datasets
    /// held in memory have nothing to check.
    fn check_format(&self, _i: usize) -> Result<()> {
        Ok(())
    }

    /// Whether two samples can be one file (a list naming a file twice); `false` for a
    /// dataset whose samples are distinct by construction (a folder's files, a file's records).
    fn may_repeat(&self) -> bool {
        false
    }

    /// Decodes sample `i`. The decoder may shrink the image by any factor of
    /// [`SHRINK_FACTORS`] up to `max_shrink` (1 = full resolution); returns the image and the
    /// factor it applied (the image's size is then about the full size divided by it).
    fn load(&self, i: usize, max_shrink: u32) -> Result<(Image, u32)>;
}

/// A per-sample transform to a normalised `[3, S, S]` float image, or to several views of
/// one image (multi-crop: [`SampleTransform::view_sizes`]).
pub trait SampleTransform: Send + Sync {
    /// Output side S (of the first view).
    fn size(&self) -> usize;

    /// The side of every view it writes per sample, in order: one `[3, S_v, S_v]` image per
    /// entry, written one after the other into `out` (multi-view recipes such as DINO). The
    /// default is one view of [`SampleTransform::size`].
    fn view_sizes(&self) -> Vec<usize> {
        vec![self.size()]
    }

    /// Floats written per sample: `3 * sum(S_v^2)`.
    fn sample_len(&self) -> usize {
        self.view_sizes().iter().map(|s| 3 * s * s).sum()
    }

    /// Writes the transformed sample `i` of `ds` into `out` (length [`SampleTransform::sample_len`]), drawing
    /// any randomness from `rng` (keyed by epoch and sample by the caller).
    fn apply(&self, rng: &mut Rng, ds: &dyn Dataset, i: usize, out: &mut [f32]) -> Result<()>;
}
