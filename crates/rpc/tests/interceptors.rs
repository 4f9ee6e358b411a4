//! Interceptors on both sides: the server's around every method (over
//! baidu_std and HTTP/JSON) and every user HTTP handler (HTTP/1.1 and
//! HTTP/2, with curl), not around the console; the channel's around
//! every attempt; their order, refusals and the HTTP statuses they
//! give, and metadata a client interceptor adds that the server sees.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fibrpc::http::{HttpChannel, HttpContext, Request, StatusCode};
use fibrpc::interceptor::{CallInfo, ClientInterceptor, ServerInterceptor};
use fibrpc::{errno, Channel, ChannelOptions, Controller, IOBuf, RpcError, Server, ServerOptions};
use fibrpc_example::{
    EchoRequest, EchoResponse, EchoService, EchoServiceClient, EchoServiceServer,
};

/// What happened, in order.
type Log = Arc<Mutex<Vec<String>>>;

fn entries(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

/// Echoes; `fail` fails with EINTERNAL. Logs "handler", and answers with
/// the request's `x-trace` user field and log id when asked for `meta`.
struct Echo {
    log: Log,
    calls: Arc<AtomicUsize>,
}

impl EchoService for Echo {
    fn echo(&self, cntl: &mut Controller, req: EchoRequest) -> Result<EchoResponse, RpcError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.log.lock().unwrap().push("handler".into());
        match req.message.as_str() {
            "fail" => Err(RpcError::new(errno::EINTERNAL, "asked to fail")),
            "meta" => Ok(EchoResponse {
                message: format!(
                    "trace={} log_id={} attachment={}",
                    cntl.request_user_field("x-trace").unwrap_or("-"),
                    cntl.log_id(),
                    String::from_utf8_lossy(&cntl.request_attachment().to_vec()),
                ),
            }),
            m => Ok(EchoResponse { message: m.into() }),
        }
    }
}

/// Logs `NAME.before SERVICE.METHOD` and `NAME.after CODE`; refuses
/// every call with the code `refuse`, if set.
struct Recorder {
    name: &'static str,
    log: Log,
    refuse: Option<i32>,
}

impl ServerInterceptor for Recorder {
    fn before(&self, call: &CallInfo<'_>, cntl: &mut Controller) -> Result<(), RpcError> {
        assert!(cntl.remote_side().is_some() && call.peer.is_some());
        self.log.lock().unwrap().push(format!(
            "{}.before {}.{}",
            self.name, call.service, call.method
        ));
        match self.refuse {
            Some(code) => Err(RpcError::new(code, format!("{} says no", self.name))),
            None => Ok(()),
        }
    }

    /// Logs the code, and the HTTP status an error carries (`1010/404`).
    fn after(&self, _call: &CallInfo<'_>, _cntl: &mut Controller, r: Result<&IOBuf, &RpcError>) {
        let code = match r {
            Ok(_) => "0".to_string(),
            Err(e) => match e.http_status() {
                Some(s) => format!("{}/{s}", e.code),
                None => e.code.to_string(),
            },
        };
        self.log
            .lock()
            .unwrap()
            .push(format!("{}.after {code}", self.name));
    }
}

fn recorder(name: &'static str, log: &Log, refuse: Option<i32>) -> Arc<dyn ServerInterceptor> {
    Arc::new(Recorder {
        name,
        log: log.clone(),
        refuse,
    })
}

fn server(
    interceptors: Vec<Arc<dyn ServerInterceptor>>,
    log: &Log,
) -> (Server, SocketAddr, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut server = Server::new(ServerOptions {
        interceptors,
        ..ServerOptions::default()
    });
    server
        .add_service(EchoServiceServer::new(Echo {
            log: log.clone(),
            calls: calls.clone(),
        }))
        .unwrap();
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();
    (server, addr, calls)
}

fn options() -> ChannelOptions {
    ChannelOptions {
        timeout: Some(Duration::from_secs(5)),
        ..ChannelOptions::default()
    }
}

fn echo(channel: &Channel, cntl: &mut Controller, message: &str) -> Result<String, RpcError> {
    let client = EchoServiceClient::new(channel.clone());
    let req = EchoRequest {
        message: message.into(),
    };
    client.echo(cntl, &req).map(|r| r.message)
}

#[test]
fn server_interceptors_run_in_order_around_the_handler() {
    let log = Log::default();
    let list = vec![recorder("a", &log, None), recorder("b", &log, None)];
    let (_s, addr, _) = server(list, &log);
    let ch = Channel::new(addr, options()).unwrap();
    assert_eq!(echo(&ch, &mut Controller::new(), "hi").unwrap(), "hi");
    let want = [
        "a.before example.EchoService.Echo",
        "b.before example.EchoService.Echo",
        "handler",
        "b.after 0",
        "a.after 0",
    ];
    assert_eq!(entries(&log), want);
    // The after hooks see the handler's failure.
    log.lock().unwrap().clear();
    let e = echo(&ch, &mut Controller::new(), "fail").unwrap_err();
    assert_eq!(e.code, errno::EINTERNAL);
    assert_eq!(entries(&log)[3..], ["b.after 2001", "a.after 2001"]);
}

#[test]
fn a_server_interceptor_refuses_with_its_code_over_every_protocol() {
    let log = Log::default();
    let list = vec![
        recorder("a", &log, None),
        recorder("b", &log, Some(libc::EPERM)),
        recorder("c", &log, None),
    ];
    let (_s, addr, calls) = server(list, &log);
    let ch = Channel::new(addr, options()).unwrap();
    let e = echo(&ch, &mut Controller::new(), "hi").unwrap_err();
    assert_eq!(e.code, libc::EPERM, "{e}");
    assert!(e.text.contains("b says no"), "{e}");
    // `c` never ran; only `a` (whose before passed) hears the refusal.
    let want = [
        "a.before example.EchoService.Echo",
        "b.before example.EchoService.Echo",
        "a.after 1",
    ];
    assert_eq!(entries(&log), want);

    // HTTP/JSON reaches the method through the same door.
    log.lock().unwrap().clear();
    let http = HttpChannel::new(&addr.to_string(), options()).unwrap();
    let r = http
        .post(
            "/EchoService/Echo",
            "application/json",
            r#"{"message":"hi"}"#,
        )
        .unwrap();
    assert_eq!(r.headers()["x-bd-error-code"], "1");
    assert_eq!(entries(&log), want);
    assert_eq!(calls.load(Ordering::Relaxed), 0, "the handler never ran");
}

#[test]
fn a_server_interceptor_can_refuse_with_erpcauth() {
    let log = Log::default();
    let (_s, addr, calls) = server(vec![recorder("gate", &log, Some(errno::ERPCAUTH))], &log);
    let e = echo(
        &Channel::new(addr, options()).unwrap(),
        &mut Controller::new(),
        "x",
    )
    .unwrap_err();
    assert_eq!(e.code, errno::ERPCAUTH);
    let http = HttpChannel::new(&addr.to_string(), options()).unwrap();
    let r = http
        .post(
            "/EchoService/Echo",
            "application/json",
            r#"{"message":"x"}"#,
        )
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(calls.load(Ordering::Relaxed), 0);
}

/// Adds `x-trace`, a log id and an attachment before each attempt, and
/// logs the attempts' outcomes.
struct Tracer {
    name: &'static str,
    log: Log,
    refuse: bool,
}

impl ClientInterceptor for Tracer {
    fn before(&self, call: &CallInfo<'_>, cntl: &mut Controller) -> Result<(), RpcError> {
        assert!(call.peer.is_some());
        self.log.lock().unwrap().push(format!(
            "{}.before {} {}",
            self.name, call.service, call.method
        ));
        if self.refuse {
            return Err(RpcError::new(libc::EPERM, "not from this client"));
        }
        cntl.request_user_fields_mut()
            .insert("x-trace".into(), format!("{}-42", self.name));
        cntl.set_log_id(4242);
        cntl.request_attachment_mut().clear();
        cntl.request_attachment_mut().append(b"att");
        Ok(())
    }

    fn after(&self, _call: &CallInfo<'_>, _cntl: &Controller, r: Result<(), &RpcError>) {
        let code = r.err().map_or(0, |e| e.code);
        self.log
            .lock()
            .unwrap()
            .push(format!("{}.after {code}", self.name));
    }
}

fn tracer(name: &'static str, log: &Log, refuse: bool) -> Arc<dyn ClientInterceptor> {
    Arc::new(Tracer {
        name,
        log: log.clone(),
        refuse,
    })
}

fn traced(list: Vec<Arc<dyn ClientInterceptor>>) -> ChannelOptions {
    ChannelOptions {
        interceptors: list,
        ..options()
    }
}

#[test]
fn a_client_interceptor_adds_metadata_the_server_sees() {
    let server_log = Log::default();
    let (_s, addr, _) = server(Vec::new(), &server_log);
    let log = Log::default();
    let ch = Channel::new(addr, traced(vec![tracer("t", &log, false)])).unwrap();
    let got = echo(&ch, &mut Controller::new(), "meta").unwrap();
    assert_eq!(got, "trace=t-42 log_id=4242 attachment=att");
    assert_eq!(
        entries(&log),
        ["t.before example.EchoService Echo", "t.after 0"]
    );

    // The asynchronous path runs them too.
    log.lock().unwrap().clear();
    let (tx, rx) = std::sync::mpsc::channel();
    EchoServiceClient::new(ch.clone()).echo_async(
        Controller::new(),
        &EchoRequest {
            message: "meta".into(),
        },
        move |_, r| tx.send(r.map(|r| r.message)).unwrap(),
    );
    let got = rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
    assert_eq!(got, "trace=t-42 log_id=4242 attachment=att");
    assert_eq!(
        entries(&log),
        ["t.before example.EchoService Echo", "t.after 0"]
    );

    // Over HTTP the user fields are headers.
    log.lock().unwrap().clear();
    let http = HttpChannel::new(&addr.to_string(), traced(vec![tracer("h", &log, false)])).unwrap();
    let r = http
        .post(
            "/EchoService/Echo",
            "application/json",
            r#"{"message":"meta"}"#,
        )
        .unwrap();
    let body = String::from_utf8_lossy(&r.body().to_vec()).into_owned();
    assert!(body.contains("trace=h-42"), "{body}");
    assert_eq!(
        entries(&log),
        ["h.before POST /EchoService/Echo", "h.after 0"]
    );
}

#[test]
fn client_interceptors_run_in_order_and_hear_the_outcome() {
    let server_log = Log::default();
    let (_s, addr, _) = server(Vec::new(), &server_log);
    let log = Log::default();
    let list = vec![tracer("a", &log, false), tracer("b", &log, false)];
    let ch = Channel::new(addr, traced(list)).unwrap();
    let e = echo(&ch, &mut Controller::new(), "fail").unwrap_err();
    assert_eq!(e.code, errno::EINTERNAL);
    assert_eq!(
        entries(&log),
        [
            "a.before example.EchoService Echo",
            "b.before example.EchoService Echo",
            "b.after 2001",
            "a.after 2001",
        ]
    );
}

#[test]
fn a_client_interceptor_refuses_the_call_before_anything_is_sent() {
    let server_log = Log::default();
    let (_s, addr, calls) = server(Vec::new(), &server_log);
    let log = Log::default();
    let list = vec![tracer("a", &log, false), tracer("no", &log, true)];
    let ch = Channel::new(addr, traced(list)).unwrap();
    let mut cntl = Controller::new();
    let e = echo(&ch, &mut cntl, "hi").unwrap_err();
    assert_eq!(e.code, libc::EPERM);
    assert_eq!(cntl.retried_count(), 0, "a refusal is not retried");
    assert_eq!(
        entries(&log),
        [
            "a.before example.EchoService Echo",
            "no.before example.EchoService Echo",
            "a.after 1",
        ]
    );
    assert_eq!(calls.load(Ordering::Relaxed), 0);
}

#[test]
fn a_retry_runs_the_client_interceptors_again() {
    // Nothing listens here: each attempt's connect is refused.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = dead.local_addr().unwrap();
    drop(dead);
    let log = Log::default();
    let ch = Channel::new(
        addr,
        ChannelOptions {
            max_retry: 2,
            ..traced(vec![tracer("t", &log, false)])
        },
    )
    .unwrap();
    let mut cntl = Controller::new();
    let e = echo(&ch, &mut cntl, "hi").unwrap_err();
    assert_eq!(cntl.retried_count(), 2, "{e}");
    let befores = entries(&log)
        .iter()
        .filter(|e| e.starts_with("t.before"))
        .count();
    let afters = entries(&log)
        .iter()
        .filter(|e| e.starts_with("t.after") && !e.ends_with(" 0"))
        .count();
    assert_eq!((befores, afters), (3, 3), "{:?}", entries(&log));
}

/// Answers from another thread after 20 ms, logging "answered".
struct Later(Log);

impl fibrpc_example::EchoServiceDeferred for Later {
    fn echo(&self, req: EchoRequest, done: fibrpc::server::TypedResponder<EchoResponse>) {
        let log = self.0.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            log.lock().unwrap().push("answered".into());
            done.send(Ok(EchoResponse {
                message: req.message,
            }));
        });
    }
}

#[test]
fn after_hooks_run_when_a_deferred_handler_answers() {
    let log = Log::default();
    let mut server = Server::new(ServerOptions {
        interceptors: vec![recorder("a", &log, None)],
        ..ServerOptions::default()
    });
    server
        .add_service(fibrpc_example::EchoServiceDeferredServer::new(Later(
            log.clone(),
        )))
        .unwrap();
    server.start("127.0.0.1:0").unwrap();
    let ch = Channel::new(server.listen_addr().unwrap(), options()).unwrap();
    assert_eq!(echo(&ch, &mut Controller::new(), "later").unwrap(), "later");
    assert_eq!(
        entries(&log),
        ["a.before example.EchoService.Echo", "answered", "a.after 0"]
    );
}

/// A server with `interceptors`, the echo service, and two HTTP
/// handlers: `/hello` answers "hello", `/gone` 404; both log "handler".
fn http_server(
    interceptors: Vec<Arc<dyn ServerInterceptor>>,
    log: &Log,
) -> (Server, SocketAddr, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut server = Server::new(ServerOptions {
        interceptors,
        ..ServerOptions::default()
    });
    for (path, status) in [("/hello", StatusCode::OK), ("/gone", StatusCode::NOT_FOUND)] {
        let (log, calls) = (log.clone(), calls.clone());
        server
            .add_http_handler(path, move |_: Request<IOBuf>, _: &HttpContext| {
                calls.fetch_add(1, Ordering::Relaxed);
                log.lock().unwrap().push("handler".into());
                fibrpc::http::text(status, "hello")
            })
            .unwrap();
    }
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();
    (server, addr, calls)
}

/// curl over HTTP/2 (prior knowledge): `GET path` with `headers`; the
/// status and the response's headers.
fn curl_h2(addr: SocketAddr, path: &str, headers: &[&str]) -> (u16, String) {
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-sS", "-i", "--http2-prior-knowledge", "--max-time", "10"]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    let out = cmd
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("curl must be installed (apt-get install curl)");
    let reply = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && reply.starts_with("HTTP/2 "),
        "{reply} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (reply[7..10].parse().unwrap(), reply.to_ascii_lowercase())
}

#[test]
fn http_handlers_run_inside_the_interceptors_over_http1_and_h2() {
    let log = Log::default();
    let list = vec![recorder("a", &log, None), recorder("b", &log, None)];
    let (_s, addr, _) = http_server(list, &log);
    let want = [
        "a.before GET./hello",
        "b.before GET./hello",
        "handler",
        "b.after 0",
        "a.after 0",
    ];
    let http = HttpChannel::new(&addr.to_string(), options()).unwrap();
    let r = http.get("/hello").unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.body().to_vec(), b"hello");
    assert_eq!(entries(&log), want);

    log.lock().unwrap().clear();
    let (status, reply) = curl_h2(addr, "/hello", &[]);
    assert_eq!(status, 200, "{reply}");
    assert!(reply.ends_with("hello"), "{reply}");
    assert_eq!(entries(&log), want);

    // A failure status reaches the after hooks as EHTTP with the status.
    log.lock().unwrap().clear();
    assert_eq!(http.get("/gone").unwrap().status(), 404);
    assert_eq!(entries(&log)[3..], ["b.after 1010/404", "a.after 1010/404"]);
}

#[test]
fn a_refused_http_handler_call_gets_the_status_of_the_code() {
    for (code, status) in [
        (errno::ERPCAUTH, 403),
        (errno::ELIMIT, 503),
        (errno::ENOMETHOD, 404),
        (libc::EPERM, 500),
    ] {
        let log = Log::default();
        let list = vec![
            recorder("a", &log, None),
            recorder("gate", &log, Some(code)),
        ];
        let (_s, addr, calls) = http_server(list, &log);
        let http = HttpChannel::new(&addr.to_string(), options()).unwrap();
        let r = http.get("/hello").unwrap();
        assert_eq!(r.status(), status, "code {code}");
        assert_eq!(r.headers()["x-bd-error-code"], code.to_string().as_str());
        let body = String::from_utf8_lossy(&r.body().to_vec()).into_owned();
        assert!(body.contains("gate says no"), "{body}");
        let (h2_status, reply) = curl_h2(addr, "/hello", &[]);
        assert_eq!(h2_status, status, "{reply}");
        assert!(
            reply.contains(&format!("x-bd-error-code: {code}")),
            "{reply}"
        );
        assert_eq!(calls.load(Ordering::Relaxed), 0, "the handler never ran");
        let refused = format!("a.after {code}");
        assert_eq!(
            entries(&log),
            [
                "a.before GET./hello",
                "gate.before GET./hello",
                refused.as_str()
            ]
            .repeat(2)
        );
    }
}

/// Lets a request through only with `x-tenant: acme`, and checks that
/// the controller knows the peer.
struct TenantGate;

impl ServerInterceptor for TenantGate {
    fn before(&self, _call: &CallInfo<'_>, cntl: &mut Controller) -> Result<(), RpcError> {
        assert!(cntl.remote_side().is_some_and(|a| a.ip().is_loopback()));
        match cntl.http_request_headers().get("x-tenant") {
            Some(v) if v == "acme" => Ok(()),
            _ => Err(RpcError::new(errno::ERPCAUTH, "unknown tenant")),
        }
    }
}

#[test]
fn an_interceptor_reads_the_http_handler_request_headers() {
    let log = Log::default();
    let (_s, addr, calls) = http_server(vec![Arc::new(TenantGate)], &log);
    let http = HttpChannel::new(&addr.to_string(), options()).unwrap();
    assert_eq!(http.get("/hello").unwrap().status(), 403);
    let req = Request::get("/hello")
        .header("x-tenant", "acme")
        .body(IOBuf::new())
        .unwrap();
    let r = http.request(&mut Controller::new(), req).unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(curl_h2(addr, "/hello", &["x-tenant: acme"]).0, 200);
    assert_eq!(curl_h2(addr, "/hello", &["x-tenant: other"]).0, 403);
    assert_eq!(calls.load(Ordering::Relaxed), 2);
}

#[test]
fn the_console_is_not_intercepted() {
    let log = Log::default();
    let (_s, addr, _) = http_server(vec![recorder("no", &log, Some(libc::EPERM))], &log);
    let http = HttpChannel::new(&addr.to_string(), options()).unwrap();
    for page in ["/health", "/status", "/vars"] {
        assert_eq!(http.get(page).unwrap().status(), 200, "{page}");
        assert_eq!(curl_h2(addr, page, &[]).0, 200, "{page}");
    }
    assert!(entries(&log).is_empty(), "{:?}", entries(&log));
    // The same server's handlers and methods are refused.
    assert_eq!(http.get("/hello").unwrap().status(), 500);
}
