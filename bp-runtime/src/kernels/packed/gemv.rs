//! The product when `C` is a single row or column, read in place with nothing packed.
//!
//! - Dot products, when the other operand's vectors lie along the sum:
//!   `C[j] = alpha·Σ_p u[p]·M[j, p] + beta·C[j]`, with `u` and every row of `M`
//!   contiguous. That is the forward `x·Wᵀ` of a dense layer at batch 1 (`u` the input
//!   row, `M` the weight `[out, inp]` as stored). The blocked loops would transpose-pack
//!   all of `W` on every call for one row of output (at 784 → 128, 85% of the call);
//!   here each output is one dot product read straight from `W`'s rows, four rows at a
//!   time so four chains of multiply-adds run side by side, sixteen lanes each.
//! - Sums of rows, when the other operand's rows lie along `C`:
//!   `C[j] = alpha·Σ_p u[p]·M[p, j] + beta·C[j]`, `M`'s rows and `C` contiguous. That is
//!   the recurrent `h·W_hhᵀ` of one step at batch 1 read from the transposed copy of
//!   `W_hh` (`recurrent/sequence.rs`), and a weight gradient with one output. No
//!   horizontal sums: with a short `k` (64 for the `lstm` network) those dominated the
//!   dot products.
//!
//! Plain safe Rust that the compiler vectorizes; it is inlined into the product compiled
//! for each instruction set (`dispatch.rs`), so it needs no twin.
#![forbid(unsafe_code)]

use super::Mat;
use crate::Float;

/// Lanes of an accumulator: one AVX-512 vector of `f32`.
const L: usize = 16;

/// `a·b + c`, fused when the kernels are compiled with FMA (as the tile's).
#[inline(always)]
fn madd<T: Float, const FMA: bool>(a: T, b: T, c: T) -> T {
    if FMA {
        a.mul_add(b, c)
    } else {
        c + a * b
    }
}

/// The sum of the lanes, pairwise (halves added, then halves of those: a few vector
/// adds, not a chain of sixteen).
#[inline(always)]
fn lanes_sum<T: Float>(mut v: [T; L]) -> T {
    let mut half = L / 2;
    while half > 0 {
        for i in 0..half {
            v[i] += v[i + half];
        }
        half /= 2;
    }
    v[0]
}

/// Runs `C := alpha·op(A)·op(B) + beta·C` as dot products when `C` is one row (`m` = 1,
/// `A`'s row contiguous, `op(B)`'s columns contiguous) or one column (`n` = 1, `A`'s rows
/// contiguous, `op(B)`'s column contiguous); returns false, having done nothing, for any
/// other product. `k ≥ 1` and `alpha ≠ 0` (the caller handled the rest).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn gemv<T: Float, const FMA: bool>(
    (m, n, k): (usize, usize, usize),
    alpha: T,
    a: Mat<T>,
    b: Mat<T>,
    beta: T,
    c: &mut [T],
    cs: [usize; 2],
) -> bool {
    if m == 1 && (a.cs == 1 || k == 1) && (b.rs == 1 || k == 1) {
        // C[0, j] = Σ_p A[0, p]·B[p, j]: u = A's row, M[j] = B's column j.
        dots::<T, FMA>(k, &a.d[..k], b.d, b.cs, n, alpha, beta, c, cs[1]);
        true
    } else if n == 1 && (a.cs == 1 || k == 1) && (b.rs == 1 || k == 1) {
        // C[i, 0] = Σ_p A[i, p]·B[p, 0]: u = B's column, M[i] = A's row i.
        dots::<T, FMA>(k, &b.d[..k], a.d, a.rs, m, alpha, beta, c, cs[0]);
        true
    } else if m == 1 && b.cs == 1 && cs[1] == 1 {
        // C[0, j] = Σ_p A[0, p]·B[p, j] with B's rows contiguous: a sum of rows of B
        // scaled by A's elements, C's row contiguous.
        axpys::<T, FMA>(k, a.d, a.cs, b.d, b.rs, n, alpha, beta, c);
        true
    } else if n == 1 && a.rs == 1 && cs[0] == 1 {
        // C[i, 0] = Σ_p A[i, p]·B[p, 0] with A's columns contiguous: the same, with
        // A's columns scaled by B's column.
        axpys::<T, FMA>(k, b.d, b.rs, a.d, a.cs, m, alpha, beta, c);
        true
    } else {
        false
    }
}

/// `c[j] := alpha·Σ_p u[p·u_step]·M[p, j] + beta·c[j]` for `j < count`, where row `M[p]`
/// is the `count` elements of `mat` from `p·m_step` (`c` not read when beta is 0): each
/// output's sum runs over `p` in order, as in a tile of the blocked product. Outputs are
/// taken eight vectors at a time (eight independent chains of multiply-adds, one load
/// and one broadcast each per step), then one vector, then one by one.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn axpys<T: Float, const FMA: bool>(
    k: usize,
    u: &[T],
    u_step: usize,
    mat: &[T],
    m_step: usize,
    count: usize,
    alpha: T,
    beta: T,
    c: &mut [T],
) {
    let c = &mut c[..count];
    let row = |p: usize, j: usize, len: usize| &mat[p * m_step + j..][..len];
    let mut j = 0;
    while j + 8 * L <= count {
        // Named halves, not one array of eight vectors (see `dots`).
        let (mut a0, mut a1) = ([T::ZERO; 4 * L], [T::ZERO; 4 * L]);
        for p in 0..k {
            let x = u[p * u_step];
            let (w0, w1) = row(p, j, 8 * L).split_at(4 * L);
            for l in 0..4 * L {
                a0[l] = madd::<T, FMA>(x, w0[l], a0[l]);
                a1[l] = madd::<T, FMA>(x, w1[l], a1[l]);
            }
        }
        let (c0, c1) = c[j..j + 8 * L].split_at_mut(4 * L);
        for l in 0..4 * L {
            put(&mut c0[l], a0[l], alpha, beta);
            put(&mut c1[l], a1[l], alpha, beta);
        }
        j += 8 * L;
    }
    while j + L <= count {
        let mut a = [T::ZERO; L];
        for p in 0..k {
            let (x, w) = (u[p * u_step], row(p, j, L));
            for l in 0..L {
                a[l] = madd::<T, FMA>(x, w[l], a[l]);
            }
        }
        for l in 0..L {
            put(&mut c[j + l], a[l], alpha, beta);
        }
        j += L;
    }
    for j in j..count {
        let mut s = T::ZERO;
        for p in 0..k {
            s = madd::<T, FMA>(u[p * u_step], mat[p * m_step + j], s);
        }
        put(&mut c[j], s, alpha, beta);
    }
}

/// `c[j·c_step] := alpha·(u · M[j]) + beta·c[j·c_step]` for `j < count`, where row `M[j]`
/// is the `k` elements of `mat` from `j·m_step` (`c` not read when beta is 0).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn dots<T: Float, const FMA: bool>(
    k: usize,
    u: &[T],
    mat: &[T],
    m_step: usize,
    count: usize,
    alpha: T,
    beta: T,
    c: &mut [T],
    c_step: usize,
) {
    let row = |j: usize| &mat[j * m_step..][..k];
    // Four rows at a time, two vectors of the sum per row and step: eight independent
    // chains of multiply-adds (measured on Zen 4, 784 → 128: 3.9 µs, against 4.1 with
    // one vector per row and 7 with eight rows, which spill their pointers).
    let (u2, _) = u.as_chunks::<{ 2 * L }>();
    let mut j = 0;
    while j + 4 <= count {
        let r = [row(j), row(j + 1), row(j + 2), row(j + 3)];
        let (c0, c1, c2, c3) = (
            r[0].as_chunks::<{ 2 * L }>().0,
            r[1].as_chunks::<{ 2 * L }>().0,
            r[2].as_chunks::<{ 2 * L }>().0,
            r[3].as_chunks::<{ 2 * L }>().0,
        );
        // Named accumulators, not an array indexed in a loop: LLVM keeps those in
        // memory (a store-to-load stall on every row block).
        let (mut a0, mut a1, mut a2, mut a3) = (
            [T::ZERO; 2 * L],
            [T::ZERO; 2 * L],
            [T::ZERO; 2 * L],
            [T::ZERO; 2 * L],
        );
        for ((((x, w0), w1), w2), w3) in u2.iter().zip(c0).zip(c1).zip(c2).zip(c3) {
            for l in 0..2 * L {
                a0[l] = madd::<T, FMA>(x[l], w0[l], a0[l]);
                a1[l] = madd::<T, FMA>(x[l], w1[l], a1[l]);
                a2[l] = madd::<T, FMA>(x[l], w2[l], a2[l]);
                a3[l] = madd::<T, FMA>(x[l], w3[l], a3[l]);
            }
        }
        let s = [
            finish::<T, FMA>(u, r[0], &a0),
            finish::<T, FMA>(u, r[1], &a1),
            finish::<T, FMA>(u, r[2], &a2),
            finish::<T, FMA>(u, r[3], &a3),
        ];
        for (t, s) in s.into_iter().enumerate() {
            put(&mut c[(j + t) * c_step], s, alpha, beta);
        }
        j += 4;
    }
    for j in j..count {
        let r = row(j);
        let mut a = [T::ZERO; 2 * L];
        for (x, w) in u2.iter().zip(r.as_chunks::<{ 2 * L }>().0) {
            for l in 0..2 * L {
                a[l] = madd::<T, FMA>(x[l], w[l], a[l]);
            }
        }
        put(&mut c[j * c_step], finish::<T, FMA>(u, r, &a), alpha, beta);
    }
}

/// `o := alpha·s + beta·o` (`o` not read when beta is 0).
#[inline(always)]
fn put<T: Float>(o: &mut T, s: T, alpha: T, beta: T) {
    *o = if beta == T::ZERO {
        alpha * s
    } else {
        alpha * s + beta * *o
    };
}

/// `u · r` from `a`, the sums of its whole `2·L`-chunks: the two halves of `a` added,
/// then, when `k` is not a multiple of `2·L`, one more vector of the sum if there is one
/// and the last `k mod L` terms. (A function, not a closure: a closure is not inlined
/// into the `#[target_feature]` product and would run scalar, a library call per
/// multiply-add.)
#[inline(always)]
fn finish<T: Float, const FMA: bool>(u: &[T], r: &[T], a: &[T; 2 * L]) -> T {
    let mut v = [T::ZERO; L];
    for l in 0..L {
        v[l] = a[l] + a[l + L];
    }
    let k = u.len();
    let mut p = k / (2 * L) * (2 * L);
    if p == k {
        return lanes_sum(v);
    }
    if k - p >= L {
        let (x, w) = (&u[p..p + L], &r[p..p + L]);
        for l in 0..L {
            v[l] = madd::<T, FMA>(x[l], w[l], v[l]);
        }
        p += L;
    }
    let mut s = lanes_sum(v);
    for (&x, &w) in u[p..].iter().zip(&r[p..]) {
        s = madd::<T, FMA>(x, w, s);
    }
    s
}
