//! `linear(x, out, bias = true)` over the last dimension, as `nn.Linear`.
//!
//! forward:  y = x·Wᵀ + b                    W [out, in], b [out]
//! params:   ∇W = d_yᵀ·x,  ∇b = Σ_rows d_y
//! residual: d_x = d_y·W

use super::args::{bool_lit, int_lit, layer_params, node_arg, Call};
use super::grads::{bias_math, bias_value};
use crate::graph::{Builder, Built, CodeGen, LetScope, NodeId, Op, ParamId, ParamInit, Step};
use proc_macro2::{Literal, TokenStream};
use quote::quote;

struct Linear {
    x: [NodeId; 1],
    inp: usize,
    out: usize,
    params: Vec<ParamId>,
}

const USAGE: &str = "linear(x, out_features, bias = true)";

pub fn build(b: &mut Builder, l: &mut LetScope, call: &Call) -> Option<Built> {
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
/// have the widths as constant bounds (`bp_runtime::kernels::FIXED_MAX`, which a test
/// ties to this value).
pub const FIXED_MAX: usize = 2048;

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
            quote!(::bp::__private::kernels::#fixed::<_, #i, #o>)
        } else {
            quote!(::bp::__private::kernels::#ident)
        }
    }

    fn dims(&self, cg: &CodeGen) -> (TokenStream, Literal, Literal) {
        (
            cg.rows(self.x[0], 1),
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

    fn forward(&self, cg: &CodeGen, out: NodeId) -> Step {
        let (rows, inp, outf) = self.dims(cg);
        let x = cg.value(self.x[0]);
        let y = cg.value(out);
        let w = &cg.g.params[self.params[0]];
        let math = format!(
            "{} = {}·{}ᵀ{}",
            cg.name(out),
            cg.name(self.x[0]),
            w.torch_name,
            bias_math(cg, self.params.get(1))
        );
        let (w, bias) = (&w.ident, bias_value(cg, self.params.get(1)));
        let code = if self.inp * self.out <= FIXED_MAX {
            let k = self.kernel("linear");
            quote!(#k(#rows, #x, #w, #bias, #y);)
        } else {
            quote!(::bp::__private::kernels::linear(#rows, #inp, #outf, #x, #w, #bias, #y);)
        };
        Step::new(math, code)
    }

    fn backward(&self, cg: &CodeGen, out: NodeId) -> Vec<Step> {
        let (rows, inp, outf) = self.dims(cg);
        let x = cg.value(self.x[0]);
        let dy = cg.residual(out);
        let acc = &cg.accumulate;
        let w = &cg.g.params[self.params[0]];
        let (wv, dw) = (&w.ident, &w.grad_ident);
        let (d_y, xn) = (cg.d_name(out), cg.name(self.x[0]));
        let fixed = self.inp * self.out <= FIXED_MAX;
        let mut steps = Vec::new();
        // The input's residual first: it reads W, which the fused SGD step overwrites.
        if let Some(c) = cg.contribute(self.x[0]) {
            let math = format!("{} {d_y}·{}", c.math, w.torch_name);
            let (pre, dx, a) = (c.prelude, c.ident, c.acc);
            let ki = self.kernel("linear_backward_input");
            let code = if fixed {
                quote!(#pre #ki(#rows, #dy, #wv, #dx, #a);)
            } else {
                quote!(#pre #ki(#rows, #inp, #outf, #dy, #wv, #dx, #a);)
            };
            steps.push(Step::new(math, code));
        }
        let kw = self.kernel("linear_backward_weight");
        let code = if fixed {
            quote!(#kw(#rows, #dy, #x, #dw, #acc);)
        } else {
            // Under `backward_sgd`, W ← W − lr·d_yᵀ·x in one product, with no gradient.
            let (sgd, lr) = (&cg.sgd, &cg.lr);
            let w_mut = cg.fuse_sgd(self.params[0]);
            quote! {
                if let Some(#lr) = #sgd {
                    ::bp::__private::kernels::linear_sgd_weight(#rows, #inp, #outf, #dy, #x, #w_mut, #lr);
                } else {
                    #kw(#rows, #inp, #outf, #dy, #x, #dw, #acc);
                }
            }
        };
        steps.push(Step::new(format!("{dw} = {d_y}ᵀ·{xn}"), code));
        if let Some(&p) = self.params.get(1) {
            let db = &cg.g.params[p].grad_ident;
            let code =
                quote!(::bp::__private::kernels::bias_backward(#rows, #outf, #dy, #db, #acc););
            steps.push(Step::new(format!("{db} = Σ_rows {d_y}"), code));
        }
        steps
    }

    fn structure(&self) -> String {
        format!(
            "linear(out_features={}, bias={})",
            self.out,
            self.params.len() > 1
        )
    }
}

#[cfg(test)]
mod tests {
    /// The macro emits `*_fixed` kernels up to the size the runtime has them for.
    #[test]
    fn fixed_max_is_the_runtime_s() {
        assert_eq!(super::FIXED_MAX, bp_runtime::kernels::FIXED_MAX);
    }
}
