//! The connections of a channel: one shared (single), a pool (pooled), or
//! one per call (short). Responses reach their calls through
//! [`ClientUser`], the sockets' consumer on the client side.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::protocol::{InputMessage, Protocol};
use crate::socket::{connect, Socket, SocketOptions, SocketUser};
use crate::{errno, RpcError};

use super::{ChannelOptions, ConnectionType};

/// Routes responses to the calls waiting on the socket.
pub(crate) struct ClientUser;

impl SocketUser for ClientUser {
    fn inline(&self) -> bool {
        true
    }

    fn on_message(&self, sock: &Arc<Socket>, msg: InputMessage) {
        let InputMessage::BaiduStd(frame) = msg else {
            // Only baidu_std is cut on these connections.
            return;
        };
        if frame.meta.response.is_none() && frame.meta.request.is_some() {
            eprintln!(
                "fibrpc: {} sent a request on a client connection; ignored",
                sock.remote_side()
            );
            return;
        }
        // Absent: the call timed out or another response won; drop it.
        if let Some(call) = sock.take_pending(frame.meta.correlation_id()) {
            call.complete(Ok(InputMessage::BaiduStd(frame)));
        }
    }
}

pub(crate) struct Connections {
    addr: SocketAddr,
    protocols: &'static [&'static dyn Protocol],
    user: Arc<dyn SocketUser>,
    kind: ConnectionType,
    options: SocketOptions,
    connect_timeout: std::time::Duration,
    /// Single: the shared connection. Pooled: idle connections.
    idle: Mutex<Vec<Arc<Socket>>>,
    /// Single: serializes reconnecting, so a broken connection is
    /// replaced once, not by every caller. A fiber mutex: connecting
    /// suspends the holder.
    connecting: fibrpc_fiber::sync::Mutex<()>,
}

impl Connections {
    /// Connections to `addr` speaking `protocols`, their messages going
    /// to `user`.
    pub(crate) fn new(
        addr: SocketAddr,
        o: &ChannelOptions,
        protocols: &'static [&'static dyn Protocol],
        user: Arc<dyn SocketUser>,
    ) -> Connections {
        Connections {
            addr,
            protocols,
            user,
            kind: o.connection_type,
            options: SocketOptions {
                max_unwritten: o.max_unwritten_bytes,
                max_body: o.max_body_size,
                ..SocketOptions::default()
            },
            connect_timeout: o.connect_timeout,
            idle: Mutex::new(Vec::new()),
            connecting: fibrpc_fiber::sync::Mutex::new(()),
        }
    }

    /// A connection for one call.
    pub(crate) fn get(&self, deadline: Option<Instant>) -> Result<Arc<Socket>, RpcError> {
        match self.kind {
            ConnectionType::Single => {
                if let Some(s) = self.healthy_single() {
                    return Ok(s);
                }
                let _g = self.connecting.lock();
                if let Some(s) = self.healthy_single() {
                    return Ok(s);
                }
                let s = self.connect(deadline)?;
                // Replaces the failed connection, if any.
                *self.idle.lock().unwrap_or_else(|e| e.into_inner()) = vec![s.clone()];
                Ok(s)
            }
            ConnectionType::Pooled => {
                loop {
                    let s = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
                    match s {
                        Some(s) if !s.failed() => return Ok(s),
                        Some(_) => continue,
                        None => break,
                    }
                }
                self.connect(deadline)
            }
            ConnectionType::Short => self.connect(deadline),
        }
    }

    /// A connection for one call if one is there without connecting
    /// (never for short connections).
    pub(crate) fn try_get(&self) -> Option<Arc<Socket>> {
        match self.kind {
            ConnectionType::Single => self.healthy_single(),
            ConnectionType::Pooled => loop {
                let s = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()?;
                if !s.failed() {
                    return Some(s);
                }
            },
            ConnectionType::Short => None,
        }
    }

    /// Gives a connection back after a call (`clean`: the call completed,
    /// so no response is still in flight on it).
    pub(crate) fn put_back(&self, s: Arc<Socket>, clean: bool) {
        match self.kind {
            ConnectionType::Single => {}
            ConnectionType::Pooled if clean && !s.failed() => {
                self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(s);
            }
            _ => s.set_failed(RpcError::new(errno::EUNUSED, "connection no longer needed")),
        }
    }

    fn healthy_single(&self) -> Option<Arc<Socket>> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.first().filter(|s| !s.failed()).cloned()
    }

    fn connect(&self, deadline: Option<Instant>) -> Result<Arc<Socket>, RpcError> {
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
        Socket::create(
            stream,
            Some(self.addr),
            self.protocols,
            self.user.clone(),
            self.options,
        )
        .map_err(|e| {
            RpcError::new(
                errno::EFAILEDSOCKET,
                format!("cannot set up the connection: {e}"),
            )
        })
    }
}

impl Drop for Connections {
    fn drop(&mut self) {
        // The slab keeps a live socket reachable; fail ours so they close.
        for s in self
            .idle
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            s.set_failed(RpcError::new(errno::EUNUSED, "channel dropped"));
        }
    }
}
