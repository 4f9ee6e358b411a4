//! The server's side of rpcz: a span per traced request, from the reader
//! that cut it to the write of its response; its handler's fiber carries
//! the span as the context of the calls it makes.

use std::cell::Cell;
use std::time::Instant;

use super::context::{self, ParentGuard, TraceContext};
use super::span::{new_id, stage, Recording, SpanKind};
use crate::Controller;

/// What a request says of its caller's span (baidu_std's meta, HTTP's
/// `traceparent`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Upstream {
    pub trace_id: u64,
    /// The caller's (client) span: the parent of the server's.
    pub span_id: u64,
    /// The caller recorded its span: so does the server (whatever the
    /// sample rate), so that the trace has no holes.
    pub traced: bool,
}

thread_local! {
    /// When the reader cut the message being processed on this thread;
    /// set only around `Protocol::process_request`, which reads it before
    /// anything can switch fibers.
    static RECEIVED: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// What a request's W3C `traceparent` header (HTTP, gRPC) says of its
/// caller; a malformed one is ignored.
pub(crate) fn upstream_of(headers: &http::HeaderMap) -> Option<Upstream> {
    let v = headers.get(super::traceparent::HEADER)?;
    let p = super::traceparent::parse(v.as_bytes())?;
    Some(Upstream {
        trace_id: p.trace_id,
        span_id: p.parent_id,
        traced: p.sampled,
    })
}

/// In the reader, for each message cut: now, if rpcz is on.
#[inline]
pub(crate) fn cut_time() -> Option<Instant> {
    if super::enabled() {
        Some(Instant::now())
    } else {
        None
    }
}

/// Makes `received` (a message's [`cut_time`]) the one a span started
/// while the guard lives takes as its first timestamp.
pub(crate) fn processing(received: Option<Instant>) -> Option<ReceivedScope> {
    let t = received?;
    RECEIVED.with(|r| r.set(Some(t)));
    Some(ReceivedScope(()))
}

/// Clears the cut time on drop (a protocol that traces nothing leaves it
/// unread).
pub(crate) struct ReceivedScope(());

impl Drop for ReceivedScope {
    fn drop(&mut self) {
        RECEIVED.with(|r| r.set(None));
    }
}

/// Starts the span of a request about to be dispatched, if it is sampled
/// (or its caller traced it). Call only when [`super::enabled`]: the
/// check is the caller's, so that it computes no argument when rpcz is
/// off.
pub(crate) fn start(
    cntl: &mut Controller,
    protocol: &'static str,
    service: &str,
    method: &str,
    upstream: Option<Upstream>,
    request_size: usize,
) {
    let received = RECEIVED.with(|r| r.take());
    if !super::sample(upstream.is_some_and(|u| u.traced)) {
        return;
    }
    let now = Instant::now();
    let mut rec = Recording::new(SpanKind::Server, protocol, received.unwrap_or(now));
    rec.mark_at(stage::SERVER_PARSED, now);
    let s = &mut rec.span;
    s.service = service.into();
    s.method = method.into();
    s.peer = cntl.remote_side;
    s.log_id = cntl.log_id;
    s.trace_id = upstream.map_or(0, |u| u.trace_id);
    if s.trace_id == 0 {
        s.trace_id = new_id();
    }
    s.span_id = new_id();
    s.parent_span_id = upstream.map_or(0, |u| u.span_id);
    s.request_size = request_size as u64;
    cntl.span = Some(Box::new(rec));
}

/// The handler starts: stamped, and its span becomes the fiber's context
/// until the guard drops. `None` (nothing done) for an untraced request.
#[inline]
pub(crate) fn handler_start(cntl: &mut Controller) -> Option<ParentGuard> {
    let rec = cntl.span.as_deref_mut()?;
    rec.mark(stage::SERVER_HANDLER_START);
    Some(context::enter(Some(TraceContext {
        trace_id: rec.span.trace_id,
        span_id: rec.span.span_id,
    })))
}

/// The handler returned (or answered, for a deferred one).
#[inline]
pub(crate) fn handler_end(cntl: &mut Controller) {
    if let Some(rec) = cntl.span.as_deref_mut() {
        rec.mark(stage::SERVER_HANDLER_END);
    }
}

/// The response (`response_size` bytes, error `error_code`) was handed
/// to the connection: the span is finished and kept.
#[inline]
pub(crate) fn sent(cntl: &mut Controller, response_size: usize, error_code: i32) {
    if let Some(rec) = cntl.span.take() {
        finish(*rec, response_size, error_code);
    }
}

/// A streaming call ended with `error_code` after `request_size` bytes
/// came in and `response_size` went out: the span is finished and kept.
pub(crate) fn stream_ended(
    cntl: &mut Controller,
    request_size: u64,
    response_size: u64,
    error_code: i32,
) {
    if let Some(mut rec) = cntl.span.take() {
        rec.span.request_size = request_size;
        finish(*rec, response_size as usize, error_code);
    }
}

fn finish(mut rec: Recording, response_size: usize, error_code: i32) {
    rec.mark(stage::SERVER_SENT);
    rec.span.response_size = response_size as u64;
    rec.span.error_code = error_code;
    super::collector::submit(rec.span);
}
