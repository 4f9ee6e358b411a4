//! Protobuf messages to and from [`IOBuf`], without a flat copy: `prost`
//! encodes through [`IOBufAppender`] (a `BufMut`) and decodes from the
//! IOBuf's blocks (a `Buf`). Generated services and stubs call these.

use fibrpc_iobuf::{IOBuf, IOBufAppender};

use crate::{errno, RpcError};

/// Serializes `msg` into a new IOBuf.
pub fn encode<M: prost::Message>(msg: &M) -> IOBuf {
    let mut out = IOBuf::new();
    {
        let mut app = IOBufAppender::new(&mut out);
        msg.encode_raw(&mut app);
    }
    out
}

/// Parses a message of type `M` from `buf` (which is left as it was).
/// A payload that does not parse is an error carrying `code`
/// ([`errno::EREQUEST`] on servers, [`errno::ERESPONSE`] on clients).
/// As everywhere with `prost`, proto2 `required` fields are not enforced:
/// a missing one decodes to its default.
pub fn decode<M: prost::Message + Default>(buf: &IOBuf, code: i32) -> Result<M, RpcError> {
    M::decode(buf.clone()).map_err(|e| {
        RpcError::new(
            code,
            format!(
                "cannot parse {} from {} bytes: {e}",
                std::any::type_name::<M>(),
                buf.len()
            ),
        )
    })
}

/// [`decode`] with the server's code, [`errno::EREQUEST`].
pub fn decode_request<M: prost::Message + Default>(buf: &IOBuf) -> Result<M, RpcError> {
    decode(buf, errno::EREQUEST)
}

/// [`decode`] with the client's code, [`errno::ERESPONSE`].
pub fn decode_response<M: prost::Message + Default>(buf: &IOBuf) -> Result<M, RpcError> {
    decode(buf, errno::ERESPONSE)
}
