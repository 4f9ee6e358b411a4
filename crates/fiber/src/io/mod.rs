//! Descriptor readiness for fibers: the edge-triggered epoll dispatcher
//! (or, with [`IoDriver::Uring`], io_uring polls behind the same surface).
//!
//! Descriptors are registered edge-triggered with one of the dispatchers
//! ([`Config::dispatchers`], bRPC's `event_dispatcher_num`). An event either
//! wakes the fibers waiting for that descriptor ([`Registration::wait`],
//! [`fd_wait`]) or starts a reader fiber on the 0→1 transition of the
//! descriptor's event counter ([`Registration::with_reader`], the hook the
//! RPC layer reads sockets with). [`crate::net`] builds blocking-style
//! sockets on top.
//!
//! [`recv`], [`send`], [`recv_vectored`] and [`send_vectored`] are one
//! non-blocking attempt each: on the io_uring driver, from a pinned fiber,
//! an operation on the worker's ring that its next `io_uring_enter` runs
//! (no system call of its own); anywhere else the system call.

pub(crate) mod batch;
mod dispatcher;
pub(crate) mod driver;
pub(crate) mod edges;
mod entry;
mod reader;
mod registration;
mod ring_op;

pub use driver::{active_driver, configure, uring_ops_completed, Config, IoDriver, Poller};
pub use reader::ReadEvents;
pub use registration::Registration;
pub use ring_op::{recv, recv_vectored, send, send_vectored, send_vectored_now};

use crate::sys::epoll;
use entry::EntrySlab;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Which readiness to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interest(u8);

impl Interest {
    /// Readable (or peer closed, or error).
    pub const READABLE: Interest = Interest(1);
    /// Writable (or error).
    pub const WRITABLE: Interest = Interest(2);
    /// Either.
    pub const BOTH: Interest = Interest(3);

    /// Whether this includes readability.
    pub fn is_readable(self) -> bool {
        self.0 & 1 != 0
    }

    /// Whether this includes writability.
    pub fn is_writable(self) -> bool {
        self.0 & 2 != 0
    }

    fn epoll_events(self) -> u32 {
        let mut ev = 0;
        if self.is_readable() {
            ev |= epoll::IN | epoll::RDHUP;
        }
        if self.is_writable() {
            ev |= epoll::OUT;
        }
        ev
    }
}

impl std::ops::BitOr for Interest {
    type Output = Interest;
    fn bitor(self, rhs: Interest) -> Interest {
        Interest(self.0 | rhs.0)
    }
}

/// A readiness ticket: see [`Registration`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness(u32);

impl Readiness {
    /// The edge count this ticket was taken at (modulo 2^31).
    pub fn as_u32(self) -> u32 {
        self.0 >> 1
    }
}

/// Waits until `fd` is ready for `interest` (bRPC's `bthread_fd_wait`),
/// suspending the fiber (or blocking the thread). `timeout` `None` waits
/// forever; expiry gives `ErrorKind::TimedOut`, [`crate::interrupt`] gives
/// `ErrorKind::Interrupted`.
///
/// One-shot and level-triggered: if `fd` is ready already it returns at
/// once. `fd` should not be registered already (a [`Registration`] or
/// another `fd_wait` in progress on it): if that registration sits in the
/// same dispatcher the call fails with `ErrorKind::AlreadyExists`; in
/// another one it works as an independent one-shot wait.
pub fn fd_wait(fd: RawFd, interest: Interest, timeout: Option<Duration>) -> io::Result<()> {
    // A timeout too long for the clock is no timeout.
    let deadline = timeout.and_then(crate::sync::deadline_after);
    let driver = driver::Driver::get()?;
    let slab = EntrySlab::global();
    let (token, entry) = slab.alloc()?;
    entry.oneshot.store(true, Ordering::Relaxed);
    let ticket = entry.read.ticket();
    let index = driver.pick();
    let d = &driver.dispatchers()[index];
    // One-shot events bump the read counter whatever their kind; see
    // `Dispatcher::poll`.
    if let Err(e) = d.add_oneshot(fd, interest.epoll_events(), token) {
        slab.release(token);
        return Err(e);
    }
    let r = registration::wait_edges(&entry.read, ticket, deadline);
    let _ = d.delete(fd, token);
    slab.release(token);
    r
}

/// Releases the pages of the readiness slab's segments that hold no
/// registration (see `entry`); returns the bytes released. For the memory
/// trimmer.
pub(crate) fn trim_entries() -> usize {
    match driver::started() {
        Some(_) => EntrySlab::global().trim(),
        None => 0,
    }
}
