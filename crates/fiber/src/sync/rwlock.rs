//! A readers–writer lock that prefers writers, for fibers and threads.
//!
//! The algorithm is the futex RwLock of Rust's std (Linux), moved onto two
//! butexes and given deadlines. The `state` butex holds:
//!
//! - bits 0..30: `0` unlocked, `1..=MAX_READERS` that many readers,
//!   `WRITE_LOCKED` (all ones) one writer;
//! - bit 30 `READERS_WAITING`: readers sleep on `state`;
//! - bit 31 `WRITERS_WAITING`: writers sleep on `writer_notify`.
//!
//! Writer preference: a reader does not take the lock while any waiting bit
//! is set, so a steady stream of readers cannot starve a writer. On unlock
//! one writer is woken if one waits, else all readers. Waiting bits are
//! hints: a waiter that times out leaves its bit behind, which costs at
//! most one needless wake on the next unlock (every unlock that leaves a
//! bit set runs the wake path, which clears it), never a hang.

use super::{deadline_after, Stop, Wait};
use crate::butex::Butex;
use crate::loom::AtomicU32;
use crate::Interrupted;
use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const READ_LOCKED: u32 = 1;
const MASK: u32 = (1 << 30) - 1;
const WRITE_LOCKED: u32 = MASK;
const MAX_READERS: u32 = MASK - 1;
const READERS_WAITING: u32 = 1 << 30;
const WRITERS_WAITING: u32 = 1 << 31;

#[inline]
fn is_unlocked(s: u32) -> bool {
    s & MASK == 0
}
#[inline]
fn has_readers_waiting(s: u32) -> bool {
    s & READERS_WAITING != 0
}
#[inline]
fn has_writers_waiting(s: u32) -> bool {
    s & WRITERS_WAITING != 0
}
/// False also when the reader count would overflow, and when anyone waits:
/// then the unlocking side is busy handing the lock to a writer first.
#[inline]
fn is_read_lockable(s: u32) -> bool {
    s & MASK < MAX_READERS && !has_readers_waiting(s) && !has_writers_waiting(s)
}

struct RawRwLock {
    state: Butex,
    /// Bumped for every writer wake-up; writers wait on it.
    writer_notify: Butex,
}

impl RawRwLock {
    crate::loom::const_fn_unless_loom! {
        const fn new() -> Self {
            RawRwLock {
                state: Butex::new(0),
                writer_notify: Butex::new(0),
            }
        }
    }

    fn st(&self) -> &AtomicU32 {
        self.state.value()
    }

    #[inline]
    fn try_read(&self) -> bool {
        self.st()
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |s| {
                is_read_lockable(s).then(|| s + READ_LOCKED)
            })
            .is_ok()
    }

    #[inline]
    fn read(&self, w: &mut Wait) -> Result<(), Stop> {
        let s = self.st().load(Ordering::Relaxed);
        if is_read_lockable(s)
            && self
                .st()
                .compare_exchange_weak(s, s + READ_LOCKED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            return Ok(());
        }
        self.read_contended(w)
    }

    #[cold]
    fn read_contended(&self, w: &mut Wait) -> Result<(), Stop> {
        // Off, contention profiling costs this one relaxed load.
        match super::contention::probe() {
            None => self.read_wait(w),
            Some(p) => {
                let r = self.read_wait(w);
                p.finish();
                r
            }
        }
    }

    /// The waiting part of `read_contended`.
    #[inline]
    fn read_wait(&self, w: &mut Wait) -> Result<(), Stop> {
        let mut s = self.st().load(Ordering::Relaxed);
        loop {
            if is_read_lockable(s) {
                match self.st().compare_exchange_weak(
                    s,
                    s + READ_LOCKED,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Ok(()),
                    Err(e) => {
                        s = e;
                        continue;
                    }
                }
            }
            assert!(s & MASK != MAX_READERS, "too many read locks on RwLock");
            if !has_readers_waiting(s) {
                if let Err(e) = self.st().compare_exchange(
                    s,
                    s | READERS_WAITING,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    s = e;
                    continue;
                }
            }
            w.wait(&self.state, s | READERS_WAITING)?;
            s = self.st().load(Ordering::Relaxed);
        }
    }

    /// # Safety
    /// A read lock is held by the caller.
    #[inline]
    unsafe fn read_unlock(&self) {
        let s = self.st().fetch_sub(READ_LOCKED, Ordering::Release) - READ_LOCKED;
        // Readers only wait on a read-locked lock when a writer waits too,
        // so the last reader out only has to look at the writer bit.
        if is_unlocked(s) && has_writers_waiting(s) {
            self.wake_writer_or_readers(s);
        }
    }

    #[inline]
    fn try_write(&self) -> bool {
        self.st()
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |s| {
                is_unlocked(s).then(|| s + WRITE_LOCKED)
            })
            .is_ok()
    }

    #[inline]
    fn write(&self, w: &mut Wait) -> Result<(), Stop> {
        if self
            .st()
            .compare_exchange_weak(0, WRITE_LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(());
        }
        self.write_contended(w)
    }

    #[cold]
    fn write_contended(&self, w: &mut Wait) -> Result<(), Stop> {
        // Off, contention profiling costs this one relaxed load.
        match super::contention::probe() {
            None => self.write_wait(w),
            Some(p) => {
                let r = self.write_wait(w);
                p.finish();
                r
            }
        }
    }

    /// The waiting part of `write_contended`.
    #[inline]
    fn write_wait(&self, w: &mut Wait) -> Result<(), Stop> {
        let mut s = self.st().load(Ordering::Relaxed);
        let mut other_writers_waiting = 0;
        loop {
            if is_unlocked(s) {
                match self.st().compare_exchange_weak(
                    s,
                    s | WRITE_LOCKED | other_writers_waiting,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Ok(()),
                    Err(e) => {
                        s = e;
                        continue;
                    }
                }
            }
            if !has_writers_waiting(s) {
                if let Err(e) = self.st().compare_exchange(
                    s,
                    s | WRITERS_WAITING,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    s = e;
                    continue;
                }
            }
            // Others may wait too: keep the bit when we take the lock.
            other_writers_waiting = WRITERS_WAITING;
            // Read the notification counter *before* re-checking the state,
            // so a wake between the two is not missed.
            let seq = self.writer_notify.value().load(Ordering::Acquire);
            s = self.st().load(Ordering::Relaxed);
            if is_unlocked(s) || !has_writers_waiting(s) {
                continue;
            }
            w.wait(&self.writer_notify, seq)?;
            s = self.st().load(Ordering::Relaxed);
        }
    }

    /// # Safety
    /// The write lock is held by the caller.
    #[inline]
    unsafe fn write_unlock(&self) {
        let s = self.st().fetch_sub(WRITE_LOCKED, Ordering::Release) - WRITE_LOCKED;
        if has_writers_waiting(s) || has_readers_waiting(s) {
            self.wake_writer_or_readers(s);
        }
    }

    /// After an unlock left waiting bits: wake one writer if one waits,
    /// else every reader. If the lock is retaken meanwhile, its next unlock
    /// does this instead.
    #[cold]
    fn wake_writer_or_readers(&self, mut s: u32) {
        debug_assert!(is_unlocked(s));
        if s == WRITERS_WAITING {
            match self
                .st()
                .compare_exchange(s, 0, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    self.wake_writer();
                    return;
                }
                Err(e) => s = e,
            }
        }
        if s == READERS_WAITING + WRITERS_WAITING {
            if self
                .st()
                .compare_exchange(s, READERS_WAITING, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
            {
                return;
            }
            if self.wake_writer() {
                return;
            }
            // No writer was actually asleep (it timed out, or is about to
            // look at the state again): let the readers in.
            s = READERS_WAITING;
        }
        if s == READERS_WAITING
            && self
                .st()
                .compare_exchange(s, 0, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.state.wake_all();
        }
    }

    /// Wakes one writer; true if one was asleep (the butex count is exact:
    /// a writer whose wait already timed out is not counted).
    fn wake_writer(&self) -> bool {
        self.writer_notify.value().fetch_add(1, Ordering::Release);
        self.writer_notify.wake_one_queued() > 0
    }
}

/// A readers–writer lock protecting a `T`: many readers or one writer at a
/// time. Writers are preferred: once a writer waits, new readers wait
/// behind it. No poisoning.
///
/// ```
/// use fibrpc_fiber::sync::RwLock;
///
/// let l = RwLock::new(vec![1, 2]);
/// {
///     let a = l.read();
///     let b = l.read();
///     assert_eq!(a.len() + b.len(), 4);
/// }
/// l.write().push(3);
/// assert_eq!(*l.read(), [1, 2, 3]);
/// ```
pub struct RwLock<T: ?Sized> {
    raw: RawRwLock,
    data: UnsafeCell<T>,
}

// SAFETY: readers share `&T` across threads (needs `T: Sync`), a writer
// gets `&mut T` from any thread (needs `T: Send`); same bounds as std.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}
// SAFETY: owning the lock is owning the `T`.
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}

/// Shared access to a read-locked [`RwLock`]; unlocks when dropped.
/// `!Send`, like std's.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized + 'a> {
    lock: &'a RwLock<T>,
    _not_send: PhantomData<*const ()>,
}

/// Exclusive access to a write-locked [`RwLock`]; unlocks when dropped.
/// `!Send`, like std's.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized + 'a> {
    lock: &'a RwLock<T>,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing a guard shares only `&T` (`Deref`), safe when `T: Sync`,
// as for std's guards. The `*const ()` markers keep the auto impls (which
// would follow `&RwLock<T>`) out of the way.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}
// SAFETY: as above; `&RwLockWriteGuard` gives no `&mut T`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

impl<T> RwLock<T> {
    crate::loom::const_fn_unless_loom! {
        /// An unlocked lock holding `value`.
        pub const fn new(value: T) -> Self {
            RwLock {
                raw: RawRwLock::new(),
                data: UnsafeCell::new(value),
            }
        }
    }

    /// Consumes the lock and returns the data.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    fn read_guard(&self) -> RwLockReadGuard<'_, T> {
        RwLockReadGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    fn write_guard(&self) -> RwLockWriteGuard<'_, T> {
        RwLockWriteGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    /// Takes a read lock, waiting while a writer holds or waits for the
    /// lock. Not interruptible. Taking a second read lock while holding one
    /// may deadlock if a writer queued in between (writer preference).
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        let _ = self.raw.read(&mut Wait::forever());
        self.read_guard()
    }

    /// Takes a read lock if possible without waiting.
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        self.raw.try_read().then(|| self.read_guard())
    }

    /// Takes a read lock, waiting at most `timeout`.
    pub fn read_timeout(&self, timeout: Duration) -> Option<RwLockReadGuard<'_, T>> {
        self.read_opt(deadline_after(timeout))
    }

    /// Takes a read lock, waiting until `deadline` at most.
    pub fn read_deadline(&self, deadline: Instant) -> Option<RwLockReadGuard<'_, T>> {
        self.read_opt(Some(deadline))
    }

    fn read_opt(&self, deadline: Option<Instant>) -> Option<RwLockReadGuard<'_, T>> {
        let r = self.raw.read(&mut Wait::new(deadline, false));
        r.ok().map(|()| self.read_guard())
    }

    /// Takes a read lock unless the calling fiber is interrupted first.
    pub fn read_interruptible(&self) -> Result<RwLockReadGuard<'_, T>, Interrupted> {
        match self.raw.read(&mut Wait::new(None, true)) {
            Ok(()) => Ok(self.read_guard()),
            Err(_) => Err(Interrupted),
        }
    }

    /// Takes the write lock, waiting for readers and writers to leave. Not
    /// interruptible.
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        let _ = self.raw.write(&mut Wait::forever());
        self.write_guard()
    }

    /// Takes the write lock if possible without waiting.
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        self.raw.try_write().then(|| self.write_guard())
    }

    /// Takes the write lock, waiting at most `timeout`.
    pub fn write_timeout(&self, timeout: Duration) -> Option<RwLockWriteGuard<'_, T>> {
        self.write_opt(deadline_after(timeout))
    }

    /// Takes the write lock, waiting until `deadline` at most.
    pub fn write_deadline(&self, deadline: Instant) -> Option<RwLockWriteGuard<'_, T>> {
        self.write_opt(Some(deadline))
    }

    fn write_opt(&self, deadline: Option<Instant>) -> Option<RwLockWriteGuard<'_, T>> {
        let r = self.raw.write(&mut Wait::new(deadline, false));
        r.ok().map(|()| self.write_guard())
    }

    /// Takes the write lock unless the calling fiber is interrupted first.
    pub fn write_interruptible(&self) -> Result<RwLockWriteGuard<'_, T>, Interrupted> {
        match self.raw.write(&mut Wait::new(None, true)) {
            Ok(()) => Ok(self.write_guard()),
            Err(_) => Err(Interrupted),
        }
    }

    /// The data, through a unique borrow (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(value: T) -> Self {
        RwLock::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a read lock is held: only shared access exists.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this guard holds one read lock.
        unsafe { self.lock.raw.read_unlock() }
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the write lock is held: no other access exists.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes the borrow unique.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this guard holds the write lock.
        unsafe { self.lock.raw.write_unlock() }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
