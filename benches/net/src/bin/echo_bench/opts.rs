//! Command-line options of the load generator.

use fibrpc_bench_net::cli::Args;
use std::net::SocketAddr;
use std::time::Duration;

pub const USAGE: &str = "\
usage: fibrpc-echo-bench --addr HOST:PORT [-c|--connections C (50)] [-s|--size S (64)]
         [-d|--duration SECS (10)] [--warmup SECS (2)] [--threads T (2)]
         [--server-pid PID] [--label NAME] [--connect-timeout SECS (10)] [--idle]
  Closed loop: each connection sends S bytes, waits for all S to come back,
  repeats. Latency and req/s are taken over the DURATION after WARMUP.
  A connection counts as up once the server echoed a 1-byte probe on it.
  --idle: connect C, then hold them for DURATION while sampling the
  server's RSS (no warmup).";

/// What to run, as parsed from the command line.
pub struct Opts {
    pub addr: SocketAddr,
    pub connections: usize,
    pub size: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub threads: usize,
    /// Charge this process's CPU time and report its RSS.
    pub server_pid: Option<u32>,
    /// Free-form name put in the result lines (e.g. the server's).
    pub label: String,
    pub connect_timeout: Duration,
    pub idle: bool,
}

impl Opts {
    pub fn from_env() -> Self {
        let mut args = Args::from_env(USAGE);
        let mut addr = None;
        let mut opts = Opts {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            connections: 50,
            size: 64,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            threads: 2,
            server_pid: None,
            label: String::from("-"),
            connect_timeout: Duration::from_secs(10),
            idle: false,
        };
        while let Some(flag) = args.next_flag() {
            match flag.as_str() {
                "--addr" | "-a" => addr = Some(args.value(&flag)),
                "--connections" | "-c" => opts.connections = args.value(&flag),
                "--size" | "-s" => opts.size = args.value(&flag),
                "--duration" | "-d" => opts.duration = secs(args.value(&flag)),
                "--warmup" => opts.warmup = secs(args.value(&flag)),
                "--threads" | "-t" => opts.threads = args.value(&flag),
                "--server-pid" => opts.server_pid = Some(args.value(&flag)),
                "--label" => opts.label = args.value(&flag),
                "--connect-timeout" => opts.connect_timeout = secs(args.value(&flag)),
                "--idle" => opts.idle = true,
                other => args.unknown(other),
            }
        }
        opts.addr = addr.unwrap_or_else(|| args.fail("--addr is required"));
        if opts.connections == 0 || opts.size == 0 || opts.threads == 0 {
            args.fail("connections, size and threads must be at least 1");
        }
        if opts.idle {
            opts.warmup = Duration::ZERO;
        }
        opts
    }
}

/// Seconds as given on the command line (fractions allowed: `--warmup 0.5`).
fn secs(value: f64) -> Duration {
    Duration::from_secs_f64(value.max(0.0))
}
