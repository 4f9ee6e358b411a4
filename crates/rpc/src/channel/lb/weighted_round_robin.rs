//! `wrr`: servers in proportion to the weights in their tags (bRPC's
//! `WeightedRoundRobinLoadBalancer`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::{first_allowed, no_server, LoadBalancer, ServerEntry};
use crate::channel::SelectInput;
use crate::RpcError;

/// Picks servers in proportion to their weights, read from the tags as
/// positive integers (`"3"`); as in bRPC, a server whose tag is not one
/// is left out of the list (with a warning).
///
/// Lock-free and exact: the `k`-th pick takes the point `k × stride mod
/// W` of the weights laid end to end (`W` their sum), and the server
/// under it (a binary search of the prefix sums). `stride` is coprime
/// with `W`, so every `W` consecutive picks visit every point once and
/// each server gets exactly its weight; `stride` is near `W / φ` (the
/// golden ratio), so the points of consecutive picks spread evenly over
/// the servers instead of giving one server its whole share in a burst
/// (bRPC reaches the same with a per-thread stride). An excluded
/// server's pick goes to the next server in the list.
#[derive(Debug, Default)]
pub struct WeightedRoundRobinLoadBalancer {
    list: ArcSwap<Weighted>,
    next: AtomicU64,
}

/// One server list with its weights.
#[derive(Debug, Default)]
struct Weighted {
    addrs: Vec<SocketAddr>,
    /// `ends[i]`: the sum of the weights of servers `0..=i`.
    ends: Vec<u64>,
    /// The step between consecutive picks' points, coprime with the total.
    stride: u64,
}

impl Weighted {
    fn new(servers: &[ServerEntry]) -> Weighted {
        let mut list = Weighted::default();
        let mut total = 0u64;
        for s in servers {
            if list.addrs.contains(&s.addr) {
                continue;
            }
            match s.tag.trim().parse::<u32>() {
                Ok(w) if w > 0 => {
                    total += u64::from(w);
                    list.addrs.push(s.addr);
                    list.ends.push(total);
                }
                _ => tracing::warn!(
                    server = %s.addr,
                    tag = %s.tag,
                    "wrr leaves out a server whose tag is not a positive integer weight"
                ),
            }
        }
        list.stride = golden_stride(total);
        list
    }

    fn total(&self) -> u64 {
        self.ends.last().copied().unwrap_or(0)
    }
}

/// The integer nearest `total / φ` that is coprime with `total` (1 for
/// a total of 0 or 1).
fn golden_stride(total: u64) -> u64 {
    if total <= 1 {
        return 1;
    }
    let mut s = ((total as f64 * 0.618_033_988_749_895) as u64).max(1);
    while gcd(s, total) != 1 {
        s += 1;
    }
    s
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl WeightedRoundRobinLoadBalancer {
    /// An empty balancer.
    pub fn new() -> WeightedRoundRobinLoadBalancer {
        WeightedRoundRobinLoadBalancer::default()
    }
}

impl LoadBalancer for WeightedRoundRobinLoadBalancer {
    fn reset(&self, servers: &[ServerEntry]) -> usize {
        let list = Weighted::new(servers);
        let n = list.addrs.len();
        self.list.store(Arc::new(list));
        n
    }

    fn select(&self, input: &SelectInput<'_>) -> Result<SocketAddr, RpcError> {
        let list = self.list.load();
        let total = list.total();
        if total == 0 {
            return Err(no_server(self.name()));
        }
        let k = self.next.fetch_add(1, Ordering::Relaxed) % total;
        // k, stride < total <= 2^32 × servers: the product fits in u128.
        let point = (u128::from(k) * u128::from(list.stride) % u128::from(total)) as u64;
        let i = list.ends.partition_point(|&end| end <= point);
        let n = list.addrs.len();
        Ok(list.addrs[first_allowed(n, i, |i| list.addrs[i], input.excluded)])
    }

    fn name(&self) -> &'static str {
        "wrr"
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;

    fn weighted(weights: &[u32]) -> Vec<ServerEntry> {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| ServerEntry::new(addr(i), w.to_string()))
            .collect()
    }

    #[test]
    fn proportions_match_weights() {
        let lb = WeightedRoundRobinLoadBalancer::new();
        lb.reset(&weighted(&[1, 2, 3, 4]));
        assert_eq!(counts(&lb, 4, 10_000), vec![1000, 2000, 3000, 4000]);
    }

    #[test]
    fn picks_interleave() {
        // Weights 1 and 9: the light server's picks are spread out, not
        // all in one run of the heavy server's.
        let lb = WeightedRoundRobinLoadBalancer::new();
        lb.reset(&weighted(&[9, 1]));
        let picks: Vec<_> = (0..10)
            .map(|_| lb.select(&SelectInput::new(&[], None)).unwrap())
            .collect();
        assert_eq!(picks.iter().filter(|a| **a == addr(1)).count(), 1);
        let lb = WeightedRoundRobinLoadBalancer::new();
        lb.reset(&weighted(&[1, 1, 1, 1]));
        let first: Vec<_> = (0..4)
            .map(|_| lb.select(&SelectInput::new(&[], None)).unwrap())
            .collect();
        let mut sorted = first.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 4, "{first:?}");
    }

    #[test]
    fn bad_weights_are_left_out() {
        let lb = WeightedRoundRobinLoadBalancer::new();
        let mut list = weighted(&[2, 0]);
        list.push(ServerEntry::new(addr(2), "heavy"));
        list.push(ServerEntry::new(addr(3), ""));
        assert_eq!(lb.reset(&list), 1);
        assert_eq!(counts(&lb, 4, 10), vec![10, 0, 0, 0]);
    }

    #[test]
    fn excluded_is_avoided() {
        let lb = WeightedRoundRobinLoadBalancer::new();
        lb.reset(&weighted(&[5, 1, 1]));
        for _ in 0..50 {
            let a = lb.select(&SelectInput::new(&[addr(0)], None)).unwrap();
            assert_ne!(a, addr(0));
        }
    }

    #[test]
    fn stride_is_coprime() {
        for total in 1..500 {
            assert_eq!(gcd(golden_stride(total), total), 1, "{total}");
        }
    }
}
