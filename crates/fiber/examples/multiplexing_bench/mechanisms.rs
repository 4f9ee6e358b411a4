//! The readiness mechanisms under test, each used the way a server loop
//! uses it: `wait` blocks until the expected number of descriptors are
//! ready and collects them ("dispatch"), nothing more.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A safety net, not part of the measurement: the active descriptors are
/// readable before every wait, so a wait that times out is a bug.
const TIMEOUT_MS: libc::c_int = 5_000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Select,
    Poll,
    EpollEt,
    EpollLt,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Select, Kind::Poll, Kind::EpollEt, Kind::EpollLt];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Select => "select",
            Kind::Poll => "poll",
            Kind::EpollEt => "epoll ET",
            Kind::EpollLt => "epoll LT",
        }
    }

    /// Sets the mechanism up for `watched`: nothing for select and poll
    /// (they take the whole set on every call), one `epoll_ctl` per
    /// descriptor for epoll.
    pub fn prepare(self, watched: Vec<RawFd>) -> io::Result<Box<dyn Mechanism>> {
        Ok(match self {
            Kind::Select => Box::new(Select::new(watched)),
            Kind::Poll => Box::new(Poll::new(&watched)),
            Kind::EpollEt => Box::new(Epoll::new(&watched, true)?),
            Kind::EpollLt => Box::new(Epoll::new(&watched, false)?),
        })
    }
}

pub trait Mechanism {
    /// Waits until `expected` descriptors have been reported readable and
    /// leaves them, each once, in `ready`.
    fn wait(&mut self, expected: usize, ready: &mut Vec<RawFd>);
}

/// Panics on a failed or timed-out call; retries on EINTR (returns false).
fn check(call: &str, rc: libc::c_int) -> bool {
    if rc > 0 {
        return true;
    }
    let err = io::Error::last_os_error();
    match rc {
        0 => panic!("{call}: no descriptor ready within {TIMEOUT_MS} ms"),
        _ if err.kind() == io::ErrorKind::Interrupted => false,
        _ => panic!("{call}: {err}"),
    }
}

/// `select(2)` as a server uses it: the `fd_set` is an in-out argument, so
/// it is rebuilt from the watched list before every call, and the result is
/// found by testing every watched descriptor.
struct Select {
    watched: Vec<RawFd>,
    nfds: libc::c_int,
    set: libc::fd_set,
}

impl Select {
    fn new(watched: Vec<RawFd>) -> Self {
        let max = watched.iter().copied().max().unwrap_or(0);
        // The caller only picks select when every descriptor fits.
        assert!((max as usize) < libc::FD_SETSIZE, "fd {max} >= FD_SETSIZE");
        // SAFETY: fd_set is an array of integers; all zeroes is the empty set.
        let set: libc::fd_set = unsafe { std::mem::zeroed() };
        Self {
            watched,
            nfds: max + 1,
            set,
        }
    }

    fn call_once(&mut self, ready: &mut Vec<RawFd>) -> bool {
        // SAFETY: `self.set` is a valid fd_set and every watched descriptor
        // is below FD_SETSIZE (checked in `new`).
        unsafe {
            libc::FD_ZERO(&mut self.set);
            for &fd in &self.watched {
                libc::FD_SET(fd, &mut self.set);
            }
        }
        let mut timeout = libc::timeval {
            tv_sec: libc::time_t::from(TIMEOUT_MS / 1000),
            tv_usec: 0,
        };
        let null = std::ptr::null_mut();
        // SAFETY: the read set and timeout are valid for the call; the
        // write and except sets may be null.
        let rc = unsafe { libc::select(self.nfds, &mut self.set, null, null, &mut timeout) };
        if !check("select", rc) {
            return false;
        }
        for &fd in &self.watched {
            // SAFETY: `self.set` is valid and `fd` < FD_SETSIZE.
            if unsafe { libc::FD_ISSET(fd, &self.set) } {
                ready.push(fd);
            }
        }
        true
    }
}

impl Mechanism for Select {
    fn wait(&mut self, expected: usize, ready: &mut Vec<RawFd>) {
        // Level-triggered: each call reports every ready descriptor, so a
        // short answer is replaced by the next one, not added to.
        loop {
            ready.clear();
            if self.call_once(ready) && ready.len() >= expected {
                return;
            }
        }
    }
}

/// `poll(2)`: the `pollfd` array persists (the kernel only writes
/// `revents`), but the kernel walks all of it on every call and so does the
/// scan for results.
struct Poll {
    fds: Vec<libc::pollfd>,
}

impl Poll {
    fn new(watched: &[RawFd]) -> Self {
        let fds = watched
            .iter()
            .map(|&fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        Self { fds }
    }

    fn call_once(&mut self, ready: &mut Vec<RawFd>) -> bool {
        let len = self.fds.len() as libc::nfds_t;
        // SAFETY: `self.fds` is a valid array of `len` pollfds.
        let rc = unsafe { libc::poll(self.fds.as_mut_ptr(), len, TIMEOUT_MS) };
        if !check("poll", rc) {
            return false;
        }
        let hits = self.fds.iter().filter(|p| p.revents & libc::POLLIN != 0);
        ready.extend(hits.map(|p| p.fd));
        true
    }
}

impl Mechanism for Poll {
    fn wait(&mut self, expected: usize, ready: &mut Vec<RawFd>) {
        loop {
            ready.clear();
            if self.call_once(ready) && ready.len() >= expected {
                return;
            }
        }
    }
}

/// `epoll(7)`: every descriptor is registered once, up front (not timed);
/// `epoll_wait` returns only the ready ones. Edge-triggered (`EPOLLET`, what
/// bRPC and fibrpc's dispatcher use) or level-triggered.
struct Epoll {
    epfd: OwnedFd,
    edge: bool,
    events: Vec<libc::epoll_event>,
}

/// Room for every active descriptor in one `epoll_wait`.
const EPOLL_BATCH: usize = 256;

impl Epoll {
    fn new(watched: &[RawFd], edge: bool) -> io::Result<Self> {
        // SAFETY: plain syscall; the result is checked below.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and nothing else owns it.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        let flags = libc::EPOLLIN as u32 | if edge { libc::EPOLLET as u32 } else { 0 };
        for &w in watched {
            let mut ev = libc::epoll_event {
                events: flags,
                u64: w as u64,
            };
            // SAFETY: `epfd` and `w` are open; `ev` is a valid event that
            // epoll_ctl only reads.
            let rc = unsafe { libc::epoll_ctl(fd, libc::EPOLL_CTL_ADD, w, &mut ev) };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        let events = vec![libc::epoll_event { events: 0, u64: 0 }; EPOLL_BATCH];
        Ok(Self { epfd, edge, events })
    }

    fn call_once(&mut self, ready: &mut Vec<RawFd>) {
        let (ptr, cap) = (self.events.as_mut_ptr(), self.events.len() as libc::c_int);
        // SAFETY: `self.events` has room for `cap` events.
        let rc = unsafe { libc::epoll_wait(self.epfd.as_raw_fd(), ptr, cap, TIMEOUT_MS) };
        if check("epoll_wait", rc) {
            let got = &self.events[..rc as usize];
            ready.extend(got.iter().map(|e| e.u64 as RawFd));
        }
    }
}

impl Mechanism for Epoll {
    fn wait(&mut self, expected: usize, ready: &mut Vec<RawFd>) {
        ready.clear();
        while ready.len() < expected {
            if !self.edge {
                // Level-triggered reports every still-ready descriptor
                // again: start over rather than count one twice.
                ready.clear();
            }
            self.call_once(ready);
        }
    }
}
