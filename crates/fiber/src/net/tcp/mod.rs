//! TCP: listener, stream, and owned halves.

mod listener;
mod split;
mod stream;

pub use listener::{Incoming, TcpListener, DEFAULT_BACKLOG};
pub use split::{OwnedReadHalf, OwnedWriteHalf, ReuniteError};
pub use stream::TcpStream;
