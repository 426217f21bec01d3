//! The Elman RNN with tanh (PyTorch's `nn.RNN`): `h_t = tanh(W_ih x_t + b_ih +
//! W_hh h_{t−1} + b_hh)`. Its `gates` workspace keeps `h_t` (width `H`), so backward
//! needs only `1 − h_t²`.
#![forbid(unsafe_code)]

use super::{
    backward_tail, check_backward, check_bias, check_forward, preactivate, RnnGeom, RnnKind,
};
use crate::kernels::Accumulate;
use crate::Float;

/// Forward step `t` of the tanh RNN for the whole batch:
/// `y[:, t] = tanh(x[:, t]·W_ihᵀ + b_ih + y[:, t−1]·W_hhᵀ + b_hh)` (`y[:, −1] = 0`);
/// `gates[:, t]` receives the same values. Layouts and protocol: see [`RnnGeom`].
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
#[allow(clippy::too_many_arguments)]
pub fn rnn_step<T: Float>(
    g: &RnnGeom,
    batch: usize,
    t: usize,
    x: &[T],
    w_ih: &[T],
    w_hh: &[T],
    b_ih: &[T],
    b_hh: &[T],
    gates: &mut [T],
    y: &mut [T],
) {
    check_forward(g, RnnKind::Rnn, batch, t, [x, w_ih, w_hh], gates, &[], y);
    check_bias(g, RnnKind::Rnn, b_ih, b_hh);
    let h = g.hidden;
    preactivate(g, batch, t, h, x, w_ih, w_hh, b_ih, b_hh, gates, y);
    for b in 0..batch {
        let at = g.row(b, t, h);
        let gr = &mut gates[at..at + h];
        for gv in gr.iter_mut() {
            *gv = gv.tanh_fast();
        }
        y[at..at + h].copy_from_slice(gr);
    }
}

/// Backward step `t` of the tanh RNN (BPTT, called for `t = T−1` down to 0): with
/// `δ = (dy[:, t] + dh) ⊙ (1 − h_t²)` (`dh` taken as 0 at `t = T−1`),
/// `dW_ih (+)= δᵀ·x[:, t]`, `dW_hh (+)= δᵀ·h_{t−1}`, `db_ih (+)= Σ_b δ`,
/// `db_hh (+)= Σ_b δ`, `dx[:, t] (+)= δ·W_ih` and on return `dh = δ·W_hh`.
/// `dgates` is scratch of [`RnnGeom::scratch_len`] (`B·H`). Overwriting and adding:
/// see [`RnnGeom`].
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
#[allow(clippy::too_many_arguments)]
pub fn rnn_step_backward<T: Float>(
    g: &RnnGeom,
    batch: usize,
    t: usize,
    x: &[T],
    y: &[T],
    w_ih: &[T],
    w_hh: &[T],
    gates: &[T],
    dy: &[T],
    dh: &mut [T],
    dgates: &mut [T],
    dw_ih: &mut [T],
    dw_hh: &mut [T],
    db_ih: &mut [T],
    db_hh: &mut [T],
    acc_params: Accumulate,
    dx: Option<&mut [T]>,
    acc_x: Accumulate,
) {
    let kind = RnnKind::Rnn;
    check_forward(g, kind, batch, t, [x, w_ih, w_hh], gates, &[], y);
    check_backward(
        g,
        kind,
        batch,
        [dy, dh, &[], dgates],
        [dw_ih, dw_hh, db_ih, db_hh],
        dx.as_deref(),
    );
    let (h, carry) = (g.hidden, t + 1 < g.t_len);
    for b in 0..batch {
        let at = g.row(b, t, h);
        let rows = gates[at..at + h]
            .iter()
            .zip(&dy[at..at + h])
            .zip(&dh[b * h..(b + 1) * h]);
        for (((&hv, &d), &c), dg) in rows.zip(&mut dgates[b * h..(b + 1) * h]) {
            let d = if carry { d + c } else { d };
            *dg = d * (T::ONE - hv * hv);
        }
    }
    let grads = [dw_ih, dw_hh, db_ih, db_hh];
    backward_tail(
        g, batch, t, h, x, y, w_ih, w_hh, dgates, dh, grads, acc_params, dx, acc_x,
    );
}

#[cfg(test)]
mod tests {
    use super::super::testing::{affine, check_cell, Params};
    use super::*;
    use crate::kernels::fd_check::assert_grad;

    /// PyTorch's equations by direct loops: `h_t = tanh(W_ih x_t + b_ih + W_hh h_{t−1} +
    /// b_hh)`, `h_{−1} = 0`.
    fn naive(g: &RnnGeom, batch: usize, p: &Params) -> Vec<f64> {
        let [x, w_ih, w_hh, b_ih, b_hh] = p;
        let (h, inp) = (g.hidden, g.inp);
        let mut y = vec![0.0; batch * g.t_len * h];
        for b in 0..batch {
            let mut hs = vec![0.0; h];
            for t in 0..g.t_len {
                let xt = &x[(b * g.t_len + t) * inp..][..inp];
                let (a, c) = (affine(w_ih, b_ih, xt), affine(w_hh, b_hh, &hs));
                hs = a.iter().zip(&c).map(|(a, c)| (a + c).tanh()).collect();
                y[(b * g.t_len + t) * h..][..h].copy_from_slice(&hs);
            }
        }
        y
    }

    #[test]
    fn matches_pytorch_equations_and_finite_differences() {
        check_cell(RnnKind::Rnn, naive);
    }

    #[test]
    fn hand_computed() {
        // One unit: h_0 = tanh(0.5·1 + 0.1 + 0.2) = tanh(0.8),
        // h_1 = tanh(0.5·2 + 0.3 − 1·h_0).
        let g = RnnGeom {
            t_len: 2,
            inp: 1,
            hidden: 1,
        };
        let (mut gates, mut y) = ([0.0f64; 2], [0.0f64; 2]);
        for t in 0..2 {
            rnn_step(
                &g,
                1,
                t,
                &[1.0, 2.0],
                &[0.5],
                &[-1.0],
                &[0.1],
                &[0.2],
                &mut gates,
                &mut y,
            );
        }
        let h0 = 0.8f64.tanh();
        assert_grad(&y, &[h0, (1.3 - h0).tanh()], "y");
    }
}
