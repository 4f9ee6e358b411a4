//! Giving memory back after a burst: the trimmer thread.
//!
//! bRPC's stack and block pools only grow, so a process that once held
//! 100k connections keeps that memory for good. Here, every trim interval
//! (default [`DEFAULT_TRIM_INTERVAL`], [`Builder::memory_trim_interval`](
//! super::Builder::memory_trim_interval)) one process-wide thread:
//! 1. unmaps the idle stacks of the global pool that nobody took during the
//!    last interval (above a small reserve, see `stack_pool`);
//! 2. starts a new trim epoch: each worker that ran fibers since its last
//!    shed, the next time it goes to sleep, keeps a few free slots and
//!    stacks, moves the rest to the global pool and releases the deep
//!    pages of those it keeps (`Context::release_pages`). Workers that
//!    would sleep through the epoch asked to be woken for it, and are;
//! 3. releases the pages of the fiber and readiness slabs' segments that
//!    hold no live fiber or registration (`task_slab`, `io::entry`): the
//!    ~300 bytes of control blocks per connection a burst left behind.
//!    Workers shed their cached free slots at step 2, so a burst's slots
//!    are all on the shared free list by the next interval's step 3;
//! 4. on glibc, calls `malloc_trim(0)`, which hands free heap pages back
//!    to the kernel (glibc on its own only trims the top of each arena, so
//!    freed connection buffers and IOBuf blocks stay resident). When a trim
//!    frees less than [`MALLOC_TRIM_MIN_GAIN`], the next ones are spaced
//!    out (up to [`MALLOC_TRIM_MAX_SKIP`] intervals skipped).
//!
//! Nothing of this runs on a hot path: workers shed at most once per
//! epoch, when they go to sleep; every other sleep costs two compares.

use super::task_control::GroupShared;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

/// The trim interval unless configured otherwise.
pub const DEFAULT_TRIM_INTERVAL: Duration = Duration::from_secs(5);

/// A `malloc_trim` that frees less than this counts as unproductive.
const MALLOC_TRIM_MIN_GAIN: u64 = 1 << 20;
/// Most intervals skipped between `malloc_trim`s after unproductive ones.
const MALLOC_TRIM_MAX_SKIP: u32 = 3;

/// The interval in milliseconds; 0: trimming off.
static INTERVAL_MS: AtomicU64 = AtomicU64::new(DEFAULT_TRIM_INTERVAL.as_millis() as u64);
/// Bumped once per trim; workers compare it with the epoch of their last
/// release of stack pages.
static EPOCH: AtomicU64 = AtomicU64::new(0);
/// Workers asleep with stack pages to release at the next epoch.
static NUDGE: Mutex<Vec<&'static GroupShared>> = Mutex::new(Vec::new());

/// Sets the trim interval for the whole process (`None`: no trimming) and
/// starts the trimmer thread if it is not running.
pub(crate) fn configure(interval: Option<Duration>) {
    let ms = interval.map_or(0, |d| (d.as_millis() as u64).max(1));
    INTERVAL_MS.store(ms, Ordering::Relaxed);
    if ms != 0 {
        start();
    }
}

/// The current trim epoch.
#[inline]
pub(crate) fn epoch() -> u64 {
    EPOCH.load(Ordering::Relaxed)
}

/// Asks the trimmer to wake `group`'s worker after the next epoch starts.
pub(crate) fn request_nudge(group: &'static GroupShared) {
    NUDGE.lock().unwrap_or_else(|e| e.into_inner()).push(group);
}

fn start() {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("fiber-trim".into())
            .stack_size(256 << 10)
            .spawn(run);
        if let Err(e) = spawned {
            tracing::warn!("fibrpc: cannot start the memory trimmer thread: {e}");
        }
    });
}

fn run() {
    let mut heap = HeapTrim::default();
    loop {
        let ms = INTERVAL_MS.load(Ordering::Relaxed);
        // Off: look again at the setting once a second.
        std::thread::sleep(Duration::from_millis(if ms == 0 { 1000 } else { ms }));
        if INTERVAL_MS.load(Ordering::Relaxed) == 0 {
            continue;
        }
        let unmapped = super::stack_pool::trim_global(true);
        let slabs = trim_slabs();
        new_epoch();
        heap.tick(unmapped > 0 || slabs > 0);
    }
}

/// Releases the empty segments of the fiber and readiness slabs; returns
/// the bytes released.
fn trim_slabs() -> usize {
    super::task_meta::Slab::global().trim() + crate::io::trim_entries()
}

/// Starts a trim epoch and wakes the workers that asked for it.
fn new_epoch() {
    EPOCH.fetch_add(1, Ordering::Relaxed);
    let nudge = std::mem::take(&mut *NUDGE.lock().unwrap_or_else(|e| e.into_inner()));
    for g in nudge {
        g.lot.signal();
    }
}

/// The `malloc_trim` schedule: every interval while trims pay, spaced out
/// while they do not.
#[derive(Default)]
struct HeapTrim {
    skip: u32,
    skipped: u32,
}

impl HeapTrim {
    fn tick(&mut self, stacks_released: bool) {
        if self.skipped < self.skip && !stacks_released {
            self.skipped += 1;
            return;
        }
        self.skipped = 0;
        let before = rss_bytes();
        malloc_trim();
        let gain = before.saturating_sub(rss_bytes());
        self.skip = if gain >= MALLOC_TRIM_MIN_GAIN {
            0
        } else {
            (self.skip + 1).min(MALLOC_TRIM_MAX_SKIP)
        };
    }
}

/// Hands free heap pages back to the kernel, where the allocator can.
fn malloc_trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own free lists, under its
    // arena locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// This process's resident set size, from `/proc/self/statm` (0 if
/// unreadable).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * super::context::page_size() as u64
}

/// Gives memory back now, without waiting for the trimmer: unmaps every
/// idle fiber stack in the global pool above a small reserve, releases the
/// deep pages of the stacks kept (the reserve now; those cached by workers
/// when they next go to sleep), releases the pages of the fiber and
/// readiness slab segments that are empty (slots cached by workers count
/// once they shed them), and on glibc hands free heap pages back to the
/// kernel (`malloc_trim`). Returns the number of stacks unmapped.
///
/// The trimmer thread does the same on its own every trim interval, only
/// to stacks unused through a whole interval
/// ([`Builder::memory_trim_interval`](super::Builder::memory_trim_interval)).
pub fn trim_memory() -> usize {
    let unmapped = super::stack_pool::trim_global(false);
    trim_slabs();
    new_epoch();
    malloc_trim();
    unmapped
}
