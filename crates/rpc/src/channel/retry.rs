//! The retry rule: which failed attempts the call engine sends again.
//!
//! bRPC retries a call whose connection broke or could not be made, up to
//! `max_retry` times. That is safe when the request never reached the
//! server, but a request the server may already have executed would run
//! twice: a payment made twice, a counter bumped twice. So fibrpc keeps
//! bRPC's rule for connection failures and adds one condition:
//!
//! - a request of which **no byte reached the kernel** (the connection
//!   was refused or timed out, the socket had already failed, the write
//!   queue was full — `EOVERCROWDED` —, or the request was still queued
//!   behind others when the connection failed) is sent again, whatever
//!   the call;
//! - a request that **may have been sent** is sent again only if the call
//!   is **idempotent** ([`crate::Controller::set_idempotent`],
//!   [`ChannelOptions::idempotent`](super::ChannelOptions::idempotent),
//!   or the protocol's view of the request: HTTP's `GET`, `HEAD`,
//!   `OPTIONS`, `TRACE`, `PUT` and `DELETE`, RFC 9110 §9.2.2).
//!
//! Whatever the call, timeouts (`ERPCTIMEDOUT`) and errors the server
//! answered with are final, but one: `ELOGOFF`, by which a stopping server
//! says it did not run the request.

use crate::{errno, RpcError};

/// Whether a failed attempt's request may have reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestSent {
    /// Provably not: no byte of it was handed to the kernel (the
    /// connection was never made, the write was refused, or the request
    /// was still queued when the connection failed).
    No,
    /// Some byte of it was handed to the kernel, so the server may have
    /// received and executed it.
    Maybe,
}

/// The engine's one retry rule (see the module docs): whether an
/// attempt that failed with `e` is sent again, given whether its request
/// `sent` and whether the call is `idempotent`. The retry budget and the
/// deadline are checked by the engine.
///
/// Retryable failures are this side's broken or unmade connections
/// ([`RpcError::is_local`]). Timeouts are final, and so is every error the
/// server answered with, whatever its code: a handler forwarding a
/// downstream `ECONNREFUSED` is not the caller's own refused connection.
pub fn retryable(e: &RpcError, sent: RequestSent, idempotent: bool) -> bool {
    connection_failure(e) && (sent == RequestSent::No || idempotent)
}

/// The server answered that it did not run the request: `ELOGOFF`, a
/// stopping server (bRPC retries it too), whatever the call. The
/// connection is not used again (the engine retires it), so the retry
/// reaches whoever serves the address now, or another replica.
pub(super) fn refused_unrun(e: &RpcError) -> bool {
    e.code == errno::ELOGOFF && !e.is_local()
}

/// This side's connection broke, could not be made, or could not take
/// the request.
pub(super) fn connection_failure(e: &RpcError) -> bool {
    e.is_local()
        && matches!(
            e.code,
            errno::EFAILEDSOCKET
                | errno::EEOF
                | errno::ELOGOFF
                | errno::EOVERCROWDED
                | libc::ECONNREFUSED
                | libc::ECONNRESET
                | libc::ECONNABORTED
                | libc::EPIPE
                | libc::ENETUNREACH
                | libc::EHOSTUNREACH
        )
}

/// What the call's error text says when only idempotency kept the call
/// from being sent again.
pub(super) const NOT_RETRIED: &str = "not retried: the request may have reached the server \
     and the call is not idempotent (Controller::set_idempotent, ChannelOptions::idempotent)";
