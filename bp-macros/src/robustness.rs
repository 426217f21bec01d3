//! Wrong networks give compile errors, never a panic of the macro: every case below must
//! expand to `compile_error!`s (or a syntax error), with no panic.

use proc_macro2::TokenStream;

fn errors(src: &str) -> Result<String, String> {
    let input: TokenStream = src
        .parse()
        .map_err(|e| format!("{src}: does not lex: {e}"))?;
    let out = match crate::expand(input) {
        Ok(ts) => ts.to_string(),
        Err(e) => e.to_compile_error().to_string(),
    };
    if out.contains("compile_error") {
        Ok(out)
    } else {
        Err(format!("no error for: {src}"))
    }
}

/// Wrong items in a network over `x: [4]`, `img: [2, 6, 6]`, `seq: [5, 3]`.
const WRONG_ITEMS: &[&str] = &[
    "let y = linear(x, 10, bias = 1); output y;",
    "let y = x.relu(); output y;",
    "let y = relu(); output y;",
    "let y = concat(x); output y;",
    "let y = concat(x, x, dim = 5); output y;",
    "let y = pow(x, x); output y;",
    "let y = softmax(x, dim = 0); output y;",
    "let y = x[0]; output y;",
    "let a = relu(b); let b = relu(x); output a;",
    "let y = 2.0; output y;",
    "let y = conv2d(img, 4); output y;",
    "let y = conv2d(img, 4, kernel = 0); output y;",
    "let y = conv2d(img, 4, kernel = 3, stride = 0); output y;",
    "let y = conv2d(img, 4, 3, kernel = 3); output y;",
    "let y = conv2d(x, 4, kernel = 3); output y;",
    "let y = max_pool2d(img); output y;",
    "let y = max_pool2d(img, 7); output y;",
    "let y = avg_pool2d(seq, 2); output y;",
    "let y = lstm(seq, hidden = 0); output y;",
    "let y = gru(x, hidden = 3); output y;",
    "let y = rnn(seq, 4); output y;",
    "let y = batch_norm(x, momentum = -1.0); output y;",
    "let y = batch_norm(x, eps = 0); output y;",
    "let y = layer_norm(sum(x)); output y;",
    "let y = dropout(x); output y;",
    "let y = dropout(x, 0.5, p = 0.5); output y;",
    "let y = last(x); output y;",
    "let y = flatten(); output y;",
    "let y = linear(sum(x), 3); output y;",
    "let y = linear(x, 3) + linear(x, 3); output y;",
    "let y = lstm(lstm(seq, hidden = 2), hidden = 2); output y;",
    "let y = x + img; output y;",
    "let y = min(x); output y;",
    "let y = leaky_relu(x, slope = x); output y;",
    "let y = relu(x); output y, y;",
    "let y = relu(x); output x;",
    "let y = relu(x);",
    "output nothing;",
    "param w: [3] = foo; let y = x; output y;",
    "param w: [3] = uniform(1.0, 0.0); let y = x; output y;",
    "param w: [3] = normal(-1.0); let y = x; output y;",
    "let y = x; let y = x; output y;",
    // Out-of-range numbers (issue 9): each an error at the token, no overflow panic.
    "let y = x * 1e400; output y;",
    "let y = x * -1e400; output y;",
    "param w: [3] = 1e400; let y = x; output y;",
    "param w: [3] = normal(1e400); let y = x; output y;",
    "let y = leaky_relu(x, slope = 1e400); output y;",
    "let y = pow(x, 1e400); output y;",
    "let y = linear(x, 18446744073709551615); output y;",
    "let y = linear(x, 4294967297); output y;",
    "let y = linear(x, 4294967296); output y;",
    "let y = conv2d(img, 4, kernel = 3, padding = 9223372036854775808); output y;",
    "let y = conv2d(img, 4, kernel = 3, padding = 4294967296); output y;",
    "let y = conv2d(img, 65536, kernel = 3, padding = 4294967295); output y;",
    "let y = lstm(seq, hidden = 4294967296); output y;",
    "let y = concat(x, x, dim = 18446744073709551615); output y;",
    "let y = max_pool2d(img, 18446744073709551615); output y;",
    "let y = dropout(x, 1e400); output y;",
    // The function table's hyperparameters (issue 10).
    "let y = clamp(x); output y;",
    "let y = clamp(x, min = x); output y;",
    "let y = clamp(x, 1.0, 2.0, 3.0); output y;",
    "let y = gelu(x, approximate = \"fast\"); output y;",
    "let y = gelu(x, approximate = 1.0); output y;",
    "let y = gelu(x, \"tanh\", approximate = \"tanh\"); output y;",
    "let y = pow(x, p = 2.0, p = 3.0); output y;",
    "let y = sin(x, x); output y;",
];

/// Wrong descriptions, whole.
const WRONG_DESCRIPTIONS: &[&str] = &[
    "struct Net { input x: [4, 0]; let y = x; output y; }",
    "struct Net { input x: [a]; }",
    "struct Net { output; }",
    "struct Net { input x: [4] grad grad; }",
    "struct Net { inptu x: [4]; }",
    "#[dtype(f16)] struct Net { input x: [4]; let y = x; output y; }",
    "struct Net { input x: [1, 1, 1, 1, 1, 1]; let y = x; output y; }",
    "struct Net",
    "",
    "struct Net { input x: [4294967296, 4294967296]; let y = x; output y; }",
    "struct Net { input x: [18446744073709551615]; let y = x; output y; }",
    "struct Net { input x: [65536, 65536, 2]; let y = relu(x); output y; }",
    "struct Net { input x: [100000]; let y = linear(x, 100000); output y; }",
];

#[test]
fn wrong_networks_are_errors_not_panics() -> Result<(), String> {
    let body = |items: &str| {
        format!("struct Net {{ input x: [4]; input img: [2, 6, 6]; input seq: [5, 3]; {items} }}")
    };
    for items in WRONG_ITEMS {
        errors(&body(items))?;
    }
    for src in WRONG_DESCRIPTIONS {
        errors(src)?;
    }
    Ok(())
}

/// Expands `src` (a network body over inputs `x: [4]` and `a: [4]`) and returns the CPU
/// time the expanding thread spent (the least of three runs: wall time on a loaded
/// machine includes waiting for a core); panics if it does not expand to a network.
fn expand_time(body: &str) -> std::time::Duration {
    let src = format!("struct Net {{ input x: [4]; input a: [4]; {body} }}");
    let mut best = std::time::Duration::MAX;
    for _ in 0..3 {
        let input: TokenStream = src.parse().expect("lexes");
        let t = cpu_time::ThreadTime::now();
        let out = crate::expand(input).expect("parses").to_string();
        best = best.min(t.elapsed());
        assert!(
            !out.contains("compile_error"),
            "{}: {}",
            &body[..body.len().min(80)],
            &out[..out.len().min(400)]
        );
    }
    best
}

/// Expansion is linear in the description: deep nesting and long sums expand in well under
/// a second (each takes 10–300 ms of CPU here; printing the source text at every level, hash-
/// consing by printed subtrees and splicing token streams per level each made them
/// quadratic, and a nested `max` copied its operand three times per level).
/// The descriptions of the expansion-time test: long sums, deep nesting, long chains.
fn long_and_deep_cases() -> Vec<(&'static str, String)> {
    let deep =
        |open: &str, close: &str, n: usize| format!("{}x{}", open.repeat(n), close.repeat(n));
    vec![
        (
            "relu nested 1,000 deep",
            format!("let y = {} * a; output y;", deep("relu(", ")", 1000)),
        ),
        (
            "sigmoid/tanh nested 1,000 deep",
            format!(
                "let y = {} * a; output y;",
                deep("sigmoid(tanh(", "))", 500)
            ),
        ),
        (
            "softmax nested 1,000 deep",
            format!("let y = {} * a; output y;", deep("softmax(", ")", 1000)),
        ),
        (
            "max nested 300 deep",
            format!("let y = {}; output y;", deep("max(", ", a)", 300)),
        ),
        (
            "parentheses 4,000 deep",
            format!("let y = {} * a; output y;", deep("(", ")", 4000)),
        ),
        (
            "a sum of 2,000 terms",
            format!("let y = {}; output y;", ["x", "a"].repeat(1000).join(" + ")),
        ),
        // Quadratic expansion took 0.65 s for 2,000 terms: at 8,000 it would take 10 s.
        (
            "a sum of 8,000 terms",
            format!("let y = {}; output y;", ["x", "a"].repeat(4000).join(" + ")),
        ),
        (
            "a sum of 2,000 mixed terms",
            format!(
                "let y = {}; output y;",
                ["relu(x) * 0.5", "sigmoid(a)", "x * a", "max(x, a)"]
                    .repeat(500)
                    .join(" + ")
            ),
        ),
        // Differentiating copies a subtree into both branches of a kink: nested 1,000 deep
        // these grew exponentially until bounded formulas split them into nodes.
        (
            "elu, abs, max and leaky_relu nested 1,000 deep, with fan-out",
            format!(
                "let b = {} * a; let c = {}; let d = {} + {}; let y = sum(b * c) + mean(d); output y, c;",
                deep("elu(", ")", 1000),
                deep("max(a, ", ")", 1000),
                deep("abs(", ")", 1000),
                deep("leaky_relu(", ")", 1000),
            ),
        ),
        (
            "2,000 lets in a chain",
            (1..2000)
                .map(|i| format!("let y{i} = relu(y{}) - a;", i - 1))
                .collect::<String>()
                + "output y1999;",
        ),
    ]
}

#[test]
fn long_and_deep_descriptions_expand_in_linear_time() {
    for (what, body) in long_and_deep_cases() {
        let body = if what.contains("lets") {
            format!("let y0 = x * 1.0; {body}")
        } else {
            body
        };
        let took = expand_time(&body);
        println!("{what}: {took:?}");
        // The cases (1,000 deep, 2,000 terms) must take well under a second; the
        // larger ones (10-300 ms here) get more room, still far below quadratic growth.
        let bound = if what.contains("8,000") || what.contains("elu, abs") {
            3.0
        } else {
            1.0
        };
        assert!(
            took.as_secs_f64() < bound,
            "{what}: expansion took {took:?} of CPU time"
        );
    }
}

/// Past the nesting and length limits the macro gives an error at the first token over
/// the limit instead of recursing until the stack overflows.
#[test]
fn nesting_and_length_limits_are_errors() -> Result<(), String> {
    let n = crate::syntax::MAX_NESTING + 1;
    let out = errors(&format!(
        "struct Net {{ input x: [4]; let y = {}x{}; output y; }}",
        "(".repeat(n),
        ")".repeat(n)
    ))?;
    assert!(out.contains("nested deeper than 4096"), "{out}");
    let out = errors(&format!(
        "struct Net {{ input x: [4]; let y = {}x; output y; }}",
        "- ".repeat(n)
    ))?;
    assert!(out.contains("more than 4096 operators in a row"), "{out}");
    let long = vec!["x"; crate::syntax::MAX_TOKENS / 2 + 1].join(" + ");
    let out = errors(&format!(
        "struct Net {{ input x: [4]; let y = {long}; output y; }}"
    ))?;
    assert!(out.contains("longer than 65536 tokens"), "{out}");
    // Just under the limits, the same shapes are fine.
    let n = crate::syntax::MAX_NESTING - 8;
    expand_time(&format!(
        "let y = {}x{} * a; output y;",
        "(".repeat(n),
        ")".repeat(n)
    ));
    expand_time(&format!("let y = {}x * a; output y;", "- ".repeat(n)));
    // Found by the fuzz test: a chain over a parameter in a node with fan-out took 30 s at
    // 160 deep. A formula of parameters only cannot become a node of its own, so beyond
    // its bounds it is an error at the formula.
    let out = errors(&format!(
        "struct Net {{ input x: [4]; param o: [4] = ones; let c = x + {}o{}; let y = sum(c); output y, c; }}",
        "relu(".repeat(300),
        ")".repeat(300)
    ))?;
    assert!(
        out.contains("formula over parameters and literals only is too large"),
        "{out}"
    );
    // A right-associative chain is parsed recursively by syn: long, it is an error, not an
    // overflow.
    let chain = vec!["x"; 30_000].join(" = ");
    errors(&format!(
        "struct Net {{ input x: [4]; let y = {chain}; output y; }}"
    ))?;
    Ok(())
}

/// A formula nested deeper than four functions is cut into anonymous nodes where it
/// passes the bound (`tests/gradcheck.rs` checks the gradients of this network).
#[test]
fn deep_formulas_are_cut_into_nodes() {
    let src =
        "#[dtype(f64)] struct Deep { input x: [5] grad; input a: [5] grad; param w: [5] = 0.3; \
        let y = elu(tanh(elu(sigmoid(elu(x * a + w)) * 2.0 - 1.0)) + abs(x)) * max(a, x) \
        + pow(sigmoid(tanh(exp(ln(x + 2.0)))), 2.0); output y; }";
    let out = crate::expand(src.parse().expect("lexes"))
        .expect("parses")
        .to_string();
    assert!(!out.contains("compile_error"), "{out}");
    assert!(
        out.contains("y_1") && out.contains("y_2") && !out.contains("y_3"),
        "{out}"
    );
}
