//! Send-side flow control shared by the server's connection (`send.rs`)
//! and the client's (`client_send.rs`): the peer's windows and frame
//! size, cutting a stream's queued bytes into DATA frames within them,
//! and the deferred flush that coalesces queued messages into frames.
//!
//! **Coalescing.** A streaming sender (a gRPC handler's `send`, a
//! `GrpcStream::send`) queues its message on the stream and asks for a
//! flush instead of writing a frame of its own; the flush runs in a
//! fiber of its own, after the caller's burst of sends, and cuts all
//! that is queued into frames of up to the peer's frame size, in one
//! write. One DATA frame per message (tens of bytes each, sent ahead of
//! the peer's reading) costs a syscall each, and h2 peers (tonic) end a
//! connection that sends them more small frames than they hold unread
//! ("too_many_data_frames"). tonic's client coalesces the same way: its
//! body encoder takes every message ready before yielding a chunk.

use std::sync::Arc;

use fibrpc_iobuf::IOBuf;

use super::frame::{self, flag, kind, Reason};
use crate::socket::Socket;
use crate::{errno, RpcError};

/// The largest DATA frame sent, whatever the peer allows: 64 KiB, so
/// that one large message does not hold the connection for long between
/// the frames of other streams.
const MAX_SENT_FRAME: usize = 64 << 10;

/// A connection error raised by a settings or window change.
pub(super) type WindowError = (Reason, &'static str);

/// The peer's side of flow control: what the connection may send, the
/// window a new stream starts with, the largest frame.
#[derive(Debug)]
pub(super) struct SendWindows {
    /// What the peer lets the connection send.
    conn: i64,
    /// The peer's `SETTINGS_INITIAL_WINDOW_SIZE`.
    initial: i64,
    /// The peer's `SETTINGS_MAX_FRAME_SIZE` (capped at
    /// [`MAX_SENT_FRAME`]).
    max_frame: usize,
}

impl Default for SendWindows {
    fn default() -> Self {
        SendWindows {
            conn: i64::from(frame::DEFAULT_WINDOW),
            initial: i64::from(frame::DEFAULT_WINDOW),
            max_frame: frame::DEFAULT_MAX_FRAME_SIZE as usize,
        }
    }
}

impl SendWindows {
    /// What the connection may still send.
    pub fn conn(&self) -> i64 {
        self.conn
    }

    /// The window a new stream starts with.
    pub fn initial(&self) -> i64 {
        self.initial
    }

    /// The largest frame sent.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// The peer's `SETTINGS_MAX_FRAME_SIZE`. DATA frames stay at most
    /// [`MAX_SENT_FRAME`] even when the peer allows larger ones.
    pub fn set_max_frame(&mut self, size: u32) {
        self.max_frame = (size as usize).min(MAX_SENT_FRAME);
    }

    /// The peer's `SETTINGS_INITIAL_WINDOW_SIZE`: every open stream's
    /// window (`windows`) moves by the difference (RFC 9113 §6.9.2).
    pub fn set_initial<'a>(
        &mut self,
        size: u32,
        windows: impl Iterator<Item = &'a mut i64>,
    ) -> Result<(), WindowError> {
        let delta = i64::from(size) - self.initial;
        self.initial = i64::from(size);
        for w in windows {
            *w += delta;
            if *w > frame::MAX_WINDOW {
                return Err((
                    Reason::FlowControlError,
                    "SETTINGS_INITIAL_WINDOW_SIZE overflows a stream's window",
                ));
            }
        }
        Ok(())
    }

    /// A WINDOW_UPDATE for the connection.
    pub fn conn_update(&mut self, increment: u32) -> Result<(), WindowError> {
        self.conn += i64::from(increment);
        if self.conn > frame::MAX_WINDOW {
            return Err((
                Reason::FlowControlError,
                "WINDOW_UPDATE overflows the connection's window",
            ));
        }
        Ok(())
    }

    /// Appends DATA frames of `stream` to `out` carrying `pending` as
    /// far as the connection's window and the stream's (`window`) let,
    /// each up to the frame size: queued messages share frames. With
    /// `end`, the last frame carries END_STREAM once all of `pending`
    /// went (an empty frame if nothing was pending, which no window
    /// holds back). True when all of `pending` went.
    pub fn put_data(
        &mut self,
        out: &mut IOBuf,
        stream: u32,
        window: &mut i64,
        pending: &mut IOBuf,
        end: bool,
    ) -> bool {
        if pending.is_empty() {
            if end {
                frame::put_head(out, 0, kind::DATA, flag::END_STREAM, stream);
            }
            return true;
        }
        while !pending.is_empty() {
            let room = self.conn.min(*window).min(self.max_frame as i64);
            if room <= 0 {
                return false;
            }
            let n = (room as usize).min(pending.len());
            let chunk = pending.split_to(n);
            let last = pending.is_empty() && end;
            let flags = if last { flag::END_STREAM } else { 0 };
            frame::put_head(out, n, kind::DATA, flags, stream);
            out.append_owned(chunk);
            self.conn -= n as i64;
            *window -= n as i64;
        }
        true
    }
}

/// A WINDOW_UPDATE for a stream whose window is `window`: false if it
/// overflowed (the stream must be reset with `FLOW_CONTROL_ERROR`).
pub(super) fn stream_update(window: &mut i64, increment: u32) -> bool {
    *window += i64::from(increment);
    *window <= frame::MAX_WINDOW
}

/// Runs `flush` in a fiber of its own: after the caller's burst of
/// sends when the caller is a fiber (queued behind it on its worker,
/// an idle worker signalled in case the caller runs on), at once on a
/// worker otherwise. Should the fiber never start, queued data would
/// wait for no one: `sock` fails instead (as when its write-behind
/// fiber cannot start), and its calls with it.
pub(super) fn spawn_flush<F: FnOnce() + Send + 'static>(sock: &Arc<Socket>, flush: F) {
    let lost = sock.clone();
    fibrpc_fiber::Builder::new()
        .nosignal()
        .spawn_or_else(flush, move || {
            lost.set_failed(RpcError::new(
                errno::EINTERNAL,
                "no fiber could start to flush the HTTP/2 connection; closing it",
            ));
        });
    fibrpc_fiber::flush();
}
