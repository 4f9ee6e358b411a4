//! tonic (gRPC over HTTP/2, tokio) echo server: bRPC's
//! `example.EchoService/Echo`, answering each request with its message,
//! `example.StreamEchoService` (the four kinds of call, bidirectional
//! `Chat` among them; see `fibrpc_bench_rpc::stream_echo`) and
//! `BidiThroughput`, echoing every chunk of a bidirectional stream.
//! The peer of fibrpc's `echo_server` example in `run.sh` and of
//! `fibrpc_grpc_server` in `benches/grpc/run.sh`.
//!
//!     tonic_echo_server [--port 8001] [--threads N]
//!                       [--tls-cert cert.pem --tls-key key.pem]
//!
//! Listens on 127.0.0.1 (`--port 0` picks a free port) and prints
//! `LISTENING <port>` once it accepts connections. Runs on a tokio
//! multi-thread runtime with `--threads` workers (default: one per core).
//! With `--tls-cert` and `--tls-key` it speaks TLS only (tonic's rustls
//! with the ring provider, as fibrpc's), ALPN `h2`.

use std::net::{Ipv4Addr, SocketAddr};

use fibrpc_bench_rpc::cli::at_least_one;
use fibrpc_bench_rpc::pb::echo_service_server::{EchoService, EchoServiceServer};
use fibrpc_bench_rpc::pb::stream_echo_service_server::StreamEchoServiceServer;
use fibrpc_bench_rpc::pb::{EchoRequest, EchoResponse, ThroughputChunk};
use fibrpc_bench_rpc::stream_echo::TonicStreamEcho;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};

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
    /// Serve TLS with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
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

    /// The chunks as they are decoded, encoded again: tonic's idiomatic
    /// echo, the request stream is the response stream.
    type BidiThroughputStream = Streaming<ThroughputChunk>;

    async fn bidi_throughput(
        &self,
        request: Request<Streaming<ThroughputChunk>>,
    ) -> Result<Response<Self::BidiThroughputStream>, Status> {
        Ok(Response::new(request.into_inner()))
    }
}

fn main() {
    let flags = <Flags as clap::Parser>::parse();
    let port = flags.port;
    let tls = flags
        .tls_cert
        .as_ref()
        .zip(flags.tls_key.as_ref())
        .map(|(cert, key)| {
            let read = |path: &std::path::Path| {
                std::fs::read(path).unwrap_or_else(|e| {
                    eprintln!("error: cannot read {}: {e}", path.display());
                    std::process::exit(1);
                })
            };
            ServerTlsConfig::new().identity(Identity::from_pem(read(cert), read(key)))
        });
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
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = tls {
            builder = builder.tls_config(tls).unwrap_or_else(|e| {
                eprintln!("error: bad TLS configuration: {e}");
                std::process::exit(1);
            });
        }
        builder
            .add_service(EchoServiceServer::new(Echo))
            .add_service(
                StreamEchoServiceServer::new(TonicStreamEcho)
                    .max_decoding_message_size(64 << 20)
                    .max_encoding_message_size(64 << 20),
            )
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
