//! The driver: the syntax tree's items become the graph. Inputs and params are nodes of
//! their own; each `let` is lowered by [`expr`], which dispatches calls to the registry
//! of `ops` and elementwise functions to [`call`]. Then every node must lead to an
//! output.

mod expr;
mod tree;

use crate::diagnostics::Diagnostics;
use crate::graph::{Builder, Graph, Kind};
use crate::ops::args::param_init;
use crate::syntax::{Item, NetworkDef};

/// Builds the graph, reporting every error into `cx`.
pub fn lower(def: &NetworkDef, cx: &Diagnostics) -> Graph {
    let declared = def
        .items
        .iter()
        .filter_map(|item| match item {
            Item::Input { name, .. } | Item::Param { name, .. } | Item::Let { name, .. } => {
                Some(name.to_string())
            }
            Item::Output { .. } => None,
        })
        .collect();
    let mut b = Builder::new(cx, def.dtype, declared);
    let mut output_seen = false;
    for item in &def.items {
        match item {
            Item::Input { name, dims, grad } => {
                let shape = b.dims(name, dims);
                b.define(name, Kind::Input { grad: *grad }, Some(shape));
            }
            Item::Param { name, dims, init } => {
                let shape = b.dims(name, dims);
                let init = param_init(init, cx);
                let pid = b.add_param(name.to_string(), shape.clone(), init, name.span());
                b.define(name, Kind::Param(pid), Some(shape));
            }
            Item::Let { name, expr } => expr::lower_let(&mut b, name, expr),
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

/// Every input, param and node must lead to an output: stable Rust gives macros no
/// warnings, so an unused one is an error.
fn check_all_used(g: &Graph, cx: &Diagnostics) {
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
