//! [`Span`]: what rpcz keeps of one call, and the [`Recording`] a call
//! fills while it runs.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Which side of a call a span is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// A request this process served.
    Server,
    /// A call this process made.
    Client,
}

impl SpanKind {
    /// `"server"` or `"client"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Server => "server",
            SpanKind::Client => "client",
        }
    }

    /// The names of the five timestamps of a span of this kind, in order;
    /// the first is the span's start.
    pub fn stamp_names(self) -> [&'static str; 5] {
        match self {
            SpanKind::Server => ["received", "parsed", "handler_start", "handler_end", "sent"],
            SpanKind::Client => ["start", "packed", "written", "received", "done"],
        }
    }
}

/// A stamp not reached (the call failed before it).
const UNSET: u64 = u64::MAX;

/// One traced call (bRPC's rpcz `Span`), as stored and shown by `/rpcz`.
///
/// Ids follow bRPC's: 64-bit, 0 for "none". A server span has its own id;
/// its parent is the caller's client span (the `span_id` the request
/// carried). Timestamps are nanoseconds on the process's monotonic clock:
/// [`start_ns`](Self::start_ns) places the first on the wall clock, the
/// others are offsets from it.
#[derive(Debug, Clone)]
pub struct Span {
    /// Server or client.
    pub kind: SpanKind,
    /// The protocol's name (`baidu_std`, `http`, `grpc`).
    pub protocol: &'static str,
    /// The service (`example.EchoService`; for a plain HTTP handler, the
    /// HTTP method).
    pub service: Box<str>,
    /// The method (`Echo`; for a plain HTTP handler, the path).
    pub method: Box<str>,
    /// The other side: the client (server span) or the server (client
    /// span), if known.
    pub peer: Option<SocketAddr>,
    /// The call's log id.
    pub log_id: u64,
    /// The trace this span belongs to.
    pub trace_id: u64,
    /// This span.
    pub span_id: u64,
    /// The span that caused this one; 0 for a root.
    pub parent_span_id: u64,
    /// Bytes of the request on the wire (0 if not known).
    pub request_size: u64,
    /// Bytes of the response on the wire (0 if not known).
    pub response_size: u64,
    /// The call's error code, 0 on success.
    pub error_code: i32,
    /// The first timestamp, in nanoseconds since the Unix epoch (the
    /// process's monotonic clock, aligned once with the wall clock).
    pub start_ns: u64,
    /// Offsets from `start_ns` of the other four timestamps.
    stamps: [u64; 4],
}

impl Span {
    /// The five timestamps ([`SpanKind::stamp_names`]) as offsets from
    /// the start; `None` for one the call never reached.
    pub fn stamps(&self) -> [(&'static str, Option<Duration>); 5] {
        let names = self.kind.stamp_names();
        let at = |i: usize| match i {
            0 => Some(Duration::ZERO),
            _ => (self.stamps[i - 1] != UNSET).then(|| Duration::from_nanos(self.stamps[i - 1])),
        };
        std::array::from_fn(|i| (names[i], at(i)))
    }

    /// From the first timestamp to the last one reached (`sent` or
    /// `done`).
    pub fn latency(&self) -> Duration {
        let last = self.stamps.iter().rev().find(|&&s| s != UNSET);
        Duration::from_nanos(last.copied().unwrap_or(0))
    }

    /// Whether the call failed.
    pub fn failed(&self) -> bool {
        self.error_code != 0
    }
}

/// Indices into a span's four offsets, by stage.
pub(crate) mod stage {
    pub const SERVER_PARSED: usize = 0;
    pub const SERVER_HANDLER_START: usize = 1;
    pub const SERVER_HANDLER_END: usize = 2;
    pub const SERVER_SENT: usize = 3;
    pub const CLIENT_PACKED: usize = 0;
    pub const CLIENT_WRITTEN: usize = 1;
    pub const CLIENT_RECEIVED: usize = 2;
    pub const CLIENT_DONE: usize = 3;
}

/// A span being filled by its call: the span and the instant its offsets
/// count from. Lives in the call's [`Controller`](crate::Controller).
#[derive(Debug)]
pub(crate) struct Recording {
    pub span: Span,
    base: Instant,
}

impl Recording {
    /// A span of `kind` whose first timestamp is `base`.
    pub(crate) fn new(kind: SpanKind, protocol: &'static str, base: Instant) -> Recording {
        Recording {
            span: Span {
                kind,
                protocol,
                service: Box::default(),
                method: Box::default(),
                peer: None,
                log_id: 0,
                trace_id: 0,
                span_id: 0,
                parent_span_id: 0,
                request_size: 0,
                response_size: 0,
                error_code: 0,
                start_ns: wall_ns(base),
                stamps: [UNSET; 4],
            },
            base,
        }
    }

    /// Records that the call reached `stage` now.
    pub(crate) fn mark(&mut self, stage: usize) {
        self.mark_at(stage, Instant::now());
    }

    /// Records that the call reached `stage` at `at`.
    pub(crate) fn mark_at(&mut self, stage: usize, at: Instant) {
        let ns = at.saturating_duration_since(self.base).as_nanos();
        self.span.stamps[stage] = ns.min(u128::from(UNSET - 1)) as u64;
    }
}

/// `at` in nanoseconds since the Unix epoch: the monotonic clock, aligned
/// with the wall clock once per process, so the spans of one process
/// never go back in time relative to each other.
fn wall_ns(at: Instant) -> u64 {
    static ORIGIN: OnceLock<(Instant, u64)> = OnceLock::new();
    let &(mono, wall) = ORIGIN.get_or_init(|| {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        (Instant::now(), wall)
    });
    match at.checked_duration_since(mono) {
        Some(d) => wall.saturating_add(d.as_nanos() as u64),
        None => wall.saturating_sub(mono.duration_since(at).as_nanos() as u64),
    }
}

/// A fresh, non-zero id (trace or span).
pub(crate) fn new_id() -> u64 {
    fastrand::u64(1..)
}
