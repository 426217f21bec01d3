//! The operations, one file per family, and the registry the driver dispatches from.
//!
//! Each file answers the three questions of the derivation for its family: the shape it
//! passes forward (its `build`), the gradients of its parameters and the residuals it
//! passes back (its `backward`), next to its `forward`. Elementwise functions are not
//! here: they are entries of `formula::functions`, fused by [`elementwise`].

pub mod args;
mod conv;
mod dropout;
pub mod elementwise;
mod grads;
mod linear;
mod norm;
mod pooling;
mod recurrent;
mod reduce;
mod softmax;
mod structure;

use crate::diagnostics::did_you_mean;
use crate::formula::functions::FUNCTIONS;
use crate::graph::{Builder, Built, Kind, LetScope, NodeId};
use args::Call;
use proc_macro2::Ident;

/// How an operation is built from its call: the operands lowered, the hyperparameters
/// read, the shape checked, the parameters and workspaces registered.
pub type Build = fn(&mut Builder, &mut LetScope, &Call) -> Option<Built>;

/// One operation of the language (or a family sharing one `build`).
pub struct Entry {
    pub names: &'static [&'static str],
    pub build: Build,
}

/// Every operation that is not elementwise, in the order of the docs' table.
pub static OPERATIONS: &[Entry] = &[
    Entry {
        names: &["linear"],
        build: linear::build,
    },
    Entry {
        names: &["conv2d"],
        build: conv::build,
    },
    Entry {
        names: &["max_pool2d", "avg_pool2d"],
        build: pooling::build,
    },
    Entry {
        names: &["batch_norm", "layer_norm"],
        build: norm::build,
    },
    Entry {
        names: &["dropout"],
        build: dropout::build,
    },
    Entry {
        names: &["rnn", "lstm", "gru"],
        build: recurrent::build,
    },
    Entry {
        names: &["last"],
        build: structure::build_last,
    },
    Entry {
        names: &["sum", "mean"],
        build: reduce::build,
    },
    Entry {
        names: &["softmax", "log_softmax"],
        build: softmax::build,
    },
    Entry {
        names: &["concat"],
        build: structure::build_concat,
    },
    Entry {
        names: &["flatten"],
        build: structure::build_flatten,
    },
];

/// Every name the language knows (operations, then elementwise functions), for "did you
/// mean" and the docs' table.
pub fn known() -> impl Iterator<Item = &'static str> {
    let ops = OPERATIONS.iter().flat_map(|e| e.names.iter().copied());
    ops.chain(FUNCTIONS.iter().map(|f| f.name))
}

/// Builds the node of a non-elementwise operation, named `name` or anonymous.
pub fn build(
    b: &mut Builder,
    l: &mut LetScope,
    call: &Call,
    name: Option<&Ident>,
) -> Option<NodeId> {
    let func = call.func.to_string();
    let entry = OPERATIONS.iter().find(|e| e.names.contains(&func.as_str()));
    let Some(entry) = entry else {
        b.cx.error(
            call.func.span(),
            format!("unknown operation `{func}`{}", did_you_mean(&func, known())),
        );
        return None;
    };
    let (op, shape) = (entry.build)(b, l, call)?;
    Some(match name {
        Some(name) => b.define(name, Kind::Op(op), Some(shape)),
        None => {
            let anon = format!("{}_{func}", l.name);
            let ident = Ident::new(&anon, call.func.span());
            b.push(anon, ident, false, Kind::Op(op), Some(shape))
        }
    })
}

#[cfg(test)]
mod tests {
    /// The language reference (`bp::language`, `src/language.md`) has a row for every
    /// operation and function the macro knows.
    #[test]
    fn the_language_reference_lists_every_operation() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../src/language.md");
        let text = std::fs::read_to_string(path).expect("src/language.md");
        let missing: Vec<&str> = super::known()
            .filter(|name| !text.lines().any(|l| l.starts_with(&format!("| `{name}`"))))
            .collect();
        assert!(
            missing.is_empty(),
            "src/language.md has no row for {missing:?}"
        );
    }
}
