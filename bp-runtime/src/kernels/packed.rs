//! A packed, register-blocked GEMM that allocates nothing once warm: its packing buffers
//! live in thread-local storage and keep their capacity, so a training step that runs
//! the same products again never touches the heap. The `gemm` crate, fast as it is,
//! allocates its packing memory on every call, which a step must not do.
//!
//! `C := alpha·op(A)·op(B) + beta·C`, all three given by a slice and
//! `[row stride, column stride]`. The loops are those of BLIS: `C` is cut into `NC`-wide
//! column panels and the sum over `k` into `KC` slices; each `KC×NC` panel of `op(B)` is
//! packed into `NR`-wide strips, each `MC×KC` block of `op(A)` into `MR`-high strips, and
//! a micro-kernel multiplies one strip pair into an `MR×NR` block held in registers.
//! `NR` is one 64-byte vector (16 `f32` or 8 `f64`), `MR` is 12: twelve accumulator rows
//! keep both FMA ports busy through the FMA latency on AVX-512.
//!
//! The micro-kernel is plain safe Rust that the compiler vectorizes; it is compiled three
//! times — for AVX-512, for AVX2 with FMA, and for the baseline target — and the fastest
//! the CPU supports is chosen at run time. Calling a `#[target_feature]` function is the
//! only `unsafe` here, each call guarded by the feature check it needs; the baseline
//! version is its safe twin, and the tests compare every path with a naive triple loop.

use crate::Float;

/// Rows of a micro-tile.
const MR: usize = 12;
/// Depth of a packed slice.
const KC: usize = 256;
/// Rows of a packed block of `op(A)` (a multiple of `MR`).
const MC: usize = 96;
/// Columns of a packed panel of `op(B)` (a multiple of both `NR`s).
const NC: usize = 1024;

/// A strided matrix operand.
#[derive(Clone, Copy)]
struct View<'a, T> {
    data: &'a [T],
    rs: usize,
    cs: usize,
}

impl<T: Float> View<'_, T> {
    #[inline(always)]
    fn at(&self, i: usize, j: usize) -> T {
        self.data[i * self.rs + j * self.cs]
    }
}

/// Which compiled micro-kernel runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Isa {
    Baseline,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

/// The best micro-kernel this CPU runs.
pub(crate) fn best_isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma") {
            return Isa::Avx512;
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            return Isa::Avx2;
        }
    }
    Isa::Baseline
}

/// One row of the tile: `c + a·b` elementwise (fused when `FMA`).
#[inline(always)]
fn axpy<T: Float, const NR: usize, const FMA: bool>(a: T, b: &[T; NR], c: [T; NR]) -> [T; NR] {
    let mut out = c;
    for j in 0..NR {
        out[j] = if FMA {
            a.mul_add(b[j], c[j])
        } else {
            c[j] + a * b[j]
        };
    }
    out
}

/// `Σ_p a[p·MR + i]·b[p·NR + j]` over the packed steps, as an `MR×NR` block. Each row of
/// the block is its own local, so the compiler keeps every row in vector registers
/// for the whole loop (one array would be kept in memory).
#[inline(always)]
fn micro_body<T: Float, const NR: usize, const FMA: bool>(a: &[T], b: &[T]) -> [[T; NR]; MR] {
    let z = [T::ZERO; NR];
    let (mut c0, mut c1, mut c2, mut c3, mut c4, mut c5) = (z, z, z, z, z, z);
    let (mut c6, mut c7, mut c8, mut c9, mut c10, mut c11) = (z, z, z, z, z, z);
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
        let (Ok(ap), Ok(bp)) = (<&[T; MR]>::try_from(ap), <&[T; NR]>::try_from(bp)) else {
            break;
        };
        c0 = axpy::<T, NR, FMA>(ap[0], bp, c0);
        c1 = axpy::<T, NR, FMA>(ap[1], bp, c1);
        c2 = axpy::<T, NR, FMA>(ap[2], bp, c2);
        c3 = axpy::<T, NR, FMA>(ap[3], bp, c3);
        c4 = axpy::<T, NR, FMA>(ap[4], bp, c4);
        c5 = axpy::<T, NR, FMA>(ap[5], bp, c5);
        c6 = axpy::<T, NR, FMA>(ap[6], bp, c6);
        c7 = axpy::<T, NR, FMA>(ap[7], bp, c7);
        c8 = axpy::<T, NR, FMA>(ap[8], bp, c8);
        c9 = axpy::<T, NR, FMA>(ap[9], bp, c9);
        c10 = axpy::<T, NR, FMA>(ap[10], bp, c10);
        c11 = axpy::<T, NR, FMA>(ap[11], bp, c11);
    }
    [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11]
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn micro_avx512<T: Float, const NR: usize>(a: &[T], b: &[T]) -> [[T; NR]; MR] {
    micro_body::<T, NR, true>(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn micro_avx2<T: Float, const NR: usize>(a: &[T], b: &[T]) -> [[T; NR]; MR] {
    micro_body::<T, NR, true>(a, b)
}

#[inline(always)]
fn micro<T: Float, const NR: usize>(isa: Isa, a: &[T], b: &[T]) -> [[T; NR]; MR] {
    match isa {
        Isa::Baseline => micro_body::<T, NR, false>(a, b),
        // SAFETY: `isa` is Avx512 only when `best_isa` saw avx512f, avx2 and fma on this
        // CPU (or a test forced a path the CPU was checked to support); the function
        // itself is safe code.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { micro_avx512::<T, NR>(a, b) },
        // SAFETY: as above, with avx2 and fma.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { micro_avx2::<T, NR>(a, b) },
    }
}

/// Packs `op(B)[p0..p0+kc, j0..j0+nc]` into `NR`-wide strips `[kc][NR]`, zero-padded.
fn pack_b<T: Float, const NR: usize>(
    b: View<T>,
    p0: usize,
    kc: usize,
    j0: usize,
    nc: usize,
    out: &mut [T],
) {
    for (s, strip) in out
        .chunks_exact_mut(kc * NR)
        .take(nc.div_ceil(NR))
        .enumerate()
    {
        let j = j0 + s * NR;
        let w = NR.min(j0 + nc - j);
        for (p, dst) in strip.chunks_exact_mut(NR).enumerate() {
            for (jj, d) in dst.iter_mut().enumerate() {
                *d = if jj < w {
                    b.at(p0 + p, j + jj)
                } else {
                    T::ZERO
                };
            }
        }
    }
}

/// Packs `op(A)[i0..i0+mc, p0..p0+kc]` into `MR`-high strips `[kc][MR]`, zero-padded.
fn pack_a<T: Float>(a: View<T>, i0: usize, mc: usize, p0: usize, kc: usize, out: &mut [T]) {
    for (s, strip) in out
        .chunks_exact_mut(kc * MR)
        .take(mc.div_ceil(MR))
        .enumerate()
    {
        let i = i0 + s * MR;
        let h = MR.min(i0 + mc - i);
        for (p, dst) in strip.chunks_exact_mut(MR).enumerate() {
            for (ii, d) in dst.iter_mut().enumerate() {
                *d = if ii < h {
                    a.at(i + ii, p0 + p)
                } else {
                    T::ZERO
                };
            }
        }
    }
}

/// `C := beta·C` (C not read when beta is 0).
fn scale<T: Float>(m: usize, n: usize, beta: T, c: &mut [T], rs: usize, cs: usize) {
    if beta == T::ONE {
        return;
    }
    for i in 0..m {
        for j in 0..n {
            let x = &mut c[i * rs + j * cs];
            *x = if beta == T::ZERO { T::ZERO } else { beta * *x };
        }
    }
}

/// The blocked product; `pa` and `pb` are the packing buffers (grown, never shrunk).
#[allow(clippy::too_many_arguments)]
fn blocked<T: Float, const NR: usize>(
    isa: Isa,
    (m, n, k): (usize, usize, usize),
    alpha: T,
    a: View<T>,
    b: View<T>,
    beta: T,
    c: &mut [T],
    [crs, ccs]: [usize; 2],
    pa: &mut Vec<T>,
    pb: &mut Vec<T>,
) {
    scale(m, n, beta, c, crs, ccs);
    if k == 0 || alpha == T::ZERO {
        return;
    }
    let need_b = KC.min(k) * NC.min(n.div_ceil(NR) * NR);
    let need_a = KC.min(k) * MC.min(m.div_ceil(MR) * MR);
    if pb.len() < need_b {
        pb.resize(need_b, T::ZERO);
    }
    if pa.len() < need_a {
        pa.resize(need_a, T::ZERO);
    }
    for j0 in (0..n).step_by(NC) {
        let nc = NC.min(n - j0);
        for p0 in (0..k).step_by(KC) {
            let kc = KC.min(k - p0);
            pack_b::<T, NR>(b, p0, kc, j0, nc, pb);
            for i0 in (0..m).step_by(MC) {
                let mc = MC.min(m - i0);
                pack_a(a, i0, mc, p0, kc, pa);
                for (sj, bs) in pb.chunks_exact(kc * NR).take(nc.div_ceil(NR)).enumerate() {
                    let j = j0 + sj * NR;
                    let w = NR.min(n - j);
                    for (si, as_) in pa.chunks_exact(kc * MR).take(mc.div_ceil(MR)).enumerate() {
                        let i = i0 + si * MR;
                        let h = MR.min(m - i);
                        let acc = micro::<T, NR>(isa, as_, bs);
                        for (ii, row) in acc.iter().enumerate().take(h) {
                            let base = (i + ii) * crs + j * ccs;
                            for (jj, &v) in row.iter().enumerate().take(w) {
                                c[base + jj * ccs] += alpha * v;
                            }
                        }
                    }
                }
            }
        }
    }
}

macro_rules! entry {
    ($t:ident, $module:ident, $nr:literal) => {
        mod $module {
            use super::*;
            use std::cell::RefCell;

            thread_local! {
                static SCRATCH: RefCell<(Vec<$t>, Vec<$t>)> = const { RefCell::new((Vec::new(), Vec::new())) };
            }

            /// The product on the calling thread with the CPU's best micro-kernel.
            #[allow(clippy::too_many_arguments)]
            pub(crate) fn gemm(
                isa: Isa,
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
                let a = View { data: a, rs: ars, cs: acs };
                let b = View { data: b, rs: brs, cs: bcs };
                SCRATCH.with(|s| match s.try_borrow_mut() {
                    Ok(mut s) => {
                        let (pa, pb) = &mut *s;
                        blocked::<$t, $nr>(isa, mnk, alpha, a, b, beta, c, cs, pa, pb)
                    }
                    // Re-entered on this thread (never by bp itself): fresh buffers.
                    Err(_) => blocked::<$t, $nr>(isa, mnk, alpha, a, b, beta, c, cs, &mut Vec::new(), &mut Vec::new()),
                })
            }
        }
        pub(crate) use $module::gemm as $module;
    };
}

entry!(f32, gemm_f32, 16);
entry!(f64, gemm_f64, 8);

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::too_many_arguments)]
    fn naive(
        m: usize,
        n: usize,
        k: usize,
        alpha: f64,
        a: &[f64],
        sa: [usize; 2],
        b: &[f64],
        sb: [usize; 2],
        beta: f64,
        c: &mut [f64],
        sc: [usize; 2],
    ) {
        for i in 0..m {
            for j in 0..n {
                let s: f64 = (0..k)
                    .map(|p| a[i * sa[0] + p * sa[1]] * b[p * sb[0] + j * sb[1]])
                    .sum();
                let x = &mut c[i * sc[0] + j * sc[1]];
                *x = alpha * s + if beta == 0.0 { 0.0 } else { beta * *x };
            }
        }
    }

    fn data(n: usize, seed: u64) -> Vec<f64> {
        let mut r = crate::rng::Rng::new(seed);
        (0..n).map(|_| r.uniform(-1.0, 1.0)).collect()
    }

    fn isas() -> Vec<Isa> {
        let mut v = vec![Isa::Baseline];
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                v.push(Isa::Avx2);
            }
            if best_isa() == Isa::Avx512 {
                v.push(Isa::Avx512);
            }
        }
        v
    }

    #[test]
    fn every_path_matches_the_naive_product() {
        let shapes = [
            (1, 1, 1),
            (3, 5, 7),
            (8, 16, 3),
            (17, 33, 65),
            (97, 20, 300),
            (9, 1030, 5),
            (64, 10, 128),
        ];
        for isa in isas() {
            for &(m, n, k) in &shapes {
                for (ta, tb, tc) in [
                    (false, false, false),
                    (true, false, false),
                    (false, true, true),
                    (true, true, false),
                ] {
                    let sa = if ta { [1, m] } else { [k, 1] };
                    let sb = if tb { [1, k] } else { [n, 1] };
                    let sc = if tc { [1, m] } else { [n, 1] };
                    let (a, b, c0) = (data(m * k, 1), data(k * n, 2), data(m * n, 3));
                    let mut want = c0.clone();
                    naive(m, n, k, 0.7, &a, sa, &b, sb, 0.3, &mut want, sc);
                    let mut got = c0.clone();
                    gemm_f64(isa, (m, n, k), 0.7, &a, sa, &b, sb, 0.3, &mut got, sc);
                    for (g, w) in got.iter().zip(&want) {
                        assert!(
                            (g - w).abs() <= 1e-12 * (1.0 + w.abs()),
                            "{isa:?} {m}x{n}x{k} {ta}{tb}{tc}: {g} vs {w}"
                        );
                    }
                    let (a32, b32): (Vec<f32>, Vec<f32>) = (
                        a.iter().map(|&v| v as f32).collect(),
                        b.iter().map(|&v| v as f32).collect(),
                    );
                    let mut got32 = vec![f32::NAN; m * n];
                    gemm_f32(isa, (m, n, k), 0.7, &a32, sa, &b32, sb, 0.0, &mut got32, sc);
                    let mut want0 = vec![0.0; m * n];
                    naive(m, n, k, 0.7, &a, sa, &b, sb, 0.0, &mut want0, sc);
                    for (g, w) in got32.iter().zip(&want0) {
                        assert!(
                            (*g as f64 - w).abs() <= 1e-4 * (1.0 + w.abs()),
                            "{isa:?} f32 {m}x{n}x{k}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn zero_k_or_alpha_only_scales() {
        let mut c = vec![2.0f64; 6];
        gemm_f64(
            best_isa(),
            (2, 3, 0),
            1.0,
            &[],
            [0, 1],
            &[],
            [3, 1],
            0.5,
            &mut c,
            [3, 1],
        );
        assert_eq!(c, vec![1.0; 6]);
    }
}
