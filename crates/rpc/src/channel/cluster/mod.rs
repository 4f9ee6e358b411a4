//! The cluster client (bRPC's `Channel::Init(naming_url, lb_name, ...)`):
//! a [`ClusterSelector`] turns a naming service's server list, a load
//! balancer and health checking into the call engine's
//! [`ServerSelector`].
//!
//! - The list comes from a [`NamingWatcher`] (shared by every channel of
//!   the URL). At each change the balancer is
//!   [reset](LoadBalancer::reset) with the servers of the list that are
//!   not isolated.
//! - An attempt whose connection to a server broke or could not be made
//!   ([`isolates`]) **isolates** the server: it leaves the balancer's
//!   list, so the calls that follow (and the retry of the failed one) go
//!   to the other replicas. bRPC does the same when a socket fails.
//! - A **health check** thread per cluster tries a TCP connect to each
//!   isolated server every [`ChannelOptions::health_check_interval`]
//!   (bRPC's `health_check_interval_s`, 3 s) and puts the server back in
//!   the balancer's list once a connect succeeds (`health.rs`).
//! - A retry avoids the servers the call failed on
//!   ([`SelectInput::excluded`]), which every balancer honours.
//!
//! When every server of the list is isolated, calls fail at once with
//! `EHOSTDOWN` until the health check re-admits one. bRPC's
//! `ClusterRecoverPolicy` (letting a share of the calls through while
//! a cluster recovers, so the first replica back is not flooded) is not
//! implemented.

mod health;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use super::lb::{load_balancer_by_name, LoadBalancer, ServerEntry};
use super::naming::{NamingWatcher, ServerListChange, ServerNode, WatchHandle};
use super::{AttemptOutcome, ChannelOptions, SelectInput, ServerSelector};
use crate::{errno, RpcError};

/// One server of a cluster as [`ClusterSelector::servers`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterServer {
    /// The naming service's entry.
    pub node: ServerNode,
    /// Whether the server is isolated (its connection failed and no
    /// health check has succeeded since): it takes no calls.
    pub isolated: bool,
}

/// A [`ServerSelector`] over a cluster: a naming service's list, a load
/// balancer, and health checking. See the module docs.
pub struct ClusterSelector {
    inner: Arc<Inner>,
    /// Keeps the list coming; dropped (unregistering the observer)
    /// before the watcher.
    _watch: WatchHandle,
    watcher: Arc<NamingWatcher>,
}

/// The state the watcher's observer, the health checker and the engine
/// share.
pub(super) struct Inner {
    lb: Box<dyn LoadBalancer>,
    state: Mutex<State>,
    /// Wakes the health checker: a server was isolated, or the selector
    /// was dropped.
    wake: std::sync::Condvar,
    /// How often isolated servers are probed.
    interval: Duration,
    /// How long one probe's connect may take.
    probe_timeout: Duration,
}

#[derive(Default)]
struct State {
    /// The naming service's last list.
    servers: Arc<Vec<ServerNode>>,
    /// Servers of `servers` that take no calls until a probe succeeds.
    isolated: HashSet<SocketAddr>,
    /// The selector was dropped: the health checker ends.
    stopped: bool,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether an attempt's error isolates its server: this side's connection
/// to it broke or could not be made (refused, reset, unreachable, timed
/// out connecting, closed by the server, or the server said it is
/// stopping). A full write queue (`EOVERCROWDED`), a call timeout and
/// every error the server answered with leave the server in the list.
pub fn isolates(e: &RpcError) -> bool {
    // The retry rule's connection failures, but a full write queue (the
    // connection is fine), plus a connect that timed out.
    e.code != errno::EOVERCROWDED
        && (super::retry::connection_failure(e) || e.is_local() && e.code == libc::ETIMEDOUT)
}

impl ClusterSelector {
    /// A selector over the servers `watcher` lists, picked by `lb`,
    /// probed every `options.health_check_interval` (each connect bounded
    /// by `options.connect_timeout`). Starts the health check thread.
    pub fn new(
        watcher: Arc<NamingWatcher>,
        lb: Box<dyn LoadBalancer>,
        options: &ChannelOptions,
    ) -> Result<ClusterSelector, RpcError> {
        let inner = Arc::new(Inner {
            lb,
            state: Mutex::new(State::default()),
            wake: std::sync::Condvar::new(),
            interval: options.health_check_interval,
            probe_timeout: options.connect_timeout,
        });
        let weak: Weak<Inner> = Arc::downgrade(&inner);
        // Called now with the whole list, then at every change.
        let watch = watcher.watch(move |change: &ServerListChange<'_>| {
            if let Some(inner) = weak.upgrade() {
                inner.set_servers(change.servers.clone());
            }
        });
        health::start(&inner, watcher.name())?;
        Ok(ClusterSelector {
            inner,
            _watch: watch,
            watcher,
        })
    }

    /// A selector over the cluster `url` names (see
    /// [`naming_service_for_url`](super::naming::naming_service_for_url);
    /// the watcher is shared with other users of the URL) with the load
    /// balancer `lb` names (see
    /// [`load_balancer_by_name`]). Fails if either is unknown or the
    /// naming service gives no first list.
    pub fn from_url(
        url: &str,
        lb: &str,
        options: &ChannelOptions,
    ) -> Result<ClusterSelector, RpcError> {
        let lb = load_balancer_by_name(lb)?;
        ClusterSelector::new(NamingWatcher::shared(url)?, lb, options)
    }

    /// The naming service's current list, each server marked isolated or
    /// not.
    pub fn servers(&self) -> Vec<ClusterServer> {
        let st = lock(&self.inner.state);
        st.servers
            .iter()
            .map(|n| ClusterServer {
                node: n.clone(),
                isolated: st.isolated.contains(&n.addr),
            })
            .collect()
    }

    /// The watcher feeding the list.
    pub fn watcher(&self) -> &Arc<NamingWatcher> {
        &self.watcher
    }

    /// The load balancer's name.
    pub fn load_balancer(&self) -> &'static str {
        self.inner.lb.name()
    }
}

impl std::fmt::Debug for ClusterSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSelector")
            .field("naming", &self.watcher.name())
            .field("lb", &self.inner.lb.name())
            .field("servers", &self.servers())
            .finish()
    }
}

impl Drop for ClusterSelector {
    fn drop(&mut self) {
        lock(&self.inner.state).stopped = true;
        self.inner.wake.notify_all();
    }
}

impl ServerSelector for ClusterSelector {
    fn select(&self, call: &SelectInput<'_>) -> Result<SocketAddr, RpcError> {
        self.inner.lb.select(call).map_err(|e| {
            let st = lock(&self.inner.state);
            if e.code == libc::ENODATA && !st.servers.is_empty() {
                // bRPC's code when every server is down.
                RpcError::new(
                    libc::EHOSTDOWN,
                    format!(
                        "every server of {} is isolated after a connection failure \
                         ({} servers; health checks re-admit them)",
                        self.watcher.name(),
                        st.servers.len()
                    ),
                )
                .into_local()
            } else {
                e
            }
        })
    }

    fn feedback(&self, outcome: &AttemptOutcome<'_>) {
        self.inner.lb.feedback(outcome);
        if let Some(e) = outcome.error.filter(|e| isolates(e)) {
            self.inner.isolate(outcome.server, e);
        }
    }
}

impl Inner {
    /// A new list from the naming service: isolation is kept for the
    /// servers still listed.
    fn set_servers(&self, servers: Arc<Vec<ServerNode>>) {
        let mut st = lock(&self.state);
        st.isolated.retain(|a| servers.iter().any(|n| n.addr == *a));
        st.servers = servers;
        self.reset_lb(&st);
    }

    /// Takes `server` out of the balancer's list after `e`, and wakes the
    /// health checker.
    fn isolate(&self, server: SocketAddr, e: &RpcError) {
        let mut st = lock(&self.state);
        if !st.servers.iter().any(|n| n.addr == server) || !st.isolated.insert(server) {
            return;
        }
        tracing::warn!(%server, error = %e, "server isolated until a health check succeeds");
        self.reset_lb(&st);
        drop(st);
        self.wake.notify_all();
    }

    /// Puts `server` back in the balancer's list (a probe succeeded).
    fn readmit(&self, server: SocketAddr) {
        let mut st = lock(&self.state);
        if st.isolated.remove(&server) {
            tracing::info!(%server, "server healthy again");
            self.reset_lb(&st);
        }
    }

    /// Resets the balancer with the listed servers that are not isolated.
    /// Called under the state's lock so that resets apply in order.
    fn reset_lb(&self, st: &State) {
        let healthy: Vec<ServerEntry> = st
            .servers
            .iter()
            .filter(|n| !st.isolated.contains(&n.addr))
            .map(|n| ServerEntry::new(n.addr, n.tag.clone()))
            .collect();
        self.lb.reset(&healthy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_sides_connection_failures_isolate() {
        let local = |code| RpcError::new(code, "x").into_local();
        for code in [
            libc::ECONNREFUSED,
            libc::ECONNRESET,
            errno::EEOF,
            errno::ELOGOFF,
        ] {
            assert!(isolates(&local(code)), "{code}");
            // The same code answered by the server is its business.
            assert!(!isolates(&RpcError::new(code, "x")), "{code}");
        }
        for code in [errno::EOVERCROWDED, errno::ERPCTIMEDOUT, libc::ENODATA] {
            assert!(!isolates(&local(code)), "{code}");
        }
    }
}
