//! [`RpcError`]: a bRPC error code with its text (the code ranges, the
//! retry rule and the HTTP statuses are in its docs).

use std::fmt;

use crate::errno;

/// Why a call failed: one of bRPC's codes ([`crate::errno`]), a system
/// `errno` or an application's code, and a human-readable text. Codes
/// cross the wire unchanged, so a handler's error reaches the caller
/// (fibrpc or bRPC) with the same number.
///
/// Equality compares the code, the text and the chosen HTTP status, not
/// where the error came from.
///
/// # Which codes an application uses
///
/// Codes are shared with every bRPC client and server, so bRPC's ranges
/// hold:
///
/// - **below 1000**: system `errno` values (`ECONNREFUSED`, `EINVAL`, ...);
/// - **1000–1999**: the framework's own codes ([`crate::errno`]: 1001–1018,
///   raised by the client or the server side);
/// - **2001–2006**: the server side's framework codes ([`errno::EINTERNAL`]
///   to [`errno::EITP`]);
/// - applications use the rest, as bRPC users do: codes **2000 and above
///   that bRPC does not define** (3000 and above leaves room for bRPC's
///   own) or **negative codes**. [`errno::is_reserved`] tells which codes
///   are taken.
///
/// # Retries
///
/// A handler's error reaches the caller with its code and text. The
/// caller's engine retries only failures its own side produced (a broken
/// or refused connection, see [`crate::channel::retryable`]; once the
/// request may have reached the server, only for an idempotent call); an
/// error answered by the server is final, whatever its code, so a handler
/// that forwards a downstream failure (`io::Error` → `RpcError` with, say,
/// `ECONNREFUSED`) is never mistaken for the caller's own transport error.
///
/// # Over HTTP
///
/// An error becomes a status (bRPC's `ErrorCodeToStatusCode`:
/// `ENOSERVICE` → 404, `EREQUEST` → 400, ..., any other code → 500) unless
/// the handler chose one with [`RpcError::with_http_status`].
#[derive(Debug, Clone, Eq)]
pub struct RpcError {
    /// The code: `errno::E*`, a system `errno` or an application's code;
    /// never 0.
    pub code: i32,
    /// What happened, for people.
    pub text: String,
    /// The HTTP status this error answers with when served over HTTP.
    http_status: Option<u16>,
    /// Produced by this side's call engine (connection, deadline), not
    /// answered by the peer.
    local: bool,
}

impl PartialEq for RpcError {
    fn eq(&self, other: &RpcError) -> bool {
        self.code == other.code && self.text == other.text && self.http_status == other.http_status
    }
}

impl RpcError {
    /// An error with `code` and `text`. A `code` of 0 would read as
    /// success on the wire, so it becomes [`errno::EINTERNAL`].
    pub fn new(code: i32, text: impl Into<String>) -> RpcError {
        RpcError {
            code: if code == 0 { errno::EINTERNAL } else { code },
            text: text.into(),
            http_status: None,
            local: false,
        }
    }

    /// The error's code name (`"ERPCTIMEDOUT"`), if it is one of bRPC's.
    pub fn name(&self) -> Option<&'static str> {
        errno::name(self.code)
    }

    /// This error answering an HTTP request with `status` (100–999, e.g.
    /// 404 or 409) instead of the one its code maps to. Only HTTP sees
    /// it: baidu_std carries the code and the text. An invalid status is
    /// ignored.
    ///
    /// ```
    /// # use fibrpc::RpcError;
    /// let e = RpcError::new(3001, "no such user").with_http_status(404);
    /// assert_eq!(e.http_status(), Some(404));
    /// ```
    pub fn with_http_status(mut self, status: u16) -> RpcError {
        self.http_status = (100..1000).contains(&status).then_some(status);
        self
    }

    /// The HTTP status chosen with [`with_http_status`](Self::with_http_status).
    pub fn http_status(&self) -> Option<u16> {
        self.http_status
    }

    /// Whether this side's call engine produced the error (the connection
    /// failed or could not be made, the deadline passed), rather than the
    /// peer answering with it. Only such errors are retried.
    pub fn is_local(&self) -> bool {
        self.local
    }

    /// Marks the error as produced by this side's call engine.
    pub(crate) fn into_local(mut self) -> RpcError {
        self.local = true;
        self
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match errno::name(self.code) {
            Some(name) => write!(f, "[{} {}] {}", self.code, name, self.text),
            None => write!(f, "[{}] {}", self.code, self.text),
        }
    }
}

impl std::error::Error for RpcError {}

/// The system `errno` becomes the code (`EINTERNAL` without one). The
/// error is not [local](RpcError::is_local): returned by a handler, it
/// reaches the caller as an answer, which is never retried.
impl From<std::io::Error> for RpcError {
    fn from(e: std::io::Error) -> RpcError {
        RpcError::new(e.raw_os_error().unwrap_or(errno::EINTERNAL), e.to_string())
    }
}
