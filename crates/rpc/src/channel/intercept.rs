//! Running a channel's interceptors around an attempt (see
//! [`crate::interceptor`]), and which call carries a connection's
//! credential ([`crate::auth`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::auth_gate::AuthTurn;
use super::connections::Conn;
use crate::interceptor::{CallInfo, ClientInterceptor};
use crate::protocol::ClientProtocol;
use crate::{Controller, RpcError};

/// The call as the interceptors see it.
fn info<'a, P: ClientProtocol>(
    protocol: &P,
    request: &'a P::Request,
    peer: Option<SocketAddr>,
) -> CallInfo<'a> {
    let (service, method) = protocol.call_name(request);
    CallInfo {
        service,
        method,
        peer,
    }
}

/// Runs the `before` hooks in order; on a refusal, the `after` hooks of
/// those that passed (in reverse order) hear it, and it is returned.
pub(super) fn before<P: ClientProtocol>(
    protocol: &P,
    hooks: &[Arc<dyn ClientInterceptor>],
    request: &P::Request,
    peer: SocketAddr,
    cntl: &mut Controller,
) -> Result<(), RpcError> {
    let call = info(protocol, request, Some(peer));
    for (i, hook) in hooks.iter().enumerate() {
        if let Err(e) = hook.before(&call, cntl) {
            for h in hooks[..i].iter().rev() {
                h.after(&call, cntl, Err(&e));
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Runs the `after` hooks (in reverse order) with an attempt's outcome.
pub(super) fn after<P: ClientProtocol>(
    protocol: &P,
    hooks: &[Arc<dyn ClientInterceptor>],
    request: &P::Request,
    cntl: &Controller,
    result: Result<(), &RpcError>,
) {
    let call = info(protocol, request, cntl.remote_side);
    for hook in hooks.iter().rev() {
        hook.after(&call, cntl, result);
    }
}

/// With an authenticator: whether this request carries `conn`'s
/// credential (then it is set in the request, and the turn must be
/// told when the request is queued), waiting (until `deadline`) while
/// another call is sending it.
pub(super) fn credential_turn<'c, P: ClientProtocol>(
    protocol: &P,
    auth: &dyn crate::auth::Authenticator,
    conn: &'c Conn<P>,
    request: &mut P::Request,
    deadline: Option<Instant>,
) -> Result<Option<AuthTurn<'c>>, RpcError> {
    let Some(turn) = conn.input.auth.fight(deadline)? else {
        return Ok(None);
    };
    let credential = auth.generate_credential()?;
    protocol.set_credential(request, Some(&credential))?;
    Ok(Some(turn))
}
