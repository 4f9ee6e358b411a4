//! HTTP/1.1 in fibrpc: the server answers HTTP on the same port as
//! baidu_std (the protocol is detected per connection).
//!
//! - User handlers on paths: [`crate::Server::add_http_handler`] with an
//!   [`HttpHandler`] (any `Fn(Request<IOBuf>, &HttpContext) ->
//!   Response<IOBuf>`). Handlers run in fibers, so they may block.
//! - pb services are callable as `POST /ServiceName/MethodName` with a
//!   JSON body or a protobuf one (`Content-Type: application/proto`).
//! - Builtin pages (`/status`, `/vars`, `/health`, ...) on every server.
//! - [`HttpChannel`]: a client for any HTTP/1.1 server.
//!
//! Messages are the [`http`] crate's `Request` and `Response` with
//! an [`IOBuf`](crate::IOBuf) body; the crate's main types are re-exported here. The
//! protocol itself lives in [`crate::protocol::http`].
//!
//! ```no_run
//! use fibrpc::http::{HttpContext, Request, Response};
//! use fibrpc::IOBuf;
//!
//! let mut server = fibrpc::Server::new(Default::default());
//! server
//!     .add_http_handler("/hello", |_req: Request<IOBuf>, _ctx: &HttpContext| {
//!         Response::new(IOBuf::from("Hello, World!"))
//!     })
//!     .unwrap();
//! server.start("127.0.0.1:8000").unwrap();
//! ```

pub use crate::protocol::http::{response, text, HttpChannel, HttpContext, HttpHandler};
pub use ::http::{
    header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, Version,
};
