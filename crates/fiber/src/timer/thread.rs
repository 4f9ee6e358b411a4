//! The timer thread: one OS thread that pulls new tasks out of the buckets
//! into a min-heap, runs the due ones and sleeps on a futex until the nearest
//! deadline or until an `add` with an earlier deadline wakes it.

use std::cell::Cell;
use std::collections::BinaryHeap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::bucket::{Bucket, Entry};
use super::callback::Callback;
use super::os;
use super::slot::{SlotCancel, SlotTable, ID_INDEX_BITS, ID_VERSION_MASK};
use super::{CancelResult, TimerId, TimerStats};
use crate::sys::futex;

/// A bucket that collected this many tasks wakes the timer thread even if none
/// is early, so that cancelled far-future timers are dropped (their slots are
/// already free) instead of piling up in the bucket.
const PULL_THRESHOLD: usize = 4096;

/// The heap is purged of cancelled entries when it is at least this big and
/// more than half of it is cancelled.
const PURGE_MIN: usize = 4096;

/// Options of a [`TimerThread`].
#[derive(Clone, Debug)]
pub struct TimerOptions {
    /// Number of buckets new tasks are hashed into (by adding thread). More
    /// buckets, less contention between adders; bRPC uses 13.
    pub num_buckets: usize,
    /// Name of the OS thread.
    pub name: String,
}

impl Default for TimerOptions {
    fn default() -> Self {
        Self {
            num_buckets: 13,
            name: "fibrpc-timer".to_owned(),
        }
    }
}

/// A timer thread: runs callbacks at their deadlines, on its own OS thread.
///
/// Callbacks must be short and must not block: they delay every later timer.
/// Their typical job is waking a fiber. A panicking callback is caught,
/// logged as an error and counted in [`TimerStats::panicked`].
///
/// The free functions of [`super`] use a global instance started on first use;
/// a runtime or a test can own private ones. Dropping a `TimerThread` stops it
/// like [`TimerThread::stop_and_join`].
pub struct TimerThread {
    shared: Arc<Shared>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

/// State shared by the adders, the cancellers and the timer thread.
struct Shared {
    base: Instant,
    buckets: Box<[Bucket]>,
    slots: SlotTable,
    /// Deadline the timer thread will wake up at (ns since `base`), `0` while
    /// it is awake and will re-check the buckets before sleeping. An add
    /// earlier than this must wake it.
    nearest: AtomicU64,
    /// The futex word the timer thread sleeps on: bumped to wake it.
    nsignals: crate::loom::AtomicU32,
    stop: AtomicBool,
    ran: AtomicU64,
    panicked: AtomicU64,
    /// Length of the timer thread's heap, for [`TimerStats::queued`].
    heap_len: AtomicU64,
}

thread_local! {
    /// Per-thread bucket hash, so one thread's adds always go to the same
    /// bucket (its lock stays in this core's cache). 0 = not assigned yet.
    static BUCKET_HASH: Cell<u32> = const { Cell::new(0) };
}

/// This thread's bucket among `n`.
///
/// `inline(never)`: reached from `Butex::wait`, which is inlined into
/// fiber code; a thread-local address the compiler kept across a switch
/// would name the old thread's value in a migratable fiber (see
/// `current_group`).
#[inline(never)]
fn bucket_of_this_thread(n: usize) -> usize {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let h = BUCKET_HASH.with(|h| {
        if h.get() == 0 {
            // Fibonacci hashing spreads consecutive threads over the range;
            // `| 1` keeps 0 free as the "unassigned" marker.
            let k = NEXT.fetch_add(1, Ordering::Relaxed);
            h.set(k.wrapping_mul(0x9E37_79B9) | 1);
        }
        h.get()
    });
    // Multiply-shift instead of `%`: no division on the hot path.
    ((u64::from(h) * n as u64) >> 32) as usize
}

impl TimerThread {
    /// Starts a timer thread.
    ///
    /// # Errors
    /// When the OS thread cannot be spawned.
    pub fn new(options: TimerOptions) -> std::io::Result<Self> {
        let num_buckets = options.num_buckets.max(1);
        let shared = Arc::new(Shared {
            base: Instant::now(),
            buckets: (0..num_buckets).map(|_| Bucket::new()).collect(),
            slots: SlotTable::new(),
            nearest: AtomicU64::new(0),
            nsignals: crate::loom::AtomicU32::new(0),
            stop: AtomicBool::new(false),
            ran: AtomicU64::new(0),
            panicked: AtomicU64::new(0),
            heap_len: AtomicU64::new(0),
        });
        let s = shared.clone();
        let handle = std::thread::Builder::new()
            .name(options.name)
            .spawn(move || s.run())?;
        Ok(Self {
            shared,
            handle: Mutex::new(Some(handle)),
        })
    }

    /// Schedules `f` to run on the timer thread at `deadline` (at once if it
    /// is past). After [`TimerThread::stop_and_join`], `f` is dropped unrun
    /// and the returned id is already [`CancelResult::NotFound`].
    pub fn add(&self, deadline: Instant, f: impl FnOnce() + Send + 'static) -> TimerId {
        let ns = deadline
            .saturating_duration_since(self.shared.base)
            .as_nanos();
        self.shared
            .add(u64::try_from(ns).unwrap_or(u64::MAX), Callback::new(f))
    }

    /// Schedules `f` to run on the timer thread after `delay`.
    pub fn add_after(&self, delay: Duration, f: impl FnOnce() + Send + 'static) -> TimerId {
        let ns = self.shared.now_ns().saturating_add(saturating_nanos(delay));
        self.shared.add(ns, Callback::new(f))
    }

    /// Cancels a timer. O(1); never waits. On [`CancelResult::Cancelled`] the
    /// callback has been dropped (on this thread) and will never run.
    ///
    /// `id` must come from this timer thread: an id of another one names an
    /// unrelated slot (which is memory safe, but may cancel a stranger).
    pub fn cancel(&self, id: TimerId) -> CancelResult {
        self.shared.cancel(id)
    }

    /// Reads the counters.
    pub fn stats(&self) -> TimerStats {
        self.shared.stats()
    }

    /// Stops the thread and waits for it: pending timers are dropped unrun,
    /// later adds are refused. Idempotent. Called from a callback of this
    /// timer thread (e.g. by dropping the last handle there), it only asks
    /// the thread to stop, since a thread cannot wait for itself.
    pub fn stop_and_join(&self) {
        let handle = self.handle.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(handle) = handle else { return };
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.signal();
        if handle.thread().id() == std::thread::current().id() {
            // Called (or dropped) from one of our own callbacks: the thread
            // exits after this callback returns; it cannot wait for itself.
            return;
        }
        // The thread catches callback panics, so it cannot have panicked.
        let _ = handle.join();
    }
}

impl Drop for TimerThread {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

impl std::fmt::Debug for TimerThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimerThread")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

fn saturating_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Shared {
    fn now_ns(&self) -> u64 {
        saturating_nanos(self.base.elapsed())
    }

    fn signal(&self) {
        self.nsignals.fetch_add(1, Ordering::SeqCst);
        futex::wake(&self.nsignals, 1);
    }

    fn add(&self, deadline: u64, cb: Callback) -> TimerId {
        let home = bucket_of_this_thread(self.buckets.len());
        let mut b = self.buckets[home].lock();
        if b.closed {
            drop(b);
            drop(cb);
            return TimerId::INVALID;
        }
        let index = match b.free.pop() {
            Some(i) => i,
            None => {
                // Slow path, once per chunk: the fresh slots become this
                // bucket's; the lowest index is handed out first.
                b.free.extend(self.slots.grow().rev());
                b.free.pop().unwrap_or_else(|| unreachable!())
            }
        };
        let slot = self.slots.get(index).unwrap_or_else(|| unreachable!());
        // SAFETY: `index` came off a free list (or fresh from `grow`), so
        // this thread owns the slot until it is published here.
        let version = unsafe { slot.arm(cb, home as u32) };
        b.tasks.push(Entry {
            deadline,
            version,
            index,
        });
        b.added += 1;
        let earlier = deadline < b.nearest;
        if earlier {
            b.nearest = deadline;
        }
        let crowded = b.tasks.len() == PULL_THRESHOLD;
        drop(b);
        // Wake the thread only if it would otherwise sleep past `deadline`.
        // `nearest` is 0 while it is awake (it re-checks the buckets before
        // sleeping), so adds made while it works cost no syscall either.
        if (earlier && self.nearest.fetch_min(deadline, Ordering::SeqCst) > deadline) || crowded {
            self.signal();
        }
        TimerId((version & ID_VERSION_MASK) << ID_INDEX_BITS | u64::from(index))
    }

    fn cancel(&self, id: TimerId) -> CancelResult {
        let index = (id.0 & ((1 << ID_INDEX_BITS) - 1)) as u32;
        let version = id.0 >> ID_INDEX_BITS;
        let Some(slot) = self.slots.get(index) else {
            return CancelResult::NotFound;
        };
        match slot.try_cancel(Some(version)) {
            SlotCancel::Cancelled { cb, home } => {
                let mut b = self.buckets[home as usize].lock();
                b.free.push(index);
                b.cancelled += 1;
                drop(b);
                // Dropped last, outside the lock: a panicking destructor
                // leaves everything consistent.
                drop(cb);
                CancelResult::Cancelled
            }
            SlotCancel::Running => CancelResult::Running,
            SlotCancel::NotFound => CancelResult::NotFound,
        }
    }

    fn stats(&self) -> TimerStats {
        let (mut added, mut cancelled, mut queued) = (0, 0, 0);
        for b in self.buckets.iter() {
            let b = b.lock();
            added += b.added;
            cancelled += b.cancelled;
            queued += b.tasks.len() as u64;
        }
        let ran = self.ran.load(Ordering::Relaxed);
        TimerStats {
            scheduled: added.saturating_sub(cancelled + ran),
            added,
            ran,
            cancelled,
            panicked: self.panicked.load(Ordering::Relaxed),
            slots: self.slots.len() as u64,
            queued: queued + self.heap_len.load(Ordering::Relaxed),
        }
    }

    /// The timer thread's body.
    fn run(&self) {
        os::tighten_timer_slack();
        let mut heap = BinaryHeap::<Entry>::new();
        let mut pulled = Vec::new();
        // Slots freed by runs, returned to their buckets at the next pull
        // (which takes each bucket lock anyway).
        let mut freed: Vec<Vec<u32>> = vec![Vec::new(); self.buckets.len()];
        let (mut ran, mut panicked) = (0u64, 0u64);
        while !self.stop.load(Ordering::SeqCst) {
            // Awake: adds need not signal until `nearest` is set again below.
            // (Both publications of `nearest` are swaps, not stores: as
            // read-modify-writes they are ordered after every earlier
            // `fetch_min`, which is what the protocol relies on and what
            // loom models faithfully; see loom_tests/timer.rs.)
            self.nearest.swap(0, Ordering::SeqCst);
            let mut live = 0u64;
            for (bucket, freed) in self.buckets.iter().zip(freed.iter_mut()) {
                let mut b = bucket.lock();
                std::mem::swap(&mut b.tasks, &mut pulled);
                b.nearest = u64::MAX;
                b.free.append(freed);
                live += b.added - b.cancelled;
                drop(b);
                // Cancelled entries (their slots already reused, maybe) are
                // dropped now rather than carried in the heap.
                for e in pulled.drain(..) {
                    if self.slot_scheduled(e) {
                        heap.push(e);
                    }
                }
                // Task lists circulate between buckets through `pulled`: do
                // not let one burst's capacity live on in all of them.
                pulled.shrink_to(2 * PULL_THRESHOLD);
            }
            let live = live.saturating_sub(ran);
            if heap.len() >= PURGE_MIN && heap.len() / 2 > live as usize {
                heap.retain(|e| self.slot_scheduled(*e));
                if heap.capacity() > 4 * heap.len().max(PURGE_MIN) {
                    heap.shrink_to(2 * heap.len());
                }
            }

            let mut now = self.now_ns();
            while let Some(top) = heap.peek() {
                if top.deadline > now {
                    // Callbacks take time: look at the clock again before
                    // deciding nothing more is due.
                    now = self.now_ns();
                    if top.deadline > now {
                        break;
                    }
                }
                let e = heap.pop().unwrap_or_else(|| unreachable!());
                let slot = self.slots.get(e.index).unwrap_or_else(|| unreachable!());
                let Some(cb) = slot.try_fire(e.version) else {
                    continue; // cancelled
                };
                // Counted before the run, so that whoever the callback
                // signals already sees it in the stats.
                ran += 1;
                self.ran.store(ran, Ordering::Relaxed);
                let result = catch_unwind(AssertUnwindSafe(|| cb.run()));
                slot.finish_run(e.version);
                freed[slot.home() as usize].push(e.index);
                if let Err(p) = result {
                    panicked += 1;
                    self.panicked.store(panicked, Ordering::Relaxed);
                    report_panic(&*p);
                }
            }
            self.heap_len.store(heap.len() as u64, Ordering::Relaxed);

            let next = heap.peek().map_or(u64::MAX, |e| e.deadline);
            // Read before publishing `next`: an add that sees `next` and
            // signals bumps the word after this read, so the wait returns.
            let expected = self.nsignals.load(Ordering::SeqCst);
            self.nearest.swap(next, Ordering::SeqCst);
            // Adds between the pull and the store above did not signal (they
            // saw 0), or signalled before `expected` was read: either way
            // they left their deadline in their bucket's `nearest`, or a
            // crowded bucket behind. Adds after this scan see `next` and
            // signal if they must.
            if self.buckets.iter().any(|b| {
                let b = b.lock();
                b.nearest < next || b.tasks.len() >= PULL_THRESHOLD
            }) {
                continue;
            }
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            let timeout = match next {
                u64::MAX => None,
                _ => match next.checked_sub(self.now_ns()) {
                    Some(d) if d > 0 => Some(Duration::from_nanos(d)),
                    _ => continue,
                },
            };
            futex::wait(&self.nsignals, expected, timeout);
        }
        self.shut_down();
    }

    fn slot_scheduled(&self, e: Entry) -> bool {
        self.slots
            .get(e.index)
            .is_some_and(|s| s.is_scheduled(e.version))
    }

    /// Refuses further adds and drops every pending callback.
    fn shut_down(&self) {
        for bucket in self.buckets.iter() {
            let mut b = bucket.lock();
            b.closed = true;
            b.tasks = Vec::new();
        }
        // No add can arm a slot any more, so every scheduled slot is in
        // `0..len`; racing user cancels are arbitrated by the slot's CAS.
        for index in 0..self.slots.len() as u32 {
            let Some(slot) = self.slots.get(index) else {
                continue;
            };
            if let SlotCancel::Cancelled { cb, home } = slot.try_cancel(None) {
                let mut b = self.buckets[home as usize].lock();
                b.free.push(index);
                b.cancelled += 1;
                drop(b);
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| drop(cb))) {
                    report_panic(&*p);
                }
            }
        }
    }
}

fn report_panic(p: &(dyn std::any::Any + Send)) {
    let msg = p
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<non-string panic payload>");
    tracing::error!(
        panic = msg,
        "a timer callback panicked (the timer thread continues)"
    );
}
