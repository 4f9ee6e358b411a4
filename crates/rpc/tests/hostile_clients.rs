//! The hostile-client suite: each case starts a real server on loopback
//! and attacks it with raw sockets. While the attack runs, it checks
//! three things:
//!
//! - the process's resident memory (`VmRSS`, server and attacker share the
//!   process) grows by less than the bound the case states;
//! - an honest client on its own connection keeps getting answers within
//!   its timeout;
//! - the victim connection gets the right status (400, 413, 431) or a
//!   close.
//!
//! The cases run one at a time (memory is measured per process). Every
//! loop is bounded in count and time, and all traffic stays on loopback.
//! Decompression bombs are here too (one per compression type);
//! `decompression_bombs.rs` adds forged length headers and the client
//! side.

mod rpc_common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use fibrpc::http::{HttpContext, Request, StatusCode};
use fibrpc::{ChannelOptions, Controller, IOBuf, Server, ServerOptions};
use rpc_common::*;

/// One case at a time: memory is measured for the whole process.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn turn() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The limits every case's server runs with: short timeouts, so that a
/// case needs seconds, and a small unwritten-bytes budget.
fn options() -> ServerOptions {
    ServerOptions {
        read_message_timeout: Some(Duration::from_secs(1)),
        write_timeout: Some(Duration::from_secs(1)),
        max_unwritten_bytes: 8 << 20,
        ..ServerOptions::default()
    }
}

fn server(options: ServerOptions) -> Server {
    let mut s = Server::new(options);
    s.add_service(Echo::default()).unwrap();
    s.add_http_handler("/echo", |req: Request<IOBuf>, _: &HttpContext| {
        fibrpc::http::text(StatusCode::OK, req.into_body())
    })
    .unwrap();
    s.add_http_handler("/seq", |req: Request<IOBuf>, _: &HttpContext| {
        let q = req.uri().query().unwrap_or("").to_string();
        fibrpc::http::text(StatusCode::OK, q)
    })
    .unwrap();
    s.add_http_handler("/slow", |_: Request<IOBuf>, _: &HttpContext| {
        let _ = fibrpc::fiber::sleep(Duration::from_secs(2));
        fibrpc::http::text(StatusCode::OK, "slow")
    })
    .unwrap();
    s.add_http_handler("/big", |_: Request<IOBuf>, _: &HttpContext| {
        fibrpc::http::text(StatusCode::OK, vec![b'x'; 1 << 20])
    })
    .unwrap();
    s.start("127.0.0.1:0").unwrap();
    s
}

/// The process's resident set, in bytes.
fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kb: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb << 10
}

/// Runs `attack` against a fresh server with `opts`; meanwhile an honest
/// client calls every 50 ms and must always be answered, and the RSS may
/// grow by at most `rss_bound` bytes. Returns the server (for checks
/// after the attack).
fn under_attack(
    opts: ServerOptions,
    rss_bound: usize,
    attack: impl FnOnce(SocketAddr) + Send + 'static,
) -> Server {
    let server = server(opts);
    let addr = server.listen_addr().unwrap();
    let ch = fibrpc::Channel::new(
        addr,
        ChannelOptions {
            timeout: Some(Duration::from_secs(3)),
            max_retry: 0,
            ..ChannelOptions::default()
        },
    )
    .unwrap();
    // Warm up both the honest path and the allocator's arenas.
    echo(&ch, &mut Controller::new(), &req("warm")).unwrap();
    let base = rss();
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    let attacker = std::thread::spawn(move || {
        attack(addr);
        flag.store(true, Ordering::Release);
    });
    let (mut peak, mut calls) = (base, 0u32);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done.load(Ordering::Acquire) {
        assert!(Instant::now() < deadline, "the attack did not end");
        let r = echo(&ch, &mut Controller::new(), &req("honest"));
        assert!(r.is_ok(), "the honest client was not answered: {r:?}");
        calls += 1;
        peak = peak.max(rss());
        std::thread::sleep(Duration::from_millis(50));
    }
    if let Err(p) = attacker.join() {
        std::panic::resume_unwind(p);
    }
    peak = peak.max(rss());
    echo(&ch, &mut Controller::new(), &req("after")).unwrap();
    let grew = peak.saturating_sub(base);
    eprintln!(
        "honest calls answered: {calls}; RSS grew by {} KiB (bound {} KiB)",
        grew >> 10,
        rss_bound >> 10
    );
    assert!(
        grew < rss_bound,
        "RSS grew by {} KiB, over the bound of {} KiB",
        grew >> 10,
        rss_bound >> 10
    );
    server
}

fn connect(addr: SocketAddr) -> TcpStream {
    let c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    c
}

/// Everything the server sends until it closes the connection (a reset
/// counts as the close).
fn read_to_close(c: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return out,
            Err(e) => panic!("no close: {e} after {} bytes", out.len()),
        }
    }
}

/// Sends `bytes` one at a time, `gap` apart, until the server closes the
/// connection (a write fails or a read sees the close); returns how long
/// that took. Fails if it is still open after `limit`.
fn trickle_until_closed(
    c: &mut TcpStream,
    bytes: &[u8],
    gap: Duration,
    limit: Duration,
) -> Duration {
    let t = Instant::now();
    c.set_read_timeout(Some(gap)).unwrap();
    let mut buf = [0u8; 4096];
    for b in bytes.iter().cycle() {
        assert!(
            t.elapsed() < limit,
            "still open after {limit:?} of trickling"
        );
        if c.write_all(std::slice::from_ref(b)).is_err() {
            return t.elapsed();
        }
        match c.read(&mut buf) {
            Ok(0) => return t.elapsed(),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return t.elapsed(),
        }
    }
    unreachable!()
}

/// The status code of the first response in `bytes`.
fn first_status(bytes: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(bytes);
    assert!(text.starts_with("HTTP/1.1 "), "{text:?}");
    text[9..12].parse().unwrap()
}

/// A baidu_std frame header: magic, body size, meta size.
fn prpc_header(body: u32, meta: u32) -> Vec<u8> {
    let mut h = b"PRPC".to_vec();
    h.extend(body.to_be_bytes());
    h.extend(meta.to_be_bytes());
    h
}

#[test]
fn slowloris_http_head_is_closed() {
    let _t = turn();
    under_attack(options(), 32 << 20, |addr| {
        let mut c = connect(addr);
        let head = b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: ";
        let took = trickle_until_closed(
            &mut c,
            head,
            Duration::from_millis(100),
            Duration::from_secs(10),
        );
        eprintln!("slowloris closed after {took:?}");
    });
}

#[test]
fn partial_baidu_std_header_is_closed() {
    let _t = turn();
    under_attack(options(), 32 << 20, |addr| {
        let mut c = connect(addr);
        // "PRPC" then a body size, a byte every 100 ms.
        let took = trickle_until_closed(
            &mut c,
            &prpc_header(64 << 20, 16),
            Duration::from_millis(100),
            Duration::from_secs(10),
        );
        eprintln!("partial header closed after {took:?}");
    });
}

#[test]
fn thousands_of_connections_announcing_64_mib_bodies_are_closed() {
    let _t = turn();
    const CONNS: usize = 2000;
    let server = under_attack(options(), 256 << 20, |addr| {
        let mut conns = Vec::with_capacity(CONNS);
        let mut frame = prpc_header((64 << 20) - 1, 16);
        frame.extend(vec![0u8; 4096]);
        for _ in 0..CONNS {
            let mut c = connect(addr);
            c.write_all(&frame).unwrap();
            conns.push(c);
        }
        // Every one is closed by the message timeout.
        for c in &mut conns {
            let _ = read_to_close(c);
        }
    });
    assert!(wait_for_connections(&server, 1) <= 1);
}

#[test]
fn connections_over_max_connections_are_closed_at_once() {
    let _t = turn();
    let opts = ServerOptions {
        max_connections: 50,
        ..options()
    };
    let server = under_attack(opts, 64 << 20, |addr| {
        let mut conns = Vec::new();
        for _ in 0..200 {
            conns.push(connect(addr));
        }
        // The first 49 (the honest client holds one) stay open; later
        // ones see the close at once.
        let mut closed = 0;
        for c in conns.iter_mut().skip(60) {
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut b = [0u8; 1];
            if matches!(c.read(&mut b), Ok(0) | Err(_)) {
                closed += 1;
            }
        }
        assert_eq!(closed, 140, "connections beyond the cap are closed");
    });
    assert!(server.refused_connections() >= 140);
}

#[test]
fn ten_mib_of_chunked_trailers_get_431() {
    let _t = turn();
    under_attack(options(), 64 << 20, |addr| {
        let mut c = connect(addr);
        c.write_all(b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n")
            .unwrap();
        let line = b"a: b\r\n".repeat(1 << 10);
        for _ in 0..(10 << 20) / line.len() {
            if c.write_all(&line).is_err() {
                break;
            }
        }
        assert_eq!(first_status(&read_to_close(&mut c)), 431);
    });
}

/// The process's CPU time (user + system).
fn cpu_time() -> Duration {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let ru = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr());
        ru.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Sends a body of `n` one-byte chunks; returns the CPU time the whole
/// exchange took and checks the body came back whole.
fn one_byte_chunks(addr: SocketAddr, n: usize) -> Duration {
    let mut c = connect(addr);
    let mut wire =
        b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    wire.extend(b"1\r\na\r\n".repeat(n));
    wire.extend(b"0\r\n\r\n");
    let t = cpu_time();
    let mut reader = c.try_clone().unwrap();
    let got = std::thread::spawn(move || read_to_close(&mut reader));
    c.write_all(&wire).unwrap();
    let got = got.join().unwrap();
    let spent = cpu_time() - t;
    assert_eq!(first_status(&got), 200);
    assert!(got.ends_with(&[b'a'; 64]), "the body came back");
    spent
}

#[test]
fn one_byte_chunks_cost_linear_cpu() {
    let _t = turn();
    under_attack(options(), 128 << 20, |addr| {
        // Warm up, then compare 256 KiB with 1 MiB: linear work is 4x;
        // a rescan per read would be 16x.
        one_byte_chunks(addr, 64 << 10);
        let small = (0..3)
            .map(|_| one_byte_chunks(addr, 256 << 10))
            .min()
            .unwrap();
        let large = (0..3)
            .map(|_| one_byte_chunks(addr, 1 << 20))
            .min()
            .unwrap();
        let ratio = large.as_secs_f64() / small.as_secs_f64().max(1e-6);
        eprintln!("1-byte chunks: 256 KiB {small:?}, 1 MiB {large:?}, ratio {ratio:.1}");
        assert!(ratio < 10.0, "CPU grew {ratio:.1}x for 4x the body");
    });
}

#[test]
fn endless_chunk_extensions_get_400() {
    let _t = turn();
    under_attack(options(), 64 << 20, |addr| {
        let mut c = connect(addr);
        c.write_all(b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;")
            .unwrap();
        let ext = b"x=y;".repeat(1 << 10);
        for _ in 0..(10 << 20) / ext.len() {
            if c.write_all(&ext).is_err() {
                break;
            }
        }
        assert_eq!(first_status(&read_to_close(&mut c)), 400);
    });
}

#[test]
fn transfer_encoding_with_content_length_gets_400() {
    let _t = turn();
    under_attack(options(), 32 << 20, |addr| {
        let mut c = connect(addr);
        c.write_all(
            b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(first_status(&read_to_close(&mut c)), 400);
    });
}

/// Reads HTTP responses with a `Content-Length` from `c` until `n` were
/// read; returns their bodies.
fn read_responses(c: &mut TcpStream, n: usize) -> Vec<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    let mut out = Vec::with_capacity(n);
    let mut at = 0;
    while out.len() < n {
        let head_end = buf[at..].windows(4).position(|w| w == b"\r\n\r\n");
        if let Some(end) = head_end {
            let head = String::from_utf8_lossy(&buf[at..at + end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            let body_at = at + end + 4;
            if buf.len() >= body_at + len {
                out.push(buf[body_at..body_at + len].to_vec());
                at = body_at + len;
                if at > (1 << 20) {
                    buf.drain(..at);
                    at = 0;
                }
                continue;
            }
        }
        let k = c.read(&mut chunk).unwrap();
        assert!(k > 0, "closed after {} responses", out.len());
        buf.extend_from_slice(&chunk[..k]);
    }
    out
}

#[test]
fn a_hundred_thousand_pipelined_requests_behind_a_slow_one() {
    let _t = turn();
    const N: usize = 100_000;
    under_attack(options(), 128 << 20, |addr| {
        let mut c = connect(addr);
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut w = c.try_clone().unwrap();
        w.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
        let writer = std::thread::spawn(move || {
            w.write_all(b"GET /slow HTTP/1.1\r\n\r\n").unwrap();
            let mut batch = Vec::new();
            for i in 0..N {
                batch.extend(format!("GET /seq?{i} HTTP/1.1\r\n\r\n").as_bytes());
                if batch.len() > 64 << 10 {
                    w.write_all(&batch).unwrap();
                    batch.clear();
                }
            }
            w.write_all(&batch).unwrap();
        });
        let bodies = read_responses(&mut c, N + 1);
        writer.join().unwrap();
        assert_eq!(bodies[0], b"slow");
        for (i, b) in bodies[1..].iter().enumerate() {
            assert_eq!(b, i.to_string().as_bytes(), "responses in request order");
        }
    });
}

#[test]
fn twenty_thousand_slow_requests_on_one_connection() {
    use fibrpc::protocol::baidu_std::{self, ParseResult};
    let _t = turn();
    const N: usize = 20_000;
    // Each handler sleeps 200 ms in its own fiber: without a bound on a
    // connection's requests in process, all 20,000 fibers (and their
    // stacks) would be alive at once (150 MB more RSS measured without
    // the bound, 18 MB with it).
    under_attack(options(), 64 << 20, |addr| {
        let mut c = connect(addr);
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut w = c.try_clone().unwrap();
        w.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
        let writer = std::thread::spawn(move || {
            let mut slow = req("slow");
            slow.sleep_ms = Some(200);
            let mut batch = Vec::new();
            for i in 0..N {
                batch.extend(echo_frame(i as i64, &slow));
                if batch.len() > 64 << 10 {
                    w.write_all(&batch).unwrap();
                    batch.clear();
                }
            }
            w.write_all(&batch).unwrap();
        });
        let mut buf = IOBuf::new();
        let mut chunk = vec![0u8; 1 << 16];
        let mut seen = vec![false; N];
        let mut got = 0;
        while got < N {
            match baidu_std::parse(&mut buf, 1 << 20) {
                ParseResult::Complete(f) => {
                    let corr = f.meta.correlation_id() as usize;
                    assert!(!seen[corr], "one answer per request");
                    seen[corr] = true;
                    got += 1;
                }
                ParseResult::NotEnoughData => {
                    let k = c.read(&mut chunk).unwrap();
                    assert!(k > 0, "closed after {got} answers");
                    buf.append(&chunk[..k]);
                }
                other => panic!("bad frame: {other:?}"),
            }
        }
        writer.join().unwrap();
    });
}

/// A compressed echo request that expands to 40 MiB, past the 16 MiB
/// decompression bound (`decompression_bombs.rs` has the forged-header
/// variants and the client side).
fn bomb_frame(ty: fibrpc::protocol::baidu_std::compress::CompressType) -> Vec<u8> {
    use fibrpc::protocol::baidu_std::{self, compress, RpcMeta, RpcRequestMeta};
    let plain = fibrpc::codec::encode(&req(&"a".repeat(40 << 20)));
    let payload = compress::compress(ty.as_i32(), &plain).unwrap();
    let meta = RpcMeta {
        request: Some(RpcRequestMeta {
            service_name: SERVICE.into(),
            method_name: "Echo".into(),
            ..Default::default()
        }),
        correlation_id: Some(7),
        compress_type: Some(ty.as_i32()),
        ..Default::default()
    };
    let mut out = IOBuf::new();
    baidu_std::encode(&meta, &payload, &IOBuf::new(), &mut out).unwrap();
    out.to_vec()
}

#[test]
fn decompression_bombs_fail_alone() {
    use fibrpc::protocol::baidu_std::compress::CompressType;
    use fibrpc::protocol::baidu_std::{self, ParseResult};
    let _t = turn();
    for ty in [
        CompressType::Gzip,
        CompressType::Zlib,
        CompressType::Snappy,
        CompressType::Lz4,
    ] {
        let frame = bomb_frame(ty);
        // The bound is 16 MiB of output per request: twice that for the
        // attack, the allocator's slack included.
        under_attack(options(), 32 << 20, move |addr| {
            let mut c = connect(addr);
            c.write_all(&frame).unwrap();
            let mut buf = IOBuf::new();
            let mut chunk = vec![0u8; 1 << 16];
            let answer = loop {
                match baidu_std::parse(&mut buf, 1 << 20) {
                    ParseResult::Complete(f) => break f,
                    ParseResult::NotEnoughData => {
                        let k = c.read(&mut chunk).unwrap();
                        assert!(k > 0, "closed instead of answering");
                        buf.append(&chunk[..k]);
                    }
                    other => panic!("bad frame: {other:?}"),
                }
            };
            let code = answer.meta.response.and_then(|r| r.error_code);
            assert_eq!(code, Some(fibrpc::errno::EREQUEST), "{ty:?}");
        });
    }
}

#[test]
fn pipelined_responses_past_the_unwritten_budget_close_instead_of_mismatching() {
    let _t = turn();
    under_attack(options(), 128 << 20, |addr| {
        // A slow request, then 1 MiB answers that must wait for it: they
        // would pass the 8 MiB budget parked, so the connection closes.
        let mut c = connect(addr);
        let mut wire = b"GET /slow HTTP/1.1\r\n\r\n".to_vec();
        wire.extend(b"GET /big HTTP/1.1\r\n\r\n".repeat(32));
        c.write_all(&wire).unwrap();
        let got = read_to_close(&mut c);
        // Whatever came is answers in order: the slow one first, if any.
        if !got.is_empty() {
            let text = String::from_utf8_lossy(&got[..got.len().min(200)]).into_owned();
            assert!(
                text.ends_with("slow") || text.contains("\r\n\r\nslow"),
                "{text:?}"
            );
        }
        assert!(got.len() < 9 << 20, "no more than the budget was answered");
    });
}

#[test]
fn a_client_that_never_reads_is_closed() {
    let _t = turn();
    let server = under_attack(options(), 128 << 20, |addr| {
        let mut c = connect(addr);
        let wire = b"GET /big HTTP/1.1\r\n\r\n".repeat(64);
        c.write_all(&wire).unwrap();
        // Not reading: queued answers stop moving, and the write timeout
        // closes the connection (whatever is in the kernel's buffers
        // still arrives, then the close).
        std::thread::sleep(Duration::from_secs(3));
        let got = read_to_close(&mut c);
        assert!(got.len() < 64 << 20, "not every answer was sent");
    });
    assert!(wait_for_connections(&server, 1) <= 1);
}

#[test]
fn a_storm_of_connect_and_close() {
    let _t = turn();
    let server = under_attack(options(), 64 << 20, |addr| {
        let t = Instant::now();
        let mut n = 0;
        while n < 20_000 && t.elapsed() < Duration::from_secs(5) {
            match TcpStream::connect(addr) {
                Ok(c) => drop(c),
                Err(e) => panic!("connect #{n} failed: {e}"),
            }
            n += 1;
        }
        eprintln!("{n} connections opened and closed");
    });
    assert!(wait_for_connections(&server, 1) <= 1);
}
