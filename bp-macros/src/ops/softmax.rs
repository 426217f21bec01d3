//! `softmax(x)` and `log_softmax(x)` over the last dimension.
//!
//! softmax:     y = exp(x − max) / Σ exp(x − max)
//!              d_x = y ⊙ (d_y − Σ_j d_y_j·y_j)
//! log_softmax: y = x − logsumexp(x)
//!              d_x = d_y − exp(y)·Σ_j d_y_j

use super::{node_arg, Built, Call, Cx, Op};
use crate::graph::{Builder, NodeId};
use crate::lowering::LetCx;
use proc_macro2::{Literal, TokenStream};
use quote::quote;

struct Softmax {
    x: [NodeId; 1],
    log: bool,
}

pub fn build(b: &mut Builder, l: &mut LetCx, call: &Call) -> Option<Built> {
    let name = call.func.to_string();
    if !call.check(b.cx, 1, 1, &[], &format!("{name}(x)")) {
        return None;
    }
    let x = node_arg(b, l, call.args[0], &name)?;
    let shape = b.node(x).shape.clone()?;
    if shape.is_empty() {
        b.cx.error_at(
            call.args[0],
            format!("`{name}` works over the last dimension, but its input is a scalar []"),
        );
        return None;
    }
    let log = name == "log_softmax";
    Some((Box::new(Softmax { x: [x], log }), shape))
}

impl Op for Softmax {
    fn name(&self) -> &'static str {
        if self.log {
            "log_softmax"
        } else {
            "softmax"
        }
    }
    fn operands(&self) -> &[NodeId] {
        &self.x
    }

    fn forward(&self, cx: &Cx, out: NodeId) -> TokenStream {
        let (x, y) = (cx.value(self.x[0]), cx.value(out));
        let rows = cx.rows(self.x[0], 1);
        let n = Literal::usize_unsuffixed(*cx.shape(self.x[0]).last().unwrap_or(&1));
        let f = if self.log {
            quote!(log_softmax)
        } else {
            quote!(softmax)
        };
        quote!(::bp::kernels::#f(#rows, #n, #x, #y);)
    }

    fn backward(&self, cx: &Cx, out: NodeId) -> TokenStream {
        let Some(c) = cx.contribute(self.x[0]) else {
            return TokenStream::new();
        };
        let (y, dy) = (cx.value(out), cx.residual(out));
        let rows = cx.rows(self.x[0], 1);
        let n = Literal::usize_unsuffixed(*cx.shape(self.x[0]).last().unwrap_or(&1));
        let f = if self.log {
            quote!(log_softmax_backward)
        } else {
            quote!(softmax_backward)
        };
        let (pre, dx, acc) = (c.prelude, c.ident, c.acc);
        quote!(#pre ::bp::kernels::#f(#rows, #n, #y, #dy, #dx, #acc);)
    }

    fn doc_forward(&self, cx: &Cx, out: NodeId) -> String {
        let (x, y) = (cx.name(self.x[0]), cx.name(out));
        if self.log {
            format!("{y} = {x} − logsumexp({x})  (over the last dim)")
        } else {
            format!("{y} = exp({x}) / Σ exp({x})  (over the last dim)")
        }
    }

    fn doc_backward(&self, cx: &Cx, out: NodeId) -> Vec<String> {
        if !cx.wants(self.x[0]) {
            return vec![];
        }
        let (dx, dy, y) = (cx.doc_assign(self.x[0]), cx.d_name(out), cx.name(out));
        vec![if self.log {
            format!("{dx} {dy} − exp({y})·Σ_j {dy}_j")
        } else {
            format!("{dx} {y} ⊙ ({dy} − Σ_j {dy}_j·{y}_j)")
        }]
    }

    fn structure(&self) -> String {
        self.name().to_string()
    }
}
