//! The health checker of a cluster (bRPC's `HealthCheckTask`): a thread
//! that, while some server is isolated, tries a TCP connect to each one
//! every interval and re-admits those that accept.
//!
//! A plain thread rather than a fiber: a probe is a blocking connect
//! bounded by the connect timeout, one per interval per isolated server,
//! and the thread sleeps on a condition variable while every server is
//! healthy, so it costs nothing then.

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use super::{lock, Inner};
use crate::RpcError;

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
    while let Some(isolated) = next_round(inner) {
        for addr in isolated {
            if probe(addr, inner) {
                inner.readmit(addr);
            }
        }
    }
    tracing::debug!(cluster = name, "health checker stopped");
}

/// Waits until a server is isolated, then one interval more; returns the
/// servers isolated then, or `None` once the selector is dropped.
fn next_round(inner: &Inner) -> Option<Vec<SocketAddr>> {
    let mut st = lock(&inner.state);
    while !st.stopped && st.isolated.is_empty() {
        st = inner.wake.wait(st).unwrap_or_else(|e| e.into_inner());
    }
    let due = Instant::now() + inner.interval;
    loop {
        if st.stopped {
            return None;
        }
        let left = due.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Some(st.isolated.iter().copied().collect());
        }
        st = inner
            .wake
            .wait_timeout(st, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// Whether `addr` accepts a TCP connection within the probe timeout. The
/// connection is closed at once.
fn probe(addr: SocketAddr, inner: &Inner) -> bool {
    let ok = TcpStream::connect_timeout(&addr, inner.probe_timeout).is_ok();
    tracing::debug!(%addr, ok, "health check");
    ok
}
