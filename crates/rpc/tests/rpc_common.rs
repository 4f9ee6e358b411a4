//! A hand-written echo service shared by the end-to-end tests (the same
//! shape `fibrpc-build` generates), so they do not depend on codegen.

// Test-only helpers, not an API: each test binary uses a subset.
#![allow(dead_code, missing_docs)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fibrpc::{codec, Controller, IOBuf, RpcError, Server, ServerOptions, Service};

#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoRequest {
    #[prost(string, required, tag = "1")]
    pub message: String,
    /// Test knobs: sleep this long in the handler...
    #[prost(uint32, optional, tag = "2")]
    pub sleep_ms: Option<u32>,
    /// ...or fail with this code...
    #[prost(int32, optional, tag = "3")]
    pub fail_code: Option<i32>,
    /// ...or block the worker's OS thread this long (a misbehaving handler).
    #[prost(uint32, optional, tag = "4")]
    pub block_thread_ms: Option<u32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoResponse {
    #[prost(string, required, tag = "1")]
    pub message: String,
}

pub const SERVICE: &str = "example.EchoService";

#[derive(Default)]
pub struct Echo {
    pub calls: Arc<AtomicUsize>,
}

impl Service for Echo {
    fn service_name(&self) -> &'static str {
        SERVICE
    }
    fn method_names(&self) -> &'static [&'static str] {
        &["Echo"]
    }
    fn call_method(
        &self,
        _method: usize,
        cntl: &mut Controller,
        request: &IOBuf,
    ) -> Result<IOBuf, RpcError> {
        let req: EchoRequest = codec::decode_request(request)?;
        self.calls.fetch_add(1, Ordering::Relaxed);
        if let Some(ms) = req.sleep_ms {
            fibrpc::fiber::sleep(Duration::from_millis(ms.into())).unwrap();
        }
        if let Some(ms) = req.block_thread_ms {
            std::thread::sleep(Duration::from_millis(ms.into()));
        }
        if let Some(code) = req.fail_code {
            return Err(RpcError::new(code, format!("asked to fail with {code}")));
        }
        let att = cntl.request_attachment().clone();
        *cntl.response_attachment_mut() = att;
        Ok(codec::encode(&EchoResponse {
            message: req.message,
        }))
    }
}

pub fn start_server(options: ServerOptions) -> (Server, Arc<AtomicUsize>) {
    let echo = Echo::default();
    let calls = echo.calls.clone();
    let mut server = Server::new(options);
    server.add_service(echo).unwrap();
    server.start("127.0.0.1:0").unwrap();
    (server, calls)
}

pub fn req(msg: &str) -> EchoRequest {
    EchoRequest {
        message: msg.into(),
        sleep_ms: None,
        fail_code: None,
        block_thread_ms: None,
    }
}

pub fn echo(
    ch: &fibrpc::Channel,
    cntl: &mut Controller,
    r: &EchoRequest,
) -> Result<EchoResponse, RpcError> {
    ch.call(SERVICE, "Echo", cntl, r)
}

pub fn code_of<T>(r: &Result<T, RpcError>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.code,
    }
}

/// The server's connection count once it is `n` (it drops a closed
/// connection just after the peer sees the close), or after 5 s.
pub fn wait_for_connections(server: &Server, n: usize) -> usize {
    let t = Instant::now();
    while server.connection_count() != n && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.connection_count()
}

/// A raw baidu_std request frame calling the echo service with `r` under
/// correlation id `corr` (for tests that speak to the server over plain
/// sockets).
pub fn echo_frame(corr: i64, r: &EchoRequest) -> Vec<u8> {
    use fibrpc::protocol::baidu_std::{self, RpcMeta, RpcRequestMeta};
    let meta = RpcMeta {
        request: Some(RpcRequestMeta {
            service_name: SERVICE.into(),
            method_name: "Echo".into(),
            ..Default::default()
        }),
        correlation_id: Some(corr),
        ..Default::default()
    };
    let mut out = IOBuf::new();
    baidu_std::encode(&meta, &codec::encode(r), &IOBuf::new(), &mut out).unwrap();
    out.to_vec()
}

/// Polls `cond` every 10 ms until it holds or `limit` passes (the
/// etcd tests, which do not include this module, keep their own).
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
