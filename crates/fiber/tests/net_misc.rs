//! Unix sockets, pipes and the reader-fiber hook.

mod common;

/// The I/O driver this suite runs on; `net_drivers.rs` includes this file
/// with io_uring.
#[allow(dead_code)]
const DRIVER: fibrpc_fiber::io::IoDriver = fibrpc_fiber::io::IoDriver::Epoll;

use fiber::io::Registration;
use fiber::net::{pipe, UnixListener, UnixStream};
use fibrpc_fiber as fiber;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

#[test]
fn unix_echo_round_trip() {
    common::use_driver(crate::DRIVER);
    let dir = std::env::temp_dir().join(format!("fibrpc-unix-{}", std::process::id()));
    let _ = std::fs::remove_file(&dir);
    let listener = UnixListener::bind(&dir).unwrap();
    let server = fiber::spawn(move || {
        let mut c = listener.accept().unwrap();
        let mut buf = [0u8; 64];
        loop {
            match c.read(&mut buf).unwrap() {
                0 => return,
                n => c.write_all(&buf[..n]).unwrap(),
            }
        }
    });
    let path = dir.clone();
    fiber::spawn(move || {
        let mut c = UnixStream::connect(&path).unwrap();
        for i in 0..100u32 {
            c.write_all(&i.to_le_bytes()).unwrap();
            let mut b = [0u8; 4];
            c.read_exact(&mut b).unwrap();
            assert_eq!(u32::from_le_bytes(b), i);
        }
    })
    .join()
    .unwrap();
    server.join().unwrap();
    std::fs::remove_file(&dir).unwrap();
}

#[test]
fn unix_pair_across_fibers() {
    common::use_driver(crate::DRIVER);
    let (a, b) = UnixStream::pair().unwrap();
    let h = fiber::spawn(move || {
        let mut got = Vec::new();
        (&b).read_to_end(&mut got).unwrap();
        got.len()
    });
    let data = vec![7u8; 1 << 20];
    (&a).write_all(&data).unwrap();
    a.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(h.join().unwrap(), 1 << 20);
}

#[test]
fn pipe_round_trip_larger_than_the_pipe_buffer() {
    common::use_driver(crate::DRIVER);
    let (mut r, mut w) = pipe().unwrap();
    let data: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
    let expect = data.clone();
    let reader = fiber::spawn(move || {
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        got == expect
    });
    fiber::spawn(move || w.write_all(&data).unwrap())
        .join()
        .unwrap();
    assert!(reader.join().unwrap());
}

/// The reader hook: one reader at a time, started on demand, every byte
/// read, and a burst of edges does not start a burst of fibers.
#[test]
fn reader_hook_runs_one_reader_at_a_time() {
    common::use_driver(crate::DRIVER);
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    b.set_nonblocking(true).unwrap();
    let b = Arc::new(b);
    let total = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let running = Arc::new(AtomicBool::new(false));
    let overlap = Arc::new(AtomicBool::new(false));
    let reg = {
        let (b, total, calls, running, overlap) = (
            b.clone(),
            total.clone(),
            calls.clone(),
            running.clone(),
            overlap.clone(),
        );
        Registration::with_reader(b.as_raw_fd(), move |_| {
            if running.swap(true, Ordering::SeqCst) {
                overlap.store(true, Ordering::SeqCst);
            }
            calls.fetch_add(1, Ordering::Relaxed);
            common::drain(&*b, |n| {
                total.fetch_add(n, Ordering::SeqCst);
                // Give the writer a chance to add edges meanwhile.
                fiber::yield_now();
            });
            running.store(false, Ordering::SeqCst);
        })
        .unwrap()
    };
    let sent = 200 * 100;
    for _ in 0..200 {
        (&a).write_all(&[1u8; 100]).unwrap();
    }
    let t = std::time::Instant::now();
    while total.load(Ordering::SeqCst) < sent {
        assert!(t.elapsed().as_secs() < 30, "reader stalled");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(total.load(Ordering::SeqCst), sent);
    assert!(!overlap.load(Ordering::SeqCst), "two readers ran at once");
    assert!(calls.load(Ordering::Relaxed) >= 1);
    drop(reg);
}

/// EOF right after a read that drained the pipe: the hang-up edge may be
/// consumed before that read, so the next read must still ask the kernel
/// (a regression test for the skip-the-`EAGAIN`-read optimization).
#[test]
fn eof_after_a_draining_read_is_seen() {
    common::use_driver(crate::DRIVER);
    for i in 0..200u32 {
        let (mut r, mut w) = pipe().unwrap();
        let reader = fiber::spawn(move || {
            let mut got = Vec::new();
            r.read_to_end(&mut got).unwrap();
            got.len()
        });
        if i % 2 == 0 {
            fiber::yield_now();
        }
        w.write_all(&[1u8; 10]).unwrap();
        drop(w);
        assert_eq!(reader.join().unwrap(), 10);
    }
}
