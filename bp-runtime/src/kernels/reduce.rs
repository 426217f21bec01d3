//! Reductions over the `n` elements of each row (`sum`, `mean`) and their backward
//! broadcasts, plus the vectorizable row helpers (sum, dot, max) that the softmax
//! kernels share.
#![forbid(unsafe_code)]

use super::{put, Accumulate};
use crate::Float;

/// Independent partial sums kept by the row helpers: a floating-point sum is only
/// vectorized when its order may change, so the helpers keep `LANES` sums side by side
/// (several SIMD registers of independent additions) and add them up at the end.
const LANES: usize = 16;

/// Adds the `LANES` partial sums pairwise.
#[inline(always)]
fn fold<T: Float>(mut acc: [T; LANES]) -> T {
    let mut width = LANES / 2;
    while width > 0 {
        for i in 0..width {
            acc[i] += acc[i + width];
        }
        width /= 2;
    }
    acc[0]
}

/// `Σ_i x[i]`, in `LANES` interleaved partial sums.
#[inline]
pub(crate) fn sum_of<T: Float>(x: &[T]) -> T {
    let mut acc = [T::ZERO; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    let mut s = fold(acc);
    for &v in rest {
        s += v;
    }
    s
}

/// `Σ_i a[i]·b[i]` over the common length, in `LANES` interleaved partial sums.
#[inline]
pub(crate) fn dot_of<T: Float>(a: &[T], b: &[T]) -> T {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [T::ZERO; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for ((s, &x), &y) in acc.iter_mut().zip(x).zip(y) {
            *s += x * y;
        }
    }
    let mut s = fold(acc);
    for (&x, &y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// `max_i x[i]` (NaN elements are skipped, as by [`Float::max`]); −∞ for an empty slice.
#[inline]
pub(crate) fn max_of<T: Float>(x: &[T]) -> T {
    let low = T::from_f64(f64::NEG_INFINITY);
    let mut acc = [low; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = a.max(v);
        }
    }
    let mut m = acc.iter().fold(low, |m, &a| m.max(a));
    for &v in rest {
        m = m.max(v);
    }
    m
}

/// `y[r] = Σ_i x[r,i]`: the sum of each of the `rows` rows of `n` elements of `x`
/// (`[rows, n]`) into `y` (`[rows]`), overwritten.
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
pub fn sum<T: Float>(rows: usize, n: usize, x: &[T], y: &mut [T]) {
    debug_assert_eq!(x.len(), rows * n, "sum: x");
    debug_assert_eq!(y.len(), rows, "sum: y");
    let y = &mut y[..rows];
    if n == 0 {
        y.fill(T::ZERO);
        return;
    }
    for (y, row) in y.iter_mut().zip(x[..rows * n].chunks_exact(n)) {
        *y = sum_of(row);
    }
}

/// The backward of [`sum`]: `dx[r,i] (+)= dy[r]`, with `dy` `[rows]` and `dx`
/// `[rows, n]`. [`Accumulate::Overwrite`] overwrites `dx`, [`Accumulate::Add`] adds to
/// it.
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
pub fn sum_backward<T: Float>(
    rows: usize,
    n: usize,
    dy: &[T],
    dx: &mut [T],
    accumulate: Accumulate,
) {
    broadcast(rows, n, T::ONE, dy, dx, accumulate);
}

/// `y[r] = (1/n)·Σ_i x[r,i]`: the mean of each of the `rows` rows of `n` elements of `x`
/// (`[rows, n]`) into `y` (`[rows]`), overwritten. An empty row has mean NaN, as in
/// PyTorch.
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
pub fn mean<T: Float>(rows: usize, n: usize, x: &[T], y: &mut [T]) {
    debug_assert_eq!(x.len(), rows * n, "mean: x");
    debug_assert_eq!(y.len(), rows, "mean: y");
    let y = &mut y[..rows];
    if n == 0 {
        y.fill(T::from_f64(f64::NAN));
        return;
    }
    let inv = T::ONE / T::from_usize(n);
    for (y, row) in y.iter_mut().zip(x[..rows * n].chunks_exact(n)) {
        *y = sum_of(row) * inv;
    }
}

/// The backward of [`mean`]: `dx[r,i] (+)= dy[r] / n`, with `dy` `[rows]` and `dx`
/// `[rows, n]`. [`Accumulate::Overwrite`] overwrites `dx`, [`Accumulate::Add`] adds to
/// it.
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
pub fn mean_backward<T: Float>(
    rows: usize,
    n: usize,
    dy: &[T],
    dx: &mut [T],
    accumulate: Accumulate,
) {
    // n = 0 gives an infinite scale, but then there is no element to scale.
    let inv = T::ONE / T::from_usize(n);
    broadcast(rows, n, inv, dy, dx, accumulate);
}

/// `dx[r,i] (+)= scale·dy[r]`: each row value spread over the `n` elements of its row.
fn broadcast<T: Float>(rows: usize, n: usize, scale: T, dy: &[T], dx: &mut [T], acc: Accumulate) {
    debug_assert_eq!(dy.len(), rows, "reduction backward: dy");
    debug_assert_eq!(dx.len(), rows * n, "reduction backward: dx");
    if n == 0 {
        return;
    }
    let dy = &dy[..rows];
    for (row, &g) in dx[..rows * n].chunks_exact_mut(n).zip(dy) {
        let g = scale * g;
        for d in row {
            put(d, g, acc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_util::{assert_close, central_diff, data, dot};
    use Accumulate::{Add, Overwrite};

    // (rows, n) shapes: rows shorter than LANES, a multiple of it, and ragged.
    const SHAPES: &[(usize, usize)] = &[(1, 1), (2, 3), (3, 16), (4, 37), (2, 784)];

    #[test]
    fn row_helpers_match_naive() {
        for len in [0, 1, 15, 16, 17, 100] {
            let (a, b) = (data(len, 1), data(len, 2));
            let s: f64 = a.iter().sum();
            let d: f64 = a.iter().zip(&b).map(|(a, b)| a * b).sum();
            let m = a.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
            assert!((sum_of(&a) - s).abs() < 1e-12);
            assert!((dot_of(&a, &b) - d).abs() < 1e-12);
            assert_eq!(max_of(&a), m);
        }
        // The maximum may sit in the remainder; NaN is skipped.
        let mut v = vec![0.0f32; 20];
        v[19] = 5.0;
        v[3] = f32::NAN;
        assert_eq!(max_of(&v), 5.0);
    }

    #[test]
    fn hand_computed() {
        // rows [1 2 3] and [4 5 6]: sums 6 and 15, means 2 and 5.
        let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut y = [0.0f32; 2];
        sum(2, 3, &x, &mut y);
        assert_eq!(y, [6.0, 15.0]);
        mean(2, 3, &x, &mut y);
        assert_eq!(y, [2.0, 5.0]);
        // dx[r,i] = dy[r] / 3 for mean.
        let mut dx = [0.0f32; 6];
        mean_backward(2, 3, &[3.0, 6.0], &mut dx, Overwrite);
        assert_eq!(dx, [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
        sum_backward(2, 3, &[1.0, -1.0], &mut dx, Add);
        assert_eq!(dx, [2.0, 2.0, 2.0, 1.0, 1.0, 1.0]);
        // An empty row sums to 0 and has a NaN mean.
        sum(2, 0, &[], &mut y);
        assert_eq!(y, [0.0, 0.0]);
        mean(2, 0, &[], &mut y);
        assert!(y.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn forward_matches_naive() {
        // y[r] = Σ_i x[r,i] and y[r] = Σ_i x[r,i] / n
        for &(rows, n) in SHAPES {
            let x = data(rows * n, 3);
            let want: Vec<f64> = x.chunks(n).map(|r| r.iter().sum()).collect();
            let mut y = vec![f64::NAN; rows];
            sum(rows, n, &x, &mut y);
            assert_close(&y, &want, 1e-12);
            mean(rows, n, &x, &mut y);
            let want: Vec<f64> = want.iter().map(|s| s / n as f64).collect();
            assert_close(&y, &want, 1e-12);
        }
    }

    #[test]
    fn backward_accumulate_and_overwrite() {
        // dx[r,i] (+)= dy[r]·scale with scale 1 (sum) or 1/n (mean)
        for &(rows, n) in SHAPES {
            let (dy, old) = (data(rows, 4), data(rows * n, 5));
            for (mean_, scale) in [(false, 1.0), (true, 1.0 / n as f64)] {
                for acc in [Overwrite, Add] {
                    let mut want = if acc.is_add() {
                        old.clone()
                    } else {
                        vec![0.0; rows * n]
                    };
                    for (i, w) in want.iter_mut().enumerate() {
                        *w += dy[i / n] * scale;
                    }
                    let mut dx = if acc.is_add() {
                        old.clone()
                    } else {
                        vec![f64::NAN; rows * n]
                    };
                    if mean_ {
                        mean_backward(rows, n, &dy, &mut dx, acc);
                    } else {
                        sum_backward(rows, n, &dy, &mut dx, acc);
                    }
                    assert_close(&dx, &want, 1e-12);
                }
            }
        }
    }

    /// The backward fed dy = g is the gradient of J(x) = Σ_r g[r]·y[r]: central
    /// differences in f64.
    #[test]
    fn backward_matches_finite_differences() {
        let (rows, n) = (3, 5);
        let (x, g) = (data(rows * n, 6), data(rows, 7));
        let mut dx = vec![0.0; rows * n];
        sum_backward(rows, n, &g, &mut dx, Overwrite);
        let numeric = central_diff(&x, |x| {
            let mut y = vec![0.0; rows];
            sum(rows, n, x, &mut y);
            dot(&g, &y)
        });
        assert_close(&dx, &numeric, 1e-6);
        mean_backward(rows, n, &g, &mut dx, Overwrite);
        let numeric = central_diff(&x, |x| {
            let mut y = vec![0.0; rows];
            mean(rows, n, x, &mut y);
            dot(&g, &y)
        });
        assert_close(&dx, &numeric, 1e-6);
    }
}
