//! Gradients against formulas derived by hand (the second reference beside the finite
//! differences of `gradcheck.rs`), and PyTorch's conventions at kinks and ties, which
//! finite differences cannot see.

mod common;
use bp::{Network, Tensor};
use common::random;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

bp::network! {
    #[dtype(f64)]
    struct SigmoidSquare {
        input x: [3] grad;
        let z = linear(x, 2);
        let s = sigmoid(z);
        let y = sum(s * s);
        output y;
    }
}

/// y = Σ_o σ(z_o)², z = x·Wᵀ + b:
/// ∂y/∂z_o = 2σ(z_o)·σ(z_o)(1 − σ(z_o)); ∇W[o,i] = Σ_b ∂y/∂z[b,o]·x[b,i]; ∇b[o] = Σ_b ∂y/∂z[b,o];
/// ∂y/∂x[b,i] = Σ_o ∂y/∂z[b,o]·W[o,i].
#[test]
fn sigmoid_squared_sum() {
    let mut net = SigmoidSquare::new(1);
    let x = random(&[4, 3], -2.0, 2.0, 2);
    net.forward(&x).unwrap();
    let dy = random(&[4], -1.0, 1.0, 3);
    net.backward(&dy).unwrap();
    let (w, z) = (
        net.param("z.weight").unwrap().clone(),
        net.value("z").unwrap().clone(),
    );
    let mut dz = [0.0; 8];
    for b in 0..4 {
        for o in 0..2 {
            let s = 1.0 / (1.0 + (-z[b * 2 + o]).exp());
            dz[b * 2 + o] = dy[b] * 2.0 * s * s * (1.0 - s);
        }
    }
    let (gw, gb, gx) = (
        net.grad("z.weight").unwrap(),
        net.grad("z.bias").unwrap(),
        net.input_grad("x").unwrap(),
    );
    for o in 0..2 {
        let want_b: f64 = (0..4).map(|b| dz[b * 2 + o]).sum();
        assert!(close(gb[o], want_b));
        for i in 0..3 {
            let want: f64 = (0..4).map(|b| dz[b * 2 + o] * x[b * 3 + i]).sum();
            assert!(
                close(gw[o * 3 + i], want),
                "W[{o},{i}]: {} vs {want}",
                gw[o * 3 + i]
            );
        }
    }
    for b in 0..4 {
        for i in 0..3 {
            let want: f64 = (0..2).map(|o| dz[b * 2 + o] * w[o * 3 + i]).sum();
            assert!(close(gx[b * 3 + i], want));
        }
    }
}

bp::network! {
    #[dtype(f64)]
    struct LogSoftmaxGelu {
        input x: [4] grad;
        let g = gelu(x, approximate = "tanh");
        let y = log_softmax(g);
        output y;
    }
}

/// y = log_softmax(g): ∂J/∂g = d_y − softmax(g)·Σ_j d_y_j.
/// g = gelu(x) (tanh form): g' = ½(1 + t) + ½x(1 − t²)·k(1 + 3·0.044715x²),
/// t = tanh(k(x + 0.044715x³)), k = √(2/π).
#[test]
fn log_softmax_of_gelu() {
    let mut net = LogSoftmaxGelu::new(0);
    let x = random(&[3, 4], -3.0, 3.0, 4);
    net.forward(&x).unwrap();
    let dy = random(&[3, 4], -1.0, 1.0, 5);
    net.backward(&dy).unwrap();
    let g = net.value("g").unwrap().clone();
    let k = (2.0 / std::f64::consts::PI).sqrt();
    let gx = net.input_grad("x").unwrap();
    for b in 0..3 {
        let row = &g[b * 4..b * 4 + 4];
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = row.iter().map(|v| (v - m).exp()).sum();
        let sum_dy: f64 = dy[b * 4..b * 4 + 4].iter().sum();
        for j in 0..4 {
            let dg = dy[b * 4 + j] - (row[j] - m).exp() / z * sum_dy;
            let xv = x[b * 4 + j];
            let t = (k * (xv + 0.044715 * xv.powi(3))).tanh();
            let gelu_prime =
                0.5 * (1.0 + t) + 0.5 * xv * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * xv * xv);
            assert!(close(gx[b * 4 + j], dg * gelu_prime), "[{b},{j}]");
        }
    }
}

bp::network! {
    #[dtype(f64)]
    struct Kinks {
        input a: [3] grad;
        input b: [3] grad;
        let m = max(a, b) + min(a, b) * 2.0;
        let r = relu(a) + abs(b);
        let y = m + r;
        output y;
    }
}

/// PyTorch's conventions: relu'(0) = 0, |x|'(0) = 0, and max/min split the residual
/// evenly between tied operands.
#[test]
fn kinks_and_ties_follow_pytorch() {
    let mut net = Kinks::new(0);
    let a = Tensor::from_vec(&[1, 3], vec![0.0, 1.0, -2.0]).unwrap();
    let b = Tensor::from_vec(&[1, 3], vec![0.0, 3.0, -2.0]).unwrap();
    net.forward(&a, &b).unwrap();
    net.backward(&Tensor::full(&[1, 3], 1.0)).unwrap();
    // element 0: tie at 0 → max' = min' = ½ each; relu'(0) = 0; abs'(0) = 0.
    // element 1: a < b → max' to b, min' (×2) to a; relu'(1) = 1; abs'(3) = 1.
    // element 2: tie at −2 → ½ each; relu'(−2) = 0; abs'(−2) = −1.
    let da = net.input_grad("a").unwrap();
    let db = net.input_grad("b").unwrap();
    assert_eq!(da.as_slice(), &[0.5 + 1.0, 2.0 + 1.0, 0.5 + 1.0]);
    assert_eq!(db.as_slice(), &[0.5 + 1.0, 1.0 + 1.0, 0.5 + 1.0 - 1.0]);
}
