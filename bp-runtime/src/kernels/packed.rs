//! bp's own GEMM: register-blocked, cache-blocked, and allocation-free once warm (its
//! one packing buffer lives in thread-local storage and keeps its capacity), so a
//! training step that runs the same products again never touches the heap.
//!
//! `C := alpha·op(A)·op(B) + beta·C`, each operand a slice with
//! `[row stride, column stride]`. The loops are those of BLIS — `C` is cut into `NC`-wide
//! column panels, the sum over `k` into `KC` slices and the rows into `MC` blocks, and a
//! micro-kernel multiplies an `MR`-row strip of `op(A)` by an `NR`-column strip of
//! `op(B)` into an `MR×NR` block of accumulators held in registers — with one
//! difference that matters for the small and medium products of a network: **nothing is
//! packed that can be read in place.**
//!
//! - `op(A)` is read in place, whatever its strides: the micro-kernel broadcasts one
//!   element per row and step, and a broadcast costs the same from any address. Only
//!   the last strip of a block, when it has fewer than `MR` rows, is copied into a
//!   zero-padded strip of the next kernel height (4, 8 or `MR`).
//! - `op(B)` is read in place when its rows are contiguous (column stride 1: the `B`
//!   of `A·B` and of `Aᵀ·B`, i.e. a layer's input gradient and weight gradient). Only the
//!   `Bᵀ` of the forward product `x·Wᵀ` is packed into `NR`-wide strips, and the last,
//!   narrower strip of a panel.
//!
//! Packing is what made the textbook version slow on these shapes: a 64×784 by 784×128
//! product does as much copying as multiplying when both operands are packed.
//!
//! The kernels are plain Rust that the compiler vectorizes, compiled three times — for
//! AVX-512, for AVX2 with FMA, and for the baseline target, each with its own tile
//! (`MR×NR` = 12×32 `f32` on AVX-512: 24 of the 32 vector registers accumulate) — and the
//! fastest the CPU supports is chosen at run time. The `unsafe` here is of two kinds,
//! each argued where it stands: calling a `#[target_feature]` function after the feature
//! check, and the micro-kernel's unchecked loads, whose extent is checked once per tile.
//! Each has a safe twin (`packed/safe.rs`): a micro-kernel doing the same sums in the
//! same order with every load bounds-checked, a scalar transpose, and the same kernels
//! compiled for the baseline target. The tests (`packed/tests.rs`) run the whole product
//! through the twins (`safe::run`) and require the same bits on random shapes, strides
//! and tails, and compare every path with a naive triple loop.
//!
//! The files, each using only those above it:
//!
//! - `safe.rs`: the safe twins and the switch that turns them on (no `unsafe`);
//! - `isa.rs`: which kernels the CPU runs, the element types and their transpose (16×16
//!   blocks, and whole matrices made of them);
//! - `tile.rs`: the micro-kernel and the store of one tile into C;
//! - `pack.rs`: copying strips of `op(A)` and `op(B)` into the packing buffer (no
//!   `unsafe`);
//! - `gemv.rs`: one row or column of C as dot products or sums of rows, read in place
//!   (a dense layer or a recurrent step at batch 1; no `unsafe`);
//! - `blocked.rs`: the blocking loops, or `gemv.rs` when it applies (no `unsafe`);
//! - `dispatch.rs`: the entry points, which compile the loops for each instruction set
//!   (and, for AVX-512, each tile) and call the one asked for;
//! - `tuning.rs`: which kernels this CPU runs — the tile its measurement chose, or, on a
//!   CPU not measured, the faster of the two timed once at first use (no `unsafe`).

mod blocked;
#[allow(unsafe_code)] // calls of `#[target_feature]` functions after the CPU check
mod dispatch;
mod gemv;
#[allow(unsafe_code)] // the AVX-512 transpose, a `#[target_feature]` function
mod isa;
mod pack;
mod safe;
#[cfg(test)]
#[allow(unsafe_code)] // calls the micro-kernel itself, to compare it with its twin
mod tests;
#[allow(unsafe_code)] // the micro-kernel's unchecked loads
mod tile;
mod tuning;

pub(crate) use blocked::scale;
pub(crate) use dispatch::{gemm_f32, gemm_f64};
pub(crate) use isa::{best_isa, transpose, Isa};
pub use tuning::describe;
pub(crate) use tuning::kernels;

/// A strided matrix operand.
#[derive(Clone, Copy)]
struct Mat<'a, T> {
    d: &'a [T],
    rs: usize,
    cs: usize,
}
