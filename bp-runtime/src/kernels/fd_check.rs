//! Helpers for the gradient tests of the convolution, pooling, normalization, dropout
//! and recurrent kernels: random data, a fourth-order central difference and the
//! comparison `|a − b| ≤ 1e-6·|b| + 1e-9·max|b|`.
#![forbid(unsafe_code)]

use crate::rng::Rng;

/// `len` values uniform in [-1, 1) from the seeded generator `seed`.
pub(crate) fn rand_vec(len: usize, seed: u64) -> Vec<f64> {
    let mut r = Rng::new(seed);
    (0..len).map(|_| r.uniform(-1.0, 1.0)).collect()
}

/// The gradient of `f` at `v` by the five-point central difference
/// `(−f(v+2h) + 8f(v+h) − 8f(v−h) + f(v−2h)) / 12h` (error O(h⁴)).
pub(crate) fn fd_grad(v: &[f64], h: f64, mut f: impl FnMut(&[f64]) -> f64) -> Vec<f64> {
    let mut p = v.to_vec();
    (0..v.len())
        .map(|i| {
            let mut at = |d: f64| {
                p[i] = v[i] + d;
                let r = f(&p);
                p[i] = v[i];
                r
            };
            (-at(2.0 * h) + 8.0 * at(h) - 8.0 * at(-h) + at(-2.0 * h)) / (12.0 * h)
        })
        .collect()
}

/// Asserts `|got − want| ≤ 1e-6·|want| + 1e-9·max|want|` element by element.
pub(crate) fn assert_grad(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let scale = want.iter().fold(0.0f64, |m, w| m.max(w.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-6 * w.abs() + 1e-9 * scale,
            "{what}[{i}]: {g} but {w} was expected"
        );
    }
}

/// `Σ_i r[i]·y[i]`: the scalar `J` whose gradient with respect to `y` is `r`.
pub(crate) fn dot(r: &[f64], y: &[f64]) -> f64 {
    r.iter().zip(y).map(|(r, y)| r * y).sum()
}

/// A buffer of `len` NaNs: an output that must be overwritten, not read.
pub(crate) fn nans(len: usize) -> Vec<f64> {
    vec![f64::NAN; len]
}
