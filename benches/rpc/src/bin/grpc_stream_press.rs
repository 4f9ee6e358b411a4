//! Streaming throughput press with tonic's client: one bidirectional
//! stream (`example.EchoService/BidiThroughput`) on one HTTP/2
//! connection, chunks of `--message-size` bytes sent as fast as flow
//! control lets them while the echoed chunks are read back. The same
//! client drives `tonic_echo_server` and `fibrpc_grpc_server` in
//! `benches/grpc/run.sh` (PARTS=streaming).
//!
//!     grpc_stream_press [--server 127.0.0.1:8001] [--message-size 1024]
//!                       [--duration 10] [--warmup 2] [--threads 2]
//!                       [--server-pid PID]
//!
//! Prints `[t=Ns] MB/s=... msgs/s=...` every second of the measured
//! window, then one `RESULT {json}` line: `mb_per_s` (10^6 bytes of
//! echoed payload received per second), `msgs_per_s`, the totals,
//! `client_cpu_s` (this process's CPU seconds in the window: the client
//! comparison's figure, against `fibrpc_grpc_stream_press`), and with
//! `--server-pid` the server's CPU seconds (`server_cpu_s`, and per 100k
//! messages).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fibrpc_bench_rpc::cli::at_least_one;
use fibrpc_bench_rpc::pb::echo_service_client::EchoServiceClient;
use fibrpc_bench_rpc::pb::ThroughputChunk;
use fibrpc_bench_rpc::proc_stats::{self, CpuWindow};
use fibrpc_bench_rpc::stream_press::{secs, Counts};
use prost::bytes::Bytes;
use tokio_stream::wrappers::ReceiverStream;

/// How long the end of the stream may take after the window before the
/// tool stops anyway (against a hung server).
const GRACE: Duration = Duration::from_secs(5);

/// The streaming throughput press.
#[derive(clap::Parser)]
#[command(name = "grpc_stream_press")]
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
    /// tokio worker threads.
    #[arg(short, long, default_value_t = 2, value_parser = at_least_one)]
    threads: usize,
    /// Charge the server its CPU time and report its RSS.
    #[arg(long)]
    server_pid: Option<u32>,
}

fn main() {
    let config = <Config as clap::Parser>::parse();
    let warmup = secs(config.warmup, "--warmup");
    let duration = secs(config.duration, "--duration");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.threads)
        .enable_all()
        .build()
        .expect("building the tokio runtime");
    println!(
        "grpc_stream_press: one bidirectional stream to {}, {} B chunks, {}+{} s, {} threads",
        config.server, config.message_size, config.warmup, config.duration, config.threads
    );
    let code = runtime.block_on(run(config, warmup, duration));
    // Tasks still blocked on a hung server must not hold the exit.
    runtime.shutdown_timeout(Duration::from_millis(100));
    std::process::exit(code);
}

async fn run(config: Config, warmup: Duration, duration: Duration) -> i32 {
    let url = format!("http://{}", config.server);
    let mut client = match EchoServiceClient::connect(url).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot connect to {}: {e}", config.server);
            return 1;
        }
    };
    client = client
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX);
    let size = config.message_size;
    let chunk = ThroughputChunk {
        data: Bytes::from(vec![b'x'; size]),
    };
    let stop = Arc::new(AtomicBool::new(false));
    // A small queue: what is in flight is the HTTP/2 windows' business.
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let sending = stop.clone();
    tokio::spawn(async move {
        while !sending.load(Ordering::Relaxed) {
            if tx.send(chunk.clone()).await.is_err() {
                break;
            }
        }
    });
    let mut inbound = match client.bidi_throughput(ReceiverStream::new(rx)).await {
        Ok(r) => r.into_inner(),
        Err(e) => {
            eprintln!("error: the stream did not start: {e}");
            return 1;
        }
    };
    let counts = Arc::new(Counts::default());
    let seen = counts.clone();
    let reader = tokio::spawn(async move {
        loop {
            match inbound.message().await {
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
        }
    });
    tokio::time::sleep(warmup).await;
    let cpu = config.server_pid.and_then(|p| CpuWindow::start(p).ok());
    let self_pid = std::process::id();
    let self_cpu_start = proc_stats::cpu_seconds(self_pid).unwrap_or(0.0);
    let start = Instant::now();
    let (m0, b0) = counts.snapshot();
    let mut last = (m0, b0);
    let mut next = start;
    loop {
        next += Duration::from_secs(1);
        let end = start + duration;
        tokio::time::sleep_until(next.min(end).into()).await;
        let now = counts.snapshot();
        let t = start.elapsed().as_secs_f64();
        let span = (now.0 - last.0, now.1 - last.1);
        println!(
            "[t={t:.0}s] MB/s={:.1} msgs/s={}",
            span.1 as f64 / 1e6,
            span.0
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
    let server = cpu.and_then(|c| c.finish(messages).ok());
    stop.store(true, Ordering::Relaxed);
    // The sender ends the request stream; the server then ends its own.
    let ended = tokio::time::timeout(GRACE, reader).await.is_ok();
    if !ended {
        eprintln!("note: the stream did not end within {GRACE:?} of the window");
    }
    let errors = counts.errors.load(Ordering::Relaxed);
    let mb_per_s = bytes as f64 / 1e6 / seconds;
    let msgs_per_s = messages as f64 / seconds;
    println!(
        "grpc_stream_press: {mb_per_s:.1} MB/s, {msgs_per_s:.0} msgs/s over {seconds:.1} s, \
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
