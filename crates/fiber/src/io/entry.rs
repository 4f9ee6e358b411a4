//! Per-registration readiness state (tokio's `ScheduledIo`), in a slab that
//! is never freed.
//!
//! Why a slab of immortal entries: `epoll_wait` on one thread may return an
//! event for a registration that another thread is dropping at that very
//! moment. The event's token is `version << 32 | index`; the dispatcher
//! looks the entry up by index (always valid memory) and ignores the event
//! if the version moved on. A race where the slot is reused between that
//! check and the wakeup costs one spurious wakeup, which every waiter
//! tolerates (it retries its I/O and gets `EAGAIN`).

use crate::butex::Butex;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::reader::ReaderShared;

const SEGMENT_BITS: u32 = 10;
const SEGMENT_LEN: usize = 1 << SEGMENT_BITS;
/// 4096 segments of 1024: four million registrations alive at once.
const MAX_SEGMENTS: usize = 4096;
/// The bits of a version a token carries: 31, so a token never has the
/// top bit, which tags io_uring operations (`sys::uring::OP_TAG`).
const VERSION_MASK: u32 = u32::MAX >> 1;

/// Readiness of one registered descriptor.
pub(crate) struct IoEntry {
    /// Bumped when the slot is released, so stale tokens stop matching.
    version: AtomicU32,
    /// Counts read-readiness edges (IN, RDHUP, HUP, ERR); fibers wait on it.
    pub(crate) read: Butex,
    /// Counts write-readiness edges (OUT, HUP, ERR).
    pub(crate) write: Butex,
    /// The reader-fiber hook, if this registration has one.
    pub(crate) reader: Mutex<Option<Arc<ReaderShared>>>,
    /// Whether `reader` is set (read without the lock on every event).
    pub(crate) has_reader: AtomicBool,
    /// A one-shot `fd_wait`: every event bumps `read`.
    pub(crate) oneshot: AtomicBool,
    /// A hang-up or error was reported: reading will not block again, and
    /// no further edge may come to say so.
    pub(crate) read_closed: AtomicBool,
}

impl IoEntry {
    fn new() -> Self {
        IoEntry {
            version: AtomicU32::new(1),
            read: Butex::new(0),
            write: Butex::new(0),
            reader: Mutex::new(None),
            has_reader: AtomicBool::new(false),
            oneshot: AtomicBool::new(false),
            read_closed: AtomicBool::new(false),
        }
    }

    /// This entry's current version (31 bits, wrapping).
    pub(crate) fn version(&self) -> u32 {
        self.version.load(Ordering::Acquire) & VERSION_MASK
    }
}

/// The slab of entries.
pub(crate) struct EntrySlab {
    segments: Box<[AtomicPtr<IoEntry>]>,
    grow: Mutex<usize>,
    free: Mutex<Vec<u32>>,
}

impl EntrySlab {
    /// The process-wide slab.
    pub(crate) fn global() -> &'static EntrySlab {
        static SLAB: OnceLock<EntrySlab> = OnceLock::new();
        SLAB.get_or_init(|| EntrySlab {
            segments: (0..MAX_SEGMENTS)
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
            grow: Mutex::new(0),
            free: Mutex::new(Vec::new()),
        })
    }

    /// Entry `index`, if its segment exists.
    pub(crate) fn get(&self, index: u32) -> Option<&'static IoEntry> {
        let seg = (index >> SEGMENT_BITS) as usize;
        let p = self.segments.get(seg)?.load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        // SAFETY: segments are leaked arrays of SEGMENT_LEN entries, published
        // with Release after initialization and never freed; the offset is
        // in bounds by construction.
        Some(unsafe { &*p.add(index as usize & (SEGMENT_LEN - 1)) })
    }

    /// Takes a free slot; returns its token (`version << 32 | index`).
    pub(crate) fn alloc(&self) -> std::io::Result<(u64, &'static IoEntry)> {
        let reused = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let index = match reused {
            Some(i) => i,
            None => self.grow_one()?,
        };
        let entry = self.get(index).expect("allocated slot has a segment");
        Ok(((entry.version() as u64) << 32 | index as u64, entry))
    }

    fn grow_one(&self) -> std::io::Result<u32> {
        let mut next = self.grow.lock().unwrap_or_else(|e| e.into_inner());
        let index = *next;
        if index >= MAX_SEGMENTS * SEGMENT_LEN {
            return Err(std::io::Error::other("too many fd registrations"));
        }
        let seg = index >> SEGMENT_BITS;
        if self.segments[seg].load(Ordering::Relaxed).is_null() {
            let block: Box<[IoEntry]> = (0..SEGMENT_LEN).map(|_| IoEntry::new()).collect();
            let p = Box::leak(block).as_mut_ptr();
            self.segments[seg].store(p, Ordering::Release);
        }
        *next += 1;
        Ok(index as u32)
    }

    /// Returns a slot: bumps its version (stale tokens stop matching), wakes
    /// anyone still waiting on it, and frees it for reuse.
    pub(crate) fn release(&self, token: u64) {
        let index = token as u32;
        let Some(entry) = self.get(index) else { return };
        *entry.reader.lock().unwrap_or_else(|e| e.into_inner()) = None;
        entry.has_reader.store(false, Ordering::Relaxed);
        entry.oneshot.store(false, Ordering::Relaxed);
        entry.read_closed.store(false, Ordering::Relaxed);
        entry.version.fetch_add(1, Ordering::AcqRel);
        bump(&entry.read);
        bump(&entry.write);
        self.free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(index);
    }

    /// Installs (or removes) the reader hook of a fresh slot.
    pub(crate) fn set_reader(entry: &IoEntry, reader: Option<Arc<ReaderShared>>) {
        entry.has_reader.store(reader.is_some(), Ordering::Release);
        *entry.reader.lock().unwrap_or_else(|e| e.into_inner()) = reader;
    }

    /// The entry `token` names, if it is still that registration.
    pub(crate) fn lookup(&self, token: u64) -> Option<&'static IoEntry> {
        let entry = self.get(token as u32)?;
        (entry.version() == (token >> 32) as u32).then_some(entry)
    }
}

/// Advances a readiness counter and wakes its waiters.
pub(crate) fn bump(b: &Butex) {
    b.value().fetch_add(1, Ordering::Release);
    b.wake_all();
}
