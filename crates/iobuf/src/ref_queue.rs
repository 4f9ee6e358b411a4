//! The two views of an IOBuf's refs (bRPC's SmallView / BigView): up to two
//! refs inline, more in a [`RefRing`]. Every IOBuf operation is written
//! against this small deque API, which also keeps the byte count right.
//!
//! Invariants: no ref has length 0; in the small view `refs[1]` is only
//! `Some` when `refs[0]` is.

use crate::block::Block;
use crate::block_ref::BlockRef;
use crate::ref_ring::RefRing;

pub(crate) enum RefQueue {
    /// Small view: at most two refs, no heap allocation.
    Small([Option<BlockRef>; 2]),
    /// Big view: a ring that grows by powers of two.
    Big(RefRing),
}

impl RefQueue {
    pub(crate) const fn new() -> RefQueue {
        RefQueue::Small([None, None])
    }

    /// Total bytes.
    #[inline]
    pub(crate) fn nbytes(&self) -> usize {
        match self {
            RefQueue::Small([a, b]) => {
                a.as_ref().map_or(0, |r| r.len() as usize)
                    + b.as_ref().map_or(0, |r| r.len() as usize)
            }
            RefQueue::Big(r) => r.nbytes,
        }
    }

    /// Number of refs.
    #[inline]
    pub(crate) fn nref(&self) -> usize {
        match self {
            RefQueue::Small([a, b]) => a.is_some() as usize + b.is_some() as usize,
            RefQueue::Big(r) => r.nref(),
        }
    }

    /// The i-th ref from the front. Panics when out of range.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> &BlockRef {
        match self {
            RefQueue::Small(s) => s[i].as_ref().expect("ref index out of range"),
            RefQueue::Big(r) => r.get(i),
        }
    }

    /// The first ref, if any.
    #[inline]
    pub(crate) fn front(&self) -> Option<&BlockRef> {
        match self {
            RefQueue::Small([a, _]) => a.as_ref(),
            RefQueue::Big(r) => (r.nref() > 0).then(|| r.get(0)),
        }
    }

    /// Extends the last ref by `n` bytes if it is in `block` and ends at
    /// `end`; returns whether it did. The caller guarantees the `n` bytes
    /// after `end` were handed to this buffer.
    #[inline]
    pub(crate) fn try_extend_back(&mut self, block: *const Block, end: u32, n: u32) -> bool {
        let last = match self {
            RefQueue::Small([a, b]) => match (a, b) {
                (_, Some(l)) | (Some(l), None) => l,
                (None, None) => return false,
            },
            RefQueue::Big(r) => match r.nref().checked_sub(1) {
                Some(i) => {
                    let l = r.get_mut(i);
                    if !l.ends_at(block, end) {
                        return false;
                    }
                    l.grow_back(n);
                    r.nbytes += n as usize;
                    return true;
                }
                None => return false,
            },
        };
        if !last.ends_at(block, end) {
            return false;
        }
        last.grow_back(n);
        true
    }

    /// The last ref, if any.
    #[inline]
    pub(crate) fn back(&self) -> Option<&BlockRef> {
        match self {
            RefQueue::Small([a, b]) => b.as_ref().or(a.as_ref()),
            RefQueue::Big(r) => r.nref().checked_sub(1).map(|i| r.get(i)),
        }
    }

    /// Appends `r`, merging it into the last ref when it continues it in the
    /// same block (then one refcount is dropped, no slot is used).
    #[inline]
    pub(crate) fn push_back(&mut self, r: BlockRef) {
        if r.len() == 0 {
            return;
        }
        if let Some(last) = self.back() {
            if last.is_followed_by(&r) {
                // `r`'s reference is dropped at the end of this scope: the
                // grown last ref already holds one on the same block.
                self.grow_back(r.len());
                return;
            }
        }
        self.push_back_unmerged(r);
    }

    /// Appends `r` as a new ref (never merges). `r.len() > 0`.
    #[inline]
    pub(crate) fn push_back_unmerged(&mut self, r: BlockRef) {
        match self {
            RefQueue::Small(s) => {
                if s[0].is_none() {
                    s[0] = Some(r);
                } else if s[1].is_none() {
                    s[1] = Some(r);
                } else {
                    self.spill(r);
                }
            }
            RefQueue::Big(ring) => {
                ring.nbytes += r.len() as usize;
                ring.push_back_raw(r);
            }
        }
    }

    #[cold]
    fn spill(&mut self, r: BlockRef) {
        let RefQueue::Small(s) = self else {
            unreachable!()
        };
        let (Some(a), Some(b)) = (s[0].take(), s[1].take()) else {
            unreachable!("spill only from a full small view")
        };
        let mut ring = RefRing::from_pair(a, b);
        ring.nbytes += r.len() as usize;
        ring.push_back_raw(r);
        *self = RefQueue::Big(ring);
    }

    /// Extends the last ref by `n` bytes. The caller guarantees those bytes
    /// directly follow it in its block and were handed to this buffer.
    #[inline]
    pub(crate) fn grow_back(&mut self, n: u32) {
        match self {
            RefQueue::Small([a, b]) => {
                let last = if b.is_some() { b } else { a };
                last.as_mut().expect("grow_back on empty").grow_back(n);
            }
            RefQueue::Big(r) => {
                let i = r.nref() - 1;
                r.get_mut(i).grow_back(n);
                r.nbytes += n as usize;
            }
        }
    }

    /// Removes and returns the first ref.
    #[inline]
    pub(crate) fn pop_front(&mut self) -> Option<BlockRef> {
        match self {
            RefQueue::Small(s) => {
                let a = s[0].take();
                s[0] = s[1].take();
                a
            }
            RefQueue::Big(ring) => {
                let r = ring.pop_front_raw()?;
                ring.nbytes -= r.len() as usize;
                Some(r)
            }
        }
    }

    /// Removes and returns the last ref.
    #[inline]
    pub(crate) fn pop_back(&mut self) -> Option<BlockRef> {
        match self {
            RefQueue::Small(s) => {
                if s[1].is_some() {
                    s[1].take()
                } else {
                    s[0].take()
                }
            }
            RefQueue::Big(ring) => {
                let r = ring.pop_back_raw()?;
                ring.nbytes -= r.len() as usize;
                Some(r)
            }
        }
    }

    /// Drops the first `n` bytes of the front ref. `0 < n < front.len()`.
    #[inline]
    pub(crate) fn shrink_front(&mut self, n: u32) {
        let front = match self {
            RefQueue::Small(s) => s[0].as_mut().expect("shrink_front on empty"),
            RefQueue::Big(r) => {
                r.nbytes -= n as usize;
                r.get_mut(0)
            }
        };
        front.shrink_front(n);
    }

    /// Splits a new ref to the first `n` bytes off the front ref.
    /// `0 < n < front.len()`.
    #[inline]
    pub(crate) fn split_front(&mut self, n: u32) -> BlockRef {
        match self {
            RefQueue::Small(s) => s[0].as_mut().expect("split_front on empty").split_front(n),
            RefQueue::Big(r) => {
                r.nbytes -= n as usize;
                r.get_mut(0).split_front(n)
            }
        }
    }

    /// Drops the last `n` bytes of the back ref. `0 < n < back.len()`.
    #[inline]
    pub(crate) fn shrink_back(&mut self, n: u32) {
        let back = match self {
            RefQueue::Small([a, b]) => {
                let last = if b.is_some() { b } else { a };
                last.as_mut().expect("shrink_back on empty")
            }
            RefQueue::Big(r) => {
                r.nbytes -= n as usize;
                let i = r.nref() - 1;
                r.get_mut(i)
            }
        };
        back.shrink_back(n);
    }

    /// Drops every ref. A big view goes back to the small view, freeing its
    /// ring (as bRPC's `clear`).
    #[inline]
    pub(crate) fn clear(&mut self) {
        *self = RefQueue::new();
    }
}
