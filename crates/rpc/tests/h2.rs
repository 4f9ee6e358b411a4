//! HTTP/2 on the server's shared port, with real peers (curl
//! `--http2-prior-knowledge`, h2load) and a raw client for what real
//! peers never send: each bad input ends only its own connection, with
//! the GOAWAY code RFC 9113 names (or only its stream, with
//! RST_STREAM).
//!
//! curl and h2load (nghttp2-client) must be installed: a test that
//! cannot run them fails.

mod h2_common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fibrpc::http::{HttpContext, Request, StatusCode};
use fibrpc::protocol::h2::frame::{flag, kind};
use fibrpc::protocol::h2::H2Options;
use fibrpc::{IOBuf, Server, ServerOptions};
use h2_common::*;

const PROTOCOL_ERROR: u32 = 0x1;
const FLOW_CONTROL_ERROR: u32 = 0x3;
const FRAME_SIZE_ERROR: u32 = 0x6;
const REFUSED_STREAM: u32 = 0x7;
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// The echo service, `/hello`, and `/slow` (sleeps `?ms=`, default 1 s).
fn server_with(options: ServerOptions) -> (Server, SocketAddr) {
    let mut server = Server::new(options);
    server
        .add_service(fibrpc_example::EchoServiceServer::new(GenEcho))
        .unwrap();
    server
        .add_http_handler("/hello", |req: Request<IOBuf>, _: &HttpContext| {
            fibrpc::http::text(
                StatusCode::OK,
                format!("hello {} {:?}\n", req.method(), req.version()),
            )
        })
        .unwrap();
    server
        .add_http_handler("/slow", |req: Request<IOBuf>, _: &HttpContext| {
            let ms = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("ms="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000);
            fibrpc::fiber::sleep(Duration::from_millis(ms)).unwrap();
            fibrpc::http::text(StatusCode::OK, "slept\n")
        })
        .unwrap();
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();
    (server, addr)
}

fn server() -> (Server, SocketAddr) {
    server_with(ServerOptions::default())
}

fn curl(args: &[&str]) -> (String, String) {
    let out = run_peer("curl", args, 30);
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The connection still serves others: a new one gets `/hello`.
fn others_unaffected(addr: SocketAddr) {
    let mut c = RawH2::connect(addr);
    c.get(1, "/hello");
    let r = c.response(1);
    assert_eq!(r.status(), 200);
    assert_eq!(r.body, b"hello GET HTTP/2.0\n");
}

#[test]
fn curl_console_handler_and_json_call() {
    let (_server, addr) = server();
    let base = format!("http://{addr}");
    let (status, err) = curl(&[
        "-sS",
        "--http2-prior-knowledge",
        "-v",
        &format!("{base}/status"),
    ]);
    assert!(err.contains("HTTP/2 200"), "{err}");
    assert!(status.contains("uptime"), "{status}");
    assert!(status.contains("example.EchoService"), "{status}");
    let (hello, _) = curl(&["-sS", "--http2-prior-knowledge", &format!("{base}/hello")]);
    assert_eq!(hello, "hello GET HTTP/2.0\n");
    let (echo, err) = curl(&[
        "-sS",
        "-v",
        "--http2-prior-knowledge",
        "-H",
        "content-type: application/json",
        "-d",
        r#"{"message":"over h2"}"#,
        &format!("{base}/example.EchoService/Echo"),
    ]);
    assert!(err.contains("HTTP/2 200"), "{err}");
    assert_eq!(echo, r#"{"message":"over h2"}"#);
    // A missing page is the HTTP dispatch's 404, and HEAD has no body.
    let (_, err) = curl(&[
        "-sS",
        "-v",
        "--http2-prior-knowledge",
        &format!("{base}/nothing"),
    ]);
    assert!(err.contains("HTTP/2 404"), "{err}");
    let (body, err) = curl(&[
        "-sS",
        "-v",
        "-I",
        "--http2-prior-knowledge",
        &format!("{base}/hello"),
    ]);
    assert!(err.contains("HTTP/2 200"), "{err}");
    assert!(body.contains("content-length: 20"), "{body}");
}

#[test]
fn curl_sends_and_receives_16_mib() {
    let (_server, addr) = server();
    let message = "m".repeat(16 << 20);
    let dir = std::env::temp_dir().join(format!("fibrpc-h2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let body = dir.join("big.json");
    std::fs::write(&body, format!(r#"{{"message":"{message}"}}"#)).unwrap();
    let answer = dir.join("answer.json");
    let out = run_peer(
        "curl",
        &[
            "-sS",
            "--http2-prior-knowledge",
            "-H",
            "content-type: application/json",
            "--data-binary",
            &format!("@{}", body.display()),
            "-o",
            &answer.display().to_string(),
            &format!("http://{addr}/example.EchoService/Echo"),
        ],
        60,
    );
    let got = std::fs::read(&answer).unwrap_or_default();
    assert_eq!(
        got.len(),
        message.len() + 14,
        "{:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(got.ends_with(b"mmm\"}"));
    let _ = std::fs::remove_dir_all(dir);
}

fn h2load(args: &[&str]) -> String {
    let out = run_peer("h2load", args, 120);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn h2load_status_all_succeed() {
    let (_server, addr) = server();
    let out = h2load(&[
        "-n",
        "2000",
        "-c",
        "4",
        "-m",
        "16",
        &format!("http://{addr}/status"),
    ]);
    assert!(out.contains("2000 succeeded, 0 failed, 0 errored"), "{out}");
    assert!(out.contains("2000 2xx"), "{out}");
}

#[test]
fn a_thousand_concurrent_streams_on_one_connection() {
    // Every request waits until all 1,000 are in the server at once.
    const N: usize = 1000;
    let arrived = Arc::new(AtomicUsize::new(0));
    let a = arrived.clone();
    let mut server = Server::new(ServerOptions {
        h2: H2Options {
            max_concurrent_streams: N as u32,
            ..Default::default()
        },
        ..Default::default()
    });
    server
        .add_http_handler("/gather", move |_: Request<IOBuf>, _: &HttpContext| {
            a.fetch_add(1, Ordering::SeqCst);
            let deadline = Instant::now() + Duration::from_secs(20);
            while a.load(Ordering::SeqCst) < N && Instant::now() < deadline {
                fibrpc::fiber::sleep(Duration::from_millis(5)).unwrap();
            }
            let all = a.load(Ordering::SeqCst) >= N;
            fibrpc::http::text(StatusCode::OK, if all { "all" } else { "alone" })
        })
        .unwrap();
    server.start("127.0.0.1:0").unwrap();
    let mut c = RawH2::connect(server.listen_addr().unwrap());
    let mut batch = Vec::new();
    for i in 0..N as u32 {
        let block = request_block("GET", "/gather", &[]);
        batch.extend(frame(
            kind::HEADERS,
            flag::END_HEADERS | flag::END_STREAM,
            2 * i + 1,
            &block,
        ));
    }
    c.send(&batch);
    let mut all = 0;
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen < N && Instant::now() < deadline {
        let f = c.read_frame().expect("the connection ended");
        if f.kind == kind::DATA && f.flags & flag::END_STREAM != 0 {
            seen += 1;
            all += usize::from(f.payload == b"all");
        }
        assert_ne!(f.kind, kind::RST_STREAM, "stream {} refused", f.stream);
    }
    assert_eq!(seen, N);
    assert_eq!(all, N, "every request saw the other 999 in the server");
    assert_eq!(arrived.load(Ordering::SeqCst), N);
}

#[test]
fn h2load_a_thousand_streams_per_connection() {
    let (_server, addr) = server_with(ServerOptions {
        h2: H2Options {
            max_concurrent_streams: 1000,
            ..Default::default()
        },
        ..Default::default()
    });
    let out = h2load(&[
        "-n",
        "3000",
        "-c",
        "1",
        "-m",
        "1000",
        &format!("http://{addr}/hello"),
    ]);
    assert!(out.contains("3000 succeeded, 0 failed, 0 errored"), "{out}");
}

#[test]
fn bad_preface_is_goaway_protocol_error() {
    let (_server, addr) = server();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    std::io::Write::write_all(&mut s, b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n").unwrap();
    let mut c = RawH2::wrap(s);
    assert_eq!(c.goaway().map(|g| g.1), Some(PROTOCOL_ERROR));
    assert!(c.closed());
    others_unaffected(addr);
}

#[test]
fn frame_over_max_frame_size_is_goaway_frame_size_error() {
    let (_server, addr) = server();
    let mut c = RawH2::connect(addr);
    c.send(&frame(kind::DATA, 0, 1, &vec![0u8; 16_385]));
    assert_eq!(c.goaway().map(|g| g.1), Some(FRAME_SIZE_ERROR));
    assert!(c.closed());
    others_unaffected(addr);
}

#[test]
fn headers_without_end_headers_then_another_frame_is_protocol_error() {
    let (_server, addr) = server();
    let mut c = RawH2::connect(addr);
    let block = request_block("GET", "/hello", &[]);
    c.send(&frame(kind::HEADERS, flag::END_STREAM, 1, &block));
    c.send(&frame(kind::PING, 0, 0, &[0; 8]));
    assert_eq!(c.goaway().map(|g| g.1), Some(PROTOCOL_ERROR));
    assert!(c.closed());
    others_unaffected(addr);
}

#[test]
fn window_update_overflow_is_flow_control_error() {
    let (_server, addr) = server();
    let mut c = RawH2::connect(addr);
    // The connection's window starts at 65,535: 2^31 - 1 more overflows.
    c.send(&frame(
        kind::WINDOW_UPDATE,
        0,
        0,
        &0x7fff_ffffu32.to_be_bytes(),
    ));
    assert_eq!(c.goaway().map(|g| g.1), Some(FLOW_CONTROL_ERROR));
    assert!(c.closed());
    others_unaffected(addr);
}

#[test]
fn stream_window_overflow_resets_only_the_stream() {
    let (_server, addr) = server();
    let mut c = RawH2::connect(addr);
    let block = request_block("GET", "/slow?ms=200", &[]);
    c.send(&frame(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        1,
        &block,
    ));
    c.send(&frame(
        kind::WINDOW_UPDATE,
        0,
        1,
        &0x7fff_ffffu32.to_be_bytes(),
    ));
    assert_eq!(c.response(1).reset, Some(FLOW_CONTROL_ERROR));
    c.get(3, "/hello");
    assert_eq!(c.response(3).status(), 200);
}

#[test]
fn huge_header_block_is_enhance_your_calm() {
    let (_server, addr) = server();
    let mut c = RawH2::connect(addr);
    // 17 KiB of header block in one HEADERS and CONTINUATIONs, never
    // decoded.
    let block = request_block("GET", "/hello", &[("x-big", &"v".repeat(17 << 10))]);
    let (first, rest) = block.split_at(16_000);
    c.send(&frame(kind::HEADERS, flag::END_STREAM, 1, first));
    c.send(&frame(kind::CONTINUATION, flag::END_HEADERS, 1, rest));
    assert_eq!(c.goaway().map(|g| g.1), Some(ENHANCE_YOUR_CALM));
    assert!(c.closed());
    others_unaffected(addr);
}

#[test]
fn hpack_bomb_is_431_and_the_connection_goes_on() {
    let (_server, addr) = server();
    let mut c = RawH2::connect(addr);
    // A 4,000-byte header put in the dynamic table, then referenced by
    // its index (one byte each) 1,000 times: a 4 MB header list from a
    // 5 KB block.
    let mut block = request_block("GET", "/hello", &[]);
    block.extend([0x40, 0x01, b'x', 0x7f, 0xa1, 0x1e]); // literal, name "x", value length 4000
    block.extend(std::iter::repeat_n(b'b', 4000));
    block.extend(std::iter::repeat_n(0xbe, 1000)); // dynamic index 62
    c.send(&frame(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        1,
        &block,
    ));
    assert_eq!(c.response(1).status(), 431);
    // The table stayed in step: the next request decodes.
    c.get(3, "/hello");
    let r = c.response(3);
    assert_eq!(r.status(), 200);
    assert_eq!(r.body, b"hello GET HTTP/2.0\n");
}

#[test]
fn rapid_reset_is_enhance_your_calm() {
    let (_server, addr) = server();
    let mut c = RawH2::connect(addr);
    let mut batch = Vec::new();
    for i in 0..300u32 {
        let id = 2 * i + 1;
        let block = request_block("GET", "/slow", &[]);
        batch.extend(frame(
            kind::HEADERS,
            flag::END_HEADERS | flag::END_STREAM,
            id,
            &block,
        ));
        batch.extend(frame(kind::RST_STREAM, 0, id, &8u32.to_be_bytes()));
    }
    c.send(&batch);
    assert_eq!(c.goaway().map(|g| g.1), Some(ENHANCE_YOUR_CALM));
    others_unaffected(addr);
}

#[test]
fn occasional_cancels_are_fine() {
    // Each answered stream pays back a reset: 400 cancels among 400
    // answered requests never reach the limit of 200.
    let (_server, addr) = server();
    let mut c = RawH2::connect(addr);
    for i in 0..400u32 {
        let id = 4 * i + 1;
        c.get(id, "/hello");
        assert_eq!(c.response(id).status(), 200);
        let block = request_block("GET", "/slow?ms=100", &[]);
        let mut f = frame(
            kind::HEADERS,
            flag::END_HEADERS | flag::END_STREAM,
            id + 2,
            &block,
        );
        f.extend(frame(kind::RST_STREAM, 0, id + 2, &8u32.to_be_bytes()));
        c.send(&f);
    }
    c.get(1601, "/hello");
    assert_eq!(c.response(1601).status(), 200);
}

#[test]
fn ping_flood_unread_is_enhance_your_calm() {
    let (_server, addr) = server_with(ServerOptions {
        h2: H2Options {
            max_pending_acks: 100,
            ..Default::default()
        },
        ..Default::default()
    });
    // A client that never reads: its receive buffer small, so the
    // server's acknowledgements back up soon.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&addr.into()).unwrap();
    let s: std::net::TcpStream = sock.into();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut c = RawH2::wrap(s);
    c.send(fibrpc::protocol::h2::frame::PREFACE);
    // 1,000,000 PINGs (17 MB), written at once: their acknowledgements
    // (17 MB) pass what the kernel buffers between the two sockets (a
    // few MB with Linux's default tcp_wmem), so they back up in the
    // server. The client then stops writing (the
    // server closes after its GOAWAY is read, with no input left
    // unread) and reads.
    let ping = frame(kind::PING, 0, 0, &[7; 8]);
    let flood: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 1_000_000)
        .collect();
    c.send(&flood);
    let mut acks = 0;
    let goaway = loop {
        match c.read_frame() {
            Some(f) if f.kind == GOAWAY => break Some(f.payload[7] as u32),
            Some(_) => acks += 1,
            None => break None,
        }
    };
    assert_eq!(
        goaway,
        Some(ENHANCE_YOUR_CALM),
        "after {acks} acknowledgements"
    );
    others_unaffected(addr);
}

#[test]
fn stream_id_reused_or_decreasing_is_protocol_error() {
    let (_server, addr) = server();
    let mut c = RawH2::connect(addr);
    c.get(5, "/hello");
    assert_eq!(c.response(5).status(), 200);
    c.get(3, "/hello");
    assert_eq!(c.goaway(), Some((5, PROTOCOL_ERROR)));
    assert!(c.closed());
    let mut c = RawH2::connect(addr);
    c.get(1, "/hello");
    assert_eq!(c.response(1).status(), 200);
    c.get(1, "/hello");
    assert_eq!(c.goaway(), Some((1, PROTOCOL_ERROR)));
}

#[test]
fn streams_past_max_concurrent_are_refused() {
    let (_server, addr) = server_with(ServerOptions {
        h2: H2Options {
            max_concurrent_streams: 2,
            ..Default::default()
        },
        ..Default::default()
    });
    let mut c = RawH2::connect(addr);
    for id in [1, 3, 5] {
        let block = request_block("GET", "/slow?ms=300", &[]);
        c.send(&frame(
            kind::HEADERS,
            flag::END_HEADERS | flag::END_STREAM,
            id,
            &block,
        ));
    }
    assert_eq!(c.response(5).reset, Some(REFUSED_STREAM));
    assert_eq!(c.response(1).status(), 200);
}

#[test]
fn body_over_max_body_size_is_413_for_that_stream() {
    let (_server, addr) = server_with(ServerOptions {
        max_body_size: 1000,
        ..Default::default()
    });
    let mut c = RawH2::connect(addr);
    let block = request_block("POST", "/hello", &[]);
    c.send(&frame(kind::HEADERS, flag::END_HEADERS, 1, &block));
    c.send(&frame(kind::DATA, 0, 1, &[1; 1001]));
    assert_eq!(c.response(1).status(), 413);
    // Its late frames are dropped quietly; the connection goes on.
    c.send(&frame(kind::DATA, flag::END_STREAM, 1, &[1; 10]));
    c.get(3, "/hello");
    assert_eq!(c.response(3).status(), 200);
}

#[test]
fn stop_sends_goaway_and_finishes_streams_in_flight() {
    let (mut server, addr) = server();
    let mut c = RawH2::connect(addr);
    let block = request_block("GET", "/slow?ms=500", &[]);
    c.send(&frame(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        1,
        &block,
    ));
    // Wait until the server has the stream.
    let deadline = Instant::now() + Duration::from_secs(10);
    while fibrpc_inflight(&addr) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let stopper = std::thread::spawn(move || {
        server.stop();
        server.join();
    });
    assert_eq!(c.goaway(), Some((1, 0)));
    // A stream opened after the GOAWAY is refused; the one in flight
    // is answered.
    c.get(3, "/hello");
    let r = c.response(1);
    assert_eq!(r.status(), 200);
    assert_eq!(r.body, b"slept\n");
    stopper.join().unwrap();
}

/// Requests in flight on the server at `addr`, from its console (over
/// HTTP/2).
fn fibrpc_inflight(addr: &SocketAddr) -> usize {
    let mut c = RawH2::connect(*addr);
    c.get(1, "/status");
    let r = c.response(1);
    let text = String::from_utf8_lossy(&r.body).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("in flight"))
        .and_then(|v| v.trim_start_matches([' ', ':']).trim().parse().ok())
        .map_or(0, |n: usize| n.saturating_sub(1))
}

#[test]
fn body_not_of_its_content_length_resets_the_stream() {
    let (_server, addr) = server();
    let mut c = RawH2::connect(addr);
    let block = request_block("POST", "/hello", &[("content-length", "5")]);
    c.send(&frame(kind::HEADERS, flag::END_HEADERS, 1, &block));
    c.send(&frame(kind::DATA, flag::END_STREAM, 1, b"abc"));
    assert_eq!(c.response(1).reset, Some(PROTOCOL_ERROR));
    let block = request_block("POST", "/hello", &[("content-length", "3")]);
    c.send(&frame(kind::HEADERS, flag::END_HEADERS, 3, &block));
    c.send(&frame(kind::DATA, flag::END_STREAM, 3, b"abc"));
    assert_eq!(c.response(3).status(), 200);
}
