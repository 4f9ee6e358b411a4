//! What HTTP/1.1 keeps per server connection: request numbers, responses
//! in request order, and the interim `100 Continue`.
//!
//! Pipelined requests run in parallel fibers, but their responses must
//! leave in the order the requests came. The parser numbers each request
//! (it runs in the connection's reader, one at a time, so numbers follow
//! the byte order); a response that finishes before an earlier one is
//! parked until that one is written.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use fibrpc_iobuf::IOBuf;

use crate::socket::Socket;

/// The per-connection state of an HTTP server connection (held in the
/// socket's protocol slot).
#[derive(Debug, Default)]
pub(crate) struct ServerConn {
    /// The number the next request cut gets (only the reader changes it).
    next_seq: AtomicU64,
    /// 1 + the number of the request a `100 Continue` was sent for (0:
    /// none).
    continue_sent: AtomicU64,
    order: Mutex<ResponseOrder>,
    /// The scan of the chunked body being read (only the reader uses it),
    /// so that each read scans only the new bytes.
    pub(crate) chunk_scan: Mutex<super::parse::ChunkScan>,
}

/// Responses that finished before an earlier request's.
#[derive(Debug, Default)]
struct ResponseOrder {
    /// The sequence number whose response goes out next.
    next: u64,
    parked: BTreeMap<u64, (IOBuf, bool)>,
}

impl ServerConn {
    /// Numbers the request just cut (called by the parser, in input
    /// order).
    pub(crate) fn take_seq(&self) -> u64 {
        let seq = self.next_seq.load(Ordering::Relaxed);
        self.next_seq.store(seq + 1, Ordering::Relaxed);
        seq
    }

    /// Writes the response to request number `seq` once every earlier
    /// response is written; `close`: the connection closes after it (and
    /// later responses are dropped).
    pub(crate) fn write_in_order(&self, sock: &Arc<Socket>, seq: u64, data: IOBuf, close: bool) {
        let mut order = self.order.lock().unwrap_or_else(|e| e.into_inner());
        if seq != order.next {
            order.parked.insert(seq, (data, close));
            return;
        }
        let mut cur = Some((data, close));
        while let Some((data, close)) = cur {
            // Under the lock, so that queue order is response order.
            let _ = sock.write(data);
            order.next += 1;
            if close {
                order.parked.clear();
                drop(order);
                sock.close_after_flush();
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
    pub(crate) fn send_continue(&self, sock: &Arc<Socket>) {
        let seq = self.next_seq.load(Ordering::Relaxed);
        if self.continue_sent.swap(seq + 1, Ordering::Relaxed) == seq + 1 {
            return;
        }
        let order = self.order.lock().unwrap_or_else(|e| e.into_inner());
        if order.next == seq {
            let _ = sock.write(IOBuf::from("HTTP/1.1 100 Continue\r\n\r\n"));
        }
    }
}
