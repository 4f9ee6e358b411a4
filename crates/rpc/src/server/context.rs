//! [`ServerContext`]: what a running server's connections and request
//! fibers share, and the one path every protocol takes into a service
//! (admission, method lookup, the handler, its counters).

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use fibrpc_iobuf::IOBuf;

use super::interceptors;
use super::method_status::MethodStatus;
use super::responder::{Reply, Responder};
use super::ServerOptions;
use crate::protocol::http::{HttpRoutes, LazyJsonCodec};
use crate::protocol::ProtocolList;
use crate::socket::{Socket, SocketId};
use crate::{errno, Controller, RpcError, Service};

/// A registered service and its methods.
pub(crate) struct ServiceEntry {
    pub service: Arc<dyn Service>,
    /// FxHash, as the HTTP routes: looked up per request (gRPC and HTTP
    /// name methods by string), filled by the server's own code, so
    /// SipHash's DoS resistance buys nothing (it was ~1% of a gRPC
    /// server's CPU under h2load).
    pub methods: rustc_hash::FxHashMap<&'static str, usize>,
    pub status: Vec<MethodStatus>,
    /// JSON transcoding for HTTP callers, built on first use.
    pub json: LazyJsonCodec,
}

/// The services by full name (FxHash, as `ServiceEntry::methods`).
pub(crate) type Services = rustc_hash::FxHashMap<&'static str, ServiceEntry>;

/// What the acceptor, the connections and the request fibers share.
pub(crate) struct Shared {
    pub services: Arc<Services>,
    pub http_routes: Arc<HttpRoutes>,
    pub protocols: ProtocolList,
    /// When the server started (for `/status` and `/version`).
    pub started: std::time::SystemTime,
    pub options: ServerOptions,
    /// Requests being handled; `join` waits on it reaching 0.
    pub inflight: super::inflight::InflightCount,
    /// Set (SeqCst) by `join` before it first reads `inflight`: only then
    /// does a request that brings the count to 0 wake the butex. Without
    /// it every such request (most, on a lightly loaded server) took the
    /// butex's waiter lock, a cache line the workers pass back and forth.
    pub draining: AtomicBool,
    /// Set by `stop`: no connection is accepted and no input read any
    /// more.
    pub stopping: AtomicBool,
    /// Set by `join` just before it closes the connections: a request
    /// that gets this far is refused with `ELOGOFF` (it could not be
    /// answered anyway).
    pub closing: AtomicBool,
    pub connections: Mutex<HashSet<SocketId>>,
    /// Connections closed on accept because `max_connections` were open.
    pub refused_connections: std::sync::atomic::AtomicU64,
    /// Samples requests to files ([`ServerOptions::rpc_dump`]).
    pub dump: Option<crate::rpc_dump::RpcDumper>,
    /// How connections are accepted when the server serves TLS; its
    /// config is the slot [`Server::reload_tls`](super::Server::reload_tls)
    /// swaps.
    pub tls: Option<crate::tls::TlsAccept>,
}

/// Where a server's builtin console answers, as seen from one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BuiltinAccess {
    /// Nowhere ([`ServerOptions::has_builtin_services`] is off): its
    /// paths are unknown paths.
    Off,
    /// Only on the internal port, and this is the public one (bRPC
    /// answers 403 here).
    Elsewhere,
    /// On this listener.
    Here,
}

/// A running server as its protocols see it: the services, the options,
/// and the entry into a method ([`call_method`](Self::call_method)).
/// Cheap to clone.
#[derive(Clone)]
pub struct ServerContext {
    pub(crate) shared: Arc<Shared>,
    /// Whether this context serves the connections of the internal port
    /// ([`ServerOptions::internal_port`]): each listener hands its own
    /// context to its connections, so a request knows where it came in.
    pub(crate) internal: bool,
}

impl std::fmt::Debug for ServerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerContext")
            .field("services", &self.shared.services.keys().collect::<Vec<_>>())
            .field("protocols", &self.shared.protocols)
            .field("internal", &self.internal)
            .finish()
    }
}

impl ServerContext {
    /// The server's options.
    pub fn options(&self) -> &super::ServerOptions {
        &self.shared.options
    }

    /// Whether the builtin console answers requests that came in through
    /// this context's listener.
    pub(crate) fn builtin_access(&self) -> BuiltinAccess {
        let o = &self.shared.options;
        if !o.has_builtin_services {
            BuiltinAccess::Off
        } else if o.internal_port.is_none() || self.internal {
            BuiltinAccess::Here
        } else {
            BuiltinAccess::Elsewhere
        }
    }

    /// Whether the server is stopping: it accepts no connection and reads
    /// no new request; those already read are answered.
    pub fn is_stopping(&self) -> bool {
        self.shared.stopping.load(Ordering::Acquire)
    }

    /// Calls `service.method` (full or short service name) with a
    /// serialized request, as every builtin protocol does: the request is
    /// admitted (max concurrency, stopping), counted in the method's
    /// status and in the requests the server waits for on stop, and the
    /// handler runs — synchronously, or deferred if the service answers
    /// later. `done` gets the controller and the serialized response or
    /// the error, in this fiber or in whichever completes the response.
    pub fn call_method(
        &self,
        service: &str,
        method: &str,
        cntl: Controller,
        request: IOBuf,
        done: impl FnOnce(Controller, Result<IOBuf, RpcError>) + Send + 'static,
    ) {
        let received = Instant::now();
        let guard = InflightGuard::enter(self);
        let target = guard
            .admit()
            .and_then(|()| self.find_method(service, method));
        match target {
            Ok((service, index)) => self.dispatch(
                guard,
                service,
                index,
                cntl,
                request,
                received,
                move |c, r| done(std::mem::take(c), r),
            ),
            Err(e) => done(cntl, Err(e)),
        }
    }

    /// The ids of the open connections (a snapshot).
    /// Connections open now.
    pub(crate) fn connection_count(&self) -> usize {
        self.shared
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    pub(crate) fn connection_ids(&self) -> Vec<SocketId> {
        self.shared
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect()
    }

    /// A service given by its full or its short name (`EchoService` for
    /// `example.EchoService`, as HTTP URLs may), with its full name.
    fn resolve_service(&self, name: &str) -> Option<(&'static str, &ServiceEntry)> {
        if let Some((&full, entry)) = self.shared.services.get_key_value(name) {
            return Some((full, entry));
        }
        self.shared
            .services
            .iter()
            .map(|(&full, entry)| (full, entry))
            .find(|(full, _)| full.rsplit('.').next() == Some(name))
    }

    /// The service (by full or short name) and the method index a
    /// request names.
    pub(crate) fn find_method(
        &self,
        service: &str,
        method: &str,
    ) -> Result<(&'static str, usize), RpcError> {
        let (full, entry) = self.resolve_service(service).ok_or_else(|| {
            RpcError::new(errno::ENOSERVICE, format!("Fail to find service={service}"))
        })?;
        let &index = entry.methods.get(method).ok_or_else(|| {
            RpcError::new(
                errno::ENOMETHOD,
                format!("Fail to find method={method} of service={service}"),
            )
        })?;
        Ok((full, index))
    }

    /// The entry of a service [`find_method`](Self::find_method) found.
    pub(crate) fn entry(&self, service: &'static str) -> &ServiceEntry {
        &self.shared.services[service]
    }

    /// A controller for a request read from `conn`: the addresses, the
    /// TLS peer's certificate subject and the connection's
    /// [`AuthContext`](crate::auth::AuthContext). Protocols make their
    /// requests' controllers with it.
    pub fn new_controller(&self, conn: &Socket) -> Controller {
        let mut cntl = Controller::new();
        cntl.remote_side = Some(conn.remote_side());
        cntl.local_side = Some(conn.local_side());
        cntl.peer_subject = conn.peer_subject_arc();
        if self.shared.options.auth.is_some() {
            cntl.auth_context = conn.auth_context().cloned();
        }
        cntl
    }

    /// Runs method `index` of `service` on `request` and hands the
    /// outcome to `reply`: at once for a synchronous handler, whenever
    /// its [`Responder`] is completed for a deferred one. The guard
    /// counts the request until the reply ran. With an authenticator, a
    /// request of an unauthenticated connection (the internal port's) is
    /// refused; the interceptors run around the handler.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn dispatch<R>(
        &self,
        guard: InflightGuard<'_>,
        service: &'static str,
        index: usize,
        mut cntl: Controller,
        request: IOBuf,
        received: Instant,
        reply: R,
    ) where
        R: FnOnce(&mut Controller, Result<IOBuf, RpcError>) + Send + 'static,
    {
        let options = &self.shared.options;
        if let Some(dump) = &self.shared.dump {
            let method = self.entry(service).service.method_names()[index];
            dump.sample(
                cntl.protocol,
                service,
                method,
                &request,
                &cntl.request_attachment,
            );
        }
        if options.auth.is_some() && cntl.auth_context.is_none() {
            return reply(&mut cntl, Err(crate::auth::unauthenticated()));
        }
        if options.interceptors.is_empty() {
            return self.run_handler(guard, service, index, cntl, request, received, reply);
        }
        let method = self.entry(service).service.method_names()[index];
        let (passed, refused) = interceptors::before(self, service, method, &mut cntl);
        let shared = self.shared.clone();
        let reply = move |c: &mut Controller, r: Result<IOBuf, RpcError>| {
            interceptors::after(
                &shared.options.interceptors[..passed],
                service,
                method,
                c,
                r.as_ref(),
            );
            reply(c, r)
        };
        match refused {
            Some(e) => reply(&mut cntl, Err(e)),
            None => self.run_handler(guard, service, index, cntl, request, received, reply),
        }
    }

    /// [`dispatch`](Self::dispatch) once the call is let through.
    #[allow(clippy::too_many_arguments)]
    fn run_handler<R>(
        &self,
        guard: InflightGuard<'_>,
        service: &'static str,
        index: usize,
        mut cntl: Controller,
        request: IOBuf,
        received: Instant,
        reply: R,
    ) where
        R: FnOnce(&mut Controller, Result<IOBuf, RpcError>) + Send + 'static,
    {
        let entry = self.entry(service);
        let status = &entry.status[index];
        if let Err(e) = status.on_requested() {
            reply(&mut cntl, Err(e));
            drop(guard);
            return;
        }
        // rpcz: a traced request's span is the fiber's context while its
        // handler runs here (a deferred one: until it returns).
        let traced = crate::rpcz::server::handler_start(&mut cntl);
        // The calls the handler makes from this fiber inherit the
        // caller's deadline (`call_context`); one branch without one.
        let _inherit = cntl.deadline.map(crate::call_context::enter_deadline);
        if entry.service.defers(index) {
            let reply: Reply = Box::new(reply);
            let done = Responder::new(cntl, guard.into_owned(), service, index, received, reply);
            let svc = &entry.service;
            let r = catch_unwind(AssertUnwindSafe(move || {
                svc.call_method_deferred(index, request, done)
            }));
            drop(traced);
            if let Err(p) = r {
                // The responder was dropped in the unwind and answered
                // `EINTERNAL`; say why.
                tracing::error!(
                    service = %service,
                    panic = %panic_message(&*p),
                    "a deferred handler panicked; answered EINTERNAL"
                );
            }
            return;
        }
        let r = catch_unwind(AssertUnwindSafe(|| {
            entry.service.call_method(index, &mut cntl, &request)
        }))
        .unwrap_or_else(|p| {
            Err(RpcError::new(
                errno::EINTERNAL,
                format!("the handler panicked: {}", panic_message(&*p)),
            ))
        });
        drop(traced);
        crate::rpcz::server::handler_end(&mut cntl);
        let r = match cntl.error.take() {
            Some(e) => Err(e),
            None => r,
        };
        status.on_end(error_code(&r), received.elapsed());
        reply(&mut cntl, r);
        drop(guard);
    }
}

/// Counts a request in flight; the last one out during a stop wakes
/// `Server::join`. A guard, so a panicking handler still counts out.
/// Borrowed: a request answered in its own fiber touches no reference
/// count of the server, which every connection shares (see
/// [`into_owned`](Self::into_owned) for one answered later).
pub(crate) struct InflightGuard<'a> {
    ctx: &'a ServerContext,
    /// Requests running before this one (counted only with a
    /// `max_concurrency`, see `inflight`).
    before: usize,
}

impl<'a> InflightGuard<'a> {
    /// Counts a request in.
    pub(crate) fn enter(ctx: &'a ServerContext) -> InflightGuard<'a> {
        // SeqCst, like `admit`'s load of `closing`: `join` sets `closing`
        // and then reads this count, so either it sees this request or
        // this request sees `closing` (one `lock xadd` on x86 either way).
        let before = ctx.shared.inflight.enter();
        InflightGuard { ctx, before }
    }

    /// Refuses the request once the server stops (bRPC's `ELOGOFF`: the
    /// server says it did not run the request, so a client may send it
    /// elsewhere whatever the call), or when the requests running before
    /// it reached `max_concurrency`.
    pub(crate) fn admit(&self) -> Result<(), RpcError> {
        // `closing` is the SeqCst half of `join`'s handshake with
        // `enter`; `stopping` refuses everything after `stop` at once.
        if self.ctx.is_stopping() || self.ctx.shared.closing.load(Ordering::SeqCst) {
            return Err(RpcError::new(errno::ELOGOFF, "the server is stopping"));
        }
        let max = self.ctx.shared.options.max_concurrency;
        if max > 0 && self.before >= max {
            return Err(RpcError::new(
                errno::ELIMIT,
                format!("reached the server's max_concurrency={max}"),
            ));
        }
        Ok(())
    }

    /// The same count, kept by a guard that may outlive this fiber.
    pub(crate) fn into_owned(self) -> OwnedInflight {
        let shared = self.ctx.shared.clone();
        std::mem::forget(self);
        OwnedInflight { shared }
    }
}

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        count_out(&self.ctx.shared);
    }
}

/// An [`InflightGuard`] that owns its server: held by a [`Responder`].
pub(crate) struct OwnedInflight {
    shared: Arc<Shared>,
}

impl OwnedInflight {
    /// The server this request runs on.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl Drop for OwnedInflight {
    fn drop(&mut self) {
        count_out(&self.shared);
    }
}

fn count_out(shared: &Shared) {
    // SeqCst on both: either `join`'s store of `draining` comes first in
    // the single total order and we wake it, or our decrement does and
    // its read of the count (after the store) sees it.
    shared.inflight.exit();
    if shared.draining.load(Ordering::SeqCst) {
        shared.inflight.wake();
    }
}

/// The message of a caught panic.
pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".into())
}

/// An outcome's error code for the method's counters and limiter: 0 for
/// a success, -1 for an error without a code.
pub(crate) fn error_code<T>(r: &Result<T, RpcError>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) if e.code == 0 => -1,
        Err(e) => e.code,
    }
}
