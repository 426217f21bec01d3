//! The graph IR: nodes in definition order (a topological order), each with its
//! per-sample shape, and the lowering of the syntax tree into it. Nested expressions are
//! flattened: elementwise parts of one `let` become one fused node, every other
//! operation its own node.

use crate::ctxt::{did_you_mean, Ctxt};
use crate::ops::{self, Op, ParamInit};
use crate::syntax::{numel, Dim, Dtype, Item, NetworkDef, MAX_ELEMENTS};
use proc_macro2::{Ident, Span};
use std::collections::HashMap;

pub type NodeId = usize;
pub type ParamId = usize;
pub type BufferId = usize;

/// The checked network.
pub struct Graph {
    pub nodes: Vec<Node>,
    pub params: Vec<Param>,
    /// State that is saved but never trained (batch norm's running statistics).
    pub buffers: Vec<Buffer>,
    /// Workspaces operations keep beside their node (saved for backward, or scratch).
    pub aux: Vec<Aux>,
    pub outputs: Vec<NodeId>,
    pub dtype: Dtype,
}

/// A saved, non-learnable tensor: `bn.running_mean`, `bn.running_var`, `bn.num_batches_tracked`.
pub struct Buffer {
    pub torch_name: String,
    pub shape: Vec<usize>,
    pub init: f64,
    pub ident: Ident,
}

/// Element type of a workspace.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum AuxTy {
    /// The network's float type.
    Float,
    /// `u32` indices (max pool's argmax).
    Index,
}

/// Where a workspace lives: filled by forward (and read by backward), or backward scratch.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Forward,
    Backward,
}

/// A workspace of an operation, sized `batch·per_sample + fixed` elements.
pub struct Aux {
    pub node: NodeId,
    pub name: &'static str,
    pub ty: AuxTy,
    pub place: Place,
    pub per_sample: usize,
    pub fixed: usize,
    pub ident: Ident,
}

/// One node: an input, a free parameter, or an operation.
pub struct Node {
    /// The name the user wrote, or `let_op` for an anonymous sub-expression.
    pub name: String,
    /// The identifier of the node's value in generated code (assigned by `names`).
    pub ident: Ident,
    /// Where the node is defined (errors point here).
    pub span: Span,
    /// Bound by the user (`input`, `param`, `let`), so readable by name.
    pub user: bool,
    /// Per-sample shape; `None` after an error, so no follow-on errors are reported.
    pub shape: Option<Vec<usize>>,
    pub kind: Kind,
}

pub enum Kind {
    Input {
        grad: bool,
    },
    /// A free `param`: no batch dimension, shared by every sample.
    Param(ParamId),
    Op(Box<dyn Op>),
    /// A `let` whose expression had an error (already reported), with the nodes it read
    /// so they do not count as unused.
    Error(Vec<NodeId>),
}

/// A learnable tensor: a free `param` or one owned by a layer.
pub struct Param {
    /// PyTorch's name: `fc1.weight`, or the `param`'s own name.
    pub torch_name: String,
    pub shape: Vec<usize>,
    pub init: ParamInit,
    /// Identifiers of the value and the gradient (assigned by `names`).
    pub ident: Ident,
    pub grad_ident: Ident,
}

impl Node {
    pub fn is_param(&self) -> bool {
        matches!(self.kind, Kind::Param(_))
    }
    /// The nodes this node reads.
    pub fn operands(&self) -> &[NodeId] {
        match &self.kind {
            Kind::Op(op) => op.operands(),
            Kind::Error(reads) => reads,
            _ => &[],
        }
    }
    pub fn op(&self) -> Option<&dyn Op> {
        match &self.kind {
            Kind::Op(op) => Some(&**op),
            _ => None,
        }
    }
}

impl Graph {
    /// Per-sample shape of a node (only called after a successful check).
    pub fn shape(&self, id: NodeId) -> &[usize] {
        self.nodes[id].shape.as_deref().unwrap_or(&[])
    }
}

/// Builds the graph, reporting every error into `cx`.
pub fn lower(def: &NetworkDef, cx: &Ctxt) -> Graph {
    let mut b = Builder {
        cx,
        graph: Graph {
            nodes: Vec::new(),
            params: Vec::new(),
            buffers: Vec::new(),
            aux: Vec::new(),
            outputs: Vec::new(),
            dtype: def.dtype,
        },
        names: HashMap::new(),
        declared: def
            .items
            .iter()
            .filter_map(|item| match item {
                Item::Input { name, .. } | Item::Param { name, .. } | Item::Let { name, .. } => {
                    Some(name.to_string())
                }
                Item::Output { .. } => None,
            })
            .collect(),
    };
    let mut output_seen = false;
    for item in &def.items {
        match item {
            Item::Input { name, dims, grad } => {
                let shape = b.dims(name, dims);
                b.define(name, Kind::Input { grad: *grad }, Some(shape));
            }
            Item::Param { name, dims, init } => {
                let shape = b.dims(name, dims);
                let init = ops::param_init(init, cx);
                let pid = b.add_param(name.to_string(), shape.clone(), init, name.span());
                b.define(name, Kind::Param(pid), Some(shape));
            }
            Item::Let { name, expr } => crate::lowering::lower_let(&mut b, name, expr),
            Item::Output { names, span } => {
                if output_seen {
                    cx.error(
                        *span,
                        "a second `output` item; list every output in one `output a, b;`",
                    );
                }
                output_seen = true;
                b.outputs(names);
            }
        }
    }
    collect_aux(&mut b.graph, cx);
    if !output_seen {
        cx.error(
            def.name.span(),
            format!("network `{}` has no output; add `output NAME;`", def.name),
        );
    } else if !cx.has_errors() {
        // After another error an unused node is most likely its echo: report it alone.
        check_all_used(&b.graph, cx);
    }
    b.graph
}

/// Lowering state shared with the operations.
pub struct Builder<'a> {
    pub cx: &'a Ctxt,
    pub graph: Graph,
    names: HashMap<String, NodeId>,
    /// Every name the network declares, to tell "used before its definition" from
    /// "unknown".
    declared: std::collections::HashSet<String>,
}

impl Builder<'_> {
    /// A declared shape; tensors hold at most `MAX_RANK` (6) dimensions with the batch.
    fn dims(&self, name: &Ident, dims: &[Dim]) -> Vec<usize> {
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
        self.graph.nodes.len() - 1
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

    fn outputs(&mut self, names: &[Ident]) {
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

/// Every input, param and node must lead to an output: stable Rust gives macros no
/// warnings, so an unused one is an error.
fn check_all_used(g: &Graph, cx: &Ctxt) {
    let mut used = vec![false; g.nodes.len()];
    for &o in &g.outputs {
        used[o] = true;
    }
    for id in (0..g.nodes.len()).rev() {
        if !used[id] {
            continue;
        }
        for &o in g.nodes[id].operands() {
            used[o] = true;
        }
    }
    for (id, node) in g.nodes.iter().enumerate() {
        if !used[id] && node.user {
            let what = match node.kind {
                Kind::Input { .. } => "input",
                Kind::Param(_) => "param",
                Kind::Op(_) | Kind::Error(_) => "node",
            };
            cx.error(
                node.span,
                format!(
                    "{what} `{}` is not used by any output; use it or remove it",
                    node.name
                ),
            );
        }
    }
}

/// Gathers the workspaces every operation declares.
fn collect_aux(g: &mut Graph, cx: &Ctxt) {
    for id in 0..g.nodes.len() {
        let Some(op) = g.nodes[id].op() else { continue };
        for spec in op.aux() {
            if spec.per_sample > MAX_ELEMENTS || spec.fixed > MAX_ELEMENTS {
                cx.error(
                    g.nodes[id].span,
                    format!(
                        "`{}` needs a workspace `{}` of {} elements per sample; {LIMIT}",
                        g.nodes[id].name,
                        spec.name,
                        spec.per_sample.max(spec.fixed)
                    ),
                );
            }
            g.aux.push(Aux {
                node: id,
                name: spec.name,
                ty: spec.ty,
                place: spec.place,
                per_sample: spec.per_sample,
                fixed: spec.fixed,
                ident: Ident::new("__bp_unnamed", Span::call_site()),
            });
        }
    }
}

/// Which nodes depend on something learnable (a parameter or a `grad` input): only
/// they get a residual and a backward step.
pub fn trainable(g: &Graph) -> Vec<bool> {
    let mut t = vec![false; g.nodes.len()];
    for (id, node) in g.nodes.iter().enumerate() {
        t[id] = match &node.kind {
            Kind::Input { grad } => *grad,
            Kind::Param(_) => true,
            Kind::Op(op) => !op.params().is_empty() || op.operands().iter().any(|&o| t[o]),
            Kind::Error(_) => false,
        };
    }
    t
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
