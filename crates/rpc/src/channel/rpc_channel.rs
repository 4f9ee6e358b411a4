//! [`RpcChannel`]: what a generated client stub calls through (bRPC's
//! `ChannelBase`, protobuf's `RpcChannel`).
//!
//! A stub only needs "call `service.method` with this serialized request"
//! in the three forms the engine offers — waiting, with a callback, as a
//! `Future`. [`Channel`] implements it over the call engine; the combo
//! channels ([`ParallelChannel`](super::combo::ParallelChannel),
//! [`SelectiveChannel`](super::combo::SelectiveChannel),
//! [`PartitionChannel`](super::combo::PartitionChannel)) implement it over
//! other `RpcChannel`s, so they nest, and a stub works over any of them.
//! The typed methods are provided: they encode the request and decode the
//! response with `prost`.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use fibrpc_iobuf::IOBuf;

use super::{CallFuture, Channel};
use crate::{codec, Controller, RpcError};

/// The callback of [`RpcChannel::call_raw_async`].
pub type RawDone = Box<dyn FnOnce(Controller, Result<IOBuf, RpcError>) + Send>;

/// A channel generated stubs call through. See the module docs.
pub trait RpcChannel: Send + Sync + 'static {
    /// Calls `service.method` with a serialized request and waits for the
    /// serialized response; the outcome is also recorded in `cntl`.
    fn call_raw(
        &self,
        service: &str,
        method: &str,
        cntl: &mut Controller,
        request: IOBuf,
    ) -> Result<IOBuf, RpcError>;

    /// Starts the call and returns at once; `done` runs, in a fiber of
    /// its own (so it may block), with the controller and the outcome.
    fn call_raw_async(
        &self,
        service: &str,
        method: &str,
        cntl: Controller,
        request: IOBuf,
        done: RawDone,
    );

    /// The call as a `Future` resolving to the controller and the
    /// outcome. Default: [`call_raw_async`](Self::call_raw_async)
    /// resolving a [`CallFuture`].
    fn call_raw_future(
        &self,
        service: &str,
        method: &str,
        cntl: Controller,
        request: IOBuf,
    ) -> CallFuture<IOBuf> {
        let (future, resolve) = CallFuture::pending();
        self.call_raw_async(service, method, cntl, request, Box::new(resolve));
        future
    }

    /// [`call_raw`](Self::call_raw) with protobuf messages.
    fn call<Req, Resp>(
        &self,
        service: &str,
        method: &str,
        cntl: &mut Controller,
        request: &Req,
    ) -> Result<Resp, RpcError>
    where
        Self: Sized,
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let payload = self.call_raw(service, method, cntl, codec::encode(request))?;
        codec::decode_response(&payload).inspect_err(|e| cntl.error = Some(e.clone()))
    }

    /// [`call_raw_async`](Self::call_raw_async) with protobuf messages.
    fn call_async<Req, Resp>(
        &self,
        service: &str,
        method: &str,
        cntl: Controller,
        request: &Req,
        done: impl FnOnce(Controller, Result<Resp, RpcError>) + Send + 'static,
    ) where
        Self: Sized,
        Req: prost::Message,
        Resp: prost::Message + Default + Send + 'static,
    {
        let done = move |mut cntl: Controller, r: Result<IOBuf, RpcError>| {
            let r = decode_reply(&mut cntl, r);
            done(cntl, r)
        };
        self.call_raw_async(
            service,
            method,
            cntl,
            codec::encode(request),
            Box::new(done),
        );
    }

    /// [`call_raw_future`](Self::call_raw_future) with protobuf messages.
    fn call_future<Req, Resp>(
        &self,
        service: &str,
        method: &str,
        cntl: Controller,
        request: &Req,
    ) -> DecodedCallFuture<Resp>
    where
        Self: Sized,
        Req: prost::Message,
        Resp: prost::Message + Default + Send + 'static,
    {
        DecodedCallFuture {
            raw: self.call_raw_future(service, method, cntl, codec::encode(request)),
            _resp: PhantomData,
        }
    }
}

/// A call in flight whose response is decoded as `Resp` when it comes
/// ([`RpcChannel::call_future`]).
#[must_use = "a call future does nothing unless awaited; the call runs anyway"]
pub struct DecodedCallFuture<Resp> {
    raw: CallFuture<IOBuf>,
    _resp: PhantomData<fn() -> Resp>,
}

impl<Resp> std::fmt::Debug for DecodedCallFuture<Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodedCallFuture").finish_non_exhaustive()
    }
}

impl<Resp: prost::Message + Default> Future for DecodedCallFuture<Resp> {
    type Output = (Controller, Result<Resp, RpcError>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.raw).poll(cx).map(|(mut cntl, r)| {
            let r = decode_reply(&mut cntl, r);
            (cntl, r)
        })
    }
}

impl RpcChannel for Channel {
    fn call_raw(
        &self,
        service: &str,
        method: &str,
        cntl: &mut Controller,
        request: IOBuf,
    ) -> Result<IOBuf, RpcError> {
        Channel::call_raw(self, service, method, cntl, request)
    }

    fn call_raw_async(
        &self,
        service: &str,
        method: &str,
        cntl: Controller,
        request: IOBuf,
        done: RawDone,
    ) {
        Channel::call_raw_async(self, service, method, cntl, request, done)
    }

    fn call_raw_future(
        &self,
        service: &str,
        method: &str,
        cntl: Controller,
        request: IOBuf,
    ) -> CallFuture<IOBuf> {
        Channel::call_raw_future(self, service, method, cntl, request)
    }
}

/// A shared channel is a channel: `Arc<dyn RpcChannel>` serves stubs and
/// combo channels alike.
impl<C: RpcChannel + ?Sized> RpcChannel for Arc<C> {
    fn call_raw(
        &self,
        service: &str,
        method: &str,
        cntl: &mut Controller,
        request: IOBuf,
    ) -> Result<IOBuf, RpcError> {
        (**self).call_raw(service, method, cntl, request)
    }

    fn call_raw_async(
        &self,
        service: &str,
        method: &str,
        cntl: Controller,
        request: IOBuf,
        done: RawDone,
    ) {
        (**self).call_raw_async(service, method, cntl, request, done)
    }

    fn call_raw_future(
        &self,
        service: &str,
        method: &str,
        cntl: Controller,
        request: IOBuf,
    ) -> CallFuture<IOBuf> {
        (**self).call_raw_future(service, method, cntl, request)
    }
}

/// Decodes a call's response payload, and records a failure (the call's
/// or the decoding's) on the controller, as every typed call form does.
pub(crate) fn decode_reply<Resp: prost::Message + Default>(
    cntl: &mut Controller,
    r: Result<IOBuf, RpcError>,
) -> Result<Resp, RpcError> {
    let r = r.and_then(|p| codec::decode_response(&p));
    if let Err(e) = &r {
        cntl.error = Some(e.clone());
    }
    r
}
