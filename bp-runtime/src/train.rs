//! A training loop for the common case, a classifier with one input and one output of
//! logits `[B, classes]`, with a progress bar.
//!
//! ```no_run
//! # use bp_runtime::{data, optim::Optimizer, train::{self, FitConfig}, Network};
//! # fn demo<N: Network<Scalar = f32>, O: Optimizer<f32>>(net: &mut N, opt: &mut O)
//! #     -> Result<(), bp_runtime::Error> {
//! let all = data::digits::<f32>("data/digits.csv.gz")?;
//! let (train_set, test_set) = all.split_at(1_500)?;
//! let cfg = FitConfig { epochs: 10, batch_size: 32, seed: 0, progress: true };
//! let report = train::fit_classifier(net, opt, &train_set, &cfg)?;
//! println!("losses {:?}", report.epoch_losses);
//! println!("test accuracy {:.3}", train::evaluate_accuracy(net, &test_set, 256)?);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

use crate::data::{Batcher, Dataset};
use crate::loss::{accuracy, softmax_cross_entropy};
use crate::optim::Optimizer;
use crate::{Error, Float, Network, Tensor};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Instant;

/// The settings of [`fit_classifier`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FitConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Samples per step (the last batch of an epoch may be smaller).
    pub batch_size: usize,
    /// The seed of the shuffled batch order.
    pub seed: u64,
    /// Whether to show a progress bar (it is hidden anyway when stdout is not a terminal).
    pub progress: bool,
}

impl Default for FitConfig {
    /// 10 epochs of batches of 32, seed 0, progress bar on.
    fn default() -> Self {
        FitConfig {
            epochs: 10,
            batch_size: 32,
            seed: 0,
            progress: true,
        }
    }
}

/// What [`fit_classifier`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct FitReport {
    /// The mean training loss of each epoch (over its samples, weighting each batch by its
    /// size), in order.
    pub epoch_losses: Vec<f64>,
    /// Optimizer steps taken.
    pub steps: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// The progress bar: on stdout when asked and stdout is a terminal, hidden otherwise.
fn progress_bar(show: bool, steps: usize) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(steps as u64), ProgressDrawTarget::hidden());
    if show && std::io::stdout().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stdout());
    }
    if let Ok(style) =
        ProgressStyle::with_template("{bar:30} {pos}/{len} [{elapsed_precise}] {msg}")
    {
        bar.set_style(style);
    }
    bar
}

/// Checks that `net` is a single-input classifier fitting samples of `data`.
fn check_classifier<N: Network>(net_name: &str, data: &Dataset<N::Scalar>) -> Result<(), Error> {
    if N::INPUTS.len() != 1 || N::OUTPUTS.len() != 1 || N::OUTPUTS[0].1.len() != 1 {
        return Err(Error::invalid(format!(
            "{net_name}: the network must have one input and one output of shape [classes], \
             but has {} input(s) and {} output(s)",
            N::INPUTS.len(),
            N::OUTPUTS.len()
        )));
    }
    let (name, shape) = N::INPUTS[0];
    if data.sample_shape() != shape {
        let mut expected = vec![data.len()];
        expected.extend_from_slice(shape);
        return Err(Error::shape(
            format!("{net_name}: the data set for input `{name}`"),
            &expected,
            data.x.shape(),
        ));
    }
    if data.is_empty() {
        return Err(Error::invalid(format!(
            "{net_name}: the data set is empty (shape {:?}); there is nothing to train on or measure",
            data.x.shape()
        )));
    }
    if let Some(at) = data.x.iter().position(|v| !v.to_f64().is_finite()) {
        let per_sample = data.x.len() / data.len();
        return Err(Error::invalid(format!(
            "{net_name}: sample {} of the data set holds {} at feature {}; inputs must be finite",
            at / per_sample,
            data.x[at].to_f64(),
            at % per_sample
        )));
    }
    let classes = N::OUTPUTS[0].1[0];
    if let Some(i) = data.y.iter().position(|&l| l >= classes) {
        return Err(Error::invalid(format!(
            "{net_name}: label {} of sample {i} is not below the {classes} classes of output `{}`",
            data.y[i],
            N::OUTPUTS[0].0
        )));
    }
    Ok(())
}

/// Trains a single-input classifier with softmax cross-entropy: for each epoch, for each
/// shuffled mini-batch, `forward_dyn`, [`softmax_cross_entropy`], then
/// [`Optimizer::backward_step`] (`backward_dyn` and `opt.step`; fused into one pass for
/// plain SGD). The per-epoch mean loss is shown in the progress bar's message and
/// returned. Once the batch tensors have grown, the step loop allocates nothing.
///
/// The network is put in training mode for the run and left in it.
///
/// Errors: a network that is not a one-input, one-output classifier; data whose samples do
/// not fit the input or whose labels are not below the number of classes; a batch size of
/// 0; hyperparameters [`Optimizer::check`] refuses; a loss that is not finite (the epoch and step are named); any error of the network.
pub fn fit_classifier<N, O>(
    net: &mut N,
    opt: &mut O,
    train: &Dataset<N::Scalar>,
    cfg: &FitConfig,
) -> Result<FitReport, Error>
where
    N: Network,
    O: Optimizer<N::Scalar>,
{
    check_classifier::<N>("fit_classifier", train)?;
    opt.check()?;
    let start = Instant::now();
    let mut batches = Batcher::new(train, cfg.batch_size, cfg.seed)?;
    let bar = progress_bar(cfg.progress, cfg.epochs * batches.batches_per_epoch());
    net.set_training(true);
    let mut ws = Workspace::default();
    let mut report = FitReport {
        epoch_losses: Vec::with_capacity(cfg.epochs),
        steps: 0,
        seconds: 0.0,
    };
    for epoch in 0..cfg.epochs {
        let (mut total, mut seen, mut step) = (0.0f64, 0usize, 0usize);
        while batches.next_batch(&mut ws.x, &mut ws.y) {
            let loss = ws.step(net, opt)?;
            if !loss.is_finite() {
                bar.abandon();
                return Err(Error::invalid(format!(
                    "fit_classifier: the loss is {loss} at epoch {} step {step}",
                    epoch + 1
                )));
            }
            total += loss * ws.y.len() as f64;
            seen += ws.y.len();
            step += 1;
            bar.inc(1);
        }
        let mean = total / seen.max(1) as f64;
        report.epoch_losses.push(mean);
        report.steps += step;
        bar.set_message(format!("epoch {}/{} loss {mean:.4}", epoch + 1, cfg.epochs));
        let line = format!("epoch {:>3}: loss {mean:.6}", epoch + 1);
        if !cfg.progress {
            // Quiet, as asked.
        } else if bar.is_hidden() {
            // Not a terminal (a pipe, a CI log): plain lines, one per epoch.
            println!("{line}");
        } else {
            bar.println(line);
        }
    }
    bar.finish();
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// The tensors one training step reuses.
struct Workspace<T: Float> {
    x: Tensor<T>,
    y: Vec<usize>,
    grad: Tensor<T>,
}

impl<T: Float> Default for Workspace<T> {
    fn default() -> Self {
        Workspace {
            x: Tensor::default(),
            y: Vec::new(),
            grad: Tensor::default(),
        }
    }
}

impl<T: Float> Workspace<T> {
    /// One step on the batch held in `x`, `y`; returns the batch's mean loss.
    fn step<N, O>(&mut self, net: &mut N, opt: &mut O) -> Result<f64, Error>
    where
        N: Network<Scalar = T>,
        O: Optimizer<T>,
    {
        net.forward_dyn(&[&self.x])?;
        let logits = net
            .output(0)
            .ok_or_else(|| Error::invalid("fit_classifier: the network has no output 0"))?;
        let loss = softmax_cross_entropy(logits, &self.y, &mut self.grad)?;
        opt.backward_step(net, &[&self.grad])?;
        Ok(loss.to_f64())
    }
}

/// The fraction of samples of `data` whose arg-max logit is their label, computed in
/// batches of `batch_size` in evaluation mode (`set_training(false)`); the previous mode
/// is restored afterwards, also on error.
///
/// Errors as [`fit_classifier`] for a network or data that do not fit, an empty data set,
/// a batch size of 0, or any error of the network.
pub fn evaluate_accuracy<N: Network>(
    net: &mut N,
    data: &Dataset<N::Scalar>,
    batch_size: usize,
) -> Result<f64, Error> {
    check_classifier::<N>("evaluate_accuracy", data)?;
    if data.is_empty() {
        return Err(Error::invalid(
            "evaluate_accuracy: the data set is empty, so the accuracy is undefined",
        ));
    }
    let mut batches = Batcher::sequential(data, batch_size)?;
    let was_training = net.is_training();
    net.set_training(false);
    let mut count = || -> Result<usize, Error> {
        let (mut x, mut y) = (Tensor::default(), Vec::new());
        let mut correct = 0usize;
        while batches.next_batch(&mut x, &mut y) {
            net.forward_dyn(&[&x])?;
            let logits = net
                .output(0)
                .ok_or_else(|| Error::invalid("evaluate_accuracy: the network has no output 0"))?;
            correct += (accuracy(logits, &y)? * y.len() as f64).round() as usize;
        }
        Ok(correct)
    };
    let result = count();
    net.set_training(was_training);
    Ok(result? as f64 / data.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::Sgd;
    use crate::{ParamVisitor, Port};

    /// `logits = W·x + b` for 2 features and 2 classes, written by hand.
    struct Linear {
        w: Tensor<f64>,
        b: Tensor<f64>,
        dw: Tensor<f64>,
        db: Tensor<f64>,
        x: Tensor<f64>,
        out: Tensor<f64>,
        training: bool,
        forwards_in_eval: usize,
    }

    impl Linear {
        fn new() -> Linear {
            Linear {
                w: Tensor::from_vec(&[2, 2], vec![0.1, -0.2, 0.05, 0.3]).unwrap(),
                b: Tensor::zeros(&[2]),
                dw: Tensor::zeros(&[2, 2]),
                db: Tensor::zeros(&[2]),
                x: Tensor::default(),
                out: Tensor::default(),
                training: true,
                forwards_in_eval: 0,
            }
        }
    }

    impl Network for Linear {
        type Scalar = f64;
        const INPUTS: &'static [Port] = &[("x", &[2])];
        const OUTPUTS: &'static [Port] = &[("logits", &[2])];
        const STRUCTURE_HASH: u64 = 1;

        fn forward_dyn(&mut self, inputs: &[&Tensor<f64>]) -> Result<(), Error> {
            let batch = crate::check_input("x", inputs[0], &[2])?;
            self.forwards_in_eval += usize::from(!self.training);
            self.x.assign(inputs[0]);
            self.out.resize(&[batch, 2]);
            for (row, x) in self.out.chunks_exact_mut(2).zip(self.x.chunks_exact(2)) {
                for (k, o) in row.iter_mut().enumerate() {
                    *o = self.b[k] + self.w[2 * k] * x[0] + self.w[2 * k + 1] * x[1];
                }
            }
            Ok(())
        }
        fn output(&self, i: usize) -> Option<&Tensor<f64>> {
            (i == 0).then_some(&self.out)
        }
        fn backward_dyn(&mut self, d: &[&Tensor<f64>]) -> Result<(), Error> {
            self.dw.fill(0.0);
            self.db.fill(0.0);
            self.backward_dyn_accumulate(d)
        }
        fn backward_dyn_accumulate(&mut self, d: &[&Tensor<f64>]) -> Result<(), Error> {
            for (g, x) in d[0].chunks_exact(2).zip(self.x.chunks_exact(2)) {
                for (k, &gk) in g.iter().enumerate() {
                    self.db[k] += gk;
                    self.dw[2 * k] += gk * x[0];
                    self.dw[2 * k + 1] += gk * x[1];
                }
            }
            Ok(())
        }
        fn param_names(&self) -> Vec<&'static str> {
            vec!["fc.weight", "fc.bias"]
        }
        fn param(&self, name: &str) -> Option<&Tensor<f64>> {
            match name {
                "fc.weight" => Some(&self.w),
                "fc.bias" => Some(&self.b),
                _ => None,
            }
        }
        fn param_mut(&mut self, name: &str) -> Option<&mut Tensor<f64>> {
            match name {
                "fc.weight" => Some(&mut self.w),
                "fc.bias" => Some(&mut self.b),
                _ => None,
            }
        }
        fn grad(&self, name: &str) -> Option<&Tensor<f64>> {
            match name {
                "fc.weight" => Some(&self.dw),
                "fc.bias" => Some(&self.db),
                _ => None,
            }
        }
        fn buffer_names(&self) -> Vec<&'static str> {
            Vec::new()
        }
        fn buffer(&self, _: &str) -> Option<&Tensor<f64>> {
            None
        }
        fn buffer_mut(&mut self, _: &str) -> Option<&mut Tensor<f64>> {
            None
        }
        fn residual(&self, _: &str) -> Option<&Tensor<f64>> {
            None
        }
        fn input_grad(&self, _: &str) -> Option<&Tensor<f64>> {
            None
        }
        fn visit_params(&mut self, f: &mut ParamVisitor<'_, f64>) {
            f("fc.weight", &mut self.w, &self.dw);
            f("fc.bias", &mut self.b, &self.db);
        }
        fn set_training(&mut self, training: bool) {
            self.training = training;
        }
        fn is_training(&self) -> bool {
            self.training
        }
    }

    /// Two separable blobs: class 1 when x0 > x1, with a margin.
    fn blobs(n: usize) -> Dataset<f64> {
        let mut rng = crate::rng::Rng::new(5);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..n {
            let (a, b) = (rng.uniform(-1.0, 1.0), rng.uniform(0.3, 1.0));
            let class = i % 2;
            let (x0, x1) = if class == 1 { (a + b, a) } else { (a, a + b) };
            x.extend([x0, x1]);
            y.push(class);
        }
        Dataset::new(Tensor::from_vec(&[n, 2], x).unwrap(), y).unwrap()
    }

    fn config(epochs: usize) -> FitConfig {
        FitConfig {
            epochs,
            batch_size: 16,
            seed: 3,
            progress: false,
        }
    }

    #[test]
    fn loss_decreases_and_accuracy_reaches_100_percent() {
        let data = blobs(200);
        let mut net = Linear::new();
        let mut opt = Sgd::<f64>::new(0.5);
        let report = fit_classifier(&mut net, &mut opt, &data, &config(20)).unwrap();
        assert_eq!(report.epoch_losses.len(), 20);
        assert_eq!(
            report.steps,
            20 * 13,
            "200 samples in batches of 16: 13 per epoch"
        );
        let l = &report.epoch_losses;
        assert!(l[19] < 0.5 * l[0], "{l:?}");
        assert!(l.windows(2).filter(|w| w[1] > w[0]).count() <= 2, "{l:?}");
        net.set_training(true);
        assert_eq!(evaluate_accuracy(&mut net, &data, 64).unwrap(), 1.0);
        assert!(net.is_training(), "the previous mode is restored");
        assert_eq!(net.forwards_in_eval, 4, "evaluation runs in eval mode");
    }

    #[test]
    fn warm_steps_reuse_the_batch_and_gradient_buffers() {
        let data = blobs(40);
        let (mut net, mut opt) = (Linear::new(), Sgd::<f64>::new(0.1));
        let mut batches = Batcher::new(&data, 16, 0).unwrap();
        let mut ws = Workspace::default();
        while batches.next_batch(&mut ws.x, &mut ws.y) {
            ws.step(&mut net, &mut opt).unwrap();
        }
        let ptrs = |ws: &Workspace<f64>| (ws.x.as_ptr(), ws.y.as_ptr(), ws.grad.as_ptr());
        let warm = ptrs(&ws);
        for _ in 0..3 {
            while batches.next_batch(&mut ws.x, &mut ws.y) {
                ws.step(&mut net, &mut opt).unwrap();
                assert_eq!(ptrs(&ws), warm);
            }
        }
    }

    #[test]
    fn same_seed_same_losses() {
        let data = blobs(50);
        let run = || {
            let mut net = Linear::new();
            fit_classifier(&mut net, &mut Sgd::<f64>::new(0.1), &data, &config(3)).unwrap()
        };
        assert_eq!(run().epoch_losses, run().epoch_losses);
    }

    #[test]
    fn data_that_does_not_fit_is_an_error() {
        let mut net = Linear::new();
        let mut opt = Sgd::<f64>::new(0.1);
        let wide = Dataset::new(Tensor::zeros(&[4, 3]), vec![0; 4]).unwrap();
        let e = fit_classifier(&mut net, &mut opt, &wide, &config(1)).unwrap_err();
        assert!(e.to_string().contains("input `x`"), "{e}");
        let bad_label = Dataset::new(Tensor::zeros(&[4, 2]), vec![0, 1, 2, 0]).unwrap();
        let e = evaluate_accuracy(&mut net, &bad_label, 2).unwrap_err();
        assert!(e.to_string().contains("label 2 of sample 2"), "{e}");
        let data = blobs(4);
        let mut cfg = config(1);
        cfg.batch_size = 0;
        assert!(fit_classifier(&mut net, &mut opt, &data, &cfg).is_err());
        let e = fit_classifier(&mut net, &mut Sgd::<f64>::new(-1.0), &data, &config(1));
        assert!(e.unwrap_err().to_string().contains("learning rate"));
        let empty = Dataset::new(Tensor::zeros(&[0, 2]), vec![]).unwrap();
        assert!(evaluate_accuracy(&mut net, &empty, 2).is_err());
        let e = fit_classifier(&mut net, &mut opt, &empty, &config(1)).unwrap_err();
        assert!(e.to_string().contains("data set is empty"), "{e}");
        let mut nan = blobs(4);
        nan.x[5] = f64::NAN;
        let e = fit_classifier(&mut net, &mut opt, &nan, &config(1)).unwrap_err();
        assert!(
            e.to_string()
                .contains("sample 2 of the data set holds NaN at feature 1"),
            "{e}"
        );
    }

    #[test]
    fn a_diverging_loss_is_an_error() {
        let data = blobs(64);
        let mut net = Linear::new();
        net.w.fill(f64::NAN);
        let e = fit_classifier(&mut net, &mut Sgd::<f64>::new(0.1), &data, &config(2));
        let e = e.unwrap_err().to_string();
        assert!(e.contains("the loss is NaN at epoch 1 step 0"), "{e}");
    }
}
