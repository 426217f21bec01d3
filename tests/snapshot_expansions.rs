//! The snapshot expansions (`bp-macros/tests/snapshots/*.rs`) compiled as ordinary
//! modules. Clippy skips most lints inside macro expansions; here the generated code is
//! plain source, so `cargo clippy --all-targets -- -D warnings` lints it as it would the
//! user's own code, and this test runs it.

// A test binary uses only part of each network's API; in a user's crate the rest is
// public API, not dead code.
#[allow(dead_code)]
#[rustfmt::skip] // the snapshot as the macro writes it (prettyplease)
#[path = "../bp-macros/tests/snapshots/fanout.rs"]
mod fanout;
#[allow(dead_code)]
#[rustfmt::skip] // the snapshot as the macro writes it (prettyplease)
#[path = "../bp-macros/tests/snapshots/layers.rs"]
mod layers;
#[allow(dead_code)]
#[rustfmt::skip] // the snapshot as the macro writes it (prettyplease)
#[path = "../bp-macros/tests/snapshots/xor.rs"]
mod xor;

use bp::{Network, Tensor};

/// A forward and backward pass on a batch of `batch` with every input 0.5.
fn step<N: Network>(net: &mut N, batch: usize) {
    let half = <N::Scalar as bp::Float>::from_f64(0.5);
    let inputs: Vec<Tensor<N::Scalar>> = N::INPUTS
        .iter()
        .map(|(_, shape)| {
            let mut full = vec![batch];
            full.extend_from_slice(shape);
            Tensor::full(&full, half)
        })
        .collect();
    let refs: Vec<&Tensor<N::Scalar>> = inputs.iter().collect();
    net.forward_dyn(&refs).expect("forward");
    let outs: Vec<Tensor<N::Scalar>> = (0..N::OUTPUTS.len())
        .map(|i| net.output(i).expect("output").clone())
        .collect();
    let d: Vec<&Tensor<N::Scalar>> = outs.iter().collect();
    net.backward_dyn(&d).expect("backward");
    let first = net.param_names()[0];
    assert!(net.grad(first).is_some(), "no gradient of {first}");
}

/// Each network runs a training step, so the linted code is the code that works.
#[test]
fn the_expanded_networks_run() {
    step(&mut xor::Xor::new(0), 4);
    step(&mut fanout::FanOut::new(1), 3);
    step(&mut layers::Layers::new(2), 2);
}
