//! A read-mostly snapshot whose readers keep a thread-local copy, for the
//! `la` balancer's list: a pick reads it twice (select and feedback), and
//! an `ArcSwap` load costs two atomic read-modify-writes of the reading
//! thread's debt slot (take and pay back) each time, a third of a pick.
//!
//! Each published snapshot gets a number no other snapshot of the
//! process gets. A reader loads the current number (a plain atomic load)
//! and looks for it among the few copies its thread holds; only on a miss
//! does it load the snapshot itself (and keep it). Numbers are never
//! reused, so a copy cannot be mistaken for another balancer's or an
//! older one's. A thread holds at most [`SLOTS`] snapshots, possibly
//! outdated ones, until it reads others: the memory bound of the cache.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

/// Copies kept per thread (a thread rarely uses more `la` balancers at
/// once).
const SLOTS: usize = 4;

/// The number of the next snapshot published, process-wide.
static NEXT_NUMBER: AtomicU64 = AtomicU64::new(1);

/// What a thread keeps: a snapshot's number and the snapshot, most
/// recently used first. Type-erased, so one cache serves every `T`.
type Slots = [Option<(u64, Arc<dyn std::any::Any + Send + Sync>)>; SLOTS];

thread_local! {
    static COPIES: RefCell<Slots> = const { RefCell::new([const { None }; SLOTS]) };
}

/// See the module docs.
#[derive(Debug)]
pub(super) struct LocalSnapshot<T> {
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
    pub(super) fn store(&self, value: Arc<T>) {
        self.current.store(value);
        // Release: whoever reads the number finds the snapshot stored.
        self.number.store(
            NEXT_NUMBER.fetch_add(1, Ordering::Relaxed),
            Ordering::Release,
        );
    }

    /// The current snapshot, shared (a writer's read).
    pub(super) fn load_full(&self) -> Arc<T> {
        self.current.load_full()
    }

    /// Runs `f` on the current snapshot, the thread's copy if it has
    /// it. `f` must not read another `LocalSnapshot` (it would read it
    /// without the cache).
    pub(super) fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        let number = self.number.load(Ordering::Acquire);
        let mut f = Some(f);
        let cached = COPIES.try_with(|copies| {
            let Ok(mut copies) = copies.try_borrow_mut() else {
                return None; // Re-entered: the uncached read below.
            };
            let hit = copies
                .iter()
                .position(|c| matches!(c, Some((n, _)) if *n == number));
            match hit {
                Some(0) => {}
                Some(i) => copies[..=i].rotate_right(1),
                None => {
                    // Loaded after the number: this snapshot or a newer
                    // one, kept under the number (a newer number will
                    // miss and load again).
                    let fresh: Arc<dyn std::any::Any + Send + Sync> = self.current.load_full();
                    copies.rotate_right(1);
                    copies[0] = Some((number, fresh));
                }
            }
            let (_, snapshot) = copies[0].as_ref().expect("slot 0 was just filled");
            let snapshot = snapshot
                .downcast_ref::<T>()
                .expect("numbers are unique, so a copy has its snapshot's type");
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
