//! `rr`: each server in turn (bRPC's `RoundRobinLoadBalancer`).

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use super::local_snapshot::LocalSnapshot;
use super::{first_allowed, no_server, unique_addrs, LoadBalancer, ServerEntry};
use crate::channel::{AttemptOutcome, SelectInput};
use crate::RpcError;

/// How many picks of bursts a server takes per turn (see
/// [`RoundRobinLoadBalancer`]); a burst under way when they are used up
/// goes on there for up to as many more, which the server's next turn
/// gives back.
///
/// A run rather than a single pick: the callers one response read wakes
/// pick one after the other, and when their requests go to one server
/// they leave in one `writev` and come back in one read, as on a channel
/// to one server. Turned per pick, each server's connection carried a
/// `1/n` share of every such burst, and every per-batch cost (`writev`,
/// read, epoll event, reader wake-up) was paid `n` times as often.
///
/// Short runs all the same: with runs of 16, the 16 callers of an echo
/// benchmark over three server processes became one burst that went to
/// one server at a time, so two servers idled while the third worked
/// (0.8× the calls per second of the same callers split among the
/// servers by hand). Runs of 6 split such a burst over the servers,
/// which then work at once, and still send ~5 requests per write
/// (`fibrpc_press --server list://A,B,C --lb rr --concurrency 16
/// --threads 1` against three `echo_server` processes, a press built
/// with each run length in alternated rounds: 1.15× the calls per second
/// of runs of 16 at the same caller CPU per call).
pub const RR_RUN: usize = 6;

/// [`RR_RUN`] as the run budget's type.
const RUN: i32 = RR_RUN as i32;

thread_local! {
    /// The balancer (its address) and the server (its [`burst_key`]) of
    /// the last response an attempt of this thread heard: the callers a
    /// read of one connection woke all carry the same one, which marks
    /// their picks as one burst.
    static ANSWERED: Cell<(usize, u64)> = const { Cell::new((0, 0)) };
}

/// Picks the servers of the list in turn.
///
/// A pick made in a burst — other fibers wait on the picking worker (the
/// callers one response woke), or the caller was answered by the same
/// server as the burst before it — takes the server whose turn it is
/// among burst picks: each server in turn takes [`RR_RUN`] of them, so
/// the requests of a burst stay together on one connection. The callers
/// woken by one read are kept together: a burst started before the turn
/// is used up goes on there (up to [`RR_RUN`] picks more), and the
/// picks taken past the turn come off that server's next turn (deficit
/// round robin). Over any window of burst picks a server gets at most
/// `2 × RR_RUN` more or fewer than another.
///
/// Any other pick (a lone caller, a plain thread) takes its turn from a
/// counter that passes every pick, as bRPC's does: over any `k × n`
/// consecutive lone picks each of `n` servers gets `k`. Each kind alone
/// is even, so their sum is, whatever the mix (when none is excluded and
/// the list does not change). An excluded server's turn goes to the next
/// server in the list.
#[derive(Debug)]
pub struct RoundRobinLoadBalancer {
    /// Read through each thread's copy (`local_snapshot.rs`): a pick
    /// costs no `ArcSwap` debt-slot read-modify-writes.
    servers: LocalSnapshot<RrList>,
    /// Lone picks' turn.
    next: AtomicUsize,
    /// Burst picks' turn: the server's index in the high 32 bits, the
    /// picks left in its turn (an `i32`, negative past it) in the low 32.
    run: AtomicU64,
    /// The [`burst_key`] of the last burst pick's caller (0: none).
    burst: AtomicU64,
}

/// The list, and per server what its last turn of burst picks took past
/// [`RR_RUN`], taken off its next turn.
#[derive(Debug, Default)]
struct RrList {
    addrs: Vec<SocketAddr>,
    carry: Box<[AtomicU32]>,
}

impl Default for RoundRobinLoadBalancer {
    fn default() -> Self {
        RoundRobinLoadBalancer {
            servers: LocalSnapshot::default(),
            next: AtomicUsize::new(0),
            run: AtomicU64::new(run_state(0, RUN)),
            burst: AtomicU64::new(0),
        }
    }
}

/// The packed burst turn: server `index`, `left` picks left in its turn.
fn run_state(index: usize, left: i32) -> u64 {
    (index as u64) << 32 | u64::from(left as u32)
}

/// A caller's answering server as a nonzero number, equal for equal
/// addresses (an IPv6 address may share its number with another: the
/// number only groups picks into bursts).
fn burst_key(addr: SocketAddr) -> u64 {
    match addr {
        SocketAddr::V4(a) => 1 << 63 | u64::from(u32::from(*a.ip())) << 16 | u64::from(a.port()),
        SocketAddr::V6(a) => {
            let ip = u128::from(*a.ip());
            ((ip as u64) ^ ((ip >> 64) as u64)).rotate_left(16) ^ u64::from(a.port()) | 1
        }
    }
}

impl RoundRobinLoadBalancer {
    /// An empty balancer.
    pub fn new() -> RoundRobinLoadBalancer {
        RoundRobinLoadBalancer::default()
    }

    /// This balancer's identity in [`ANSWERED`].
    fn id(&self) -> usize {
        self as *const Self as usize
    }

    /// The index of the next lone pick of `n` servers.
    fn lone_turn(&self, n: usize) -> usize {
        if n == 1 {
            // Nothing to spread: no shared counter to bump.
            return 0;
        }
        // Relaxed: the counters only spread picks, they order nothing.
        self.next.fetch_add(1, Relaxed) % n
    }

    /// The index of the next burst pick of `list`'s `n` servers by a
    /// caller answered last by the server of `key` (0: unknown, a burst
    /// of its own).
    fn burst_turn(&self, list: &RrList, n: usize, key: u64) -> usize {
        if n == 1 {
            return 0;
        }
        let new_burst = key == 0 || self.burst.load(Relaxed) != key;
        if new_burst && key != 0 {
            self.burst.store(key, Relaxed);
        }
        let mut cur = self.run.load(Relaxed);
        loop {
            let (index, left) = ((cur >> 32) as usize % n, cur as u32 as i32);
            // The turn goes on while picks are left, and for the rest
            // of a burst up to RUN picks past it.
            let (next, pick) = if left > 0 || !new_burst && left > -RUN {
                (run_state(index, left - 1), index)
            } else {
                let to = (index + 1) % n;
                let carry = list.carry[to].load(Relaxed).min(RR_RUN as u32) as i32;
                (run_state(to, RUN - carry - 1), to)
            };
            match self.run.compare_exchange_weak(cur, next, Relaxed, Relaxed) {
                Ok(_) => {
                    if pick != index {
                        // Taken past the turn: off the server's next one.
                        list.carry[index].store(left.min(0).unsigned_abs(), Relaxed);
                    }
                    return pick;
                }
                Err(c) => cur = c,
            }
        }
    }

    /// The [`burst_key`] of the server that answered this thread's last
    /// attempt through this balancer, 0 if unknown.
    fn answered_here(&self) -> u64 {
        let (id, key) = ANSWERED.with(Cell::get);
        if id == self.id() {
            key
        } else {
            0
        }
    }
}

impl LoadBalancer for RoundRobinLoadBalancer {
    fn reset(&self, servers: &[ServerEntry]) -> usize {
        let addrs = unique_addrs(servers);
        let n = addrs.len();
        let carry = addrs.iter().map(|_| AtomicU32::new(0)).collect();
        self.servers.store(Arc::new(RrList { addrs, carry }));
        n
    }

    fn select(&self, input: &SelectInput<'_>) -> Result<SocketAddr, RpcError> {
        self.servers.with(|list| {
            let n = list.addrs.len();
            if n <= 1 {
                // One server (or none): no turn to take.
                return list
                    .addrs
                    .first()
                    .copied()
                    .ok_or_else(|| no_server(self.name()));
            }
            let key = self.answered_here();
            let in_burst =
                fibrpc_fiber::has_queued_fibers() || key != 0 && self.burst.load(Relaxed) == key;
            let start = if in_burst {
                self.burst_turn(list, n, key)
            } else {
                self.lone_turn(n)
            };
            let i = first_allowed(n, start, |i| list.addrs[i], input.excluded);
            Ok(list.addrs[i])
        })
    }

    fn feedback(&self, outcome: &AttemptOutcome<'_>) {
        let key = match outcome.error {
            None => burst_key(outcome.server),
            Some(_) => 0,
        };
        ANSWERED.with(|a| a.set((self.id(), key)));
    }

    fn name(&self) -> &'static str {
        "rr"
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::test_util::*;
    use super::*;

    fn list(n: usize) -> (RoundRobinLoadBalancer, Arc<RrList>) {
        let lb = RoundRobinLoadBalancer::new();
        lb.reset(&servers(n));
        let l = lb.servers.load_full();
        (lb, l)
    }

    #[test]
    fn each_server_in_turn() {
        let lb = RoundRobinLoadBalancer::new();
        assert_eq!(lb.reset(&servers(4)), 4);
        assert_eq!(counts(&lb, 4, 1000), vec![250; 4]);
    }

    #[test]
    fn a_burst_runs_on_one_server_at_a_time() {
        // Every pick a burst of its own: turns of exactly RR_RUN.
        let (lb, l) = list(3);
        let picks: Vec<usize> = (0..6 * RR_RUN).map(|_| lb.burst_turn(&l, 3, 0)).collect();
        for (run, chunk) in picks.chunks(RR_RUN).enumerate() {
            assert!(chunk.iter().all(|&i| i == run % 3), "{run}: {chunk:?}");
        }
        // Lone picks keep turning per pick meanwhile.
        let lone: Vec<usize> = (0..6).map(|_| lb.lone_turn(3)).collect();
        assert_eq!(lone, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn a_burst_is_not_split_and_its_excess_comes_off_the_next_turn() {
        let (lb, l) = list(3);
        let burst = |lb: &RoundRobinLoadBalancer, key: u64, len: usize| -> Vec<usize> {
            (0..len).map(|_| lb.burst_turn(&l, 3, key)).collect()
        };
        const R: usize = RR_RUN;
        // R - 2 picks, then a burst of 4 that passes the turn's end: whole.
        assert_eq!(burst(&lb, 1, R - 2), [0; R - 2]);
        assert_eq!(burst(&lb, 2, 4), [0; 4]);
        // The next burst takes the next server.
        assert_eq!(burst(&lb, 3, R), [1; R]);
        assert_eq!(burst(&lb, 4, R), [2; R]);
        // Server 0 took 2 past its turn: its next turn is R - 2 picks.
        assert_eq!(burst(&lb, 5, R - 2), [0; R - 2]);
        assert_eq!(burst(&lb, 6, 1), [1]);
        // A burst longer than two turns is cut there.
        let (lb, l) = list(3);
        let long: Vec<usize> = (0..3 * RR_RUN).map(|_| lb.burst_turn(&l, 3, 9)).collect();
        assert_eq!(long[..2 * RR_RUN], [0; 2 * RR_RUN]);
        assert_eq!(long[2 * RR_RUN..], [1; RR_RUN]);
    }

    #[test]
    fn bursts_of_any_size_stay_whole_and_even() {
        let (lb, l) = list(3);
        let mut total = [0usize; 3];
        for b in 0..3000u64 {
            // Up to a turn and one pick: a burst that starts on a turn's
            // last pick still finishes there.
            // (5 is coprime with `RR_RUN + 1`, so every size comes up.)
            let size = 1 + (b * 5 % (RR_RUN as u64 + 1)) as usize;
            let picks: Vec<usize> = (0..size).map(|_| lb.burst_turn(&l, 3, b + 1)).collect();
            assert!(picks.iter().all(|&i| i == picks[0]), "{b}: {picks:?}");
            picks.iter().for_each(|&i| total[i] += 1);
            let (max, min) = (total.iter().max().unwrap(), total.iter().min().unwrap());
            assert!(max - min <= 2 * RR_RUN, "{b}: {total:?}");
        }
    }

    #[test]
    fn every_window_is_even_whatever_the_mix() {
        // Bursts of six picks between lone picks: with one counter for
        // both, the lone picks would all fall on one server.
        let (lb, l) = list(3);
        let mut picks = Vec::new();
        for i in 0..3000u64 {
            let burst = i % 7 != 0;
            picks.push(if burst {
                lb.burst_turn(&l, 3, i / 7 + 1)
            } else {
                lb.lone_turn(3)
            });
        }
        for window in [60, 300, 3000] {
            for w in picks.windows(window).step_by(7) {
                let mut c = [0usize; 3];
                w.iter().for_each(|&i| c[i] += 1);
                for n in c {
                    assert!(n.abs_diff(window / 3) <= 2 * RR_RUN + 2, "{window}: {c:?}");
                }
            }
        }
        let mut c = [0usize; 3];
        picks.iter().for_each(|&i| c[i] += 1);
        // 1000 expected each: within 2 %.
        for n in c {
            assert!(n.abs_diff(1000) <= 20, "{c:?}");
        }
    }

    #[test]
    fn callers_answered_by_the_last_bursts_server_join_its_burst() {
        let (lb, l) = list(3);
        let answered = |lb: &RoundRobinLoadBalancer, port: usize| {
            lb.feedback(&AttemptOutcome::new(addr(port), None, Duration::ZERO));
        };
        // A burst of callers answered by server 2 starts on server 0.
        answered(&lb, 2);
        assert_eq!(lb.burst_turn(&l, 3, lb.answered_here()), 0);
        // Its last caller, picking with no other fiber queued, joins it
        // rather than taking a lone turn.
        for _ in 0..3 {
            answered(&lb, 2);
            assert_eq!(lb.select(&SelectInput::new(&[], None)).unwrap(), addr(0));
        }
        // A caller answered by another server, or with an error, picks
        // alone: per pick.
        answered(&lb, 1);
        let lone = lb.select(&SelectInput::new(&[], None)).unwrap();
        lb.feedback(&AttemptOutcome::new(
            addr(2),
            Some(&RpcError::new(1, "x")),
            Duration::ZERO,
        ));
        assert_eq!(lb.answered_here(), 0);
        let next = lb.select(&SelectInput::new(&[], None)).unwrap();
        assert_ne!(lone, next);
        // Another balancer's answer is not this one's.
        let (other, _) = list(3);
        answered(&other, 2);
        assert_eq!(lb.answered_here(), 0);
    }

    #[test]
    fn excluded_turn_goes_to_the_next() {
        let lb = RoundRobinLoadBalancer::new();
        lb.reset(&servers(3));
        let excluded = [addr(1)];
        for _ in 0..30 {
            let a = lb.select(&SelectInput::new(&excluded, None)).unwrap();
            assert_ne!(a, addr(1));
        }
        let all = [addr(0), addr(1), addr(2)];
        assert!(lb.select(&SelectInput::new(&all, None)).is_ok());
    }

    #[test]
    fn addresses_have_distinct_burst_keys() {
        let a = burst_key(addr(0));
        assert_ne!(a, 0);
        assert_ne!(a, burst_key(addr(1)));
        assert_eq!(a, burst_key(addr(0)));
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        assert_ne!(burst_key(v6), 0);
    }
}
