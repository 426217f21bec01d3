//! The entry points `gemm_f32` and `gemm_f64`: the blocked product compiled for AVX-512
//! (with two tiles, [`Tile`]), for AVX2 with FMA and for the baseline target, each with
//! its own tile, and the call of the one [`Kernels`] names. The `unsafe` here is calling a `#[target_feature]` function
//! after the CPU check. Each thread keeps one packing buffer, grown and never shrunk.

use super::blocked::blocked;
use super::isa::{Isa, Kernels, Tile};
use super::{safe, Mat};

macro_rules! entry {
    ($t:ident, $module:ident, $avx512:expr, $avx512w:expr, $avx2:expr, $base:expr) => {
        mod $module {
            use super::*;
            use std::cell::RefCell;

            thread_local! {
                static SCRATCH: RefCell<Vec<$t>> = const { RefCell::new(Vec::new()) };
            }

            type Args<'a> = (
                (usize, usize, usize),
                $t,
                Mat<'a, $t>,
                Mat<'a, $t>,
                $t,
                &'a mut [$t],
                [usize; 2],
                &'a mut Vec<$t>,
            );

            /// The AVX-512 tiles; compiled for AVX-512 by `avx512`, for the baseline
            /// target as its safe twin.
            #[inline(always)]
            fn avx512_tiles((mnk, al, a, b, be, c, cs, s): Args) {
                blocked::<$t, { $avx512.0 }, { $avx512.1 }, true>(mnk, al, a, b, be, c, cs, s)
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx2,fma")]
            fn avx512(args: Args) {
                avx512_tiles(args)
            }

            /// The wide AVX-512 tiles (fewer rows, more columns), as `avx512_tiles`.
            #[inline(always)]
            fn avx512_wide_tiles((mnk, al, a, b, be, c, cs, s): Args) {
                blocked::<$t, { $avx512w.0 }, { $avx512w.1 }, true>(mnk, al, a, b, be, c, cs, s)
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx2,fma")]
            fn avx512_wide(args: Args) {
                avx512_wide_tiles(args)
            }

            /// The AVX2 tiles, as `avx512_tiles`.
            #[inline(always)]
            fn avx2_tiles((mnk, al, a, b, be, c, cs, s): Args) {
                blocked::<$t, { $avx2.0 }, { $avx2.1 }, true>(mnk, al, a, b, be, c, cs, s)
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2(args: Args) {
                avx2_tiles(args)
            }

            fn baseline((mnk, al, a, b, be, c, cs, s): Args) {
                blocked::<$t, { $base.0 }, { $base.1 }, false>(mnk, al, a, b, be, c, cs, s)
            }

            fn run(k: Kernels, args: Args) {
                match k.isa {
                    Isa::Baseline => baseline(args),
                    // The safe twins (tests only): the same tiles and multiply-adds
                    // compiled for the baseline target, so the same bits.
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 if safe::active() => match k.tile {
                        Tile::Tall => avx512_tiles(args),
                        Tile::Wide => avx512_wide_tiles(args),
                    },
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 if safe::active() => avx2_tiles(args),
                    // SAFETY: `isa` is Avx512 only when `best_isa` saw avx512f, avx2 and
                    // fma on this CPU (or a test forced a path it checked the CPU has).
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 if k.tile == Tile::Wide => unsafe { avx512_wide(args) },
                    // SAFETY: as above.
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => unsafe { avx512(args) },
                    // SAFETY: as above, with avx2 and fma.
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => unsafe { avx2(args) },
                }
            }

            /// The product on the calling thread with the kernels `k`. The caller has
            /// checked that every operand fits its slice.
            #[allow(clippy::too_many_arguments)]
            pub(crate) fn gemm(
                k: Kernels,
                mnk: (usize, usize, usize),
                alpha: $t,
                a: &[$t],
                [ars, acs]: [usize; 2],
                b: &[$t],
                [brs, bcs]: [usize; 2],
                beta: $t,
                c: &mut [$t],
                cs: [usize; 2],
            ) {
                let a = Mat {
                    d: a,
                    rs: ars,
                    cs: acs,
                };
                let b = Mat {
                    d: b,
                    rs: brs,
                    cs: bcs,
                };
                SCRATCH.with(|s| match s.try_borrow_mut() {
                    Ok(mut s) => run(k, (mnk, alpha, a, b, beta, c, cs, &mut s)),
                    // Re-entered on this thread (never by bp itself): a fresh buffer.
                    Err(_) => run(k, (mnk, alpha, a, b, beta, c, cs, &mut Vec::new())),
                })
            }
        }
        pub(crate) use $module::gemm as $module;
    };
}

entry!(f32, gemm_f32, (12, 32), (6, 64), (6, 16), (4, 8));
entry!(f64, gemm_f64, (12, 16), (6, 32), (6, 8), (4, 4));
