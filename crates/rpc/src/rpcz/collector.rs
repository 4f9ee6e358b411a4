//! Where finished spans go: a bounded in-memory ring (newest kept) that
//! `/rpcz` reads, and a `tracing` event per span for the user's
//! subscriber.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use super::span::Span;

/// The spans kept, oldest first. A plain mutex: a push is a few
/// instructions and never waits for anything else, and only sampled calls
/// take it.
static RING: Mutex<VecDeque<Arc<Span>>> = Mutex::new(VecDeque::new());

fn ring() -> std::sync::MutexGuard<'static, VecDeque<Arc<Span>>> {
    RING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Keeps a finished span (dropping the oldest past `rpcz_max_spans`) and
/// reports it to `tracing`.
pub(crate) fn submit(span: Span) {
    emit(&span);
    let span = Arc::new(span);
    let cap = super::MAX_SPANS.load(Ordering::Relaxed).max(1);
    let evicted = {
        let mut r = ring();
        let evicted = if r.len() >= cap { r.pop_front() } else { None };
        r.push_back(span);
        evicted
    };
    // The evicted span (its names) is freed outside the lock.
    drop(evicted);
}

/// Drops the oldest spans until at most `cap` are kept (the ring shrank).
pub(crate) fn trim(cap: usize) {
    let dropped: Vec<_> = {
        let mut r = ring();
        let excess = r.len().saturating_sub(cap);
        r.drain(..excess).collect()
    };
    drop(dropped);
}

/// The spans kept (a snapshot), the last finished first.
pub fn spans() -> Vec<Arc<Span>> {
    ring().iter().rev().cloned().collect()
}

/// Forgets every span kept.
pub fn clear() {
    let all = std::mem::take(&mut *ring());
    drop(all);
}

/// The span as a `tracing` event (target `fibrpc::rpcz`, level DEBUG),
/// for a subscriber that exports spans elsewhere.
fn emit(s: &Span) {
    tracing::debug!(
        target: "fibrpc::rpcz",
        kind = s.kind.as_str(),
        protocol = s.protocol,
        service = &*s.service,
        method = &*s.method,
        peer = s.peer.map(tracing::field::display),
        log_id = s.log_id,
        trace_id = %format_args!("{:016x}", s.trace_id),
        span_id = %format_args!("{:016x}", s.span_id),
        parent_span_id = %format_args!("{:016x}", s.parent_span_id),
        request_size = s.request_size,
        response_size = s.response_size,
        error_code = s.error_code,
        start_ns = s.start_ns,
        latency_ns = s.latency().as_nanos() as u64,
        "rpcz span"
    );
}
