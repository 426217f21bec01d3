//! `examples/bench.rs --check 5` from the peers' shared start (`dump_init.py`'s state, in
//! tests/fixtures/bench/, made by tools/make_bench_fixtures.py) gives PyTorch's losses
//! (`mlp_torch.py --check 5`) within 1e-4: bp does the same work as the peers.

#[allow(dead_code)]
#[path = "../examples/bench.rs"]
mod bench;

use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bench")
        .join(name)
}

fn check(name: &str, sizes: &str) {
    let init = fixture(&format!("{name}.safetensors"));
    let args = ["--sizes", sizes, "--check", "5", "--init"];
    let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    args.push(init.display().to_string());
    let c = bench::parse_args(&args).unwrap().unwrap();
    let ours = bench::check_config(&c, 5)
        .expect("a supported configuration")
        .unwrap();
    let text = std::fs::read_to_string(fixture(&format!("{name}.torch_losses.txt"))).unwrap();
    let torch: Vec<f64> = text.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(ours.len(), 6, "{name}: {ours:?}");
    assert_eq!(torch.len(), 6, "{name}: {torch:?}");
    for (i, (a, b)) in ours.iter().zip(&torch).enumerate() {
        assert!(
            (a - b).abs() <= 1e-4,
            "{name}: loss {i} is {a} in bp and {b} in PyTorch\nbp:    {ours:?}\ntorch: {torch:?}"
        );
    }
    // The steps did something: the loss falls.
    assert!(ours[5] < ours[0], "{name}: {ours:?}");
}

#[test]
fn medium_matches_pytorch() {
    check("medium", "784,128,10");
}

#[test]
fn tiny_matches_pytorch() {
    check("tiny", "2,8,1");
}

#[test]
fn options_and_unsupported_sizes() {
    let c = bench::parse_args(&["--sizes", "2,8,1", "--batch=1"])
        .unwrap()
        .unwrap();
    assert_eq!(c.loss, bench::Loss::Mse);
    assert_eq!(c.batch, 1);
    assert!(bench::parse_args(&["--sizes", "2,8,1", "--loss", "ce"]).is_err());
    assert!(bench::parse_args(&["--bogus", "1"]).is_err());
    assert!(bench::parse_args(&["--help"]).unwrap().is_none());
    let odd = bench::parse_args(&["--sizes", "3,4,5"]).unwrap().unwrap();
    assert!(bench::check_config(&odd, 1).is_none());
}
