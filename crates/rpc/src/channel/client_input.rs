//! The client side's [`InputHandler`], one per connection: the channel's
//! protocol cuts responses, and each goes to the call waiting for it
//! under its correlation id. The pending calls live here, not in the
//! socket: the socket layer knows nothing of calls.

use std::sync::{Arc, Mutex};

use fibrpc_iobuf::IOBuf;
use rustc_hash::FxHashMap;

use super::call::PendingCall;
use crate::protocol::{ClientProtocol, Parsed};
use crate::socket::{Cut, InputHandler, Socket, WaitingCall};
use crate::{errno, RpcError};

/// Calls waiting on one connection, and the protocol that answers them.
pub(crate) struct ClientInput<P: ClientProtocol> {
    protocol: Arc<P>,
    /// Whether the connection's credential went out (with an
    /// authenticator).
    pub(crate) auth: super::auth_gate::AuthGate,
    /// By correlation id (ours: no hash flooding to fear).
    pending: Mutex<FxHashMap<u64, Arc<PendingCall<P::Message>>>>,
    /// Held from packing a request to queueing it when the protocol
    /// matches responses by order
    /// ([`ClientProtocol::responses_in_request_order`]). A fiber mutex:
    /// queueing may write in place.
    order: fibrpc_fiber::sync::Mutex<()>,
}

impl<P: ClientProtocol> ClientInput<P> {
    pub(crate) fn new(protocol: Arc<P>) -> ClientInput<P> {
        ClientInput {
            protocol,
            auth: Default::default(),
            pending: Mutex::new(FxHashMap::default()),
            order: fibrpc_fiber::sync::Mutex::new(()),
        }
    }

    /// For a protocol matching responses by order, or whose requests
    /// must go out in the order they were packed: the lock under which
    /// a request is packed and queued (`None` for the others).
    pub(crate) fn order_lock(&self) -> Option<fibrpc_fiber::sync::MutexGuard<'_, ()>> {
        self.protocol
            .requests_in_pack_order()
            .then(|| self.order.lock())
    }

    /// The connection's protocol.
    pub(crate) fn protocol(&self) -> &P {
        &self.protocol
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, FxHashMap<u64, Arc<PendingCall<P::Message>>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a call waiting for the response with `correlation_id`.
    /// Fails if the socket failed already (its calls were woken).
    pub(crate) fn add(
        &self,
        sock: &Socket,
        correlation_id: u64,
        call: Arc<PendingCall<P::Message>>,
    ) -> bool {
        let mut p = self.pending();
        // Checked under the lock: `set_failed` sets the flag before it
        // drains, so a call added here is either drained or refused.
        if sock.failed() {
            return false;
        }
        p.insert(correlation_id, call);
        true
    }

    /// Removes (and returns) the call waiting for `correlation_id`.
    pub(crate) fn take(&self, correlation_id: u64) -> Option<Arc<PendingCall<P::Message>>> {
        self.pending().remove(&correlation_id)
    }

    /// [`take`](Self::take) for a call that stops waiting: if it was
    /// still pending (no response, no failure), the protocol hears it
    /// was abandoned.
    pub(crate) fn give_up(
        &self,
        sock: &Arc<Socket>,
        correlation_id: u64,
    ) -> Option<Arc<PendingCall<P::Message>>> {
        let call = self.take(correlation_id);
        if call.is_some() {
            self.protocol.call_abandoned(correlation_id, sock);
        }
        call
    }
}

impl<P: ClientProtocol> InputHandler for ClientInput<P> {
    type Message = P::Message;

    fn cut(&self, sock: &Arc<Socket>, input: &mut IOBuf, eof: bool) -> Cut<P::Message> {
        let name = self.protocol.name();
        let parsed = match self.protocol.parse(input, sock, eof) {
            Parsed::NotMine => self.protocol.parse_other(input, sock, eof),
            p => p,
        };
        match parsed {
            Parsed::Message(m) => Cut::Message(m),
            Parsed::NeedMore => Cut::NeedMore,
            Parsed::NotMine => Cut::Bad(format!("not a {name} response")),
            Parsed::Bad(why) => Cut::Bad(format!("{name}: {why}")),
            Parsed::Consumed => Cut::Consumed,
        }
    }

    fn ends_input(&self, msg: &P::Message) -> bool {
        self.protocol.ends_input(msg)
    }

    fn inline(&self) -> bool {
        true
    }

    fn process(&self, sock: &Arc<Socket>, msg: P::Message) {
        // Absent: the call timed out or another response won; drop it.
        if let Some(call) = self
            .protocol
            .correlation_id(&msg, sock)
            .and_then(|id| self.take(id))
        {
            call.complete_from(sock, Ok(msg));
        }
    }

    fn on_failed(&self, sock: &Socket) {
        let calls: Vec<_> = self.pending().drain().map(|(_, c)| c).collect();
        if calls.is_empty() {
            return;
        }
        let why = sock.error().map(|e| e.text).unwrap_or_default();
        for call in calls {
            call.complete(Err(RpcError::new(
                errno::EFAILEDSOCKET,
                format!("connection to {} failed: {why}", sock.remote_side()),
            )));
        }
    }

    fn protocol_name(&self, _sock: &Socket) -> &'static str {
        self.protocol.name()
    }

    fn describe(&self, sock: &Socket) -> Vec<(&'static str, String)> {
        self.protocol.describe_connection(sock)
    }

    fn waiting_calls(&self) -> Option<Vec<WaitingCall>> {
        let now = std::time::Instant::now();
        let mut calls: Vec<WaitingCall> = self
            .pending()
            .iter()
            .map(|(&id, call)| call.describe(id, now))
            .collect();
        calls.sort_unstable_by_key(|c| c.correlation_id);
        Some(calls)
    }
}
