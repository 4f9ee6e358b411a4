//! Redis on a client: [`RedisClientProtocol`] for the call engine, and
//! [`RedisChannel`], its front for any redis server (bRPC's redis
//! client: a `RedisRequest` of commands, a `RedisResponse` of as many
//! replies).
//!
//! Redis has no correlation ids: replies come in the order of the
//! commands. Each connection's state keeps the calls sent on it, oldest
//! first, with the number of replies each waits for; the parser hands
//! the oldest call its replies once all are there. Calls share a
//! connection (pipelined); the engine packs and writes each
//! connection's requests under one lock
//! ([`ClientProtocol::responses_in_request_order`]) so that this order is
//! the wire's.

use std::collections::VecDeque;
use std::net::ToSocketAddrs;
use std::sync::{Arc, Mutex};

use fibrpc_iobuf::IOBuf;

use super::reply::{encode_bulk, head};
use super::resp::{RespLimits, RespParse, RespParser};
use super::RedisReply;
use crate::channel::{CallEngine, CallFuture, ChannelOptions};
use crate::protocol::{ClientProtocol, Parsed, Protocol};
use crate::socket::Socket;
#[cfg(doc)]
use crate::ConnectionType;
use crate::{errno, Controller, RpcError};

/// Commands that change nothing: a request made of them only is
/// idempotent (retried after a connection failure even if it may have
/// reached the server).
const READ_ONLY: &[&str] = &[
    "get",
    "mget",
    "exists",
    "strlen",
    "getrange",
    "ttl",
    "pttl",
    "type",
    "ping",
    "echo",
    "hget",
    "hmget",
    "hgetall",
    "hexists",
    "hlen",
    "hkeys",
    "hvals",
    "llen",
    "lrange",
    "lindex",
    "scard",
    "smembers",
    "sismember",
    "zcard",
    "zscore",
    "zrange",
    "zrank",
    "dbsize",
    "keys",
    "scan",
    "info",
    "time",
];

/// Bytes of a command gathered on the stack before they are appended to
/// the request: each append to an `IOBuf` looks up the thread's block,
/// and a command is `3 + 3 * args` pieces, so a short command goes in one.
const STAGE: usize = 256;

/// A command's bytes on their way to an `IOBuf`, appended in pieces of up
/// to [`STAGE`] bytes (a longer argument goes straight through).
struct Staged<'a> {
    out: &'a mut IOBuf,
    buf: [u8; STAGE],
    len: usize,
}

impl<'a> Staged<'a> {
    fn new(out: &'a mut IOBuf) -> Self {
        Staged {
            out,
            buf: [0; STAGE],
            len: 0,
        }
    }

    fn put(&mut self, bytes: &[u8]) {
        if self.len + bytes.len() > STAGE {
            self.flush();
            if bytes.len() > STAGE {
                self.out.append(bytes);
                return;
            }
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// `<kind><n>\r\n`, as [`head`] appends it.
    fn head(&mut self, kind: u8, n: usize) {
        let mut digits = itoa::Buffer::new();
        self.put(&[kind]);
        self.put(digits.format(n).as_bytes());
        self.put(b"\r\n");
    }

    /// Appends what is gathered.
    fn flush(&mut self) {
        if self.len > 0 {
            self.out.append(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

/// One or more commands sent together (pipelined), answered by a
/// [`RedisResponse`] of as many replies (bRPC's `RedisRequest`). Built
/// once; cloning shares the encoded bytes.
///
/// ```
/// let mut req = fibrpc::redis::RedisRequest::new();
/// req.add_command(&["SET", "k", "v"]).add_command(&["GET", "k"]);
/// req.add_command_line("INCRBY counter 5")?;
/// assert_eq!(req.command_count(), 3);
/// # Ok::<(), fibrpc::RpcError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RedisRequest {
    wire: IOBuf,
    count: usize,
    read_only: bool,
}

impl Default for RedisRequest {
    fn default() -> Self {
        RedisRequest {
            wire: IOBuf::new(),
            count: 0,
            read_only: true,
        }
    }
}

impl RedisRequest {
    /// A request with no command yet.
    pub fn new() -> RedisRequest {
        RedisRequest::default()
    }

    /// Adds a command: its name and arguments (copied).
    pub fn add_command<A: AsRef<[u8]>>(&mut self, args: &[A]) -> &mut Self {
        let mut w = Staged::new(&mut self.wire);
        w.head(b'*', args.len());
        for a in args {
            let a = a.as_ref();
            w.head(b'$', a.len());
            w.put(a);
            w.put(b"\r\n");
        }
        w.flush();
        self.counted(args.first().map(|a| a.as_ref()))
    }

    /// Adds a command whose arguments are buffers: large ones are sent
    /// by reference (zero-copy), say a value to `SET`.
    pub fn add_command_bufs(&mut self, args: &[IOBuf]) -> &mut Self {
        head(&mut self.wire, b'*', args.len() as i64);
        for a in args {
            encode_bulk(&mut self.wire, a);
        }
        let name = args.first().map(|a| a.to_vec());
        self.counted(name.as_deref())
    }

    /// Adds a command written as `redis-cli` takes it: words, `"..."`
    /// with escapes, `'...'`. Fails on unbalanced quotes or an empty
    /// line.
    pub fn add_command_line(&mut self, line: &str) -> Result<&mut Self, RpcError> {
        match super::command::split_args(line.as_bytes()) {
            Some(args) if !args.is_empty() => Ok(self.add_command(&args)),
            _ => Err(RpcError::new(
                libc::EINVAL,
                format!("not a redis command: {line:?}"),
            )),
        }
    }

    fn counted(&mut self, name: Option<&[u8]>) -> &mut Self {
        self.count += 1;
        let read_only = name.is_some_and(|n| {
            READ_ONLY
                .iter()
                .any(|r| r.len() == n.len() && n.eq_ignore_ascii_case(r.as_bytes()))
        });
        self.read_only &= read_only;
        self
    }

    /// The number of commands (and of replies the response will hold).
    pub fn command_count(&self) -> usize {
        self.count
    }

    /// Whether the request has no command.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// The replies to a [`RedisRequest`], one per command, in order (bRPC's
/// `RedisResponse`). A command that failed has an
/// [`Error`](RedisReply::Error) reply; the call itself succeeded.
#[derive(Debug, Clone)]
pub struct RedisResponse {
    replies: Replies,
}

impl RedisResponse {
    /// The reply to command `i`.
    pub fn reply(&self, i: usize) -> Option<&RedisReply> {
        self.replies().get(i)
    }

    /// The number of replies.
    pub fn reply_size(&self) -> usize {
        self.replies().len()
    }

    /// All replies, in command order.
    pub fn replies(&self) -> &[RedisReply] {
        match &self.replies {
            Replies::One(r) => std::slice::from_ref(r),
            Replies::Many(v) => v,
        }
    }

    /// The replies, owned.
    pub fn into_replies(self) -> Vec<RedisReply> {
        match self.replies {
            Replies::One(r) => vec![r],
            Replies::Many(v) => v,
        }
    }
}

impl PartialEq for RedisResponse {
    fn eq(&self, other: &Self) -> bool {
        self.replies() == other.replies()
    }
}

/// A call's replies: the one reply of a one-command call is kept as it
/// is, not in a `Vec` of its own (an allocation and a free per call, on
/// the commonest call).
#[derive(Debug, Clone)]
enum Replies {
    One(RedisReply),
    Many(Vec<RedisReply>),
}

/// The replies to one call, as cut from a connection, and the call they
/// answer.
#[derive(Debug)]
pub struct RedisReplies {
    /// The correlation id of the call, taken off the connection's list of
    /// calls sent when its last reply was cut (under the lock the parse
    /// holds anyway, not a second time).
    id: u64,
    replies: Replies,
}

/// What a client connection keeps: the calls waiting, oldest first
/// (correlation id, replies wanted), and the replies of the oldest cut so
/// far.
#[derive(Debug, Default)]
struct ClientConn {
    state: Mutex<ClientState>,
}

#[derive(Debug, Default)]
struct ClientState {
    sent: VecDeque<(u64, usize)>,
    parser: RespParser,
    replies: Vec<RedisReply>,
}

impl ClientConn {
    fn lock(&self) -> std::sync::MutexGuard<'_, ClientState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Redis replies, as a client sees them (the call engine's protocol
/// under [`RedisChannel`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct RedisClientProtocol;

impl Protocol for RedisClientProtocol {
    type Message = RedisReplies;

    fn name(&self) -> &'static str {
        "redis"
    }

    /// Cuts replies (consuming each as it completes: they are kept in
    /// the connection's state, so a long reply is parsed once) until the
    /// oldest call has all of its own.
    fn parse(&self, input: &mut IOBuf, sock: &Arc<Socket>, _eof: bool) -> Parsed<RedisReplies> {
        let Some(conn) = sock.protocol_state::<ClientConn>() else {
            return Parsed::Bad("the connection speaks another protocol".into());
        };
        let limits = RespLimits {
            max_reply_bytes: sock.max_body_size(),
            ..RespLimits::default()
        };
        let mut s = conn.lock();
        let s = &mut *s;
        loop {
            let Some(&(id, want)) = s.sent.front() else {
                return Parsed::Bad("a reply nobody asked for".into());
            };
            match s.parser.parse(input, &limits) {
                RespParse::Reply(r) => {
                    let replies = if want <= 1 {
                        Replies::One(r)
                    } else {
                        if s.replies.is_empty() {
                            // Never reserve ahead of what the input backs.
                            s.replies.reserve(want.min(1024));
                        }
                        s.replies.push(r);
                        if s.replies.len() < want {
                            if input.is_empty() {
                                return Parsed::NeedMore;
                            }
                            continue;
                        }
                        Replies::Many(std::mem::take(&mut s.replies))
                    };
                    s.sent.pop_front();
                    return Parsed::Message(RedisReplies { id, replies });
                }
                RespParse::NeedMore => return Parsed::NeedMore,
                RespParse::Error(e) => return Parsed::Bad(e),
            }
        }
    }
}

impl ClientProtocol for RedisClientProtocol {
    type Request = RedisRequest;
    type Response = RedisResponse;

    fn responses_in_request_order(&self) -> bool {
        true
    }

    fn pack_request(
        &self,
        req: &mut RedisRequest,
        correlation_id: u64,
        _cntl: &Controller,
        conn: &Arc<Socket>,
    ) -> Result<IOBuf, RpcError> {
        if req.is_empty() {
            return Err(RpcError::new(
                errno::EREQUEST,
                "a redis request with no command",
            ));
        }
        let state = conn.protocol_state::<ClientConn>().ok_or_else(|| {
            RpcError::new(errno::EINTERNAL, "the connection speaks another protocol")
        })?;
        state.lock().sent.push_back((correlation_id, req.count));
        Ok(req.wire.clone())
    }

    fn correlation_id(&self, msg: &RedisReplies, _conn: &Socket) -> Option<u64> {
        Some(msg.id)
    }

    fn process_response(
        &self,
        msg: RedisReplies,
        _cntl: &mut Controller,
    ) -> Result<RedisResponse, RpcError> {
        Ok(RedisResponse {
            replies: msg.replies,
        })
    }

    fn idempotent(&self, req: &RedisRequest) -> Option<bool> {
        req.read_only.then_some(true)
    }
}

/// A client of one redis server (fibrpc's own or a real one). Cheap to
/// clone (clones share connections). By default all calls share one
/// connection, pipelined: each call's commands go out at once and the
/// replies come back in order.
///
/// # One connection, or one per worker
///
/// The default stays [`ConnectionType::Single`], bRPC's: one connection
/// per server whatever the number of workers, so a connection's state on
/// the server (a `SELECT`, a `CLIENT SETNAME`) is every caller's, and the
/// connection count does not grow with the cores. For throughput with many concurrent
/// callers, choose [`ConnectionType::PerWorker`]: each fiber worker
/// pipelines its own callers on its own connection, read on that worker.
/// With one connection the reply reader runs on one worker, while the
/// callers it wakes are spread over all of them and never move (a
/// started fiber stays on its worker): most rounds of replies wake
/// another worker (an eventfd write, a sleep cut short) and the
/// connection's state bounces between cores. The redis crate's tasks
/// follow the reader instead. (16 callers of `GET`/`SET` against one
/// redis-server, `benches/redis/ab_client.sh`: one connection about 0.9×
/// the redis crate's multiplexed connection, per worker about 1.2-1.3×.) What
/// per worker costs: a connection per worker (plus one for plain
/// threads) to each server, state set by a command holds on its worker's
/// connection only, and calls made on different workers are not ordered
/// with each other on the wire. A call returns only once its
/// reply came, so calls ordered by the program (one after the other, or
/// after a signal from the fiber whose call returned) still run in that
/// order; only concurrent ones interleave differently, as they may on
/// one connection too.
///
/// Timeouts, retries, backup requests and the connection type come from
/// [`ChannelOptions`] as for every channel. A call whose connection broke
/// after its request went out is retried only if it is idempotent: made
/// of read-only commands only (`GET`, `MGET`, `EXISTS`, ...), or marked
/// so ([`ChannelOptions::idempotent`], [`Controller::set_idempotent`]).
/// A reply larger than [`ChannelOptions::max_body_size`] closes the
/// connection.
///
/// ```no_run
/// use fibrpc::redis::{RedisChannel, RedisReply, RedisRequest};
///
/// let ch = RedisChannel::new("127.0.0.1:6379", Default::default())?;
/// let mut req = RedisRequest::new();
/// req.add_command(&["SET", "k", "v"]).add_command(&["GET", "k"]);
/// let resp = ch.call(&mut fibrpc::Controller::new(), &req)?;
/// assert_eq!(resp.reply(0), Some(&RedisReply::ok()));
/// assert_eq!(resp.reply(1), Some(&RedisReply::bulk("v")));
/// # Ok::<(), fibrpc::RpcError>(())
/// ```
#[derive(Clone, Debug)]
pub struct RedisChannel {
    engine: CallEngine<RedisClientProtocol>,
}

impl RedisChannel {
    /// A channel to the redis server at `addr` (resolved now; connected
    /// at the first call).
    pub fn new(
        addr: impl ToSocketAddrs,
        options: ChannelOptions,
    ) -> Result<RedisChannel, RpcError> {
        Ok(RedisChannel {
            engine: CallEngine::new(RedisClientProtocol, addr, options)?,
        })
    }

    /// The engine under this channel.
    pub fn engine(&self) -> &CallEngine<RedisClientProtocol> {
        &self.engine
    }

    /// Sends `req`'s commands and waits for all their replies. `cntl`
    /// gives the timeout and retries (else the channel's) and gets the
    /// latency and the error.
    pub fn call(
        &self,
        cntl: &mut Controller,
        req: &RedisRequest,
    ) -> Result<RedisResponse, RpcError> {
        self.engine.call(cntl, req.clone())
    }

    /// Sends one command and returns its reply.
    pub fn command<A: AsRef<[u8]>>(&self, args: &[A]) -> Result<RedisReply, RpcError> {
        let mut req = RedisRequest::new();
        req.add_command(args);
        match self.call(&mut Controller::new(), &req)?.replies {
            Replies::One(reply) => Ok(reply),
            Replies::Many(mut replies) => replies
                .pop()
                .ok_or_else(|| RpcError::new(errno::ERESPONSE, "no reply")),
        }
    }

    /// Sends `req` and returns at once; `done` runs in a fiber of its own
    /// with the controller and the outcome.
    pub fn call_async(
        &self,
        cntl: Controller,
        req: &RedisRequest,
        done: impl FnOnce(Controller, Result<RedisResponse, RpcError>) + Send + 'static,
    ) {
        self.engine.call_async(cntl, req.clone(), done);
    }

    /// Sends `req`; the `Future` resolves to the controller and the
    /// outcome, on any executor.
    pub fn call_future(&self, cntl: Controller, req: &RedisRequest) -> CallFuture<RedisResponse> {
        self.engine.call_future(cntl, req.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RESP bytes of a command, written out plainly.
    fn resp(args: &[Vec<u8>]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// Commands shorter and longer than the stack stage, with arguments
    /// that cross it or exceed it, encode to the same bytes as RESP
    /// written out by hand, also one after another in one request.
    #[test]
    fn commands_encode_as_resp_whatever_their_size() {
        let sizes = [0, 1, 3, STAGE - 10, STAGE, STAGE + 1, 3 * STAGE];
        let mut all = Vec::new();
        let mut req = RedisRequest::new();
        for &n in &sizes {
            for count in [1, 2, 40] {
                let args: Vec<Vec<u8>> = (0..count)
                    .map(|i| vec![b'a' + (i % 26) as u8; if i == 0 { 3 } else { n }])
                    .collect();
                let mut one = RedisRequest::new();
                one.add_command(&args);
                assert_eq!(one.wire.to_vec(), resp(&args), "{count} args of {n} bytes");
                req.add_command(&args);
                all.extend(resp(&args));
            }
        }
        assert_eq!(req.wire.to_vec(), all);
    }
}
