//! The error model: an application's error chooses its HTTP status; an
//! error answered by the server is never retried, whatever its code; and
//! a failed call's error keeps the history of its attempts.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use fibrpc::{errno, Channel, ChannelOptions, Controller, IOBuf, RpcError, Server, Service};
use fibrpc::{ConnectionType, ServerOptions};

const SERVICE: &str = "test.Errors";

/// Every method fails its own way.
#[derive(Default)]
struct Errors {
    forwarded: Arc<AtomicUsize>,
}

impl Service for Errors {
    fn service_name(&self) -> &'static str {
        SERVICE
    }
    fn method_names(&self) -> &'static [&'static str] {
        &["NotFound", "Teapot", "Plain", "Forward"]
    }
    fn call_method(&self, method: usize, _: &mut Controller, _: &IOBuf) -> Result<IOBuf, RpcError> {
        match method {
            0 => Err(RpcError::new(3001, "no such user").with_http_status(404)),
            1 => Err(RpcError::new(3002, "short and stout").with_http_status(418)),
            2 => Err(RpcError::new(3003, "plain failure")),
            _ => {
                self.forwarded.fetch_add(1, Ordering::SeqCst);
                // A downstream call failed; the handler forwards it with `?`.
                let downstream: Result<(), std::io::Error> =
                    Err(std::io::Error::from_raw_os_error(libc::ECONNREFUSED));
                downstream?;
                Ok(IOBuf::new())
            }
        }
    }
}

fn start() -> (Server, Arc<AtomicUsize>) {
    let errors = Errors::default();
    let forwarded = errors.forwarded.clone();
    let mut server = Server::new(ServerOptions::default());
    server.add_service(errors).unwrap();
    server.start("127.0.0.1:0").unwrap();
    (server, forwarded)
}

/// POSTs an empty protobuf request to `/{SERVICE}/{method}`; returns the
/// status, the `x-bd-error-code` header and the body.
fn post(addr: SocketAddr, method: &str) -> (u16, String, String) {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        c,
        "POST /{SERVICE}/{method} HTTP/1.1\r\nContent-Type: application/proto\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    c.read_to_string(&mut reply).unwrap();
    let status = reply[9..12].parse().unwrap();
    let code = reply
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("x-bd-error-code")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    let body = reply.split_once("\r\n\r\n").map_or("", |b| b.1).to_string();
    (status, code, body)
}

#[test]
fn a_handler_chooses_the_http_status_of_its_error() {
    let (server, _) = start();
    let addr = server.listen_addr().unwrap();
    let (status, code, body) = post(addr, "NotFound");
    assert_eq!((status, code.as_str()), (404, "3001"), "{body}");
    assert!(body.contains("no such user"), "{body}");
    let (status, code, _) = post(addr, "Teapot");
    assert_eq!((status, code.as_str()), (418, "3002"));
    // Without a choice, an application code is a server error, as in bRPC.
    let (status, code, _) = post(addr, "Plain");
    assert_eq!((status, code.as_str()), (500, "3003"));
    // baidu_std carries the code and the text; the status stays on this side.
    let e = RpcError::new(3001, "x").with_http_status(404);
    assert_eq!(e.http_status(), Some(404));
    assert_eq!(
        RpcError::new(3001, "x").with_http_status(7).http_status(),
        None
    );
    assert!(!errno::is_reserved(3001));
    assert!(errno::is_reserved(errno::EINTERNAL));
}

#[test]
fn a_forwarded_system_error_is_an_answer_not_retried() {
    let (server, forwarded) = start();
    let options = ChannelOptions {
        max_retry: 3,
        timeout: Some(Duration::from_secs(5)),
        ..Default::default()
    };
    let ch = Channel::new(server.listen_addr().unwrap(), options).unwrap();
    let mut cntl = Controller::new();
    let e = ch
        .call_raw(SERVICE, "Forward", &mut cntl, IOBuf::new())
        .unwrap_err();
    assert_eq!(e.code, libc::ECONNREFUSED, "{e}");
    assert!(!e.is_local(), "answered by the server: {e}");
    assert!(!fibrpc::channel::retryable(
        &e,
        fibrpc::channel::RequestSent::No,
        true
    ));
    assert_eq!(forwarded.load(Ordering::SeqCst), 1, "the handler ran once");
    assert_eq!(cntl.retried_count(), 0);
    assert_eq!(cntl.error_code(), libc::ECONNREFUSED);
    assert!(
        cntl.attempt_errors().is_empty(),
        "{:?}",
        cntl.attempt_errors()
    );
}

/// A "server" that takes one connection, reads `requests` requests (the
/// last one is the call in question), then dies: connection and listener
/// gone, so retries find nobody.
fn dies_mid_call(requests: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        let mut buf = [0u8; 256];
        for _ in 0..requests {
            let _ = c.read(&mut buf);
        }
        drop(listener);
        drop(c);
    });
    addr
}

/// Calls marked idempotent: their requests reach the dying server before
/// it dies, and only an idempotent call is sent again after that.
fn options() -> ChannelOptions {
    ChannelOptions {
        idempotent: Some(true),
        max_retry: 3,
        timeout: Some(Duration::from_secs(5)),
        connection_type: ConnectionType::Single,
        ..Default::default()
    }
}

/// The call's error is the last attempt's; its text and the controller
/// keep the first failure and every retry's.
fn check_history(cntl: &Controller, e: &RpcError) {
    let attempts = cntl.attempt_errors();
    assert_eq!(attempts.len(), 4, "{attempts:?}");
    assert!(
        matches!(attempts[0].code, errno::EFAILEDSOCKET | errno::EEOF),
        "the first failure is the broken connection: {attempts:?}"
    );
    for a in &attempts[1..] {
        assert_eq!(a.code, libc::ECONNREFUSED, "{attempts:?}");
    }
    assert!(attempts.iter().all(RpcError::is_local));
    assert_eq!(e.code, libc::ECONNREFUSED);
    assert_eq!(cntl.retried_count(), 3);
    assert!(e.text.contains("earlier attempts: #1 ["), "{e}");
    assert!(e.text.contains(&attempts[0].to_string()), "{e}");
    assert!(e.text.contains("#2 [") && e.text.contains("#3 ["), "{e}");
    assert!(!e.text.contains("#4 ["), "{e}");
    assert_eq!(cntl.error(), Some(e));
}

#[test]
fn a_failed_call_keeps_the_history_of_its_attempts() {
    let ch = Channel::new(dies_mid_call(1), options()).unwrap();
    let mut cntl = Controller::new();
    let e = ch
        .call_raw(SERVICE, "Echo", &mut cntl, IOBuf::from(&b"x"[..]))
        .unwrap_err();
    check_history(&cntl, &e);
    // A new call starts a new history.
    let e = ch
        .call_raw(SERVICE, "Echo", &mut cntl, IOBuf::from(&b"x"[..]))
        .unwrap_err();
    assert_eq!(cntl.attempt_errors().len(), 4, "{e}");
    assert!(cntl
        .attempt_errors()
        .iter()
        .all(|a| a.code == libc::ECONNREFUSED));
}

#[test]
fn an_asynchronous_call_keeps_the_history_too() {
    let ch = Channel::new(dies_mid_call(2), options()).unwrap();
    // A first call that times out leaves the single connection up, so the
    // asynchronous call goes out at once with no fiber held, and its
    // completion retries.
    let mut cntl = Controller::new();
    cntl.set_timeout(Duration::from_millis(100));
    let r = ch.call_raw(SERVICE, "Echo", &mut cntl, IOBuf::from(&b"x"[..]));
    assert_eq!(r.unwrap_err().code, errno::ERPCTIMEDOUT);
    assert_eq!(cntl.attempt_errors().len(), 1);
    let (tx, rx) = mpsc::channel();
    ch.call_raw_async(
        SERVICE,
        "Echo",
        Controller::new(),
        IOBuf::from(&b"x"[..]),
        move |cntl, r| tx.send((cntl, r)).unwrap(),
    );
    let (cntl, r) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    check_history(&cntl, &r.unwrap_err());
}
