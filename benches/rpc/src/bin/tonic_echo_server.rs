//! tonic (gRPC over HTTP/2, tokio) echo server: bRPC's
//! `example.EchoService/Echo`, answering each request with its message.
//! The peer of fibrpc's `echo_server` example in `run.sh`.
//!
//!     tonic_echo_server [--port 8001] [--threads N]
//!
//! Listens on 127.0.0.1 (`--port 0` picks a free port) and prints
//! `LISTENING <port>` once it accepts connections. Runs on a tokio
//! multi-thread runtime with `--threads` workers (default: one per core).

use std::net::{Ipv4Addr, SocketAddr};

use fibrpc_bench_rpc::cli::at_least_one;
use fibrpc_bench_rpc::pb::echo_service_server::{EchoService, EchoServiceServer};
use fibrpc_bench_rpc::pb::{EchoRequest, EchoResponse};
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

/// The gRPC peer of fibrpc's echo_server.
#[derive(clap::Parser)]
#[command(name = "tonic_echo_server")]
struct Flags {
    /// The port (0: any free one).
    #[arg(short, long, default_value_t = 8001)]
    port: u16,
    /// tokio worker threads (default: the cores).
    #[arg(short, long, value_parser = at_least_one)]
    threads: Option<usize>,
}

/// The service: echoes the request's message back.
struct Echo;

#[tonic::async_trait]
impl EchoService for Echo {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        Ok(Response::new(EchoResponse {
            message: request.into_inner().message,
        }))
    }
}

fn main() {
    let flags = <Flags as clap::Parser>::parse();
    let port = flags.port;
    let threads = flags
        .threads
        .unwrap_or_else(fibrpc_bench_rpc::default_threads);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("building the tokio runtime");
    runtime.block_on(async move {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let listener = listen(addr).unwrap_or_else(|e| {
            eprintln!("error: cannot listen on {addr}: {e}");
            std::process::exit(1);
        });
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let bound = incoming.local_addr().expect("listener address");
        fibrpc_bench_rpc::announce_listening(bound.port());
        tonic::transport::Server::builder()
            .add_service(EchoServiceServer::new(Echo))
            .serve_with_incoming(incoming)
            .await
            .expect("serving");
    });
}

/// Listens on `addr` with a backlog of [`fibrpc_bench_rpc::LISTEN_BACKLOG`]
/// (std's default of 128 would drop SYNs in a burst of idle connects).
fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(fibrpc_bench_rpc::LISTEN_BACKLOG)
}
