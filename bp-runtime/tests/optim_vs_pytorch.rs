//! bp's optimizers against torch.optim, replaying the committed fixture written by
//! `tools/make_optim_fixtures.py` (see its header for the format and how to re-run it).
//! PyTorch is not needed here: the test only reads `tests/fixtures/optim/torch_optim.txt`.
//!
//! Asserted: in f64 every parameter after every step agrees with PyTorch's to 1e-10
//! relative, and so does the change θ_t − θ_0 (the updates themselves); the f32 runs agree
//! with PyTorch's f32 runs to 1e-5 relative. Also: a warm `step` does not allocate, state
//! follows the parameters' names, `set_lr` takes effect, and `step` and `backward_step`
//! refuse invalid hyperparameters with PyTorch's message before changing anything.

use bp_runtime::optim::{Adam, AdamW, Optimizer, Sgd};
use bp_runtime::{loss, Error, Float, Network, Port, Tensor};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/optim/torch_optim.txt"
);

// ---------------------------------------------------------------------------------------
// Counting allocations of the current thread (tests run on several threads at once).
// The one `unsafe` of this file: a global allocator must be an `unsafe impl`; it only
// forwards to the system allocator.

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The number of allocations `f` makes on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

// ---------------------------------------------------------------------------------------
// A network that is nothing but parameters whose gradients the test sets.

struct ParamsNet<T: Float> {
    names: Vec<&'static str>,
    params: Vec<Tensor<T>>,
    grads: Vec<Tensor<T>>,
}

impl<T: Float> ParamsNet<T> {
    fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| *n == name)
    }
}

impl<T: Float> Network for ParamsNet<T> {
    type Scalar = T;
    const INPUTS: &'static [Port] = &[];
    const OUTPUTS: &'static [Port] = &[];
    const STRUCTURE_HASH: u64 = 0;

    fn forward_dyn(&mut self, _: &[&Tensor<T>]) -> Result<(), Error> {
        Ok(())
    }
    fn output(&self, _: usize) -> Option<&Tensor<T>> {
        None
    }
    fn backward_dyn(&mut self, _: &[&Tensor<T>]) -> Result<(), Error> {
        Ok(())
    }
    fn backward_dyn_accumulate(&mut self, _: &[&Tensor<T>]) -> Result<(), Error> {
        Ok(())
    }
    fn param_names(&self) -> Vec<&'static str> {
        self.names.clone()
    }
    fn param(&self, name: &str) -> Option<&Tensor<T>> {
        self.index(name).map(|i| &self.params[i])
    }
    fn param_mut(&mut self, name: &str) -> Option<&mut Tensor<T>> {
        self.index(name).map(|i| &mut self.params[i])
    }
    fn grad(&self, name: &str) -> Option<&Tensor<T>> {
        self.index(name).map(|i| &self.grads[i])
    }
    fn buffer_names(&self) -> Vec<&'static str> {
        Vec::new()
    }
    fn buffer(&self, _: &str) -> Option<&Tensor<T>> {
        None
    }
    fn buffer_mut(&mut self, _: &str) -> Option<&mut Tensor<T>> {
        None
    }
    fn residual(&self, _: &str) -> Option<&Tensor<T>> {
        None
    }
    fn input_grad(&self, _: &str) -> Option<&Tensor<T>> {
        None
    }
    fn visit_params(&mut self, f: &mut bp_runtime::ParamVisitor<'_, T>) {
        for ((name, p), g) in self.names.iter().zip(&mut self.params).zip(&self.grads) {
            f(name, p, g);
        }
    }
    fn set_training(&mut self, _: bool) {}
    fn is_training(&self) -> bool {
        true
    }
}

// ---------------------------------------------------------------------------------------
// The fixture.

struct Config {
    id: String,
    optimizer: String,
    hyper: HashMap<String, f64>,
}

#[derive(Default)]
struct Fixture {
    /// Names (leaked to `'static`, as a network's are) and shapes, in order.
    params: Vec<(&'static str, Vec<usize>)>,
    steps: usize,
    init: HashMap<String, Vec<f64>>,
    /// `grads[step - 1][name]`.
    grads: Vec<HashMap<String, Vec<f64>>>,
    configs: Vec<Config>,
    /// `(id, dtype, step, name)` → values.
    expect: HashMap<(String, String, usize, String), Vec<f64>>,
}

fn numbers<T: std::str::FromStr>(fields: &[&str], line: usize) -> Vec<T> {
    fields
        .iter()
        .map(|f| match f.parse() {
            Ok(v) => v,
            Err(_) => panic!("{FIXTURE}:{line}: `{f}` is not a number"),
        })
        .collect()
}

fn parse_line(fx: &mut Fixture, n: usize, fields: &[&str]) {
    let num = |s: &str| numbers::<usize>(&[s], n)[0];
    match fields {
        ["param", name, dims @ ..] => {
            let name: &'static str = Box::leak(name.to_string().into_boxed_str());
            fx.params.push((name, numbers(dims, n)));
        }
        ["steps", s] => {
            fx.steps = num(s);
            fx.grads = vec![HashMap::new(); fx.steps];
        }
        ["init", name, v @ ..] => {
            fx.init.insert(name.to_string(), numbers(v, n));
        }
        ["grad", step, name, v @ ..] => {
            fx.grads[num(step) - 1].insert(name.to_string(), numbers(v, n));
        }
        ["config", id, optimizer, kv @ ..] => {
            let hyper = kv
                .iter()
                .map(|f| match f.split_once('=') {
                    Some((k, v)) => (k.to_string(), numbers::<f64>(&[v], n)[0]),
                    None => panic!("{FIXTURE}:{n}: `{f}` is not KEY=VALUE"),
                })
                .collect();
            let (id, optimizer) = (id.to_string(), optimizer.to_string());
            fx.configs.push(Config {
                id,
                optimizer,
                hyper,
            });
        }
        ["expect", id, dtype, step, name, v @ ..] => {
            let key = (
                id.to_string(),
                dtype.to_string(),
                num(step),
                name.to_string(),
            );
            fx.expect.insert(key, numbers(v, n));
        }
        _ => panic!("{FIXTURE}:{n}: unknown record `{}`", fields.join(" ")),
    }
}

fn fixture() -> Fixture {
    let text = std::fs::read_to_string(FIXTURE).expect("the committed optimizer fixture");
    let mut fx = Fixture::default();
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if !fields.is_empty() && !fields[0].starts_with('#') {
            parse_line(&mut fx, i + 1, &fields);
        }
    }
    assert!(fx.steps > 0 && !fx.params.is_empty() && !fx.configs.is_empty());
    fx
}

fn tensor<T: Float>(shape: &[usize], values: &[f64]) -> Tensor<T> {
    let data = values.iter().map(|&v| T::from_f64(v)).collect();
    Tensor::from_vec(shape, data).expect("fixture values fit their shape")
}

impl Fixture {
    fn net<T: Float>(&self) -> ParamsNet<T> {
        ParamsNet {
            names: self.params.iter().map(|(n, _)| *n).collect(),
            params: self
                .params
                .iter()
                .map(|(n, s)| tensor(s, &self.init[*n]))
                .collect(),
            grads: self.params.iter().map(|(_, s)| Tensor::zeros(s)).collect(),
        }
    }

    fn set_grads<T: Float>(&self, net: &mut ParamsNet<T>, step: usize) {
        for ((name, shape), g) in self.params.iter().zip(&mut net.grads) {
            *g = tensor(shape, &self.grads[step - 1][*name]);
        }
    }

    /// Replays every step; returns the parameters after each, `[step − 1][param]`, in f64.
    fn replay<T: Float, O: Optimizer<T>>(&self, mut opt: O) -> Vec<Vec<Vec<f64>>> {
        assert!(opt.check().is_ok());
        let mut net = self.net::<T>();
        (1..=self.steps)
            .map(|step| {
                self.set_grads(&mut net, step);
                opt.step(&mut net).unwrap();
                let params = net.params.iter();
                params
                    .map(|p| p.iter().map(|v| v.to_f64()).collect())
                    .collect()
            })
            .collect()
    }
}

fn run<T: Float>(fx: &Fixture, c: &Config) -> Vec<Vec<Vec<f64>>> {
    let h = |k: &str, default: f64| c.hyper.get(k).copied().unwrap_or(default);
    let lr = h("lr", f64::NAN);
    match c.optimizer.as_str() {
        "sgd" => fx.replay(
            Sgd::<T>::new(lr)
                .momentum(h("momentum", 0.0))
                .dampening(h("dampening", 0.0))
                .nesterov(h("nesterov", 0.0) != 0.0)
                .weight_decay(h("weight_decay", 0.0)),
        ),
        "adam" => fx.replay(
            Adam::<T>::new(lr)
                .betas(h("beta1", 0.9), h("beta2", 0.999))
                .eps(h("eps", 1e-8))
                .weight_decay(h("weight_decay", 0.0)),
        ),
        "adamw" => {
            let mut opt = AdamW::<T>::new(lr).betas(h("beta1", 0.9), h("beta2", 0.999));
            opt = opt.eps(h("eps", 1e-8));
            if let Some(&wd) = c.hyper.get("weight_decay") {
                opt = opt.weight_decay(wd); // otherwise PyTorch's default, 0.01
            }
            fx.replay(opt)
        }
        other => panic!("unknown optimizer `{other}` in the fixture"),
    }
}

/// Relative difference, guarded near zero.
fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

/// Compares one run with PyTorch's; returns the largest relative difference of the
/// parameters and of their changes θ_t − θ_0.
fn compare(fx: &Fixture, c: &Config, dtype: &str, got: &[Vec<Vec<f64>>]) -> (f64, f64) {
    let (mut worst_param, mut worst_delta) = (0.0f64, 0.0f64);
    for (step, params) in got.iter().enumerate() {
        for ((name, _), values) in fx.params.iter().zip(params) {
            let key = (c.id.clone(), dtype.to_string(), step + 1, name.to_string());
            let expected = &fx.expect[&key];
            let init = &fx.init[*name];
            assert_eq!(values.len(), expected.len());
            for ((&a, &b), &x0) in values.iter().zip(expected).zip(init) {
                worst_param = worst_param.max(rel(a, b));
                if dtype == "f64" {
                    worst_delta = worst_delta.max(rel(a - x0, b - x0));
                }
            }
        }
    }
    (worst_param, worst_delta)
}

#[test]
fn optimizers_match_pytorch() {
    let fx = fixture();
    let mut overall = (0.0f64, 0.0f64, 0.0f64);
    for c in &fx.configs {
        let (param, delta) = compare(&fx, c, "f64", &run::<f64>(&fx, c));
        println!(
            "{:<24} f64: parameters {param:.2e}, updates {delta:.2e}",
            c.id
        );
        assert!(
            param <= 1e-10,
            "{}: f64 parameters differ by {param:e}",
            c.id
        );
        assert!(delta <= 1e-10, "{}: f64 updates differ by {delta:e}", c.id);
        overall = (overall.0.max(param), overall.1.max(delta), overall.2);
        if fx
            .expect
            .contains_key(&(c.id.clone(), "f32".into(), 1, fx.params[0].0.into()))
        {
            let (param32, _) = compare(&fx, c, "f32", &run::<f32>(&fx, c));
            println!("{:<24} f32: parameters {param32:.2e}", c.id);
            assert!(
                param32 <= 1e-5,
                "{}: f32 parameters differ by {param32:e}",
                c.id
            );
            overall.2 = overall.2.max(param32);
        }
    }
    println!(
        "max relative difference: f64 parameters {:.2e}, f64 updates {:.2e}, f32 parameters {:.2e}",
        overall.0, overall.1, overall.2
    );
}

#[test]
fn warm_steps_do_not_allocate() {
    let fx = fixture();
    let mut net = fx.net::<f32>();
    fx.set_grads(&mut net, 1);
    let mut sgd = Sgd::new(0.1)
        .momentum(0.9)
        .nesterov(true)
        .weight_decay(1e-4);
    let mut adam = Adam::new(1e-3).weight_decay(1e-2);
    let mut adamw = AdamW::new(1e-3);
    let mut plain = Sgd::new(0.1);
    sgd.step(&mut net).unwrap();
    adam.step(&mut net).unwrap();
    adamw.step(&mut net).unwrap();
    let n = allocations(|| {
        for _ in 0..3 {
            sgd.step(&mut net).unwrap();
            adam.step(&mut net).unwrap();
            adamw.step(&mut net).unwrap();
            plain.step(&mut net).unwrap();
        }
    });
    assert_eq!(n, 0, "warm optimizer steps allocated {n} times");

    let logits = Tensor::<f32>::zeros(&[4, 3]);
    let mut grad = Tensor::zeros(&[4, 3]);
    let n = allocations(|| {
        loss::softmax_cross_entropy(&logits, &[0, 1, 2, 0], &mut grad).unwrap();
        loss::mse(&logits, &logits, &mut grad).unwrap();
        loss::binary_cross_entropy_with_logits(&logits, &logits, &mut grad).unwrap();
    });
    assert_eq!(
        n, 0,
        "losses with a warm gradient buffer allocated {n} times"
    );
}

/// One step of a fresh optimizer on `net`, with the fixture's first gradients.
fn fresh_step(fx: &Fixture, opt: &mut Adam<f64>, net: &mut ParamsNet<f64>) -> Vec<f64> {
    fx.set_grads(net, 1);
    opt.step(net).unwrap();
    net.params.iter().flat_map(|p| p.iter().copied()).collect()
}

#[test]
fn state_follows_parameter_names() {
    let fx = fixture();
    let mut reference = fx.net::<f64>();
    let expected = fresh_step(&fx, &mut Adam::new(1e-2), &mut reference);

    // An optimizer warmed on another network (other names, fewer parameters) treats this
    // one as new: the same result as a fresh optimizer, and no panic.
    let mut other = fx.net::<f64>();
    other.names = vec!["a", "b"];
    other.params.truncate(2);
    other.grads.truncate(2);
    let mut opt = Adam::new(1e-2);
    fresh_step(&fx, &mut opt, &mut other);
    let mut net = fx.net::<f64>();
    assert_eq!(fresh_step(&fx, &mut opt, &mut net), expected);

    // reset_state forgets the moments.
    let mut net = fx.net::<f64>();
    opt.reset_state();
    assert_eq!(fresh_step(&fx, &mut opt, &mut net), expected);
}

#[test]
fn set_lr_takes_effect_and_inference_picks_the_scalar() {
    let fx = fixture();
    let mut net = fx.net::<f64>();
    fx.set_grads(&mut net, 1);
    let mut opt = Sgd::new(0.5); // Sgd<f64>, inferred from the network
    opt.set_lr(0.25);
    assert_eq!(opt.lr(), 0.25);
    let before = net.params[1].as_slice().to_vec();
    opt.step(&mut net).unwrap();
    for ((a, b), g) in net.params[1].iter().zip(&before).zip(net.grads[1].iter()) {
        assert_eq!(*a, b - 0.25 * g);
    }
}

/// `opt` holds an invalid hyperparameter: `step` and `backward_step` return `message` and
/// leave every parameter as it was.
fn refused<O: Optimizer<f64>>(mut opt: O, message: &str) {
    let fx = fixture();
    let mut net = fx.net::<f64>();
    fx.set_grads(&mut net, 1);
    let before = net.params.clone();
    let e = opt.step(&mut net).expect_err(message);
    assert_eq!(e.to_string(), message);
    assert_eq!(net.params, before, "{message}: step changed a parameter");
    let e = opt.backward_step(&mut net, &[]).expect_err(message);
    assert_eq!(e.to_string(), message);
    assert_eq!(
        net.params, before,
        "{message}: backward_step changed a parameter"
    );
}

#[test]
fn invalid_hyperparameters_fail_at_step_and_change_nothing() {
    refused(Adam::new(-1.0), "Invalid learning rate: -1");
    refused(Sgd::new(f64::NAN), "Invalid learning rate: NaN");
    refused(AdamW::new(f64::INFINITY), "Invalid learning rate: inf");
    let betas = |b1, b2| AdamW::new(1e-3).betas(b1, b2);
    refused(betas(0.9, 1.0), "Invalid beta parameter at index 1: 1");
    refused(
        betas(-0.1, 0.999),
        "Invalid beta parameter at index 0: -0.1",
    );
    refused(
        betas(f64::NAN, 0.999),
        "Invalid beta parameter at index 0: NaN",
    );
    refused(Adam::new(1e-3).eps(-1.0), "Invalid epsilon value: -1");
    refused(
        Adam::new(1e-3).weight_decay(f64::INFINITY),
        "Invalid weight_decay value: inf",
    );
    refused(
        AdamW::new(1e-3).weight_decay(-0.01),
        "Invalid weight_decay value: -0.01",
    );
    refused(Sgd::new(0.1).momentum(-0.9), "Invalid momentum value: -0.9");
    refused(
        Sgd::new(0.1).weight_decay(-1e-4),
        "Invalid weight_decay value: -0.0001",
    );
    refused(
        Sgd::new(0.1).momentum(0.9).dampening(f64::NAN),
        "Invalid dampening value: NaN",
    );
    // Plain SGD otherwise: `backward_step` takes the fused path, which checks only the
    // learning rate by itself.
    refused(
        Sgd::new(0.1).nesterov(true),
        "Nesterov momentum requires a momentum and zero dampening",
    );
    refused(
        Sgd::new(0.1).dampening(f64::NAN),
        "Invalid dampening value: NaN",
    );
}

#[test]
fn a_refused_step_keeps_the_state() {
    // A schedule sets a bad learning rate after two good steps: the step fails, and once
    // the rate is good again the run goes on exactly as if the failed step never was.
    let fx = fixture();
    let (mut a, mut b) = (fx.net::<f64>(), fx.net::<f64>());
    let (mut oa, mut ob) = (Adam::new(1e-2), Adam::new(1e-2));
    for step in 1..=2 {
        fx.set_grads(&mut a, step);
        fx.set_grads(&mut b, step);
        oa.step(&mut a).unwrap();
        ob.step(&mut b).unwrap();
    }
    fx.set_grads(&mut a, 3);
    fx.set_grads(&mut b, 3);
    oa.set_lr(-1e-2);
    let before = a.params.clone();
    assert!(oa.step(&mut a).is_err());
    assert_eq!(a.params, before);
    oa.set_lr(1e-2);
    oa.step(&mut a).unwrap();
    ob.step(&mut b).unwrap();
    assert_eq!(
        a.params, b.params,
        "the failed step changed the moments or counts"
    );
}
