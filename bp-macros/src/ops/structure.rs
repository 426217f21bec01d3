//! Operations that move values without arithmetic: `concat(a, b, …, dim = 0)` along a
//! per-sample dimension, and `flatten(x)` to `[prod]`.
//!
//! concat:  y = [a | b | …] along dim;  d_a = d_y[.., a's slice, ..], …
//! flatten: y = x reshaped;             d_x = d_y reshaped

use super::args::{index_lit, node_arg, Call};
use crate::graph::{Builder, Built, CodeGen, LetScope, NodeId, Op, Step};
use proc_macro2::{Literal, TokenStream};
use quote::{quote, ToTokens};

struct Concat {
    parts: Vec<NodeId>,
    dim: usize,
}

pub fn build_concat(b: &mut Builder, l: &mut LetScope, call: &Call) -> Option<Built> {
    if !call.check(b.cx, 2, usize::MAX, &["dim"], "concat(a, b, …, dim = 0)") {
        return None;
    }
    let dim = match call.hyper("dim") {
        Some(e) => index_lit(b.cx, e, "dim")?,
        None => 0,
    };
    let parts: Vec<Option<NodeId>> = call
        .args
        .iter()
        .map(|a| node_arg(b, l, a, "concat"))
        .collect();
    let parts: Vec<NodeId> = parts.into_iter().collect::<Option<_>>()?;
    let first = b.node(parts[0]).shape.clone()?;
    if dim >= first.len() {
        let at = call
            .hyper("dim")
            .map_or(call.func.to_token_stream(), |e| e.to_token_stream());
        b.cx.error_at(
            &at,
            format!(
                "concat along dim {dim}, but `{}` has shape {first:?} with {} dimension(s)",
                call.args[0].to_token_stream(),
                first.len()
            ),
        );
        return None;
    }
    let mut shape = first.clone();
    for (i, &p) in parts.iter().enumerate().skip(1) {
        let s = b.node(p).shape.clone()?;
        let fits = s.len() == first.len()
            && s.iter()
                .zip(&first)
                .enumerate()
                .all(|(d, (x, y))| d == dim || x == y);
        if !fits {
            b.cx.error_at(
                call.args[i],
                format!(
                    "shape mismatch: `{}` is {first:?} but `{}` is {s:?}; concat along dim {dim} needs equal shapes except in dim {dim}",
                    call.args[0].to_token_stream(), call.args[i].to_token_stream()
                ),
            );
            return None;
        }
        shape[dim] += s[dim];
    }
    Some((Box::new(Concat { parts, dim }), shape))
}

impl Concat {
    /// (outer, part, total, offset) per operand: the kernels' view of the data.
    fn views(&self, cg: &CodeGen, out: NodeId) -> Vec<(TokenStream, Literal, Literal, Literal)> {
        let shape = cg.shape(out);
        let inner: usize = crate::syntax::numel(&shape[self.dim + 1..]);
        let total = shape[self.dim] * inner;
        let mut offset = 0;
        self.parts
            .iter()
            .map(|&p| {
                let part = cg.shape(p)[self.dim] * inner;
                let v = (
                    cg.rows(out, shape.len() - self.dim),
                    Literal::usize_unsuffixed(part),
                    Literal::usize_unsuffixed(total),
                    Literal::usize_unsuffixed(offset),
                );
                offset += part;
                v
            })
            .collect()
    }
}

impl Op for Concat {
    fn name(&self) -> &'static str {
        "concat"
    }
    fn operands(&self) -> &[NodeId] {
        &self.parts
    }

    fn forward(&self, cg: &CodeGen, out: NodeId) -> Step {
        let y = cg.value(out);
        let code = self
            .parts
            .iter()
            .zip(self.views(cg, out))
            .map(|(&p, (outer, part, total, offset))| {
                let x = cg.value(p);
                quote!(::bp::__private::kernels::concat_part(#outer, #part, #total, #offset, #x, #y);)
            })
            .collect();
        let names: Vec<String> = self.parts.iter().map(|&p| cg.name(p)).collect();
        let math = format!(
            "{} = [{}] along dim {}",
            cg.name(out),
            names.join(" | "),
            self.dim
        );
        Step::new(math, code)
    }

    fn backward(&self, cg: &CodeGen, out: NodeId) -> Vec<Step> {
        let (dy, d_y) = (cg.residual(out), cg.d_name(out));
        let mut steps = Vec::new();
        for (&p, (outer, part, total, offset)) in self.parts.iter().zip(self.views(cg, out)) {
            if let Some(c) = cg.contribute(p) {
                let math = format!("{} the slice of {d_y} where {} sits", c.math, cg.name(p));
                let (pre, dx, acc) = (c.prelude, c.ident, c.acc);
                let code = quote!(#pre ::bp::__private::kernels::concat_part_backward(#outer, #part, #total, #offset, #dy, #dx, #acc););
                steps.push(Step::new(math, code));
            }
        }
        steps
    }

    fn structure(&self) -> String {
        format!("concat(n={}, dim={})", self.parts.len(), self.dim)
    }
}

struct Flatten {
    x: [NodeId; 1],
}

pub fn build_flatten(b: &mut Builder, l: &mut LetScope, call: &Call) -> Option<Built> {
    if !call.check(b.cx, 1, 1, &[], "flatten(x)") {
        return None;
    }
    let x = node_arg(b, l, call.args[0], "flatten")?;
    let n = crate::syntax::numel(b.node(x).shape.as_ref()?);
    Some((Box::new(Flatten { x: [x] }), vec![n]))
}

impl Op for Flatten {
    fn name(&self) -> &'static str {
        "flatten"
    }
    fn operands(&self) -> &[NodeId] {
        &self.x
    }

    fn forward(&self, cg: &CodeGen, out: NodeId) -> Step {
        let (x, y) = (cg.value(self.x[0]), cg.value(out));
        let math = format!("{} = flatten({})", cg.name(out), cg.name(self.x[0]));
        Step::new(
            math,
            quote!(::bp::__private::kernels::copy(#x, #y, ::bp::__private::Accumulate::Overwrite);),
        )
    }

    fn backward(&self, cg: &CodeGen, out: NodeId) -> Vec<Step> {
        let Some(c) = cg.contribute(self.x[0]) else {
            return vec![];
        };
        let dy = cg.residual(out);
        let math = format!(
            "{} {} reshaped to {:?}",
            c.math,
            cg.d_name(out),
            cg.shape(self.x[0])
        );
        let (pre, dx, acc) = (c.prelude, c.ident, c.acc);
        vec![Step::new(
            math,
            quote!(#pre ::bp::__private::kernels::copy(#dy, #dx, #acc);),
        )]
    }

    fn structure(&self) -> String {
        "flatten()".into()
    }
}

/// `last(x)`: the last step of a sequence, `[T, F] → [F]`.
struct Last {
    x: [NodeId; 1],
    t_len: usize,
    f: usize,
}

pub fn build_last(b: &mut Builder, l: &mut LetScope, call: &Call) -> Option<Built> {
    if !call.check(b.cx, 1, 1, &[], "last(x)") {
        return None;
    }
    let x = node_arg(b, l, call.args[0], "last")?;
    let shape = b.node(x).shape.clone()?;
    let &[t_len, f] = shape.as_slice() else {
        b.cx.error_at(
            call.args[0],
            format!(
                "`last` takes a sequence [T, F], but `{}` is {shape:?}",
                call.args[0].to_token_stream()
            ),
        );
        return None;
    };
    Some((Box::new(Last { x: [x], t_len, f }), vec![f]))
}

impl Op for Last {
    fn name(&self) -> &'static str {
        "last"
    }
    fn operands(&self) -> &[NodeId] {
        &self.x
    }

    fn forward(&self, cg: &CodeGen, out: NodeId) -> Step {
        let (x, y, batch) = (cg.value(self.x[0]), cg.value(out), &cg.batch);
        let (t, f) = (
            Literal::usize_unsuffixed(self.t_len),
            Literal::usize_unsuffixed(self.f),
        );
        let math = format!("{} = {}[T − 1]", cg.name(out), cg.name(self.x[0]));
        Step::new(
            math,
            quote!(::bp::__private::kernels::last(#batch, #t, #f, #x, #y);),
        )
    }

    fn backward(&self, cg: &CodeGen, out: NodeId) -> Vec<Step> {
        let Some(c) = cg.contribute(self.x[0]) else {
            return vec![];
        };
        let (dy, batch) = (cg.residual(out), &cg.batch);
        let (t, f) = (
            Literal::usize_unsuffixed(self.t_len),
            Literal::usize_unsuffixed(self.f),
        );
        let math = format!(
            "{}[T − 1] {}   (0 at the other steps)",
            c.math,
            cg.d_name(out)
        );
        let (pre, dx, acc) = (c.prelude, c.ident, c.acc);
        let code =
            quote!(#pre ::bp::__private::kernels::last_backward(#batch, #t, #f, #dy, #dx, #acc););
        vec![Step::new(math, code)]
    }

    fn structure(&self) -> String {
        "last()".into()
    }
}
