//! The requests a server is running, each with its handler's name and
//! start time: what a stop that outlasts its grace period reports
//! ([`Server::join`](super::Server::join)).
//!
//! Every request passes through here twice (in and out), so the table is
//! sharded: each thread keeps to one shard, found through a thread-local
//! index, and its lock is almost never contended. Memory is one slot per
//! request running at once; freed slots are reused.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Which handler a request runs.
#[derive(Clone, Debug)]
pub(crate) enum Handler {
    /// A method of a service: `service.method`.
    Method {
        service: &'static str,
        method: &'static str,
    },
    /// A user HTTP handler, by the path it was added under.
    Http(Arc<str>),
}

impl fmt::Display for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Handler::Method { service, method } => write!(f, "{service}.{method}"),
            Handler::Http(path) => write!(f, "HTTP {path}"),
        }
    }
}

/// A request's place in the table, to take it out again.
#[derive(Debug)]
pub(crate) struct Ticket {
    shard: u32,
    slot: u32,
}

/// The running requests. See the module docs.
pub(crate) struct RunningRequests {
    shards: Box<[Shard]>,
}

/// One shard on its own cache lines, so two threads' shards never share
/// one.
#[repr(align(128))]
#[derive(Default)]
struct Shard(Mutex<Slots>);

#[derive(Default)]
struct Slots {
    entries: Vec<Option<(Handler, Instant)>>,
    free: Vec<u32>,
}

impl Shard {
    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl RunningRequests {
    /// A table with a few shards per core.
    pub(crate) fn new() -> RunningRequests {
        let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
        RunningRequests {
            shards: (0..(cores * 4).clamp(4, 256))
                .map(|_| Shard::default())
                .collect(),
        }
    }

    /// Lists a request of `handler` that started at `since`.
    pub(crate) fn insert(&self, handler: Handler, since: Instant) -> Ticket {
        let shard = this_thread_shard() % self.shards.len();
        let mut s = self.shards[shard].lock();
        let slot = match s.free.pop() {
            Some(i) => {
                s.entries[i as usize] = Some((handler, since));
                i
            }
            None => {
                s.entries.push(Some((handler, since)));
                (s.entries.len() - 1) as u32
            }
        };
        Ticket {
            shard: shard as u32,
            slot,
        }
    }

    /// Takes a request off the list (from any thread).
    pub(crate) fn remove(&self, ticket: Ticket) {
        let mut s = self.shards[ticket.shard as usize].lock();
        if s.entries[ticket.slot as usize].take().is_some() {
            s.free.push(ticket.slot);
        }
    }

    /// The requests running now and how long each has run, longest first.
    pub(crate) fn snapshot(&self) -> Vec<(Handler, Duration)> {
        let now = Instant::now();
        let mut all: Vec<(Handler, Duration)> = self
            .shards
            .iter()
            .flat_map(|s| {
                s.lock()
                    .entries
                    .iter()
                    .flatten()
                    .map(|(h, since)| (h.clone(), now.saturating_duration_since(*since)))
                    .collect::<Vec<_>>()
            })
            .collect();
        all.sort_by_key(|(_, ran)| std::cmp::Reverse(*ran));
        all
    }
}

/// This thread's shard number (modulo the table's size): threads are
/// numbered in the order they first list a request.
fn this_thread_shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    SHARD.with(|s| *s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method(m: &'static str) -> Handler {
        Handler::Method {
            service: "example.EchoService",
            method: m,
        }
    }

    #[test]
    fn lists_requests_until_removed_and_reuses_slots() {
        let t = RunningRequests::new();
        let early = Instant::now() - Duration::from_secs(3);
        let a = t.insert(method("Slow"), early);
        let b = t.insert(Handler::Http("/big".into()), Instant::now());
        let names: Vec<String> = t.snapshot().iter().map(|(h, _)| h.to_string()).collect();
        assert_eq!(names, ["example.EchoService.Slow", "HTTP /big"]);
        assert!(t.snapshot()[0].1 >= Duration::from_secs(3));
        t.remove(a);
        let c = t.insert(method("Again"), Instant::now());
        assert_eq!(c.slot, 0, "the freed slot is reused");
        t.remove(b);
        t.remove(c);
        assert!(t.snapshot().is_empty());
    }

    #[test]
    fn removes_from_another_thread() {
        let t = Arc::new(RunningRequests::new());
        let ticket = t.insert(method("Echo"), Instant::now());
        let t2 = t.clone();
        std::thread::spawn(move || t2.remove(ticket))
            .join()
            .unwrap();
        assert!(t.snapshot().is_empty());
    }
}
