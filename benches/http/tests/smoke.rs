//! Smoke test of the hello servers: each is started on a free port and
//! asked `GET /hello` twice over one keep-alive connection, then for a path
//! it does not serve. Checks the status line, `Content-Length` and body.
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

fn check(exe: &str) {
    let (_server, addr) = start(exe);
    let stream = TcpStream::connect(&addr).expect("connecting");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
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
    let reply = get(&mut stream, "/nope");
    assert!(
        reply.status_line.starts_with("HTTP/1.1 404 "),
        "{exe}: {}",
        reply.status_line
    );
}

#[test]
fn hyper_hello_answers() {
    check(env!("CARGO_BIN_EXE_hyper_hello"));
}

#[test]
fn may_hello_answers() {
    check(env!("CARGO_BIN_EXE_may_hello"));
}
