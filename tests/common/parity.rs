//! The harness of the PyTorch parity tests: a tolerance, a report of every comparison,
//! and fixtures whose tensors must each be compared once.
#![allow(dead_code)]

use bp::{Float, Network, Tensor};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// The criterion: |a − b| ≤ rtol·|b| + atol·max|b|.
#[derive(Clone, Copy)]
pub struct Tol {
    pub rtol: f64,
    pub atol: f64,
}

pub const F64_TOL: Tol = Tol {
    rtol: 1e-6,
    atol: 1e-9,
};
/// f32: 1e-5 relative, plus 1e-7·max|b| for elements that are sums with cancellation
/// (e.g. a weight gradient of 5.5e-3 summed from terms ~100× larger differs by 1.2e-5
/// relative from PyTorch's, both being correctly rounded f32 sums in different orders).
pub const F32_TOL: Tol = Tol {
    rtol: 1e-5,
    atol: 1e-7,
};

/// Comparisons of one network: the worst of each measure, and every failure.
#[derive(Default)]
pub struct Report {
    pub tensors: usize,
    /// max over elements of |a − b| / (rtol·|b| + atol·max|b|): ≤ 1 passes.
    pub worst_ratio: f64,
    pub worst_ratio_at: String,
    pub max_abs: f64,
    pub failures: Vec<String>,
}

impl Report {
    pub fn compare<T: Float>(
        &mut self,
        what: &str,
        got: Option<&Tensor<T>>,
        want: &Tensor<T>,
        tol: Tol,
    ) {
        self.tensors += 1;
        let Some(got) = got else {
            self.failures.push(format!("{what}: bp has no such tensor"));
            return;
        };
        if got.shape() != want.shape() {
            self.failures.push(format!(
                "{what}: bp's shape is {:?} but PyTorch's is {:?}",
                got.shape(),
                want.shape()
            ));
            return;
        }
        let scale = want.iter().map(|b| b.to_f64().abs()).fold(0.0f64, f64::max);
        let mut worst: Option<(f64, usize)> = None;
        let ratio_at = |a: f64, b: f64| error_ratio(a, b, tol.rtol * b.abs() + tol.atol * scale);
        for (i, (&a, &b)) in got.iter().zip(want.iter()).enumerate() {
            let (a, b) = (a.to_f64(), b.to_f64());
            let ratio = ratio_at(a, b);
            if ratio > 0.0 {
                let err = (a - b).abs();
                self.max_abs = self
                    .max_abs
                    .max(if err.is_nan() { f64::INFINITY } else { err });
            }
            if worst.is_none_or(|(r, _)| ratio > r) {
                worst = Some((ratio, i));
            }
        }
        if let Some((ratio, i)) = worst {
            if ratio > self.worst_ratio || self.worst_ratio_at.is_empty() {
                self.worst_ratio = ratio;
                self.worst_ratio_at = format!("{what}[{i}]");
            }
            if ratio > 1.0 {
                let bad: Vec<String> = got
                    .iter()
                    .zip(want.iter())
                    .enumerate()
                    .filter(|(_, (a, b))| ratio_at(a.to_f64(), b.to_f64()) > 1.0)
                    .take(6)
                    .map(|(i, (a, b))| {
                        format!("[{i}] bp {:e} vs torch {:e}", a.to_f64(), b.to_f64())
                    })
                    .collect();
                self.failures.push(format!(
                    "{what} (shape {:?}): worst error {ratio:.3e} × the tolerance; {}",
                    want.shape(),
                    bad.join(", ")
                ));
            }
        }
    }

    pub fn finish(self, network: &str) {
        eprintln!(
            "parity {network}: {} tensors, max |a − b| = {:.3e}, worst error = {:.3e} × tolerance (at {})",
            self.tensors, self.max_abs, self.worst_ratio, self.worst_ratio_at
        );
        assert!(
            self.failures.is_empty(),
            "{network}: bp differs from PyTorch in {} tensor(s):\n  {}",
            self.failures.len(),
            self.failures.join("\n  ")
        );
    }
}

/// |a − b| / bound: ≤ 1 passes. Equal values (infinities included) give 0, and so does
/// NaN where PyTorch has NaN; NaN on one side only gives ∞.
pub fn error_ratio(a: f64, b: f64, bound: f64) -> f64 {
    if a == b || (a.is_nan() && b.is_nan()) {
        return 0.0;
    }
    let err = (a - b).abs();
    if err.is_nan() || bound == 0.0 {
        f64::INFINITY
    } else {
        err / bound
    }
}

/// The reference tensors of one fixture, each to be used exactly once.
pub struct Fixture<T: Float> {
    pub file: String,
    pub tensors: BTreeMap<String, Tensor<T>>,
    pub used: BTreeSet<String>,
}

impl<T: Float> Fixture<T> {
    pub fn open(path: PathBuf) -> Self {
        let file = path.display().to_string();
        let tensors = bp::io::load_tensors::<T>(&path)
            .unwrap_or_else(|e| panic!("cannot read fixture {file}: {e}"));
        Fixture {
            file,
            tensors,
            used: BTreeSet::new(),
        }
    }

    pub fn get(&mut self, key: &str) -> &Tensor<T> {
        self.used.insert(key.to_string());
        self.tensors
            .get(key)
            .unwrap_or_else(|| panic!("fixture {} has no tensor `{key}`", self.file))
    }

    /// The names after `prefix.` of the tensors whose key starts with it.
    pub fn names(&self, prefix: &str) -> Vec<String> {
        let p = format!("{prefix}.");
        self.tensors
            .keys()
            .filter_map(|k| k.strip_prefix(&p).map(str::to_string))
            .collect()
    }

    pub fn all_used(&self) {
        let unused: Vec<&String> = self
            .tensors
            .keys()
            .filter(|k| !self.used.contains(*k))
            .collect();
        assert!(
            unused.is_empty(),
            "fixture {}: tensors not compared: {unused:?}",
            self.file
        );
    }
}

/// Runs forward on the fixture's inputs and compares every output and every node value
/// it holds; `pass` prefixes each label (empty for none).
pub fn forward_and_compare<N: Network>(
    net: &mut N,
    fx: &mut Fixture<N::Scalar>,
    report: &mut Report,
    pass: &str,
    tol: Tol,
) {
    let inputs: Vec<Tensor<N::Scalar>> = N::INPUTS
        .iter()
        .map(|(name, _)| fx.get(&format!("input.{name}")).clone())
        .collect();
    let refs: Vec<&Tensor<N::Scalar>> = inputs.iter().collect();
    net.forward_dyn(&refs).expect("forward");
    for (i, (name, _)) in N::OUTPUTS.iter().enumerate() {
        let want = fx.get(&format!("output.{name}")).clone();
        report.compare(&format!("{pass}output {name}"), net.output(i), &want, tol);
    }
    for name in fx.names("value") {
        let want = fx.get(&format!("value.{name}")).clone();
        report.compare(
            &format!("{pass}value of {name}"),
            net.value(&name),
            &want,
            tol,
        );
    }
}

/// Runs backward with the fixture's `d_out`s and compares as [`compare_backward`].
pub fn backward_and_compare<N: Network>(
    net: &mut N,
    fx: &mut Fixture<N::Scalar>,
    report: &mut Report,
    pass: &str,
    tol: Tol,
) {
    let d_outs: Vec<Tensor<N::Scalar>> = N::OUTPUTS
        .iter()
        .map(|(name, _)| fx.get(&format!("d_out.{name}")).clone())
        .collect();
    let refs: Vec<&Tensor<N::Scalar>> = d_outs.iter().collect();
    net.backward_dyn(&refs).expect("backward");
    compare_backward(net, fx, report, pass, tol);
}

/// Compares every parameter gradient, the gradients of the fixture's `grad` inputs and
/// the residuals it holds; `pass` prefixes each label (empty for none).
pub fn compare_backward<N: Network>(
    net: &N,
    fx: &mut Fixture<N::Scalar>,
    report: &mut Report,
    pass: &str,
    tol: Tol,
) {
    for name in net.param_names() {
        let want = fx.get(&format!("grad.{name}")).clone();
        report.compare(
            &format!("{pass}gradient of {name}"),
            net.grad(name),
            &want,
            tol,
        );
    }
    for name in fx.names("input_grad") {
        let want = fx.get(&format!("input_grad.{name}")).clone();
        report.compare(
            &format!("{pass}gradient of input {name}"),
            net.input_grad(&name),
            &want,
            tol,
        );
    }
    for name in fx.names("residual") {
        let want = fx.get(&format!("residual.{name}")).clone();
        report.compare(
            &format!("{pass}residual of {name}"),
            net.residual(&name),
            &want,
            tol,
        );
    }
}
