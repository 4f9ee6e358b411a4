//! [`ServerOptions`].

use std::time::Duration;

/// Server settings. Defaults are bRPC's.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Requests handled at once; more are answered with `ELIMIT`
    /// (0 = unlimited, the default).
    pub max_concurrency: usize,
    /// Frames with a larger body close the connection (default 64 MiB).
    pub max_body_size: usize,
    /// Bytes queued on a connection above which responses fail with
    /// `EOVERCROWDED` (default 64 MiB).
    pub max_unwritten_bytes: usize,
    /// HTTP request heads (request line and headers) longer than this are
    /// answered with 431 and the connection closes (default 64 KiB).
    pub http_max_header_size: usize,
    /// How long a stop waits for the requests in flight to be answered
    /// and their responses written, counted from
    /// [`Server::stop`](super::Server::stop) (default 5 s). Then
    /// [`Server::join`](super::Server::join) closes every connection at
    /// once, logs the handlers still running, and returns. bRPC's
    /// `Stop(closewait_ms)`.
    pub stop_grace: Duration,
    /// Sets `SO_REUSEPORT` on the listener [`Server::start`](super::Server::start)
    /// binds, so that other sockets (another process, say the next
    /// version of this one) can listen on the same port at the same time
    /// (default off). See ARCHITECTURE.md for restarting without refusing
    /// connections.
    pub reuse_port: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_concurrency: 0,
            max_body_size: crate::protocol::baidu_std::DEFAULT_MAX_BODY,
            max_unwritten_bytes: 64 << 20,
            http_max_header_size: crate::protocol::http::DEFAULT_MAX_HEADER,
            stop_grace: Duration::from_secs(5),
            reuse_port: false,
        }
    }
}
