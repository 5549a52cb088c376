//! `ijepa import-yaml`: an official I-JEPA YAML config (facebookresearch/ijepa `configs/*.yaml`,
//! read by `src/train.py`) -> a commented experiment in KDL, in the house style of
//! `experiments/quickstart.kdl`.
//!
//! Every key that `src/train.py` reads maps to one setting, written out explicitly even where it
//! equals the language's default, with the YAML key named in a trailing comment. Keys with no
//! equivalent that change nothing about the run (`logging.*`, `data.pin_mem`, ...) are dropped
//! with a comment saying why. A value we cannot honour (`meta.copy_data: true`, starting from a
//! given checkpoint), an unknown key, a missing key or a value of the wrong type is an
//! [`ImportError`] naming the key: nothing is dropped silently. `docs/official-configs.md` has
//! the key-by-key table.
//!
//! The YAML holds no world size; when its logging folder names the global batch (`bs.2048`, as
//! every official config does) the importer writes the `distributed` block that gives it.
//!
//! ```
//! let yaml = "data: {batch_size: 4}\n";
//! let err = ijepa_dsl::import_yaml::yaml_to_kdl(yaml, "mine.yaml", "mine").unwrap_err();
//! assert!(err.to_string().contains("data.crop_size"));
//! ```

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use thiserror::Error;
use yaml_rust2::parser::{MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};
use yaml_rust2::{Event, Yaml};

use crate::config::VIT_PRESETS;

/// Why a YAML config could not be imported. Each variant names the YAML key as a dotted path
/// (`data.batch_size`) and, where it is written, its line.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ImportError {
    /// The text is not valid YAML.
    #[error("invalid YAML at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the YAML parser says.
        message: String,
    },
    /// The file holds no document, or more than one.
    #[error("{0}")]
    Document(String),
    /// A key the official `src/train.py` does not read.
    #[error("`{key}`{}: unknown key{}", at(*line), did_you_mean(suggestion))]
    UnknownKey {
        /// Dotted path of the key.
        key: String,
        /// 1-based line.
        line: usize,
        /// The closest known key, if any is close.
        suggestion: Option<String>,
    },
    /// The same key twice in one mapping.
    #[error("`{key}`{}: duplicate key", at(*line))]
    DuplicateKey {
        /// Dotted path of the key.
        key: String,
        /// 1-based line of the second occurrence.
        line: usize,
    },
    /// Keys the official code reads (it fails with a KeyError without them).
    #[error("missing {} (the official src/train.py reads every one)", key_list(keys))]
    MissingKeys {
        /// Dotted paths of the missing keys.
        keys: Vec<String>,
    },
    /// A value of the wrong type.
    #[error("`{key}`{}: expected {expected}, found {found}", at(*line))]
    WrongType {
        /// Dotted path of the key.
        key: String,
        /// 1-based line.
        line: usize,
        /// What the key takes.
        expected: String,
        /// What is written (YAML text or a kind of node).
        found: String,
    },
    /// A value the experiment language cannot express.
    #[error("`{key}: {value}`{}: cannot be imported: {reason}", at(*line))]
    Unsupported {
        /// Dotted path of the key.
        key: String,
        /// 1-based line.
        line: usize,
        /// The value as written.
        value: String,
        /// Why, and what to write instead.
        reason: String,
    },
    /// The experiment name is not a valid run-folder name.
    #[error("experiment name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    suggestion.as_deref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default()
}

fn key_list(keys: &[String]) -> String {
    let list: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
    format!("key{}: {}", if keys.len() > 1 { "s" } else { "" }, list.join(", "))
}

fn at(line: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(" (line {line})")
    }
}

/// A folder-safe experiment name from a config's path: its file stem with every character other
/// than letters, digits, `-`, `_` and `.` replaced by `-` (`in1k_vith14_ep300.yaml` ->
/// `in1k_vith14_ep300`); `imported` for a path that names no file of its own (a pipe such as
/// `/dev/fd/63` or `/proc/self/fd/0`, from `<(...)`).
pub fn default_name(path: &Path) -> String {
    let piped = path.parent().is_some_and(|p| p.ends_with("dev/fd") || (p.ends_with("fd") && p.starts_with("/proc")));
    let stem = if piped { String::new() } else { path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default() };
    let mut name: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '-' })
        .collect();
    let name_trimmed = name.trim_start_matches('.').to_string();
    name = name_trimmed;
    name.truncate(100);
    if name.is_empty() {
        "imported".to_string()
    } else {
        name
    }
}

/// Converts the text of an official I-JEPA YAML config into experiment KDL.
///
/// `source_name` names the YAML in the generated header (only its file name is used);
/// `experiment_name` becomes `experiment "NAME"` (the run folder `runs/NAME/`). The output is
/// meant for [`crate::parse_str`]; it is not validated here (the language's checks, e.g. patch
/// vs crop, report on the KDL).
pub fn yaml_to_kdl(
    yaml: &str,
    source_name: &str,
    experiment_name: &str,
) -> Result<String, ImportError> {
    yaml_to_kdl_at(yaml, source_name, experiment_name, None)
}

/// [`yaml_to_kdl`] of a file to be written at `out`, which its header's commands name (else
/// the shipped experiment's path for an official config, `FILE.kdl` for another).
pub fn yaml_to_kdl_at(
    yaml: &str,
    source_name: &str,
    experiment_name: &str,
    out: Option<&str>,
) -> Result<String, ImportError> {
    check_name(experiment_name)?;
    // a byte-order mark (an editor's) is no part of the first key, as for PyYAML
    let yaml = yaml.strip_prefix('\u{feff}').unwrap_or(yaml);
    let root = parse_yaml(yaml)?;
    let cfg = Official::read(&root)?;
    let file = Path::new(source_name)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| source_name.to_string());
    // (a path with a line break or another control character would end the comment line; one
    // with a space or a shell's special character is quoted, so the command pastes)
    let out = out.filter(|o| !o.chars().any(char::is_control)).map(|o| {
        if o.chars().all(|c| c.is_ascii_alphanumeric() || "._/-+=:,@%".contains(c)) {
            o.to_string()
        } else {
            format!("'{}'", o.replace('\'', "'\\''"))
        }
    });
    Ok(render(&cfg, yaml, &file, experiment_name, &leading_comments(yaml), out.as_deref()))
}

fn check_name(name: &str) -> Result<(), ImportError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > 100 {
        Some("it is longer than 100 bytes")
    } else if name.starts_with('.') {
        Some("it starts with `.`")
    } else if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        Some("use only letters, digits, `-`, `_` and `.` (it names the folder runs/NAME/)")
    } else {
        None
    };
    match reason {
        Some(r) => Err(ImportError::InvalidName { name: name.to_string(), reason: r.to_string() }),
        None => Ok(()),
    }
}

// ------------------------------------------------------------------------------------------
// YAML -> a small tree with line numbers
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Value {
    Map(Vec<Entry>),
    Seq(Vec<Node>),
    /// A resolved scalar, its text as written, and whether it was plain (unquoted).
    Scalar {
        yaml: Yaml,
        raw: String,
        plain: bool,
    },
    /// A scalar with a tag we do not resolve (`!custom x`).
    Tagged(String),
}

#[derive(Debug, Clone)]
struct Node {
    value: Value,
    line: usize,
}

#[derive(Debug, Clone)]
struct Entry {
    key: String,
    line: usize,
    node: Node,
}

enum Frame {
    Map { entries: Vec<Entry>, pending: Option<(String, usize)>, line: usize, anchor: usize, tag: Option<String> },
    Seq { items: Vec<Node>, line: usize, anchor: usize, tag: Option<String> },
}

/// A tag we do not resolve on a mapping or list (`!!python/tuple [0.3, 1.0]`): anything but
/// YAML's own `!!map` / `!!seq` (`standard`).
fn foreign_tag(tag: Option<&yaml_rust2::parser::Tag>, standard: &str) -> Option<String> {
    let t = tag?;
    let yaml = t.handle == "tag:yaml.org,2002:" || t.handle == "!!";
    (!(yaml && t.suffix == standard)).then(|| format!("{}{}", if yaml { "!!" } else { t.handle.as_str() }, t.suffix))
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    docs: Vec<Node>,
    anchors: HashMap<usize, Node>,
    /// Values (scalars, lists, mappings) of each anchored node, aliases expanded.
    anchor_sizes: HashMap<usize, usize>,
    /// Values built so far, aliases expanded (bounded by [`MAX_VALUES`]).
    values: usize,
    error: Option<ImportError>,
}

/// The most values (scalars, lists, mappings) a config may hold once its aliases are expanded:
/// an official I-JEPA config has about 60; a few lines of nested aliases can expand to
/// billions ("billion laughs"), which must be an error, not an exhausted memory.
const MAX_VALUES: usize = 100_000;

/// Values of `node`, itself included.
fn size(node: &Node) -> usize {
    1 + match &node.value {
        Value::Map(entries) => entries.iter().map(|e| size(&e.node)).sum(),
        Value::Seq(items) => items.iter().map(size).sum(),
        Value::Scalar { .. } | Value::Tagged(_) => 0,
    }
}

impl Builder {
    fn path(&self) -> String {
        let mut parts = Vec::new();
        for f in &self.stack {
            match f {
                Frame::Map { pending: Some((k, _)), .. } => parts.push(k.clone()),
                Frame::Map { .. } => {}
                Frame::Seq { items, .. } => parts.push(format!("[{}]", items.len())),
            }
        }
        parts.join(".").replace(".[", "[")
    }

    fn fail(&mut self, e: ImportError) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    fn complete(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchor_sizes.insert(anchor, size(&node));
            self.anchors.insert(anchor, node.clone());
        }
        let path_with = |b: &Builder, key: &str| {
            let p = b.path();
            if p.is_empty() {
                key.to_string()
            } else {
                format!("{p}.{key}")
            }
        };
        match self.stack.last() {
            None => self.docs.push(node),
            Some(Frame::Seq { .. }) => {
                if let Some(Frame::Seq { items, .. }) = self.stack.last_mut() {
                    items.push(node);
                }
            }
            Some(Frame::Map { pending: None, entries, .. }) => {
                let Value::Scalar { raw, .. } = &node.value else {
                    let p = self.path();
                    self.fail(ImportError::WrongType {
                        key: if p.is_empty() { "(document)".into() } else { p },
                        line: node.line,
                        expected: "a plain key".into(),
                        found: "a mapping or list used as a key".into(),
                    });
                    return;
                };
                if entries.iter().any(|e| &e.key == raw) {
                    let key = path_with(self, raw);
                    self.fail(ImportError::DuplicateKey { key, line: node.line });
                    return;
                }
                let raw = raw.clone();
                if let Some(Frame::Map { pending, .. }) = self.stack.last_mut() {
                    *pending = Some((raw, node.line));
                }
            }
            Some(Frame::Map { pending: Some(_), .. }) => {
                if let Some(Frame::Map { pending, entries, .. }) = self.stack.last_mut() {
                    if let Some((key, line)) = pending.take() {
                        entries.push(Entry { key, line, node });
                    }
                }
            }
        }
    }
}

/// A mapping's entries with YAML 1.1's merge key applied (`<<: *base`, `<<: [*a, *b]`), as
/// PyYAML, the official code's loader, applies it: the keys of the merged mapping(s) that the
/// mapping does not set itself, the first mapping of a list winning (it was an "unknown key
/// `data.<<`"). An error (line, what was found) where `<<` holds no mapping.
fn merged(mut entries: Vec<Entry>) -> Result<Vec<Entry>, (usize, String)> {
    let Some(i) = entries.iter().position(|e| e.key == "<<") else { return Ok(entries) };
    let merge = entries.remove(i);
    let sources = match merge.node.value {
        Value::Map(_) => vec![merge.node],
        Value::Seq(items) if items.iter().all(|n| matches!(n.value, Value::Map(_))) => items,
        Value::Seq(_) => return Err((merge.line, "a list of other values than mappings".into())),
        other => return Err((merge.line, kind_of(&other))),
    };
    for source in sources {
        if let Value::Map(more) = source.value {
            for e in more {
                if !entries.iter().any(|x| x.key == e.key) {
                    entries.push(e);
                }
            }
        }
    }
    Ok(entries)
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let line = mark.line();
        let added = match &ev {
            Event::MappingStart(..) | Event::SequenceStart(..) | Event::Scalar(..) => 1,
            Event::Alias(id) => self.anchor_sizes.get(id).copied().unwrap_or(0),
            _ => 0,
        };
        self.values = self.values.saturating_add(added);
        if self.values > MAX_VALUES {
            return self.fail(ImportError::Syntax {
                line,
                column: mark.col() + 1,
                message: format!(
                    "the file holds more than {MAX_VALUES} values once its aliases (*name) are expanded (an official config has about 60): \
                     aliases of aliases multiply; write the values out"
                ),
            });
        }
        match ev {
            Event::MappingStart(anchor, tag) => {
                let tag = foreign_tag(tag.as_ref(), "map");
                self.stack.push(Frame::Map { entries: Vec::new(), pending: None, line, anchor, tag });
            }
            Event::SequenceStart(anchor, tag) => {
                let tag = foreign_tag(tag.as_ref(), "seq");
                self.stack.push(Frame::Seq { items: Vec::new(), line, anchor, tag });
            }
            // a tagged mapping or list is refused as a tagged scalar is (its values unread)
            Event::MappingEnd | Event::SequenceEnd => match self.stack.pop() {
                Some(Frame::Map { line, anchor, tag: Some(t), .. }) => self.complete(Node { value: Value::Tagged(format!("{t} {{...}}")), line }, anchor),
                Some(Frame::Seq { line, anchor, tag: Some(t), .. }) => self.complete(Node { value: Value::Tagged(format!("{t} [...]")), line }, anchor),
                Some(Frame::Map { entries, line, anchor, .. }) => match merged(entries) {
                    Ok(entries) => self.complete(Node { value: Value::Map(entries), line }, anchor),
                    Err((at, found)) => {
                        let p = self.path();
                        self.fail(ImportError::WrongType {
                            key: if p.is_empty() { "<<".into() } else { format!("{p}.<<") },
                            line: at,
                            expected: "a mapping or a list of mappings to merge (`<<: *base`)".into(),
                            found,
                        });
                    }
                },
                Some(Frame::Seq { items, line, anchor, .. }) => {
                    self.complete(Node { value: Value::Seq(items), line }, anchor);
                }
                None => {}
            },
            Event::Scalar(text, style, anchor, tag) => {
                let plain = style == TScalarStyle::Plain;
                let value = match tag {
                    Some(t) if t.handle == "tag:yaml.org,2002:" || t.handle == "!!" => {
                        match t.suffix.as_str() {
                            "str" => Value::Scalar {
                                yaml: Yaml::String(text.clone()),
                                raw: text,
                                plain: false,
                            },
                            // `!!float 224` is the float 224.0 (PyYAML's too), not an int
                            "float" => Value::Scalar {
                                yaml: match Yaml::from_str(&text) {
                                    Yaml::Integer(_) => Yaml::Real(text.clone()),
                                    other => other,
                                },
                                raw: format!("!!float {text}"),
                                plain: true,
                            },
                            // (marked: PyYAML's `!!int` reads `0o14` as 12, untagged as a string)
                            "int" => Value::Scalar {
                                yaml: Yaml::from_str(&text),
                                raw: format!("!!int {text}"),
                                plain: true,
                            },
                            "bool" | "null" => Value::Scalar {
                                yaml: plain_scalar(&text),
                                raw: text,
                                plain: true,
                            },
                            other => Value::Tagged(format!("!!{other} {text}")),
                        }
                    }
                    Some(t) => Value::Tagged(format!("{}{} {text}", t.handle, t.suffix)),
                    None if plain => {
                        Value::Scalar { yaml: plain_scalar(&text), raw: text, plain }
                    }
                    None => Value::Scalar { yaml: Yaml::String(text.clone()), raw: text, plain },
                };
                self.complete(Node { value, line }, anchor);
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(node) => {
                    let node = Node { line, ..node.clone() };
                    self.complete(node, 0);
                }
                None => self.fail(ImportError::Syntax {
                    line,
                    column: mark.col() + 1,
                    message: "alias to an unknown anchor".into(),
                }),
            },
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

fn parse_yaml(src: &str) -> Result<Node, ImportError> {
    let mut b = Builder::default();
    let mut parser = Parser::new_from_str(src);
    parser.load(&mut b, true).map_err(|e| ImportError::Syntax {
        line: e.marker().line(),
        column: e.marker().col() + 1,
        message: e.info().to_string(),
    })?;
    if let Some(e) = b.error {
        return Err(e);
    }
    match b.docs.len() {
        0 => Err(ImportError::Document(
            "the YAML is empty: expected the sections data, logging, mask, meta and optimization"
                .into(),
        )),
        1 => Ok(b.docs.remove(0)),
        n => Err(ImportError::Document(format!(
            "the YAML holds {n} documents (separated by `---`): import one config at a time"
        ))),
    }
}

/// The full-line `#` comments at the top of the YAML (before its first key).
fn leading_comments(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in src.lines() {
        let t = line.trim();
        if let Some(c) = t.strip_prefix('#') {
            out.push(sanitize(c.trim()));
        } else if t.is_empty() || t == "---" {
            continue;
        } else {
            break;
        }
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out
}

/// A plain scalar's value as the YAML 1.2 core schema (and PyYAML) reads it: `Null` and `NULL`
/// are null there too, where yaml-rust2 reads only `null`, `~` and nothing as null (`read_checkpoint:
/// Null` was the text "Null").
fn plain_scalar(text: &str) -> Yaml {
    match text {
        "Null" | "NULL" => Yaml::Null,
        _ => Yaml::from_str(text),
    }
}

/// Text made safe for a `//` comment (no control characters, none of the line separators
/// KDL v2 reads as a newline: U+2028 and U+2029 ended the comment, and what followed them was
/// read as KDL, nor the code points it forbids anywhere, U+202E say).
fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_control() || is_kdl_newline(c) || is_kdl_disallowed(c) { ' ' } else { c }).collect()
}

/// The Unicode line separators KDL v2 counts as newlines besides the control characters'
/// (CR, LF, NEL, FF, VT).
fn is_kdl_newline(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}')
}

// ------------------------------------------------------------------------------------------
// The official schema
// ------------------------------------------------------------------------------------------

/// Every key `src/train.py` reads, by section.
const SCHEMA: &[(&str, &[&str])] = &[
    (
        "data",
        &[
            "batch_size",
            "color_jitter_strength",
            "crop_scale",
            "crop_size",
            "image_folder",
            "num_workers",
            "pin_mem",
            "root_path",
            "use_color_distortion",
            "use_gaussian_blur",
            "use_horizontal_flip",
        ],
    ),
    ("logging", &["folder", "write_tag"]),
    (
        "mask",
        &[
            "allow_overlap",
            "aspect_ratio",
            "enc_mask_scale",
            "min_keep",
            "num_enc_masks",
            "num_pred_masks",
            "patch_size",
            "pred_mask_scale",
        ],
    ),
    (
        "meta",
        &[
            "copy_data",
            "load_checkpoint",
            "model_name",
            "pred_depth",
            "pred_emb_dim",
            "read_checkpoint",
            "use_bfloat16",
        ],
    ),
    (
        "optimization",
        &[
            "ema",
            "epochs",
            "final_lr",
            "final_weight_decay",
            "ipe_scale",
            "lr",
            "start_lr",
            "warmup",
            "weight_decay",
        ],
    ),
];

/// Keys that may be left out: they have no equivalent and change nothing when absent.
const OPTIONAL: &[&str] = &[
    "data.pin_mem",
    "logging.folder",
    "logging.write_tag",
    "meta.copy_data",
    "meta.load_checkpoint",
    "meta.read_checkpoint",
];

/// A number as written: integers stay integers in the output.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Num {
    value: f64,
    int: Option<i64>,
}

impl Num {
    fn kdl(self) -> String {
        match self.int {
            Some(i) => i.to_string(),
            None => fmt_f64(self.value),
        }
    }
}

/// Shortest text that reads back as the same f64, always with a `.` or an exponent.
fn fmt_f64(v: f64) -> String {
    format!("{v:?}")
}

struct Str {
    value: String,
    line: usize,
}

/// The values of an official config, typed.
struct Official {
    // data
    batch_size: u64,
    color_jitter_strength: Num,
    crop_scale: (Num, Num),
    crop_size: u64,
    image_folder: Str,
    num_workers: u64,
    pin_mem: Option<bool>,
    root_path: Str,
    use_color_distortion: bool,
    use_gaussian_blur: bool,
    use_horizontal_flip: bool,
    // logging
    folder: Option<Str>,
    /// The logging keys written as null (`write_tag: null`), said where they are dropped: they
    /// went without a word.
    logging_nulls: Vec<&'static str>,
    write_tag: Option<Str>,
    // mask
    allow_overlap: bool,
    aspect_ratio: (Num, Num),
    enc_mask_scale: (Num, Num),
    min_keep: u64,
    num_enc_masks: u64,
    num_pred_masks: u64,
    patch_size: u64,
    pred_mask_scale: (Num, Num),
    // meta
    copy_data: Option<bool>,
    load_checkpoint: Option<bool>,
    model_preset: &'static str,
    model_name: String,
    pred_depth: u64,
    pred_emb_dim: u64,
    read_checkpoint: Option<Str>,
    use_bfloat16: bool,
    // optimization
    ema: (Num, Num),
    epochs: u64,
    final_lr: Num,
    final_weight_decay: Num,
    ipe_scale: Num,
    lr: Num,
    start_lr: Num,
    warmup: Num,
    weight_decay: Num,
}

/// Typed access to the checked tree.
struct Reader<'a> {
    sections: HashMap<&'static str, HashMap<&'a str, &'a Entry>>,
}

fn kind_of(v: &Value) -> String {
    match v {
        Value::Map(_) => "a mapping".into(),
        Value::Seq(_) => "a list".into(),
        Value::Scalar { yaml: Yaml::Null, .. } => "null".into(),
        Value::Scalar { raw, plain: true, .. } => format!("`{}`", sanitize(raw)),
        Value::Scalar { raw, .. } => format!("the string {:?}", raw),
        Value::Tagged(t) => format!("`{}` (YAML tags are not supported)", sanitize(t)),
    }
}

impl<'a> Reader<'a> {
    fn entry(&self, key: &str) -> Option<&'a Entry> {
        let (section, name) = key.split_once('.')?;
        self.sections.get(section).and_then(|s| s.get(name)).copied()
    }

    fn wrong(&self, key: &str, expected: &str) -> ImportError {
        let e = self.entry(key);
        ImportError::WrongType {
            key: key.to_string(),
            line: e.map(|e| e.line).unwrap_or(0),
            expected: expected.to_string(),
            found: e.map(|e| kind_of(&e.node.value)).unwrap_or_else(|| "nothing".into()),
        }
    }

    fn line(&self, key: &str) -> usize {
        self.entry(key).map(|e| e.line).unwrap_or(0)
    }

    /// An error when the number written at `key` (or one of its list's) reads otherwise under
    /// PyYAML, the official code's loader ([`pyyaml_reads_otherwise`]).
    fn as_pyyaml(&self, key: &str) -> Result<(), ImportError> {
        let scalars: Vec<&Value> = match self.entry(key).map(|e| &e.node.value) {
            Some(Value::Seq(items)) => items.iter().map(|n| &n.value).collect(),
            Some(v) => vec![v],
            None => Vec::new(),
        };
        for v in scalars {
            if let Value::Scalar { raw, plain: true, .. } = v {
                if let Some(reason) = pyyaml_reads_otherwise(raw) {
                    return Err(ImportError::Unsupported { key: key.to_string(), line: self.line(key), value: sanitize(raw), reason });
                }
            }
        }
        Ok(())
    }

    fn uint(&self, key: &str, min: u64) -> Result<u64, ImportError> {
        self.as_pyyaml(key)?;
        match self.entry(key).map(|e| &e.node.value) {
            Some(Value::Scalar { yaml: Yaml::Integer(i), .. }) if *i >= 0 && *i as u64 >= min => {
                Ok(*i as u64)
            }
            // `3_00`: 300 to PyYAML (the official loader), a string in YAML 1.2
            Some(Value::Scalar { yaml: Yaml::String(_), raw, plain: true }) if let Some(i) = pyyaml_underscored_int(raw).filter(|&i| i >= 0 && i as u64 >= min) => {
                Ok(i as u64)
            }
            // (a whole number past 64 bits: "expected an integer >= 1, found 18446744073709551616"
            // read as a contradiction)
            Some(Value::Scalar { raw, plain: true, .. }) if raw.len() > 18 && raw.strip_prefix('+').unwrap_or(raw).bytes().all(|b| b.is_ascii_digit()) => {
                Err(self.wrong(key, &format!("an integer from {min} to {} (this one is too large)", i64::MAX)))
            }
            _ if min == 0 => Err(self.wrong(key, "a non-negative integer")),
            _ => Err(self.wrong(key, &format!("an integer >= {min}"))),
        }
    }

    fn num_of(v: &Value) -> Option<Num> {
        match v {
            Value::Scalar { yaml: Yaml::Integer(i), .. } => {
                Some(Num { value: *i as f64, int: Some(*i) })
            }
            Value::Scalar { yaml: Yaml::Real(text), .. } => {
                let t = text.strip_prefix('+').unwrap_or(text);
                t.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .map(|value| Num { value, int: None })
            }
            // `3_00`: a string in YAML 1.2, the int 300 to PyYAML (it drops the `_`)
            Value::Scalar { yaml: Yaml::String(_), raw, plain: true } if let Some(i) = pyyaml_underscored_int(raw) => {
                Some(Num { value: i as f64, int: Some(i) })
            }
            // `0.000_2`: a string in YAML 1.2, the float 0.0002 to PyYAML (it drops the `_`)
            Value::Scalar { yaml: Yaml::String(_), raw, plain: true } if raw.contains('_') && pyyaml_float(raw) => {
                let t = raw.replace('_', "");
                t.strip_prefix('+').unwrap_or(&t).parse::<f64>().ok().filter(|v| v.is_finite()).map(|value| Num { value, int: None })
            }
            _ => None,
        }
    }

    /// A number the official code reads with Python's `float()` (`weight_decay`,
    /// `final_weight_decay`): a string PyYAML hands it (`4e-2`, `'0.04'`) is the number it
    /// spells, where the official run trains; anything else as [`Reader::num`].
    fn py_float(&self, key: &str) -> Result<Num, ImportError> {
        let text = match self.entry(key).map(|e| &e.node.value) {
            Some(Value::Scalar { yaml: Yaml::String(s), plain: false, .. }) => Some(s.as_str()),
            Some(Value::Scalar { raw, plain: true, .. }) if pyyaml_string_not_float(raw) => Some(raw.as_str()),
            _ => None,
        };
        match text {
            Some(t) => python_float(t).map(|value| Num { value, int: None }).ok_or_else(|| self.wrong(key, "a finite number (the official code reads it with Python's float())")),
            None => self.num(key),
        }
    }

    fn num(&self, key: &str) -> Result<Num, ImportError> {
        self.as_pyyaml(key)?;
        self.entry(key)
            .and_then(|e| Self::num_of(&e.node.value))
            .ok_or_else(|| self.wrong(key, "a finite number"))
    }

    fn pair(&self, key: &str) -> Result<(Num, Num), ImportError> {
        self.as_pyyaml(key)?;
        match self.entry(key).map(|e| &e.node.value) {
            Some(Value::Seq(items)) if items.len() == 2 => {
                match (Self::num_of(&items[0].value), Self::num_of(&items[1].value)) {
                    (Some(a), Some(b)) => Ok((a, b)),
                    // (the element that is not a number named: "found a list" of two said nothing)
                    (a, _) => {
                        let (which, item) = if a.is_none() { ("first", &items[0]) } else { ("second", &items[1]) };
                        Err(ImportError::WrongType {
                            key: key.to_string(),
                            line: self.line(key),
                            expected: "a list of two finite numbers [low, high]".into(),
                            found: format!("a list whose {which} element is {}", kind_of(&item.value)),
                        })
                    }
                }
            }
            Some(Value::Seq(items)) => Err(ImportError::WrongType {
                key: key.to_string(),
                line: self.line(key),
                expected: "a list of two numbers [low, high]".into(),
                found: format!("a list of {}", items.len()),
            }),
            _ => Err(self.wrong(key, "a list of two numbers [low, high]")),
        }
    }

    fn boolean(&self, key: &str) -> Result<bool, ImportError> {
        match self.entry(key).map(|e| &e.node.value) {
            Some(Value::Scalar { yaml: Yaml::Boolean(b), .. }) => Ok(*b),
            // YAML 1.1 booleans, which PyYAML (the official loader) also accepts
            Some(Value::Scalar { raw, plain: true, .. }) => match raw.as_str() {
                "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Ok(true),
                "no" | "No" | "NO" | "off" | "Off" | "OFF" => Ok(false),
                _ => Err(self.wrong(key, "true or false")),
            },
            _ => Err(self.wrong(key, "true or false")),
        }
    }

    /// An optional switch; null is false, as for the official code's `if copy_data:` (PyYAML's
    /// None is falsy: `copy_data: null` was refused, where the official code runs).
    fn is_null(&self, key: &str) -> bool {
        matches!(self.entry(key).map(|e| &e.node.value), Some(Value::Scalar { yaml: Yaml::Null, .. }))
    }

    fn opt_bool(&self, key: &str) -> Result<Option<bool>, ImportError> {
        match self.entry(key).map(|e| &e.node.value) {
            Some(Value::Scalar { yaml: Yaml::Null, .. }) => Ok(Some(false)),
            _ => self.entry(key).map(|_| self.boolean(key)).transpose(),
        }
    }

    fn string(&self, key: &str) -> Result<Str, ImportError> {
        match self.entry(key) {
            Some(Entry {
                node: Node { value: Value::Scalar { yaml: Yaml::String(s), .. }, line },
                ..
            }) => Ok(Str { value: s.clone(), line: *line }),
            _ => Err(self.wrong(key, "a string (quote it if it looks like a number)")),
        }
    }

    fn opt_string(&self, key: &str) -> Result<Option<Str>, ImportError> {
        match self.entry(key).map(|e| &e.node.value) {
            None | Some(Value::Scalar { yaml: Yaml::Null, .. }) => Ok(None),
            Some(_) => self.string(key).map(Some),
        }
    }

    /// An optional key the official code formats into a file name (`f'{tag}_r{rank}.csv'`):
    /// any scalar, as written (`write_tag: 2024` was refused, where the official code runs).
    fn opt_text(&self, key: &str) -> Result<Option<Str>, ImportError> {
        match self.entry(key) {
            None | Some(Entry { node: Node { value: Value::Scalar { yaml: Yaml::Null, .. }, .. }, .. }) => Ok(None),
            Some(Entry { node: Node { value: Value::Scalar { yaml: Yaml::String(s), .. }, line }, .. }) => Ok(Some(Str { value: s.clone(), line: *line })),
            Some(Entry { node: Node { value: Value::Scalar { raw, plain: true, .. }, line }, .. }) => Ok(Some(Str { value: raw.clone(), line: *line })),
            Some(_) => Err(self.wrong(key, "a string")),
        }
    }
}

/// Why PyYAML (YAML 1.1, the official code's loader) reads the plain scalar `raw` as another
/// value than this importer (YAML 1.2) does, for the integers where the two differ: a leading
/// zero is octal to PyYAML (`0300` is 192 there, 300 here), and `0o14` is a string to it (12
/// here). `None` when both read the same.
fn pyyaml_reads_otherwise(raw: &str) -> Option<String> {
    // a float without a decimal point (`1e-3`) or without a sign after the exponent's `e`
    // (`1.0e3`) is a string to PyYAML, the official code then fails on it (`!!float 1e-3` is a
    // float to it: its constructor calls `float`)
    // (an integer too long for 64 bits is a Real here and an int to PyYAML: not this case,
    // whose help suggested a float the importer then refused; its range error says what it is)
    if pyyaml_string_not_float(raw) {
        let like = raw.strip_prefix('+').unwrap_or(raw).parse::<f64>().ok().filter(|v| v.is_finite()).map(|v| {
            let s = v.to_string();
            if s.contains('.') { s } else { format!("{s}.0") }
        });
        return Some(format!(
            "PyYAML, the official code's loader, reads it as a string, not a number (its floats need a decimal point, and a sign after the exponent's e, as in 1.0e-3), and the official code fails on it; write {}",
            like.map_or_else(|| "it with a decimal point".to_string(), |l| format!("`{l}`"))
        ));
    }
    // YAML 1.1 ints that YAML 1.2 reads as strings: binary `0b...` and base 60 (`5:00` is 300
    // to PyYAML), named with PyYAML's value (they were "expected an integer, found `5:00`")
    if let Some((value, form)) = pyyaml_other_int(raw) {
        return Some(format!(
            "PyYAML, the official code's loader, reads it as the {form} number {value} (YAML 1.2, which this importer reads, as text); write {value} (or quote it if you meant text)"
        ));
    }
    // `!!int 0o14` is 12 to PyYAML too (its int constructor takes the prefix); a leading zero
    // is octal to it tagged or not
    let (tagged, raw) = match raw.strip_prefix("!!int ") {
        Some(r) => (true, r.trim()),
        None => (false, raw),
    };
    let sign = if raw.starts_with('-') { "-" } else { "" };
    let digits = raw.strip_prefix(['+', '-']).unwrap_or(raw);
    if !tagged && digits.len() > 2 && (digits.starts_with("0o") || digits.starts_with("0O")) && digits[2..].bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Some("PyYAML, the official code's loader, reads `0o...` as a string (the official code fails on it); write the number in decimal".into());
    }
    let rest = digits.strip_prefix('0')?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if rest.bytes().any(|b| b == b'8' || b == b'9') {
        return Some("PyYAML, the official code's loader, reads a number with a leading 0 and an 8 or 9 as a string (the official code fails on it); write the number without the leading zero".into());
    }
    match (u64::from_str_radix(rest, 8), rest.parse::<u64>()) {
        // `07`: 7 to both
        (Ok(octal), Ok(decimal)) if octal == decimal => None,
        (Ok(octal), Ok(decimal)) => Some(format!(
            "PyYAML, the official code's loader, reads a leading 0 as octal ({sign}{octal}, where this importer would read {sign}{decimal}); write the number in decimal, without the leading zero"
        )),
        _ => Some("PyYAML, the official code's loader, reads a leading 0 as octal; this number is too long for either reading: write it in decimal, without the leading zero".into()),
    }
}

/// Whether the plain scalar `raw` is a float to this importer (YAML 1.2) and a string to PyYAML:
/// a float without a decimal point (`1e-3`) or without a sign after the exponent's `e`
/// (`1.0e3`). (An integer too long for 64 bits is a Real here and an int to PyYAML: not this
/// case.)
fn pyyaml_string_not_float(raw: &str) -> bool {
    let integer = raw.strip_prefix(['+', '-']).unwrap_or(raw).bytes().all(|b| b.is_ascii_digit());
    !raw.starts_with("!!") && !integer && matches!(Yaml::from_str(raw), Yaml::Real(_)) && !pyyaml_float(raw)
}

/// Python's `float(text)` where it is finite: surrounding whitespace ignored, `_` allowed
/// between digits (`1_000.5`), `1e-3`, `.5`, `5.`; `None` for what it refuses or a non-finite
/// value (`inf`, `nan`).
fn python_float(text: &str) -> Option<f64> {
    let t = text.trim();
    let b = t.as_bytes();
    let underscores_ok = b.iter().enumerate().all(|(i, &c)| c != b'_' || (i > 0 && i + 1 < b.len() && b[i - 1].is_ascii_digit() && b[i + 1].is_ascii_digit()));
    let plain = t.replace('_', "");
    let numeric = plain.bytes().all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'));
    (underscores_ok && numeric).then(|| plain.parse::<f64>().ok()).flatten().filter(|v| v.is_finite())
}

/// PyYAML's value of a plain scalar its YAML 1.1 int resolver reads in a form YAML 1.2 reads
/// as a string: binary (`[-+]?0b[0-1_]+`) or base 60 (`[-+]?[1-9][0-9_]*(:[0-5]?[0-9])+`), with
/// the form's name; `None` otherwise (or past 64 bits).
fn pyyaml_other_int(raw: &str) -> Option<(i128, &'static str)> {
    let negative = raw.starts_with('-');
    let unsigned = raw.strip_prefix(['+', '-']).unwrap_or(raw);
    let signed = |v: i128| if negative { -v } else { v };
    if let Some(bits) = unsigned.strip_prefix("0b") {
        let bits: String = bits.chars().filter(|&c| c != '_').collect();
        if !bits.is_empty() && bits.len() <= 64 && bits.bytes().all(|b| b == b'0' || b == b'1') {
            return i128::from_str_radix(&bits, 2).ok().map(|v| (signed(v), "binary"));
        }
        return None;
    }
    let mut parts = unsigned.split(':');
    let head = parts.next()?;
    // (`[1-9][0-9_]*`: a digit first, `_3:00` is a string to PyYAML too)
    if !head.bytes().next().is_some_and(|b| (b'1'..=b'9').contains(&b)) {
        return None;
    }
    let head: String = head.chars().filter(|&c| c != '_').collect();
    let tail: Vec<&str> = parts.collect();
    let head_ok = head.bytes().all(|b| b.is_ascii_digit()) && head.len() <= 18;
    let tail_ok = !tail.is_empty() && tail.len() <= 3 && tail.iter().all(|t| (1..=2).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit()) && t.parse::<u8>().is_ok_and(|v| v < 60) && (t.len() == 1 || t.as_bytes()[0] <= b'5'));
    if !(head_ok && tail_ok) {
        return None;
    }
    let value = tail.iter().fold(head.parse::<i128>().ok()?, |acc, t| acc * 60 + t.parse::<i128>().unwrap_or(0));
    Some((signed(value), "base-60"))
}

/// PyYAML's value of a plain decimal integer written with underscores (`3_00`, `300_`: its
/// YAML 1.1 resolver drops them, YAML 1.2 reads a string), as [`pyyaml_float`]'s floats.
fn pyyaml_underscored_int(raw: &str) -> Option<i64> {
    let unsigned = raw.strip_prefix(['+', '-']).unwrap_or(raw);
    let ok = raw.contains('_') && unsigned.bytes().next().is_some_and(|b| (b'1'..=b'9').contains(&b)) && unsigned.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    let digits = raw.replace('_', "");
    ok.then(|| digits.strip_prefix('+').unwrap_or(&digits).parse::<i64>().ok()).flatten()
}

/// Whether PyYAML reads the plain scalar `s` as a float (its YAML 1.1 resolver, less the
/// base-60 form): `[-+]?[0-9][0-9_]*\.[0-9_]*([eE][-+][0-9]+)?`, `\.[0-9][0-9_]*([eE][-+][0-9]+)?`,
/// `[-+]?.inf` and `.nan` in their three spellings.
fn pyyaml_float(s: &str) -> bool {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") || matches!(s, ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    let Some((whole, rest)) = unsigned.split_once('.') else { return false };
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    let (frac, exp) = rest.find(['e', 'E']).map_or((rest, ""), |i| rest.split_at(i));
    let lead_ok = match whole.as_bytes().first() {
        Some(b) => b.is_ascii_digit() && digits(whole),
        // `.5`: a digit first, and no sign before the point
        None => unsigned.len() == s.len() && frac.as_bytes().first().is_some_and(u8::is_ascii_digit),
    };
    let exp_ok = exp.is_empty() || {
        let e = &exp.as_bytes()[1..];
        e.len() >= 2 && matches!(e[0], b'+' | b'-') && e[1..].iter().all(u8::is_ascii_digit)
    };
    lead_ok && digits(frac) && exp_ok
}

/// Levenshtein distance (small strings).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The known key closest to `key` (written in `section`, or at the top level when None).
fn suggest(section: Option<&str>, key: &str) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    let mut consider = |cand: String, d: usize| {
        if best.as_ref().is_none_or(|(bd, _)| d < *bd) {
            best = Some((d, cand));
        }
    };
    for (sec, keys) in SCHEMA {
        match section {
            None => consider(sec.to_string(), distance(key, sec)),
            Some(s) if s == *sec => {
                for k in *keys {
                    consider(format!("{sec}.{k}"), distance(key, k));
                }
            }
            Some(_) => {
                // the right key in the wrong section
                for k in *keys {
                    if *k == key {
                        consider(format!("{sec}.{k}"), 0);
                    }
                }
            }
        }
        if section.is_none() {
            for k in *keys {
                if *k == key {
                    consider(format!("{sec}.{k}"), 0);
                }
            }
        }
    }
    let limit = (key.chars().count() / 3).max(2);
    best.filter(|(d, _)| *d <= limit).map(|(_, c)| c)
}

impl Official {
    fn read(root: &Node) -> Result<Official, ImportError> {
        let Value::Map(top) = &root.value else {
            return Err(ImportError::WrongType {
                key: "(document)".into(),
                line: root.line,
                expected: "a mapping of the sections data, logging, mask, meta, optimization"
                    .into(),
                found: kind_of(&root.value),
            });
        };
        let mut sections: HashMap<&'static str, HashMap<&str, &Entry>> = HashMap::new();
        for e in top {
            let Some((section, keys)) = SCHEMA.iter().find(|(s, _)| *s == e.key) else {
                return Err(ImportError::UnknownKey {
                    key: e.key.clone(),
                    line: e.line,
                    suggestion: suggest(None, &e.key),
                });
            };
            let Value::Map(entries) = &e.node.value else {
                return Err(ImportError::WrongType {
                    key: e.key.clone(),
                    line: e.line,
                    expected: "a mapping of keys".into(),
                    found: kind_of(&e.node.value),
                });
            };
            let map = sections.entry(section).or_default();
            for k in entries {
                if !keys.contains(&k.key.as_str()) {
                    return Err(ImportError::UnknownKey {
                        key: format!("{section}.{}", k.key),
                        line: k.line,
                        suggestion: suggest(Some(section), &k.key),
                    });
                }
                map.insert(k.key.as_str(), k);
            }
        }
        let missing: Vec<String> = SCHEMA
            .iter()
            .flat_map(|(s, keys)| keys.iter().map(move |k| format!("{s}.{k}")))
            .filter(|k| !OPTIONAL.contains(&k.as_str()))
            .filter(|k| {
                let (s, n) = k.split_once('.').unwrap_or_default();
                !sections.get(s).is_some_and(|m| m.contains_key(n))
            })
            .collect();
        if !missing.is_empty() {
            return Err(ImportError::MissingKeys { keys: missing });
        }
        let r = Reader { sections };

        let model_name = r.string("meta.model_name")?;
        // (the official names only: `vit-huge` is a KeyError in the official `vit.__dict__[...]`)
        let preset_name = model_name.value.replace('_', "-");
        let official_name = !model_name.value.contains('-');
        let Some(model_preset) = VIT_PRESETS.iter().map(|p| p.0).find(|p| official_name && *p == preset_name) else {
            let names: Vec<String> = VIT_PRESETS.iter().map(|p| p.0.replace('-', "_")).collect();
            return Err(ImportError::Unsupported {
                key: "meta.model_name".into(),
                line: model_name.line,
                value: sanitize(&model_name.value),
                reason: format!(
                    "not one of the official encoders ({}); for another shape write `encoder \
                     width= depth= heads=` in the KDL",
                    names.join(", ")
                ),
            });
        };

        let cfg = Official {
            batch_size: r.uint("data.batch_size", 1)?,
            color_jitter_strength: r.num("data.color_jitter_strength")?,
            crop_scale: r.pair("data.crop_scale")?,
            crop_size: r.uint("data.crop_size", 1)?,
            image_folder: r.string("data.image_folder")?,
            num_workers: r.uint("data.num_workers", 0)?,
            pin_mem: r.opt_bool("data.pin_mem")?,
            root_path: r.string("data.root_path")?,
            use_color_distortion: r.boolean("data.use_color_distortion")?,
            use_gaussian_blur: r.boolean("data.use_gaussian_blur")?,
            use_horizontal_flip: r.boolean("data.use_horizontal_flip")?,
            folder: r.opt_string("logging.folder")?,
            logging_nulls: ["logging.folder", "logging.write_tag"].into_iter().filter(|k| r.is_null(k)).collect(),
            write_tag: r.opt_text("logging.write_tag")?,
            allow_overlap: r.boolean("mask.allow_overlap")?,
            aspect_ratio: r.pair("mask.aspect_ratio")?,
            enc_mask_scale: r.pair("mask.enc_mask_scale")?,
            min_keep: r.uint("mask.min_keep", 0)?,
            num_enc_masks: r.uint("mask.num_enc_masks", 1)?,
            num_pred_masks: r.uint("mask.num_pred_masks", 1)?,
            patch_size: r.uint("mask.patch_size", 1)?,
            pred_mask_scale: r.pair("mask.pred_mask_scale")?,
            copy_data: r.opt_bool("meta.copy_data")?,
            load_checkpoint: r.opt_bool("meta.load_checkpoint")?,
            model_preset,
            model_name: model_name.value,
            pred_depth: r.uint("meta.pred_depth", 1)?,
            pred_emb_dim: r.uint("meta.pred_emb_dim", 1)?,
            read_checkpoint: r.opt_string("meta.read_checkpoint")?,
            use_bfloat16: r.boolean("meta.use_bfloat16")?,
            ema: r.pair("optimization.ema")?,
            epochs: r.uint("optimization.epochs", 1)?,
            final_lr: r.num("optimization.final_lr")?,
            final_weight_decay: r.py_float("optimization.final_weight_decay")?,
            ipe_scale: r.num("optimization.ipe_scale")?,
            lr: r.num("optimization.lr")?,
            start_lr: r.num("optimization.start_lr")?,
            warmup: r.num("optimization.warmup")?,
            weight_decay: r.py_float("optimization.weight_decay")?,
        };

        // Values with no equivalent that would change the run.
        if cfg.copy_data == Some(true) {
            return Err(ImportError::Unsupported {
                key: "meta.copy_data".into(),
                line: r.line("meta.copy_data"),
                value: "true".into(),
                reason: "the official code then untars \
                         `<root_path>/imagenet_full_size-061417.tar.gz` into \
                         /scratch/slurm_tmpdir/<job>/ on every node before training; ijepa \
                         reads the image folder in place. Set it to false (extract the data to \
                         local disk yourself and point root_path there if the network is slow)"
                    .into(),
            });
        }
        if cfg.load_checkpoint == Some(true) {
            if let Some(file) = &cfg.read_checkpoint {
                return Err(ImportError::Unsupported {
                    key: "meta.load_checkpoint".into(),
                    line: r.line("meta.load_checkpoint"),
                    value: format!("true (with read_checkpoint: {})", sanitize(&file.value)),
                    reason: "the official code then starts from the checkpoint \
                             `<logging.folder>/<read_checkpoint>`; an experiment cannot start \
                             from a given checkpoint (a run resumes only from its own \
                             runs/<name>/.../checkpoints/latest). Set read_checkpoint: null to \
                             resume, or load_checkpoint: false"
                        .into(),
                });
            }
        }
        if cfg.use_color_distortion {
            let s = cfg.color_jitter_strength.value;
            if s <= 0.0 {
                return Err(ImportError::Unsupported {
                    key: "data.color_jitter_strength".into(),
                    line: r.line("data.color_jitter_strength"),
                    value: cfg.color_jitter_strength.kdl(),
                    reason: "with use_color_distortion: true the official transform applies \
                             ColorJitter(0.8s, 0.8s, 0.8s, 0.2s) with p 0.8, then grayscale \
                             with p 0.2; at strength s <= 0 only the grayscale would remain, \
                             which `color-jitter` cannot express (0 turns it all off). Give a \
                             strength > 0 or set use_color_distortion: false"
                        .into(),
                });
            }
        }
        Ok(cfg)
    }
}

// ------------------------------------------------------------------------------------------
// World size from the logging folder
// ------------------------------------------------------------------------------------------

/// The global batch a logging folder names (`.../vith14.224-bs.2048-ep.300/` -> 2048): the
/// number after a `bs.` that starts a word; None when there is none or several disagree.
fn global_batch(folder: &str) -> Option<u64> {
    let b = folder.as_bytes();
    let mut found: Option<u64> = None;
    let mut i = 0;
    while let Some(pos) = folder[i..].find("bs.") {
        let start = i + pos;
        i = start + 3;
        if start > 0 && b[start - 1].is_ascii_alphanumeric() {
            continue;
        }
        let digits: String = folder[i..].chars().take_while(|c| c.is_ascii_digit()).collect();
        let end = i + digits.len();
        if digits.is_empty() || b.get(end).is_some_and(|c| c.is_ascii_alphanumeric()) {
            continue;
        }
        let n: u64 = digits.parse().ok()?;
        match found {
            Some(m) if m != n => return None,
            _ => found = Some(n),
        }
    }
    found
}

/// What the importer decides about the number of processes.
enum World {
    /// nodes x gpus-per-node processes, from a global batch.
    Derived { global: u64, world: u64, nodes: u64, per_node: u64, folder: String },
    /// No distributed block; the comment says why.
    None(String),
}

fn world(cfg: &Official) -> World {
    let Some(folder) = &cfg.folder else {
        return World::None(
            "The YAML gives no world size (the official launcher takes it from the command \
             line) and no logging folder naming the global batch; batch-size is per GPU. For \
             several GPUs add a `distributed { nodes N; gpus-per-node G; launcher \"slurm\" }` \
             block (docs/language.md)."
                .into(),
        );
    };
    let folder_txt = sanitize(&folder.value);
    let Some(global) = global_batch(&folder.value) else {
        return World::None(format!(
            "The YAML gives no world size (the official launcher takes it from the command line), \
             and its logging folder \"{folder_txt}\" names no global batch (`bs.N`); batch-size is \
             per GPU. For several GPUs add a `distributed {{ nodes N; gpus-per-node G; launcher \
             \"slurm\" }}` block (docs/language.md)."
        ));
    };
    let b = cfg.batch_size;
    if !global.is_multiple_of(b) || global < b {
        return World::None(format!(
            "The logging folder \"{folder_txt}\" names a global batch of {global}, which is not a \
             multiple of batch-size {b} (per GPU), so no world size follows from it. For several \
             GPUs add a `distributed {{ nodes N; gpus-per-node G; launcher \"slurm\" }}` block \
             (docs/language.md)."
        ));
    }
    let world = global / b;
    if world == 1 {
        return World::None(format!(
            "The logging folder \"{folder_txt}\" names a global batch of {global} = batch-size: \
             one GPU, so no `distributed` block."
        ));
    }
    let (nodes, per_node) = if world.is_multiple_of(8) { (world / 8, 8) } else { (1, world) };
    // (a layout the language refuses: the folder's name is a hint, not a setting to fail on)
    use crate::schema::distributed::{MAX_NODES, MAX_PROCS_PER_NODE};
    if nodes > MAX_NODES as u64 || per_node > MAX_PROCS_PER_NODE as u64 {
        return World::None(format!(
            "The logging folder \"{folder_txt}\" names a global batch of {global} = {world} GPUs \
             of batch-size {b}, laid out as {nodes} node(s) x {per_node}, past the language's \
             {MAX_NODES} nodes of at most {MAX_PROCS_PER_NODE} processes; so no `distributed` \
             block. For several GPUs add a `distributed {{ nodes N; gpus-per-node G; launcher \
             \"slurm\" }}` block (docs/language.md)."
        ));
    }
    World::Derived { global, world, nodes, per_node, folder: folder_txt }
}

// ------------------------------------------------------------------------------------------
// Rendering
// ------------------------------------------------------------------------------------------

/// The official configs this importer knows: (YAML stem, shipped preset, dataset, what the paper
/// reports, a note).
struct Known {
    stem: &'static str,
    /// The official config's text (`configs/<stem>.yaml`): a file is the official run when its
    /// settings are this one's, whatever its name.
    yaml: &'static str,
    preset: &'static str,
    dataset: &'static str,
    paper: &'static str,
    note: Option<&'static str>,
}

const IN22K_NOTE: &str = "The official repository has no ImageNet-22K loader, and this YAML's \
    image_folder is the ImageNet-1K one (kept below): point root= at your ImageNet-22K training \
    images, one sub-folder per class, which `image-folder` reads.";

const KNOWN: &[Known] = &[
    Known {
        stem: "in1k_vith14_ep300",
        yaml: include_str!("../tests/fixtures/official-configs/in1k_vith14_ep300.yaml"),
        preset: "experiments/in1k_vith14_ep300.kdl",
        dataset: "ImageNet-1K",
        paper: "The paper reports this run in Table 1 (79.3% top-1, ImageNet linear probe), \
                Table 2 (73.3% with 1% of the labels) and Tables 3-5 (transfer: 87.5% CIFAR-100, \
                58.4% Places205, 47.6% iNat18, 86.7% Clevr/Count, 72.4% Clevr/Dist).",
        note: None,
    },
    Known {
        stem: "in1k_vith16-448_ep300",
        yaml: include_str!("../tests/fixtures/official-configs/in1k_vith16-448_ep300.yaml"),
        preset: "experiments/in1k_vith16-448_ep300.kdl",
        dataset: "ImageNet-1K",
        paper: "The paper reports this run in Table 1 (81.1% top-1, ImageNet linear probe), \
                Table 2 (77.3% with 1% of the labels) and Table 15 (87.1% fine-tuned).",
        note: None,
    },
    Known {
        stem: "in22k_vith14_ep66",
        yaml: include_str!("../tests/fixtures/official-configs/in22k_vith14_ep66.yaml"),
        preset: "experiments/in22k_vith14_ep66.kdl",
        dataset: "ImageNet-22K",
        paper: "The paper reports this run in Table 5 (transfer, linear probes: 89.5% CIFAR-100, \
                57.8% Places205, 50.5% iNat18, 88.6% Clevr/Count, 75.0% Clevr/Dist).",
        note: Some(IN22K_NOTE),
    },
    Known {
        stem: "in22k_vitg16_ep44",
        yaml: include_str!("../tests/fixtures/official-configs/in22k_vitg16_ep44.yaml"),
        preset: "experiments/vitg16_in22k.kdl",
        dataset: "ImageNet-22K",
        paper: "The paper reports this run in Table 5 (transfer, linear probes: 89.5% CIFAR-100, \
                59.1% Places205, 55.3% iNat18, 86.7% Clevr/Count, 73.0% Clevr/Dist). Its logging \
                folder says `vith16`, but model_name is vit_giant: the model is the paper's \
                ViT-G/16.",
        note: Some(IN22K_NOTE),
    },
];

/// Maximum line width of the output.
const WIDTH: usize = 100;

/// Accumulates the KDL text.
#[derive(Default)]
struct Out {
    s: String,
}

impl Out {
    fn blank(&mut self) {
        self.s.push('\n');
    }

    fn line(&mut self, indent: usize, text: &str) {
        let _ = writeln!(self.s, "{:indent$}{text}", "");
    }

    /// A `//` comment paragraph, word-wrapped to the width.
    fn comment(&mut self, indent: usize, text: &str) {
        let room = WIDTH.saturating_sub(indent + 3).max(20);
        // a "- item" paragraph continues under its text
        let hang = if text.starts_with("- ") { "  " } else { "" };
        let mut cur = String::new();
        for word in text.split_whitespace() {
            if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > room {
                self.line(indent, &format!("// {cur}"));
                cur = hang.to_string();
            }
            if cur == hang && !hang.is_empty() {
                cur.push_str(word);
                continue;
            }
            if !cur.is_empty() {
                cur.push(' ');
            }
            cur.push_str(word);
        }
        if cur.is_empty() {
            self.line(indent, "//");
        } else {
            self.line(indent, &format!("// {cur}"));
        }
    }

    /// Rows `code  // comment`, the comments aligned; a comment that does not fit goes on its
    /// own line above its row.
    fn rows(&mut self, indent: usize, rows: &[(String, String)]) {
        let col = rows.iter().map(|(c, _)| c.chars().count()).max().unwrap_or(0) + 2;
        for (code, comment) in rows {
            if comment.is_empty() {
                self.line(indent, code);
            } else if indent + col + 3 + comment.chars().count() <= WIDTH {
                let pad = col - code.chars().count();
                self.line(indent, &format!("{code}{:pad$}// {comment}", ""));
            } else {
                self.comment(indent, comment);
                self.line(indent, code);
            }
        }
    }
}

/// A KDL v2 quoted string.
fn kdl_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || is_kdl_disallowed(c) || is_kdl_newline(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Code points KDL v2 does not allow literally in a document.
fn is_kdl_disallowed(c: char) -> bool {
    matches!(c as u32, 0x200E | 0x200F | 0x202A..=0x202E | 0x2066..=0x2069 | 0xFEFF)
}

fn pair(p: (Num, Num)) -> String {
    format!("{} {}", p.0.kdl(), p.1.kdl())
}

fn yaml_pair(p: (Num, Num)) -> String {
    format!("[{}, {}]", p.0.kdl(), p.1.kdl())
}

fn arch_label(preset: &str, patch: u64) -> String {
    let short = match preset {
        "vit-tiny" => "ViT-Ti",
        "vit-small" => "ViT-S",
        "vit-base" => "ViT-B",
        "vit-large" => "ViT-L",
        "vit-huge" => "ViT-H",
        "vit-giant" => "ViT-G",
        other => other,
    };
    format!("{short}/{patch}")
}

/// `os.path.join(root_path, image_folder, "train/")`: the folder the official loader reads.
fn train_folder(root: &str, image_folder: &str) -> String {
    let join = |a: &str, b: &str| {
        if b.starts_with('/') || a.is_empty() {
            b.to_string()
        } else if a.ends_with('/') {
            format!("{a}{b}")
        } else {
            format!("{a}/{b}")
        }
    };
    join(&join(root, image_folder), "train/")
}

fn on_off(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// The settings of a config that decide what is trained, as (YAML key, value): all but the
/// paths, the logging and the loader's (a site sets them; the official run is still the
/// official run on another cluster), save the processes the logging folder's `bs.N` gives
/// (the global batch, and so the schedules' steps: a folder of another `bs.N`, or none, was
/// called the official run with the paper's numbers, at a sixteenth of its global batch).
fn training_settings(c: &Official) -> Vec<(&'static str, String)> {
    let n = |x: Num| fmt_f64(x.value);
    let p = |x: (Num, Num)| format!("[{}, {}]", n(x.0), n(x.1));
    let processes = match world(c) {
        World::Derived { world, .. } => world.to_string(),
        World::None(_) => "1".to_string(),
    };
    vec![
        ("logging.folder's bs.N (processes)", processes),
        ("data.batch_size", c.batch_size.to_string()),
        ("data.color_jitter_strength", n(c.color_jitter_strength)),
        ("data.crop_scale", p(c.crop_scale)),
        ("data.crop_size", c.crop_size.to_string()),
        ("data.use_color_distortion", c.use_color_distortion.to_string()),
        ("data.use_gaussian_blur", c.use_gaussian_blur.to_string()),
        ("data.use_horizontal_flip", c.use_horizontal_flip.to_string()),
        ("mask.allow_overlap", c.allow_overlap.to_string()),
        ("mask.aspect_ratio", p(c.aspect_ratio)),
        ("mask.enc_mask_scale", p(c.enc_mask_scale)),
        ("mask.min_keep", c.min_keep.to_string()),
        ("mask.num_enc_masks", c.num_enc_masks.to_string()),
        ("mask.num_pred_masks", c.num_pred_masks.to_string()),
        ("mask.patch_size", c.patch_size.to_string()),
        ("mask.pred_mask_scale", p(c.pred_mask_scale)),
        ("meta.model_name", c.model_name.clone()),
        ("meta.pred_depth", c.pred_depth.to_string()),
        ("meta.pred_emb_dim", c.pred_emb_dim.to_string()),
        ("meta.use_bfloat16", c.use_bfloat16.to_string()),
        ("optimization.ema", p(c.ema)),
        ("optimization.epochs", c.epochs.to_string()),
        ("optimization.final_lr", n(c.final_lr)),
        ("optimization.final_weight_decay", n(c.final_weight_decay)),
        ("optimization.ipe_scale", n(c.ipe_scale)),
        ("optimization.lr", n(c.lr)),
        ("optimization.start_lr", n(c.start_lr)),
        ("optimization.warmup", n(c.warmup)),
        ("optimization.weight_decay", n(c.weight_decay)),
    ]
}

/// The official config whose training settings `cfg` has ([`training_settings`]), whatever the
/// file's name; else the one the file is named after, with the settings it changes (`key (official
/// -> this)`), as (config, changes).
fn official_of(cfg: &Official, stem: &str) -> (Option<&'static Known>, Option<(&'static Known, Vec<String>)>) {
    let mine = training_settings(cfg);
    let settings = |k: &Known| parse_yaml(k.yaml).ok().and_then(|root| Official::read(&root).ok()).map(|o| training_settings(&o));
    if let Some(k) = KNOWN.iter().find(|k| settings(k).as_ref() == Some(&mine)) {
        return (Some(k), None);
    }
    let edited = KNOWN.iter().find(|k| k.stem == stem).map(|k| {
        let official = settings(k).unwrap_or_default();
        let changes = official.iter().zip(&mine).filter(|(a, b)| a != b).map(|((key, was), (_, now))| format!("{key} ({was} -> {now})")).collect();
        (k, changes)
    });
    (None, edited)
}

fn render(cfg: &Official, yaml: &str, file: &str, name: &str, yaml_comments: &[String], out: Option<&str>) -> String {
    let stem =
        Path::new(file).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    // (by content: an official file edited for a short run under its name was called the
    // official run, with the paper's numbers; a renamed copy of one was not)
    let (known, edited) = official_of(cfg, &stem);
    let arch = arch_label(cfg.model_preset, cfg.patch_size);
    let world = world(cfg);
    let file_txt = sanitize(file);
    let mut o = Out::default();

    // -- header
    match known {
        Some(k) => o.comment(
            0,
            &format!(
                "{name} - the official I-JEPA pretraining of a {arch} on {} at {} px, {} epochs.",
                k.dataset, cfg.crop_size, cfg.epochs
            ),
        ),
        None => o.comment(
            0,
            &format!(
                "{name} - I-JEPA pretraining of a {arch} at {} px, {} epochs.",
                cfg.crop_size, cfg.epochs
            ),
        ),
    }
    o.line(0, "//");
    let origin = match (known, &edited) {
        (Some(k), _) if k.stem == stem => format!("the official config `{file_txt}` (facebookresearch/ijepa, configs/)"),
        (Some(k), _) => format!("`{file_txt}`, whose settings are the official config `{}.yaml`'s (facebookresearch/ijepa, configs/)", k.stem),
        (None, Some((k, changes))) => format!(
            "`{file_txt}`, the official config `{}.yaml` (facebookresearch/ijepa, configs/) with {} setting{} changed: {}",
            k.stem,
            changes.len(),
            if changes.len() == 1 { "" } else { "s" },
            changes.join(", ")
        ),
        (None, None) => format!("`{file_txt}`"),
    };
    o.comment(
        0,
        &format!(
            "Imported by `ijepa import-yaml` from {origin}: every value below is the YAML's, the \
             trailing comments name its keys, and keys with no equivalent are listed where they \
             were dropped (docs/official-configs.md has the full table)."
        ),
    );
    if let Some(k) = known {
        o.line(0, "//");
        o.comment(0, k.paper);
    }
    if !yaml_comments.is_empty() {
        o.line(0, "//");
        o.comment(0, "The YAML's own note:");
        for c in yaml_comments {
            o.line(0, format!("//   {c}").trim_end());
        }
    }
    if let Some(note) = known.or(edited.as_ref().map(|(k, _)| *k)).and_then(|k| k.note) {
        o.line(0, "//");
        o.comment(0, note);
    }
    o.line(0, "//");
    // (a YAML whose root_path names a folder was told to set it too)
    if train_folder(&cfg.root_path.value, &cfg.image_folder.value).contains("$replace") {
        o.comment(0, "Before running: set root= in the data block to your dataset's training folder.");
    }
    // (the shipped preset is the official file's import, not a renamed copy's, nor an import
    // of the official file with its `root_path` or another key that leaves the training alone
    // edited: that one's header named the preset, which still holds the placeholder root)
    let verbatim = |k: &Known| k.yaml.lines().map(str::trim_end).eq(yaml.lines().map(str::trim_end));
    let target = known.filter(|k| k.stem == stem && verbatim(k)).map(|k| k.preset.to_string());
    let file_ref = out.map(str::to_string).or(target.clone()).unwrap_or_else(|| "FILE.kdl".to_string());
    match &world {
        World::Derived { world, nodes, per_node, .. } => o.comment(
            0,
            &format!(
                "Run: `ijepa slurm {file_ref}` ({world} GPUs: {nodes} node{} x {per_node}, see \
                 `distributed`). Check: `ijepa check {file_ref}`.",
                if *nodes == 1 { "" } else { "s" }
            ),
        ),
        World::None(_) => {
            o.comment(0, &format!("Run: `ijepa run {file_ref}`. Check: `ijepa check {file_ref}`."))
        }
    }
    o.comment(0, "The file is KDL v2 (https://kdl.dev); docs/language.md describes every setting.");
    o.blank();

    let _ = writeln!(o.s, "experiment {} {{", kdl_str(name));
    let i = 4;

    // -- recipe, seed
    o.comment(
        i,
        "The official training code (src/train.py) is the I-JEPA recipe; it fixes the seed at 0.",
    );
    o.line(i, "recipe \"ijepa\"");
    o.line(i, "seed 0");
    o.blank();

    // -- data
    let root = train_folder(&cfg.root_path.value, &cfg.image_folder.value);
    o.comment(
        i,
        "What to train on: the folder the official loader (src/datasets/imagenet1k.py) reads, \
         root_path/image_folder/train/, with one sub-folder per class.",
    );
    if root.contains("$replace") {
        o.comment(
            i,
            "EDIT root= before running: \"$replace_this_...\" is the official placeholder for \
             your datasets folder.",
        );
    }
    let data_line = format!("data \"image-folder\" root={} {{", kdl_str(&root));
    if i + data_line.chars().count() <= WIDTH {
        o.line(i, &data_line);
    } else {
        o.line(i, "data \"image-folder\" \\");
        o.line(i + 4, &format!("root={} {{", kdl_str(&root)));
    }
    let cj = cfg.color_jitter_strength;
    let color = if cfg.use_color_distortion {
        (
            format!("color-jitter {}", cj.kdl()),
            "use_color_distortion: true, color_jitter_strength".to_string(),
        )
    } else {
        (
            "color-jitter 0.0".to_string(),
            format!("use_color_distortion: false (color_jitter_strength {} unused)", cj.kdl()),
        )
    };
    o.rows(
        i + 4,
        &[
            (format!("crop-size {}", cfg.crop_size), "crop_size".into()),
            (format!("crop-scale {}", pair(cfg.crop_scale)), "crop_scale".into()),
            (format!("batch-size {}", cfg.batch_size), "batch_size, per GPU".into()),
            (format!("workers {}", cfg.num_workers), "num_workers".into()),
            (
                format!("horizontal-flip {}", if cfg.use_horizontal_flip { "0.5" } else { "0.0" }),
                format!("use_horizontal_flip: {}", on_off(cfg.use_horizontal_flip)),
            ),
            color,
            (
                format!("gaussian-blur {}", if cfg.use_gaussian_blur { "0.5" } else { "0.0" }),
                format!("use_gaussian_blur: {}", on_off(cfg.use_gaussian_blur)),
            ),
        ],
    );
    if let Some(p) = cfg.pin_mem {
        o.comment(
            i + 4,
            &format!(
                "pin_mem: {} - dropped: batches are pinned automatically when training on CUDA.",
                on_off(p)
            ),
        );
    }
    o.line(i, "}");
    o.blank();

    // -- encoder, predictor
    o.comment(
        i,
        &format!(
            "The encoder: meta.model_name {} with mask.patch_size {} (the official code takes the \
             model's patch size from the mask section): a {arch}.",
            sanitize(&cfg.model_name),
            cfg.patch_size
        ),
    );
    o.line(i, &format!("encoder \"{}\" patch={}", cfg.model_preset, cfg.patch_size));
    o.blank();
    o.comment(
        i,
        "The predictor: meta.pred_depth blocks of width meta.pred_emb_dim; its heads are the \
         encoder's, as in the official code.",
    );
    o.line(i, &format!("predictor depth={} width={}", cfg.pred_depth, cfg.pred_emb_dim));
    o.blank();

    // -- mask
    o.comment(
        i,
        "The multi-block mask sampler (src/masks/multiblock.py). Ranges are `low high`; the \
         context aspect, the corner sampler and the shared scale/aspect draw are fixed in the \
         official code.",
    );
    o.line(i, "mask \"multi-block\" {");
    o.rows(
        i + 4,
        &[
            (format!("targets count={} {{", cfg.num_pred_masks), "num_pred_masks".into()),
            (format!("    scale {}", pair(cfg.pred_mask_scale)), "pred_mask_scale".into()),
            (format!("    aspect {}", pair(cfg.aspect_ratio)), "aspect_ratio".into()),
            ("}".into(), String::new()),
            (format!("context count={} {{", cfg.num_enc_masks), "num_enc_masks".into()),
            (format!("    scale {}", pair(cfg.enc_mask_scale)), "enc_mask_scale".into()),
            ("    aspect 1.0 1.0".into(), "fixed (1, 1) in the official code".into()),
            ("}".into(), String::new()),
            (format!("min-keep {}", cfg.min_keep), "min_keep".into()),
            (format!("allow-overlap #{}", on_off(cfg.allow_overlap)), "allow_overlap".into()),
            ("corner \"official\"".into(), "randint(0, H - h), issue #60".into()),
            ("aspect-sampling \"shared\"".into(), "one draw for scale and aspect".into()),
        ],
    );
    o.line(i, "}");
    o.blank();

    // -- optimizer
    o.comment(
        i,
        "AdamW with the official schedules (src/helper.py init_opt): linear warmup from start to \
         peak, then cosine to final; weight decay along a cosine. Betas and eps are torch's \
         AdamW defaults, which the official code keeps.",
    );
    o.line(i, "optimizer \"adamw\" {");
    o.rows(
        i + 4,
        &[
            (
                format!(
                    "lr start={} peak={} final={} warmup-epochs={}",
                    cfg.start_lr.kdl(),
                    cfg.lr.kdl(),
                    cfg.final_lr.kdl(),
                    cfg.warmup.kdl()
                ),
                "start_lr, lr, final_lr, warmup".into(),
            ),
            (
                format!(
                    "weight-decay start={} final={} schedule=\"cosine\"",
                    cfg.weight_decay.kdl(),
                    cfg.final_weight_decay.kdl()
                ),
                "weight_decay, final_weight_decay".into(),
            ),
            ("betas 0.9 0.999".into(), String::new()),
            ("eps 1e-8".into(), String::new()),
        ],
    );
    o.line(i, "}");
    o.blank();

    // -- run-level settings
    o.rows(
        i,
        &[
            (
                format!("ema start={} final={}", cfg.ema.0.kdl(), cfg.ema.1.kdl()),
                format!("ema {}", yaml_pair(cfg.ema)),
            ),
            ("loss \"smooth-l1\"".into(), "F.smooth_l1_loss in src/train.py".into()),
            (format!("epochs {}", cfg.epochs), "epochs".into()),
            (format!("ipe-scale {}", cfg.ipe_scale.kdl()), "ipe_scale".into()),
            (
                format!("precision \"{}\"", if cfg.use_bfloat16 { "bf16" } else { "fp32" }),
                format!("use_bfloat16: {}", on_off(cfg.use_bfloat16)),
            ),
            ("checkpoint keep-every=50".into(), "checkpoint_freq = 50 in src/train.py".into()),
        ],
    );
    o.blank();

    // -- distributed
    match &world {
        World::Derived { global, world, nodes, per_node, folder } => {
            let layout = if *nodes > 1 || *per_node == 8 {
                format!("{nodes} node{} x {per_node}", if *nodes == 1 { "" } else { "s" })
            } else {
                format!("1 node x {per_node}")
            };
            o.comment(
                i,
                &format!(
                    "How many GPUs: the YAML has no world size (the official launcher, \
                     main_distributed.py, takes --nodes and --tasks-per-node), but its logging \
                     folder \"{folder}\" names the global batch: {global} images / batch-size {} \
                     per GPU = {world} GPUs = {layout}. The official launcher asked SLURM for 10 \
                     CPUs and 55G per GPU, the defaults of `slurm`; add your partition and time \
                     limit.",
                    cfg.batch_size
                ),
            );
            o.line(i, "distributed {");
            o.line(i + 4, &format!("nodes {nodes}"));
            o.line(i + 4, &format!("gpus-per-node {per_node}"));
            o.line(i + 4, "backend \"nccl\"");
            o.line(i + 4, "launcher \"slurm\"");
            o.line(
                i + 4,
                concat!(
                    "// slurm partition=\"YOUR-PARTITION\" time=\"4300\"",
                    "  // official --time: 4300 minutes"
                ),
            );
            o.line(i, "}");
        }
        World::None(why) => o.comment(i, why),
    }
    o.blank();

    // -- dropped
    let mut dropped: Vec<String> = Vec::new();
    if let Some(f) = &cfg.folder {
        dropped.push(format!(
            "logging.folder \"{}\" - runs go to runs/{name}/ (ijepa run --runs-dir to move them).",
            sanitize(&f.value)
        ));
    }
    if let Some(t) = &cfg.write_tag {
        dropped.push(format!(
            "logging.write_tag \"{}\" - the prefix of the official log and checkpoint files; ours \
             have fixed names (metrics.csv, checkpoints/latest.safetensors).",
            sanitize(&t.value)
        ));
    }
    for key in &cfg.logging_nulls {
        dropped.push(format!("{key}: null - no value to carry over."));
    }
    if let Some(c) = cfg.copy_data {
        dropped
            .push(format!("meta.copy_data: {} - the data is read in place from root=.", on_off(c)));
    }
    match (cfg.load_checkpoint, &cfg.read_checkpoint) {
        (Some(true), None) => dropped.push(
            "meta.load_checkpoint: true - resuming from the latest checkpoint is automatic: a \
             run restarts from its checkpoints/latest.safetensors when there is one."
                .into(),
        ),
        (Some(false), rc) => {
            let extra = match rc {
                Some(f) => format!(
                    " (meta.read_checkpoint \"{}\" is ignored by the official code too while \
                     load_checkpoint is false)",
                    sanitize(&f.value)
                ),
                None => String::new(),
            };
            dropped.push(format!(
                "meta.load_checkpoint: false - a run still resumes from its own latest checkpoint \
                 when there is one, as an interrupted official job does{extra}."
            ));
        }
        (None, Some(f)) => dropped.push(format!(
            "meta.read_checkpoint \"{}\" - ignored without load_checkpoint: true, as in the \
             official code.",
            sanitize(&f.value)
        )),
        _ => {}
    }
    if cfg.read_checkpoint.is_none() && cfg.load_checkpoint.is_some() {
        dropped.push("meta.read_checkpoint: null - nothing to read.".into());
    }
    if !dropped.is_empty() {
        o.comment(i, "Not carried over, having no equivalent here:");
        for d in &dropped {
            o.comment(i, &format!("- {d}"));
        }
    }
    // remove a trailing blank line inside the block
    while o.s.ends_with("\n\n") {
        o.s.pop();
    }
    o.line(0, "}");
    o.s
}
