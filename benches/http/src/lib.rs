//! Shared pieces of the HTTP/1.1 plaintext benchmark (issue 6). The flag
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

/// Prints the line `run.sh` and the smoke test wait for (`listening on
/// ADDR`) and flushes it: stdout is a pipe or file there, so it would
/// otherwise sit in a buffer.
pub fn announce_listening(addr: std::net::SocketAddr) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    // A closed stdout only means nobody waits for the line; keep serving.
    let _ = writeln!(out, "listening on {addr}");
    let _ = out.flush();
}

/// Parses `--port P` and `--workers W` for a hello server, with defaults
/// (`--port 0` = any free port, reported by [`announce_listening`]).
pub fn server_flags(usage: &'static str, default_port: u16) -> (u16, usize) {
    let mut args = cli::Args::from_env(usage);
    let (mut port, mut workers) = (default_port, 2);
    while let Some(flag) = args.next_flag() {
        match flag.as_str() {
            "--port" | "-p" => port = args.value(&flag),
            "--workers" | "-w" => workers = args.value(&flag),
            other => args.unknown(other),
        }
    }
    if workers == 0 {
        args.fail("--workers must be at least 1");
    }
    (port, workers)
}
