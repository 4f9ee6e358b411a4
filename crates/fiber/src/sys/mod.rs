//! Linux-specific primitives behind a thin surface: futex, stacks, signals,
//! epoll, io_uring, eventfd, membarrier, slab pages, and the descriptor and socket calls of the
//! `net` types.

pub(crate) mod epoll;
pub(crate) mod eventfd;
pub(crate) mod fd;
pub(crate) mod futex;
pub(crate) mod membarrier;
pub(crate) mod pages;
pub(crate) mod signal;
pub(crate) mod socket;
pub(crate) mod uring;

/// `syscall(2)`: system call `nr` on `fd` with `args` after it (the kernel
/// ignores those past the call's own), for the calls a request makes:
/// glibc's wrappers of `recv`, `send`, `sendmsg`, `read`, `write`,
/// `readv` and `epoll_wait` are pthread cancellation points, and glibc
/// (2.36) brackets each with `__pthread_enable_asynccancel` and
/// `__pthread_disable_asynccancel`, two compare-and-swap loops on the
/// thread's cancellation state: 1.4 % of an HTTP server's CPU under wrk
/// (`perf record`), for a facility Rust code never uses (cancelling a
/// thread that runs Rust frames is undefined behaviour). `syscall` is no
/// cancellation point.
///
/// Every argument goes as a full `long`: through the variadic call an
/// `int` would leave its register's upper half undefined.
///
/// # Safety
/// The arguments must be valid for system call `nr`.
#[inline]
pub(crate) unsafe fn syscall(nr: libc::c_long, fd: std::os::fd::RawFd, args: [usize; 5]) -> isize {
    let [a, b, c, d, e] = args.map(|x| x as libc::c_long);
    // SAFETY: the caller's promise.
    (unsafe { libc::syscall(nr, fd as libc::c_long, a, b, c, d, e) }) as isize
}
