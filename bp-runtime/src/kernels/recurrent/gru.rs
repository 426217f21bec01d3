//! The GRU (PyTorch's `nn.GRU`, gates in the order r, z, n):
//! `r = σ(W_ir x + b_ir + W_hr h + b_hr)`, `z = σ(W_iz x + b_iz + W_hz h + b_hz)`,
//! `n = tanh(W_in x + b_in + r⊙(W_hn h + b_hn))`, `h' = (1 − z)⊙n + z⊙h`.
//!
//! The `gates` workspace has width `4H` per step: `[r, z, n, W_hn·h + b_hn]` (the last
//! is needed by backward and cannot be recovered from `n`). The backward scratch
//! `dgates` is `[B, 4H]`: `[δr, δz, δn, δhn]`, the residuals of the pre-activations of
//! r and z (shared by both sides), of the input side of n (`W_in x + b_in`) and of
//! `W_hn h + b_hn`, so the input side reads its residuals from columns `0..3H` and the
//! hidden side from columns `0..2H` and `3H..4H`.
#![forbid(unsafe_code)]

use super::{a_w, add_a_wt, adds_params, at_v, col_sums, tail, tail_mut};
use super::{check_backward, check_bias, check_forward, sigmoid, RnnGeom, RnnKind};
use crate::kernels::Accumulate;
use crate::Float;

/// Forward step `t` of the GRU for the whole batch: writes `gates[:, t]` (`[r, z, n,
/// W_hn·h_{t−1} + b_hn]`, [`RnnGeom::gates_len`] = `B·T·4H` in all) and `y[:, t] = h_t`,
/// reading `h_{t−1} = y[:, t−1]` (0 at `t = 0`). Layouts and protocol: see [`RnnGeom`].
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
#[allow(clippy::too_many_arguments)]
pub fn gru_step<T: Float>(
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
    check_forward(g, RnnKind::Gru, batch, t, [x, w_ih, w_hh], gates, &[], y);
    check_bias(g, RnnKind::Gru, b_ih, b_hh);
    let (h, w4, tl) = (g.hidden, 4 * g.hidden, g.t_len);
    for b in 0..batch {
        let gr = &mut gates[g.row(b, t, w4)..][..w4];
        for j in 0..2 * h {
            gr[j] = b_ih[j] + b_hh[j];
        }
        gr[2 * h..3 * h].copy_from_slice(&b_ih[2 * h..3 * h]);
        gr[3 * h..].copy_from_slice(&b_hh[2 * h..3 * h]);
    }
    let out = tail_mut(gates, t * w4);
    add_a_wt(
        batch,
        3 * h,
        g.inp,
        tail(x, t * g.inp),
        tl * g.inp,
        w_ih,
        out,
        tl * w4,
    );
    if t > 0 {
        let hp = tail(y, (t - 1) * h);
        let out = tail_mut(gates, t * w4);
        add_a_wt(
            batch,
            2 * h,
            h,
            hp,
            tl * h,
            &w_hh[..2 * h * h],
            out,
            tl * w4,
        );
        let out = tail_mut(gates, t * w4 + 3 * h);
        add_a_wt(batch, h, h, hp, tl * h, &w_hh[2 * h * h..], out, tl * w4);
    }
    for b in 0..batch {
        let (gr, at) = (&mut gates[g.row(b, t, w4)..][..w4], g.row(b, t, h));
        let (prev, now) = y.split_at_mut(at);
        activate(gr, (t > 0).then(|| &prev[at - h..]), &mut now[..h]);
    }
}

/// The GRU cell on one row: `gr = [r z n hn]` with the pre-activations of r, z and of
/// n's input side in, `[r z n]` after activation out; `y = (1 − z)⊙n + z⊙h_prev` (`h_prev`
/// 0 when `None`). Whole-slice loops with one function each: the compiler vectorizes them.
#[inline(always)]
pub(super) fn activate<T: Float>(gr: &mut [T], h_prev: Option<&[T]>, now: &mut [T]) {
    let h = now.len();
    let (rz, rest) = gr.split_at_mut(2 * h);
    let (gn, ghn) = rest.split_at_mut(h);
    for v in rz.iter_mut() {
        *v = sigmoid(*v);
    }
    let (gr_, gz) = rz.split_at(h);
    for ((n, &r), &hn) in gn.iter_mut().zip(gr_).zip(ghn.iter()) {
        *n = (*n + r * hn).tanh_fast();
    }
    match h_prev {
        Some(hp) => {
            for (((yv, &z), &n), &hp) in now.iter_mut().zip(gz).zip(gn.iter()).zip(hp) {
                *yv = (T::ONE - z) * n + z * hp;
            }
        }
        None => {
            for ((yv, &z), &n) in now.iter_mut().zip(gz).zip(gn.iter()) {
                *yv = (T::ONE - z) * n;
            }
        }
    }
}

/// Backward step `t` of the GRU (BPTT, called for `t = T−1` down to 0). With
/// `δh = dy[:, t] + dh` (`dh` taken as 0 at `t = T−1`) and `hn = W_hn h_{t−1} + b_hn`:
/// `δn = δh⊙(1−z)⊙(1−n²)`, `δz = δh⊙(h_{t−1} − n)⊙z(1−z)`, `δr = δn⊙hn⊙r(1−r)`,
/// `δhn = δn⊙r`. Then `dW_ih (+)= [δr δz δn]ᵀ·x[:, t]`, `dW_hh (+)= [δr δz δhn]ᵀ·h_{t−1}`,
/// `db_ih (+)= Σ_b [δr δz δn]`, `db_hh (+)= Σ_b [δr δz δhn]`,
/// `dx[:, t] (+)= [δr δz δn]·W_ih`, and on return `dh = δh⊙z + [δr δz δhn]·W_hh`.
/// `dgates` is scratch of [`RnnGeom::scratch_len`] (`B·4H`). Overwriting and adding:
/// see [`RnnGeom`].
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
#[allow(clippy::too_many_arguments)]
pub fn gru_step_backward<T: Float>(
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
    let kind = RnnKind::Gru;
    check_forward(g, kind, batch, t, [x, w_ih, w_hh], gates, &[], y);
    check_backward(
        g,
        kind,
        batch,
        [dy, dh, &[], dgates],
        [dw_ih, dw_hh, db_ih, db_hh],
        dx.as_deref(),
    );
    gru_gate_residuals(g, batch, t, y, gates, dy, dh, (dgates, 0, 4 * g.hidden));
    let grads = [dw_ih, dw_hh, db_ih, db_hh];
    gru_param_grads(
        g,
        batch,
        t,
        x,
        y,
        dgates,
        grads,
        adds_params(g, t, acc_params),
    );
    let (h, w4, inp, tl) = (g.hidden, 4 * g.hidden, g.inp, g.t_len);
    let (hh, dn_hh) = (2 * h * h, tail(dgates, 3 * h));
    if let Some(dx) = dx {
        a_w(
            batch,
            3 * h,
            inp,
            dgates,
            w4,
            w_ih,
            acc_x,
            tail_mut(dx, t * inp),
            tl * inp,
        );
    }
    a_w(
        batch,
        2 * h,
        h,
        dgates,
        w4,
        &w_hh[..hh],
        Accumulate::Add,
        dh,
        h,
    );
    a_w(batch, h, h, dn_hh, w4, &w_hh[hh..], Accumulate::Add, dh, h);
}

/// The parameter gradients of [`gru_step_backward`] from `dgates = [δr δz δn δhn]`:
/// `dW_ih (+)= [δr δz δn]ᵀ·x[:, t]`, `dW_hh (+)= [δr δz δhn]ᵀ·h_{t−1}` (overwritten with
/// 0 at `t = 0` unless adding), `db_ih (+)= Σ_b [δr δz δn]`, `db_hh (+)= Σ_b [δr δz δhn]`.
#[allow(clippy::too_many_arguments)]
fn gru_param_grads<T: Float>(
    g: &RnnGeom,
    batch: usize,
    t: usize,
    x: &[T],
    y: &[T],
    dgates: &[T],
    [dw_ih, dw_hh, db_ih, db_hh]: [&mut [T]; 4],
    acc: Accumulate,
) {
    let (h, w4, inp, tl) = (g.hidden, 4 * g.hidden, g.inp, g.t_len);
    let (hh, dn_hh) = (2 * h * h, tail(dgates, 3 * h));
    at_v(
        batch,
        3 * h,
        inp,
        dgates,
        w4,
        tail(x, t * inp),
        tl * inp,
        acc,
        dw_ih,
    );
    if t > 0 {
        let hp = tail(y, (t - 1) * h);
        at_v(
            batch,
            2 * h,
            h,
            dgates,
            w4,
            hp,
            tl * h,
            acc,
            &mut dw_hh[..hh],
        );
        at_v(batch, h, h, dn_hh, w4, hp, tl * h, acc, &mut dw_hh[hh..]);
    } else if !acc.is_add() {
        dw_hh.fill(T::ZERO);
    }
    col_sums(batch, 3 * h, dgates, w4, acc, db_ih);
    col_sums(batch, 2 * h, dgates, w4, acc, &mut db_hh[..2 * h]);
    col_sums(batch, h, dn_hh, w4, acc, &mut db_hh[2 * h..]);
}

/// The elementwise part of [`gru_step_backward`]: `dgates = [δr δz δn δhn]` (the row of
/// batch element `b` at `dg_off + b·dg_stride`) and the direct part of the carry,
/// `dh = δh⊙z`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn gru_gate_residuals<T: Float>(
    g: &RnnGeom,
    batch: usize,
    t: usize,
    y: &[T],
    gates: &[T],
    dy: &[T],
    dh: &mut [T],
    (dgates, dg_off, dg_stride): (&mut [T], usize, usize),
) {
    let (h, w4) = (g.hidden, 4 * g.hidden);
    if t + 1 == g.t_len {
        dh[..batch * h].fill(T::ZERO); // no later step: the carry starts at 0
    }
    for b in 0..batch {
        let (gr, at) = (&gates[g.row(b, t, w4)..][..w4], g.row(b, t, h));
        let dg = &mut dgates[dg_off + b * dg_stride..][..w4];
        // Equal-length slices and one indexed loop: the bounds checks fold away and it
        // vectorizes. At t = 0, h_{t−1} = 0 (any row stands in and is multiplied by 0).
        let (r, z, n, hn) = (
            &gr[..h],
            &gr[h..2 * h],
            &gr[2 * h..3 * h],
            &gr[3 * h..4 * h],
        );
        let hp = if t > 0 {
            &y[at - h..at]
        } else {
            &y[at..at + h]
        };
        let keep = if t > 0 { T::ONE } else { T::ZERO };
        let (dy, dhr) = (&dy[at..at + h], &mut dh[b * h..(b + 1) * h]);
        let (dr, rest) = dg.split_at_mut(h);
        let (dz, rest) = rest.split_at_mut(h);
        let (dn_, dhn) = rest.split_at_mut(h);
        let (dr, dz, dn_, dhn) = (&mut dr[..h], &mut dz[..h], &mut dn_[..h], &mut dhn[..h]);
        for j in 0..h {
            let (rv, zv, nv, hnv) = (r[j], z[j], n[j], hn[j]);
            let h_prev = keep * hp[j];
            let dht = dy[j] + dhr[j];
            let dn = dht * (T::ONE - zv) * (T::ONE - nv * nv);
            dr[j] = dn * hnv * rv * (T::ONE - rv);
            dz[j] = dht * (h_prev - nv) * zv * (T::ONE - zv);
            dn_[j] = dn;
            dhn[j] = dn * rv;
            dhr[j] = dht * zv;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{affine, check_cell, Params};
    use super::*;

    fn sig(v: f64) -> f64 {
        1.0 / (1.0 + (-v).exp())
    }

    /// PyTorch's equations by direct loops (zero initial state).
    fn naive(g: &RnnGeom, batch: usize, p: &Params) -> Vec<f64> {
        let [x, w_ih, w_hh, b_ih, b_hh] = p;
        let (h, inp) = (g.hidden, g.inp);
        let mut y = vec![0.0; batch * g.t_len * h];
        for b in 0..batch {
            let mut hs = vec![0.0; h];
            for t in 0..g.t_len {
                let xt = &x[(b * g.t_len + t) * inp..][..inp];
                let (a, c) = (affine(w_ih, b_ih, xt), affine(w_hh, b_hh, &hs));
                hs = (0..h)
                    .map(|j| {
                        let r = sig(a[j] + c[j]);
                        let z = sig(a[h + j] + c[h + j]);
                        let n = (a[2 * h + j] + r * c[2 * h + j]).tanh();
                        (1.0 - z) * n + z * hs[j]
                    })
                    .collect();
                y[(b * g.t_len + t) * h..][..h].copy_from_slice(&hs);
            }
        }
        y
    }

    #[test]
    fn matches_pytorch_equations_and_finite_differences() {
        check_cell(RnnKind::Gru, naive);
    }
}
