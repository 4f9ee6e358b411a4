//! [`RetryPolicy`] (bRPC's `RetryPolicy::DoRetry`): the user's say on
//! whether a failed attempt is sent again, and after how long.
//!
//! The engine asks the policy once per failed attempt — a connection
//! that broke or could not be made, or an error the server answered
//! with — and only while the call has room for another attempt
//! (`max_retry`, the deadline) and the channel's retry budget
//! ([`RetryBudget`](super::RetryBudget)) has a token. The policy cannot
//! extend either: it only narrows or widens which errors are retried.
//! A retry goes to a replica the call has not tried yet when the
//! channel is a cluster.
//!
//! [`DefaultRetryPolicy`] is the engine's own rule (see `retry.rs`):
//! this side's connection failures when the request provably never left
//! or the call is idempotent, and `ELOGOFF` from a stopping server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::retry::{refused_unrun, retryable, RequestSent};
use crate::RpcError;

/// A failed attempt, as a [`RetryPolicy`] sees it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct FailedAttempt<'a> {
    /// The attempt's error. [`RpcError::is_local`] tells this side's
    /// connection failures from the errors the server answered with.
    pub error: &'a RpcError,
    /// Which attempt failed: 1 for the first, 2 for the first retry...
    pub attempt: u32,
    /// Whether the request may have reached the server (an answered
    /// error always did).
    pub request_sent: RequestSent,
    /// Whether the call is idempotent (the controller's, the channel's
    /// or the protocol's view; see
    /// [`ChannelOptions::idempotent`](super::ChannelOptions::idempotent)).
    pub idempotent: bool,
    /// The server the attempt went to, if one was chosen.
    pub server: Option<SocketAddr>,
}

impl<'a> FailedAttempt<'a> {
    /// An attempt numbered `attempt` that failed with `error` on `server`
    /// (for policies tested outside the engine).
    pub fn new(
        error: &'a RpcError,
        attempt: u32,
        request_sent: RequestSent,
        idempotent: bool,
        server: Option<SocketAddr>,
    ) -> FailedAttempt<'a> {
        FailedAttempt {
            error,
            attempt,
            request_sent,
            idempotent,
            server,
        }
    }
}

/// Decides whether a failed attempt is sent again (bRPC's
/// `RetryPolicy`). Set per channel
/// ([`ChannelOptions::retry_policy`](super::ChannelOptions::retry_policy))
/// or per call ([`Controller::set_retry_policy`](crate::Controller::set_retry_policy)).
///
/// Retrying a request that may have reached the server runs it twice
/// unless the call is idempotent: a policy that widens the default
/// should look at [`FailedAttempt::request_sent`] and
/// [`FailedAttempt::idempotent`].
pub trait RetryPolicy: Send + Sync + 'static {
    /// Whether `attempt` is sent again (the engine has checked
    /// `max_retry` and the deadline already).
    fn do_retry(&self, attempt: &FailedAttempt<'_>) -> bool;

    /// How long to wait before the retry (default: none). The wait
    /// suspends the calling fiber; a retry whose wait would pass the
    /// call's deadline is not made.
    fn backoff(&self, _attempt: &FailedAttempt<'_>) -> Duration {
        Duration::ZERO
    }
}

impl std::fmt::Debug for dyn RetryPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RetryPolicy")
    }
}

/// The engine's rule (see [`ChannelOptions::max_retry`](super::ChannelOptions::max_retry)):
/// a connection failure of this side when the request provably never
/// left or the call is idempotent ([`retryable`]), or `ELOGOFF`
/// answered by a stopping server. No backoff.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultRetryPolicy;

impl RetryPolicy for DefaultRetryPolicy {
    fn do_retry(&self, a: &FailedAttempt<'_>) -> bool {
        retryable(a.error, a.request_sent, a.idempotent) || refused_unrun(a.error)
    }
}

/// A policy shared by channels and controllers.
pub type SharedRetryPolicy = Arc<dyn RetryPolicy>;
