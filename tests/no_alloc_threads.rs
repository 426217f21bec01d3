//! A warm training step on two threads allocates nothing, on any thread: the matrix
//! products, and the batch of convolution, batch norm and pooling, are split over bp's
//! worker pool, whose hand-off is one pointer and one atomic word; each part's scratch
//! is a piece of the network's workspace. The allocator here counts every thread's allocations, so this file holds
//! a single test (nothing else runs in the process while it counts).
//!
//! The count is process-wide, so the file is a `harness = false` test with its own `main`:
//! under libtest the harness's main thread keeps allocating (its bookkeeping of the
//! running test) after it has spawned the test thread, and on a loaded machine that can
//! fall inside the counted window (seen: 'left: 4' once in 20 runs beside a build).

use bp::loss::softmax_cross_entropy;
use bp::optim::{Optimizer, Sgd};
use bp::Tensor;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` unchanged; the counter is an atomic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

bp::network! {
    /// The benchmark's medium network: its products (64×128×784) are split over threads.
    struct Medium {
        input x: [784];
        let fc1 = linear(x, 128);
        let h = relu(fc1);
        let fc2 = linear(h, 10);
        output fc2;
    }
}

bp::network! {
    /// Convolution, batch norm and pooling large enough at batch 64 to split the batch.
    struct Layers {
        input img: [3, 16, 16];
        let c = conv2d(img, 8, kernel = 3, padding = 1);
        let bn = batch_norm(c);
        let p = max_pool2d(relu(bn), 2);
        let q = avg_pool2d(p, 2);
        let out = linear(flatten(q), 10);
        output out;
    }
}

bp::network! {
    /// A recurrent layer whose products are split over the threads.
    struct Recurrent {
        input x: [20, 16];
        let l = lstm(x, hidden = 32);
        let out = linear(last(l), 10);
        output out;
    }
}

/// 50 warm 2-thread steps of `net` (plain SGD, then momentum) allocate nothing.
fn layer_steps<N: bp::Network<Scalar = f32>>(mut net: N, per_sample: &[usize]) {
    bp::kernels::set_threads(2);
    let n = 64;
    let mut shape = vec![n];
    shape.extend_from_slice(per_sample);
    let len: usize = shape.iter().product();
    let mut rng = bp::rng::Rng::new(11);
    let x: Vec<f32> = (0..len).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
    let x = Tensor::from_vec(&shape, x).unwrap();
    let y: Vec<usize> = (0..n).map(|_| rng.below(10)).collect();
    let mut grad = Tensor::default();
    for mut opt in [Sgd::new(0.01), Sgd::new(0.01).momentum(0.9)] {
        let mut step = |net: &mut N| {
            net.forward_dyn(&[&x]).unwrap();
            softmax_cross_entropy(net.output(0).unwrap(), &y, &mut grad).unwrap();
            opt.backward_step(net, &[&grad]).unwrap();
        };
        for _ in 0..50 {
            step(&mut net);
        }
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        for _ in 0..30 {
            step(&mut net);
        }
        let allocated = ALLOCATIONS.load(Ordering::Relaxed) - before;
        assert_eq!(
            allocated,
            0,
            "30 warm 2-thread steps of {} allocated {allocated} time(s)",
            std::any::type_name::<N>()
        );
    }
    bp::kernels::set_threads(1);
}

/// Run by `main`: this file is a `harness = false` test (see the module docs).
fn warm_two_thread_steps_allocate_nothing_on_any_thread() {
    // Plain SGD takes the fused backward (the bench's path), momentum backward + step.
    two_thread_steps(Sgd::new(0.01));
    two_thread_steps(Sgd::new(0.01).momentum(0.9));
}

fn two_thread_steps(mut opt: Sgd<f32>) {
    bp::kernels::set_threads(2);
    let mut rng = bp::rng::Rng::new(7);
    let n = 64;
    let x: Vec<f32> = (0..n * 784)
        .map(|_| rng.uniform(-1.0, 1.0) as f32)
        .collect();
    let x = Tensor::from_vec(&[n, 784], x).unwrap();
    let y: Vec<usize> = (0..n).map(|_| rng.below(10)).collect();
    let mut net = Medium::new(0);
    let mut grad = Tensor::default();
    let mut step = |net: &mut Medium| {
        let logits = net.forward(&x).unwrap();
        let loss = softmax_cross_entropy(logits, &y, &mut grad).unwrap();
        opt.backward_step(net, &[&grad]).unwrap();
        loss
    };
    let first = step(&mut net);
    // Warm: each thread's packing buffers grow the first time it runs a part of each
    // product, and which thread claims a part is decided at run time, so warm up long
    // enough for both threads to have run every kind of part.
    for _ in 0..100 {
        step(&mut net);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let mut last = first;
    for _ in 0..50 {
        last = step(&mut net);
    }
    let allocated = ALLOCATIONS.load(Ordering::Relaxed) - before;
    bp::kernels::set_threads(1);
    assert_eq!(
        allocated, 0,
        "50 warm 2-thread steps allocated {allocated} time(s)"
    );
    assert!(
        last < first,
        "training on one batch lowers its loss: {first} -> {last}"
    );
}

fn main() {
    warm_two_thread_steps_allocate_nothing_on_any_thread();
    println!("test warm_two_thread_steps_allocate_nothing_on_any_thread ... ok");
    layer_steps(Layers::new(0), &[3, 16, 16]);
    layer_steps(Recurrent::new(0), &[20, 16]);
    println!("test warm_two_thread_layer_steps_allocate_nothing ... ok");
}
