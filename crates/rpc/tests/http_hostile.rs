//! Hostile HTTP/1.1 clients against a `fibrpc::Server`, over raw TCP:
//! malformed or unbounded chunked bodies and ambiguous framing are
//! answered with an error status, then the connection closes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use fibrpc::http::{HttpContext, Request, Response, StatusCode};
use fibrpc::{IOBuf, Server, ServerOptions};

fn echo_body(req: Request<IOBuf>, _: &HttpContext) -> Response<IOBuf> {
    fibrpc::http::text(StatusCode::OK, req.into_body())
}

fn server() -> Server {
    let mut s = Server::new(ServerOptions::default());
    s.add_http_handler("/echo", echo_body).unwrap();
    s.start("127.0.0.1:0").unwrap();
    s
}

fn connect(addr: SocketAddr) -> TcpStream {
    let c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c
}

/// Everything the server sends until it closes the connection (a reset
/// after the answer counts as the close).
fn read_to_close(c: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("no close: {e} after {:?}", String::from_utf8_lossy(&out)),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Writes `bytes` `times` times, or until a write fails: the server
/// stops reading once it answers, so a write may fail.
fn write_until_refused(c: &mut TcpStream, bytes: &[u8], times: usize) {
    for _ in 0..times {
        if c.write_all(bytes).is_err() {
            break;
        }
    }
}

/// The status of the only response in `text`.
fn only_status(text: &str) -> u16 {
    assert!(text.starts_with("HTTP/1.1 "), "{text:?}");
    assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "{text:?}");
    text[9..12].parse().unwrap()
}

#[test]
fn transfer_encoding_with_content_length_gets_400_and_a_close() {
    let s = server();
    let mut c = connect(s.listen_addr().unwrap());
    // If the server believed Content-Length, the rest would be a second
    // (smuggled) request.
    c.write_all(
        b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\
          Transfer-Encoding: chunked\r\n\r\n\
          0\r\n\r\nGET /echo HTTP/1.1\r\nHost: h\r\n\r\n",
    )
    .unwrap();
    assert_eq!(only_status(&read_to_close(&mut c)), 400);
}

#[test]
fn endless_trailers_get_431_and_a_close() {
    let s = server();
    let mut c = connect(s.listen_addr().unwrap());
    c.write_all(
        b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n",
    )
    .unwrap();
    // Well past the default head limit (64 KiB).
    write_until_refused(&mut c, &b"a:b\r\n".repeat(1024), 40);
    assert_eq!(only_status(&read_to_close(&mut c)), 431);
}

#[test]
fn endless_chunk_extensions_get_400_and_a_close() {
    let s = server();
    let mut c = connect(s.listen_addr().unwrap());
    c.write_all(b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let chunk = format!("1;e={}\r\nx\r\n", "v".repeat(1000)).repeat(16);
    write_until_refused(&mut c, chunk.as_bytes(), 20);
    assert_eq!(only_status(&read_to_close(&mut c)), 400);
}

#[test]
fn a_chunked_body_in_small_pieces_is_served() {
    let s = server();
    let mut c = connect(s.listen_addr().unwrap());
    c.write_all(b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut body = Vec::new();
    for i in 0..2000u32 {
        let b = b'a' + (i % 26) as u8;
        body.push(b);
        c.write_all(&[b'1', b';', b'x', b'\r', b'\n', b, b'\r', b'\n'])
            .unwrap();
    }
    c.write_all(b"0\r\nt: v\r\n\r\n").unwrap();
    let text = read_to_close(&mut c);
    assert_eq!(only_status(&text), 200);
    assert!(
        text.ends_with(std::str::from_utf8(&body).unwrap()),
        "{text:?}"
    );
}
