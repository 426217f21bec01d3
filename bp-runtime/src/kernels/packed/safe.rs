//! The safe twins of the `unsafe` code of the packed product: a micro-kernel that checks
//! every load, and a switch, set by the tests through [`run`], that makes the product on
//! this thread run its twins: this micro-kernel, the scalar transpose, and each ISA's
//! tiles compiled for the baseline target instead of under `#[target_feature]`. Outside
//! the tests the switch is a constant `false` and the twins compile away.
#![forbid(unsafe_code)]

use crate::Float;

/// The safe twin of `micro`: `Σ_p A[i, p]·B[p, j]` for `i < R`, `j < NR`, `p < kc`, with
/// `A[i, p]` at `a0 + i·ars + p·acs` of `a` and `B[p, j]` at `b0 + p·brs + j` of `b`. The
/// same multiply-adds in the same order as `micro`, so the same bits; a load out of
/// bounds panics here where `micro` would read it.
#[inline(always)]
pub(super) fn micro<T: Float, const R: usize, const NR: usize, const FMA: bool>(
    kc: usize,
    (a, a0, ars, acs): (&[T], usize, usize, usize),
    (b, b0, brs): (&[T], usize, usize),
) -> [[T; NR]; R] {
    let mut acc = [[T::ZERO; NR]; R];
    for p in 0..kc {
        let bp = &b[b0 + p * brs..][..NR];
        for (i, row) in acc.iter_mut().enumerate() {
            let ai = a[a0 + i * ars + p * acs];
            for (c, &bv) in row.iter_mut().zip(bp) {
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

#[cfg(test)]
thread_local! {
    static ACTIVE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the product on this thread runs its safe twins.
#[inline(always)]
pub(super) fn active() -> bool {
    #[cfg(test)]
    return ACTIVE.with(std::cell::Cell::get);
    #[cfg(not(test))]
    false
}

/// Runs `f` with the safe twins on for this thread (off again afterwards, also when `f`
/// panics).
#[cfg(test)]
pub(super) fn run<R>(f: impl FnOnce() -> R) -> R {
    struct Off;
    impl Drop for Off {
        fn drop(&mut self) {
            ACTIVE.with(|a| a.set(false));
        }
    }
    ACTIVE.with(|a| a.set(true));
    let _off = Off;
    f()
}
