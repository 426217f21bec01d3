//! The two element types a network can be built for: `f32` (the default) and `f64`.
#![forbid(unsafe_code)]

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// A floating-point element type of tensors: `f32` or `f64`.
///
/// Generated code names the concrete type; the runtime's kernels, losses and optimizers
/// are generic over this trait.
pub trait Float:
    Copy
    + Default
    + Debug
    + Display
    + PartialEq
    + PartialOrd
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// The safetensors dtype name ("F32" or "F64").
    const DTYPE: &'static str;
    /// Size in bytes.
    const BYTES: usize;
    /// Conversion from f64 (rounding for f32).
    fn from_f64(v: f64) -> Self;
    /// Conversion to f64 (exact).
    fn to_f64(self) -> f64;
    /// Conversion from usize.
    fn from_usize(v: usize) -> Self {
        Self::from_f64(v as f64)
    }
    /// e^self.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// `tanh` for the kernels' inner loops: for `f32` a branch-free polynomial within 2
    /// ulp that vectorizes (`kernels::fastmath`), for `f64` std's.
    fn tanh_fast(self) -> Self;
    /// The logistic function `1/(1 + e^−x)`, for `f32` through the branch-free `exp` of
    /// `kernels::fastmath` (within 2 ulp), for `f64` through std's `exp`.
    fn sigmoid_fast(self) -> Self;
    /// The error function `erf(x) = 2/√π·∫₀ˣ e^(−t²) dt` (`libm`'s, the same bits on every
    /// platform; `f64::erf` is not stable).
    fn erf(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// self^p.
    fn powf(self, p: Self) -> Self;
    /// The larger of two values (the other if one is NaN).
    fn max(self, other: Self) -> Self;
    /// The smaller of two values (the other if one is NaN).
    fn min(self, other: Self) -> Self;
    /// Whether the value is neither infinite nor NaN.
    fn is_finite(self) -> bool;
    /// `self·a + b` with one rounding (a fused multiply-add where the CPU has one).
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// Little-endian bytes appended to `out` (for serialization).
    fn write_le(self, out: &mut Vec<u8>);
    /// Reads a value from exactly `Self::BYTES` little-endian bytes.
    fn read_le(bytes: &[u8]) -> Self;

    /// The GEMM hook of the type: `C := alpha·op(A)·op(B) + beta·C` with `op(A)` `[m, k]`,
    /// `op(B)` `[k, n]` and `C` `[m, n]`, each a slice with its `[row stride, column
    /// stride]` in elements (a transposed operand is read in place by swapping its
    /// strides), on up to `threads` threads (1 = the calling thread only).
    ///
    /// As in BLAS, `C` is not read when `beta` is 0, and `A`, `B` are not read when
    /// `alpha` or `k` is 0. Implemented for `f32` and `f64` by bp's own packed product
    /// (`kernels/packed`). Call [`kernels::gemm`](crate::kernels::gemm) instead, which
    /// applies the global thread setting.
    ///
    /// # Panics
    /// If an operand's strides reach past the end of its slice or two elements of `C`
    /// share a place in memory: no arguments can make it touch memory out of bounds.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    fn gemm_strided(
        m: usize,
        n: usize,
        k: usize,
        alpha: Self,
        a: &[Self],
        a_strides: [usize; 2],
        b: &[Self],
        b_strides: [usize; 2],
        beta: Self,
        c: &mut [Self],
        c_strides: [usize; 2],
        threads: usize,
    );

    /// The transpose hook of the type: writes `dst[j·rows + i] = src[i·cols + j]`, the
    /// row-major `[cols, rows]` transpose of the row-major `[rows, cols]` matrix `src`,
    /// in 16×16 blocks held in registers where the CPU can (`f32` with AVX-512), element
    /// by element otherwise. Moves bits only: the result is the same on every CPU.
    ///
    /// # Panics
    /// If `src` or `dst` is shorter than `rows·cols`.
    #[doc(hidden)]
    fn transpose_into(rows: usize, cols: usize, src: &[Self], dst: &mut [Self]);
}

macro_rules! impl_float {
    ($t:ident, $name:literal, $erf:path, $tanh:path, $sigmoid:path) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const DTYPE: &'static str = $name;
            const BYTES: usize = std::mem::size_of::<$t>();
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn exp(self) -> Self {
                $t::exp(self)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                $t::ln(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                $t::sqrt(self)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                $t::tanh(self)
            }
            #[inline(always)]
            fn erf(self) -> Self {
                $erf(self)
            }
            #[inline(always)]
            fn tanh_fast(self) -> Self {
                $tanh(self)
            }
            #[inline(always)]
            fn sigmoid_fast(self) -> Self {
                $sigmoid(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                $t::abs(self)
            }
            #[inline(always)]
            fn powf(self, p: Self) -> Self {
                $t::powf(self, p)
            }
            #[inline(always)]
            fn max(self, other: Self) -> Self {
                $t::max(self, other)
            }
            #[inline(always)]
            fn min(self, other: Self) -> Self {
                $t::min(self, other)
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                $t::is_finite(self)
            }
            #[inline(always)]
            fn mul_add(self, a: Self, b: Self) -> Self {
                $t::mul_add(self, a, b)
            }
            fn write_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn read_le(bytes: &[u8]) -> Self {
                let mut b = [0u8; std::mem::size_of::<$t>()];
                b.copy_from_slice(bytes);
                $t::from_le_bytes(b)
            }
            #[inline]
            fn gemm_strided(
                m: usize,
                n: usize,
                k: usize,
                alpha: Self,
                a: &[Self],
                a_strides: [usize; 2],
                b: &[Self],
                b_strides: [usize; 2],
                beta: Self,
                c: &mut [Self],
                c_strides: [usize; 2],
                threads: usize,
            ) {
                crate::kernels::gemm_checked::<$t>(
                    m, n, k, alpha, a, a_strides, b, b_strides, beta, c, c_strides, threads,
                )
            }
            #[inline]
            fn transpose_into(rows: usize, cols: usize, src: &[Self], dst: &mut [Self]) {
                crate::kernels::transpose::<$t>(rows, cols, src, dst)
            }
        }
    };
}

impl_float!(
    f32,
    "F32",
    libm::erff,
    crate::kernels::fastmath::tanh_f32,
    crate::kernels::fastmath::sigmoid_f32
);
impl_float!(f64, "F64", libm::erf, f64::tanh, sigmoid_f64);

/// The logistic function in `f64`, through std's `exp`.
#[inline(always)]
fn sigmoid_f64(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

#[cfg(test)]
mod tests {
    use super::Float;

    #[test]
    fn erf_known_values() {
        let cases = [
            (0.0, 0.0),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (-2.0, -0.995_322_265_018_952_7),
        ];
        for (x, want) in cases {
            let got = <f64 as Float>::erf(x);
            assert!((got - want).abs() <= 1e-15, "erf({x}) = {got}, want {want}");
            let got = <f32 as Float>::erf(x as f32);
            assert!(
                (f64::from(got) - want).abs() <= 1e-6,
                "erf({x}f32) = {got}, want {want}"
            );
        }
        assert_eq!(<f64 as Float>::erf(0.0), 0.0);
    }
}
