//! [`Responder`]: the answer to a request, completed later (bRPC's
//! `done->Run()`).

use std::time::Instant;

use fibrpc_iobuf::IOBuf;

use super::context::OwnedInflight;
use crate::{errno, Controller, RpcError};

/// How the request's protocol sends an outcome.
pub(crate) type Reply = Box<dyn FnOnce(&mut Controller, Result<IOBuf, RpcError>) + Send>;

/// The pending answer of a deferred handler
/// ([`Service::call_method_deferred`](crate::Service::call_method_deferred)).
///
/// It owns the request's [`Controller`] and may move anywhere: another
/// fiber, a plain thread, the callback of a downstream asynchronous call.
/// No fiber is held while it waits. [`send`](Self::send) answers; a
/// responder dropped without answering answers `EINTERNAL`, so a caller
/// never waits for a response that cannot come. Until it answers, the
/// request counts as in flight (max concurrency, graceful stop).
pub struct Responder {
    cntl: Controller,
    reply: Option<Reply>,
    guard: OwnedInflight,
    service: &'static str,
    method: usize,
    received: Instant,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("service", &self.service)
            .field("method", &self.method)
            .finish()
    }
}

impl Responder {
    pub(crate) fn new(
        cntl: Controller,
        guard: OwnedInflight,
        service: &'static str,
        method: usize,
        received: Instant,
        reply: Reply,
    ) -> Responder {
        Responder {
            cntl,
            reply: Some(reply),
            guard,
            service,
            method,
            received,
        }
    }

    /// The request's controller: log id, deadline, request attachment,
    /// remote side.
    pub fn controller(&self) -> &Controller {
        &self.cntl
    }

    /// The controller, to set the response attachment or compression,
    /// or to [`set_failed`](Controller::set_failed).
    pub fn controller_mut(&mut self) -> &mut Controller {
        &mut self.cntl
    }

    /// Answers with the serialized response, or the error. An error set
    /// on the controller wins over `result`.
    pub fn send(mut self, result: Result<IOBuf, RpcError>) {
        self.finish(result);
    }

    fn finish(&mut self, result: Result<IOBuf, RpcError>) {
        let Some(reply) = self.reply.take() else {
            return;
        };
        crate::rpcz::server::handler_end(&mut self.cntl);
        let result = match self.cntl.error.take() {
            Some(e) => Err(e),
            None => result,
        };
        let shared = self.guard.shared();
        if let Some(entry) = shared.services.get(self.service) {
            entry.status[self.method]
                .on_end(super::context::error_code(&result), self.received.elapsed());
        }
        reply(&mut self.cntl, result);
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if self.reply.is_some() {
            self.finish(Err(RpcError::new(
                errno::EINTERNAL,
                "the handler dropped its responder without answering",
            )));
        }
    }
}

/// A [`Responder`] for a method whose response is the message `M`: what
/// generated deferred services hand their handlers.
pub struct TypedResponder<M> {
    inner: Responder,
    _message: std::marker::PhantomData<fn(M)>,
}

impl<M> std::fmt::Debug for TypedResponder<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<M: prost::Message> TypedResponder<M> {
    /// Wraps a responder whose method answers with `M`.
    pub fn new(inner: Responder) -> TypedResponder<M> {
        TypedResponder {
            inner,
            _message: std::marker::PhantomData,
        }
    }

    /// The request's controller.
    pub fn controller(&self) -> &Controller {
        self.inner.controller()
    }

    /// The controller, to set the response attachment or compression.
    pub fn controller_mut(&mut self) -> &mut Controller {
        self.inner.controller_mut()
    }

    /// Answers with `response` (serialized here), or the error.
    pub fn send(self, response: Result<M, RpcError>) {
        self.inner.send(response.map(|m| crate::codec::encode(&m)));
    }
}
