//! Per-registration readiness state (tokio's `ScheduledIo`), in a slab that
//! is never unmapped.
//!
//! Why a slab of immortal entries: `epoll_wait` on one thread may return an
//! event for a registration that another thread is dropping at that very
//! moment. The event's token is `version << 32 | index`; the dispatcher
//! looks the entry up by index (always valid memory) and ignores the event
//! if the version moved on. A race where the slot is reused between that
//! check and the wakeup costs one spurious wakeup, which every waiter
//! tolerates (it retries its I/O and gets `EAGAIN`).
//!
//! After a burst of connections the slab gives memory back
//! ([`EntrySlab::trim`], called by the memory trimmer): a segment whose
//! 1024 entries are all free leaves the free list and its pages are
//! released (`sys::pages`). An [`IoEntry`] of all-zero bytes is a valid
//! free entry of version 0, which no token carries, so a stale event that
//! still looks at it reads zeros and is ignored. Before the pages go, every
//! dispatcher must have finished the batch of events it was handling (see
//! [`Dispatcher::wait_batch_done`]): only inside a batch can a thread have
//! matched a version and be about to touch the rest of an entry. When the
//! free list runs dry, a released segment comes back (its versions set
//! past any it handed out before) ahead of a new one.
//!
//! [`Dispatcher::wait_batch_done`]: super::dispatcher::Dispatcher::wait_batch_done

use super::edges::Edges;
use crate::butex::SpinLock;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::reader::ReaderShared;

const SEGMENT_BITS: u32 = 10;
const SEGMENT_LEN: usize = 1 << SEGMENT_BITS;
/// 4096 segments of 1024: four million registrations alive at once.
const MAX_SEGMENTS: usize = 4096;
/// How long a trim waits for the dispatchers to finish their batches
/// before it gives up (and puts the segments back) until the next trim.
const TRIM_GRACE: Duration = Duration::from_millis(100);

// A segment is whole 4 KiB pages (its mapping is page-aligned), so a trim
// releases all of it and every entry of a released segment reads zeros.
#[cfg(not(loom))]
const _: () = assert!((SEGMENT_LEN * size_of::<IoEntry>()) % 4096 == 0);

/// The bits of a version a token carries: 31, so a token never has the
/// top bit, which tags io_uring operations (`sys::uring::OP_TAG`).
const VERSION_MASK: u32 = u32::MAX >> 1;

/// Readiness of one registered descriptor.
///
/// Every field is an atomic, a butex or a lock word: all-zero bytes are a
/// valid free entry of version 0 (see the module docs and `sys::pages`).
pub(crate) struct IoEntry {
    /// Bumped when the slot is released, so stale tokens stop matching.
    /// Never 0 for a slot that can be handed out.
    version: AtomicU32,
    /// Counts read-readiness edges (IN, RDHUP, HUP, ERR); fibers wait on it.
    pub(crate) read: Edges,
    /// Counts write-readiness edges (OUT, HUP, ERR).
    pub(crate) write: Edges,
    /// Guards `reader`.
    reader_lock: SpinLock,
    /// The reader-fiber hook (an `Arc::into_raw`), or null.
    reader: AtomicPtr<ReaderShared>,
    /// Whether `reader` is set (read without the lock on every event).
    pub(crate) has_reader: AtomicBool,
    /// A one-shot `fd_wait`: every event bumps `read`.
    pub(crate) oneshot: AtomicBool,
    /// A hang-up or error was reported: reading will not block again, and
    /// no further edge may come to say so.
    pub(crate) read_closed: AtomicBool,
}

impl IoEntry {
    /// This entry's current version (31 bits, wrapping).
    pub(crate) fn version(&self) -> u32 {
        self.version.load(Ordering::Acquire) & VERSION_MASK
    }

    /// Counts a read edge on the reader hook and starts a reader fiber if
    /// none runs. Returns `false` if no hook is installed.
    ///
    /// The count is taken under the hook's lock, without a reference of
    /// our own: only a starting reader needs one (it outlives the lock).
    /// Cloning and dropping the hook's `Arc` around every count would be
    /// two more locked instructions per event.
    pub(crate) fn read_edge(&self) -> bool {
        self.reader_lock.lock();
        let p = self.reader.load(Ordering::Relaxed);
        if p.is_null() {
            self.reader_lock.unlock();
            return false;
        }
        // SAFETY: a non-null `reader` came from `Arc::into_raw` and holds
        // one strong count, which cannot go while we hold the lock (only
        // `swap_reader` takes it, under the lock).
        let start = unsafe { &*p }.count_edge().then(|| {
            // SAFETY: as above; the new count is the reader fiber's.
            unsafe {
                Arc::increment_strong_count(p);
                Arc::from_raw(p)
            }
        });
        self.reader_lock.unlock();
        // Started outside the lock: a reader that cannot start calls its
        // owner's lost-reader hook, which may drop the registration (and
        // take this lock to remove the hook).
        if let Some(reader) = start {
            ReaderShared::start(reader);
        }
        true
    }

    /// Installs `new` as the reader hook; returns the previous one.
    fn swap_reader(&self, new: Option<Arc<ReaderShared>>) -> Option<Arc<ReaderShared>> {
        let new = new.map_or(std::ptr::null_mut(), |a| Arc::into_raw(a).cast_mut());
        self.reader_lock.lock();
        let old = self.reader.swap(new, Ordering::Relaxed);
        self.reader_lock.unlock();
        // SAFETY: a non-null `reader` came from `Arc::into_raw`; we took
        // its count out of the entry, so it is ours to drop.
        (!old.is_null()).then(|| unsafe { Arc::from_raw(old) })
    }
}

/// The slab of entries.
pub(crate) struct EntrySlab {
    segments: Box<[AtomicPtr<IoEntry>]>,
    /// The next index never handed out; also serializes growing, reviving
    /// and a trim's choice of segments.
    grow: Mutex<usize>,
    free: Mutex<Vec<u32>>,
    /// Released segments, with the highest version each had handed out.
    trimmed: Mutex<Vec<(usize, u32)>>,
    /// Serializes trims. A trim holds `grow` only while it picks segments,
    /// not while it waits for the dispatchers (up to `TRIM_GRACE`): the
    /// segments it took off the free list are in no list meanwhile, so
    /// neither growing nor reviving can reach them.
    trim_lock: Mutex<()>,
}

impl EntrySlab {
    /// The process-wide slab.
    pub(crate) fn global() -> &'static EntrySlab {
        static SLAB: OnceLock<EntrySlab> = OnceLock::new();
        SLAB.get_or_init(|| EntrySlab {
            // SAFETY: a null `AtomicPtr` is all-zero bytes.
            segments: unsafe { crate::sys::pages::zeroed_table(MAX_SEGMENTS) },
            grow: Mutex::new(0),
            free: Mutex::new(Vec::new()),
            trimmed: Mutex::new(Vec::new()),
            trim_lock: Mutex::new(()),
        })
    }

    /// Entry `index`, if its segment exists.
    pub(crate) fn get(&self, index: u32) -> Option<&'static IoEntry> {
        let seg = (index >> SEGMENT_BITS) as usize;
        let p = self.segments.get(seg)?.load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        // SAFETY: segments are mappings of SEGMENT_LEN entries, published
        // with Release after initialization and never unmapped (a trimmed
        // one reads as zeros: valid entries); the offset is in bounds by
        // construction.
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

    /// A slot from a released segment brought back, or else a new one.
    fn grow_one(&self) -> std::io::Result<u32> {
        let mut next = self.grow.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(index) = self.revive() {
            return Ok(index);
        }
        let index = *next;
        if index >= MAX_SEGMENTS * SEGMENT_LEN {
            return Err(std::io::Error::other("too many fd registrations"));
        }
        let seg = index >> SEGMENT_BITS;
        if self.segments[seg].load(Ordering::Relaxed).is_null() {
            let p = crate::sys::pages::map_zeroed(SEGMENT_LEN * size_of::<IoEntry>())?
                .cast::<IoEntry>();
            for i in 0..SEGMENT_LEN {
                // SAFETY: zeroed memory is a valid `IoEntry` (all atomics),
                // in bounds of the fresh mapping; not yet published.
                unsafe { (*p.add(i)).version.store(1, Ordering::Relaxed) };
            }
            self.segments[seg].store(p, Ordering::Release);
        }
        *next += 1;
        Ok(index as u32)
    }

    /// Brings back a released segment (the caller holds `grow`): its
    /// versions start past every version it handed out, its slots but the
    /// returned one go to the free list.
    fn revive(&self) -> Option<u32> {
        let (seg, top) = self
            .trimmed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()?;
        let first = (seg << SEGMENT_BITS) as u32;
        let version = (top.wrapping_add(1) & VERSION_MASK).max(1);
        for i in 0..SEGMENT_LEN as u32 {
            let e = self.get(first + i).expect("a trimmed segment is mapped");
            e.version.store(version, Ordering::Release);
        }
        self.free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend((first + 1..first + SEGMENT_LEN as u32).rev());
        Some(first)
    }

    /// Returns a slot: bumps its version (stale tokens stop matching), wakes
    /// anyone still waiting on it, and frees it for reuse.
    pub(crate) fn release(&self, token: u64) {
        let index = token as u32;
        let Some(entry) = self.get(index) else { return };
        drop(entry.swap_reader(None));
        entry.has_reader.store(false, Ordering::Relaxed);
        entry.oneshot.store(false, Ordering::Relaxed);
        entry.read_closed.store(false, Ordering::Relaxed);
        if entry.version.fetch_add(1, Ordering::AcqRel).wrapping_add(1) & VERSION_MASK == 0 {
            // Wrapped (tokens carry 31 bits): 0 is the version of a
            // released page, never handed out.
            entry.version.store(1, Ordering::Release);
        }
        entry.read.bump();
        entry.write.bump();
        self.free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(index);
    }

    /// Installs (or removes) the reader hook of a fresh slot.
    pub(crate) fn set_reader(entry: &IoEntry, reader: Option<Arc<ReaderShared>>) {
        entry.has_reader.store(reader.is_some(), Ordering::Release);
        drop(entry.swap_reader(reader));
    }

    /// The entry `token` names, if it is still that registration.
    pub(crate) fn lookup(&self, token: u64) -> Option<&'static IoEntry> {
        let entry = self.get(token as u32)?;
        (entry.version() == (token >> 32) as u32).then_some(entry)
    }

    /// Releases the pages of every segment whose slots are all free,
    /// keeping one such segment resident for the next registrations.
    /// Returns the bytes released. Called by the memory trimmer; costs a
    /// pass over the free list.
    pub(crate) fn trim(&self) -> usize {
        let _trim = self.trim_lock.lock().unwrap_or_else(|e| e.into_inner());
        let next = self.grow.lock().unwrap_or_else(|e| e.into_inner());
        let full_segments = *next >> SEGMENT_BITS;
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let mut counts = vec![0u32; full_segments];
        for &i in free.iter() {
            if let Some(c) = counts.get_mut((i >> SEGMENT_BITS) as usize) {
                *c += 1;
            }
        }
        let mut empty: Vec<bool> = counts.iter().map(|&c| c as usize == SEGMENT_LEN).collect();
        // Keep the first empty segment: the next burst starts there
        // without a page fault per entry.
        if let Some(keep) = empty.iter().position(|&e| e) {
            empty[keep] = false;
        }
        if !empty.contains(&true) {
            return 0;
        }
        // Slots of the segment being filled lie past `empty`: kept.
        free.retain(|&i| !empty.get((i >> SEGMENT_BITS) as usize).is_some_and(|&e| e));
        crate::runtime::task_meta::shrink_free_list(&mut free);
        drop(free);
        // Allocation may grow the slab (or revive other segments) while we
        // wait: these segments are on no list it reads.
        drop(next);
        // Each slot of these segments was released (its version bumped)
        // before it went on the free list; a batch of events that started
        // after this point sees those versions and touches none of them.
        std::sync::atomic::fence(Ordering::SeqCst);
        let deadline = Instant::now() + TRIM_GRACE;
        let settled = super::driver::started()
            .is_none_or(|d| d.dispatchers().iter().all(|d| d.wait_batch_done(deadline)));
        let segs: Vec<usize> = (0..full_segments).filter(|&s| empty[s]).collect();
        if !settled {
            // A dispatcher is stuck in a batch: try again next time.
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            for s in segs {
                let first = (s << SEGMENT_BITS) as u32;
                free.extend(first..first + SEGMENT_LEN as u32);
            }
            return 0;
        }
        let mut released = 0;
        let mut trimmed = self.trimmed.lock().unwrap_or_else(|e| e.into_inner());
        for s in segs {
            let first = (s << SEGMENT_BITS) as u32;
            let top = (first..first + SEGMENT_LEN as u32)
                .filter_map(|i| self.get(i))
                .map(IoEntry::version)
                .max()
                .unwrap_or(0);
            let p = self.segments[s].load(Ordering::Acquire);
            // SAFETY: the segment is one `map_zeroed` mapping; all its
            // entries are free, off the free list (nobody can take them),
            // no registration holds one, and no dispatcher is inside a
            // batch that matched one. All-zero bytes are a valid free
            // entry that no token matches.
            released +=
                unsafe { crate::sys::pages::release(p.cast(), SEGMENT_LEN * size_of::<IoEntry>()) };
            trimmed.push((s, top));
        }
        released
    }
}
