//! `TcpStream`: a TCP connection whose reads and writes suspend the fiber.

use super::split::{OwnedReadHalf, OwnedWriteHalf};
use crate::io::Interest;
use crate::net::fd::IoFd;
use crate::net::sendfile;
use crate::sys;
use socket2::{Domain, SockRef, Socket, Type};
use std::fs::File;
use std::io;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A TCP connection. Blocking calls suspend the calling fiber (a plain
/// thread blocks), never the worker.
///
/// `&TcpStream` implements `Read` and `Write` too, so one fiber may read
/// while another writes; [`into_split`](Self::into_split) gives owned
/// halves for fibers that must be `'static`.
#[derive(Debug)]
pub struct TcpStream {
    pub(super) io: Arc<IoFd>,
}

impl TcpStream {
    /// Connects to the first address of `addr` that accepts.
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        each_addr(addr, |a| connect_addr(a, None))
    }

    /// Connects to `addr`, giving up with `ErrorKind::TimedOut` after
    /// `timeout` (none if it is too long for the clock).
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        connect_addr(addr, crate::sync::deadline_after(timeout))
    }

    /// Takes over a connected std stream (made non-blocking here).
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        Ok(TcpStream::from_fd(IoFd::from_nonblocking(OwnedFd::from(
            stream,
        ))))
    }

    pub(crate) fn from_fd(io: IoFd) -> TcpStream {
        TcpStream { io: Arc::new(io) }
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        sock_addr(self.sock().peer_addr()?)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sock_addr(self.sock().local_addr()?)
    }

    /// Shuts down the read side, the write side or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if how != Shutdown::Read {
            // What was batched goes before the end of the stream.
            crate::net::batched::send_queued(&self.io)?;
        }
        self.sock().shutdown(how)
    }

    /// Sets `TCP_NODELAY` (no Nagle delay for small writes).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.sock().set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.sock().nodelay()
    }

    /// Limits how long one read may wait (`None`: forever). Expiry gives
    /// `ErrorKind::TimedOut`. A zero duration is an error, as in std.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.io.set_timeout(Interest::READABLE, t)
    }

    /// Limits how long one write may wait (`None`: forever).
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.io.set_timeout(Interest::WRITABLE, t)
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.io.timeout(Interest::READABLE))
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.io.timeout(Interest::WRITABLE))
    }

    /// The pending socket error, if any (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock().take_error()
    }

    /// Sends `len` bytes of `file` from `offset` with `sendfile(2)`: the
    /// bytes go from the page cache to the socket without passing through
    /// user space. Falls back to `pread` + `send` where the kernel refuses
    /// sendfile for this file. Returns the bytes sent: `len`, or fewer if
    /// the file is shorter.
    pub fn send_file(&self, file: &File, offset: u64, len: u64) -> io::Result<u64> {
        sendfile::send_file(&self.io, file, offset, len)
    }

    /// Writes all of `buf`, or, if other fibers are queued on the
    /// caller's worker, copies it and returns at once: the worker sends it
    /// when it has run those fibers (or at its next periodic look at I/O,
    /// some tens of fiber runs later), after their reads and with their
    /// answers. For a fiber-per-connection server whose peers share its
    /// cores: every `send` wakes a peer thread, and one that preempts the
    /// worker mid-batch strands the connections still queued on it for a
    /// scheduler tick or two (BENCHMARKS.md in the repository: TCP echo at
    /// 50 connections, p99 4.2 → 2.5 ms at the same throughput; the
    /// median can rise where the peer has many threads).
    ///
    /// - Order: the stream's bytes leave in the order its writes were
    ///   made; every other write (`Write`, [`send_file`](Self::send_file),
    ///   [`shutdown`](Self::shutdown) of the write side) sends what is
    ///   queued first. (Writes of concurrent fibers interleave as with
    ///   `write_all`.)
    /// - Errors: a failed send of queued bytes is returned by the
    ///   stream's next write; the bytes are dropped (the connection is
    ///   broken).
    /// - Memory: at most 64 KiB queued per stream; past that the write
    ///   sends what is queued, then `buf`, before it returns.
    /// - Dropping the stream does not drop queued bytes: they are sent,
    ///   then the descriptor is closed (a send that waits for the peer
    ///   is bounded by the write timeout, if set).
    ///
    /// Outside a fiber, or when nothing else is queued on the worker, it
    /// is `write_all`.
    pub fn write_all_batched(&self, buf: &[u8]) -> io::Result<()> {
        if crate::net::batched::try_queue(&self.io, buf)? {
            return Ok(());
        }
        // Sends what is queued first.
        io::Write::write_all(&mut &*self, buf)
    }

    /// Suspends until a read may find data (or the end of the stream),
    /// without reading, up to the read timeout. With
    /// [`try_read`](Self::try_read) a connection can wait for input
    /// holding no buffer, and take one only once bytes are there: an idle
    /// connection then costs its fiber's stack page and nothing more.
    ///
    /// It waits only if the last read under the current readiness ticket
    /// found the socket drained, so it makes no system call; wakeups may
    /// be spurious (`try_read` then returns `WouldBlock`: wait again).
    pub fn readable(&self) -> io::Result<()> {
        self.io.readable()
    }

    /// One read that never suspends: `WouldBlock` if nothing is there yet.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.try_read(buf)
    }

    /// Splits into a read half and a write half that two fibers can own.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        (
            OwnedReadHalf {
                io: self.io.clone(),
            },
            OwnedWriteHalf { io: self.io },
        )
    }

    /// Gives the connection back as a std stream (still non-blocking),
    /// removing it from the dispatcher: for code that registers the
    /// descriptor itself (the RPC layer's `Socket`).
    pub fn into_std(self) -> std::net::TcpStream {
        // Bytes batched before are sent (an error would show on the std
        // stream's next write: the connection is broken).
        let _ = crate::net::batched::send_queued(&self.io);
        let fd = match Arc::try_unwrap(self.io) {
            Ok(io) => io.into_owned_fd(),
            // Only split halves share the Arc, and they cannot coexist with
            // a whole stream (reunite consumes them).
            Err(shared) => shared
                .owned()
                .try_clone()
                .expect("dup of a live TcpStream descriptor"),
        };
        std::net::TcpStream::from(fd)
    }

    fn sock(&self) -> SockRef<'_> {
        SockRef::from(self.io.owned())
    }
}

impl_read!(TcpStream, &TcpStream);
impl_socket_write!(TcpStream, &TcpStream);

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.io.raw()
    }
}

/// Tries `f` on each address; returns the first success or the last error.
pub(crate) fn each_addr<T>(
    addr: impl ToSocketAddrs,
    mut f: impl FnMut(&SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        match f(&a) {
            Ok(t) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "no addresses to connect to")
    }))
}

fn connect_addr(addr: &SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
    let sock = Socket::new(
        Domain::for_address(*addr),
        Type::STREAM.nonblocking().cloexec(),
        None,
    )?;
    let in_progress = match sock.connect(&(*addr).into()) {
        Ok(()) => false,
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => true,
        Err(e) => return Err(e),
    };
    // Registered after `connect` started: a fresh unconnected socket reports
    // "writable + hung up", which would look like a finished connect.
    let io = IoFd::from_nonblocking(OwnedFd::from(sock));
    if in_progress {
        io.wait_until(Interest::WRITABLE, deadline, sys::socket::connect_finished)
            .map_err(|e| {
                if e.kind() == io::ErrorKind::TimedOut {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("connect to {addr} timed out"),
                    )
                } else {
                    e
                }
            })?;
    }
    Ok(TcpStream::from_fd(io))
}

pub(crate) fn sock_addr(a: socket2::SockAddr) -> io::Result<SocketAddr> {
    a.as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an IP address"))
}
