//! Handing the listening socket itself to the process that takes over:
//! the old server offers it on a Unix socket
//! ([`Server::offer_listener`](super::Server::offer_listener)), the new
//! one fetches it ([`take_listener`]) and starts on it
//! ([`Server::start_on_listener`](super::Server::start_on_listener)).
//! The descriptor travels as `SCM_RIGHTS` ancillary data, as HAProxy's
//! `-x` and Envoy's hot restart pass theirs.
//!
//! Why the socket and not just the port: both processes then accept from
//! one accept queue, so a connection queued when the old process stops
//! accepting is simply accepted by the new one. Two separate
//! `SO_REUSEPORT` sockets have a queue each, and Linux resets the
//! connections queued on a socket when it closes (unless
//! `net.ipv4.tcp_migrate_req` is on, Linux 5.14+).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the offering thread looks at its stop flag.
const POLL: Duration = Duration::from_millis(50);

/// A taker that connects but never reads holds the offering thread no
/// longer than this.
const SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// The listening socket offered at a path until dropped (which removes
/// the path, unless another process bound it since).
pub(super) struct ListenerOffer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    path: PathBuf,
    /// Device and inode of the socket file this offer bound.
    file: (u64, u64),
}

impl ListenerOffer {
    /// Offers `listener` at `path` (a stale socket file there is
    /// replaced), readable and writable by this user only.
    pub(super) fn start(listener: OwnedFd, path: &Path) -> io::Result<ListenerOffer> {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let unix = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        let meta = std::fs::metadata(path)?;
        unix.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("fibrpc-listener-offer".into())
            .spawn(move || serve(&unix, &listener, &flag))?;
        Ok(ListenerOffer {
            stop,
            thread: Some(thread),
            path: path.to_path_buf(),
            file: (meta.dev(), meta.ino()),
        })
    }
}

impl Drop for ListenerOffer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // The successor may have bound the same path to offer the socket
        // on in turn: that file is not ours to remove.
        if let Ok(meta) = std::fs::metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.file {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// The offering thread: every connection gets the listener.
fn serve(unix: &UnixListener, listener: &OwnedFd, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        match unix.accept() {
            Ok((stream, _)) => {
                let sent = stream
                    .set_nonblocking(false)
                    .and_then(|()| stream.set_write_timeout(Some(SEND_TIMEOUT)))
                    .and_then(|()| send_fd(&stream, listener.as_raw_fd()));
                match sent {
                    Ok(()) => tracing::info!("handed the listening socket to a successor"),
                    Err(e) => tracing::warn!(error = %e, "cannot hand the listening socket over"),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait_readable(unix, POLL),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::warn!(error = %e, "the listener offer cannot accept; retrying");
                std::thread::sleep(POLL);
            }
        }
    }
}

fn wait_readable(unix: &UnixListener, timeout: Duration) {
    let mut pfd = libc::pollfd {
        fd: unix.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, for the duration of the call.
    unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as libc::c_int) };
}

/// Fetches the listening socket that a running server offers at `path`
/// ([`Server::offer_listener`](super::Server::offer_listener)), for
/// [`Server::start_on_listener`](super::Server::start_on_listener). The
/// returned listener shares the offering server's accept queue: start on
/// it, then stop the old server, and no connection is refused or reset in
/// between. Fails if nobody offers at `path`, or what arrives is not a
/// listening TCP socket.
///
/// ```no_run
/// # fn demo(mut server: fibrpc::Server) -> Result<(), fibrpc::RpcError> {
/// let inherited = fibrpc::server::take_listener("/run/echo/listener.sock")?;
/// server.start_on_listener(inherited)?;
/// // Now tell the old process to stop (SIGTERM): it drains and exits.
/// # Ok(()) }
/// ```
pub fn take_listener(path: impl AsRef<Path>) -> io::Result<std::net::TcpListener> {
    let stream = UnixStream::connect(path)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let fd = recv_fd(&stream)?;
    super::listener::check_listener(fd.as_raw_fd())?;
    Ok(std::net::TcpListener::from(fd))
}

/// Room for one descriptor's control message, aligned for `cmsghdr`.
#[repr(C, align(8))]
struct ControlBuf([u8; 64]);

fn send_fd(stream: &UnixStream, fd: RawFd) -> io::Result<()> {
    let mut byte = [b'L'];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = ControlBuf([0; 64]);
    let fd_len = std::mem::size_of::<RawFd>() as u32;
    // SAFETY: msghdr is plain data; zeroed is a valid empty header. The
    // pointers set into it (iov, control) outlive the sendmsg call, the
    // control buffer is aligned and large enough for CMSG_SPACE(4), and
    // CMSG_FIRSTHDR of a header with a non-empty control buffer is the
    // buffer's start.
    let sent = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(fd_len) as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(fd_len) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        libc::sendmsg(stream.as_raw_fd(), &msg, libc::MSG_NOSIGNAL)
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn recv_fd(stream: &UnixStream) -> io::Result<OwnedFd> {
    let mut byte = [0u8];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = ControlBuf([0; 64]);
    // SAFETY: as in `send_fd`; recvmsg writes at most msg_controllen
    // bytes of control data into our buffer.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = control.0.len() as _;
    // SAFETY: `msg` points at live buffers for the duration of the call.
    let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut received = Vec::new();
    // SAFETY: the CMSG_* walk stays inside the control data recvmsg
    // wrote (msg_controllen was updated to its length); each SCM_RIGHTS
    // payload is an array of descriptors now owned by this process.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg);
                let len = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                for i in 0..len / std::mem::size_of::<RawFd>() {
                    let fd = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                    received.push(OwnedFd::from_raw_fd(fd));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 || received.len() != 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "expected one listening socket, got {} descriptor(s)",
                received.len()
            ),
        ));
    }
    Ok(received.remove(0))
}
