//! The shared core of every channel flavour.
//!
//! One [`Mutex`] guards a `VecDeque` and the bookkeeping; three butexes are
//! used only as wait queues with an epoch value:
//!
//! - `rx`: the (single) receiver sleeps here when the queue is empty, after
//!   setting `rx_waiting` under the lock. A sender that pushes while
//!   `rx_waiting` is set clears it, bumps the epoch (under the lock) and
//!   wakes after unlocking. Senders that find `rx_waiting` clear do not
//!   touch the butex at all.
//! - `tx`: bounded senders sleep here while the queue is full, counted in
//!   `tx_waiting`; each pop that finds `tx_waiting > 0` bumps and wakes one.
//! - `ack`: a rendezvous (capacity 0) sender sleeps here until its message
//!   was taken (`taken >= ticket`).
//!
//! Every epoch is read under the lock before sleeping and bumped under the
//! lock before waking, so a wake between the unlock and the butex wait makes
//! the wait return at once (`WouldBlock`). Messages are never dropped while
//! the lock is held: their destructors may use the channel.

use crate::butex::Butex;
use crate::sync::{Mutex, MutexGuard, Stop, Wait};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;

/// Capacity of an unbounded channel.
pub(super) const UNBOUNDED: usize = usize::MAX;

pub(super) struct Chan<T> {
    state: Mutex<State<T>>,
    rx: Butex,
    tx: Butex,
    ack: Butex,
    /// Queue bound; 0 is a rendezvous, [`UNBOUNDED`] never blocks.
    cap: usize,
}

struct State<T> {
    queue: VecDeque<T>,
    /// Live `Sender`s / `SyncSender`s.
    senders: usize,
    /// The receiver is alive.
    receiver: bool,
    rx_waiting: bool,
    tx_waiting: usize,
    /// A rendezvous sender's message is queued and it waits for pickup.
    ack_waiting: bool,
    /// Messages pushed / popped so far (rendezvous tickets).
    pushed: u64,
    taken: u64,
}

/// Why a send did not happen; the message comes back.
pub(super) enum SendFail<T> {
    Full(T),
    Disconnected(T),
    Stopped(T),
}

/// Why a receive returned nothing.
pub(super) enum RecvFail {
    Empty,
    Disconnected,
    Stopped(Stop),
}

/// Butexes to wake once the lock is released.
#[derive(Default)]
#[must_use]
struct Wakes {
    rx: bool,
    tx: bool,
    ack: bool,
}

impl<T> Chan<T> {
    pub(super) fn new(cap: usize) -> Self {
        let queue = if cap == UNBOUNDED {
            VecDeque::new()
        } else {
            // Bounded: the queue never grows past this, so it never
            // reallocates after the first fill.
            VecDeque::with_capacity(cap.clamp(1, 1024))
        };
        Chan {
            state: Mutex::new(State {
                queue,
                senders: 1,
                receiver: true,
                rx_waiting: false,
                tx_waiting: 0,
                ack_waiting: false,
                pushed: 0,
                taken: 0,
            }),
            rx: Butex::new(0),
            tx: Butex::new(0),
            ack: Butex::new(0),
            cap,
        }
    }

    fn bump(b: &Butex) {
        b.value().fetch_add(1, Ordering::Relaxed);
    }

    fn fire(&self, w: Wakes) {
        if w.rx {
            self.rx.wake_one_queued();
        }
        if w.tx {
            self.tx.wake_one_queued();
        }
        if w.ack {
            self.ack.wake_all();
        }
    }

    fn push_locked(&self, st: &mut State<T>, msg: T) -> Wakes {
        st.queue.push_back(msg);
        st.pushed += 1;
        let mut w = Wakes::default();
        if st.rx_waiting {
            st.rx_waiting = false;
            Self::bump(&self.rx);
            w.rx = true;
        }
        w
    }

    fn pop_locked(&self, st: &mut State<T>) -> Option<(T, Wakes)> {
        let msg = st.queue.pop_front()?;
        st.taken += 1;
        let mut w = Wakes::default();
        if st.tx_waiting > 0 {
            Self::bump(&self.tx);
            w.tx = true;
        }
        if st.ack_waiting {
            st.ack_waiting = false;
            Self::bump(&self.ack);
            w.ack = true;
        }
        Some((msg, w))
    }

    /// Sends `msg`; with `w == None` never waits (`try_send`).
    pub(super) fn send(&self, msg: T, mut w: Option<&mut Wait>) -> Result<(), SendFail<T>> {
        let mut st = self.state.lock();
        let mut stopped = None;
        loop {
            if !st.receiver {
                return Err(SendFail::Disconnected(msg));
            }
            let room = if self.cap == 0 {
                // A rendezvous `try_send` succeeds only into the hands of a
                // receiver that is already waiting (as std).
                st.queue.is_empty() && (w.is_some() || st.rx_waiting) && stopped.is_none()
            } else {
                st.queue.len() < self.cap
            };
            if room {
                if stopped == Some(Stop::Interrupted) {
                    // Room turned up as the interrupt came: we send, and
                    // the interrupt stays pending.
                    if let Some(w) = w.as_deref_mut() {
                        w.keep_interrupt();
                    }
                }
                let wakes = self.push_locked(&mut st, msg);
                let ticket = st.pushed;
                let wait_ack = self.cap == 0 && w.is_some();
                // Set with the push, in the same critical section, so a
                // receiver dropped meanwhile leaves the message for us.
                st.ack_waiting |= wait_ack;
                drop(st);
                self.fire(wakes);
                return match w {
                    Some(w) if wait_ack => self.wait_taken(ticket, w),
                    _ => Ok(()),
                };
            }
            if stopped.is_some() {
                return Err(SendFail::Stopped(msg));
            }
            let Some(w) = w.as_deref_mut() else {
                return Err(SendFail::Full(msg));
            };
            st.tx_waiting += 1;
            let seq = self.tx.value().load(Ordering::Relaxed);
            drop(st);
            let r = w.wait(&self.tx, seq);
            st = self.state.lock();
            st.tx_waiting -= 1;
            // On timeout/interrupt, one last look for room (above) first.
            stopped = r.err();
        }
    }

    /// A rendezvous sender waits until message number `ticket` was taken.
    fn wait_taken(&self, ticket: u64, w: &mut Wait) -> Result<(), SendFail<T>> {
        let mut st = self.state.lock();
        loop {
            if st.taken >= ticket {
                return Ok(());
            }
            // Not taken: the queue holds at most one message in a
            // rendezvous channel, so it holds exactly ours.
            let reclaim = |st: &mut MutexGuard<'_, State<T>>| {
                st.ack_waiting = false;
                let msg = st.queue.pop_back().expect("untaken rendezvous message");
                // Un-push it, so later tickets still match `taken`.
                st.pushed -= 1;
                let mut wakes = Wakes::default();
                if st.tx_waiting > 0 {
                    Self::bump(&self.tx);
                    wakes.tx = true;
                }
                (msg, wakes)
            };
            if !st.receiver {
                let (msg, wakes) = reclaim(&mut st);
                drop(st);
                self.fire(wakes);
                return Err(SendFail::Disconnected(msg));
            }
            st.ack_waiting = true;
            let seq = self.ack.value().load(Ordering::Relaxed);
            drop(st);
            let r = w.wait(&self.ack, seq);
            st = self.state.lock();
            if let Err(stop) = r {
                if st.taken >= ticket {
                    if stop == Stop::Interrupted {
                        w.keep_interrupt();
                    }
                    return Ok(());
                }
                let (msg, wakes) = reclaim(&mut st);
                drop(st);
                self.fire(wakes);
                return Err(SendFail::Stopped(msg));
            }
        }
    }

    /// Receives; with `w == None` never waits (`try_recv`).
    pub(super) fn recv(&self, mut w: Option<&mut Wait>) -> Result<T, RecvFail> {
        let mut st = self.state.lock();
        loop {
            if let Some((msg, wakes)) = self.pop_locked(&mut st) {
                drop(st);
                self.fire(wakes);
                return Ok(msg);
            }
            if st.senders == 0 {
                return Err(RecvFail::Disconnected);
            }
            let Some(w) = w.as_deref_mut() else {
                return Err(RecvFail::Empty);
            };
            st.rx_waiting = true;
            let seq = self.rx.value().load(Ordering::Relaxed);
            drop(st);
            let r = w.wait(&self.rx, seq);
            st = self.state.lock();
            if let Err(stop) = r {
                st.rx_waiting = false;
                // A message that arrived as we gave up is delivered (a
                // rendezvous `try_send` relies on that); an interrupt that
                // lost this race stays pending.
                if let Some((msg, wakes)) = self.pop_locked(&mut st) {
                    drop(st);
                    self.fire(wakes);
                    if stop == Stop::Interrupted {
                        w.keep_interrupt();
                    }
                    return Ok(msg);
                }
                if st.senders == 0 {
                    return Err(RecvFail::Disconnected);
                }
                return Err(RecvFail::Stopped(stop));
            }
        }
    }

    pub(super) fn add_sender(&self) {
        self.state.lock().senders += 1;
    }

    pub(super) fn drop_sender(&self) {
        let mut st = self.state.lock();
        st.senders -= 1;
        let mut wakes = Wakes::default();
        if st.senders == 0 && st.rx_waiting {
            st.rx_waiting = false;
            Self::bump(&self.rx);
            wakes.rx = true;
        }
        drop(st);
        self.fire(wakes);
    }

    pub(super) fn drop_receiver(&self) {
        let mut st = self.state.lock();
        st.receiver = false;
        // Buffered messages are dropped now (as std), outside the lock —
        // except a rendezvous message whose sender waits: it takes it back.
        let drained = if self.cap == 0 && st.ack_waiting {
            VecDeque::new()
        } else {
            std::mem::take(&mut st.queue)
        };
        Self::bump(&self.tx);
        Self::bump(&self.ack);
        drop(st);
        self.tx.wake_all();
        self.ack.wake_all();
        drop(drained);
    }

    pub(super) fn capacity(&self) -> Option<usize> {
        (self.cap != UNBOUNDED).then_some(self.cap)
    }
}
