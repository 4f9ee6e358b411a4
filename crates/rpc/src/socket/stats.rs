//! Per-connection traffic counters, shown by the `/connections` page.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// Bytes and messages that crossed one connection, with their rates over
/// the last second (updated once a second by the server).
#[derive(Debug)]
pub struct SocketStats {
    created: SystemTime,
    in_bytes: AtomicU64,
    in_messages: AtomicU64,
    out_bytes: AtomicU64,
    out_messages: AtomicU64,
    out_writes: AtomicU64,
    /// When a byte last went in or out, in `fibrpc_fiber::coarse_ms`
    /// (a load of a clock the runtime keeps, not a clock read).
    last_active_ms: AtomicU64,
    /// The counters at the last tick, and the differences it found.
    prev: [AtomicU64; 4],
    rates: [AtomicU64; 4],
}

/// Per-second rates over the last second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketRates {
    /// Bytes read per second.
    pub in_bytes: u64,
    /// Messages cut per second.
    pub in_messages: u64,
    /// Bytes written per second.
    pub out_bytes: u64,
    /// Messages written per second.
    pub out_messages: u64,
}

/// A copy of a connection's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketStatsSnapshot {
    /// When the connection was made or accepted.
    pub created: SystemTime,
    /// Bytes read.
    pub in_bytes: u64,
    /// Messages cut from the input.
    pub in_messages: u64,
    /// Bytes written.
    pub out_bytes: u64,
    /// Messages written completely.
    pub out_messages: u64,
    /// Successful `write`/`writev` calls: fewer than `out_messages` when
    /// responses were batched.
    pub out_writes: u64,
}

impl SocketStats {
    pub(crate) fn new() -> SocketStats {
        SocketStats {
            created: SystemTime::now(),
            in_bytes: AtomicU64::new(0),
            in_messages: AtomicU64::new(0),
            out_bytes: AtomicU64::new(0),
            out_messages: AtomicU64::new(0),
            out_writes: AtomicU64::new(0),
            last_active_ms: AtomicU64::new(fibrpc_fiber::coarse_ms()),
            prev: Default::default(),
            rates: Default::default(),
        }
    }

    /// Called once a second: the rates become the counts since the last
    /// call. Only one ticker calls it.
    pub(crate) fn tick(&self) {
        let now = [
            &self.in_bytes,
            &self.in_messages,
            &self.out_bytes,
            &self.out_messages,
        ]
        .map(|c| c.load(Ordering::Relaxed));
        for (i, n) in now.into_iter().enumerate() {
            let before = self.prev[i].swap(n, Ordering::Relaxed);
            self.rates[i].store(n.saturating_sub(before), Ordering::Relaxed);
        }
    }

    /// The rates found by the last tick.
    pub fn rates(&self) -> SocketRates {
        let r = self.rates.each_ref().map(|r| r.load(Ordering::Relaxed));
        SocketRates {
            in_bytes: r[0],
            in_messages: r[1],
            out_bytes: r[2],
            out_messages: r[3],
        }
    }

    /// `n` bytes read. Called by the connection's reader, holding its
    /// input lock.
    pub(crate) fn on_read(&self, n: usize) {
        add(&self.in_bytes, n as u64);
        self.touch();
    }

    /// Notes traffic now (two plain moves: see `last_active_ms`).
    #[inline(always)]
    fn touch(&self) {
        self.last_active_ms
            .store(fibrpc_fiber::coarse_ms(), Ordering::Relaxed);
    }

    /// How long since a byte last went in or out (since the connection
    /// was made, if none did), to within 50 ms.
    pub fn idle_for(&self) -> std::time::Duration {
        let last = self.last_active_ms.load(Ordering::Relaxed);
        std::time::Duration::from_millis(fibrpc_fiber::coarse_ms().saturating_sub(last))
    }

    /// A message cut from the input. Called by the connection's reader,
    /// holding its input lock.
    pub(crate) fn on_message_in(&self) {
        add(&self.in_messages, 1);
    }

    /// `n` bytes written, completing `messages` messages. Called by the
    /// socket's single writer (the write-list owner).
    pub(crate) fn on_written(&self, n: usize, messages: usize) {
        add(&self.out_bytes, n as u64);
        add(&self.out_writes, 1);
        self.touch();
        if messages > 0 {
            add(&self.out_messages, messages as u64);
        }
    }

    /// A snapshot of the counters.
    pub fn snapshot(&self) -> SocketStatsSnapshot {
        SocketStatsSnapshot {
            created: self.created,
            in_bytes: self.in_bytes.load(Ordering::Relaxed),
            in_messages: self.in_messages.load(Ordering::Relaxed),
            out_bytes: self.out_bytes.load(Ordering::Relaxed),
            out_messages: self.out_messages.load(Ordering::Relaxed),
            out_writes: self.out_writes.load(Ordering::Relaxed),
        }
    }
}

/// Adds `n` to a counter only one thread updates at a time (the input
/// counters under the connection's input lock, the output ones by the
/// write-list owner, whose handover orders one owner's update before the
/// next's): a load and a store, not a locked add. An atomic add was 5 of
/// the ~50 atomic read-modify-writes of a plain HTTP request, each
/// ~15-20 cycles (`benches/http/atomics.sh`). Readers on other threads
/// (the console, the per-second tick) see a recent value, as before.
#[inline(always)]
fn add(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Relaxed);
}
