//! `random`: a server chosen uniformly at random (bRPC's
//! `RandomizedLoadBalancer`).

use std::net::SocketAddr;

use super::{AddrList, LoadBalancer, ServerEntry};
use crate::channel::SelectInput;
use crate::RpcError;

/// Picks a server uniformly at random with a thread-local generator
/// (`fastrand`: no lock, no shared counter, so picking threads never
/// contend). An excluded pick goes to the next server in the list.
#[derive(Debug, Default)]
pub struct RandomizedLoadBalancer {
    servers: AddrList,
}

impl RandomizedLoadBalancer {
    /// An empty balancer.
    pub fn new() -> RandomizedLoadBalancer {
        RandomizedLoadBalancer::default()
    }
}

impl LoadBalancer for RandomizedLoadBalancer {
    fn reset(&self, servers: &[ServerEntry]) -> usize {
        self.servers.reset(servers)
    }

    fn select(&self, input: &SelectInput<'_>) -> Result<SocketAddr, RpcError> {
        self.servers
            .pick(self.name(), input.excluded, |n| fastrand::usize(..n))
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
