//! [`SampledAllocator`]: a [`GlobalAlloc`] wrapper that records the call
//! stack of sampled allocations while they live (tcmalloc's and
//! jemalloc's heap sampling).
//!
//! Sampling is by bytes, as theirs: each thread counts down a random
//! number of bytes, exponentially distributed with mean [`sample_bytes`];
//! the allocation that crosses zero is sampled and stands for
//! `size / (1 - exp(-size / mean))` bytes (the unbiased estimate: large
//! blocks are nearly always sampled and weigh their size, small ones
//! weigh about `mean`). A sampled block's record lives in a map keyed by
//! its address until it is freed; a table of 65536 counters (how many live
//! samples hash to each slot) lets a free skip the map unless its slot is
//! taken.
//!
//! The allocator's own bookkeeping allocates (the map's nodes, the
//! stacks): a per-thread `busy` flag passes those through unsampled and
//! keeps their frees from looking at the map, whose lock the thread may
//! hold. Only those internal blocks are allocated or freed while `busy`,
//! so no sampled block is ever freed unseen.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Frames kept per sample (the innermost, the allocator's included).
pub(crate) const MAX_DEPTH: usize = 64;
/// Default of [`sample_bytes`] (jemalloc's `lg_prof_sample` of 19).
pub(crate) const DEFAULT_SAMPLE_BYTES: u64 = 512 << 10;
/// With sampling off, a thread looks at the flag again after this many
/// bytes (so turning it on takes effect without a per-allocation load).
const RECHECK_BYTES: i64 = 64 << 20;
/// Slots in the table of live samples by address hash.
const SLOT_BITS: u32 = 16;

static SAMPLE_BYTES: AtomicU64 = AtomicU64::new(DEFAULT_SAMPLE_BYTES);
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// Seeds the threads' generators apart.
static SEED: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
/// How many live samples' addresses hash to each slot.
static SLOTS: [AtomicU32; 1 << SLOT_BITS] = [const { AtomicU32::new(0) }; 1 << SLOT_BITS];
/// The live samples by address.
static LIVE: Mutex<BTreeMap<usize, Sample>> = Mutex::new(BTreeMap::new());

/// One sampled block that is still allocated.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    /// Its size.
    pub size: usize,
    /// The bytes it stands for.
    pub weight: u64,
    /// Return addresses, innermost first.
    pub stack: Box<[usize]>,
}

/// A thread's sampling state. No destructor: the allocator may run while
/// the thread's other thread-locals are being destroyed.
struct ThreadState {
    /// Bytes until the next sample.
    countdown: Cell<i64>,
    /// The thread drew its first countdown.
    started: Cell<bool>,
    /// Inside the allocator's bookkeeping (see the module docs).
    busy: Cell<bool>,
    /// xorshift state for the intervals.
    rng: Cell<u64>,
}

thread_local! {
    static STATE: ThreadState = const {
        ThreadState {
            countdown: Cell::new(0),
            started: Cell::new(false),
            busy: Cell::new(false),
            rng: Cell::new(0),
        }
    };
}

/// A [`GlobalAlloc`] that forwards to `A` (the system allocator by
/// default) and samples allocations with their call stacks for
/// `/hotspots/heap` ([`heap_profile`](super::heap_profile)). Install it
/// as the program's global allocator:
///
/// ```no_run
/// #[global_allocator]
/// static ALLOC: fibrpc::profile::SampledAllocator = fibrpc::profile::SampledAllocator::system();
/// ```
///
/// See [the module docs](super) for what it costs.
#[derive(Debug, Default, Clone, Copy)]
pub struct SampledAllocator<A = System> {
    inner: A,
}

impl SampledAllocator<System> {
    /// Sampling over the system allocator.
    pub const fn system() -> SampledAllocator<System> {
        SampledAllocator { inner: System }
    }
}

impl<A> SampledAllocator<A> {
    /// Sampling over `inner` (jemalloc, mimalloc, ...).
    pub const fn new(inner: A) -> SampledAllocator<A> {
        SampledAllocator { inner }
    }
}

// SAFETY: every method forwards to `inner` with the caller's arguments
// unchanged and returns its result unchanged, so `inner`'s guarantees are
// this allocator's. The bookkeeping around the calls never touches the
// blocks; it allocates through the global allocator (this one) only
// while its thread's `busy` flag makes that re-entry pass straight
// through, and a freed block's record is dropped before the block is
// handed back to `inner`, so no other thread can be given that address
// while its old record still stands.
unsafe impl<A: GlobalAlloc> GlobalAlloc for SampledAllocator<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc`, passed on.
        let p = unsafe { self.inner.alloc(layout) };
        if !p.is_null() {
            note_alloc(p, layout.size());
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc_zeroed`, passed on.
        let p = unsafe { self.inner.alloc_zeroed(layout) };
        if !p.is_null() {
            note_alloc(p, layout.size());
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_free(ptr);
        // SAFETY: the caller's contract for `dealloc`, passed on.
        unsafe { self.inner.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Forgotten first: once `inner` moves the block, its old address
        // may be handed to another thread. If `inner` fails, the block
        // stays allocated unrecorded (the estimate misses it).
        note_free(ptr);
        // SAFETY: the caller's contract for `realloc`, passed on.
        let p = unsafe { self.inner.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note_alloc(p, new_size);
        }
        p
    }
}

/// Counts `size` bytes allocated at `p`; samples it if the countdown
/// crosses zero.
#[inline]
fn note_alloc(p: *mut u8, size: usize) {
    STATE.with(|t| {
        let left = t
            .countdown
            .get()
            .saturating_sub(i64::try_from(size).unwrap_or(i64::MAX));
        t.countdown.set(left);
        if left <= 0 {
            sample(t, p as usize, size);
        }
    });
}

/// Drops the record of `p` if it was sampled.
#[inline]
fn note_free(p: *mut u8) {
    let addr = p as usize;
    if SLOTS[slot(addr)].load(Ordering::Relaxed) != 0 {
        forget(addr);
    }
}

fn slot(addr: usize) -> usize {
    // Blocks are at least 8-aligned; Fibonacci hashing spreads the rest.
    ((addr as u64 >> 3).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - SLOT_BITS)) as usize
}

#[cold]
#[inline(never)]
fn sample(t: &ThreadState, addr: usize, size: usize) {
    if t.busy.get() {
        // The bookkeeping's own allocation: never sampled.
        return;
    }
    let first = !t.started.get();
    if first {
        // A thread's first allocation: seed its generator and draw its
        // first countdown (sampled from the next one on).
        t.started.set(true);
        INSTALLED.store(true, Ordering::Relaxed);
        let seed =
            SEED.fetch_add(0x6a09_e667_f3bc_c909, Ordering::Relaxed) ^ (t as *const _ as u64);
        t.rng.set(seed | 1);
    }
    let mean = SAMPLE_BYTES.load(Ordering::Relaxed);
    if mean == 0 {
        t.countdown.set(RECHECK_BYTES);
        return;
    }
    t.countdown.set(next_interval(t, mean));
    if first {
        return;
    }
    t.busy.set(true);
    let mut ips = [0usize; MAX_DEPTH];
    let mut n = 0;
    // SAFETY: `trace_unsynchronized` asks that no other thread use an
    // unwinder that is not thread-safe at the same time. On the
    // platforms fibrpc runs on (Linux), backtrace's backend is libgcc's
    // or libunwind's `_Unwind_Backtrace`, which is thread-safe (it is
    // what panics on many threads at once use). The synchronized
    // `trace` would instead block every sampling thread behind a
    // symbol resolution holding backtrace's global lock.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            let ip = frame.ip() as usize;
            if ip == 0 {
                return false;
            }
            ips[n] = ip;
            n += 1;
            n < MAX_DEPTH
        });
    }
    let sample = Sample {
        size,
        weight: weight(size, mean),
        stack: ips[..n].into(),
    };
    let mut live = live();
    if live.insert(addr, sample).is_none() {
        SLOTS[slot(addr)].fetch_add(1, Ordering::Relaxed);
    }
    drop(live);
    t.busy.set(false);
}

#[cold]
#[inline(never)]
fn forget(addr: usize) {
    STATE.with(|t| {
        // A block freed by the bookkeeping is never a sampled one (see
        // the module docs), and this thread may hold the map's lock.
        if t.busy.replace(true) {
            return;
        }
        let mut live = live();
        let removed = live.remove(&addr);
        if removed.is_some() {
            SLOTS[slot(addr)].fetch_sub(1, Ordering::Relaxed);
        }
        drop(live);
        drop(removed);
        t.busy.set(false);
    });
}

fn live() -> MutexGuard<'static, BTreeMap<usize, Sample>> {
    // Nothing panics while holding it; a poisoned map is still whole.
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The next countdown: exponential with mean `mean`, at least 1.
fn next_interval(t: &ThreadState, mean: u64) -> i64 {
    let mut x = t.rng.get();
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    t.rng.set(x);
    // Uniform in (0, 1]: never ln(0).
    let u = ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let bytes = -u.ln() * mean as f64;
    bytes.clamp(1.0, (1u64 << 46) as f64) as i64
}

/// The bytes a sampled block of `size` stands for at mean interval
/// `mean`.
fn weight(size: usize, mean: u64) -> u64 {
    let (s, m) = (size as f64, mean as f64);
    let p = 1.0 - (-s / m).exp();
    if p <= 0.0 {
        return mean;
    }
    (s / p).round() as u64
}

/// The live samples, copied out (with this thread's sampling paused, so
/// that the copy's own allocations do not wait for the lock it holds).
pub(crate) fn snapshot() -> Vec<Sample> {
    STATE.with(|t| {
        let was = t.busy.replace(true);
        let copy: Vec<Sample> = live().values().cloned().collect();
        t.busy.set(was);
        copy
    })
}

/// Whether the program's global allocator is a [`SampledAllocator`]
/// (known from its first allocation, which comes before `main`).
pub fn installed() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}

/// Bytes allocated per sample on average (flag
/// `heap_profile_sample_bytes`; 0: sampling is off).
pub fn sample_bytes() -> u64 {
    SAMPLE_BYTES.load(Ordering::Relaxed)
}

/// Sets [`sample_bytes`]. Threads take a new value at their next sample
/// (at once after 0, within 64 MiB of allocation). Samples already taken
/// keep the weight of the rate they were taken at.
pub fn set_sample_bytes(n: u64) {
    SAMPLE_BYTES.store(n, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_unbiased_estimates() {
        let mean = 512 << 10;
        // A small block stands for about one interval...
        let w = weight(16, mean);
        assert!((mean..mean + 16).contains(&w), "{w}");
        // ...a huge one for itself.
        assert_eq!(weight(64 << 20, mean), 64 << 20);
    }

    #[test]
    fn intervals_average_the_mean() {
        let t = ThreadState {
            countdown: Cell::new(0),
            started: Cell::new(true),
            busy: Cell::new(false),
            rng: Cell::new(12345),
        };
        let n = 20_000;
        let sum: i64 = (0..n).map(|_| next_interval(&t, 1000)).sum();
        let avg = sum as f64 / f64::from(n);
        assert!((900.0..1100.0).contains(&avg), "{avg}");
    }

    #[test]
    fn slots_spread_neighbouring_blocks() {
        let slots: std::collections::HashSet<usize> =
            (0..1000).map(|i| slot(0x7f00_0000_0000 + i * 16)).collect();
        assert!(slots.len() > 950, "{}", slots.len());
    }
}
