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
mod symbolic;
mod syntax;

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

/// parse → lower → check → plan → name → emit, after the nesting limit is checked.
fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    syntax::check_nesting(&input)?;
    stacker::grow(STACK, || expand_stages(input))
}

fn expand_stages(input: TokenStream) -> syn::Result<TokenStream> {
    let def: syntax::NetworkDef = syn::parse2(input)?;
    let cx = ctxt::Ctxt::default();
    let mut g = graph::lower(&def, &cx);
    if cx.has_errors() {
        return Ok(fallback(&def, cx));
    }
    let plan = autodiff::plan(&g);
    let residuals = names::assign(&mut g, &plan);
    let c = emit::Ctx {
        def: &def,
        g: &g,
        plan: &plan,
        residuals: &residuals,
        m: format_ident!("__bp_{}", def.name),
        ty: match def.dtype {
            syntax::Dtype::F32 => quote!(f32),
            syntax::Dtype::F64 => quote!(f64),
        },
    };
    Ok(emit::expand(&c))
}

/// On errors: the errors, and the struct under its real name so the user's other code
/// does not drown in follow-on errors.
fn fallback(def: &syntax::NetworkDef, cx: ctxt::Ctxt) -> TokenStream {
    let errors = cx.into_compile_errors();
    let syntax::NetworkDef {
        attrs, vis, name, ..
    } = def;
    quote! {
        #errors
        #(#attrs)*
        #vis struct #name;
    }
}
