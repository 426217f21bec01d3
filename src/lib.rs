//! `bp` compiles a neural network, written as a short declarative description inside
//! [`network!`], into straight-line Rust: the forward pass and the complete backward pass
//! (the chain rule in reverse mode) are generated at compile time, every shape is checked
//! by the compiler, and `cargo expand` shows the derivation written out.
//!
//! See [`language`] for the language and the generated API, and the README for the runtime.
#![forbid(unsafe_code)]
pub mod language;

pub use bp_macros::network;
pub use bp_runtime::*;
