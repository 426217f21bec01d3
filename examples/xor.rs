//! XOR, the smallest problem a straight line cannot solve: a network with one hidden
//! layer learns it from its four points.
//!
//! ```text
//! cargo run --release --example xor                    # seed 0
//! cargo run --release --example xor -- --seed 3 --epochs 800
//! ```
//!
//! The network maps the two inputs through eight `tanh` units to one logit; the loss is
//! binary cross-entropy on the logit, and Adam updates the parameters after each pass
//! over the four points (full batch, so an epoch is one step). It prints the loss as it
//! goes, the probability the trained network gives each point, and last
//! `test accuracy: 100.00%`, the share of the four points on the right side of 1/2.
//!
//! `cargo expand --example xor` shows the code `network!` writes for `Xor`: the forward
//! pass and the backward pass, one statement per step of the chain rule.

mod common;

use bp::loss::binary_cross_entropy_with_logits;
use bp::optim::{Adam, Optimizer};
use bp::{Network, Tensor};
use std::process::ExitCode;

bp::network! {
    /// The XOR network: 2 inputs → 8 tanh units → 1 logit.
    pub struct Xor {
        input x: [2];
        let fc1 = linear(x, 8);
        let h = tanh(fc1);
        let fc2 = linear(h, 1);
        output fc2;
    }
}

/// The four points and their classes, `x` as `[4, 2]` and the targets as `[4, 1]`.
fn xor_data() -> Result<(Tensor, Tensor), bp::Error> {
    let x = Tensor::from_vec(&[4, 2], vec![0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0])?;
    let y = Tensor::from_vec(&[4, 1], vec![0.0, 1.0, 1.0, 0.0])?;
    Ok((x, y))
}

/// Trains a fresh network for `epochs` full-batch steps, printing the loss now and then.
fn train(seed: u64, epochs: usize, x: &Tensor, y: &Tensor) -> Result<Xor, bp::Error> {
    let mut net = Xor::new(seed);
    let mut opt = Adam::new(0.05);
    let mut d_logits = Tensor::default(); // ∂J/∂logits, written by the loss
    for epoch in 1..=epochs {
        let logits = net.forward(x)?;
        let loss = binary_cross_entropy_with_logits(logits, y, &mut d_logits)?;
        net.backward(&d_logits)?; // every parameter's gradient, by the chain rule
        opt.step(&mut net)?;
        if epoch % 100 == 0 || epoch == 1 {
            println!("epoch {epoch:>4}: loss {loss:.6}");
        }
    }
    Ok(net)
}

/// Trains, prints the learned probabilities, and returns the accuracy on the four points.
pub fn run(seed: u64, epochs: usize) -> Result<f64, bp::Error> {
    let (x, y) = xor_data()?;
    let net = train(seed, epochs, &x, &y)?;
    // `predict` needs only `&self`: inference without touching the training buffers.
    let logits = net.predict(&x)?;
    let mut correct = 0;
    println!("learned outputs, σ(logit):");
    for ((point, &logit), &target) in x.chunks_exact(2).zip(logits.iter()).zip(y.iter()) {
        let p = bp::loss::sigmoid(logit);
        println!("  {} xor {} = {target}   p = {p:.4}", point[0], point[1]);
        correct += usize::from((p > 0.5) == (target > 0.5));
    }
    println!("parameters: {:?}", net.param_names());
    Ok(correct as f64 / 4.0)
}

fn main() -> ExitCode {
    let args = common::parse_args("xor", 500);
    match run(args.seed, args.epochs) {
        Ok(accuracy) => {
            common::print_accuracy(accuracy);
            ExitCode::SUCCESS
        }
        Err(e) => common::fail(e),
    }
}
