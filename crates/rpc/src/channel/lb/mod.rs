//! Load balancers: which server of a cluster's list takes an attempt.
//!
//! bRPC's cluster channel is a naming service feeding a server list into
//! a load balancer chosen by name; fibrpc keeps the names and the
//! behaviour ([`load_balancer_by_name`]):
//!
//! | name | balancer | pick |
//! | --- | --- | --- |
//! | `rr` | [`RoundRobinLoadBalancer`] | each server in turn ([`RR_RUN`] picks at a time in a burst) |
//! | `wrr` | [`WeightedRoundRobinLoadBalancer`] | in proportion to the weight in the server's tag |
//! | `random` | [`RandomizedLoadBalancer`] | uniformly at random |
//! | `la` | [`LocalityAwareLoadBalancer`] | in proportion to 1 / (latency × (inflight + 1)) |
//! | `c_murmurhash` | [`ConsistentHashingLoadBalancer`] | the request code on a MurmurHash3 ring |
//! | `c_md5` | [`ConsistentHashingLoadBalancer`] | the request code on an MD5 (Ketama) ring |
//!
//! Every balancer keeps its list as an immutable snapshot behind an
//! [`arc_swap::ArcSwap`]: [`LoadBalancer::reset`] builds a new snapshot
//! and swaps it in, so a list change never blocks a pick and a pick
//! never sees half a list.
//!
//! **Excluded servers** ([`SelectInput::excluded`]: where earlier
//! attempts of the call failed) are avoided when another server is
//! available; when every server is excluded, one of them is picked
//! anyway, as bRPC does (the retry may still succeed there, and failing
//! it here would turn a retry into a certain failure).
//!
//! An **empty list** fails the pick with `ENODATA`, bRPC's code for "no
//! server in the list".

mod consistent_hashing;
mod hash;
mod local_snapshot;
mod locality_aware;
mod randomized;
mod round_robin;
mod weight_tree;
mod weighted_round_robin;

use std::net::SocketAddr;

use super::{AttemptOutcome, SelectInput};
use crate::RpcError;
pub use consistent_hashing::{ConsistentHashingLoadBalancer, HashFunction, REPLICAS_PER_SERVER};
pub use hash::{md5_hash32, murmur_hash32};
pub(crate) use local_snapshot::LocalSnapshot;
pub use locality_aware::LocalityAwareLoadBalancer;
pub use randomized::RandomizedLoadBalancer;
pub use round_robin::{RoundRobinLoadBalancer, RR_RUN};
pub use weighted_round_robin::WeightedRoundRobinLoadBalancer;

/// One server of a cluster's list, as a naming service gives it (bRPC's
/// `ServerNode`): its address and a free-form tag. `wrr` reads the tag
/// as the server's weight; the other balancers ignore it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerEntry {
    /// Where the server listens.
    pub addr: SocketAddr,
    /// The naming service's tag for the server (`"3"` for a weight of 3
    /// under `wrr`), empty if none.
    pub tag: String,
}

impl ServerEntry {
    /// A server at `addr` with `tag`.
    pub fn new(addr: SocketAddr, tag: impl Into<String>) -> ServerEntry {
        ServerEntry {
            addr,
            tag: tag.into(),
        }
    }
}

/// Chooses a server from a list the cluster layer keeps up to date
/// (bRPC's `LoadBalancer`). All methods take `&self` and may run
/// concurrently: picks are lock-free, and a list change does not wait
/// for picks nor make them wait.
pub trait LoadBalancer: Send + Sync + 'static {
    /// Replaces the server list with `servers` (the naming service's
    /// latest full list). Duplicate addresses count once (the first
    /// entry wins). Returns how many servers the balancer took: an entry
    /// the balancer cannot use (a `wrr` server without a positive integer
    /// weight) is left out, with a warning logged.
    fn reset(&self, servers: &[ServerEntry]) -> usize;

    /// The server for an attempt: one not in `input.excluded` when there
    /// is one (see the module docs). Fails with `ENODATA` if the list is
    /// empty.
    fn select(&self, input: &SelectInput<'_>) -> Result<SocketAddr, RpcError>;

    /// How an attempt on a selected server went. Balancers that do not
    /// weigh outcomes ignore it (the default).
    fn feedback(&self, _outcome: &AttemptOutcome<'_>) {}

    /// What a server's response to an attempt said, after that attempt's
    /// [`feedback`](Self::feedback) (which saw a response, not yet its
    /// verdict): `outcome.error` is the error the server answered with,
    /// `None` a success. Balancers that weigh errors punish a server
    /// answering them (bRPC's `la` counts every failed call, answered or
    /// not); the default ignores it.
    fn answered(&self, _outcome: &AttemptOutcome<'_>) {}

    /// The balancer's name in [`load_balancer_by_name`].
    fn name(&self) -> &'static str;
}

/// The names [`load_balancer_by_name`] knows, bRPC's.
pub const LOAD_BALANCER_NAMES: &[&str] = &["rr", "wrr", "random", "la", "c_murmurhash", "c_md5"];

/// A new, empty balancer by its bRPC name (see the module docs), or an
/// `EINVAL` error naming the known ones.
pub fn load_balancer_by_name(name: &str) -> Result<Box<dyn LoadBalancer>, RpcError> {
    Ok(match name {
        "rr" => Box::new(RoundRobinLoadBalancer::new()),
        "wrr" => Box::new(WeightedRoundRobinLoadBalancer::new()),
        "random" => Box::new(RandomizedLoadBalancer::new()),
        "la" => Box::new(LocalityAwareLoadBalancer::new()),
        "c_murmurhash" => Box::new(ConsistentHashingLoadBalancer::new(HashFunction::Murmur3)),
        "c_md5" => Box::new(ConsistentHashingLoadBalancer::new(HashFunction::Md5)),
        _ => {
            return Err(RpcError::new(
                libc::EINVAL,
                format!(
                    "unknown load balancer `{name}` (known: {})",
                    LOAD_BALANCER_NAMES.join(", ")
                ),
            ))
        }
    })
}

/// The server list of the balancers that need only addresses (`rr`,
/// `random`): a snapshot replaced whole on a list change, so picks load
/// it without a lock.
#[derive(Debug, Default)]
struct AddrList(arc_swap::ArcSwap<Vec<SocketAddr>>);

impl AddrList {
    /// Replaces the list; returns how many servers it holds.
    fn reset(&self, servers: &[ServerEntry]) -> usize {
        let addrs = unique_addrs(servers);
        let n = addrs.len();
        self.0.store(std::sync::Arc::new(addrs));
        n
    }

    /// The server at `start(n)` of the `n` listed, or the next one not
    /// excluded; `balancer` names the error of an empty list.
    fn pick(
        &self,
        balancer: &str,
        excluded: &[SocketAddr],
        start: impl FnOnce(usize) -> usize,
    ) -> Result<SocketAddr, RpcError> {
        let servers = self.0.load();
        let n = servers.len();
        if n == 0 {
            return Err(no_server(balancer));
        }
        Ok(servers[first_allowed(n, start(n), |i| servers[i], excluded)])
    }
}

/// The error of a pick from an empty list.
fn no_server(balancer: &str) -> RpcError {
    RpcError::new(
        libc::ENODATA,
        format!("load balancer `{balancer}` has no server in its list"),
    )
    .into_local()
}

/// The addresses of `servers`, each once, in list order.
fn unique_addrs(servers: &[ServerEntry]) -> Vec<SocketAddr> {
    let mut seen = rustc_hash::FxHashSet::default();
    servers
        .iter()
        .map(|s| s.addr)
        .filter(|a| seen.insert(*a))
        .collect()
}

/// Index of the first server from `start` on (wrapping) whose address is
/// not excluded, or `start` if all are: bRPC's walk to "another server".
fn first_allowed(
    n: usize,
    start: usize,
    addr_of: impl Fn(usize) -> SocketAddr,
    excluded: &[SocketAddr],
) -> usize {
    if excluded.is_empty() {
        return start;
    }
    (0..n)
        .map(|i| (start + i) % n)
        .find(|&i| !excluded.contains(&addr_of(i)))
        .unwrap_or(start)
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;

    /// `n` servers on 127.0.0.1, ports 10000.., with empty tags.
    pub fn servers(n: usize) -> Vec<ServerEntry> {
        (0..n).map(|i| ServerEntry::new(addr(i), "")).collect()
    }

    /// The address of server `i` of [`servers`].
    pub fn addr(i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 10000 + i as u16))
    }

    /// Picks `picks` times with no exclusion and no code; counts per
    /// server index of [`servers`].
    pub fn counts(lb: &dyn LoadBalancer, n: usize, picks: usize) -> Vec<usize> {
        let mut counts = vec![0; n];
        for _ in 0..picks {
            let a = lb.select(&SelectInput::new(&[], None)).unwrap();
            counts[(a.port() - 10000) as usize] += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;

    #[test]
    fn every_name_builds_its_balancer() {
        for name in LOAD_BALANCER_NAMES {
            assert_eq!(load_balancer_by_name(name).unwrap().name(), *name);
        }
        let e = load_balancer_by_name("nope").err().unwrap();
        assert_eq!(e.code, libc::EINVAL);
        assert!(e.text.contains("c_murmurhash"), "{e}");
    }

    #[test]
    fn empty_list_fails_with_enodata() {
        for name in LOAD_BALANCER_NAMES {
            let lb = load_balancer_by_name(name).unwrap();
            let e = lb.select(&SelectInput::new(&[], Some(7))).unwrap_err();
            assert_eq!(e.code, libc::ENODATA, "{name}");
            lb.reset(&servers(1));
            lb.reset(&[]);
            let e = lb.select(&SelectInput::new(&[], Some(7))).unwrap_err();
            assert_eq!(e.code, libc::ENODATA, "{name}");
        }
    }

    #[test]
    fn duplicates_count_once() {
        let mut list = servers(2);
        list.push(list[0].clone());
        assert_eq!(unique_addrs(&list), vec![addr(0), addr(1)]);
    }

    #[test]
    fn first_allowed_skips_excluded_and_falls_back() {
        let all = [addr(0), addr(1), addr(2)];
        assert_eq!(first_allowed(3, 1, addr, &[addr(1)]), 2);
        assert_eq!(first_allowed(3, 2, addr, &[addr(2), addr(0)]), 1);
        assert_eq!(first_allowed(3, 2, addr, &all), 2);
    }
}
