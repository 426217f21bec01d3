//! MNIST with a convolutional network: a small LeNet learns to read handwritten digits
//! from 8,000 real MNIST images, seen as 28 × 28 pictures, and is tested on 2,000 others.
//!
//! ```text
//! cargo run --release --example cnn                    # seed 0, 10 epochs
//! cargo run --release --example cnn -- --seed 1 --epochs 3
//! ```
//!
//! The data ships with the repository (`data/mnist-10k-*.gz`, see `data/README.md`).
//! `bp::data::mnist` reads it as `x` `[10000, 784]`, pixels in [0, 1]; a convolution
//! wants images, so `reshape_samples(&[1, 28, 28])` makes every sample one channel of
//! 28 rows of 28 pixels (the same numbers, a new shape). The first 8,000 train, the last
//! 2,000 test.
//!
//! The network, with the shape of one sample at each step:
//!
//! ```text
//! x      [1, 28, 28]   the image
//! conv1  [8, 24, 24]   8 filters 5 × 5           conv1.weight [8, 1, 5, 5]
//! bn1    [8, 24, 24]   batch norm per channel    bn1.weight [8], bn1.bias [8]
//! p1     [8, 12, 12]   relu, max pool 2 × 2
//! conv2  [16, 8, 8]    16 filters 5 × 5 × 8      conv2.weight [16, 8, 5, 5]
//! bn2    [16, 8, 8]    batch norm per channel    bn2.weight [16], bn2.bias [16]
//! p2     [16, 4, 4]    relu, max pool 2 × 2
//! fc1    [64]          flatten to [256], linear  fc1.weight [64, 256], fc1.bias [64]
//! fc2    [10]          relu, linear: the logits  fc2.weight [10, 64], fc2.bias [10]
//! ```
//!
//! The convolutions have no bias: the batch norm right after each subtracts the mean of
//! every channel, so a bias would cancel out (its gradient would be 0); the norm's own
//! `bias` takes its place. Batch norm normalizes with the statistics of the mini-batch
//! while training and keeps running averages of them (`bn1.running_mean`, …) for
//! evaluation, so the test runs in evaluation mode (`set_training(false)`, which
//! `evaluate_accuracy` does).
//!
//! `bp::train::fit_classifier` runs the training: each epoch shuffles the training set
//! into mini-batches of 32 and, for each, runs `forward`, the softmax cross-entropy loss,
//! `backward` and one step of SGD with momentum. It prints the mean loss of each epoch
//! (in a terminal above a progress bar), and the program ends with
//! `test accuracy: NN.NN%`. The hyperparameters are the same for every seed; 10 epochs
//! take 12–20 s on two cores and reach about 98% (see `examples/TIMES.md`).

mod common;

use bp::data::{self, Dataset};
use bp::optim::Sgd;
use bp::train::{self, FitConfig};
use std::process::ExitCode;

bp::network! {
    /// A LeNet-style network for 28 × 28 digits: two blocks of convolution, batch norm,
    /// relu and max pooling, then a hidden layer of 64 relu units and the 10 logits.
    pub struct LeNet {
        input x: [1, 28, 28];
        let conv1 = conv2d(x, 8, kernel = 5, bias = false);   // [8, 24, 24]
        let bn1 = batch_norm(conv1);
        let p1 = max_pool2d(relu(bn1), 2);                    // [8, 12, 12]
        let conv2 = conv2d(p1, 16, kernel = 5, bias = false); // [16, 8, 8]
        let bn2 = batch_norm(conv2);
        let p2 = max_pool2d(relu(bn2), 2);                    // [16, 4, 4]
        let fc1 = linear(flatten(p2), 64);                    // [64]
        let h = relu(fc1);
        let fc2 = linear(h, 10);                              // [10], the logits
        output fc2;
    }
}

/// Passes over the training set when `--epochs` is not given.
const EPOCHS: usize = 10;

/// The MNIST-10k images as `[1, 28, 28]` pictures: the first 8,000 to train, the last
/// 2,000 to test.
fn mnist_images() -> Result<(Dataset<f32>, Dataset<f32>), bp::Error> {
    let mut all = data::mnist::<f32>(
        common::data_file("mnist-10k-images.idx3-ubyte.gz"),
        common::data_file("mnist-10k-labels.idx1-ubyte.gz"),
    )?;
    all.reshape_samples(&[1, 28, 28])?;
    all.split_at(8_000)
}

/// Trains on the first 8,000 images and returns the accuracy on the last 2,000.
pub fn run(seed: u64, epochs: usize) -> Result<f64, bp::Error> {
    let (train_set, test_set) = mnist_images()?;
    println!(
        "MNIST: {} training and {} test images of shape {:?}",
        train_set.len(),
        test_set.len(),
        train_set.sample_shape()
    );

    let mut net = LeNet::new(seed); // PyTorch's default initialization, seeded
    let mut opt = Sgd::new(0.02).momentum(0.9);
    let cfg = FitConfig {
        epochs,
        batch_size: 32,
        seed, // the order of the mini-batches
        progress: true,
    };
    // Prints the loss of each epoch (under a progress bar when stdout is a terminal).
    let report = train::fit_classifier(&mut net, &mut opt, &train_set, &cfg)?;
    println!("{} steps in {:.1} s", report.steps, report.seconds);
    // In evaluation mode (batch norm uses its running statistics), batches of 500.
    train::evaluate_accuracy(&mut net, &test_set, 500)
}

fn main() -> ExitCode {
    let args = common::parse_args("cnn", EPOCHS);
    match run(args.seed, args.epochs) {
        Ok(accuracy) => {
            common::print_accuracy(accuracy);
            ExitCode::SUCCESS
        }
        Err(e) => common::fail(e),
    }
}
