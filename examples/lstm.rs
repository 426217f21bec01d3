//! MNIST with a recurrent network: an LSTM reads each handwritten digit one row of
//! pixels at a time, top to bottom, and names the digit after the last row. It learns from
//! 8,000 real MNIST images and is tested on 2,000 others.
//!
//! ```text
//! cargo run --release --example lstm                   # seed 0, 10 epochs
//! cargo run --release --example lstm -- --seed 1 --epochs 3
//! ```
//!
//! The data ships with the repository (`data/mnist-10k-*.gz`, see `data/README.md`).
//! `bp::data::mnist` reads it as `x` `[10000, 784]`, pixels in [0, 1]; a recurrent layer
//! wants sequences `[T, F]`, so `reshape_samples(&[28, 28])` makes every sample a
//! sequence of T = 28 steps (the rows) of F = 28 features (the pixels of a row). The
//! first 8,000 train, the last 2,000 test.
//!
//! The network, with the shape of one sample at each step:
//!
//! ```text
//! x     [28, 28]   28 rows of 28 pixels
//! lstm  [28, 64]   the hidden state after each row   lstm.weight_ih_l0 [256, 28],
//!                                                    lstm.weight_hh_l0 [256, 64],
//!                                                    lstm.bias_ih_l0 [256],
//!                                                    lstm.bias_hh_l0 [256]
//! h     [64]       the state after the last row (`last`)
//! fc    [10]       linear: the logits                fc.weight [10, 64], fc.bias [10]
//! ```
//!
//! The LSTM follows PyTorch's `nn.LSTM` (gates i, f, g, o stacked in the 256 = 4 · 64
//! rows of its weights), starting from a zero state. `network!` emits the body of one
//! time step once, inside a loop over the 28 rows, and the backward pass as the same
//! loop run backwards (backpropagation through time).
//!
//! `bp::train::fit_classifier` runs the training: each epoch shuffles the training set
//! into mini-batches of 32 and, for each, runs `forward`, the softmax cross-entropy loss,
//! `backward` and one step of Adam. It prints the mean loss of each epoch (in a terminal
//! above a progress bar), and the program ends with `test accuracy: NN.NN%`. The
//! hyperparameters are the same for every seed; 10 epochs take about 20 s on two cores
//! and reach about 96% (see `examples/TIMES.md`).

mod common;

use bp::data::{self, Dataset};
use bp::optim::Adam;
use bp::train::{self, FitConfig};
use std::process::ExitCode;

bp::network! {
    /// An LSTM of 64 units over the 28 rows of a digit; the last hidden state goes through
    /// a linear layer to the 10 logits.
    pub struct RowLstm {
        input x: [28, 28];                // 28 time steps of 28 features
        let lstm = lstm(x, hidden = 64);  // [28, 64]
        let h = last(lstm);               // [64]
        let fc = linear(h, 10);           // [10], the logits
        output fc;
    }
}

/// Passes over the training set when `--epochs` is not given.
const EPOCHS: usize = 10;

/// The MNIST-10k images as sequences of 28 rows of 28 pixels: the first 8,000 to train,
/// the last 2,000 to test.
fn mnist_rows() -> Result<(Dataset<f32>, Dataset<f32>), bp::Error> {
    let mut all = data::mnist::<f32>(
        common::data_file("mnist-10k-images.idx3-ubyte.gz"),
        common::data_file("mnist-10k-labels.idx1-ubyte.gz"),
    )?;
    all.reshape_samples(&[28, 28])?;
    all.split_at(8_000)
}

/// Trains on the first 8,000 images and returns the accuracy on the last 2,000.
pub fn run(seed: u64, epochs: usize) -> Result<f64, bp::Error> {
    let (train_set, test_set) = mnist_rows()?;
    println!(
        "MNIST: {} training and {} test images as sequences of shape {:?}",
        train_set.len(),
        test_set.len(),
        train_set.sample_shape()
    );

    let mut net = RowLstm::new(seed); // PyTorch's default initialization, seeded
    let mut opt = Adam::new(0.002);
    let cfg = FitConfig {
        epochs,
        batch_size: 32,
        seed, // the order of the mini-batches
        progress: true,
    };
    // Prints the loss of each epoch (under a progress bar when stdout is a terminal).
    let report = train::fit_classifier(&mut net, &mut opt, &train_set, &cfg)?;
    println!("{} steps in {:.1} s", report.steps, report.seconds);
    // Batches of 500 (the evaluation mode that `evaluate_accuracy` sets changes nothing
    // here: the network has no dropout or batch norm).
    train::evaluate_accuracy(&mut net, &test_set, 500)
}

fn main() -> ExitCode {
    let args = common::parse_args("lstm", EPOCHS);
    match run(args.seed, args.epochs) {
        Ok(accuracy) => {
            common::print_accuracy(accuracy);
            ExitCode::SUCCESS
        }
        Err(e) => common::fail(e),
    }
}
