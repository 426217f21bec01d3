//! Kernels that move values without arithmetic (beyond the additions of accumulated
//! gradients): copies (`flatten`, output-gradient copies) and concatenation.
#![forbid(unsafe_code)]

use super::{put, Accumulate};
use crate::Float;

/// `dst[i] (+)= src[i]` for every `i`: `src` and `dst` have the same length.
/// [`Accumulate::Overwrite`] overwrites `dst`, [`Accumulate::Add`] adds `src` to it.
///
/// # Panics
/// If `dst` is shorter than `src` (lengths are checked equal in debug builds).
pub fn copy<T: Float>(src: &[T], dst: &mut [T], accumulate: Accumulate) {
    debug_assert_eq!(src.len(), dst.len(), "copy: lengths");
    let dst = &mut dst[..src.len()];
    if accumulate.is_add() {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d += s;
        }
    } else {
        dst.copy_from_slice(src);
    }
}

/// One part of a concatenation: with `src` viewed as `[outer, part]` and `dst` as
/// `[outer, total]`, `dst[o, offset + j] = src[o, j]` for `j < part`. The other columns
/// of `dst` are left alone (the other parts write them). Concatenating along a
/// per-sample dimension `d` of tensors of shape `[B, …]` has `outer` = the product of
/// the dimensions before `d` (batch included) and `part`, `total` = the products from
/// `d` on of the part's and of the result's shape.
///
/// # Panics
/// If a slice is shorter than its shape or the part does not fit in a row
/// (checked exactly in debug builds).
pub fn concat_part<T: Float>(
    outer: usize,
    part: usize,
    total: usize,
    offset: usize,
    src: &[T],
    dst: &mut [T],
) {
    debug_assert!(offset + part <= total, "concat_part: part beyond the row");
    debug_assert_eq!(src.len(), outer * part, "concat_part: src");
    debug_assert_eq!(dst.len(), outer * total, "concat_part: dst");
    if part == 0 {
        return;
    }
    let src = &src[..outer * part];
    for (s, d) in src.chunks_exact(part).zip(dst.chunks_exact_mut(total)) {
        d[offset..offset + part].copy_from_slice(s);
    }
}

/// The backward of [`concat_part`]: `dx[o, j] (+)= dy[o, offset + j]` for `j < part`,
/// with `dy` `[outer, total]` and `dx` `[outer, part]`. [`Accumulate::Overwrite`]
/// overwrites `dx`, [`Accumulate::Add`] adds to it.
///
/// # Panics
/// If a slice is shorter than its shape or the part does not fit in a row
/// (checked exactly in debug builds).
pub fn concat_part_backward<T: Float>(
    outer: usize,
    part: usize,
    total: usize,
    offset: usize,
    dy: &[T],
    dx: &mut [T],
    accumulate: Accumulate,
) {
    debug_assert!(
        offset + part <= total,
        "concat_part_backward: part beyond the row"
    );
    debug_assert_eq!(dy.len(), outer * total, "concat_part_backward: dy");
    debug_assert_eq!(dx.len(), outer * part, "concat_part_backward: dx");
    if part == 0 {
        return;
    }
    let dx = &mut dx[..outer * part];
    for (d, g) in dx.chunks_exact_mut(part).zip(dy.chunks_exact(total)) {
        let g = &g[offset..offset + part];
        for (d, &g) in d.iter_mut().zip(g) {
            put(d, g, accumulate);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_util::{central_diff, data, dot};
    use Accumulate::{Add, Overwrite};

    #[test]
    fn copy_overwrites_or_adds() {
        let mut dst = [f32::NAN; 3];
        copy(&[1.0, 2.0, 3.0], &mut dst, Overwrite);
        assert_eq!(dst, [1.0, 2.0, 3.0]);
        copy(&[1.0, 2.0, 3.0], &mut dst, Add);
        assert_eq!(dst, [2.0, 4.0, 6.0]);
    }

    #[test]
    fn concat_hand_computed() {
        // a = [[1 2] [3 4]] and b = [[5] [6]] along the last dim: [[1 2 5] [3 4 6]].
        let mut y = [0.0f64; 6];
        concat_part(2, 2, 3, 0, &[1.0, 2.0, 3.0, 4.0], &mut y);
        concat_part(2, 1, 3, 2, &[5.0, 6.0], &mut y);
        assert_eq!(y, [1.0, 2.0, 5.0, 3.0, 4.0, 6.0]);
    }

    #[test]
    fn concat_round_trip() {
        // Three parts of widths 3, 1, 4 (total 8) over outer = 5 rows: concatenating then
        // taking each part back gives the parts unchanged, and accumulating adds them.
        let (outer, widths) = (5, [3usize, 1, 4]);
        let total: usize = widths.iter().sum();
        let parts: Vec<Vec<f64>> = widths.iter().map(|&w| data(outer * w, w)).collect();
        let mut y = vec![f64::NAN; outer * total];
        let mut offset = 0;
        for (p, &w) in parts.iter().zip(&widths) {
            concat_part(outer, w, total, offset, p, &mut y);
            offset += w;
        }
        assert!(y.iter().all(|v| !v.is_nan()));
        let mut offset = 0;
        for (p, &w) in parts.iter().zip(&widths) {
            let mut back = vec![f64::NAN; outer * w];
            concat_part_backward(outer, w, total, offset, &y, &mut back, Overwrite);
            assert_eq!(&back, p);
            concat_part_backward(outer, w, total, offset, &y, &mut back, Add);
            let twice: Vec<f64> = p.iter().map(|v| 2.0 * v).collect();
            assert_eq!(back, twice);
            offset += w;
        }
    }

    /// concat_part_backward fed dy = g is the gradient of J(src) = Σ g ⊙ concat(…, src, …).
    #[test]
    fn backward_matches_finite_differences() {
        let (outer, part, total, offset) = (3, 2, 5, 1);
        let (x, g) = (data(outer * part, 1), data(outer * total, 2));
        let mut dx = vec![0.0; outer * part];
        concat_part_backward(outer, part, total, offset, &g, &mut dx, Overwrite);
        let numeric = central_diff(&x, |x| {
            let mut y = vec![0.0; outer * total];
            concat_part(outer, part, total, offset, x, &mut y);
            dot(&g, &y)
        });
        for (a, n) in dx.iter().zip(&numeric) {
            assert!((a - n).abs() < 1e-6);
        }
    }
}
