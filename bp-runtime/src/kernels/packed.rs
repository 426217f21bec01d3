//! bp's own GEMM: register-blocked, cache-blocked, and allocation-free once warm (its
//! one packing buffer lives in thread-local storage and keeps its capacity), so a
//! training step that runs the same products again never touches the heap.
//!
//! `C := alpha·op(A)·op(B) + beta·C`, each operand a slice with
//! `[row stride, column stride]`. The loops are those of BLIS — `C` is cut into `NC`-wide
//! column panels, the sum over `k` into `KC` slices and the rows into `MC` blocks, and a
//! micro-kernel multiplies an `MR`-row strip of `op(A)` by an `NR`-column strip of
//! `op(B)` into an `MR×NR` block of accumulators held in registers — with one
//! difference that matters for the small and medium products of a network: **nothing is
//! packed that can be read in place.**
//!
//! - `op(A)` is read in place, whatever its strides: the micro-kernel broadcasts one
//!   element per row and step, and a broadcast costs the same from any address. Only
//!   the last strip of a block, when it has fewer than `MR` rows, is copied into a
//!   zero-padded strip of the next kernel height (4, 8 or `MR`).
//! - `op(B)` is read in place when its rows are contiguous (column stride 1: the `B`
//!   of `A·B` and of `Aᵀ·B`, i.e. a layer's input gradient and weight gradient). Only the
//!   `Bᵀ` of the forward product `x·Wᵀ` is packed into `NR`-wide strips, and the last,
//!   narrower strip of a panel.
//!
//! Packing is what made the textbook version slow on these shapes: a 64×784 by 784×128
//! product does as much copying as multiplying when both operands are packed.
//!
//! The kernels are plain Rust that the compiler vectorizes, compiled three times — for
//! AVX-512, for AVX2 with FMA, and for the baseline target, each with its own tile
//! (`MR×NR` = 12×32 `f32` on AVX-512: 24 of the 32 vector registers accumulate) — and the
//! fastest the CPU supports is chosen at run time. The `unsafe` here is of two kinds,
//! each argued where it stands: calling a `#[target_feature]` function after the feature
//! check, and the micro-kernel's unchecked loads, whose extent is checked once per tile.
//! Each has a safe twin (`packed/safe.rs`): a micro-kernel doing the same sums in the
//! same order with every load bounds-checked, a scalar transpose, and the same kernels
//! compiled for the baseline target. The tests
//! (`packed/tests.rs`) run the whole product through the twins (`safe::run`) and require
//! the same bits on random shapes, strides and tails, and compare every path with a
//! naive triple loop.

use crate::Float;

/// Depth of a slice of the sum. Deep, because a B strip read in place streams well from
/// L2, and every slice is one more pass over C (with a transposed C, a scalar one).
const KC: usize = 1024;
/// Rows of a block (a multiple of every `MR`).
const MC: usize = 96;
/// Columns of a panel of `op(B)` (a multiple of every `NR`).
const NC: usize = 2048;

/// A strided matrix operand.
#[derive(Clone, Copy)]
struct Mat<'a, T> {
    d: &'a [T],
    rs: usize,
    cs: usize,
}

/// Which compiled kernels run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Isa {
    Baseline,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

/// The best kernels this CPU runs.
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

/// An element type of the product, with its optional 16×16 transpose (used to pack a
/// transposed op(B); `false` means "not available, copy element by element").
pub(crate) trait Elem: Float {
    /// Writes the transpose of the 16×16 block at `src` (rows `srs` apart) to `dst`
    /// (rows `drs` apart), if this type and CPU have a fast way to.
    fn transpose16(_src: &[Self], _srs: usize, _dst: &mut [Self], _drs: usize) -> bool {
        false
    }
}

impl Elem for f64 {}

impl Elem for f32 {
    fn transpose16(src: &[f32], srs: usize, dst: &mut [f32], drs: usize) -> bool {
        #[cfg(target_arch = "x86_64")]
        if best_isa() == Isa::Avx512 && !safe::active() {
            assert!(src.len() > 15 * srs + 15 && dst.len() > 15 * drs + 15);
            // SAFETY: the CPU has avx512f (best_isa), and the assert bounds every row
            // `transpose16_avx512` reads and writes.
            unsafe { transpose16_avx512(src, srs, dst, drs) };
            return true;
        }
        false
    }
}

/// The 16×16 transpose in registers: 16 loads, 64 shuffles, 16 stores.
///
/// # Safety
/// The CPU must have avx512f; `src` must hold 16 rows of 16 at `srs` apart and `dst` 16
/// rows of 16 at `drs` apart.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transpose16_avx512(src: &[f32], srs: usize, dst: &mut [f32], drs: usize) {
    use std::arch::x86_64::*;
    let mut r = [_mm512_setzero_ps(); 16];
    for (i, v) in r.iter_mut().enumerate() {
        // SAFETY: row i of 16 floats is inside src (the caller's contract).
        *v = unsafe { _mm512_loadu_ps(src.as_ptr().add(i * srs)) };
    }
    let mut t = [_mm512_setzero_ps(); 16];
    for k in 0..8 {
        t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
    let pd = _mm512_castps_pd;
    let ps = _mm512_castpd_ps;
    for k in 0..4 {
        let b = 4 * k;
        r[b] = ps(_mm512_unpacklo_pd(pd(t[b]), pd(t[b + 2])));
        r[b + 1] = ps(_mm512_unpackhi_pd(pd(t[b]), pd(t[b + 2])));
        r[b + 2] = ps(_mm512_unpacklo_pd(pd(t[b + 1]), pd(t[b + 3])));
        r[b + 3] = ps(_mm512_unpackhi_pd(pd(t[b + 1]), pd(t[b + 3])));
    }
    for k in 0..4 {
        t[k] = _mm512_shuffle_f32x4::<0x88>(r[k], r[k + 4]);
        t[k + 4] = _mm512_shuffle_f32x4::<0xdd>(r[k], r[k + 4]);
        t[k + 8] = _mm512_shuffle_f32x4::<0x88>(r[k + 8], r[k + 12]);
        t[k + 12] = _mm512_shuffle_f32x4::<0xdd>(r[k + 8], r[k + 12]);
    }
    for k in 0..8 {
        r[k] = _mm512_shuffle_f32x4::<0x88>(t[k], t[k + 8]);
        r[k + 8] = _mm512_shuffle_f32x4::<0xdd>(t[k], t[k + 8]);
    }
    for (i, v) in r.iter().enumerate() {
        // SAFETY: row i of 16 floats is inside dst (the caller's contract).
        unsafe { _mm512_storeu_ps(dst.as_mut_ptr().add(i * drs), *v) };
    }
}

/// `Σ_p A[i, p]·B[p, j]` for `i < R`, `j < NR`, `p < kc`, with `A[i, p]` at
/// `a + i·ars + p·acs` and `B[p, j]` at `b + p·brs + j`.
///
/// # Safety
/// Every one of those addresses must be inside one live allocation of initialized `T`
/// (`kc ≥ 1`): the caller checks the largest offset of each operand against its slice.
#[inline(always)]
unsafe fn micro<T: Elem, const R: usize, const NR: usize, const FMA: bool>(
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
fn tile<T: Elem, const R: usize, const NR: usize, const FMA: bool>(
    kc: usize,
    a: Mat<T>,
    a0: usize,
    b: Mat<T>,
    b0: usize,
    (h, w): (usize, usize),
    alpha: T,
    beta: T,
    first: bool,
    c: &mut [T],
    c0: usize,
    [crs, ccs]: [usize; 2],
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
    let put = |o: &mut T, v: T| {
        *o = if !first || beta == T::ONE {
            *o + alpha * v
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
            for (o, row) in out.iter_mut().zip(&acc) {
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

/// Copies `op(B)[p0..p0+kc, j..j+w]` into a `[kc][NR]` strip, zero-padded to `NR`.
fn pack_b<T: Elem, const NR: usize>(
    b: Mat<T>,
    p0: usize,
    kc: usize,
    j: usize,
    w: usize,
    out: &mut [T],
) {
    let out = &mut out[..kc * NR];
    if b.rs == 1 {
        // Bᵀ stored row-major (the forward x·Wᵀ): column j+jj of B is contiguous in p.
        if w < NR {
            out.fill(T::ZERO);
        }
        // By blocks of 16 steps, so the rows being filled stay in L1; whole 16×16 tiles
        // through the type's transpose where it has one.
        for (blk, dst) in out.chunks_mut(16 * NR).enumerate() {
            let p = p0 + blk * 16;
            let mut done = 0;
            if dst.len() == 16 * NR {
                while done + 16 <= w {
                    let src = &b.d[(j + done) * b.cs + p..];
                    if !T::transpose16(src, b.cs, &mut dst[done..], NR) {
                        break;
                    }
                    done += 16;
                }
            }
            for jj in done..w {
                let col = &b.d[(j + jj) * b.cs + p..][..dst.len() / NR];
                for (d, &v) in dst.chunks_exact_mut(NR).zip(col) {
                    d[jj] = v;
                }
            }
        }
    } else {
        for (p, dst) in out.chunks_exact_mut(NR).enumerate() {
            let row = (p0 + p) * b.rs + j * b.cs;
            for (jj, d) in dst.iter_mut().enumerate() {
                *d = if jj < w {
                    b.d[row + jj * b.cs]
                } else {
                    T::ZERO
                };
            }
        }
    }
}

/// Copies the `h` rows `op(A)[i.., p0..p0+kc]` into a `[kc][R]` strip, zero-padded to
/// `R` rows.
fn pack_a<T: Elem, const R: usize>(
    a: Mat<T>,
    i: usize,
    h: usize,
    p0: usize,
    kc: usize,
    out: &mut [T],
) {
    let out = &mut out[..kc * R];
    if a.cs == 1 {
        // Row-major: by blocks of 16 steps, reading each row contiguously while the
        // block being filled stays in L1.
        if h < R {
            out.fill(T::ZERO);
        }
        for (blk, dst) in out.chunks_mut(16 * R).enumerate() {
            let p = p0 + blk * 16;
            for ii in 0..h {
                let row = &a.d[(i + ii) * a.rs + p..][..dst.len() / R];
                for (d, &v) in dst.chunks_exact_mut(R).zip(row) {
                    d[ii] = v;
                }
            }
        }
    } else if a.rs == 1 {
        // Column-major: each step's h elements are contiguous.
        for (p, dst) in out.chunks_exact_mut(R).enumerate() {
            let (d, pad) = dst.split_at_mut(h);
            d.copy_from_slice(&a.d[(p0 + p) * a.cs + i..][..h]);
            pad.fill(T::ZERO);
        }
    } else {
        for (p, dst) in out.chunks_exact_mut(R).enumerate() {
            for (ii, d) in dst.iter_mut().enumerate() {
                *d = if ii < h {
                    a.d[(i + ii) * a.rs + (p0 + p) * a.cs]
                } else {
                    T::ZERO
                };
            }
        }
    }
}

/// `C := beta·C` over the `[m, n]` elements of C (C not read when beta is 0, as in BLAS).
pub(crate) fn scale<T: Float>(m: usize, n: usize, beta: T, c: &mut [T], [rs, cs]: [usize; 2]) {
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

/// The blocked product with `MR×NR` tiles; `scratch` is the packing buffer (grown,
/// never shrunk). The caller has checked that every operand fits its slice.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn blocked<T: Elem, const MR: usize, const NR: usize, const FMA: bool>(
    (m, n, k): (usize, usize, usize),
    alpha: T,
    a: Mat<T>,
    b: Mat<T>,
    beta: T,
    c: &mut [T],
    cs: [usize; 2],
    scratch: &mut Vec<T>,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 || alpha == T::ZERO {
        return scale(m, n, beta, c, cs);
    }
    // Choose between C = op(A)·op(B) and Cᵀ = op(B)ᵀ·op(A)ᵀ by a cost model in cycles:
    // FMAs on whole tiles (columns are rounded up to NR: a 10-wide C wastes two thirds of
    // a 32-wide tile), plus packing op(B) where its rows are not contiguous (about 1.3
    // cycles an element), plus storing C, by vector when its rows are contiguous.
    let cost = |m: usize, n: usize, b: Mat<T>, cs: [usize; 2]| {
        let lanes = NR.min(16);
        let work = m.div_ceil(4) * 4 * n.div_ceil(NR) * NR * k / lanes;
        let packed = if b.cs == 1 || n == 1 { n % NR } else { n };
        let stores = m * n * k.div_ceil(KC) / if cs[1] == 1 { lanes } else { 1 };
        work + k * packed * 13 / 10 + stores
    };
    let a_t = Mat {
        d: a.d,
        rs: a.cs,
        cs: a.rs,
    };
    if cost(n, m, a_t, [cs[1], cs[0]]) < cost(m, n, b, cs) {
        let b_t = Mat {
            d: b.d,
            rs: b.cs,
            cs: b.rs,
        };
        let cs_t = [cs[1], cs[0]];
        return panels::<T, MR, NR, FMA>((n, m, k), alpha, b_t, a_t, beta, c, cs_t, scratch);
    }
    panels::<T, MR, NR, FMA>((m, n, k), alpha, a, b, beta, c, cs, scratch)
}

/// The loops of [`blocked`] once the roles are settled.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn panels<T: Elem, const MR: usize, const NR: usize, const FMA: bool>(
    (m, n, k): (usize, usize, usize),
    alpha: T,
    a: Mat<T>,
    b: Mat<T>,
    beta: T,
    c: &mut [T],
    cs: [usize; 2],
    scratch: &mut Vec<T>,
) {
    // B is read in place when its rows are contiguous (or it has one column).
    let direct_b = b.cs == 1 || n == 1;
    let kc_max = KC.min(k);
    let b_len = if direct_b {
        kc_max * NR
    } else {
        kc_max * NC.min(n.div_ceil(NR) * NR)
    };
    // Rows of a row-major A a multiple of 2 KiB apart fall into one or two L1 sets, and
    // the 12 rows a tile broadcasts from would evict each other: pack those blocks. The
    // same holds for the steps of a column-major A (the dyᵀ of a weight gradient, when
    // a layer has 512, 1024, … outputs): every step of the sum opens a line in the same
    // set, and a 256-step tile misses L1 on each (measured: 88 → 97 GFLOP/s on the
    // 1024×1024×256 weight gradient, `gemm_pick mlp`).
    let aliases = |stride: usize| (stride * std::mem::size_of::<T>()).is_multiple_of(2048);
    let pack_full = m > MR && ((a.cs == 1 && aliases(a.rs)) || (a.rs == 1 && aliases(a.cs)));
    let pf_len = if pack_full { kc_max * MC } else { 0 };
    let need = b_len + kc_max * MR + pf_len;
    if scratch.len() < need {
        scratch.resize(need, T::ZERO);
    }
    let (pb, rest) = scratch.split_at_mut(b_len);
    let (pa, pf) = rest.split_at_mut(kc_max * MR);
    for j0 in (0..n).step_by(NC) {
        let nc = NC.min(n - j0);
        let strips = nc.div_ceil(NR);
        for p0 in (0..k).step_by(KC) {
            let kc = KC.min(k - p0);
            let first = p0 == 0;
            if !direct_b {
                for s in 0..strips {
                    let j = j0 + s * NR;
                    pack_b::<T, NR>(b, p0, kc, j, NR.min(n - j), &mut pb[s * kc * NR..]);
                }
            } else if nc % NR != 0 {
                let j = j0 + (strips - 1) * NR;
                pack_b::<T, NR>(b, p0, kc, j, n - j, pb);
            }
            let pb: &[T] = pb;
            for i0 in (0..m).step_by(MC) {
                let mc = MC.min(m - i0);
                let full = mc / MR * MR;
                let h = mc - full;
                // The short strip, padded to the next kernel height, is packed once per
                // block; so are the full strips when their rows alias in L1.
                let rh = if h <= 4 && MR > 4 {
                    4
                } else if h <= 8 && MR > 8 {
                    8
                } else {
                    MR
                };
                if h > 0 {
                    let i = i0 + full;
                    match rh {
                        4 => pack_a::<T, 4>(a, i, h, p0, kc, pa),
                        8 => pack_a::<T, 8>(a, i, h, p0, kc, pa),
                        _ => pack_a::<T, MR>(a, i, h, p0, kc, pa),
                    }
                }
                if pack_full {
                    for (t, strip) in pf.chunks_exact_mut(kc * MR).take(full / MR).enumerate() {
                        pack_a::<T, MR>(a, i0 + t * MR, MR, p0, kc, strip);
                    }
                }
                let (pa, pf): (&[T], &[T]) = (pa, pf);
                for s in 0..strips {
                    let j = j0 + s * NR;
                    let w = NR.min(n - j);
                    let (bm, b0) = if direct_b && w == NR {
                        (b, p0 * b.rs + j)
                    } else {
                        let at = if direct_b { 0 } else { s * kc * NR };
                        (
                            Mat {
                                d: pb,
                                rs: NR,
                                cs: 1,
                            },
                            at,
                        )
                    };
                    let c_at = |i: usize| i * cs[0] + j * cs[1];
                    for (t, i) in (i0..i0 + full).step_by(MR).enumerate() {
                        let (am, a0) = if pack_full {
                            (
                                Mat {
                                    d: pf,
                                    rs: 1,
                                    cs: MR,
                                },
                                t * kc * MR,
                            )
                        } else {
                            (a, i * a.rs + p0 * a.cs)
                        };
                        tile::<T, MR, NR, FMA>(
                            kc,
                            am,
                            a0,
                            bm,
                            b0,
                            (MR, w),
                            alpha,
                            beta,
                            first,
                            c,
                            c_at(i),
                            cs,
                        );
                    }
                    if h > 0 {
                        let i = i0 + full;
                        macro_rules! short {
                            ($r:expr) => {
                                tile::<T, $r, NR, FMA>(
                                    kc,
                                    Mat {
                                        d: pa,
                                        rs: 1,
                                        cs: $r,
                                    },
                                    0,
                                    bm,
                                    b0,
                                    (h, w),
                                    alpha,
                                    beta,
                                    first,
                                    c,
                                    c_at(i),
                                    cs,
                                )
                            };
                        }
                        match rh {
                            4 => short!(4),
                            8 => short!(8),
                            _ => short!(MR),
                        }
                    }
                }
            }
        }
    }
}

macro_rules! entry {
    ($t:ident, $module:ident, $avx512:expr, $avx2:expr, $base:expr) => {
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

            fn run(isa: Isa, args: Args) {
                match isa {
                    Isa::Baseline => baseline(args),
                    // The safe twins (tests only): the same tiles and multiply-adds
                    // compiled for the baseline target, so the same bits.
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 if safe::active() => avx512_tiles(args),
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 if safe::active() => avx2_tiles(args),
                    // SAFETY: `isa` is Avx512 only when `best_isa` saw avx512f, avx2 and
                    // fma on this CPU (or a test forced a path it checked the CPU has).
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => unsafe { avx512(args) },
                    // SAFETY: as above, with avx2 and fma.
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => unsafe { avx2(args) },
                }
            }

            /// The product on the calling thread with the `isa` kernels. The caller has
            /// checked that every operand fits its slice.
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
                    Ok(mut s) => run(isa, (mnk, alpha, a, b, beta, c, cs, &mut s)),
                    // Re-entered on this thread (never by bp itself): a fresh buffer.
                    Err(_) => run(isa, (mnk, alpha, a, b, beta, c, cs, &mut Vec::new())),
                })
            }
        }
        pub(crate) use $module::gemm as $module;
    };
}

entry!(f32, gemm_f32, (12, 32), (6, 16), (4, 8));
entry!(f64, gemm_f64, (12, 16), (6, 8), (4, 4));

mod safe;
#[cfg(test)]
mod tests;
