//! Draws sampled multi-block layouts as a PNG: one panel per image, one cell per patch.
//! Context patches are blue, each target block has its own colour (warm tones), patches in
//! neither are light grey, and a patch in several targets takes the last one's colour.

use ijepa_engine::error::{Error, Result};
use super::mask::MaskBatch;
use std::path::Path;

const CONTEXT: [u8; 3] = [60, 110, 200];
const UNUSED: [u8; 3] = [225, 225, 225];
const TARGETS: [[u8; 3]; 6] = [[230, 80, 60], [240, 160, 40], [200, 60, 160], [120, 180, 60], [150, 90, 40], [240, 120, 150]];
const BACKGROUND: [u8; 3] = [255, 255, 255];

/// Writes the layouts of the first `panels` images of `masks` (grid `gh x gw`) to `path`.
pub fn write(path: &Path, masks: &MaskBatch, gh: usize, gw: usize, panels: usize) -> Result<()> {
    let panels = panels.min(masks.batch).max(1);
    let cell = (96 / gh.max(gw)).clamp(4, 24);
    let (gap, margin) = (1usize, 12usize);
    let pw = gw * (cell + gap) - gap;
    let ph = gh * (cell + gap) - gap;
    let cols = panels.min(4);
    let rows = panels.div_ceil(cols);
    let width = margin + cols * (pw + margin);
    let height = margin + rows * (ph + margin);
    let mut img = vec![0u8; width * height * 3];
    for px in img.chunks_mut(3) {
        px.copy_from_slice(&BACKGROUND);
    }
    for p in 0..panels {
        let mut colour = vec![UNUSED; gh * gw];
        for j in 0..masks.n_context {
            for &i in masks.context_of(j, p) {
                colour[i as usize] = CONTEXT;
            }
        }
        for j in 0..masks.n_targets {
            for &i in masks.target_of(j, p) {
                colour[i as usize] = TARGETS[j % TARGETS.len()];
            }
        }
        let (ox, oy) = (margin + (p % cols) * (pw + margin), margin + (p / cols) * (ph + margin));
        for r in 0..gh {
            for c in 0..gw {
                for y in 0..cell {
                    for x in 0..cell {
                        let (xx, yy) = (ox + c * (cell + gap) + x, oy + r * (cell + gap) + y);
                        let o = (yy * width + xx) * 3;
                        img[o..o + 3].copy_from_slice(&colour[r * gw + c]);
                    }
                }
            }
        }
    }
    // its folder is made, as every other output's is
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), width as u32, height as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().map_err(|e| Error::io(path, std::io::Error::other(e)))?;
    w.write_image_data(&img).map_err(|e| Error::io(path, std::io::Error::other(e)))?;
    w.finish().map_err(|e| Error::io(path, std::io::Error::other(e)))?;
    Ok(())
}
