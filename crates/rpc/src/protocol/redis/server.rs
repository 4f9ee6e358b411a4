//! Redis on a server connection (bRPC's `ParseRedisMessage` server side):
//! commands cut in batches, run in order, answered in order.
//!
//! Redis pipelining means more than ordered answers: a `SET k v` followed
//! by `GET k` in the same read must see the `SET`. So the parser cuts
//! every complete command of a read into one batch (numbered: the parser
//! runs in the connection's reader, one at a time), and a batch runs only
//! when the batch before it finished (a turnstile per connection; batches
//! of one read run in the reader's fiber without waiting). A batch's
//! replies go out in one write, or in 64 KiB pieces when they are large.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fibrpc_fiber::butex::Butex;
use fibrpc_iobuf::IOBuf;

use super::command::{CommandBatch, CommandParse, CommandParser};
use super::{RedisReply, RedisService};
use crate::protocol::{Parsed, Protocol, ServerContext};
use crate::server::{panic_message, InflightGuard};
use crate::socket::Socket;
use crate::{errno, RpcError};

/// Commands cut into one batch at most (what one read brings in beyond
/// this makes further batches).
const MAX_BATCH: usize = 1024;

/// Replies accumulated past this many bytes are written before the batch
/// goes on.
const FLUSH_AT: usize = 64 << 10;

/// The redis protocol of a server with a [`RedisService`]
/// ([`crate::Server::add_redis_service`]).
pub(crate) struct RedisServerProtocol {
    service: Arc<RedisService>,
}

impl RedisServerProtocol {
    pub(crate) fn new(service: RedisService) -> RedisServerProtocol {
        RedisServerProtocol {
            service: Arc::new(service),
        }
    }
}

/// The commands of one read of a server connection, in order.
pub(crate) struct RedisBatch {
    /// Position of the batch on its connection.
    seq: u32,
    commands: CommandBatch,
    /// The input after the commands was malformed: answered with this
    /// error after them, then the connection closes.
    error: Option<String>,
}

impl std::fmt::Debug for RedisBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBatch")
            .field("seq", &self.seq)
            .field("commands", &self.commands.len())
            .field("error", &self.error)
            .finish()
    }
}

/// What redis keeps per server connection.
#[derive(Debug, Default)]
struct RedisConn {
    /// Only the reader parses; a mutex for `Sync`, never contended.
    parser: Mutex<CommandParser>,
    /// The number of the next batch cut (only the reader changes it).
    next_seq: AtomicU32,
    /// The number of the batch whose turn it is to run.
    turn: Butex,
    /// Batches waiting for their turn (only then is `turn` woken).
    waiting: AtomicUsize,
}

impl RedisConn {
    /// Waits until batch `seq` may run; `false` if the connection failed
    /// first.
    fn wait_turn(&self, sock: &Socket, seq: u32) -> bool {
        if self.turn.value().load(Ordering::Acquire) == seq {
            return true;
        }
        // SeqCst on both sides: a passer that finds `waiting` 0 stored the
        // turn before we looked at it; one that finds it set wakes us.
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let ok = loop {
            let now = self.turn.value().load(Ordering::SeqCst);
            if now == seq {
                break true;
            }
            if sock.failed() {
                break false;
            }
            // The timeout only bounds how late a failure is noticed.
            let _ = self
                .turn
                .wait(now, Some(Instant::now() + Duration::from_millis(100)));
        };
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        ok
    }

    /// Batch `seq` is done: the next one may run.
    fn pass_turn(&self, seq: u32) {
        self.turn
            .value()
            .store(seq.wrapping_add(1), Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.turn.wake_all();
        }
    }
}

/// Passes the turn when the batch ends, even by a panic.
struct Turn<'a>(&'a RedisConn, u32);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.pass_turn(self.1);
    }
}

impl Protocol for RedisServerProtocol {
    type Message = RedisBatch;

    fn name(&self) -> &'static str {
        "redis"
    }

    fn parse(&self, input: &mut IOBuf, sock: &Arc<Socket>, _eof: bool) -> Parsed<RedisBatch> {
        // Detection, quick to say no: a connection's state slot is taken
        // only by input that can be a command (HTTP and baidu_std were
        // asked first, see the module docs). Once the connection speaks
        // redis, the parser answers whatever comes (an error for bytes
        // that are no command).
        if sock.protocol_name() != self.name() {
            match CommandParser::probe(input) {
                None => return Parsed::NeedMore,
                Some(false) => return Parsed::NotMine,
                Some(true) => {}
            }
        }
        let Some(state) = sock.protocol_state::<RedisConn>() else {
            return Parsed::Bad("the connection spoke another protocol first".into());
        };
        let mut parser = state.parser.lock().unwrap_or_else(|e| e.into_inner());
        let limits = self.service.limits();
        let mut commands = CommandBatch::default();
        let mut error = None;
        while commands.len() < MAX_BATCH && !input.is_empty() {
            if parser.cut_whole(input, limits, &mut commands, MAX_BATCH) > 0 {
                continue;
            }
            match parser.parse(input, limits) {
                CommandParse::Command(args) => commands.push(args),
                CommandParse::Empty => {}
                CommandParse::NeedMore => break,
                CommandParse::Error(e) => {
                    // Nothing after it is read.
                    input.clear();
                    error = Some(e);
                    break;
                }
            }
        }
        if commands.is_empty() && error.is_none() {
            return Parsed::NeedMore;
        }
        let seq = state.next_seq.load(Ordering::Relaxed);
        state.next_seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        Parsed::Message(RedisBatch {
            seq,
            commands,
            error,
        })
    }

    fn ends_input(&self, msg: &RedisBatch) -> bool {
        msg.error.is_some()
    }

    fn process_request(&self, batch: RedisBatch, conn: &Arc<Socket>, server: &ServerContext) {
        let Some(state) = conn.protocol_state::<RedisConn>() else {
            return;
        };
        if !state.wait_turn(conn, batch.seq) {
            return;
        }
        let _turn = Turn(state, batch.seq);
        let guard = InflightGuard::enter(server);
        let admitted = guard.admit();
        let conn_id = conn.id().as_u64();
        let mut out = IOBuf::new();
        let mut last = None;
        for cmd in batch.commands.iter() {
            let reply = match &admitted {
                Err(e) => RedisReply::error(format!("ERR {}", e.text)),
                Ok(()) => catch_unwind(AssertUnwindSafe(|| {
                    self.service.run_after(cmd, conn_id, &mut last)
                }))
                .unwrap_or_else(|p| {
                    RedisReply::error(format!("ERR the handler panicked: {}", panic_message(&*p)))
                }),
            };
            reply.encode(&mut out);
            if out.len() >= FLUSH_AT && !write(conn, std::mem::take(&mut out)) {
                return;
            }
        }
        drop(guard);
        if let Some(e) = &batch.error {
            if crate::flags::log_connection_errors() {
                tracing::warn!(peer = %conn.remote_side(), reason = %e, "closing redis connection");
            }
            RedisReply::error(format!("ERR {e}")).encode(&mut out);
        }
        if !out.is_empty() && !write(conn, out) {
            return;
        }
        if batch.error.is_some() {
            conn.close_after_flush();
        }
    }
}

/// Queues `out`; a refused write fails the connection (a later reply
/// would answer the wrong command).
fn write(conn: &Arc<Socket>, out: IOBuf) -> bool {
    match conn.write(out) {
        Ok(()) => true,
        Err(e) => {
            conn.set_failed(RpcError::new(
                errno::EOVERCROWDED,
                format!("a redis reply could not be queued: {e}"),
            ));
            false
        }
    }
}
