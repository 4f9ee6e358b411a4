//! The socket calls `socket2` does not make the way the dispatcher needs:
//! accept4(2) with flags set atomically, and the check that a non-blocking
//! connect(2) finished.

use socket2::{SockAddr, SockRef};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// One `accept4(2)` on the listening socket `fd`: the connection comes out
/// non-blocking and close-on-exec (no window where an `exec` in another
/// thread inherits it). `EAGAIN` comes back as `WouldBlock`.
pub(crate) fn accept(fd: RawFd) -> io::Result<(OwnedFd, SockAddr)> {
    // SAFETY: `try_init` hands us storage and its length for the kernel to
    // fill; accept4 writes at most `len` bytes and updates `len`.
    let (fd, addr) = unsafe {
        SockAddr::try_init(|storage, len| {
            let r = libc::accept4(
                fd,
                storage.cast(),
                len,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            );
            if r < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(r)
            }
        })?
    };
    // SAFETY: accept4 returned a fresh descriptor that nobody else owns.
    Ok((unsafe { OwnedFd::from_raw_fd(fd) }, addr))
}

/// Whether the non-blocking connect on `fd` finished: `Ok(false)` while it
/// is in progress (not writable yet), `Ok(true)` once connected, its error
/// (`SO_ERROR`) if it failed.
pub(crate) fn connect_finished(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if n == 0 {
        return Ok(false);
    }
    match SockRef::from(&fd).take_error()? {
        Some(e) => Err(e),
        None => Ok(true),
    }
}
