//! Channel errors, shaped like `std::sync::mpsc`'s, plus the timeout and
//! interrupt cases std lacks.

use std::error::Error;
use std::fmt;

/// [`send`](super::Sender::send) failed because the receiver is gone; the
/// message is given back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SendError<T>(pub T);

/// Why [`try_send`](super::SyncSender::try_send) did not send; the message
/// is given back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TrySendError<T> {
    /// The channel is full (for a rendezvous channel: no receiver is
    /// waiting).
    Full(T),
    /// The receiver is gone.
    Disconnected(T),
}

/// Why [`send_timeout`](super::SyncSender::send_timeout) did not send; the
/// message is given back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum SendTimeoutError<T> {
    /// The channel stayed full (or, rendezvous, nobody took the message)
    /// until the deadline.
    Timeout(T),
    /// The receiver is gone.
    Disconnected(T),
}

/// Why [`send_interruptible`](super::SyncSender::send_interruptible) did not
/// send; the message is given back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum SendInterruptError<T> {
    /// The sending fiber was interrupted.
    Interrupted(T),
    /// The receiver is gone.
    Disconnected(T),
}

/// [`recv`](super::Receiver::recv) failed: the channel is empty and every
/// sender is gone.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub struct RecvError;

/// Why [`try_recv`](super::Receiver::try_recv) returned nothing.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum TryRecvError {
    /// No message now; senders remain.
    Empty,
    /// No message, and every sender is gone.
    Disconnected,
}

/// Why [`recv_timeout`](super::Receiver::recv_timeout) returned nothing.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum RecvTimeoutError {
    /// No message arrived before the deadline.
    Timeout,
    /// No message, and every sender is gone.
    Disconnected,
}

/// Why [`recv_interruptible`](super::Receiver::recv_interruptible) returned
/// nothing.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum RecvInterruptError {
    /// The receiving fiber was interrupted.
    Interrupted,
    /// No message, and every sender is gone.
    Disconnected,
}

// Debug without `T: Debug` (like std): the message is usually not printable.
impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError { .. }")
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Disconnected(_) => f.write_str("Disconnected(..)"),
        }
    }
}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            SendTimeoutError::Disconnected(_) => f.write_str("Disconnected(..)"),
        }
    }
}

impl<T> fmt::Debug for SendInterruptError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendInterruptError::Interrupted(_) => f.write_str("Interrupted(..)"),
            SendInterruptError::Disconnected(_) => f.write_str("Disconnected(..)"),
        }
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a closed channel")
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "sending on a full channel",
            TrySendError::Disconnected(_) => "sending on a closed channel",
        })
    }
}

impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendTimeoutError::Timeout(_) => "timed out waiting on send operation",
            SendTimeoutError::Disconnected(_) => "sending on a closed channel",
        })
    }
}

impl<T> fmt::Display for SendInterruptError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendInterruptError::Interrupted(_) => "interrupted while sending",
            SendInterruptError::Disconnected(_) => "sending on a closed channel",
        })
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receiving on a closed channel")
    }
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryRecvError::Empty => "receiving on an empty channel",
            TryRecvError::Disconnected => "receiving on a closed channel",
        })
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecvTimeoutError::Timeout => "timed out waiting on receive operation",
            RecvTimeoutError::Disconnected => "receiving on a closed channel",
        })
    }
}

impl fmt::Display for RecvInterruptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecvInterruptError::Interrupted => "interrupted while receiving",
            RecvInterruptError::Disconnected => "receiving on a closed channel",
        })
    }
}

impl<T> Error for SendError<T> {}
impl<T> Error for TrySendError<T> {}
impl<T> Error for SendTimeoutError<T> {}
impl<T> Error for SendInterruptError<T> {}
impl Error for RecvError {}
impl Error for TryRecvError {}
impl Error for RecvTimeoutError {}
impl Error for RecvInterruptError {}

impl<T> From<SendError<T>> for TrySendError<T> {
    fn from(e: SendError<T>) -> Self {
        TrySendError::Disconnected(e.0)
    }
}

impl<T> From<SendError<T>> for SendTimeoutError<T> {
    fn from(e: SendError<T>) -> Self {
        SendTimeoutError::Disconnected(e.0)
    }
}

impl From<RecvError> for TryRecvError {
    fn from(_: RecvError) -> Self {
        TryRecvError::Disconnected
    }
}

impl From<RecvError> for RecvTimeoutError {
    fn from(_: RecvError) -> Self {
        RecvTimeoutError::Disconnected
    }
}
