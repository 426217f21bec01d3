//! The measurement behind the choice of the GEMM crate (see `bp-runtime/GEMM.md`).
//!
//! ```text
//! cargo run --release -p bp-runtime --example gemm_pick -- one    # 1 thread: gemm vs matrixmultiply vs naive
//! cargo run --release -p bp-runtime --example gemm_pick -- two    # 2 threads on the same shapes
//! cargo run --release -p bp-runtime --example gemm_pick -- sweep  # 1 vs 2 threads: the threshold
//! cargo run --release -p bp-runtime --example gemm_pick -- split  # 1 vs 2 threads of a batch split
//! cargo run --release -p bp-runtime --example gemm_pick -- shape 256 1024 784 [threads]
//! cargo run --release -p bp-runtime --example gemm_pick -- mlp 784,1024,1024,10 256 [threads]
//! ```
//!
//! `bp` is the runtime's own entry point (`Float::gemm_strided`) with the thread count
//! given explicitly; `gemm crate` calls the `gemm-f32`/`gemm-f64` crates directly;
//! `matrixmultiply` reads its thread count once from `MATMUL_NUM_THREADS` (set here from
//! the mode). Layouts are
//! row-major with transposes read in place through strides: NN = A·B, NT = A·Bᵀ (the
//! forward of a dense layer), TN = Aᵀ·B (its weight gradient). Each figure is the median
//! GFLOP/s (2·m·n·k per product) of several repeats of about 100 ms each, taken while
//! no other process used the CPUs (see `bench`); a `*` marks a figure taken while the
//! machine stayed busy.

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
    /// The runtime's hook (`Float::gemm_strided`) with this many threads.
    Bp(usize),
    /// The `gemm` crate (its f32/f64 parts) called directly, with this many threads.
    Crate(usize),
    /// matrixmultiply, threads from `MATMUL_NUM_THREADS`.
    Mm,
    /// A plain triple loop.
    Naive,
}

/// The element types, with their matrixmultiply and `gemm` crate entry points.
trait Elem: Float {
    /// The `gemm` crate's function for the type.
    fn crate_fn() -> CrateFn<Self>;
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

/// The signature of the `gemm-f32`/`gemm-f64` entry point: `(m, n, k, dst, dst_cs,
/// dst_rs, read_dst, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs, α, β, conj×3, parallelism)`
/// computes `dst := α·dst + β·lhs·rhs`.
type CrateFn<T> = unsafe fn(
    usize,
    usize,
    usize,
    *mut T,
    isize,
    isize,
    bool,
    *const T,
    isize,
    isize,
    *const T,
    isize,
    isize,
    T,
    T,
    bool,
    bool,
    bool,
    gemm_common::Parallelism,
);

/// C = op(A)·op(B) (C row-major `[m, n]`) through the `gemm` crate, as the `gemm` umbrella
/// crate calls it: for a row-major C it computes Cᵀ = op(B)ᵀ·op(A)ᵀ.
#[allow(clippy::too_many_arguments)]
fn crate_product<T: Elem>(
    threads: usize,
    (m, n, k): (usize, usize, usize),
    a: &[T],
    sa: [usize; 2],
    b: &[T],
    sb: [usize; 2],
    c: &mut [T],
) {
    // The extents are checked so that the unsafe call below stays in bounds.
    assert!(m > 1 && n > 1 && k > 1);
    assert!((m - 1) * sa[0] + (k - 1) * sa[1] < a.len());
    assert!((k - 1) * sb[0] + (n - 1) * sb[1] < b.len());
    assert!(m * n <= c.len());
    let s = |v: usize| v as isize;
    let par = if threads > 1 {
        gemm_common::Parallelism::Rayon(threads)
    } else {
        gemm_common::Parallelism::None
    };
    // SAFETY: the transposed problem reads op(B)ᵀ [n, k] at j·sb[1] + p·sb[0] and
    // op(A)ᵀ [k, m] at p·sa[1] + i·sa[0], the offsets checked above, and writes C at
    // j + i·n < m·n, each element once; C is borrowed mutably apart from A and B.
    unsafe {
        T::crate_fn()(
            n,
            m,
            k,
            c.as_mut_ptr(),
            s(n),
            1,
            false,
            b.as_ptr(),
            s(sb[0]),
            s(sb[1]),
            a.as_ptr(),
            s(sa[0]),
            s(sa[1]),
            T::ZERO,
            T::ONE,
            false,
            false,
            false,
            par,
        )
    }
}

macro_rules! elem {
    ($t:ident, $f:ident, $crate_fn:path) => {
        impl Elem for $t {
            fn crate_fn() -> CrateFn<$t> {
                $crate_fn()
            }

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
elem!(f32, sgemm, gemm_f32::gemm::f32::get_gemm_fn);
elem!(f64, dgemm, gemm_f64::gemm::f64::get_gemm_fn);

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
        Lib::Crate(t) => crate_product(t, (m, n, k), a, sa, b, sb, c),
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

/// Clock ticks of CPU time used so far by the whole machine and by this process (Linux
/// `/proc`; `None` elsewhere).
fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let all: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: everything but idle and iowait.
    let busy = all
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum();
    let own = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = own.rsplit(')').next()?.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Some((
        busy,
        fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?,
    ))
}

/// Median GFLOP/s over `reps` repeats of about 100 ms each (one product at least).
///
/// The machine is shared, so a repeat during which other processes used more than 10 %
/// of a CPU (read from `/proc`) is thrown away and run again, up to 20 times per repeat;
/// a figure that needed more than that is marked noisy (the second value is false).
fn bench<T: Elem>(
    lib: Lib,
    l: Layout,
    (m, n, k): (usize, usize, usize),
    reps: usize,
) -> (f64, bool) {
    let fill = |len: usize, s: usize| -> Vec<T> {
        (0..len)
            .map(|i| T::from_f64(((i * 7 + s) % 13) as f64 / 13.0 - 0.5))
            .collect()
    };
    let (a, b) = (fill(m * k, 3), fill(k * n, 1));
    let mut c = vec![T::ZERO; m * n];
    let flops = 2.0 * (m * n * k) as f64;
    let budget = if matches!(lib, Lib::Naive) { 2e8 } else { 5e9 };
    let iters = ((budget / flops) as usize).max(1);
    product(lib, l, m, n, k, &a, &b, &mut c); // warm-up: caches, thread pools, packing buffers
    let mut quiet = true;
    let mut rates: Vec<f64> = (0..reps)
        .map(|_| {
            for attempt in 0.. {
                let before = cpu_ticks();
                let t = Instant::now();
                for _ in 0..iters {
                    product(lib, l, m, n, k, black_box(&a), black_box(&b), &mut c);
                    black_box(&mut c);
                }
                let secs = t.elapsed().as_secs_f64();
                let others = match (before, cpu_ticks()) {
                    (Some((b0, o0)), Some((b1, o1))) => (b1 - b0).saturating_sub(o1 - o0),
                    _ => 0,
                };
                // Ticks are 1/100 s: others' CPU time over the repeat's wall time.
                if others as f64 / 100.0 <= 0.1 * secs || attempt >= 20 {
                    quiet &= attempt < 20;
                    return flops * iters as f64 / secs / 1e9;
                }
            }
            unreachable!()
        })
        .collect();
    rates.sort_by(|x, y| x.total_cmp(y));
    (rates[rates.len() / 2], quiet)
}

/// A figure, starred when the machine was not quiet.
fn show((rate, quiet): (f64, bool)) -> String {
    format!("{rate:.1}{}", if quiet { "" } else { "*" })
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
                let reps = if big { 5 } else { 7 };
                print!(" {} |", show(bench::<T>(lib, l, (m, n, k), reps)));
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
                bench::<f32>(Lib::Bp(1), l, s, 7),
                bench::<f32>(Lib::Bp(2), l, s, 7),
            );
            let (d1, d2) = (
                bench::<f64>(Lib::Bp(1), l, s, 7),
                bench::<f64>(Lib::Bp(2), l, s, 7),
            );
            let mnk = (s.0 * s.1 * s.2) as f64 / 1e6;
            println!(
                "| {},{},{} | {mnk:.1} | {l:?} | {} | {} | {:.2} | {} | {} | {:.2} |",
                s.0,
                s.1,
                s.2,
                show(s1),
                show(s2),
                s2.0 / s1.0,
                show(d1),
                show(d2),
                d2.0 / d1.0
            );
        }
    }
}

/// The products of one MLP training step, in the order a step runs them, each layer with
/// its own buffers (as in a network: operands come cold from the previous product):
/// forward `x·Wᵀ` (NT), then per layer from the last the input gradient `dy·W` (NN,
/// not for the first layer) and the weight gradient `dyᵀ·x` (TN). Prints the median
/// GFLOP/s of the whole sequence and of each product alone, for bp and the crate.
fn mlp(sizes: &[usize], batch: usize, threads: usize) {
    type P = (Layout, usize, usize, usize, usize);
    let fill = |len: usize| -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7 % 13) as f32) / 13.0 - 0.5)
            .collect()
    };
    let layers = sizes.len() - 1;
    let w: Vec<Vec<f32>> = (0..layers).map(|l| fill(sizes[l] * sizes[l + 1])).collect();
    let mut act: Vec<Vec<f32>> = sizes.iter().map(|&s| fill(batch * s)).collect();
    let mut grad: Vec<Vec<f32>> = sizes.iter().map(|&s| fill(batch * s)).collect();
    let mut dw: Vec<Vec<f32>> = w.iter().map(|v| vec![0.0; v.len()]).collect();
    // (layout, m, n, k, layer) in step order; the buffers are picked in `run`.
    let mut seq: Vec<P> = (0..layers)
        .map(|l| (Layout::NT, batch, sizes[l + 1], sizes[l], l))
        .collect();
    for l in (0..layers).rev() {
        if l > 0 {
            seq.push((Layout::NN, batch, sizes[l], sizes[l + 1], l));
        }
        seq.push((Layout::TN, sizes[l + 1], sizes[l], batch, l));
    }
    let mut run = |lib: Lib, only: Option<usize>| {
        for (idx, &(lay, m, n, k, l)) in seq.iter().enumerate() {
            if only.is_some_and(|o| o != idx) {
                continue;
            }
            match lay {
                Layout::NT => {
                    let (lo, hi) = act.split_at_mut(l + 1);
                    product(lib, lay, m, n, k, &lo[l], &w[l], &mut hi[0]);
                }
                Layout::NN => {
                    let (lo, hi) = grad.split_at_mut(l + 1);
                    product(lib, lay, m, n, k, &hi[0], &w[l], &mut lo[l]);
                }
                Layout::TN => product(lib, lay, m, n, k, &grad[l + 1], &act[l], &mut dw[l]),
            }
        }
    };
    let flops = |only: Option<usize>| -> f64 {
        seq.iter()
            .enumerate()
            .filter(|(i, _)| only.is_none_or(|o| o == *i))
            .map(|(_, &(_, m, n, k, _))| 2.0 * (m * n * k) as f64)
            .sum()
    };
    let mut time = |lib: Lib, only: Option<usize>| -> f64 {
        run(lib, only);
        let iters = ((3e9 / flops(only)) as usize).max(1);
        let mut rates: Vec<f64> = (0..5)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..iters {
                    run(lib, only);
                }
                flops(only) * iters as f64 / t.elapsed().as_secs_f64() / 1e9
            })
            .collect();
        rates.sort_by(|x, y| x.total_cmp(y));
        rates[2]
    };
    println!("| product | m,n,k | bp {threads}t | crate {threads}t |");
    println!("|---|---|---:|---:|");
    for (i, &(lay, m, n, k, l)) in seq.clone().iter().enumerate() {
        let (b, c) = (
            time(Lib::Bp(threads), Some(i)),
            time(Lib::Crate(threads), Some(i)),
        );
        println!("| layer {l} {lay:?} | {m},{n},{k} | {b:.1} | {c:.1} |");
    }
    let (b, c) = (
        time(Lib::Bp(threads), None),
        time(Lib::Crate(threads), None),
    );
    println!("| whole step | | {b:.1} | {c:.1} |");
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// 1 vs 2 threads of a kernel that splits the batch, by growing work: max pooling forward
/// (2×2, 8 channels of 16×16 per sample), all on one thread against the two halves of
/// the batch on bp's pool (`split::run_parts`, as the kernels split, forced here below
/// the threshold too). Median µs per call of 15 repeats of 200 calls. `SPLIT_THRESHOLD`
/// in `kernels/split.rs` is where the second thread starts to pay.
fn split() {
    use bp_runtime::kernels::{max_pool2d, set_threads, split::run_parts, Pool2dGeom};
    set_threads(1);
    let g = Pool2dGeom {
        c: 8,
        h: 16,
        w: 16,
        k: 2,
        stride: 2,
    };
    let median = |mut reps: Vec<f64>| {
        reps.sort_by(f64::total_cmp);
        reps[reps.len() / 2]
    };
    println!("\n| batch | elements | 1t µs | 2t µs | ×2t |");
    println!("|---:|---:|---:|---:|---:|");
    for batch in [2, 4, 8, 16, 32, 64, 128] {
        let (per_x, per_y) = (g.c * g.h * g.w, g.out_len());
        let n = batch * per_x;
        let x: Vec<f32> = (0..n).map(|i| ((i * 7 % 13) as f32) / 13.0).collect();
        let mut y = vec![0.0f32; batch * per_y];
        let mut idx = vec![0u32; batch * per_y];
        let one = median(
            (0..15)
                .map(|_| {
                    let t = Instant::now();
                    for _ in 0..200 {
                        max_pool2d(&g, batch, black_box(&x), &mut y, &mut idx);
                    }
                    t.elapsed().as_secs_f64() / 200.0 * 1e6
                })
                .collect(),
        );
        let half = batch / 2;
        let (x0, x1) = x.split_at(half * per_x);
        let (y0, y1) = y.split_at_mut(half * per_y);
        let (i0, i1) = idx.split_at_mut(half * per_y);
        let mut items = [(x0, y0, i0), (x1, y1, i1)];
        let two = median(
            (0..15)
                .map(|_| {
                    let t = Instant::now();
                    for _ in 0..200 {
                        run_parts(&mut items, 2, &|_, (x, y, idx)| {
                            max_pool2d(&g, half, black_box(x), y, idx)
                        });
                    }
                    t.elapsed().as_secs_f64() / 200.0 * 1e6
                })
                .collect(),
        );
        println!("| {batch} | {n} | {one:.2} | {two:.2} | {:.2} |", one / two);
    }
}

/// 1 vs 2 threads of one sample's convolution (`conv2d` at batch 1: im2col, then one
/// product whose rows are cut over the threads when it is large enough), for the
/// convolutions of the benchmark networks and larger ones. Median µs per call of 15
/// repeats. `CONV_SAMPLE_THRESHOLD` in `kernels/conv.rs` is where the second thread
/// starts to pay: below it the product stays on the calling thread.
fn conv() {
    use bp_runtime::kernels::{conv2d, set_threads, Conv2dGeom};
    let median = |mut reps: Vec<f64>| {
        reps.sort_by(f64::total_cmp);
        reps[reps.len() / 2]
    };
    println!("\n| c→out | h×w | k | MACs (K) | 1t µs | 2t µs | ×2t |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    let geoms = [
        (1, 8, 28, 5, 0),
        (8, 16, 12, 5, 0),
        (3, 32, 32, 3, 1),
        (16, 32, 16, 3, 1),
        (32, 64, 16, 3, 1),
        (64, 64, 16, 3, 1),
        (64, 128, 16, 3, 1),
        (128, 128, 16, 3, 1),
        (32, 32, 32, 3, 1),
        (64, 64, 32, 3, 1),
        (128, 256, 8, 3, 1),
    ];
    for (c, out, hw, k, pad) in geoms {
        let g = Conv2dGeom {
            c,
            h: hw,
            w: hw,
            out,
            k,
            stride: 1,
            pad,
        };
        let x: Vec<f32> = (0..g.in_len())
            .map(|i| ((i * 7 % 13) as f32) / 13.0)
            .collect();
        let w: Vec<f32> = (0..g.weight_len())
            .map(|i| ((i * 5 % 11) as f32) / 11.0)
            .collect();
        let mut y = vec![0.0f32; g.out_len()];
        let mut cols = vec![0.0f32; g.cols_len()];
        let calls = (2_000_000 / g.macs()).clamp(10, 2000);
        let mut time = |t: usize| {
            set_threads(t);
            median(
                (0..15)
                    .map(|_| {
                        let start = Instant::now();
                        for _ in 0..calls {
                            conv2d(&g, 1, black_box(&x), &w, None, &mut y, &mut cols);
                        }
                        start.elapsed().as_secs_f64() / calls as f64 * 1e6
                    })
                    .collect(),
            )
        };
        let (one, two) = (time(1), time(2));
        println!(
            "| {c}→{out} | {hw}×{hw} | {k} | {} | {one:.2} | {two:.2} | {:.2} |",
            g.macs() / 1000,
            one / two
        );
    }
    set_threads(1);
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
                ("bp", Lib::Bp(1)),
                ("gemm crate", Lib::Crate(1)),
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
                ("gemm crate 2t", Lib::Crate(2)),
                ("matrixmultiply 2t", Lib::Mm),
            ];
            table::<f32>("f32", &libs);
            table::<f64>("f64", &libs);
        }
        "sweep" => sweep(),
        "split" => split(),
        "conv" => conv(),
        "shape" => {
            // gemm_pick shape M N K [threads]: bp vs the crate on one shape, every layout.
            let arg = |i: usize, d: usize| {
                std::env::args()
                    .nth(i)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(d)
            };
            let (m, n, k, t) = (arg(2, 256), arg(3, 1024), arg(4, 784), arg(5, 1));
            for l in [Layout::NN, Layout::NT, Layout::TN] {
                let (bp, _) = bench::<f32>(Lib::Bp(t), l, (m, n, k), 5);
                let (cr, _) = bench::<f32>(Lib::Crate(t), l, (m, n, k), 5);
                println!("f32 {m},{n},{k} {l:?} {t}t: bp {bp:.1}  crate {cr:.1} GFLOP/s");
            }
        }
        "mlp" => {
            // gemm_pick mlp SIZES BATCH [threads]: the products of a training step.
            let sizes: Vec<usize> = std::env::args()
                .nth(2)
                .unwrap_or_else(|| "784,1024,1024,10".into())
                .split(',')
                .filter_map(|v| v.parse().ok())
                .collect();
            let arg = |i: usize, d: usize| {
                std::env::args()
                    .nth(i)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(d)
            };
            mlp(&sizes, arg(3, 256), arg(4, 1));
        }
        _ => eprintln!(
            "usage: gemm_pick one|two|sweep|split|conv|shape M N K [threads]|mlp SIZES BATCH [threads]"
        ),
    }
    println!("\nload average after: {}", load());
}
