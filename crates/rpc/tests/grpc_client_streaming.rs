//! fibrpc's gRPC client's streaming calls (server streaming, client
//! streaming, bidirectional) against a real gRPC server — Python grpcio
//! (`tests/data/grpc/stream_server.py`, its stubs generated at test time
//! from the example's `stream_echo.proto` with grpcio-tools) —, through
//! the generated stub's streaming methods over a `GrpcChannel`, and
//! against hand-written servers that reset or go away mid-stream.
//!
//! grpcio and grpcio-tools must be installed (`pip install grpcio
//! grpcio-tools`): a test that cannot run them fails.

mod grpcio_common;
mod h2_common;

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use fibrpc::protocol::grpc::{error_code_of, GrpcStatus};
use fibrpc::protocol::h2::frame::{flag, kind, PREFACE};
use fibrpc::protocol::h2::hpack::encode_header;
use fibrpc::{errno, ChannelOptions, Controller, GrpcChannel, RpcError, StreamingChannel};
use fibrpc_example::{StreamEchoServiceClient, StreamRequest, StreamResponse};
use grpcio_common::PyServer;
use h2_common::{frame, RawH2};

const SERVICE: &str = "example.StreamEchoService";
const MIB: usize = 1 << 20;

/// The grpcio streaming server.
struct Py(PyServer);

impl Py {
    fn start(name: &str) -> Py {
        Py(PyServer::start("stream_server.py", name, &[]))
    }

    fn client(&self, timeout_ms: u64) -> StreamEchoServiceClient<GrpcChannel> {
        let options = ChannelOptions {
            timeout: Some(Duration::from_millis(timeout_ms)),
            ..Default::default()
        };
        StreamEchoServiceClient::new(GrpcChannel::new(self.0.addr, options).unwrap())
    }

    /// The streaming calls the server saw cancelled so far, once it saw
    /// at least `n` (waits up to 10 s for them).
    fn cancelled_at_least(&self, n: u32) -> u32 {
        let client = self.client(5_000);
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let r = client
                .echo(&mut Controller::new(), &req("stats", 0, 0))
                .unwrap();
            let seen: u32 = r
                .message
                .strip_prefix("cancelled ")
                .unwrap()
                .parse()
                .unwrap();
            if seen >= n || Instant::now() >= until {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn req(message: &str, count: u32, size: u32) -> StreamRequest {
    StreamRequest {
        message: message.to_string(),
        count,
        size,
    }
}

#[test]
fn server_streaming_against_grpcio() {
    let py = Py::start("server");
    let client = py.client(20_000);
    let mut cntl = Controller::new();
    let got: Vec<(u32, String)> = client
        .expand(&mut cntl, &req("item", 5, 3))
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            assert_eq!(r.padding, b"ppp");
            (r.index, r.message)
        })
        .collect();
    assert_eq!(
        got,
        (0..5).map(|i| (i, "item".to_string())).collect::<Vec<_>>()
    );
    assert_eq!(cntl.remote_side(), Some(py.0.addr));
    // Messages, then the status in the trailers: NOT_FOUND comes back as
    // bRPC's code for it, with the server's text.
    let stream = client
        .expand(&mut Controller::new(), &req("fail:5:gone away", 2, 0))
        .unwrap();
    assert_eq!(stream.recv().unwrap().unwrap().index, 0);
    assert_eq!(stream.recv().unwrap().unwrap().index, 1);
    let e = stream.recv().unwrap_err();
    assert_eq!(e.code, error_code_of(GrpcStatus::NotFound), "{e}");
    assert!(e.text.contains("gone away"), "{e}");
    // A status with no message before it (trailers-only).
    let stream = client
        .expand(&mut Controller::new(), &req("fail:7:nope", 0, 0))
        .unwrap();
    let e = stream.recv().unwrap_err();
    assert_eq!(e.code, error_code_of(GrpcStatus::PermissionDenied), "{e}");
}

#[test]
fn client_streaming_against_grpcio() {
    let py = Py::start("client");
    let client = py.client(20_000);
    let call = client.collect(&mut Controller::new()).unwrap();
    for m in ["a", "bb", "ccc"] {
        call.send(&req(m, 0, 4)).unwrap();
    }
    let r = call.finish().unwrap();
    assert_eq!(r.message, "n 3 bytes 6");
    assert_eq!(r.padding, b"pppp");
    // No request at all.
    let r = client
        .collect(&mut Controller::new())
        .unwrap()
        .finish()
        .unwrap();
    assert_eq!(r.message, "n 0 bytes 0");
}

#[test]
fn bidirectional_against_grpcio() {
    let py = Py::start("bidi");
    let client = py.client(20_000);
    let call = client.chat(&mut Controller::new()).unwrap();
    for i in 0..10u32 {
        call.send(&req(&format!("m{i}"), 0, i)).unwrap();
        let r = call.recv().unwrap().unwrap();
        assert_eq!((r.index, r.message.as_str()), (i, format!("m{i}").as_str()));
        assert_eq!(r.padding.len(), i as usize);
    }
    call.close_send().unwrap();
    assert!(call.recv().unwrap().is_none());
    // After the end: still the end.
    assert!(call.recv().unwrap().is_none());
    // The server's status ends a bidirectional call too, and a send after
    // it fails.
    let call = client.chat(&mut Controller::new()).unwrap();
    call.send(&req("fail:8:too much", 0, 0)).unwrap();
    let e = call.recv().unwrap_err();
    assert_eq!(e.code, errno::ELIMIT, "{e}");
    assert!(call.send(&req("late", 0, 0)).is_err());
}

#[test]
fn sixteen_mib_each_way_against_grpcio() {
    let py = Py::start("big");
    let client = py.client(60_000);
    let big = "x".repeat(16 * MIB);
    // Client streaming: 16 MiB up, 16 MiB back.
    let call = client.collect(&mut Controller::new()).unwrap();
    call.send(&req(&big, 0, 16 * MIB as u32)).unwrap();
    let r = call.finish().unwrap();
    assert_eq!(r.message, format!("n 1 bytes {}", 16 * MIB));
    assert_eq!(r.padding.len(), 16 * MIB);
    // Bidirectional: twice each way on one stream.
    let call = client.chat(&mut Controller::new()).unwrap();
    for i in 0..2 {
        call.send(&req(&big, 0, 16 * MIB as u32)).unwrap();
        let r = call.recv().unwrap().unwrap();
        assert_eq!(
            (r.index, r.message.len(), r.padding.len()),
            (i, 16 * MIB, 16 * MIB)
        );
    }
    call.close_send().unwrap();
    assert!(call.recv().unwrap().is_none());
}

#[test]
fn a_hundred_thousand_messages_on_one_bidirectional_stream_in_order() {
    const N: u32 = 100_000;
    let py = Py::start("many");
    let client = py.client(300_000);
    let (tx, rx) = client.chat(&mut Controller::new()).unwrap().split();
    // The sender on a plain thread, the receiver here.
    let sender = std::thread::spawn(move || {
        for i in 0..N {
            tx.send(&req(&i.to_string(), 0, 0)).unwrap();
        }
        tx.close_send().unwrap();
    });
    let mut n = 0u32;
    while let Some(r) = rx.recv().unwrap() {
        assert_eq!(r.index, n);
        assert_eq!(r.message, n.to_string());
        n += 1;
    }
    sender.join().unwrap();
    assert_eq!(n, N);
}

#[test]
fn cancel_and_drop_reset_the_stream() {
    let py = Py::start("cancel");
    let client = py.client(30_000);
    let call = client.chat(&mut Controller::new()).unwrap();
    call.send(&req("first", 0, 0)).unwrap();
    assert_eq!(call.recv().unwrap().unwrap().message, "first");
    call.send(&req("hang", 0, 0)).unwrap();
    call.cancel();
    let e = call.recv().unwrap_err();
    assert_eq!(e.code, libc::ECANCELED, "{e}");
    assert!(call.send(&req("more", 0, 0)).is_err());
    assert_eq!(py.cancelled_at_least(1), 1);
    // Dropped while the server still streams.
    let stream = client
        .expand(&mut Controller::new(), &req("hang", 1, 0))
        .unwrap();
    assert_eq!(stream.recv().unwrap().unwrap().message, "hang");
    drop(stream);
    assert_eq!(py.cancelled_at_least(2), 2);
    // The connection goes on.
    let r = client
        .echo(&mut Controller::new(), &req("still", 0, 0))
        .unwrap();
    assert_eq!(r.message, "still");
}

#[test]
fn a_stream_dropped_while_its_server_waits_for_the_window_is_reset() {
    let py = Py::start("window");
    let client = py.client(30_000);
    // 768 KiB messages: the stream's 1 MiB receive window holds one, so
    // when the caller drops the stream after the first, the server is in
    // grpcio's send of a later one (its handler suspended at a `yield`),
    // not in the handler's own code.
    let stream = client
        .expand(&mut Controller::new(), &req("hang", 50, 768 << 10))
        .unwrap();
    assert_eq!(stream.recv().unwrap().unwrap().message, "hang");
    drop(stream);
    assert_eq!(py.cancelled_at_least(1), 1);
    let r = client
        .echo(&mut Controller::new(), &req("still", 0, 0))
        .unwrap();
    assert_eq!(r.message, "still");
}

#[test]
fn deadlines_are_sent_and_kept() {
    let py = Py::start("deadline");
    let client = py.client(2_000);
    let mut cntl = Controller::new();
    cntl.set_timeout(Duration::from_millis(1_500));
    let r = client
        .expand(&mut cntl, &req("deadline", 0, 0))
        .unwrap()
        .recv()
        .unwrap()
        .unwrap();
    let left: u64 = r
        .message
        .strip_prefix("deadline ")
        .unwrap()
        .parse()
        .unwrap();
    assert!(left > 0 && left <= 1_500, "{left}");
    // A stream the server never answers fails at the deadline and is
    // reset, whoever waits.
    let mut cntl = Controller::new();
    cntl.set_timeout(Duration::from_millis(300));
    let call = client.chat(&mut cntl).unwrap();
    call.send(&req("hang", 0, 0)).unwrap();
    let e = call.recv().unwrap_err();
    assert_eq!(e.code, errno::ERPCTIMEDOUT, "{e}");
    let mut cntl = Controller::new();
    cntl.set_timeout(Duration::from_millis(300));
    let idle = client.chat(&mut cntl).unwrap();
    idle.send(&req("hang", 0, 0)).unwrap();
    // Nobody waits on this one: the timer resets it.
    assert_eq!(py.cancelled_at_least(2), 2);
    assert_eq!(idle.recv().unwrap_err().code, errno::ERPCTIMEDOUT);
}

#[test]
fn the_async_receiver_runs_on_tokio() {
    let py = Py::start("async");
    let client = py.client(20_000);
    let stream = client
        .expand(&mut Controller::new(), &req("a", 4, 0))
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let got = rt.block_on(async move {
        let mut got = Vec::new();
        while let Some(r) = stream.recv_async().await.unwrap() {
            got.push(r.index);
        }
        got
    });
    assert_eq!(got, vec![0, 1, 2, 3]);
}

/// A hand-written HTTP/2 server: each connection gets the server's
/// SETTINGS, then `serve` with the stream id of its first request (at
/// its HEADERS). `serve` returns whether to keep reading (else the
/// connection closes).
fn fake_server(serve: impl Fn(&mut RawH2, u32) -> bool + Send + Sync + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = std::sync::Arc::new(serve);
    std::thread::spawn(move || {
        for s in listener.incoming().take(8) {
            let Ok(mut s) = s else { return };
            let serve = serve.clone();
            std::thread::spawn(move || {
                let mut preface = [0u8; 24];
                if s.read_exact(&mut preface).is_err() || preface[..] != PREFACE[..] {
                    return;
                }
                let mut c = RawH2::wrap(s);
                c.send(&frame(kind::SETTINGS, 0, 0, &[]));
                let mut served = false;
                while let Some(f) = c.read_frame() {
                    if f.kind == kind::HEADERS && !served {
                        served = true;
                        if !serve(&mut c, f.stream) {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

/// Response HEADERS and one message of `text` on `stream`.
fn headers_and_message(stream: u32, text: &str) -> Vec<u8> {
    let mut b = Vec::new();
    encode_header(b":status", b"200", &mut b);
    encode_header(b"content-type", b"application/grpc", &mut b);
    let mut out = frame(kind::HEADERS, flag::END_HEADERS, stream, &b);
    let msg = prost::Message::encode_to_vec(&StreamResponse {
        message: text.to_string(),
        index: 0,
        padding: Vec::new(),
    });
    let mut data = vec![0u8];
    data.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    data.extend_from_slice(&msg);
    out.extend(frame(kind::DATA, 0, stream, &data));
    out
}

#[test]
fn a_reset_or_goaway_mid_stream_fails_it() {
    // RST_STREAM after one message.
    let addr = fake_server(|h2, id| {
        h2.send(&headers_and_message(id, "one"));
        h2.send(&frame(kind::RST_STREAM, 0, id, &2u32.to_be_bytes()));
        true
    });
    let ch = GrpcChannel::new(addr, ChannelOptions::default()).unwrap();
    let mut cntl = Controller::new();
    cntl.set_timeout(Duration::from_secs(10));
    let s = ch
        .bidi_streaming::<StreamRequest, StreamResponse>(SERVICE, "Chat", &mut cntl)
        .unwrap();
    assert_eq!(s.recv().unwrap().unwrap().message, "one");
    let e = s.recv().unwrap_err();
    assert_eq!(e.code, errno::EINTERNAL, "{e}");
    assert!(e.text.contains("INTERNAL_ERROR"), "{e}");
    // GOAWAY (last stream 0: not processed) mid-stream.
    let addr = fake_server(|h2, _| {
        let mut p = 0u32.to_be_bytes().to_vec();
        p.extend_from_slice(&0u32.to_be_bytes());
        h2.send(&frame(kind::GOAWAY, 0, 0, &p));
        true
    });
    let ch = GrpcChannel::new(addr, ChannelOptions::default()).unwrap();
    let mut cntl = Controller::new();
    cntl.set_timeout(Duration::from_secs(10));
    let s = ch
        .bidi_streaming::<StreamRequest, StreamResponse>(SERVICE, "Chat", &mut cntl)
        .unwrap();
    let e = s.recv().unwrap_err();
    assert_eq!(e.code, errno::ELOGOFF, "{e}");
    // The connection breaks mid-stream.
    let addr = fake_server(|h2, id| {
        h2.send(&headers_and_message(id, "one"));
        false
    });
    let ch = GrpcChannel::new(addr, ChannelOptions::default()).unwrap();
    let mut cntl = Controller::new();
    cntl.set_timeout(Duration::from_secs(10));
    let s = ch
        .bidi_streaming::<StreamRequest, StreamResponse>(SERVICE, "Chat", &mut cntl)
        .unwrap();
    assert_eq!(s.recv().unwrap().unwrap().message, "one");
    let e: RpcError = s.recv().unwrap_err();
    assert_eq!(e.code, errno::EFAILEDSOCKET, "{e}");
}

/// fibrpc's streaming echo: `Chat` fails with the code a request
/// `fail:CODE` names.
struct FibrpcStreamEcho;

impl fibrpc_example::StreamEchoService for FibrpcStreamEcho {
    fn echo(&self, _: &mut Controller, r: StreamRequest) -> Result<StreamResponse, RpcError> {
        Ok(StreamResponse {
            message: r.message,
            ..Default::default()
        })
    }

    fn expand(
        &self,
        _: &mut Controller,
        r: StreamRequest,
        out: fibrpc::protocol::grpc::ServerStreamWriter<StreamResponse>,
    ) -> Result<(), RpcError> {
        for index in 0..r.count {
            out.send(&StreamResponse {
                message: r.message.clone(),
                index,
                padding: vec![b'p'; r.size as usize],
            })?;
        }
        Ok(())
    }

    fn collect(
        &self,
        _: &mut Controller,
        requests: fibrpc::protocol::grpc::ClientStreamReader<StreamRequest>,
    ) -> Result<StreamResponse, RpcError> {
        let (mut n, mut bytes) = (0, 0);
        for r in requests {
            n += 1;
            bytes += r?.message.len();
        }
        Ok(StreamResponse {
            message: format!("n {n} bytes {bytes}"),
            ..Default::default()
        })
    }

    fn chat(
        &self,
        _: &mut Controller,
        stream: fibrpc::protocol::grpc::BidiStream<StreamRequest, StreamResponse>,
    ) -> Result<(), RpcError> {
        let mut index = 0;
        while let Some(r) = stream.recv()? {
            if let Some(code) = r.message.strip_prefix("fail:") {
                return Err(RpcError::new(code.parse().unwrap(), "asked to fail"));
            }
            stream.send(&StreamResponse {
                message: r.message,
                index,
                padding: vec![b'p'; r.size as usize],
            })?;
            index += 1;
        }
        Ok(())
    }
}

#[test]
fn fibrpc_client_streams_with_a_fibrpc_server() {
    let mut server = fibrpc::Server::new(fibrpc::ServerOptions::default());
    server
        .add_service(fibrpc_example::StreamEchoServiceServer::new(
            FibrpcStreamEcho,
        ))
        .unwrap();
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();
    let options = ChannelOptions {
        timeout: Some(Duration::from_secs(30)),
        ..Default::default()
    };
    let client = StreamEchoServiceClient::new(GrpcChannel::new(addr, options).unwrap());
    // Run from a fiber as well as from this thread.
    let c2 = client.clone();
    let fiber = fibrpc_fiber::Builder::new()
        .spawn(move || {
            let call = c2.chat(&mut Controller::new()).unwrap();
            for i in 0..1_000u32 {
                call.send(&req(&i.to_string(), 0, 0)).unwrap();
                assert_eq!(call.recv().unwrap().unwrap().index, i);
            }
            call.close_send().unwrap();
            call.recv().unwrap().is_none()
        })
        .unwrap();
    let got: Vec<u32> = client
        .expand(&mut Controller::new(), &req("e", 3, 70_000))
        .unwrap()
        .map(|r| r.unwrap().index)
        .collect();
    assert_eq!(got, vec![0, 1, 2]);
    let call = client.collect(&mut Controller::new()).unwrap();
    call.send(&req("abc", 0, 0)).unwrap();
    assert_eq!(call.finish().unwrap().message, "n 1 bytes 3");
    // The server's own code comes back exactly.
    let call = client.chat(&mut Controller::new()).unwrap();
    call.send(&req(&format!("fail:{}", errno::ELIMIT), 0, 0))
        .unwrap();
    let e = call.recv().unwrap_err();
    assert_eq!((e.code, e.text.as_str()), (errno::ELIMIT, "asked to fail"));
    assert!(fiber.join().unwrap());
}
