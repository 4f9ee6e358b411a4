//! The reader-fiber hook (bRPC's `Socket::StartInputEvent`): on readiness
//! the dispatcher does not read; it bumps a per-registration event counter
//! and starts a reader fiber only on its 0→1 transition, so one descriptor
//! never has two readers and a burst of edges costs one fiber.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// What a reader registration calls; see [`super::Registration::with_reader`].
pub(crate) type ReadHandler = Box<dyn Fn(&ReadEvents<'_>) + Send + Sync + 'static>;

/// Handed to a reader hook: lets it end its reading role early (bRPC's
/// `Socket::MoreReadEvents`), so it can go on with work that is not
/// reading — such as processing the last message it cut — while a new edge
/// starts a new reader at once.
pub struct ReadEvents<'a> {
    nevent: &'a AtomicU32,
    seen: Cell<u32>,
    released: Cell<bool>,
}

impl ReadEvents<'_> {
    /// Call after reading until `EAGAIN`. Returns `true` if edges arrived
    /// meanwhile (read again), or `false`: this reader's role has ended and
    /// the next edge starts a new reader, which may run concurrently with
    /// the rest of this call — so after `false` the hook must not touch
    /// the descriptor's input state any more.
    pub fn more_read_events(&self) -> bool {
        if self.released.get() {
            return false;
        }
        match self
            .nevent
            .compare_exchange(self.seen.get(), 0, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {
                self.released.set(true);
                false
            }
            Err(now) => {
                self.seen.set(now);
                true
            }
        }
    }
}

/// What a reader registration calls when a reader fiber could not start;
/// see [`super::Registration::with_reader_or_else`].
pub(crate) type LostHandler = Box<dyn Fn() + Send + Sync + 'static>;

/// Shared by the registration and the reader fibers it starts.
pub(crate) struct ReaderShared {
    /// Edges since the running reader last caught up; 0 = no reader.
    nevent: AtomicU32,
    handler: ReadHandler,
    lost: Option<LostHandler>,
}

/// A reader fiber's closure state: if it is dropped without having
/// started, no reader runs for the edges counted so far.
struct ReaderRun {
    reader: Arc<ReaderShared>,
    started: bool,
}

impl Drop for ReaderRun {
    fn drop(&mut self) {
        if self.started {
            return;
        }
        tracing::error!("a reader fiber could not start: the descriptor's input is unread");
        // Reset, so that a later edge tries again rather than finding
        // the counter stuck above 0; then let the owner give up on the
        // descriptor (an edge may never come).
        self.reader.nevent.store(0, Ordering::Release);
        if let Some(lost) = &self.reader.lost {
            lost();
        }
    }
}

impl ReaderShared {
    pub(crate) fn new(handler: ReadHandler, lost: Option<LostHandler>) -> Arc<Self> {
        Arc::new(ReaderShared {
            nevent: AtomicU32::new(0),
            handler,
            lost,
        })
    }

    /// Counts a read edge; `true` on the 0→1 transition, when the caller
    /// must [`start`](Self::start) a reader. Otherwise a reader is running:
    /// it sees the new count and goes again.
    pub(crate) fn count_edge(&self) -> bool {
        self.nevent.fetch_add(1, Ordering::AcqRel) == 0
    }

    /// Starts the reader fiber for the edges counted so far.
    pub(crate) fn start(reader: Arc<Self>) {
        let run = ReaderRun {
            reader,
            started: false,
        };
        // A new fiber, not started yet: any idle worker may steal it, which
        // spreads connections' input processing over the workers.
        // No name: this runs once per burst of input, and a name is a
        // String allocation.
        // Without a wakeup per edge: the poll that found the edge flushes
        // once for its whole batch (`flush_after_poll`). Off a worker the
        // spawn goes to a remote queue and signals as usual.
        // If the fiber never runs (the spawn fails, or no stack can be
        // mapped when a worker takes it), dropping `run` unstarted tells
        // the registration's owner.
        let _ = crate::Builder::new().nosignal().spawn(move || {
            let mut run = run;
            run.started = true;
            run.reader.run();
        });
    }

    /// The reader fiber: runs the handler until no edge arrived during the
    /// last run.
    fn run(&self) {
        let events = ReadEvents {
            nevent: &self.nevent,
            seen: Cell::new(self.nevent.load(Ordering::Acquire)),
            released: Cell::new(false),
        };
        loop {
            (self.handler)(&events);
            if !events.more_read_events() {
                return;
            }
        }
    }
}
