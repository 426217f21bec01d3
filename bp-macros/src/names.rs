//! Identifiers of generated code. The user's names are kept as written (`fc1`, `h`);
//! generated ones (`fc1_weight`, `d_h`, `d_fc1_weight`) are derived from them and, where
//! one would collide with a name already taken, get a numeric suffix: user names and
//! generated names never collide.

use crate::autodiff::Plan;
use crate::graph::{Graph, Kind, Locals};
use proc_macro2::{Ident, Span};
use std::collections::HashSet;

struct Names {
    taken: HashSet<String>,
}

impl Names {
    fn alloc(&mut self, preferred: &str) -> Ident {
        let mut name = preferred.to_string();
        let mut k = 2;
        while !self.taken.insert(name.clone()) {
            name = format!("{preferred}_{k}");
            k += 1;
        }
        Ident::new(&name, Span::call_site())
    }
}

/// Assigns every node, parameter, gradient and residual its identifier; returns the
/// residual identifiers per node and the passes' local variables.
pub fn assign(g: &mut Graph, plan: &Plan) -> (Vec<Option<Ident>>, Locals) {
    let mut names = Names {
        taken: g
            .nodes
            .iter()
            .filter(|n| n.user)
            .map(|n| n.name.clone())
            .collect(),
    };
    for node in g.nodes.iter_mut().filter(|n| !n.user) {
        node.ident = names.alloc(&node.name);
    }
    for node in &g.nodes {
        if let Kind::Param(p) = node.kind {
            g.params[p].ident = node.ident.clone();
        }
    }
    let free: HashSet<usize> = g
        .nodes
        .iter()
        .filter_map(|n| match n.kind {
            Kind::Param(p) => Some(p),
            _ => None,
        })
        .collect();
    for (p, param) in g.params.iter_mut().enumerate() {
        if !free.contains(&p) {
            param.ident = names.alloc(&param.torch_name.replace('.', "_"));
        }
    }
    for param in &mut g.params {
        param.grad_ident = names.alloc(&format!("d_{}", param.ident));
    }
    for buffer in &mut g.buffers {
        buffer.ident = names.alloc(&buffer.torch_name.replace('.', "_"));
    }
    for aux in &mut g.aux {
        let node = &g.nodes[aux.node].ident;
        aux.ident = names.alloc(&format!("{node}_{}", aux.name));
    }
    let residuals = g
        .nodes
        .iter()
        .enumerate()
        .map(|(id, n)| plan.residual[id].then(|| names.alloc(&format!("d_{}", n.ident))))
        .collect();
    (residuals, locals(&mut names))
}

/// The passes' locals, named apart from every field (mixed-site, so the user's code never
/// sees them either).
fn locals(names: &mut Names) -> Locals {
    let mut local = |name: &str| Ident::new(&names.alloc(name).to_string(), Span::mixed_site());
    let [batch, mode, rng, accumulate, sgd, lr, params, values, buffers, residuals, grads] = [
        "batch",
        "mode",
        "rng",
        "accumulate",
        "sgd",
        "lr",
        "params",
        "values",
        "buffers",
        "residuals",
        "grads",
    ]
    .map(&mut local);
    // Temporaries are `t0`, `t1`, …: a prefix no taken name continues with digits.
    let numbered = |prefix: &str, name: &str| {
        name.strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
    };
    let temp = ["t", "tmp", "tmp_", "t_"]
        .into_iter()
        .chain(std::iter::once("__bp_t"))
        .find(|p| !names.taken.iter().any(|n| numbered(p, n)))
        .unwrap_or("__bp_t")
        .to_string();
    Locals {
        batch,
        mode,
        rng,
        accumulate,
        sgd,
        lr,
        params,
        values,
        buffers,
        residuals,
        grads,
        temp,
    }
}
