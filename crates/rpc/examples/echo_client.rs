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

fn main() {
    logging::init();
    let mut server = "127.0.0.1:8000".to_string();
    let mut lb = "rr".to_string();
    let mut attachment = String::new();
    let mut interval = Duration::from_millis(1000);
    let mut count = 0u64;
    let mut options = ChannelOptions {
        timeout: Some(Duration::from_millis(100)),
        ..Default::default()
    };
    let (mut tls_ca, mut tls_cert, mut tls_key, mut tls_name) = (None, None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--server" => server = value(),
            "--lb" => lb = value(),
            "--attachment" => attachment = value(),
            "--interval-ms" => interval = Duration::from_millis(num(&value())),
            "--count" => count = num(&value()),
            "--timeout-ms" => options.timeout = Some(Duration::from_millis(num(&value()))),
            "--max-retry" => options.max_retry = num(&value()) as u32,
            "--connection-type" => {
                options.connection_type = value().parse().unwrap_or_else(|e: String| usage(&e))
            }
            "--tls-ca" => tls_ca = Some(value()),
            "--tls-cert" => tls_cert = Some(value()),
            "--tls-key" => tls_key = Some(value()),
            "--tls-server-name" => tls_name = Some(value()),
            "--enable-rpcz" => fibrpc::rpcz::set_enabled(true),
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown flag {other}")),
        }
    }
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
    let Some(ca) = ca else {
        if cert.is_some() || key.is_some() || name.is_some() {
            usage("--tls-cert, --tls-key and --tls-server-name need --tls-ca");
        }
        return None;
    };
    let fail = |e: fibrpc::RpcError| -> ! {
        eprintln!("echo_client: {e}");
        std::process::exit(1);
    };
    let mut config = TlsClientConfig::from_ca_pem_file(&ca).unwrap_or_else(|e| fail(e));
    if let Some(name) = name {
        config = config.with_server_name(&name).unwrap_or_else(|e| fail(e));
    }
    match (cert, key) {
        (Some(cert), Some(key)) => {
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
        (None, None) => {}
        _ => usage("--tls-cert and --tls-key go together"),
    }
    Some(config)
}

fn num(s: &str) -> u64 {
    s.parse()
        .unwrap_or_else(|_| usage(&format!("not a number: {s}")))
}

fn usage(err: &str) -> ! {
    if !err.is_empty() {
        eprintln!("echo_client: {err}");
    }
    eprintln!(
        "usage: echo_client [--server 127.0.0.1:8000|list://h:p,h:p|etcd://h:p/prefix] \
         [--lb rr] [--attachment TEXT] [--interval-ms 1000] \
         [--count N] [--timeout-ms 100] [--max-retry 3] [--connection-type single|pooled|short] \
         [--tls-ca ca.pem [--tls-cert c.pem --tls-key k.pem] [--tls-server-name NAME]] \
         [--enable-rpcz]"
    );
    std::process::exit(2);
}
