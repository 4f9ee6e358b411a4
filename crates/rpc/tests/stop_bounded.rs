//! A stop is bounded by `ServerOptions::stop_grace`: with 50 peers that
//! asked for a large response and never read it, and one handler stuck in
//! a long sleep, `join` returns within the grace period plus 1 s, and the
//! stuck handler is logged by name.
//!
//! The log is captured as in `logging.rs`: `tracing-subscriber`'s
//! formatter, the process-wide default, writes into memory.

mod log_capture;
mod rpc_common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fibrpc::http::{HttpContext, Request, StatusCode};
use fibrpc::{Channel, ChannelOptions, Controller, IOBuf, Server, ServerOptions};
use rpc_common::*;

const GRACE: Duration = Duration::from_secs(1);
const PEERS: usize = 50;
/// Far more than a loopback socket's buffers hold (a few MiB).
const BIG: usize = 16 << 20;

/// A connection that asks for `/big` and never reads: a tiny receive
/// buffer, so the response stays queued on the server.
fn silent_peer(addr: SocketAddr) -> socket2::Socket {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(4096).unwrap();
    s.connect_timeout(&addr.into(), Duration::from_secs(5))
        .unwrap();
    (&s).write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    s
}

/// Waits (bounded) until `counter` reaches `n`.
fn wait_for(counter: &AtomicUsize, n: usize, what: &str) {
    let give_up = Instant::now() + Duration::from_secs(20);
    while counter.load(Ordering::Relaxed) < n {
        assert!(
            Instant::now() < give_up,
            "{what}: {} of {n}",
            counter.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn join_returns_within_the_grace_period_and_names_the_stuck_handler() {
    log_capture::capture(tracing::Level::WARN);
    // One body, shared by reference by every response.
    let mut body = IOBuf::new();
    body.append(&vec![b'x'; BIG]);
    let served = Arc::new(AtomicUsize::new(0));
    let echo_service = Echo::default();
    let echo_calls = echo_service.calls.clone();
    let mut server = Server::new(ServerOptions {
        stop_grace: GRACE,
        ..Default::default()
    });
    server.add_service(echo_service).unwrap();
    let counter = served.clone();
    server
        .add_http_handler("/big", move |_: Request<IOBuf>, _: &HttpContext| {
            counter.fetch_add(1, Ordering::Relaxed);
            fibrpc::http::response(StatusCode::OK, "application/octet-stream", body.clone())
        })
        .unwrap();
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();

    let peers: Vec<_> = (0..PEERS).map(|_| silent_peer(addr)).collect();
    wait_for(&served, PEERS, "large responses queued");

    // The stuck handler: sleeps a minute.
    let channel = Channel::new(
        addr,
        ChannelOptions {
            timeout: Some(Duration::from_secs(120)),
            max_retry: 0,
            ..Default::default()
        },
    )
    .unwrap();
    let stuck = std::thread::spawn(move || {
        let mut r = req("stuck");
        r.sleep_ms = Some(60_000);
        echo(&channel, &mut Controller::new(), &r)
    });
    wait_for(&echo_calls, 1, "the stuck call reached its handler");

    let stopped = Instant::now();
    let (done_tx, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        server.stop();
        server.join();
        done_tx.send(Instant::now()).unwrap();
    });
    let bound = GRACE + Duration::from_secs(1);
    let returned = done
        .recv_timeout(bound)
        .unwrap_or_else(|_| panic!("join did not return within {bound:?} of the stop"));
    assert!(returned - stopped <= bound, "{:?}", returned - stopped);

    let log = log_capture::logged();
    let reported: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("handler still running"))
        .collect();
    assert_eq!(reported.len(), 1, "{log}");
    assert!(
        reported[0].contains("handler=example.EchoService.Echo"),
        "{}",
        reported[0]
    );
    assert!(reported[0].contains("requests=1"), "{}", reported[0]);
    assert!(
        log.contains("unflushed_connections=50"),
        "the silent peers' responses were still queued: {log}"
    );

    // The stuck call's connection was closed: it fails instead of waiting
    // out the handler's minute.
    assert!(stuck.join().unwrap().is_err());
    drop(peers);
}
