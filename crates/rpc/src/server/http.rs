//! Handling one HTTP request on a server connection (bRPC's
//! `ProcessHttpRequest`): user handlers first, then the builtin pages, then
//! pb services as `/ServiceName/MethodName`; the response goes out in
//! request order.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use fibrpc_iobuf::IOBuf;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, Response, StatusCode};

use super::process::{admit, find_method, panic_message, run_method, InflightGuard};
use super::Shared;
use crate::http::{text, HttpContext, HttpHandler};
use crate::protocol::http::{encode_response, InboundRequest};
use crate::socket::Socket;
use crate::{errno, Controller, RpcError};

/// The user's handlers, by path. A path ending in `/*` matches every path
/// under it; the longest such prefix wins.
#[derive(Default)]
pub(crate) struct HttpRoutes {
    exact: HashMap<String, Arc<dyn HttpHandler>>,
    prefixes: Vec<(String, Arc<dyn HttpHandler>)>,
}

impl HttpRoutes {
    pub(crate) fn add(&mut self, path: &str, h: Arc<dyn HttpHandler>) -> Result<(), RpcError> {
        if !path.starts_with('/') {
            return Err(RpcError::new(
                libc::EINVAL,
                format!("HTTP path {path:?} does not start with /"),
            ));
        }
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

    fn find(&self, path: &str) -> Option<&Arc<dyn HttpHandler>> {
        self.exact.get(path).or_else(|| {
            self.prefixes
                .iter()
                .find(|(p, _)| path.starts_with(p.as_str()))
                .map(|(_, h)| h)
        })
    }
}

pub(super) fn process_request(shared: &Shared, sock: &Arc<Socket>, inbound: InboundRequest) {
    let InboundRequest { req, seq, close } = inbound;
    let req = match req {
        Ok(r) => r,
        Err(e) => {
            if crate::flags::log_connection_errors() {
                eprintln!(
                    "fibrpc: closing HTTP connection from {}: {} {}",
                    sock.remote_side(),
                    e.status.as_u16(),
                    e.reason
                );
            }
            let resp = text(e.status, format!("{}\n", e.reason));
            send(sock, seq, &resp, false, true);
            return;
        }
    };
    let received = Instant::now();
    let (_guard, in_flight) = InflightGuard::enter(shared);
    let head_only = req.method() == Method::HEAD;
    let ctx = HttpContext {
        remote_side: sock.remote_side(),
        local_side: sock.local_side(),
        received,
    };
    let resp = route(shared, req, &ctx, in_flight);
    send(sock, seq, &resp, head_only, close);
}

fn route(
    shared: &Shared,
    req: Request<IOBuf>,
    ctx: &HttpContext,
    in_flight: usize,
) -> Response<IOBuf> {
    let path = req.uri().path();
    if let Some(h) = shared.http_routes.find(path) {
        if let Err(e) = admit(shared, in_flight) {
            return error_response(&e);
        }
        return catch_unwind(AssertUnwindSafe(|| h.handle(req, ctx))).unwrap_or_else(|p| {
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the handler panicked: {}\n", panic_message(&*p)),
            )
        });
    }
    if let Some(resp) = crate::builtin::serve(shared, &req) {
        return resp;
    }
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    match pb_target(path) {
        Some((service, method)) => {
            if let Err(e) = admit(shared, in_flight) {
                return error_response(&e);
            }
            call_pb(shared, service, method, &parts.headers, body, ctx)
        }
        None => text(
            StatusCode::NOT_FOUND,
            format!("no page or method at {path}\n"),
        ),
    }
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
fn call_pb(
    shared: &Shared,
    service: &str,
    method: &str,
    headers: &HeaderMap,
    body: IOBuf,
    ctx: &HttpContext,
) -> Response<IOBuf> {
    let full = shared.resolve_service_name(service);
    let (entry, index) = match find_method(shared, full.unwrap_or(service), method) {
        Ok(t) => t,
        Err(e) => return error_response(&e),
    };
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
                return text(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!(
                        "{service} has no descriptors for JSON: call it with Content-Type: application/proto\n"
                    ),
                )
            }
        }
    };
    let mut cntl = Controller::new();
    cntl.remote_side = Some(ctx.remote_side);
    cntl.local_side = Some(ctx.local_side);
    let request = match json {
        Some(codec) => match codec.request_to_pb(index, &body) {
            Ok(pb) => pb,
            Err(e) => return error_response(&e),
        },
        None => body,
    };
    let result = run_method(entry, index, &mut cntl, &request, ctx.received);
    match (result, json) {
        (Ok(out), None) => crate::http::response(StatusCode::OK, "application/proto", out),
        (Ok(out), Some(codec)) => match codec.response_to_json(index, &out) {
            Ok(j) => crate::http::response(StatusCode::OK, "application/json", j),
            Err(e) => error_response(&e),
        },
        (Err(e), _) => error_response(&e),
    }
}

/// An RPC error as an HTTP response (bRPC's `ErrorCodeToStatusCode`),
/// the code in `x-bd-error-code`.
pub(crate) fn error_response(e: &RpcError) -> Response<IOBuf> {
    let status = match e.code {
        errno::ENOSERVICE | errno::ENOMETHOD => StatusCode::NOT_FOUND,
        errno::EREQUEST => StatusCode::BAD_REQUEST,
        errno::ERPCAUTH => StatusCode::FORBIDDEN,
        errno::ELOGOFF | errno::ELIMIT => StatusCode::SERVICE_UNAVAILABLE,
        errno::ERPCTIMEDOUT => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut r = text(status, format!("[E{}]{}\n", e.code, e.text));
    r.headers_mut()
        .insert("x-bd-error-code", HeaderValue::from(e.code));
    r
}

fn send(sock: &Arc<Socket>, seq: u64, resp: &Response<IOBuf>, head_only: bool, close: bool) {
    let mut out = IOBuf::new();
    encode_response(resp, head_only, close, &mut out);
    sock.write_in_order(seq, out, close);
}
