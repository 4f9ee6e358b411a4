//! Calls never silently run twice: after a connection failure the engine
//! sends a request again only if it never reached the server, or if the
//! call is idempotent.
//!
//! The servers here are raw TCP servers on 127.0.0.1 that read one whole
//! request per connection, count it, and reset the connection (`SO_LINGER`
//! 0, so the client sees an RST) without answering: every request that
//! reached a server is counted, so the count is how often it would have
//! run.

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use fibrpc::channel::{retryable, RequestSent};
use fibrpc::http::{HttpChannel, Method, Request};
use fibrpc::{errno, Channel, ChannelOptions, ConnectionType, Controller, IOBuf, RpcError};

const SERVICE: &str = "example.EchoService";

/// No server thread outlives this.
const SERVER_LIFETIME: Duration = Duration::from_secs(30);

/// Which requests a [`Resetter`] reads.
#[derive(Clone, Copy)]
enum Wire {
    BaiduStd,
    Http,
}

/// A server that counts each request it reads, then resets its
/// connection. Stops when dropped.
struct Resetter {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Drop for Resetter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Resetter {
    fn start(wire: Wire) -> Resetter {
        Self::start_with(wire, None)
    }

    /// `first`: the first connection is handed to the test instead.
    fn start_with(wire: Wire, first: Option<mpsc::Sender<TcpStream>>) -> Resetter {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, stopped) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut first = first;
            let until = Instant::now() + SERVER_LIFETIME;
            while !stopped.load(Ordering::SeqCst) && Instant::now() < until {
                let s = match listener.accept() {
                    Ok((s, _)) => s,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                    Err(e) => panic!("accept: {e}"),
                };
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                if let Some(tx) = first.take() {
                    tx.send(s).unwrap();
                    continue;
                }
                let mut s = s;
                if read_request(&mut s, wire) {
                    count.fetch_add(1, Ordering::SeqCst);
                }
                reset(s);
            }
        });
        Resetter {
            addr,
            requests,
            stop,
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Closes `s` with an RST rather than a FIN.
fn reset(s: TcpStream) {
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
}

/// Reads one whole request; false if the peer went away first.
fn read_request(s: &mut TcpStream, wire: Wire) -> bool {
    match wire {
        Wire::BaiduStd => {
            // "PRPC", body size, meta size; the body follows.
            let mut head = [0u8; 12];
            if s.read_exact(&mut head).is_err() || &head[..4] != b"PRPC" {
                return false;
            }
            let body = u32::from_be_bytes(head[4..8].try_into().unwrap()) as u64;
            std::io::copy(&mut s.take(body), &mut std::io::sink()).ok() == Some(body)
        }
        Wire::Http => {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if head.len() > 64 << 10 || s.read_exact(&mut byte).is_err() {
                    return false;
                }
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
            let body: u64 = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            std::io::copy(&mut s.take(body), &mut std::io::sink()).ok() == Some(body)
        }
    }
}

fn options() -> ChannelOptions {
    ChannelOptions {
        max_retry: 3,
        timeout: Some(Duration::from_secs(10)),
        connection_type: ConnectionType::Single,
        ..Default::default()
    }
}

fn call(ch: &Channel, cntl: &mut Controller) -> RpcError {
    ch.call_raw(SERVICE, "Echo", cntl, IOBuf::from(&b"payload"[..]))
        .unwrap_err()
}

/// The error of a call whose request reached the server before the
/// connection broke, and that was therefore not sent again.
fn assert_not_retried(cntl: &Controller, e: &RpcError) {
    assert_eq!(e.code, errno::EFAILEDSOCKET, "{e}");
    assert!(e.text.contains("not idempotent"), "says why: {e}");
    assert_eq!(cntl.retried_count(), 0, "{e}");
    assert_eq!(cntl.attempt_errors().len(), 1, "{e}");
}

#[test]
fn a_call_that_reached_the_server_runs_once() {
    let server = Resetter::start(Wire::BaiduStd);
    let ch = Channel::new(server.addr, options()).unwrap();
    let mut cntl = Controller::new();
    let e = call(&ch, &mut cntl);
    assert_eq!(server.requests(), 1, "the server saw it once");
    assert_not_retried(&cntl, &e);
    // The rule, for the error of that attempt.
    let broken = &cntl.attempt_errors()[0];
    assert!(!retryable(broken, RequestSent::Maybe, false));
    assert!(retryable(broken, RequestSent::Maybe, true));
    assert!(retryable(broken, RequestSent::No, false));
}

#[test]
fn an_idempotent_call_is_retried_after_it_reached_the_server() {
    let server = Resetter::start(Wire::BaiduStd);
    let ch = Channel::new(server.addr, options()).unwrap();
    let mut cntl = Controller::new();
    cntl.set_idempotent(true);
    let e = call(&ch, &mut cntl);
    assert_eq!(e.code, errno::EFAILEDSOCKET, "{e}");
    assert_eq!(cntl.retried_count(), 3, "{e}");
    assert_eq!(server.requests(), 4, "the first attempt and 3 retries");
    assert!(!e.text.contains("not idempotent"), "{e}");

    // The same for every call of a channel that says so, unless a call
    // says otherwise.
    let server = Resetter::start(Wire::BaiduStd);
    let ch = Channel::new(
        server.addr,
        ChannelOptions {
            idempotent: Some(true),
            ..options()
        },
    )
    .unwrap();
    let mut cntl = Controller::new();
    call(&ch, &mut cntl);
    assert_eq!(cntl.retried_count(), 3);
    assert_eq!(server.requests(), 4);
    let mut cntl = Controller::new();
    cntl.set_idempotent(false);
    let e = call(&ch, &mut cntl);
    assert_eq!(server.requests(), 5, "once more, not four times");
    assert_not_retried(&cntl, &e);
}

#[test]
fn an_asynchronous_call_in_flight_runs_once() {
    let server = Resetter::start(Wire::BaiduStd);
    let ch = Channel::new(server.addr, options()).unwrap();
    // Connected first, so the call goes out at once with no fiber held
    // and its completion applies the retry rule.
    ch.engine().connect_now().unwrap();
    let (tx, rx) = mpsc::channel();
    ch.call_raw_async(
        SERVICE,
        "Echo",
        Controller::new(),
        IOBuf::from(&b"payload"[..]),
        move |cntl, r| tx.send((cntl, r)).unwrap(),
    );
    let (cntl, r) = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(server.requests(), 1);
    assert_not_retried(&cntl, &r.unwrap_err());
}

#[test]
fn a_refused_connection_is_retried_for_any_call() {
    // Bound, then closed: nothing listens there.
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let ch = Channel::new(dead, options()).unwrap();
    let mut cntl = Controller::new();
    cntl.set_idempotent(false);
    let e = call(&ch, &mut cntl);
    assert_eq!(e.code, libc::ECONNREFUSED, "{e}");
    assert_eq!(cntl.retried_count(), 3, "{e}");
    assert!(cntl
        .attempt_errors()
        .iter()
        .all(|a| a.code == libc::ECONNREFUSED));

    let http = HttpChannel::new(&dead.to_string(), options()).unwrap();
    let mut cntl = Controller::new();
    let post = Request::post("/pay").body(IOBuf::from("1")).unwrap();
    let e = http.request(&mut cntl, post).unwrap_err();
    assert_eq!(e.code, libc::ECONNREFUSED, "{e}");
    assert_eq!(cntl.retried_count(), 3, "a POST that never left: {e}");
}

#[test]
fn http_post_runs_once_and_get_is_retried() {
    let server = Resetter::start(Wire::Http);
    let ch = HttpChannel::new(&server.addr.to_string(), options()).unwrap();
    let e = ch.post("/pay", "text/plain", "1").unwrap_err();
    assert_eq!(server.requests(), 1, "POST: {e}");
    assert!(e.text.contains("not idempotent"), "{e}");

    let before = server.requests();
    let mut cntl = Controller::new();
    let get = Request::get("/balance").body(IOBuf::new()).unwrap();
    let e = ch.request(&mut cntl, get).unwrap_err();
    assert_eq!(cntl.retried_count(), 3, "GET: {e}");
    assert_eq!(server.requests() - before, 4, "GET: {e}");

    // The caller's word beats the method's.
    for (method, idempotent, runs) in [(Method::POST, true, 4), (Method::PUT, false, 1)] {
        let before = server.requests();
        let mut cntl = Controller::new();
        cntl.set_idempotent(idempotent);
        let req = Request::builder()
            .method(method.clone())
            .uri("/x")
            .body(IOBuf::from("1"))
            .unwrap();
        let e = ch.request(&mut cntl, req).unwrap_err();
        assert_eq!(server.requests() - before, runs, "{method}: {e}");
    }
}

/// A request still queued behind another when the connection fails never
/// reached the server: it is sent again although the call is not
/// idempotent, while the request partly written before it is not.
#[test]
fn a_request_queued_unwritten_when_the_connection_fails_is_retried() {
    let (tx, first) = mpsc::channel();
    let server = Resetter::start_with(Wire::BaiduStd, Some(tx));
    let ch = Channel::new(server.addr, options()).unwrap();
    ch.engine().connect_now().unwrap();
    // The server holds the first connection and reads nothing of it.
    let held = first.recv_timeout(Duration::from_secs(10)).unwrap();
    let (tx, rx) = mpsc::channel();
    // Far more than the socket buffers hold: the rest waits in the
    // connection's write queue...
    let big = IOBuf::from(vec![7u8; 32 << 20]);
    for (name, payload) in [("big", big), ("small", IOBuf::from(&b"small"[..]))] {
        let tx = tx.clone();
        // ...and this one is queued behind it (the call has returned once
        // it is queued).
        ch.call_raw_async(SERVICE, "Echo", Controller::new(), payload, move |c, r| {
            tx.send((name, c, r)).unwrap()
        });
    }
    // Some of the big request arrived; now the connection breaks.
    let mut one = [0u8; 1];
    assert_eq!(held.peek(&mut one).unwrap(), 1);
    reset(held);
    let mut outcomes = std::collections::HashMap::new();
    for _ in 0..2 {
        let (name, cntl, r) = rx.recv_timeout(Duration::from_secs(20)).unwrap();
        outcomes.insert(name, (cntl, r.unwrap_err()));
    }
    let (cntl, e) = &outcomes["big"];
    assert_not_retried(cntl, e);
    // The small one went out on a new connection, which the server counts
    // and resets: now it may have run, so it stops there.
    let (cntl, e) = &outcomes["small"];
    assert_eq!(cntl.retried_count(), 1, "{e}");
    assert_eq!(cntl.attempt_errors()[0].code, errno::EFAILEDSOCKET, "{e}");
    assert!(e.text.contains("not idempotent"), "{e}");
    assert_eq!(server.requests(), 1, "only the small request, once");
}
