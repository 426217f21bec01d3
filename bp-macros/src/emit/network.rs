//! The `bp::Network` implementation: the network seen through the runtime's trait
//! (dynamic forward and backward, parameters by PyTorch name, buffers, visitors).

use super::{hyg, lit, Expansion};
use crate::graph::Kind;
use proc_macro2::{Ident, TokenStream};
use quote::{quote, ToTokens};

pub fn network_impl(c: &Expansion) -> TokenStream {
    let name = &c.def.name;
    let ty = &c.ty;
    let port = |id: usize| {
        let n = c.g.nodes[id].name.as_str();
        let dims = c.g.shape(id).iter().map(|&d| lit(d));
        quote!((#n, &[#(#dims),*]))
    };
    let in_ports = c.inputs().into_iter().map(port);
    let out_ports = c.g.outputs.iter().map(|&o| port(o));
    let hash = proc_macro2::Literal::u64_suffixed(super::hash::structure_hash(c.g));
    let passes = dyn_passes(c);
    let state = state_access(c);
    quote! {
        impl ::bp::__private::Network for #name {
            type Scalar = #ty;
            const INPUTS: &'static [::bp::__private::Port] = &[#(#in_ports),*];
            const OUTPUTS: &'static [::bp::__private::Port] = &[#(#out_ports),*];
            const STRUCTURE_HASH: u64 = #hash;
            #passes
            #state
        }
    }
}

/// The passes with inputs and gradients as slices.
fn dyn_passes(c: &Expansion) -> TokenStream {
    let ty = &c.ty;
    let t = quote!(::bp::__private::Tensor<#ty>);
    let inputs = c.inputs();
    let (n_in, n_out) = (inputs.len(), c.g.outputs.len());
    let xs = (0..n_in).map(|k| quote!(inputs[#k]));
    let ds: Vec<_> = (0..n_out).map(|k| quote!(d_outputs[#k])).collect();
    let out_arms = c.g.outputs.iter().enumerate().map(|(k, &o)| {
        let v = &c.g.nodes[o].ident;
        quote!(#k => Some(&self.values.#v),)
    });
    let in_arms = inputs.iter().enumerate().map(|(k, &i)| {
        let v = &c.g.nodes[i].ident;
        quote!(#k => Some(&mut self.values.#v),)
    });
    quote! {
        fn forward_dyn(&mut self, inputs: &[&#t]) -> ::core::result::Result<(), ::bp::__private::Error> {
            ::bp::__private::check_count("forward_dyn", #n_in, inputs.len())?;
            self.forward(#(#xs),*)?;
            Ok(())
        }
        fn output(&self, i: usize) -> ::core::option::Option<&#t> {
            if !self.forward_done {
                return None;
            }
            match i { #(#out_arms)* _ => None }
        }
        fn input_mut(&mut self, i: usize) -> ::core::option::Option<&mut #t> {
            match i { #(#in_arms)* _ => None }
        }
        fn forward_loaded_dyn(&mut self) -> ::core::result::Result<(), ::bp::__private::Error> {
            self.forward_loaded()?;
            Ok(())
        }
        fn backward_dyn(&mut self, d_outputs: &[&#t]) -> ::core::result::Result<(), ::bp::__private::Error> {
            ::bp::__private::check_count("backward_dyn", #n_out, d_outputs.len())?;
            self.backward_with(#(#ds,)* ::bp::__private::Accumulate::Overwrite, None)
        }
        fn backward_dyn_accumulate(&mut self, d_outputs: &[&#t]) -> ::core::result::Result<(), ::bp::__private::Error> {
            ::bp::__private::check_count("backward_dyn_accumulate", #n_out, d_outputs.len())?;
            self.backward_with(#(#ds,)* ::bp::__private::Accumulate::Add, None)
        }
        fn backward_sgd_dyn(&mut self, d_outputs: &[&#t], lr: f64) -> ::core::result::Result<(), ::bp::__private::Error> {
            ::bp::__private::check_count("backward_sgd_dyn", #n_out, d_outputs.len())?;
            self.backward_sgd(#(#ds,)* lr)
        }
    }
}

/// A lookup method's parameter and body: `match name { "a" => Some(…), … _ => None }`,
/// or `None` with the parameter unused when there is nothing to find.
fn find(keys: &[&str], values: &[TokenStream]) -> (Ident, TokenStream) {
    if keys.is_empty() {
        return (hyg("_name"), quote!(None));
    }
    let name = hyg("name");
    let body = quote!(match #name { #(#keys => Some(#values),)* _ => None });
    (name, body)
}

/// Each `value` of `fields`, as `&self.at.field` (`&mut` with `mutable`).
fn refs(at: &str, fields: &[impl ToTokens], mutable: bool) -> Vec<TokenStream> {
    let at = Ident::new(at, proc_macro2::Span::call_site());
    let m = mutable.then(|| quote!(mut));
    fields.iter().map(|f| quote!(&#m self.#at.#f)).collect()
}

/// Parameters, gradients and buffers by name; the state checks and the visitor.
fn state_access(c: &Expansion) -> TokenStream {
    let (ty, g) = (&c.ty, c.g);
    let t = quote!(::bp::__private::Tensor<#ty>);
    let pnames: Vec<&str> = g.params.iter().map(|p| p.torch_name.as_str()).collect();
    let pf: Vec<&Ident> = g.params.iter().map(|p| &p.ident).collect();
    let gf: Vec<&Ident> = g.params.iter().map(|p| &p.grad_ident).collect();
    let bnames: Vec<&str> = g.buffers.iter().map(|b| b.torch_name.as_str()).collect();
    let bf: Vec<&Ident> = g.buffers.iter().map(|b| &b.ident).collect();
    let (pn, param) = find(&pnames, &refs("params", &pf, false));
    let (pmn, param_mut) = find(&pnames, &refs("params", &pf, true));
    let (gn, grad) = find(&pnames, &refs("grads", &gf, false));
    let (bn, buffer) = find(&bnames, &refs("buffers", &bf, false));
    let (bmn, buffer_mut) = find(&bnames, &refs("buffers", &bf, true));
    let dims = |shape: &[usize]| {
        let d = shape.iter().map(|&x| lit(x));
        quote!(#(#d),*)
    };
    let pdims: Vec<_> = g.params.iter().map(|p| dims(&p.shape)).collect();
    let bdims: Vec<_> = g.buffers.iter().map(|b| dims(&b.shape)).collect();
    let f = hyg(if pf.is_empty() { "_f" } else { "f" });
    let opt = |m: Option<TokenStream>| quote!(::core::option::Option<&#m #t>);
    let (some, some_mut) = (opt(None), opt(Some(quote!(mut))));
    let nodes = node_access(c);
    quote! {
        fn param_names(&self) -> ::std::vec::Vec<&'static str> {
            ::std::vec![#(#pnames),*]
        }
        fn param(&self, #pn: &str) -> #some {
            #param
        }
        fn param_mut(&mut self, #pmn: &str) -> #some_mut {
            #param_mut
        }
        fn grad(&self, #gn: &str) -> #some {
            if self.grads_spent {
                return None;
            }
            #grad
        }
        fn check_state(&self) -> ::core::result::Result<(), ::bp::__private::Error> {
            #(::bp::__private::check_state_shape("parameter", #pnames, &self.params.#pf, &[#pdims])?;)*
            #(::bp::__private::check_state_shape("buffer", #bnames, &self.buffers.#bf, &[#bdims])?;)*
            ::core::result::Result::Ok(())
        }
        fn buffer_names(&self) -> ::std::vec::Vec<&'static str> {
            ::std::vec![#(#bnames),*]
        }
        fn buffer(&self, #bn: &str) -> #some {
            #buffer
        }
        fn buffer_mut(&mut self, #bmn: &str) -> #some_mut {
            #buffer_mut
        }
        fn reseed(&mut self, seed: u64) {
            self.rng = ::bp::__private::rng::Rng::for_name(seed, "dropout");
        }
        #nodes
        fn visit_params(&mut self, #f: &mut ::bp::__private::ParamVisitor<'_, #ty>) {
            #(#f(#pnames, &mut self.params.#pf, &self.grads.#gf);)*
        }
        fn set_training(&mut self, training: bool) {
            self.mode = if training {
                ::bp::__private::Mode::Training
            } else {
                ::bp::__private::Mode::Evaluation
            };
        }
        fn is_training(&self) -> bool {
            self.mode.is_training()
        }
    }
}

/// The values, residuals and input gradients of the user's nodes by name.
fn node_access(c: &Expansion) -> TokenStream {
    let (ty, g) = (&c.ty, c.g);
    let some = quote!(::core::option::Option<&::bp::__private::Tensor<#ty>>);
    let nodes = g.nodes.iter().enumerate();
    let (res_names, res_fields): (Vec<&str>, Vec<&Ident>) = nodes
        .filter(|(_, n)| n.user && matches!(n.kind, Kind::Op(_)))
        .filter_map(|(id, n)| Some((n.name.as_str(), c.residuals[id].as_ref()?)))
        .unzip();
    let (ig_names, ig_fields): (Vec<&str>, Vec<&Ident>) = c
        .inputs()
        .into_iter()
        .filter_map(|i| Some((g.nodes[i].name.as_str(), c.residuals[i].as_ref()?)))
        .unzip();
    let (val_names, val_fields): (Vec<&str>, Vec<&Ident>) = g
        .nodes
        .iter()
        .filter(|n| n.user && !n.is_param())
        .map(|n| (n.name.as_str(), &n.ident))
        .unzip();
    let (vn, value) = find(&val_names, &refs("values", &val_fields, false));
    let (rn, residual) = find(&res_names, &refs("residuals", &res_fields, false));
    let (ign, input_grad) = find(&ig_names, &refs("residuals", &ig_fields, false));
    quote! {
        fn value(&self, #vn: &str) -> #some {
            if !self.forward_done {
                return None;
            }
            #value
        }
        fn residual(&self, #rn: &str) -> #some {
            if !self.backward_done {
                return None;
            }
            #residual
        }
        fn input_grad(&self, #ign: &str) -> #some {
            if !self.backward_done {
                return None;
            }
            #input_grad
        }
    }
}
