//! One `R×NR` tile of C: the micro-kernel, whose loads are unchecked (their extent is
//! checked once per tile), and the store of its accumulators into C.

use super::isa::Elem;
use super::{safe, Mat};

/// `Σ_p A[i, p]·B[p, j]` for `i < R`, `j < NR`, `p < kc`, with `A[i, p]` at
/// `a + i·ars + p·acs` and `B[p, j]` at `b + p·brs + j`.
///
/// # Safety
/// Every one of those addresses must be inside one live allocation of initialized `T`
/// (`kc ≥ 1`): the caller checks the largest offset of each operand against its slice.
#[inline(always)]
pub(super) unsafe fn micro<T: Elem, const R: usize, const NR: usize, const FMA: bool>(
    kc: usize,
    a: *const T,
    ars: usize,
    acs: usize,
    b: *const T,
    brs: usize,
) -> [[T; NR]; R] {
    // A local the compiler keeps in registers (every index is constant once the loops
    // over i and j are unrolled).
    let mut acc = [[T::ZERO; NR]; R];
    // Hidden from the optimizer: when it sees a constant row stride (a packed strip) it
    // may vectorize across rows with gathers instead of across the B row, which is
    // many times slower.
    let ars = std::hint::black_box(ars);
    for p in 0..kc {
        // SAFETY: p < kc, so p·brs + j < kc·brs... is within the caller's checked extent;
        // `[T; NR]` has the alignment of T, and b is T-aligned.
        let bp: [T; NR] = unsafe { b.add(p * brs).cast::<[T; NR]>().read() };
        // SAFETY: the row p·acs of A's strip is inside the checked extent.
        let ap = unsafe { a.add(p * acs) };
        for (i, row) in acc.iter_mut().enumerate() {
            // SAFETY: i < R and p < kc: the offset i·ars + p·acs was checked.
            let ai = unsafe { ap.add(i * ars).read() };
            for (c, &bv) in row.iter_mut().zip(&bp) {
                *c = if FMA {
                    ai.mul_add(bv, *c)
                } else {
                    *c + ai * bv
                };
            }
        }
    }
    acc
}

/// One `R×NR` tile: `C[i.., j..] (:)= alpha·acc (+ beta·C)` for the first `h` rows and `w`
/// columns. `first` is the first slice of the sum, which applies `beta` (C not read when
/// beta is 0); later slices add.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn tile<T: Elem, const R: usize, const NR: usize, const FMA: bool>(
    kc: usize,
    a: Mat<T>,
    a0: usize,
    b: Mat<T>,
    b0: usize,
    hw: (usize, usize),
    alpha: T,
    beta: T,
    first: bool,
    c: &mut [T],
    c0: usize,
    cs: [usize; 2],
) {
    // The micro-kernel reads A at a0 + i·rs + p·cs and B at b0 + p·rs + j (i < R, j < NR,
    // p < kc): check the largest of each once.
    let a_last = a0 + (R - 1) * a.rs + (kc - 1) * a.cs;
    let b_last = b0 + (kc - 1) * b.rs + NR - 1;
    assert!(
        kc >= 1 && a_last < a.d.len() && b_last < b.d.len(),
        "gemm tile out of bounds"
    );
    let acc = if safe::active() {
        safe::micro::<T, R, NR, FMA>(kc, (a.d, a0, a.rs, a.cs), (b.d, b0, b.rs))
    } else {
        // SAFETY: the asserts above bound every offset the kernel reads (all terms are
        // non-negative and increasing in i, j, p), and both slices are live and
        // initialized.
        unsafe {
            micro::<T, R, NR, FMA>(
                kc,
                a.d.as_ptr().add(a0),
                a.rs,
                a.cs,
                b.d.as_ptr().add(b0),
                b.rs,
            )
        }
    };
    store(&acc, hw, alpha, beta, first, c, c0, cs);
}

/// The store of [`tile`]: `C[i.., j..] (:)= alpha·acc (+ beta·C)` for the first `h` rows
/// and `w` columns of `acc`, C's element `(i, j)` at `c0 + i·crs + j·ccs`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn store<T: Elem, const R: usize, const NR: usize>(
    acc: &[[T; NR]; R],
    (h, w): (usize, usize),
    alpha: T,
    beta: T,
    first: bool,
    c: &mut [T],
    c0: usize,
    [crs, ccs]: [usize; 2],
) {
    let put = |o: &mut T, v: T| {
        // A fused multiply-add, as the contiguous rows below: which orientation the
        // product runs in (a cost model that depends on the tile) must not change bits.
        *o = if !first || beta == T::ONE {
            alpha.mul_add(v, *o)
        } else if beta == T::ZERO {
            alpha * v
        } else {
            alpha * v + beta * *o
        };
    };
    if ccs != 1 && crs == 1 {
        // A column-major C (the swapped product of `blocked`): walk down its columns, so
        // that consecutive writes share cache lines.
        for j in 0..w {
            let out = &mut c[c0 + j * ccs..][..h];
            for (o, row) in out.iter_mut().zip(acc) {
                put(o, row[j]);
            }
        }
        return;
    }
    for (i, row) in acc.iter().enumerate().take(h) {
        let base = c0 + i * crs;
        if ccs == 1 {
            let out = &mut c[base..base + w];
            if !first || beta == T::ONE {
                for (o, &v) in out.iter_mut().zip(row) {
                    *o = alpha.mul_add(v, *o);
                }
            } else if beta == T::ZERO {
                for (o, &v) in out.iter_mut().zip(row) {
                    *o = alpha * v;
                }
            } else {
                for (o, &v) in out.iter_mut().zip(row) {
                    *o = alpha * v + beta * *o;
                }
            }
        } else {
            for (j, &v) in row.iter().enumerate().take(w) {
                put(&mut c[base + j * ccs], v);
            }
        }
    }
}
