//! baidu_std, bRPC's default protocol, byte-for-byte.
//!
//! A frame is a 12-byte header followed by the body:
//!
//! ```text
//! +------+-----------+-----------+------------------------------------+
//! | PRPC | body_size | meta_size | body = meta | payload | attachment |
//! | 4 B  | u32 BE    | u32 BE    | body_size bytes                    |
//! +------+-----------+-----------+------------------------------------+
//! ```
//!
//! `meta` is a protobuf-encoded [`RpcMeta`] (`meta_size` bytes); the last
//! `attachment_size` bytes of the body are the raw attachment; what is
//! between is the (possibly compressed, see [`compress`]) payload message.
//! [`checksum`] optionally covers the payload (and the attachment).
//!
//! - [`meta`]: the `RpcMeta` messages;
//! - [`frame`]: [`probe`], [`parse`] and [`encode`];
//! - [`compress`]: payload compression (none, snappy, gzip, zlib, lz4);
//! - [`checksum`]: CRC32C as bRPC computes it;
//! - [`BaiduStd`]: the protocol as servers and the call engine use it,
//!   with `server.rs` (a request frame becomes a method call and its
//!   response frame) and [`client`] (a call's request frame, and the
//!   result of its response).
//!
//! ```
//! use fibrpc::protocol::baidu_std::{encode, parse, ParseResult, RpcMeta, RpcRequestMeta};
//! use fibrpc::IOBuf;
//!
//! let meta = RpcMeta {
//!     request: Some(RpcRequestMeta {
//!         service_name: "example.EchoService".into(),
//!         method_name: "Echo".into(),
//!         ..Default::default()
//!     }),
//!     correlation_id: Some(1),
//!     attachment_size: Some(5),
//!     ..Default::default()
//! };
//! let mut wire = IOBuf::new();
//! encode(&meta, &IOBuf::from("payload"), &IOBuf::from("hello"), &mut wire).unwrap();
//!
//! let ParseResult::Complete(frame) = parse(&mut wire, 64 << 20) else { panic!() };
//! assert_eq!(frame.meta, meta);
//! assert_eq!(frame.payload, "payload");
//! assert_eq!(frame.attachment, "hello");
//! assert!(wire.is_empty());
//! ```

pub mod checksum;
pub mod client;
pub mod compress;
pub mod frame;
pub mod meta;
mod protocol;
mod server;

pub use frame::{
    encode, parse, probe, EncodeError, Frame, ParseError, ParseResult, Probe, DEFAULT_MAX_BODY,
    HEADER_LEN, MAGIC,
};
pub use meta::{ChunkInfo, RpcMeta, RpcRequestMeta, RpcResponseMeta, StreamSettings};
pub use protocol::BaiduStd;
