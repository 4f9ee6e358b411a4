//! [`Server`]: hosts services; accepts connections; runs each request in a
//! fiber; stops gracefully.
//!
//! ```no_run
//! # fn demo(svc: impl fibrpc::Service) -> Result<(), fibrpc::RpcError> {
//! let mut server = fibrpc::Server::new(fibrpc::ServerOptions::default());
//! server.add_service(svc)?;
//! server.start("127.0.0.1:8000")?;
//! // ... later: finish what is in flight, then close.
//! server.stop();
//! server.join();
//! # Ok(()) }
//! ```
//!
//! # Graceful shutdown
//!
//! Like tonic's `serve_with_shutdown`: [`Server::serve_with_shutdown`]
//! starts, waits for a future, then stops gracefully (requests in flight
//! are answered, then the connections close).
//! [`Server::run_until_signal`] does the same for a started server on
//! SIGINT (Ctrl-C) or SIGTERM; [`Server::run_until`] for any future.
//!
//! ```no_run
//! # fn demo(svc: impl fibrpc::Service) -> Result<(), fibrpc::RpcError> {
//! let mut server = fibrpc::Server::new(Default::default());
//! server.add_service(svc)?;
//! server.start("0.0.0.0:8000")?;
//! server.run_until_signal()?; // returns once the stop is complete
//! # Ok(()) }
//! ```
//!
//! A stop is bounded by [`ServerOptions::stop_grace`]: what is not
//! answered and written by then is cut off, and the handlers still
//! running are logged by name.
//!
//! # Restarting without refusing a connection
//!
//! The new process takes the old one's listening socket
//! ([`Server::offer_listener`] and [`take_listener`], or systemd's
//! socket activation and [`listen_fds`]) and starts on it
//! ([`Server::start_on_listener`]); then the old one stops gracefully.
//! Both accept from one queue meanwhile, so no connection is refused or
//! reset. ARCHITECTURE.md has the details, and why two `SO_REUSEPORT`
//! sockets ([`ServerOptions::reuse_port`]) alone are not enough.

mod acceptor;
mod context;
mod handoff;
mod inflight;
mod input;
pub(crate) mod interceptors;
mod limiter;
mod listener;
mod method_status;
mod options;
mod register;
mod responder;
mod shutdown;
mod stop;
mod streaming_dispatch;
mod ticker;
mod timeouts;

use std::collections::HashSet;
use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::http::HttpHandler;
use crate::protocol::http::HttpRoutes;
use crate::protocol::{Protocol, ProtocolList};
use crate::rpc_dump::RpcDumper;
use crate::tls::{TlsAccept, TlsReloader};
use crate::{RpcError, Service};
pub use context::ServerContext;
pub(crate) use context::{
    panic_message, BuiltinAccess, InflightGuard, ServiceEntry, Services, Shared,
};
pub use handoff::take_listener;
pub(crate) use input::ServerInput;
pub use limiter::{
    AdaptiveMaxConcurrency, AutoConcurrencyLimiter, AutoConcurrencyOptions, ConcurrencyLimiter,
    ConstantConcurrencyLimiter,
};
pub use listener::listen_fds;
pub use method_status::{MethodStats, MethodStatus};
pub use options::ServerOptions;
pub use responder::{Responder, TypedResponder};
pub use shutdown::{shutdown_signal, ShutdownSignal};

/// An RPC server. See the module docs.
pub struct Server {
    options: ServerOptions,
    services: Arc<Services>,
    http_routes: Arc<HttpRoutes>,
    protocols: ProtocolList,
    running: Option<Running>,
    /// The TLS config's slot, kept across restarts so that a reload
    /// outlives a stop ([`ServerOptions::tls`]).
    tls: Option<TlsReloader>,
}

struct Running {
    shared: ServerContext,
    addr: SocketAddr,
    /// The internal port's address ([`ServerOptions::internal_port`]).
    internal_addr: Option<SocketAddr>,
    /// The public listening socket, owned by the first acceptor (open
    /// while it runs).
    listen_fd: RawFd,
    /// The public listener's acceptor, then the internal one's (empty
    /// once stopped).
    acceptors: Vec<acceptor::Acceptor>,
    ticker: Option<ticker::Ticker>,
    offer: Option<handoff::ListenerOffer>,
    /// When the stop's grace period ends (`None` inside: never), once
    /// stopped.
    stop_deadline: Option<Option<Instant>>,
    /// The entry in a naming service ([`ServerOptions::register`]).
    registration: Option<register::Registration>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("services", &self.services.keys().collect::<Vec<_>>())
            .field("addr", &self.running.as_ref().map(|r| r.addr))
            .finish()
    }
}

impl Server {
    /// A server with no services, not listening yet.
    pub fn new(options: ServerOptions) -> Server {
        let options_tls = options.tls.as_ref().map(TlsReloader::new);
        Server {
            protocols: ProtocolList::builtin(options.h2.clone()),
            options,
            services: Arc::default(),
            http_routes: Arc::default(),
            running: None,
            tls: options_tls,
        }
    }

    /// Serves `protocol` on this server's port too (before
    /// [`start`](Self::start)), after the builtin ones (baidu_std,
    /// HTTP/1.1): each connection is detected as the first protocol whose
    /// `parse` does not say `NotMine`. See [`crate::protocol`] for how to
    /// write one.
    pub fn add_protocol<P: Protocol>(&mut self, protocol: P) -> Result<(), RpcError> {
        if self.running.is_some() {
            return Err(RpcError::new(libc::EPERM, "add protocols before start"));
        }
        self.protocols.push(protocol)
    }

    /// Serves `service`'s commands over redis on this server's port
    /// (before [`start`](Self::start); bRPC's
    /// `ServerOptions.redis_service`). Without it the port does not speak
    /// redis. See [`crate::redis`].
    pub fn add_redis_service(
        &mut self,
        service: crate::redis::RedisService,
    ) -> Result<(), RpcError> {
        self.add_protocol(crate::redis::RedisServerProtocol::new(service))
    }

    /// Answers HTTP requests for `path` with `handler` (before
    /// [`start`](Self::start)). A path ending in `/*` takes every path
    /// under it. User paths win over the builtin pages.
    ///
    /// ```no_run
    /// # use fibrpc::http::{HttpContext, Request, Response, StatusCode};
    /// # use fibrpc::IOBuf;
    /// let mut server = fibrpc::Server::new(Default::default());
    /// server.add_http_handler("/hello", |_: Request<IOBuf>, _: &HttpContext| {
    ///     fibrpc::http::text(StatusCode::OK, "Hello, World!")
    /// })?;
    /// # Ok::<(), fibrpc::RpcError>(())
    /// ```
    pub fn add_http_handler(
        &mut self,
        path: &str,
        handler: impl HttpHandler,
    ) -> Result<(), RpcError> {
        if self.running.is_some() {
            return Err(RpcError::new(libc::EPERM, "add HTTP handlers before start"));
        }
        Arc::get_mut(&mut self.http_routes)
            .ok_or_else(|| {
                RpcError::new(
                    libc::EPERM,
                    "connections of the last run still hold the handlers",
                )
            })?
            .add(path, Arc::new(handler))
    }

    /// Adds a service (before [`start`](Self::start)). Fails if a service
    /// with the same name was added or the server runs already.
    pub fn add_service(&mut self, service: impl Service) -> Result<(), RpcError> {
        if self.running.is_some() {
            return Err(RpcError::new(libc::EPERM, "add services before start"));
        }
        let services = Arc::get_mut(&mut self.services).ok_or_else(|| {
            RpcError::new(
                libc::EPERM,
                "connections of the last run still hold the services",
            )
        })?;
        let name = service.service_name();
        if services.contains_key(name) {
            return Err(RpcError::new(
                libc::EEXIST,
                format!("service {name} added twice"),
            ));
        }
        let names = service.method_names();
        let methods = names.iter().enumerate().map(|(i, &m)| (m, i)).collect();
        let status = names
            .iter()
            .map(|_| MethodStatus::with_limiter(self.options.method_max_concurrency.build()))
            .collect();
        services.insert(
            name,
            ServiceEntry {
                service: Arc::new(service),
                methods,
                status,
                json: Default::default(),
            },
        );
        Ok(())
    }

    /// Binds `addr` and starts accepting. Port 0 picks a free port (see
    /// [`listen_addr`](Self::listen_addr)). With
    /// [`ServerOptions::internal_port`] it binds that port on the same IP
    /// too; it fails if that port is `addr`'s. With
    /// [`ServerOptions::reuse_port`] the port may be shared with other
    /// listeners.
    pub fn start(&mut self, addr: impl ToSocketAddrs) -> Result<(), RpcError> {
        if self.running.is_some() {
            return Err(RpcError::new(libc::EPERM, "the server runs already"));
        }
        let listener = listener::bind(addr, self.options.reuse_port)?;
        self.start_on_listener(listener)
    }

    /// Starts accepting on a socket that already listens: inherited from
    /// the process that started this one ([`listen_fds`]), taken over
    /// from a server that is about to stop ([`take_listener`]), or bound
    /// by the caller with options of its own. The socket's bind options
    /// and backlog stay as they are ([`ServerOptions::reuse_port`] does
    /// not apply).
    pub fn start_on_listener(&mut self, listener: std::net::TcpListener) -> Result<(), RpcError> {
        if self.running.is_some() {
            return Err(RpcError::new(libc::EPERM, "the server runs already"));
        }
        if self.options.tls_required && self.options.tls.is_none() {
            return Err(RpcError::new(
                libc::EINVAL,
                "tls_required without a tls config",
            ));
        }
        let listener = fibrpc_fiber::net::TcpListener::from_std(listener)?;
        let addr = listener.local_addr()?;
        let internal = match self.options.internal_port {
            Some(port) if port == addr.port() => {
                return Err(RpcError::new(
                    libc::EINVAL,
                    format!("the internal port {port} is the public port"),
                ))
            }
            Some(port) => Some(fibrpc_fiber::net::TcpListener::bind((addr.ip(), port))?),
            None => None,
        };
        let internal_addr = internal.as_ref().map(|l| l.local_addr()).transpose()?;
        let dump = match &self.options.rpc_dump {
            Some(o) => Some(RpcDumper::new(o.clone()).map_err(|e| {
                RpcError::new(
                    libc::EINVAL,
                    format!("rpc_dump directory {}: {e}", o.dir.display()),
                )
            })?),
            None => None,
        };
        let listen_fd = listener.as_raw_fd();
        let shared = ServerContext {
            shared: Arc::new(Shared {
                services: self.services.clone(),
                http_routes: self.http_routes.clone(),
                protocols: self.protocols.clone(),
                started: std::time::SystemTime::now(),
                options: self.options.clone(),
                inflight: inflight::InflightCount::new(self.options.max_concurrency > 0),
                stopping: AtomicBool::new(false),
                closing: AtomicBool::new(false),
                draining: AtomicBool::new(false),
                connections: Mutex::new(HashSet::new()),
                refused_connections: std::sync::atomic::AtomicU64::new(0),
                dump,
                tls: self.tls.clone().map(|config| TlsAccept {
                    config,
                    required: self.options.tls_required,
                }),
            }),
            internal: false,
        };
        crate::global_vars::expose();
        self.expose_vars(addr.port());
        let mut acceptors = Vec::with_capacity(2);
        let started = acceptor::Acceptor::start(listener, shared.clone()).and_then(|a| {
            acceptors.push(a);
            if let Some(l) = internal {
                // The same services and connection set; only the console
                // tells the two apart.
                let ctx = ServerContext {
                    internal: true,
                    ..shared.clone()
                };
                acceptors.push(acceptor::Acceptor::start(l, ctx)?);
            }
            Ok(ticker::Ticker::start(shared.clone())?)
        });
        let ticker = match started {
            Ok(t) => t,
            Err(e) => {
                shared.shared.stopping.store(true, Ordering::Release);
                acceptors.into_iter().for_each(acceptor::Acceptor::stop);
                self.hide_vars();
                return Err(e);
            }
        };
        self.running = Some(Running {
            shared,
            addr,
            internal_addr,
            listen_fd,
            acceptors,
            ticker: Some(ticker),
            offer: None,
            stop_deadline: None,
            registration: None,
        });
        if let Some(url) = self.options.register.clone() {
            match register::Registration::start(&url, addr) {
                Ok(reg) => {
                    if let Some(r) = &mut self.running {
                        r.registration = Some(reg);
                    }
                }
                Err(e) => {
                    self.join();
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// The listening socket while the server accepts (until
    /// [`stop`](Self::stop)), to duplicate and pass on (`try_clone_to_owned`)
    /// to a process that will take over, say as systemd-style
    /// `LISTEN_FDS` of a child (see [`listen_fds`]).
    pub fn listener_fd(&self) -> Option<BorrowedFd<'_>> {
        let r = self.running.as_ref()?;
        r.acceptors.first()?;
        // SAFETY: the acceptor owns the descriptor and closes it only when
        // stopped, which takes `&mut self`: the borrow cannot outlive it.
        Some(unsafe { BorrowedFd::borrow_raw(r.listen_fd) })
    }

    /// Offers the listening socket at the Unix socket `path` until the
    /// server stops: a process that takes it there ([`take_listener`])
    /// accepts from the same queue, so it can start before this server
    /// stops and no connection is refused or reset in between. A stale
    /// socket file at `path` is replaced; the file is made readable and
    /// writable by this user only (put it in a directory only the service
    /// can reach) and removed when the offer ends.
    ///
    /// ```no_run
    /// # fn demo(mut server: fibrpc::Server) -> Result<(), fibrpc::RpcError> {
    /// server.start("0.0.0.0:8000")?;
    /// server.offer_listener("/run/echo/listener.sock")?;
    /// server.run_until_signal()?; // the successor takes over, then signals
    /// # Ok(()) }
    /// ```
    pub fn offer_listener(&mut self, path: impl AsRef<Path>) -> Result<(), RpcError> {
        let dup = self
            .listener_fd()
            .ok_or_else(|| RpcError::new(libc::EPERM, "the server does not accept connections"))?
            .try_clone_to_owned()?;
        let offer = handoff::ListenerOffer::start(dup, path.as_ref())?;
        if let Some(r) = &mut self.running {
            r.offer = Some(offer);
        }
        Ok(())
    }

    /// Exposes each method's counters as one label combination of the
    /// per-method bvar families (`rpc_server_method_qps{port="8000",
    /// service="example.EchoService",method="Echo"}`, ...).
    fn expose_vars(&self, port: u16) {
        for (name, entry) in self.services.iter() {
            for (method, status) in entry.service.method_names().iter().zip(&entry.status) {
                if let Err(e) = status.expose(port, name, method) {
                    tracing::warn!(
                        service = %name,
                        method = %method,
                        error = %e,
                        "cannot expose the method's counters"
                    );
                }
            }
        }
    }

    fn hide_vars(&self) {
        for entry in self.services.values() {
            for status in &entry.status {
                status.hide();
            }
        }
    }

    /// The address the server listens on, once started.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.running.as_ref().map(|r| r.addr)
    }

    /// The internal port's address, once started with
    /// [`ServerOptions::internal_port`] (bRPC's `internal_port`): the
    /// only listener where the builtin console answers.
    pub fn internal_listen_addr(&self) -> Option<SocketAddr> {
        self.running.as_ref().and_then(|r| r.internal_addr)
    }

    /// Presents `config` (its certificate, key, ALPN and client
    /// certificate verification) to the TLS connections accepted from now
    /// on, without a restart; connections already open, and handshakes
    /// under way, keep the config they started with. Works before
    /// [`start`](Self::start) and across a stop and a restart too. Fails
    /// with `EINVAL` on a server built without [`ServerOptions::tls`]
    /// (plaintext servers do not look at a connection's first byte).
    /// [`tls_reloader`](Self::tls_reloader) does the same from another
    /// thread.
    ///
    /// ```no_run
    /// # fn demo(server: &fibrpc::Server) -> Result<(), fibrpc::RpcError> {
    /// use fibrpc::tls::TlsServerConfig;
    /// server.reload_tls(TlsServerConfig::from_pem_files("cert.pem", "key.pem")?)?;
    /// # Ok(()) }
    /// ```
    pub fn reload_tls(&self, config: crate::tls::TlsServerConfig) -> Result<(), RpcError> {
        let reloader = self.tls_reloader().ok_or_else(|| {
            RpcError::new(
                libc::EINVAL,
                "the server was built without a TLS config (ServerOptions::tls)",
            )
        })?;
        reloader.reload(config);
        Ok(())
    }

    /// A handle that reloads the TLS config (as
    /// [`reload_tls`](Self::reload_tls)) from any thread, say one that
    /// waits for SIGHUP while this server runs; `None` without
    /// [`ServerOptions::tls`].
    pub fn tls_reloader(&self) -> Option<TlsReloader> {
        self.tls.clone()
    }

    /// Stops accepting connections (the listener closes, and any listener
    /// offer ends). Requests already running are answered; requests that
    /// arrive from now on are refused with `ELOGOFF` (bRPC's "the server
    /// is stopping"), which proves they did not run: a fibrpc or bRPC
    /// client stops using the connection and sends them again on a new
    /// one, to whichever server listens now. Starts the grace period
    /// ([`ServerOptions::stop_grace`]). Wait for the end with
    /// [`join`](Self::join).
    pub fn stop(&mut self) {
        let Some(r) = &mut self.running else { return };
        // Out of the naming service first, so clients stop choosing it.
        r.registration = None;
        if r.stop_deadline.is_none() {
            r.stop_deadline = Some(Instant::now().checked_add(self.options.stop_grace));
        }
        r.shared.shared.stopping.store(true, Ordering::Release);
        // Peers of protocols that can be told (HTTP/2's GOAWAY) send no
        // new request from now on; those in flight are answered.
        for id in r.shared.connection_ids() {
            if let Some(sock) = id.address() {
                r.shared.shared.protocols.on_server_stop(&sock);
            }
        }
        // The offer holds a copy of the listening socket: end it first,
        // or the socket would go on queueing connections nobody accepts.
        r.offer = None;
        for a in r.acceptors.drain(..) {
            a.stop();
        }
        if let Some(t) = r.ticker.take() {
            t.stop();
        }
    }

    /// Waits until every request in flight has been answered and its
    /// response written, or until the grace period
    /// ([`ServerOptions::stop_grace`], counted from the stop) ends; then
    /// closes all connections at once and returns. Handlers still running
    /// then are logged (a `tracing` warning each: `service.method` and
    /// how long it ran); their responses are dropped. Calls
    /// [`stop`](Self::stop) first if needed.
    pub fn join(&mut self) {
        self.stop();
        let Some(r) = self.running.take() else { return };
        self.hide_vars();
        let deadline = r.stop_deadline.flatten();
        stop::finish(&r.shared, deadline, self.options.stop_grace);
    }

    /// Waits until `shutdown` completes, then stops gracefully:
    /// [`stop`](Self::stop), then [`join`](Self::join) (bounded by
    /// [`ServerOptions::stop_grace`]). Blocks the calling
    /// thread, or in a fiber only the fiber (the future is driven with
    /// [`fibrpc_fiber::block_on`], so any future works: a channel's
    /// receiver, a timer, [`shutdown_signal`], a tokio future).
    ///
    /// ```no_run
    /// # fn demo(mut server: fibrpc::Server) {
    /// let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    /// // ... hand `tx` to whoever decides when to stop.
    /// server.run_until(async move {
    ///     let _ = rx.await; // a send or a dropped sender
    /// });
    /// # }
    /// ```
    pub fn run_until(&mut self, shutdown: impl Future<Output = ()>) {
        fibrpc_fiber::block_on(shutdown);
        self.stop();
        self.join();
    }

    /// Waits for SIGINT (Ctrl-C) or SIGTERM, then stops gracefully:
    /// requests in flight are answered, then the connections close. A
    /// second signal during the stop ends the process at once. See
    /// [`shutdown_signal`] for what happens to the signals meanwhile.
    ///
    /// Fails only if signal handling cannot be set up (see
    /// [`shutdown_signal`]); the server then keeps running.
    pub fn run_until_signal(&mut self) -> Result<(), RpcError> {
        let signal = shutdown_signal()?;
        self.run_until(signal);
        Ok(())
    }

    /// Binds `addr`, serves until `shutdown` completes, then stops
    /// gracefully: tonic's `serve_with_shutdown`. [`start`](Self::start)
    /// followed by [`run_until`](Self::run_until).
    ///
    /// ```no_run
    /// # fn demo(svc: impl fibrpc::Service) -> Result<(), fibrpc::RpcError> {
    /// let mut server = fibrpc::Server::new(Default::default());
    /// server.add_service(svc)?;
    /// server.serve_with_shutdown("0.0.0.0:8000", fibrpc::server::shutdown_signal()?)?;
    /// # Ok(()) }
    /// ```
    pub fn serve_with_shutdown(
        &mut self,
        addr: impl ToSocketAddrs,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), RpcError> {
        self.start(addr)?;
        self.run_until(shutdown);
        Ok(())
    }

    /// Sets the concurrency limit of one method, named in full
    /// (`"example.EchoService.Echo"`), before [`start`](Self::start)
    /// (bRPC's `MaxConcurrencyOf(name) = ...`): requests over it are
    /// answered with `ELIMIT` before the handler runs. Overrides
    /// [`ServerOptions::method_max_concurrency`] for that method. Fails
    /// if the method is unknown or the server runs.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let mut server = fibrpc::Server::new(Default::default());
    /// # server.add_service(fibrpc_example::EchoServiceServer::new(Echo))?;
    /// # struct Echo;
    /// # impl fibrpc_example::EchoService for Echo {
    /// #     fn echo(&self, _: &mut fibrpc::Controller, r: fibrpc_example::EchoRequest)
    /// #         -> Result<fibrpc_example::EchoResponse, fibrpc::RpcError> {
    /// #         Ok(fibrpc_example::EchoResponse { message: r.message })
    /// #     }
    /// # }
    /// server.set_max_concurrency_of("example.EchoService.Echo", "auto".parse()?)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_max_concurrency_of(
        &mut self,
        full_method_name: &str,
        limit: AdaptiveMaxConcurrency,
    ) -> Result<(), RpcError> {
        if self.running.is_some() {
            return Err(RpcError::new(libc::EPERM, "set method limits before start"));
        }
        let unknown = || {
            RpcError::new(
                crate::errno::ENOMETHOD,
                format!("no method {full_method_name} (want service.Method in full)"),
            )
        };
        let (service, method) = full_method_name.rsplit_once('.').ok_or_else(unknown)?;
        let services = Arc::get_mut(&mut self.services).ok_or_else(|| {
            RpcError::new(
                libc::EPERM,
                "connections of the last run still hold the services",
            )
        })?;
        let entry = services.get_mut(service).ok_or_else(unknown)?;
        let &i = entry.methods.get(method).ok_or_else(unknown)?;
        entry.status[i].set_limiter(limit.build());
        Ok(())
    }

    /// The concurrency limit of a method named in full, now (0:
    /// unlimited; an `auto` limiter's moves), or `None` if unknown.
    pub fn max_concurrency_of(&self, full_method_name: &str) -> Option<usize> {
        let (service, method) = full_method_name.rsplit_once('.')?;
        let e = self.services.get(service)?;
        let &i = e.methods.get(method)?;
        Some(e.status[i].max_concurrency())
    }

    /// Counters of `service.method` (None if unknown).
    pub fn method_stats(&self, service: &str, method: &str) -> Option<MethodStats> {
        let e = self.services.get(service)?;
        let &i = e.methods.get(method)?;
        Some(e.status[i].snapshot())
    }

    /// Connections open now.
    pub fn connection_count(&self) -> usize {
        self.running
            .as_ref()
            .map_or(0, |r| r.shared.connection_count())
    }

    /// Connections closed as soon as they were accepted because
    /// [`ServerOptions::max_connections`] were open.
    pub fn refused_connections(&self) -> u64 {
        self.running.as_ref().map_or(0, |r| {
            r.shared.shared.refused_connections.load(Ordering::Relaxed)
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.join();
    }
}
