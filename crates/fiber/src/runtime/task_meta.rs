//! bRPC's TaskMeta: the control block of one fiber, and versioned ids.
//!
//! Metas live in a global slab that never unmaps memory (bRPC's
//! ResourcePool), so a `&'static TaskMeta` is always valid to touch: a stale
//! [`FiberId`] finds a meta whose version moved on and fails cleanly, never a
//! freed one.
//!
//! After a burst of fibers the slab gives memory back ([`Slab::trim`], run
//! by the memory trimmer): a segment whose slots are all free leaves the
//! free list and its pages are released (`sys::pages`), so they read as
//! zeros until the segment is revived for the next burst. What a meta must
//! be for that:
//! - Every field a thread without the run token reads is an atomic (or a
//!   butex): zeros read as version 0 (no fiber id has it), slot 0 (no
//!   match in [`Slab::get`]), no spawn site (not live), nobody waiting.
//!   The lone exception, the fiber's name in [`Diag`], is read only under
//!   a [`SlotPin`](super::task_slab::SlotPin), which a released segment
//!   refuses.
//! - What the token holder owns (the run state, the context slot, the
//!   payload's buffer) sits in `UnsafeCell`s that nobody touches while the
//!   slot is free. Their types are not valid as all-zero bytes (`Vec`,
//!   `Arc`, references), so from the trim's `retire` (which drops their
//!   contents) until the revival's `ptr::write` of fresh values they count
//!   as uninitialised memory: never read, never dropped. The revival
//!   writes them before any slot goes back on the free list.
//!
//! Ownership protocol ("the run token"): a fiber is in exactly one place at a
//! time — a run queue, running on a worker, or parked in one waiter list.
//! Whoever holds it there owns [`RunState`]; the shared fields are atomics.

use super::context::{Context, StackClass, YielderPtr};
use crate::butex::{Butex, CurrentWaiter, SpinLock, Waiter};
use crate::task::local::LocalMap;
use crate::task::packet::{EntryVTable, Payload};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// A reference to a fiber's control block. Metas are never freed.
pub(crate) type TaskRef = &'static TaskMeta;

/// Marker for "has not run yet, so has no home worker".
pub(crate) const NO_HOME: u32 = u32::MAX;

/// Identifies a fiber: slot in the slab plus the version of that slot when
/// the fiber was created. Once the fiber ends the version moves on, so
/// operations on the id fail with a clean error instead of reaching another
/// fiber that reuses the slot.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FiberId(pub(crate) u64);

impl FiberId {
    pub(crate) fn new(slot: u32, version: u32) -> Self {
        FiberId(((version as u64) << 32) | slot as u64)
    }
    pub(crate) fn slot(self) -> u32 {
        self.0 as u32
    }
    pub(crate) fn version(self) -> u32 {
        (self.0 >> 32) as u32
    }
    /// The raw 64-bit value (for logs and for bRPC-style integer ids).
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// The id whose [`as_u64`](Self::as_u64) is `raw` (for ids read back
    /// from a log or a console URL). Any value is safe: an id that names
    /// no live fiber just finds none.
    pub fn from_u64(raw: u64) -> FiberId {
        FiberId(raw)
    }
}

impl std::fmt::Debug for FiberId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FiberId({}v{})", self.slot(), self.version())
    }
}

impl std::fmt::Display for FiberId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What the spawner chose for a fiber.
#[derive(Default)]
pub(crate) struct Attrs {
    pub(crate) stack: StackClass,
    pub(crate) name: Option<Arc<str>>,
    /// May resume on any worker after it started (audited runtime fibers and
    /// the `unsafe` opt-in only).
    pub(crate) migratable: bool,
    /// Where the fiber was spawned (`#[track_caller]` of the spawn
    /// functions), for the blocked-worker report.
    pub(crate) spawned_at: Option<&'static std::panic::Location<'static>>,
}

/// Fields owned by the holder of the run token.
#[derive(Default)]
pub(crate) struct RunState {
    /// How to run (and drop) what `TaskMeta::payload` holds; set at spawn,
    /// cleared when the fiber ends.
    pub(crate) entry: Option<&'static EntryVTable>,
    /// The yielder of `ctx`'s coroutine, valid while the fiber runs.
    pub(crate) yielder: Option<YielderPtr>,
    pub(crate) attrs: Attrs,
    pub(crate) locals: LocalMap,
    /// The runtime the fiber belongs to (where wakeups are routed).
    pub(crate) control: Option<&'static super::task_control::TaskControl>,
}

/// The control block of one fiber.
pub(crate) struct TaskMeta {
    /// The value is the slot's current version; it is bumped when the fiber
    /// ends, which is what `join` waits for (bRPC's `version_butex`).
    pub(crate) version: Butex,
    /// The slot's index (atomic: a released segment reads 0 here until
    /// its revival writes it back, while racy readers may look).
    slot: AtomicU32,
    /// Set by `interrupt`; consumed by the next (or current) blocking wait.
    pub(crate) interrupted: AtomicBool,
    /// The waiter this fiber is parked on, for `interrupt` (bRPC's
    /// `current_waiter`).
    pub(crate) current_waiter: CurrentWaiter<Waiter>,
    /// Index of the worker the fiber first ran on, or [`NO_HOME`].
    pub(crate) home: AtomicU32,
    run: UnsafeCell<RunState>,
    /// The fiber's closure and result, and the slot's owner count (the
    /// fiber and its join handle): see `task::packet`.
    pub(crate) payload: Payload,
    /// The context the fiber runs on, once it started. Kept apart from
    /// `run` so the scheduler can resume it in place (no move per switch)
    /// while the fiber itself borrows `run`.
    ctx: UnsafeCell<Option<Box<Context>>>,
    /// Set while a tracer (`runtime::trace`) reads the suspended fiber's
    /// stack: a worker about to resume the fiber waits until it clears.
    /// Read once per resume (a relaxed load next to `ctx`).
    pub(crate) held: AtomicBool,
    /// What the blocked-worker monitor may read about the fiber from
    /// another thread (the run state is the token holder's alone). Written
    /// at spawn; a stale read after the slot was reused is harmless (the
    /// monitor re-checks the worker's switch count).
    pub(crate) diag: Diag,
}

/// The fiber's spawn site and name, readable from any thread (see
/// `runtime::blocked` and `runtime::list`).
///
/// Cost per spawn: one relaxed pointer store; a named fiber, or an unnamed
/// one reusing a slot whose previous fiber was named, also takes an
/// uncontended lock to publish (or clear) the name. The spawn site doubles
/// as the slot's "a fiber lives here" mark (every spawn has one): the end
/// of a fiber clears it with one more relaxed store, and that is the whole
/// registry of live fibers the console lists (`runtime::list` walks the
/// slab). A wait stores when it started (`parked_ms`), from the coarse
/// clock the monitor thread keeps: two plain moves, no clock read.
pub(crate) struct Diag {
    spawned_at: AtomicPtr<std::panic::Location<'static>>,
    named: AtomicBool,
    /// Guards `name`.
    name_lock: SpinLock,
    /// Read by other threads only under a `SlotPin` (see the module docs).
    name: UnsafeCell<Option<Arc<str>>>,
    /// When the fiber's current (or last) wait began, in the monitor's
    /// coarse milliseconds (`blocked::coarse_ms`).
    parked_ms: AtomicU64,
    /// Where the fiber switched out for its current (or last) wait: its
    /// instruction, stack and frame pointers, for a tracer to unwind
    /// from (`runtime::trace`). Stored by the fiber just before it
    /// switches out; meaningful only while it stays switched out in that
    /// wait.
    suspended_at: [AtomicUsize; 3],
}

impl Diag {
    fn new() -> Self {
        Diag {
            spawned_at: AtomicPtr::new(std::ptr::null_mut()),
            named: AtomicBool::new(false),
            name_lock: SpinLock::new(),
            name: UnsafeCell::new(None),
            parked_ms: AtomicU64::new(0),
            suspended_at: [const { AtomicUsize::new(0) }; 3],
        }
    }

    /// Notes the registers a tracer unwinds from (see `suspended_at`):
    /// three relaxed stores, by the fiber, on its way out of a wait.
    #[inline(always)]
    pub(crate) fn note_suspended_at(&self, pc: usize, sp: usize, fp: usize) {
        self.suspended_at[0].store(pc, Ordering::Relaxed);
        self.suspended_at[1].store(sp, Ordering::Relaxed);
        self.suspended_at[2].store(fp, Ordering::Relaxed);
    }

    /// The registers of the last [`note_suspended_at`](Self::note_suspended_at):
    /// (instruction, stack, frame pointer).
    pub(crate) fn suspended_at(&self) -> (usize, usize, usize) {
        (
            self.suspended_at[0].load(Ordering::Relaxed),
            self.suspended_at[1].load(Ordering::Relaxed),
            self.suspended_at[2].load(Ordering::Relaxed),
        )
    }

    /// The fiber in this slot ended: the slot holds no live fiber until the
    /// next [`publish`](Self::publish).
    pub(crate) fn clear(&self) {
        self.spawned_at
            .store(std::ptr::null_mut(), Ordering::Relaxed);
    }

    /// Whether a fiber lives in this slot (spawned and not ended; racy).
    pub(crate) fn live(&self) -> bool {
        !self.spawned_at.load(Ordering::Relaxed).is_null()
    }

    /// Notes that the fiber starts waiting now (the fiber itself calls it).
    #[inline(always)]
    pub(crate) fn note_park(&self) {
        self.parked_ms
            .store(super::blocked::coarse_ms(), Ordering::Relaxed);
    }

    /// When the fiber's current or last wait began (coarse milliseconds).
    pub(crate) fn parked_ms(&self) -> u64 {
        self.parked_ms.load(Ordering::Relaxed)
    }

    /// Publishes the spawn site and name of the fiber just created in this
    /// slot.
    pub(crate) fn publish(
        &self,
        at: Option<&'static std::panic::Location<'static>>,
        name: &Option<Arc<str>>,
    ) {
        let p = at.map_or(std::ptr::null_mut(), |l| {
            l as *const std::panic::Location<'static> as *mut _
        });
        self.spawned_at.store(p, Ordering::Relaxed);
        if name.is_some() || self.named.load(Ordering::Relaxed) {
            drop(self.replace_name(name.clone()));
            self.named.store(name.is_some(), Ordering::Relaxed);
        }
    }

    /// Swaps the name under its lock (the old one is dropped by the caller,
    /// outside it).
    fn replace_name(&self, name: Option<Arc<str>>) -> Option<Arc<str>> {
        self.name_lock.lock();
        // SAFETY: `name` is only touched under `name_lock`, and it holds a
        // value: the callers are the spawner, which owns a slot it was
        // handed (its segment is not released), and `retire`, run while
        // the segment refuses pins and before its pages go; readers
        // (`name`) hold a pin of this meta's own segment.
        let old = unsafe { std::mem::replace(&mut *self.name.get(), name) };
        self.name_lock.unlock();
        old
    }

    /// Where the fiber in this slot was spawned, if known.
    pub(crate) fn spawned_at(&self) -> Option<&'static std::panic::Location<'static>> {
        let p = self.spawned_at.load(Ordering::Relaxed);
        // SAFETY: the pointer is null or came from a `&'static Location`.
        unsafe { p.cast_const().as_ref() }
    }

    /// The name of the fiber in this slot, if it has one. The caller owns
    /// the slot or pins it (see [`TaskMeta::name`]).
    fn name(&self) -> Option<Arc<str>> {
        if !self.named.load(Ordering::Relaxed) {
            return None;
        }
        self.name_lock.lock();
        // SAFETY: under `name_lock`; see `replace_name`.
        let name = unsafe { (*self.name.get()).clone() };
        self.name_lock.unlock();
        name
    }
}

// SAFETY: the shared fields are atomics or `Sync` (`Butex`); `run` is only
// touched by the single holder of the run token (module docs), and what it
// holds is `Send` except the context, whose cross-thread moves follow the
// pinning rule enforced by the scheduler (a started fiber's context moves
// only if the fiber is migratable, an `unsafe` opt-in).
unsafe impl Sync for TaskMeta {}
// SAFETY: as above; metas are never moved anyway (they live in the slab).
unsafe impl Send for TaskMeta {}

impl TaskMeta {
    pub(crate) fn new(slot: u32) -> Self {
        TaskMeta {
            version: Butex::new(1),
            slot: AtomicU32::new(slot),
            interrupted: AtomicBool::new(false),
            current_waiter: CurrentWaiter::new(),
            home: AtomicU32::new(NO_HOME),
            run: UnsafeCell::new(RunState::default()),
            payload: Payload::new(),
            ctx: UnsafeCell::new(None),
            held: AtomicBool::new(false),
            diag: Diag::new(),
        }
    }

    /// The id of the fiber currently occupying this slot.
    pub(crate) fn id(&self) -> FiberId {
        FiberId::new(self.slot(), self.version.value().load(Ordering::Acquire))
    }

    /// The slot's index (0 in a released segment: see the module docs).
    #[inline(always)]
    pub(crate) fn slot(&self) -> u32 {
        self.slot.load(Ordering::Relaxed)
    }

    /// The name of the fiber in this slot, if any, from any thread: read
    /// under a pin of this meta's own segment (`None` if it is released).
    pub(crate) fn name(&self) -> Option<Arc<str>> {
        // A released meta reads slot 0, which would pin segment 0 instead
        // of ours; so the pin counts only if it holds this very meta.
        let pin = Slab::global().pin(self.slot())?;
        if !std::ptr::eq(pin.meta(), self) {
            return None;
        }
        self.diag.name()
    }

    /// The fiber in this slot ended (its owner, at the very end): moves the
    /// version on (stale ids stop matching, bRPC's `version_butex`), wakes
    /// the joiners, then clears `interrupted`. The clear comes after the
    /// `wake_all`, which takes the version butex's lock: an interrupt that
    /// checked the old version under that lock (`butex::interrupt_task`)
    /// set its flag before it, so the slot's next fiber does not inherit
    /// it. The slot must not be reused before this returns.
    pub(crate) fn end_version(&self) {
        let v = self.version.value();
        let next = match v.load(Ordering::Relaxed).wrapping_add(1) {
            0 => 1,
            n => n,
        };
        v.store(next, Ordering::Release);
        self.version.wake_all();
        self.interrupted.store(false, Ordering::Relaxed);
    }

    /// Access to the token-owned state.
    ///
    /// # Safety
    /// The caller holds the run token (module docs) and no other reference
    /// obtained from `run_state` is alive.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn run_state(&self) -> &mut RunState {
        // SAFETY: exclusivity is the caller's contract.
        unsafe { &mut *self.run.get() }
    }

    /// The fiber's context slot. Only the scheduler touches it, and only
    /// while holding the run token.
    pub(crate) fn ctx_slot(&self) -> *mut Option<Box<Context>> {
        self.ctx.get()
    }

    /// Whether the fiber may resume on a worker other than its home.
    ///
    /// # Safety
    /// As for [`run_state`](Self::run_state).
    pub(crate) unsafe fn is_migratable(&self) -> bool {
        // SAFETY: forwarded contract.
        unsafe { self.run_state().attrs.migratable }
    }

    /// Before the slot's pages are released: drops what the free slot
    /// still owns (a free slot holds no context, but one left there would
    /// go back to the global stack pool rather than leak).
    ///
    /// # Safety
    /// The slot is free and off every free list, and no
    /// [`SlotPin`](super::task_slab::SlotPin) of its segment exists or can
    /// be taken (see [`Slab::trim`]).
    pub(crate) unsafe fn retire(&self) {
        // SAFETY: nobody else touches a free slot's cells (the contract).
        unsafe {
            if let Some(ctx) = (*self.ctx.get()).take() {
                super::stack_pool::put_global(ctx);
            }
            *self.run.get() = RunState::default();
        }
        drop(self.diag.replace_name(None));
        self.diag.named.store(false, Ordering::Relaxed);
    }

    /// After the slot's pages were released (all its bytes read zero):
    /// makes it a free slot again, numbered `slot`, at `version`.
    ///
    /// # Safety
    /// As for [`retire`](Self::retire): nobody but the caller touches the
    /// cells, and racy readers read only atomics.
    pub(crate) unsafe fn revive(&self, slot: u32, version: u32) {
        // SAFETY: the contract; writes over zero bytes that are not read
        // as values (no drop of what they held).
        unsafe {
            std::ptr::write(self.run.get(), RunState::default());
            std::ptr::write(self.ctx.get(), None);
            std::ptr::write(self.diag.name.get(), None);
        }
        self.home.store(NO_HOME, Ordering::Relaxed);
        self.slot.store(slot, Ordering::Relaxed);
        self.version.value().store(version, Ordering::Release);
    }
}

pub(crate) use super::task_slab::{shrink_free_list, Slab};
