//! The public readiness API: tickets, waits from fibers and threads,
//! timeouts, and configuration after start.

use fiber::io::{Interest, Registration};
mod common;

/// The I/O driver this suite runs on; `net_drivers.rs` includes this file
/// with io_uring.
#[allow(dead_code)]
const DRIVER: fibrpc_fiber::io::IoDriver = fibrpc_fiber::io::IoDriver::Epoll;

use fibrpc_fiber as fiber;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn nonblocking_pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

/// The ticket protocol from a plain thread and from a fiber: take the
/// ticket, fail with EAGAIN, wait; the peer's write ends the wait.
#[test]
fn ticket_then_wait_sees_the_next_edge() {
    common::use_driver(crate::DRIVER);
    let (a, b) = nonblocking_pair();
    let reg = std::sync::Arc::new(Registration::new(a.as_raw_fd()).unwrap());
    assert_eq!(reg.fd(), a.as_raw_fd());
    let a = std::sync::Arc::new(a);
    for in_fiber in [false, true] {
        let (reg2, a2) = (reg.clone(), a.clone());
        let read_one = move || -> u8 {
            let mut byte = [0u8; 1];
            loop {
                let ticket = reg2.readiness(Interest::READABLE);
                match (&*a2).read(&mut byte) {
                    Ok(1) => return byte[0],
                    Ok(_) => panic!("eof"),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        reg2.wait(Interest::READABLE, ticket, None).unwrap()
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        };
        let got = if in_fiber {
            let h = fiber::spawn(read_one);
            std::thread::sleep(Duration::from_millis(5));
            (&b).write_all(&[2]).unwrap();
            h.join().unwrap()
        } else {
            let h = std::thread::spawn(read_one);
            std::thread::sleep(Duration::from_millis(5));
            (&b).write_all(&[1]).unwrap();
            h.join().unwrap()
        };
        assert_eq!(got, if in_fiber { 2 } else { 1 });
    }
}

/// A stale ticket returns at once; a current one times out without an edge.
#[test]
fn stale_ticket_returns_and_deadline_times_out() {
    common::use_driver(crate::DRIVER);
    let (a, b) = nonblocking_pair();
    let reg = Registration::new(a.as_raw_fd()).unwrap();
    let t0 = reg.readiness(Interest::READABLE);
    (&b).write_all(b"x").unwrap();
    // The edge arrives asynchronously; wait for it with the old ticket.
    reg.wait(Interest::READABLE, t0, None).unwrap();
    assert_ne!(reg.readiness(Interest::READABLE), t0);
    (&a).read_exact(&mut [0u8; 1]).unwrap();
    let t1 = reg.readiness(Interest::READABLE);
    let deadline = std::time::Instant::now() + Duration::from_millis(10);
    let e = reg
        .wait(Interest::READABLE, t1, Some(deadline))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
}

/// A hang-up is reported as readable and stays visible.
#[test]
fn hang_up_is_sticky() {
    common::use_driver(crate::DRIVER);
    let (a, b) = nonblocking_pair();
    let reg = Registration::new(a.as_raw_fd()).unwrap();
    let t = reg.readiness(Interest::READABLE);
    drop(b);
    reg.wait(Interest::READABLE, t, None).unwrap();
    assert!(reg.read_closed());
    assert_eq!((&a).read(&mut [0u8; 1]).unwrap(), 0);
}

/// `fd_wait` on a descriptor registered in the same dispatcher is
/// `AlreadyExists` (one dispatcher, in a child, makes that certain).
#[test]
fn double_registration_is_an_error() {
    common::use_driver(crate::DRIVER);
    if std::env::var_os("FIBRPC_TEST_CHILD").is_none() {
        let out = common::run_child_with(
            &common::test_path(module_path!(), "double_registration_is_an_error"),
            &[
                ("FIBRPC_TEST_CHILD", "1"),
                ("FIBRPC_EVENT_DISPATCHERS", "1"),
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let (a, _b) = nonblocking_pair();
    let _reg = Registration::new(a.as_raw_fd()).unwrap();
    // Not readable: a wait that were let through would time out instead.
    let e = fiber::io::fd_wait(
        a.as_raw_fd(),
        Interest::READABLE,
        Some(Duration::from_millis(50)),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
}

/// The configuration is fixed once the driver runs.
#[test]
fn configure_after_start_is_refused() {
    common::use_driver(crate::DRIVER);
    let (a, _b) = nonblocking_pair();
    let _reg = Registration::new(a.as_raw_fd()).unwrap();
    assert!(fiber::io::configure(fiber::io::Config::default()).is_err());
}

/// A worker that stays in one fiber polls nothing: an idle worker polls
/// its dispatcher for it, and the reader that the input starts runs there.
#[test]
fn an_idle_worker_polls_the_dispatcher_of_a_worker_stuck_in_a_fiber() {
    common::use_driver(crate::DRIVER);
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    rt.block_on(|| {
        let (a, b) = nonblocking_pair();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let tx = std::sync::Mutex::new(tx);
        // Collected by this worker's own dispatcher.
        let _reg = Registration::with_reader_here_or_else(
            a.as_raw_fd(),
            move |_| {
                let _ = tx.lock().unwrap().send(());
            },
            || {},
        )
        .unwrap();
        (&b).write_all(b"x").unwrap();
        // This worker's thread waits here, never polling its dispatcher.
        rx.recv().unwrap();
    });
}
