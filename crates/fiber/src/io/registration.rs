//! A descriptor registered with a dispatcher, and waiting on it.

use super::driver::Driver;
use super::edges::Edges;
use super::entry::{EntrySlab, IoEntry};
use super::reader::ReaderShared;
use super::{Interest, Readiness};
use crate::butex::WaitError;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// A descriptor registered edge-triggered with one of the dispatchers.
///
/// Fibers (and threads) wait for readiness with the ticket protocol: take
/// [`readiness`](Self::readiness) *before* trying the I/O, and if it fails
/// with `EAGAIN`, [`wait`](Self::wait) with that ticket. An edge that lands
/// between the two changes the ticket, so the wait returns at once: no
/// wakeup is lost. Wakeups may be spurious; the caller retries its I/O.
///
/// The registration does not own the descriptor. It must be dropped before
/// the descriptor is closed (otherwise epoll may keep reporting a reused
/// number to this registration — a logic error, never memory unsafety;
/// with the io_uring driver the kernel's poll holds the file open until
/// the registration goes, so a socket closed first is not shut down until
/// then).
pub struct Registration {
    token: u64,
    entry: &'static IoEntry,
    fd: RawFd,
    driver: &'static Driver,
    dispatcher: usize,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("fd", &self.fd)
            .field("token", &format_args!("{:#x}", self.token))
            .finish()
    }
}

impl Registration {
    /// Registers `fd` (which should be non-blocking) for read and write
    /// readiness.
    pub fn new(fd: RawFd) -> io::Result<Registration> {
        Self::register(fd, None)
    }

    /// Registers `fd` with a reader hook (bRPC's input event): on each read
    /// edge, if no reader runs for this descriptor, a new fiber calls
    /// `on_readable`, again and again until no edge arrived during a call.
    /// The handler should read until `EAGAIN` (or EOF); it may be called
    /// when there is nothing to read. Two calls never overlap, unless the
    /// handler ended its reading role with
    /// [`ReadEvents::more_read_events`](super::ReadEvents::more_read_events)
    /// returning `false`: then the next edge may start a new call while the
    /// old one finishes its non-reading work.
    pub fn with_reader(
        fd: RawFd,
        on_readable: impl Fn(&super::ReadEvents<'_>) + Send + Sync + 'static,
    ) -> io::Result<Registration> {
        Self::register(fd, Some(ReaderShared::new(Box::new(on_readable), None)))
    }

    /// As [`with_reader`](Self::with_reader), and `if_lost` runs when a
    /// reader fiber cannot start (the fiber limit, or no stack could be
    /// mapped): the input is then unread, and the owner should give up on
    /// the descriptor (close the connection). It runs outside any fiber
    /// (on the dispatcher or a worker's scheduler) and must not block.
    pub fn with_reader_or_else(
        fd: RawFd,
        on_readable: impl Fn(&super::ReadEvents<'_>) + Send + Sync + 'static,
        if_lost: impl Fn() + Send + Sync + 'static,
    ) -> io::Result<Registration> {
        let reader = ReaderShared::new(Box::new(on_readable), Some(Box::new(if_lost)));
        Self::register(fd, Some(reader))
    }

    /// As [`with_reader_or_else`](Self::with_reader_or_else), with the
    /// descriptor's events collected by the calling worker's own
    /// dispatcher when called from a fiber pinned to a worker (round
    /// robin otherwise). For a descriptor whose input wakes fibers of
    /// that worker — a client connection used by one worker's callers —
    /// the reader then starts where they run, and waking them crosses no
    /// thread.
    pub fn with_reader_here_or_else(
        fd: RawFd,
        on_readable: impl Fn(&super::ReadEvents<'_>) + Send + Sync + 'static,
        if_lost: impl Fn() + Send + Sync + 'static,
    ) -> io::Result<Registration> {
        let reader = ReaderShared::new(Box::new(on_readable), Some(Box::new(if_lost)));
        let driver = Driver::get()?;
        Self::register_on(driver, fd, Some(reader), driver.pick())
    }

    /// Registers `fd` and returns the read and write tickets as they were
    /// before the registration: an `EAGAIN` seen before this call plus a
    /// wait on these tickets misses no edge (registering a ready
    /// descriptor reports it at once).
    pub(crate) fn new_with_tickets(fd: RawFd) -> io::Result<(Registration, Readiness, Readiness)> {
        let driver = Driver::get()?;
        let slab = EntrySlab::global();
        let (token, entry) = slab.alloc()?;
        let read = Readiness(entry.read.ticket());
        let write = Readiness(entry.write.ticket());
        let reg = Self::add(driver, token, entry, fd, driver.pick())?;
        Ok((reg, read, write))
    }

    fn register(fd: RawFd, reader: Option<std::sync::Arc<ReaderShared>>) -> io::Result<Self> {
        let driver = Driver::get()?;
        let dispatcher = match reader {
            Some(_) => driver.pick_spread(),
            None => driver.pick(),
        };
        Self::register_on(driver, fd, reader, dispatcher)
    }

    fn register_on(
        driver: &'static Driver,
        fd: RawFd,
        reader: Option<std::sync::Arc<ReaderShared>>,
        dispatcher: usize,
    ) -> io::Result<Self> {
        let slab = EntrySlab::global();
        let (token, entry) = slab.alloc()?;
        EntrySlab::set_reader(entry, reader);
        Self::add(driver, token, entry, fd, dispatcher)
    }

    fn add(
        driver: &'static Driver,
        token: u64,
        entry: &'static IoEntry,
        fd: RawFd,
        dispatcher: usize,
    ) -> io::Result<Self> {
        let slab = EntrySlab::global();
        if let Err(e) = driver.dispatchers()[dispatcher].add(fd, token) {
            slab.release(token);
            return Err(e);
        }
        Ok(Registration {
            token,
            entry,
            fd,
            driver,
            dispatcher,
        })
    }

    /// The descriptor.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// The ticket for `interest` (read or write; for both, read's).
    pub fn readiness(&self, interest: Interest) -> Readiness {
        Readiness(self.edges(interest).ticket())
    }

    /// Blocks the fiber (or thread) until an edge for `interest` arrived
    /// after `ticket` was taken, or `deadline` passes (`TimedOut`), or the
    /// fiber is interrupted (`Interrupted`).
    pub fn wait(
        &self,
        interest: Interest,
        ticket: Readiness,
        deadline: Option<Instant>,
    ) -> io::Result<()> {
        wait_edges(self.edges(interest), ticket.0, deadline)
    }

    /// Whether the peer hung up or the descriptor failed (sticky): reads
    /// will not block any more.
    pub fn read_closed(&self) -> bool {
        self.entry.read_closed.load(Ordering::Acquire)
    }

    fn edges(&self, interest: Interest) -> &'static Edges {
        if interest.is_readable() {
            &self.entry.read
        } else {
            &self.entry.write
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // ENOENT/EBADF if the fd was closed first: nothing left to remove.
        let _ = self.driver.dispatchers()[self.dispatcher].delete(self.fd, self.token);
        EntrySlab::global().release(self.token);
    }
}

/// Waits on a readiness counter, mapping the outcome to `io` errors.
pub(crate) fn wait_edges(e: &Edges, ticket: u32, deadline: Option<Instant>) -> io::Result<()> {
    match e.wait(ticket, deadline) {
        Ok(()) | Err(WaitError::WouldBlock) => Ok(()),
        Err(WaitError::TimedOut) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "timed out waiting for the descriptor",
        )),
        Err(WaitError::Interrupted) => Err(io::Error::new(
            io::ErrorKind::Interrupted,
            "fiber interrupted while waiting for the descriptor",
        )),
    }
}
