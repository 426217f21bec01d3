//! `linear(x, out, bias = true)` over the last dimension, as `nn.Linear`.
//!
//! forward:  y = x·Wᵀ + b                    W [out, in], b [out]
//! params:   ∇W = d_yᵀ·x,  ∇b = Σ_rows d_y
//! residual: d_x = d_y·W

use super::{bool_lit, int_lit, layer_params, node_arg, Built, Call, Cx, Op, ParamInit};
use crate::graph::{Builder, NodeId, ParamId};
use crate::lowering::LetCx;
use proc_macro2::{Literal, TokenStream};
use quote::quote;

struct Linear {
    x: [NodeId; 1],
    inp: usize,
    out: usize,
    params: Vec<ParamId>,
}

const USAGE: &str = "linear(x, out_features, bias = true)";

pub fn build(b: &mut Builder, l: &mut LetCx, call: &Call) -> Option<Built> {
    if !call.check(b.cx, 2, 2, &["bias"], USAGE) {
        return None;
    }
    let x = node_arg(b, l, call.args[0], "linear");
    let out = int_lit(b.cx, call.args[1], "the number of output features");
    let bias = match call.hyper("bias") {
        Some(e) => bool_lit(b.cx, e, "bias")?,
        None => true,
    };
    let (x, out) = (x?, out?);
    let shape = b.node(x).shape.clone()?;
    let Some(&inp) = shape.last() else {
        b.cx.error_at(
            call.args[0],
            "`linear` needs an input with at least one dimension, found a scalar []",
        );
        return None;
    };
    // PyTorch's default: kaiming_uniform(a = √5) on the weight and the bias both reduce
    // to U(−1/√in, 1/√in).
    let bound = 1.0 / (inp as f64).sqrt();
    let init = ParamInit::Uniform(-bound, bound);
    let mut specs = vec![("weight", vec![out, inp], init.clone())];
    if bias {
        specs.push(("bias", vec![out], init));
    }
    let params = layer_params(b, l, call, specs)?;
    let mut y = shape;
    *y.last_mut()? = out;
    Some((
        Box::new(Linear {
            x: [x],
            inp,
            out,
            params,
        }),
        y,
    ))
}

/// Layers with `inp·out` up to this use the runtime's fixed-size kernels, whose loops
/// have the widths as constant bounds (the same value as `bp_runtime::kernels::FIXED_MAX`).
const FIXED_MAX: usize = 2048;

impl Linear {
    /// The runtime kernel `name`, or its fixed-size twin `name_fixed::<_, INP, OUT>` for a
    /// small layer.
    fn kernel(&self, name: &str) -> TokenStream {
        let ident = proc_macro2::Ident::new(name, proc_macro2::Span::call_site());
        if self.inp * self.out <= FIXED_MAX {
            let fixed = proc_macro2::Ident::new(&format!("{name}_fixed"), ident.span());
            let (i, o) = (
                Literal::usize_unsuffixed(self.inp),
                Literal::usize_unsuffixed(self.out),
            );
            quote!(::bp::kernels::#fixed::<_, #i, #o>)
        } else {
            quote!(::bp::kernels::#ident)
        }
    }

    fn dims(&self, cx: &Cx) -> (TokenStream, Literal, Literal) {
        (
            cx.rows(self.x[0], 1),
            Literal::usize_unsuffixed(self.inp),
            Literal::usize_unsuffixed(self.out),
        )
    }
}

impl Op for Linear {
    fn name(&self) -> &'static str {
        "linear"
    }
    fn operands(&self) -> &[NodeId] {
        &self.x
    }
    fn params(&self) -> &[ParamId] {
        &self.params
    }

    fn forward(&self, cx: &Cx, out: NodeId) -> TokenStream {
        let (rows, inp, outf) = self.dims(cx);
        let x = cx.value(self.x[0]);
        let y = cx.value(out);
        let w = &cx.g.params[self.params[0]].ident;
        let bias = match self.params.get(1) {
            Some(&p) => {
                let b = &cx.g.params[p].ident;
                quote!(Some(#b.as_slice()))
            }
            None => quote!(None),
        };
        if self.inp * self.out <= FIXED_MAX {
            let k = self.kernel("linear");
            return quote!(#k(#rows, #x, #w, #bias, #y););
        }
        quote!(::bp::kernels::linear(#rows, #inp, #outf, #x, #w, #bias, #y);)
    }

    fn backward(&self, cx: &Cx, out: NodeId) -> TokenStream {
        let (rows, inp, outf) = self.dims(cx);
        let x = cx.value(self.x[0]);
        let dy = cx.residual(out);
        let acc = &cx.accumulate;
        let w = &cx.g.params[self.params[0]];
        let (wv, dw) = (&w.ident, &w.grad_ident);
        let fixed = self.inp * self.out <= FIXED_MAX;
        let mut ts = TokenStream::new();
        // The input's residual first: it reads W, which the fused SGD step overwrites.
        if let Some(c) = cx.contribute(self.x[0]) {
            let (pre, dx, a) = (c.prelude, c.ident, c.acc);
            let ki = self.kernel("linear_backward_input");
            ts.extend(if fixed {
                quote!(#pre #ki(#rows, #dy, #wv, #dx, #a);)
            } else {
                quote!(#pre #ki(#rows, #inp, #outf, #dy, #wv, #dx, #a);)
            });
        }
        let kw = self.kernel("linear_backward_weight");
        ts.extend(if fixed {
            quote!(#kw(#rows, #dy, #x, #dw, #acc);)
        } else {
            // Under `backward_sgd`, W ← W − lr·d_yᵀ·x in one product, with no gradient.
            let (sgd, lr) = (&cx.sgd, &cx.lr);
            let w_mut = cx.fuse_sgd(self.params[0]);
            quote! {
                if let Some(#lr) = #sgd {
                    ::bp::kernels::linear_sgd_weight(#rows, #inp, #outf, #dy, #x, #w_mut, #lr);
                } else {
                    #kw(#rows, #inp, #outf, #dy, #x, #dw, #acc);
                }
            }
        });
        if let Some(&p) = self.params.get(1) {
            let db = &cx.g.params[p].grad_ident;
            ts.extend(quote!(::bp::kernels::bias_backward(#rows, #outf, #dy, #db, #acc);));
        }
        ts
    }

    fn doc_forward(&self, cx: &Cx, out: NodeId) -> String {
        let w = &cx.g.params[self.params[0]].torch_name;
        let bias = match self.params.get(1) {
            Some(&p) => format!(" + {}", cx.g.params[p].torch_name),
            None => String::new(),
        };
        format!("{} = {}·{w}ᵀ{bias}", cx.name(out), cx.name(self.x[0]))
    }

    fn doc_backward(&self, cx: &Cx, out: NodeId) -> Vec<String> {
        let (dy, x) = (cx.d_name(out), cx.name(self.x[0]));
        let w = &cx.g.params[self.params[0]];
        let mut lines = Vec::new();
        if cx.wants(self.x[0]) {
            lines.push(format!(
                "{} {dy}·{}",
                cx.doc_assign(self.x[0]),
                w.torch_name
            ));
        }
        lines.push(format!("{} = {dy}ᵀ·{x}", w.grad_ident));
        if let Some(&p) = self.params.get(1) {
            lines.push(format!("{} = Σ_rows {dy}", cx.g.params[p].grad_ident));
        }
        lines
    }

    fn structure(&self) -> String {
        format!(
            "linear({}, {}, bias={})",
            self.inp,
            self.out,
            self.params.len() > 1
        )
    }
}
