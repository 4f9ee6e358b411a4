//! Wire protocols. Each protocol recognises its first bytes, cuts one
//! message out of a connection's input, and says how to process it (bRPC's
//! `Protocol` struct). Detection is per connection: the
//! input messenger tries the protocol that matched last first.

pub mod baidu_std;
pub mod http;

use fibrpc_iobuf::IOBuf;

use crate::socket::Socket;

/// One message cut from a connection's input.
#[derive(Debug)]
// Moved once per message; boxing would cost an allocation per message.
#[allow(clippy::large_enum_variant)]
pub(crate) enum InputMessage {
    /// A baidu_std frame (request or response).
    BaiduStd(baidu_std::Frame),
    /// An HTTP request on a server connection.
    HttpRequest(http::InboundRequest),
    /// An HTTP response on a client connection.
    HttpResponse(::http::Response<IOBuf>),
}

impl InputMessage {
    /// Whether nothing after this message is read from the connection (it
    /// is closed once this message is answered).
    pub(crate) fn ends_input(&self) -> bool {
        match self {
            InputMessage::HttpRequest(r) => r.close,
            _ => false,
        }
    }
}

/// What a protocol found at the front of the input.
// Moved once per message; boxing would cost an allocation per message.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Parsed {
    /// A complete message, cut from the input.
    Message(InputMessage),
    /// Possibly this protocol's, but incomplete: read more.
    NeedMore,
    /// Not this protocol: try the next.
    NotMine,
    /// This protocol's, but malformed: close the connection.
    Bad(String),
}

/// A protocol the input messenger can cut messages for.
pub(crate) trait Protocol: Sync {
    /// The protocol's name, for logs.
    fn name(&self) -> &'static str;

    /// Cuts one message off the front of `buf` (consuming nothing unless
    /// it returns a message or a bad frame). `sock` gives the limits and
    /// per-connection state; `eof`: the peer closed, nothing more comes.
    fn parse(&self, buf: &mut IOBuf, sock: &Socket, eof: bool) -> Parsed;
}

/// baidu_std as seen by the input messenger.
pub(crate) struct BaiduStd;

impl Protocol for BaiduStd {
    fn name(&self) -> &'static str {
        "baidu_std"
    }

    fn parse(&self, buf: &mut IOBuf, sock: &Socket, _eof: bool) -> Parsed {
        use baidu_std::{ParseError, ParseResult, Probe};
        if baidu_std::probe(buf) == Probe::No {
            return Parsed::NotMine;
        }
        match baidu_std::parse(buf, sock.options.max_body) {
            ParseResult::Complete(f) => Parsed::Message(InputMessage::BaiduStd(f)),
            ParseResult::NotEnoughData => Parsed::NeedMore,
            ParseResult::Error(ParseError::BadMagic) => Parsed::NotMine,
            ParseResult::Error(e) => Parsed::Bad(e.to_string()),
        }
    }
}

/// The protocols a server accepts, in detection order.
pub(crate) static SERVER_PROTOCOLS: &[&dyn Protocol] = &[&BaiduStd, &http::HttpServer];

/// The protocol of a baidu_std channel's connections.
pub(crate) static CLIENT_PROTOCOLS: &[&dyn Protocol] = &[&BaiduStd];

/// The protocol of an HTTP channel's connections.
pub(crate) static HTTP_CLIENT_PROTOCOLS: &[&dyn Protocol] = &[&http::HttpClient];
