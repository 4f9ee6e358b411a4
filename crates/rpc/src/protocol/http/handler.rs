//! [`HttpHandler`]: user code answering HTTP requests on a path.

use std::net::SocketAddr;
use std::time::Instant;

use fibrpc_iobuf::IOBuf;
use http::{Request, Response};

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
