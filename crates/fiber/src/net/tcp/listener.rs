//! `TcpListener`: accepts connections, suspending the fiber while none is
//! pending.

use super::stream::{each_addr, sock_addr, TcpStream};
use crate::net::accept::accept;
use crate::net::fd::IoFd;
use socket2::{Domain, SockRef, Socket, Type};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// The listen backlog of [`TcpListener::bind`]. std (and tokio through
/// mio) use 128, which made 1000 simultaneous connects take a second here:
/// SYNs beyond the queue are dropped and retried after 1 s. The kernel caps
/// it at `net.core.somaxconn`.
pub const DEFAULT_BACKLOG: u32 = 1024;

/// A TCP listening socket.
#[derive(Debug)]
pub struct TcpListener {
    io: IoFd,
}

impl TcpListener {
    /// Binds to the first address of `addr` that works, with `SO_REUSEADDR`
    /// and a backlog of [`DEFAULT_BACKLOG`].
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        Self::bind_with_backlog(addr, DEFAULT_BACKLOG)
    }

    /// Binds with an explicit listen backlog.
    pub fn bind_with_backlog(addr: impl ToSocketAddrs, backlog: u32) -> io::Result<TcpListener> {
        each_addr(addr, |a| {
            let sock = Socket::new(
                Domain::for_address(*a),
                Type::STREAM.nonblocking().cloexec(),
                None,
            )?;
            sock.set_reuse_address(true)?;
            sock.bind(&(*a).into())?;
            sock.listen(backlog.min(i32::MAX as u32) as i32)?;
            Ok(TcpListener {
                io: IoFd::from_nonblocking(OwnedFd::from(sock)),
            })
        })
    }

    /// Takes over a bound, listening std listener.
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        Ok(TcpListener {
            io: IoFd::from_nonblocking(OwnedFd::from(listener)),
        })
    }

    /// Waits for a connection. Running out of descriptors (`EMFILE`,
    /// `ENFILE`) is not returned: the listener logs, backs off and retries.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (fd, addr) = accept(&self.io)?;
        let io = IoFd::from_nonblocking(fd);
        Ok((TcpStream::from_fd(io), sock_addr(addr)?))
    }

    /// An endless iterator over accepted connections.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sock_addr(SockRef::from(self.io.owned()).local_addr()?)
    }

    /// Limits how long one `accept` may wait (`None`: forever).
    pub fn set_accept_timeout(&self, t: Option<std::time::Duration>) -> io::Result<()> {
        self.io.set_timeout(crate::io::Interest::READABLE, t)
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.io.raw()
    }
}

/// Iterator returned by [`TcpListener::incoming`].
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<Self::Item> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}
