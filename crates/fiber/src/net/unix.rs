//! Unix domain stream sockets whose reads and writes suspend the fiber.

use super::accept::accept;
use super::fd::IoFd;
use crate::io::Interest;
use socket2::{Domain, SockAddr, SockRef, Socket, Type};
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A listening Unix stream socket.
#[derive(Debug)]
pub struct UnixListener {
    io: IoFd,
}

/// A connected Unix stream socket. Like [`super::TcpStream`], `&UnixStream`
/// reads and writes too, so it can be shared by a reader and a writer.
#[derive(Debug, Clone)]
pub struct UnixStream {
    io: Arc<IoFd>,
}

impl UnixListener {
    /// Binds to `path` (which must not exist) and listens.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let sock = Socket::new(Domain::UNIX, Type::STREAM.nonblocking().cloexec(), None)?;
        sock.bind(&SockAddr::unix(path)?)?;
        sock.listen(super::tcp::DEFAULT_BACKLOG as i32)?;
        Ok(UnixListener {
            io: IoFd::from_nonblocking(OwnedFd::from(sock)),
        })
    }

    /// Waits for a connection (with the same descriptor-exhaustion back-off
    /// as TCP).
    pub fn accept(&self) -> io::Result<UnixStream> {
        let (fd, _) = accept(&self.io)?;
        Ok(UnixStream {
            io: Arc::new(IoFd::from_nonblocking(fd)),
        })
    }
}

impl UnixStream {
    /// Connects to the socket at `path`. A full backlog (`EAGAIN` on a Unix
    /// socket) is retried after short sleeps.
    pub fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let addr = SockAddr::unix(path)?;
        let sock = Socket::new(Domain::UNIX, Type::STREAM.nonblocking().cloexec(), None)?;
        loop {
            match sock.connect(&addr) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    crate::sleep(Duration::from_millis(1)).map_err(|_| {
                        io::Error::new(io::ErrorKind::Interrupted, "interrupted in connect")
                    })?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(UnixStream {
            io: Arc::new(IoFd::from_nonblocking(OwnedFd::from(sock))),
        })
    }

    /// A connected pair.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = Socket::pair(Domain::UNIX, Type::STREAM.nonblocking().cloexec(), None)?;
        let wrap = |s: Socket| -> io::Result<UnixStream> {
            Ok(UnixStream {
                io: Arc::new(IoFd::from_nonblocking(OwnedFd::from(s))),
            })
        };
        Ok((wrap(a)?, wrap(b)?))
    }

    /// Shuts down the read side, the write side or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        SockRef::from(self.io.owned()).shutdown(how)
    }

    /// Limits how long one read may wait (`None`: forever).
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.io.set_timeout(Interest::READABLE, t)
    }

    /// Limits how long one write may wait (`None`: forever).
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.io.set_timeout(Interest::WRITABLE, t)
    }
}

impl_read!(UnixStream, &UnixStream);
impl_socket_write!(UnixStream, &UnixStream);

impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.io.raw()
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.io.raw()
    }
}
