//! Streaming RPC throughput against the same transfer made of unary
//! calls, fibrpc to fibrpc.
//!
//! `stream_press --serve --port 8300` serves `example.EchoService.Echo`:
//! a request with `message = "stream"` opens a stream whose messages are
//! counted and dropped; any other request is answered at once (its
//! attachment is the payload of a unary transfer).
//!
//! `stream_press --server 127.0.0.1:8300 --size 1024 --duration 5`
//! transfers `size`-byte messages for `duration` seconds twice: as
//! messages of one stream (one writer, window `--max-buf-size`), then as
//! unary calls carrying them as attachments (`--concurrency` callers on
//! one connection). It prints one line per transfer and a
//! `RESULT {json}` line with MB/s, messages/s and the stream/unary
//! ratios.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fibrpc::protocol::streaming::{Stream, StreamInputHandler, StreamOptions};
use fibrpc::{Channel, ChannelOptions, Controller, IOBuf, RpcError, Server, ServerOptions};
use fibrpc_example::{
    EchoRequest, EchoResponse, EchoService, EchoServiceClient, EchoServiceServer,
};
use fibrpc_tools::cli::announce_listening;

/// Stream throughput against unary calls carrying the same bytes.
#[derive(clap::Parser)]
#[command(name = "stream_press")]
struct Flags {
    /// Serve instead of pressing.
    #[arg(long)]
    serve: bool,
    /// With --serve: the port.
    #[arg(long, default_value_t = 8300)]
    port: u16,
    /// The server to press.
    #[arg(long, default_value = "127.0.0.1:8300")]
    server: String,
    /// Bytes per message.
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Seconds per transfer.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Unary callers on the one connection.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// The stream's window (max_buf_size), bytes.
    #[arg(long, default_value_t = 2 << 20)]
    max_buf_size: usize,
}

/// Counts and drops what a stream receives.
struct Sink;

impl StreamInputHandler for Sink {
    fn on_received_messages(&self, _: &Stream, _: &mut [IOBuf]) {}
}

struct Press;

impl EchoService for Press {
    fn echo(&self, cntl: &mut Controller, r: EchoRequest) -> Result<EchoResponse, RpcError> {
        if r.message == "stream" {
            let max_buf_size = cntl.request_attachment().len();
            Stream::accept(
                cntl,
                StreamOptions {
                    max_buf_size: max_buf_size.max(1),
                    ..StreamOptions::with_handler(Arc::new(Sink))
                },
            )?;
        }
        Ok(EchoResponse::default())
    }
}

fn serve(port: u16) {
    let mut server = Server::new(ServerOptions::default());
    server.add_service(EchoServiceServer::new(Press)).unwrap();
    if let Err(e) = server.start(("127.0.0.1", port)) {
        eprintln!("stream_press: cannot listen on {port}: {e}");
        std::process::exit(1);
    }
    announce_listening(server.listen_addr().unwrap());
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Bytes and messages per second of one transfer.
struct Rate {
    mb_s: f64,
    msg_s: f64,
}

fn stream_transfer(client: &EchoServiceClient, size: usize, secs: f64, window: usize) -> Rate {
    let mut cntl = Controller::new();
    // The server's window travels as the attachment's length.
    cntl.request_attachment_mut().append(&vec![0u8; window]);
    let stream = Stream::create(
        &mut cntl,
        StreamOptions {
            max_buf_size: window,
            ..Default::default()
        },
    );
    client
        .echo(
            &mut cntl,
            &EchoRequest {
                message: "stream".into(),
            },
        )
        .unwrap_or_else(|e| {
            eprintln!("stream_press: cannot open a stream: {e}");
            std::process::exit(1)
        });
    let msg = IOBuf::from(vec![b'x'; size]);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut sent = 0u64;
    while Instant::now() < end {
        for _ in 0..64 {
            stream.write(msg.clone()).expect("stream write");
            sent += 1;
        }
    }
    // Counted once the receiver consumed everything.
    let produced = stream.stats().produced;
    while stream.stats().remote_consumed < produced && start.elapsed().as_secs_f64() < secs * 4.0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let took = start.elapsed().as_secs_f64();
    stream.close();
    Rate {
        mb_s: (sent * size as u64) as f64 / took / 1e6,
        msg_s: sent as f64 / took,
    }
}

fn unary_transfer(client: &EchoServiceClient, size: usize, secs: f64, concurrency: usize) -> Rate {
    let calls = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let payload = IOBuf::from(vec![b'x'; size]);
    let start = Instant::now();
    let fibers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, calls, stop, payload) =
                (client.clone(), calls.clone(), stop.clone(), payload.clone());
            fibrpc::fiber::spawn(move || {
                let request = EchoRequest {
                    message: "unary".into(),
                };
                while !stop.load(Ordering::Relaxed) {
                    let mut cntl = Controller::new();
                    *cntl.request_attachment_mut() = payload.clone();
                    if client.echo(&mut cntl, &request).is_ok() {
                        calls.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for f in fibers {
        let _ = f.join();
    }
    let took = start.elapsed().as_secs_f64();
    let n = calls.load(Ordering::Relaxed);
    Rate {
        mb_s: (n * size as u64) as f64 / took / 1e6,
        msg_s: n as f64 / took,
    }
}

fn main() {
    let f = <Flags as clap::Parser>::parse();
    let (serve_mode, port, server) = (f.serve, f.port, f.server);
    let (size, secs, concurrency, window) = (f.size, f.duration, f.concurrency, f.max_buf_size);
    if serve_mode {
        serve(port);
    }
    let channel = Channel::new(
        server.as_str(),
        ChannelOptions {
            timeout: Some(Duration::from_secs(10)),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| {
        eprintln!("stream_press: bad --server {server}: {e}");
        std::process::exit(2)
    });
    let client = EchoServiceClient::new(channel);
    let s = stream_transfer(&client, size, secs, window);
    println!(
        "stream  size={size}: {:.1} MB/s, {:.0} msg/s",
        s.mb_s, s.msg_s
    );
    let u = unary_transfer(&client, size, secs, concurrency);
    println!(
        "unary   size={size}: {:.1} MB/s, {:.0} msg/s (concurrency {concurrency})",
        u.mb_s, u.msg_s
    );
    println!(
        "RESULT {{\"size\":{size},\"stream_mb_s\":{:.2},\"stream_msg_s\":{:.0},\"unary_mb_s\":{:.2},\"unary_msg_s\":{:.0},\"ratio\":{:.2}}}",
        s.mb_s,
        s.msg_s,
        u.mb_s,
        u.msg_s,
        s.mb_s / u.mb_s.max(1e-9)
    );
}
