//! Wire protocols, each one folder (bRPC's `protocol.h`).
//!
//! A protocol is a type implementing [`Protocol`]: it cuts its messages
//! out of a connection's input, processes requests on a server, verifies
//! a connection's first message, and keeps whatever it needs per
//! connection in the socket's opaque slot
//! ([`Socket::protocol_state`]). Its client half, [`ClientProtocol`],
//! packs requests and turns responses into results for the one call
//! engine ([`crate::channel::CallEngine`]).
//!
//! - [`baidu_std`]: bRPC's default protocol, byte-compatible with bRPC;
//! - [`http`]: HTTP/1.1 (server and client), with the builtin console;
//! - [`streaming`]: bRPC's streaming RPC (STRM frames on baidu_std
//!   connections), byte-compatible with bRPC.
//! - [`redis`]: RESP2, a [`redis::RedisService`] on a server (served
//!   only when added) and [`redis::RedisChannel`] for any redis server.
//! - [`h2`]: HTTP/2 (server and client), the same handlers and
//!   console, and gRPC on top ([`grpc`], with its client
//!   [`grpc::GrpcChannel`]).
//!
//! A server detects the protocol per connection: it tries its protocols
//! in order, the one that matched last on this connection first, and
//! each says "mine", "need more", "not mine" or "bad". Neither the socket
//! nor the input messenger names a protocol.
//!
//! # How to add a protocol
//!
//! 1. Define the message type and implement [`Protocol`] for a unit
//!    struct: `parse` cuts one message (or says [`Parsed::NeedMore`] /
//!    [`Parsed::NotMine`] / [`Parsed::Bad`]), `process_request` answers
//!    it with [`Socket::write`] — through the server's services with
//!    [`ServerContext::call_method`], or on its own.
//! 2. Serve it: [`crate::Server::add_protocol`] before `start`. It shares
//!    the port with baidu_std and HTTP; keep `parse` quick to say
//!    `NotMine` for input that is not yours (look at the first bytes).
//! 3. Call it: implement [`ClientProtocol`] (pack a request under a
//!    correlation id, say which call a response answers, turn it into
//!    the call's result) and make a [`crate::channel::CallEngine`] with
//!    it. Timeouts, retries, backup requests, connection pooling and the
//!    sync, callback and `Future` forms come from the engine. `call_name`
//!    names a call for interceptors and [rpcz](crate::rpcz), and
//!    `pack_request` may carry the ids of the controller's span (as
//!    baidu_std's meta and HTTP's `traceparent` do).
//!
//! `crates/rpc/tests/custom_protocol.rs` does exactly this for a small
//! line-based protocol.

pub mod baidu_std;
pub mod grpc;
pub mod h2;
pub mod http;
pub mod redis;
mod registry;
pub mod streaming;

use std::sync::Arc;

use fibrpc_iobuf::IOBuf;

pub use crate::server::ServerContext;
use crate::socket::Socket;
use crate::{Controller, RpcError};
pub(crate) use registry::{ProtocolList, ServerMessage};

/// What a protocol found at the front of a connection's input.
#[derive(Debug)]
pub enum Parsed<M> {
    /// A complete message, cut from the input.
    Message(M),
    /// Possibly this protocol's, but incomplete: read more. Nothing may
    /// have been consumed.
    NeedMore,
    /// Not this protocol's: try the next. Nothing may have been consumed.
    NotMine,
    /// This protocol's, but malformed: the connection closes, and the
    /// reason is logged.
    Bad(String),
    /// This protocol's, and already handled where it was cut (in the
    /// connection's reader, in input order): something was consumed (a
    /// control frame, part of a message kept in the connection's state)
    /// and there is nothing to process yet. The parse is called again on
    /// what is left, or after more is read. For connections that carry
    /// more than messages: HTTP/2's SETTINGS, PING and WINDOW_UPDATE
    /// frames, bRPC's stream frames (which only move bytes into a stream
    /// and must keep their order).
    Consumed,
}

/// One wire protocol: its messages, how they are cut, and how a server
/// processes them. See the [module docs](self) for how to add one.
pub trait Protocol: Send + Sync + 'static {
    /// One message as cut from the input.
    type Message: Send + 'static;

    /// The protocol's name, for logs and `/connections`.
    fn name(&self) -> &'static str;

    /// Cuts one message off the front of `input`, consuming nothing
    /// unless it returns a message or [`Parsed::Consumed`]. Runs in the
    /// connection's reader, one call at a time per connection, so state kept in
    /// [`Socket::protocol_state`] may count messages in input order.
    /// `eof`: the peer closed its side; nothing more will come.
    fn parse(&self, input: &mut IOBuf, conn: &Arc<Socket>, eof: bool) -> Parsed<Self::Message>;

    /// Whether nothing after `msg` is read from the connection: it closes
    /// once `msg` is answered (HTTP's `Connection: close`). Default: no.
    fn ends_input(&self, _msg: &Self::Message) -> bool {
        false
    }

    /// Checks the first message of a server connection before anything
    /// is processed (credentials, a handshake): runs in the connection's
    /// reader, once. An error refuses the connection: nothing after this
    /// message is read, and [`reject`](Self::reject) answers it. A
    /// protocol that carries credentials hands them to
    /// [`crate::auth::verify_connection`]. Default: accept.
    fn verify(
        &self,
        _first: &Self::Message,
        _conn: &Arc<Socket>,
        _server: &ServerContext,
    ) -> Result<(), RpcError> {
        Ok(())
    }

    /// Answers `msg`, the first message of a connection that
    /// [`verify`](Self::verify) refused, with `error` (in a fiber of its
    /// own), and closes the connection once the answer is written.
    /// Default: closes at once without an answer.
    fn reject(
        &self,
        _msg: Self::Message,
        conn: &Arc<Socket>,
        _server: &ServerContext,
        error: RpcError,
    ) {
        conn.set_failed(error);
    }

    /// The server stopped accepting: tell this connection's peer to send
    /// no new requests (HTTP/2's GOAWAY). Requests already read are
    /// still answered. Called once per connection by
    /// [`Server::stop`](crate::Server::stop), from the stopping thread.
    /// Default: nothing (baidu_std answers later requests `ELOGOFF`).
    fn on_server_stop(&self, _conn: &Arc<Socket>) {}

    /// What this protocol keeps for `conn`, as `name : value` lines for
    /// the console's `/connections/ID` (streams open, windows, ...). It
    /// must not wait: take no lock another fiber may hold long (a
    /// `try_lock` that gives up is fine). Default: nothing.
    fn describe_connection(&self, _conn: &Socket) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// Processes one request on a server connection, in a fiber of its
    /// own (it may block), and writes the answer with [`Socket::write`].
    /// Default: the protocol is client-only, the connection closes.
    fn process_request(&self, _msg: Self::Message, conn: &Arc<Socket>, _server: &ServerContext) {
        conn.set_failed(RpcError::new(
            crate::errno::EREQUEST,
            format!("{} carries no requests to a server", self.name()),
        ));
    }
}

/// The client half of a protocol: what the call engine needs to send a
/// request and to hand the response to its call.
pub trait ClientProtocol: Protocol {
    /// What a call sends (kept for retries).
    type Request: Send + 'static;
    /// What a call gets back.
    type Response: Send + 'static;

    /// Whether a connection carries one call at a time (HTTP/1.1): then a
    /// channel's `Single` connection type means `Pooled`. Default: no,
    /// responses are matched by correlation id.
    fn one_call_per_connection(&self) -> bool {
        false
    }

    /// Whether responses answer requests in the order the requests were
    /// written, with no id on the wire (redis): `pack_request` then
    /// records the correlation id in the connection's state, and the
    /// engine packs and queues each connection's requests under one lock
    /// so that the recorded order is the wire's. A request packed but
    /// refused by the write queue then fails the connection (the record
    /// would no longer match). Default: no.
    fn responses_in_request_order(&self) -> bool {
        false
    }

    /// Whether requests must reach the wire in the order they were
    /// packed, though responses are matched by id (HTTP/2, whose stream
    /// ids must rise): the engine then packs and queues each
    /// connection's requests under one lock, as for
    /// [`responses_in_request_order`](Self::responses_in_request_order).
    /// Default: that.
    fn requests_in_pack_order(&self) -> bool {
        self.responses_in_request_order()
    }

    /// The engine queued (`queued`) the request packed under
    /// `correlation_id` on `conn`, or dropped it unsent (the connection
    /// refused it): a protocol that keeps per-request state from
    /// [`pack_request`](Self::pack_request) (HTTP/2's stream, whose body
    /// may follow only its queued HEADERS) settles it here. Runs under
    /// the order lock when the protocol asks for one.
    ///
    /// A queued request may already be answered: the connection refused
    /// it while it was being packed (HTTP/2's GOAWAY arriving between
    /// the stream's opening and its queueing), before its call waited
    /// where the answer could find it. The protocol returns that answer
    /// and the engine completes the call with it at once. Default:
    /// nothing, no answer.
    fn request_queued(
        &self,
        _correlation_id: u64,
        _conn: &Arc<Socket>,
        _queued: bool,
    ) -> Option<Self::Message> {
        None
    }

    /// The call waiting under `correlation_id` on `conn` gave up (its
    /// deadline passed, or its backup request's answer won) before its
    /// response came: a protocol that keeps per-call state on the
    /// connection (HTTP/2 resets the stream, freeing it) drops it here.
    /// Default: nothing (a late response is dropped).
    fn call_abandoned(&self, _correlation_id: u64, _conn: &Arc<Socket>) {}

    /// Serializes `req` for one attempt under `correlation_id`, which
    /// [`correlation_id`](Self::correlation_id) must return for its
    /// response. Protocols without ids on the wire record it in their
    /// per-connection state (and say
    /// [`responses_in_request_order`](Self::responses_in_request_order)
    /// if several calls share a connection). `req` is mutable so that per-attempt fields
    /// (the id itself) can be set in place rather than copied; the same
    /// request is packed again for a retry or a backup request.
    fn pack_request(
        &self,
        req: &mut Self::Request,
        correlation_id: u64,
        cntl: &Controller,
        conn: &Arc<Socket>,
    ) -> Result<IOBuf, RpcError>;

    /// Which call `msg` answers. `None`: nobody's; the message is dropped
    /// (the protocol may fail the connection). Runs in the connection's
    /// reader: keep it quick.
    fn correlation_id(&self, msg: &Self::Message, conn: &Socket) -> Option<u64>;

    /// Turns a response into the call's result (bRPC's
    /// `process_response`): errors, checksums, decompression, and what
    /// goes into the controller. Runs in the caller's fiber.
    fn process_response(
        &self,
        msg: Self::Message,
        cntl: &mut Controller,
    ) -> Result<Self::Response, RpcError>;

    /// The names interceptors and rpcz spans see for `req`
    /// ([`CallInfo`](crate::interceptor::CallInfo)'s service and method).
    /// Default: empty.
    fn call_name<'r>(&self, _req: &'r Self::Request) -> (&'r str, &'r str) {
        ("", "")
    }

    /// Puts a connection's credential in `req` for the next
    /// [`pack_request`](Self::pack_request) (`None`: takes it out again),
    /// when the channel has an authenticator
    /// ([`ChannelOptions::auth`](crate::ChannelOptions::auth)). Default:
    /// the protocol carries no credentials, and a channel with an
    /// authenticator fails its calls with `ERPCAUTH`.
    fn set_credential(
        &self,
        _req: &mut Self::Request,
        credential: Option<&[u8]>,
    ) -> Result<(), RpcError> {
        match credential {
            None => Ok(()),
            Some(_) => Err(RpcError::new(
                crate::errno::ERPCAUTH,
                format!("{} carries no credentials", self.name()),
            )),
        }
    }

    /// Cuts input on a client connection that [`parse`](Protocol::parse)
    /// said is not this protocol's: the frames of another protocol
    /// multiplexed on the same connection (bRPC's streams on baidu_std
    /// connections). It may yield a message of this protocol found inside
    /// them (a response wrapped in a stream frame) or
    /// [`Parsed::Consumed`]. Default: [`Parsed::NotMine`], the
    /// connection closes.
    fn parse_other(
        &self,
        _input: &mut IOBuf,
        _conn: &Arc<Socket>,
        _eof: bool,
    ) -> Parsed<Self::Message> {
        Parsed::NotMine
    }

    /// Whether the connection may carry another call after `msg`.
    /// Default: yes.
    fn reusable_after(&self, _msg: &Self::Message) -> bool {
        true
    }

    /// Whether running `req` twice is harmless, if the protocol knows
    /// (HTTP: by its method). A call whose request may have reached the
    /// server is retried after a connection failure only if idempotent;
    /// the controller's and the channel's settings come first. Default:
    /// `None`, not known (the call is then not idempotent).
    fn idempotent(&self, _req: &Self::Request) -> Option<bool> {
        None
    }

    /// The size in bytes of a response, for a traced call's span. Asked
    /// only for calls rpcz records. Default: 0, not known.
    fn message_size(&self, _msg: &Self::Message) -> usize {
        0
    }
}
