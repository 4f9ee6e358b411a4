//! Closed-loop gRPC load generator for `example.EchoService/Echo` (tonic
//! client, tokio): `--concurrency` callers each send a request, wait for the
//! answer, and send the next, for `--warmup` + `--duration` seconds. The
//! callers share one tonic `Channel`, i.e. one multiplexed HTTP/2
//! connection (the analog of fibrpc's single multiplexed baidu_std
//! connection), or are spread round-robin over `--connections` channels.
//!
//!     tonic_press [--server 127.0.0.1:8001] [--concurrency 1] [--duration 10]
//!                 [--warmup 2] [--request-size 64] [--connections 1]
//!                 [--threads 2] [--server-pid PID]
//!                 [--tls-ca ca.pem [--tls-server-name NAME]] [--short]
//!
//! Prints `[t=Ns] qps=... p50_us=... p99_us=...` every second, a summary,
//! and one `RESULT {json}` line (see README.md for the fields). Latencies of
//! calls started in the measured window go into per-caller hdrhistograms
//! merged at the end. The run is bounded: callers stop issuing at the end of
//! the window, and a call still pending 5 s after it is abandoned.
//!
//! `--tls-ca` speaks TLS (tonic's rustls, ring provider), trusting that CA.
//! `--short` makes every call on a connection of its own (connect, TLS
//! and HTTP/2 handshakes, one call, close), the peer of fibrpc_press's
//! `--connection-type short`: with TLS it measures handshakes per second.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fibrpc_bench_rpc::cli::at_least_one;
use fibrpc_bench_rpc::pb::echo_service_client::EchoServiceClient;
use fibrpc_bench_rpc::pb::EchoRequest;
use fibrpc_bench_rpc::proc_stats::{self, CpuWindow};
use hdrhistogram::Histogram;
use tokio::time::Instant;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::Status;

/// How long a call may still be pending after the window before the caller
/// gives up on it (so the tool always stops, even against a hung server).
const GRACE: Duration = Duration::from_secs(5);

/// The closed-loop gRPC press tool, the peer of fibrpc_press.
#[derive(clap::Parser)]
#[command(name = "tonic_press")]
struct Config {
    /// The server, HOST:PORT.
    #[arg(short, long, default_value = "127.0.0.1:8001")]
    server: String,
    /// Callers.
    #[arg(short, long, default_value_t = 1, value_parser = at_least_one)]
    concurrency: usize,
    /// Seconds measured (> 0).
    #[arg(short, long, default_value_t = 10.0, value_parser = positive)]
    duration: f64,
    /// Seconds before measuring (>= 0).
    #[arg(short, long, default_value_t = 2.0, value_parser = non_negative)]
    warmup: f64,
    /// The message length.
    #[arg(short = 'b', long, default_value_t = 64)]
    request_size: usize,
    /// HTTP/2 connections the callers share.
    #[arg(short = 'k', long, default_value_t = 1, value_parser = at_least_one)]
    connections: usize,
    /// tokio worker threads.
    #[arg(short, long, default_value_t = 2, value_parser = at_least_one)]
    threads: usize,
    /// Charge the server its CPU time and report its RSS.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Speak TLS, trusting this PEM CA certificate.
    #[arg(long)]
    tls_ca: Option<std::path::PathBuf>,
    /// Verify the server's certificate against NAME, not the --server host.
    #[arg(long, requires = "tls_ca")]
    tls_server_name: Option<String>,
    /// Each call on a new connection of its own (closed after the call).
    #[arg(long)]
    short: bool,
}

fn positive(s: &str) -> Result<f64, String> {
    let x: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if x > 0.0 && x.is_finite() {
        Ok(x)
    } else {
        Err("must be > 0".into())
    }
}

fn non_negative(s: &str) -> Result<f64, String> {
    let x: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if x >= 0.0 && x.is_finite() {
        Ok(x)
    } else {
        Err("must be >= 0".into())
    }
}

/// A latency histogram in nanoseconds, 1 ns to 60 s, 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds")
}

/// What one caller measured in the window.
struct CallerStats {
    /// Latencies of the successful calls started in the measured window.
    total: Histogram<u64>,
    /// Errors of calls started in the measured window.
    errors: u64,
}

/// Shared with the per-second reporter: each caller's latencies since the
/// last report (warm-up included), and its errors.
struct Live {
    interval: Vec<Mutex<Histogram<u64>>>,
    errors: AtomicU64,
    /// Set once the measured window is over; the reporter stops.
    done: AtomicBool,
}

/// Where a caller's calls go.
#[derive(Clone)]
enum Target {
    /// A connection made once and shared.
    Shared(Channel),
    /// A new connection per call (`--short`).
    Short(Box<Endpoint>),
}

impl Target {
    /// The channel for the next call: the shared one, or a new connection.
    async fn channel(&self) -> Result<Channel, Status> {
        match self {
            Target::Shared(channel) => Ok(channel.clone()),
            Target::Short(endpoint) => endpoint
                .connect()
                .await
                .map_err(|e| Status::unavailable(format!("connect: {e:?}"))),
        }
    }
}

/// One closed-loop caller: call after call until `end`, recording the
/// calls that start at or after `measure_from`.
async fn caller(
    id: usize,
    target: Target,
    message: Arc<str>,
    measure_from: Instant,
    end: Instant,
    live: Arc<Live>,
) -> CallerStats {
    let mut stats = CallerStats {
        total: histogram(),
        errors: 0,
    };
    let calls = async {
        loop {
            let start = Instant::now();
            if start >= end {
                break;
            }
            let request = EchoRequest {
                message: String::from(&*message),
            };
            let result = match target.channel().await {
                Ok(channel) => EchoServiceClient::new(channel).echo(request).await,
                Err(status) => Err(status),
            };
            let nanos = start.elapsed().as_nanos().min(u64::MAX as u128) as u64;
            let measured = start >= measure_from;
            match result {
                Ok(response) if response.get_ref().message.len() == message.len() => {
                    if measured {
                        stats.total.saturating_record(nanos.max(1));
                    }
                    live.interval[id]
                        .lock()
                        .expect("interval histogram")
                        .saturating_record(nanos.max(1));
                }
                other => {
                    if measured {
                        stats.errors += 1;
                    }
                    if live.errors.fetch_add(1, Ordering::Relaxed) < 5 {
                        match other {
                            Err(status) => eprintln!("call failed: {status}"),
                            Ok(_) => eprintln!("call failed: echo of the wrong size"),
                        }
                    }
                    // Don't spin against a server that is gone.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    };
    let _ = tokio::time::timeout_at(end + GRACE, calls).await;
    stats
}

/// Prints one `[t=Ns] ...` line a second, from the callers' interval
/// histograms, until `live.done`.
async fn reporter(start: Instant, warmup: f64, live: Arc<Live>) {
    let mut merged = histogram();
    let mut last_errors = 0;
    for second in 1u64.. {
        tokio::time::sleep_until(start + Duration::from_secs(second)).await;
        if live.done.load(Ordering::Relaxed) {
            break;
        }
        merged.reset();
        for h in &live.interval {
            let mut h = h.lock().expect("interval histogram");
            merged.add(&*h).expect("same bounds");
            h.reset();
        }
        let errors = live.errors.load(Ordering::Relaxed);
        let phase = if second as f64 <= warmup {
            " (warmup)"
        } else {
            ""
        };
        println!(
            "[t={second}s] qps={} p50_us={:.1} p99_us={:.1} errors={}{phase}",
            merged.len(),
            merged.value_at_quantile(0.50) as f64 / 1e3,
            merged.value_at_quantile(0.99) as f64 / 1e3,
            errors - last_errors,
        );
        last_errors = errors;
    }
}

fn main() {
    let config = <Config as clap::Parser>::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.threads)
        .enable_all()
        .build()
        .expect("building the tokio runtime");
    let code = runtime.block_on(run(config));
    // Abandoned calls (a hung server) must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_millis(100));
    std::process::exit(code);
}

async fn run(config: Config) -> i32 {
    let scheme = if config.tls_ca.is_some() {
        "https"
    } else {
        "http"
    };
    let uri = format!("{scheme}://{}", config.server);
    let mut endpoint = match Endpoint::from_shared(uri.clone()) {
        Ok(e) => e.tcp_nodelay(true).connect_timeout(Duration::from_secs(5)),
        Err(e) => {
            eprintln!("error: bad --server {:?}: {e}", config.server);
            return 2;
        }
    };
    if let Some(ca) = &config.tls_ca {
        let pem = match std::fs::read(ca) {
            Ok(pem) => pem,
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", ca.display());
                return 2;
            }
        };
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem));
        if let Some(name) = &config.tls_server_name {
            tls = tls.domain_name(name.clone());
        }
        endpoint = match endpoint.tls_config(tls) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("error: bad TLS configuration: {e}");
                return 2;
            }
        };
    }
    let mut targets = Vec::with_capacity(config.connections);
    if config.short {
        targets.push(Target::Short(Box::new(endpoint)));
    } else {
        for _ in 0..config.connections {
            match endpoint.connect().await {
                Ok(channel) => targets.push(Target::Shared(channel)),
                Err(e) => {
                    eprintln!("error: cannot connect to {uri}: {e:?}");
                    return 1;
                }
            }
        }
    }
    let message: Arc<str> = "x".repeat(config.request_size).into();
    let live = Arc::new(Live {
        interval: (0..config.concurrency)
            .map(|_| Mutex::new(histogram()))
            .collect(),
        errors: AtomicU64::new(0),
        done: AtomicBool::new(false),
    });
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(config.warmup);
    let end = measure_from + Duration::from_secs_f64(config.duration);
    println!(
        "tonic_press: {} callers on {}{} to {}, {} B messages, {}+{} s, {} threads",
        config.concurrency,
        if config.short {
            "a new HTTP/2 connection per call".to_string()
        } else {
            format!("{} HTTP/2 connection(s)", config.connections)
        },
        if config.tls_ca.is_some() {
            " over TLS"
        } else {
            ""
        },
        config.server,
        config.request_size,
        config.warmup,
        config.duration,
        config.threads
    );
    let callers: Vec<_> = (0..config.concurrency)
        .map(|id| {
            tokio::spawn(caller(
                id,
                targets[id % targets.len()].clone(),
                message.clone(),
                measure_from,
                end,
                live.clone(),
            ))
        })
        .collect();
    let report = tokio::spawn(reporter(start, config.warmup, live.clone()));

    // The measured window: the server's CPU time from its start to the
    // last caller's return (which is at most one call after `end`).
    tokio::time::sleep_until(measure_from).await;
    let server_window = config.server_pid.map(|pid| {
        CpuWindow::start(pid).unwrap_or_else(|e| {
            eprintln!("error: cannot read /proc/{pid}: {e}");
            std::process::exit(1);
        })
    });
    let self_pid = std::process::id();
    let self_cpu_start = proc_stats::cpu_seconds(self_pid).unwrap_or(0.0);
    let busy_start = proc_stats::machine_busy_seconds().unwrap_or(0.0);

    let mut total = histogram();
    let mut errors = 0;
    for handle in callers {
        let stats = handle.await.expect("caller task");
        total.add(&stats.total).expect("same bounds");
        errors += stats.errors;
    }
    let window_s = measure_from.elapsed().as_secs_f64();
    let client_cpu_s = proc_stats::cpu_seconds(self_pid).unwrap_or(0.0) - self_cpu_start;
    let busy_s = proc_stats::machine_busy_seconds().unwrap_or(0.0) - busy_start;
    live.done.store(true, Ordering::Relaxed);
    report.abort();
    let _ = report.await; // no `[t=...]` line after the summary

    let calls = total.len();
    let qps = calls as f64 / window_s;
    let us = |q: f64| total.value_at_quantile(q) as f64 / 1e3;
    let (p50, p99, p999) = (us(0.5), us(0.99), us(0.999));
    println!(
        "summary: {calls} calls, {errors} errors in {window_s:.2} s: qps={qps:.0} \
         p50_us={p50:.1} p99_us={p99:.1} p999_us={p999:.1} max_us={:.1} mean_us={:.1}; \
         press cpu {client_cpu_s:.2} s",
        total.max() as f64 / 1e3,
        total.mean() / 1e3,
    );
    let mut json = format!(
        "{{\"qps\":{qps:.1},\"p50_us\":{p50:.1},\"p99_us\":{p99:.1},\"p999_us\":{p999:.1},\
         \"calls\":{calls},\"errors\":{errors},\"duration_s\":{window_s:.3},\
         \"concurrency\":{},\"connections\":{},\"request_size\":{},\"client_cpu_s\":{client_cpu_s:.3}",
        config.concurrency, config.connections, config.request_size
    );
    let mut others_s = busy_s - client_cpu_s;
    if let (Some(window), Some(pid)) = (server_window, config.server_pid) {
        match window.finish(calls) {
            Ok(stats) => {
                others_s -= stats.cpu_s;
                println!(
                    "server {pid}: cpu {:.2} s, {:.3} s per 100k calls, rss {} KiB",
                    stats.cpu_s, stats.cpu_per_100k_s, stats.rss_kb
                );
                json.push_str(&stats.json_fields());
            }
            Err(e) => {
                eprintln!("error: cannot read /proc/{pid} at the end: {e}");
                return 1;
            }
        }
    }
    // CPU neither this tool nor the server used (without --server-pid the
    // server is counted in it), in cores: well above 0 means a neighbour
    // took CPU during the run and the numbers are suspect.
    let other_load_cores = (others_s / window_s).max(0.0);
    println!("other load during the window: {other_load_cores:.2} cores");
    json.push_str(&format!(",\"other_load_cores\":{other_load_cores:.2}"));
    json.push('}');
    println!("RESULT {json}");
    0
}
