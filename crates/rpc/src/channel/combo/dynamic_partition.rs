//! [`DynamicPartitionChannel`] (bRPC's): partitioning schemes that
//! coexist in one naming service, each a [`PartitionChannel`], with the
//! calls split between them by their capacity.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use fibrpc_iobuf::IOBuf;

use super::partition::{PartitionChannel, PartitionChannelOptions, PartitionParser};
use crate::channel::async_call::spawn_done;
use crate::channel::engine::{record_outcome, reset_outcome};
use crate::channel::naming::{NamingWatcher, ServerNode};
use crate::channel::rpc_channel::{RawDone, RpcChannel};
use crate::{Controller, RpcError};

/// One partitioning scheme in use: its channel and its capacity.
#[derive(Clone)]
struct Scheme {
    channel: Arc<PartitionChannel>,
    capacity: usize,
}

/// The schemes as of one version of the server list.
#[derive(Default)]
struct Schemes {
    /// The watcher's version they were made from.
    version: u64,
    /// By partition count.
    by_kinds: BTreeMap<usize, Scheme>,
    /// Sum of the capacities.
    total: usize,
}

/// Sends each call to one of the partitioning schemes the servers' tags
/// name (bRPC's `DynamicPartitionChannel`), so that servers split in,
/// say, 3 partitions and servers split in 4 serve side by side while a
/// service moves from one scheme to the other.
///
/// - A [`PartitionParser`] reads each server's partition `i` of `m` from
///   its tag; the servers of each `m` seen form a [`PartitionChannel`]
///   of `m` partitions (one sub-call per partition, merged), made when
///   the scheme first appears and dropped when its last server leaves.
/// - A scheme's *capacity* is its number of complete copies, bRPC's
///   rule: the fewest servers any of its partitions has (0 while a
///   partition has none). Each call picks a scheme at random in
///   proportion to the capacities, so a 4-partition scheme with two
///   servers per partition takes twice the calls of a 3-partition
///   scheme with one; an incomplete scheme takes none.
/// - The schemes follow the naming service: a call first compares the
///   list's version with the one the schemes were made from (one atomic
///   load) and regroups the servers if it changed.
/// - A call with no complete scheme fails with `EHOSTDOWN`. A call is
///   not sent to another scheme when its own fails (each partition's
///   channel retries within the partition).
///
/// Cheap to clone.
#[derive(Clone)]
pub struct DynamicPartitionChannel {
    inner: Arc<Inner>,
}

struct Inner {
    parser: Arc<dyn PartitionParser>,
    url: String,
    lb: String,
    options: PartitionChannelOptions,
    /// The naming service the partitions' channels share.
    watcher: Arc<NamingWatcher>,
    schemes: ArcSwap<Schemes>,
    /// Serializes regroupings (calls keep reading the old schemes).
    regroup: Mutex<()>,
}

impl std::fmt::Debug for DynamicPartitionChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicPartitionChannel")
            .field("url", &self.inner.url)
            .field("schemes", &self.schemes())
            .finish()
    }
}

impl DynamicPartitionChannel {
    /// The channel over the servers `naming_url` lists, whose partitions
    /// `parser` reads from their tags, each partition picked among by
    /// the load balancer `lb` names (bRPC's
    /// `DynamicPartitionChannel::Init`). Fails as
    /// [`Channel::with_naming`](crate::Channel::with_naming) does; a list
    /// without a complete scheme is not an error (calls fail until one
    /// appears).
    pub fn new(
        parser: Arc<dyn PartitionParser>,
        naming_url: &str,
        lb: &str,
        options: PartitionChannelOptions,
    ) -> Result<DynamicPartitionChannel, RpcError> {
        // The balancer's name is checked now, not at the first scheme.
        crate::channel::lb::load_balancer_by_name(lb.split_once(':').map_or(lb, |(n, _)| n))?;
        let watcher = NamingWatcher::shared(naming_url)?;
        let channel = DynamicPartitionChannel {
            inner: Arc::new(Inner {
                parser,
                url: naming_url.to_string(),
                lb: lb.to_string(),
                options,
                watcher,
                schemes: ArcSwap::from_pointee(Schemes::default()),
                regroup: Mutex::new(()),
            }),
        };
        channel.current()?;
        Ok(channel)
    }

    /// The schemes in use now, as `(partition count, capacity)`, by
    /// partition count.
    pub fn schemes(&self) -> Vec<(usize, usize)> {
        let schemes = match self.current() {
            Ok(s) => s,
            Err(_) => self.inner.schemes.load_full(),
        };
        schemes
            .by_kinds
            .iter()
            .map(|(&kinds, s)| (kinds, s.capacity))
            .collect()
    }

    /// The schemes of the naming service's current list: regrouped
    /// first if the list changed.
    fn current(&self) -> Result<Arc<Schemes>, RpcError> {
        let inner = &*self.inner;
        let version = inner.watcher.version();
        let schemes = inner.schemes.load_full();
        if schemes.version == version {
            return Ok(schemes);
        }
        let _one = inner.regroup.lock().unwrap_or_else(|e| e.into_inner());
        let schemes = inner.schemes.load_full();
        if schemes.version == version {
            return Ok(schemes); // Regrouped meanwhile.
        }
        // The version is read before the list: a change in between is
        // seen again at the next call.
        let servers = inner.watcher.servers();
        let mut by_kinds = BTreeMap::new();
        let mut total = 0;
        for (kinds, capacity) in capacities(inner.parser.as_ref(), &servers) {
            let channel = match schemes.by_kinds.get(&kinds) {
                Some(s) => s.channel.clone(),
                None => Arc::new(PartitionChannel::new(
                    kinds,
                    inner.parser.clone(),
                    &inner.url,
                    &inner.lb,
                    inner.options.clone(),
                )?),
            };
            total += capacity;
            by_kinds.insert(kinds, Scheme { channel, capacity });
        }
        let fresh = Arc::new(Schemes {
            version,
            by_kinds,
            total,
        });
        inner.schemes.store(fresh.clone());
        Ok(fresh)
    }

    /// The scheme of the next call, drawn in proportion to capacity.
    fn pick(&self) -> Result<Arc<PartitionChannel>, RpcError> {
        let schemes = self.current()?;
        if schemes.total == 0 {
            return Err(RpcError::new(
                libc::EHOSTDOWN,
                format!(
                    "no complete partitioning scheme among the servers of {}",
                    self.inner.url
                ),
            )
            .into_local());
        }
        let mut point = fastrand::usize(0..schemes.total);
        for s in schemes.by_kinds.values() {
            if point < s.capacity {
                return Ok(s.channel.clone());
            }
            point -= s.capacity;
        }
        unreachable!("a point below the total capacity falls in a scheme")
    }
}

/// Each scheme the servers' tags name, with its capacity: the fewest
/// servers any of its partitions has.
fn capacities(parser: &dyn PartitionParser, servers: &[ServerNode]) -> Vec<(usize, usize)> {
    let mut counts: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for s in servers {
        let Some(p) = parser.parse_from_tag(&s.tag) else {
            continue;
        };
        // A parser's answer is not trusted to be in range.
        if p.index >= p.num_partition_kinds {
            continue;
        }
        counts
            .entry(p.num_partition_kinds)
            .or_insert_with(|| vec![0; p.num_partition_kinds])[p.index] += 1;
    }
    counts
        .into_iter()
        .map(|(kinds, per)| (kinds, per.into_iter().min().unwrap_or(0)))
        .collect()
}

impl RpcChannel for DynamicPartitionChannel {
    fn call_raw(
        &self,
        service: &str,
        method: &str,
        cntl: &mut Controller,
        request: IOBuf,
    ) -> Result<IOBuf, RpcError> {
        match self.pick() {
            Ok(channel) => channel.call_raw(service, method, cntl, request),
            Err(e) => {
                reset_outcome(cntl);
                let r = Err(e);
                record_outcome(cntl, Instant::now(), &r);
                r
            }
        }
    }

    fn call_raw_async(
        &self,
        service: &str,
        method: &str,
        mut cntl: Controller,
        request: IOBuf,
        done: RawDone,
    ) {
        match self.pick() {
            Ok(channel) => channel.call_raw_async(service, method, cntl, request, done),
            Err(e) => {
                reset_outcome(&mut cntl);
                let r = Err(e);
                record_outcome(&mut cntl, Instant::now(), &r);
                spawn_done(cntl, r, done)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::combo::SlashPartitionParser;

    fn node(port: u16, tag: &str) -> ServerNode {
        ServerNode {
            addr: ([127, 0, 0, 1], port).into(),
            tag: tag.into(),
        }
    }

    #[test]
    fn capacity_is_the_fewest_servers_of_a_partition() {
        let servers = [
            node(1, "0/3"),
            node(1, "1/3"),
            node(1, "2/3"),
            node(2, "0/4"),
            node(2, "1/4"),
            node(2, "2/4"),
            node(2, "3/4"),
            node(3, "0/4"),
            node(3, "1/4"),
            node(3, "2/4"),
            node(3, "3/4"),
            node(4, "0/2"),
            node(5, "junk"),
        ];
        assert_eq!(
            capacities(&SlashPartitionParser, &servers),
            [(2, 0), (3, 1), (4, 2)]
        );
    }
}
