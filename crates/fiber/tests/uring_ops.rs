//! Socket reads and writes as io_uring operations: fibers' TCP traffic on
//! the io_uring driver runs through the ring (no `read`/`send` system call
//! of its own), an interrupt that lands meanwhile neither cuts an
//! operation short nor is lost, and `FIBRPC_IO_URING_OPS=0` keeps the
//! system calls.

mod common;

use fiber::io::IoDriver;
use fiber::net::{TcpListener, TcpStream};
use fibrpc_fiber as fiber;
use std::io::{Read, Write};
use std::time::Duration;

const ROUNDS: usize = 100;
const SIZE: usize = 64;

/// A fiber echo server and a fiber client, `ROUNDS` messages of `SIZE`
/// bytes, each checked.
fn echo_rounds() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = fiber::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        let mut buf = [0u8; SIZE];
        for _ in 0..ROUNDS {
            c.read_exact(&mut buf).unwrap();
            c.write_all(&buf).unwrap();
        }
    });
    let client = fiber::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut back = [0u8; SIZE];
        for round in 0..ROUNDS {
            let msg = [round as u8; SIZE];
            s.write_all(&msg).unwrap();
            s.read_exact(&mut back).unwrap();
            assert_eq!(back, msg, "round {round}");
        }
    });
    client.join().unwrap();
    server.join().unwrap();
}

#[test]
fn fiber_socket_io_runs_as_ring_operations() {
    common::use_driver(IoDriver::Uring);
    if common::uring_outcome() != IoDriver::Uring {
        return;
    }
    let before = fiber::io::uring_ops_completed();
    echo_rounds();
    let ops = fiber::io::uring_ops_completed() - before;
    // Each side sends and receives each message at least once.
    assert!(
        ops >= (4 * ROUNDS) as u64,
        "{ops} ring operations for {ROUNDS} echoes"
    );
}

/// An interrupt pending when a read runs as a ring operation does not end
/// the operation early (the kernel may be writing into the buffer): the
/// read returns the data, and the interrupt ends the next wait instead.
#[test]
fn interrupt_during_a_ring_read_is_passed_on() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    common::use_driver(IoDriver::Uring);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = Arc::new(AtomicBool::new(false));
    let sent2 = sent.clone();
    let peer = std::thread::spawn(move || {
        let (c, _) = listener.accept().unwrap();
        (&c).write_all(b"ping").unwrap();
        sent2.store(true, Ordering::Release);
        // Held open, nothing more sent, until the reader is done.
        let mut rest = Vec::new();
        let _ = (&c).read_to_end(&mut rest);
    });
    let reader = fiber::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // Loopback bytes are queued at the receiver once `write` returns.
        for _ in 0..10_000 {
            if sent.load(Ordering::Acquire) {
                break;
            }
            fiber::sleep(Duration::from_millis(1)).unwrap();
        }
        assert!(sent.load(Ordering::Acquire), "the peer never wrote");
        fiber::interrupt(fiber::current().unwrap()).unwrap();
        let mut buf = [0u8; 8];
        let n = s.read(&mut buf).expect("the read finds the bytes");
        assert_eq!(&buf[..n], b"ping");
        // Nothing more comes: the next read waits, and the interrupt that
        // came during the first one ends that wait.
        let e = s.read(&mut buf).expect_err("no more bytes come");
        assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "{e}");
    });
    reader.join().unwrap();
    peer.join().unwrap();
}

/// With `FIBRPC_IO_URING_OPS=0` the ring only reports readiness: the same
/// traffic runs, with no operation. In a child: the choice is made once.
#[test]
fn ops_can_be_turned_off() {
    if std::env::var_os("FIBRPC_TEST_CHILD").is_none() {
        let out = common::run_child_with(
            "ops_can_be_turned_off",
            &[("FIBRPC_TEST_CHILD", "1"), ("FIBRPC_IO_URING_OPS", "0")],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("1 passed"), "{stdout}");
        return;
    }
    common::use_driver(IoDriver::Uring);
    echo_rounds();
    assert_eq!(fiber::io::uring_ops_completed(), 0);
}
