//! Fixed 2-D sin-cos position tables (official `src/models/vision_transformer.py`,
//! `get_2d_sincos_pos_embed`), computed in float64 like numpy and stored as float32.
//!
//! Half of the channels encode one grid coordinate, half the other. The official grid is built
//! with `np.meshgrid(grid_w, grid_h)`, so the *first* half comes from the column index and the
//! second half from the row index. Each half is `[sin(pos * w_k), cos(pos * w_k)]` with
//! `w_k = 1 / 10000^(k / (D/4))`, k = 0..D/4.

use tch::{TchError, Tensor};

/// 1-D table: for each position, `[sin(pos*w_0..), cos(pos*w_0..)]` of width `dim`.
fn sincos_1d(dim: usize, positions: &[f64]) -> Vec<Vec<f64>> {
    let half = dim / 2;
    let omega: Vec<f64> =
        (0..half).map(|k| 1.0 / 10000f64.powf(k as f64 / (dim as f64 / 2.0))).collect();
    positions
        .iter()
        .map(|&p| {
            let mut row: Vec<f64> = omega.iter().map(|w| (p * w).sin()).collect();
            row.extend(omega.iter().map(|w| (p * w).cos()));
            row
        })
        .collect()
}

/// The table as a `[1, grid_h * grid_w, dim]` float tensor (row-major over the grid).
/// `dim` must be divisible by 4.
///
/// # Errors
/// When the table cannot be allocated.
pub fn sincos_2d(dim: usize, grid_h: usize, grid_w: usize) -> Result<Tensor, TchError> {
    let n = grid_h * grid_w;
    // flattened meshgrid(w, h): entry i = (row i / grid_w, col i % grid_w)
    let cols: Vec<f64> = (0..n).map(|i| (i % grid_w) as f64).collect();
    let rows: Vec<f64> = (0..n).map(|i| (i / grid_w) as f64).collect();
    let a = sincos_1d(dim / 2, &cols);
    let b = sincos_1d(dim / 2, &rows);
    let mut flat: Vec<f32> = Vec::new();
    flat.try_reserve_exact(n * dim).map_err(|e| TchError::Torch(format!("can't allocate memory for a {n} x {dim} position table: {e}")))?;
    for i in 0..n {
        flat.extend(a[i].iter().map(|&v| v as f32));
        flat.extend(b[i].iter().map(|&v| v as f32));
    }
    Tensor::f_from_slice(&flat)?.f_view([1, n as i64, dim as i64])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_official_construction() {
        // D = 8, 2x3 grid: first half from the column, second from the row.
        let t = sincos_2d(8, 2, 3).unwrap();
        assert_eq!(t.size(), vec![1, 6, 8]);
        let v: Vec<f32> = t.view([-1]).try_into().unwrap();
        // patch 5 = row 1, col 2; omega for dim 4 = [1, 1/100]
        let row = &v[5 * 8..6 * 8];
        let expect = [
            (2.0f64).sin(), (0.02f64).sin(), (2.0f64).cos(), (0.02f64).cos(),
            (1.0f64).sin(), (0.01f64).sin(), (1.0f64).cos(), (0.01f64).cos(),
        ];
        for (a, b) in row.iter().zip(expect) {
            assert!((*a as f64 - b).abs() < 1e-6, "{row:?}");
        }
    }
}
