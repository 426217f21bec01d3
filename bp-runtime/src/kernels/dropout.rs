//! Inverted dropout (PyTorch's `nn.Dropout` in training mode): a mask of zeros and
//! `1/(1 − p)` drawn once per forward pass, applied forward and backward.
//!
//! The mask comes from the runtime's seeded [`Rng`], so it is reproducible across
//! versions and platforms, but it is not PyTorch's mask.
#![forbid(unsafe_code)]

use super::{put, Accumulate};
use crate::rng::Rng;
use crate::Float;

/// Fills `mask` with an inverted-dropout mask: element `i`, in order, is 0 when the
/// `i`-th draw `rng.next_f64()` is `< p` (dropped, probability `p`) and `1/(1 − p)`
/// otherwise, so that `E[mask] = 1`. Exactly one `next_f64()` is drawn per element,
/// except for `p == 0`, which fills ones and draws nothing.
///
/// # Panics
/// In debug builds, if `p` is not in `[0, 1)`.
///
/// ```
/// use bp_runtime::{kernels::dropout_mask, rng::Rng};
/// let mut mask = [0.0f32; 1000];
/// dropout_mask(0.25, &mut Rng::new(1), &mut mask);
/// assert!(mask.iter().all(|&m| m == 0.0 || m == 1.0 / 0.75));
/// ```
pub fn dropout_mask<T: Float>(p: f64, rng: &mut Rng, mask: &mut [T]) {
    debug_assert!(
        (0.0..1.0).contains(&p),
        "dropout_mask: p = {p} is not in [0, 1)"
    );
    if p == 0.0 {
        mask.fill(T::ONE);
        return;
    }
    let keep = T::from_f64(1.0 / (1.0 - p));
    for m in mask.iter_mut() {
        *m = if rng.next_f64() < p { T::ZERO } else { keep };
    }
}

/// `y[i] = x[i]·mask[i]` (overwritten), with the mask from [`dropout_mask`].
///
/// # Panics
/// If a slice is shorter than `x` (lengths are checked equal in debug builds).
pub fn dropout<T: Float>(x: &[T], mask: &[T], y: &mut [T]) {
    debug_assert_eq!(mask.len(), x.len(), "dropout: mask");
    debug_assert_eq!(y.len(), x.len(), "dropout: y");
    let (mask, y) = (&mask[..x.len()], &mut y[..x.len()]);
    for ((y, &x), &m) in y.iter_mut().zip(x).zip(mask) {
        *y = x * m;
    }
}

/// `dx[i] (+)= dy[i]·mask[i]`: [`Accumulate::Overwrite`] overwrites `dx`,
/// [`Accumulate::Add`] adds to it.
///
/// # Panics
/// If a slice is shorter than `dy` (lengths are checked equal in debug builds).
pub fn dropout_backward<T: Float>(dy: &[T], mask: &[T], dx: &mut [T], accumulate: Accumulate) {
    debug_assert_eq!(mask.len(), dy.len(), "dropout_backward: mask");
    debug_assert_eq!(dx.len(), dy.len(), "dropout_backward: dx");
    let (mask, dx) = (&mask[..dy.len()], &mut dx[..dy.len()]);
    for ((d, &g), &m) in dx.iter_mut().zip(dy).zip(mask) {
        put(d, g * m, accumulate);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::fd_check::{assert_grad, dot, fd_grad, nans, rand_vec};
    use Accumulate::{Add, Overwrite};

    #[test]
    fn mask_follows_the_documented_rule() {
        // The mask is exactly what the rule says for the same stream.
        let p = 0.3;
        let mut mask = nans(500);
        dropout_mask(p, &mut Rng::new(11), &mut mask);
        let mut r = Rng::new(11);
        let want: Vec<f64> = (0..500)
            .map(|_| if r.next_f64() < p { 0.0 } else { 1.0 / 0.7 })
            .collect();
        assert_eq!(mask, want);
        // The drop rate is near p and the mean near 1.
        let mut big = vec![0.0f32; 100_000];
        dropout_mask(p, &mut Rng::new(12), &mut big);
        let dropped = big.iter().filter(|&&m| m == 0.0).count();
        assert!((29_000..31_000).contains(&dropped), "{dropped}");
        let mean = big.iter().map(|&m| f64::from(m)).sum::<f64>() / 1e5;
        assert!((mean - 1.0).abs() < 0.02, "{mean}");
        // p = 0: all ones and the stream is untouched.
        let mut rng = Rng::new(13);
        let mut ones = nans(7);
        dropout_mask(0.0, &mut rng, &mut ones);
        assert_eq!(ones, vec![1.0; 7]);
        assert_eq!(rng.next_u64(), Rng::new(13).next_u64());
    }

    /// J = Σ R⊙(x⊙mask): the backward fed dy = R matches the central differences.
    #[test]
    fn forward_and_backward() {
        let mut mask = nans(40);
        dropout_mask(0.5, &mut Rng::new(14), &mut mask);
        let (x, r) = (rand_vec(40, 900), rand_vec(40, 901));
        let mut y = nans(40);
        dropout(&x, &mask, &mut y);
        let want: Vec<f64> = x.iter().zip(&mask).map(|(x, m)| x * m).collect();
        assert_eq!(y, want);
        let j = |x: &[f64]| {
            let mut y = vec![0.0; 40];
            dropout(x, &mask, &mut y);
            dot(&r, &y)
        };
        let want_dx = fd_grad(&x, 1e-3, j);
        let mut dx = nans(40);
        dropout_backward(&r, &mask, &mut dx, Overwrite);
        assert_grad(&dx, &want_dx, "dx");
        dropout_backward(&r, &mask, &mut dx, Add);
        let twice: Vec<f64> = want_dx.iter().map(|v| 2.0 * v).collect();
        assert_grad(&dx, &twice, "dx accumulated");
    }
}
