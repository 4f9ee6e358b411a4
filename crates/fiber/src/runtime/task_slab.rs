//! The global slab of fiber control blocks ([`TaskMeta`]s), and giving its
//! memory back after a burst.
//!
//! Slots are handed out from a worker's cache, the shared free list, a
//! released segment brought back, or new memory, in that order. Segments
//! are mappings of their own (`sys::pages`) that are never unmapped: see
//! `task_meta`'s module docs for why a meta must stay readable forever and
//! what its bytes may be once its segment's pages were released.
//!
//! [`Slab::trim`] (the memory trimmer's, once per trim interval) releases
//! the pages of every segment whose 256 slots are all on the shared free
//! list, keeping one such segment resident. Threads that look at a slot
//! they do not own beyond its atomics — a join or interrupt by id, a
//! tracer, a reader of a fiber's name — hold a [`SlotPin`] meanwhile; a
//! segment with a pin is not released, and a released one refuses pins.

use super::segment_gate::SegmentGate;
use super::task_meta::{TaskMeta, TaskRef};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::Mutex;

const SEGMENT_BITS: u32 = 8;
const SEGMENT_LEN: usize = 1 << SEGMENT_BITS;
const MAX_SEGMENTS: usize = 1 << 16;

// A segment is whole 4 KiB pages (its mapping is page-aligned), so a trim
// releases all of it and every meta of a released segment reads zeros
// (a partial page would keep its metas' old slot numbers).
#[cfg(not(loom))]
const _: () = assert!((SEGMENT_LEN * size_of::<TaskMeta>()) % 4096 == 0);

/// The global slab of metas (16M fibers alive at most).
pub(crate) struct Slab {
    segments: Box<[AtomicPtr<TaskMeta>]>,
    /// Per segment: pins held, and whether its pages are released.
    gates: Box<[SegmentGate]>,
    next_slot: AtomicUsize,
    /// Serializes making, trimming and reviving segments.
    grow_lock: Mutex<()>,
    /// Freed slots not cached by any worker.
    free: Mutex<Vec<u32>>,
    /// Released segments, with the highest version each handed out.
    released: Mutex<Vec<(usize, u32)>>,
    /// `released.len()`, read without the lock on the allocation path.
    released_count: AtomicUsize,
}

/// Keeps the segment of one slot from being released while held, so the
/// holder may touch the slot's meta beyond its atomics.
pub(crate) struct SlotPin {
    seg: usize,
    meta: TaskRef,
}

impl SlotPin {
    /// The pinned slot's meta.
    pub(crate) fn meta(&self) -> TaskRef {
        self.meta
    }
}

impl Drop for SlotPin {
    fn drop(&mut self) {
        Slab::global().gates[self.seg].unpin();
    }
}

impl Slab {
    fn new() -> Self {
        Slab {
            // SAFETY: a null `AtomicPtr` is all-zero bytes.
            segments: unsafe { crate::sys::pages::zeroed_table(MAX_SEGMENTS) },
            // SAFETY: an open gate with no pins is a zero word.
            #[cfg(not(loom))]
            gates: unsafe { crate::sys::pages::zeroed_table(MAX_SEGMENTS) },
            // loom's atomics are not plain words.
            #[cfg(loom)]
            gates: (0..MAX_SEGMENTS).map(|_| SegmentGate::new()).collect(),
            next_slot: AtomicUsize::new(0),
            grow_lock: Mutex::new(()),
            free: Mutex::new(Vec::new()),
            released: Mutex::new(Vec::new()),
            released_count: AtomicUsize::new(0),
        }
    }

    /// The process-wide slab.
    pub(crate) fn global() -> &'static Slab {
        static SLAB: std::sync::OnceLock<Slab> = std::sync::OnceLock::new();
        SLAB.get_or_init(Slab::new)
    }

    /// The meta at `slot`, if that slot was ever allocated (and its
    /// segment is not released). Racy: touch only its atomics, or pin it.
    pub(crate) fn get(&self, slot: u32) -> Option<TaskRef> {
        let seg = (slot >> SEGMENT_BITS) as usize;
        let p = self.segments.get(seg)?.load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        // SAFETY: a published segment is a mapping of SEGMENT_LEN metas
        // that is never unmapped, so a 'static reference into it is valid
        // (a released one reads as zeros: see `task_meta`'s module docs).
        let m: TaskRef = unsafe { &*p.add(slot as usize & (SEGMENT_LEN - 1)) };
        // A released segment reads slot 0 everywhere; segment 0 is never
        // released.
        (m.slot() == slot).then_some(m)
    }

    /// Pins the segment of `slot` (see [`SlotPin`]); `None` if the slot
    /// was never allocated or its segment is released.
    pub(crate) fn pin(&self, slot: u32) -> Option<SlotPin> {
        let seg = (slot >> SEGMENT_BITS) as usize;
        if !self.gates.get(seg)?.try_pin() {
            return None;
        }
        let pin = SlotPin {
            seg,
            meta: self.segment_meta(seg, slot)?,
        };
        (pin.meta.slot() == slot).then_some(pin)
    }

    fn segment_meta(&self, seg: usize, slot: u32) -> Option<TaskRef> {
        let p = self.segments[seg].load(Ordering::Acquire);
        if p.is_null() {
            self.gates[seg].unpin();
            return None;
        }
        // SAFETY: as in `get`.
        Some(unsafe { &*p.add(slot as usize & (SEGMENT_LEN - 1)) })
    }

    /// A fresh slot: from `cache` (a worker's, holding the metas of free
    /// slots so a spawn skips the segment lookup), the shared free list, a
    /// released segment, or new memory. Returns `None` only when 16M
    /// fibers are alive (or no memory can be mapped).
    pub(crate) fn alloc(&self, cache: Option<&mut Vec<TaskRef>>) -> Option<TaskRef> {
        if let Some(cache) = cache {
            if let Some(m) = cache.pop() {
                return Some(m);
            }
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            let take = free.len().min(64);
            let at = free.len() - take;
            cache.extend(free.drain(at..).filter_map(|slot| self.get(slot)));
            drop(free);
            if let Some(m) = cache.pop() {
                return Some(m);
            }
        } else if let Some(slot) = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return self.get(slot);
        }
        if self.released_count.load(Ordering::Relaxed) != 0 {
            if let Some(m) = self.revive() {
                return Some(m);
            }
        }
        let slot = self.next_slot.fetch_add(1, Ordering::Relaxed);
        if slot >= MAX_SEGMENTS * SEGMENT_LEN {
            return None;
        }
        let seg = slot >> SEGMENT_BITS;
        if self.segments[seg].load(Ordering::Acquire).is_null() {
            let _g = self.grow_lock.lock().unwrap_or_else(|e| e.into_inner());
            if self.segments[seg].load(Ordering::Acquire).is_null() {
                let p = crate::sys::pages::map_zeroed(SEGMENT_LEN * size_of::<TaskMeta>())
                    .ok()?
                    .cast::<TaskMeta>();
                let base = (seg * SEGMENT_LEN) as u32;
                for i in 0..SEGMENT_LEN {
                    // SAFETY: in bounds of the fresh mapping, not yet
                    // published: nobody else sees it.
                    unsafe { p.add(i).write(TaskMeta::new(base + i as u32)) };
                }
                self.segments[seg].store(p, Ordering::Release);
            }
        }
        self.get(slot as u32)
    }

    /// Brings back a released segment: its slots get their numbers back
    /// and versions past any the segment handed out before (so no stale
    /// fiber id matches); all but the returned one go on the free list.
    fn revive(&self) -> Option<TaskRef> {
        let _g = self.grow_lock.lock().unwrap_or_else(|e| e.into_inner());
        let (seg, top) = {
            let mut released = self.released.lock().unwrap_or_else(|e| e.into_inner());
            let r = released.pop()?;
            self.released_count.store(released.len(), Ordering::Relaxed);
            r
        };
        let p = self.segments[seg].load(Ordering::Acquire);
        let first = (seg * SEGMENT_LEN) as u32;
        let version = top.wrapping_add(1).max(1);
        for i in 0..SEGMENT_LEN {
            // SAFETY: the segment is released: off the free lists, refusing
            // pins, so nobody but us touches its metas' cells.
            unsafe { (*p.add(i)).revive(first + i as u32, version) };
        }
        // Pins taken from now on succeed: the metas are whole again.
        self.gates[seg].reopen();
        self.free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend((first + 1..first + SEGMENT_LEN as u32).rev());
        self.get(first)
    }

    /// How many slots were ever handed out (slots `0..allocated()` may hold
    /// fibers; a racy bound).
    pub(crate) fn allocated(&self) -> u32 {
        self.next_slot
            .load(Ordering::Relaxed)
            .min(MAX_SEGMENTS * SEGMENT_LEN) as u32
    }

    /// Returns one slot whose fiber ended to the shared free list.
    pub(crate) fn free_one(&self, slot: u32) {
        self.free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(slot);
    }

    /// Returns slots whose fibers ended (versions already bumped, idle
    /// contexts removed) to the shared free list.
    pub(crate) fn free_many(&self, slots: Vec<u32>) {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        free.extend(slots);
    }

    /// Releases the pages of every segment (but segment 0, and one more
    /// kept for the next burst) whose slots are all on the shared free
    /// list and that nobody pins. Returns the bytes released. Called by
    /// the memory trimmer; costs a pass over the free list.
    pub(crate) fn trim(&self) -> usize {
        let _g = self.grow_lock.lock().unwrap_or_else(|e| e.into_inner());
        // `allocated`, not `next_slot`: failed allocations past the slab's
        // capacity move `next_slot` beyond the last segment.
        let full_segments = self.allocated() as usize >> SEGMENT_BITS;
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let mut counts = vec![0u32; full_segments];
        for &slot in free.iter() {
            if let Some(c) = counts.get_mut((slot >> SEGMENT_BITS) as usize) {
                *c += 1;
            }
        }
        let mut kept_one = false;
        let mut chosen = vec![false; full_segments];
        for seg in 1..full_segments {
            if counts[seg] as usize != SEGMENT_LEN
                || self.segments[seg].load(Ordering::Acquire).is_null()
            {
                continue;
            }
            if !kept_one {
                kept_one = true;
                continue;
            }
            // Refuse pins from now on; a segment someone pins stays.
            chosen[seg] = self.gates[seg].try_release();
        }
        if !chosen.contains(&true) {
            return 0;
        }
        // Slots of the segment being filled lie past `chosen`: kept.
        free.retain(|&slot| {
            !chosen
                .get((slot >> SEGMENT_BITS) as usize)
                .is_some_and(|&c| c)
        });
        shrink_free_list(&mut free);
        drop(free);
        let mut released = 0;
        let mut list = self.released.lock().unwrap_or_else(|e| e.into_inner());
        for seg in (0..full_segments).filter(|&s| chosen[s]) {
            let p = self.segments[seg].load(Ordering::Acquire);
            let mut top = 0u32;
            for i in 0..SEGMENT_LEN {
                // SAFETY: in bounds; the slot is free, off the free list,
                // its segment refuses pins (the contract of `retire`).
                let m = unsafe { &*p.add(i) };
                top = top.max(m.version.value().load(Ordering::Acquire));
                // SAFETY: as above.
                unsafe { m.retire() };
            }
            // SAFETY: one `map_zeroed` mapping; every meta in it was
            // retired. A meta is not valid as all-zero bytes (its cells
            // hold `Vec`s, `Arc`s, references), so from here until
            // `revive` `ptr::write`s them afresh its cells count as
            // uninitialised: nobody reads or drops them meanwhile, since
            // the segment is off the free lists and refuses pins (what
            // the cells hold is touched only by a slot's owner or under a
            // pin). What racy readers do read is atomics, valid as zeros
            // (`task_meta`'s module docs).
            released += unsafe {
                crate::sys::pages::release(p.cast(), SEGMENT_LEN * size_of::<TaskMeta>())
            };
            list.push((seg, top));
        }
        self.released_count.store(list.len(), Ordering::Relaxed);
        released
    }
}

/// After a trim took slots off a free list: gives back its capacity if
/// it is mostly unused (a burst of 100k fibers leaves a 400 KB list).
pub(crate) fn shrink_free_list(free: &mut Vec<u32>) {
    if free.capacity() > 2 * free.len() + 1024 {
        free.shrink_to(free.len() + free.len() / 2);
    }
}
