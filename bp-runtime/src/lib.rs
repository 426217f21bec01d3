//! The runtime of `bp`: tensors, the kernels generated code calls, losses, optimizers,
//! seeded initialization, data loading, serialization and a gradient checker.
//!
//! Users depend on the `bp` crate, which re-exports everything here.

mod error;
mod float;
mod network;
mod tensor;

pub mod check;
pub mod data;
pub mod init;
pub mod io;
pub mod kernels;
pub mod loss;
pub mod optim;
pub mod pool;
pub mod rng;
pub mod train;

pub use error::Error;
pub use float::Float;
pub use network::{
    check_batch, check_count, check_input, check_output_grad, check_state_shape, Network,
    ParamVisitor, Port,
};
pub use tensor::{Tensor, MAX_RANK};
