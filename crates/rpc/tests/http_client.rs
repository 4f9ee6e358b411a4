//! `HttpChannel` against fibrpc's own server and against a server nobody
//! here wrote (Python's `http.server`, which speaks HTTP/1.0 and closes
//! after each response).

mod rpc_common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fibrpc::http::{HttpChannel, HttpContext, Method, Request, Response, StatusCode};
use fibrpc::{ChannelOptions, ConnectionType, Controller, IOBuf, Server, ServerOptions};

fn server() -> Server {
    let mut s = Server::new(ServerOptions::default());
    s.add_http_handler("/echo", |req: Request<IOBuf>, _: &HttpContext| {
        let body = format!(
            "{} {} {}",
            req.method(),
            req.uri(),
            String::from_utf8_lossy(&req.body().to_vec())
        );
        fibrpc::http::text(StatusCode::OK, body)
    })
    .unwrap();
    s.add_http_handler("/big", |_: Request<IOBuf>, _: &HttpContext| {
        fibrpc::http::text(StatusCode::OK, vec![b'x'; 3 << 20])
    })
    .unwrap();
    s.add_http_handler(
        "/slow",
        |_: Request<IOBuf>, _: &HttpContext| -> Response<IOBuf> {
            fibrpc::fiber::sleep(Duration::from_millis(300)).unwrap();
            fibrpc::http::text(StatusCode::OK, "late")
        },
    )
    .unwrap();
    s.start("127.0.0.1:0").unwrap();
    s
}

#[test]
fn get_post_head_and_statuses_against_fibrpc() {
    let s = server();
    let ch = HttpChannel::new(&s.listen_addr().unwrap().to_string(), Default::default()).unwrap();
    let r = ch.get("/echo?x=1").unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.body().to_vec(), b"GET /echo?x=1 ");
    let r = ch.post("/echo", "text/plain", "payload").unwrap();
    assert_eq!(r.body().to_vec(), b"POST /echo payload");
    let r = ch.get("/nope").unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let head = Request::builder()
        .method(Method::HEAD)
        .uri("/big")
        .body(IOBuf::new())
        .unwrap();
    let r = ch.request(&mut Controller::new(), head).unwrap();
    assert_eq!(r.headers()["content-length"], "3145728");
    assert!(r.body().is_empty());
    // The pooled connection is still in sync after the HEAD.
    let r = ch.get("/big").unwrap();
    assert_eq!(r.body().len(), 3 << 20);
    assert_eq!(ch.get("/health").unwrap().body().to_vec(), b"OK\n");
}

#[test]
fn concurrent_requests_use_a_pool_and_short_connections_work() {
    let s = server();
    let addr = s.listen_addr().unwrap().to_string();
    for kind in [ConnectionType::Pooled, ConnectionType::Short] {
        let ch = HttpChannel::new(
            &addr,
            ChannelOptions {
                connection_type: kind,
                ..Default::default()
            },
        )
        .unwrap();
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let ch = ch.clone();
                fibrpc::fiber::spawn(move || {
                    let r = ch.post("/echo", "text/plain", format!("n{i}")).unwrap();
                    assert_eq!(r.body().to_vec(), format!("POST /echo n{i}").into_bytes());
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
}

#[test]
fn timeout_fails_the_request_and_the_channel_recovers() {
    let s = server();
    let ch = HttpChannel::new(&s.listen_addr().unwrap().to_string(), Default::default()).unwrap();
    let mut cntl = Controller::new();
    cntl.set_timeout(Duration::from_millis(50));
    let req = Request::get("/slow").body(IOBuf::new()).unwrap();
    let e = ch.request(&mut cntl, req).unwrap_err();
    assert_eq!(e.code, fibrpc::errno::ERPCTIMEDOUT);
    assert_eq!(ch.get("/echo").unwrap().status(), StatusCode::OK);
}

/// Python's http.server on a free port, serving `dir`.
struct PyServer {
    child: Child,
    port: u16,
}

impl PyServer {
    fn start(dir: &std::path::Path) -> Option<PyServer> {
        let mut child = Command::new("python3")
            .args(["-u", "-c", PY_SERVER])
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take()?)
            .read_line(&mut line)
            .ok()?;
        let port = line.trim().parse().ok()?;
        Some(PyServer { child, port })
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Binds port 0 and prints the port before serving.
const PY_SERVER: &str = "
import http.server, socketserver
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
s = S(('127.0.0.1', 0), http.server.SimpleHTTPRequestHandler)
print(s.server_address[1], flush=True)
s.serve_forever()
";

#[test]
fn against_pythons_http_server() {
    let dir = std::env::temp_dir().join(format!("fibrpc-http-client-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("data.bin"), &content).unwrap();
    let Some(py) = PyServer::start(&dir) else {
        panic!("python3 is needed for this test (it is on every machine here)");
    };
    let ch = HttpChannel::new(&format!("127.0.0.1:{}", py.port), Default::default()).unwrap();
    // HTTP/1.0 answers close the connection: each request needs a new one,
    // which the channel must notice rather than reuse a closed socket.
    for _ in 0..3 {
        let r = ch.get("/data.bin").unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.body().to_vec(), content);
    }
    let r = ch.get("/missing").unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let _ = std::fs::remove_dir_all(&dir);
}
