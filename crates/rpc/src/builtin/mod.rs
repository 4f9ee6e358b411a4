//! The builtin pages a server answers over HTTP (bRPC's builtin
//! services): plain text for curl, HTML for browsers. This module has no
//! API; the pages are turned on, moved and opened by
//! [`ServerOptions`](crate::ServerOptions).
//!
//! | path | page |
//! |---|---|
//! | `/` | index with links |
//! | `/status` | services, methods, counts, qps, errors, latency, in-flight |
//! | `/vars` | every bvar (`/vars/NAME`, `?series` history as JSON) |
//! | `/connections` | open connections and their traffic (`/connections/ID`: one connection) |
//! | `/streams` | open streams (bRPC's streaming RPC): peers, windows, counters |
//! | `/cluster` | cluster channels: servers, states, circuit breakers |
//! | `/fibers` | the fiber runtime's workers and counters (`?list`: the live fibers; `/fibers/ID`: one) |
//! | `/ids` | calls waiting for answers, by connection and correlation id |
//! | `/flags` | runtime options (`/flags/NAME?setvalue=V` sets a reloadable one, if allowed) |
//! | `/metrics` | Prometheus text exposition of every bvar |
//! | `/rpcz` | recent traced calls (filters; `?trace=ID` for one trace's tree; `?format=json`) |
//! | `/hotspots` | CPU, lock-contention and heap profiles as flame graphs (`/hotspots/cpu?seconds=N`, `/hotspots/contention?seconds=N`, `/hotspots/heap`) |
//! | `/health` | `OK` |
//! | `/version` | fibrpc's version |
//!
//! # Who can reach them
//!
//! - [`has_builtin_services`](crate::ServerOptions::has_builtin_services)
//!   (default on, as in bRPC): off, the paths above are unknown paths
//!   (404, or whatever user handler or method takes them).
//! - [`internal_port`](crate::ServerOptions::internal_port) (bRPC's): the
//!   pages answer only on a second listener on that port; on the public
//!   port they answer 403, as in bRPC. Everything else answers on both.
//! - User HTTP handlers win over the pages on their paths.
//!
//! # Setting flags
//!
//! The console shows flags read-only unless the server has
//! [`console_flags_writable`](crate::ServerOptions::console_flags_writable)
//! (default off; bRPC sets flags unless `-immutable_flags`). Read-only,
//! `?setvalue=` answers 403 and changes nothing. Writable, it answers 200
//! and sets the flag; 400 with the allowed values if the setter refuses
//! the value (every fibrpc flag checks its range: `fiber_concurrency`
//! takes the current worker count up to the runtime's
//! [`MAX_WORKERS`](fibrpc_fiber::MAX_WORKERS)); 404 for an unknown flag;
//! 403 for one that is not reloadable.
//!
//! Setting keeps bRPC's form, a GET, so curl, scripts and links go on
//! working. A GET is what a web page can make its visitor's browser send
//! to any address (an image, a link, a no-cors fetch), so a console
//! reachable from a browser could be driven by any page it visits
//! (cross-site request forgery). A page cannot choose the headers the
//! browser adds, though, so a `setvalue` is refused with 403 when:
//!
//! - `Sec-Fetch-Site` (sent by browsers on every request) is anything but
//!   `same-origin` or `none` (typed into the address bar); `same-site` is
//!   refused too, since a page on another port of the same host is
//!   same-site;
//! - `Origin` or `Referer` names another `host:port` than the request's
//!   `Host` (or is `null`).
//!
//! Requests without these headers (curl, scripts) are not affected. Not
//! covered: browsers old enough to send neither `Sec-Fetch-Site` nor
//! `Origin` on a GET, with the referrer suppressed by the page; and DNS
//! rebinding, where an attacker's host name resolves to the server and
//! its requests are same-origin to the browser. If browsers on untrusted
//! pages can reach the console, keep the flags read-only or serve the
//! console on an internal port they cannot reach.

mod assets;
mod cluster;
mod connections;
mod fiber_list;
mod fibers;
mod flags;
mod hotspots;
mod hotspots_heap;
mod ids;
mod index;
mod metrics;
mod origin;
mod page;
mod rpcz;
mod socket;
mod status;
mod streams;
mod vars;

use fibrpc_iobuf::IOBuf;
use http::{Request, Response, StatusCode};

use crate::server::{BuiltinAccess, ServerContext};
pub(crate) use page::{escape, query_param, Format, Page};

/// Answers a request for a page; the `&str` is the path after the
/// page's own (`/flags/NAME` → `NAME`).
type Handler = fn(&ServerContext, &Request<IOBuf>, &str) -> Response<IOBuf>;

/// A builtin page: its path, a one-line description, and its handler.
pub(crate) struct Builtin {
    pub path: &'static str,
    pub about: &'static str,
    handler: Handler,
}

/// Every builtin page, in the index's order.
pub(crate) static PAGES: &[Builtin] = &[
    Builtin {
        path: "/status",
        about: "services and methods: counts, qps, errors, latency, concurrency",
        handler: status::serve,
    },
    Builtin {
        path: "/vars",
        about: "every bvar; click one for its history chart",
        handler: vars::serve,
    },
    Builtin {
        path: "/connections",
        about: "open connections: peers, protocol, traffic; click one for its state, TLS, waiting calls",
        handler: connections::serve,
    },
    Builtin {
        path: "/streams",
        about: "open streams: peer, window, bytes written, consumed and unconsumed",
        handler: streams::serve,
    },
    Builtin {
        path: "/cluster",
        about: "cluster channels: naming, load balancer, each server's state, error rates, calls",
        handler: cluster::serve,
    },
    Builtin {
        path: "/fibers",
        about: "the fiber runtime: workers, switches, steals, fibers alive; ?list lists the live fibers",
        handler: fibers::serve,
    },
    Builtin {
        path: "/ids",
        about: "calls waiting for answers: connection, correlation id, request state, age, deadline",
        handler: ids::serve,
    },
    Builtin {
        path: "/flags",
        about: "runtime options; reloadable ones are set with ?setvalue= if the server allows it",
        handler: flags::serve,
    },
    Builtin {
        path: "/metrics",
        about: "every bvar in Prometheus text format",
        handler: metrics::serve,
    },
    Builtin {
        path: "/rpcz",
        about: "recent traced calls (flag enable_rpcz); ?trace=ID shows one trace",
        handler: rpcz::serve,
    },
    Builtin {
        path: "/hotspots",
        about: "CPU, lock-contention and heap profiles as flame graphs (/hotspots/cpu?seconds=N)",
        handler: hotspots::serve,
    },
    Builtin {
        path: "/health",
        about: "OK while the server runs",
        handler: health,
    },
    Builtin {
        path: "/version",
        about: "the fibrpc version",
        handler: version,
    },
];

/// Answers `req` if its path is a builtin page and the console is on:
/// `None` lets the path fall through to the methods (and 404) when
/// [`has_builtin_services`](crate::ServerOptions::has_builtin_services) is
/// off; a 403 answers it on the public port when the console has an
/// [`internal_port`](crate::ServerOptions::internal_port).
pub(crate) fn serve(ctx: &ServerContext, req: &Request<IOBuf>) -> Option<Response<IOBuf>> {
    let path = req.uri().path();
    let handler = if path == "/" || path == "/index" {
        (index::serve as Handler, "")
    } else {
        let page = PAGES.iter().find(|p| {
            path == p.path
                || path
                    .strip_prefix(p.path)
                    .is_some_and(|rest| rest.starts_with('/'))
        })?;
        (
            page.handler,
            path[page.path.len()..].trim_start_matches('/'),
        )
    };
    match ctx.builtin_access() {
        BuiltinAccess::Off => None,
        BuiltinAccess::Elsewhere => Some(crate::http::text(
            StatusCode::FORBIDDEN,
            "builtin services answer only on the internal port \
             (ServerOptions::internal_port), not on this one\n",
        )),
        BuiltinAccess::Here => Some((handler.0)(ctx, req, handler.1)),
    }
}

/// The navigation bar of the HTML pages.
pub(crate) fn nav_html() -> String {
    let mut s = String::from("<a class=\"brand\" href=\"/\">fibrpc</a>");
    for p in PAGES {
        s.push_str(&format!("<a href=\"{0}\">{1}</a>", p.path, &p.path[1..]));
    }
    s
}

fn health(_: &ServerContext, _: &Request<IOBuf>, _: &str) -> Response<IOBuf> {
    crate::http::text(StatusCode::OK, "OK\n")
}

fn version(_: &ServerContext, _: &Request<IOBuf>, _: &str) -> Response<IOBuf> {
    crate::http::text(
        StatusCode::OK,
        format!("fibrpc {}\n", env!("CARGO_PKG_VERSION")),
    )
}
