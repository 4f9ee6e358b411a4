//! Authentication (bRPC's `Authenticator` and `AuthContext`): a client
//! presents a credential on the first request of each connection, the
//! server verifies it once and keeps who the peer is for the
//! connection's life.
//!
//! - Client: [`ChannelOptions::auth`](crate::ChannelOptions::auth). The
//!   first call packed on a new connection carries
//!   [`Authenticator::generate_credential`]'s bytes — baidu_std in
//!   `RpcMeta.authentication_data` (field 7), HTTP as the
//!   `Authorization` header. Calls that want the same connection
//!   meanwhile wait until that request is queued, so the credential is
//!   the first thing the server reads (bRPC's `FightAuthentication`);
//!   later requests carry none.
//! - Server: [`ServerOptions::auth`](crate::ServerOptions::auth). The
//!   first message of each connection is verified
//!   ([`Authenticator::verify_credential`]) in the connection's reader,
//!   before anything of it is processed. Refused, the request is
//!   answered `ERPCAUTH` (HTTP: 401 without credentials, 403 with wrong
//!   ones) and the connection closes; bRPC closes without an answer,
//!   which leaves its client guessing. Accepted, the [`AuthContext`] the
//!   authenticator filled is the connection's, and every handler on it
//!   sees it as [`Controller::auth_context`](crate::Controller::auth_context).
//! - On the [`internal_port`](crate::ServerOptions::internal_port) a
//!   connection without valid credentials is not closed: the builtin
//!   console answers it, and every method and HTTP handler answers it
//!   `ERPCAUTH`. Everywhere else the console is behind the authenticator
//!   like any method.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::server::ServerContext;
use crate::socket::Socket;
use crate::{errno, RpcError};

/// Who the peer of an authenticated connection is (bRPC's
/// `AuthContext`): filled by [`Authenticator::verify_credential`], read
/// by handlers through
/// [`Controller::auth_context`](crate::Controller::auth_context).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthContext {
    /// The user the credential names.
    pub user: String,
    /// The user's group.
    pub group: String,
    /// The user's roles, free-form (bRPC keeps them as one string).
    pub roles: String,
    /// Who started the peer process, if the credential says.
    pub starter: String,
    /// Whether the peer is a service rather than a person.
    pub is_service: bool,
}

/// Makes and checks credentials (bRPC's `brpc::Authenticator`). One
/// implementation usually serves both sides: a channel calls
/// [`generate_credential`](Self::generate_credential), a server
/// [`verify_credential`](Self::verify_credential). Both run in fibers
/// and may block (ask a token service, say); the server's runs in the
/// connection's reader, so nothing else of that connection is read
/// meanwhile.
pub trait Authenticator: Send + Sync + 'static {
    /// The credential a new connection presents (client side). An error
    /// fails the call that would have carried it.
    fn generate_credential(&self) -> Result<Vec<u8>, RpcError>;

    /// Checks `credential`, sent by the peer at `peer` (server side), and
    /// fills `ctx` with who it is. An error refuses the connection; its
    /// text goes to the client with the code `ERPCAUTH`.
    fn verify_credential(
        &self,
        credential: &[u8],
        peer: SocketAddr,
        ctx: &mut AuthContext,
    ) -> Result<(), RpcError>;

    /// The `WWW-Authenticate` challenge sent with the 401 that answers
    /// an HTTP request without credentials (RFC 9110 §11.6.1): the
    /// scheme the server expects in `Authorization`. `Basic
    /// realm="..."` makes a browser ask its user for a password (the
    /// authenticator then gets `Basic base64(user:password)`). Default:
    /// `Bearer`.
    fn http_challenge(&self) -> String {
        "Bearer".into()
    }
}

impl std::fmt::Debug for dyn Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator")
    }
}

/// A server's check of a connection's first message: `credential` is
/// what the message carries (`None`: nothing). Without an authenticator
/// every connection passes. Accepted, the connection keeps the
/// [`AuthContext`]. Refused, the error to answer with (`ERPCAUTH`; its
/// HTTP status 401 when no credential came) — except on the internal
/// port, whose connections pass unauthenticated and reach only the
/// console (see the module docs).
///
/// Protocols call it from [`Protocol::verify`](crate::protocol::Protocol::verify).
pub fn verify_connection(
    server: &ServerContext,
    conn: &Socket,
    credential: Option<&[u8]>,
) -> Result<(), RpcError> {
    let Some(auth) = &server.options().auth else {
        return Ok(());
    };
    let r = match credential {
        None => Err(RpcError::new(errno::ERPCAUTH, "no credential").with_http_status(401)),
        Some(c) => {
            let mut ctx = AuthContext::default();
            match auth.verify_credential(c, conn.remote_side(), &mut ctx) {
                Ok(()) => {
                    conn.set_auth_context(Arc::new(ctx));
                    return Ok(());
                }
                Err(e) => Err(RpcError::new(
                    errno::ERPCAUTH,
                    format!("authentication failed: {}", e.text),
                )),
            }
        }
    };
    if server.internal {
        // Unauthenticated: the console answers, methods do not.
        return Ok(());
    }
    r
}

/// The error a request on an unauthenticated connection gets (the
/// internal port's, whose console alone answers without credentials).
pub(crate) fn unauthenticated() -> RpcError {
    RpcError::new(
        errno::ERPCAUTH,
        "this connection is not authenticated: its calls are refused (only the builtin \
         console answers on the internal port without credentials)",
    )
}
