//! Where a server's listening socket comes from: bound by
//! [`Server::start`](super::Server::start) (optionally with
//! `SO_REUSEPORT`), or inherited from whoever started the process,
//! following systemd's socket-activation convention ([`listen_fds`]).

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use socket2::{Domain, SockRef, Socket, Type};

/// The first inherited descriptor (systemd's `SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: RawFd = 3;

/// Binds the first address of `addr` that works: `SO_REUSEADDR`,
/// `SO_REUSEPORT` if asked, close-on-exec, non-blocking, and the fiber
/// runtime's listen backlog.
pub(super) fn bind(
    addr: impl ToSocketAddrs,
    reuse_port: bool,
) -> io::Result<std::net::TcpListener> {
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        match bind_one(a, reuse_port) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolves to nothing",
        )
    }))
}

fn bind_one(a: SocketAddr, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    let sock = Socket::new(
        Domain::for_address(a),
        Type::STREAM.nonblocking().cloexec(),
        None,
    )?;
    sock.set_reuse_address(true)?;
    if reuse_port {
        sock.set_reuse_port(true)?;
    }
    sock.bind(&a.into())?;
    // std's backlog is 128, which a burst of connects overflows into 1 s
    // SYN retransmits.
    sock.listen(fibrpc_fiber::net::tcp::DEFAULT_BACKLOG as i32)?;
    Ok(sock.into())
}

/// The listening TCP sockets this process was started with, by systemd's
/// socket-activation convention (`sd_listen_fds`): `LISTEN_FDS=n`
/// descriptors from 3 on, meant for this process if `LISTEN_PID` is its
/// pid. Pass one to [`Server::start_on_listener`](super::Server::start_on_listener).
///
/// Empty when the variables are absent or name another process (a child
/// inherits the environment, not the sockets). The descriptors are taken
/// once: a second call returns an empty list. They are made
/// close-on-exec. Fails if a descriptor is not a listening TCP socket.
///
/// ```no_run
/// # fn demo(mut server: fibrpc::Server) -> Result<(), fibrpc::RpcError> {
/// match fibrpc::server::listen_fds()?.into_iter().next() {
///     Some(inherited) => server.start_on_listener(inherited)?,
///     None => server.start("0.0.0.0:8000")?,
/// }
/// # Ok(()) }
/// ```
pub fn listen_fds() -> io::Result<Vec<std::net::TcpListener>> {
    static TAKEN: AtomicBool = AtomicBool::new(false);
    let Some(n) = fd_count()? else {
        return Ok(Vec::new());
    };
    if TAKEN.swap(true, Ordering::AcqRel) {
        return Ok(Vec::new());
    }
    (LISTEN_FDS_START..LISTEN_FDS_START + n)
        .map(|fd| {
            check_listener(fd)?;
            // SAFETY: `fd` was handed to this process for it to own
            // (LISTEN_PID names us), is open (checked above) and is taken
            // only here, once (`TAKEN`).
            let owned = unsafe { OwnedFd::from_raw_fd(fd) };
            // SAFETY: fcntl on a descriptor we own.
            if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(std::net::TcpListener::from(owned))
        })
        .collect()
}

/// `LISTEN_FDS` if the variables are for this process.
fn fd_count() -> io::Result<Option<RawFd>> {
    let (Ok(pid), Ok(fds)) = (std::env::var("LISTEN_PID"), std::env::var("LISTEN_FDS")) else {
        return Ok(None);
    };
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_string());
    let pid: u32 = pid
        .trim()
        .parse()
        .map_err(|_| bad("LISTEN_PID is not a pid"))?;
    if pid != std::process::id() {
        return Ok(None);
    }
    let n: RawFd = fds
        .trim()
        .parse()
        .map_err(|_| bad("LISTEN_FDS is not a count"))?;
    if !(0..=1024).contains(&n) {
        return Err(bad("LISTEN_FDS is out of range"));
    }
    Ok(Some(n))
}

/// Fails unless `fd` is an open, listening TCP (IPv4 or IPv6) socket.
pub(super) fn check_listener(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFD only asks whether `fd` is open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("inherited descriptor {fd}: {}", io::Error::last_os_error()),
        ));
    }
    // SAFETY: `fd` is open (checked above); the borrow lives only for
    // these queries.
    let sock = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let s = SockRef::from(&sock);
    let is_tcp = s.r#type().ok() == Some(Type::STREAM)
        && matches!(s.domain(), Ok(d) if d == Domain::IPV4 || d == Domain::IPV6);
    let listening = s.is_listener().unwrap_or(false);
    if !is_tcp || !listening {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("inherited descriptor {fd} is not a listening TCP socket"),
        ));
    }
    Ok(())
}
