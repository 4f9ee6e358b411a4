//! [`ChannelOptions`] and [`ConnectionType`].

use std::time::Duration;

use super::cluster::{CircuitBreakerOptions, ClusterRecoverPolicy, HealthCheck};
use crate::protocol::baidu_std::compress::DEFAULT_MAX_DECOMPRESSED_SIZE;

/// How a channel uses connections (bRPC's `connection_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnectionType {
    /// One connection per server shared by all calls, which are matched to
    /// responses by correlation id (bRPC's default for baidu_std).
    #[default]
    Single,
    /// A pool of connections; each carries one call at a time and goes
    /// back to the pool after the response.
    Pooled,
    /// A new connection per call, closed after the response.
    Short,
    /// One shared connection per server for each fiber worker, used by the
    /// calls made on that worker, and one more for calls from plain
    /// threads and migratable fibers (Envoy's per-worker connection
    /// pools). A connection's input is read on its worker, so a response
    /// wakes its caller without waking another thread: with many callers
    /// on one server, each worker runs its own pipeline. The calls of one
    /// fiber keep their order (a started fiber never changes worker);
    /// calls made on different workers are not ordered with each other,
    /// and per-connection server state (a redis `SELECT`) is per worker.
    PerWorker,
}

impl std::str::FromStr for ConnectionType {
    type Err = String;

    /// bRPC's names: `single`, `pooled`, `short`; and `per_worker`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "single" => Ok(ConnectionType::Single),
            "pooled" => Ok(ConnectionType::Pooled),
            "short" => Ok(ConnectionType::Short),
            "per_worker" => Ok(ConnectionType::PerWorker),
            other => Err(format!(
                "unknown connection type {other:?} (single, pooled, short or per_worker)"
            )),
        }
    }
}

/// Channel settings. Defaults are bRPC's.
#[derive(Debug, Clone)]
pub struct ChannelOptions {
    /// Deadline of a whole call, retries included (default 500 ms; `None`
    /// waits forever). [`crate::Controller::set_timeout`] overrides it.
    pub timeout: Option<Duration>,
    /// Connecting gives up after this long (default 200 ms), or earlier if
    /// the call's deadline is nearer.
    pub connect_timeout: Duration,
    /// Times a call is sent again after a connection failure (default 3,
    /// as in bRPC). [`crate::Controller::set_max_retry`] overrides it.
    ///
    /// A failure that proves the request never reached the server — the
    /// connection was refused or its connect timed out, the socket had
    /// already failed, the write queue was full (`EOVERCROWDED`), the
    /// request was still queued when the connection failed — is retried
    /// for every call. A connection that failed after some byte of the
    /// request went out is retried only for an **idempotent** call (see
    /// [`idempotent`](Self::idempotent)): the server may have executed
    /// it, and a plain bRPC retry would run it twice. Timeouts and errors
    /// the server answered with are never retried. The rule:
    /// [`crate::channel::retryable`].
    pub max_retry: u32,
    /// Whether the channel's calls are idempotent — running one twice is
    /// harmless — so that one whose request may have reached the server
    /// is still retried after a connection failure (see
    /// [`max_retry`](Self::max_retry)).
    ///
    /// `None` (the default): the protocol decides per request — over HTTP
    /// `GET`, `HEAD`, `OPTIONS`, `TRACE`, `PUT` and `DELETE` are
    /// idempotent (RFC 9110 §9.2.2) and `POST`, `PATCH` and the rest are
    /// not; baidu_std calls are not. `Some(b)` sets it for every call of
    /// the channel. [`crate::Controller::set_idempotent`] overrides both
    /// for one call.
    pub idempotent: Option<bool>,
    /// If set and no response came after this long, the request is sent
    /// once more — to another replica when the channel is a cluster —
    /// and the first response wins (default: off). The server
    /// may then run it twice, whatever
    /// [`idempotent`](Self::idempotent) says: use it for calls where that
    /// is harmless.
    pub backup_request: Option<Duration>,
    /// See [`ConnectionType`].
    pub connection_type: ConnectionType,
    /// Responses with a larger body close the connection (default 64 MiB).
    pub max_body_size: usize,
    /// Compressed response payloads that expand past this many bytes fail
    /// their call with `ERESPONSE`; the connection and its other calls go
    /// on (default [`DEFAULT_MAX_DECOMPRESSED_SIZE`], 16 MiB).
    /// Decompression allocates at most this much per response, whatever
    /// the payload's header claims. Uncompressed payloads are bounded by
    /// `max_body_size` alone.
    pub max_decompressed_size: usize,
    /// Bytes queued on a connection above which calls fail with
    /// `EOVERCROWDED` (default 64 MiB).
    pub max_unwritten_bytes: usize,
    /// Tell the server the call's remaining time (`timeout_ms` in the
    /// request meta, the milliseconds left when each attempt is sent),
    /// so its handler sees a [`crate::Controller::deadline`] and the
    /// calls it makes inherit it (see [`crate::call_context`]). Default:
    /// on. bRPC has it behind its `baidu_std_protocol_deliver_timeout_ms`
    /// flag, off by default; with this off fibrpc's request frames are
    /// laid out exactly as a default bRPC client's. Over HTTP nothing is
    /// sent (bRPC has no header for it).
    pub deliver_timeout: bool,
    /// Calls made while serving a request (from the handler's fiber)
    /// end no later than that request's deadline: their own timeout is
    /// capped by the time it has left (default: on). See
    /// [`crate::call_context`].
    pub inherit_deadline: bool,
    /// A call whose inherited deadline leaves less than this fails at
    /// once with `ERPCTIMEDOUT`, without being sent: no answer could
    /// come back in time (default 2 ms; at least 1 ms is always
    /// required, since `timeout_ms` counts whole milliseconds). Calls
    /// that inherit nothing are not checked.
    pub min_inherited_budget: Duration,
    /// Decides which failed attempts are sent again (bRPC's
    /// `RetryPolicy`; default `None`:
    /// [`DefaultRetryPolicy`](super::DefaultRetryPolicy), the rule
    /// [`max_retry`](Self::max_retry) describes).
    /// [`crate::Controller::set_retry_policy`] overrides it per call.
    pub retry_policy: Option<super::SharedRetryPolicy>,
    /// Caps the channel's retries to a share of its recent calls, so
    /// that retries cannot multiply the load on a failing cluster
    /// (default: 10 % of the calls plus a bucket of 100; `None`: only
    /// [`max_retry`](Self::max_retry) limits them). See
    /// [`RetryBudget`](super::RetryBudget).
    pub retry_budget: Option<super::RetryBudget>,
    /// How often a cluster channel ([`crate::Channel::with_naming`])
    /// probes a server it isolated after a connection failure (or whose
    /// circuit breaker tripped, once its isolation is over); the server
    /// takes calls again once a probe ([`health_check`](Self::health_check))
    /// passes (default 3 s, bRPC's `health_check_interval_s`). Unused by
    /// single-server channels.
    pub health_check_interval: Duration,
    /// What a cluster channel's probe of an isolated server checks
    /// (default [`HealthCheck::Connect`]: a TCP connect within
    /// [`connect_timeout`](Self::connect_timeout); or an HTTP `GET` of a
    /// path, bRPC's `health_check_path`; or a function of the address).
    pub health_check: HealthCheck,
    /// Gives each server of a cluster channel a circuit breaker (bRPC's
    /// `enable_circuit_breaker`; default off): a server whose error rate
    /// (the server's error answers included, `ELIMIT` excepted) passes a
    /// threshold is isolated for a while, longer each time it trips
    /// again soon after coming back. See [`circuit_breaker`](Self::circuit_breaker)
    /// and [`crate::channel::cluster`]. Off, nothing is counted.
    pub enable_circuit_breaker: bool,
    /// The circuit breakers' windows, thresholds and isolation durations
    /// (default bRPC's), used when
    /// [`enable_circuit_breaker`](Self::enable_circuit_breaker) is on.
    pub circuit_breaker: CircuitBreakerOptions,
    /// Throttles a cluster channel's calls while the cluster comes back
    /// after every server was isolated (bRPC's
    /// `DefaultClusterRecoverPolicy`; default `None`): calls are rejected
    /// with `EREJECT` in proportion to the servers still missing. See
    /// [`ClusterRecoverPolicy`]; bRPC's load balancer parameters
    /// (`"rr:min_working_instances=2 hold_seconds=5"`) set it too.
    pub cluster_recover_policy: Option<ClusterRecoverPolicy>,
    /// Keeps only the servers of a cluster channel's naming service list
    /// that the filter accepts (bRPC's `ns_filter`; default `None`: all
    /// of them). See [`NamingServiceFilter`](super::naming::NamingServiceFilter).
    pub ns_filter: Option<std::sync::Arc<dyn super::naming::NamingServiceFilter>>,
    /// Speak TLS to the servers (default `None`: plaintext). Each new
    /// connection completes its handshake within
    /// [`connect_timeout`](Self::connect_timeout) before it carries a
    /// call; a failed handshake (say, a certificate the CAs did not sign)
    /// fails the connection with `ESSL`.
    pub tls: Option<crate::tls::TlsClientConfig>,
    /// Presents a credential on each new connection (bRPC's
    /// `ChannelOptions::auth`; default `None`): the first request packed
    /// on it carries [`Authenticator::generate_credential`](crate::auth::Authenticator::generate_credential)'s
    /// bytes (baidu_std in `RpcMeta.authentication_data`, HTTP as the
    /// `Authorization` header, unless the request sets its own); later
    /// requests on that connection carry none, as bRPC's. An HTTP server
    /// that checks every request wants the header set on each request
    /// instead. See [`crate::auth`].
    pub auth: Option<std::sync::Arc<dyn crate::auth::Authenticator>>,
    /// Run around each attempt of every call, in order (default: none).
    /// See [`crate::interceptor`].
    pub interceptors: Vec<std::sync::Arc<dyn crate::interceptor::ClientInterceptor>>,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions {
            timeout: Some(Duration::from_millis(500)),
            connect_timeout: Duration::from_millis(200),
            max_retry: 3,
            idempotent: None,
            backup_request: None,
            connection_type: ConnectionType::Single,
            max_body_size: crate::protocol::baidu_std::DEFAULT_MAX_BODY,
            max_decompressed_size: DEFAULT_MAX_DECOMPRESSED_SIZE,
            max_unwritten_bytes: 64 << 20,
            deliver_timeout: true,
            inherit_deadline: true,
            min_inherited_budget: Duration::from_millis(2),
            retry_policy: None,
            retry_budget: Some(super::RetryBudget::default()),
            health_check_interval: Duration::from_secs(3),
            health_check: HealthCheck::Connect,
            enable_circuit_breaker: false,
            circuit_breaker: CircuitBreakerOptions::default(),
            cluster_recover_policy: None,
            ns_filter: None,
            tls: None,
            auth: None,
            interceptors: Vec::new(),
        }
    }
}
