//! The thread-local block that small appends fill (bRPC's TLS block cache).
//!
//! `IOBuf::append` copies into the tail of the calling thread's current
//! block, so many small appends from many buffers share one 8 KiB block
//! instead of allocating one each. Together with the free list in
//! [`crate::block_pool`] this is the "few blocks per thread" cache: one
//! partially filled block plus at most `POOL_MAX` free ones.

use std::cell::Cell;

use crate::ref_queue::RefQueue;
use crate::tail::Tail;

thread_local! {
    // `Cell<Option<Tail>>`: take/set only, never borrowed, so a block drop
    // that re-enters the allocator's thread-locals cannot conflict with it.
    static CURRENT: Cell<Option<Tail>> = const { Cell::new(None) };
}

/// Copies `data` into the current thread's block(s) and appends refs to `q`.
#[inline]
pub(crate) fn append(q: &mut RefQueue, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let done = CURRENT.try_with(|cur| {
        let mut tail = cur.take();
        fill(&mut tail, q, data);
        cur.set(tail);
    });
    if done.is_err() {
        // The thread is exiting and its thread-locals are gone: use private
        // blocks, dropped (with the Tail's reference) once filled.
        let mut tail = None;
        fill(&mut tail, q, data);
    }
}

#[inline]
fn fill(tail: &mut Option<Tail>, q: &mut RefQueue, mut data: &[u8]) {
    while !data.is_empty() {
        let t = tail.get_or_insert_with(Tail::new);
        let n = t.write(q, data);
        data = &data[n..];
        if t.is_full() {
            // The block now belongs to the refs alone.
            *tail = None;
        }
    }
}

/// Takes the current thread's block tail out of the cache (for an
/// appender that wants exclusive use of it).
pub(crate) fn take() -> Option<Tail> {
    CURRENT.try_with(Cell::take).ok().flatten()
}

/// Gives a tail back to the cache. If the cache already has one, the fuller
/// of the two is dropped (its bytes live on through the refs).
pub(crate) fn give_back(tail: Tail) {
    if tail.is_full() {
        return;
    }
    let _ = CURRENT.try_with(|cur| {
        let mine = cur.take();
        let keep = match mine {
            Some(m) if m.spare() >= tail.spare() => m,
            _ => tail,
        };
        cur.set(Some(keep));
    });
}
