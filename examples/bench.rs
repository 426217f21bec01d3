//! bench: one training step, timed as the peer benchmarks time it.
//!
//! ```text
//! cargo run --release --example bench -- --sizes 784,128,10 --batch 64 --threads 1
//! cargo run --release --example bench -- --sizes 2,8,1 --batch 32 --check 5 --init init.safetensors
//! cargo run --release --example bench -- --model lenet --batch 32 --threads 1
//! ```
//!
//! bp as one more peer of the scripts in the shared `bench/` directory (`mlp_numpy.py`,
//! `mlp_torch.py`, `mlp_jax.py`, candle for the MLP; `models_peer.py` for the layer
//! networks): the same work, the same options and one JSON line with the same fields.
//!
//! **The MLP** (the default, `--sizes`): `Linear → ReLU → … → Linear`, the loss
//! softmax cross-entropy (mean over the batch) when the last layer has ≥ 2 outputs and MSE
//! (mean over all elements) when it has one (`--loss auto|ce|mse`), the optimizer plain
//! SGD (`--lr`, default 0.01), f32, one fixed batch. One step is forward + loss +
//! backward + update, with no allocation once warm.
//!
//! bp compiles its networks, so every configuration the peers use has its own
//! `bp::network!` (in `examples/nets/mod.rs`, shared with `examples/infer.rs`): tiny `2,8,1`, small `64,32,10`, medium `784,128,10` and large
//! `784,1024,1024,10`. Other `--sizes` are refused (exit code 2) with the list.
//!
//! **The layer networks** (`--model`, exclusive with `--sizes`), as `models_peer.py`'s
//! docstring defines them, in PyTorch's layouts and default initialization:
//!
//! ```text
//! lenet   [1, 28, 28]  conv 1→8 5×5 no bias → batch norm → relu → max pool 2 → conv 8→16 5×5
//!                      no bias → batch norm → relu → max pool 2 → flatten 256 → linear 64
//!                      → relu → linear 10                    (the `cnn` example's network)
//! lstm    [28, 28]     LSTM 28→64, last hidden state → linear 10   (the `lstm` example's)
//! gru     [28, 28]     GRU 28→64, last hidden state → linear 10
//! lstm100 [100, 32]    LSTM 32→128 over 100 steps, last → linear 10
//! cifar   [3, 32, 32]  conv 3→32 3×3 pad 1 → relu → max pool 2 → conv 32→64 3×3 pad 1 → relu
//!                      → max pool 2 → flatten 4096 → linear 128 → relu → linear 10
//! ```
//!
//! The step is the peer's: forward (batch norm in training mode) + softmax cross-entropy
//! (mean) + backward + plain SGD (lr 0.01), f32, one fixed batch: x ~ N(0, 1) from bp's
//! seeded stream, labels (7·i + 3) mod 10. The defaults follow `models_peer.py`: batch 32,
//! `--min-time 1.0`, `--repeats 5`. The JSON line has the peer's fields (`peer`, `model`,
//! `batch`, `threads`, `sec_per_step`, `samples_per_sec`, `loss_first` = the loss before
//! the first step, `loss_last` = after the last) and bp's extras. `--init` and
//! `--loss mse` are for the MLP only.
//!
//! Options (as the peers'): `--sizes` or `--model`, `--batch` (64 for the MLP, 32 for a
//! model), `--threads` (1; handed to `bp::kernels::set_threads`, and the process is pinned
//! to the first N CPUs with `taskset` when it is installed), `--steps` (0 = calibrate so
//! one repeat takes ≥ `--min-time` seconds, 2.0 for the MLP, 1.0 for a model), `--repeats`
//! (3 for the MLP, 5 for a model), `--warmup` (0 = ≥ 0.5 s and ≥ 20 steps), `--lr`,
//! `--loss`, `--seed` (0), `--check N` (print the losses of N steps from the start instead
//! of timing) and `--init FILE`: the safetensors file `dump_init.py` writes (`W0, b0, W1,
//! b1, …` with W as (in, out), `x`, and `y`: int64 labels for cross-entropy, float targets
//! for MSE), so that bp starts where the MLP peers start. Without `--init` the parameters
//! come from bp's own seeded initialization and the batch from a seeded stream (x ~ N(0,
//! 1); MLP labels uniform, or N(0, 1) targets).

use bp::loss::{mse, softmax_cross_entropy};
use bp::optim::{Optimizer, Sgd};
use bp::rng::Rng;
use bp::{Network, Tensor};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

mod nets;

pub use nets::{Cifar, Large, LeNet, Lstm100, Medium, RowGru, RowLstm, Small, Tiny};

/// A layer network of `models_peer.py`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    Lenet,
    Lstm,
    Gru,
    Lstm100,
    Cifar,
}

impl Model {
    /// Every model, in `models_peer.py`'s order.
    pub const ALL: [Model; 5] = [
        Model::Lenet,
        Model::Lstm,
        Model::Gru,
        Model::Lstm100,
        Model::Cifar,
    ];

    /// The name `--model` takes (and the JSON's `model`).
    pub fn name(self) -> &'static str {
        match self {
            Model::Lenet => "lenet",
            Model::Lstm => "lstm",
            Model::Gru => "gru",
            Model::Lstm100 => "lstm100",
            Model::Cifar => "cifar",
        }
    }

    /// The model named `name`.
    pub fn from_name(name: &str) -> Option<Model> {
        Model::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// The models' names, as `--model` takes them.
pub fn model_names() -> Vec<&'static str> {
    Model::ALL.iter().map(|m| m.name()).collect()
}

/// The configurations compiled in, as `--sizes` spells them.
pub const SUPPORTED: &[&str] = &["2,8,1", "64,32,10", "784,128,10", "784,1024,1024,10"];

/// The loss of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Softmax cross-entropy on class labels, mean over the batch.
    Ce,
    /// Mean squared error, mean over all elements.
    Mse,
}

impl Loss {
    fn name(self) -> &'static str {
        match self {
            Loss::Ce => "ce",
            Loss::Mse => "mse",
        }
    }
}

/// The command line, with the peers' names and defaults.
#[derive(Clone, Debug)]
pub struct Config {
    /// The layer network of `--model`; `None` for the MLP of `sizes`.
    pub model: Option<Model>,
    /// The MLP's widths (empty for a model).
    pub sizes: Vec<usize>,
    /// `--sizes` as given (the JSON's `sizes`; empty for a model).
    pub sizes_str: String,
    pub batch: usize,
    /// Whether `--batch` was given (a file from `--init` otherwise sets the batch).
    pub batch_given: bool,
    pub steps: usize,
    pub min_time: f64,
    pub repeats: usize,
    pub warmup: usize,
    pub threads: usize,
    pub lr: f64,
    pub loss: Loss,
    pub seed: u64,
    pub check: usize,
    pub init: Option<PathBuf>,
}

const USAGE: &str = "usage: cargo run --release --example bench -- [options]
  --sizes A,B,..   MLP layer widths, one of 2,8,1 | 64,32,10 | 784,128,10 | 784,1024,1024,10 (default 784,128,10)
  --model M        a layer network of models_peer.py instead of the MLP: lenet | lstm | gru | lstm100 | cifar
  --batch N        batch size (default 64 for the MLP, 32 for a model; a file from --init sets it otherwise)
  --threads N      threads for bp's kernels, and the CPUs the process is pinned to (default 1)
  --steps N        timed steps per repeat (0 = calibrate to --min-time; default 0)
  --min-time S     seconds per repeat when calibrating (default 2.0 for the MLP, 1.0 for a model)
  --repeats N      timed repeats; the median is reported (default 3 for the MLP, 5 for a model)
  --warmup N       warm-up steps (0 = at least 0.5 s and 20 steps; default 0)
  --lr X           SGD learning rate (default 0.01)
  --loss L         auto | ce | mse (auto: mse when the last size is 1, else ce; a model takes ce only)
  --seed N         initialization and batch seed (default 0)
  --check N        instead of timing: print the losses of N steps from the start
  --init FILE      start the MLP from dump_init.py's safetensors (W0, b0, ..., x, y)";

/// Parses the arguments (without the program name). `Ok(None)` for `--help`; an error
/// is the message for a usage error (exit code 2).
pub fn parse_args<S: AsRef<str>>(args: &[S]) -> Result<Option<Config>, String> {
    let mut sizes_str = None;
    let mut model = None;
    let mut batch = None;
    let mut min_time = None;
    let mut repeats = None;
    let mut c = Config {
        model: None,
        sizes: Vec::new(),
        sizes_str: String::new(),
        batch: 64,
        batch_given: false,
        steps: 0,
        min_time: 2.0,
        repeats: 3,
        warmup: 0,
        threads: 1,
        lr: 0.01,
        loss: Loss::Ce,
        seed: 0,
        check: 0,
        init: None,
    };
    let mut loss = "auto".to_string();
    let mut it = args.iter().map(|s| s.as_ref().to_string());
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        if flag == "--help" || flag == "-h" {
            return Ok(None);
        }
        const FLAGS: &[&str] = &[
            "--sizes",
            "--model",
            "--batch",
            "--threads",
            "--steps",
            "--min-time",
            "--repeats",
            "--warmup",
            "--lr",
            "--loss",
            "--seed",
            "--check",
            "--init",
        ];
        if !FLAGS.contains(&flag.as_str()) {
            return Err(format!("unknown argument `{arg}`"));
        }
        let value = inline
            .or_else(|| it.next())
            .ok_or_else(|| format!("`{flag}` needs a value"))?;
        fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
            v.parse()
                .map_err(|_| format!("`{flag}` needs a number, found `{v}`"))
        }
        match flag.as_str() {
            "--sizes" => sizes_str = Some(value),
            "--model" => model = Some(value),
            "--batch" => batch = Some(num(&flag, &value)?),
            "--threads" => c.threads = num(&flag, &value)?,
            "--steps" => c.steps = num(&flag, &value)?,
            "--min-time" => min_time = Some(num(&flag, &value)?),
            "--repeats" => repeats = Some(num(&flag, &value)?),
            "--warmup" => c.warmup = num(&flag, &value)?,
            "--lr" => c.lr = num(&flag, &value)?,
            "--loss" => loss = value,
            "--seed" => c.seed = num(&flag, &value)?,
            "--check" => c.check = num(&flag, &value)?,
            _ => c.init = Some(PathBuf::from(value)),
        }
    }
    c.batch_given = batch.is_some();
    if let Some(name) = model {
        if sizes_str.is_some() {
            return Err("`--model` and `--sizes` are exclusive: a model or the MLP".into());
        }
        let m = Model::from_name(&name).ok_or_else(|| {
            format!(
                "unknown model `{name}`; the models are {}",
                model_names().join(" | ")
            )
        })?;
        if c.init.is_some() {
            return Err("`--init` is for the MLP (--sizes) only".into());
        }
        c.loss = match loss.as_str() {
            "auto" | "ce" => Loss::Ce,
            other => return Err(format!("`--loss` of a model is ce (auto), found `{other}`")),
        };
        c.model = Some(m);
        // models_peer.py's defaults.
        c.batch = batch.unwrap_or(32);
        c.min_time = min_time.unwrap_or(1.0);
        c.repeats = repeats.unwrap_or(5);
        return check_common(c).map(Some);
    }
    c.batch = batch.unwrap_or(64);
    c.min_time = min_time.unwrap_or(2.0);
    c.repeats = repeats.unwrap_or(3);
    let sizes_str = sizes_str.unwrap_or_else(|| "784,128,10".to_string());
    c.sizes = sizes_str
        .split(',')
        .map(|s| s.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("`--sizes` needs comma-separated integers, found `{sizes_str}`"))?;
    if c.sizes.len() < 2 {
        return Err("need at least two sizes".into());
    }
    c.sizes_str = sizes_str;
    let last = *c.sizes.last().unwrap_or(&0);
    c.loss = match loss.as_str() {
        "auto" if last == 1 => Loss::Mse,
        "auto" | "ce" => Loss::Ce,
        "mse" => Loss::Mse,
        other => return Err(format!("`--loss` is auto, ce or mse, found `{other}`")),
    };
    if c.loss == Loss::Ce && last < 2 {
        return Err("cross-entropy needs >= 2 outputs".into());
    }
    check_common(c).map(Some)
}

/// The checks the MLP and the models share.
fn check_common(c: Config) -> Result<Config, String> {
    if c.batch == 0 {
        return Err("`--batch` must be at least 1".into());
    }
    if c.repeats == 0 {
        return Err("`--repeats` must be at least 1".into());
    }
    if !(c.min_time.is_finite() && c.min_time > 0.0) {
        return Err("`--min-time` must be a positive number of seconds".into());
    }
    Ok(c)
}

/// What the loss compares the output with.
pub enum Target {
    /// Class indices, for cross-entropy.
    Labels(Vec<usize>),
    /// Targets of the output's shape, for MSE.
    Values(Tensor),
}

/// A network, its optimizer and the fixed batch: everything one step touches, owned so
/// that a warm step allocates nothing.
pub struct Trainer<N> {
    pub net: N,
    opt: Sgd<f32>,
    target: Target,
    /// d loss / d output (also the scratch of [`Trainer::loss_value`]).
    d_out: Tensor,
}

impl<N: Network<Scalar = f32>> Trainer<N> {
    /// A trainer for `net` on the batch `x`, `target` with plain SGD at `lr`.
    pub fn new(net: N, x: Tensor, target: Target, lr: f64) -> Result<Self, String> {
        let opt = Sgd::new(lr).checked().map_err(|e| e.to_string())?;
        let mut net = net;
        net.input_mut(0)
            .ok_or("the network has no input 0")?
            .assign(&x);
        Ok(Trainer {
            net,
            opt,
            target,
            d_out: Tensor::default(),
        })
    }

    /// Forward and loss; the loss's gradient goes into `d_out`.
    fn forward_loss(&mut self) -> Result<f32, bp::Error> {
        // The batch sits in the network's input buffer (loaded once in `new`): no copy
        // per step, as the peers pass their fixed batch without copying it.
        self.net.forward_loaded_dyn()?;
        let out = self
            .net
            .output(0)
            .ok_or_else(|| bp::Error::invalid("the network has no output 0"))?;
        match &self.target {
            Target::Labels(y) => softmax_cross_entropy(out, y, &mut self.d_out),
            Target::Values(t) => mse(out, t, &mut self.d_out),
        }
    }

    /// One training step: forward + loss + backward + SGD update. Returns the loss
    /// before the update.
    pub fn step(&mut self) -> Result<f32, bp::Error> {
        let loss = self.forward_loss()?;
        // Plain SGD: the fused backward (each weight updated inside its gradient
        // product), as `bp::train::fit_classifier` runs it.
        self.opt.backward_step(&mut self.net, &[&self.d_out])?;
        Ok(loss)
    }

    /// The loss of the current parameters on the batch (as the peers' `loss_value`).
    pub fn loss_value(&mut self) -> Result<f32, bp::Error> {
        self.forward_loss()
    }
}

/// Reads `dump_init.py`'s file into `net` (weights transposed from (in, out) to bp's
/// `[out, in]`) and returns the batch and its targets.
pub fn load_init<N: Network<Scalar = f32>>(
    net: &mut N,
    c: &Config,
    path: &std::path::Path,
) -> Result<(Tensor, Target), String> {
    use safetensors::{Dtype, SafeTensors};
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("{shown}: {e}"))?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| format!("{shown}: {e}"))?;
    let get = |name: &str| {
        file.tensor(name)
            .map_err(|_| format!("{shown}: no tensor `{name}` (is it from dump_init.py?)"))
    };
    let floats = |name: &str, shape: &[usize]| -> Result<Vec<f32>, String> {
        let v = get(name)?;
        if v.shape() != shape {
            return Err(format!(
                "{shown}: `{name}` is {:?} but --sizes {} needs {shape:?}",
                v.shape(),
                c.sizes_str
            ));
        }
        match v.dtype() {
            Dtype::F32 => Ok(v
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()),
            Dtype::F64 => Ok(v
                .data()
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32)
                .collect()),
            d => Err(format!(
                "{shown}: `{name}` has dtype {d:?}; F32 or F64 expected"
            )),
        }
    };
    for (i, w) in c.sizes.windows(2).enumerate() {
        let (fan_in, fan_out) = (w[0], w[1]);
        let wt = floats(&format!("W{i}"), &[fan_in, fan_out])?;
        let b = floats(&format!("b{i}"), &[fan_out])?;
        let name = format!("fc{i}.weight");
        let dst = net
            .param_mut(&name)
            .ok_or_else(|| format!("the network has no `{name}`"))?
            .as_mut_slice();
        for o in 0..fan_out {
            for k in 0..fan_in {
                dst[o * fan_in + k] = wt[k * fan_out + o];
            }
        }
        let name = format!("fc{i}.bias");
        net.param_mut(&name)
            .ok_or_else(|| format!("the network has no `{name}`"))?
            .as_mut_slice()
            .copy_from_slice(&b);
    }
    let xv = get("x")?;
    let batch = xv.shape().first().copied().unwrap_or(0);
    if c.batch_given && batch != c.batch {
        return Err(format!(
            "{shown}: the batch in the file is {batch} but --batch is {}",
            c.batch
        ));
    }
    let (n_in, n_out) = (c.sizes[0], c.sizes[c.sizes.len() - 1]);
    let x = Tensor::from_vec(&[batch, n_in], floats("x", &[batch, n_in])?)
        .map_err(|e| e.to_string())?;
    let target = match c.loss {
        Loss::Ce => {
            let y = get("y")?;
            if y.shape() != [batch] {
                return Err(format!("{shown}: `y` is {:?}, not [{batch}]", y.shape()));
            }
            let labels: Vec<i64> = match y.dtype() {
                Dtype::I64 => y
                    .data()
                    .chunks_exact(8)
                    .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
                    .collect(),
                Dtype::I32 => y
                    .data()
                    .chunks_exact(4)
                    .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)
                    .collect(),
                d => {
                    return Err(format!(
                        "{shown}: labels `y` have dtype {d:?}; I64 expected"
                    ))
                }
            };
            let labels = labels
                .into_iter()
                .map(|l| {
                    usize::try_from(l)
                        .ok()
                        .filter(|&l| l < n_out)
                        .ok_or_else(|| format!("{shown}: label {l} is not in 0..{n_out}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Target::Labels(labels)
        }
        Loss::Mse => Target::Values(
            Tensor::from_vec(&[batch, n_out], floats("y", &[batch, n_out])?)
                .map_err(|e| e.to_string())?,
        ),
    };
    Ok((x, target))
}

/// A seeded batch: x ~ N(0, 1); labels uniform in 0..out, or N(0, 1) targets.
pub fn random_batch(c: &Config) -> Result<(Tensor, Target), String> {
    let (n_in, n_out) = (c.sizes[0], c.sizes[c.sizes.len() - 1]);
    let mut rng = Rng::new(c.seed.wrapping_add(1));
    let xs = (0..c.batch * n_in)
        .map(|_| rng.normal(0.0, 1.0) as f32)
        .collect();
    let x = Tensor::from_vec(&[c.batch, n_in], xs).map_err(|e| e.to_string())?;
    let target = match c.loss {
        Loss::Ce => Target::Labels((0..c.batch).map(|_| rng.below(n_out)).collect()),
        Loss::Mse => {
            let ys = (0..c.batch * n_out)
                .map(|_| rng.normal(0.0, 1.0) as f32)
                .collect();
            Target::Values(Tensor::from_vec(&[c.batch, n_out], ys).map_err(|e| e.to_string())?)
        }
    };
    Ok((x, target))
}

/// A model's batch, as `models_peer.py` makes it: x ~ N(0, 1) of the network's input
/// shape (from bp's seeded stream), labels (7·i + 3) mod the number of classes.
pub fn model_batch<N: Network<Scalar = f32>>(c: &Config) -> Result<(Tensor, Target), String> {
    let (_, sample) = N::INPUTS.first().ok_or("the network has no input")?;
    let (_, out) = N::OUTPUTS.first().ok_or("the network has no output")?;
    let classes: usize = out.iter().product();
    let mut shape = vec![c.batch];
    shape.extend_from_slice(sample);
    let n: usize = shape.iter().product();
    let mut rng = Rng::new(c.seed.wrapping_add(1));
    let xs = (0..n).map(|_| rng.normal(0.0, 1.0) as f32).collect();
    let x = Tensor::from_vec(&shape, xs).map_err(|e| e.to_string())?;
    let labels = (0..c.batch).map(|i| (7 * i + 3) % classes).collect();
    Ok((x, Target::Labels(labels)))
}

/// The trainer of one configuration: `new(seed)` and the batch, or the `--init` file.
pub fn trainer<N: Network<Scalar = f32>>(
    c: &Config,
    new: fn(u64) -> N,
) -> Result<(Trainer<N>, usize), String> {
    let mut net = new(c.seed);
    let (x, target) = match (c.model, &c.init) {
        (Some(_), _) => model_batch::<N>(c)?,
        (None, Some(path)) => load_init(&mut net, c, path)?,
        (None, None) => random_batch(c)?,
    };
    let batch = x.shape()[0];
    Ok((Trainer::new(net, x, target, c.lr)?, batch))
}

/// The losses of `steps` steps from the start (before the first step and after each),
/// and the batch size.
pub fn check_losses<N: Network<Scalar = f32>>(
    c: &Config,
    new: fn(u64) -> N,
    steps: usize,
) -> Result<(Vec<f64>, usize), String> {
    let (mut t, batch) = trainer(c, new)?;
    let err = |e: bp::Error| e.to_string();
    let mut losses = vec![f64::from(t.loss_value().map_err(err)?)];
    for _ in 0..steps {
        t.step().map_err(err)?;
        losses.push(f64::from(t.loss_value().map_err(err)?));
    }
    Ok((losses, batch))
}

/// Runs `f` with the network type of `c.model`, or of `c.sizes` for the MLP; `None` for
/// sizes not compiled in.
macro_rules! dispatch {
    ($c:expr, $f:ident ( $($arg:expr),* )) => {
        match ($c.model, $c.sizes.as_slice()) {
            (Some(Model::Lenet), _) => Some($f::<LeNet>($($arg),*, LeNet::new)),
            (Some(Model::Lstm), _) => Some($f::<RowLstm>($($arg),*, RowLstm::new)),
            (Some(Model::Gru), _) => Some($f::<RowGru>($($arg),*, RowGru::new)),
            (Some(Model::Lstm100), _) => Some($f::<Lstm100>($($arg),*, Lstm100::new)),
            (Some(Model::Cifar), _) => Some($f::<Cifar>($($arg),*, Cifar::new)),
            (None, [2, 8, 1]) => Some($f::<Tiny>($($arg),*, Tiny::new)),
            (None, [64, 32, 10]) => Some($f::<Small>($($arg),*, Small::new)),
            (None, [784, 128, 10]) => Some($f::<Medium>($($arg),*, Medium::new)),
            (None, [784, 1024, 1024, 10]) => Some($f::<Large>($($arg),*, Large::new)),
            (None, _) => None,
        }
    };
}

/// `check_losses` for the model of `c.model` or the MLP of `c.sizes` (`None` if those
/// sizes are not compiled in).
pub fn check_config(c: &Config, steps: usize) -> Option<Result<Vec<f64>, String>> {
    fn go<N: Network<Scalar = f32>>(
        c: &Config,
        steps: usize,
        new: fn(u64) -> N,
    ) -> Result<Vec<f64>, String> {
        check_losses(c, new, steps).map(|(losses, _)| losses)
    }
    dispatch!(c, go(c, steps))
}

/// Python's `float(f"{x:.{digits}g}")`.
fn round_sig(x: f64, digits: usize) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    format!("{:.*e}", digits - 1, x).parse().unwrap_or(x)
}

/// A JSON number as Python's `json.dumps` writes a float (NaN and Infinity included).
fn jf(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        format!("{x:?}")
    }
}

/// A JSON string.
fn js(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// 6·b·Σ in·out: forward 2·b·in·out, backward 4·b·in·out per layer.
fn flops_per_step(sizes: &[usize], batch: usize) -> f64 {
    6.0 * batch as f64 * sizes.windows(2).map(|w| (w[0] * w[1]) as f64).sum::<f64>()
}

/// What a step must compute: no gradient for the input.
fn flops_needed(sizes: &[usize], batch: usize) -> f64 {
    let pairs: Vec<f64> = sizes.windows(2).map(|w| (w[0] * w[1]) as f64).collect();
    2.0 * batch as f64 * (2.0 * pairs.iter().sum::<f64>() + pairs[1..].iter().sum::<f64>())
}

/// The JSON field that names what was run: `"sizes": "…"` for the MLP, `"model": "…"`.
fn what_json(c: &Config) -> String {
    match c.model {
        Some(m) => format!("\"model\": {}", js(m.name())),
        None => format!("\"sizes\": {}", js(&c.sizes_str)),
    }
}

/// The fields bp adds to the peers' (the counterpart of their library versions).
fn extra(c: &Config, pinned: bool) -> String {
    format!(
        ", \"bp\": {}, \"bp_threads\": {}, \"gemm\": {}, \"pinned\": {}, \"init\": {}",
        js(env!("CARGO_PKG_VERSION")),
        bp::kernels::threads(),
        js(&bp::kernels::gemm_kernels()),
        pinned,
        js(&c
            .init
            .as_ref()
            .map_or_else(|| "seed".to_string(), |p| p.display().to_string()))
    )
}

/// `run_check`: the JSON line of the losses of `c.check` steps.
pub fn check_json(c: &Config, batch: usize, losses: &[f64], pinned: bool) -> String {
    let ls: Vec<String> = losses.iter().map(|&l| jf(round_sig(l, 7))).collect();
    format!(
        "{{\"peer\": \"bp\", {}, \"batch\": {batch}, \"loss\": {}, \"check_steps\": {}, \"losses\": [{}]{}}}",
        what_json(c),
        js(c.loss.name()),
        c.check,
        ls.join(", "),
        extra(c, pinned)
    )
}

/// `_common.bench`: warm-up, calibration, timed repeats; returns the JSON line.
pub fn bench<N: Network<Scalar = f32>>(
    c: &Config,
    pinned: bool,
    new: fn(u64) -> N,
) -> Result<String, String> {
    if c.check > 0 {
        let (losses, batch) = check_losses(c, new, c.check)?;
        return Ok(check_json(c, batch, &losses, pinned));
    }
    let (mut t, batch) = trainer(c, new)?;
    let m = measure(c, &mut t).map_err(|e| e.to_string())?;
    Ok(match c.model {
        Some(_) => model_json(c, batch, pinned, &m),
        None => mlp_json(c, batch, pinned, &m),
    })
}

/// What one timed run measured.
pub struct Measured {
    /// Timed steps per repeat.
    pub steps: usize,
    /// Seconds per step of each repeat.
    pub per_step: Vec<f64>,
    /// Their median.
    pub median: f64,
    /// (max − min) / median of the repeats.
    pub spread: f64,
    /// Seconds of the warm-up.
    pub warm_s: f64,
    /// The loss before the first step.
    pub loss_first: f32,
    /// The loss after the last step.
    pub loss_last: f32,
}

/// `_common.bench`: warm-up, calibration, timed repeats.
fn measure<N: Network<Scalar = f32>>(
    c: &Config,
    t: &mut Trainer<N>,
) -> Result<Measured, bp::Error> {
    let loss0 = t.loss_value()?;
    // Warm-up.
    let start = Instant::now();
    let mut n = 0usize;
    loop {
        t.step()?;
        n += 1;
        if c.warmup > 0 && n >= c.warmup {
            break;
        }
        if c.warmup == 0 && n >= 20 && n.is_multiple_of(10) && start.elapsed().as_secs_f64() >= 0.5
        {
            break;
        }
    }
    let warm_s = start.elapsed().as_secs_f64();
    // Calibrate.
    let mut steps = c.steps;
    if steps == 0 {
        let mut k = 16usize;
        let dt = loop {
            let t0 = Instant::now();
            for _ in 0..k {
                t.step()?;
            }
            let dt = t0.elapsed().as_secs_f64();
            if dt >= 0.2 {
                break dt;
            }
            k *= if dt < 0.05 { 4 } else { 2 };
        };
        steps = ((c.min_time / (dt / k as f64) * 1.05).ceil() as usize).max(1);
    }
    // Timed repeats.
    let mut per_step = Vec::with_capacity(c.repeats);
    for _ in 0..c.repeats {
        let t0 = Instant::now();
        for _ in 0..steps {
            t.step()?;
        }
        per_step.push(t0.elapsed().as_secs_f64() / steps as f64);
    }
    let loss1 = t.loss_value()?;
    let mut sorted = per_step.clone();
    sorted.sort_by(f64::total_cmp);
    let m = sorted.len();
    let med = if m % 2 == 1 {
        sorted[m / 2]
    } else {
        (sorted[m / 2 - 1] + sorted[m / 2]) / 2.0
    };
    let spread = (sorted[m - 1] - sorted[0]) / med;
    Ok(Measured {
        steps,
        per_step,
        median: med,
        spread,
        warm_s,
        loss_first: loss0,
        loss_last: loss1,
    })
}

/// The MLP's JSON line, with the MLP peers' fields.
fn mlp_json(c: &Config, batch: usize, pinned: bool, m: &Measured) -> String {
    let (med, steps) = (m.median, m.steps);
    let repeats: Vec<String> = m.per_step.iter().map(|&s| jf(s)).collect();
    format!(
        "{{\"peer\": \"bp\", \"sizes\": {}, \"batch\": {batch}, \"steps\": {steps}, \"threads\": {}, \
         \"sec_per_step\": {}, \"samples_per_sec\": {}, \"gflops\": {}, \"gflops_needed\": {}, \
         \"loss\": {}, \"repeats_sec_per_step\": [{}], \"spread\": {}, \"warmup_s\": {}, \
         \"loss_before\": {}, \"loss_after\": {}{}}}",
        js(&c.sizes_str),
        c.threads,
        jf(med),
        jf(batch as f64 / med),
        jf(flops_per_step(&c.sizes, batch) / med / 1e9),
        jf(flops_needed(&c.sizes, batch) / med / 1e9),
        js(c.loss.name()),
        repeats.join(", "),
        jf(m.spread),
        jf((m.warm_s * 1000.0).round() / 1000.0),
        jf(round_sig(f64::from(m.loss_first), 6)),
        jf(round_sig(f64::from(m.loss_last), 6)),
        extra(c, pinned)
    )
}

/// A model's JSON line: `models_peer.py`'s fields (`peer`, `model`, `batch`, `threads`,
/// `sec_per_step`, `samples_per_sec`, `loss_first`, `loss_last`), then the repeats and
/// bp's extras.
fn model_json(c: &Config, batch: usize, pinned: bool, m: &Measured) -> String {
    let repeats: Vec<String> = m.per_step.iter().map(|&s| jf(s)).collect();
    format!(
        "{{\"peer\": \"bp\", {}, \"batch\": {batch}, \"threads\": {}, \"sec_per_step\": {}, \
         \"samples_per_sec\": {}, \"loss_first\": {}, \"loss_last\": {}, \"steps\": {}, \
         \"repeats_sec_per_step\": [{}], \"spread\": {}, \"warmup_s\": {}{}}}",
        what_json(c),
        c.threads,
        jf(m.median),
        jf(batch as f64 / m.median),
        jf(f64::from(m.loss_first)),
        jf(f64::from(m.loss_last)),
        m.steps,
        repeats.join(", "),
        jf(m.spread),
        jf((m.warm_s * 1000.0).round() / 1000.0),
        extra(c, pinned)
    )
}

/// The JSON line of the run `c` asks for (a timing, or the losses of `--check`); `None`
/// for MLP sizes not compiled in.
pub fn run(c: &Config, pinned: bool) -> Option<Result<String, String>> {
    dispatch!(c, bench(c, pinned))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let c = match parse_args(&args) {
        Ok(Some(c)) => c,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    if c.threads < 1 || c.threads > ncpu {
        eprintln!("error: --threads must be in 1..{ncpu}");
        return ExitCode::FAILURE;
    }
    let pinned = nets::pin_to_first(c.threads);
    bp::kernels::set_threads(c.threads);
    match run(&c, pinned) {
        None => {
            eprintln!(
                "error: --sizes {} is not compiled into this benchmark; the supported sizes are {}",
                c.sizes_str,
                SUPPORTED.join(" | ")
            );
            ExitCode::from(2)
        }
        Some(Err(e)) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
        Some(Ok(line)) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
    }
}
