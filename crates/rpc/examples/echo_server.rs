//! bRPC's echo example, server side: serves `example.EchoService` over
//! baidu_std, echoing the message and the attachment, so bRPC's own
//! `echo_client` can call it unchanged.
//!
//! ```text
//! cargo run --release -p fibrpc --example echo_server -- --port 8000
//! ```
//!
//! Flags: `--port N` (default 8000), `--max-concurrency N` (0 = no limit),
//! `--verbose` (print every request), `--duration SECS` (stop by itself),
//! `--console-flags-writable` (let the console set flags with
//! `/flags/NAME?setvalue=V`; read-only otherwise), `--internal-port N`
//! (serve the console only on port N; 403 on the public port),
//! `--register etcd://host:port/prefix` (register in etcd while running,
//! for clients using that URL as their naming service), `--dump DIR`
//! (sample every request to files in DIR, bRPC's rpc_dump, for
//! `fibrpc_press --replay DIR`),
//! `--tls-cert cert.pem --tls-key key.pem` (serve TLS too, on the same
//! port: a connection's first byte decides), `--tls-required` (refuse
//! plaintext), `--tls-client-ca ca.pem` (mutual TLS: require a client
//! certificate that CA signed). SIGHUP reloads the certificate, key and
//! client CA files: new connections get the new certificate, open ones
//! keep theirs (files that do not load are reported and the old ones
//! kept). README.md shows a TLS run with the openssl commands that make
//! the certificates.
//! `--replicas N` (serve N servers in this process, on ports `--port`
//! to `--port + N - 1`: a cluster of N replicas whose server side costs
//! what one server's does, for `benches/rpc/cluster_overhead.sh`),
//! `--enable-rpcz` (trace calls; see them at `/rpcz`),
//! `--rpcz-sample-rate R` (with `--enable-rpcz`: the fraction of calls
//! traced, 0..=1; default 1).
//! Ctrl-C (or SIGTERM) stops gracefully: requests in flight are answered.

#[path = "common/logging.rs"]
mod logging;

use std::time::Duration;

#[path = "common/stop.rs"]
mod stop;

#[path = "common/sighup.rs"]
mod sighup;

use fibrpc::rpc_dump::RpcDumpOptions;
use fibrpc::tls::TlsServerConfig;
use fibrpc::{Controller, RpcError, Server, ServerOptions};
use fibrpc_example::{EchoRequest, EchoResponse, EchoService, EchoServiceServer};

struct Echo {
    verbose: bool,
}

impl EchoService for Echo {
    fn echo(&self, cntl: &mut Controller, request: EchoRequest) -> Result<EchoResponse, RpcError> {
        if self.verbose {
            println!(
                "Received request[log_id={}] from {} to {}: {} (attached={})",
                cntl.log_id(),
                cntl.remote_side().map_or("?".into(), |a| a.to_string()),
                cntl.local_side().map_or("?".into(), |a| a.to_string()),
                request.message,
                String::from_utf8_lossy(&cntl.request_attachment().to_vec()),
            );
        }
        // Echo the attachment too, by reference (no copy).
        let attachment = cntl.request_attachment().clone();
        *cntl.response_attachment_mut() = attachment;
        Ok(EchoResponse {
            message: request.message,
        })
    }
}

/// bRPC's echo server.
#[derive(clap::Parser)]
#[command(name = "echo_server")]
struct Flags {
    /// The port.
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Requests handled at once at most (0: no limit).
    #[arg(long, default_value_t = 0)]
    max_concurrency: usize,
    /// Print every request.
    #[arg(long)]
    verbose: bool,
    /// Stop by itself after this many seconds.
    #[arg(long, value_parser = stop::parse_secs)]
    duration: Option<Duration>,
    /// Let the console set flags (/flags/NAME?setvalue=V).
    #[arg(long)]
    console_flags_writable: bool,
    /// Serve the console only on this port (403 on the public one).
    #[arg(long)]
    internal_port: Option<u16>,
    /// Register in etcd while running: etcd://host:port/prefix.
    #[arg(long)]
    register: Option<String>,
    /// Sample every request to files in DIR (bRPC's rpc_dump), for
    /// `fibrpc_press --replay DIR`.
    #[arg(long, value_name = "DIR")]
    dump: Option<String>,
    /// Serve TLS too with this certificate (PEM).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<String>,
    /// The certificate's private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<String>,
    /// Refuse plaintext connections.
    #[arg(long, requires = "tls_cert")]
    tls_required: bool,
    /// Mutual TLS: require a client certificate this CA signed.
    #[arg(long, requires = "tls_cert")]
    tls_client_ca: Option<String>,
    /// Trace calls (see them at /rpcz).
    #[arg(long)]
    enable_rpcz: bool,
    /// With --enable-rpcz: the fraction of calls traced, 0..=1.
    #[arg(long, value_name = "R", requires = "enable_rpcz")]
    rpcz_sample_rate: Option<String>,
    /// Serve this many servers in this process, on --port and the ports
    /// after it (the others with default options, stopped with the
    /// first): replicas of a cluster sharing one process's workers.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    replicas: u16,
}

/// A server with the echo service started on `port`; exits the process
/// if it cannot start.
fn serve(options: ServerOptions, port: u16, verbose: bool) -> Server {
    let mut server = Server::new(options);
    server
        .add_service(EchoServiceServer::new(Echo { verbose }))
        .expect("add EchoService");
    if let Err(e) = server.start(("0.0.0.0", port)) {
        eprintln!("echo_server: cannot start on port {port}: {e}");
        std::process::exit(1);
    }
    server
}

fn main() {
    let flags = <Flags as clap::Parser>::parse();
    // With TLS, SIGHUP reloads the certificate: blocked before any
    // thread starts, so that only the thread waiting for it takes it.
    if flags.tls_cert.is_some() {
        sighup::block();
    }
    logging::init();
    if flags.enable_rpcz {
        fibrpc::rpcz::set_enabled(true);
    }
    if let Some(rate) = &flags.rpcz_sample_rate {
        if let Err(e) = fibrpc::flags::set("rpcz_sample_rate", rate) {
            eprintln!("echo_server: bad --rpcz-sample-rate: {e}");
            std::process::exit(2);
        }
    }
    let port = flags.port;
    let verbose = flags.verbose;
    let duration = flags.duration;
    let mut options = ServerOptions {
        max_concurrency: flags.max_concurrency,
        console_flags_writable: flags.console_flags_writable,
        internal_port: flags.internal_port,
        register: flags.register,
        tls_required: flags.tls_required,
        rpc_dump: flags.dump.map(RpcDumpOptions::new),
        ..Default::default()
    };
    let tls_files = match (flags.tls_cert, flags.tls_key) {
        // clap makes the flags come together.
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert,
            key,
            client_ca: flags.tls_client_ca,
        }),
        _ => None,
    };
    options.tls = tls_files.as_ref().map(|f| {
        f.load().unwrap_or_else(|e| {
            eprintln!("echo_server: {e}");
            std::process::exit(1);
        })
    });
    let tls = match (&options.tls, options.tls_required) {
        (None, _) => "",
        (Some(_), true) => " (TLS only)",
        (Some(_), false) => " (TLS or plaintext, decided per connection)",
    };
    let mut server = serve(options, port, verbose);
    println!(
        "echo_server: serving example.EchoService on {}{}",
        server.listen_addr().unwrap(),
        tls
    );
    if let Some(internal) = server.internal_listen_addr() {
        println!("echo_server: builtin console on internal port {internal}");
    }
    // Dropped (stopped) when the first server has stopped.
    let _replicas: Vec<Server> = (1..flags.replicas)
        .map(|i| {
            let port = port.checked_add(i).unwrap_or_else(|| {
                eprintln!("echo_server: --replicas passes port 65535");
                std::process::exit(2);
            });
            let replica = serve(ServerOptions::default(), port, verbose);
            println!("echo_server: replica on {}", replica.listen_addr().unwrap());
            replica
        })
        .collect();
    if let (Some(files), Some(reloader)) = (tls_files, server.tls_reloader()) {
        sighup::on_sighup(move || match files.load() {
            Ok(config) => {
                reloader.reload(config);
                println!("echo_server: SIGHUP: reloaded {}", files.cert);
            }
            Err(e) => eprintln!("echo_server: SIGHUP: keeping the old certificate: {e}"),
        });
    }
    // Graceful: requests in flight are answered before this returns.
    server.run_until(stop::signal_or_after(duration));
    println!("echo_server: stopped");
    if let Some(s) = server.method_stats("example.EchoService", "Echo") {
        println!(
            "echo_server: {} calls, {} errors, mean latency {:?} (all calls)",
            s.calls,
            s.errors,
            s.lifetime_mean_latency()
        );
    }
}

/// The files the `--tls-*` flags name, read at start and on SIGHUP.
struct TlsFiles {
    cert: String,
    key: String,
    client_ca: Option<String>,
}

impl TlsFiles {
    /// The TLS config the files make now.
    fn load(&self) -> Result<TlsServerConfig, String> {
        let config =
            TlsServerConfig::from_pem_files(&self.cert, &self.key).map_err(|e| e.to_string())?;
        let Some(ca) = &self.client_ca else {
            return Ok(config);
        };
        let ca_pem = std::fs::read(ca).map_err(|e| format!("cannot read {ca}: {e}"))?;
        config
            .with_client_auth(&ca_pem, true)
            .map_err(|e| e.to_string())
    }
}
