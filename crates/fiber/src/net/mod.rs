//! Blocking-style networking for fibers: TCP, Unix sockets and pipes.
//!
//! Every type here is backed by a non-blocking descriptor registered with
//! the edge-triggered dispatcher ([`crate::io`]). A read or write that
//! would block suspends the calling fiber until the descriptor is ready
//! (a plain thread blocks instead), so code reads like `std::net` while a
//! worker serves thousands of connections. Timeouts give
//! `ErrorKind::TimedOut`; [`crate::interrupt`] gives `ErrorKind::Interrupted`.
//!
//! ```
//! use fibrpc_fiber::net::{TcpListener, TcpStream};
//! use std::io::{Read, Write};
//!
//! let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//! let addr = listener.local_addr().unwrap();
//! let server = fibrpc_fiber::spawn(move || {
//!     let (mut conn, _) = listener.accept().unwrap();
//!     let mut buf = [0u8; 5];
//!     conn.read_exact(&mut buf).unwrap();
//!     conn.write_all(&buf).unwrap();
//! });
//! let mut c = TcpStream::connect(addr).unwrap();
//! c.write_all(b"hello").unwrap();
//! let mut back = [0u8; 5];
//! c.read_exact(&mut back).unwrap();
//! assert_eq!(&back, b"hello");
//! server.join().unwrap();
//! ```

/// `Read` for types with an `io: IoFd` (or `Arc<IoFd>`) field.
macro_rules! impl_read {
    ($($t:ty),*) => {$(
        impl std::io::Read for $t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.io.read(buf)
            }

            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                self.io.read_vectored(bufs)
            }
        }
    )*};
}

/// `Write` through `send(MSG_NOSIGNAL)` for socket types with an `io` field.
macro_rules! impl_socket_write {
    ($($t:ty),*) => {$(
        impl std::io::Write for $t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.io.send(buf)
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                self.io.send_vectored(bufs)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
    )*};
}

mod accept;
pub(crate) mod batched;
pub(crate) mod fd;
mod pipe;
mod sendfile;
pub mod tcp;
mod unix;

pub use pipe::{pipe, PipeReader, PipeWriter};
pub use tcp::{TcpListener, TcpStream};
pub use unix::{UnixListener, UnixStream};
