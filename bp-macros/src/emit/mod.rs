//! Emission: the struct, its buffers, the passes as straight-line statements (one per
//! step of the chain rule), the API around them and the `bp::Network` implementation,
//! each with its `///` docs.

mod api;
mod checks;
mod docs;
pub mod fallback;
mod hash;
mod network;
mod passes;
mod signature;
mod structs;

use crate::autodiff::Plan;
use crate::graph::{Aux, CodeGen, Graph, Kind, Locals, Node, NodeId};
use crate::syntax::NetworkDef;
use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{format_ident, quote};

/// Everything emission needs about one checked network.
pub struct Expansion<'a> {
    pub def: &'a NetworkDef,
    pub g: &'a Graph,
    pub plan: &'a Plan,
    pub residuals: &'a [Option<Ident>],
    /// The hidden module holding the buffer structs.
    pub m: Ident,
    pub ty: TokenStream,
    /// The passes' local variables.
    pub locals: &'a Locals,
}

/// A mixed-site identifier: generated locals never see the user's names.
pub fn hyg(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

impl Expansion<'_> {
    /// Whether some operation draws random numbers before the forward pass.
    pub fn has_prepare(&self) -> bool {
        let cg = self.codegen();
        (0..self.g.nodes.len()).any(|id| {
            self.g.nodes[id]
                .op()
                .is_some_and(|op| !op.prepare(&cg, id).is_empty())
        })
    }

    /// Whether some operation updates buffers after the forward pass.
    pub fn has_update(&self) -> bool {
        let cg = self.codegen();
        (0..self.g.nodes.len()).any(|id| {
            self.g.nodes[id]
                .op()
                .is_some_and(|op| !op.update(&cg, id).is_empty())
        })
    }

    /// A fresh code generator (no contribution written yet).
    pub fn codegen(&self) -> CodeGen<'_> {
        CodeGen::new(
            self.g,
            self.residuals,
            self.plan.seeded.clone(),
            self.locals,
        )
    }

    pub fn inputs(&self) -> Vec<NodeId> {
        (0..self.g.nodes.len())
            .filter(|&id| matches!(self.g.nodes[id].kind, Kind::Input { .. }))
            .collect()
    }

    /// Nodes whose value is stored in `Values` (everything but free params).
    pub fn valued(&self) -> impl Iterator<Item = &Node> {
        self.g.nodes.iter().filter(|n| !n.is_param())
    }

    fn tensor(&self) -> TokenStream {
        let ty = &self.ty;
        quote!(::bp::__private::Tensor<#ty>)
    }
}

/// The whole expansion for a checked graph.
pub fn expand(c: &Expansion) -> TokenStream {
    let (passes, derivation) = passes::passes(c);
    let structs = structs::buffer_structs(c);
    let main = structs::main_struct(c);
    let methods = api::methods(c, &derivation);
    let network = network::network_impl(c);
    let name = &c.def.name;
    quote! {
        #structs
        #main
        // The one lint the generated code allows besides the module's name (structs.rs):
        // `backward_pass` takes the five buffer structs and four scalars.
        #[allow(clippy::too_many_arguments)]
        impl #name {
            #methods
            #passes
        }
        #network
        const _: () = {
            fn assert_send_sync_clone<T: ::core::marker::Send + ::core::marker::Sync + ::core::clone::Clone>() {}
            let _ = assert_send_sync_clone::<#name>;
        };
    }
}

/// The batch-independent part of workspace `a`'s length: `fixed`, plus `per_part` for
/// each part a kernel may split a batch of `batch` into (read at run time).
pub fn aux_fixed(a: &Aux, batch: &Ident) -> TokenStream {
    let f = lit(a.fixed);
    match a.per_part {
        0 => quote!(#f),
        n => {
            let n = lit(n);
            quote!(::bp::__private::kernels::split::scratch_len(#f, #n, #batch))
        }
    }
}

/// A `usize` literal.
pub fn lit(v: usize) -> Literal {
    Literal::usize_unsuffixed(v)
}

/// The identifier for the gradient argument of output `id` in `backward`.
pub fn d_arg(c: &Expansion, id: NodeId) -> Ident {
    c.residuals[id]
        .clone()
        .unwrap_or_else(|| format_ident!("d_{}", c.g.nodes[id].ident))
}
