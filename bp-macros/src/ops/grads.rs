//! Code the layers share: an input gradient a kernel computes alongside the parameter
//! gradients (or skips), and the optional bias.

use crate::graph::{CodeGen, NodeId, ParamId};
use proc_macro2::TokenStream;
use quote::quote;

/// The input gradient as a kernel's optional output.
pub struct InputGrad {
    /// Sizes the residual before its first write.
    pub prelude: TokenStream,
    /// `Some(d_x.as_mut_slice())`, or `None` when `x` takes no gradient.
    pub slice: TokenStream,
    /// Whether the kernel adds to `d_x` or overwrites it.
    pub acc: TokenStream,
    /// The docs' `d_x =` or `d_x +=`, when `x` takes a gradient.
    pub math: Option<String>,
}

/// The contribution to operand `x`'s residual, as an optional kernel output.
pub fn optional_input(cg: &CodeGen, x: NodeId) -> InputGrad {
    match cg.contribute(x) {
        Some(c) => {
            let d = c.ident;
            InputGrad {
                prelude: c.prelude,
                slice: quote!(Some(#d.as_mut_slice())),
                acc: c.acc,
                math: Some(c.math),
            }
        }
        None => InputGrad {
            prelude: TokenStream::new(),
            slice: quote!(None),
            acc: quote!(::bp::__private::Accumulate::Overwrite),
            math: None,
        },
    }
}

/// `Some(bias.as_slice())` or `None`.
pub fn bias_value(cg: &CodeGen, bias: Option<&ParamId>) -> TokenStream {
    match bias {
        Some(&p) => {
            let b = &cg.g.params[p].ident;
            quote!(Some(#b.as_slice()))
        }
        None => quote!(None),
    }
}

/// `Some(d_bias.as_mut_slice())` or `None`.
pub fn bias_grad(cg: &CodeGen, bias: Option<&ParamId>) -> TokenStream {
    match bias {
        Some(&p) => {
            let d = &cg.g.params[p].grad_ident;
            quote!(Some(#d.as_mut_slice()))
        }
        None => quote!(None),
    }
}

/// ` + fc.bias` in the docs' forward, or nothing.
pub fn bias_math(cg: &CodeGen, bias: Option<&ParamId>) -> String {
    bias.map_or_else(String::new, |&p| {
        format!(" + {}", cg.g.params[p].torch_name)
    })
}
