//! Owned halves of a `TcpStream`, for a reading fiber and a writing fiber.

use super::stream::TcpStream;
use crate::net::fd::IoFd;
use std::io;
use std::net::Shutdown;
use std::sync::Arc;

/// The reading half of a [`TcpStream`].
#[derive(Debug)]
pub struct OwnedReadHalf {
    pub(super) io: Arc<IoFd>,
}

/// The writing half of a [`TcpStream`]. Dropping it does not shut the
/// connection down; call [`shutdown`](Self::shutdown) for that.
#[derive(Debug)]
pub struct OwnedWriteHalf {
    pub(super) io: Arc<IoFd>,
}

/// The halves given to [`OwnedReadHalf::reunite`] came from different
/// streams; they are handed back.
#[derive(Debug)]
pub struct ReuniteError(pub OwnedReadHalf, pub OwnedWriteHalf);

impl std::fmt::Display for ReuniteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("tried to reunite halves of different streams")
    }
}

impl std::error::Error for ReuniteError {}

impl OwnedReadHalf {
    /// Puts the stream back together.
    pub fn reunite(self, w: OwnedWriteHalf) -> Result<TcpStream, ReuniteError> {
        if Arc::ptr_eq(&self.io, &w.io) {
            drop(w);
            Ok(TcpStream { io: self.io })
        } else {
            Err(ReuniteError(self, w))
        }
    }
}

impl OwnedWriteHalf {
    /// Shuts the write direction down (the peer reads EOF).
    pub fn shutdown(&self) -> io::Result<()> {
        // What was batched goes before the end of the stream.
        crate::net::batched::send_queued(&self.io)?;
        socket2::SockRef::from(self.io.owned()).shutdown(Shutdown::Write)
    }
}

impl_read!(OwnedReadHalf);
impl_socket_write!(OwnedWriteHalf);
