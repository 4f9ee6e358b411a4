//! Who consumes a socket's input: the traits the input messenger calls.
//!
//! A socket knows bytes and limits only. What its bytes mean — which
//! protocols cut them, and who processes what they cut (a server's
//! request handlers, a client's waiting calls) — is its [`SocketUser`],
//! given when the socket is created.

use std::sync::Arc;

use fibrpc_fiber::io::ReadEvents;
use fibrpc_iobuf::IOBuf;

use super::Socket;
use crate::tls::TlsAccept;

/// What the input messenger found at the front of a connection's input.
pub(crate) enum Cut<M> {
    /// One whole message, cut off the input.
    Message(M),
    /// Incomplete: read more.
    NeedMore,
    /// Malformed: close the connection, logging the reason.
    Bad(String),
    /// Cut and handled in place: nothing to process.
    Consumed,
}

/// One answer a connection's user waits for (a client's call waiting for
/// its response), as the console shows it (`/ids`, `/connections/ID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingCall {
    /// What matches the answer to the call (baidu_std's correlation id;
    /// for protocols answering in order, the call's place in line).
    pub correlation_id: u64,
    /// Where its request is: `"queued"` (not written yet), `"writing"`
    /// (inside a `writev` now), `"sent"` (the kernel took some of it; the
    /// response is awaited), `"answered"` (completed, about to leave).
    pub state: &'static str,
    /// Since the attempt began (connection and queueing included).
    pub age: std::time::Duration,
    /// Time left before its deadline (`None`: no deadline; zero: past it,
    /// its caller is about to give up).
    pub deadline_in: Option<std::time::Duration>,
}

/// The consumer of a socket's input and failure (bRPC's `SocketUser` and
/// the messenger's handlers in one).
pub(crate) trait SocketUser: Send + Sync + 'static {
    /// The connection is readable: read and process (runs in the
    /// connection's reader fiber). Implemented for every
    /// [`InputHandler`] by the input messenger.
    fn on_readable(&self, sock: &Arc<Socket>, events: &ReadEvents<'_>);

    /// `self` as `Any`, so that a message's fiber can get back to the
    /// concrete handler through its socket (no reference count of the
    /// handler, which every connection of a server shares, is touched per
    /// message).
    fn as_any(&self) -> &dyn std::any::Any;

    /// The socket has its id and is not registered for input yet: nothing
    /// of it has been read (a server lists the connection here, so that
    /// its first request finds it listed).
    fn on_created(&self, _sock: &Arc<Socket>) {}

    /// The socket failed: release whatever waits on it.
    fn on_failed(&self, _sock: &Socket) {}

    /// The name of the protocol the connection speaks, for display.
    fn protocol_name(&self, sock: &Socket) -> &'static str;

    /// The TLS config of a server that serves TLS on this connection's
    /// port (its first byte decides). Default: none.
    fn tls_accept(&self) -> Option<&TlsAccept> {
        None
    }

    /// The calls waiting for answers on this connection, for display;
    /// `None` if this user makes no calls (a server's connection).
    fn waiting_calls(&self) -> Option<Vec<WaitingCall>> {
        None
    }

    /// What the connection's protocol keeps for it, for display (see
    /// `Protocol::describe_connection`).
    fn describe(&self, _sock: &Socket) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// Cuts messages from a connection's input and processes them; the input
/// messenger drives it.
pub(crate) trait InputHandler: Send + Sync + 'static {
    /// One message as cut.
    type Message: Send + 'static;

    /// Cuts one message off the front of `input` (consuming nothing
    /// unless it returns a message). `eof`: the peer closed its side.
    /// Runs in the reader, one at a time per connection.
    fn cut(&self, sock: &Arc<Socket>, input: &mut IOBuf, eof: bool) -> Cut<Self::Message>;

    /// Whether nothing after `msg` is read from the connection (it closes
    /// once `msg` is answered).
    fn ends_input(&self, msg: &Self::Message) -> bool;

    /// Processes one message. Runs in a fiber: the reader's own for the
    /// last message of a read, a new one for the others.
    fn process(&self, sock: &Arc<Socket>, msg: Self::Message);

    /// Whether messages are cheap and never block (a response only wakes
    /// its caller): then the reader processes each in place, in order,
    /// and no fiber is started per message. This also orders every
    /// message read before an EOF ahead of the failure the EOF causes.
    fn inline(&self) -> bool {
        false
    }

    /// See [`SocketUser::on_created`].
    fn on_created(&self, _sock: &Arc<Socket>) {}

    /// See [`SocketUser::on_failed`].
    fn on_failed(&self, _sock: &Socket) {}

    /// See [`SocketUser::protocol_name`].
    fn protocol_name(&self, sock: &Socket) -> &'static str;

    /// See [`SocketUser::tls_accept`].
    fn tls_accept(&self) -> Option<&TlsAccept> {
        None
    }

    /// See [`SocketUser::waiting_calls`].
    fn waiting_calls(&self) -> Option<Vec<WaitingCall>> {
        None
    }

    /// See [`SocketUser::describe`].
    fn describe(&self, _sock: &Socket) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

impl<H: InputHandler> SocketUser for H {
    fn on_readable(&self, sock: &Arc<Socket>, events: &ReadEvents<'_>) {
        crate::input_messenger::on_readable(self, sock, events);
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn on_created(&self, sock: &Arc<Socket>) {
        InputHandler::on_created(self, sock);
    }

    fn on_failed(&self, sock: &Socket) {
        InputHandler::on_failed(self, sock);
    }

    fn protocol_name(&self, sock: &Socket) -> &'static str {
        InputHandler::protocol_name(self, sock)
    }

    fn tls_accept(&self) -> Option<&TlsAccept> {
        InputHandler::tls_accept(self)
    }

    fn waiting_calls(&self) -> Option<Vec<WaitingCall>> {
        InputHandler::waiting_calls(self)
    }

    fn describe(&self, sock: &Socket) -> Vec<(&'static str, String)> {
        InputHandler::describe(self, sock)
    }
}
