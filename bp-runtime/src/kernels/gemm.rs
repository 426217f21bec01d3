//! General matrix multiplication, and the global thread-count setting it obeys.
//!
//! Matrices are described by a slice and a pair of strides `[row stride, column stride]`
//! in elements, so a row-major `[r, c]` buffer is `[c, 1]` and its transpose, read in
//! place, is `[1, c]`. The product itself is bp's own (`packed.rs`): it allocates nothing
//! once warm, which no GEMM crate we measured does (see `bp-runtime/GEMM.md`). With more
//! than one thread, a product of at least [`PARALLEL_THRESHOLD`] multiply-adds is cut into
//! bands of rows (or columns, for a column-major C), one per thread, on the
//! allocation-free worker pool of [`crate::threads`]. The threshold is measured by
//! `cargo run --release -p bp-runtime --example gemm_pick -- sweep`.
#![forbid(unsafe_code)]

use crate::Float;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The thread count set by [`set_threads`].
static THREADS: AtomicUsize = AtomicUsize::new(1);

/// Products with fewer multiply-adds `m·n·k` than this run on one thread whatever
/// [`threads`] says: below it, handing half the work to another thread costs more than it
/// saves on the measured machine (`gemm_pick -- sweep`, see `GEMM.md`).
pub const PARALLEL_THRESHOLD: usize = 100_000;

/// The most threads one product is split over.
pub const MAX_THREADS: usize = crate::threads::MAX_CHUNKS;

/// Sets the number of threads large matrix products may use (1, the default, keeps all
/// work on the calling thread; 0 is taken as 1, more than [`MAX_THREADS`] as that).
///
/// The setting is global to the process and takes effect for the next product. Products
/// smaller than [`PARALLEL_THRESHOLD`] multiply-adds always stay on one thread. The
/// extra threads are the workers of [`crate::threads`], started on first use; a step that
/// uses them allocates nothing once they exist.
pub fn set_threads(n: usize) {
    THREADS.store(n.clamp(1, MAX_THREADS), Ordering::Relaxed);
}

/// The number of threads large matrix products may use (see [`set_threads`]).
pub fn threads() -> usize {
    if let Some(n) = LOCAL_THREADS.with(std::cell::Cell::get) {
        return n;
    }
    THREADS.load(Ordering::Relaxed)
}

thread_local! {
    /// A thread count for the calling thread only (see [`with_threads`]).
    static LOCAL_THREADS: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with [`threads`] returning `n` on the calling thread only: a kernel whose
/// parts already run on every thread (the recurrent layers' batch split) keeps the
/// products inside a part on that part's thread; a test takes the split paths of the
/// kernels without changing the setting other tests see.
pub(crate) fn with_threads<R>(n: usize, f: impl FnOnce() -> R) -> R {
    /// Puts the previous setting back, also when `f` panics.
    struct Restore(Option<usize>);
    impl Drop for Restore {
        fn drop(&mut self) {
            LOCAL_THREADS.with(|t| t.set(self.0));
        }
    }
    let _restore = Restore(LOCAL_THREADS.with(|t| t.replace(Some(n.clamp(1, MAX_THREADS)))));
    f()
}

/// `C := alpha·op(A)·op(B) + beta·C` with `op(A)` `[m, k]`, `op(B)` `[k, n]` and `C`
/// `[m, n]`, each given by a slice and its `[row stride, column stride]` in elements
/// (a transpose is a swap of the two strides).
///
/// As in BLAS, `C` is not read when `beta` is 0 (so a NaN in it does not survive) and
/// `A` and `B` are not read when `alpha` is 0 or `k` is 0. Uses up to [`threads`]
/// threads when `m·n·k ≥` [`PARALLEL_THRESHOLD`].
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
    gemm_on(
        threads(),
        m,
        n,
        k,
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

/// [`gemm`] with the thread count given: `threads` = 1 keeps the product on the calling
/// thread (for a kernel that already split its work over the pool); more lets it use up
/// to that many when the product is large enough.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_on<T: Float>(
    threads: usize,
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
    let threads = if work >= PARALLEL_THRESHOLD {
        threads
    } else {
        1
    };
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

/// The element types bp's own product is compiled for (`packed.rs`).
pub(crate) trait Packed: Float {
    /// The single-threaded product, which allocates nothing once warm.
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

macro_rules! packed {
    ($t:ident, $packed:path) => {
        impl Packed for $t {
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
                let kernels = super::packed::kernels();
                $packed(
                    kernels, mnk, alpha, a, a_strides, b, b_strides, beta, c, c_strides,
                )
            }
        }
    };
}

packed!(f32, super::packed::gemm_f32);
packed!(f64, super::packed::gemm_f64);

/// The checked product behind [`Float::gemm_strided`] for `f32` and `f64`: the contract
/// of that method, with up to `threads` threads (1 = all on the calling thread).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_checked<T: Packed>(
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
        super::packed::scale(m, n, beta, c, c_strides);
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
    // Bands along C's outer dimension (rows of a row-major C, columns of a column-major
    // one), so that each thread owns a contiguous, disjoint range of C's memory; a
    // single row or column is cut along its length instead (a dense layer at batch 1:
    // each thread reads its own rows of the weight).
    let rows_outer = match (m, n) {
        (1, _) => false,
        (_, 1) => true,
        _ => c_strides[1] <= c_strides[0],
    };
    let outer = if rows_outer { m } else { n };
    let parts = threads.min(MAX_THREADS).min(outer / 8).max(1);
    if parts <= 1 {
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
    // Part p gets the outer indices [p·outer/parts, (p+1)·outer/parts), rounded to a
    // multiple of 4 (the shortest micro-tile).
    let bound = |p: usize| {
        if p == parts {
            outer
        } else {
            (outer * p / parts + 2) / 4 * 4
        }
    };
    let step = if rows_outer {
        c_strides[0]
    } else {
        c_strides[1]
    };
    // Each band of C moves into the part that writes it.
    crate::threads::for_chunks_at(c, parts, &|p| bound(p) * step, &|p, band| {
        let (lo, hi) = (bound(p), bound(p + 1));
        if hi <= lo {
            return;
        }
        if rows_outer {
            T::packed(
                (hi - lo, n, k),
                alpha,
                &a[lo * a_strides[0]..],
                a_strides,
                b,
                b_strides,
                beta,
                band,
                c_strides,
            )
        } else {
            T::packed(
                (m, hi - lo, k),
                alpha,
                a,
                a_strides,
                &b[lo * b_strides[1]..],
                b_strides,
                beta,
                band,
                c_strides,
            )
        }
    });
}

#[cfg(test)]
mod tests;
