//! Writing an IOBuf to file descriptors (`writev`) and reading files into
//! it (`preadv`).

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use crate::iobuf::IOBuf;
use crate::portal::IOPortal;
use crate::sys;

/// Most refs passed to one `writev`. The kernel accepts 1024 (`UIO_MAXIOV`);
/// bRPC uses 256 because the iovec array lives on the stack, and a fiber's
/// small stack is 32 KiB — 256 iovecs are 4 KiB of it.
pub const IOV_MAX: usize = 256;

impl IOBuf {
    /// One `writev(2)` of the first refs (at most [`IOV_MAX`] of them and
    /// about `max` bytes) to `fd`, then removes exactly the bytes written —
    /// a partial write can end in the middle of a ref. Returns the bytes
    /// written; errors (`WouldBlock` for a full non-blocking fd) leave the
    /// buffer unchanged.
    pub fn cut_into_fd(&mut self, fd: impl AsFd, max: usize) -> io::Result<usize> {
        self.cut_multiple_into_fd_max(fd.as_fd().as_raw_fd(), &mut [], max)
    }

    /// bRPC's write batching: one `writev(2)` over the front refs of
    /// several buffers, in order, then removes from each exactly what was
    /// written. Returns the total bytes written.
    pub fn cut_multiple_into_fd(fd: impl AsFd, bufs: &mut [&mut IOBuf]) -> io::Result<usize> {
        let fd = fd.as_fd().as_raw_fd();
        match bufs.split_first_mut() {
            Some((first, rest)) => first.cut_multiple_into_fd_max(fd, rest, usize::MAX),
            None => Ok(0),
        }
    }

    /// As [`cut_multiple_into_fd`](Self::cut_multiple_into_fd), with the
    /// write made by `write` over the slices gathered (for a caller that
    /// writes another way than `writev(2)`, such as an io_uring
    /// operation). `write` returns how many bytes of them, in order, it
    /// wrote.
    pub fn cut_multiple_with(
        bufs: &mut [&mut IOBuf],
        write: impl FnOnce(&[IoSlice<'_>]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        match bufs.split_first_mut() {
            Some((first, rest)) => first.cut_multiple_max_with(rest, usize::MAX, write),
            None => Ok(0),
        }
    }

    fn cut_multiple_into_fd_max(
        &mut self,
        fd: RawFd,
        rest: &mut [&mut IOBuf],
        max: usize,
    ) -> io::Result<usize> {
        self.cut_multiple_max_with(rest, max, |iov| sys::writev(fd, iov))
    }

    fn cut_multiple_max_with(
        &mut self,
        rest: &mut [&mut IOBuf],
        max: usize,
        write: impl FnOnce(&[IoSlice<'_>]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        // Uninitialized: filling all IOV_MAX entries (16 KiB) on every call
        // was 2 % of an HTTP server's CPU, for the one or two refs a
        // response usually has.
        let mut iov = [const { MaybeUninit::<IoSlice<'_>>::uninit() }; IOV_MAX];
        let mut n = 0;
        let mut bytes = 0;
        let all = std::iter::once(&*self).chain(rest.iter().map(|b| &**b));
        'gather: for buf in all {
            for s in buf.slices() {
                if n == IOV_MAX || bytes >= max {
                    break 'gather;
                }
                let s = &s[..s.len().min(max - bytes)];
                iov[n].write(IoSlice::new(s));
                n += 1;
                bytes += s.len();
            }
        }
        if n == 0 {
            return Ok(0);
        }
        // SAFETY: the first `n` entries were written above, and
        // `MaybeUninit<IoSlice>` has `IoSlice`'s layout.
        let iov = unsafe { std::slice::from_raw_parts(iov.as_ptr().cast::<IoSlice<'_>>(), n) };
        let written = write(iov)?;
        if written > bytes {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a write reported more bytes than it was given",
            ));
        }
        let mut left = written - self.pop_front(written);
        for b in rest.iter_mut() {
            if left == 0 {
                break;
            }
            left -= b.pop_front(left);
        }
        Ok(written)
    }

    /// Appends `len` bytes of the file `fd` starting at `offset` (positional
    /// reads, the fd's own offset is untouched). Stops early at end of file.
    /// Returns the bytes appended.
    pub fn append_from_file(
        &mut self,
        fd: impl AsFd,
        offset: u64,
        len: usize,
    ) -> io::Result<usize> {
        let fd = fd.as_fd();
        let mut portal = IOPortal::new();
        let mut done = 0;
        while done < len {
            let n = portal.append_from_file(fd, offset + done as u64, len - done)?;
            if n == 0 {
                break;
            }
            done += n;
        }
        self.append_owned(portal.into_inner());
        Ok(done)
    }
}
