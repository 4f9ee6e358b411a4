//! [`TlsServerConfig`]: a server's certificate chain and key, loaded from
//! PEM into a rustls `ServerConfig`.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::RpcError;

/// The ALPN protocols a server accepts by default, in its order of
/// preference: `http/1.1`, then `h2`. rustls picks the first of the
/// server's list that the client offers, so a client offering both (curl,
/// browsers) gets `http/1.1`; an h2-only client (gRPC) gets `h2`, served
/// by [`crate::protocol::h2`].
pub const DEFAULT_ALPN: [&[u8]; 2] = [b"http/1.1", b"h2"];

/// A server's TLS settings (for [`ServerOptions::tls`](crate::ServerOptions::tls)):
/// a rustls `ServerConfig` shared by every connection.
#[derive(Clone)]
pub struct TlsServerConfig {
    config: Arc<ServerConfig>,
    /// The certificate chain and key, kept to rebuild the config with a
    /// client certificate verifier (`None` for a caller's rustls config).
    identity: Option<Arc<Identity>>,
}

type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

impl std::fmt::Debug for TlsServerConfig {
    // Not derived: the key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServerConfig")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl TlsServerConfig {
    /// Loads a certificate chain (PEM, the server's certificate first)
    /// and its private key (PEM: PKCS#8, PKCS#1 or SEC1) from files.
    /// ALPN offers [`DEFAULT_ALPN`]; no client certificate is asked for.
    pub fn from_pem_files(
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<TlsServerConfig, RpcError> {
        let (cert_chain, key) = (cert_chain.as_ref(), key.as_ref());
        let chain = std::fs::read(cert_chain)
            .map_err(|e| bad_config(format!("cannot read {}: {e}", cert_chain.display())))?;
        let key_pem = std::fs::read(key)
            .map_err(|e| bad_config(format!("cannot read {}: {e}", key.display())))?;
        Self::from_pem(&chain, &key_pem)
    }

    /// [`from_pem_files`](Self::from_pem_files) from PEM text in memory.
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> Result<TlsServerConfig, RpcError> {
        let identity = (certs_from_pem(cert_chain)?, key_from_pem(key)?);
        let config = build(&identity, None)?;
        Ok(TlsServerConfig {
            config: Arc::new(config),
            identity: Some(Arc::new(identity)),
        })
    }

    /// Asks every client for a certificate signed by one of the CAs in
    /// `ca_pem` (mutual TLS) and verifies it. `required`: a client
    /// without one fails the handshake; otherwise it may connect
    /// anonymously (and a certificate it does present is still
    /// verified). The verified client's subject is
    /// [`Controller::peer_certificate_subject`](crate::Controller::peer_certificate_subject).
    pub fn with_client_auth(
        mut self,
        ca_pem: &[u8],
        required: bool,
    ) -> Result<TlsServerConfig, RpcError> {
        let Some(identity) = &self.identity else {
            return Err(bad_config(
                "a config from rustls: set its client certificate verifier there",
            ));
        };
        let mut roots = RootCertStore::empty();
        for cert in certs_from_pem(ca_pem)? {
            roots
                .add(cert)
                .map_err(|e| bad_config(format!("client CA certificate: {e}")))?;
        }
        let mut verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), super::provider());
        if !required {
            verifier = verifier.allow_unauthenticated();
        }
        let verifier = verifier
            .build()
            .map_err(|e| bad_config(format!("client certificate verifier: {e}")))?;
        let alpn = self.config.alpn_protocols.clone();
        let mut config = build(identity, Some(verifier))?;
        config.alpn_protocols = alpn;
        self.config = Arc::new(config);
        Ok(self)
    }

    /// A config built by the caller with rustls directly (client
    /// certificate verification, session caches, key logging, ...).
    pub fn from_rustls(config: Arc<ServerConfig>) -> TlsServerConfig {
        TlsServerConfig {
            config,
            identity: None,
        }
    }

    /// Replaces the ALPN protocols offered, most preferred first (an
    /// empty list: no ALPN).
    pub fn with_alpn(mut self, protocols: &[&[u8]]) -> TlsServerConfig {
        Arc::make_mut(&mut self.config).alpn_protocols =
            protocols.iter().map(|p| p.to_vec()).collect();
        self
    }

    /// The rustls config every connection is made from.
    pub fn rustls_config(&self) -> &Arc<ServerConfig> {
        &self.config
    }
}

/// A server config presenting `identity`, verifying clients with
/// `verifier` (none: no client certificate is asked for), offering
/// [`DEFAULT_ALPN`].
fn build(
    identity: &Identity,
    verifier: Option<Arc<dyn ClientCertVerifier>>,
) -> Result<ServerConfig, RpcError> {
    let builder = ServerConfig::builder_with_provider(super::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad_config(format!("TLS versions: {e}")))?;
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(identity.0.clone(), identity.1.clone_key())
        .map_err(|e| bad_config(format!("certificate and key: {e}")))?;
    config.alpn_protocols = DEFAULT_ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// Every certificate in `pem`, in order; an error if there is none.
pub(crate) fn certs_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, RpcError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_config(format!("certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad_config("no certificate in the PEM text"));
    }
    Ok(certs)
}

/// The first private key in `pem`.
pub(crate) fn key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>, RpcError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| bad_config(format!("private key PEM: {e}")))
}

pub(crate) fn bad_config(why: impl Into<String>) -> RpcError {
    RpcError::new(libc::EINVAL, why.into())
}

/// What a server's connections are accepted with: its TLS config (in
/// the slot a reload swaps), and whether plaintext is refused.
#[derive(Debug)]
pub(crate) struct TlsAccept {
    pub config: super::TlsReloader,
    pub required: bool,
}
