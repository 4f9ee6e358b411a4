//! The acceptor: a fiber that accepts connections and turns each into a
//! [`Socket`] whose input the server's protocols cut
//! ([`ServerInput`](super::input::ServerInput)).
//!
//! A connection is in the server's connection set before any of its input
//! is processed: `Socket::create` registers the connection for input, so
//! its first request (say `GET /connections`) may run before `create`
//! returns. Each accepted socket's user is therefore an [`Accepted`]
//! gate, which lists the connection itself on its first read event if the
//! acceptor has not yet; both list it under the set's lock and only if it
//! has not failed, and a failure removes it under the same lock, so a
//! connection that fails at once is never left in the set.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fibrpc_fiber::io::ReadEvents;
use fibrpc_fiber::net::TcpListener;
use fibrpc_fiber::JoinHandle;

use super::input::ServerInput;
use super::ServerContext;
use crate::socket::{InputHandler, Socket, SocketOptions, SocketUser};
use crate::RpcError;

/// How often the accept loop looks at the stop flag even without an
/// interrupt (the interrupt makes it prompt; this makes it certain).
const STOP_POLL: Duration = Duration::from_millis(100);

pub(super) struct Acceptor {
    handle: JoinHandle<()>,
}

impl Acceptor {
    pub(super) fn start(
        listener: TcpListener,
        shared: ServerContext,
    ) -> Result<Acceptor, RpcError> {
        listener.set_accept_timeout(Some(STOP_POLL))?;
        let handle = fibrpc_fiber::Builder::new()
            .name("fibrpc-acceptor")
            .spawn(move || accept_loop(listener, shared))?;
        Ok(Acceptor { handle })
    }

    /// Stops accepting and closes the listener.
    pub(super) fn stop(self) {
        let _ = fibrpc_fiber::interrupt(self.handle.id());
        let _ = self.handle.join();
    }
}

fn accept_loop(listener: TcpListener, shared: ServerContext) {
    let options = SocketOptions {
        max_unwritten: shared.options().max_unwritten_bytes,
        max_body: shared.options().max_body_size,
        max_header: shared.options().http_max_header_size,
    };
    let user: Arc<ServerInput> = Arc::new(ServerInput::new(shared.clone()));
    while !shared.is_stopping() {
        let (stream, remote) = match listener.accept() {
            Ok((stream, remote)) => (stream.into_std(), remote),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                        | std::io::ErrorKind::WouldBlock
                ) =>
            {
                continue
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed; retrying in 10 ms");
                let _ = fibrpc_fiber::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let gate = Arc::new(Accepted {
            input: user.clone(),
            listed: AtomicBool::new(false),
        });
        match Socket::create(stream, Some(remote), gate.clone(), options) {
            Ok(sock) => gate.list(&sock),
            Err(e) => tracing::warn!(
                peer = %remote,
                error = %e,
                "cannot set up an accepted connection"
            ),
        }
    }
}

/// The user of one accepted socket: the server's shared [`ServerInput`]
/// behind a gate that puts the connection in the server's connection set
/// before its first input is read (see the module docs). Costs one
/// allocation per connection and one atomic load per read event.
struct Accepted {
    input: Arc<ServerInput>,
    /// Whether the connection is in the set (or failed before it was).
    listed: AtomicBool,
}

impl Accepted {
    /// Puts `sock` in the server's connection set unless it failed; done
    /// once, by the acceptor or the first read event, whichever is first.
    fn list(&self, sock: &Socket) {
        if self.listed.load(Ordering::Acquire) {
            return;
        }
        let mut conns = self
            .input
            .ctx
            .shared
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // `set_failed` sets the flag before `on_failed` removes the id
        // under this lock: either we see the flag, or the removal comes
        // after this insertion.
        if !sock.failed() {
            conns.insert(sock.id());
        }
        self.listed.store(true, Ordering::Release);
    }
}

impl SocketUser for Accepted {
    fn on_readable(&self, sock: &Arc<Socket>, events: &ReadEvents<'_>) {
        self.list(sock);
        crate::input_messenger::on_readable(&*self.input, sock, events);
    }

    /// The shared [`ServerInput`]: a message's fiber gets back to it
    /// through the socket.
    fn as_any(&self) -> &dyn std::any::Any {
        &*self.input
    }

    fn on_failed(&self, sock: &Socket) {
        InputHandler::on_failed(&*self.input, sock);
    }

    fn protocol_name(&self, sock: &Socket) -> &'static str {
        InputHandler::protocol_name(&*self.input, sock)
    }
}
