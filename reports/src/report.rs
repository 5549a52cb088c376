//! Writes a report folder: `report.md`, a self-contained `report.html` (inline CSS, plots as
//! base64 data URIs), `tables/*.csv` and `plots/*.png`.

use std::fs;
use std::path::{Path, PathBuf};

use polars::prelude::DataFrame;

use crate::error::{ReportError, Result};
use crate::plot::{line_chart, Chart, Series};
use crate::registry::{MonitorRow, Registry};
use crate::tables::{
    ablation_table, knn_table, linear_table, lowshot_table, pretrain_table, rows_as_text, to_csv,
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
    /// `plots/*.png`.
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
}

/// What a section shows.
enum Body {
    Table {
        csv: String,
        df: DataFrame,
    },
    Plot {
        png: String,
        chart: Chart,
        x: &'static str,
        y: &'static str,
    },
}

struct Section {
    title: String,
    blurb: String,
    body: Body,
}

const PAPER_NOTE: &str = "Rows with source `paper` are the I-JEPA paper's ImageNet-1k results \
(Assran et al., CVPR 2023), for reference only: our runs use smaller data and models, so compare \
orderings and trends, not absolute numbers.";

/// A file-name-safe form of an experiment name.
fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn sections(reg: &Registry) -> Result<Vec<Section>> {
    let mut out = Vec::new();
    let pre = pretrain_table(reg);
    if pre.height() > 0 {
        out.push(Section {
            title: "Pretraining runs".into(),
            blurb: "One row per pretraining stage found in the run folder.".into(),
            body: Body::Table {
                csv: "pretrain.csv".into(),
                df: pre,
            },
        });
    }
    out.push(Section {
        title: "Linear probe (paper Table 1)".into(),
        blurb: format!("Top-1 (%) of a linear classifier on frozen encoder features. {PAPER_NOTE}"),
        body: Body::Table {
            csv: "linear.csv".into(),
            df: linear_table(reg),
        },
    });
    out.push(Section {
        title: "Low-shot linear probe (paper Table 2)".into(),
        blurb: format!(
            "Top-1 (%) of a linear classifier trained on a fraction of the labels. {PAPER_NOTE} \
             The paper's rows use 1% of ImageNet-1k labels."
        ),
        body: Body::Table {
            csv: "lowshot.csv".into(),
            df: lowshot_table(reg),
        },
    });
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
        let abl = ablation_table(reg, &exp);
        if abl.height() > 0 {
            out.push(Section {
                title: format!("Sweep `{exp}` (paper Tables 8-10)"),
                blurb: "Our top-1 (%) per sweep point; `paper_*` columns give the paper's masking \
                        ablation on 1% ImageNet-1k (ViT-B/16, 300 epochs) at the same setting, \
                        for reference only."
                    .into(),
                body: Body::Table {
                    csv: format!("ablation-{}.csv", slug(&exp)),
                    df: abl,
                },
            });
        }
        let loss: Vec<Series> = reg
            .pretrains
            .iter()
            .filter(|r| r.manifest.experiment == exp && !r.metrics.is_empty())
            .map(|r| Series {
                label: r.name(),
                points: r.metrics.iter().map(|m| (m.step as f64, m.loss)).collect(),
            })
            .collect();
        if !loss.is_empty() {
            let chart = line_chart(&loss).map_err(|source| ReportError::Png {
                path: format!("loss-{exp}.png").into(),
                source,
            })?;
            out.push(Section {
                title: format!("Training loss `{exp}`"),
                blurb: "Pretraining loss per step, one line per pretrain run.".into(),
                body: Body::Plot {
                    png: format!("loss-{}.png", slug(&exp)),
                    chart,
                    x: "step",
                    y: "loss",
                },
            });
        }
        for (what, y, png, get) in [
            ("kNN accuracy", "held-out kNN top-1 (%)", "monitor-knn", (|m: &MonitorRow| m.knn_top1) as fn(&MonitorRow) -> f64),
            ("effective rank", "RankMe", "monitor-rank", |m: &MonitorRow| m.rankme),
        ] {
            let mut series = Vec::new();
            for r in reg.pretrains.iter().filter(|r| r.manifest.experiment == exp) {
                let mut encoders: Vec<&str> = r.monitor.iter().map(|m| m.encoder.as_str()).collect();
                encoders.dedup();
                encoders.sort_unstable();
                encoders.dedup();
                for enc in encoders {
                    series.push(Series {
                        label: format!("{} {enc}", r.name()),
                        points: r.monitor.iter().filter(|m| m.encoder == enc).map(|m| (m.epoch as f64, get(m))).collect(),
                    });
                }
            }
            if series.is_empty() {
                continue;
            }
            let file = format!("{png}-{}.png", slug(&exp));
            let chart = line_chart(&series).map_err(|source| ReportError::Png { path: file.clone().into(), source })?;
            out.push(Section {
                title: format!("Monitor: {what} `{exp}`"),
                blurb: "Measured during pretraining on images held out of the training split (never seen by \
                        pretraining; `monitor.csv` of each run), one line per run and encoder, against epochs \
                        (0: before training)."
                    .into(),
                body: Body::Plot { png: file, chart, x: "epoch", y },
            });
        }
        let probe: Vec<Series> = reg
            .evals
            .iter()
            .filter(|e| e.record.experiment == exp && !e.record.curve.is_empty())
            .map(|e| {
                let r = &e.record;
                let varied: Vec<String> =
                    r.varied.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let mut label = format!(
                    "{} {} ({})",
                    r.method,
                    r.protocol,
                    e.dir
                        .file_name()
                        .map(|n| n.to_string_lossy())
                        .unwrap_or_default()
                );
                if !varied.is_empty() {
                    label = format!("{label} [{}]", varied.join(", "));
                }
                Series {
                    label,
                    points: r.curve.iter().map(|c| (c.epoch as f64, c.top1)).collect(),
                }
            })
            .collect();
        if !probe.is_empty() {
            let chart = line_chart(&probe).map_err(|source| ReportError::Png {
                path: format!("probe-{exp}.png").into(),
                source,
            })?;
            out.push(Section {
                title: format!("Probe accuracy `{exp}`"),
                blurb: "Probe top-1 (%) on the test split after each probe-training epoch.".into(),
                body: Body::Plot {
                    png: format!("probe-{}.png", slug(&exp)),
                    chart,
                    x: "epoch",
                    y: "top-1 (%)",
                },
            });
        }
    }
    Ok(out)
}

fn fmt_num(x: f64) -> String {
    let s = format!("{x:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn axes_text(chart: &Chart, x: &str, y: &str) -> String {
    format!(
        "x axis: {x} from {} to {}; y axis: {y} from {} to {} (gridlines at quarters).",
        fmt_num(chart.x_range.0),
        fmt_num(chart.x_range.1),
        fmt_num(chart.y_range.0),
        fmt_num(chart.y_range.1)
    )
}

fn markdown(reg: &Registry, secs: &[Section]) -> String {
    let mut md = format!(
        "# I-JEPA report\n\nRuns read from `{}`.\n",
        reg.root.display()
    );
    for s in secs {
        md.push_str(&format!("\n## {}\n\n{}\n\n", s.title, s.blurb));
        match &s.body {
            Body::Table { csv, df } => {
                md.push_str(&to_markdown(df));
                md.push_str(&format!("\n(CSV: `tables/{csv}`)\n"));
            }
            Body::Plot { png, chart, x, y } => {
                md.push_str(&format!(
                    "![{}](plots/{png})\n\n{}\n\n",
                    s.title.replace('`', ""),
                    axes_text(chart, x, y)
                ));
                for (label, colour) in &chart.legend {
                    md.push_str(&format!("- {colour}: {label}\n"));
                }
            }
        }
    }
    md
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

const CSS: &str = "body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}\
th{background:#f0f0f0}tr.paper td{color:#777}img{max-width:100%;border:1px solid #ddd}\
code{background:#f4f4f4;padding:0 3px}.swatch{display:inline-block;width:12px;height:12px;margin-right:6px}";

fn html(reg: &Registry, secs: &[Section]) -> String {
    let mut h = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>I-JEPA report</title><style>{CSS}</style></head><body>\n\
         <h1>I-JEPA report</h1>\n<p>Runs read from <code>{}</code>.</p>\n",
        esc(&reg.root.display().to_string())
    );
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
                h.push_str("<table>\n<tr>");
                for c in &rows[0] {
                    h.push_str(&format!("<th>{}</th>", esc(c)));
                }
                h.push_str("</tr>\n");
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
                h.push_str("</table>\n");
            }
            Body::Plot { chart, x, y, .. } => {
                h.push_str(&format!(
                    "<img alt=\"{}\" src=\"data:image/png;base64,{}\">\n<p>{}</p>\n<ul>\n",
                    esc(&s.title),
                    base64(&chart.png),
                    esc(&axes_text(chart, x, y))
                ));
                for (label, colour) in &chart.legend {
                    h.push_str(&format!(
                        "<li><span class=\"swatch\" style=\"background:{colour}\"></span>{}</li>\n",
                        esc(label)
                    ));
                }
                h.push_str("</ul>\n");
            }
        }
    }
    h.push_str("</body></html>\n");
    h
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn write(path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    fs::write(path, bytes).map_err(|e| ReportError::io(path, e))?;
    Ok(path.to_path_buf())
}

/// Renders the registry's report as Markdown (what `report.md` holds).
///
/// # Errors
/// Only if a plot cannot be encoded.
pub fn render_markdown(reg: &Registry) -> Result<String> {
    Ok(markdown(reg, &sections(reg)?))
}

/// Writes `report.md`, `report.html`, `tables/*.csv` and `plots/*.png` under `out` (created if
/// needed; existing files of the same names are replaced).
///
/// # Errors
/// A folder or file that cannot be created or written (the error names it).
pub fn write_report(reg: &Registry, out: &Path) -> Result<ReportFiles> {
    let secs = sections(reg)?;
    let (tables_dir, plots_dir) = (out.join("tables"), out.join("plots"));
    for d in [&tables_dir, &plots_dir] {
        fs::create_dir_all(d).map_err(|e| ReportError::io(d, e))?;
    }
    let (mut tables, mut plots) = (Vec::new(), Vec::new());
    for s in &secs {
        match &s.body {
            Body::Table { csv, df } => {
                tables.push(write(&tables_dir.join(csv), to_csv(df).as_bytes())?)
            }
            Body::Plot { png, chart, .. } => plots.push(write(&plots_dir.join(png), &chart.png)?),
        }
    }
    let markdown = write(&out.join("report.md"), markdown(reg, &secs).as_bytes())?;
    let html = write(&out.join("report.html"), html(reg, &secs).as_bytes())?;
    Ok(ReportFiles {
        markdown,
        html,
        tables,
        plots,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn slug_and_inline() {
        assert_eq!(slug("a b/c"), "a-b-c");
        assert_eq!(inline("x `y` <z>"), "x <code>y</code> &lt;z&gt;");
    }
}
