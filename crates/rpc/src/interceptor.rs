//! Interceptors: code that runs around every call, on either side, in a
//! list the options give (bRPC's server-side `Interceptor`, which has one
//! `Accept`, grown into an ordered list with an after hook, and a client
//! side).
//!
//! - [`ServerInterceptor`]s ([`ServerOptions::interceptors`](crate::ServerOptions::interceptors))
//!   run where every protocol reaches a method (baidu_std, HTTP/JSON, a
//!   user's protocol through [`ServerContext::call_method`](crate::protocol::ServerContext::call_method)):
//!   `before`, in list order, ahead of the handler — any may refuse the
//!   call with an error, which is then the call's answer and the handler
//!   does not run; `after`, in reverse order, once the handler answered
//!   (a deferred one included), seeing the result. Only interceptors
//!   whose `before` passed get an `after`. A refused call is not counted
//!   in the method's status.
//! - They also run around the handlers added with
//!   [`Server::add_http_handler`](crate::Server::add_http_handler), over
//!   HTTP/1.1 and HTTP/2 alike. The call is named by the request's HTTP
//!   method and path ([`CallInfo::service`] `GET`, [`CallInfo::method`]
//!   `/hello`); the controller carries the peer, the TLS peer's subject,
//!   the auth context and the request's headers
//!   ([`Controller::http_request_headers`]), but the handler does not
//!   see it. A refusal is answered as an RPC error over HTTP is: the
//!   status of the error's code (`ERPCAUTH` 403, `ENOMETHOD` 404,
//!   `ELIMIT` 503, ...; [`RpcError::with_http_status`] chooses another)
//!   and the code in `x-bd-error-code`. `after` gets the response's body,
//!   or an `EHTTP` error whose [`http_status`](RpcError::http_status) is
//!   the handler's 4xx or 5xx status.
//! - The builtin console (`/status`, `/vars`, `/health`, ...) is not
//!   intercepted, as bRPC's builtin services skip its interceptor: who
//!   may read it is the authenticator's and the internal port's
//!   business ([`ServerOptions::auth`](crate::ServerOptions::auth),
//!   [`ServerOptions::internal_port`](crate::ServerOptions::internal_port)),
//!   and an interceptor written for the application's calls (a quota,
//!   a tenant check) must not lock operators or load balancers' health
//!   checks out of it. A user handler added on a console path replaces
//!   the page and is intercepted.
//! - [`ClientInterceptor`]s ([`ChannelOptions::interceptors`](crate::ChannelOptions::interceptors))
//!   run around each attempt of a call in the call engine: `before` once
//!   the server of the attempt is chosen and before the request is
//!   packed — it may change the controller (log id, request attachment,
//!   [`request_user_fields`](crate::Controller::request_user_fields_mut),
//!   which baidu_std sends in `RpcMeta.user_fields` and HTTP as headers)
//!   or refuse the attempt (the call fails with that error; it is not
//!   retried); `after` with the attempt's outcome. A retry runs them
//!   again.
//!
//! With no interceptor a call pays one test of an empty list.

use std::net::SocketAddr;

use fibrpc_iobuf::IOBuf;

use crate::{Controller, RpcError};

/// The call an interceptor sees.
#[derive(Debug, Clone, Copy)]
pub struct CallInfo<'a> {
    /// The service's full name (`example.EchoService`); over an HTTP
    /// channel and around a server's HTTP handler, the request's method
    /// (`GET`).
    pub service: &'a str,
    /// The method's name (`Echo`); over an HTTP channel and around a
    /// server's HTTP handler, the path.
    pub method: &'a str,
    /// Server side, the client's address; client side, the server of
    /// this attempt.
    pub peer: Option<SocketAddr>,
}

/// Runs around every method call on a server (see the [module
/// docs](self)). The controller is the handler's: the peer, the
/// [`auth_context`](Controller::auth_context), the
/// [`request_user_fields`](Controller::request_user_fields) or HTTP
/// headers, the log id.
pub trait ServerInterceptor: Send + Sync + 'static {
    /// Runs before the handler; an error refuses the call with it (any
    /// code: `ERPCAUTH`, `EPERM`, an application's). Default: pass.
    fn before(&self, _call: &CallInfo<'_>, _cntl: &mut Controller) -> Result<(), RpcError> {
        Ok(())
    }

    /// Runs once the call is answered, with the serialized response or
    /// the error (a refusal included). Default: nothing.
    fn after(
        &self,
        _call: &CallInfo<'_>,
        _cntl: &mut Controller,
        _result: Result<&IOBuf, &RpcError>,
    ) {
    }
}

/// Runs around every attempt of a call on a channel (see the [module
/// docs](self)).
pub trait ClientInterceptor: Send + Sync + 'static {
    /// Runs before the attempt's request is packed; may change `cntl`.
    /// An error fails the call with it. Default: pass.
    fn before(&self, _call: &CallInfo<'_>, _cntl: &mut Controller) -> Result<(), RpcError> {
        Ok(())
    }

    /// Runs with the attempt's outcome (the response's error included).
    /// Default: nothing.
    fn after(&self, _call: &CallInfo<'_>, _cntl: &Controller, _result: Result<(), &RpcError>) {}
}

impl std::fmt::Debug for dyn ServerInterceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerInterceptor")
    }
}

impl std::fmt::Debug for dyn ClientInterceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientInterceptor")
    }
}
