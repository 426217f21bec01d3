//! The run-time checks the API makes around the passes: input shapes, batch norm's batch
//! size, fallible reservation of every buffer, and the finite-value check.

use super::{aux_fixed, hyg, lit, Expansion};
use crate::graph::Place;
use proc_macro2::TokenStream;
use quote::quote;

/// Checks every input's shape and that all inputs agree on the batch size; binds `batch`.
pub fn input_checks(c: &Expansion) -> TokenStream {
    let batch = c.locals.batch.clone();
    let inputs = c.inputs();
    let mut ts = TokenStream::new();
    for (k, &i) in inputs.iter().enumerate() {
        let ident = &c.g.nodes[i].ident;
        let name = c.g.nodes[i].name.as_str();
        let dims = c.g.shape(i).iter().map(|&d| lit(d));
        if k == 0 {
            ts.extend(
                quote!(let #batch = ::bp::__private::check_input(#name, #ident, &[#(#dims),*])?;),
            );
        } else {
            let first = c.g.nodes[inputs[0]].name.as_str();
            ts.extend(quote!(::bp::__private::check_batch(#first, #batch, #name, ::bp::__private::check_input(#name, #ident, &[#(#dims),*])?)?;));
        }
    }
    ts
}

/// The operations' checks of a batch before a forward pass in training mode.
pub fn training_checks(c: &Expansion) -> Option<TokenStream> {
    let (cg, mode) = (c.codegen(), &c.locals.mode);
    let checks: TokenStream =
        c.g.nodes
            .iter()
            .enumerate()
            .filter_map(|(id, node)| Some(node.op()?.training_check(&cg, id)))
            .collect();
    (!checks.is_empty()).then(|| quote!(if #mode.is_training() { #checks }))
}

/// The statements reserving every buffer a pass sizes, for the forward pass's `values`
/// and backward's `residuals`: a batch too large for memory is an error naming the
/// buffer, not an abort.
pub fn reservations(c: &Expansion) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let batch = c.locals.batch.clone();
    let reserve = |field: TokenStream, what: String, per: usize, fixed: TokenStream| {
        let per = lit(per);
        quote!(::bp::__private::reserve_buffer(&mut #field, #what, #batch, #per, #fixed)?;)
    };
    let mut values: Vec<TokenStream> = c
        .valued()
        .map(|n| {
            let v = &n.ident;
            let per = crate::syntax::numel(n.shape.as_deref().unwrap_or(&[]));
            let what = format!("the value of `{}`", n.name);
            reserve(quote!(values.#v), what, per, quote!(0))
        })
        .collect();
    let mut residuals: Vec<TokenStream> = (0..c.g.nodes.len())
        .filter_map(|id| {
            let r = c.residuals[id].as_ref()?;
            let per = crate::syntax::numel(c.g.shape(id));
            let what = format!("the residual of `{}`", c.g.nodes[id].name);
            Some(reserve(quote!(residuals.#r), what, per, quote!(0)))
        })
        .collect();
    for a in &c.g.aux {
        let f = &a.ident;
        let what = format!("workspace `{}` of `{}`", a.name, c.g.nodes[a.node].name);
        match a.place {
            Place::Forward => values.push(reserve(
                quote!(values.#f),
                what,
                a.per_sample,
                aux_fixed(a, &batch),
            )),
            Place::Backward => residuals.push(reserve(
                quote!(residuals.#f),
                what,
                a.per_sample,
                aux_fixed(a, &batch),
            )),
        }
    }
    (values, residuals)
}

/// The finite-value checks of each pass, over its tensors in the order the pass completes
/// them (no call where a pass has none, so the element type is always inferred).
pub struct FiniteChecks {
    pub forward: Option<TokenStream>,
    pub predict: Option<TokenStream>,
    pub residuals: Option<TokenStream>,
    pub grads: Option<TokenStream>,
    pub params: Option<TokenStream>,
}

pub fn finite_checks(c: &Expansion) -> FiniteChecks {
    let call = |pass: &str, items: Vec<TokenStream>| {
        (!items.is_empty()).then(|| quote!(::bp::__private::check_finite(#pass, &[#(#items),*])?;))
    };
    let values_in = |at: TokenStream| -> Vec<TokenStream> {
        c.valued()
            .map(|n| {
                let (what, v) = (format!("`{}`", n.name), &n.ident);
                quote!((#what, &#at.#v))
            })
            .collect()
    };
    let residuals = (0..c.g.nodes.len()).rev().filter_map(|id| {
        let r = c.residuals[id].as_ref()?;
        let what = format!("the residual of `{}`", c.g.nodes[id].name);
        Some(quote!((#what, &self.residuals.#r)))
    });
    let grads = c.g.params.iter().map(|p| {
        let (what, g) = (format!("the gradient of `{}`", p.torch_name), &p.grad_ident);
        quote!((#what, &self.grads.#g))
    });
    let params = c.g.params.iter().map(|p| {
        let (what, f) = (format!("parameter `{}`", p.torch_name), &p.ident);
        quote!((#what, &self.params.#f))
    });
    let ws = hyg("ws");
    FiniteChecks {
        forward: call("forward", values_in(quote!(self.values))),
        predict: call("predict", values_in(quote!(#ws))),
        residuals: call("backward", residuals.collect()),
        grads: call("backward", grads.collect()),
        params: call("backward (SGD step)", params.collect()),
    }
}
