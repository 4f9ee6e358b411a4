//! `dns://name:port`: every address a name resolves to.

use std::net::ToSocketAddrs;
use std::time::Duration;

use super::{PeriodicNamingService, ServerNode};
use crate::RpcError;

/// How often a name is resolved again by default.
pub const DNS_DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// The addresses of a host name (bRPC's `http://` / `dns://` naming):
/// resolved with the system resolver (`getaddrinfo`, so `/etc/hosts`
/// counts) every [`DNS_DEFAULT_INTERVAL`], or
/// [`with_interval`](Self::with_interval). Every address is a server,
/// without a tag. A failed resolution keeps the last list.
#[derive(Debug, Clone)]
pub struct DnsNamingService {
    host: String,
    port: u16,
    interval: Duration,
}

impl DnsNamingService {
    /// Resolves `name:port` (the part after `dns://`; a trailing `/` is
    /// ignored). The name is not resolved yet.
    pub fn new(target: &str) -> Result<DnsNamingService, RpcError> {
        let target = target.trim_end_matches('/');
        let bad =
            |why: &str| RpcError::new(libc::EINVAL, format!("bad dns target {target:?}: {why}"));
        let (host, port) = target.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| bad("the port is not a number in 0..65536"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if port == 0 {
            return Err(bad("port 0"));
        }
        Ok(DnsNamingService {
            host: host.to_string(),
            port,
            interval: DNS_DEFAULT_INTERVAL,
        })
    }

    /// Resolves every `interval` instead.
    pub fn with_interval(mut self, interval: Duration) -> DnsNamingService {
        self.interval = interval;
        self
    }
}

impl PeriodicNamingService for DnsNamingService {
    fn get_servers(&mut self) -> Result<Vec<ServerNode>, RpcError> {
        let addrs = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| {
                RpcError::new(
                    libc::EHOSTUNREACH,
                    format!("cannot resolve {}: {e}", self.host),
                )
            })?;
        Ok(addrs.map(ServerNode::new).collect())
    }

    fn interval(&self) -> Duration {
        self.interval
    }

    fn describe(&self) -> String {
        format!("dns://{}:{}", self.host, self.port)
    }
}
