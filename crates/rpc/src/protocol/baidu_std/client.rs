//! baidu_std on a client: the request frame of a call (bRPC's
//! `PackRpcRequest`) and the result of its response frame (bRPC's
//! `ProcessRpcResponse`).

use std::sync::Arc;
use std::time::Instant;

use fibrpc_iobuf::IOBuf;

use super::{checksum, compress, Frame, RpcMeta, RpcRequestMeta};
use crate::socket::Socket;
use crate::{errno, Controller, RpcError};

/// A call's request as every attempt sends it: the meta (its correlation
/// id set per attempt) and the serialized, compressed payload.
#[derive(Debug, Clone)]
pub struct Request {
    meta: RpcMeta,
    payload: IOBuf,
    /// Delivered as `timeout_ms`: the time left when each attempt is
    /// packed (a retry tells the server less than the first attempt).
    deadline: Option<Instant>,
}

impl Request {
    /// The request of a call to `service.method` with the serialized
    /// `request`, compressed and checksummed as `cntl` says; `deadline`,
    /// if given, goes into the meta as `timeout_ms`: the milliseconds
    /// left when each attempt is packed (at least 1, since 0 would say
    /// "no deadline").
    pub fn new(
        service: &str,
        method: &str,
        cntl: &Controller,
        request: IOBuf,
        deadline: Option<Instant>,
    ) -> Result<Request, RpcError> {
        let ct = cntl.compress_type().as_i32();
        let payload = if ct == 0 {
            request
        } else {
            compress::compress(ct, &request)
                .map_err(|e| RpcError::new(errno::EREQUEST, format!("cannot compress: {e}")))?
        };
        // Presence as bRPC writes it, so our frames match its byte for
        // byte. The fields a client interceptor may change (log id,
        // attachment, user fields) and the checksum over the attachment
        // are set per attempt, in `pack`.
        let meta = RpcMeta {
            request: Some(RpcRequestMeta {
                service_name: service.to_owned(),
                method_name: method.to_owned(),
                log_id: cntl.has_log_id.then_some(cntl.log_id as i64),
                timeout_ms: deadline.map(timeout_ms),
                ..Default::default()
            }),
            compress_type: Some(ct),
            content_type: Some(0),
            checksum_type: Some(0),
            checksum_value: Some(Vec::new()),
            stream_settings: cntl.streams.request_settings(),
            ..Default::default()
        };
        Ok(Request {
            meta,
            payload,
            deadline,
        })
    }

    /// The service and method called.
    pub fn call_name(&self) -> (&str, &str) {
        self.meta.request.as_ref().map_or(("", ""), |r| {
            (r.service_name.as_str(), r.method_name.as_str())
        })
    }

    /// Sets (or clears) `authentication_data`.
    pub(super) fn set_credential(&mut self, credential: Option<&[u8]>) {
        self.meta.authentication_data = credential.map(<[u8]>::to_vec);
    }
}

/// The whole milliseconds left until `deadline`, at least 1 (a server
/// reads 0 as "no deadline").
fn timeout_ms(deadline: Instant) -> i32 {
    let ms = deadline
        .saturating_duration_since(Instant::now())
        .as_millis();
    ms.clamp(1, i32::MAX as u128) as i32
}

/// The frame of one attempt under `correlation_id`.
pub(super) fn pack(
    req: &mut Request,
    correlation_id: u64,
    cntl: &Controller,
    conn: &Arc<Socket>,
) -> Result<IOBuf, RpcError> {
    let meta = &mut req.meta;
    meta.correlation_id = Some(correlation_id as i64);
    if let Some(r) = &mut meta.request {
        r.log_id = cntl.has_log_id.then_some(cntl.log_id as i64);
        // rpcz: bRPC's fields, set as bRPC's client sets them.
        let ids = crate::rpcz::outgoing(cntl);
        r.trace_id = ids.map(|(t, _, _)| t as i64);
        r.span_id = ids.map(|(_, s, _)| s as i64);
        r.parent_span_id = ids.map(|(_, _, p)| p as i64);
        if let Some(d) = req.deadline {
            r.timeout_ms = Some(timeout_ms(d));
        }
    }
    let att = cntl.request_attachment.len();
    let att = i32::try_from(att)
        .map_err(|_| RpcError::new(errno::EREQUEST, format!("attachment of {att} bytes")))?;
    meta.attachment_size = (att > 0).then_some(att);
    meta.user_fields.clone_from(&cntl.request_user_fields);
    if cntl.checksum {
        checksum::fill_crc32c(meta, &req.payload, &cntl.request_attachment);
    } else if meta.checksum_type != Some(0) {
        meta.checksum_type = Some(0);
        meta.checksum_value = Some(Vec::new());
    }
    // The call's streams travel on this connection.
    cntl.streams.bind(conn);
    let mut frame = IOBuf::new();
    super::encode(
        &req.meta,
        &req.payload,
        &cntl.request_attachment,
        &mut frame,
    )
    .map_err(|e| RpcError::new(errno::EREQUEST, e.to_string()))?;
    Ok(frame)
}

/// Checks the frame (error code, checksum), decompresses the payload (to
/// at most `max_decompressed` bytes) and moves the attachment into `cntl`.
pub(super) fn finish(
    frame: Frame,
    cntl: &mut Controller,
    max_decompressed: usize,
) -> Result<IOBuf, RpcError> {
    let Frame {
        meta,
        payload,
        attachment,
    } = frame;
    if let Some(resp) = &meta.response {
        if resp.error_code() != 0 {
            return Err(RpcError::new(resp.error_code(), resp.error_text()));
        }
    }
    checksum::verify(&meta, &payload, &attachment)
        .map_err(|e| RpcError::new(errno::ERESPONSE, format!("response checksum: {e}")))?;
    let ct = meta.compress_type();
    let payload = if ct == 0 {
        payload
    } else {
        compress::decompress(ct, &payload, max_decompressed)
            .map_err(|e| RpcError::new(errno::ERESPONSE, format!("response payload: {e}")))?
    };
    cntl.response_attachment = attachment;
    Ok(payload)
}
