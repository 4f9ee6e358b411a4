//! The door of a streaming call into its method: what
//! [`ServerContext::dispatch`] is for a unary one (authentication,
//! interceptors, the method's counters, the caller's deadline, a caught
//! panic), around [`Service::call_method_streaming`](crate::Service::call_method_streaming).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use fibrpc_iobuf::IOBuf;

use super::context::panic_message;
use super::{interceptors, ServerContext};
use crate::protocol::grpc::ServerStream;
use crate::{errno, Controller, RpcError};

impl ServerContext {
    /// Runs streaming method `index` of `service` on `stream` (in the
    /// call's own fiber) and returns the status the call ends with. The
    /// caller counts the call in the requests a stopping server waits
    /// for until that status is sent.
    pub(crate) fn dispatch_streaming(
        &self,
        service: &'static str,
        index: usize,
        cntl: &mut Controller,
        stream: ServerStream,
        received: Instant,
    ) -> Result<(), RpcError> {
        let options = &self.shared.options;
        if options.auth.is_some() && cntl.auth_context.is_none() {
            return Err(crate::auth::unauthenticated());
        }
        let entry = self.entry(service);
        let method = entry.service.method_names()[index];
        let (passed, refused) = if options.interceptors.is_empty() {
            (0, None)
        } else {
            interceptors::before(self, service, method, cntl)
        };
        let status = &entry.status[index];
        // The method's concurrency limiter counts streams as calls (once
        // the interceptors let it in).
        let refused = match refused {
            Some(e) => Some(e),
            None => status.on_requested().err(),
        };
        if let Some(e) = refused {
            let r = Err(e);
            interceptors::after(
                &options.interceptors[..passed],
                service,
                method,
                cntl,
                r.as_ref(),
            );
            return r.map(drop);
        }
        // rpcz: a traced call's span is the fiber's context while its
        // handler runs.
        let traced = crate::rpcz::server::handler_start(cntl);
        let _inherit = cntl.deadline.map(crate::call_context::enter_deadline);
        let r = catch_unwind(AssertUnwindSafe(|| {
            entry.service.call_method_streaming(index, cntl, stream)
        }))
        .unwrap_or_else(|p| {
            Err(RpcError::new(
                errno::EINTERNAL,
                format!("the handler panicked: {}", panic_message(&*p)),
            ))
        });
        drop(traced);
        crate::rpcz::server::handler_end(cntl);
        let r = match cntl.error.take() {
            Some(e) => Err(e),
            None => r,
        };
        status.on_end(super::context::error_code(&r), received.elapsed());
        if passed > 0 {
            let empty = IOBuf::new();
            interceptors::after(
                &options.interceptors[..passed],
                service,
                method,
                cntl,
                r.as_ref().map(|()| &empty),
            );
        }
        r
    }
}
