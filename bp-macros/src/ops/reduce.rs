//! `sum(x)` and `mean(x)` over all per-sample dimensions, giving a scalar `[]` per sample.
//!
//! forward:  y = Σ_i x_i            (mean: y = Σ_i x_i / n)
//! residual: d_x_i = d_y            (mean: d_x_i = d_y / n)

use super::args::{node_arg, Call};
use crate::graph::{Builder, Built, CodeGen, LetScope, NodeId, Op, Step};
use proc_macro2::Literal;
use quote::quote;

struct Reduce {
    x: [NodeId; 1],
    mean: bool,
}

pub fn build(b: &mut Builder, l: &mut LetScope, call: &Call) -> Option<Built> {
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

    fn forward(&self, cg: &CodeGen, out: NodeId) -> Step {
        let (x, y, batch) = (cg.value(self.x[0]), cg.value(out), &cg.batch);
        let n = cg.numel(self.x[0]);
        let (xn, yn) = (cg.name(self.x[0]), cg.name(out));
        let math = if self.mean {
            format!("{yn} = Σ_i {xn}_i / {n}")
        } else {
            format!("{yn} = Σ_i {xn}_i")
        };
        let n = Literal::usize_unsuffixed(n);
        let f = if self.mean { quote!(mean) } else { quote!(sum) };
        Step::new(
            math,
            quote!(::bp::__private::kernels::#f(#batch, #n, #x, #y);),
        )
    }

    fn backward(&self, cg: &CodeGen, out: NodeId) -> Vec<Step> {
        let Some(c) = cg.contribute(self.x[0]) else {
            return vec![];
        };
        let (dy, batch) = (cg.residual(out), &cg.batch);
        let n = cg.numel(self.x[0]);
        let (lhs, d_y) = (&c.math, cg.d_name(out));
        let math = if self.mean {
            format!("{lhs} {d_y} / {n}  (each element)")
        } else {
            format!("{lhs} {d_y}  (each element)")
        };
        let n = Literal::usize_unsuffixed(n);
        let f = if self.mean {
            quote!(mean_backward)
        } else {
            quote!(sum_backward)
        };
        let (pre, dx, acc) = (c.prelude, c.ident, c.acc);
        vec![Step::new(
            math,
            quote!(#pre ::bp::__private::kernels::#f(#batch, #n, #dy, #dx, #acc);),
        )]
    }

    fn structure(&self) -> String {
        self.name().to_string()
    }
}
