//! Parity with PyTorch of the elementwise functions sin, cos, erf, square, rsqrt, clamp
//! (both bounds by position and by name, only `min`, only `max`, min > max) and gelu
//! (the exact erf form, the default, and `approximate = "tanh"`): outputs, every
//! parameter gradient, the input gradient, and the value and residual of every `let`
//! node, in f64, to
//!
//!     |a − b| ≤ 1e-6·|b| + 1e-9·max|b|     (elementwise; max over the tensor)
//!
//! with `a` bp's and `b` PyTorch's.
//!
//! Each network is `h = linear(x, 5)`, `y = F(h)`, `z = linear(y, 3)` and `d = F(x)`
//! straight on the input, outputs `z` and `d`. The reference values are the committed
//! files in `tests/fixtures/functions/`, written by `tools/make_function_fixtures.py`
//! (PyTorch; see its header for the inputs chosen and how to re-run it); the bp source of
//! each network is also stored in its fixture's metadata under "architecture".
//!
//! clamp: the fixtures hold values exactly at each bound, on the input and on a
//! pre-activation (a sample x = 0 makes h equal to the bias, set to the bounds). There
//! PyTorch's gradient is 0 (2.15: only lo < x < hi passes it, as F.hardtanh; 1.13 still
//! passed it at the bounds), and `clamp_gradient_at_the_bounds` checks that rule element
//! by element.

mod common;

use bp::{Network, Tensor};
use common::parity::{backward_and_compare, forward_and_compare, Fixture, Report, F64_TOL};
use std::path::PathBuf;

fn fixture(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/functions")
        .join(file)
}

/// Loads `NAME.params.safetensors` (strictly, with `net.load`), runs forward on the
/// inputs of `NAME.data.safetensors` and backward with its `d_out`s, and compares every
/// tensor the fixture holds.
fn parity<N: Network<Scalar = f64>>(mut net: N, name: &str) {
    let params = format!("{name}.params.safetensors");
    net.load(fixture(&params))
        .unwrap_or_else(|e| panic!("loading {params} (written by PyTorch): {e}"));
    let mut fx = Fixture::<f64>::open(fixture(&format!("{name}.data.safetensors")));
    let mut report = Report::default();
    forward_and_compare(&mut net, &mut fx, &mut report, "", F64_TOL);
    backward_and_compare(&mut net, &mut fx, &mut report, "", F64_TOL);
    fx.all_used();
    report.finish(name);
}

bp::network! {
    /// sin over several periods; sin(x) at 0, ±π/2, ±π, 100.
    #[dtype(f64)]
    struct Sin {
        input x: [8] grad;
        let h = linear(x, 5);
        let y = sin(h);
        let z = linear(y, 3);
        let d = sin(x);
        output z, d;
    }
}

#[test]
fn sin_matches_pytorch() {
    parity(Sin::new(0), "sin");
}

bp::network! {
    /// cos, and cos of a scaled input (0, ±π/8, π/4, −π/2, 50 after scaling by 2).
    #[dtype(f64)]
    struct Cos {
        input x: [8] grad;
        let h = linear(x, 5);
        let y = cos(h);
        let z = linear(y, 3);
        let d = cos(x * 2.0);
        output z, d;
    }
}

#[test]
fn cos_matches_pytorch() {
    parity(Cos::new(0), "cos");
}

bp::network! {
    /// erf, with both tails (±6.5: erf = ±1 to the last bit), 0 and 1e-3.
    #[dtype(f64)]
    struct Erf {
        input x: [8] grad;
        let h = linear(x, 5);
        let y = erf(h);
        let z = linear(y, 3);
        let d = erf(x);
        output z, d;
    }
}

#[test]
fn erf_matches_pytorch() {
    parity(Erf::new(0), "erf");
}

bp::network! {
    /// square (x²), also inside a formula.
    #[dtype(f64)]
    struct Square {
        input x: [8] grad;
        let h = linear(x, 5);
        let y = square(h);
        let z = linear(y, 3);
        let d = square(x) - x;
        output z, d;
    }
}

#[test]
fn square_matches_pytorch() {
    parity(Square::new(0), "square");
}

bp::network! {
    /// rsqrt (1/√x, torch.rsqrt) of positive arguments only: of exp(h), of x² + 0.5, and
    /// of |x| + 0.001 (large values and slopes near x = 0; x is never 0 there).
    #[dtype(f64)]
    struct Rsqrt {
        input x: [8] grad;
        let h = linear(x, 5);
        let y = rsqrt(exp(h));
        let z = linear(y, 3);
        let d = rsqrt(square(x) + 0.5);
        let e = rsqrt(abs(x) + 0.001);
        output z, d, e;
    }
}

#[test]
fn rsqrt_matches_pytorch() {
    parity(Rsqrt::new(0), "rsqrt");
}

bp::network! {
    /// gelu's exact form 0.5·x·(1 + erf(x/√2)): the default, and `approximate = "none"`
    /// by name; tails at ±12 and ±6.
    #[dtype(f64)]
    struct Gelu {
        input x: [8] grad;
        let h = linear(x, 5);
        let y = gelu(h);
        let z = linear(y, 3);
        let d = gelu(x, approximate = "none");
        output z, d;
    }
}

#[test]
fn gelu_exact_matches_pytorch() {
    parity(Gelu::new(0), "gelu");
}

bp::network! {
    /// gelu's tanh form, by name and by position.
    #[dtype(f64)]
    struct GeluTanh {
        input x: [8] grad;
        let h = linear(x, 5);
        let y = gelu(h, approximate = "tanh");
        let z = linear(y, 3);
        let d = gelu(x, "tanh");
        output z, d;
    }
}

#[test]
fn gelu_tanh_matches_pytorch() {
    parity(GeluTanh::new(0), "gelu_tanh");
}

bp::network! {
    /// clamp with both bounds, by position and by name, and with min > max (every output
    /// is `max`, as torch.clamp). Values exactly at, just inside and just outside each
    /// bound.
    #[dtype(f64)]
    struct Clamp {
        input x: [8] grad;
        let h = linear(x, 5);
        let y = clamp(h, -0.3, 0.4);
        let z = linear(y, 3);
        let d = clamp(x, min = -1.0, max = 2.0);
        let e = clamp(x, 1.0, -1.0);
        output z, d, e;
    }
}

#[test]
fn clamp_matches_pytorch() {
    parity(Clamp::new(0), "clamp");
}

bp::network! {
    /// clamp with only `min`.
    #[dtype(f64)]
    struct ClampMin {
        input x: [8] grad;
        let h = linear(x, 5);
        let y = clamp(h, min = -0.3);
        let z = linear(y, 3);
        let d = clamp(x, min = -1.0);
        output z, d;
    }
}

#[test]
fn clamp_min_matches_pytorch() {
    parity(ClampMin::new(0), "clamp_min");
}

bp::network! {
    /// clamp with only `max`.
    #[dtype(f64)]
    struct ClampMax {
        input x: [8] grad;
        let h = linear(x, 5);
        let y = clamp(h, max = 0.4);
        let z = linear(y, 3);
        let d = clamp(x, max = 2.0);
        output z, d;
    }
}

#[test]
fn clamp_max_matches_pytorch() {
    parity(ClampMax::new(0), "clamp_max");
}

/// The clamp gradient element by element on the input, where `d = clamp(x, …)` is an
/// output: the fixture's (PyTorch's) ∂J/∂x through `d` is d_out exactly strictly inside
/// the bounds and 0 elsewhere, bounds included, and bp's must be the same. For `Clamp` and
/// `ClampMin`/`ClampMax` the other paths to x (through `h`, and `e` for min > max) are
/// taken out by reading the residual of `h` and recomputing them.
#[test]
fn clamp_gradient_at_the_bounds() {
    fn check<N: Network<Scalar = f64>>(
        mut net: N,
        name: &str,
        lo: Option<f64>,
        hi: Option<f64>,
        failures: &mut Vec<String>,
    ) -> usize {
        net.load(fixture(&format!("{name}.params.safetensors")))
            .unwrap();
        let mut fx = Fixture::<f64>::open(fixture(&format!("{name}.data.safetensors")));
        let x = fx.get("input.x").clone();
        let outputs: Vec<String> = N::OUTPUTS.iter().map(|(n, _)| n.to_string()).collect();
        let d_outs: Vec<Tensor<f64>> = outputs
            .iter()
            .map(|o| fx.get(&format!("d_out.{o}")).clone())
            .collect();
        let refs: Vec<&Tensor<f64>> = d_outs.iter().collect();
        net.forward_dyn(&[&x]).unwrap();
        net.backward_dyn(&refs).unwrap();
        // ∂J/∂x through `h` = residual(h)·W, the same for both.
        let through_h = |d_h: &Tensor<f64>, w: &Tensor<f64>| -> Vec<f64> {
            let (b, o, i) = (x.shape()[0], w.shape()[0], w.shape()[1]);
            let mut g = vec![0.0; b * i];
            for s in 0..b {
                for k in 0..i {
                    g[s * i + k] = (0..o).map(|j| d_h[s * o + j] * w[j * i + k]).sum();
                }
            }
            g
        };
        let w = net.param("h.weight").unwrap().clone();
        let bp_h = through_h(net.residual("h").unwrap(), &w);
        let torch_h = through_h(fx.get("residual.h"), &w);
        let bp_gx = net.input_grad("x").unwrap();
        let torch_gx = fx.get("input_grad.x").clone();
        let d_out_d = &d_outs[1];
        let mut at_bounds = 0;
        for k in 0..x.len() {
            let v = x[k];
            let inside = lo.is_none_or(|lo| v > lo) && hi.is_none_or(|hi| v < hi);
            if lo == Some(v) || hi == Some(v) {
                at_bounds += 1;
            }
            let want = if inside { d_out_d[k] } else { 0.0 };
            // `e` (min > max) passes no gradient: what is left is `d`'s contribution.
            let torch_d = torch_gx[k] - torch_h[k];
            let bp_d = bp_gx[k] - bp_h[k];
            assert!(
                (torch_d - want).abs() <= 1e-12 * (1.0 + want.abs()),
                "{name}: PyTorch's clamp gradient at x = {v:e} is {torch_d:e}, not {want:e}"
            );
            if (bp_d - want).abs() > 1e-12 * (1.0 + want.abs()) {
                failures.push(format!(
                    "{name}: clamp(x, min = {lo:?}, max = {hi:?}) at x[{k}] = {v:?}: bp passes \
                     {bp_d:e}, PyTorch {want:e} (d_out {:e})",
                    d_out_d[k]
                ));
            }
        }
        at_bounds
    }
    let mut failures = Vec::new();
    let mut n = check(Clamp::new(0), "clamp", Some(-1.0), Some(2.0), &mut failures);
    n += check(
        ClampMin::new(0),
        "clamp_min",
        Some(-1.0),
        None,
        &mut failures,
    );
    n += check(
        ClampMax::new(0),
        "clamp_max",
        None,
        Some(2.0),
        &mut failures,
    );
    assert!(n >= 4, "the fixtures have {n} inputs exactly at a bound");
    assert!(
        failures.is_empty(),
        "clamp's gradient differs from PyTorch's:\n  {}",
        failures.join("\n  ")
    );
}
