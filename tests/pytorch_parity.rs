//! Parity with PyTorch: networks built with `network!` compute what PyTorch computes —
//! outputs, every parameter gradient, the gradients of `grad` inputs, and the value and
//! residual of every `let`-bound node — in f64, to
//!
//!     |a − b| ≤ 1e-6·|b| + 1e-9·max|b|     (elementwise; max over the tensor)
//!
//! with `a` bp's and `b` PyTorch's. One network runs in f32 against PyTorch in float32,
//! to 1e-5·|b| + 1e-7·max|b|. The losses are compared with `torch.nn.functional`'s.
//!
//! The reference values are the committed files in `tests/fixtures/networks/`, written
//! once by `tools/make_network_fixtures.py` (PyTorch; see its header for how to re-run
//! it). Each network below is written twice: here with `network!`, there with torch; the
//! bp source is also stored in each fixture's metadata under "architecture".
//!
//! The parameters are loaded with `net.load(path)` from safetensors files written by
//! `safetensors.torch.save_file`, so loading PyTorch's files is tested on every network;
//! the `interop` tests load a real `model.state_dict()`.

mod common;

use bp::{Network, Tensor};
use common::parity::{
    backward_and_compare, forward_and_compare, Fixture, Report, Tol, F32_TOL, F64_TOL,
};
use std::path::PathBuf;

// ------------------------------------------------------------------------ the harness

fn fixture(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/networks")
        .join(file)
}

/// Loads the parameters from `params` (strictly, with `net.load`), runs forward on the
/// fixture's inputs and backward with its `d_out`s, and compares every output, parameter
/// gradient, input gradient, node value and node residual the fixture holds. A fixture
/// without `d_out`s is forward only.
fn check_network<N: Network>(net: &mut N, params: &str, data: &str, tol: Tol) -> Report {
    net.load(fixture(params))
        .unwrap_or_else(|e| panic!("loading {params} (written by PyTorch): {e}"));
    let mut fx = Fixture::<N::Scalar>::open(fixture(data));
    let mut report = Report::default();

    forward_and_compare(net, &mut fx, &mut report, "", tol);

    if fx.names("d_out").is_empty() {
        fx.all_used();
        return report;
    }
    backward_and_compare(net, &mut fx, &mut report, "", tol);
    fx.all_used();
    report
}

/// The usual case: `NAME.params.safetensors` and `NAME.data.safetensors`, f64.
fn parity<N: Network<Scalar = f64>>(mut net: N, name: &str) {
    check_network(
        &mut net,
        &format!("{name}.params.safetensors"),
        &format!("{name}.data.safetensors"),
        F64_TOL,
    )
    .finish(name);
}

// ---------------------------------------------------------------------------- networks

bp::network! {
    /// Every activation on a linear layer over the last dim of a [T, F] input; linear with
    /// and without bias, in ≠ out; leaky_relu and elu with their default and a given
    /// hyperparameter; concat of nine parts along dim 1.
    #[dtype(f64)]
    struct Activations {
        input x: [3, 4] grad;
        let fc1 = linear(x, 5);
        let fc2 = linear(x, 5, bias = false);
        let r = relu(fc1);
        let sg = sigmoid(fc1);
        let th = tanh(fc2);
        let lr = leaky_relu(fc1, slope = 0.2);
        let lr0 = leaky_relu(fc2);
        let ge = gelu(fc1, approximate = "tanh");
        let si = silu(fc2);
        let el = elu(fc2, alpha = 0.7);
        let el1 = elu(fc1);
        let h = concat(r, sg, th, lr, lr0, ge, si, el, el1, dim = 1);
        let out = linear(h, 2);
        output out;
    }
}

#[test]
fn activations_match_pytorch() {
    parity(Activations::new(0), "activations");
}

bp::network! {
    /// Unary functions on an input with values from −30 to 60: softplus on both sides of
    /// its threshold 20, the saturated tails of sigmoid, tanh, gelu, silu and elu, exp, ln,
    /// sqrt, abs, pow with an integer, a fractional and a negative exponent; softmax and
    /// log_softmax of logits spread over thousands. `sp` is an output that also feeds
    /// `all`; four outputs.
    #[dtype(f64)]
    struct Unary {
        input z: [8] grad;
        let sp = softplus(z);
        let sg = sigmoid(z);
        let th = tanh(z * 0.3);
        let ge = gelu(z * 0.4, approximate = "tanh");
        let si = silu(z);
        let el = elu(z * 0.2, alpha = 1.5);
        let ex = exp(z * 0.05);
        let lg = ln(abs(z) + 0.5);
        let sq = sqrt(z * z + 1.0);
        let p3 = pow(z * 0.1, 3);
        let pf = pow(abs(z) + 1.0, 1.5);
        let pn = pow(z * z + 2.0, -0.5);
        let all = concat(sp, sg, th, ge, si, el, ex, lg, sq, p3, pf, pn, dim = 0);
        let y = linear(all, 3);
        let sm = softmax(z * 30.0);
        let ls = log_softmax(z * 30.0);
        output sp, y, sm, ls;
    }
}

#[test]
fn unary_functions_match_pytorch() {
    parity(Unary::new(0), "unary");
}

bp::network! {
    /// softplus alone, so that its input gradient is d_out·softplus'(z): PyTorch's
    /// threshold (beta 1, threshold 20) makes it the identity above 20, where
    /// log(1 + exp(z)) would overflow (z = 710, 800, 1000).
    #[dtype(f64)]
    struct Softplus {
        input z: [8] grad;
        let sp = softplus(z);
        output sp;
    }
}

#[test]
fn softplus_threshold_matches_pytorch() {
    let mut net = Softplus::new(0);
    parity(Softplus::new(0), "softplus");
    // Above the threshold PyTorch returns z and passes d_out through, bit for bit; below
    // it, log1p(exp(z)) and σ(z) differ from those by less than the tolerance sees
    // (1.3e-9 relative at 20.5), so the branch is checked exactly here.
    let mut fx = Fixture::<f64>::open(fixture("softplus.data.safetensors"));
    let z = fx.get("input.z").clone();
    let d = fx.get("d_out.sp").clone();
    let (want_y, want_dz) = (fx.get("output.sp").clone(), fx.get("input_grad.z").clone());
    let y = net.forward(&z).unwrap().clone();
    net.backward(&d).unwrap();
    let dz = net.input_grad("z").unwrap();
    let mut above = 0;
    for i in 0..z.len() {
        let zi = z.as_slice()[i];
        if zi > 20.0 {
            above += 1;
            assert_eq!(want_y.as_slice()[i], zi, "PyTorch's softplus({zi})");
            assert_eq!(
                want_dz.as_slice()[i],
                d.as_slice()[i],
                "PyTorch's softplus'({zi})"
            );
            assert_eq!(y.as_slice()[i], zi, "bp's softplus({zi})");
            assert_eq!(dz.as_slice()[i], d.as_slice()[i], "bp's softplus'({zi})·d");
        }
        assert!(y.as_slice()[i].is_finite() && dz.as_slice()[i].is_finite());
    }
    assert!(
        above >= 10,
        "the fixture has {above} inputs above the threshold"
    );
}

bp::network! {
    /// NaN in, NaN out: PyTorch propagates a NaN through every operation (forward only;
    /// gradients at NaN are not compared, PyTorch's own are accidents of its kernels).
    #[dtype(f64)]
    struct NanPropagation {
        input x: [6];
        let r = relu(x);
        let mx = max(x, 0.5);
        let mn = min(x, -0.5);
        let lr = leaky_relu(x, slope = 0.1);
        let el = elu(x);
        let sp = softplus(x);
        let ge = gelu(x, approximate = "tanh");
        let ab = abs(x);
        let sm = softmax(x);
        let s = sum(x);
        let all = concat(r, mx, mn, lr, el, sp, ge, ab, sm, s * x, dim = 0);
        output all;
    }
}

#[test]
fn nan_propagates_as_in_pytorch() {
    parity(NanPropagation::new(0), "nan");
}

bp::network! {
    /// `+ − * /`, unary minus, literals on either side, min and max, broadcasting of a
    /// `[]` input, a param of the node's shape and a `[]` param; `sum` and `mean` into a
    /// second, scalar output.
    #[dtype(f64)]
    struct Arithmetic {
        input x: [6] grad;
        input s: [] grad;
        param w: [6] = normal(0.5);
        param k: [] = 0.7;
        let a = linear(x, 6);
        let b = linear(x, 6);
        let e1 = a * b - a / (b * b + 1.0) + s * w - k * a + 2.0;
        let e2 = -a + 3.0 / (1.0 + b * b) - w / k + s;
        let m = min(a, b) + max(a, s) - min(w, b) + max(k, a);
        let out1 = e1 * e2 - m / 2.0;
        let out2 = sum(out1 * w) + mean(e2) * s;
        output out1, out2;
    }
}

#[test]
fn arithmetic_and_broadcasting_match_pytorch() {
    parity(Arithmetic::new(0), "arithmetic");
}

bp::network! {
    /// Kinks and ties exactly where PyTorch defines them: pre-activations exactly 0 (a
    /// zero sample into zero biases, and 0.5·1 + 0.5·(−1)) into relu (relu'(0) = 0),
    /// leaky_relu (slope), elu (alpha) and abs (abs'(0) = 0); abs and relu of inputs
    /// exactly 0; min and max with exact ties between inputs, with a literal, and with a
    /// `[]` input (the residual split 0.5/0.5, as torch.minimum/maximum), and of a node
    /// with itself (two halves: the whole residual); a node twice in one concat.
    #[dtype(f64)]
    struct Kinks {
        input u: [4] grad;
        input v: [4] grad;
        input t: [] grad;
        let fc = linear(u, 3);
        let r = relu(fc);
        let lr = leaky_relu(fc, slope = 0.1);
        let el = elu(fc, alpha = 0.5);
        let af = abs(fc);
        let o1 = concat(r, lr, el, af, fc, fc, dim = 0);
        let a = abs(u);
        let ru = relu(u);
        let mn = min(u, v);
        let mx = max(u, v);
        let mz = max(u, 0.0);
        let mk = min(v, 0.5);
        let mt = max(u, t) + min(t, v);
        let st = max(u, u) + min(v, v) * 2.0;
        let o2 = concat(a, ru, mn, mx, mz, mk, mt, st, dim = 0);
        output o1, o2;
    }
}

#[test]
fn kinks_and_ties_match_pytorch() {
    // The fixture does put values exactly on the kinks.
    let fx = Fixture::<f64>::open(fixture("kinks.data.safetensors"));
    let fc = &fx.tensors["value.fc"];
    assert_eq!(fc.as_slice()[0], 0.0, "sample 0, unit 0");
    assert_eq!(fc.as_slice()[2], 0.0, "sample 0, unit 2");
    assert_eq!(fc.as_slice()[6], 0.0, "sample 2, unit 0");
    parity(Kinks::new(0), "kinks");
}

bp::network! {
    /// concat along dims 1 and 0 of a [2, 3] input, softmax and log_softmax over the last
    /// dim of a [4, 7] node, flatten, sum and mean into a scalar output.
    #[dtype(f64)]
    struct Structure {
        input x: [2, 3] grad;
        let a = linear(x, 4);
        let c0 = concat(x, a, dim = 1);
        let th = tanh(c0);
        let c1 = concat(c0, th, dim = 0);
        let p = softmax(c1);
        let lp = log_softmax(c1 * 3.0);
        let f = flatten(p * lp);
        let s = sum(c1);
        let m = mean(lp);
        let out1 = linear(f, 3);
        let out2 = s * m + sum(p * c1);
        output out1, out2;
    }
}

#[test]
fn reductions_softmax_and_structure_match_pytorch() {
    parity(Structure::new(0), "structure");
}

bp::network! {
    /// `h` feeds three successors; `o1` is an output that also feeds `o2`.
    #[dtype(f64)]
    struct FanOut {
        input x: [5] grad;
        let h = tanh(linear(x, 6));
        let a = linear(h, 4);
        let b = sigmoid(h) * h;
        let c = sum(h);
        let o1 = linear(b, 4) + a;
        let o2 = o1 * c;
        output o1, o2;
    }
}

#[test]
fn fan_out_and_two_outputs_match_pytorch() {
    parity(FanOut::new(0), "fan_out");
}

// ------------------------------------------------------------------------------ losses

fn labels_of(t: &Tensor<f64>) -> Vec<usize> {
    t.iter()
        .map(|&v| {
            assert!(v >= 0.0 && v.fract() == 0.0, "label {v}");
            v as usize
        })
        .collect()
}

#[test]
fn losses_match_pytorch() {
    let mut fx = Fixture::<f64>::open(fixture("losses.safetensors"));
    let mut report = Report::default();
    let mut check = |fx: &mut Fixture<f64>, case: &str, loss: f64, grad: &Tensor<f64>| {
        let want = fx.get(&format!("{case}.loss")).clone();
        let got = Tensor::from_vec(&[1], vec![loss]).unwrap();
        report.compare(&format!("{case} loss"), Some(&got), &want, F64_TOL);
        let want = fx.get(&format!("{case}.grad")).clone();
        report.compare(&format!("{case} gradient"), Some(grad), &want, F64_TOL);
    };
    let mut g = Tensor::default();
    for case in ["mse", "mse_large"] {
        let pred = fx.get(&format!("{case}.pred")).clone();
        let target = fx.get(&format!("{case}.target")).clone();
        let loss = bp::loss::mse(&pred, &target, &mut g).unwrap();
        check(&mut fx, case, loss, &g);
    }
    for case in ["ce", "ce_extreme"] {
        let logits = fx.get(&format!("{case}.logits")).clone();
        let labels = labels_of(fx.get(&format!("{case}.labels")));
        let loss = bp::loss::softmax_cross_entropy(&logits, &labels, &mut g).unwrap();
        check(&mut fx, case, loss, &g);
    }
    for case in ["bce", "bce_extreme"] {
        let logits = fx.get(&format!("{case}.logits")).clone();
        let targets = fx.get(&format!("{case}.targets")).clone();
        let loss = bp::loss::binary_cross_entropy_with_logits(&logits, &targets, &mut g).unwrap();
        check(&mut fx, case, loss, &g);
    }
    fx.all_used();
    report.finish("losses");
}

// ----------------------------------------------------------------------------- interop

// PyTorch's side (tools/make_network_fixtures.py):
//
//     class Interop(nn.Module):
//         def __init__(self):
//             super().__init__()
//             self.scale = nn.Parameter(torch.ones(8))
//             self.fc1 = nn.Linear(6, 16)
//             self.fc2 = nn.Linear(16, 8)
//             self.out = nn.Linear(8, 3)
//
//         def forward(self, x):
//             h1 = F.gelu(self.fc1(x), approximate="tanh")
//             h2 = torch.tanh(self.fc2(h1)) * self.scale
//             return F.log_softmax(self.out(h2), dim=-1)
//
//     safetensors.torch.save_file(model.state_dict(), "interop.f64.safetensors")

bp::network! {
    /// The network of PyTorch's `Interop` module, in f64.
    #[dtype(f64)]
    struct Interop {
        input x: [6];
        param scale: [8] = ones;
        let fc1 = linear(x, 16);
        let h1 = gelu(fc1, approximate = "tanh");
        let fc2 = linear(h1, 8);
        let h2 = tanh(fc2) * scale;
        let out = linear(h2, 3);
        let logp = log_softmax(out);
        output logp;
    }
}

bp::network! {
    /// The network of PyTorch's `Interop` module, in f32 (the default dtype).
    struct InteropF32 {
        input x: [6];
        param scale: [8] = ones;
        let fc1 = linear(x, 16);
        let h1 = gelu(fc1, approximate = "tanh");
        let fc2 = linear(h1, 8);
        let h2 = tanh(fc2) * scale;
        let out = linear(h2, 3);
        let logp = log_softmax(out);
        output logp;
    }
}

/// A file saved by bp holds what the PyTorch file it was loaded from holds: the same
/// names, shapes and values, so PyTorch's `load_state_dict(strict=True)` takes it back.
fn assert_round_trip<N: Network>(net: &N, torch_file: &str) {
    let path = std::env::temp_dir().join(format!("bp-parity-{}-{torch_file}", std::process::id()));
    net.save(&path).expect("save");
    let ours = bp::io::load_tensors::<N::Scalar>(&path).expect("read back");
    std::fs::remove_file(&path).ok();
    let theirs = bp::io::load_tensors::<N::Scalar>(fixture(torch_file)).expect("read");
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "names of bp's file vs PyTorch's state_dict"
    );
    for (name, t) in &theirs {
        assert_eq!(&ours[name], t, "`{name}` after load + save");
    }
}

#[test]
fn pytorch_state_dict_loads_and_runs_f64() {
    let mut net = Interop::new(0);
    let report = check_network(
        &mut net,
        "interop.f64.safetensors",
        "interop.f64.data.safetensors",
        F64_TOL,
    );
    assert_round_trip(&net, "interop.f64.safetensors");
    report.finish("interop f64");
}

#[test]
fn pytorch_state_dict_loads_and_runs_f32() {
    let mut net = InteropF32::new(0);
    let report = check_network(
        &mut net,
        "interop.f32.safetensors",
        "interop.f32.data.safetensors",
        F32_TOL,
    );
    assert_round_trip(&net, "interop.f32.safetensors");
    report.finish("interop f32");
}

#[test]
fn a_file_of_the_wrong_dtype_is_refused() {
    // PyTorch's float32 state_dict into the f64 network: an error naming the dtype.
    let mut net = Interop::new(0);
    let err = net
        .load(fixture("interop.f32.safetensors"))
        .expect_err("an F32 file into an f64 network");
    let msg = err.to_string();
    assert!(msg.contains("F32") && msg.contains("F64"), "{msg}");
}
