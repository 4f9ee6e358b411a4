//! [`BaiduStd`]: baidu_std as a [`Protocol`] (server) and a
//! [`ClientProtocol`] (client).

use std::sync::Arc;

use fibrpc_iobuf::IOBuf;

use super::compress::DEFAULT_MAX_DECOMPRESSED_SIZE;
use super::{client, server, Frame, ParseError, ParseResult, Probe};
use crate::protocol::{ClientProtocol, Parsed, Protocol, ServerContext};
use crate::socket::Socket;
use crate::{Controller, RpcError};

/// bRPC's default protocol. Every server speaks it; [`crate::Channel`]
/// calls with it.
///
/// The value carries what only its client half uses: the limit on a
/// decompressed response payload ([`crate::ChannelOptions`]'s
/// `max_decompressed_size`, which a channel passes in). On a server the
/// limit is [`crate::ServerOptions`]'s.
#[derive(Debug, Clone, Copy)]
pub struct BaiduStd {
    max_decompressed_size: usize,
}

impl BaiduStd {
    /// The protocol with the default limit on decompressed responses
    /// ([`DEFAULT_MAX_DECOMPRESSED_SIZE`]).
    pub const fn new() -> BaiduStd {
        BaiduStd::with_max_decompressed_size(DEFAULT_MAX_DECOMPRESSED_SIZE)
    }

    /// The protocol whose calls fail with `ERESPONSE` when a compressed
    /// response payload expands past `limit` bytes.
    pub const fn with_max_decompressed_size(limit: usize) -> BaiduStd {
        BaiduStd {
            max_decompressed_size: limit,
        }
    }

    /// The limit on a decompressed response payload.
    pub fn max_decompressed_size(&self) -> usize {
        self.max_decompressed_size
    }
}

impl Default for BaiduStd {
    fn default() -> Self {
        BaiduStd::new()
    }
}

impl Protocol for BaiduStd {
    type Message = Frame;

    fn name(&self) -> &'static str {
        "baidu_std"
    }

    fn parse(&self, input: &mut IOBuf, conn: &Arc<Socket>, _eof: bool) -> Parsed<Frame> {
        if super::probe(input) == Probe::No {
            return Parsed::NotMine;
        }
        match super::parse(input, conn.max_body_size()) {
            ParseResult::Complete(f) => Parsed::Message(f),
            ParseResult::NotEnoughData => Parsed::NeedMore,
            ParseResult::Error(ParseError::BadMagic) => Parsed::NotMine,
            ParseResult::Error(e) => Parsed::Bad(e.to_string()),
        }
    }

    /// The credential is `RpcMeta.authentication_data` (field 7).
    fn verify(
        &self,
        first: &Frame,
        conn: &Arc<Socket>,
        server: &ServerContext,
    ) -> Result<(), RpcError> {
        crate::auth::verify_connection(server, conn, first.meta.authentication_data.as_deref())
    }

    fn reject(&self, msg: Frame, conn: &Arc<Socket>, _server: &ServerContext, error: RpcError) {
        server::reject(conn, msg, error);
    }

    fn process_request(&self, msg: Frame, conn: &Arc<Socket>, server: &ServerContext) {
        server::process_request(server, conn, msg);
    }
}

impl ClientProtocol for BaiduStd {
    type Request = client::Request;
    type Response = IOBuf;

    fn pack_request(
        &self,
        req: &mut client::Request,
        correlation_id: u64,
        cntl: &Controller,
        conn: &Arc<Socket>,
    ) -> Result<IOBuf, RpcError> {
        client::pack(req, correlation_id, cntl, conn)
    }

    /// bRPC's stream frames ride on baidu_std connections; the response
    /// to a call that opened streams comes inside one.
    fn parse_other(&self, input: &mut IOBuf, conn: &Arc<Socket>, _eof: bool) -> Parsed<Frame> {
        crate::protocol::streaming::cut_on_client(input, conn)
    }

    fn call_name<'r>(&self, req: &'r client::Request) -> (&'r str, &'r str) {
        req.call_name()
    }

    fn set_credential(
        &self,
        req: &mut client::Request,
        credential: Option<&[u8]>,
    ) -> Result<(), RpcError> {
        req.set_credential(credential);
        Ok(())
    }

    fn correlation_id(&self, msg: &Frame, conn: &Socket) -> Option<u64> {
        if msg.meta.response.is_none() && msg.meta.request.is_some() {
            tracing::warn!(
                peer = %conn.remote_side(),
                "a request received on a client connection; ignored"
            );
            return None;
        }
        Some(msg.meta.correlation_id() as u64)
    }

    fn process_response(&self, msg: Frame, cntl: &mut Controller) -> Result<IOBuf, RpcError> {
        client::finish(msg, cntl, self.max_decompressed_size)
    }

    fn message_size(&self, msg: &Frame) -> usize {
        use prost::Message as _;
        super::HEADER_LEN + msg.meta.encoded_len() + msg.payload.len() + msg.attachment.len()
    }

    /// Not after `ELOGOFF`: the server is stopping and refuses whatever
    /// else comes on this connection (bRPC's client marks such a socket
    /// "logoff" too).
    fn reusable_after(&self, msg: &Frame) -> bool {
        let code = msg.meta.response.as_ref().and_then(|r| r.error_code);
        code != Some(crate::errno::ELOGOFF)
    }
}
