//! The `network!` procedural macro of `bp`: a compiler from a declarative network
//! description to its forward and backward passes as straight-line Rust.
//!
//! The stages, chained in `expand`: parse (`syntax`) → lower and check shapes
//! (`graph`, `lowering`, `ops`) → plan the reverse sweep (`autodiff`) → name
//! (`names`) → emit (`emit`, `emit_api`, `docs`).
#![forbid(unsafe_code)]

mod autodiff;
mod ctxt;
mod docs;
mod emit;
mod emit_api;
mod graph;
mod lowering;
mod names;
mod ops;
mod pipeline;
mod symbolic;
mod syntax;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod robustness;
#[cfg(test)]
mod snapshot;

use pipeline::expand;

/// Compiles a network description into a struct with `forward`, `backward`, `predict`
/// and the `bp::Network` trait. See the `bp` crate's documentation for the language.
#[proc_macro]
pub fn network(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    expand(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
