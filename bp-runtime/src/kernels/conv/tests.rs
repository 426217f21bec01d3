//! Tests of the convolution kernels against a direct convolution and finite differences.
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
                                if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                    continue;
                                }
                                let xi = ((b * g.c + c) * g.h + iy as usize) * g.w + ix as usize;
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
        let j = |x: &[f64], w: &[f64], bias: &[f64]| dot(&r, &naive(g, batch, x, w, Some(bias)));
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
            &mut [],
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
            &mut [],
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
            &mut [],
        );
        assert_grad(&dw2, &want_dw, "dw alone");
    }
}

/// Geometries with enough work per sample that a batch is split over threads.
const BIG: &[Conv2dGeom] = &[
    Conv2dGeom {
        c: 4,
        h: 12,
        w: 12,
        out: 8,
        k: 3,
        stride: 1,
        pad: 1,
    },
    Conv2dGeom {
        c: 3,
        h: 20,
        w: 18,
        out: 6,
        k: 5,
        stride: 2,
        pad: 2,
    },
    Conv2dGeom {
        c: 16,
        h: 16,
        w: 16,
        out: 16,
        k: 1,
        stride: 1,
        pad: 0,
    },
];

/// The batch split over 1, 2 and 3 parts: the forward is bit-for-bit the one-part
/// result, the backward agrees with it to rounding (dw sums its parts in another
/// order) and is the same on every run, with and without accumulation.
#[test]
fn batch_split_over_threads_agrees_with_one_part() {
    let batch = 7;
    for (n, g) in BIG.iter().enumerate() {
        assert!(
            g.macs() >= super::split::SPLIT_THRESHOLD,
            "geometry {n} too small to split"
        );
        let s = 300 + 10 * n as u64;
        let (x, w, bias) = (
            rand_vec(batch * g.in_len(), s),
            rand_vec(g.weight_len(), s + 1),
            rand_vec(g.out, s + 2),
        );
        let dy = rand_vec(batch * g.out_len(), s + 3);
        let run = |threads: usize, with_dx: bool, acc: Accumulate| {
            let mut y = nans(batch * g.out_len());
            let mut cols = nans(3 * g.cols_len());
            forward_on(threads, g, batch, &x, &w, Some(&bias), &mut y, &mut cols);
            let (mut dw, mut db, mut dx) = (
                rand_vec(w.len(), 1),
                rand_vec(g.out, 2),
                rand_vec(x.len(), 3),
            );
            let mut dcols = nans(3 * g.cols_len());
            let mut dw_parts = nans(2 * g.weight_len());
            let grads = BackwardGrads {
                dw: &mut dw,
                db: Some(&mut db),
                acc_params: acc,
                dx: with_dx.then_some(&mut dx[..]),
                acc_x: acc,
            };
            backward_on(
                threads,
                g,
                batch,
                &x,
                &w,
                &dy,
                grads,
                [&mut cols, &mut dcols, &mut dw_parts],
            );
            (y, dw, db, dx)
        };
        for with_dx in [true, false] {
            for acc in [Overwrite, Add] {
                let one = run(1, with_dx, acc);
                assert_grad(&one.0, &naive(g, batch, &x, &w, Some(&bias)), "y");
                for threads in [2, 3] {
                    let split = run(threads, with_dx, acc);
                    assert_eq!(split.0, one.0, "y, {threads} threads");
                    assert_eq!(split, run(threads, with_dx, acc), "{threads} threads twice");
                    assert_grad(&split.1, &one.1, "dw");
                    assert_eq!(split.2, one.2, "db");
                    assert_eq!(split.3, one.3, "dx");
                }
            }
        }
    }
}
