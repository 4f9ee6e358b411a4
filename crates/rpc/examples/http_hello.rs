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

fn main() {
    logging::init();
    let mut port = 8100u16;
    let mut duration = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--port" => port = value().parse().unwrap_or_else(|_| usage("bad --port")),
            "--duration" => {
                duration = Some(Duration::from_secs_f64(
                    value().parse().unwrap_or_else(|_| usage("bad --duration")),
                ))
            }
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown flag {other}")),
        }
    }
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

fn usage(err: &str) -> ! {
    if !err.is_empty() {
        eprintln!("http_hello: {err}");
    }
    eprintln!("usage: http_hello [--port 8100] [--duration SECS]");
    std::process::exit(2);
}
