//! The graph IR: nodes in definition order (a topological order), each with its
//! per-sample shape; the parameters, buffers and workspaces they own; the [`Op`] trait
//! every operation implements; the [`Builder`] operations are built with, and the
//! [`CodeGen`] they write their statements with.
//!
//! This stage knows no operation by name: `ops` implements them, `lowering` drives them.

mod builder;
mod code;
mod op;

pub use builder::{Builder, LetScope};
pub use code::{CodeGen, Contribution, Locals};
pub use op::{AuxSpec, Built, Op, ParamInit, Step};

use crate::syntax::Dtype;
use proc_macro2::{Ident, Span};

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

/// A workspace's handle, returned when an operation declares it
/// ([`Builder::workspace`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AuxId(pub(crate) usize);

/// A workspace of an operation, sized `batch·per_sample + fixed + parts·per_part`
/// elements, where `parts` is the number of pieces a kernel may split the batch into at
/// run time (`kernels::split::scratch_parts`: the thread count, at most the batch).
pub struct Aux {
    /// The node of the operation that declared it.
    pub node: NodeId,
    pub name: &'static str,
    pub ty: AuxTy,
    pub place: Place,
    pub per_sample: usize,
    pub fixed: usize,
    /// Elements for each part of a batch split over threads (one scratch per thread).
    pub per_part: usize,
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
