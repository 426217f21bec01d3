//! `examples/bench.rs --model …`: every layer network of `models_peer.py` builds, trains
//! (its loss falls over a few steps from about ln 10) and prints the peer's JSON fields;
//! `--model` and `--sizes` exclude each other and an unknown model is a usage error that
//! lists the models. Tiny batches and step counts: the timing itself is not tested.

#[allow(dead_code)]
#[path = "../examples/bench.rs"]
mod bench;

fn parse(args: &[&str]) -> Result<bench::Config, String> {
    bench::parse_args(args).map(|c| c.expect("not --help"))
}

#[test]
fn every_model_learns() {
    for m in bench::model_names() {
        let c = parse(&["--model", m, "--batch", "4", "--check", "3"]).unwrap();
        let losses = bench::check_config(&c, 3)
            .expect("every model is compiled in")
            .unwrap_or_else(|e| panic!("{m}: {e}"));
        assert_eq!(losses.len(), 4, "{m}: {losses:?}");
        assert!(losses.iter().all(|l| l.is_finite()), "{m}: {losses:?}");
        // A fresh classifier of 10 classes starts near ln 10 = 2.303.
        assert!((losses[0] - 10f64.ln()).abs() < 0.5, "{m}: {losses:?}");
        assert!(
            losses.windows(2).all(|w| w[1] < w[0]),
            "{m}: the loss does not fall: {losses:?}"
        );
    }
}

/// The value of `"key": value` in a one-line JSON object (numbers and plain strings).
fn field<'a>(json: &'a str, key: &str) -> &'a str {
    let pat = format!("\"{key}\": ");
    let start = json
        .find(&pat)
        .unwrap_or_else(|| panic!("no `{key}` in {json}"))
        + pat.len();
    let rest = &json[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim_matches('"')
}

#[test]
fn timed_json_has_the_peer_fields() {
    for m in bench::model_names() {
        let args = [
            "--model",
            m,
            "--batch",
            "2",
            "--steps",
            "1",
            "--repeats",
            "1",
            "--warmup",
            "1",
        ];
        let c = parse(&args).unwrap();
        let line = bench::run(&c, false)
            .expect("every model is compiled in")
            .unwrap_or_else(|e| panic!("{m}: {e}"));
        assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
        assert_eq!(field(&line, "peer"), "bp");
        assert_eq!(field(&line, "model"), m);
        assert_eq!(field(&line, "batch"), "2");
        assert_eq!(field(&line, "threads"), "1");
        let num = |k: &str| -> f64 {
            field(&line, k)
                .parse()
                .unwrap_or_else(|_| panic!("{k}: {line}"))
        };
        let sec = num("sec_per_step");
        assert!(sec > 0.0, "{line}");
        assert!((num("samples_per_sec") * sec - 2.0).abs() < 1e-6, "{line}");
        // Warm-up 1 + timed 1 step: the loss has moved down from its start.
        assert!(num("loss_last") < num("loss_first"), "{line}");
    }
}

#[test]
fn model_options() {
    let c = parse(&["--model", "lenet"]).unwrap();
    assert_eq!(c.model, Some(bench::Model::Lenet));
    // models_peer.py's defaults.
    assert_eq!((c.batch, c.min_time, c.repeats), (32, 1.0, 5));
    assert_eq!(c.loss, bench::Loss::Ce);
    let c = parse(&[
        "--model=cifar",
        "--batch",
        "64",
        "--min-time",
        "0.5",
        "--repeats",
        "2",
    ])
    .unwrap();
    assert_eq!(c.model, Some(bench::Model::Cifar));
    assert_eq!((c.batch, c.min_time, c.repeats), (64, 0.5, 2));
    // The MLP keeps its own defaults.
    let c = parse(&[]).unwrap();
    assert_eq!(c.model, None);
    assert_eq!(c.sizes, [784, 128, 10]);
    assert_eq!((c.batch, c.min_time, c.repeats), (64, 2.0, 3));

    let e = parse(&["--model", "resnet"]).unwrap_err();
    for m in bench::model_names() {
        assert!(e.contains(m), "{e}");
    }
    assert!(parse(&["--model", "lstm", "--sizes", "2,8,1"])
        .unwrap_err()
        .contains("exclusive"));
    assert!(parse(&["--sizes", "2,8,1", "--model", "lstm"]).is_err());
    assert!(parse(&["--model", "lstm", "--init", "x.safetensors"]).is_err());
    assert!(parse(&["--model", "lstm", "--loss", "mse"]).is_err());
    assert!(parse(&["--model", "gru", "--batch", "0"]).is_err());
    assert!(parse(&["--model"]).is_err());
}
