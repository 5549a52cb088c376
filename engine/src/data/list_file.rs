//! A subset of an [`ImageFolder`] named by a list file: the standard ImageNet low-shot
//! subsets (`1percent.txt`, `10percent.txt` of SimCLR / the official I-JEPA low-shot
//! evaluation), one file name per line like `n01440764_10026.JPEG`, its class the prefix
//! before the first `_`.
//!
//! Mirrors the official `ImageNetSubset` (`src/datasets/imagenet1k.py`): samples in the order
//! of the list (duplicates kept), with the base folder's labels.

use std::path::Path;

use super::dataset::{Dataset, Image};
use super::image_folder::ImageFolder;
use crate::error::{Error, Result};

/// The samples of an [`ImageFolder`] listed in a file; implements [`Dataset`].
#[derive(Debug, Clone)]
pub struct Subset {
    base: ImageFolder,
    /// Base sample index of each subset sample.
    indices: Vec<usize>,
}

/// A list line as an error shows it: control characters escaped (a NUL or a terminal escape
/// sequence was printed raw), at most 200 characters (a 100,000-character line was printed
/// whole).
fn shown_line(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut out: String = text.chars().take(200).flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] }).collect();
    if text.chars().count() > 200 {
        out.push_str(&format!("... ({} characters)", text.chars().count()));
    }
    out
}

/// The first ten of an error's `lines`, joined by "; " (and "; ..." after them when there are
/// more).
fn first_lines(lines: &[String]) -> String {
    let shown: Vec<&str> = lines.iter().take(10).map(String::as_str).collect();
    format!("{}{}", shown.join("; "), if lines.len() > 10 { "; ..." } else { "" })
}

impl Subset {
    /// Selects from `base` the files named in `list` (blank lines ignored). A line naming no
    /// file of `base` (no class folder of that prefix, or no such file in it) is an error
    /// naming the list, the line numbers and the names; so is an empty list.
    ///
    /// A file named twice is kept twice (the official `ImageNetSubset` trains on each line);
    /// [`Subset::from_list_once`] refuses it.
    pub fn from_list(base: ImageFolder, list: &Path) -> Result<Self> {
        Self::read(base, list, false)
    }

    /// [`Subset::from_list`] where a file named by two lines is an error naming both: a
    /// low-shot `split-file` fitted such an image twice, and its cross-validation scored each
    /// copy against its twin.
    pub fn from_list_once(base: ImageFolder, list: &Path) -> Result<Self> {
        Self::read(base, list, true)
    }

    fn read(base: ImageFolder, list: &Path, once: bool) -> Result<Self> {
        // read as bytes, as the OS names files (a class folder whose name is not UTF-8 is
        // named so in the list too)
        let bytes = std::fs::read(list).map_err(|e| Error::io(list, e))?;
        // a byte-order mark (a list saved by a Windows editor) is no part of the first name
        let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
        let mut indices = Vec::new();
        let mut missing = Vec::new();
        let mut ambiguous = Vec::new();
        // the line that first named each file (`once`)
        let mut first_line: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
        let mut repeated = Vec::new();
        // every file name of the folder, built at the first line the ImageNet rule does not
        // find (class folders with `_` in their names, other naming schemes)
        let mut by_name: Option<std::collections::HashMap<&[u8], Vec<usize>>> = None;
        for (n, line) in text.split(|&b| b == b'\n').enumerate() {
            let name = line.trim_ascii();
            if name.is_empty() {
                continue;
            }
            let shown = shown_line(name);
            // the folder's files of that name when the ImageNet rule finds none
            let found = match find(&base, name) {
                Some(i) => Ok(i),
                None => {
                    let names = by_name.get_or_insert_with(|| {
                        let mut m: std::collections::HashMap<&[u8], Vec<usize>> = std::collections::HashMap::new();
                        for i in 0..base.len() {
                            m.entry(base.file_name(i).as_encoded_bytes()).or_default().push(i);
                        }
                        m
                    });
                    match names.get(name).map(Vec::as_slice) {
                        Some([i]) => Ok(*i),
                        Some([first, .., last]) => Err(Some((*first, *last))),
                        _ => Err(None),
                    }
                }
            };
            match found {
                Ok(i) if !once => indices.push(i),
                Ok(i) => match first_line.entry(i) {
                    std::collections::hash_map::Entry::Occupied(e) => repeated.push(format!("line {}: {shown} (the file of line {})", n + 1, e.get() + 1)),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(n);
                        indices.push(i);
                    }
                },
                Err(Some((first, last))) => {
                    // (its path under the root: two files of one class folder's sub-folders
                    // read "in nest and nest", and `nest/y.jpg` named neither)
                    let path = |i: usize| format!("{}/{}", base.classes()[base.label(i) as usize], shown_line(base.relative_path(i).as_encoded_bytes()));
                    ambiguous.push(format!("line {}: {shown} ({} and {})", n + 1, path(first), path(last)));
                }
                Err(None) => missing.push(format!("line {}: {shown}", n + 1)),
            }
        }
        if !ambiguous.is_empty() {
            return Err(Error::Data(format!(
                "{}: {} line(s) name a file that several folders of {} hold: {} (write the line as the file's path under it, `CLASS/FILE`)",
                list.display(),
                ambiguous.len(),
                base.root().display(),
                first_lines(&ambiguous)
            )));
        }
        if !missing.is_empty() {
            return Err(Error::Data(format!(
                "{}: {} line(s) name no file of {}: {} (a line is a file name, found in the class folder its prefix before the first `_` names \
                 (ImageNet's `n01440764_10026.JPEG`), else in the one class folder holding a file of that name; or a path `CLASS/FILE`)",
                list.display(),
                missing.len(),
                base.root().display(),
                first_lines(&missing)
            )));
        }
        if !repeated.is_empty() {
            return Err(Error::Data(format!(
                "{}: {} line(s) name a file an earlier line names: {} (a split file names each labelled image once)",
                list.display(),
                repeated.len(),
                first_lines(&repeated)
            )));
        }
        if indices.is_empty() {
            return Err(Error::Data(format!(
                "{}: the list names no file",
                list.display()
            )));
        }
        Ok(Self { base, indices })
    }

    /// The underlying folder.
    pub fn base(&self) -> &ImageFolder {
        &self.base
    }

    /// Base index of subset sample `i`. Panics if `i >= len()`.
    pub fn base_index(&self, i: usize) -> usize {
        self.indices[i]
    }
}

/// Base index of the file called `name` in the class folder named by its prefix, or of the
/// path `CLASS/FILE` (relative to the class folder); names compared as the OS's bytes. Both
/// searched by halves (a `CLASS/FILE` line searched every class folder, then every file of its
/// class, in turn: 39 s for 200,000 lines of 10,000 classes, where plain names took 2 s).
fn find(base: &ImageFolder, name: &[u8]) -> Option<usize> {
    if let Some(at) = name.iter().position(|&b| b == b'/') {
        let (class, rest) = (&name[..at], &name[at + 1..]);
        return in_class(base, class_index(base, class)?, rest, |i| base.relative_path(i).as_encoded_bytes() == rest);
    }
    let class = name.split(|&b| b == b'_').next()?;
    // nested folders: any file of that name
    in_class(base, class_index(base, class)?, name, |i| base.file_name(i).as_encoded_bytes() == name)
}

/// Whether `a` comes before `b` in the order of the folder's names: Python's sorted() (byte
/// order for UTF-8 names; a search in byte order missed names that are not UTF-8).
fn before(a: &[u8], b: &[u8]) -> bool {
    crate::data::image_folder::python_order(a, b) == std::cmp::Ordering::Less
}

/// The class whose folder is named `class`, searched by halves (the class folders are sorted).
fn class_index(base: &ImageFolder, class: &[u8]) -> Option<usize> {
    let (mut lo, mut hi) = (0, base.num_classes());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if before(base.class_key(mid), class) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Some(lo).filter(|&c| c < base.num_classes() && base.class_key(c) == class)
}

/// The file of class `c` whose path relative to its class folder is `path`, searched by halves
/// (in a flat class folder the relative paths are the sorted file names); else the first one
/// `fits` (nested folders, walked in os.walk's order, which is not the paths' order).
fn in_class(base: &ImageFolder, c: usize, path: &[u8], fits: impl Fn(usize) -> bool) -> Option<usize> {
    let range = base.class_range(c);
    let (mut lo, mut hi) = (range.start, range.end);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if before(base.relative_path(mid).as_encoded_bytes(), path) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if lo < range.end && base.relative_path(lo).as_encoded_bytes() == path {
        return Some(lo);
    }
    range.into_iter().find(|&i| fits(i))
}

impl Dataset for Subset {
    fn len(&self) -> usize {
        self.indices.len()
    }

    fn label(&self, i: usize) -> i64 {
        self.base.label(self.indices[i])
    }

    fn num_classes(&self) -> usize {
        self.base.num_classes()
    }

    fn describe(&self, i: usize) -> String {
        self.base.describe(self.indices[i])
    }

    fn fingerprint(&self) -> String {
        self.base.fingerprint_over(self.len(), |i| self.indices[i])
    }

    fn earlier_fingerprints(&self) -> Vec<String> {
        self.base.earlier_over(self.len(), |i| self.indices[i])
    }

    fn fingerprint_at(&self, indices: &[usize]) -> Option<(String, Vec<String>)> {
        self.base.fingerprint_at(&indices.iter().map(|&i| self.indices[i]).collect::<Vec<_>>())
    }

    fn size(&self, i: usize) -> Result<(usize, usize)> {
        self.base.size(self.indices[i])
    }

    fn may_repeat(&self) -> bool {
        true
    }

    fn unreadable(&self) -> Vec<(usize, &'static str)> {
        super::selected_unreadable(&self.base, &self.indices)
    }

    fn check_format(&self, i: usize) -> Result<()> {
        self.base.check_format(self.indices[i])
    }

    fn class_name(&self, c: i64) -> Option<String> {
        self.base.class_name(c)
    }

    fn load(&self, i: usize, max_shrink: u32) -> Result<(Image, u32)> {
        self.base.load(self.indices[i], max_shrink)
    }
}

#[cfg(test)]
mod tests {
    use super::{shown_line, Subset};
    use crate::data::image_folder::{ImageFolder, OnError};

    /// A scratch folder `name` of two classes, `cat` (two empty files) and `dog` (one).
    fn cats_and_dogs(name: &str) -> crate::testdir::Scratch {
        let d = crate::testdir::scratch("list", name);
        for f in ["cat/cat_0.png", "cat/cat_1.png", "dog/dog_0.png"] {
            std::fs::create_dir_all(d.join(f).parent().unwrap()).unwrap();
            std::fs::write(d.join(f), b"").unwrap();
        }
        d
    }

    #[test]
    fn a_file_named_twice_in_a_split_is_an_error_naming_both_lines() {
        let d = cats_and_dogs("repeated");
        let list = d.join("split.txt");
        let subset = |text: &str| {
            std::fs::write(&list, text).unwrap();
            Subset::from_list_once(ImageFolder::open(&d, OnError::Fail).unwrap(), &list)
        };
        assert_eq!(subset("cat_0.png\ndog_0.png\n").unwrap().indices.len(), 2);
        // (a pretraining `subset` keeps both, as the official ImageNetSubset does)
        std::fs::write(&list, "cat_0.png\ncat_0.png\n").unwrap();
        assert_eq!(Subset::from_list(ImageFolder::open(&d, OnError::Fail).unwrap(), &list).unwrap().indices.len(), 2);
        // the same file, written alike or as CLASS/FILE
        let e = subset("cat_0.png\ndog_0.png\ncat_0.png\ncat/cat_0.png\n").unwrap_err().to_string();
        assert!(e.contains("2 line(s) name a file an earlier line names: line 3: cat_0.png (the file of line 1); line 4: cat/cat_0.png (the file of line 1)"), "{e}");
    }

    /// A root spelled with `.` components or repeated slashes (`./data`, one stage hash with
    /// `data`) gives the folder's and a list's fingerprint of the root spelled alike (it gave
    /// another: a resume refused "not the same ones" and a skip said the data changed); the
    /// fingerprint an earlier version recorded, over the names as written, stays reachable.
    #[test]
    fn a_root_spelled_otherwise_is_one_fingerprint() {
        use crate::data::dataset::{Dataset, Digest};
        let d = cats_and_dogs("spelled");
        let list = d.join("split.txt");
        std::fs::write(&list, "cat_1.png\ndog_0.png\n").unwrap();
        let spelled = std::path::PathBuf::from(format!("{}/.//", d.display()));
        let (alike, other) = (ImageFolder::open(&d, OnError::Fail).unwrap(), ImageFolder::open(&spelled, OnError::Fail).unwrap());
        assert!(other.describe(0).contains("/./"), "{}", other.describe(0));
        assert_eq!(alike.fingerprint(), other.fingerprint());
        assert_eq!(alike.earlier_fingerprints(), Vec::<String>::new());
        // (as the versions before computed it: each name as shown, and its label)
        let earlier = |ds: &dyn Dataset| {
            let mut h = Digest::new();
            h.update(&(ds.len() as u64).to_le_bytes());
            for i in 0..ds.len() {
                h.update(ds.describe(i).as_bytes());
                h.update(&ds.label(i).to_le_bytes());
            }
            h.hex()
        };
        assert_eq!(alike.fingerprint(), earlier(&alike));
        let written = other.earlier_fingerprints()[0].clone();
        assert!(written == earlier(&other) && written != other.fingerprint());
        let (alike, other) = (Subset::from_list(alike, &list).unwrap(), Subset::from_list(other, &list).unwrap());
        assert_eq!(alike.fingerprint(), other.fingerprint());
        assert_eq!(alike.fingerprint(), earlier(&alike));
        assert_eq!(alike.earlier_fingerprints(), Vec::<String>::new());
        let written = other.earlier_fingerprints()[0].clone();
        assert!(written == earlier(&other) && written != other.fingerprint());
    }

    /// The images `limit` keeps of a folder are known by their own names: an image added past
    /// them does not change their fingerprint (a resume was refused as over "other images");
    /// the fingerprint earlier versions recorded, of the whole folder, still matches.
    #[test]
    fn the_images_kept_are_known_by_their_own_names() {
        use crate::data::dataset::{Dataset, Fingerprints};
        let d = cats_and_dogs("kept");
        let kept = |d: &std::path::Path| {
            let folder: std::sync::Arc<dyn Dataset> = std::sync::Arc::new(ImageFolder::open(d, OnError::Fail).unwrap());
            crate::data::Indexed { inner: folder, indices: vec![0, 1] }
        };
        let before = kept(&d);
        let earlier = before.of(&before.inner.fingerprint());
        assert_ne!(before.fingerprint(), earlier);
        assert!(Fingerprints::of(&before).match_record(&earlier), "an earlier version's record still matches");
        // an image past the two kept
        std::fs::write(d.join("dog/dog_1.png"), b"").unwrap();
        let after = kept(&d);
        assert_eq!(after.fingerprint(), before.fingerprint());
        // ... and the monitor's split of them, nested, too
        let nested = |k: crate::data::Indexed| crate::data::Indexed { inner: std::sync::Arc::new(k), indices: vec![1] };
        assert_eq!(nested(kept(&d)).fingerprint(), crate::data::dataset::fingerprint_of(1, |_| ImageFolder::open(&d, OnError::Fail).unwrap().name_alike(1), |_| 0));
        // one among them is another image
        std::fs::write(d.join("cat/cat_00.png"), b"").unwrap();
        assert_ne!(kept(&d).fingerprint(), before.fingerprint());
    }

    /// A link to nothing that the listing found is said to be one when read (it was said to
    /// have been "removed or renamed since"); a file gone since it was listed still is.
    #[test]
    fn a_link_to_nothing_is_said_so_when_read() {
        use crate::data::dataset::Dataset;
        let d = cats_and_dogs("dangling");
        std::os::unix::fs::symlink(d.join("nowhere.png"), d.join("cat/cat_2.png")).unwrap();
        let ds = ImageFolder::open(&d, OnError::Skip).unwrap();
        let at = |name: &str| (0..ds.len()).find(|&i| ds.describe(i).ends_with(name)).unwrap();
        let e = ds.size(at("cat_2.png")).unwrap_err().to_string();
        assert!(e.contains("cat_2.png: cannot be read") && e.ends_with("(a symbolic link to nothing)"), "{e}");
        std::fs::remove_file(d.join("dog/dog_0.png")).unwrap();
        let e = ds.size(at("dog_0.png")).unwrap_err().to_string();
        assert!(e.ends_with("(it was there when the folder was listed: removed or renamed since?)"), "{e}");
    }

    #[test]
    fn list_lines_are_shown_escaped_and_cut() {
        assert_eq!(shown_line(b"n01440764/x.JPEG"), "n01440764/x.JPEG");
        assert_eq!(shown_line(b"a\x00b\x1b[31m"), "a\\u{0}b\\u{1b}[31m");
        let long = shown_line(&[b'a'; 100_000]);
        assert!(long.starts_with(&"a".repeat(200)) && long.ends_with("... (100000 characters)") && long.len() < 300, "{long}");
    }
}
