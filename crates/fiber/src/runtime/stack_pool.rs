//! Idle contexts (stacks) kept for the next fibers, and given back after a
//! burst.
//!
//! A worker keeps a lock-free list per stack class, spilling to a global
//! pool and then to `munmap`. bRPC's pools only grow; these shrink:
//! - once per trim epoch, a worker going to sleep keeps at most
//!   [`LOCAL_KEEP`] per class and moves the rest to the global pool;
//! - the trimmer ([`super::trim`]) unmaps the global contexts above
//!   [`GLOBAL_KEEP`] that nobody took during a whole trim interval (the
//!   pool's low-water mark, so a pool in steady use is left alone), and
//!   releases the deep pages of the ones it keeps.

use super::context::{Context, StackClass};
use std::io;

/// Per-worker cache of idle contexts, one list per stack class.
pub(crate) struct StackPool {
    // Boxed on purpose: a context moves from here into a fiber's slot and
    // back, and the box makes that an 8-byte move.
    #[allow(clippy::vec_box)]
    lists: [Vec<Box<Context>>; 3],
}

/// Most contexts per class a worker caches while running: every fiber
/// that ends here hands its context back, so a burst of this many fibers
/// per worker recycles its stacks without touching the global pool's lock
/// (or, for large stacks, without unmapping and mapping them again). What
/// a burst leaves here is shed to [`LOCAL_KEEP`] when the worker sleeps.
const LOCAL_CAP: [usize; 3] = [512, 320, 64];
/// Most contexts per class a worker keeps when it goes to sleep.
pub(crate) const LOCAL_KEEP: [usize; 3] = [16, 4, 1];
/// Most contexts per class in the global pool.
const GLOBAL_CAP: [usize; 3] = [4096, 256, 16];
/// Contexts per class the trimmer leaves in the global pool (their deep
/// pages released).
const GLOBAL_KEEP: [usize; 3] = [16, 4, 0];

/// The global pool: lists plus each list's low-water mark since the last
/// trim.
struct Global {
    #[allow(clippy::vec_box)] // see `StackPool::lists`
    lists: [Vec<Box<Context>>; 3],
    low: [usize; 3],
}

static GLOBAL_POOL: std::sync::Mutex<Global> = std::sync::Mutex::new(Global {
    lists: [Vec::new(), Vec::new(), Vec::new()],
    low: [0; 3],
});

fn global() -> std::sync::MutexGuard<'static, Global> {
    GLOBAL_POOL.lock().unwrap_or_else(|e| e.into_inner())
}

impl Global {
    /// Takes `ctx` if there is room; otherwise hands it back (to be
    /// dropped outside the lock: dropping unmaps).
    fn push(&mut self, ctx: Box<Context>) -> Option<Box<Context>> {
        let i = ctx.class().pool_index();
        if self.lists[i].len() < GLOBAL_CAP[i] {
            self.lists[i].push(ctx);
            None
        } else {
            Some(ctx)
        }
    }
}

impl StackPool {
    pub(crate) fn new() -> Self {
        StackPool {
            lists: [Vec::new(), Vec::new(), Vec::new()],
        }
    }

    /// An idle context of `class`: cached, from the global pool, or new.
    /// Returns the context and whether it was freshly mapped.
    pub(crate) fn get(&mut self, class: StackClass) -> io::Result<(Box<Context>, bool)> {
        let i = class.pool_index();
        if let Some(mut c) = self.lists[i].pop() {
            c.mark_used();
            return Ok((c, false));
        }
        {
            let mut g = global();
            let take = g.lists[i].len().min(LOCAL_CAP[i] / 2 + 1);
            let at = g.lists[i].len() - take;
            let taken = g.lists[i].drain(at..);
            self.lists[i].extend(taken);
            g.low[i] = g.low[i].min(at);
        }
        if let Some(mut c) = self.lists[i].pop() {
            c.mark_used();
            return Ok((c, false));
        }
        Context::new(class).map(|c| (c, true))
    }

    /// Returns an idle context (its fiber exited).
    pub(crate) fn put(&mut self, ctx: Box<Context>) {
        let i = ctx.class().pool_index();
        if self.lists[i].len() < LOCAL_CAP[i] {
            self.lists[i].push(ctx);
            return;
        }
        let spilled = global().push(ctx);
        // Dropped (unmapped) outside the lock.
        drop(spilled);
    }

    /// Whether some class holds more than a sleeping worker keeps.
    #[inline]
    pub(crate) fn over_keep(&self) -> bool {
        (0..3).any(|i| self.lists[i].len() > LOCAL_KEEP[i])
    }

    /// Moves the contexts above [`LOCAL_KEEP`] to the global pool (the
    /// oldest first: the list is LIFO, so its bottom is the coldest).
    pub(crate) fn shed(&mut self) {
        let mut unmap = Vec::new();
        {
            let mut g = global();
            for (list, keep) in self.lists.iter_mut().zip(LOCAL_KEEP) {
                let excess = list.len().saturating_sub(keep);
                for ctx in list.drain(..excess) {
                    unmap.extend(g.push(ctx));
                }
            }
        }
        drop(unmap);
    }

    /// Releases the deep pages of the contexts this worker keeps (see
    /// [`Context::release_pages`]).
    pub(crate) fn release_pages(&mut self) {
        for ctx in self.lists.iter_mut().flatten() {
            ctx.release_pages();
        }
    }
}

/// Returns an idle context to the global pool (from a thread without a
/// worker's pool), or unmaps it if the pool is full.
pub(crate) fn put_global(ctx: Box<Context>) {
    let spilled = global().push(ctx);
    drop(spilled);
}

impl Drop for StackPool {
    fn drop(&mut self) {
        let mut unmap = Vec::new();
        {
            let mut g = global();
            for list in &mut self.lists {
                for ctx in list.drain(..) {
                    unmap.extend(g.push(ctx));
                }
            }
        }
        drop(unmap);
    }
}

/// One trim of the global pool. With `hysteresis`, unmaps only contexts
/// that stayed unused through the whole interval since the last trim (below
/// the low-water mark) and above [`GLOBAL_KEEP`]; without, every one above
/// it. Releases the deep pages of those kept. Returns the contexts unmapped.
pub(crate) fn trim_global(hysteresis: bool) -> usize {
    let mut unmap: Vec<Box<Context>> = Vec::new();
    {
        let mut g = global();
        let Global { lists, low } = &mut *g;
        for ((list, low), keep) in lists.iter_mut().zip(low.iter_mut()).zip(GLOBAL_KEEP) {
            let idle = if hysteresis {
                (*low).min(list.len())
            } else {
                list.len()
            };
            // The idle ones are at the bottom (the list is LIFO).
            let n = idle.saturating_sub(keep);
            unmap.extend(list.drain(..n));
            for ctx in list.iter_mut().take(keep) {
                ctx.release_pages();
            }
            *low = list.len();
        }
    }
    let n = unmap.len();
    drop(unmap);
    n
}
