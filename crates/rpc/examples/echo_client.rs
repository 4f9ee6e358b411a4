//! bRPC's echo example, client side: calls `example.EchoService.Echo` in a
//! loop and prints each response. Works against fibrpc's `echo_server` and
//! against bRPC's.
//!
//! ```text
//! cargo run --release -p fibrpc --example echo_client -- \
//!     --server 127.0.0.1:8000 --attachment foo --interval-ms 1000
//! ```
//!
//! Against a cluster (bRPC's `Channel::Init(url, lb, ...)`): `--server`
//! takes a naming URL and `--lb` a load balancer:
//!
//! ```text
//! cargo run --release -p fibrpc --example echo_client -- \
//!     --server list://127.0.0.1:8001,127.0.0.1:8002,127.0.0.1:8003 --lb rr
//! ```
//!
//! Flags: `--server ADDR|URL` (`host:port`, or `list://`, `file://`,
//! `dns://`, `etcd://host:port/prefix`), `--lb rr|wrr|random|la|c_murmurhash|c_md5`
//! (default `rr`; used with a URL), `--attachment TEXT`, `--interval-ms N` (default
//! 1000), `--count N` (0 = until killed; default 0), `--timeout-ms N`
//! (default 100, as bRPC's example), `--max-retry N` (default 3),
//! `--connection-type single|pooled|short`, `--tls-ca ca.pem` (speak TLS,
//! trusting that CA), `--tls-cert c.pem --tls-key k.pem` (present a
//! client certificate), `--tls-server-name NAME` (the name to verify the
//! server's certificate against; default: its IP address), `--enable-rpcz`
//! (record each call's span; with `RUST_LOG=fibrpc::rpcz=debug` they are
//! printed).

#[path = "common/logging.rs"]
mod logging;

use std::time::Duration;

use fibrpc::tls::TlsClientConfig;
use fibrpc::{Channel, ChannelOptions, Controller};
use fibrpc_example::{EchoRequest, EchoServiceClient};

/// bRPC's echo client.
#[derive(clap::Parser)]
#[command(name = "echo_client")]
struct Flags {
    /// host:port, or a naming URL: list://, file://, dns://, etcd://host:port/prefix.
    #[arg(long, default_value = "127.0.0.1:8000")]
    server: String,
    /// The load balancer for a naming URL: rr, wrr, random, la, c_murmurhash, c_md5.
    #[arg(long, default_value = "rr")]
    lb: String,
    /// The attachment of every request.
    #[arg(long, default_value = "")]
    attachment: String,
    /// Milliseconds between calls.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Calls to make (0: until killed).
    #[arg(long, default_value_t = 0)]
    count: u64,
    /// The timeout of a call.
    #[arg(long, default_value_t = 100)]
    timeout_ms: u64,
    /// Retries of a failed call.
    #[arg(long, default_value_t = 3)]
    max_retry: u32,
    /// single, pooled or short.
    #[arg(long)]
    connection_type: Option<fibrpc::ConnectionType>,
    /// Speak TLS, trusting this CA.
    #[arg(long)]
    tls_ca: Option<String>,
    /// Present this client certificate (PEM).
    #[arg(long, requires_all = ["tls_key", "tls_ca"])]
    tls_cert: Option<String>,
    /// The client certificate's private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<String>,
    /// The name to verify the server's certificate against (default: its IP address).
    #[arg(long, requires = "tls_ca")]
    tls_server_name: Option<String>,
    /// Record each call's rpcz span (printed with RUST_LOG=fibrpc::rpcz=debug).
    #[arg(long)]
    enable_rpcz: bool,
}

fn main() {
    logging::init();
    let flags = <Flags as clap::Parser>::parse();
    if flags.enable_rpcz {
        fibrpc::rpcz::set_enabled(true);
    }
    let (server, lb, attachment) = (flags.server, flags.lb, flags.attachment);
    let interval = Duration::from_millis(flags.interval_ms);
    let count = flags.count;
    let mut options = ChannelOptions {
        timeout: Some(Duration::from_millis(flags.timeout_ms)),
        max_retry: flags.max_retry,
        ..Default::default()
    };
    if let Some(t) = flags.connection_type {
        options.connection_type = t;
    }
    let (tls_ca, tls_cert, tls_key, tls_name) = (
        flags.tls_ca,
        flags.tls_cert,
        flags.tls_key,
        flags.tls_server_name,
    );
    options.tls = tls_config(tls_ca, tls_cert, tls_key, tls_name);
    let channel = if server.contains("://") {
        Channel::with_naming(&server, &lb, options)
    } else {
        Channel::new(server.as_str(), options)
    };
    let channel = channel.unwrap_or_else(|e| {
        eprintln!("echo_client: bad server {server}: {e}");
        std::process::exit(1);
    });
    let client = EchoServiceClient::new(channel);
    let mut log_id = 0u64;
    let mut sent = 0u64;
    while count == 0 || sent < count {
        let mut cntl = Controller::new();
        cntl.set_log_id(log_id);
        log_id += 1;
        cntl.request_attachment_mut().append(attachment.as_bytes());
        let request = EchoRequest {
            message: "hello world".into(),
        };
        match client.echo(&mut cntl, &request) {
            Ok(response) => println!(
                "Received response from {} to {}: {} (attached={}) latency={}us",
                cntl.remote_side().map_or("?".into(), |a| a.to_string()),
                cntl.local_side().map_or("?".into(), |a| a.to_string()),
                response.message,
                String::from_utf8_lossy(&cntl.response_attachment().to_vec()),
                cntl.latency().as_micros()
            ),
            Err(e) => eprintln!("echo_client: {e}"),
        }
        sent += 1;
        if count == 0 || sent < count {
            std::thread::sleep(interval);
        }
    }
}

/// The TLS config the `--tls-*` flags ask for (none without a CA).
fn tls_config(
    ca: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    name: Option<String>,
) -> Option<TlsClientConfig> {
    // clap makes --tls-cert, --tls-key and --tls-server-name need --tls-ca.
    let ca = ca?;
    let fail = |e: fibrpc::RpcError| -> ! {
        eprintln!("echo_client: {e}");
        std::process::exit(1);
    };
    let mut config = TlsClientConfig::from_ca_pem_file(&ca).unwrap_or_else(|e| fail(e));
    if let Some(name) = name {
        config = config.with_server_name(&name).unwrap_or_else(|e| fail(e));
    }
    // clap makes the two come together.
    if let (Some(cert), Some(key)) = (cert, key) {
        let read = |p: &str| {
            std::fs::read(p).unwrap_or_else(|e| {
                eprintln!("echo_client: cannot read {p}: {e}");
                std::process::exit(1);
            })
        };
        config = config
            .with_client_cert_pem(&read(&cert), &read(&key))
            .unwrap_or_else(|e| fail(e));
    }
    Some(config)
}
