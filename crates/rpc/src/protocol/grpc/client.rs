//! gRPC on a client: [`GrpcClientProtocol`], the call engine's protocol
//! under [`GrpcChannel`](super::GrpcChannel). A call is one HTTP/2
//! stream ([`crate::protocol::h2::client`]): HEADERS with
//! `/package.Service/Method` and `grpc-timeout`, one length-prefixed
//! message, and back the response's message and its `grpc-status`. A
//! streaming call opens its stream the same way and goes on in
//! `client_stream.rs`.
//!
//! - `grpc-timeout` is what is left of the call's deadline when each
//!   attempt is packed;
//! - a request is gzip-compressed when the controller asks for it
//!   ([`Controller::set_compress_type`]); a gzip response is inflated,
//!   bounded by [`ChannelOptions::max_decompressed_size`];
//! - `grpc-status` maps to bRPC's error codes ([`error_code_of`]); a
//!   `grpc-message` of bRPC's form (`[E2004]...`, as fibrpc's server
//!   writes it) gives back the server's own code when it agrees with
//!   the status;
//! - a stream the server did not process (`REFUSED_STREAM`, or past a
//!   GOAWAY's last stream) fails with `ELOGOFF` as answered by the
//!   server, which the default retry policy sends again, whatever the
//!   call's idempotency, on another connection.
//!
//! [`ChannelOptions::max_decompressed_size`]: crate::ChannelOptions::max_decompressed_size

use std::sync::Arc;
use std::time::{Duration, Instant};

use fibrpc_iobuf::IOBuf;
use http::HeaderMap;

use super::status::{error_code_of, grpc_status_of, GrpcStatus};
use crate::protocol::baidu_std::compress::{self, CompressType};
use crate::protocol::h2::client::{self as h2c, H2Reply, StreamError, StreamRequest, StreamSink};
use crate::protocol::h2::hpack::encode_header;
use crate::protocol::h2::H2Options;
use crate::protocol::{ClientProtocol, Parsed, Protocol};
use crate::socket::Socket;
use crate::{errno, Controller, RpcError};

/// One unary call as the engine sends it (again for a retry): the
/// method and the framed message, packed once.
#[derive(Debug, Clone)]
pub struct GrpcRequest {
    service: String,
    method: String,
    /// `/package.Service/Method`.
    path: String,
    /// The length-prefixed message.
    message: IOBuf,
    /// Whether it is gzip-compressed.
    gzip: bool,
    /// The call's deadline, sent as `grpc-timeout`.
    deadline: Option<Instant>,
    /// The request ends with `message` (unary and server-streaming
    /// calls); else the caller sends more.
    end: bool,
    /// A streaming call's sink (see [`StreamSink`]).
    sink: Option<Arc<StreamSink>>,
}

impl GrpcRequest {
    /// A call of `service`'s (`package.Service`) `method` with the
    /// serialized `message`, compressed as `cntl` asks (gzip, or none),
    /// with `deadline` (sent as `grpc-timeout`).
    pub fn new(
        service: &str,
        method: &str,
        cntl: &Controller,
        message: IOBuf,
        deadline: Option<Instant>,
    ) -> Result<GrpcRequest, RpcError> {
        let gzip = wants_gzip(cntl)?;
        Ok(GrpcRequest {
            service: service.to_string(),
            method: method.to_string(),
            path: format!("/{service}/{method}"),
            message: frame_request(gzip, message)?,
            gzip,
            deadline,
            end: true,
            sink: None,
        })
    }

    /// A streaming call: its first and only message `first` (server
    /// streaming), or none yet and more to come (client streaming and
    /// bidirectional); the response's DATA goes to `sink` as it comes.
    pub(crate) fn streaming(
        service: &str,
        method: &str,
        cntl: &Controller,
        first: Option<IOBuf>,
        deadline: Option<Instant>,
        sink: Arc<StreamSink>,
    ) -> Result<GrpcRequest, RpcError> {
        let gzip = wants_gzip(cntl)?;
        let (message, end) = match first {
            Some(m) => (frame_request(gzip, m)?, true),
            None => (IOBuf::new(), false),
        };
        Ok(GrpcRequest {
            service: service.to_string(),
            method: method.to_string(),
            path: format!("/{service}/{method}"),
            message,
            gzip,
            deadline,
            end,
            sink: Some(sink),
        })
    }

    /// Whether its messages are gzip-compressed.
    pub(crate) fn gzip(&self) -> bool {
        self.gzip
    }

    /// The header block of one attempt (`grpc-timeout` is what is left
    /// now); a traced call's ids (`(trace, span, parent)`, rpcz's) go
    /// as a W3C `traceparent`, as HTTP's do.
    fn header_block(
        &self,
        sock: &Socket,
        traced: Option<(u64, u64, u64)>,
    ) -> Result<Vec<u8>, RpcError> {
        let mut b = Vec::with_capacity(160);
        encode_header(b":method", b"POST", &mut b);
        let scheme: &[u8] = if sock.is_tls() { b"https" } else { b"http" };
        encode_header(b":scheme", scheme, &mut b);
        encode_header(b":path", self.path.as_bytes(), &mut b);
        encode_header(
            b":authority",
            sock.remote_side().to_string().as_bytes(),
            &mut b,
        );
        encode_header(b"content-type", b"application/grpc", &mut b);
        encode_header(b"te", b"trailers", &mut b);
        if let Some(d) = self.deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RpcError::new(
                    errno::ERPCTIMEDOUT,
                    "the deadline passed before the request was sent",
                ));
            }
            encode_header(b"grpc-timeout", timeout_value(left).as_bytes(), &mut b);
        }
        if self.gzip {
            encode_header(b"grpc-encoding", b"gzip", &mut b);
        }
        encode_header(b"grpc-accept-encoding", b"gzip", &mut b);
        encode_header(b"user-agent", b"fibrpc-grpc", &mut b);
        if let Some((trace, span, _)) = traced {
            let value = crate::rpcz::traceparent::format(trace, span);
            encode_header(
                crate::rpcz::traceparent::HEADER.as_bytes(),
                value.as_bytes(),
                &mut b,
            );
        }
        Ok(b)
    }
}

/// Whether `cntl` asks for gzip (the one compression gRPC peers share).
fn wants_gzip(cntl: &Controller) -> Result<bool, RpcError> {
    match cntl.compress_type() {
        CompressType::None => Ok(false),
        CompressType::Gzip => Ok(true),
        other => Err(RpcError::new(
            errno::EREQUEST,
            format!("gRPC compresses with gzip only, not {other:?}"),
        )),
    }
}

/// One length-prefixed request message, gzip-compressed if `gzip`.
pub(crate) fn frame_request(gzip: bool, message: IOBuf) -> Result<IOBuf, RpcError> {
    let message = if gzip {
        compress::compress(CompressType::Gzip.as_i32(), &message)
            .map_err(|e| RpcError::new(errno::EREQUEST, format!("gzip: {e}")))?
    } else {
        message
    };
    let mut framed = IOBuf::new();
    framed.push_byte(u8::from(gzip));
    framed.append(&(message.len() as u32).to_be_bytes());
    framed.append_owned(message);
    Ok(framed)
}

/// `grpc-timeout`'s value for `d`: at most 8 digits, rounded up so the
/// server never gives up before this side.
pub fn timeout_value(d: Duration) -> String {
    const MAX: u128 = 99_999_999;
    let us = d.as_micros().max(1);
    if us <= MAX {
        return format!("{us}u");
    }
    let ms = d.as_millis() + u128::from(d.subsec_micros() % 1000 != 0);
    if ms <= MAX {
        return format!("{ms}m");
    }
    format!("{}S", d.as_secs().min(MAX as u64))
}

/// gRPC unary calls over HTTP/2, as a client sees them (the call
/// engine's protocol under [`GrpcChannel`](super::GrpcChannel)).
#[derive(Debug, Clone)]
pub struct GrpcClientProtocol {
    h2: H2Options,
    max_decompressed: usize,
}

impl GrpcClientProtocol {
    /// The protocol with `h2`'s limits on what servers send (frame size,
    /// header list, windows, acknowledgements queued), inflating gzip
    /// responses up to `max_decompressed` bytes.
    pub fn new(h2: H2Options, max_decompressed: usize) -> GrpcClientProtocol {
        let h2 = h2.within_protocol();
        GrpcClientProtocol {
            h2,
            max_decompressed,
        }
    }
}

impl GrpcClientProtocol {
    /// The HTTP/2 limits in use.
    pub(crate) fn h2_options(&self) -> &H2Options {
        &self.h2
    }

    /// The largest response message once inflated.
    pub(crate) fn max_decompressed(&self) -> usize {
        self.max_decompressed
    }
}

impl Protocol for GrpcClientProtocol {
    type Message = H2Reply;

    fn name(&self) -> &'static str {
        "grpc"
    }

    fn parse(&self, input: &mut IOBuf, sock: &Arc<Socket>, _eof: bool) -> Parsed<H2Reply> {
        h2c::parse(input, sock, &self.h2)
    }
}

impl ClientProtocol for GrpcClientProtocol {
    type Request = GrpcRequest;
    type Response = IOBuf;

    fn requests_in_pack_order(&self) -> bool {
        true
    }

    fn pack_request(
        &self,
        req: &mut GrpcRequest,
        correlation_id: u64,
        cntl: &Controller,
        conn: &Arc<Socket>,
    ) -> Result<IOBuf, RpcError> {
        let block = req.header_block(conn, crate::rpcz::outgoing(cntl))?;
        h2c::open_stream(
            conn,
            &self.h2,
            correlation_id,
            StreamRequest {
                headers: &block,
                body: req.message.clone(),
                end: req.end,
                sink: req.sink.clone(),
                deadline: req.deadline,
            },
        )
    }

    fn request_queued(
        &self,
        correlation_id: u64,
        conn: &Arc<Socket>,
        queued: bool,
    ) -> Option<H2Reply> {
        h2c::request_queued(conn, correlation_id, queued)
    }

    fn call_abandoned(&self, correlation_id: u64, conn: &Arc<Socket>) {
        h2c::cancel(conn, correlation_id);
    }

    fn correlation_id(&self, msg: &H2Reply, _conn: &Socket) -> Option<u64> {
        Some(msg.cid)
    }

    fn process_response(&self, msg: H2Reply, _cntl: &mut Controller) -> Result<IOBuf, RpcError> {
        let resp = final_status(msg)?;
        response_message(resp.body, &resp.headers, self.max_decompressed)
    }

    fn call_name<'r>(&self, req: &'r GrpcRequest) -> (&'r str, &'r str) {
        (&req.service, &req.method)
    }

    fn reusable_after(&self, msg: &H2Reply) -> bool {
        msg.connection_usable()
    }

    fn message_size(&self, msg: &H2Reply) -> usize {
        msg.result.as_ref().map_or(0, |r| r.body.len())
    }
}

/// The outcome of a stream that ended: its response if `grpc-status`
/// says 0, else the error it says (or why there is no response).
pub(crate) fn final_status(msg: H2Reply) -> Result<h2c::H2Response, RpcError> {
    let resp = msg.result.map_err(stream_error)?;
    check_head(resp.status, &resp.headers)?;
    // Trailers, or a trailers-only response's headers.
    let fields = if resp.trailers.contains_key("grpc-status") {
        &resp.trailers
    } else {
        &resp.headers
    };
    check_status(fields)?;
    Ok(resp)
}

/// A response's `:status` and content type: those of a gRPC response.
pub(crate) fn check_head(status: u16, headers: &HeaderMap) -> Result<(), RpcError> {
    if status != 200 {
        return Err(http_status_error(status));
    }
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !content_type.starts_with(b"application/grpc") {
        return Err(RpcError::new(
            errno::ERESPONSE,
            format!(
                "not a gRPC response: content-type {:?}",
                String::from_utf8_lossy(content_type)
            ),
        ));
    }
    Ok(())
}

/// A stream that ended without a response.
fn stream_error(e: StreamError) -> RpcError {
    let code = if e.unprocessed {
        // Not run: the default retry policy sends it again.
        errno::ELOGOFF
    } else {
        match e.reason {
            Some(0x8) => libc::ECANCELED,
            Some(0xb) => errno::ELIMIT,
            Some(_) => errno::EINTERNAL,
            None => errno::ERESPONSE,
        }
    };
    RpcError::new(code, e.text)
}

/// gRPC's mapping of an HTTP status that is not 200
/// (`doc/http-grpc-status-mapping.md`).
fn http_status_error(status: u16) -> RpcError {
    let grpc = match status {
        400 => GrpcStatus::Internal,
        401 => GrpcStatus::Unauthenticated,
        403 => GrpcStatus::PermissionDenied,
        404 => GrpcStatus::Unimplemented,
        429 | 502 | 503 | 504 => GrpcStatus::Unavailable,
        _ => GrpcStatus::Unknown,
    };
    RpcError::new(
        error_code_of(grpc),
        format!("HTTP status {status} instead of a gRPC response ({grpc:?})"),
    )
}

/// `grpc-status` (and `grpc-message`) of a response: `Ok` for 0.
fn check_status(fields: &HeaderMap) -> Result<(), RpcError> {
    let Some(value) = fields.get("grpc-status") else {
        return Err(RpcError::new(
            errno::ERESPONSE,
            "a gRPC response without grpc-status",
        ));
    };
    let code = std::str::from_utf8(value.as_bytes())
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or_else(|| {
            RpcError::new(
                errno::ERESPONSE,
                format!("a malformed grpc-status {value:?}"),
            )
        })?;
    if code == 0 {
        return Ok(());
    }
    let message = fields
        .get("grpc-message")
        .map(|v| percent_decode(v.as_bytes()))
        .unwrap_or_default();
    Err(status_error(code, &message))
}

/// The error of a call that failed with `grpc-status` `code`: bRPC's
/// code for the status, or the server's own if its message carries one
/// (`[E2004]...`) that maps to this status.
pub fn status_error(code: u32, message: &str) -> RpcError {
    let status = GrpcStatus::from_code(code).unwrap_or(GrpcStatus::Unknown);
    if let Some((own, rest)) = brpc_code(message) {
        if grpc_status_of(own) == status && own != 0 {
            return RpcError::new(own, rest);
        }
    }
    RpcError::new(
        error_code_of(status),
        format!("grpc-status {code} ({status:?}): {message}"),
    )
}

/// The `[E<code>]` bRPC puts in front of its error messages.
fn brpc_code(message: &str) -> Option<(i32, &str)> {
    let rest = message.strip_prefix("[E")?;
    let (n, rest) = rest.split_once(']')?;
    Some((n.parse().ok()?, rest))
}

/// Decodes a percent-encoded `grpc-message` (invalid escapes and UTF-8
/// are kept as they are).
fn percent_decode(v: &[u8]) -> String {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if v[i] == b'%' && i + 2 < v.len() {
            if let (Some(h), Some(l)) = (hex(v[i + 1]), hex(v[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(v[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The one length-prefixed message of a unary response, inflated if
/// compressed.
fn response_message(
    mut body: IOBuf,
    headers: &HeaderMap,
    max_decompressed: usize,
) -> Result<IOBuf, RpcError> {
    let mut prefix = [0u8; 5];
    if body.copy_to(&mut prefix, 0) < 5 {
        return Err(RpcError::new(
            errno::ERESPONSE,
            "a gRPC response with grpc-status 0 and no message",
        ));
    }
    let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
    if body.len() - 5 != len {
        return Err(RpcError::new(
            errno::ERESPONSE,
            format!(
                "a unary response of {} bytes after a message of {len}",
                body.len() - 5
            ),
        ));
    }
    body.pop_front(5);
    inflate_message(prefix[0], body, headers, max_decompressed)
}

/// A response message with its compressed flag `flag`, inflated if it
/// is set (as the response's `grpc-encoding` says).
pub(crate) fn inflate_message(
    flag: u8,
    body: IOBuf,
    headers: &HeaderMap,
    max_decompressed: usize,
) -> Result<IOBuf, RpcError> {
    match flag {
        0 => Ok(body),
        1 => {
            let encoding = headers
                .get("grpc-encoding")
                .map_or(&b"identity"[..], |v| v.as_bytes());
            if encoding != b"gzip" {
                return Err(RpcError::new(
                    errno::ERESPONSE,
                    format!(
                        "a compressed response in grpc-encoding {:?} (gzip is supported)",
                        String::from_utf8_lossy(encoding)
                    ),
                ));
            }
            compress::decompress(CompressType::Gzip.as_i32(), &body, max_decompressed)
                .map_err(|e| RpcError::new(errno::ERESPONSE, format!("response message: {e}")))
        }
        flag => Err(RpcError::new(
            errno::ERESPONSE,
            format!("a message with compressed flag {flag}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_round_up_within_eight_digits() {
        assert_eq!(timeout_value(Duration::from_nanos(10)), "1u");
        assert_eq!(timeout_value(Duration::from_millis(1500)), "1500000u");
        assert_eq!(timeout_value(Duration::from_secs(100)), "100000m");
        assert_eq!(timeout_value(Duration::from_micros(100_000_001)), "100001m");
        assert_eq!(timeout_value(Duration::from_secs(1 << 30)), "99999999S");
        for d in [1u64, 999, 1_000_000, 123_456_789] {
            let v = timeout_value(Duration::from_micros(d));
            let back = super::super::parse_timeout(v.as_bytes()).unwrap();
            assert!(back >= Duration::from_micros(d), "{v}");
        }
    }

    #[test]
    fn statuses_become_brpc_codes() {
        let e = status_error(8, "[E2004]asked to fail");
        assert_eq!((e.code, e.text.as_str()), (errno::ELIMIT, "asked to fail"));
        // The server's own code when it agrees with the status.
        let e = status_error(13, "[E2001]boom");
        assert_eq!(e.code, errno::EINTERNAL);
        let e = status_error(13, "[E1009]socket");
        assert_eq!(e.code, errno::EFAILEDSOCKET);
        // Not when it does not.
        let e = status_error(5, "[E2004]x");
        assert_eq!(e.code, errno::EINTERNAL);
        let e = status_error(12, "no such method");
        assert_eq!(e.code, errno::ENOMETHOD);
        assert!(e.text.contains("Unimplemented"), "{}", e.text);
        assert_eq!(status_error(99, "").code, errno::EINTERNAL);
    }

    #[test]
    fn messages_are_percent_decoded() {
        let enc = super::super::percent_encode_message("a b%c\né");
        assert_eq!(percent_decode(enc.as_bytes()), "a b%c\né");
        assert_eq!(percent_decode(b"100%"), "100%");
        assert_eq!(percent_decode(b"%zz%4"), "%zz%4");
    }

    #[test]
    fn unary_responses() {
        let mut framed = IOBuf::new();
        framed.append(b"\0\0\0\0\x02hi");
        assert_eq!(
            response_message(framed, &HeaderMap::new(), 100)
                .unwrap()
                .to_vec(),
            b"hi"
        );
        let z = compress::compress(CompressType::Gzip.as_i32(), &IOBuf::from("hello")).unwrap();
        let mut framed = IOBuf::new();
        framed.push_byte(1);
        framed.append(&(z.len() as u32).to_be_bytes());
        framed.append_owned(z);
        let mut h = HeaderMap::new();
        h.insert("grpc-encoding", "gzip".parse().unwrap());
        assert_eq!(
            response_message(framed.clone(), &h, 100).unwrap().to_vec(),
            b"hello"
        );
        // Bounded by max_decompressed.
        assert!(response_message(framed.clone(), &h, 3).is_err());
        // Compressed without a grpc-encoding.
        assert!(response_message(framed, &HeaderMap::new(), 100).is_err());
        assert!(response_message(IOBuf::new(), &h, 100).is_err());
    }
}
