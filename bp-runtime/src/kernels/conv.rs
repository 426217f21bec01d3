//! 2-D convolution (PyTorch's `nn.Conv2d` with square kernel, stride and zero padding,
//! no dilation, no groups) through im2col and [`gemm`].
//!
//! Per sample, the input `x[b]` is `[C, H, W]` and `im2col(x[b])` is the matrix `cols`
//! `[C·k·k, ho·wo]` with `cols[(c·k + i)·k + j, oy·wo + ox] = x[b, c, oy·s + i − p,
//! ox·s + j − p]` (0 outside the image). The weight `[out, C, k, k]` read as
//! `[out, C·k·k]` times `cols` is the output `[out, ho·wo]`; `col2im` is the adjoint of
//! `im2col` (it adds each column entry back to the pixel it came from).
#![forbid(unsafe_code)]

mod im2col;

use super::gemm::{gemm_on, threads};
use super::reduce::sum_of;
use super::{split, Accumulate};
use crate::threads::MAX_CHUNKS;
use crate::Float;
use im2col::{col2im_add, im2col};

/// The least output channels per thread for which one sample's products (at batch 1, or
/// whenever the batch is not split) are cut over threads. Such a product is cut by rows,
/// so every thread reads all of the im2col columns the calling thread has just written,
/// and the cache lines cross between cores on every call. Measured on the 2-core AMD
/// EPYC (Zen 4) with `cargo run --release -p bp-runtime --example gemm_pick -- conv`
/// (`conv2d` at batch 1, 1 against 2 threads): 32 or fewer channels per thread lose at
/// every size (3→32 at 32×32: 0.4–0.7×; 32→64 at 16×16: 0.8×; 64→64 at 16×16: 0.75×;
/// LeNet's 8→16: 0.9×), 64 or more win (64→128 at 16×16: 1.35×; 128→256 at 8×8: 1.5×).
/// See `bp-runtime/GEMM.md`, "Thresholds".
pub const SAMPLE_SPLIT_CHANNELS: usize = 64;

/// The threads one sample's products may use: `threads` when each gets at least
/// [`SAMPLE_SPLIT_CHANNELS`] output channels, else 1.
fn sample_threads(g: &Conv2dGeom, threads: usize) -> usize {
    if g.out >= SAMPLE_SPLIT_CHANNELS * threads {
        threads
    } else {
        1
    }
}

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

    /// Multiply-adds of one sample's forward: `out·C·k·k·ho·wo`.
    pub const fn macs(&self) -> usize {
        self.out * self.c * self.k * self.k * self.ho() * self.wo()
    }

    /// A 1×1 kernel with stride 1 and no padding: `im2col(x) = x`, no copy needed.
    const fn is_pointwise(&self) -> bool {
        self.k == 1 && self.stride == 1 && self.pad == 0
    }
}

/// `y[b] = W·im2col(x[b]) + bias`, i.e.
/// `y[b,o,oy,ox] = Σ_{c,i,j} w[o,c,i,j]·x[b,c,oy·s+i−p, ox·s+j−p] + bias[o]`
/// (zero outside the image), for `x` `[batch, C, H, W]`, `w` `[out, C, k, k]`,
/// `bias` `[out]`, `y` `[batch, out, ho, wo]` (overwritten).
///
/// `cols` is scratch of `P·`[`Conv2dGeom::cols_len`] elements for some `P ≥ 1`: with
/// more than one thread ([`threads`](super::threads)) and enough work, the batch is split
/// into up to `P` runs of samples, one per thread, each with its own piece of `cols`
/// ([`split`](super::split)); otherwise the samples run in order and each product may be
/// split over rows instead. The parts depend only on the thread count, the batch and
/// `P`, and each output element is computed by one part in a fixed order, so the result
/// is the same for every thread count.
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
    forward_on(threads(), g, batch, x, w, bias, y, cols)
}

/// [`conv2d`] on up to `threads` threads.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward_on<T: Float>(
    threads: usize,
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
    debug_assert!(cols.len() >= g.cols_len(), "conv2d: cols");
    if let Some(bias) = bias {
        debug_assert_eq!(bias.len(), g.out, "conv2d: bias");
    }
    if g.ho() * g.wo() == 0 || g.out == 0 {
        return;
    }
    let parts = split::parts_for(
        threads,
        batch,
        batch * g.macs(),
        scratch_parts(g, cols.len()),
    );
    if parts == 1 {
        let threads = sample_threads(g, threads);
        return forward_samples(g, threads, x, w, bias, y, &mut cols[..g.cols_len()]);
    }
    let ys = split::cut_samples(y, g.out_len(), batch, parts);
    let cs = split::cut_even(cols, g.cols_len(), parts);
    let mut items: [_; MAX_CHUNKS] = std::array::from_fn(|_| None);
    for (p, (item, (y, cols))) in items.iter_mut().zip(ys.into_iter().zip(cs)).enumerate() {
        *item = Some((split::samples(batch, parts, p), y, cols));
    }
    split::run_parts(&mut items, parts, &|_, item| {
        if let Some((samples, y, cols)) = item {
            let x = &x[samples.start * g.in_len()..samples.end * g.in_len()];
            forward_samples(g, 1, x, w, bias, y, cols);
        }
    });
}

/// How many parts a scratch buffer of `len` elements has room for (one `cols` each);
/// any number for a pointwise kernel, which needs none.
fn scratch_parts(g: &Conv2dGeom, len: usize) -> usize {
    if g.is_pointwise() {
        MAX_CHUNKS
    } else {
        len / g.cols_len().max(1)
    }
}

/// [`conv2d`] of the samples in `x` into `y`, one after the other, with `cols` one
/// sample's scratch and products on up to `threads` threads.
fn forward_samples<T: Float>(
    g: &Conv2dGeom,
    threads: usize,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    y: &mut [T],
    cols: &mut [T],
) {
    let (ckk, p) = (g.c * g.k * g.k, g.ho() * g.wo());
    for (xb, yb) in x
        .chunks_exact(g.in_len())
        .zip(y.chunks_exact_mut(g.out_len()))
    {
        let src: &[T] = if g.is_pointwise() {
            xb
        } else {
            im2col(g, xb, cols);
            cols
        };
        let beta = match bias {
            Some(bias) => {
                for (row, &v) in yb.chunks_exact_mut(p).zip(bias) {
                    row.fill(v);
                }
                T::ONE
            }
            None => T::ZERO,
        };
        gemm_on(
            threads,
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
/// for `dx`. `cols`, and `dcols` when `dx` is given, are scratch of
/// `P·`[`Conv2dGeom::cols_len`] elements, and `dw_parts` of `(P − 1)·`
/// [`Conv2dGeom::weight_len`], for some `P ≥ 1` (`dcols` is not touched, and may be
/// empty, when `dx` is `None`). As in [`conv2d`], with more than one thread the batch is
/// split into up to `P` runs of samples; each run sums its own `dw` (the first into `dw`,
/// the others into `dw_parts`), and the pieces are added to `dw` in order, so the result
/// is bit-for-bit the same every time for a given thread count.
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
    dx: Option<&mut [T]>,
    acc_x: Accumulate,
    cols: &mut [T],
    dcols: &mut [T],
    dw_parts: &mut [T],
) {
    let grads = BackwardGrads {
        dw,
        db,
        acc_params,
        dx,
        acc_x,
    };
    backward_on(
        threads(),
        g,
        batch,
        x,
        w,
        dy,
        grads,
        [cols, dcols, dw_parts],
    )
}

/// The gradients [`conv2d_backward`] writes, and how.
pub(crate) struct BackwardGrads<'a, T> {
    pub dw: &'a mut [T],
    pub db: Option<&'a mut [T]>,
    pub acc_params: Accumulate,
    pub dx: Option<&'a mut [T]>,
    pub acc_x: Accumulate,
}

/// [`conv2d_backward`] on up to `threads` threads, with its scratch
/// `[cols, dcols, dw_parts]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward_on<T: Float>(
    threads: usize,
    g: &Conv2dGeom,
    batch: usize,
    x: &[T],
    w: &[T],
    dy: &[T],
    grads: BackwardGrads<T>,
    [cols, dcols, dw_parts]: [&mut [T]; 3],
) {
    let BackwardGrads {
        dw,
        db,
        acc_params,
        mut dx,
        acc_x,
    } = grads;
    check_backward(g, batch, [x, w, dy, dw, cols], dx.as_deref(), dcols);
    if let Some(db) = db {
        bias_grad(g, batch, dy, db, acc_params);
    }
    if g.ho() * g.wo() == 0 || batch == 0 {
        // Nothing reaches dw or dx.
        if !acc_params.is_add() {
            dw.fill(T::ZERO);
        }
        if let Some(dx) = dx.filter(|_| !acc_x.is_add()) {
            dx.fill(T::ZERO);
        }
        return;
    }
    let mut cap = scratch_parts(g, cols.len()).min(1 + dw_parts.len() / g.weight_len().max(1));
    if dx.is_some() {
        cap = cap.min(scratch_parts(g, dcols.len()));
    }
    // dw and dx each cost as much as the forward.
    let work = batch * g.macs() * if dx.is_some() { 2 } else { 1 };
    let parts = split::parts_for(threads, batch, work, cap);
    if parts == 1 {
        let part = BackwardPart {
            threads: sample_threads(g, threads),
            x,
            dy,
            dw,
            acc_params,
            dx: dx.as_deref_mut(),
            cols: &mut cols[..g.cols_len()],
            dcols,
        };
        return backward_samples(g, w, acc_x, part);
    }
    let (wl, il, ol) = (g.weight_len(), g.in_len(), g.out_len());
    {
        let dxs = dx.map(|dx| split::cut_samples(dx, il, batch, parts));
        let mut dxs = dxs
            .map(|a| a.map(Some))
            .unwrap_or_else(|| std::array::from_fn(|_| None));
        let mut cs = split::cut_even(cols, g.cols_len(), parts).into_iter();
        let mut dcs = split::cut_even(dcols, g.cols_len(), parts).into_iter();
        let mut dws = split::cut_even(dw_parts, wl, parts - 1).into_iter();
        let mut items: [Option<BackwardPart<T>>; MAX_CHUNKS] = std::array::from_fn(|_| None);
        let mut dw_first = Some(&mut *dw);
        for (p, item) in items.iter_mut().enumerate().take(parts) {
            let s = split::samples(batch, parts, p);
            let (dw, acc) = match dw_first.take() {
                Some(dw) => (dw, acc_params),
                None => (dws.next().unwrap_or_default(), Accumulate::Overwrite),
            };
            *item = Some(BackwardPart {
                threads: 1,
                x: &x[s.start * il..s.end * il],
                dy: &dy[s.start * ol..s.end * ol],
                dw,
                acc_params: acc,
                dx: dxs[p].take(),
                cols: cs.next().unwrap_or_default(),
                dcols: dcs.next().unwrap_or_default(),
            });
        }
        split::run_parts(&mut items, parts, &|_, item| {
            if let Some(part) = item.take() {
                backward_samples(g, w, acc_x, part);
            }
        });
    }
    for piece in dw_parts.chunks_exact(wl).take(parts - 1) {
        for (d, &v) in dw.iter_mut().zip(piece) {
            *d += v;
        }
    }
}

/// One run of samples of [`conv2d_backward`]: its inputs and output gradients, the `dw`
/// it sums into (`acc_params` for its first sample), its own scratch, and the threads
/// its products may use.
struct BackwardPart<'a, T> {
    threads: usize,
    x: &'a [T],
    dy: &'a [T],
    dw: &'a mut [T],
    acc_params: Accumulate,
    dx: Option<&'a mut [T]>,
    cols: &'a mut [T],
    dcols: &'a mut [T],
}

/// The backward of the samples of `part`, one after the other.
fn backward_samples<T: Float>(g: &Conv2dGeom, w: &[T], acc_x: Accumulate, part: BackwardPart<T>) {
    let BackwardPart {
        threads,
        x,
        dy,
        dw,
        acc_params,
        mut dx,
        cols,
        dcols,
    } = part;
    let (ckk, p, il, ol) = (g.c * g.k * g.k, g.ho() * g.wo(), g.in_len(), g.out_len());
    let dcols = &mut dcols[..if dx.is_some() { g.cols_len() } else { 0 }];
    for (b, (xb, dyb)) in x.chunks_exact(il).zip(dy.chunks_exact(ol)).enumerate() {
        let src: &[T] = if g.is_pointwise() {
            xb
        } else {
            im2col(g, xb, cols);
            cols
        };
        // The first sample overwrites or adds as asked, the others add.
        let acc = if b == 0 { acc_params } else { Accumulate::Add };
        // dW [out, ckk] (+)= dy_b [out, p] · colsᵀ (cols [ckk, p] read with strides [1, p]).
        gemm_on(
            threads,
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
            input_grad(g, threads, w, dyb, &mut dx[b * il..][..il], acc_x, dcols);
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
    debug_assert!(cols.len() >= g.cols_len(), "conv2d_backward: cols");
    if let Some(dx) = dx {
        debug_assert_eq!(dx.len(), batch * g.in_len(), "conv2d_backward: dx");
        debug_assert!(dcols.len() >= g.cols_len(), "conv2d_backward: dcols");
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
    threads: usize,
    w: &[T],
    dy: &[T],
    dx: &mut [T],
    acc: Accumulate,
    dcols: &mut [T],
) {
    let (ckk, p) = (g.c * g.k * g.k, g.ho() * g.wo());
    // Wᵀ · dy [ckk, p] (W [out, ckk] read with strides [1, ckk]).
    let product = |beta: T, out: &mut [T]| {
        gemm_on(
            threads,
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
mod tests;
