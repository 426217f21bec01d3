//! The measurement behind the choice of the GEMM crate (see `bp-runtime/GEMM.md`).
//!
//! ```text
//! cargo run --release -p bp-runtime --example gemm_pick -- one    # 1 thread: gemm vs matrixmultiply vs naive
//! cargo run --release -p bp-runtime --example gemm_pick -- two    # 2 threads on the same shapes
//! cargo run --release -p bp-runtime --example gemm_pick -- sweep  # 1 vs 2 threads: the threshold
//! ```
//!
//! `bp` is the runtime's own entry point (`Float::gemm_strided`, the `gemm` crate behind
//! it) with the thread count given explicitly; `mm` is `matrixmultiply`, whose thread
//! count is read once from `MATMUL_NUM_THREADS` (set here from the mode). Layouts are
//! row-major with transposes read in place through strides: NN = A·B, NT = A·Bᵀ (the
//! forward of a dense layer), TN = Aᵀ·B (its weight gradient). Each figure is the median
//! GFLOP/s (2·m·n·k per product) of several repeats of about 30 ms each.

use bp_runtime::Float;
use std::hint::black_box;
use std::time::Instant;

/// The shapes (m, n, k) the networks use: MLP forward, logits, weight and input
/// gradients, a small layer, a wide layer, and a large square for reference.
const SHAPES: &[(usize, usize, usize)] = &[
    (64, 128, 784),
    (64, 10, 128),
    (128, 784, 64),
    (64, 784, 128),
    (32, 32, 64),
    (256, 1024, 784),
    (256, 1024, 1024),
    (2048, 2048, 2048),
];

/// Shapes for the thread threshold, by growing m·n·k.
const SWEEP: &[(usize, usize, usize)] = &[
    (32, 32, 64),
    (64, 10, 128),
    (64, 64, 64),
    (96, 96, 96),
    (64, 128, 128),
    (128, 128, 128),
    (64, 256, 256),
    (64, 128, 784),
    (64, 784, 128),
    (128, 784, 64),
    (192, 192, 192),
    (128, 256, 256),
    (128, 128, 784),
    (256, 256, 256),
    (128, 512, 512),
    (512, 512, 512),
    (256, 1024, 784),
];

#[derive(Clone, Copy, Debug)]
enum Layout {
    NN,
    NT,
    TN,
}

const LAYOUTS: [Layout; 3] = [Layout::NN, Layout::NT, Layout::TN];

/// `[row stride, column stride]` of op(A) `[m, k]` and op(B) `[k, n]` in row-major storage.
fn strides(l: Layout, m: usize, n: usize, k: usize) -> ([usize; 2], [usize; 2]) {
    match l {
        Layout::NN => ([k, 1], [n, 1]),
        Layout::NT => ([k, 1], [1, k]),
        Layout::TN => ([1, m], [n, 1]),
    }
}

#[derive(Clone, Copy)]
enum Lib {
    /// The runtime's hook (the `gemm` crate) with this many threads.
    Bp(usize),
    /// matrixmultiply, threads from `MATMUL_NUM_THREADS`.
    Mm,
    /// A plain triple loop.
    Naive,
}

/// The element types, with their matrixmultiply entry point.
trait Elem: Float {
    #[allow(clippy::too_many_arguments)]
    fn mm(
        m: usize,
        n: usize,
        k: usize,
        a: &[Self],
        sa: [usize; 2],
        b: &[Self],
        sb: [usize; 2],
        c: &mut [Self],
    );
}

macro_rules! elem {
    ($t:ty, $f:ident) => {
        impl Elem for $t {
            fn mm(
                m: usize,
                n: usize,
                k: usize,
                a: &[Self],
                sa: [usize; 2],
                b: &[Self],
                sb: [usize; 2],
                c: &mut [Self],
            ) {
                // The extents are checked so that the unsafe call below stays in bounds.
                assert!((m - 1) * sa[0] + (k - 1) * sa[1] < a.len());
                assert!((k - 1) * sb[0] + (n - 1) * sb[1] < b.len());
                assert!(m * n <= c.len());
                let s = |v: usize| v as isize;
                // SAFETY: A, B and C hold the extents checked above, C is row-major
                // [m, n] (no two elements alias), and C is borrowed mutably apart from A, B.
                unsafe {
                    matrixmultiply::$f(
                        m,
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        s(sa[0]),
                        s(sa[1]),
                        b.as_ptr(),
                        s(sb[0]),
                        s(sb[1]),
                        0.0,
                        c.as_mut_ptr(),
                        s(n),
                        1,
                    )
                }
            }
        }
    };
}
elem!(f32, sgemm);
elem!(f64, dgemm);

/// C = op(A)·op(B) with the chosen library.
#[allow(clippy::too_many_arguments)]
fn product<T: Elem>(
    lib: Lib,
    l: Layout,
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    b: &[T],
    c: &mut [T],
) {
    let (sa, sb) = strides(l, m, n, k);
    match lib {
        Lib::Bp(t) => T::gemm_strided(m, n, k, T::ONE, a, sa, b, sb, T::ZERO, c, [n, 1], t),
        Lib::Mm => T::mm(m, n, k, a, sa, b, sb, c),
        Lib::Naive => {
            for i in 0..m {
                for j in 0..n {
                    let mut s = T::ZERO;
                    for p in 0..k {
                        s += a[i * sa[0] + p * sa[1]] * b[p * sb[0] + j * sb[1]];
                    }
                    c[i * n + j] = s;
                }
            }
        }
    }
}

/// Median GFLOP/s over `reps` repeats of about 30 ms each (one product at least).
fn bench<T: Elem>(lib: Lib, l: Layout, (m, n, k): (usize, usize, usize), reps: usize) -> f64 {
    let fill = |len: usize, s: usize| -> Vec<T> {
        (0..len)
            .map(|i| T::from_f64(((i * 7 + s) % 13) as f64 / 13.0 - 0.5))
            .collect()
    };
    let (a, b) = (fill(m * k, 3), fill(k * n, 1));
    let mut c = vec![T::ZERO; m * n];
    let flops = 2.0 * (m * n * k) as f64;
    let budget = if matches!(lib, Lib::Naive) {
        1.5e8
    } else {
        1.5e9
    };
    let iters = ((budget / flops) as usize).max(1);
    product(lib, l, m, n, k, &a, &b, &mut c); // warm-up: caches, thread pools, packing buffers
    let mut rates: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                product(lib, l, m, n, k, black_box(&a), black_box(&b), &mut c);
                black_box(&mut c);
            }
            flops * iters as f64 / t.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    rates.sort_by(|x, y| x.total_cmp(y));
    rates[rates.len() / 2]
}

/// A table of every shape and layout for the given libraries.
fn table<T: Elem>(name: &str, libs: &[(&str, Lib)]) {
    print!("\n| {name} m,n,k | layout |");
    for (l, _) in libs {
        print!(" {l} |");
    }
    println!();
    println!("|---|---|{}", "---:|".repeat(libs.len()));
    for &(m, n, k) in SHAPES {
        for l in LAYOUTS {
            print!("| {m},{n},{k} | {l:?} |");
            let big = m * n * k > 300_000_000;
            for &(_, lib) in libs {
                if matches!(lib, Lib::Naive) && big {
                    print!(" – |");
                    continue;
                }
                print!(
                    " {:.1} |",
                    bench::<T>(lib, l, (m, n, k), if big { 5 } else { 9 })
                );
            }
            println!();
        }
    }
}

/// 1 vs 2 threads of the runtime's hook, and the speed-up, by growing size.
fn sweep() {
    println!("\n| m,n,k | m·n·k (M) | layout | f32 1t | f32 2t | ×f32 | f64 1t | f64 2t | ×f64 |");
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|");
    for &s in SWEEP {
        for l in LAYOUTS {
            let (s1, s2) = (
                bench::<f32>(Lib::Bp(1), l, s, 9),
                bench::<f32>(Lib::Bp(2), l, s, 9),
            );
            let (d1, d2) = (
                bench::<f64>(Lib::Bp(1), l, s, 9),
                bench::<f64>(Lib::Bp(2), l, s, 9),
            );
            let mnk = (s.0 * s.1 * s.2) as f64 / 1e6;
            println!(
                "| {},{},{} | {mnk:.1} | {l:?} | {s1:.1} | {s2:.1} | {:.2} | {d1:.1} | {d2:.1} | {:.2} |",
                s.0,
                s.1,
                s.2,
                s2 / s1,
                d2 / d1
            );
        }
    }
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    // matrixmultiply reads its thread count once, on its first product.
    let mm_threads = if mode == "two" { "2" } else { "1" };
    std::env::set_var("MATMUL_NUM_THREADS", mm_threads);
    println!("load average before: {}", load());
    match mode.as_str() {
        "one" => {
            let libs = [
                ("bp (gemm)", Lib::Bp(1)),
                ("matrixmultiply", Lib::Mm),
                ("naive", Lib::Naive),
            ];
            table::<f32>("f32", &libs);
            table::<f64>("f64", &libs);
        }
        "two" => {
            let libs = [
                ("bp 1t", Lib::Bp(1)),
                ("bp 2t", Lib::Bp(2)),
                ("matrixmultiply 2t", Lib::Mm),
            ];
            table::<f32>("f32", &libs);
            table::<f64>("f64", &libs);
        }
        "sweep" => sweep(),
        _ => eprintln!("usage: gemm_pick one|two|sweep"),
    }
    println!("\nload average after: {}", load());
}
