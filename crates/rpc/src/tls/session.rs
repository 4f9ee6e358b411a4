//! One connection's rustls state, kept in its socket from the first byte
//! (server) or from the connect (client).
//!
//! rustls works on byte slices it owns, so both directions copy:
//! decrypted input is copied out of rustls into the IOBuf the protocols
//! cut, and outgoing plaintext is copied into rustls, which encrypts it
//! into its own buffer, copied in turn into an IOBuf for the write list.
//! rustls' API offers no way to decrypt or encrypt in place in our
//! blocks (its `unbuffered` API does, but takes a contiguous buffer, which
//! an IOBuf is not).

use std::io::{self, BufRead, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use fibrpc_fiber::butex::Butex;
use fibrpc_fiber::sync::{Mutex, MutexGuard};

use fibrpc_iobuf::IOBuf;
use rustls::pki_types::CertificateDer;
use rustls::Connection;

use super::record::{self, Front};

/// A connection's TLS state. The mutex orders everything that touches
/// the rustls connection: the reader's decryption (and the handshake
/// records it produces) and the writers' encryption. Each holder queues
/// the records it produced before unlocking, so records enter the write
/// list in the order rustls numbered them. A fiber mutex: a writer that
/// finds it held (the reader decrypting a record, another writer
/// encrypting a response) suspends its fiber rather than its worker.
pub(crate) struct TlsSession {
    conn: Mutex<Connection>,
    /// Cleared once the handshake completed (read without the lock by the
    /// server's ticker: a stalled handshake is a partial message).
    handshaking: AtomicBool,
    /// Set once the handshake completed: the negotiated ALPN protocol.
    alpn: OnceLock<Option<Vec<u8>>>,
    /// Set once the handshake completed: the peer's certificate chain
    /// (empty if it sent none).
    peer_certs: OnceLock<Vec<CertificateDer<'static>>>,
    /// Set once the handshake completed: the subject of the peer's
    /// certificate, read once per connection rather than per request.
    peer_subject: OnceLock<Option<Arc<str>>>,
    /// Bumped when the handshake completes or the connection fails: a
    /// client's connect waits on it.
    settled: Butex,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshaking", &self.handshaking())
            .field("alpn", &self.alpn())
            .finish()
    }
}

impl TlsSession {
    /// Wraps a new rustls connection (server or client side).
    pub(crate) fn new(mut conn: Connection) -> TlsSession {
        // Plaintext written before the handshake completes waits in
        // rustls; what a socket may queue is bounded by its
        // `max_unwritten` instead of rustls' 64 KiB default, which would
        // fail a larger message.
        conn.set_buffer_limit(None);
        TlsSession {
            conn: Mutex::new(conn),
            handshaking: AtomicBool::new(true),
            alpn: OnceLock::new(),
            peer_certs: OnceLock::new(),
            peer_subject: OnceLock::new(),
            settled: Butex::new(0),
        }
    }

    /// The rustls connection, locked.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock()
    }

    /// Whether the handshake is still going on.
    pub(crate) fn handshaking(&self) -> bool {
        self.handshaking.load(Ordering::Acquire)
    }

    /// The ALPN protocol the handshake settled on (`None` before it
    /// completed, or when none was negotiated).
    pub(crate) fn alpn(&self) -> Option<&[u8]> {
        self.alpn.get().and_then(|a| a.as_deref())
    }

    /// The peer's certificate chain, its own certificate first (empty
    /// before the handshake completed or when the peer sent none).
    pub(crate) fn peer_certificates(&self) -> &[CertificateDer<'static>] {
        self.peer_certs.get().map_or(&[], |c| c.as_slice())
    }

    /// The subject of the peer's certificate (`CN=...,O=...`), if it
    /// presented one.
    pub(crate) fn peer_subject(&self) -> Option<&Arc<str>> {
        self.peer_subject.get().and_then(Option::as_ref)
    }

    /// Wakes whoever waits for the handshake (it completed, or the
    /// connection failed).
    pub(crate) fn wake(&self) {
        self.settled.value().fetch_add(1, Ordering::Release);
        self.settled.wake_all();
    }

    /// Waits until the handshake completed (`true`), `failed` says the
    /// connection failed, or `deadline` passes (both `false`).
    pub(crate) fn wait_handshake(&self, failed: impl Fn() -> bool, deadline: Instant) -> bool {
        loop {
            let seen = self.settled.value().load(Ordering::Acquire);
            if !self.handshaking() {
                return true;
            }
            if failed() || Instant::now() >= deadline {
                return false;
            }
            let _ = self.settled.wait(seen, Some(deadline));
        }
    }

    /// Decrypts the whole record at the front of `raw` into `plain`
    /// (`Ok(false)`: `raw` holds no whole record). Handshake records
    /// rustls produces meanwhile wait in `conn` ([`take_output`]). An
    /// error (not TLS, a failed handshake, a bad record) means the
    /// connection must close; a TLS alert telling the peer why may wait
    /// in `conn`. One record at a time: the lock is held for one
    /// record's decryption, not a whole read's.
    pub(crate) fn decrypt_one(
        &self,
        conn: &mut Connection,
        raw: &mut IOBuf,
        plain: &mut IOBuf,
    ) -> Result<bool, String> {
        let n = match record::front(raw) {
            Front::Record(n) => n,
            Front::Partial => return Ok(false),
            Front::Bad(why) => return Err(why),
        };
        let mut one = Read::take(&mut *raw, n as u64);
        while one.limit() > 0 {
            match conn.read_tls(&mut one) {
                // After the peer's close_notify rustls takes nothing
                // more: drop the rest.
                Ok(0) => {
                    let left = one.limit() as usize;
                    raw.pop_front(left);
                    break;
                }
                Ok(_) => {}
                Err(e) => return Err(format!("TLS input: {e}")),
            }
        }
        conn.process_new_packets()
            .map_err(|e| format!("TLS: {e}"))?;
        if self.handshaking() && !conn.is_handshaking() {
            self.handshake_done(conn);
        }
        let mut reader = conn.reader();
        loop {
            match reader.fill_buf() {
                Ok([]) => break,
                Ok(chunk) => {
                    let len = chunk.len();
                    plain.append(chunk);
                    reader.consume(len);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // The peer closed without close_notify: the TCP EOF
                // that follows ends the connection.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(format!("TLS plaintext: {e}")),
            }
        }
        Ok(true)
    }

    /// Records what the handshake settled and wakes a client waiting for
    /// it.
    fn handshake_done(&self, conn: &Connection) {
        let _ = self.alpn.set(conn.alpn_protocol().map(<[u8]>::to_vec));
        let certs = conn.peer_certificates().unwrap_or_default();
        let subject = certs.first().and_then(|c| super::subject::subject_of(c));
        let _ = self.peer_subject.set(subject.map(Arc::from));
        let _ = self
            .peer_certs
            .set(certs.iter().map(|c| c.clone().into_owned()).collect());
        self.handshaking.store(false, Ordering::Release);
        self.wake();
    }
}

/// Encrypts `data` into records (in `conn`'s output, see [`take_output`]).
pub(crate) fn encrypt(conn: &mut Connection, data: &IOBuf) -> io::Result<()> {
    let mut writer = conn.writer();
    for s in data.slices() {
        writer.write_all(s)?;
    }
    Ok(())
}

/// The records waiting in `conn` to be written, in order.
pub(crate) fn take_output(conn: &mut Connection) -> IOBuf {
    let mut out = IOBuf::new();
    while conn.wants_write() {
        // Writing into an IOBuf cannot fail.
        if conn.write_tls(&mut out).is_err() {
            break;
        }
    }
    out
}

/// A new server-side session.
pub(crate) fn server(config: &Arc<rustls::ServerConfig>) -> Result<TlsSession, String> {
    rustls::ServerConnection::new(config.clone())
        .map(|c| TlsSession::new(c.into()))
        .map_err(|e| format!("TLS: {e}"))
}

/// A new client-side session verifying the server as `name`.
pub(crate) fn client(
    config: &Arc<rustls::ClientConfig>,
    name: rustls::pki_types::ServerName<'static>,
) -> Result<TlsSession, String> {
    rustls::ClientConnection::new(config.clone(), name)
        .map(|c| TlsSession::new(c.into()))
        .map_err(|e| format!("TLS: {e}"))
}
