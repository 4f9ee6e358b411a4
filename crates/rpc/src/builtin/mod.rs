//! The builtin pages every server answers on its port (bRPC's builtin
//! services): plain text for curl, HTML for browsers.
//!
//! | path | page |
//! |---|---|
//! | `/` | index with links |
//! | `/status` | services, methods, counts, qps, errors, latency, in-flight |
//! | `/vars` | every bvar (`/vars/NAME`, `?series` history as JSON) |
//! | `/connections` | open connections and their traffic |
//! | `/fibers` | the fiber runtime's workers and counters |
//! | `/flags` | runtime options (`?setvalue=` for reloadable ones) |
//! | `/metrics` | Prometheus text exposition of every bvar |
//! | `/health` | `OK` |
//! | `/version` | fibrpc's version |

mod assets;
mod connections;
mod fibers;
mod flags;
mod index;
mod metrics;
mod page;
mod status;
mod vars;

use fibrpc_iobuf::IOBuf;
use http::{Request, Response, StatusCode};

use crate::server::ServerContext;
pub(crate) use page::{escape, query_param, Format, Page};

/// A builtin page: its path, a one-line description, and its handler.
pub(crate) struct Builtin {
    pub path: &'static str,
    pub about: &'static str,
    handler: fn(&ServerContext, &Request<IOBuf>, &str) -> Response<IOBuf>,
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
        about: "open connections: peers, protocol, traffic",
        handler: connections::serve,
    },
    Builtin {
        path: "/fibers",
        about: "the fiber runtime: workers, switches, steals, fibers alive",
        handler: fibers::serve,
    },
    Builtin {
        path: "/flags",
        about: "runtime options; reloadable ones are set with ?setvalue=",
        handler: flags::serve,
    },
    Builtin {
        path: "/metrics",
        about: "every bvar in Prometheus text format",
        handler: metrics::serve,
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

/// Answers `req` if its path is a builtin page.
pub(crate) fn serve(shared: &ServerContext, req: &Request<IOBuf>) -> Option<Response<IOBuf>> {
    let path = req.uri().path();
    if path == "/" || path == "/index" {
        return Some(index::serve(shared, req, ""));
    }
    let page = PAGES.iter().find(|p| {
        path == p.path
            || path
                .strip_prefix(p.path)
                .is_some_and(|rest| rest.starts_with('/'))
    })?;
    let rest = path[page.path.len()..].trim_start_matches('/');
    Some((page.handler)(shared, req, rest))
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
