//! End-to-end smoke test: each peer echo server against the generator for
//! a fraction of a second, checking that echoes flow without errors and
//! that the result line carries the server's figures. Not a benchmark.

use std::process::Command;

use fibrpc_tools::child::ServerChild;
use fibrpc_tools::press::json_field as field;

/// A server process (killed when dropped) and its address.
struct Server {
    child: ServerChild,
    addr: String,
}

impl Server {
    /// Starts `binary` on a free port and waits for its `listening on` line.
    fn start(binary: &str) -> Server {
        let child = ServerChild::start(binary, &["--port", "0"]);
        let addr = child.announced("listening on ").to_string();
        Server { child, addr }
    }

    /// Runs the generator against this server and returns its RESULT json.
    fn bench(&self, extra: &[&str]) -> String {
        let output = Command::new(env!("CARGO_BIN_EXE_fibrpc-echo-bench"))
            .args([
                "--addr",
                &self.addr,
                "--server-pid",
                &self.child.pid().to_string(),
            ])
            .args(extra)
            .output()
            .expect("running the generator");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "generator failed: {stdout}");
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("RESULT "))
            .unwrap_or_else(|| panic!("no RESULT line in {stdout}"))
            .to_string()
    }
}

fn check_server(binary: &str) {
    let server = Server::start(binary);
    let load = server.bench(&["-c", "20", "-s", "100", "-d", "0.5", "--warmup", "0.1"]);
    assert_eq!(field(&load, "connected"), "20", "{load}");
    let requests: u64 = field(&load, "requests").parse().unwrap();
    assert!(requests > 0, "{load}");
    for errors in ["connect_errors", "resets", "short_echoes"] {
        assert_eq!(field(&load, errors), "0", "{load}");
    }
    assert_ne!(field(&load, "server_cpu_per_100k"), "null", "{load}");
    assert_ne!(field(&load, "server_rss_kib"), "null", "{load}");

    let idle = server.bench(&["--idle", "-c", "200", "-d", "0.3"]);
    assert_eq!(field(&idle, "mode"), "\"idle\"", "{idle}");
    assert_eq!(field(&idle, "connected"), "200", "{idle}");
    assert_ne!(field(&idle, "server_rss_peak_kib"), "null", "{idle}");
}

#[test]
fn tokio_server_echoes_under_load() {
    check_server(env!("CARGO_BIN_EXE_tokio_echo_server"));
}

#[test]
fn may_server_echoes_under_load() {
    check_server(env!("CARGO_BIN_EXE_may_echo_server"));
}

#[test]
fn floor_server_echoes_under_load() {
    check_server(env!("CARGO_BIN_EXE_floor_echo_server"));
}

#[test]
fn refused_connections_are_counted_not_fatal_forever() {
    // Nothing listens on port 1: every connect is refused and retried until
    // the connect timeout, then reported; the run still ends on time.
    let output = Command::new(env!("CARGO_BIN_EXE_fibrpc-echo-bench"))
        .args(["--addr", "127.0.0.1:1", "-c", "3", "-d", "0.1"])
        .args(["--warmup", "0", "--connect-timeout", "0.3"])
        .output()
        .expect("running the generator");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "nothing connected: {stdout}");
    let json = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap();
    assert_eq!(field(json, "connect_errors"), "3", "{json}");
}
