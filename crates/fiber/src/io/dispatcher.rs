//! bRPC's EventDispatcher: one epoll instance (or one io_uring used for
//! readiness, see [`crate::sys::uring`]), and what an event does.
//!
//! The dispatcher never reads or writes a socket. An event bumps the
//! registration's readiness counters (waking fibers blocked on them) or
//! hands the edge to its reader hook. Who calls [`PollGuard::poll`] — a
//! dedicated thread or an idle worker — is the driver's business.

use super::batch::BatchCounter;
use super::entry::EntrySlab;
use crate::sys::epoll::{self, Epoll, Events};
use crate::sys::eventfd::EventFd;
use crate::sys::uring::{Uring, OP_TAG};
use std::cell::UnsafeCell;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The token of the dispatcher's own eventfd.
const WAKER_TOKEN: u64 = u64::MAX;
/// Events taken per `epoll_wait`.
const EVENTS_PER_WAIT: usize = 256;

const READ_EVENTS: u32 = epoll::IN | epoll::RDHUP | epoll::HUP | epoll::ERR;
const CLOSED_EVENTS: u32 = epoll::RDHUP | epoll::HUP | epoll::ERR;
const WRITE_EVENTS: u32 = epoll::OUT | epoll::HUP | epoll::ERR;

/// The kernel interface a dispatcher waits in.
enum Backend {
    Epoll(Epoll),
    /// Boxed: a ring's state is a few hundred bytes, and the epoll
    /// dispatchers (the default) need not carry that much.
    Uring(Box<Uring>),
}

/// One epoll instance (or ring) plus the eventfd that interrupts its wait.
pub(crate) struct Dispatcher {
    backend: Backend,
    waker: EventFd,
    /// Held by whoever is polling (one poller per instance at a time).
    polling: AtomicBool,
    /// Whether the holder of `polling` sleeps in here (waits with a
    /// timeout other than zero), collecting the events of everyone who
    /// shares this instance: they may sleep on their futex meanwhile.
    blocking: AtomicBool,
    events: UnsafeCell<Events>,
    /// Odd while the poller handles a batch of events (looks entries up
    /// and touches them), even otherwise; see `wait_batch_done`.
    batch: BatchCounter,
}

// SAFETY: `events` is only touched by the holder of `polling` (see
// `try_poll`); everything else is thread-safe.
unsafe impl Sync for Dispatcher {}

impl Dispatcher {
    /// A new epoll instance (`uring`: a ring) with its waker registered.
    pub(crate) fn new(uring: bool) -> io::Result<Self> {
        let (backend, waker) = if uring {
            let waker = EventFd::new_blocking()?;
            (
                Backend::Uring(Box::new(Uring::new(waker.as_raw_fd(), WAKER_TOKEN)?)),
                waker,
            )
        } else {
            let epoll = Epoll::new()?;
            let waker = EventFd::new()?;
            epoll.add(waker.as_raw_fd(), epoll::IN | epoll::ET, WAKER_TOKEN)?;
            (Backend::Epoll(epoll), waker)
        };
        Ok(Dispatcher {
            backend,
            waker,
            polling: AtomicBool::new(false),
            blocking: AtomicBool::new(false),
            events: UnsafeCell::new(Events::with_capacity(EVENTS_PER_WAIT)),
            batch: BatchCounter::new(),
        })
    }

    /// The eventfd that interrupts a blocked [`poll`](PollGuard::poll).
    pub(crate) fn waker_fd(&self) -> RawFd {
        self.waker.as_raw_fd()
    }

    /// Registers `fd` edge-triggered for both directions under `token`.
    pub(crate) fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let ev = epoll::IN | epoll::OUT | epoll::RDHUP;
        match &self.backend {
            Backend::Epoll(e) => e.add(fd, ev | epoll::ET, token),
            // A multishot poll reports edges, like `EPOLLET`.
            Backend::Uring(u) => u.add(fd, ev, token),
        }
    }

    /// Registers `fd` one-shot, level-triggered, for `events`.
    pub(crate) fn add_oneshot(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        match &self.backend {
            Backend::Epoll(e) => e.add(fd, events | epoll::ONESHOT, token),
            Backend::Uring(u) => u.add_oneshot(fd, events, token),
        }
    }

    /// Removes `fd`, registered under `token`.
    pub(crate) fn delete(&self, fd: RawFd, token: u64) -> io::Result<()> {
        match &self.backend {
            Backend::Epoll(e) => e.delete(fd),
            Backend::Uring(u) => u.delete(fd, token),
        }
    }

    /// Whether a poller sleeps in here (and so collects every event).
    /// SeqCst, paired with the poller's store: an operation queued by
    /// someone who then reads `false` is submitted by that poller's enter
    /// (see `io::ring_op`).
    pub(crate) fn has_blocking_poller(&self) -> bool {
        self.blocking.load(Ordering::SeqCst)
    }

    /// The ring, if this dispatcher runs on io_uring and socket reads and
    /// writes may run on it as operations.
    pub(crate) fn op_ring(&self) -> Option<&Uring> {
        match &self.backend {
            Backend::Uring(u) if u.has_ops() => Some(u),
            _ => None,
        }
    }

    /// Ring operations completed here (0 on epoll).
    pub(crate) fn ops_completed(&self) -> u64 {
        match &self.backend {
            Backend::Uring(u) => u.ops_completed(),
            Backend::Epoll(_) => 0,
        }
    }

    /// Whether operations wait in the ring for a submit.
    pub(crate) fn has_queued_ops(&self) -> bool {
        match &self.backend {
            Backend::Uring(u) => u.has_queued_ops(),
            Backend::Epoll(_) => false,
        }
    }

    /// Waits (until `deadline` at most) until this dispatcher is not in
    /// the middle of a batch of events that began before the call; returns
    /// whether it got there. For the entry slab's trim: a slot released
    /// before the caller's `SeqCst` fence is then touched by no batch (one
    /// that begins later sees its new version). A poller sleeping in
    /// `epoll_wait` is not in a batch.
    pub(crate) fn wait_batch_done(&self, deadline: Instant) -> bool {
        self.batch.wait_done(|| {
            if Instant::now() >= deadline {
                return true;
            }
            std::thread::sleep(Duration::from_micros(50));
            false
        })
    }

    /// Becomes the poller if nobody is.
    pub(crate) fn try_lock(&self) -> Option<PollGuard<'_>> {
        if self.polling.load(Ordering::Relaxed) || self.polling.swap(true, Ordering::Acquire) {
            return None;
        }
        Some(PollGuard { d: self })
    }
}

/// The right to poll a dispatcher.
pub(crate) struct PollGuard<'a> {
    d: &'a Dispatcher,
}

impl PollGuard<'_> {
    /// Waits up to `timeout` (`None`: until an event or a wake) and handles
    /// what arrived. Returns the number of events handled.
    pub(crate) fn poll(&self, timeout: Option<Duration>) -> usize {
        // SAFETY: we hold `polling`, which guards `events`; no other
        // reference to it exists while the guard lives.
        let events = unsafe { &mut *self.d.events.get() };
        let sleeps = timeout != Some(Duration::ZERO);
        if sleeps {
            self.d.blocking.store(true, Ordering::SeqCst);
        }
        let r = match &self.d.backend {
            Backend::Epoll(e) => e.wait(events, timeout),
            // SAFETY: we hold `polling`: the only caller of the ring's
            // wait on this dispatcher.
            Backend::Uring(u) => unsafe { u.wait(events, timeout) },
        };
        if sleeps {
            self.d.blocking.store(false, Ordering::Release);
        }
        match r {
            Ok(_) => {}
            Err(e) => {
                // EBADF/EINVAL cannot happen on our own instance; report
                // rather than spin silently.
                tracing::error!(error = %e, "waiting for I/O events failed");
                return 0;
            }
        }
        if events.len() == 0 {
            crate::runtime::flush_after_poll();
            return 0;
        }
        // Pairs with the fence of `EntrySlab::trim` (see
        // `wait_batch_done`): either the trim sees this batch running and
        // waits for it, or this batch sees the versions the trim's
        // segments were released with.
        // Ends when dropped, even if a reader hook panics out of the loop.
        let batch = self.d.batch.begin();
        let slab = EntrySlab::global();
        for (token, ev) in events.iter() {
            if token == WAKER_TOKEN {
                // Not drained (mio's waker neither): registered
                // edge-triggered, the eventfd reports every write as a new
                // edge whatever its counter holds, so the `read(2)` a
                // drain costs bought nothing (HTTP under wrk: one per 30
                // requests). `notify` resets a counter that would
                // saturate. The ring's read consumes its counter itself.
                continue;
            }
            if token & OP_TAG != 0 {
                // Only the ring reports these: an operation's completion,
                // its result in the event bits.
                super::ring_op::complete(token, ev as i32);
                continue;
            }
            let Some(entry) = slab.lookup(token) else {
                continue;
            };
            if entry.oneshot.load(Ordering::Relaxed) {
                entry.read.bump();
                continue;
            }
            if ev & CLOSED_EVENTS != 0 {
                // Before the bump: a reader whose ticket includes this edge
                // sees the flag.
                entry.read_closed.store(true, Ordering::Release);
            }
            if ev & READ_EVENTS != 0
                && !(entry.has_reader.load(Ordering::Acquire) && entry.read_edge())
            {
                entry.read.bump();
            }
            if ev & WRITE_EVENTS != 0 {
                entry.write.bump();
            }
        }
        drop(batch);
        crate::runtime::flush_after_poll();
        events.len()
    }
}

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        self.d.polling.store(false, Ordering::Release);
    }
}
