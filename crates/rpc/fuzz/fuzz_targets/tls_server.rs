//! Fuzz target for a server connection's TLS input, as a connection on a
//! port serving TLS and plaintext reads it: the first-byte decision, the
//! cutting of whole records off the input and their decryption by the
//! rustls server session ([`fibrpc::tls::TlsInput`] runs the socket
//! reader's code). The first byte is a knob: whether TLS is required,
//! whether a real ClientHello comes first (so that the rest reaches the
//! handshake's later states), and the size of the reads.
//!
//! Checks: no panic; at most one partial record stays buffered; no more
//! plaintext comes out than went in; what the server writes back stays
//! within a bound of what it read; a connection that failed stays failed;
//! plaintext is refused when TLS is required.

#![no_main]

use std::sync::OnceLock;

use fibrpc::tls::{TlsClientConfig, TlsInput, TlsServerConfig};
use libfuzzer_sys::fuzz_target;

/// The most a partial record can hold: a header and the largest payload.
const MAX_RECORD: usize = 5 + (1 << 14) + 2048;

struct Fixture {
    server: TlsServerConfig,
    /// A real client's first flight (its ClientHello).
    hello: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let server =
            TlsServerConfig::from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes())
                .unwrap();
        let client = TlsClientConfig::from_ca_pem(cert.pem().as_bytes())
            .unwrap()
            .with_alpn(&[b"h2", b"http/1.1"]);
        let hello = TlsInput::client(&client).unwrap().take_output().to_vec();
        Fixture { server, hello }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&knob, rest)) = data.split_first() else {
        return;
    };
    let f = fixture();
    let required = knob & 1 != 0;
    let prefix: &[u8] = if knob & 2 != 0 { &f.hello } else { &[] };
    let chunk = 1 + usize::from(knob >> 2) * 61;
    let mut conn = TlsInput::server(&f.server, required);
    let (mut fed, mut written) = (0usize, 0usize);
    let mut failed = false;
    for piece in prefix.chunks(chunk).chain(rest.chunks(chunk)) {
        fed += piece.len();
        let r = conn.feed(piece);
        written += conn.take_output().len();
        assert!(
            conn.buffered() <= MAX_RECORD,
            "{} bytes buffered",
            conn.buffered()
        );
        let plain = conn.plaintext();
        assert!(plain.len() <= fed);
        plain.clear();
        // The first flight (certificate included) is a few KiB; after it,
        // an alert or a key update per record read at most.
        assert!(
            written <= 16 * 1024 + 2 * fed,
            "{written} bytes written for {fed} read"
        );
        if required && conn.is_tls() == Some(false) {
            panic!("plaintext accepted on a server requiring TLS");
        }
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
