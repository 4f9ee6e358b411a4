//! Execution contexts: a corosensei coroutine on a pooled, guarded stack.
//!
//! A context is created once per stack and then runs fiber after fiber: its
//! body is a loop that runs one fiber's entry, suspends with
//! [`Switch::Exit`], and is resumed with the next fiber to run. So an exiting
//! fiber hands its stack (and its initialized coroutine) straight to the next
//! fiber of the same class, and spawning costs no `mmap` once warm.

use super::task_meta::TaskRef;
use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, Yielder};
use std::io;

/// The stack a fiber runs on (bRPC's stack types).
///
/// Every stack has a guard page below it, so a stack costs two kernel memory
/// maps: with the default `vm.max_map_count` of 65530, about 32k fibers can
/// hold a stack at once. Past that, a fiber fails to start and its
/// [`JoinError`](crate::JoinError) says so; raise the limit with
/// `sysctl -w vm.max_map_count=262144` (or more) for more live fibers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum StackClass {
    /// 32 KiB: fibers with shallow call chains, many of them.
    Small,
    /// 1 MiB (the default, as in bRPC).
    #[default]
    Normal,
    /// 8 MiB: deep recursion.
    Large,
    /// No stack of its own: runs on the worker's stack, start to finish. For
    /// tasks that never block — if one does, it blocks its worker thread
    /// (the wait falls back to an OS futex), like bRPC's pthread-stack type.
    Worker,
}

impl StackClass {
    /// Usable bytes (excluding the guard page).
    pub fn size(self) -> usize {
        match self {
            StackClass::Small => 32 << 10,
            StackClass::Normal => 1 << 20,
            StackClass::Large => 8 << 20,
            StackClass::Worker => 0,
        }
    }

    pub(crate) fn pool_index(self) -> usize {
        match self {
            StackClass::Small => 0,
            StackClass::Normal => 1,
            StackClass::Large => 2,
            StackClass::Worker => unreachable!("worker-stack tasks have no context"),
        }
    }
}

/// Why a fiber switched back to its worker's scheduler.
pub(crate) enum Switch {
    /// Put me back in the run queue.
    Yield,
    /// Run this on the scheduler's stack; it takes over the run token
    /// (typically: enqueue the fiber as a waiter, or make it ready again).
    Park(ParkFn),
    /// Nothing to do: the fiber already handed its token to a waiter list
    /// (a pinned fiber parking; see `Butex::wait_fiber`).
    Parked,
    /// The fiber's entry returned; the context is free for the next fiber.
    Exit,
    /// Put me back in the run queue and run this new fiber now.
    Urgent(TaskRef),
}

/// A callback living on the suspended fiber's stack, reached through a
/// thin pointer (to the fat one, also on that stack) so that a [`Switch`]
/// is 16 bytes. corosensei hands it over in memory; at 24 bytes, a
/// `Parked` (only its tag byte written) was read back as 16 bytes, a
/// store-forwarding stall on every park (+10 ns per ping-pong).
pub(crate) struct ParkFn(pub(crate) *mut *mut (dyn FnMut(TaskRef) + 'static));

const _: () = assert!(std::mem::size_of::<Switch>() <= 16);

/// The coroutine type every context uses: resumed with the fiber to run,
/// yields a [`Switch`], never returns.
type Coro = Coroutine<TaskRef, Switch, (), DefaultStack>;

/// A pointer to the yielder of a running context.
#[derive(Clone, Copy)]
pub(crate) struct YielderPtr(pub(crate) *const Yielder<TaskRef, Switch>);

impl YielderPtr {
    /// Switches from the running fiber back to its worker.
    ///
    /// # Safety
    /// Must be called from the fiber whose context owns this yielder (so the
    /// yielder, which lives on that context's stack, is alive and this is the
    /// innermost coroutine running on this thread).
    ///
    /// Always inlined: an out-of-line call around the stack switch adds a
    /// return that the CPU mispredicts when the fiber resumes (the return
    /// stack buffer does not follow a stack switch).
    #[inline(always)]
    pub(crate) unsafe fn suspend(self, why: Switch) {
        // SAFETY: per the contract, the yielder is alive and current.
        unsafe { (*self.0).suspend(why) };
    }
}

/// A coroutine on its own guarded stack, reused by fiber after fiber.
pub(crate) struct Context {
    coro: Coro,
    class: StackClass,
    bounds: (usize, usize),
}

// SAFETY: a context moves between threads in two situations only: (1) idle,
// suspended at the top of its loop, where its stack holds no user data (the
// pool hands idle contexts around); (2) holding a started fiber that is
// migratable — an audited runtime fiber or an `unsafe` opt-in whose contract
// forbids !Send state and TLS borrows across suspension points. The
// scheduler never moves a started, pinned fiber's context (the soundness
// rule in the crate docs).
unsafe impl Send for Context {}

impl Context {
    /// Maps a new guarded stack of `class` and prepares the loop on it.
    /// Boxed: a context moves between the pool and a fiber's slot, and
    /// moving 8 bytes beats moving the ~72-byte coroutine state.
    pub(crate) fn new(class: StackClass) -> io::Result<Box<Context>> {
        use corosensei::stack::Stack;
        let stack = DefaultStack::new(class.size()).map_err(|e| stack_error(e, class))?;
        let bounds = (stack.limit().get(), stack.base().get());
        let coro = Coro::with_stack(stack, |yielder, first: TaskRef| {
            let mut task = first;
            loop {
                super::task_group::run_body(task, YielderPtr(yielder));
                task = yielder.suspend(Switch::Exit);
            }
        });
        Ok(Box::new(Context {
            coro,
            class,
            bounds,
        }))
    }

    /// The stack class of this context.
    pub(crate) fn class(&self) -> StackClass {
        self.class
    }

    /// Runs `task` on this context until it switches out.
    pub(crate) fn resume(&mut self, task: TaskRef) -> Switch {
        match self.coro.resume(task) {
            corosensei::CoroutineResult::Yield(s) => s,
            corosensei::CoroutineResult::Return(()) => {
                unreachable!("a context loop never returns")
            }
        }
    }

    /// Lowest address (guard page included) and top of the stack, for the
    /// overflow handler.
    pub(crate) fn stack_bounds(&self) -> (usize, usize) {
        self.bounds
    }
}

/// Turns an mmap failure into an error that tells the user what to do.
fn stack_error(e: io::Error, class: StackClass) -> io::Error {
    let maps = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    io::Error::new(
        e.kind(),
        format!(
            "cannot allocate a {} KiB fiber stack: {e}. Each fiber stack costs two \
             memory maps (stack + guard page); vm.max_map_count is {maps}. Raise it \
             (sysctl -w vm.max_map_count=262144) or use StackClass::Small / fewer \
             live fibers.",
            class.size() >> 10
        ),
    )
}

/// Per-worker cache of idle contexts, one list per stack class, spilling to
/// a global pool and then to `munmap`.
pub(crate) struct StackPool {
    // Boxed on purpose: a context moves from here into a fiber's slot and
    // back, and the box makes that an 8-byte move.
    #[allow(clippy::vec_box)]
    lists: [Vec<Box<Context>>; 3],
}

const LOCAL_CAP: [usize; 3] = [256, 64, 8];
const GLOBAL_CAP: [usize; 3] = [4096, 256, 16];

#[allow(clippy::vec_box)] // see `StackPool::lists`
static GLOBAL_POOL: std::sync::Mutex<[Vec<Box<Context>>; 3]> =
    std::sync::Mutex::new([Vec::new(), Vec::new(), Vec::new()]);

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
        if let Some(c) = self.lists[i].pop() {
            return Ok((c, false));
        }
        {
            let mut g = GLOBAL_POOL.lock().unwrap_or_else(|e| e.into_inner());
            let take = g[i].len().min(LOCAL_CAP[i] / 2 + 1);
            let at = g[i].len() - take;
            self.lists[i].extend(g[i].drain(at..));
        }
        if let Some(c) = self.lists[i].pop() {
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
        let mut g = GLOBAL_POOL.lock().unwrap_or_else(|e| e.into_inner());
        if g[i].len() < GLOBAL_CAP[i] {
            g[i].push(ctx);
        }
        // else: dropped here, which unwinds the idle loop and unmaps.
    }
}

/// Returns an idle context to the global pool (from a thread without a
/// worker's pool), or unmaps it if the pool is full.
pub(crate) fn put_global(ctx: Box<Context>) {
    let i = ctx.class().pool_index();
    let mut g = GLOBAL_POOL.lock().unwrap_or_else(|e| e.into_inner());
    if g[i].len() < GLOBAL_CAP[i] {
        g[i].push(ctx);
        return;
    }
    drop(g);
    drop(ctx);
}

impl Drop for StackPool {
    fn drop(&mut self) {
        let mut g = GLOBAL_POOL.lock().unwrap_or_else(|e| e.into_inner());
        for (i, list) in self.lists.iter_mut().enumerate() {
            let room = GLOBAL_CAP[i].saturating_sub(g[i].len());
            let n = room.min(list.len());
            g[i].extend(list.drain(..n));
        }
    }
}
