//! bRPC's `example/streaming_echo_c++` client: opens a stream with a call
//! to `example.EchoService.Echo`, then writes two messages on it every
//! second until Ctrl-C (or `--count` rounds), and closes it. Works
//! against fibrpc's `streaming_echo_server` and against bRPC's.
//!
//! ```text
//! cargo run --release -p fibrpc --example streaming_echo_client -- --server 127.0.0.1:8001
//! ```
//!
//! Flags: `--server ADDR` (default 127.0.0.1:8001), `--timeout-ms N`
//! (the opening call's timeout, default 100 as bRPC's example),
//! `--interval-ms N` (between rounds, default 1000), `--count N` (rounds;
//! 0 = until Ctrl-C, the default), `--connection-type single|pooled`.

#[path = "common/logging.rs"]
mod logging;
#[path = "common/stop.rs"]
mod stop;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fibrpc::protocol::streaming::{Stream, StreamInput, StreamOptions};
use fibrpc::{Channel, ChannelOptions, Controller, IOBuf};
use fibrpc_example::{EchoRequest, EchoServiceClient};

/// bRPC's streaming echo client.
#[derive(clap::Parser)]
#[command(name = "streaming_echo_client")]
struct Flags {
    /// The server, host:port.
    #[arg(long, default_value = "127.0.0.1:8001")]
    server: String,
    /// The opening call's timeout (bRPC's example: 100 ms).
    #[arg(long, default_value_t = 100)]
    timeout_ms: u64,
    /// Milliseconds between rounds.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Rounds to write (0: until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    count: u64,
    /// single or pooled.
    #[arg(long)]
    connection_type: Option<fibrpc::ConnectionType>,
}

fn main() {
    logging::init();
    let flags = <Flags as clap::Parser>::parse();
    let (server, count) = (flags.server, flags.count);
    let interval = Duration::from_millis(flags.interval_ms);
    let mut options = ChannelOptions {
        timeout: Some(Duration::from_millis(flags.timeout_ms)),
        ..Default::default()
    };
    if let Some(t) = flags.connection_type {
        options.connection_type = t;
    }
    let channel = Channel::new(server.as_str(), options).unwrap_or_else(|e| {
        eprintln!("streaming_echo_client: bad server {server}: {e}");
        std::process::exit(1);
    });
    let client = EchoServiceClient::new(channel);
    let mut cntl = Controller::new();
    // As bRPC's example (`StreamCreate(&stream, cntl, NULL)`): no
    // handler, so the server is told not to write.
    let stream = Stream::create(
        &mut cntl,
        StreamOptions {
            input: StreamInput::Discard,
            ..Default::default()
        },
    );
    let request = EchoRequest {
        message: "I'm a RPC to connect stream".into(),
    };
    if let Err(e) = client.echo(&mut cntl, &request) {
        eprintln!("streaming_echo_client: Fail to connect stream, {e}");
        std::process::exit(1);
    }
    let quit = Arc::new(AtomicBool::new(false));
    let q = quit.clone();
    std::thread::spawn(move || {
        fibrpc::fiber::block_on(stop::signal_or_after(None));
        q.store(true, Ordering::SeqCst);
    });
    let mut rounds = 0u64;
    while !quit.load(Ordering::SeqCst) && (count == 0 || rounds < count) {
        for msg in ["abcdefghijklmnopqrstuvwxyz", "0123456789"] {
            if let Err(e) = stream.write(IOBuf::from(msg)) {
                eprintln!("streaming_echo_client: write failed: {e}");
                std::process::exit(1);
            }
        }
        rounds += 1;
        if count == 0 || rounds < count {
            std::thread::sleep(interval);
        }
    }
    stream.close();
    println!("EchoClient is going to quit");
}
