//! The write path: in place by the writer that found the list empty, the
//! rest by a write-behind fiber (bRPC's `Socket::StartWrite` and
//! `KeepWrite`).

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use fibrpc_fiber::io::Interest;
use fibrpc_iobuf::IOBuf;

use super::outgoing::{Outgoing, WriteWatcher};
use super::write_list::Owner;
use super::Socket;
use crate::unstarted::IfUnstarted;
use crate::{errno, RpcError};

/// At most this many queued messages go into one `writev` batch.
const MAX_BATCH: usize = 64;

/// At most this many times a batch's write-behind fiber lets the fibers
/// queued on its worker go first (see `wait_for_queued_writers`): each
/// turn lets everything queued then run, so one is usually enough; the
/// bound keeps a worker that never runs dry from holding the batch back.
const MAX_DEFER_TURNS: u32 = 4;

/// A message queued by [`Socket::queue_watched`]: written when dropped,
/// if queueing it made this caller the socket's writer.
#[must_use = "dropping it is what writes the message"]
pub(crate) struct QueuedWrite<'a> {
    sock: &'a Arc<Socket>,
    owner: Option<Owner<Outgoing>>,
}

impl Drop for QueuedWrite<'_> {
    fn drop(&mut self) {
        if let Some(owner) = self.owner.take() {
            self.sock.write_owned(owner);
        }
    }
}

impl Socket {
    /// Queues `data` (one whole message) for writing. Never blocks: the
    /// caller that finds the socket idle writes in place once; whatever is
    /// left is finished by a write-behind fiber.
    ///
    /// Fails with `EFAILEDSOCKET` on a failed socket and `EOVERCROWDED`
    /// when more than `max_unwritten` bytes are already queued.
    pub fn write(self: &Arc<Self>, data: IOBuf) -> Result<(), RpcError> {
        self.write_outgoing(Outgoing::plain(data))
    }

    /// [`write`](Self::write) in two steps, for a client's request:
    /// `watcher` hears whether the kernel took any byte of `data` (whether
    /// the server may have it). `data` is queued now, behind every
    /// message queued before it; the returned
    /// [`QueuedWrite`] writes it when dropped (in place if this caller
    /// found the socket idle). A caller that queues under a lock — to keep
    /// the wire in the order its protocol recorded — drops the lock
    /// first, so no `writev` runs inside it: a `writev` under the lock
    /// made every other caller of the connection that came meanwhile
    /// suspend on the lock and be woken after it, across workers (a
    /// futex or eventfd round trip each; see `post_in_order`). An error
    /// means nothing was queued, so nothing of it is ever written and
    /// `watcher` hears nothing.
    pub(crate) fn queue_watched(
        self: &Arc<Self>,
        data: IOBuf,
        watcher: Arc<dyn WriteWatcher>,
    ) -> Result<QueuedWrite<'_>, RpcError> {
        let owner = self.queue(Outgoing::watched(data, watcher))?;
        Ok(QueuedWrite { sock: self, owner })
    }

    fn write_outgoing(self: &Arc<Self>, msg: Outgoing) -> Result<(), RpcError> {
        if let Some(owner) = self.queue(msg)? {
            self.write_owned(owner);
        }
        Ok(())
    }

    /// Queues `msg` (encrypted first on a TLS connection): `Some` if this
    /// caller owns the write list now and must pass it to
    /// [`write_owned`](Self::write_owned).
    fn queue(self: &Arc<Self>, msg: Outgoing) -> Result<Option<Owner<Outgoing>>, RpcError> {
        // The one branch TLS adds to a plaintext connection's writes.
        if let Some(tls) = self.tls.get() {
            return self.queue_tls(tls, msg);
        }
        self.enqueue(msg)
    }

    /// Queues `msg` (bytes as they go on the wire): `Some` if this caller
    /// found the list empty and owns it now, and must pass it to
    /// [`write_owned`](Self::write_owned).
    #[inline]
    pub(super) fn enqueue(&self, msg: Outgoing) -> Result<Option<Owner<Outgoing>>, RpcError> {
        if self.failed() {
            return Err(self.failed_error());
        }
        let len = msg.data.len();
        let before = self.unwritten.fetch_add(len, Ordering::Relaxed);
        if before > 0 && before + len > self.options.max_unwritten {
            self.unwritten.fetch_sub(len, Ordering::Relaxed);
            return Err(RpcError::new(
                errno::EOVERCROWDED,
                format!(
                    "{} has {before} bytes queued (limit {})",
                    self.remote_side(),
                    self.options.max_unwritten
                ),
            ));
        }
        Ok(self.write_list.push(msg))
    }

    /// The owner of the write list writes: in place, or behind the other
    /// requests of the batch just read.
    #[inline]
    pub(super) fn write_owned(self: &Arc<Self>, mut owner: Owner<Outgoing>) {
        if self.writes_to_come() && fibrpc_fiber::has_queued_fibers() {
            // The other requests of the batch just read are queued and
            // will write here too: queue the writer behind them, and one
            // `writev` takes every response (tonic's connection task
            // batches the same way). Fibers queued for other connections
            // are no reason to wait: deferring for them cost a fiber per
            // response under many one-request connections (plain
            // request/response traffic under wrk).
            self.start_keep_write(owner, true);
            return;
        }
        // Our own message, in place. EAGAIN or a partial write leaves the
        // rest in the FIFO for the write-behind fiber.
        let _ = self.write_some(&mut owner);
        if let Err(owner) = self.write_list.release(owner) {
            self.start_keep_write(owner, false);
        }
    }

    /// Whether fibers that are likely to write here are queued: the
    /// processing of messages read here, or callers a response woke (of
    /// this connection, or of any connection of the channel when it
    /// spreads its calls over several servers: see
    /// [`woken_callers`](Socket::woken_callers)).
    #[inline]
    fn writes_to_come(&self) -> bool {
        self.queued_inputs.load(Ordering::Relaxed) > 0
            || self
                .woken_callers
                .get()
                .is_some_and(|c| c.load(Ordering::Relaxed) > 0)
    }

    /// Where a caller a response read here woke counts until it runs:
    /// the channel's shared count if it has one, else `queued_inputs`.
    #[inline]
    pub(crate) fn woken_counter(&self) -> &AtomicUsize {
        self.woken_callers
            .get()
            .map_or(&self.queued_inputs, |c| c.as_ref())
    }

    /// Starts the write-behind fiber. `behind_queued`: at the tail of this
    /// worker's queue, after the fibers queued now, rather than in the
    /// LIFO slot that would run it next. It is stealable but wakes no
    /// worker (`Builder::quiet`): this worker reaches it as soon as the
    /// fibers ahead of it ran, and should it block its thread or compute
    /// for long, another worker takes it at its next look for work (timed
    /// sleeps end within milliseconds; one sleeping untimed is woken).
    /// Signalling a worker for it (bRPC's NOSIGNAL + flush) woke the other
    /// worker about once per batch for nothing: with a connection per
    /// worker, each worker sleeps in `epoll_wait` between its own batches,
    /// and every signal cost an eventfd write here and a wakeup there
    /// that found no work. (Redis client, 16 callers, a connection per
    /// worker: client CPU per call about 15% lower.)
    fn start_keep_write(self: &Arc<Self>, owner: Owner<Outgoing>, behind_queued: bool) {
        // Should the fiber never start, the owner is dropped with it and
        // nothing can write this socket any more: it fails.
        let work = IfUnstarted::new((self.clone(), owner), |(me, _owner): (Arc<Self>, _)| {
            me.set_failed(RpcError::new(
                errno::EINTERNAL,
                "no fiber could start to write the connection; closing it",
            ));
        });
        let mut builder = fibrpc_fiber::Builder::new();
        if behind_queued {
            builder = builder.quiet();
        }
        let _ = builder.spawn(move || {
            let (me, owner) = work.take();
            if behind_queued {
                me.wait_for_queued_writers();
            }
            me.keep_write(owner)
        });
    }

    /// The write-behind fiber of a batch, before it writes: gives way
    /// (up to [`MAX_DEFER_TURNS`] times) while fibers that will write here
    /// too are still queued on this worker.
    ///
    /// Spawned behind the fibers queued then, it is not always behind them
    /// when it starts: the scheduler takes turns between fibers that never
    /// ran (where this one is queued) and started fibers made ready again
    /// — where a client's callers go when a response wakes them. So it ran
    /// after one or two of the callers one read woke, wrote their requests,
    /// and the next caller became the writer and spawned another: a
    /// `writev` per few calls, not per read. A yield queues a started
    /// fiber behind the started fibers ready now. (Redis client, 16
    /// callers on one connection: 4.7 → ~17 requests per `writev`, client
    /// CPU per call 9-12 µs → 5-7 µs, `perf trace -s`.)
    fn wait_for_queued_writers(&self) {
        for _ in 0..MAX_DEFER_TURNS {
            if !self.writes_to_come() || !fibrpc_fiber::has_queued_fibers() {
                return;
            }
            fibrpc_fiber::yield_now();
        }
    }

    /// The write-behind fiber: writes the FIFO, waiting for writability on
    /// `EAGAIN`, taking newer messages as it goes, until the list is
    /// released.
    fn keep_write(self: Arc<Self>, mut owner: Owner<Outgoing>) {
        loop {
            if owner.fifo().len() < MAX_BATCH {
                self.write_list.grab(&mut owner);
            }
            let ticket = self.registration().map(|r| r.readiness(Interest::WRITABLE));
            let blocked = matches!(self.write_some(&mut owner), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
            if owner.fifo().is_empty() {
                match self.write_list.release(owner) {
                    Ok(()) => return,
                    Err(o) => owner = o,
                }
                continue;
            }
            if blocked {
                match (self.registration(), ticket) {
                    (Some(reg), Some(t)) => {
                        // Woken by writability or by `set_failed`'s
                        // shutdown (a hang-up is an edge too).
                        let _ = reg.wait(Interest::WRITABLE, t, None);
                    }
                    _ => fibrpc_fiber::yield_now(),
                }
            }
        }
    }

    /// One `writev` of up to [`MAX_BATCH`] queued messages; written
    /// messages leave the FIFO. On a failed socket, or when the write
    /// fails, drops everything queued instead.
    ///
    /// Always the system call, on the io_uring driver too
    /// (`send_vectored_now`, not a ring operation that parks the caller
    /// until its worker's next enter): an in-place writer may hold a lock
    /// (a protocol's response order) that the connection's next reader on
    /// the same worker would block the thread on, and the write-behind
    /// fiber's ring sends fell behind a burst of pipelined requests until
    /// the queue hit `max_unwritten` (100,000 pipelined HTTP requests:
    /// the connection closed after 13–19 thousand answers in two runs of
    /// three; with system calls, 5 of 5 passed).
    ///
    /// The watchers of the batch's messages hear of the `writev` before
    /// it runs and of its outcome right after, before the socket fails on
    /// a write error: a call woken by that failure then knows whether its
    /// request got out.
    fn write_some(&self, owner: &mut Owner<Outgoing>) -> io::Result<usize> {
        let fifo = owner.fifo();
        if fifo.is_empty() {
            return Ok(0);
        }
        if self.failed() {
            self.drop_queued(owner);
            return Ok(0);
        }
        let batch = fifo.len().min(MAX_BATCH);
        fifo.iter().take(batch).for_each(Outgoing::before_write);
        let fd = self.stream().as_raw_fd();
        let send = |iov: &[io::IoSlice<'_>]| fibrpc_fiber::io::send_vectored_now(fd, iov);
        let r = if batch == 1 {
            IOBuf::cut_multiple_with(&mut [&mut fifo[0].data], send)
        } else {
            let mut refs: Vec<&mut IOBuf> =
                fifo.iter_mut().take(batch).map(|o| &mut o.data).collect();
            IOBuf::cut_multiple_with(&mut refs, send)
        };
        fifo.iter_mut().take(batch).for_each(Outgoing::after_write);
        match r {
            Ok(n) => {
                let left = self.unwritten.fetch_sub(n, Ordering::SeqCst) - n;
                let mut done = 0;
                while fifo.front().is_some_and(|o| o.data.is_empty()) {
                    fifo.pop_front();
                    done += 1;
                }
                // Counted here, by the one writer, not by every caller of
                // `write`: no shared counter on the callers' path.
                self.stats.on_written(n, done);
                self.on_flushed(left);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(e),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => {
                self.set_failed(RpcError::new(
                    errno::EFAILEDSOCKET,
                    format!("write to {}: {e}", self.remote_side()),
                ));
                self.drop_queued(owner);
                Err(e)
            }
        }
    }

    fn drop_queued(&self, owner: &mut Owner<Outgoing>) {
        let dropped: usize = owner.fifo().drain(..).map(|o| o.data.len()).sum();
        self.unwritten.fetch_sub(dropped, Ordering::Relaxed);
    }

    pub(crate) fn failed_error(&self) -> RpcError {
        let why = self.error().map(|e| e.text).unwrap_or_default();
        RpcError::new(
            errno::EFAILEDSOCKET,
            format!("connection to {} failed: {why}", self.remote_side()),
        )
    }
}
