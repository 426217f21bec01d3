//! The dense layer for small sizes known when the network is compiled: three of the
//! functions of `linear.rs` (the forward product, the input gradient and the weight
//! gradient), with the input and output widths as const parameters, so
//! every loop over them has a constant bound and the compiler unrolls and vectorizes it
//! for exactly that size. `network!` emits these when `inp·out ≤` [`FIXED_MAX`]; for
//! such layers a GEMM's blocking and packing cost more than the multiply-adds (a 2→8
//! layer does 16 of them per row).
//!
//! Each function is compiled for AVX-512, AVX2+FMA and the baseline target, and the best
//! the CPU runs is picked at run time (as the GEMM's micro-kernels are). The one `unsafe`
//! is that call of a `#[target_feature]` function after the CPU check; the bodies
//! themselves contain no `unsafe` and index with bounds checks, so a wrong length
//! panics. The safe twin of each is its body with the same fused or separate
//! multiply-add, compiled for the baseline target: the tests require the same bits from
//! both on random row counts, data and slice tails, and compare each with the general
//! kernels.

use super::super::packed::{best_isa, Isa};
use super::super::Accumulate;
use crate::Float;

/// The largest `inp·out` for which `network!` emits the fixed-size kernels (a stack copy
/// of Wᵀ of this many elements is the largest temporary).
pub const FIXED_MAX: usize = 2048;

/// `a·b + c`, fused when the build has FMA.
#[inline(always)]
fn madd<T: Float, const FMA: bool>(a: T, b: T, c: T) -> T {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// Defines `pub fn $name<T, INP, OUT>(args)` that runs `$body::<T, INP, OUT, FMA>(args)`
/// compiled for the best instruction set the CPU has.
macro_rules! multiversion {
    ($(#[$m:meta])* fn $name:ident($($arg:ident: $ty:ty),*) => $body:ident) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        pub fn $name<T: Float, const INP: usize, const OUT: usize>($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn v4<T: Float, const INP: usize, const OUT: usize>($($arg: $ty),*) {
                    $body::<T, INP, OUT, true>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn v3<T: Float, const INP: usize, const OUT: usize>($($arg: $ty),*) {
                    $body::<T, INP, OUT, true>($($arg),*)
                }
                match best_isa() {
                    // SAFETY: best_isa reports Avx512 only when the CPU has avx512f, avx2
                    // and fma, which is all v4 enables.
                    Isa::Avx512 => return unsafe { v4::<T, INP, OUT>($($arg),*) },
                    // SAFETY: as above, with avx2 and fma.
                    Isa::Avx2 => return unsafe { v3::<T, INP, OUT>($($arg),*) },
                    Isa::Baseline => {}
                }
            }
            $body::<T, INP, OUT, false>($($arg),*)
        }
    };
}

multiversion! {
    /// [`linear`](super::linear) with `inp = INP`, `out = OUT` fixed: `y = x·Wᵀ (+ b)`.
    ///
    /// # Panics
    /// If a slice is shorter than its shape.
    fn linear_fixed(rows: usize, x: &[T], w: &[T], b: Option<&[T]>, y: &mut [T]) => forward
}

multiversion! {
    /// [`linear_backward_input`](super::linear_backward_input) with fixed sizes:
    /// `dx (+)= dy·W`.
    ///
    /// # Panics
    /// If a slice is shorter than its shape.
    fn linear_backward_input_fixed(rows: usize, dy: &[T], w: &[T], dx: &mut [T], accumulate: Accumulate) => input
}

multiversion! {
    /// [`linear_backward_weight`](super::linear_backward_weight) with fixed sizes:
    /// `dW (+)= dyᵀ·x`.
    ///
    /// # Panics
    /// If a slice is shorter than its shape.
    fn linear_backward_weight_fixed(rows: usize, dy: &[T], x: &[T], dw: &mut [T], accumulate: Accumulate) => weight
}

/// The `rows` leading `[N]` rows of `s`.
#[inline(always)]
fn rows_of<'a, T, const N: usize>(s: &'a [T], rows: usize, what: &str) -> &'a [[T; N]] {
    let (chunks, _) = s.as_chunks::<N>();
    assert!(chunks.len() >= rows, "{what}: too short");
    &chunks[..rows]
}

#[inline(always)]
fn rows_of_mut<'a, T, const N: usize>(s: &'a mut [T], rows: usize, what: &str) -> &'a mut [[T; N]] {
    let (chunks, _) = s.as_chunks_mut::<N>();
    assert!(chunks.len() >= rows, "{what}: too short");
    &mut chunks[..rows]
}

#[inline(always)]
fn forward<T: Float, const INP: usize, const OUT: usize, const FMA: bool>(
    rows: usize,
    x: &[T],
    w: &[T],
    b: Option<&[T]>,
    y: &mut [T],
) {
    let xs = rows_of::<T, INP>(x, rows, "linear_fixed: x");
    let ys = rows_of_mut::<T, OUT>(y, rows, "linear_fixed: y");
    let ws = rows_of::<T, INP>(w, OUT, "linear_fixed: w");
    if rows < FEW_ROWS {
        // A few rows (inference at batch 1): one dot product per output, read from W's
        // rows as stored; transposing W below would cost more than the rows' products.
        for (xr, yr) in xs.iter().zip(ys) {
            for (o, (y, wr)) in yr.iter_mut().zip(ws).enumerate() {
                let bo = match b {
                    Some(b) => b[o],
                    None => T::ZERO,
                };
                *y = bo + dot::<T, INP, FMA>(xr, wr);
            }
        }
        return;
    }
    // Wᵀ, so that the inner loop runs along a contiguous output row.
    let mut wt = [[T::ZERO; OUT]; INP];
    for (o, wr) in ws.iter().enumerate() {
        for (col, &v) in wt.iter_mut().zip(wr) {
            col[o] = v;
        }
    }
    let bias: [T; OUT] = match b {
        Some(b) => *rows_of::<T, OUT>(b, 1, "linear_fixed: b")
            .first()
            .expect("one row"),
        None => [T::ZERO; OUT],
    };
    // Four rows at a time: four independent chains of multiply-adds per output vector
    // (one row alone is a chain that waits on the FMA latency).
    let (xb, xt) = xs.as_chunks::<4>();
    let (yb, yt) = ys.as_chunks_mut::<4>();
    for (x4, y4) in xb.iter().zip(yb) {
        let mut acc = [bias; 4];
        for i in 0..INP {
            for (a, xr) in acc.iter_mut().zip(x4) {
                let xi = xr[i];
                for (a, &wv) in a.iter_mut().zip(&wt[i]) {
                    *a = madd::<T, FMA>(xi, wv, *a);
                }
            }
        }
        *y4 = acc;
    }
    for (xr, yr) in xt.iter().zip(yt) {
        let mut acc = bias;
        for (&xi, wc) in xr.iter().zip(&wt) {
            for (a, &wv) in acc.iter_mut().zip(wc) {
                *a = madd::<T, FMA>(xi, wv, *a);
            }
        }
        *yr = acc;
    }
}

/// Below this many rows the forward takes dot products along W's rows; from it on, it
/// transposes W (`INP·OUT` scalar moves) and runs along output rows. At 128 → 10 and one
/// row the transpose was 11% of an MLP's inference (0.65 of 5.8 µs).
const FEW_ROWS: usize = 8;

/// `x · w` over `N` elements: sixteen lanes of partial sums, added pairwise, then the
/// last `N mod 16` terms.
#[inline(always)]
fn dot<T: Float, const N: usize, const FMA: bool>(x: &[T; N], w: &[T; N]) -> T {
    const L: usize = 16;
    let (xc, xt) = x.as_chunks::<L>();
    let (wc, wt) = w.as_chunks::<L>();
    let mut acc = [T::ZERO; L];
    for (xv, wv) in xc.iter().zip(wc) {
        for l in 0..L {
            acc[l] = madd::<T, FMA>(xv[l], wv[l], acc[l]);
        }
    }
    let mut half = L / 2;
    while half > 0 {
        for l in 0..half {
            acc[l] += acc[l + half];
        }
        half /= 2;
    }
    let mut s = acc[0];
    for (&xv, &wv) in xt.iter().zip(wt) {
        s = madd::<T, FMA>(xv, wv, s);
    }
    s
}

#[inline(always)]
fn input<T: Float, const INP: usize, const OUT: usize, const FMA: bool>(
    rows: usize,
    dy: &[T],
    w: &[T],
    dx: &mut [T],
    accumulate: Accumulate,
) {
    let dys = rows_of::<T, OUT>(dy, rows, "linear_backward_input_fixed: dy");
    let dxs = rows_of_mut::<T, INP>(dx, rows, "linear_backward_input_fixed: dx");
    let ws = rows_of::<T, INP>(w, OUT, "linear_backward_input_fixed: w");
    for (dyr, dxr) in dys.iter().zip(dxs) {
        let mut acc = if accumulate.is_add() {
            *dxr
        } else {
            [T::ZERO; INP]
        };
        for (&d, wr) in dyr.iter().zip(ws) {
            for (a, &wv) in acc.iter_mut().zip(wr) {
                *a = madd::<T, FMA>(d, wv, *a);
            }
        }
        *dxr = acc;
    }
}

#[inline(always)]
fn weight<T: Float, const INP: usize, const OUT: usize, const FMA: bool>(
    rows: usize,
    dy: &[T],
    x: &[T],
    dw: &mut [T],
    accumulate: Accumulate,
) {
    let dys = rows_of::<T, OUT>(dy, rows, "linear_backward_weight_fixed: dy");
    let xs = rows_of::<T, INP>(x, rows, "linear_backward_weight_fixed: x");
    let dws = rows_of_mut::<T, INP>(dw, OUT, "linear_backward_weight_fixed: dw");
    // Four outputs at a time, sharing each load of an input row.
    let (wb, wt) = dws.as_chunks_mut::<4>();
    for (ob, dw4) in wb.iter_mut().enumerate() {
        let mut acc = if accumulate.is_add() {
            *dw4
        } else {
            [[T::ZERO; INP]; 4]
        };
        for (dyr, xr) in dys.iter().zip(xs) {
            for (k, a) in acc.iter_mut().enumerate() {
                let d = dyr[ob * 4 + k];
                for (a, &xv) in a.iter_mut().zip(xr) {
                    *a = madd::<T, FMA>(d, xv, *a);
                }
            }
        }
        *dw4 = acc;
    }
    let o0 = wb.len() * 4;
    for (k, dwr) in wt.iter_mut().enumerate() {
        let mut acc = if accumulate.is_add() {
            *dwr
        } else {
            [T::ZERO; INP]
        };
        for (dyr, xr) in dys.iter().zip(xs) {
            let d = dyr[o0 + k];
            for (a, &xv) in acc.iter_mut().zip(xr) {
                *a = madd::<T, FMA>(d, xv, *a);
            }
        }
        *dwr = acc;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{linear, linear_backward_input, linear_backward_weight};
    use proptest::prelude::*;
    use Accumulate::{Add, Overwrite};

    fn data(n: usize, seed: u64) -> Vec<f64> {
        let mut r = crate::rng::Rng::new(seed);
        (0..n).map(|_| r.uniform(-1.0, 1.0)).collect()
    }

    fn close(a: &[f64], b: &[f64]) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-12 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    fn check<const INP: usize, const OUT: usize>(rows: usize) {
        let (x, w, b) = (data(rows * INP, 1), data(OUT * INP, 2), data(OUT, 3));
        let (mut y1, mut y2) = (vec![f64::NAN; rows * OUT], vec![f64::NAN; rows * OUT]);
        linear(rows, INP, OUT, &x, &w, Some(&b), &mut y1);
        linear_fixed::<f64, INP, OUT>(rows, &x, &w, Some(&b), &mut y2);
        close(&y2, &y1);
        linear(rows, INP, OUT, &x, &w, None, &mut y1);
        linear_fixed::<f64, INP, OUT>(rows, &x, &w, None, &mut y2);
        close(&y2, &y1);
        let dy = data(rows * OUT, 4);
        for acc in [Overwrite, Add] {
            let (mut d1, mut d2) = (data(rows * INP, 5), data(rows * INP, 5));
            linear_backward_input(rows, INP, OUT, &dy, &w, &mut d1, acc);
            linear_backward_input_fixed::<f64, INP, OUT>(rows, &dy, &w, &mut d2, acc);
            close(&d2, &d1);
            let (mut g1, mut g2) = (data(OUT * INP, 6), data(OUT * INP, 6));
            linear_backward_weight(rows, INP, OUT, &dy, &x, &mut g1, acc);
            linear_backward_weight_fixed::<f64, INP, OUT>(rows, &dy, &x, &mut g2, acc);
            close(&g2, &g1);
        }
    }

    #[test]
    fn fixed_kernels_match_the_general_ones() {
        for rows in [0, 1, 3, 32] {
            check::<2, 8>(rows);
            check::<8, 1>(rows);
            check::<64, 32>(rows);
            check::<32, 10>(rows);
            check::<1, 1>(rows);
            check::<7, 13>(rows);
        }
    }

    /// Whether the kernels `best_isa` picks fuse their multiply-adds; their safe twins are
    /// the bodies with the same choice.
    fn fma() -> bool {
        best_isa() != Isa::Baseline
    }

    /// `v` in f32 or f64, with `extra` values past the end that a kernel must not touch.
    fn values<T: Float>(n: usize, extra: usize, seed: u64) -> Vec<T> {
        data(n + extra, seed).into_iter().map(T::from_f64).collect()
    }

    fn same_bits<T: Float>(what: &str, got: &[T], twin: &[T]) -> Result<(), TestCaseError> {
        let p = got
            .iter()
            .zip(twin)
            .position(|(g, t)| g.to_f64().to_bits() != t.to_f64().to_bits());
        match p {
            Some(p) => Err(TestCaseError::fail(format!(
                "{what}[{p}]: {} vs the twin's {}",
                got[p].to_f64(),
                twin[p].to_f64()
            ))),
            None => Ok(()),
        }
    }

    /// The three dispatching kernels against their safe twins, bit for bit.
    fn twins<T: Float, const INP: usize, const OUT: usize>(
        rows: usize,
        bias: bool,
        accumulate: Accumulate,
        extra: usize,
        seed: u64,
    ) -> Result<(), TestCaseError> {
        let (x, w, b) = (
            values::<T>(rows * INP, extra, seed),
            values::<T>(OUT * INP, extra, seed ^ 1),
            values::<T>(OUT, extra, seed ^ 2),
        );
        let b = bias.then_some(&b[..]);
        let y0 = values::<T>(rows * OUT, extra, seed ^ 3);
        let (mut y, mut y_twin) = (y0.clone(), y0);
        linear_fixed::<T, INP, OUT>(rows, &x, &w, b, &mut y);
        if fma() {
            forward::<T, INP, OUT, true>(rows, &x, &w, b, &mut y_twin);
        } else {
            forward::<T, INP, OUT, false>(rows, &x, &w, b, &mut y_twin);
        }
        same_bits("y", &y, &y_twin)?;
        let dy = values::<T>(rows * OUT, extra, seed ^ 4);
        let dx0 = values::<T>(rows * INP, extra, seed ^ 5);
        let (mut dx, mut dx_twin) = (dx0.clone(), dx0);
        linear_backward_input_fixed::<T, INP, OUT>(rows, &dy, &w, &mut dx, accumulate);
        if fma() {
            input::<T, INP, OUT, true>(rows, &dy, &w, &mut dx_twin, accumulate);
        } else {
            input::<T, INP, OUT, false>(rows, &dy, &w, &mut dx_twin, accumulate);
        }
        same_bits("dx", &dx, &dx_twin)?;
        let dw0 = values::<T>(OUT * INP, extra, seed ^ 6);
        let (mut dw, mut dw_twin) = (dw0.clone(), dw0);
        linear_backward_weight_fixed::<T, INP, OUT>(rows, &dy, &x, &mut dw, accumulate);
        if fma() {
            weight::<T, INP, OUT, true>(rows, &dy, &x, &mut dw_twin, accumulate);
        } else {
            weight::<T, INP, OUT, false>(rows, &dy, &x, &mut dw_twin, accumulate);
        }
        same_bits("dw", &dw, &dw_twin)
    }

    proptest! {
        #![proptest_config(crate::prop::config(64))]

        #[test]
        fn dispatched_kernels_are_their_safe_twins(
            rows in 0..=37usize,
            bias in any::<bool>(),
            accumulate in any::<bool>().prop_map(|a| if a { Add } else { Overwrite }),
            extra in 0..=3usize,
            seed in any::<u64>(),
        ) {
            // Rows not a multiple of 4 (the forward's row blocks), outputs not a multiple
            // of 4 (the weight gradient's), widths not a multiple of any vector.
            twins::<f32, 2, 8>(rows, bias, accumulate, extra, seed)?;
            twins::<f32, 7, 13>(rows, bias, accumulate, extra, seed)?;
            twins::<f32, 33, 17>(rows, bias, accumulate, extra, seed)?;
            twins::<f32, 1, 1>(rows, bias, accumulate, extra, seed)?;
            twins::<f64, 3, 5>(rows, bias, accumulate, extra, seed)?;
            twins::<f64, 64, 32>(rows, bias, accumulate, extra, seed)?;
            twins::<f64, 9, 1>(rows, bias, accumulate, extra, seed)?;
        }
    }

    #[test]
    fn f32_matches_too() {
        let rows = 5;
        let x: Vec<f32> = data(rows * 3, 1).iter().map(|&v| v as f32).collect();
        let w: Vec<f32> = data(4 * 3, 2).iter().map(|&v| v as f32).collect();
        let (mut y1, mut y2) = (vec![0f32; rows * 4], vec![0f32; rows * 4]);
        linear(rows, 3, 4, &x, &w, None, &mut y1);
        linear_fixed::<f32, 3, 4>(rows, &x, &w, None, &mut y2);
        for (a, b) in y1.iter().zip(&y2) {
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()));
        }
    }
}
