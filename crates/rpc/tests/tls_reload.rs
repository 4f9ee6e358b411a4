//! Reloading a running server's TLS certificate: connections made after
//! the reload get the new one (checked with a rustls client and with
//! `openssl s_client`), a connection made before keeps working on the
//! old one, and the reload outlives a restart. The certificates are made
//! at test time (rcgen).
//!
//! openssl must be installed: a test that cannot run it fails.

mod tls_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use fibrpc::tls::TlsServerConfig;
use fibrpc::{Server, ServerOptions};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tls_common::*;

/// A second CA and a server certificate for 127.0.0.1 it signed, with
/// the subject `CN=fibrpc reloaded server`: (CA PEM, certificate PEM,
/// key PEM).
fn second_identity() -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "fibrpc reload CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    params
        .distinguished_name
        .push(DnType::CommonName, "fibrpc reloaded server");
    let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

fn first_config() -> TlsServerConfig {
    let p = pki();
    TlsServerConfig::from_pem(p.cert_pem.as_bytes(), p.key_pem.as_bytes()).unwrap()
}

/// A TLS server (plaintext too) answering the console's `/health`.
fn tls_server() -> (Server, SocketAddr) {
    let mut server = Server::new(ServerOptions {
        tls: Some(first_config()),
        ..ServerOptions::default()
    });
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();
    (server, addr)
}

/// A TLS connection trusting only `ca_pem`, not yet handshaken.
fn tls_client(
    addr: SocketAddr,
    ca_pem: &str,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::IpAddress("127.0.0.1".parse::<std::net::IpAddr>().unwrap().into());
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

/// `GET /health` on a kept-alive connection: the whole response.
fn health(s: &mut impl ReadWrite) -> std::io::Result<String> {
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")?;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    // "OK\n" is the body: the response is complete once it arrived.
    while !got.ends_with(b"\r\n\r\nOK\n") {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&got).into_owned())
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// The certificate the server presented on `s`.
fn presented(s: &rustls::StreamOwned<rustls::ClientConnection, TcpStream>) -> Vec<u8> {
    s.conn.peer_certificates().unwrap()[0].to_vec()
}

fn der_of(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

/// What `openssl s_client` says of the server's certificate, verified
/// against the CA in `ca_pem`.
fn s_client(addr: SocketAddr, ca_pem: &str) -> String {
    let ca = pki().dir.join(format!("reload-ca-{}.pem", addr.port()));
    std::fs::write(&ca, ca_pem).unwrap();
    let out = run(
        Command::new("openssl")
            .args(["s_client", "-connect", &addr.to_string()])
            .args(["-CAfile", ca.to_str().unwrap(), "-verify_return_error"]),
        b"",
    );
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn a_reload_reaches_new_connections_and_spares_open_ones() {
    let (server, addr) = tls_server();
    let (ca2, cert2, key2) = second_identity();
    let old_ca = &pki().ca_pem;

    let mut before = tls_client(addr, old_ca);
    assert!(health(&mut before).unwrap().starts_with("HTTP/1.1 200"));
    assert_eq!(presented(&before), der_of(&pki().cert_pem));

    server
        .reload_tls(TlsServerConfig::from_pem(cert2.as_bytes(), key2.as_bytes()).unwrap())
        .unwrap();

    // The connection made before still works, on the old certificate.
    for _ in 0..3 {
        assert!(health(&mut before).unwrap().starts_with("HTTP/1.1 200"));
    }
    assert_eq!(presented(&before), der_of(&pki().cert_pem));

    // A new one gets the new certificate...
    let mut after = tls_client(addr, &ca2);
    assert!(health(&mut after).unwrap().starts_with("HTTP/1.1 200"));
    assert_eq!(presented(&after), der_of(&cert2));
    // ...which a client trusting only the old CA refuses.
    let e = health(&mut tls_client(addr, old_ca)).unwrap_err();
    assert!(e.to_string().contains("certificate"), "{e}");

    // openssl sees it too, and verifies it against the new CA.
    let said = s_client(addr, &ca2);
    assert!(said.contains("CN = fibrpc reloaded server"), "{said}");
    assert!(said.contains("Verify return code: 0 (ok)"), "{said}");
    let said = s_client(addr, old_ca);
    assert!(!said.contains("Verify return code: 0 (ok)"), "{said}");
}

#[test]
fn the_reloader_works_from_another_thread_and_outlives_a_restart() {
    let (mut server, addr) = tls_server();
    let (ca2, cert2, key2) = second_identity();
    let reloader = server.tls_reloader().unwrap();
    std::thread::spawn(move || {
        reloader.reload(TlsServerConfig::from_pem(cert2.as_bytes(), key2.as_bytes()).unwrap())
    })
    .join()
    .unwrap();
    let mut s = tls_client(addr, &ca2);
    assert!(health(&mut s).unwrap().starts_with("HTTP/1.1 200"));
    drop(s);

    server.stop();
    server.join();
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();
    let mut s = tls_client(addr, &ca2);
    assert!(health(&mut s).unwrap().starts_with("HTTP/1.1 200"));
    // Plaintext still shares the port.
    let mut plain = TcpStream::connect(addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert!(health(&mut plain).unwrap().starts_with("HTTP/1.1 200"));
}

#[test]
fn a_plaintext_server_cannot_reload_tls() {
    let server = Server::new(ServerOptions::default());
    assert!(server.tls_reloader().is_none());
    let e = server.reload_tls(first_config()).unwrap_err();
    assert_eq!(e.code, libc::EINVAL, "{e}");
    assert!(e.text.contains("ServerOptions::tls"), "{e}");
}
