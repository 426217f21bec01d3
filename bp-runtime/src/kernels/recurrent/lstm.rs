//! The LSTM (PyTorch's `nn.LSTM`, gates in the order i, f, g, o):
//! `i = σ(·)`, `f = σ(·)`, `g = tanh(·)`, `o = σ(·)` of `W_ih x_t + b_ih + W_hh h_{t−1} +
//! b_hh` (the rows of each gate), `c_t = f⊙c_{t−1} + i⊙g`, `h_t = o⊙tanh(c_t)`.
//! The `gates` workspace keeps `i, f, g, o` after activation (width `4H`), `cell` keeps
//! `c_t`.
#![forbid(unsafe_code)]

use super::{
    backward_tail, check_backward, check_bias, check_forward, preactivate, sigmoid, RnnGeom,
    RnnKind,
};
use crate::kernels::Accumulate;
use crate::Float;

/// Forward step `t` of the LSTM for the whole batch: writes `gates[:, t]` (i, f, g, o
/// after activation), `cell[:, t] = c_t` and `y[:, t] = h_t`, reading `h_{t−1} =
/// y[:, t−1]` and `c_{t−1} = cell[:, t−1]` (both 0 at `t = 0`). `gates` has
/// [`RnnGeom::gates_len`] (`B·T·4H`) elements and `cell` [`RnnGeom::cell_len`]
/// (`B·T·H`). Layouts and protocol: see [`RnnGeom`].
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
#[allow(clippy::too_many_arguments)]
pub fn lstm_step<T: Float>(
    g: &RnnGeom,
    batch: usize,
    t: usize,
    x: &[T],
    w_ih: &[T],
    w_hh: &[T],
    b_ih: &[T],
    b_hh: &[T],
    gates: &mut [T],
    cell: &mut [T],
    y: &mut [T],
) {
    check_forward(g, RnnKind::Lstm, batch, t, [x, w_ih, w_hh], gates, cell, y);
    check_bias(g, RnnKind::Lstm, b_ih, b_hh);
    let (h, w4) = (g.hidden, 4 * g.hidden);
    preactivate(g, batch, t, w4, x, w_ih, w_hh, b_ih, b_hh, gates, y);
    for b in 0..batch {
        let (gr, at) = (&mut gates[g.row(b, t, w4)..][..w4], g.row(b, t, h));
        let (cells, ys) = (&mut cell[..at + h], &mut y[at..at + h]);
        let (c_prev, c_now) = cells.split_at_mut(at);
        let c_prev = (t > 0).then(|| &c_prev[at - h..]);
        activate(gr, c_prev, c_now, ys);
    }
}

/// The LSTM cell on one row: the gates `[i f g o]` (pre-activations in, activations out),
/// `c = f⊙c_prev + i⊙g` (`c_prev` 0 when `None`) and `y = o⊙tanh(c)`. Each loop runs over
/// whole slices with one function, so the compiler vectorizes it.
#[inline(always)]
pub(super) fn activate<T: Float>(
    gr: &mut [T],
    c_prev: Option<&[T]>,
    c_now: &mut [T],
    ys: &mut [T],
) {
    let h = ys.len();
    let (if_gates, rest) = gr.split_at_mut(2 * h);
    let (gg, go) = rest.split_at_mut(h);
    for v in if_gates.iter_mut() {
        *v = sigmoid(*v);
    }
    for v in go.iter_mut() {
        *v = sigmoid(*v);
    }
    for v in gg.iter_mut() {
        *v = v.tanh_fast();
    }
    let (gi, gf) = if_gates.split_at(h);
    match c_prev {
        Some(cp) => {
            for (((c, &cp), &f), (&i, &g)) in c_now
                .iter_mut()
                .zip(cp)
                .zip(gf)
                .zip(gi.iter().zip(gg.iter()))
            {
                *c = f * cp + i * g;
            }
        }
        None => {
            for (c, (&i, &g)) in c_now.iter_mut().zip(gi.iter().zip(gg.iter())) {
                *c = i * g;
            }
        }
    }
    for ((y, &o), &c) in ys.iter_mut().zip(go.iter()).zip(c_now.iter()) {
        *y = o * c.tanh_fast();
    }
}

/// Backward step `t` of the LSTM (BPTT, called for `t = T−1` down to 0). With
/// `δh = dy[:, t] + dh` and `δc = dc + δh⊙o⊙(1 − tanh²c_t)` (`dh`, `dc` taken as 0 at
/// `t = T−1`), the pre-activation residuals are `δi = δc⊙g⊙i(1−i)`,
/// `δf = δc⊙c_{t−1}⊙f(1−f)`, `δg = δc⊙i⊙(1−g²)`, `δo = δh⊙tanh(c_t)⊙o(1−o)`; with
/// `δ = [δi δf δg δo]` (`[B, 4H]`, in `dgates`, scratch of [`RnnGeom::scratch_len`]):
/// `dW_ih (+)= δᵀ·x[:, t]`, `dW_hh (+)= δᵀ·h_{t−1}`, `db_ih`, `db_hh (+)= Σ_b δ`,
/// `dx[:, t] (+)= δ·W_ih`, and on return `dh = δ·W_hh`, `dc = δc⊙f`. Overwriting and
/// adding: see [`RnnGeom`].
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
#[allow(clippy::too_many_arguments)]
pub fn lstm_step_backward<T: Float>(
    g: &RnnGeom,
    batch: usize,
    t: usize,
    x: &[T],
    y: &[T],
    w_ih: &[T],
    w_hh: &[T],
    gates: &[T],
    cell: &[T],
    dy: &[T],
    dh: &mut [T],
    dc: &mut [T],
    dgates: &mut [T],
    dw_ih: &mut [T],
    dw_hh: &mut [T],
    db_ih: &mut [T],
    db_hh: &mut [T],
    acc_params: Accumulate,
    dx: Option<&mut [T]>,
    acc_x: Accumulate,
) {
    let kind = RnnKind::Lstm;
    check_forward(g, kind, batch, t, [x, w_ih, w_hh], gates, cell, y);
    check_backward(
        g,
        kind,
        batch,
        [dy, dh, dc, dgates],
        [dw_ih, dw_hh, db_ih, db_hh],
        dx.as_deref(),
    );
    let (h, w4) = (g.hidden, 4 * g.hidden);
    if t + 1 == g.t_len {
        // No later step: the carries start at 0.
        dh[..batch * h].fill(T::ZERO);
        dc[..batch * h].fill(T::ZERO);
    }
    for b in 0..batch {
        let (gr, at) = (&gates[g.row(b, t, w4)..][..w4], g.row(b, t, h));
        let dg = &mut dgates[b * w4..(b + 1) * w4];
        let c = &cell[at..at + h];
        // At t = 0 there is no c_{t−1}: any row stands in, and δf is zeroed below.
        let c_prev = if t > 0 { &cell[at - h..at] } else { c };
        let rows = GateRows {
            gates: [&gr[..h], &gr[h..2 * h], &gr[2 * h..3 * h], &gr[3 * h..]],
            c,
            c_prev,
            dy: &dy[at..at + h],
            dh: &dh[b * h..(b + 1) * h],
        };
        gate_residuals(rows, dg, &mut dc[b * h..(b + 1) * h]);
        if t == 0 {
            dg[h..2 * h].fill(T::ZERO);
        }
    }
    let grads = [dw_ih, dw_hh, db_ih, db_hh];
    backward_tail(
        g, batch, t, w4, x, y, w_ih, w_hh, dgates, dh, grads, acc_params, dx, acc_x,
    );
}

/// What the backward of one row reads: the gate activations `[i f g o]`, `c_t`,
/// `c_{t−1}`, `dy[:, t]` and the carry `dh`.
pub(super) struct GateRows<'a, T> {
    pub gates: [&'a [T]; 4],
    pub c: &'a [T],
    pub c_prev: &'a [T],
    pub dy: &'a [T],
    pub dh: &'a [T],
}

/// The pre-activation residuals of one row into `dg = [δi δf δg δo]`, and `dc ← δc⊙f`
/// (`dc` holds the carry on entry). Written as short loops over at most four slices
/// each, with the intermediates (`tanh c_t`, `δh`) parked in the outputs they are last
/// read before: one loop over all eleven slices needs more run-time overlap checks than
/// the vectorizer makes and ran scalar (perf, LSTM 32→128 over 100 steps).
#[inline(always)]
pub(super) fn gate_residuals<T: Float>(r: GateRows<T>, dg: &mut [T], dc: &mut [T]) {
    let h = r.c.len();
    let [gi, gf, gg, go] = r.gates;
    let (gi, gf, gg, go) = (&gi[..h], &gf[..h], &gg[..h], &go[..h]);
    let (c, c_prev, dy, dh) = (&r.c[..h], &r.c_prev[..h], &r.dy[..h], &r.dh[..h]);
    let dc = &mut dc[..h];
    let (di, rest) = dg.split_at_mut(h);
    let (df, rest) = rest.split_at_mut(h);
    let (dgg, d_o) = rest.split_at_mut(h);
    let (di, df, dgg, d_o) = (&mut di[..h], &mut df[..h], &mut dgg[..h], &mut d_o[..h]);
    // d_o ← tanh c_t, dgg ← δh = dy + dh.
    for (t, &cv) in d_o.iter_mut().zip(c) {
        *t = cv.tanh_fast();
    }
    for ((d, &a), &b) in dgg.iter_mut().zip(dy).zip(dh) {
        *d = a + b;
    }
    // δc = dc + δh⊙o⊙(1 − tanh²c_t).
    for (((d, &dht), &o), &tc) in dc.iter_mut().zip(&*dgg).zip(go).zip(&*d_o) {
        *d += dht * o * (T::ONE - tc * tc);
    }
    // δo = δh⊙tanh c_t⊙o(1 − o).
    for ((d, &dht), &o) in d_o.iter_mut().zip(&*dgg).zip(go) {
        *d = dht * *d * o * (T::ONE - o);
    }
    for (((d, &dct), &gv), &i) in di.iter_mut().zip(&*dc).zip(gg).zip(gi) {
        *d = dct * gv * i * (T::ONE - i);
    }
    for (((d, &dct), &cp), &f) in df.iter_mut().zip(&*dc).zip(c_prev).zip(gf) {
        *d = dct * cp * f * (T::ONE - f);
    }
    for (((d, &dct), &i), &gv) in dgg.iter_mut().zip(&*dc).zip(gi).zip(gg) {
        *d = dct * i * (T::ONE - gv * gv);
    }
    for (d, &f) in dc.iter_mut().zip(gf) {
        *d *= f;
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{affine, check_cell, Params};
    use super::*;

    fn sig(v: f64) -> f64 {
        1.0 / (1.0 + (-v).exp())
    }

    /// PyTorch's equations by direct loops (zero initial h and c).
    fn naive(g: &RnnGeom, batch: usize, p: &Params) -> Vec<f64> {
        let [x, w_ih, w_hh, b_ih, b_hh] = p;
        let (h, inp) = (g.hidden, g.inp);
        let mut y = vec![0.0; batch * g.t_len * h];
        for b in 0..batch {
            let (mut hs, mut cs) = (vec![0.0; h], vec![0.0; h]);
            for t in 0..g.t_len {
                let xt = &x[(b * g.t_len + t) * inp..][..inp];
                let (a, r) = (affine(w_ih, b_ih, xt), affine(w_hh, b_hh, &hs));
                let pre = |q: usize, j: usize| a[q * h + j] + r[q * h + j];
                for j in 0..h {
                    let (i, f, gg, o) = (
                        sig(pre(0, j)),
                        sig(pre(1, j)),
                        pre(2, j).tanh(),
                        sig(pre(3, j)),
                    );
                    cs[j] = f * cs[j] + i * gg;
                    hs[j] = o * cs[j].tanh();
                }
                y[(b * g.t_len + t) * h..][..h].copy_from_slice(&hs);
            }
        }
        y
    }

    #[test]
    fn matches_pytorch_equations_and_finite_differences() {
        check_cell(RnnKind::Lstm, naive);
    }
}
