//! [`GrpcChannel`]: a gRPC client (unary and streaming calls) on the
//! shared call engine, for any gRPC server — fibrpc's, grpcio, tonic,
//! grpc-go.

use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::time::Instant;

use fibrpc_iobuf::IOBuf;

use super::client::{GrpcClientProtocol, GrpcRequest};
use super::client_stream::{GrpcStream, StreamConfig};
use super::client_typed::StreamingChannel;
use crate::channel::decode_reply;
use crate::channel::{
    cluster, record_outcome, reset_outcome, spawn_done, CallEngine, CallFuture, ChannelOptions,
    RawDone, RpcChannel, ServerSelector,
};
use crate::protocol::h2::client::StreamSink;
use crate::protocol::h2::H2Options;
use crate::{codec, Controller, RpcError};

/// A gRPC client of one server ([`GrpcChannel::new`]) or of a cluster
/// ([`GrpcChannel::with_naming`]): unary and streaming calls
/// ([`open_stream`](Self::open_stream), [`StreamingChannel`]) over
/// HTTP/2 (h2c, prior knowledge), many at once on one connection.
/// Cheap to clone (clones share connections). With
/// [`ChannelOptions::tls`] it speaks TLS and offers ALPN `h2`.
///
/// It is a front over the same call engine as [`Channel`](crate::Channel):
/// [`ChannelOptions`] and the [`Controller`] give timeouts (sent as
/// `grpc-timeout`, with what is left at each attempt), retries, backup
/// requests, connection types, interceptors and rpcz; a naming URL and a
/// load balancer spread calls over a cluster. A call fails with bRPC's
/// error code for its `grpc-status` (see
/// [`error_code_of`](super::error_code_of)). A call the server did not
/// process (`REFUSED_STREAM`, or after its GOAWAY) is sent again on
/// another connection.
///
/// Generated client stubs run over it ([`RpcChannel`]):
///
/// ```no_run
/// use fibrpc::{ChannelOptions, GrpcChannel};
/// use fibrpc_example::{EchoRequest, EchoServiceClient};
///
/// let channel = GrpcChannel::new("127.0.0.1:50051", ChannelOptions::default())?;
/// let client = EchoServiceClient::new(channel);
/// let response = client.echo_simple(&EchoRequest { message: "hi".into() })?;
/// # let _ = response;
/// # Ok::<(), fibrpc::RpcError>(())
/// ```
#[derive(Clone, Debug)]
pub struct GrpcChannel {
    engine: CallEngine<GrpcClientProtocol>,
}

fn protocol_for(options: &ChannelOptions, h2: H2Options) -> GrpcClientProtocol {
    GrpcClientProtocol::new(h2, options.max_decompressed_size)
}

/// The options with TLS offering ALPN `h2`, which gRPC servers over TLS
/// require.
fn with_h2_alpn(mut options: ChannelOptions) -> ChannelOptions {
    if let Some(tls) = options.tls.take() {
        options.tls = Some(tls.with_alpn(&[b"h2"]));
    }
    options
}

impl GrpcChannel {
    /// A channel to the gRPC server at `addr` (resolved now; connected
    /// at the first call).
    pub fn new(addr: impl ToSocketAddrs, options: ChannelOptions) -> Result<GrpcChannel, RpcError> {
        Self::with_h2_options(addr, options, H2Options::default())
    }

    /// [`new`](Self::new) with `h2`'s limits on what the server sends:
    /// the frame size, the header list (an HPACK bomb fails its call
    /// only), the windows this side opens, the acknowledgements queued.
    /// Response bodies are bounded by [`ChannelOptions::max_body_size`].
    pub fn with_h2_options(
        addr: impl ToSocketAddrs,
        options: ChannelOptions,
        h2: H2Options,
    ) -> Result<GrpcChannel, RpcError> {
        let options = with_h2_alpn(options);
        Ok(GrpcChannel {
            engine: CallEngine::new(protocol_for(&options, h2), addr, options)?,
        })
    }

    /// A channel to `addr` with the default options, connected now: an
    /// unreachable server is an error here rather than at the first call.
    pub fn connect(addr: impl ToSocketAddrs) -> Result<GrpcChannel, RpcError> {
        let channel = GrpcChannel::new(addr, ChannelOptions::default())?;
        channel.engine.connect_now()?;
        Ok(channel)
    }

    /// A channel to a cluster, as [`Channel::with_naming`](crate::Channel::with_naming):
    /// the servers `url` names, picked per attempt by the load balancer
    /// `lb` names.
    pub fn with_naming(
        url: &str,
        lb: &str,
        options: ChannelOptions,
    ) -> Result<GrpcChannel, RpcError> {
        let selector = cluster::ClusterSelector::from_url(url, lb, &options)?;
        Ok(GrpcChannel::with_selector(Arc::new(selector), options))
    }

    /// A channel whose calls go where `selector` says.
    pub fn with_selector(
        selector: Arc<dyn ServerSelector>,
        options: ChannelOptions,
    ) -> GrpcChannel {
        let options = with_h2_alpn(options);
        GrpcChannel {
            engine: CallEngine::with_selector(
                protocol_for(&options, H2Options::default()),
                selector,
                options,
            ),
        }
    }

    /// The options the channel was made with.
    pub fn options(&self) -> &ChannelOptions {
        self.engine.options()
    }

    /// The engine under this channel.
    pub fn engine(&self) -> &CallEngine<GrpcClientProtocol> {
        &self.engine
    }

    /// Calls `/service/method` (`service` is `package.Service`) with a
    /// protobuf request and waits for the response.
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

    /// Calls with a serialized request and returns the serialized
    /// response (inflated if the server compressed it).
    pub fn call_raw(
        &self,
        service: &str,
        method: &str,
        cntl: &mut Controller,
        request: IOBuf,
    ) -> Result<IOBuf, RpcError> {
        match self.request(service, method, cntl, request) {
            Ok(req) => self.engine.call(cntl, req),
            Err(e) => Err(failed_early(cntl, e)),
        }
    }

    /// Starts the call and returns at once; `done` runs in a fiber of its
    /// own with the controller and the decoded response. No fiber is
    /// held while the call is in flight.
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
                let e = failed_early(&mut cntl, e);
                spawn_done(cntl, Err(e), Box::new(done));
            }
        }
    }

    /// The call as a `Future` for any executor (tokio included),
    /// resolving to the controller and the decoded response. Polling
    /// never blocks.
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
                let e = failed_early(&mut cntl, e);
                CallFuture::ready(cntl, Err(e))
            }
        }
    }

    /// Opens a streaming call (see [`StreamingChannel::open_stream`];
    /// the typed forms are that trait's `server_streaming`,
    /// `client_streaming` and `bidi_streaming`). The opening is an
    /// attempt of the call engine: it takes a connection (or waits for a
    /// stream under the server's `SETTINGS_MAX_CONCURRENT_STREAMS`) and
    /// goes to another connection or replica as the retry policy says
    /// while nothing was sent; once open, nothing is sent again.
    pub fn open_stream(
        &self,
        service: &str,
        method: &str,
        cntl: &mut Controller,
        first: Option<IOBuf>,
    ) -> Result<GrpcStream, RpcError> {
        let deadline = self.engine.deadline(cntl, Instant::now());
        let protocol = self.engine.protocol();
        let h2 = protocol.h2_options();
        let sink = Arc::new(StreamSink::new(h2.initial_window_size));
        let req = GrpcRequest::streaming(service, method, cntl, first, deadline, sink.clone())
            .map_err(|e| failed_early(cntl, e))?;
        let config = StreamConfig {
            gzip: req.gzip(),
            send_buffer: (h2.stream_send_buffer as usize).max(1),
            max_message: self.engine.options().max_body_size,
            max_decompressed: protocol.max_decompressed(),
        };
        let ender = sink.clone();
        // The stream's outcome (its last frame, or the connection's
        // failure) ends the sink, waking its waiters.
        let on_end = move || {
            let s = ender.clone();
            Box::new(move || s.end()) as crate::channel::Continuation
        };
        let open = self.engine.open(cntl, req, &on_end)?;
        Ok(GrpcStream::new(open, sink, deadline, config))
    }

    /// The request of a call, with the deadline its attempts send.
    fn request(
        &self,
        service: &str,
        method: &str,
        cntl: &Controller,
        request: IOBuf,
    ) -> Result<GrpcRequest, RpcError> {
        let deadline = self.engine.deadline(cntl, Instant::now());
        GrpcRequest::new(service, method, cntl, request, deadline)
    }
}

/// Records a failure found before the engine ran.
fn failed_early(cntl: &mut Controller, e: RpcError) -> RpcError {
    reset_outcome(cntl);
    record_outcome(cntl, Instant::now(), &Err::<(), _>(e.clone()));
    e
}

impl RpcChannel for GrpcChannel {
    fn call_raw(
        &self,
        service: &str,
        method: &str,
        cntl: &mut Controller,
        request: IOBuf,
    ) -> Result<IOBuf, RpcError> {
        GrpcChannel::call_raw(self, service, method, cntl, request)
    }

    fn call_raw_async(
        &self,
        service: &str,
        method: &str,
        cntl: Controller,
        request: IOBuf,
        done: RawDone,
    ) {
        GrpcChannel::call_raw_async(self, service, method, cntl, request, done)
    }

    fn call_raw_future(
        &self,
        service: &str,
        method: &str,
        cntl: Controller,
        request: IOBuf,
    ) -> CallFuture<IOBuf> {
        GrpcChannel::call_raw_future(self, service, method, cntl, request)
    }
}

impl StreamingChannel for GrpcChannel {
    fn open_stream(
        &self,
        service: &str,
        method: &str,
        cntl: &mut Controller,
        first: Option<IOBuf>,
    ) -> Result<GrpcStream, RpcError> {
        GrpcChannel::open_stream(self, service, method, cntl, first)
    }
}
