//! The client side: the one call engine ([`CallEngine`]) and its
//! baidu_std front, [`Channel`]. A channel talks to a server over
//! baidu_std: synchronous calls suspend the calling fiber (or block a
//! plain thread) until the response, a failure or the deadline;
//! asynchronous calls return at once and run a callback or resolve a
//! `Future`.
//!
//! Every client front — [`Channel`], [`crate::http::HttpChannel`], and a
//! [`CallEngine`] over a user's [`crate::protocol::ClientProtocol`] —
//! shares the engine: connection choice, attempts, deadline, retry rule,
//! backup request, outcome recording, pending calls. The engine's seam
//! "choose the server for this attempt" is [`ServerSelector`]; its retry
//! rule is [`retryable`]: connection failures are retried, but a request
//! that may have reached the server only for an idempotent call.

mod async_call;
mod attempts;
mod auth_gate;
mod call;
pub(crate) mod cancel;
mod client_input;
pub mod cluster;
pub mod combo;
mod connections;
mod engine;
mod intercept;
pub mod lb;
pub mod naming;
mod open_call;
mod options;
mod retry;
mod retry_budget;
mod retry_policy;
mod rpc_channel;
mod selector;
mod tried;

use std::net::ToSocketAddrs;
use std::time::Instant;

use fibrpc_iobuf::IOBuf;

use crate::protocol::baidu_std::{self, BaiduStd};
use crate::{codec, Controller, RpcError};
pub(crate) use async_call::spawn_done;
pub use async_call::CallFuture;
pub use attempts::{AttemptStatus, CallAttempt};
pub(crate) use call::Continuation;
pub use cancel::CallCanceller;
pub use engine::CallEngine;
pub(crate) use engine::{record_outcome, reset_outcome};
pub(crate) use open_call::OpenCall;
pub use options::{ChannelOptions, ConnectionType};
pub use retry::{retryable, RequestSent};
pub use retry_budget::RetryBudget;
pub use retry_policy::{DefaultRetryPolicy, FailedAttempt, RetryPolicy, SharedRetryPolicy};
pub(crate) use rpc_channel::decode_reply;
pub use rpc_channel::{DecodedCallFuture, RawDone, RpcChannel};
pub use selector::{AttemptOutcome, SelectInput, ServerSelector, SingleServer};

/// A [`Channel`] to `addr` with the default options, connected now
/// ([`Channel::connect`]): the shortest way to a client.
///
/// ```no_run
/// # fn main() -> Result<(), fibrpc::RpcError> {
/// let channel = fibrpc::connect("127.0.0.1:8000")?;
/// let client = fibrpc_example::EchoServiceClient::new(channel);
/// # let _ = client;
/// # Ok(())
/// # }
/// ```
pub fn connect(addr: impl ToSocketAddrs) -> Result<Channel, RpcError> {
    Channel::connect(addr)
}

/// baidu_std as a channel with `options` calls with it.
fn protocol_for(options: &ChannelOptions) -> BaiduStd {
    BaiduStd::with_max_decompressed_size(options.max_decompressed_size)
}

/// A baidu_std client of one server ([`Channel::new`]) or of a cluster
/// ([`Channel::with_naming`]). Cheap to clone (clones share
/// connections); the connections close when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct Channel {
    engine: CallEngine<BaiduStd>,
}

impl Channel {
    /// A channel to `addr` (resolved now; connected at the first call).
    pub fn new(addr: impl ToSocketAddrs, options: ChannelOptions) -> Result<Channel, RpcError> {
        Ok(Channel {
            engine: CallEngine::new(protocol_for(&options), addr, options)?,
        })
    }

    /// A channel to `addr` with the default options, connected now: an
    /// unreachable server is an error here rather than at the first call
    /// (like tonic's `Channel::connect`). [`crate::connect`] is the same.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), fibrpc::RpcError> {
    /// use fibrpc_example::{EchoRequest, EchoServiceClient};
    ///
    /// let client = EchoServiceClient::new(fibrpc::connect("127.0.0.1:8000")?);
    /// let request = EchoRequest { message: "hi".into() };
    /// let response = client.echo_simple(&request)?;
    /// # let _ = response;
    /// # Ok(())
    /// # }
    /// ```
    pub fn connect(addr: impl ToSocketAddrs) -> Result<Channel, RpcError> {
        let channel = Channel::new(addr, ChannelOptions::default())?;
        channel.engine.connect_now()?;
        Ok(channel)
    }

    /// A channel to a cluster (bRPC's `Channel::Init(naming_url, lb_name,
    /// &options)`): the servers `url` names (`list://h1:p1,h2:p2`,
    /// `file:///path`, `dns://name:port`, `etcd://host:port/prefix`, or
    /// one `host:port`; see [`naming`]), picked per attempt by the load
    /// balancer `lb` names (`rr`, `wrr`, `random`, `la`, `c_murmurhash`,
    /// `c_md5`; see [`lb`]). A server whose connection fails (or, with
    /// [`ChannelOptions::enable_circuit_breaker`], whose error rate trips
    /// its circuit breaker) takes no calls until a health check passes
    /// (every [`ChannelOptions::health_check_interval`]); a retry goes to
    /// another server. As in bRPC, `lb` may carry a recovery policy:
    /// `"rr:min_working_instances=2 hold_seconds=5"`. See [`cluster`].
    ///
    /// Fails if the URL or the balancer is unknown, or the naming service
    /// gives no first list (within 5 s). Channels of one URL share its
    /// naming service.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), fibrpc::RpcError> {
    /// use fibrpc::{Channel, ChannelOptions};
    ///
    /// let channel = Channel::with_naming(
    ///     "list://127.0.0.1:8001,127.0.0.1:8002,127.0.0.1:8003",
    ///     "rr",
    ///     ChannelOptions::default(),
    /// )?;
    /// let client = fibrpc_example::EchoServiceClient::new(channel);
    /// # let _ = client;
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_naming(url: &str, lb: &str, options: ChannelOptions) -> Result<Channel, RpcError> {
        let selector = cluster::ClusterSelector::from_url(url, lb, &options)?;
        Ok(Channel::with_selector(
            std::sync::Arc::new(selector),
            options,
        ))
    }

    /// A channel whose calls go where `selector` says.
    pub fn with_selector(
        selector: std::sync::Arc<dyn ServerSelector>,
        options: ChannelOptions,
    ) -> Channel {
        Channel {
            engine: CallEngine::with_selector(protocol_for(&options), selector, options),
        }
    }

    /// The options the channel was made with.
    pub fn options(&self) -> &ChannelOptions {
        self.engine.options()
    }

    /// The engine under this channel.
    pub fn engine(&self) -> &CallEngine<BaiduStd> {
        &self.engine
    }

    /// Calls `service.method` with a protobuf request and waits for the
    /// response. The outcome is also recorded in `cntl`.
    pub fn call<Req, Resp>(
        &self,
        service: &str,
        method: &str,
        cntl: &mut Controller,
        request: &Req,
    ) -> Result<Resp, RpcError>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let payload = self.call_raw(service, method, cntl, codec::encode(request))?;
        codec::decode_response(&payload).inspect_err(|e| cntl.error = Some(e.clone()))
    }

    /// Calls with a serialized request and returns the serialized response
    /// payload (decompressed). The response attachment, error and latency
    /// are in `cntl`.
    pub fn call_raw(
        &self,
        service: &str,
        method: &str,
        cntl: &mut Controller,
        request: IOBuf,
    ) -> Result<IOBuf, RpcError> {
        match self.request(service, method, cntl, request) {
            Ok(req) => {
                let r = self.engine.call(cntl, req)?;
                // A call that opened streams succeeds only if the server
                // accepted them.
                cntl.streams
                    .call_ended(Ok(()))
                    .inspect_err(|e| cntl.error = Some(e.clone()))?;
                Ok(r)
            }
            Err(e) => Err(self.failed_early(cntl, e)),
        }
    }

    /// Starts the call and returns at once; `done` runs in a fiber of its
    /// own with the controller and the decoded response, so it may block.
    /// No fiber is held while the call is in flight (see
    /// [`CallEngine::call_async`]).
    pub fn call_async<Req, Resp>(
        &self,
        service: &str,
        method: &str,
        cntl: Controller,
        request: &Req,
        done: impl FnOnce(Controller, Result<Resp, RpcError>) + Send + 'static,
    ) where
        Req: prost::Message,
        Resp: prost::Message + Default + Send + 'static,
    {
        self.call_raw_async(
            service,
            method,
            cntl,
            codec::encode(request),
            move |mut cntl, r| {
                let r = decode_reply(&mut cntl, r);
                done(cntl, r)
            },
        );
    }

    /// [`call_async`](Self::call_async) with serialized messages.
    pub fn call_raw_async(
        &self,
        service: &str,
        method: &str,
        mut cntl: Controller,
        request: IOBuf,
        done: impl FnOnce(Controller, Result<IOBuf, RpcError>) + Send + 'static,
    ) {
        match self.request(service, method, &cntl, request) {
            Ok(req) => self.engine.call_async(cntl, req, done),
            Err(e) => {
                let e = self.failed_early(&mut cntl, e);
                async_call::spawn_done(cntl, Err(e), Box::new(done));
            }
        }
    }

    /// The call as a `Future` for any executor (tokio included),
    /// resolving to the controller and the decoded response. Polling never
    /// blocks; no fiber is held while the call is in flight.
    pub fn call_future<Req, Resp>(
        &self,
        service: &str,
        method: &str,
        cntl: Controller,
        request: &Req,
    ) -> impl std::future::Future<Output = (Controller, Result<Resp, RpcError>)> + Send + 'static
    where
        Req: prost::Message,
        Resp: prost::Message + Default + Send + 'static,
    {
        let fut = self.call_raw_future(service, method, cntl, codec::encode(request));
        async move {
            let (mut cntl, r) = fut.await;
            let r = decode_reply(&mut cntl, r);
            (cntl, r)
        }
    }

    /// [`call_future`](Self::call_future) with serialized messages.
    pub fn call_raw_future(
        &self,
        service: &str,
        method: &str,
        mut cntl: Controller,
        request: IOBuf,
    ) -> CallFuture<IOBuf> {
        match self.request(service, method, &cntl, request) {
            Ok(req) => self.engine.call_future(cntl, req),
            Err(e) => {
                let e = self.failed_early(&mut cntl, e);
                CallFuture::ready(cntl, Err(e))
            }
        }
    }

    /// The baidu_std request of a call (compressed, checksummed, with the
    /// timeout delivered if the options say so).
    fn request(
        &self,
        service: &str,
        method: &str,
        cntl: &Controller,
        request: IOBuf,
    ) -> Result<baidu_std::client::Request, RpcError> {
        if cntl.streams.opens_streams() && self.options().connection_type == ConnectionType::Short {
            // The connection closes with the call, and its streams with it.
            return Err(RpcError::new(
                libc::EINVAL,
                "a call that opens streams needs a single or pooled connection, not a short one",
            ));
        }
        let delivered = self
            .engine
            .deadline(cntl, Instant::now())
            .filter(|_| self.options().deliver_timeout);
        baidu_std::client::Request::new(service, method, cntl, request, delivered)
    }

    /// Records a failure found before the engine ran.
    fn failed_early(&self, cntl: &mut Controller, e: RpcError) -> RpcError {
        reset_outcome(cntl);
        record_outcome(cntl, Instant::now(), &Err::<(), _>(e.clone()));
        e
    }
}
