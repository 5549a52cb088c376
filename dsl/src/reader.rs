//! The schema machinery: reading KDL nodes into typed values while collecting diagnostics.
//!
//! A block of the language is a table of [`Field`]s (node name, [`Shape`], reader function).
//! [`read_children`] dispatches each child node to its field after the structural checks every
//! node gets for free (unknown/duplicate nodes with suggestions, argument counts, unknown or
//! duplicate properties, unexpected children, type annotations). Readers then pull typed,
//! range-checked values with the `Ctx` helpers, which record every value's span under its
//! dotted path (`mask.targets.scale`) so cross-field checks, and later sweeps, can point at the
//! text. Adding a node = one table row + one reader function.

use std::collections::{BTreeMap, BTreeSet};

use kdl::{KdlEntry, KdlNode, KdlValue};
use miette::SourceSpan;

use crate::diagnostics::DslError;

/// Where each setting was written: dotted path (`data.crop-size`, `encoder.patch`,
/// `mask.targets.scale`, ...) to the span of its value (or of its node name for blocks).
/// The experiment node itself is under `experiment`.
pub type SpanMap = BTreeMap<String, SourceSpan>;

/// A value read from the text with the span it came from.
#[derive(Debug, Clone)]
pub(crate) struct Spanned<T> {
    pub value: T,
    pub span: SourceSpan,
}

/// Reading state: the source, the errors so far, and the spans of every setting read.
pub(crate) struct Ctx<'s> {
    pub src: &'s str,
    pub errors: Vec<DslError>,
    pub spans: SpanMap,
    /// Settings whose value was rejected: cross-field checks involving them are skipped so one
    /// mistake does not cascade into confusing follow-up errors.
    pub poisoned: BTreeSet<String>,
    /// (node name, block it belongs in), to tell "this node belongs inside `data`".
    pub locations: Vec<(&'static str, &'static str)>,
    /// (node name, block, help) of nodes later versions will add.
    pub planned: &'static [(&'static str, &'static str, &'static str)],
    /// Where the file being read lives (for `extends` paths) and which files are being read.
    pub origin: Origin,
    /// Every base file read through `extends` (transitively), in the order read.
    pub bases: Vec<std::path::PathBuf>,
    /// The experiment being read starts from a resolved experiment (an `extends` base, or the
    /// experiment a sweep point varies): a node then changes only what it writes, and
    /// `encoder` properties change the current encoder instead of requiring a full shape.
    pub layered: bool,
    /// The recipes this file's sweep varies (`vary "recipe" "ijepa" "mae"`): the experiment
    /// block may then hold the settings of each (every point keeps its own recipe's).
    pub swept_recipes: Vec<String>,
    /// The settings the document's sweeps vary (`vary "PATH" ...`), as written.
    pub swept_paths: Vec<String>,
    /// At a sweep's point, each varied setting's values as written (advice that holds at
    /// every point: a patch that divides every swept crop).
    pub swept_values: std::collections::BTreeMap<String, Vec<String>>,
    /// The setting paths the `extends` bases wrote (transitively): written too, for the
    /// recipe defaults that apply only to what no file wrote.
    pub base_written: BTreeSet<String>,
}

/// The file a [`Ctx`] reads: its folder and the chain of files that led to it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Origin {
    /// Folder that relative `extends` paths start from ("" = the current directory).
    pub dir: std::path::PathBuf,
    /// (identity, name shown in messages) of the files being read, outermost first; the last
    /// one is this file. The identity is the canonical path (or an absolute one when the file
    /// is not on disk), so a cycle is recognised whatever the spelling.
    pub stack: Vec<(std::path::PathBuf, String)>,
    /// The file is read for `ijepa eval` ([`crate::load_study_for_eval`]): the rules of
    /// settings only the pretraining reads (masks, DINO's views and schedules, the monitor) are
    /// not checked, bases' included.
    pub evaluating: bool,
}

impl<'s> Ctx<'s> {
    pub fn new(
        src: &'s str,
        locations: Vec<(&'static str, &'static str)>,
        planned: &'static [(&'static str, &'static str, &'static str)],
    ) -> Self {
        Self {
            src,
            errors: Vec::new(),
            spans: SpanMap::new(),
            poisoned: BTreeSet::new(),
            locations,
            planned,
            origin: Origin::default(),
            bases: Vec::new(),
            layered: false,
            swept_recipes: Vec::new(),
            swept_paths: Vec::new(),
            swept_values: std::collections::BTreeMap::new(),
            base_written: BTreeSet::new(),
        }
    }

    pub fn err(&mut self, e: DslError) {
        self.errors.push(e);
    }

    /// Marks a setting (and so every check that uses it) as already reported.
    pub fn poison(&mut self, path: &str) {
        self.poisoned.insert(path.to_string());
    }

    /// True when none of the settings (or any block above them) was rejected.
    pub fn ok(&self, paths: &[&str]) -> bool {
        paths.iter().all(|p| {
            !self.poisoned.iter().any(|bad| {
                p == bad
                    || (p.starts_with(bad.as_str()) && p.as_bytes().get(bad.len()) == Some(&b'.'))
            })
        })
    }

    /// True when none of the settings, nothing above them and nothing inside them was
    /// rejected: for a rule that reads whole blocks (`mask.targets`: its `scale` refused, the
    /// rule read the default kept in its place).
    pub fn ok_within(&self, paths: &[&str]) -> bool {
        self.ok(paths) && paths.iter().all(|p| !self.poisoned.iter().any(|bad| bad.starts_with(p) && bad.as_bytes().get(p.len()) == Some(&b'.')))
    }

    /// The span a setting was written at, if it was written.
    pub fn span_of(&self, path: &str) -> Option<SourceSpan> {
        self.spans.get(path).copied()
    }

    /// Whether the setting at `path` was written, in this file or in a base it extends.
    pub fn written(&self, path: &str) -> bool {
        self.spans.contains_key(path) || self.base_written.contains(path)
    }

    /// Every setting path written in this file or its bases (what a file extending this one
    /// counts as written): the bases' are taken.
    pub fn all_written(&mut self) -> BTreeSet<String> {
        let mut all = std::mem::take(&mut self.base_written);
        all.extend(self.spans.keys().cloned());
        all
    }

    /// The most specific written span among `paths` (first found), else the experiment node.
    pub fn span_or(&self, paths: &[&str]) -> SourceSpan {
        paths
            .iter()
            .find_map(|p| self.span_of(p))
            .or_else(|| self.span_of("experiment"))
            .unwrap_or_else(|| SourceSpan::from(0..0))
    }

    /// `span` clamped into the text, on char boundaries, without surrounding whitespace.
    pub fn tight(&self, span: SourceSpan) -> SourceSpan {
        tight_span(self.src, span)
    }

    /// Span of a node's name.
    pub fn name_span(&self, node: &KdlNode) -> SourceSpan {
        self.tight(node.name().span())
    }

    /// Span of an entry (`value` or `key=value`).
    pub fn entry_span(&self, entry: &KdlEntry) -> SourceSpan {
        self.tight(entry.span())
    }

    /// Converts an entry's value to `T`, reporting a type/range error under `path`.
    pub fn value<T: FromKdl>(&mut self, entry: &KdlEntry, path: &str) -> Option<Spanned<T>> {
        let span = self.entry_span(entry);
        match T::from_kdl(entry.value()) {
            Ok(value) => {
                self.spans.insert(path.to_string(), span);
                Some(Spanned { value, span })
            }
            Err(Mismatch::Type { help }) => {
                self.poison(path);
                self.err(DslError::WrongType {
                    what: path.to_string(),
                    expected: T::EXPECTED.to_string(),
                    found: describe(entry.value()),
                    span,
                    help,
                });
                None
            }
            Err(Mismatch::Range { message, help }) => {
                self.poison(path);
                self.err(DslError::OutOfRange {
                    what: path.to_string(),
                    message: message.clone(),
                    span,
                    label: message,
                    help,
                });
                None
            }
        }
    }

    /// Reports a broken range rule on a value and poisons its setting.
    pub fn out_of_range(&mut self, path: &str, span: SourceSpan, message: &str, help: &str) {
        self.poison(path);
        self.err(DslError::OutOfRange {
            what: path.to_string(),
            message: message.to_string(),
            span,
            label: message.to_string(),
            help: help.to_string(),
        });
    }

    /// A float with a bound check.
    pub fn f64_in(&mut self, entry: &KdlEntry, path: &str, bound: Bound) -> Option<f64> {
        let v = self.value::<f64>(entry, path)?;
        self.check_f64(v, path, bound)
    }

    /// Checks a float against a bound, reporting under `path`.
    pub fn check_f64(&mut self, v: Spanned<f64>, path: &str, bound: Bound) -> Option<f64> {
        if bound.admits(v.value) {
            Some(v.value)
        } else {
            let help = format!("{path} must be {}; found {}", bound.describe(), v.value);
            self.out_of_range(path, v.span, &format!("must be {}", bound.describe()), &help);
            None
        }
    }

    /// An unsigned integer that must be at least `min`.
    pub fn usize_min(&mut self, entry: &KdlEntry, path: &str, min: usize) -> Option<usize> {
        // (a whole number spelt as a float or in quotes, below the range: `batch-size 0.0` was
        // advised to write 0, which this refused next)
        if let Some(x) = spelled_whole(entry.value()).filter(|x| *x < min as f64) {
            let span = self.entry_span(entry);
            self.out_of_range(path, span, &format!("must be at least {min}"), &format!("{path} must be an integer >= {min}; found {}", shown_whole(x)));
            return None;
        }
        let v = self.value::<usize>(entry, path)?;
        if v.value >= min {
            Some(v.value)
        } else {
            let message = format!("must be at least {min}");
            let help = format!("{path} must be an integer >= {min}; found {}", v.value);
            self.out_of_range(path, v.span, &message, &help);
            None
        }
    }

    /// An unsigned integer in `min ..= max`; `why` says where the ceiling comes from.
    pub fn usize_in(&mut self, entry: &KdlEntry, path: &str, min: usize, max: usize, why: &str) -> Option<usize> {
        // (... or above it: `epochs 1e6` was advised to write 1000000, which this refused next)
        if let Some(x) = spelled_whole(entry.value()).filter(|x| *x > max as f64) {
            let span = self.entry_span(entry);
            self.out_of_range(path, span, &format!("must be at most {max}"), &format!("{path} must be an integer in {min} ..= {max} ({why}); found {}", shown_whole(x)));
            return None;
        }
        let v = self.usize_min(entry, path, min)?;
        if v <= max {
            return Some(v);
        }
        let span = self.entry_span(entry);
        let message = format!("must be at most {max}");
        let help = format!("{path} must be an integer in {min} ..= {max} ({why}); found {v}");
        self.out_of_range(path, span, &message, &help);
        None
    }

    /// A string mapped through a table of keywords (`"cosine"` -> `WdShape::Cosine`).
    pub fn keyword<T: Clone>(
        &mut self,
        entry: &KdlEntry,
        path: &str,
        what: &str,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let s = self.value::<String>(entry, path)?;
        if let Some((_, v)) = choices.iter().find(|(k, _)| *k == s.value) {
            return Some(v.clone());
        }
        self.poison(path);
        let names: Vec<&str> = choices.iter().map(|c| c.0).collect();
        self.err(DslError::UnknownValue {
            what: what.to_string(),
            found: s.value.clone(),
            span: s.span,
            help: choices_help(&s.value, &names),
        });
        None
    }

    /// A `lo hi` range node: two numbers, each within `bound`, with `lo <= hi`.
    /// Records the span of both values under the node's path.
    pub fn range(&mut self, node: &Node, bound: Bound) -> Option<(f64, f64)> {
        self.pair(node, bound, true)
    }

    /// Two numbers, each within `bound`; `ordered` also requires the first <= the second.
    pub fn pair(&mut self, node: &Node, bound: Bound, ordered: bool) -> Option<(f64, f64)> {
        let (a, b) = (node.arg(0)?, node.arg(1)?);
        let path = node.path.as_str();
        let lo = self.value::<f64>(a, path);
        let hi = self.value::<f64>(b, path);
        let (lo, hi) = (lo?, hi?);
        let span = join_spans(lo.span, hi.span);
        let lo = self.check_f64(lo, path, bound);
        let hi = self.check_f64(hi, path, bound);
        let (lo, hi) = (lo?, hi?);
        self.spans.insert(path.to_string(), span);
        if ordered && lo > hi {
            self.poison(path);
            self.err(DslError::RangeOrder {
                what: path.to_string(),
                lo,
                hi,
                span,
                help: format!(
                    "a range is written `{} LOW HIGH`; swap them: `{} {hi} {lo}`",
                    node.name(),
                    node.name()
                ),
            });
            return None;
        }
        Some((lo, hi))
    }
}

/// The allowed values of a number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Bound {
    /// >= 0.
    NonNegative,
    /// > 0.
    Positive,
    /// A positive normal float32, `f32::MIN_POSITIVE` (about 1.2e-38) to `f32::MAX` (about
    /// 3.4e38): a value the engine's float32 keeps (one below it, a DINO temperature, became 0
    /// or a subnormal and the loss NaN; one above it, infinity, a uniform softmax).
    PositiveF32,
    /// In (0, 1].
    UnitOpenClosed,
    /// In [0, 1].
    Unit,
    /// In [0, 1).
    UnitClosedOpen,
}

impl Bound {
    fn admits(self, x: f64) -> bool {
        match self {
            Bound::NonNegative => x >= 0.0,
            Bound::Positive => x > 0.0,
            Bound::PositiveF32 => x >= f64::from(f32::MIN_POSITIVE) && x <= f64::from(f32::MAX),
            Bound::UnitOpenClosed => x > 0.0 && x <= 1.0,
            Bound::Unit => (0.0..=1.0).contains(&x),
            Bound::UnitClosedOpen => (0.0..1.0).contains(&x),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Bound::NonNegative => ">= 0",
            Bound::Positive => "> 0",
            Bound::PositiveF32 => "from 1.2e-38 to 3.4e38 (a positive float32)",
            Bound::UnitOpenClosed => "in (0, 1]",
            Bound::Unit => "in [0, 1]",
            Bound::UnitClosedOpen => "in [0, 1)",
        }
    }
}

/// Why a KDL value could not become the requested type.
pub(crate) enum Mismatch {
    /// Wrong kind of value.
    Type { help: String },
    /// Right kind, impossible value (negative count, non-finite float, ...).
    Range { message: String, help: String },
}

/// A Rust type readable from one KDL value.
pub(crate) trait FromKdl: Sized {
    /// The type in words, for messages.
    const EXPECTED: &'static str;
    /// Converts, or says why not.
    fn from_kdl(v: &KdlValue) -> Result<Self, Mismatch>;
}

/// A whole number as a message shows it: in exponent form from 1e16 (`epochs 1e300` was shown
/// as its 301 digits).
fn shown_whole(x: f64) -> String {
    if x.abs() >= 1e16 {
        format!("{x:e}")
    } else {
        x.to_string()
    }
}

/// The whole number a value spells where it is not written as an integer (`1e6`, `"1000"`,
/// `"-3"`): a setting's range is checked on it before its spelling is advised (the advised
/// spelling was refused next for the range).
fn spelled_whole(v: &KdlValue) -> Option<f64> {
    let x = match v {
        KdlValue::Float(f) => *f,
        KdlValue::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    (x.is_finite() && x.fract() == 0.0).then_some(x + 0.0)
}

fn quoted_number_help(v: &KdlValue) -> Option<String> {
    let KdlValue::String(s) = v else { return None };
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Some(format!("numbers are written without quotes in KDL: write `{}` instead of `\"{s}\"`", s.trim())),
        // (`NaN` and `inf` parse as Rust floats, but in KDL they are words, quoted or not: the
        // help said to write `NaN` instead of `"NaN"` to someone who had written `NaN`)
        // ("1e400": digits beyond the largest float)
        Ok(_) if s.chars().any(|c| c.is_ascii_digit()) => Some(format!("`{s}` is beyond the largest number (about 1.8e308): this setting takes a finite number, written without quotes")),
        Ok(_) => Some(format!("`{s}` is text in KDL, not a number (KDL spells the non-finite floats #nan, #inf and #-inf), and this setting takes a finite number")),
        Err(_) => None,
    }
}

impl FromKdl for f64 {
    const EXPECTED: &'static str = "a number";
    fn from_kdl(v: &KdlValue) -> Result<Self, Mismatch> {
        match v {
            KdlValue::Integer(i) => Ok(*i as f64),
            // (-0.0 is 0: written either way it is one setting, one stage hash)
            KdlValue::Float(f) if f.is_finite() => Ok(*f + 0.0),
            KdlValue::Float(_) => Err(Mismatch::Range {
                message: "must be a finite number".into(),
                // (`1e400` overflows to inf as it is read: what was written is not known here)
                help: "#inf, #-inf, #nan and numbers beyond the largest float (about 1.8e308, so not `1e400`) are not allowed here".into(),
            }),
            _ => Err(Mismatch::Type {
                help: quoted_number_help(v)
                    .unwrap_or_else(|| "write a number such as `0.5` or `2`".into()),
            }),
        }
    }
}

fn integer_from_kdl(v: &KdlValue, max: u128) -> Result<u128, Mismatch> {
    match v {
        KdlValue::Integer(i) if *i < 0 => Err(Mismatch::Range {
            message: "must not be negative".into(),
            help: format!("this setting takes a whole number that is not negative (its range is in docs/language.md); found {i}"),
        }),
        KdlValue::Integer(i) if i.unsigned_abs() > max => Err(Mismatch::Range {
            message: "too large".into(),
            help: format!("{} is beyond any value this setting takes (its range is in docs/language.md)", v),
        }),
        KdlValue::Integer(i) => Ok(i.unsigned_abs()),
        // (a whole float past the setting's range is too large, not a spelling: `epochs 1e40`
        // was advised to write 340282366920938463463374607431768211455, a saturated cast)
        KdlValue::Float(f) if f.is_finite() && f.fract() == 0.0 && (*f > max as f64 || *f as u128 > max) => Err(Mismatch::Range {
            message: "too large".into(),
            help: format!("{f:e} is beyond any value this setting takes (its range is in docs/language.md)"),
        }),
        KdlValue::Float(f) => Err(Mismatch::Type {
            help: if f.is_finite() && f.fract() == 0.0 && *f >= 0.0 {
                format!("write the integer without a decimal point: `{}`", *f as u128)
            } else {
                "this setting counts whole things; write a whole number such as `4`".into()
            },
        }),
        // (a quoted number is advised as the integer it spells: `"1e3"` was advised `1e3`, then
        // `1000`; `"1.5"` was advised `1.5`, then a whole number)
        _ => Err(Mismatch::Type {
            // (nor a negative or too large one as itself: `seed "-3"` was advised -3)
            help: match (v, spelled_whole(v)) {
                (KdlValue::String(s), Some(x)) if x >= 0.0 && (x as u128) <= max => format!("numbers are written without quotes in KDL: write `{}` instead of `\"{s}\"`", x as u128),
                (KdlValue::String(s), Some(x)) if x < 0.0 => format!("this setting takes a whole number that is not negative, written without quotes (found `\"{s}\"`)"),
                (KdlValue::String(s), Some(_)) => format!("`{s}` is beyond any value this setting takes (its range is in docs/language.md); numbers are written without quotes"),
                _ => quoted_whole_help(v).unwrap_or_else(|| "write a whole number such as `4`".into()),
            },
        }),
    }
}

impl FromKdl for usize {
    const EXPECTED: &'static str = "a non-negative integer";
    fn from_kdl(v: &KdlValue) -> Result<Self, Mismatch> {
        integer_from_kdl(v, usize::MAX as u128).map(|i| i as usize)
    }
}

impl FromKdl for u64 {
    const EXPECTED: &'static str = "a non-negative integer";
    fn from_kdl(v: &KdlValue) -> Result<Self, Mismatch> {
        integer_from_kdl(v, u64::MAX as u128).map(|i| i as u64)
    }
}

impl FromKdl for i64 {
    const EXPECTED: &'static str = "a whole number";
    fn from_kdl(v: &KdlValue) -> Result<Self, Mismatch> {
        match v {
            KdlValue::Integer(i) => i64::try_from(*i).map_err(|_| Mismatch::Range {
                message: "too large".into(),
                help: format!("{i} is beyond a 64-bit whole number"),
            }),
            KdlValue::Float(f) => Err(Mismatch::Type {
                help: if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.2e18 {
                    format!("write the integer without a decimal point: `{}`", *f as i64)
                } else {
                    "this setting takes a whole number such as `4`".into()
                },
            }),
            _ => Err(Mismatch::Type {
                help: match (v, spelled_whole(v)) {
                    (KdlValue::String(s), Some(x)) if x.abs() < 9.2e18 => format!("numbers are written without quotes in KDL: write `{}` instead of `\"{s}\"`", x as i64),
                    (KdlValue::String(s), Some(_)) => format!("`{s}` is beyond a 64-bit whole number; numbers are written without quotes"),
                    _ => quoted_whole_help(v).unwrap_or_else(|| "write a whole number such as `4`".into()),
                },
            }),
        }
    }
}

/// [`quoted_number_help`] for a setting of whole numbers: a quoted fraction (`"1.5"`) is told
/// to be a whole number (it was advised as itself, refused next for its decimals).
fn quoted_whole_help(v: &KdlValue) -> Option<String> {
    match v {
        KdlValue::String(s) if s.trim().parse::<f64>().is_ok_and(f64::is_finite) => {
            Some(format!("this setting counts whole things: write a whole number such as `4`, without quotes (found `\"{s}\"`)"))
        }
        _ => quoted_number_help(v),
    }
}

impl FromKdl for bool {
    const EXPECTED: &'static str = "a boolean";
    fn from_kdl(v: &KdlValue) -> Result<Self, Mismatch> {
        match v {
            KdlValue::Bool(b) => Ok(*b),
            _ => Err(Mismatch::Type {
                help: "KDL v2 booleans are written `#true` and `#false`".into(),
            }),
        }
    }
}

impl FromKdl for String {
    const EXPECTED: &'static str = "a string";
    fn from_kdl(v: &KdlValue) -> Result<Self, Mismatch> {
        match v {
            KdlValue::String(s) => Ok(s.clone()),
            KdlValue::Integer(_) | KdlValue::Float(_) => Err(Mismatch::Type {
                help: "this setting is a name; write it in quotes, e.g. `\"vit-tiny\"`".into(),
            }),
            _ => Err(Mismatch::Type { help: "write a quoted string".into() }),
        }
    }
}

/// A value in words for messages: `string "abc"`, `integer 3`, `float 2.5`, `#true`, `#null`.
pub(crate) fn describe(v: &KdlValue) -> String {
    match v {
        KdlValue::String(s) => {
            let short: String = s.chars().take(40).collect();
            let ell = if short.len() < s.len() { "..." } else { "" };
            format!("string {short:?}{ell}")
        }
        KdlValue::Integer(i) => format!("integer {i}"),
        KdlValue::Float(f) => format!("float {f}"),
        KdlValue::Bool(b) => format!("#{b}"),
        KdlValue::Null => "#null".into(),
    }
}

/// What a node looks like: its positional arguments, properties and whether it has children.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    /// Names of the positional arguments, in order (`["LOW", "HIGH"]`).
    pub args: &'static [&'static str],
    /// How many of `args` must be present.
    pub required: usize,
    /// Property names it accepts.
    pub props: &'static [&'static str],
    /// Whether it takes a children block.
    pub children: bool,
    /// The node's full form, shown in help texts (`lr start=.. peak=.. final=.. warmup-epochs=..`).
    pub usage: &'static str,
}

impl Shape {
    /// A node with exactly one required argument and nothing else (`seed 0`).
    pub const fn scalar(arg: &'static [&'static str], usage: &'static str) -> Self {
        Self { args: arg, required: 1, props: &[], children: false, usage }
    }

    /// A node with two required arguments (`scale 0.15 0.2`).
    pub const fn pair(args: &'static [&'static str], usage: &'static str) -> Self {
        Self { args, required: 2, props: &[], children: false, usage }
    }

    /// A node with only properties (`ema start=0.996 final=1.0`).
    pub const fn props(props: &'static [&'static str], usage: &'static str) -> Self {
        Self { args: &[], required: 0, props, children: false, usage }
    }
}

/// A node that passed its structural checks, with its dotted path.
pub(crate) struct Node<'a> {
    pub kdl: &'a KdlNode,
    pub path: String,
}

impl<'a> Node<'a> {
    /// The node's name.
    pub fn name(&self) -> &'a str {
        self.kdl.name().value()
    }

    /// The `i`-th positional argument.
    pub fn arg(&self, i: usize) -> Option<&'a KdlEntry> {
        self.kdl.entries().iter().filter(|e| e.name().is_none()).nth(i)
    }

    /// The property `name` (the last one if written twice; that is reported separately).
    pub fn prop(&self, name: &str) -> Option<&'a KdlEntry> {
        self.kdl.entries().iter().rev().find(|e| e.name().is_some_and(|n| n.value() == name))
    }

    /// The child nodes (empty without a children block).
    pub fn children(&self) -> &'a [KdlNode] {
        self.kdl.children().map(|d| d.nodes()).unwrap_or(&[])
    }

    /// `self.path` + `.` + `leaf`.
    pub fn sub(&self, leaf: &str) -> String {
        join(&self.path, leaf)
    }

    /// Runs the structural checks of `shape` on `kdl` and returns the node for reading.
    pub fn check(cx: &mut Ctx, kdl: &'a KdlNode, path: String, shape: &Shape) -> Self {
        let name = kdl.name().value();
        let name_span = cx.name_span(kdl);
        if kdl.ty().is_some() {
            cx.err(DslError::Unsupported {
                what: "a type annotation on a node".into(),
                span: name_span,
                help: "remove the `(...)` before the node name".into(),
            });
        }
        let mut positional = 0usize;
        let mut seen: Vec<(&str, SourceSpan)> = Vec::new();
        for entry in kdl.entries() {
            let span = cx.entry_span(entry);
            if entry.ty().is_some() {
                cx.err(DslError::Unsupported {
                    what: "a type annotation on a value".into(),
                    span,
                    help: "remove the `(...)` before the value".into(),
                });
            }
            match entry.name() {
                None => {
                    positional += 1;
                    if positional == shape.args.len() + 1 {
                        cx.poison(&path);
                        cx.err(DslError::ExtraArgument {
                            node: name.to_string(),
                            span,
                            help: args_help(name, shape),
                        });
                    }
                }
                Some(key) => {
                    let key = key.value();
                    if !shape.props.contains(&key) {
                        let help = if shape.props.is_empty() {
                            format!("`{name}` takes no properties; its form is `{}`", shape.usage)
                        } else {
                            choices_help(key, shape.props)
                        };
                        cx.err(DslError::UnknownProperty {
                            name: key.to_string(),
                            node: name.to_string(),
                            span,
                            help,
                        });
                    } else if let Some(&(_, first)) = seen.iter().find(|(k, _)| *k == key) {
                        cx.poison(&join(&path, key));
                        cx.err(DslError::DuplicateProperty {
                            name: key.to_string(),
                            node: name.to_string(),
                            span,
                            first,
                            help: "write each property once".into(),
                        });
                    } else {
                        seen.push((key, span));
                    }
                }
            }
        }
        if positional < shape.required {
            let missing = &shape.args[positional.min(shape.args.len())..shape.required];
            let what = match missing {
                [one] => format!("the argument {one}"),
                more => format!("the arguments {}", more.join(" ")),
            };
            cx.poison(&path);
            cx.err(DslError::MissingArgument {
                node: name.to_string(),
                what,
                span: name_span,
                help: args_help(name, shape),
            });
        }
        if let Some(children) = kdl.children() {
            if !shape.children && !children.nodes().is_empty() {
                cx.err(DslError::UnexpectedChildren {
                    node: name.to_string(),
                    span: cx.tight(children.span()),
                    help: format!("write it as `{}`", shape.usage),
                });
            }
        }
        cx.spans.insert(path.clone(), name_span);
        Node { kdl, path }
    }
}

fn args_help(name: &str, shape: &Shape) -> String {
    let n = shape.args.len();
    // `vary "PATH" V1 ... V64`: the path is no value
    if name == "vary" {
        return format!("`vary` takes the setting's path and up to {} values as arguments (more as `-` children): `{}`", n - 1, shape.usage);
    }
    let count = match (shape.required, n) {
        (_, 0) => "no arguments".to_string(),
        (r, n) if r == n => format!("{n} argument{}", if n == 1 { "" } else { "s" }),
        (r, n) => format!("{r} to {n} arguments"),
    };
    format!("`{name}` takes {count}: `{}`", shape.usage)
}

/// One node a block accepts: its name, its shape and the function that reads it into `T`.
pub(crate) struct Field<T> {
    pub name: &'static str,
    pub shape: Shape,
    pub read: fn(&mut Ctx, &Node, &mut T),
}

/// Nodes that may appear more than once in their block, each with a different first argument
/// (its key: the protocol of an `eval`, the setting of a `vary`), and the help for a repeat.
const REPEATABLE: &[(&str, &str)] = &[
    ("eval", "one `eval` block per protocol; put the variants of a protocol in one block"),
    ("vary", "vary each setting once; list all of its values in one `vary`"),
];

/// The key of a repeatable node: its first argument when that is a string.
fn repeat_key(kdl: &KdlNode) -> Option<&str> {
    kdl.entries().iter().find(|e| e.name().is_none()).and_then(|e| e.value().as_string())
}

/// Reads the child nodes of a block through its field table: unknown names get a suggestion,
/// a second node of the same name is reported, every known node is shape-checked then read.
/// `parent_path` is the dotted path of the block ("" at the experiment level), `parent_label`
/// names it in messages. A repeatable node (`eval "linear"`) gets its key in its path
/// (`eval.linear`), and a second one with the same key is a duplicate.
pub(crate) fn read_children<T>(
    cx: &mut Ctx,
    nodes: &[KdlNode],
    parent_path: &str,
    parent_label: &str,
    fields: &[Field<T>],
    target: &mut T,
) {
    let mut seen: Vec<(String, SourceSpan)> = Vec::new();
    // the settings unknown nodes likely misspell
    let mut meant: Vec<String> = Vec::new();
    for (index, kdl) in nodes.iter().enumerate() {
        let name = kdl.name().value();
        let span = cx.name_span(kdl);
        let Some(field) = fields.iter().find(|f| f.name == name) else {
            if let Some(&(_, _, help)) =
                cx.planned.iter().find(|(n, p, _)| *n == name && *p == parent_label)
            {
                cx.err(DslError::Unsupported {
                    what: format!("the `{name}` node"),
                    span,
                    help: help.to_string(),
                });
                continue;
            }
            // (`sweep` is read in `experiment` only to say it belongs after it)
            let mut names: Vec<&str> = fields.iter().map(|f| f.name).filter(|&n| !(parent_label == "experiment" && n == "sweep")).collect();
            // at the experiment level, the setting nodes registered recipes declare too
            let settings: Vec<String> = if parent_label == "experiment" { crate::recipes::setting_nodes() } else { Vec::new() };
            names.extend(settings.iter().map(String::as_str));
            let help = unknown_node_help(cx, name, parent_label, &names);
            meant.extend(suggest(name, &names).map(str::to_string));
            cx.err(DslError::UnknownNode {
                name: name.to_string(),
                parent: block_label(parent_label),
                span,
                help,
            });
            continue;
        };
        let repeatable = REPEATABLE.iter().find(|(n, _)| *n == name);
        // The identity of the node within its block: its name, or name + key when repeatable
        // (an unkeyed repeatable node gets its position, so it never collides).
        let (key, path) = match repeatable {
            Some(_) => {
                let key = match repeat_key(kdl) {
                    Some(k) => k.to_string(),
                    None => format!("#{index}"),
                };
                (format!("{name}.{key}"), join(parent_path, &format!("{name}.{key}")))
            }
            None => (name.to_string(), join(parent_path, name)),
        };
        if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
            let help = match repeatable {
                Some((_, help)) => help.to_string(),
                None => format!(
                    "`{name}` may appear once in {}; remove one of them",
                    block_label(parent_label)
                ),
            };
            cx.err(DslError::DuplicateNode { name: name.to_string(), span, first: *first, help });
            continue;
        }
        seen.push((key, span));
        let node = Node::check(cx, kdl, path, &field.shape);
        (field.read)(cx, &node, target);
    }
    // a setting an unknown node likely misspells, and not written itself, is as if written
    // wrongly: the rules across settings leave it out (`encodr` gave a patch-vs-crop error of
    // the default encoder); written, its own errors stand
    for m in meant {
        if !seen.iter().any(|(k, _)| *k == m || k.starts_with(&format!("{m}."))) {
            cx.poison(&join(parent_path, &m));
        }
    }
}

fn unknown_node_help(cx: &Ctx, name: &str, parent: &str, known: &[&str]) -> String {
    let homes: Vec<&str> = cx
        .locations
        .iter()
        // (a sub-block of this one only where this block has it: `scale` of `mask.targets`
        // under a multi-block mask, not under a random one, whose kind has no targets)
        .filter(|(n, home)| {
            *n == name
                && *home != parent
                && home.strip_prefix(&format!("{parent}.")).is_none_or(|sub| known.contains(&sub.split('.').next().unwrap_or(sub)))
        })
        .map(|(_, home)| *home)
        .collect();
    if let [home, ..] = homes.as_slice() {
        let here = if home.is_empty() { format!("`{name}` belongs at the top level of the file") } else { format!("`{name}` belongs inside the `{home}` block") };
        // a longer or shorter form of the name in this block (`seed` in a sweep, whose node is
        // `seeds`) is said too
        return match suggest(name, known).filter(|s| s.starts_with(name) || name.starts_with(s)) {
            Some(s) => format!("{here}; here, did you mean `{s}`?"),
            None => here,
        };
    }
    if let Some(s) = suggest(name, known) {
        return format!("did you mean `{s}`?");
    }
    if known.is_empty() {
        // (a `mask "rasterized"`: its kind has no settings)
        return format!("{} takes no nodes here", block_label(parent));
    }
    format!("{} accepts: {}", block_label(parent), known.join(", "))
}

/// A block named in messages: `` `data` ``, or "the top level" for the file itself.
fn block_label(path: &str) -> String {
    if path.is_empty() {
        "the top level".to_string()
    } else {
        format!("`{path}`")
    }
}

/// "did you mean" for a value, or the list of choices.
pub(crate) fn choices_help(found: &str, known: &[&str]) -> String {
    let list = known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
    match suggest(found, known) {
        Some(s) => format!("did you mean `{s}`? known: {list}"),
        None => format!("known: {list}"),
    }
}

/// The known name closest to `name` by edit distance, if close enough to be a typo.
pub(crate) fn suggest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    let limit = (name.chars().count() / 3).max(2);
    known
        .iter()
        .map(|k| (levenshtein(name, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Edit distance (insertions, deletions, substitutions) between two strings, by chars.
pub(crate) fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// `parent.leaf`, or `leaf` at the top.
pub(crate) fn join(parent: &str, leaf: &str) -> String {
    if parent.is_empty() {
        leaf.to_string()
    } else {
        format!("{parent}.{leaf}")
    }
}

/// The span from the start of `a` to the end of `b`.
pub(crate) fn join_spans(a: SourceSpan, b: SourceSpan) -> SourceSpan {
    let start = a.offset().min(b.offset());
    let end = (a.offset() + a.len()).max(b.offset() + b.len());
    SourceSpan::from(start..end)
}

/// `span` clamped into `src`, moved onto char boundaries, with surrounding whitespace removed
/// (the KDL parser's node spans include trailing whitespace).
pub(crate) fn tight_span(src: &str, span: SourceSpan) -> SourceSpan {
    let mut start = span.offset().min(src.len());
    let mut end = span.offset().saturating_add(span.len()).min(src.len()).max(start);
    while start > 0 && !src.is_char_boundary(start) {
        start -= 1;
    }
    while end < src.len() && !src.is_char_boundary(end) {
        end += 1;
    }
    if let Some(text) = src.get(start..end) {
        let trimmed_start = text.len() - text.trim_start().len();
        let trimmed = text.trim();
        if !trimmed.is_empty() {
            start += trimmed_start;
            end = start + trimmed.len();
        }
    }
    SourceSpan::from(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levenshtein_basics() {
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("batch-size", "batch-size"), 0);
        assert_eq!(levenshtein("bacth-size", "batch-size"), 2);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("optimiser", &["optimizer", "epochs"]), Some("optimizer"));
        assert_eq!(suggest("zzz", &["optimizer", "epochs"]), None);
    }

    #[test]
    fn tight_spans() {
        let src = "ab  cd  \né";
        assert_eq!(tight_span(src, (2..8).into()), SourceSpan::from(4..6));
        assert_eq!(tight_span(src, (0..100).into()), SourceSpan::from(0..src.len()));
        // 'é' is two bytes at 9..11: a span starting inside it is moved to its start.
        assert_eq!(tight_span(src, (10..11).into()), SourceSpan::from(9..11));
        assert_eq!(tight_span(src, (50..60).into()), SourceSpan::from(11..11));
    }

    #[test]
    fn values() {
        assert_eq!(usize::from_kdl(&KdlValue::Integer(3)).ok(), Some(3));
        assert!(usize::from_kdl(&KdlValue::Integer(-3)).is_err());
        assert!(usize::from_kdl(&KdlValue::Float(3.0)).is_err());
        assert_eq!(f64::from_kdl(&KdlValue::Integer(3)).ok(), Some(3.0));
        assert!(f64::from_kdl(&KdlValue::Float(f64::NAN)).is_err());
        assert!(f64::from_kdl(&KdlValue::String("1".into())).is_err());
        assert_eq!(bool::from_kdl(&KdlValue::Bool(true)).ok(), Some(true));
        assert!(String::from_kdl(&KdlValue::Null).is_err());
    }
}
