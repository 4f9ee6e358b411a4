//! The socket's side of TLS: its session slot, the first-byte decision
//! of a server connection, decryption of what the reader read, and
//! encryption of what is written (see [`crate::tls`]).
//!
//! A plaintext connection pays one branch per read (`input_mode`) and
//! one per write (the empty session slot).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use fibrpc_iobuf::IOBuf;
use rustls::pki_types::CertificateDer;

use super::outgoing::Outgoing;
use super::write_list::Owner;
use super::{InputState, Socket};
use crate::tls::input::{decrypt_all, first_bytes, FirstBytes};
use crate::tls::session::{self, TlsSession};
use crate::{errno, RpcError};

/// [`Socket::input_mode`]: the input is plaintext.
pub(crate) const PLAIN: u8 = 0;
/// The first byte decides (a server that serves TLS on its port).
pub(crate) const UNDECIDED: u8 = 1;
/// The input is TLS: the session slot is set.
pub(crate) const TLS: u8 = 2;

/// How a new socket's input starts.
pub(crate) fn initial_mode(accepts_tls: bool) -> AtomicU8 {
    AtomicU8::new(if accepts_tls { UNDECIDED } else { PLAIN })
}

impl Socket {
    fn session(&self) -> Option<&TlsSession> {
        self.tls.get().map(|b| &**b)
    }

    /// Whether the connection speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.get().is_some()
    }

    /// The ALPN protocol negotiated by the TLS handshake (`None` on a
    /// plaintext connection, before the handshake completed, or when the
    /// peers agreed on none).
    pub fn alpn(&self) -> Option<&[u8]> {
        self.session().and_then(TlsSession::alpn)
    }

    /// The certificate chain the TLS peer presented, its own certificate
    /// first (empty on a plaintext connection, before the handshake
    /// completed, or when the peer sent none).
    pub fn peer_certificates(&self) -> &[CertificateDer<'static>] {
        self.session().map_or(&[], TlsSession::peer_certificates)
    }

    /// The subject of the certificate the TLS peer presented
    /// (`CN=...,O=...`, in the certificate's order), once the handshake
    /// completed; `None` on a plaintext connection or when the peer sent
    /// no certificate.
    pub fn peer_certificate_subject(&self) -> Option<&str> {
        self.session()
            .and_then(TlsSession::peer_subject)
            .map(|s| &**s)
    }

    /// The negotiated TLS version and cipher suite (`TLSv1_3`,
    /// `TLS13_AES_128_GCM_SHA256`), once the handshake completed; `None` on
    /// a plaintext connection. Takes the session's lock (for display).
    pub fn tls_parameters(&self) -> Option<(String, String)> {
        let session = self.session()?;
        if session.handshaking() {
            return None;
        }
        let conn = session.lock();
        let version = conn.protocol_version()?;
        let suite = conn.negotiated_cipher_suite()?;
        Some((format!("{version:?}"), format!("{:?}", suite.suite())))
    }

    /// [`peer_certificate_subject`](Self::peer_certificate_subject),
    /// shared (for a request's controller).
    pub(crate) fn peer_subject_arc(&self) -> Option<Arc<str>> {
        self.session().and_then(TlsSession::peer_subject).cloned()
    }

    /// Whether a TLS handshake is under way (for the server's
    /// `read_message_timeout`: the handshake's records are consumed
    /// from the input as they arrive, and waiting for the peer's next
    /// one is waiting for a message).
    pub(crate) fn tls_handshaking(&self) -> bool {
        self.session().is_some_and(TlsSession::handshaking)
    }

    /// Makes the connection TLS from now on (before anything was read or
    /// written: a client right after connecting, a server at the first
    /// byte).
    pub(crate) fn start_tls(&self, session: TlsSession) {
        let _ = self.tls.set(Box::new(session));
        self.input_mode.store(TLS, Ordering::Release);
    }

    /// The buffer the protocols cut after a read into `input.portal`: the
    /// portal itself for plaintext, the decrypted input for TLS. Decides
    /// the connection's mode at its first bytes, and queues the handshake
    /// records decryption produced. An error closes the connection.
    pub(crate) fn tls_input<'a>(
        self: &Arc<Self>,
        input: &'a mut InputState,
    ) -> Result<&'a mut IOBuf, String> {
        if self.input_mode.load(Ordering::Acquire) == UNDECIDED {
            self.decide(&input.portal)?;
        }
        let Some(tls) = self.tls.get() else {
            return Ok(&mut input.portal);
        };
        let mut owner = None;
        // Handshake records, or the alert telling the peer why it failed,
        // queued under the session's lock.
        let result = decrypt_all(tls, &mut input.portal, &mut input.plain, |out| {
            match self.enqueue(Outgoing::plain(out)) {
                // The first to find the list empty writes it all, once
                // every record read is decrypted (or the input failed).
                Ok(o) => {
                    owner = owner.take().or(o);
                    Ok(())
                }
                Err(e) => Err(format!("cannot queue TLS records: {}", e.text)),
            }
        });
        if let Some(o) = owner {
            self.write_owned(o);
        }
        result.map(|()| &mut input.plain)
    }

    /// A server connection's first bytes: TLS if they start a handshake
    /// record, plaintext otherwise (refused when TLS is required).
    fn decide(&self, first: &IOBuf) -> Result<(), String> {
        let Some(accept) = self.user.tls_accept() else {
            self.input_mode.store(PLAIN, Ordering::Release);
            return Ok(());
        };
        match first_bytes(first) {
            FirstBytes::Empty => {}
            FirstBytes::Tls => self.start_tls(session::server(&accept.config.current())?),
            FirstBytes::Plain if accept.required => {
                return Err("plaintext on a server that requires TLS".into())
            }
            FirstBytes::Plain => self.input_mode.store(PLAIN, Ordering::Release),
        }
        Ok(())
    }

    /// Makes a client connection TLS and completes the handshake by
    /// `deadline` (the reader carries it on as the server answers), so
    /// that no request waits inside rustls, where the write path could
    /// not tell its caller whether it went out.
    pub(crate) fn connect_tls(
        self: &Arc<Self>,
        session: TlsSession,
        deadline: std::time::Instant,
    ) -> Result<(), RpcError> {
        self.start_tls(session);
        let Some(tls) = self.tls.get() else {
            return Err(RpcError::new(errno::EINTERNAL, "no TLS session"));
        };
        let mut conn = tls.lock();
        let hello = session::take_output(&mut conn);
        let owner = self.enqueue(Outgoing::plain(hello))?;
        drop(conn);
        if let Some(owner) = owner {
            self.write_owned(owner);
        }
        if tls.wait_handshake(|| self.failed(), deadline) {
            return Ok(());
        }
        let err = match self.error() {
            Some(e) => RpcError::new(
                errno::ESSL,
                format!("TLS handshake with {}: {}", self.remote_side(), e.text),
            ),
            // Like a connect that timed out: nothing was sent yet.
            None => RpcError::new(
                errno::EFAILEDSOCKET,
                format!(
                    "TLS handshake with {} did not complete in time",
                    self.remote_side()
                ),
            ),
        };
        self.set_failed(err.clone());
        Err(err)
    }

    /// On a TLS connection, queues a `close_notify` alert behind
    /// everything queued (before a close after the last answer).
    pub(super) fn queue_close_notify(self: &Arc<Self>) {
        let Some(tls) = self.tls.get() else {
            return;
        };
        let mut conn = tls.lock();
        conn.send_close_notify();
        let out = session::take_output(&mut conn);
        let owner = self.enqueue(Outgoing::plain(out)).ok().flatten();
        drop(conn);
        if let Some(owner) = owner {
            self.write_owned(owner);
        }
    }

    /// [`Socket::write`]'s queueing on a TLS connection: encrypts `msg`
    /// and queues its records, both under the session's lock so that
    /// records queue in the order they were numbered. The caller writes
    /// (with the returned ownership) after the lock is released.
    pub(super) fn queue_tls(
        self: &Arc<Self>,
        tls: &TlsSession,
        msg: Outgoing,
    ) -> Result<Option<Owner<Outgoing>>, RpcError> {
        let mut conn = tls.lock();
        session::encrypt(&mut conn, &msg.data).map_err(|e| {
            RpcError::new(errno::ESSL, format!("TLS to {}: {e}", self.remote_side()))
        })?;
        let records = session::take_output(&mut conn);
        self.enqueue(msg.with_data(records))
    }
}
