//! fibrpc-bvar: metrics for fibrpc (bRPC's `bvar`).
//!
//! * Reducers updated per thread and combined on read ([`Adder`],
//!   [`Maxer`], [`Miner`], [`IntRecorder`]): an update is a thread-local
//!   lookup plus a relaxed load and store on the thread's own cell — no
//!   shared cache line, no atomic read-modify-write (see `combiner`).
//! * [`LatencyRecorder`]: count, qps, average, max and p50..p9999 over a
//!   window, from per-thread log-linear histograms (relative error ≤ 1/64).
//! * [`Window`] / [`PerSecond`]: a variable over the last N seconds, fed by
//!   a sampler thread that ticks once a second (started on first need;
//!   [`sample_now`] ticks by hand).
//! * [`MVariable`]: a family of variables told apart by label values
//!   (bRPC's `MultiDimension`), bounded in combinations; each combination
//!   is listed as `name{label="value"}` and dumped as a labeled sample.
//! * [`Status`] / [`PassiveStatus`]: values set by the user or read from a
//!   closure.
//! * [`registry`]: names (`expose`, `hide`, `list`, `describe`, `dump` with
//!   `*` wildcards), per-variable history series as JSON, and a Prometheus
//!   text-format dump. Every variable type is a cheap `Clone` handle;
//!   dropping its last clone hides its names.
//! * [`expose_process_vars`]: CPU, memory, fds and uptime from `/proc`.
//!
//! Layout: `combiner` (bRPC's AgentCombiner), one file per variable type,
//! `histogram` (bucket math), `sampler`, `series`, `registry`,
//! `prometheus`, `process`.
//!
//! ```
//! use fibrpc_bvar::{Adder, LatencyRecorder};
//!
//! let requests = Adder::new();
//! requests.expose("doc_example_requests").unwrap();
//! requests.add(1);
//! assert_eq!(requests.get_value(), 1);
//!
//! let latency = LatencyRecorder::new();
//! latency.expose("doc_example_echo").unwrap(); // doc_example_echo_latency, _qps, ...
//! latency.record(120);
//! assert_eq!(latency.count(), 1);
//! ```

mod adder;
mod combiner;
mod extremum;
mod handle;
mod histogram;
mod int_recorder;
mod latency;
mod mvariable;
mod name;
mod process;
mod prometheus;
pub mod registry;
mod sampler;
mod series;
mod status;
mod value;
mod window;

pub use adder::Adder;
pub use extremum::{Maxer, Miner};
pub use int_recorder::IntRecorder;
pub use latency::{LatencyRecorder, DEFAULT_WINDOW_SECS};
pub use mvariable::{Labeled, MVariable, DEFAULT_MAX_COMBINATIONS, MAX_LABEL_VALUE_LEN};
pub use process::expose_process_vars;
pub use registry::ExposeError;
pub use sampler::sample_now;
pub use status::{PassiveStatus, Status};
pub use value::{Value, Variable};
pub use window::{PerSecond, Rate, Window, Windowable, MAX_WINDOW_SECS};
