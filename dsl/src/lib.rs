//! ijepa-dsl: the experiment language. KDL v2 text -> typed, validated
//! [`config::Experiment`], with miette diagnostics that point at the offending text. No tch.
//!
//! ```
//! let src = r#"
//! experiment "tiny" {
//!     data "fashion-mnist" { crop-size 32; batch-size 16 }
//!     encoder width=96 depth=4 heads=3 patch=4
//!     mask "multi-block" { min-keep 4 }
//! }
//! "#;
//! let exp = ijepa_dsl::parse_str("tiny.kdl", src).map_err(|d| d.render_plain()).unwrap();
//! assert_eq!(exp.data.batch_size, 16);
//! assert_eq!(exp.encoder.embed_dim, 96);
//! ```
//!
//! A file may also start from another (`extends "base.kdl"`) and define a sweep over its
//! settings; [`load_study`] / [`parse_study`] resolve it to every experiment it runs:
//!
//! ```
//! let src = r#"
//! experiment "tiny" {
//!     data "fashion-mnist" { crop-size 32; batch-size 16 }
//!     encoder width=96 depth=4 heads=3 patch=4
//!     mask "multi-block" { min-keep 4 }
//! }
//! sweep "grid" {
//!     vary "mask.targets.scale" { - 0.1 0.15; - 0.15 0.2 }
//!     seeds 0 1
//! }
//! "#;
//! let study = ijepa_dsl::parse_study("tiny.kdl", src).map_err(|d| d.render_plain()).unwrap();
//! assert_eq!(study.points.len(), 4);
//! assert_eq!(study.points[1].name, "targets-scale-0.1-0.15_seed-1");
//! assert_eq!(study.points[1].experiment.name, "tiny-targets-scale-0.1-0.15_seed-1");
//! assert_eq!(study.points[1].experiment.mask.target_scale, (0.1, 0.15));
//! ```
//!
//! The language is documented in `docs/language.md`; the schema lives in `schema/`, the
//! node-reading machinery in `reader`, cross-field rules in `validate`, `extends` in
//! `extends`, sweep expansion in `study`.

pub mod config;
pub mod diagnostics;
mod extends;
pub mod import_yaml;
pub mod inputs;
pub mod multiblock;
pub mod recipes;
mod reader;
mod schema;
mod study;
#[cfg(test)]
mod tests;
mod validate;

use std::path::{Path, PathBuf};

use kdl::KdlDocument;
use miette::SourceSpan;

pub use config::Experiment;
pub use diagnostics::{printable, Diagnostics, DslError};
pub use reader::SpanMap;
pub use schema::distributed::{slurm_time_seconds, MAX_NODES, MAX_PROCS_PER_NODE};
pub use schema::{fewest_monitor_images, DEFAULT_PATCH, MASK_KINDS, MAX_BLOCKS, MIN_MONITOR_IMAGES, OPTIMIZERS};
pub use study::{Point, Study, SweepMode};

/// An experiment together with where each of its settings was written.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The validated experiment.
    pub experiment: Experiment,
    /// Dotted setting path (`data.crop-size`, `mask.targets.scale`, ...) -> span of its value.
    /// Settings left at their default (or taken from an `extends` base) are absent.
    pub spans: SpanMap,
}

/// Parses and validates experiment text. `file_name` names the source in diagnostics, and
/// its folder is where a relative `extends` path starts (the current directory for a bare
/// name). On failure every error of the file is returned at once. A file with a sweep is an
/// error here: use [`parse_study`].
pub fn parse_str(file_name: &str, src: &str) -> Result<Experiment, Diagnostics> {
    parse_spanned(file_name, src).map(|p| p.experiment)
}

/// Like [`parse_str`], also returning the span of every setting written.
pub fn parse_spanned(file_name: &str, src: &str) -> Result<Parsed, Diagnostics> {
    single(file_name, src, compile(file_name, src, origin_of(Path::new(file_name)))?)
}

/// Reads and validates an experiment file; returns it with its source text (the resolved
/// run folder keeps a copy). An unreadable file is a diagnostic too; so is a file with a
/// sweep (use [`load_study`]).
pub fn load(path: &Path) -> Result<(Experiment, String), Diagnostics> {
    let (name, src) = read_source(path)?;
    let compiled = compile(&name, &src, origin_of(path))?;
    single(&name, &src, compiled).map(|p| (p.experiment, src))
}

/// Parses experiment text into its study: the experiment, or every point of its sweep,
/// resolved and validated. `file_name` is used as in [`parse_str`].
pub fn parse_study(file_name: &str, src: &str) -> Result<Study, Diagnostics> {
    compile(file_name, src, origin_of(Path::new(file_name))).map(|c| c.study)
}

/// Reads an experiment file into its study (see [`parse_study`]); returns it with the file's
/// source text.
pub fn load_study(path: &Path) -> Result<(Study, String), Diagnostics> {
    let (name, src) = read_source(path)?;
    let compiled = compile(&name, &src, origin_of(path))?;
    Ok((compiled.study, src))
}

/// [`load_study`], then checks what the experiment reads from disk (data root, the official
/// placeholder, subset and split files): a missing input is a diagnostic at its setting. What
/// `ijepa check`, `plan` and `run` use, so a run never fails late on a path.
pub fn load_study_checked(path: &Path) -> Result<(Study, String), Diagnostics> {
    let (name, src) = read_source(path)?;
    let compiled = compile(&name, &src, origin_of(path))?;
    let errors = inputs::check(&compiled.study, &compiled.spans, &compiled.values);
    if !errors.is_empty() {
        return Err(Diagnostics::new(&name, &src, errors));
    }
    Ok((compiled.study, src))
}

/// [`load_study_checked`] for `ijepa eval`, which reads a file's data, encoder and `eval`
/// blocks to evaluate a checkpoint trained elsewhere: the rules of settings only the
/// pretraining reads are not checked (a file for a small image's probe was refused for the
/// default mask, the official one for 224 px crops, whose blocks its grid cannot hold).
pub fn load_study_for_eval(path: &Path) -> Result<(Study, String), Diagnostics> {
    let (name, src) = read_source(path)?;
    let compiled = compile(&name, &src, reader::Origin { evaluating: true, ..origin_of(path) })?;
    let errors = inputs::check(&compiled.study, &compiled.spans, &compiled.values);
    if !errors.is_empty() {
        return Err(Diagnostics::new(&name, &src, errors));
    }
    Ok((compiled.study, src))
}

/// [`load_study`] for a job that reads its inputs on other machines (`ijepa slurm`: the
/// cluster's nodes): a path that still holds the official placeholder is refused as
/// [`load_study_checked`] refuses it, wrong on every machine; the other missing inputs (paths
/// this machine does not have) are returned beside the study, for the caller to warn of.
pub fn load_study_for_elsewhere(path: &Path) -> Result<(Study, String, Vec<DslError>), Diagnostics> {
    let (name, src) = read_source(path)?;
    let compiled = compile(&name, &src, origin_of(path))?;
    let (placeholders, missing): (Vec<_>, Vec<_>) = inputs::check(&compiled.study, &compiled.spans, &compiled.values).into_iter().partition(inputs::holds_placeholder);
    if !placeholders.is_empty() {
        return Err(Diagnostics::new(&name, &src, placeholders));
    }
    Ok((compiled.study, src, missing))
}

/// A file read into its study, with what the single-experiment API needs.
pub(crate) struct Compiled {
    pub study: Study,
    /// Spans of the settings written in the experiment block.
    pub spans: SpanMap,
    /// The `sweep` node, when there is one.
    pub sweep: Option<SourceSpan>,
    /// Every setting path written in this file or its bases (transitively).
    pub written: std::collections::BTreeSet<String>,
    /// Where each sweep value is written: (the setting's dotted path, the value as a point's
    /// `varied` holds it) -> its span; empty without a sweep.
    pub values: std::collections::BTreeMap<(String, String), SourceSpan>,
}

/// Where a file lives and that it is the first of its `extends` chain.
fn origin_of(path: &Path) -> reader::Origin {
    reader::Origin {
        dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        stack: vec![(extends::identity(path), path.display().to_string())],
        evaluating: false,
    }
}

/// The text of an experiment file, or an `io` diagnostic.
/// The largest experiment file read (experiment files are a few kilobytes; this bounds the
/// time and memory a mistaken or hostile input can take).
pub const MAX_FILE_BYTES: u64 = 1 << 20;

fn read_source(path: &Path) -> Result<(String, String), Diagnostics> {
    let name = path.display().to_string();
    let fail = |message: String, help: &str| Err(Diagnostics::new(&name, "", vec![DslError::Io { path: name.clone(), message, help: help.into() }]));
    let os_error = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::InvalidData => fail(format!("not UTF-8 text ({e})"), "an experiment file is KDL text: save it as UTF-8"),
        _ => fail(e.to_string(), "check the path and the file's permissions"),
    };
    // a regular file of bounded size: not a device (`/dev/zero`), a pipe or a folder
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => return fail("not a regular file".into(), "give the path of an experiment file (a .kdl text file)"),
        Ok(m) if m.len() > MAX_FILE_BYTES => {
            return fail(
                format!("{} bytes: larger than the {} bytes an experiment file may have", m.len(), MAX_FILE_BYTES),
                "an experiment file is a few kilobytes of text: check that this is the file you meant",
            )
        }
        Ok(_) => {}
        Err(e) => return os_error(e),
    }
    use std::io::Read as _;
    let mut src = String::new();
    // at most one byte past the bound is read: compile() refuses what is over it
    match std::fs::File::open(path).and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_string(&mut src)) {
        Ok(_) => Ok((name, src)),
        Err(e) => os_error(e),
    }
}

/// The deepest `{` nesting an experiment may have (real files nest 3-4 levels); deeper input
/// is refused before the KDL parser, whose recursion would otherwise exhaust the stack.
pub const MAX_NESTING: usize = 64;

/// The first `{` deeper than [`MAX_NESTING`], skipping strings and comments.
fn too_deep(src: &str) -> Option<usize> {
    let b = src.as_bytes();
    let (mut i, mut depth) = (0, 0usize);
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut level = 0usize;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        level += 1;
                        i += 1;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        level -= 1;
                        i += 1;
                        if level == 0 {
                            break;
                        }
                    }
                    i += 1;
                }
            }
            b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(i);
                }
            }
            b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The one experiment of a compiled file, or the diagnostic that it is a sweep.
fn single(file_name: &str, src: &str, c: Compiled) -> Result<Parsed, Diagnostics> {
    match c.sweep {
        Some(span) => Err(Diagnostics::new(
            file_name,
            src,
            vec![DslError::SweepFile {
                points: c.study.points.len(),
                span,
                help: "a sweep is several experiments: read it with `ijepa_dsl::load_study` \
                       (`ijepa run` runs every point)"
                    .into(),
            }],
        )),
        None => Ok(Parsed { experiment: c.study.base, spans: c.spans }),
    }
}

/// Text -> study: KDL syntax, the experiment (on top of its `extends` base), the sweep, the
/// checks. `origin` says where the text lives and which files led to it.
pub(crate) fn compile(
    file_name: &str,
    src: &str,
    origin: reader::Origin,
) -> Result<Compiled, Diagnostics> {
    if src.len() as u64 > MAX_FILE_BYTES {
        let message = format!("{} bytes: larger than the {MAX_FILE_BYTES} bytes an experiment may have", src.len());
        let help = "an experiment file is a few kilobytes of text: check that this is the file you meant".into();
        return Err(Diagnostics::new(file_name, "", vec![DslError::Io { path: file_name.into(), message, help }]));
    }
    // an official YAML config given where an experiment file goes (named so, and reading as
    // YAML: a `key:` line; a KDL file misnamed .yml keeps its own errors): one error naming the
    // converter, where it was a screen of unknown nodes `data:` and syntax errors
    let key_line = |l: &str| {
        l.trim_start().split_once(':').is_some_and(|(k, v)| {
            !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') && (v.is_empty() || v.starts_with(' '))
        })
    };
    if [".yaml", ".yml"].iter().any(|e| file_name.to_ascii_lowercase().ends_with(e)) && src.lines().any(key_line) {
        let at = src.lines().take_while(|l| !key_line(l)).map(|l| l.len() + 1).sum::<usize>();
        return Err(Diagnostics::new(file_name, src, vec![DslError::Syntax {
            message: "this is a YAML file, and experiment files are KDL".into(),
            span: (at.min(src.len()), 0).into(),
            label: "not KDL".into(),
            help: format!("convert an official I-JEPA config with `ijepa import-yaml {file_name}` (docs/official-configs.md) and use the .kdl file it writes"),
        }]));
    }
    let doc = parse_kdl(src).map_err(|errors| Diagnostics::new(file_name, src, errors))?;
    let mut cx = reader::Ctx::new(src, schema::locations(), schema::PLANNED);
    cx.origin = origin;
    cx.swept_recipes = recipes::swept(&doc);
    cx.swept_paths = recipes::swept_paths(&doc);
    let top = schema::read_document(&mut cx, &doc);
    let fail = |cx: reader::Ctx| Diagnostics::new(file_name, src, cx.errors);
    let Some(base) = top.experiment else { return Err(fail(cx)) };
    let mut files = vec![PathBuf::from(file_name)];
    files.append(&mut cx.bases);
    let name = base.name.clone();
    let Some(spec) = top.sweep else {
        if cx.ok(&["extends"]) {
            validate::validate(&mut cx, &base);
        }
        if !cx.errors.is_empty() {
            return Err(fail(cx));
        }
        let point = Point { name: String::new(), experiment: base.clone(), varied: Default::default(), parts: Vec::new() };
        let written = cx.all_written();
        let study = Study { name, base, points: vec![point], mode: None, files, written: written.clone() };
        return Ok(Compiled { study, spans: cx.spans, sweep: None, written, values: Default::default() });
    };
    if !cx.errors.is_empty() {
        // the rules across settings the sweep leaves alone are checked on the base too, so
        // that one `check` lists them with the other errors (they waited for a second round):
        // every varied setting and the blocks above it are set aside, as a rejected value is
        // (a point's value may satisfy a rule the base's breaks); not in a sweep over recipes
        // (nor when a `vary` names no setting: what it meant to vary is not known)
        let known = cx.swept_paths.iter().all(|p| schema::settings::find(p).is_some());
        if known && cx.ok(&["extends"]) && !cx.swept_paths.iter().any(|p| p == "recipe") {
            for path in cx.swept_paths.clone() {
                let parts: Vec<&str> = path.split('.').collect();
                for n in 1..=parts.len() {
                    cx.poison(&parts[..n].join("."));
                }
            }
            validate::validate(&mut cx, &base);
        }
        return Err(fail(cx));
    }
    let points = study::expand(src, &base, &cx.spans, &cx.base_written, &spec, &cx.swept_recipes, cx.origin.evaluating)
        .map_err(|errors| Diagnostics::new(file_name, src, errors))?;
    let written = cx.all_written();
    let study = Study { name, base, points, mode: Some(spec.mode), files, written: written.clone() };
    let values = spec.vary.iter().chain(spec.seeds.as_ref())
        .flat_map(|v| v.values.iter().map(|x| ((v.setting.path.clone(), x.text.clone()), x.span)))
        .collect();
    Ok(Compiled { study, spans: cx.spans, sweep: Some(spec.span), written, values })
}

/// Help for a syntax error the KDL parser gives no help for.
fn syntax_help(src: &str, span: miette::SourceSpan) -> String {
    let text = src.get(span.offset()..span.offset() + span.len()).unwrap_or_default();
    match text {
        "true" | "false" | "null" | "inf" | "-inf" | "nan" => {
            format!(
                "KDL v2 keywords start with `#`: write `#{text}` (or `\"{text}\"` for a string)"
            )
        }
        _ => "experiment files are KDL v2 (https://kdl.dev): `name arg key=value { children }`, \
              strings in quotes, `#true`/`#false`"
            .into(),
    }
}

/// Help for mistakes the KDL parser reports as something else: a KDL v1 raw string, a block
/// comment that is never closed.
fn known_mistake(src: &str, span: miette::SourceSpan) -> Option<String> {
    let text = src.get(span.offset()..).unwrap_or_default();
    let before = src.get(..span.offset()).unwrap_or_default();
    let raw_v1 = text.starts_with("r\"") || text.starts_with("r#\"") || (before.ends_with('r') && text.starts_with(['"', '#']));
    if raw_v1 {
        return Some("KDL v2 raw strings are `#\"...\"#` (KDL v1 wrote `r\"...\"`); a plain `\"...\"` is fine for paths".into());
    }
    unclosed_block_comment(src).map(|_| OPEN_COMMENT.into())
}

/// [`known_mistake`]'s help for a `/*` never closed.
const OPEN_COMMENT: &str = "a `/*` comment is never closed: end it with `*/`";

/// Where the last `/*` of `src` is when it has no `*/` after it (outside strings, roughly: a
/// quoted `/*` is rare in an experiment file).
fn unclosed_block_comment(src: &str) -> Option<usize> {
    src.rfind("/*").filter(|&at| !src[at + 2..].contains("*/"))
}

/// Where the first number written without a digit before its point is (`.5`, `-.5`: a value
/// after a space, `=`, `{`, `;` or `)`), outside strings (quoted, multi-line `"""`, raw
/// `#"..."#`) and comments (`//`, `/* */`, nested).
fn leading_point_number(src: &str) -> Option<usize> {
    let b = src.as_bytes();
    let at = |i: usize, t: &[u8]| b.get(i..i + t.len()) == Some(t);
    let mut i = 0;
    while i < b.len() {
        if at(i, b"//") {
            i = b[i..].iter().position(|&c| c == b'\n').map_or(b.len(), |p| i + p);
        } else if at(i, b"/*") {
            let mut depth = 1;
            i += 2;
            while i < b.len() && depth > 0 {
                if at(i, b"/*") {
                    depth += 1;
                    i += 2;
                } else if at(i, b"*/") {
                    depth -= 1;
                    i += 2;
                } else {
                    i += 1;
                }
            }
        } else if b[i] == b'"' || (b[i] == b'#' && b[i..].iter().position(|&c| c != b'#').is_some_and(|p| b[i + p] == b'"')) {
            // a string: `"..."` (escapes), `"""..."""`, or raw `#"..."#` with its hashes
            let hashes = b[i..].iter().take_while(|&&c| c == b'#').count();
            i += hashes;
            let multi = at(i, b"\"\"\"");
            let close: Vec<u8> = if multi { b"\"\"\"".to_vec() } else { b"\"".to_vec() }.into_iter().chain(std::iter::repeat_n(b'#', hashes)).collect();
            i += if multi { 3 } else { 1 };
            while i < b.len() && !at(i, &close) {
                i += if hashes == 0 && b[i] == b'\\' { 2 } else { 1 };
            }
            i += close.len();
        } else {
            let boundary = i == 0 || b[i - 1].is_ascii_whitespace() || matches!(b[i - 1], b'=' | b'{' | b';' | b')');
            let unsigned = if matches!(b[i], b'-' | b'+') { i + 1 } else { i };
            if boundary && b.get(unsigned) == Some(&b'.') && b.get(unsigned + 1).is_some_and(u8::is_ascii_digit) {
                return Some(i);
            }
            i += 1;
        }
    }
    None
}

/// KDL v2 syntax -> document, or one diagnostic per syntax error.
pub(crate) fn parse_kdl(src: &str) -> Result<KdlDocument, Vec<DslError>> {
    // (a control character KDL allows nowhere in a file, written raw: a NUL byte read
    // "Expected integer ... Did you want a space here?" at a caret on nothing visible)
    if let Some((at, c)) = src.char_indices().find(|&(_, c)| c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\u{b}' | '\u{c}' | '\r')) {
        let name = match c {
            '\0' => "a NUL byte".to_string(),
            c => format!("the control character U+{:04X}", c as u32),
        };
        return Err(vec![DslError::Syntax {
            message: format!("the file holds {name}, which KDL allows nowhere"),
            span: (at, 1).into(),
            label: "here".into(),
            help: "an experiment file is text: remove it (a binary file, or one cut short or garbled by a copy?); inside a string, write it as an escape (`\\u{1b}`)".into(),
        }]);
    }
    if let Some(at) = too_deep(src) {
        return Err(vec![DslError::Syntax {
            message: format!("blocks nested more than {MAX_NESTING} levels deep"),
            span: (at, 1).into(),
            label: "too deep".into(),
            help: "an experiment nests a few levels (experiment > mask > targets); flatten this".into(),
        }]);
    }
    // The parser is third-party code fed arbitrary text: a panic inside it must not take the
    // caller down, it becomes a diagnostic like any other syntax error.
    let parsed = std::panic::catch_unwind(|| KdlDocument::parse_v2(src));
    match parsed {
        Ok(Ok(doc)) => Ok(doc),
        // (a number without a digit before its point: the parser reports an unclosed block
        // at the experiment's `{` and a cascade after it, none naming the number)
        Ok(Err(_)) if let Some(at) = leading_point_number(src) => {
            let len = src[at..].find(|c: char| c.is_whitespace() || c == ';' || c == '}').unwrap_or(src.len() - at);
            let written = &src[at..at + len];
            let (sign, rest) = written.split_at(usize::from(written.starts_with(['-', '+'])));
            Err(vec![DslError::Syntax {
                message: format!("`{written}` is not a KDL number"),
                span: (at, len).into(),
                label: "a digit is needed before the point".into(),
                help: format!("KDL numbers need a digit before the point: write `{sign}0{rest}`"),
            }])
        }
        Ok(Err(err)) => {
            let mut errors: Vec<DslError> = err
                .diagnostics
                .iter()
                .map(|d| {
                    let span = reader::tight_span(src, d.span);
                    // a KDL v1 habit or an open comment, named before the parser's own help
                    let known = known_mistake(src, span);
                    // for an open comment the parser marks the whole file (or the token before
                    // it): the place to look is the `/*` left open (only that error's: another
                    // error of the file keeps its place)
                    let about_it = d.message.as_deref().is_some_and(|m| m.contains("comment"));
                    let open = unclosed_block_comment(src).filter(|_| about_it && known.as_deref() == Some(OPEN_COMMENT));
                    DslError::Syntax {
                        message: d.message.clone().unwrap_or_else(|| "invalid KDL".into()),
                        span: open.map_or(span, |at| (at, 2).into()),
                        label: if open.is_some() { "this comment is never closed".into() } else { d.label.clone().unwrap_or_else(|| "here".into()) },
                        help: known.or_else(|| d.help.clone()).unwrap_or_else(|| syntax_help(src, span)),
                    }
                })
                .collect();
            if errors.is_empty() {
                errors.push(DslError::Syntax {
                    message: "invalid KDL".into(),
                    span: (0..0).into(),
                    label: "here".into(),
                    help: "experiment files are KDL v2 (https://kdl.dev)".into(),
                });
            }
            Err(errors)
        }
        Err(_) => Err(vec![DslError::Syntax {
            message: "the KDL parser failed on this text".into(),
            span: (0..0).into(),
            label: "somewhere in this file".into(),
            help: "this is a bug in the KDL parser; please report the file".into(),
        }]),
    }
}
