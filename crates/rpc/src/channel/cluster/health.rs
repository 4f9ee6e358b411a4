//! The health checker of a cluster (bRPC's `HealthCheckTask`): a thread
//! that probes each isolated server when its probe is due and re-admits
//! those that pass.
//!
//! A server isolated after a connection failure is first probed one
//! [`ChannelOptions::health_check_interval`] later; one whose circuit
//! breaker tripped, once its isolation is over. A failed probe is tried
//! again an interval later.
//!
//! A plain thread rather than a fiber: a probe blocks (a connect, an HTTP
//! request, or the user's function) and runs once per interval per
//! isolated server; the thread sleeps on a condition variable while
//! every server is healthy, so it costs nothing then.

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{lock, Inner};
use crate::channel::{ChannelOptions, ConnectionType};
use crate::RpcError;

/// How long an HTTP health check may take (bRPC's
/// `health_check_timeout_ms`).
pub const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_millis(500);

/// How an isolated server is found healthy again
/// ([`ChannelOptions::health_check`]).
#[derive(Clone, Default)]
pub enum HealthCheck {
    /// A TCP connect succeeds within the channel's `connect_timeout` (the
    /// default; bRPC's default health check).
    #[default]
    Connect,
    /// `GET path` over HTTP/1.1 answers `200` within
    /// [`HEALTH_CHECK_TIMEOUT`] (bRPC's `health_check_path`). The request
    /// goes on a connection of its own, with the channel's TLS settings
    /// and credential. Every fibrpc server answers `/health` with `200 OK`
    /// while it runs; a server with a handler of its own on a path can
    /// say whether it is ready to take calls.
    HttpGet(String),
    /// The function says whether the server at the address is healthy.
    /// It runs on the cluster's health check thread (a plain thread: it
    /// may block, and may make fibrpc calls), one server at a time, so it
    /// should bound its own time.
    Custom(Arc<dyn Fn(SocketAddr) -> bool + Send + Sync>),
}

impl HealthCheck {
    /// A [`HealthCheck::Custom`] of `f`.
    pub fn custom(f: impl Fn(SocketAddr) -> bool + Send + Sync + 'static) -> HealthCheck {
        HealthCheck::Custom(Arc::new(f))
    }
}

impl std::fmt::Debug for HealthCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HealthCheck::Connect => f.write_str("Connect"),
            HealthCheck::HttpGet(path) => f.debug_tuple("HttpGet").field(path).finish(),
            HealthCheck::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// What a probe needs from the channel's options.
pub(super) struct Prober {
    check: HealthCheck,
    connect_timeout: Duration,
    /// For [`HealthCheck::HttpGet`]: TLS and credential of the channel,
    /// a short connection, no retry.
    http: ChannelOptions,
}

impl Prober {
    pub(super) fn new(options: &ChannelOptions) -> Prober {
        Prober {
            check: options.health_check.clone(),
            connect_timeout: options.connect_timeout,
            http: ChannelOptions {
                timeout: Some(HEALTH_CHECK_TIMEOUT),
                connect_timeout: options.connect_timeout,
                max_retry: 0,
                connection_type: ConnectionType::Short,
                tls: options.tls.clone(),
                auth: options.auth.clone(),
                ..ChannelOptions::default()
            },
        }
    }

    /// Whether `addr` passes the health check.
    fn probe(&self, addr: SocketAddr) -> bool {
        let ok = match &self.check {
            HealthCheck::Connect => TcpStream::connect_timeout(&addr, self.connect_timeout).is_ok(),
            HealthCheck::HttpGet(path) => self.http_get(addr, path),
            HealthCheck::Custom(f) => f(addr),
        };
        tracing::debug!(%addr, ok, check = ?self.check, "health check");
        ok
    }

    fn http_get(&self, addr: SocketAddr, path: &str) -> bool {
        let ch = match crate::http::HttpChannel::new(&addr.to_string(), self.http.clone()) {
            Ok(ch) => ch,
            Err(_) => return false,
        };
        match ch.get(path) {
            Ok(resp) => resp.status() == crate::http::StatusCode::OK,
            Err(e) => {
                tracing::debug!(%addr, path, error = %e, "HTTP health check failed");
                false
            }
        }
    }
}

/// Starts the health checker of `inner` (`name`: the cluster's, for
/// logs). It ends when the selector is dropped.
pub(super) fn start(inner: &Arc<Inner>, name: &str) -> Result<(), RpcError> {
    let inner = inner.clone();
    let name = name.to_string();
    std::thread::Builder::new()
        .name("fibrpc-health".into())
        .spawn(move || run(&inner, &name))
        .map(drop)
        .map_err(|e| {
            RpcError::new(
                libc::EAGAIN,
                format!("cannot start the health check thread: {e}"),
            )
        })
}

fn run(inner: &Inner, name: &str) {
    tracing::debug!(cluster = name, "health checker started");
    while let Some(due) = next_round(inner) {
        for addr in due {
            if inner.prober.probe(addr) {
                inner.readmit(addr);
            } else {
                inner.probe_failed(addr);
            }
        }
    }
    tracing::debug!(cluster = name, "health checker stopped");
}

/// Waits until some isolated server's probe is due; returns the servers
/// due, or `None` once the selector is dropped.
fn next_round(inner: &Inner) -> Option<Vec<SocketAddr>> {
    let mut st = lock(&inner.state);
    loop {
        if st.stopped {
            return None;
        }
        let now = Instant::now();
        let due: Vec<SocketAddr> = st
            .isolated
            .iter()
            .filter(|(_, i)| i.next_probe <= now)
            .map(|(a, _)| *a)
            .collect();
        if !due.is_empty() {
            return Some(due);
        }
        st = match st.isolated.values().map(|i| i.next_probe).min() {
            None => inner.wake.wait(st).unwrap_or_else(|e| e.into_inner()),
            Some(t) => {
                inner
                    .wake
                    .wait_timeout(st, t.saturating_duration_since(now))
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
        };
    }
}
