//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod parity;

use bp::check::GradCheck;
use bp::rng::Rng;
use bp::{Network, Tensor};

/// A `[batch, dims…]` tensor of seeded values in `[lo, hi)`.
pub fn random(shape: &[usize], lo: f64, hi: f64, seed: u64) -> Tensor<f64> {
    let mut rng = Rng::new(seed);
    let n = shape.iter().product();
    let data = (0..n).map(|_| rng.uniform(lo, hi)).collect();
    Tensor::from_vec(shape, data).expect("shape and data agree")
}

/// The same with f32 elements.
pub fn random_f32(shape: &[usize], lo: f64, hi: f64, seed: u64) -> Tensor<f32> {
    random(shape, lo, hi, seed).cast()
}

/// The criterion, bare: |a − b| ≤ 1e-6·|b| + 1e-9·max|b|, a analytic, b numeric
/// (five-point central differences in f64, h = 1e-4: truncation O(h⁴) is negligible and
/// rounding stays near 1e-12, so small gradients of recurrent layers are judged fairly
/// while perturbations stay far smaller than the margin kept from kinks).
pub fn gradcheck<N: Network<Scalar = f64>>(net: &mut N, inputs: &[&Tensor<f64>]) {
    let report = GradCheck::new()
        .five_point(true)
        .step(1e-4)
        .rtol(1e-6)
        .atol(1e-9)
        .rounding(0.0)
        .run(net, inputs)
        .expect("the gradient check runs");
    assert!(report.passed(), "{report}");
}

/// Asserts that every element of `t` is at least `margin` away from `kink`, so a finite
/// difference never straddles a kink of relu, abs, leaky_relu, elu, min or max.
pub fn away_from(t: &Tensor<f64>, kink: f64, margin: f64, what: &str) {
    let closest = t
        .iter()
        .map(|v| (v - kink).abs())
        .fold(f64::INFINITY, f64::min);
    assert!(
        closest > margin,
        "{what} has a value {closest:e} from the kink at {kink}: pick another seed"
    );
}
