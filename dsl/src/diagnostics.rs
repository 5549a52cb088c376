//! Diagnostics of the experiment language.
//!
//! Every user mistake is one [`DslError`] variant with a `#[label]` span on the offending text,
//! a `help` and a stable `ijepa::dsl::*` code (conventions 5-6). [`Diagnostics`] is what
//! [`crate::parse_str`] and [`crate::load`] return on failure: it holds the source text once
//! (`#[source_code]`) and *all* errors of the file under `#[related]`, ordered by position.
//! The fancy colored renderer belongs to the binary; [`Diagnostics::render_plain`] gives a
//! stable ASCII rendering for snapshot tests and plain terminals.

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, NamedSource, SourceSpan};
use thiserror::Error;

/// One mistake in an experiment file.
#[derive(Debug, Clone, Error, Diagnostic)]
pub enum DslError {
    /// The text is not valid KDL v2.
    #[error("KDL syntax error: {message}")]
    #[diagnostic(code(ijepa::dsl::syntax))]
    Syntax {
        /// What the KDL parser says.
        message: String,
        /// Where.
        #[label("{label}")]
        span: SourceSpan,
        /// Short label at the span.
        label: String,
        /// How to fix it.
        #[help]
        help: String,
    },

    /// The count of errors left out of a long list (see [`MAX_ERRORS`]).
    #[error("... and {more} more error(s) like the ones above")]
    #[diagnostic(code(ijepa::dsl::more_errors))]
    MoreErrors {
        /// How many were left out.
        more: usize,
    },

    /// The file could not be read.
    #[error("cannot read `{path}`: {message}")]
    #[diagnostic(code(ijepa::dsl::io))]
    Io {
        /// The path as given.
        path: String,
        /// The operating system's message, or what is wrong with the file.
        message: String,
        /// What to do about it.
        #[help]
        help: String,
    },

    /// The file has no `experiment` node.
    #[error("no `experiment` node in this file")]
    #[diagnostic(code(ijepa::dsl::missing_experiment))]
    MissingExperiment {
        /// The start of the file (or its first node).
        #[label("expected `experiment \"NAME\" {{ ... }}`")]
        span: SourceSpan,
        /// How to fix it.
        #[help]
        help: String,
    },

    /// A node name the schema does not know at this place.
    #[error("unknown node `{name}` in {parent}")]
    #[diagnostic(code(ijepa::dsl::unknown_node))]
    UnknownNode {
        /// The node name as written.
        name: String,
        /// Where it was written (`experiment`, `data`, `the top level`, ...).
        parent: String,
        /// The node name.
        #[label("unknown node")]
        span: SourceSpan,
        /// Closest known name, or the known names.
        #[help]
        help: String,
    },

    /// A property the node does not take.
    #[error("unknown property `{name}` on `{node}`")]
    #[diagnostic(code(ijepa::dsl::unknown_property))]
    UnknownProperty {
        /// The property name as written.
        name: String,
        /// The node it was written on.
        node: String,
        /// The whole `name=value` entry.
        #[label("unknown property")]
        span: SourceSpan,
        /// Closest known property, or the known ones.
        #[help]
        help: String,
    },

    /// The same node written twice where only one is allowed.
    #[error("duplicate node `{name}`")]
    #[diagnostic(code(ijepa::dsl::duplicate_node))]
    DuplicateNode {
        /// The node name.
        name: String,
        /// The second occurrence.
        #[label("written again here")]
        span: SourceSpan,
        /// The first occurrence.
        #[label("first written here")]
        first: SourceSpan,
        /// How to fix it.
        #[help]
        help: String,
    },

    /// The same property written twice on one node.
    #[error("property `{name}` is written twice on `{node}`")]
    #[diagnostic(code(ijepa::dsl::duplicate_property))]
    DuplicateProperty {
        /// The property name.
        name: String,
        /// The node.
        node: String,
        /// The second occurrence.
        #[label("written again here")]
        span: SourceSpan,
        /// The first occurrence.
        #[label("first written here")]
        first: SourceSpan,
        /// How to fix it.
        #[help]
        help: String,
    },

    /// Fewer positional arguments than the node needs.
    #[error("`{node}` is missing {what}")]
    #[diagnostic(code(ijepa::dsl::missing_argument))]
    MissingArgument {
        /// The node.
        node: String,
        /// The missing argument(s), in words.
        what: String,
        /// The node name.
        #[label("expects {what}")]
        span: SourceSpan,
        /// The node's full form.
        #[help]
        help: String,
    },

    /// More positional arguments than the node takes.
    #[error("too many arguments to `{node}`")]
    #[diagnostic(code(ijepa::dsl::extra_argument))]
    ExtraArgument {
        /// The node.
        node: String,
        /// The first surplus argument.
        #[label("unexpected argument")]
        span: SourceSpan,
        /// The node's full form.
        #[help]
        help: String,
    },

    /// A required property is absent.
    #[error("`{node}` is missing the property `{name}`")]
    #[diagnostic(code(ijepa::dsl::missing_property))]
    MissingProperty {
        /// The node.
        node: String,
        /// The property it needs.
        name: String,
        /// The node name.
        #[label("needs `{name}=`")]
        span: SourceSpan,
        /// How to fix it.
        #[help]
        help: String,
    },

    /// A children block on a node that takes none.
    #[error("`{node}` takes no children block")]
    #[diagnostic(code(ijepa::dsl::unexpected_children))]
    UnexpectedChildren {
        /// The node.
        node: String,
        /// The children block.
        #[label("not allowed here")]
        span: SourceSpan,
        /// The node's full form.
        #[help]
        help: String,
    },

    /// A value of the wrong type (a string where a number belongs, a float for an integer, ...).
    #[error("wrong type for `{what}`: expected {expected}, found {found}")]
    #[diagnostic(code(ijepa::dsl::wrong_type))]
    WrongType {
        /// The setting (a dotted path such as `data.batch-size`).
        what: String,
        /// The expected type, in words.
        expected: String,
        /// The value found, in words.
        found: String,
        /// The value.
        #[label("expected {expected}")]
        span: SourceSpan,
        /// How to fix it.
        #[help]
        help: String,
    },

    /// A number outside its allowed range.
    #[error("`{what}` is out of range: {message}")]
    #[diagnostic(code(ijepa::dsl::out_of_range))]
    OutOfRange {
        /// The setting.
        what: String,
        /// The rule that was broken.
        message: String,
        /// The value.
        #[label("{label}")]
        span: SourceSpan,
        /// Short label at the span.
        label: String,
        /// How to fix it.
        #[help]
        help: String,
    },

    /// A `lo hi` range written high end first.
    #[error("range `{what}` is in the wrong order: {lo} > {hi}")]
    #[diagnostic(code(ijepa::dsl::range_order))]
    RangeOrder {
        /// The setting.
        what: String,
        /// The first value written.
        lo: f64,
        /// The second value written.
        hi: f64,
        /// Both values.
        #[label("low end first, then high end")]
        span: SourceSpan,
        /// How to fix it.
        #[help]
        help: String,
    },

    /// A name that is not one of the known choices (recipe, preset, loss, ...).
    #[error("unknown {what} `{found}`")]
    #[diagnostic(code(ijepa::dsl::unknown_value))]
    UnknownValue {
        /// What kind of name (`recipe`, `encoder preset`, ...).
        what: String,
        /// The name as written.
        found: String,
        /// The value.
        #[label("not a known {what}")]
        span: SourceSpan,
        /// The known choices.
        #[help]
        help: String,
    },

    /// A known idea that this version of the language does not implement yet.
    #[error("{what} is not supported yet")]
    #[diagnostic(code(ijepa::dsl::unsupported))]
    Unsupported {
        /// What is not supported.
        what: String,
        /// Where it was asked for.
        #[label("not supported yet")]
        span: SourceSpan,
        /// What is supported.
        #[help]
        help: String,
    },

    /// A string value that breaks a rule (experiment name, device, path).
    #[error("invalid {what}: {message}")]
    #[diagnostic(code(ijepa::dsl::invalid_value))]
    InvalidValue {
        /// The setting.
        what: String,
        /// The rule that was broken.
        message: String,
        /// The value.
        #[label("invalid {what}")]
        span: SourceSpan,
        /// How to fix it.
        #[help]
        help: String,
    },

    /// A path a setting names that this user may not reach or read (a folder on its way it may
    /// not search, a data folder it may not open): there, but not "missing".
    #[error("unreadable {what}: {message}")]
    #[diagnostic(code(ijepa::dsl::unreadable_input))]
    UnreadableInput {
        /// The setting (`data root`), or the file of a split in the setting's folder.
        what: String,
        /// The path and the OS's error.
        message: String,
        /// The setting's value (the file's start when it was set in a base file).
        #[label("{what}")]
        span: SourceSpan,
        /// How to fix it.
        #[help]
        help: String,
    },

    /// A file or folder the experiment reads does not exist (checked by `check`, `plan` and
    /// `run` before anything runs; see [`crate::inputs`]).
    #[error("missing {what}: {message}")]
    #[diagnostic(code(ijepa::dsl::missing_input))]
    MissingInput {
        /// The setting (`data root`), or the file of a split the setting's folder lacks
        /// (`data file`, `test file`).
        what: String,
        /// What is wrong with the path.
        message: String,
        /// The setting's value (the file's start when it was set in a base file).
        #[label("{what}")]
        span: SourceSpan,
        /// How to fix it.
        #[help]
        help: String,
    },

    /// The encoder's patch size does not divide the crop size.
    #[error("patch size {patch} does not divide the crop size {crop}")]
    #[diagnostic(code(ijepa::dsl::patch_crop))]
    PatchCrop {
        /// Patch side in pixels.
        patch: usize,
        /// Crop side in pixels.
        crop: usize,
        /// The `patch=` property (or the encoder/experiment node when it is a default).
        #[label("patch {patch}")]
        span: SourceSpan,
        /// The `crop-size` value, when written.
        #[label("crop {crop}")]
        crop_span: Option<SourceSpan>,
        /// How to fix it.
        #[help]
        help: String,
    },

    /// Attention heads do not divide the token width.
    #[error("{block}: {heads} attention heads do not divide the width {width}")]
    #[diagnostic(code(ijepa::dsl::heads_width))]
    HeadsWidth {
        /// `encoder` or `predictor`.
        block: String,
        /// Number of heads.
        heads: usize,
        /// Token width.
        width: usize,
        /// The `heads=` property (or its node).
        #[label("{heads} heads")]
        span: SourceSpan,
        /// The `width=` property, when written.
        #[label("width {width}")]
        width_span: Option<SourceSpan>,
        /// How to fix it.
        #[help]
        help: String,
    },

    /// The mask sampler could never produce a valid block (the official sampler would loop
    /// forever).
    #[error(
        "the {block} block can hold only {patches} patch{}, but min-keep is {min_keep}: the \
         mask sampler would spin forever",
        if *patches == 1 { "" } else { "es" }
    )]
    #[diagnostic(code(ijepa::dsl::infeasible_mask))]
    InfeasibleMask {
        /// `target` or `context`.
        block: String,
        /// Patches in the smallest block the ranges allow.
        patches: usize,
        /// The `min-keep` setting.
        min_keep: usize,
        /// The scale range of that block (or the mask/experiment node when it is a default).
        #[label("{block} blocks can be as small as {patches} patch{}", if *patches == 1 { "" } else { "es" })]
        span: SourceSpan,
        /// The `min-keep` value, when written.
        #[label("a block must keep more than {min_keep} patches")]
        min_keep_span: Option<SourceSpan>,
        /// Where the smallest block occurs and how to fix it.
        #[help]
        help: String,
    },

    /// Two settings that cannot go together (an NCCL backend on the CPU, several nodes with
    /// the local launcher, ...): the run could not honour them.
    #[error("{message}")]
    #[diagnostic(code(ijepa::dsl::conflict))]
    Conflict {
        /// What conflicts.
        message: String,
        /// The setting that cannot be honoured.
        #[label("{label}")]
        span: SourceSpan,
        /// Short label at the span.
        label: String,
        /// The other setting, when written.
        #[label("{other_label}")]
        other: Option<SourceSpan>,
        /// Label of the other setting.
        other_label: String,
        /// How to fix it.
        #[help]
        help: String,
    },

    /// A setting of another recipe (a `decoder` in an I-JEPA experiment, a `predictor` in an
    /// MAE one, a mask kind the recipe does not sample).
    #[error("`{node}` is a setting of recipe {owner}, not of recipe \"{recipe}\"")]
    #[diagnostic(code(ijepa::dsl::not_of_recipe))]
    NotOfRecipe {
        /// The node as written.
        node: String,
        /// The recipe(s) it belongs to.
        owner: String,
        /// The experiment's recipe.
        recipe: String,
        /// The node name.
        #[label("not a setting of \"{recipe}\"")]
        span: SourceSpan,
        /// How to fix it.
        #[help]
        help: String,
    },

    /// A node at a place where it is known but not allowed (`extends` after other settings,
    /// `sweep` inside the experiment).
    #[error("`{node}` {message}")]
    #[diagnostic(code(ijepa::dsl::misplaced))]
    Misplaced {
        /// The node.
        node: String,
        /// Where it belongs, in words.
        message: String,
        /// The node name.
        #[label("not allowed here")]
        span: SourceSpan,
        /// How to fix it.
        #[help]
        help: String,
    },

    /// The `extends` chain comes back to a file it already went through.
    #[error("`extends` makes a cycle: {chain}")]
    #[diagnostic(code(ijepa::dsl::extends_cycle))]
    ExtendsCycle {
        /// The files, `a.kdl -> b.kdl -> a.kdl`.
        chain: String,
        /// The `extends` value.
        #[label("this base leads back to a file already in the chain")]
        span: SourceSpan,
        /// How to fix it.
        #[help]
        help: String,
    },

    /// The base file named by `extends` cannot be read.
    #[error("cannot read the base `{path}`: {message}")]
    #[diagnostic(code(ijepa::dsl::extends_missing))]
    ExtendsMissing {
        /// The base's path (relative paths start at the extending file's folder).
        path: String,
        /// The operating system's message.
        message: String,
        /// The `extends` value.
        #[label("cannot read this base")]
        span: SourceSpan,
        /// How to fix it.
        #[help]
        help: String,
    },

    /// The base file named by `extends` has errors of its own (shown against its own text), or
    /// extends, down its chain, a file that has: then that file is named, and its errors shown
    /// once (a block per file between, 31 for an error 32 files down, each named only the next
    /// file).
    #[error("the base `{path}` is not a valid experiment{}", base_fault(.fault.as_deref(), *.through, *.count))]
    #[diagnostic(code(ijepa::dsl::base_invalid))]
    BaseInvalid {
        /// The base's path.
        path: String,
        /// The file down the base's chain whose errors these are, when not the base itself.
        fault: Option<String>,
        /// How many files stand between the base and `fault` (none of them has an error of
        /// its own).
        through: usize,
        /// Number of errors in the file at fault.
        count: usize,
        /// The `extends` value.
        #[label("extended here")]
        span: SourceSpan,
        /// How to fix it.
        #[help]
        help: String,
        /// The base file's diagnostics, with its source.
        #[related]
        base: Vec<Diagnostics>,
    },

    /// A sweep varies a path that names no setting.
    #[error("`{path}` is not a setting a sweep can vary")]
    #[diagnostic(code(ijepa::dsl::unknown_sweep_path))]
    UnknownSweepPath {
        /// The path as written.
        path: String,
        /// The path.
        #[label("unknown setting")]
        span: SourceSpan,
        /// The closest setting paths.
        #[help]
        help: String,
    },

    /// A `zip` sweep whose `vary` lists have different lengths.
    #[error("a zip sweep varies its settings in lockstep, but `{path}` has {count} values and `{first_path}` has {first_count}")]
    #[diagnostic(code(ijepa::dsl::zip_length))]
    ZipLength {
        /// The `vary` whose length differs.
        path: String,
        /// Its number of values.
        count: usize,
        /// The first `vary` of the sweep.
        first_path: String,
        /// Its number of values.
        first_count: usize,
        /// The differing `vary`.
        #[label("{count} values")]
        span: SourceSpan,
        /// The first `vary`.
        #[label("{first_count} values")]
        first: SourceSpan,
        /// How to fix it.
        #[help]
        help: String,
    },

    /// Some points of a sweep are invalid: the errors of the first such point (each error is
    /// reported once, under the first point that has it).
    #[error("sweep point {index} of {total} (`{name}`) is invalid")]
    #[diagnostic(
        code(ijepa::dsl::sweep_point),
        help("the values of this point are checked like settings written in the experiment; fix or remove the value")
    )]
    SweepPoint {
        /// 1-based index of the point.
        index: usize,
        /// Number of points.
        total: usize,
        /// The point's name.
        name: String,
        /// Its errors, pointing at the sweep values.
        #[related]
        errors: Vec<DslError>,
    },

    /// A file with a sweep was loaded as a single experiment.
    #[error("this file defines a sweep of {points} points; use load_study")]
    #[diagnostic(code(ijepa::dsl::sweep_file))]
    SweepFile {
        /// Number of points.
        points: usize,
        /// The `sweep` node.
        #[label("a sweep")]
        span: SourceSpan,
        /// How to fix it.
        #[help]
        help: String,
    },
}

impl DslError {
    /// Byte offset of the primary label (0 when the error has no span); errors are sorted by it.
    pub fn offset(&self) -> usize {
        if let DslError::SweepPoint { errors, .. } = self {
            return errors.iter().map(DslError::offset).min().unwrap_or(0);
        }
        self.labels().and_then(|mut l| l.next()).map(|l| l.offset()).unwrap_or(0)
    }

    /// The stable diagnostic code, e.g. `ijepa::dsl::unknown_node`.
    pub fn code_str(&self) -> String {
        self.code().map(|c| c.to_string()).unwrap_or_default()
    }
}

/// At most this many errors of one file are reported, then a count of the rest.
pub const MAX_ERRORS: usize = 50;

/// All errors of one experiment file, with its source text attached once.
#[derive(Debug, Clone, Error, Diagnostic)]
#[error("{} has {} error{}", .source_code.name(), .total, if *.total == 1 { "" } else { "s" })]
#[diagnostic(code(ijepa::dsl::invalid_experiment))]
pub struct Diagnostics {
    #[source_code]
    source_code: NamedSource<String>,
    #[related]
    errors: Vec<DslError>,
    /// How many errors the file has: those listed, and those a long list leaves out (it said
    /// "51 errors" of a file of 55: the 50 listed and the count of the rest).
    total: usize,
}

impl Diagnostics {
    /// Collects `errors` of the file `file_name` whose text is `source`, sorted by position.
    pub fn new(file_name: &str, source: &str, mut errors: Vec<DslError>) -> Self {
        errors.sort_by_key(DslError::offset);
        let total = errors.len();
        if errors.len() > MAX_ERRORS {
            // a file of thousands of mistakes is one mistake repeated: the first ones say it
            let more = errors.len() - MAX_ERRORS;
            errors.truncate(MAX_ERRORS);
            errors.push(DslError::MoreErrors { more });
        }
        Self { source_code: NamedSource::new(file_name, source.to_string()), errors, total }
    }

    /// The errors, in source order.
    pub fn errors(&self) -> &[DslError] {
        &self.errors
    }

    /// Of a file whose one error is that its base is not valid, that error; any other file's
    /// diagnostics back.
    pub(crate) fn into_base_error(mut self) -> Result<BaseError, Self> {
        match self.errors.pop() {
            Some(DslError::BaseInvalid { path, fault, through, count, base, .. }) if self.errors.is_empty() => Ok(BaseError { path, fault, through, count, base }),
            Some(e) => {
                self.errors.push(e);
                Err(self)
            }
            None => Err(self),
        }
    }

    /// Number of errors listed (a long list's first ones and the count of the rest: see
    /// [`Diagnostics::total`]).
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Number of errors the file has, those a long list leaves out too.
    pub fn total(&self) -> usize {
        self.total
    }

    /// True when there are no errors (never the case for a returned `Err`).
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The file name the diagnostics refer to.
    pub fn file_name(&self) -> &str {
        self.source_code.name()
    }

    /// The source text the spans point into.
    pub fn source_text(&self) -> &str {
        self.source_code.inner()
    }

    /// The stable codes of all errors, in order (handy in tests).
    pub fn codes(&self) -> Vec<String> {
        self.errors.iter().map(DslError::code_str).collect()
    }

    /// Renders every error with its source snippet as plain ASCII text: no colors, no unicode,
    /// no hyperlinks, 100 columns. Stable enough for snapshot tests; any terminal can show it.
    pub fn render_plain(&self) -> String {
        let handler = GraphicalReportHandler::new_themed(GraphicalTheme::none())
            .with_width(100)
            .with_urls(false);
        let mut out = String::new();
        if handler.render_report(&mut out, self).is_err() {
            // Rendering fails only on a span outside the text; fall back to messages.
            out.clear();
            out.push_str(&format!("{self}\n"));
            for e in &self.errors {
                out.push_str(&format!("  - [{}] {e}\n", e.code_str()));
            }
        }
        // Trailing spaces are noise in snapshot files.
        let mut lines: Vec<&str> = out.lines().map(str::trim_end).collect();
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        let mut text = lines.join("\n");
        text.push('\n');
        printable(&text, false)
    }
}

/// What [`Diagnostics::into_base_error`] takes out of a [`DslError::BaseInvalid`].
pub(crate) struct BaseError {
    /// The base's path.
    pub path: String,
    /// The file at fault down its chain, when not the base itself.
    pub fault: Option<String>,
    /// How many files stand between the base and `fault`.
    pub through: usize,
    /// How many errors the file at fault has.
    pub count: usize,
    /// The file at fault's diagnostics.
    pub base: Vec<Diagnostics>,
}

/// The end of a [`DslError::BaseInvalid`] message: how many errors, and in which file down the
/// base's chain.
fn base_fault(fault: Option<&str>, through: usize, count: usize) -> String {
    let errors = format!("{count} error{}", if count == 1 { "" } else { "s" });
    match fault {
        None => format!(" ({errors})"),
        Some(f) if through == 0 => format!(": it extends `{f}`, which has {errors}"),
        Some(f) => format!(
            ": it extends `{f}` through {through} file{} with no error of {}, and `{f}` has {errors}",
            if through == 1 { "" } else { "s" },
            if through == 1 { "its own" } else { "their own" }
        ),
    }
}

/// `text` with every control character a file's values may carry shown as its escape
/// (`\u{1b}`), not sent to the terminal: a value written `"a\u{1b}[2J"` cleared the screen
/// of whoever read its error, `\u{1b}]0;...\u{7}` set the window's title. Line feeds and tabs
/// stay; with `keep_colours`, so do the colour sequences (`ESC [ digits ; m`) a rendering adds
/// (a value's own colour sequence is kept too: it cannot move the cursor or write elsewhere).
pub fn printable(text: &str, keep_colours: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if keep_colours && c == '\u{1b}' {
            let body = &rest[1..];
            if let Some(tail) = body.strip_prefix('[') {
                let n = tail.find(|ch: char| !(ch.is_ascii_digit() || ch == ';')).unwrap_or(tail.len());
                if tail[n..].starts_with('m') {
                    out.push_str(&rest[..n + 3]);
                    rest = &rest[n + 3..];
                    continue;
                }
            }
        }
        if c.is_control() && c != '\n' && c != '\t' {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}
