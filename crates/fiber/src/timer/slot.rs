//! Timer task slots: a versioned per-slot state machine, and the table of
//! slot chunks that task ids index into.
//!
//! A slot's `state` word is `version << 3 | status`. Only the party that wins
//! a compare-and-swap on it may touch the slot's callback, so `cancel` is one
//! CAS (O(1), never blocks) and a stale id can never reach a reused slot: a
//! slot's version is bumped every time it becomes free. The heap of pending
//! timers keeps the full 61-bit version, so a stale heap entry of a cancelled
//! timer can never fire the slot's next occupant; user-visible ids keep
//! [`ID_VERSION_BITS`] of it.

use std::mem::MaybeUninit;
use std::sync::atomic::AtomicPtr;
use std::sync::Mutex;

use super::callback::Callback;
use super::sync::{AtomicU32, AtomicU64, Ordering, UnsafeCell};

/// Owned by whoever took it from a free list (or the table's growth); not
/// visible to the timer thread or to cancellers.
const FREE: u64 = 0;
/// Armed: the timer thread may fire it, a canceller may cancel it.
const SCHEDULED: u64 = 1;
/// The timer thread is running the callback.
const RUNNING: u64 = 2;
/// A canceller won and is moving the callback out; it frees the slot next.
const CANCELLING: u64 = 3;
const STATUS_BITS: u32 = 3;
const STATUS_MASK: u64 = (1 << STATUS_BITS) - 1;
const VERSION_MASK: u64 = u64::MAX >> STATUS_BITS;

/// Bits of the slot index in a [`super::TimerId`].
pub(crate) const ID_INDEX_BITS: u32 = 24;
/// Bits of the slot version in a [`super::TimerId`]: a stale id could only be
/// confused with a live one after 2^40 reuses of the same slot.
pub(crate) const ID_VERSION_BITS: u32 = 64 - ID_INDEX_BITS;
pub(crate) const ID_VERSION_MASK: u64 = (1 << ID_VERSION_BITS) - 1;

/// Slots per chunk: 64 KiB chunks, so a private timer thread starts small.
const CHUNK_SLOTS: usize = 1024;
/// Most slots a table can hold (all of them addressable by an id's index).
pub(crate) const MAX_SLOTS: usize = 1 << ID_INDEX_BITS;
const MAX_CHUNKS: usize = MAX_SLOTS / CHUNK_SLOTS;

/// What [`Slot::try_cancel`] found.
pub(crate) enum SlotCancel {
    /// Cancelled; the caller now owns the (free) slot and the callback.
    Cancelled { cb: Callback, home: u32 },
    /// The callback is running on the timer thread.
    Running,
    /// Not scheduled under that version (already ran, cancelled, or reused).
    NotFound,
}

/// One timer task. One cache line, so that cancels of neighbouring timers
/// from different threads do not contend.
#[repr(align(64))]
pub(crate) struct Slot {
    state: AtomicU64,
    /// Bucket whose free list the slot returns to; written by the owner before
    /// the release store that publishes the slot.
    home: AtomicU32,
    cb: UnsafeCell<MaybeUninit<Callback>>,
}

impl Slot {
    pub(crate) fn new() -> Self {
        Self {
            // Versions start at 1 so that the all-zero id is never valid.
            state: AtomicU64::new(1 << STATUS_BITS | FREE),
            home: AtomicU32::new(0),
            cb: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// Stores `cb` and publishes the slot as scheduled; returns its version.
    ///
    /// # Safety
    /// The caller owns the slot: it took it from a free list (or fresh from
    /// the table) and has not published it since.
    pub(crate) unsafe fn arm(&self, cb: Callback, home: u32) -> u64 {
        let s = self.state.load(Ordering::Relaxed);
        debug_assert_eq!(s & STATUS_MASK, FREE, "arming a slot that is not free");
        // SAFETY: the caller owns the free slot, so nobody else accesses `cb`;
        // the previous callback was moved out when the slot was freed.
        self.cb
            .with_mut(|p| unsafe { p.write(MaybeUninit::new(cb)) });
        self.home.store(home, Ordering::Relaxed);
        // Release: whoever acquires SCHEDULED sees the callback and `home`.
        self.state.store(s | SCHEDULED, Ordering::Release);
        s >> STATUS_BITS
    }

    /// Whether the slot is still scheduled under the full `version`: used to
    /// drop stale (cancelled) entries from the timer thread's heap early.
    pub(crate) fn is_scheduled(&self, version: u64) -> bool {
        self.state.load(Ordering::Relaxed) == (version << STATUS_BITS | SCHEDULED)
    }

    /// Claims the callback to run it (timer thread). After running it the
    /// caller must call [`Slot::finish_run`] and then free the slot.
    pub(crate) fn try_fire(&self, version: u64) -> Option<Callback> {
        let armed = version << STATUS_BITS | SCHEDULED;
        let running = version << STATUS_BITS | RUNNING;
        // Acquire pairs with `arm`'s release: the callback bytes are visible.
        self.state
            .compare_exchange(armed, running, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        // SAFETY: RUNNING gives us exclusive access to `cb`, which holds the
        // callback stored by `arm` (only a SCHEDULED slot can become RUNNING).
        Some(self.cb.with_mut(|p| unsafe { p.read().assume_init() }))
    }

    /// Ends a run started by [`Slot::try_fire`]: bumps the version, making the
    /// slot free (and owned by the caller, who must put it on a free list).
    pub(crate) fn finish_run(&self, version: u64) {
        self.state.store(next_free(version), Ordering::Release);
    }

    /// Cancels the slot if it is scheduled under `id_version` (the truncated
    /// version of a user id), or under any version if `None`.
    pub(crate) fn try_cancel(&self, id_version: Option<u64>) -> SlotCancel {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            let version = s >> STATUS_BITS;
            if id_version.is_some_and(|v| version & ID_VERSION_MASK != v) {
                return SlotCancel::NotFound;
            }
            match s & STATUS_MASK {
                SCHEDULED => {}
                RUNNING => return SlotCancel::Running,
                _ => return SlotCancel::NotFound,
            }
            let cancelling = version << STATUS_BITS | CANCELLING;
            // Acquire pairs with `arm`'s release: the callback is visible.
            match self.state.compare_exchange_weak(
                s,
                cancelling,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    // SAFETY: CANCELLING gives us exclusive access to `cb`,
                    // initialised by `arm` (we moved from SCHEDULED).
                    let cb = self.cb.with_mut(|p| unsafe { p.read().assume_init() });
                    let home = self.home.load(Ordering::Relaxed);
                    // Release: our read of `cb` happens before any reuse.
                    self.state.store(next_free(version), Ordering::Release);
                    return SlotCancel::Cancelled { cb, home };
                }
                Err(cur) => s = cur,
            }
        }
    }

    /// The bucket the slot was last armed for.
    pub(crate) fn home(&self) -> u32 {
        self.home.load(Ordering::Relaxed)
    }
}

fn next_free(version: u64) -> u64 {
    (version.wrapping_add(1) & VERSION_MASK) << STATUS_BITS | FREE
}

type Chunk = [Slot; CHUNK_SLOTS];

/// All slots of one timer thread, addressed by index. Chunks are allocated on
/// demand and never freed before the table, so `get` is a lock-free lookup
/// and a `&Slot` stays valid as long as the table.
pub(crate) struct SlotTable {
    chunks: Box<[AtomicPtr<Chunk>]>,
    /// Number of chunks allocated; the lock serialises growth (rare).
    grown: Mutex<usize>,
}

impl SlotTable {
    pub(crate) fn new() -> Self {
        Self {
            // SAFETY: a null `AtomicPtr` is all-zero bytes.
            chunks: unsafe { crate::sys::pages::zeroed_table(MAX_CHUNKS) },
            grown: Mutex::new(0),
        }
    }

    /// The slot at `index`, if it was ever allocated.
    pub(crate) fn get(&self, index: u32) -> Option<&Slot> {
        let index = index as usize;
        let chunk = self
            .chunks
            .get(index / CHUNK_SLOTS)?
            .load(std::sync::atomic::Ordering::Acquire);
        // SAFETY: a non-null pointer was published (release) by `grow` after
        // the chunk was fully initialised, and chunks live as long as `self`.
        let chunk = unsafe { chunk.as_ref() }?;
        Some(&chunk[index % CHUNK_SLOTS])
    }

    /// Number of slots allocated so far; all of `0..len()` are valid indices.
    pub(crate) fn len(&self) -> usize {
        *self.grown.lock().unwrap_or_else(|e| e.into_inner()) * CHUNK_SLOTS
    }

    /// Allocates one more chunk and returns the indices of its (free) slots.
    ///
    /// # Panics
    /// When all [`MAX_SLOTS`] slots are in use (16 M live timers).
    pub(crate) fn grow(&self) -> std::ops::Range<u32> {
        let mut grown = self.grown.lock().unwrap_or_else(|e| e.into_inner());
        let n = *grown;
        assert!(
            n < MAX_CHUNKS,
            "fibrpc timer: more than {MAX_SLOTS} timers scheduled at once"
        );
        let chunk: Box<[Slot]> = (0..CHUNK_SLOTS).map(|_| Slot::new()).collect();
        let chunk: Box<Chunk> = chunk
            .try_into()
            .unwrap_or_else(|_| unreachable!("chunk has CHUNK_SLOTS slots"));
        self.chunks[n].store(Box::into_raw(chunk), std::sync::atomic::Ordering::Release);
        *grown = n + 1;
        let first = (n * CHUNK_SLOTS) as u32;
        first..first + CHUNK_SLOTS as u32
    }
}

impl Drop for SlotTable {
    fn drop(&mut self) {
        for c in self.chunks.iter() {
            let p = c.load(std::sync::atomic::Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: `p` came from `Box::into_raw` in `grow` and is freed
                // only here, once; `&mut self` means no `&Slot` is alive.
                // Callbacks still stored are not dropped here: the timer
                // thread cancels (drops) all of them when it stops.
                drop(unsafe { Box::from_raw(p) });
            }
        }
    }
}

// SAFETY: the callback cell is only accessed by the unique winner of the state
// machine's CASes (see the status constants), and callbacks are `Send`.
unsafe impl Sync for Slot {}
