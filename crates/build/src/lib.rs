//! fibrpc-build: compiles `.proto` files into messages (by `prost`) and,
//! per service, a trait, a server wrapper and a client stub for `fibrpc`.
//!
//! Use it from `build.rs`:
//!
//! ```no_run
//! // build.rs
//! fn main() -> std::io::Result<()> {
//!     fibrpc_build::compile_protos(&["proto/echo.proto"], &["proto"])
//! }
//! ```
//!
//! and include the output, one file per protobuf package, in the crate:
//!
//! ```ignore
//! pub mod example {
//!     include!(concat!(env!("OUT_DIR"), "/example.rs"));
//! }
//! ```
//!
//! The crate needs `fibrpc` and `prost` as dependencies (the messages
//! derive `prost::Message`). For service `Foo` in package `pkg` the output
//! has:
//!
//! - `trait Foo`: one synchronous method per RPC, in snake case
//!   (`fn echo(&self, cntl: &mut Controller, request: EchoRequest) ->
//!   Result<EchoResponse, RpcError>`); the server runs each call in a fiber,
//!   so the method may block.
//! - `FooServer<T: Foo>`: implements `fibrpc::Service` for an
//!   implementation of the trait; hand it to the server.
//! - `FooClient<C = fibrpc::Channel>`: wraps a `fibrpc::Channel`
//!   (baidu_std) or any `fibrpc::RpcChannel`, such as a
//!   `fibrpc::GrpcChannel` (gRPC, `/pkg.Foo/Method`), with four forms per RPC:
//!   `echo_simple(&request)` waits with the channel's settings and no
//!   controller; `echo` waits (`fn echo(&self, cntl: &mut Controller, request:
//!   &EchoRequest) -> Result<EchoResponse, RpcError>`), `echo_async` runs
//!   a callback (`fn echo_async(&self, cntl: Controller, request:
//!   &EchoRequest, done: impl FnOnce(Controller, Result<EchoResponse,
//!   RpcError>) + Send + 'static)`), and `echo_future` returns a `Future`
//!   for any executor (`fn echo_future(&self, cntl: Controller, request:
//!   &EchoRequest) -> impl Future<Output = (Controller,
//!   Result<EchoResponse, RpcError>)> + Send + 'static`). A method whose
//!   name is a Rust keyword keeps its `r#` (`r#match`) but its other forms
//!   need none (`match_simple`, `match_async`, `match_future`).
//! - `FOO_SERVICE_NAME` (`"pkg.Foo"`) and `FOO_SERVICE_METHOD_NAMES`. A
//!   service whose name already ends in `Service` is not doubled:
//!   `EchoService` gives `ECHO_SERVICE_NAME`.
//!
//! For the services named by [`Builder::deferred`] (`"pkg.Foo"`, or `"*"`
//! for all), the output also has the deferred form, for handlers that
//! answer later without holding a fiber (bRPC's `done->Run()`):
//!
//! - `trait FooDeferred`: one method per RPC that starts the work and
//!   returns (`fn echo(&self, request: EchoRequest, done:
//!   fibrpc::server::TypedResponder<EchoResponse>)`). The handler answers
//!   with `done.send(Ok(response))` (or `Err`) from any fiber, thread or
//!   callback; no fiber is held while it waits; a responder dropped
//!   without answering answers `EINTERNAL`; `done.controller()` is the
//!   request's controller.
//! - `FooDeferredServer<T: FooDeferred>`: implements `fibrpc::Service`
//!   with every method deferring (`defers` is true, the work is in
//!   `call_method_deferred`); a request that does not decode is answered
//!   `EREQUEST` without calling the handler.
//!
//! Proto comments become doc comments; items without one get a generated
//! doc, so a crate with `#![warn(missing_docs)]` stays quiet about
//! services (document your messages and fields in the `.proto` for the
//! same about messages).
//!
//! Streaming RPCs (gRPC's server, client and bidirectional streaming)
//! are served over gRPC only; in the trait they take the call's stream
//! handles from `fibrpc::protocol::grpc` instead of a request and a
//! response:
//!
//! - server streaming: `fn watch(&self, cntl: &mut Controller, request:
//!   WatchRequest, responses: ServerStreamWriter<Event>) -> Result<(),
//!   RpcError>` (`responses.send(&event)?` per message);
//! - client streaming: `fn upload(&self, cntl: &mut Controller, requests:
//!   ClientStreamReader<Chunk>) -> Result<Summary, RpcError>`
//!   (`requests.recv()?` until `None`);
//! - bidirectional: `fn chat(&self, cntl: &mut Controller, stream:
//!   BidiStream<Note, Note>) -> Result<(), RpcError>`.
//!
//! `recv` and `send` suspend the handler's fiber (`send` while the
//! client's flow-control window holds back too much); the call ends with
//! the returned status in gRPC's trailers. The deferred trait has the
//! same methods for them. Over baidu_std and HTTP a streaming method
//! answers `ENOMETHOD` ("served over gRPC only"), and the baidu_std
//! client stub has no form for it.
//!
//! `protoc` comes from the `protoc-bin-vendored` crate, so nothing needs
//! to be installed; set `PROTOC` to use another one.

mod generator;

use std::io;
use std::path::{Path, PathBuf};

use generator::FibrpcServiceGenerator;

/// Compiles `protos` (found under `includes`) into `OUT_DIR` with the
/// default settings; see [`Builder`] for the others.
pub fn compile_protos(
    protos: &[impl AsRef<Path>],
    includes: &[impl AsRef<Path>],
) -> io::Result<()> {
    Builder::new().compile_protos(protos, includes)
}

/// Starts a [`Builder`] (the name `tonic-build` uses).
pub fn configure() -> Builder {
    Builder::new()
}

/// Settings for one compilation: where the fibrpc runtime is, the `prost`
/// configuration, the output directory.
pub struct Builder {
    runtime_path: String,
    prost_config: Option<prost_build::Config>,
    out_dir: Option<PathBuf>,
    emit_rerun_if_changed: bool,
    deferred: Vec<String>,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder::new()
    }
}

impl Builder {
    /// The defaults: runtime at `::fibrpc`, a fresh `prost_build::Config`,
    /// output to `OUT_DIR`, `cargo:rerun-if-changed` lines on.
    pub fn new() -> Builder {
        Builder {
            runtime_path: "::fibrpc".to_string(),
            prost_config: None,
            out_dir: None,
            emit_rerun_if_changed: true,
            deferred: Vec::new(),
        }
    }

    /// The path generated code uses for the fibrpc crate. The default,
    /// `::fibrpc`, fits every crate but `fibrpc` itself, which uses
    /// `crate`; a crate that renames its dependency passes the new name.
    pub fn runtime_path(mut self, path: impl Into<String>) -> Builder {
        self.runtime_path = path.into();
        self
    }

    /// Uses `config` for the messages (attributes, `bytes` fields, map
    /// types...). Its service generator is replaced by fibrpc's, and its
    /// protoc is the vendored one unless it or `PROTOC` names another.
    pub fn prost_config(mut self, config: prost_build::Config) -> Builder {
        self.prost_config = Some(config);
        self
    }

    /// Writes the `.rs` files to `dir` (created if missing) instead of
    /// `OUT_DIR`; needed outside a build script, where `OUT_DIR` is not set.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Builder {
        self.out_dir = Some(dir.into());
        self
    }

    /// Whether to print `cargo:rerun-if-changed` for the protos and the
    /// include directories (on by default), so editing a `.proto`
    /// regenerates the code.
    pub fn emit_rerun_if_changed(mut self, on: bool) -> Builder {
        self.emit_rerun_if_changed = on;
        self
    }

    /// Also generates the deferred form (`FooDeferred` and
    /// `FooDeferredServer`, see the crate docs) for `service`, a fully
    /// qualified name as on the wire (`"example.EchoService"`; a leading
    /// `.` is ignored). Call it once per service; `"*"` is every service.
    /// The synchronous trait and its wrapper are generated either way.
    pub fn deferred(mut self, service: impl Into<String>) -> Builder {
        self.deferred.push(service.into());
        self
    }

    /// Compiles `protos`, resolving imports under `includes`. Fails on a
    /// protoc error or an unwritable output directory.
    pub fn compile_protos(
        self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> io::Result<()> {
        let mut config = self.prost_config.unwrap_or_default();
        let mut includes: Vec<PathBuf> = includes.iter().map(|p| p.as_ref().into()).collect();
        if self.emit_rerun_if_changed {
            for path in protos
                .iter()
                .map(AsRef::as_ref)
                .chain(includes.iter().map(|p| p.as_path()))
            {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
        if std::env::var_os("PROTOC").is_none() {
            let protoc = protoc_bin_vendored::protoc_bin_path().map_err(io::Error::other)?;
            config.protoc_executable(protoc);
            // The vendored protoc's google/protobuf/*.proto, after the
            // user's includes as prost does with PROTOC_INCLUDE.
            if std::env::var_os("PROTOC_INCLUDE").is_none() {
                includes.push(protoc_bin_vendored::include_path().map_err(io::Error::other)?);
            }
        }
        if let Some(dir) = &self.out_dir {
            std::fs::create_dir_all(dir)?;
            config.out_dir(dir);
        }
        // The descriptors of these files, embedded by the generated
        // services so that a server can transcode JSON (proto3 JSON
        // mapping) for their methods. One file per compilation: a build
        // script may compile several sets into the same directory.
        let out_dir = match &self.out_dir {
            Some(d) => d.clone(),
            None => PathBuf::from(std::env::var_os("OUT_DIR").ok_or_else(|| {
                io::Error::other("OUT_DIR is not set: call from a build script or set out_dir")
            })?),
        };
        let out_dir = std::path::absolute(out_dir)?;
        let descriptor_path = out_dir.join(format!(
            "fibrpc_descriptors_{:016x}.bin",
            fingerprint(protos)
        ));
        config.file_descriptor_set_path(&descriptor_path);
        config.service_generator(Box::new(FibrpcServiceGenerator::new(
            self.runtime_path,
            descriptor_path,
            self.deferred,
        )));
        config.compile_protos(protos, &includes)
    }
}

/// A stable name for a set of protos (FNV-1a over their paths).
fn fingerprint(protos: &[impl AsRef<Path>]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in protos {
        for b in p.as_ref().to_string_lossy().bytes().chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}
