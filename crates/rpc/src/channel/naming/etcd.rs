//! `etcd://host:port/prefix`: the servers registered under a prefix of
//! an etcd v3 cluster.

use std::time::Duration;

use super::etcd_client::{EtcdClient, EtcdTarget};
use super::{parse_server_node, PeriodicNamingService, ServerNode};
use crate::RpcError;

/// How often the prefix is read.
pub const ETCD_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Servers registered in etcd: every key `prefix/host:port` is a server,
/// its value (if any) the tag. Servers register themselves with
/// [`crate::ServerOptions::register`], under a lease that expires when
/// they die.
///
/// The list is read with a range request on the prefix every
/// [`ETCD_POLL_INTERVAL`] (250 ms), so a change is seen within about a
/// quarter of a second. It polls rather than watching because etcd's
/// HTTP gateway streams watch events on a response that never ends, and
/// fibrpc's HTTP client returns whole responses; the store's revision in
/// each answer tells whether anything changed since the last read, so an
/// unchanged store costs one small round trip. While etcd is unreachable
/// the last list stays (a warning is logged once); reads resume when it
/// comes back. A key that is not a `host:port` is skipped with a warning.
#[derive(Debug)]
pub struct EtcdNamingService {
    target: EtcdTarget,
    client: EtcdClient,
    /// The revision and list of the last read.
    last: Option<(i64, Vec<ServerNode>)>,
}

impl EtcdNamingService {
    /// Watches `host:port/prefix` (the part after `etcd://`). Fails on a
    /// malformed target or a host that does not resolve; etcd is not
    /// contacted yet.
    pub fn new(target: &str) -> Result<EtcdNamingService, RpcError> {
        let target = EtcdTarget::parse(target)?;
        let client = EtcdClient::new(&target.endpoint)?;
        Ok(EtcdNamingService {
            target,
            client,
            last: None,
        })
    }
}

impl PeriodicNamingService for EtcdNamingService {
    fn get_servers(&mut self) -> Result<Vec<ServerNode>, RpcError> {
        let (revision, kvs) = self.client.range_prefix(&self.target.prefix)?;
        if let Some((last, servers)) = &self.last {
            if *last == revision && revision != 0 {
                return Ok(servers.clone());
            }
        }
        let mut servers = Vec::with_capacity(kvs.len());
        for (key, value) in kvs {
            let key = String::from_utf8_lossy(&key);
            let addr = key.strip_prefix(&self.target.prefix).unwrap_or(&key);
            let entry = format!("{addr} {}", String::from_utf8_lossy(&value));
            match parse_server_node(&entry) {
                Ok(Some(node)) => servers.push(node),
                Ok(None) => {}
                Err(e) => tracing::warn!(key = %key, error = %e, "skipping an etcd server entry"),
            }
        }
        self.last = Some((revision, servers.clone()));
        Ok(servers)
    }

    fn interval(&self) -> Duration {
        ETCD_POLL_INTERVAL
    }

    fn describe(&self) -> String {
        format!("etcd://{}{}", self.target.endpoint, self.target.prefix)
    }
}
