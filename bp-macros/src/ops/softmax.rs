//! `softmax(x)` and `log_softmax(x)` over the last dimension.
//!
//! softmax:     y = exp(x − max) / Σ exp(x − max)
//!              d_x = y ⊙ (d_y − Σ_j d_y_j·y_j)
//! log_softmax: y = x − logsumexp(x)
//!              d_x = d_y − exp(y)·Σ_j d_y_j

use super::args::{node_arg, Call};
use crate::graph::{Builder, Built, CodeGen, LetScope, NodeId, Op, Step};
use proc_macro2::Literal;
use quote::quote;

struct Softmax {
    x: [NodeId; 1],
    log: bool,
}

pub fn build(b: &mut Builder, l: &mut LetScope, call: &Call) -> Option<Built> {
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

    fn forward(&self, cg: &CodeGen, out: NodeId) -> Step {
        let (x, y) = (cg.value(self.x[0]), cg.value(out));
        let rows = cg.rows(self.x[0], 1);
        let n = Literal::usize_unsuffixed(*cg.shape(self.x[0]).last().unwrap_or(&1));
        let (xn, yn) = (cg.name(self.x[0]), cg.name(out));
        let (math, f) = if self.log {
            let math = format!("{yn} = {xn} − logsumexp({xn})  (over the last dim)");
            (math, quote!(log_softmax))
        } else {
            let math = format!("{yn} = exp({xn}) / Σ exp({xn})  (over the last dim)");
            (math, quote!(softmax))
        };
        Step::new(
            math,
            quote!(::bp::__private::kernels::#f(#rows, #n, #x, #y);),
        )
    }

    fn backward(&self, cg: &CodeGen, out: NodeId) -> Vec<Step> {
        let Some(c) = cg.contribute(self.x[0]) else {
            return vec![];
        };
        let (y, dy) = (cg.value(out), cg.residual(out));
        let rows = cg.rows(self.x[0], 1);
        let n = Literal::usize_unsuffixed(*cg.shape(self.x[0]).last().unwrap_or(&1));
        let (lhs, d_y, yn) = (&c.math, cg.d_name(out), cg.name(out));
        let (math, f) = if self.log {
            let math = format!("{lhs} {d_y} − exp({yn})·Σ_j {d_y}_j");
            (math, quote!(log_softmax_backward))
        } else {
            let math = format!("{lhs} {yn} ⊙ ({d_y} − Σ_j {d_y}_j·{yn}_j)");
            (math, quote!(softmax_backward))
        };
        let (pre, dx, acc) = (c.prelude, c.ident, c.acc);
        vec![Step::new(
            math,
            quote!(#pre ::bp::__private::kernels::#f(#rows, #n, #y, #dy, #dx, #acc);),
        )]
    }

    fn structure(&self) -> String {
        self.name().to_string()
    }
}
