//! The acceptor: a fiber that accepts connections and turns each into a
//! [`Socket`] whose input the server's protocols cut
//! ([`ServerInput`](super::input::ServerInput)).
//!
//! A connection is in the server's connection set before any of its input
//! is read: `ServerInput::on_created` lists it when the socket has its id
//! and is not yet registered for input, so its first request (say
//! `GET /connections`) finds it listed.

use std::sync::Arc;
use std::time::Duration;

use fibrpc_fiber::net::TcpListener;
use fibrpc_fiber::JoinHandle;

use super::input::ServerInput;
use super::ServerContext;
use crate::socket::{Socket, SocketOptions};
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
        max_requests: shared.options().max_requests_per_connection.max(2),
        read_here: false,
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
        let max = shared.options().max_connections;
        if max > 0 && shared.connection_count() >= max {
            // Closed at once (the peer sees a reset or EOF), rather than
            // left in the backlog where it would wait for nothing.
            shared
                .shared
                .refused_connections
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if crate::flags::log_connection_errors() {
                tracing::warn!(peer = %remote, max_connections = max, "connection refused: at max_connections");
            }
            drop(stream);
            continue;
        }
        if let Err(e) = Socket::create(stream, Some(remote), user.clone(), options) {
            tracing::warn!(
                peer = %remote,
                error = %e,
                "cannot set up an accepted connection"
            );
        }
    }
}
