//! RPC over the io_uring I/O driver: the socket reader (IOPortal reads on
//! readiness), the write path (IOBuf blocks sent) and the client all run
//! on ring polls instead of epoll, and their reads from fibers as ring
//! operations (writes stay system calls: their callers may hold a lock).
//! The rest of the suite covers epoll.

mod rpc_common;

use std::time::Duration;

use fibrpc::fiber::io::{active_driver, configure, uring_ops_completed, Config, IoDriver};
use fibrpc::{Channel, ChannelOptions, Controller, IOBuf, ServerOptions};
use rpc_common::*;

/// Every test starts here: the driver is chosen before any descriptor is
/// registered in this process.
fn on_uring() {
    let _ = configure(Config {
        driver: IoDriver::Uring,
        ..Config::default()
    });
    // `FIBRPC_EXPECT_IO_URING=0` (set by `.ci/run` from its own probe on
    // a kernel without io_uring): the fallback to epoll is what runs.
    let expected = if std::env::var("FIBRPC_EXPECT_IO_URING").as_deref() == Ok("0") {
        eprintln!(
            "FIBRPC_EXPECT_IO_URING=0: this kernel has no io_uring; checking the fallback to epoll"
        );
        IoDriver::Epoll
    } else {
        IoDriver::Uring
    };
    assert_eq!(
        active_driver().unwrap(),
        expected,
        "io_uring was refused by this kernel (see the warning logged)"
    );
}

fn channel(server: &fibrpc::Server) -> Channel {
    Channel::new(server.listen_addr().unwrap(), ChannelOptions::default()).unwrap()
}

#[test]
fn echo_from_a_thread_and_a_fiber() {
    on_uring();
    let (server, _) = start_server(ServerOptions::default());
    let ch = channel(&server);
    let mut cntl = Controller::new();
    assert_eq!(
        echo(&ch, &mut cntl, &req("hello")).unwrap().message,
        "hello"
    );
    let ch2 = ch.clone();
    let h = fibrpc::fiber::spawn(move || {
        let mut cntl = Controller::new();
        echo(&ch2, &mut cntl, &req("from a fiber")).unwrap().message
    });
    assert_eq!(h.join().unwrap(), "from a fiber");
}

/// Larger than a socket buffer both ways: partial reads into the portal
/// and partial writevs that wait for writability.
#[test]
fn attachment_of_8mib_comes_back() {
    on_uring();
    let (server, _) = start_server(ServerOptions::default());
    let ch = channel(&server);
    let data: Vec<u8> = (0..8usize << 20).map(|i| (i * 7 % 251) as u8).collect();
    let mut cntl = Controller::new();
    cntl.set_timeout(Duration::from_secs(20));
    *cntl.request_attachment_mut() = IOBuf::from(&data[..]);
    assert_eq!(echo(&ch, &mut cntl, &req("att")).unwrap().message, "att");
    assert!(cntl.response_attachment().equals(&data));
}

/// Many calls in flight from many fibers over one connection, and over
/// separate connections.
#[test]
fn concurrent_calls_complete() {
    on_uring();
    let (server, calls) = start_server(ServerOptions::default());
    let ch = channel(&server);
    let handles: Vec<_> = (0..32)
        .map(|i| {
            let ch = if i % 2 == 0 {
                ch.clone()
            } else {
                channel(&server)
            };
            fibrpc::fiber::spawn(move || {
                for j in 0..20 {
                    let msg = format!("{i}-{j}");
                    let mut cntl = Controller::new();
                    assert_eq!(echo(&ch, &mut cntl, &req(&msg)).unwrap().message, msg);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 32 * 20);
}

/// The server's socket reads (and the client's, from a fiber) run as ring
/// operations: sequential calls, none batched with another, each read
/// through the ring. (Writes stay system calls: their callers may hold a
/// lock; see the HTTP test below.)
#[test]
fn socket_reads_are_ring_operations() {
    on_uring();
    if active_driver().unwrap() != IoDriver::Uring {
        return;
    }
    const CALLS: u64 = 50;
    let (server, _) = start_server(ServerOptions::default());
    let ch = channel(&server);
    let before = uring_ops_completed();
    fibrpc::fiber::spawn(move || {
        for i in 0..CALLS {
            let msg = format!("call {i}");
            let mut cntl = Controller::new();
            assert_eq!(echo(&ch, &mut cntl, &req(&msg)).unwrap().message, msg);
        }
    })
    .join()
    .unwrap();
    let ops = uring_ops_completed() - before;
    // At least the server's and the client's read of each call.
    assert!(ops >= 2 * CALLS, "{ops} ring operations for {CALLS} calls");
}

/// HTTP keep-alive connections, each with sequential requests and then a
/// pipelined burst, all answered. A response written under the
/// connection's response-order lock must not park its fiber on the ring:
/// the next request's reader (started by the client's next request as
/// soon as the response reached it) would block its worker on that lock
/// while the parked writer waits for the same worker, and the server
/// would hang.
#[test]
fn http_keep_alive_and_pipelined_requests_are_all_answered() {
    use std::io::{Read, Write};
    on_uring();
    let mut server = fibrpc::Server::new(ServerOptions::default());
    server
        .add_http_handler(
            "/hello",
            |_: fibrpc::http::Request<IOBuf>, _: &fibrpc::http::HttpContext| {
                fibrpc::http::text(fibrpc::http::StatusCode::OK, "Hello, World!")
            },
        )
        .unwrap();
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();
    // Dropped only once everything was answered: a hung server's stop
    // would hang the test instead of failing it.
    let server = std::mem::ManuallyDrop::new(server);
    const REQUEST: &[u8] = b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n";
    const BODY: &[u8] = b"Hello, World!";
    /// Reads until `n` more responses (counted by their bodies) arrived.
    fn read_responses(s: &mut std::net::TcpStream, n: usize, pending: &mut Vec<u8>) {
        let mut buf = [0u8; 16384];
        loop {
            let got = pending.windows(BODY.len()).filter(|w| *w == BODY).count();
            if got >= n {
                pending.clear();
                return;
            }
            let k = s.read(&mut buf).expect("a response within 10 s");
            assert!(k > 0, "the server closed the connection");
            pending.extend_from_slice(&buf[..k]);
        }
    }
    let clients: Vec<_> = (0..50)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.set_nodelay(true).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut pending = Vec::new();
                for _ in 0..2000 {
                    s.write_all(REQUEST).unwrap();
                    read_responses(&mut s, 1, &mut pending);
                }
                for _ in 0..20 {
                    s.write_all(&REQUEST.repeat(16)).unwrap();
                    read_responses(&mut s, 16, &mut pending);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    drop(std::mem::ManuallyDrop::into_inner(server));
}
