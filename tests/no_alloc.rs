//! Once warm, a training step (forward + loss + backward + optimizer step) allocates
//! nothing on the heap, for batch sizes 64, 64, 17, 64: buffers sized for the largest
//! batch are reused for smaller ones.
//!
//! A counting global allocator, counting only on the thread that opts in; this file is
//! its own test binary, so no other test shares the allocator.

use bp::loss::softmax_cross_entropy;
use bp::optim::{Adam, Optimizer, Sgd};
use bp::Tensor;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter touches
// only a const-initialized thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded with the caller's layout, as the GlobalAlloc contract requires.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: `ptr` was allocated by `System` with this layout.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn note() {
    let _ = COUNTING.try_with(|c| {
        if c.get() {
            let _ = ALLOCATIONS.try_with(|a| a.set(a.get() + 1));
        }
    });
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    ALLOCATIONS.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(|a| a.get())
}

bp::network! {
    struct Mlp {
        input x: [20];
        let fc1 = linear(x, 32);
        let h = gelu(fc1) * 0.5 + relu(fc1);
        let fc2 = linear(h, 10);
        output fc2;
    }
}

fn batch(n: usize, seed: u64) -> (Tensor, Vec<usize>) {
    let mut rng = bp::rng::Rng::new(seed);
    let x = (0..n * 20).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
    let y = (0..n).map(|_| rng.below(10)).collect();
    (Tensor::from_vec(&[n, 20], x).unwrap(), y)
}

fn train_step<O: Optimizer<f32>>(
    net: &mut Mlp,
    opt: &mut O,
    x: &Tensor,
    y: &[usize],
    grad: &mut Tensor,
) {
    let logits = net.forward(x).unwrap();
    softmax_cross_entropy(logits, y, grad).unwrap();
    // backward + step, or for plain SGD the fused backward_sgd.
    opt.backward_step(net, &[&*grad]).unwrap();
}

fn check<O: Optimizer<f32>>(mut opt: O) {
    let mut net = Mlp::new(0);
    let mut grad = Tensor::default();
    let batches: Vec<_> = [64, 64, 17, 64]
        .iter()
        .enumerate()
        .map(|(i, &n)| batch(n, i as u64))
        .collect();
    let (x, y) = &batches[0];
    train_step(&mut net, &mut opt, x, y, &mut grad);
    for (x, y) in &batches {
        let n = allocations(|| train_step(&mut net, &mut opt, x, y, &mut grad));
        assert_eq!(
            n,
            0,
            "a warm training step at batch {} allocated {n} time(s)",
            x.shape()[0]
        );
    }
}

#[test]
fn warm_training_steps_do_not_allocate() {
    // The counter works: a Vec allocates.
    assert!(allocations(|| drop(std::hint::black_box(vec![1u8; 10]))) > 0);
    check(Sgd::new(0.1));
    check(Sgd::new(0.1).momentum(0.9));
    check(Adam::new(1e-3));
}

bp::network! {
    /// The layers of the derivation's exercises: conv, batch norm, dropout, LSTM.
    struct Layers {
        input img: [1, 8, 8];
        let c = conv2d(img, 4, kernel = 3, padding = 1);
        let bn = batch_norm(c);
        let p = max_pool2d(relu(bn), 2);
        let seq = flatten(p);
        let rows = linear(dropout(seq, 0.2), 24);
        let out = linear(rows, 10);
        output out;
    }
}

bp::network! {
    struct Recurrent {
        input x: [6, 5];
        let l = lstm(x, hidden = 8);
        let g = gru(l, hidden = 6);
        let out = linear(last(g), 10);
        output out;
    }
}

fn warm_steps_allocate_nothing<N, O>(mut net: N, mut opt: O, per_sample: &[usize])
where
    N: bp::Network<Scalar = f32>,
    O: Optimizer<f32>,
{
    let mut grad = Tensor::default();
    let make = |n: usize, seed: u64| {
        let mut shape = vec![n];
        shape.extend_from_slice(per_sample);
        let len: usize = shape.iter().product();
        let mut rng = bp::rng::Rng::new(seed);
        let x = Tensor::from_vec(
            &shape,
            (0..len).map(|_| rng.uniform(-1.0, 1.0) as f32).collect(),
        )
        .unwrap();
        let y: Vec<usize> = (0..n).map(|_| rng.below(10)).collect();
        (x, y)
    };
    let batches: Vec<_> = [64, 64, 17, 64]
        .iter()
        .enumerate()
        .map(|(i, &n)| make(n, i as u64))
        .collect();
    let step = |net: &mut N, opt: &mut O, x: &Tensor, y: &[usize], grad: &mut Tensor| {
        net.forward_dyn(&[x]).unwrap();
        softmax_cross_entropy(net.output(0).unwrap(), y, grad).unwrap();
        opt.backward_step(net, &[&*grad]).unwrap();
    };
    step(&mut net, &mut opt, &batches[0].0, &batches[0].1, &mut grad);
    for (x, y) in &batches {
        let n = allocations(|| step(&mut net, &mut opt, x, y, &mut grad));
        assert_eq!(
            n,
            0,
            "a warm step at batch {} allocated {n} time(s)",
            x.shape()[0]
        );
    }
}

#[test]
fn conv_batch_norm_dropout_and_recurrent_steps_do_not_allocate() {
    warm_steps_allocate_nothing(Layers::new(0), Adam::new(1e-3), &[1, 8, 8]);
    warm_steps_allocate_nothing(Recurrent::new(0), Adam::new(1e-3), &[6, 5]);
    warm_steps_allocate_nothing(Layers::new(0), Sgd::new(0.01), &[1, 8, 8]);
    warm_steps_allocate_nothing(Recurrent::new(0), Sgd::new(0.01), &[6, 5]);
}
