//! Handling one HTTP request on a server connection (bRPC's
//! `ProcessHttpRequest`): user handlers first, then the builtin pages, then
//! pb services as `/ServiceName/MethodName`; the response goes out in
//! request order.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use fibrpc_bvar::Adder;
use fibrpc_iobuf::IOBuf;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Method, Response, StatusCode};

use super::order::ServerConn;
use super::progressive::{ChunkedWriter, ProgressiveWriter};
use super::recycle::unbox_request;
use super::{encode_response, HttpContext, HttpHandler, InboundRequest};
use crate::http::text;
use crate::server::{panic_message, InflightGuard, ServerContext};
use crate::socket::Socket;
use crate::{errno, Controller, RpcError};

/// The user's handlers, by path. A path ending in `/*` matches every path
/// under it; the longest such prefix wins.
#[derive(Default)]
pub(crate) struct HttpRoutes {
    /// FxHash: paths are few and short, and SipHash's DoS resistance buys
    /// nothing for a table the server's own code fills (it was 160
    /// instructions of a 9,300-instruction request under callgrind).
    exact: rustc_hash::FxHashMap<String, Route>,
    prefixes: Vec<(String, Route)>,
}

/// A user handler and the path it was added under (its name in a stop's
/// report of handlers still running).
pub(crate) struct Route {
    pub path: Arc<str>,
    pub handler: Arc<dyn HttpHandler>,
    /// Requests in this handler now (reported by a stop that outlasts
    /// its grace period, as methods' concurrency is): a per-thread
    /// [`Adder`], since one shared counter was a cache line every request
    /// pulled to its worker twice.
    running: Adder,
}

impl Route {
    /// Counts a request into the handler until the guard goes.
    fn enter(&self) -> RouteRunning<'_> {
        self.running.add(1);
        RouteRunning(&self.running)
    }

    /// Requests in this handler now.
    fn running(&self) -> usize {
        self.running.get_value().max(0) as usize
    }
}

/// Counts a request out of its route when dropped.
struct RouteRunning<'a>(&'a Adder);

impl Drop for RouteRunning<'_> {
    fn drop(&mut self) {
        self.0.add(-1);
    }
}

impl HttpRoutes {
    pub(crate) fn add(&mut self, path: &str, h: Arc<dyn HttpHandler>) -> Result<(), RpcError> {
        if !path.starts_with('/') {
            return Err(RpcError::new(
                libc::EINVAL,
                format!("HTTP path {path:?} does not start with /"),
            ));
        }
        let h = Route {
            path: path.into(),
            handler: h,
            running: Adder::new(),
        };
        let taken = match path.strip_suffix("/*") {
            Some(prefix) => {
                let prefix = format!("{prefix}/");
                let taken = self.prefixes.iter().any(|(p, _)| *p == prefix);
                if !taken {
                    self.prefixes.push((prefix, h));
                    self.prefixes
                        .sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
                }
                taken
            }
            None => self.exact.insert(path.to_string(), h).is_some(),
        };
        if taken {
            return Err(RpcError::new(
                libc::EEXIST,
                format!("HTTP path {path} added twice"),
            ));
        }
        Ok(())
    }

    /// The handlers with requests in them now: (path, how many).
    pub(crate) fn running(&self) -> Vec<(Arc<str>, usize)> {
        self.exact
            .values()
            .chain(self.prefixes.iter().map(|(_, r)| r))
            .map(|r| (r.path.clone(), r.running()))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    pub(crate) fn find(&self, path: &str) -> Option<&Route> {
        self.exact.get(path).or_else(|| {
            self.prefixes
                .iter()
                .find(|(p, _)| path.starts_with(p.as_str()))
                .map(|(_, h)| h)
        })
    }
}

/// Processes one request; the response goes out in request order.
pub(super) fn process_request(ctx: &ServerContext, sock: &Arc<Socket>, inbound: InboundRequest) {
    let InboundRequest { req, seq, close } = inbound;
    let out = Out {
        sock: sock.clone(),
        seq,
        close,
    };
    let req = match req {
        Ok(r) => r,
        Err(e) => {
            if crate::flags::log_connection_errors() {
                tracing::warn!(
                    peer = %sock.remote_side(),
                    status = e.status.as_u16(),
                    reason = %e.reason,
                    "closing HTTP connection: malformed request"
                );
            }
            let resp = text(e.status, format!("{}\n", e.reason));
            Out { close: true, ..out }.send(&resp, false);
            return;
        }
    };
    dispatch(ctx, sock, req, out);
}

/// Where a response goes: HTTP/1.1's in-order writer, or an HTTP/2
/// stream. Implementations write `resp` (its head only when
/// `head_only`: the request was `HEAD`).
pub(crate) trait SendResponse: Send + 'static {
    /// Writes `resp`; returns its size on the wire (for rpcz).
    fn send(self, resp: &Response<IOBuf>, head_only: bool) -> usize;

    /// Starts a progressive response instead: `head`'s status and
    /// headers (its body is ignored), then a body written in pieces
    /// (see [`ProgressiveWriter`]), holding at most about `buffer`
    /// bytes the peer has not taken.
    fn progressive(self, head: &Response<IOBuf>, buffer: usize) -> Box<dyn ProgressiveWriter>;
}

/// A [`SendResponse`] and whether the request was `HEAD`.
struct Reply<O> {
    out: O,
    head_only: bool,
}

impl<O: SendResponse> Reply<O> {
    fn send(self, resp: Response<IOBuf>) {
        self.send_sized(resp);
    }

    /// Sends `resp`; returns its size on the wire. The response's header
    /// map is kept for a later request's headers.
    fn send_sized(self, resp: Response<IOBuf>) -> usize {
        let size = self.out.send(&resp, self.head_only);
        super::recycle::give_header_map(resp.into_parts().0.headers);
        size
    }
}

/// Answers one parsed request (bRPC's `ProcessHttpRequest`): a gRPC-Web
/// call (by its content type), else a user handler, else a builtin
/// page, else a pb method as `/Service/Method`. Every HTTP version takes
/// this path.
pub(crate) fn dispatch<O: SendResponse>(
    ctx: &ServerContext,
    sock: &Arc<Socket>,
    req: Box<http::Request<IOBuf>>,
    out: O,
) {
    if crate::protocol::grpc::is_grpc_web(&req) {
        return crate::protocol::grpc::serve_web(ctx, sock, req, out);
    }
    let received = Instant::now();
    let guard = InflightGuard::enter(ctx);
    let out = Reply {
        out,
        head_only: req.method() == Method::HEAD,
    };
    let hctx = HttpContext {
        remote_side: sock.remote_side(),
        local_side: sock.local_side(),
        received,
    };
    let path = req.uri().path();
    if let Some(route) = ctx.shared.http_routes.find(path) {
        return call_route(route, req, &hctx, guard, out, sock, ctx);
    }
    if let Some(resp) = crate::builtin::serve(ctx, &req) {
        return out.send(resp);
    }
    let (parts, body) = unbox_request(req).into_parts();
    // Apart: the path borrows the URI while the headers move on.
    let http::request::Parts { uri, headers, .. } = parts;
    let path = uri.path();
    match pb_target(path) {
        Some((service, method)) => {
            if let Err(e) = guard.admit() {
                return out.send(error_response(&e));
            }
            call_pb(ctx, guard, service, method, headers, body, &hctx, sock, out)
        }
        None => out.send(text(
            StatusCode::NOT_FOUND,
            format!("no page or method at {path}\n"),
        )),
    }
}

/// Answers the first request of a connection the authenticator refused
/// (401 without credentials, 403 with wrong ones), then closes it.
pub(super) fn reject(
    ctx: &ServerContext,
    sock: &Arc<Socket>,
    inbound: InboundRequest,
    error: RpcError,
) {
    let out = Out {
        sock: sock.clone(),
        seq: inbound.seq,
        close: true,
    };
    let mut resp = error_response(&error);
    if resp.status() == StatusCode::UNAUTHORIZED {
        let challenge = ctx.options().auth.as_ref().map(|a| a.http_challenge());
        if let Some(v) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            resp.headers_mut().insert(http::header::WWW_AUTHENTICATE, v);
        }
    }
    out.send(&resp, false);
}

/// A request to a user handler (traced by rpcz as a method named by the
/// HTTP method and the path), inside the server's interceptors.
fn call_route<O: SendResponse>(
    route: &Route,
    req: Box<http::Request<IOBuf>>,
    hctx: &HttpContext,
    guard: InflightGuard<'_>,
    out: Reply<O>,
    sock: &Socket,
    ctx: &ServerContext,
) {
    // rpcz: a controller only to carry a traced request's span.
    let mut traced = None;
    if crate::rpcz::enabled() {
        traced = route_span(&req, hctx);
    }
    let resp = match guard.admit() {
        Err(e) => error_response(&e),
        // The internal port's unauthenticated connections reach the
        // console only.
        Ok(()) if ctx.options().auth.is_some() && sock.auth_context().is_none() => {
            error_response(&crate::auth::unauthenticated())
        }
        Ok(()) => {
            let _running = route.enter();
            let context = traced.as_mut().and_then(crate::rpcz::server::handler_start);
            let h = &route.handler;
            let run = |req: http::Request<IOBuf>| {
                catch_unwind(AssertUnwindSafe(|| h.handle(req, hctx))).unwrap_or_else(|p| {
                    text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("the handler panicked: {}\n", panic_message(&*p)),
                    )
                })
            };
            let req = unbox_request(req);
            let resp = if ctx.options().interceptors.is_empty() {
                run(req)
            } else {
                super::intercept::around(ctx, sock, req, run)
            };
            drop(context);
            if let Some(cntl) = traced.as_mut() {
                crate::rpcz::server::handler_end(cntl);
            }
            resp
        }
    };
    let status = resp.status().as_u16();
    let size = out.send_sized(resp);
    if let Some(mut cntl) = traced {
        // A failure status is the span's error (no RPC error code is
        // 400..=599).
        let code = if status >= 400 { i32::from(status) } else { 0 };
        crate::rpcz::server::sent(&mut cntl, size, code);
    }
    drop(guard);
}

/// Where and how an HTTP/1.1 response goes: in request order.
struct Out {
    sock: Arc<Socket>,
    seq: u64,
    close: bool,
}

impl SendResponse for Out {
    fn send(self, resp: &Response<IOBuf>, head_only: bool) -> usize {
        let mut wire = IOBuf::new();
        encode_response(resp, head_only, self.close, &mut wire);
        let size = wire.len();
        match self.sock.protocol_state::<ServerConn>() {
            Some(conn) => conn.write_in_order(&self.sock, self.seq, wire, self.close),
            None => self.sock.set_failed(RpcError::new(
                errno::EINTERNAL,
                "an HTTP response on a connection of another protocol",
            )),
        }
        size
    }

    fn progressive(self, head: &Response<IOBuf>, buffer: usize) -> Box<dyn ProgressiveWriter> {
        Box::new(ChunkedWriter::start(
            self.sock, self.seq, self.close, head, buffer,
        ))
    }
}

/// rpcz: a controller carrying the span of a request to a user handler
/// (shown as the HTTP method and the path), if it is traced.
fn route_span(req: &http::Request<IOBuf>, hctx: &HttpContext) -> Option<Controller> {
    let mut cntl = Controller::new();
    cntl.remote_side = Some(hctx.remote_side);
    crate::rpcz::server::start(
        &mut cntl,
        "http",
        req.method().as_str(),
        req.uri().path(),
        crate::rpcz::server::upstream_of(req.headers()),
        req.body().len(),
    );
    cntl.span.is_some().then_some(cntl)
}

/// `/Service/Method` → its two names.
fn pb_target(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
}

/// A pb method over HTTP: the body is the request in JSON (the default) or
/// serialized (`Content-Type: application/proto`); the response comes the
/// same way.
#[allow(clippy::too_many_arguments)]
fn call_pb<O: SendResponse>(
    ctx: &ServerContext,
    guard: InflightGuard,
    service: &str,
    method: &str,
    headers: HeaderMap,
    body: IOBuf,
    hctx: &HttpContext,
    sock: &Arc<Socket>,
    out: Reply<O>,
) {
    let (service, index) = match ctx.find_method(service, method) {
        Ok(t) => t,
        Err(e) => return out.send(error_response(&e)),
    };
    let entry = ctx.entry(service);
    let content_type = headers.get(CONTENT_TYPE).map_or(&b""[..], |v| v.as_bytes());
    let binary = [
        &b"application/proto"[..],
        b"application/x-protobuf",
        b"application/octet-stream",
    ]
    .iter()
    .any(|t| {
        content_type
            .get(..t.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(t))
    });
    let json = if binary {
        None
    } else {
        match entry.json.get(&*entry.service) {
            Some(codec) => Some(codec),
            None => {
                return out.send(text(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!(
                        "{service} has no descriptors for JSON: call it with Content-Type: application/proto\n"
                    ),
                ))
            }
        }
    };
    let mut cntl = ctx.new_controller(sock);
    if crate::rpcz::enabled() {
        let method = entry.service.method_names()[index];
        let up = crate::rpcz::server::upstream_of(&headers);
        crate::rpcz::server::start(&mut cntl, "http", service, method, up, body.len());
    }
    cntl.http_request_headers = headers;
    cntl.protocol = "http";
    // JSON: the request transcoded now, and the response's type kept for
    // the answer (which may come later, from another fiber).
    let (request, json_response) = match json {
        Some(codec) => match codec
            .request_to_pb(index, &body)
            .and_then(|pb| Ok((pb, Some(codec.response_type(index)?))))
        {
            Ok(t) => t,
            Err(e) => return out.send(error_response(&e)),
        },
        None => (body, None),
    };
    let reply = move |cntl: &mut Controller, result: Result<IOBuf, RpcError>| {
        let code = result.as_ref().map_or_else(|e| e.code, |_| 0);
        let resp = match (result, json_response) {
            (Ok(pb), None) => crate::http::response(StatusCode::OK, "application/proto", pb),
            (Ok(pb), Some(output)) => match super::json::response_to_json(output, &pb) {
                Ok(j) => crate::http::response(StatusCode::OK, "application/json", j),
                Err(e) => error_response(&e),
            },
            (Err(e), _) => error_response(&e),
        };
        let size = out.send_sized(resp);
        crate::rpcz::server::sent(cntl, size, code);
    };
    ctx.dispatch(guard, service, index, cntl, request, hctx.received, reply);
}

/// An RPC error as an HTTP response, the code in `x-bd-error-code`: the
/// status the error chose ([`RpcError::with_http_status`]), else bRPC's
/// `ErrorCodeToStatusCode`.
pub(crate) fn error_response(e: &RpcError) -> Response<IOBuf> {
    let chosen = e.http_status().and_then(|s| StatusCode::from_u16(s).ok());
    let status = chosen.unwrap_or_else(|| status_of(e.code));
    let mut r = text(status, format!("[E{}]{}\n", e.code, e.text));
    r.headers_mut()
        .insert("x-bd-error-code", HeaderValue::from(e.code));
    r
}

/// bRPC's `ErrorCodeToStatusCode`.
fn status_of(code: i32) -> StatusCode {
    match code {
        errno::ENOSERVICE | errno::ENOMETHOD => StatusCode::NOT_FOUND,
        errno::EREQUEST => StatusCode::BAD_REQUEST,
        errno::ERPCAUTH => StatusCode::FORBIDDEN,
        errno::ELOGOFF | errno::ELIMIT => StatusCode::SERVICE_UNAVAILABLE,
        errno::ERPCTIMEDOUT => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    /// The running count a stop reports sums what every thread counted,
    /// and a request leaves the count where it entered it.
    #[test]
    fn a_route_counts_the_requests_running_on_every_thread() {
        let mut routes = HttpRoutes::default();
        let hello =
            |_: http::Request<IOBuf>, _: &HttpContext| crate::http::text(StatusCode::OK, "hi");
        routes.add("/a", Arc::new(hello)).unwrap();
        routes.add("/b/*", Arc::new(hello)).unwrap();
        let threads = 11;
        let entered = Barrier::new(threads + 1);
        let counted = Barrier::new(threads + 1);
        std::thread::scope(|s| {
            for i in 0..threads {
                let (routes, entered, counted) = (&routes, &entered, &counted);
                s.spawn(move || {
                    let path = if i % 3 == 0 { "/b/x" } else { "/a" };
                    let _guard = routes.find(path).unwrap().enter();
                    entered.wait();
                    counted.wait();
                });
            }
            entered.wait();
            let mut running = routes.running();
            running.sort();
            let b = (0..threads).filter(|i| i % 3 == 0).count();
            assert_eq!(
                running,
                vec![(Arc::from("/a"), threads - b), (Arc::from("/b/*"), b)]
            );
            counted.wait();
        });
        assert!(routes.running().is_empty());
    }
}
