//! The "floor" servers of the benchmarks: raw epoll, no framework.
//!
//! A floor server does next to nothing per request beyond the syscalls the
//! servers compared make (one read, one write, a share of an
//! `epoll_wait`): W threads, each with its own `SO_REUSEPORT` listener and
//! its own edge-triggered epoll, no runtime, no tasks, no buffers beyond
//! one read buffer per thread and an output `Vec` per connection. Its
//! throughput under a load generator shows how much of each server's cost
//! is the kernel's, and so whether a goal stated as a ratio over a peer is
//! within reach of a server that makes those syscalls. It is a yardstick,
//! not a proven maximum.
//!
//! One thing differs from the peers besides the missing framework: each
//! thread has its own listener (`SO_REUSEPORT`), where the peers accept on
//! one and spread connections over their workers.
//!
//! [`serve`] runs the loop; a [`Protocol`] turns input bytes into output.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

/// Bytes read per `read` call.
const READ_BUF: usize = 4096;
const LISTENER_TOKEN: u64 = u64::MAX;

/// What a floor server answers. One value per connection.
pub trait Protocol: Default {
    /// Handles `input` (bytes just read, in order) by appending the answer
    /// to `out`, which is written after each read burst.
    fn on_input(&mut self, input: &[u8], out: &mut Vec<u8>);
}

/// Serves `P` on `127.0.0.1:port` (0: any port) with `workers` threads,
/// each listener with `backlog`. Calls `listening` with the bound address
/// once every listener accepts, then runs until a worker fails, which
/// ends the process.
pub fn serve<P: Protocol>(
    port: u16,
    workers: usize,
    backlog: u32,
    listening: impl FnOnce(SocketAddr),
) -> io::Result<()> {
    // The first listener picks the port (when 0); the others share it.
    let first = listen(port, backlog)?;
    let port = local_port(first)?;
    let mut listeners = vec![first];
    for _ in 1..workers.max(1) {
        listeners.push(listen(port, backlog)?);
    }
    listening((Ipv4Addr::LOCALHOST, port).into());
    let threads: Vec<_> = listeners
        .into_iter()
        .map(|l| {
            std::thread::spawn(move || {
                // A dead worker's listener would stay in the SO_REUSEPORT
                // group and strand the connections hashed to it: end the
                // whole process instead.
                if let Err(e) = run::<P>(l) {
                    eprintln!("floor: worker failed: {e}");
                    std::process::exit(1);
                }
            })
        })
        .collect();
    for t in threads {
        if t.join().is_err() {
            std::process::exit(1);
        }
    }
    Ok(())
}

/// `-1` → the last OS error.
fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn set_int_opt(fd: libc::c_int, level: libc::c_int, opt: libc::c_int) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: `one` is valid for the call and its size is passed; `fd` is
    // a socket of ours.
    check(unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

fn listen(port: u16, backlog: u32) -> io::Result<libc::c_int> {
    let flags = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: socket(2) has no memory arguments.
    let fd = check(unsafe { libc::socket(libc::AF_INET, flags, 0) })?;
    set_int_opt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR)?;
    set_int_opt(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT)?;
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(Ipv4Addr::LOCALHOST).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: `addr` is a valid sockaddr_in of `len` bytes for the call.
    check(unsafe { libc::bind(fd, (&addr as *const libc::sockaddr_in).cast(), len) })?;
    // SAFETY: listen(2) has no memory arguments.
    check(unsafe { libc::listen(fd, backlog as libc::c_int) })?;
    Ok(fd)
}

fn local_port(fd: libc::c_int) -> io::Result<u16> {
    // SAFETY: an all-zero sockaddr_in is a valid value.
    let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: `addr` and `len` are valid for getsockname to fill.
    check(unsafe {
        libc::getsockname(fd, (&mut addr as *mut libc::sockaddr_in).cast(), &mut len)
    })?;
    Ok(u16::from_be(addr.sin_port))
}

fn epoll_add(ep: libc::c_int, fd: libc::c_int, events: u32, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: token };
    // SAFETY: `ev` is valid for the call; both descriptors are ours.
    check(unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) }).map(drop)
}

/// A connection: its protocol state and the answers not written yet.
struct Conn<P> {
    proto: P,
    out: Vec<u8>,
}

/// One worker: its listener's connections, in its own epoll.
fn run<P: Protocol>(listener: libc::c_int) -> io::Result<()> {
    // SAFETY: epoll_create1 has no memory arguments.
    let ep = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    epoll_add(ep, listener, libc::EPOLLIN as u32, LISTENER_TOKEN)?;
    // Indexed by descriptor.
    let mut conns: Vec<Option<Conn<P>>> = Vec::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut buf = vec![0u8; READ_BUF];
    let closed = (libc::EPOLLRDHUP | libc::EPOLLHUP) as u32;
    loop {
        // SAFETY: `events` is valid for `events.len()` entries.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, -1) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in &events[..n as usize] {
            let (token, flags) = (ev.u64, ev.events);
            if token == LISTENER_TOKEN {
                accept_all(ep, listener, &mut conns);
                continue;
            }
            let fd = token as libc::c_int;
            let Some(c) = conns[fd as usize].as_mut() else {
                continue;
            };
            let mut end = ReadEnd::Open;
            if flags & (libc::EPOLLIN as u32 | closed) != 0 {
                // After a hang-up the edge is spent: read on to the EOF.
                end = read_burst(fd, c, &mut buf, flags & closed != 0);
            }
            // Answers made before an EOF still go out.
            let written = end == ReadEnd::Failed || flush(fd, &mut c.out);
            if end != ReadEnd::Open || !written || flags & libc::EPOLLERR as u32 != 0 {
                conns[fd as usize] = None;
                // SAFETY: `fd` is an open connection of ours; closing it
                // also removes it from the epoll set.
                unsafe { libc::close(fd) };
            }
        }
    }
}

/// Accepts every pending connection. Failures (out of descriptors, a
/// connection reset before it was accepted) are reported and skipped:
/// the listener is level-triggered and reports what is left again.
fn accept_all<P: Protocol>(
    ep: libc::c_int,
    listener: libc::c_int,
    conns: &mut Vec<Option<Conn<P>>>,
) {
    loop {
        let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: null address arguments are allowed by accept4.
        let fd =
            unsafe { libc::accept4(listener, std::ptr::null_mut(), std::ptr::null_mut(), flags) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) | Some(libc::ECONNABORTED) => continue,
                Some(libc::EAGAIN) => {}
                _ => eprintln!("floor: accept: {e}"),
            }
            return;
        }
        let events = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
        let added = set_int_opt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY)
            .and_then(|()| epoll_add(ep, fd, events, fd as u64));
        if let Err(e) = added {
            eprintln!("floor: setting up an accepted connection: {e}");
            // SAFETY: `fd` was just accepted and is referenced nowhere.
            unsafe { libc::close(fd) };
            continue;
        }
        if conns.len() <= fd as usize {
            conns.resize_with(fd as usize + 1, || None);
        }
        conns[fd as usize] = Some(Conn {
            proto: P::default(),
            out: Vec::new(),
        });
    }
}

/// How a read burst ended.
#[derive(PartialEq, Eq)]
enum ReadEnd {
    /// Drained; the connection stays.
    Open,
    /// The peer closed its side.
    Eof,
    /// A read failed.
    Failed,
}

/// Reads until a short read (as tokio and fibrpc do: a short read means
/// the socket is drained) or, once the peer hung up, until the EOF,
/// handing each read to the protocol.
fn read_burst<P: Protocol>(
    fd: libc::c_int,
    c: &mut Conn<P>,
    buf: &mut [u8],
    hung_up: bool,
) -> ReadEnd {
    loop {
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n == 0 {
            return ReadEnd::Eof;
        }
        if n < 0 {
            return match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => ReadEnd::Open,
                _ => ReadEnd::Failed,
            };
        }
        c.proto.on_input(&buf[..n as usize], &mut c.out);
        if (n as usize) < buf.len() && !hung_up {
            return ReadEnd::Open;
        }
    }
}

/// Writes queued answers; what the socket does not take waits for the
/// next EPOLLOUT edge (there is no backpressure on the protocol: fine for
/// closed-loop load, where a client never has much unread). Returns false
/// when a write fails.
fn flush(fd: libc::c_int, out: &mut Vec<u8>) -> bool {
    while !out.is_empty() {
        // SAFETY: `out` is readable for its length.
        let n = unsafe { libc::write(fd, out.as_ptr().cast(), out.len()) };
        if n < 0 {
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => return true,
                _ => return false,
            }
        }
        out.drain(..n as usize);
    }
    true
}
