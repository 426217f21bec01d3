//! Arbitrary text through every stage of `network!`: it must lex-fail, or expand to tokens
//! (a network or errors), and never panic or overflow the stack.
#![no_main]

// The macro's stages, as modules of this crate (the same files the proc macro compiles).
#[path = "../../bp-macros/src/autodiff.rs"]
mod autodiff;
#[path = "../../bp-macros/src/ctxt.rs"]
mod ctxt;
#[path = "../../bp-macros/src/docs.rs"]
mod docs;
#[path = "../../bp-macros/src/emit.rs"]
mod emit;
#[path = "../../bp-macros/src/emit_api.rs"]
mod emit_api;
#[path = "../../bp-macros/src/graph.rs"]
mod graph;
#[path = "../../bp-macros/src/lowering.rs"]
mod lowering;
#[path = "../../bp-macros/src/names.rs"]
mod names;
#[path = "../../bp-macros/src/ops/mod.rs"]
mod ops;
#[path = "../../bp-macros/src/pipeline.rs"]
mod pipeline;
#[path = "../../bp-macros/src/symbolic.rs"]
mod symbolic;
#[path = "../../bp-macros/src/syntax.rs"]
mod syntax;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(tokens) = text.parse::<proc_macro2::TokenStream>() else {
        return;
    };
    let _ = pipeline::expand(tokens);
});
