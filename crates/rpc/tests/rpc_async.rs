//! Asynchronous calls end to end: no fiber held while in flight, timeouts
//! with the late response dropped, connection failures retried, and the
//! fallback paths (short connections, backup requests).

mod rpc_common;

use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fibrpc::{errno, Channel, ChannelOptions, ConnectionType, Controller, ServerOptions};
use rpc_common::*;

type Outcome = (Controller, Result<EchoResponse, fibrpc::RpcError>);

fn channel(addr: std::net::SocketAddr, kind: ConnectionType, max_retry: u32) -> Channel {
    let options = ChannelOptions {
        connection_type: kind,
        max_retry,
        timeout: Some(Duration::from_secs(5)),
        ..Default::default()
    };
    Channel::new(addr, options).unwrap()
}

/// Starts an asynchronous Echo whose outcome lands in `tx`.
fn start(ch: &Channel, cntl: Controller, r: &EchoRequest, tx: &mpsc::Sender<Outcome>) {
    let tx = tx.clone();
    ch.call_async(SERVICE, "Echo", cntl, r, move |cntl, r| {
        let _ = tx.send((cntl, r));
    });
}

fn recv(rx: &mpsc::Receiver<Outcome>) -> Outcome {
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the callback ran")
}

#[test]
fn calls_in_flight_hold_no_fiber() {
    // A peer that accepts and reads but never answers: every call stays
    // in flight until its timeout.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let sink = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let _ = std::io::copy(&mut s, &mut std::io::sink());
    });
    let ch = channel(addr, ConnectionType::Single, 0);
    let (tx, rx) = mpsc::channel();
    // The first call connects (on a carrier fiber); wait for it.
    let mut first = Controller::new();
    first.set_timeout(Duration::from_millis(50));
    start(&ch, first, &req("connect"), &tx);
    assert_eq!(code_of(&recv(&rx).1), errno::ERPCTIMEDOUT);

    const N: usize = 2000;
    let before = fibrpc::fiber::stats().alive();
    for i in 0..N {
        let mut cntl = Controller::new();
        cntl.set_timeout(Duration::from_millis(800));
        start(&ch, cntl, &req(&format!("{i}")), &tx);
    }
    let during = fibrpc::fiber::stats().alive();
    // A fiber per call would be N more; the margin absorbs the fibers of
    // the other tests of this binary, which run alongside.
    assert!(
        during < before + N as u64 / 4,
        "{N} calls in flight hold {} fibers",
        during.saturating_sub(before)
    );
    for _ in 0..N {
        let (cntl, r) = recv(&rx);
        assert_eq!(code_of(&r), errno::ERPCTIMEDOUT, "{r:?}");
        assert!(cntl.failed());
        assert!(cntl.latency() >= Duration::from_millis(790));
    }
    drop(ch);
    sink.join().unwrap();
}

#[test]
fn a_timeout_drops_the_late_response_and_the_connection_goes_on() {
    let (server, calls) = start_server(ServerOptions::default());
    let ch = channel(server.listen_addr().unwrap(), ConnectionType::Single, 3);
    // Connect first, so the slow call below is sent without a carrier.
    assert_eq!(
        echo(&ch, &mut Controller::new(), &req("hi"))
            .unwrap()
            .message,
        "hi"
    );
    let (tx, rx) = mpsc::channel();
    let mut cntl = Controller::new();
    cntl.set_timeout(Duration::from_millis(50));
    let mut slow = req("slow");
    slow.sleep_ms = Some(300);
    let t = Instant::now();
    start(&ch, cntl, &slow, &tx);
    let (cntl, r) = recv(&rx);
    assert_eq!(code_of(&r), errno::ERPCTIMEDOUT, "{r:?}");
    assert!(
        t.elapsed() < Duration::from_millis(290),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(cntl.retried_count(), 0, "timeouts are not retried");
    // The late response arrives while this call waits: it gets its own.
    let mut next = req("next");
    next.sleep_ms = Some(400);
    start(&ch, Controller::new(), &next, &tx);
    let (cntl, r) = recv(&rx);
    assert_eq!(r.unwrap().message, "next");
    assert!(!cntl.failed());
    assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 3);
}

/// The request reached the dying server: only an idempotent call is sent
/// again (`tests/retry_idempotency.rs` has the other side).
#[test]
fn a_broken_connection_is_retried_on_a_new_one() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let ch = channel(addr, ConnectionType::Single, 3);
    // A first "server" that takes the request, hands its listener back
    // (so the real server can have the port), and hangs up when told.
    let (give, took) = mpsc::channel();
    let (hang_up, told) = mpsc::channel::<()>();
    let dying = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 256];
        // The warm-up call, then the one in flight.
        for _ in 0..2 {
            assert!(std::io::Read::read(&mut s, &mut buf).unwrap() > 0);
        }
        give.send(listener).unwrap();
        let _ = told.recv();
        drop(s);
    });
    let (tx, rx) = mpsc::channel();
    // Connects (unanswered, it times out); the connection stays.
    let mut warm = Controller::new();
    warm.set_timeout(Duration::from_millis(50));
    start(&ch, warm, &req("warm"), &tx);
    assert_eq!(code_of(&recv(&rx).1), errno::ERPCTIMEDOUT);
    // In flight on that connection when the peer hangs up.
    let mut idempotent = Controller::new();
    idempotent.set_idempotent(true);
    start(&ch, idempotent, &req("first"), &tx);
    drop(took.recv().unwrap());
    let mut server = fibrpc::Server::new(ServerOptions::default());
    server.add_service(Echo::default()).unwrap();
    server.start(addr).unwrap();
    hang_up.send(()).unwrap();
    dying.join().unwrap();
    let (cntl, r) = recv(&rx);
    assert_eq!(r.unwrap().message, "first");
    assert_eq!(cntl.retried_count(), 1);
    // The replacement connection carries the next call in flight.
    start(&ch, Controller::new(), &req("second"), &tx);
    assert_eq!(recv(&rx).1.unwrap().message, "second");
}

#[test]
fn short_connections_and_backup_requests_take_the_carrier_path() {
    let (server, _) = start_server(ServerOptions::default());
    let (tx, rx) = mpsc::channel();
    let short = channel(server.listen_addr().unwrap(), ConnectionType::Short, 0);
    let pooled = channel(server.listen_addr().unwrap(), ConnectionType::Pooled, 0);
    for i in 0..20 {
        start(&short, Controller::new(), &req(&format!("s{i}")), &tx);
        start(&pooled, Controller::new(), &req(&format!("p{i}")), &tx);
    }
    let mut cntl = Controller::new();
    cntl.set_backup_request(Duration::from_millis(10));
    start(&short, cntl, &req("backup"), &tx);
    let mut got: Vec<String> = (0..41).map(|_| recv(&rx).1.unwrap().message).collect();
    got.sort();
    assert!(got.contains(&"backup".to_owned()));
    assert_eq!(got.iter().filter(|m| m.starts_with('s')).count(), 20);
    assert_eq!(got.iter().filter(|m| m.starts_with('p')).count(), 20);
}
