//! Memory a request's life on a server leaves behind, kept per thread for
//! the next request (bRPC keeps such objects in its object pools): the
//! header maps of responses once written, and the box a request travels
//! in from the parser to the handler.
//!
//! A plain request cost 7 allocations, 4 of them these: a request's
//! `HeaderMap` (two: its index table and its entries) and its box. The
//! reader that cuts a request usually processes it too, on the same
//! worker thread, so what the response gives back here is what the next
//! request takes. A request's head bytes (which its target and header
//! values are slices of) are copied into a per-thread arena, one
//! allocation per [`HEAD_ARENA_CHUNK`] bytes of heads.

use std::cell::{Cell, RefCell};
use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use fibrpc_iobuf::IOBuf;
use http::{HeaderMap, Request};

/// Bytes of message heads a thread's arena takes before it starts a new
/// chunk. A head slice kept alive (a header value a handler holds on to)
/// keeps its chunk allocated, as it kept its input block (8 KiB) before.
const HEAD_ARENA_CHUNK: usize = 4 << 10;

/// Header maps kept per thread.
const MAX_MAPS: usize = 4;
/// A map with room for more headers than this is freed rather than kept:
/// one large message must not pin memory on the thread.
const MAX_KEPT_CAPACITY: usize = 32;

thread_local! {
    static MAPS: RefCell<Vec<HeaderMap>> = const { RefCell::new(Vec::new()) };
    static REQUEST_BOX: Cell<Option<Box<MaybeUninit<Request<IOBuf>>>>> =
        const { Cell::new(None) };
    static HEAD_ARENA: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// `head` copied into this thread's arena, as shared [`Bytes`] that slices
/// of the head can be cut from without allocating. A copy of a short head
/// costs less than sharing the input block it lies in (an owner
/// allocation, a reference on the block, and freeing both), and the head
/// need not lie in one block.
pub(crate) fn shared_head(head: &[u8]) -> Bytes {
    let copied = HEAD_ARENA.try_with(|arena| {
        let mut arena = arena.try_borrow_mut().ok()?;
        if arena.capacity() < head.len() {
            *arena = BytesMut::with_capacity(HEAD_ARENA_CHUNK.max(head.len()));
        }
        arena.extend_from_slice(head);
        Some(arena.split().freeze())
    });
    copied
        .ok()
        .flatten()
        .unwrap_or_else(|| Bytes::copy_from_slice(head))
}

/// An empty header map with room for `n` headers: one a response gave
/// back on this thread if there is one, else a new one.
pub(crate) fn header_map(n: usize) -> HeaderMap {
    let kept = MAPS
        .try_with(|m| m.try_borrow_mut().ok().and_then(|mut m| m.pop()))
        .ok()
        .flatten();
    match kept {
        Some(mut map) => {
            map.reserve(n);
            map
        }
        None => HeaderMap::with_capacity(n),
    }
}

/// Keeps `map`'s memory for a later [`header_map`] on this thread (its
/// headers are dropped now).
pub(crate) fn give_header_map(mut map: HeaderMap) {
    let cap = map.capacity();
    if cap == 0 || cap > MAX_KEPT_CAPACITY {
        return;
    }
    let _ = MAPS.try_with(|m| {
        if let Ok(mut m) = m.try_borrow_mut() {
            if m.len() < MAX_MAPS {
                map.clear();
                m.push(map);
            }
        }
    });
}

/// `req` in a box: the one [`unbox_request`] last emptied on this thread,
/// else a new one.
#[inline]
pub(crate) fn box_request(req: Request<IOBuf>) -> Box<Request<IOBuf>> {
    match REQUEST_BOX.try_with(Cell::take).ok().flatten() {
        Some(empty) => {
            let p = Box::into_raw(empty);
            // SAFETY: `p` is a live, exclusively owned allocation with the
            // layout of `Request<IOBuf>` (`MaybeUninit<T>` has `T`'s);
            // writing initializes it, so it may be owned as a
            // `Box<Request<IOBuf>>` from then on.
            unsafe {
                (*p).write(req);
                Box::from_raw(p.cast::<Request<IOBuf>>())
            }
        }
        None => Box::new(req),
    }
}

/// Moves the request out of its box and keeps the box for the next
/// [`box_request`] on this thread.
#[inline]
pub(crate) fn unbox_request(boxed: Box<Request<IOBuf>>) -> Request<IOBuf> {
    let p = Box::into_raw(boxed);
    // SAFETY: `p` came from a live box, so it is valid and initialized;
    // the value is read out exactly once, and the allocation is from then
    // on owned as uninitialized memory of the same layout, which frees it
    // without dropping the value again.
    let (req, empty) = unsafe {
        let req = p.read();
        (req, Box::from_raw(p.cast::<MaybeUninit<Request<IOBuf>>>()))
    };
    // A thread being torn down frees the box instead.
    let _ = REQUEST_BOX.try_with(|slot| slot.set(Some(empty)));
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_copied_into_the_arena_keep_their_bytes_across_chunks() {
        // Heads of every length up to past a chunk, so that some fill a
        // chunk's tail, some start a new one, and one is larger than any.
        let heads: Vec<Vec<u8>> = (0..=HEAD_ARENA_CHUNK + 100)
            .step_by(97)
            .map(|n| (0..n).map(|i| (i * 7 + n) as u8).collect())
            .collect();
        let copies: Vec<Bytes> = heads.iter().map(|h| shared_head(h)).collect();
        for (head, copy) in heads.iter().zip(&copies) {
            assert_eq!(&copy[..], &head[..]);
        }
        // A slice outlives the arena's later chunks.
        let kept = copies[3].slice(1..5);
        drop(copies);
        assert_eq!(&kept[..], &heads[3][1..5]);
    }
}
