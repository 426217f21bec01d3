//! Tests of the GEMM wrapper against a naive product.
#![forbid(unsafe_code)]

use super::*;

/// Reference: C[i,j] = alpha·Σ_p A[i,p]·B[p,j] + beta·C[i,j], in f64, safe indexing.
#[allow(clippy::too_many_arguments)]
fn naive(
    (m, n, k): (usize, usize, usize),
    alpha: f64,
    a: &[f64],
    [ars, acs]: [usize; 2],
    b: &[f64],
    [brs, bcs]: [usize; 2],
    beta: f64,
    c: &mut [f64],
    [crs, ccs]: [usize; 2],
) {
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0;
            for p in 0..k {
                s += a[i * ars + p * acs] * b[p * brs + j * bcs];
            }
            let old = if beta == 0.0 {
                0.0
            } else {
                beta * c[i * crs + j * ccs]
            };
            c[i * crs + j * ccs] = alpha * s + old;
        }
    }
}

/// Deterministic values in [-1, 1) that are not all alike.
fn data(len: usize, seed: usize) -> Vec<f64> {
    (0..len)
        .map(|i| ((i * 7919 + seed * 104_729) % 2003) as f64 / 1001.5 - 1.0)
        .collect()
}

/// Strides of a row-major `[rows, cols]` buffer, or of the transpose of a row-major
/// `[cols, rows]` buffer read in place.
fn strides(rows: usize, cols: usize, transposed: bool) -> [usize; 2] {
    if transposed {
        [1, rows]
    } else {
        [cols, 1]
    }
}

fn check<T: Float>(m: usize, n: usize, k: usize, threads: usize, tol: f64) {
    let layouts = [(false, false), (false, true), (true, false), (true, true)];
    for (ta, tb) in layouts {
        for (alpha, beta) in [(1.0, 0.0), (1.0, 1.0), (-0.5, 2.0), (0.0, 0.5)] {
            let (a, b) = (data(m * k, 1), data(k * n, 2));
            let c0 = data(m * n, 3);
            let (sa, sb, sc) = (strides(m, k, ta), strides(k, n, tb), [n, 1]);
            let mut want = c0.clone();
            naive((m, n, k), alpha, &a, sa, &b, sb, beta, &mut want, sc);
            let cast = |v: &[f64]| v.iter().map(|&x| T::from_f64(x)).collect::<Vec<T>>();
            let mut got = cast(&c0);
            let (af, bf) = (T::from_f64(alpha), T::from_f64(beta));
            T::gemm_strided(
                m,
                n,
                k,
                af,
                &cast(&a),
                sa,
                &cast(&b),
                sb,
                bf,
                &mut got,
                sc,
                threads,
            );
            for (g, w) in got.iter().zip(&want) {
                let err = (g.to_f64() - w).abs();
                assert!(
                    err <= tol * (1.0 + w.abs()),
                    "{m}x{n}x{k} ta={ta} tb={tb} α={alpha} β={beta}: {} vs {w}",
                    g.to_f64()
                );
            }
        }
    }
}

const SIZES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (3, 5, 7),
    (17, 33, 65),
    (1, 9, 4),
    (9, 1, 4),
    (5, 6, 1),
    (64, 10, 128),
    (49, 97, 130),
];

#[test]
fn matches_naive_all_layouts_f64() {
    for &(m, n, k) in SIZES {
        check::<f64>(m, n, k, 1, 1e-12);
    }
}

#[test]
fn matches_naive_all_layouts_f32() {
    for &(m, n, k) in SIZES {
        check::<f32>(m, n, k, 1, 1e-4);
    }
}

#[test]
fn matches_naive_with_two_threads() {
    check::<f32>(130, 70, 260, 2, 1e-4);
    check::<f64>(130, 70, 260, 2, 1e-12);
}

#[test]
fn beta_zero_ignores_nan_and_empty_k_scales() {
    // C := 1·A·B + 0·C with C full of NaN: the NaN must not survive.
    let (a, b) = ([1.0f64, 2.0], [3.0f64, 4.0]);
    let mut c = [f64::NAN];
    f64::gemm_strided(1, 1, 2, 1.0, &a, [2, 1], &b, [1, 1], 0.0, &mut c, [1, 1], 1);
    assert_eq!(c, [11.0]);
    // k = 0: C := beta·C and nothing is read from the empty A and B.
    let mut c = [1.0f32, 2.0, 3.0, 4.0];
    f32::gemm_strided(
        2,
        2,
        0,
        1.0,
        &[],
        [0, 1],
        &[],
        [2, 1],
        3.0,
        &mut c,
        [2, 1],
        1,
    );
    assert_eq!(c, [3.0, 6.0, 9.0, 12.0]);
}

#[test]
fn column_major_and_padded_output() {
    // C stored column-major with a padded leading dimension of 4: [m=3, n=2].
    let (m, n, k) = (3, 2, 5);
    let (a, b) = (data(m * k, 4), data(k * n, 5));
    let mut want = vec![0.0; 8];
    naive(
        (m, n, k),
        1.0,
        &a,
        [k, 1],
        &b,
        [n, 1],
        0.0,
        &mut want,
        [1, 4],
    );
    let mut got = vec![0.0; 8];
    gemm(m, n, k, 1.0, &a, [k, 1], &b, [n, 1], 0.0, &mut got, [1, 4]);
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-12);
    }
}

#[test]
fn zero_strides_broadcast() {
    // A with row stride 0: every row of op(A) is a[0..k]; B with column stride 0:
    // every column of op(B) is the same. So C[i,j] = Σ_p a[p]·b[p·n'] for all i, j.
    let (m, n, k) = (4, 3, 5);
    let (a, b) = (data(k, 6), data(k, 7));
    let mut want = vec![0.0; m * n];
    naive(
        (m, n, k),
        1.0,
        &a,
        [0, 1],
        &b,
        [1, 0],
        0.0,
        &mut want,
        [n, 1],
    );
    let mut got = vec![0.0; m * n];
    gemm(m, n, k, 1.0, &a, [0, 1], &b, [1, 0], 0.0, &mut got, [n, 1]);
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-12);
    }
}

#[test]
#[should_panic(expected = "does not fit")]
fn short_operand_panics() {
    let mut c = [0.0f32; 4];
    gemm(
        2,
        2,
        3,
        1.0,
        &[0.0; 5],
        [3, 1],
        &[0.0; 6],
        [2, 1],
        0.0,
        &mut c,
        [2, 1],
    );
}

#[test]
#[should_panic(expected = "does not fit")]
fn short_output_panics() {
    let mut c = [0.0f64; 3];
    gemm(
        2,
        2,
        1,
        1.0,
        &[0.0; 2],
        [1, 1],
        &[0.0; 2],
        [2, 1],
        0.0,
        &mut c,
        [2, 1],
    );
}

#[test]
#[should_panic(expected = "overlap")]
fn overlapping_output_panics() {
    let mut c = [0.0f64; 4];
    gemm(
        2,
        2,
        1,
        1.0,
        &[0.0; 2],
        [1, 1],
        &[0.0; 2],
        [2, 1],
        0.0,
        &mut c,
        [1, 1],
    );
}

#[test]
#[should_panic(expected = "does not fit")]
fn overflowing_strides_panic() {
    let mut c = [0.0f32; 4];
    let huge = usize::MAX / 2;
    gemm(
        2,
        2,
        2,
        1.0,
        &[0.0; 4],
        [huge, 1],
        &[0.0; 4],
        [2, 1],
        0.0,
        &mut c,
        [2, 1],
    );
}

#[test]
fn thread_setting_round_trips() {
    let before = threads();
    set_threads(0);
    assert_eq!(threads(), 1);
    set_threads(before);
    assert_eq!(threads(), before);
}
