//! rpcz: per-call tracing (bRPC's `/rpcz`).
//!
//! With flag `enable_rpcz` on, every sampled call — served or made —
//! records a [`Span`]: service and method, peer, log id, trace id, span id
//! and parent span id, request and response sizes, error code, and five
//! timestamps (server: received, parsed, handler start, handler end,
//! sent; client: start, packed, written, response received, done).
//! Finished spans go to a bounded in-memory ring that the `/rpcz` console
//! page shows (a list with filters, and the tree of one trace), and to
//! `tracing` as an event (target `fibrpc::rpcz`, level DEBUG) so a
//! subscriber can export them.
//!
//! # Ids and propagation
//!
//! Ids are bRPC's: 64-bit trace, span and parent span ids. A call carries
//! its trace id, its own span id and its parent's in baidu_std's
//! `RpcRequestMeta` (fields 4, 5 and 6, as bRPC sends them) and as a W3C
//! `traceparent` header over HTTP and gRPC (see [`traceparent`]; a
//! malformed one is ignored). A gRPC stream is one server span, its sizes
//! the bytes of all its messages each way. A server span gets an id of its own whose parent is the
//! caller's span (as W3C Trace Context does; bRPC's server span reuses
//! its caller's id instead): so fibrpc's and bRPC's `/rpcz` link each
//! other's calls either way.
//!
//! While a traced handler runs, its span is the context of its fiber
//! ([`current`]); a call the handler makes from that fiber becomes its
//! child. Fibers and threads the handler starts do not inherit it: pass
//! [`current`] along and call inside [`with_parent`].
//!
//! # Sampling and cost
//!
//! `enable_rpcz` (default off) and `rpcz_sample_rate` (the fraction of
//! calls that start a trace, default 1) are flags, settable at run time
//! with [`crate::flags::set`] or the console. A request whose caller
//! traced it, and a call made under a traced context, are always recorded
//! (when rpcz is on), so traces have no holes. `rpcz_max_spans` bounds the
//! ring (default 10000; the oldest go first). `rpcz_max_traces_per_second`
//! (default 0: no bound) caps the traces started per second, whatever the
//! sample rate, as bRPC's collector caps its samples per second
//! (`bvar_collector_expected_per_second`): under a load spike the cost of
//! tracing stays flat. The cap counts roots only, so a trace that started
//! is recorded whole.
//!
//! Off, a call pays one relaxed load and a branch (a server request: one
//! where its message is cut, one where it is processed), and a check that
//! its controller holds no span: no allocation, no clock read.

mod client;
mod collector;
mod context;
pub(crate) mod server;
mod span;
pub mod traceparent;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

pub(crate) use client::{
    done as client_done, outgoing, packed as client_packed, received as client_received,
    start as client_start, written as client_written,
};
pub use collector::{clear, spans};
pub use context::{current, with_parent, TraceContext};
pub(crate) use span::Recording;
pub use span::{Span, SpanKind};

use crate::flags::Flag;

static ENABLED: AtomicBool = AtomicBool::new(false);
/// Sampled calls per million (1_000_000: all).
static SAMPLE_PPM: AtomicU32 = AtomicU32::new(PPM);
/// Traces started per second at most (0: no cap).
static MAX_TRACES_PER_SECOND: AtomicU64 = AtomicU64::new(0);
/// The second (`fibrpc_fiber::coarse_ms() / 1000`) `STARTED` counts in.
static WINDOW: AtomicU64 = AtomicU64::new(0);
/// Traces started in the second `WINDOW`.
static STARTED: AtomicU64 = AtomicU64::new(0);
/// The ring's capacity.
pub(crate) static MAX_SPANS: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_SPANS);

const PPM: u32 = 1_000_000;
/// Default of `rpcz_max_spans`.
pub const DEFAULT_MAX_SPANS: usize = 10_000;
/// Most spans `rpcz_max_spans` may keep.
pub const MAX_MAX_SPANS: usize = 1_000_000;

/// Whether rpcz records spans (flag `enable_rpcz`): one relaxed load.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Turns rpcz on or off (flag `enable_rpcz`). Spans already kept stay.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether a call is recorded: always if its caller (or the context it
/// is made under) is traced, else at `rpcz_sample_rate`.
fn sample(upstream_traced: bool) -> bool {
    if upstream_traced {
        return true;
    }
    let ppm = SAMPLE_PPM.load(Ordering::Relaxed);
    let sampled = ppm >= PPM || (ppm > 0 && fastrand::u32(..PPM) < ppm);
    sampled && under_rate_cap()
}

/// Whether another trace may start this second (`rpcz_max_traces_per_second`).
/// Racy at a second's turn (a few traces more or fewer), which a cap for
/// cost does not mind.
fn under_rate_cap() -> bool {
    let cap = MAX_TRACES_PER_SECOND.load(Ordering::Relaxed);
    if cap == 0 {
        return true;
    }
    let second = fibrpc_fiber::coarse_ms() / 1000;
    if WINDOW.load(Ordering::Relaxed) != second {
        WINDOW.store(second, Ordering::Relaxed);
        STARTED.store(0, Ordering::Relaxed);
    }
    STARTED.fetch_add(1, Ordering::Relaxed) < cap
}

/// rpcz's flags, for the registry (`/flags`).
pub(crate) fn flags() -> [Flag; 4] {
    [
        Flag {
            name: "enable_rpcz",
            description: "record spans of sampled calls, shown by /rpcz",
            default: "false",
            get: || enabled().to_string(),
            set: Some(|v| {
                let on: bool = v
                    .trim()
                    .parse()
                    .map_err(|_| "allowed: true or false".to_string())?;
                set_enabled(on);
                Ok(())
            }),
        },
        Flag {
            name: "rpcz_sample_rate",
            description: "fraction of calls that start a trace (0..=1); calls of a traced caller are always recorded",
            default: "1",
            get: || format!("{}", f64::from(SAMPLE_PPM.load(Ordering::Relaxed)) / f64::from(PPM)),
            set: Some(|v| {
                let allowed = "allowed: a number from 0 to 1 (0.01 = one call in a hundred)";
                let r: f64 = v.trim().parse().map_err(|_| allowed.to_string())?;
                if !(0.0..=1.0).contains(&r) {
                    return Err(format!("{r} is out of range; {allowed}"));
                }
                SAMPLE_PPM.store((r * f64::from(PPM)).round() as u32, Ordering::Relaxed);
                Ok(())
            }),
        },
        Flag {
            name: "rpcz_max_spans",
            description: "spans /rpcz keeps in memory (the oldest are dropped)",
            default: "10000",
            get: || MAX_SPANS.load(Ordering::Relaxed).to_string(),
            set: Some(|v| {
                let allowed = || format!("allowed: 1..={MAX_MAX_SPANS}");
                let n: usize = v.trim().parse().map_err(|_| allowed())?;
                if !(1..=MAX_MAX_SPANS).contains(&n) {
                    return Err(format!("{n} is out of range; {}", allowed()));
                }
                MAX_SPANS.store(n, Ordering::Relaxed);
                collector::trim(n);
                Ok(())
            }),
        },
        Flag {
            name: "rpcz_max_traces_per_second",
            description: "traces started per second at most, whatever the sample rate (0: no cap); calls of a traced caller are always recorded",
            default: "0",
            get: || MAX_TRACES_PER_SECOND.load(Ordering::Relaxed).to_string(),
            set: Some(|v| {
                let n: u64 = v
                    .trim()
                    .parse()
                    .map_err(|_| "allowed: a count of traces per second, 0 for no cap".to_string())?;
                MAX_TRACES_PER_SECOND.store(n, Ordering::Relaxed);
                Ok(())
            }),
        },
    ]
}
