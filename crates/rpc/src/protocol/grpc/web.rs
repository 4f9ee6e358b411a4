//! gRPC-Web (grpc/grpc's PROTOCOL-WEB.md) on the server: a browser's
//! gRPC call over HTTP/1.1 (or HTTP/2) on the same port, with no proxy.
//!
//! - `application/grpc-web` (`+proto`): the body is gRPC's
//!   length-prefixed messages; `application/grpc-web-text` (`+proto`):
//!   the same, base64-encoded (each way).
//! - The response is HTTP 200 with the message, then the trailers as one
//!   more length-prefixed frame whose flag byte has its top bit set,
//!   holding `grpc-status` and `grpc-message` as HTTP/1.1 header lines
//!   (`grpc-status:0\r\n`). A failed call also carries them as headers.
//! - A request with `Origin` is answered with CORS headers that let the
//!   page read the status; `OPTIONS` preflights of gRPC-Web calls are
//!   answered by [`preflight`].
//!
//! Unary calls go through [`super::serve`] like gRPC's; server-streaming
//! ones through `web_stream.rs`, whose responses are progressive. A
//! browser cannot stream a request, so client and bidirectional
//! streaming methods answer `UNIMPLEMENTED`.

use std::sync::Arc;

use base64::Engine;
use fibrpc_iobuf::IOBuf;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Method, Response, StatusCode};

use super::{frame_message, percent_encode_message, target, GrpcStatus, UnaryReply};
use crate::protocol::http::SendResponse;
use crate::server::ServerContext;
use crate::socket::Socket;
use crate::MethodKind;

/// The flag byte of the frame that carries the trailers.
const TRAILER_FLAG: u8 = 0x80;

/// The content type of a binary-mode response.
pub(super) const CONTENT_TYPE_BINARY: &str = "application/grpc-web+proto";
/// The content type of a text-mode response.
pub(super) const CONTENT_TYPE_TEXT: &str = "application/grpc-web-text+proto";

/// How the body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `application/grpc-web`: raw frames.
    Binary,
    /// `application/grpc-web-text`: base64 of them.
    Text,
}

fn mode(headers: &HeaderMap) -> Option<Mode> {
    let t = headers.get(CONTENT_TYPE)?.as_bytes();
    let rest = t.strip_prefix(b"application/grpc-web")?;
    let (mode, rest) = match rest.strip_prefix(b"-text") {
        Some(r) => (Mode::Text, r),
        None => (Mode::Binary, rest),
    };
    matches!(rest.first(), None | Some(b'+') | Some(b';')).then_some(mode)
}

/// Whether a request is a gRPC-Web call (a `POST` with a gRPC-Web
/// content type, as every gRPC-Web client sends), or the CORS preflight
/// of one. The method is looked at first: it is one comparison, where the
/// content type is a header-map lookup every plain `GET` paid.
pub(crate) fn is_grpc_web(req: &http::Request<IOBuf>) -> bool {
    match *req.method() {
        Method::POST => mode(req.headers()).is_some(),
        Method::OPTIONS => is_preflight(req),
        _ => false,
    }
}

/// An `OPTIONS` that asks whether a gRPC-Web call may be made
/// cross-origin (its requested headers name `x-grpc-web`, which every
/// gRPC-Web client sends).
fn is_preflight(req: &http::Request<IOBuf>) -> bool {
    req.method() == Method::OPTIONS
        && req
            .headers()
            .get("access-control-request-headers")
            .is_some_and(|h| {
                h.to_str()
                    .is_ok_and(|v| v.to_ascii_lowercase().contains("x-grpc-web"))
            })
}

/// Serves a gRPC-Web request (in its fiber): a unary call, or a CORS
/// preflight.
pub(crate) fn serve_web<O: SendResponse>(
    ctx: &ServerContext,
    sock: &Arc<Socket>,
    req: Box<http::Request<IOBuf>>,
    out: O,
) {
    let origin = req.headers().get(http::header::ORIGIN).cloned();
    let Some(mode) = mode(req.headers()) else {
        out.send(&preflight(origin), false);
        return;
    };
    let reply = WebReply { out, mode, origin };
    let mut req = req;
    if mode == Mode::Text {
        match decode_text(req.body()) {
            Some(body) => *req.body_mut() = body,
            None => {
                let e = "the grpc-web-text body is not base64".to_string();
                reply.fail(GrpcStatus::InvalidArgument, e);
                return;
            }
        }
    }
    let method = target(req.uri().path()).and_then(|(s, m)| ctx.find_method(s, m).ok());
    let kind = method.map(|(s, i)| ctx.entry(s).service.method_kind(i));
    match (method, kind) {
        (Some(found), Some(MethodKind::ServerStreaming)) => {
            super::web_stream::serve(ctx, sock, req, reply, found)
        }
        (_, Some(k @ (MethodKind::ClientStreaming | MethodKind::Bidirectional))) => {
            let what = if k == MethodKind::ClientStreaming {
                "client"
            } else {
                "bidirectional"
            };
            let e = format!(
                "{} is a {what} streaming method: gRPC-Web serves unary and server \
                 streaming methods only (a browser cannot stream a request); call it over gRPC",
                req.uri().path()
            );
            reply.fail(GrpcStatus::Unimplemented, e);
        }
        _ => super::serve(ctx, sock, req, reply),
    }
}

/// The answer to a CORS preflight: any origin, the gRPC-Web headers.
fn preflight(origin: Option<HeaderValue>) -> Response<IOBuf> {
    let mut resp = Response::new(IOBuf::new());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let h = resp.headers_mut();
    cors(h, origin);
    h.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("POST, OPTIONS"),
    );
    h.insert(
        "access-control-allow-headers",
        HeaderValue::from_static(
            "content-type, x-grpc-web, x-user-agent, grpc-timeout, grpc-encoding, \
             grpc-accept-encoding, authorization",
        ),
    );
    h.insert("access-control-max-age", HeaderValue::from_static("86400"));
    resp
}

/// CORS headers for a request from `origin` (none without one).
fn cors(h: &mut HeaderMap, origin: Option<HeaderValue>) {
    if let Some(o) = origin {
        h.insert("access-control-allow-origin", o);
        h.insert(
            "access-control-expose-headers",
            HeaderValue::from_static("grpc-status, grpc-message"),
        );
        h.insert(http::header::VARY, HeaderValue::from_static("Origin"));
    }
}

/// A grpc-web-text body: base64, possibly as several padded chunks (a
/// client may send each message encoded on its own).
fn decode_text(body: &IOBuf) -> Option<IOBuf> {
    let text: Vec<u8> = body
        .to_vec()
        .into_iter()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    // A chunk ends at its padding: decode up to each group of 4 that
    // ends with '='.
    let mut start = 0;
    let mut i = 0;
    while i < text.len() {
        let end = (i + 4).min(text.len());
        if text[i..end].contains(&b'=') || end == text.len() {
            let chunk = &text[start..end];
            out.extend(
                base64::engine::general_purpose::STANDARD
                    .decode(chunk)
                    .ok()?,
            );
            start = end;
        }
        i = end;
    }
    Some(IOBuf::from(out))
}

/// The frame that ends a gRPC-Web body: `grpc-status` and, if any,
/// the percent-encoded `grpc-message`, as header lines.
pub(super) fn trailer_frame(status: GrpcStatus, message: Option<&str>) -> IOBuf {
    let mut trailer = String::with_capacity(48);
    trailer.push_str(&format!("grpc-status:{}\r\n", status as u32));
    if let Some(m) = message {
        trailer.push_str(&format!("grpc-message:{}\r\n", percent_encode_message(m)));
    }
    let mut body = IOBuf::new();
    body.push_byte(TRAILER_FLAG);
    body.append(&(trailer.len() as u32).to_be_bytes());
    body.append(trailer.as_bytes());
    body
}

/// The outcome of a gRPC-Web call, written as an HTTP response.
pub(super) struct WebReply<O> {
    out: O,
    mode: Mode,
    origin: Option<HeaderValue>,
}

impl<O: SendResponse> WebReply<O> {
    /// Whether the call is in text mode (base64).
    pub(super) fn is_text(&self) -> bool {
        self.mode == Mode::Text
    }

    /// The head of a successful response in `content_type` (its body
    /// empty, the messages to follow), and where it goes.
    pub(super) fn into_head(self, content_type: &'static str) -> (O, Response<IOBuf>) {
        let mut resp = Response::new(IOBuf::new());
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        cors(h, self.origin);
        (self.out, resp)
    }

    /// Answers the whole call: `message` (if any), then the trailers.
    pub(super) fn send(self, message: Option<IOBuf>, status: GrpcStatus, text: Option<String>) {
        let mut body = message.map(frame_message).unwrap_or_default();
        body.append_owned(trailer_frame(status, text.as_deref()));
        let encoded = text.as_deref().map(percent_encode_message);
        let (body, content_type) = match self.mode {
            Mode::Binary => (body, CONTENT_TYPE_BINARY),
            Mode::Text => (
                IOBuf::from(
                    base64::engine::general_purpose::STANDARD
                        .encode(body.to_vec())
                        .into_bytes(),
                ),
                CONTENT_TYPE_TEXT,
            ),
        };
        let mut resp = Response::new(body);
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        if status != GrpcStatus::Ok {
            // Trailers-only, as a proxy answers: the status in the
            // headers too, for clients that look there first.
            let mut n = itoa::Buffer::new();
            if let Ok(v) = HeaderValue::from_str(n.format(status as u32)) {
                h.insert("grpc-status", v);
            }
            if let Some(v) = encoded.and_then(|m| HeaderValue::from_str(&m).ok()) {
                h.insert("grpc-message", v);
            }
        }
        cors(h, self.origin);
        self.out.send(&resp, false);
    }
}

impl<O: SendResponse> UnaryReply for WebReply<O> {
    fn ok(self, msg: IOBuf) {
        self.send(Some(msg), GrpcStatus::Ok, None);
    }

    fn fail(self, status: GrpcStatus, message: String) {
        self.send(None, status, Some(message));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        for (t, m) in [
            ("application/grpc-web", Some(Mode::Binary)),
            ("application/grpc-web+proto", Some(Mode::Binary)),
            ("application/grpc-web-text", Some(Mode::Text)),
            ("application/grpc-web-text+proto", Some(Mode::Text)),
            ("application/grpc-webx", None),
            ("application/grpc", None),
        ] {
            h.insert(CONTENT_TYPE, t.parse().unwrap());
            assert_eq!(mode(&h), m, "{t}");
        }
    }

    #[test]
    fn text_bodies_in_padded_chunks() {
        let one = base64::engine::general_purpose::STANDARD.encode(b"\0\0\0\0\x01a");
        let two = base64::engine::general_purpose::STANDARD.encode(b"\0\0\0\0\x02bc");
        let body = IOBuf::from(format!("{one}{two}").into_bytes());
        assert_eq!(
            decode_text(&body).unwrap().to_vec(),
            b"\0\0\0\0\x01a\0\0\0\0\x02bc"
        );
        assert!(decode_text(&IOBuf::from(&b"!!!!"[..])).is_none());
    }
}
