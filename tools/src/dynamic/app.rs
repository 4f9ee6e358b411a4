//! `fibrpc_press --proto/--descriptor-set/--replay`: loads the calls,
//! runs them, prints the JSON summary on stdout. Errors are returned as
//! text with the exit status the binary should use.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fibrpc::rpc_dump::{self, DumpRecord};
use fibrpc::{ChannelOptions, IOBuf};

use super::descriptors::{compile_proto, find_method, load_descriptor_set};
use super::input::parse_requests;
use super::run::{run, LoadConfig, Mode};
use super::target::{Call, Protocol, Targets};

/// Where the requests come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// JSON requests of `method`, typed by a `.proto` or a descriptor set.
    Json {
        /// A `.proto` to compile, with extra import paths.
        proto: Option<(PathBuf, Vec<PathBuf>)>,
        /// Or an encoded `FileDescriptorSet`.
        descriptor_set: Option<PathBuf>,
        /// `package.Service/Method`.
        method: String,
        /// The JSON file (`-`: stdin).
        input: PathBuf,
        /// The protocol to send them with.
        protocol: Protocol,
    },
    /// The records of an rpc dump directory, each with its protocol
    /// unless `protocol` overrides it.
    Replay {
        /// The dump directory.
        dir: PathBuf,
        /// Send every record with this protocol instead.
        protocol: Option<Protocol>,
    },
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The requests.
    pub source: Source,
    /// `host:port` or a naming URL.
    pub server: String,
    /// The load balancer for a naming URL.
    pub lb: String,
    /// Channel options (timeout, TLS, connection type).
    pub options: ChannelOptions,
    /// Channels per protocol.
    pub connections: usize,
    /// How the run goes.
    pub load: LoadConfig,
}

/// A failure and the exit status for it.
#[derive(Debug)]
pub struct AppError {
    /// 2: bad flags or input; 1: the run itself failed.
    pub status: i32,
    /// What went wrong.
    pub message: String,
}

fn usage_error(message: String) -> AppError {
    AppError { status: 2, message }
}

/// Loads the calls `source` describes.
pub fn load_calls(source: &Source) -> Result<Vec<Call>, AppError> {
    match source {
        Source::Json {
            proto,
            descriptor_set,
            method,
            input,
            protocol,
        } => {
            let pool = match (proto, descriptor_set) {
                (Some((p, includes)), _) => compile_proto(p, includes),
                (None, Some(d)) => load_descriptor_set(d),
                (None, None) => Err("--method needs --proto or --descriptor-set".into()),
            }
            .map_err(usage_error)?;
            let md = find_method(&pool, method).map_err(usage_error)?;
            let text = read_input(input).map_err(usage_error)?;
            let requests = parse_requests(&text, &input.display().to_string(), &md.input())
                .map_err(usage_error)?;
            let service = md.parent_service().full_name().to_string();
            Ok(requests
                .into_iter()
                .map(|r| {
                    let (body, content_type) = match protocol {
                        Protocol::BaiduStd => (r.pb, "application/proto"),
                        Protocol::Http => (r.json, "application/json"),
                        Protocol::Grpc => (r.pb, "application/grpc"),
                    };
                    Call {
                        protocol: *protocol,
                        service: service.clone(),
                        method: md.name().to_string(),
                        body: IOBuf::from(body),
                        content_type,
                        attachment: IOBuf::new(),
                    }
                })
                .collect())
        }
        Source::Replay { dir, protocol } => {
            let records = rpc_dump::read_dir(dir)
                .map_err(|e| usage_error(format!("--replay {}: {e}", dir.display())))?;
            if records.is_empty() {
                return Err(usage_error(format!(
                    "--replay {}: no dumped requests",
                    dir.display()
                )));
            }
            records
                .into_iter()
                .map(|r| replay_call(r, *protocol))
                .collect::<Result<_, _>>()
                .map_err(usage_error)
        }
    }
}

fn replay_call(r: DumpRecord, protocol: Option<Protocol>) -> Result<Call, String> {
    let protocol = match protocol {
        Some(p) => p,
        None => r
            .protocol
            .parse()
            .map_err(|e| format!("a dumped {}/{}: {e}", r.service, r.method))?,
    };
    Ok(Call {
        protocol,
        service: r.service,
        method: r.method,
        body: IOBuf::from(r.request),
        // Dumps hold protobuf whatever the protocol carried.
        content_type: "application/proto",
        attachment: IOBuf::from(r.attachment),
    })
}

fn read_input(path: &Path) -> Result<String, String> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| format!("--input -: {e}"))?;
        return Ok(s);
    }
    std::fs::read_to_string(path).map_err(|e| format!("--input {}: {e}", path.display()))
}

/// Runs `config` and returns the JSON summary. A run in which every call
/// failed is an error (status 1) carrying the first call's error.
pub fn run_app(config: &AppConfig) -> Result<serde_json::Value, AppError> {
    let calls = load_calls(&config.source)?;
    let mut protocols: Vec<Protocol> = calls.iter().map(|c| c.protocol).collect();
    protocols.sort_by_key(|p| *p as u8);
    protocols.dedup();
    let targets = Targets::new(
        &config.server,
        &config.lb,
        &config.options,
        config.connections,
        &protocols,
    )
    .map_err(|message| AppError { status: 1, message })?;
    let mut load = config.load.clone();
    if let (Source::Replay { .. }, None) = (&config.source, load.count) {
        // A replay sends every record once unless told otherwise.
        load.count = Some(calls.len() as u64);
    }
    let (summary, stats) = run(Arc::new(targets), Arc::new(calls), &load);
    let mut extra = serde_json::Map::new();
    let (mode, target) = match load.mode {
        Mode::Open { qps, .. } => ("open", serde_json::json!(qps)),
        Mode::Closed { .. } => ("closed", serde_json::Value::Null),
    };
    extra.insert("mode".into(), mode.into());
    extra.insert("target_qps".into(), target);
    if let Mode::Closed { concurrency } = load.mode {
        extra.insert("concurrency".into(), concurrency.into());
    }
    extra.insert("connections".into(), config.connections.into());
    let names: Vec<String> = protocols.iter().map(|p| p.to_string()).collect();
    extra.insert("protocol".into(), names.join(",").into());
    if let Some(e) = stats.first_error() {
        extra.insert("first_error".into(), e.clone().into());
        if summary.count == 0 {
            return Err(AppError {
                status: 1,
                message: format!("every call failed; the first: {e}"),
            });
        }
    }
    Ok(summary.to_json(extra))
}

/// The default wait for calls in flight when sending stops: the call
/// timeout and a little more, or 5 s without one.
pub fn drain_for(options: &ChannelOptions) -> Duration {
    options
        .timeout
        .map_or(Duration::from_secs(5), |t| t + Duration::from_millis(500))
}
