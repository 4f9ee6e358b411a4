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

// Under loom only the lock-free write list is built and model-checked
// (`RUSTFLAGS="--cfg loom" cargo test -p fibrpc --lib loom`).
#[cfg(loom)]
#[path = "socket/write_list.rs"]
mod write_list_loom;

#[cfg(not(loom))]
mod builtin;
#[cfg(not(loom))]
pub mod channel;
#[cfg(not(loom))]
pub mod codec;
#[cfg(not(loom))]
mod controller;
pub mod errno;
#[cfg(not(loom))]
mod error;
#[cfg(not(loom))]
pub mod example;
#[cfg(not(loom))]
pub mod flags;
#[cfg(not(loom))]
mod global_vars;
#[cfg(not(loom))]
pub mod http;
#[cfg(not(loom))]
mod input_messenger;
#[cfg(not(loom))]
pub mod protocol;
#[cfg(not(loom))]
pub mod server;
#[cfg(not(loom))]
mod service;
#[cfg(not(loom))]
pub mod socket;

#[cfg(not(loom))]
pub use channel::{Channel, ChannelOptions, ConnectionType};
#[cfg(not(loom))]
pub use controller::Controller;
#[cfg(not(loom))]
pub use error::RpcError;
pub use fibrpc_bvar as bvar;
pub use fibrpc_fiber as fiber;
pub use fibrpc_iobuf as iobuf;
pub use fibrpc_iobuf::IOBuf;
#[cfg(not(loom))]
pub use protocol::baidu_std::compress::CompressType;
#[cfg(not(loom))]
pub use server::{Server, ServerOptions};
#[cfg(not(loom))]
pub use service::Service;
