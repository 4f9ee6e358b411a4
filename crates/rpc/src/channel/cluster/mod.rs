//! The cluster client (bRPC's `Channel::Init(naming_url, lb_name, ...)`):
//! a [`ClusterSelector`] turns a naming service's server list, a load
//! balancer, health checking, circuit breakers and a recovery policy into
//! the call engine's [`ServerSelector`].
//!
//! - The list comes from a [`NamingWatcher`] (shared by every channel of
//!   the URL). At each change the balancer is
//!   [reset](LoadBalancer::reset) with the servers of the list that are
//!   not isolated.
//! - An attempt whose connection to a server broke or could not be made
//!   ([`isolates`]) **isolates** the server: it leaves the balancer's
//!   list, so the calls that follow (and the retry of the failed one) go
//!   to the other replicas. bRPC does the same when a socket fails.
//! - With [`ChannelOptions::enable_circuit_breaker`], each server has a
//!   **circuit breaker** (`breaker.rs`, bRPC's) fed with every attempt's
//!   outcome, the server's answers included: a server whose error rate
//!   passes a threshold is isolated for an isolation duration (100 ms,
//!   doubling while it trips again soon after coming back, up to 30 s).
//! - A **health check** thread per cluster (`health.rs`) probes each
//!   isolated server ([`HealthCheck`]: a TCP connect by default, an HTTP
//!   `GET`, or the user's function) — a connection failure's one
//!   [`ChannelOptions::health_check_interval`] later (bRPC's
//!   `health_check_interval_s`, 3 s), a tripped breaker's once its
//!   isolation is over — and puts it back in the balancer's list when it
//!   passes, again every interval until then.
//! - A retry avoids the servers the call failed on
//!   ([`SelectInput::excluded`]), which every balancer honours.
//!
//! When every server of the list is isolated, calls fail at once with
//! `EHOSTDOWN` until the health check re-admits one. With a
//! [`ClusterRecoverPolicy`] (`recover.rs`, bRPC's), the cluster then
//! recovers gradually: calls are rejected with `EREJECT` in proportion to
//! the servers still missing, so the first server back is not flooded.
//!
//! Every cluster of the process is listed, with its servers' states, on
//! the builtin `/cluster` page (`registry.rs`).

mod breaker;
mod health;
mod recover;
mod registry;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use super::lb::{load_balancer_by_name, LoadBalancer, LocalSnapshot, ServerEntry};
use super::naming::{
    NamingServiceFilter, NamingWatcher, ServerListChange, ServerNode, WatchHandle,
};
use super::{AttemptOutcome, ChannelOptions, SelectInput, ServerSelector};
use crate::{errno, RpcError};
use breaker::CircuitBreaker;
pub use breaker::{BreakerStats, CircuitBreakerOptions};
pub use health::{HealthCheck, HEALTH_CHECK_TIMEOUT};
pub use recover::ClusterRecoverPolicy;
use recover::Recovery;
pub(crate) use registry::clusters;

/// Whether a server takes calls, as [`ClusterSelector::servers`] reports
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// In the balancer's list.
    Healthy,
    /// Its connection failed; it takes no calls until a health check
    /// passes.
    Isolated,
    /// Its circuit breaker tripped; it takes no calls for `remaining`
    /// more, then until a health check passes.
    Tripped {
        /// What is left of the isolation (zero once the health check is
        /// due).
        remaining: Duration,
    },
}

/// One server of a cluster as [`ClusterSelector::servers`] reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterServer {
    /// The naming service's entry.
    pub node: ServerNode,
    /// Whether the server is isolated (by a connection failure or its
    /// circuit breaker): it takes no calls.
    pub isolated: bool,
    /// Why it is isolated, or not.
    pub state: ServerState,
    /// Attempts sent to it that ended (answered or failed).
    pub calls: u64,
    /// Those that failed, or were answered with an error.
    pub errors: u64,
    /// Attempts sent to it not yet ended.
    pub inflight: u64,
    /// Its circuit breaker, if the channel enables them.
    pub breaker: Option<BreakerStats>,
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

/// The state the watcher's observer, the health checker, the engine and
/// the `/cluster` page share.
pub(super) struct Inner {
    /// The naming service's URL.
    name: String,
    lb: Box<dyn LoadBalancer>,
    state: Mutex<State>,
    /// Per-server counters and breakers, read without a lock by every
    /// attempt (twice: select and feedback) through each thread's copy
    /// (`lb/local_snapshot.rs`: a plain load, no `ArcSwap` debt-slot
    /// read-modify-writes); replaced (carrying the entries over) at list
    /// changes.
    replicas: LocalSnapshot<Replicas>,
    /// Servers listed, and those of them not isolated.
    total: AtomicUsize,
    usable: AtomicUsize,
    /// Wakes the health checker: a server was isolated, or the selector
    /// was dropped.
    wake: std::sync::Condvar,
    /// How often isolated servers are probed.
    interval: Duration,
    prober: health::Prober,
    /// `Some` with [`ChannelOptions::enable_circuit_breaker`].
    breaker: Option<CircuitBreakerOptions>,
    recovery: Option<Recovery>,
    /// [`ChannelOptions::ns_filter`]: the listed servers this cluster
    /// keeps.
    filter: Option<Arc<dyn NamingServiceFilter>>,
}

/// A server's counters and breaker.
///
/// Attempts in flight are `started - ended`, so an attempt costs one
/// increment at its pick and one at its end (a decrement that must not
/// pass zero, plus a separate count of ended attempts, took a
/// compare-and-swap loop and an increment).
struct Replica {
    /// Attempts picked for it.
    started: AtomicU64,
    /// Attempts sent to it that ended (answered or failed).
    ended: AtomicU64,
    errors: AtomicU64,
    breaker: Option<CircuitBreaker>,
}

impl Replica {
    fn new(breaker: Option<CircuitBreaker>) -> Arc<Replica> {
        Arc::new(Replica {
            started: AtomicU64::new(0),
            ended: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            breaker,
        })
    }

    /// Attempts picked for it that have not ended. Read as two loads, so
    /// an end counted between them may make it look one short for a
    /// moment; never below zero (an attempt picked before the server
    /// was listed ends here without having started here).
    fn inflight(&self) -> u64 {
        let ended = self.ended.load(Relaxed);
        self.started.load(Relaxed).saturating_sub(ended)
    }
}

/// The listed servers' [`Replica`]s. A few servers (most clusters) are
/// found by comparing addresses in list order, which costs less than
/// hashing an address; longer lists through a map.
#[derive(Default)]
struct Replicas {
    list: Vec<(SocketAddr, Arc<Replica>)>,
    /// Index in `list`, for lists longer than [`Replicas::SCAN`].
    index: HashMap<SocketAddr, usize, rustc_hash::FxBuildHasher>,
}

impl Replicas {
    /// Lists up to this long are scanned.
    const SCAN: usize = 8;

    fn new(list: Vec<(SocketAddr, Arc<Replica>)>) -> Replicas {
        let index = if list.len() > Self::SCAN {
            list.iter().enumerate().map(|(i, (a, _))| (*a, i)).collect()
        } else {
            HashMap::default()
        };
        Replicas { list, index }
    }

    fn get(&self, addr: &SocketAddr) -> Option<&Arc<Replica>> {
        if self.list.len() <= Self::SCAN {
            self.list.iter().find(|(a, _)| a == addr).map(|(_, r)| r)
        } else {
            self.index.get(addr).map(|&i| &self.list[i].1)
        }
    }
}

#[derive(Default)]
struct State {
    /// The naming service's last list.
    servers: Arc<Vec<ServerNode>>,
    /// Servers of `servers` that take no calls until a probe succeeds.
    isolated: HashMap<SocketAddr, Isolation>,
    /// The selector was dropped: the health checker ends.
    stopped: bool,
}

/// Why and until when a server is out.
#[derive(Debug, Clone, Copy)]
struct Isolation {
    /// `Some(end)`: its breaker tripped, isolated until `end`.
    tripped_until: Option<Instant>,
    /// When the health checker probes it next.
    next_probe: Instant,
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

/// Splits bRPC's `name:params` load balancer string.
fn split_lb(lb: &str) -> (&str, &str) {
    lb.split_once(':').unwrap_or((lb, ""))
}

impl ClusterSelector {
    /// A selector over the servers `watcher` lists, picked by `lb`,
    /// isolated servers probed as `options.health_check` says every
    /// `options.health_check_interval`, with circuit breakers if
    /// `options.enable_circuit_breaker` and recovery throttling if
    /// `options.cluster_recover_policy`. Starts the health check thread.
    pub fn new(
        watcher: Arc<NamingWatcher>,
        lb: Box<dyn LoadBalancer>,
        options: &ChannelOptions,
    ) -> Result<ClusterSelector, RpcError> {
        let inner = Arc::new(Inner {
            name: watcher.name().to_string(),
            lb,
            state: Mutex::new(State::default()),
            replicas: LocalSnapshot::default(),
            total: AtomicUsize::new(0),
            usable: AtomicUsize::new(0),
            wake: std::sync::Condvar::new(),
            interval: options.health_check_interval,
            prober: health::Prober::new(options),
            breaker: options
                .enable_circuit_breaker
                .then(|| options.circuit_breaker.clone()),
            recovery: options.cluster_recover_policy.map(Recovery::new),
            filter: options.ns_filter.clone(),
        });
        let weak: Weak<Inner> = Arc::downgrade(&inner);
        // Called now with the whole list, then at every change.
        let watch = watcher.watch(move |change: &ServerListChange<'_>| {
            if let Some(inner) = weak.upgrade() {
                inner.set_servers(change.servers.clone());
            }
        });
        health::start(&inner, watcher.name())?;
        registry::register(&inner);
        Ok(ClusterSelector {
            inner,
            _watch: watch,
            watcher,
        })
    }

    /// A selector over the cluster `url` names (see
    /// [`naming_service_for_url`](super::naming::naming_service_for_url);
    /// the watcher is shared with other users of the URL) with the load
    /// balancer `lb` names (see [`load_balancer_by_name`]). As in bRPC,
    /// `lb` may carry the recovery policy's parameters after a colon,
    /// `"rr:min_working_instances=2 hold_seconds=5"` (see
    /// [`ClusterRecoverPolicy::parse`]); they win over
    /// `options.cluster_recover_policy`. Fails if the naming service, the
    /// balancer or a parameter is unknown, or the naming service gives no
    /// first list.
    pub fn from_url(
        url: &str,
        lb: &str,
        options: &ChannelOptions,
    ) -> Result<ClusterSelector, RpcError> {
        let (name, params) = split_lb(lb);
        let policy = ClusterRecoverPolicy::parse(params)?;
        let lb = load_balancer_by_name(name)?;
        let watcher = NamingWatcher::shared(url)?;
        match policy {
            None => ClusterSelector::new(watcher, lb, options),
            Some(p) => {
                let options = ChannelOptions {
                    cluster_recover_policy: Some(p),
                    ..options.clone()
                };
                ClusterSelector::new(watcher, lb, &options)
            }
        }
    }

    /// The naming service's current list, with each server's state and
    /// counters.
    pub fn servers(&self) -> Vec<ClusterServer> {
        self.inner.servers()
    }

    /// The watcher feeding the list.
    pub fn watcher(&self) -> &Arc<NamingWatcher> {
        &self.watcher
    }

    /// The load balancer's name.
    pub fn load_balancer(&self) -> &'static str {
        self.inner.lb.name()
    }

    /// Whether the cluster is recovering (see [`ClusterRecoverPolicy`]):
    /// calls are being rejected in proportion to the servers missing.
    pub fn recovering(&self) -> bool {
        self.inner
            .recovery
            .as_ref()
            .is_some_and(Recovery::recovering)
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
        let inner = &*self.inner;
        if let Some(rec) = &inner.recovery {
            if let Some(e) = rec.reject(inner.usable.load(Relaxed), inner.total.load(Relaxed)) {
                return Err(e);
            }
        }
        match inner.lb.select(call) {
            Ok(addr) => {
                inner.replicas.with(|replicas| {
                    if let Some(r) = replicas.get(&addr) {
                        r.started.fetch_add(1, Relaxed);
                    }
                });
                Ok(addr)
            }
            Err(e) => Err(inner.no_server(e)),
        }
    }

    fn feedback(&self, outcome: &AttemptOutcome<'_>) {
        let inner = &*self.inner;
        inner.lb.feedback(outcome);
        // A response's verdict comes in `answered`; a caller that gave
        // up says nothing of the replica.
        let error = outcome
            .error
            .filter(|e| !crate::channel::cancel::is_cancelled(e));
        // Counted, and the breaker told, in the thread's copy: no shared
        // refcount bumped per attempt. Isolating (a lock, the balancer's
        // reset) is left for after.
        let tripped = inner.replicas.with(|replicas| {
            let r = replicas.get(&outcome.server)?;
            r.ended.fetch_add(1, Relaxed);
            let e = error?;
            r.errors.fetch_add(1, Relaxed);
            r.breaker.as_ref()?.on_call_end(e.code, outcome.latency)
        });
        let Some(e) = error else { return };
        if isolates(e) {
            inner.isolate(outcome.server, None, e);
        }
        if let Some(isolation) = tripped {
            inner.isolate(outcome.server, Some(isolation), e);
        }
    }

    fn answered(&self, outcome: &AttemptOutcome<'_>) {
        let inner = &*self.inner;
        inner.lb.answered(outcome);
        if inner.breaker.is_none() && outcome.error.is_none() {
            return;
        }
        let tripped = inner.replicas.with(|replicas| {
            let r = replicas.get(&outcome.server)?;
            if outcome.error.is_some() {
                r.errors.fetch_add(1, Relaxed);
            }
            // An error without a code is still an error.
            let code = outcome
                .error
                .map_or(0, |e| if e.code == 0 { -1 } else { e.code });
            r.breaker.as_ref()?.on_call_end(code, outcome.latency)
        });
        // Only an error can trip a breaker.
        if let (Some(isolation), Some(e)) = (tripped, outcome.error) {
            inner.isolate(outcome.server, Some(isolation), e);
        }
    }
}

impl Inner {
    /// The balancer found no server: bRPC's `EHOSTDOWN` when every listed
    /// server is isolated (and the start of a recovery, if a policy says
    /// so).
    fn no_server(&self, e: RpcError) -> RpcError {
        let st = lock(&self.state);
        if e.code != libc::ENODATA || st.servers.is_empty() {
            return e;
        }
        if let Some(rec) = &self.recovery {
            rec.start();
        }
        RpcError::new(
            libc::EHOSTDOWN,
            format!(
                "every server of {} is isolated after a connection failure or by its \
                 circuit breaker ({} servers; health checks re-admit them)",
                self.name,
                st.servers.len()
            ),
        )
        .into_local()
    }

    /// A new list from the naming service: isolation, counters and
    /// breakers are kept for the servers still listed.
    fn set_servers(&self, servers: Arc<Vec<ServerNode>>) {
        let servers = match &self.filter {
            Some(f) => Arc::new(servers.iter().filter(|n| f.accept(n)).cloned().collect()),
            None => servers,
        };
        let mut st = lock(&self.state);
        st.isolated
            .retain(|a, _| servers.iter().any(|n| n.addr == *a));
        let old = self.replicas.load_full();
        let mut list: Vec<(SocketAddr, Arc<Replica>)> = Vec::with_capacity(servers.len());
        let mut seen = rustc_hash::FxHashSet::default();
        for n in servers.iter() {
            if !seen.insert(n.addr) {
                continue; // Listed twice: one replica.
            }
            let r = old
                .get(&n.addr)
                .cloned()
                .unwrap_or_else(|| Replica::new(self.breaker.as_ref().map(CircuitBreaker::new)));
            list.push((n.addr, r));
        }
        self.replicas.store(Arc::new(Replicas::new(list)));
        st.servers = servers;
        self.reset_lb(&st);
    }

    /// Takes `server` out of the balancer's list after `e` — for
    /// `tripped` (its breaker's isolation) or, if `None`, until a health
    /// check passes — and wakes the health checker.
    fn isolate(&self, server: SocketAddr, tripped: Option<Duration>, e: &RpcError) {
        let mut st = lock(&self.state);
        if !st.servers.iter().any(|n| n.addr == server) || st.isolated.contains_key(&server) {
            return;
        }
        let now = Instant::now();
        let isolation = match tripped {
            None => {
                tracing::warn!(%server, error = %e, "server isolated until a health check succeeds");
                Isolation {
                    tripped_until: None,
                    next_probe: now + self.interval,
                }
            }
            Some(d) => {
                tracing::warn!(%server, error = %e, isolation = ?d, "circuit breaker tripped: server isolated");
                Isolation {
                    tripped_until: Some(now + d),
                    next_probe: now + d,
                }
            }
        };
        st.isolated.insert(server, isolation);
        self.reset_lb(&st);
        drop(st);
        self.wake.notify_all();
    }

    /// Puts `server` back in the balancer's list (a probe succeeded), its
    /// breaker reset.
    fn readmit(&self, server: SocketAddr) {
        let mut st = lock(&self.state);
        if st.isolated.remove(&server).is_some() {
            tracing::info!(%server, "server healthy again");
            let replicas = self.replicas.load_full();
            if let Some(b) = replicas.get(&server).and_then(|r| r.breaker.as_ref()) {
                b.reset();
            }
            self.reset_lb(&st);
        }
    }

    /// A probe of `server` failed: the next is an interval later.
    fn probe_failed(&self, server: SocketAddr) {
        if let Some(i) = lock(&self.state).isolated.get_mut(&server) {
            i.next_probe = Instant::now() + self.interval;
        }
    }

    /// Resets the balancer with the listed servers that are not isolated.
    /// Called under the state's lock so that resets apply in order.
    fn reset_lb(&self, st: &State) {
        let healthy: Vec<ServerEntry> = st
            .servers
            .iter()
            .filter(|n| !st.isolated.contains_key(&n.addr))
            .map(|n| ServerEntry::new(n.addr, n.tag.clone()))
            .collect();
        self.total.store(st.servers.len(), Relaxed);
        self.usable.store(healthy.len(), Relaxed);
        self.lb.reset(&healthy);
    }

    fn servers(&self) -> Vec<ClusterServer> {
        let st = lock(&self.state);
        let replicas = self.replicas.load_full();
        let now = Instant::now();
        st.servers
            .iter()
            .map(|n| {
                let state = match st.isolated.get(&n.addr) {
                    None => ServerState::Healthy,
                    Some(Isolation {
                        tripped_until: Some(end),
                        ..
                    }) => ServerState::Tripped {
                        remaining: end.saturating_duration_since(now),
                    },
                    Some(_) => ServerState::Isolated,
                };
                let r = replicas.get(&n.addr);
                let count = |f: fn(&Replica) -> &AtomicU64| r.map_or(0, |r| f(r).load(Relaxed));
                ClusterServer {
                    node: n.clone(),
                    isolated: state != ServerState::Healthy,
                    state,
                    calls: count(|r| &r.ended),
                    errors: count(|r| &r.errors),
                    inflight: r.map_or(0, |r| r.inflight()),
                    breaker: r
                        .and_then(|r| r.breaker.as_ref())
                        .map(CircuitBreaker::stats),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_are_found_scanned_or_hashed() {
        for n in [1, Replicas::SCAN, Replicas::SCAN + 1, 40] {
            let list: Vec<(SocketAddr, Arc<Replica>)> = (0..n)
                .map(|i| {
                    (
                        SocketAddr::from(([127, 0, 0, 1], 9000 + i as u16)),
                        Replica::new(None),
                    )
                })
                .collect();
            let replicas = Replicas::new(list.clone());
            for (a, r) in &list {
                assert!(Arc::ptr_eq(replicas.get(a).unwrap(), r), "{n}: {a}");
            }
            let unlisted = SocketAddr::from(([127, 0, 0, 1], 8999));
            assert!(replicas.get(&unlisted).is_none(), "{n}");
        }
    }

    #[test]
    fn inflight_is_started_minus_ended_never_below_zero() {
        let r = Replica::new(None);
        r.started.fetch_add(3, Relaxed);
        r.ended.fetch_add(1, Relaxed);
        assert_eq!(r.inflight(), 2);
        // Attempts picked before the server was listed end here too.
        r.ended.fetch_add(5, Relaxed);
        assert_eq!(r.inflight(), 0);
    }

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
