//! The dense layer `y = x·Wᵀ + b` over the last dimension and its three backward
//! products. `W` is stored `[out, inp]`, as PyTorch's `nn.Linear` stores it.

use super::gemm::gemm;
use super::Accumulate;
use crate::Float;

#[allow(unsafe_code)] // `#[target_feature]` calls after the CPU check
mod fixed;
pub use fixed::{
    linear_backward_input_fixed, linear_backward_weight_fixed, linear_fixed, FIXED_MAX,
};

/// `y[r,o] = Σ_i x[r,i]·w[o,i] + b[o]` (the `+ b[o]` only with a bias):
/// `x` is `[rows, inp]`, `w` is `[out, inp]`, `b` is `[out]`, `y` is `[rows, out]`,
/// all row-major. `y` is overwritten.
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
pub fn linear<T: Float>(
    rows: usize,
    inp: usize,
    out: usize,
    x: &[T],
    w: &[T],
    b: Option<&[T]>,
    y: &mut [T],
) {
    debug_assert_eq!(x.len(), rows * inp, "linear: x");
    debug_assert_eq!(w.len(), out * inp, "linear: w");
    debug_assert_eq!(y.len(), rows * out, "linear: y");
    let beta = match b {
        Some(b) => {
            debug_assert_eq!(b.len(), out, "linear: b");
            let b = &b[..out];
            if out > 0 {
                for row in y.chunks_exact_mut(out).take(rows) {
                    row.copy_from_slice(b);
                }
            }
            T::ONE
        }
        None => T::ZERO,
    };
    // y = 1·x·wᵀ + beta·y: wᵀ is w [out, inp] read with strides [1, inp].
    gemm(
        rows,
        out,
        inp,
        T::ONE,
        x,
        [inp, 1],
        w,
        [1, inp],
        beta,
        y,
        [out, 1],
    );
}

/// The residual of the input: `dx[r,i] (+)= Σ_o dy[r,o]·w[o,i]`, i.e. `dx (+)= dy·W`,
/// with `dy` `[rows, out]`, `w` `[out, inp]`, `dx` `[rows, inp]`.
/// [`Accumulate::Overwrite`] overwrites `dx` (its old content is never read),
/// [`Accumulate::Add`] adds to it.
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
pub fn linear_backward_input<T: Float>(
    rows: usize,
    inp: usize,
    out: usize,
    dy: &[T],
    w: &[T],
    dx: &mut [T],
    accumulate: Accumulate,
) {
    debug_assert_eq!(dy.len(), rows * out, "linear_backward_input: dy");
    debug_assert_eq!(w.len(), out * inp, "linear_backward_input: w");
    debug_assert_eq!(dx.len(), rows * inp, "linear_backward_input: dx");
    let beta = accumulate.beta();
    gemm(
        rows,
        inp,
        out,
        T::ONE,
        dy,
        [out, 1],
        w,
        [inp, 1],
        beta,
        dx,
        [inp, 1],
    );
}

/// The gradient of the weight: `dw[o,i] (+)= Σ_r dy[r,o]·x[r,i]`, i.e. `dW (+)= dyᵀ·x`,
/// with `dy` `[rows, out]`, `x` `[rows, inp]`, `dw` `[out, inp]`.
/// [`Accumulate::Overwrite`] overwrites `dw` (its old content is never read),
/// [`Accumulate::Add`] adds to it.
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
pub fn linear_backward_weight<T: Float>(
    rows: usize,
    inp: usize,
    out: usize,
    dy: &[T],
    x: &[T],
    dw: &mut [T],
    accumulate: Accumulate,
) {
    let beta = accumulate.beta();
    weight_product(
        rows,
        inp,
        out,
        T::ONE,
        dy,
        x,
        beta,
        dw,
        "linear_backward_weight",
    );
}

/// `W := alpha·dyᵀ·x + beta·W`, the product behind [`linear_backward_weight`] and
/// [`linear_sgd_weight`].
#[allow(clippy::too_many_arguments)]
fn weight_product<T: Float>(
    rows: usize,
    inp: usize,
    out: usize,
    alpha: T,
    dy: &[T],
    x: &[T],
    beta: T,
    w: &mut [T],
    what: &str,
) {
    debug_assert_eq!(dy.len(), rows * out, "{what}: dy");
    debug_assert_eq!(x.len(), rows * inp, "{what}: x");
    debug_assert_eq!(w.len(), out * inp, "{what}: w");
    // dyᵀ is dy [rows, out] read with strides [1, out].
    gemm(
        out,
        inp,
        rows,
        alpha,
        dy,
        [1, out],
        x,
        [inp, 1],
        beta,
        w,
        [inp, 1],
    );
}

/// The weight gradient folded into a plain SGD step: `w[o,i] −= lr·Σ_r dy[r,o]·x[r,i]`,
/// i.e. `W ← W − lr·dyᵀ·x`, as one product into `W` (alpha = −lr, beta = 1). The same
/// update as [`linear_backward_weight`] followed by `sgd_update`, without writing the
/// gradient and reading it back: what the fused `backward_sgd` emits for a dense layer.
/// Run it after the layer's input gradient, which still needs the old `W`.
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
pub fn linear_sgd_weight<T: Float>(
    rows: usize,
    inp: usize,
    out: usize,
    dy: &[T],
    x: &[T],
    w: &mut [T],
    lr: T,
) {
    weight_product(rows, inp, out, -lr, dy, x, T::ONE, w, "linear_sgd_weight");
}

/// The gradient of the bias: `db[o] (+)= Σ_r dy[r,o]`, with `dy` `[rows, out]` and `db`
/// `[out]`. [`Accumulate::Overwrite`] overwrites `db`, [`Accumulate::Add`] adds to it.
///
/// # Panics
/// If a slice is shorter than its shape (lengths are checked exactly in debug builds).
pub fn bias_backward<T: Float>(
    rows: usize,
    out: usize,
    dy: &[T],
    db: &mut [T],
    accumulate: Accumulate,
) {
    debug_assert_eq!(dy.len(), rows * out, "bias_backward: dy");
    debug_assert_eq!(db.len(), out, "bias_backward: db");
    let db = &mut db[..out];
    if !accumulate.is_add() {
        db.fill(T::ZERO);
    }
    if out == 0 {
        return;
    }
    let dy = &dy[..rows * out];
    for row in dy.chunks_exact(out) {
        for (d, &g) in db.iter_mut().zip(row) {
            *d += g;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_util::{assert_close, central_diff, data, dot};
    use Accumulate::{Add, Overwrite};

    // (rows, inp, out) shapes, odd on purpose.
    const SHAPES: &[(usize, usize, usize)] = &[(1, 1, 1), (3, 5, 7), (17, 65, 33), (4, 1, 9)];
    const TOL: f64 = 1e-12;

    #[test]
    fn hand_computed_forward() {
        // x = [1 2], W = [[1 0] [0 1] [1 1]], b = [10 20 30]:
        // y = [1+10, 2+20, 3+30] = [11 22 33].
        let mut y = [0.0f32; 3];
        let w = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        linear(1, 2, 3, &[1.0, 2.0], &w, Some(&[10.0, 20.0, 30.0]), &mut y);
        assert_eq!(y, [11.0, 22.0, 33.0]);
        linear(1, 2, 3, &[1.0, 2.0], &w, None, &mut y);
        assert_eq!(y, [1.0, 2.0, 3.0]);
    }

    #[test]
    fn forward_matches_naive() {
        // y[r,o] = Σ_i x[r,i]·w[o,i] + b[o]
        for &(rows, inp, out) in SHAPES {
            let (x, w, b) = (data(rows * inp, 1), data(out * inp, 2), data(out, 3));
            for bias in [true, false] {
                let mut want = vec![0.0; rows * out];
                for r in 0..rows {
                    for o in 0..out {
                        let s: f64 = (0..inp).map(|i| x[r * inp + i] * w[o * inp + i]).sum();
                        want[r * out + o] = s + if bias { b[o] } else { 0.0 };
                    }
                }
                // NaN in y must not survive: y is overwritten.
                let mut y = vec![f64::NAN; rows * out];
                linear(rows, inp, out, &x, &w, bias.then_some(&b[..]), &mut y);
                assert_close(&y, &want, TOL);
            }
        }
    }

    #[test]
    fn backward_input_matches_naive() {
        // dx[r,i] (+)= Σ_o dy[r,o]·w[o,i]
        for &(rows, inp, out) in SHAPES {
            let (dy, w, old) = (data(rows * out, 4), data(out * inp, 5), data(rows * inp, 6));
            for acc in [Overwrite, Add] {
                let mut want = if acc.is_add() {
                    old.clone()
                } else {
                    vec![0.0; rows * inp]
                };
                for r in 0..rows {
                    for i in 0..inp {
                        let s: f64 = (0..out).map(|o| dy[r * out + o] * w[o * inp + i]).sum();
                        want[r * inp + i] += s;
                    }
                }
                let mut dx = if acc.is_add() {
                    old.clone()
                } else {
                    vec![f64::NAN; rows * inp]
                };
                linear_backward_input(rows, inp, out, &dy, &w, &mut dx, acc);
                assert_close(&dx, &want, TOL);
            }
        }
    }

    #[test]
    fn backward_weight_matches_naive() {
        // dw[o,i] (+)= Σ_r dy[r,o]·x[r,i]
        for &(rows, inp, out) in SHAPES {
            let (dy, x, old) = (data(rows * out, 7), data(rows * inp, 8), data(out * inp, 9));
            for acc in [Overwrite, Add] {
                let mut want = if acc.is_add() {
                    old.clone()
                } else {
                    vec![0.0; out * inp]
                };
                for o in 0..out {
                    for i in 0..inp {
                        let s: f64 = (0..rows).map(|r| dy[r * out + o] * x[r * inp + i]).sum();
                        want[o * inp + i] += s;
                    }
                }
                let mut dw = if acc.is_add() {
                    old.clone()
                } else {
                    vec![f64::NAN; out * inp]
                };
                linear_backward_weight(rows, inp, out, &dy, &x, &mut dw, acc);
                assert_close(&dw, &want, TOL);
            }
        }
    }

    #[test]
    fn bias_backward_matches_naive() {
        // db[o] (+)= Σ_r dy[r,o]
        for &(rows, _, out) in SHAPES {
            let (dy, old) = (data(rows * out, 10), data(out, 11));
            for acc in [Overwrite, Add] {
                let mut want = if acc.is_add() {
                    old.clone()
                } else {
                    vec![0.0; out]
                };
                for (o, w) in want.iter_mut().enumerate() {
                    *w += (0..rows).map(|r| dy[r * out + o]).sum::<f64>();
                }
                let mut db = if acc.is_add() {
                    old.clone()
                } else {
                    vec![f64::NAN; out]
                };
                bias_backward(rows, out, &dy, &mut db, acc);
                assert_close(&db, &want, TOL);
            }
        }
        // Hand-computed: the columns of [[1 2] [3 4]] sum to [4 6].
        let mut db = [0.0f32; 2];
        bias_backward(2, 2, &[1.0, 2.0, 3.0, 4.0], &mut db, Overwrite);
        assert_eq!(db, [4.0, 6.0]);
    }

    /// The three backward functions fed `dy = g` give the gradient of
    /// J = Σ_{r,o} g[r,o]·y[r,o] with respect to x, W and b: central differences in f64.
    #[test]
    fn backward_matches_finite_differences() {
        let (rows, inp, out) = (3, 4, 2);
        let (x, w, b) = (data(rows * inp, 12), data(out * inp, 13), data(out, 14));
        let g = data(rows * out, 15);
        let j = |x: &[f64], w: &[f64], b: &[f64]| {
            let mut y = vec![0.0; rows * out];
            linear(rows, inp, out, x, w, Some(b), &mut y);
            dot(&g, &y)
        };
        let mut dx = vec![0.0; rows * inp];
        let mut dw = vec![0.0; out * inp];
        let mut db = vec![0.0; out];
        linear_backward_input(rows, inp, out, &g, &w, &mut dx, Overwrite);
        linear_backward_weight(rows, inp, out, &g, &x, &mut dw, Overwrite);
        bias_backward(rows, out, &g, &mut db, Overwrite);
        assert_close(&dx, &central_diff(&x, |x| j(x, &w, &b)), 1e-6);
        assert_close(&dw, &central_diff(&w, |w| j(&x, w, &b)), 1e-6);
        assert_close(&db, &central_diff(&b, |b| j(&x, &w, b)), 1e-6);
    }

    #[test]
    fn sgd_weight_is_the_gradient_then_the_step() {
        // W − lr·(dyᵀ·x), the gradient by linear_backward_weight, the step by hand; also
        // with k (the rows) past one slice of the GEMM's sum and W wide enough for tiles.
        for &(rows, inp, out) in SHAPES.iter().chain(&[(1100, 40, 70), (64, 300, 130)]) {
            let (x, dy, w) = (data(rows * inp, 1), data(rows * out, 2), data(out * inp, 3));
            let lr = 0.3;
            let mut g = vec![f64::NAN; out * inp];
            linear_backward_weight(rows, inp, out, &dy, &x, &mut g, Overwrite);
            let want: Vec<f64> = w.iter().zip(&g).map(|(w, g)| w - lr * g).collect();
            let mut got = w.clone();
            linear_sgd_weight(rows, inp, out, &dy, &x, &mut got, lr);
            assert_close(&got, &want, TOL * rows as f64);
        }
    }
}
