//! `/hotspots`: profiles drawn as flame graphs (bRPC's `/hotspots`).
//!
//! - `/hotspots/cpu?seconds=N`: samples every thread's stack at
//!   [`CPU_HZ`] for N seconds (pprof-rs, `SIGPROF` on CPU time) and answers
//!   a flame graph SVG: the width of a frame is the share of samples it
//!   was on the stack, so wide towers are where the CPU went.
//! - `/hotspots/contention?seconds=N`: records, for N seconds, every wait
//!   of a contended fiber [`Mutex`](fibrpc_fiber::sync::Mutex) or
//!   [`RwLock`](fibrpc_fiber::sync::RwLock)
//!   ([`fibrpc_fiber::sync::contention`]), weighted by how long the
//!   waiter waited: wide towers are where fibers waited longest.
//! - `/hotspots/heap`: the live heap by allocation stack, when the
//!   program installed [`SampledAllocator`](crate::profile::SampledAllocator)
//!   (see `hotspots_heap.rs`); otherwise the page says how to.
//! - `/hotspots`: the index.
//!
//! N defaults to 10 and is clamped to 1..=60 (`seconds=0` profiles 1 s,
//! `seconds=100000` 60 s; the graph's title says which); a value that is
//! not a whole number is a 400. The request's fiber sleeps while the
//! profile runs (its worker runs other fibers). One profile runs at a time,
//! of either kind: another request meanwhile is answered 503 "a profile is
//! already running".
//!
//! A browser (`Accept: text/html`) gets a console page with the graph in
//! an `<object>` (the SVG stays interactive: click to zoom, Ctrl-F to
//! search); curl and `?format=svg` get the SVG itself
//! (`image/svg+xml`). The pages are behind the console's usual doors
//! (`has_builtin_services`, `internal_port`, the authenticator), as bRPC
//! serves them on its builtin port; they only read, so they do not need
//! `console_flags_writable`. Their cost is bounded: one profile at a
//! time, at most 60 s, sampling at [`CPU_HZ`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fibrpc_iobuf::IOBuf;
use http::{Request, Response, StatusCode};

use super::{escape, query_param, Format, Page};
use crate::http::{response, text};
use crate::server::ServerContext;

/// CPU samples a second (bRPC's `CPU_PROFILE_FREQ` is 100; a prime keeps
/// the timer out of step with periodic work).
pub(crate) const CPU_HZ: i32 = 99;
/// Profile length when `seconds` is not given.
const DEFAULT_SECONDS: u64 = 10;
/// The longest profile; longer requests are clamped to it.
const MAX_SECONDS: u64 = 60;

/// Set while a profile (of either kind) runs.
static RUNNING: AtomicBool = AtomicBool::new(false);

/// Holds [`RUNNING`] for one profile; clears it when dropped, panics
/// included.
pub(super) struct Running;

impl Running {
    pub(super) fn acquire() -> Option<Running> {
        RUNNING
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
            .then_some(Running)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.store(false, Ordering::Release);
    }
}

pub(super) fn serve(_: &ServerContext, req: &Request<IOBuf>, rest: &str) -> Response<IOBuf> {
    match rest {
        "" => index(req),
        "cpu" | "contention" => profile(req, rest),
        "heap" => super::hotspots_heap::serve(req),
        _ => text(
            StatusCode::NOT_FOUND,
            format!("no profile /hotspots/{rest}: try cpu, contention or heap\n"),
        ),
    }
}

fn index(req: &Request<IOBuf>) -> Response<IOBuf> {
    let mut page = Page::new(Format::of(req), "hotspots");
    page.line("Profiles drawn as flame graphs (SVG); one runs at a time.");
    let rows = vec![
        vec![
            "/hotspots/cpu?seconds=10".to_string(),
            format!("where the CPU goes: stacks sampled at {CPU_HZ} Hz"),
        ],
        vec![
            "/hotspots/contention?seconds=10".to_string(),
            "where fibers wait for fiber Mutex/RwLock locks, by wait time".to_string(),
        ],
        vec![
            "/hotspots/heap".to_string(),
            if crate::profile::installed() {
                "the live heap by allocation stack (sampled)".to_string()
            } else {
                "the live heap by allocation stack: needs SampledAllocator (how)".to_string()
            },
        ],
    ];
    page.table(&["profile", "what"], &rows, Some(&|r| r[0].clone()));
    page.line(&format!(
        "seconds defaults to {DEFAULT_SECONDS} and is clamped to 1..{MAX_SECONDS}; \
         add format=svg for the SVG alone."
    ));
    page.finish()
}

/// `seconds=` of the request, clamped; why not, if it is not a whole
/// number.
fn seconds(req: &Request<IOBuf>) -> Result<u64, String> {
    let Some(v) = query_param(req, "seconds") else {
        return Ok(DEFAULT_SECONDS);
    };
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "seconds={v}: want a whole number of seconds (clamped to 1..{MAX_SECONDS})\n"
        ));
    }
    // All digits: too many for a u64 is just a very long request.
    Ok(v.parse::<u64>()
        .unwrap_or(MAX_SECONDS)
        .clamp(1, MAX_SECONDS))
}

fn profile(req: &Request<IOBuf>, kind: &str) -> Response<IOBuf> {
    let secs = match seconds(req) {
        Ok(s) => s,
        Err(why) => return text(StatusCode::BAD_REQUEST, why),
    };
    let svg_only = query_param(req, "format") == Some("svg") || Format::of(req) == Format::Text;
    if !svg_only {
        return viewer(kind, secs);
    }
    let Some(_running) = Running::acquire() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "a profile is already running; try again when it ends\n",
        );
    };
    let svg = match kind {
        "cpu" => cpu_svg(secs),
        _ => contention_svg(secs),
    };
    match svg {
        Ok(svg) => response(StatusCode::OK, "image/svg+xml", svg),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the {kind} profile failed: {e}\n"),
        ),
    }
}

/// The console page around a profile: the SVG in an `<object>`, loaded
/// from this server.
fn viewer(kind: &str, secs: u64) -> Response<IOBuf> {
    let mut page = Page::new(Format::Html, format!("hotspots: {kind}"));
    let src = format!("/hotspots/{kind}?seconds={secs}&format=svg");
    page.line(&format!(
        "Profiling for {secs} s; the graph appears when it ends. Click a frame to zoom."
    ));
    page.html(&format!(
        "<p><a href=\"{0}\">the SVG alone</a></p>\n\
         <object class=\"flamegraph\" type=\"image/svg+xml\" data=\"{0}\" \
         style=\"width:100%;min-height:400px\"></object>\n",
        escape(&src)
    ));
    page.finish()
}

fn cpu_svg(secs: u64) -> Result<Vec<u8>, String> {
    // libc, libgcc and the vdso are not unwound from a signal handler:
    // their frames can lack unwind info, and unwinding while a thread is
    // inside the unwinder itself can deadlock.
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(CPU_HZ)
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()
        .map_err(|e| e.to_string())?;
    // Only this fiber waits: an interrupt just ends the profile early.
    let _ = fibrpc_fiber::sleep(Duration::from_secs(secs));
    let report = guard.report().build().map_err(|e| e.to_string())?;
    drop(guard);
    if report.data.is_empty() {
        return Ok(empty_svg(&format!(
            "CPU, {secs} s: no samples (the process used no CPU)"
        )));
    }
    let mut opts = pprof::flamegraph::Options::default();
    opts.title = format!("CPU, {secs} s at {CPU_HZ} Hz");
    opts.count_name = "samples".to_string();
    let mut svg = Vec::new();
    report
        .flamegraph_with_options(&mut svg, &mut opts)
        .map_err(|e| e.to_string())?;
    Ok(svg)
}

fn contention_svg(secs: u64) -> Result<Vec<u8>, String> {
    use fibrpc_fiber::sync::contention;
    if !contention::start() {
        return Err("a contention profile is already running".to_string());
    }
    let _ = fibrpc_fiber::sleep(Duration::from_secs(secs));
    let collapsed = contention::stop().collapsed();
    if collapsed.is_empty() {
        return Ok(empty_svg(&format!(
            "contention, {secs} s: no contended Mutex/RwLock waits"
        )));
    }
    let mut opts = inferno::flamegraph::Options::default();
    opts.title = format!("contention, {secs} s: time waited for fiber locks");
    opts.count_name = "ns".to_string();
    let mut svg = Vec::new();
    inferno::flamegraph::from_lines(&mut opts, collapsed.lines(), &mut svg)
        .map_err(|e| e.to_string())?;
    Ok(svg)
}

/// An SVG that says `msg`: what a profile with nothing in it shows (a
/// flame graph of nothing would be an error).
pub(super) fn empty_svg(msg: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" standalone=\"no\"?>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1200\" height=\"60\" \
         viewBox=\"0 0 1200 60\"><rect width=\"1200\" height=\"60\" fill=\"#eeeeee\"/>\
         <text x=\"600\" y=\"36\" text-anchor=\"middle\" font-family=\"Verdana\" \
         font-size=\"16\">{}</text></svg>\n",
        escape(msg)
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(q: &str) -> Result<u64, StatusCode> {
        let req = Request::builder()
            .uri(format!("/hotspots/cpu{q}"))
            .body(IOBuf::new())
            .unwrap();
        seconds(&req).map_err(|_| StatusCode::BAD_REQUEST)
    }

    #[test]
    fn seconds_default_and_clamped() {
        assert_eq!(secs(""), Ok(DEFAULT_SECONDS));
        assert_eq!(secs("?seconds=0"), Ok(1));
        assert_eq!(secs("?seconds=7"), Ok(7));
        assert_eq!(secs("?seconds=100000"), Ok(MAX_SECONDS));
        assert_eq!(secs("?seconds=99999999999999999999999"), Ok(MAX_SECONDS));
        assert_eq!(secs("?seconds=abc"), Err(StatusCode::BAD_REQUEST));
        assert_eq!(secs("?seconds=-1"), Err(StatusCode::BAD_REQUEST));
        assert_eq!(secs("?seconds="), Err(StatusCode::BAD_REQUEST));
    }
}
