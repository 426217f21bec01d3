//! The derivation's exercises — convolution, pooling, normalization, dropout, recurrent
//! layers — inside networks built with `network!`, gradient-checked in f64 against central
//! finite differences on every parameter and every `grad` input.

mod common;
use bp::Network;
use common::{away_from, gradcheck, random};

bp::network! {
    /// Stride 2, padding 1, H ≠ W, C > 1.
    #[dtype(f64)]
    struct Conv {
        input x: [2, 7, 6] grad;
        let c = conv2d(x, 3, kernel = 3, stride = 2, padding = 1);
        let f = flatten(tanh(c));
        let out = linear(f, 2);
        output out;
    }
}

#[test]
fn conv2d_stride_padding() {
    let mut net = Conv::new(1);
    let x = random(&[3, 2, 7, 6], -1.0, 1.0, 2);
    net.forward(&x).unwrap();
    assert_eq!(net.value("c").unwrap().shape(), &[3, 3, 4, 3]);
    gradcheck(&mut net, &[&x]);
}

bp::network! {
    /// conv → batch_norm → relu → conv, added back to its input. The first conv has no
    /// bias, as before every batch norm: the norm would cancel it (its gradient is 0).
    #[dtype(f64)]
    struct Residual {
        input x: [2, 5, 4] grad;
        let c1 = conv2d(x, 2, kernel = 3, padding = 1, bias = false);
        let bn = batch_norm(c1);
        let r = relu(bn);
        let c2 = conv2d(r, 2, kernel = 3, padding = 1, bias = false);
        let y = c2 + x;
        let out = linear(flatten(y), 3);
        output out;
    }
}

#[test]
fn residual_block_with_batch_norm() {
    let mut net = Residual::new(2);
    let x = random(&[4, 2, 5, 4], -1.0, 1.0, 3);
    net.forward(&x).unwrap();
    away_from(net.value("bn").unwrap(), 0.0, 1e-3, "bn (relu's kink)");
    gradcheck(&mut net, &[&x]);
    // Evaluation mode normalizes with the running statistics: a different function,
    // checked too.
    net.set_training(false);
    gradcheck(&mut net, &[&x]);
}

bp::network! {
    /// Overlapping max pooling (stride < kernel), average pooling, batch norm on [F].
    #[dtype(f64)]
    struct Pools {
        input x: [2, 6, 5] grad;
        let m = max_pool2d(x, 3, stride = 2);
        let a = avg_pool2d(x, 2);
        let f = concat(flatten(m), flatten(a));
        let bn = batch_norm(f, momentum = 0.2);
        let out = linear(bn, 2);
        output out;
    }
}

#[test]
fn pools_and_batch_norm_on_features() {
    let mut net = Pools::new(3);
    let x = random(&[3, 2, 6, 5], -1.0, 1.0, 4);
    net.forward(&x).unwrap();
    assert_eq!(net.value("m").unwrap().shape(), &[3, 2, 2, 2]);
    assert_eq!(net.value("a").unwrap().shape(), &[3, 2, 3, 2]);
    gradcheck(&mut net, &[&x]);
}

bp::network! {
    #[dtype(f64)]
    struct Norms {
        input x: [3, 5] grad;
        let fc = linear(x, 4);
        let ln = layer_norm(fc);
        let d = dropout(tanh(ln), 0.3);
        let out = linear(flatten(d), 2);
        output out;
    }
}

#[test]
fn layer_norm_and_dropout_with_a_fixed_mask() {
    let mut net = Norms::new(4);
    let x = random(&[3, 3, 5], -1.0, 1.0, 5);
    gradcheck(&mut net, &[&x]);
    // The mask drops something and scales the rest by 1/(1 − p).
    net.reseed(0);
    net.forward(&x).unwrap();
    let (t, d) = (
        net.value("ln").unwrap().clone(),
        net.value("d").unwrap().clone(),
    );
    let dropped = d.iter().filter(|&&v| v == 0.0).count();
    assert!(dropped > 0 && dropped < d.len(), "{dropped} of {}", d.len());
    for (v, l) in d.iter().zip(t.iter()) {
        assert!(*v == 0.0 || (v - l.tanh() / 0.7).abs() < 1e-12);
    }
}

bp::network! {
    /// Two stacked LSTMs read by `last`.
    #[dtype(f64)]
    struct Lstm2 {
        input x: [4, 3] grad;
        let l1 = lstm(x, hidden = 5);
        let l2 = lstm(l1, hidden = 4);
        let out = linear(last(l2), 2);
        output out;
    }
}

#[test]
fn two_stacked_lstms() {
    let mut net = Lstm2::new(5);
    let x = random(&[2, 4, 3], -1.0, 1.0, 6);
    gradcheck(&mut net, &[&x]);
}

bp::network! {
    /// An RNN and a GRU side by side, joined along the features.
    #[dtype(f64)]
    struct RnnGru {
        input x: [5, 3] grad;
        let r = rnn(x, hidden = 4);
        let g = gru(x, hidden = 3);
        let both = concat(r, g, dim = 1);
        let out = linear(flatten(both), 2);
        output out;
    }
}

#[test]
fn rnn_and_gru() {
    let mut net = RnnGru::new(6);
    let x = random(&[3, 5, 3], -1.0, 1.0, 7);
    gradcheck(&mut net, &[&x]);
}
