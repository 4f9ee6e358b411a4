//! The server's interceptors around a user's HTTP handler (see
//! [`crate::interceptor`]), on every HTTP version. A handler is not a
//! method: the call the interceptors see is named by the request's HTTP
//! method and path (`GET`, `/hello`), as a client interceptor on an
//! [`HttpChannel`](super::HttpChannel) names its calls.

use fibrpc_iobuf::IOBuf;
use http::{Request, Response};

use super::server::error_response;
use crate::server::interceptors;
use crate::server::ServerContext;
use crate::socket::Socket;
use crate::{errno, RpcError};

/// Runs `handler` on `req` inside the server's interceptors: `before` in
/// order (a refusal is answered as an RPC error over HTTP is, its code
/// mapped to a status, and the handler does not run), `after` in reverse
/// order with the response's body, or with an `EHTTP` error carrying the
/// status when the handler answered 4xx or 5xx.
pub(super) fn around<F>(
    ctx: &ServerContext,
    sock: &Socket,
    req: Request<IOBuf>,
    handler: F,
) -> Response<IOBuf>
where
    F: FnOnce(Request<IOBuf>) -> Response<IOBuf>,
{
    // Owned: the request moves into the handler.
    let verb = req.method().clone();
    let path: Box<str> = req.uri().path().into();
    let mut cntl = ctx.new_controller(sock);
    cntl.http_request_headers = req.headers().clone();
    cntl.protocol = "http";
    let (passed, refused) = interceptors::before(ctx, verb.as_str(), &path, &mut cntl);
    let resp = match &refused {
        Some(e) => error_response(e),
        None => handler(req),
    };
    if passed == 0 {
        return resp;
    }
    let status = resp.status();
    let failed = (status.is_client_error() || status.is_server_error()).then(|| {
        RpcError::new(errno::EHTTP, format!("the handler answered {status}"))
            .with_http_status(status.as_u16())
    });
    let result = match refused.as_ref().or(failed.as_ref()) {
        Some(e) => Err(e),
        None => Ok(resp.body()),
    };
    interceptors::after(
        &ctx.shared.options.interceptors[..passed],
        verb.as_str(),
        &path,
        &mut cntl,
        result,
    );
    resp
}
