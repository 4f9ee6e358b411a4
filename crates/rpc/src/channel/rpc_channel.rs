//! [`RpcChannel`]: the calls a generated client stub makes, whatever
//! carries them — [`Channel`] (baidu_std) or
//! [`GrpcChannel`](crate::protocol::grpc::GrpcChannel) (gRPC). A stub
//! made by `fibrpc-build` is generic over it (`FooClient<C = Channel>`),
//! so the same generated code calls a service over either protocol.

use std::future::Future;
use std::pin::Pin;

use super::Channel;
use crate::{Controller, RpcError};

/// What [`RpcChannel::call_future`] returns: the call's controller and
/// outcome, on any executor.
pub type ResponseFuture<Resp> =
    Pin<Box<dyn Future<Output = (Controller, Result<Resp, RpcError>)> + Send + 'static>>;

/// A channel a generated client stub calls through: a protobuf request
/// to `service` (`package.Service`) and `method`, the response decoded,
/// in the synchronous, callback and `Future` forms. Timeouts, retries,
/// backup requests and load balancing are the channel's (the call
/// engine's).
pub trait RpcChannel: Clone + Send + Sync + 'static {
    /// Calls `service.method` and waits for the response (the calling
    /// fiber suspends; a plain thread blocks). The outcome is also
    /// recorded in `cntl`.
    fn call<Req, Resp>(
        &self,
        service: &str,
        method: &str,
        cntl: &mut Controller,
        request: &Req,
    ) -> Result<Resp, RpcError>
    where
        Req: prost::Message,
        Resp: prost::Message + Default;

    /// Starts the call and returns at once; `done` runs in a fiber of its
    /// own with the controller and the outcome.
    fn call_async<Req, Resp>(
        &self,
        service: &str,
        method: &str,
        cntl: Controller,
        request: &Req,
        done: impl FnOnce(Controller, Result<Resp, RpcError>) + Send + 'static,
    ) where
        Req: prost::Message,
        Resp: prost::Message + Default + Send + 'static;

    /// The call as a `Future` for any executor, resolving to the
    /// controller and the outcome. Polling never blocks.
    fn call_future<Req, Resp>(
        &self,
        service: &str,
        method: &str,
        cntl: Controller,
        request: &Req,
    ) -> ResponseFuture<Resp>
    where
        Req: prost::Message,
        Resp: prost::Message + Default + Send + 'static;
}

impl RpcChannel for Channel {
    fn call<Req, Resp>(
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
        Channel::call(self, service, method, cntl, request)
    }

    fn call_async<Req, Resp>(
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
        Channel::call_async(self, service, method, cntl, request, done)
    }

    fn call_future<Req, Resp>(
        &self,
        service: &str,
        method: &str,
        cntl: Controller,
        request: &Req,
    ) -> ResponseFuture<Resp>
    where
        Req: prost::Message,
        Resp: prost::Message + Default + Send + 'static,
    {
        Box::pin(Channel::call_future(self, service, method, cntl, request))
    }
}
