//! `predict` takes `&self`: eight threads share one network and call it thousands of times
//! on different batches, and every answer must equal, bit for bit, the one computed on a
//! single thread before. The network mixes the families whose evaluation reads state
//! (batch norm's running statistics, dropout's evaluation identity) with convolution and
//! pooling, and its large product is split over the GEMM worker pool, which concurrent
//! callers find busy (they then run their parts on their own thread).

mod common;
use bp::{Network, Tensor};
use common::random_f32;

bp::network! {
    struct Shared {
        input img: [2, 8, 8];
        let c = conv2d(img, 4, kernel = 3, padding = 1);
        let n = batch_norm(c);
        let p = max_pool2d(relu(n), 2);
        let d = dropout(flatten(p), 0.3);
        let fc1 = linear(d, 512);
        let h = tanh(fc1);
        let out = linear(h, 3);
        output out;
    }
}

const THREADS: usize = 8;
const CALLS_PER_THREAD: usize = 400;
const BATCHES: usize = 16;

#[test]
fn predict_from_eight_threads_matches_one_thread() {
    bp::kernels::set_threads(2);
    let mut net = Shared::new(3);
    // A few training steps so the running statistics are not the initial ones.
    for seed in 0..3 {
        let x = random_f32(&[6, 2, 8, 8], -1.0, 1.0, 100 + seed);
        net.forward(&x).unwrap();
    }
    net.set_training(false);
    let batches: Vec<Tensor> = (0..BATCHES)
        .map(|i| random_f32(&[1 + i % 5 * 10, 2, 8, 8], -2.0, 2.0, i as u64))
        .collect();
    let expected: Vec<Tensor> = batches.iter().map(|x| net.predict(x).unwrap()).collect();

    let net = &net;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (batches, expected) = (&batches, &expected);
            s.spawn(move || {
                for call in 0..CALLS_PER_THREAD {
                    let i = (call * 7 + t * 3) % BATCHES;
                    let got = net.predict(&batches[i]).unwrap();
                    assert_eq!(got.shape(), expected[i].shape());
                    assert!(
                        got.iter()
                            .zip(expected[i].iter())
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "thread {t}, call {call}, batch {i}: a different answer"
                    );
                }
            });
        }
    });
    bp::kernels::set_threads(1);
}
