//! The baidu_std meta messages (`brpc/policy/baidu_rpc_meta.proto`,
//! `brpc/streaming_rpc_meta.proto`), written by hand with the proto2 field
//! numbers.
//!
//! Every optional scalar is an `Option` so that presence survives a round
//! trip: bRPC writes some zero-valued fields explicitly (a request carries
//! `log_id = 0`, `compress_type = 0`, `content_type = 0`, `checksum_type = 0`
//! and an empty `checksum_value`), and reproducing its frames byte for byte
//! needs to say so. prost generates a getter per optional field (e.g.
//! [`RpcMeta::compress_type`]) that returns the default when the field is
//! absent. Unknown fields are skipped when decoding, as protobuf requires.

use std::collections::BTreeMap;

/// The meta at the start of every baidu_std body.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcMeta {
    /// Present on requests.
    #[prost(message, optional, tag = "1")]
    pub request: Option<RpcRequestMeta>,
    /// Present on responses.
    #[prost(message, optional, tag = "2")]
    pub response: Option<RpcResponseMeta>,
    /// Compression of the payload (see [`super::compress::CompressType`]).
    #[prost(int32, optional, tag = "3")]
    pub compress_type: Option<i32>,
    /// Matches a response to its request on a multiplexed connection.
    #[prost(int64, optional, tag = "4")]
    pub correlation_id: Option<i64>,
    /// Bytes at the end of the body that are the raw attachment.
    #[prost(int32, optional, tag = "5")]
    pub attachment_size: Option<i32>,
    /// Streaming RPC: which stream and chunk this frame carries.
    #[prost(message, optional, tag = "6")]
    pub chunk_info: Option<ChunkInfo>,
    /// Credentials checked by the server's authenticator.
    #[prost(bytes = "vec", optional, tag = "7")]
    pub authentication_data: Option<Vec<u8>>,
    /// Streaming RPC: settings of the stream created with this call.
    #[prost(message, optional, tag = "8")]
    pub stream_settings: Option<StreamSettings>,
    /// Free-form key/value pairs carried with the call (sorted, so encoding
    /// is deterministic).
    #[prost(btree_map = "string, string", tag = "9")]
    pub user_fields: BTreeMap<String, String>,
    /// Payload serialization: 0 protobuf, 1 json, 2 proto-json, 3 proto-text.
    #[prost(int32, optional, tag = "10")]
    pub content_type: Option<i32>,
    /// 0 none, 1 CRC32C (see [`super::checksum`]).
    #[prost(int32, optional, tag = "11")]
    pub checksum_type: Option<i32>,
    /// The checksum, meaningful only when `checksum_type` is not 0.
    #[prost(bytes = "vec", optional, tag = "12")]
    pub checksum_value: Option<Vec<u8>>,
    /// Whether the checksum also covers the attachment.
    #[prost(bool, optional, tag = "13")]
    pub checksum_with_attachment: Option<bool>,
}

/// The request half of [`RpcMeta`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcRequestMeta {
    /// Full service name, e.g. `example.EchoService` (at most 64 characters
    /// by the spec).
    #[prost(string, required, tag = "1")]
    pub service_name: String,
    /// Method name, e.g. `Echo`.
    #[prost(string, required, tag = "2")]
    pub method_name: String,
    /// Log id chosen by the caller, for tracing a call through logs.
    #[prost(int64, optional, tag = "3")]
    pub log_id: Option<i64>,
    /// rpcz trace id.
    #[prost(int64, optional, tag = "4")]
    pub trace_id: Option<i64>,
    /// rpcz span id.
    #[prost(int64, optional, tag = "5")]
    pub span_id: Option<i64>,
    /// rpcz parent span id.
    #[prost(int64, optional, tag = "6")]
    pub parent_span_id: Option<i64>,
    /// Request id (a string set by some clients).
    #[prost(string, optional, tag = "7")]
    pub request_id: Option<String>,
    /// The caller's remaining timeout, for the server to give up early.
    #[prost(int32, optional, tag = "8")]
    pub timeout_ms: Option<i32>,
}

/// The response half of [`RpcMeta`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcResponseMeta {
    /// 0 on success, else a code from [`crate::errno`] or a system errno.
    #[prost(int32, optional, tag = "1")]
    pub error_code: Option<i32>,
    /// Human-readable reason of the failure.
    #[prost(string, optional, tag = "2")]
    pub error_text: Option<String>,
}

/// Streaming RPC: the position of a chunk in a stream.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChunkInfo {
    /// The stream the chunk belongs to.
    #[prost(int64, required, tag = "1")]
    pub stream_id: i64,
    /// Sequence number of the chunk in the stream.
    #[prost(int64, required, tag = "2")]
    pub chunk_id: i64,
}

/// Streaming RPC: settings of a stream (bRPC's `StreamSettings`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamSettings {
    /// The id of the stream on the sender's side.
    #[prost(int64, required, tag = "1")]
    pub stream_id: i64,
    /// Whether the receiver must send consumption feedback (the sender
    /// has a flow-control window).
    #[prost(bool, optional, tag = "2")]
    pub need_feedback: Option<bool>,
    /// Whether the sender reads what the receiver writes (it installed
    /// a handler), so the receiver may send DATA.
    #[prost(bool, optional, tag = "3")]
    pub writable: Option<bool>,
    /// The sender's 2nd..Nth stream ids when one call opens several
    /// (proto2 `repeated int64`, not packed, as bRPC writes it).
    #[prost(int64, repeated, packed = "false", tag = "4")]
    pub extra_stream_ids: Vec<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn unknown_fields_are_skipped() {
        let meta = RpcMeta {
            correlation_id: Some(7),
            request: Some(RpcRequestMeta {
                service_name: "s".into(),
                method_name: "m".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut bytes = meta.encode_to_vec();
        // Field 99 varint, field 100 length-delimited, field 101 fixed32,
        // field 102 fixed64: none of them known.
        bytes.extend_from_slice(&[0x98, 0x06, 0x2a]);
        bytes.extend_from_slice(&[0xa2, 0x06, 0x03, b'a', b'b', b'c']);
        bytes.extend_from_slice(&[0xad, 0x06, 1, 2, 3, 4]);
        bytes.extend_from_slice(&[0xb1, 0x06, 1, 2, 3, 4, 5, 6, 7, 8]);
        let back = RpcMeta::decode(&bytes[..]).unwrap();
        assert_eq!(back, meta);
    }

    #[test]
    fn presence_is_kept() {
        let meta = RpcMeta {
            compress_type: Some(0),
            checksum_value: Some(Vec::new()),
            ..Default::default()
        };
        let bytes = meta.encode_to_vec();
        assert_eq!(bytes, [0x18, 0x00, 0x62, 0x00]);
        assert_eq!(RpcMeta::decode(&bytes[..]).unwrap(), meta);
        assert_eq!(RpcMeta::default().encode_to_vec(), Vec::<u8>::new());
        assert_eq!(RpcMeta::default().compress_type(), 0);
    }

    #[test]
    fn stream_settings_and_user_fields_round_trip() {
        let mut meta = RpcMeta {
            stream_settings: Some(StreamSettings {
                stream_id: 5,
                need_feedback: Some(true),
                writable: Some(false),
                extra_stream_ids: vec![6, 7],
            }),
            chunk_info: Some(ChunkInfo {
                stream_id: 5,
                chunk_id: 9,
            }),
            ..Default::default()
        };
        meta.user_fields.insert("k".into(), "v".into());
        let back = RpcMeta::decode(&meta.encode_to_vec()[..]).unwrap();
        assert_eq!(back, meta);
    }
}
