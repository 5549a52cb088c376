//! `extends "base.kdl"`: an experiment that starts from another file's resolved experiment.
//!
//! The base is a complete experiment file of its own: it is read, checked and validated on its
//! own (its errors are reported against its own text, nested under the `extends` value), then
//! the extending file's settings are read on top of it. Relative paths start at the folder of
//! the file that holds the `extends`. Before a base is read, the chain of `extends` it leads
//! to is followed, so a cycle is reported at the first `extends` that enters it, with the
//! whole chain.

use std::path::{Component, Path, PathBuf};

use crate::config::Experiment;
use crate::diagnostics::DslError;
use crate::reader::{Ctx, Node, Origin, Shape};

/// Shape of the `extends` node.
pub(crate) const SHAPE: Shape = Shape::scalar(&["FILE"], "extends \"base.kdl\"");

/// Most files one chain of `extends` may hold.
const MAX_DEPTH: usize = 32;

/// How the error of a chain of bases longer than [`MAX_DEPTH`] starts.
const CHAIN_TOO_LONG: &str = "the chain of bases is longer than";

/// The error of a chain of bases longer than [`MAX_DEPTH`], at `span`.
fn chain_too_long(span: miette::SourceSpan, message: &str) -> DslError {
    DslError::InvalidValue {
        what: "extends".into(),
        message: message.to_string(),
        span,
        help: "flatten the chain: let the base hold the shared settings".into(),
    }
}

/// Largest base file read (experiment files are a few KiB).
const MAX_BYTES: u64 = 4 << 20;

/// Reads the base named by an `extends` node. Returns its validated experiment, or `None`
/// after reporting why it cannot be used. Every base read is appended to `cx.bases`.
pub(crate) fn resolve(cx: &mut Ctx, n: &Node) -> Option<Experiment> {
    let v = n.arg(0).and_then(|e| cx.value::<String>(e, "extends"))?;
    if v.value.trim().is_empty() {
        cx.err(DslError::InvalidValue {
            what: "extends".into(),
            message: "the path is empty".into(),
            span: v.span,
            help: "name the base experiment file, e.g. `extends \"base.kdl\"`".into(),
        });
        return None;
    }
    let path = lexical(&cx.origin.dir.join(&v.value));
    // `extends "."` from the current folder folds to nothing: name it as the folder it is
    let path = if path.as_os_str().is_empty() { PathBuf::from(".") } else { path };
    let shown = path.display().to_string();
    if let Some(chain) = find_cycle(&cx.origin.stack, &path) {
        cx.err(DslError::ExtendsCycle {
            chain: chain.join(" -> "),
            span: v.span,
            help: "a file cannot extend itself, directly or through its bases; remove one of \
                   the `extends`"
                .into(),
        });
        return None;
    }
    if cx.origin.stack.len() >= MAX_DEPTH {
        cx.err(chain_too_long(v.span, &format!("{CHAIN_TOO_LONG} {MAX_DEPTH} files (it goes on past `{}`)", cx.origin.stack.last().map(|(_, s)| s.as_str()).unwrap_or("?"))));
        return None;
    }
    let src = match read_base(&path) {
        Ok(src) => src,
        Err(message) => {
            let from = match cx.origin.dir.display().to_string() {
                d if d.is_empty() => "the current directory".to_string(),
                d => format!("`{d}`"),
            };
            // (a folder or a device is there, but no experiment file; an absolute path starts
            // nowhere but at the root)
            let help = if path.exists() {
                "`extends` names an experiment file (`.kdl`) to start from".to_string()
            } else if Path::new(&v.value).is_absolute() {
                "no file is at that path".to_string()
            } else {
                format!("a relative path starts at the folder of the file that extends it ({from})")
            };
            cx.err(DslError::ExtendsMissing { path: shown, message, span: v.span, help });
            return None;
        }
    };
    let mut stack = cx.origin.stack.clone();
    stack.push((identity(&path), shown.clone()));
    let origin = Origin { dir: path.parent().map(Path::to_path_buf).unwrap_or_default(), stack, evaluating: cx.origin.evaluating };
    match crate::compile(&shown, &src, origin) {
        Ok(c) if c.study.mode.is_some() => {
            cx.err(DslError::InvalidValue {
                what: "base".into(),
                message: format!("`{shown}` defines a sweep"),
                span: v.span,
                help: "a base is one experiment: move the `sweep` into the file that extends it"
                    .into(),
            });
            None
        }
        Ok(c) => {
            cx.bases.extend(c.study.files);
            cx.base_written.extend(c.written);
            Some(c.study.base)
        }
        // a chain too long is the root file's error, said once at its `extends` (each base on
        // the way is valid; wrapped at every level it was blamed on the 32nd file)
        Err(d) if matches!(d.errors(), [DslError::InvalidValue { message, .. }] if message.starts_with(CHAIN_TOO_LONG)) => {
            if let [DslError::InvalidValue { message, .. }] = d.errors() {
                cx.err(chain_too_long(v.span, message));
            }
            None
        }
        // a base whose one error is its own base's: that error passed on, naming the file at
        // fault (wrapped at every level, an error 32 files down was 31 nested blocks)
        Err(d) => {
            cx.err(match d.into_base_error() {
                Ok(e) => {
                    let through = if e.fault.is_some() { e.through + 1 } else { 0 };
                    let fault = e.fault.unwrap_or(e.path);
                    let help = format!("fix `{fault}`: its errors follow, shown in its own text");
                    DslError::BaseInvalid { path: shown, fault: Some(fault), through, count: e.count, span: v.span, help, base: e.base }
                }
                // (all of them: a base of 55 errors was said to have 51, the 50 listed and the
                // line counting the rest)
                Err(d) => DslError::BaseInvalid {
                    path: shown,
                    fault: None,
                    through: 0,
                    count: d.total(),
                    span: v.span,
                    help: "fix the base: its errors follow, shown in its own text".into(),
                    base: vec![d],
                },
            });
            None
        }
    }
}

/// Follows the `extends` chain from `next` (without validating anything) and returns the
/// chain of file names when it comes back to a file in `stack` or to one it went through.
fn find_cycle(stack: &[(PathBuf, String)], next: &Path) -> Option<Vec<String>> {
    let mut chain: Vec<(PathBuf, String)> = stack.to_vec();
    let mut next = next.to_path_buf();
    for _ in 0..=MAX_DEPTH {
        let id = identity(&next);
        let shown = next.display().to_string();
        if chain.iter().any(|(i, _)| *i == id) {
            let mut names: Vec<String> = chain.into_iter().map(|(_, s)| s).collect();
            names.push(shown);
            return Some(names);
        }
        chain.push((id, shown));
        next = base_of(&next)?;
    }
    None
}

/// The base a file extends, if it is readable, parses and has an `extends` first.
fn base_of(path: &Path) -> Option<PathBuf> {
    let src = read_base(path).ok()?;
    let doc = crate::parse_kdl(&src).ok()?;
    let exp = doc.nodes().iter().find(|n| n.name().value() == "experiment")?;
    let first = exp.children()?.nodes().first()?;
    if first.name().value() != "extends" {
        return None;
    }
    let target = first.entries().iter().find(|e| e.name().is_none())?.value().as_string()?;
    Some(lexical(&path.parent().unwrap_or(Path::new("")).join(target)))
}

/// The text of a base file; an error message when it is not a readable, reasonably sized file.
fn read_base(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.is_dir() {
        return Err("a folder, not an experiment file".into());
    }
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > MAX_BYTES {
        return Err(format!("larger than {} MiB", MAX_BYTES >> 20));
    }
    std::fs::read_to_string(path).map_err(|e| e.to_string())
}

/// What makes two paths the same file: the canonical path, or (for a file not on disk) the
/// absolute path with `.` and `..` resolved.
pub(crate) fn identity(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    lexical(&abs)
}

/// `path` with `.` removed and `dir/..` folded (a leading `..` of a relative path is kept),
/// where `dir` is no symbolic link: `link/..` is the parent of the link's target, as the system
/// reads it, so it is kept (folded, `sub/link/../../base.kdl` read `base.kdl` beside `sub`,
/// another file than the one the path names).
pub(crate) fn lexical(path: &Path) -> PathBuf {
    let mut out: Vec<Component> = Vec::new();
    let is_link = |p: &[Component]| std::fs::symlink_metadata(p.iter().collect::<PathBuf>()).is_ok_and(|m| m.file_type().is_symlink());
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) if !is_link(&out) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(c),
            },
            c => out.push(c),
        }
    }
    out.iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_paths() {
        assert_eq!(lexical(Path::new("a/./b/../c.kdl")), PathBuf::from("a/c.kdl"));
        assert_eq!(lexical(Path::new("../x/../y.kdl")), PathBuf::from("../y.kdl"));
        assert_eq!(lexical(Path::new("/../a.kdl")), PathBuf::from("/a.kdl"));
        assert_eq!(lexical(Path::new("./a.kdl")), PathBuf::from("a.kdl"));
    }

    /// `link/..` is the parent of the link's target, not the folder that holds the link: a
    /// base named through a linked folder is the file the system opens there.
    #[test]
    fn a_linked_folder_s_parent_is_its_target_s() {
        let d = std::env::temp_dir().join(format!("ijepa-lexical-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("deep/er")).unwrap();
        std::fs::create_dir_all(d.join("w")).unwrap();
        std::os::unix::fs::symlink(d.join("deep/er"), d.join("w/link")).unwrap();
        // (w/link/../x.kdl is deep/x.kdl; folded it read w/x.kdl)
        assert_eq!(lexical(&d.join("w/link/../x.kdl")), d.join("w/link/../x.kdl"));
        assert_eq!(std::fs::canonicalize(d.join("w/link/..")).unwrap(), std::fs::canonicalize(d.join("deep")).unwrap());
        // a real folder below the link folds as before
        std::fs::create_dir_all(d.join("deep/er/sub")).unwrap();
        assert_eq!(lexical(&d.join("w/link/sub/../x.kdl")), d.join("w/link/x.kdl"));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
