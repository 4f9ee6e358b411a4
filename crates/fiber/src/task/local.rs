//! Fiber-local storage (`fiber_local!`): values that belong to one fiber
//! and are dropped when it ends. On a plain thread they are thread-local.

use std::any::Any;
use std::cell::RefCell;

/// The values of one fiber, keyed by the address of their `LocalKey`.
#[derive(Default)]
pub(crate) struct LocalMap {
    entries: Vec<(usize, Box<dyn Any>)>,
}

impl LocalMap {
    /// Whether the fiber never touched a fiber-local (the common case: its
    /// end then skips the guarded drop).
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn get_or_insert<T: 'static>(&mut self, key: usize, init: fn() -> T) -> *const T {
        if let Some((_, v)) = self.entries.iter().find(|(k, _)| *k == key) {
            return v.downcast_ref::<T>().expect("fiber_local type") as *const T;
        }
        let b: Box<dyn Any> = Box::new(init());
        let p = b.downcast_ref::<T>().expect("fiber_local type") as *const T;
        self.entries.push((key, b));
        p
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
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        let key = self as *const Self as usize;
        if let Some(task) = super::current_task() {
            // SAFETY: the running fiber holds its own token; the map borrow
            // ends at once. Values are boxed, so the pointer stays valid
            // while the map grows, until the fiber ends (after `f`).
            let p = unsafe { task.run_state().locals.get_or_insert(key, self.init) };
            // SAFETY: see above; the value is only dropped at fiber exit.
            return f(unsafe { &*p });
        }
        thread_local! {
            static THREAD: RefCell<LocalMap> = RefCell::new(LocalMap::default());
        }
        let p = THREAD.with(|m| m.borrow_mut().get_or_insert(key, self.init));
        // SAFETY: thread values live until the thread ends; boxed, so stable.
        f(unsafe { &*p })
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
