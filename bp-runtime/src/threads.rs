//! A persistent worker pool that splits one job over a few threads without touching the
//! heap once warm: [`run`] calls `f(0), …, f(parts - 1)` and returns when all have finished.
//! Part 0 runs on the calling thread. Parts 1 and up are claimed one at a time, by the
//! workers and by the caller once part 0 is done, so a part never waits for a thread that
//! the OS has not scheduled: if no worker has claimed part 1 when the caller is free, the
//! caller runs it itself.
//!
//! Why not rayon (which the `gemm` crate uses): every `join`/`scope` entered from outside
//! its pool pushes a job onto rayon's injector queue, which allocates, and a training step
//! must not allocate once warm. Here a job is one pointer published in a static and one
//! atomic word, so nothing is queued: the pool runs one job at a time.
//!
//! Why spin, then block: the GEMM hands out many jobs of 10–300 µs per step, and waking a
//! thread blocked on a condition variable costs tens of microseconds. So a worker with
//! nothing to do spins for up to [`SPIN`] watching for the next job before it sleeps on a
//! condition variable, and the caller, its parts done, spins the same while for the
//! workers before it sleeps. Spinning is done in short bursts of
//! [`std::hint::spin_loop`] hints with the core yielded between them: when the
//! OS puts the caller and a worker on the same core (say while another process keeps the
//! other core busy), the waiting thread hands the core over instead of holding it for all
//! of [`SPIN`]. The fast path is lock-free: one atomic word (part count, next part to claim)
//! announces a job and hands out its parts, a pending count reports its end, and the
//! mutex is taken only to sleep or to wake a sleeper. Between steps the workers sleep.
//!
//! A call made while the pool is busy, from inside a part (nested) or from another thread
//! at the same time, does not wait for it: it runs all its parts in order on its own thread.
//!
//! # Safety invariant
//! A job is a lifetime-erased pointer to the caller's `f`. Only the thread holding the
//! pool's `busy` flag publishes one, and it does not return, nor release the flag, until
//! the pending count is 0, that is until every part a worker has claimed has returned (or
//! unwound into `catch_unwind`). A drop guard does that wait, so it also happens if the
//! caller unwinds. A worker reads the pointer only after claiming a part by a
//! compare-exchange on the current state, so the part, and the pointer, belong to the job
//! in progress; and it decrements the pending count only after its last use of `f`.

use std::any::Any;
use std::hint::spin_loop;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering::*};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// How long a worker waits for the next job, and the caller for the workers, by spinning
/// before blocking.
pub const SPIN: Duration = Duration::from_micros(100);

/// The most parts one [`run`] may have.
pub const MAX_PARTS: usize = 1024;

/// [`Pool::state`] holds the part count above `PARTS_SHIFT`, the next part to claim below.
const PARTS_SHIFT: u32 = 16;
const NEXT_MASK: usize = (1 << PARTS_SHIFT) - 1;

type Job<'a> = &'a (dyn Fn(usize) + Sync);
type Payload = Box<dyn Any + Send>;

struct Pool {
    /// The try-lock: set while a `run` owns the pool.
    busy: AtomicBool,
    /// Workers spawned so far.
    workers: AtomicUsize,
    /// Workers that have started running [`worker`] (see [`grow`]).
    started: AtomicUsize,
    /// The current job's part count and next part to claim.
    state: AtomicUsize,
    /// The current job: a pointer to the caller's `Job` (see the invariant above).
    job: AtomicPtr<()>,
    /// Parts from 1 on not yet finished.
    pending: AtomicUsize,
    /// The first panic payload of a worker part, and whether there is one (so that the
    /// caller need not lock to find out).
    panic: Mutex<Option<Payload>>,
    panicked: AtomicBool,
    /// Taken only to sleep or to wake a sleeper.
    lock: Mutex<()>,
    /// Workers sleep here waiting for a job; `sleepers` counts them.
    work: Condvar,
    sleepers: AtomicUsize,
    /// The caller sleeps here waiting for the workers; `caller_waiting` says it does.
    done: Condvar,
    caller_waiting: AtomicBool,
}

static POOL: Pool = Pool {
    busy: AtomicBool::new(false),
    workers: AtomicUsize::new(0),
    started: AtomicUsize::new(0),
    state: AtomicUsize::new(0),
    job: AtomicPtr::new(std::ptr::null_mut()),
    pending: AtomicUsize::new(0),
    panic: Mutex::new(None),
    panicked: AtomicBool::new(false),
    lock: Mutex::new(()),
    work: Condvar::new(),
    sleepers: AtomicUsize::new(0),
    done: Condvar::new(),
    caller_waiting: AtomicBool::new(false),
};

/// Runs `f(0), f(1), …, f(parts - 1)`, part 0 on the calling thread and the others on
/// persistent worker threads (or on the calling thread, if it is free before a worker
/// claims them), and returns when all have finished. No heap allocation once the workers
/// exist.
///
/// Workers (`bp-worker-1`, …) are spawned on first need, up to `parts - 1`, and live for
/// the process. If the pool is busy (a nested call, or another thread's), or a worker
/// cannot be spawned, the parts run one after another on the calling thread instead.
///
/// # Panics
/// If a part panics: `run` still runs all the parts, waits for them, then resumes the
/// first panic on the calling thread; the pool stays usable. Also if `parts > MAX_PARTS`.
pub fn run(parts: usize, f: Job<'_>) {
    match parts {
        0 => return,
        1 => return f(0),
        _ => assert!(parts <= MAX_PARTS, "threads::run: too many parts ({parts})"),
    }
    let Some(busy) = Busy::acquire() else {
        return sequential(parts, f);
    };
    if !grow(parts - 1) {
        drop(busy);
        return sequential(parts, f);
    }
    let mut caller_panic = None;
    let mut worker_panic = None;
    {
        let job: *const Job<'_> = &f;
        POOL.job.store(job.cast_mut().cast(), Relaxed);
        POOL.pending.store(parts - 1, Relaxed);
        // From here workers may use the pointer: `_join` waits for them on every exit.
        let _join = Join(&mut worker_panic);
        POOL.state.store(parts << PARTS_SHIFT | 1, SeqCst);
        if POOL.sleepers.load(SeqCst) > 0 {
            let _lock = lock(&POOL.lock);
            POOL.work.notify_all();
        }
        let mut part = Some(0);
        while let Some(i) = part {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(i))) {
                caller_panic.get_or_insert(payload);
            }
            if i > 0 {
                POOL.pending.fetch_sub(1, Relaxed);
            }
            part = claim();
        }
    }
    drop(busy);
    if let Some(payload) = caller_panic.or(worker_panic) {
        resume_unwind(payload);
    }
}

/// The fallback of a busy pool: runs the parts in order on this thread, all of them even if
/// one panics, as the pool does, then resumes the first panic.
fn sequential(parts: usize, f: Job<'_>) {
    let mut first_panic = None;
    for i in 0..parts {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(i))) {
            first_panic.get_or_insert(payload);
        }
    }
    if let Some(payload) = first_panic {
        resume_unwind(payload);
    }
}

/// Claims the next unclaimed part of the current job, if there is one.
fn claim() -> Option<usize> {
    let mut state = POOL.state.load(Relaxed);
    loop {
        let next = state & NEXT_MASK;
        if next >= state >> PARTS_SHIFT {
            return None;
        }
        // Acquire: a successful claim sees the job stored before the state was published.
        match POOL
            .state
            .compare_exchange_weak(state, state + 1, Acquire, Relaxed)
        {
            Ok(_) => return Some(next),
            Err(now) => state = now,
        }
    }
}

/// Whether the current job has a part left to claim.
fn unclaimed() -> bool {
    let state = POOL.state.load(SeqCst);
    state & NEXT_MASK < state >> PARTS_SHIFT
}

/// Owning the pool; releases it when dropped.
struct Busy;

impl Busy {
    /// Takes the pool if it is free.
    fn acquire() -> Option<Busy> {
        // Not `then_some(Busy)`: that would drop a `Busy`, releasing the pool, on failure.
        match POOL.busy.compare_exchange(false, true, Acquire, Relaxed) {
            Ok(_) => Some(Busy),
            Err(_) => None,
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        POOL.busy.store(false, Release);
    }
}

/// Waits for the workers' parts when dropped, then takes the first worker panic.
struct Join<'a>(&'a mut Option<Payload>);

impl Drop for Join<'_> {
    fn drop(&mut self) {
        if !spin(|| POOL.pending.load(Acquire) == 0) {
            let mut guard = lock(&POOL.lock);
            POOL.caller_waiting.store(true, SeqCst);
            while POOL.pending.load(SeqCst) != 0 {
                guard = wait(&POOL.done, guard);
            }
            POOL.caller_waiting.store(false, Relaxed);
        }
        // The acquire loads of `pending` above saw the workers' stores to `panicked`.
        if POOL.panicked.swap(false, Relaxed) {
            *self.0 = lock(&POOL.panic).take();
        }
    }
}

/// Spawns workers until there are `workers`; false if the system refuses a thread.
///
/// Returns only once every new worker is running: a new thread allocates while it starts
/// (the standard library's thread-local set-up), and that start must happen here, in the
/// call that spawns it, not during some later `run` that promises not to allocate. Without
/// this wait, on a loaded machine the caller could run a few jobs alone (it claims the
/// parts no worker has claimed) before the new thread first ran, and the thread's start-up
/// allocation then fell into a later, warm call.
fn grow(workers: usize) -> bool {
    for index in POOL.workers.load(Relaxed) + 1..=workers {
        let name = format!("bp-worker-{index}");
        if thread::Builder::new().name(name).spawn(worker).is_err() {
            return false;
        }
        POOL.workers.store(index, Relaxed);
        while POOL.started.load(Acquire) < index {
            thread::yield_now();
        }
    }
    true
}

/// The loop of a worker: claim a part and run it, or wait for a job.
fn worker() {
    // The standard library's start-up of this thread is done; `grow` waits for this.
    POOL.started.fetch_add(1, Release);
    loop {
        let Some(part) = claim() else {
            wait_for_job();
            continue;
        };
        let job = POOL.job.load(Relaxed).cast_const().cast::<Job<'_>>();
        // SAFETY: `claim` took a part of the job in progress: its compare-exchange (acquire)
        // read the state that job's `run` published (release) after storing `job`, and no
        // other job can be published before this part is counted done below. So `job`
        // points to the `f` of a `run` that has not returned: it does not return, even by
        // unwinding, until `pending` is 0, which needs the decrement below, made after the
        // last use of `f`. The pointee is a live `&dyn Fn + Sync`, usable from this thread.
        let f = unsafe { *job };
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(part))) {
            lock(&POOL.panic).get_or_insert(payload);
            POOL.panicked.store(true, Relaxed);
        }
        if POOL.pending.fetch_sub(1, SeqCst) == 1 && POOL.caller_waiting.load(SeqCst) {
            let _lock = lock(&POOL.lock);
            POOL.done.notify_one();
        }
    }
}

/// Returns once the current job may have a part to claim, spinning then sleeping.
fn wait_for_job() {
    if spin(unclaimed) {
        return;
    }
    let mut guard = lock(&POOL.lock);
    // With `run`'s store of the state then load of `sleepers`, both `SeqCst`: either `run`
    // sees this sleeper and notifies it under the lock, or the check below sees the job.
    POOL.sleepers.fetch_add(1, SeqCst);
    while !unclaimed() {
        guard = wait(&POOL.work, guard);
    }
    POOL.sleepers.fetch_sub(1, Relaxed);
}

/// Polls `ready` for up to [`SPIN`]: bursts of spin-loop hints, the core yielded between.
fn spin(mut ready: impl FnMut() -> bool) -> bool {
    let mut start = None; // read the clock only if the first burst fails
    loop {
        for _ in 0..64 {
            if ready() {
                return true;
            }
            spin_loop();
        }
        if start.get_or_insert_with(Instant::now).elapsed() >= SPIN {
            return false;
        }
        thread::yield_now();
    }
}

/// Locks `mutex`, ignoring poisoning: nothing panics while holding the pool's locks.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits on `condvar`, ignoring poisoning.
fn wait<'a>(condvar: &Condvar, guard: MutexGuard<'a, ()>) -> MutexGuard<'a, ()> {
    condvar.wait(guard).unwrap_or_else(PoisonError::into_inner)
}

/// The most chunks [`for_chunks`] and [`for_chunks_at`] cut a buffer into.
pub const MAX_CHUNKS: usize = 16;

/// Runs `f(p, chunk_p)` over `parts` contiguous, disjoint chunks of `data` (each of
/// `len / parts` elements, rounded to a multiple of 16, the last taking the rest; see
/// [`chunk_start`]) on the pool, with `p` the chunk's index. With one part, `f(0, data)`
/// runs inline. `parts` is capped at [`MAX_CHUNKS`].
pub fn for_chunks<T: Send>(data: &mut [T], parts: usize, f: &(dyn Fn(usize, &mut [T]) + Sync)) {
    let len = data.len();
    for_chunks_at(data, parts, &|p| chunk_start(len, parts, p), f)
}

/// [`for_chunks`] with the cuts given: chunk `p` is `data[start(p)..start(p + 1)]`, with
/// `start(0)` taken as 0, `start(parts)` as `data.len()`, and every cut clamped to the
/// length and to the previous cut (so a bad `start` gives empty chunks, never overlap).
/// Safe code: each `&mut` chunk moves into the part that owns it through an uncontended
/// mutex.
pub fn for_chunks_at<T: Send>(
    data: &mut [T],
    parts: usize,
    start: &(dyn Fn(usize) -> usize + Sync),
    f: &(dyn Fn(usize, &mut [T]) + Sync),
) {
    let parts = parts.clamp(1, MAX_CHUNKS);
    if parts == 1 {
        return f(0, data);
    }
    let mut chunks: [Mutex<&mut [T]>; MAX_CHUNKS] =
        std::array::from_fn(|_| Mutex::new(<&mut [T]>::default()));
    let mut rest = data;
    let mut at = 0;
    for (p, slot) in chunks.iter_mut().enumerate().take(parts) {
        let end = if p + 1 == parts {
            at + rest.len()
        } else {
            start(p + 1).clamp(at, at + rest.len())
        };
        let (chunk, tail) = std::mem::take(&mut rest).split_at_mut(end - at);
        *slot.get_mut().unwrap_or_else(|e| e.into_inner()) = chunk;
        rest = tail;
        at = end;
    }
    let chunks = &chunks;
    run(parts, &|p| {
        let mut chunk = chunks[p].lock().unwrap_or_else(|e| e.into_inner());
        f(p, &mut chunk);
    });
}

/// Where chunk `p` of [`for_chunks`] starts, for a buffer of `len` elements cut in
/// `parts` (so a part can find the matching range of another buffer).
pub fn chunk_start(len: usize, parts: usize, p: usize) -> usize {
    let parts = parts.clamp(1, MAX_CHUNKS);
    if p >= parts {
        len
    } else {
        (len * p / parts) / 16 * 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// Runs `run(parts, …)` and returns how many times each part ran.
    fn counts(parts: usize) -> Vec<usize> {
        let hits: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
        run(parts, &|i| {
            hits[i].fetch_add(1, Relaxed);
        });
        hits.into_iter().map(AtomicUsize::into_inner).collect()
    }

    #[test]
    fn every_part_runs_once() {
        run(0, &|_| panic!("no part to run"));
        for parts in [1, 2, 3, 8, 2, 3] {
            assert_eq!(counts(parts), vec![1; parts], "{parts} parts");
        }
    }

    #[test]
    fn nested_runs_fall_back_to_sequential() {
        let hits: Vec<AtomicUsize> = (0..6).map(|_| AtomicUsize::new(0)).collect();
        let hit = |i: usize| _ = hits[i].fetch_add(1, Relaxed);
        run(2, &|i| run(3, &|j| hit(3 * i + j)));
        assert!(hits.iter().all(|h| h.load(Relaxed) == 1));
    }

    #[test]
    fn a_call_on_a_busy_pool_leaves_it_busy() {
        let held = loop {
            if let Some(busy) = Busy::acquire() {
                break busy;
            }
            thread::yield_now();
        };
        assert!(Busy::acquire().is_none());
        assert_eq!(counts(2), vec![1; 2]);
        assert!(Busy::acquire().is_none(), "the fallback released the pool");
        drop(held);
    }

    #[test]
    fn concurrent_callers_both_complete() {
        let sums: [AtomicUsize; 2] = Default::default();
        thread::scope(|s| {
            for sum in &sums {
                s.spawn(|| {
                    for _ in 0..2000 {
                        run(3, &|i| _ = sum.fetch_add(i + 1, Relaxed));
                    }
                });
            }
        });
        assert!(sums.iter().all(|s| s.load(Relaxed) == 2000 * 6));
    }

    #[test]
    fn panics_reach_the_caller_and_the_pool_survives() {
        for bad in [0, 1, 2] {
            let done = AtomicUsize::new(0);
            let result = catch_unwind(|| {
                run(3, &|i| {
                    assert_ne!(i, bad, "part {i} fails");
                    done.fetch_add(1, Relaxed);
                })
            });
            let payload = result.expect_err("the panic must reach the caller");
            let message = payload.downcast_ref::<String>().unwrap();
            assert!(message.contains(&format!("part {bad} fails")), "{message}");
            assert_eq!(done.load(Relaxed), 2, "the other parts still ran");
            assert_eq!(counts(3), vec![1; 3], "the pool works afterwards");
        }
    }

    #[test]
    fn stress_many_small_jobs() {
        let sum = AtomicUsize::new(0);
        for _ in 0..10_000 {
            run(2, &|i| _ = sum.fetch_add(i + 1, Relaxed));
        }
        assert_eq!(sum.load(Relaxed), 30_000);
    }

    /// A part's work: `spins` rounds of a hash of `(seed, part)`, so parts take different
    /// times and a result read from the wrong part or job shows.
    fn work(seed: u64, part: usize, spins: u32) -> u64 {
        let mut h = seed ^ (part as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for _ in 0..=spins {
            h = (h ^ (h >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        }
        h
    }

    /// What `f(i)` of the random job computes, per part (0 where it did not run) and
    /// nested part, and how many times each part ran.
    struct Outcome {
        values: Vec<u64>,
        nested: Vec<u64>,
        runs: Vec<usize>,
    }

    /// Runs the random job with `runner` (`run` or its safe twin `sequential`): part `i`
    /// computes `work(seed, i, spins[i])`, and when `nest` also runs a 3-part job inside.
    fn job(
        runner: fn(usize, Job<'_>),
        parts: usize,
        spins: &[u32],
        nest: bool,
        seed: u64,
    ) -> Outcome {
        let values: Vec<AtomicU64> = (0..parts).map(|_| AtomicU64::new(0)).collect();
        let nested: Vec<AtomicU64> = (0..3 * parts).map(|_| AtomicU64::new(0)).collect();
        let runs: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
        runner(parts, &|i| {
            runs[i].fetch_add(1, SeqCst);
            values[i].store(work(seed, i, spins[i]), SeqCst);
            if nest {
                run(3, &|j| {
                    nested[3 * i + j].store(work(seed, 100 + 3 * i + j, 5), SeqCst)
                });
            }
        });
        let take = |v: Vec<AtomicU64>| v.into_iter().map(AtomicU64::into_inner).collect();
        Outcome {
            values: take(values),
            nested: take(nested),
            runs: runs.into_iter().map(AtomicUsize::into_inner).collect(),
        }
    }

    proptest::proptest! {
        #![proptest_config(crate::prop::config(96))]

        /// `run`, whose workers call the caller's closure through the lifetime-erased job
        /// pointer (the module's one `unsafe`), against its safe twin `sequential`: the same
        /// results, every part once, with parts of random lengths, nested jobs, and another
        /// thread using the pool at the same time.
        #[test]
        fn run_is_its_sequential_twin(
            parts in 0..=MAX_CHUNKS + 1,
            spins in proptest::collection::vec(0..3000u32, MAX_CHUNKS + 1),
            nest in proptest::bool::ANY,
            concurrent in proptest::bool::ANY,
            seed in proptest::num::u64::ANY,
        ) {
            let want = job(sequential, parts, &spins, nest, seed);
            let got = thread::scope(|s| {
                let other = concurrent.then(|| s.spawn(|| job(run, parts, &spins, nest, !seed)));
                let got = job(run, parts, &spins, nest, seed);
                if let Some(other) = other {
                    let other = other.join().expect("the other caller's job");
                    let twin = job(sequential, parts, &spins, nest, !seed);
                    assert_eq!((other.values, other.nested), (twin.values, twin.nested));
                }
                got
            });
            proptest::prop_assert_eq!(&got.runs, &vec![1; parts]);
            proptest::prop_assert_eq!(got.values, want.values);
            proptest::prop_assert_eq!(got.nested, want.nested);
        }
    }

    #[test]
    fn for_chunks_covers_every_element_once() {
        for len in [0usize, 1, 15, 16, 17, 100, 1000, 65_537] {
            for parts in [1usize, 2, 3, 16, 40] {
                let mut v = vec![0u32; len];
                for_chunks(&mut v, parts, &|p, chunk| {
                    let start = chunk_start(len, parts, p);
                    for (k, x) in chunk.iter_mut().enumerate() {
                        *x += (start + k) as u32 + 1;
                    }
                });
                let want: Vec<u32> = (1..=len as u32).collect();
                assert_eq!(v, want, "len {len}, parts {parts}");
            }
        }
    }
}
