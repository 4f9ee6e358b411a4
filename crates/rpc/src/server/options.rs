//! [`ServerOptions`].

use std::time::Duration;

use crate::protocol::baidu_std::compress::DEFAULT_MAX_DECOMPRESSED_SIZE;

/// Server settings. Defaults are bRPC's, except where a server on the
/// open internet needs a bound bRPC lacks: the console cannot set flags
/// unless [`console_flags_writable`](Self::console_flags_writable) says
/// so, a message must arrive within
/// [`read_message_timeout`](Self::read_message_timeout), queued output must
/// move within [`write_timeout`](Self::write_timeout), a connection has at
/// most [`max_requests_per_connection`](Self::max_requests_per_connection)
/// requests in process, and compressed payloads expand to at most
/// [`max_decompressed_size`](Self::max_decompressed_size).
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Requests handled at once; more are answered with `ELIMIT`
    /// (0 = unlimited, the default).
    pub max_concurrency: usize,
    /// The concurrency limit of every method (bRPC's
    /// `method_max_concurrency`; default unlimited): a constant or
    /// bRPC's `auto` limiter, per method. Requests over it are answered
    /// with `ELIMIT`. [`Server::set_max_concurrency_of`](crate::Server::set_max_concurrency_of)
    /// sets one method's.
    pub method_max_concurrency: super::AdaptiveMaxConcurrency,
    /// Frames with a larger body close the connection (default 64 MiB).
    pub max_body_size: usize,
    /// Bytes queued on a connection above which responses fail with
    /// `EOVERCROWDED` (default 64 MiB).
    pub max_unwritten_bytes: usize,
    /// Compressed request payloads (baidu_std `compress_type` snappy,
    /// gzip, zlib or lz4) that expand past this many bytes are answered
    /// with `EREQUEST`; the connection and its other requests go on
    /// (default [`DEFAULT_MAX_DECOMPRESSED_SIZE`], 16 MiB). Uncompressed
    /// payloads are bounded by `max_body_size` alone.
    ///
    /// Decompression stops at the first chunk past the limit and never
    /// allocates the length a snappy or lz4 header claims unless the
    /// limit and the compressed size allow it, so one request costs at
    /// most this much. The decompressed payloads a connection's requests
    /// hold until they are answered are charged to that connection, whose
    /// budget is its `max_body_size`: a request that would pass it is
    /// answered with `EREQUEST` (the others go on).
    pub max_decompressed_size: usize,
    /// HTTP request heads (request line and headers) longer than this are
    /// answered with 431 and the connection closes (default 64 KiB).
    pub http_max_header_size: usize,
    /// Requests of one connection being handled at once: at this many,
    /// the server stops reading that connection until one finishes
    /// (default 1024). The sender meets TCP flow control instead of the
    /// server holding a fiber per request for whatever it sends. For
    /// HTTP/1.1 it counts pipelined requests read and not yet answered:
    /// responses leave in request order, so requests behind a slow one
    /// wait with their answers. Handlers that answer later (deferred)
    /// count until they return, not until they answer; the server-wide
    /// `max_concurrency` bounds those.
    pub max_requests_per_connection: usize,
    /// Connections open at once; one accepted beyond it is closed at once
    /// (0 = no limit but the process's descriptor limit, the default).
    /// With it, what input can make the server hold is bounded by
    /// `max_connections × max_body_size`.
    pub max_connections: usize,
    /// A message (an HTTP request head and body, a baidu_std frame) must
    /// arrive whole within this long of its first byte, or the
    /// connection closes (default 60 s; `None`: no limit). This is what
    /// stops a slowloris sender, who trickles a byte at a time and so
    /// never trips a timeout between reads.
    pub read_message_timeout: Option<Duration>,
    /// A connection with bytes queued for it that cannot write any for
    /// this long (its peer does not read) closes (default 60 s; `None`: no
    /// limit).
    pub write_timeout: Option<Duration>,
    /// A connection that reads and writes nothing for this long closes,
    /// even while one of its requests is being handled (bRPC's
    /// `idle_timeout_sec`; default `None`: never, as bRPC).
    pub idle_timeout: Option<Duration>,
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
    /// Where to register the server once started (default: nowhere):
    /// `etcd://host:port/prefix` puts the key `/prefix/ip:port` under a
    /// lease that is kept alive while the server runs and revoked when it
    /// stops, so clients of the same URL
    /// ([`crate::channel::naming::EtcdNamingService`]) find it, and lose
    /// it within the lease's TTL if the process dies. A malformed URL or
    /// an unreachable etcd fails [`Server::start`](super::Server::start)
    /// (within a few seconds). A server listening on an unspecified
    /// address (`0.0.0.0`) registers the address it reaches etcd from.
    pub register: Option<String>,
    /// Serves TLS on the server's ports (default `None`: plaintext
    /// only). A connection whose first byte starts a TLS handshake record
    /// (0x16) speaks TLS, any other plaintext, so both share a port as
    /// in bRPC; the protocols see decrypted input either way. ALPN
    /// prefers `http/1.1` (see [`crate::tls::DEFAULT_ALPN`]); the
    /// negotiated protocol is [`Socket::alpn`](crate::socket::Socket::alpn).
    /// A TLS handshake must complete within `read_message_timeout`.
    /// [`Server::reload_tls`](super::Server::reload_tls) replaces the
    /// config while the server runs.
    pub tls: Option<crate::tls::TlsServerConfig>,
    /// With [`tls`](Self::tls): a connection that does not start with a
    /// TLS handshake is closed at its first byte (default `false`:
    /// plaintext is served too). Without `tls`,
    /// [`Server::start`](super::Server::start) fails.
    pub tls_required: bool,
    /// Verifies the credential on the first message of every connection
    /// (bRPC's `ServerOptions::auth`; default `None`: no
    /// authentication). A refused connection is answered `ERPCAUTH` and
    /// closed; an accepted one keeps the [`AuthContext`](crate::auth::AuthContext)
    /// the authenticator filled, which handlers read with
    /// [`Controller::auth_context`](crate::Controller::auth_context). The
    /// builtin console then requires credentials too (HTTP
    /// `Authorization`), except on the
    /// [`internal_port`](Self::internal_port). See [`crate::auth`].
    pub auth: Option<std::sync::Arc<dyn crate::auth::Authenticator>>,
    /// Run around every method call and every request to a handler of
    /// [`add_http_handler`](super::Server::add_http_handler), in order
    /// (default: none); not around the builtin console. See
    /// [`crate::interceptor`].
    pub interceptors: Vec<std::sync::Arc<dyn crate::interceptor::ServerInterceptor>>,
    /// HTTP/2 (and gRPC) limits: streams per connection, flow-control
    /// windows, frame and header list sizes, and the flood guards (see
    /// [`H2Options`](crate::protocol::h2::H2Options)).
    pub h2: crate::protocol::h2::H2Options,
    /// Samples requests to files for replay (bRPC's `rpc_dump`; default
    /// `None`: nothing is dumped). The directory is created at
    /// [`Server::start`](super::Server::start), which fails if it cannot
    /// be. See [`crate::rpc_dump`] for the format and the limits.
    pub rpc_dump: Option<crate::rpc_dump::RpcDumpOptions>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_concurrency: 0,
            method_max_concurrency: super::AdaptiveMaxConcurrency::Unlimited,
            max_body_size: crate::protocol::baidu_std::DEFAULT_MAX_BODY,
            max_unwritten_bytes: 64 << 20,
            max_decompressed_size: DEFAULT_MAX_DECOMPRESSED_SIZE,
            http_max_header_size: crate::protocol::http::DEFAULT_MAX_HEADER,
            max_requests_per_connection: crate::socket::DEFAULT_MAX_REQUESTS,
            max_connections: 0,
            read_message_timeout: Some(Duration::from_secs(60)),
            write_timeout: Some(Duration::from_secs(60)),
            idle_timeout: None,
            has_builtin_services: true,
            internal_port: None,
            console_flags_writable: false,
            stop_grace: Duration::from_secs(5),
            reuse_port: false,
            register: None,
            tls: None,
            tls_required: false,
            auth: None,
            interceptors: Vec::new(),
            h2: Default::default(),
            rpc_dump: None,
        }
    }
}
