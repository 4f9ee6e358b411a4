//! The descriptors under test: the `RLIMIT_NOFILE` budget, and a set of
//! unix socketpair ends of which `ACTIVE` are made readable on demand and
//! the rest never are.

use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

/// Descriptors this process may need besides the ones under test: stdio,
/// the epoll instance, whatever the runtime and cargo leave open.
const RESERVE: usize = 32;

/// The per-process descriptor limit after [`raise_nofile_limit`].
pub struct NofileLimit {
    pub soft: usize,
    pub hard: usize,
    pub was: usize,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (to 2^20 if the hard
/// limit is unlimited, which is the kernel's default `nr_open`): 10k idle
/// descriptors do not fit under the usual soft limit of 1024.
pub fn raise_nofile_limit() -> io::Result<NofileLimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let was = lim.rlim_cur;
    let target = if lim.rlim_max == libc::RLIM_INFINITY {
        1 << 20
    } else {
        lim.rlim_max
    };
    let raised = libc::rlimit {
        rlim_cur: target,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: `raised` is a valid rlimit; setrlimit only reads it.
    let soft = if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        target
    } else {
        was // Keep going with what we have; the caller scales N down.
    };
    Ok(NofileLimit {
        soft: soft as usize,
        hard: lim.rlim_max as usize,
        was: was as usize,
    })
}

/// The descriptors this process has open now (from `/proc/self/fd`; empty
/// if that cannot be read).
fn open_fds() -> Vec<RawFd> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// How many idle descriptors fit in the limit next to the `active` ones,
/// their peers, one spare end and the descriptors already open.
pub fn max_idle(limit: &NofileLimit, active: usize) -> usize {
    let used = open_fds().len() + RESERVE + 2 * active + 1;
    limit.soft.saturating_sub(used)
}

/// The largest even number of idle descriptors that `select` can still
/// watch next to `active` ones: every watched descriptor must be below
/// `FD_SETSIZE`, and those already open take the lowest numbers. Even,
/// because an odd count leaves one unwatched spare end among them.
pub fn select_max_idle(active: usize) -> usize {
    let low = open_fds()
        .iter()
        .filter(|&&fd| (fd as usize) < libc::FD_SETSIZE)
        .count();
    libc::FD_SETSIZE.saturating_sub(low + active) & !1
}

/// `n_idle + active` watched socketpair ends, the `active` ones spread
/// evenly among the idle ones (in descriptor order, which only `select`
/// can tell), plus the peers that make the active ones readable.
pub struct Descriptors {
    /// Every watched end, idle and active, in creation order.
    watched: Vec<OwnedFd>,
    /// Peers of the active ends: one byte written here makes one readable.
    writers: Vec<UnixStream>,
    /// An idle pair's second end when `n_idle` is odd: kept open (closing
    /// it would make its peer readable with EOF) but not watched.
    _spare: Option<OwnedFd>,
}

impl Descriptors {
    pub fn new(n_idle: usize, active: usize, nofile: usize) -> io::Result<Self> {
        let total = n_idle + active;
        let mut watched = Vec::with_capacity(total);
        let mut writers = Vec::with_capacity(active);
        let mut pending: Option<OwnedFd> = None;
        for slot in 0..total {
            if writers.len() < active && slot == active_slot(writers.len(), total, active) {
                let (reader, writer) = nonblocking_pair()?;
                writers.push(move_out_of_select_range(writer, nofile)?);
                watched.push(reader);
            } else if let Some(fd) = pending.take() {
                watched.push(fd);
            } else {
                // Both ends of an idle pair are watched: one descriptor
                // each, so 10k idle ones fit in a 20k limit.
                let (a, b) = nonblocking_pair()?;
                watched.push(a);
                pending = Some(b);
            }
        }
        Ok(Self {
            watched,
            writers,
            _spare: pending,
        })
    }

    /// The watched descriptors, for a mechanism to register.
    pub fn watched(&self) -> Vec<RawFd> {
        self.watched.iter().map(|fd| fd.as_raw_fd()).collect()
    }

    pub fn max_watched(&self) -> RawFd {
        self.watched
            .iter()
            .map(|fd| fd.as_raw_fd())
            .max()
            .unwrap_or(-1)
    }

    /// Makes the active ends readable: one byte to each peer.
    pub fn make_active_readable(&self) {
        for w in &self.writers {
            let n = (&*w).write(&[1]).expect("write to an active peer");
            assert_eq!(n, 1, "short write to an active peer");
        }
    }

    /// Reads the byte back from each ready end, so it is idle again; panics
    /// if one had nothing to read (a mechanism reported an idle end).
    pub fn drain(&self, ready: &[RawFd]) {
        for &fd in ready {
            let mut byte = 0u8;
            // SAFETY: `fd` is one of `self.watched` (mechanisms only report
            // registered descriptors), open while `self` lives; `byte` is a
            // writable one-byte buffer.
            let n = unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) };
            assert_eq!(n, 1, "fd {fd} reported ready but had no byte");
        }
    }
}

/// The slot of the `k`-th active end among `total`: the middle of the
/// `k`-th of `active` equal stretches.
fn active_slot(k: usize, total: usize, active: usize) -> usize {
    (2 * k + 1) * total / (2 * active)
}

fn nonblocking_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let (a, b) = UnixStream::pair()?;
    // Non-blocking so a wrongly reported idle end fails the read instead
    // of hanging the benchmark.
    a.set_nonblocking(true)?;
    b.set_nonblocking(true)?;
    Ok((a.into(), b.into()))
}

/// Moves a writer to a descriptor number at or above `FD_SETSIZE`, where
/// it does not take a slot that `select` needs for a watched end. Leaves
/// it where it is if the limit has no room up there.
fn move_out_of_select_range(fd: OwnedFd, nofile: usize) -> io::Result<UnixStream> {
    if nofile < libc::FD_SETSIZE + RESERVE {
        return Ok(fd.into());
    }
    // SAFETY: `fd` is open and owned; F_DUPFD_CLOEXEC only creates a new
    // descriptor (the lowest free one >= FD_SETSIZE) and returns it or -1.
    let moved = unsafe {
        libc::fcntl(
            fd.as_raw_fd(),
            libc::F_DUPFD_CLOEXEC,
            libc::FD_SETSIZE as libc::c_int,
        )
    };
    if moved < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `moved` was just created by fcntl and nothing else owns it;
    // the original `fd` is closed when it drops here.
    Ok(unsafe { OwnedFd::from_raw_fd(moved) }.into())
}
