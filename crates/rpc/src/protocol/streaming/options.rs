//! [`StreamOptions`] and [`StreamInputHandler`]: how a stream is created
//! or accepted (bRPC's `StreamOptions` and `StreamInputHandler`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use fibrpc_iobuf::IOBuf;

use super::Stream;
use crate::RpcError;

/// bRPC's default `max_buf_size`: 2 MiB.
pub const DEFAULT_MAX_BUF_SIZE: usize = 2 << 20;

/// bRPC's `messages_in_batch`: at most this many messages per
/// [`StreamInputHandler::on_received_messages`] call.
pub const DEFAULT_MESSAGES_IN_BATCH: usize = 128;

/// What a stream with `max_buf_size` 0 (no flow control) holds unconsumed
/// at most before it fails: nothing holds its writer back, so this is
/// what bounds its memory.
pub const UNLIMITED_WINDOW_CAP: usize = 64 << 20;

/// Receives a stream's input in a fiber of its own (bRPC's
/// `StreamInputHandler`). Calls for one stream never overlap and come in
/// order: messages in batches, an idle timeout between batches, and at
/// the end `on_failed` (if the stream failed) then `on_closed`, after
/// every message that arrived before the close.
///
/// A handler may block (write to a stream, call a service): that holds
/// up only this stream's input, whose window then fills and stops its
/// writer.
pub trait StreamInputHandler: Send + Sync + 'static {
    /// A batch of messages, in order (at most
    /// [`StreamOptions::messages_in_batch`]). They count as consumed
    /// (and the writer's window opens) when this returns.
    fn on_received_messages(&self, stream: &Stream, messages: &mut [IOBuf]);

    /// No message arrived for [`StreamOptions::idle_timeout`]; the stream
    /// stays open. Default: nothing.
    fn on_idle_timeout(&self, _stream: &Stream) {}

    /// The stream failed (reset by the peer, its connection broke, the
    /// peer overran the window): called before
    /// [`on_closed`](Self::on_closed). Default: nothing.
    fn on_failed(&self, _stream: &Stream, _error: &RpcError) {}

    /// The stream is closed (by either side, or failed) and every message
    /// was delivered. The last call. Default: nothing.
    fn on_closed(&self, _stream: &Stream) {}
}

/// Who reads what the peer writes to a stream.
#[derive(Clone, Default)]
pub enum StreamInput {
    /// Messages queue for [`Stream::recv`] (a sync-style reader). The
    /// peer may write (bRPC's `writable`).
    #[default]
    Recv,
    /// A handler gets them in batches, in a fiber of its own.
    Handler(Arc<dyn StreamInputHandler>),
    /// Nobody reads: messages are counted as consumed and dropped, and
    /// the peer is told not to write (bRPC's stream without a handler,
    /// `writable=false`).
    Discard,
}

impl fmt::Debug for StreamInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StreamInput::Recv => "Recv",
            StreamInput::Handler(_) => "Handler",
            StreamInput::Discard => "Discard",
        })
    }
}

/// How a stream is created ([`Stream::create`]) or accepted
/// ([`Stream::accept`]).
#[derive(Clone, Debug)]
pub struct StreamOptions {
    /// The flow-control window of this side's writes (bRPC's): a write
    /// waits (or [`Stream::try_write`] fails with `EAGAIN`) while this
    /// many payload bytes are written and not yet reported consumed by
    /// the peer; a message is sent whole, so the window may be passed by
    /// one message. 0: no flow control (the peer is told not to send
    /// feedback).
    ///
    /// The window is the writer's and never goes on the wire, so a
    /// receiver bounds what it holds unconsumed by its own guess of the
    /// peer's: this value, but at least bRPC's default
    /// ([`DEFAULT_MAX_BUF_SIZE`], so any peer using the default is within
    /// it), or [`UNLIMITED_WINDOW_CAP`] when this is 0. A peer that
    /// sends a message while that much is unconsumed has ignored its
    /// window: the stream is reset (the connection and its other streams
    /// go on).
    pub max_buf_size: usize,
    /// Calls [`StreamInputHandler::on_idle_timeout`] (or makes
    /// [`Stream::recv`] return `ETIMEDOUT` once) when no message arrived
    /// for this long. Nothing goes on the wire. `None` (default): never.
    pub idle_timeout: Option<Duration>,
    /// At most this many messages per handler call (default 128).
    pub messages_in_batch: usize,
    /// Who reads the input.
    pub input: StreamInput,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            max_buf_size: DEFAULT_MAX_BUF_SIZE,
            idle_timeout: None,
            messages_in_batch: DEFAULT_MESSAGES_IN_BATCH,
            input: StreamInput::Recv,
        }
    }
}

impl StreamOptions {
    /// Options whose input goes to `handler`.
    pub fn with_handler(handler: Arc<dyn StreamInputHandler>) -> StreamOptions {
        StreamOptions {
            input: StreamInput::Handler(handler),
            ..Default::default()
        }
    }

    /// The most this side holds unconsumed before it fails the stream
    /// (one more message may come on top): see
    /// [`max_buf_size`](Self::max_buf_size).
    pub(crate) fn receive_limit(&self) -> usize {
        if self.max_buf_size > 0 {
            self.max_buf_size.max(DEFAULT_MAX_BUF_SIZE)
        } else {
            UNLIMITED_WINDOW_CAP
        }
    }
}
