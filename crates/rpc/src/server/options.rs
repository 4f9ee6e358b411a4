//! [`ServerOptions`].

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
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_concurrency: 0,
            max_body_size: crate::protocol::baidu_std::DEFAULT_MAX_BODY,
            max_unwritten_bytes: 64 << 20,
            http_max_header_size: crate::protocol::http::DEFAULT_MAX_HEADER,
        }
    }
}
