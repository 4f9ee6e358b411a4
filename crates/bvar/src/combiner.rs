//! bRPC's `AgentCombiner`: per-thread agent cells combined on read.
//!
//! Every combiner takes an id from its kind's id pool; every thread keeps a
//! vector of slots indexed by that id, each holding the thread's agent (cell)
//! for the combiner. The combiner keeps the list of live agents and a
//! `global` value: a read folds `global` and every agent under the
//! combiner's lock. When a thread exits, its slots are dropped and each
//! agent's value is folded into `global` and the agent leaves the list, so
//! a thread that exits keeps its contribution. When a combiner is dropped
//! its id goes back to the pool; the next combiner with that id has a new
//! generation, so a thread finding a slot of an older generation replaces
//! the stale agent (bRPC resets and reuses it; replacing is simpler).
//! Until then a dropped combiner's agent stays allocated in each thread
//! that used it: memory is bounded by the peak number of live combiners
//! per kind times the threads, as in bRPC.
//!
//! The hot path is: thread-local lookup, bounds check, generation compare,
//! then the kind's update: a relaxed load and a relaxed store on the cell.
//! No read-modify-write: only the owning thread ever writes a cell through
//! this path (the slot is in its thread-local storage and the update does
//! not yield), readers only load. The one exception is a reset (a `Maxer`
//! wrapped in a window) which swaps cells from the sampler thread: an
//! update racing with it may store a value computed before the swap, so
//! that sample lands in the next interval instead of this one. Cells are
//! atomics, so none of this is a data race, only a documented skew.
//!
//! Fibers: fibrpc's runtime never moves a started user fiber to another
//! thread, but this code does not rely on it (bvar does not know about
//! fibers). An update looks up the slot of the thread it is running on and
//! finishes without yielding, so even a fiber that moved between two
//! updates would write each time to the cell of the thread it was on.
//!
//! Why no loom model: the only cross-thread interaction is relaxed
//! loads/stores of independent cells (no ordering is relied on: a reader
//! may see any recent value of each cell) plus a `Mutex` around the agent
//! list and `global`. There is no lock-free hand-off for loom to explore.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::LocalKey;

/// A family of combiners sharing one thread-local slot vector and id pool.
pub(crate) trait Kind: Sized + 'static {
    /// The per-thread cell.
    type Cell: Send + Sync + 'static;
    /// The combined value (also the value kept for exited threads).
    type Acc: Send + 'static;
    /// A fresh cell holding the identity.
    fn new_cell() -> Self::Cell;
    /// The identity of the combination.
    fn identity() -> Self::Acc;
    /// Folds a cell into an accumulated value.
    fn fold(acc: &mut Self::Acc, cell: &Self::Cell);
    /// This kind's thread-local slots.
    fn slots() -> &'static LocalKey<Slots<Self>>;
    /// This kind's id pool.
    fn ids() -> &'static Mutex<IdPool>;
}

/// Implements the storage half of [`Kind`] for a concrete type.
macro_rules! kind_storage {
    ($k:ty) => {
        fn slots() -> &'static ::std::thread::LocalKey<$crate::combiner::Slots<$k>> {
            ::std::thread_local! {
                static SLOTS: $crate::combiner::Slots<$k> =
                    const { $crate::combiner::Slots::new() };
            }
            &SLOTS
        }
        fn ids() -> &'static ::std::sync::Mutex<$crate::combiner::IdPool> {
            static IDS: ::std::sync::Mutex<$crate::combiner::IdPool> =
                ::std::sync::Mutex::new($crate::combiner::IdPool::new());
            &IDS
        }
    };
}
pub(crate) use kind_storage;

/// Ids of one kind: freed ids are reused (most recent first) so slot
/// vectors stay as short as the number of live combiners.
pub(crate) struct IdPool {
    next: usize,
    free: Vec<usize>,
}

impl IdPool {
    pub(crate) const fn new() -> Self {
        IdPool {
            next: 0,
            free: Vec::new(),
        }
    }

    fn take(&mut self) -> usize {
        if let Some(id) = self.free.pop() {
            return id;
        }
        self.next += 1;
        self.next - 1
    }
}

/// A thread's slots for one kind, indexed by combiner id.
///
/// An `UnsafeCell` rather than a `RefCell`: the borrow flag's increment
/// and decrement were a third of the update's cost. Only
/// [`Combiner::local_cell`] touches the vector, on its own thread, and it
/// runs no code that could re-enter it (see the `SAFETY` comments there).
pub(crate) struct Slots<K: Kind> {
    slots: UnsafeCell<Vec<Option<Slot<K>>>>,
}

impl<K: Kind> Slots<K> {
    pub(crate) const fn new() -> Self {
        Slots {
            slots: UnsafeCell::new(Vec::new()),
        }
    }
}

/// One thread's agent for one combiner generation. Dropping it (thread
/// exit, or replacement after the id was reused) retires the agent.
struct Slot<K: Kind> {
    generation: u64,
    agent: Arc<Agent<K>>,
}

impl<K: Kind> Drop for Slot<K> {
    fn drop(&mut self) {
        if let Some(shared) = self.agent.owner.upgrade() {
            let mut state = shared.lock();
            K::fold(&mut state.global, &self.agent.cell);
            state.agents.retain(|a| !Arc::ptr_eq(a, &self.agent));
        }
    }
}

/// An agent: one thread's cell, and the combiner it belongs to. Aligned to
/// two cache lines (the adjacent-line prefetcher pulls pairs) so that two
/// threads' agents, allocated back to back, never share a line: false
/// sharing would make every update a cache miss.
#[repr(align(128))]
pub(crate) struct Agent<K: Kind> {
    cell: K::Cell,
    owner: Weak<Shared<K>>,
}

impl<K: Kind> Agent<K> {
    /// The agent's cell.
    pub(crate) fn cell(&self) -> &K::Cell {
        &self.cell
    }
}

/// The state behind the combiner's lock.
pub(crate) struct State<K: Kind> {
    /// Value folded in from exited threads.
    pub(crate) global: K::Acc,
    /// Agents of live threads.
    pub(crate) agents: Vec<Arc<Agent<K>>>,
}

pub(crate) struct Shared<K: Kind> {
    id: usize,
    generation: u64,
    state: Mutex<State<K>>,
}

impl<K: Kind> Shared<K> {
    fn lock(&self) -> MutexGuard<'_, State<K>> {
        // A panic inside a fold leaves numbers, not broken invariants.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<K: Kind> Drop for Shared<K> {
    fn drop(&mut self) {
        let mut ids = K::ids().lock().unwrap_or_else(|e| e.into_inner());
        ids.free.push(self.id);
    }
}

/// Generations are unique across all kinds; 2^64 combiners never happen.
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// Per-thread cells of kind `K`, combined on read.
pub(crate) struct Combiner<K: Kind> {
    /// Copies of `shared.id` and `shared.generation`: the update path reads
    /// them without following the `Arc`.
    id: usize,
    generation: u64,
    shared: Arc<Shared<K>>,
}

impl<K: Kind> Combiner<K> {
    pub(crate) fn new() -> Self {
        let id = K::ids().lock().unwrap_or_else(|e| e.into_inner()).take();
        let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
        let state = Mutex::new(State {
            global: K::identity(),
            agents: Vec::new(),
        });
        Combiner {
            id,
            generation,
            shared: Arc::new(Shared {
                id,
                generation,
                state,
            }),
        }
    }

    /// Runs `f` on this thread's cell (the update path). `f` must not
    /// update a combiner of the same kind (it never does: it is one of this
    /// crate's relaxed load/store closures).
    #[inline(always)]
    pub(crate) fn with_cell<R>(&self, f: impl FnOnce(&K::Cell) -> R) -> R {
        match self.local_cell() {
            // SAFETY: the cell is inside an `Arc<Agent>` that this thread's
            // slot owns. Only this thread can drop that slot: by replacing
            // it in `install` (not while we run `f`, which does not reach
            // `local_cell` for this kind) or when its thread-local storage is
            // destroyed (after this call returns). So the pointer is valid
            // for the whole call.
            Some(cell) => f(unsafe { &*cell }),
            None => self.with_scratch_cell(f),
        }
    }

    /// Thread-local storage is being torn down (a destructor running at
    /// thread exit updates a variable): update a scratch cell and fold it
    /// straight into `global`. Out of line to keep the update path small
    /// enough to inline.
    #[cold]
    #[inline(never)]
    fn with_scratch_cell<R>(&self, f: impl FnOnce(&K::Cell) -> R) -> R {
        let cell = K::new_cell();
        let r = f(&cell);
        K::fold(&mut self.shared.lock().global, &cell);
        r
    }

    /// This thread's cell for this combiner, installed on first use; `None`
    /// while thread-local storage is being destroyed.
    #[inline(always)]
    fn local_cell(&self) -> Option<*const K::Cell> {
        let (id, generation) = (self.id, self.generation);
        K::slots()
            .try_with(|slots| {
                {
                    // SAFETY: the vector is only accessed on this thread,
                    // here and in `install`, and neither calls code that
                    // re-enters `local_cell` for this kind, so no `&mut` to
                    // it exists while this shared reference lives (it ends
                    // at this block's end, before `install`).
                    let vec = unsafe { &*slots.slots.get() };
                    if let Some(Some(slot)) = vec.get(id) {
                        if slot.generation == generation {
                            return &slot.agent.cell as *const K::Cell;
                        }
                    }
                }
                self.install(slots)
            })
            .ok()
    }

    #[cold]
    #[inline(never)]
    fn install(&self, slots: &Slots<K>) -> *const K::Cell {
        let shared = &self.shared;
        let agent = Arc::new(Agent {
            cell: K::new_cell(),
            owner: Arc::downgrade(shared),
        });
        shared.lock().agents.push(agent.clone());
        let cell = &agent.cell as *const K::Cell;
        let stale = {
            // SAFETY: as in `local_cell`: this thread only, no other
            // reference to the vector is live (the caller's ended), and
            // nothing in this block re-enters.
            let vec = unsafe { &mut *slots.slots.get() };
            if vec.len() <= shared.id {
                vec.resize_with(shared.id + 1, || None);
            }
            vec[shared.id].replace(Slot {
                generation: shared.generation,
                agent,
            })
        };
        // Dropped outside the borrow: it folds into its old combiner, which
        // is gone (its id was freed), so this is only a deallocation.
        drop(stale);
        cell
    }

    /// Runs `f` with the lock held over `global` and all live agents: reads
    /// (fold everything) and resets are written with this.
    pub(crate) fn with_all<R>(&self, f: impl FnOnce(&mut State<K>) -> R) -> R {
        f(&mut self.shared.lock())
    }

    /// The combined value of all threads, live and exited.
    pub(crate) fn combine(&self) -> K::Acc
    where
        K::Acc: Clone,
    {
        self.with_all(|state| {
            let mut acc = state.global.clone();
            for agent in &state.agents {
                K::fold(&mut acc, &agent.cell);
            }
            acc
        })
    }
}

impl<K: Kind> Default for Combiner<K> {
    fn default() -> Self {
        Combiner::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The adder's kind: a plain sum of per-thread cells.
    use crate::adder::AddKind as Sum;

    fn add(c: &Combiner<Sum>, v: i64) {
        c.with_cell(|cell| cell.store(cell.load(Ordering::Relaxed) + v, Ordering::Relaxed));
    }

    #[test]
    fn exited_threads_keep_their_contribution() {
        let c = Arc::new(Combiner::<Sum>::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| add(&c, 1)))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(c.combine(), 4000);
        assert!(c.with_all(|s| s.agents.is_empty()), "exited agents retired");
    }

    /// Combiners created and dropped on several threads at once (ids
    /// reused while other threads still hold slots of the old generation)
    /// never mix up their counts.
    #[test]
    fn churn_keeps_counts_apart() {
        let threads: Vec<_> = (0..4)
            .map(|t| {
                std::thread::spawn(move || {
                    for round in 0..200 {
                        let c = Arc::new(Combiner::<Sum>::new());
                        let helper = {
                            let c = c.clone();
                            std::thread::spawn(move || add(&c, 1000))
                        };
                        for _ in 0..round % 7 {
                            add(&c, 1);
                        }
                        add(&c, t);
                        helper.join().unwrap();
                        assert_eq!(c.combine(), 1000 + round % 7 + t);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
    }

    #[test]
    fn reused_id_starts_from_zero() {
        // Keep this thread's slots alive across both combiners.
        let a = Combiner::<Sum>::new();
        add(&a, 5);
        let id = a.id;
        drop(a);
        let b = Combiner::<Sum>::new();
        // Another test may grab the id in between; only check when reused.
        if b.id == id {
            assert_eq!(b.combine(), 0);
        }
        add(&b, 2);
        assert_eq!(b.combine(), 2);
    }
}
