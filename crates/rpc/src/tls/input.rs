//! A connection's TLS input path, apart from the socket: the first-byte
//! decision of a server connection and the decryption loop the socket's
//! reader runs ([`decrypt_all`]), and [`TlsInput`], the same code fed
//! bytes in memory — what the `tls_server` and `tls_client` fuzz targets
//! drive.

use std::sync::Arc;

use fibrpc_iobuf::IOBuf;

use super::session::{self, TlsSession};
use super::{TlsClientConfig, TlsServerConfig};

/// The first byte of a TLS handshake record.
const HANDSHAKE: u8 = 0x16;

/// What a server connection's first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FirstBytes {
    /// Nothing read yet.
    Empty,
    /// A TLS handshake record starts (0x16, which no plaintext protocol
    /// fibrpc speaks starts with).
    Tls,
    /// Anything else.
    Plain,
}

/// Looks at the first byte of a server connection's input.
pub(crate) fn first_bytes(input: &IOBuf) -> FirstBytes {
    let mut b = [0u8; 1];
    match input.copy_to(&mut b, 0) {
        0 => FirstBytes::Empty,
        _ if b[0] == HANDSHAKE => FirstBytes::Tls,
        _ => FirstBytes::Plain,
    }
}

/// Decrypts every whole record at the front of `raw` into `plain`, one
/// record per lock of the session, and hands what rustls produced
/// meanwhile (handshake records, a `KeyUpdate`, the alert telling the
/// peer why it failed) to `emit` before unlocking, so that records are
/// emitted in the order rustls numbered them. A partial record stays in
/// `raw`. An error (from rustls or from `emit`) means the connection must
/// close.
pub(crate) fn decrypt_all(
    tls: &TlsSession,
    raw: &mut IOBuf,
    plain: &mut IOBuf,
    mut emit: impl FnMut(IOBuf) -> Result<(), String>,
) -> Result<(), String> {
    loop {
        let mut conn = tls.lock();
        let result = tls.decrypt_one(&mut conn, raw, plain);
        let out = session::take_output(&mut conn);
        if !out.is_empty() {
            emit(out)?;
        }
        drop(conn);
        if !result? {
            return Ok(());
        }
    }
}

/// Where a [`TlsInput`] is.
enum Mode {
    /// A server connection before its first byte.
    Undecided(Arc<rustls::ServerConfig>),
    /// Plaintext: the bytes are not TLS's business (the protocols cut
    /// them as they are).
    Plain,
    Tls(Box<TlsSession>),
}

/// One connection's TLS input path without a socket, fed the bytes a
/// connection reads: a server's first-byte decision (TLS or plaintext,
/// plaintext refused when TLS is required), the cutting of whole records
/// off the input and their decryption, with the code a server's or a
/// channel's socket runs. What the connection would write back
/// (handshake records, alerts) collects in [`take_output`](Self::take_output).
/// Public for the fuzz targets; a program has no use for it.
pub struct TlsInput {
    mode: Mode,
    required: bool,
    raw: IOBuf,
    plain: IOBuf,
    out: IOBuf,
    /// Why the connection closed; nothing is read after.
    failed: Option<String>,
}

impl std::fmt::Debug for TlsInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsInput")
            .field("buffered", &self.buffered())
            .field("plaintext", &self.plain.len())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl TlsInput {
    /// A server connection, accepted on a port serving TLS with `config`
    /// (and refusing plaintext if `required`).
    pub fn server(config: &TlsServerConfig, required: bool) -> TlsInput {
        TlsInput::with_mode(Mode::Undecided(config.rustls_config().clone()), required)
    }

    /// A channel's connection to 127.0.0.1 (or `config`'s server name)
    /// right after the connect: its ClientHello is in the output.
    pub fn client(config: &TlsClientConfig) -> Result<TlsInput, String> {
        let name = config.server_name_for(std::net::Ipv4Addr::LOCALHOST.into());
        let tls = session::client(config.rustls_config(), name)?;
        let mut input = TlsInput::with_mode(Mode::Tls(Box::new(tls)), false);
        if let Mode::Tls(tls) = &input.mode {
            input.out = session::take_output(&mut tls.lock());
        }
        Ok(input)
    }

    fn with_mode(mode: Mode, required: bool) -> TlsInput {
        TlsInput {
            mode,
            required,
            raw: IOBuf::new(),
            plain: IOBuf::new(),
            out: IOBuf::new(),
            failed: None,
        }
    }

    /// Takes `bytes` as one read. An error closes the connection (its
    /// reason, as the server logs it); every later feed returns it again.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), String> {
        if let Some(why) = &self.failed {
            return Err(why.clone());
        }
        self.raw.append(bytes);
        let r = self.process();
        if let Err(why) = &r {
            self.failed = Some(why.clone());
        }
        r
    }

    fn process(&mut self) -> Result<(), String> {
        if let Mode::Undecided(config) = &self.mode {
            match first_bytes(&self.raw) {
                FirstBytes::Empty => return Ok(()),
                FirstBytes::Tls => self.mode = Mode::Tls(Box::new(session::server(config)?)),
                FirstBytes::Plain if self.required => {
                    return Err("plaintext on a server that requires TLS".into())
                }
                FirstBytes::Plain => self.mode = Mode::Plain,
            }
        }
        match &self.mode {
            Mode::Tls(tls) => {
                let out = &mut self.out;
                decrypt_all(tls, &mut self.raw, &mut self.plain, |o| {
                    out.append_owned(o);
                    Ok(())
                })
            }
            // The protocols' business: not kept.
            _ => {
                self.raw.clear();
                Ok(())
            }
        }
    }

    /// `Some(true)` once the connection speaks TLS, `Some(false)` once it
    /// is plaintext, `None` before its first byte.
    pub fn is_tls(&self) -> Option<bool> {
        match self.mode {
            Mode::Undecided(_) => None,
            Mode::Plain => Some(false),
            Mode::Tls(_) => Some(true),
        }
    }

    /// Whether a TLS handshake is under way.
    pub fn handshaking(&self) -> bool {
        matches!(&self.mode, Mode::Tls(t) if t.handshaking())
    }

    /// Encrypted bytes waiting for the rest of their record: less than
    /// one record's maximum (5 + 2^14 + 2048 bytes).
    pub fn buffered(&self) -> usize {
        self.raw.len()
    }

    /// The decrypted bytes (what the protocols would cut).
    pub fn plaintext(&mut self) -> &mut IOBuf {
        &mut self.plain
    }

    /// What the connection would have written since the last call.
    pub fn take_output(&mut self) -> IOBuf {
        std::mem::take(&mut self.out)
    }
}
