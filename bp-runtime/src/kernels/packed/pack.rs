//! Copying strips of `op(A)` and `op(B)` into the zero-padded layout the micro-kernel
//! reads, for the operands (or the parts of them) that cannot be read in place.
#![forbid(unsafe_code)]

use super::isa::Elem;
use super::Mat;

/// Copies `op(B)[p0..p0+kc, j..j+w]` into a `[kc][NR]` strip, zero-padded to `NR`.
pub(super) fn pack_b<T: Elem, const NR: usize>(
    b: Mat<T>,
    p0: usize,
    kc: usize,
    j: usize,
    w: usize,
    out: &mut [T],
) {
    let out = &mut out[..kc * NR];
    if b.rs == 1 {
        // Bᵀ stored row-major (the forward x·Wᵀ): column j+jj of B is contiguous in p.
        if w < NR {
            out.fill(T::ZERO);
        }
        // By blocks of 16 steps, so the rows being filled stay in L1; whole 16×16 tiles
        // through the type's transpose where it has one.
        for (blk, dst) in out.chunks_mut(16 * NR).enumerate() {
            let p = p0 + blk * 16;
            let mut done = 0;
            if dst.len() == 16 * NR {
                while done + 16 <= w {
                    let src = &b.d[(j + done) * b.cs + p..];
                    if !T::transpose16(src, b.cs, &mut dst[done..], NR) {
                        break;
                    }
                    done += 16;
                }
            }
            for jj in done..w {
                let col = &b.d[(j + jj) * b.cs + p..][..dst.len() / NR];
                for (d, &v) in dst.chunks_exact_mut(NR).zip(col) {
                    d[jj] = v;
                }
            }
        }
    } else {
        for (p, dst) in out.chunks_exact_mut(NR).enumerate() {
            let row = (p0 + p) * b.rs + j * b.cs;
            for (jj, d) in dst.iter_mut().enumerate() {
                *d = if jj < w {
                    b.d[row + jj * b.cs]
                } else {
                    T::ZERO
                };
            }
        }
    }
}

/// Copies the `strips·R` rows `op(A)[i.., p0..p0+kc]` of a column-major `op(A)` into
/// `strips` consecutive `[kc][R]` strips (as `strips` calls of [`pack_a`] would), reading
/// each step's `strips·R` elements once, in order, instead of once per strip: one pass
/// over A's lines instead of `strips` passes that each take 48 bytes of them (A is the
/// `δᵀ` of a weight gradient, its steps 2 KiB or more apart).
pub(super) fn pack_a_columns<T: Elem, const R: usize>(
    a: Mat<T>,
    i: usize,
    strips: usize,
    p0: usize,
    kc: usize,
    out: &mut [T],
) {
    debug_assert_eq!(a.rs, 1);
    let out = &mut out[..strips * kc * R];
    for p in 0..kc {
        let (src, _) = a.d[(p0 + p) * a.cs + i..][..strips * R].as_chunks::<R>();
        for (t, part) in src.iter().enumerate() {
            let dst: &mut [T; R] = (&mut out[(t * kc + p) * R..][..R]).try_into().unwrap();
            *dst = *part;
        }
    }
}

/// Copies the `h` rows `op(A)[i.., p0..p0+kc]` into a `[kc][R]` strip, zero-padded to
/// `R` rows.
pub(super) fn pack_a<T: Elem, const R: usize>(
    a: Mat<T>,
    i: usize,
    h: usize,
    p0: usize,
    kc: usize,
    out: &mut [T],
) {
    let out = &mut out[..kc * R];
    if a.cs == 1 {
        // Row-major: by blocks of 16 steps, reading each row contiguously while the
        // block being filled stays in L1.
        if h < R {
            out.fill(T::ZERO);
        }
        for (blk, dst) in out.chunks_mut(16 * R).enumerate() {
            let p = p0 + blk * 16;
            for ii in 0..h {
                let row = &a.d[(i + ii) * a.rs + p..][..dst.len() / R];
                for (d, &v) in dst.chunks_exact_mut(R).zip(row) {
                    d[ii] = v;
                }
            }
        }
    } else if a.rs == 1 {
        // Column-major: each step's h elements are contiguous. A full strip copies
        // `R` elements a step as one fixed-size move (a `copy_from_slice` of a run-time
        // length called `memcpy` for every 12 elements: 11 % of an LSTM step's weight
        // gradients, perf).
        let (steps, _) = out.as_chunks_mut::<R>();
        if h == R {
            for (p, dst) in steps.iter_mut().enumerate() {
                dst.copy_from_slice(&a.d[(p0 + p) * a.cs + i..][..R]);
            }
        } else {
            for (p, dst) in steps.iter_mut().enumerate() {
                let (d, pad) = dst.split_at_mut(h);
                d.copy_from_slice(&a.d[(p0 + p) * a.cs + i..][..h]);
                pad.fill(T::ZERO);
            }
        }
    } else {
        for (p, dst) in out.chunks_exact_mut(R).enumerate() {
            for (ii, d) in dst.iter_mut().enumerate() {
                *d = if ii < h {
                    a.d[(i + ii) * a.rs + (p0 + p) * a.cs]
                } else {
                    T::ZERO
                };
            }
        }
    }
}
