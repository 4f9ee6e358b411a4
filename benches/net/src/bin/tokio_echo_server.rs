//! `tokio_echo_server`: the tokio peer of fibrpc's `tcp_echo_server`.
//!
//! ```text
//! tokio_echo_server [--port P (7001)] [--workers W (2)]
//! ```
//!
//! A multi-thread runtime with W workers; one task per connection reads up
//! to 4 KiB and writes it back, with TCP_NODELAY. The listen backlog is
//! 1024, as fibrpc's. The accept loop runs as a task on the workers (not on
//! the main thread), so the server uses W threads like the others. Prints
//! `listening on ADDR` once it accepts.

use fibrpc_bench_net::{announce_listening, server_flags, ECHO_BUF_SIZE, LISTEN_BACKLOG};
use std::net::{Ipv4Addr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

const USAGE: &str = "usage: tokio_echo_server [--port P (7001)] [--workers W (2)]";

fn main() -> std::io::Result<()> {
    let (port, workers) = server_flags(USAGE, 7001);
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
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(echo(stream));
            }
            // EMFILE and friends: say so and keep serving the others.
            Err(e) => eprintln!("accept: {e}"),
        }
    }
}

async fn echo(mut stream: TcpStream) {
    if stream.set_nodelay(true).is_err() {
        return;
    }
    let mut buf = [0u8; ECHO_BUF_SIZE];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
