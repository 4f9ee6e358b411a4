//! RPC over the io_uring I/O driver: the socket reader (IOPortal reads on
//! readiness), the write path (IOBuf blocks sent) and the client all run
//! on ring polls instead of epoll, and their reads and writes from fibers
//! as ring operations. The rest of the suite covers epoll.

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

/// The server's socket reads and writes (and the client's, from a fiber)
/// run as ring operations: sequential calls, none batched with another,
/// each read and answered through the ring.
#[test]
fn socket_reads_and_writes_are_ring_operations() {
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
    // At least the server's read and write of each call.
    assert!(ops >= 2 * CALLS, "{ops} ring operations for {CALLS} calls");
}
