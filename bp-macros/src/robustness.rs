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

#[test]
fn wrong_networks_are_errors_not_panics() -> Result<(), String> {
    let body = |items: &str| {
        format!("struct Net {{ input x: [4]; input img: [2, 6, 6]; input seq: [5, 3]; {items} }}")
    };
    let cases = [
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
    ];
    for items in cases {
        errors(&body(items))?;
    }
    for src in [
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
    ] {
        errors(src)?;
    }
    Ok(())
}
