//! The HTTP/1.1 side of the server, driven by a raw TCP client that
//! parses responses itself (independent of fibrpc's own HTTP parser):
//! keep-alive, pipelining order, chunked bodies, HEAD, `Connection:
//! close`, HTTP/1.0, the 400/413/431 errors, pb methods over HTTP, and
//! baidu_std on the same port.

mod rpc_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use fibrpc::http::{HttpContext, Request, Response, StatusCode};
use fibrpc::{codec, Channel, ChannelOptions, Controller, IOBuf, Server, ServerOptions};
use rpc_common::*;

/// A response as read off the wire.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client connection that keeps what it read past one response.
struct Conn {
    s: TcpStream,
    pending: Vec<u8>,
}

impl Conn {
    fn open(addr: SocketAddr) -> Conn {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Conn {
            s,
            pending: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    fn fill(&mut self) -> usize {
        let mut buf = [0u8; 65536];
        let n = self.s.read(&mut buf).unwrap();
        self.pending.extend_from_slice(&buf[..n]);
        n
    }

    /// Reads one response (`head_only`: the request was HEAD).
    fn reply(&mut self, head_only: bool) -> Reply {
        let head_end = loop {
            if let Some(p) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            assert!(self.fill() > 0, "EOF before a whole head");
        };
        let head = String::from_utf8(self.pending[..head_end].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
        let status = status_line[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                (k.trim().to_string(), v.trim().to_string())
            })
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .expect("every response has a Content-Length");
        let body_len = if head_only { 0 } else { len };
        while self.pending.len() < head_end + body_len {
            assert!(self.fill() > 0, "EOF inside a body");
        }
        let body = self.pending[head_end..head_end + body_len].to_vec();
        self.pending.drain(..head_end + body_len);
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Whether the server closed the connection (after what was read).
    fn closed(&mut self) -> bool {
        self.pending.is_empty() && matches!(self.s.read(&mut [0u8; 16]), Ok(0) | Err(_))
    }
}

fn hello(_: Request<IOBuf>, _: &HttpContext) -> Response<IOBuf> {
    fibrpc::http::text(StatusCode::OK, "Hello, World!")
}

fn echo_body(req: Request<IOBuf>, _: &HttpContext) -> Response<IOBuf> {
    fibrpc::http::text(StatusCode::OK, req.into_body())
}

/// Sleeps `?ms` milliseconds, then answers its path.
fn slow(req: Request<IOBuf>, _: &HttpContext) -> Response<IOBuf> {
    let ms: u64 = req
        .uri()
        .query()
        .and_then(|q| q.strip_prefix("ms="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    fibrpc::fiber::sleep(Duration::from_millis(ms)).unwrap();
    fibrpc::http::text(StatusCode::OK, req.uri().to_string())
}

fn server_with(options: ServerOptions) -> Server {
    let mut s = Server::new(options);
    s.add_service(Echo::default()).unwrap();
    s.add_http_handler("/hello", hello).unwrap();
    s.add_http_handler("/echo", echo_body).unwrap();
    s.add_http_handler("/slow", slow).unwrap();
    s.add_http_handler("/files/*", |req: Request<IOBuf>, _: &HttpContext| {
        fibrpc::http::text(StatusCode::OK, format!("file {}", req.uri().path()))
    })
    .unwrap();
    s.add_http_handler(
        "/panic",
        |_: Request<IOBuf>, _: &HttpContext| -> Response<IOBuf> { panic!("handler bug") },
    )
    .unwrap();
    s.start("127.0.0.1:0").unwrap();
    s
}

fn server() -> Server {
    server_with(ServerOptions::default())
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let s = server();
    let mut c = Conn::open(s.listen_addr().unwrap());
    for _ in 0..3 {
        c.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = c.reply(false);
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "Hello, World!");
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        assert!(r.header("date").is_some());
        assert_eq!(r.header("connection"), None);
    }
}

#[test]
fn pipelined_responses_keep_request_order() {
    let s = server();
    let mut c = Conn::open(s.listen_addr().unwrap());
    // The first request is the slowest: its response must still come
    // first.
    c.send(
        b"GET /slow?ms=80 HTTP/1.1\r\n\r\nGET /slow?ms=0 HTTP/1.1\r\n\r\n\
          GET /slow?ms=30 HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n",
    );
    assert_eq!(c.reply(false).text(), "/slow?ms=80");
    assert_eq!(c.reply(false).text(), "/slow?ms=0");
    assert_eq!(c.reply(false).text(), "/slow?ms=30");
    assert_eq!(c.reply(false).text(), "Hello, World!");
}

/// The responses to requests read together leave in a few `writev`s, not
/// one each: the writer of one waits behind the queued others. An idle
/// worker that steals the queued requests one by one as they are cut
/// answers each at once instead (parallelism wins over batching), which
/// happens in a few percent of tries on a quiet machine and in most
/// under a loaded one (other test binaries): the best of eight tries is
/// checked against half the responses. Without the batching every try
/// takes one write per response.
/// (That a lone response does not wait for other connections' fibers is
/// not visible in these counters: it is one write either way.)
#[test]
fn responses_to_pipelined_requests_are_written_together() {
    const N: u64 = 32;
    let s = server();
    let mut writes = Vec::new();
    for _ in 0..8 {
        let mut c = Conn::open(s.listen_addr().unwrap());
        c.send(&b"GET /hello HTTP/1.1\r\n\r\n".repeat(N as usize));
        for _ in 0..N {
            assert_eq!(c.reply(false).text(), "Hello, World!");
        }
        // The counters move after `writev` returns, which may be after
        // the client read the bytes.
        let peer = c.s.local_addr().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let out_writes = loop {
            let (out_msg, out_writes) = connection_counters(&s, peer);
            if out_msg == N {
                break out_writes;
            }
            assert!(Instant::now() < deadline, "{out_msg} of {N} counted");
            std::thread::sleep(Duration::from_millis(5));
        };
        writes.push(out_writes);
    }
    assert!(
        writes.iter().min() <= Some(&(N / 2)),
        "writes per try for {N} responses: {writes:?}"
    );
}

/// `out_msg` and `out_writes` of the connection from `peer`, from the
/// `/connections` page.
fn connection_counters(s: &Server, peer: SocketAddr) -> (u64, u64) {
    let mut console = Conn::open(s.listen_addr().unwrap());
    console.send(b"GET /connections HTTP/1.1\r\n\r\n");
    let page = console.reply(false).text();
    let mut lines = page.lines().skip_while(|l| !l.contains("out_writes"));
    let header: Vec<&str> = lines.next().expect("a table").split_whitespace().collect();
    let row: Vec<&str> = lines
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|r| r.first() == Some(&peer.to_string().as_str()))
        .unwrap_or_else(|| panic!("no row for {peer} in\n{page}"));
    let col = |name: &str| {
        let i = header.iter().position(|h| *h == name).unwrap();
        row[i].parse().unwrap()
    };
    (col("out_msg"), col("out_writes"))
}

#[test]
fn bodies_by_length_and_chunked() {
    let s = server();
    let mut c = Conn::open(s.listen_addr().unwrap());
    c.send(b"POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(c.reply(false).text(), "hello");
    // Chunked, with an extension and a trailer, sent in pieces.
    c.send(b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nWiki\r\n");
    std::thread::sleep(Duration::from_millis(20));
    c.send(b"6\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nTrailer: t\r\n\r\n");
    assert_eq!(c.reply(false).text(), "Wikipedia in \r\n\r\nchunks.");
    // A body split at every byte.
    let req = b"POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789";
    for b in req.iter() {
        c.send(&[*b]);
    }
    assert_eq!(c.reply(false).text(), "0123456789");
}

#[test]
fn expect_100_continue_gets_an_interim_response() {
    let s = server();
    let mut c = Conn::open(s.listen_addr().unwrap());
    c.send(b"POST /echo HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    // The client waits for this before it sends the body.
    let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
    while c.pending.len() < interim.len() {
        assert!(c.fill() > 0, "EOF before 100 Continue");
    }
    assert_eq!(&c.pending[..interim.len()], interim);
    c.pending.drain(..interim.len());
    c.send(b"body");
    assert_eq!(c.reply(false).text(), "body");
    // A body sent at once (no wait) gets no interim response.
    c.send(b"POST /echo HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nok");
    assert_eq!(c.reply(false).text(), "ok");
}

#[test]
fn head_has_length_but_no_body() {
    let s = server();
    let mut c = Conn::open(s.listen_addr().unwrap());
    c.send(b"HEAD /hello HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n");
    let r = c.reply(true);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("13"));
    assert!(r.body.is_empty());
    assert_eq!(c.reply(false).text(), "Hello, World!");
}

#[test]
fn connection_close_and_http_1_0_close_after_the_response() {
    let s = server();
    let addr = s.listen_addr().unwrap();
    let mut c = Conn::open(addr);
    // Requests after the closing one are not answered.
    c.send(b"GET /hello HTTP/1.1\r\nConnection: close\r\n\r\nGET /hello HTTP/1.1\r\n\r\n");
    let r = c.reply(false);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed());

    let mut c = Conn::open(addr);
    c.send(b"GET /hello HTTP/1.0\r\n\r\n");
    assert_eq!(c.reply(false).text(), "Hello, World!");
    assert!(c.closed());

    let mut c = Conn::open(addr);
    c.send(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    c.reply(false);
    c.send(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(c.reply(false).text(), "Hello, World!");
}

#[test]
fn bad_input_gets_its_status_and_closes_only_its_connection() {
    let s = server_with(ServerOptions {
        max_body_size: 1000,
        http_max_header_size: 2000,
        ..Default::default()
    });
    let addr = s.listen_addr().unwrap();
    let mut bystander = Conn::open(addr);
    bystander.send(b"GET /hello HTTP/1.1\r\n\r\n");
    bystander.reply(false);

    let cases: &[(&[u8], u16)] = &[
        (b"GET /hello HTTP/1.1\r\nBad Header\r\n\r\n", 400),
        (b"GET /hello HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400),
        (b"POST /echo HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", 413),
        (
            b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n7D0\r\n",
            413,
        ),
        (
            b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
        ),
        (
            b"POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            501,
        ),
    ];
    for (input, status) in cases {
        let mut c = Conn::open(addr);
        c.send(input);
        let r = c.reply(false);
        assert_eq!(r.status, *status, "{}", String::from_utf8_lossy(input));
        assert_eq!(r.header("connection"), Some("close"));
        assert!(c.closed());
    }
    // A head over the limit.
    let mut c = Conn::open(addr);
    let big = format!("GET /hello HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(3000));
    c.send(big.as_bytes());
    assert_eq!(c.reply(false).status, 431);
    assert!(c.closed());

    bystander.send(b"GET /hello HTTP/1.1\r\n\r\n");
    assert_eq!(bystander.reply(false).text(), "Hello, World!");
}

#[test]
fn routes_prefixes_panics_and_not_found() {
    let s = server();
    let mut c = Conn::open(s.listen_addr().unwrap());
    c.send(b"GET /files/a/b.txt HTTP/1.1\r\n\r\n");
    assert_eq!(c.reply(false).text(), "file /files/a/b.txt");
    c.send(b"GET /panic HTTP/1.1\r\n\r\n");
    let r = c.reply(false);
    assert_eq!(r.status, 500);
    assert!(r.text().contains("handler bug"), "{}", r.text());
    c.send(b"GET /nope HTTP/1.1\r\n\r\n");
    assert_eq!(c.reply(false).status, 404);
    // The connection survived all of it.
    c.send(b"GET /hello HTTP/1.1\r\n\r\n");
    assert_eq!(c.reply(false).status, 200);
}

#[test]
fn handler_paths_are_checked() {
    let mut s = Server::new(ServerOptions::default());
    assert!(s.add_http_handler("nope", hello).is_err());
    s.add_http_handler("/a", hello).unwrap();
    assert!(s.add_http_handler("/a", hello).is_err());
    s.add_http_handler("/b/*", hello).unwrap();
    assert!(s.add_http_handler("/b/*", hello).is_err());
}

#[test]
fn pb_methods_over_http_and_baidu_std_on_the_same_port() {
    let s = server();
    let addr = s.listen_addr().unwrap();
    let body = codec::encode(&req("over http")).to_vec();
    for path in ["/example.EchoService/Echo", "/EchoService/Echo"] {
        let mut c = Conn::open(addr);
        let head = format!(
            "POST {path} HTTP/1.1\r\nContent-Type: application/proto\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        c.send(head.as_bytes());
        c.send(&body);
        let r = c.reply(false);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("content-type"), Some("application/proto"));
        let resp: EchoResponse = codec::decode_response(&IOBuf::from(r.body)).unwrap();
        assert_eq!(resp.message, "over http");
    }
    // Errors map to statuses, with bRPC's code in a header.
    let mut c = Conn::open(addr);
    c.send(b"POST /example.EchoService/Nope HTTP/1.1\r\nContent-Type: application/proto\r\nContent-Length: 0\r\n\r\n");
    let r = c.reply(false);
    assert_eq!(r.status, 404);
    assert_eq!(r.header("x-bd-error-code"), Some("1002"));
    let failing = codec::encode(&rpc_common::EchoRequest {
        fail_code: Some(1003),
        ..req("x")
    })
    .to_vec();
    let head = format!(
        "POST /EchoService/Echo HTTP/1.1\r\nContent-Type: application/proto\r\nContent-Length: {}\r\n\r\n",
        failing.len()
    );
    c.send(head.as_bytes());
    c.send(&failing);
    assert_eq!(c.reply(false).status, 400);

    // baidu_std on the same port, while an HTTP connection is open.
    let ch = Channel::new(addr, ChannelOptions::default()).unwrap();
    let resp = echo(&ch, &mut Controller::new(), &req("over baidu_std")).unwrap();
    assert_eq!(resp.message, "over baidu_std");
    c.send(b"GET /hello HTTP/1.1\r\n\r\n");
    assert_eq!(c.reply(false).text(), "Hello, World!");
    assert_eq!(s.method_stats(SERVICE, "Echo").unwrap().calls, 4);
}

#[test]
fn builtin_pages_answer_in_text_and_html() {
    let s = server_with(ServerOptions {
        console_flags_writable: true,
        ..Default::default()
    });
    let mut c = Conn::open(s.listen_addr().unwrap());
    c.send(b"GET /health HTTP/1.1\r\n\r\n");
    assert_eq!(c.reply(false).text(), "OK\n");
    c.send(b"GET /status HTTP/1.1\r\n\r\n");
    let r = c.reply(false);
    assert!(r.text().contains("example.EchoService"), "{}", r.text());
    assert!(r.text().contains("Echo"));
    c.send(b"GET /status HTTP/1.1\r\nAccept: text/html,*/*\r\n\r\n");
    let r = c.reply(false);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(r.text().starts_with("<!DOCTYPE html>"));
    assert!(r.text().contains("<table"));
    c.send(b"GET /connections HTTP/1.1\r\n\r\n");
    let r = c.reply(false);
    assert!(r.text().contains("http"), "{}", r.text());
    c.send(b"GET /fibers HTTP/1.1\r\n\r\n");
    assert!(c.reply(false).text().contains("workers"));
    c.send(b"GET /flags/log_connection_errors?setvalue=false HTTP/1.1\r\n\r\n");
    assert_eq!(c.reply(false).status, 200);
    assert_eq!(
        fibrpc::flags::get("log_connection_errors").as_deref(),
        Some("false")
    );
    c.send(b"GET /flags/log_connection_errors?setvalue=maybe HTTP/1.1\r\n\r\n");
    assert_eq!(c.reply(false).status, 400);
    // Query values are percent-decoded: %74 is 't'.
    c.send(b"GET /flags/log_connection_errors?setvalue=%74rue HTTP/1.1\r\n\r\n");
    assert_eq!(c.reply(false).status, 200);
    assert_eq!(
        fibrpc::flags::get("log_connection_errors").as_deref(),
        Some("true")
    );
    c.send(b"GET / HTTP/1.1\r\n\r\n");
    assert!(c.reply(false).text().contains("/status"));
}

#[test]
fn graceful_stop_answers_http_requests_in_flight() {
    let mut s = server();
    let mut c = Conn::open(s.listen_addr().unwrap());
    c.send(b"GET /slow?ms=200 HTTP/1.1\r\n\r\n");
    std::thread::sleep(Duration::from_millis(50));
    s.stop();
    s.join();
    assert_eq!(c.reply(false).text(), "/slow?ms=200");
}

struct GeneratedEcho;

impl fibrpc_example::EchoService for GeneratedEcho {
    fn echo(
        &self,
        _: &mut Controller,
        req: fibrpc_example::EchoRequest,
    ) -> Result<fibrpc_example::EchoResponse, fibrpc::RpcError> {
        Ok(fibrpc_example::EchoResponse {
            message: format!("echo: {}", req.message),
        })
    }
}

#[test]
fn json_bodies_for_generated_services() {
    let mut s = Server::new(ServerOptions::default());
    s.add_service(fibrpc_example::EchoServiceServer::new(GeneratedEcho))
        .unwrap();
    s.start("127.0.0.1:0").unwrap();
    let ch =
        fibrpc::http::HttpChannel::new(&s.listen_addr().unwrap().to_string(), Default::default())
            .unwrap();
    let r = ch
        .post(
            "/EchoService/Echo",
            "application/json",
            r#"{"message":"hi"}"#,
        )
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.body().to_vec(), br#"{"message":"echo: hi"}"#);
    // No Content-Type means JSON too.
    let mut c = Conn::open(s.listen_addr().unwrap());
    c.send(b"POST /example.EchoService/Echo HTTP/1.1\r\nContent-Length: 17\r\n\r\n{\"message\": \"yo\"}");
    assert_eq!(c.reply(false).text(), r#"{"message":"echo: yo"}"#);
    // Bad JSON is the caller's error.
    let r = ch
        .post("/EchoService/Echo", "application/json", r#"{"message": 5"#)
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.headers()["x-bd-error-code"], "1003");
    let r = ch
        .post("/EchoService/Echo", "application/json", r#"{"nope": 1}"#)
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{:?}", r.body());
}

#[test]
fn json_needs_descriptors() {
    // The hand-written service has none: JSON is refused with 415.
    let s = server();
    let mut c = Conn::open(s.listen_addr().unwrap());
    c.send(b"POST /EchoService/Echo HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
    assert_eq!(c.reply(false).status, 415);
}

#[test]
fn per_method_vars_are_labeled_on_metrics_vars_and_status() {
    let s = server();
    let addr = s.listen_addr().unwrap();
    let ch = Channel::new(addr, ChannelOptions::default()).unwrap();
    echo(&ch, &mut Controller::new(), &req("counted")).unwrap();
    let labels = format!(
        "{{port=\"{}\",service=\"{SERVICE}\",method=\"Echo\"}}",
        addr.port()
    );
    let mut c = Conn::open(addr);
    c.send(b"GET /metrics HTTP/1.1\r\n\r\n");
    let metrics = c.reply(false).text();
    assert!(
        metrics.contains(&format!("rpc_server_method_count_total{labels} 1\n")),
        "{metrics}"
    );
    assert_eq!(
        metrics
            .matches("# TYPE rpc_server_method_latency summary\n")
            .count(),
        1
    );
    assert!(metrics.contains(&format!(
        "rpc_server_method_latency{{{},quantile=\"0.99\"}} ",
        &labels[1..labels.len() - 1]
    )));
    assert!(
        !metrics.contains(&format!("rpc_server_{}_", addr.port())),
        "no per-method names"
    );
    c.send(b"GET /vars HTTP/1.1\r\n\r\n");
    let vars = c.reply(false).text();
    assert!(
        vars.contains(&format!("rpc_server_method_count{labels} : 1\n")),
        "{vars}"
    );
    // The chart's history, by the percent-encoded labeled name.
    let name = format!("rpc_server_method_qps{labels}");
    let path: String = name
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect();
    c.send(format!("GET /vars/{path}?series HTTP/1.1\r\n\r\n").as_bytes());
    let r = c.reply(false);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().starts_with("{\"label\":"), "{}", r.text());
    c.send(b"GET /status HTTP/1.1\r\nAccept: text/html\r\n\r\n");
    let status = c.reply(false).text();
    let spark = format!(
        "<canvas class=\"spark\" data-var=\"{}\">",
        name.replace('"', "&quot;")
    );
    assert!(status.contains(&spark), "{status}");
    assert!(status.contains("fibrpcChart.draw(c, s, true)"));
}
