//! Shared pieces of the TCP echo benchmark (issue 4): a tiny flag parser the
//! three binaries use, and `/proc` readers for a server's CPU time and RSS.
//!
//! The binaries are `fibrpc-echo-bench` (the closed-loop load generator),
//! `tokio_echo_server` and `may_echo_server` (the peers fibrpc's
//! `tcp_echo_server` example is compared with); `run.sh` drives them.

pub mod cli;
pub mod procfs;

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
