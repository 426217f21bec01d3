//! 2-D max and average pooling (PyTorch's `max_pool2d` and `avg_pool2d` with a square
//! window, no padding, no dilation, `ceil_mode = false`) and their backward passes.
//!
//! Each of the `batch·C` channel planes `[H, W]` is pooled on its own; window `(oy, ox)`
//! covers rows `oy·s .. oy·s + k` and columns `ox·s .. ox·s + k`.
#![forbid(unsafe_code)]

use super::split::{self, cut_samples, parts_for, run_parts};
use super::{threads, Accumulate};
use crate::threads::MAX_CHUNKS;
use crate::Float;
use std::ops::Range;

/// The work of one part of [`over_samples`]: its samples and its pieces of two outputs.
type PartFn<'f, A, B> = dyn Fn(Range<usize>, &mut [A], &mut [B]) + Sync + 'f;

/// Runs `f(samples, a, b)` over the batch: on the calling thread when the work (`work`
/// elements touched) is below [`split::SPLIT_THRESHOLD`], else split into runs of samples,
/// one per thread, each with its own samples' part of `a` (`per_a` elements a sample)
/// and of `b` (`per_b`). The planes are independent, so the result is the same bits on
/// any number of threads.
fn over_samples<A: Send, B: Send>(
    batch: usize,
    work: usize,
    (a, per_a): (&mut [A], usize),
    (b, per_b): (&mut [B], usize),
    f: &PartFn<'_, A, B>,
) {
    let parts = parts_for(threads(), batch, work, MAX_CHUNKS);
    if parts == 1 {
        return f(0..batch, a, b);
    }
    let (a_cuts, b_cuts) = (
        cut_samples(a, per_a, batch, parts),
        cut_samples(b, per_b, batch, parts),
    );
    let mut items: [_; MAX_CHUNKS] = std::array::from_fn(|_| None);
    for (p, (item, (a, b))) in items
        .iter_mut()
        .zip(a_cuts.into_iter().zip(b_cuts))
        .enumerate()
    {
        *item = Some((split::samples(batch, parts, p), a, b));
    }
    run_parts(&mut items, parts, &|_, item| {
        if let Some((samples, a, b)) = item {
            f(samples.clone(), a, b);
        }
    });
}

/// Geometry of a 2-D pooling: input `[c, h, w]` per sample, window `k × k`, stride
/// `stride`; output `[c, ho, wo]` with `ho = (h − k)/stride + 1` (rounded down),
/// likewise `wo`. Requires `1 ≤ k ≤ min(h, w)` and `stride ≥ 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dGeom {
    /// Channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Window size (the window is `k × k`).
    pub k: usize,
    /// Stride, the same in both directions.
    pub stride: usize,
}

impl Pool2dGeom {
    /// Output height `(h − k)/stride + 1`.
    pub const fn ho(&self) -> usize {
        (self.h - self.k) / self.stride + 1
    }

    /// Output width `(w − k)/stride + 1`.
    pub const fn wo(&self) -> usize {
        (self.w - self.k) / self.stride + 1
    }

    /// `c·ho·wo`: elements of one output sample (and of its `argmax`).
    pub const fn out_len(&self) -> usize {
        self.c * self.ho() * self.wo()
    }
}

/// Whether `v` is NaN, without `Float::is_nan` (NaN is the only value not ordered
/// against itself).
#[inline(always)]
fn is_nan<T: Float>(v: T) -> bool {
    v.partial_cmp(&v).is_none()
}

/// `y[b,c,oy,ox] = max_{i,j<k} x[b,c,oy·s+i, ox·s+j]` for `x` `[batch, C, H, W]` and `y`
/// `[batch, C, ho, wo]` (overwritten).
///
/// `argmax` (same shape as `y`) receives, for each output, the position of the chosen
/// input **within its channel plane**: `iy·W + ix` (PyTorch's `return_indices`
/// encoding). The chosen input is the first maximum in row-major window order, as in
/// PyTorch; a NaN counts as larger than everything (the last NaN of the window wins, as
/// in PyTorch's CPU kernel), so NaN propagates.
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
pub fn max_pool2d<T: Float>(
    g: &Pool2dGeom,
    batch: usize,
    x: &[T],
    y: &mut [T],
    argmax: &mut [u32],
) {
    let hw = g.h * g.w;
    debug_assert_eq!(x.len(), batch * g.c * hw, "max_pool2d: x");
    debug_assert_eq!(y.len(), batch * g.out_len(), "max_pool2d: y");
    debug_assert_eq!(argmax.len(), batch * g.out_len(), "max_pool2d: argmax");
    debug_assert!(
        hw <= u32::MAX as usize,
        "max_pool2d: plane too large for u32 indices"
    );
    if hw == 0 || g.out_len() == 0 {
        return;
    }
    let (xs, ys) = (g.c * hw, g.out_len());
    over_samples(batch, x.len(), (y, ys), (argmax, ys), &|r, y, argmax| {
        max_pool_samples(g, &x[r.start * xs..r.end * xs], y, argmax)
    });
}

/// [`max_pool2d`] of the samples in `x` on the calling thread.
fn max_pool_samples<T: Float>(g: &Pool2dGeom, x: &[T], y: &mut [T], argmax: &mut [u32]) {
    let (hw, p, wo, s, k) = (g.h * g.w, g.ho() * g.wo(), g.wo(), g.stride, g.k);
    let planes = x
        .chunks_exact(hw)
        .zip(y.chunks_exact_mut(p))
        .zip(argmax.chunks_exact_mut(p));
    for ((xp, yp), ap) in planes {
        if k == 2 && s == 2 {
            max_pool_2x2(g, xp, yp, ap);
            continue;
        }
        for (o, (yv, av)) in yp.iter_mut().zip(ap.iter_mut()).enumerate() {
            let base = (o / wo) * s * g.w + (o % wo) * s;
            let (mut best, mut m) = (base, xp[base]);
            for i in 0..k {
                let row = base + i * g.w;
                for (idx, &v) in xp[row..row + k].iter().enumerate() {
                    if v > m || is_nan(v) {
                        (best, m) = (row + idx, v);
                    }
                }
            }
            *yv = m;
            *av = best as u32;
        }
    }
}

/// The 2×2, stride-2 case of one plane (the common one: 28% of a CIFAR step went to the
/// general loop's index arithmetic): two input rows per output row, no division, the
/// same order of comparison (the first maximum, a NaN wins) as the general loop.
fn max_pool_2x2<T: Float>(g: &Pool2dGeom, xp: &[T], yp: &mut [T], ap: &mut [u32]) {
    let (w, wo) = (g.w, g.wo());
    let rows = yp.chunks_exact_mut(wo).zip(ap.chunks_exact_mut(wo));
    for (oy, (yr, ar)) in rows.enumerate() {
        let r0 = 2 * oy * w;
        let (top, bottom) = (&xp[r0..r0 + 2 * wo], &xp[r0 + w..r0 + w + 2 * wo]);
        let pairs = top.chunks_exact(2).zip(bottom.chunks_exact(2));
        for (ox, ((yv, av), (t, b))) in yr.iter_mut().zip(ar.iter_mut()).zip(pairs).enumerate() {
            let at = r0 + 2 * ox;
            let (mut m, mut best) = (t[0], at);
            for (v, i) in [(t[1], at + 1), (b[0], at + w), (b[1], at + w + 1)] {
                if v > m || is_nan(v) {
                    (m, best) = (v, i);
                }
            }
            *yv = m;
            *av = best as u32;
        }
    }
}

/// The backward of [`max_pool2d`]: `dx[b,c,a] (+)= Σ_{outputs o of plane (b,c) with
/// argmax[b,c,o] = a} dy[b,c,o]`, so each residual goes to the input its window chose
/// (overlapping windows add). [`Accumulate::Overwrite`] zeroes `dx` first,
/// [`Accumulate::Add`] adds the residuals to it.
///
/// # Panics
/// If a slice is shorter than its shape or an `argmax` entry is not inside the plane
/// (lengths are checked exactly in debug builds).
pub fn max_pool2d_backward<T: Float>(
    g: &Pool2dGeom,
    batch: usize,
    argmax: &[u32],
    dy: &[T],
    dx: &mut [T],
    accumulate: Accumulate,
) {
    let (hw, p) = (g.h * g.w, g.ho() * g.wo());
    debug_assert_eq!(
        argmax.len(),
        batch * g.out_len(),
        "max_pool2d_backward: argmax"
    );
    debug_assert_eq!(dy.len(), batch * g.out_len(), "max_pool2d_backward: dy");
    debug_assert_eq!(dx.len(), batch * g.c * hw, "max_pool2d_backward: dx");
    if hw == 0 || p == 0 {
        if !accumulate.is_add() {
            dx.fill(T::ZERO);
        }
        return;
    }
    // Each part zeroes its own samples of dx (on one thread, the whole of it).
    let zero = |dx: &mut [T]| {
        if !accumulate.is_add() {
            dx.fill(T::ZERO);
        }
    };
    let (xs, ys) = (g.c * hw, g.out_len());
    let none: &mut [u8] = &mut [];
    over_samples(batch, dx.len(), (dx, xs), (none, 0), &|r, dx, _| {
        zero(dx);
        let range = r.start * ys..r.end * ys;
        let planes = dx
            .chunks_exact_mut(hw)
            .zip(dy[range.clone()].chunks_exact(p))
            .zip(argmax[range].chunks_exact(p));
        for ((dxp, dyp), ap) in planes {
            for (&a, &d) in ap.iter().zip(dyp) {
                dxp[a as usize] += d;
            }
        }
    });
}

/// `y[b,c,oy,ox] = (1/k²)·Σ_{i,j<k} x[b,c,oy·s+i, ox·s+j]` for `x` `[batch, C, H, W]`
/// and `y` `[batch, C, ho, wo]` (overwritten).
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
pub fn avg_pool2d<T: Float>(g: &Pool2dGeom, batch: usize, x: &[T], y: &mut [T]) {
    let (hw, p, k) = (g.h * g.w, g.ho() * g.wo(), g.k);
    debug_assert_eq!(x.len(), batch * g.c * hw, "avg_pool2d: x");
    debug_assert_eq!(y.len(), batch * g.out_len(), "avg_pool2d: y");
    if hw == 0 || p == 0 {
        return;
    }
    let scale = T::ONE / T::from_usize(k * k);
    let xs = g.c * hw;
    let none: &mut [u8] = &mut [];
    over_samples(batch, x.len(), (y, g.out_len()), (none, 0), &|r, y, _| {
        let x = &x[r.start * xs..r.end * xs];
        for (xp, yp) in x.chunks_exact(hw).zip(y.chunks_exact_mut(p)) {
            avg_plane(g, scale, xp, yp);
        }
    });
}

/// One plane of [`avg_pool2d`].
fn avg_plane<T: Float>(g: &Pool2dGeom, scale: T, xp: &[T], yp: &mut [T]) {
    let (wo, s, k) = (g.wo(), g.stride, g.k);
    for (o, yv) in yp.iter_mut().enumerate() {
        let base = (o / wo) * s * g.w + (o % wo) * s;
        let mut sum = T::ZERO;
        for i in 0..k {
            let row = base + i * g.w;
            for &v in &xp[row..row + k] {
                sum += v;
            }
        }
        *yv = sum * scale;
    }
}

/// The backward of [`avg_pool2d`]: `dx[b,c,iy,ix] (+)= (1/k²)·Σ_{windows (oy,ox)
/// covering (iy,ix)} dy[b,c,oy,ox]` (overlapping windows add; inputs no window covers
/// get 0). [`Accumulate::Overwrite`] zeroes `dx` first, [`Accumulate::Add`] adds to it.
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
pub fn avg_pool2d_backward<T: Float>(
    g: &Pool2dGeom,
    batch: usize,
    dy: &[T],
    dx: &mut [T],
    accumulate: Accumulate,
) {
    let (hw, p, k) = (g.h * g.w, g.ho() * g.wo(), g.k);
    debug_assert_eq!(dy.len(), batch * g.out_len(), "avg_pool2d_backward: dy");
    debug_assert_eq!(dx.len(), batch * g.c * hw, "avg_pool2d_backward: dx");
    if hw == 0 || p == 0 {
        if !accumulate.is_add() {
            dx.fill(T::ZERO);
        }
        return;
    }
    // Each part zeroes its own samples of dx (on one thread, the whole of it).
    let zero = |dx: &mut [T]| {
        if !accumulate.is_add() {
            dx.fill(T::ZERO);
        }
    };
    let scale = T::ONE / T::from_usize(k * k);
    let (xs, ys) = (g.c * hw, g.out_len());
    let none: &mut [u8] = &mut [];
    over_samples(batch, dx.len(), (dx, xs), (none, 0), &|r, dx, _| {
        zero(dx);
        let dy = &dy[r.start * ys..r.end * ys];
        for (dxp, dyp) in dx.chunks_exact_mut(hw).zip(dy.chunks_exact(p)) {
            avg_plane_backward(g, scale, dyp, dxp);
        }
    });
}

/// One plane of [`avg_pool2d_backward`].
fn avg_plane_backward<T: Float>(g: &Pool2dGeom, scale: T, dyp: &[T], dxp: &mut [T]) {
    let (wo, s, k) = (g.wo(), g.stride, g.k);
    for (o, &d) in dyp.iter().enumerate() {
        let base = (o / wo) * s * g.w + (o % wo) * s;
        let d = d * scale;
        for i in 0..k {
            let row = base + i * g.w;
            for v in &mut dxp[row..row + k] {
                *v += d;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::fd_check::{assert_grad, dot, fd_grad, nans, rand_vec};
    use Accumulate::{Add, Overwrite};

    /// Non-overlapping (k = s), overlapping (s < k), gapped (s > k) and rounded-down
    /// geometries.
    const GEOMS: &[Pool2dGeom] = &[
        Pool2dGeom {
            c: 2,
            h: 4,
            w: 6,
            k: 2,
            stride: 2,
        },
        // The 2×2 fast path with odd sizes (the last row and column are dropped).
        Pool2dGeom {
            c: 3,
            h: 5,
            w: 7,
            k: 2,
            stride: 2,
        },
        Pool2dGeom {
            c: 2,
            h: 5,
            w: 4,
            k: 3,
            stride: 1,
        },
        Pool2dGeom {
            c: 2,
            h: 5,
            w: 5,
            k: 3,
            stride: 2,
        },
        Pool2dGeom {
            c: 1,
            h: 7,
            w: 5,
            k: 2,
            stride: 3,
        },
        Pool2dGeom {
            c: 2,
            h: 5,
            w: 4,
            k: 2,
            stride: 2,
        },
    ];

    /// Reference pooling by direct loops: max (first maximum) or mean of each window.
    fn naive(g: &Pool2dGeom, batch: usize, x: &[f64], max: bool) -> (Vec<f64>, Vec<u32>) {
        let (ho, wo) = (g.ho(), g.wo());
        let (mut y, mut a) = (vec![], vec![]);
        for plane in 0..batch * g.c {
            for oy in 0..ho {
                for ox in 0..wo {
                    let (mut best, mut m, mut sum) = (0, f64::NEG_INFINITY, 0.0);
                    for i in 0..g.k {
                        for j in 0..g.k {
                            let at = (oy * g.stride + i) * g.w + ox * g.stride + j;
                            let v = x[plane * g.h * g.w + at];
                            sum += v;
                            if v > m {
                                (best, m) = (at, v);
                            }
                        }
                    }
                    y.push(if max { m } else { sum / (g.k * g.k) as f64 });
                    a.push(best as u32);
                }
            }
        }
        (y, a)
    }

    #[test]
    fn hand_computed_with_ties() {
        // Plane [[1 5 5 0] [5 2 0 0] [3 3 -1 -1] [3 3 -1 -2]], 2×2 windows, stride 2:
        // maxima 5 (first at index 1), 5 (at 2), 3 (at 8), -1 (at 10); means 13/4,
        // 5/4, 3, -5/4.
        let g = Pool2dGeom {
            c: 1,
            h: 4,
            w: 4,
            k: 2,
            stride: 2,
        };
        let x = [
            1.0, 5.0, 5.0, 0.0, 5.0, 2.0, 0.0, 0.0, 3.0, 3.0, -1.0, -1.0, 3.0, 3.0, -1.0, -2.0,
        ];
        let (mut y, mut a) = ([0.0f32; 4], [0u32; 4]);
        max_pool2d(&g, 1, &x.map(|v| v as f32), &mut y, &mut a);
        assert_eq!((y, a), ([5.0, 5.0, 3.0, -1.0], [1, 2, 8, 10]));
        let mut dx = [9.0f32; 16];
        max_pool2d_backward(&g, 1, &a, &[1.0, 2.0, 3.0, 4.0], &mut dx, Overwrite);
        let mut want = [0.0; 16];
        (want[1], want[2], want[8], want[10]) = (1.0, 2.0, 3.0, 4.0);
        assert_eq!(dx, want);
        avg_pool2d(&g, 1, &x.map(|v| v as f32), &mut y);
        assert_eq!(y, [3.25, 1.25, 3.0, -1.25]);
        // Overlapping windows (k = 2, stride 1) on [[0 1] [3 2] [3 0]]: both windows
        // choose the 3 at index 2 (for the second, the first of the tied 3s), so that
        // input gets both residuals, added to what dx held.
        let g = Pool2dGeom {
            c: 1,
            h: 3,
            w: 2,
            k: 2,
            stride: 1,
        };
        let (mut y, mut a) = ([0.0f64; 2], [0u32; 2]);
        max_pool2d(&g, 1, &[0.0, 1.0, 3.0, 2.0, 3.0, 0.0], &mut y, &mut a);
        assert_eq!((y, a), ([3.0, 3.0], [2, 2]));
        let mut dx = [1.0f64; 6];
        max_pool2d_backward(&g, 1, &a, &[10.0, 20.0], &mut dx, Add);
        assert_eq!(dx, [1.0, 1.0, 31.0, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn nan_propagates() {
        let g = Pool2dGeom {
            c: 1,
            h: 2,
            w: 2,
            k: 2,
            stride: 2,
        };
        let (mut y, mut a) = ([0.0f64], [0u32]);
        max_pool2d(&g, 1, &[1.0, f64::NAN, 3.0, 2.0], &mut y, &mut a);
        assert!(y[0].is_nan());
        assert_eq!(a, [1]);
    }

    #[test]
    fn forward_matches_naive() {
        for (n, g) in GEOMS.iter().enumerate() {
            let batch = 2;
            let x = rand_vec(batch * g.c * g.h * g.w, 200 + n as u64);
            let (mut y, mut a) = (
                nans(batch * g.out_len()),
                vec![u32::MAX; batch * g.out_len()],
            );
            max_pool2d(g, batch, &x, &mut y, &mut a);
            let (want_y, want_a) = naive(g, batch, &x, true);
            assert_eq!((y.clone(), a), (want_y, want_a));
            avg_pool2d(g, batch, &x, &mut y);
            assert_grad(&y, &naive(g, batch, &x, false).0, "avg y");
        }
    }

    /// J = Σ R⊙pool(x): both backward passes fed dy = R equal the central differences
    /// of J (max pooling is piecewise linear; the random inputs have no ties, which the
    /// hand-computed test covers), overwriting and then accumulating.
    #[test]
    fn backward_matches_finite_differences() {
        for (n, g) in GEOMS.iter().enumerate() {
            let batch = 2;
            let x = rand_vec(batch * g.c * g.h * g.w, 300 + n as u64);
            let r = rand_vec(batch * g.out_len(), 400 + n as u64);
            let max_j = |x: &[f64]| dot(&r, &naive(g, batch, x, true).0);
            let avg_j = |x: &[f64]| dot(&r, &naive(g, batch, x, false).0);
            let (want_max, want_avg) = (fd_grad(&x, 1e-6, max_j), fd_grad(&x, 1e-3, avg_j));
            let (mut y, mut a) = (nans(batch * g.out_len()), vec![0; batch * g.out_len()]);
            max_pool2d(g, batch, &x, &mut y, &mut a);
            let mut dx = nans(x.len());
            max_pool2d_backward(g, batch, &a, &r, &mut dx, Overwrite);
            assert_grad(&dx, &want_max, "max dx");
            let mut dx2 = nans(x.len());
            avg_pool2d_backward(g, batch, &r, &mut dx2, Overwrite);
            assert_grad(&dx2, &want_avg, "avg dx");
            // Accumulating each into the other's result gives the sum.
            let sum: Vec<f64> = want_max.iter().zip(&want_avg).map(|(a, b)| a + b).collect();
            max_pool2d_backward(g, batch, &a, &r, &mut dx2, Add);
            avg_pool2d_backward(g, batch, &r, &mut dx, Add);
            assert_grad(&dx, &sum, "max then avg");
            assert_grad(&dx2, &sum, "avg then max");
        }
    }

    /// Pooling split over 2 and 3 threads (runs of samples) gives bit-for-bit the
    /// one-thread result, forward and backward, max and average, overwriting and adding.
    #[test]
    fn split_over_threads_is_bit_for_bit_the_same() {
        use crate::kernels::with_threads;
        let g = Pool2dGeom {
            c: 3,
            h: 24,
            w: 20,
            k: 3,
            stride: 2,
        };
        let batch = 23;
        let len = batch * g.c * g.h * g.w;
        assert!(len >= crate::kernels::split::SPLIT_THRESHOLD);
        let (x, dy) = (rand_vec(len, 1), rand_vec(batch * g.out_len(), 2));
        let run = |acc: Accumulate| {
            let (mut y, mut idx) = (nans(batch * g.out_len()), vec![0u32; batch * g.out_len()]);
            max_pool2d(&g, batch, &x, &mut y, &mut idx);
            let mut dx = rand_vec(len, 3);
            max_pool2d_backward(&g, batch, &idx, &dy, &mut dx, acc);
            let mut ya = nans(batch * g.out_len());
            avg_pool2d(&g, batch, &x, &mut ya);
            let mut dxa = rand_vec(len, 4);
            avg_pool2d_backward(&g, batch, &dy, &mut dxa, acc);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
            (bits(&y), idx, bits(&dx), bits(&ya), bits(&dxa))
        };
        for acc in [Overwrite, Add] {
            let one = with_threads(1, || run(acc));
            for threads in [2, 3] {
                assert!(
                    with_threads(threads, || run(acc)) == one,
                    "{threads} threads"
                );
            }
        }
    }
}
