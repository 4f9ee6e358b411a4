//! Smoke test of the hello servers: each is started on a free port and
//! asked `GET /hello` twice over one keep-alive connection, then for a path
//! it does not serve (but for `floor_hello`, which answers every request
//! alike; it also gets pipelined and split requests). Checks the status
//! line, `Content-Length` and body.
//! Not a benchmark.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use fibrpc_tools::child::ServerChild;

/// Starts `exe --port 0` (killed when dropped) and returns its address.
fn start(exe: &str) -> (ServerChild, String) {
    let server = ServerChild::start(exe, &["--port", "0", "--workers", "1"]);
    let addr = server.announced("listening on ").to_string();
    (server, addr)
}

/// A connection to `addr` whose reads give up after 10 s.
fn connect(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connecting");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// `floor_hello` on a free port, and a connection to it.
fn start_floor() -> (ServerChild, TcpStream) {
    let (server, addr) = start(env!("CARGO_BIN_EXE_floor_hello"));
    let stream = connect(&addr);
    (server, stream)
}

/// One HTTP/1.1 response: status line, headers (names lowercased), body.
struct Reply {
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `GET path` on `stream` (keep-alive) and reads one response framed
/// by its `Content-Length`.
fn get(stream: &mut BufReader<TcpStream>, path: &str) -> Reply {
    write!(
        stream.get_mut(),
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n"
    )
    .expect("sending the request");
    read_reply(stream)
}

/// Reads one response framed by its `Content-Length`.
fn read_reply(stream: &mut BufReader<TcpStream>) -> Reply {
    let mut status_line = String::new();
    stream.read_line(&mut status_line).expect("status line");
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).expect("header line");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("a header");
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| v.parse().expect("a number"))
        .unwrap_or_else(|| panic!("no Content-Length in {headers:?}"));
    let mut body = vec![0; len];
    stream.read_exact(&mut body).expect("body");
    Reply {
        status_line: status_line.trim_end().to_string(),
        headers,
        body,
    }
}

/// Two `GET /hello` over one connection; a 404 for another path when the
/// server routes (`floor_hello` answers everything with the hello).
fn check(exe: &str, routes: bool) {
    let (_server, addr) = start(exe);
    let stream = connect(&addr);
    let mut stream = BufReader::new(stream);
    for _ in 0..2 {
        let reply = get(&mut stream, "/hello");
        // may_minihttp says "200 Ok", hyper "200 OK".
        assert!(
            reply.status_line.eq_ignore_ascii_case("HTTP/1.1 200 OK"),
            "{exe}: {}",
            reply.status_line
        );
        assert_eq!(reply.header("content-length"), Some("13"), "{exe}");
        assert_eq!(reply.header("content-type"), Some("text/plain"), "{exe}");
        assert_eq!(reply.body, b"Hello, World!", "{exe}");
    }
    if !routes {
        return;
    }
    let reply = get(&mut stream, "/nope");
    assert!(
        reply.status_line.starts_with("HTTP/1.1 404 "),
        "{exe}: {}",
        reply.status_line
    );
}

#[test]
fn hyper_hello_answers() {
    check(env!("CARGO_BIN_EXE_hyper_hello"), true);
}

#[test]
fn may_hello_answers() {
    check(env!("CARGO_BIN_EXE_may_hello"), true);
}

#[test]
fn floor_hello_answers() {
    check(env!("CARGO_BIN_EXE_floor_hello"), false);
}

#[test]
fn floor_hello_answers_pipelined_and_split_requests() {
    let (_server, mut stream) = start_floor();
    // Two requests in one write, then one split inside its "\r\n\r\n".
    let req = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    stream.write_all(format!("{req}{req}").as_bytes()).unwrap();
    stream.write_all(&req.as_bytes()[..req.len() - 2]).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    stream.write_all(b"\r\n").unwrap();
    let mut stream = BufReader::new(stream);
    for _ in 0..3 {
        let reply = read_reply(&mut stream);
        assert_eq!(reply.status_line, "HTTP/1.1 200 OK");
        assert_eq!(reply.body, b"Hello, World!");
    }
}

#[test]
fn floor_hello_answers_a_request_that_arrives_with_the_fin() {
    let (_server, mut stream) = start_floor();
    stream
        .write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut all = Vec::new();
    stream
        .read_to_end(&mut all)
        .expect("the answer, then the close");
    assert!(all.starts_with(b"HTTP/1.1 200 OK\r\n"), "{all:?}");
    assert!(all.ends_with(b"Hello, World!"), "{all:?}");
}
