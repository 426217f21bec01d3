//! The examples' own code, run by `cargo test`: the XOR network learns all four points
//! for seeds 0..=9, the digits example reaches its 95% with its full training, and the
//! MNIST example trains and evaluates end to end (3 of its 20 epochs).

// Each example is a crate of its own with `mod common;`; included side by side here, each
// loads `examples/common/mod.rs` again, as it does when built alone.
#![allow(clippy::duplicate_mod)]

#[path = "../examples/xor.rs"]
#[allow(dead_code)]
mod xor;

#[path = "../examples/digits.rs"]
#[allow(dead_code)]
mod digits;

#[path = "../examples/mnist.rs"]
#[allow(dead_code)]
mod mnist;

#[test]
fn xor_learns_all_four_points_for_seeds_0_to_9() {
    for seed in 0..=9 {
        assert_eq!(xor::run(seed, 500).unwrap(), 1.0, "seed {seed}");
    }
}

#[test]
fn digits_reaches_95_percent() {
    let accuracy = digits::run(0, 100).unwrap();
    assert!(accuracy >= 0.95, "test accuracy {accuracy}");
}

#[test]
fn mnist_trains_and_evaluates() {
    let accuracy = mnist::run(0, 3).unwrap();
    assert!(accuracy >= 0.90, "test accuracy {accuracy}");
}
