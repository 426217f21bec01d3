//! `sum(x)` and `mean(x)` over all per-sample dimensions, giving a scalar `[]` per sample.
//!
//! forward:  y = Σ_i x_i            (mean: y = Σ_i x_i / n)
//! residual: d_x_i = d_y            (mean: d_x_i = d_y / n)

use super::{node_arg, Built, Call, Cx, Op};
use crate::graph::{Builder, NodeId};
use crate::lowering::LetCx;
use proc_macro2::{Literal, TokenStream};
use quote::quote;

struct Reduce {
    x: [NodeId; 1],
    mean: bool,
}

pub fn build(b: &mut Builder, l: &mut LetCx, call: &Call) -> Option<Built> {
    let name = call.func.to_string();
    if !call.check(b.cx, 1, 1, &[], &format!("{name}(x)")) {
        return None;
    }
    let x = node_arg(b, l, call.args[0], &name)?;
    Some((
        Box::new(Reduce {
            x: [x],
            mean: name == "mean",
        }),
        vec![],
    ))
}

impl Op for Reduce {
    fn name(&self) -> &'static str {
        if self.mean {
            "mean"
        } else {
            "sum"
        }
    }
    fn operands(&self) -> &[NodeId] {
        &self.x
    }

    fn forward(&self, cx: &Cx, out: NodeId) -> TokenStream {
        let (x, y, batch) = (cx.value(self.x[0]), cx.value(out), &cx.batch);
        let n = Literal::usize_unsuffixed(cx.numel(self.x[0]));
        let f = if self.mean { quote!(mean) } else { quote!(sum) };
        quote!(::bp::kernels::#f(#batch, #n, #x, #y);)
    }

    fn backward(&self, cx: &Cx, out: NodeId) -> TokenStream {
        let Some(c) = cx.contribute(self.x[0]) else {
            return TokenStream::new();
        };
        let (dy, batch) = (cx.residual(out), &cx.batch);
        let n = Literal::usize_unsuffixed(cx.numel(self.x[0]));
        let f = if self.mean {
            quote!(mean_backward)
        } else {
            quote!(sum_backward)
        };
        let (pre, dx, acc) = (c.prelude, c.ident, c.acc);
        quote!(#pre ::bp::kernels::#f(#batch, #n, #dy, #dx, #acc);)
    }

    fn doc_forward(&self, cx: &Cx, out: NodeId) -> String {
        let n = cx.numel(self.x[0]);
        let x = cx.name(self.x[0]);
        if self.mean {
            format!("{} = Σ_i {x}_i / {n}", cx.name(out))
        } else {
            format!("{} = Σ_i {x}_i", cx.name(out))
        }
    }

    fn doc_backward(&self, cx: &Cx, out: NodeId) -> Vec<String> {
        if !cx.wants(self.x[0]) {
            return vec![];
        }
        let (dx, dy) = (cx.doc_assign(self.x[0]), cx.d_name(out));
        let n = cx.numel(self.x[0]);
        vec![if self.mean {
            format!("{dx} {dy} / {n}  (each element)")
        } else {
            format!("{dx} {dy}  (each element)")
        }]
    }

    fn structure(&self) -> String {
        self.name().to_string()
    }
}
