//! Shared pieces of the TCP echo benchmark. The flag parser and
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

pub use fibrpc_tools::cli::{announce_listening, server_flags};
