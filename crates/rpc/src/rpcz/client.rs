//! The client's side of rpcz: a span per traced call, from its start to
//! its outcome, a child of the fiber's context (the handler's span when
//! called from a traced handler).

use std::time::Instant;

use super::span::{new_id, stage, Recording, SpanKind};
use crate::Controller;

/// Starts the span of a call (retries included) that started at `start`,
/// if it is sampled or made under a traced context. `describe` names
/// the service and method. Call only when [`super::enabled`].
pub(crate) fn start(
    cntl: &mut Controller,
    protocol: &'static str,
    start: Instant,
    describe: impl FnOnce() -> (String, String),
) {
    let parent = super::context::parent();
    if !super::sample(parent.is_some()) {
        cntl.span = None;
        return;
    }
    let mut rec = Recording::new(SpanKind::Client, protocol, start);
    let (service, method) = describe();
    let s = &mut rec.span;
    s.service = service.into();
    s.method = method.into();
    s.log_id = cntl.log_id;
    s.trace_id = parent.map_or_else(new_id, |p| p.trace_id);
    s.span_id = new_id();
    s.parent_span_id = parent.map_or(0, |p| p.span_id);
    cntl.span = Some(Box::new(rec));
}

/// The ids a traced call's request carries: (trace, the call's span, its
/// parent). `None` for an untraced call.
#[inline]
pub(crate) fn outgoing(cntl: &Controller) -> Option<(u64, u64, u64)> {
    let s = &cntl.span.as_deref()?.span;
    Some((s.trace_id, s.span_id, s.parent_span_id))
}

/// An attempt's request was packed (`size` bytes).
#[inline]
pub(crate) fn packed(cntl: &mut Controller, size: usize) {
    if let Some(rec) = cntl.span.as_deref_mut() {
        rec.mark(stage::CLIENT_PACKED);
        rec.span.request_size = size as u64;
    }
}

/// An attempt's request was handed to the connection.
#[inline]
pub(crate) fn written(cntl: &mut Controller) {
    if let Some(rec) = cntl.span.as_deref_mut() {
        rec.mark(stage::CLIENT_WRITTEN);
    }
}

/// An attempt's response arrived (`size` bytes, 0 if the protocol does
/// not say).
#[inline]
pub(crate) fn received(cntl: &mut Controller, size: usize) {
    if let Some(rec) = cntl.span.as_deref_mut() {
        rec.mark(stage::CLIENT_RECEIVED);
        rec.span.response_size = size as u64;
    }
}

/// The call ended with `error_code` (0: success): the span is finished
/// and kept.
#[inline]
pub(crate) fn done(cntl: &mut Controller, error_code: i32) {
    if let Some(mut rec) = cntl.span.take() {
        rec.mark(stage::CLIENT_DONE);
        rec.span.peer = cntl.remote_side;
        rec.span.error_code = error_code;
        super::collector::submit(rec.span);
    }
}
