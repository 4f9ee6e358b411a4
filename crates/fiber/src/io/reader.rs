//! The reader-fiber hook (bRPC's `Socket::StartInputEvent`): on readiness
//! the dispatcher does not read; it bumps a per-registration event counter
//! and starts a reader fiber only on its 0→1 transition, so one descriptor
//! never has two readers and a burst of edges costs one fiber.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// What a reader registration calls; see [`super::Registration::with_reader`].
pub(crate) type ReadHandler = Box<dyn Fn() + Send + Sync + 'static>;

/// Shared by the registration and the reader fibers it starts.
pub(crate) struct ReaderShared {
    /// Edges since the running reader last caught up; 0 = no reader.
    nevent: AtomicU32,
    handler: ReadHandler,
}

impl ReaderShared {
    pub(crate) fn new(handler: ReadHandler) -> Arc<Self> {
        Arc::new(ReaderShared {
            nevent: AtomicU32::new(0),
            handler,
        })
    }

    /// Called by the dispatcher for each read edge.
    pub(crate) fn on_edge(self: &Arc<Self>) {
        if self.nevent.fetch_add(1, Ordering::AcqRel) != 0 {
            // A reader is running; it sees the new count and goes again.
            return;
        }
        let me = self.clone();
        // A new fiber, not started yet: any idle worker may steal it, which
        // spreads connections' input processing over the workers.
        // No name: this runs once per burst of input, and a name is a
        // String allocation.
        let spawned = crate::Builder::new().spawn(move || me.run());
        if let Err(e) = spawned {
            // Nothing can read this descriptor now; reset so the next edge
            // tries again rather than leaving the counter stuck above 0.
            eprintln!("fibrpc: cannot start a reader fiber: {e}");
            self.nevent.store(0, Ordering::Release);
        }
    }

    /// The reader fiber: runs the handler until no edge arrived during the
    /// last run.
    fn run(&self) {
        let mut seen = self.nevent.load(Ordering::Acquire);
        loop {
            (self.handler)();
            match self
                .nevent
                .compare_exchange(seen, 0, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(now) => seen = now,
            }
        }
    }
}
