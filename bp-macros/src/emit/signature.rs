//! The types of the generated API, from the inputs and outputs alone: the real API and
//! the fallback emitted after an error share them, so both have the same signatures.

use proc_macro2::{Ident, TokenStream};
use quote::quote;

/// The API's argument lists and return types.
pub struct Signature {
    /// `bp::Tensor<f32>` (or `f64`).
    pub t: TokenStream,
    /// The element type.
    pub ty: TokenStream,
    /// The hidden module of the buffer structs.
    pub m: Ident,
    /// The inputs' argument names, in declaration order.
    pub inputs: Vec<Ident>,
    /// The output gradients' argument names, in `output` order.
    pub d_args: Vec<Ident>,
}

impl Signature {
    /// `x: &Tensor<T>, …` of `forward` and `predict`.
    pub fn input_params(&self) -> TokenStream {
        let (ins, t) = (&self.inputs, &self.t);
        quote!(#(#ins: &#t),*)
    }

    /// `d_y: &Tensor<T>, …` of `backward`.
    pub fn d_params(&self) -> TokenStream {
        let (ds, t) = (&self.d_args, &self.t);
        quote!(#(#ds: &#t),*)
    }

    /// `(&mut Tensor<T>, …)` of `inputs_mut`.
    pub fn inputs_mut_ty(&self) -> TokenStream {
        let t = &self.t;
        let tys = self.inputs.iter().map(|_| t);
        quote!((#(&mut #tys,)*))
    }

    /// What `forward` returns: `&T` for one output, a tuple of them for several; with
    /// `lifetime` `'w`, borrowed from a workspace.
    pub fn out_ty(&self, lifetime: Option<TokenStream>) -> TokenStream {
        let t = &self.t;
        if self.d_args.len() == 1 {
            return quote!(&#lifetime #t);
        }
        let reps = self.d_args.iter().map(|_| t);
        quote!((#(&#lifetime #reps,)*))
    }

    /// What `predict` returns: the output(s), owned.
    pub fn out_owned_ty(&self) -> TokenStream {
        let t = &self.t;
        if self.d_args.len() == 1 {
            return t.clone();
        }
        let reps = self.d_args.iter().map(|_| t);
        quote!((#(#reps,)*))
    }
}
