//! TLS (rustls) under the protocols: the socket decrypts what it reads
//! before any protocol cuts it, and encrypts what it writes before it
//! enters the write list. Protocols only ever see plaintext.
//!
//! - A server with [`ServerOptions::tls`](crate::ServerOptions::tls)
//!   serves TLS and plaintext on the same port: the first byte of a
//!   connection decides (a TLS handshake record starts with 0x16, which
//!   no plaintext protocol fibrpc speaks does), as bRPC does.
//!   [`ServerOptions::tls_required`](crate::ServerOptions::tls_required)
//!   closes plaintext connections instead.
//! - [`TlsServerConfig`] loads a certificate chain and key (PEM) into a
//!   rustls `ServerConfig`, with ALPN. [`TlsReloader`] swaps it while the
//!   server runs: new connections get the new certificate, open ones
//!   keep theirs.
//! - The per-connection rustls state lives in the socket (`session.rs`);
//!   the reader's first-byte decision and decryption loop are in
//!   `input.rs`, which [`TlsInput`] runs without a socket for the fuzz
//!   targets; `record.rs` cuts whole TLS records off the input, so a
//!   partial record stays in the socket's input where the server's
//!   `read_message_timeout` sees it.
//!
//! The crypto provider is `ring`: it builds with a C compiler alone,
//! where rustls' default, aws-lc-rs, needs cmake (and nasm on some
//! targets) on a fresh machine. The price: ring has no post-quantum key
//! exchange (X25519MLKEM768), which rustls 0.23.48 marks by deprecating
//! ring's provider; key exchange is X25519 or the NIST curves. A user
//! who wants it builds a config with aws-lc-rs and passes it through
//! [`TlsServerConfig::from_rustls`].

mod client;
mod config;
pub(crate) mod input;
mod record;
mod reload;
pub(crate) mod session;
mod subject;

pub use client::TlsClientConfig;
pub(crate) use config::TlsAccept;
pub use config::{TlsServerConfig, DEFAULT_ALPN};
pub use input::TlsInput;
pub use reload::TlsReloader;

use std::sync::Arc;

/// The crypto provider every fibrpc TLS config uses (see the module
/// docs for why `ring`).
// Deprecated only for lacking post-quantum key exchange (see above).
#[allow(deprecated)]
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
