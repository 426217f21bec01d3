use super::*;

#[allow(clippy::too_many_arguments)]
fn naive(
    m: usize,
    n: usize,
    k: usize,
    alpha: f64,
    a: &[f64],
    sa: [usize; 2],
    b: &[f64],
    sb: [usize; 2],
    beta: f64,
    c: &mut [f64],
    sc: [usize; 2],
) {
    for i in 0..m {
        for j in 0..n {
            let s: f64 = (0..k)
                .map(|p| a[i * sa[0] + p * sa[1]] * b[p * sb[0] + j * sb[1]])
                .sum();
            let x = &mut c[i * sc[0] + j * sc[1]];
            *x = alpha * s + if beta == 0.0 { 0.0 } else { beta * *x };
        }
    }
}

fn data(n: usize, seed: u64) -> Vec<f64> {
    let mut r = crate::rng::Rng::new(seed);
    (0..n).map(|_| r.uniform(-1.0, 1.0)).collect()
}

fn isas() -> Vec<Isa> {
    let mut v = vec![Isa::Baseline];
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            v.push(Isa::Avx2);
        }
        if best_isa() == Isa::Avx512 {
            v.push(Isa::Avx512);
        }
    }
    v
}

#[test]
fn every_path_matches_the_naive_product() {
    let shapes = [
        (1, 1, 1),
        (3, 5, 7),
        (8, 16, 3),
        (17, 33, 65),
        (97, 20, 300),
        (9, 1030, 5),
        (64, 10, 128),
        (10, 64, 128),
        (5, 40, 9),
        (13, 2, 300),
        (2, 13, 1),
        (1, 70, 33),
        (70, 1, 33),
        (30, 2100, 3),
        (25, 37, 600),
        (20, 9, 256),
        (100, 40, 512),
        (40, 33, 1100),
        // Column-major A with steps 2 KiB apart (f32 512, f64 256): packed whole.
        (512, 20, 40),
        (256, 33, 17),
    ];
    for isa in isas() {
        for &(m, n, k) in &shapes {
            for (ta, tb, tc) in [
                (false, false, false),
                (true, false, false),
                (false, true, true),
                (true, true, false),
            ] {
                let sa = if ta { [1, m] } else { [k, 1] };
                let sb = if tb { [1, k] } else { [n, 1] };
                let sc = if tc { [1, m] } else { [n, 1] };
                let (a, b, c0) = (data(m * k, 1), data(k * n, 2), data(m * n, 3));
                let mut want = c0.clone();
                naive(m, n, k, 0.7, &a, sa, &b, sb, 0.3, &mut want, sc);
                let mut got = c0.clone();
                gemm_f64(isa, (m, n, k), 0.7, &a, sa, &b, sb, 0.3, &mut got, sc);
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (g - w).abs() <= 1e-12 * (1.0 + w.abs()),
                        "{isa:?} {m}x{n}x{k} {ta}{tb}{tc}: {g} vs {w}"
                    );
                }
                let (a32, b32): (Vec<f32>, Vec<f32>) = (
                    a.iter().map(|&v| v as f32).collect(),
                    b.iter().map(|&v| v as f32).collect(),
                );
                let mut got32 = vec![f32::NAN; m * n];
                gemm_f32(isa, (m, n, k), 0.7, &a32, sa, &b32, sb, 0.0, &mut got32, sc);
                let mut want0 = vec![0.0; m * n];
                naive(m, n, k, 0.7, &a, sa, &b, sb, 0.0, &mut want0, sc);
                for (g, w) in got32.iter().zip(&want0) {
                    assert!(
                        (*g as f64 - w).abs() <= 1e-4 * (1.0 + w.abs()),
                        "{isa:?} f32 {m}x{n}x{k}"
                    );
                }
            }
        }
    }
}

#[test]
fn zero_k_or_alpha_only_scales() {
    let mut c = vec![2.0f64; 6];
    gemm_f64(
        best_isa(),
        (2, 3, 0),
        1.0,
        &[],
        [0, 1],
        &[],
        [3, 1],
        0.5,
        &mut c,
        [3, 1],
    );
    assert_eq!(c, vec![1.0; 6]);
}

#[test]
fn transpose16_matches_the_scalar_transpose() {
    let src: Vec<f32> = (0..20 * 17).map(|v| v as f32).collect();
    let mut dst = vec![-1.0f32; 16 * 19];
    if f32::transpose16(&src, 17, &mut dst, 19) {
        for i in 0..16 {
            for j in 0..16 {
                assert_eq!(dst[i * 19 + j], src[j * 17 + i], "({i}, {j})");
            }
            // Outside the block, nothing is written.
            assert!(dst[i * 19 + 16..i * 19 + 19].iter().all(|&v| v == -1.0));
        }
    }
    assert!(!f64::transpose16(&[0.0; 256], 16, &mut [0.0; 256], 16));
}
