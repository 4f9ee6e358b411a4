//! [`TlsReloader`]: swaps the certificate (the whole TLS config) a
//! running server presents, without a restart.
//!
//! The server's acceptors read the config from one shared slot when a
//! connection's first byte says TLS; a reload stores a new config there.
//! A connection already past that point keeps the config it started
//! with (its rustls session holds it), so a handshake under way and the
//! connections already open are not disturbed. The slot is an `ArcSwap`:
//! reading it costs new TLS connections one atomic load and no lock.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::ServerConfig;

use super::TlsServerConfig;

/// Replaces the TLS config of a running [`Server`](crate::Server) (see
/// [`Server::reload_tls`](crate::Server::reload_tls) and
/// [`Server::tls_reloader`](crate::Server::tls_reloader)): new TLS
/// connections get the new certificate, ALPN list and client
/// certificate verification; connections already open keep theirs.
/// Cheap to clone; usable from any thread (a thread that watches for
/// SIGHUP, a file watcher).
#[derive(Clone)]
pub struct TlsReloader {
    slot: Arc<ArcSwap<ServerConfig>>,
}

impl std::fmt::Debug for TlsReloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsReloader").finish_non_exhaustive()
    }
}

impl TlsReloader {
    /// A slot holding `config`.
    pub(crate) fn new(config: &TlsServerConfig) -> TlsReloader {
        TlsReloader {
            slot: Arc::new(ArcSwap::new(config.rustls_config().clone())),
        }
    }

    /// New TLS connections are made with `config` from now on. The
    /// config was checked when it was built (PEM, key and certificate),
    /// so a reload cannot fail: load the new files with
    /// [`TlsServerConfig::from_pem_files`] first, and keep the old config
    /// if that fails.
    pub fn reload(&self, config: TlsServerConfig) {
        self.slot.store(config.rustls_config().clone());
        tracing::info!("TLS config reloaded: new connections use the new certificate");
    }

    /// The config new connections are made with.
    pub(crate) fn current(&self) -> Arc<ServerConfig> {
        self.slot.load_full()
    }
}
