//! Shared pieces of the TCP echo benchmark (issue 4). The flag parser and
//! the `/proc` readers for a server's CPU time and RSS are `fibrpc-tools`'
//! (shared with the RPC benchmark), re-exported here.
//!
//! The binaries are `fibrpc-echo-bench` (the closed-loop load generator),
//! `tokio_echo_server` and `may_echo_server` (the peers fibrpc's
//! `tcp_echo_server` example is compared with); `run.sh` drives them.

pub use fibrpc_tools::{cli, proc_stats};

/// Per-connection buffer size of every echo server, as in bRPC's echo
/// example: one read of at most this many bytes, then one write of them.
pub const ECHO_BUF_SIZE: usize = 4096;

/// Listen backlog of every echo server (fibrpc's listener uses the same), so
/// that a burst of 10k connects meets the same accept queue everywhere.
pub const LISTEN_BACKLOG: u32 = 1024;

/// Prints the line `run.sh` waits for (`listening on ADDR`) and flushes it:
/// stdout is a pipe or file there, so it would otherwise sit in a buffer.
pub fn announce_listening(addr: std::net::SocketAddr) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    // A closed stdout only means nobody waits for the line; keep serving.
    let _ = writeln!(out, "listening on {addr}");
    let _ = out.flush();
}

/// Parses `--port P` and `--workers W` for an echo server, with defaults.
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
