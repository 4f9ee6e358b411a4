//! gRPC on fibrpc's HTTP/2 server, called by a real gRPC client: Python
//! grpcio (`tests/data/grpc/echo_client.py`), its stubs generated at test
//! time from the example's `echo.proto` with grpcio-tools. The services
//! are the ones baidu_std serves.
//!
//! grpcio and grpcio-tools must be installed (`pip install grpcio
//! grpcio-tools`): a test that cannot run them fails.

mod h2_common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use fibrpc::tls::TlsServerConfig;
use fibrpc::{Server, ServerOptions};
use h2_common::*;

fn start(options: ServerOptions) -> (Server, SocketAddr) {
    let mut server = Server::new(options);
    server
        .add_service(fibrpc_example::EchoServiceServer::new(GenEcho))
        .unwrap();
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();
    (server, addr)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fibrpc-grpc-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the Python client with `cases` against `target`; its output
/// lines, one per case.
fn python(target: &str, ca: Option<&Path>, cases: &[&str], out: &Path) -> Vec<String> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = here.join("tests/data/grpc/echo_client.py");
    let protos = here.join("../example/proto");
    let ca = ca.map_or("-".to_string(), |p| p.display().to_string());
    let mut args = vec![
        script.display().to_string(),
        protos.display().to_string(),
        out.display().to_string(),
        target.to_string(),
        ca,
    ];
    args.extend(cases.iter().map(|c| c.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run_peer("python3", &args, 120);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the grpcio client failed ({:?}; is `pip install grpcio grpcio-tools` done?): {stderr}",
        output.status
    );
    let lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), cases.len(), "{lines:?} {stderr}");
    lines
}

#[test]
fn grpcio_unary_calls() {
    let (_server, addr) = start(ServerOptions::default());
    let out = scratch("unary");
    let got = python(
        &addr.to_string(),
        None,
        &[
            "echo:hello",
            "echo:héllo wörld",
            "echo:",
            "gzip",
            "big",
            "missing",
            "echo:deadline",
            "echo:fail:2004",
            "echo:fail:2003",
            "echo:fail:1008",
            "echo:fail:1003",
            "echo:fail:2001",
        ],
        &out,
    );
    assert_eq!(got[0], "echo:hello ok 5 hello");
    assert_eq!(got[1], "echo:héllo wörld ok 11 héllo wörld");
    assert_eq!(got[2], "echo: ok 0 ");
    assert_eq!(
        got[3],
        format!("gzip ok 1100 {}", &"compressed ".repeat(3)[..32])
    );
    assert_eq!(got[4], format!("big ok {} {}", 16 << 20, "x".repeat(32)));
    // UNIMPLEMENTED, with bRPC's text.
    assert!(
        got[5].starts_with("missing status 12 [E1001]"),
        "{}",
        got[5]
    );
    // grpc-timeout (30 s) became the handler's deadline.
    let ms: u64 = got[6]
        .strip_prefix("echo:deadline ok ")
        .and_then(|r| r.split(' ').nth(2))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{}", got[6]));
    // (grpcio rounds its deadline up a little.)
    assert!(ms > 20_000 && ms <= 31_000, "{}", got[6]);
    // bRPC's ErrorCodeToGrpcStatus: ELIMIT → RESOURCE_EXHAUSTED, ELOGOFF →
    // UNAVAILABLE, ERPCTIMEDOUT → DEADLINE_EXCEEDED, EREQUEST →
    // INVALID_ARGUMENT, others INTERNAL; grpc-message says the error.
    assert_eq!(got[7], "echo:fail:2004 status 8 [E2004]asked to fail");
    assert_eq!(got[8], "echo:fail:2003 status 14 [E2003]asked to fail");
    assert_eq!(got[9], "echo:fail:1008 status 4 [E1008]asked to fail");
    assert_eq!(got[10], "echo:fail:1003 status 3 [E1003]asked to fail");
    assert_eq!(got[11], "echo:fail:2001 status 13 [E2001]asked to fail");
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn grpcio_over_tls_negotiates_h2_by_alpn() {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "fibrpc grpc test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
    let out = scratch("tls");
    let ca_file = out.join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    let (_server, addr) = start(ServerOptions {
        tls: Some(
            TlsServerConfig::from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes())
                .unwrap(),
        ),
        tls_required: true,
        ..Default::default()
    });
    let target = format!("localhost:{}", addr.port());
    let got = python(&target, Some(&ca_file), &["echo:over tls"], &out);
    assert_eq!(got[0], "echo:over tls ok 8 over tls");
    let _ = std::fs::remove_dir_all(out);
}
