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
//! Who may touch what: the submission queue under `sq` (any thread
//! registers); the completion queue only by the dispatcher's poll-lock
//! holder (see [`Uring::wait`]'s safety contract). The only memory the
//! kernel writes is the eventfd read buffer, which is owned by this struct
//! and not freed until the read's completion has been seen (see `Drop`).

use super::epoll::Events;
use io_uring::{cqueue, opcode, squeue, types, IoUring, Probe};
use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;
use std::sync::Mutex;
use std::time::Duration;

/// Submission queue slots; a full queue is flushed with a submit.
const SQ_ENTRIES: u32 = 256;
/// Completion queue slots: room for a burst of events across thousands of
/// registrations before the kernel has to buffer overflow.
const CQ_ENTRIES: u32 = 4096;
/// The `user_data` of removal requests, whose completions are ignored.
const REMOVE_TOKEN: u64 = u64::MAX - 1;

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

impl Uring {
    /// A ring with `waker_fd` (a blocking eventfd) armed as a read that
    /// completes with `waker_token`.
    pub(crate) fn new(waker_fd: RawFd, waker_token: u64) -> io::Result<Self> {
        let ring = IoUring::builder()
            .setup_cqsize(CQ_ENTRIES)
            .setup_clamp()
            .build(SQ_ENTRIES)?;
        let u = Uring {
            ring,
            sq: Mutex::new(Submissions {
                armed: HashMap::new(),
                by_fd: HashMap::new(),
            }),
            waker_fd,
            waker_token,
            waker_buf: Box::new(UnsafeCell::new(0)),
        };
        u.push(&u.waker_read())?;
        u.ring.submit()?;
        Ok(u)
    }

    fn waker_read(&self) -> squeue::Entry {
        opcode::Read::new(types::Fd(self.waker_fd), self.waker_buf.get().cast(), 8)
            .build()
            .user_data(self.waker_token)
    }

    /// Queues `entry` (flushing a full queue first). Takes the submission
    /// lock itself; see [`Self::push_locked`].
    fn push(&self, entry: &squeue::Entry) -> io::Result<()> {
        let _g = self.sq.lock().unwrap_or_else(|e| e.into_inner());
        self.push_locked(entry)
    }

    /// Queues `entry`; the caller holds `sq`.
    fn push_locked(&self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: the caller holds the submission lock, so no other
            // `SubmissionQueue` of this ring exists.
            let mut sq = unsafe { self.ring.submission_shared() };
            // SAFETY: the entries queued here reference no user memory but
            // `waker_buf`, which outlives the read (see `Drop`).
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
        self.push_locked(&poll_entry(token, armed))?;
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
        self.push_locked(&remove)?;
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
                self.push_locked(&self.waker_read())?;
                continue;
            }
            match s.armed.get(&token).copied() {
                // Ended by the kernel (CQ overflow, the submitting thread
                // exited) while still registered: arm again. Its first
                // check reports readiness that came meanwhile.
                // A one-shot poll cancelled by the kernel (its submitting
                // thread exited) has not fired yet: arm it again too.
                Some(a) if a.multishot || !fired => self.push_locked(&poll_entry(token, a))?,
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
        let mut done = self.push(&cancel).is_ok();
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
