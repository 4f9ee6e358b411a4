//! TCP through the fiber net layer: echo round trips from fibers and from
//! plain threads, split halves, many connections, sendfile.

mod common;

/// The I/O driver this suite runs on; `net_drivers.rs` includes this file
/// with io_uring.
#[allow(dead_code)]
const DRIVER: fibrpc_fiber::io::IoDriver = fibrpc_fiber::io::IoDriver::Epoll;

use fiber::net::{TcpListener, TcpStream};
use fibrpc_fiber as fiber;
use std::io::{Read, Write};
use std::net::Shutdown;

/// A listener whose fiber echoes every connection in its own fiber.
fn echo_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(fiber::spawn(move || {
        for conn in listener.incoming() {
            let mut conn = conn.unwrap();
            drop(fiber::spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => conn.write_all(&buf[..n]).unwrap(),
                    }
                }
            }));
        }
    }));
    addr
}

fn round_trip(c: &mut TcpStream, msg: &[u8]) {
    c.write_all(msg).unwrap();
    let mut back = vec![0u8; msg.len()];
    c.read_exact(&mut back).unwrap();
    assert_eq!(back, msg);
}

#[test]
fn echo_from_a_fiber() {
    common::use_driver(crate::DRIVER);
    let addr = echo_server();
    fiber::spawn(move || {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_nodelay(true).unwrap();
        assert!(c.nodelay().unwrap());
        assert_eq!(c.peer_addr().unwrap(), addr);
        assert_eq!(c.local_addr().unwrap().ip(), addr.ip());
        for i in 0..100u32 {
            round_trip(&mut c, &i.to_le_bytes().repeat(1 + i as usize));
        }
    })
    .join()
    .unwrap();
}

#[test]
fn echo_from_a_plain_thread() {
    common::use_driver(crate::DRIVER);
    let addr = echo_server();
    let mut c = TcpStream::connect(addr).unwrap();
    round_trip(&mut c, b"from a thread");
    // Larger than socket buffers: the writer must wait for the reader.
    let big: Vec<u8> = (0..4 << 20).map(|i| (i % 251) as u8).collect();
    let (mut r, mut w) = c.into_split();
    let expect = big.clone();
    let reader = fiber::spawn(move || {
        let mut got = vec![0u8; expect.len()];
        r.read_exact(&mut got).unwrap();
        assert!(got == expect, "echoed bytes differ");
    });
    w.write_all(&big).unwrap();
    reader.join().unwrap();
}

#[test]
fn split_halves_in_two_fibers_and_reunite() {
    common::use_driver(crate::DRIVER);
    let addr = echo_server();
    let c = TcpStream::connect(addr).unwrap();
    let (mut r, mut w) = c.into_split();
    let writer = fiber::spawn(move || {
        for i in 0..1000u32 {
            w.write_all(&i.to_be_bytes()).unwrap();
        }
        w
    });
    let reader = fiber::spawn(move || {
        for i in 0..1000u32 {
            let mut b = [0u8; 4];
            r.read_exact(&mut b).unwrap();
            assert_eq!(u32::from_be_bytes(b), i);
        }
        r
    });
    let (w, r) = (writer.join().unwrap(), reader.join().unwrap());
    let mut c = r.reunite(w).unwrap();
    round_trip(&mut c, b"whole again");
}

#[test]
fn half_close_reads_eof_but_can_still_write() {
    common::use_driver(crate::DRIVER);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = fiber::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut all = Vec::new();
        conn.read_to_end(&mut all).unwrap(); // until the client's FIN
        conn.write_all(&all).unwrap();
        all.len()
    });
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"half").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    assert_eq!(back, b"half");
    assert_eq!(server.join().unwrap(), 4);
}

#[test]
fn thousand_concurrent_connections() {
    common::use_driver(crate::DRIVER);
    let addr = echo_server();
    let clients: Vec<_> = (0..1000u32)
        .map(|i| {
            fiber::spawn(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                for k in 0..3u32 {
                    round_trip(&mut c, &(i * 7 + k).to_le_bytes());
                }
                c
            })
        })
        .collect();
    // Hold all of them open at once before closing any.
    let conns: Vec<TcpStream> = clients.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(conns.len(), 1000);
    for mut c in conns {
        round_trip(&mut c, b"still here");
    }
}

#[test]
fn send_file_sends_the_file_region() {
    common::use_driver(crate::DRIVER);
    use std::io::Seek;
    let mut file = tempfile();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 31 % 253) as u8).collect();
    file.write_all(&data).unwrap();
    file.rewind().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        got
    });
    let sent = fiber::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let a = conn.send_file(&file, 1000, 2_000_000).unwrap();
        // Past the end of the file: only what exists is sent.
        let b = conn.send_file(&file, 2_999_000, 5000).unwrap();
        (a, b)
    })
    .join()
    .unwrap();
    assert_eq!(sent, (2_000_000, 1000));
    let got = reader.join().unwrap();
    assert_eq!(got.len(), 2_001_000);
    assert!(got[..2_000_000] == data[1000..2_001_000]);
    assert!(got[2_000_000..] == data[2_999_000..]);
}

/// An unlinked temporary file.
pub fn tempfile() -> std::fs::File {
    let path = std::env::temp_dir().join(format!(
        "fibrpc-net-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    f
}

/// The same echo traffic with `epoll_wait` on a dedicated thread.
#[test]
fn echo_with_a_dispatcher_thread() {
    common::use_driver(crate::DRIVER);
    if std::env::var_os("FIBRPC_TEST_CHILD").is_some() {
        assert_eq!(std::env::var("FIBRPC_IO_POLLER").as_deref(), Ok("thread"));
        let addr = echo_server();
        let hs: Vec<_> = (0..50)
            .map(|i: u32| {
                fiber::spawn(move || {
                    let mut c = TcpStream::connect(addr).unwrap();
                    for k in 0..20u32 {
                        round_trip(&mut c, &(i ^ k).to_be_bytes());
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        return;
    }
    let out = common::run_child_with(
        &common::test_path(module_path!(), "echo_with_a_dispatcher_thread"),
        &[("FIBRPC_TEST_CHILD", "1"), ("FIBRPC_IO_POLLER", "thread")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One worker, two cores: the dispatchers no worker sleeps in must get no
/// registrations (a plain thread's descriptor would never be watched).
#[test]
fn one_worker_serves_threads_and_fibers() {
    common::use_driver(crate::DRIVER);
    if std::env::var_os("FIBRPC_TEST_CHILD").is_some() {
        assert_eq!(fiber::Runtime::global().workers(), 1);
        let addr = echo_server();
        for i in 0..4u32 {
            let mut c = TcpStream::connect(addr).unwrap(); // from this thread
            for k in 0..10u32 {
                round_trip(&mut c, &(i * k).to_le_bytes());
            }
        }
        return;
    }
    let out = common::run_child_with(
        &common::test_path(module_path!(), "one_worker_serves_threads_and_fibers"),
        &[
            ("FIBRPC_TEST_CHILD", "1"),
            ("FIBRPC_WORKERS", "1"),
            ("FIBRPC_EVENT_DISPATCHERS", "4"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `readable` + `try_read`: waiting for input without holding a buffer.
/// `try_read` never suspends; `readable` waits only after a read found the
/// socket drained, returns on data and on EOF, and honours the read
/// timeout.
#[test]
fn readable_then_try_read() {
    common::use_driver(crate::DRIVER);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let server = fiber::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 64];
        // Nothing sent yet: WouldBlock, not a wait.
        let e = conn.try_read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
        conn.set_read_timeout(Some(std::time::Duration::from_millis(20)))
            .unwrap();
        let e = conn.readable().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        conn.set_read_timeout(None).unwrap();
        go_tx.send(()).unwrap();
        // Echo with readable/try_read until EOF; 4 MiB goes through many
        // drained-then-wait rounds.
        let mut total = 0usize;
        loop {
            conn.readable().unwrap();
            match conn.try_read(&mut buf) {
                Ok(0) => return total,
                Ok(n) => {
                    (&conn).write_all(&buf[..n]).unwrap();
                    total += n;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("try_read: {e}"),
            }
        }
    });
    let c = std::net::TcpStream::connect(addr).unwrap();
    go_rx.recv().unwrap();
    let big: Vec<u8> = (0..4 << 20).map(|i| (i % 251) as u8).collect();
    let mut r = c.try_clone().unwrap();
    let expect = big.clone();
    let reader = std::thread::spawn(move || {
        let mut got = vec![0u8; expect.len()];
        r.read_exact(&mut got).unwrap();
        assert!(got == expect, "echoed bytes differ");
    });
    (&c).write_all(&big).unwrap();
    reader.join().unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(server.join().unwrap(), big.len());
}

/// Bytes readable on `fd` now (`FIONREAD`).
fn readable_bytes(fd: std::os::fd::RawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which lives on
    // this frame; `fd` is an open socket of the caller.
    assert_eq!(unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) }, 0);
    n as usize
}

/// A connected pair: a fiber stream and its std peer.
fn stream_pair() -> (TcpStream, std::net::TcpStream) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (ours, _) = l.accept().unwrap();
    (TcpStream::from_std(ours).unwrap(), peer)
}

/// A batched write made while another fiber is queued on the worker is
/// held until the worker's batch ends; a plain write sends what is held
/// first; the bytes arrive in the order the writes were made.
#[test]
fn batched_writes_wait_for_the_batch_and_keep_their_order() {
    use std::os::fd::AsRawFd;
    common::use_driver(crate::DRIVER);
    let (s, mut peer) = stream_pair();
    let peer_fd = peer.as_raw_fd();
    fiber::spawn(move || {
        // Queued on this worker (its LIFO slot) until this fiber parks.
        let sibling = fiber::spawn(|| ());
        assert!(fiber::has_queued_fibers());
        s.write_all_batched(b"first ").unwrap();
        assert_eq!(readable_bytes(peer_fd), 0, "held until the batch ends");
        // A plain write: the held bytes go first.
        (&s).write_all(b"second ").unwrap();
        assert_eq!(readable_bytes(peer_fd), 13);
        sibling.join().unwrap();
        let sibling = fiber::spawn(|| ());
        s.write_all_batched(b"third").unwrap();
        assert_eq!(readable_bytes(peer_fd), 13);
        sibling.join().unwrap();
        // The worker runs out of fibers while this one sleeps: its batch
        // ends and the held bytes leave.
        fiber::sleep(std::time::Duration::from_millis(20)).unwrap();
        assert_eq!(readable_bytes(peer_fd), 18);
        // Nothing else queued: written at once.
        s.write_all_batched(b"!").unwrap();
        assert_eq!(readable_bytes(peer_fd), 19);
    })
    .join()
    .unwrap();
    let mut got = String::new();
    peer.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    peer.read_to_string(&mut got).unwrap();
    assert_eq!(got, "first second third!");
}

/// A held write that fails when the batch ends (the peer reset the
/// connection) is reported by the stream's next write, even a batched
/// one that would otherwise just be queued.
#[test]
fn a_failed_batched_write_is_reported_by_the_next_write() {
    common::use_driver(crate::DRIVER);
    let (s, peer) = stream_pair();
    // Linger 0: the close is a reset.
    socket2::SockRef::from(&peer)
        .set_linger(Some(std::time::Duration::ZERO))
        .unwrap();
    drop(peer);
    fiber::spawn(move || {
        fiber::sleep(std::time::Duration::from_millis(20)).unwrap();
        let sibling = fiber::spawn(|| ());
        s.write_all_batched(b"lost").unwrap();
        sibling.join().unwrap();
        fiber::sleep(std::time::Duration::from_millis(20)).unwrap();
        // Batched again: only the stored error can fail it (it would be
        // queued otherwise).
        let sibling = fiber::spawn(|| ());
        let e = s.write_all_batched(b"next").unwrap_err();
        drop(sibling);
        assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ),
            "{e}"
        );
    })
    .join()
    .unwrap();
}

/// More held bytes than the socket buffers take: the batch's send stops
/// at `EAGAIN`, a fiber finishes once the peer reads, and the stream,
/// dropped meanwhile, closes only after its last byte went out.
#[test]
fn held_bytes_survive_a_full_socket_and_the_stream_s_drop() {
    use std::os::fd::AsRawFd;
    common::use_driver(crate::DRIVER);
    let (s, mut peer) = stream_pair();
    let small = 4096 as libc::c_int;
    for (fd, opt) in [
        (s.as_raw_fd(), libc::SO_SNDBUF),
        (peer.as_raw_fd(), libc::SO_RCVBUF),
    ] {
        // SAFETY: setsockopt reads one int from the pointer, on this frame.
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&small as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0);
    }
    let expected: Vec<u8> = (0..60 * 1024)
        .map(|i: usize| (i * 31 % 251) as u8)
        .collect();
    let to_send = expected.clone();
    fiber::spawn(move || {
        for chunk in to_send.chunks(1024) {
            let sibling = fiber::spawn(|| ());
            s.write_all_batched(chunk).unwrap();
            drop(sibling);
        }
        // Dropped with (most of) its bytes still held.
    })
    .join()
    .unwrap();
    peer.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut got = Vec::new();
    peer.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "the bytes arrived out of order");
}
