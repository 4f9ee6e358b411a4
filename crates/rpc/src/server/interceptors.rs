//! Running a server's interceptors around a method call or a request to
//! a user's HTTP handler (see [`crate::interceptor`]). A panicking
//! interceptor refuses the call with `EINTERNAL` (before) or is logged
//! (after); it never takes the request's fiber down.

use std::panic::{catch_unwind, AssertUnwindSafe};

use fibrpc_iobuf::IOBuf;

use super::context::panic_message;
use super::ServerContext;
use crate::interceptor::{CallInfo, ServerInterceptor};
use crate::{errno, Controller, RpcError};

/// Runs the `before` hooks in order until one refuses: how many passed,
/// and the refusal.
pub(crate) fn before(
    ctx: &ServerContext,
    service: &str,
    method: &str,
    cntl: &mut Controller,
) -> (usize, Option<RpcError>) {
    let call = CallInfo {
        service,
        method,
        peer: cntl.remote_side,
    };
    for (i, hook) in ctx.shared.options.interceptors.iter().enumerate() {
        let r = catch_unwind(AssertUnwindSafe(|| hook.before(&call, cntl))).unwrap_or_else(|p| {
            Err(RpcError::new(
                errno::EINTERNAL,
                format!("an interceptor panicked: {}", panic_message(&*p)),
            ))
        });
        if let Err(e) = r {
            return (i, Some(e));
        }
    }
    (ctx.shared.options.interceptors.len(), None)
}

/// Runs the `after` hooks of `passed` (those whose `before` passed) in
/// reverse order.
pub(crate) fn after(
    passed: &[std::sync::Arc<dyn ServerInterceptor>],
    service: &str,
    method: &str,
    cntl: &mut Controller,
    result: Result<&IOBuf, &RpcError>,
) {
    let call = CallInfo {
        service,
        method,
        peer: cntl.remote_side,
    };
    for hook in passed.iter().rev() {
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| hook.after(&call, cntl, result))) {
            tracing::error!(
                service,
                method,
                panic = %panic_message(&*p),
                "an interceptor's after hook panicked"
            );
        }
    }
}
