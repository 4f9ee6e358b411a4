//! Stack overflow reporting: a SIGSEGV/SIGBUS handler that recognizes a hit
//! on a fiber stack's guard page, says which fiber overflowed which stack,
//! and aborts. Faults that are not ours go to the previous handler (Rust's
//! own, which reports thread stack overflows), so nothing is lost.

use std::fmt::Write as _;
use std::sync::Once;

/// What the handler needs to know about the fiber running on this thread:
/// `(guard_lo, guard_hi, stack_size, fiber_id, name)`.
pub(crate) type FaultInfo = (usize, usize, usize, u64, Option<std::sync::Arc<str>>);

static mut PREV_SEGV: std::mem::MaybeUninit<libc::sigaction> = std::mem::MaybeUninit::uninit();
static mut PREV_BUS: std::mem::MaybeUninit<libc::sigaction> = std::mem::MaybeUninit::uninit();
static mut LOOKUP: Option<fn() -> Option<FaultInfo>> = None;

/// Installs the handler once per process. `lookup` reports the running
/// fiber's stack; it must only read memory (it runs in a signal handler).
pub(crate) fn install(lookup: fn() -> Option<FaultInfo>) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: runs once, before any handler of ours can run, so nobody
        // reads these statics concurrently; sigaction is given valid
        // pointers to initialized structs.
        unsafe {
            LOOKUP = Some(lookup);
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(
                libc::SIGSEGV,
                &sa,
                (&raw mut PREV_SEGV).cast::<libc::sigaction>(),
            );
            libc::sigaction(
                libc::SIGBUS,
                &sa,
                (&raw mut PREV_BUS).cast::<libc::sigaction>(),
            );
        }
    });
}

/// Gives this thread an alternate signal stack if it has none, so the
/// handler can run when the fault is a stack overflow.
pub(crate) fn ensure_altstack() {
    const SIZE: usize = 64 << 10;
    // SAFETY: sigaltstack with a null new stack only queries; the mapping
    // we install is leaked on purpose (the thread may fault until it exits,
    // and worker threads live as long as their runtime).
    unsafe {
        let mut cur: libc::stack_t = std::mem::zeroed();
        if libc::sigaltstack(std::ptr::null(), &mut cur) == 0
            && cur.ss_flags & libc::SS_DISABLE == 0
        {
            return;
        }
        let p = libc::mmap(
            std::ptr::null_mut(),
            SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return;
        }
        let st = libc::stack_t {
            ss_sp: p,
            ss_flags: 0,
            ss_size: SIZE,
        };
        libc::sigaltstack(&st, std::ptr::null_mut());
    }
}

/// A fixed buffer for formatting without allocating.
struct Buf {
    bytes: [u8; 512],
    len: usize,
}

impl std::fmt::Write for Buf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let n = s.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    // SAFETY: LOOKUP was written once before the handler was installed.
    let lookup = unsafe { LOOKUP };
    if let Some(Some((lo, hi, size, id, name))) = lookup.map(|f| f()) {
        if addr >= lo && addr < hi {
            let mut b = Buf {
                bytes: [0; 512],
                len: 0,
            };
            let _ = write!(
                b,
                "\nfibrpc: fiber {id} ({}) overflowed its {} KiB stack \
                 (fault at {addr:#x} in the guard page); aborting. Spawn it with \
                 a larger fibrpc_fiber::StackClass.\n",
                name.as_deref().unwrap_or("unnamed"),
                size >> 10
            );
            // SAFETY: write(2) and abort(3) are async-signal-safe; the
            // buffer is a live local.
            unsafe {
                libc::write(2, b.bytes.as_ptr().cast(), b.len);
                libc::abort();
            }
        }
    }
    // Not a fiber guard page: hand over to whoever was there before.
    let prev = if sig == libc::SIGBUS {
        &raw const PREV_BUS
    } else {
        &raw const PREV_SEGV
    };
    // SAFETY: PREV_* were filled by sigaction in `install` before this
    // handler could run, and are never written again.
    unsafe {
        let prev = &*prev.cast::<libc::sigaction>();
        if prev.sa_sigaction == libc::SIG_DFL || prev.sa_sigaction == libc::SIG_IGN {
            // Restore the default action and return: the faulting
            // instruction runs again and the default action (core dump)
            // happens with the right signal.
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(prev.sa_sigaction);
            f(sig, info, ctx);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(prev.sa_sigaction);
            f(sig);
        }
    }
}

/// Makes writes to a closed pipe or socket fail with `EPIPE` instead of
/// killing the process (what bRPC does at startup). Leaves a handler the
/// program installed itself alone; Rust binaries ignore SIGPIPE already.
pub(crate) fn ignore_sigpipe() {
    // SAFETY: querying and setting a signal disposition with valid
    // arguments; SIG_IGN needs no handler code.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_DFL
        {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
    }
}
