//! Bad conditions in fiber net: every timeout path, interrupts, resets,
//! broken pipes, and the accept back-off when descriptors run out.

mod common;

/// The I/O driver this suite runs on; `net_drivers.rs` includes this file
/// with io_uring.
#[allow(dead_code)]
const DRIVER: fibrpc_fiber::io::IoDriver = fibrpc_fiber::io::IoDriver::Epoll;

use fiber::net::{pipe, TcpListener, TcpStream};
use fibrpc_fiber as fiber;
use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

#[test]
fn read_timeout_gives_timed_out_and_the_stream_still_works() {
    common::use_driver(crate::DRIVER);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap(); // wait for the go signal
        s.write_all(b"late").unwrap();
        s
    });
    fiber::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
        assert_eq!(c.read_timeout().unwrap(), Some(Duration::from_millis(30)));
        let t = Instant::now();
        let e = c.read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
        assert!(t.elapsed() >= Duration::from_millis(30));
        c.write_all(b"g").unwrap();
        let mut b = [0u8; 4];
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"late");
        assert!(c.set_read_timeout(Some(Duration::ZERO)).is_err());
    })
    .join()
    .unwrap();
    drop(peer.join().unwrap());
}

#[test]
fn write_timeout_when_the_peer_does_not_read() {
    common::use_driver(crate::DRIVER);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let peer = std::thread::spawn(move || {
        let s = std::net::TcpStream::connect(addr).unwrap();
        let _ = rx.recv(); // hold the connection without reading
        s
    });
    fiber::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        c.set_write_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let chunk = vec![0u8; 1 << 16];
        let err = loop {
            if let Err(e) = c.write(&chunk) {
                break e;
            }
        };
        assert_eq!(err.kind(), ErrorKind::TimedOut);
    })
    .join()
    .unwrap();
    tx.send(()).unwrap();
    drop(peer.join().unwrap());
}

#[test]
fn connect_timeout_when_the_backlog_is_full() {
    common::use_driver(crate::DRIVER);
    // A listener that never accepts, with a tiny backlog: once it is full
    // the kernel drops further SYNs and the connect hangs.
    let listener = TcpListener::bind_with_backlog("127.0.0.1:0", 1).unwrap();
    let addr = listener.local_addr().unwrap();
    fiber::spawn(move || {
        let mut held = Vec::new();
        let mut timed_out = false;
        for _ in 0..16 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
                Ok(c) => held.push(c),
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
                    timed_out = true;
                    break;
                }
            }
        }
        assert!(timed_out, "connects never blocked: {} made", held.len());
        drop(listener);
    })
    .join()
    .unwrap();
}

#[test]
fn connect_refused_is_an_error() {
    common::use_driver(crate::DRIVER);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = fiber::spawn(move || TcpStream::connect(("127.0.0.1", port)).unwrap_err())
        .join()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn accept_timeout() {
    common::use_driver(crate::DRIVER);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener
        .set_accept_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let e = listener.accept().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
}

#[test]
fn interrupt_wakes_a_blocked_reader() {
    common::use_driver(crate::DRIVER);
    let (mut r, _w) = pipe().unwrap();
    let h = fiber::spawn(move || r.read(&mut [0u8; 4]).unwrap_err().kind());
    while !fiber::stats().workers.iter().any(|w| w.parks > 0) {
        std::thread::yield_now();
    }
    std::thread::sleep(Duration::from_millis(20));
    fiber::interrupt(h.id()).unwrap();
    assert_eq!(h.join().unwrap(), ErrorKind::Interrupted);
}

#[test]
fn reset_peer_fails_only_its_stream() {
    common::use_driver(crate::DRIVER);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = fiber::spawn(move || {
        let (mut a, _) = listener.accept().unwrap();
        let (mut b, _) = listener.accept().unwrap();
        // `a`'s peer resets: reading fails (or sees EOF) and writing fails.
        let mut buf = [0u8; 16];
        let r = a.read(&mut buf);
        assert!(
            matches!(&r, Err(e) if e.kind() == ErrorKind::ConnectionReset) || matches!(r, Ok(0))
        );
        let mut failed = false;
        for _ in 0..100 {
            if a.write_all(&[0u8; 1024]).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "writes to a reset connection kept succeeding");
        // `b` is untouched.
        b.read_exact(&mut buf[..2]).unwrap();
        b.write_all(&buf[..2]).unwrap();
    });
    let a = std::net::TcpStream::connect(addr).unwrap();
    let mut b = std::net::TcpStream::connect(addr).unwrap();
    // SO_LINGER 0: close sends RST instead of FIN.
    socket2::SockRef::from(&a)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(a);
    b.write_all(b"ok").unwrap();
    let mut back = [0u8; 2];
    b.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"ok");
    server.join().unwrap();
}

#[test]
fn broken_pipe_is_an_error_not_a_signal() {
    common::use_driver(crate::DRIVER);
    let (r, mut w) = pipe().unwrap();
    drop(r);
    let e = w.write(b"x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BrokenPipe);
}

#[test]
fn fd_wait_times_out_and_sees_readiness() {
    common::use_driver(crate::DRIVER);
    use fiber::io::{fd_wait, Interest};
    use std::os::fd::AsRawFd;
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let e = fd_wait(fd, Interest::READABLE, Some(Duration::from_millis(10))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    // Writable at once (level-triggered one-shot).
    fd_wait(fd, Interest::WRITABLE, Some(Duration::from_secs(10))).unwrap();
    let h = fiber::spawn(move || fd_wait(fd, Interest::READABLE, None));
    std::thread::sleep(Duration::from_millis(10));
    (&b).write_all(b"!").unwrap();
    h.join().unwrap().unwrap();
    drop(a);
}

/// In a child with `RLIMIT_NOFILE` low: accept runs out of descriptors,
/// backs off (little CPU burnt, a message logged) and recovers once
/// descriptors are free again.
#[test]
fn accept_backs_off_when_out_of_descriptors() {
    common::use_driver(crate::DRIVER);
    if std::env::var_os("FIBRPC_EMFILE_CHILD").is_none() {
        let out = common::run_child(
            &common::test_path(module_path!(), "accept_backs_off_when_out_of_descriptors"),
            "FIBRPC_EMFILE_CHILD",
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "child failed: {stderr}");
        assert!(
            stderr.contains("backing off"),
            "no back-off logged: {stderr}"
        );
        return;
    }
    common::log_to_stderr();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Fill the descriptor table up to a low limit.
    let used = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    let limit = used + 8;
    // SAFETY: plain setrlimit with a valid struct.
    unsafe {
        let rl = libc::rlimit {
            rlim_cur: limit,
            rlim_max: 20000,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &rl), 0);
    }
    let mut hog = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        hog.push(f);
    }
    let accepted = fiber::spawn(move || listener.accept().map(|_| ()));
    // The client's own socket needs a descriptor: free one for it.
    hog.pop();
    let client = std::net::TcpStream::connect(addr).unwrap();
    let cpu0 = cpu_time();
    std::thread::sleep(Duration::from_millis(500));
    let burnt = cpu_time() - cpu0;
    // A spinning accept loop burns ~0.5 s of CPU here; back-off a few ms.
    assert!(
        burnt < Duration::from_millis(200),
        "accept spun: {burnt:?} CPU in 0.5 s"
    );
    assert!(!accepted.is_finished());
    hog.clear();
    accepted.join().unwrap().unwrap();
    drop(client);
}

fn cpu_time() -> Duration {
    // SAFETY: getrusage fills a valid struct.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}
