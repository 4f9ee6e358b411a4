//! Multi-producer, single-consumer FIFO channels for fibers and threads,
//! with the API and disconnection semantics of `std::sync::mpsc`.
//!
//! - [`channel`]: unbounded; [`Sender::send`] never blocks.
//! - [`sync_channel`]`(cap)`: bounded; [`SyncSender::send`] blocks while
//!   `cap` messages are queued. **`cap == 0` is a rendezvous, as in std**:
//!   `send` returns only once the receiver has taken the message, and
//!   `try_send` succeeds only if the receiver is already waiting in `recv`.
//!
//! Disconnection: when every sender is gone, `recv` still delivers the
//! buffered messages, then fails with [`RecvError`]; when the receiver is
//! gone, sends fail and give the message back, buffered messages are
//! dropped, and blocked senders wake up with the error.
//!
//! Blocking calls suspend a fiber (its worker runs others) or block a
//! thread; both kinds may be mixed freely on either end. Every blocking
//! call has `_timeout`/`_deadline` forms; `recv_interruptible` and
//! `send_interruptible` end on [`crate::interrupt`], the plain forms keep
//! waiting and leave the interrupt pending.
//!
//! ```
//! use fibrpc_fiber::sync::mpsc;
//!
//! let (tx, rx) = mpsc::channel();
//! for i in 0..4 {
//!     let tx = tx.clone();
//!     fibrpc_fiber::spawn(move || tx.send(i).unwrap());
//! }
//! drop(tx);
//! let mut got: Vec<i32> = rx.iter().collect();
//! got.sort();
//! assert_eq!(got, [0, 1, 2, 3]);
//! ```

mod chan;
mod error;

pub use error::{
    RecvError, RecvInterruptError, RecvTimeoutError, SendError, SendInterruptError,
    SendTimeoutError, TryRecvError, TrySendError,
};

use self::chan::{Chan, RecvFail, SendFail, UNBOUNDED};
use super::{deadline_after, Stop, Wait};
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An unbounded channel: sends never block.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan::new(UNBOUNDED));
    (Sender { chan: chan.clone() }, Receiver::new(chan))
}

/// A bounded channel holding at most `bound` messages; `send` blocks while
/// it is full. `bound == 0` makes a rendezvous channel (see the module
/// docs).
pub fn sync_channel<T>(bound: usize) -> (SyncSender<T>, Receiver<T>) {
    // `UNBOUNDED` is reserved; nobody can queue usize::MAX messages anyway.
    let chan = Arc::new(Chan::new(bound.min(UNBOUNDED - 1)));
    (SyncSender { chan: chan.clone() }, Receiver::new(chan))
}

/// The sending half of a [`channel`]. Clone it for more producers.
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

/// The sending half of a [`sync_channel`]. Clone it for more producers.
pub struct SyncSender<T> {
    chan: Arc<Chan<T>>,
}

/// The receiving half of a channel. There is one: it can be moved to
/// another thread or fiber (`Send`) but not shared (`!Sync`).
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
    _not_sync: PhantomData<Cell<()>>,
}

impl<T> Sender<T> {
    /// Queues `msg`; never blocks. Fails (giving `msg` back) if the
    /// receiver is gone.
    pub fn send(&self, msg: T) -> Result<(), SendError<T>> {
        match self.chan.send(msg, None) {
            Ok(()) => Ok(()),
            Err(SendFail::Disconnected(m) | SendFail::Full(m) | SendFail::Stopped(m)) => {
                Err(SendError(m))
            }
        }
    }
}

impl<T> SyncSender<T> {
    /// Sends `msg`, waiting while the channel is full (rendezvous: until
    /// the receiver took it). Fails if the receiver is gone (also while
    /// waiting). Not interruptible.
    pub fn send(&self, msg: T) -> Result<(), SendError<T>> {
        match self.chan.send(msg, Some(&mut Wait::forever())) {
            Ok(()) => Ok(()),
            Err(SendFail::Disconnected(m) | SendFail::Full(m) | SendFail::Stopped(m)) => {
                Err(SendError(m))
            }
        }
    }

    /// Sends `msg` only if that needs no waiting.
    pub fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        match self.chan.send(msg, None) {
            Ok(()) => Ok(()),
            Err(SendFail::Disconnected(m)) => Err(TrySendError::Disconnected(m)),
            Err(SendFail::Full(m) | SendFail::Stopped(m)) => Err(TrySendError::Full(m)),
        }
    }

    /// Like [`send`](Self::send), waiting at most `timeout`.
    pub fn send_timeout(&self, msg: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_opt(msg, deadline_after(timeout))
    }

    /// Like [`send`](Self::send), waiting until `deadline` at most.
    pub fn send_deadline(&self, msg: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.send_opt(msg, Some(deadline))
    }

    fn send_opt(&self, msg: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        match self.chan.send(msg, Some(&mut Wait::new(deadline, false))) {
            Ok(()) => Ok(()),
            Err(SendFail::Disconnected(m)) => Err(SendTimeoutError::Disconnected(m)),
            Err(SendFail::Full(m) | SendFail::Stopped(m)) => Err(SendTimeoutError::Timeout(m)),
        }
    }

    /// Like [`send`](Self::send), but an [interrupt](crate::interrupt) of
    /// the calling fiber ends the wait and gives the message back.
    pub fn send_interruptible(&self, msg: T) -> Result<(), SendInterruptError<T>> {
        match self.chan.send(msg, Some(&mut Wait::new(None, true))) {
            Ok(()) => Ok(()),
            Err(SendFail::Disconnected(m)) => Err(SendInterruptError::Disconnected(m)),
            Err(SendFail::Full(m) | SendFail::Stopped(m)) => {
                Err(SendInterruptError::Interrupted(m))
            }
        }
    }

    /// The channel's bound.
    pub fn capacity(&self) -> usize {
        self.chan.capacity().unwrap_or(usize::MAX)
    }
}

impl<T> Receiver<T> {
    fn new(chan: Arc<Chan<T>>) -> Self {
        Receiver {
            chan,
            _not_sync: PhantomData,
        }
    }

    /// Takes the next message, waiting while the channel is empty. Fails
    /// once the channel is empty and every sender is gone. Not
    /// interruptible (see [`recv_interruptible`](Self::recv_interruptible)).
    pub fn recv(&self) -> Result<T, RecvError> {
        self.chan
            .recv(Some(&mut Wait::forever()))
            .map_err(|_| RecvError)
    }

    /// Takes the next message if there is one.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.chan.recv(None).map_err(|e| match e {
            RecvFail::Disconnected => TryRecvError::Disconnected,
            RecvFail::Empty | RecvFail::Stopped(_) => TryRecvError::Empty,
        })
    }

    /// Like [`recv`](Self::recv), waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_opt(deadline_after(timeout))
    }

    /// Like [`recv`](Self::recv), waiting until `deadline` at most.
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.recv_opt(Some(deadline))
    }

    fn recv_opt(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        self.chan
            .recv(Some(&mut Wait::new(deadline, false)))
            .map_err(|e| match e {
                RecvFail::Disconnected => RecvTimeoutError::Disconnected,
                RecvFail::Empty | RecvFail::Stopped(_) => RecvTimeoutError::Timeout,
            })
    }

    /// Like [`recv`](Self::recv), but an [interrupt](crate::interrupt) of
    /// the calling fiber (pending or arriving) ends the wait. A message that
    /// arrives together with the interrupt is returned, and the interrupt
    /// stays pending.
    pub fn recv_interruptible(&self) -> Result<T, RecvInterruptError> {
        self.chan
            .recv(Some(&mut Wait::new(None, true)))
            .map_err(|e| match e {
                RecvFail::Disconnected => RecvInterruptError::Disconnected,
                RecvFail::Empty | RecvFail::Stopped(Stop::Interrupted | Stop::TimedOut) => {
                    RecvInterruptError::Interrupted
                }
            })
    }

    /// Iterates over messages, blocking for each, until disconnection.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// Iterates over the messages available now, without blocking.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.add_sender();
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Clone for SyncSender<T> {
    fn clone(&self) -> Self {
        self.chan.add_sender();
        SyncSender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender();
    }
}

impl<T> Drop for SyncSender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender();
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.chan.drop_receiver();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for SyncSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncSender").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

/// Blocking iterator over a [`Receiver`]'s messages; ends on
/// disconnection.
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

/// Non-blocking iterator over the messages available now.
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

/// Owning blocking iterator over a [`Receiver`]'s messages.
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}
