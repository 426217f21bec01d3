//! The kernels that generated code calls: plain functions over slices with explicit
//! dimensions, generic over [`Float`].
//!
//! Conventions shared by every kernel:
//!
//! - Buffers are row-major; a kernel's doc states its formula with the shape of each
//!   operand, e.g. `y[r,o] = Σ_i x[r,i]·w[o,i] + b[o]`.
//! - Outputs are written, never allocated. Backward kernels take an [`Accumulate`]:
//!   [`Overwrite`](Accumulate::Overwrite) replaces the output (its old content is never
//!   read, so it needs no zeroing) and [`Add`](Accumulate::Add) adds to it — the first
//!   contribution to a residual writes, later ones add.
//! - Lengths are guaranteed by the generated code and checked exactly only in debug
//!   builds; in release a wrong length can give a wrong result or a panic, never
//!   undefined behaviour. The only `unsafe` under `kernels` is in the GEMM
//!   (`packed/tile.rs`: the micro-kernel's unchecked loads; `packed/isa.rs` and
//!   `packed/dispatch.rs`: calls of `#[target_feature]` functions after the CPU check)
//!   and in the dispatch of the fixed-size dense kernels (`linear/fixed.rs`); [`gemm`]
//!   checks every operand's extent before the packed product runs, each tile checks the
//!   extent of its loads, and the fixed-size kernels index with bounds checks.
//! - Matrix products go through [`gemm`], bp's own packed GEMM (`packed.rs` and
//!   `packed/`, not a GEMM crate: those allocate on every call), which may use
//!   [`threads`] threads for products above [`PARALLEL_THRESHOLD`]; dense layers with
//!   `inp·out ≤` [`FIXED_MAX`] use the fixed-size kernels instead. Everything else is
//!   single-threaded loops written so the compiler vectorizes them.

mod conv;
mod dropout;
pub(crate) mod fastmath;
#[cfg(test)]
mod fd_check;
mod gemm;
mod linear;
#[forbid(unsafe_code)]
mod norm;
mod packed;
mod pool;
mod recurrent;
mod reduce;
mod softmax;
pub mod split;
mod structure;
#[cfg(test)]
mod test_util;
#[allow(unsafe_code)] // calls of `#[target_feature]` functions after the CPU check
pub(crate) mod wide;

pub(crate) use self::gemm::gemm_checked;
pub(crate) use self::gemm::with_threads;
pub use self::gemm::{gemm, set_threads, threads, MAX_THREADS, PARALLEL_THRESHOLD};
pub(crate) use self::packed::transpose;
pub use linear::{
    bias_backward, linear, linear_backward_input, linear_backward_input_fixed,
    linear_backward_weight, linear_backward_weight_fixed, linear_fixed, linear_sgd_weight,
    FIXED_MAX,
};
/// Which GEMM kernels this process runs, and why (the CPU's measured choice, or a tuning
/// at first use): `bp-runtime/GEMM.md`.
pub use packed::describe as gemm_kernels;
pub use reduce::{mean, mean_backward, sum, sum_backward};
pub use softmax::{log_softmax, log_softmax_backward, softmax, softmax_backward};
pub use structure::{concat_part, concat_part_backward, copy};

pub use conv::{conv2d, conv2d_backward, Conv2dGeom};
pub use dropout::{dropout, dropout_backward, dropout_mask};
pub use norm::{
    batch_norm_backward, batch_norm_eval, batch_norm_train, batch_norm_update_running, layer_norm,
    layer_norm_backward,
};
pub use pool::{avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward, Pool2dGeom};
pub use recurrent::{
    gru_step, gru_step_backward, last, last_backward, lstm_step, lstm_step_backward, rnn_backward,
    rnn_forward, rnn_step, rnn_step_backward, RnnGeom, RnnGrads, RnnKind, RnnParams,
};

use crate::Float;

/// Whether a kernel writes its result into the output buffer or adds to it.
///
/// Backward passes sum the contributions to a residual or a parameter gradient: the
/// first contribution overwrites, later ones add.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accumulate {
    /// The result replaces the output; its old content is never read, so it needs no
    /// zeroing and a NaN in it does not survive.
    Overwrite,
    /// The result is added to what the output holds.
    Add,
}

impl Accumulate {
    /// Whether this is [`Accumulate::Add`].
    #[inline(always)]
    pub const fn is_add(self) -> bool {
        matches!(self, Accumulate::Add)
    }

    /// The `beta` of a [`gemm`] into the output: 0 overwrites (C is not read), 1 adds.
    #[inline(always)]
    pub(crate) fn beta<T: Float>(self) -> T {
        match self {
            Accumulate::Overwrite => T::ZERO,
            Accumulate::Add => T::ONE,
        }
    }
}

/// Whether the kernels whose behaviour differs between training and inference (batch
/// norm, dropout) use the batch's own statistics and a fresh mask, or the running
/// statistics and no mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Batch statistics for batch norm, a random mask for dropout.
    Training,
    /// Running statistics for batch norm, dropout the identity.
    Evaluation,
}

impl Mode {
    /// Whether this is [`Mode::Training`].
    #[inline(always)]
    pub const fn is_training(self) -> bool {
        matches!(self, Mode::Training)
    }
}

/// `*d = v`, or `*d += v` with [`Accumulate::Add`]: the store of every backward kernel.
/// The choice is the same for a whole loop, so the compiler hoists the branch out of it.
#[inline(always)]
fn put<T: Float>(d: &mut T, v: T, acc: Accumulate) {
    match acc {
        Accumulate::Overwrite => *d = v,
        Accumulate::Add => *d += v,
    }
}
