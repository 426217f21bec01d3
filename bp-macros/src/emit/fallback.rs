//! What the macro emits when the description has errors: the errors, and the network's
//! struct with every method of its API and the `bp::Network` implementation as stubs
//! with the real signatures (the habit of thiserror's fallback). The user's other code
//! (`Net::new(0)`, `net.forward(&x)`) then type-checks, so the only errors shown are the
//! real ones. The stubs never run: the crate does not compile while the errors stand.

use super::signature::Signature;
use crate::syntax::{Dtype, Header};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// The errors and the stub API of the network `h` describes.
pub fn fallback(h: &Header, errors: TokenStream) -> TokenStream {
    let ty = match h.dtype {
        Dtype::F32 => quote!(f32),
        Dtype::F64 => quote!(f64),
    };
    let sig = Signature {
        t: quote!(::bp::__private::Tensor<#ty>),
        ty,
        m: format_ident!("__bp_{}", h.name),
        inputs: h.inputs.clone(),
        d_args: h.outputs.iter().map(|o| format_ident!("d_{o}")).collect(),
    };
    let Header {
        attrs, vis, name, ..
    } = h;
    let m = &sig.m;
    let methods = stub_methods(&sig);
    let network = stub_network(&sig);
    quote! {
        #errors
        #[doc(hidden)]
        #[allow(non_snake_case)]
        pub mod #m {
            /// The forward pass's workspace (a stub: the network has errors).
            #[derive(Clone, Debug, Default)]
            pub struct Values;
        }
        #(#attrs)*
        #[derive(Clone, Debug)]
        #vis struct #name {
            __bp_stub: (),
        }
        #[allow(unused_variables)]
        impl #name {
            #methods
        }
        #[allow(unused_variables)]
        impl ::bp::__private::Network for #name {
            #network
        }
    }
}

/// The inherent API, every body unreachable.
fn stub_methods(sig: &Signature) -> TokenStream {
    let (m, t) = (&sig.m, &sig.t);
    let (inputs, d_params) = (sig.input_params(), sig.d_params());
    let ds = &sig.d_args;
    let (out_ty, out_ty_w) = (sig.out_ty(None), sig.out_ty(Some(quote!('w))));
    let (out_owned_ty, inputs_mut_ty) = (sig.out_owned_ty(), sig.inputs_mut_ty());
    let r = |t: TokenStream| quote!(::core::result::Result<#t, ::bp::__private::Error>);
    let (r_out, r_unit, r_self) = (r(out_ty.clone()), r(quote!(())), r(quote!(Self)));
    let (r_owned, r_w) = (r(out_owned_ty), r(out_ty_w));
    let stub = quote!({ ::core::unreachable!("network! had errors") });
    quote! {
        pub fn new(seed: u64) -> Self #stub
        pub fn try_new(seed: u64) -> #r_self #stub
        pub fn set_check_finite(&mut self, on: bool) #stub
        pub fn check_finite(&self) -> bool #stub
        pub fn forward(&mut self, #inputs) -> #r_out #stub
        pub fn inputs_mut(&mut self) -> #inputs_mut_ty #stub
        pub fn forward_loaded(&mut self) -> #r_out #stub
        pub fn backward(&mut self, #d_params) -> #r_unit #stub
        pub fn backward_accumulate(&mut self, #d_params) -> #r_unit #stub
        pub fn backward_sgd(&mut self, #(#ds: &#t,)* lr: f64) -> #r_unit #stub
        pub fn predict(&self, #inputs) -> #r_owned #stub
        pub fn predict_into<'w>(&self, ws: &'w mut #m::Values, #inputs) -> #r_w #stub
        pub fn workspace(&self) -> #m::Values #stub
    }
}

/// The required items of `bp::Network`, every body unreachable.
fn stub_network(sig: &Signature) -> TokenStream {
    let (t, ty) = (&sig.t, &sig.ty);
    let p = quote!(::bp::__private::__private);
    let r = |t: TokenStream| quote!(::core::result::Result<#t, #p::Error>);
    let unit = r(quote!(()));
    let opt = |t: TokenStream| quote!(::core::option::Option<#t>);
    let (some_t, some_mut_t) = (opt(quote!(&#t)), opt(quote!(&mut #t)));
    let names = quote!(::std::vec::Vec<&'static str>);
    let stub = quote!({ ::core::unreachable!("network! had errors") });
    quote! {
        type Scalar = #ty;
        const INPUTS: &'static [#p::Port] = &[];
        const OUTPUTS: &'static [#p::Port] = &[];
        const STRUCTURE_HASH: u64 = 0;
        fn forward_dyn(&mut self, inputs: &[&#t]) -> #unit #stub
        fn output(&self, i: usize) -> #some_t #stub
        fn backward_dyn(&mut self, d_outputs: &[&#t]) -> #unit #stub
        fn backward_dyn_accumulate(&mut self, d_outputs: &[&#t]) -> #unit #stub
        fn param_names(&self) -> #names #stub
        fn param(&self, name: &str) -> #some_t #stub
        fn param_mut(&mut self, name: &str) -> #some_mut_t #stub
        fn grad(&self, name: &str) -> #some_t #stub
        fn buffer_names(&self) -> #names #stub
        fn buffer(&self, name: &str) -> #some_t #stub
        fn buffer_mut(&mut self, name: &str) -> #some_mut_t #stub
        fn residual(&self, name: &str) -> #some_t #stub
        fn input_grad(&self, name: &str) -> #some_t #stub
        fn visit_params(&mut self, f: &mut #p::ParamVisitor<'_, #ty>) #stub
        fn set_training(&mut self, training: bool) #stub
        fn is_training(&self) -> bool #stub
    }
}
