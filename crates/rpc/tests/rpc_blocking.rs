//! A handler that blocks its worker's OS thread must not hold up other
//! responses. Its own test binary (so its own process), and its tests run
//! one at a time: with both workers blocked (or one blocked and the other
//! in a long computation) nothing can run, whatever the scheduler does.

mod rpc_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use fibrpc::protocol::baidu_std::{self, Frame, ParseResult};
use fibrpc::{IOBuf, ServerOptions};
use rpc_common::*;

/// One test at a time: each blocks a worker of the shared runtime (and
/// waits for it to come back before it ends).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// How long the misbehaving handler blocks its thread.
const BLOCK: Duration = Duration::from_millis(3000);

/// With one worker a blocked thread stops everything: nothing to test.
fn two_workers() -> bool {
    let n = fibrpc::fiber::Runtime::global().workers();
    if n < 2 {
        eprintln!("skipped: the default runtime has {n} worker(s)");
    }
    n >= 2
}

fn blocking() -> EchoRequest {
    let mut r = req("blocking");
    r.block_thread_ms = Some(BLOCK.as_millis() as u32);
    r
}

/// Reads the next whole response frame.
fn read_frame(s: &mut TcpStream, buf: &mut IOBuf) -> Frame {
    let mut chunk = [0u8; 4096];
    loop {
        if let ParseResult::Complete(f) = baidu_std::parse(buf, 1 << 20) {
            return f;
        }
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "closed");
        buf.append(&chunk[..n]);
    }
}

/// What each test starts from: its turn (held until it ends), a server,
/// and a connection to it with a read timeout. `None` (skip) with fewer
/// than two workers.
fn setup() -> Option<(MutexGuard<'static, ()>, fibrpc::Server, TcpStream)> {
    let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !two_workers() {
        return None;
    }
    let (server, _) = start_server(ServerOptions::default());
    let s = TcpStream::connect(server.listen_addr().unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    Some((turn, server, s))
}

/// Reads both answers: the quick one (correlation id 2) must come first
/// and within `bound` of `sent`; then the blocking one, so its worker is
/// free again before the next test blocks one.
fn expect_quick_first(s: &mut TcpStream, sent: Instant, bound: Duration) {
    let mut buf = IOBuf::new();
    let first = read_frame(s, &mut buf);
    let took = sent.elapsed();
    assert_eq!(
        first.meta.correlation_id(),
        2,
        "the quick one answers first"
    );
    assert!(
        took < bound,
        "the quick request waited {took:?} for the blocked thread"
    );
    assert_eq!(read_frame(s, &mut buf).meta.correlation_id(), 1);
}

/// Two requests arrive in one read: a handler that blocks its worker's OS
/// thread, then a quick one. The quick response is queued behind the
/// blocked fiber on that worker (responses of a batch are written
/// together); another worker must still write it long before the blocked
/// thread comes back.
#[test]
fn a_response_is_not_held_by_a_handler_blocking_its_thread() {
    let Some((_turn, _server, mut s)) = setup() else {
        return;
    };
    let mut both = echo_frame(1, &blocking());
    both.extend(echo_frame(2, &req("quick")));
    let t = Instant::now();
    s.write_all(&both).unwrap();
    expect_quick_first(&mut s, t, BLOCK * 2 / 3);
}

/// A request arrives on a connection whose worker is blocked in a handler
/// (its dispatcher is polled by nobody): another worker must notice the
/// input and answer it long before the blocked thread comes back.
#[test]
fn input_is_read_while_its_worker_is_blocked() {
    let Some((_turn, _server, mut s)) = setup() else {
        return;
    };
    s.write_all(&echo_frame(1, &blocking())).unwrap();
    // Let the blocking handler start (on the worker whose epoll holds
    // this connection), then send the quick one.
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    s.write_all(&echo_frame(2, &req("quick"))).unwrap();
    expect_quick_first(&mut s, t, BLOCK / 2);
}
