//! fibrpc's press tool (bRPC's `rpc_press`, `rpc_replay` and its
//! multi-threaded echo client).
//!
//! **Any service**: requests written as JSON (one object per line, or a
//! JSON array), typed by a `.proto` compiled at run time (no `protoc`
//! needed) or by a descriptor set, sent over baidu_std or HTTP, at a
//! target rate (open loop, latency from each call's intended start) or
//! by C callers (closed loop). A live line on stderr when it is a
//! terminal; a JSON summary on stdout. The same flags drive gRPC
//! servers (`--protocol grpc`: unary calls over HTTP/2, fibrpc's or any
//! other's, tonic's say).
//!
//! ```text
//! fibrpc_press --server 127.0.0.1:8000 --proto echo.proto \
//!     --method example.EchoService/Echo --input requests.json \
//!     --qps 1000 --duration 10 --connections 4
//! fibrpc_press --server 127.0.0.1:8000 --replay /tmp/dump --qps 500
//! ```
//!
//! **The echo benchmark** (no `--proto`/`--replay`: the mode the bench
//! scripts use): C caller fibers in a closed loop calling
//! `example.EchoService.Echo`, a line per second and a `RESULT {...}`
//! line at the end.
//!
//! ```text
//! fibrpc_press --server 127.0.0.1:8000 --concurrency 16 --duration 10
//! fibrpc_press --server 127.0.0.1:8201 --protocol grpc --concurrency 16
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use fibrpc::tls::TlsClientConfig;
use fibrpc::{Channel, ChannelOptions, ConnectionType, Controller, GrpcChannel, IOBuf, RpcChannel};
use fibrpc_example::{EchoRequest, EchoServiceClient};
use fibrpc_tools::dynamic::app::{drain_for, run_app, AppConfig, Source};
use fibrpc_tools::dynamic::run::{LoadConfig, Mode};
use fibrpc_tools::dynamic::target::Protocol;
use fibrpc_tools::press::{Press, PressConfig};

/// Load generator for fibrpc and bRPC servers.
#[derive(Parser, Debug)]
#[command(
    name = "fibrpc_press",
    about = "Load generator for fibrpc and bRPC servers (bRPC's rpc_press and rpc_replay)",
    after_help = "Protocols: baidu_std, http (the JSON body POSTed to /package.Service/Method) \
and grpc (unary calls over HTTP/2; the echo benchmark too).\n\
Without --proto, --descriptor-set or --replay: the echo benchmark \
(example.EchoService.Echo, closed loop, RESULT line).\n\
With them: one JSON summary object on stdout; a live line on stderr when it is a terminal."
)]
struct Cli {
    /// host:port, or (baidu_std, grpc) a naming URL: list://a,b file:// dns:// etcd://.
    /// Echo benchmark: a comma list of host:port (no URL) gives each
    /// address a plain channel and splits the callers among them, caller i
    /// on address i % N: calls spread over N servers with no balancer, the
    /// yardstick for a cluster channel's own cost.
    #[arg(long, default_value = "127.0.0.1:8000")]
    server: String,
    /// The load balancer for a naming URL.
    #[arg(long, default_value = "rr")]
    lb: String,
    /// The .proto defining --method (compiled at run time).
    #[arg(long, conflicts_with_all = ["descriptor_set", "replay"])]
    proto: Option<PathBuf>,
    /// An import path for --proto (repeatable; its own directory is one).
    #[arg(short = 'I', long = "include", requires = "proto")]
    include: Vec<PathBuf>,
    /// An encoded FileDescriptorSet defining --method, instead of --proto.
    #[arg(long, conflicts_with = "replay")]
    descriptor_set: Option<PathBuf>,
    /// The method to call: package.Service/Method.
    #[arg(long, requires = "input")]
    method: Option<String>,
    /// The requests: JSON objects, one per line, or a JSON array ('-': stdin).
    #[arg(long, requires = "method")]
    input: Option<PathBuf>,
    /// Replay the requests an rpc dump directory holds (each once, unless
    /// --count or --qps/--duration say otherwise).
    #[arg(long, conflicts_with_all = ["method", "input"])]
    replay: Option<PathBuf>,
    /// baidu_std, http or grpc (the echo benchmark: baidu_std or grpc).
    /// With --replay: override each record's protocol.
    #[arg(long)]
    protocol: Option<Protocol>,
    /// Open loop at this many calls per second.
    #[arg(long, conflicts_with = "concurrency")]
    qps: Option<f64>,
    /// Closed loop with N callers (default 16).
    #[arg(short = 'c', long)]
    concurrency: Option<usize>,
    /// Channels (connections) per protocol; in the echo benchmark, the
    /// callers are spread over this many connections.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Open loop: calls in flight at most (the sender waits past it).
    #[arg(long, default_value_t = 10_000)]
    max_inflight: usize,
    /// Stop after this many calls.
    #[arg(long)]
    count: Option<u64>,
    /// Seconds measured (default 10; with --replay and no --qps: until each
    /// record was sent once).
    #[arg(short = 'd', long)]
    duration: Option<f64>,
    /// Seconds of unmeasured calls first (default 1 for the echo
    /// benchmark, 0 otherwise).
    #[arg(long)]
    warmup: Option<f64>,
    /// Echo benchmark: the message length.
    #[arg(long, default_value_t = 16)]
    request_size: usize,
    /// Echo benchmark: the attachment length.
    #[arg(long, default_value_t = 0)]
    attachment_size: usize,
    /// The timeout of a call.
    #[arg(long, default_value_t = 1000)]
    timeout_ms: u64,
    /// single, pooled or short.
    #[arg(long)]
    connection_type: Option<ConnectionType>,
    /// Run the caller fibers on N workers (sets FIBRPC_WORKERS).
    #[arg(long)]
    threads: Option<usize>,
    /// Echo benchmark: charge the server its CPU time, report its RSS; a
    /// comma list charges (and sums) several server processes.
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// Speak TLS, trusting this CA.
    #[arg(long)]
    tls_ca: Option<String>,
    /// Verify the server's certificate against NAME, not its IP address.
    #[arg(long, requires = "tls_ca")]
    tls_server_name: Option<String>,
}

fn main() {
    let cli = Cli::parse();
    if let Some(n) = cli.threads {
        // Read by the runtime when it starts (at the first fiber call).
        std::env::set_var("FIBRPC_WORKERS", n.to_string());
    }
    let options = channel_options(&cli);
    if cli.proto.is_some() || cli.descriptor_set.is_some() || cli.replay.is_some() {
        any_service(&cli, options);
    } else if cli.method.is_some() {
        fail(2, "--method needs --proto or --descriptor-set");
    } else {
        echo_benchmark(&cli, options);
    }
}

fn fail(status: i32, message: &str) -> ! {
    eprintln!("fibrpc_press: {message}");
    std::process::exit(status);
}

fn channel_options(cli: &Cli) -> ChannelOptions {
    let mut options = ChannelOptions {
        timeout: Some(Duration::from_millis(cli.timeout_ms)),
        ..Default::default()
    };
    if let Some(t) = cli.connection_type {
        options.connection_type = t;
    }
    if let Some(ca) = &cli.tls_ca {
        let tls = TlsClientConfig::from_ca_pem_file(ca).and_then(|t| match &cli.tls_server_name {
            Some(name) => t.with_server_name(name),
            None => Ok(t),
        });
        options.tls = Some(tls.unwrap_or_else(|e| fail(2, &format!("--tls-ca {ca}: {e}"))));
    }
    options
}

/// `--proto`/`--descriptor-set`/`--replay`: the summary JSON on stdout.
fn any_service(cli: &Cli, options: ChannelOptions) {
    let source = match &cli.replay {
        Some(dir) => Source::Replay {
            dir: dir.clone(),
            protocol: cli.protocol,
        },
        None => Source::Json {
            proto: cli.proto.clone().map(|p| (p, cli.include.clone())),
            descriptor_set: cli.descriptor_set.clone(),
            method: cli
                .method
                .clone()
                .unwrap_or_else(|| fail(2, "--proto/--descriptor-set need --method and --input")),
            input: cli
                .input
                .clone()
                .unwrap_or_else(|| fail(2, "--method needs --input")),
            protocol: cli.protocol.unwrap_or(Protocol::BaiduStd),
        },
    };
    let mode = match cli.qps {
        Some(qps) if qps > 0.0 && qps.is_finite() => Mode::Open {
            qps,
            max_inflight: cli.max_inflight,
        },
        Some(qps) => fail(2, &format!("--qps {qps}: must be above 0")),
        None => Mode::Closed {
            concurrency: cli.concurrency.unwrap_or(16),
        },
    };
    // A replay without a rate or a duration ends when each record went
    // once; give it time enough.
    let default_duration = if cli.replay.is_some() && cli.qps.is_none() {
        3600.0
    } else {
        10.0
    };
    let secs = |v: f64, flag: &str| {
        Duration::try_from_secs_f64(v).unwrap_or_else(|e| fail(2, &format!("{flag} {v}: {e}")))
    };
    let config = AppConfig {
        source,
        server: cli.server.clone(),
        lb: cli.lb.clone(),
        connections: cli.connections.max(1),
        load: LoadConfig {
            mode,
            warmup: secs(cli.warmup.unwrap_or(0.0), "--warmup"),
            duration: secs(cli.duration.unwrap_or(default_duration), "--duration"),
            count: cli.count,
            drain: drain_for(&options),
            progress: true,
        },
        options,
    };
    match run_app(&config) {
        Ok(summary) => println!("{summary}"),
        Err(e) => fail(e.status, &e.message),
    }
}

/// The echo benchmark the bench scripts run: RESULT line and all.
fn echo_benchmark(cli: &Cli, options: ChannelOptions) {
    let concurrency = cli.concurrency.unwrap_or(16);
    let secs = |v: f64, flag: &str| {
        Duration::try_from_secs_f64(v).unwrap_or_else(|e| fail(2, &format!("{flag} {v}: {e}")))
    };
    let mut config = PressConfig {
        warmup: secs(cli.warmup.unwrap_or(1.0), "--warmup"),
        duration: secs(cli.duration.unwrap_or(10.0), "--duration"),
        server_pids: cli.server_pid.clone(),
        extra: Vec::new(),
    };
    config
        .extra
        .push(("tls".into(), options.tls.is_some().to_string()));
    let server = &cli.server;
    config
        .extra
        .push(("concurrency".into(), concurrency.to_string()));
    let protocol = cli.protocol.unwrap_or(Protocol::BaiduStd);
    config
        .extra
        .push(("protocol".into(), format!("\"{protocol}\"")));
    let naming = server.contains("://");
    // Without a URL, a comma list names servers to split the callers over.
    let addresses: Vec<&str> = if naming {
        vec![server.as_str()]
    } else {
        server.split(',').map(str::trim).collect()
    };
    // One channel per connection: a channel keeps one connection per
    // server, so `--connections N` spreads the callers over N of them
    // (per address of a comma list).
    let connections = cli.connections.max(1);
    config
        .extra
        .push(("connections".into(), connections.to_string()));
    match protocol {
        Protocol::BaiduStd => {
            let channels = channels_per_address(&addresses, connections, |address| {
                if naming {
                    Channel::with_naming(address, &cli.lb, options.clone())
                } else {
                    Channel::new(address, options.clone())
                }
            });
            echo_callers(cli, &config, concurrency, channels);
        }
        Protocol::Grpc => {
            if cli.attachment_size > 0 {
                fail(2, "--attachment-size: gRPC has no attachments (baidu_std has)");
            }
            let channels = channels_per_address(&addresses, connections, |address| {
                if naming {
                    GrpcChannel::with_naming(address, &cli.lb, options.clone())
                } else {
                    GrpcChannel::new(address, options.clone())
                }
            });
            echo_callers(cli, &config, concurrency, channels);
        }
        Protocol::Http => fail(
            2,
            "the echo benchmark speaks baidu_std or grpc; for HTTP give --proto, --method and --input",
        ),
    }
}

/// `connections` channels to each of `addresses`, interleaved (address 0,
/// 1, …, then again), so callers taken in turn land on each address in turn.
fn channels_per_address<C>(
    addresses: &[&str],
    connections: usize,
    open: impl Fn(&str) -> Result<C, fibrpc::RpcError>,
) -> Vec<C> {
    (0..connections)
        .flat_map(|_| addresses.iter())
        .map(|address| open(address).unwrap_or_else(bad_server(address)))
        .collect()
}

/// Exits (status 1) saying that `server` cannot be used.
fn bad_server<T>(server: &str) -> impl FnOnce(fibrpc::RpcError) -> T + '_ {
    move |e| fail(1, &format!("bad server {server}: {e}"))
}

/// Runs the echo benchmark's `concurrency` callers, caller `i` on
/// `channels[i % channels.len()]`.
fn echo_callers<C>(cli: &Cli, config: &PressConfig, concurrency: usize, channels: Vec<C>)
where
    C: RpcChannel + Clone + Send + 'static,
{
    let press = Press::new(concurrency);
    let message = "x".repeat(cli.request_size);
    let attachment = IOBuf::from(&vec![b'a'; cli.attachment_size][..]);
    let callers: Vec<_> = (0..concurrency)
        .map(|i| {
            let client = EchoServiceClient::new(channels[i % channels.len()].clone());
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
    press.run(config);
    for c in callers {
        let _ = c.join();
    }
}
