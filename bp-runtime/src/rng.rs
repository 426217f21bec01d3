//! Seeded random numbers, reproducible across versions and platforms.
//!
//! The bits come from ChaCha8 (`rand_chacha`), whose output stream is fixed by the
//! algorithm and tested against reference vectors, so it does not change with the crate's
//! version. Everything above the bits is written here, so it cannot change under us
//! either:
//!
//! - the 256-bit ChaCha key is expanded from the `u64` seed with SplitMix64;
//! - a named substream ([`Rng::for_name`]) uses ChaCha's 64-bit stream id, set to the
//!   FNV-1a 64 hash of the name (never `std`'s hashers, whose output is not stable);
//! - a uniform float is the top 53 bits of a `u64` times 2⁻⁵³;
//! - a normal is drawn with the Box–Muller transform, using the pure-Rust `libm` for
//!   `ln`, `sin` and `cos` so the value is bit-identical on every platform.
//!
//! The streams are not PyTorch's: a network initialized here has the same distribution
//! as PyTorch's, not the same numbers.
//!
//! ```
//! use bp_runtime::rng::Rng;
//! let mut a = Rng::for_name(7, "fc1.weight");
//! let mut b = Rng::for_name(7, "fc1.weight");
//! assert_eq!(a.uniform(-1.0, 1.0), b.uniform(-1.0, 1.0));
//! let mut v = [1, 2, 3, 4, 5];
//! a.shuffle(&mut v);
//! let mut sorted = v;
//! sorted.sort();
//! assert_eq!(sorted, [1, 2, 3, 4, 5]);
//! ```
#![forbid(unsafe_code)]

use rand_chacha::rand_core::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// 2⁻⁵³: the spacing of the uniform floats in [0, 1).
const UNIT: f64 = 1.0 / (1u64 << 53) as f64;

/// A seeded random number generator (ChaCha8 with conversions written in this module).
///
/// Two generators built with the same seed (and name) yield the same values on every
/// platform and in every version of `bp`; a test pins the first values.
#[derive(Clone, Debug)]
pub struct Rng {
    inner: ChaCha8Rng,
    /// The second value of the last Box–Muller pair, returned by the next `normal`.
    spare: Option<f64>,
}

/// SplitMix64 (Steele, Lea and Flood): a tiny generator whose every value is fixed by its
/// definition. It expands a `u64` seed into a ChaCha key, and the gradient checker draws
/// its projections and element samples from it, so a report is reproducible from its
/// seed alone.
#[derive(Clone, Debug)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    /// The generator whose state starts at `seed`.
    pub(crate) const fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next 64 bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * UNIT
    }

    /// Uniform in `0..n` (`n > 0`), by rejection so there is no modulo bias.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let v = self.next_u64();
            if v < zone {
                return (v % n) as usize;
            }
        }
    }
}

/// The FNV-1a 64-bit hash of `bytes`: a hash whose value is fixed by its definition.
///
/// ```
/// assert_eq!(bp_runtime::rng::fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
/// assert_eq!(bp_runtime::rng::fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
/// ```
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Rng {
    /// The generator of `seed` (stream 0).
    pub fn new(seed: u64) -> Rng {
        Rng::with_stream(seed, 0)
    }

    /// An independent substream of `seed` for the parameter `name` (ChaCha's stream id
    /// set to the FNV-1a 64 hash of the name). Each parameter of a network draws from its
    /// own substream, so adding a layer does not change the initial values of the others.
    pub fn for_name(seed: u64, name: &str) -> Rng {
        Rng::with_stream(seed, fnv1a64(name.as_bytes()))
    }

    fn with_stream(seed: u64, stream: u64) -> Rng {
        let mut keys = SplitMix64::new(seed);
        let mut key = [0u8; 32];
        for chunk in key.chunks_exact_mut(8) {
            chunk.copy_from_slice(&keys.next_u64().to_le_bytes());
        }
        let mut inner = ChaCha8Rng::from_seed(key);
        inner.set_stream(stream);
        Rng { inner, spare: None }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// A uniform float in [0, 1): the top 53 bits of [`Rng::next_u64`] times 2⁻⁵³.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * UNIT
    }

    /// A uniform float in [lo, hi): `lo + (hi − lo)·u` with `u` from [`Rng::next_f64`].
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }

    /// A normal float with the given mean and standard deviation.
    ///
    /// Box–Muller: with `u₁ = 1 − next_f64()` in (0, 1] and `u₂ = next_f64()`,
    /// `r = √(−2 ln u₁)`, the pair `r·cos(2πu₂)`, `r·sin(2πu₂)` is two independent
    /// standard normals. The first is returned now, the second by the next call (one pair
    /// per two calls); `ln`, `cos`, `sin` come from `libm`, identical on every platform.
    pub fn normal(&mut self, mean: f64, std: f64) -> f64 {
        let z = match self.spare.take() {
            Some(z) => z,
            None => {
                let u1 = 1.0 - self.next_f64();
                let u2 = self.next_f64();
                let r = libm::sqrt(-2.0 * libm::log(u1));
                let theta = 2.0 * std::f64::consts::PI * u2;
                self.spare = Some(r * libm::sin(theta));
                r * libm::cos(theta)
            }
        };
        mean + std * z
    }

    /// A uniform integer in `0..n`, without bias (Lemire's multiply-and-reject).
    ///
    /// # Panics
    /// If `n == 0` (the range is empty).
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "Rng::below(0): the range 0..0 is empty");
        let n = n as u64;
        let threshold = n.wrapping_neg() % n; // 2⁶⁴ mod n
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            if (m as u64) >= threshold {
                return (m >> 64) as usize;
            }
        }
    }

    /// Shuffles `v` in place (Fisher–Yates, from the last element down).
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }

    /// `true` with probability `p` (`next_f64() < p`: always false for `p ≤ 0`, always
    /// true for `p ≥ 1`).
    pub fn bernoulli(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SplitMix64's reference output for seed 0 (Vigna's `splitmix64.c`).
    #[test]
    fn splitmix64_reference_values() {
        let mut g = SplitMix64::new(0);
        let got = [g.next_u64(), g.next_u64(), g.next_u64()];
        assert_eq!(
            got,
            [0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f]
        );
    }

    /// Pins the stream: if a dependency bump or an edit changes these values, every
    /// network's initialization changes, and this test says so.
    #[test]
    fn stream_is_pinned() {
        let mut r = Rng::new(42);
        let u: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(u, PINNED_U64);
        let mut r = Rng::for_name(42, "fc1.weight");
        let f: Vec<f64> = (0..3).map(|_| r.uniform(-1.0, 1.0)).collect();
        assert_eq!(f, PINNED_UNIFORM);
        let n: Vec<f64> = (0..3).map(|_| r.normal(0.0, 1.0)).collect();
        assert_eq!(n, PINNED_NORMAL);
    }

    const PINNED_U64: [u64; 3] = [
        3536907876931541756,
        1681417456739323905,
        17856965759995586207,
    ];
    const PINNED_UNIFORM: [f64; 3] = [0.6210791435644119, 0.9591175620841115, -0.9654456506984894];
    const PINNED_NORMAL: [f64; 3] = [1.0240598328966908, 0.17144812648015142, -1.1996071182010417];

    #[test]
    fn substreams_differ() {
        let a = Rng::for_name(1, "a").next_u64();
        let b = Rng::for_name(1, "b").next_u64();
        let c = Rng::for_name(2, "a").next_u64();
        let d = Rng::new(1).next_u64();
        assert!(a != b && a != c && a != d);
    }

    #[test]
    fn uniform_moments() {
        let mut r = Rng::new(3);
        let n = 100_000;
        let xs: Vec<f64> = (0..n).map(|_| r.uniform(-2.0, 4.0)).collect();
        assert!(xs.iter().all(|&x| (-2.0..4.0).contains(&x)));
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!((mean - 1.0).abs() < 0.03, "{mean}");
        assert!((var - 3.0).abs() < 0.05, "{var}"); // (b − a)² / 12
    }

    #[test]
    fn normal_moments() {
        let mut r = Rng::new(4);
        let n = 100_000;
        let xs: Vec<f64> = (0..n).map(|_| r.normal(1.5, 2.0)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!((mean - 1.5).abs() < 0.03, "{mean}");
        assert!((var - 4.0).abs() < 0.1, "{var}");
        assert!(xs.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn below_is_uniform_and_in_range() {
        let mut r = Rng::new(5);
        let mut counts = [0usize; 7];
        for _ in 0..70_000 {
            counts[r.below(7)] += 1;
        }
        for c in counts {
            assert!((9_500..10_500).contains(&c), "{counts:?}");
        }
        assert_eq!(r.below(1), 0);
    }

    #[test]
    fn shuffle_is_a_permutation_and_reproducible() {
        let mut v: Vec<usize> = (0..50).collect();
        let mut w = v.clone();
        Rng::new(9).shuffle(&mut v);
        Rng::new(9).shuffle(&mut w);
        assert_eq!(v, w);
        assert_ne!(v, (0..50).collect::<Vec<_>>());
        v.sort_unstable();
        assert_eq!(v, (0..50).collect::<Vec<_>>());
        Rng::new(9).shuffle::<u8>(&mut []);
    }

    #[test]
    fn bernoulli_edges_and_rate() {
        let mut r = Rng::new(6);
        assert!((0..1000).all(|_| !r.bernoulli(0.0)));
        assert!((0..1000).all(|_| r.bernoulli(1.0)));
        let hits = (0..100_000).filter(|_| r.bernoulli(0.3)).count();
        assert!((29_000..31_000).contains(&hits), "{hits}");
    }
}
