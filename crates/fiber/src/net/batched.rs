//! Writes sent at the end of the worker's batch
//! ([`TcpStream::write_all_batched`](crate::net::TcpStream::write_all_batched)).
//!
//! A fiber-per-connection server runs a batch of ready connections on a
//! worker: each fiber reads its request and writes its answer. Every
//! `send` wakes the peer's thread, and where that thread shares the cores
//! (a load generator, a client on the same host) the kernel often lets it
//! preempt the worker right there, in the middle of the batch: the
//! connections still queued wait until the worker runs again, one or two
//! scheduler ticks (4–8 ms at 250 Hz), since a started fiber never moves
//! to another worker. A batched write copies the answer and returns; the
//! worker sends every batched answer when it has run the fibers queued on
//! it (or at its next periodic look at I/O), so the wakeups come after the
//! reads, not between them. (TCP echo at 50 connections on 2 cores with
//! the generator's two threads: p99 4.2 → 2.5 ms, p99.9 8.1 → 4.9 ms,
//! requests per second level. With eight generator threads the p99 fell
//! as far, but the median rose ~15 % and CPU per request ~6 %: the sends
//! leave later. So it is a choice per server; see BENCHMARKS.md.)
//!
//! The queued bytes live in the stream's [`Batched`] state. Every holder
//! of its lock sends without parking (a system call, `EAGAIN` included),
//! so the worker's flush, which runs outside any fiber, can take it. The
//! bytes leave from the front of the queue only, so a fiber's batched and
//! plain writes keep their order: a plain write sends what is queued
//! first. What the flush cannot send at once (`EAGAIN`, a partial send) a
//! fiber finishes, waiting for writability.

use super::fd::IoFd;
use crate::io::Interest;
use std::cell::RefCell;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The most bytes a stream holds queued: a batched write that would pass
/// it is sent at once instead (after what is queued).
const MAX_QUEUED: usize = 64 << 10;

/// A stream's queued bytes.
#[derive(Default)]
pub(crate) struct Batched {
    /// Whether `state` may hold bytes or an error: one load on every plain
    /// write of a stream that never batches.
    pending: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Bytes to send, in order.
    data: Vec<u8>,
    /// A send of queued bytes failed: returned by the stream's next write.
    error: Option<io::Error>,
    /// A worker's flush list or a finishing fiber holds the stream and
    /// will send `data`.
    owned: bool,
}

thread_local! {
    /// Streams with bytes queued by fibers of this worker.
    static LISTED: RefCell<Vec<Arc<IoFd>>> = const { RefCell::new(Vec::new()) };
    /// The emptied list, kept for its capacity.
    static SPARE: RefCell<Vec<Arc<IoFd>>> = const { RefCell::new(Vec::new()) };
}

impl Batched {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Queues `buf` on `io` for the end of the caller's batch if the caller's
/// worker has other fibers queued and the queue stays within
/// [`MAX_QUEUED`]: `Ok(true)`. `Ok(false)`: not queued, the caller writes
/// it now (its write sends the queue first). The error of an earlier send
/// of queued bytes, if any.
pub(crate) fn try_queue(io: &Arc<IoFd>, buf: &[u8]) -> io::Result<bool> {
    if !crate::runtime::has_queued_fibers() {
        return Ok(false);
    }
    let mut st = io.batched.lock();
    if let Some(e) = st.error.take() {
        return Err(e);
    }
    if st.data.len() + buf.len() > MAX_QUEUED || !(st.owned || list(io)) {
        return Ok(false);
    }
    st.owned = true;
    st.data.extend_from_slice(buf);
    io.batched.pending.store(true, Ordering::Release);
    Ok(true)
}

/// Puts `io` on this worker's flush list (asking for the flush if the
/// list was empty); false outside workers.
fn list(io: &Arc<IoFd>) -> bool {
    LISTED.with(|l| {
        let mut l = l.borrow_mut();
        if l.is_empty() && !crate::runtime::at_batch_end(flush) {
            return false;
        }
        l.push(io.clone());
        true
    })
}

/// Sends what is queued on `io`, waiting for writability as needed; the
/// error of an earlier send of queued bytes, if any. Called before every
/// other write of the stream, so queued bytes go first.
#[inline]
pub(crate) fn send_queued(io: &IoFd) -> io::Result<()> {
    if !io.batched.pending.load(Ordering::Acquire) {
        return Ok(());
    }
    send_queued_slow(io)
}

#[cold]
fn send_queued_slow(io: &IoFd) -> io::Result<()> {
    drain(io, |st| {
        if !st.owned {
            io.batched.pending.store(false, Ordering::Release);
        }
    })
}

/// Sends the queue until it is empty, waiting for writability between
/// tries (`IoFd::io`: up to the write timeout); `emptied` runs under the
/// lock once it is. A stored error is returned instead.
fn drain(io: &IoFd, emptied: impl Fn(&mut State)) -> io::Result<()> {
    io.io(Interest::WRITABLE, |_, _| {
        let mut st = io.batched.lock();
        if let Some(e) = st.error.take() {
            return Err(e);
        }
        if !send_front(io, &mut st)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        emptied(&mut st);
        Ok(())
    })
}

/// Nobody sends the queue any more (emptied, or dropped for an error):
/// the next batched write lists the stream again, and plain writes skip
/// the lock unless an error waits.
fn release(io: &IoFd, st: &mut State) {
    st.owned = false;
    if st.error.is_none() {
        io.batched.pending.store(false, Ordering::Release);
    }
}

/// A queue emptied with more capacity than this gives it back: a stream
/// that once queued a burst does not keep the burst's memory while idle.
const KEEP_CAPACITY: usize = 4096;

/// Sends from the front of `st.data` without parking until it is empty
/// (`Ok(true)`) or the socket is full (`Ok(false)`).
fn send_front(io: &IoFd, st: &mut State) -> io::Result<bool> {
    let sent = send_front_inner(io, st);
    if st.data.is_empty() && st.data.capacity() > KEEP_CAPACITY {
        st.data = Vec::new();
    }
    sent
}

fn send_front_inner(io: &IoFd, st: &mut State) -> io::Result<bool> {
    while !st.data.is_empty() {
        let slice = [io::IoSlice::new(&st.data)];
        match crate::io::send_vectored_now(io.raw(), &slice) {
            Ok(n) => {
                st.data.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                st.data.clear();
                return Err(e);
            }
        }
    }
    Ok(true)
}

/// The end of a worker's batch: sends what each listed stream queued.
/// Runs outside any fiber: it never parks (the lock it takes is held only
/// for copies and non-blocking sends).
fn flush() {
    let mut streams = LISTED.with(|l| {
        let spare = SPARE.with(|s| std::mem::take(&mut *s.borrow_mut()));
        std::mem::replace(&mut *l.borrow_mut(), spare)
    });
    for io in streams.drain(..) {
        let mut st = io.batched.lock();
        match send_front(&io, &mut st) {
            Ok(true) => release(&io, &mut st),
            Ok(false) => {
                drop(st);
                finish_in_fiber(io);
            }
            Err(e) => {
                st.error = Some(e);
                release(&io, &mut st);
            }
        }
    }
    SPARE.with(|s| *s.borrow_mut() = streams);
}

/// A fiber sends the rest, waiting for writability; `owned` stays set
/// meanwhile, so later batched writes queue behind the rest. If it cannot
/// (the write timeout, an interrupt), the queued bytes are dropped and
/// the stream's next write returns the error.
fn finish_in_fiber(io: Arc<IoFd>) {
    let fiber_io = io.clone();
    let spawned = crate::Builder::new().spawn(move || {
        let io = fiber_io;
        if let Err(e) = drain(&io, |st| release(&io, st)) {
            let mut st = io.batched.lock();
            st.data.clear();
            st.error = Some(e);
            release(&io, &mut st);
        }
    });
    if spawned.is_err() {
        // No fiber: the bytes stay queued, unowned, so the next batched
        // write lists the stream for its batch's end again (and a plain
        // write sends them first, as ever).
        io.batched.lock().owned = false;
    }
}
