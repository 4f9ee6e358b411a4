//! Closed-loop gRPC load generator with fibrpc's client (`GrpcChannel`)
//! for `example.EchoService/Echo`: the peer of `tonic_press`, so that
//! `benches/grpc/run.sh` compares the two clients against the same
//! (tonic) server. `--concurrency` caller fibers each send a request,
//! wait for the answer and send the next; they share `--connections`
//! channels (one HTTP/2 connection each), round-robin.
//!
//!     fibrpc_grpc_press [--server 127.0.0.1:8001] [--concurrency 1]
//!                       [--duration 10] [--warmup 2] [--request-size 64]
//!                       [--connections 1] [--threads 2] [--server-pid PID]
//!
//! Prints `[t=Ns] qps=...` every second, a summary and one
//! `RESULT {json}` line (fibrpc_press's, with `client_cpu_per_100k_s`).

use std::time::{Duration, Instant};

use fibrpc::{ChannelOptions, Controller, GrpcChannel};
use fibrpc_bench_rpc::cli::at_least_one;
use fibrpc_example::{EchoRequest, EchoServiceClient};
use fibrpc_tools::press::{Press, PressConfig};

/// The closed-loop gRPC press tool with fibrpc's client.
#[derive(clap::Parser)]
#[command(name = "fibrpc_grpc_press")]
struct Config {
    /// The server, HOST:PORT.
    #[arg(short, long, default_value = "127.0.0.1:8001")]
    server: String,
    /// Caller fibers.
    #[arg(short, long, default_value_t = 1, value_parser = at_least_one)]
    concurrency: usize,
    /// Seconds measured.
    #[arg(short, long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds before measuring.
    #[arg(short, long, default_value_t = 2.0)]
    warmup: f64,
    /// The message length.
    #[arg(short = 'b', long, default_value_t = 64)]
    request_size: usize,
    /// HTTP/2 connections the callers share.
    #[arg(short = 'k', long, default_value_t = 1, value_parser = at_least_one)]
    connections: usize,
    /// Fiber workers (sets FIBRPC_WORKERS).
    #[arg(short, long, default_value_t = 2, value_parser = at_least_one)]
    threads: usize,
    /// Charge the server its CPU time and report its RSS.
    #[arg(long)]
    server_pid: Option<u32>,
}

fn secs(v: f64, flag: &str) -> Duration {
    Duration::try_from_secs_f64(v).unwrap_or_else(|e| {
        eprintln!("error: {flag} {v}: {e}");
        std::process::exit(2);
    })
}

fn main() {
    let config = <Config as clap::Parser>::parse();
    // Read by the runtime when it starts (at the first fiber call).
    std::env::set_var("FIBRPC_WORKERS", config.threads.to_string());
    let options = ChannelOptions {
        timeout: Some(Duration::from_secs(5)),
        ..Default::default()
    };
    let channels: Vec<GrpcChannel> = (0..config.connections)
        .map(|_| {
            GrpcChannel::new(config.server.as_str(), options.clone()).unwrap_or_else(|e| {
                eprintln!("error: bad --server {}: {e}", config.server);
                std::process::exit(2);
            })
        })
        .collect();
    let press_config = PressConfig {
        warmup: secs(config.warmup, "--warmup"),
        duration: secs(config.duration, "--duration"),
        server_pids: config.server_pid.into_iter().collect(),
        extra: vec![
            ("concurrency".into(), config.concurrency.to_string()),
            ("connections".into(), config.connections.to_string()),
            ("request_size".into(), config.request_size.to_string()),
        ],
    };
    println!(
        "fibrpc_grpc_press: {} callers on {} HTTP/2 connection(s) to {}, {} B messages, {}+{} s, {} workers",
        config.concurrency,
        config.connections,
        config.server,
        config.request_size,
        config.warmup,
        config.duration,
        config.threads
    );
    let press = Press::new(config.concurrency);
    let message = "x".repeat(config.request_size);
    let callers: Vec<_> = (0..config.concurrency)
        .map(|i| {
            let client = EchoServiceClient::new(channels[i % channels.len()].clone());
            let (press, rec) = (press.clone(), press.recorder(i));
            let request = EchoRequest {
                message: message.clone(),
            };
            fibrpc::fiber::spawn(move || {
                let mut cntl = Controller::new();
                let mut reported = 0;
                while !press.stopped() {
                    cntl.reset();
                    let t = Instant::now();
                    match client.echo(&mut cntl, &request) {
                        Ok(r) if r.message.len() == request.message.len() => {
                            rec.record(t.elapsed(), press.measuring())
                        }
                        other => {
                            rec.error(press.measuring());
                            if reported < 5 {
                                reported += 1;
                                eprintln!("call failed: {:?}", other.map(|r| r.message.len()));
                            }
                            // Do not spin on a dead server.
                            let _ = fibrpc::fiber::sleep(Duration::from_millis(1));
                        }
                    }
                }
            })
        })
        .collect();
    press.run(&press_config);
    for c in callers {
        let _ = c.join();
    }
}
