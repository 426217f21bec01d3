//! The stages chained: the nesting limit is checked, then parse → lower → check → plan →
//! name → emit, on a stack of its own. `lib.rs` wraps this in the proc-macro entry point;
//! `fuzz/` includes it (with the stages) in a `cargo fuzz` target.

use crate::{autodiff, ctxt, emit, graph, names, syntax};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// The stack the stages run on. Parsing, lowering, differentiation and emission recurse
/// once per level of an expression's nesting, and a macro gets whatever stack its caller
/// has left (a test thread's 2 MiB overflowed before 1,000 levels). `stacker` switches to
/// a fresh stack of this size (reserved, committed only as touched) on the same thread,
/// so the compiler's proc-macro bridge stays valid; `syntax::check_nesting` bounds the
/// depth, so no description can exhaust it.
const STACK: usize = 256 << 20;

/// parse → lower → check → plan → name → emit, after the nesting limit is checked.
pub fn expand(input: TokenStream) -> syn::Result<TokenStream> {
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
