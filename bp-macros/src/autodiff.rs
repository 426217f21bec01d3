//! The reverse sweep's plan: which nodes get a residual, and which residuals already hold
//! a contribution when the sweep starts (outputs, seeded with the caller's gradient).
//!
//! A node gets a residual when it depends on something learnable (a parameter or an
//! input declared with `grad`): ∇_f J = Σ_i ∂J/∂h_i · ∂h_i/∂f over its successors h_i.
//! The sweep visits nodes in reverse definition order, so every successor of a node has
//! contributed before the node's own backward step runs. The first contribution to a
//! residual writes, later ones add: nothing is zero-filled.

use crate::graph::{trainable, Graph, Kind, NodeId};

/// What the backward pass computes.
pub struct Plan {
    /// Nodes on a path from a parameter or `grad` input: their op runs a backward step.
    pub trainable: Vec<bool>,
    /// Nodes that keep a residual buffer (trainable ops, and `grad` inputs).
    pub residual: Vec<bool>,
    /// Residuals written before the sweep (outputs, from the caller's `d_out`).
    pub seeded: Vec<bool>,
}

pub fn plan(g: &Graph) -> Plan {
    let trainable = trainable(g);
    let residual: Vec<bool> = g
        .nodes
        .iter()
        .enumerate()
        .map(|(id, n)| trainable[id] && !matches!(n.kind, Kind::Param(_)))
        .collect();
    let mut seeded = vec![false; g.nodes.len()];
    for &o in &g.outputs {
        seeded[o] = residual[o];
    }
    Plan {
        trainable,
        residual,
        seeded,
    }
}

impl Plan {
    /// Op nodes whose backward step runs, in the order the sweep visits them.
    pub fn sweep(&self, g: &Graph) -> Vec<NodeId> {
        (0..g.nodes.len())
            .rev()
            .filter(|&id| self.trainable[id] && g.nodes[id].op().is_some())
            .collect()
    }
}
