//! The benchmark networks, shared by `examples/bench.rs` (one training step) and
//! `examples/infer.rs` (batch-1 inference), each written with `bp::network!` as a user
//! would, in PyTorch's layouts and default initialization.
//!
//! ```text
//! Tiny     [2]          2 → 8 relu → 1                               (MLP "tiny")
//! Small    [64]         64 → 32 relu → 10                            (MLP "small")
//! Medium   [784]        784 → 128 relu → 10       (MLP "medium"; the `mnist` example's network)
//! Large    [784]        784 → 1024 relu → 1024 relu → 10             (MLP "large")
//! LeNet    [1, 28, 28]  models_peer.py's `lenet` (the `cnn` example's network)
//! RowLstm  [28, 28]     models_peer.py's `lstm` (the `lstm` example's network)
//! RowGru   [28, 28]     models_peer.py's `gru`
//! Lstm100  [100, 32]    models_peer.py's `lstm100`
//! Cifar    [3, 32, 32]  models_peer.py's `cifar`
//! ```
//!
//! Also the pinning both do: [`pin_to_first`].
//!
//! An example includes it with `mod nets;` (a test that includes such an example by
//! `#[path]` loads it again from here). Each user needs only some of the networks.
#![allow(dead_code)]

bp::network! {
    /// tiny: 2 → 8 relu → 1.
    pub struct Tiny {
        input x: [2];
        let fc0 = linear(x, 8);
        let h0 = relu(fc0);
        let fc1 = linear(h0, 1);
        output fc1;
    }
}

bp::network! {
    /// small: 64 → 32 relu → 10.
    pub struct Small {
        input x: [64];
        let fc0 = linear(x, 32);
        let h0 = relu(fc0);
        let fc1 = linear(h0, 10);
        output fc1;
    }
}

bp::network! {
    /// medium: 784 → 128 relu → 10.
    pub struct Medium {
        input x: [784];
        let fc0 = linear(x, 128);
        let h0 = relu(fc0);
        let fc1 = linear(h0, 10);
        output fc1;
    }
}

bp::network! {
    /// large: 784 → 1024 relu → 1024 relu → 10.
    pub struct Large {
        input x: [784];
        let fc0 = linear(x, 1024);
        let h0 = relu(fc0);
        let fc1 = linear(h0, 1024);
        let h1 = relu(fc1);
        let fc2 = linear(h1, 10);
        output fc2;
    }
}

bp::network! {
    /// lenet: the `cnn` example's LeNet (models_peer.py's `lenet`).
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
        let fc2 = linear(h, 10);                              // [10]
        output fc2;
    }
}

bp::network! {
    /// lstm: an LSTM of 64 units over 28 steps of 28 features, the last state → 10.
    pub struct RowLstm {
        input x: [28, 28];
        let lstm = lstm(x, hidden = 64); // [28, 64]
        let h = last(lstm);              // [64]
        let fc = linear(h, 10);          // [10]
        output fc;
    }
}

bp::network! {
    /// gru: a GRU of 64 units over 28 steps of 28 features, the last state → 10.
    pub struct RowGru {
        input x: [28, 28];
        let gru = gru(x, hidden = 64); // [28, 64]
        let h = last(gru);             // [64]
        let fc = linear(h, 10);        // [10]
        output fc;
    }
}

bp::network! {
    /// lstm100: an LSTM of 128 units over 100 steps of 32 features, the last state → 10.
    pub struct Lstm100 {
        input x: [100, 32];
        let lstm = lstm(x, hidden = 128); // [100, 128]
        let h = last(lstm);               // [128]
        let fc = linear(h, 10);           // [10]
        output fc;
    }
}

bp::network! {
    /// cifar: two 3×3 convolutions with relu and max pooling, then 4096 → 128 → 10.
    pub struct Cifar {
        input x: [3, 32, 32];
        let conv1 = conv2d(x, 32, kernel = 3, padding = 1);  // [32, 32, 32]
        let p1 = max_pool2d(relu(conv1), 2);                 // [32, 16, 16]
        let conv2 = conv2d(p1, 64, kernel = 3, padding = 1); // [64, 16, 16]
        let p2 = max_pool2d(relu(conv2), 2);                 // [64, 8, 8]
        let fc1 = linear(flatten(p2), 128);                  // [128]
        let h = relu(fc1);
        let fc2 = linear(h, 10);                             // [10]
        output fc2;
    }
}

/// Pins the process (and the threads it starts later) to CPUs 0..n with `taskset`, as
/// the peers pin themselves; false when `taskset` is missing or fails.
pub fn pin_to_first(n: usize) -> bool {
    std::process::Command::new("taskset")
        .args([
            "-pc",
            &format!("0-{}", n - 1),
            &std::process::id().to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
