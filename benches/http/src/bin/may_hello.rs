//! `may_hello`: the may_minihttp peer of fibrpc's `http_hello` example.
//!
//! ```text
//! may_hello [--port P (8102; 0 = any)] [--workers W (2)]
//! ```
//!
//! may_minihttp's `HttpServer` on W may workers, as its examples write it:
//! one coroutine per connection, requests parsed with httparse, responses
//! of a batch written together. `GET /hello` gets 200 `text/plain`
//! `Hello, World!`; anything else 404. may_minihttp adds `Server: M`,
//! `Date` and `Content-Length`. It does not set TCP_NODELAY (the call is
//! commented out in the crate) and gives no way to: a user gets none.
//! may's `TcpListener::bind` listens with a backlog of 1024 and sets
//! SO_REUSEPORT. Prints `listening on ADDR` once it accepts.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use fibrpc_bench_http::{announce_listening, server_flags, HELLO_BODY, HELLO_PATH};
use may_minihttp::{HttpServer, HttpService, Request, Response};

const USAGE: &str = "usage: may_hello [--port P (8102; 0 = any)] [--workers W (2)]";

/// The service: one route.
#[derive(Clone)]
struct Hello;

impl HttpService for Hello {
    fn call(&mut self, req: Request, rsp: &mut Response) -> io::Result<()> {
        if req.method() == "GET" && req.path() == HELLO_PATH {
            rsp.header("Content-Type: text/plain").body(HELLO_BODY);
        } else {
            rsp.status_code(404, "Not Found");
        }
        Ok(())
    }
}

fn main() -> io::Result<()> {
    let (port, workers) = server_flags(USAGE, 8102);
    may::config().set_workers(workers);
    let mut addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    if port == 0 {
        // `HttpServer::start` binds by itself and does not tell the address:
        // take a free port from the kernel and hand it over.
        addr = TcpListener::bind(addr)?.local_addr()?;
    }
    let server = HttpServer(Hello).start(addr)?;
    announce_listening(addr);
    server
        .join()
        .map_err(|_| io::Error::other("the accept loop panicked"))
}
