//! gRPC over fibrpc's HTTP/2 ([`crate::protocol::h2`]), server side
//! (bRPC's `grpc.cpp` and the gRPC parts of `http2_rpc_protocol`).
//!
//! A request whose `content-type` is `application/grpc` (or
//! `application/grpc+proto`) on `/package.Service/Method` calls the
//! method of the service registered under that name — the same services
//! baidu_std serves, through the same admission, counters and deferred
//! responders. Unary calls: one length-prefixed message each way.
//!
//! - `grpc-timeout` sets the handler's [`Controller::deadline`];
//! - a compressed message (`grpc-encoding: gzip`) is inflated, bounded
//!   by `ServerOptions::max_decompressed_size` and the connection's
//!   budget as baidu_std's are; responses go uncompressed;
//! - errors are `grpc-status` (bRPC's `ErrorCodeToGrpcStatus`) and a
//!   percent-encoded `grpc-message` in the trailers, or in a
//!   trailers-only response when nothing else was sent.
//!
//! The client is [`GrpcChannel`] (unary calls on the shared call engine;
//! see `client.rs`).

mod channel;
pub mod client;
mod client_stream;
mod client_typed;
mod server_stream;
mod status;
mod streaming_call;
mod typed_stream;
mod web;
mod web_stream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fibrpc_iobuf::IOBuf;
use http::HeaderMap;

pub use channel::GrpcChannel;
pub use client_stream::{GrpcStream, RecvFuture};
pub use client_typed::{
    BidiCall, ClientStreamingCall, StreamReceiver, StreamSender, StreamingChannel,
};
pub use server_stream::ServerStream;
pub use status::{error_code_of, grpc_status_of, GrpcStatus};
pub(crate) use streaming_call::{is_streaming_call, serve_streaming};
pub use typed_stream::{BidiStream, ClientStreamReader, ServerStreamWriter};
pub(crate) use web::{is_grpc_web, serve_web};

use crate::protocol::baidu_std::compress::{self, CompressType};
use crate::protocol::h2::hpack::encode_header;
use crate::protocol::h2::ResponseParts;
use crate::server::{InflightGuard, ServerContext};
use crate::socket::Socket;
use crate::{errno, Controller, RpcError};

pub(crate) use crate::protocol::h2::StreamOut;

/// Whether a request is a gRPC call (by its content type).
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .map(|v| v.as_bytes())
        .is_some_and(|t| {
            t.starts_with(b"application/grpc")
                && matches!(t.get(16), None | Some(b'+') | Some(b';'))
        })
}

/// The deadline a request's `grpc-timeout` sets, counted from
/// `received`; `None` without one (or with a malformed one).
pub(crate) fn deadline_of(headers: &http::HeaderMap, received: Instant) -> Option<Instant> {
    headers
        .get("grpc-timeout")
        .and_then(|v| parse_timeout(v.as_bytes()))
        .and_then(|t| received.checked_add(t))
}

/// Parses `grpc-timeout` (gRPC's HTTP/2 spec: at most 8 digits and a
/// unit, H M S m u n). `None` when absent or malformed.
pub fn parse_timeout(v: &[u8]) -> Option<Duration> {
    let (&unit, digits) = v.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Cuts the one length-prefixed message of a unary request's body:
/// whether it is compressed, and its bytes.
pub fn unary_message(mut body: IOBuf) -> Result<(bool, IOBuf), RpcError> {
    let mut prefix = [0u8; 5];
    if body.copy_to(&mut prefix, 0) < 5 {
        return Err(RpcError::new(
            errno::EREQUEST,
            "the request has no length-prefixed message",
        ));
    }
    let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
    if prefix[0] > 1 {
        return Err(RpcError::new(
            errno::EREQUEST,
            format!("a message with compressed flag {}", prefix[0]),
        ));
    }
    if body.len() - 5 != len {
        return Err(RpcError::new(
            errno::EREQUEST,
            format!(
                "a unary request of {} bytes after a message of {len}",
                body.len() - 5
            ),
        ));
    }
    body.pop_front(5);
    Ok((prefix[0] == 1, body))
}

/// Frames `msg` as one uncompressed length-prefixed message.
pub fn frame_message(msg: IOBuf) -> IOBuf {
    let mut out = IOBuf::new();
    out.push_byte(0);
    out.append(&(msg.len() as u32).to_be_bytes());
    out.append_owned(msg);
    out
}

/// Percent-encodes a `grpc-message` (gRPC's HTTP/2 spec: bytes outside
/// printable ASCII, and `%`).
pub fn percent_encode_message(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    for &b in msg.as_bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `/package.Service/Method` of a gRPC path.
pub(crate) fn target(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
}

/// A failed call: the error, and the status if not the error code's.
type Failure = (RpcError, Option<GrpcStatus>);

/// The request's message, inflated if it is compressed, with its
/// charge against the connection's decompression budget.
fn request_message(
    ctx: &ServerContext,
    sock: &Arc<Socket>,
    headers: &HeaderMap,
    body: IOBuf,
) -> Result<(IOBuf, Option<crate::socket::DecompressedCharge>), Failure> {
    let (compressed, msg) = unary_message(body).map_err(|e| (e, None))?;
    if !compressed {
        return Ok((msg, None));
    }
    let encoding = headers
        .get("grpc-encoding")
        .map_or(&b"identity"[..], |v| v.as_bytes());
    if encoding != b"gzip" {
        // gRPC's spec: an encoding the server does not support is
        // UNIMPLEMENTED.
        let e = RpcError::new(
            errno::EREQUEST,
            format!(
                "grpc-encoding {} is not supported (gzip is)",
                String::from_utf8_lossy(encoding)
            ),
        );
        return Err((e, Some(GrpcStatus::Unimplemented)));
    }
    let limit = ctx.options().max_decompressed_size;
    let left = sock.decompression_budget();
    let msg =
        compress::decompress(CompressType::Gzip.as_i32(), &msg, limit.min(left)).map_err(|e| {
            let e = RpcError::new(errno::EREQUEST, format!("request message: {e}"));
            (e, Some(GrpcStatus::ResourceExhausted))
        })?;
    let charge = sock.charge_decompressed(msg.len()).ok_or_else(|| {
        let e = RpcError::new(
            errno::EREQUEST,
            "request message: the connection's decompressed requests in process exceed its \
             max_body_size",
        );
        (e, Some(GrpcStatus::ResourceExhausted))
    })?;
    Ok((msg, Some(charge)))
}

/// Where a unary call's outcome goes: an HTTP/2 stream (gRPC), or an
/// HTTP response of either version (gRPC-Web).
pub(crate) trait UnaryReply: Send + 'static {
    /// The call succeeded with `msg` (serialized, unframed).
    fn ok(self, msg: IOBuf);
    /// The call failed with `status` and `message` (for `grpc-message`).
    fn fail(self, status: GrpcStatus, message: String);
}

impl UnaryReply for StreamOut {
    fn ok(self, msg: IOBuf) {
        self.send_parts(response(msg));
    }

    fn fail(self, status: GrpcStatus, message: String) {
        self.send_parts(ResponseParts {
            headers: status_block(true, status, Some(&message)),
            body: IOBuf::new(),
            trailers: None,
        });
    }
}

/// Fails `out` with `f`'s status (the error code's, bRPC's mapping,
/// unless given) and text.
fn fail_with(out: impl UnaryReply, (e, status): Failure) {
    let status = status.unwrap_or_else(|| grpc_status_of(e.code));
    out.fail(status, format!("[E{}]{}", e.code, e.text));
}

/// Serves one unary gRPC call (in the request's fiber); `body` is the
/// request's length-prefixed message.
pub(crate) fn serve(
    ctx: &ServerContext,
    sock: &Arc<Socket>,
    req: Box<http::Request<IOBuf>>,
    out: impl UnaryReply,
) {
    let received = Instant::now();
    let guard = InflightGuard::enter(ctx);
    let (parts, body) = (*req).into_parts();
    // The connection's peer, TLS subject and auth context, as every
    // protocol's handler gets them.
    let mut cntl = ctx.new_controller(sock);
    cntl.protocol = "grpc";
    cntl.deadline = deadline_of(&parts.headers, received);
    let path = parts.uri.path();
    if crate::rpcz::enabled() {
        start_span(&mut cntl, path, &parts.headers, body.len());
    }
    let call = (|| {
        guard.admit().map_err(|e| (e, None))?;
        let (service, method) = target(path).ok_or_else(|| {
            let e = RpcError::new(errno::ENOMETHOD, format!("{path} names no gRPC method"));
            (e, None)
        })?;
        let found = ctx.find_method(service, method).map_err(|e| (e, None))?;
        let (msg, charge) = request_message(ctx, sock, &parts.headers, body)?;
        Ok((found, msg, charge))
    })();
    match call {
        Ok(((service, index), msg, charge)) => {
            let reply = move |cntl: &mut Controller, r: Result<IOBuf, RpcError>| {
                drop(charge);
                // rpcz: the response's length-prefixed message (none
                // for an error, which travels in the trailers).
                let (size, code) = match &r {
                    Ok(msg) => (5 + msg.len(), 0),
                    Err(e) => (0, e.code),
                };
                match r {
                    Ok(msg) => out.ok(msg),
                    Err(e) => fail_with(out, (e, None)),
                }
                crate::rpcz::server::sent(cntl, size, code);
            };
            ctx.dispatch(guard, service, index, cntl, msg, received, reply);
        }
        Err(f) => {
            let f: Failure = f;
            let code = f.0.code;
            fail_with(out, f);
            crate::rpcz::server::sent(&mut cntl, 0, code);
        }
    }
}

/// rpcz: starts the span of a gRPC call (unary or streaming) to `path`,
/// with the caller's ids from its `traceparent` (as HTTP's), if it is
/// sampled. `request_size`: the request's length-prefixed message (0 for
/// a stream, whose size is counted as its messages come).
pub(crate) fn start_span(
    cntl: &mut Controller,
    path: &str,
    headers: &HeaderMap,
    request_size: usize,
) {
    // A path that names no method is still traced (it fails), under the
    // path itself.
    let (service, method) = target(path).unwrap_or((path, ""));
    let upstream = crate::rpcz::server::upstream_of(headers);
    crate::rpcz::server::start(cntl, "grpc", service, method, upstream, request_size);
}

/// A response's header block (before its messages).
pub(crate) fn response_headers() -> Vec<u8> {
    let mut headers = Vec::with_capacity(32);
    encode_header(b":status", b"200", &mut headers);
    encode_header(b"content-type", b"application/grpc", &mut headers);
    headers
}

/// The block that ends a call: `grpc-status` and, if any, the
/// percent-encoded `grpc-message`; with the response's headers before
/// them when `trailers_only` (nothing else was sent).
pub(crate) fn status_block(
    trailers_only: bool,
    status: GrpcStatus,
    message: Option<&str>,
) -> Vec<u8> {
    let mut block = if trailers_only {
        response_headers()
    } else {
        Vec::with_capacity(32)
    };
    let mut n = itoa::Buffer::new();
    encode_header(
        b"grpc-status",
        n.format(status as u32).as_bytes(),
        &mut block,
    );
    if let Some(m) = message {
        encode_header(
            b"grpc-message",
            percent_encode_message(m).as_bytes(),
            &mut block,
        );
    }
    block
}

/// A successful call: headers, the message, `grpc-status: 0` trailers.
fn response(msg: IOBuf) -> ResponseParts {
    ResponseParts {
        headers: response_headers(),
        body: frame_message(msg),
        trailers: Some(status_block(false, GrpcStatus::Ok, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout(b"100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_timeout(b"2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_timeout(b"1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_timeout(b"5n"), Some(Duration::from_nanos(5)));
        for bad in [&b""[..], b"m", b"123456789m", b"10x", b"-1S", b"1.5S"] {
            assert_eq!(parse_timeout(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn message_framing() {
        let framed = frame_message(IOBuf::from("hello"));
        assert_eq!(framed.to_vec(), b"\0\0\0\0\x05hello");
        let (compressed, msg) = unary_message(framed).unwrap();
        assert!(!compressed);
        assert_eq!(msg.to_vec(), b"hello");
        assert!(unary_message(IOBuf::from(&b"\0\0\0\0\x06hello"[..])).is_err());
        assert!(unary_message(IOBuf::from(&b"\0\0\0"[..])).is_err());
        assert!(unary_message(IOBuf::from(&b"\x02\0\0\0\0"[..])).is_err());
    }

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        for (t, grpc) in [
            ("application/grpc", true),
            ("application/grpc+proto", true),
            ("application/grpc;charset=x", true),
            ("application/grpcx", false),
            ("application/json", false),
        ] {
            h.insert(http::header::CONTENT_TYPE, t.parse().unwrap());
            assert_eq!(is_grpc(&h), grpc, "{t}");
        }
    }

    #[test]
    fn messages_are_percent_encoded() {
        assert_eq!(percent_encode_message("a b%c\né"), "a b%25c%0A%C3%A9");
    }
}
