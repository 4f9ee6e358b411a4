//! fibrpc's gRPC server for `benches/rpc/proto/echo.proto` (the methods
//! `tonic_echo_server` serves, from the same file through
//! `fibrpc-build`): `example.EchoService/Echo` answers each request with
//! its message, `BidiThroughput` echoes every chunk of a bidirectional
//! stream. The fibrpc side of `benches/grpc/run.sh`'s streaming part.
//!
//!     fibrpc_grpc_server [--port 8200] [--threads N]
//!
//! Listens on 127.0.0.1 (`--port 0` picks a free port) and prints
//! `LISTENING <port>` once it accepts connections; `--threads` sets the
//! fiber workers (default: one per core). Stops on SIGINT/SIGTERM.

use fibrpc::protocol::grpc::BidiStream;
use fibrpc::{Controller, RpcError, Server, ServerOptions};
use fibrpc_bench_rpc::cli::at_least_one;
use fibrpc_bench_rpc::fib::{
    EchoRequest, EchoResponse, EchoService, EchoServiceServer, ThroughputChunk,
};

/// The fibrpc peer of tonic_echo_server.
#[derive(clap::Parser)]
#[command(name = "fibrpc_grpc_server")]
struct Flags {
    /// The port (0: any free one).
    #[arg(short, long, default_value_t = 8200)]
    port: u16,
    /// Fiber workers (sets FIBRPC_WORKERS; default: the cores).
    #[arg(short, long, value_parser = at_least_one)]
    threads: Option<usize>,
}

/// The service: echoes.
struct Echo;

impl EchoService for Echo {
    fn echo(&self, _: &mut Controller, request: EchoRequest) -> Result<EchoResponse, RpcError> {
        Ok(EchoResponse {
            message: request.message,
        })
    }

    /// Each chunk back as it comes, until the client ends its side.
    fn bidi_throughput(
        &self,
        _: &mut Controller,
        stream: BidiStream<ThroughputChunk, ThroughputChunk>,
    ) -> Result<(), RpcError> {
        while let Some(chunk) = stream.recv()? {
            stream.send(&chunk)?;
        }
        Ok(())
    }
}

fn main() {
    let flags = <Flags as clap::Parser>::parse();
    if let Some(n) = flags.threads {
        // Read by the runtime when it starts (at the server's start).
        std::env::set_var("FIBRPC_WORKERS", n.to_string());
    }
    let mut server = Server::new(ServerOptions::default());
    server
        .add_service(EchoServiceServer::new(Echo))
        .expect("adding the service");
    if let Err(e) = server.start(("127.0.0.1", flags.port)) {
        eprintln!("error: cannot listen on port {}: {e}", flags.port);
        std::process::exit(1);
    }
    let port = server.listen_addr().map_or(flags.port, |a| a.port());
    fibrpc_bench_rpc::announce_listening(port);
    if let Err(e) = server.run_until_signal() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
