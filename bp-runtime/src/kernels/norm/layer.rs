//! Layer normalization over the last dimension (PyTorch's `nn.LayerNorm(n)` with its
//! elementwise affine `gamma`, `beta`): statistics per row of `n` values, accumulated in
//! f64 whatever `T` is.

use super::channel_stats;
use crate::kernels::{put, Accumulate};
use crate::Float;

/// Layer norm over the last dimension of `x` `[rows, n]` (PyTorch's `nn.LayerNorm(n)`):
/// per row, the mean and biased variance of its `n` values,
/// `inv_std[r] = 1/√(var + eps)`, `xhat = (x − mean)·inv_std[r]` and
/// `y = gamma·xhat + beta` with `gamma`, `beta` `[n]`. Writes `y`, `xhat` (`[rows, n]`)
/// and `inv_std` (`[rows]`), overwritten; `xhat` and `inv_std` feed
/// [`layer_norm_backward`].
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
#[allow(clippy::too_many_arguments)]
pub fn layer_norm<T: Float>(
    rows: usize,
    n: usize,
    eps: f64,
    x: &[T],
    gamma: &[T],
    beta: &[T],
    y: &mut [T],
    xhat: &mut [T],
    inv_std: &mut [T],
) {
    debug_assert_eq!(x.len(), rows * n, "layer_norm: x");
    debug_assert_eq!(y.len(), rows * n, "layer_norm: y");
    debug_assert_eq!(xhat.len(), rows * n, "layer_norm: xhat");
    debug_assert_eq!(gamma.len(), n, "layer_norm: gamma");
    debug_assert_eq!(beta.len(), n, "layer_norm: beta");
    debug_assert_eq!(inv_std.len(), rows, "layer_norm: inv_std");
    if n == 0 {
        return;
    }
    let it = x
        .chunks_exact(n)
        .zip(y.chunks_exact_mut(n))
        .zip(xhat.chunks_exact_mut(n));
    for (((xr, yr), hr), inv_out) in it.zip(inv_std.iter_mut()).take(rows) {
        let (mean, var) = channel_stats(1, 1, n, 0, xr);
        let (mean, inv) = (T::from_f64(mean), T::from_f64(1.0 / (var + eps).sqrt()));
        *inv_out = inv;
        for ((((&x, y), h), &g), &b) in xr.iter().zip(yr).zip(hr).zip(gamma).zip(beta) {
            let v = (x - mean) * inv;
            *h = v;
            *y = g * v + b;
        }
    }
}

/// The backward of [`layer_norm`] for `dy`, `xhat` `[rows, n]`: with `g = dy·gamma`,
/// per row `dx = inv_std/n · (n·g − Σg − xhat·Σ(g·xhat))` (when `dx` is given;
/// overwriting or adding as `acc_x` says), and `dgamma (+)= Σ_rows dy·xhat`,
/// `dbeta (+)= Σ_rows dy` (as `acc_params` says).
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
#[allow(clippy::too_many_arguments)]
pub fn layer_norm_backward<T: Float>(
    rows: usize,
    n: usize,
    dy: &[T],
    xhat: &[T],
    gamma: &[T],
    inv_std: &[T],
    dgamma: &mut [T],
    dbeta: &mut [T],
    acc_params: Accumulate,
    dx: Option<&mut [T]>,
    acc_x: Accumulate,
) {
    debug_assert_eq!(dy.len(), rows * n, "layer_norm_backward: dy");
    debug_assert_eq!(xhat.len(), rows * n, "layer_norm_backward: xhat");
    debug_assert_eq!(gamma.len(), n, "layer_norm_backward: gamma");
    debug_assert_eq!(inv_std.len(), rows, "layer_norm_backward: inv_std");
    debug_assert_eq!(dgamma.len(), n, "layer_norm_backward: dgamma");
    debug_assert_eq!(dbeta.len(), n, "layer_norm_backward: dbeta");
    if !acc_params.is_add() {
        dgamma.fill(T::ZERO);
        dbeta.fill(T::ZERO);
    }
    if n == 0 {
        return;
    }
    for (gr, hr) in dy.chunks_exact(n).zip(xhat.chunks_exact(n)).take(rows) {
        for (((dg, db), &g), &h) in dgamma.iter_mut().zip(dbeta.iter_mut()).zip(gr).zip(hr) {
            *dg += g * h;
            *db += g;
        }
    }
    let Some(dx) = dx else { return };
    debug_assert_eq!(dx.len(), rows * n, "layer_norm_backward: dx");
    let inv_n = 1.0 / n as f64;
    let it = dy
        .chunks_exact(n)
        .zip(xhat.chunks_exact(n))
        .zip(dx.chunks_exact_mut(n));
    for (((gr, hr), dr), &inv) in it.zip(inv_std).take(rows) {
        let (mut s, mut sx) = (0.0f64, 0.0f64);
        for ((&d, &h), &gm) in gr.iter().zip(hr).zip(gamma) {
            let g = (d * gm).to_f64();
            s += g;
            sx += g * h.to_f64();
        }
        let (mean_g, mean_gx) = (T::from_f64(s * inv_n), T::from_f64(sx * inv_n));
        for (((d, &dyv), &h), &gm) in dr.iter_mut().zip(gr).zip(hr).zip(gamma) {
            put(d, inv * (dyv * gm - mean_g - h * mean_gx), acc_x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::fd_check::{assert_grad, dot, fd_grad, nans, rand_vec};
    use Accumulate::{Add, Overwrite};

    const EPS: f64 = 1e-5;

    /// Reference layer norm by direct loops.
    fn naive_ln(rows: usize, n: usize, x: &[f64], gamma: &[f64], beta: &[f64]) -> Vec<f64> {
        let mut y = vec![0.0; rows * n];
        for r in 0..rows {
            let row = &x[r * n..(r + 1) * n];
            let mean = row.iter().sum::<f64>() / n as f64;
            let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
            for i in 0..n {
                y[r * n + i] = gamma[i] * (row[i] - mean) / (var + EPS).sqrt() + beta[i];
            }
        }
        y
    }

    #[test]
    fn layer_norm_hand_computed_and_naive() {
        // Row [1 3]: mean 2, var 1 ⇒ xhat [−1 1] (eps = 0); y = [3·(−1) + 1, 5·1 − 1].
        let (mut y, mut xhat, mut inv) = ([0.0f32; 2], [0.0f32; 2], [0.0f32]);
        layer_norm(
            1,
            2,
            0.0,
            &[1.0, 3.0],
            &[3.0, 5.0],
            &[1.0, -1.0],
            &mut y,
            &mut xhat,
            &mut inv,
        );
        assert_eq!((y, xhat, inv), ([-2.0, 4.0], [-1.0, 1.0], [1.0]));
        let (rows, n) = (3, 5);
        let (x, gamma, beta) = (rand_vec(rows * n, 700), rand_vec(n, 701), rand_vec(n, 702));
        let (mut y, mut xhat, mut inv) = (nans(rows * n), nans(rows * n), nans(rows));
        layer_norm(rows, n, EPS, &x, &gamma, &beta, &mut y, &mut xhat, &mut inv);
        assert_grad(&y, &naive_ln(rows, n, &x, &gamma, &beta), "y");
    }

    /// J = Σ R⊙layer_norm(x): the backward fed dy = R matches the central differences.
    #[test]
    fn layer_norm_backward_matches_finite_differences() {
        let (rows, n) = (4, 6);
        let (x, gamma, beta) = (rand_vec(rows * n, 800), rand_vec(n, 801), rand_vec(n, 802));
        let r = rand_vec(rows * n, 803);
        let j = |x: &[f64], g: &[f64], b: &[f64]| dot(&r, &naive_ln(rows, n, x, g, b));
        let want_dx = fd_grad(&x, 1e-3, |x| j(x, &gamma, &beta));
        let want_dg = fd_grad(&gamma, 1e-3, |g| j(&x, g, &beta));
        let want_db = fd_grad(&beta, 1e-3, |b| j(&x, &gamma, b));
        let (mut y, mut xhat, mut inv) = (nans(rows * n), nans(rows * n), nans(rows));
        layer_norm(rows, n, EPS, &x, &gamma, &beta, &mut y, &mut xhat, &mut inv);
        let (mut dg, mut db, mut dx) = (nans(n), nans(n), nans(rows * n));
        layer_norm_backward(
            rows,
            n,
            &r,
            &xhat,
            &gamma,
            &inv,
            &mut dg,
            &mut db,
            Overwrite,
            Some(&mut dx),
            Overwrite,
        );
        assert_grad(&dx, &want_dx, "dx");
        assert_grad(&dg, &want_dg, "dgamma");
        assert_grad(&db, &want_db, "dbeta");
        layer_norm_backward(
            rows,
            n,
            &r,
            &xhat,
            &gamma,
            &inv,
            &mut dg,
            &mut db,
            Add,
            Some(&mut dx),
            Add,
        );
        let twice = |v: &[f64]| v.iter().map(|v| 2.0 * v).collect::<Vec<_>>();
        assert_grad(&dx, &twice(&want_dx), "dx accumulated");
        assert_grad(&dg, &twice(&want_dg), "dgamma accumulated");
        assert_grad(&db, &twice(&want_db), "dbeta accumulated");
    }
}
