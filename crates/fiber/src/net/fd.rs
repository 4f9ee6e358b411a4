//! `IoFd`: a non-blocking descriptor plus its registration, with the
//! blocking-style read/write loop every net type shares.
//!
//! Registration is lazy: a descriptor is added to epoll at its first
//! `EAGAIN`, from the fiber that will wait on it. That fiber is pinned to
//! its worker, so the descriptor lands in that worker's dispatcher and its
//! events are collected by the very worker that runs the fiber — no
//! cross-thread wakeup per event (see `io::driver`). An accepted connection
//! whose data is already there costs no `epoll_ctl` before its first read.

use crate::io::{Interest, Readiness, Registration};
use crate::sys;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

type RegSlot = OnceLock<Result<Registration, (io::ErrorKind, String)>>;

/// A non-blocking descriptor, registered on first need.
///
/// Field order matters: the registration is dropped (removed from epoll)
/// before the descriptor is closed.
pub(crate) struct IoFd {
    reg: RegSlot,
    fd: OwnedFd,
    /// Read timeout in nanoseconds; 0 = none.
    read_timeout: AtomicU64,
    /// Write timeout in nanoseconds; 0 = none.
    write_timeout: AtomicU64,
    /// `ticket + 1` of the last read that came back short (it drained the
    /// socket); 0 = none. While the read ticket still equals it, no data
    /// arrived since and the next read can wait without trying (tokio does
    /// the same: it saves one `EAGAIN` syscall per message) — unless the
    /// peer hung up, which no later edge would report.
    drained_at: AtomicU64,
    /// A socket: reads and sends go through `io::recv`/`io::send` (ring
    /// operations on the io_uring driver), not `read(2)`.
    socket: bool,
    /// Bytes queued by batched writes (`TcpStream::write_all_batched`),
    /// sent before any other write.
    pub(crate) batched: super::batched::Batched,
}

impl std::fmt::Debug for IoFd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoFd")
            .field("fd", &self.fd.as_raw_fd())
            .finish()
    }
}

impl IoFd {
    /// Wraps the socket `fd`, which is non-blocking already
    /// (`SOCK_NONBLOCK`).
    pub(crate) fn from_nonblocking(fd: OwnedFd) -> IoFd {
        IoFd {
            reg: OnceLock::new(),
            fd,
            read_timeout: AtomicU64::new(0),
            write_timeout: AtomicU64::new(0),
            drained_at: AtomicU64::new(0),
            socket: true,
            batched: Default::default(),
        }
    }

    /// Wraps `fd`, a non-blocking descriptor that is not a socket (a pipe
    /// end): reads are `read(2)`.
    pub(crate) fn from_nonblocking_file(fd: OwnedFd) -> IoFd {
        IoFd {
            socket: false,
            ..IoFd::from_nonblocking(fd)
        }
    }

    /// One non-blocking read attempt.
    fn read_once(&self, fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
        if self.socket {
            crate::io::recv(fd, buf)
        } else {
            sys::fd::read(fd, buf)
        }
    }

    /// Unregisters (if registered) and returns the descriptor.
    pub(crate) fn into_owned_fd(self) -> OwnedFd {
        let IoFd { reg, fd, .. } = self;
        // Removed from epoll before anyone else can see the descriptor.
        drop(reg);
        fd
    }

    /// The descriptor.
    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The owned descriptor (for socket options through `socket2`).
    pub(crate) fn owned(&self) -> &OwnedFd {
        &self.fd
    }

    /// Sets the read or write timeout (`None`: none; zero is an error, as
    /// in std).
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

    fn registration(&self) -> Option<&Registration> {
        self.reg.get().and_then(|r| r.as_ref().ok())
    }

    /// Registers the descriptor if nobody did yet. Returns the ticket for
    /// `interest` taken before the registration if *we* registered it
    /// (so an `EAGAIN` just seen can be waited on), `None` if someone else
    /// did (the caller must retry its I/O under a fresh ticket).
    fn register(&self, interest: Interest) -> io::Result<Option<Readiness>> {
        let mut mine = None;
        let r = self
            .reg
            .get_or_init(|| match Registration::new_with_tickets(self.raw()) {
                Ok((reg, read, write)) => {
                    mine = Some(if interest.is_readable() { read } else { write });
                    Ok(reg)
                }
                Err(e) => Err((e.kind(), e.to_string())),
            });
        match r {
            Ok(_) => Ok(mine),
            Err((kind, msg)) => Err(io::Error::new(*kind, msg.clone())),
        }
    }

    /// Runs `op` until it does not fail with `EAGAIN`/`EINTR`, waiting for
    /// `interest` between tries (up to the timeout for that direction).
    /// `op` gets the ticket it ran under (for `drained_at`).
    pub(crate) fn io<T>(
        &self,
        interest: Interest,
        mut op: impl FnMut(RawFd, Option<Readiness>) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut deadline: Option<Option<Instant>> = None;
        loop {
            // The ticket comes before the attempt: an edge after it makes
            // the wait below return at once.
            let ticket = self.registration().map(|r| r.readiness(interest));
            match op(self.raw(), ticket) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let ticket = match ticket {
                        Some(t) => t,
                        None => match self.register(interest)? {
                            Some(t) => t,
                            None => continue,
                        },
                    };
                    // The clock is read only when we actually block.
                    let d = *deadline.get_or_insert_with(|| {
                        self.timeout(interest).and_then(crate::sync::deadline_after)
                    });
                    self.wait(interest, ticket, d)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }

    fn wait(&self, interest: Interest, ticket: Readiness, d: Option<Instant>) -> io::Result<()> {
        match self.registration() {
            Some(reg) => reg.wait(interest, ticket, d),
            None => Ok(()),
        }
    }

    /// Waits until `ready` says yes, checking it after each edge (for
    /// connect completion).
    pub(crate) fn wait_until(
        &self,
        interest: Interest,
        deadline: Option<Instant>,
        mut ready: impl FnMut(BorrowedFd<'_>) -> io::Result<bool>,
    ) -> io::Result<()> {
        self.register(interest)?;
        loop {
            let ticket = self.registration().map(|r| r.readiness(interest));
            if ready(self.fd.as_fd())? {
                return Ok(());
            }
            if let Some(t) = ticket {
                self.wait(interest, t, deadline)?;
            }
        }
    }

    /// One `read(2)`, suspending while nothing is there.
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io(Interest::READABLE, |fd, ticket| {
            if let Some(t) = ticket {
                if self.drained_at.load(Ordering::Relaxed) == t.as_u32() as u64 + 1
                    && !self.registration().is_some_and(|r| r.read_closed())
                {
                    // Nothing arrived since a read drained the socket. (A
                    // hang-up is a state, not an edge: once seen, always
                    // read, so the EOF is returned.)
                    return Err(io::ErrorKind::WouldBlock.into());
                }
            }
            let n = self.read_once(fd, buf)?;
            if let Some(t) = ticket {
                if n > 0 && n < buf.len() {
                    self.drained_at
                        .store(t.as_u32() as u64 + 1, Ordering::Relaxed);
                }
            }
            Ok(n)
        })
    }

    /// Suspends until a read may find data (or the end of the stream)
    /// without reading anything, up to the read timeout. Waits only when a
    /// read under the current ticket found the socket drained; otherwise
    /// returns at once (the caller's read decides), so it costs no system
    /// call. Wakeups may be spurious: the read after it may still see
    /// `WouldBlock`.
    pub(crate) fn readable(&self) -> io::Result<()> {
        let Some(reg) = self.registration() else {
            // Never waited yet: nothing says the socket is empty.
            return Ok(());
        };
        let ticket = reg.readiness(Interest::READABLE);
        if self.drained_at.load(Ordering::Relaxed) != ticket.as_u32() as u64 + 1
            || reg.read_closed()
        {
            return Ok(());
        }
        let d = self
            .timeout(Interest::READABLE)
            .and_then(crate::sync::deadline_after);
        self.wait(Interest::READABLE, ticket, d)
    }

    /// One `read(2)` that never suspends: `WouldBlock` when nothing is
    /// there, after which [`readable`](Self::readable) waits for data.
    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let ticket = self.registration().map(|r| r.readiness(Interest::READABLE));
            match self.read_once(self.raw(), buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The ticket taken before the read, or (first time) the
                    // one from before the registration: an edge after it
                    // ends the next `readable`.
                    let ticket = match ticket {
                        Some(t) => Some(t),
                        None => self.register(Interest::READABLE)?,
                    };
                    if let Some(t) = ticket {
                        self.drained_at
                            .store(t.as_u32() as u64 + 1, Ordering::Relaxed);
                    }
                    return Err(e);
                }
                Ok(n) => {
                    if let Some(t) = ticket {
                        if n > 0 && n < buf.len() {
                            self.drained_at
                                .store(t.as_u32() as u64 + 1, Ordering::Relaxed);
                        }
                    }
                    return Ok(n);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One `write(2)` (pipes), suspending while the pipe is full.
    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.io(Interest::WRITABLE, |fd, _| sys::fd::write(fd, buf))
    }

    /// One `send(2)` with `MSG_NOSIGNAL` (sockets: a closed peer gives
    /// `EPIPE`, never `SIGPIPE`).
    pub(crate) fn send(&self, buf: &[u8]) -> io::Result<usize> {
        super::batched::send_queued(self)?;
        self.io(Interest::WRITABLE, |fd, _| crate::io::send(fd, buf))
    }

    /// One `writev`-like `sendmsg(2)` with `MSG_NOSIGNAL`.
    pub(crate) fn send_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        super::batched::send_queued(self)?;
        self.io(Interest::WRITABLE, |fd, _| {
            crate::io::send_vectored(fd, bufs)
        })
    }

    /// One `readv(2)`.
    pub(crate) fn read_vectored(&self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        self.io(Interest::READABLE, |fd, _| {
            if self.socket {
                crate::io::recv_vectored(fd, bufs)
            } else {
                sys::fd::read_vectored(fd, bufs)
            }
        })
    }
}

impl AsRawFd for IoFd {
    fn as_raw_fd(&self) -> RawFd {
        self.raw()
    }
}
