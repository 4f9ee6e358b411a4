//! `c_murmurhash` and `c_md5`: consistent hashing of the request code
//! (bRPC's `ConsistentHashingLoadBalancer`).

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::hash::{md5, murmur3_32};
use super::{no_server, unique_addrs, LoadBalancer, ServerEntry};
use crate::channel::SelectInput;
use crate::RpcError;

/// Points each server has on the ring (bRPC's default
/// `-chash_num_replicas`): enough that removing one of `n` servers moves
/// close to `1 / n` of the keys, and only those.
pub const REPLICAS_PER_SERVER: usize = 100;

/// How servers are placed on the ring, bRPC's two replica policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashFunction {
    /// `c_murmurhash`: point `i` of a server is the MurmurHash3 of
    /// `"<addr>-<i>"`.
    Murmur3,
    /// `c_md5`: Ketama's placement: the MD5 digest of `"<addr>-<j>"`
    /// gives four points (its four little-endian words), for
    /// `j < REPLICAS_PER_SERVER / 4`.
    Md5,
}

/// Sends each request code to the server that follows it on a ring of
/// [`REPLICAS_PER_SERVER`] points per server, so that a code keeps its
/// server while the list changes, unless that server leaves.
///
/// The request code ([`SelectInput::request_code`]) is used as bRPC
/// uses it: already a hash of the request's key (its low 32 bits are
/// the position; make it with [`super::murmur_hash32`] or
/// [`super::md5_hash32`] of the key). A pick **without a request code**
/// takes a random position (bRPC fails such a call with `EINVAL`;
/// random keeps a call that forgot its code working, spread like the
/// ring). An excluded server's pick walks the ring on to the next
/// point of a server not excluded.
#[derive(Debug)]
pub struct ConsistentHashingLoadBalancer {
    hash: HashFunction,
    ring: ArcSwap<Ring>,
}

/// The ring of one server list.
#[derive(Debug, Default)]
struct Ring {
    /// (position, index in `servers`), sorted by position.
    points: Vec<(u32, u32)>,
    servers: Vec<SocketAddr>,
}

impl Ring {
    fn new(hash: HashFunction, servers: Vec<SocketAddr>) -> Ring {
        let mut points = Vec::with_capacity(servers.len() * REPLICAS_PER_SERVER);
        for (i, addr) in servers.iter().enumerate() {
            let i = i as u32;
            match hash {
                HashFunction::Murmur3 => points.extend(
                    (0..REPLICAS_PER_SERVER)
                        .map(|r| (murmur3_32(format!("{addr}-{r}").as_bytes(), 0), i)),
                ),
                HashFunction::Md5 => {
                    for r in 0..REPLICAS_PER_SERVER / 4 {
                        let d = md5(format!("{addr}-{r}").as_bytes());
                        points.extend(
                            d.chunks_exact(4)
                                .map(|w| (u32::from_le_bytes([w[0], w[1], w[2], w[3]]), i)),
                        );
                    }
                }
            }
        }
        // Ties (two points at one position) go to the lower address, so the
        // ring depends on the set of servers, not on their order in the list.
        points.sort_unstable_by_key(|&(pos, i)| (pos, servers[i as usize]));
        Ring { points, servers }
    }

    /// The index in `points` of the first point at or after `pos`.
    fn successor(&self, pos: u32) -> usize {
        match self.points.partition_point(|&(p, _)| p < pos) {
            i if i == self.points.len() => 0,
            i => i,
        }
    }
}

impl ConsistentHashingLoadBalancer {
    /// An empty balancer placing servers with `hash`.
    pub fn new(hash: HashFunction) -> ConsistentHashingLoadBalancer {
        ConsistentHashingLoadBalancer {
            hash,
            ring: ArcSwap::default(),
        }
    }
}

impl LoadBalancer for ConsistentHashingLoadBalancer {
    fn reset(&self, servers: &[ServerEntry]) -> usize {
        let ring = Ring::new(self.hash, unique_addrs(servers));
        let n = ring.servers.len();
        self.ring.store(Arc::new(ring));
        n
    }

    fn select(&self, input: &SelectInput<'_>) -> Result<SocketAddr, RpcError> {
        let ring = self.ring.load();
        let len = ring.points.len();
        if len == 0 {
            return Err(no_server(self.name()));
        }
        let pos = input
            .request_code
            .map_or_else(|| fastrand::u32(..), |c| c as u32);
        let start = ring.successor(pos);
        let server = |p: usize| ring.servers[ring.points[p % len].1 as usize];
        if input.excluded.is_empty() {
            return Ok(server(start));
        }
        Ok((start..start + len)
            .map(server)
            .find(|a| !input.excluded.contains(a))
            .unwrap_or_else(|| server(start)))
    }

    fn name(&self) -> &'static str {
        match self.hash {
            HashFunction::Murmur3 => "c_murmurhash",
            HashFunction::Md5 => "c_md5",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use proptest::prelude::*;

    fn pick(lb: &ConsistentHashingLoadBalancer, code: u32, excluded: &[SocketAddr]) -> SocketAddr {
        lb.select(&SelectInput::new(excluded, Some(u64::from(code))))
            .unwrap()
    }

    fn codes() -> impl Iterator<Item = u32> {
        (0..10_000u32).map(|k| murmur3_32(&k.to_le_bytes(), 0))
    }

    #[test]
    fn removing_one_of_ten_moves_about_a_tenth() {
        for hash in [HashFunction::Murmur3, HashFunction::Md5] {
            let lb = ConsistentHashingLoadBalancer::new(hash);
            lb.reset(&servers(10));
            let before: Vec<_> = codes().map(|c| pick(&lb, c, &[])).collect();
            lb.reset(&servers(10)[..9]);
            let after: Vec<_> = codes().map(|c| pick(&lb, c, &[])).collect();
            let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
            assert!((500..=1500).contains(&moved), "{hash:?} moved {moved}");
            // Only the removed server's keys move.
            for (b, a) in before.iter().zip(&after) {
                assert!(b == a || *b == addr(9), "{hash:?}");
            }
        }
    }

    #[test]
    fn every_server_gets_a_share() {
        for hash in [HashFunction::Murmur3, HashFunction::Md5] {
            let lb = ConsistentHashingLoadBalancer::new(hash);
            lb.reset(&servers(10));
            let mut counts = [0usize; 10];
            for c in codes() {
                counts[(pick(&lb, c, &[]).port() - 10000) as usize] += 1;
            }
            // 1,000 expected each; 100 points per server keep it within half.
            assert!(
                counts.iter().all(|&c| (500..=1500).contains(&c)),
                "{hash:?} {counts:?}"
            );
        }
    }

    #[test]
    fn no_code_picks_anywhere() {
        let lb = ConsistentHashingLoadBalancer::new(HashFunction::Murmur3);
        lb.reset(&servers(4));
        assert!(counts(&lb, 4, 4000).iter().all(|&c| c > 500));
    }

    #[test]
    fn md5_ring_has_the_ketama_points() {
        let ring = Ring::new(HashFunction::Md5, vec![addr(0)]);
        assert_eq!(ring.points.len(), REPLICAS_PER_SERVER);
        let d = md5(b"127.0.0.1:10000-0");
        let first = u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
        assert!(ring.points.iter().any(|&(p, _)| p == first));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// A code's server does not depend on the list's order; adding a
        /// server moves a code only to the new server; an excluded server
        /// is never picked while another remains.
        #[test]
        fn ring_is_stable(n in 2usize..12, code: u32, rotate in 0usize..12, ex in 0usize..12) {
            let list = servers(n);
            let lb = ConsistentHashingLoadBalancer::new(HashFunction::Murmur3);
            lb.reset(&list);
            let chosen = pick(&lb, code, &[]);
            let mut rotated = list.clone();
            rotated.rotate_left(rotate % n);
            lb.reset(&rotated);
            prop_assert_eq!(pick(&lb, code, &[]), chosen);
            lb.reset(&servers(n + 1));
            let grown = pick(&lb, code, &[]);
            prop_assert!(grown == chosen || grown == addr(n));
            let excluded = [addr(ex % (n + 1))];
            prop_assert_ne!(pick(&lb, code, &excluded), excluded[0]);
        }
    }
}
