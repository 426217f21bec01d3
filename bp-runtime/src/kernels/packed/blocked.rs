//! The loops of the product, as in BLIS: `NC`-wide column panels of C, `KC`-deep slices
//! of the sum and `MC`-row blocks, each block cut into `MR×NR` tiles (`tile.rs`). Which of
//! `C = op(A)·op(B)` and `Cᵀ = op(B)ᵀ·op(A)ᵀ` runs is chosen by a cost model.
#![forbid(unsafe_code)]

use super::gemv::gemv;
use super::isa::Elem;
use super::pack::{pack_a, pack_a_columns, pack_b};
use super::tile::tile;
use super::Mat;
use crate::Float;

/// Depth of a slice of the sum. Deep, because a B strip read in place streams well from
/// L2, and every slice is one more pass over C (with a transposed C, a scalar one).
const KC: usize = 1024;
/// Rows of a block (a multiple of every `MR`).
const MC: usize = 96;
/// Columns of a panel of `op(B)` (a multiple of every `NR`).
const NC: usize = 2048;

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
pub(super) fn blocked<T: Elem, const MR: usize, const NR: usize, const FMA: bool>(
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
    // One row or column of C from vectors contiguous along the sum: dot products, with
    // nothing packed (`gemv.rs`).
    if gemv::<T, FMA>((m, n, k), alpha, a, b, beta, c, cs) {
        return;
    }
    // Choose between C = op(A)·op(B) and Cᵀ = op(B)ᵀ·op(A)ᵀ by a cost model in cycles:
    // FMAs on whole tiles (columns are rounded up to NR: a 10-wide C wastes two thirds of
    // a 32-wide tile), plus packing op(B) where its rows are not contiguous (about 1.3
    // cycles an element), plus packing op(A) where its rows or columns alias in L1 (its
    // strided reads come from L2 or beyond: about 1.3 cycles an element too), plus storing
    // C, by vector when its rows are contiguous.
    let cost = |m: usize, n: usize, a: Mat<T>, b: Mat<T>, cs: [usize; 2]| {
        let lanes = NR.min(16);
        let work = m.div_ceil(4) * 4 * n.div_ceil(NR) * NR * k / lanes;
        let packed = if b.cs == 1 || n == 1 { n % NR } else { n };
        let packed_a = if packs_full::<T, MR>(m, a) { m } else { 0 };
        let stores = m * n * k.div_ceil(KC) / if cs[1] == 1 { lanes } else { 1 };
        work + k * (packed + packed_a) * 13 / 10 + stores
    };
    let a_t = Mat {
        d: a.d,
        rs: a.cs,
        cs: a.rs,
    };
    let b_t = Mat {
        d: b.d,
        rs: b.cs,
        cs: b.rs,
    };
    if cost(n, m, b_t, a_t, [cs[1], cs[0]]) < cost(m, n, a, b, cs) {
        let cs_t = [cs[1], cs[0]];
        return panels::<T, MR, NR, FMA>((n, m, k), alpha, b_t, a_t, beta, c, cs_t, scratch);
    }
    panels::<T, MR, NR, FMA>((m, n, k), alpha, a, b, beta, c, cs, scratch)
}

/// Whether the full strips of `op(A)` (`m` rows) are packed: when its rows (or, column-major,
/// its steps) are a multiple of 2 KiB apart (see [`panels`]).
fn packs_full<T, const MR: usize>(m: usize, a: Mat<T>) -> bool {
    let aliases = |stride: usize| (stride * std::mem::size_of::<T>()).is_multiple_of(2048);
    m > MR && ((a.cs == 1 && aliases(a.rs)) || (a.rs == 1 && aliases(a.cs)))
}

/// What every tile of one product shares, once [`blocked`] has settled the roles.
#[derive(Clone, Copy)]
struct Product<'a, T> {
    a: Mat<'a, T>,
    b: Mat<'a, T>,
    alpha: T,
    beta: T,
    /// C's `[row stride, column stride]`.
    cs: [usize; 2],
    /// Columns of C.
    n: usize,
    /// `op(B)` is read in place (its rows are contiguous, or it has one column).
    direct_b: bool,
    /// The full strips of `op(A)` are packed too (their rows alias in L1).
    pack_full: bool,
}

/// One column panel of C (`strips` strips of `NR` columns from `j0`) and one slice of the
/// sum (`kc` steps from `p0`; `first` when `p0` is 0).
#[derive(Clone, Copy)]
struct Panel {
    j0: usize,
    strips: usize,
    p0: usize,
    kc: usize,
    first: bool,
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
    let pack_full = packs_full::<T, MR>(m, a);
    let pf_len = if pack_full { kc_max * MC } else { 0 };
    let need = b_len + kc_max * MR + pf_len;
    if scratch.len() < need {
        scratch.resize(need, T::ZERO);
    }
    let (pb, rest) = scratch.split_at_mut(b_len);
    let (pa, pf) = rest.split_at_mut(kc_max * MR);
    let pr = Product {
        a,
        b,
        alpha,
        beta,
        cs,
        n,
        direct_b,
        pack_full,
    };
    for j0 in (0..n).step_by(NC) {
        let nc = NC.min(n - j0);
        let strips = nc.div_ceil(NR);
        for p0 in (0..k).step_by(KC) {
            let kc = KC.min(k - p0);
            if !direct_b {
                for s in 0..strips {
                    let j = j0 + s * NR;
                    pack_b::<T, NR>(b, p0, kc, j, NR.min(n - j), &mut pb[s * kc * NR..]);
                }
            } else if nc % NR != 0 {
                let j = j0 + (strips - 1) * NR;
                pack_b::<T, NR>(b, p0, kc, j, n - j, pb);
            }
            let panel = Panel {
                j0,
                strips,
                p0,
                kc,
                first: p0 == 0,
            };
            for i0 in (0..m).step_by(MC) {
                let rows = (i0, MC.min(m - i0));
                block::<T, MR, NR, FMA>(&pr, &panel, rows, pb, pa, pf, c);
            }
        }
    }
}

/// The `mc` rows from `i0` of one panel: packs what of `op(A)` needs packing (`pa`, `pf`)
/// and runs the panel's strips; `pb` holds the packed strips of `op(B)`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn block<T: Elem, const MR: usize, const NR: usize, const FMA: bool>(
    pr: &Product<T>,
    panel: &Panel,
    (i0, mc): (usize, usize),
    pb: &[T],
    pa: &mut [T],
    pf: &mut [T],
    c: &mut [T],
) {
    let (a, p0, kc) = (pr.a, panel.p0, panel.kc);
    let full = mc / MR * MR;
    let h = mc - full;
    // The short strip, padded to the next kernel height, is packed once per block; so
    // are the full strips when their rows alias in L1.
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
    if pr.pack_full && a.rs == 1 {
        pack_a_columns::<T, MR>(a, i0, full / MR, p0, kc, pf);
    } else if pr.pack_full {
        for (t, strip) in pf.chunks_exact_mut(kc * MR).take(full / MR).enumerate() {
            pack_a::<T, MR>(a, i0 + t * MR, MR, p0, kc, strip);
        }
    }
    for s in 0..panel.strips {
        strip::<T, MR, NR, FMA>(pr, panel, s, (i0, full, h, rh), [pb, pa, pf], c);
    }
}

/// The tiles of column strip `s` of a panel in the rows from `i0`: `full / MR` tiles of
/// `MR` rows, then, when `h > 0`, one of `h` rows computed `rh` high from the packed
/// short strip. `[pb, pa, pf]` are the packed parts of `op(B)` and `op(A)`.
#[inline(always)]
fn strip<T: Elem, const MR: usize, const NR: usize, const FMA: bool>(
    pr: &Product<T>,
    panel: &Panel,
    s: usize,
    (i0, full, h, rh): (usize, usize, usize, usize),
    [pb, pa, pf]: [&[T]; 3],
    c: &mut [T],
) {
    let (p0, kc, first, cs) = (panel.p0, panel.kc, panel.first, pr.cs);
    let j = panel.j0 + s * NR;
    let w = NR.min(pr.n - j);
    let (bm, b0) = if pr.direct_b && w == NR {
        (pr.b, p0 * pr.b.rs + j)
    } else {
        let at = if pr.direct_b { 0 } else { s * kc * NR };
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
    let (alpha, beta) = (pr.alpha, pr.beta);
    for (t, i) in (i0..i0 + full).step_by(MR).enumerate() {
        let (am, a0) = if pr.pack_full {
            (
                Mat {
                    d: pf,
                    rs: 1,
                    cs: MR,
                },
                t * kc * MR,
            )
        } else {
            (pr.a, i * pr.a.rs + p0 * pr.a.cs)
        };
        let (bw, c0) = ((MR, w), c_at(i));
        tile::<T, MR, NR, FMA>(kc, am, a0, bm, b0, bw, alpha, beta, first, c, c0, cs);
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
