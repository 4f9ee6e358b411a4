//! The connections to one server: one shared (single), one shared per
//! fiber worker (per worker), a pool (pooled), or one per call (short).

use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::client_input::ClientInput;
use super::{ChannelOptions, ConnectionType};
use crate::protocol::ClientProtocol;
use crate::socket::{connect, Socket, SocketOptions};
use crate::{errno, RpcError};

/// One connection of a channel: the socket and the calls waiting on it.
pub(crate) struct Conn<P: ClientProtocol> {
    pub sock: Arc<Socket>,
    pub input: Arc<ClientInput<P>>,
}

impl<P: ClientProtocol> Clone for Conn<P> {
    fn clone(&self) -> Self {
        Conn {
            sock: self.sock.clone(),
            input: self.input.clone(),
        }
    }
}

/// See the module docs.
pub(crate) struct Connections<P: ClientProtocol> {
    addr: SocketAddr,
    protocol: Arc<P>,
    kind: ConnectionType,
    options: SocketOptions,
    connect_timeout: Duration,
    tls: Option<crate::tls::TlsClientConfig>,
    /// Pooled: idle connections.
    idle: Mutex<Vec<Conn<P>>>,
    /// The channel's count of woken callers its connections share, if it
    /// spreads calls over several servers ([`Socket::woken_callers`]).
    woken_callers: Option<Arc<AtomicUsize>>,
    /// Single: the shared connection. Per worker: each worker's, then the
    /// one of callers outside the workers.
    shared: Box<[Shared<P>]>,
}

/// One shared connection (see [`Connections::shared`]), on a cache line
/// of its own: each worker's callers touch only their own.
#[repr(align(128))]
struct Shared<P: ClientProtocol> {
    conn: Mutex<Option<Conn<P>>>,
    /// Serializes reconnecting, so a broken connection is replaced once,
    /// not by every caller. A fiber mutex: connecting suspends the holder.
    connecting: fibrpc_fiber::sync::Mutex<()>,
}

impl<P: ClientProtocol> Shared<P> {
    fn new() -> Shared<P> {
        Shared {
            conn: Mutex::new(None),
            connecting: fibrpc_fiber::sync::Mutex::new(()),
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Option<Conn<P>>> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn healthy(&self) -> Option<Conn<P>> {
        self.conn()
            .as_ref()
            .filter(|c| !c.sock.failed() && !c.sock.is_logoff())
            .cloned()
    }
}

impl<P: ClientProtocol> Connections<P> {
    /// Connections to `addr` speaking `protocol`, whose woken callers
    /// count in `woken_callers` if given ([`Socket::woken_callers`]).
    pub(crate) fn new(
        addr: SocketAddr,
        o: &ChannelOptions,
        protocol: Arc<P>,
        woken_callers: Option<Arc<AtomicUsize>>,
    ) -> Connections<P> {
        let mut kind = o.connection_type;
        let shares = matches!(kind, ConnectionType::Single | ConnectionType::PerWorker);
        if shares && protocol.one_call_per_connection() {
            kind = ConnectionType::Pooled;
        }
        let shared = match kind {
            ConnectionType::Single => 1,
            // Workers added later share (see `shared_here`).
            ConnectionType::PerWorker => fibrpc_fiber::Runtime::global().workers() + 1,
            ConnectionType::Pooled | ConnectionType::Short => 0,
        };
        Connections {
            addr,
            protocol,
            kind,
            options: SocketOptions {
                max_unwritten: o.max_unwritten_bytes,
                max_body: o.max_body_size,
                read_here: kind == ConnectionType::PerWorker,
                ..SocketOptions::default()
            },
            connect_timeout: o.connect_timeout,
            tls: o.tls.clone(),
            idle: Mutex::new(Vec::new()),
            woken_callers,
            shared: (0..shared).map(|_| Shared::new()).collect(),
        }
    }

    /// The shared connection the caller uses: the only one (single), or
    /// its worker's (per worker; the last one outside the workers).
    fn shared_here(&self) -> &Shared<P> {
        let n = self.shared.len();
        if n > 1 {
            if let Some(w) = fibrpc_fiber::current_worker() {
                return &self.shared[w % (n - 1)];
            }
        }
        &self.shared[n - 1]
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Conn<P>>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection for one call.
    pub(crate) fn get(&self, deadline: Option<Instant>) -> Result<Conn<P>, RpcError> {
        match self.kind {
            ConnectionType::Single | ConnectionType::PerWorker => {
                let shared = self.shared_here();
                if let Some(c) = shared.healthy() {
                    return Ok(c);
                }
                let _g = shared.connecting.lock();
                if let Some(c) = shared.healthy() {
                    return Ok(c);
                }
                // Connected here: a per-worker connection's input is read
                // on this worker (`read_here`).
                let c = self.connect(deadline)?;
                // Replaces the failed connection, if any.
                *shared.conn() = Some(c.clone());
                Ok(c)
            }
            ConnectionType::Pooled => match self.try_get() {
                Some(c) => Ok(c),
                None => self.connect(deadline),
            },
            ConnectionType::Short => self.connect(deadline),
        }
    }

    /// A connection for one call if one is there without connecting
    /// (never for short connections).
    pub(crate) fn try_get(&self) -> Option<Conn<P>> {
        match self.kind {
            ConnectionType::Single | ConnectionType::PerWorker => self.shared_here().healthy(),
            ConnectionType::Pooled => loop {
                let c = self.idle().pop()?;
                if !c.sock.failed() {
                    return Some(c);
                }
            },
            ConnectionType::Short => None,
        }
    }

    /// Gives a connection back after a call (`clean`: the call completed,
    /// so no response is still in flight on it, and the protocol lets it
    /// carry another).
    pub(crate) fn put_back(&self, c: Conn<P>, clean: bool) {
        match self.kind {
            // Shared by every call: a late response on it finds no call
            // and is dropped.
            ConnectionType::Single | ConnectionType::PerWorker => {}
            ConnectionType::Pooled if clean && !c.sock.failed() && !c.sock.is_logoff() => {
                self.idle().push(c)
            }
            _ => c
                .sock
                .set_failed(RpcError::new(errno::EUNUSED, "connection no longer needed")),
        }
    }

    /// The server said it takes no new request on `c` (it is stopping, or
    /// closes after its answer): new calls take another connection, and
    /// so do those that would have taken an idle one of the pool (a
    /// stopping server would refuse them all). Calls in flight on `c` go
    /// on.
    pub(crate) fn retire(&self, c: &Conn<P>) {
        c.sock.set_logoff();
        if self.kind == ConnectionType::Pooled {
            for idle in self.idle().drain(..) {
                idle.sock.set_failed(RpcError::new(
                    errno::ELOGOFF,
                    "the server is stopping; connection retired",
                ));
            }
        }
    }

    fn connect(&self, deadline: Option<Instant>) -> Result<Conn<P>, RpcError> {
        let mut until = Instant::now() + self.connect_timeout;
        if let Some(d) = deadline {
            until = until.min(d);
        }
        let stream = connect(self.addr, until).map_err(|e| {
            RpcError::new(
                e.raw_os_error().unwrap_or(errno::EFAILEDSOCKET),
                format!("cannot connect to {}: {e}", self.addr),
            )
        })?;
        // Before the socket exists: a failure here leaves nothing open.
        let session = match &self.tls {
            Some(tls) => Some(
                crate::tls::session::client(
                    tls.rustls_config(),
                    tls.server_name_for(self.addr.ip()),
                )
                .map_err(|e| RpcError::new(errno::ESSL, e))?,
            ),
            None => None,
        };
        let input = Arc::new(ClientInput::new(self.protocol.clone()));
        let sock =
            Socket::create(stream, Some(self.addr), input.clone(), self.options).map_err(|e| {
                RpcError::new(
                    errno::EFAILEDSOCKET,
                    format!("cannot set up the connection: {e}"),
                )
            })?;
        if let Some(c) = &self.woken_callers {
            // Before any request: a call completes only after its write.
            let _ = sock.woken_callers.set(c.clone());
        }
        if let Some(session) = session {
            sock.connect_tls(session, until)?;
        }
        Ok(Conn { sock, input })
    }
}

impl<P: ClientProtocol> Drop for Connections<P> {
    fn drop(&mut self) {
        // The slab keeps a live socket reachable; fail ours so they close.
        let shared = self
            .shared
            .iter_mut()
            .filter_map(|s| s.conn.get_mut().unwrap_or_else(|e| e.into_inner()).take());
        let idle: Vec<_> = self
            .idle
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for c in shared.chain(idle) {
            c.sock
                .set_failed(RpcError::new(errno::EUNUSED, "channel dropped"));
        }
    }
}
