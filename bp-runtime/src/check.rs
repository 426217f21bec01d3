//! A gradient checker: the analytic gradients of a network against central finite
//! differences.
//!
//! The checker reduces the outputs to one scalar with fixed, seeded random projections,
//! `J = Σ_k ⟨output_k, R_k⟩`, so that `∂J/∂output_k = R_k` is what it hands to
//! [`Network::backward_dyn`]. Every parameter gets its gradient from [`Network::grad`] and
//! every input declared with `grad` from [`Network::input_grad`]; each element (or a
//! seeded sample of them) is then perturbed by `±h`, `J` recomputed by
//! [`Network::forward_dyn`], and `(J(+) − J(−)) / 2h` compared with the analytic value.
//!
//! An element passes when
//!
//! ```text
//! |a − b| ≤ rtol·|b| + atol·max|b| + floor
//! ```
//!
//! where `a` is the analytic and `b` the numeric gradient, `max|b|` runs over the checked
//! elements of the tensor, and `floor = rounding·ε·S / h` bounds the rounding error of the
//! difference quotient itself (`ε` the f64 epsilon, `S = Σ_k Σ |output_k ⊙ R_k|` the size
//! of the terms summed into `J`). Set [`GradCheck::rounding`] to 0 for the bare criterion.
//!
//! # Randomness in the network
//!
//! The numeric gradient is meaningful only when `forward_dyn` is a deterministic function
//! of the parameters and inputs. Dropout in training mode draws a new mask on every
//! forward pass, so the checker calls [`Network::reseed`] with its seed before every
//! forward pass: each pass then draws the same masks.
//! Batch norm in training mode is deterministic (it normalizes with the batch's own
//! statistics) and is checked as it is; the running statistics it updates on every pass are
//! saved before the check and restored afterwards.
//!
//! ```
//! # use bp_runtime::{check::GradCheck, Network, Tensor};
//! # fn demo<N: Network<Scalar = f64>>(net: &mut N, x: &Tensor<f64>) -> Result<(), bp_runtime::Error> {
//! let report = GradCheck::new().step(1e-6).rtol(1e-6).atol(1e-9).seed(0).run(net, &[x])?;
//! println!("{report}");
//! report.into_result()?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

use crate::rng::SplitMix64;
use crate::{Error, Network, Tensor};
use std::fmt;

/// The settings of a gradient check; build with [`GradCheck::new`] and the setters, then
/// call [`GradCheck::run`].
#[derive(Clone, Debug)]
pub struct GradCheck {
    step: f64,
    rtol: f64,
    atol: f64,
    rounding: f64,
    seed: u64,
    max_elements: Option<usize>,
    five_point: bool,
}

impl Default for GradCheck {
    fn default() -> Self {
        GradCheck::new()
    }
}

/// Whether a checked tensor is a parameter or an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A learnable parameter (`net.grad(name)`).
    Param,
    /// An input declared with `grad` (`net.input_grad(name)`).
    Input,
}

/// The outcome of the check of one tensor.
#[derive(Clone, Debug)]
pub struct TensorCheck {
    /// The parameter or input name.
    pub name: String,
    /// Parameter or input.
    pub role: Role,
    /// The shape of the tensor.
    pub shape: Vec<usize>,
    /// How many elements were checked (all, or a seeded sample).
    pub checked: usize,
    /// The largest `|a − b|` over the checked elements.
    pub max_abs_err: f64,
    /// The largest `|a − b| / max(|b|, tiny)` over the checked elements.
    pub max_rel_err: f64,
    /// The flat index of the element that misses its tolerance by the widest margin,
    /// relative to the tolerance (or, when all pass, comes closest to missing it).
    pub worst_index: usize,
    /// The analytic gradient at `worst_index`.
    pub worst_analytic: f64,
    /// The numeric gradient at `worst_index`.
    pub worst_numeric: f64,
    /// How many checked elements failed the criterion.
    pub failures: usize,
}

impl TensorCheck {
    /// Whether every checked element of this tensor met the criterion.
    pub fn passed(&self) -> bool {
        self.failures == 0
    }
}

/// The result of [`GradCheck::run`]: one [`TensorCheck`] per parameter and per input with a
/// gradient, in that order.
#[derive(Clone, Debug)]
pub struct GradReport {
    /// The checks, parameters first (declaration order), then inputs.
    pub tensors: Vec<TensorCheck>,
    /// The settings the check ran with.
    pub settings: GradCheck,
    /// The value of `J` at the unperturbed point.
    pub objective: f64,
}

impl GradReport {
    /// Whether every tensor passed.
    pub fn passed(&self) -> bool {
        self.tensors.iter().all(TensorCheck::passed)
    }

    /// The check of one tensor by name.
    pub fn get(&self, name: &str) -> Option<&TensorCheck> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// `Ok(())` if every tensor passed, else an error holding the full report.
    pub fn into_result(self) -> Result<(), Error> {
        if self.passed() {
            Ok(())
        } else {
            Err(Error::invalid(format!("gradient check failed:\n{self}")))
        }
    }

    /// Panics with the full report unless every tensor passed: for tests.
    ///
    /// # Panics
    /// If any checked element missed its tolerance.
    #[track_caller]
    pub fn assert_ok(&self) {
        assert!(self.passed(), "gradient check failed:\n{self}");
    }
}

impl fmt::Display for GradReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        writeln!(
            f,
            "gradient check (h = {:e}, rtol = {:e}, atol = {:e}, rounding = {}, seed = {}, J = {:.6e})",
            s.step, s.rtol, s.atol, s.rounding, s.seed, self.objective
        )?;
        for t in &self.tensors {
            let role = match t.role {
                Role::Param => "param",
                Role::Input => "input",
            };
            writeln!(
                f,
                "  {} {role} {} {:?}: {} of {} checked, max abs err {:.3e}, max rel err {:.3e}, \
                 worst at {:?} analytic {:.9e} numeric {:.9e}{}",
                if t.passed() { "ok  " } else { "FAIL" },
                t.name,
                t.shape,
                t.checked,
                t.shape.iter().product::<usize>(),
                t.max_abs_err,
                t.max_rel_err,
                unravel(t.worst_index, &t.shape),
                t.worst_analytic,
                t.worst_numeric,
                if t.passed() {
                    String::new()
                } else {
                    format!(" ({} elements fail)", t.failures)
                }
            )?;
        }
        Ok(())
    }
}

impl GradCheck {
    /// The defaults: `h = 1e-6`, `rtol = 1e-6`, `atol = 1e-9`, `rounding = 16`, seed 0,
    /// every element checked.
    pub fn new() -> GradCheck {
        GradCheck {
            step: 1e-6,
            rtol: 1e-6,
            atol: 1e-9,
            rounding: 16.0,
            seed: 0,
            max_elements: None,
            five_point: false,
        }
    }

    /// The finite-difference step `h`.
    pub fn step(mut self, h: f64) -> Self {
        self.step = h;
        self
    }

    /// The relative tolerance (times `|b|`).
    pub fn rtol(mut self, rtol: f64) -> Self {
        self.rtol = rtol;
        self
    }

    /// The absolute tolerance, relative to the largest numeric gradient of the tensor.
    pub fn atol(mut self, atol: f64) -> Self {
        self.atol = atol;
        self
    }

    /// The factor of the rounding floor `rounding·ε·S/h` (0 disables it).
    pub fn rounding(mut self, factor: f64) -> Self {
        self.rounding = factor;
        self
    }

    /// Uses the five-point central difference, whose error is O(h⁴) instead of O(h²):
    /// with h around 1e-3 both its truncation and its rounding error stay near 1e-13,
    /// which small gradients of deep networks (recurrent layers) need.
    pub fn five_point(mut self, on: bool) -> Self {
        self.five_point = on;
        self
    }

    /// The seed of the random projections `R_k` and of the element sample.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Checks at most `n` elements of each tensor, a seeded sample without repetition
    /// (default: all). Useful for large layers, where each element costs two forward passes.
    pub fn max_elements_per_tensor(mut self, n: usize) -> Self {
        self.max_elements = Some(n);
        self
    }

    /// Runs the check on one batch (one tensor per input, batch dimension first).
    ///
    /// The network is left as after one `forward_dyn` and `backward_dyn` on the unperturbed
    /// point (parameters restored bit for bit, buffers restored to their values before the
    /// call). Errors come from the network itself, from bad settings, or from a parameter
    /// that has no gradient after backward.
    pub fn run<N: Network<Scalar = f64>>(
        &self,
        net: &mut N,
        inputs: &[&Tensor<f64>],
    ) -> Result<GradReport, Error> {
        self.validate()?;
        let buffers = snapshot_buffers(net);
        let result = self.run_inner(net, inputs);
        restore_buffers(net, &buffers);
        result
    }

    fn validate(&self) -> Result<(), Error> {
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        if !(self.step.is_finite() && self.step > 0.0) {
            return Err(Error::invalid(format!(
                "GradCheck: the step h must be positive and finite, not {}",
                self.step
            )));
        }
        if !ok(self.rtol) || !ok(self.atol) || !ok(self.rounding) {
            return Err(Error::invalid(format!(
                "GradCheck: rtol ({}), atol ({}) and rounding ({}) must be finite and ≥ 0",
                self.rtol, self.atol, self.rounding
            )));
        }
        if self.max_elements == Some(0) {
            return Err(Error::invalid(
                "GradCheck: max_elements_per_tensor must be at least 1",
            ));
        }
        Ok(())
    }

    fn run_inner<N: Network<Scalar = f64>>(
        &self,
        net: &mut N,
        inputs: &[&Tensor<f64>],
    ) -> Result<GradReport, Error> {
        let mut rng = SplitMix64::new(self.seed);
        net.reseed(self.seed);
        net.forward_dyn(inputs)?;
        let projections = make_projections(net, &mut rng)?;
        let (objective, scale) = objective(net, &projections)?;
        let refs: Vec<&Tensor<f64>> = projections.iter().collect();
        net.backward_dyn(&refs)?;
        let analytic = collect_analytic(net)?;
        let floor = self.rounding * f64::EPSILON * scale / self.step;
        let mut eval = Evaluator {
            inputs: inputs.iter().map(|t| (*t).clone()).collect(),
            projections,
            step: self.step,
            seed: self.seed,
            five_point: self.five_point,
        };
        let mut tensors = Vec::with_capacity(analytic.len());
        for (name, role, grad) in &analytic {
            let indices = self.sample(grad.len(), &mut rng);
            let numeric = match role {
                Role::Param => eval.param_numeric(net, name, &indices)?,
                Role::Input => eval.input_numeric(net, name, &indices)?,
            };
            tensors.push(self.compare(name, *role, grad, &indices, &numeric, floor));
        }
        // Leave the gradients of the unperturbed point in the network.
        net.reseed(self.seed);
        net.forward_dyn(inputs)?;
        let refs: Vec<&Tensor<f64>> = eval.projections.iter().collect();
        net.backward_dyn(&refs)?;
        Ok(GradReport {
            tensors,
            settings: self.clone(),
            objective,
        })
    }

    /// The flat indices to check: all, or a seeded sample in increasing order.
    fn sample(&self, len: usize, rng: &mut SplitMix64) -> Vec<usize> {
        let mut all: Vec<usize> = (0..len).collect();
        match self.max_elements {
            Some(m) if m < len => {
                for i in 0..m {
                    let j = i + rng.below(len - i);
                    all.swap(i, j);
                }
                all.truncate(m);
                all.sort_unstable();
                all
            }
            _ => all,
        }
    }

    fn compare(
        &self,
        name: &str,
        role: Role,
        grad: &Tensor<f64>,
        indices: &[usize],
        numeric: &[f64],
        floor: f64,
    ) -> TensorCheck {
        let max_b = numeric.iter().fold(0.0f64, |m, b| m.max(b.abs()));
        let mut check = TensorCheck {
            name: name.to_string(),
            role,
            shape: grad.shape().to_vec(),
            checked: indices.len(),
            max_abs_err: 0.0,
            max_rel_err: 0.0,
            worst_index: indices.first().copied().unwrap_or(0),
            worst_analytic: 0.0,
            worst_numeric: 0.0,
            failures: 0,
        };
        let mut worst_margin = f64::NEG_INFINITY;
        for (&i, &b) in indices.iter().zip(numeric) {
            let a = grad.as_slice()[i];
            let err = (a - b).abs();
            let tol = self.rtol * b.abs() + self.atol * max_b + floor;
            // Written so that NaN anywhere fails and counts as the worst element.
            let ok = err <= tol;
            // How far past (> 0) or within (≤ 0) its tolerance the element is.
            let margin = if err.is_nan() {
                f64::INFINITY
            } else {
                (err - tol) / tol.max(f64::MIN_POSITIVE)
            };
            check.failures += usize::from(!ok);
            check.max_abs_err = nan_max(check.max_abs_err, err);
            check.max_rel_err = nan_max(check.max_rel_err, err / b.abs().max(f64::MIN_POSITIVE));
            if margin > worst_margin {
                worst_margin = margin;
                check.worst_index = i;
                check.worst_analytic = a;
                check.worst_numeric = b;
            }
        }
        check
    }
}

/// The multi-index of flat index `i` in a row-major tensor of `shape`.
fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (slot, &d) in index.iter_mut().zip(shape).rev() {
        *slot = i % d.max(1);
        i /= d.max(1);
    }
    index
}

/// The larger of two errors, NaN winning (a NaN error must show in the report).
fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Re-evaluates `J` at perturbed points.
struct Evaluator {
    inputs: Vec<Tensor<f64>>,
    projections: Vec<Tensor<f64>>,
    step: f64,
    seed: u64,
    five_point: bool,
}

impl Evaluator {
    fn objective<N: Network<Scalar = f64>>(&self, net: &mut N) -> Result<f64, Error> {
        let refs: Vec<&Tensor<f64>> = self.inputs.iter().collect();
        net.reseed(self.seed);
        net.forward_dyn(&refs)?;
        Ok(objective(net, &self.projections)?.0)
    }

    /// The objective with element `i` of `target` set to `x` (restored by the caller).
    fn at<N: Network<Scalar = f64>>(
        &mut self,
        net: &mut N,
        target: Target,
        i: usize,
        x: f64,
    ) -> Result<f64, Error> {
        match target {
            Target::Param(name) => *param_elem_mut(net, name, i)? = x,
            Target::Input(k) => self.inputs[k].as_mut_slice()[i] = x,
        }
        self.objective(net)
    }

    /// Central differences at each index: (J(v+h) − J(v−h))/2h, or with `five_point`
    /// (−J(v+2h) + 8J(v+h) − 8J(v−h) + J(v−2h))/12h, whose error is O(h⁴).
    fn numeric<N: Network<Scalar = f64>>(
        &mut self,
        net: &mut N,
        target: Target,
        indices: &[usize],
    ) -> Result<Vec<f64>, Error> {
        let mut out = Vec::with_capacity(indices.len());
        for &i in indices {
            let v = match target {
                Target::Param(name) => param_elem(net, name, i)?,
                Target::Input(k) => self.inputs[k].as_slice()[i],
            };
            let h = self.step;
            let d = if self.five_point {
                let (p2, p1) = (
                    self.at(net, target, i, v + 2.0 * h),
                    self.at(net, target, i, v + h),
                );
                let (m1, m2) = (
                    self.at(net, target, i, v - h),
                    self.at(net, target, i, v - 2.0 * h),
                );
                // Grouped as differences first: where J does not depend on the element
                // (four equal values) the quotient is exactly 0; evaluated left to right,
                // 8·J − J rounds and leaves ±ulp(8J)/12h, which fails a true zero gradient.
                let (p2, p1, m1, m2) = (p2?, p1?, m1?, m2?);
                (8.0 * (p1 - m1) - (p2 - m2)) / (12.0 * h)
            } else {
                let (plus, minus) = (v + h, v - h);
                let (jp, jm) = (
                    self.at(net, target, i, plus),
                    self.at(net, target, i, minus),
                );
                (jp? - jm?) / (plus - minus)
            };
            match target {
                Target::Param(name) => *param_elem_mut(net, name, i)? = v,
                Target::Input(k) => self.inputs[k].as_mut_slice()[i] = v,
            }
            out.push(d);
        }
        Ok(out)
    }

    fn param_numeric<N: Network<Scalar = f64>>(
        &mut self,
        net: &mut N,
        name: &str,
        indices: &[usize],
    ) -> Result<Vec<f64>, Error> {
        self.numeric(net, Target::Param(name), indices)
    }

    fn input_numeric<N: Network<Scalar = f64>>(
        &mut self,
        net: &mut N,
        name: &str,
        indices: &[usize],
    ) -> Result<Vec<f64>, Error> {
        let k = N::INPUTS
            .iter()
            .position(|(n, _)| *n == name)
            .ok_or_else(|| Error::invalid(format!("GradCheck: no input `{name}`")))?;
        self.numeric(net, Target::Input(k), indices)
    }
}

/// What an element perturbation changes.
#[derive(Clone, Copy)]
enum Target<'a> {
    Param(&'a str),
    Input(usize),
}

fn param_elem<N: Network<Scalar = f64>>(net: &N, name: &str, i: usize) -> Result<f64, Error> {
    net.param(name)
        .and_then(|p| p.as_slice().get(i).copied())
        .ok_or_else(|| Error::invalid(format!("GradCheck: parameter `{name}` has no element {i}")))
}

fn param_elem_mut<'a, N: Network<Scalar = f64>>(
    net: &'a mut N,
    name: &str,
    i: usize,
) -> Result<&'a mut f64, Error> {
    net.param_mut(name)
        .and_then(|p| p.as_mut_slice().get_mut(i))
        .ok_or_else(|| Error::invalid(format!("GradCheck: parameter `{name}` has no element {i}")))
}

/// One projection per output, of the output's shape, uniform in [-1, 1).
fn make_projections<N: Network<Scalar = f64>>(
    net: &N,
    rng: &mut SplitMix64,
) -> Result<Vec<Tensor<f64>>, Error> {
    (0..N::OUTPUTS.len())
        .map(|k| {
            let out = output(net, k)?;
            let data = (0..out.len()).map(|_| rng.uniform() * 2.0 - 1.0).collect();
            Tensor::from_vec(out.shape(), data)
        })
        .collect()
}

fn output<N: Network<Scalar = f64>>(net: &N, k: usize) -> Result<&Tensor<f64>, Error> {
    net.output(k).ok_or_else(|| {
        Error::invalid(format!(
            "GradCheck: the network has no output {k} (`{}`) after forward",
            N::OUTPUTS.get(k).map_or("?", |p| p.0)
        ))
    })
}

/// `J = Σ_k ⟨output_k, R_k⟩` and `S = Σ_k Σ |output_k ⊙ R_k|`.
fn objective<N: Network<Scalar = f64>>(
    net: &N,
    projections: &[Tensor<f64>],
) -> Result<(f64, f64), Error> {
    let (mut j, mut s) = (0.0, 0.0);
    for (k, r) in projections.iter().enumerate() {
        let out = output(net, k)?;
        if out.shape() != r.shape() {
            return Err(Error::shape(
                format!("GradCheck: output `{}`", N::OUTPUTS[k].0),
                r.shape(),
                out.shape(),
            ));
        }
        for (y, r) in out.as_slice().iter().zip(r.as_slice()) {
            j += y * r;
            s += (y * r).abs();
        }
    }
    Ok((j, s))
}

type Analytic = Vec<(&'static str, Role, Tensor<f64>)>;

/// Copies of every parameter gradient and every input gradient the network has.
fn collect_analytic<N: Network<Scalar = f64>>(net: &N) -> Result<Analytic, Error> {
    let mut out = Vec::new();
    for name in net.param_names() {
        let grad = net.grad(name).ok_or_else(|| {
            Error::invalid(format!(
                "GradCheck: parameter `{name}` has no gradient after backward"
            ))
        })?;
        let param_shape = net
            .param(name)
            .map(|p| p.shape().to_vec())
            .unwrap_or_default();
        if grad.shape() != param_shape.as_slice() {
            return Err(Error::shape(
                format!("GradCheck: gradient of parameter `{name}`"),
                &param_shape,
                grad.shape(),
            ));
        }
        out.push((name, Role::Param, grad.clone()));
    }
    for (name, _) in N::INPUTS {
        if let Some(grad) = net.input_grad(name) {
            out.push((*name, Role::Input, grad.clone()));
        }
    }
    Ok(out)
}

fn snapshot_buffers<N: Network<Scalar = f64>>(net: &N) -> Vec<(&'static str, Tensor<f64>)> {
    net.buffer_names()
        .into_iter()
        .filter_map(|name| net.buffer(name).map(|b| (name, b.clone())))
        .collect()
}

fn restore_buffers<N: Network<Scalar = f64>>(net: &mut N, saved: &[(&'static str, Tensor<f64>)]) {
    for (name, value) in saved {
        if let Some(b) = net.buffer_mut(name) {
            b.assign(value);
        }
    }
}
