//! What a TLS server refuses, and how: a client certificate from another
//! CA (curl and a channel), and bad input — garbage after the handshake
//! byte, a truncated handshake, TLS 1.1 (openssl), a client that refuses
//! the certificate for a wrong server name — each closes its own
//! connection only, with a log line naming the peer and the reason. Also
//! a JSON call with `curl -X POST` over TLS.
//!
//! curl and openssl must be installed: a test that cannot run them fails.

mod log_capture;
mod tls_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fibrpc::tls::{TlsClientConfig, TlsServerConfig};
use fibrpc::{errno, Channel, ChannelOptions, Controller, RpcError, Server, ServerOptions};
use fibrpc_example::{
    EchoRequest, EchoResponse, EchoService, EchoServiceClient, EchoServiceServer,
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tls_common::*;

struct Echo;

impl EchoService for Echo {
    fn echo(&self, _: &mut Controller, req: EchoRequest) -> Result<EchoResponse, RpcError> {
        Ok(EchoResponse {
            message: req.message,
        })
    }
}

/// The echo service (JSON over HTTP too) over TLS and plaintext;
/// `client_ca`: mutual TLS, a certificate signed by the test CA
/// required.
fn server(client_ca: bool) -> (Server, SocketAddr) {
    let p = pki();
    let mut tls = TlsServerConfig::from_pem(p.cert_pem.as_bytes(), p.key_pem.as_bytes()).unwrap();
    if client_ca {
        tls = tls.with_client_auth(p.ca_pem.as_bytes(), true).unwrap();
    }
    let mut server = Server::new(ServerOptions {
        tls: Some(tls),
        read_message_timeout: Some(Duration::from_secs(2)),
        ..ServerOptions::default()
    });
    server.add_service(EchoServiceServer::new(Echo)).unwrap();
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();
    (server, addr)
}

/// A client certificate and key from a CA the server does not trust,
/// written to files for curl.
fn stranger() -> (String, String, std::path::PathBuf, std::path::PathBuf) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "stranger CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "stranger");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
    let (cert_file, key_file) = (
        pki().dir.join("stranger.pem"),
        pki().dir.join("stranger.key"),
    );
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    (cert.pem(), key.serialize_pem(), cert_file, key_file)
}

fn curl(args: &[&str], url: &str) -> (bool, String) {
    let out = run(
        Command::new("curl")
            .args(["-sS", "--max-time", "10", "--cacert"])
            .arg(ca_file())
            .args(args)
            .arg(url),
        b"",
    );
    let all =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), all)
}

#[test]
fn curl_posts_a_json_call_over_tls() {
    let (_server, addr) = server(false);
    let url = format!("https://127.0.0.1:{}/EchoService/Echo", addr.port());
    let (ok, out) = curl(
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data",
            r#"{"message":"over tls"}"#,
        ],
        &url,
    );
    assert!(ok, "{out}");
    assert!(out.contains(r#""message":"over tls""#), "{out}");
}

#[test]
fn mutual_tls_refuses_a_certificate_from_another_ca() {
    let (_server, addr) = server(true);
    let (cert, key, cert_file, key_file) = stranger();
    let url = format!("https://127.0.0.1:{}/health", addr.port());
    let (ok, out) = curl(
        &[
            "--cert",
            cert_file.to_str().unwrap(),
            "--key",
            key_file.to_str().unwrap(),
        ],
        &url,
    );
    assert!(!ok, "curl with a stranger's certificate got in: {out}");

    let tls = TlsClientConfig::from_ca_pem(pki().ca_pem.as_bytes())
        .unwrap()
        .with_client_cert_pem(cert.as_bytes(), key.as_bytes())
        .unwrap();
    let options = ChannelOptions {
        tls: Some(tls),
        timeout: Some(Duration::from_secs(5)),
        connect_timeout: Duration::from_secs(5),
        max_retry: 0,
        ..ChannelOptions::default()
    };
    let ch = Channel::new(addr, options).unwrap();
    let req = EchoRequest {
        message: "x".into(),
    };
    let e = EchoServiceClient::new(ch)
        .echo(&mut Controller::new(), &req)
        .unwrap_err();
    assert!(
        e.code == errno::ESSL || e.code == errno::EEOF || e.code == errno::EFAILEDSOCKET,
        "{e}"
    );

    // A certificate the server's CA signed gets in.
    let (cert_file, key_file) = (pki().dir.join("client.pem"), pki().dir.join("client.key"));
    let (ok, out) = curl(
        &[
            "--cert",
            cert_file.to_str().unwrap(),
            "--key",
            key_file.to_str().unwrap(),
        ],
        &url,
    );
    assert!(ok, "{out}");
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Reads until the server closes (EOF or reset), at most 10 s.
fn until_closed(s: &mut impl Read) {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// A rustls client trusting the test CA, verifying the server as `name`.
fn rustls_client(name: &str) -> rustls::ClientConnection {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(pki().ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(name.to_string()).unwrap();
    rustls::ClientConnection::new(Arc::new(config), name).unwrap()
}

/// The log line closing the connection from `peer`, once there is one
/// (10 s at most).
fn closing_line(peer: Option<SocketAddr>, reason: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logged = log_capture::logged();
        let found = logged.lines().find(|l| {
            l.contains("closing connection")
                && l.contains(reason)
                && peer.is_none_or(|p| l.contains(&format!("peer={p}")))
        });
        if let Some(l) = found {
            return l.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no log line closing {peer:?} for {reason:?}:\n{logged}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn bad_tls_input_closes_only_its_connection_with_a_log_line() {
    log_capture::capture(tracing::Level::WARN);
    let (_server, addr) = server(false);
    // A TLS connection opened before, used after.
    let mut good = rustls::StreamOwned::new(rustls_client("localhost"), connect(addr));
    good.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 1024];
    assert!(good.read(&mut buf).unwrap() > 0);

    // Garbage after the handshake byte.
    let mut s = connect(addr);
    s.write_all(b"\x16GARBAGE\r\n\r\n").unwrap();
    until_closed(&mut s);
    closing_line(Some(s.local_addr().unwrap()), "not a TLS record");

    // A truncated handshake: half a ClientHello, then nothing.
    let mut hello = Vec::new();
    let mut c = rustls_client("localhost");
    while c.wants_write() {
        c.write_tls(&mut hello).unwrap();
    }
    let mut s = connect(addr);
    s.write_all(&hello[..hello.len() / 2]).unwrap();
    until_closed(&mut s);
    closing_line(Some(s.local_addr().unwrap()), "read_message_timeout");

    // A client that refuses the certificate for the name it wanted.
    let mut wrong = rustls::StreamOwned::new(rustls_client("wrong.example.com"), connect(addr));
    let e = wrong.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap_err();
    assert!(e.to_string().contains("not valid for name"), "{e}");
    closing_line(
        Some(wrong.sock.local_addr().unwrap()),
        "received fatal alert",
    );

    // TLS 1.1, which rustls does not speak.
    let out = run(
        Command::new("openssl").args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-tls1_1",
            "-cipher",
            "DEFAULT:@SECLEVEL=0",
        ]),
        b"",
    );
    assert!(!out.status.success());
    closing_line(None, "peer is incompatible");

    good.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(
        good.read(&mut buf).unwrap() > 0,
        "the good connection was closed"
    );
}
