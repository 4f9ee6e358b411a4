//! TLS against peers that are not fibrpc, and under load: Python's `ssl`
//! module making a raw baidu_std call with a frame captured from bRPC,
//! `openssl s_client` offering TLS 1.1 (refused), a certificate past its
//! `not_after` (refused by the client), 100 plaintext and 100 TLS
//! clients on one port at once, and a credential over mutual TLS.
//!
//! python3 and openssl must be installed: a test that cannot run them
//! fails.

mod rpc_common;
mod tls_common;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use fibrpc::protocol::baidu_std::{self, ParseResult};
use fibrpc::tls::{TlsClientConfig, TlsServerConfig};
use fibrpc::{errno, Channel, ChannelOptions, Controller, IOBuf, Server, ServerOptions};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
use rpc_common::*;
use tls_common::*;

fn server_config() -> TlsServerConfig {
    let p = pki();
    TlsServerConfig::from_pem(p.cert_pem.as_bytes(), p.key_pem.as_bytes()).unwrap()
}

/// The echo service over TLS and plaintext on one port.
fn tls_echo_server() -> (Server, SocketAddr) {
    let (server, _) = start_server(ServerOptions {
        tls: Some(server_config()),
        ..ServerOptions::default()
    });
    let addr = server.listen_addr().unwrap();
    (server, addr)
}

/// The first request frame of the bRPC capture: `example.EchoService.Echo`
/// of "hello world" with the attachment "hello", correlation id
/// 4294967298.
fn golden_request_hex() -> String {
    let text = include_str!("data/baidu_std_vectors.txt");
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l.starts_with("# request:") {
            return lines.next().unwrap().trim().to_string();
        }
    }
    panic!("no request frame in the vectors file");
}

fn script() -> String {
    format!(
        "{}/tests/data/tls_baidu_std_call.py",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn python_ssl_makes_a_raw_baidu_std_call_with_a_golden_frame() {
    let (_server, addr) = tls_echo_server();
    let out = run(
        Command::new("python3").args([
            &script(),
            "127.0.0.1",
            &addr.port().to_string(),
            ca_file().to_str().unwrap(),
            &golden_request_hex(),
        ]),
        b"",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python3: {stderr}");
    assert!(stderr.contains("version=TLSv1.3"), "{stderr}");
    let hex = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let mut buf = IOBuf::from(bytes);
    let ParseResult::Complete(f) = baidu_std::parse(&mut buf, 1 << 20) else {
        panic!("not a whole frame: {hex}");
    };
    assert_eq!(f.meta.correlation_id(), 4294967298);
    assert_eq!(f.meta.response.as_ref().unwrap().error_code(), 0);
    let resp: EchoResponse = fibrpc::codec::decode_response(&f.payload).unwrap();
    assert_eq!(resp.message, "hello world");
    assert_eq!(f.attachment, "hello");
}

#[test]
fn tls_1_1_is_refused() {
    let (_server, addr) = tls_echo_server();
    let s_client = |version: &str| {
        let out = run(
            Command::new("openssl").args([
                "s_client",
                "-connect",
                &addr.to_string(),
                version,
                // Lets this OpenSSL offer TLS 1.1 at all: the refusal
                // must be the server's.
                "-cipher",
                "DEFAULT:@SECLEVEL=0",
            ]),
            b"",
        );
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), all)
    };
    let (ok, out) = s_client("-tls1_1");
    assert!(!ok, "{out}");
    // The ClientHello went out and the server answered with an alert.
    assert!(out.contains("alert"), "{out}");
    assert!(out.contains("Cipher is (NONE)"), "{out}");
    assert!(!out.contains("written 0 bytes"), "{out}");
    // The same client with TLS 1.2 gets in.
    let (ok, out) = s_client("-tls1_2");
    assert!(ok, "{out}");
    assert!(out.contains("TLSv1.2"), "{out}");
}

/// A CA of its own, and a certificate for 127.0.0.1 it signed that
/// expired in 2001.
fn expired_pki() -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "expiry CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

#[test]
fn an_expired_certificate_is_refused_by_the_client() {
    let (ca, cert, key) = expired_pki();
    let (server, _) = start_server(ServerOptions {
        tls: Some(TlsServerConfig::from_pem(cert.as_bytes(), key.as_bytes()).unwrap()),
        ..ServerOptions::default()
    });
    let addr = server.listen_addr().unwrap();
    let channel = Channel::new(
        addr,
        ChannelOptions {
            tls: Some(TlsClientConfig::from_ca_pem(ca.as_bytes()).unwrap()),
            timeout: Some(Duration::from_secs(5)),
            connect_timeout: Duration::from_secs(5),
            ..ChannelOptions::default()
        },
    )
    .unwrap();
    let req = EchoRequest {
        message: "x".into(),
        ..Default::default()
    };
    let e = channel
        .call::<_, EchoResponse>(SERVICE, "Echo", &mut Controller::new(), &req)
        .unwrap_err();
    assert_eq!(e.code, errno::ESSL, "{e}");
    assert!(e.text.contains("certificate expired"), "{e}");
}

#[test]
fn a_hundred_plaintext_and_a_hundred_tls_clients_share_the_port_at_once() {
    const EACH: usize = 100;
    let (_server, addr) = tls_echo_server();
    let tls = TlsClientConfig::from_ca_pem(pki().ca_pem.as_bytes()).unwrap();
    let start = Arc::new(Barrier::new(2 * EACH));
    let threads: Vec<_> = (0..2 * EACH)
        .map(|i| {
            let start = start.clone();
            let tls = (i % 2 == 1).then(|| tls.clone());
            std::thread::spawn(move || {
                // Each client its own channel, so its own connection.
                let channel = Channel::new(
                    addr,
                    ChannelOptions {
                        tls,
                        timeout: Some(Duration::from_secs(30)),
                        connect_timeout: Duration::from_secs(30),
                        ..ChannelOptions::default()
                    },
                )
                .unwrap();
                start.wait();
                let req = EchoRequest {
                    message: format!("client {i}"),
                    ..Default::default()
                };
                channel
                    .call::<_, EchoResponse>(SERVICE, "Echo", &mut Controller::new(), &req)
                    .map(|r| r.message)
            })
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        let r = t.join().unwrap();
        assert_eq!(r.unwrap(), format!("client {i}"));
    }
}

/// Accepts the credential `token` as `svc`.
struct Token;

impl fibrpc::auth::Authenticator for Token {
    fn generate_credential(&self) -> Result<Vec<u8>, fibrpc::RpcError> {
        Ok(b"token".to_vec())
    }

    fn verify_credential(
        &self,
        credential: &[u8],
        _peer: SocketAddr,
        ctx: &mut fibrpc::auth::AuthContext,
    ) -> Result<(), fibrpc::RpcError> {
        if credential != b"token" {
            return Err(fibrpc::RpcError::new(errno::ERPCAUTH, "bad token"));
        }
        ctx.user = "svc".into();
        ctx.is_service = true;
        Ok(())
    }
}

/// Answers with the credential's user and the client certificate's
/// subject.
struct Who;

impl fibrpc::Service for Who {
    fn service_name(&self) -> &'static str {
        SERVICE
    }
    fn method_names(&self) -> &'static [&'static str] {
        &["Echo"]
    }
    fn call_method(
        &self,
        _method: usize,
        cntl: &mut Controller,
        _request: &IOBuf,
    ) -> Result<IOBuf, fibrpc::RpcError> {
        let user = cntl.auth_context().map_or("-", |a| a.user.as_str());
        let subject = cntl.peer_certificate_subject().unwrap_or("-");
        Ok(fibrpc::codec::encode(&EchoResponse {
            message: format!("{user} {subject}"),
        }))
    }
}

#[test]
fn a_credential_over_mutual_tls_gives_the_handler_both_identities() {
    let p = pki();
    let tls = server_config()
        .with_client_auth(p.ca_pem.as_bytes(), true)
        .unwrap();
    let mut server = Server::new(ServerOptions {
        tls: Some(tls),
        tls_required: true,
        auth: Some(Arc::new(Token)),
        ..ServerOptions::default()
    });
    server.add_service(Who).unwrap();
    server.start("127.0.0.1:0").unwrap();
    let client_tls = TlsClientConfig::from_ca_pem(p.ca_pem.as_bytes())
        .unwrap()
        .with_client_cert_pem(p.client_cert_pem.as_bytes(), p.client_key_pem.as_bytes())
        .unwrap();
    let channel = Channel::new(
        server.listen_addr().unwrap(),
        ChannelOptions {
            tls: Some(client_tls),
            auth: Some(Arc::new(Token)),
            timeout: Some(Duration::from_secs(5)),
            ..ChannelOptions::default()
        },
    )
    .unwrap();
    let req = EchoRequest {
        message: String::new(),
        ..Default::default()
    };
    let got: EchoResponse = channel
        .call(SERVICE, "Echo", &mut Controller::new(), &req)
        .unwrap();
    assert_eq!(got.message, "svc CN=fibrpc test client,O=fibrpc");
}
