//! fibrpc: bRPC's architecture rebuilt in Rust.
//!
//! This is the umbrella crate users depend on (see `DESIGN.md` §1). Today it
//! holds the wire-protocol layer:
//!
//! - [`protocol::baidu_std`]: bRPC's default protocol, byte-compatible with
//!   bRPC 1.17 (frame parsing and encoding, the `RpcMeta` messages, payload
//!   compression, CRC32C checksums);
//! - [`errno`]: bRPC's error code numbers.
//!
//! The RPC core (`Socket`, `InputMessenger`, `Server`, `Channel`,
//! `Controller`) and the re-exports of the fiber runtime, IOBuf and bvar
//! arrive with the rest of issue 5.

pub mod errno;
pub mod protocol;

pub use fibrpc_iobuf::IOBuf;
