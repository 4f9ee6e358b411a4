//! Closing a connection after its last answer: the input side stops
//! first (nothing new is read), then the connection fails once every
//! queued byte is written.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::Socket;
use crate::{errno, RpcError};

impl Socket {
    /// Closes the connection once everything queued is written. Call it
    /// after the last answer was queued.
    pub fn close_after_flush(self: &Arc<Self>) {
        // A TLS peer learns the close was meant (not a truncation).
        self.queue_close_notify();
        self.close_when_flushed.store(true, Ordering::SeqCst);
        if self.unwritten.load(Ordering::SeqCst) == 0 {
            self.set_failed(closed_error());
        }
    }

    /// Called by the writer after bytes left the queue with `unwritten`
    /// becoming `left`.
    pub(crate) fn on_flushed(&self, left: usize) {
        if left == 0 && self.close_when_flushed.load(Ordering::SeqCst) {
            self.set_failed(closed_error());
        }
    }

    /// No more input is read from this connection.
    pub(crate) fn close_input(&self) {
        self.input_closed.store(true, Ordering::Release);
    }

    /// Whether [`close_input`](Self::close_input) was called.
    pub(crate) fn input_closed(&self) -> bool {
        self.input_closed.load(Ordering::Acquire)
    }
}

fn closed_error() -> RpcError {
    RpcError::new(errno::ECLOSE, "closed after the last response")
}
