//! The thread-local block that small appends fill (bRPC's TLS block cache).
//!
//! `IOBuf::append` copies into the tail of the calling thread's current
//! block, so many small appends from many buffers share one 8 KiB block
//! instead of allocating one each. Together with the free list in
//! [`crate::block_pool`] this is the "few blocks per thread" cache: one
//! partially filled block plus at most `POOL_MAX` free ones.

use std::cell::UnsafeCell;

use crate::ref_queue::RefQueue;
use crate::tail::Tail;

thread_local! {
    // An `UnsafeCell` rather than a `Cell` we take from and put back: moving
    // the 16-byte tail out and in on every append costs a store-forwarding
    // stall that showed up as a third of the small-message pipeline. Every
    // access goes through `with_current`, which is never re-entered.
    static CURRENT: UnsafeCell<Option<Tail>> = const { UnsafeCell::new(None) };
}

/// Runs `f` on the thread's current tail. Returns `None` when the
/// thread-local is gone (thread exit).
#[inline]
fn with_current<R>(f: impl FnOnce(&mut Option<Tail>) -> R) -> Option<R> {
    CURRENT
        .try_with(|c| {
            // SAFETY: the only accesses to CURRENT are through this function
            // and `f` never reaches it again: `f` is one of the closures in
            // `append`, `take` and `give_back` below. They allocate, copy,
            // push refs and drop `Tail`s; a `Tail` is always an owned block
            // whose release goes to the block pool (a different
            // thread-local), never to user code such as a user-data
            // deleter. So this is the only live reference to the contents.
            f(unsafe { &mut *c.get() })
        })
        .ok()
}

/// Copies `data` into the current thread's block(s) and appends refs to `q`.
#[inline]
pub(crate) fn append(q: &mut RefQueue, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let done = with_current(|tail| {
        // Fast path: the bytes fit in the current block and leave it
        // non-full, so there is no block to retire or allocate.
        if let Some(t) = tail {
            if t.spare() > data.len() {
                t.write_fitting(q, data);
                return;
            }
        }
        fill(tail, q, data);
    });
    if done.is_none() {
        // The thread is exiting and its thread-locals are gone: use private
        // blocks, dropped (with the Tail's reference) once filled.
        let mut tail = None;
        fill(&mut tail, q, data);
    }
}

#[inline(never)]
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
    with_current(Option::take).flatten()
}

/// Gives a tail back to the cache. If the cache already has one, the fuller
/// of the two is dropped (its bytes live on through the refs).
pub(crate) fn give_back(tail: Tail) {
    if tail.is_full() {
        return;
    }
    with_current(|cur| {
        // Keep the emptier of the two; the other is dropped after the swap
        // (its bytes live on through refs).
        if cur.as_ref().is_none_or(|m| m.spare() < tail.spare()) {
            let old = cur.replace(tail);
            drop(old);
        }
    });
}

/// Drops the thread's current block (its bytes live on in refs).
pub(crate) fn release() {
    with_current(|cur| drop(cur.take()));
}
