//! `rr`: each server in turn (bRPC's `RoundRobinLoadBalancer`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{AddrList, LoadBalancer, ServerEntry};
use crate::channel::SelectInput;
use crate::RpcError;

/// Picks the servers of the list in turn: one shared atomic counter, so
/// over any `k × n` consecutive picks each of `n` servers gets `k`
/// (when none is excluded and the list does not change). An excluded
/// server's turn goes to the next server in the list.
#[derive(Debug, Default)]
pub struct RoundRobinLoadBalancer {
    servers: AddrList,
    next: AtomicUsize,
}

impl RoundRobinLoadBalancer {
    /// An empty balancer.
    pub fn new() -> RoundRobinLoadBalancer {
        RoundRobinLoadBalancer::default()
    }
}

impl LoadBalancer for RoundRobinLoadBalancer {
    fn reset(&self, servers: &[ServerEntry]) -> usize {
        self.servers.reset(servers)
    }

    fn select(&self, input: &SelectInput<'_>) -> Result<SocketAddr, RpcError> {
        // Relaxed: the counter only spreads picks, it orders nothing.
        self.servers.pick(self.name(), input.excluded, |n| {
            self.next.fetch_add(1, Ordering::Relaxed) % n
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
