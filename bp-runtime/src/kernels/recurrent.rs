//! One-layer recurrent cells with PyTorch's equations, `batch_first` layout and a zero
//! initial state — `nn.RNN` (tanh), `nn.LSTM`, `nn.GRU` — as one kernel per time step,
//! plus `last` (the final step of a sequence).
//!
//! The layouts and the calling protocol are documented on [`RnnGeom`].
#![forbid(unsafe_code)]

mod gru;
mod lstm;
mod rnn;
mod sequence;

pub use gru::{gru_step, gru_step_backward};
pub use lstm::{lstm_step, lstm_step_backward};
pub use rnn::{rnn_step, rnn_step_backward};
pub use sequence::{rnn_backward, rnn_forward, RnnGrads, RnnParams};

use super::gemm::gemm;
use super::{put, Accumulate};
use crate::Float;

/// Geometry of a recurrent layer: sequence length `t_len`, input size `inp`, hidden size
/// `hidden`; with [`RnnKind`] it gives the length of every buffer.
///
/// Layouts, with `B` the batch, `T` the sequence length, `H` the hidden size and `G` the
/// number of gates (1 for the RNN, 4 for the LSTM in the order i, f, g, o, 3 for the GRU
/// in the order r, z, n) and `W` = [`RnnKind::gates_width`] (1, 4, 4):
///
/// | buffer | shape |
/// |---|---|
/// | `x` | `[B, T, inp]` |
/// | `y` (all hidden states; `h_t` is `y[:, t]`) | `[B, T, H]` |
/// | `w_ih`, `w_hh` | `[G·H, inp]`, `[G·H, H]` |
/// | `b_ih`, `b_hh` | `[G·H]` |
/// | `gates` (forward workspace) | `[B, T, W·H]`, see [`RnnGeom::gates_len`] |
/// | `cell` (LSTM only; others pass `&mut []` / `&[]`) | `[B, T, H]` |
/// | `dh`, `dc` (carries) | `[B, H]`, see [`RnnGeom::carry_len`] |
/// | `dgates` (backward scratch) | `[B, W·H]`, see [`RnnGeom::scratch_len`] |
///
/// Forward: call the step for `t = 0, 1, …, T−1`; step `t` reads `y[:, t−1]` (the zero
/// state at `t = 0`) and writes `y[:, t]` and `gates[:, t]` (and `cell[:, t]`).
///
/// Backward (BPTT): call the step's backward for `t = T−1` down to 0 with the same
/// buffers and `dy` the residual of the whole `y`. `dh` carries `∂J/∂h_t` (and `dc`
/// `∂J/∂c_t`) from step `t+1` to step `t`: at `t = T−1` the kernel ignores what they
/// hold (there is no later step) and on return of step `t` they hold `∂J/∂h_{t−1}`
/// (`∂J/∂c_{t−1}`) — after `t = 0`, the gradient of the zero initial state, which the
/// caller may ignore. The parameter gradients are written by step `T−1` (added to when
/// `acc_params` is [`Accumulate::Add`]) and added to by every other step, so one backward
/// pass overwrites or accumulates as a whole. Step `t` writes (or adds to, as `acc_x`
/// says) only `dx[:, t]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RnnGeom {
    /// Sequence length `T`.
    pub t_len: usize,
    /// Input features per step.
    pub inp: usize,
    /// Hidden size `H`.
    pub hidden: usize,
}

/// Which recurrent cell: sizes of its weights and workspaces depend on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RnnKind {
    /// `nn.RNN` with tanh: `h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`.
    Rnn,
    /// `nn.LSTM`, gates i, f, g, o.
    Lstm,
    /// `nn.GRU`, gates r, z, n.
    Gru,
}

impl RnnKind {
    /// `G`, the number of gates: `w_ih` is `[G·H, inp]`, `w_hh` `[G·H, H]`, the biases
    /// `[G·H]` (1, 4 and 3).
    pub const fn gate_count(self) -> usize {
        match self {
            RnnKind::Rnn => 1,
            RnnKind::Lstm => 4,
            RnnKind::Gru => 3,
        }
    }

    /// `W`, the width of one step of `gates` and of `dgates` in units of `H`: 1 (h),
    /// 4 (i, f, g, o after activation) and 4 for the GRU (r, z, n after activation and
    /// `W_hn·h + b_hn`; in backward the pre-activation residuals of r, z, of the input
    /// side of n and of `W_hn·h + b_hn`).
    pub const fn gates_width(self) -> usize {
        match self {
            RnnKind::Rnn => 1,
            RnnKind::Lstm | RnnKind::Gru => 4,
        }
    }
}

impl RnnGeom {
    /// Elements of `w_ih`: `G·H·inp`.
    pub const fn weight_ih_len(&self, kind: RnnKind) -> usize {
        kind.gate_count() * self.hidden * self.inp
    }

    /// Elements of `w_hh`: `G·H·H`.
    pub const fn weight_hh_len(&self, kind: RnnKind) -> usize {
        kind.gate_count() * self.hidden * self.hidden
    }

    /// Elements of `b_ih` and of `b_hh`: `G·H`.
    pub const fn bias_len(&self, kind: RnnKind) -> usize {
        kind.gate_count() * self.hidden
    }

    /// Elements of the forward workspace `gates`: `B·T·W·H`.
    pub const fn gates_len(&self, kind: RnnKind, batch: usize) -> usize {
        batch * self.t_len * kind.gates_width() * self.hidden
    }

    /// Elements of `cell`: `B·T·H` for the LSTM, 0 for the others.
    pub const fn cell_len(&self, kind: RnnKind, batch: usize) -> usize {
        match kind {
            RnnKind::Lstm => batch * self.t_len * self.hidden,
            RnnKind::Rnn | RnnKind::Gru => 0,
        }
    }

    /// Elements of the backward scratch `dgates`: `B·W·H`.
    pub const fn scratch_len(&self, kind: RnnKind, batch: usize) -> usize {
        batch * kind.gates_width() * self.hidden
    }

    /// Elements of each carry `dh` (and `dc` for the LSTM): `B·H`.
    pub const fn carry_len(&self, batch: usize) -> usize {
        batch * self.hidden
    }

    /// Offset of row `(b, t)` of a `[B, T, width]` buffer.
    const fn row(&self, b: usize, t: usize, width: usize) -> usize {
        (b * self.t_len + t) * width
    }
}

/// How step `t` stores the parameter gradients: every step but `T−1` adds to them, and
/// `T−1` does as `acc_params` says.
fn adds_params(g: &RnnGeom, t: usize, acc_params: Accumulate) -> Accumulate {
    if t + 1 < g.t_len {
        Accumulate::Add
    } else {
        acc_params
    }
}

/// `s[off..]`, or an empty slice when `off` is past the end (the products below do not
/// read an operand with a zero dimension).
fn tail<T>(s: &[T], off: usize) -> &[T] {
    s.get(off..).unwrap_or(&[])
}

/// `s[off..]`, or an empty slice when `off` is past the end.
fn tail_mut<T>(s: &mut [T], off: usize) -> &mut [T] {
    let off = off.min(s.len());
    &mut s[off..]
}

/// The logistic function `1/(1 + e^−v)` (branch-free for `f32`: [`Float::sigmoid_fast`]).
#[inline(always)]
fn sigmoid<T: Float>(v: T) -> T {
    v.sigmoid_fast()
}

/// `C += A·Wᵀ`: `c[r, j] += Σ_i a[r, i]·w[j, i]` for `r < m`, `j < n`, `i < k`, with
/// the rows of `a` and `c` `a_rs` and `c_rs` apart and `w` row-major `[n, k]`.
#[allow(clippy::too_many_arguments)]
fn add_a_wt<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    a_rs: usize,
    w: &[T],
    c: &mut [T],
    c_rs: usize,
) {
    gemm(
        m,
        n,
        k,
        T::ONE,
        a,
        [a_rs, 1],
        w,
        [1, k],
        T::ONE,
        c,
        [c_rs, 1],
    );
}

/// `C (+)= A·W`: `c[r, i] (+)= Σ_j a[r, j]·w[j, i]` for `r < m`, `j < n`, `i < k`, with
/// the rows of `a` and `c` `a_rs` and `c_rs` apart and `w` row-major `[n, k]`.
#[allow(clippy::too_many_arguments)]
fn a_w<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    a_rs: usize,
    w: &[T],
    acc: Accumulate,
    c: &mut [T],
    c_rs: usize,
) {
    let beta = acc.beta();
    gemm(m, k, n, T::ONE, a, [a_rs, 1], w, [k, 1], beta, c, [c_rs, 1]);
}

/// `dW (+)= Aᵀ·V`: `dw[j, i] (+)= Σ_r a[r, j]·v[r, i]` for `r < m`, `j < n`, `i < k`,
/// with the rows of `a` and `v` `a_rs` and `v_rs` apart and `dw` row-major `[n, k]`.
#[allow(clippy::too_many_arguments)]
fn at_v<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    a_rs: usize,
    v: &[T],
    v_rs: usize,
    acc: Accumulate,
    dw: &mut [T],
) {
    let beta = acc.beta();
    gemm(
        n,
        k,
        m,
        T::ONE,
        a,
        [1, a_rs],
        v,
        [v_rs, 1],
        beta,
        dw,
        [k, 1],
    );
}

/// `db[j] (+)= Σ_r a[r, j]` for `r < m`, `j < n`, the rows of `a` `a_rs` apart.
fn col_sums<T: Float>(m: usize, n: usize, a: &[T], a_rs: usize, acc: Accumulate, db: &mut [T]) {
    let db = &mut db[..n];
    if !acc.is_add() {
        db.fill(T::ZERO);
    }
    for r in 0..m {
        for (d, &v) in db.iter_mut().zip(&a[r * a_rs..][..n]) {
            *d += v;
        }
    }
}

/// The pre-activations shared by the RNN and the LSTM: `gates[:, t, :] = x[:, t]·W_ihᵀ +
/// b_ih + h_{t−1}·W_hhᵀ + b_hh` with `h_{t−1} = y[:, t−1]` (0 at `t = 0`) and `width =
/// G·H`.
#[allow(clippy::too_many_arguments)]
fn preactivate<T: Float>(
    g: &RnnGeom,
    batch: usize,
    t: usize,
    width: usize,
    x: &[T],
    w_ih: &[T],
    w_hh: &[T],
    b_ih: &[T],
    b_hh: &[T],
    gates: &mut [T],
    y: &[T],
) {
    let (h, tl) = (g.hidden, g.t_len);
    for b in 0..batch {
        let row = &mut gates[g.row(b, t, width)..][..width];
        for ((v, &bi), &bh) in row.iter_mut().zip(b_ih).zip(b_hh) {
            *v = bi + bh;
        }
    }
    let out = tail_mut(gates, t * width);
    add_a_wt(
        batch,
        width,
        g.inp,
        tail(x, t * g.inp),
        tl * g.inp,
        w_ih,
        out,
        tl * width,
    );
    if t > 0 {
        let out = tail_mut(gates, t * width);
        add_a_wt(
            batch,
            width,
            h,
            tail(y, (t - 1) * h),
            tl * h,
            w_hh,
            out,
            tl * width,
        );
    }
}

/// The end of a backward step of the RNN and the LSTM, whose input and hidden sides
/// share the pre-activation residuals `dgates` `[B, width]` (`width = G·H`): the
/// parameter gradients, `dx[:, t]` and the carry `dh = dgates·W_hh`.
#[allow(clippy::too_many_arguments)]
fn backward_tail<T: Float>(
    g: &RnnGeom,
    batch: usize,
    t: usize,
    width: usize,
    x: &[T],
    y: &[T],
    w_ih: &[T],
    w_hh: &[T],
    dgates: &[T],
    dh: &mut [T],
    [dw_ih, dw_hh, db_ih, db_hh]: [&mut [T]; 4],
    acc_params: Accumulate,
    dx: Option<&mut [T]>,
    acc_x: Accumulate,
) {
    let (h, inp, tl) = (g.hidden, g.inp, g.t_len);
    let acc = adds_params(g, t, acc_params);
    at_v(
        batch,
        width,
        inp,
        dgates,
        width,
        tail(x, t * inp),
        tl * inp,
        acc,
        dw_ih,
    );
    if t > 0 {
        at_v(
            batch,
            width,
            h,
            dgates,
            width,
            tail(y, (t - 1) * h),
            tl * h,
            acc,
            dw_hh,
        );
    } else if !acc.is_add() {
        dw_hh.fill(T::ZERO);
    }
    col_sums(batch, width, dgates, width, acc, db_ih);
    col_sums(batch, width, dgates, width, acc, db_hh);
    if let Some(dx) = dx {
        a_w(
            batch,
            width,
            inp,
            dgates,
            width,
            w_ih,
            acc_x,
            tail_mut(dx, t * inp),
            tl * inp,
        );
    }
    a_w(
        batch,
        width,
        h,
        dgates,
        width,
        w_hh,
        Accumulate::Overwrite,
        dh,
        h,
    );
}

/// Debug-build length checks shared by the forward steps.
#[allow(clippy::too_many_arguments)]
fn check_forward<T: Float>(
    g: &RnnGeom,
    kind: RnnKind,
    batch: usize,
    t: usize,
    [x, w_ih, w_hh]: [&[T]; 3],
    gates: &[T],
    cell: &[T],
    y: &[T],
) {
    debug_assert!(t < g.t_len, "{kind:?} step: t = {t} ≥ T = {}", g.t_len);
    debug_assert_eq!(x.len(), batch * g.t_len * g.inp, "{kind:?} step: x");
    debug_assert_eq!(y.len(), batch * g.t_len * g.hidden, "{kind:?} step: y");
    debug_assert_eq!(w_ih.len(), g.weight_ih_len(kind), "{kind:?} step: w_ih");
    debug_assert_eq!(w_hh.len(), g.weight_hh_len(kind), "{kind:?} step: w_hh");
    debug_assert_eq!(
        gates.len(),
        g.gates_len(kind, batch),
        "{kind:?} step: gates"
    );
    debug_assert_eq!(cell.len(), g.cell_len(kind, batch), "{kind:?} step: cell");
}

/// Debug-build length checks of the biases of a forward step.
fn check_bias<T: Float>(g: &RnnGeom, kind: RnnKind, b_ih: &[T], b_hh: &[T]) {
    debug_assert_eq!(b_ih.len(), g.bias_len(kind), "{kind:?} step: b_ih");
    debug_assert_eq!(b_hh.len(), g.bias_len(kind), "{kind:?} step: b_hh");
}

/// Debug-build length checks shared by the backward steps (on top of
/// [`check_forward`]).
fn check_backward<T: Float>(
    g: &RnnGeom,
    kind: RnnKind,
    batch: usize,
    [dy, dh, dc, dgates]: [&[T]; 4],
    grads: [&[T]; 4],
    dx: Option<&[T]>,
) {
    debug_assert_eq!(
        dy.len(),
        batch * g.t_len * g.hidden,
        "{kind:?} backward: dy"
    );
    debug_assert_eq!(dh.len(), g.carry_len(batch), "{kind:?} backward: dh");
    let dc_len = if kind == RnnKind::Lstm {
        g.carry_len(batch)
    } else {
        0
    };
    debug_assert_eq!(dc.len(), dc_len, "{kind:?} backward: dc");
    debug_assert_eq!(
        dgates.len(),
        g.scratch_len(kind, batch),
        "{kind:?} backward: dgates"
    );
    let want = [
        g.weight_ih_len(kind),
        g.weight_hh_len(kind),
        g.bias_len(kind),
        g.bias_len(kind),
    ];
    for (gr, (want, name)) in grads
        .iter()
        .zip(want.iter().zip(["dw_ih", "dw_hh", "db_ih", "db_hh"]))
    {
        debug_assert_eq!(gr.len(), *want, "{kind:?} backward: {name}");
    }
    if let Some(dx) = dx {
        debug_assert_eq!(dx.len(), batch * g.t_len * g.inp, "{kind:?} backward: dx");
    }
}

/// The last step of each sequence: `y[b, f] = x[b, T−1, f]` for `x` `[batch, t_len, f]`
/// and `y` `[batch, f]` (overwritten). Requires `t_len ≥ 1`.
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
pub fn last<T: Float>(batch: usize, t_len: usize, f: usize, x: &[T], y: &mut [T]) {
    debug_assert!(t_len >= 1, "last: empty sequence");
    debug_assert_eq!(x.len(), batch * t_len * f, "last: x");
    debug_assert_eq!(y.len(), batch * f, "last: y");
    if f == 0 {
        return;
    }
    for (yr, xs) in y
        .chunks_exact_mut(f)
        .zip(x.chunks_exact(t_len * f))
        .take(batch)
    {
        yr.copy_from_slice(&xs[(t_len - 1) * f..]);
    }
}

/// The backward of [`last`]: `dx[b, T−1, f] (+)= dy[b, f]`; the other steps get no
/// residual ([`Accumulate::Overwrite`] sets them to 0, [`Accumulate::Add`] leaves them
/// as they are).
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
pub fn last_backward<T: Float>(
    batch: usize,
    t_len: usize,
    f: usize,
    dy: &[T],
    dx: &mut [T],
    accumulate: Accumulate,
) {
    debug_assert!(t_len >= 1, "last_backward: empty sequence");
    debug_assert_eq!(dy.len(), batch * f, "last_backward: dy");
    debug_assert_eq!(dx.len(), batch * t_len * f, "last_backward: dx");
    if f == 0 {
        return;
    }
    for (gr, dxs) in dy
        .chunks_exact(f)
        .zip(dx.chunks_exact_mut(t_len * f))
        .take(batch)
    {
        let (early, last) = dxs.split_at_mut((t_len - 1) * f);
        if !accumulate.is_add() {
            early.fill(T::ZERO);
        }
        for (d, &g) in last.iter_mut().zip(gr) {
            put(d, g, accumulate);
        }
    }
}

#[cfg(test)]
mod testing;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::fd_check::nans;

    #[test]
    fn sizes() {
        let g = RnnGeom {
            t_len: 3,
            inp: 5,
            hidden: 4,
        };
        let kinds = [RnnKind::Rnn, RnnKind::Lstm, RnnKind::Gru];
        let got: Vec<_> = kinds
            .iter()
            .map(|&k| {
                (
                    g.weight_ih_len(k),
                    g.weight_hh_len(k),
                    g.gates_len(k, 2),
                    g.cell_len(k, 2),
                    g.scratch_len(k, 2),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (20, 16, 24, 0, 8),
                (80, 64, 96, 24, 32),
                (60, 48, 96, 0, 32)
            ]
        );
        assert_eq!(g.carry_len(2), 8);
    }

    #[test]
    fn last_and_its_backward() {
        // x [2, 3, 2]: the last steps are [5 6] and [11 12].
        let x: Vec<f64> = (1..=12).map(f64::from).collect();
        let mut y = nans(4);
        last(2, 3, 2, &x, &mut y);
        assert_eq!(y, [5.0, 6.0, 11.0, 12.0]);
        let mut dx = nans(12);
        last_backward(
            2,
            3,
            2,
            &[1.0, 2.0, 3.0, 4.0],
            &mut dx,
            Accumulate::Overwrite,
        );
        assert_eq!(
            dx,
            [0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 3.0, 4.0]
        );
        let mut dx = vec![1.0; 12];
        last_backward(2, 3, 2, &[1.0, 2.0, 3.0, 4.0], &mut dx, Accumulate::Add);
        assert_eq!(
            dx,
            [1.0, 1.0, 1.0, 1.0, 2.0, 3.0, 1.0, 1.0, 1.0, 1.0, 4.0, 5.0]
        );
    }
}
