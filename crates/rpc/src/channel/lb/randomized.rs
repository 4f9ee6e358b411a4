//! `random`: a server chosen uniformly at random (bRPC's
//! `RandomizedLoadBalancer`).

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::{first_allowed, no_server, unique_addrs, LoadBalancer, ServerEntry};
use crate::channel::SelectInput;
use crate::RpcError;

/// Picks a server uniformly at random with a thread-local generator
/// (`fastrand`: no lock, no shared counter, so picking threads never
/// contend). An excluded pick goes to the next server in the list.
#[derive(Debug, Default)]
pub struct RandomizedLoadBalancer {
    servers: ArcSwap<Vec<SocketAddr>>,
}

impl RandomizedLoadBalancer {
    /// An empty balancer.
    pub fn new() -> RandomizedLoadBalancer {
        RandomizedLoadBalancer::default()
    }
}

impl LoadBalancer for RandomizedLoadBalancer {
    fn reset(&self, servers: &[ServerEntry]) -> usize {
        let addrs = unique_addrs(servers);
        let n = addrs.len();
        self.servers.store(Arc::new(addrs));
        n
    }

    fn select(&self, input: &SelectInput<'_>) -> Result<SocketAddr, RpcError> {
        let servers = self.servers.load();
        let n = servers.len();
        if n == 0 {
            return Err(no_server(self.name()));
        }
        let start = fastrand::usize(..n);
        Ok(servers[first_allowed(n, start, |i| servers[i], input.excluded)])
    }

    fn name(&self) -> &'static str {
        "random"
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;

    #[test]
    fn roughly_even() {
        let lb = RandomizedLoadBalancer::new();
        lb.reset(&servers(4));
        // 2,500 expected per server; ±10% is over 5 standard deviations.
        for c in counts(&lb, 4, 10_000) {
            assert!((2250..=2750).contains(&c), "{c}");
        }
    }

    #[test]
    fn excluded_is_avoided() {
        let lb = RandomizedLoadBalancer::new();
        lb.reset(&servers(3));
        let excluded = [addr(0), addr(2)];
        for _ in 0..100 {
            let a = lb.select(&SelectInput::new(&excluded, None)).unwrap();
            assert_eq!(a, addr(1));
        }
    }
}
