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
use std::sync::atomic::{AtomicUsize, Ordering};

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
    /// The pages below the idle loop's frames were given back to the
    /// kernel and no fiber ran here since (so they are still untouched).
    advised: bool,
}

/// The deepest any context's idle loop sat below its stack top (bytes),
/// measured by each context once, when it first runs. The idle loop is
/// suspended there between fibers; everything below is dead frames.
static IDLE_DEPTH: AtomicUsize = AtomicUsize::new(0);

/// Kept below the measured idle depth when pages are released: room for
/// the frames between the loop's and the suspended stack pointer (the
/// inlined `suspend` and corosensei's switch: a few hundred bytes).
const IDLE_MARGIN: usize = 4 << 10;

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
        let top = bounds.1;
        let coro = Coro::with_stack(stack, move |yielder, first: TaskRef| {
            // Once per stack (a cold path): how deep the idle loop sits.
            let probe = 0u8;
            let here = std::hint::black_box(&probe) as *const u8 as usize;
            IDLE_DEPTH.fetch_max(top.saturating_sub(here), Ordering::Relaxed);
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
            advised: false,
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

    /// Marks the stack as about to run a fiber (its released pages will be
    /// touched again). One byte store, on the line `resume` reads anyway.
    #[inline]
    pub(crate) fn mark_used(&mut self) {
        self.advised = false;
    }

    /// Gives the pages below the idle loop's frames back to the kernel
    /// (`MADV_DONTNEED`): a fiber that ran deep leaves them resident, and a
    /// context waiting in a pool would keep them. The next fiber to run here
    /// gets fresh zero pages where it goes deep. Call only on an idle
    /// context (suspended at the top of its loop). No-op until the idle
    /// depth is known (no context has run yet, so none has deep pages).
    pub(crate) fn release_pages(&mut self) {
        let depth = IDLE_DEPTH.load(Ordering::Relaxed);
        if depth == 0 || self.advised {
            return;
        }
        let page = page_size();
        let (limit, top) = self.bounds;
        // `limit` is the guard page; the usable stack starts a page above.
        let lo = limit + page;
        let keep = (depth + IDLE_MARGIN).next_multiple_of(page);
        let hi = top.saturating_sub(keep) & !(page - 1);
        if hi > lo {
            // SAFETY: [lo, hi) lies inside this context's own stack mapping
            // (above the guard page, below the idle loop's frames and the
            // margin under them). The context is idle, so nothing lives
            // there: the frames it held belonged to fibers that exited.
            // DONTNEED on private anonymous memory only replaces those
            // pages with zero pages on the next touch.
            let r = unsafe { libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_DONTNEED) };
            if r != 0 {
                return;
            }
        }
        self.advised = true;
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

/// The system page size (cached).
pub(crate) fn page_size() -> usize {
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    match PAGE.load(Ordering::Relaxed) {
        0 => {
            // SAFETY: sysconf has no memory-safety preconditions.
            let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            let p = if p > 0 { p as usize } else { 4096 };
            PAGE.store(p, Ordering::Relaxed);
            p
        }
        p => p,
    }
}
