//! The examples' own code, run by `cargo test`: the XOR network learns all four points
//! for seeds 0..=9, the digits example reaches its 95% with its full training, the
//! MNIST example trains and evaluates end to end (3 of its 20 epochs), and the inference
//! benchmark (`examples/infer.rs`) runs every model once, with `predict` and
//! `predict_into` agreeing bit for bit, and prints its JSON fields (the timing itself is
//! not tested).

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

#[path = "../examples/infer.rs"]
#[allow(dead_code)]
mod infer;

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

#[test]
fn infer_runs_every_model_and_prints_its_fields() {
    for m in infer::Model::ALL {
        let args = [
            "--model",
            m.name(),
            "--min-time",
            "0.001",
            "--repeats",
            "1",
            "--warmup",
            "2",
        ];
        let c = infer::parse_args(&args).unwrap().expect("not --help");
        // `run` refuses to time when predict and predict_into disagree.
        let line = infer::run(&c, false).unwrap_or_else(|e| panic!("{}: {e}", m.name()));
        for field in [
            "\"peer\": \"bp\"",
            &format!("\"model\": \"{}\"", m.name()),
            "\"batch\": 1",
            "\"threads\": 1",
            "\"sec_per_call\": ",
            "\"calls_per_sec\": ",
            "\"predict_sec_per_call\": ",
        ] {
            assert!(line.contains(field), "no {field} in {line}");
        }
    }
    assert!(infer::parse_args(&["--model", "gru"]).is_err());
    assert!(infer::parse_args::<&str>(&[]).is_err());
}
