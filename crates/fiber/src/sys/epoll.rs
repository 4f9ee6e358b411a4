//! epoll(7), edge-triggered, straight through `libc`.
//!
//! Why not `mio`: the dispatcher needs exactly three calls (create, ctl,
//! wait), a 64-bit token that carries our versioned registration id, and
//! control over who blocks in `epoll_wait` (a worker's idle loop or a
//! dedicated thread). mio's `Poll`/`Registry` split and its `Token(usize)`
//! add nothing here, and its waker would duplicate our eventfd.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Readable (`EPOLLIN`).
pub(crate) const IN: u32 = libc::EPOLLIN as u32;
/// Writable (`EPOLLOUT`).
pub(crate) const OUT: u32 = libc::EPOLLOUT as u32;
/// Error condition (always reported).
pub(crate) const ERR: u32 = libc::EPOLLERR as u32;
/// Hang-up (always reported).
pub(crate) const HUP: u32 = libc::EPOLLHUP as u32;
/// The peer shut down its writing half.
pub(crate) const RDHUP: u32 = libc::EPOLLRDHUP as u32;
/// Edge-triggered.
pub(crate) const ET: u32 = libc::EPOLLET as u32;
/// Disarm after one event (for one-shot `fd_wait`).
pub(crate) const ONESHOT: u32 = libc::EPOLLONESHOT as u32;

/// One epoll instance.
#[derive(Debug)]
pub(crate) struct Epoll {
    fd: OwnedFd,
}

/// A buffer for the events one `epoll_wait` returns.
pub(crate) struct Events {
    buf: Vec<libc::epoll_event>,
    len: usize,
}

impl Events {
    /// Room for `cap` events per wait.
    pub(crate) fn with_capacity(cap: usize) -> Self {
        Events {
            buf: vec![libc::epoll_event { events: 0, u64: 0 }; cap.max(1)],
            len: 0,
        }
    }

    /// `(token, events)` of the last wait.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.buf[..self.len].iter().map(|e| (e.u64, e.events))
    }

    /// Number of events of the last wait.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Empties the buffer (for a poller that fills it event by event).
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// Appends an event (the io_uring poller's completions), growing the
    /// buffer if a reap brings more than a wait would.
    pub(crate) fn push(&mut self, token: u64, events: u32) {
        if self.len == self.buf.len() {
            self.buf.push(libc::epoll_event { events: 0, u64: 0 });
        }
        self.buf[self.len] = libc::epoll_event { events, u64: token };
        self.len += 1;
    }
}

impl Epoll {
    /// A new epoll instance (close-on-exec).
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Epoll { fd })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: `ev` is a valid epoll_event for the call's duration; the
        // kernel checks `fd`.
        let rc = unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut ev) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Adds `fd` with `events`, reported with `token`.
    pub(crate) fn add(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, events, token)
    }

    /// Removes `fd`.
    pub(crate) fn delete(&self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits for events; `None` waits forever. Returns the number of events
    /// (0 on timeout or on a signal interrupting the wait).
    pub(crate) fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        let ms = match timeout {
            None => -1,
            // Round up: a 0.5 ms timeout must not become a busy poll.
            Some(d) => d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int,
        };
        // `epoll_pwait(2)` with no signal mask (whose size the kernel then
        // ignores) is `epoll_wait(2)`, which some architectures lack;
        // through `syscall`: see there. A timeout of -1 (forever) survives
        // the trip through `usize` (sign-extended there and back).
        // SAFETY: the buffer holds `buf.len()` initialized events and the
        // kernel writes at most that many.
        let n = unsafe {
            let (ptr, max) = (events.buf.as_mut_ptr() as usize, events.buf.len());
            super::syscall(
                libc::SYS_epoll_pwait,
                self.fd.as_raw_fd(),
                [ptr, max, ms as usize, 0, 0],
            )
        };
        if n < 0 {
            events.len = 0;
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(e);
        }
        events.len = n as usize;
        Ok(events.len)
    }
}

impl AsRawFd for Epoll {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
