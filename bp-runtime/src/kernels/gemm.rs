//! General matrix multiplication: the one place where the runtime calls into the GEMM
//! crate (the faer project's [`gemm`](https://crates.io/crates/gemm), through its
//! `gemm-f32` and `gemm-f64` parts), and the global thread-count setting it obeys.
//!
//! Matrices are described by a slice and a pair of strides `[row stride, column stride]`
//! in elements, so a row-major `[r, c]` buffer is `[c, 1]` and its transpose, read in
//! place, is `[1, c]`. The choice of the crate and of [`PARALLEL_THRESHOLD`] is measured in
//! `bp-runtime/GEMM.md` (program: `cargo run --release -p bp-runtime --example gemm_pick`).

use crate::Float;
use gemm_common::Parallelism;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The thread count set by [`set_threads`].
static THREADS: AtomicUsize = AtomicUsize::new(1);

/// Products with fewer multiply-adds `m·n·k` than this run on one thread whatever
/// [`threads`] says: below it, splitting the work costs more than it saves on the
/// measured machine (see `GEMM.md`).
pub const PARALLEL_THRESHOLD: usize = 4 << 20;

/// The same threshold for the products where the crate packs its left operand by a
/// strided gather (for a row-major C: `op(B)` read transposed, as in the forward of a
/// dense layer `x·Wᵀ`). Those scale worse on two threads, so they need 4× more work.
pub const PARALLEL_THRESHOLD_GATHER: usize = 16 << 20;

/// Sets the number of threads large matrix products may use (1, the default, keeps all
/// work on the calling thread; 0 is taken as 1).
///
/// The setting is global to the process and takes effect for the next product. Products
/// smaller than [`PARALLEL_THRESHOLD`] multiply-adds always stay on one thread. Extra
/// threads come from rayon's global pool, which is created on first use.
pub fn set_threads(n: usize) {
    THREADS.store(n.max(1), Ordering::Relaxed);
}

/// The number of threads large matrix products may use (see [`set_threads`]).
pub fn threads() -> usize {
    THREADS.load(Ordering::Relaxed)
}

/// `C := alpha·op(A)·op(B) + beta·C` with `op(A)` `[m, k]`, `op(B)` `[k, n]` and `C`
/// `[m, n]`, each given by a slice and its `[row stride, column stride]` in elements
/// (a transpose is a swap of the two strides).
///
/// As in BLAS, `C` is not read when `beta` is 0 (so a NaN in it does not survive) and
/// `A` and `B` are not read when `alpha` is 0 or `k` is 0. Uses up to [`threads`]
/// threads when `m·n·k ≥` [`PARALLEL_THRESHOLD`] (or [`PARALLEL_THRESHOLD_GATHER`]).
///
/// # Panics
/// If an operand's strides reach past the end of its slice, or if two elements of `C`
/// share a place in memory.
///
/// ```
/// use bp_runtime::kernels::gemm;
/// // [1 2; 3 4] · [5 6; 7 8]ᵀ = [17 23; 39 53]
/// let a = [1.0f32, 2.0, 3.0, 4.0];
/// let b = [5.0f32, 6.0, 7.0, 8.0];
/// let mut c = [0.0f32; 4];
/// gemm(2, 2, 2, 1.0, &a, [2, 1], &b, [1, 2], 0.0, &mut c, [2, 1]);
/// assert_eq!(c, [17.0, 23.0, 39.0, 53.0]);
/// ```
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: &[T],
    a_strides: [usize; 2],
    b: &[T],
    b_strides: [usize; 2],
    beta: T,
    c: &mut [T],
    c_strides: [usize; 2],
) {
    let work = m.saturating_mul(n).saturating_mul(k);
    // Mirrors the crate's choice: its packed left operand is op(B)ᵀ for a row-oriented
    // C and op(A) otherwise, gathered when its k index is the contiguous one.
    let gathers = if c_strides[1] < c_strides[0] {
        b_strides[0] == 1 && n > 1
    } else {
        a_strides[1] == 1 && m > 1
    };
    let threshold = if gathers {
        PARALLEL_THRESHOLD_GATHER
    } else {
        PARALLEL_THRESHOLD
    };
    let threads = if work >= threshold { threads() } else { 1 };
    T::gemm_strided(
        m, n, k, alpha, a, a_strides, b, b_strides, beta, c, c_strides, threads,
    );
}

/// One past the largest offset of a `[rows, cols]` matrix with strides `[rs, cs]`, or
/// `None` if it overflows. `rows` and `cols` are at least 1.
fn extent(rows: usize, cols: usize, [rs, cs]: [usize; 2]) -> Option<usize> {
    (rows - 1)
        .checked_mul(rs)?
        .checked_add((cols - 1).checked_mul(cs)?)?
        .checked_add(1)
}

/// Whether `(i, j) ↦ i·rs + j·cs` is one-to-one on `[rows, cols]`: the rows of a
/// row-major-like layout (or the columns of a column-major-like one) do not interleave.
/// Call it only once `extent` succeeded for the same arguments.
fn one_to_one(rows: usize, cols: usize, [rs, cs]: [usize; 2]) -> bool {
    match (rows, cols) {
        (1, 1) => true,
        (1, _) => cs >= 1,
        (_, 1) => rs >= 1,
        // The products cannot overflow: `extent` succeeded on the same strides first.
        _ => (cs >= 1 && rs > (cols - 1) * cs) || (rs >= 1 && cs > (rows - 1) * rs),
    }
}

/// The strides as the crate takes them. A dimension of size 1 never multiplies its
/// stride, so any stride is valid for it: it becomes 1, so that the crate only ever sees
/// small, meaningful strides. The others fit in isize: the caller checked that
/// (rows-1)·rs and (cols-1)·cs are below a slice length, which is at most isize::MAX.
fn tidy([rs, cs]: [usize; 2], rows: usize, cols: usize) -> [isize; 2] {
    let rs = if rows == 1 { 1 } else { rs };
    let cs = if cols == 1 { 1 } else { cs };
    [rs as isize, cs as isize]
}

/// `C := beta·C` over the `[m, n]` elements of C (zeros when `beta` is 0, as in BLAS).
fn scale<T: Float>(m: usize, n: usize, beta: T, c: &mut [T], [rs, cs]: [usize; 2]) {
    for i in 0..m {
        for j in 0..n {
            let v = &mut c[i * rs + j * cs];
            *v = if beta == T::ZERO { T::ZERO } else { beta * *v };
        }
    }
}

/// The entry point of the `gemm-f32` and `gemm-f64` crates for an element type: the
/// function the `gemm` umbrella crate calls. `(m, n, k, dst, dst_cs, dst_rs, read_dst,
/// lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs, α, β, conj_dst, conj_lhs, conj_rhs,
/// parallelism)` computes `dst := α·dst + β·lhs·rhs` (`α·dst` only if `read_dst`) on
/// raw strided pointers.
pub(crate) trait CrateGemm: Float {
    /// The crate's function for `Self` (picked once by CPU feature detection).
    fn entry() -> GemmFn<Self>;
    /// The single-threaded product that allocates nothing once warm (`packed.rs`).
    #[allow(clippy::too_many_arguments)]
    fn packed(
        mnk: (usize, usize, usize),
        alpha: Self,
        a: &[Self],
        a_strides: [usize; 2],
        b: &[Self],
        b_strides: [usize; 2],
        beta: Self,
        c: &mut [Self],
        c_strides: [usize; 2],
    );
}

/// The signature of [`CrateGemm::entry`].
type GemmFn<T> = unsafe fn(
    usize,
    usize,
    usize,
    *mut T,
    isize,
    isize,
    bool,
    *const T,
    isize,
    isize,
    *const T,
    isize,
    isize,
    T,
    T,
    bool,
    bool,
    bool,
    Parallelism,
);

macro_rules! crate_gemm {
    ($t:ident, $entry:path, $packed:path) => {
        impl CrateGemm for $t {
            #[inline]
            fn entry() -> GemmFn<$t> {
                $entry()
            }
            #[inline]
            fn packed(
                mnk: (usize, usize, usize),
                alpha: $t,
                a: &[$t],
                a_strides: [usize; 2],
                b: &[$t],
                b_strides: [usize; 2],
                beta: $t,
                c: &mut [$t],
                c_strides: [usize; 2],
            ) {
                let isa = super::packed::best_isa();
                $packed(
                    isa, mnk, alpha, a, a_strides, b, b_strides, beta, c, c_strides,
                )
            }
        }
    };
}

crate_gemm!(
    f32,
    gemm_f32::gemm::f32::get_gemm_fn,
    super::packed::gemm_f32
);
crate_gemm!(
    f64,
    gemm_f64::gemm::f64::get_gemm_fn,
    super::packed::gemm_f64
);

/// The checked call into the GEMM crate behind [`Float::gemm_strided`] for `f32` and
/// `f64`: the contract of that method, with `threads` threads (1 = no parallelism).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_crate<T: CrateGemm>(
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: &[T],
    a_strides: [usize; 2],
    b: &[T],
    b_strides: [usize; 2],
    beta: T,
    c: &mut [T],
    c_strides: [usize; 2],
    threads: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    let c_end = extent(m, n, c_strides);
    assert!(
        c_end.is_some_and(|e| e <= c.len()),
        "gemm: C [{m}, {n}] with strides {c_strides:?} does not fit its {} elements",
        c.len()
    );
    assert!(
        one_to_one(m, n, c_strides),
        "gemm: the strides {c_strides:?} of C [{m}, {n}] make elements overlap"
    );
    if k == 0 || alpha == T::ZERO {
        scale(m, n, beta, c, c_strides);
        return;
    }
    let a_end = extent(m, k, a_strides);
    assert!(
        a_end.is_some_and(|e| e <= a.len()),
        "gemm: A [{m}, {k}] with strides {a_strides:?} does not fit its {} elements",
        a.len()
    );
    let b_end = extent(k, n, b_strides);
    assert!(
        b_end.is_some_and(|e| e <= b.len()),
        "gemm: B [{k}, {n}] with strides {b_strides:?} does not fit its {} elements",
        b.len()
    );
    // One thread: the packed product, which allocates nothing once warm (a training
    // step must not touch the heap); the crate allocates its packing memory per call.
    if threads <= 1 {
        return T::packed(
            (m, n, k),
            alpha,
            a,
            a_strides,
            b,
            b_strides,
            beta,
            c,
            c_strides,
        );
    }
    let sa = tidy(a_strides, m, k);
    let sb = tidy(b_strides, k, n);
    let sc = tidy(c_strides, m, n);
    // The crate's micro-kernels want C column-oriented: for a row-oriented C compute
    // Cᵀ = op(B)ᵀ·op(A)ᵀ instead (as the `gemm` umbrella crate does), which swaps the
    // operands, m with n, and each pair of strides.
    let (m, n, lhs, [lhs_rs, lhs_cs], rhs, [rhs_rs, rhs_cs], [c_rs, c_cs]) = if sc[1] < sc[0] {
        let t = |[r, c]: [isize; 2]| [c, r];
        (n, m, b, t(sb), a, t(sa), t(sc))
    } else {
        (m, n, a, sa, b, sb, sc)
    };
    let parallelism = if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // The crate computes dst := α·dst + β·lhs·rhs, reading dst only if `read_dst`:
    // its α is our beta and its β our alpha.
    let read_dst = beta != T::ZERO;
    let kernel = T::entry();
    // SAFETY: `kernel` is the crate's entry point for T (`CrateGemm`). It reads lhs at
    // i·lhs_rs + p·lhs_cs for i < m, p < k, rhs at p·rhs_rs + j·rhs_cs for p < k, j < n,
    // and writes dst at i·c_rs + j·c_cs for i < m, j < n (all dimensions ≥ 1 here). In
    // the caller's terms (before the optional transpose, which only renames these
    // offsets) the asserts above check that the largest of them is inside each slice,
    // with overflow checked, so every access is in bounds; `tidy` only replaces strides
    // that are multiplied by 0. The offsets of C are pairwise distinct (`one_to_one`),
    // so no element is written twice, nor by two threads. C is borrowed mutably and A, B
    // shared, so C aliases neither. Every stride fits in isize (see `tidy`) and none is
    // negative.
    unsafe {
        kernel(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_cs,
            c_rs,
            read_dst,
            lhs.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.as_ptr(),
            rhs_cs,
            rhs_rs,
            beta,
            alpha,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests;
