//! `dropout(x, p)`: inverted dropout in training, the identity in evaluation.
//!
//! training:   y = x ⊙ mask, mask_i = 0 with probability p, else 1/(1 − p), drawn from the
//!             network's seeded stream before the forward pass (`reseed` restarts it)
//! evaluation: y = x
//! residual:   d_x = d_y ⊙ mask (training), d_y (evaluation): the same mask as forward

use super::args::{float_lit, node_arg, Call};
use crate::formula::literal;
use crate::graph::{AuxId, AuxSpec, Builder, Built, CodeGen, LetScope, NodeId, Op, Step};
use proc_macro2::{Literal, TokenStream};
use quote::quote;

struct Dropout {
    x: [NodeId; 1],
    p: f64,
    n: usize,
    mask: AuxId,
}

pub fn build(b: &mut Builder, l: &mut LetScope, call: &Call) -> Option<Built> {
    if !call.check(b.cx, 1, 2, &["p"], "dropout(x, p)") {
        return None;
    }
    let x = node_arg(b, l, call.args[0], "dropout");
    let p = match (call.args.get(1).copied(), call.hyper("p")) {
        (Some(e), None) | (None, Some(e)) => float_lit(b.cx, e, "the dropout probability p")?,
        (Some(_), Some(e)) => {
            b.cx.error_at(e, "`p` is given twice, by position and by name");
            return None;
        }
        (None, None) => {
            b.cx.error(
                call.func.span(),
                "`dropout` needs its probability: dropout(x, p)",
            );
            return None;
        }
    };
    if !(0.0..1.0).contains(&p) {
        let at = call.args.get(1).copied().or(call.hyper("p"))?;
        b.cx.error_at(
            at,
            format!("the dropout probability must be in [0, 1), found {p}"),
        );
        return None;
    }
    let x = x?;
    let shape = b.node(x).shape.clone()?;
    let n = crate::syntax::numel(&shape);
    let mask = b.workspace(AuxSpec::saved("mask", n));
    Some((Box::new(Dropout { x: [x], p, n, mask }), shape))
}

impl Op for Dropout {
    fn name(&self) -> &'static str {
        "dropout"
    }
    fn operands(&self) -> &[NodeId] {
        &self.x
    }
    fn prepare(&self, cg: &CodeGen, _out: NodeId) -> TokenStream {
        let (mask, rng, batch) = (cg.aux(self.mask), &cg.rng, &cg.batch);
        let (p, n) = (literal(self.p), Literal::usize_unsuffixed(self.n));
        quote! {
            #mask.resize(&[#batch * #n]);
            ::bp::__private::kernels::dropout_mask(#p, #rng, #mask);
        }
    }

    fn forward(&self, cg: &CodeGen, out: NodeId) -> Step {
        let (x, y, mask, mode) = (
            cg.value(self.x[0]),
            cg.value(out),
            cg.aux(self.mask),
            &cg.mode,
        );
        let math = format!(
            "{} = {} ⊙ mask (training, p = {}), or {1} (evaluation)",
            cg.name(out),
            cg.name(self.x[0]),
            self.p
        );
        Step::new(
            math,
            quote! {
                if #mode.is_training() {
                    ::bp::__private::kernels::dropout(#x, #mask, #y);
                } else {
                    ::bp::__private::kernels::copy(#x, #y, ::bp::__private::Accumulate::Overwrite);
                }
            },
        )
    }

    fn backward(&self, cg: &CodeGen, out: NodeId) -> Vec<Step> {
        let Some(c) = cg.contribute(self.x[0]) else {
            return vec![];
        };
        let math = format!("{} {} ⊙ mask", c.math, cg.d_name(out));
        let (dy, mask, mode) = (cg.residual(out), cg.aux(self.mask), &cg.mode);
        let (pre, dx, acc) = (c.prelude, c.ident, c.acc);
        let code = quote! {
            #pre
            if #mode.is_training() {
                ::bp::__private::kernels::dropout_backward(#dy, #mask, #dx, #acc);
            } else {
                ::bp::__private::kernels::copy(#dy, #dx, #acc);
            }
        };
        vec![Step::new(math, code)]
    }

    fn structure(&self) -> String {
        format!("dropout(p={:?})", self.p)
    }
}
