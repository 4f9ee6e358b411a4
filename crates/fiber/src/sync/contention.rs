//! Contention profiling of [`Mutex`](super::Mutex) and
//! [`RwLock`](super::RwLock) (bRPC's contention profiler, on the waiting
//! side): while it is on, every wait of a contended lock records the
//! waiter's call stack and how long it waited, summed by stack.
//!
//! Off (the default), it costs one relaxed load on the contended path
//! only, after the short spin; the uncontended lock is untouched. On, a
//! wait captures its stack (unresolved addresses, up to [`MAX_DEPTH`]
//! frames) before it parks and adds its duration to a table of at most
//! [`MAX_STACKS`] distinct stacks; waits from further stacks are summed
//! into one `[other stacks]` entry, so memory stays bounded however long
//! it runs. Symbols are resolved once, by [`stop`].
//!
//! The locks' internal users count too (the channels lock a `Mutex`).
//!
//! ```
//! use fibrpc_fiber::sync::contention;
//! assert!(contention::start());
//! assert!(!contention::start()); // one profile at a time
//! let profile = contention::stop();
//! assert!(profile.stacks.is_empty()); // nothing waited
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex as StdMutex;
use std::time::Instant;

/// Frames kept of a waiter's stack (the innermost ones).
pub const MAX_DEPTH: usize = 64;

/// Distinct stacks kept per profile; waits from more stacks are summed
/// into one `[other stacks]` entry.
pub const MAX_STACKS: usize = 1024;

/// Whether waits are recorded. Relaxed: a wait that starts just as the
/// profile starts or stops may or may not be counted.
static ON: AtomicBool = AtomicBool::new(false);

/// Waits by stack. A `std` mutex, not ours: recording a wait on our own
/// `Mutex` could contend and record a wait in turn. It is only taken while
/// profiling, once per contended wait, for a hash-map update.
static TABLE: StdMutex<Option<Table>> = StdMutex::new(None);

#[derive(Default)]
struct Table {
    /// Return addresses, innermost first → (wait ns, waits).
    by_stack: HashMap<Box<[usize]>, (u64, u64)>,
    other: (u64, u64),
}

/// Starts recording waits; false (and nothing changes) if a profile is
/// already running.
pub fn start() -> bool {
    let mut t = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    if t.is_some() {
        return false;
    }
    *t = Some(Table::default());
    ON.store(true, Ordering::Relaxed);
    true
}

/// Stops recording and returns what was recorded, symbols resolved (an
/// empty profile if none was running).
pub fn stop() -> ContentionProfile {
    ON.store(false, Ordering::Relaxed);
    let table = TABLE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or_default();
    ContentionProfile::resolve(table)
}

/// Whether a contention profile is running.
pub fn is_running() -> bool {
    ON.load(Ordering::Relaxed)
}

/// A recorded contended wait in progress: the waiter's stack and when it
/// began.
pub(crate) struct Probe {
    ips: Vec<usize>,
    start: Instant,
}

/// Called on a contended path before waiting: `Some` when profiling.
#[inline]
pub(crate) fn probe() -> Option<Probe> {
    if ON.load(Ordering::Relaxed) {
        Some(Probe::capture())
    } else {
        None
    }
}

impl Probe {
    #[cold]
    #[inline(never)]
    fn capture() -> Probe {
        let mut ips = Vec::with_capacity(32);
        backtrace::trace(|frame| {
            ips.push(frame.ip() as usize);
            ips.len() < MAX_DEPTH
        });
        Probe {
            ips,
            start: Instant::now(),
        }
    }

    /// Adds the wait (from capture to now) to the table.
    #[cold]
    pub(crate) fn finish(self) {
        let ns = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let mut guard = TABLE.lock().unwrap_or_else(|e| e.into_inner());
        // The profile may have stopped while we waited.
        let Some(t) = guard.as_mut() else { return };
        let add = |slot: &mut (u64, u64)| {
            slot.0 = slot.0.saturating_add(ns);
            slot.1 += 1;
        };
        if let Some(slot) = t.by_stack.get_mut(&self.ips[..]) {
            add(slot);
        } else if t.by_stack.len() >= MAX_STACKS {
            add(&mut t.other);
        } else {
            t.by_stack.insert(self.ips.into_boxed_slice(), (ns, 1));
        }
    }
}

/// A finished contention profile: where fibers and threads waited for
/// locks, and for how long.
#[derive(Debug, Clone, Default)]
pub struct ContentionProfile {
    /// One entry per distinct stack: its frames outermost first (function
    /// names, inlined calls included), the total wait in nanoseconds and
    /// the number of waits.
    pub stacks: Vec<(Vec<String>, u64, u64)>,
}

impl ContentionProfile {
    fn resolve(table: Table) -> ContentionProfile {
        let mut names: HashMap<usize, Vec<String>> = HashMap::new();
        let mut stacks = Vec::with_capacity(table.by_stack.len() + 1);
        for (ips, (ns, n)) in table.by_stack {
            let mut frames: Vec<String> = Vec::with_capacity(ips.len());
            for &ip in ips.iter() {
                frames.extend(
                    names
                        .entry(ip)
                        .or_insert_with(|| symbols(ip))
                        .iter()
                        .cloned(),
                );
            }
            // Drop the profiler's own frames (the capture and the unwinder).
            let skip = frames
                .iter()
                .rposition(|f| f.contains("contention::Probe") || f.starts_with("backtrace::"))
                .map_or(0, |i| i + 1);
            let mut frames = frames.split_off(skip);
            frames.reverse();
            stacks.push((frames, ns, n));
        }
        if table.other.1 > 0 {
            stacks.push((
                vec!["[other stacks]".to_string()],
                table.other.0,
                table.other.1,
            ));
        }
        stacks.sort_by_key(|s| std::cmp::Reverse(s.1));
        ContentionProfile { stacks }
    }

    /// The profile in the "collapsed stacks" format flame graph tools read
    /// (`outer;...;inner WEIGHT` a line), weighted by wait nanoseconds.
    pub fn collapsed(&self) -> String {
        let mut out = String::new();
        for (frames, ns, _) in &self.stacks {
            if *ns == 0 {
                continue;
            }
            let line: Vec<String> = frames
                .iter()
                .map(|f| f.replace(';', ":").replace('\n', " "))
                .collect();
            let line = if line.is_empty() {
                "[unknown]".to_string()
            } else {
                line.join(";")
            };
            out.push_str(&line);
            out.push(' ');
            out.push_str(&ns.to_string());
            out.push('\n');
        }
        out
    }
}

/// The function names at `ip`, innermost inlined call first.
fn symbols(ip: usize) -> Vec<String> {
    let mut out = Vec::new();
    // The return address points after the call; look up the call itself.
    backtrace::resolve(ip.saturating_sub(1) as *mut std::ffi::c_void, |sym| {
        out.push(match sym.name() {
            Some(n) => format!("{n:#}"),
            None => format!("{ip:#x}"),
        });
    });
    if out.is_empty() {
        out.push(format!("{ip:#x}"));
    }
    out
}
