//! The elementwise functions sin, cos, erf, square, rsqrt, clamp and gelu (exact and
//! tanh forms) inside networks built with `network!`, gradient-checked in f64 against
//! five-point central differences (`common::gradcheck`) on every parameter and on the
//! `grad` input: layers with in ≠ out, batch 3, pre-activations spread over several units
//! and kept away from clamp's bounds.

mod common;
use bp::Network;
use common::{away_from, gradcheck, random};

/// One network per function F: x → linear(4→5) → y = F(fc), with also d = F(x) on the
/// input itself, both into linear(9→3), so that F is checked on a layer's
/// pre-activations and on a `grad` input. `kinks` are the points that every
/// pre-activation and input must stay 1e-3 away from (clamp's bounds).
macro_rules! net {
    ($name:ident, $test:ident, $y:expr, $d:expr, kinks: [$($kink:expr),*]) => {
        bp::network! {
            #[dtype(f64)]
            struct $name {
                input x: [4] grad;
                let fc = linear(x, 5);
                let y = $y;
                let d = $d;
                let out = linear(concat(y, d, dim = 0), 3);
                output out;
            }
        }

        #[test]
        fn $test() {
            let mut net = $name::new(7);
            // nn.Linear's initialization keeps |fc| under ~1.5; widen the first layer so
            // that F is seen over several units.
            for w in net.param_mut("fc.weight").unwrap().iter_mut() {
                *w *= 3.0;
            }
            let x = random(&[3, 4], -2.5, 2.5, 11);
            net.forward(&x).unwrap();
            let fc = net.value("fc").unwrap().clone();
            for kink in [$($kink),*] {
                let k: f64 = kink;
                away_from(&fc, k, 1e-3, "the pre-activation");
                away_from(&x, k, 1e-3, "the input");
            }
            gradcheck(&mut net, &[&x]);
        }
    };
}

net!(Sin, sin, sin(fc), sin(x), kinks: []);
net!(Cos, cos, cos(fc), cos(x * 2.0), kinks: []);
net!(Erf, erf, erf(fc), erf(x), kinks: []);
net!(Square, square, square(fc), square(x) - x, kinks: []);
net!(Rsqrt, rsqrt, rsqrt(exp(fc)), rsqrt(square(x) + 0.5), kinks: []);
net!(GeluExact, gelu_exact, gelu(fc), gelu(x, approximate = "none"), kinks: []);
net!(GeluTanh, gelu_tanh, gelu(fc, approximate = "tanh"), gelu(x, "tanh"), kinks: []);
net!(
    Clamp,
    clamp_both_bounds,
    clamp(fc, -0.5, 1.0),
    clamp(x, min = -0.5, max = 1.0),
    kinks: [-0.5, 1.0]
);
net!(ClampMin, clamp_min, clamp(fc, min = -0.5), clamp(x, min = -0.5), kinks: [-0.5]);
net!(ClampMax, clamp_max, clamp(fc, max = 1.0), clamp(x, max = 1.0), kinks: [1.0]);

bp::network! {
    /// The functions composed in one formula, fused by the macro into one node: the
    /// chain rule through several new primitives at once.
    #[dtype(f64)]
    struct Composed {
        input x: [4] grad;
        let fc = linear(x, 5);
        let y = sin(fc) * erf(fc) + cos(square(fc) * 0.5) - rsqrt(exp(fc) + 1.0)
            + gelu(clamp(fc, min = -2.0) * 0.7);
        let out = linear(y, 3);
        output out;
    }
}

#[test]
fn composed() {
    let mut net = Composed::new(5);
    for w in net.param_mut("fc.weight").unwrap().iter_mut() {
        *w *= 3.0;
    }
    let x = random(&[3, 4], -2.5, 2.5, 13);
    net.forward(&x).unwrap();
    away_from(net.value("fc").unwrap(), -2.0, 1e-3, "the pre-activation");
    gradcheck(&mut net, &[&x]);
}

/// The checks see the functions' slopes, not a flat region: clamp's networks have
/// pre-activations on both sides of each bound, so that both branches are checked.
#[test]
fn clamp_networks_see_both_sides_of_each_bound() {
    let mut net = Clamp::new(7);
    for w in net.param_mut("fc.weight").unwrap().iter_mut() {
        *w *= 3.0;
    }
    let x = random(&[3, 4], -2.5, 2.5, 11);
    net.forward(&x).unwrap();
    for t in [net.value("fc").unwrap(), &x] {
        let below = t.iter().filter(|&&v| v < -0.5).count();
        let inside = t.iter().filter(|&&v| v > -0.5 && v < 1.0).count();
        let above = t.iter().filter(|&&v| v > 1.0).count();
        assert!(
            below > 0 && inside > 0 && above > 0,
            "{below} below, {inside} inside, {above} above: pick another seed"
        );
    }
}
