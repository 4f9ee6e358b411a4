//! fibrpc: bRPC's architecture rebuilt in Rust.
//!
//! This is the umbrella crate users depend on (see `DESIGN.md` §1):
//!
//! - [`Server`] hosts [`Service`]s (generated from `.proto` files by
//!   `fibrpc-build`); each request runs in a fiber, so handlers are plain
//!   synchronous code.
//! - [`Channel`] calls a server: synchronously (the calling fiber or thread
//!   waits) or with a completion callback.
//! - [`Controller`] carries the per-call settings and results.
//! - [`protocol::baidu_std`]: bRPC's default protocol, byte-compatible with
//!   bRPC 1.17; [`errno`]: bRPC's error code numbers.

pub mod channel;
pub mod codec;
mod controller;
pub mod errno;
mod error;
pub mod example;
pub mod protocol;
mod service;

pub use channel::Channel;
pub use controller::Controller;
pub use error::RpcError;
pub use fibrpc_fiber as fiber;
pub use fibrpc_iobuf as iobuf;
pub use fibrpc_iobuf::IOBuf;
pub use protocol::baidu_std::compress::CompressType;
pub use service::Service;
