//! `IoFd`: a non-blocking descriptor plus its registration, with the
//! blocking-style read/write loop every net type shares.

use crate::io::{Interest, Registration};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A registered non-blocking descriptor.
///
/// Field order matters: the registration is dropped (removed from epoll)
/// before the descriptor is closed.
pub(crate) struct IoFd {
    reg: Registration,
    fd: OwnedFd,
    /// Read timeout in nanoseconds; 0 = none.
    read_timeout: AtomicU64,
    /// Write timeout in nanoseconds; 0 = none.
    write_timeout: AtomicU64,
}

impl std::fmt::Debug for IoFd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoFd")
            .field("fd", &self.fd.as_raw_fd())
            .finish()
    }
}

impl IoFd {
    /// Makes `fd` non-blocking and registers it.
    pub(crate) fn new(fd: OwnedFd) -> io::Result<IoFd> {
        set_nonblocking(fd.as_raw_fd())?;
        Self::from_nonblocking(fd)
    }

    /// Registers `fd`, which is non-blocking already (`SOCK_NONBLOCK`).
    pub(crate) fn from_nonblocking(fd: OwnedFd) -> io::Result<IoFd> {
        Ok(IoFd {
            reg: Registration::new(fd.as_raw_fd())?,
            fd,
            read_timeout: AtomicU64::new(0),
            write_timeout: AtomicU64::new(0),
        })
    }

    /// The descriptor.
    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The owned descriptor (for socket options through `socket2`).
    pub(crate) fn owned(&self) -> &OwnedFd {
        &self.fd
    }

    /// Sets the read or write timeout (`None` or zero: none).
    pub(crate) fn set_timeout(&self, interest: Interest, t: Option<Duration>) -> io::Result<()> {
        if t == Some(Duration::ZERO) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a zero duration timeout",
            ));
        }
        let nanos = t.map_or(0, |d| d.as_nanos().clamp(1, u64::MAX as u128) as u64);
        self.timeout_cell(interest).store(nanos, Ordering::Relaxed);
        Ok(())
    }

    /// The read or write timeout.
    pub(crate) fn timeout(&self, interest: Interest) -> Option<Duration> {
        match self.timeout_cell(interest).load(Ordering::Relaxed) {
            0 => None,
            n => Some(Duration::from_nanos(n)),
        }
    }

    fn timeout_cell(&self, interest: Interest) -> &AtomicU64 {
        if interest.is_readable() {
            &self.read_timeout
        } else {
            &self.write_timeout
        }
    }

    /// Runs `op` until it does not fail with `EAGAIN`/`EINTR`, waiting for
    /// `interest` between tries (up to the timeout for that direction).
    pub(crate) fn io<T>(
        &self,
        interest: Interest,
        mut op: impl FnMut(RawFd) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut deadline: Option<Option<Instant>> = None;
        loop {
            // The ticket comes before the attempt: an edge after it makes
            // the wait below return at once.
            let ticket = self.reg.readiness(interest);
            match op(self.raw()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The clock is read only when we actually block.
                    let d = *deadline
                        .get_or_insert_with(|| self.timeout(interest).map(|t| Instant::now() + t));
                    self.reg.wait(interest, ticket, d)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }

    /// Waits until `ready` says yes, checking it after each edge (for
    /// connect completion).
    pub(crate) fn wait_until(
        &self,
        interest: Interest,
        deadline: Option<Instant>,
        mut ready: impl FnMut(RawFd) -> io::Result<bool>,
    ) -> io::Result<()> {
        loop {
            let ticket = self.reg.readiness(interest);
            if ready(self.raw())? {
                return Ok(());
            }
            self.reg.wait(interest, ticket, deadline)?;
        }
    }

    /// One `read(2)`, suspending while nothing is there.
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io(Interest::READABLE, |fd| {
            // SAFETY: `buf` is valid for `buf.len()` bytes of writes.
            cvt(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) })
        })
    }

    /// One `write(2)` (pipes), suspending while the pipe is full.
    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.io(Interest::WRITABLE, |fd| {
            // SAFETY: `buf` is valid for `buf.len()` bytes of reads.
            cvt(unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) })
        })
    }

    /// One `send(2)` with `MSG_NOSIGNAL` (sockets: a closed peer gives
    /// `EPIPE`, never `SIGPIPE`).
    pub(crate) fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io(Interest::WRITABLE, |fd| {
            // SAFETY: `buf` is valid for `buf.len()` bytes of reads.
            cvt(unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) })
        })
    }

    /// One `writev`-like `sendmsg(2)` with `MSG_NOSIGNAL`.
    pub(crate) fn send_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.io(Interest::WRITABLE, |fd| {
            // SAFETY: a zeroed msghdr is valid; iov points at `bufs`, whose
            // IoSlice is ABI-compatible with iovec, alive for the call.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
            msg.msg_iovlen = bufs.len().min(1024) as _;
            // SAFETY: see above.
            cvt(unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL) })
        })
    }

    /// One `readv(2)`.
    pub(crate) fn read_vectored(&self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        self.io(Interest::READABLE, |fd| {
            let n = bufs.len().min(1024) as libc::c_int;
            // SAFETY: IoSliceMut is ABI-compatible with iovec; the buffers
            // are valid for writes for the call.
            cvt(unsafe { libc::readv(fd, bufs.as_ptr() as *const libc::iovec, n) })
        })
    }
}

impl AsRawFd for IoFd {
    fn as_raw_fd(&self) -> RawFd {
        self.raw()
    }
}

/// Converts a `-1`-on-error syscall result.
pub(crate) fn cvt(r: isize) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Sets `O_NONBLOCK`.
pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own; results checked.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        if flags & libc::O_NONBLOCK == 0
            && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
