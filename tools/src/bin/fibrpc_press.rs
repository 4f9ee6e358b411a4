//! fibrpc's press tool (bRPC's `rpc_press` / multi-threaded echo client):
//! N caller fibers in a closed loop calling `example.EchoService.Echo`,
//! printing QPS and latency percentiles every second and a summary at the
//! end. The run is bounded: warm-up plus duration.
//!
//! ```text
//! cargo run --release -p fibrpc-tools --bin fibrpc_press -- \
//!     --server 127.0.0.1:8000 --concurrency 16 --duration 10
//! ```
//!
//! Flags: `--server ADDR` (or a naming URL: `list://a,b,c`, `file://`,
//! `dns://`, `etcd://`), `--lb NAME` (the load balancer for a URL, default
//! `rr`), `--concurrency N` (callers, default 16),
//! `--duration SECS` (10), `--warmup SECS` (1), `--request-size BYTES`
//! (message length, default 16), `--attachment-size BYTES` (0),
//! `--timeout-ms N` (1000), `--connection-type single|pooled|short`,
//! `--threads` (caller fibers run on N workers: sets FIBRPC_WORKERS; default
//! the runtime's), `--server-pid PID` (charge the server its CPU time and
//! report its RSS), `--tls-ca ca.pem` (speak TLS, trusting that CA),
//! `--tls-server-name NAME` (verify the server's certificate against NAME
//! rather than its IP address).

use std::time::{Duration, Instant};

use fibrpc::tls::TlsClientConfig;
use fibrpc::{Channel, ChannelOptions, Controller, IOBuf};
use fibrpc_example::{EchoRequest, EchoServiceClient};
use fibrpc_tools::cli::Args;
use fibrpc_tools::press::{Press, PressConfig};

fn main() {
    let mut server = "127.0.0.1:8000".to_string();
    let mut lb = "rr".to_string();
    let mut concurrency = 16usize;
    let mut config = PressConfig {
        warmup: Duration::from_secs(1),
        duration: Duration::from_secs(10),
        server_pid: None,
        extra: Vec::new(),
    };
    let mut request_size = 16usize;
    let mut attachment_size = 0usize;
    let mut options = ChannelOptions {
        timeout: Some(Duration::from_millis(1000)),
        ..Default::default()
    };
    let (mut tls_ca, mut tls_name) = (None::<String>, None::<String>);
    let mut args = Args::from_env(USAGE);
    while let Some(flag) = args.next_flag() {
        match flag.as_str() {
            "--server" => server = args.value(&flag),
            "--lb" => lb = args.value(&flag),
            "--concurrency" | "-c" => concurrency = args.value(&flag),
            "--duration" | "-d" => config.duration = Duration::from_secs_f64(args.value(&flag)),
            "--warmup" => config.warmup = Duration::from_secs_f64(args.value(&flag)),
            "--request-size" => request_size = args.value(&flag),
            "--attachment-size" => attachment_size = args.value(&flag),
            "--timeout-ms" => options.timeout = Some(Duration::from_millis(args.value(&flag))),
            "--server-pid" => config.server_pid = Some(args.value(&flag)),
            "--threads" => std::env::set_var("FIBRPC_WORKERS", args.value::<String>(&flag)),
            "--connection-type" => options.connection_type = args.value(&flag),
            "--tls-ca" => tls_ca = Some(args.value(&flag)),
            "--tls-server-name" => tls_name = Some(args.value(&flag)),
            other => args.unknown(other),
        }
    }
    if let Some(ca) = tls_ca {
        let tls = TlsClientConfig::from_ca_pem_file(&ca).and_then(|t| match &tls_name {
            Some(name) => t.with_server_name(name),
            None => Ok(t),
        });
        options.tls = Some(tls.unwrap_or_else(|e| args.fail(&format!("--tls-ca {ca}: {e}"))));
    } else if tls_name.is_some() {
        args.fail("--tls-server-name needs --tls-ca");
    }
    config
        .extra
        .push(("tls".into(), options.tls.is_some().to_string()));
    let channel = if server.contains("://") {
        Channel::with_naming(&server, &lb, options)
    } else {
        Channel::new(server.as_str(), options)
    };
    let channel = channel.unwrap_or_else(|e| {
        eprintln!("fibrpc_press: bad server {server}: {e}");
        std::process::exit(1);
    });
    config
        .extra
        .push(("concurrency".into(), concurrency.to_string()));
    let press = Press::new(concurrency);
    let message = "x".repeat(request_size);
    let attachment = IOBuf::from(&vec![b'a'; attachment_size][..]);
    let callers: Vec<_> = (0..concurrency)
        .map(|i| {
            let client = EchoServiceClient::new(channel.clone());
            let (press, rec) = (press.clone(), press.recorder(i));
            let request = EchoRequest {
                message: message.clone(),
            };
            let attachment = attachment.clone();
            fibrpc::fiber::spawn(move || {
                let mut cntl = Controller::new();
                while !press.stopped() {
                    cntl.reset();
                    *cntl.request_attachment_mut() = attachment.clone();
                    let t = Instant::now();
                    match client.echo(&mut cntl, &request) {
                        Ok(_) => rec.record(t.elapsed(), press.measuring()),
                        Err(e) => {
                            rec.error(press.measuring());
                            if !press.measuring() {
                                eprintln!("fibrpc_press: {e}");
                            }
                            // Do not spin on a dead server.
                            let _ = fibrpc::fiber::sleep(Duration::from_millis(1));
                        }
                    }
                }
            })
        })
        .collect();
    press.run(&config);
    for c in callers {
        let _ = c.join();
    }
}

const USAGE: &str =
    "usage: fibrpc_press [--server 127.0.0.1:8000|list://…] [--lb rr] [--concurrency 16] \
[--duration 10] [--warmup 1] [--request-size 16] [--attachment-size 0] [--timeout-ms 1000] \
[--connection-type single|pooled|short] [--threads N] [--server-pid PID] \
[--tls-ca ca.pem [--tls-server-name NAME]]";
