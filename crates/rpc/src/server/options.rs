//! [`ServerOptions`].

/// Server settings. Defaults are bRPC's, except that the console cannot
/// set flags unless [`console_flags_writable`](Self::console_flags_writable)
/// says so.
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
    /// Whether the builtin console pages (`/`, `/status`, `/vars`,
    /// `/flags`, `/metrics`, `/health`, ...; see [`crate::builtin`]) answer
    /// at all (bRPC's `has_builtin_services`; default `true`). When
    /// `false` their paths are unknown paths: HTTP answers 404 unless a
    /// user handler or method takes them.
    pub has_builtin_services: bool,
    /// bRPC's `internal_port`: when set, the server also listens on this
    /// port (same IP as the address given to
    /// [`Server::start`](crate::Server::start); 0 picks a free port, see
    /// [`Server::internal_listen_addr`](crate::Server::internal_listen_addr)),
    /// and the builtin console answers only there: on the public port its
    /// pages answer 403. Services, HTTP handlers and protocols answer on
    /// both ports alike. Keep the internal port behind a firewall or on
    /// a loopback address. Default `None`: the console answers on the
    /// public port.
    pub internal_port: Option<u16>,
    /// Whether the console may change flags with
    /// `/flags/NAME?setvalue=V` (the inverse of bRPC's `-immutable_flags`;
    /// default `false`: the flags are read-only and such requests answer
    /// 403). Flags are process-wide: a server that allows this lets its
    /// console change them for every server of the process. Even when
    /// allowed, a request a browser marks as coming from another site
    /// (`Sec-Fetch-Site`, `Origin` or `Referer` naming another host) is
    /// refused with 403, so a web page cannot set flags through its
    /// visitor's browser (cross-site request forgery); `curl` and the
    /// console's own pages are not affected. See [`crate::builtin`].
    pub console_flags_writable: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_concurrency: 0,
            max_body_size: crate::protocol::baidu_std::DEFAULT_MAX_BODY,
            max_unwritten_bytes: 64 << 20,
            http_max_header_size: crate::protocol::http::DEFAULT_MAX_HEADER,
            has_builtin_services: true,
            internal_port: None,
            console_flags_writable: false,
        }
    }
}
