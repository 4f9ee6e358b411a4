//! io_uring as a readiness poller: the same surface as [`super::epoll`]
//! (add edge-triggered, add one-shot, delete, wait for events), built on
//! `IORING_OP_POLL_ADD`, so every fiber I/O path runs unchanged on it.
//!
//! - A registration is one multishot poll (`IORING_POLL_ADD_MULTI`, edge
//!   semantics like `EPOLLET`); a one-shot `fd_wait` is a plain poll.
//! - A wait that finds completions already posted costs no syscall: the
//!   completion queue is read from shared memory. Re-arms made while
//!   reaping are submitted with the next wait, in one `io_uring_enter`.
//! - The dispatcher's eventfd is armed as an `IORING_OP_READ` (a blocking
//!   eventfd, so the read waits in the kernel): a wake consumes the counter
//!   itself, no drain syscall.
//!
//! - Socket reads and writes may also run as ring operations
//!   ([`Uring::push_op`], used by `io::ring_op`): queued without a system
//!   call, run by the next wait's `io_uring_enter`, completed with
//!   `user_data` tagged [`OP_TAG`].
//!
//! Who may touch what: the submission queue under `sq` (any thread
//! registers); the completion queue only by the dispatcher's poll-lock
//! holder (see [`Uring::wait`]'s safety contract). The kernel writes the
//! eventfd read buffer, which is owned by this struct and not freed until
//! the read's completion has been seen (see `Drop`), and the buffers of
//! operations, which their submitters keep alive until the completion
//! (`push_op`'s contract).

use super::epoll::Events;
use io_uring::{cqueue, opcode, squeue, types, IoUring, Probe};
use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Submission queue slots; a full queue is flushed with a submit.
const SQ_ENTRIES: u32 = 256;
/// Completion queue slots: room for a burst of events across thousands of
/// registrations before the kernel has to buffer overflow.
const CQ_ENTRIES: u32 = 4096;
/// The `user_data` of removal requests, whose completions are ignored.
const REMOVE_TOKEN: u64 = u64::MAX - 1;
/// The tag bit of an operation's `user_data` ([`Uring::push_op`]); its
/// completion is reported as an event whose bits are the result. Poll
/// tokens never have it: a registration token's version has 31 bits
/// (`io::entry`), and the waker's and removals' tokens are checked first.
pub(crate) const OP_TAG: u64 = 1 << 63;

/// A poll request the kernel holds for a registration.
#[derive(Clone, Copy)]
struct Armed {
    fd: RawFd,
    mask: u32,
    multishot: bool,
}

/// What the submission lock guards.
struct Submissions {
    /// Live polls by token: a multishot poll that ended (overflow, the
    /// submitting thread exited) is re-armed only if still here, and a
    /// removal takes it out first, so nothing re-arms a deleted one.
    armed: HashMap<u64, Armed>,
    /// Descriptor → token: an fd is registered at most once per ring, as
    /// in an epoll set (`EEXIST` otherwise).
    by_fd: HashMap<RawFd, u64>,
}

/// One ring used for readiness.
pub(crate) struct Uring {
    ring: IoUring,
    sq: Mutex<Submissions>,
    /// The waker eventfd and the token its read completes with.
    waker_fd: RawFd,
    waker_token: u64,
    /// The eventfd read's buffer: written by the kernel while the read is
    /// in flight. Boxed so its address is stable; see `Drop`.
    waker_buf: Box<UnsafeCell<u64>>,
    /// Operations were queued ([`Self::push_op`]) since the last wait
    /// submitted: an idle worker submits them before it spins.
    queued: AtomicBool,
    /// Whether socket reads and writes run as ring operations (the kernel
    /// has the opcodes, and `FIBRPC_IO_URING_OPS` is not `0`).
    ops: bool,
    /// Operations completed (written by the one reaper at a time).
    ops_completed: AtomicU64,
}

// SAFETY: the submission queue is touched only under `sq`; the completion
// queue and `waker_buf` only by the single poll-lock holder (`wait`'s
// contract) or by the kernel; `IoUring` itself is plain memory maps plus
// an fd.
unsafe impl Sync for Uring {}
// SAFETY: as above; nothing is tied to the creating thread.
unsafe impl Send for Uring {}

/// Why io_uring cannot be used here, or `Ok`: creates a small ring and
/// probes the opcodes and features the poller needs.
pub(crate) fn detect() -> Result<(), String> {
    if std::env::var_os("FIBRPC_IO_URING_DISABLE").is_some_and(|v| v != "0") {
        return Err("disabled by FIBRPC_IO_URING_DISABLE".into());
    }
    if let Ok(v) = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled") {
        if v.trim() == "2" {
            return Err("kernel.io_uring_disabled = 2".into());
        }
    }
    // ENOSYS (old kernel, or a seccomp filter), EPERM (io_uring_disabled
    // = 1 for this user, or seccomp) end up here.
    let ring = IoUring::new(8).map_err(|e| format!("io_uring_setup: {e}"))?;
    if !ring.params().is_feature_ext_arg() {
        return Err("no IORING_FEAT_EXT_ARG (Linux < 5.11)".into());
    }
    // Multishot poll came with 5.13, as did resource tagging, which is the
    // feature bit that tells.
    if !ring.params().is_feature_resource_tagging() {
        return Err("no multishot poll (Linux < 5.13)".into());
    }
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| format!("IORING_REGISTER_PROBE: {e}"))?;
    for (code, name) in [
        (opcode::PollAdd::CODE, "POLL_ADD"),
        (opcode::PollRemove::CODE, "POLL_REMOVE"),
        (opcode::Read::CODE, "READ"),
        (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
    ] {
        if !probe.is_supported(code) {
            return Err(format!("IORING_OP_{name} not supported"));
        }
    }
    Ok(())
}

/// Whether the kernel has the socket opcodes ring operations use, and
/// `FIBRPC_IO_URING_OPS` does not turn them off (`0`: reads and writes
/// stay system calls, readiness still comes from the ring).
fn ops_supported(ring: &IoUring) -> bool {
    if std::env::var_os("FIBRPC_IO_URING_OPS").is_some_and(|v| v == "0") {
        return false;
    }
    let mut probe = Probe::new();
    if ring.submitter().register_probe(&mut probe).is_err() {
        return false;
    }
    [
        opcode::Recv::CODE,
        opcode::Send::CODE,
        opcode::RecvMsg::CODE,
        opcode::SendMsg::CODE,
    ]
    .into_iter()
    .all(|code| probe.is_supported(code))
}

impl Uring {
    /// A ring with `waker_fd` (a blocking eventfd) armed as a read that
    /// completes with `waker_token`.
    pub(crate) fn new(waker_fd: RawFd, waker_token: u64) -> io::Result<Self> {
        // COOP_TASKRUN (5.19): completions the network posts as task work
        // (every poll and operation completion) no longer interrupt the
        // submitting worker with an IPI while it runs; they run at its next
        // enter, which `needs_enter` makes when the TASKRUN flag says work
        // is pending. A sleeping worker is still woken. Older kernels
        // refuse the flags: the ring is made without them.
        let ring = IoUring::builder()
            .setup_cqsize(CQ_ENTRIES)
            .setup_clamp()
            .setup_coop_taskrun()
            .setup_taskrun_flag()
            .build(SQ_ENTRIES)
            .or_else(|_| {
                IoUring::builder()
                    .setup_cqsize(CQ_ENTRIES)
                    .setup_clamp()
                    .build(SQ_ENTRIES)
            })?;
        let ops = ops_supported(&ring);
        let u = Uring {
            ring,
            sq: Mutex::new(Submissions {
                armed: HashMap::new(),
                by_fd: HashMap::new(),
            }),
            waker_fd,
            waker_token,
            waker_buf: Box::new(UnsafeCell::new(0)),
            queued: AtomicBool::new(false),
            ops,
            ops_completed: AtomicU64::new(0),
        };
        // SAFETY: the read's buffer is `waker_buf`, freed only after its
        // completion (see `Drop`).
        unsafe { u.push(&u.waker_read()) }?;
        u.ring.submit()?;
        Ok(u)
    }

    fn waker_read(&self) -> squeue::Entry {
        opcode::Read::new(types::Fd(self.waker_fd), self.waker_buf.get().cast(), 8)
            .build()
            .user_data(self.waker_token)
    }

    /// Whether socket reads and writes may run as ring operations here.
    pub(crate) fn has_ops(&self) -> bool {
        self.ops
    }

    /// Operations completed on this ring so far.
    pub(crate) fn ops_completed(&self) -> u64 {
        self.ops_completed.load(Ordering::Relaxed)
    }

    /// Whether operations were queued since the last wait submitted.
    pub(crate) fn has_queued_ops(&self) -> bool {
        self.queued.load(Ordering::Relaxed)
    }

    /// Queues the operation `entry`, whose `user_data` carries [`OP_TAG`],
    /// without entering the kernel: the next wait submits it (whoever
    /// polls this ring next), or [`Self::submit_queued`]. Its completion
    /// comes out of [`Self::wait`] as an event. An error means the entry
    /// was not queued.
    ///
    /// # Safety
    ///
    /// Every buffer `entry` points at stays valid (and unmoved) until its
    /// completion has been reaped.
    pub(crate) unsafe fn push_op(&self, entry: &squeue::Entry) -> io::Result<()> {
        debug_assert!(entry.get_user_data() & OP_TAG != 0);
        let _g = self.sq.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: our caller keeps the buffers alive (our contract).
        unsafe { self.push_locked(entry) }?;
        self.queued.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Enters the kernel now for what is queued (from any thread). A
    /// failure is not reported: the entries stay queued for the next wait.
    pub(crate) fn submit_queued(&self) {
        if let Err(e) = self.ring.submit() {
            tracing::debug!(error = %e, "io_uring: a submit failed; the next wait submits");
        }
    }

    /// Queues `entry` (flushing a full queue first). Takes the submission
    /// lock itself; see [`Self::push_locked`].
    ///
    /// # Safety
    ///
    /// As [`Self::push_locked`].
    unsafe fn push(&self, entry: &squeue::Entry) -> io::Result<()> {
        let _g = self.sq.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: our caller's contract.
        unsafe { self.push_locked(entry) }
    }

    /// Queues `entry`; the caller holds `sq`.
    ///
    /// # Safety
    ///
    /// Whatever memory `entry` points at stays valid until its completion
    /// has been reaped.
    unsafe fn push_locked(&self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: the caller holds the submission lock, so no other
            // `SubmissionQueue` of this ring exists.
            let mut sq = unsafe { self.ring.submission_shared() };
            // SAFETY: the entry's memory outlives its completion (our
            // caller's contract).
            if unsafe { sq.push(entry) }.is_ok() {
                return Ok(());
            }
            // Full: publish and submit what is queued, then retry.
            drop(sq);
            self.ring.submit()?;
        }
    }

    fn add_poll(&self, fd: RawFd, mask: u32, token: u64, multishot: bool) -> io::Result<()> {
        let mut s = self.sq.lock().unwrap_or_else(|e| e.into_inner());
        if s.by_fd.contains_key(&fd) {
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        let armed = Armed {
            fd,
            mask,
            multishot,
        };
        // SAFETY: a poll references no memory.
        unsafe { self.push_locked(&poll_entry(token, armed)) }?;
        s.armed.insert(token, armed);
        s.by_fd.insert(fd, token);
        drop(s);
        // Submitted now, from the registering thread (`Submitter` only
        // loads the shared tail atomically): the poll's first check
        // reports a descriptor that is ready already.
        self.ring.submit()?;
        Ok(())
    }

    /// Registers `fd` edge-triggered (a multishot poll) for `mask` (poll
    /// bits, which equal the epoll ones) under `token`.
    pub(crate) fn add(&self, fd: RawFd, mask: u32, token: u64) -> io::Result<()> {
        self.add_poll(fd, mask, token, true)
    }

    /// Registers `fd` for one event of `mask` under `token`.
    pub(crate) fn add_oneshot(&self, fd: RawFd, mask: u32, token: u64) -> io::Result<()> {
        self.add_poll(fd, mask, token, false)
    }

    /// Removes the registration `token` of `fd`. The kernel's poll request
    /// holds no user memory, so the removal need not be waited for; its
    /// completion (and the cancelled poll's) is ignored, and a re-arm can
    /// no longer happen since the token left `armed`.
    pub(crate) fn delete(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut s = self.sq.lock().unwrap_or_else(|e| e.into_inner());
        if s.by_fd.get(&fd) == Some(&token) {
            s.by_fd.remove(&fd);
        }
        if s.armed.remove(&token).is_none() {
            // A one-shot poll that fired: nothing is left in the kernel.
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        let remove = opcode::PollRemove::new(token)
            .build()
            .user_data(REMOVE_TOKEN);
        // SAFETY: a poll removal references no memory.
        unsafe { self.push_locked(&remove) }?;
        drop(s);
        // Now rather than with the next wait: the poll holds a reference
        // to the file, which must go before the caller closes the
        // descriptor, or the close would not end the connection.
        self.ring.submit()?;
        Ok(())
    }

    /// Submits what is queued and collects completions into `events`,
    /// waiting up to `timeout` (`None`: until one comes) if none is posted
    /// yet. Returns the number of events.
    ///
    /// # Safety
    ///
    /// One caller at a time (the dispatcher's poll lock): this reads the
    /// completion queue.
    pub(crate) unsafe fn wait(
        &self,
        events: &mut Events,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        events.clear();
        // Whatever is queued now goes in with this wait's enter.
        self.queued.store(false, Ordering::Relaxed);
        // SAFETY: one caller at a time (our contract); the borrow ends
        // before any other completion queue view is made.
        let posted = !unsafe { self.ring.completion_shared() }.is_empty();
        let submitter = self.ring.submitter();
        let r = if posted || timeout == Some(Duration::ZERO) {
            // Nothing to wait for: enter only for queued submissions (or
            // an overflow to flush); else no syscall at all.
            if self.needs_enter() {
                submitter.submit().map(drop)
            } else {
                Ok(())
            }
        } else {
            match timeout {
                None => submitter.submit_and_wait(1).map(drop),
                Some(d) => {
                    let ts = types::Timespec::new()
                        .sec(d.as_secs())
                        .nsec(d.subsec_nanos());
                    let args = types::SubmitArgs::new().timespec(&ts);
                    submitter.submit_with_args(1, &args).map(drop)
                }
            }
        };
        match r {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) => {}
            Err(e) => return Err(e),
        }
        self.reap(events)?;
        Ok(events.len())
    }

    /// Whether entries are queued, or the kernel has completions to flush
    /// (an overflow) or work to run that only an enter runs.
    fn needs_enter(&self) -> bool {
        let _g = self.sq.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: we hold the submission lock: no other view exists.
        let sq = unsafe { self.ring.submission_shared() };
        !sq.is_empty() || sq.cq_overflow() || sq.taskrun()
    }

    /// Moves posted completions into `events`, re-arming what must be.
    fn reap(&self, events: &mut Events) -> io::Result<()> {
        // (token, whether it ended with an event) of requests that ended.
        let mut ended: Vec<(u64, bool)> = Vec::new();
        {
            // SAFETY: one caller at a time (`wait`'s contract).
            let cq = unsafe { self.ring.completion_shared() };
            for cqe in cq {
                let token = cqe.user_data();
                let res = cqe.result();
                if token == REMOVE_TOKEN {
                    continue;
                }
                if token == self.waker_token {
                    // The read consumed the eventfd's counter; the buffer
                    // is ours again until the next read is queued.
                    if res < 0 && res != -libc::ECANCELED {
                        tracing::error!(error = res, "io_uring: the waker read failed");
                    }
                    events.push(token, libc::EPOLLIN as u32);
                    ended.push((token, true));
                    continue;
                }
                if token & OP_TAG != 0 {
                    // An operation: its result, as the event bits, goes to
                    // the dispatcher, which wakes its submitter.
                    events.push(token, res as u32);
                    self.ops_completed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let more = cqueue::more(cqe.flags());
                if res >= 0 {
                    events.push(token, res as u32);
                } else if res != -libc::ECANCELED {
                    // The poll failed (EBADF: the descriptor was closed
                    // under its registration): report an error edge, as
                    // epoll would report EPOLLERR, and do not re-arm.
                    events.push(token, (libc::EPOLLERR | libc::EPOLLHUP) as u32);
                    self.forget(token);
                    continue;
                }
                if !more {
                    ended.push((token, res >= 0));
                }
            }
        }
        if ended.is_empty() {
            return Ok(());
        }
        let mut s = self.sq.lock().unwrap_or_else(|e| e.into_inner());
        for (token, fired) in ended {
            if token == self.waker_token {
                // SAFETY: the read's buffer is `waker_buf` (see `Drop`).
                unsafe { self.push_locked(&self.waker_read()) }?;
                continue;
            }
            match s.armed.get(&token).copied() {
                // Ended by the kernel (CQ overflow, the submitting thread
                // exited) while still registered: arm again. Its first
                // check reports readiness that came meanwhile.
                // A one-shot poll cancelled by the kernel (its submitting
                // thread exited) has not fired yet: arm it again too.
                // SAFETY: a poll references no memory.
                Some(a) if a.multishot || !fired => unsafe {
                    self.push_locked(&poll_entry(token, a))?
                },
                // A one-shot poll fired: done.
                Some(a) => {
                    s.armed.remove(&token);
                    if s.by_fd.get(&a.fd) == Some(&token) {
                        s.by_fd.remove(&a.fd);
                    }
                }
                None => {}
            }
        }
        Ok(())
    }

    fn forget(&self, token: u64) {
        let mut s = self.sq.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = s.armed.remove(&token) {
            if s.by_fd.get(&a.fd) == Some(&token) {
                s.by_fd.remove(&a.fd);
            }
        }
    }
}

fn poll_entry(token: u64, a: Armed) -> squeue::Entry {
    opcode::PollAdd::new(types::Fd(a.fd), a.mask)
        .multi(a.multishot)
        .build()
        .user_data(token)
}

impl Drop for Uring {
    fn drop(&mut self) {
        // The eventfd read may be in flight, writing into `waker_buf`:
        // cancel it and wait for its completion before the buffer is
        // freed. If that cannot be confirmed, leak the buffer rather than
        // free memory the kernel may still write.
        let cancel = opcode::AsyncCancel::new(self.waker_token)
            .build()
            .user_data(REMOVE_TOKEN);
        // SAFETY: a cancel references no memory.
        let mut done = unsafe { self.push(&cancel) }.is_ok();
        let mut seen = false;
        // Bounded: the cancel completes at once, and a read that already
        // completed has its completion posted.
        for _ in 0..100 {
            if !done || seen {
                break;
            }
            done = self.ring.submit_and_wait(1).is_ok();
            // SAFETY: `&mut self`: no other completion queue view exists.
            for cqe in unsafe { self.ring.completion_shared() } {
                seen |= cqe.user_data() == self.waker_token;
            }
        }
        if !seen {
            let buf = std::mem::replace(&mut self.waker_buf, Box::new(UnsafeCell::new(0)));
            std::mem::forget(buf);
        }
    }
}
