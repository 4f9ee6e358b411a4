//! Redis (RESP2), server and client (bRPC's `redis_protocol`).
//!
//! - Server: a [`RedisService`] holds a [`RedisCommandHandler`] per
//!   command name; [`crate::Server::add_redis_service`] makes the
//!   server's port speak redis next to baidu_std and HTTP. Commands come
//!   as RESP arrays of bulk strings or as inline lines, pipelined: every
//!   command of a read runs in order and the replies go out together
//!   (`server.rs`). The parser (`command.rs`) follows redis' limits and
//!   error texts ([`RedisLimits`]) and resumes where the last read left
//!   it.
//! - Client: [`RedisChannel`] over the call engine: a [`RedisRequest`]
//!   of commands, a [`RedisResponse`] of as many [`RedisReply`] values,
//!   calls pipelined on one connection (`client.rs`, `resp.rs`).
//!
//! # Detection on a shared port
//!
//! A server tries baidu_std and HTTP first; redis is asked only about
//! input they both refused, and only on servers with a redis service
//! (as bRPC's `ServerOptions.redis_service`). RESP starts with `*`; an
//! inline command is a line of text, so an inline command whose first
//! word is an HTTP method (`GET key`) on a fresh connection is HTTP's
//! (answered `400`): clients send RESP, and once a connection spoke
//! redis, its inline lines are redis'.

mod client;
mod command;
mod cursor;
mod reply;
mod resp;
mod server;
mod service;

pub use client::{RedisChannel, RedisClientProtocol, RedisReplies, RedisRequest, RedisResponse};
pub use command::{split_args, CommandParse, CommandParser, RedisLimits};
pub use reply::RedisReply;
pub use resp::{RespLimits, RespParse, RespParser};
pub(crate) use server::RedisServerProtocol;
pub use service::{RedisCommandHandler, RedisService};
