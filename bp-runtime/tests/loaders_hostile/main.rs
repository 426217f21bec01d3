//! Every loader under hostile files: each prefix of a small valid file, random bit flips,
//! random bytes, and headers that declare what the file does not hold. Each must return
//! `Ok` or an error that names the file, never panic, never allocate more than a small
//! multiple of the file's size (a counting allocator checks the largest allocation), and
//! never hang (a watchdog aborts the run, naming the test, after a minute).
//!
//! Loaders: safetensors (`io::load_tensors` and `io::load` into a network), IDX images
//! and labels (plain and gzip), `data::mnist`, `read_csv` and `data::digits`. The random
//! cases run under proptest with a fixed seed and case count (`config`).

mod harness;
mod lies;

use harness::*;
use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

// ---------------------------------------------------------------------------------------
// The largest single allocation of the current thread (tests run on several threads).

struct Largest;

thread_local! {
    pub(crate) static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

// SAFETY: every method forwards to `System` with the caller's arguments; `note` only
// updates a thread-local number and never allocates.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's contract for `alloc` is `System::alloc`'s.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: as above; `ptr` came from this allocator, that is from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Largest = Largest;

// ---------------------------------------------------------------------------------------
// Truncation, bit flips, random bytes.

#[test]
fn every_prefix_loads_or_is_refused() {
    let _watchdog = Watchdog::new("every_prefix_loads_or_is_refused", Duration::from_secs(60));
    let dir = Dir::new("prefix");
    for (loader, file) in valid_files() {
        assert_eq!(
            outcome(&dir, loader, &file, "the whole file"),
            Ok(Ok(())),
            "{loader:?}"
        );
        for len in 0..file.len() {
            let got = outcome(
                &dir,
                loader,
                &file[..len],
                &format!("the first {len} bytes"),
            );
            let result = got.unwrap_or_else(|e| panic!("{e}"));
            // Only CSV has no length to check a cut against: a cut at a line end, or in
            // the middle of the last number, is a valid file.
            if !matches!(loader, Loader::Csv | Loader::Digits) {
                assert!(
                    result.is_err(),
                    "{loader:?}: the first {len} of {} bytes loaded",
                    file.len()
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn flipped_bits_load_or_are_refused(
        which in 0..11usize,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 0..8u32), 1..=8),
    ) {
        let _watchdog = Watchdog::new("flipped_bits_load_or_are_refused", Duration::from_secs(60));
        let dir = Dir::new(&format!("flip-{which}-{}", flips.len()));
        let (loader, mut file) = valid_files().swap_remove(which);
        let mut at = Vec::new();
        for (i, bit) in flips {
            let i = i.index(file.len());
            file[i] ^= 1 << bit;
            at.push((i, bit));
        }
        if let Err(e) = outcome(&dir, loader, &file, &format!("bits flipped at {at:?}")) {
            prop_assert!(false, "{}", e);
        }
    }

    #[test]
    fn random_bytes_are_refused(
        loader in prop::sample::select(LOADERS.to_vec()),
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        gz in any::<bool>(),
    ) {
        let _watchdog = Watchdog::new("random_bytes_are_refused", Duration::from_secs(60));
        let dir = Dir::new(&format!("random-{loader:?}-{}", bytes.len()));
        let file = if gz { gzip(&bytes) } else { bytes };
        match outcome(&dir, loader, &file, "random bytes") {
            Err(e) => prop_assert!(false, "{}", e),
            // Random bytes that happen to be a valid file are fine, but cannot be for
            // the formats that check a magic number and a length.
            Ok(Ok(())) => prop_assert!(matches!(loader, Loader::Csv | Loader::Digits), "{:?} loaded random bytes", loader),
            Ok(Err(_)) => {}
        }
    }
}
