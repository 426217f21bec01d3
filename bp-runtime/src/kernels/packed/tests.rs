use super::isa::{Elem, Kernels, Tile};
use super::tile::micro;
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

/// Every kernel this CPU runs: each instruction set, and on AVX-512 each tile.
fn isas() -> Vec<Kernels> {
    let mut v = vec![Kernels::of(Isa::Baseline)];
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            v.push(Kernels::of(Isa::Avx2));
        }
        if best_isa() == Isa::Avx512 {
            for tile in [Tile::Tall, Tile::Wide] {
                v.push(Kernels {
                    isa: Isa::Avx512,
                    tile,
                });
            }
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
        // One row or column of C (gemv.rs): a 784 → 130 layer at batch 1, and its twin.
        (1, 130, 784),
        (130, 1, 50),
        // One row or column as a sum of B's rows (A's columns): vector blocks of 128
        // and 16, and a scalar tail.
        (1, 300, 20),
        (300, 1, 20),
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
        Kernels::of(best_isa()),
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

#[test]
fn transpose_matches_the_definition_on_every_shape() {
    // Whole 16×16 blocks, edges, and shapes with no whole block; through the AVX-512
    // blocks (when the CPU has them) and through the safe twin, which must agree.
    for (rows, cols) in [
        (1, 1),
        (3, 40),
        (16, 16),
        (256, 64),
        (33, 47),
        (64, 17),
        (5, 96),
    ] {
        let src: Vec<f32> = (0..rows * cols).map(|v| v as f32).collect();
        let src64: Vec<f64> = src.iter().map(|&v| v as f64).collect();
        let mut fast = vec![-1.0f32; rows * cols + 3];
        transpose(rows, cols, &src, &mut fast);
        let mut twin = vec![-1.0f32; rows * cols + 3];
        safe::run(|| transpose(rows, cols, &src, &mut twin));
        let mut wide = vec![-1.0f64; rows * cols];
        transpose(rows, cols, &src64, &mut wide);
        for i in 0..rows {
            for j in 0..cols {
                assert_eq!(
                    fast[j * rows + i],
                    src[i * cols + j],
                    "{rows}x{cols} ({i}, {j})"
                );
                assert_eq!(wide[j * rows + i], src64[i * cols + j], "f64 {rows}x{cols}");
            }
        }
        assert_eq!(fast, twin, "{rows}x{cols}: the twin");
        // Past rows·cols, nothing is written.
        assert_eq!(fast[rows * cols..], [-1.0; 3]);
    }
}

#[test]
#[should_panic(expected = "transpose: [4, 5] needs 20 elements (src 20, dst 19)")]
fn transpose_names_a_short_slice() {
    transpose(4, 5, &[0.0f32; 20], &mut [0.0f32; 19]);
}

// ---------------------------------------------------------------------------------------
// Property tests: the `unsafe` paths against their safe twins (`safe.rs`), bit for bit,
// and against the naive product within the rounding-error bound.

use proptest::prelude::*;

/// How an operand is laid out: its strides from its shape and a padding.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// `[ld, 1]`, `ld = cols + pad`.
    Rows(usize),
    /// `[1, ld]`, `ld = rows + pad`.
    Cols(usize),
    /// `[ld, 2]`, `ld = 2·cols + pad`: neither stride is 1 (the general packing loops).
    Strided(usize),
    /// `[ld, 1]` with `ld` the next multiple of 512 elements (2 or 4 KiB): rows that alias
    /// in L1, which the product packs whole.
    Aliasing,
}

impl Layout {
    fn strides(self, rows: usize, cols: usize) -> [usize; 2] {
        match self {
            Layout::Rows(pad) => [cols + pad, 1],
            Layout::Cols(pad) => [1, rows + pad],
            Layout::Strided(pad) => [2 * cols + pad, 2],
            Layout::Aliasing => [cols.div_ceil(512) * 512, 1],
        }
    }
}

fn layout() -> impl Strategy<Value = Layout> {
    prop_oneof![
        3 => (0..8usize).prop_map(Layout::Rows),
        3 => (0..8usize).prop_map(Layout::Cols),
        1 => (0..4usize).prop_map(Layout::Strided),
        1 => Just(Layout::Aliasing),
    ]
}

/// A layout for C, whose elements must not overlap: not `Aliasing` (wasteful, and A's
/// case), otherwise any.
fn c_layout() -> impl Strategy<Value = Layout> {
    prop_oneof![
        3 => (0..8usize).prop_map(Layout::Rows),
        3 => (0..8usize).prop_map(Layout::Cols),
        1 => (0..4usize).prop_map(Layout::Strided),
    ]
}

#[derive(Clone, Debug)]
struct Case {
    mnk: (usize, usize, usize),
    layouts: [Layout; 3],
    alpha: f64,
    beta: f64,
    seed: u64,
}

fn scalar() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), Just(1.0), Just(-1.0), -2.0..2.0f64]
}

fn case() -> impl Strategy<Value = Case> {
    // Shapes around the tile sizes (MR 4/6/12, NR 4..32) and the block size MC = 96, and
    // now and then a sum deeper than KC = 1024 (two slices).
    let k = prop_oneof![8 => 1..=300usize, 1 => 1000..=1100usize];
    (1..=110usize, 1..=80usize, k, layout(), layout(), c_layout()).prop_flat_map(
        |(m, n, k, la, lb, lc)| {
            (scalar(), scalar(), any::<u64>()).prop_map(move |(alpha, beta, seed)| Case {
                mnk: (m, n, k),
                layouts: [la, lb, lc],
                alpha,
                beta,
                seed,
            })
        },
    )
}

/// An operand of `rows × cols` in `layout`: its values (in [−1, 1], `NaN` everywhere when
/// `nan`), its strides, and the mask of which elements belong to the matrix.
fn operand(
    rows: usize,
    cols: usize,
    layout: Layout,
    seed: u64,
    nan: bool,
) -> (Vec<f64>, [usize; 2], Vec<bool>) {
    let s = layout.strides(rows, cols);
    let len = (rows - 1) * s[0] + (cols - 1) * s[1] + 1 + 3; // and a tail past the end
    let mut mask = vec![false; len];
    for i in 0..rows {
        for j in 0..cols {
            mask[i * s[0] + j * s[1]] = true;
        }
    }
    let mut values = data(len, seed);
    if nan {
        values.fill(f64::NAN);
    }
    (values, s, mask)
}

/// `γ_n = n·u / (1 − n·u)`: the relative error bound of a sum of `n` rounded terms.
fn gamma(n: usize, u: f64) -> f64 {
    n as f64 * u / (1.0 - n as f64 * u)
}

/// The product with every ISA the CPU has, in f64 and f32: bit for bit the safe twin's,
/// within the error bound of the naive product, and nothing written outside C.
fn check_case(case: &Case) -> Result<(), TestCaseError> {
    let (m, n, k) = case.mnk;
    let (alpha, beta) = (case.alpha, case.beta);
    let [la, lb, lc] = case.layouts;
    let (a, sa, _) = operand(m, k, la, case.seed, false);
    let (b, sb, _) = operand(k, n, lb, case.seed ^ 1, false);
    // C is not read when beta is 0: NaN there must not survive.
    let (c0, sc, c_mask) = operand(m, n, lc, case.seed ^ 2, beta == 0.0);
    let at = |i: usize, j: usize| i * sc[0] + j * sc[1];
    // The results of the AVX-512 tiles, which must agree bit for bit.
    let mut tiles: Vec<(Kernels, Vec<f64>, Vec<f32>)> = Vec::new();
    for isa in isas() {
        // f64, then f32 on the same values rounded.
        let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let (a32, b32, c32) = (f32s(&a), f32s(&b), f32s(&c0));
        let mut got64 = c0.clone();
        gemm_f64(isa, case.mnk, alpha, &a, sa, &b, sb, beta, &mut got64, sc);
        let mut twin64 = c0.clone();
        safe::run(|| gemm_f64(isa, case.mnk, alpha, &a, sa, &b, sb, beta, &mut twin64, sc));
        let mut got32 = c32.clone();
        let (al32, be32) = (alpha as f32, beta as f32);
        gemm_f32(
            isa, case.mnk, al32, &a32, sa, &b32, sb, be32, &mut got32, sc,
        );
        let mut twin32 = c32.clone();
        safe::run(|| {
            gemm_f32(
                isa,
                case.mnk,
                al32,
                &a32,
                sa,
                &b32,
                sb,
                be32,
                &mut twin32,
                sc,
            )
        });
        // Same tiles, same multiply-adds in the same order: the same bits, padding included.
        let differ64 = got64
            .iter()
            .zip(&twin64)
            .position(|(g, t)| g.to_bits() != t.to_bits());
        let differ32 = got32
            .iter()
            .zip(&twin32)
            .position(|(g, t)| g.to_bits() != t.to_bits());
        if let Some(p) = differ64 {
            prop_assert!(
                false,
                "{:?} f64 at {}: {} but the twin {}",
                isa,
                p,
                got64[p],
                twin64[p]
            );
        }
        if let Some(p) = differ32 {
            prop_assert!(
                false,
                "{:?} f32 at {}: {} but the twin {}",
                isa,
                p,
                got32[p],
                twin32[p]
            );
        }
        #[cfg(target_arch = "x86_64")]
        if isa.isa == Isa::Avx512 {
            if let Some((first, f64s, f32s)) = tiles.first() {
                let same64 = f64s
                    .iter()
                    .zip(&got64)
                    .all(|(x, y)| x.to_bits() == y.to_bits());
                let same32 = f32s
                    .iter()
                    .zip(&got32)
                    .all(|(x, y)| x.to_bits() == y.to_bits());
                prop_assert!(same64 && same32, "{:?} and {:?} differ", first, isa);
            }
            tiles.push((isa, got64.clone(), got32.clone()));
        }
        // Outside the matrix, nothing is written.
        for (p, _) in c_mask.iter().enumerate().filter(|(_, &inside)| !inside) {
            prop_assert!(
                got64[p].to_bits() == c0[p].to_bits(),
                "{:?} f64 wrote at {}",
                isa,
                p
            );
            prop_assert!(
                got32[p].to_bits() == c32[p].to_bits(),
                "{:?} f32 wrote at {}",
                isa,
                p
            );
        }
        // Against the naive sum in f64: each element's error is at most γ_{k+4}·S, S the sum
        // of the magnitudes of its terms (Higham, Accuracy and Stability, §3.1: a sum of k
        // products, then α, β·c, and one rounding per slice of KC that adds into C); the
        // factor 2 covers the f64 reference's own rounding.
        for i in 0..m {
            for j in 0..n {
                let terms = |a: &dyn Fn(usize) -> f64, b: &dyn Fn(usize) -> f64| {
                    (0..k).fold((0.0, 0.0), |(s, abs), p| {
                        (s + a(p) * b(p), abs + (a(p) * b(p)).abs())
                    })
                };
                let c_in = |c: f64| if beta == 0.0 { 0.0 } else { beta * c };
                // f64
                let (s, abs) = terms(&|p| a[i * sa[0] + p * sa[1]], &|p| b[p * sb[0] + j * sb[1]]);
                let want = alpha * s + c_in(c0[at(i, j)]);
                let bound = alpha.abs() * abs + c_in(c0[at(i, j)]).abs();
                let got = got64[at(i, j)];
                prop_assert!(
                    (got - want).abs() <= 2.0 * gamma(k + 4, f64::EPSILON / 2.0) * bound,
                    "{:?} f64 ({}, {}): {} vs {}",
                    isa,
                    i,
                    j,
                    got,
                    want
                );
                // f32
                let (s, abs) = terms(&|p| a32[i * sa[0] + p * sa[1]] as f64, &|p| {
                    b32[p * sb[0] + j * sb[1]] as f64
                });
                let (al, be) = (al32 as f64, be32 as f64);
                let c_in = |c: f32| if beta == 0.0 { 0.0 } else { be * c as f64 };
                let want = al * s + c_in(c32[at(i, j)]);
                let bound = al.abs() * abs + c_in(c32[at(i, j)]).abs();
                let got = got32[at(i, j)] as f64;
                prop_assert!(
                    (got - want).abs() <= 2.0 * gamma(k + 4, f32::EPSILON as f64 / 2.0) * bound,
                    "{:?} f32 ({}, {}): {} vs {}",
                    isa,
                    i,
                    j,
                    got,
                    want
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(crate::prop::config(48))]

    #[test]
    fn every_isa_is_its_safe_twin_bit_for_bit(case in case()) {
        check_case(&case)?;
    }
}

/// `micro` (unchecked loads) against `safe::micro` with the tile sizes the product uses
/// and arbitrary strides and offsets, on slices that end at the last element read.
fn check_micro<T: Elem, const R: usize, const NR: usize, const FMA: bool>(
    kc: usize,
    [ars, acs, brs]: [usize; 3],
    [a0, b0]: [usize; 2],
    seed: u64,
) -> Result<(), TestCaseError> {
    let a_len = a0 + (R - 1) * ars + (kc - 1) * acs + 1;
    let b_len = b0 + (kc - 1) * brs + NR;
    let a: Vec<T> = data(a_len, seed).into_iter().map(T::from_f64).collect();
    let b: Vec<T> = data(b_len, seed ^ 1).into_iter().map(T::from_f64).collect();
    // SAFETY: the largest offsets read, a0 + (R−1)·ars + (kc−1)·acs of `a` and
    // b0 + (kc−1)·brs + NR − 1 of `b`, are the last elements of the slices.
    let fast = unsafe {
        micro::<T, R, NR, FMA>(kc, a.as_ptr().add(a0), ars, acs, b.as_ptr().add(b0), brs)
    };
    let twin = safe::micro::<T, R, NR, FMA>(kc, (&a, a0, ars, acs), (&b, b0, brs));
    for (i, (f, t)) in fast.iter().zip(&twin).enumerate() {
        for (j, (x, y)) in f.iter().zip(t).enumerate() {
            prop_assert!(
                x.to_f64().to_bits() == y.to_f64().to_bits(),
                "({}, {}): {} vs {}",
                i,
                j,
                x.to_f64(),
                y.to_f64()
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(crate::prop::config(64))]

    #[test]
    fn micro_is_its_checked_twin(
        kc in 1..=40usize,
        strides in [0..=20usize, 0..=20usize, 0..=40usize],
        offsets in [0..=5usize, 0..=5usize],
        seed in any::<u64>(),
    ) {
        // Every (R, NR) `panels` instantiates (MR and the short-strip heights 4 and 8).
        check_micro::<f32, 12, 32, true>(kc, strides, offsets, seed)?;
        check_micro::<f32, 8, 32, true>(kc, strides, offsets, seed)?;
        check_micro::<f32, 6, 16, true>(kc, strides, offsets, seed)?;
        check_micro::<f32, 4, 8, false>(kc, strides, offsets, seed)?;
        check_micro::<f64, 12, 16, true>(kc, strides, offsets, seed)?;
        check_micro::<f64, 4, 8, true>(kc, strides, offsets, seed)?;
        check_micro::<f64, 4, 4, false>(kc, strides, offsets, seed)?;
    }

    #[test]
    fn transpose16_moves_every_bit(
        srs in 16..=40usize,
        drs in 16..=40usize,
        extra in 0..=3usize,
        bits in proptest::collection::vec(any::<u32>(), 40 * 16),
    ) {
        // Any bit pattern, NaN payloads included: the transpose only moves data.
        let src: Vec<f32> = bits[..15 * srs + 16 + extra].iter().map(|&b| f32::from_bits(b)).collect();
        let sentinel = f32::from_bits(0x7fc0_1234);
        let mut dst = vec![sentinel; 15 * drs + 16 + extra];
        if f32::transpose16(&src, srs, &mut dst, drs) {
            for (p, d) in dst.iter().enumerate() {
                let (i, j) = (p / drs, p % drs);
                let want = if i < 16 && j < 16 { src[j * srs + i] } else { sentinel };
                prop_assert!(d.to_bits() == want.to_bits(), "dst[{}]", p);
            }
        }
    }
}
