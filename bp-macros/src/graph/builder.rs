//! The graph under construction: name bindings, and what operations register while they
//! are built (parameters, buffers, workspaces).

use super::{
    Aux, AuxId, AuxSpec, Buffer, BufferId, Graph, Kind, Node, NodeId, Param, ParamId, ParamInit,
};
use crate::diagnostics::{did_you_mean, Diagnostics};
use crate::syntax::{numel, MAX_ELEMENTS};
use proc_macro2::{Ident, Span};
use std::collections::{HashMap, HashSet};

/// How the driver lowers an operand expression of an operation: `lowering` supplies it,
/// so an operation lowers its arguments without this stage or `ops` importing the driver.
pub type LowerOperand = fn(&mut Builder, &mut LetScope, &syn::Expr) -> Option<NodeId>;

/// The `let` being lowered.
pub struct LetScope<'e> {
    /// The `let`'s name: it names the layer's parameters (`fc1.weight`).
    pub name: &'e Ident,
    /// The span of the layer that took the parameter names, if one did.
    pub layer: Option<Span>,
    /// Nodes this `let` reads, so a failed `let` still counts them as used.
    pub reads: Vec<NodeId>,
    /// Anonymous nodes made so far (they are named `{let}_{n}`).
    pub anon: usize,
    lower: LowerOperand,
}

impl<'e> LetScope<'e> {
    pub fn new(name: &'e Ident, lower: LowerOperand) -> LetScope<'e> {
        LetScope {
            name,
            layer: None,
            reads: Vec::new(),
            anon: 0,
            lower,
        }
    }

    /// Lowers an operand expression to its node (a name, a nested call, or an anonymous
    /// elementwise node).
    pub fn operand(&mut self, b: &mut Builder, e: &syn::Expr) -> Option<NodeId> {
        (self.lower)(b, self, e)
    }
}

/// A workspace declared by the operation being built, not yet given its node.
const UNASSIGNED: NodeId = usize::MAX;

pub struct Builder<'a> {
    pub cx: &'a Diagnostics,
    pub graph: Graph,
    names: HashMap<String, NodeId>,
    /// Every name the network declares, to tell "used before its definition" from
    /// "unknown".
    declared: HashSet<String>,
}

impl<'a> Builder<'a> {
    /// An empty graph of element type `dtype`, for a network declaring `declared`.
    pub fn new(
        cx: &'a Diagnostics,
        dtype: crate::syntax::Dtype,
        declared: HashSet<String>,
    ) -> Self {
        Builder {
            cx,
            graph: Graph {
                nodes: Vec::new(),
                params: Vec::new(),
                buffers: Vec::new(),
                aux: Vec::new(),
                outputs: Vec::new(),
                dtype,
            },
            names: HashMap::new(),
            declared,
        }
    }

    /// A declared shape; tensors hold at most `MAX_RANK` (6) dimensions with the batch.
    pub fn dims(&self, name: &Ident, dims: &[crate::syntax::Dim]) -> Vec<usize> {
        const MAX_PER_SAMPLE: usize = 5;
        if dims.len() > MAX_PER_SAMPLE {
            self.cx.error(
                name.span(),
                format!(
                    "`{name}` has {} dimensions per sample; at most {MAX_PER_SAMPLE} are supported",
                    dims.len()
                ),
            );
        }
        dims.iter().map(|d| d.value).collect()
    }

    /// Binds a user name to a new node.
    pub fn define(&mut self, name: &Ident, kind: Kind, shape: Option<Vec<usize>>) -> NodeId {
        let key = name.to_string();
        if self.names.contains_key(&key) {
            self.cx.error(
                name.span(),
                format!("`{key}` is defined twice; give this one another name"),
            );
        }
        let id = self.push(key.clone(), name.clone(), true, kind, shape);
        self.names.insert(key, id);
        id
    }

    /// Adds a node without binding a name (an anonymous sub-expression).
    pub fn push(
        &mut self,
        name: String,
        ident: Ident,
        user: bool,
        kind: Kind,
        shape: Option<Vec<usize>>,
    ) -> NodeId {
        let span = ident.span();
        let shape = shape.filter(|shape| {
            let fits = numel(shape) <= MAX_ELEMENTS;
            if !fits {
                self.cx.error(
                    span,
                    format!(
                        "`{name}` would have {} elements per sample (shape {shape:?}); {LIMIT}",
                        describe_elements(shape)
                    ),
                );
            }
            fits
        });
        self.graph.nodes.push(Node {
            name,
            ident,
            span,
            user,
            shape,
            kind,
        });
        let id = self.graph.nodes.len() - 1;
        self.assign_workspaces(id);
        id
    }

    /// Declares a workspace of the operation being built (after its operands are
    /// lowered); the handle names it in the op's code.
    pub fn workspace(&mut self, spec: AuxSpec) -> AuxId {
        self.graph.aux.push(Aux {
            node: UNASSIGNED,
            name: spec.name,
            ty: spec.ty,
            place: spec.place,
            per_sample: spec.per_sample,
            fixed: spec.fixed,
            per_part: spec.per_part,
            ident: Ident::new("__bp_unnamed", Span::call_site()),
        });
        AuxId(self.graph.aux.len() - 1)
    }

    /// Gives the workspaces declared since the last node to node `id`.
    fn assign_workspaces(&mut self, id: NodeId) {
        for aux in self.graph.aux.iter_mut().rev() {
            if aux.node != UNASSIGNED {
                break;
            }
            aux.node = id;
            let most = aux.per_sample.max(aux.fixed).max(aux.per_part);
            if most > MAX_ELEMENTS {
                let node = &self.graph.nodes[id];
                self.cx.error(
                    node.span,
                    format!(
                        "`{}` needs a workspace `{}` of {} elements per sample; {LIMIT}",
                        node.name, aux.name, most
                    ),
                );
            }
        }
    }

    /// Registers a learnable tensor; an over-sized one is an error at `span` (the `param`
    /// item's name or the layer's call).
    pub fn add_param(
        &mut self,
        torch_name: String,
        shape: Vec<usize>,
        init: ParamInit,
        span: Span,
    ) -> ParamId {
        if numel(&shape) > MAX_ELEMENTS {
            self.cx.error(
                span,
                format!(
                    "parameter `{torch_name}` would have {} elements (shape {shape:?}); {LIMIT}",
                    describe_elements(&shape)
                ),
            );
        }
        let placeholder = Ident::new("__bp_unnamed", Span::call_site());
        self.graph.params.push(Param {
            torch_name,
            shape,
            init,
            ident: placeholder.clone(),
            grad_ident: placeholder,
        });
        self.graph.params.len() - 1
    }

    /// Registers a buffer.
    pub fn add_buffer(&mut self, torch_name: String, shape: Vec<usize>, init: f64) -> BufferId {
        self.graph.buffers.push(Buffer {
            torch_name,
            shape,
            init,
            ident: Ident::new("__bp_unnamed", Span::call_site()),
        });
        self.graph.buffers.len() - 1
    }

    /// Looks up a name used in an expression; reports an unknown name with the nearest
    /// defined one.
    pub fn resolve(&self, name: &Ident) -> Option<NodeId> {
        self.resolve_as(name, "unknown name", |_| true)
    }

    /// `resolve` with the start of the error message and the kinds of node suggested;
    /// among equally near names the first defined is suggested.
    fn resolve_as(&self, name: &Ident, what: &str, suggest: fn(&Kind) -> bool) -> Option<NodeId> {
        let key = name.to_string();
        if let Some(&id) = self.names.get(&key) {
            return Some(id);
        }
        if self.declared.contains(&key) {
            self.cx.error(
                name.span(),
                format!("`{key}` is used before its definition; define it above this line"),
            );
            return None;
        }
        let known = self
            .graph
            .nodes
            .iter()
            .filter(|n| n.user && suggest(&n.kind))
            .map(|n| n.name.as_str());
        let hint = did_you_mean(&key, known);
        self.cx.error(name.span(), format!("{what} `{key}`{hint}"));
        None
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.graph.nodes[id]
    }

    /// Binds the `output` item's names.
    pub fn outputs(&mut self, names: &[Ident]) {
        for name in names {
            let lets = |k: &Kind| matches!(k, Kind::Op(_) | Kind::Error(_));
            let Some(id) = self.resolve_as(name, "undefined output", lets) else {
                continue;
            };
            let node = &self.graph.nodes[id];
            let what = match node.kind {
                Kind::Input { .. } => Some("an input"),
                Kind::Param(_) => Some("a param"),
                Kind::Op(_) | Kind::Error(_) => None,
            };
            if let Some(what) = what {
                self.cx.error(
                    name.span(),
                    format!("output `{name}` is {what}; an output must be a `let` node"),
                );
            } else if self.graph.outputs.contains(&id) {
                self.cx.error(
                    name.span(),
                    format!("`{name}` is listed as an output twice"),
                );
            } else {
                self.graph.outputs.push(id);
            }
        }
    }
}

/// What an over-sized tensor's error says about the limit.
const LIMIT: &str = "bp's limit is 2^32 (4294967296) elements per tensor";

/// The element count of `shape` as text ("more than 2^64" where `usize` overflows).
fn describe_elements(shape: &[usize]) -> String {
    match shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) {
        Some(n) => n.to_string(),
        None => "more than 2^64".to_string(),
    }
}
