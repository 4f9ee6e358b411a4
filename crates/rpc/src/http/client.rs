//! [`HttpChannel`]: an HTTP/1.1 client on fibrpc's sockets, for any
//! HTTP/1.1 server. Calls are synchronous (the calling fiber suspends, a
//! plain thread blocks); connections are pooled (HTTP/1.1 cannot
//! multiplex) or short.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Instant;

use fibrpc_iobuf::IOBuf;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Response};

use crate::channel::call::PendingCall;
use crate::channel::connections::Connections;
use crate::channel::{retryable, ChannelOptions, ConnectionType};
use crate::protocol::http::{encode_request, wants_close};
use crate::protocol::{InputMessage, HTTP_CLIENT_PROTOCOLS};
use crate::socket::{Socket, SocketUser};
use crate::{errno, Controller, RpcError};

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
#[derive(Clone)]
pub struct HttpChannel {
    inner: Arc<Inner>,
}

struct Inner {
    addr: SocketAddr,
    /// The `Host` header: the authority the channel was made with.
    host: String,
    options: ChannelOptions,
    conns: Connections,
}

impl std::fmt::Debug for HttpChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpChannel")
            .field("addr", &self.inner.addr)
            .field("host", &self.inner.host)
            .finish()
    }
}

impl HttpChannel {
    /// A channel to `server`: `host:port`, optionally prefixed by
    /// `http://` (resolved now; connected at the first request). The
    /// options' timeout and retries apply to every request;
    /// `ConnectionType::Single` means pooled here, as in bRPC.
    pub fn new(server: &str, mut options: ChannelOptions) -> Result<HttpChannel, RpcError> {
        let host = server.strip_prefix("http://").unwrap_or(server);
        let host = host.trim_end_matches('/').to_string();
        let addr = host
            .to_socket_addrs()
            .map_err(RpcError::from)?
            .next()
            .ok_or_else(|| RpcError::new(libc::EINVAL, "the address resolves to nothing"))?;
        if options.connection_type == ConnectionType::Single {
            options.connection_type = ConnectionType::Pooled;
        }
        let conns = Connections::new(addr, &options, HTTP_CLIENT_PROTOCOLS, Arc::new(HttpUser));
        Ok(HttpChannel {
            inner: Arc::new(Inner {
                addr,
                host,
                options,
                conns,
            }),
        })
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// `GET path` (path and query).
    pub fn get(&self, path: &str) -> Result<Response<IOBuf>, RpcError> {
        let req = Request::get(path)
            .body(IOBuf::new())
            .map_err(|e| RpcError::new(libc::EINVAL, format!("bad path {path:?}: {e}")))?;
        self.request(&mut Controller::new(), req)
    }

    /// `POST path` with a body of `content_type`.
    pub fn post(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<IOBuf>,
    ) -> Result<Response<IOBuf>, RpcError> {
        let mut req = Request::post(path)
            .body(body.into())
            .map_err(|e| RpcError::new(libc::EINVAL, format!("bad path {path:?}: {e}")))?;
        let ct = HeaderValue::from_str(content_type)
            .map_err(|_| RpcError::new(libc::EINVAL, "bad content type"))?;
        req.headers_mut().insert(CONTENT_TYPE, ct);
        self.request(&mut Controller::new(), req)
    }

    /// Sends `req` and waits for the response. Any status is a response
    /// (check `status()`); errors are failures to get one: `ERPCTIMEDOUT`,
    /// a connection that failed after the retries, a malformed response.
    /// `cntl` gives the timeout and retries (else the channel's) and gets
    /// the latency, the remote side and the error.
    pub fn request(
        &self,
        cntl: &mut Controller,
        req: Request<IOBuf>,
    ) -> Result<Response<IOBuf>, RpcError> {
        let start = Instant::now();
        cntl.error = None;
        cntl.retried = 0;
        let r = self.request_inner(cntl, &req, start);
        cntl.latency = start.elapsed();
        if let Err(e) = &r {
            cntl.error = Some(e.clone());
        }
        r
    }

    fn request_inner(
        &self,
        cntl: &mut Controller,
        req: &Request<IOBuf>,
        start: Instant,
    ) -> Result<Response<IOBuf>, RpcError> {
        let opts = &self.inner.options;
        let deadline = cntl.timeout.or(opts.timeout).map(|t| start + t);
        let max_retry = cntl.max_retry.unwrap_or(opts.max_retry);
        let mut wire = IOBuf::new();
        encode_request(
            req.method(),
            req.uri(),
            Some(&self.inner.host),
            req.headers(),
            req.body(),
            &mut wire,
        );
        loop {
            match self.attempt(cntl, req.method() == Method::HEAD, &wire, start, deadline) {
                Err(e)
                    if retryable(&e)
                        && cntl.retried < max_retry
                        && deadline.is_none_or(|d| Instant::now() < d) =>
                {
                    cntl.retried += 1;
                }
                r => return r,
            }
        }
    }

    fn attempt(
        &self,
        cntl: &mut Controller,
        head: bool,
        wire: &IOBuf,
        start: Instant,
        deadline: Option<Instant>,
    ) -> Result<Response<IOBuf>, RpcError> {
        let conns = &self.inner.conns;
        let sock = conns.get(deadline)?;
        cntl.remote_side = Some(sock.remote_side());
        cntl.local_side = Some(sock.local_side());
        let call = PendingCall::new();
        // One request at a time on a connection: the key is always 0.
        if !sock.add_pending(0, call.clone()) {
            return Err(sock.failed_error());
        }
        sock.set_http_head_request(head);
        if let Err(e) = sock.write(wire.clone()) {
            sock.take_pending(0);
            return Err(e);
        }
        if !call.wait(deadline) {
            sock.take_pending(0);
            // The response may still come: this connection cannot be
            // reused.
            sock.set_failed(RpcError::new(errno::ERPCTIMEDOUT, "request timed out"));
            return Err(RpcError::new(
                errno::ERPCTIMEDOUT,
                format!(
                    "reached timeout={}ms @{}",
                    deadline.map_or(0, |d| d.duration_since(start).as_millis()),
                    self.inner.addr
                ),
            ));
        }
        match call.take() {
            Some(Ok(InputMessage::HttpResponse(resp))) => {
                let reusable = !wants_close(resp.version(), resp.headers());
                conns.put_back(sock, reusable);
                Ok(resp)
            }
            Some(Ok(_)) => Err(RpcError::new(errno::ERESPONSE, "not an HTTP response")),
            Some(Err(e)) => Err(e),
            None => Err(RpcError::new(errno::EINTERNAL, "completed without outcome")),
        }
    }
}

/// Hands each response to the request waiting on its connection.
struct HttpUser;

impl SocketUser for HttpUser {
    fn inline(&self) -> bool {
        true
    }

    fn on_message(&self, sock: &Arc<Socket>, msg: InputMessage) {
        match sock.take_pending(0) {
            Some(call) => {
                call.complete(Ok(msg));
            }
            None => {
                // Nobody asked: the server is confused or we timed out.
                sock.set_failed(RpcError::new(
                    errno::ERESPONSE,
                    "an HTTP response nobody waits for",
                ));
            }
        }
    }
}
