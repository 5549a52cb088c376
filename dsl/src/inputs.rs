//! What an experiment reads from disk, checked before anything runs: the data root (and the
//! official configs' `$replace_this_...` placeholder), a `subset` list and an evaluation's
//! `split-file`. `ijepa check`, `plan` and `run` (with `--dry-run` too) report a missing input
//! as a diagnostic at the setting's span, before any model is built; the language itself
//! ([`crate::load_study`]) does not look at the file system.

use std::collections::BTreeMap;
use std::path::Path;

use miette::SourceSpan;

use crate::config::{DataSource, DatasetKind};
use crate::diagnostics::DslError;
use crate::reader::SpanMap;
use crate::study::Study;

/// How the official YAML files' placeholders start (`$replace_this_with_absolute_path_to_...`).
pub const OFFICIAL_PLACEHOLDER: &str = "$replace_this";

/// How the message of a path holding [`OFFICIAL_PLACEHOLDER`] ends.
const HOLDS_PLACEHOLDER: &str = "still holds the official configs' placeholder";

/// Whether `e` is of a path that still holds the official placeholder: wrong on every machine,
/// where another missing input may be a path of other machines (a cluster's nodes).
pub(crate) fn holds_placeholder(e: &DslError) -> bool {
    matches!(e, DslError::MissingInput { message, .. } if message.ends_with(HOLDS_PLACEHOLDER))
}

/// The missing inputs of every point of `study` (each path reported once), at the setting's
/// span, or at the sweep value that gave a point its path (`values`: (setting, value) -> span).
pub(crate) fn check(study: &Study, spans: &SpanMap, values: &BTreeMap<(String, String), SourceSpan>) -> Vec<DslError> {
    let mut errors = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for p in &study.points {
        // (`vary "data.root"`: the value, where the experiment's span is the base's root= or,
        // when the base writes none, the experiment node)
        let span_of = |key: &str| {
            let varied = p.varied.get(key).and_then(|text| values.get(&(key.to_string(), text.clone())));
            varied.or(spans.get(key)).copied().unwrap_or_else(|| SourceSpan::from(0..0))
        };
        let d = &p.experiment.data;
        if let DataSource::Path(root) = &d.source {
            // (per data set: one folder can hold CIFAR-10's files and not CIFAR-100's)
            // (the test split, read by the evaluations, from this root unless a test root is given)
            let with_test = !p.experiment.evals.is_empty() && d.test_root.is_none();
            if seen.insert(("data.root", root.clone(), format!("{:?} {with_test}", d.dataset))) {
                if let Some(e) = root_error("data root", root, &d.dataset, with_test, span_of("data.root")) {
                    errors.push(e);
                }
            }
        }
        if let Some(list) = &d.subset {
            if seen.insert(("data.subset", list.clone(), String::new())) && !list.is_file() {
                errors.push(missing("data subset list", list, span_of("data.subset"), "give an existing list file (one image path per line)"));
            }
        }
        if let Some(test) = &d.test_root {
            if seen.insert(("data.test-root", test.clone(), format!("{:?}", d.dataset))) {
                if let Some(e) = root_error("test root", test, &d.dataset, false, span_of("data.test-root")) {
                    errors.push(e);
                }
            }
        }
        for ev in &p.experiment.evals {
            if let Some(f) = &ev.split_file {
                if seen.insert(("split-file", f.clone(), String::new())) && !f.is_file() {
                    let key = spans.keys().find(|k| k.starts_with("eval") && k.ends_with("split-file")).cloned().unwrap_or_default();
                    errors.push(missing("evaluation split file", f, span_of(&key), "give an existing `1percent.txt`-style list file"));
                }
            }
        }
    }
    errors
}

fn missing(what: &str, path: &Path, span: SourceSpan, help: &str) -> DslError {
    // (a named pipe, a device, a socket: there, but no list file; a dangling link: not there)
    let why = match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => "is a folder, not a list file",
        Ok(_) => "is not a regular file (a named pipe, a device or a socket), not a list file",
        Err(_) if path.symlink_metadata().is_ok() => "is a symbolic link to nothing (its target does not exist)",
        // (there or not: a folder on its path that this user may not search; "does not exist"
        // sent the user looking for a file that was there)
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return DslError::UnreadableInput {
                what: what.into(),
                message: format!("{} cannot be reached: {e}", path.display()),
                span,
                help: "this user may not search a folder on its path: check the owner and mode of the folders above it".into(),
            };
        }
        Err(_) => "does not exist",
    };
    DslError::MissingInput { what: what.into(), message: format!("{} {why}", path.display()), span, help: help.into() }
}

/// What is wrong with the folder `root` (the `data root` or the `test root`) for `dataset`:
/// the placeholder, no such folder, or a file of the data set missing from it; `with_test`:
/// the evaluations read the test split from the data root too.
fn root_error(what: &str, root: &Path, dataset: &DatasetKind, with_test: bool, span: SourceSpan) -> Option<DslError> {
    let text = root.to_string_lossy();
    if text.contains(OFFICIAL_PLACEHOLDER) {
        return Some(DslError::MissingInput {
            what: what.into(),
            message: format!("{text} {HOLDS_PLACEHOLDER}"),
            span,
            help: "replace \"$replace_this_with_absolute_path_to_your_datasets_directory\" with the folder \
                   that holds your datasets"
                .into(),
        });
    }
    if !root.exists() {
        let help = match dataset {
            DatasetKind::FashionMnist => "install Debian's `dataset-fashion-mnist` (root=\"/usr/share/datasets/fashion-mnist\"), \
                                          or drop `root=` to use the embedded subset",
            DatasetKind::ImageFolder => "give the folder of the image-folder layout root/<class>/<image>",
            _ => "give the folder holding the dataset files",
        };
        return Some(missing(what, root, span, help));
    }
    if !root.is_dir() {
        return Some(DslError::MissingInput {
            what: what.into(),
            message: format!("{text} is not a folder"),
            span,
            help: "the setting names the folder holding the images".into(),
        });
    }
    // a folder without the data set's files (an empty or wrong folder, a labels file left
    // out): `run` found it only at its start, `check` said ok; the test split's files too
    // where evaluations read it from this root (`run` refused them only before pretraining)
    // (the splits read from this root: the test root's, or the training split and, with
    // `with_test`, the test split)
    let splits = match (what == "test root", with_test) {
        (true, _) => vec![true],
        (false, true) => vec![false, true],
        (false, false) => vec![false],
    };
    let folder: &[&str] = match dataset {
        DatasetKind::Cifar10 => &["", "cifar-10-batches-bin"],
        DatasetKind::Cifar100 => &["", "cifar-100-binary"],
        _ => &[""],
    };
    // each file a split reads, by its names (a `.gz` or not)
    let files = |test: bool| -> Vec<Vec<String>> {
        let split = if test { "t10k" } else { "train" };
        match dataset {
            DatasetKind::FashionMnist | DatasetKind::Mnist => ["images-idx3", "labels-idx1"]
                .iter()
                .map(|kind| vec![format!("{split}-{kind}-ubyte.gz"), format!("{split}-{kind}-ubyte")])
                .collect(),
            DatasetKind::Cifar10 if test => vec![vec!["test_batch.bin".into()]],
            DatasetKind::Cifar10 => (1..=5).map(|i| vec![format!("data_batch_{i}.bin")]).collect(),
            DatasetKind::Cifar100 => vec![vec![if test { "test.bin" } else { "train.bin" }.into()]],
            DatasetKind::ImageFolder => Vec::new(),
        }
    };
    let present = |f: &str, names: &[String]| names.iter().any(|n| root.join(f).join(n).is_file());
    let requested: Vec<Vec<String>> = splits.into_iter().flat_map(files).collect();
    // (the root or the archive's own sub-folder: every split from the one that holds the
    // training split's first file, as the loader reads them; a test batch in the other was
    // passed, and refused at the run's start)
    let train_first = files(false).into_iter().next();
    let base = (folder.iter().copied().find(|f| train_first.as_ref().is_some_and(|n| present(f, n))))
        .or_else(|| folder.iter().copied().find(|f| requested.first().is_some_and(|n| present(f, n))));
    let first_missing = match base {
        Some(b) => requested.into_iter().find(|names| !present(b, names)).map(|names| (names, b)),
        None => requested.into_iter().next().map(|names| (names, "")),
    };
    if let Some((first, at)) = first_missing {
        // (a folder this user may not search: its files look missing, and "holds no" sent the
        // user to install the data set that was there)
        let opened = if at.is_empty() { root.to_path_buf() } else { root.join(at) };
        if let Some(e) = first.iter().filter_map(|n| std::fs::metadata(opened.join(n)).err()).find(|e| e.kind() == std::io::ErrorKind::PermissionDenied) {
            return Some(DslError::UnreadableInput {
                what: what.into(),
                message: format!("{} cannot be read: {e}", opened.display()),
                span,
                help: "this user may not open the files of the folder (or of one above it): check the owner and mode of the folders".into(),
            });
        }
        // (the folder is there: what is missing is a file of a split; "missing data root" read
        // as if the folder were, and did not say the evaluations read the test split)
        let test_file = files(true).contains(&first);
        let what = match (what == "test root", test_file) {
            (false, true) => "test file (the evaluations read it)",
            (_, true) => "test file",
            _ => "data file",
        }
        .to_string();
        let names = first.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" or ");
        let also = match base {
            None => folder.iter().filter(|f| !f.is_empty()).map(|f| format!(" (nor its `{f}/`)")).collect::<String>(),
            Some(_) if folder.len() > 1 => " (the folder of the training split's first file, which every split is read from)".to_string(),
            Some(_) => String::new(),
        };
        let text = if at.is_empty() { text.into_owned() } else { root.join(at).display().to_string() };
        return Some(DslError::MissingInput {
            what,
            message: format!("{text} holds no {names}{also}"),
            span,
            help: match dataset {
                DatasetKind::FashionMnist => "give the folder holding the idx files (`train-images-idx3-ubyte.gz`, ...; \
                    Debian's `dataset-fashion-mnist` installs them in /usr/share/datasets/fashion-mnist)",
                DatasetKind::Mnist => "give the folder holding the idx files (`train-images-idx3-ubyte.gz`, `t10k-images-idx3-ubyte.gz`, ...)",
                _ => "give the folder the official binary archive unpacks to (or the folder above it)",
            }
            .into(),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{missing, root_error};
    use crate::config::DatasetKind;

    /// A folder without the data set's files is refused by `check` too, for each kind, and
    /// one that has them (or has them in the archive's own sub-folder) is not.
    #[test]
    fn a_root_without_the_data_sets_files_is_refused() {
        let d = std::env::temp_dir().join(format!("ijepa-dsl-{}-roots", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("empty")).unwrap();
        let err = |kind: &DatasetKind, what: &str, root: &str| root_error(what, &d.join(root), kind, false, (0..0).into()).map(|e| e.to_string());
        let kinds = [DatasetKind::FashionMnist, DatasetKind::Mnist, DatasetKind::Cifar10, DatasetKind::Cifar100];
        for k in &kinds {
            let e = err(k, "data root", "empty").expect("refused");
            assert!(e.contains("holds no `"), "{k:?}: {e}");
        }
        assert!(err(&DatasetKind::FashionMnist, "data root", "empty").unwrap().contains("train-images-idx3-ubyte.gz"));
        assert!(err(&DatasetKind::FashionMnist, "test root", "empty").unwrap().contains("t10k-images-idx3-ubyte.gz"));
        assert!(err(&DatasetKind::Cifar10, "data root", "empty").unwrap().contains("cifar-10-batches-bin/"));
        assert_eq!(err(&DatasetKind::ImageFolder, "data root", "empty"), None);
        std::fs::create_dir_all(d.join("fm")).unwrap();
        std::fs::write(d.join("fm/train-images-idx3-ubyte"), b"").unwrap();
        // (its labels, which `run` read at its start)
        assert!(err(&DatasetKind::FashionMnist, "data root", "fm").unwrap().contains("holds no `train-labels-idx1-ubyte.gz` or `train-labels-idx1-ubyte`"));
        std::fs::write(d.join("fm/train-labels-idx1-ubyte.gz"), b"").unwrap();
        assert_eq!(err(&DatasetKind::FashionMnist, "data root", "fm"), None);
        assert!(err(&DatasetKind::FashionMnist, "test root", "fm").is_some());
        // the test split where evaluations read it from the data root
        let with_test = |kind: &DatasetKind, root: &str| root_error("data root", &d.join(root), kind, true, (0..0).into()).map(|e| e.to_string());
        assert!(with_test(&DatasetKind::FashionMnist, "fm").unwrap().contains("`t10k-images-idx3-ubyte.gz`"));
        // (said as a file of the folder, not as a missing folder)
        let e = with_test(&DatasetKind::FashionMnist, "fm").unwrap();
        assert!(e.starts_with("missing test file (the evaluations read it): "), "{e}");
        std::fs::write(d.join("fm/t10k-images-idx3-ubyte"), b"").unwrap();
        assert!(with_test(&DatasetKind::FashionMnist, "fm").unwrap().contains("`t10k-labels-idx1-ubyte.gz`"));
        std::fs::write(d.join("fm/t10k-labels-idx1-ubyte"), b"").unwrap();
        assert_eq!(with_test(&DatasetKind::FashionMnist, "fm"), None);
        std::fs::create_dir_all(d.join("c10/cifar-10-batches-bin")).unwrap();
        std::fs::write(d.join("c10/cifar-10-batches-bin/data_batch_1.bin"), b"").unwrap();
        // (every training batch)
        let e = err(&DatasetKind::Cifar10, "data root", "c10").unwrap();
        assert!(e.starts_with("missing data file: ") && e.contains("holds no `data_batch_2.bin`"), "{e}");
        for i in 2..=5 {
            std::fs::write(d.join(format!("c10/cifar-10-batches-bin/data_batch_{i}.bin")), b"").unwrap();
        }
        assert_eq!(err(&DatasetKind::Cifar10, "data root", "c10"), None);
        assert!(with_test(&DatasetKind::Cifar10, "c10").unwrap().contains("holds no `test_batch.bin`"));
        // (a test batch beside the archive's folder is not its test split: the loader reads
        // both from the folder of the training batches)
        std::fs::write(d.join("c10/test_batch.bin"), b"").unwrap();
        let e = with_test(&DatasetKind::Cifar10, "c10").unwrap();
        assert!(e.contains("c10/cifar-10-batches-bin holds no `test_batch.bin` (the folder of the training split's first file"), "{e}");
        std::fs::write(d.join("c10/cifar-10-batches-bin/test_batch.bin"), b"").unwrap();
        assert_eq!(with_test(&DatasetKind::Cifar10, "c10"), None);
        assert!(err(&DatasetKind::Cifar100, "data root", "c10").is_some());
        // a sweep's two points on one folder, CIFAR-10 then CIFAR-100: each checked for its
        // own files (the folder was checked once, for the first point's)
        let f = d.join("zip.kdl");
        let root = d.join("c10");
        std::fs::write(&f, format!("experiment \"z\" {{\n encoder width=32 depth=2 heads=2 patch=4\n mask \"multi-block\" {{ min-keep 3 }}\n}}\nsweep \"zip\" {{\n vary \"data.dataset\" \"cifar10\" \"cifar100\"\n vary \"data.root\" \"{0}\" \"{0}\"\n}}\n", root.display())).unwrap();
        let e = crate::load_study_checked(&f).expect_err("refused").render_plain();
        assert!(e.contains("holds no `train.bin`"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }

    /// Each kind of path that is no list file says what it is (a named pipe was "does not
    /// exist").
    #[test]
    fn a_list_that_is_no_file_says_what_it_is() {
        let d = std::env::temp_dir().join(format!("ijepa-dsl-{}-lists", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("folder")).unwrap();
        std::os::unix::fs::symlink(d.join("gone"), d.join("dangling")).unwrap();
        let fifo = std::process::Command::new("mkfifo").arg(d.join("fifo")).status().is_ok_and(|s| s.success());
        let why = |name: &str| missing("data subset list", &d.join(name), (0..0).into(), "").to_string();
        assert!(why("folder").ends_with("is a folder, not a list file"), "{}", why("folder"));
        assert!(why("dangling").ends_with("is a symbolic link to nothing (its target does not exist)"), "{}", why("dangling"));
        assert!(why("nothing").ends_with("does not exist"), "{}", why("nothing"));
        if fifo {
            assert!(why("fifo").contains("is not a regular file (a named pipe"), "{}", why("fifo"));
        }
        let _ = std::fs::remove_dir_all(&d);
    }
}
