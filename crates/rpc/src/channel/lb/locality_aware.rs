//! `la`: locality-aware load balancing (bRPC's
//! `LocalityAwareLoadBalancer`): more traffic to servers that answer
//! sooner and have fewer calls outstanding.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rustc_hash::FxHashMap;

use super::local_snapshot::LocalSnapshot;
use super::weight_tree::WeightTree;
use super::{no_server, unique_addrs, LoadBalancer, ServerEntry};
use crate::channel::{AttemptOutcome, SelectInput};
use crate::RpcError;

/// `weight = SCALE / (latency_us × (inflight + 1))`: large enough that a
/// minute-long latency with thousands of calls in flight still has
/// weight 1 or more, small enough that the sum over 10⁶ servers fits.
const SCALE: i64 = 1 << 40;
/// The latency assumed for a server before its first outcome when no
/// other server has one either.
const DEFAULT_LATENCY_US: u64 = 1_000;
/// Latencies are capped (at ten minutes) so that error punishment cannot
/// overflow.
const MAX_LATENCY_US: u64 = 600_000_000;
/// Each outcome moves the latency average by 1/8 of the difference.
const EWMA_SHIFT: u32 = 3;

/// Picks servers in proportion to `1 / (latency × (inflight + 1))`:
/// `latency` is a moving average of the server's attempt latencies
/// ([`LoadBalancer::feedback`]), `inflight` its selects not yet fed back.
/// A slow server, or one that stops answering (its inflight count
/// grows), gets less traffic, and gets it back when it recovers, as
/// bRPC's `la` does.
///
/// A failed attempt — this side's failure, or an error the server
/// answered with ([`LoadBalancer::answered`]; `ELIMIT` excepted) —
/// counts as a latency of at least twice the server's average, so a
/// server failing fast does not attract traffic. A new
/// server starts at the average latency of the servers already known (it
/// gets its fair share until measured). Every weight is at least 1, so
/// a slow server keeps a trickle of picks that tell when it is fast
/// again.
///
/// Picks draw a point on the weights laid end to end and find its
/// server in a Fenwick tree of atomic weights: O(log n), no lock. A
/// server's weight is recomputed at each feedback, and at a select when
/// its inflight count reaches a power of two (2, 4, 8, ...: a server
/// that stops answering loses weight without feedback); it is written
/// back into the tree only when it changed by more than 1/8. Both keep
/// picks from writing the tree's shared nodes at every call.
/// An excluded pick is drawn again (a few times), then goes to the next
/// server not excluded.
///
/// Every select must be followed by one feedback for the server it
/// returned (the call engine does so for every attempt), or the server's
/// inflight count stays raised.
#[derive(Debug, Default)]
pub struct LocalityAwareLoadBalancer {
    /// Read through each thread's copy (`local_snapshot.rs`): no
    /// read-modify-write per read.
    list: LocalSnapshot<Snapshot>,
    /// Serializes list changes, which carry the stats over from the
    /// current snapshot. Picks never take it.
    reset: Mutex<()>,
}

/// A server's measurements; kept across list changes while the server
/// stays in the list.
#[derive(Debug)]
struct Stats {
    /// Moving average of attempt latencies, in microseconds.
    latency_us: AtomicU64,
    /// Whether an outcome was seen (the first replaces the starting
    /// guess).
    measured: AtomicBool,
    /// Selects minus feedbacks (briefly -1 when a feedback has no
    /// select, read as 0).
    inflight: AtomicI64,
}

impl Stats {
    fn new(latency_us: u64) -> Stats {
        Stats {
            latency_us: AtomicU64::new(latency_us),
            measured: AtomicBool::new(false),
            inflight: AtomicI64::new(0),
        }
    }

    fn weight(&self) -> i64 {
        let latency = self.latency_us.load(Ordering::Relaxed).max(1);
        let inflight = self.inflight.load(Ordering::Relaxed).max(0) as u64;
        let load = latency.saturating_mul(inflight.saturating_add(1));
        (SCALE as u64 / load).max(1) as i64
    }

    /// Folds an attempt of `latency_us` (a failure when `failed`) into the
    /// average.
    ///
    /// Plain loads and stores, written only on a change: a pick's
    /// feedback costs no read-modify-write here, and a server whose
    /// latency holds steady is not written at all. Two outcomes racing
    /// may lose one sample, not the average.
    fn record(&self, latency_us: u64, failed: bool) {
        let first = !self.measured.load(Ordering::Relaxed);
        if first {
            self.measured.store(true, Ordering::Relaxed);
        }
        let avg = self.latency_us.load(Ordering::Relaxed);
        let sample = if failed {
            latency_us.max(avg.saturating_mul(2))
        } else {
            latency_us
        }
        .clamp(1, MAX_LATENCY_US);
        let new = if first && !failed {
            sample
        } else {
            let (avg, sample) = (avg as i64, sample as i64);
            (avg + ((sample - avg) >> EWMA_SHIFT)) as u64
        };
        if new != avg {
            self.latency_us.store(new, Ordering::Relaxed);
        }
    }

    /// An attempt ended: one fewer in flight (never below 0: a
    /// feedback without its select, across a list change, is ignored).
    fn end_one(&self) {
        if self.inflight.fetch_sub(1, Ordering::Relaxed) <= 0 {
            self.inflight.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One server in a snapshot.
#[derive(Debug)]
struct Server {
    addr: SocketAddr,
    stats: Arc<Stats>,
    /// The weight this snapshot's tree holds for the server.
    weight: AtomicI64,
}

/// One server list, its weights and where each address is.
#[derive(Debug)]
struct Snapshot {
    servers: Vec<Server>,
    index: FxHashMap<SocketAddr, usize>,
    tree: WeightTree,
}

impl Default for Snapshot {
    fn default() -> Snapshot {
        Snapshot {
            servers: Vec::new(),
            index: FxHashMap::default(),
            tree: WeightTree::new(&[]),
        }
    }
}

impl Snapshot {
    /// Recomputes server `i`'s weight and writes it into the tree if it
    /// moved by more than 1/8.
    fn refresh(&self, i: usize) {
        let s = &self.servers[i];
        let new = s.stats.weight();
        let old = s.weight.load(Ordering::Relaxed);
        if (new - old).abs() <= old / 8 {
            return;
        }
        // The swap makes concurrent refreshes add deltas that sum to the
        // last weight written, so the tree stays consistent.
        let old = s.weight.swap(new, Ordering::Relaxed);
        if old != new {
            self.tree.add(i, new - old);
        }
    }

    /// A server drawn by weight, avoiding `excluded` when it can.
    fn draw(&self, excluded: &[SocketAddr]) -> usize {
        let n = self.servers.len();
        let draw = || match self.tree.total() {
            total if total > 0 => self.tree.find(fastrand::i64(0..total)),
            _ => fastrand::usize(..n),
        };
        let first = draw();
        if !excluded.contains(&self.servers[first].addr) {
            return first;
        }
        (0..3)
            .map(|_| draw())
            .find(|&i| !excluded.contains(&self.servers[i].addr))
            .unwrap_or_else(|| super::first_allowed(n, first, |i| self.servers[i].addr, excluded))
    }
}

impl LocalityAwareLoadBalancer {
    /// An empty balancer.
    pub fn new() -> LocalityAwareLoadBalancer {
        LocalityAwareLoadBalancer::default()
    }
}

impl LoadBalancer for LocalityAwareLoadBalancer {
    fn reset(&self, servers: &[ServerEntry]) -> usize {
        let _serial = self.reset.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.list.load_full();
        let known: Vec<_> = old
            .servers
            .iter()
            .filter(|s| s.stats.measured.load(Ordering::Relaxed))
            .map(|s| s.stats.latency_us.load(Ordering::Relaxed))
            .collect();
        let start_latency = match known.len() as u64 {
            0 => DEFAULT_LATENCY_US,
            k => known.iter().sum::<u64>() / k,
        };
        let servers: Vec<Server> = unique_addrs(servers)
            .into_iter()
            .map(|addr| {
                let stats = match old.index.get(&addr) {
                    Some(&i) => old.servers[i].stats.clone(),
                    None => Arc::new(Stats::new(start_latency)),
                };
                let weight = AtomicI64::new(stats.weight());
                Server {
                    addr,
                    stats,
                    weight,
                }
            })
            .collect();
        let weights: Vec<i64> = servers
            .iter()
            .map(|s| s.weight.load(Ordering::Relaxed))
            .collect();
        let index = servers
            .iter()
            .enumerate()
            .map(|(i, s)| (s.addr, i))
            .collect();
        let n = servers.len();
        self.list.store(Arc::new(Snapshot {
            servers,
            index,
            tree: WeightTree::new(&weights),
        }));
        n
    }

    fn select(&self, input: &SelectInput<'_>) -> Result<SocketAddr, RpcError> {
        self.list.with(|list| {
            if list.servers.is_empty() {
                return Err(no_server(self.name()));
            }
            let i = list.draw(input.excluded);
            let server = &list.servers[i];
            let inflight = server.stats.inflight.fetch_add(1, Ordering::Relaxed) + 1;
            // Refreshing at every select would write the tree twice per
            // call (inflight 0 -> 1 halves the weight, the feedback
            // doubles it back): feedbacks refresh, and a select only when
            // the count reaches a power of two, so a server that stops
            // answering still loses its weight (within a factor of 2)
            // without any feedback.
            if inflight >= 2 && (inflight as u64).is_power_of_two() {
                list.refresh(i);
            }
            Ok(server.addr)
        })
    }

    fn feedback(&self, outcome: &AttemptOutcome<'_>) {
        self.list.with(|list| {
            // A server that left the list since its select has nothing
            // to update.
            let Some(&i) = list.index.get(&outcome.server) else {
                return;
            };
            let stats = &list.servers[i].stats;
            stats.end_one();
            // A cancelled attempt's latency is only when the caller gave
            // up: no sample.
            let cancelled = outcome
                .error
                .is_some_and(crate::channel::cancel::is_cancelled);
            if !cancelled {
                let latency_us = u64::try_from(outcome.latency.as_micros()).unwrap_or(u64::MAX);
                stats.record(latency_us, outcome.error.is_some());
            }
            list.refresh(i);
        })
    }

    /// An error the server answered with punishes it as a failed
    /// attempt does: a sample of at least twice its average latency, on
    /// top of the attempt's own (its feedback saw only that a response
    /// came). `ELIMIT` does not: an overloaded server says so fast, and
    /// its inflight count already steers traffic away.
    fn answered(&self, outcome: &AttemptOutcome<'_>) {
        let Some(e) = outcome.error else { return };
        if e.code == crate::errno::ELIMIT {
            return;
        }
        self.list.with(|list| {
            let Some(&i) = list.index.get(&outcome.server) else {
                return;
            };
            let latency_us = u64::try_from(outcome.latency.as_micros()).unwrap_or(u64::MAX);
            list.servers[i].stats.record(latency_us, true);
            list.refresh(i);
        })
    }

    fn name(&self) -> &'static str {
        "la"
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use std::time::Duration;

    /// Picks `rounds` times, feeding each pick back at once with the
    /// latency `latency_ms(server index)`; counts per server.
    fn run(
        lb: &LocalityAwareLoadBalancer,
        n: usize,
        rounds: usize,
        latency_ms: impl Fn(usize) -> u64,
    ) -> Vec<usize> {
        let mut counts = vec![0; n];
        for _ in 0..rounds {
            let a = lb.select(&SelectInput::new(&[], None)).unwrap();
            let i = (a.port() - 10000) as usize;
            counts[i] += 1;
            let latency = Duration::from_millis(latency_ms(i));
            lb.feedback(&AttemptOutcome::new(a, None, latency));
        }
        counts
    }

    #[test]
    fn a_server_answering_errors_fast_loses_traffic() {
        let lb = LocalityAwareLoadBalancer::new();
        lb.reset(&servers(2));
        // Server 0 answers errors in 1 ms, server 1 successes in 5 ms.
        let mut counts = [0; 2];
        for round in 0..6_000 {
            let a = lb.select(&SelectInput::new(&[], None)).unwrap();
            let i = (a.port() - 10000) as usize;
            let latency = Duration::from_millis(if i == 0 { 1 } else { 5 });
            lb.feedback(&AttemptOutcome::new(a, None, latency));
            let error = RpcError::new(crate::errno::EINTERNAL, "x");
            let answer = (i == 0).then_some(&error);
            lb.answered(&AttemptOutcome::new(a, answer, latency));
            if round >= 1_000 {
                counts[i] += 1;
            }
        }
        assert!(counts[0] < counts[1], "{counts:?}");
        // ELIMIT is not punished: a fast answer keeps its traffic.
        let lb = LocalityAwareLoadBalancer::new();
        lb.reset(&servers(2));
        let limit = RpcError::new(crate::errno::ELIMIT, "x");
        let mut counts = [0; 2];
        for _ in 0..3_000 {
            let a = lb.select(&SelectInput::new(&[], None)).unwrap();
            let i = (a.port() - 10000) as usize;
            let latency = Duration::from_millis(if i == 0 { 1 } else { 5 });
            lb.feedback(&AttemptOutcome::new(a, None, latency));
            lb.answered(&AttemptOutcome::new(a, (i == 0).then_some(&limit), latency));
            counts[i] += 1;
        }
        assert!(counts[0] > counts[1], "{counts:?}");
    }

    #[test]
    fn slow_server_loses_traffic() {
        let lb = LocalityAwareLoadBalancer::new();
        lb.reset(&servers(3));
        let slow = |i| if i == 2 { 200 } else { 1 };
        run(&lb, 3, 2_000, slow);
        let counts = run(&lb, 3, 10_000, slow);
        assert!(counts[2] < 1_000, "{counts:?}");
        assert!(counts[2] > 0, "a slow server keeps a trickle: {counts:?}");
        // It recovers: once as fast as the others, it gets its share back.
        run(&lb, 3, 20_000, |_| 1);
        let counts = run(&lb, 3, 9_000, |_| 1);
        assert!(counts[2] > 2_000, "{counts:?}");
    }

    #[test]
    fn stuck_server_loses_traffic() {
        // Server 0 never answers (no feedback): its inflight count grows.
        let lb = LocalityAwareLoadBalancer::new();
        lb.reset(&servers(2));
        let mut counts = [0; 2];
        for _ in 0..2_000 {
            let a = lb.select(&SelectInput::new(&[], None)).unwrap();
            counts[(a.port() - 10000) as usize] += 1;
            if a == addr(1) {
                lb.feedback(&AttemptOutcome::new(a, None, Duration::from_millis(1)));
            }
        }
        assert!(counts[0] < 200, "{counts:?}");
    }

    #[test]
    fn failures_lose_traffic() {
        let lb = LocalityAwareLoadBalancer::new();
        lb.reset(&servers(2));
        let e = RpcError::new(libc::ECONNREFUSED, "refused");
        let mut counts = [0; 2];
        for round in 0..4_000 {
            let a = lb.select(&SelectInput::new(&[], None)).unwrap();
            let failed = a == addr(0);
            if round >= 2_000 {
                counts[(a.port() - 10000) as usize] += 1;
            }
            // Server 0 fails fast: 10 µs, against 1 ms successes.
            let (error, latency) = match failed {
                true => (Some(&e), Duration::from_micros(10)),
                false => (None, Duration::from_millis(1)),
            };
            lb.feedback(&AttemptOutcome::new(a, error, latency));
        }
        assert!(counts[0] < 200, "{counts:?}");
    }

    #[test]
    fn stats_survive_a_list_change() {
        let lb = LocalityAwareLoadBalancer::new();
        lb.reset(&servers(2));
        run(&lb, 2, 2_000, |i| if i == 1 { 200 } else { 1 });
        // Server 2 joins at the average latency; server 1 stays slow.
        lb.reset(&servers(3));
        let counts = run(&lb, 3, 3_000, |i| if i == 1 { 200 } else { 1 });
        assert!(counts[1] < 300, "{counts:?}");
        assert!(counts[2] > 600, "{counts:?}");
    }

    #[test]
    fn excluded_is_avoided() {
        let lb = LocalityAwareLoadBalancer::new();
        lb.reset(&servers(3));
        // Make server 0 by far the heaviest, then exclude it.
        run(&lb, 3, 1_000, |i| if i == 0 { 1 } else { 500 });
        for _ in 0..200 {
            let a = lb.select(&SelectInput::new(&[addr(0)], None)).unwrap();
            assert_ne!(a, addr(0));
            lb.feedback(&AttemptOutcome::new(a, None, Duration::from_millis(500)));
        }
    }
}
