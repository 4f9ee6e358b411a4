//! `hyper_hello`: the hyper (tokio) peer of fibrpc's `http_hello` example.
//!
//! ```text
//! hyper_hello [--port P (8101; 0 = any)] [--workers W (2)]
//! ```
//!
//! hyper 1.x's HTTP/1.1 server as a hyper user writes it: a tokio
//! multi-thread runtime with W workers, an accept loop that sets
//! TCP_NODELAY and spawns one task per connection running
//! `http1::Builder::serve_connection` (keep-alive is hyper's default) with a
//! `service_fn`. `GET /hello` gets 200 `text/plain` `Hello, World!`;
//! anything else 404. hyper adds `content-length` and `date`. The accept
//! loop runs as a task on the workers (not in `block_on` on the main
//! thread), so the server uses W threads like the others. Listens on
//! 127.0.0.1 with a backlog of 1024 and prints `listening on ADDR` once it
//! accepts.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};

use bytes::Bytes;
use fibrpc_bench_http::{announce_listening, server_flags, HELLO_BODY, HELLO_PATH, LISTEN_BACKLOG};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket};

const USAGE: &str = "usage: hyper_hello [--port P (8101; 0 = any)] [--workers W (2)]";

fn main() -> std::io::Result<()> {
    let (port, workers) = server_flags(USAGE, 8101);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_io()
        .build()?;
    runtime.block_on(async move {
        let listener = listen(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
        announce_listening(listener.local_addr()?);
        // On a worker, not in block_on: block_on runs on the main thread,
        // which would make a third thread doing work.
        tokio::spawn(accept_loop(listener)).await?
    })
}

/// Binds with an explicit backlog (`TcpListener::bind` picks its own).
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

async fn accept_loop(listener: TcpListener) -> std::io::Result<()> {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // EMFILE and friends: say so and keep serving the others.
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        if stream.set_nodelay(true).is_err() {
            continue;
        }
        tokio::spawn(async move {
            // A peer that goes away mid-request is not the server's error.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(hello))
                .await;
        });
    }
}

async fn hello(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() == Method::GET && req.uri().path() == HELLO_PATH {
        let mut response = Response::new(Full::new(Bytes::from_static(HELLO_BODY.as_bytes())));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        Ok(response)
    } else {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::NOT_FOUND;
        Ok(response)
    }
}
