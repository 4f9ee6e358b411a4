//! eventfd(2): how a thread wakes whoever sleeps in `epoll_wait`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A non-blocking eventfd.
#[derive(Debug)]
pub(crate) struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    /// A new eventfd with counter 0.
    pub(crate) fn new() -> io::Result<Self> {
        Self::with_flags(libc::EFD_CLOEXEC | libc::EFD_NONBLOCK)
    }

    /// A new eventfd whose reads block until it is written: for io_uring,
    /// which waits for a blocking read in the kernel but completes a read
    /// of a non-blocking descriptor with `EAGAIN`. Writes never block
    /// (the counter cannot realistically reach its limit).
    pub(crate) fn new_blocking() -> io::Result<Self> {
        Self::with_flags(libc::EFD_CLOEXEC)
    }

    fn with_flags(flags: libc::c_int) -> io::Result<Self> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::eventfd(0, flags) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(EventFd { fd })
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Adds 1 to the counter of the eventfd `fd`, making it readable. Callers
/// hold only the number (a worker's parking lot publishes it while it
/// sleeps in epoll); the eventfd lives as long as its dispatcher, forever.
/// (Loom builds model the eventfd with a flag in the parking lot instead.)
#[cfg_attr(loom, allow(dead_code))]
pub(crate) fn notify(fd: RawFd) {
    let one: u64 = 1;
    // Through `syscall`, not glibc's cancellable `write` (see there).
    // SAFETY: writes 8 bytes from a live u64. A write after the sleeper
    // left only makes a later poll return early.
    let r = unsafe { super::syscall(libc::SYS_write, fd, [(&raw const one) as usize, 8, 0, 0, 0]) };
    if r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN) {
        // The counter is saturated: a dispatcher's eventfd is never
        // drained (every write is an edge, see the dispatcher), but a
        // refused write is no edge. Empty it and write again. (2^64 - 2
        // writes: never in practice, and any other eventfd is drained by
        // its reader.)
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64; then as above.
        unsafe {
            libc::read(fd, (&mut v as *mut u64).cast(), 8);
            libc::write(fd, (&one as *const u64).cast(), 8);
        }
    }
}
