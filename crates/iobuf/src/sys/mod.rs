//! Thin wrappers over the Linux system calls the crate uses. Everything
//! above this module is portable Rust over these functions.

mod sendfile;
mod uio;

pub(crate) use sendfile::{pipe, sendfile, splice};
pub(crate) use uio::{pread, preadv, readv, write, writev};

use std::io;

/// Turns a `-1` return into the thread's `errno` as an `io::Error`.
#[inline]
fn check(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}
