//! [`Service`]: what a server dispatches requests to.
//!
//! Users do not implement this by hand: `fibrpc-build` generates, per
//! `.proto` service, a trait with one synchronous method per RPC and a
//! wrapper (`FooServiceServer`) that implements [`Service`] by decoding
//! the request, calling the trait method and encoding the response.

use fibrpc_iobuf::IOBuf;

use crate::protocol::grpc::ServerStream;
use crate::{errno, Controller, Responder, RpcError};

/// How a method's messages flow (gRPC's four kinds). Only unary methods
/// are served over baidu_std and HTTP; the streaming kinds are served
/// over gRPC ([`Service::call_method_streaming`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodKind {
    /// One request, one response.
    Unary,
    /// One request, a stream of responses.
    ServerStreaming,
    /// A stream of requests, one response.
    ClientStreaming,
    /// Streams both ways.
    Bidirectional,
}

/// A service a [`crate::Server`] can host: a fully qualified name, its
/// methods, and a call that takes and returns serialized messages.
///
/// `call_method` runs in a fiber; it may block (call other services, take
/// fiber locks, sleep): that suspends the fiber, not a worker thread.
pub trait Service: Send + Sync + 'static {
    /// The fully qualified name, as on the wire: `"example.EchoService"`.
    fn service_name(&self) -> &'static str;

    /// The method names as in the `.proto` (`"Echo"`). A request names a
    /// method; the server passes its index in this slice to `call_method`.
    fn method_names(&self) -> &'static [&'static str];

    /// The encoded `FileDescriptorSet` of the `.proto` files that define
    /// this service and its messages (generated services embed it). With
    /// it, the server transcodes JSON for HTTP callers (proto3 JSON
    /// mapping); without it (`None`, the default) HTTP callers must send
    /// `application/proto`.
    fn descriptor_set(&self) -> Option<&'static [u8]> {
        None
    }

    /// Handles one request for method `method` (an index into
    /// [`method_names`](Self::method_names)) and returns the serialized
    /// response. A payload that does not parse is
    /// [`crate::errno::EREQUEST`]. If the handler called
    /// [`Controller::set_failed`], the call fails with that error whatever
    /// this returns.
    fn call_method(
        &self,
        method: usize,
        cntl: &mut Controller,
        request: &IOBuf,
    ) -> Result<IOBuf, RpcError>;

    /// Whether method `method` answers later, through a [`Responder`]:
    /// then the server calls
    /// [`call_method_deferred`](Self::call_method_deferred) instead of
    /// [`call_method`](Self::call_method). Default: no.
    fn defers(&self, _method: usize) -> bool {
        false
    }

    /// Handles one request of a deferring method (see
    /// [`defers`](Self::defers)): start the work and return; complete
    /// `done` from any fiber, thread or callback, holding no fiber while
    /// the answer is pending (bRPC's `done->Run()`). The default runs
    /// [`call_method`](Self::call_method) and answers at once.
    fn call_method_deferred(&self, method: usize, request: IOBuf, mut done: Responder) {
        let r = self.call_method(method, done.controller_mut(), &request);
        done.send(r);
    }

    /// How method `method` streams. Default: every method is unary.
    fn method_kind(&self, _method: usize) -> MethodKind {
        MethodKind::Unary
    }

    /// Handles one call of a streaming method (see
    /// [`method_kind`](Self::method_kind)), in a fiber of its own for as
    /// long as the call lasts: read requests with
    /// [`ServerStream::recv`] and answer with [`ServerStream::send`],
    /// both of which suspend the fiber. The call ends with the returned
    /// status (unless the handler called [`ServerStream::finish`]
    /// before). Default: `ENOMETHOD`.
    fn call_method_streaming(
        &self,
        method: usize,
        _cntl: &mut Controller,
        _stream: ServerStream,
    ) -> Result<(), RpcError> {
        Err(RpcError::new(
            errno::ENOMETHOD,
            format!("{} has no streaming method #{method}", self.service_name()),
        ))
    }
}
