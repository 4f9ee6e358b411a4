//! A read-mostly snapshot whose readers keep a thread-local copy, for the
//! lists read on every attempt (the `la` and `rr` balancers' lists, the
//! cluster's per-server counters): a pick reads them up to twice (select
//! and feedback), and an `ArcSwap` load costs two atomic
//! read-modify-writes of the reading thread's debt slot (take and pay
//! back) each time, a third of an `la` pick.
//!
//! Each published snapshot gets a number no other snapshot of the
//! process gets. A reader loads the current number (a plain atomic load)
//! and looks for it among the few copies its thread holds; only on a miss
//! does it load the snapshot itself (and keep it, in place of the copy
//! kept longest). Numbers are never reused, so a copy cannot be mistaken
//! for another balancer's or an older one's. A thread holds at most
//! [`SLOTS`] snapshots, possibly outdated ones, until it reads others:
//! the memory bound of the cache.
//!
//! A hit moves nothing: a cluster reads two snapshots per attempt in
//! turn, and keeping the copies in most-recently-used order rotated the
//! slots (a `memmove`) at every read, which cost as much as the
//! `ArcSwap` load it saved.

use std::any::Any;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

/// Copies kept per thread: a cluster reads two snapshots per attempt
/// (its balancer's list and its per-server counters), and a thread
/// rarely calls more than four clusters at once.
const SLOTS: usize = 8;

/// The number of the next snapshot published, process-wide (0: an empty
/// slot).
static NEXT_NUMBER: AtomicU64 = AtomicU64::new(1);

/// A thread's copy of one snapshot.
struct Copy {
    /// The snapshot's number; 0 if the slot is empty.
    number: u64,
    /// The snapshot, type-erased so that one cache serves every `T`.
    /// Keeps `value` alive.
    _keep: Option<Arc<dyn Any + Send + Sync>>,
    /// `_keep`'s value as the `T` of the `LocalSnapshot` the number
    /// belongs to, checked once when the copy was made: a hit needs no
    /// type check.
    value: *const (),
}

/// A thread's copies, and the slot the next miss replaces (the one
/// filled longest ago).
struct Slots {
    copies: [Copy; SLOTS],
    next: usize,
}

thread_local! {
    static COPIES: RefCell<Slots> = const {
        RefCell::new(Slots {
            copies: [const {
                Copy {
                    number: 0,
                    _keep: None,
                    value: std::ptr::null(),
                }
            }; SLOTS],
            next: 0,
        })
    };
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct LocalSnapshot<T> {
    current: ArcSwap<T>,
    /// The number of `current`, published after it.
    number: AtomicU64,
}

impl<T: Default + Send + Sync + 'static> Default for LocalSnapshot<T> {
    fn default() -> Self {
        LocalSnapshot {
            current: ArcSwap::from_pointee(T::default()),
            number: AtomicU64::new(NEXT_NUMBER.fetch_add(1, Ordering::Relaxed)),
        }
    }
}

impl<T: Send + Sync + 'static> LocalSnapshot<T> {
    /// Publishes `value`: readers see it from their next read.
    pub(crate) fn store(&self, value: Arc<T>) {
        self.current.store(value);
        // Release: whoever reads the number finds the snapshot stored.
        self.number.store(
            NEXT_NUMBER.fetch_add(1, Ordering::Relaxed),
            Ordering::Release,
        );
    }

    /// The current snapshot, shared (a writer's read).
    pub(crate) fn load_full(&self) -> Arc<T> {
        self.current.load_full()
    }

    /// Runs `f` on the current snapshot, the thread's copy if it has
    /// it. `f` must not read another `LocalSnapshot` (it would read it
    /// without the cache).
    pub(crate) fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        let number = self.number.load(Ordering::Acquire);
        let mut f = Some(f);
        let cached = COPIES.try_with(|slots| {
            let Ok(mut slots) = slots.try_borrow_mut() else {
                return None; // Re-entered: the uncached read below.
            };
            let i = match slots.copies.iter().position(|c| c.number == number) {
                Some(i) => i,
                None => {
                    // Loaded after the number: this snapshot or a newer
                    // one, kept under the number (a newer number will
                    // miss and load again).
                    let fresh: Arc<T> = self.current.load_full();
                    let i = slots.next;
                    slots.next = (i + 1) % SLOTS;
                    slots.copies[i] = Copy {
                        number,
                        value: Arc::as_ptr(&fresh).cast(),
                        _keep: Some(fresh),
                    };
                    i
                }
            };
            let value = slots.copies[i].value.cast::<T>();
            // SAFETY: the copy's number is this snapshot's (numbers are
            // unique process-wide and each belongs to one
            // `LocalSnapshot<T>`), so `value` points to the `T` in the
            // `Arc<T>` that `_keep` holds, made by this `LocalSnapshot<T>`
            // above. The slots stay borrowed until `f` returns, so no
            // other read of this thread replaces the copy (a nested one
            // finds them borrowed and reads uncached) and `_keep` keeps
            // the `T` alive; `T: Sync` makes the shared reference fine
            // whichever thread made the `Arc`.
            let snapshot = unsafe { &*value };
            let f = f.take().expect("f runs once");
            Some(f(snapshot))
        });
        match cached {
            Ok(Some(r)) => r,
            // The thread is exiting, or `f` re-entered.
            _ => {
                let f = f.take().expect("f did not run");
                f(&self.current.load())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_see_each_store() {
        let a: LocalSnapshot<u32> = LocalSnapshot::default();
        let b: LocalSnapshot<String> = LocalSnapshot::default();
        assert_eq!(a.with(|v| *v), 0);
        a.store(Arc::new(7));
        b.store(Arc::new("b".into()));
        assert_eq!(a.with(|v| *v), 7);
        assert_eq!(b.with(|v| v.clone()), "b");
        // More snapshots than slots: evicted ones are loaded again.
        let many: Vec<LocalSnapshot<usize>> = (0..SLOTS + 2)
            .map(|i| {
                let s = LocalSnapshot::default();
                s.store(Arc::new(i));
                s
            })
            .collect();
        for _ in 0..2 {
            for (i, s) in many.iter().enumerate() {
                assert_eq!(s.with(|v| *v), i);
            }
        }
        a.store(Arc::new(8));
        assert_eq!(a.with(|v| *v), 8);
        // Another thread sees the latest too.
        let a = Arc::new(a);
        let a2 = a.clone();
        assert_eq!(
            std::thread::spawn(move || a2.with(|v| *v)).join().unwrap(),
            8
        );
        // A nested read of the same kind still works (uncached).
        assert_eq!(a.with(|x| b.with(|y| format!("{x}{y}"))), "8b");
    }
}
