//! Every operation of the dense language, inside a network built with `network!`,
//! gradient-checked in f64 against central finite differences on every parameter and every
//! `grad` input: layers with in ≠ out, batch ≥ 3, points kept away from kinks.

mod common;
use bp::Network;
use common::{away_from, gradcheck, random};

/// One network per elementwise activation: x → linear(4→5) → act → linear(5→3).
macro_rules! activation_net {
    ($name:ident, $test:ident, |$fc:ident| $act:expr, kink: $kink:expr) => {
        bp::network! {
            #[dtype(f64)]
            struct $name {
                input x: [4] grad;
                let $fc = linear(x, 5);
                let y = $act;
                let out = linear(y, 3);
                output out;
            }
        }

        #[test]
        fn $test() {
            let mut net = $name::new(7);
            let x = random(&[3, 4], -1.5, 1.5, 11);
            net.forward(&x).unwrap();
            if let Some(kink) = $kink {
                away_from(net.value("fc").unwrap(), kink, 1e-3, "the pre-activation");
            }
            gradcheck(&mut net, &[&x]);
        }
    };
}

activation_net!(Relu, relu, |fc| relu(fc), kink: Some(0.0));
activation_net!(Sigmoid, sigmoid, |fc| sigmoid(fc), kink: None);
activation_net!(Tanh, tanh, |fc| tanh(fc), kink: None);
activation_net!(LeakyRelu, leaky_relu, |fc| leaky_relu(fc, slope = 0.2), kink: Some(0.0));
activation_net!(Gelu, gelu, |fc| gelu(fc), kink: None);
activation_net!(GeluTanh, gelu_tanh, |fc| gelu(fc, approximate = "tanh"), kink: None);
activation_net!(Silu, silu, |fc| silu(fc), kink: None);
activation_net!(Softplus, softplus, |fc| softplus(fc), kink: None);
activation_net!(Elu, elu, |fc| elu(fc, alpha = 0.7), kink: Some(0.0));
activation_net!(Exp, exp, |fc| exp(fc), kink: None);
activation_net!(Ln, ln, |fc| ln(fc * fc + 0.5), kink: None);
activation_net!(Sqrt, sqrt, |fc| sqrt(exp(fc) + 0.1), kink: None);
activation_net!(Abs, abs, |fc| abs(fc), kink: Some(0.0));
activation_net!(PowInt, pow_int, |fc| pow(fc, 3), kink: None);
activation_net!(PowFrac, pow_frac, |fc| pow(sigmoid(fc) + 0.5, 2.5), kink: None);
activation_net!(Neg, neg, |fc| -fc * 2.0 - 1.0, kink: None);
activation_net!(Swish, swish_formula, |fc| fc * sigmoid(fc), kink: None);
activation_net!(Div, div, |fc| 1.0 / (fc * fc + 1.0) - fc / 3.0, kink: None);

bp::network! {
    /// Binary arithmetic with broadcasting: equal shapes, a `[]` node, literals, params of
    /// the node's shape and of shape [].
    #[dtype(f64)]
    struct Arithmetic {
        input x: [4] grad;
        input s: [] grad;
        param w: [5] = normal(0.5);
        param k: [] = 0.7;
        let a = linear(x, 5);
        let b = linear(x, 5);
        let y = a * b - a / (b * b + 1.0) + s * w - k * a + 2.0;
        let m = min(a, b) + max(a, s);
        let out = linear(y + m, 2);
        output out;
    }
}

#[test]
fn arithmetic_and_broadcasting() {
    let mut net = Arithmetic::new(3);
    let x = random(&[4, 4], -1.0, 1.0, 5);
    let s = random(&[4], -1.0, 1.0, 6);
    net.forward(&x, &s).unwrap();
    let (a, b) = (
        net.value("a").unwrap().clone(),
        net.value("b").unwrap().clone(),
    );
    let gap: bp::Tensor<f64> = bp::Tensor::from_vec(
        a.shape(),
        a.iter().zip(b.iter()).map(|(p, q)| p - q).collect(),
    )
    .unwrap();
    away_from(&gap, 0.0, 1e-3, "a − b (min's tie)");
    gradcheck(&mut net, &[&x, &s]);
}

bp::network! {
    /// Reductions and the softmax family.
    #[dtype(f64)]
    struct Reductions {
        input x: [6] grad;
        let fc = linear(x, 4);
        let p = softmax(fc);
        let lp = log_softmax(linear(x, 3));
        let total = sum(p * fc) + mean(lp) * 0.5;
        output total;
    }
}

#[test]
fn sum_mean_softmax_log_softmax() {
    let mut net = Reductions::new(1);
    let x = random(&[3, 6], -1.0, 1.0, 2);
    gradcheck(&mut net, &[&x]);
}

bp::network! {
    /// concat along both dims and flatten, on a [2, 3] input.
    #[dtype(f64)]
    struct Structure {
        input x: [2, 3] grad;
        let a = linear(x, 4);
        let c0 = concat(x, a, dim = 1);
        let c1 = concat(c0, tanh(c0), dim = 0);
        let f = flatten(c1);
        let out = linear(f, 3);
        output out;
    }
}

#[test]
fn concat_and_flatten() {
    let mut net = Structure::new(4);
    let x = random(&[3, 2, 3], -1.0, 1.0, 8);
    net.forward(&x).unwrap();
    assert_eq!(net.value("c1").unwrap().shape(), &[3, 4, 7]);
    gradcheck(&mut net, &[&x]);
}

bp::network! {
    /// One node (`h`) feeds three successors; its residual is the sum of three
    /// contributions. `o1` is an output that also feeds `o2`.
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
fn fan_out_to_three_successors() {
    let mut net = FanOut::new(9);
    let x = random(&[3, 5], -1.0, 1.0, 10);
    gradcheck(&mut net, &[&x]);
}

bp::network! {
    /// A loss written inside the network: mean squared error against a target input.
    #[dtype(f64)]
    struct InNetworkLoss {
        input x: [3];
        input target: [2];
        let hidden = relu(linear(x, 8));
        let fc = linear(hidden, 2);
        let loss = mean(pow(fc - target, 2));
        output loss;
    }
}

#[test]
fn loss_inside_the_network() {
    let mut net = InNetworkLoss::new(2);
    let x = random(&[5, 3], -1.0, 1.0, 3);
    let t = random(&[5, 2], -1.0, 1.0, 4);
    gradcheck(&mut net, &[&x, &t]);
    assert!(
        net.input_grad("x").is_none(),
        "x has no `grad`, so no residual is computed"
    );
}

bp::network! {
    /// A formula nested deeper than one fused node holds (four functions): the macro
    /// splits it into anonymous nodes `y_1`, … (see `lowering::bounded`), and the chain
    /// rule across the cut must give the same gradients.
    #[dtype(f64)]
    struct Deep {
        input x: [5] grad;
        input a: [5] grad;
        param w: [5] = 0.3;
        let y = elu(tanh(elu(sigmoid(elu(x * a + w)) * 2.0 - 1.0)) + abs(x)) * max(a, x) + pow(sigmoid(tanh(exp(ln(x + 2.0)))), 2.0);
        output y;
    }
}

#[test]
fn a_formula_split_into_nodes() {
    let mut net = Deep::new(0);
    // x > 0 > a: away from the kinks of abs (0) and max (a = x).
    let x = random(&[3, 5], 0.2, 1.0, 11);
    let a = random(&[3, 5], -1.0, -0.2, 12);
    // That the formula is cut in two places is checked in bp-macros/src/robustness.rs.
    gradcheck(&mut net, &[&x, &a]);
}
