//! `im2col` and its adjoint `col2im` for one sample (see the parent module's docs).

use super::Conv2dGeom;
use crate::Float;

/// The outputs `o` in `lo..hi` (of `n_out`) whose input index `o·s + j − pad` lies in
/// `0..size`.
fn valid_range(n_out: usize, size: usize, s: usize, j: usize, pad: usize) -> (usize, usize) {
    let lo = if j >= pad { 0 } else { (pad - j).div_ceil(s) };
    let hi = if size + pad > j {
        ((size + pad - j - 1) / s + 1).min(n_out)
    } else {
        0
    };
    (lo.min(hi), hi)
}

/// `cols := im2col(x)` for one sample `x` `[C, H, W]`; `cols` is `[C·k·k, ho·wo]`.
pub(super) fn im2col<T: Float>(g: &Conv2dGeom, x: &[T], cols: &mut [T]) {
    let (ho, wo, s, pad) = (g.ho(), g.wo(), g.stride, g.pad);
    let (hw, p) = (g.h * g.w, ho * wo);
    for ((ch, i, j), row) in kernel_rows(g).zip(cols.chunks_exact_mut(p)) {
        let plane = &x[ch * hw..(ch + 1) * hw];
        let (ylo, yhi) = valid_range(ho, g.h, s, i, pad);
        let (xlo, xhi) = valid_range(wo, g.w, s, j, pad);
        for (oy, dst) in row.chunks_exact_mut(wo).enumerate() {
            if oy < ylo || oy >= yhi {
                dst.fill(T::ZERO);
                continue;
            }
            let src = &plane[(oy * s + i - pad) * g.w..][..g.w];
            // Rows of a small image are a few dozen elements: no library call for an
            // empty fill, and the copy inlined (LeNet at batch 1 makes 2,200 of these
            // rows, and the calls cost more than the copying: 40% of its inference).
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
    let (ho, wo, s, pad) = (g.ho(), g.wo(), g.stride, g.pad);
    let (hw, p) = (g.h * g.w, ho * wo);
    for ((ch, i, j), row) in kernel_rows(g).zip(cols.chunks_exact(p)) {
        let plane = &mut x[ch * hw..(ch + 1) * hw];
        let (ylo, yhi) = valid_range(ho, g.h, s, i, pad);
        let (xlo, xhi) = valid_range(wo, g.w, s, j, pad);
        for oy in ylo..yhi {
            let src = &row[oy * wo..][..wo];
            let dst = &mut plane[(oy * s + i - pad) * g.w..][..g.w];
            for ox in xlo..xhi {
                dst[ox * s + j - pad] += src[ox];
            }
        }
    }
}

/// The rows of `cols` in order: (channel, kernel row, kernel column).
fn kernel_rows(g: &Conv2dGeom) -> impl Iterator<Item = (usize, usize, usize)> {
    let k = g.k;
    (0..g.c).flat_map(move |ch| (0..k * k).map(move |ij| (ch, ij / k, ij % k)))
}
