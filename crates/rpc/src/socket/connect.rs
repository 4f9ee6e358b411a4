//! Non-blocking connect with a deadline that suspends the calling fiber
//! (or blocks a plain thread), returning a std stream for [`super::Socket`].

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use fibrpc_fiber::io::{fd_wait, Interest};
use socket2::{Domain, Socket as RawSocket, Type};
use std::os::fd::AsRawFd;

/// Connects to `addr`, giving up at `deadline` with `TimedOut`.
pub(crate) fn connect(addr: SocketAddr, deadline: Instant) -> io::Result<TcpStream> {
    let sock = RawSocket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        None,
    )?;
    match sock.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
            let left = deadline.saturating_duration_since(Instant::now());
            fd_wait(sock.as_raw_fd(), Interest::WRITABLE, Some(left))?;
            if let Some(e) = sock.take_error()? {
                return Err(e);
            }
            // Writable without an error can still mean "not connected" on
            // a spurious wakeup; ask the kernel.
            sock.peer_addr()?;
        }
        Err(e) => return Err(e),
    }
    Ok(sock.into())
}
