//! [`NamingServiceFilter`] (bRPC's `ChannelOptions::ns_filter`): which
//! servers of a naming service's list a channel uses.

use super::ServerNode;

/// Decides which listed servers a cluster channel keeps (bRPC's
/// `NamingServiceFilter`); set as
/// [`ChannelOptions::ns_filter`](crate::ChannelOptions::ns_filter).
/// Channels of one URL share the naming service but each filters the
/// list on its own: a [`PartitionChannel`](crate::channel::combo::PartitionChannel)'s
/// partitions are one URL filtered by tag.
pub trait NamingServiceFilter: Send + Sync + 'static {
    /// Whether the channel uses `server`.
    fn accept(&self, server: &ServerNode) -> bool;
}

impl std::fmt::Debug for dyn NamingServiceFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NamingServiceFilter")
    }
}
