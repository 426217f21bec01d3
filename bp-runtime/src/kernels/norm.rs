//! Batch normalization (PyTorch's `nn.BatchNorm1d` on `[B, F]` and `nn.BatchNorm2d` on
//! `[B, C, H, W]`) and, in the submodule `layer`, layer normalization over the last
//! dimension (`nn.LayerNorm(n)`), both with an elementwise affine `gamma`, `beta`.
//!
//! Batch norm sees its input as `[batch, c, inner]`: `inner = H·W` for images and 1 for
//! `[B, F]` (then `c = F`). Its statistics are per channel over the `N = batch·inner`
//! values `x[b, c, i]`. Means and variances are accumulated in f64 whatever `T` is.

mod layer;

pub use layer::{layer_norm, layer_norm_backward};

use super::{put, split, Accumulate, Mode};
use crate::threads::MAX_CHUNKS;
use crate::Float;
use std::ops::Range;

/// `Σ f(a[i], b[i])` in f64 over eight interleaved accumulators, so the loop vectorizes
/// (one running sum would wait on each addition), summed pairwise at the end.
#[inline]
fn sum_lanes<T: Float>(a: &[T], b: &[T], f: impl Fn(T, T) -> f64) -> f64 {
    let mut acc = [0.0f64; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(&a, &b)| f(a, b))
        .sum();
    for (a, b) in ac.zip(bc) {
        for ((s, &a), &b) in acc.iter_mut().zip(a).zip(b) {
            *s += f(a, b);
        }
    }
    let [a0, a1, a2, a3, a4, a5, a6, a7] = acc;
    ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)) + tail
}

/// Mean and biased variance (two passes, in f64) of the values of channel `ch` of `x`
/// seen as `[batch, c, inner]`.
fn channel_stats<T: Float>(batch: usize, c: usize, inner: usize, ch: usize, x: &[T]) -> (f64, f64) {
    let n = (batch * inner).max(1) as f64;
    let rows = || (0..batch).map(move |b| &x[(b * c + ch) * inner..][..inner]);
    let mean = rows()
        .map(|r| sum_lanes(r, r, |v, _| v.to_f64()))
        .sum::<f64>()
        / n;
    let var = rows()
        .map(|r| sum_lanes(r, r, |v, _| (v.to_f64() - mean).powi(2)))
        .sum::<f64>()
        / n;
    (mean, var)
}

/// `xhat = (x − mean)·inv_std` and `y = gamma·xhat + beta` over `len` values.
#[inline]
fn normalize<T: Float>(
    x: &[T],
    mean: T,
    inv_std: T,
    gamma: T,
    beta: T,
    y: &mut [T],
    xhat: &mut [T],
) {
    for ((&x, y), xh) in x.iter().zip(y.iter_mut()).zip(xhat.iter_mut()) {
        let v = (x - mean) * inv_std;
        *xh = v;
        *y = gamma * v + beta;
    }
}

/// Batch norm in training mode: for each channel `c` of `x` `[batch, c, inner]`,
/// `mean[c]` and the biased `var[c]` over its `N = batch·inner` values,
/// `inv_std[c] = 1/√(var[c] + eps)`, `xhat = (x − mean[c])·inv_std[c]` and
/// `y = gamma[c]·xhat + beta[c]`. Writes `y`, `xhat` (`[batch, c, inner]`) and `mean`,
/// `var`, `inv_std` (`[c]`), all overwritten: `mean` and `var` feed
/// [`batch_norm_update_running`], `xhat` and `inv_std` feed [`batch_norm_backward`].
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_train<T: Float>(
    batch: usize,
    c: usize,
    inner: usize,
    eps: f64,
    x: &[T],
    gamma: &[T],
    beta: &[T],
    y: &mut [T],
    xhat: &mut [T],
    mean: &mut [T],
    var: &mut [T],
    inv_std: &mut [T],
) {
    let len = batch * c * inner;
    debug_assert_eq!(x.len(), len, "batch_norm_train: x");
    debug_assert_eq!(y.len(), len, "batch_norm_train: y");
    debug_assert_eq!(xhat.len(), len, "batch_norm_train: xhat");
    for (s, name) in [
        (gamma, "gamma"),
        (beta, "beta"),
        (mean, "mean"),
        (var, "var"),
    ] {
        debug_assert_eq!(s.len(), c, "batch_norm_train: {name}");
    }
    debug_assert_eq!(inv_std.len(), c, "batch_norm_train: inv_std");
    let threads = super::threads();
    // The statistics, split over channels (each part writes its channels' entries).
    let parts = split::parts_for(threads, c, len, MAX_CHUNKS);
    let stats = |chs: Range<usize>, [mean, var, inv_std]: [&mut [T]; 3]| {
        for (k, ch) in chs.enumerate() {
            let (m, v) = channel_stats(batch, c, inner, ch, x);
            let inv = T::from_f64(1.0 / (v + eps).sqrt());
            (mean[k], var[k], inv_std[k]) = (T::from_f64(m), T::from_f64(v), inv);
        }
    };
    if parts == 1 {
        stats(0..c, [&mut *mean, var, &mut *inv_std]);
    } else {
        let [ms, vs, is] =
            [&mut *mean, var, &mut *inv_std].map(|v| split::cut_samples(v, 1, c, parts));
        let mut items = zip3(ms, vs, is);
        split::run_parts(&mut items, parts, &|p, [m, v, i]| {
            stats(split::samples(c, parts, p), [m, v, i])
        });
    }
    // The normalization, split over the batch.
    let (mean, inv_std) = (&*mean, &*inv_std);
    let norm = |[x, _]: [&[T]; 2], y: &mut [T], xhat: &mut [T]| {
        let rows = x
            .chunks_exact(inner)
            .zip(y.chunks_exact_mut(inner))
            .zip(xhat.chunks_exact_mut(inner));
        for (r, ((x, y), xh)) in rows.enumerate() {
            let ch = r % c;
            normalize(x, mean[ch], inv_std[ch], gamma[ch], beta[ch], y, xh);
        }
    };
    by_samples(threads, batch, c * inner, [x, x], [y, xhat], &norm);
}

/// The three cuts zipped into one item per part.
fn zip3<'a, T>(
    a: [&'a mut [T]; MAX_CHUNKS],
    b: [&'a mut [T]; MAX_CHUNKS],
    c: [&'a mut [T]; MAX_CHUNKS],
) -> [[&'a mut [T]; 3]; MAX_CHUNKS] {
    let (mut b, mut c) = (b.into_iter(), c.into_iter());
    a.map(|a| {
        [
            a,
            b.next().unwrap_or_default(),
            c.next().unwrap_or_default(),
        ]
    })
}

/// The per-run body of [`by_samples`]: `f([in0, in1], out0, out1)`.
type SampleRun<'f, T> = dyn Fn([&[T]; 2], &mut [T], &mut [T]) + Sync + 'f;

/// `f([in0, in1], out0, out1)` over runs of samples of `batch` samples of `per` elements
/// each (every buffer `[batch, per]`, or an output empty), split over up to `threads`
/// threads.
fn by_samples<T: Float>(
    threads: usize,
    batch: usize,
    per: usize,
    [x0, x1]: [&[T]; 2],
    [a, b]: [&mut [T]; 2],
    f: &SampleRun<'_, T>,
) {
    let parts = split::parts_for(threads, batch, batch * per, MAX_CHUNKS);
    if parts == 1 {
        return f([x0, x1], a, b);
    }
    let (as_, mut bs) = (
        split::cut_samples(a, per, batch, parts),
        split::cut_samples(b, per, batch, parts).into_iter(),
    );
    let mut items = as_.map(|a| [a, bs.next().unwrap_or_default()]);
    split::run_parts(&mut items, parts, &|p, [a, b]| {
        let s = split::samples(batch, parts, p);
        let r = s.start * per..s.end * per;
        f([&x0[r.clone()], &x1[r]], a, b)
    });
}

/// Batch norm in evaluation mode: `inv_std[c] = 1/√(running_var[c] + eps)`,
/// `xhat = (x − running_mean[c])·inv_std[c]`, `y = gamma[c]·xhat + beta[c]` for `x`
/// `[batch, c, inner]`. Writes `y`, `xhat` and `inv_std` (overwritten) for
/// [`batch_norm_backward`] with `training = false`.
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_eval<T: Float>(
    batch: usize,
    c: usize,
    inner: usize,
    eps: f64,
    x: &[T],
    gamma: &[T],
    beta: &[T],
    running_mean: &[T],
    running_var: &[T],
    y: &mut [T],
    xhat: &mut [T],
    inv_std: &mut [T],
) {
    let len = batch * c * inner;
    debug_assert_eq!(x.len(), len, "batch_norm_eval: x");
    debug_assert_eq!(y.len(), len, "batch_norm_eval: y");
    debug_assert_eq!(xhat.len(), len, "batch_norm_eval: xhat");
    for (s, name) in [
        (gamma, "gamma"),
        (beta, "beta"),
        (running_mean, "running_mean"),
        (running_var, "running_var"),
    ] {
        debug_assert_eq!(s.len(), c, "batch_norm_eval: {name}");
    }
    debug_assert_eq!(inv_std.len(), c, "batch_norm_eval: inv_std");
    for ch in 0..c {
        let inv = T::from_f64(1.0 / (running_var[ch].to_f64() + eps).sqrt());
        inv_std[ch] = inv;
        for b in 0..batch {
            let at = (b * c + ch) * inner;
            let r = at..at + inner;
            let (ys, xs) = (&mut y[r.clone()], &mut xhat[r.clone()]);
            normalize(&x[r], running_mean[ch], inv, gamma[ch], beta[ch], ys, xs);
        }
    }
}

/// The running-statistics update of one training step, PyTorch's:
/// `running_mean = (1 − m)·running_mean + m·mean` and
/// `running_var = (1 − m)·running_var + m·var·n/(n − 1)` (the unbiased batch variance),
/// with `m = momentum`, `n = batch·inner` the number of values per channel, and `mean`,
/// `var` (biased) from [`batch_norm_train`]; then `num_batches_tracked[0] += 1`.
///
/// With `n < 2` the unbiased variance is undefined (PyTorch refuses to train on one
/// value per channel): `running_var` is then left unchanged; the mean and the counter
/// are still updated.
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_update_running<T: Float>(
    c: usize,
    n: usize,
    momentum: f64,
    mean: &[T],
    var: &[T],
    running_mean: &mut [T],
    running_var: &mut [T],
    num_batches_tracked: &mut [T],
) {
    debug_assert_eq!(mean.len(), c, "batch_norm_update_running: mean");
    debug_assert_eq!(var.len(), c, "batch_norm_update_running: var");
    debug_assert_eq!(
        running_mean.len(),
        c,
        "batch_norm_update_running: running_mean"
    );
    debug_assert_eq!(
        running_var.len(),
        c,
        "batch_norm_update_running: running_var"
    );
    debug_assert_eq!(
        num_batches_tracked.len(),
        1,
        "batch_norm_update_running: num_batches_tracked"
    );
    let (keep, m) = (T::from_f64(1.0 - momentum), T::from_f64(momentum));
    for (r, &v) in running_mean[..c].iter_mut().zip(mean) {
        *r = keep * *r + m * v;
    }
    if n >= 2 {
        let unbias = T::from_f64(n as f64 / (n - 1) as f64);
        for (r, &v) in running_var[..c].iter_mut().zip(var) {
            *r = keep * *r + m * (v * unbias);
        }
    }
    num_batches_tracked[0] += T::ONE;
}

/// The backward of batch norm for `dy`, `xhat` `[batch, c, inner]`, with per-channel
/// sums over the `N = batch·inner` values of each channel:
///
/// - `dgamma[c] (+)= Σ dy·xhat`, `dbeta[c] (+)= Σ dy` (overwriting or adding as
///   `acc_params` says);
/// - when `dx` is given (overwriting or adding as `acc_x` says), in
///   [`Mode::Training`] (the statistics depend on `x`)
///   `dx = gamma·inv_std/N · (N·dy − Σdy − xhat·Σ(dy·xhat))`; in [`Mode::Evaluation`]
///   (fixed running statistics) `dx = dy·gamma·inv_std`.
///
/// `inv_std` is the one the matching forward wrote; `means` is scratch of `2·c`
/// elements. With more than one thread ([`threads`](super::threads)) the sums are split
/// over channels and `dx` over the batch; every value is computed in the same order
/// whatever the thread count, so the result is the same.
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward<T: Float>(
    batch: usize,
    c: usize,
    inner: usize,
    mode: Mode,
    dy: &[T],
    xhat: &[T],
    gamma: &[T],
    inv_std: &[T],
    dgamma: &mut [T],
    dbeta: &mut [T],
    acc_params: Accumulate,
    dx: Option<&mut [T]>,
    acc_x: Accumulate,
    means: &mut [T],
) {
    let len = batch * c * inner;
    debug_assert_eq!(dy.len(), len, "batch_norm_backward: dy");
    debug_assert_eq!(xhat.len(), len, "batch_norm_backward: xhat");
    for (s, name) in [(gamma, "gamma"), (inv_std, "inv_std")] {
        debug_assert_eq!(s.len(), c, "batch_norm_backward: {name}");
    }
    debug_assert_eq!(dgamma.len(), c, "batch_norm_backward: dgamma");
    debug_assert_eq!(dbeta.len(), c, "batch_norm_backward: dbeta");
    if let Some(dx) = dx.as_deref() {
        debug_assert_eq!(dx.len(), len, "batch_norm_backward: dx");
    }
    debug_assert_eq!(means.len(), 2 * c, "batch_norm_backward: means");
    let n = (batch * inner).max(1) as f64;
    let threads = super::threads();
    // The sums per channel, split over channels: dgamma, dbeta and the means dx needs.
    let (mean_dy, mean_dyx) = means.split_at_mut(c);
    let sums = |chs: Range<usize>, [dgamma, dbeta, mdy, mdyx]: [&mut [T]; 4]| {
        for (k, ch) in chs.enumerate() {
            let rows = || (0..batch).map(move |b| (b * c + ch) * inner..(b * c + ch + 1) * inner);
            let (mut sdy, mut sdyx) = (0.0f64, 0.0f64);
            for r in rows() {
                let (dy, xh) = (&dy[r.clone()], &xhat[r]);
                sdy += sum_lanes(dy, dy, |g, _| g.to_f64());
                sdyx += sum_lanes(dy, xh, |g, xh| (g * xh).to_f64());
            }
            put(&mut dgamma[k], T::from_f64(sdyx), acc_params);
            put(&mut dbeta[k], T::from_f64(sdy), acc_params);
            (mdy[k], mdyx[k]) = if mode.is_training() {
                (T::from_f64(sdy / n), T::from_f64(sdyx / n))
            } else {
                (T::ZERO, T::ZERO)
            };
        }
    };
    let parts = split::parts_for(threads, c, 2 * len, MAX_CHUNKS);
    if parts == 1 {
        sums(0..c, [dgamma, dbeta, &mut *mean_dy, &mut *mean_dyx]);
    } else {
        let [gs, bs, ms, xs] = [dgamma, dbeta, &mut *mean_dy, &mut *mean_dyx]
            .map(|v| split::cut_samples(v, 1, c, parts));
        let (mut bs, mut ms, mut xs) = (bs.into_iter(), ms.into_iter(), xs.into_iter());
        let mut items = gs.map(|g| {
            let mut next = || bs.next().unwrap_or_default();
            let b = next();
            [
                g,
                b,
                ms.next().unwrap_or_default(),
                xs.next().unwrap_or_default(),
            ]
        });
        split::run_parts(&mut items, parts, &|p, [g, b, m, x]| {
            sums(split::samples(c, parts, p), [g, b, m, x])
        });
    }
    // dx, split over the batch.
    let Some(dx) = dx else {
        return;
    };
    let (mean_dy, mean_dyx) = (&*mean_dy, &*mean_dyx);
    let grad = |[dy, xhat]: [&[T]; 2], dx: &mut [T], _: &mut [T]| {
        let rows = dx
            .chunks_exact_mut(inner)
            .zip(dy.chunks_exact(inner))
            .zip(xhat.chunks_exact(inner));
        for (r, ((dx, dy), xhat)) in rows.enumerate() {
            let ch = r % c;
            let (k, mdy, mdyx) = (gamma[ch] * inv_std[ch], mean_dy[ch], mean_dyx[ch]);
            for ((d, &g), &xh) in dx.iter_mut().zip(dy).zip(xhat) {
                put(d, k * (g - mdy - xh * mdyx), acc_x);
            }
        }
    };
    by_samples(threads, batch, c * inner, [dy, xhat], [dx, &mut []], &grad);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::fd_check::{assert_grad, dot, fd_grad, nans, rand_vec};
    use Accumulate::{Add, Overwrite};

    const EPS: f64 = 1e-5;

    /// Reference batch norm in training mode by direct loops.
    fn naive_bn(
        batch: usize,
        c: usize,
        inner: usize,
        x: &[f64],
        gamma: &[f64],
        beta: &[f64],
    ) -> Vec<f64> {
        let at = |b: usize, ch: usize, i: usize| (b * c + ch) * inner + i;
        let n = (batch * inner) as f64;
        let mut y = vec![0.0; x.len()];
        for ch in 0..c {
            let vals = || (0..batch).flat_map(move |b| (0..inner).map(move |i| at(b, ch, i)));
            let mean = vals().map(|j| x[j]).sum::<f64>() / n;
            let var = vals().map(|j| (x[j] - mean).powi(2)).sum::<f64>() / n;
            for j in vals() {
                y[j] = gamma[ch] * (x[j] - mean) / (var + EPS).sqrt() + beta[ch];
            }
        }
        y
    }

    #[test]
    fn hand_computed_batch_norm_and_running_update() {
        // One feature, batch [1 2 3 4]: mean 2.5, biased var 1.25, unbiased 5/3.
        // y = 2·(x − 2.5)/√1.25 + 1 (eps = 0).
        let x = [1.0, 2.0, 3.0, 4.0];
        let (mut y, mut xhat) = ([0.0f64; 4], [0.0f64; 4]);
        let (mut mean, mut var, mut inv) = ([0.0], [0.0], [0.0]);
        batch_norm_train(
            4,
            1,
            1,
            0.0,
            &x,
            &[2.0],
            &[1.0],
            &mut y,
            &mut xhat,
            &mut mean,
            &mut var,
            &mut inv,
        );
        assert_eq!((mean, var), ([2.5], [1.25]));
        let want: Vec<f64> = x
            .iter()
            .map(|v| 2.0 * (v - 2.5) / 1.25f64.sqrt() + 1.0)
            .collect();
        assert_grad(&y, &want, "y");
        // running_mean = 0.9·0 + 0.1·2.5 = 0.25; running_var = 0.9·1 + 0.1·5/3 = 16/15.
        let (mut rm, mut rv, mut nbt) = ([0.0], [1.0], [0.0]);
        batch_norm_update_running(1, 4, 0.1, &mean, &var, &mut rm, &mut rv, &mut nbt);
        assert_grad(&rm, &[0.25], "running_mean");
        assert_grad(&rv, &[16.0 / 15.0], "running_var");
        assert_eq!(nbt, [1.0]);
        // Two channels, n = 4, momentum 0.3: mean [1 −2], var [2 0.5] on running
        // [0 1], [1 1]: running_mean [0.3, 0.1]; running_var [0.7 + 0.3·8/3,
        // 0.7 + 0.3·2/3] = [1.5, 0.9]; the counter goes on from 1 to 2.
        let (mut rm, mut rv) = ([0.0f32, 1.0], [1.0f32, 1.0]);
        let mut nbt = [1.0f32];
        batch_norm_update_running(
            2,
            4,
            0.3,
            &[1.0, -2.0],
            &[2.0, 0.5],
            &mut rm,
            &mut rv,
            &mut nbt,
        );
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(a, b)| (a - b).abs() < 1e-6);
        assert!(close(&rm, &[0.3, 0.1]), "{rm:?}");
        assert!(close(&rv, &[1.5, 0.9]), "{rv:?}");
        assert_eq!(nbt, [2.0]);
        // n = 1: the mean moves, the variance does not.
        batch_norm_update_running(
            2,
            1,
            0.5,
            &[1.0, 1.0],
            &[0.0, 0.0],
            &mut rm,
            &mut rv,
            &mut nbt,
        );
        assert!(
            close(&rm, &[0.65, 0.55]) && close(&rv, &[1.5, 0.9]),
            "{rm:?} {rv:?}"
        );
        assert_eq!(nbt, [3.0]);
    }

    /// `(batch, c, inner)`: `[F]` features (inner = 1) and `[C, H, W]` images.
    const SHAPES: &[(usize, usize, usize)] = &[(4, 3, 1), (2, 2, 20), (1, 2, 6)];

    #[test]
    fn batch_norm_forward_matches_naive() {
        for (n, &(batch, c, inner)) in SHAPES.iter().enumerate() {
            let s = 500 + 10 * n as u64;
            let (x, gamma, beta) = (
                rand_vec(batch * c * inner, s),
                rand_vec(c, s + 1),
                rand_vec(c, s + 2),
            );
            let len = x.len();
            let (mut y, mut xhat, mut mean, mut var, mut inv) =
                (nans(len), nans(len), nans(c), nans(c), nans(c));
            batch_norm_train(
                batch, c, inner, EPS, &x, &gamma, &beta, &mut y, &mut xhat, &mut mean, &mut var,
                &mut inv,
            );
            assert_grad(&y, &naive_bn(batch, c, inner, &x, &gamma, &beta), "y");
            // Evaluation with the batch's own statistics as running ones gives the same.
            let (mut y2, mut xhat2, mut inv2) = (nans(len), nans(len), nans(c));
            batch_norm_eval(
                batch, c, inner, EPS, &x, &gamma, &beta, &mean, &var, &mut y2, &mut xhat2,
                &mut inv2,
            );
            assert_grad(&y2, &y, "eval y");
            assert_grad(&xhat2, &xhat, "eval xhat");
            assert_grad(&inv2, &inv, "eval inv_std");
        }
    }

    /// J = Σ R⊙batch_norm(x): the backward fed dy = R matches the central differences
    /// with respect to x, gamma and beta, in training mode (statistics of the batch) and
    /// in evaluation mode (fixed running statistics).
    #[test]
    fn batch_norm_backward_matches_finite_differences() {
        for (n, &(batch, c, inner)) in SHAPES.iter().enumerate() {
            let s = 600 + 10 * n as u64;
            let (x, gamma, beta) = (
                rand_vec(batch * c * inner, s),
                rand_vec(c, s + 1),
                rand_vec(c, s + 2),
            );
            let (rm, rv) = (
                rand_vec(c, s + 3),
                rand_vec(c, s + 4)
                    .iter()
                    .map(|v| v + 1.5)
                    .collect::<Vec<_>>(),
            );
            let r = rand_vec(x.len(), s + 5);
            let len = x.len();
            for mode in [Mode::Training, Mode::Evaluation] {
                let forward = |x: &[f64], gamma: &[f64], beta: &[f64]| {
                    let (mut y, mut xhat, mut inv) = (nans(len), nans(len), nans(c));
                    if mode.is_training() {
                        let (mut mean, mut var) = (nans(c), nans(c));
                        batch_norm_train(
                            batch, c, inner, EPS, x, gamma, beta, &mut y, &mut xhat, &mut mean,
                            &mut var, &mut inv,
                        );
                    } else {
                        batch_norm_eval(
                            batch, c, inner, EPS, x, gamma, beta, &rm, &rv, &mut y, &mut xhat,
                            &mut inv,
                        );
                    }
                    (y, xhat, inv)
                };
                let j = |x: &[f64], g: &[f64], b: &[f64]| dot(&r, &forward(x, g, b).0);
                let want_dx = fd_grad(&x, 1e-3, |x| j(x, &gamma, &beta));
                let want_dg = fd_grad(&gamma, 1e-3, |g| j(&x, g, &beta));
                let want_db = fd_grad(&beta, 1e-3, |b| j(&x, &gamma, b));
                let (_, xhat, inv) = forward(&x, &gamma, &beta);
                let (mut dg, mut db, mut dx) = (nans(c), nans(c), nans(len));
                let backward = |dg: &mut [f64], db: &mut [f64], dx: Option<&mut [f64]>, acc| {
                    let (xhat, inv) = (&xhat, &inv);
                    let mut means = nans(2 * c);
                    batch_norm_backward(
                        batch, c, inner, mode, &r, xhat, &gamma, inv, dg, db, acc, dx, acc,
                        &mut means,
                    );
                };
                backward(&mut dg, &mut db, Some(&mut dx), Overwrite);
                let what = if mode.is_training() { "train" } else { "eval" };
                assert_grad(&dx, &want_dx, &format!("{what} dx"));
                assert_grad(&dg, &want_dg, &format!("{what} dgamma"));
                assert_grad(&db, &want_db, &format!("{what} dbeta"));
                backward(&mut dg, &mut db, Some(&mut dx), Add);
                let twice = |v: &[f64]| v.iter().map(|v| 2.0 * v).collect::<Vec<_>>();
                assert_grad(&dx, &twice(&want_dx), "dx accumulated");
                assert_grad(&dg, &twice(&want_dg), "dgamma accumulated");
                assert_grad(&db, &twice(&want_db), "dbeta accumulated");
                backward(&mut dg, &mut db, None, Overwrite);
                assert_grad(&dg, &want_dg, "dgamma without dx");
            }
        }
    }

    /// Batch norm split over 2 and 3 threads (channels for the sums, samples for the
    /// rest) gives bit-for-bit the one-thread result, forward and backward.
    #[test]
    fn split_over_threads_is_bit_for_bit_the_same() {
        use crate::kernels::with_threads;
        let (batch, c, inner) = (5, 6, 1200);
        assert!(batch * c * inner >= crate::kernels::split::SPLIT_THRESHOLD);
        let len = batch * c * inner;
        let (x, gamma, beta, dy) = (
            rand_vec(len, 1),
            rand_vec(c, 2),
            rand_vec(c, 3),
            rand_vec(len, 4),
        );
        let run = |mode: Mode, acc: Accumulate| {
            let (mut y, mut xhat) = (nans(len), nans(len));
            let (mut mean, mut var, mut inv) = (nans(c), nans(c), nans(c));
            batch_norm_train(
                batch, c, inner, EPS, &x, &gamma, &beta, &mut y, &mut xhat, &mut mean, &mut var,
                &mut inv,
            );
            let (mut dg, mut db, mut dx) = (rand_vec(c, 5), rand_vec(c, 6), rand_vec(len, 7));
            let mut means = nans(2 * c);
            batch_norm_backward(
                batch,
                c,
                inner,
                mode,
                &dy,
                &xhat,
                &gamma,
                &inv,
                &mut dg,
                &mut db,
                acc,
                Some(&mut dx),
                acc,
                &mut means,
            );
            (y, xhat, mean, var, inv, dg, db, dx)
        };
        for mode in [Mode::Training, Mode::Evaluation] {
            for acc in [Overwrite, Add] {
                let one = with_threads(1, || run(mode, acc));
                for threads in [2, 3] {
                    assert!(
                        with_threads(threads, || run(mode, acc)) == one,
                        "{threads} threads"
                    );
                }
            }
        }
    }
}
