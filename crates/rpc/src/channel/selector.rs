//! The call engine's seam "choose the server for this attempt".
//!
//! Every attempt of a call (the first, each retry, a backup request) asks
//! the channel's [`ServerSelector`] for a server, and tells it how the
//! attempt went. A channel to one address uses [`SingleServer`]; the
//! cluster layer — naming services feeding a server list, load
//! balancers, health checks — is a selector too
//! ([`ClusterSelector`](super::cluster::ClusterSelector)), with its
//! circuit breakers: each plugs in here without touching the engine.

use std::net::SocketAddr;
use std::time::Duration;

use crate::RpcError;

/// What a selector knows of the call it chooses for.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct SelectInput<'a> {
    /// Servers earlier attempts of this call went to (and failed on):
    /// a retry should go elsewhere when it can (bRPC's
    /// `ExcludedServers`).
    pub excluded: &'a [SocketAddr],
    /// The caller's request code, for consistent hashing (bRPC's
    /// `Controller::set_request_code`), if set.
    pub request_code: Option<u64>,
}

impl<'a> SelectInput<'a> {
    /// The input of an attempt that avoids `excluded` and carries
    /// `request_code` (for selectors and load balancers used outside the
    /// engine: a cluster layer, tests, benchmarks).
    pub fn new(excluded: &'a [SocketAddr], request_code: Option<u64>) -> SelectInput<'a> {
        SelectInput {
            excluded,
            request_code,
        }
    }
}

/// How one attempt went, for the selector's bookkeeping (load balancers
/// weigh latency; circuit breakers count errors).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct AttemptOutcome<'a> {
    /// The server the attempt went to.
    pub server: SocketAddr,
    /// The attempt's error, `None` if a response came.
    pub error: Option<&'a RpcError>,
    /// From sending the request to the outcome.
    pub latency: Duration,
}

impl<'a> AttemptOutcome<'a> {
    /// The outcome of an attempt on `server` that failed with `error` (or
    /// succeeded, `None`) after `latency`.
    pub fn new(
        server: SocketAddr,
        error: Option<&'a RpcError>,
        latency: Duration,
    ) -> AttemptOutcome<'a> {
        AttemptOutcome {
            server,
            error,
            latency,
        }
    }
}

/// Chooses the server of each attempt. See the module docs.
pub trait ServerSelector: Send + Sync + 'static {
    /// The server for the next attempt. An error fails the attempt (and
    /// the call, unless the error is retryable and attempts remain).
    fn select(&self, call: &SelectInput<'_>) -> Result<SocketAddr, RpcError>;

    /// How an attempt went: its error if it failed on this side (no
    /// response: a broken connection, a timeout), `None` if a response
    /// came, whatever it says. Called once per attempt. Default: ignored.
    fn feedback(&self, _outcome: &AttemptOutcome<'_>) {}

    /// What the response of an attempt said, once the protocol read it:
    /// `error` is the error the server answered with, `None` a success
    /// (circuit breakers count both). Follows the attempt's
    /// [`feedback`](Self::feedback) (which had no error). Default:
    /// ignored.
    fn answered(&self, _outcome: &AttemptOutcome<'_>) {}

    /// Whether every attempt goes to the same server. The callers of a
    /// selector that spreads them may send their next requests to any
    /// of its servers, so the writers of all of them wait for the
    /// callers a response woke (see `Socket::woken_callers`). Default:
    /// `false`.
    fn single_server(&self) -> bool {
        false
    }
}

/// One server, always.
#[derive(Debug, Clone, Copy)]
pub struct SingleServer(pub SocketAddr);

impl ServerSelector for SingleServer {
    fn select(&self, _: &SelectInput<'_>) -> Result<SocketAddr, RpcError> {
        Ok(self.0)
    }

    fn single_server(&self) -> bool {
        true
    }
}
