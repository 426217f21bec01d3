//! `bp` compiles a neural network, written as a short declarative description inside
//! [`network!`], into straight-line Rust: the forward pass and the complete backward pass
//! (the chain rule in reverse mode) are generated at compile time, every shape is checked
//! by the compiler, and `cargo expand` shows the derivation written out.
//!
//! See the README for the language, the generated API and the runtime.
#![forbid(unsafe_code)]

pub use bp_macros::network;
pub use bp_runtime::*;
