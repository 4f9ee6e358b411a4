//! [`TlsClientConfig`]: what a channel's connections trust and present,
//! as a rustls `ClientConfig`.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use super::config::{bad_config, certs_from_pem, key_from_pem};
use crate::RpcError;

/// A channel's TLS settings (for
/// [`ChannelOptions::tls`](crate::ChannelOptions::tls)): the CAs that
/// sign the servers' certificates, the name to verify them against, and
/// optionally a certificate of the client's own (mutual TLS).
///
/// Every new connection of the channel completes the TLS handshake
/// within the channel's `connect_timeout` before it carries a call.
#[derive(Clone, Debug)]
pub struct TlsClientConfig {
    config: Arc<ClientConfig>,
    roots: Arc<RootCertStore>,
    server_name: Option<ServerName<'static>>,
}

impl TlsClientConfig {
    /// Trusts the CA certificates in `ca_pem` (PEM, one or more). No
    /// client certificate, no ALPN; the server's certificate is checked
    /// against the address connected to unless
    /// [`with_server_name`](Self::with_server_name) says otherwise.
    pub fn from_ca_pem(ca_pem: &[u8]) -> Result<TlsClientConfig, RpcError> {
        let mut roots = RootCertStore::empty();
        for cert in certs_from_pem(ca_pem)? {
            roots
                .add(cert)
                .map_err(|e| bad_config(format!("CA certificate: {e}")))?;
        }
        let roots = Arc::new(roots);
        Ok(TlsClientConfig {
            config: Arc::new(build(&roots, None)?),
            roots,
            server_name: None,
        })
    }

    /// Trusts the operating system's CA certificates (what
    /// `rustls-native-certs` finds: the distribution's bundle, or the
    /// file and directory `SSL_CERT_FILE` and `SSL_CERT_DIR` name), as a
    /// client of public services would. Fails if none could be loaded;
    /// certificates the store rejects are skipped, as browsers skip them.
    pub fn from_system_roots() -> Result<TlsClientConfig, RpcError> {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = RootCertStore::empty();
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            let why = found
                .errors
                .first()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            return Err(bad_config(format!(
                "no system CA certificate could be loaded{why}"
            )));
        }
        let roots = Arc::new(roots);
        Ok(TlsClientConfig {
            config: Arc::new(build(&roots, None)?),
            roots,
            server_name: None,
        })
    }

    /// [`from_ca_pem`](Self::from_ca_pem) from a file.
    pub fn from_ca_pem_file(path: impl AsRef<Path>) -> Result<TlsClientConfig, RpcError> {
        let path = path.as_ref();
        let pem = std::fs::read(path)
            .map_err(|e| bad_config(format!("cannot read {}: {e}", path.display())))?;
        Self::from_ca_pem(&pem)
    }

    /// A config built by the caller with rustls directly.
    /// [`with_client_cert_pem`](Self::with_client_cert_pem) then builds
    /// from an empty root store: set client certificates in `config`.
    pub fn from_rustls(config: Arc<ClientConfig>) -> TlsClientConfig {
        TlsClientConfig {
            config,
            roots: Arc::new(RootCertStore::empty()),
            server_name: None,
        }
    }

    /// The name sent as SNI and checked against the server's certificate
    /// (a DNS name or an IP address). Default: the IP address connected
    /// to.
    pub fn with_server_name(mut self, name: &str) -> Result<TlsClientConfig, RpcError> {
        let name = ServerName::try_from(name.to_string())
            .map_err(|e| bad_config(format!("server name {name:?}: {e}")))?;
        self.server_name = Some(name);
        Ok(self)
    }

    /// Presents this certificate chain (PEM, the client's certificate
    /// first) and key (PEM) to servers that ask for one (mutual TLS).
    pub fn with_client_cert_pem(
        mut self,
        cert_chain: &[u8],
        key: &[u8],
    ) -> Result<TlsClientConfig, RpcError> {
        let alpn = self.config.alpn_protocols.clone();
        let mut config = build(
            &self.roots,
            Some((certs_from_pem(cert_chain)?, key_from_pem(key)?)),
        )?;
        config.alpn_protocols = alpn;
        self.config = Arc::new(config);
        Ok(self)
    }

    /// Offers these ALPN protocols, most preferred first.
    pub fn with_alpn(mut self, protocols: &[&[u8]]) -> TlsClientConfig {
        Arc::make_mut(&mut self.config).alpn_protocols =
            protocols.iter().map(|p| p.to_vec()).collect();
        self
    }

    /// The rustls config every connection is made from.
    pub fn rustls_config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// The name a connection to `ip` verifies the server against.
    pub(crate) fn server_name_for(&self, ip: std::net::IpAddr) -> ServerName<'static> {
        self.server_name
            .clone()
            .unwrap_or_else(|| ServerName::IpAddress(ip.into()))
    }
}

type ClientCert = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn build(roots: &Arc<RootCertStore>, cert: Option<ClientCert>) -> Result<ClientConfig, RpcError> {
    let builder = ClientConfig::builder_with_provider(super::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad_config(format!("TLS versions: {e}")))?
        .with_root_certificates(roots.clone());
    match cert {
        None => Ok(builder.with_no_client_auth()),
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| bad_config(format!("client certificate and key: {e}"))),
    }
}
