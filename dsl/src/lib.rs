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
//! The language is documented in `docs/language.md`; the schema lives in `schema/`, the
//! node-reading machinery in `reader`, cross-field rules in `validate`.

pub mod config;
pub mod diagnostics;
pub mod import_yaml;
pub mod multiblock;
mod reader;
mod schema;
#[cfg(test)]
mod tests;
mod validate;

use std::path::Path;

use kdl::KdlDocument;

pub use config::Experiment;
pub use diagnostics::{Diagnostics, DslError};
pub use reader::SpanMap;
pub use schema::{DEFAULT_PATCH, KNOWN_RECIPES, MASK_KINDS, OPTIMIZERS};

/// An experiment together with where each of its settings was written.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The validated experiment.
    pub experiment: Experiment,
    /// Dotted setting path (`data.crop-size`, `mask.targets.scale`, ...) -> span of its value.
    /// Settings left at their default are absent.
    pub spans: SpanMap,
}

/// Parses and validates experiment text. `file_name` only names the source in diagnostics.
/// On failure every error of the file is returned at once.
pub fn parse_str(file_name: &str, src: &str) -> Result<Experiment, Diagnostics> {
    parse_spanned(file_name, src).map(|p| p.experiment)
}

/// Like [`parse_str`], also returning the span of every setting written.
pub fn parse_spanned(file_name: &str, src: &str) -> Result<Parsed, Diagnostics> {
    let doc = match parse_kdl(src) {
        Ok(doc) => doc,
        Err(errors) => return Err(Diagnostics::new(file_name, src, errors)),
    };
    let mut cx = reader::Ctx::new(src, schema::locations(), schema::PLANNED);
    let experiment = schema::read_document(&mut cx, &doc);
    if let Some(exp) = &experiment {
        validate::validate(&mut cx, exp);
    }
    match experiment {
        Some(experiment) if cx.errors.is_empty() => Ok(Parsed { experiment, spans: cx.spans }),
        _ => Err(Diagnostics::new(file_name, src, cx.errors)),
    }
}

/// Reads and validates an experiment file; returns it with its source text (the resolved
/// run folder keeps a copy). An unreadable file is a diagnostic too.
pub fn load(path: &Path) -> Result<(Experiment, String), Diagnostics> {
    let name = path.display().to_string();
    let src = std::fs::read_to_string(path).map_err(|e| {
        Diagnostics::new(
            &name,
            "",
            vec![DslError::Io { path: name.clone(), message: e.to_string() }],
        )
    })?;
    let exp = parse_str(&name, &src)?;
    Ok((exp, src))
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

/// KDL v2 syntax -> document, or one diagnostic per syntax error.
fn parse_kdl(src: &str) -> Result<KdlDocument, Vec<DslError>> {
    // The parser is third-party code fed arbitrary text: a panic inside it must not take the
    // caller down, it becomes a diagnostic like any other syntax error.
    let parsed = std::panic::catch_unwind(|| KdlDocument::parse_v2(src));
    match parsed {
        Ok(Ok(doc)) => Ok(doc),
        Ok(Err(err)) => {
            let mut errors: Vec<DslError> = err
                .diagnostics
                .iter()
                .map(|d| {
                    let span = reader::tight_span(src, d.span);
                    DslError::Syntax {
                        message: d.message.clone().unwrap_or_else(|| "invalid KDL".into()),
                        span,
                        label: d.label.clone().unwrap_or_else(|| "here".into()),
                        help: d.help.clone().unwrap_or_else(|| syntax_help(src, span)),
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
