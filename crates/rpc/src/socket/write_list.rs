//! The socket's wait-free write list (bRPC's `Socket::_write_head`).
//!
//! Writers never lock. Each one swaps its request onto the head of an
//! intrusive stack (one `swap`, wait-free). The writer that found the stack
//! empty becomes its **owner**: it writes its own request in place and then
//! keeps taking what others pushed meanwhile, oldest first, until a CAS of
//! the head from its newest request back to null succeeds. Everyone else
//! returns at once: their bytes will be written by the owner.
//!
//! The owner keeps the newest request it has taken (`last`) allocated until
//! that CAS: its address is the CAS comparand, and freeing it would let a
//! new request reuse the address (ABA). A pusher links its request to the
//! previous head *after* the swap, so for a moment a request's `next` is
//! [`UNCONNECTED`]; the owner, walking from the head, waits for the link
//! (a few instructions on the pusher's side; bRPC spins the same way).

use std::collections::VecDeque;
use std::ptr;

#[cfg(loom)]
use loom::{
    cell::UnsafeCell,
    sync::atomic::{AtomicPtr, Ordering},
};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicPtr, Ordering};

struct Node<T> {
    item: Option<T>,
    /// The request pushed before this one; [`UNCONNECTED`] until linked.
    next: AtomicPtr<Node<T>>,
}

/// A `next` value that no allocation can have: "pushed, not linked yet".
fn unconnected<T>() -> *mut Node<T> {
    // An odd address is never a valid `Node` (alignment > 1).
    ptr::dangling_mut::<u8>().wrapping_add(1).cast()
}

/// A multi-producer list whose first pusher becomes the single consumer.
///
/// Its `Drop` frees only the cached node: an owner keeps its socket (and
/// so the list) alive until it releases, so a dropped list is empty. If a
/// bug left nodes behind they leak: the links below an owner's `last`
/// point to freed nodes, so walking them would be unsound.
pub(crate) struct WriteList<T> {
    head: AtomicPtr<Node<T>>,
    /// A node no one uses, kept for the next push: on a connection that
    /// writes one response at a time, every write reuses it instead of a
    /// `malloc` and a `free`. A node goes here only when it would
    /// otherwise be freed (off the list, and not an owner's CAS comparand),
    /// so reusing it is as safe against ABA as the allocator handing the
    /// same address back; whoever swaps it out owns it alone.
    free: AtomicPtr<Node<T>>,
    /// The FIFO the last owner emptied, with its capacity, for the next
    /// owner: an owner per write, and a fresh `VecDeque` for each cost a
    /// `malloc` and a `free` per response (a lock here cost more than
    /// that). Only the owner touches it: see [`WriteList::spare`].
    spare: UnsafeCell<VecDeque<T>>,
}

// SAFETY: the list hands items from pushing threads to the owner's thread,
// so `T: Send` suffices; nodes are reached only through the atomic head and
// links, by the owner (see the module comment for the protocol).
unsafe impl<T: Send> Send for WriteList<T> {}
// SAFETY: as above: shared access only pushes (swap) or, for the single
// owner, walks and frees nodes it was handed.
unsafe impl<T: Send> Sync for WriteList<T> {}

impl<T> Default for WriteList<T> {
    fn default() -> Self {
        WriteList {
            head: AtomicPtr::new(ptr::null_mut()),
            free: AtomicPtr::new(ptr::null_mut()),
            spare: UnsafeCell::new(VecDeque::new()),
        }
    }
}

impl<T> Drop for WriteList<T> {
    fn drop(&mut self) {
        let node = self.free.swap(ptr::null_mut(), Ordering::Acquire);
        if !node.is_null() {
            // SAFETY: a cached node is unreachable from the list and
            // owned by the cache alone; it was allocated with Box.
            drop(unsafe { Box::from_raw(node) });
        }
    }
}

/// Proof of ownership of a [`WriteList`]: the items taken so far, oldest
/// first, and the newest node (kept for the final CAS).
///
/// An owner must end in [`WriteList::release`]. Dropping one instead leaks
/// its node and strands the list (later pushes queue behind a writer that
/// is gone); the socket only does that when it failed anyway.
pub(crate) struct Owner<T> {
    fifo: VecDeque<T>,
    last: *mut Node<T>,
}

// SAFETY: an owner is the single consumer; its `last` node is reachable
// by no one else but through the head, which pushers only swap. Moving the
// owner (e.g. into a write-behind fiber) moves that exclusive role.
unsafe impl<T: Send> Send for Owner<T> {}

impl<T> WriteList<T> {
    /// Pushes `item`. Returns the ownership if the list was empty: the
    /// caller must then write what the owner holds and finish with
    /// [`release`](Self::release).
    pub(crate) fn push(&self, item: T) -> Option<Owner<T>> {
        let node = self.new_node(item);
        // AcqRel: Release publishes the node's contents to the owner that
        // walks to it; Acquire orders our link store after the previous
        // pusher's swap.
        let prev = self.head.swap(node, Ordering::AcqRel);
        // SAFETY: `node` is ours until linked: the owner waits while `next`
        // is UNCONNECTED and does not free it before.
        let next = unsafe { &(*node).next };
        if !prev.is_null() {
            next.store(prev, Ordering::Release);
            return None;
        }
        next.store(ptr::null_mut(), Ordering::Relaxed);
        // SAFETY: we found the list empty, so we are the owner and the only
        // one who takes items out of `node`.
        let item = unsafe { (*node).item.take() };
        // SAFETY: we are the owner (see `spare`).
        let mut fifo = unsafe { self.spare(std::mem::take) };
        fifo.extend(item);
        Some(Owner { fifo, last: node })
    }

    /// Moves the requests pushed since the owner's last look into its FIFO,
    /// oldest first. Returns how many were taken.
    pub(crate) fn grab(&self, owner: &mut Owner<T>) -> usize {
        let head = self.head.load(Ordering::Acquire);
        if head == owner.last {
            return 0;
        }
        // Walk newest → oldest until `last`, then reverse.
        let mut newer = Vec::new();
        let mut p = head;
        while p != owner.last {
            // SAFETY: every node between the head and `last` was pushed after
            // `last` and is freed only by us, below.
            let next = unsafe { &(*p).next };
            let mut n = next.load(Ordering::Acquire);
            while n == unconnected() {
                spin();
                n = next.load(Ordering::Acquire);
            }
            newer.push(p);
            p = n;
        }
        let taken = newer.len();
        for &node in newer.iter().rev() {
            // SAFETY: linked nodes are ours alone now (their pushers are done
            // with them); only `head` stays allocated, as the new `last`.
            let item = unsafe { (*node).item.take() };
            owner.fifo.extend(item);
            if node != head {
                // SAFETY: allocated by `push` with Box, unreachable now.
                unsafe { self.free_node(node) };
            }
        }
        // SAFETY: the old `last` is no longer the CAS comparand: free it.
        unsafe { self.free_node(owner.last) };
        owner.last = head;
        taken
    }

    /// Gives up ownership if nothing was pushed since the last
    /// [`grab`](Self::grab) and the owner's FIFO is empty. Otherwise takes
    /// the new requests into the FIFO and returns the ownership back.
    pub(crate) fn release(&self, mut owner: Owner<T>) -> Result<(), Owner<T>> {
        if !owner.fifo.is_empty() {
            return Err(owner);
        }
        // Before the CAS: once it succeeds, the next owner may look.
        let fifo = std::mem::take(&mut owner.fifo);
        // SAFETY: we are still the owner (see `spare`).
        unsafe { self.spare(|s| *s = fifo) };
        match self.head.compare_exchange(
            owner.last,
            ptr::null_mut(),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => {
                // SAFETY: the list no longer points to `last`; it was ours.
                unsafe { self.free_node(owner.last) };
                Ok(())
            }
            Err(_) => {
                // SAFETY: the CAS failed: we are still the owner.
                owner.fifo = unsafe { self.spare(std::mem::take) };
                self.grab(&mut owner);
                Err(owner)
            }
        }
    }
}

impl<T> WriteList<T> {
    /// A node carrying `item`, not linked yet: the cached one if there is
    /// one, else a new allocation.
    fn new_node(&self, item: T) -> *mut Node<T> {
        // Acquire: pairs with `free_node`'s Release, so the node's last
        // writes (its item taken) happened before we reuse it.
        let cached = self.free.swap(ptr::null_mut(), Ordering::Acquire);
        if cached.is_null() {
            return Box::into_raw(Box::new(Node {
                item: Some(item),
                next: AtomicPtr::new(unconnected()),
            }));
        }
        // SAFETY: the swap made the cached node ours alone (see `free`).
        unsafe {
            (*cached).item = Some(item);
            (*cached).next.store(unconnected(), Ordering::Relaxed);
        }
        cached
    }

    /// Gives back a node no longer on the list: cached for the next push,
    /// or freed if the cache is taken.
    ///
    /// # Safety
    ///
    /// `node` came from [`new_node`](Self::new_node), its item is taken,
    /// and nothing reaches it any more: it is off the list and no owner's
    /// `last`.
    unsafe fn free_node(&self, node: *mut Node<T>) {
        let old = self.free.swap(node, Ordering::AcqRel);
        if !old.is_null() {
            // SAFETY: the swap took the previously cached node out of the
            // cache: it is ours alone, and was allocated with Box.
            drop(unsafe { Box::from_raw(old) });
        }
    }

    /// Runs `f` on the spare FIFO.
    ///
    /// # Safety
    ///
    /// Only the list's owner may call it. One owner exists at a time, and
    /// ownership passes through the head: the old owner's release CAS
    /// (Release) is read by the swap that finds the list empty (Acquire),
    /// so the next owner sees what the last one left here.
    unsafe fn spare<R>(&self, f: impl FnOnce(&mut VecDeque<T>) -> R) -> R {
        #[cfg(loom)]
        // SAFETY: the caller is the owner (the function's contract).
        return self.spare.with_mut(|p| f(unsafe { &mut *p }));
        #[cfg(not(loom))]
        // SAFETY: the caller is the owner (the function's contract).
        return f(unsafe { &mut *self.spare.get() });
    }
}

#[cfg(not(loom))]
use std::cell::UnsafeCell;

impl<T> Owner<T> {
    /// The requests taken, oldest first.
    pub(crate) fn fifo(&mut self) -> &mut VecDeque<T> {
        &mut self.fifo
    }
}

fn spin() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::thread::yield_now();
}

/// Drains as an owner would: write everything, release, repeat (shared by
/// the std tests and the loom model).
#[cfg(test)]
fn drain<T>(list: &WriteList<T>, mut owner: Owner<T>, mut write: impl FnMut(T)) {
    loop {
        owner.fifo().drain(..).for_each(&mut write);
        match list.release(owner) {
            Ok(()) => return,
            Err(o) => owner = o,
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn single_thread_order() {
        let list = WriteList::default();
        let out = Mutex::new(Vec::new());
        let owner = list.push(1).expect("empty list: first pusher owns");
        assert!(list.push(2).is_none());
        assert!(list.push(3).is_none());
        drain(&list, owner, |v| out.lock().unwrap().push(v));
        assert_eq!(*out.lock().unwrap(), vec![1, 2, 3]);
        // Released: the next push owns again.
        let owner = list.push(4).unwrap();
        drain(&list, owner, |v| out.lock().unwrap().push(v));
        assert_eq!(*out.lock().unwrap(), vec![1, 2, 3, 4]);
    }

    #[test]
    fn threads_keep_per_thread_order_and_lose_nothing() {
        let list = Arc::new(WriteList::default());
        let out = Arc::new(Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..4u32)
            .map(|t| {
                let (list, out) = (list.clone(), out.clone());
                std::thread::spawn(move || {
                    for i in 0..20_000u32 {
                        if let Some(owner) = list.push(t << 24 | i) {
                            drain(&list, owner, |v| out.lock().unwrap().push(v));
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let out = out.lock().unwrap();
        assert_eq!(out.len(), 80_000);
        let mut next = [0u32; 4];
        for &v in out.iter() {
            let (t, i) = ((v >> 24) as usize, v & 0xff_ffff);
            assert_eq!(i, next[t], "thread {t} out of order");
            next[t] += 1;
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::{Arc, Mutex};

    /// Three writers, two requests each: every request is written exactly
    /// once, each writer's in its order, and the list ends empty.
    #[test]
    fn loom_write_list_three_writers() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(2);
        builder.check(|| {
            let list = Arc::new(WriteList::default());
            let out = Arc::new(Mutex::new(Vec::new()));
            let hs: Vec<_> = (1..3u32)
                .map(|t| {
                    let (list, out) = (list.clone(), out.clone());
                    loom::thread::spawn(move || {
                        for i in 0..2 {
                            if let Some(o) = list.push(t * 10 + i) {
                                drain(&list, o, |v| out.lock().unwrap().push(v));
                            }
                        }
                    })
                })
                .collect();
            if let Some(o) = list.push(0) {
                drain(&list, o, |v| out.lock().unwrap().push(v));
            }
            for h in hs {
                h.join().unwrap();
            }
            let out = out.lock().unwrap();
            let mut sorted = out.clone();
            sorted.sort();
            assert_eq!(sorted, vec![0, 10, 11, 20, 21]);
            for t in [10, 20] {
                let a = out.iter().position(|&v| v == t).unwrap();
                let b = out.iter().position(|&v| v == t + 1).unwrap();
                assert!(a < b);
            }
            assert!(list.head.load(Ordering::Acquire).is_null());
        });
    }
}
