//! A fused elementwise node: everything elementwise inside one `let` (arithmetic,
//! activations, literals, broadcasting of scalars and params) as one formula `f`
//! evaluated in one loop.
//!
//! forward:  y = f(a, b, …)                     per element
//! residual: d_a += d_y · ∂f/∂a                 per element; summed over the elements a
//!                                              scalar operand was broadcast to, and over
//!                                              the batch for a param
//! The derivatives are derived symbolically (`formula`) and simplified at compile time.

use crate::formula::{self as s, Leaves, E};
use crate::graph::{CodeGen, Contribution, NodeId, Op, Step};
use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{format_ident, quote};

pub struct Fused {
    operands: Vec<NodeId>,
    f: E,
}

impl Fused {
    /// Operands in the order of `f`'s `Var` indices. Operands `f` no longer reads (a
    /// part of the expression became a node of its own) are dropped and the rest
    /// renumbered, so no loop reads or differentiates an operand it does not use.
    pub fn new(operands: &[NodeId], f: E) -> Fused {
        let used = s::vars_used(&f);
        if used.len() == operands.len() {
            return Fused {
                operands: operands.to_vec(),
                f,
            };
        }
        let to = |k: usize| used.binary_search(&k).unwrap_or(0);
        Fused {
            operands: used.iter().map(|&k| operands[k]).collect(),
            f: s::remap_vars(&f, &to),
        }
    }

    /// The derivative of `f` with respect to operand `k`, times the incoming residual.
    fn grad(&self, k: usize) -> E {
        let d = s::substitute(&s::derive(&self.f, k), &self.f, &E::Out);
        s::simplify(&s::mul(E::Grad, s::simplify(&d)))
    }
}

/// How an operand is indexed relative to the node's elements.
#[derive(Clone, Copy, PartialEq)]
enum Class {
    /// Batched, one value per element.
    Full,
    /// Batched scalar broadcast over a sample's elements.
    Scalar,
    /// A param with the node's per-sample shape, shared across the batch.
    ParamFull,
    /// A param of shape [].
    ParamScalar,
}

fn class(cg: &CodeGen, id: NodeId, n: usize) -> Class {
    let numel = cg.numel(id);
    match (cg.is_param(id), numel == n) {
        (false, true) => Class::Full,
        (false, false) => Class::Scalar,
        (true, _) if cg.shape(id).is_empty() => Class::ParamScalar,
        (true, _) => Class::ParamFull,
    }
}

/// One loop over the node's elements, built up from the streams it reads and writes.
#[derive(Default)]
struct Loop {
    pre: Vec<TokenStream>,
    outer: Vec<(TokenStream, TokenStream)>,
    outer_pre: Vec<TokenStream>,
    inner: Vec<(TokenStream, TokenStream)>,
    body: Vec<TokenStream>,
    outer_post: Vec<TokenStream>,
    post: Vec<TokenStream>,
}

fn zip(streams: &[(TokenStream, TokenStream)]) -> (TokenStream, TokenStream) {
    let mut it = streams.iter();
    let Some((i0, p0)) = it.next() else {
        return (quote!(::core::iter::empty::<()>()), quote!(_));
    };
    let (mut iter, mut pat) = (i0.clone(), p0.clone());
    for (i, p) in it {
        iter = quote!(#iter.zip(#i));
        pat = quote!((#pat, #p));
    }
    (iter, pat)
}

impl Loop {
    /// A batched stream of the node's shape: read (`&x`) or written (`x`).
    fn full(&mut self, name: &Ident, n: &Literal, write: bool, broadcast: bool) {
        let (chunks, iter, pat) = if write {
            (
                quote!(#name.chunks_exact_mut(#n)),
                quote!(#name.iter_mut()),
                quote!(#name),
            )
        } else {
            (
                quote!(#name.chunks_exact(#n)),
                quote!(#name.iter()),
                quote!(&#name),
            )
        };
        if broadcast {
            self.outer.push((chunks, quote!(#name)));
        }
        self.inner.push((iter, pat));
    }

    fn emit(self, broadcast: bool) -> TokenStream {
        let Loop {
            pre,
            outer,
            outer_pre,
            inner,
            body,
            outer_post,
            post,
        } = self;
        let (iiter, ipat) = zip(&inner);
        let inner_loop = quote!(for #ipat in #iiter { #(#body)* });
        let looped = if broadcast {
            let (oiter, opat) = zip(&outer);
            quote!(for #opat in #oiter { #(#outer_pre)* #inner_loop #(#outer_post)* })
        } else {
            inner_loop
        };
        quote!({ #(#pre)* #looped #(#post)* })
    }
}

impl Fused {
    fn needs_broadcast(&self, cg: &CodeGen, n: usize) -> bool {
        self.operands
            .iter()
            .any(|&o| matches!(class(cg, o, n), Class::Scalar | Class::ParamFull))
    }

    /// Adds the read streams of the operands `used` says are read.
    fn reads(&self, cg: &CodeGen, lp: &mut Loop, n: usize, used: impl Fn(usize) -> bool) {
        let bn = Literal::usize_unsuffixed(n);
        let broadcast = self.needs_broadcast(cg, n);
        for (k, &o) in self.operands.iter().enumerate() {
            if !used(k) {
                continue;
            }
            let v = cg.value(o);
            match class(cg, o, n) {
                Class::Full => lp.full(v, &bn, false, broadcast),
                Class::Scalar => lp.outer.push((quote!(#v.iter()), quote!(&#v))),
                Class::ParamFull => lp.inner.push((quote!(#v.iter()), quote!(&#v))),
                Class::ParamScalar => lp.pre.push(quote!(let #v = #v[0];)),
            }
        }
    }

    fn leaves<'a>(
        &self,
        cg: &CodeGen<'a>,
        out: NodeId,
        var: &'a dyn Fn(usize) -> TokenStream,
    ) -> Leaves<'a> {
        let y = cg.value(out);
        let dy = cg.residual(out);
        Leaves {
            var,
            out: quote!(#y),
            grad: quote!(#dy),
            ty: cg.ty.clone(),
            temp: &cg.locals.temp,
        }
    }

    /// Adds the write of one contribution `g` to the loop.
    fn write(
        &self,
        cg: &CodeGen,
        lp: &mut Loop,
        n: usize,
        o: NodeId,
        c: Contribution,
        g: TokenStream,
    ) {
        let bn = Literal::usize_unsuffixed(n);
        let broadcast = self.needs_broadcast(cg, n);
        let Contribution {
            ident: d,
            prelude,
            acc,
            first,
            runtime,
            ..
        } = c;
        lp.pre.push(prelude);
        let sum = format_ident!("{}_sum", d, span = Span::mixed_site());
        let assign = |lhs: TokenStream, rhs: TokenStream| {
            if runtime {
                quote!(if #acc.is_add() { #lhs += #rhs } else { #lhs = #rhs })
            } else if first {
                quote!(#lhs = #rhs;)
            } else {
                quote!(#lhs += #rhs;)
            }
        };
        match class(cg, o, n) {
            Class::Full => {
                lp.full(&d, &bn, true, broadcast);
                lp.body.push(assign(quote!(*#d), g));
            }
            Class::Scalar => {
                lp.outer.push((quote!(#d.iter_mut()), quote!(#d)));
                lp.outer_pre.push(quote!(let mut #sum = 0.0;));
                lp.body.push(quote!(#sum += #g;));
                lp.outer_post.push(assign(quote!(*#d), quote!(#sum)));
            }
            Class::ParamFull => {
                if runtime {
                    lp.pre.push(quote!(if !#acc.is_add() { #d.fill(0.0); }));
                }
                lp.inner.push((quote!(#d.iter_mut()), quote!(#d)));
                lp.body.push(quote!(*#d += #g;));
            }
            Class::ParamScalar => {
                lp.pre.push(quote!(let mut #sum = 0.0;));
                lp.body.push(quote!(#sum += #g;));
                lp.post.push(assign(quote!(#d[0]), quote!(#sum)));
            }
        }
    }
}

impl Op for Fused {
    fn name(&self) -> &'static str {
        "elementwise"
    }
    fn operands(&self) -> &[NodeId] {
        &self.operands
    }

    fn forward(&self, cg: &CodeGen, out: NodeId) -> Step {
        let n = cg.numel(out);
        let mut lp = Loop::default();
        let y = cg.value(out);
        lp.full(
            y,
            &Literal::usize_unsuffixed(n),
            true,
            self.needs_broadcast(cg, n),
        );
        self.reads(cg, &mut lp, n, |k| self.f.uses_var(k));
        let var = |k: usize| {
            let v = cg.value(self.operands[k]);
            quote!(#v)
        };
        let leaves = self.leaves(cg, out, &var);
        let (lets, exprs) = s::emit_all(std::slice::from_ref(&self.f), &leaves);
        let e = &exprs[0];
        lp.body.extend(lets);
        lp.body.push(quote!(*#y = #e;));
        let name = |k: usize| cg.name(self.operands[k]);
        let math = format!("{} = {}", cg.name(out), s::doc(&self.f, &name, "", ""));
        Step::new(math, lp.emit(self.needs_broadcast(cg, n)))
    }

    fn backward(&self, cg: &CodeGen, out: NodeId) -> Vec<Step> {
        let n = cg.numel(out);
        let targets: Vec<(usize, Contribution)> = (0..self.operands.len())
            .filter_map(|k| cg.contribute(self.operands[k]).map(|c| (k, c)))
            .collect();
        if targets.is_empty() {
            return vec![];
        }
        let grads: Vec<E> = targets.iter().map(|(k, _)| self.grad(*k)).collect();
        let name = |k: usize| cg.name(self.operands[k]);
        let (y, dy) = (cg.name(out), cg.d_name(out));
        let math = targets
            .iter()
            .zip(&grads)
            .map(|((_, c), g)| format!("{} {}", c.math, s::doc(g, &name, &y, &dy)))
            .collect();
        let mut lp = Loop::default();
        let bn = Literal::usize_unsuffixed(n);
        let broadcast = self.needs_broadcast(cg, n);
        if grads.iter().any(|g| g.uses(&E::Grad)) {
            lp.full(cg.residual(out), &bn, false, broadcast);
        }
        if grads.iter().any(|g| g.uses(&E::Out)) {
            lp.full(cg.value(out), &bn, false, broadcast);
        }
        self.reads(cg, &mut lp, n, |k| grads.iter().any(|g| g.uses_var(k)));
        let var = |k: usize| {
            let v = cg.value(self.operands[k]);
            quote!(#v)
        };
        let leaves = self.leaves(cg, out, &var);
        let (lets, exprs) = s::emit_all(&grads, &leaves);
        lp.body.extend(lets);
        for ((k, c), g) in targets.into_iter().zip(exprs) {
            self.write(cg, &mut lp, n, self.operands[k], c, g);
        }
        vec![Step::lines(math, lp.emit(broadcast))]
    }

    fn structure(&self) -> String {
        s::canonical(&self.f)
    }
}
