//! Writes a report folder: `report.md`, a self-contained `report.html` (inline CSS, figures as
//! inline SVG), `tables/*.csv` and `plots/*.svg` + `plots/*.png`.

use std::fs;
use std::path::{Path, PathBuf};

use polars::prelude::DataFrame;

use crate::error::{ReportError, Result};
use crate::figures::{experiment_figures, shown_by_study, slug};
use crate::plot::{render, Rendered};
use crate::registry::Registry;
use crate::tables::{
    ablation_table, finetune_table, has_protocol, knn_table, linear_table, lowshot_table, pretrain_table, rows_as_text, seeds_table, to_csv, md_text, warnings_table,
    to_markdown,
};

/// The files a report consists of.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportFiles {
    /// `report.md`.
    pub markdown: PathBuf,
    /// `report.html` (self-contained).
    pub html: PathBuf,
    /// `tables/*.csv`, one per table.
    pub tables: Vec<PathBuf>,
    /// `plots/*.svg` and `plots/*.png`, two per figure.
    pub plots: Vec<PathBuf>,
}

impl ReportFiles {
    /// All written paths, Markdown first.
    pub fn all(&self) -> Vec<&Path> {
        [&self.markdown, &self.html]
            .into_iter()
            .chain(&self.tables)
            .chain(&self.plots)
            .map(PathBuf::as_path)
            .collect()
    }

    /// The line `ijepa report` and `ijepa-report` print once the report of `runs` is in `out`.
    pub fn summary(&self, runs: &Path, out: &Path) -> String {
        format!(
            "report of {} written to {}: {} and report.html, {} tables, {} plots",
            runs.display(),
            out.display(),
            self.markdown.display(),
            self.tables.len(),
            self.plots.len()
        )
    }
}

/// What a section shows.
enum Body {
    Table {
        csv: String,
        df: DataFrame,
    },
    /// A figure, written as `plots/<stem>.svg` and `.png`, inline SVG in the HTML.
    Figure { stem: String, rendered: Rendered },
}

struct Section {
    title: String,
    blurb: String,
    body: Body,
}

const PAPER_NOTE: &str = "Rows with source `paper` are the I-JEPA paper's ImageNet-1k results \
(Assran et al., CVPR 2023), for reference only: our runs use smaller data and models, so compare \
orderings and trends, not absolute numbers.";

fn sections(reg: &Registry) -> Result<Vec<Section>> {
    let mut out = Vec::new();
    let pre = pretrain_table(reg);
    if pre.height() > 0 {
        out.push(Section {
            title: "Pretraining runs".into(),
            blurb: format!(
                "One row per pretraining stage found in the run folder; `final_loss` is the mean of the last min(10, half of the) losses its `metrics.csv` logs, one every `log-every` steps (of its last steps where it logs none; a run still running or stopped: of its last logged losses); {}`minutes` is the time its processes spent on it (monitors and checkpoints included; a killed run's up to its last checkpoint, empty before its first), on the `device` named.",
                if pre.get_column_names().iter().any(|c| c.as_str() == "point") { "`point` names a sweep point's settings; " } else { "" }
            ),
            body: Body::Table {
                csv: "pretrain.csv".into(),
                df: pre,
            },
        });
    }
    let warned = warnings_table(reg);
    if warned.height() > 0 {
        out.push(Section {
            title: "Warnings of the settings and the monitors".into(),
            blurb: "What each pretraining was warned of, kept in its run's manifest (the terminal's lines are gone by the time a report is read): \
                    before training, what its settings warned of (as `ijepa check` says them of its point: a learning-rate warm-up that fills the schedule, a learning rate of 0 throughout, a teacher \
                    that never moves, ...); while training, what its recipe warned of (I-JEPA's mask sampler relaxing its constraints: the share of the images trained whose \
                    context overlapped their targets, a line for each attempt of a resumed run); during it, what the monitors warned of, an encoder not \
                    learning (its held-out kNN no better than at its initialisation) or collapsing (its effective rank or feature spread below the \
                    monitor's floors), as its last monitored epoch found it. Read the run's numbers below with them."
                .into(),
            body: Body::Table { csv: "warnings.csv".into(), df: warned },
        });
    }
    let linear = linear_table(reg);
    out.push(Section {
        title: "Linear probe (paper Table 1)".into(),
        blurb: format!("Top-1 (%) of a linear classifier on frozen encoder features. {PAPER_NOTE}{}", ours_elsewhere(reg, &linear, "linear")),
        body: Body::Table {
            csv: "linear.csv".into(),
            df: linear,
        },
    });
    let lowshot = lowshot_table(reg);
    out.push(Section {
        title: "Low-shot evaluation (paper Table 2)".into(),
        blurb: format!(
            "Top-1 (%) of a linear classifier trained on a fraction of the labels, on frozen \
             features. {PAPER_NOTE} The paper's rows use 1% of ImageNet-1k labels, each method \
             adapted by fine-tuning or by a linear probe, whichever works best for it (the \
             paper's caption): a protocol of their own, not the frozen probe of our rows.{}",
            ours_elsewhere(reg, &lowshot, "low-shot")
        ),
        body: Body::Table {
            csv: "lowshot.csv".into(),
            df: lowshot,
        },
    });
    if has_protocol(reg, "finetune") {
        out.push(Section {
            title: "Fine-tuning (paper Table 15)".into(),
            blurb: format!(
                "Top-1 (%) after fine-tuning the whole encoder with a linear head (MAE's protocol: \
                 AdamW with layer-wise learning-rate decay, warm-up + cosine, drop-path, label \
                 smoothing); the random-init row trains the same encoder from scratch with the same \
                 budget. {PAPER_NOTE}"
            ),
            body: Body::Table {
                csv: "finetune.csv".into(),
                df: finetune_table(reg),
            },
        });
    }
    let knn = knn_table(reg);
    if knn.height() > 0 {
        out.push(Section {
            title: "k-NN".into(),
            blurb: "Top-1 (%) of a k-nearest-neighbour classifier on frozen features (ours only)."
                .into(),
            body: Body::Table {
                csv: "knn.csv".into(),
                df: knn,
            },
        });
    }
    for exp in reg.experiments() {
        // (a report of the whole folder: two files that name one experiment)
        let pooled = reg.files_pooled(&exp);
        let caution = if pooled.is_empty() {
            String::new()
        } else {
            format!(
                "Caution: the points of {} files that name this experiment ({}) are pooled here, and their seeds averaged together, though they may differ in settings neither varies; give each file an experiment name of its own (the report each file's `ijepa run` writes covers that file alone). ",
                pooled.len(),
                pooled.iter().map(|f| crate::tables::prose(f)).collect::<Vec<_>>().join(", ")
            )
        };
        let abl = ablation_table(reg, &exp);
        if abl.height() > 0 {
            // the paper's tables this sweep's points stand for (none: a sweep of its own)
            let mut tables: Vec<i64> = abl.column("paper_table").ok().and_then(|c| c.i64().ok().map(|c| c.iter().flatten().collect())).unwrap_or_default();
            tables.sort_unstable();
            tables.dedup();
            let (title, blurb) = if tables.is_empty() {
                (format!("Sweep `{exp}`"), "Our top-1 (%) per sweep point; `eval_dir` is the folder each is read from, under the runs folder.".to_string())
            } else {
                let listed = tables.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ");
                (
                    format!("Sweep `{exp}` (paper Table{} {listed})", if tables.len() > 1 { "s" } else { "" }),
                    "Our top-1 (%) per sweep point. On the low-shot rows (without them, the linear, \
                     else the kNN, else the fine-tuning rows), `paper_*` give the paper's \
                     ablation at the point's value of the swept setting (none where the point moves two of \
                     Tables 6, 7 and 11's settings off the method, where the sweep varies another \
                     pretraining setting beside it, which the paper held at its own value, or where the file \
                     holds one of Tables 6, 7 and 11's settings off the method; the other settings are the file's) (a linear probe on 1% of ImageNet-1k; Tables 6 and \
                     8-10: ViT-B/16, 7: ViT-L/16, 11: ViT-H/16) and `paper_method_top1` the method's \
                     row of that table, the reference each variant reads against; for the trend only. \
                     `eval_dir` is the folder each number is read from, under the runs folder."
                        .to_string(),
                )
            };
            out.push(Section {
                title,
                blurb: format!("{caution}{blurb}"),
                body: Body::Table {
                    csv: format!("ablation-{}.csv", slug(&exp)),
                    df: abl,
                },
            });
        }
        let seeds = seeds_table(reg, &exp);
        if seeds.height() > 0 {
            out.push(Section {
                title: format!("Seeds of `{exp}`"),
                blurb: format!(
                    "{caution}Each setting's top-1 (%) over its seeds: how many were evaluated, their mean, sample standard deviation, least and most. \
                     A difference between settings smaller than their spread here is not one the seeds can tell apart."
                ),
                body: Body::Table { csv: format!("seeds-{}.csv", slug(&exp)), df: seeds },
            });
        }
        if shown_by_study(reg, &exp) {
            continue;
        }
        for named in experiment_figures(reg, &exp) {
            let rendered = render(&named.figure).map_err(|e| ReportError::Plot {
                path: format!("plots/{}.svg", named.stem).into(),
                message: e.to_string(),
            })?;
            out.push(Section {
                title: named.figure.title.clone(),
                blurb: if named.stem.starts_with("sweep-") { format!("{caution}{}", named.caption) } else { named.caption.clone() },
                body: Body::Figure { stem: named.stem, rendered },
            });
        }
    }
    Ok(out)
}

/// What a paper table's blurb says where it holds no row of ours (`df`'s `source` column): our
/// evaluations of that `protocol` are sweep points, in the sweep tables below, or there are
/// none (two tables of the paper's rows alone read as ours missing).
fn ours_elsewhere(reg: &Registry, df: &DataFrame, protocol: &str) -> String {
    let ours = df.column("source").ok().and_then(|c| c.str().ok().map(|c| c.iter().any(|s| s == Some("ours")))).unwrap_or(false);
    if ours {
        String::new()
    } else if reg.evals.iter().any(|e| e.record.protocol == protocol) {
        " Our evaluations of this protocol are sweep points: their rows are in the sweep tables below.".into()
    } else {
        " No evaluation of ours used this protocol: the paper's rows alone, for reference.".into()
    }
}

/// The report's title: the methods we pretrained (`I-JEPA`, `MAE`, ...), from the evaluated
/// subjects' method names without what follows the name (`I-JEPA (ours)`, a checkpoint given
/// to `ijepa eval`: `MAE (epoch-0002.safetensors)`, each of which made a title of its own).
fn title(reg: &Registry) -> String {
    let mut methods: Vec<String> = reg
        .evals
        .iter()
        .filter(|e| !matches!(e.record.model.as_str(), "random-init" | "raw-pixels"))
        .map(|e| e.record.method.split(" (").next().unwrap_or_default().to_string())
        .collect();
    methods.sort();
    methods.dedup();
    match methods.is_empty() {
        true => "Self-supervised pretraining report".into(),
        false => format!("{} report", methods.join(" / ")),
    }
}

fn markdown(reg: &Registry, secs: &[Section]) -> String {
    let mut md = format!("# {}\n\nRuns read from {}.\n", md_text(&title(reg)), md_code(&reg.root.display().to_string()));
    if let Some(w) = reg.no_runs_warning() {
        md.push_str(&format!("\n**Warning: {}.**\n", md_text(&w)));
    }
    if !reg.unreadable.is_empty() {
        md.push_str(&format!("\n**Left out: {} stage folder(s) or file(s), each with why:**\n\n", reg.unreadable.len()));
        for e in &reg.unreadable {
            md.push_str(&format!("- {}\n", md_text(e)));
        }
    }
    for s in secs {
        // (a caption holds values of the runs' records: a swept value `<img onerror=...>`
        // passed as HTML)
        md.push_str(&format!("\n## {}\n\n{}\n\n", md_text(&s.title), md_text(&s.blurb)));
        match &s.body {
            Body::Table { csv, df } => {
                md.push_str(&to_markdown(df));
                md.push_str(&format!("\n(CSV: `tables/{csv}`)\n"));
            }
            Body::Figure { stem, .. } => {
                md.push_str(&format!(
                    "![{}](plots/{stem}.png)\n\n(SVG: `plots/{stem}.svg`)\n",
                    md_text(&s.title.replace('`', ""))
                ));
            }
        }
    }
    md
}

/// `s` as one Markdown code span, shown as written: fenced by one backtick more than the
/// longest run of them in it (a folder named with a backtick ended the span, and a `<b>` after
/// it passed as HTML), its line breaks as spaces.
fn md_code(s: &str) -> String {
    let s = s.replace(['\r', '\n'], " ");
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    // (a span that begins or ends with a backtick is padded: the padding is not shown)
    let pad = if s.starts_with('`') || s.ends_with('`') { " " } else { "" };
    format!("{fence}{pad}{s}{pad}{fence}")
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Inline `code` spans of our titles and blurbs as HTML.
fn inline(s: &str) -> String {
    esc(s)
        .split('`')
        .enumerate()
        .map(|(i, p)| {
            if i % 2 == 1 {
                format!("<code>{p}</code>")
            } else {
                p.to_string()
            }
        })
        .collect()
}

const CSS: &str = "body{font-family:system-ui,sans-serif;max-width:1320px;margin:2em auto;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}\
th{background:#f0f0f0}tr.paper td{color:#777}figure.plot{margin:1em 0}figure.plot svg{max-width:100%;height:auto;border:1px solid #ddd}\
code{background:#f4f4f4;padding:0 3px}";

fn html(reg: &Registry, secs: &[Section]) -> String {
    let t = esc(&title(reg));
    let mut h = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title><style>{CSS}</style></head><body>\n\
         <h1>{t}</h1>\n<p>Runs read from <code>{}</code>.</p>\n",
        esc(&reg.root.display().to_string())
    );
    if let Some(w) = reg.no_runs_warning() {
        h.push_str(&format!("<p><strong>Warning: {}.</strong></p>\n", esc(&w)));
    }
    if !reg.unreadable.is_empty() {
        h.push_str(&format!("<p><strong>Left out: {} stage folder(s) or file(s), each with why:</strong></p>\n<ul>\n", reg.unreadable.len()));
        for e in &reg.unreadable {
            h.push_str(&format!("<li>{}</li>\n", esc(e)));
        }
        h.push_str("</ul>\n");
    }
    for s in secs {
        h.push_str(&format!(
            "<h2>{}</h2>\n<p>{}</p>\n",
            inline(&s.title),
            inline(&s.blurb)
        ));
        match &s.body {
            Body::Table { df, .. } => {
                let rows = rows_as_text(df, true);
                let source = rows[0].iter().position(|c| c == "source");
                h.push_str("<table>\n<thead><tr>");
                for c in &rows[0] {
                    h.push_str(&format!("<th scope=\"col\">{}</th>", esc(c)));
                }
                h.push_str("</tr></thead>\n<tbody>\n");
                for row in &rows[1..] {
                    let class = if source.is_some_and(|i| row[i] == "paper") {
                        " class=\"paper\""
                    } else {
                        ""
                    };
                    h.push_str(&format!("<tr{class}>"));
                    for c in row {
                        h.push_str(&format!("<td>{}</td>", esc(c)));
                    }
                    h.push_str("</tr>\n");
                }
                h.push_str("</tbody>\n</table>\n");
            }
            Body::Figure { stem, rendered } => {
                h.push_str(&format!(
                    "<figure id=\"fig-{stem}\" class=\"plot\">\n{}\n</figure>\n",
                    svg_inline(&rendered.svg, &s.title)
                ));
            }
        }
    }
    h.push_str("</body></html>\n");
    h
}

/// A plotters SVG document made fit for inlining: scalable (the width and height move to
/// CSS), announced as an image with its title for screen readers (`aria-label`, and a
/// `<title>` child, which SVG viewers show).
fn svg_inline(svg: &str, title: &str) -> String {
    let body = svg.trim_start_matches(|c| c != '<');
    let body = body.strip_prefix("<?xml").map_or(body, |rest| rest.split_once("?>").map_or(rest, |(_, r)| r)).trim_start();
    let title = esc(&title.replace('`', ""));
    match body.strip_prefix("<svg").and_then(|rest| rest.split_once('>')) {
        Some((attrs, rest)) => format!("<svg role=\"img\" aria-label=\"{title}\"{attrs}><title>{title}</title>{rest}"),
        None => body.to_string(),
    }
}

/// Removes from `dir` the temporary files of [`write`] (`.NAME@HOST-PID.tmp`, as the engine
/// names its own: a report of a shared folder may be written from two machines) of this machine
/// whose process is gone: a report killed while writing a file left it there for good (a
/// copy of the report or of a figure each time). Another process's that is still running (an
/// `ijepa-report` of the same folder, which takes no lock) is left, and so is another
/// machine's, which this one cannot tell; best effort, on a system with `/proc`.
fn remove_dead_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    // (only a report file's: a user's `.notes.HOST-PID.tmp` went too; an earlier version's
    // name, `.NAME.HOST-PID.tmp`, read for the report's files, so that a dotted host's is not
    // taken for this one's)
    const REPORT_FILES: [&str; 6] = [".md", ".html", ".csv", ".png", ".svg", ".json"];
    let ours = |stem: &str| REPORT_FILES.iter().any(|x| stem.ends_with(x));
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let legacy = || {
            let body = name.strip_prefix('.')?.strip_suffix(".tmp")?;
            let (named, _) = body.rsplit_once('-')?;
            let stem = named.strip_suffix(ijepa_schema::temporary::host())?.strip_suffix('.')?;
            ijepa_schema::temporary::legacy_of(name, stem)
        };
        let dead = ijepa_schema::temporary::parse(name).or_else(legacy).is_some_and(|t| ours(t.stem) && t.writer_gone());
        if dead && e.file_type().is_ok_and(|t| t.is_file()) {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// Writes one file of the report whole or not at all: a temporary file beside it, renamed
/// over it (a full disk left a truncated figure beside the new tables, over the previous
/// report's complete one).
fn write(path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("report");
    let tmp = path.with_file_name(ijepa_schema::temporary::name(name));
    let written = fs::write(&tmp, bytes).and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(ReportError::io(path, e));
    }
    Ok(path.to_path_buf())
}

/// Renders the registry's report as Markdown (what `report.md` holds).
///
/// # Errors
/// Only if a plot cannot be encoded.
pub fn render_markdown(reg: &Registry) -> Result<String> {
    Ok(markdown(reg, &sections(reg)?))
}

/// Writes `report.md`, `report.html`, `tables/*.csv` and `plots/*.{svg,png}` under `out` (created if
/// needed; existing files of the same names are replaced). A registry without runs of ours
/// still gets its report (the paper's numbers), which opens with
/// [`Registry::no_runs_warning`]; callers should log that warning too.
///
/// # Errors
/// A folder or file that cannot be created or written (the error names it).
pub fn write_report(reg: &Registry, out: &Path) -> Result<ReportFiles> {
    let secs = sections(reg)?;
    // the files the report in this folder wrote before (named in its report.md)
    let before = fs::read_to_string(out.join("report.md")).map(|md| written_by(&md)).unwrap_or_default();
    let (tables_dir, plots_dir) = (out.join("tables"), out.join("plots"));
    for d in [&tables_dir, &plots_dir] {
        fs::create_dir_all(d).map_err(|e| ReportError::io(d, e))?;
    }
    for d in [out, &tables_dir, &plots_dir] {
        remove_dead_temporaries(d);
    }
    let (mut tables, mut plots) = (Vec::new(), Vec::new());
    for s in &secs {
        match &s.body {
            Body::Table { csv, df } => {
                tables.push(write(&tables_dir.join(csv), to_csv(df).as_bytes())?)
            }
            Body::Figure { stem, rendered } => {
                plots.push(write(&plots_dir.join(format!("{stem}.svg")), rendered.svg.as_bytes())?);
                plots.push(write(&plots_dir.join(format!("{stem}.png")), &rendered.png)?);
            }
        }
    }
    let markdown = write(&out.join("report.md"), markdown(reg, &secs).as_bytes())?;
    let html = write(&out.join("report.html"), html(reg, &secs).as_bytes())?;
    // ... and no longer writes: gone, so that the folder holds this report only (another runs
    // folder's tables and figures stayed beside it); no other file of the folder is touched
    for stale in before.iter().map(|f| out.join(f)).filter(|f| !tables.contains(f) && !plots.contains(f)) {
        if let Err(e) = fs::remove_file(&stale) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("{}: {e} (left from an earlier report)", stale.display());
            }
        }
    }
    Ok(ReportFiles {
        markdown,
        html,
        tables,
        plots,
    })
}

/// The files a report's markdown names (`tables/X.csv`, `plots/X.png` and `plots/X.svg`),
/// relative to its folder: what that report wrote. A name with a path separator in it is not
/// one of ours (`..` inside a name is: an experiment may be named `x..y`).
fn written_by(md: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for (dir, exts) in [("tables/", &["csv"][..]), ("plots/", &["png", "svg"][..])] {
        for piece in md.split(dir).skip(1) {
            let name: String = piece.chars().take_while(|c| !matches!(c, '`' | ')' | ' ' | '\n' | '"' | '/' | '\\')).collect();
            // (a name holds no `/` or `\\`: it stays in its folder, `..` within it too; the
            // figures of an experiment `x..y` were never removed)
            let ours = exts.iter().any(|e| name.ends_with(&format!(".{e}"))) && !name.is_empty();
            if ours {
                out.push(std::path::Path::new(dir).join(&name));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Where a report of the runs folder `runs` may go, checked before anything is written: not
/// the runs folder, nothing inside it (its figures and tables were read as an experiment's
/// folder, or landed in one beside its feature cache), nor inside a stage folder.
///
/// # Errors
/// [`ReportError::Invalid`] naming `out` for a place refused, or `runs` when it is a file.
pub fn check_out(runs: &Path, out: &Path) -> Result<()> {
    // (an experiment file given for the folder failed as "Not a directory (os error 20)")
    if runs.is_file() {
        return Err(ReportError::Invalid {
            path: runs.to_path_buf(),
            message: "a file, not a runs folder: a report reads the folder `ijepa run` wrote (`runs` by default); for the report of an experiment \
                      file as it stands, `ijepa run FILE` again (it reuses what is done, and writes the report)"
                .into(),
        });
    }
    // (a file where the folder, or a folder above it, would be: refused by `plan` and `run
    // --dry-run` too, which accepted it; `run` refused it at once, `ijepa-report` said
    // "FILE/report-stage.json: Not a directory")
    if let Some(file) = ijepa_schema::file_in_the_way(out) {
        return Err(ReportError::NotAFolder { out: out.to_path_buf(), path: file.to_path_buf() });
    }
    // (nor a link to nothing: `ijepa-report` said "dang/tables: File exists", `plan` and a dry
    // run nothing, and `run` refused it at once)
    let broken = |a: &Path| fs::symlink_metadata(a).is_ok_and(|m| m.file_type().is_symlink()) && fs::metadata(a).is_err();
    if let Some(link) = out.ancestors().filter(|a| !a.as_os_str().is_empty()).find(|a| broken(a)) {
        return Err(ReportError::Invalid {
            path: link.to_path_buf(),
            message: "a symbolic link to nothing (a broken link) where a folder is needed: remove it, or point it at a folder".into(),
        });
    }
    // (a stage folder by its name and its record: a `manifest.json` of a project's own folder
    // above the runs refused every report folder under it)
    let stage = |p: &Path| {
        p.file_name().and_then(|n| n.to_str()).is_some_and(crate::registry::stage_name) && [ijepa_schema::MANIFEST, ijepa_schema::EVAL].iter().any(|f| p.join(f).is_file())
    };
    // (folders not made yet, the runs folder or the report's, as they will be once made: the
    // answer does not change once the first run made them, whatever the spelling)
    let (runs_at, out_at) = (ijepa_schema::as_created(runs), ijepa_schema::as_created(out));
    if out_at.starts_with(&runs_at) || out_at.ancestors().any(stage) {
        return Err(ReportError::Invalid {
            path: out.to_path_buf(),
            message: "the runs folder, inside it or inside a stage folder: write the report beside them (the default is reports-out/)".into(),
        });
    }
    // nor another runs folder: an experiment folder of one (a folder holding stage folders
    // whose records name it: `<experiment>`, a sweep point's `<experiment>-<point>`) or inside
    // one (its feature cache), or one itself (its tables and figures landed among the
    // experiments `ijepa report` of that folder reads). (A stage folder copied elsewhere, into
    // a home folder, names another experiment: the folders under it are not refused.)
    let names = |d: &Path, folder: &str| {
        [ijepa_schema::MANIFEST, ijepa_schema::EVAL].iter().any(|f| {
            let record = ijepa_schema::read_file(&d.join(f)).ok().and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok()).unwrap_or_default();
            ["experiment", "study"].iter().filter_map(|k| record.get(*k).and_then(|v| v.as_str())).any(|e| !e.is_empty() && crate::registry::folder_of(folder, e))
        })
    };
    let holds_stage = |p: &Path, named: bool| {
        let folder = p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        fs::read_dir(p).into_iter().flatten().flatten().map(|e| e.path()).find(|d| stage(d) && (!named || names(d, &folder)))
    };
    // (a folder whose sub-folders hold stage folders is a runs folder whatever they are named:
    // a copy `qs (copy)`, links to other folders' experiments)
    let runs_folder = || fs::read_dir(&out_at).into_iter().flatten().flatten().map(|e| e.path()).filter(|d| d.is_dir()).find_map(|d| holds_stage(&d, false));
    if let Some(found) = out_at.ancestors().find_map(|a| holds_stage(a, true)).or_else(runs_folder) {
        return Err(ReportError::Invalid {
            path: out.to_path_buf(),
            message: format!(
                "a runs folder, one of its experiment folders or inside one (it holds the stage folder {}): write the report beside them (the default is reports-out/)",
                found.display()
            ),
        });
    }
    Ok(())
}

/// [`check_out`], then the marker of a study's report stage in `out` is removed: the report
/// written there replaces that stage's (which stayed "done" over this one). `ijepa report`
/// (under the folder's lock) and `ijepa-report` call it before writing.
///
/// # Errors
/// As [`check_out`]; [`ReportError::Io`] removing the marker.
pub fn claim_out(runs: &Path, out: &Path) -> Result<()> {
    check_out(runs, out)?;
    let marker = out.join(ijepa_schema::REPORT_MARKER);
    match std::fs::remove_file(&marker) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ReportError::io(marker, e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_names_the_files_it_wrote() {
        let md = "x\n(CSV: `tables/linear.csv`)\n![t](plots/loss-a.png)\n\n(SVG: `plots/loss-a.svg`)\n`tables/../x.csv` plots/a/b.png (SVG: `plots/loss-x..y.svg`)";
        let got: Vec<String> = written_by(md).iter().map(|p| p.display().to_string()).collect();
        assert_eq!(got, ["plots/loss-a.png", "plots/loss-a.svg", "plots/loss-x..y.svg", "tables/linear.csv"]);
    }

    #[test]
    fn slug_and_inline() {
        assert_eq!(slug("fmnist-ijepa_v1.2"), "fmnist-ijepa_v1.2");
        // names that differ only in what a file name cannot hold stay apart
        let (a, b) = (slug("α"), slug("β"));
        assert!(a.starts_with("--") && b.starts_with("--") && a != b, "{a} {b}");
        assert!(slug("a b/c").starts_with("a-b-c-") && slug("a b/c") != slug("a/b c"));
        assert_eq!(inline("x `y` <z>"), "x <code>y</code> &lt;z&gt;");
        assert_eq!(md_code("runs"), "`runs`");
        assert_eq!(md_code("r`<b>&x"), "``r`<b>&x``");
        assert_eq!(md_code("``a`"), "``` ``a` ```");
    }
}
