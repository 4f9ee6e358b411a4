//! Backtraces of suspended fibers (bRPC's bthread tracer): the return
//! addresses on the stack of a fiber that waits, read from another
//! thread while the fiber is held still.
//!
//! # How
//!
//! A fiber about to switch out of a wait (a butex wait: every wait of
//! this crate) stores where it stops — its instruction, stack and frame
//! pointers, read in the waiting frame — in its control block. A tracer:
//!
//! 1. sets the fiber's `held` flag, then runs the heavy side of the
//!    crate's membarrier fence pair ([`heavy`]);
//! 2. checks that no worker runs the fiber (acquire loads of each worker's
//!    "running now" pointer, which the worker stores with release order)
//!    and that it is still the same fiber, in a wait;
//! 3. unwinds from the stored registers with the DWARF call frame
//!    information of the loaded objects (`.eh_frame_hdr` found through
//!    `dl_iterate_phdr`, evaluated with gimli), reading only aligned
//!    words inside the fiber's own stack mapping;
//! 4. clears `held` (release).
//!
//! A worker resumes a fiber only in `TaskGroup::resume`, which stores the
//! fiber as running, then (after a compiler fence: the light side of the
//! pair) loads `held` and, if set, waits until it clears. With the fence
//! pair, either the tracer sees the fiber running (and leaves it
//! untraced), or the worker sees the hold (and waits). So while the
//! tracer reads, the fiber's stack does not change, its context is not
//! touched (a suspended fiber's context slot is only written by the
//! scheduler before its first run and after its exit), and the fiber
//! cannot end (it would have to run).
//!
//! # What is guaranteed
//!
//! - No undefined behaviour from any input: every stack read is an
//!   8-byte-aligned load inside the mapped, writable range of the held
//!   fiber's stack (above its guard page), done by an inline-assembly
//!   `mov` (so a word that holds uninitialized bytes is just a number);
//!   unwind tables are read while `dl_iterate_phdr` keeps the objects
//!   loaded. A frame whose rules point elsewhere ends the walk.
//! - The addresses are the fiber's frames at its wait, innermost first,
//!   when the code has DWARF CFI (Rust and C code built by default does;
//!   hand-written assembly without CFI ends the walk there). At most
//!   [`MAX_FRAMES`].
//! - Only a fiber switched out in a wait is traced; a running, ready or
//!   not-started fiber is not ([`NoBacktrace`] says why).
//! - Cost: on the hot path, a relaxed load and a branch per resume and
//!   three stores per wait; a tracer holds one fiber for the walk (tens
//!   of microseconds), and a worker that wants to resume it meanwhile
//!   spins. One trace at a time in the process.
//! - Only where the fence pair runs on `membarrier` (Linux 4.14+, not
//!   forbidden by a sandbox) and on x86-64 Linux; elsewhere
//!   [`NoBacktrace::Unsupported`].

use std::sync::atomic::{fence, Ordering};
use std::sync::Mutex;

use super::task_meta::{FiberId, Slab, TaskRef};
use crate::sys::membarrier::{expedited, heavy};

/// Frames a trace keeps at most.
pub const MAX_FRAMES: usize = 64;

/// Why a fiber has no backtrace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoBacktrace {
    /// No such fiber (it ended, or never was).
    Gone,
    /// It is running on a worker now (its stack moves).
    Running,
    /// It is not switched out in a wait (ready to run, or not started).
    NotWaiting,
    /// This platform or kernel cannot hold a fiber still cheaply (not
    /// x86-64 Linux, or no `membarrier`).
    Unsupported,
}

impl std::fmt::Display for NoBacktrace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NoBacktrace::Gone => "the fiber ended",
            NoBacktrace::Running => "the fiber is running (only a waiting fiber is traced)",
            NoBacktrace::NotWaiting => "the fiber is not in a wait (ready or not started)",
            NoBacktrace::Unsupported => {
                "not on this platform (x86-64 Linux with membarrier(2) only)"
            }
        })
    }
}

/// One trace at a time: two tracers setting and clearing one fiber's
/// `held` would release it under each other.
static TRACER: Mutex<()> = Mutex::new(());

/// The return addresses of fiber `id`'s stack where it waits, innermost
/// first (the first is the instruction it stopped at). See the module
/// docs for what this guarantees.
pub fn fiber_backtrace(id: FiberId) -> Result<Vec<usize>, NoBacktrace> {
    if !cfg!(all(target_arch = "x86_64", target_os = "linux")) || !expedited() {
        return Err(NoBacktrace::Unsupported);
    }
    // Pinned: the walk reads the meta beyond its atomics.
    let pin = Slab::global().pin(id.slot()).ok_or(NoBacktrace::Gone)?;
    let task = pin.meta();
    if task.id() != id || !task.diag.live() {
        return Err(NoBacktrace::Gone);
    }
    let _one = TRACER.lock().unwrap_or_else(|e| e.into_inner());
    task.held.store(true, Ordering::Relaxed);
    heavy();
    // Orders the loads below after every worker's fence in `heavy`.
    fence(Ordering::SeqCst);
    let r = held_walk(task, id);
    task.held.store(false, Ordering::Release);
    r
}

/// The walk, with `task` held (see the module docs).
fn held_walk(task: TaskRef, id: FiberId) -> Result<Vec<usize>, NoBacktrace> {
    if runs_anywhere(task) {
        return Err(NoBacktrace::Running);
    }
    if task.id() != id || !task.diag.live() {
        return Err(NoBacktrace::Gone);
    }
    if !task.current_waiter.is_published() {
        return Err(NoBacktrace::NotWaiting);
    }
    // SAFETY: the fiber is held, switched out in a wait: nothing writes
    // its context slot (only the scheduler does, before the first run and
    // after the exit) and no `&mut` to it exists (`resume` makes one only
    // after it saw `held` clear). The acquire load in `runs_anywhere`
    // made the slot's last write visible.
    let bounds = unsafe { (*task.ctx_slot()).as_ref() }.map(|c| c.stack_bounds());
    let Some((limit, top)) = bounds else {
        return Err(NoBacktrace::NotWaiting);
    };
    // The guard page is mapped without access.
    let stack = (limit + super::context::page_size(), top);
    let (pc, sp, fp) = task.diag.suspended_at();
    Ok(unwind::walk(pc, sp, fp, stack))
}

/// Whether a worker of any runtime runs `task` now.
fn runs_anywhere(task: TaskRef) -> bool {
    let controls = super::CONTROLS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    controls
        .iter()
        .any(|c| (0..c.nworkers()).any(|i| c.group(i).runs(task)))
}

/// A worker about to resume `task` found it held: waits for the tracer
/// (a walk of at most [`MAX_FRAMES`] frames).
#[cold]
#[inline(never)]
pub(crate) fn wait_while_held(task: TaskRef) {
    let mut spins = 0u32;
    while task.held.load(Ordering::Acquire) {
        spins += 1;
        if spins < 1000 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// The instruction, stack and frame pointers of the code where the macro
/// is expanded (in the caller's frame: a macro, so no call of its own).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
macro_rules! here_registers {
    () => {{
        let (pc, sp, fp): (usize, usize, usize);
        // SAFETY: reads three registers; touches no memory and no flags.
        unsafe {
            ::core::arch::asm!(
                "lea {pc}, [rip]",
                "mov {sp}, rsp",
                "mov {fp}, rbp",
                pc = out(reg) pc,
                sp = out(reg) sp,
                fp = out(reg) fp,
                options(nomem, nostack, preserves_flags),
            );
        }
        (pc, sp, fp)
    }};
}

/// Elsewhere: nothing to unwind from (`fiber_backtrace` says unsupported).
#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
macro_rules! here_registers {
    () => {
        (0usize, 0usize, 0usize)
    };
}

pub(crate) use here_registers;

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod unwind {
    //! A DWARF CFI walk over a held fiber's stack.

    use gimli::{
        BaseAddresses, CfaRule, EhFrame, EhFrameHdr, EhHdrTable, EndianSlice, NativeEndian,
        Pointer, RegisterRule, UnwindContext, UnwindSection, X86_64,
    };

    use super::MAX_FRAMES;

    /// Registers of one frame: instruction, stack, frame pointer.
    #[derive(Clone, Copy)]
    struct Regs {
        pc: usize,
        sp: usize,
        fp: usize,
    }

    /// Frames from `(pc, sp, fp)` on `stack` (`[low, high)`, mapped and
    /// readable), innermost first.
    pub(super) fn walk(pc: usize, sp: usize, fp: usize, stack: (usize, usize)) -> Vec<usize> {
        let mut frames = Vec::with_capacity(16);
        if pc == 0 {
            return frames;
        }
        frames.push(pc);
        let mut regs = Regs { pc, sp, fp };
        let mut ctx = UnwindContext::<usize>::new();
        // The first pc is where the fiber stopped; the others are return
        // addresses, which point after their call: look up the call.
        let mut lookup = pc;
        while frames.len() < MAX_FRAMES {
            let Some(next) = step(regs, lookup, stack, &mut ctx) else {
                break;
            };
            if next.pc == 0 || next.sp <= regs.sp {
                break;
            }
            frames.push(next.pc);
            lookup = next.pc - 1;
            regs = next;
        }
        frames
    }

    /// The caller's registers, from the CFI row of `lookup`.
    fn step(
        regs: Regs,
        lookup: usize,
        stack: (usize, usize),
        ctx: &mut UnwindContext<usize>,
    ) -> Option<Regs> {
        with_unwind_info(lookup, |eh_frame, bases, table| {
            let row = table
                .unwind_info_for_address(
                    eh_frame,
                    bases,
                    ctx,
                    lookup as u64,
                    EhFrame::cie_from_offset,
                )
                .ok()?;
            let cfa = match row.cfa() {
                CfaRule::RegisterAndOffset { register, offset } => {
                    let base = if *register == X86_64::RSP {
                        regs.sp
                    } else if *register == X86_64::RBP {
                        regs.fp
                    } else {
                        return None;
                    };
                    base.checked_add_signed(*offset as isize)?
                }
                CfaRule::Expression(_) => return None,
            };
            let at = |offset: i64| cfa.checked_add_signed(offset as isize);
            let pc = match row.register(X86_64::RA)? {
                RegisterRule::Offset(o) => read_word(at(o)?, stack)?,
                _ => return None,
            };
            let fp = match row.register(X86_64::RBP) {
                Some(RegisterRule::Offset(o)) => read_word(at(o)?, stack)?,
                None | Some(RegisterRule::SameValue) => regs.fp,
                // Anything else: the frame pointer is not needed unless a
                // caller's CFA is based on it, which then fails the walk.
                Some(_) => 0,
            };
            Some(Regs { pc, sp: cfa, fp })
        })
        .flatten()
    }

    type Slice<'a> = EndianSlice<'a, NativeEndian>;

    /// Runs `f` on the unwind tables of the loaded object that holds
    /// `pc`, while `dl_iterate_phdr` keeps it loaded.
    fn with_unwind_info<T, F>(pc: usize, f: F) -> Option<T>
    where
        F: FnOnce(&EhFrame<Slice<'_>>, &BaseAddresses, &EhHdrTable<'_, Slice<'_>>) -> T,
    {
        struct Search<F, T> {
            pc: usize,
            f: Option<F>,
            out: Option<T>,
        }
        unsafe extern "C" fn visit<F, T>(
            info: *mut libc::dl_phdr_info,
            _size: libc::size_t,
            data: *mut libc::c_void,
        ) -> libc::c_int
        where
            F: FnOnce(&EhFrame<Slice<'_>>, &BaseAddresses, &EhHdrTable<'_, Slice<'_>>) -> T,
        {
            // SAFETY: `data` is the `Search` below, alive for the call;
            // `info` is the loader's, valid during the callback.
            let (search, info) = unsafe { (&mut *(data as *mut Search<F, T>), &*info) };
            // SAFETY: the loader's program headers, `dlpi_phnum` of them.
            let phdrs =
                unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
            let base = info.dlpi_addr as usize;
            let loads = || phdrs.iter().filter(|p| p.p_type == libc::PT_LOAD);
            let segment_of = |addr: usize| {
                loads().find_map(|p| {
                    let start = base + p.p_vaddr as usize;
                    let end = start + p.p_memsz as usize;
                    (start..end).contains(&addr).then_some((start, end))
                })
            };
            if segment_of(search.pc).is_none() {
                return 0;
            }
            let Some(hdr) = phdrs.iter().find(|p| p.p_type == libc::PT_GNU_EH_FRAME) else {
                return 1;
            };
            let hdr_addr = base + hdr.p_vaddr as usize;
            // SAFETY: the PT_GNU_EH_FRAME segment of a loaded object:
            // mapped and readable, `p_memsz` bytes, while the loader holds
            // it for this callback.
            let hdr_bytes =
                unsafe { std::slice::from_raw_parts(hdr_addr as *const u8, hdr.p_memsz as usize) };
            let bases = BaseAddresses::default().set_eh_frame_hdr(hdr_addr as u64);
            let Ok(parsed) = EhFrameHdr::new(hdr_bytes, NativeEndian).parse(&bases, 8) else {
                return 1;
            };
            let Pointer::Direct(eh_addr) = parsed.eh_frame_ptr() else {
                return 1;
            };
            let eh_addr = eh_addr as usize;
            // `.eh_frame` runs to its terminator at most to the end of the
            // loaded segment that holds it.
            let Some((_, end)) = segment_of(eh_addr) else {
                return 1;
            };
            // SAFETY: inside a PT_LOAD segment of the loaded object (mapped
            // and readable), from `.eh_frame`'s start to the segment's end.
            let eh_bytes =
                unsafe { std::slice::from_raw_parts(eh_addr as *const u8, end - eh_addr) };
            let eh_frame = EhFrame::new(eh_bytes, NativeEndian);
            let bases = bases.set_eh_frame(eh_addr as u64);
            let (Some(table), Some(f)) = (parsed.table(), search.f.take()) else {
                return 1;
            };
            search.out = Some(f(&eh_frame, &bases, &table));
            1
        }
        let mut search = Search {
            pc,
            f: Some(f),
            out: None,
        };
        // SAFETY: `visit` matches the callback type and only reads what the
        // loader hands it; `search` outlives the call.
        unsafe {
            libc::dl_iterate_phdr(
                Some(visit::<F, T>),
                &mut search as *mut Search<F, T> as *mut libc::c_void,
            );
        }
        search.out
    }

    /// The 8-byte word at `addr`, if it lies inside `stack`
    /// (`[low, high)`) and is aligned.
    fn read_word(addr: usize, (low, high): (usize, usize)) -> Option<usize> {
        if addr % 8 != 0 || addr < low || addr.checked_add(8)? > high {
            return None;
        }
        let v: usize;
        // SAFETY: `addr` is an aligned word inside the held fiber's stack
        // mapping, which is readable; nothing writes it while the fiber is
        // held. An asm load yields whatever bytes are there as a plain
        // number, initialized or not.
        unsafe {
            ::core::arch::asm!(
                "mov {v}, qword ptr [{p}]",
                p = in(reg) addr,
                v = lateout(reg) v,
                options(nostack, readonly, preserves_flags),
            );
        }
        Some(v)
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
mod unwind {
    /// Never reached: `fiber_backtrace` says unsupported first.
    pub(super) fn walk(_: usize, _: usize, _: usize, _: (usize, usize)) -> Vec<usize> {
        Vec::new()
    }
}
