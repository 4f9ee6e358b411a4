//! The plaintext HTTP benchmark's server: `GET /hello` answers
//! `Hello, World!` (the same handler as the hyper and may_minihttp servers
//! in `benches/http`). Every builtin page (`/status`, `/vars`, ...) is on
//! the same port.
//!
//! ```text
//! cargo run --release -p fibrpc --example http_hello -- --port 8100
//! curl http://127.0.0.1:8100/hello
//! ```
//!
//! Flags: `--port N` (default 8100; 0 picks a free port), `--duration
//! SECS` (stop by itself). Prints `listening on ADDR` first; Ctrl-C or
//! SIGTERM stops gracefully.

#[path = "common/stop.rs"]
mod stop;

#[path = "common/logging.rs"]
mod logging;

use std::time::Duration;

use fibrpc::http::{header, HeaderValue, HttpContext, Request, Response};
use fibrpc::{IOBuf, Server, ServerOptions};

fn hello(_req: Request<IOBuf>, _ctx: &HttpContext) -> Response<IOBuf> {
    let mut r = Response::new(IOBuf::from("Hello, World!"));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

/// The plaintext HTTP benchmark's server (`GET /hello`).
#[derive(clap::Parser)]
#[command(name = "http_hello")]
struct Flags {
    /// The port (0 picks a free one).
    #[arg(long, default_value_t = 8100)]
    port: u16,
    /// Stop by itself after this many seconds.
    #[arg(long, value_parser = stop::parse_secs)]
    duration: Option<Duration>,
}

fn main() {
    logging::init();
    let flags = <Flags as clap::Parser>::parse();
    let port = flags.port;
    let duration = flags.duration;
    let mut server = Server::new(ServerOptions::default());
    server
        .add_http_handler("/hello", hello)
        .expect("add /hello");
    if let Err(e) = server.start(("127.0.0.1", port)) {
        eprintln!("http_hello: cannot start on port {port}: {e}");
        std::process::exit(1);
    }
    println!("listening on {}", server.listen_addr().unwrap());
    server.run_until(stop::signal_or_after(duration));
}
