//! `/fibers`: the fiber runtime's workers and counters, and which workers
//! a fiber is blocking right now (`blocked_ms`: how long the fiber running
//! there has run without switching out, once past the runtime's
//! blocked-worker threshold; `incidents`: how often that happened).
//! `/fibers?list` lists the live fibers and `/fibers/ID` shows one
//! (`fiber_list.rs`).

use fibrpc_iobuf::IOBuf;
use http::{Request, Response};

use super::{query_param, Format, Page};
use crate::server::ServerContext;

pub(super) fn serve(_: &ServerContext, req: &Request<IOBuf>, rest: &str) -> Response<IOBuf> {
    if !rest.is_empty() {
        return super::fiber_list::detail(req, rest);
    }
    if query_param(req, "list").is_some() {
        return super::fiber_list::list(req);
    }
    let mut page = Page::new(Format::of(req), "fibers");
    let stats = fibrpc_fiber::stats();
    let total = stats.total();
    let timer = fibrpc_fiber::timer::stats();
    page.pairs(&[
        ("workers", stats.workers.len().to_string()),
        ("fibers alive", stats.alive().to_string()),
        ("fibers created", total.created.to_string()),
        ("switches", total.switches.to_string()),
        ("steals", total.steals.to_string()),
        ("signals", total.signals.to_string()),
        ("parks", total.parks.to_string()),
        ("idle yields", total.idle_yields.to_string()),
        ("stacks mapped", total.stacks_mapped.to_string()),
        (
            "fibers that could not start",
            total.start_failures.to_string(),
        ),
        (
            "blocked worker incidents",
            total.blocked_incidents.to_string(),
        ),
        (
            "blocking pool threads",
            fibrpc_fiber::blocking_threads().to_string(),
        ),
        ("timers scheduled", timer.scheduled.to_string()),
        ("timers added", timer.added.to_string()),
        ("timers ran", timer.ran.to_string()),
        ("timers cancelled", timer.cancelled.to_string()),
    ]);
    page.line("/fibers?list lists the live fibers; /fibers/ID shows one");
    page.html("<p><a href=\"/fibers?list\">list the live fibers</a></p>\n");
    page.heading("workers");
    let rows: Vec<Vec<String>> = stats
        .workers
        .iter()
        .enumerate()
        .map(|(i, w)| {
            vec![
                i.to_string(),
                w.switches.to_string(),
                w.steals.to_string(),
                w.signals.to_string(),
                w.parks.to_string(),
                w.created.to_string(),
                w.exited.to_string(),
                w.pinned.to_string(),
                w.blocked_ms.to_string(),
                w.blocked_incidents.to_string(),
            ]
        })
        .collect();
    page.table(
        &[
            "worker",
            "switches",
            "steals",
            "signals",
            "parks",
            "created",
            "exited",
            "pinned",
            "blocked_ms",
            "incidents",
        ],
        &rows,
        None,
    );
    page.finish()
}
