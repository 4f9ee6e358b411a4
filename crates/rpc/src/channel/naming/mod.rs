//! Naming services: where a cluster's servers are (bRPC's
//! `NamingService`).
//!
//! A naming service produces the *whole* list of a cluster's servers,
//! again each time it changes ([`NamingServiceActions::reset_servers`],
//! bRPC's `ResetServers`). A [`NamingWatcher`] runs one in a thread of its
//! own and keeps the last list as a snapshot readers load without a lock;
//! observers are told what was added and removed. Channels of the same
//! URL share one watcher ([`NamingWatcher::shared`]).
//!
//! The builtin services, by URL ([`naming_service_for_url`]):
//!
//! | URL | servers |
//! | --- | --- |
//! | `list://h1:p1,h2:p2 tag` | the listed ones, fixed |
//! | `file:///path` | one `host:port [tag]` per line, `#` comments; reloaded when the file changes ([`FileNamingService`]) |
//! | `dns://name:port` | every address `name` resolves to, resolved again every 5 s ([`DnsNamingService`]) |
//! | `etcd://host:port/prefix` | the keys under `prefix/` of an etcd v3 cluster ([`EtcdNamingService`]) |
//! | `host:port` | that one server |
//!
//! An entry is `host:port`, optionally followed by a space and a *tag*
//! (bRPC's tags tell apart several entries of one address, say for
//! partitions). A host name is resolved when the entry is read; an IPv6
//! address is written `[::1]:8000`. The list is sorted and duplicate
//! entries (same address and tag) are dropped; one address with two tags
//! is two servers, as in bRPC.
//!
//! Users write their own by implementing [`NamingService`] (or the
//! simpler [`PeriodicNamingService`]) and start it with
//! [`NamingWatcher::start`].

mod dns;
mod etcd;
mod etcd_client;
mod file;
mod filter;
mod list;
mod watcher;

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use crate::RpcError;
pub use dns::{DnsNamingService, DNS_DEFAULT_INTERVAL};
pub use etcd::{EtcdNamingService, ETCD_POLL_INTERVAL};
pub use etcd_client::{EtcdClient, EtcdTarget, KeyValue, ETCD_REQUEST_TIMEOUT};
pub use file::{FileNamingService, FILE_POLL_INTERVAL, MAX_FILE_SIZE};
pub use filter::NamingServiceFilter;
pub use list::ListNamingService;
pub use watcher::{NamingServiceActions, NamingWatcher, ServerListChange, WatchHandle};

/// One server of a cluster: its address and its tag (bRPC's
/// `ServerNode`; the tag is empty when the entry has none).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerNode {
    /// Where the server listens.
    pub addr: SocketAddr,
    /// The text after the address in the entry (`"host:port tag"`),
    /// trimmed; may be empty.
    pub tag: String,
}

impl ServerNode {
    /// A server at `addr` with no tag.
    pub fn new(addr: SocketAddr) -> ServerNode {
        ServerNode {
            addr,
            tag: String::new(),
        }
    }
}

impl std::fmt::Display for ServerNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.tag.is_empty() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{} {}", self.addr, self.tag)
        }
    }
}

/// Produces a cluster's server list and keeps it up to date (bRPC's
/// `NamingService::RunNamingService`). [`NamingWatcher::start`] runs it
/// in a thread of its own.
pub trait NamingService: Send + 'static {
    /// Gives every full list to `actions.reset_servers` until
    /// `actions.stopped()`; sleeps with `actions.wait`, which returns
    /// early when the watcher stops. Returning ends the service: an error
    /// returned before the first list fails [`NamingWatcher::start`] with
    /// it; after it, it is logged and the last list stays.
    fn run(&mut self, actions: &NamingServiceActions) -> Result<(), RpcError>;

    /// What the service watches, for logs (default: empty).
    fn describe(&self) -> String {
        String::new()
    }
}

/// A naming service that fetches the whole list every
/// [`interval`](Self::interval) (bRPC's `PeriodicNamingService`). Wrap it
/// in [`Periodic`] to run it.
pub trait PeriodicNamingService: Send + 'static {
    /// The current list. An error before the first list fails the
    /// watcher's start; later ones are logged (once until the next
    /// success) and the last list stays.
    fn get_servers(&mut self) -> Result<Vec<ServerNode>, RpcError>;

    /// How long to wait between two fetches.
    fn interval(&self) -> Duration;

    /// What the service watches, for logs (default: empty).
    fn describe(&self) -> String {
        String::new()
    }
}

/// Runs a [`PeriodicNamingService`] as a [`NamingService`].
#[derive(Debug)]
pub struct Periodic<P>(pub P);

impl<P: PeriodicNamingService> NamingService for Periodic<P> {
    fn run(&mut self, actions: &NamingServiceActions) -> Result<(), RpcError> {
        let mut failing = false;
        loop {
            match self.0.get_servers() {
                Ok(servers) => {
                    if failing {
                        tracing::info!(naming = %self.0.describe(), "server list available again");
                    }
                    failing = false;
                    actions.reset_servers(servers);
                }
                Err(e) if !actions.has_list() => return Err(e),
                Err(e) => {
                    // Once per outage: a poll every 100 ms would flood
                    // the log.
                    if !failing {
                        tracing::warn!(
                            naming = %self.0.describe(),
                            error = %e,
                            "cannot refresh the server list; keeping the last one"
                        );
                    }
                    failing = true;
                }
            }
            if !actions.wait(self.0.interval()) {
                return Ok(());
            }
        }
    }

    fn describe(&self) -> String {
        self.0.describe()
    }
}

/// The naming service a URL names (see the module docs for the
/// schemes). The URL is checked now — an unknown scheme, a malformed
/// `list://` entry, a missing file, an `etcd://` URL without a prefix are
/// errors here — but nothing is fetched until the service runs.
pub fn naming_service_for_url(url: &str) -> Result<Box<dyn NamingService>, RpcError> {
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        // No scheme: one server.
        return Ok(Box::new(ListNamingService::parse(url)?));
    };
    match scheme {
        "list" => Ok(Box::new(ListNamingService::parse(rest)?)),
        "file" => Ok(Box::new(Periodic(FileNamingService::new(rest)?))),
        "dns" => Ok(Box::new(Periodic(DnsNamingService::new(rest)?))),
        "etcd" => Ok(Box::new(Periodic(EtcdNamingService::new(rest)?))),
        other => Err(RpcError::new(
            libc::EINVAL,
            format!(
                "unknown naming service {other:?} in {url:?} (list, file, dns, etcd, or host:port)"
            ),
        )),
    }
}

/// Parses one entry, `host:port` optionally followed by whitespace and a
/// tag: `Ok(None)` for a blank entry, an error naming the entry if it is
/// malformed (no port, a port out of range or 0, a host that does not
/// resolve). A host name is resolved now (its first address).
pub fn parse_server_node(entry: &str) -> Result<Option<ServerNode>, RpcError> {
    let entry = entry.trim();
    if entry.is_empty() {
        return Ok(None);
    }
    let (addr, tag) = match entry.split_once(char::is_whitespace) {
        Some((a, t)) => (a, t.trim()),
        None => (entry, ""),
    };
    let bad = |why: &str| RpcError::new(libc::EINVAL, format!("bad server {entry:?}: {why}"));
    let addr = match addr.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => {
            let (host, port) = addr.rsplit_once(':').ok_or_else(|| bad("no port"))?;
            let port: u16 = port
                .parse()
                .map_err(|_| bad("the port is not a number in 0..65536"))?;
            if host.is_empty() {
                return Err(bad("no host"));
            }
            let host = host.trim_start_matches('[').trim_end_matches(']');
            (host, port)
                .to_socket_addrs()
                .map_err(|e| bad(&format!("cannot resolve {host:?}: {e}")))?
                .next()
                .ok_or_else(|| bad("the host resolves to nothing"))?
        }
    };
    if addr.port() == 0 {
        return Err(bad("port 0"));
    }
    Ok(Some(ServerNode {
        addr,
        tag: tag.to_string(),
    }))
}
