//! The contract of an operation: what the driver and the emitter ask of every node.

use super::{AuxTy, BufferId, CodeGen, NodeId, ParamId, Place};
use proc_macro2::TokenStream;

/// One operation node. Each implementation answers, for its family, the three questions
/// of the derivation: the shape it passes forward (its `build` in `ops`), the gradients of
/// its parameters and the residuals it passes back (`backward`), next to its `forward`.
pub trait Op {
    /// The operation's name as the user writes it.
    fn name(&self) -> &'static str;
    /// The nodes it reads, in argument order.
    fn operands(&self) -> &[NodeId];
    /// The parameters it owns.
    fn params(&self) -> &[ParamId] {
        &[]
    }
    /// The buffers it owns (saved, never trained).
    fn buffers(&self) -> &[BufferId] {
        &[]
    }
    /// Statements run in training mode before the forward pass (dropout draws its mask).
    fn prepare(&self, _cg: &CodeGen, _out: NodeId) -> TokenStream {
        TokenStream::new()
    }
    /// Statements checking the batch before a forward pass in training mode, returning an
    /// error through `?` (batch norm needs more than one value per channel).
    fn training_check(&self, _cg: &CodeGen, _out: NodeId) -> TokenStream {
        TokenStream::new()
    }
    /// Statements run in training mode after the forward pass (batch norm's running
    /// statistics).
    fn update(&self, _cg: &CodeGen, _out: NodeId) -> TokenStream {
        TokenStream::new()
    }
    /// The step computing node `out`'s value (its buffer is already sized).
    fn forward(&self, cg: &CodeGen, out: NodeId) -> Step;
    /// The steps computing the gradients of its parameters and its contributions to the
    /// residuals of its operands, from `out`'s residual, in the order they run.
    fn backward(&self, cg: &CodeGen, out: NodeId) -> Vec<Step>;
    /// The operation and its hyperparameters as canonical text for the structure hash:
    /// the language's own names and values (`linear(out=10, bias=true)`), never internal
    /// names, so renaming a type or a node does not change it.
    fn structure(&self) -> String;
}

/// One step of a pass: the math the docs show for it, and the statements it emits. An
/// operation returns both from one call, so the derivation in the docs and the code
/// cannot disagree.
pub struct Step {
    /// One line of math per quantity the step computes.
    pub math: Vec<String>,
    pub code: TokenStream,
}

impl Step {
    /// A step computing one quantity.
    pub fn new(math: String, code: TokenStream) -> Step {
        Step {
            math: vec![math],
            code,
        }
    }

    /// A step computing several quantities at once (one kernel call).
    pub fn lines(math: Vec<String>, code: TokenStream) -> Step {
        Step { math, code }
    }
}

/// What an operation's `build` returns: the op and its per-sample output shape.
pub type Built = (Box<dyn Op>, Vec<usize>);

/// A workspace an operation declares.
pub struct AuxSpec {
    pub name: &'static str,
    pub ty: AuxTy,
    pub place: Place,
    pub per_sample: usize,
    pub fixed: usize,
    pub per_part: usize,
}

impl AuxSpec {
    /// A float workspace filled by forward, `per_sample` elements per sample.
    pub fn saved(name: &'static str, per_sample: usize) -> AuxSpec {
        AuxSpec {
            name,
            ty: AuxTy::Float,
            place: Place::Forward,
            per_sample,
            fixed: 0,
            per_part: 0,
        }
    }
    /// A float workspace filled by forward, `fixed` elements whatever the batch.
    pub fn saved_fixed(name: &'static str, fixed: usize) -> AuxSpec {
        AuxSpec {
            fixed,
            ..AuxSpec::saved(name, 0)
        }
    }
    /// A float scratch of backward, `per_sample` per sample plus `fixed`.
    pub fn scratch(name: &'static str, per_sample: usize, fixed: usize) -> AuxSpec {
        AuxSpec {
            name,
            ty: AuxTy::Float,
            place: Place::Backward,
            per_sample,
            fixed,
            per_part: 0,
        }
    }
    /// A float workspace of `place`'s pass with `per_part` elements for each part a kernel
    /// splits the batch into (one piece of scratch per thread).
    pub fn per_part(name: &'static str, place: Place, per_part: usize) -> AuxSpec {
        AuxSpec {
            name,
            ty: AuxTy::Float,
            place,
            per_sample: 0,
            fixed: 0,
            per_part,
        }
    }
}

/// How a parameter starts.
#[derive(Clone, Debug)]
pub enum ParamInit {
    Const(f64),
    Normal(f64),
    Uniform(f64, f64),
}
