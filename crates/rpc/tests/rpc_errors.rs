//! End-to-end failures: unknown service/method, bad payload, handler
//! errors, timeouts, broken and restarted servers, limits, graceful stop,
//! and malformed input that must close only its own connection.

mod rpc_common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use fibrpc::protocol::baidu_std::{self, ParseResult, RpcMeta, RpcResponseMeta};
use fibrpc::{codec, errno, Channel, ChannelOptions, Controller, IOBuf, ServerOptions};
use rpc_common::*;

fn channel_to(addr: std::net::SocketAddr, max_retry: u32) -> Channel {
    let options = ChannelOptions {
        max_retry,
        timeout: Some(Duration::from_secs(5)),
        ..Default::default()
    };
    Channel::new(addr, options).unwrap()
}

#[test]
fn unknown_service_method_and_bad_payload() {
    let (server, _) = start_server(ServerOptions::default());
    let ch = channel_to(server.listen_addr().unwrap(), 3);
    let mut cntl = Controller::new();
    let r: Result<EchoResponse, _> = ch.call("example.Nope", "Echo", &mut cntl, &req("x"));
    assert_eq!(code_of(&r), errno::ENOSERVICE);
    assert_eq!(cntl.error_code(), errno::ENOSERVICE);
    let r: Result<EchoResponse, _> = ch.call(SERVICE, "Nope", &mut cntl, &req("x"));
    assert_eq!(code_of(&r), errno::ENOMETHOD);
    // Field 1 announced as 100 bytes long, then nothing.
    let r = ch.call_raw(SERVICE, "Echo", &mut cntl, IOBuf::from(&b"\x0a\x64ab"[..]));
    assert_eq!(code_of(&r), errno::EREQUEST, "{r:?}");
    // The connection survives answered errors.
    assert_eq!(
        echo(&ch, &mut cntl, &req("still fine")).unwrap().message,
        "still fine"
    );
    assert_eq!(server.connection_count(), 1);
}

#[test]
fn handler_errors_pass_through() {
    let (server, _) = start_server(ServerOptions::default());
    let ch = channel_to(server.listen_addr().unwrap(), 3);
    let mut cntl = Controller::new();
    let mut r = req("x");
    r.fail_code = Some(4242);
    let e = echo(&ch, &mut cntl, &r).unwrap_err();
    assert_eq!(e.code, 4242);
    assert_eq!(e.text, "asked to fail with 4242");
    assert_eq!(cntl.error_text(), "asked to fail with 4242");
    assert_eq!(cntl.retried_count(), 0, "answered errors are not retried");
    assert_eq!(server.method_stats(SERVICE, "Echo").unwrap().errors, 1);
}

#[test]
fn timeout_fails_the_call_and_the_late_response_is_dropped() {
    let (server, calls) = start_server(ServerOptions::default());
    let ch = channel_to(server.listen_addr().unwrap(), 3);
    let mut cntl = Controller::new();
    cntl.set_timeout(Duration::from_millis(50));
    let mut slow = req("slow");
    slow.sleep_ms = Some(300);
    let t = Instant::now();
    let r = echo(&ch, &mut cntl, &slow);
    assert_eq!(code_of(&r), errno::ERPCTIMEDOUT);
    assert!(
        t.elapsed() < Duration::from_millis(290),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(cntl.retried_count(), 0, "timeouts are not retried");
    // The late response arrives while the next call waits; that call
    // must get its own answer.
    let mut cntl = Controller::new();
    let mut next = req("next");
    next.sleep_ms = Some(400);
    assert_eq!(echo(&ch, &mut cntl, &next).unwrap().message, "next");
    assert_eq!(calls.load(Ordering::Relaxed), 2);
}

/// Reads one whole baidu_std frame from a blocking stream.
fn read_frame(s: &mut TcpStream) -> Option<baidu_std::Frame> {
    let mut buf = IOBuf::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let ParseResult::Complete(f) = baidu_std::parse(&mut buf, 64 << 20) {
            return Some(f);
        }
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.append(&chunk[..n]);
    }
}

#[test]
fn server_killed_mid_call_fails_promptly_then_a_restarted_server_is_used() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // A "server" that dies with the call in flight.
    let killer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        read_frame(&mut s).expect("a request");
        drop(s);
        drop(listener);
    });
    let ch = channel_to(addr, 0);
    let mut cntl = Controller::new();
    let t = Instant::now();
    let r = echo(&ch, &mut cntl, &req("doomed"));
    assert_eq!(code_of(&r), errno::EFAILEDSOCKET, "{r:?}");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "not prompt: {:?}",
        t.elapsed()
    );
    killer.join().unwrap();
    // The server comes back on the same port; the channel reconnects.
    let mut server = fibrpc::Server::new(ServerOptions::default());
    server.add_service(Echo::default()).unwrap();
    server.start(addr).unwrap();
    assert_eq!(echo(&ch, &mut cntl, &req("back")).unwrap().message, "back");
}

/// The request reached the server that hung up: only an idempotent call
/// is sent again (`tests/retry_idempotency.rs` has the other side).
#[test]
fn connection_failures_of_idempotent_calls_are_retried() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = std::thread::spawn(move || {
        // First connection: swallow the request and hang up.
        let (mut s, _) = listener.accept().unwrap();
        read_frame(&mut s).unwrap();
        drop(s);
        // Second: answer like a baidu_std server.
        let (mut s, _) = listener.accept().unwrap();
        let f = read_frame(&mut s).unwrap();
        let r: EchoRequest = codec::decode_request(&f.payload).unwrap();
        let meta = RpcMeta {
            correlation_id: f.meta.correlation_id,
            response: Some(RpcResponseMeta {
                error_code: Some(0),
                error_text: None,
            }),
            ..Default::default()
        };
        let mut out = IOBuf::new();
        let body = codec::encode(&EchoResponse { message: r.message });
        baidu_std::encode(&meta, &body, &IOBuf::new(), &mut out).unwrap();
        s.write_all(&out.to_vec()).unwrap();
        // Hold the connection until the client is done.
        let _ = s.read(&mut [0u8; 1]);
    });
    let ch = channel_to(addr, 3);
    let mut cntl = Controller::new();
    cntl.set_idempotent(true);
    assert_eq!(
        echo(&ch, &mut cntl, &req("again")).unwrap().message,
        "again"
    );
    assert_eq!(cntl.retried_count(), 1);
    drop(ch);
    fake.join().unwrap();
}

#[test]
fn max_concurrency_answers_elimit() {
    let options = ServerOptions {
        max_concurrency: 2,
        ..Default::default()
    };
    let (server, _) = start_server(options);
    let ch = channel_to(server.listen_addr().unwrap(), 0);
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let ch = ch.clone();
            fibrpc::fiber::spawn(move || {
                let mut r = req("busy");
                r.sleep_ms = Some(200);
                code_of(&echo(&ch, &mut Controller::new(), &r))
            })
        })
        .collect();
    let codes: Vec<i32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ok = codes.iter().filter(|&&c| c == 0).count();
    let limited = codes.iter().filter(|&&c| c == errno::ELIMIT).count();
    assert_eq!(ok + limited, 6, "{codes:?}");
    assert!((1..=2).contains(&ok) && limited >= 4, "{codes:?}");
}

#[test]
fn graceful_stop_loses_no_call_in_flight() {
    let (mut server, calls) = start_server(ServerOptions::default());
    let ch = channel_to(server.listen_addr().unwrap(), 0);
    let handles: Vec<_> = (0..50)
        .map(|i| {
            let ch = ch.clone();
            fibrpc::fiber::spawn(move || {
                let mut r = req(&format!("inflight {i}"));
                r.sleep_ms = Some(200);
                echo(&ch, &mut Controller::new(), &r).map(|r| r.message)
            })
        })
        .collect();
    // Stop once every call reached the handler.
    let t = Instant::now();
    while calls.load(Ordering::Relaxed) < 50 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(calls.load(Ordering::Relaxed), 50);
    server.stop();
    server.join();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.join().unwrap().unwrap(), format!("inflight {i}"));
    }
    // Stopped: new calls fail.
    assert!(echo(&ch, &mut Controller::new(), &req("late")).is_err());
}

/// Sends `bytes` on a raw connection and checks the server closes it while
/// a channel's calls keep working.
fn closes_only_its_connection(bytes: &[u8]) {
    let (server, _) = start_server(ServerOptions::default());
    let addr = server.listen_addr().unwrap();
    let ch = channel_to(addr, 0);
    assert_eq!(
        echo(&ch, &mut Controller::new(), &req("before"))
            .unwrap()
            .message,
        "before"
    );
    let mut bad = TcpStream::connect(addr).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    bad.write_all(bytes).unwrap();
    let mut sink = Vec::new();
    // EOF (or a reset): the server closed it.
    let _ = bad.read_to_end(&mut sink);
    assert!(sink.is_empty(), "no answer to garbage: {sink:?}");
    assert_eq!(
        echo(&ch, &mut Controller::new(), &req("after"))
            .unwrap()
            .message,
        "after"
    );
    assert_eq!(wait_for_connections(&server, 1), 1);
}

#[test]
fn garbage_closes_only_its_connection() {
    closes_only_its_connection(b"GARBAGE\r\n\r\nnot a protocol at all");
}

#[test]
fn huge_body_size_closes_only_its_connection() {
    let mut f = b"PRPC".to_vec();
    f.extend_from_slice(&u32::MAX.to_be_bytes());
    f.extend_from_slice(&0u32.to_be_bytes());
    closes_only_its_connection(&f);
}

#[test]
fn meta_size_over_body_size_closes_only_its_connection() {
    let mut f = b"PRPC".to_vec();
    f.extend_from_slice(&10u32.to_be_bytes());
    f.extend_from_slice(&20u32.to_be_bytes());
    f.extend_from_slice(&[0u8; 10]);
    closes_only_its_connection(&f);
}
