//! End-to-end smoke test: tonic_echo_server on a free port, tonic_press
//! (and fibrpc_grpc_press, fibrpc's gRPC client) against it for a second,
//! checking that calls flow
//! without errors and that the RESULT line carries the server's figures.
//! Also idle_conns against the same server. Not a benchmark.

use std::process::Command;

use fibrpc_tools::child::ServerChild;
use fibrpc_tools::press::json_field as field;

/// Starts tonic_echo_server with `--port 0` (killed when dropped) and
/// returns its port, from its `LISTENING <port>` line.
fn start_tonic() -> (ServerChild, u16) {
    let server = ServerChild::start(
        env!("CARGO_BIN_EXE_tonic_echo_server"),
        &["--port", "0", "--threads", "1"],
    );
    let port = server
        .announced("LISTENING ")
        .parse()
        .expect("a port number");
    (server, port)
}

#[test]
fn tonic_press_against_tonic_echo_server() {
    let (server, port) = start_tonic();
    let output = Command::new(env!("CARGO_BIN_EXE_tonic_press"))
        .args([
            "--server",
            &format!("127.0.0.1:{port}"),
            "--concurrency",
            "2",
            "--duration",
            "1",
            "--warmup",
            "0.2",
            "--request-size",
            "100",
            "--threads",
            "1",
            "--server-pid",
            &server.pid().to_string(),
        ])
        .output()
        .expect("running tonic_press");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "tonic_press failed: {stdout}{stderr}"
    );
    let result = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line in {stdout}"));
    let calls: u64 = field(result, "calls").parse().unwrap();
    assert!(calls > 0, "{result}");
    assert_eq!(field(result, "errors"), "0", "{result}");
    let qps: f64 = field(result, "qps").parse().unwrap();
    assert!(qps > 0.0, "{result}");
    let rss: u64 = field(result, "server_rss_kb").parse().unwrap();
    assert!(rss > 0, "{result}");
    let cpu: f64 = field(result, "server_cpu_per_100k_s").parse().unwrap();
    assert!(cpu >= 0.0, "{result}");
    assert!(
        stdout.contains("[t=1s] qps="),
        "no per-second line: {stdout}"
    );
}

#[test]
fn fibrpc_grpc_press_against_tonic_echo_server() {
    let (server, port) = start_tonic();
    let output = Command::new(env!("CARGO_BIN_EXE_fibrpc_grpc_press"))
        .args([
            "--server",
            &format!("127.0.0.1:{port}"),
            "--concurrency",
            "4",
            "--duration",
            "1",
            "--warmup",
            "0.2",
            "--threads",
            "1",
            "--server-pid",
            &server.pid().to_string(),
        ])
        .output()
        .expect("running fibrpc_grpc_press");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "fibrpc_grpc_press failed: {stdout}{stderr}"
    );
    let result = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line in {stdout}"));
    let calls: u64 = field(result, "calls").parse().unwrap();
    assert!(calls > 0, "{result}");
    assert_eq!(field(result, "errors"), "0", "{result}");
    let cpu: f64 = field(result, "client_cpu_per_100k_s").parse().unwrap();
    assert!(cpu >= 0.0, "{result}");
}

#[test]
fn idle_conns_holds_connections() {
    let (_server, port) = start_tonic();
    let output = Command::new(env!("CARGO_BIN_EXE_idle_conns"))
        .args([
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--conns",
            "50",
            "--hold",
            "0.2",
        ])
        .output()
        .expect("running idle_conns");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "idle_conns failed: {stdout}");
    assert!(stdout.starts_with("HOLDING 50 0"), "{stdout}");
}
