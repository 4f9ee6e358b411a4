//! The end of a stop ([`Server::join`](super::Server::join)): within the
//! grace period, wait for the requests in flight to be answered and for
//! every connection's queued responses to reach the kernel; then close
//! every connection at once, report what was cut short, and return.
//!
//! Nothing here waits on one connection at a time: a peer that never
//! reads holds the stop no longer than the grace period, however many
//! such peers there are.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::ServerContext;
use crate::{errno, RpcError};

/// Waits (until `deadline`, or without end if `None`), then closes the
/// connections. `grace` is only for the report.
pub(super) fn finish(ctx: &ServerContext, deadline: Option<Instant>, grace: Duration) {
    let answered = wait_handlers(ctx, deadline);
    let flushed = answered && wait_flushed(ctx, deadline);
    if !answered || !flushed {
        report(ctx, grace);
    }
    close_all(ctx);
}

/// Waits until no request is in flight; then, from that moment on,
/// requests are refused (`closing`). False if `deadline` came first.
fn wait_handlers(ctx: &ServerContext, deadline: Option<Instant>) -> bool {
    let count = &ctx.shared.inflight;
    // Before the first sum: from here on, every request that counts out
    // wakes us (see `count_out`).
    ctx.shared.draining.store(true, Ordering::SeqCst);
    loop {
        // Before the sum: a request counting out after it moves it.
        let generation = count.generation();
        if count.sum() == 0 {
            // Pairs with `InflightGuard::enter` (SeqCst add, then SeqCst
            // load of `closing`): a request that slipped in before this
            // store is seen in the sum below and waited for; one after
            // it is refused and leaves at once.
            ctx.shared.closing.store(true, Ordering::SeqCst);
            if count.sum() == 0 {
                return true;
            }
            continue;
        }
        if passed(deadline) {
            return false;
        }
        // Woken when a request counts out (or by the deadline).
        count.wait_changed(generation, deadline);
    }
}

/// Waits until every connection has written what it queued. False if
/// `deadline` came first.
fn wait_flushed(ctx: &ServerContext, deadline: Option<Instant>) -> bool {
    // Writes complete in the write-behind fibers with no one to tell, so
    // this looks: often at first (most stops find little queued), then
    // every 10 ms.
    let mut pause = Duration::from_millis(1);
    loop {
        if unflushed(ctx) == 0 {
            return true;
        }
        if passed(deadline) {
            return false;
        }
        let nap = deadline.map_or(pause, |d| {
            pause.min(d.saturating_duration_since(Instant::now()))
        });
        let _ = fibrpc_fiber::sleep(nap);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// Connections with bytes queued and not yet written.
fn unflushed(ctx: &ServerContext) -> usize {
    ctx.connection_ids()
        .into_iter()
        .filter_map(|id| id.address())
        .filter(|s| s.unwritten_bytes() > 0)
        .count()
}

/// Logs the handlers still running (by name, with how many requests are
/// in each) and the connections whose responses are not written.
///
/// The counts are the per-method concurrency gauges every request
/// updates anyway (and one per HTTP handler), so knowing what runs costs
/// the request path nothing more; a table of each request with its start
/// time cost two lock round trips per request.
fn report(ctx: &ServerContext, grace: Duration) {
    let mut running: Vec<(String, usize)> = ctx
        .shared
        .services
        .iter()
        .flat_map(|(name, entry)| {
            let methods = entry.service.method_names();
            entry
                .status
                .iter()
                .zip(methods)
                .map(move |(status, method)| (format!("{name}.{method}"), status.concurrency()))
        })
        .chain(
            ctx.shared
                .http_routes
                .running()
                .into_iter()
                .map(|(path, n)| (format!("HTTP {path}"), n)),
        )
        .filter(|(_, n)| *n > 0)
        .collect();
    running.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let unflushed = unflushed(ctx);
    tracing::warn!(
        grace = ?grace,
        handlers = running.len(),
        unflushed_connections = unflushed,
        "the stop's grace period ended: closing every connection"
    );
    for (handler, requests) in running {
        tracing::warn!(
            handler = %handler,
            requests,
            running_for_at_least = ?grace,
            "handler still running when the server stopped; its response will not be sent"
        );
    }
}

/// Fails every connection: pending writes are dropped, peers see the
/// close, handlers still running find their connection gone.
fn close_all(ctx: &ServerContext) {
    ctx.shared.closing.store(true, Ordering::SeqCst);
    for id in ctx.connection_ids() {
        if let Some(sock) = id.address() {
            sock.set_failed(RpcError::new(errno::ELOGOFF, "server stopped"));
        }
    }
}

fn passed(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}
