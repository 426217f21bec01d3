//! The gradient checker must bite: a hand-written network `y = W2·relu(W1·x + b1)` whose
//! backward pass takes relu' and the bias-gradient factor as parameters passes with the
//! right ones and fails, naming the right tensors, with wrong ones.
#![forbid(unsafe_code)]

use bp_runtime::check::{GradCheck, Role};
use bp_runtime::{Error, Network, ParamVisitor, Port, Tensor};

const B: usize = 3;
const IN: usize = 4;
const HID: usize = 5;
const OUT: usize = 2;

/// relu'(z): right, and with the wrong sign.
fn relu_prime(z: f64) -> f64 {
    if z > 0.0 {
        1.0
    } else {
        0.0
    }
}
fn relu_prime_wrong_sign(z: f64) -> f64 {
    -relu_prime(z)
}

struct Mlp {
    w1: Tensor<f64>,
    b1: Tensor<f64>,
    w2: Tensor<f64>,
    d_w1: Tensor<f64>,
    d_b1: Tensor<f64>,
    d_w2: Tensor<f64>,
    x: Tensor<f64>,
    pre: Tensor<f64>,
    h: Tensor<f64>,
    y: Tensor<f64>,
    d_x: Tensor<f64>,
    relu_prime: fn(f64) -> f64,
    bias_factor: f64,
    training: bool,
}

/// Deterministic values in (-1, 1) from a tiny LCG.
fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

impl Mlp {
    fn new(relu_prime: fn(f64) -> f64, bias_factor: f64) -> Mlp {
        Mlp {
            w1: Tensor::from_vec(&[HID, IN], values(HID * IN, 1)).unwrap(),
            b1: Tensor::from_vec(&[HID], values(HID, 2)).unwrap(),
            w2: Tensor::from_vec(&[OUT, HID], values(OUT * HID, 3)).unwrap(),
            d_w1: Tensor::zeros(&[HID, IN]),
            d_b1: Tensor::zeros(&[HID]),
            d_w2: Tensor::zeros(&[OUT, HID]),
            x: Tensor::zeros(&[B, IN]),
            pre: Tensor::zeros(&[B, HID]),
            h: Tensor::zeros(&[B, HID]),
            y: Tensor::zeros(&[B, OUT]),
            d_x: Tensor::zeros(&[B, IN]),
            relu_prime,
            bias_factor,
            training: true,
        }
    }

    fn backward_impl(&mut self, dy: &Tensor<f64>, accumulate: bool) -> Result<(), Error> {
        bp_runtime::check_output_grad("y", dy, B, &[OUT])?;
        if !accumulate {
            self.d_w1.fill(0.0);
            self.d_b1.fill(0.0);
            self.d_w2.fill(0.0);
        }
        self.d_x.fill(0.0);
        for b in 0..B {
            for j in 0..HID {
                let mut dh = 0.0;
                for k in 0..OUT {
                    let g = dy[b * OUT + k];
                    self.d_w2[k * HID + j] += g * self.h[b * HID + j];
                    dh += g * self.w2[k * HID + j];
                }
                let dpre = dh * (self.relu_prime)(self.pre[b * HID + j]);
                self.d_b1[j] += self.bias_factor * dpre;
                for i in 0..IN {
                    self.d_w1[j * IN + i] += dpre * self.x[b * IN + i];
                    self.d_x[b * IN + i] += dpre * self.w1[j * IN + i];
                }
            }
        }
        Ok(())
    }
}

impl Network for Mlp {
    type Scalar = f64;
    const INPUTS: &'static [Port] = &[("x", &[IN])];
    const OUTPUTS: &'static [Port] = &[("y", &[OUT])];
    const STRUCTURE_HASH: u64 = 0x1234;

    fn forward_dyn(&mut self, inputs: &[&Tensor<f64>]) -> Result<(), Error> {
        bp_runtime::check_count("forward_dyn", 1, inputs.len())?;
        let batch = bp_runtime::check_input("x", inputs[0], &[IN])?;
        if batch != B {
            return Err(Error::shape("input `x`", &[B, IN], inputs[0].shape()));
        }
        self.x.assign(inputs[0]);
        for b in 0..B {
            for j in 0..HID {
                let mut z = self.b1[j];
                for i in 0..IN {
                    z += self.w1[j * IN + i] * self.x[b * IN + i];
                }
                self.pre[b * HID + j] = z;
                self.h[b * HID + j] = z.max(0.0);
            }
            for k in 0..OUT {
                self.y[b * OUT + k] = (0..HID)
                    .map(|j| self.w2[k * HID + j] * self.h[b * HID + j])
                    .sum();
            }
        }
        Ok(())
    }
    fn output(&self, i: usize) -> Option<&Tensor<f64>> {
        (i == 0).then_some(&self.y)
    }
    fn backward_dyn(&mut self, d: &[&Tensor<f64>]) -> Result<(), Error> {
        bp_runtime::check_count("backward_dyn", 1, d.len())?;
        self.backward_impl(d[0], false)
    }
    fn backward_dyn_accumulate(&mut self, d: &[&Tensor<f64>]) -> Result<(), Error> {
        bp_runtime::check_count("backward_dyn_accumulate", 1, d.len())?;
        self.backward_impl(d[0], true)
    }
    fn param_names(&self) -> Vec<&'static str> {
        vec!["fc1.weight", "fc1.bias", "fc2.weight"]
    }
    fn param(&self, name: &str) -> Option<&Tensor<f64>> {
        match name {
            "fc1.weight" => Some(&self.w1),
            "fc1.bias" => Some(&self.b1),
            "fc2.weight" => Some(&self.w2),
            _ => None,
        }
    }
    fn param_mut(&mut self, name: &str) -> Option<&mut Tensor<f64>> {
        match name {
            "fc1.weight" => Some(&mut self.w1),
            "fc1.bias" => Some(&mut self.b1),
            "fc2.weight" => Some(&mut self.w2),
            _ => None,
        }
    }
    fn grad(&self, name: &str) -> Option<&Tensor<f64>> {
        match name {
            "fc1.weight" => Some(&self.d_w1),
            "fc1.bias" => Some(&self.d_b1),
            "fc2.weight" => Some(&self.d_w2),
            _ => None,
        }
    }
    fn buffer_names(&self) -> Vec<&'static str> {
        Vec::new()
    }
    fn buffer(&self, _: &str) -> Option<&Tensor<f64>> {
        None
    }
    fn buffer_mut(&mut self, _: &str) -> Option<&mut Tensor<f64>> {
        None
    }
    fn residual(&self, _: &str) -> Option<&Tensor<f64>> {
        None
    }
    fn input_grad(&self, name: &str) -> Option<&Tensor<f64>> {
        (name == "x").then_some(&self.d_x)
    }
    fn visit_params(&mut self, f: &mut ParamVisitor<'_, f64>) {
        f("fc1.weight", &mut self.w1, &self.d_w1);
        f("fc1.bias", &mut self.b1, &self.d_b1);
        f("fc2.weight", &mut self.w2, &self.d_w2);
    }
    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
    fn is_training(&self) -> bool {
        self.training
    }
}

/// The input, checked to keep every pre-activation away from relu's kink, and with both
/// live and dead units (so a wrong relu' changes something).
fn input() -> Tensor<f64> {
    let x = Tensor::from_vec(&[B, IN], values(B * IN, 4)).unwrap();
    let mut net = Mlp::new(relu_prime, 1.0);
    net.forward_dyn(&[&x]).unwrap();
    assert!(net.pre.iter().all(|z| z.abs() > 1e-3), "{:?}", net.pre);
    assert!(net.pre.iter().any(|&z| z > 0.0) && net.pre.iter().any(|&z| z < 0.0));
    x
}

fn failed(report: &bp_runtime::check::GradReport) -> Vec<&str> {
    report
        .tensors
        .iter()
        .filter(|t| !t.passed())
        .map(|t| t.name.as_str())
        .collect()
}

#[test]
fn correct_backward_passes() {
    let x = input();
    let mut net = Mlp::new(relu_prime, 1.0);
    let report = GradCheck::new().run(&mut net, &[&x]).unwrap();
    report.assert_ok();
    let names: Vec<_> = report
        .tensors
        .iter()
        .map(|t| (t.name.as_str(), t.role))
        .collect();
    assert_eq!(
        names,
        [
            ("fc1.weight", Role::Param),
            ("fc1.bias", Role::Param),
            ("fc2.weight", Role::Param),
            ("x", Role::Input)
        ]
    );
    for t in &report.tensors {
        assert_eq!(t.checked, t.shape.iter().product::<usize>());
        assert!(t.max_abs_err < 1e-8, "{report}");
    }
    // Parameters come back bit for bit, and the gradients are those of the point.
    let fresh = Mlp::new(relu_prime, 1.0);
    assert_eq!(net.w1, fresh.w1);
    assert_eq!(net.b1, fresh.b1);
    assert!(report.clone().into_result().is_ok());
}

#[test]
fn relu_derivative_of_the_wrong_sign_fails() {
    let x = input();
    let mut net = Mlp::new(relu_prime_wrong_sign, 1.0);
    let report = GradCheck::new().run(&mut net, &[&x]).unwrap();
    assert!(!report.passed());
    // Everything upstream of the relu is wrong; fc2 (downstream) is still right.
    assert_eq!(failed(&report), ["fc1.weight", "fc1.bias", "x"], "{report}");
    let text = report.to_string();
    assert!(text.contains("FAIL param fc1.weight"), "{text}");
    assert!(text.contains("ok   param fc2.weight"), "{text}");
    let e = report.into_result().unwrap_err().to_string();
    assert!(e.starts_with("gradient check failed"), "{e}");
}

#[test]
fn doubled_bias_gradient_fails_only_the_bias() {
    let x = input();
    let mut net = Mlp::new(relu_prime, 2.0);
    let report = GradCheck::new().run(&mut net, &[&x]).unwrap();
    assert_eq!(failed(&report), ["fc1.bias"], "{report}");
    let bias = report.get("fc1.bias").unwrap();
    assert!(
        (bias.worst_analytic - 2.0 * bias.worst_numeric).abs() < 1e-6,
        "{report}"
    );
}

#[test]
#[should_panic(expected = "gradient check failed")]
fn assert_ok_panics_with_the_report() {
    let x = input();
    let mut net = Mlp::new(relu_prime_wrong_sign, 1.0);
    GradCheck::new().run(&mut net, &[&x]).unwrap().assert_ok();
}

#[test]
fn sampled_elements_still_bite() {
    let x = input();
    let check = GradCheck::new().seed(7).max_elements_per_tensor(6);
    let report = check.run(&mut Mlp::new(relu_prime, 1.0), &[&x]).unwrap();
    report.assert_ok();
    assert_eq!(report.get("fc1.weight").unwrap().checked, 6);
    assert_eq!(report.get("fc1.bias").unwrap().checked, 5);
    let report = check
        .run(&mut Mlp::new(relu_prime_wrong_sign, 1.0), &[&x])
        .unwrap();
    assert!(!report.get("fc1.weight").unwrap().passed(), "{report}");
}

#[test]
fn bare_criterion_without_rounding_floor_passes_here_too() {
    let x = input();
    let report = GradCheck::new()
        .rounding(0.0)
        .run(&mut Mlp::new(relu_prime, 1.0), &[&x])
        .unwrap();
    report.assert_ok();
}

#[test]
fn bad_settings_and_bad_inputs_are_errors() {
    let x = input();
    let mut net = Mlp::new(relu_prime, 1.0);
    let e = GradCheck::new().step(0.0).run(&mut net, &[&x]).unwrap_err();
    assert!(e.to_string().contains("step h"), "{e}");
    let e = GradCheck::new()
        .rtol(f64::NAN)
        .run(&mut net, &[&x])
        .unwrap_err();
    assert!(e.to_string().contains("rtol"), "{e}");
    let wrong = Tensor::zeros(&[B, IN + 1]);
    let e = GradCheck::new().run(&mut net, &[&wrong]).unwrap_err();
    assert!(e.to_string().contains("input `x`"), "{e}");
    let e = GradCheck::new().run(&mut net, &[]).unwrap_err();
    assert!(e.to_string().contains("1 tensor(s) but 0"), "{e}");
}
