//! `rr`: each server in turn (bRPC's `RoundRobinLoadBalancer`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{AddrList, LoadBalancer, ServerEntry};
use crate::channel::SelectInput;
use crate::RpcError;

/// How many consecutive picks of a burst go to the same server before
/// the turn passes to the next (see [`RoundRobinLoadBalancer`]).
///
/// A run rather than a single pick: the callers one response read wakes
/// pick one after the other, and when their requests go to one server
/// they leave in one `writev` and come back in one read, as on a channel
/// to one server. Turned per pick, each server's connection carried a
/// `1/n` share of every such burst, and every per-batch cost (`writev`,
/// read, epoll event, reader wake-up) was paid `n` times as often.
pub const RR_RUN: usize = 16;

/// Picks the servers of the list in turn. A pick made while other fibers
/// wait on the picking worker (a burst: the callers one response woke)
/// takes its turn from a counter of burst picks that passes to the next
/// server every [`RR_RUN`] picks, so the burst's requests stay together
/// on a few connections; any other pick (a lone caller, a plain thread)
/// takes its turn from a counter that passes every pick, as bRPC's does.
/// Each counter alone is even — over any `k × n` consecutive lone picks
/// each of `n` servers gets `k`, over any window of burst picks a server
/// gets at most `RR_RUN` more or fewer than another — so their sum is,
/// whatever the mix (when none is excluded and the list does not
/// change). An excluded server's turn goes to the next server in the
/// list.
#[derive(Debug, Default)]
pub struct RoundRobinLoadBalancer {
    servers: AddrList,
    next: AtomicUsize,
    next_burst: AtomicUsize,
}

impl RoundRobinLoadBalancer {
    /// An empty balancer.
    pub fn new() -> RoundRobinLoadBalancer {
        RoundRobinLoadBalancer::default()
    }

    /// The index of the next of `n` servers, for a pick in a burst or
    /// not.
    fn turn(&self, n: usize, in_burst: bool) -> usize {
        // Relaxed: the counters only spread picks, they order nothing.
        if in_burst {
            self.next_burst.fetch_add(1, Ordering::Relaxed) / RR_RUN % n
        } else {
            self.next.fetch_add(1, Ordering::Relaxed) % n
        }
    }
}

impl LoadBalancer for RoundRobinLoadBalancer {
    fn reset(&self, servers: &[ServerEntry]) -> usize {
        self.servers.reset(servers)
    }

    fn select(&self, input: &SelectInput<'_>) -> Result<SocketAddr, RpcError> {
        self.servers.pick(self.name(), input.excluded, |n| {
            self.turn(n, fibrpc_fiber::has_queued_fibers())
        })
    }

    fn name(&self) -> &'static str {
        "rr"
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;

    #[test]
    fn each_server_in_turn() {
        let lb = RoundRobinLoadBalancer::new();
        assert_eq!(lb.reset(&servers(4)), 4);
        assert_eq!(counts(&lb, 4, 1000), vec![250; 4]);
    }

    #[test]
    fn a_burst_runs_on_one_server_at_a_time() {
        let lb = RoundRobinLoadBalancer::new();
        let picks: Vec<usize> = (0..3 * RR_RUN).map(|_| lb.turn(3, true)).collect();
        for (run, chunk) in picks.chunks(RR_RUN).enumerate() {
            assert!(chunk.iter().all(|&i| i == run), "{run}: {chunk:?}");
        }
        // Lone picks keep turning per pick meanwhile.
        let lone: Vec<usize> = (0..6).map(|_| lb.turn(3, false)).collect();
        assert_eq!(lone, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn every_window_is_even_whatever_the_mix() {
        // Bursts of six picks between lone picks: with one counter for
        // both, the lone picks would all fall on one server.
        let lb = RoundRobinLoadBalancer::new();
        let mut picks = Vec::new();
        for i in 0..3000 {
            let burst = i % 7 != 0;
            picks.push(lb.turn(3, burst));
        }
        for window in [60, 300, 3000] {
            for w in picks.windows(window).step_by(7) {
                let mut c = [0usize; 3];
                w.iter().for_each(|&i| c[i] += 1);
                for n in c {
                    assert!(n.abs_diff(window / 3) <= RR_RUN + 2, "{window}: {c:?}");
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
}
