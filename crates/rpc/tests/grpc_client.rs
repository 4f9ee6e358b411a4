//! fibrpc's gRPC client (`GrpcChannel`) against a real gRPC server —
//! Python grpcio (`tests/data/grpc/echo_server.py`, its stubs generated
//! at test time from the example's `echo.proto` with grpcio-tools) —,
//! against fibrpc's own gRPC server, and against hand-written servers
//! that misbehave.
//!
//! grpcio and grpcio-tools must be installed (`pip install grpcio
//! grpcio-tools`): a test that cannot run them fails.

mod grpcio_common;
mod h2_common;
mod tls_common;

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use fibrpc::protocol::h2::frame::{flag, kind, PREFACE};
use fibrpc::protocol::h2::hpack::encode_header;
use fibrpc::protocol::h2::H2Options;
use fibrpc::{errno, ChannelOptions, Controller, GrpcChannel, RpcError, Server, ServerOptions};
use fibrpc_example::{EchoRequest, EchoResponse, EchoServiceClient};
use grpcio_common::PyServer;
use h2_common::{frame, GenEcho, RawH2};

const SERVICE: &str = "example.EchoService";

/// The grpcio echo server.
struct Py;

impl Py {
    fn start(name: &str) -> PyServer {
        PyServer::start("echo_server.py", name, &[])
    }

    /// With `extra` arguments (a certificate and key: TLS).
    fn start_with(name: &str, extra: &[&Path]) -> PyServer {
        PyServer::start("echo_server.py", name, extra)
    }
}

fn options(timeout_ms: u64) -> ChannelOptions {
    ChannelOptions {
        timeout: Some(Duration::from_millis(timeout_ms)),
        ..Default::default()
    }
}

fn echo(ch: &GrpcChannel, cntl: &mut Controller, msg: &str) -> Result<String, RpcError> {
    let req = EchoRequest {
        message: msg.to_string(),
    };
    ch.call::<_, EchoResponse>(SERVICE, "Echo", cntl, &req)
        .map(|r| r.message)
}

#[test]
fn unary_calls_and_statuses_against_grpcio() {
    let py = Py::start("unary");
    let ch = GrpcChannel::new(py.addr, options(10_000)).unwrap();
    let mut cntl = Controller::new();
    assert_eq!(echo(&ch, &mut cntl, "hello").unwrap(), "hello");
    assert_eq!(echo(&ch, &mut cntl, "héllo wörld").unwrap(), "héllo wörld");
    assert_eq!(echo(&ch, &mut cntl, "").unwrap(), "");
    // A compressed response is inflated; a compressed request is taken.
    assert_eq!(echo(&ch, &mut cntl, "gzip:squeezed").unwrap(), "squeezed");
    let mut gz = Controller::new();
    gz.set_compress_type(fibrpc::CompressType::Gzip);
    let long = "compressible ".repeat(1000);
    assert_eq!(echo(&ch, &mut gz, &long).unwrap(), long);

    // Statuses become bRPC's codes (GrpcStatusToErrorCode), the details
    // kept in the text.
    let e = echo(&ch, &mut cntl, "fail:8:slow down").unwrap_err();
    assert_eq!(e.code, errno::ELIMIT, "{e}");
    assert!(e.text.contains("slow down"), "{e}");
    assert_eq!(cntl.error_code(), errno::ELIMIT);
    let e = echo(&ch, &mut cntl, "fail:5:no such thing").unwrap_err();
    assert_eq!(e.code, errno::EINTERNAL, "{e}");
    assert!(
        e.text.contains("NotFound") && e.text.contains("no such thing"),
        "{e}"
    );
    let e = echo(&ch, &mut cntl, "fail:3:bad%arg é").unwrap_err();
    assert_eq!(e.code, libc::EINVAL, "{e}");
    assert!(e.text.contains("bad%arg é"), "{e}");
    let e = echo(&ch, &mut cntl, "fail:16:who are you").unwrap_err();
    assert_eq!(e.code, errno::ERPCAUTH, "{e}");
    let e = ch
        .call_raw("example.EchoService", "NoSuchMethod", &mut cntl, "".into())
        .unwrap_err();
    assert_eq!(e.code, errno::ENOMETHOD, "{e}");
    // An answered error is not retried.
    assert_eq!(cntl.retried_count(), 0);
    // The connection carried every call.
    assert_eq!(echo(&ch, &mut cntl, "peak").unwrap(), "peak 1 peers 1");
}

#[test]
fn deadlines_are_sent_and_kept_against_grpcio() {
    let py = Py::start("deadline");
    let ch = GrpcChannel::new(py.addr, options(5_000)).unwrap();
    let mut cntl = Controller::new();
    // grpc-timeout carries what is left of the 5 s.
    let left: u64 = echo(&ch, &mut cntl, "deadline")
        .unwrap()
        .strip_prefix("deadline ")
        .unwrap()
        .parse()
        .unwrap();
    assert!(left > 3_000 && left <= 5_000, "{left}");
    // A call past its deadline fails with ERPCTIMEDOUT, not waiting for
    // the server (which gives up too: it got the deadline).
    let mut cntl = Controller::new();
    cntl.set_timeout(Duration::from_millis(300));
    let start = Instant::now();
    let e = echo(&ch, &mut cntl, "sleep:5000").unwrap_err();
    assert_eq!(e.code, errno::ERPCTIMEDOUT, "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    // The connection goes on.
    assert_eq!(echo(&ch, &mut Controller::new(), "after").unwrap(), "after");
}

#[test]
fn sixteen_mib_each_way_against_grpcio() {
    let py = Py::start("big");
    let ch = GrpcChannel::new(py.addr, options(60_000)).unwrap();
    let big = "x".repeat(16 << 20);
    let got = echo(&ch, &mut Controller::new(), &big).unwrap();
    assert_eq!(got.len(), big.len());
    assert!(got == big);
}

#[test]
fn a_thousand_concurrent_calls_on_one_connection_to_grpcio() {
    let py = Py::start("many");
    let ch = GrpcChannel::new(py.addr, options(60_000)).unwrap();
    const N: usize = 1000;
    let ok = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    let first_error = Arc::new(std::sync::Mutex::new(None));
    for i in 0..N {
        let (ok, tx, first_error) = (ok.clone(), tx.clone(), first_error.clone());
        let req = EchoRequest {
            message: format!("sleep:500 #{i}"),
        };
        ch.call_async::<_, EchoResponse>(SERVICE, "Echo", Controller::new(), &req, move |_, r| {
            match r {
                Ok(r) if r.message == format!("sleep:500 #{i}") => {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
                other => {
                    first_error
                        .lock()
                        .unwrap()
                        .get_or_insert(format!("{other:?}"));
                }
            }
            let _ = tx.send(());
        });
    }
    for _ in 0..N {
        rx.recv_timeout(Duration::from_secs(60)).unwrap();
    }
    assert_eq!(
        ok.load(Ordering::Relaxed),
        N,
        "{:?}",
        first_error.lock().unwrap()
    );
    let peak = echo(&ch, &mut Controller::new(), "peak").unwrap();
    let mut words = peak.split(' ');
    let most: usize = words.nth(1).unwrap().parse().unwrap();
    // One connection, the calls in flight together on it.
    assert_eq!(words.nth(1), Some("1"), "{peak}");
    assert!(most >= 200, "{peak}");
}

#[test]
fn generated_stubs_and_futures_run_over_grpc() {
    let py = Py::start("stub");
    let ch = GrpcChannel::new(py.addr, options(10_000)).unwrap();
    let client = EchoServiceClient::new(ch);
    let req = EchoRequest {
        message: "stub".into(),
    };
    assert_eq!(client.echo_simple(&req).unwrap().message, "stub");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (cntl, r) = rt.block_on(client.echo_future(Controller::new(), &req));
    assert_eq!(r.unwrap().message, "stub");
    assert!(!cntl.failed());
}

#[test]
fn over_tls_with_alpn_h2_against_grpcio() {
    let pki = tls_common::pki();
    let py = Py::start_with(
        "tls",
        &[&pki.dir.join("server.pem"), &pki.dir.join("server.key")],
    );
    let tls = fibrpc::tls::TlsClientConfig::from_ca_pem(pki.ca_pem.as_bytes()).unwrap();
    let ch = GrpcChannel::new(
        py.addr,
        ChannelOptions {
            tls: Some(tls),
            ..options(10_000)
        },
    )
    .unwrap();
    assert_eq!(
        echo(&ch, &mut Controller::new(), "over tls").unwrap(),
        "over tls"
    );
}

fn fibrpc_server(h2: H2Options) -> (Server, SocketAddr) {
    let mut server = Server::new(ServerOptions {
        h2,
        ..Default::default()
    });
    server
        .add_service(fibrpc_example::EchoServiceServer::new(GenEcho))
        .unwrap();
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();
    (server, addr)
}

#[test]
fn fibrpc_client_to_fibrpc_server() {
    let (_server, addr) = fibrpc_server(H2Options::default());
    let ch = GrpcChannel::new(addr, options(5_000)).unwrap();
    let mut cntl = Controller::new();
    assert_eq!(echo(&ch, &mut cntl, "hi").unwrap(), "hi");
    // The server's own codes come back exactly ([E<code>] agrees with
    // the status).
    for code in [
        errno::ELIMIT,
        errno::EINTERNAL,
        errno::ERPCTIMEDOUT,
        errno::EREQUEST,
    ] {
        let e = echo(&ch, &mut cntl, &format!("fail:{code}")).unwrap_err();
        assert_eq!((e.code, e.text.as_str()), (code, "asked to fail"));
    }
    // The handler's deadline is the call's.
    let got = echo(&ch, &mut cntl, "deadline").unwrap();
    let ms: u64 = got.strip_prefix("deadline ").unwrap().parse().unwrap();
    assert!(ms > 3_000 && ms <= 5_000, "{got}");
    let client = EchoServiceClient::new(ch);
    let req = EchoRequest {
        message: "generated".into(),
    };
    assert_eq!(client.echo_simple(&req).unwrap().message, "generated");
}

#[test]
fn calls_past_the_servers_stream_limit_wait_for_a_stream() {
    // The server allows 4 streams at once; 40 calls of 50 ms at once
    // all pass, none refused, with no retry to hide a refusal.
    let (_server, addr) = fibrpc_server(H2Options {
        max_concurrent_streams: 4,
        ..Default::default()
    });
    let ch = GrpcChannel::new(
        addr,
        ChannelOptions {
            max_retry: 0,
            ..options(20_000)
        },
    )
    .unwrap();
    let (tx, rx) = mpsc::channel();
    for i in 0..40 {
        let tx = tx.clone();
        let req = EchoRequest {
            message: "sleep:50".into(),
        };
        ch.call_async::<_, EchoResponse>(SERVICE, "Echo", Controller::new(), &req, move |c, r| {
            let _ = tx.send((i, r.map(|r| r.message), c.retried_count()));
        });
    }
    for _ in 0..40 {
        let (i, r, retried) = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(r.as_deref(), Ok("sleep:50"), "call {i}");
        assert_eq!(retried, 0);
    }
}

/// A hand-written HTTP/2 server: each connection gets the server's
/// SETTINGS, then `serve` with the connection and the stream id of
/// each request once the request has ended (its END_STREAM).
fn fake_server(serve: impl Fn(&mut RawH2, u32, usize) + Send + Sync + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = Arc::new(serve);
    std::thread::spawn(move || {
        for (n, s) in listener.incoming().take(16).enumerate() {
            let Ok(mut s) = s else { return };
            let serve = serve.clone();
            std::thread::spawn(move || {
                let mut preface = [0u8; 24];
                if s.read_exact(&mut preface).is_err() || preface[..] != PREFACE[..] {
                    return;
                }
                let mut c = RawH2::wrap(s);
                c.send(&frame(kind::SETTINGS, 0, 0, &[]));
                while let Some(f) = c.read_frame() {
                    let ends = f.flags & flag::END_STREAM != 0;
                    if ends && (f.kind == kind::DATA || f.kind == kind::HEADERS) {
                        serve(&mut c, f.stream, n);
                    }
                }
            });
        }
    });
    addr
}

/// A gRPC response's frames: HEADERS, the message, trailers.
fn grpc_ok(stream: u32, message: &str) -> Vec<u8> {
    let mut h = Vec::new();
    encode_header(b":status", b"200", &mut h);
    encode_header(b"content-type", b"application/grpc", &mut h);
    let mut out = frame(kind::HEADERS, flag::END_HEADERS, stream, &h);
    let pb = fibrpc::codec::encode(&EchoResponse {
        message: message.into(),
    })
    .to_vec();
    let mut body = vec![0];
    body.extend_from_slice(&(pb.len() as u32).to_be_bytes());
    body.extend_from_slice(&pb);
    out.extend(frame(kind::DATA, 0, stream, &body));
    let mut t = Vec::new();
    encode_header(b"grpc-status", b"0", &mut t);
    out.extend(frame(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        stream,
        &t,
    ));
    out
}

/// A call to a misbehaving server: its error, which must come well
/// before the call's 10 s timeout.
fn failing_call(ch: &GrpcChannel) -> RpcError {
    let start = Instant::now();
    let e = echo(ch, &mut Controller::new(), "x").unwrap_err();
    assert_ne!(e.code, errno::ERPCTIMEDOUT, "{e}");
    assert!(start.elapsed() < Duration::from_secs(5), "{e}");
    e
}

#[test]
fn a_frame_over_max_frame_size_fails_the_connections_calls() {
    let addr = fake_server(|c, stream, _| {
        c.send(&frame(kind::DATA, 0, stream, &[0u8; 20_000]));
    });
    let ch = GrpcChannel::new(addr, options(10_000)).unwrap();
    let e = failing_call(&ch);
    assert_eq!(e.code, errno::EFAILEDSOCKET, "{e}");
    assert!(e.text.contains("over the SETTINGS_MAX_FRAME_SIZE"), "{e}");
}

#[test]
fn a_server_that_is_not_http2_fails_the_call() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            use std::io::Write;
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
            std::thread::sleep(Duration::from_secs(8));
        }
    });
    // One attempt: a retry would wait on a second connection this fake
    // server never answers.
    let ch = GrpcChannel::new(
        addr,
        ChannelOptions {
            max_retry: 0,
            ..options(10_000)
        },
    )
    .unwrap();
    let e = failing_call(&ch);
    assert!(e.text.contains("first frame is not SETTINGS"), "{e}");
}

#[test]
fn an_hpack_bomb_fails_only_its_call() {
    // The first response's headers: a 4000-byte header added to the
    // dynamic table, then referenced 100 times (400 KB from 4 KB).
    let addr = fake_server(|c, stream, _| {
        if stream == 1 {
            let mut h = Vec::new();
            encode_header(b":status", b"200", &mut h);
            h.push(0x40); // literal with incremental indexing, new name
            h.push(6);
            h.extend_from_slice(b"x-bomb");
            h.extend_from_slice(&[0x7f, 0xa1, 0x1e]); // length 4000
            h.extend_from_slice(&[b'b'; 4000]);
            h.extend(std::iter::repeat_n(0xbe, 100)); // index 62
            c.send(&frame(
                kind::HEADERS,
                flag::END_HEADERS | flag::END_STREAM,
                stream,
                &h,
            ));
        } else {
            c.send(&grpc_ok(stream, "fine"));
        }
    });
    let ch = GrpcChannel::new(addr, options(10_000)).unwrap();
    let e = failing_call(&ch);
    assert!(e.text.contains("over max_header_list_size"), "{e}");
    // The connection goes on (the decoder kept its table in step).
    assert_eq!(echo(&ch, &mut Controller::new(), "y").unwrap(), "fine");
}

#[test]
fn calls_past_a_goaway_are_retried_on_a_new_connection() {
    // The first connection answers its first request with GOAWAY (last
    // stream 0: nothing processed); the second answers.
    let addr = fake_server(|c, stream, conn| {
        if conn == 0 {
            c.send(&frame(kind::GOAWAY, 0, 0, &[0, 0, 0, 0, 0, 0, 0, 0]));
        } else {
            c.send(&grpc_ok(stream, "second"));
        }
    });
    let ch = GrpcChannel::new(addr, options(10_000)).unwrap();
    let mut cntl = Controller::new();
    // Not idempotent, yet sent again: the server said it did not run it.
    assert_eq!(echo(&ch, &mut cntl, "x").unwrap(), "second");
    assert_eq!(cntl.retried_count(), 1);
    let e = &cntl.attempt_errors()[0];
    assert_eq!(e.code, errno::ELOGOFF, "{e}");
    assert!(e.text.contains("GOAWAY"), "{e}");
}

#[test]
fn a_reset_stream_fails_its_call_only() {
    let addr = fake_server(|c, stream, _| {
        if stream == 1 {
            c.send(&frame(kind::RST_STREAM, 0, stream, &[0, 0, 0, 2]));
        } else {
            c.send(&grpc_ok(stream, "fine"));
        }
    });
    let ch = GrpcChannel::new(addr, options(10_000)).unwrap();
    let e = failing_call(&ch);
    assert_eq!(e.code, errno::EINTERNAL, "{e}");
    assert!(e.text.contains("INTERNAL_ERROR"), "{e}");
    assert_eq!(echo(&ch, &mut Controller::new(), "y").unwrap(), "fine");
}

#[test]
fn a_call_that_times_out_resets_its_stream_and_frees_it() {
    // The server allows one stream and never answers stream 1: the call
    // times out, its stream is reset (CANCEL), and the next call gets
    // the stream it frees.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (resets, seen) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        let mut preface = [0u8; 24];
        s.read_exact(&mut preface).unwrap();
        let mut c = RawH2::wrap(s);
        // SETTINGS_MAX_CONCURRENT_STREAMS = 1.
        c.send(&frame(kind::SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 1]));
        while let Some(f) = c.read_frame() {
            if f.kind == kind::RST_STREAM {
                let _ = resets.send((f.stream, f.payload));
            } else if f.flags & flag::END_STREAM != 0 && f.stream > 1 {
                c.send(&grpc_ok(f.stream, "answered"));
            }
        }
    });
    let ch = GrpcChannel::new(addr, options(300)).unwrap();
    let e = echo(&ch, &mut Controller::new(), "x").unwrap_err();
    assert_eq!(e.code, errno::ERPCTIMEDOUT, "{e}");
    let (stream, code) = seen.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!((stream, code), (1, vec![0, 0, 0, 8]));
    assert_eq!(echo(&ch, &mut Controller::new(), "y").unwrap(), "answered");
}
