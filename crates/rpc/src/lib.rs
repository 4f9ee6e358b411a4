//! fibrpc: bRPC's architecture rebuilt in Rust.
//!
//! This is the crate users depend on:
//!
//! - [`Server`] hosts [`Service`]s (generated from `.proto` files by
//!   `fibrpc-build`) and serves every [`protocol`] on one port; each
//!   request runs in a fiber, so handlers are plain synchronous code (or
//!   answer later through a [`Responder`]).
//! - [`Channel`] calls a server over baidu_std: synchronously (the
//!   calling fiber or thread waits), with a completion callback, or as a
//!   `Future` on any executor. [`http::HttpChannel`] does the same over
//!   HTTP/1.1 and [`redis::RedisChannel`] over redis; all are fronts
//!   over the one [`channel::CallEngine`].
//! - [`Controller`] carries the per-call settings and results.
//! - [`protocol`]: one folder per wire protocol (baidu_std,
//!   byte-compatible with bRPC; HTTP/1.1; redis), and how to add one;
//!   [`errno`]: bRPC's error code numbers.
//! - [`builtin`]: the web console every server answers over HTTP
//!   (`/status`, `/vars`, `/flags`, `/rpcz`, ...) and who can reach it.
//! - [`rpcz`]: per-call tracing spans, their ids on the wire, and the
//!   trace context of a handler's fiber.
//!
//! Layers inside the crate, lower never importing higher: `socket` (a
//! connection: bytes, limits, the wait-free write path; it names no
//! protocol) ← `input_messenger` (reading and cutting) ← `protocol`
//! (each wire protocol) ← `server` and `channel` (the call engine).

pub mod auth;
pub mod builtin;
pub mod call_context;
pub mod channel;
pub mod codec;
mod controller;
mod error;
pub mod flags;
mod global_vars;
pub mod http;
mod input_messenger;
pub mod interceptor;
pub mod profile;
pub mod protocol;
pub mod rpcz;
pub use protocol::redis;
pub mod rpc_dump;
pub mod server;
mod service;
pub mod socket;
pub mod tls;
mod unstarted;

pub use channel::{connect, Channel, ChannelOptions, ConnectionType, RpcChannel};
pub use controller::Controller;
pub use error::RpcError;
pub use protocol::baidu_std::compress::CompressType;
pub use protocol::grpc::{GrpcChannel, StreamingChannel};
pub use server::{Responder, Server, ServerOptions};
pub use service::{MethodKind, Service};

pub mod errno;

pub use fibrpc_bvar as bvar;
pub use fibrpc_fiber as fiber;
pub use fibrpc_iobuf as iobuf;
pub use fibrpc_iobuf::IOBuf;
