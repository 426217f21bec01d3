//! A seeded fuzz test of the whole macro: valid descriptions covering every operation,
//! mutated at the token level, go through `crate::expand` (parse, lower, check,
//! differentiate, emit). Every case must return tokens — a network, or errors whose
//! spans point into the description — and never panic, overflow or hang.
//!
//! Mutations: a token dropped, duplicated or swapped with its neighbour; a number
//! replaced by 0, 1, 2^32, 2^64 − 1, −1, `1e400`, …; a name misspelled; an operand nested
//! 1,000 calls deep; a hyperparameter (`name = value`) removed, duplicated or given an
//! out-of-range value; and several of these at once. The number of cases and the seed
//! are fixed (`BP_FUZZ_CASES` and `BP_FUZZ_SEED` change them for a longer local run);
//! `fuzz/` holds the same harness for `cargo fuzz`.

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};

/// Valid descriptions: together they use every operation and every hyperparameter.
const SEEDS: &[&str] = &[
    "struct Mlp { input x: [6]; let fc1 = linear(x, 8); let h = relu(fc1); let fc2 = linear(h, 3, bias = false); output fc2; }",
    "#[dtype(f64)] struct Acts { input x: [5] grad; param s: [] = 0.5; let a = sigmoid(x) + tanh(x) * s; let b = leaky_relu(a, slope = 0.2) - gelu(x) / 2.0; let c = silu(b) + softplus(a) + elu(b, alpha = 1.5); output c; }",
    "struct Arith { input x: [4]; input y: [4]; param w: [4] = normal(0.1); let a = exp(x) - ln(abs(y) + 1.0) + sqrt(x * x + 1e-3); let b = pow(a, 3.0) + min(a, w) * max(-a, y); output b; }",
    "struct Red { input x: [3, 4]; let s = softmax(x); let l = log_softmax(x); let t = sum(s) + mean(l); output t, s; }",
    "struct Cat { input a: [2, 3]; input b: [2, 5]; let c = concat(a, b, dim = 1); let f = flatten(c); let l = linear(f, 4); output l; }",
    "struct Conv { input img: [1, 8, 8]; let c1 = conv2d(img, 4, kernel = 3, stride = 1, padding = 1, bias = true); let p = max_pool2d(relu(c1), 2); let c2 = conv2d(p, 2, kernel = 2, stride = 2); let q = avg_pool2d(c2, kernel = 2, stride = 1); let f = linear(flatten(q), 3); output f; }",
    "struct Norm { input x: [6]; input img: [3, 4, 4]; let b = batch_norm(x, momentum = 0.1, eps = 1e-5); let l = layer_norm(b, eps = 1e-6); let bi = batch_norm(img); let d = dropout(l, p = 0.5); let y = d + mean(bi); output y; }",
    "struct Seq { input seq: [5, 3]; let r = rnn(seq, hidden = 4); let l = lstm(r, hidden = 3); let g = gru(l, hidden = 2); let h = last(g); output h; }",
    "struct Fan { input x: [3] grad; param s: [3] = uniform(-0.5, 0.5); param k: [] = zeros; param o: [3] = ones; let a = linear(x, 3); let b = a * sigmoid(a) + s; let c = relu(a) - b * k + o; let y = sum(pow(c, 2.0)) + mean(a); output y, c; }",
    "pub struct Drop { input x: [10]; let h = dropout(relu(x), 0.25); let y = linear(h, 2); output y; }",
];

/// The numbers a number is replaced by.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "4294967296",
    "4294967297",
    "18446744073709551615",
    "18446744073709551616",
    "-1",
    "1e400",
    "-1e400",
    "0.0",
    "1.5",
    "-0.5",
    "1e-300",
    "9223372036854775808",
    "true",
];

/// A token of the flattened description: a bracket, or one token tree that is not a group.
#[derive(Clone)]
enum Lex {
    Open(Delimiter),
    Close(Delimiter),
    /// The token's text and whether it is a punctuation joined to the next one (`::`).
    Tok(String, bool),
}

fn flatten(ts: TokenStream, out: &mut Vec<Lex>) {
    for tt in ts {
        match tt {
            TokenTree::Group(g) => {
                out.push(Lex::Open(g.delimiter()));
                flatten(g.stream(), out);
                out.push(Lex::Close(g.delimiter()));
            }
            TokenTree::Punct(p) => out.push(Lex::Tok(
                p.as_char().to_string(),
                p.spacing() == Spacing::Joint,
            )),
            tt => out.push(Lex::Tok(tt.to_string(), false)),
        }
    }
}

fn render(lexes: &[Lex]) -> String {
    let mut s = String::new();
    for l in lexes {
        match l {
            Lex::Open(d) | Lex::Close(d) => {
                let open = matches!(l, Lex::Open(_));
                s.push_str(match (d, open) {
                    (Delimiter::Parenthesis, true) => "(",
                    (Delimiter::Parenthesis, false) => ")",
                    (Delimiter::Brace, true) => "{",
                    (Delimiter::Brace, false) => "}",
                    (Delimiter::Bracket, true) => "[",
                    (Delimiter::Bracket, false) => "]",
                    (Delimiter::None, _) => "",
                });
                s.push(' ');
            }
            Lex::Tok(t, joint) => {
                s.push_str(t);
                if !joint {
                    s.push(' ');
                }
            }
        }
    }
    s
}

/// xorshift64*: a small seeded generator, so a failing case is reproduced by its seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn is_tok(l: &Lex) -> bool {
    matches!(l, Lex::Tok(..))
}

/// Applies one random mutation to `v`.
fn mutate(v: &mut Vec<Lex>, rng: &mut Rng) {
    let toks: Vec<usize> = (0..v.len()).filter(|&i| is_tok(&v[i])).collect();
    let pick = |rng: &mut Rng| toks[rng.below(toks.len())];
    match rng.below(8) {
        // A token dropped.
        0 => {
            v.remove(pick(rng));
        }
        // A token duplicated.
        1 => {
            let i = pick(rng);
            let t = v[i].clone();
            v.insert(i, t);
        }
        // A token swapped with the next token.
        2 => {
            let i = pick(rng);
            if let Some(j) = (i + 1..v.len()).find(|&j| is_tok(&v[j])) {
                v.swap(i, j);
            }
        }
        3 => replace_number(v, &toks, rng),
        4 => misspell(v, &toks, rng),
        5 => {
            let i = pick(rng);
            nest(v, i, rng);
        }
        _ => change_hyperparameter(v, rng),
    }
}

/// A number replaced.
fn replace_number(v: &mut [Lex], toks: &[usize], rng: &mut Rng) {
    let nums: Vec<usize> = toks
        .iter()
        .copied()
        .filter(|&i| matches!(&v[i], Lex::Tok(t, _) if t.starts_with(|c: char| c.is_ascii_digit())))
        .collect();
    if !nums.is_empty() {
        let i = nums[rng.below(nums.len())];
        v[i] = Lex::Tok(NUMBERS[rng.below(NUMBERS.len())].to_string(), false);
    }
}

/// A name misspelled: a letter changed, added or removed.
fn misspell(v: &mut [Lex], toks: &[usize], rng: &mut Rng) {
    let names: Vec<usize> = toks
        .iter()
        .copied()
        .filter(|&i| matches!(&v[i], Lex::Tok(t, _) if t.starts_with(|c: char| c.is_ascii_alphabetic())))
        .collect();
    if names.is_empty() {
        return;
    }
    let i = names[rng.below(names.len())];
    if let Lex::Tok(t, _) = &mut v[i] {
        let k = rng.below(t.len());
        let letter = (b'a' + rng.below(26) as u8) as char;
        match rng.below(3) {
            0 => t.replace_range(k..k + 1, &letter.to_string()),
            1 => t.insert(k, letter),
            _ if t.len() > 1 => {
                t.remove(k);
            }
            _ => t.push('_'),
        }
    }
}

/// Token `i` nested 1,000 calls deep.
fn nest(v: &mut Vec<Lex>, i: usize, rng: &mut Rng) {
    let fs = [
        "relu",
        "sigmoid",
        "softmax",
        "neg",
        "elu",
        "abs",
        "leaky_relu",
        "gelu",
        "erf",
        "clamp",
    ];
    let f = fs[rng.below(fs.len())];
    let mut nested = Vec::new();
    for _ in 0..1000 {
        let name = if f == "neg" { "-" } else { f };
        nested.push(Lex::Tok(name.into(), false));
        nested.push(Lex::Open(Delimiter::Parenthesis));
    }
    nested.push(v[i].clone());
    nested.extend((0..1000).map(|_| Lex::Close(Delimiter::Parenthesis)));
    v.splice(i..i + 1, nested);
}

/// A hyperparameter `name = value` removed, duplicated or out of range.
fn change_hyperparameter(v: &mut Vec<Lex>, rng: &mut Rng) {
    let hypers: Vec<usize> = (0..v.len().saturating_sub(2))
        .filter(|&i| {
            matches!((&v[i], &v[i + 1]), (Lex::Tok(n, _), Lex::Tok(eq, false))
                if eq == "=" && n.starts_with(|c: char| c.is_ascii_lowercase()))
                && is_tok(&v[i + 2])
        })
        .collect();
    if hypers.is_empty() {
        return;
    }
    let i = hypers[rng.below(hypers.len())];
    match rng.below(3) {
        0 => {
            v.drain(i..i + 3);
        }
        1 => {
            let mut with_comma: Vec<Lex> = v[i..i + 3].to_vec();
            with_comma.push(Lex::Tok(",".into(), false));
            v.splice(i..i, with_comma);
        }
        _ => v[i + 2] = Lex::Tok(NUMBERS[rng.below(NUMBERS.len())].to_string(), false),
    }
}

/// What `expand` made of one description.
enum Outcome {
    /// A network without errors.
    Network,
    /// Errors, each pointing into the description.
    Errors,
    /// The mutation broke the token structure (a lone `'`): the compiler's lexer rejects
    /// such input before any macro runs.
    DoesNotLex,
}

/// Runs one description through the macro; `Err` describes a broken promise.
fn run(src: &str) -> Result<Outcome, String> {
    let Ok(input) = src.parse::<TokenStream>() else {
        return Ok(Outcome::DoesNotLex);
    };
    let out = std::panic::catch_unwind(|| crate::expand(input))
        .map_err(|p| {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            format!("the macro panicked ({msg}) on:\n{src}")
        })?
        .unwrap_or_else(|e| e.to_compile_error());
    let mut errors = 0;
    let text = out.to_string();
    let mut stack = vec![out.into_iter()];
    while let Some(top) = stack.last_mut() {
        let Some(tt) = top.next() else {
            stack.pop();
            continue;
        };
        match tt {
            TokenTree::Group(g) => stack.push(g.stream().into_iter()),
            TokenTree::Ident(i) if i == "compile_error" => {
                errors += 1;
                if i.span().source_text().is_none_or(|t| t.is_empty()) {
                    let at = text.find("compile_error").unwrap_or(0);
                    let shown = &text[at..text.len().min(at + 300)];
                    return Err(format!(
                        "an error without a span in the description ({shown}…) on:\n{src}"
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(if errors == 0 {
        Outcome::Network
    } else {
        Outcome::Errors
    })
}

#[test]
fn seeds_are_valid_networks() -> Result<(), String> {
    for src in SEEDS {
        match run(src)? {
            Outcome::Network => {}
            _ => {
                return Err(format!(
                    "a seed of the fuzz test is not a valid network:\n{src}"
                ))
            }
        }
    }
    Ok(())
}

#[test]
fn mutated_descriptions_give_tokens_or_errors_with_spans() -> Result<(), String> {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let cases = env("BP_FUZZ_CASES", 10_000) as usize;
    let mut rng = Rng(env("BP_FUZZ_SEED", 0x5eed_b0b5) | 1);
    let seeds: Vec<Vec<Lex>> = SEEDS
        .iter()
        .map(|s| {
            let mut v = Vec::new();
            flatten(s.parse().expect("seeds lex"), &mut v);
            v
        })
        .collect();
    let (mut networks, mut errors, mut unlexed) = (0, 0, 0);
    let trace = std::env::var_os("BP_FUZZ_TRACE").is_some();
    let start = std::time::Instant::now();
    // Until `cases` descriptions have reached the macro (the few the lexer rejects do not count).
    while networks + errors < cases {
        let mut v = seeds[rng.below(seeds.len())].clone();
        // One to four mutations; none after a deep nesting, to bound the case's size.
        let n = 1 + rng.below(4);
        for _ in 0..n {
            mutate(&mut v, &mut rng);
            if v.len() > 3000 {
                break;
            }
        }
        let src = render(&v);
        if trace {
            eprintln!("case: {src}");
        }
        match run(&src)? {
            Outcome::Network => networks += 1,
            Outcome::Errors => errors += 1,
            Outcome::DoesNotLex => unlexed += 1,
        }
    }
    let took = start.elapsed();
    println!(
        "{cases} cases in {took:?}: {networks} networks, {errors} with errors, {unlexed} that do not lex"
    );
    // The mutations must reach every outcome that reaches the macro, and most cases must.
    assert!(networks > cases / 50, "too few valid networks: {networks}");
    assert!(errors > cases / 2, "too few errors: {errors}");
    assert!(
        unlexed < cases / 10,
        "too many cases rejected by the lexer: {unlexed}"
    );
    Ok(())
}

/// Systematically, not by chance: every hyperparameter (`name = value`) of every seed
/// removed, duplicated, and set to each of the hostile numbers.
#[test]
fn every_hyperparameter_missing_duplicated_and_out_of_range() -> Result<(), String> {
    let mut cases = 0;
    for src in SEEDS {
        let mut v = Vec::new();
        flatten(src.parse().expect("seeds lex"), &mut v);
        let hypers: Vec<usize> = (0..v.len().saturating_sub(2))
            .filter(|&i| {
                matches!((&v[i], &v[i + 1]), (Lex::Tok(n, _), Lex::Tok(eq, false))
                    if eq == "=" && n.starts_with(|c: char| c.is_ascii_lowercase()))
                    && matches!(&v[i - 1], Lex::Tok(comma, _) if comma == ",")
            })
            .collect();
        for &i in &hypers {
            let mut variants = Vec::new();
            let mut removed = v.clone();
            removed.drain(i - 1..i + 3);
            variants.push(removed);
            let mut duplicated = v.clone();
            let copy: Vec<Lex> = v[i - 1..i + 3].to_vec();
            duplicated.splice(i - 1..i - 1, copy);
            variants.push(duplicated);
            for n in NUMBERS.iter().chain(&["x", "-", "(", "[1]"]) {
                let mut replaced = v.clone();
                replaced[i + 2] = Lex::Tok(n.to_string(), false);
                variants.push(replaced);
            }
            for variant in variants {
                run(&render(&variant))?;
                cases += 1;
            }
        }
    }
    assert!(cases > 300, "only {cases} hyperparameter cases");
    Ok(())
}
