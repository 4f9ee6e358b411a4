//! [`Socket`]: one connection, shared by everything that reads or writes it
//! (bRPC's `brpc::Socket`).
//!
//! - Addressed by a versioned [`SocketId`]; [`Socket::set_failed`]
//!   invalidates the id, shuts the connection down and wakes every call
//!   waiting on it with `EFAILEDSOCKET`.
//! - Input: the descriptor is registered edge-triggered with a reader hook;
//!   on readable, a fiber runs the input messenger, which cuts
//!   messages and hands them to the socket's user (`SocketUser`) (a server's
//!   protocols, or a client's).
//! - Output: [`Socket::write`] is wait-free (see `write_list.rs`); a
//!   write-behind fiber finishes what could not be written at once. A
//!   client's request may carry a watcher told whether the kernel took
//!   any byte of it (`outgoing.rs`).
//! - What a protocol keeps per connection lives in one opaque slot
//!   ([`Socket::protocol_state`]): the socket names no protocol.

mod close;
mod connect;
mod extension;
mod id;
mod outgoing;
mod room;
mod stats;
mod tls;
mod user;
mod write;
pub(crate) mod write_list;

use std::any::Any;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use fibrpc_fiber::io::Registration;
use fibrpc_iobuf::IOPortal;

use crate::{errno, RpcError};

pub(crate) use connect::connect;
pub use extension::SocketExtension;
use id::Slab;
pub use id::SocketId;
use outgoing::Outgoing;
pub(crate) use outgoing::WriteWatcher;
pub(crate) use room::RoomGate;
pub use stats::{SocketRates, SocketStats, SocketStatsSnapshot};
pub(crate) use tls::PLAIN;
pub use user::WaitingCall;
pub(crate) use user::{Cut, InputHandler, SocketUser};
pub(crate) use write::QueuedWrite;
use write_list::WriteList;

/// The default of [`SocketOptions::max_header`]: 64 KiB.
pub(crate) const DEFAULT_MAX_HEADER: usize = 64 << 10;

/// The default of [`SocketOptions::max_requests`].
pub(crate) const DEFAULT_MAX_REQUESTS: usize = 1024;

/// Per-socket limits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SocketOptions {
    /// Bytes queued but not yet written above which writes fail with
    /// `EOVERCROWDED` (bRPC's `socket_max_unwritten_bytes`).
    pub max_unwritten: usize,
    /// Messages with a larger body close the connection (the protocols'
    /// parsers apply it).
    pub max_body: usize,
    /// Message heads longer than this close the connection (for
    /// protocols with a textual head).
    pub max_header: usize,
    /// Requests of this connection in process (or, for protocols that
    /// answer in order, read and not yet answered) at which its reader
    /// stops reading until one finishes.
    pub max_requests: usize,
    /// The input is collected by the creating worker's own dispatcher (a
    /// connection whose calls are made on that worker), not by one picked
    /// round robin.
    pub read_here: bool,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            max_unwritten: 64 << 20,
            max_body: 64 << 20,
            max_header: DEFAULT_MAX_HEADER,
            max_requests: DEFAULT_MAX_REQUESTS,
            read_here: false,
        }
    }
}

/// What the reader keeps between reads.
pub(crate) struct InputState {
    pub portal: IOPortal,
    /// On a TLS connection, the decrypted input (what the protocols cut;
    /// `portal` then holds at most a partial record).
    pub plain: fibrpc_iobuf::IOBuf,
    /// Bytes to offer the next read (adapts to the traffic).
    pub read_hint: usize,
}

impl InputState {
    /// Whether part of a message waits for more bytes.
    pub(crate) fn has_partial(&self) -> bool {
        !self.portal.is_empty() || !self.plain.is_empty()
    }
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
    pub(crate) write_list: WriteList<Outgoing>,
    pub(crate) unwritten: AtomicUsize,
    /// Messages read from this connection whose processing fiber is
    /// queued but has not started: their responses are coming, so a
    /// writer may wait for them and send all in one `writev`. On a
    /// client, callers a response read here woke that have not run yet
    /// count too: their next requests are coming.
    pub(crate) queued_inputs: AtomicUsize,
    /// On a client connection of a channel over several servers: the
    /// count, shared by all the channel's connections, of the callers a
    /// response read on any of them woke that have not run yet. Their
    /// next requests may go to any of the servers, so a writer here waits
    /// for them as for `queued_inputs` (see
    /// [`writes_to_come`](Self::writes_to_come)). Unset, they count in
    /// `queued_inputs`. Set before the first request is written.
    pub(crate) woken_callers: OnceLock<Arc<AtomicUsize>>,
    /// Messages of this connection being processed in fibers of their
    /// own (the reader waits at `options.max_requests`).
    pub(crate) processing: AtomicUsize,
    /// Bytes of decompressed request payloads of this connection held by
    /// requests in process (charged against `max_body`: see
    /// [`charge_decompressed`](Self::charge_decompressed)).
    decompressed: AtomicUsize,
    /// Where the reader waits for `processing` to drop.
    pub(crate) room: room::RoomGate,
    pub(crate) options: SocketOptions,
    pub(crate) input: Mutex<InputState>,
    /// Plaintext, TLS, or decided by the first byte (`tls.rs`).
    pub(crate) input_mode: AtomicU8,
    /// A TLS connection's rustls state (set before its first byte is
    /// processed). Boxed: a rustls connection is large, and a plaintext
    /// socket should not carry its size.
    tls: OnceLock<Box<crate::tls::session::TlsSession>>,
    /// Who cuts and processes the input, and hears of the failure.
    pub(crate) user: Arc<dyn SocketUser>,
    /// For the user's protocol detection: the index of the protocol that
    /// last matched on this connection (tried first next time).
    pub(crate) preferred: AtomicU8,
    /// Whether the first message was cut (and verified).
    pub(crate) first_cut: AtomicBool,
    /// Who the peer is, once a server's authenticator accepted the
    /// connection's credential (`auth.rs`).
    auth: OnceLock<Arc<crate::auth::AuthContext>>,
    /// What the connection's protocol keeps per connection (created by
    /// the first [`protocol_state`](Self::protocol_state) call).
    state: OnceLock<Box<dyn Any + Send + Sync>>,
    /// What other protocols multiplex on the connection
    /// ([`extension`](Self::extension)), told of its failure.
    extensions: Mutex<extension::Extensions>,
    /// Traffic counters.
    pub(crate) stats: SocketStats,
    /// Close once `unwritten` drops to 0.
    close_when_flushed: AtomicBool,
    /// Read nothing more (the connection closes after its last answer).
    input_closed: AtomicBool,
    /// The peer will take no new request here (bRPC's logoff): calls in
    /// flight go on, new calls take another connection.
    logoff: AtomicBool,
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
            woken_callers: OnceLock::new(),
            processing: AtomicUsize::new(0),
            room: room::RoomGate::default(),
            decompressed: AtomicUsize::new(0),
            input: Mutex::new(InputState {
                portal: IOPortal::new(),
                read_hint: 0,
                plain: fibrpc_iobuf::IOBuf::new(),
            }),
            input_mode: tls::initial_mode(user.tls_accept().is_some()),
            tls: OnceLock::new(),
            user,
            preferred: AtomicU8::new(0),
            first_cut: AtomicBool::new(false),
            auth: OnceLock::new(),
            state: OnceLock::new(),
            extensions: Mutex::default(),
            stats: SocketStats::new(),
            close_when_flushed: AtomicBool::new(false),
            input_closed: AtomicBool::new(false),
            logoff: AtomicBool::new(false),
        });
        // Published before registering: registering a readable descriptor
        // reports it at once, and the reader finds the socket by id.
        slab.publish(id, sock.clone());
        sock.user.on_created(&sock);
        // A weak reference, not the id: upgrading it is one atomic, where
        // the id's lookup takes the slab slot's lock and clones the `Arc`
        // on every read event. A failed socket's reader stops at once
        // (`on_readable` checks `failed` first).
        let weak = Arc::downgrade(&sock);
        let lost = weak.clone();
        let on_readable = move |events: &fibrpc_fiber::io::ReadEvents<'_>| {
            if let Some(s) = weak.upgrade() {
                s.user.on_readable(&s, events);
            }
        };
        // No fiber to read the input: nothing would answer it.
        let if_lost = move || {
            if let Some(s) = lost.upgrade() {
                s.set_failed(RpcError::new(
                    errno::EINTERNAL,
                    "no fiber could start to read the connection; closing it",
                ));
            }
        };
        let fd = sock.stream.as_raw_fd();
        let reg = if options.read_here {
            Registration::with_reader_here_or_else(fd, on_readable, if_lost)
        } else {
            Registration::with_reader_or_else(fd, on_readable, if_lost)
        };
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

    /// The name of the protocol the connection speaks (the one that last
    /// matched on a server connection).
    pub fn protocol_name(&self) -> &'static str {
        self.user.protocol_name(self)
    }

    /// The largest message body this connection accepts (protocols'
    /// parsers refuse larger ones).
    pub fn max_body_size(&self) -> usize {
        self.options.max_body
    }

    /// The longest message head this connection accepts (for protocols
    /// with a textual head).
    pub fn max_header_size(&self) -> usize {
        self.options.max_header
    }

    /// The per-connection state of the protocol this connection speaks:
    /// created with `T::default()` by the first call, the same object
    /// afterwards. `None` when the slot holds another type (another
    /// protocol spoke first on this connection: one connection, one
    /// stateful protocol).
    pub fn protocol_state<T: Any + Default + Send + Sync>(&self) -> Option<&T> {
        self.state
            .get_or_init(|| Box::new(T::default()))
            .downcast_ref::<T>()
    }

    /// Who the peer is, if a server's authenticator accepted this
    /// connection (see [`crate::auth`]).
    pub fn auth_context(&self) -> Option<&Arc<crate::auth::AuthContext>> {
        self.auth.get()
    }

    /// Records who the peer is (once: the first message is verified
    /// once).
    pub(crate) fn set_auth_context(&self, ctx: Arc<crate::auth::AuthContext>) {
        let _ = self.auth.set(ctx);
    }

    /// The per-connection state of type `T` if the connection has one
    /// already (never creates it: a protocol probing a connection that
    /// may be another's asks this first).
    pub fn existing_protocol_state<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.state.get()?.downcast_ref::<T>()
    }

    /// The queued bytes above which writes fail with `EOVERCROWDED`.
    pub fn max_unwritten_bytes(&self) -> usize {
        self.options.max_unwritten
    }

    /// Requests of this connection in process at which its reader
    /// waits (see `ServerOptions::max_requests_per_connection`).
    pub fn max_requests(&self) -> usize {
        self.options.max_requests
    }

    /// What a request of this connection may still decompress to: the
    /// connection's budget for decompressed payloads in process at once
    /// (its `max_body_size`, what its input may hold) minus what its
    /// other requests hold now.
    pub fn decompression_budget(&self) -> usize {
        self.options
            .max_body
            .saturating_sub(self.decompressed.load(Ordering::Relaxed))
    }

    /// Charges `n` decompressed bytes to the connection until the returned
    /// guard goes; `None` (nothing charged) if that passes the budget.
    pub fn charge_decompressed(self: &Arc<Self>, n: usize) -> Option<DecompressedCharge> {
        let before = self.decompressed.fetch_add(n, Ordering::Relaxed);
        if before.saturating_add(n) > self.options.max_body {
            self.decompressed.fetch_sub(n, Ordering::Relaxed);
            return None;
        }
        Some(DecompressedCharge {
            sock: self.clone(),
            n,
        })
    }

    /// Marks the connection as taking no new request (the peer said it
    /// is stopping, or will close after its answer).
    pub fn set_logoff(&self) {
        self.logoff.store(true, Ordering::Release);
    }

    /// Whether [`set_logoff`](Self::set_logoff) was called.
    pub fn is_logoff(&self) -> bool {
        self.logoff.load(Ordering::Acquire)
    }

    /// The calls waiting for answers on this connection (`None` on a
    /// server's connection, which makes no calls).
    pub fn waiting_calls(&self) -> Option<Vec<WaitingCall>> {
        self.user.waiting_calls()
    }

    /// What the connection's protocol keeps for it, as `name : value`
    /// lines (for the console; see `Protocol::describe_connection`).
    pub fn protocol_details(&self) -> Vec<(&'static str, String)> {
        self.user.describe(self)
    }

    /// Messages of this connection being processed in fibers of their
    /// own right now (a request whose handler answers later, through a
    /// responder, is not counted once its handler returned).
    pub fn messages_in_process(&self) -> usize {
        self.processing.load(Ordering::Relaxed)
    }

    /// How long since a byte last went in or out (since the connection
    /// was made, if none did), to within 50 ms.
    pub fn idle_for(&self) -> std::time::Duration {
        self.stats.idle_for()
    }

    /// Every live socket of the process, server and client sides.
    pub(crate) fn all() -> Vec<Arc<Socket>> {
        Slab::get().live()
    }

    /// Bytes queued for writing and not yet written.
    pub fn unwritten_bytes(&self) -> usize {
        self.unwritten.load(Ordering::Relaxed)
    }

    /// Fails the socket (once; later calls do nothing): invalidates its id,
    /// shuts the connection down (which also stops the write-behind
    /// fiber), and tells its user (a client fails the calls waiting on
    /// it with `EFAILEDSOCKET`).
    pub fn set_failed(&self, reason: RpcError) {
        if self.failed.swap(true, Ordering::AcqRel) {
            return;
        }
        *self.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason.clone());
        let _ = self.stream.shutdown(Shutdown::Both);
        self.fail_extensions(&reason);
        self.user.on_failed(self);
        if let Some(tls) = self.tls.get() {
            // A client's connect waiting for the handshake.
            tls.wake();
        }
        // Last: the slab's reference may be the last one; `self` stays
        // valid because our caller holds another.
        Slab::get().remove(self.id);
    }
}

/// Decompressed bytes charged to a connection (see
/// [`Socket::charge_decompressed`]); released when dropped.
#[derive(Debug)]
pub struct DecompressedCharge {
    sock: Arc<Socket>,
    n: usize,
}

impl Drop for DecompressedCharge {
    fn drop(&mut self) {
        self.sock.decompressed.fetch_sub(self.n, Ordering::Relaxed);
    }
}
