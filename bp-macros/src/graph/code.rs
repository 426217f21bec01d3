//! What an operation writes its statements with: the identifiers of values, residuals,
//! parameters and workspaces in generated code, and the bookkeeping of contributions to
//! residuals (the first one writes, later ones add).

use super::{AuxId, BufferId, Graph, Kind, NodeId, ParamId};
use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;
use std::cell::RefCell;

/// What the operations need to know while emitting code.
pub struct CodeGen<'a> {
    pub g: &'a Graph,
    /// `f32` or `f64`.
    pub ty: TokenStream,
    /// The batch size, a local of the generated function.
    pub batch: Ident,
    /// The `bp::Mode` (training or evaluation), a local of the generated function.
    pub mode: Ident,
    /// The dropout random stream, a local of `prepare_pass`.
    pub rng: Ident,
    /// The runtime flag of `backward_accumulate`.
    pub accumulate: Ident,
    /// Residual identifiers per node (`None`: the node gets no residual).
    pub residuals: &'a [Option<Ident>],
    /// Nodes whose residual already holds a contribution in the backward being emitted.
    written: RefCell<Vec<bool>>,
    /// The backward pass's `Option` learning rate of the fused SGD step (`backward_sgd`).
    pub sgd: Ident,
    /// The learning rate once unwrapped from `sgd`.
    pub lr: Ident,
    /// Parameters whose op folds the SGD step into its own backward ([`CodeGen::fuse_sgd`]).
    fused: RefCell<Vec<ParamId>>,
    /// An identifier never declared (see [`CodeGen::residual`]).
    missing: Ident,
    /// The passes' local variables.
    pub locals: &'a Locals,
}

/// How a contribution is written into a residual.
pub struct Contribution {
    /// The residual (or, for a free param, gradient) buffer.
    pub ident: Ident,
    /// Statements to run before the first write (sizing the buffer).
    pub prelude: TokenStream,
    /// `Accumulate::Overwrite`, `Accumulate::Add`, or the runtime `accumulate` value.
    pub acc: TokenStream,
    /// Whether this contribution overwrites for sure.
    pub first: bool,
    /// Whether overwrite-or-add is decided at run time (a free param's first gradient).
    pub runtime: bool,
    /// `d_x =` or `d_x +=` for the docs.
    pub math: String,
}

/// The local variables of the generated passes. Each is named as the math would
/// (`batch`, `lr`), unless the user took that name for a node or parameter: then it gets
/// a suffix (`names` picks them), so a pass's body names a local and a field differently.
pub struct Locals {
    pub batch: Ident,
    pub mode: Ident,
    pub rng: Ident,
    pub accumulate: Ident,
    pub sgd: Ident,
    pub lr: Ident,
    /// The pass parameters holding the buffer structs.
    pub params: Ident,
    pub values: Ident,
    pub buffers: Ident,
    pub residuals: Ident,
    pub grads: Ident,
    /// The prefix of a formula's temporaries (`t0`, `t1`, …).
    pub temp: String,
}

impl<'a> CodeGen<'a> {
    pub fn new(
        g: &'a Graph,
        residuals: &'a [Option<Ident>],
        written: Vec<bool>,
        locals: &'a Locals,
    ) -> CodeGen<'a> {
        CodeGen {
            g,
            ty: match g.dtype {
                crate::syntax::Dtype::F32 => quote!(f32),
                crate::syntax::Dtype::F64 => quote!(f64),
            },
            batch: locals.batch.clone(),
            mode: locals.mode.clone(),
            rng: locals.rng.clone(),
            accumulate: locals.accumulate.clone(),
            residuals,
            written: RefCell::new(written),
            sgd: locals.sgd.clone(),
            lr: locals.lr.clone(),
            fused: RefCell::new(Vec::new()),
            missing: Ident::new("__bp_missing_residual", Span::call_site()),
            locals,
        }
    }

    /// For an op that applies the fused SGD step to its parameter `p` itself (inside a
    /// product, under `if let Some(lr) = sgd`): records that, so the emitter adds no
    /// separate update, and returns `params.p.as_mut_slice()` — the parameter, mutable.
    /// The op must emit this after its last read of `p`.
    pub fn fuse_sgd(&self, p: ParamId) -> TokenStream {
        self.fused.borrow_mut().push(p);
        let params = &self.locals.params;
        let field = &self.g.params[p].ident;
        quote!(#params.#field.as_mut_slice())
    }

    /// Whether an op took the SGD step of parameter `p` over ([`CodeGen::fuse_sgd`]).
    pub fn is_fused(&self, p: ParamId) -> bool {
        self.fused.borrow().contains(&p)
    }

    /// The value of a node (a free param's value for a param node).
    pub fn value(&self, id: NodeId) -> &Ident {
        match self.g.nodes[id].kind {
            Kind::Param(p) => &self.g.params[p].ident,
            _ => &self.g.nodes[id].ident,
        }
    }

    /// The identifier of a workspace.
    pub fn aux(&self, a: AuxId) -> &Ident {
        &self.g.aux[a.0].ident
    }

    /// The identifier of a buffer.
    pub fn buffer(&self, b: BufferId) -> &Ident {
        &self.g.buffers[b].ident
    }

    /// The display name of a node in the docs.
    pub fn name(&self, id: NodeId) -> String {
        match self.g.nodes[id].kind {
            Kind::Param(p) => self.g.params[p].torch_name.clone(),
            _ => self.g.nodes[id].ident.to_string(),
        }
    }

    /// The display name of a node's residual in the docs.
    pub fn d_name(&self, id: NodeId) -> String {
        match self.g.nodes[id].kind {
            Kind::Param(p) => self.g.params[p].grad_ident.to_string(),
            _ => self.residuals[id]
                .as_ref()
                .map_or_else(|| "0".into(), |r| r.to_string()),
        }
    }

    pub fn shape(&self, id: NodeId) -> &[usize] {
        self.g.shape(id)
    }

    /// Number of per-sample elements.
    pub fn numel(&self, id: NodeId) -> usize {
        crate::syntax::numel(self.shape(id))
    }

    pub fn is_param(&self, id: NodeId) -> bool {
        self.g.nodes[id].is_param()
    }

    /// The residual of `out` (the node whose backward is emitted). The sweep visits
    /// only nodes with a residual; were that ever broken, the generated code would name
    /// an identifier that is never declared and fail to compile, never read another
    /// buffer in its place.
    pub fn residual(&self, out: NodeId) -> &Ident {
        self.residuals[out].as_ref().unwrap_or(&self.missing)
    }

    /// Whether node `id` receives contributions.
    pub fn wants(&self, id: NodeId) -> bool {
        match self.g.nodes[id].kind {
            Kind::Param(_) => true,
            _ => self.residuals[id].is_some(),
        }
    }

    /// Tokens `batch * r` for the rows of a node when its last `keep` dims are the row.
    pub fn rows(&self, id: NodeId, keep: usize) -> TokenStream {
        let shape = self.shape(id);
        let outer: usize = crate::syntax::numel(&shape[..shape.len().saturating_sub(keep)]);
        let batch = &self.batch;
        if outer == 1 {
            quote!(#batch)
        } else {
            let outer = proc_macro2::Literal::usize_unsuffixed(outer);
            quote!(#batch * #outer)
        }
    }

    /// The full shape `&[batch, d1, …]` of a node's buffers.
    pub fn dims(&self, id: NodeId) -> TokenStream {
        let batch = &self.batch;
        let dims = self
            .shape(id)
            .iter()
            .map(|&d| proc_macro2::Literal::usize_unsuffixed(d));
        quote!(&[#batch #(, #dims)*])
    }

    /// The next contribution to node `id`'s residual: the first one overwrites (after
    /// sizing the buffer), later ones add. For a free param the first one follows the
    /// runtime `accumulate` flag.
    pub fn contribute(&self, id: NodeId) -> Option<Contribution> {
        if !self.wants(id) {
            return None;
        }
        let first = !std::mem::replace(&mut self.written.borrow_mut()[id], true);
        if let Kind::Param(p) = self.g.nodes[id].kind {
            let acc = &self.accumulate;
            return Some(Contribution {
                ident: self.g.params[p].grad_ident.clone(),
                prelude: TokenStream::new(),
                acc: if first {
                    quote!(#acc)
                } else {
                    quote!(::bp::__private::Accumulate::Add)
                },
                first: false,
                runtime: first,
                math: format!("{} {}", self.d_name(id), if first { "=" } else { "+=" }),
            });
        }
        let ident = self.residuals[id].clone()?;
        let dims = self.dims(id);
        Some(Contribution {
            prelude: if first {
                quote!(#ident.resize(#dims);)
            } else {
                TokenStream::new()
            },
            ident,
            acc: if first {
                quote!(::bp::__private::Accumulate::Overwrite)
            } else {
                quote!(::bp::__private::Accumulate::Add)
            },
            math: format!("{} {}", self.d_name(id), if first { "=" } else { "+=" }),
            first,
            runtime: false,
        })
    }
}
