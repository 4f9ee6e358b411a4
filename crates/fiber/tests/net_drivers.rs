//! The net test suites (TCP, pipes and Unix sockets, failures,
//! registrations) on the io_uring driver, plus the fallback to epoll when
//! io_uring is refused. The same files run on epoll as their own test
//! binaries.
// Each included suite declares the shared helpers itself, as it must to
// build on its own.
#![allow(clippy::duplicate_mod)]

mod common;

/// The I/O driver the included suites run on.
const DRIVER: fibrpc_fiber::io::IoDriver = fibrpc_fiber::io::IoDriver::Uring;

#[path = "io_registration.rs"]
mod io_registration;
#[path = "net_failure.rs"]
mod net_failure;
#[path = "net_misc.rs"]
mod net_misc;
#[path = "net_tcp.rs"]
mod net_tcp;

use fiber::io::IoDriver;
use fibrpc_fiber as fiber;
use std::io::{Read, Write};

/// Asking for io_uring where it is refused (forced here with
/// `FIBRPC_IO_URING_DISABLE`, as on a kernel without it) runs epoll, and
/// TCP works on it. In a child: the choice is per process.
#[test]
fn refused_uring_falls_back_to_epoll() {
    if std::env::var_os("FIBRPC_TEST_CHILD").is_none() {
        let out = common::run_child_with(
            "refused_uring_falls_back_to_epoll",
            &[
                ("FIBRPC_TEST_CHILD", "1"),
                ("FIBRPC_IO_DRIVER", "uring"),
                ("FIBRPC_IO_URING_DISABLE", "1"),
            ],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The child ran the test (a filter that matched nothing passes too).
        assert!(stdout.contains("1 passed"), "{stdout}");
        return;
    }
    assert_eq!(fiber::io::active_driver().unwrap(), IoDriver::Epoll);
    let listener = fiber::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = fiber::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).unwrap();
        c.write_all(&buf).unwrap();
    });
    let mut s = fiber::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"hello").unwrap();
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    server.join().unwrap();
}

/// The runtime builder's choice: refused once the driver runs as
/// something else (here it runs io_uring, as every test of this binary
/// makes it).
#[test]
fn builder_choice_is_checked_against_the_running_driver() {
    common::use_driver(DRIVER);
    if common::uring_outcome() != IoDriver::Uring {
        // Nothing runs io_uring here to conflict with.
        return;
    }
    let e = fiber::Runtime::builder()
        .workers(1)
        .io_driver(IoDriver::Epoll)
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
    let rt = fiber::Runtime::builder()
        .workers(1)
        .io_driver(IoDriver::Uring)
        .build()
        .unwrap();
    rt.shutdown();
}

/// A registration made by a thread that then exits keeps reporting edges:
/// the kernel cancels the polls a thread submitted when it exits, and the
/// driver arms them again (epoll has no such tie to the thread).
#[test]
fn registration_outlives_the_thread_that_made_it() {
    use fiber::io::{Interest, Registration};
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};
    common::use_driver(DRIVER);
    let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let fd = a.as_raw_fd();
    let reg = std::thread::spawn(move || Registration::new(fd).unwrap())
        .join()
        .unwrap();
    for round in 0..3u8 {
        let ticket = reg.readiness(Interest::READABLE);
        b.write_all(&[round]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        reg.wait(Interest::READABLE, ticket, Some(deadline))
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let mut byte = [0u8; 1];
        (&a).read_exact(&mut byte).unwrap();
        assert_eq!(byte[0], round);
    }
    drop(reg);
}
