//! A folder of class sub-folders of image files: the ImageNet (IN-1K, IN-22K) and torchvision
//! `ImageFolder` layout (`root/<class>/<file>`).
//!
//! Mirrors `torchvision.datasets.ImageFolder` as used by the official
//! `src/datasets/imagenet1k.py`: the classes are the immediate sub-folders of the root sorted
//! by name (as `sorted(os.scandir(root))` orders them: [`python_order`]), class index = position in that order;
//! the samples of a class are the files under its folder (recursively, symlinks followed, as
//! `os.walk(followlinks=True)`) whose name ends, case-insensitively, with one of
//! torchvision's `IMG_EXTENSIONS`, in the order `sorted(os.walk(...))` then `sorted(fnames)`
//! gives. Only JPEG and PNG are decoded (told by their bytes, see [`super::decode`]): a file
//! of another format under one of the other extensions (`.bmp`, `.tif`, `.webp`...) and a
//! symbolic link to nothing are found when the folder is listed ([`Dataset::unreadable`],
//! which `super::open_dataset` acts on for the samples it keeps); one under
//! `.jpg`/`.jpeg`/`.png` fails at load with an "unsupported format" error.
//!
//! Built for IN-22K scale (~14M files in ~21k classes): the index comes from `readdir` alone
//! (no per-file `stat`, except to follow a symlink), the class folders are listed by several
//! threads, and paths are kept as one byte arena of class-relative paths plus `u32` offsets
//! (~30 bytes per sample).

use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::dataset::{fingerprint_of, Dataset, Image};
use super::decode;
use crate::error::{Error, Result};
use ijepa_dsl::config::path_alike;

/// torchvision's `IMG_EXTENSIONS` (compared case-insensitively).
pub const IMG_EXTENSIONS: [&str; 9] = [
    ".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp",
];

/// What the loader does with a sample that fails to load (corrupt, truncated or of an
/// unsupported format). The dataset itself always returns the error; this is a setting the
/// loader reads from [`ImageFolder::on_error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OnError {
    /// Stop with the error (the default; what torchvision does).
    #[default]
    Fail,
    /// Log the error and replace the sample (the loader decides with what, e.g. the next one).
    Skip,
}

/// An image-folder dataset; see the module docs.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    root: PathBuf,
    classes: Vec<String>,
    /// Folder of each class (`root/<class>`, the exact OS name).
    class_dirs: Vec<PathBuf>,
    /// Sample indices of class `c`: `class_starts[c]..class_starts[c + 1]`.
    class_starts: Vec<usize>,
    /// Class-relative paths of all samples, concatenated (platform-encoded `OsStr` bytes).
    arena: Vec<u8>,
    /// Sample `i`'s path is `arena[ends[i - 1]..ends[i]]` (`0` for `i = 0`).
    ends: Vec<u32>,
    on_error: OnError,
    /// Samples that cannot be images, found when listed ([`Dataset::unreadable`]).
    unreadable: Vec<(usize, &'static str)>,
}

/// Bytes to read for a header before falling back to the whole file.
const HEADER_PREFIX: u64 = 64 * 1024;

fn has_image_extension(name: &[u8]) -> bool {
    has_extension(name, &IMG_EXTENSIONS)
}

/// Whether `name` ends, case-insensitively, with one of `extensions`.
fn has_extension(name: &[u8], extensions: &[&str]) -> bool {
    extensions.iter().any(|ext| {
        name.len() >= ext.len()
            && name[name.len() - ext.len()..].eq_ignore_ascii_case(ext.as_bytes())
    })
}

/// What a directory entry is, following a symbolic link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryKind {
    Folder,
    File,
    /// A named pipe, a socket or a device.
    Special,
    /// A symbolic link to nothing.
    Broken,
}

/// The entry's kind and whether it is a symbolic link (one `stat` for a link, none otherwise).
fn entry_kind(entry: &fs::DirEntry) -> std::io::Result<(EntryKind, bool)> {
    let ft = entry.file_type()?;
    let kind = if ft.is_symlink() {
        match fs::metadata(entry.path()) {
            Ok(m) if m.is_dir() => EntryKind::Folder,
            Ok(m) if m.is_file() => EntryKind::File,
            Ok(_) => EntryKind::Special,
            Err(_) => EntryKind::Broken,
        }
    } else if ft.is_dir() {
        EntryKind::Folder
    } else if ft.is_file() {
        EntryKind::File
    } else {
        EntryKind::Special
    };
    Ok((kind, ft.is_symlink()))
}

/// Whether a file listed under an extension other than JPEG's and PNG's (`.bmp`, `.tif`,
/// `.webp`, ...) holds no JPEG or PNG: only those two are decoded (told by their bytes), so it
/// fails when read. Read at listing, from its first bytes (files under `.jpg`, `.jpeg`, `.png`
/// are not read here: the listing of ImageNet stays `readdir` alone).
fn undecodable(path: &Path, name: &[u8]) -> bool {
    if has_extension(name, &[".jpg", ".jpeg", ".png"]) {
        return false;
    }
    let mut head = [0u8; 8];
    let n = fs::File::open(path).and_then(|mut f| {
        let mut n = 0;
        while n < head.len() {
            match f.read(&mut head[n..])? {
                0 => break,
                k => n += k,
            }
        }
        Ok(n)
    });
    match n {
        Ok(n) => !matches!(decode::sniff(&head[..n]), decode::Format::Jpeg | decode::Format::Png),
        // (unreadable: said when read, with the cause)
        Err(_) => false,
    }
}

/// A class folder's listing: the class-relative paths of its image files, and those of the
/// listed files that cannot be read as images, each with why.
type ClassListing = (Vec<Vec<u8>>, std::collections::HashMap<Vec<u8>, &'static str>);

/// The class-relative paths of the image files under `dir`, in torchvision's order, and the
/// listed files that cannot be read as images (each with why): a symbolic link to nothing, a
/// file of a format not decoded ([`undecodable`]).
fn list_class(dir: &Path) -> Result<ClassListing> {
    // (by folder, then file name: made class-relative below)
    let mut unreadable: Vec<(Vec<u8>, Vec<u8>, &'static str)> = Vec::new();
    // (folder path relative to the class, sorted file names): os.walk then sorted()
    let mut folders: Vec<(Vec<u8>, Vec<Vec<u8>>)> = Vec::new();
    // each folder with the (device, inode) of the folders above it: a symbolic link back to one
    // of them is a loop, walked once (torchvision's os.walk would recurse until the OS stops it)
    type FolderId = (u64, u64);
    // ... and the folders above the class folder itself: a link in `dog/` to the image-folder
    // root walked every class's images as dogs (the loop was caught one level down)
    let ancestors: Vec<FolderId> = {
        use std::os::unix::fs::MetadataExt;
        let real = fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
        real.ancestors().skip(1).filter_map(|a| fs::metadata(a).ok()).map(|m| (m.dev(), m.ino())).collect()
    };
    let mut stack: Vec<(Vec<u8>, Vec<FolderId>)> = vec![(Vec::new(), ancestors)];
    let mut visited = 0usize;
    while let Some((rel, mut above)) = stack.pop() {
        visited += 1;
        if visited > 1_000_000 {
            return Err(Error::Data(format!(
                "{}: more than a million nested folders (a symlink loop?)",
                dir.display()
            )));
        }
        // SAFETY: `rel` is made only of `as_encoded_bytes` of OS strings joined by '/'.
        let rel_os = unsafe { OsStr::from_encoded_bytes_unchecked(&rel) };
        let path = if rel.is_empty() {
            dir.to_path_buf()
        } else {
            dir.join(rel_os)
        };
        {
            use std::os::unix::fs::MetadataExt;
            let m = fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
            let id = (m.dev(), m.ino());
            if above.contains(&id) {
                // (once a process, as the other listing warnings: a run lists a folder for its
                // check, its pretraining and each evaluation, and said it 3 times)
                let said = format!("{}: a symbolic link back to a folder above it (a loop): not followed (that folder's images are listed where it is)", path.display());
                super::warn_once(said.clone(), said);
                continue;
            }
            above.push(id);
        }
        let mut files = Vec::new();
        for entry in fs::read_dir(&path).map_err(|e| Error::io(&path, e))? {
            let entry = entry.map_err(|e| Error::io(&path, e))?;
            let name = entry.file_name();
            let name = name.as_encoded_bytes();
            let (kind, link) = entry_kind(&entry).map_err(|e| Error::io(entry.path(), e))?;
            if kind == EntryKind::Folder {
                let mut sub = rel.clone();
                if !sub.is_empty() {
                    sub.push(b'/');
                }
                sub.extend_from_slice(name);
                stack.push((sub, above.clone()));
            } else if has_image_extension(name) {
                // a named pipe, a socket or a device (itself, or behind a link) is no image, and
                // opening a pipe waits for a writer forever: refused by name, as listed
                if kind == EntryKind::Special {
                    return Err(Error::Data(format!(
                        "{}: not a regular file (a named pipe, a socket or a device{}): it cannot be an image, and reading a pipe waits forever; move it out of the image folder",
                        entry.path().display(),
                        if link { ", behind a symbolic link" } else { "" }
                    )));
                }
                if kind == EntryKind::Broken {
                    unreadable.push((rel.clone(), name.to_vec(), "a symbolic link to nothing"));
                } else if undecodable(&entry.path(), name) {
                    unreadable.push((rel.clone(), name.to_vec(), "neither JPEG nor PNG, the formats decoded"));
                }
                files.push(name.to_vec());
            }
        }
        files.sort_unstable_by(|a, b| python_order(a, b));
        folders.push((rel, files));
    }
    // sorted(os.walk(class_dir)): by the full folder path, the class folder itself first
    folders.sort_by(|a, b| python_order(&a.0, &b.0));
    let mut out = Vec::new();
    for (rel, files) in folders {
        for f in files {
            if rel.is_empty() {
                out.push(f);
            } else {
                let mut p = rel.clone();
                p.push(b'/');
                p.extend_from_slice(&f);
                out.push(p);
            }
        }
    }
    let unreadable = unreadable
        .into_iter()
        .map(|(rel, name, why)| {
            let mut p = rel;
            if !p.is_empty() {
                p.push(b'/');
            }
            p.extend_from_slice(&name);
            (p, why)
        })
        .collect();
    Ok((out, unreadable))
}

/// How Python's `sorted()` orders two file names, as `os.scandir` / `os.walk` give them: by
/// the code points of the name decoded from UTF-8 with `surrogateescape` (a byte that is not
/// UTF-8 is U+DC80 + its value less 0x80). For UTF-8 names that is their byte order; a byte that
/// is not UTF-8 sorts after every character below U+DC80 (`"\xE8"` after `"退"`, where byte order
/// put it first and gave the classes other labels than torchvision's).
pub(crate) fn python_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    fn code_points(name: &[u8]) -> impl Iterator<Item = u32> + '_ {
        name.utf8_chunks().flat_map(|c| c.valid().chars().map(u32::from).chain(c.invalid().iter().map(|&b| 0xDC00 + u32::from(b))))
    }
    code_points(a).cmp(code_points(b))
}

/// The class folders of `root` (its sub-folders, following links), sorted by name: each as
/// its name's bytes and as shown. Reads `root` alone, not the folders.
fn class_folders(root: &Path) -> Result<Vec<(Vec<u8>, String)>> {
    let mut classes: Vec<(Vec<u8>, String)> = Vec::new();
    // images beside the class folders belong to no class (torchvision skips them too): said
    let mut loose = 0usize;
    for entry in fs::read_dir(root).map_err(|e| Error::io(root, e))? {
        let entry = entry.map_err(|e| Error::io(root, e))?;
        let (kind, _) = entry_kind(&entry).map_err(|e| Error::io(entry.path(), e))?;
        if kind == EntryKind::Folder {
            let name = entry.file_name();
            if name.as_encoded_bytes().starts_with(b".") {
                // a class as torchvision makes it, but rarely meant (`.ipynb_checkpoints`, a
                // trash folder): its label shifts every class after it
                let p = entry.path().display().to_string();
                super::warn_once(format!("hidden {p}"), format!("{p}: a hidden folder, taken as a class as every other sub-folder (move it out of the root if it is not one)"));
            }
            // a name that is not UTF-8 is shown with its bytes escaped, so two such names never
            // read the same (a test folder's classes are compared with the training folder's)
            let shown = name.to_str().map_or_else(|| format!("{name:?}"), str::to_string);
            classes.push((name.as_encoded_bytes().to_vec(), shown));
        } else if has_image_extension(entry.file_name().as_encoded_bytes()) {
            loose += 1;
        } else if kind == EntryKind::Broken {
            // torchvision drops it without a word: a class would be missing from the labels
            let said = format!(
                "{}: a symbolic link to {}, which does not exist: not a class folder (a class is missing?)",
                entry.path().display(),
                fs::read_link(entry.path()).map(|t| t.display().to_string()).unwrap_or_else(|_| "an unreadable target".into())
            );
            super::warn_once(said.clone(), said);
        }
    }
    if classes.is_empty() {
        return Err(Error::Data(format!(
            "{}: no class folders (expected the image-folder layout root/<class>/<image>){}",
            root.display(),
            if loose > 0 { format!("; its {loose} image(s) lie in the root itself, in no class folder") } else { String::new() }
        )));
    }
    if loose > 0 {
        super::warn_once(
            format!("loose {}", root.display()),
            format!("{}: {loose} image(s) lie in the root itself, in no class folder: not used (a class is root/<class>/<image>)", root.display()),
        );
    }
    classes.sort_unstable_by(|a, b| python_order(&a.0, &b.0));
    Ok(classes)
}

/// `p` as an error shows it: a name that is not UTF-8, or holds a line break or another control
/// character, quoted with those escaped (`"a/b\xE9.png"`, `"a/evil\nsecond.png"`), as class
/// names are (one line of `skipped.txt` names one file, and names the file it is).
fn shown(p: &Path) -> String {
    match p.to_str() {
        Some(s) if !s.chars().any(char::is_control) => s.to_string(),
        _ => format!("{:?}", p.as_os_str()),
    }
}

/// The class names of the image folder at `root`, in label order, without listing the
/// images (what [`ImageFolder::classes`] of `ImageFolder::open(root)` would return).
///
/// # Errors
/// An unreadable root, or one without class folders.
pub fn class_names(root: &Path) -> Result<Vec<String>> {
    Ok(class_folders(root)?.into_iter().map(|(_, shown)| shown).collect())
}

impl ImageFolder {
    /// Indexes `root`: one class per sub-folder (sorted by name), its image files as samples.
    /// A missing root, a root without class folders, or class folders without any image file
    /// (all of them named) are errors. `on_error` is kept for the loader (see [`OnError`]).
    pub fn open(root: &Path, on_error: OnError) -> Result<Self> {
        let classes = class_folders(root)?;

        // list the class folders on a few threads, each taking every k-th class
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 16)
            .min(classes.len());
        let dirs: Vec<PathBuf> = classes
            .iter()
            // SAFETY: the bytes came from `as_encoded_bytes` of a file name.
            .map(|(b, _)| root.join(unsafe { OsStr::from_encoded_bytes_unchecked(b) }))
            .collect();
        let mut lists: Vec<Option<Result<ClassListing>>> = (0..dirs.len()).map(|_| None).collect();
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let dirs = &dirs;
                    s.spawn(move || {
                        (t..dirs.len())
                            .step_by(threads)
                            .map(|c| (c, list_class(&dirs[c])))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for h in handles {
                if let Ok(done) = h.join() {
                    done.into_iter().for_each(|(c, r)| lists[c] = Some(r));
                }
            }
        });

        let mut class_starts = vec![0usize];
        let mut arena = Vec::new();
        let mut ends = Vec::new();
        let mut empty = Vec::new();
        let mut unreadable = Vec::new();
        for (c, list) in lists.into_iter().enumerate() {
            let (list, bad) = list.ok_or_else(|| {
                Error::Data(format!("{}: listing the folder failed", dirs[c].display()))
            })??;
            if list.is_empty() {
                empty.push(dirs[c].display().to_string());
            }
            for p in list {
                if let Some(why) = bad.get(&p) {
                    unreadable.push((ends.len(), *why));
                }
                arena.extend_from_slice(&p);
                let end = u32::try_from(arena.len()).map_err(|_| {
                    Error::Data(format!(
                        "{}: file names exceed 4 GiB in all",
                        root.display()
                    ))
                })?;
                ends.push(end);
            }
            class_starts.push(ends.len());
        }
        if !empty.is_empty() {
            let n = empty.len();
            let shown: Vec<&str> = empty.iter().take(5).map(String::as_str).collect();
            return Err(Error::Data(format!(
                "{n} class folder(s) hold no image file (extensions {}): {}{}",
                IMG_EXTENSIONS.join(" "),
                shown.join(", "),
                if n > 5 { ", ..." } else { "" }
            )));
        }
        arena.shrink_to_fit();
        ends.shrink_to_fit();
        Ok(Self {
            root: root.to_path_buf(),
            classes: classes.into_iter().map(|(_, s)| s).collect(),
            class_dirs: dirs,
            class_starts,
            arena,
            ends,
            on_error,
            unreadable,
        })
    }

    /// The class folders named like a data set's splits (`train`, `val`, `test` ...), when two
    /// or more are: a root one level too high (`data/` holding `train/` and `val/`), whose
    /// splits would be pretrained on as classes, the test images among them.
    pub fn split_named_classes(&self) -> Option<Vec<&str>> {
        const SPLIT_NAMES: [&str; 9] = ["train", "training", "trainval", "val", "valid", "validation", "test", "testing", "dev"];
        let splits: Vec<&str> = self.classes.iter().map(String::as_str).filter(|c| SPLIT_NAMES.contains(&c.to_ascii_lowercase().as_str())).collect();
        (splits.len() >= 2).then_some(splits)
    }

    /// Class names (folder names; one that is not UTF-8 quoted with its bytes escaped, as
    /// `"x\xE8"`), indexed by label.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Class `c`'s folder name as the OS gives it (its bytes: the order labels follow, and what
    /// a list line names); [`ImageFolder::classes`] is for showing.
    pub fn class_key(&self, c: usize) -> &[u8] {
        self.class_dirs[c].file_name().map_or(&[], |n| n.as_encoded_bytes())
    }

    /// Sample `i`'s path as [`Dataset::describe`] shows it, under the root spelled as stage
    /// hashes spell it ([`path_alike`]: `data/c/x.png` for a root written `./data`), what the
    /// fingerprint hashes.
    pub fn name_alike(&self, i: usize) -> String {
        shown(&path_alike(&self.path(i)))
    }

    /// The fingerprint of the `n` images at `at(0..n)`, by their names under the root as stage
    /// hashes spell it ([`ImageFolder::name_alike`]): [`Dataset::fingerprint`] of the folder,
    /// of a list's images and of the images `limit` keeps, one formula for each.
    pub fn fingerprint_over(&self, n: usize, at: impl Fn(usize) -> usize) -> String {
        fingerprint_of(n, |j| self.name_alike(at(j)), |j| self.label(at(j)))
    }

    /// The fingerprint earlier versions recorded of the `n` images at `at(0..n)`, by their
    /// names as shown, where the root is spelled otherwise ([`Dataset::earlier_fingerprints`]
    /// of the same three).
    pub fn earlier_over(&self, n: usize, at: impl Fn(usize) -> usize) -> Vec<String> {
        self.spelled_otherwise().then(|| fingerprint_of(n, |j| self.describe(at(j)), |j| self.label(at(j)))).into_iter().collect()
    }

    /// Whether the root is spelled otherwise than stage hashes spell it (`./data`, `a//b`),
    /// where [`Dataset::earlier_fingerprints`] differ.
    pub fn spelled_otherwise(&self) -> bool {
        path_alike(&self.root).as_os_str() != self.root.as_os_str()
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// What the loader should do with a sample that fails to load.
    pub fn on_error(&self) -> OnError {
        self.on_error
    }

    /// Sample indices of class `c` (a contiguous range, in file order). Panics if
    /// `c >= classes().len()`.
    pub fn class_range(&self, c: usize) -> std::ops::Range<usize> {
        self.class_starts[c]..self.class_starts[c + 1]
    }

    /// Path of sample `i` relative to its class folder (usually just the file name).
    pub fn relative_path(&self, i: usize) -> &OsStr {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        let bytes = &self.arena[start..self.ends[i] as usize];
        // SAFETY: the arena holds `as_encoded_bytes` of OS strings (and '/' separators).
        unsafe { OsStr::from_encoded_bytes_unchecked(bytes) }
    }

    /// File name of sample `i` (the last component of its path).
    pub fn file_name(&self, i: usize) -> &OsStr {
        let rel = self.relative_path(i);
        Path::new(rel).file_name().unwrap_or(rel)
    }

    /// Full path of sample `i`.
    pub fn path(&self, i: usize) -> PathBuf {
        let c = self.label(i) as usize;
        self.class_dirs[c].join(self.relative_path(i))
    }

    fn read(&self, i: usize) -> Result<Vec<u8>> {
        let p = self.path(i);
        fs::read(&p).map_err(|e| self.unread(i, &e))
    }

    /// Sample `i`'s file could not be opened or read (`e`): a data error naming it, as a
    /// damaged image's is (a bare OS error said neither what read it nor what to do; the
    /// loader and the evaluations add the ways out), one gone since the folder was listed said so.
    fn unread(&self, i: usize, e: &std::io::Error) -> Error {
        // (a link to nothing, which the listing found, is one still: it was said to have been
        // "removed or renamed since")
        let dangling = || std::fs::symlink_metadata(self.path(i)).is_ok_and(|m| m.file_type().is_symlink());
        let gone = match e.kind() {
            std::io::ErrorKind::NotFound if dangling() => " (a symbolic link to nothing)",
            std::io::ErrorKind::NotFound => " (it was there when the folder was listed: removed or renamed since?)",
            _ => "",
        };
        Error::Data(format!("{}: cannot be read: {e}{gone}", self.describe(i)))
    }
}

impl Dataset for ImageFolder {
    fn unreadable(&self) -> Vec<(usize, &'static str)> {
        self.unreadable.clone()
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn label(&self, i: usize) -> i64 {
        (self.class_starts.partition_point(|&s| s <= i) - 1) as i64
    }

    fn num_classes(&self) -> usize {
        self.classes.len()
    }

    fn describe(&self, i: usize) -> String {
        shown(&self.path(i))
    }

    /// The names hashed are the files' paths under the root as stage hashes spell it
    /// ([`path_alike`]): `root "./data"` and `root "data"`, one stage, are one fingerprint.
    fn fingerprint(&self) -> String {
        self.fingerprint_over(self.len(), |i| i)
    }

    fn earlier_fingerprints(&self) -> Vec<String> {
        self.earlier_over(self.len(), |i| i)
    }

    fn fingerprint_at(&self, indices: &[usize]) -> Option<(String, Vec<String>)> {
        Some((self.fingerprint_over(indices.len(), |j| indices[j]), self.earlier_over(indices.len(), |j| indices[j])))
    }

    fn size(&self, i: usize) -> Result<(usize, usize)> {
        let p = self.path(i);
        let name = self.describe(i);
        let f = fs::File::open(&p).map_err(|e| self.unread(i, &e))?;
        let mut head = Vec::with_capacity(HEADER_PREFIX as usize);
        f.take(HEADER_PREFIX)
            .read_to_end(&mut head)
            .map_err(|e| self.unread(i, &e))?;
        if let Some(hw) = decode::header_size(&head, &name)? {
            return Ok(hw);
        }
        if (head.len() as u64) < HEADER_PREFIX {
            return decode::image_size(&head, &name); // the whole file: truncated header
        }
        decode::image_size(&self.read(i)?, &name)
    }

    fn class_name(&self, c: i64) -> Option<String> {
        usize::try_from(c).ok().and_then(|c| self.classes.get(c)).cloned()
    }

    fn check_format(&self, i: usize) -> Result<()> {
        let p = self.path(i);
        let mut head = Vec::with_capacity(16);
        fs::File::open(&p).and_then(|f| f.take(16).read_to_end(&mut head)).map_err(|e| self.unread(i, &e))?;
        match decode::sniff(&head) {
            decode::Format::Jpeg | decode::Format::Png => Ok(()),
            _ => Err(decode::unsupported(&self.describe(i), &head)),
        }
    }

    fn load(&self, i: usize, max_shrink: u32) -> Result<(Image, u32)> {
        decode::decode(&self.read(i)?, max_shrink, &self.describe(i))
    }
}
