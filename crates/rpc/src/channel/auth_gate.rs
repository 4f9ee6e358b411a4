//! Which call carries a connection's credential (bRPC's
//! `Socket::FightAuthentication` on the client): the first call packed
//! on a connection wins and sends it; calls that come meanwhile wait
//! until the winner's request is queued, so that it is the first thing
//! the server reads, and then send none.

use std::time::Instant;

use fibrpc_fiber::butex::Butex;

use crate::{errno, RpcError};

/// Nobody has sent the credential yet (or the one who tried failed).
const NOBODY: u32 = 0;
/// A call is packing and queuing it.
const SENDING: u32 = 1;
/// It is queued: the server reads it before anything else.
const SENT: u32 = 2;

/// Per connection: whether its credential went out.
pub(crate) struct AuthGate {
    state: Butex,
}

impl Default for AuthGate {
    fn default() -> Self {
        AuthGate {
            state: Butex::new(NOBODY),
        }
    }
}

impl AuthGate {
    /// `Some`: this call carries the credential, and must say when its
    /// request is queued ([`AuthTurn::sent`]). `None`: it was sent;
    /// send none. Waits (until `deadline`) while another call is sending
    /// it.
    pub(crate) fn fight(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Option<AuthTurn<'_>>, RpcError> {
        loop {
            match self.state.value().compare_exchange(
                NOBODY,
                SENDING,
                std::sync::atomic::Ordering::AcqRel,
                std::sync::atomic::Ordering::Acquire,
            ) {
                Ok(_) => return Ok(Some(AuthTurn { gate: self })),
                Err(SENT) => return Ok(None),
                Err(_) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(RpcError::new(
                            errno::ERPCTIMEDOUT,
                            "timed out waiting for the connection's credential to be sent",
                        ));
                    }
                    // Woken when the winner queued its request or failed.
                    let _ = self.state.wait(SENDING, deadline);
                }
            }
        }
    }

    /// Whether the credential went out already.
    pub(crate) fn is_sent(&self) -> bool {
        self.state
            .value()
            .load(std::sync::atomic::Ordering::Acquire)
            == SENT
    }

    fn finish(&self, state: u32) {
        self.state
            .value()
            .store(state, std::sync::atomic::Ordering::Release);
        self.state.wake_all();
    }
}

/// The right to send a connection's credential; dropped without
/// [`sent`](Self::sent) (packing or queuing failed), the next call
/// tries.
pub(crate) struct AuthTurn<'a> {
    gate: &'a AuthGate,
}

impl AuthTurn<'_> {
    /// The request carrying the credential is queued.
    pub(crate) fn sent(self) {
        self.gate.finish(SENT);
        std::mem::forget(self);
    }
}

impl Drop for AuthTurn<'_> {
    fn drop(&mut self) {
        self.gate.finish(NOBODY);
    }
}
