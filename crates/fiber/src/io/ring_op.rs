//! Socket reads and writes as io_uring operations: a pinned fiber on a
//! worker whose dispatcher runs a ring queues the operation there and
//! parks; the worker's next `io_uring_enter` (its periodic poll, or the
//! wait it sleeps in) runs every operation queued meanwhile, so a busy
//! worker makes one system call per round instead of one per read and
//! per write.
//!
//! Every operation is non-blocking (`MSG_DONTWAIT`): the kernel runs it at
//! submission and completes it at once, with `-EAGAIN` if the socket is
//! empty or full — the caller's readiness wait and retry stay as they are
//! for plain system calls. So an operation holds the caller's buffer for
//! one enter, never while waiting for the peer.
//!
//! Soundness: the buffers belong to the parked caller, which does not
//! return (or let its stack frame go) until the completion has been
//! reaped: the wait is not interruptible and has no deadline (an
//! interrupt that comes meanwhile is passed on to the next wait). The
//! descriptor stays open meanwhile: the caller borrows it, and the kernel
//! holds its own reference to the file from submission on.
//!
//! Anywhere else (plain threads, migratable fibers, the epoll driver, a
//! kernel without the opcodes) the same functions make the system call.
//!
//! A ring operation parks its caller until the worker's next enter, so a
//! caller must not hold a lock that another fiber of its worker may wait
//! for on the thread (a `std::sync::Mutex`): that fiber would block the
//! very thread the parked holder needs to run again, and the worker would
//! hang. A writer that may hold such a lock (the rpc socket's writes,
//! made under a protocol's ordering lock) uses [`send_vectored_now`], the
//! system call on the caller's stack.

use super::driver::worker_driver;
use super::edges::Edges;
use crate::butex::WaitError;
use crate::sys::uring::{Uring, OP_TAG};
use io_uring::{opcode, squeue, types};
use std::cell::RefCell;
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

/// Most buffers one vectored operation passes (`IOV_MAX`), as the
/// system calls in `sys::fd`.
const MAX_IOVS: usize = 1024;

/// Where an operation's completion lands. Shared by the submitter and the
/// reference the kernel's `user_data` holds (given back by [`complete`]),
/// so the butex outlives a wake that races with the waiter's return.
struct OpSlot {
    /// Bumped when the completion arrives.
    done: Edges,
    /// The completion's result (`-errno` on failure).
    res: AtomicI32,
}

thread_local! {
    /// A worker thread's spare slot: reused when the kernel's reference
    /// has been given back, so an operation costs no allocation.
    static SPARE: RefCell<Option<Arc<OpSlot>>> = const { RefCell::new(None) };
}

/// Completes the operation whose `user_data` is `token` with `res`: called
/// by the dispatcher for each operation completion, exactly once.
pub(crate) fn complete(token: u64, res: i32) {
    let p = (token & !OP_TAG) as *const OpSlot;
    // SAFETY: `token` was made by `run` from `Arc::into_raw`, and the
    // kernel completes an operation once, so this takes that reference
    // back exactly once.
    let slot = unsafe { Arc::from_raw(p) };
    slot.res.store(res, Ordering::Relaxed);
    // Release (in `bump`): the waiter reads `res` after seeing the bump.
    slot.done.bump();
}

/// The ring of the caller's worker, if the caller is a pinned fiber and
/// that ring takes operations.
fn ring_here() -> Option<(&'static Uring, &'static super::dispatcher::Dispatcher)> {
    let driver = worker_driver().filter(|d| d.is_uring())?;
    let worker = crate::runtime::pinned_fiber_worker()?;
    let d = driver.home_of(worker);
    Some((d.op_ring()?, d))
}

/// Runs the entry `make` builds on the caller's worker's ring and returns
/// its result, or `None` if operations do not run here (the caller makes
/// the system call). The entry is built only if it runs: on the epoll
/// driver (the default) a read or write then costs one load before its
/// system call, not a zeroed `msghdr` and a 64-byte entry it throws away.
///
/// # Safety
///
/// The memory the entry points at is valid for the operation and is not
/// touched by anyone else until this returns.
#[inline]
unsafe fn run(make: impl FnOnce() -> squeue::Entry) -> Option<io::Result<usize>> {
    let (ring, dispatcher) = ring_here()?;
    let entry = make();
    let slot = SPARE
        .with(|s| s.borrow_mut().take())
        .filter(|s| Arc::strong_count(s) == 1)
        .unwrap_or_else(|| {
            Arc::new(OpSlot {
                done: Edges::new(),
                res: AtomicI32::new(0),
            })
        });
    let ticket = slot.done.ticket();
    let token = Arc::into_raw(slot.clone()) as u64;
    debug_assert!(token & OP_TAG == 0, "user-space addresses lack the top bit");
    let entry = entry.user_data(token | OP_TAG);
    // Our worker submits it with its next poll. If a poller sleeps in the
    // ring now (a worker sharing this dispatcher), its enter began before
    // our entry was queued: enter ourselves, or the entry would wait for
    // that sleep to end.
    // SAFETY: the buffers stay valid until the completion: we wait for it
    // below whatever happens (our caller's contract covers the rest).
    let pushed = unsafe { ring.push_op(&entry) };
    if let Err(e) = pushed {
        // SAFETY: not queued: the kernel never saw the token, so its
        // reference is still ours to drop.
        drop(unsafe { Arc::from_raw(token as *const OpSlot) });
        return Some(Err(e));
    }
    // SeqCst on both sides (the poller stores `blocking` SeqCst before it
    // enters): our queued entry is visible to its enter, or we see it.
    std::sync::atomic::fence(Ordering::SeqCst);
    if dispatcher.has_blocking_poller() {
        ring.submit_queued();
    }
    let mut interrupted = false;
    // Not interruptible, no deadline: the kernel may be writing into the
    // caller's buffers until the completion comes. It comes with the next
    // enter of this ring (the operation never waits for the peer).
    while slot.done.ticket() == ticket {
        if let Err(WaitError::Interrupted) = slot.done.wait(ticket, None) {
            interrupted = true;
        }
    }
    if interrupted {
        // Passed on: the caller's next wait returns `Interrupted`.
        if let Some(t) = crate::task::current_task() {
            // The running fiber's own version: it cannot end meanwhile.
            let version = t.version.value().load(Ordering::Relaxed);
            crate::butex::interrupt_task(t, version);
        }
    }
    let res = slot.res.load(Ordering::Relaxed);
    SPARE.with(|s| *s.borrow_mut() = Some(slot));
    Some(if res < 0 {
        Err(io::Error::from_raw_os_error(-res))
    } else {
        Ok(res as usize)
    })
}

/// One non-blocking `recv` into `buf`: a ring operation where one can run
/// (see the module docs), else `recv(2)`. `WouldBlock` when nothing is
/// there. `fd` is a socket.
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    let len = buf.len().min(u32::MAX as usize) as u32;
    let ptr = buf.as_mut_ptr();
    let entry = || {
        opcode::Recv::new(types::Fd(fd), ptr, len)
            .flags(libc::MSG_DONTWAIT)
            .build()
    };
    // SAFETY: `buf` is borrowed mutably for the call.
    match unsafe { run(entry) } {
        Some(r) => r,
        // Not `read(2)`: the VFS layer it goes through (position lock
        // check, permission and fsnotify hooks) is work a socket never
        // needs (TCP echo at 10,000 connections: `vfs_read` and
        // `sock_read_iter` 0.2 µs of a request's ~10 µs, `perf record`).
        None => crate::sys::fd::recv(fd, buf),
    }
}

/// One non-blocking `send` of `buf` with `MSG_NOSIGNAL`: a ring
/// operation where one can run, else `send(2)`.
pub fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    let len = buf.len().min(u32::MAX as usize) as u32;
    let entry = || {
        opcode::Send::new(types::Fd(fd), buf.as_ptr(), len)
            .flags(libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
            .build()
    };
    // SAFETY: `buf` is borrowed for the call; the kernel only reads it.
    match unsafe { run(entry) } {
        Some(r) => r,
        None => crate::sys::fd::send(fd, buf),
    }
}

/// Writes into `msg` a header of the `iovlen` buffers at `iov`, with no
/// address and no control data, for a ring operation's entry.
fn msghdr(
    msg: &mut MaybeUninit<libc::msghdr>,
    iov: *mut libc::iovec,
    iovlen: usize,
) -> &mut libc::msghdr {
    // SAFETY: a zeroed msghdr is valid (no address, no control data).
    let msg = msg.write(unsafe { std::mem::zeroed() });
    msg.msg_iov = iov;
    msg.msg_iovlen = iovlen as _;
    msg
}

/// One non-blocking `recvmsg` into at most the first 1024 of `bufs`: a
/// ring operation where one can run, else `readv(2)` (`recv(2)` for a
/// single buffer). `fd` is a socket.
pub fn recv_vectored(fd: RawFd, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
    // Written only if the operation runs on a ring (see `run`).
    let mut msg = MaybeUninit::<libc::msghdr>::uninit();
    let iov = bufs.as_mut_ptr().cast::<libc::iovec>();
    let iovlen = bufs.len().min(MAX_IOVS);
    let entry = || {
        opcode::RecvMsg::new(types::Fd(fd), msghdr(&mut msg, iov, iovlen))
            .flags(libc::MSG_DONTWAIT as u32)
            .build()
    };
    // SAFETY: `msg` lives on this frame and `bufs` is borrowed mutably for
    // the call (IoSliceMut is ABI-compatible with iovec).
    match unsafe { run(entry) } {
        Some(r) => r,
        // One buffer (a small message's read): `recv(2)`, which skips the
        // VFS layer `readv(2)` goes through (HTTP under wrk: 0.15 µs of
        // the ~11.5 µs of server CPU a request costs, `perf record`).
        None => match bufs {
            [one] => crate::sys::fd::recv(fd, one),
            _ => crate::sys::fd::read_vectored(fd, bufs),
        },
    }
}

/// One non-blocking `sendmsg` of at most the first 1024 of `bufs`, with
/// `MSG_NOSIGNAL`: a ring operation where one can run, else `sendmsg(2)`
/// (`send(2)` for a single buffer).
///
/// A ring operation parks the caller until its worker's next enter: not
/// under a lock another fiber of this worker may wait for (see
/// [`send_vectored_now`]).
pub fn send_vectored(fd: RawFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    // Written only if the operation runs on a ring (see `run`).
    let mut msg = MaybeUninit::<libc::msghdr>::uninit();
    let iov = bufs.as_ptr() as *mut libc::iovec;
    let iovlen = bufs.len().min(MAX_IOVS);
    let entry = || {
        opcode::SendMsg::new(types::Fd(fd), msghdr(&mut msg, iov, iovlen))
            .flags((libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) as u32)
            .build()
    };
    // SAFETY: `msg` lives on this frame and `bufs` is borrowed for the
    // call; the kernel only reads them (IoSlice is ABI-compatible with
    // iovec).
    match unsafe { run(entry) } {
        Some(r) => r,
        None => send_vectored_now(fd, bufs),
    }
}

/// [`send_vectored`] as a system call on the caller's stack, never a ring
/// operation: it returns without parking the caller, so a caller may hold
/// any lock (see the module docs).
pub fn send_vectored_now(fd: RawFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    match bufs {
        [one] => crate::sys::fd::send(fd, one),
        _ => crate::sys::fd::send_vectored(fd, bufs),
    }
}
