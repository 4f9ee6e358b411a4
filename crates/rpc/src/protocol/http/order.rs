//! What HTTP/1.1 keeps per server connection: request numbers, responses
//! in request order, and the interim `100 Continue`.
//!
//! Pipelined requests run in parallel fibers, but their responses must
//! leave in the order the requests came. The parser numbers each request
//! (it runs in the connection's reader, one at a time, so numbers follow
//! the byte order); a response that finishes before an earlier one is
//! parked until that one is written.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use fibrpc_iobuf::IOBuf;

use crate::socket::{RoomGate, Socket};
use crate::{errno, RpcError};

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
    chunk_scan: Mutex<super::parse::ChunkScan>,
    /// Whether `chunk_scan` holds a scan in progress: without one (every
    /// request but a chunked body split across reads) the parse takes a
    /// fresh scan, not the lock (two locked instructions per request).
    scan_kept: AtomicBool,
    /// Responses queued so far (`ResponseOrder::next`, readable without
    /// the lock: the reader checks it per request).
    answered: AtomicU64,
    /// Where the reader waits for room under `max_requests`.
    room: RoomGate,
}

/// Responses that finished before an earlier request's.
#[derive(Debug, Default)]
struct ResponseOrder {
    /// The sequence number whose response goes out next.
    next: u64,
    parked: BTreeMap<u64, Parked>,
    /// The bytes in `parked`: they count against the connection's
    /// `max_unwritten` like queued bytes do.
    parked_bytes: usize,
    /// A response could not be queued: every later one would answer the
    /// wrong request, so none is written and the connection closes.
    broken: bool,
}

impl ServerConn {
    /// Numbers the request just cut (called by the parser, in input
    /// order).
    pub(crate) fn take_seq(&self) -> u64 {
        let seq = self.next_seq.load(Ordering::Relaxed);
        self.next_seq.store(seq + 1, Ordering::Relaxed);
        seq
    }

    /// Runs the parse `f` with the connection's chunk scan: the one kept
    /// from the last read if a chunked body was left half read, else a
    /// fresh one, kept afterwards only if `f` left it in progress.
    pub(crate) fn with_chunk_scan<R>(
        &self,
        f: impl FnOnce(&mut super::parse::ChunkScan) -> R,
    ) -> R {
        // Relaxed: only the connection's reader, one at a time, uses it.
        if self.scan_kept.load(Ordering::Relaxed) {
            let mut scan = self.chunk_scan.lock().unwrap_or_else(|e| e.into_inner());
            let r = f(&mut scan);
            self.scan_kept.store(scan.in_progress(), Ordering::Relaxed);
            return r;
        }
        let mut scan = super::parse::ChunkScan::default();
        let r = f(&mut scan);
        if scan.in_progress() {
            *self.chunk_scan.lock().unwrap_or_else(|e| e.into_inner()) = scan;
            self.scan_kept.store(true, Ordering::Relaxed);
        }
        r
    }

    /// Requests cut whose responses are not queued yet.
    fn outstanding(&self) -> u64 {
        let cut = self.next_seq.load(Ordering::Relaxed);
        cut.saturating_sub(self.answered.load(Ordering::SeqCst))
    }

    /// The reader, before it numbers another request: waits while
    /// `sock.max_requests()` requests are unanswered (or until the
    /// connection fails). Meanwhile nothing more is read from the
    /// connection, so its sender meets TCP flow control and what the
    /// server holds for it stays bounded.
    pub(crate) fn wait_for_room(&self, sock: &Socket) {
        let max = sock.max_requests().max(2) as u64;
        self.room.wait_while(sock, || self.outstanding() >= max);
    }

    /// After responses were queued (`next` is the order's new `next`):
    /// lets a waiting reader go on.
    fn on_answered(&self, next: u64) {
        self.answered.store(next, Ordering::SeqCst);
        self.room.freed();
    }

    /// Writes the response to request number `seq` once every earlier
    /// response is written; `close`: the connection closes after it (and
    /// later responses are dropped).
    ///
    /// Responses are never mismatched: when one cannot be queued (the
    /// connection failed, or parked and queued bytes together pass
    /// `max_unwritten`), the connection closes and no later response is
    /// written.
    pub(crate) fn write_in_order(&self, sock: &Arc<Socket>, seq: u64, data: IOBuf, close: bool) {
        self.write_part(sock, seq, data, true, close);
    }

    /// [`write_in_order`](Self::write_in_order) for a response written in
    /// parts (a progressive, chunked body): `data` is the next part of
    /// request `seq`'s response, `done` says it is the last. Later
    /// responses wait until the last part is written; parts of a
    /// response whose turn has not come are parked together. False
    /// when the part could not be queued (the connection is closing).
    pub(crate) fn write_part(
        &self,
        sock: &Arc<Socket>,
        seq: u64,
        data: IOBuf,
        done: bool,
        close: bool,
    ) -> bool {
        let mut order = self.order.lock().unwrap_or_else(|e| e.into_inner());
        if order.broken {
            return false;
        }
        if seq != order.next {
            let parked = order.parked_bytes + data.len();
            if parked + sock.unwritten_bytes() > sock.max_unwritten_bytes() {
                order.fail(
                    sock,
                    format!(
                        "{parked} bytes of pipelined responses wait for an earlier one \
                         (max_unwritten_bytes {})",
                        sock.max_unwritten_bytes()
                    ),
                );
                return false;
            }
            order.parked_bytes = parked;
            let p = order.parked.entry(seq).or_default();
            p.data.append_owned(data);
            p.done = done;
            p.close = close;
            return true;
        }
        let mut cur = Some(Parked { data, done, close });
        let mut advanced = false;
        while let Some(Parked { data, done, close }) = cur {
            // Under the lock, so that queue order is response order.
            if !data.is_empty() {
                if let Err(e) = sock.write(data) {
                    order.fail(sock, format!("a response could not be queued: {e}"));
                    return false;
                }
            }
            if !done {
                // The response at the front is still being written: the
                // ones after it stay parked.
                break;
            }
            order.next += 1;
            advanced = true;
            if close {
                order.parked.clear();
                order.parked_bytes = 0;
                drop(order);
                sock.close_after_flush();
                return true;
            }
            let next = order.next;
            // Mostly nothing is parked (one request at a time): skip the
            // map's search (20 instructions a request under callgrind).
            cur = if order.parked.is_empty() {
                None
            } else {
                order.parked.remove(&next)
            };
            if let Some(p) = &cur {
                order.parked_bytes -= p.data.len();
            }
        }
        if advanced {
            self.on_answered(order.next);
        }
        true
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

/// A response (or the parts of one so far) waiting for its turn.
#[derive(Debug, Default)]
struct Parked {
    data: IOBuf,
    /// The response's last part is in `data`.
    done: bool,
    /// The connection closes after it.
    close: bool,
}

impl ResponseOrder {
    /// Gives up on the connection: drops what is parked, writes nothing
    /// more, and closes it (with the reason logged).
    fn fail(&mut self, sock: &Socket, reason: String) {
        self.broken = true;
        self.parked.clear();
        self.parked_bytes = 0;
        if crate::flags::log_connection_errors() {
            tracing::warn!(peer = %sock.remote_side(), %reason, "closing HTTP connection");
        }
        sock.set_failed(RpcError::new(errno::EOVERCROWDED, reason));
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse::{parse_request_expecting, probe_request, HttpParse, Limits};
    use super::*;

    const LIMITS: Limits = Limits {
        max_header: 4096,
        max_body: 1 << 20,
    };

    /// One parse of `buf` with the connection's chunk scan: whether it
    /// completed a request.
    fn parse(conn: &ServerConn, buf: &mut IOBuf) -> bool {
        let probe = probe_request(buf);
        let (r, _) = conn.with_chunk_scan(|scan| parse_request_expecting(buf, probe, LIMITS, scan));
        matches!(r, HttpParse::Complete(_))
    }

    #[test]
    fn only_a_half_read_chunked_body_keeps_a_scan() {
        let conn = ServerConn::default();
        let mut buf = IOBuf::from("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(parse(&conn, &mut buf));
        assert!(!conn.scan_kept.load(Ordering::Relaxed), "a whole request");

        let mut buf =
            IOBuf::from("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
        assert!(!parse(&conn, &mut buf));
        assert!(conn.scan_kept.load(Ordering::Relaxed), "half a body");
        let pos = conn.chunk_scan.lock().unwrap().in_progress();
        assert!(pos, "the kept scan is the one in progress");

        buf.append(&b"lo\r\n0\r\n\r\n"[..]);
        assert!(parse(&conn, &mut buf));
        assert!(!conn.scan_kept.load(Ordering::Relaxed), "the body was cut");
        assert!(buf.is_empty());
    }
}
