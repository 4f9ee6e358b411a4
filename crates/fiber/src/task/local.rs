//! Fiber-local storage (`fiber_local!`): values that belong to one fiber
//! and are dropped when it ends. On a plain thread they are thread-local.

use std::any::Any;
use std::cell::RefCell;

/// The values of one fiber, keyed by the address of their `LocalKey`.
///
/// No borrow of the map is held while user code runs (an initializer or a
/// destructor): each access is a short borrow that only finds, reserves,
/// fills or removes an entry, so user code that touches other fiber-locals
/// never meets a live `&mut` of the map.
#[derive(Default)]
pub(crate) struct LocalMap {
    /// `None` while the key's initializer runs.
    entries: Vec<(usize, Option<Box<dyn Any>>)>,
}

/// What [`LocalMap::reserve`] found.
enum Reserve {
    /// The value, boxed (stable while the map grows).
    Alive(*const dyn Any),
    /// The key's initializer is running: the initializer touched its own
    /// key.
    Initializing,
    /// Nothing yet; a marker now holds the place while the caller runs the
    /// initializer.
    Reserved,
}

/// How many times fiber exit drains the map: destructors may set
/// fiber-locals again (their own, or ones dropped already), which then
/// need dropping too. After this many rounds, what is left is leaked.
const MAX_DROP_ROUNDS: usize = 8;

impl LocalMap {
    /// Whether the fiber never touched a fiber-local (the common case: its
    /// end then skips the guarded drop).
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn reserve(&mut self, key: usize) -> Reserve {
        match self.entries.iter().find(|(k, _)| *k == key) {
            Some((_, Some(v))) => Reserve::Alive(&**v as *const dyn Any),
            Some((_, None)) => Reserve::Initializing,
            None => {
                self.entries.push((key, None));
                Reserve::Reserved
            }
        }
    }

    /// Stores the value whose place `reserve` held.
    fn fill(&mut self, key: usize, v: Box<dyn Any>) -> *const dyn Any {
        let slot = self
            .entries
            .iter_mut()
            .find(|(k, _)| *k == key)
            .expect("fiber_local! entry reserved");
        let p = &*v as *const dyn Any;
        slot.1 = Some(v);
        p
    }

    /// Drops the marker of an initializer that panicked.
    fn unreserve(&mut self, key: usize) {
        self.entries.retain(|(k, v)| *k != key || v.is_some());
    }

    /// Removes the `i`-th entry, to be dropped by the caller with no borrow
    /// of the map held.
    fn take_at(&mut self, i: usize) -> Option<Box<dyn Any>> {
        self.entries.remove(i).1
    }
}

/// Which map the running code's values live in.
fn with_map<R>(f: impl FnOnce(&mut LocalMap) -> R) -> R {
    if let Some(task) = super::current_task() {
        // SAFETY: the running fiber holds its own token, and `f` is one of
        // the `LocalMap` methods above, which run no user code: the borrow
        // ends before any other code can borrow the map again.
        return f(unsafe { &mut task.run_state().locals });
    }
    thread_local! {
        static THREAD: RefCell<LocalMap> = RefCell::new(LocalMap::default());
    }
    THREAD.with(|m| f(&mut m.borrow_mut()))
}

/// Drops the values of the fiber that ends on this thread (`task`, whose
/// body returned), until none is left: a destructor may set fiber-locals
/// again, and those must not outlive the fiber (the slot's next fiber would
/// see them, possibly on another thread). Values are dropped newest first,
/// one at a time with no borrow of the map held, so a destructor still sees
/// the values not dropped yet. After [`MAX_DROP_ROUNDS`] rounds the rest is
/// leaked, with a warning.
pub(crate) fn drop_fiber_locals(task: crate::runtime::task_meta::TaskRef) {
    for _ in 0..MAX_DROP_ROUNDS {
        // SAFETY: the ending fiber holds its token; the borrow ends here.
        let n = unsafe { task.run_state().locals.entries.len() };
        if n == 0 {
            return;
        }
        // The `n` values present now form a prefix of the map: destructors
        // only append (new entries wait for the next round).
        for i in (0..n).rev() {
            // SAFETY: as above; the value is dropped after the borrow ends.
            let v = unsafe { task.run_state().locals.take_at(i) };
            drop(v);
        }
    }
    // SAFETY: as above.
    let left = unsafe { std::mem::take(&mut task.run_state().locals) };
    if !left.is_empty() {
        tracing::warn!(
            fiber = ?task.id(),
            values = left.entries.len(),
            "fiber_local! destructors kept setting fiber-locals; leaking the rest"
        );
        std::mem::forget(left);
    }
}

/// A key for fiber-local values; create with [`fiber_local!`](crate::fiber_local).
pub struct LocalKey<T: 'static> {
    #[doc(hidden)]
    pub init: fn() -> T,
}

impl<T: 'static> LocalKey<T> {
    /// Runs `f` with this fiber's value, created with the initializer on
    /// first use. On a plain thread, the thread's value.
    ///
    /// The initializer runs with no borrow of the fiber's values held, so
    /// it may use other fiber-locals. An initializer that uses its own key
    /// (directly or through others) panics with "recursive initialization
    /// of a fiber_local!"; an initializer that panics leaves the key
    /// uninitialized, to be tried again on next use.
    ///
    /// A destructor that uses a fiber-local already dropped at fiber exit
    /// (its own included) initializes it again; that value is dropped in
    /// turn, and after a few such rounds the remaining values are leaked.
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        let key = self as *const Self as usize;
        let p = match with_map(|m| m.reserve(key)) {
            Reserve::Alive(p) => p,
            Reserve::Initializing => panic!("recursive initialization of a fiber_local!"),
            Reserve::Reserved => {
                struct Unreserve(usize);
                impl Drop for Unreserve {
                    fn drop(&mut self) {
                        with_map(|m| m.unreserve(self.0));
                    }
                }
                let guard = Unreserve(key);
                let v: Box<dyn Any> = Box::new((self.init)());
                std::mem::forget(guard);
                with_map(|m| m.fill(key, v))
            }
        };
        // SAFETY: `p` points into a box owned by the map of the running
        // fiber (or thread). Boxes are only dropped at fiber (thread) exit,
        // after user code, or while a destructor that cannot reach `f` runs:
        // the value outlives `f`.
        let v = unsafe { &*p };
        f(v.downcast_ref::<T>().expect("fiber_local type"))
    }
}

impl<T: 'static> LocalKey<T> {
    /// Runs `f` with this fiber's value if it was created already, else
    /// returns `None` without creating it: a read that costs a fiber
    /// which never used the key no allocation.
    pub fn with_existing<R>(&'static self, f: impl FnOnce(&T) -> R) -> Option<R> {
        let key = self as *const Self as usize;
        let p = with_map(|m| {
            m.entries
                .iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, v)| v.as_deref().map(|v| v as *const dyn Any))
        })?;
        // SAFETY: as in `with`: `p` points into a box owned by the running
        // fiber's (or thread's) map, dropped only at its exit.
        let v = unsafe { &*p };
        Some(f(v.downcast_ref::<T>().expect("fiber_local type")))
    }
}

/// Declares fiber-local statics: `fiber_local!(static NAME: Type = init;)`.
/// Each fiber sees its own value (use `Cell`/`RefCell` inside to mutate).
#[macro_export]
macro_rules! fiber_local {
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr; $($rest:tt)*) => {
        $(#[$attr])* $vis static $name: $crate::LocalKey<$t> = $crate::LocalKey {
            init: { fn __init() -> $t { $init } __init },
        };
        $crate::fiber_local!($($rest)*);
    };
    () => {};
}
