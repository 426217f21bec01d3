//! The passes: `forward_pass` (every node in definition order), `backward_pass` (the
//! reverse sweep, with the fused SGD step), and the training-mode `prepare_pass` and
//! `update_pass`. Each operation returns its steps as math and code together; the code
//! goes into the passes and the math into their `///` derivation.

use super::docs::{self, Derivation};
use super::{aux_fixed, lit, Expansion};
use crate::graph::{AuxTy, CodeGen, Kind, NodeId, ParamId, Place};
use proc_macro2::{Ident, TokenStream, TokenTree};
use quote::quote;
use std::collections::HashSet;

/// Every identifier `ts` reads as a name (not a field or method after `.`, nor a field
/// of a struct literal before `:`), so a pass binds and takes only what its body reads.
fn mentioned(ts: &TokenStream, names: &mut HashSet<String>) {
    let tokens: Vec<TokenTree> = ts.clone().into_iter().collect();
    for (k, t) in tokens.iter().enumerate() {
        let punct = |at: Option<usize>, c: char, alone: bool| {
            at.and_then(|i| tokens.get(i)).is_some_and(|t| {
                matches!(t, TokenTree::Punct(p) if p.as_char() == c
                    && (!alone || p.spacing() == proc_macro2::Spacing::Alone))
            })
        };
        match t {
            TokenTree::Group(g) => mentioned(&g.stream(), names),
            TokenTree::Ident(i)
                if !punct(k.checked_sub(1), '.', false) && !punct(Some(k + 1), ':', true) =>
            {
                names.insert(i.to_string());
            }
            _ => {}
        }
    }
}

/// A pass's parameter and the fields it unpacks from it.
struct Unpack<'a> {
    /// The struct's name in the hidden module (`Params`).
    strukt: &'static str,
    /// The parameter (`params`).
    param: Ident,
    fields: Vec<&'a Ident>,
    /// Bind the fields by `ref` through `*param` (backward's params: the fused SGD step
    /// writes one parameter while others are still read).
    by_ref: bool,
}

impl Unpack<'_> {
    /// The parameter's name (`_` when the body reads nothing of it) and the `let` that
    /// unpacks the fields the body reads, with `..` for the rest.
    fn emit(&self, m: &Ident, used: &HashSet<String>) -> (TokenStream, TokenStream) {
        let read: Vec<&&Ident> = self
            .fields
            .iter()
            .filter(|f| used.contains(&f.to_string()))
            .collect();
        let direct = used.contains(&self.param.to_string());
        let param = &self.param;
        let name = if read.is_empty() && !direct {
            quote!(_)
        } else {
            quote!(#param)
        };
        if read.is_empty() {
            return (name, TokenStream::new());
        }
        let rest = (read.len() < self.fields.len()).then(|| quote!(..));
        let strukt = Ident::new(self.strukt, proc_macro2::Span::call_site());
        let stmt = if self.by_ref {
            quote!(let #m::#strukt { #(ref #read,)* #rest } = *#param;)
        } else {
            quote!(let #m::#strukt { #(#read,)* #rest } = #param;)
        };
        (name, stmt)
    }
}

/// A scalar parameter's name, or `_` when the body does not read it.
fn scalar(param: &Ident, used: &HashSet<String>) -> TokenStream {
    if used.contains(&param.to_string()) {
        quote!(#param)
    } else {
        quote!(_)
    }
}

/// Statements sizing the workspaces of node `id` kept at `place`.
fn size_aux(c: &Expansion, id: NodeId, place: Place) -> TokenStream {
    let batch = c.locals.batch.clone();
    c.g.aux
        .iter()
        .filter(|a| a.node == id && a.place == place)
        .map(|a| {
            let ident = &a.ident;
            let (n, f) = (lit(a.per_sample), aux_fixed(a, &batch));
            let len = match (a.per_sample, a.fixed + a.per_part) {
                (0, _) => quote!(#f),
                (_, 0) => quote!(#batch * #n),
                _ => quote!(#batch * #n + #f),
            };
            match a.ty {
                AuxTy::Float => quote!(#ident.resize(&[#len]);),
                AuxTy::Index => quote!(#ident.resize(#len, 0);),
            }
        })
        .collect()
}

/// The forward pass's statements (and the training-mode ones around it), with their
/// math recorded in `derivation`.
fn forward_steps(c: &Expansion, cg: &CodeGen, derivation: &mut Derivation) -> [TokenStream; 3] {
    let (mut fwd, mut prepare, mut update) =
        (TokenStream::new(), TokenStream::new(), TokenStream::new());
    for (id, node) in c.g.nodes.iter().enumerate() {
        if let Kind::Input { .. } = node.kind {
            derivation
                .forward
                .push((format!("{} = input", node.ident), id));
        }
        if let Some(op) = node.op() {
            let v = &node.ident;
            let dims = cg.dims(id);
            let aux = size_aux(c, id, Place::Forward);
            let step = op.forward(cg, id);
            let code = step.code;
            fwd.extend(quote!(#v.resize(#dims); #aux #code));
            derivation
                .forward
                .extend(step.math.into_iter().map(|m| (m, id)));
            prepare.extend(op.prepare(cg, id));
            update.extend(op.update(cg, id));
        }
    }
    [fwd, prepare, update]
}

/// The reverse sweep's statements, each parameter's fused SGD step as soon as its
/// gradient is complete, with their math recorded in `derivation`.
fn backward_steps(c: &Expansion, cg: &CodeGen, derivation: &mut Derivation) -> TokenStream {
    let (params, sgd, lr) = (&c.locals.params, &cg.sgd, &cg.lr);
    let mut bwd = TokenStream::new();
    // The fused SGD step of `backward_sgd` for a parameter whose op did not fold it into
    // its own backward: right after the gradient is complete.
    let sgd_step = |ps: Vec<ParamId>| {
        let steps = ps.iter().map(|&p| {
            let (field, g) = (&c.g.params[p].ident, &c.g.params[p].grad_ident);
            quote!(::bp::__private::optim::sgd_update(#params.#field.as_mut_slice(), #g.as_slice(), #lr);)
        });
        if ps.is_empty() {
            TokenStream::new()
        } else {
            quote!(if let Some(#lr) = #sgd { #(#steps)* })
        }
    };
    for id in c.plan.sweep(c.g) {
        if let Some(op) = c.g.nodes[id].op() {
            bwd.extend(size_aux(c, id, Place::Backward));
            for step in op.backward(cg, id) {
                bwd.extend(step.code);
                derivation.backward.extend(step.math);
            }
            // A layer's parameters are read by no other op: its step can follow its
            // backward at once.
            let rest = op.params().iter().copied().filter(|&p| !cg.is_fused(p));
            bwd.extend(sgd_step(rest.collect()));
        }
    }
    // Free parameters gather contributions from every op that reads them: their step
    // comes last.
    let free = c.g.nodes.iter().filter_map(|n| match n.kind {
        Kind::Param(p) => Some(p),
        _ => None,
    });
    bwd.extend(sgd_step(free.collect()));
    bwd
}

/// The structs a pass may read, as `Unpack`s.
fn unpacks<'a>(c: &'a Expansion) -> [Unpack<'a>; 5] {
    let l = c.locals;
    let forward_aux = c.g.aux.iter().filter(|a| a.place == Place::Forward);
    let backward_aux = c.g.aux.iter().filter(|a| a.place == Place::Backward);
    let unpack = |strukt, param: &Ident, fields: Vec<&'a Ident>| Unpack {
        strukt,
        param: param.clone(),
        fields,
        by_ref: false,
    };
    [
        unpack(
            "Params",
            &l.params,
            c.g.params.iter().map(|p| &p.ident).collect(),
        ),
        unpack(
            "Buffers",
            &l.buffers,
            c.g.buffers.iter().map(|b| &b.ident).collect(),
        ),
        unpack(
            "Values",
            &l.values,
            c.valued()
                .map(|n| &n.ident)
                .chain(forward_aux.map(|a| &a.ident))
                .collect(),
        ),
        unpack(
            "Residuals",
            &l.residuals,
            c.residuals
                .iter()
                .flatten()
                .chain(backward_aux.map(|a| &a.ident))
                .collect(),
        ),
        unpack(
            "Grads",
            &l.grads,
            c.g.params.iter().map(|p| &p.grad_ident).collect(),
        ),
    ]
}

/// The passes as associated functions, and the math of their steps.
pub fn passes(c: &Expansion) -> (TokenStream, Derivation) {
    let (m, l) = (&c.m, c.locals);
    let cg = c.codegen();
    let mut derivation = Derivation::default();
    let [fwd, prepare, update] = forward_steps(c, &cg, &mut derivation);
    let bwd = backward_steps(c, &cg, &mut derivation);
    let (fdoc, bdoc) = (
        docs::forward_doc(c, &derivation),
        docs::backward_doc(c, &derivation),
    );
    let [p, b, v, r, g] = unpacks(c);
    let [params, ..] = unpacks(c);
    let p_ref = Unpack {
        by_ref: true,
        ..params
    };
    // Each pass: its parameters named only where its body reads them.
    let pass = |body: &TokenStream, structs: &[&Unpack]| {
        let mut used = HashSet::new();
        mentioned(body, &mut used);
        let (names, lets): (Vec<TokenStream>, Vec<TokenStream>) =
            structs.iter().map(|s| s.emit(m, &used)).unzip();
        let scalars = move |local: &Ident| scalar(local, &used);
        (names, quote!(#(#lets)* #body), scalars)
    };
    let elem = &cg.ty;
    let (pn, prepare_body, s) = pass(&prepare, &[&v]);
    let (rng, batch) = (s(&l.rng), s(&l.batch));
    let prepare = (!prepare.is_empty()).then(|| {
        quote! {
            /// Training mode, before the forward pass: draws what is random (dropout masks).
            fn prepare_pass(#rng: &mut ::bp::__private::rng::Rng, #(#pn)*: &mut #m::Values, #batch: usize) {
                #prepare_body
            }
        }
    });
    let (un, update_body, s) = pass(&update, &[&b, &v]);
    let (ub, uv, batch) = (&un[0], &un[1], s(&l.batch));
    let update = (!update.is_empty()).then(|| {
        quote! {
            /// Training mode, after the forward pass: updates the buffers (running statistics).
            fn update_pass(#ub: &mut #m::Buffers, #uv: &#m::Values, #batch: usize) {
                #update_body
            }
        }
    });
    let (fnames, fwd_body, s) = pass(&fwd, &[&p, &b, &v]);
    let [fp, fb, fv] = [&fnames[0], &fnames[1], &fnames[2]];
    let (batch, mode) = (s(&l.batch), s(&l.mode));
    let forward = quote! {
        #[doc = #fdoc]
        fn forward_pass(#fp: &#m::Params, #fb: &#m::Buffers, #fv: &mut #m::Values, #batch: usize, #mode: ::bp::__private::Mode) {
            #fwd_body
        }
    };
    let (bnames, bwd_body, s) = pass(&bwd, &[&p_ref, &v, &r, &g]);
    let [bp, bv, br, bg] = [&bnames[0], &bnames[1], &bnames[2], &bnames[3]];
    let (batch, accumulate, sgd, mode) = (s(&l.batch), s(&l.accumulate), s(&l.sgd), s(&l.mode));
    let code = quote! {
        #prepare
        #update
        #forward

        #[doc = #bdoc]
        fn backward_pass(
            #bp: &mut #m::Params,
            #bv: &#m::Values,
            #br: &mut #m::Residuals,
            #bg: &mut #m::Grads,
            #batch: usize,
            #accumulate: ::bp::__private::Accumulate,
            #sgd: ::core::option::Option<#elem>,
            #mode: ::bp::__private::Mode,
        ) {
            #bwd_body
        }
    };
    (code, derivation)
}
