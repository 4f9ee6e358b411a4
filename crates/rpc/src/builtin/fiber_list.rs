//! `/fibers?list` and `/fibers/ID`: the live fibers of the process
//! (bRPC's `/bthreads`), from `fibrpc_fiber::list_fibers`: id, state
//! (not started, ready, running, suspended), name, where it was spawned
//! (which names the code it runs), its worker, and how long a suspended
//! one has waited. `?max=N` shows at most N rows (default 1000);
//! `?state=suspended` (or `running`, `ready`, `not_started`) keeps one
//! state.
//!
//! `/fibers/ID` of a suspended fiber shows its backtrace
//! (`fibrpc_fiber::fiber_backtrace`: the fiber is held still while its
//! stack is unwound from the registers it saved at its wait; see there for
//! what is guaranteed). A running, ready or not-started fiber shows why it
//! has none.

use fibrpc_fiber::{FiberId, FiberInfo};
use fibrpc_iobuf::IOBuf;
use http::{Request, Response, StatusCode};

use super::{query_param, Format, Page};

/// Rows shown unless `?max=` says otherwise.
const DEFAULT_ROWS: usize = 1000;

/// The list (`/fibers?list`).
pub(super) fn list(req: &Request<IOBuf>) -> Response<IOBuf> {
    let max = match query_param(req, "max").map(str::parse::<usize>) {
        None => DEFAULT_ROWS,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return crate::http::text(StatusCode::BAD_REQUEST, "max=N takes a number\n");
        }
    };
    let state = query_param(req, "state").map(|s| s.replace("%20", " ").replace('+', " "));
    let (fibers, total) = match &state {
        // Filtered: the cap applies after the filter.
        Some(want) => {
            let (all, total) = fibrpc_fiber::list_fibers(usize::MAX);
            let kept: Vec<FiberInfo> = all
                .into_iter()
                .filter(|f| f.state.as_str() == want)
                .take(max)
                .collect();
            (kept, total)
        }
        None => fibrpc_fiber::list_fibers(max),
    };
    let mut page = Page::new(Format::of(req), "fibers: list");
    page.line(&format!(
        "{total} fibers alive; {} shown{}",
        fibers.len(),
        state
            .as_deref()
            .map_or_else(String::new, |s| format!(" (state {s})"))
    ));
    let rows: Vec<Vec<String>> = fibers
        .iter()
        .map(|f| {
            vec![
                f.id.to_string(),
                f.state.as_str().to_string(),
                f.name.as_deref().unwrap_or("-").to_string(),
                spawned_at(f),
                f.worker.map_or_else(|| "-".to_string(), |w| w.to_string()),
                suspended_ms(f),
            ]
        })
        .collect();
    page.table(
        &[
            "id",
            "state",
            "name",
            "spawned_at",
            "worker",
            "suspended_ms",
        ],
        &rows,
        Some(&|r: &[String]| format!("/fibers/{}", r[0])),
    );
    page.finish()
}

/// One fiber (`/fibers/ID`).
pub(super) fn detail(req: &Request<IOBuf>, id: &str) -> Response<IOBuf> {
    let Ok(raw) = id.parse::<u64>() else {
        return crate::http::text(
            StatusCode::BAD_REQUEST,
            "a fiber id is a number (the id column of /fibers?list)\n",
        );
    };
    let Some(f) = fibrpc_fiber::fiber_info(FiberId::from_u64(raw)) else {
        return crate::http::text(
            StatusCode::NOT_FOUND,
            format!("no fiber {raw}: it ended, or never was\n"),
        );
    };
    let mut page = Page::new(Format::of(req), format!("fiber {raw}"));
    page.pairs(&[
        ("id", f.id.to_string()),
        ("slot, version", format!("{:?}", f.id)),
        ("state", f.state.as_str().to_string()),
        ("name", f.name.as_deref().unwrap_or("-").to_string()),
        ("spawned at", spawned_at(&f)),
        (
            "worker",
            f.worker
                .map_or_else(|| "none yet (not started)".to_string(), |w| w.to_string()),
        ),
        ("suspended for (ms)", suspended_ms(&f)),
    ]);
    page.heading("backtrace");
    match fibrpc_fiber::fiber_backtrace(f.id) {
        Ok(frames) => {
            for (i, name) in symbolize(&frames).iter().enumerate() {
                page.line(&format!("#{i:<2} {name}"));
            }
        }
        Err(why) => page.line(&format!("none: {why}")),
    }
    page.html("<p><a href=\"/fibers?list\">all fibers</a></p>\n");
    page.finish()
}

/// Function names (and file:line where the debug info says) for return
/// addresses, innermost first; inlined calls get a line each.
fn symbolize(frames: &[usize]) -> Vec<String> {
    let mut out = Vec::with_capacity(frames.len());
    for (i, &ip) in frames.iter().enumerate() {
        // A return address points after its call (the first address is
        // where the fiber stopped): look up the call.
        let at = if i == 0 { ip } else { ip.saturating_sub(1) };
        let before = out.len();
        backtrace::resolve(at as *mut std::ffi::c_void, |sym| {
            let name = sym
                .name()
                .map_or_else(|| format!("{ip:#x}"), |n| format!("{n:#}"));
            match (sym.filename(), sym.lineno()) {
                (Some(file), Some(line)) => out.push(format!("{name} ({}:{line})", file.display())),
                _ => out.push(name),
            }
        });
        if out.len() == before {
            out.push(format!("{ip:#x}"));
        }
    }
    out
}

fn spawned_at(f: &FiberInfo) -> String {
    f.spawned_at
        .map_or_else(|| "-".to_string(), |l| l.to_string())
}

fn suspended_ms(f: &FiberInfo) -> String {
    f.suspended_for
        .map_or_else(|| "-".to_string(), |d| d.as_millis().to_string())
}
