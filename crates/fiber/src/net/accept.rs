//! The accept loop shared by TCP and Unix listeners, with back-off when
//! the process or system runs out of descriptors.
//!
//! Why back off instead of waiting for readiness: with edge-triggered epoll
//! a connection left in the backlog because `accept` failed with `EMFILE`
//! produces no new edge, and retrying at once spins a core at 100%. So the
//! listener sleeps (10 ms, doubling to 1 s), logs a warning, and retries;
//! it recovers by itself once descriptors are free again.

use super::fd::IoFd;
use crate::io::Interest;
use crate::sys;
use socket2::SockAddr;
use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Accepts one connection on `listener` (non-blocking, close-on-exec),
/// suspending while none is pending.
pub(crate) fn accept(listener: &IoFd) -> io::Result<(OwnedFd, SockAddr)> {
    let mut backoff = FIRST_BACKOFF;
    loop {
        match listener.io(Interest::READABLE, |fd, _| sys::socket::accept(fd)) {
            Err(e) if out_of_descriptors(&e) => {
                tracing::warn!(
                    fd = listener.raw(),
                    error = %e,
                    ?backoff,
                    "accept failed: out of descriptors; backing off"
                );
                if crate::sleep(backoff).is_err() {
                    return Err(io::Error::new(
                        io::ErrorKind::Interrupted,
                        "fiber interrupted in accept",
                    ));
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            // The connection died in the backlog: take the next one.
            Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => {}
            r => return r,
        }
    }
}

fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}
