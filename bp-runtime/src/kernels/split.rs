//! Splitting a batch over the worker threads: how many parts a kernel uses, which
//! samples each part takes, and running the parts on the pool of [`crate::threads`].
//!
//! Kernels that work sample by sample (convolution, pooling, normalization,
//! elementwise loops) split the batch into contiguous runs of samples, one per thread,
//! when the work is large enough to pay for the hand-off; the parts are fixed by the
//! thread count and the batch alone, so a result is bit-for-bit the same every run with
//! the same thread count. Below [`SPLIT_THRESHOLD`] units of work everything stays on
//! the calling thread.
#![forbid(unsafe_code)]

use crate::threads::{for_chunks_at, MAX_CHUNKS};
use std::ops::Range;

/// The least work (multiply-adds for a product, elements touched for a loop) for which a
/// batch is split over threads. Measured on the 2-core AMD EPYC (Zen 4) with
/// `cargo run --release -p bp-runtime --example gemm_pick -- split` (max pooling, one
/// thread against the batch halved on bp's pool): 4,096 elements 0.97×, 8,192 1.04×,
/// 16,384 1.22×, 32,768 1.58× — the hand-off costs about 1.5 µs, won back from about
/// 8 K elements of the cheapest loop; 16 K leaves a margin for a loaded machine
/// (`bp-runtime/GEMM.md`, "Thresholds").
pub const SPLIT_THRESHOLD: usize = 16_384;

/// The number of parts to cut `batch` samples into for `work` units of work on up to
/// `threads` threads (the kernels pass [`threads`](super::threads)): at most one part per
/// thread, per sample and per piece of scratch the caller has (`cap`), and 1 when
/// `work <` [`SPLIT_THRESHOLD`].
pub fn parts_for(threads: usize, batch: usize, work: usize, cap: usize) -> usize {
    if work < SPLIT_THRESHOLD {
        return 1;
    }
    threads.min(batch).min(cap).clamp(1, MAX_CHUNKS)
}

/// How many pieces of per-thread scratch a network's workspace holds for a batch of
/// `batch`: one per thread ([`threads`](super::threads)), at most one per sample, at
/// least 1. Generated code sizes the workspaces of splitting kernels with it.
pub fn scratch_parts(batch: usize) -> usize {
    super::threads().min(batch).clamp(1, MAX_CHUNKS)
}

/// The length of a workspace holding `fixed` shared elements and `per_part` elements for
/// each of [`scratch_parts`]`(batch)` threads.
pub fn scratch_len(fixed: usize, per_part: usize, batch: usize) -> usize {
    fixed + per_part * scratch_parts(batch)
}

/// The samples of part `p` of `parts`: `batch·p/parts .. batch·(p+1)/parts`.
pub fn samples(batch: usize, parts: usize, p: usize) -> Range<usize> {
    batch * p / parts..batch * (p + 1) / parts
}

/// `data` (`batch` samples of `per` elements) cut into the runs of samples of
/// [`samples`], one per part; entries from `parts` on are empty.
pub fn cut_samples<T>(
    data: &mut [T],
    per: usize,
    batch: usize,
    parts: usize,
) -> [&mut [T]; MAX_CHUNKS] {
    let mut out: [&mut [T]; MAX_CHUNKS] = std::array::from_fn(|_| <&mut [T]>::default());
    let mut rest = data;
    for (p, slot) in out.iter_mut().enumerate().take(parts) {
        let n = (samples(batch, parts, p).len() * per).min(rest.len());
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(n);
        *slot = head;
        rest = tail;
    }
    out
}

/// `data` cut into `parts` consecutive pieces of `len` elements (a scratch buffer with
/// one piece per part); entries from `parts` on are empty.
pub fn cut_even<T>(data: &mut [T], len: usize, parts: usize) -> [&mut [T]; MAX_CHUNKS] {
    let mut out: [&mut [T]; MAX_CHUNKS] = std::array::from_fn(|_| <&mut [T]>::default());
    let mut rest = data;
    for slot in out.iter_mut().take(parts) {
        let n = len.min(rest.len());
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(n);
        *slot = head;
        rest = tail;
    }
    out
}

/// Runs `f(p, &mut items[p])` for every `p < parts` on the pool (the first part on the
/// calling thread), each part with exclusive access to its item.
pub fn run_parts<S: Send>(items: &mut [S], parts: usize, f: &(dyn Fn(usize, &mut S) + Sync)) {
    let parts = parts.min(items.len());
    for_chunks_at(&mut items[..parts], parts, &|p| p, &|p, item| {
        if let Some(s) = item.first_mut() {
            f(p, s);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_cover_the_batch_once_in_order() {
        for batch in 1..40 {
            for parts in 1..=batch.min(16) {
                let mut next = 0;
                for p in 0..parts {
                    let r = samples(batch, parts, p);
                    assert_eq!(r.start, next);
                    assert!(!r.is_empty(), "batch {batch} parts {parts} part {p}");
                    next = r.end;
                }
                assert_eq!(next, batch);
            }
        }
    }

    #[test]
    fn cuts_follow_the_samples() {
        let mut data: Vec<usize> = (0..7 * 3).collect();
        let cuts = cut_samples(&mut data, 3, 7, 3);
        assert_eq!(cuts[0].len(), 6);
        assert_eq!(cuts[1].len(), 6);
        assert_eq!(cuts[2].len(), 9);
        assert_eq!(cuts[2][0], 12);
        assert!(cuts[3].is_empty());
        let mut scratch = [0u8; 10];
        let pieces = cut_even(&mut scratch, 4, 2);
        assert_eq!(
            (pieces[0].len(), pieces[1].len(), pieces[2].len()),
            (4, 4, 0)
        );
    }

    #[test]
    fn every_part_runs_once_with_its_item() {
        let mut items: Vec<(usize, usize)> = (0..5).map(|i| (i, 0)).collect();
        run_parts(&mut items, 4, &|p, (i, hits)| {
            assert_eq!(p, *i);
            *hits += 1;
        });
        let hits: Vec<usize> = items.iter().map(|&(_, h)| h).collect();
        assert_eq!(hits, [1, 1, 1, 1, 0]);
    }

    #[test]
    fn small_work_stays_on_one_thread() {
        assert_eq!(parts_for(2, 64, SPLIT_THRESHOLD - 1, 16), 1);
        assert_eq!(parts_for(2, 1, usize::MAX, 16), 1);
        assert_eq!(parts_for(2, 64, usize::MAX, 1), 1);
        assert_eq!(parts_for(1, 64, usize::MAX, 16), 1);
        assert_eq!(parts_for(4, 3, SPLIT_THRESHOLD, 16), 3);
        assert_eq!(parts_for(64, 64, SPLIT_THRESHOLD, 64), MAX_CHUNKS);
    }
}
