//! Handling one baidu_std request (bRPC's `ProcessRpcRequest`) and sending
//! its response.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fibrpc_iobuf::IOBuf;

use super::{ServiceEntry, Shared};
use crate::protocol::baidu_std::{self, checksum, compress, Frame, RpcMeta, RpcResponseMeta};
use crate::protocol::InputMessage;
use crate::socket::{Socket, SocketUser};
use crate::{errno, Controller, RpcError};

/// The server side's consumer of socket messages.
pub(crate) struct ServerUser {
    shared: Arc<Shared>,
}

impl ServerUser {
    pub(crate) fn new(shared: Arc<Shared>) -> ServerUser {
        ServerUser { shared }
    }
}

impl SocketUser for ServerUser {
    fn on_message(&self, sock: &Arc<Socket>, msg: InputMessage) {
        match msg {
            InputMessage::BaiduStd(frame) => process_request(&self.shared, sock, frame),
            InputMessage::HttpRequest(r) => super::http::process_request(&self.shared, sock, r),
            // Cut only on client connections.
            InputMessage::HttpResponse(_) => {}
        }
    }

    fn on_failed(&self, sock: &Socket) {
        self.shared
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&sock.id());
    }
}

/// Counts a request in flight; the last one out during a stop wakes
/// `Server::join`. A guard, so a panicking handler still counts out.
pub(super) struct InflightGuard<'a>(&'a Shared);

impl<'a> InflightGuard<'a> {
    /// Counts a request in; returns the guard and how many ran before.
    pub(super) fn enter(shared: &'a Shared) -> (InflightGuard<'a>, usize) {
        let before = shared.inflight.value().fetch_add(1, Ordering::AcqRel) as usize;
        (InflightGuard(shared), before)
    }
}

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        if self.0.inflight.value().fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.inflight.wake_all();
        }
    }
}

fn process_request(shared: &Shared, sock: &Arc<Socket>, frame: Frame) {
    let received = Instant::now();
    let Frame {
        meta,
        payload,
        attachment,
    } = frame;
    let correlation_id = meta.correlation_id();
    let Some(req) = &meta.request else {
        eprintln!(
            "fibrpc: {} sent a frame without a request meta to a server; closing",
            sock.remote_side()
        );
        sock.set_failed(RpcError::new(
            errno::EREQUEST,
            "a response sent to a server",
        ));
        return;
    };
    let (_guard, in_flight) = InflightGuard::enter(shared);

    let mut cntl = Controller::new();
    cntl.log_id = req.log_id() as u64;
    cntl.remote_side = Some(sock.remote_side());
    cntl.local_side = Some(sock.local_side());
    cntl.deadline = req
        .timeout_ms
        .filter(|&ms| ms > 0)
        .map(|ms| received + Duration::from_millis(ms as u64));
    cntl.request_attachment = attachment;

    let result = (|| {
        admit(shared, in_flight)?;
        let (entry, index) = find_method(shared, &req.service_name, &req.method_name)?;
        checksum::verify(&meta, &payload, &cntl.request_attachment)
            .map_err(|e| RpcError::new(errno::EREQUEST, format!("request checksum: {e}")))?;
        let ct = meta.compress_type();
        let decompressed;
        let request = if ct == 0 {
            &payload
        } else {
            decompressed = compress::decompress(ct, &payload, shared.options.max_body_size)
                .map_err(|e| RpcError::new(errno::EREQUEST, format!("request payload: {e}")))?;
            &decompressed
        };
        run_method(entry, index, &mut cntl, request, received)
    })();
    send_response(sock, correlation_id, &mut cntl, result);
}

/// Refuses a request while the server stops or when `in_flight` (the
/// requests running before this one) reached `max_concurrency`.
pub(super) fn admit(shared: &Shared, in_flight: usize) -> Result<(), RpcError> {
    if shared.stopping.load(Ordering::Acquire) {
        return Err(RpcError::new(errno::ELOGOFF, "the server is stopping"));
    }
    let max = shared.options.max_concurrency;
    if max > 0 && in_flight >= max {
        return Err(RpcError::new(
            errno::ELIMIT,
            format!("reached the server's max_concurrency={max}"),
        ));
    }
    Ok(())
}

/// The service and method index a request names.
pub(super) fn find_method<'a>(
    shared: &'a Shared,
    service: &str,
    method: &str,
) -> Result<(&'a ServiceEntry, usize), RpcError> {
    let entry = shared.services.get(service).ok_or_else(|| {
        RpcError::new(errno::ENOSERVICE, format!("Fail to find service={service}"))
    })?;
    let &index = entry.methods.get(method).ok_or_else(|| {
        RpcError::new(
            errno::ENOMETHOD,
            format!("Fail to find method={method} of service={service}"),
        )
    })?;
    Ok((entry, index))
}

/// Runs a handler: counts it in the method's status, turns a panic into
/// `EINTERNAL`, and lets `cntl.set_failed` win over the return value.
pub(super) fn run_method(
    entry: &ServiceEntry,
    index: usize,
    cntl: &mut Controller,
    request: &IOBuf,
    received: Instant,
) -> Result<IOBuf, RpcError> {
    let status = &entry.status[index];
    status.on_start();
    let r = catch_unwind(AssertUnwindSafe(|| {
        entry.service.call_method(index, cntl, request)
    }))
    .unwrap_or_else(|p| {
        Err(RpcError::new(
            errno::EINTERNAL,
            format!("the handler panicked: {}", panic_message(&*p)),
        ))
    });
    let r = match cntl.error.take() {
        Some(e) => Err(e),
        None => r,
    };
    status.on_end(r.is_ok(), received.elapsed());
    r
}

/// The message of a caught panic.
pub(super) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".into())
}

/// Encodes and writes the response (or the error) for `correlation_id`.
fn send_response(
    sock: &Arc<Socket>,
    correlation_id: i64,
    cntl: &mut Controller,
    result: Result<IOBuf, RpcError>,
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
    let mut out = IOBuf::new();
    if let Err(e) = baidu_std::encode(&meta, &payload, &attachment, &mut out) {
        eprintln!("fibrpc: cannot encode a response: {e}");
        return;
    }
    // A failed or overcrowded connection: the caller times out or sees
    // the connection fail; nothing else to do here.
    let _ = sock.write(out);
}

fn error_meta(e: RpcError) -> RpcResponseMeta {
    RpcResponseMeta {
        error_code: Some(e.code),
        error_text: Some(e.text),
    }
}
