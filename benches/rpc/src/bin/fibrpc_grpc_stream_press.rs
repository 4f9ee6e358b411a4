//! Streaming throughput press with fibrpc's client (`GrpcChannel`, the
//! `BidiCall` of `example.EchoService/BidiThroughput`): the peer of
//! `grpc_stream_press` (tonic's client), so that `benches/grpc/run.sh`
//! (PARTS=clients) compares the two clients on one bidirectional stream
//! against the same tonic server. One fiber sends chunks of
//! `--message-size` bytes as fast as flow control lets them, another
//! reads the echoed chunks back.
//!
//!     fibrpc_grpc_stream_press [--server 127.0.0.1:8001] [--message-size 1024]
//!                              [--duration 10] [--warmup 2] [--threads 2]
//!                              [--server-pid PID]
//!
//! Prints `[t=Ns] MB/s=... msgs/s=...` every second of the measured
//! window, then one `RESULT {json}` line with grpc_stream_press's
//! fields: `mb_per_s` (10^6 bytes of echoed payload received per
//! second), `msgs_per_s`, the totals, `client_cpu_s` (this process's
//! CPU seconds in the window) and with `--server-pid` the server's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fibrpc::{ChannelOptions, Controller, GrpcChannel};
use fibrpc_bench_rpc::cli::at_least_one;
use fibrpc_bench_rpc::fib::{EchoServiceClient, ThroughputChunk};
use fibrpc_bench_rpc::proc_stats::{self, CpuWindow};
use fibrpc_bench_rpc::stream_press::{secs, Counts};

/// How long the end of the stream may take after the window before the
/// tool stops anyway (against a hung server).
const GRACE: Duration = Duration::from_secs(5);

/// The streaming throughput press with fibrpc's client.
#[derive(clap::Parser)]
#[command(name = "fibrpc_grpc_stream_press")]
struct Config {
    /// The server, HOST:PORT.
    #[arg(short, long, default_value = "127.0.0.1:8001")]
    server: String,
    /// Bytes of payload per chunk.
    #[arg(short = 'b', long, default_value_t = 1024)]
    message_size: usize,
    /// Seconds measured.
    #[arg(short, long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds before measuring.
    #[arg(short, long, default_value_t = 2.0)]
    warmup: f64,
    /// Fiber workers (sets FIBRPC_WORKERS).
    #[arg(short, long, default_value_t = 2, value_parser = at_least_one)]
    threads: usize,
    /// Charge the server its CPU time and report its RSS.
    #[arg(long)]
    server_pid: Option<u32>,
}

fn main() {
    let config = <Config as clap::Parser>::parse();
    // Read by the runtime when it starts (at the first fiber call).
    std::env::set_var("FIBRPC_WORKERS", config.threads.to_string());
    let warmup = secs(config.warmup, "--warmup");
    let duration = secs(config.duration, "--duration");
    println!(
        "fibrpc_grpc_stream_press: one bidirectional stream to {}, {} B chunks, {}+{} s, {} workers",
        config.server, config.message_size, config.warmup, config.duration, config.threads
    );
    std::process::exit(run(&config, warmup, duration));
}

fn run(config: &Config, warmup: Duration, duration: Duration) -> i32 {
    // No deadline: the stream lasts the whole run.
    let options = ChannelOptions {
        timeout: None,
        ..Default::default()
    };
    let channel = match GrpcChannel::new(config.server.as_str(), options) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: bad --server {}: {e}", config.server);
            return 2;
        }
    };
    let client = EchoServiceClient::new(channel);
    let mut cntl = Controller::new();
    let call = match client.bidi_throughput(&mut cntl) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: the stream did not start: {e}");
            return 1;
        }
    };
    let (tx, rx) = call.split();
    let size = config.message_size;
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let sending = stop.clone();
    let send_errors = counts.clone();
    let sender = fibrpc::fiber::spawn(move || {
        let chunk = ThroughputChunk {
            data: vec![b'x'; size],
        };
        while !sending.load(Ordering::Relaxed) {
            if let Err(e) = tx.send(&chunk) {
                eprintln!("the stream failed to send: {e}");
                send_errors.errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        // The server ends its side once this one ends.
        let _ = tx.close_send();
    });
    let seen = counts.clone();
    let reader = fibrpc::fiber::spawn(move || loop {
        match rx.recv() {
            Ok(Some(c)) => {
                if c.data.len() != size {
                    seen.errors.fetch_add(1, Ordering::Relaxed);
                }
                seen.messages.fetch_add(1, Ordering::Relaxed);
                seen.bytes.fetch_add(c.data.len() as u64, Ordering::Relaxed);
            }
            Ok(None) => break,
            Err(e) => {
                eprintln!("the stream failed: {e}");
                seen.errors.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
    });
    std::thread::sleep(warmup);
    let server_cpu = config.server_pid.and_then(|p| CpuWindow::start(p).ok());
    let self_pid = std::process::id();
    let self_cpu_start = proc_stats::cpu_seconds(self_pid).unwrap_or(0.0);
    let start = Instant::now();
    let (m0, b0) = counts.snapshot();
    let mut last = (m0, b0);
    let mut next = start;
    let end = start + duration;
    loop {
        next += Duration::from_secs(1);
        std::thread::sleep(next.min(end).saturating_duration_since(Instant::now()));
        let now = counts.snapshot();
        let t = start.elapsed().as_secs_f64();
        println!(
            "[t={t:.0}s] MB/s={:.1} msgs/s={}",
            (now.1 - last.1) as f64 / 1e6,
            now.0 - last.0
        );
        last = now;
        if next >= end {
            break;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let (m1, b1) = counts.snapshot();
    let client_cpu_s = proc_stats::cpu_seconds(self_pid).unwrap_or(0.0) - self_cpu_start;
    let (messages, bytes) = (m1 - m0, b1 - b0);
    let server = server_cpu.and_then(|c| c.finish(messages).ok());
    stop.store(true, Ordering::Relaxed);
    // The sender ends the request stream; the server then ends its own.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.join();
        let _ = reader.join();
        let _ = done_tx.send(());
    });
    if done_rx.recv_timeout(GRACE).is_err() {
        eprintln!("note: the stream did not end within {GRACE:?} of the window");
    }
    let errors = counts.errors.load(Ordering::Relaxed);
    let mb_per_s = bytes as f64 / 1e6 / seconds;
    let msgs_per_s = messages as f64 / seconds;
    println!(
        "fibrpc_grpc_stream_press: {mb_per_s:.1} MB/s, {msgs_per_s:.0} msgs/s over {seconds:.1} s, \
         {errors} errors, client cpu {client_cpu_s:.2} s"
    );
    println!(
        "RESULT {{\"message_size\":{size},\"seconds\":{seconds:.3},\"messages\":{messages},\
         \"bytes\":{bytes},\"mb_per_s\":{mb_per_s:.2},\"msgs_per_s\":{msgs_per_s:.1},\
         \"errors\":{errors},\"client_cpu_s\":{client_cpu_s:.3}{}}}",
        server.map(|s| s.json_fields()).unwrap_or_default()
    );
    i32::from(errors > 0 || messages == 0)
}
