//! What both sides of a connection do with a received DATA or HEADERS
//! frame before it reaches a stream: the connection's receive window,
//! and the padding (and HEADERS' priority) taken off the payload; and
//! the bound on acknowledgements the peer leaves unread.

use std::collections::VecDeque;

use fibrpc_iobuf::IOBuf;

use super::frame::{self, flag, FrameHead, Reason};
use super::wire::Wire;
use super::H2Options;

/// A connection error: GOAWAY with this code, then the connection is
/// done.
pub(super) type ConnError = (Reason, String);

pub(super) fn conn_err<T>(reason: Reason, why: impl Into<String>) -> Result<T, ConnError> {
    Err((reason, why.into()))
}

/// The connection-level receive window of one side.
#[derive(Debug)]
pub(super) struct RecvWindow {
    /// What the peer may still send on the connection.
    window: i64,
    /// Received since the last WINDOW_UPDATE.
    unacked: u32,
}

impl RecvWindow {
    /// A window opened to `size` (by this side's preface).
    pub(super) fn new(size: u32) -> RecvWindow {
        RecvWindow {
            window: i64::from(size),
            unacked: 0,
        }
    }

    /// Opens the window to `size` if it is smaller; returns by how much
    /// (the WINDOW_UPDATE this side must send, or 0).
    pub(super) fn open_to(&mut self, size: u32) -> u32 {
        let grow = (i64::from(size) - self.window).max(0);
        self.window += grow;
        grow as u32
    }

    /// A DATA frame of `len` bytes came. It is given back (a
    /// WINDOW_UPDATE in `out`) once half the window was used: what a
    /// connection holds is bounded per stream (max_body_size) and by the
    /// streams' count, not by this window.
    pub(super) fn receive(
        &mut self,
        len: u32,
        opts: &H2Options,
        out: &mut IOBuf,
    ) -> Result<(), ConnError> {
        if i64::from(len) > self.window {
            return conn_err(
                Reason::FlowControlError,
                "DATA past the connection's window",
            );
        }
        self.window -= i64::from(len);
        self.unacked += len;
        if self.unacked >= opts.initial_window_size / 2 {
            frame::put_window_update(out, 0, self.unacked);
            self.window += i64::from(self.unacked);
            self.unacked = 0;
        }
        Ok(())
    }
}

/// A DATA frame's data, its padding taken off.
pub(super) fn data_of(head: &FrameHead, mut data: IOBuf) -> Result<IOBuf, ConnError> {
    if head.has(flag::PADDED) {
        let mut p = [0u8; 1];
        let pad = if data.copy_to(&mut p, 0) == 1 {
            usize::from(p[0])
        } else {
            usize::MAX
        };
        if pad >= data.len() {
            return conn_err(Reason::ProtocolError, "DATA padding too long");
        }
        data.pop_front(1);
        data.pop_back(pad);
    }
    Ok(data)
}

/// A HEADERS frame's header block fragment, its padding and priority
/// taken off.
pub(super) fn header_fragment(head: &FrameHead, payload: IOBuf) -> Result<Vec<u8>, ConnError> {
    let mut bytes = payload.to_vec();
    let mut start = 0;
    let mut end = bytes.len();
    if head.has(flag::PADDED) {
        let pad = usize::from(*bytes.first().unwrap_or(&0));
        if bytes.is_empty() || pad >= bytes.len() {
            return conn_err(Reason::ProtocolError, "HEADERS padding too long");
        }
        start = 1;
        end -= pad;
    }
    if head.has(flag::PRIORITY) {
        start += 5;
        if start > end {
            return conn_err(Reason::FrameSizeError, "HEADERS too short for its priority");
        }
    }
    bytes.truncate(end);
    bytes.drain(..start);
    Ok(bytes)
}

/// The PING and SETTINGS acknowledgements not yet written, each
/// remembered by where it stands in the output (bytes queued before
/// it); one is no longer pending once the kernel took that many.
#[derive(Debug, Default)]
pub(super) struct PendingAcks(VecDeque<u64>);

impl PendingAcks {
    /// An acknowledgement is about to be queued: at most
    /// `max_pending_acks` may wait behind output the peer does not read
    /// (a PING or SETTINGS flood; see `H2Options::max_pending_acks`).
    pub(super) fn count<W: Wire>(&mut self, sock: &W, opts: &H2Options) -> Result<(), ConnError> {
        let written = sock.written_bytes();
        while self.0.front().is_some_and(|&at| at <= written) {
            self.0.pop_front();
        }
        if self.0.len() >= opts.max_pending_acks as usize {
            return conn_err(
                Reason::EnhanceYourCalm,
                format!(
                    "more than {} PING/SETTINGS acknowledgements unread",
                    opts.max_pending_acks
                ),
            );
        }
        self.0.push_back(written + sock.unwritten_bytes() as u64);
        Ok(())
    }
}
