//! Snapshots of the pretty-printed expansion: every change in the generated code shows
//! up in review as a diff of `bp-macros/tests/snapshots/*.rs`. Run with `BLESS=1` to
//! accept a change.

use quote::quote;

fn check(name: &str, input: proc_macro2::TokenStream) -> Result<(), String> {
    let out = crate::expand(input).map_err(|e| format!("expansion failed: {e}"))?;
    let file: syn::File = syn::parse2(out).map_err(|e| format!("expansion does not parse: {e}"))?;
    let text = prettyplease::unparse(&file);
    for waste in ["* 1.0", "1.0 *", "+ 0.0", "- 0.0"] {
        if let Some(line) = text.lines().find(|l| l.contains(waste)) {
            return Err(format!(
                "the expansion of `{name}` has an unsimplified `{waste}`: {line}"
            ));
        }
    }
    let path = format!("{}/tests/snapshots/{name}.rs", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("BLESS").is_some() {
        return std::fs::write(&path, &text).map_err(|e| format!("{path}: {e}"));
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    if want != text {
        let _ = std::fs::write(format!("{path}.new"), &text);
        return Err(format!(
            "the expansion of `{name}` changed; review {path}.new and rerun with BLESS=1 to accept"
        ));
    }
    Ok(())
}

#[test]
fn snapshot_xor() -> Result<(), String> {
    check(
        "xor",
        quote! {
            /// The XOR network.
            pub struct Xor {
                input x: [2];
                let fc1 = linear(x, 8);
                let h = tanh(fc1);
                let fc2 = linear(h, 1);
                output fc2;
            }
        },
    )
}

#[test]
fn snapshot_fanout() -> Result<(), String> {
    check(
        "fanout",
        quote! {
            #[dtype(f64)]
            pub struct FanOut {
                input x: [3] grad;
                param s: [] = 0.5;
                let a = linear(x, 4);
                let b = a * sigmoid(a) + s;
                let c = relu(a) - b;
                let y = sum(pow(c, 2.0)) + mean(a);
                output y;
            }
        },
    )
}

#[test]
fn snapshot_layers() -> Result<(), String> {
    check(
        "layers",
        quote! {
            pub struct Layers {
                input img: [1, 8, 8];
                input seq: [6, 4];
                let c = conv2d(img, 4, kernel = 3, padding = 1);
                let bn = batch_norm(c);
                let p = max_pool2d(relu(bn), 2);
                let l = lstm(seq, hidden = 5);
                let d = dropout(concat(flatten(p), last(l)), 0.25);
                let out = linear(d, 3);
                output out;
            }
        },
    )
}
