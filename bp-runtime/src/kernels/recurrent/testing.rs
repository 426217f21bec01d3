//! The test harness shared by the three cells: run a kernel's forward over all steps,
//! run full BPTT, and compare with a naive reference of PyTorch's equations and with
//! central finite differences of `J = Σ R⊙y`.
#![forbid(unsafe_code)]

use super::{
    gru_step, gru_step_backward, lstm_step, lstm_step_backward, rnn_step, rnn_step_backward,
};
use super::{RnnGeom, RnnKind};
use crate::kernels::fd_check::{assert_grad, dot, fd_grad, nans, rand_vec};
use crate::kernels::Accumulate::{self, Add, Overwrite};

/// `[x, w_ih, w_hh, b_ih, b_hh]` of one test case.
pub(super) type Params = [Vec<f64>; 5];

/// `W·v + b` for `W` row-major `[b.len(), v.len()]`.
pub(super) fn affine(w: &[f64], b: &[f64], v: &[f64]) -> Vec<f64> {
    let n = v.len();
    let row = |r: usize| {
        w[r * n..(r + 1) * n]
            .iter()
            .zip(v)
            .map(|(a, b)| a * b)
            .sum::<f64>()
    };
    b.iter()
        .enumerate()
        .map(|(r, &bias)| bias + row(r))
        .collect()
}

fn params(kind: RnnKind, g: &RnnGeom, batch: usize, seed: u64) -> Params {
    let lens = [
        batch * g.t_len * g.inp,
        g.weight_ih_len(kind),
        g.weight_hh_len(kind),
        g.bias_len(kind),
        g.bias_len(kind),
    ];
    std::array::from_fn(|i| rand_vec(lens[i], seed + i as u64))
}

/// The kernels' forward over all steps: `[y, gates, cell]`, every buffer starting as
/// NaN so that a read before a write shows.
fn forward(kind: RnnKind, g: &RnnGeom, batch: usize, p: &Params) -> [Vec<f64>; 3] {
    let [x, wi, wh, bi, bh] = p;
    let mut y = nans(batch * g.t_len * g.hidden);
    let mut gates = nans(g.gates_len(kind, batch));
    let mut cell = nans(g.cell_len(kind, batch));
    for t in 0..g.t_len {
        match kind {
            RnnKind::Rnn => rnn_step(g, batch, t, x, wi, wh, bi, bh, &mut gates, &mut y),
            RnnKind::Lstm => lstm_step(
                g, batch, t, x, wi, wh, bi, bh, &mut gates, &mut cell, &mut y,
            ),
            RnnKind::Gru => gru_step(g, batch, t, x, wi, wh, bi, bh, &mut gates, &mut y),
        }
    }
    [y, gates, cell]
}

/// Full BPTT with `dy = r` into `grads = [dx, dw_ih, dw_hh, db_ih, db_hh]`; `acc_x` is
/// `None` to pass no `dx`. Carries and scratch start as NaN.
#[allow(clippy::too_many_arguments)]
fn backward(
    kind: RnnKind,
    g: &RnnGeom,
    batch: usize,
    p: &Params,
    [y, gates, cell]: &[Vec<f64>; 3],
    r: &[f64],
    grads: &mut [Vec<f64>; 5],
    acc_params: Accumulate,
    acc_x: Option<Accumulate>,
) {
    let [x, wi, wh, _, _] = p;
    let [dx, dwi, dwh, dbi, dbh] = grads;
    let mut dh = nans(g.carry_len(batch));
    let mut dc = nans(if kind == RnnKind::Lstm {
        g.carry_len(batch)
    } else {
        0
    });
    let mut dg = nans(g.scratch_len(kind, batch));
    let ax = acc_x.unwrap_or(Overwrite);
    for t in (0..g.t_len).rev() {
        let dx = acc_x.map(|_| &mut dx[..]);
        match kind {
            RnnKind::Rnn => rnn_step_backward(
                g, batch, t, x, y, wi, wh, gates, r, &mut dh, &mut dg, dwi, dwh, dbi, dbh,
                acc_params, dx, ax,
            ),
            RnnKind::Lstm => lstm_step_backward(
                g, batch, t, x, y, wi, wh, gates, cell, r, &mut dh, &mut dc, &mut dg, dwi, dwh,
                dbi, dbh, acc_params, dx, ax,
            ),
            RnnKind::Gru => gru_step_backward(
                g, batch, t, x, y, wi, wh, gates, r, &mut dh, &mut dg, dwi, dwh, dbi, dbh,
                acc_params, dx, ax,
            ),
        }
    }
}

const NAMES: [&str; 5] = ["dx", "dw_ih", "dw_hh", "db_ih", "db_hh"];

/// For several geometries (the 3-step batch-2 case with inp 3, hidden 4; a single step;
/// a longer sequence with batch 1): the forward equals `naive` (PyTorch's equations),
/// and full BPTT fed `dy = R` equals the central differences of `J = Σ R⊙y` with
/// respect to x and every parameter — overwriting, accumulating (twice the gradient),
/// overwriting again, and without `dx`.
pub(super) fn check_cell(kind: RnnKind, naive: fn(&RnnGeom, usize, &Params) -> Vec<f64>) {
    let cases = [
        (
            RnnGeom {
                t_len: 3,
                inp: 3,
                hidden: 4,
            },
            2,
        ),
        (
            RnnGeom {
                t_len: 1,
                inp: 2,
                hidden: 3,
            },
            3,
        ),
        (
            RnnGeom {
                t_len: 5,
                inp: 1,
                hidden: 2,
            },
            1,
        ),
    ];
    for (n, (g, batch)) in cases.into_iter().enumerate() {
        let seed = 1000 + 10 * n as u64;
        let p = params(kind, &g, batch, seed);
        let fwd = forward(kind, &g, batch, &p);
        assert_grad(&fwd[0], &naive(&g, batch, &p), &format!("{kind:?} {g:?} y"));
        let r = rand_vec(fwd[0].len(), seed + 7);
        let mut want: Vec<Vec<f64>> = (0..5)
            .map(|k| {
                let mut q = p.clone();
                fd_grad(&p[k], 1e-3, |v| {
                    q[k].copy_from_slice(v);
                    dot(&r, &naive(&g, batch, &q))
                })
            })
            .collect();
        if g.t_len == 1 {
            // W_hh only ever multiplies the zero initial state: its gradient is exactly
            // 0, and the differences hold only rounding noise, which no relative
            // tolerance can judge.
            want[2].fill(0.0);
        }
        let twice: Vec<Vec<f64>> = want
            .iter()
            .map(|w| w.iter().map(|v| 2.0 * v).collect())
            .collect();
        let mut grads: [Vec<f64>; 5] = std::array::from_fn(|k| nans(p[k].len()));
        let runs = [
            (Overwrite, Some(Overwrite), &want),
            (Add, Some(Add), &twice),
            (Overwrite, Some(Overwrite), &want),
        ];
        for (run, (acc_p, acc_x, expect)) in runs.into_iter().enumerate() {
            backward(kind, &g, batch, &p, &fwd, &r, &mut grads, acc_p, acc_x);
            for k in 0..5 {
                let what = format!("{kind:?} {g:?} run {run}: {}", NAMES[k]);
                assert_grad(&grads[k], &expect[k], &what);
            }
        }
        let mut no_dx: [Vec<f64>; 5] = std::array::from_fn(|k| nans(p[k].len()));
        backward(kind, &g, batch, &p, &fwd, &r, &mut no_dx, Overwrite, None);
        assert!(
            no_dx[0].iter().all(|v| v.is_nan()),
            "dx was written without being asked for"
        );
        for k in 1..5 {
            assert_grad(
                &no_dx[k],
                &want[k],
                &format!("{kind:?} {g:?} without dx: {}", NAMES[k]),
            );
        }
    }
}
