//! Lowering of one `let`: its expression becomes nodes. The elementwise part (see
//! [`tree`](super::tree)) is fused into one node evaluated in a single loop; every other
//! operation (linear, softmax, …) becomes its own node through the registry of `ops`.

use super::tree::{fused_node_named, lower_tree, strip_parens, structural_call, Low};
use crate::formula::E;
use crate::graph::{Builder, Kind, LetScope, NodeId};
use crate::ops::{self, elementwise::Fused};
use proc_macro2::Ident;
use syn::Expr;

/// Lowers `let name = expr;`.
pub fn lower_let(b: &mut Builder, name: &Ident, expr: &Expr) {
    let mut l = LetScope::new(name, lower_operand);
    let root = strip_parens(expr);
    let done = if let Some(call) = structural_call(b, root) {
        call.and_then(|call| ops::build(b, &mut l, &call, Some(name)))
    } else {
        let mut operands = Vec::new();
        lower_tree(b, &mut l, &mut operands, root)
            .and_then(|low| fused_node(b, &operands, low, name))
    };
    if done.is_none() {
        b.define(name, Kind::Error(l.reads.clone()), None);
    }
}

/// Lowers an expression to a node: a plain name is that node; an elementwise
/// expression becomes an anonymous fused node; a call builds its operation.
pub fn lower_operand(b: &mut Builder, l: &mut LetScope, e: &Expr) -> Option<NodeId> {
    let e = strip_parens(e);
    if let Some(call) = structural_call(b, e) {
        let call = call?;
        return ops::build(b, l, &call, None);
    }
    let mut operands = Vec::new();
    let low = lower_tree(b, l, &mut operands, e)?;
    if let E::Var(k) = low.e {
        return Some(operands[k]);
    }
    l.anon += 1;
    let name = format!("{}_{}", l.name, l.anon);
    let ident = Ident::new(&name, syn::spanned::Spanned::span(e));
    let id = fused_node_named(b, &operands, low, name, ident)?;
    Some(id)
}

/// Makes the `let`'s own fused node from its lowered tree.
fn fused_node(b: &mut Builder, operands: &[NodeId], low: Low, name: &Ident) -> Option<NodeId> {
    if !low.batched {
        b.cx.error(
            name.span(),
            format!(
                "`{name}` depends on no input, only on params and literals; nodes are computed per sample from an input"
            ),
        );
        return None;
    }
    let fused = Fused::new(operands, low.e);
    Some(b.define(name, Kind::Op(Box::new(fused)), Some(low.shape)))
}
