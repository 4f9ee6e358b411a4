//! `/rpcz`: the spans rpcz kept (bRPC's `/rpcz`), newest first.
//!
//! - `?trace=ID` (hex): the tree of that trace, as far as this process
//!   saw it (its server and client spans);
//! - filters: `min_latency=US` (microseconds), `error_only`,
//!   `log_id=N`, `peer=IP:PORT` (the calls of one connection; `peer=IP`
//!   for every connection of a host); `max=N` rows (default 200);
//! - `?format=json` for scripts (an array of spans; with `trace`, each
//!   has its `depth` in the tree), else text or HTML as every page.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use fibrpc_iobuf::IOBuf;
use http::{Request, Response, StatusCode};
use serde_json::json;

use super::{query_param, Format, Page};
use crate::rpcz::Span;
use crate::server::ServerContext;

/// Rows listed unless `max` says.
const DEFAULT_ROWS: usize = 200;

pub(super) fn serve(_: &ServerContext, req: &Request<IOBuf>, _: &str) -> Response<IOBuf> {
    let json = query_param(req, "format") == Some("json");
    let spans = crate::rpcz::spans();
    if let Some(t) = query_param(req, "trace") {
        let Ok(trace) = u64::from_str_radix(t, 16) else {
            return crate::http::text(
                StatusCode::BAD_REQUEST,
                format!("trace={t} is not a hexadecimal id\n"),
            );
        };
        let tree = tree(&spans, trace);
        return if json {
            let rows: Vec<_> = tree
                .iter()
                .map(|(depth, s)| {
                    let mut v = span_json(s);
                    v["depth"] = json!(depth);
                    v
                })
                .collect();
            json_response(&rows)
        } else {
            trace_page(req, trace, &tree)
        };
    }
    let filter = match Filter::of(req) {
        Ok(f) => f,
        Err(e) => return crate::http::text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    // Newest first by start (the ring holds them in the order they
    // finished: a server span before its client's).
    let mut shown: Vec<&Arc<Span>> = spans.iter().filter(|s| filter.keeps(s)).collect();
    shown.sort_by_key(|s| std::cmp::Reverse(s.start_ns));
    shown.truncate(filter.max);
    if json {
        let rows: Vec<_> = shown.iter().map(|s| span_json(s)).collect();
        return json_response(&rows);
    }
    let mut page = Page::new(Format::of(req), "rpcz");
    if !crate::rpcz::enabled() {
        page.line(
            "rpcz is off: turn it on with flag enable_rpcz (/flags/enable_rpcz?setvalue=true).",
        );
    }
    page.line(&format!(
        "{} of {} spans kept (newest first). Filters: ?min_latency=US&error_only&log_id=N&max=N; \
         ?trace=ID shows one trace; ?format=json for scripts.",
        shown.len(),
        spans.len()
    ));
    let rows: Vec<Vec<String>> = shown.iter().map(|s| list_row(s)).collect();
    page.table(
        &[
            "trace",
            "span",
            "parent",
            "kind",
            "time",
            "latency_us",
            "method",
            "peer",
            "protocol",
            "request",
            "response",
            "error",
            "log_id",
        ],
        &rows,
        Some(&|r| format!("/rpcz?trace={}", r[0])),
    );
    page.finish()
}

/// What the list shows.
struct Filter {
    min_latency_us: u64,
    error_only: bool,
    log_id: Option<u64>,
    /// `ip:port`, or `ip` alone.
    peer: Option<String>,
    max: usize,
}

impl Filter {
    fn of(req: &Request<IOBuf>) -> Result<Filter, String> {
        let num = |name: &str| -> Result<Option<u64>, String> {
            query_param(req, name)
                .map(|v| v.parse().map_err(|_| format!("{name}={v} is not a number")))
                .transpose()
        };
        let error_only = query_param(req, "error_only").is_some_and(|v| v != "0" && v != "false");
        Ok(Filter {
            min_latency_us: num("min_latency")?.unwrap_or(0),
            error_only,
            log_id: num("log_id")?,
            peer: query_param(req, "peer").map(|p| {
                // `[::1]:80` arrives percent-encoded from a form or link.
                p.replace("%5B", "[")
                    .replace("%5D", "]")
                    .replace("%3A", ":")
            }),
            max: num("max")?.map_or(DEFAULT_ROWS, |n| n as usize),
        })
    }

    fn keeps(&self, s: &Span) -> bool {
        s.latency().as_micros() as u64 >= self.min_latency_us
            && (!self.error_only || s.failed())
            && self.log_id.is_none_or(|id| s.log_id == id)
            && self.peer.as_deref().is_none_or(|want| {
                s.peer.is_some_and(|p| {
                    p.to_string() == want || p.ip().to_string() == want.trim_matches(['[', ']'])
                })
            })
    }
}

/// The spans of `trace` in tree order (a parent before its children,
/// siblings by start), each with its depth. A span whose parent this
/// process did not see is a root.
fn tree(spans: &[Arc<Span>], trace: u64) -> Vec<(usize, Arc<Span>)> {
    let mut mine: Vec<&Arc<Span>> = spans.iter().filter(|s| s.trace_id == trace).collect();
    mine.sort_by_key(|s| s.start_ns);
    let ids: HashSet<u64> = mine.iter().map(|s| s.span_id).collect();
    let mut children: HashMap<u64, Vec<&Arc<Span>>> = HashMap::new();
    let mut roots = Vec::new();
    for s in &mine {
        if s.parent_span_id != 0 && s.parent_span_id != s.span_id && ids.contains(&s.parent_span_id)
        {
            children.entry(s.parent_span_id).or_default().push(s);
        } else {
            roots.push(*s);
        }
    }
    let mut out = Vec::with_capacity(mine.len());
    // Depth-first, iteratively; `seen` guards against id cycles.
    let mut seen = HashSet::new();
    let mut stack: Vec<(usize, &Arc<Span>)> = roots.into_iter().rev().map(|s| (0, s)).collect();
    while let Some((depth, s)) = stack.pop() {
        if !seen.insert(Arc::as_ptr(s)) {
            continue;
        }
        out.push((depth, Arc::clone(s)));
        if let Some(kids) = children.get(&s.span_id) {
            stack.extend(kids.iter().rev().map(|k| (depth + 1, *k)));
        }
    }
    out
}

fn trace_page(req: &Request<IOBuf>, trace: u64, tree: &[(usize, Arc<Span>)]) -> Response<IOBuf> {
    let mut page = Page::new(Format::of(req), format!("rpcz trace {trace:016x}"));
    if tree.is_empty() {
        page.line("No span of this trace is kept here.");
        return page.finish();
    }
    let t0 = tree.iter().map(|(_, s)| s.start_ns).min().unwrap_or(0);
    page.line(&format!(
        "{} spans seen by this process; times in microseconds from the first.",
        tree.len()
    ));
    let rows: Vec<Vec<String>> = tree
        .iter()
        .map(|(depth, s)| {
            let mut stamps = String::new();
            for (name, at) in s.stamps() {
                if let Some(at) = at {
                    let us = (s.start_ns - t0) as f64 / 1e3 + at.as_nanos() as f64 / 1e3;
                    let _ = write!(stamps, "{name}@{us:.1} ");
                }
            }
            vec![
                format!("{}{:016x}", "  ".repeat(*depth), s.span_id),
                format!("{:016x}", s.parent_span_id),
                s.kind.as_str().to_string(),
                name(s),
                peer(s),
                s.latency().as_micros().to_string(),
                s.error_code.to_string(),
                stamps.trim_end().to_string(),
            ]
        })
        .collect();
    page.table(
        &[
            "span",
            "parent",
            "kind",
            "method",
            "peer",
            "latency_us",
            "error",
            "timeline_us",
        ],
        &rows,
        None,
    );
    page.finish()
}

fn list_row(s: &Span) -> Vec<String> {
    vec![
        format!("{:016x}", s.trace_id),
        format!("{:016x}", s.span_id),
        format!("{:016x}", s.parent_span_id),
        s.kind.as_str().to_string(),
        time_of_day(s.start_ns),
        s.latency().as_micros().to_string(),
        name(s),
        peer(s),
        s.protocol.to_string(),
        s.request_size.to_string(),
        s.response_size.to_string(),
        s.error_code.to_string(),
        s.log_id.to_string(),
    ]
}

/// `service.method`; a plain HTTP request's `GET /path`.
fn name(s: &Span) -> String {
    if s.method.is_empty() {
        s.service.to_string()
    } else if s.method.starts_with('/') {
        format!("{} {}", s.service, s.method)
    } else {
        format!("{}.{}", s.service, s.method)
    }
}

fn peer(s: &Span) -> String {
    s.peer.map_or_else(|| "-".into(), |p| p.to_string())
}

/// `HH:MM:SS.uuuuuu` (UTC) of a time in nanoseconds since the epoch.
fn time_of_day(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let (h, m, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
    format!("{h:02}:{m:02}:{s:02}.{:06}", ns / 1000 % 1_000_000)
}

fn span_json(s: &Span) -> serde_json::Value {
    let stamps: serde_json::Map<String, serde_json::Value> = s
        .stamps()
        .iter()
        .map(|(name, at)| (name.to_string(), json!(at.map(|d| d.as_nanos() as u64))))
        .collect();
    json!({
        "kind": s.kind.as_str(),
        "protocol": s.protocol,
        "service": &*s.service,
        "method": &*s.method,
        "peer": s.peer.map(|p| p.to_string()),
        "log_id": s.log_id,
        "trace_id": format!("{:016x}", s.trace_id),
        "span_id": format!("{:016x}", s.span_id),
        "parent_span_id": format!("{:016x}", s.parent_span_id),
        "request_size": s.request_size,
        "response_size": s.response_size,
        "error_code": s.error_code,
        "start_ns": s.start_ns,
        "latency_ns": s.latency().as_nanos() as u64,
        "stamps_ns": stamps,
    })
}

fn json_response(rows: &[serde_json::Value]) -> Response<IOBuf> {
    let body = serde_json::to_string(rows).unwrap_or_else(|_| "[]".into());
    crate::http::response(StatusCode::OK, "application/json", body)
}
