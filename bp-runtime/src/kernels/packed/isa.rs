//! Which compiled kernels run ([`Isa`], [`best_isa`]), and the element types of the
//! product ([`Elem`]) with the AVX-512 16×16 transpose `f32` packs with. The `unsafe`
//! here is the call of that `#[target_feature]` transpose after the CPU check.

use super::safe;
use crate::Float;

/// Which compiled kernels run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Isa {
    Baseline,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

/// The register tile of the AVX-512 kernels (the other instruction sets have one each).
/// Both do the same multiply-adds in the same order for every element of C, so the
/// choice changes the speed, never the bits (`tests.rs` checks it).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Tile {
    /// 12 rows × 32 `f32` (16 `f64`) columns: 24 accumulators, 2 vector loads and 12
    /// broadcasts a step.
    Tall,
    /// 6 rows × 64 `f32` (32 `f64`) columns: 24 accumulators, 4 vector loads and 6
    /// broadcasts a step; half as many rows of A read in place at once.
    Wide,
}

/// The kernels a product runs: the instruction set and, for AVX-512, the tile.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Kernels {
    pub(crate) isa: Isa,
    pub(crate) tile: Tile,
}

impl Kernels {
    /// `isa` with its default tile.
    pub(crate) const fn of(isa: Isa) -> Kernels {
        Kernels {
            isa,
            tile: Tile::Tall,
        }
    }
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

/// Writes `dst[j·rows + i] = src[i·cols + j]` (`src` row-major `[rows, cols]`, `dst`
/// row-major `[cols, rows]`): whole 16×16 blocks through [`Elem::transpose16`] when the
/// type and CPU have it, every other element (and every element, when they do not) one
/// by one, in 16×16 blocks so both sides stay in cache.
///
/// # Panics
/// If `src` or `dst` is shorter than `rows·cols`.
pub(crate) fn transpose<T: Elem>(rows: usize, cols: usize, src: &[T], dst: &mut [T]) {
    let len = rows
        .checked_mul(cols)
        .expect("transpose: rows·cols overflows");
    assert!(
        src.len() >= len && dst.len() >= len,
        "transpose: [{rows}, {cols}] needs {len} elements (src {}, dst {})",
        src.len(),
        dst.len()
    );
    const B: usize = 16;
    let one_by_one = |dst: &mut [T], i0: usize, i1: usize, j0: usize, j1: usize| {
        for i in i0..i1 {
            for j in j0..j1 {
                dst[j * rows + i] = src[i * cols + j];
            }
        }
    };
    let mut fast = true;
    for i in (0..rows).step_by(B) {
        for j in (0..cols).step_by(B) {
            let (i1, j1) = ((i + B).min(rows), (j + B).min(cols));
            // A whole block at (i, j): `src` holds 16 rows of `cols` from `i·cols + j`
            // (the last ends at `(i + 15)·cols + j + 16 ≤ rows·cols`), `dst` likewise.
            if fast && i1 - i == B && j1 - j == B {
                fast = T::transpose16(&src[i * cols + j..], cols, &mut dst[j * rows + i..], rows);
                if fast {
                    continue;
                }
            }
            one_by_one(dst, i, i1, j, j1);
        }
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
