//! bRPC's `example/streaming_echo_c++` server: `example.EchoService.Echo`
//! accepts the stream the request carries and prints every message the
//! client writes on it, so bRPC's own `streaming_echo_client` (and
//! fibrpc's `streaming_echo_client`) can talk to it unchanged.
//!
//! ```text
//! cargo run --release -p fibrpc --example streaming_echo_server -- --port 8001
//! ```
//!
//! Flags: `--port N` (default 8001, as bRPC's example),
//! `--max-buf-size BYTES` (the stream's window, default 2 MiB),
//! `--idle-timeout-ms N` (print a line when a stream is idle that long;
//! default off), `--duration SECS` (stop by itself).
//! Ctrl-C (or SIGTERM) closes the open streams and stops.

#[path = "common/logging.rs"]
mod logging;
#[path = "common/stop.rs"]
mod stop;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fibrpc::protocol::streaming::{Stream, StreamInputHandler, StreamOptions};
use fibrpc::{Controller, IOBuf, RpcError, Server, ServerOptions};
use fibrpc_example::{EchoRequest, EchoResponse, EchoService, EchoServiceServer};

/// Prints what arrives (bRPC's `StreamReceiver`).
struct Receiver;

impl StreamInputHandler for Receiver {
    fn on_received_messages(&self, stream: &Stream, messages: &mut [IOBuf]) {
        let mut line = String::new();
        for (i, m) in messages.iter().enumerate() {
            line.push_str(&format!(
                "msg[{i}]={}",
                String::from_utf8_lossy(&m.to_vec())
            ));
        }
        println!("Received from Stream={}: {line}", stream.id());
    }

    fn on_idle_timeout(&self, stream: &Stream) {
        println!(
            "Stream={} has no data transmission for a while",
            stream.id()
        );
    }

    fn on_closed(&self, stream: &Stream) {
        println!("Stream={} is closed", stream.id());
    }
}

struct StreamingEcho {
    options: StreamOptions,
    /// The streams accepted, closed at stop.
    streams: Mutex<Vec<Stream>>,
}

impl EchoService for StreamingEcho {
    fn echo(&self, cntl: &mut Controller, _request: EchoRequest) -> Result<EchoResponse, RpcError> {
        let stream = Stream::accept(cntl, self.options.clone())
            .map_err(|_| RpcError::new(fibrpc::errno::EINTERNAL, "Fail to accept stream"))?;
        let mut streams = self.streams.lock().unwrap();
        streams.retain(|s| !s.is_closed());
        streams.push(stream);
        Ok(EchoResponse {
            message: "Accepted stream".into(),
        })
    }
}

/// bRPC's streaming echo server.
#[derive(clap::Parser)]
#[command(name = "streaming_echo_server")]
struct Flags {
    /// The port (bRPC's example: 8001).
    #[arg(long, default_value_t = 8001)]
    port: u16,
    /// The stream's window in bytes (default: the stream default, 2 MiB).
    #[arg(long)]
    max_buf_size: Option<usize>,
    /// Print a line when a stream is idle this long.
    #[arg(long)]
    idle_timeout_ms: Option<u64>,
    /// Stop by itself after this many seconds.
    #[arg(long, value_parser = stop::parse_secs)]
    duration: Option<Duration>,
}

fn main() {
    logging::init();
    let flags = <Flags as clap::Parser>::parse();
    let (port, duration) = (flags.port, flags.duration);
    let mut options = StreamOptions::with_handler(Arc::new(Receiver));
    if let Some(bytes) = flags.max_buf_size {
        options.max_buf_size = bytes;
    }
    options.idle_timeout = flags.idle_timeout_ms.map(Duration::from_millis);
    let service = Arc::new(StreamingEcho {
        options,
        streams: Mutex::new(Vec::new()),
    });
    let mut server = Server::new(ServerOptions::default());
    server
        .add_service(EchoServiceServer::new(Shared(service.clone())))
        .expect("add EchoService");
    if let Err(e) = server.start(("0.0.0.0", port)) {
        eprintln!("streaming_echo_server: cannot start on port {port}: {e}");
        std::process::exit(1);
    }
    println!(
        "streaming_echo_server: serving example.EchoService with streams on {}",
        server.listen_addr().unwrap()
    );
    fibrpc::fiber::block_on(stop::signal_or_after(duration));
    // As bRPC's example: the streams are closed by the application.
    for s in service.streams.lock().unwrap().drain(..) {
        s.close();
    }
    server.stop();
    server.join();
    println!("streaming_echo_server: stopped");
}

/// The service behind an `Arc`, so `main` can close its streams.
struct Shared(Arc<StreamingEcho>);

impl EchoService for Shared {
    fn echo(&self, cntl: &mut Controller, request: EchoRequest) -> Result<EchoResponse, RpcError> {
        self.0.echo(cntl, request)
    }
}
