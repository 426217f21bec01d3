//! The `network!` procedural macro of `bp`: a compiler from a declarative network
//! description to its forward and backward passes as straight-line Rust.
//!
//! # The pipeline
//!
//! Each stage is a module that imports only from the stages above it:
//!
//! ```text
//! diagnostics  the error sink of one invocation, "did you mean"       (used by all)
//! syntax       tokens → NetworkDef: the items as written, with spans
//! formula      elementwise formulas: the function table, derivatives,
//!              simplification, code and math of a formula
//! graph        the IR: nodes, params, buffers, workspaces; the Op trait
//!              every operation implements; Builder and CodeGen
//! ops          the operations, one file per family, and their registry
//! lowering     the driver: items → graph, each call dispatched to the
//!              registry or the function table; every shape checked
//! autodiff     the reverse sweep's plan: which nodes get a residual
//! names        the identifiers of generated code, collision-free
//! emit         the struct, the passes, the API, the Network impl, the
//!              docs (from the ops' own steps) and the structure hash
//! ```
//!
//! [`network`] chains them in `expand`: parse → lower and check → plan → name → emit.
//! With errors, it stops after lowering and emits them with a fallback (`emit::fallback`).
#![forbid(unsafe_code)]
// `cargo fuzz` builds this file as its target (`fuzz/Cargo.toml`), with `cfg(fuzzing)`.
#![cfg_attr(fuzzing, no_main)]

mod diagnostics;
mod syntax;

mod formula;
mod graph;
mod ops;

mod lowering;

mod autodiff;
mod names;

mod emit;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod robustness;
#[cfg(test)]
mod snapshot;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// Compiles a network description into a struct with `forward`, `backward`, `predict`
/// and the `bp::Network` trait. See the `bp` crate's documentation for the language.
#[cfg(not(fuzzing))]
#[proc_macro]
pub fn network(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    expand(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// The stack the stages run on. Parsing, lowering, differentiation and emission recurse
/// once per level of an expression's nesting, and a macro gets whatever stack its caller
/// has left (a test thread's 2 MiB overflowed before 1,000 levels). `stacker` switches to
/// a fresh stack of this size (reserved, committed only as touched) on the same thread,
/// so the compiler's proc-macro bridge stays valid; `syntax::check_nesting` bounds the
/// depth, so no description can exhaust it.
const STACK: usize = 256 << 20;

/// The pipeline, after the nesting limit is checked, on a stack of its own.
pub(crate) fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    syntax::check_nesting(&input)?;
    stacker::grow(STACK, || stages(input))
}

fn stages(input: TokenStream) -> syn::Result<TokenStream> {
    let def: syntax::NetworkDef = match syn::parse2(input.clone()) {
        Ok(def) => def,
        Err(e) => {
            let Some(header) = syntax::parse_header(input) else {
                return Err(e);
            };
            return Ok(emit::fallback::fallback(&header, e.into_compile_error()));
        }
    };
    let cx = diagnostics::Diagnostics::default();
    let mut g = lowering::lower(&def, &cx);
    if cx.has_errors() {
        let errors = cx.into_compile_errors();
        return Ok(emit::fallback::fallback(&def.header(), errors));
    }
    let plan = autodiff::plan(&g);
    let (residuals, locals) = names::assign(&mut g, &plan);
    let expansion = emit::Expansion {
        def: &def,
        g: &g,
        plan: &plan,
        residuals: &residuals,
        locals: &locals,
        m: format_ident!("__bp_{}", def.name),
        ty: match def.dtype {
            syntax::Dtype::F32 => quote!(f32),
            syntax::Dtype::F64 => quote!(f64),
        },
    };
    Ok(emit::expand(&expansion))
}

// Under `cargo fuzz`: arbitrary text through every stage. It must fail to lex, or expand
// to tokens (a network or errors), and never panic or overflow the stack.
#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(tokens) = text.parse::<TokenStream>() else {
        return;
    };
    let _ = expand(tokens);
});
