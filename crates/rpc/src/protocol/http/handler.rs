//! [`HttpHandler`]: user code answering HTTP requests on a path.

use std::net::SocketAddr;
use std::time::Instant;

use fibrpc_iobuf::IOBuf;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};

/// What a handler knows about the request besides the request itself.
#[derive(Debug, Clone)]
pub struct HttpContext {
    /// The client's address.
    pub remote_side: SocketAddr,
    /// The server's address on this connection.
    pub local_side: SocketAddr,
    /// When the request was cut from the connection.
    pub received: Instant,
}

/// Answers HTTP requests. Runs in a fiber: it may block (call other
/// servers, sleep, take fiber locks). A panic is answered with 500.
///
/// Implemented for every `Fn(Request<IOBuf>, &HttpContext) ->
/// Response<IOBuf>`. `Content-Length` is set by the server; so is
/// `Connection: close` when the connection closes after the response.
pub trait HttpHandler: Send + Sync + 'static {
    /// Answers one request.
    fn handle(&self, req: Request<IOBuf>, ctx: &HttpContext) -> Response<IOBuf>;
}

impl<F> HttpHandler for F
where
    F: Fn(Request<IOBuf>, &HttpContext) -> Response<IOBuf> + Send + Sync + 'static,
{
    fn handle(&self, req: Request<IOBuf>, ctx: &HttpContext) -> Response<IOBuf> {
        self(req, ctx)
    }
}

/// A response with `status`, a `Content-Type` and a body.
pub fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<IOBuf>,
) -> Response<IOBuf> {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// A `text/plain` response.
pub fn text(status: StatusCode, body: impl Into<IOBuf>) -> Response<IOBuf> {
    response(status, "text/plain; charset=utf-8", body)
}
