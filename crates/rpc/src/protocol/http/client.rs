//! HTTP/1.1 on a client: [`HttpClientProtocol`] for the call engine, and
//! [`HttpChannel`], its front for any HTTP/1.1 server.
//!
//! HTTP/1.1 has no correlation ids on the wire: a connection carries one
//! request at a time (the engine pools connections), and the connection's
//! state remembers which call and whether it was a `HEAD` (whose response
//! has no body whatever its headers say).

use std::collections::VecDeque;
use std::net::ToSocketAddrs;
use std::sync::{Arc, Mutex};

use fibrpc_iobuf::IOBuf;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Response};

use super::{encode_request, limits, parse_response, wants_close, HttpParse};
use crate::channel::{CallEngine, CallFuture, ChannelOptions};
use crate::protocol::{ClientProtocol, Parsed, Protocol};
use crate::socket::Socket;
use crate::{errno, Controller, RpcError};

/// HTTP/1.1 responses, as a client sees them.
#[derive(Debug, Clone, Default)]
pub struct HttpClientProtocol {
    /// The `Host` header of every request (unless it sets its own).
    host: Option<String>,
}

/// A request as every attempt sends it.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    wire: IOBuf,
    /// Where the head's final empty line starts in `wire`: headers added
    /// per attempt (credential, user fields, a traced call's
    /// `traceparent`) go there.
    head_end: usize,
    /// The request names its own `traceparent`: rpcz adds none.
    has_traceparent: bool,
    head: bool,
    /// By its method (RFC 9110 §9.2.2).
    idempotent: bool,
    method: Method,
    uri: http::Uri,
    /// The request sets its own `Authorization`: no credential is added.
    has_authorization: bool,
    /// The connection's credential, for this attempt only.
    credential: Option<Vec<u8>>,
}

/// Requests sent on one connection and not answered yet, oldest first:
/// (correlation id, whether it was a HEAD).
#[derive(Debug, Default)]
struct ClientConn {
    sent: Mutex<VecDeque<(u64, bool)>>,
}

impl ClientConn {
    fn sent(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, bool)>> {
        self.sent.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl HttpClientProtocol {
    /// Encodes `req` once for all attempts.
    pub fn request(&self, req: &Request<IOBuf>) -> HttpRequest {
        let mut wire = IOBuf::new();
        encode_request(
            req.method(),
            req.uri(),
            self.host.as_deref(),
            req.headers(),
            req.body(),
            &mut wire,
        );
        // The head ends with an empty line ("\r\n") right before the body.
        let head_end = wire.len() - req.body().len() - 2;
        HttpRequest {
            wire,
            head_end,
            has_traceparent: req.headers().contains_key(crate::rpcz::traceparent::HEADER),
            head: req.method() == Method::HEAD,
            idempotent: idempotent_method(req.method()),
            method: req.method().clone(),
            uri: req.uri().clone(),
            has_authorization: req.headers().contains_key(http::header::AUTHORIZATION),
            credential: None,
        }
    }
}

impl HttpRequest {
    /// The bytes of one attempt: the encoded request, plus the
    /// credential, `cntl`'s user fields and a traced call's `traceparent`
    /// as headers.
    fn wire_for(&self, cntl: &Controller) -> Result<IOBuf, RpcError> {
        let credential = self.credential.as_deref();
        let traced = crate::rpcz::outgoing(cntl).filter(|_| !self.has_traceparent);
        if credential.is_none() && cntl.request_user_fields.is_empty() && traced.is_none() {
            return Ok(self.wire.clone());
        }
        let mut rest = self.wire.clone();
        let mut out = rest.split_to(self.head_end);
        if let Some((trace, span, _)) = traced {
            let value = crate::rpcz::traceparent::format(trace, span);
            out.append(format!("{}: {value}\r\n", crate::rpcz::traceparent::HEADER).as_bytes());
        }
        if let Some(c) = credential {
            if c.contains(&b'\r') || c.contains(&b'\n') {
                return Err(RpcError::new(
                    errno::ERPCAUTH,
                    "the credential cannot be an HTTP header value",
                ));
            }
            out.append(b"Authorization: ");
            out.append(c);
            out.append(b"\r\n");
        }
        for (k, v) in &cntl.request_user_fields {
            let valid = http::HeaderName::from_bytes(k.as_bytes()).is_ok()
                && HeaderValue::from_str(v).is_ok();
            if !valid {
                return Err(RpcError::new(
                    errno::EREQUEST,
                    format!("user field {k:?} is not a valid HTTP header"),
                ));
            }
            out.append(k.as_bytes());
            out.append(b": ");
            out.append(v.as_bytes());
            out.append(b"\r\n");
        }
        out.append_owned(rest);
        Ok(out)
    }
}

/// RFC 9110 §9.2.2: the safe methods (`GET`, `HEAD`, `OPTIONS`,
/// `TRACE`), `PUT` and `DELETE` are idempotent; `POST`, `PATCH`,
/// `CONNECT` and unknown methods are not.
fn idempotent_method(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

impl Protocol for HttpClientProtocol {
    type Message = Response<IOBuf>;

    fn name(&self) -> &'static str {
        "http"
    }

    fn parse(&self, buf: &mut IOBuf, sock: &Arc<Socket>, eof: bool) -> Parsed<Response<IOBuf>> {
        let head = sock
            .protocol_state::<ClientConn>()
            .and_then(|c| c.sent().front().map(|&(_, head)| head))
            .unwrap_or(false);
        match parse_response(buf, limits(sock), head, eof) {
            HttpParse::Complete(r) => Parsed::Message(r),
            HttpParse::NeedMore => Parsed::NeedMore,
            HttpParse::NotMine => Parsed::NotMine,
            HttpParse::Error(e) => Parsed::Bad(format!("{} {}", e.status, e.reason)),
        }
    }
}

impl ClientProtocol for HttpClientProtocol {
    type Request = HttpRequest;
    type Response = Response<IOBuf>;

    fn one_call_per_connection(&self) -> bool {
        true
    }

    fn pack_request(
        &self,
        req: &mut HttpRequest,
        correlation_id: u64,
        cntl: &Controller,
        conn: &Arc<Socket>,
    ) -> Result<IOBuf, RpcError> {
        let state = conn.protocol_state::<ClientConn>().ok_or_else(|| {
            RpcError::new(errno::EINTERNAL, "the connection speaks another protocol")
        })?;
        let wire = req.wire_for(cntl)?;
        state.sent().push_back((correlation_id, req.head));
        Ok(wire)
    }

    fn call_name<'r>(&self, req: &'r HttpRequest) -> (&'r str, &'r str) {
        (req.method.as_str(), req.uri.path())
    }

    /// The credential goes in an `Authorization` header, unless the
    /// request has its own.
    fn set_credential(
        &self,
        req: &mut HttpRequest,
        credential: Option<&[u8]>,
    ) -> Result<(), RpcError> {
        req.credential = credential
            .filter(|_| !req.has_authorization)
            .map(<[u8]>::to_vec);
        Ok(())
    }

    fn correlation_id(&self, _msg: &Response<IOBuf>, conn: &Socket) -> Option<u64> {
        let id = conn
            .protocol_state::<ClientConn>()
            .and_then(|c| c.sent().pop_front())
            .map(|(id, _)| id);
        if id.is_none() {
            // Nobody asked: the server is confused.
            conn.set_failed(RpcError::new(
                errno::ERESPONSE,
                "an HTTP response nobody waits for",
            ));
        }
        id
    }

    fn process_response(
        &self,
        msg: Response<IOBuf>,
        _cntl: &mut Controller,
    ) -> Result<Response<IOBuf>, RpcError> {
        Ok(msg)
    }

    fn reusable_after(&self, msg: &Response<IOBuf>) -> bool {
        !wants_close(msg.version(), msg.headers())
    }

    fn idempotent(&self, req: &HttpRequest) -> Option<bool> {
        Some(req.idempotent)
    }

    fn message_size(&self, msg: &Response<IOBuf>) -> usize {
        msg.body().len()
    }
}

/// A client of one HTTP server. Cheap to clone (clones share the
/// connection pool).
///
/// ```no_run
/// let ch = fibrpc::http::HttpChannel::new("127.0.0.1:8000", Default::default())?;
/// let resp = ch.get("/health")?;
/// assert_eq!(resp.status(), 200);
/// assert_eq!(resp.body().to_vec(), b"OK\n");
/// # Ok::<(), fibrpc::RpcError>(())
/// ```
#[derive(Clone, Debug)]
pub struct HttpChannel {
    engine: CallEngine<HttpClientProtocol>,
}

impl HttpChannel {
    /// A channel to `server`: `host:port`, optionally prefixed by
    /// `http://` (resolved now; connected at the first request). The
    /// options' timeout, retries and backup request apply to every
    /// request; connections are pooled (HTTP/1.1 carries one request at a
    /// time), or short if the options say so.
    ///
    /// A request whose connection failed after it went out is retried
    /// only if idempotent: by default `GET`, `HEAD`, `OPTIONS`, `TRACE`,
    /// `PUT` and `DELETE` are, `POST` and `PATCH` are not (RFC 9110
    /// §9.2.2; [`ChannelOptions::idempotent`] and
    /// [`Controller::set_idempotent`] say otherwise). A request that never
    /// left (a refused connection) is retried whatever its method.
    pub fn new(server: &str, options: ChannelOptions) -> Result<HttpChannel, RpcError> {
        let host = server.strip_prefix("http://").unwrap_or(server);
        let host = host.trim_end_matches('/').to_string();
        let addr = host
            .to_socket_addrs()
            .map_err(RpcError::from)?
            .next()
            .ok_or_else(|| RpcError::new(libc::EINVAL, "the address resolves to nothing"))?;
        let protocol = HttpClientProtocol { host: Some(host) };
        Ok(HttpChannel {
            engine: CallEngine::new(protocol, addr, options)?,
        })
    }

    /// The engine under this channel.
    pub fn engine(&self) -> &CallEngine<HttpClientProtocol> {
        &self.engine
    }

    /// `GET path` (path and query).
    pub fn get(&self, path: &str) -> Result<Response<IOBuf>, RpcError> {
        self.request(&mut Controller::new(), get(path)?)
    }

    /// `POST path` with a body of `content_type`.
    pub fn post(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<IOBuf>,
    ) -> Result<Response<IOBuf>, RpcError> {
        self.request(&mut Controller::new(), post(path, content_type, body)?)
    }

    /// Sends `req` and waits for the response. Any status is a response
    /// (check `status()`); errors are failures to get one: `ERPCTIMEDOUT`,
    /// a connection that failed after the retries (a `POST` is not
    /// retried once it may have reached the server, see
    /// [`new`](Self::new)), a malformed response. `cntl` gives the
    /// timeout, retries and idempotency (else the channel's) and gets the
    /// latency, the remote side and the error.
    pub fn request(
        &self,
        cntl: &mut Controller,
        req: Request<IOBuf>,
    ) -> Result<Response<IOBuf>, RpcError> {
        let req = self.engine.protocol().request(&req);
        self.engine.call(cntl, req)
    }

    /// Sends `req` and returns at once; `done` runs in a fiber of its own
    /// with the controller and the outcome. No fiber is held while the
    /// request is in flight on a pooled connection.
    pub fn request_async(
        &self,
        cntl: Controller,
        req: Request<IOBuf>,
        done: impl FnOnce(Controller, Result<Response<IOBuf>, RpcError>) + Send + 'static,
    ) {
        let req = self.engine.protocol().request(&req);
        self.engine.call_async(cntl, req, done);
    }

    /// Sends `req`; the `Future` resolves to the controller and the
    /// outcome, on any executor. Polling never blocks.
    pub fn request_future(
        &self,
        cntl: Controller,
        req: Request<IOBuf>,
    ) -> CallFuture<Response<IOBuf>> {
        let req = self.engine.protocol().request(&req);
        self.engine.call_future(cntl, req)
    }
}

/// `GET path`.
fn get(path: &str) -> Result<Request<IOBuf>, RpcError> {
    Request::get(path)
        .body(IOBuf::new())
        .map_err(|e| RpcError::new(libc::EINVAL, format!("bad path {path:?}: {e}")))
}

/// `POST path` with a body of `content_type`.
fn post(
    path: &str,
    content_type: &str,
    body: impl Into<IOBuf>,
) -> Result<Request<IOBuf>, RpcError> {
    let mut req = Request::post(path)
        .body(body.into())
        .map_err(|e| RpcError::new(libc::EINVAL, format!("bad path {path:?}: {e}")))?;
    let ct = HeaderValue::from_str(content_type)
        .map_err(|_| RpcError::new(libc::EINVAL, "bad content type"))?;
    req.headers_mut().insert(CONTENT_TYPE, ct);
    Ok(req)
}
