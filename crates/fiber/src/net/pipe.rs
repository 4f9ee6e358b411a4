//! Anonymous pipes whose reads and writes suspend the fiber.

use super::fd::IoFd;
use crate::io::Interest;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

/// The reading end of a [`pipe`].
#[derive(Debug)]
pub struct PipeReader {
    io: IoFd,
}

/// The writing end of a [`pipe`]. Writing after the reader is gone fails
/// with `BrokenPipe` (the runtime ignores `SIGPIPE`).
#[derive(Debug)]
pub struct PipeWriter {
    io: IoFd,
}

/// A new pipe: `(reader, writer)`.
pub fn pipe() -> io::Result<(PipeReader, PipeWriter)> {
    let (r, w) = crate::sys::fd::pipe()?;
    Ok((
        PipeReader {
            io: IoFd::from_nonblocking_file(r),
        },
        PipeWriter {
            io: IoFd::from_nonblocking_file(w),
        },
    ))
}

impl PipeReader {
    /// Limits how long one read may wait (`None`: forever).
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.io.set_timeout(Interest::READABLE, t)
    }
}

impl PipeWriter {
    /// Limits how long one write may wait (`None`: forever).
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.io.set_timeout(Interest::WRITABLE, t)
    }
}

impl_read!(PipeReader);

impl Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.io.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsRawFd for PipeReader {
    fn as_raw_fd(&self) -> RawFd {
        self.io.raw()
    }
}

impl AsRawFd for PipeWriter {
    fn as_raw_fd(&self) -> RawFd {
        self.io.raw()
    }
}
