//! Figures drawn with [plotters](https://docs.rs/plotters): one or more panels side by side,
//! each with a title, axis titles, tick labels and a light grid, under a figure title, and a
//! legend below naming every line. Each figure is rendered twice from the same drawing code:
//! as SVG (inlined in `report.html`, so its text stays crisp, selectable and searchable) and
//! as PNG (for Markdown viewers; its text is drawn with the bundled DejaVu Sans through
//! `ab_glyph`, so no system font or fontconfig is needed).
//!
//! Colours are the Okabe-Ito palette (distinguishable with the common colour-vision
//! deficiencies) and three more past it; lines can also differ by stroke (solid, dashed, dotted,
//! markers, circles, dots, crosses), so no
//! line relies on colour alone when a figure needs more than the palette.

use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

/// The font the PNG text is drawn with (DejaVu Sans, see `reports/fonts/LICENSE`).
const FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
/// The family name the figures ask for (SVG viewers use their own sans-serif font).
const FAMILY: &str = "sans-serif";

/// Okabe & Ito (2008) colour-blind-safe colours (yellow is left out: too pale on white), then
/// three more (grey, brown, indigo), with their names.
pub const PALETTE: [(&str, RGBColor); 10] = [
    ("blue", RGBColor(0, 114, 178)),
    ("orange", RGBColor(230, 159, 0)),
    ("bluish green", RGBColor(0, 158, 115)),
    ("vermillion", RGBColor(213, 94, 0)),
    ("sky blue", RGBColor(86, 180, 233)),
    ("reddish purple", RGBColor(204, 121, 167)),
    ("black", RGBColor(0, 0, 0)),
    // (past Okabe and Ito's seven: a sweep's probe curves, seeds by settings, ran out and
    // repeated colours of other curves)
    ("grey", RGBColor(136, 136, 136)),
    ("brown", RGBColor(140, 81, 10)),
    ("indigo", RGBColor(68, 51, 153)),
];

/// How a series is stroked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stroke {
    /// A solid line.
    Solid,
    /// A thin, pale solid line (e.g. the raw curve behind a smoothed one).
    Faint,
    /// A dashed line.
    Dashed,
    /// A dotted line (e.g. a reference level).
    Dotted,
    /// Markers only, no line (e.g. published numbers).
    Markers,
    /// Small open circles, no line (e.g. each seed's result around the line of their mean).
    Points,
    /// Filled circles, no line: values at named points that no order joins (a sweep over
    /// recipes or mask kinds).
    Dots,
    /// Crosses, no line: a baseline's values at such points.
    Crosses,
    /// Open squares, no line: a second baseline's values at such points (the raw pixels
    /// beside the random init's crosses, which drew alike).
    Squares,
    /// Open diamonds, no line: a checkpoint from elsewhere evaluated at a sweep's point (drawn
    /// as open circles, it read as one more seed of that point).
    Diamonds,
}

/// A diamond's corners about its centre, `r` pixels out, closed.
fn diamond(r: i32) -> Vec<(i32, i32)> {
    vec![(0, -r), (r, 0), (0, r), (-r, 0), (0, -r)]
}

/// One line of a panel.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label; `None` keeps the series out of the legend (e.g. a faint raw curve
    /// behind its smoothed, labelled twin).
    pub label: Option<String>,
    /// `(x, y)` points in drawing order; non-finite points break the line. With
    /// [`XAxis::Categories`] x is the category's index.
    pub points: Vec<(f64, f64)>,
    /// Index into [`PALETTE`] (taken modulo its length).
    pub colour: usize,
    /// The stroke.
    pub stroke: Stroke,
}

impl Series {
    /// A labelled series.
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>, colour: usize, stroke: Stroke) -> Self {
        Self { label: Some(label.into()), points, colour, stroke }
    }
}

/// The horizontal axis of a panel.
#[derive(Debug, Clone, PartialEq)]
pub enum XAxis {
    /// Numbers.
    Numeric,
    /// Whole numbers (epochs): ticks at whole values only (a monitor of 3 epochs read 0.5,
    /// 1.5, 2.5).
    Whole,
    /// Named points in this order, drawn at x = 0, 1, ...
    Categories(Vec<String>),
}

/// One chart of a figure.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Panel title (may be empty for a one-panel figure).
    pub title: String,
    /// Horizontal axis title, with its unit.
    pub x_label: String,
    /// Vertical axis title, with its unit.
    pub y_label: String,
    /// The horizontal axis kind.
    pub x: XAxis,
    /// The lines.
    pub series: Vec<Series>,
}

/// A figure: panels side by side under a title, one legend for all of them.
#[derive(Debug, Clone)]
pub struct Figure {
    /// Figure title.
    pub title: String,
    /// The panels, left to right.
    pub panels: Vec<Panel>,
}

/// A figure rendered both ways.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The SVG document (`<svg ...>...</svg>`).
    pub svg: String,
    /// The PNG file's bytes.
    pub png: Vec<u8>,
    /// `(label, colour name)` of each legend entry, in drawing order.
    pub legend: Vec<(String, &'static str)>,
}

/// A figure that could not be drawn or encoded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PlotError(String);

/// Width of a figure's only panel.
const PANEL_W: u32 = 640;
/// Width of each panel when several stand side by side.
const PANEL_W_SIDE_BY_SIDE: u32 = 430;
const PANEL_H: u32 = 400;
const TITLE_H: u32 = 40;
const LEGEND_ROW_H: u32 = 24;
const LEGEND_SWATCH: i32 = 34;
/// Lines with at most this many points also mark each point.
const MARKERS_UP_TO: usize = 40;
/// A line is drawn through at most about twice this many points ([`thinned`]): a panel is
/// 640 pixels wide, and a long run's logged losses (a million: an 8 MB SVG per figure) made
/// `report.html` tens of MB.
const LINE_BUCKETS: usize = 1000;
const TITLE_PT: u32 = 22;
const CAPTION_PT: u32 = 18;
const AXIS_PT: u32 = 16;
const TICK_PT: u32 = 14;
const LEGEND_PT: u32 = 15;

fn font_registered() -> Result<(), PlotError> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
            .map_err(|_| "the bundled DejaVu Sans could not be parsed".to_string())
    })
    .clone()
    .map_err(PlotError)
}

/// The legend entries of a figure: one per distinct labelled (label, colour, stroke).
fn legend_entries(fig: &Figure) -> Vec<(String, usize, Stroke)> {
    let mut out: Vec<(String, usize, Stroke)> = Vec::new();
    for s in fig.panels.iter().flat_map(|p| &p.series) {
        if let Some(l) = &s.label {
            let e = (l.clone(), s.colour % PALETTE.len(), s.stroke);
            if !out.contains(&e) {
                out.push(e);
            }
        }
    }
    // (an entry wider than the figure keeps its start and end: its tail, which told two
    // sweep points apart, was cut at the figure's edge)
    let max = (figure_width(fig).saturating_sub(20 + LEGEND_SWATCH as u32 + 30) / 8) as usize;
    let originals: Vec<String> = out.iter().map(|e| e.0.clone()).collect();
    for e in &mut out {
        e.0 = elide_middle(&e.0, max);
    }
    // two labels the cut made one (a sweep value that differs in its middle: `[data.limit=200,
    // …/_x_]` and `[data.limit=300, …/_x_]` read alike) are cut otherwise: their ends kept,
    // else their starts, else numbered
    let alike = |out: &[(String, usize, Stroke)]| -> Vec<usize> {
        (0..out.len()).filter(|&i| out.iter().enumerate().any(|(j, f)| j != i && f.0 == out[i].0 && originals[j] != originals[i])).collect()
    };
    for cut in [elide_start, elide_end] {
        let same = alike(&out);
        if same.is_empty() {
            return out;
        }
        for i in same {
            out[i].0 = cut(&originals[i], max);
        }
    }
    for (n, i) in alike(&out).into_iter().enumerate() {
        out[i].0 = format!("{} ({})", out[i].0, n + 1);
    }
    out
}

/// `label` cut to at most `max` characters from its start (`…` and its end kept).
fn elide_start(label: &str, max: usize) -> String {
    elide_keeping(label, max, 0)
}

/// `label` cut to at most `max` characters at its end (its start and `…` kept).
fn elide_end(label: &str, max: usize) -> String {
    elide_keeping(label, max, max.saturating_sub(1))
}

/// Approximate width in pixels of a legend entry (swatch, gap, text at 13 px).
fn entry_width(label: &str) -> u32 {
    LEGEND_SWATCH as u32 + 12 + label.chars().count() as u32 * 8 + 18
}

/// Legend entries packed into rows no wider than `width`.
fn legend_rows(entries: &[(String, usize, Stroke)], width: u32) -> Vec<Vec<usize>> {
    let mut rows: Vec<Vec<usize>> = Vec::new();
    let mut used = width;
    for (i, (label, ..)) in entries.iter().enumerate() {
        let w = entry_width(label);
        if used + w > width - 20 && !rows.last().is_some_and(Vec::is_empty) {
            rows.push(Vec::new());
            used = 0;
        }
        rows.last_mut().expect("a row was pushed").push(i);
        used += w;
    }
    rows
}

/// The figure's width: one panel's, or every side-by-side panel's.
fn figure_width(fig: &Figure) -> u32 {
    let n = fig.panels.len().max(1) as u32;
    if n == 1 { PANEL_W } else { PANEL_W_SIDE_BY_SIDE * n }
}

fn size(fig: &Figure) -> (u32, u32, Vec<Vec<usize>>) {
    let w = figure_width(fig);
    let rows = legend_rows(&legend_entries(fig), w);
    let legend_h = if rows.is_empty() { 0 } else { rows.len() as u32 * LEGEND_ROW_H + 14 };
    (w, TITLE_H + PANEL_H + legend_h, rows)
}

/// The finite range of some values, padded by 5% (and widened when flat).
pub fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    // a span past f64's range (values of -1e308 and 1e308 in a hand-edited file) made the axis
    // infinite and the drawing never ended: the axis stops at +-f64::MAX / 8 (farther values are
    // clipped)
    const LIMIT: f64 = f64::MAX / 8.0;
    let (lo, hi) = (lo.clamp(-LIMIT, LIMIT), hi.clamp(-LIMIT, LIMIT));
    // (flat: a tenth of the value; a constant learning rate of 5e-4 was drawn on an axis of
    // -0.0045 to 0.0055, its value unreadable)
    let span = match (hi > lo, lo.abs()) {
        (true, _) => hi - lo,
        (false, a) if a > 0.0 => a * 0.1,
        (false, _) => 0.1,
    };
    (lo - 0.05 * span, hi + 0.05 * span)
}

/// Tick label text: short, without trailing zeros, scientific for tiny or huge magnitudes.
pub fn tick(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.1e}");
        return s.replace(".0e", "e");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// [`tick`] of a value on an axis spanning `span`, with as many digits as the axis's ticks need
/// to read apart: plotters puts them (at most 8, as asked) at multiples of 1, 2 or 5 x 10^k, k
/// at least that of a span/8 (a learning rate's axis of 2.02e-4 to 2.40e-4 read `2.1e-4, 2.1e-4,
/// 2.2e-4, 2.2e-4`; an EMA's `0.996, 0.996, 0.9961`). One a rounding step off zero (`-2.7e-20`
/// on a schedule's axis) reads as 0.
fn tick_on(v: f64, span: f64) -> String {
    let span = span.abs();
    if v.abs() < span * 1e-9 || v == 0.0 {
        return "0".into();
    }
    if !(span > 0.0 && span.is_finite()) {
        return tick(v);
    }
    // the decimal place of the ticks' last digit
    let place = (span / 8.0).log10().floor() as i32;
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        let digits = (a.log10().floor() as i32 - place).clamp(1, 15) as usize;
        let s = format!("{v:.digits$e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = if mantissa.contains('.') { mantissa.trim_end_matches('0').trim_end_matches('.') } else { mantissa };
        return format!("{mantissa}e{exp}");
    }
    let decimals = (-place).clamp(0, 15) as usize;
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { &s };
    if s == "-0" { "0".into() } else { s.into() }
}

/// Runs of consecutive finite points (non-finite points break a line).
fn runs(points: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
    let mut out = vec![Vec::new()];
    for &p in points {
        if p.0.is_finite() && p.1.is_finite() {
            out.last_mut().expect("non-empty").push(p);
        } else if !out.last().expect("non-empty").is_empty() {
            out.push(Vec::new());
        }
    }
    out.retain(|r| !r.is_empty());
    out
}

/// `run` (consecutive finite points) drawn through fewer points when it has more than twice
/// `buckets`: cut into `buckets` stretches of consecutive points, each kept as its lowest and
/// its highest point, in their order (the line's envelope, spikes included: at a panel's width
/// it draws the same). The first and last points stay.
fn thinned(run: &[(f64, f64)], buckets: usize) -> Vec<(f64, f64)> {
    if buckets == 0 || run.len() <= 2 * buckets {
        return run.to_vec();
    }
    let mut out = Vec::with_capacity(2 * buckets + 2);
    out.push(run[0]);
    for b in 0..buckets {
        let chunk = &run[b * run.len() / buckets..(b + 1) * run.len() / buckets];
        let lowest = (0..chunk.len()).min_by(|&i, &j| chunk[i].1.total_cmp(&chunk[j].1)).unwrap_or(0);
        let highest = (0..chunk.len()).max_by(|&i, &j| chunk[i].1.total_cmp(&chunk[j].1)).unwrap_or(0);
        let (first, second) = if lowest <= highest { (lowest, highest) } else { (highest, lowest) };
        out.push(chunk[first]);
        if second != first {
            out.push(chunk[second]);
        }
    }
    out.push(run[run.len() - 1]);
    out
}

fn style_of(colour: usize, stroke: Stroke) -> ShapeStyle {
    let c = PALETTE[colour % PALETTE.len()].1;
    match stroke {
        Stroke::Faint => c.mix(0.25).stroke_width(1),
        _ => c.stroke_width(2),
    }
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw_series<DB: DrawingBackend, CT: plotters::coord::CoordTranslate<From = (f64, f64)>>(
    chart: &mut ChartContext<'_, DB, CT>,
    s: &Series,
) -> DrawResult<DB> {
    let style = style_of(s.colour, s.stroke);
    for run in runs(&s.points) {
        let run = match s.stroke {
            Stroke::Solid | Stroke::Faint | Stroke::Dashed | Stroke::Dotted => thinned(&run, LINE_BUCKETS),
            Stroke::Markers | Stroke::Points | Stroke::Dots | Stroke::Crosses | Stroke::Squares | Stroke::Diamonds => run,
        };
        match s.stroke {
            Stroke::Solid | Stroke::Faint => {
                chart.draw_series(std::iter::once(PathElement::new(run.clone(), style)))?;
                if run.len() <= MARKERS_UP_TO && s.stroke == Stroke::Solid {
                    chart.draw_series(run.iter().map(|&p| Circle::new(p, 3, style.filled())))?;
                }
            }
            Stroke::Dashed => {
                chart.draw_series(DashedLineSeries::new(run.clone(), 8, 5, style))?;
                if run.len() <= MARKERS_UP_TO {
                    chart.draw_series(run.iter().map(|&p| Cross::new(p, 4, style)))?;
                }
            }
            Stroke::Dotted => {
                chart.draw_series(DashedLineSeries::new(run.clone(), 2, 4, style))?;
                // a level at one position (a sweep with one value drawn: the pixels' level from
                // it to itself) has no length to dot: a short dotted stroke there, as the legend's
                if let Some(&p) = run.first().filter(|p| run.iter().all(|q| q == *p)) {
                    chart.draw_series((-2..=2).map(|i| EmptyElement::at(p) + Circle::new((6 * i, 0), 1, style.filled())))?;
                }
            }
            Stroke::Markers => {
                chart.draw_series(run.iter().map(|&p| TriangleMarker::new(p, 7, style.filled())))?;
            }
            Stroke::Points => {
                chart.draw_series(run.iter().map(|&p| Circle::new(p, 5, style)))?;
            }
            Stroke::Dots => {
                chart.draw_series(run.iter().map(|&p| Circle::new(p, 5, style.filled())))?;
            }
            Stroke::Crosses => {
                chart.draw_series(run.iter().map(|&p| Cross::new(p, 5, style)))?;
            }
            Stroke::Squares => {
                chart.draw_series(run.iter().map(|&p| EmptyElement::at(p) + Rectangle::new([(-5, -5), (5, 5)], style)))?;
            }
            Stroke::Diamonds => {
                chart.draw_series(run.iter().map(|&p| EmptyElement::at(p) + PathElement::new(diamond(7), style)))?;
            }
        }
    }
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, panel: &Panel) -> DrawResult<DB> {
    let all = || panel.series.iter().flat_map(|s| s.points.iter().copied());
    let (x0, x1) = match &panel.x {
        XAxis::Numeric | XAxis::Whole => padded_range(all().map(|p| p.0)),
        XAxis::Categories(c) => (-0.5, c.len().max(1) as f64 - 0.5),
    };
    let (y0, y1) = padded_range(all().map(|p| p.1));
    // category labels wider than their share of the axis (a sweep's several keys: "block,
    // representation, output") are wrapped at their commas onto lines of their own, drawn
    // under the axis here (the mesh writes a label on one line, into its neighbours); when
    // even a wrapped line is wider than its share (a sweep of 60 points), every stride-th
    // category is named, with the room of `stride` shares
    let wrapped: Option<Vec<Vec<String>>> = match &panel.x {
        XAxis::Categories(c) => {
            let share = (area.dim_in_pixel().0 as f64 - 110.0) / c.len().max(1) as f64;
            // (a label is broken inside its parts too, at `-`, `_`, `/`, spaces, when that
            // names every category in a few lines: two long values of a sweep left the second
            // unnamed, one stride of two)
            // (not into lines of a few characters: a sweep of 60 values is named every few)
            let roomy = share - LABEL_GAP_PX >= label_px("0123456789");
            let fits = |ls: &Vec<String>| ls.len() <= MAX_LABEL_LINES && ls.iter().all(|line| label_px(line) + LABEL_GAP_PX <= share);
            // (a label too long for the lines it may take keeps its start and its end, which
            // tell a sweep's values apart: a long data root left every later point unnamed)
            let per_line = ((share - LABEL_GAP_PX) / label_px("x")).floor().max(1.0) as usize;
            let broken: Vec<Vec<String>> = if roomy {
                c.iter()
                    .map(|l| {
                        let whole = break_label(l, share - LABEL_GAP_PX);
                        // (shorter and shorter: a separator ends a line early)
                        let room = MAX_LABEL_LINES * per_line;
                        let shorter = [3, 2, 1].map(|q| break_label(&elide_middle(l, room * q / 4), share - LABEL_GAP_PX));
                        // (none fits: the whole label, and the axis names every few categories)
                        std::iter::once(whole.clone()).chain(shorter).find(|b| fits(b)).unwrap_or(whole)
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let widest = c.iter().flat_map(|l| wrap_label(l, share)).map(|line| label_px(&line)).fold(0.0, f64::max);
            let stride = if roomy && broken.iter().all(fits) { 1 } else { ((widest + LABEL_GAP_PX) / share.max(1.0)).ceil().max(1.0) as usize };
            if stride == 1 && broken.iter().any(|l| l.len() > 1) {
                Some(broken)
            } else {
                let lines: Vec<Vec<String>> =
                    c.iter().enumerate().map(|(i, l)| if i % stride == 0 { wrap_label(l, share * stride as f64) } else { Vec::new() }).collect();
                (stride > 1 || lines.iter().any(|l| l.len() > 1)).then_some(lines)
            }
        }
        XAxis::Numeric | XAxis::Whole => None,
    };
    let extra_lines = wrapped.as_ref().map_or(0, |w| w.iter().map(Vec::len).max().unwrap_or(1) - 1) as u32;
    let mut builder = ChartBuilder::on(area);
    builder.margin(14).x_label_area_size(54 + LABEL_LINE_H * extra_lines).y_label_area_size(80);
    if !panel.title.is_empty() {
        builder.caption(&panel.title, (FAMILY, CAPTION_PT));
    }
    let mut chart = builder.build_cartesian_2d(x0..x1, y0..y1)?;
    let categories = match &panel.x {
        XAxis::Categories(c) => Some(c.clone()),
        XAxis::Numeric | XAxis::Whole => None,
    };
    let drawn_here = wrapped.is_some();
    let whole = panel.x == XAxis::Whole;
    let x_fmt = move |x: &f64| match &categories {
        Some(_) if drawn_here => String::new(),
        Some(c) => {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < c.len() { c[i as usize].clone() } else { String::new() }
        }
        None if whole && (x - x.round()).abs() > 1e-6 => String::new(),
        None => tick_on(*x, x1 - x0),
    };
    let n_x = match &panel.x {
        XAxis::Categories(c) => c.len() + 1,
        XAxis::Numeric => 8,
        // (as many as the whole values in view, at most 8: plotters then steps by a whole)
        XAxis::Whole => ((x1.floor() - x0.ceil()) as usize + 1).clamp(2, 8),
    };
    // (an axis title wider than the plot keeps its start and end, as the figure's title does:
    // a sweep over five settings named them past the figure's right edge)
    // (centred on the plotting area, right of the y labels' 80 px; ~0.46 em a character)
    let room = (area.dim_in_pixel().0 as f64 - 80.0 - 28.0) / (AXIS_PT as f64 * 0.8 * 0.58);
    let x_desc = elide_middle(&panel.x_label, room.max(3.0) as usize);
    chart
        .configure_mesh()
        .x_desc(x_desc.as_str())
        .y_desc(panel.y_label.as_str())
        .axis_desc_style((FAMILY, AXIS_PT))
        .label_style((FAMILY, TICK_PT))
        .x_labels(n_x)
        .y_labels(8)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&|y| tick_on(*y, y1 - y0))
        .bold_line_style(RGBColor(225, 225, 225))
        .light_line_style(WHITE)
        .draw()?;
    if let Some(lines) = &wrapped {
        let style = TextStyle::from((FAMILY, WRAPPED_PT).into_font()).color(&BLACK).pos(Pos::new(HPos::Center, VPos::Top));
        let base = area.get_base_pixel();
        for (i, label) in lines.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(i as f64, y0));
            for (j, line) in label.iter().enumerate() {
                let at = (px - base.0, py - base.1 + 8 + j as i32 * LABEL_LINE_H as i32);
                area.draw(&Text::new(line.clone(), at, style.clone()))?;
            }
        }
    }
    // faint curves first, so the labelled lines stay on top
    for s in panel.series.iter().filter(|s| s.stroke == Stroke::Faint) {
        draw_series(&mut chart, s)?;
    }
    for s in panel.series.iter().filter(|s| s.stroke != Stroke::Faint) {
        draw_series(&mut chart, s)?;
    }
    Ok(())
}

/// Height of one line of a wrapped category label, and its size (a little smaller than the
/// ticks': a word such as "representation" fits a sixth of the axis).
const LABEL_LINE_H: u32 = 16;
const WRAPPED_PT: u32 = TICK_PT - 2;

/// Room kept between two category labels, in pixels.
const LABEL_GAP_PX: f64 = 6.0;

/// The width of a wrapped label line, in pixels (~0.6 em a character).
fn label_px(line: &str) -> f64 {
    line.chars().count() as f64 * WRAPPED_PT as f64 * 0.6
}

/// `label` cut at its `, ` into lines of at most `width` pixels (a part longer than that keeps
/// a line of its own); one line when it fits.
fn wrap_label(label: &str, width: f64) -> Vec<String> {
    if label.chars().count() as f64 * TICK_PT as f64 * 0.6 <= width {
        return vec![label.to_string()];
    }
    let mut lines: Vec<String> = Vec::new();
    for part in label.split(", ") {
        match lines.last_mut() {
            Some(last) if label_px(&format!("{last}, {part}")) <= width => {
                last.push_str(", ");
                last.push_str(part);
            }
            _ => lines.push(part.to_string()),
        }
    }
    lines
}

/// `label` cut to at most `max` characters by replacing its middle with `…` (its start and
/// its end kept: where a sweep's long values differ).
fn elide_middle(label: &str, max: usize) -> String {
    if max < 3 {
        return label.to_string();
    }
    elide_keeping(label, max, (max - 1) / 2)
}

/// `label` cut to at most `max` characters (`max` >= 2): its first `head` characters, `…`, and
/// as many of its last as fit.
fn elide_keeping(label: &str, max: usize, head: usize) -> String {
    let chars: Vec<char> = label.chars().collect();
    if chars.len() <= max || max < 2 {
        return label.to_string();
    }
    let tail = max - 1 - head;
    chars[..head].iter().chain(std::iter::once(&'…')).chain(&chars[chars.len() - tail..]).collect()
}

/// Most lines a category label is broken into before the axis names every few categories
/// instead.
const MAX_LABEL_LINES: usize = 4;

/// `label` in lines of at most `width` pixels: cut at its `, ` ([`wrap_label`]), then a line
/// still too wide after its last `-`, `_`, `/`, `=` or space that fits (kept at the line's
/// end), or, with none, at the width.
fn break_label(label: &str, width: f64) -> Vec<String> {
    let mut out = Vec::new();
    for line in wrap_label(label, width) {
        let mut rest: &str = &line;
        // (a width below one character still takes one a line: a negative width, 89 sweep
        // values on one panel, cut the last character and then panicked on nothing)
        while !rest.is_empty() && label_px(rest) > width {
            let chars: Vec<(usize, char)> = rest.char_indices().collect();
            let room = ((width / label_px("x")).floor() as usize).clamp(1, chars.len());
            let cut = chars[..room]
                .iter()
                .rev()
                .find(|(i, c)| *i > 0 && matches!(c, '-' | '_' | '/' | '=' | ' '))
                .map(|&(i, c)| i + c.len_utf8())
                .unwrap_or_else(|| chars.get(room).map_or(rest.len(), |&(i, _)| i));
            out.push(rest[..cut].trim_end().to_string());
            rest = rest[cut..].trim_start();
        }
        if !rest.is_empty() {
            out.push(rest.to_string());
        }
    }
    out
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, usize, Stroke)],
    rows: &[Vec<usize>],
) -> DrawResult<DB> {
    let text = TextStyle::from((FAMILY, LEGEND_PT).into_font()).color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center));
    for (r, row) in rows.iter().enumerate() {
        let y = 6 + r as i32 * LEGEND_ROW_H as i32 + LEGEND_ROW_H as i32 / 2;
        let mut x = 16;
        for &i in row {
            let (label, colour, stroke) = &entries[i];
            let style = style_of(*colour, *stroke);
            let (a, b) = ((x, y), (x + LEGEND_SWATCH, y));
            match stroke {
                Stroke::Solid => area.draw(&PathElement::new(vec![a, b], style))?,
                // (as faint as the lines, a 1 px swatch read as none: a few strokes of them)
                Stroke::Faint => {
                    for dy in [-4, 0, 4] {
                        area.draw(&PathElement::new(vec![(x, y + dy), (x + LEGEND_SWATCH, y + dy)], style_of(*colour, Stroke::Solid).stroke_width(1)))?;
                    }
                }
                Stroke::Dashed | Stroke::Dotted => {
                    let (on, off) = if *stroke == Stroke::Dashed { (8, 5) } else { (2, 4) };
                    let mut s = x;
                    while s < x + LEGEND_SWATCH {
                        area.draw(&PathElement::new(vec![(s, y), ((s + on).min(x + LEGEND_SWATCH), y)], style))?;
                        s += on + off;
                    }
                }
                Stroke::Markers => area.draw(&TriangleMarker::new((x + LEGEND_SWATCH / 2, y), 7, style.filled()))?,
                Stroke::Points => area.draw(&Circle::new((x + LEGEND_SWATCH / 2, y), 5, style))?,
                Stroke::Dots => area.draw(&Circle::new((x + LEGEND_SWATCH / 2, y), 5, style.filled()))?,
                Stroke::Crosses => area.draw(&Cross::new((x + LEGEND_SWATCH / 2, y), 5, style))?,
                Stroke::Squares => {
                    let c = x + LEGEND_SWATCH / 2;
                    area.draw(&Rectangle::new([(c - 5, y - 5), (c + 5, y + 5)], style))?
                }
                Stroke::Diamonds => area.draw(&PathElement::new(diamond(7).into_iter().map(|(dx, dy)| (x + LEGEND_SWATCH / 2 + dx, y + dy)).collect::<Vec<_>>(), style))?,
            }
            area.draw(&Text::new(label.clone(), (x + LEGEND_SWATCH + 8, y), text.clone()))?;
            x += entry_width(label) as i32;
        }
    }
    Ok(())
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, fig: &Figure, rows: &[Vec<usize>]) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (w, h) = root.dim_in_pixel();
    let (top, rest) = root.split_vertically(TITLE_H);
    // (a title wider than the figure keeps its start and end: its middle was drawn alone, the
    // rest past the edges)
    // (the title's size is drawn at 0.8 px a point, its characters about 0.58 em wide)
    let fits = (w.saturating_sub(20) as f64 / (TITLE_PT as f64 * 0.8 * 0.58)) as usize;
    top.draw(&Text::new(
        elide_middle(&fig.title, fits),
        (w as i32 / 2, 9),
        TextStyle::from((FAMILY, TITLE_PT).into_font()).pos(Pos::new(HPos::Center, VPos::Top)),
    ))?;
    let (plots, legend) = rest.split_vertically(PANEL_H);
    let panels = plots.split_evenly((1, fig.panels.len().max(1)));
    for (area, panel) in panels.iter().zip(&fig.panels) {
        draw_panel(area, panel)?;
    }
    let _ = h;
    draw_legend(&legend, &legend_entries(fig), rows)?;
    root.present()?;
    Ok(())
}

/// Renders a figure as SVG and PNG.
///
/// # Errors
/// A drawing or encoding failure (with the plotting library's message).
pub fn render(fig: &Figure) -> Result<Rendered, PlotError> {
    font_registered()?;
    let (w, h, rows) = size(fig);
    let mut svg = String::new();
    draw(SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area(), fig, &rows)
        .map_err(|e| PlotError(format!("drawing the SVG: {e}")))?;
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    draw(BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area(), fig, &rows)
        .map_err(|e| PlotError(format!("drawing the PNG: {e}")))?;
    let mut png = Vec::new();
    {
        let mut enc = png::Encoder::new(std::io::Cursor::new(&mut png), w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(|e| PlotError(format!("encoding the PNG: {e}")))?;
        writer.write_image_data(&rgb).map_err(|e| PlotError(format!("encoding the PNG: {e}")))?;
        writer.finish().map_err(|e| PlotError(format!("encoding the PNG: {e}")))?;
    }
    let legend = legend_entries(fig).into_iter().map(|(l, c, _)| (l, PALETTE[c].0)).collect();
    Ok(Rendered { svg, png, legend })
}

/// Exponential moving average with bias correction (as TensorBoard's smoothing), `weight`
/// in [0, 1); non-finite values are skipped (and stay non-finite in the output).
pub fn smooth(values: &[f64], weight: f64) -> Vec<f64> {
    let (mut acc, mut norm) = (0.0, 0.0);
    values
        .iter()
        .map(|&v| {
            if !v.is_finite() {
                return v;
            }
            acc = weight * acc + (1.0 - weight) * v;
            norm = weight * norm + (1.0 - weight);
            acc / norm
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line of a million points is drawn through ~2,000 that keep its envelope (a long
    /// run's losses wrote a 61 MB report); a short one is drawn as it is.
    #[test]
    fn long_lines_are_thinned_to_their_envelope() {
        let n = 1_000_000;
        let pts: Vec<(f64, f64)> = (0..n).map(|i| (i as f64, ((i * 7919) % 1000) as f64 + if i == 123_457 { 5000.0 } else { 0.0 })).collect();
        let t = thinned(&pts, 1000);
        assert!(t.len() <= 2002 && t.len() > 1000, "{}", t.len());
        assert_eq!((t[0], t[t.len() - 1]), (pts[0], pts[n - 1]));
        assert!(t.windows(2).all(|w| w[0].0 <= w[1].0), "x order kept");
        let top = |v: &[(f64, f64)]| v.iter().map(|p| p.1).fold(f64::MIN, f64::max);
        let bottom = |v: &[(f64, f64)]| v.iter().map(|p| p.1).fold(f64::MAX, f64::min);
        assert_eq!((top(&t), bottom(&t)), (top(&pts), bottom(&pts)), "the spike and the floor stay");
        let short: Vec<(f64, f64)> = pts[..1500].to_vec();
        assert_eq!(thinned(&short, 1000), short);
        let fig = Figure {
            title: "t".into(),
            panels: vec![Panel {
                title: String::new(),
                x_label: "step".into(),
                y_label: "loss".into(),
                x: XAxis::Numeric,
                series: vec![Series::new("run", pts, 0, Stroke::Solid)],
            }],
        };
        let r = render(&fig).unwrap();
        assert!(r.svg.len() < 200_000, "{} bytes of SVG", r.svg.len());
    }

    /// An axis of epochs is labelled at whole epochs only (a monitor of 3 epochs read 0.5,
    /// 1.5, 2.5 between them).
    #[test]
    fn an_axis_of_epochs_is_labelled_at_whole_epochs() {
        for last in [3.0, 11.0, 40.0] {
            let pts: Vec<(f64, f64)> = (0..=last as usize).map(|e| (e as f64, 1000.0 + 100.0 * e as f64)).collect();
            let fig = Figure {
                title: "t".into(),
                panels: vec![Panel { title: String::new(), x_label: "epoch".into(), y_label: "kNN".into(), x: XAxis::Whole, series: vec![Series::new("run", pts, 0, Stroke::Solid)] }],
            };
            let svg = render(&fig).unwrap().svg;
            let labels: Vec<&str> = svg.split("<text").skip(1).filter_map(|t| t.split_once('>').map(|(_, r)| r.split('<').next().unwrap_or(""))).collect();
            let numbers: Vec<f64> = labels.iter().filter_map(|l| l.trim().parse::<f64>().ok()).collect();
            assert!(numbers.iter().all(|v| v.fract() == 0.0), "{last}: {labels:?}");
            assert!(numbers.contains(&0.0) && numbers.iter().filter(|v| **v <= last).count() >= 3, "{last}: {labels:?}");
        }
    }

    #[test]
    fn long_category_labels_wrap_at_their_commas() {
        assert_eq!(wrap_label("0.15 0.2", 80.0), ["0.15 0.2"]);
        // 29 characters at ~8.4 px do not fit 200 px; wrapped at ~7.2 px: three lines in 150
        // px, two in 200
        assert_eq!(wrap_label("block, representation, output", 150.0), ["block", "representation", "output"]);
        assert_eq!(wrap_label("block, representation, output", 200.0), ["block, representation", "output"]);
        assert_eq!(wrap_label("no-commas-at-all-but-long", 20.0), ["no-commas-at-all-but-long"]);
        // broken further: after a separator that fits (7.2 px a character: 10 in 72 px), else
        // at the width; no line wider than asked
        assert_eq!(break_label("no-commas-at-all-but-long", 72.0), ["no-commas-", "at-all-", "but-long"]);
        assert_eq!(break_label("abcdefghijklmnopqrstuvwxyz", 72.0), ["abcdefghij", "klmnopqrst", "uvwxyz"]);
        assert_eq!(break_label("block, representation, output", 150.0), ["block", "representation", "output"]);
        assert_eq!(break_label("short", 72.0), ["short"]);
        assert_eq!(elide_middle("abcdefghij", 7), "abc…hij");
        assert_eq!(elide_middle("abc", 7), "abc");
        assert_eq!(elide_middle("ünï🚀-long-tail", 6), "ün…ail");
        assert_eq!((elide_start("abcdefghij", 5), elide_end("abcdefghij", 5)), ("…ghij".to_string(), "abcd…".to_string()));
        assert_eq!(break_label("lr-0.001", -0.67), ["l", "r", "-", "0", ".", "0", "0", "1"]);
        assert_eq!(break_label("", 0.0), Vec::<String>::new());
        for l in break_label("/data/fashion mnist/v2_full, seed-1", 60.0) {
            assert!(label_px(&l) <= 60.0, "{l}");
        }
    }

    fn fig(categories: bool) -> Figure {
        Figure {
            title: "Loss of run-a".into(),
            panels: vec![Panel {
                title: "panel".into(),
                x_label: "step".into(),
                y_label: "loss".into(),
                x: if categories { XAxis::Categories(vec!["0.1-0.2".into(), "0.15-0.2".into()]) } else { XAxis::Numeric },
                series: vec![
                    Series::new("run-a", vec![(0.0, 1.0), (1.0, f64::NAN), (2.0, 0.5), (3.0, 0.2)], 0, Stroke::Solid),
                    Series { label: None, points: vec![(0.0, 1.1), (1.0, 0.7)], colour: 0, stroke: Stroke::Faint },
                    Series::new("paper", vec![(0.0, 0.4), (1.0, 0.6)], 1, Stroke::Markers),
                    Series::new("baseline", vec![(0.0, 0.3), (3.0, 0.3)], 2, Stroke::Dotted),
                ],
            }],
        }
    }

    /// The contents of the SVG's `<text>` elements, trimmed.
    pub(crate) fn svg_texts(svg: &str) -> Vec<String> {
        svg.split("<text").skip(1).filter_map(|t| Some(t.split_once('>')?.1.split_once("</text>")?.0.trim().to_string())).collect()
    }

    #[test]
    fn a_long_title_keeps_its_ends() {
        let mut f = fig(false);
        f.title = format!("Training loss: {}end", "longname_".repeat(11));
        let svg = render(&f).unwrap().svg;
        let title = svg_texts(&svg).into_iter().find(|t| t.starts_with("Training loss: ")).expect("the title");
        assert!(title.contains('…') && title.ends_with("end") && title.chars().count() < f.title.chars().count(), "{title}");
    }

    /// A long axis title keeps its ends inside the figure (it ran past the right edge), and a
    /// dotted level at one position is drawn (from a point to itself, it had no length).
    #[test]
    fn a_long_axis_title_and_a_level_at_one_point_are_drawn() {
        let mut f = fig(true);
        f.panels[0].x_label = "ema.start, mask.targets.scale, optimizer.lr.peak, optimizer.lr.start, optimizer.weight-decay.final".into();
        let svg = render(&f).unwrap().svg;
        let desc = svg_texts(&svg).into_iter().find(|t| t.starts_with("ema.start, ")).expect("the axis title");
        assert!(desc.contains('…') && desc.ends_with("weight-decay.final") && desc.chars().count() <= 72, "{desc}");
        f.panels[0].series = vec![Series::new("pixels", vec![(0.0, 0.3), (0.0, 0.3)], 2, Stroke::Dotted)];
        let svg = render(&f).unwrap().svg;
        assert_eq!(svg.matches("<circle").count(), 5, "{svg}");
    }

    #[test]
    fn renders_svg_and_png_with_text() {
        let r = render(&fig(false)).unwrap();
        assert_eq!(&r.png[..8], b"\x89PNG\r\n\x1a\n");
        assert!(r.svg.starts_with("<svg") && r.svg.trim_end().ends_with("</svg>"));
        let texts = svg_texts(&r.svg);
        for text in ["Loss of run-a", "step", "loss", "run-a", "paper", "baseline", "panel"] {
            assert!(texts.iter().any(|t| t == text), "the SVG lacks the text {text}: {texts:?}");
        }
        // tick labels are numbers, on both axes
        assert!(texts.iter().filter(|t| t.parse::<f64>().is_ok()).count() >= 6, "too few numeric tick labels: {texts:?}");
        // the unlabelled faint line is not in the legend
        assert_eq!(r.legend.len(), 3);
        assert_eq!(r.legend[0], ("run-a".to_string(), "blue"));
        // the PNG has text: dark pixels in the title band, not only white
        let dec = png::Decoder::new(std::io::Cursor::new(&r.png));
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let title_band = &buf[..(info.width * 30 * 3) as usize];
        assert!(title_band.chunks(3).any(|p| p.iter().all(|&c| c < 100)), "no title text in the PNG");
    }

    /// A tick a rounding step off zero reads as 0 (a learning rate's axis from 0 showed
    /// `-2.7e-20`).
    #[test]
    fn a_tick_at_zero_reads_0() {
        for top in [5e-3, 1e-3, 7e-4, 2e-3, 0.3, 1.7e-3, 4e-4] {
            let mut f = fig(false);
            f.panels[0].series = vec![Series::new("lr", (0..=20).map(|i| (i as f64, top * (i as f64 / 20.0))).collect(), 0, Stroke::Solid)];
            let texts = svg_texts(&render(&f).unwrap().svg);
            let tiny: Vec<&String> = texts.iter().filter(|t| t.parse::<f64>().is_ok_and(|v| v != 0.0 && v.abs() < top * 1e-6)).collect();
            assert!(tiny.is_empty(), "{top}: {tiny:?} in {texts:?}");
        }
    }

    #[test]
    fn categories_label_the_x_axis() {
        let r = render(&fig(true)).unwrap();
        let texts = svg_texts(&r.svg);
        assert!(texts.iter().any(|t| t == "0.1-0.2") && texts.iter().any(|t| t == "0.15-0.2"), "{texts:?}");
        // no fractional positions get a label
        assert!(!texts.iter().any(|t| t == "0.5" || t == "-0.5"), "{texts:?}");
    }

    /// A sweep of 60 points names every few categories instead of writing 60 labels into each
    /// other; two categories keep both names.
    #[test]
    fn many_categories_are_named_every_few() {
        let mut f = fig(true);
        let names: Vec<String> = (0..60).map(|i| format!("{:.4}", 0.0001 * (i + 1) as f64)).collect();
        f.panels[0].x = XAxis::Categories(names.clone());
        let texts = svg_texts(&render(&f).unwrap().svg);
        let named: Vec<&String> = names.iter().filter(|n| texts.contains(n)).collect();
        assert!(texts.contains(&names[0]), "{texts:?}");
        assert!(named.len() > 3 && named.len() < 30, "{} of 60 named: {named:?}", named.len());
        let texts = svg_texts(&render(&fig(true)).unwrap().svg);
        assert!(texts.iter().any(|t| t == "0.1-0.2") && texts.iter().any(|t| t == "0.15-0.2"), "{texts:?}");
        // hundreds of values, on panels of every width (the side-by-side panel of a sweep left a
        // negative width for each label past 88 values, and breaking them panicked)
        for n in [89, 200, 1000] {
            let mut many = fig(true);
            many.panels[0].x = XAxis::Categories((0..n).map(|i| format!("lr-{i}")).collect());
            render(&many).unwrap();
            many.panels.push(many.panels[0].clone());
            render(&many).unwrap();
        }
        // two long values without commas (data roots): both named, each in a few lines (the
        // second was left unnamed, every second category being named)
        let long = ["/datasets/fashion-mnist-variant-with-a-rather-long-name-one/train", "/datasets/fashion-mnist-variant-with-a-rather-long-name-two/train"];
        f.panels[0].x = XAxis::Categories(long.iter().map(|s| s.to_string()).collect());
        let texts = svg_texts(&render(&f).unwrap().svg);
        for end in ["one/train", "two/train"] {
            assert!(texts.iter().any(|t| t.ends_with(end)), "{end}: {texts:?}");
        }
        assert!(!texts.iter().any(|t| t == long[0]), "{texts:?}");
        // values too long for four lines keep their start and end, each named (the second of
        // two 180-character roots was left unnamed); a legend entry wider than the figure too
        let huge: Vec<String> = ["5e-4", "1e-3"].iter().map(|lr| format!("/data/{}, {lr}", "verylongdirectoryname".repeat(8))).collect();
        f.panels[0].x = XAxis::Categories(huge.clone());
        f.panels[0].series[0].label = Some(huge[0].clone());
        let r = render(&f).unwrap();
        let texts = svg_texts(&r.svg);
        for lr in ["5e-4", "1e-3"] {
            assert!(texts.iter().any(|t| t.ends_with(lr)), "{lr}: {texts:?}");
        }
        assert!(r.legend[0].0.contains('…') && r.legend[0].0.ends_with("5e-4"), "{:?}", r.legend);
    }

    #[test]
    fn ranges_ticks_and_smoothing() {
        assert_eq!(padded_range(std::iter::empty()), (0.0, 1.0));
        let (lo, hi) = padded_range([2.0, 2.0].into_iter());
        assert!(lo < 2.0 && hi > 2.0);
        assert_eq!(tick(0.5), "0.5");
        assert_eq!(tick(2.0), "2");
        assert_eq!(tick(0.0001), "1e-4");
        // a narrow axis's ticks read apart (a learning rate's, an EMA's), a wide one's stay short
        let ticks = |vs: &[f64], span: f64| vs.iter().map(|v| tick_on(*v, span)).collect::<Vec<_>>();
        assert_eq!(ticks(&[2.05e-4, 2.1e-4, 2.15e-4, 2.2e-4], 3.8e-5), ["2.05e-4", "2.1e-4", "2.15e-4", "2.2e-4"]);
        assert_eq!(ticks(&[0.99600, 0.99605, 0.9961, 0.99615], 2.5e-4), ["0.996", "0.99605", "0.9961", "0.99615"]);
        assert_eq!(ticks(&[0.0, 20.0, 40.000000001, 60.0], 70.0), ["0", "20", "40", "60"]);
        assert_eq!(ticks(&[0.2, 0.4, 0.30000000000000004], 1.0), ["0.2", "0.4", "0.3"]);
        assert_eq!(ticks(&[2e-4, 4e-4], 1e-3), ["2e-4", "4e-4"]);
        assert_eq!(ticks(&[-2.7e-20, 1.5e5, 2e5], 3e5), ["0", "1.5e5", "2e5"]);
        // a flat series: an axis around its value, not one 0.01 wide (a constant lr of 5e-4 read 0)
        let (lo, hi) = padded_range([5e-4, 5e-4].into_iter());
        assert!(lo > 4.9e-4 && hi < 5.1e-4, "{lo} {hi}");
        let s = smooth(&[1.0, 1.0, f64::NAN, 1.0], 0.9);
        assert!((s[0] - 1.0).abs() < 1e-12 && (s[3] - 1.0).abs() < 1e-12 && s[2].is_nan());
        let s = smooth(&[0.0, 10.0], 0.5);
        assert!((s[1] - 10.0 * 0.5 / 0.75).abs() < 1e-9);
    }

    /// Values whose span is past f64's range are drawn (clipped to a finite axis): the
    /// drawing never ended.
    #[test]
    fn values_spanning_past_f64_are_drawn() {
        let (lo, hi) = padded_range([-1e308, 1e308].into_iter());
        assert!(lo.is_finite() && hi.is_finite() && (hi - lo).is_finite(), "{lo} {hi}");
        let mut f = fig(false);
        f.panels[0].series[0].points = vec![(0.0, -1e308), (1.0, 1e308), (1e308, 0.0)];
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(render(&f).is_ok());
        });
        assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(30)), Ok(true), "the drawing did not end within 30 s");
    }

    /// Two long labels that differ in their middle stay apart in the legend (the cut made
    /// them one: `I-JEPA (ours) · linear [data.limit…LLLL]` twice).
    #[test]
    fn labels_the_cut_would_make_one_stay_apart() {
        let mut f = fig(false);
        let long = |limit: u32| format!("I-JEPA (ours) · linear [data.limit={limit}, data.root=/tmp/{}_x_]", "L".repeat(80));
        f.panels[0].series = vec![Series::new(long(200), vec![(0.0, 1.0)], 0, Stroke::Solid), Series::new(long(300), vec![(0.0, 2.0)], 1, Stroke::Solid)];
        let labels: Vec<String> = legend_entries(&f).into_iter().map(|e| e.0).collect();
        assert!(labels[0] != labels[1] && labels.iter().all(|l| l.chars().count() < long(200).chars().count()), "{labels:?}");
        // (alike from either end: numbered)
        let both = |limit: u32| format!("{}{limit}{}", "A".repeat(90), "B".repeat(90));
        f.panels[0].series = vec![Series::new(both(200), vec![(0.0, 1.0)], 0, Stroke::Solid), Series::new(both(300), vec![(0.0, 2.0)], 1, Stroke::Solid)];
        let labels: Vec<String> = legend_entries(&f).into_iter().map(|e| e.0).collect();
        assert!(labels[0].ends_with(" (1)") && labels[1].ends_with(" (2)"), "{labels:?}");
    }

    #[test]
    fn long_legends_wrap() {
        let entries: Vec<(String, usize, Stroke)> =
            (0..12).map(|i| (format!("pretrain-0123456789ab [mask.targets.scale=0.{i}]"), i, Stroke::Solid)).collect();
        let rows = legend_rows(&entries, PANEL_W);
        assert!(rows.len() > 1 && rows.iter().all(|r| !r.is_empty()));
        assert_eq!(rows.iter().map(Vec::len).sum::<usize>(), 12);
    }
}
