//! MNIST: a multilayer perceptron 784 → 128 relu → 10 learns to read handwritten digits
//! from 8,000 real MNIST images and is tested on 2,000 others.
//!
//! ```text
//! cargo run --release --example mnist                  # seed 0, 20 epochs
//! cargo run --release --example mnist -- --seed 1 --epochs 5
//! ```
//!
//! The data ships with the repository (`data/mnist-10k-*.gz`, 10,000 MNIST digits; see
//! `data/README.md`); `bp::data::mnist` reads it as `x` `[10000, 784]` with pixels
//! scaled to [0, 1] and labels 0..9. The first 8,000 train, the last 2,000 test.
//!
//! `bp::train::fit_classifier` runs the training: for each epoch it shuffles the
//! training set into mini-batches of 32 and, for each, runs `forward`, the softmax
//! cross-entropy loss, `backward` and one step of SGD with momentum. In a terminal a
//! progress bar shows the steps; piped to a file the output holds only the lines below.
//! It prints the mean loss of each epoch and last `test accuracy: NN.NN%`.

mod common;

use bp::data;
use bp::optim::Sgd;
use bp::train::{self, FitConfig};
use std::process::ExitCode;

bp::network! {
    /// A multilayer perceptron for MNIST: 784 pixels → 128 relu units → 10 logits.
    pub struct Mlp {
        input x: [784];
        let fc1 = linear(x, 128);   // fc1.weight [128, 784], fc1.bias [128]
        let h = relu(fc1);
        let fc2 = linear(h, 10);    // fc2.weight [10, 128], fc2.bias [10]
        output fc2;
    }
}

/// Trains on the first 8,000 images and returns the accuracy on the last 2,000.
pub fn run(seed: u64, epochs: usize) -> Result<f64, bp::Error> {
    let all = data::mnist::<f32>(
        common::data_file("mnist-10k-images.idx3-ubyte.gz"),
        common::data_file("mnist-10k-labels.idx1-ubyte.gz"),
    )?;
    let (train_set, test_set) = all.split_at(8_000)?;
    println!(
        "MNIST: {} training and {} test images of {} pixels",
        train_set.len(),
        test_set.len(),
        train_set.sample_len()
    );

    let mut net = Mlp::new(seed); // PyTorch's default initialization, seeded
    let mut opt = Sgd::new(0.05).momentum(0.9);
    let cfg = FitConfig {
        epochs,
        batch_size: 32,
        seed, // the order of the mini-batches
        progress: true,
    };
    let report = train::fit_classifier(&mut net, &mut opt, &train_set, &cfg)?;
    println!("{} steps in {:.1} s", report.steps, report.seconds);
    // Evaluation mode and batches of 500; `predict` would do as well, with `&self` only.
    train::evaluate_accuracy(&mut net, &test_set, 500)
}

fn main() -> ExitCode {
    let args = common::parse_args("mnist", 20);
    match run(args.seed, args.epochs) {
        Ok(accuracy) => {
            common::print_accuracy(accuracy);
            ExitCode::SUCCESS
        }
        Err(e) => common::fail(e),
    }
}
