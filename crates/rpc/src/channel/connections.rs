//! The connections to one server: one shared (single), a pool (pooled),
//! or one per call (short).

use std::net::SocketAddr;
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
    /// Single: the shared connection. Pooled: idle connections.
    idle: Mutex<Vec<Conn<P>>>,
    /// Single: serializes reconnecting, so a broken connection is
    /// replaced once, not by every caller. A fiber mutex: connecting
    /// suspends the holder.
    connecting: fibrpc_fiber::sync::Mutex<()>,
}

impl<P: ClientProtocol> Connections<P> {
    /// Connections to `addr` speaking `protocol`.
    pub(crate) fn new(addr: SocketAddr, o: &ChannelOptions, protocol: Arc<P>) -> Connections<P> {
        let mut kind = o.connection_type;
        if kind == ConnectionType::Single && protocol.one_call_per_connection() {
            kind = ConnectionType::Pooled;
        }
        Connections {
            addr,
            protocol,
            kind,
            options: SocketOptions {
                max_unwritten: o.max_unwritten_bytes,
                max_body: o.max_body_size,
                ..SocketOptions::default()
            },
            connect_timeout: o.connect_timeout,
            tls: o.tls.clone(),
            idle: Mutex::new(Vec::new()),
            connecting: fibrpc_fiber::sync::Mutex::new(()),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Conn<P>>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection for one call.
    pub(crate) fn get(&self, deadline: Option<Instant>) -> Result<Conn<P>, RpcError> {
        match self.kind {
            ConnectionType::Single => {
                if let Some(c) = self.healthy_single() {
                    return Ok(c);
                }
                let _g = self.connecting.lock();
                if let Some(c) = self.healthy_single() {
                    return Ok(c);
                }
                let c = self.connect(deadline)?;
                // Replaces the failed connection, if any.
                *self.idle() = vec![c.clone()];
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
            ConnectionType::Single => self.healthy_single(),
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
            ConnectionType::Single => {}
            ConnectionType::Pooled if clean && !c.sock.failed() && !c.sock.is_logoff() => {
                self.idle().push(c)
            }
            _ => c
                .sock
                .set_failed(RpcError::new(errno::EUNUSED, "connection no longer needed")),
        }
    }

    fn healthy_single(&self) -> Option<Conn<P>> {
        self.idle()
            .first()
            .filter(|c| !c.sock.failed() && !c.sock.is_logoff())
            .cloned()
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
        if let Some(session) = session {
            sock.connect_tls(session, until)?;
        }
        Ok(Conn { sock, input })
    }
}

impl<P: ClientProtocol> Drop for Connections<P> {
    fn drop(&mut self) {
        // The slab keeps a live socket reachable; fail ours so they close.
        for c in self
            .idle
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            c.sock
                .set_failed(RpcError::new(errno::EUNUSED, "channel dropped"));
        }
    }
}
