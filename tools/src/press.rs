//! What every closed-loop press tool needs: per-caller latency histograms,
//! a once-a-second report, and the final `RESULT {...}` line that the
//! benchmark scripts parse. Used by `fibrpc_press` and the peers' press
//! tools, so both sides are measured and printed the same way.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::proc_stats::{CpuWindow, ServerStats};

/// Latencies are recorded in microseconds, up to 60 s, 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// One caller's recorder. Uncontended: only the reporter thread takes the
/// lock besides its caller, once a second.
pub struct Recorder {
    inner: Mutex<(Histogram<u64>, Histogram<u64>)>,
    errors: AtomicU64,
}

impl Recorder {
    /// Records one successful call that took `d`, if measuring has begun.
    pub fn record(&self, d: Duration, measuring: bool) {
        if !measuring {
            return;
        }
        let us = (d.as_micros() as u64).clamp(1, 60_000_000);
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let _ = g.0.record(us);
        let _ = g.1.record(us);
    }

    /// Counts one failed call.
    pub fn error(&self, measuring: bool) {
        if measuring {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The shared state of a press run: the recorders, the phase, the report.
pub struct Press {
    recorders: Vec<Arc<Recorder>>,
    measuring: AtomicBool,
    stop: AtomicBool,
}

/// How a press run is shaped.
#[derive(Debug, Clone)]
pub struct PressConfig {
    /// Seconds before measuring starts.
    pub warmup: Duration,
    /// Seconds measured.
    pub duration: Duration,
    /// The server processes' pids, to charge them CPU time and read their
    /// RSS (summed over all of them: a call's cost when the calls are
    /// spread over several server processes).
    pub server_pids: Vec<u32>,
    /// Extra `"key":value` pairs for the RESULT line (e.g. the concurrency).
    pub extra: Vec<(String, String)>,
}

impl Press {
    /// State for `callers` callers.
    pub fn new(callers: usize) -> Arc<Press> {
        Arc::new(Press {
            recorders: (0..callers)
                .map(|_| {
                    Arc::new(Recorder {
                        inner: Mutex::new((histogram(), histogram())),
                        errors: AtomicU64::new(0),
                    })
                })
                .collect(),
            measuring: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        })
    }

    /// Caller `i`'s recorder.
    pub fn recorder(&self, i: usize) -> Arc<Recorder> {
        self.recorders[i].clone()
    }

    /// Whether calls finishing now count.
    pub fn measuring(&self) -> bool {
        self.measuring.load(Ordering::Relaxed)
    }

    /// Whether callers should stop.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Runs the clock on the calling thread: warm-up, then the measured
    /// window with a line per second, then tells the callers to stop and
    /// prints the summary and the RESULT line. Returns the merged histogram.
    pub fn run(&self, config: &PressConfig) -> Histogram<u64> {
        std::thread::sleep(config.warmup);
        let cpu: Option<Vec<CpuWindow>> = config
            .server_pids
            .iter()
            .map(|&pid| CpuWindow::start(pid).ok())
            .collect::<Option<_>>()
            .filter(|w: &Vec<_>| !w.is_empty());
        let own = CpuWindow::start(std::process::id()).ok();
        self.measuring.store(true, Ordering::Relaxed);
        let start = Instant::now();
        let mut second = 0u64;
        while start.elapsed() < config.duration {
            second += 1;
            let next = start + Duration::from_secs(second);
            std::thread::sleep(
                next.saturating_duration_since(Instant::now())
                    .min(config.duration),
            );
            let mut interval = histogram();
            for r in &self.recorders {
                let mut g = r.inner.lock().unwrap_or_else(|e| e.into_inner());
                let _ = interval.add(&g.0);
                g.0.reset();
            }
            println!(
                "[t={second}s] qps={} p50_us={} p99_us={}",
                interval.len(),
                interval.value_at_quantile(0.5),
                interval.value_at_quantile(0.99)
            );
        }
        self.measuring.store(false, Ordering::Relaxed);
        let elapsed = start.elapsed().as_secs_f64();
        let mut total = histogram();
        let mut errors = 0;
        for r in &self.recorders {
            let g = r.inner.lock().unwrap_or_else(|e| e.into_inner());
            let _ = total.add(&g.1);
            errors += r.errors.load(Ordering::Relaxed);
        }
        let server = cpu.and_then(|windows| {
            let stats: Option<Vec<_>> =
                windows.iter().map(|w| w.finish(total.len()).ok()).collect();
            stats.map(|s| ServerStats::sum(&s))
        });
        let client = own.and_then(|w| w.finish(total.len()).ok());
        self.stop.store(true, Ordering::Relaxed);
        print_result(&total, errors, elapsed, server, client, &config.extra);
        total
    }
}

fn print_result(
    h: &Histogram<u64>,
    errors: u64,
    elapsed: f64,
    server: Option<ServerStats>,
    client: Option<ServerStats>,
    extra: &[(String, String)],
) {
    let qps = h.len() as f64 / elapsed;
    println!(
        "summary: {} calls in {elapsed:.1}s = {qps:.0} qps, {errors} errors; latency p50={}us p99={}us p99.9={}us max={}us",
        h.len(),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max()
    );
    let mut json = format!(
        "{{\"qps\":{qps:.1},\"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\"calls\":{},\"errors\":{errors},\"duration_s\":{elapsed:.3}",
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.len()
    );
    if let Some(s) = server {
        json += &s.json_fields();
    }
    if let Some(c) = client {
        json += &format!(",\"client_cpu_per_100k_s\":{:.3}", c.cpu_per_100k_s);
    }
    for (k, v) in extra {
        json += &format!(",\"{k}\":{v}");
    }
    json.push('}');
    println!("RESULT {json}");
}

/// The value of `"key":` in a flat JSON object (a `RESULT` line), as text.
///
/// # Panics
/// If `key` is missing.
pub fn json_field<'a>(json: &'a str, key: &str) -> &'a str {
    let start = json
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("no {key} in {json}"))
        + key.len()
        + 3;
    let rest = &json[start..];
    &rest[..rest.find([',', '}']).unwrap_or(rest.len())]
}
