//! gRPC-Web on fibrpc's shared port: hand-built HTTP/1.1 requests in
//! both modes (`application/grpc-web`, binary; `application/grpc-web-text`,
//! base64), checking the framed trailers, the CORS preflight, and the
//! status of an overloaded server.

mod h2_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use base64::Engine;
use fibrpc::{Server, ServerOptions};
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
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "{method} /example.EchoService/Echo HTTP/1.1\r\nHost: 127.0.0.1\r\n\
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
