//! `IOPortal`: an IOBuf that reads from file descriptors (bRPC's
//! `IOPortal`). It keeps the partially filled blocks of earlier reads so the
//! next read continues in their tails instead of wasting them.

use std::io;
use std::mem::MaybeUninit;
use std::ops::{Deref, DerefMut};
use std::os::fd::{AsFd, AsRawFd};

use crate::iobuf::IOBuf;
use crate::sys;
use crate::tail::Tail;

/// At most this many blocks are offered to one `readv` (bRPC: 64 too).
const MAX_READ_IOV: usize = 64;

/// An [`IOBuf`] plus the blocks it reads into. Derefs to the `IOBuf`, so
/// the bytes read can be cut, compared and written like any other.
#[derive(Default)]
pub struct IOPortal {
    buf: IOBuf,
    /// Blocks with spare room, in fill order; the first may be partly used.
    tails: Vec<Tail>,
    /// Bytes the last read offered (less than asked when the iovecs ran
    /// out), so callers can tell a short read from a full one.
    last_offered: usize,
}

impl IOPortal {
    /// An empty portal. Allocates nothing until the first read.
    pub fn new() -> IOPortal {
        IOPortal::default()
    }

    /// One `readv(2)` of at most `max` bytes from `fd` into block tails,
    /// appending what was read. Returns the bytes read, `Ok(0)` at end of
    /// file (or when `max == 0`), and `WouldBlock` when a non-blocking fd has
    /// nothing to read.
    pub fn append_from_fd(&mut self, fd: impl AsFd, max: usize) -> io::Result<usize> {
        let fd = fd.as_fd().as_raw_fd();
        self.read_with(max, false, |iov| {
            // SAFETY: `read_with` hands us iovecs over tails we own
            // exclusively; readv only writes into them.
            unsafe { sys::readv(fd, iov) }
        })
    }

    /// As [`append_from_fd`](Self::append_from_fd), with the read made by
    /// `read` over the iovecs offered (for a caller that reads another way
    /// than `readv(2)`, such as an io_uring operation). `read` returns how
    /// many bytes it wrote into them, in order.
    ///
    /// When the current block's tail alone has room for half of `max`,
    /// only it is offered: one buffer, which a socket reads with `recv(2)`
    /// rather than `readv(2)` (small messages arrive in a tail that always
    /// has less than 8 KiB left, so the usual 8 KiB offer was two iovecs
    /// per read). [`last_offered`](Self::last_offered) says how much was.
    pub fn append_with(
        &mut self,
        max: usize,
        read: impl FnOnce(&mut [io::IoSliceMut<'_>]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        self.read_with(max, true, |iov| {
            // SAFETY: `IoSliceMut` is ABI-compatible with `iovec` on Unix
            // (std guarantees it), and the iovecs name block tails we own
            // exclusively for the call.
            let slices = unsafe {
                std::slice::from_raw_parts_mut(
                    iov.as_mut_ptr().cast::<io::IoSliceMut<'_>>(),
                    iov.len(),
                )
            };
            let n = read(slices)?;
            if n > iov.iter().map(|v| v.iov_len).sum::<usize>() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a read reported more bytes than it was offered",
                ));
            }
            Ok(n)
        })
    }

    /// One `preadv(2)` of at most `max` bytes at `offset` of `fd` (a file).
    /// Returns the bytes read, 0 at end of file.
    pub fn append_from_file(
        &mut self,
        fd: impl AsFd,
        offset: u64,
        max: usize,
    ) -> io::Result<usize> {
        let fd = fd.as_fd().as_raw_fd();
        self.read_with(max, false, |iov| {
            // SAFETY: as in `append_from_fd`.
            unsafe { sys::preadv(fd, iov, offset) }
        })
    }

    /// How many bytes the last read offered the kernel: at most the `max`
    /// it was given, less when the 64 blocks one read may fill did not hold that
    /// much (or [`append_with`](Self::append_with) stopped at half of it).
    /// A read that returned fewer bytes than this found the socket
    /// empty at the time (the readiness edge for later bytes is new).
    pub fn last_offered(&self) -> usize {
        self.last_offered
    }

    /// Releases the spare blocks kept for the next read.
    pub fn return_cached_blocks(&mut self) {
        self.tails.clear();
    }

    /// The bytes read so far, dropping the spare blocks.
    pub fn into_inner(self) -> IOBuf {
        self.buf
    }

    /// Offers up to `max` bytes of block tails to `read` as iovecs and turns
    /// the `n` bytes it reports into refs.
    /// `one_tail`: stop adding tails once those offered hold half of
    /// `max`, so a first tail that does is offered alone (see
    /// [`append_with`](Self::append_with)).
    fn read_with(
        &mut self,
        max: usize,
        one_tail: bool,
        read: impl FnOnce(&mut [libc::iovec]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        if max == 0 {
            return Ok(0);
        }
        // Left uninitialized: zeroing 64 iovecs (1 KiB) was a `memset` of
        // ~75 instructions per read, where most reads fill one or two.
        let mut iov = [const { MaybeUninit::<libc::iovec>::uninit() }; MAX_READ_IOV];
        let mut niov = 0;
        let mut space = 0;
        while space < max && niov < MAX_READ_IOV {
            if niov == self.tails.len() {
                self.tails.push(Tail::new());
            }
            let t = &self.tails[niov];
            let len = t.spare().min(max - space);
            iov[niov].write(libc::iovec {
                iov_base: t.tail_ptr().cast(),
                iov_len: len,
            });
            space += len;
            niov += 1;
            if one_tail && space >= max / 2 {
                break;
            }
        }
        self.last_offered = space;
        // SAFETY: the loop above wrote `iov[..niov]`, and `MaybeUninit<T>`
        // has `T`'s layout.
        let iov =
            unsafe { std::slice::from_raw_parts_mut(iov.as_mut_ptr().cast::<libc::iovec>(), niov) };
        let n = read(iov)?;
        debug_assert!(n <= space);
        // The kernel filled the iovecs in order: hand each tail its share.
        let mut left = n;
        for (t, v) in self.tails.iter_mut().zip(iov.iter()) {
            if left == 0 {
                break;
            }
            let k = left.min(v.iov_len);
            // SAFETY: the kernel initialized the first `k` bytes of this
            // tail (bytes are delivered in iovec order).
            unsafe { t.commit(&mut self.buf.q, k) };
            left -= k;
        }
        self.tails.retain(|t| !t.is_full());
        Ok(n)
    }
}

impl Deref for IOPortal {
    type Target = IOBuf;
    fn deref(&self) -> &IOBuf {
        &self.buf
    }
}

impl DerefMut for IOPortal {
    fn deref_mut(&mut self) -> &mut IOBuf {
        &mut self.buf
    }
}

impl std::fmt::Debug for IOPortal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.buf.fmt(f)
    }
}
