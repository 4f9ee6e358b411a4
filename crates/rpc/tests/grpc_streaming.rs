//! gRPC streaming calls on fibrpc's server — server, client and
//! bidirectional streaming — called by a real gRPC client: Python grpcio
//! (`tests/data/grpc/stream_client.py`), its stubs generated at test
//! time from the example's `stream_echo.proto` with grpcio-tools. The
//! service is the one `fibrpc-build` generates for that file.
//!
//! grpcio and grpcio-tools must be installed (`pip install grpcio
//! grpcio-tools`): a test that cannot run them fails.

mod h2_common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fibrpc::protocol::grpc::{BidiStream, ClientStreamReader, ServerStreamWriter};
use fibrpc::protocol::h2::frame::{flag, kind};
use fibrpc::{Controller, RpcError, Server, ServerOptions};
use fibrpc_example::{StreamEchoService, StreamEchoServiceServer, StreamRequest, StreamResponse};
use h2_common::*;

/// What the handlers saw, for the tests to check.
#[derive(Default)]
struct Seen {
    /// Responses the `slow` server-streaming call sent so far.
    slow_sent: AtomicUsize,
    /// How calls ended on the server: "METHOD TAG CODE".
    ends: Mutex<Vec<String>>,
}

impl Seen {
    fn ended(&self, what: String) {
        self.ends.lock().unwrap().push(what);
    }

    /// Waits (at most 10 s) until the server recorded `what`.
    fn wait_for(&self, what: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.ends.lock().unwrap().iter().any(|e| e == what) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

/// The streaming echo service with test knobs in the messages (see
/// each method).
struct StreamEcho(Arc<Seen>);

fn response(message: String, index: u32, size: u32) -> StreamResponse {
    StreamResponse {
        message,
        index,
        padding: vec![7; size as usize],
    }
}

impl StreamEchoService for StreamEcho {
    /// Echoes; `sent` answers how many responses the `slow` call sent.
    fn echo(&self, _: &mut Controller, req: StreamRequest) -> Result<StreamResponse, RpcError> {
        let message = if req.message == "sent" {
            self.0.slow_sent.load(Ordering::SeqCst).to_string()
        } else {
            req.message
        };
        Ok(response(message, 0, 0))
    }

    /// `count` responses of `size` bytes of padding; `forever` sends
    /// until the call fails (at most a million).
    fn expand(
        &self,
        _: &mut Controller,
        req: StreamRequest,
        responses: ServerStreamWriter<StreamResponse>,
    ) -> Result<(), RpcError> {
        let count = if req.message == "forever" {
            1_000_000
        } else {
            req.count
        };
        for i in 0..count {
            if let Err(e) = responses.send(&response(req.message.clone(), i, req.size)) {
                self.0.ended(format!("expand {} {}", req.message, e.code));
                return Err(e);
            }
            if req.message == "slow" {
                self.0.slow_sent.fetch_add(1, Ordering::SeqCst);
            }
        }
        Ok(())
    }

    /// "N TOTAL": how many requests and their messages' bytes, with the
    /// last request's `size` bytes of padding; a request `hold` makes the
    /// handler sleep 3 s before it reads on.
    fn collect(
        &self,
        _: &mut Controller,
        requests: ClientStreamReader<StreamRequest>,
    ) -> Result<StreamResponse, RpcError> {
        let (mut n, mut total, mut size) = (0, 0, 0);
        while let Some(r) = requests.recv()? {
            n += 1;
            total += r.message.len();
            size = r.size;
            if r.message == "hold" {
                fibrpc::fiber::sleep(Duration::from_secs(3)).unwrap();
            }
        }
        Ok(response(format!("{n} {total}"), n, size))
    }

    /// A response per request (its message, its index); records how the
    /// call ended if it failed, by the last request's message.
    fn chat(
        &self,
        _: &mut Controller,
        stream: BidiStream<StreamRequest, StreamResponse>,
    ) -> Result<(), RpcError> {
        let mut index = 0;
        let mut tag = String::new();
        loop {
            match stream.recv() {
                Ok(Some(r)) => {
                    tag = r.message.clone();
                    stream.send(&response(r.message, index, r.size))?;
                    index += 1;
                }
                Ok(None) => return Ok(()),
                Err(e) => {
                    self.0.ended(format!("chat {tag} {}", e.code));
                    return Err(e);
                }
            }
        }
    }
}

fn start() -> (Server, SocketAddr, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let mut server = Server::new(ServerOptions::default());
    server
        .add_service(StreamEchoServiceServer::new(StreamEcho(seen.clone())))
        .unwrap();
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();
    (server, addr, seen)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "fibrpc-grpc-streaming-{}-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the Python client with `cases` against `addr`; its output
/// lines, one per case.
fn python(addr: SocketAddr, name: &str, cases: &[&str]) -> Vec<String> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = here.join("tests/data/grpc/stream_client.py");
    let protos = here.join("../example/proto");
    let out = scratch(name);
    let mut args = vec![
        script.display().to_string(),
        protos.display().to_string(),
        out.display().to_string(),
        addr.to_string(),
    ];
    args.extend(cases.iter().map(|c| c.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run_peer("python3", &args, 240);
    let _ = std::fs::remove_dir_all(out);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the grpcio client failed ({:?}; is `pip install grpcio grpcio-tools` done?): {stderr}",
        output.status
    );
    let lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), cases.len(), "{lines:?} {stderr}");
    lines
}

#[test]
fn grpcio_calls_every_kind() {
    let (_server, addr, _) = start();
    let got = python(
        addr,
        "kinds",
        &[
            "unary",
            "server_streaming",
            "client_streaming",
            "bidi",
            "unimplemented",
        ],
    );
    assert_eq!(got[0], "unary ok hello");
    assert_eq!(got[1], "server_streaming ok 5");
    assert_eq!(got[2], "client_streaming ok 3 6");
    assert_eq!(got[3], "bidi ok 10");
    assert!(
        got[4].starts_with("unimplemented status 12 [E1002]"),
        "{}",
        got[4]
    );
}

#[test]
fn sixteen_mib_each_way() {
    let (_server, addr, _) = start();
    let got = python(addr, "big", &["big"]);
    let m = 16 << 20;
    assert_eq!(got[0], format!("big ok 1 {m} {m} {m}"));
}

#[test]
fn a_hundred_thousand_messages_on_one_stream_in_order() {
    let (_server, addr, _) = start();
    let got = python(addr, "many", &["many"]);
    assert_eq!(got[0], "many ok 100000");
}

#[test]
fn a_client_cancel_fails_the_handlers_send_and_recv() {
    let (_server, addr, seen) = start();
    let got = python(addr, "cancel", &["cancel_server_streaming", "cancel_bidi"]);
    assert_eq!(got[0], "cancel_server_streaming ok cancelled");
    assert_eq!(got[1], "cancel_bidi ok block");
    // RST_STREAM(CANCEL): the endless send and the waiting recv fail
    // with ECANCELED, and the handlers return.
    let cancelled = libc::ECANCELED;
    assert!(
        seen.wait_for(&format!("expand forever {cancelled}")),
        "{:?}",
        seen.ends.lock().unwrap()
    );
    assert!(
        seen.wait_for(&format!("chat block {cancelled}")),
        "{:?}",
        seen.ends.lock().unwrap()
    );
}

#[test]
fn the_clients_deadline_ends_a_waiting_handler() {
    let (_server, addr, seen) = start();
    let got = python(addr, "deadline", &["deadline"]);
    assert!(got[0].starts_with("deadline status 4"), "{}", got[0]);
    assert!(
        seen.wait_for(&format!("chat stall {}", fibrpc::errno::ERPCTIMEDOUT)),
        "{:?}",
        seen.ends.lock().unwrap()
    );
}

#[test]
fn a_slow_reader_holds_back_the_handler() {
    let (_server, addr, _) = start();
    let got = python(addr, "slow", &["slow_reader"]);
    let parts: Vec<&str> = got[0].split(' ').collect();
    assert_eq!(parts[..2], ["slow_reader", "ok"], "{}", got[0]);
    assert_eq!(parts[3], "500", "{}", got[0]);
    // 500 responses of 64 KiB (31 MiB) were due; while the client read
    // none, the server sent what the client's window (64 KiB: the client
    // runs without BDP probing) and the stream's send buffer (256 KiB)
    // hold, and the handler waited: a handful of messages, not the whole.
    let sent: usize = parts[2].parse().unwrap();
    assert!(sent < 64, "{sent} responses sent to a client not reading");
}

#[test]
fn streaming_methods_over_baidu_std_say_they_are_grpc_only() {
    let (_server, addr, _) = start();
    let channel = fibrpc::Channel::connect(addr).unwrap();
    let mut cntl = Controller::new();
    let r: Result<StreamResponse, _> = channel.call(
        fibrpc_example::STREAM_ECHO_SERVICE_NAME,
        "Expand",
        &mut cntl,
        &StreamRequest::default(),
    );
    let e = r.unwrap_err();
    assert_eq!(e.code, fibrpc::errno::ENOMETHOD, "{e}");
    assert!(e.text.contains("served over gRPC only"), "{e}");
    // Its unary method is served as usual.
    let r: StreamResponse = channel
        .call(
            fibrpc_example::STREAM_ECHO_SERVICE_NAME,
            "Echo",
            &mut Controller::new(),
            &StreamRequest {
                message: "unary".into(),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(r.message, "unary");
}

/// One gRPC message, framed.
fn grpc_message(msg: &impl prost::Message) -> Vec<u8> {
    let body = msg.encode_to_vec();
    let mut out = vec![0];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend(body);
    out
}

/// Reads frames of `stream` until a DATA frame (its payload) or the end
/// of the stream (the trailers' fields).
fn next_on(c: &mut RawH2, stream: u32) -> Result<Vec<u8>, Vec<(String, String)>> {
    loop {
        let f = c.read_frame().expect("the connection ended");
        if f.stream != stream {
            continue;
        }
        match f.kind {
            kind::DATA if !f.payload.is_empty() => return Ok(f.payload),
            kind::HEADERS if f.flags & flag::END_STREAM != 0 => {
                let mut fields = Vec::new();
                fibrpc::protocol::h2::hpack::Decoder::default()
                    .decode(&f.payload, usize::MAX, |n, v| {
                        fields.push((
                            String::from_utf8_lossy(n).into_owned(),
                            String::from_utf8_lossy(v).into_owned(),
                        ))
                    })
                    .unwrap();
                return Err(fields);
            }
            kind::RST_STREAM => panic!("stream {stream} reset: {:?}", f.payload),
            _ => {}
        }
    }
}

#[test]
fn a_stopping_server_lets_a_stream_in_flight_finish() {
    let (mut server, addr, _) = start();
    let mut c = RawH2::connect(addr);
    let block = request_block(
        "POST",
        "/example.StreamEchoService/Chat",
        &[("content-type", "application/grpc"), ("te", "trailers")],
    );
    c.send(&frame(kind::HEADERS, flag::END_HEADERS, 1, &block));
    let hello = |m: &str| {
        grpc_message(&StreamRequest {
            message: m.into(),
            ..Default::default()
        })
    };
    c.send(&frame(kind::DATA, 0, 1, &hello("before")));
    let first = next_on(&mut c, 1).unwrap();
    assert!(String::from_utf8_lossy(&first).contains("before"));
    // The server stops: GOAWAY, and the stream goes on.
    let stopper = std::thread::spawn(move || {
        server.stop();
        server.join();
    });
    let (last, code) = c.goaway().expect("a GOAWAY");
    assert_eq!((last, code), (1, 0));
    c.send(&frame(kind::DATA, 0, 1, &hello("after")));
    let second = next_on(&mut c, 1).unwrap();
    assert!(String::from_utf8_lossy(&second).contains("after"));
    c.send(&frame(kind::DATA, flag::END_STREAM, 1, &[]));
    let trailers = next_on(&mut c, 1).unwrap_err();
    assert!(
        trailers.contains(&("grpc-status".into(), "0".into())),
        "{trailers:?}"
    );
    stopper.join().unwrap();
}

#[test]
fn a_message_over_max_body_size_fails_only_its_call() {
    let seen = Arc::new(Seen::default());
    let mut server = Server::new(ServerOptions {
        max_body_size: 1 << 20,
        ..Default::default()
    });
    server
        .add_service(StreamEchoServiceServer::new(StreamEcho(seen)))
        .unwrap();
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();
    let mut c = RawH2::connect(addr);
    let open = |c: &mut RawH2, id: u32, method: &str| {
        let block = request_block(
            "POST",
            &format!("/example.StreamEchoService/{method}"),
            &[("content-type", "application/grpc"), ("te", "trailers")],
        );
        c.send(&frame(kind::HEADERS, flag::END_HEADERS, id, &block));
    };
    // A prefix that announces 2 MiB: refused before any of it is held.
    open(&mut c, 1, "Collect");
    let mut prefix = vec![0];
    prefix.extend_from_slice(&(2u32 << 20).to_be_bytes());
    c.send(&frame(kind::DATA, 0, 1, &prefix));
    let trailers = next_on(&mut c, 1).unwrap_err();
    assert!(
        trailers.contains(&("grpc-status".into(), "8".into())),
        "{trailers:?}"
    );
    // The connection goes on: another call on it succeeds.
    open(&mut c, 3, "Chat");
    let msg = grpc_message(&StreamRequest {
        message: "still here".into(),
        ..Default::default()
    });
    c.send(&frame(kind::DATA, flag::END_STREAM, 3, &msg));
    let echoed = next_on(&mut c, 3).unwrap();
    assert!(String::from_utf8_lossy(&echoed).contains("still here"));
    let trailers = next_on(&mut c, 3).unwrap_err();
    assert!(
        trailers.contains(&("grpc-status".into(), "0".into())),
        "{trailers:?}"
    );
}

#[test]
fn a_handler_that_does_not_read_holds_the_client_to_one_window() {
    let (_server, addr, _) = start();
    let mut c = RawH2::connect(addr);
    let block = request_block(
        "POST",
        "/example.StreamEchoService/Collect",
        &[("content-type", "application/grpc"), ("te", "trailers")],
    );
    c.send(&frame(kind::HEADERS, flag::END_HEADERS, 1, &block));
    let hold = grpc_message(&StreamRequest {
        message: "hold".into(),
        ..Default::default()
    });
    c.send(&frame(kind::DATA, 0, 1, &hold));
    // While the handler sleeps, the rest of the stream's window (1 MiB,
    // the server's default) is taken: the start of a large message.
    let window = 1 << 20;
    let mut left = window - hold.len();
    let mut first = vec![0u8; 16 << 10];
    first[1..5].copy_from_slice(&(8u32 << 20).to_be_bytes());
    let mut chunk = first;
    while left > 0 {
        let n = left.min(chunk.len());
        c.send(&frame(kind::DATA, 0, 1, &chunk[..n]));
        left -= n;
        chunk = vec![0u8; 16 << 10];
    }
    // No byte of it was given back (the handler read none): one more
    // frame is past the window, and only this stream is reset.
    c.send(&frame(kind::DATA, 0, 1, &[0u8; 1024]));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "no RST_STREAM");
        let f = c.read_frame().expect("the connection ended");
        if f.kind == kind::WINDOW_UPDATE && f.stream == 1 {
            panic!("the stream's window was given back before the handler read");
        }
        if f.kind == kind::RST_STREAM && f.stream == 1 {
            // FLOW_CONTROL_ERROR.
            assert_eq!(f.payload, [0, 0, 0, 3]);
            break;
        }
    }
    // The connection serves on.
    c.get(3, "/health");
    assert_eq!(c.response(3).status(), 200);
}
