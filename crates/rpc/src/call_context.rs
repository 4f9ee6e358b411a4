//! The call context a fiber carries: the deadline of the request it is
//! serving, which the calls it makes inherit.
//!
//! A server runs each handler with the caller's deadline (from the
//! request's `timeout_ms`) set here, fiber-locally; a channel's call
//! made from that fiber then ends no later than it — its own timeout is
//! capped by what is left — and tells the next server the remaining
//! time, again as a relative `timeout_ms`, so clocks never have to
//! agree. A call that inherits less than
//! [`ChannelOptions::min_inherited_budget`](crate::ChannelOptions::min_inherited_budget)
//! fails at once with `ERPCTIMEDOUT`, unsent: its answer could not come
//! back in time. [`ChannelOptions::inherit_deadline`](crate::ChannelOptions::inherit_deadline)
//! turns it off per channel.
//!
//! Only the handler's own fiber carries it: work handed to another
//! fiber inherits nothing unless it enters the deadline itself
//! ([`enter_deadline`] with [`inherited_deadline`]'s value).

use std::cell::Cell;
use std::marker::PhantomData;
use std::time::Instant;

fibrpc_fiber::fiber_local! {
    static DEADLINE: Cell<Option<Instant>> = Cell::new(None);
}

/// The deadline this fiber's calls inherit, if it serves a request that
/// had one (or [`enter_deadline`] set one). A fiber that never carried
/// one reads it without allocating.
pub fn inherited_deadline() -> Option<Instant> {
    DEADLINE.with_existing(Cell::get).flatten()
}

/// Sets the deadline this fiber's calls inherit until the guard drops
/// (then the previous one is back). The guard stays on its fiber.
pub fn enter_deadline(deadline: Instant) -> DeadlineGuard {
    let prev = DEADLINE.with(|d| d.replace(Some(deadline)));
    DeadlineGuard {
        prev,
        _fiber_bound: PhantomData,
    }
}

/// Restores the previous inherited deadline when dropped (see
/// [`enter_deadline`]).
#[must_use = "the deadline is inherited only while the guard lives"]
#[derive(Debug)]
pub struct DeadlineGuard {
    prev: Option<Instant>,
    /// Fiber-local state: the guard must drop on the fiber that made it.
    _fiber_bound: PhantomData<*const ()>,
}

impl Drop for DeadlineGuard {
    fn drop(&mut self) {
        let prev = self.prev;
        DEADLINE.with(|d| d.set(prev));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn nested_scopes_restore_the_outer_deadline() {
        assert_eq!(inherited_deadline(), None);
        let outer = Instant::now() + Duration::from_secs(2);
        let inner = Instant::now() + Duration::from_secs(1);
        let g = enter_deadline(outer);
        {
            let _g = enter_deadline(inner);
            assert_eq!(inherited_deadline(), Some(inner));
        }
        assert_eq!(inherited_deadline(), Some(outer));
        drop(g);
        assert_eq!(inherited_deadline(), None);
    }
}
