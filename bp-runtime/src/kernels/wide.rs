//! Elementwise loops compiled for the widest vectors the CPU has. The crate is built for
//! the baseline x86-64 target (SSE2, 4 lanes of `f32`), so a loop of `exp`s and divisions
//! such as the LSTM's gates runs 4 lanes wide; [`run`] runs a closure inside a
//! `#[target_feature]` function, where the loops the closure inlines are compiled for
//! AVX-512 (16 lanes) or AVX2 (8 lanes). Measured on the LSTM of 128 units over 100 steps
//! (batch 32, one thread, Zen 4): the gate activations and their residuals took 27 % of
//! the step at 4 lanes.
//!
//! Rust does not contract `a·b + c` into a fused multiply-add, so the wide code rounds
//! exactly as the baseline code: the same bits on every ISA (tested below). The `unsafe`
//! here is the call of a `#[target_feature]` function after the CPU check.

#[cfg(target_arch = "x86_64")]
use super::packed::{best_isa, Isa};

/// A piece of elementwise work for [`run`]: its inputs as fields, the loops in
/// [`Wide::run`], which must be `#[inline(always)]` (and so must every function it calls
/// in a hot loop) so that the loops compile inside the `#[target_feature]` wrapper. (A
/// closure does not do: it is compiled as a function of its own, for the baseline.)
pub(crate) trait Wide {
    /// What the work returns.
    type Out;
    /// Does the work.
    fn run(self) -> Self::Out;
}

/// Runs `work`, compiled for the widest vector ISA this CPU has.
#[inline(always)]
pub(crate) fn run<W: Wide>(work: W) -> W::Out {
    #[cfg(target_arch = "x86_64")]
    if !twin() {
        match best_isa() {
            // SAFETY: best_isa saw avx512f, avx2 and fma on this CPU.
            Isa::Avx512 => return unsafe { avx512(work) },
            // SAFETY: best_isa saw avx2 and fma on this CPU.
            Isa::Avx2 => return unsafe { avx2(work) },
            Isa::Baseline => {}
        }
    }
    work.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn avx512<W: Wide>(work: W) -> W::Out {
    work.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn avx2<W: Wide>(work: W) -> W::Out {
    work.run()
}

#[cfg(test)]
thread_local! {
    static TWIN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether [`run`] runs its safe twin (the closure as compiled for the baseline) on this
/// thread; a constant `false` outside the tests.
#[inline(always)]
fn twin() -> bool {
    #[cfg(test)]
    return TWIN.with(std::cell::Cell::get);
    #[cfg(not(test))]
    false
}

/// Runs `f` with [`run`]'s safe twin on for this thread.
#[cfg(test)]
pub(crate) fn with_twin<R>(f: impl FnOnce() -> R) -> R {
    struct Off;
    impl Drop for Off {
        fn drop(&mut self) {
            TWIN.with(|a| a.set(false));
        }
    }
    TWIN.with(|a| a.set(true));
    let _off = Off;
    f()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Float;

    struct Gates<'a>(&'a mut [f32]);

    impl Wide for Gates<'_> {
        type Out = ();
        #[inline(always)]
        fn run(self) {
            for x in self.0.iter_mut() {
                *x = x.sigmoid_fast() * x.tanh_fast() + 1.0 / (1.0 + x.abs());
            }
        }
    }

    #[test]
    fn the_wide_loop_is_its_safe_twin_bit_for_bit() {
        let src: Vec<f32> = (0..4099)
            .map(|i| ((i * 7919) % 2000) as f32 / 97.0 - 10.0)
            .collect();
        let (mut wide, mut base) = (src.clone(), src);
        run(Gates(&mut wide));
        with_twin(|| run(Gates(&mut base)));
        assert!(wide
            .iter()
            .zip(&base)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}
