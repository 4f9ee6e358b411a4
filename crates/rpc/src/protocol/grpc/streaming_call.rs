//! Streaming gRPC calls on the server: which requests are streaming
//! (asked by the connection's reader at their HEADERS), and serving one
//! in a fiber of its own for as long as it lasts.

use std::sync::Arc;
use std::time::Instant;

use fibrpc_iobuf::IOBuf;

use super::server_stream::StreamLimits;
use super::{deadline_of, is_grpc, target, ServerStream};
use crate::protocol::h2::Inbound;
use crate::server::{InflightGuard, ServerContext, ServerInput};
use crate::socket::Socket;
use crate::{errno, MethodKind, RpcError};

/// Whether `req` calls a streaming method of the server's services: its
/// DATA then goes to the handler as it comes (the connection's reader
/// asks, at the request's HEADERS).
pub(crate) fn is_streaming_call(sock: &Socket, req: &http::Request<IOBuf>) -> bool {
    if !is_grpc(req.headers()) {
        return false;
    }
    let Some(ctx) = ServerInput::context_of(sock) else {
        return false;
    };
    let Some((service, method)) = target(req.uri().path()) else {
        return false;
    };
    match ctx.find_method(service, method) {
        Ok((service, index)) => ctx.entry(service).service.method_kind(index) != MethodKind::Unary,
        Err(_) => false,
    }
}

/// Serves a streaming call: admits it, then runs its handler in a new
/// fiber (never the connection's reader, which must go on delivering the
/// call's DATA) and ends the call with the handler's status.
pub(crate) fn serve_streaming(
    ctx: &ServerContext,
    sock: &Arc<Socket>,
    req: Box<http::Request<IOBuf>>,
    inbound: Arc<Inbound>,
) {
    let received = Instant::now();
    let guard = InflightGuard::enter(ctx);
    let (parts, _) = (*req).into_parts();
    let mut cntl = ctx.new_controller(sock);
    cntl.protocol = "grpc";
    cntl.deadline = deadline_of(&parts.headers, received);
    let path = parts.uri.path();
    if crate::rpcz::enabled() {
        super::start_span(&mut cntl, path, &parts.headers, 0);
    }
    let options = ctx.options();
    let limits = StreamLimits {
        max_message: sock.max_body_size(),
        max_decompressed: options.max_decompressed_size,
        send_buffer: options.h2.stream_send_buffer as usize,
        encoding: parts
            .headers
            .get("grpc-encoding")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .filter(|e| e != "identity"),
    };
    let stream = ServerStream::new(sock.clone(), inbound, cntl.deadline, limits);
    let found = guard.admit().and_then(|()| {
        let (service, method) = target(path).ok_or_else(|| {
            RpcError::new(errno::ENOMETHOD, format!("{path} names no gRPC method"))
        })?;
        ctx.find_method(service, method)
    });
    let (service, index) = match found {
        Ok(f) => f,
        Err(e) => {
            finish(&stream, &mut cntl, Err(e));
            return;
        }
    };
    let guard = guard.into_owned();
    let ctx = ctx.clone();
    let s = stream.clone();
    let spawned = fibrpc_fiber::Builder::new().spawn(move || {
        let mut cntl = cntl;
        let r = ctx.dispatch_streaming(service, index, &mut cntl, s.clone(), received);
        finish(&s, &mut cntl, r);
        drop(guard);
    });
    if spawned.is_err() {
        let e = RpcError::new(
            errno::EINTERNAL,
            "no fiber could start for the streaming call",
        );
        // The controller went with the closure: the span is lost with
        // it, as the call is.
        stream.finish(Err(e));
    }
}

/// Ends the call with `status`, and its rpcz span (if traced) with the
/// bytes of the messages that went each way.
fn finish(stream: &ServerStream, cntl: &mut crate::Controller, status: Result<(), RpcError>) {
    let code = status.as_ref().map_or_else(|e| e.code, |()| 0);
    stream.finish(status);
    if cntl.span.is_some() {
        let (received, sent) = stream.wire_bytes();
        crate::rpcz::server::stream_ended(cntl, received, sent, code);
    }
}
