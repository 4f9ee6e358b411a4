//! gRPC-Web on fibrpc's shared port: hand-built HTTP/1.1 requests in
//! both modes (`application/grpc-web`, binary; `application/grpc-web-text`,
//! base64), checking the framed trailers, the CORS preflight, and the
//! status of an overloaded server; server streaming read by curl over
//! HTTP/1.1 (chunked) and HTTP/2, message by message.

mod h2_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use fibrpc::protocol::grpc::{BidiStream, ClientStreamReader, ServerStreamWriter};
use fibrpc::{Controller, RpcError, Server, ServerOptions};
use fibrpc_example::{StreamEchoService, StreamEchoServiceServer, StreamRequest, StreamResponse};
use h2_common::GenEcho;
use prost::Message;

fn start(options: ServerOptions) -> (Server, SocketAddr) {
    let mut server = Server::new(options);
    server
        .add_service(fibrpc_example::EchoServiceServer::new(GenEcho))
        .unwrap();
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();
    (server, addr)
}

/// A response as read: status, headers (lowercase names), body.
struct Http {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Http {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one HTTP/1.1 request and reads its response (content-length
/// bodies, as fibrpc answers).
fn http(addr: SocketAddr, method: &str, head: &[(&str, &str)], body: &[u8]) -> Http {
    http_at(addr, method, "/example.EchoService/Echo", head, body)
}

/// [`http`] to `path`.
fn http_at(addr: SocketAddr, method: &str, path: &str, head: &[(&str, &str)], body: &[u8]) -> Http {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for (n, v) in head {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut buf = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "no whole response in 10 s");
        let mut chunk = [0u8; 65536];
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        if buf.len() >= end + 4 + len {
            return Http {
                status: status.parse().unwrap(),
                headers,
                body: buf[end + 4..end + 4 + len].to_vec(),
            };
        }
    }
}

fn framed(text: &str) -> Vec<u8> {
    let msg = fibrpc_example::EchoRequest {
        message: text.into(),
    }
    .encode_to_vec();
    let mut out = vec![0];
    out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    out.extend(msg);
    out
}

/// The frames of a gRPC-Web body: (flag, payload).
fn frames(mut body: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while !body.is_empty() {
        assert!(body.len() >= 5, "a cut frame: {body:?}");
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        out.push((body[0], body[5..5 + len].to_vec()));
        body = &body[5 + len..];
    }
    out
}

#[test]
fn binary_mode_answers_the_message_then_framed_trailers() {
    let (_server, addr) = start(ServerOptions::default());
    let r = http(
        addr,
        "POST",
        &[
            ("Content-Type", "application/grpc-web+proto"),
            ("X-Grpc-Web", "1"),
        ],
        &framed("from a browser"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/grpc-web+proto"));
    let f = frames(&r.body);
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!(f[0].0, 0);
    let resp = fibrpc_example::EchoResponse::decode(&f[0].1[..]).unwrap();
    assert_eq!(resp.message, "from a browser");
    assert_eq!(f[1], (0x80, b"grpc-status:0\r\n".to_vec()));
}

#[test]
fn text_mode_is_base64_both_ways_and_errors_are_in_the_trailers() {
    let (_server, addr) = start(ServerOptions::default());
    let b64 = base64::engine::general_purpose::STANDARD;
    let r = http(
        addr,
        "POST",
        &[("Content-Type", "application/grpc-web-text")],
        b64.encode(framed("texté")).as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/grpc-web-text+proto")
    );
    let body = b64.decode(&r.body).unwrap();
    let f = frames(&body);
    let resp = fibrpc_example::EchoResponse::decode(&f[0].1[..]).unwrap();
    assert_eq!(resp.message, "texté");
    assert_eq!(f[1], (0x80, b"grpc-status:0\r\n".to_vec()));

    // A failing call: only the trailers, the status as bRPC maps it.
    let r = http(
        addr,
        "POST",
        &[("Content-Type", "application/grpc-web-text")],
        b64.encode(framed("fail:2001")).as_bytes(),
    );
    let body = b64.decode(&r.body).unwrap();
    let f = frames(&body);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].0, 0x80);
    assert_eq!(
        String::from_utf8_lossy(&f[0].1),
        "grpc-status:13\r\ngrpc-message:[E2001]asked to fail\r\n"
    );
    assert_eq!(r.header("grpc-status"), Some("13"));
}

#[test]
fn overload_is_resource_exhausted() {
    let (server, addr) = start(ServerOptions {
        max_concurrency: 1,
        ..Default::default()
    });
    let busy = std::thread::spawn(move || {
        http(
            addr,
            "POST",
            &[("Content-Type", "application/grpc-web")],
            &framed("sleep:3000"),
        )
    });
    // Wait until the slow call runs.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server
        .method_stats("example.EchoService", "Echo")
        .is_none_or(|s| s.concurrency == 0)
    {
        assert!(Instant::now() < deadline, "the slow call never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
    let r = http(
        addr,
        "POST",
        &[("Content-Type", "application/grpc-web")],
        &framed("refused"),
    );
    let f = frames(&r.body);
    let trailer = String::from_utf8_lossy(&f[0].1).into_owned();
    // ELIMIT → RESOURCE_EXHAUSTED (8), not INTERNAL.
    assert!(trailer.starts_with("grpc-status:8\r\n"), "{trailer}");
    assert!(trailer.contains("[E2004]"), "{trailer}");
    let slow = busy.join().unwrap();
    assert_eq!(frames(&slow.body)[1].1, b"grpc-status:0\r\n".to_vec());
}

#[test]
fn cors_preflight_and_headers() {
    let (_server, addr) = start(ServerOptions::default());
    let r = http(
        addr,
        "OPTIONS",
        &[
            ("Origin", "http://page.example"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type,x-grpc-web"),
        ],
        b"",
    );
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://page.example")
    );
    assert!(r
        .header("access-control-allow-headers")
        .is_some_and(|h| h.contains("x-grpc-web")));
    let r = http(
        addr,
        "POST",
        &[
            ("Origin", "http://page.example"),
            ("Content-Type", "application/grpc-web"),
        ],
        &framed("cors"),
    );
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("grpc-status, grpc-message")
    );
}

// ---- Server streaming, read by curl as it arrives ----

/// Responses the `gated` stream sent so far, and how many more it may
/// send (the test lets it go one message at a time).
#[derive(Default)]
struct Gate {
    sent: AtomicU32,
    permits: AtomicU32,
}

impl Gate {
    /// Takes a permit, waiting for one at most 10 s.
    fn pass(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let p = self.permits.load(Ordering::SeqCst);
            if p > 0 {
                if self
                    .permits
                    .compare_exchange(p, p - 1, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    return true;
                }
                continue;
            }
            if Instant::now() > deadline {
                return false;
            }
            fibrpc::fiber::sleep(Duration::from_millis(2)).unwrap();
        }
    }
}

/// `Expand` sends `count` responses. `gated`: each one after the first
/// waits for the test's permit; `fail`: the call fails after the first.
struct WebStreams(Arc<Gate>);

impl StreamEchoService for WebStreams {
    fn echo(&self, _: &mut Controller, req: StreamRequest) -> Result<StreamResponse, RpcError> {
        Ok(StreamResponse {
            message: req.message,
            ..Default::default()
        })
    }

    fn expand(
        &self,
        _: &mut Controller,
        req: StreamRequest,
        responses: ServerStreamWriter<StreamResponse>,
    ) -> Result<(), RpcError> {
        for i in 0..req.count {
            if i > 0 && req.message == "gated" && !self.0.pass() {
                return Err(RpcError::new(2001, "the test never let the stream go on"));
            }
            if i > 0 && req.message == "fail" {
                return Err(RpcError::new(2001, "failed after one"));
            }
            responses.send(&StreamResponse {
                message: req.message.clone(),
                index: i,
                padding: vec![b'p'; req.size as usize],
            })?;
            if req.message == "gated" {
                self.0.sent.fetch_add(1, Ordering::SeqCst);
            }
        }
        Ok(())
    }

    fn collect(
        &self,
        _: &mut Controller,
        _: ClientStreamReader<StreamRequest>,
    ) -> Result<StreamResponse, RpcError> {
        Ok(StreamResponse::default())
    }

    fn chat(
        &self,
        _: &mut Controller,
        _: BidiStream<StreamRequest, StreamResponse>,
    ) -> Result<(), RpcError> {
        Ok(())
    }
}

fn start_streams() -> (Server, SocketAddr, Arc<Gate>) {
    let gate = Arc::new(Gate::default());
    let mut server = Server::new(ServerOptions::default());
    server
        .add_service(StreamEchoServiceServer::new(WebStreams(gate.clone())))
        .unwrap();
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();
    (server, addr, gate)
}

fn framed_stream_request(message: &str, count: u32, size: u32) -> Vec<u8> {
    let msg = StreamRequest {
        message: message.into(),
        count,
        size,
    }
    .encode_to_vec();
    let mut out = vec![0];
    out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    out.extend(msg);
    out
}

/// A gRPC-Web call made by curl (`--no-buffer`), its body read as curl
/// writes it.
struct CurlCall {
    child: Child,
    chunks: Receiver<Vec<u8>>,
    /// Text mode: base64 not decoded yet (less than a group of 4).
    text: Option<Vec<u8>>,
    /// The body (decoded) not yet cut into frames.
    bytes: Vec<u8>,
    dir: PathBuf,
}

impl CurlCall {
    fn start(addr: SocketAddr, path: &str, http2: bool, text: bool, body: &[u8]) -> CurlCall {
        let dir = std::env::temp_dir().join(format!(
            "fibrpc-grpc-web-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD;
        let body = if text {
            b64.encode(body).into_bytes()
        } else {
            body.to_vec()
        };
        std::fs::write(dir.join("body"), body).unwrap();
        let content_type = if text {
            "Content-Type: application/grpc-web-text"
        } else {
            "Content-Type: application/grpc-web+proto"
        };
        let mut child = Command::new("curl")
            .args([
                "-sS",
                "--no-buffer",
                "--max-time",
                "30",
                if http2 {
                    "--http2-prior-knowledge"
                } else {
                    "--http1.1"
                },
                "-D",
            ])
            .arg(dir.join("headers"))
            .args(["-X", "POST", "-H", content_type, "-H", "X-Grpc-Web: 1"])
            .arg("--data-binary")
            .arg(format!("@{}", dir.join("body").display()))
            .arg(format!("http://{addr}{path}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("curl must be installed (apt-get install curl)");
        let mut stdout = child.stdout.take().unwrap();
        let (tx, chunks) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        CurlCall {
            child,
            chunks,
            text: text.then(Vec::new),
            bytes: Vec::new(),
            dir,
        }
    }

    /// The next frame of the body (flag, payload), waiting at most 10 s
    /// for it; `None` when the body ended.
    fn next_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.bytes.len() >= 5 {
                let b = &self.bytes;
                let len = u32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize;
                if b.len() >= 5 + len {
                    let frame = (b[0], b[5..5 + len].to_vec());
                    self.bytes.drain(..5 + len);
                    return Some(frame);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => self.take(chunk),
                Err(RecvTimeoutError::Disconnected) => {
                    assert!(self.bytes.is_empty(), "a cut frame: {:?}", self.bytes);
                    return None;
                }
                Err(RecvTimeoutError::Timeout) => panic!("no frame in 10 s"),
            }
        }
    }

    /// Adds what curl wrote; in text mode each group of 4 decodes on its
    /// own (every message is base64 by itself, padded).
    fn take(&mut self, chunk: Vec<u8>) {
        let Some(text) = self.text.as_mut() else {
            self.bytes.extend(chunk);
            return;
        };
        text.extend(chunk);
        let whole = text.len() / 4 * 4;
        for group in text[..whole].chunks(4) {
            let b64 = base64::engine::general_purpose::STANDARD;
            self.bytes.extend(b64.decode(group).expect("base64 groups"));
        }
        text.drain(..whole);
    }

    /// Waits for curl to exit; its response headers (lowercase names).
    fn finish(mut self) -> Vec<(String, String)> {
        let status = self.child.wait().unwrap();
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(status.success(), "curl: {status:?} {err}");
        let head = std::fs::read_to_string(self.dir.join("headers")).unwrap();
        let _ = std::fs::remove_dir_all(&self.dir);
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect()
    }
}

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Calls the gated `Expand` for 3 messages and checks that each arrives
/// before the handler may send the next, then the OK trailers.
fn streams_message_by_message(http2: bool, text: bool) {
    let (_server, addr, gate) = start_streams();
    let mut call = CurlCall::start(
        addr,
        "/example.StreamEchoService/Expand",
        http2,
        text,
        &framed_stream_request("gated", 3, 100),
    );
    for i in 0..3u32 {
        let (flag, payload) = call.next_frame().expect("a message");
        assert_eq!(flag, 0);
        let resp = StreamResponse::decode(&payload[..]).unwrap();
        assert_eq!((resp.message.as_str(), resp.index), ("gated", i));
        assert_eq!(resp.padding.len(), 100);
        // The handler waits for the permit of the next message: this one
        // came while the rest was not sent yet (a server that held the
        // messages back until the end would never show the first).
        assert!(gate.sent.load(Ordering::SeqCst) <= i + 1);
        gate.permits.fetch_add(1, Ordering::SeqCst);
    }
    assert_eq!(
        call.next_frame(),
        Some((0x80, b"grpc-status:0\r\n".to_vec()))
    );
    assert_eq!(call.next_frame(), None);
    let headers = call.finish();
    let want = if text {
        "application/grpc-web-text+proto"
    } else {
        "application/grpc-web+proto"
    };
    assert_eq!(header(&headers, "content-type"), Some(want));
    if !http2 {
        assert_eq!(header(&headers, "transfer-encoding"), Some("chunked"));
    }
    // A status in the headers would say the call ended before it began.
    assert_eq!(header(&headers, "grpc-status"), None);
}

#[test]
fn server_streaming_binary_over_http1_arrives_message_by_message() {
    streams_message_by_message(false, false);
}

#[test]
fn server_streaming_text_over_http1_arrives_message_by_message() {
    streams_message_by_message(false, true);
}

#[test]
fn server_streaming_binary_over_http2_arrives_message_by_message() {
    streams_message_by_message(true, false);
}

#[test]
fn server_streaming_text_over_http2_arrives_message_by_message() {
    streams_message_by_message(true, true);
}

#[test]
fn a_stream_that_fails_ends_with_its_status_after_its_messages() {
    let (_server, addr, _) = start_streams();
    for http2 in [false, true] {
        let mut call = CurlCall::start(
            addr,
            "/example.StreamEchoService/Expand",
            http2,
            false,
            &framed_stream_request("fail", 3, 0),
        );
        let (flag, payload) = call.next_frame().unwrap();
        assert_eq!(flag, 0);
        assert_eq!(StreamResponse::decode(&payload[..]).unwrap().index, 0);
        let (flag, trailer) = call.next_frame().unwrap();
        assert_eq!(flag, 0x80);
        assert_eq!(
            String::from_utf8_lossy(&trailer),
            "grpc-status:13\r\ngrpc-message:[E2001]failed after one\r\n"
        );
        assert_eq!(call.next_frame(), None);
        call.finish();
    }
}

#[test]
fn client_and_bidi_streaming_are_unimplemented_over_grpc_web() {
    let (_server, addr, _) = start_streams();
    for method in ["Collect", "Chat"] {
        let r = http_at(
            addr,
            "POST",
            &format!("/example.StreamEchoService/{method}"),
            &[("Content-Type", "application/grpc-web+proto")],
            &framed_stream_request("x", 1, 0),
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.header("grpc-status"), Some("12"), "{method}");
        let f = frames(&r.body);
        assert_eq!(f.len(), 1);
        let trailer = String::from_utf8_lossy(&f[0].1).into_owned();
        assert!(trailer.starts_with("grpc-status:12\r\n"), "{trailer}");
        assert!(trailer.contains("streaming"), "{trailer}");
    }
}

#[test]
fn a_pipelined_request_is_answered_after_the_stream_before_it() {
    let (_server, addr, _) = start_streams();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = framed_stream_request("two", 2, 0);
    let mut req = Vec::new();
    for path in ["Expand", "Echo"] {
        req.extend(
            format!(
                "POST /example.StreamEchoService/{path} HTTP/1.1\r\nHost: x\r\n\
                 Content-Type: application/grpc-web\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes(),
        );
        req.extend(&body);
    }
    s.write_all(&req).unwrap();
    // Read until the second response's trailer frame has come.
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let end = b"grpc-status:0\r\n";
    while got.windows(end.len()).filter(|w| w == end).count() < 2 {
        assert!(
            Instant::now() < deadline,
            "{}",
            String::from_utf8_lossy(&got)
        );
        let mut buf = [0u8; 65536];
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    // The chunked stream whole (its last chunk), then the unary response.
    let last_chunk = text.find("\r\n0\r\n\r\n").expect("the stream's last chunk");
    let second = text.rfind("HTTP/1.1 200").unwrap();
    assert!(second > last_chunk, "{text}");
    assert!(
        text[..second].contains("Transfer-Encoding: chunked"),
        "{text}"
    );
    assert!(text[second..].contains("Content-Length"), "{text}");
}
