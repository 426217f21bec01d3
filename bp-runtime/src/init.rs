//! Initialization of parameters: the generic fills and PyTorch's default schemes.
//!
//! Every random fill draws one value per element, in row-major order, from the [`Rng`]
//! it is given, computing in `f64` and rounding to the element type at the end. Generated
//! networks give each parameter its own substream ([`Rng::for_name`]), so the value of a
//! parameter depends only on the seed, its name and its shape.
//!
//! PyTorch's defaults, which `Network::new(seed)` follows:
//!
//! | module | weight | bias |
//! |---|---|---|
//! | `nn.Linear(in, out)` | U(−1/√in, 1/√in) | U(−1/√in, 1/√in) |
//! | `nn.Conv2d(C, out, k)` | U(−1/√(C·k·k), 1/√(C·k·k)) | same bound |
//! | `nn.RNN`/`LSTM`/`GRU(hidden = H)` | every parameter U(−1/√H, 1/√H) | |
//! | `nn.BatchNorm`, `nn.LayerNorm` | ones | zeros |
//!
//! The bound of the weights is what `kaiming_uniform_(w, a=√5)` reduces to (see
//! [`kaiming_uniform_a_sqrt5`]). The distributions are PyTorch's; the numbers are not
//! (the generators differ).
//!
//! ```
//! use bp_runtime::{init, rng::Rng, Tensor};
//! let mut w = Tensor::<f32>::zeros(&[128, 784]);
//! let mut b = Tensor::<f32>::zeros(&[128]);
//! init::linear_default(&mut w, Some(b.as_mut_slice()), 784, &mut Rng::for_name(0, "fc1.weight"),
//!     &mut Rng::for_name(0, "fc1.bias"));
//! let bound = 1.0 / 784f32.sqrt();
//! assert!(w.iter().chain(b.iter()).all(|v| v.abs() <= bound));
//! ```
#![forbid(unsafe_code)]

use crate::rng::Rng;
use crate::Float;

/// Fills `t` with draws from U(lo, hi) (`lo + (hi − lo)·u`, `u` uniform in [0, 1)).
///
/// In `f32` a draw within half an ulp of `hi` rounds to `hi`.
pub fn uniform<T: Float>(t: &mut [T], lo: f64, hi: f64, rng: &mut Rng) {
    for v in t {
        *v = T::from_f64(rng.uniform(lo, hi));
    }
}

/// Fills `t` with draws from N(0, std²) (Box–Muller, see [`Rng::normal`]).
pub fn normal<T: Float>(t: &mut [T], std: f64, rng: &mut Rng) {
    for v in t {
        *v = T::from_f64(rng.normal(0.0, std));
    }
}

/// Fills `t` with `value` (`zeros` is `constant(t, 0.0)`, `ones` is `constant(t, 1.0)`).
pub fn constant<T: Float>(t: &mut [T], value: f64) {
    t.fill(T::from_f64(value));
}

/// Fills `t` with draws from U(−bound, bound).
pub fn uniform_bound<T: Float>(t: &mut [T], bound: f64, rng: &mut Rng) {
    uniform(t, -bound, bound, rng);
}

/// `1/√fan_in`, or 0 for `fan_in == 0` (PyTorch's `bound = 1 / math.sqrt(fan_in) if
/// fan_in > 0 else 0`).
pub fn fan_in_bound(fan_in: usize) -> f64 {
    if fan_in == 0 {
        0.0
    } else {
        1.0 / (fan_in as f64).sqrt()
    }
}

/// PyTorch's gain for leaky ReLU with negative slope `a`: `√(2 / (1 + a²))`
/// (`torch.nn.init.calculate_gain('leaky_relu', a)`).
pub fn leaky_relu_gain(a: f64) -> f64 {
    (2.0 / (1.0 + a * a)).sqrt()
}

/// `torch.nn.init.kaiming_uniform_(t, a, mode='fan_in', nonlinearity='leaky_relu')`:
/// U(−b, b) with `b = gain(a) · √3 / √fan_in` and `gain(a) = √(2 / (1 + a²))`.
/// A `fan_in` of 0 gives zeros.
pub fn kaiming_uniform<T: Float>(t: &mut [T], fan_in: usize, a: f64, rng: &mut Rng) {
    let bound = leaky_relu_gain(a) * 3f64.sqrt() * fan_in_bound(fan_in);
    uniform_bound(t, bound, rng);
}

/// PyTorch's default weight initialization of `nn.Linear` and `nn.Conv2d`:
/// `kaiming_uniform_(w, a=√5)`. With `a = √5` the gain is `√(2/6) = 1/√3`, so the bound
/// `gain · √3 / √fan_in` reduces to exactly `1/√fan_in`: U(−1/√fan_in, 1/√fan_in).
///
/// `fan_in` is `in` for a linear layer and `C·k·k` for a convolution.
pub fn kaiming_uniform_a_sqrt5<T: Float>(weight: &mut [T], fan_in: usize, rng: &mut Rng) {
    uniform_bound(weight, fan_in_bound(fan_in), rng);
}

/// PyTorch's default bias initialization of `nn.Linear` and `nn.Conv2d`:
/// U(−1/√fan_in, 1/√fan_in) with the weight's `fan_in` (zeros for `fan_in == 0`).
pub fn bias_uniform<T: Float>(bias: &mut [T], fan_in: usize, rng: &mut Rng) {
    uniform_bound(bias, fan_in_bound(fan_in), rng);
}

/// PyTorch's default initialization of a linear or convolution layer: the weight by
/// [`kaiming_uniform_a_sqrt5`] from `rng_w`, the bias (if any) by [`bias_uniform`] from
/// `rng_b`.
pub fn linear_default<T: Float>(
    weight: &mut [T],
    bias: Option<&mut [T]>,
    fan_in: usize,
    rng_w: &mut Rng,
    rng_b: &mut Rng,
) {
    kaiming_uniform_a_sqrt5(weight, fan_in, rng_w);
    if let Some(bias) = bias {
        bias_uniform(bias, fan_in, rng_b);
    }
}

/// PyTorch's default initialization of every parameter of `nn.RNN`, `nn.LSTM` and
/// `nn.GRU` (weights and biases alike): U(−1/√hidden, 1/√hidden).
pub fn rnn_default<T: Float>(t: &mut [T], hidden: usize, rng: &mut Rng) {
    uniform_bound(t, fan_in_bound(hidden), rng);
}

/// `torch.nn.init.xavier_uniform_(t, gain)`: U(−b, b) with
/// `b = gain · √(6 / (fan_in + fan_out))` (zeros if both fans are 0).
pub fn xavier_uniform<T: Float>(
    t: &mut [T],
    fan_in: usize,
    fan_out: usize,
    gain: f64,
    rng: &mut Rng,
) {
    let fans = fan_in + fan_out;
    let bound = if fans == 0 {
        0.0
    } else {
        gain * (6.0 / fans as f64).sqrt()
    };
    uniform_bound(t, bound, rng);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kaiming_a_sqrt5_is_one_over_sqrt_fan_in() {
        let fan_in = 75;
        let general = leaky_relu_gain(5f64.sqrt()) * 3f64.sqrt() * fan_in_bound(fan_in);
        assert!((general - 1.0 / 75f64.sqrt()).abs() < 1e-15);
        let mut a = vec![0f64; 300];
        let mut b = vec![0f64; 300];
        kaiming_uniform(&mut a, fan_in, 5f64.sqrt(), &mut Rng::new(1));
        kaiming_uniform_a_sqrt5(&mut b, fan_in, &mut Rng::new(1));
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-15);
        }
    }

    #[test]
    fn bounds_are_respected_and_reached() {
        let mut w = vec![0f32; 10_000];
        kaiming_uniform_a_sqrt5(&mut w, 16, &mut Rng::new(2));
        let max = w.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(max <= 0.25 && max > 0.249, "{max}");
        let mut b = vec![0f32; 100];
        rnn_default(&mut b, 4, &mut Rng::new(3));
        assert!(b.iter().all(|v| v.abs() <= 0.5));
        let mut x = vec![0f64; 1000];
        xavier_uniform(&mut x, 2, 4, 1.0, &mut Rng::new(4));
        assert!(x.iter().all(|v| v.abs() <= 1.0));
    }

    #[test]
    fn zero_fan_in_gives_zeros() {
        let mut b = vec![1f64; 3];
        bias_uniform(&mut b, 0, &mut Rng::new(5));
        assert_eq!(b, [0.0; 3]);
    }

    #[test]
    fn linear_default_without_bias_and_constant() {
        let mut w = vec![0f64; 6];
        linear_default(&mut w, None, 3, &mut Rng::new(6), &mut Rng::new(7));
        let mut again = vec![0f64; 6];
        kaiming_uniform_a_sqrt5(&mut again, 3, &mut Rng::new(6));
        assert_eq!(w, again);
        constant(&mut w, 1.0);
        assert_eq!(w, [1.0; 6]);
    }

    #[test]
    fn normal_has_the_std() {
        let mut t = vec![0f64; 50_000];
        normal(&mut t, 0.02, &mut Rng::new(8));
        let var = t.iter().map(|v| v * v).sum::<f64>() / t.len() as f64;
        assert!((var.sqrt() - 0.02).abs() < 5e-4, "{}", var.sqrt());
    }
}
