//! infer: inference latency at batch 1, timed as `bench/infer_peer.py` times PyTorch and
//! ONNX Runtime.
//!
//! ```text
//! cargo run --release --example infer -- --model mlp --threads 1
//! cargo run --release --example infer -- --model lenet --threads 2 --repeats 9
//! ```
//!
//! One call is `predict_into` on one sample: the network's forward pass in evaluation
//! mode (batch norm with its running statistics) into a workspace the caller keeps, so
//! no call allocates once the first has sized it. Plain `predict` (a fresh workspace and
//! an owned output per call) is timed beside it. The networks are the shared ones of
//! `examples/nets/mod.rs`, seeded with PyTorch's default initialization:
//!
//! ```text
//! mlp    [784]        784 → 128 relu → 10         (the `mnist` example's network)
//! lenet  [1, 28, 28]  models_peer.py's `lenet`    (the `cnn` example's network)
//! lstm   [28, 28]     models_peer.py's `lstm`     (the `lstm` example's network)
//! ```
//!
//! The input is one sample x ~ N(0, 1) from bp's seeded stream. The process is pinned to
//! CPUs 0..threads-1 with `taskset` (as `examples/bench.rs` does) and
//! `bp::kernels::set_threads(threads)` is called. Timing: warm-up (≥ 0.2 s and ≥ 100
//! calls, or `--warmup N` calls), then a calibration so one repeat takes ≥ `--min-time`
//! seconds, then `--repeats` repeats, each one block of `predict_into` calls followed by
//! one block of `predict` calls; the medians over repeats are reported. Before timing,
//! the two are checked to give the same output bit for bit.
//!
//! It prints one JSON line with the fields of `infer_peer.py` (`peer` "bp", `model`,
//! `batch` 1, `threads`, `sec_per_call` = the median of `predict_into`, `calls_per_sec`)
//! and bp's extras (`predict_sec_per_call`, the repeats, their spread, `calls` per
//! repeat, `pinned`, `bp_threads`, `out_sum` = the sum of the logits).
//!
//! Options: `--model mlp|lenet|lstm` (required), `--threads N` (1), `--min-time S` (0.25),
//! `--repeats N` (7), `--warmup N` (0 = automatic), `--seed N` (0).

mod nets;

use bp::rng::Rng;
use bp::{Network, Tensor};
use nets::{LeNet, Medium, RowLstm};
use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

/// A network of the latency benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// 784 → 128 relu → 10.
    Mlp,
    /// `models_peer.py`'s `lenet`.
    Lenet,
    /// `models_peer.py`'s `lstm`.
    Lstm,
}

impl Model {
    /// Every model, in the order of the report.
    pub const ALL: [Model; 3] = [Model::Mlp, Model::Lenet, Model::Lstm];

    /// The name `--model` takes (and the JSON's `model`).
    pub fn name(self) -> &'static str {
        match self {
            Model::Mlp => "mlp",
            Model::Lenet => "lenet",
            Model::Lstm => "lstm",
        }
    }
}

/// The command line.
#[derive(Clone, Debug)]
pub struct Config {
    pub model: Model,
    pub threads: usize,
    pub min_time: f64,
    pub repeats: usize,
    pub warmup: usize,
    pub seed: u64,
}

const USAGE: &str = "usage: cargo run --release --example infer -- --model M [options]
  --model M        mlp | lenet | lstm
  --threads N      threads for bp's kernels, and the CPUs the process is pinned to (default 1)
  --min-time S     seconds per repeat of each of predict_into and predict (default 0.25)
  --repeats N      timed repeats; the medians are reported (default 7)
  --warmup N       warm-up calls (0 = at least 0.2 s and 100 calls; default 0)
  --seed N         initialization and input seed (default 0)";

/// Parses the arguments (without the program name). `Ok(None)` for `--help`; an error
/// is the message for a usage error (exit code 2).
pub fn parse_args<S: AsRef<str>>(args: &[S]) -> Result<Option<Config>, String> {
    let mut model = None;
    let mut c = Config {
        model: Model::Mlp,
        threads: 1,
        min_time: 0.25,
        repeats: 7,
        warmup: 0,
        seed: 0,
    };
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
            "--model",
            "--threads",
            "--min-time",
            "--repeats",
            "--warmup",
            "--seed",
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
            "--model" => model = Some(value),
            "--threads" => c.threads = num(&flag, &value)?,
            "--min-time" => c.min_time = num(&flag, &value)?,
            "--repeats" => c.repeats = num(&flag, &value)?,
            "--warmup" => c.warmup = num(&flag, &value)?,
            _ => c.seed = num(&flag, &value)?,
        }
    }
    let name = model.ok_or("`--model` is required")?;
    c.model = Model::ALL
        .into_iter()
        .find(|m| m.name() == name)
        .ok_or_else(|| format!("unknown model `{name}`; the models are mlp | lenet | lstm"))?;
    if c.threads == 0 {
        return Err("`--threads` must be at least 1".into());
    }
    if c.repeats == 0 {
        return Err("`--repeats` must be at least 1".into());
    }
    if !(c.min_time.is_finite() && c.min_time > 0.0) {
        return Err("`--min-time` must be a positive number of seconds".into());
    }
    Ok(Some(c))
}

/// One sample of `N`'s input, x ~ N(0, 1), as a batch of 1.
fn sample<N: Network<Scalar = f32>>(seed: u64) -> Result<Tensor, String> {
    let (_, per_sample) = N::INPUTS.first().ok_or("the network has no input")?;
    let mut shape = vec![1];
    shape.extend_from_slice(per_sample);
    let n: usize = shape.iter().product();
    let mut rng = Rng::new(seed.wrapping_add(1));
    let xs = (0..n).map(|_| rng.normal(0.0, 1.0) as f32).collect();
    Tensor::from_vec(&shape, xs).map_err(|e| e.to_string())
}

/// What one timed run measured.
pub struct Measured {
    /// Calls per repeat.
    pub calls: usize,
    /// Seconds per `predict_into` call, per repeat.
    pub into: Vec<f64>,
    /// Seconds per `predict` call, per repeat.
    pub owned: Vec<f64>,
    /// The sum of the output logits.
    pub out_sum: f64,
}

fn median(xs: &[f64]) -> f64 {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len();
    if m % 2 == 1 {
        s[m / 2]
    } else {
        (s[m / 2 - 1] + s[m / 2]) / 2.0
    }
}

/// Seconds per call of `n` calls of `f`.
fn per_call(n: usize, f: &mut dyn FnMut() -> Result<(), bp::Error>) -> Result<f64, bp::Error> {
    let t0 = Instant::now();
    for _ in 0..n {
        f()?;
    }
    Ok(t0.elapsed().as_secs_f64() / n as f64)
}

/// Warm-up, calibration and timed repeats of `into` (`predict_into`) and `owned`
/// (`predict`).
fn measure(
    c: &Config,
    into: &mut dyn FnMut() -> Result<(), bp::Error>,
    owned: &mut dyn FnMut() -> Result<(), bp::Error>,
) -> Result<(usize, Vec<f64>, Vec<f64>), bp::Error> {
    let start = Instant::now();
    let mut n = 0usize;
    while if c.warmup > 0 {
        n < c.warmup
    } else {
        n < 100 || start.elapsed().as_secs_f64() < 0.2
    } {
        into()?;
        owned()?;
        n += 1;
    }
    let mut k = 64usize;
    let dt = loop {
        let dt = per_call(k, into)? * k as f64;
        if dt >= 0.02 {
            break dt;
        }
        k *= 4;
    };
    let calls = ((c.min_time / (dt / k as f64)).ceil() as usize).max(1);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..c.repeats {
        a.push(per_call(calls, into)?);
        b.push(per_call(calls, owned)?);
    }
    Ok((calls, a, b))
}

/// Times network `N` at batch 1.
fn time_network<N: Network<Scalar = f32>>(
    c: &Config,
    net: &N,
    predict: fn(&N, &Tensor) -> Result<Tensor, bp::Error>,
    predict_into: &mut dyn FnMut(&N, &Tensor) -> Result<f32, bp::Error>,
) -> Result<Measured, String> {
    let x = sample::<N>(c.seed)?;
    let err = |e: bp::Error| e.to_string();
    let y = predict(net, &x).map_err(err)?;
    let sum: f32 = y.as_slice().iter().sum();
    if predict_into(net, &x).map_err(err)?.to_bits() != sum.to_bits() {
        return Err("predict and predict_into disagree".into());
    }
    let out_sum = f64::from(sum);
    let (calls, into, owned) = measure(
        c,
        &mut || {
            predict_into(net, black_box(&x)).map(|v| {
                black_box(v);
            })
        },
        &mut || predict(net, black_box(&x)).map(|y| drop(black_box(y))),
    )
    .map_err(err)?;
    Ok(Measured {
        calls,
        into,
        owned,
        out_sum,
    })
}

/// Builds network `$net`, a workspace kept across calls, and times it.
macro_rules! time_model {
    ($c:expr, $net:ty) => {{
        let net = <$net>::new($c.seed);
        let mut ws = net.workspace();
        let mut into = |n: &$net, x: &Tensor| -> Result<f32, bp::Error> {
            // The sum of the logits (a few adds), compared with `predict`'s once.
            Ok(n.predict_into(&mut ws, x)?.as_slice().iter().sum())
        };
        time_network($c, &net, |n, x| n.predict(x), &mut into)
    }};
}

/// A JSON number as Python's `json.dumps` writes a finite float.
fn jf(x: f64) -> String {
    if x.is_finite() {
        format!("{x:?}")
    } else {
        "NaN".into()
    }
}

/// The run `c` asks for, as its JSON line.
pub fn run(c: &Config, pinned: bool) -> Result<String, String> {
    let m = match c.model {
        Model::Mlp => time_model!(c, Medium),
        Model::Lenet => time_model!(c, LeNet),
        Model::Lstm => time_model!(c, RowLstm),
    }?;
    let (into, owned) = (median(&m.into), median(&m.owned));
    let spread = {
        let (lo, hi) = m
            .into
            .iter()
            .fold((f64::MAX, 0f64), |(l, h), &v| (l.min(v), h.max(v)));
        (hi - lo) / into
    };
    let list = |v: &[f64]| v.iter().map(|&s| jf(s)).collect::<Vec<_>>().join(", ");
    Ok(format!(
        "{{\"peer\": \"bp\", \"model\": \"{}\", \"batch\": 1, \"threads\": {}, \
         \"sec_per_call\": {}, \"calls_per_sec\": {}, \"predict_sec_per_call\": {}, \
         \"calls\": {}, \"repeats_sec_per_call\": [{}], \"repeats_predict\": [{}], \
         \"spread\": {}, \"out_sum\": {}, \"bp\": \"{}\", \"bp_threads\": {}, \"pinned\": {}}}",
        c.model.name(),
        c.threads,
        jf(into),
        jf(1.0 / into),
        jf(owned),
        m.calls,
        list(&m.into),
        list(&m.owned),
        jf(spread),
        jf(m.out_sum),
        env!("CARGO_PKG_VERSION"),
        bp::kernels::threads(),
        pinned
    ))
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
    if c.threads > ncpu {
        eprintln!("error: --threads must be in 1..{ncpu}");
        return ExitCode::FAILURE;
    }
    let pinned = nets::pin_to_first(c.threads);
    bp::kernels::set_threads(c.threads);
    match run(&c, pinned) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
