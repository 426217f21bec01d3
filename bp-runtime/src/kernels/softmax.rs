//! `softmax` and `log_softmax` over the last dimension (`n` elements per row), both
//! computed after subtracting the row maximum so that no `exp` overflows, and their
//! backward formulas.
#![forbid(unsafe_code)]

use super::reduce::{dot_of, max_of, sum_of};
use super::{put, Accumulate};
use crate::Float;

/// `y[r,i] = exp(x[r,i] − m_r) / Σ_j exp(x[r,j] − m_r)` with `m_r = max_j x[r,j]`, for
/// `x` and `y` `[rows, n]`; `y` is overwritten and each of its rows sums to 1.
///
/// Subtracting the maximum changes nothing mathematically but keeps every `exp` in
/// (0, 1], so inputs like 1000 stay finite.
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
pub fn softmax<T: Float>(rows: usize, n: usize, x: &[T], y: &mut [T]) {
    debug_assert_eq!(x.len(), rows * n, "softmax: x");
    debug_assert_eq!(y.len(), rows * n, "softmax: y");
    if n == 0 {
        return;
    }
    let (x, y) = (&x[..rows * n], &mut y[..rows * n]);
    for (xr, yr) in x.chunks_exact(n).zip(y.chunks_exact_mut(n)) {
        let m = max_of(xr);
        for (y, &x) in yr.iter_mut().zip(xr) {
            *y = (x - m).exp();
        }
        let inv = T::ONE / sum_of(yr);
        for y in yr.iter_mut() {
            *y *= inv;
        }
    }
}

/// The backward of [`softmax`] from its output: `dx[r,i] (+)= y[r,i]·(dy[r,i] − s_r)`
/// with `s_r = Σ_j dy[r,j]·y[r,j]`, for `y`, `dy` and `dx` `[rows, n]`.
/// [`Accumulate::Overwrite`] overwrites `dx`, [`Accumulate::Add`] adds to it.
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
pub fn softmax_backward<T: Float>(
    rows: usize,
    n: usize,
    y: &[T],
    dy: &[T],
    dx: &mut [T],
    accumulate: Accumulate,
) {
    debug_assert_eq!(y.len(), rows * n, "softmax_backward: y");
    debug_assert_eq!(dy.len(), rows * n, "softmax_backward: dy");
    debug_assert_eq!(dx.len(), rows * n, "softmax_backward: dx");
    if n == 0 {
        return;
    }
    let (y, dy, dx) = (&y[..rows * n], &dy[..rows * n], &mut dx[..rows * n]);
    let rows_iter = y.chunks_exact(n).zip(dy.chunks_exact(n));
    for ((yr, gr), dr) in rows_iter.zip(dx.chunks_exact_mut(n)) {
        let s = dot_of(gr, yr);
        for ((d, &y), &g) in dr.iter_mut().zip(yr).zip(gr) {
            put(d, y * (g - s), accumulate);
        }
    }
}

/// `y[r,i] = (x[r,i] − m_r) − ln Σ_j exp(x[r,j] − m_r)` with `m_r = max_j x[r,j]`, i.e.
/// `x − logsumexp(x)` per row, for `x` and `y` `[rows, n]`; `y` is overwritten.
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
pub fn log_softmax<T: Float>(rows: usize, n: usize, x: &[T], y: &mut [T]) {
    debug_assert_eq!(x.len(), rows * n, "log_softmax: x");
    debug_assert_eq!(y.len(), rows * n, "log_softmax: y");
    if n == 0 {
        return;
    }
    let (x, y) = (&x[..rows * n], &mut y[..rows * n]);
    for (xr, yr) in x.chunks_exact(n).zip(y.chunks_exact_mut(n)) {
        let m = max_of(xr);
        // y holds exp(x − m) for the sum, then is overwritten with the result.
        for (y, &x) in yr.iter_mut().zip(xr) {
            *y = (x - m).exp();
        }
        let ln_sum = sum_of(yr).ln();
        for (y, &x) in yr.iter_mut().zip(xr) {
            *y = (x - m) - ln_sum;
        }
    }
}

/// The backward of [`log_softmax`] from its output: `dx[r,i] (+)= dy[r,i] −
/// exp(y[r,i])·Σ_j dy[r,j]`, for `y`, `dy` and `dx` `[rows, n]` (`exp(y)` is the
/// softmax). [`Accumulate::Overwrite`] overwrites `dx`, [`Accumulate::Add`] adds to it.
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
pub fn log_softmax_backward<T: Float>(
    rows: usize,
    n: usize,
    y: &[T],
    dy: &[T],
    dx: &mut [T],
    accumulate: Accumulate,
) {
    debug_assert_eq!(y.len(), rows * n, "log_softmax_backward: y");
    debug_assert_eq!(dy.len(), rows * n, "log_softmax_backward: dy");
    debug_assert_eq!(dx.len(), rows * n, "log_softmax_backward: dx");
    if n == 0 {
        return;
    }
    let (y, dy, dx) = (&y[..rows * n], &dy[..rows * n], &mut dx[..rows * n]);
    let rows_iter = y.chunks_exact(n).zip(dy.chunks_exact(n));
    for ((yr, gr), dr) in rows_iter.zip(dx.chunks_exact_mut(n)) {
        let s = sum_of(gr);
        for ((d, &y), &g) in dr.iter_mut().zip(yr).zip(gr) {
            put(d, g - y.exp() * s, accumulate);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_util::{assert_close, central_diff, data, dot};
    use Accumulate::{Add, Overwrite};

    const SHAPES: &[(usize, usize)] = &[(1, 1), (2, 3), (3, 10), (2, 37)];

    #[test]
    fn hand_computed() {
        // softmax([0, ln 3]) = [1/4, 3/4]; log_softmax = [ln 1/4, ln 3/4].
        let x = [0.0f64, 3.0f64.ln()];
        let mut y = [0.0; 2];
        softmax(1, 2, &x, &mut y);
        assert_close(&y, &[0.25, 0.75], 1e-15);
        log_softmax(1, 2, &x, &mut y);
        assert_close(&y, &[0.25f64.ln(), 0.75f64.ln()], 1e-15);
    }

    #[test]
    fn rows_sum_to_one_and_stay_finite_for_large_inputs() {
        // Without subtracting the row maximum, exp(1000) would overflow to ∞ (and ∞/∞ = NaN).
        let x = [
            1000.0f32, 999.0, 1000.0, -1000.0, -1000.0, -999.0, 88.0, 89.0, 0.0,
        ];
        let mut y = [0.0f32; 9];
        softmax(3, 3, &x, &mut y);
        for row in y.chunks(3) {
            assert!(row.iter().all(|v| v.is_finite() && *v >= 0.0));
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        // A row [1000, 999, 1000] is [e, 1, e]/(2e + 1) after dividing by e^999.
        let e = 1f32.exp();
        assert!((y[0] - e / (2.0 * e + 1.0)).abs() < 1e-6);
        log_softmax(3, 3, &x, &mut y);
        assert!(y.iter().all(|v| v.is_finite() && *v <= 0.0));
        // ln of the same row: 0 − ln(2 + 1/e) for the maxima.
        assert!((y[0] + (2.0 + 1.0 / e).ln()).abs() < 1e-5);
    }

    #[test]
    fn forward_matches_naive() {
        // y[r,i] = exp(x[r,i]) / Σ_j exp(x[r,j]) and its logarithm (no overflow here)
        for &(rows, n) in SHAPES {
            let x = data(rows * n, 1);
            let mut want = vec![0.0; rows * n];
            for (w, xr) in want.chunks_mut(n).zip(x.chunks(n)) {
                let s: f64 = xr.iter().map(|v| v.exp()).sum();
                for (w, v) in w.iter_mut().zip(xr) {
                    *w = v.exp() / s;
                }
            }
            let mut y = vec![f64::NAN; rows * n];
            softmax(rows, n, &x, &mut y);
            assert_close(&y, &want, 1e-14);
            log_softmax(rows, n, &x, &mut y);
            let want: Vec<f64> = want.iter().map(|v| v.ln()).collect();
            assert_close(&y, &want, 1e-14);
        }
    }

    #[test]
    fn backward_matches_formula_with_accumulate() {
        // softmax: dx = y ⊙ (dy − Σ_j dy_j y_j); log_softmax: dx = dy − exp(y)·Σ_j dy_j
        for &(rows, n) in SHAPES {
            let (x, g, old) = (data(rows * n, 2), data(rows * n, 3), data(rows * n, 4));
            let (mut s, mut l) = (vec![0.0; rows * n], vec![0.0; rows * n]);
            softmax(rows, n, &x, &mut s);
            log_softmax(rows, n, &x, &mut l);
            let mut want_s = vec![0.0; rows * n];
            let mut want_l = vec![0.0; rows * n];
            for r in 0..rows {
                let row = r * n..(r + 1) * n;
                let sg: f64 = row.clone().map(|i| g[i] * s[i]).sum();
                let gsum: f64 = row.clone().map(|i| g[i]).sum();
                for i in row {
                    want_s[i] = s[i] * (g[i] - sg);
                    want_l[i] = g[i] - l[i].exp() * gsum;
                }
            }
            for acc in [Overwrite, Add] {
                let base = if acc.is_add() {
                    old.clone()
                } else {
                    vec![f64::NAN; rows * n]
                };
                let add = |w: &[f64]| -> Vec<f64> {
                    w.iter()
                        .zip(&old)
                        .map(|(w, o)| if acc.is_add() { w + o } else { *w })
                        .collect()
                };
                let mut dx = base.clone();
                softmax_backward(rows, n, &s, &g, &mut dx, acc);
                assert_close(&dx, &add(&want_s), 1e-14);
                let mut dx = base;
                log_softmax_backward(rows, n, &l, &g, &mut dx, acc);
                assert_close(&dx, &add(&want_l), 1e-14);
            }
        }
    }

    /// The backward fed dy = g is the gradient of J(x) = Σ g ⊙ f(x): central differences
    /// in f64.
    #[test]
    fn backward_matches_finite_differences() {
        let (rows, n) = (3, 7);
        let (x, g) = (data(rows * n, 5), data(rows * n, 6));
        type Forward = fn(usize, usize, &[f64], &mut [f64]);
        type Backward = fn(usize, usize, &[f64], &[f64], &mut [f64], Accumulate);
        let pairs: [(Forward, Backward); 2] = [
            (softmax, softmax_backward),
            (log_softmax, log_softmax_backward),
        ];
        for (forward, backward) in pairs {
            let mut y = vec![0.0; rows * n];
            forward(rows, n, &x, &mut y);
            let mut dx = vec![0.0; rows * n];
            backward(rows, n, &y, &g, &mut dx, Overwrite);
            let numeric = central_diff(&x, |x| {
                let mut y = vec![0.0; rows * n];
                forward(rows, n, x, &mut y);
                dot(&g, &y)
            });
            assert_close(&dx, &numeric, 1e-6);
        }
    }
}
