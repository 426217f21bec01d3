//! The runtime of `bp`: tensors, the kernels generated code calls, losses, optimizers,
//! seeded initialization, data loading, serialization and a gradient checker.
//!
//! Users depend on the `bp` crate, which re-exports the user API from here: [`Tensor`],
//! [`Network`], [`Error`], [`Float`] and the public modules. The items only generated code
//! calls (the `check_*` functions, [`alloc_tensor`], [`reserve_buffer`], [`threads`], …)
//! it re-exports under `bp::__private`, which is not API.
//!
//! # Unsafe code
//!
//! Three parts of the crate hold `unsafe`, each block with a `// SAFETY:` comment and a
//! safe twin the tests compare it with on random inputs (proptest): bp's GEMM
//! (`kernels/packed/`: the micro-kernel's unchecked loads in `tile.rs`, the calls of
//! `#[target_feature]` code in `isa.rs` and `dispatch.rs`), the dispatch of the
//! fixed-size dense kernels (`kernels/linear/fixed.rs`), and the job pointer of the
//! worker pool ([`threads`]). The crate denies `unsafe_code`, those modules alone allow
//! it, and every other module forbids it: `forbid`, unlike `deny`, cannot be lifted by
//! an `allow` further in, so no function of a safe module can opt out. The crate itself
//! cannot forbid, since a crate-level `forbid` would refuse the `allow`s as well; the
//! modules that only contain unsafe ones (`kernels`, `kernels::linear`,
//! `kernels::packed`) rest on the crate's `deny`, and any new module starts under it.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod float;
#[forbid(unsafe_code)]
mod network;
mod tensor;

pub mod check;
pub mod data;
pub mod init;
pub mod io;
pub mod kernels;
pub mod loss;
pub mod optim;
#[cfg(test)]
mod prop;
pub mod rng;
#[allow(unsafe_code)] // the job pointer handed to the workers; see the module's docs
pub mod threads;
pub mod train;

pub use error::Error;
pub use float::Float;
pub use kernels::{Accumulate, Mode};
pub use network::{
    alloc_tensor, check_batch, check_batch_norm, check_count, check_finite, check_input,
    check_output_grad, check_state_shape, reserve_buffer, Network, ParamVisitor, PassBuffer, Port,
};
pub use tensor::{Tensor, MAX_RANK};
