//! A mutex for fibers and threads: bRPC's (and Drepper's) three-state
//! futex mutex on a butex.
//!
//! Butex value: `0` unlocked, `1` locked with no waiter, `3` locked and
//! maybe waited on. Lock is one CAS `0 → 1`; unlock is one swap to `0`,
//! and only when the old value was `3` does it touch the waiter list. A
//! contender swaps in `3` (so the holder's unlock will wake someone) and
//! waits while the value is `3`. A contender that gets the lock through that
//! swap holds it in state `3` even if nobody else waits: the price is at
//! most one wake on an empty butex (a fence and a load), never a lost wake.

use super::{deadline_after, Stop, Wait};
use crate::butex::Butex;
use crate::Interrupted;
use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const UNLOCKED: u32 = 0;
const LOCKED: u32 = 1;
const CONTENDED: u32 = 3;

/// The lock word without data; shared by [`Mutex`] and the channels.
pub(crate) struct RawMutex {
    butex: Butex,
}

impl RawMutex {
    crate::loom::const_fn_unless_loom! {
        pub(crate) const fn new() -> Self {
            RawMutex {
                butex: Butex::new(UNLOCKED),
            }
        }
    }

    #[inline]
    pub(crate) fn try_lock(&self) -> bool {
        self.butex
            .value()
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    #[inline]
    pub(crate) fn lock(&self) {
        if !self.try_lock() {
            // Cannot fail: no deadline and not interruptible.
            let _ = self.lock_slow(&mut Wait::forever());
        }
    }

    /// Locks, waiting as `w` allows.
    #[inline]
    pub(crate) fn lock_with(&self, w: &mut Wait) -> Result<(), Stop> {
        if self.try_lock() {
            return Ok(());
        }
        self.lock_slow(w)
    }

    #[cold]
    fn lock_slow(&self, w: &mut Wait) -> Result<(), Stop> {
        let v = self.butex.value();
        // A short spin: on 2+ cores the holder is often mid-critical-section
        // on another thread, and parking costs far more than a few loads.
        // Fibers on the holder's own worker gain nothing from it, and it is
        // short enough not to matter to them.
        for _ in 0..SPIN {
            if v.load(Ordering::Relaxed) == UNLOCKED
                && v.compare_exchange_weak(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return Ok(());
            }
            std::hint::spin_loop();
        }
        // Off, contention profiling costs this one relaxed load, and only
        // here, after the spin, when the lock really is contended.
        match super::contention::probe() {
            None => self.lock_wait(w),
            Some(p) => {
                let r = self.lock_wait(w);
                p.finish();
                r
            }
        }
    }

    /// The parking part of `lock_slow`.
    #[inline]
    fn lock_wait(&self, w: &mut Wait) -> Result<(), Stop> {
        let v = self.butex.value();
        loop {
            // Taking the lock this way leaves it CONTENDED: we cannot know
            // whether others still wait, so our unlock must wake.
            if v.swap(CONTENDED, Ordering::Acquire) == UNLOCKED {
                return Ok(());
            }
            w.wait(&self.butex, CONTENDED)?;
        }
    }

    /// # Safety
    /// The lock is held (by the caller's logical owner).
    #[inline]
    pub(crate) unsafe fn unlock(&self) {
        if self.butex.value().swap(UNLOCKED, Ordering::Release) == CONTENDED {
            self.wake();
        }
    }

    #[cold]
    fn wake(&self) {
        self.butex.wake_one_queued();
    }

    pub(crate) fn is_locked(&self) -> bool {
        self.butex.value().load(Ordering::Relaxed) != UNLOCKED
    }
}

/// Spins of the contended path before parking (see `lock_slow`).
/// Measured with `examples/sync_micro.rs` (4 fibers on 2 workers, ~50 ns
/// critical sections, noisy shared 2-vCPU host): 44–58 ns/op with 40
/// spins against 59–78 ns/op with none; plain threads were within noise.
const SPIN: u32 = 40;

/// A mutual exclusion lock protecting a `T`, usable from fibers and threads.
///
/// Like `std::sync::Mutex` without poisoning: [`lock`](Self::lock) returns
/// the guard directly. A fiber that waits for the lock suspends; its worker
/// runs other fibers meanwhile.
///
/// ```
/// use fibrpc_fiber::sync::Mutex;
/// use std::sync::Arc;
///
/// let m = Arc::new(Mutex::new(0));
/// let hs: Vec<_> = (0..4)
///     .map(|_| {
///         let m = m.clone();
///         fibrpc_fiber::spawn(move || *m.lock() += 1)
///     })
///     .collect();
/// for h in hs {
///     h.join().unwrap();
/// }
/// assert_eq!(*m.lock(), 4);
/// ```
pub struct Mutex<T: ?Sized> {
    raw: RawMutex,
    data: UnsafeCell<T>,
}

// SAFETY: the mutex hands out access to `data` to one owner at a time, so
// sharing it needs only that `T` may move between threads (as std).
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}
// SAFETY: owning the mutex is owning the `T`.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}

/// Access to a locked [`Mutex`]'s data; unlocks when dropped.
///
/// `!Send` like `std`'s guard: the lock is released on the thread that took
/// it. A fiber keeps it across waits soundly because started fibers never
/// change worker.
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized + 'a> {
    pub(super) mutex: &'a Mutex<T>,
    /// `!Send` and `!Sync`; `Sync` is given back below for `T: Sync`.
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing a guard only shares `&T` (through `Deref`), so it is
// safe exactly when `T: Sync` — the same bound as std's guard. (Without the
// `*const ()` marker the auto impl would follow `&Mutex<T>` and require
// only `T: Send`, which would let a `Cell` be shared across threads.)
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<T> Mutex<T> {
    crate::loom::const_fn_unless_loom! {
        /// An unlocked mutex holding `value`.
        pub const fn new(value: T) -> Self {
            Mutex {
                raw: RawMutex::new(),
                data: UnsafeCell::new(value),
            }
        }
    }

    /// Consumes the mutex and returns the data.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    #[inline]
    fn guard(&self) -> MutexGuard<'_, T> {
        MutexGuard {
            mutex: self,
            _not_send: PhantomData,
        }
    }

    /// Locks, waiting as long as it takes. Interrupts do not end the wait
    /// (they stay pending; see [`lock_interruptible`](Self::lock_interruptible)).
    ///
    /// Locking a mutex the caller already holds deadlocks.
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.raw.lock();
        self.guard()
    }

    /// Locks if that is possible without waiting.
    #[inline]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.raw.try_lock().then(|| self.guard())
    }

    /// Locks, waiting at most `timeout`; `None` if it did not get the lock.
    pub fn lock_timeout(&self, timeout: Duration) -> Option<MutexGuard<'_, T>> {
        self.lock_deadline_opt(deadline_after(timeout))
    }

    /// Locks, waiting until `deadline` at most; `None` if it did not get the
    /// lock.
    pub fn lock_deadline(&self, deadline: Instant) -> Option<MutexGuard<'_, T>> {
        self.lock_deadline_opt(Some(deadline))
    }

    fn lock_deadline_opt(&self, deadline: Option<Instant>) -> Option<MutexGuard<'_, T>> {
        self.raw
            .lock_with(&mut Wait::new(deadline, false))
            .ok()
            .map(|()| self.guard())
    }

    /// Locks, unless the calling fiber is [interrupted](crate::interrupt)
    /// while it waits. A pending interrupt ends the call only if the lock
    /// is not free (it is then consumed); if the lock is free it stays
    /// pending. On a plain thread this is [`lock`](Self::lock).
    pub fn lock_interruptible(&self) -> Result<MutexGuard<'_, T>, Interrupted> {
        match self.raw.lock_with(&mut Wait::new(None, true)) {
            Ok(()) => Ok(self.guard()),
            Err(_) => Err(Interrupted),
        }
    }

    /// Whether the mutex is locked right now (a racy snapshot, for
    /// diagnostics and assertions).
    pub fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }

    /// The data, through a unique borrow (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    pub(super) fn raw(&self) -> &RawMutex {
        &self.raw
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Self {
        Mutex::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// Releases the lock without running the guard's destructor, returning
    /// the mutex (for `Condvar`, which relocks it).
    pub(super) fn unlock_into_mutex(self) -> &'a Mutex<T> {
        let m = self.mutex;
        std::mem::forget(self);
        // SAFETY: the guard proved we hold the lock, and it is gone now, so
        // nothing else will unlock it or touch the data through it.
        unsafe { m.raw.unlock() };
        m
    }

    /// A guard for a mutex the caller has just locked.
    pub(super) fn relocked(mutex: &'a Mutex<T>) -> Self {
        mutex.guard()
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard means we hold the lock: no other access exists.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this borrow unique.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the guard's existence means the lock is held by us.
        unsafe { self.mutex.raw.unlock() }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
