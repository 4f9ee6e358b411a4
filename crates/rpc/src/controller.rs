//! [`Controller`]: the per-call settings and results, on both sides.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fibrpc_iobuf::IOBuf;

use crate::channel::{AttemptStatus, CallAttempt, SharedRetryPolicy};
use crate::protocol::baidu_std::compress::CompressType;
use crate::RpcError;

/// Settings and results of one call (bRPC's `brpc::Controller`).
///
/// **Client side**: set the timeout, retries, log id, compression,
/// checksum and request attachment before the call; after it, read
/// [`failed`](Self::failed) / [`error_code`](Self::error_code), the
/// response attachment, the remote side and the latency. A controller can
/// be [`reset`](Self::reset) and reused.
///
/// **Server side**: the handler gets the caller's log id, deadline,
/// request attachment and addresses, sets the response attachment and
/// compression, and may [`set_failed`](Self::set_failed).
#[derive(Debug, Default)]
pub struct Controller {
    pub(crate) timeout: Option<Duration>,
    pub(crate) max_retry: Option<u32>,
    pub(crate) idempotent: Option<bool>,
    pub(crate) backup_request: Option<Duration>,
    pub(crate) log_id: u64,
    /// Whether [`set_log_id`](Self::set_log_id) was called (or the
    /// request carried one): bRPC sends a log id only then.
    pub(crate) has_log_id: bool,
    pub(crate) compress_type: Option<CompressType>,
    pub(crate) checksum: bool,
    pub(crate) request_attachment: IOBuf,
    pub(crate) response_attachment: IOBuf,
    pub(crate) error: Option<RpcError>,
    pub(crate) remote_side: Option<SocketAddr>,
    pub(crate) local_side: Option<SocketAddr>,
    pub(crate) peer_subject: Option<std::sync::Arc<str>>,
    pub(crate) deadline: Option<Instant>,
    pub(crate) latency: Duration,
    pub(crate) retried: u32,
    pub(crate) attempt_errors: Vec<RpcError>,
    /// The attempts that did not answer the call, in the order they
    /// ended (see [`attempts`](Self::attempts)).
    pub(crate) unanswered: Vec<CallAttempt>,
    /// Client side: a response ended the last call.
    pub(crate) answered: bool,
    /// The answer came from the backup request.
    pub(crate) answered_by_backup: bool,
    pub(crate) retry_policy: Option<SharedRetryPolicy>,
    pub(crate) has_backup_request: bool,
    pub(crate) request_code: Option<u64>,
    /// Server side: who the peer is (the connection's, from the
    /// authenticator).
    pub(crate) auth_context: Option<std::sync::Arc<crate::auth::AuthContext>>,
    /// Key/value pairs sent with the request (baidu_std
    /// `RpcMeta.user_fields`; HTTP headers from a client).
    pub(crate) request_user_fields: std::collections::BTreeMap<String, String>,
    /// Server side, over HTTP: the request's headers.
    pub(crate) http_request_headers: http::HeaderMap,
    /// The call's rpcz span while it is being recorded (`None` unless
    /// rpcz is on and the call sampled).
    pub(crate) span: Option<Box<crate::rpcz::Recording>>,
    /// Streams the call opens (client) or the request carries (server).
    pub(crate) streams: crate::protocol::streaming::CallStreams,
    /// Server side: the protocol the request came in with (`""` when
    /// the protocol did not say), for the rpc dump.
    pub(crate) protocol: &'static str,
    /// Client side, after a combo channel's call: the sub-calls'
    /// controllers (`None` for a sub-channel skipped).
    pub(crate) subs: Vec<Option<Controller>>,
    /// Client side: what cancels the call, once asked for
    /// ([`canceller`](Self::canceller)).
    pub(crate) canceller: Option<crate::channel::CallCanceller>,
}

impl Controller {
    /// A controller with every setting at its channel default.
    pub fn new() -> Controller {
        Controller::default()
    }

    /// Clears results and settings so the controller can serve another call.
    pub fn reset(&mut self) {
        *self = Controller::default();
    }

    // ---- settings (client) ----

    /// Overrides the channel's timeout for this call (the whole call,
    /// retries included).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = Some(timeout);
    }

    /// The timeout set with [`set_timeout`](Self::set_timeout), if any.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Overrides the channel's `max_retry` for this call. Which failures
    /// are retried: [`ChannelOptions::max_retry`](crate::ChannelOptions::max_retry).
    pub fn set_max_retry(&mut self, n: u32) {
        self.max_retry = Some(n);
    }

    /// Marks this call idempotent (running it twice is harmless) or not,
    /// overriding the channel's
    /// [`idempotent`](crate::ChannelOptions::idempotent) and the
    /// protocol's view (HTTP's method). Only an idempotent call is
    /// retried after a connection failure once its request may have
    /// reached the server; any call is retried when the failure proves
    /// the request never left (a refused connection, say).
    pub fn set_idempotent(&mut self, idempotent: bool) {
        self.idempotent = Some(idempotent);
    }

    /// Overrides the channel's
    /// [`retry_policy`](crate::ChannelOptions::retry_policy) for this
    /// call (bRPC's `Controller::set_retry_policy`).
    pub fn set_retry_policy(&mut self, policy: SharedRetryPolicy) {
        self.retry_policy = Some(policy);
    }

    /// What [`set_idempotent`](Self::set_idempotent) said, if it was
    /// called.
    pub fn idempotent(&self) -> Option<bool> {
        self.idempotent
    }

    /// Overrides the channel's backup-request delay for this call: if no
    /// response arrived after `delay`, the request is sent once more and the
    /// first response wins.
    pub fn set_backup_request(&mut self, delay: Duration) {
        self.backup_request = Some(delay);
    }

    /// Sets the request code: calls with the same code go to the same
    /// server under a consistent-hashing load balancer (bRPC's
    /// `set_request_code`).
    pub fn set_request_code(&mut self, code: u64) {
        self.request_code = Some(code);
    }

    /// Sets the log id carried to the server (and shown in its logs).
    pub fn set_log_id(&mut self, id: u64) {
        self.log_id = id;
        self.has_log_id = true;
    }

    /// The log id: set by the caller, or (server side) received.
    pub fn log_id(&self) -> u64 {
        self.log_id
    }

    /// Compresses the request (client) or the response (server) payload.
    pub fn set_compress_type(&mut self, t: CompressType) {
        self.compress_type = Some(t);
    }

    /// The compression chosen for what this side sends.
    pub fn compress_type(&self) -> CompressType {
        self.compress_type.unwrap_or(CompressType::None)
    }

    /// Adds a CRC32C checksum of payload and attachment to the request
    /// (client) or response (server).
    pub fn set_checksum(&mut self, on: bool) {
        self.checksum = on;
    }

    /// Whether a checksum is sent.
    pub fn checksum(&self) -> bool {
        self.checksum
    }

    // ---- attachments ----

    /// The request attachment: raw bytes sent after the payload, never
    /// serialized or compressed (zero copy). Client: fill before the call.
    /// Server: what the client sent.
    pub fn request_attachment(&self) -> &IOBuf {
        &self.request_attachment
    }

    /// Mutable access to the request attachment.
    pub fn request_attachment_mut(&mut self) -> &mut IOBuf {
        &mut self.request_attachment
    }

    /// The response attachment. Server: fill in the handler. Client: what
    /// the server sent.
    pub fn response_attachment(&self) -> &IOBuf {
        &self.response_attachment
    }

    /// Mutable access to the response attachment.
    pub fn response_attachment_mut(&mut self) -> &mut IOBuf {
        &mut self.response_attachment
    }

    // ---- results and errors ----

    /// Marks the call failed. Server: the response carries `code` and
    /// `text` instead of a payload. Client: used by the framework.
    pub fn set_failed(&mut self, code: i32, text: impl Into<String>) {
        self.error = Some(RpcError::new(code, text));
    }

    /// Whether the call failed.
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }

    /// The error code, 0 on success.
    pub fn error_code(&self) -> i32 {
        self.error.as_ref().map_or(0, |e| e.code)
    }

    /// The error text, empty on success.
    pub fn error_text(&self) -> &str {
        self.error.as_ref().map_or("", |e| e.text.as_str())
    }

    /// The error, if the call failed.
    pub fn error(&self) -> Option<&RpcError> {
        self.error.as_ref()
    }

    /// The peer's address: the server (client side) or the client.
    pub fn remote_side(&self) -> Option<SocketAddr> {
        self.remote_side
    }

    /// This side's address of the connection.
    pub fn local_side(&self) -> Option<SocketAddr> {
        self.local_side
    }

    /// Server side, over TLS: the subject of the client's verified
    /// certificate (`CN=...,O=...`), when the server asks for client
    /// certificates (`TlsServerConfig::with_client_auth`) and the client
    /// presented one. `None` otherwise.
    pub fn peer_certificate_subject(&self) -> Option<&str> {
        self.peer_subject.as_deref()
    }

    /// Server side: who the peer is, when the server has an
    /// authenticator ([`ServerOptions::auth`](crate::ServerOptions::auth))
    /// and it accepted the connection's credential. `None` otherwise.
    pub fn auth_context(&self) -> Option<&crate::auth::AuthContext> {
        self.auth_context.as_deref()
    }

    /// Key/value pairs sent with the request. Server side: what a
    /// baidu_std client put in `RpcMeta.user_fields` (HTTP requests'
    /// headers are [`http_request_headers`](Self::http_request_headers)).
    /// Client side: what this call sends.
    pub fn request_user_fields(&self) -> &std::collections::BTreeMap<String, String> {
        &self.request_user_fields
    }

    /// Client side: the key/value pairs to send with the request — over
    /// baidu_std in `RpcMeta.user_fields` (bRPC's
    /// `request_user_fields`), over HTTP as headers (each key must then
    /// be a valid header name and each value a valid header value, or
    /// the call fails with `EREQUEST`). A client interceptor may add
    /// them before each attempt.
    pub fn request_user_fields_mut(&mut self) -> &mut std::collections::BTreeMap<String, String> {
        &mut self.request_user_fields
    }

    /// Server side: the value the client sent for `key`, from the
    /// baidu_std user fields or, over HTTP, the header of that name.
    pub fn request_user_field(&self, key: &str) -> Option<&str> {
        self.request_user_fields
            .get(key)
            .map(String::as_str)
            .or_else(|| {
                self.http_request_headers
                    .get(key)
                    .and_then(|v| v.to_str().ok())
            })
    }

    /// Server side, over HTTP: the request's headers (empty otherwise).
    pub fn http_request_headers(&self) -> &http::HeaderMap {
        &self.http_request_headers
    }

    /// Server side: when the caller stops waiting (from the request's
    /// `timeout_ms`), if it said.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Client side: how long the call took, retries included.
    pub fn latency(&self) -> Duration {
        self.latency
    }

    /// Client side: how many times the call was attempted again after a
    /// failed attempt (see
    /// [`ChannelOptions::max_retry`](crate::ChannelOptions::max_retry)
    /// and [`RetryPolicy`](crate::channel::RetryPolicy)); a backup
    /// request is not a retry. [`attempts`](Self::attempts) lists them.
    pub fn retried_count(&self) -> u32 {
        self.retried
    }

    /// Client side: the error of each failed attempt, in order — the
    /// first failure, then each retry's; the last one is the call's
    /// error unless a later attempt succeeded or the answer failed to
    /// decode. Empty when no attempt failed. The call's error text also
    /// lists the earlier ones (`...; earlier attempts: #1 [...] ...`).
    pub fn attempt_errors(&self) -> &[RpcError] {
        &self.attempt_errors
    }

    /// Client side: every attempt of the last call — the server it went
    /// to and how it ended — in the order they ended; the one whose
    /// response ended the call last. A failed call lists its failed
    /// attempts; a call that failed before any attempt (say, an
    /// inherited deadline with too little time left) lists none. Built
    /// on demand: the call itself records only the attempts that did
    /// not answer.
    pub fn attempts(&self) -> Vec<CallAttempt> {
        let mut all = self.unanswered.clone();
        if self.answered {
            all.push(CallAttempt {
                server: self.remote_side,
                backup: self.answered_by_backup,
                status: AttemptStatus::Answered,
            });
        }
        all
    }

    /// Client side: whether a backup request was sent.
    pub fn has_backup_request(&self) -> bool {
        self.has_backup_request
    }

    /// Client side: how many sub-calls a combo channel's call had (bRPC's
    /// `sub_count`): a [`ParallelChannel`](crate::channel::combo::ParallelChannel)'s
    /// or [`PartitionChannel`](crate::channel::combo::PartitionChannel)'s
    /// sub-channel count, 1 for a
    /// [`SelectiveChannel`](crate::channel::combo::SelectiveChannel), 0
    /// for a plain channel.
    pub fn sub_count(&self) -> usize {
        self.subs.len()
    }

    /// Client side: the controller of sub-call `index` of a combo
    /// channel's call (bRPC's `sub`): `None` out of range or for a
    /// sub-channel the call mapper skipped. A parallel sub-call still
    /// running when the call was decided shows `EPCHANFINISH`; a
    /// selective channel's is its last sub-call.
    pub fn sub(&self, index: usize) -> Option<&Controller> {
        self.subs.get(index).and_then(Option::as_ref)
    }

    /// Client side: what cancels this controller's call (bRPC's
    /// `call_id()` for `StartCancel`), made on first use. Take it
    /// before the call starts; its [`cancel`](crate::channel::CallCanceller::cancel)
    /// then ends the call with `ECANCELED` from any thread, and a late
    /// response is dropped. A [`reset`](Self::reset) drops it.
    pub fn canceller(&mut self) -> crate::channel::CallCanceller {
        self.canceller.get_or_insert_with(Default::default).clone()
    }
}
