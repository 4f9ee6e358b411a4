//! [`PartitionChannel`] (bRPC's): a [`ParallelChannel`] whose
//! sub-channels are the partitions of one naming service, told apart by
//! the servers' tags.

use std::sync::Arc;

use fibrpc_iobuf::IOBuf;

use super::mapper::{CallMapper, ResponseMerger};
use super::parallel::{ParallelChannel, ParallelChannelOptions};
use crate::channel::naming::{NamingServiceFilter, ServerNode};
use crate::channel::rpc_channel::{RawDone, RpcChannel};
use crate::channel::{CallFuture, Channel, ChannelOptions};
use crate::{Controller, RpcError};

/// Where a server belongs (bRPC's `Partition`): partition `index` of a
/// scheme of `num_partition_kinds` partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// The partition, from 0.
    pub index: usize,
    /// How many partitions the scheme has.
    pub num_partition_kinds: usize,
}

/// Reads a server's partition from its naming service tag (bRPC's
/// `PartitionParser::ParseFromTag`).
pub trait PartitionParser: Send + Sync + 'static {
    /// The partition `tag` names, or `None` if it names none (the server
    /// is then in no partition).
    fn parse_from_tag(&self, tag: &str) -> Option<Partition>;
}

/// The tag form of bRPC's documentation: `N/M`, partition `N` of `M`
/// (`0/3` is the first of three).
#[derive(Debug, Clone, Copy, Default)]
pub struct SlashPartitionParser;

impl PartitionParser for SlashPartitionParser {
    fn parse_from_tag(&self, tag: &str) -> Option<Partition> {
        let (n, m) = tag.trim().split_once('/')?;
        let index = n.trim().parse().ok()?;
        let num_partition_kinds = m.trim().parse().ok()?;
        (index < num_partition_kinds).then_some(Partition {
            index,
            num_partition_kinds,
        })
    }
}

/// Settings of a [`PartitionChannel`] (bRPC's `PartitionChannelOptions`):
/// the partitions' channel options and the fan-out's.
#[derive(Clone, Default)]
pub struct PartitionChannelOptions {
    /// Each partition's cluster channel (its `timeout` is the whole
    /// call's, as a [`ParallelChannelOptions::timeout`]).
    pub channel: ChannelOptions,
    /// See [`ParallelChannelOptions::fail_limit`].
    pub fail_limit: Option<usize>,
    /// See [`ParallelChannelOptions::success_limit`].
    pub success_limit: Option<usize>,
    /// Maps the call onto each partition (`None`: the same request to
    /// every partition).
    pub call_mapper: Option<Arc<dyn CallMapper>>,
    /// Merges the partitions' responses (`None`: protobuf's `MergeFrom`).
    pub response_merger: Option<Arc<dyn ResponseMerger>>,
}

impl std::fmt::Debug for PartitionChannelOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionChannelOptions")
            .field("channel", &self.channel)
            .field("fail_limit", &self.fail_limit)
            .field("success_limit", &self.success_limit)
            .field("call_mapper", &self.call_mapper.is_some())
            .field("response_merger", &self.response_merger.is_some())
            .finish()
    }
}

/// Accepts the servers of one partition.
struct PartitionFilter {
    parser: Arc<dyn PartitionParser>,
    partition: Partition,
}

impl NamingServiceFilter for PartitionFilter {
    fn accept(&self, server: &ServerNode) -> bool {
        self.parser.parse_from_tag(&server.tag) == Some(self.partition)
    }
}

/// Sends each call to one server of every partition and merges the
/// responses (bRPC's `PartitionChannel`). The servers are one naming
/// service's list; a [`PartitionParser`] reads each server's partition
/// from its tag (`list://h1:p1 0/2,h2:p2 1/2` with
/// [`SlashPartitionParser`]). Partition `i` is a cluster channel
/// ([`Channel::with_naming`]) over the servers tagged for it — load
/// balanced, health checked, retried within the partition — and the call
/// fans out over the partitions as a [`ParallelChannel`] does, with the
/// options' `fail_limit`, `success_limit`, mapper and merger (the mapper
/// sees the partition's index). Servers whose tag names no partition of
/// this scheme are not used; a partition with no server fails its
/// sub-call. Cheap to clone.
#[derive(Clone, Debug)]
pub struct PartitionChannel {
    parallel: ParallelChannel,
    partitions: Vec<Channel>,
}

impl PartitionChannel {
    /// The partition channel of `num_partition_kinds` partitions of the
    /// servers `naming_url` lists, each picked among by the load balancer
    /// `lb` names (bRPC's `PartitionChannel::Init`). Fails as
    /// [`Channel::with_naming`] does, or if `num_partition_kinds` is 0.
    pub fn new(
        num_partition_kinds: usize,
        parser: Arc<dyn PartitionParser>,
        naming_url: &str,
        lb: &str,
        options: PartitionChannelOptions,
    ) -> Result<PartitionChannel, RpcError> {
        if num_partition_kinds == 0 {
            return Err(RpcError::new(
                libc::EINVAL,
                "a partition channel needs at least one partition",
            ));
        }
        let mut parallel = ParallelChannel::new(ParallelChannelOptions {
            timeout: options.channel.timeout,
            fail_limit: options.fail_limit,
            success_limit: options.success_limit,
        });
        let mut partitions = Vec::with_capacity(num_partition_kinds);
        for index in 0..num_partition_kinds {
            let filter = PartitionFilter {
                parser: parser.clone(),
                partition: Partition {
                    index,
                    num_partition_kinds,
                },
            };
            let channel_options = ChannelOptions {
                ns_filter: Some(Arc::new(filter)),
                ..options.channel.clone()
            };
            let channel = Channel::with_naming(naming_url, lb, channel_options)?;
            parallel.add_channel(
                Arc::new(channel.clone()),
                options.call_mapper.clone(),
                options.response_merger.clone(),
            );
            partitions.push(channel);
        }
        Ok(PartitionChannel {
            parallel,
            partitions,
        })
    }

    /// How many partitions there are.
    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    /// Partition `index`'s cluster channel (to call it alone, or to see
    /// its servers through its selector).
    pub fn partition(&self, index: usize) -> Option<&Channel> {
        self.partitions.get(index)
    }
}

impl RpcChannel for PartitionChannel {
    fn call_raw(
        &self,
        service: &str,
        method: &str,
        cntl: &mut Controller,
        request: IOBuf,
    ) -> Result<IOBuf, RpcError> {
        self.parallel.call_raw(service, method, cntl, request)
    }

    fn call_raw_async(
        &self,
        service: &str,
        method: &str,
        cntl: Controller,
        request: IOBuf,
        done: RawDone,
    ) {
        self.parallel
            .call_raw_async(service, method, cntl, request, done)
    }

    fn call_raw_future(
        &self,
        service: &str,
        method: &str,
        cntl: Controller,
        request: IOBuf,
    ) -> CallFuture<IOBuf> {
        self.parallel
            .call_raw_future(service, method, cntl, request)
    }
}
