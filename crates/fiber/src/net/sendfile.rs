//! Zero-copy file sends: `sendfile(2)`, or `pread` + `send` where the
//! kernel refuses it.
//!
//! No `splice` stage: on Linux `sendfile` is itself built on splice, so a
//! file that cannot be sent with one cannot with the other; the copy path
//! covers those (e.g. some FUSE or procfs files).

use super::fd::IoFd;
use crate::io::Interest;
use crate::sys;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Largest single `sendfile` (the kernel caps it near 2 GiB anyway).
const MAX_CHUNK: u64 = 1 << 30;
/// Buffer of the copy fallback.
const COPY_BUF: usize = 64 * 1024;

/// Sends `len` bytes of `file` from `offset` on the socket `io`; returns the
/// bytes sent (fewer than `len` only if the file ends first).
pub(crate) fn send_file(io: &IoFd, file: &File, offset: u64, len: u64) -> io::Result<u64> {
    // Bytes batched before go first.
    super::batched::send_queued(io)?;
    let mut sent = 0u64;
    let mut zero_copy = true;
    while sent < len {
        let want = (len - sent).min(MAX_CHUNK);
        let pos = offset + sent;
        let r = if zero_copy {
            sendfile_once(io, file, pos, want)
        } else {
            copy_once(io, file, pos, want)
        };
        match r {
            Ok(0) => break,
            Ok(n) => sent += n,
            Err(e) if zero_copy && refused(&e) => zero_copy = false,
            Err(e) => return Err(e),
        }
    }
    Ok(sent)
}

fn sendfile_once(io: &IoFd, file: &File, pos: u64, want: u64) -> io::Result<u64> {
    let in_fd = file.as_raw_fd();
    let n = io.io(Interest::WRITABLE, |out_fd, _| {
        sys::fd::sendfile(out_fd, in_fd, pos, want as usize)
    })?;
    Ok(n as u64)
}

fn copy_once(io: &IoFd, file: &File, pos: u64, want: u64) -> io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; (want as usize).min(COPY_BUF)];
    let n = file.read_at(&mut buf, pos)?;
    let mut done = 0;
    while done < n {
        done += io.send(&buf[done..n])?;
    }
    Ok(n as u64)
}

/// Errors meaning "this pair of descriptors cannot use sendfile".
fn refused(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
    )
}
