//! Fuzz target for a channel's connection's TLS input: arbitrary bytes
//! as the server's answer to the ClientHello, through the record cutting
//! and the rustls client session the socket reader runs
//! ([`fibrpc::tls::TlsInput`]). TLS 1.2 is offered, so a forged
//! ServerHello reaches the certificate checks in plaintext. The first
//! byte sets the size of the reads.
//!
//! Checks: no panic; at most one partial record stays buffered; no more
//! plaintext comes out than went in, and none before the handshake
//! completed (it cannot, with a certificate nobody forged a signature
//! for); a connection that failed stays failed.

#![no_main]

use std::sync::OnceLock;

use fibrpc::tls::{TlsClientConfig, TlsInput};
use libfuzzer_sys::fuzz_target;

const MAX_RECORD: usize = 5 + (1 << 14) + 2048;

fn client() -> &'static TlsClientConfig {
    static C: OnceLock<TlsClientConfig> = OnceLock::new();
    C.get_or_init(|| {
        let key = rcgen::KeyPair::generate().unwrap();
        let ca = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        TlsClientConfig::from_ca_pem(ca.pem().as_bytes())
            .unwrap()
            .with_alpn(&[b"h2", b"http/1.1"])
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&knob, rest)) = data.split_first() else {
        return;
    };
    let chunk = 1 + usize::from(knob) * 73;
    let mut conn = TlsInput::client(client()).unwrap();
    let hello = conn.take_output();
    assert!(!hello.is_empty() && conn.handshaking());
    let mut fed = 0usize;
    let mut failed = false;
    for piece in rest.chunks(chunk) {
        fed += piece.len();
        let r = conn.feed(piece);
        let _ = conn.take_output();
        assert!(
            conn.buffered() <= MAX_RECORD,
            "{} bytes buffered",
            conn.buffered()
        );
        assert!(conn.plaintext().len() <= fed);
        assert!(
            !conn.handshaking() || conn.plaintext().is_empty(),
            "plaintext before the handshake completed"
        );
        if r.is_err() {
            failed = true;
            break;
        }
    }
    if failed {
        assert!(
            conn.feed(b"\x17\x03\x03\x00\x01x").is_err(),
            "a failed connection read on"
        );
    }
});
