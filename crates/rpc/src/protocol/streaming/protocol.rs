//! [`StreamingRpc`]: STRM frames as a server protocol (bRPC's
//! "streaming_rpc", next to baidu_std), and their cutting on a client's
//! baidu_std connection.

use std::sync::Arc;

use fibrpc_iobuf::IOBuf;

use super::frame::{self, ParseError, ParseResult};
use super::receive::on_frame;
use crate::protocol::{baidu_std, Parsed, Protocol};
use crate::socket::Socket;

/// bRPC's stream frames on a server connection. Every frame is handled
/// where it is cut ([`Parsed::Consumed`]): it only moves bytes into its
/// stream, in input order, so no fiber runs per frame.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamingRpc;

impl Protocol for StreamingRpc {
    type Message = ();

    fn name(&self) -> &'static str {
        "streaming_rpc"
    }

    fn parse(&self, input: &mut IOBuf, conn: &Arc<Socket>, _eof: bool) -> Parsed<()> {
        match cut(input, conn) {
            Parsed::Message(stray) => {
                // A server's stream never waits for a response.
                tracing::warn!(
                    peer = %conn.remote_side(),
                    correlation_id = stray.meta.correlation_id(),
                    "a response inside a stream frame sent to a server; dropped"
                );
                Parsed::Consumed
            }
            Parsed::NeedMore => Parsed::NeedMore,
            Parsed::NotMine => Parsed::NotMine,
            Parsed::Bad(why) => Parsed::Bad(why),
            Parsed::Consumed => Parsed::Consumed,
        }
    }

    /// Never called: every frame is consumed where it is cut.
    fn process_request(&self, _msg: (), _conn: &Arc<Socket>, _server: &super::ServerContext) {}
}

/// Cuts and handles one STRM frame; a client's call response found in
/// one is the message.
pub(crate) fn cut(input: &mut IOBuf, conn: &Arc<Socket>) -> Parsed<baidu_std::Frame> {
    match frame::parse(input, conn.max_body_size()) {
        ParseResult::NotMine => Parsed::NotMine,
        ParseResult::NotEnoughData => Parsed::NeedMore,
        ParseResult::Error(ParseError::BadMeta(e)) => {
            // The frame is consumed; bRPC ignores it too.
            tracing::warn!(
                peer = %conn.remote_side(),
                error = %e,
                "a stream frame whose meta does not parse; ignored"
            );
            Parsed::Consumed
        }
        ParseResult::Error(e) => Parsed::Bad(e.to_string()),
        ParseResult::Complete(f) => match on_frame(conn, f) {
            Some(response) => Parsed::Message(response),
            None => Parsed::Consumed,
        },
    }
}
