//! Helpers shared by the kernels' unit tests: deterministic data, comparisons and
//! central finite differences.
#![forbid(unsafe_code)]

/// `len` deterministic values in [-1, 1) that are not all alike; `seed` picks the set.
pub(crate) fn data(len: usize, seed: usize) -> Vec<f64> {
    (0..len)
        .map(|i| ((i * 7919 + seed * 104_729) % 2003) as f64 / 1001.5 - 1.0)
        .collect()
}

/// Asserts `|got − want| ≤ tol·(1 + |want|)` element by element.
pub(crate) fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "element {i}: {g} but {w} was expected"
        );
    }
}

/// The gradient of `f` at `v` by central differences: `(f(v + h·e_i) − f(v − h·e_i)) / 2h`.
pub(crate) fn central_diff(v: &[f64], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let h = 1e-6;
    let mut p = v.to_vec();
    (0..v.len())
        .map(|i| {
            p[i] = v[i] + h;
            let up = f(&p);
            p[i] = v[i] - h;
            let down = f(&p);
            p[i] = v[i];
            (up - down) / (2.0 * h)
        })
        .collect()
}

/// `Σ_i g[i]·y[i]`: the scalar whose gradient with respect to `y` is `g`, so that a
/// backward kernel fed `dy = g` must return the gradient of `J(x) = dot(g, f(x))`.
pub(crate) fn dot(g: &[f64], y: &[f64]) -> f64 {
    g.iter().zip(y).map(|(g, y)| g * y).sum()
}
