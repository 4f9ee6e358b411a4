//! `TlsClientConfig::from_system_roots`: the operating system's trust
//! store, pointed at the test CA through `SSL_CERT_FILE` (which the
//! store honours, as OpenSSL does). A binary of its own: the variable is
//! process-wide, and set here before any thread reads it.

mod rpc_common;
mod tls_common;

use std::time::Duration;

use fibrpc::tls::{TlsClientConfig, TlsServerConfig};
use fibrpc::{Server, ServerOptions};
use rpc_common::*;
use tls_common::*;

#[test]
fn system_roots_trust_what_ssl_cert_file_names() {
    // Before any other thread of this binary runs: one test only.
    std::env::set_var("SSL_CERT_FILE", ca_file());
    std::env::remove_var("SSL_CERT_DIR");
    let p = pki();
    let mut server = Server::new(ServerOptions {
        tls: Some(TlsServerConfig::from_pem(p.cert_pem.as_bytes(), p.key_pem.as_bytes()).unwrap()),
        tls_required: true,
        ..ServerOptions::default()
    });
    server.add_service(Echo::default()).unwrap();
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();

    let tls = TlsClientConfig::from_system_roots().unwrap();
    let ch = fibrpc::Channel::new(
        addr.to_string(),
        fibrpc::ChannelOptions {
            tls: Some(tls),
            timeout: Some(Duration::from_secs(5)),
            connect_timeout: Duration::from_secs(5),
            ..Default::default()
        },
    )
    .unwrap();
    let resp = echo(
        &ch,
        &mut fibrpc::Controller::new(),
        &req("trusted by the system store"),
    )
    .unwrap();
    assert_eq!(resp.message, "trusted by the system store");

    // A store with nothing usable in it is a clear configuration error.
    let empty = std::env::temp_dir().join(format!("fibrpc-empty-{}.pem", std::process::id()));
    std::fs::write(&empty, "").unwrap();
    std::env::set_var("SSL_CERT_FILE", &empty);
    let err = TlsClientConfig::from_system_roots().unwrap_err();
    assert!(
        err.to_string().contains("no system CA certificate"),
        "{err}"
    );
    let _ = std::fs::remove_file(&empty);
}
