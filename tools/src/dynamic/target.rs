//! Where the press sends its requests: already-encoded calls over
//! baidu_std ([`Channel::call_raw`]), HTTP (a `POST /Service/Method`
//! through [`HttpChannel`]) or gRPC (unary calls through
//! [`GrpcChannel::call_raw`]), spread over K connections.

use std::fmt;
use std::str::FromStr;

use fibrpc::http::HttpChannel;
use fibrpc::{Channel, ChannelOptions, Controller, GrpcChannel, IOBuf, RpcError};

/// A wire protocol the press speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// bRPC's baidu_std (`Channel`).
    BaiduStd,
    /// HTTP/1.1: the request body `POST`ed to `/package.Service/Method`.
    Http,
    /// gRPC (unary, over HTTP/2): fibrpc's, tonic's, grpc-go's servers.
    Grpc,
}

impl FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Protocol, String> {
        match s {
            "baidu_std" => Ok(Protocol::BaiduStd),
            "http" => Ok(Protocol::Http),
            "grpc" | "h2:grpc" => Ok(Protocol::Grpc),
            other => Err(format!(
                "unknown protocol {other:?} (baidu_std, http or grpc)"
            )),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::BaiduStd => "baidu_std",
            Protocol::Http => "http",
            Protocol::Grpc => "grpc",
        })
    }
}

/// One request, ready to send as many times as the run wants.
#[derive(Debug, Clone)]
pub struct Call {
    /// How it goes.
    pub protocol: Protocol,
    /// The service's full name.
    pub service: String,
    /// The method's name.
    pub method: String,
    /// The body: protobuf, or JSON for HTTP when `content_type` says so.
    pub body: IOBuf,
    /// HTTP's `Content-Type` (`application/json` or `application/proto`;
    /// unused by baidu_std and gRPC).
    pub content_type: &'static str,
    /// baidu_std's attachment.
    pub attachment: IOBuf,
}

/// The channels of a run: `connections` of each protocol the calls use.
pub struct Targets {
    baidu: Vec<Channel>,
    http: Vec<HttpChannel>,
    grpc: Vec<GrpcChannel>,
}

impl Targets {
    /// Channels to `server` (for baidu_std and gRPC also a naming URL,
    /// balanced by `lb`), `connections` of each protocol in `protocols`.
    /// Each baidu_std and gRPC channel has its own connection(s), so K
    /// channels are K connections with the default single connection
    /// type (gRPC's calls are streams multiplexed on it); HTTP channels
    /// pool connections (one request at a time each).
    pub fn new(
        server: &str,
        lb: &str,
        options: &ChannelOptions,
        connections: usize,
        protocols: &[Protocol],
    ) -> Result<Targets, String> {
        let bad = |e: RpcError| format!("bad server {server}: {e}");
        let mut targets = Targets {
            baidu: Vec::new(),
            http: Vec::new(),
            grpc: Vec::new(),
        };
        for _ in 0..connections.max(1) {
            if protocols.contains(&Protocol::BaiduStd) {
                let ch = if server.contains("://") {
                    Channel::with_naming(server, lb, options.clone())
                } else {
                    Channel::new(server, options.clone())
                };
                targets.baidu.push(ch.map_err(bad)?);
            }
            if protocols.contains(&Protocol::Http) {
                if server.contains("://") && !server.starts_with("http://") {
                    return Err(format!(
                        "--protocol http takes host:port, not the naming URL {server}"
                    ));
                }
                targets
                    .http
                    .push(HttpChannel::new(server, options.clone()).map_err(bad)?);
            }
            if protocols.contains(&Protocol::Grpc) {
                let ch = if server.contains("://") {
                    GrpcChannel::with_naming(server, lb, options.clone())
                } else {
                    GrpcChannel::new(server, options.clone())
                };
                targets.grpc.push(ch.map_err(bad)?);
            }
        }
        Ok(targets)
    }

    /// Sends `call` on connection `conn` (modulo the count) and waits.
    pub fn call(&self, conn: usize, call: &Call) -> Result<(), String> {
        let mut cntl = Controller::new();
        match call.protocol {
            Protocol::BaiduStd => {
                *cntl.request_attachment_mut() = call.attachment.clone();
                let ch = &self.baidu[conn % self.baidu.len()];
                ch.call_raw(&call.service, &call.method, &mut cntl, call.body.clone())
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
            Protocol::Http => {
                let ch = &self.http[conn % self.http.len()];
                http_outcome(ch.request(&mut cntl, http_request(call)?))
            }
            Protocol::Grpc => {
                let ch = &self.grpc[conn % self.grpc.len()];
                ch.call_raw(&call.service, &call.method, &mut cntl, call.body.clone())
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Sends `call` on connection `conn` and returns at once; `done` gets
    /// the outcome (in a fiber of its own).
    pub fn call_async(
        &self,
        conn: usize,
        call: &Call,
        done: impl FnOnce(Result<(), String>) + Send + 'static,
    ) {
        let mut cntl = Controller::new();
        match call.protocol {
            Protocol::BaiduStd => {
                *cntl.request_attachment_mut() = call.attachment.clone();
                let ch = &self.baidu[conn % self.baidu.len()];
                ch.call_raw_async(
                    &call.service,
                    &call.method,
                    cntl,
                    call.body.clone(),
                    move |_, r| done(r.map(drop).map_err(|e| e.to_string())),
                );
            }
            Protocol::Http => match http_request(call) {
                Ok(req) => {
                    self.http[conn % self.http.len()]
                        .request_async(cntl, req, move |_, r| done(http_outcome(r)))
                }
                Err(e) => done(Err(e)),
            },
            Protocol::Grpc => self.grpc[conn % self.grpc.len()].call_raw_async(
                &call.service,
                &call.method,
                cntl,
                call.body.clone(),
                move |_, r| done(r.map(drop).map_err(|e| e.to_string())),
            ),
        }
    }
}

fn http_request(call: &Call) -> Result<fibrpc::http::Request<IOBuf>, String> {
    fibrpc::http::Request::post(format!("/{}/{}", call.service, call.method))
        .header(fibrpc::http::header::CONTENT_TYPE, call.content_type)
        .body(call.body.clone())
        .map_err(|e| format!("cannot make the HTTP request: {e}"))
}

/// A response other than 2xx is a failed call.
fn http_outcome(r: Result<fibrpc::http::Response<IOBuf>, RpcError>) -> Result<(), String> {
    let resp = r.map_err(|e| e.to_string())?;
    if resp.status().is_success() {
        return Ok(());
    }
    let body = resp.body().to_vec();
    let text = String::from_utf8_lossy(&body[..body.len().min(200)])
        .trim()
        .to_string();
    Err(format!("HTTP {}: {text}", resp.status()))
}
