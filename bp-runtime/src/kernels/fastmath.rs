//! `exp`, `tanh` and the logistic function for `f32` without a call into libm: Cephes'
//! polynomials (as Sleef and Eigen use), branch-free, so a loop over them vectorizes.
//! A recurrent layer spent half its step in libm's `tanhf`/`expm1f` (perf, LSTM 28→64).
//! Accuracy: within 2 ulp of the correctly rounded result over the whole range (tested
//! against `f64` on a dense grid below); NaN stays NaN, ±∞ and overflow saturate as the
//! functions do. `f64` keeps std's functions ([`Float::tanh_fast`](crate::Float)).
#![forbid(unsafe_code)]

/// Above this, `e^x` overflows `f32`; below `LO` it is clamped (its result is then
/// about 1e-38 instead of a subnormal or 0, which only `sigmoid` of a large negative
/// number sees, as ~1e-38 instead of ~0).
const HI: f32 = 88.376;
const LO: f32 = -87.336_55;

/// `e^x`.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    // NaN fails both comparisons and stays NaN (`f32::max` would drop it).
    let big = x > HI;
    let x = if x < LO {
        LO
    } else if big {
        HI
    } else {
        x
    };
    // Round to nearest by adding 1.5·2^23: the sum's low mantissa bits then hold
    // round(x·log2 e) + 2^22 (`f32::round` is a libm call on baseline x86-64, and a
    // float-to-int cast saturates: both would stop the loop from vectorizing).
    const SHIFTER: f32 = 12_582_912.0;
    let shifted = x * std::f32::consts::LOG2_E + SHIFTER;
    let n = shifted - SHIFTER;
    // x = n·ln 2 + r, |r| ≤ ln 2 / 2, with ln 2 split in two for an exact product.
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // 2^n by its bits: n is in [-126, 127] after the clamp (a NaN x leaves e NaN).
    let n_bits = shifted.to_bits().wrapping_sub(SHIFTER.to_bits());
    let scale = f32::from_bits(n_bits.wrapping_add(127) << 23);
    if big {
        f32::INFINITY
    } else {
        e * scale
    }
}

/// `tanh(x)`: an odd polynomial below |x| = 0.625, `1 − 2/(e^{2|x|} + 1)` above.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let small =
        ((((-5.704_988_7e-3 * z + 2.063_908_8e-2) * z - 5.373_971_6e-2) * z + 1.333_144_2e-1) * z
            - 3.333_328e-1)
            * z
            * x
            + x;
    // tanh is odd: the sign of x, also for −0.
    let small = small.copysign(x);
    let large = 1.0 - 2.0 / (exp_f32(2.0 * a) + 1.0);
    let large = if x < 0.0 { -large } else { large };
    if a < 0.625 {
        small
    } else if a >= 0.625 {
        large
    } else {
        x // NaN
    }
}

/// The logistic function `1/(1 + e^−x)`.
#[inline(always)]
pub fn sigmoid_f32(x: f32) -> f32 {
    1.0 / (1.0 + exp_f32(-x))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The distance in ulp between `got` and the `f64` reference rounded to `f32`.
    fn ulps(got: f32, want: f64) -> u32 {
        let want = want as f32;
        if got == want {
            return 0;
        }
        let (a, b) = (got.to_bits() as i64, want.to_bits() as i64);
        if (a < 0) != (b < 0) || got.signum() != want.signum() {
            return u32::MAX;
        }
        (a - b).unsigned_abs() as u32
    }

    /// Every value of a dense grid over the range where the result is a normal number.
    fn grid(lo: f32, hi: f32) -> impl Iterator<Item = f32> {
        let n = 400_000;
        (0..=n).map(move |i| lo + (hi - lo) * i as f32 / n as f32)
    }

    #[test]
    fn exp_is_within_two_ulp() {
        for x in grid(-87.0, 88.0) {
            let u = ulps(exp_f32(x), (x as f64).exp());
            assert!(
                u <= 2,
                "exp({x}): {} vs {} ({u} ulp)",
                exp_f32(x),
                (x as f64).exp()
            );
        }
    }

    #[test]
    fn tanh_and_sigmoid_are_within_two_ulp() {
        let tiny = [1e-30f32, -1e-20, 1e-8, -3e-5, 0.0, -0.0];
        for x in grid(-12.0, 12.0).chain(tiny) {
            let t = tanh_f32(x);
            let u = ulps(t, (x as f64).tanh());
            assert!(u <= 2, "tanh({x}) = {t} vs {} ({u} ulp)", (x as f64).tanh());
        }
        for x in grid(-80.0, 30.0) {
            let s = sigmoid_f32(x);
            let want = 1.0 / (1.0 + (-(x as f64)).exp());
            assert!(ulps(s, want) <= 2, "sigmoid({x}) = {s} vs {want}");
        }
    }

    #[test]
    fn special_values() {
        assert!(exp_f32(f32::NAN).is_nan());
        assert!(tanh_f32(f32::NAN).is_nan());
        assert!(sigmoid_f32(f32::NAN).is_nan());
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32(100.0), f32::INFINITY);
        assert!(exp_f32(f32::NEG_INFINITY) < 1e-37);
        assert_eq!(tanh_f32(f32::INFINITY), 1.0);
        assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
        assert_eq!(tanh_f32(30.0), 1.0);
        assert_eq!(sigmoid_f32(f32::INFINITY), 1.0);
        assert!(sigmoid_f32(-200.0) < 1e-37);
        assert_eq!(tanh_f32(-0.0).to_bits(), (-0.0f32).to_bits());
    }
}
