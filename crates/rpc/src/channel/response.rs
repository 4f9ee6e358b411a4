//! Turning a response frame into the call's result.

use fibrpc_iobuf::IOBuf;

use crate::protocol::baidu_std::{checksum, compress, Frame};
use crate::{errno, Controller, RpcError};

/// Checks the frame (error code, checksum), decompresses the payload and
/// moves the attachment into `cntl`.
pub(super) fn finish(frame: Frame, cntl: &mut Controller) -> Result<IOBuf, RpcError> {
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
        compress::decompress(ct, &payload, crate::protocol::baidu_std::DEFAULT_MAX_BODY)
            .map_err(|e| RpcError::new(errno::ERESPONSE, format!("response payload: {e}")))?
    };
    cntl.response_attachment = attachment;
    Ok(payload)
}
