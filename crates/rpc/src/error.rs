//! [`RpcError`]: a bRPC error code with its text.

use std::fmt;

use crate::errno;

/// Why a call failed: one of bRPC's codes ([`crate::errno`]) or a system
/// `errno`, and a human-readable text. Codes cross the wire unchanged, so a
/// handler's error reaches the caller (fibrpc or bRPC) with the same number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    /// The code: `errno::E*` or a system `errno`; never 0.
    pub code: i32,
    /// What happened, for people.
    pub text: String,
}

impl RpcError {
    /// An error with `code` and `text`. A `code` of 0 would read as
    /// success on the wire, so it becomes [`errno::EINTERNAL`].
    pub fn new(code: i32, text: impl Into<String>) -> RpcError {
        RpcError {
            code: if code == 0 { errno::EINTERNAL } else { code },
            text: text.into(),
        }
    }

    /// The error's code name (`"ERPCTIMEDOUT"`), if it is one of bRPC's.
    pub fn name(&self) -> Option<&'static str> {
        errno::name(self.code)
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

impl From<std::io::Error> for RpcError {
    fn from(e: std::io::Error) -> RpcError {
        RpcError::new(e.raw_os_error().unwrap_or(errno::EINTERNAL), e.to_string())
    }
}
