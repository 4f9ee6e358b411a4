//! `FileRegion`: part of a file sent to a socket without passing through
//! user space. `sendfile(2)` first; where the kernel refuses it (`EINVAL`,
//! `ENOSYS`, ...), `splice(2)` through a pipe; where that is refused too,
//! `pread` + `write` through a bounce buffer (the only copying path, and it
//! is counted in [`FileRegion::copied_bytes`]).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use crate::sys;

/// Largest amount handed to one sendfile/splice call.
const CHUNK: usize = 1 << 20;
/// Pipe-sized step for splice and the bounce buffer.
const PIPE_CHUNK: usize = 64 << 10;

/// How a [`FileRegion`] moves its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendMode {
    /// `sendfile(2)`: file pages go straight to the socket.
    Sendfile,
    /// `splice(2)` file → pipe → socket: still no copy to user space.
    Splice,
    /// `pread` + `write`: the fallback that copies.
    Copy,
}

/// A range of a file to send to a socket, consumed as it is sent.
pub struct FileRegion {
    file: Arc<File>,
    offset: u64,
    remaining: u64,
    mode: SendMode,
    /// Pipe for splice mode, created on first use.
    pipe: Option<(OwnedFd, OwnedFd)>,
    /// Bytes already spliced into the pipe but not yet out of it.
    in_pipe: usize,
    /// Copy mode: bytes read from the file but not yet written.
    pending: Vec<u8>,
    pending_pos: usize,
    copied: u64,
}

fn refused(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP | libc::ESPIPE)
    )
}

impl FileRegion {
    /// `len` bytes of `file` starting at `offset`.
    pub fn new(file: Arc<File>, offset: u64, len: u64) -> FileRegion {
        FileRegion {
            file,
            offset,
            remaining: len,
            mode: SendMode::Sendfile,
            pipe: None,
            in_pipe: 0,
            pending: Vec::new(),
            pending_pos: 0,
            copied: 0,
        }
    }

    /// Starts in `mode` instead of `sendfile` (to test or force a fallback).
    pub fn with_mode(mut self, mode: SendMode) -> FileRegion {
        self.mode = mode;
        self
    }

    /// Bytes not yet sent.
    pub fn len(&self) -> u64 {
        self.remaining + self.in_pipe as u64 + (self.pending.len() - self.pending_pos) as u64
    }

    /// True when everything was sent.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The method in use (it changes when the kernel refuses one).
    pub fn mode(&self) -> SendMode {
        self.mode
    }

    /// Bytes that went through a user-space buffer (0 unless the copy
    /// fallback was needed).
    pub fn copied_bytes(&self) -> u64 {
        self.copied
    }

    /// Sends some of the region to `sock`. Returns the bytes sent (0 once
    /// empty); `WouldBlock` from a full non-blocking socket;
    /// `UnexpectedEof` when the file is shorter than the region.
    pub fn send_to(&mut self, sock: impl AsFd) -> io::Result<usize> {
        let sock = sock.as_fd().as_raw_fd();
        loop {
            let r = match self.mode {
                SendMode::Sendfile => self.send_sendfile(sock),
                SendMode::Splice => self.send_splice(sock),
                SendMode::Copy => self.send_copy(sock),
            };
            match r {
                Err(e) if refused(&e) && self.mode != SendMode::Copy => self.degrade()?,
                r => return r,
            }
        }
    }

    /// Moves to the next fallback, keeping bytes already taken from the
    /// file (those sitting in the pipe) in order.
    fn degrade(&mut self) -> io::Result<()> {
        if self.mode == SendMode::Splice && self.in_pipe > 0 {
            let (rd, _) = self.pipe.as_ref().expect("bytes in pipe imply a pipe");
            let mut buf = vec![0u8; self.in_pipe];
            let mut got = 0;
            while got < buf.len() {
                // SAFETY: `buf[got..]` is writable and exclusively ours.
                let n = unsafe {
                    libc::read(
                        rd.as_raw_fd(),
                        buf[got..].as_mut_ptr().cast(),
                        buf.len() - got,
                    )
                };
                if n <= 0 {
                    return Err(io::Error::last_os_error());
                }
                got += n as usize;
            }
            self.copied += got as u64;
            self.pending = buf;
            self.pending_pos = 0;
            self.in_pipe = 0;
        }
        self.mode = match self.mode {
            SendMode::Sendfile => SendMode::Splice,
            _ => SendMode::Copy,
        };
        Ok(())
    }

    fn eof() -> io::Error {
        io::Error::new(io::ErrorKind::UnexpectedEof, "file shorter than region")
    }

    fn send_sendfile(&mut self, sock: RawFd) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let count = (self.remaining as usize).min(CHUNK);
        let n = sys::sendfile(sock, self.file.as_raw_fd(), &mut self.offset, count)?;
        if n == 0 {
            return Err(Self::eof());
        }
        self.remaining -= n as u64;
        Ok(n)
    }

    fn send_splice(&mut self, sock: RawFd) -> io::Result<usize> {
        if self.pipe.is_none() {
            self.pipe = Some(sys::pipe()?);
        }
        let (rd, wr) = self.pipe.as_ref().expect("just created");
        let (rd, wr) = (rd.as_raw_fd(), wr.as_raw_fd());
        let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
        if self.in_pipe == 0 {
            if self.remaining == 0 {
                return Ok(0);
            }
            let count = (self.remaining as usize).min(PIPE_CHUNK);
            let n = sys::splice(
                self.file.as_raw_fd(),
                Some(&mut self.offset),
                wr,
                count,
                flags,
            )?;
            if n == 0 {
                return Err(Self::eof());
            }
            self.remaining -= n as u64;
            self.in_pipe = n;
        }
        let n = sys::splice(rd, None, sock, self.in_pipe, flags)?;
        self.in_pipe -= n;
        Ok(n)
    }

    fn send_copy(&mut self, sock: RawFd) -> io::Result<usize> {
        if self.pending_pos == self.pending.len() {
            if self.remaining == 0 {
                return Ok(0);
            }
            let count = (self.remaining as usize).min(PIPE_CHUNK);
            self.pending.resize(count, 0);
            let n = sys::pread(self.file.as_raw_fd(), &mut self.pending, self.offset)?;
            if n == 0 {
                return Err(Self::eof());
            }
            self.pending.truncate(n);
            self.pending_pos = 0;
            self.offset += n as u64;
            self.remaining -= n as u64;
            self.copied += n as u64;
        }
        let n = sys::write(sock, &self.pending[self.pending_pos..])?;
        self.pending_pos += n;
        Ok(n)
    }
}

impl std::fmt::Debug for FileRegion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileRegion")
            .field("offset", &self.offset)
            .field("len", &self.len())
            .field("mode", &self.mode)
            .finish()
    }
}
