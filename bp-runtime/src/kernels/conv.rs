//! 2-D convolution (PyTorch's `nn.Conv2d` with square kernel, stride and zero padding,
//! no dilation, no groups) through im2col and [`gemm`].
//!
//! Per sample, the input `x[b]` is `[C, H, W]` and `im2col(x[b])` is the matrix `cols`
//! `[C·k·k, ho·wo]` with `cols[(c·k + i)·k + j, oy·wo + ox] = x[b, c, oy·s + i − p,
//! ox·s + j − p]` (0 outside the image). The weight `[out, C, k, k]` read as
//! `[out, C·k·k]` times `cols` is the output `[out, ho·wo]`; `col2im` is the adjoint of
//! `im2col` (it adds each column entry back to the pixel it came from).
#![forbid(unsafe_code)]

use super::gemm::gemm;
use super::reduce::sum_of;
use super::Accumulate;
use crate::Float;

/// Geometry of a 2-D convolution: input `[c, h, w]` per sample, weight
/// `[out, c, k, k]`, output `[out, ho, wo]` with `ho = (h + 2·pad − k)/stride + 1`
/// (rounded down), likewise `wo`. Requires `k ≤ h + 2·pad`, `k ≤ w + 2·pad`,
/// `stride ≥ 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeom {
    /// Input channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub out: usize,
    /// Kernel size (the kernel is `k × k`).
    pub k: usize,
    /// Stride, the same in both directions.
    pub stride: usize,
    /// Zero padding added on each side, the same in both directions.
    pub pad: usize,
}

impl Conv2dGeom {
    /// Output height `(h + 2·pad − k)/stride + 1`.
    pub const fn ho(&self) -> usize {
        (self.h + 2 * self.pad - self.k) / self.stride + 1
    }

    /// Output width `(w + 2·pad − k)/stride + 1`.
    pub const fn wo(&self) -> usize {
        (self.w + 2 * self.pad - self.k) / self.stride + 1
    }

    /// `C·k·k·ho·wo`: the length of the `cols` and `dcols` scratch buffers.
    pub const fn cols_len(&self) -> usize {
        self.c * self.k * self.k * self.ho() * self.wo()
    }

    /// `C·H·W`: elements of one input sample.
    pub const fn in_len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// `out·ho·wo`: elements of one output sample.
    pub const fn out_len(&self) -> usize {
        self.out * self.ho() * self.wo()
    }

    /// `out·C·k·k`: elements of the weight.
    pub const fn weight_len(&self) -> usize {
        self.out * self.c * self.k * self.k
    }

    /// A 1×1 kernel with stride 1 and no padding: `im2col(x) = x`, no copy needed.
    const fn is_pointwise(&self) -> bool {
        self.k == 1 && self.stride == 1 && self.pad == 0
    }
}

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
fn im2col<T: Float>(g: &Conv2dGeom, x: &[T], cols: &mut [T]) {
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
            dst[..xlo].fill(T::ZERO);
            dst[xhi..].fill(T::ZERO);
            if s == 1 {
                dst[xlo..xhi].copy_from_slice(&src[xlo + j - pad..xhi + j - pad]);
            } else {
                for (ox, d) in dst.iter_mut().enumerate().take(xhi).skip(xlo) {
                    *d = src[ox * s + j - pad];
                }
            }
        }
    }
}

/// `x += col2im(cols)` for one sample: the adjoint of [`im2col`].
fn col2im_add<T: Float>(g: &Conv2dGeom, cols: &[T], x: &mut [T]) {
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

/// `y[b] = W·im2col(x[b]) + bias`, i.e.
/// `y[b,o,oy,ox] = Σ_{c,i,j} w[o,c,i,j]·x[b,c,oy·s+i−p, ox·s+j−p] + bias[o]`
/// (zero outside the image), for `x` `[batch, C, H, W]`, `w` `[out, C, k, k]`,
/// `bias` `[out]`, `y` `[batch, out, ho, wo]` (overwritten). `cols` is scratch of
/// [`Conv2dGeom::cols_len`] elements.
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
#[allow(clippy::too_many_arguments)]
pub fn conv2d<T: Float>(
    g: &Conv2dGeom,
    batch: usize,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    y: &mut [T],
    cols: &mut [T],
) {
    debug_assert_eq!(x.len(), batch * g.in_len(), "conv2d: x");
    debug_assert_eq!(w.len(), g.weight_len(), "conv2d: w");
    debug_assert_eq!(y.len(), batch * g.out_len(), "conv2d: y");
    debug_assert_eq!(cols.len(), g.cols_len(), "conv2d: cols");
    let (ckk, p) = (g.c * g.k * g.k, g.ho() * g.wo());
    if p == 0 || g.out == 0 {
        return;
    }
    for b in 0..batch {
        let xb = &x[b * g.in_len()..][..g.in_len()];
        let yb = &mut y[b * g.out_len()..][..g.out_len()];
        let src: &[T] = if g.is_pointwise() {
            xb
        } else {
            im2col(g, xb, cols);
            cols
        };
        let beta = match bias {
            Some(bias) => {
                debug_assert_eq!(bias.len(), g.out, "conv2d: bias");
                for (row, &v) in yb.chunks_exact_mut(p).zip(bias) {
                    row.fill(v);
                }
                T::ONE
            }
            None => T::ZERO,
        };
        gemm(
            g.out,
            p,
            ckk,
            T::ONE,
            w,
            [ckk, 1],
            src,
            [p, 1],
            beta,
            yb,
            [p, 1],
        );
    }
}

/// The backward of [`conv2d`] for `dy` `[batch, out, ho, wo]`:
///
/// - `dw (+)= Σ_b dy[b]·im2col(x[b])ᵀ` (`[out, C·k·k]`);
/// - `db[o] (+)= Σ_{b,oy,ox} dy[b,o,oy,ox]` when `db` is given;
/// - `dx[b] (+)= col2im(Wᵀ·dy[b])` when `dx` is given (`[batch, C, H, W]`; pixels no
///   window covers get 0).
///
/// `acc_params` says whether `dw` and `db` are overwritten or added to, `acc_x` the same
/// for `dx`. `cols` and `dcols` are scratch of [`Conv2dGeom::cols_len`] elements each
/// (`dcols` is not touched, and may be empty, when `dx` is `None`).
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward<T: Float>(
    g: &Conv2dGeom,
    batch: usize,
    x: &[T],
    w: &[T],
    dy: &[T],
    dw: &mut [T],
    db: Option<&mut [T]>,
    acc_params: Accumulate,
    mut dx: Option<&mut [T]>,
    acc_x: Accumulate,
    cols: &mut [T],
    dcols: &mut [T],
) {
    check_backward(g, batch, [x, w, dy, dw, cols], dx.as_deref(), dcols);
    let (ckk, p, il, ol) = (g.c * g.k * g.k, g.ho() * g.wo(), g.in_len(), g.out_len());
    if let Some(db) = db {
        bias_grad(g, batch, dy, db, acc_params);
    }
    if p == 0 {
        // No output pixel: nothing reaches dw or dx.
        if !acc_params.is_add() {
            dw.fill(T::ZERO);
        }
        if let Some(dx) = dx.filter(|_| !acc_x.is_add()) {
            dx.fill(T::ZERO);
        }
        return;
    }
    if batch == 0 && !acc_params.is_add() {
        dw.fill(T::ZERO);
    }
    for b in 0..batch {
        let xb = &x[b * il..][..il];
        let dyb = &dy[b * ol..][..ol];
        let src: &[T] = if g.is_pointwise() {
            xb
        } else {
            im2col(g, xb, cols);
            cols
        };
        // The first sample overwrites or adds as asked, the others add.
        let acc = if b == 0 { acc_params } else { Accumulate::Add };
        // dW [out, ckk] (+)= dy_b [out, p] · colsᵀ (cols [ckk, p] read with strides [1, p]).
        gemm(
            g.out,
            ckk,
            p,
            T::ONE,
            dyb,
            [p, 1],
            src,
            [1, p],
            acc.beta(),
            dw,
            [ckk, 1],
        );
        if let Some(dx) = dx.as_deref_mut() {
            input_grad(g, w, dyb, &mut dx[b * il..][..il], acc_x, dcols);
        }
    }
}

/// Debug-build length checks of [`conv2d_backward`]: `[x, w, dy, dw, cols]`, `dx` and
/// `dcols` (the last two only when `dx` is given).
fn check_backward<T: Float>(
    g: &Conv2dGeom,
    batch: usize,
    [x, w, dy, dw, cols]: [&[T]; 5],
    dx: Option<&[T]>,
    dcols: &[T],
) {
    debug_assert_eq!(x.len(), batch * g.in_len(), "conv2d_backward: x");
    debug_assert_eq!(w.len(), g.weight_len(), "conv2d_backward: w");
    debug_assert_eq!(dy.len(), batch * g.out_len(), "conv2d_backward: dy");
    debug_assert_eq!(dw.len(), g.weight_len(), "conv2d_backward: dw");
    debug_assert_eq!(cols.len(), g.cols_len(), "conv2d_backward: cols");
    if let Some(dx) = dx {
        debug_assert_eq!(dx.len(), batch * g.in_len(), "conv2d_backward: dx");
        debug_assert_eq!(dcols.len(), g.cols_len(), "conv2d_backward: dcols");
    }
}

/// `db[o] (+)= Σ_{b,oy,ox} dy[b,o,oy,ox]`.
fn bias_grad<T: Float>(g: &Conv2dGeom, batch: usize, dy: &[T], db: &mut [T], acc: Accumulate) {
    debug_assert_eq!(db.len(), g.out, "conv2d_backward: db");
    if !acc.is_add() {
        db.fill(T::ZERO);
    }
    let p = g.ho() * g.wo();
    if p == 0 {
        return;
    }
    for dyb in dy.chunks_exact(g.out_len()).take(batch) {
        for (d, row) in db.iter_mut().zip(dyb.chunks_exact(p)) {
            *d += sum_of(row);
        }
    }
}

/// `dx (+)= col2im(Wᵀ·dy)` for one sample (`dx` `[C, H, W]`, `dy` `[out, ho, wo]`);
/// `dcols` is scratch unless the kernel is pointwise, when the product goes to `dx`
/// directly.
fn input_grad<T: Float>(
    g: &Conv2dGeom,
    w: &[T],
    dy: &[T],
    dx: &mut [T],
    acc: Accumulate,
    dcols: &mut [T],
) {
    let (ckk, p) = (g.c * g.k * g.k, g.ho() * g.wo());
    // Wᵀ · dy [ckk, p] (W [out, ckk] read with strides [1, ckk]).
    let product = |beta: T, out: &mut [T]| {
        gemm(
            ckk,
            p,
            g.out,
            T::ONE,
            w,
            [1, ckk],
            dy,
            [p, 1],
            beta,
            out,
            [p, 1],
        )
    };
    if g.is_pointwise() {
        product(acc.beta(), dx);
    } else {
        product(T::ZERO, dcols);
        if !acc.is_add() {
            dx.fill(T::ZERO);
        }
        col2im_add(g, dcols, dx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::fd_check::{assert_grad, dot, fd_grad, nans, rand_vec};
    use Accumulate::{Add, Overwrite};

    /// Direct convolution: `y[b,o,oy,ox] = bias[o] + Σ_{c,i,j} w[o,c,i,j]·x[b,c,iy,ix]`
    /// with `iy = oy·s + i − p`, `ix = ox·s + j − p`, terms outside the image skipped.
    fn naive(g: &Conv2dGeom, batch: usize, x: &[f64], w: &[f64], bias: Option<&[f64]>) -> Vec<f64> {
        let (ho, wo, k) = (g.ho(), g.wo(), g.k);
        let mut y = vec![0.0; batch * g.out_len()];
        for b in 0..batch {
            for o in 0..g.out {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let mut s = bias.map_or(0.0, |bias| bias[o]);
                        for c in 0..g.c {
                            for i in 0..k {
                                for j in 0..k {
                                    let iy = (oy * g.stride + i) as isize - g.pad as isize;
                                    let ix = (ox * g.stride + j) as isize - g.pad as isize;
                                    if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize
                                    {
                                        continue;
                                    }
                                    let xi =
                                        ((b * g.c + c) * g.h + iy as usize) * g.w + ix as usize;
                                    s += w[((o * g.c + c) * k + i) * k + j] * x[xi];
                                }
                            }
                        }
                        y[((b * g.out + o) * ho + oy) * wo + ox] = s;
                    }
                }
            }
        }
        y
    }

    fn geom(
        c: usize,
        h: usize,
        w: usize,
        out: usize,
        k: usize,
        stride: usize,
        pad: usize,
    ) -> Conv2dGeom {
        Conv2dGeom {
            c,
            h,
            w,
            out,
            k,
            stride,
            pad,
        }
    }

    const GEOMS: &[Conv2dGeom] = &[
        Conv2dGeom {
            c: 2,
            h: 5,
            w: 4,
            out: 3,
            k: 3,
            stride: 2,
            pad: 1,
        },
        Conv2dGeom {
            c: 3,
            h: 6,
            w: 7,
            out: 2,
            k: 3,
            stride: 1,
            pad: 0,
        },
        Conv2dGeom {
            c: 2,
            h: 4,
            w: 5,
            out: 3,
            k: 2,
            stride: 3,
            pad: 2,
        },
        Conv2dGeom {
            c: 3,
            h: 3,
            w: 4,
            out: 2,
            k: 1,
            stride: 1,
            pad: 0,
        },
        Conv2dGeom {
            c: 1,
            h: 2,
            w: 2,
            out: 1,
            k: 4,
            stride: 1,
            pad: 1,
        },
    ];

    #[test]
    fn geometry() {
        let g = geom(2, 5, 4, 3, 3, 2, 1);
        assert_eq!((g.ho(), g.wo(), g.cols_len()), (3, 2, 2 * 9 * 6));
        assert_eq!((g.in_len(), g.out_len(), g.weight_len()), (40, 18, 54));
    }

    #[test]
    fn hand_computed_forward() {
        // x = [[1 2] [3 4]], 2×2 kernel of ones, pad 1, stride 1: each output sums the
        // image pixels under the window: [[1 3 2] [4 10 6] [3 7 4]] + bias 0.5.
        let g = geom(1, 2, 2, 1, 2, 1, 1);
        let mut y = [0.0f32; 9];
        let mut cols = vec![0.0f32; g.cols_len()];
        conv2d(
            &g,
            1,
            &[1.0, 2.0, 3.0, 4.0],
            &[1.0; 4],
            Some(&[0.5]),
            &mut y,
            &mut cols,
        );
        let want = [1.0, 3.0, 2.0, 4.0, 10.0, 6.0, 3.0, 7.0, 4.0].map(|v| v + 0.5);
        assert_eq!(y, want);
    }

    #[test]
    fn forward_matches_direct_convolution() {
        for (n, g) in GEOMS.iter().enumerate() {
            let batch = 2;
            let s = 10 * n as u64;
            let (x, w, bias) = (
                rand_vec(batch * g.in_len(), s),
                rand_vec(g.weight_len(), s + 1),
                rand_vec(g.out, s + 2),
            );
            for with_bias in [true, false] {
                let bias = with_bias.then_some(&bias[..]);
                let mut y = nans(batch * g.out_len());
                let mut cols = nans(g.cols_len());
                conv2d(g, batch, &x, &w, bias, &mut y, &mut cols);
                assert_grad(&y, &naive(g, batch, &x, &w, bias), "y");
            }
            // f32 agrees with the f64 reference to f32 precision.
            let f = |v: &[f64]| v.iter().map(|&v| v as f32).collect::<Vec<f32>>();
            let mut y = vec![0.0f32; batch * g.out_len()];
            let mut cols = vec![0.0f32; g.cols_len()];
            conv2d(g, batch, &f(&x), &f(&w), Some(&f(&bias)), &mut y, &mut cols);
            for (a, b) in y.iter().zip(naive(g, batch, &x, &w, Some(&bias))) {
                assert!((f64::from(*a) - b).abs() < 1e-5, "{a} vs {b}");
            }
        }
    }

    /// J = Σ R⊙conv2d(x, W, b): the backward fed dy = R equals the central differences
    /// of J with respect to x, W and b; accumulation adds to what was there.
    #[test]
    fn backward_matches_finite_differences() {
        for (n, g) in GEOMS.iter().enumerate() {
            let batch = 2;
            let s = 100 + 10 * n as u64;
            let (x, w, bias) = (
                rand_vec(batch * g.in_len(), s),
                rand_vec(g.weight_len(), s + 1),
                rand_vec(g.out, s + 2),
            );
            let r = rand_vec(batch * g.out_len(), s + 3);
            let j =
                |x: &[f64], w: &[f64], bias: &[f64]| dot(&r, &naive(g, batch, x, w, Some(bias)));
            let want_dx = fd_grad(&x, 1e-3, |x| j(x, &w, &bias));
            let want_dw = fd_grad(&w, 1e-3, |w| j(&x, w, &bias));
            let want_db = fd_grad(&bias, 1e-3, |b| j(&x, &w, b));
            let (mut dw, mut db, mut dx) = (nans(w.len()), nans(g.out), nans(x.len()));
            let (mut cols, mut dcols) = (nans(g.cols_len()), nans(g.cols_len()));
            conv2d_backward(
                g,
                batch,
                &x,
                &w,
                &r,
                &mut dw,
                Some(&mut db),
                Overwrite,
                Some(&mut dx),
                Overwrite,
                &mut cols,
                &mut dcols,
            );
            assert_grad(&dx, &want_dx, "dx");
            assert_grad(&dw, &want_dw, "dw");
            assert_grad(&db, &want_db, "db");
            // A second call that accumulates doubles everything.
            conv2d_backward(
                g,
                batch,
                &x,
                &w,
                &r,
                &mut dw,
                Some(&mut db),
                Add,
                Some(&mut dx),
                Add,
                &mut cols,
                &mut dcols,
            );
            let twice = |v: &[f64]| v.iter().map(|v| 2.0 * v).collect::<Vec<_>>();
            assert_grad(&dx, &twice(&want_dx), "dx accumulated");
            assert_grad(&dw, &twice(&want_dw), "dw accumulated");
            assert_grad(&db, &twice(&want_db), "db accumulated");
            // Without db and dx, dw alone (dcols may be empty).
            let mut dw2 = nans(w.len());
            conv2d_backward(
                g,
                batch,
                &x,
                &w,
                &r,
                &mut dw2,
                None,
                Overwrite,
                None,
                Overwrite,
                &mut cols,
                &mut [],
            );
            assert_grad(&dw2, &want_dw, "dw alone");
        }
    }
}
