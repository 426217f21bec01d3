//! The fused backward + SGD step (`backward_sgd`, and `Sgd`'s `Optimizer::backward_step`)
//! against the two-step reference (`backward`, then `Sgd::step`), in f64: the parameters
//! must agree to rounding after several steps, on networks that reach every path of the
//! emitter — a large dense layer (weight updated inside its gradient product), small
//! fixed-size layers, biases, a free parameter read by two ops, conv, batch norm, an LSTM.

mod common;
use bp::optim::{Optimizer, Sgd};
use bp::{Network, Tensor};
use common::random;

bp::network! {
    /// A 40→64 layer (2560 weights: the GEMM path, fused), a free param read twice, and a
    /// 64→3 head (the fixed-size kernels: gradient, then the step).
    #[dtype(f64)]
    struct Wide {
        input x: [40];
        param s: [64] = uniform(0.5, 1.5);
        let a = linear(x, 64);
        let h = relu(a) * s + tanh(a) * s;
        let out = linear(h, 3);
        output out;
    }
}

bp::network! {
    /// conv → batch norm → relu → linear, and an LSTM beside it.
    #[dtype(f64)]
    struct Mixed {
        input x: [2, 5, 4];
        input seq: [3, 4];
        let c = conv2d(x, 3, kernel = 3, padding = 1);
        let bn = batch_norm(c);
        let l = lstm(seq, hidden = 5);
        let f = concat(flatten(relu(bn)), flatten(l));
        let out = linear(f, 2);
        output out;
    }
}

/// Runs `steps` training steps two ways from the same start and compares every parameter.
fn same_steps<N: Network<Scalar = f64>>(
    make: impl Fn() -> N,
    inputs: &[Tensor<f64>],
    d_out: &Tensor<f64>,
    lr: f64,
) {
    let refs: Vec<&Tensor<f64>> = inputs.iter().collect();
    let (mut two, mut fused) = (make(), make());
    let mut sgd = Sgd::<f64>::new(lr);
    for step in 0..3 {
        two.forward_dyn(&refs).unwrap();
        two.backward_dyn(&[d_out]).unwrap();
        sgd.step(&mut two).unwrap();
        fused.forward_dyn(&refs).unwrap();
        // Through the optimizer, as the training loop calls it.
        sgd.backward_step(&mut fused, &[d_out]).unwrap();
        let mut moved = 0.0f64;
        for name in two.param_names() {
            let (a, b) = (two.param(name).unwrap(), fused.param(name).unwrap());
            for (i, (x, y)) in a.as_slice().iter().zip(b.as_slice()).enumerate() {
                assert!(
                    (x - y).abs() <= 1e-12 * (1.0 + x.abs()),
                    "step {step}: `{name}`[{i}] is {y} fused but {x} in two steps"
                );
            }
            moved = moved.max(
                a.as_slice()
                    .iter()
                    .zip(make().param(name).unwrap().as_slice())
                    .map(|(x, x0)| (x - x0).abs())
                    .fold(0.0, f64::max),
            );
        }
        // The comparison would be empty if nothing moved.
        assert!(moved > 1e-6, "step {step}: no parameter changed");
    }
}

#[test]
fn fused_step_equals_backward_then_sgd() {
    let x = random(&[7, 40], -1.0, 1.0, 1);
    let d = random(&[7, 3], -1.0, 1.0, 2);
    same_steps(|| Wide::new(3), &[x], &d, 0.1);
    let (x, seq) = (
        random(&[4, 2, 5, 4], -1.0, 1.0, 3),
        random(&[4, 3, 4], -1.0, 1.0, 4),
    );
    let d = random(&[4, 2], -1.0, 1.0, 5);
    same_steps(|| Mixed::new(6), &[x, seq], &d, 0.05);
}

#[test]
fn fused_step_keeps_no_gradients_and_backward_brings_them_back() {
    let x = random(&[2, 40], -1.0, 1.0, 7);
    let d = random(&[2, 3], -1.0, 1.0, 8);
    let mut net = Wide::new(1);
    net.forward(&x).unwrap();
    net.backward_sgd(&d, 0.1).unwrap();
    assert!(net.grad("a.weight").is_none() && net.grad("s").is_none());
    net.forward(&x).unwrap();
    net.backward(&d).unwrap();
    assert!(net.grad("a.weight").is_some());
}

#[test]
fn momentum_or_weight_decay_take_the_two_step_path() {
    // backward_step must not fuse what plain SGD's update cannot express.
    let x = random(&[3, 40], -1.0, 1.0, 9);
    let d = random(&[3, 3], -1.0, 1.0, 10);
    for opt in [
        Sgd::new(0.1).momentum(0.9),
        Sgd::new(0.1).weight_decay(0.01),
    ] {
        let (mut a, mut b) = (Wide::new(2), Wide::new(2));
        let (mut oa, mut ob) = (opt.clone(), opt);
        for _ in 0..2 {
            a.forward(&x).unwrap();
            a.backward(&d).unwrap();
            oa.step(&mut a).unwrap();
            b.forward(&x).unwrap();
            ob.backward_step(&mut b, &[&d]).unwrap();
        }
        for name in a.param_names() {
            assert_eq!(a.param(name), b.param(name), "{name}");
        }
        assert!(b.grad("a.weight").is_some());
    }
}

#[test]
fn bad_calls_are_errors_and_change_nothing() {
    let x = random(&[2, 40], -1.0, 1.0, 11);
    let d = random(&[2, 3], -1.0, 1.0, 12);
    let mut net = Wide::new(5);
    let e = net.backward_sgd(&d, 0.1).unwrap_err().to_string();
    assert!(e.contains("before forward"), "{e}");
    net.forward(&x).unwrap();
    let before = net.param("a.weight").unwrap().clone();
    for lr in [-0.1, f64::NAN, f64::INFINITY] {
        let e = net.backward_sgd(&d, lr).unwrap_err().to_string();
        assert!(e.contains("learning rate"), "lr {lr}: {e}");
    }
    let e = net
        .backward_sgd_dyn(&[&d, &d], 0.1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("backward_sgd_dyn"), "{e}");
    let wrong = random(&[2, 4], -1.0, 1.0, 13);
    let e = net.backward_sgd(&wrong, 0.1).unwrap_err().to_string();
    assert!(e.contains("out"), "{e}");
    assert_eq!(net.param("a.weight").unwrap(), &before);
}
