//! Responses in request order, and closing once they are written
//! (HTTP/1.1: pipelined requests run in parallel fibers, but their
//! responses must leave in the order the requests came).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use fibrpc_iobuf::IOBuf;

use super::Socket;
use crate::{errno, RpcError};

/// Responses that finished before an earlier request's.
#[derive(Debug, Default)]
pub(crate) struct ResponseOrder {
    /// The sequence number whose response goes out next.
    next: u64,
    parked: BTreeMap<u64, (IOBuf, bool)>,
}

impl Socket {
    /// Writes the response to request number `seq` of this connection
    /// once every earlier response is written; `close`: the connection
    /// closes after it (and later responses are dropped).
    pub(crate) fn write_in_order(self: &Arc<Self>, seq: u64, data: IOBuf, close: bool) {
        let mut order = self.order.lock().unwrap_or_else(|e| e.into_inner());
        if seq != order.next {
            order.parked.insert(seq, (data, close));
            return;
        }
        let mut cur = Some((data, close));
        while let Some((data, close)) = cur {
            // Under the lock, so that queue order is response order.
            let _ = self.write(data);
            order.next += 1;
            if close {
                order.parked.clear();
                drop(order);
                self.close_after_flush();
                return;
            }
            let next = order.next;
            cur = order.parked.remove(&next);
        }
    }

    /// Sends `HTTP/1.1 100 Continue` for the request being read (once per
    /// request), if every earlier response is out: an interim response
    /// must not overtake them. Otherwise nothing is sent, and the client
    /// sends its body after its own wait (curl: 1 s).
    pub(crate) fn send_continue(self: &Arc<Self>) {
        let seq = self.next_http_seq.load(Ordering::Relaxed);
        if self.continue_sent.swap(seq + 1, Ordering::Relaxed) == seq + 1 {
            return;
        }
        let order = self.order.lock().unwrap_or_else(|e| e.into_inner());
        if order.next == seq {
            let _ = self.write(IOBuf::from("HTTP/1.1 100 Continue\r\n\r\n"));
        }
    }

    /// Closes the connection once everything queued is written. The input
    /// side is closed already, so nothing new gets queued after this.
    pub(crate) fn close_after_flush(&self) {
        self.close_when_flushed.store(true, Ordering::SeqCst);
        if self.unwritten.load(Ordering::SeqCst) == 0 {
            self.set_failed(closed_error());
        }
    }

    /// Called by the writer after `n` bytes left the queue with
    /// `unwritten` becoming `left`.
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
