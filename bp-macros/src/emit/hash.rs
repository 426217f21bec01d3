//! The structure hash saved with parameters (`Network::STRUCTURE_HASH`): a file saved by
//! one network loads only into a network that computes the same thing.
//!
//! It is FNV-1a (64 bit) over a canonical text of the computation, one line per node in
//! definition order, then the outputs:
//!
//! ```text
//! bp-structure 1
//! 0 input [784] grad=false
//! 1 param [10]
//! 2 linear(out_features=128, bias=true) [0] -> [128] params [128, 784] [128]
//! 3 elementwise(relu(x0)) [2] -> [128]
//! outputs [3]
//! ```
//!
//! An operation writes itself with the language's own names and values
//! ([`Op::structure`](crate::graph::Op::structure)); operands and outputs are node
//! positions; parameters and buffers appear as shapes. No name the user chose (nodes,
//! inputs, params, layers) and no internal name (Rust types, enum variants, generated
//! identifiers) is part of it: renaming leaves the hash unchanged; changing an operation,
//! a hyperparameter, a shape or the wiring changes it. Neither the element type nor the
//! initializers are part of it (they do not change what a saved tensor means).

use crate::graph::{Graph, Kind};
use std::fmt::Write;

/// The version line: bumped only if the text's format itself must change.
const VERSION: &str = "bp-structure 1";

/// The canonical text of `g`'s computation.
pub fn canonical_text(g: &Graph) -> String {
    let mut text = format!("{VERSION}\n");
    let dims = |shape: &[usize]| format!("{shape:?}");
    for (id, node) in g.nodes.iter().enumerate() {
        let shape = dims(node.shape.as_deref().unwrap_or(&[]));
        let _ = match &node.kind {
            Kind::Input { grad } => writeln!(text, "{id} input {shape} grad={grad}"),
            Kind::Param(_) => writeln!(text, "{id} param {shape}"),
            Kind::Op(op) => {
                let params: Vec<String> = op
                    .params()
                    .iter()
                    .map(|&p| dims(&g.params[p].shape))
                    .collect();
                let buffers: Vec<String> = op
                    .buffers()
                    .iter()
                    .map(|&b| dims(&g.buffers[b].shape))
                    .collect();
                writeln!(
                    text,
                    "{id} {} {:?} -> {shape} params {} buffers {}",
                    op.structure(),
                    op.operands(),
                    params.join(" "),
                    buffers.join(" ")
                )
            }
            Kind::Error(_) => writeln!(text, "{id} error"),
        };
    }
    let _ = writeln!(text, "outputs {:?}", g.outputs);
    text
}

/// FNV-1a, 64 bit.
pub fn fnv1a(text: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// The structure hash of `g`.
pub fn structure_hash(g: &Graph) -> u64 {
    fnv1a(&canonical_text(g))
}

#[cfg(test)]
mod tests {
    use super::structure_hash;
    use crate::diagnostics::Diagnostics;
    use quote::quote;

    fn hash(tokens: proc_macro2::TokenStream) -> u64 {
        let def: crate::syntax::NetworkDef = syn::parse2(tokens).expect("parses");
        let cx = Diagnostics::default();
        let g = crate::lowering::lower(&def, &cx);
        assert!(!cx.has_errors(), "the network has errors");
        structure_hash(&g)
    }

    fn mlp(hidden: usize, act: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
        quote! {
            pub struct Mlp {
                input x: [784];
                let fc1 = linear(x, #hidden);
                let h = #act;
                let fc2 = linear(h, 10);
                output fc2;
            }
        }
    }

    /// Pinned: a change here orphans every file users have saved. If a refactor moves
    /// one of these, it changed the canonical text; fix the refactor, or bump `VERSION`
    /// deliberately and say so in the release notes.
    #[test]
    fn the_hashes_of_three_networks_are_pinned() {
        let mlp = hash(mlp(128, quote!(relu(fc1))));
        let cnn = hash(quote! {
            pub struct Cnn {
                input img: [1, 28, 28];
                let c1 = conv2d(img, 6, kernel = 5, padding = 2);
                let p1 = max_pool2d(relu(c1), 2);
                let bn = batch_norm(p1);
                let f = flatten(bn);
                let d = dropout(f, 0.25);
                let out = linear(d, 10);
                output out;
            }
        });
        let rnn = hash(quote! {
            #[dtype(f64)]
            pub struct Seq {
                input x: [28, 28];
                param scale: [] = 1.0;
                let l = lstm(x, hidden = 64);
                let h = layer_norm(last(l));
                let y = linear(h * scale + gelu(h, approximate = "tanh"), 10);
                output y;
            }
        });
        assert_eq!(
            [mlp, cnn, rnn],
            [
                0xbdc5_4ed3_4fcd_b0c1,
                0xb1ac_12a2_85ae_98f7,
                0xeb49_e166_874d_7d84
            ]
        );
    }

    #[test]
    fn renaming_leaves_the_hash_and_changes_of_computation_change_it() {
        let base = hash(mlp(128, quote!(relu(fc1))));
        let renamed = hash(quote! {
            pub struct Other {
                input image: [784];
                let layer1 = linear(image, 128);
                let hidden = relu(layer1);
                let logits = linear(hidden, 10);
                output logits;
            }
        });
        assert_eq!(base, renamed, "renaming nodes and inputs changed the hash");
        assert_ne!(base, hash(mlp(64, quote!(relu(fc1)))), "a width");
        assert_ne!(base, hash(mlp(128, quote!(tanh(fc1)))), "an activation");
        assert_ne!(base, hash(mlp(128, quote!(leaky_relu(fc1)))), "an op");
        assert_ne!(
            hash(mlp(128, quote!(leaky_relu(fc1)))),
            hash(mlp(128, quote!(leaky_relu(fc1, slope = 0.2)))),
            "a hyperparameter"
        );
        assert_ne!(base, hash(mlp(128, quote!(relu(fc1) + fc1))), "the wiring");
    }
}
