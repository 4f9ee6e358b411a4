//! baidu_std on a server (bRPC's `ProcessRpcRequest` and
//! `SendRpcResponse`): a request frame becomes a method call, its outcome
//! a response frame under the request's correlation id.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fibrpc_iobuf::IOBuf;
use prost::Message as _;

use super::{checksum, compress, Frame, RpcMeta, RpcResponseMeta, StreamSettings};
use crate::protocol::streaming;
use crate::server::{InflightGuard, ServerContext};
use crate::socket::Socket;
use crate::{errno, Controller, RpcError};

/// Processes one request frame; the response goes out when the handler
/// answers (at once, or later for a deferred one).
pub(super) fn process_request(ctx: &ServerContext, sock: &Arc<Socket>, frame: Frame) {
    let received = Instant::now();
    let Frame {
        mut meta,
        payload,
        attachment,
    } = frame;
    let correlation_id = meta.correlation_id();
    let user_fields = std::mem::take(&mut meta.user_fields);
    let Some(req) = &meta.request else {
        if crate::flags::log_connection_errors() {
            tracing::warn!(
                peer = %sock.remote_side(),
                "closing connection: a frame without a request meta sent to a server"
            );
        }
        sock.set_failed(RpcError::new(
            errno::EREQUEST,
            "a response sent to a server",
        ));
        return;
    };
    let guard = InflightGuard::enter(ctx);

    let mut cntl = ctx.new_controller(sock);
    cntl.log_id = req.log_id() as u64;
    cntl.has_log_id = req.log_id.is_some();
    cntl.protocol = "baidu_std";
    cntl.deadline = req
        .timeout_ms
        .filter(|&ms| ms > 0)
        .map(|ms| received + Duration::from_millis(ms as u64));
    cntl.request_attachment = attachment;
    cntl.request_user_fields = user_fields;
    if crate::rpcz::enabled() {
        start_span(&mut cntl, &meta, &payload);
    }
    // The streams the request opens, for the handler to accept; their
    // presence also decides how the response travels.
    let streamed = meta.stream_settings.take();
    cntl.streams.requested =
        streamed
            .clone()
            .map(|settings| crate::protocol::streaming::Requested {
                sock: sock.clone(),
                settings,
            });

    let target = (|| {
        guard.admit()?;
        let target = ctx.find_method(&req.service_name, &req.method_name)?;
        checksum::verify(&meta, &payload, &cntl.request_attachment)
            .map_err(|e| RpcError::new(errno::EREQUEST, format!("request checksum: {e}")))?;
        let ct = meta.compress_type();
        if ct == 0 {
            return Ok((target, payload, None));
        }
        // At most the per-request limit, and at most what the
        // connection's other requests in process leave of its budget.
        let limit = ctx.options().max_decompressed_size;
        let left = sock.decompression_budget();
        let request = compress::decompress(ct, &payload, limit.min(left)).map_err(|e| {
            let why = if left < limit {
                " (the connection's other requests hold the rest of its max_body_size)"
            } else {
                ""
            };
            RpcError::new(errno::EREQUEST, format!("request payload: {e}{why}"))
        })?;
        let charge = sock.charge_decompressed(request.len()).ok_or_else(|| {
            RpcError::new(
                errno::EREQUEST,
                "request payload: the connection's decompressed requests in process \
                 exceed its max_body_size",
            )
        })?;
        Ok((target, request, Some(charge)))
    })();
    let (target, charge) = match target {
        Ok((t, request, charge)) => (Ok((t, request)), charge),
        Err(e) => (Err(e), None),
    };
    let sock = sock.clone();
    // The charge lasts until the answer goes out (deferred handlers
    // included: they hold the reply).
    let reply = move |cntl: &mut Controller, r: Result<IOBuf, RpcError>| {
        drop(charge);
        send_response(&sock, correlation_id, cntl, r, streamed.as_ref())
    };
    match target {
        Ok(((service, index), request)) => {
            ctx.dispatch(guard, service, index, cntl, request, received, reply)
        }
        Err(e) => reply(&mut cntl, Err(e)),
    }
}

/// Answers the first request of a connection the authenticator refused
/// with `error`, then closes the connection.
pub(super) fn reject(sock: &Arc<Socket>, frame: Frame, error: RpcError) {
    send_response(
        sock,
        frame.meta.correlation_id(),
        &mut Controller::new(),
        Err(error),
        None,
    );
    sock.close_after_flush();
}

/// Encodes and writes the response (or the error) for `correlation_id`.
fn send_response(
    sock: &Arc<Socket>,
    correlation_id: i64,
    cntl: &mut Controller,
    result: Result<IOBuf, RpcError>,
    streamed: Option<&StreamSettings>,
) {
    let mut meta = RpcMeta {
        correlation_id: Some(correlation_id),
        ..Default::default()
    };
    let (payload, attachment) = match result {
        Ok(body) => {
            let ct = cntl.compress_type().as_i32();
            let body = if ct == 0 {
                Ok(body)
            } else {
                compress::compress(ct, &body)
            };
            match body {
                Ok(b) => {
                    meta.compress_type = Some(ct);
                    meta.response = Some(RpcResponseMeta {
                        error_code: Some(0),
                        error_text: None,
                    });
                    (b, std::mem::take(&mut cntl.response_attachment))
                }
                Err(e) => {
                    meta.response = Some(error_meta(RpcError::new(
                        errno::EINTERNAL,
                        format!("cannot compress the response: {e}"),
                    )));
                    (IOBuf::new(), IOBuf::new())
                }
            }
        }
        Err(e) => {
            meta.response = Some(error_meta(e));
            (IOBuf::new(), IOBuf::new())
        }
    };
    let att = attachment.len();
    if att > 0 {
        meta.attachment_size = Some(att.min(i32::MAX as usize) as i32);
    }
    if cntl.checksum() {
        checksum::fill_crc32c(&mut meta, &payload, &attachment);
    }
    if let Some(requested) = streamed {
        let accepted = std::mem::take(&mut cntl.streams.accepted);
        cntl.streams.requested = None;
        streaming::send_response(sock, requested, accepted, meta, &payload, &attachment);
        return;
    }
    let mut out = IOBuf::new();
    if let Err(e) = super::encode(&meta, &payload, &attachment, &mut out) {
        tracing::error!(error = %e, "cannot encode a response");
        return;
    }
    let (size, code) = (
        out.len(),
        meta.response.as_ref().map_or(0, |r| r.error_code()),
    );
    // A failed or overcrowded connection: the caller times out or sees
    // the connection fail; nothing else to do here.
    let _ = sock.write(out);
    crate::rpcz::server::sent(cntl, size, code);
}

/// rpcz: the span of a request, with the ids its caller sent (bRPC's
/// `trace_id`, `span_id`, `parent_span_id`).
fn start_span(cntl: &mut Controller, meta: &RpcMeta, payload: &IOBuf) {
    let Some(req) = &meta.request else { return };
    let upstream = match req.trace_id() as u64 {
        0 => None,
        trace_id => Some(crate::rpcz::server::Upstream {
            trace_id,
            span_id: req.span_id() as u64,
            traced: true,
        }),
    };
    let size =
        super::HEADER_LEN + meta.encoded_len() + payload.len() + cntl.request_attachment.len();
    crate::rpcz::server::start(
        cntl,
        "baidu_std",
        &req.service_name,
        &req.method_name,
        upstream,
        size,
    );
}

fn error_meta(e: RpcError) -> RpcResponseMeta {
    RpcResponseMeta {
        error_code: Some(e.code),
        error_text: Some(e.text),
    }
}
