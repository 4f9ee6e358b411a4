//! bRPC's streaming RPC, byte-compatible with bRPC
//! (`protocols/brpc_streaming.md`): ordered, message-oriented,
//! full-duplex streams with flow control, multiplexed on the baidu_std
//! connection of the call that opened them.
//!
//! - A client creates streams on a [`Controller`](crate::Controller)
//!   ([`Stream::create`]) and makes a baidu_std call with it; the request
//!   carries `RpcMeta.stream_settings`. The server's handler accepts them
//!   ([`Stream::accept`]); its response travels inside a STRM DATA frame
//!   to the client's first stream, carrying the server's stream ids.
//! - Frames ([`frame`], [`meta`]): `STRM`, body and meta sizes, a
//!   `StreamFrameMeta`, the payload. DATA carries a message (or a
//!   segment of one), FEEDBACK the receiver's consumed bytes, CLOSE a
//!   normal end, RST an abort.
//! - Flow control: a writer waits while `max_buf_size` bytes it wrote
//!   are not reported consumed ([`Stream::write`], [`Stream::try_write`]
//!   fails with `EAGAIN`). Each stream has its own window: a slow reader
//!   holds back only its own stream. The connection's reader never
//!   waits: it moves frames into their stream's buffer (in input order,
//!   [`crate::protocol::Parsed::Consumed`]) and relies on the peer to
//!   respect the window; a peer that passes it fails that stream (RST)
//!   and nothing else.
//! - Reading: [`Stream::recv`], or a [`StreamInputHandler`] called with
//!   batches of messages in order, then idle timeouts and the close.
//! - Lifecycle: [`Stream::close`] from either side ends the peer's stream
//!   after what was written before; RST fails it with `ECONNRESET`; a
//!   connection failure fails all its streams; frames for unknown streams
//!   are answered with RST as bRPC does. `/streams` on the console lists
//!   the open streams.
//!
//! On a server, [`StreamingRpc`] is registered next to baidu_std; on a
//! client, the baidu_std channel cuts STRM frames through
//! [`ClientProtocol::parse_other`](crate::protocol::ClientProtocol::parse_other).

mod call;
mod consume;
pub mod frame;
mod handle;
pub mod meta;
mod options;
mod protocol;
mod receive;
mod registry;
mod status;
mod stream;

pub(crate) use call::{send_response, CallStreams, Requested};
pub use frame::{encode, encode_message, parse, ParseError, ParseResult, StreamFrame};
pub use meta::{Feedback, FrameType, StreamFrameMeta};
pub use options::{
    StreamInput, StreamInputHandler, StreamOptions, DEFAULT_MAX_BUF_SIZE,
    DEFAULT_MESSAGES_IN_BATCH, UNLIMITED_WINDOW_CAP,
};
pub(crate) use protocol::cut as cut_on_client;
pub use protocol::StreamingRpc;
pub use registry::{streams_on, SocketStreams};
pub use status::{open_streams, StreamStatus};
pub use stream::{Stream, StreamStats, MAX_SEGMENT_SIZE};

use crate::server::ServerContext;
