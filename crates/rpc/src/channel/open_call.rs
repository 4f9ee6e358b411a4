//! Calls whose response outlives the sending of their request (a gRPC
//! streaming call): [`CallEngine::open`] runs the engine's attempts
//! until the request is queued on a connection, and hands back an
//! [`OpenCall`] that holds the connection and the pending call while the
//! caller goes on sending and receiving.
//!
//! Only the opening is retried: a request that could not be queued
//! (no connection, a connection that takes no new stream) goes to
//! another attempt as the retry policy says; once queued, the call's
//! messages are the caller's and nothing is sent again.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::call::{Continuation, PendingCall};
use super::connections::{Conn, Connections};
use super::engine::{record_outcome, reset_outcome, CallEngine};
use super::retry::RequestSent;
use crate::protocol::ClientProtocol;
use crate::{Controller, RpcError};

/// A call whose request was queued and whose outcome (the protocol's
/// last message for it, or the connection's failure) is still to come.
/// Dropped before that, the protocol hears the call was abandoned
/// ([`ClientProtocol::call_abandoned`]).
pub(crate) struct OpenCall<P: ClientProtocol> {
    pool: Arc<Connections<P>>,
    conn: Conn<P>,
    id: u64,
    call: Arc<PendingCall<P::Message>>,
    server: SocketAddr,
}

impl<P: ClientProtocol> CallEngine<P> {
    /// Opens a call of `request`: attempts (as the retry policy allows)
    /// until it is queued on a connection. `on_end` makes the
    /// continuation each attempt's pending call runs, in a fiber of its
    /// own, once its outcome is in. The controller gets the outcome of
    /// the opening (remote side, retries, or the error).
    pub(crate) fn open(
        &self,
        cntl: &mut Controller,
        request: P::Request,
        on_end: &dyn Fn() -> Continuation,
    ) -> Result<OpenCall<P>, RpcError> {
        let start = Instant::now();
        reset_outcome(cntl);
        let r = self.open_attempts(cntl, request, start, on_end);
        match &r {
            Ok(open) => {
                cntl.latency = start.elapsed();
                cntl.remote_side = Some(open.server);
            }
            Err(e) => record_outcome(cntl, start, &Err::<(), _>(e.clone())),
        }
        r
    }

    fn open_attempts(
        &self,
        cntl: &mut Controller,
        request: P::Request,
        start: Instant,
        on_end: &dyn Fn() -> Continuation,
    ) -> Result<OpenCall<P>, RpcError> {
        let mut plan = self.plan(cntl, request, start)?;
        loop {
            let (addr, pool) = match self.select(&plan, cntl) {
                Ok(s) => s,
                Err(e) => match self.failed_attempt(&plan, cntl, e.into_local(), RequestSent::No) {
                    Some(e) => return Err(e),
                    None => continue,
                },
            };
            plan.tried(addr);
            let sent = Instant::now();
            let opened = pool.get(plan.deadline).and_then(|conn| {
                let call = PendingCall::new(sent, plan.deadline);
                call.set_continuation(on_end());
                match self.send(&conn, &mut plan.request, cntl, &call, plan.deadline) {
                    Ok(id) => Ok(OpenCall {
                        pool: pool.clone(),
                        conn,
                        id,
                        call,
                        server: addr,
                    }),
                    Err(e) => {
                        pool.put_back(conn, true);
                        Err(e)
                    }
                }
            });
            self.feedback(addr, opened.as_ref().err(), sent);
            match opened {
                Ok(open) => return Ok(open),
                Err(e) => {
                    // Nothing of it was queued: another attempt may go.
                    if let Some(e) =
                        self.failed_attempt(&plan, cntl, e.into_local(), RequestSent::No)
                    {
                        return Err(e);
                    }
                }
            }
        }
    }
}

impl<P: ClientProtocol> OpenCall<P> {
    /// The connection the call is on.
    pub(crate) fn sock(&self) -> &Arc<crate::socket::Socket> {
        &self.conn.sock
    }

    /// The call's correlation id on its connection.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Whether the outcome is in.
    pub(crate) fn is_done(&self) -> bool {
        self.call.wait(Some(Instant::now()))
    }

    /// Waits for the outcome until `deadline`; whether it is in.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        self.call.wait(deadline)
    }

    /// Takes the outcome (once).
    pub(crate) fn take(&self) -> Option<Result<P::Message, RpcError>> {
        self.call.take()
    }

    /// Stops waiting for the outcome: if it is not in, the protocol hears
    /// the call was abandoned (and its late answer is dropped).
    pub(crate) fn give_up(&self) {
        self.conn.input.give_up(&self.conn.sock, self.id);
    }
}

impl<P: ClientProtocol> Drop for OpenCall<P> {
    fn drop(&mut self) {
        self.give_up();
        let done = self.is_done();
        self.pool.put_back(self.conn.clone(), done);
    }
}
