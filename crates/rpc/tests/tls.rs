//! TLS on a server's port, with real clients: curl, `openssl s_client`,
//! and a rustls client driven by hand for the hostile cases. A CA and a
//! server certificate for 127.0.0.1 are made at test time (rcgen).
//!
//! curl and openssl must be installed: a test that cannot run them fails.

mod rpc_common;
mod tls_common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fibrpc::tls::TlsServerConfig;
use fibrpc::{Server, ServerOptions};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rpc_common::*;
use rustls::pki_types::ServerName;
use tls_common::*;

fn tls_options(required: bool) -> ServerOptions {
    let p = pki();
    ServerOptions {
        tls: Some(TlsServerConfig::from_pem(p.cert_pem.as_bytes(), p.key_pem.as_bytes()).unwrap()),
        tls_required: required,
        read_message_timeout: Some(Duration::from_secs(1)),
        ..ServerOptions::default()
    }
}

/// The echo service, and `/big`: 1 MiB over HTTP.
fn tls_server(required: bool) -> (Server, SocketAddr) {
    let mut server = Server::new(tls_options(required));
    server.add_service(Echo::default()).unwrap();
    server
        .add_http_handler(
            "/big",
            |_: fibrpc::http::Request<fibrpc::IOBuf>, _: &fibrpc::http::HttpContext| {
                let body: Vec<u8> = (0..BIG).map(|i| (i % 251) as u8).collect();
                fibrpc::http::text(fibrpc::http::StatusCode::OK, body)
            },
        )
        .unwrap();
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();
    (server, addr)
}

const BIG: usize = 1 << 20;

/// A rustls client config trusting the test CA, offering `alpn`.
fn client_config(alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(pki().ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

fn client_conn(alpn: &[&[u8]]) -> rustls::ClientConnection {
    let name = ServerName::IpAddress("127.0.0.1".parse::<std::net::IpAddr>().unwrap().into());
    rustls::ClientConnection::new(client_config(alpn), name).unwrap()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// One HTTP/1.1 exchange over a fresh TLS connection (rustls client);
/// returns the response head and body, and the negotiated ALPN.
fn https_get(addr: SocketAddr, path: &str, alpn: &[&[u8]]) -> (String, Option<Vec<u8>>) {
    let mut tls = rustls::StreamOwned::new(client_conn(alpn), connect(addr));
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    tls.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    // The server ends with a close_notify after `Connection: close`: a
    // clean end, not a truncation (which rustls reports as an error).
    if let Err(e) = tls.read_to_end(&mut out) {
        panic!("TLS read: {e} (after {} bytes)", out.len());
    }
    let alpn = tls.conn.alpn_protocol().map(<[u8]>::to_vec);
    (String::from_utf8_lossy(&out).into_owned(), alpn)
}

/// One plaintext HTTP/1.1 exchange; what came back before the close.
fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = connect(addr);
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    String::from_utf8_lossy(&read_until_closed(&mut s)).into_owned()
}

/// Reads until EOF or reset; panics if the connection is still open
/// after 10 s.
fn read_until_closed(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return out,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("the server did not close the connection within 10 s")
            }
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// One whole HTTP/1.1 response (head and `Content-Length` body).
fn read_response(r: &mut impl Read) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(head) = text.find("\r\n\r\n") {
            let len: usize = text[..head]
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .map_or(0, |v| v.trim().parse().unwrap());
            if got.len() >= head + 4 + len {
                return text;
            }
        }
        let n = r.read(&mut buf).unwrap();
        assert!(n > 0, "closed mid-response: {text}");
        got.extend_from_slice(&buf[..n]);
    }
}

/// A real ClientHello (one or more records) as a client sends it first.
fn client_hello() -> Vec<u8> {
    let mut conn = client_conn(&[b"http/1.1"]);
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).unwrap();
    }
    out
}

#[test]
fn curl_gets_status_over_tls() {
    let (_server, addr) = tls_server(false);
    let out = run(
        Command::new("curl")
            .arg("-sS")
            .arg("--max-time")
            .arg("10")
            .arg("--cacert")
            .arg(ca_file())
            .arg("-o")
            .arg("/dev/null")
            .arg("-w")
            .arg("%{http_code} %{http_version}")
            .arg(format!("https://127.0.0.1:{}/status", addr.port())),
        b"",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "curl failed: {} {}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    // curl offers h2 and http/1.1; the server prefers http/1.1.
    assert_eq!(stdout, "200 1.1");
}

#[test]
fn openssl_s_client_verifies_the_chain_and_gets_http11() {
    let (_server, addr) = tls_server(false);
    let out = run(
        Command::new("openssl")
            .arg("s_client")
            .arg("-connect")
            .arg(addr.to_string())
            .arg("-alpn")
            .arg("h2,http/1.1")
            .arg("-CAfile")
            .arg(ca_file()),
        b"",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Verify return code: 0 (ok)"),
        "openssl s_client: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ALPN protocol: http/1.1"), "{stdout}");
    // The certificate and its chain: the server's, then the CA that
    // signed it.
    assert!(
        stdout.contains("0 s:CN = fibrpc test server") && stdout.contains("i:CN = fibrpc test CA"),
        "{stdout}"
    );
}

#[test]
fn plaintext_and_tls_share_the_port() {
    let (_server, addr) = tls_server(false);
    let plain = http_get(addr, "/health");
    assert!(plain.starts_with("HTTP/1.1 200"), "{plain}");
    let (tls, alpn) = https_get(addr, "/health", &[b"h2", b"http/1.1"]);
    assert!(tls.starts_with("HTTP/1.1 200"), "{tls}");
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    // baidu_std over the same port in plaintext still works.
    let ch = fibrpc::Channel::new(addr.to_string(), Default::default()).unwrap();
    let mut cntl = fibrpc::Controller::new();
    let resp = echo(&ch, &mut cntl, &req("plain")).unwrap();
    assert_eq!(resp.message, "plain");
}

#[test]
fn console_shows_tls_and_alpn() {
    let (_server, addr) = tls_server(false);
    // The listing is made while this very connection is open.
    let (page, _) = https_get(addr, "/connections", &[b"http/1.1"]);
    assert!(page.contains("(TLS, ALPN http/1.1)"), "{page}");

    // One TLS connection kept open: its own page names the version, the
    // cipher suite and the ALPN.
    let mut tls = rustls::StreamOwned::new(client_conn(&[b"http/1.1"]), connect(addr));
    tls.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"OK\n") {
        let n = tls.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let me = tls.sock.local_addr().unwrap().to_string();
    let list = http_get(addr, "/connections");
    // The protocol cell has spaces: socket_id is the third cell from the
    // end of the row.
    let row: Vec<&str> = list
        .lines()
        .find(|l| l.starts_with(&me))
        .unwrap_or_else(|| panic!("no row for {me}:\n{list}"))
        .split_whitespace()
        .collect();
    let id = row[row.len() - 3];
    let page = http_get(addr, &format!("/connections/{id}"));
    let tls_line = page
        .lines()
        .find(|l| l.starts_with("tls "))
        .unwrap_or_else(|| panic!("{page}"));
    assert!(tls_line.contains("TLSv1_3"), "{tls_line}");
    assert!(tls_line.contains("TLS13_"), "{tls_line}");
    assert!(tls_line.contains("ALPN http/1.1"), "{tls_line}");
    drop(tls);
}

#[test]
fn large_responses_cross_many_records() {
    let (_server, addr) = tls_server(false);
    // 1 MiB: 64 records of at most 16 KiB, written in several writes.
    let mut tls = rustls::StreamOwned::new(client_conn(&[]), connect(addr));
    tls.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    tls.read_to_end(&mut out).unwrap();
    let body_at = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let body = &out[body_at..];
    assert_eq!(body.len(), BIG);
    assert!(body.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
}

#[test]
fn tls_required_refuses_plaintext() {
    let (_server, addr) = tls_server(true);
    let plain = http_get(addr, "/health");
    assert_eq!(plain, "", "plaintext must be closed unanswered");
    let (tls, _) = https_get(addr, "/health", &[]);
    assert!(tls.starts_with("HTTP/1.1 200"), "{tls}");
}

#[test]
fn tls_required_without_config_fails_start() {
    let mut server = Server::new(ServerOptions {
        tls_required: true,
        ..ServerOptions::default()
    });
    assert!(server.start("127.0.0.1:0").is_err());
}

#[test]
fn garbage_after_the_handshake_byte_closes_only_that_connection() {
    let (_server, addr) = tls_server(false);
    // A TLS connection opened before, used after.
    let mut good = rustls::StreamOwned::new(client_conn(&[]), connect(addr));
    good.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let first = read_response(&mut good);
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");

    for garbage in [
        // Not a record at all after 0x16.
        &b"\x16GARBAGE GARBAGE\r\n\r\n"[..],
        // Framed like a handshake record, but not a ClientHello.
        &b"\x16\x03\x01\x00\x08notahelo"[..],
        // A record longer than TLS allows.
        &b"\x16\x03\x01\xff\xff"[..],
    ] {
        let mut s = connect(addr);
        s.write_all(garbage).unwrap();
        let got = read_until_closed(&mut s);
        // Nothing but (perhaps) a TLS alert record comes back.
        assert!(got.is_empty() || got[0] == 21, "{garbage:?}: {got:?}");
    }

    good.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let second = read_response(&mut good);
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
}

#[test]
fn truncated_handshake_closes_the_connection() {
    let (server, addr) = tls_server(false);
    let hello = client_hello();
    let mut s = connect(addr);
    s.write_all(&hello[..hello.len() / 2]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_until_closed(&mut s), b"");
    assert_eq!(wait_for_connections(&server, 0), 0);
    let (tls, _) = https_get(addr, "/health", &[]);
    assert!(tls.starts_with("HTTP/1.1 200"), "{tls}");
}

/// A client that starts a handshake and never finishes it is closed by
/// `read_message_timeout` (1 s here), whether it stops inside a record
/// or between records (where rustls waits for its next flight).
#[test]
fn stalled_handshakes_time_out() {
    let (server, addr) = tls_server(false);
    let hello = client_hello();
    // Inside the ClientHello record.
    let mut partial = connect(addr);
    partial.write_all(&hello[..10]).unwrap();
    // The whole ClientHello; the server answers, the client goes quiet.
    let mut whole = connect(addr);
    whole.write_all(&hello).unwrap();
    let t = Instant::now();
    assert_eq!(read_until_closed(&mut partial), b"");
    let answer = read_until_closed(&mut whole);
    assert_eq!(answer.first(), Some(&22), "the server's handshake flight");
    // Generous: the timeout is 1 s and the ticker looks every 250 ms.
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    assert_eq!(wait_for_connections(&server, 0), 0);
}

#[test]
fn config_errors_are_clear() {
    let p = pki();
    let e = TlsServerConfig::from_pem(b"", p.key_pem.as_bytes()).unwrap_err();
    assert!(e.text.contains("no certificate"), "{e}");
    let e = TlsServerConfig::from_pem(p.cert_pem.as_bytes(), b"junk").unwrap_err();
    assert!(e.text.contains("private key"), "{e}");
    let e = TlsServerConfig::from_pem_files(Path::new("/nonexistent.pem"), "/x").unwrap_err();
    assert!(e.text.contains("/nonexistent.pem"), "{e}");
    let files = TlsServerConfig::from_pem_files(p.dir.join("server.pem"), p.dir.join("server.key"));
    assert!(files.is_ok());
}

fn client_tls() -> fibrpc::tls::TlsClientConfig {
    fibrpc::tls::TlsClientConfig::from_ca_pem(pki().ca_pem.as_bytes()).unwrap()
}

fn tls_channel_options(tls: fibrpc::tls::TlsClientConfig) -> fibrpc::ChannelOptions {
    fibrpc::ChannelOptions {
        tls: Some(tls),
        timeout: Some(Duration::from_secs(5)),
        connect_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

#[test]
fn channel_calls_echo_over_tls() {
    // Plaintext refused: the calls below can only succeed over TLS.
    let (server, addr) = tls_server(true);
    let ch = fibrpc::Channel::new(addr.to_string(), tls_channel_options(client_tls())).unwrap();
    for i in 0..20 {
        let mut cntl = fibrpc::Controller::new();
        let msg = format!("over tls {i}");
        let resp = echo(&ch, &mut cntl, &req(&msg)).unwrap();
        assert_eq!(resp.message, msg);
    }
    // A message larger than a TLS record, and one connection for all.
    let big = "x".repeat(100_000);
    let mut cntl = fibrpc::Controller::new();
    assert_eq!(echo(&ch, &mut cntl, &req(&big)).unwrap().message, big);
    assert_eq!(server.connection_count(), 1);
}

#[test]
fn http_channel_gets_over_tls_with_a_server_name() {
    let (_server, addr) = tls_server(true);
    let tls = client_tls()
        .with_server_name("localhost")
        .unwrap()
        .with_alpn(&[b"http/1.1"]);
    let ch = fibrpc::http::HttpChannel::new(&addr.to_string(), tls_channel_options(tls)).unwrap();
    let resp = ch.get("/health").unwrap();
    assert_eq!(resp.status(), 200);
}

#[test]
fn channel_refuses_a_server_its_cas_did_not_sign() {
    let (_server, addr) = tls_server(true);
    // A CA of its own, which did not sign the server's certificate.
    let other_key = KeyPair::generate().unwrap();
    let mut other = CertificateParams::new(Vec::<String>::new()).unwrap();
    other.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let other_ca = other.self_signed(&other_key).unwrap();
    let tls = fibrpc::tls::TlsClientConfig::from_ca_pem(other_ca.pem().as_bytes()).unwrap();
    let ch = fibrpc::Channel::new(addr.to_string(), tls_channel_options(tls)).unwrap();
    let mut cntl = fibrpc::Controller::new();
    let err = echo(&ch, &mut cntl, &req("x")).unwrap_err();
    assert_eq!(err.code, fibrpc::errno::ESSL, "{err}");
    assert!(err.text.contains("certificate"), "{err}");
    // And a wrong name for a certificate the CA did sign.
    let tls = client_tls().with_server_name("example.com").unwrap();
    let ch = fibrpc::Channel::new(addr.to_string(), tls_channel_options(tls)).unwrap();
    let mut cntl = fibrpc::Controller::new();
    let err = echo(&ch, &mut cntl, &req("x")).unwrap_err();
    assert_eq!(err.code, fibrpc::errno::ESSL, "{err}");
}

/// Answers with the subject of the caller's certificate.
struct WhoAmI;

impl fibrpc::Service for WhoAmI {
    fn service_name(&self) -> &'static str {
        SERVICE
    }
    fn method_names(&self) -> &'static [&'static str] {
        &["Echo"]
    }
    fn call_method(
        &self,
        _method: usize,
        cntl: &mut fibrpc::Controller,
        _request: &fibrpc::IOBuf,
    ) -> Result<fibrpc::IOBuf, fibrpc::RpcError> {
        let message = cntl
            .peer_certificate_subject()
            .unwrap_or("none")
            .to_string();
        Ok(fibrpc::codec::encode(&EchoResponse { message }))
    }
}

fn mtls_server(required: bool) -> (Server, SocketAddr) {
    let p = pki();
    let tls = TlsServerConfig::from_pem(p.cert_pem.as_bytes(), p.key_pem.as_bytes())
        .unwrap()
        .with_client_auth(p.ca_pem.as_bytes(), required)
        .unwrap();
    let mut server = Server::new(ServerOptions {
        tls: Some(tls),
        tls_required: true,
        ..ServerOptions::default()
    });
    server.add_service(WhoAmI).unwrap();
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();
    (server, addr)
}

fn with_client_cert() -> fibrpc::tls::TlsClientConfig {
    let p = pki();
    client_tls()
        .with_client_cert_pem(p.client_cert_pem.as_bytes(), p.client_key_pem.as_bytes())
        .unwrap()
}

#[test]
fn mutual_tls_gives_the_handler_the_client_subject() {
    let (_server, addr) = mtls_server(true);
    let ch =
        fibrpc::Channel::new(addr.to_string(), tls_channel_options(with_client_cert())).unwrap();
    let mut cntl = fibrpc::Controller::new();
    let resp = echo(&ch, &mut cntl, &req("who")).unwrap();
    assert_eq!(resp.message, "CN=fibrpc test client,O=fibrpc");
}

#[test]
fn mutual_tls_refuses_a_client_without_a_certificate() {
    let (_server, addr) = mtls_server(true);
    let ch = fibrpc::Channel::new(addr.to_string(), tls_channel_options(client_tls())).unwrap();
    let mut cntl = fibrpc::Controller::new();
    let err = echo(&ch, &mut cntl, &req("who")).unwrap_err();
    assert!(
        err.text.contains("CertificateRequired") || err.text.contains("certificate"),
        "{err}"
    );
    // curl alike; with the certificate it gets in.
    let url = format!("https://127.0.0.1:{}/health", addr.port());
    let without = run(
        Command::new("curl")
            .args(["-sS", "--max-time", "10", "--cacert"])
            .arg(ca_file())
            .arg(&url),
        b"",
    );
    assert!(
        !without.status.success(),
        "curl without a certificate got in"
    );
    let with = run(
        Command::new("curl")
            .args(["-sS", "--max-time", "10", "--cacert"])
            .arg(ca_file())
            .arg("--cert")
            .arg(pki().dir.join("client.pem"))
            .arg("--key")
            .arg(pki().dir.join("client.key"))
            .arg(&url),
        b"",
    );
    assert!(
        with.status.success(),
        "curl with a certificate: {}",
        String::from_utf8_lossy(&with.stderr)
    );
}

#[test]
fn optional_client_auth_lets_anonymous_clients_in() {
    let (_server, addr) = mtls_server(false);
    let ch = fibrpc::Channel::new(addr.to_string(), tls_channel_options(client_tls())).unwrap();
    let mut cntl = fibrpc::Controller::new();
    assert_eq!(echo(&ch, &mut cntl, &req("who")).unwrap().message, "none");
    let ch =
        fibrpc::Channel::new(addr.to_string(), tls_channel_options(with_client_cert())).unwrap();
    let mut cntl = fibrpc::Controller::new();
    assert_eq!(
        echo(&ch, &mut cntl, &req("who")).unwrap().message,
        "CN=fibrpc test client,O=fibrpc"
    );
}

#[test]
fn concurrent_calls_share_one_tls_connection() {
    let (server, addr) = tls_server(true);
    let ch = Arc::new(
        fibrpc::Channel::new(addr.to_string(), tls_channel_options(client_tls())).unwrap(),
    );
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let ch = ch.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    // Sizes from one byte to beyond a record.
                    let msg = format!("{t}-{i}-{}", "y".repeat((t * 50 + i) * 97));
                    let mut cntl = fibrpc::Controller::new();
                    assert_eq!(echo(&ch, &mut cntl, &req(&msg)).unwrap().message, msg);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(server.connection_count(), 1);
}
