//! Minimal line charts drawn into an RGB buffer and encoded with the `png` crate (no font, no
//! system libraries): a frame, a 4x4 grid and one coloured polyline per series. The axis ranges
//! and the colour of each series are returned so the report can print them as text.

use std::io::Cursor;

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label (printed in the report, not drawn).
    pub label: String,
    /// `(x, y)` points in drawing order; non-finite points break the line.
    pub points: Vec<(f64, f64)>,
}

/// A rendered chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// The PNG file's bytes.
    pub png: Vec<u8>,
    /// The x axis range `(min, max)` covered by the frame.
    pub x_range: (f64, f64),
    /// The y axis range `(min, max)` covered by the frame.
    pub y_range: (f64, f64),
    /// `(label, colour name)` per series, in input order.
    pub legend: Vec<(String, &'static str)>,
}

/// Tableau-10 colours and their names.
const PALETTE: [(&str, [u8; 3]); 10] = [
    ("blue", [31, 119, 180]),
    ("orange", [255, 127, 14]),
    ("green", [44, 160, 44]),
    ("red", [214, 39, 40]),
    ("purple", [148, 103, 189]),
    ("brown", [140, 86, 75]),
    ("pink", [227, 119, 194]),
    ("gray", [127, 127, 127]),
    ("olive", [188, 189, 34]),
    ("cyan", [23, 190, 207]),
];

const W: u32 = 640;
const H: u32 = 400;
const MARGIN: i64 = 24;

struct Canvas {
    px: Vec<u8>,
}

impl Canvas {
    fn new() -> Self {
        Self {
            px: vec![255; (W * H * 3) as usize],
        }
    }

    fn set(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if (0..W as i64).contains(&x) && (0..H as i64).contains(&y) {
            let i = ((y as u32 * W + x as u32) * 3) as usize;
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }

    /// Bresenham line with a `pen`-pixel square brush.
    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: [u8; 3], pen: i64) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            for ox in 0..pen {
                for oy in 0..pen {
                    self.set(x + ox, y + oy, c);
                }
            }
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }
}

/// The finite range of some values, padded by 5% (and widened when flat).
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let span = if hi > lo { hi - lo } else { lo.abs().max(1.0) };
    (lo - 0.05 * span, hi + 0.05 * span)
}

/// Draws the series as lines in a 640x400 PNG.
///
/// # Errors
/// Only if PNG encoding fails.
pub fn line_chart(series: &[Series]) -> Result<Chart, png::EncodingError> {
    let all = || series.iter().flat_map(|s| s.points.iter().copied());
    let x_range = range(all().map(|p| p.0));
    let y_range = range(all().map(|p| p.1));
    let (left, top, right, bottom) = (MARGIN, MARGIN, W as i64 - MARGIN, H as i64 - MARGIN);
    let to_px = |(x, y): (f64, f64)| {
        let fx = (x - x_range.0) / (x_range.1 - x_range.0);
        let fy = (y - y_range.0) / (y_range.1 - y_range.0);
        (
            left + (fx * (right - left) as f64).round() as i64,
            bottom - (fy * (bottom - top) as f64).round() as i64,
        )
    };
    let mut cv = Canvas::new();
    let grid = [225, 225, 225];
    for i in 1..4 {
        let gx = left + (right - left) * i / 4;
        let gy = top + (bottom - top) * i / 4;
        cv.line((gx, top), (gx, bottom), grid, 1);
        cv.line((left, gy), (right, gy), grid, 1);
    }
    let black = [0, 0, 0];
    for (a, b) in [
        ((left, top), (right, top)),
        ((right, top), (right, bottom)),
        ((left, bottom), (right, bottom)),
        ((left, top), (left, bottom)),
    ] {
        cv.line(a, b, black, 1);
    }
    let mut legend = Vec::new();
    for (s, (name, colour)) in series.iter().zip(PALETTE.iter().cycle()) {
        let mut prev: Option<(i64, i64)> = None;
        for &p in &s.points {
            if !(p.0.is_finite() && p.1.is_finite()) {
                prev = None;
                continue;
            }
            let q = to_px(p);
            cv.line(prev.unwrap_or(q), q, *colour, 2);
            prev = Some(q);
        }
        legend.push((s.label.clone(), *name));
    }
    let mut png = Vec::new();
    {
        let mut enc = png::Encoder::new(Cursor::new(&mut png), W, H);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header()?;
        writer.write_image_data(&cv.px)?;
        writer.finish()?;
    }
    Ok(Chart {
        png,
        x_range,
        y_range,
        legend,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_png() {
        let s = Series {
            label: "a".into(),
            points: vec![(0.0, 1.0), (1.0, f64::NAN), (2.0, 0.5), (3.0, 0.2)],
        };
        let c = line_chart(&[s]).unwrap();
        assert_eq!(&c.png[..8], b"\x89PNG\r\n\x1a\n");
        assert!(c.x_range.0 < 0.0 && c.x_range.1 > 3.0);
        assert_eq!(c.legend, vec![("a".to_string(), "blue")]);
    }

    #[test]
    fn empty_and_flat_ranges() {
        assert_eq!(range(std::iter::empty()), (0.0, 1.0));
        let (lo, hi) = range([2.0, 2.0].into_iter());
        assert!(lo < 2.0 && hi > 2.0);
    }
}
