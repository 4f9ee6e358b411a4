//! Command-line options of the load generator.

use fibrpc_bench_net::cli::{at_least_one, parse_secs};
use std::net::SocketAddr;
use std::time::Duration;

/// What to run, as parsed from the command line.
#[derive(clap::Parser)]
#[command(
    name = "fibrpc-echo-bench",
    after_help = "Closed loop: each connection sends S bytes, waits for all S to come back, \
repeats. Latency and req/s are taken over the DURATION after WARMUP. A connection counts \
as up once the server echoed a 1-byte probe on it. --idle: connect C, then hold them for \
DURATION while sampling the server's RSS (no warmup)."
)]
pub struct Opts {
    /// The server, HOST:PORT.
    #[arg(short, long)]
    pub addr: SocketAddr,
    /// Connections.
    #[arg(short, long, default_value_t = 50, value_parser = at_least_one)]
    pub connections: usize,
    /// Bytes per message.
    #[arg(short, long, default_value_t = 64, value_parser = at_least_one)]
    pub size: usize,
    /// Seconds measured.
    #[arg(short, long, default_value = "10", value_parser = parse_secs)]
    pub duration: Duration,
    /// Seconds before measuring.
    #[arg(long, default_value = "2", value_parser = parse_secs)]
    pub warmup: Duration,
    /// Load generator threads.
    #[arg(short, long, default_value_t = 2, value_parser = at_least_one)]
    pub threads: usize,
    /// Charge this process's CPU time and report its RSS.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Free-form name put in the result lines (e.g. the server's).
    #[arg(long, default_value = "-")]
    pub label: String,
    /// Seconds to get all connections up.
    #[arg(long, default_value = "10", value_parser = parse_secs)]
    pub connect_timeout: Duration,
    /// Hold the connections idle instead of sending.
    #[arg(long)]
    pub idle: bool,
}

impl Opts {
    /// Parses the process arguments; exits with the usage on error.
    pub fn from_env() -> Self {
        let mut opts = <Opts as clap::Parser>::parse();
        if opts.idle {
            opts.warmup = Duration::ZERO;
        }
        opts
    }
}
