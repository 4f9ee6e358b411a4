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

mod acceptor;
mod context;
mod input;
mod method_status;
mod options;
mod responder;
mod shutdown;
mod ticker;
mod timeouts;

use std::collections::HashSet;
use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fibrpc_fiber::butex::Butex;

use crate::http::HttpHandler;
use crate::protocol::http::HttpRoutes;
use crate::protocol::{Protocol, ProtocolList};
use crate::{errno, RpcError, Service};
pub use context::ServerContext;
pub(crate) use context::{
    panic_message, BuiltinAccess, InflightGuard, ServiceEntry, Services, Shared,
};
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
}

struct Running {
    shared: ServerContext,
    addr: SocketAddr,
    /// The internal port's address ([`ServerOptions::internal_port`]).
    internal_addr: Option<SocketAddr>,
    /// The public listener's acceptor, then the internal one's.
    acceptors: Vec<acceptor::Acceptor>,
    ticker: Option<ticker::Ticker>,
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
        Server {
            options,
            services: Arc::default(),
            http_routes: Arc::default(),
            protocols: ProtocolList::builtin(),
            running: None,
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
        let status = names.iter().map(|_| MethodStatus::default()).collect();
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
    /// too; it fails if that port is `addr`'s.
    pub fn start(&mut self, addr: impl ToSocketAddrs) -> Result<(), RpcError> {
        if self.running.is_some() {
            return Err(RpcError::new(libc::EPERM, "the server runs already"));
        }
        // The fiber listener: backlog 1024 (std's is 128, which a burst of
        // connects overflows into 1 s SYN retransmits).
        let listener = fibrpc_fiber::net::TcpListener::bind(addr)?;
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
        let shared = ServerContext {
            shared: Arc::new(Shared {
                services: self.services.clone(),
                http_routes: self.http_routes.clone(),
                protocols: self.protocols.clone(),
                started: std::time::SystemTime::now(),
                options: self.options.clone(),
                inflight: Butex::new(0),
                stopping: AtomicBool::new(false),
                connections: Mutex::new(HashSet::new()),
                refused_connections: std::sync::atomic::AtomicU64::new(0),
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
            acceptors,
            ticker: Some(ticker),
        });
        Ok(())
    }

    /// Exposes each method's counters as bvars named like bRPC's
    /// (`rpc_server_8000_example_echo_service_echo_qps`, ...).
    fn expose_vars(&self, port: u16) {
        for (name, entry) in self.services.iter() {
            for (method, status) in entry.service.method_names().iter().zip(&entry.status) {
                // bvar normalizes the name as bRPC does:
                // `example.EchoService` -> `example_echo_service`.
                let prefix = format!("rpc_server_{port}_{name}_{method}");
                if let Err(e) = status.expose(&prefix) {
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

    /// Stops accepting connections; requests that arrive from now on are
    /// answered with `ELOGOFF`. Requests in flight go on: wait for them
    /// with [`join`](Self::join).
    pub fn stop(&mut self) {
        let Some(r) = &mut self.running else { return };
        r.shared.shared.stopping.store(true, Ordering::Release);
        for a in r.acceptors.drain(..) {
            a.stop();
        }
        if let Some(t) = r.ticker.take() {
            t.stop();
        }
    }

    /// Waits until every request in flight has been answered and its
    /// response written, then closes all connections. Calls
    /// [`stop`](Self::stop) first if needed.
    pub fn join(&mut self) {
        self.stop();
        let Some(r) = self.running.take() else { return };
        self.hide_vars();
        let shared = r.shared;
        loop {
            let n = shared.inflight();
            if n == 0 {
                break;
            }
            let _ = shared.shared.inflight.wait(n, None);
        }
        for id in shared.connection_ids() {
            if let Some(sock) = id.address() {
                // Let queued responses reach the kernel (bounded: a peer
                // that reads nothing must not hold the stop forever).
                let give_up = Instant::now() + Duration::from_secs(2);
                while sock.unwritten_bytes() > 0 && Instant::now() < give_up {
                    let _ = fibrpc_fiber::sleep(Duration::from_millis(1));
                }
                sock.set_failed(RpcError::new(errno::ELOGOFF, "server stopped"));
            }
        }
    }

    /// Waits until `shutdown` completes, then stops gracefully:
    /// [`stop`](Self::stop), then [`join`](Self::join). Blocks the calling
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
