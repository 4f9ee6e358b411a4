//! [`Socket`]: one connection, shared by everything that reads or writes it
//! (bRPC's `brpc::Socket`).
//!
//! - Addressed by a versioned [`SocketId`]; [`Socket::set_failed`]
//!   invalidates the id, shuts the connection down and wakes every call
//!   waiting on it with `EFAILEDSOCKET`.
//! - Input: the descriptor is registered edge-triggered with a reader hook;
//!   on readable, a fiber runs the input messenger, which cuts
//!   messages and hands them to the socket's consumer (a server or a
//!   channel).
//! - Output: `Socket::write` is wait-free (see `write_list.rs`); a
//!   write-behind fiber finishes what could not be written at once.

mod connect;
mod id;
mod ordered;
mod stats;
mod write;
pub(crate) mod write_list;

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use fibrpc_fiber::io::Registration;
use fibrpc_iobuf::{IOBuf, IOPortal};

use crate::channel::call::PendingCall;
use crate::protocol::{InputMessage, Protocol};
use crate::{errno, RpcError};

pub(crate) use connect::connect;
use id::Slab;
pub use id::SocketId;
use ordered::ResponseOrder;
pub use stats::{SocketRates, SocketStats, SocketStatsSnapshot};
use write_list::WriteList;

/// Who consumes a socket's messages: a server (requests) or a channel
/// (responses).
pub(crate) trait SocketUser: Send + Sync + 'static {
    /// Handles one message. Runs in a fiber: the reader's own for the
    /// last message of a read, a new one for the others.
    fn on_message(&self, sock: &Arc<Socket>, msg: InputMessage);

    /// Whether messages are cheap and never block (a response only wakes
    /// its caller): then the reader handles each in place, in order, and
    /// no fiber is started per message. This also orders every message
    /// read before an EOF ahead of the failure the EOF causes.
    fn inline(&self) -> bool {
        false
    }

    /// The socket failed (after its pending calls were woken).
    fn on_failed(&self, _sock: &Socket) {}
}

/// Per-socket limits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SocketOptions {
    /// Bytes queued but not yet written above which writes fail with
    /// `EOVERCROWDED` (bRPC's `socket_max_unwritten_bytes`).
    pub max_unwritten: usize,
    /// Frames with a larger body close the connection.
    pub max_body: usize,
    /// HTTP heads (request or status line and headers) longer than this
    /// close the connection (after a 431 on a server).
    pub max_header: usize,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            max_unwritten: 64 << 20,
            max_body: crate::protocol::baidu_std::DEFAULT_MAX_BODY,
            max_header: crate::protocol::http::DEFAULT_MAX_HEADER,
        }
    }
}

/// What the reader keeps between reads.
pub(crate) struct InputState {
    pub portal: IOPortal,
    /// Bytes to offer the next read (adapts to the traffic).
    pub read_hint: usize,
}

/// One connection. See the module docs.
pub struct Socket {
    id: SocketId,
    // Field order: the registration leaves epoll before the stream closes.
    reg: OnceLock<Registration>,
    stream: TcpStream,
    remote: SocketAddr,
    local: SocketAddr,
    failed: AtomicBool,
    error: Mutex<Option<RpcError>>,
    pub(crate) write_list: WriteList<IOBuf>,
    pub(crate) unwritten: AtomicUsize,
    /// Messages read from this connection whose processing fiber is
    /// queued but has not started: their responses are coming, so a
    /// writer may wait for them and send all in one `writev`.
    pub(crate) queued_inputs: AtomicUsize,
    pub(crate) options: SocketOptions,
    pub(crate) input: Mutex<InputState>,
    pub(crate) protocols: &'static [&'static dyn Protocol],
    /// Index into `protocols` of the last one that matched.
    pub(crate) preferred: AtomicU8,
    pub(crate) user: Arc<dyn SocketUser>,
    /// Client calls waiting for a response on this connection, by
    /// correlation id.
    pub(crate) pending: Mutex<HashMap<i64, Arc<PendingCall>>>,
    /// Traffic counters.
    pub(crate) stats: SocketStats,
    /// HTTP responses waiting for earlier ones.
    order: Mutex<ResponseOrder>,
    /// Close once `unwritten` drops to 0.
    close_when_flushed: AtomicBool,
    /// Read nothing more (the connection closes after its last answer).
    input_closed: AtomicBool,
    /// HTTP client: the request in flight is a HEAD (its response has no
    /// body whatever its headers say).
    http_head: AtomicBool,
    /// HTTP server: the number the next request cut gets (only the
    /// reader, which runs alone, changes it).
    pub(crate) next_http_seq: AtomicU64,
    /// HTTP server: 1 + the number of the request a `100 Continue` was
    /// sent for (0: none).
    continue_sent: AtomicU64,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.id)
            .field("fd", &self.stream.as_raw_fd())
            .field("remote", &self.remote)
            .field("failed", &self.failed())
            .finish()
    }
}

impl Socket {
    /// Takes over a connected stream, which must be non-blocking: publishes the socket
    /// under a new id and registers it for input.
    /// `remote`: the peer's address when the caller knows it (from
    /// `accept` or `connect`), which saves a `getpeername` per connection.
    pub(crate) fn create(
        stream: TcpStream,
        remote: Option<SocketAddr>,
        protocols: &'static [&'static dyn Protocol],
        user: Arc<dyn SocketUser>,
        options: SocketOptions,
    ) -> io::Result<Arc<Socket>> {
        // Both callers (accept4 with SOCK_NONBLOCK, our connect) hand over
        // non-blocking streams already: no fcntl per connection.
        // Small RPCs go out at once; batching is done by the write list.
        let _ = stream.set_nodelay(true);
        let remote = match remote {
            Some(a) => a,
            None => stream.peer_addr()?,
        };
        let local = stream.local_addr()?;
        let slab = Slab::get();
        let id = slab.reserve()?;
        let sock = Arc::new(Socket {
            id,
            reg: OnceLock::new(),
            stream,
            remote,
            local,
            failed: AtomicBool::new(false),
            error: Mutex::new(None),
            write_list: WriteList::default(),
            unwritten: AtomicUsize::new(0),
            options,
            queued_inputs: AtomicUsize::new(0),
            input: Mutex::new(InputState {
                portal: IOPortal::new(),
                read_hint: 0,
            }),
            protocols,
            preferred: AtomicU8::new(0),
            user,
            pending: Mutex::new(HashMap::new()),
            stats: SocketStats::new(),
            order: Mutex::default(),
            close_when_flushed: AtomicBool::new(false),
            input_closed: AtomicBool::new(false),
            http_head: AtomicBool::new(false),
            next_http_seq: AtomicU64::new(0),
            continue_sent: AtomicU64::new(0),
        });
        // Published before registering: registering a readable descriptor
        // reports it at once, and the reader finds the socket by id.
        slab.publish(id, sock.clone());
        let reg = Registration::with_reader(sock.stream.as_raw_fd(), move |events| {
            if let Some(s) = id.address() {
                crate::input_messenger::on_readable(&s, events);
            }
        });
        match reg {
            Ok(reg) => {
                let _ = sock.reg.set(reg);
                Ok(sock)
            }
            Err(e) => {
                sock.set_failed(RpcError::new(
                    e.raw_os_error().unwrap_or(errno::EINTERNAL),
                    format!("cannot register the connection: {e}"),
                ));
                Err(e)
            }
        }
    }

    /// The socket's id.
    pub fn id(&self) -> SocketId {
        self.id
    }

    /// The peer's address.
    pub fn remote_side(&self) -> SocketAddr {
        self.remote
    }

    /// This side's address.
    pub fn local_side(&self) -> SocketAddr {
        self.local
    }

    /// Whether the socket failed (it accepts no more writes).
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Why the socket failed, if it did.
    pub fn error(&self) -> Option<RpcError> {
        self.error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn stream(&self) -> &TcpStream {
        &self.stream
    }

    pub(crate) fn registration(&self) -> Option<&Registration> {
        self.reg.get()
    }

    /// Traffic counters of this connection.
    pub fn stats(&self) -> SocketStatsSnapshot {
        self.stats.snapshot()
    }

    /// Per-second rates of this connection's traffic over the last second
    /// (on server connections; zero elsewhere).
    pub fn rates(&self) -> SocketRates {
        self.stats.rates()
    }

    /// The descriptor (for display).
    pub fn fd(&self) -> i32 {
        self.stream.as_raw_fd()
    }

    /// The name of the protocol that last matched on this connection.
    pub fn protocol_name(&self) -> &'static str {
        let i = usize::from(self.preferred.load(Ordering::Relaxed));
        self.protocols.get(i).map_or("?", |p| p.name())
    }

    /// HTTP client: whether the request in flight is a HEAD.
    pub(crate) fn http_head_request(&self) -> bool {
        self.http_head.load(Ordering::Acquire)
    }

    /// HTTP client: says whether the next request is a HEAD.
    pub(crate) fn set_http_head_request(&self, head: bool) {
        self.http_head.store(head, Ordering::Release);
    }

    /// Bytes queued for writing and not yet written.
    pub fn unwritten_bytes(&self) -> usize {
        self.unwritten.load(Ordering::Relaxed)
    }

    /// Fails the socket (once; later calls do nothing): invalidates its id,
    /// shuts the connection down (which also stops the write-behind
    /// fiber), and completes every pending call with `EFAILEDSOCKET`.
    pub fn set_failed(&self, reason: RpcError) {
        if self.failed.swap(true, Ordering::AcqRel) {
            return;
        }
        *self.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason.clone());
        let _ = self.stream.shutdown(Shutdown::Both);
        let pending: Vec<_> = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, c)| c)
            .collect();
        for call in pending {
            call.complete(Err(RpcError::new(
                errno::EFAILEDSOCKET,
                format!("connection to {} failed: {}", self.remote, reason.text),
            )));
        }
        self.user.on_failed(self);
        // Last: the slab's reference may be the last one; `self` stays
        // valid because our caller holds another.
        Slab::get().remove(self.id);
    }

    /// Registers a call waiting for the response with `correlation_id`.
    /// Fails if the socket failed already (its calls were woken).
    pub(crate) fn add_pending(&self, correlation_id: i64, call: Arc<PendingCall>) -> bool {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        // Checked under the lock: `set_failed` drains after setting the
        // flag, so a call added here is either drained or refused.
        if self.failed() {
            return false;
        }
        p.insert(correlation_id, call);
        true
    }

    /// Removes (and returns) the call waiting for `correlation_id`.
    pub(crate) fn take_pending(&self, correlation_id: i64) -> Option<Arc<PendingCall>> {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&correlation_id)
    }
}
