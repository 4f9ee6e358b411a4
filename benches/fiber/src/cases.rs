//! The benchmark cases and what each one means.

use crate::harness::Sizing;
use std::hint::black_box;

/// Long-lived fibers in the imbalanced-load case.
pub const IMBALANCED_TASKS: usize = 64;
/// xorshift rounds per CPU chunk of the imbalanced-load case (~30 µs on an
/// idle core here; the binary prints the measured value).
pub const WORK_ITERS: u32 = 15_000;

/// One row of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// Spawn one task from inside a task and join it, repeat (2 workers).
    SpawnJoin,
    /// The same on a 1-worker runtime (no cross-thread wake-ups at all).
    SpawnJoin1w,
    /// Each task spawns the next; the last one signals completion.
    Chained,
    /// One task calls `yield_now` in a loop (2 workers).
    Yield,
    /// Two tasks yielding to each other on a 1-worker runtime.
    Yield2On1w,
    /// Ping-pong of two tasks on a 1-worker runtime; per round trip. The
    /// blocking call sits in the loop's own function (as may's `park`).
    PingPong1w,
    /// The same with each blocking call one (never inlined) function call
    /// below the loop: what a stackful runtime pays when a task returns
    /// through frames it entered before switching out (tokio: n/a).
    PingPong1wDeep,
    /// Ping-pong with the partner started on the other worker (2 workers).
    PingPong2w,
    /// Uncontended lock+unlock of the runtime's mutex.
    MutexUncontended,
    /// Uncontended `std::sync::Mutex` inside a task: the floor to compare to.
    StdMutex,
    /// Two tasks × n increments under the runtime's mutex; per increment.
    MutexContended,
    /// Unbounded mpsc: one producer task, one consumer; per message.
    Channel,
    /// Bounded mpsc (capacity 128); per message.
    SyncChannel,
    /// 64 CPU-bound tasks started on one worker, default (pinned) fibers.
    ImbalancedPinned,
    /// The same with `unsafe { Builder::new().migratable() }` fibers.
    ImbalancedMigratable,
}

impl Case {
    /// Every case, in table order.
    pub const ALL: [Case; 15] = [
        Case::SpawnJoin,
        Case::SpawnJoin1w,
        Case::Chained,
        Case::Yield,
        Case::Yield2On1w,
        Case::PingPong1w,
        Case::PingPong1wDeep,
        Case::PingPong2w,
        Case::MutexUncontended,
        Case::StdMutex,
        Case::MutexContended,
        Case::Channel,
        Case::SyncChannel,
        Case::ImbalancedPinned,
        Case::ImbalancedMigratable,
    ];

    /// Name for `--case`.
    pub fn key(self) -> &'static str {
        match self {
            Case::SpawnJoin => "spawn_join",
            Case::SpawnJoin1w => "spawn_join_1w",
            Case::Chained => "chained",
            Case::Yield => "yield",
            Case::Yield2On1w => "yield2_1w",
            Case::PingPong1w => "pingpong_1w",
            Case::PingPong1wDeep => "pingpong_1w_deep",
            Case::PingPong2w => "pingpong_2w",
            Case::MutexUncontended => "mutex",
            Case::StdMutex => "std_mutex",
            Case::MutexContended => "mutex_contended",
            Case::Channel => "channel",
            Case::SyncChannel => "sync_channel",
            Case::ImbalancedPinned => "imbalanced_pinned",
            Case::ImbalancedMigratable => "imbalanced_migratable",
        }
    }

    /// Row label in the table.
    pub fn label(self) -> &'static str {
        match self {
            Case::SpawnJoin => "spawn+join (2w), per spawn+join",
            Case::SpawnJoin1w => "spawn+join (1w), per spawn+join",
            Case::Chained => "chained spawn (2w), per task",
            Case::Yield => "yield_now, 1 task (2w), per yield",
            Case::Yield2On1w => "yield_now, 2 tasks (1w), per yield",
            Case::PingPong1w => "ping-pong same worker (1w), per round trip",
            Case::PingPong1wDeep => "ping-pong same worker, wait one call down (1w)",
            Case::PingPong2w => "ping-pong across workers (2w), per round trip",
            Case::MutexUncontended => "mutex uncontended (2w), per lock+unlock",
            Case::StdMutex => "std::sync::Mutex in a task (2w, reference)",
            Case::MutexContended => "mutex contended 2 tasks (2w), per increment",
            Case::Channel => "mpsc unbounded (2w), per message",
            Case::SyncChannel => "mpsc bounded 128 (2w), per message",
            Case::ImbalancedPinned => "imbalanced 64 tasks (2w), total: pinned",
            Case::ImbalancedMigratable => "imbalanced 64 tasks (2w), total: migratable",
        }
    }

    /// The target fibrpc's runtime is held to in this case, if any.
    pub fn goal(self) -> &'static str {
        match self {
            Case::SpawnJoin => "≤ 100 ns",
            Case::Chained => "≤ 60 ns",
            Case::Yield => "≤ 15 ns",
            Case::PingPong1w => "≤ 50 ns",
            Case::MutexUncontended => "≤ 8 ns",
            _ => "—",
        }
    }

    /// Whether the case runs on a 1-worker runtime (for may that means a
    /// child process: may's worker count is process-global).
    pub fn one_worker(self) -> bool {
        matches!(
            self,
            Case::SpawnJoin1w | Case::Yield2On1w | Case::PingPong1w | Case::PingPong1wDeep
        )
    }

    /// How `n` is chosen. For the imbalanced cases `n` is the number of CPU
    /// chunks per task.
    pub fn sizing(self, quick: bool) -> Sizing {
        match self {
            Case::ImbalancedPinned | Case::ImbalancedMigratable => {
                Sizing::Fixed(if quick { 10 } else { 100 })
            }
            // "Chained spawn of 1M": never more than 1M per run.
            Case::Chained => Sizing::Calibrate {
                start: 1_000,
                max: 1_000_000,
            },
            _ => Sizing::Calibrate {
                start: 1_000,
                max: 50_000_000,
            },
        }
    }

    /// Looks a case up by its key.
    pub fn from_key(key: &str) -> Option<Case> {
        Case::ALL.into_iter().find(|c| c.key() == key)
    }
}

/// One chunk of CPU work for the imbalanced-load case: a dependent xorshift
/// chain the optimizer cannot remove or vectorize.
pub fn cpu_chunk() -> u64 {
    let mut x = black_box(0x9E37_79B9_7F4A_7C15_u64);
    for _ in 0..WORK_ITERS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    black_box(x)
}

/// Start gate for the contended cases: each of the two tasks calls this
/// first and spins (without yielding) until both arrived, so they really run
/// at the same time on both workers instead of one after the other on one.
/// Gives up after 2 s and returns `false` (the run is then not contended).
pub fn start_gate(arrived: &std::sync::atomic::AtomicUsize) -> bool {
    use std::sync::atomic::Ordering;
    arrived.fetch_add(1, Ordering::AcqRel);
    let t = std::time::Instant::now();
    while arrived.load(Ordering::Acquire) < 2 {
        if t.elapsed() > std::time::Duration::from_secs(2) {
            return false;
        }
        std::hint::spin_loop();
    }
    true
}

/// Counts, per OS thread, the CPU chunks one task of the imbalanced case
/// ran there. Load from other processes changes wall times, not this: it
/// shows directly whether the runtime spread the work.
#[derive(Default)]
pub struct ChunkTally(Vec<(std::thread::ThreadId, u64)>);

impl ChunkTally {
    /// Counts one chunk for the current thread. Reads `thread::current()`
    /// afresh each time: the task may have moved since the last chunk.
    pub fn record(&mut self) {
        let me = std::thread::current().id();
        match self.0.iter_mut().find(|(t, _)| *t == me) {
            Some((_, n)) => *n += 1,
            None => self.0.push((me, 1)),
        }
    }

    /// Summary over all tasks: "busiest thread ran X% of the chunks (k threads)".
    pub fn summary(all: impl IntoIterator<Item = ChunkTally>) -> String {
        let mut total: Vec<(std::thread::ThreadId, u64)> = Vec::new();
        for tally in all {
            for (t, n) in tally.0 {
                match total.iter_mut().find(|(u, _)| *u == t) {
                    Some((_, m)) => *m += n,
                    None => total.push((t, n)),
                }
            }
        }
        let sum: u64 = total.iter().map(|(_, n)| n).sum();
        let max = total.iter().map(|(_, n)| *n).max().unwrap_or(0);
        format!(
            "busiest thread ran {:.0}% of the CPU chunks ({} threads)",
            100.0 * max as f64 / sum.max(1) as f64,
            total.len()
        )
    }
}
