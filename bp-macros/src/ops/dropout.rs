//! `dropout(x, p)`: inverted dropout in training, the identity in evaluation.
//!
//! training:   y = x ⊙ mask, mask_i = 0 with probability p, else 1/(1 − p), drawn from the
//!             network's seeded stream before the forward pass (`reseed` restarts it)
//! evaluation: y = x
//! residual:   d_x = d_y ⊙ mask (training), d_y (evaluation): the same mask as forward

use super::{float_lit, node_arg, AuxSpec, Built, Call, Cx, Op};
use crate::graph::{Builder, NodeId};
use crate::lowering::LetCx;
use crate::symbolic::literal;
use proc_macro2::{Literal, TokenStream};
use quote::quote;

struct Dropout {
    x: [NodeId; 1],
    p: f64,
    n: usize,
}

pub fn build(b: &mut Builder, l: &mut LetCx, call: &Call) -> Option<Built> {
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
    Some((Box::new(Dropout { x: [x], p, n }), shape))
}

impl Op for Dropout {
    fn name(&self) -> &'static str {
        "dropout"
    }
    fn operands(&self) -> &[NodeId] {
        &self.x
    }
    fn aux(&self) -> Vec<AuxSpec> {
        vec![AuxSpec::saved("mask", self.n)]
    }

    fn prepare(&self, cx: &Cx, out: NodeId) -> TokenStream {
        let (mask, rng, batch) = (cx.aux(out, "mask"), &cx.rng, &cx.batch);
        let (p, n) = (literal(self.p), Literal::usize_unsuffixed(self.n));
        quote! {
            #mask.resize(&[#batch * #n]);
            ::bp::kernels::dropout_mask(#p, #rng, #mask);
        }
    }

    fn forward(&self, cx: &Cx, out: NodeId) -> TokenStream {
        let (x, y, mask, training) = (
            cx.value(self.x[0]),
            cx.value(out),
            cx.aux(out, "mask"),
            &cx.training,
        );
        quote! {
            if #training {
                ::bp::kernels::dropout(#x, #mask, #y);
            } else {
                ::bp::kernels::copy(#x, #y, false);
            }
        }
    }

    fn backward(&self, cx: &Cx, out: NodeId) -> TokenStream {
        let Some(c) = cx.contribute(self.x[0]) else {
            return TokenStream::new();
        };
        let (dy, mask, training) = (cx.residual(out), cx.aux(out, "mask"), &cx.training);
        let (pre, dx, acc) = (c.prelude, c.ident, c.acc);
        quote! {
            #pre
            if #training {
                ::bp::kernels::dropout_backward(#dy, #mask, #dx, #acc);
            } else {
                ::bp::kernels::copy(#dy, #dx, #acc);
            }
        }
    }

    fn doc_forward(&self, cx: &Cx, out: NodeId) -> String {
        format!(
            "{} = {} ⊙ mask (training, p = {}), or {1} (evaluation)",
            cx.name(out),
            cx.name(self.x[0]),
            self.p
        )
    }

    fn doc_backward(&self, cx: &Cx, out: NodeId) -> Vec<String> {
        if !cx.wants(self.x[0]) {
            return vec![];
        }
        vec![format!(
            "{} {} ⊙ mask",
            cx.doc_assign(self.x[0]),
            cx.d_name(out)
        )]
    }

    fn structure(&self) -> String {
        format!("dropout({})", self.p)
    }
}
