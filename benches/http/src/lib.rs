//! Shared pieces of the HTTP/1.1 plaintext benchmark. The flag
//! parser and the `/proc` readers for a server's CPU time and RSS are
//! `fibrpc-tools`' (shared with the other benchmarks), re-exported here.
//!
//! The binaries are `hyper_hello` and `may_hello` (the peers fibrpc's
//! `http_hello` example is compared with) and `wrk_window` (runs `wrk`
//! while charging the server for its CPU time, and turns wrk's report into
//! one `RESULT` line); `run.sh` drives them.

pub use fibrpc_tools::{cli, proc_stats};

pub mod wrk;

/// The one route every server answers with 200.
pub const HELLO_PATH: &str = "/hello";

/// Its body (13 bytes, `Content-Type: text/plain`).
pub const HELLO_BODY: &str = "Hello, World!";

/// Listen backlog of the hyper server (may's listener and fibrpc's use the
/// same), so 50 connects at once meet the same accept queue everywhere.
pub const LISTEN_BACKLOG: u32 = 1024;

pub use fibrpc_tools::cli::{announce_listening, server_flags};
