//! Whole-sequence kernels: the forward and backward passes of a recurrent layer over all
//! `T` steps in one call. The input side needs no recurrence, so it runs as one product
//! over the `B·T` rows: the input projection `x·W_ihᵀ` before the loop, and its weight
//! gradient, the bias gradients and `dx` after the backward loop. Only the hidden side
//! (`h_{t−1}·W_hhᵀ`, its gradient, the carry) and the cell's elementwise work run per
//! step. The per-step kernels (`*_step`, `*_step_backward`) compute the same and stay
//! as the reference the tests compare with.
//!
//! Layouts are those of [`RnnGeom`], except that backward's `dgates` holds every step:
//! `[B, T, W·H]`, [`RnnGeom::sequence_scratch_len`].
#![forbid(unsafe_code)]

use super::{a_w, add_a_wt, at_v, col_sums, gru, lstm, tail, tail_mut, RnnGeom, RnnKind};
use crate::kernels::{gemm, split, threads, wide, with_threads, Accumulate};
use crate::threads::MAX_CHUNKS;
use crate::Float;
use std::any::Any;
use std::cell::RefCell;

/// The weights and biases of a layer, as `nn.RNN`/`nn.LSTM`/`nn.GRU` hold them.
#[derive(Clone, Copy)]
pub struct RnnParams<'a, T> {
    /// `weight_ih_l0`, `[G·H, inp]`.
    pub w_ih: &'a [T],
    /// `weight_hh_l0`, `[G·H, H]`.
    pub w_hh: &'a [T],
    /// `bias_ih_l0`, `[G·H]`.
    pub b_ih: &'a [T],
    /// `bias_hh_l0`, `[G·H]`.
    pub b_hh: &'a [T],
}

/// Their gradients, and whether backward writes or adds them.
pub struct RnnGrads<'a, T> {
    /// The gradient of `weight_ih_l0`.
    pub dw_ih: &'a mut [T],
    /// The gradient of `weight_hh_l0`.
    pub dw_hh: &'a mut [T],
    /// The gradient of `bias_ih_l0`.
    pub db_ih: &'a mut [T],
    /// The gradient of `bias_hh_l0`.
    pub db_hh: &'a mut [T],
    /// Whether the gradients are written or added to.
    pub acc: Accumulate,
}

impl RnnGeom {
    /// Elements of the whole-sequence backward's `dgates`: `B·T·W·H`.
    pub const fn sequence_scratch_len(&self, kind: RnnKind, batch: usize) -> usize {
        self.gates_len(kind, batch)
    }
}

/// The input side of every step: each row of `gates` (`[B·T, W·H]`) gets its biases and
/// `x·W_ihᵀ`, one product over all `B·T` rows.
fn input_side<T: Float>(
    g: &RnnGeom,
    kind: RnnKind,
    batch: usize,
    x: &[T],
    p: RnnParams<T>,
    gates: &mut [T],
) {
    let (h, w) = (g.hidden, kind.gates_width() * g.hidden);
    let gh = kind.gate_count() * h;
    for row in gates.chunks_exact_mut(w).take(batch * g.t_len) {
        match kind {
            RnnKind::Rnn | RnnKind::Lstm => {
                for ((v, &bi), &bh) in row.iter_mut().zip(p.b_ih).zip(p.b_hh) {
                    *v = bi + bh;
                }
            }
            RnnKind::Gru => {
                for ((v, &bi), &bh) in row[..2 * h].iter_mut().zip(p.b_ih).zip(p.b_hh) {
                    *v = bi + bh;
                }
                row[2 * h..3 * h].copy_from_slice(&p.b_ih[2 * h..]);
                row[3 * h..].copy_from_slice(&p.b_hh[2 * h..]);
            }
        }
    }
    add_a_wt(batch * g.t_len, gh, g.inp, x, g.inp, p.w_ih, gates, w);
}

/// The hidden side of step `t > 0`: `gates[:, t] += h_{t−1}·W_hhᵀ` (for the GRU, r and z
/// take their part and the last quarter `hn` its own).
#[allow(clippy::too_many_arguments)]
fn hidden_side<T: Float>(
    g: &RnnGeom,
    kind: RnnKind,
    batch: usize,
    t: usize,
    w_hh: &[T],
    w_hh_t: &[T],
    y: &[T],
    gates: &mut [T],
) {
    let (h, tl) = (g.hidden, g.t_len);
    let w = kind.gates_width() * h;
    let hp = tail(y, (t - 1) * h);
    if !w_hh_t.is_empty() {
        // `h_{t−1}·W_hhᵀ` from the transposed copy `[H, G·H]`: op(B) read in place.
        let gh = kind.gate_count() * h;
        let out = tail_mut(gates, t * w);
        let cols = if kind == RnnKind::Gru { 2 * h } else { gh };
        gemm(
            batch,
            cols,
            h,
            T::ONE,
            hp,
            [tl * h, 1],
            w_hh_t,
            [gh, 1],
            T::ONE,
            out,
            [tl * w, 1],
        );
        if kind == RnnKind::Gru {
            let out = tail_mut(gates, t * w + 3 * h);
            let n_t = &w_hh_t[2 * h..];
            gemm(
                batch,
                h,
                h,
                T::ONE,
                hp,
                [tl * h, 1],
                n_t,
                [gh, 1],
                T::ONE,
                out,
                [tl * w, 1],
            );
        }
        return;
    }
    match kind {
        RnnKind::Rnn | RnnKind::Lstm => add_a_wt(
            batch,
            w,
            h,
            hp,
            tl * h,
            w_hh,
            tail_mut(gates, t * w),
            tl * w,
        ),
        RnnKind::Gru => {
            let (rz, n) = w_hh.split_at(2 * h * h);
            add_a_wt(
                batch,
                2 * h,
                h,
                hp,
                tl * h,
                rz,
                tail_mut(gates, t * w),
                tl * w,
            );
            add_a_wt(
                batch,
                h,
                h,
                hp,
                tl * h,
                n,
                tail_mut(gates, t * w + 3 * h),
                tl * w,
            );
        }
    }
}

/// The forward pass of a recurrent layer over the whole sequence: writes `y` (all
/// hidden states), `gates` and, for the LSTM, `cell` (pass `&mut []` otherwise), with
/// the layouts of [`RnnGeom`]. Equal to calling the step for `t = 0 … T−1`, up to the
/// rounding of the products' summation order.
///
/// # Panics
/// If a slice is shorter than its shape.
#[allow(clippy::too_many_arguments)]
pub fn rnn_forward<T: Float>(
    g: &RnnGeom,
    kind: RnnKind,
    batch: usize,
    x: &[T],
    p: RnnParams<T>,
    gates: &mut [T],
    cell: &mut [T],
    y: &mut [T],
) {
    input_side(g, kind, batch, x, p, gates);
    with_transposed(g, kind, p.w_hh, &mut |w_hh_t| {
        forward_loops(g, kind, batch, p.w_hh, w_hh_t, gates, cell, y)
    });
}

thread_local! {
    /// The transposed `W_hh` of the forward pass running on this thread (a `Vec<T>`),
    /// kept between calls so a warm pass allocates nothing.
    static W_HH_T: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Runs `f` with `W_hh` transposed to `[H, G·H]` (each gate's block of rows becomes a
/// block of columns), or with an empty slice for a single step. With the copy, every
/// step's `h_{t−1}·W_hhᵀ` reads op(B) in place instead of packing (or running
/// transposed) all of `W_hh` again: one transpose a pass instead of one a step (perf,
/// LSTM 32→128 over 100 steps at batch 32: the forward products took 30 % longer than
/// the backward ones of the same size). At batch 1 each step's product is one row, a
/// sum of rows of the copy (`packed/gemv.rs`), which beat dot products over `W_hh`'s
/// rows, whose horizontal sums dominated (the `lstm` network's `predict`: 41 → 37 µs,
/// the transpose, 16×16 blocks in registers, included).
fn with_transposed<T: Float>(g: &RnnGeom, kind: RnnKind, w_hh: &[T], f: &mut dyn FnMut(&[T])) {
    let (rows, h) = (kind.gate_count() * g.hidden, g.hidden);
    if g.t_len == 1 {
        return f(&[]);
    }
    let mut run = |buf: &mut Vec<T>| {
        buf.clear();
        buf.resize(rows * h, T::ZERO);
        T::transpose_into(rows, h, &w_hh[..rows * h], buf);
        f(buf)
    };
    W_HH_T.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => {
            if !slot.as_ref().is_some_and(|b| b.is::<Vec<T>>()) {
                *slot = Some(Box::new(Vec::<T>::new()));
            }
            match slot.as_mut().and_then(|b| b.downcast_mut::<Vec<T>>()) {
                Some(buf) => run(buf),
                None => run(&mut Vec::new()),
            }
        }
        // Re-entered on this thread (never by bp itself): a fresh buffer.
        Err(_) => run(&mut Vec::new()),
    })
}

/// The forward time loops, on the calling thread or split over the batch.
#[allow(clippy::too_many_arguments)]
fn forward_loops<T: Float>(
    g: &RnnGeom,
    kind: RnnKind,
    batch: usize,
    w_hh: &[T],
    w_hh_t: &[T],
    gates: &mut [T],
    cell: &mut [T],
    y: &mut [T],
) {
    let parts = loop_parts(g, kind, batch);
    if parts == 1 {
        return forward_loop(g, kind, batch, (w_hh, w_hh_t), gates, cell, y);
    }
    let (h, w) = (g.hidden, kind.gates_width() * g.hidden);
    let tl = g.t_len;
    let gs = split::cut_samples(gates, tl * w, batch, parts);
    let cs = split::cut_samples(cell, tl * h, batch, parts);
    let ys = split::cut_samples(y, tl * h, batch, parts);
    let mut items: [_; MAX_CHUNKS] = std::array::from_fn(|_| None);
    let cuts = gs.into_iter().zip(cs).zip(ys);
    for (q, (item, ((gates, cell), y))) in items.iter_mut().zip(cuts).enumerate() {
        *item = Some((split::samples(batch, parts, q).len(), gates, cell, y));
    }
    split::run_parts(&mut items, parts, &|_, item| {
        if let Some((nb, gates, cell, y)) = item {
            let w = (w_hh, w_hh_t);
            with_threads(1, || forward_loop(g, kind, *nb, w, gates, cell, y));
        }
    });
}

/// How many runs of samples the time loops of a layer are split into: the samples are
/// independent through the whole sequence, so each thread runs every step for its own
/// samples, with no hand-off per step (splitting each step's small product instead made
/// 2 threads slower than 1: LSTM 28→64 at batch 128, 7.4 against 6.7 ms a step).
fn loop_parts(g: &RnnGeom, kind: RnnKind, batch: usize) -> usize {
    let work = batch * g.t_len * kind.gates_width() * g.hidden * g.hidden;
    split::parts_for(threads(), batch, work, MAX_CHUNKS)
}

/// The forward time loop over `batch` samples (all of `gates`, `cell`, `y` theirs).
#[allow(clippy::too_many_arguments)]
fn forward_loop<T: Float>(
    g: &RnnGeom,
    kind: RnnKind,
    batch: usize,
    (w_hh, w_hh_t): (&[T], &[T]),
    gates: &mut [T],
    cell: &mut [T],
    y: &mut [T],
) {
    for t in 0..g.t_len {
        if t > 0 {
            hidden_side(g, kind, batch, t, w_hh, w_hh_t, y, gates);
        }
        wide::run(Cells((g, kind, batch, t, gates, cell, y)));
    }
}

/// The cell's elementwise work of forward step `t` (after its products): geometry,
/// kind, batch, `t`, `gates`, `cell`, `y`.
type CellArgs<'a, T> = (
    &'a RnnGeom,
    RnnKind,
    usize,
    usize,
    &'a mut [T],
    &'a mut [T],
    &'a mut [T],
);
struct Cells<'a, T>(CellArgs<'a, T>);

impl<T: Float> wide::Wide for Cells<'_, T> {
    type Out = ();
    #[inline(always)]
    fn run(self) {
        cells(self.0)
    }
}

#[inline(always)]
fn cells<T: Float>((g, kind, batch, t, gates, cell, y): CellArgs<T>) {
    let (h, w) = (g.hidden, kind.gates_width() * g.hidden);
    for b in 0..batch {
        let (gr, at) = (&mut gates[g.row(b, t, w)..][..w], g.row(b, t, h));
        let (prev, now) = y.split_at_mut(at);
        let prev = (t > 0).then(|| &prev[at - h..]);
        match kind {
            RnnKind::Rnn => {
                for v in gr.iter_mut() {
                    *v = v.tanh_fast();
                }
                now[..h].copy_from_slice(gr);
            }
            RnnKind::Lstm => {
                let (cp, cn) = cell.split_at_mut(at);
                let cp = (t > 0).then(|| &cp[at - h..]);
                lstm::activate(gr, cp, &mut cn[..h], &mut now[..h]);
            }
            RnnKind::Gru => gru::activate(gr, prev, &mut now[..h]),
        }
    }
}

/// The backward pass over the whole sequence (BPTT): from `dy` (the residual of all of
/// `y`), the parameter gradients (written, or added to with [`Accumulate::Add`]), `dx`
/// (as `acc_x` says) when given. `dh` (and `dc` for the LSTM, `&mut []` otherwise) are
/// the carries `[B, H]`; `dgates` is scratch of [`RnnGeom::sequence_scratch_len`].
/// Equal to calling the step's backward for `t = T−1 … 0`, up to rounding.
///
/// # Panics
/// If a slice is shorter than its shape.
#[allow(clippy::too_many_arguments)]
pub fn rnn_backward<T: Float>(
    g: &RnnGeom,
    kind: RnnKind,
    batch: usize,
    x: &[T],
    y: &[T],
    p: RnnParams<T>,
    gates: &[T],
    cell: &[T],
    dy: &[T],
    dh: &mut [T],
    dc: &mut [T],
    dgates: &mut [T],
    grads: RnnGrads<T>,
    dx: Option<&mut [T]>,
    acc_x: Accumulate,
) {
    let h = g.hidden;
    dh[..batch * h].fill(T::ZERO);
    if kind == RnnKind::Lstm {
        dc[..batch * h].fill(T::ZERO);
    }
    let RnnGrads {
        dw_ih,
        dw_hh,
        db_ih,
        db_hh,
        acc,
    } = grads;
    let parts = loop_parts(g, kind, batch);
    let state = (y, gates, cell, dy);
    if parts == 1 {
        backward_loop(g, kind, batch, p.w_hh, state, dh, dc, dgates);
    } else {
        let (w, tl) = (kind.gates_width() * h, g.t_len);
        let dhs = split::cut_samples(dh, h, batch, parts);
        let dcs = split::cut_samples(dc, h, batch, parts);
        let dgs = split::cut_samples(dgates, tl * w, batch, parts);
        let mut items: [_; MAX_CHUNKS] = std::array::from_fn(|_| None);
        let cuts = dhs.into_iter().zip(dcs).zip(dgs);
        for (q, (item, ((dh, dc), dg))) in items.iter_mut().zip(cuts).enumerate() {
            *item = Some((split::samples(batch, parts, q), dh, dc, dg));
        }
        let cell_w = if kind == RnnKind::Lstm { tl * h } else { 0 };
        split::run_parts(&mut items, parts, &|_, item| {
            if let Some((r, dh, dc, dg)) = item {
                let state = (
                    of_samples(y, r, tl * h),
                    of_samples(gates, r, tl * w),
                    of_samples(cell, r, cell_w),
                    of_samples(dy, r, tl * h),
                );
                let nb = r.len();
                with_threads(1, || backward_loop(g, kind, nb, p.w_hh, state, dh, dc, dg));
            }
        });
    }
    input_grads(
        g,
        kind,
        batch,
        x,
        p.w_ih,
        dgates,
        [dw_ih, db_ih, db_hh],
        acc,
        dx,
        acc_x,
    );
    hidden_weight_grads(g, kind, batch, y, dgates, dw_hh, acc);
}

/// The elements of the samples `r` in `v` (`per` elements a sample).
fn of_samples<'a, T>(v: &'a [T], r: &std::ops::Range<usize>, per: usize) -> &'a [T] {
    &v[r.start * per..r.end * per]
}

/// The forward values a backward time loop reads: `y`, `gates`, `cell` (the LSTM's;
/// empty otherwise) and the residual `dy`, all of the loop's samples.
type State<'a, T> = (&'a [T], &'a [T], &'a [T], &'a [T]);

/// The backward time loop over `batch` samples: the pre-activation residuals of every
/// step into `dgates` and the carries `dh`, `dc`, all of them the samples' own.
#[allow(clippy::too_many_arguments)]
fn backward_loop<T: Float>(
    g: &RnnGeom,
    kind: RnnKind,
    batch: usize,
    w_hh: &[T],
    (y, gates, cell, dy): State<T>,
    dh: &mut [T],
    dc: &mut [T],
    dgates: &mut [T],
) {
    for t in (0..g.t_len).rev() {
        wide::run(Residuals((
            g, kind, batch, t, y, gates, cell, dy, dh, dc, dgates,
        )));
        if t > 0 {
            carry(g, kind, batch, t, w_hh, dgates, dh);
        }
    }
}

/// The arguments of [`residuals`], in its order.
type ResidualArgs<'a, T> = (
    &'a RnnGeom,
    RnnKind,
    usize,
    usize,
    &'a [T],
    &'a [T],
    &'a [T],
    &'a [T],
    &'a mut [T],
    &'a mut [T],
    &'a mut [T],
);
struct Residuals<'a, T>(ResidualArgs<'a, T>);

impl<T: Float> wide::Wide for Residuals<'_, T> {
    type Out = ();
    #[inline(always)]
    fn run(self) {
        residuals(self.0)
    }
}

/// The pre-activation residuals of step `t` into `dgates[:, t]`, and the cell's part of
/// the carries (the LSTM's `dc`, the GRU's `δh⊙z` in `dh`).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn residuals<T: Float>((g, kind, batch, t, y, gates, cell, dy, dh, dc, dgates): ResidualArgs<T>) {
    let (h, tl) = (g.hidden, g.t_len);
    let w = kind.gates_width() * h;
    match kind {
        RnnKind::Rnn => {
            for b in 0..batch {
                let at = g.row(b, t, h);
                let (hs, dys) = (&gates[at..at + h], &dy[at..at + h]);
                let (dhr, dg) = (&dh[b * h..(b + 1) * h], &mut dgates[at..at + h]);
                for (((d, &hv), &dyv), &c) in dg.iter_mut().zip(hs).zip(dys).zip(dhr) {
                    *d = (dyv + c) * (T::ONE - hv * hv);
                }
            }
        }
        RnnKind::Lstm => {
            for b in 0..batch {
                let (gr, at) = (&gates[g.row(b, t, w)..][..w], g.row(b, t, h));
                let c = &cell[at..at + h];
                let rows = lstm::GateRows {
                    gates: [&gr[..h], &gr[h..2 * h], &gr[2 * h..3 * h], &gr[3 * h..]],
                    c,
                    c_prev: if t > 0 { &cell[at - h..at] } else { c },
                    dy: &dy[at..at + h],
                    dh: &dh[b * h..(b + 1) * h],
                };
                let dg = &mut dgates[g.row(b, t, w)..][..w];
                lstm::gate_residuals(rows, dg, &mut dc[b * h..(b + 1) * h]);
                if t == 0 {
                    dg[h..2 * h].fill(T::ZERO); // no c_{−1}
                }
            }
        }
        RnnKind::Gru => {
            gru::gru_gate_residuals(g, batch, t, y, gates, dy, dh, (dgates, t * w, tl * w));
        }
    }
}

/// The carry of step `t > 0` to `t − 1`: `dh (=|+=) δ_t·W_hh` (the GRU adds to its
/// `δh⊙z`; the others overwrite).
fn carry<T: Float>(
    g: &RnnGeom,
    kind: RnnKind,
    batch: usize,
    t: usize,
    w_hh: &[T],
    dgates: &[T],
    dh: &mut [T],
) {
    let (h, tl) = (g.hidden, g.t_len);
    let w = kind.gates_width() * h;
    let dg = tail(dgates, t * w);
    match kind {
        RnnKind::Rnn | RnnKind::Lstm => {
            a_w(batch, w, h, dg, tl * w, w_hh, Accumulate::Overwrite, dh, h);
        }
        RnnKind::Gru => {
            let hh = 2 * h * h;
            a_w(
                batch,
                2 * h,
                h,
                dg,
                tl * w,
                &w_hh[..hh],
                Accumulate::Add,
                dh,
                h,
            );
            let dn = tail(dg, 3 * h);
            a_w(batch, h, h, dn, tl * w, &w_hh[hh..], Accumulate::Add, dh, h);
        }
    }
}

/// `dW_hh (+)= Σ_{b, t>0} δ_(b,t)ᵀ·h_(b,t−1)` as ONE product over the `B·T − 1` rows
/// `r ≥ 1` of `dgates`, each paired with row `r − 1` of `y`. That pairs the rows of
/// `t = 0` with the last state of the sample before, so they are zeroed first (they
/// have no `h_{−1}`; the input side has used them already): the product adds exact
/// zeros for them. One product with `k = B·T − 1` instead of `T − 1` products with
/// `k = B` (perf, LSTM 32→128 over 100 steps at batch 32: 19 % of the step went to
/// those small products).
fn hidden_weight_grads<T: Float>(
    g: &RnnGeom,
    kind: RnnKind,
    batch: usize,
    y: &[T],
    dgates: &mut [T],
    dw_hh: &mut [T],
    acc: Accumulate,
) {
    let (h, tl) = (g.hidden, g.t_len);
    let w = kind.gates_width() * h;
    let rows = (batch * tl).saturating_sub(1);
    if rows == 0 {
        if !acc.is_add() {
            dw_hh.fill(T::ZERO);
        }
        return;
    }
    for b in 0..batch {
        dgates[b * tl * w..][..w].fill(T::ZERO);
    }
    let dg = &dgates[w..];
    match kind {
        RnnKind::Rnn | RnnKind::Lstm => at_v(rows, w, h, dg, w, y, h, acc, dw_hh),
        RnnKind::Gru => {
            let (dw_rz, dw_n) = dw_hh.split_at_mut(2 * h * h);
            at_v(rows, 2 * h, h, dg, w, y, h, acc, dw_rz);
            at_v(rows, h, h, tail(dg, 3 * h), w, y, h, acc, dw_n);
        }
    }
}

/// The input side over all `B·T` rows at once: `dW_ih (+)= δᵀ·x`, the bias gradients
/// `Σ δ` (the GRU's hidden bias from `[δr δz δhn]`), and `dx (+)= δ·W_ih`.
#[allow(clippy::too_many_arguments)]
fn input_grads<T: Float>(
    g: &RnnGeom,
    kind: RnnKind,
    batch: usize,
    x: &[T],
    w_ih: &[T],
    dgates: &[T],
    [dw_ih, db_ih, db_hh]: [&mut [T]; 3],
    acc: Accumulate,
    dx: Option<&mut [T]>,
    acc_x: Accumulate,
) {
    let (h, rows, inp) = (g.hidden, batch * g.t_len, g.inp);
    let w = kind.gates_width() * h;
    let gh = kind.gate_count() * h;
    at_v(rows, gh, inp, dgates, w, x, inp, acc, dw_ih);
    col_sums(rows, gh, dgates, w, acc, db_ih);
    match kind {
        RnnKind::Rnn | RnnKind::Lstm => col_sums(rows, gh, dgates, w, acc, db_hh),
        RnnKind::Gru => {
            col_sums(rows, 2 * h, dgates, w, acc, &mut db_hh[..2 * h]);
            col_sums(rows, h, tail(dgates, 3 * h), w, acc, &mut db_hh[2 * h..]);
        }
    }
    if let Some(dx) = dx {
        a_w(rows, gh, inp, dgates, w, w_ih, acc_x, dx, inp);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{
        gru_step, gru_step_backward, lstm_step, lstm_step_backward, rnn_step, rnn_step_backward,
    };
    use super::*;
    use crate::rng::Rng;

    fn random(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = Rng::for_name(seed, "sequence");
        (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect()
    }

    /// The whole-sequence kernels give what the per-step kernels give, forward and
    /// backward, writing and adding, with and without `dx`.
    #[test]
    fn sequence_equals_steps() {
        let g = RnnGeom {
            t_len: 5,
            inp: 3,
            hidden: 4,
        };
        let batch = 3;
        for kind in [RnnKind::Rnn, RnnKind::Lstm, RnnKind::Gru] {
            for acc in [Accumulate::Overwrite, Accumulate::Add] {
                compare(&g, kind, batch, acc);
            }
        }
        let one = RnnGeom {
            t_len: 1,
            inp: 2,
            hidden: 3,
        };
        compare(&one, RnnKind::Lstm, 2, Accumulate::Overwrite);
    }

    /// A layer large enough that its time loops split the batch over threads.
    const SPLIT: RnnGeom = RnnGeom {
        t_len: 10,
        inp: 5,
        hidden: 24,
    };

    /// Split over 2 and 3 threads (runs of samples through the whole sequence), the
    /// sequence kernels still equal the per-step kernels.
    #[test]
    fn split_sequence_equals_steps() {
        for kind in [RnnKind::Rnn, RnnKind::Lstm, RnnKind::Gru] {
            assert!(
                loop_parts_on(2, &SPLIT, kind, 7) == 2,
                "{kind:?} does not split"
            );
            for threads in [2, 3] {
                with_threads(threads, || compare(&SPLIT, kind, 7, Accumulate::Add));
            }
        }
    }

    fn loop_parts_on(threads: usize, g: &RnnGeom, kind: RnnKind, batch: usize) -> usize {
        with_threads(threads, || loop_parts(g, kind, batch))
    }

    /// Forward and backward split over 2 and 3 threads give the one-thread bits (every
    /// part holds at least two samples, so each product runs the same tiles).
    #[test]
    fn split_is_bit_for_bit_the_one_thread_result() {
        let g = SPLIT;
        let batch = 7;
        for kind in [RnnKind::Rnn, RnnKind::Lstm, RnnKind::Gru] {
            let run = || {
                let x = random(batch * g.t_len * g.inp, 1);
                let ws: Vec<Vec<f64>> = [
                    g.weight_ih_len(kind),
                    g.weight_hh_len(kind),
                    g.bias_len(kind),
                    g.bias_len(kind),
                ]
                .iter()
                .enumerate()
                .map(|(i, &n)| random(n, 2 + i as u64))
                .collect();
                let p = RnnParams {
                    w_ih: &ws[0],
                    w_hh: &ws[1],
                    b_ih: &ws[2],
                    b_hh: &ws[3],
                };
                let mut gates = vec![0.0; g.gates_len(kind, batch)];
                let mut cell = vec![0.0; g.cell_len(kind, batch)];
                let mut y = vec![0.0; batch * g.t_len * g.hidden];
                rnn_forward(&g, kind, batch, &x, p, &mut gates, &mut cell, &mut y);
                let dy = random(y.len(), 6);
                let mut grads: Vec<Vec<f64>> = ws.iter().map(|w| vec![0.0; w.len()]).collect();
                let carry = g.carry_len(batch);
                let dc_len = if kind == RnnKind::Lstm { carry } else { 0 };
                let (mut dh, mut dc) = (vec![0.0; carry], vec![0.0; dc_len]);
                let mut dg = vec![0.0; g.sequence_scratch_len(kind, batch)];
                let mut dx = vec![0.0; x.len()];
                let [a, b, c, d] = &mut grads[..] else {
                    unreachable!()
                };
                let gr = RnnGrads {
                    dw_ih: a,
                    dw_hh: b,
                    db_ih: c,
                    db_hh: d,
                    acc: Accumulate::Overwrite,
                };
                rnn_backward(
                    &g,
                    kind,
                    batch,
                    &x,
                    &y,
                    p,
                    &gates,
                    &cell,
                    &dy,
                    &mut dh,
                    &mut dc,
                    &mut dg,
                    gr,
                    Some(&mut dx),
                    Accumulate::Overwrite,
                );
                let mut all = [y, gates, cell, dh, dc, dx].concat();
                for v in grads {
                    all.extend(v);
                }
                all.iter().map(|v| v.to_bits()).collect::<Vec<u64>>()
            };
            let one = with_threads(1, run);
            for threads in [2, 3] {
                assert!(
                    with_threads(threads, run) == one,
                    "{kind:?} {threads} threads"
                );
            }
        }
    }

    fn compare(g: &RnnGeom, kind: RnnKind, batch: usize, acc: Accumulate) {
        let x = random(batch * g.t_len * g.inp, 1);
        let w_ih = random(g.weight_ih_len(kind), 2);
        let w_hh = random(g.weight_hh_len(kind), 3);
        let b_ih = random(g.bias_len(kind), 4);
        let b_hh = random(g.bias_len(kind), 5);
        let dy = random(batch * g.t_len * g.hidden, 6);
        let p = RnnParams {
            w_ih: &w_ih,
            w_hh: &w_hh,
            b_ih: &b_ih,
            b_hh: &b_hh,
        };
        let n_y = batch * g.t_len * g.hidden;
        let (mut gates, mut cell, mut y) = (
            vec![0.0; g.gates_len(kind, batch)],
            vec![0.0; g.cell_len(kind, batch)],
            vec![0.0; n_y],
        );
        rnn_forward(g, kind, batch, &x, p, &mut gates, &mut cell, &mut y);
        let (mut sg, mut sc, mut sy) = (gates.clone(), cell.clone(), y.clone());
        for t in 0..g.t_len {
            match kind {
                RnnKind::Rnn => rnn_step(
                    g, batch, t, &x, &w_ih, &w_hh, &b_ih, &b_hh, &mut sg, &mut sy,
                ),
                RnnKind::Lstm => lstm_step(
                    g, batch, t, &x, &w_ih, &w_hh, &b_ih, &b_hh, &mut sg, &mut sc, &mut sy,
                ),
                RnnKind::Gru => gru_step(
                    g, batch, t, &x, &w_ih, &w_hh, &b_ih, &b_hh, &mut sg, &mut sy,
                ),
            }
        }
        close(&y, &sy, "y");
        close(&gates, &sg, "gates");
        // Backward: the sequence kernel against the steps, from the same start.
        let start = |n| random(n, 7);
        let lens = [w_ih.len(), w_hh.len(), b_ih.len(), b_hh.len()];
        let mut seq: Vec<Vec<f64>> = lens.iter().map(|&n| start(n)).collect();
        let mut step: Vec<Vec<f64>> = seq.clone();
        let (mut dx, mut sdx) = (start(x.len()), start(x.len()));
        let carry = g.carry_len(batch);
        let dc_len = if kind == RnnKind::Lstm { carry } else { 0 };
        let (mut dh, mut dc) = (vec![0.0; carry], vec![0.0; dc_len]);
        let mut dg = vec![0.0; g.sequence_scratch_len(kind, batch)];
        let [a, b, c, d] = &mut seq[..] else {
            unreachable!()
        };
        let grads = RnnGrads {
            dw_ih: a,
            dw_hh: b,
            db_ih: c,
            db_hh: d,
            acc,
        };
        rnn_backward(
            g,
            kind,
            batch,
            &x,
            &y,
            p,
            &gates,
            &cell,
            &dy,
            &mut dh,
            &mut dc,
            &mut dg,
            grads,
            Some(&mut dx),
            acc,
        );
        let mut sdg = vec![0.0; g.scratch_len(kind, batch)];
        let (mut sdh, mut sdc) = (vec![0.0; carry], vec![0.0; dc_len]);
        for t in (0..g.t_len).rev() {
            let [a, b, c, d] = &mut step[..] else {
                unreachable!()
            };
            match kind {
                RnnKind::Rnn => rnn_step_backward(
                    g,
                    batch,
                    t,
                    &x,
                    &y,
                    &w_ih,
                    &w_hh,
                    &gates,
                    &dy,
                    &mut sdh,
                    &mut sdg,
                    a,
                    b,
                    c,
                    d,
                    acc,
                    Some(&mut sdx),
                    acc,
                ),
                RnnKind::Lstm => lstm_step_backward(
                    g,
                    batch,
                    t,
                    &x,
                    &y,
                    &w_ih,
                    &w_hh,
                    &gates,
                    &cell,
                    &dy,
                    &mut sdh,
                    &mut sdc,
                    &mut sdg,
                    a,
                    b,
                    c,
                    d,
                    acc,
                    Some(&mut sdx),
                    acc,
                ),
                RnnKind::Gru => gru_step_backward(
                    g,
                    batch,
                    t,
                    &x,
                    &y,
                    &w_ih,
                    &w_hh,
                    &gates,
                    &dy,
                    &mut sdh,
                    &mut sdg,
                    a,
                    b,
                    c,
                    d,
                    acc,
                    Some(&mut sdx),
                    acc,
                ),
            }
        }
        for (k, name) in ["dw_ih", "dw_hh", "db_ih", "db_hh"].iter().enumerate() {
            close(&seq[k], &step[k], name);
        }
        close(&dx, &sdx, "dx");
    }

    fn close(a: &[f64], b: &[f64], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-12 * (1.0 + y.abs()),
                "{what}[{i}]: {x} vs {y}"
            );
        }
    }
}
