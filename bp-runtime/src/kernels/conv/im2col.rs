//! `im2col` and its adjoint `col2im` for one sample (see the parent module's docs).

use super::Conv2dGeom;
use crate::Float;

/// The outputs `o` in `lo..hi` (of `n_out`) whose input index `o·s + j − pad` lies in
/// `0..size`. Without a division at stride 1 (the common case: the divisions of the
/// general formula, once per kernel row and channel, took 6 % of LeNet's inference).
#[inline(always)]
fn valid_range(n_out: usize, size: usize, s: usize, j: usize, pad: usize) -> (usize, usize) {
    let (lo, hi) = if s == 1 {
        (pad.saturating_sub(j), (size + pad).saturating_sub(j))
    } else {
        let lo = if j >= pad { 0 } else { (pad - j).div_ceil(s) };
        let hi = if size + pad > j {
            (size + pad - j - 1) / s + 1
        } else {
            0
        };
        (lo, hi)
    };
    let hi = hi.min(n_out);
    (lo.min(hi), hi)
}

/// `cols := im2col(x)` for one sample `x` `[C, H, W]`; `cols` is `[C·k·k, ho·wo]`.
pub(super) fn im2col<T: Float>(g: &Conv2dGeom, x: &[T], cols: &mut [T]) {
    let (ho, wo, s, pad, k) = (g.ho(), g.wo(), g.stride, g.pad, g.k);
    let (hw, p) = (g.h * g.w, ho * wo);
    let mut rows = cols.chunks_exact_mut(p);
    for plane in x.chunks_exact(hw).take(g.c) {
        for i in 0..k {
            let (ylo, yhi) = valid_range(ho, g.h, s, i, pad);
            for j in 0..k {
                let (xlo, xhi) = valid_range(wo, g.w, s, j, pad);
                let Some(row) = rows.next() else { return };
                // Output rows whose input row is padding, above and below: zeros.
                let (above, rest) = row.split_at_mut(ylo * wo);
                let (inside, below) = rest.split_at_mut((yhi - ylo) * wo);
                above.fill(T::ZERO);
                below.fill(T::ZERO);
                for (oy, dst) in (ylo..yhi).zip(inside.chunks_exact_mut(wo)) {
                    let src = &plane[(oy * s + i - pad) * g.w..][..g.w];
                    // Rows of a small image are a few dozen elements: no library call
                    // for an empty fill, and the copy inlined (LeNet at batch 1 makes
                    // 2,200 of these rows, and the calls cost more than the copying).
                    if xlo > 0 {
                        dst[..xlo].fill(T::ZERO);
                    }
                    if xhi < wo {
                        dst[xhi..].fill(T::ZERO);
                    }
                    if s == 1 {
                        copy_short(&mut dst[xlo..xhi], &src[xlo + j - pad..xhi + j - pad]);
                    } else {
                        for (ox, d) in dst.iter_mut().enumerate().take(xhi).skip(xlo) {
                            *d = src[ox * s + j - pad];
                        }
                    }
                }
            }
        }
    }
}

/// `dst := src` (of equal lengths) in 8-element blocks the compiler inlines, for short
/// rows where a `memcpy` call costs more than the copy.
#[inline(always)]
fn copy_short<T: Float>(dst: &mut [T], src: &[T]) {
    let (dc, dt) = dst.as_chunks_mut::<8>();
    let (sc, st) = src.as_chunks::<8>();
    for (d, s) in dc.iter_mut().zip(sc) {
        *d = *s;
    }
    for (d, s) in dt.iter_mut().zip(st) {
        *d = *s;
    }
}

/// `x += col2im(cols)` for one sample: the adjoint of [`im2col`].
pub(super) fn col2im_add<T: Float>(g: &Conv2dGeom, cols: &[T], x: &mut [T]) {
    let (ho, wo, s, pad, k) = (g.ho(), g.wo(), g.stride, g.pad, g.k);
    let (hw, p) = (g.h * g.w, ho * wo);
    let mut rows = cols.chunks_exact(p);
    for plane in x.chunks_exact_mut(hw).take(g.c) {
        for i in 0..k {
            let (ylo, yhi) = valid_range(ho, g.h, s, i, pad);
            for j in 0..k {
                let (xlo, xhi) = valid_range(wo, g.w, s, j, pad);
                let Some(row) = rows.next() else { return };
                for oy in ylo..yhi {
                    let src = &row[oy * wo..][..wo];
                    let dst = &mut plane[(oy * s + i - pad) * g.w..][..g.w];
                    for ox in xlo..xhi {
                        dst[ox * s + j - pad] += src[ox];
                    }
                }
            }
        }
    }
}
