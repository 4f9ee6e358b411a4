//! Calls as `Future`s from another executor (tokio), and handlers that
//! answer later (deferred, through a `Responder`).

mod rpc_common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fibrpc::{codec, Controller, IOBuf, Responder, RpcError, Server, Service};
use rpc_common::{req, EchoRequest, EchoResponse, SERVICE};

/// Answers waiting at the gate, with their messages.
type Waiting = Arc<Mutex<Vec<(Responder, String)>>>;

/// An echo whose answers wait until the gate opens: a handler holds
/// nothing but its responder (no fiber) while it waits.
#[derive(Default)]
struct GatedEcho {
    open: Arc<AtomicBool>,
    waiting: Waiting,
}

impl Service for GatedEcho {
    fn service_name(&self) -> &'static str {
        SERVICE
    }
    fn method_names(&self) -> &'static [&'static str] {
        &["Echo"]
    }
    fn call_method(&self, _: usize, _: &mut Controller, _: &IOBuf) -> Result<IOBuf, RpcError> {
        unreachable!("every method defers")
    }
    fn defers(&self, _: usize) -> bool {
        true
    }
    fn call_method_deferred(&self, _: usize, request: IOBuf, done: Responder) {
        let msg = match codec::decode_request::<EchoRequest>(&request) {
            Ok(r) => r.message,
            Err(e) => return done.send(Err(e)),
        };
        let mut waiting = self.waiting.lock().unwrap();
        // Checked under the lock `release` takes: nobody is left behind.
        if self.open.load(Ordering::Acquire) {
            drop(waiting);
            return done.send(Ok(codec::encode(&EchoResponse { message: msg })));
        }
        waiting.push((done, msg));
    }
}

impl GatedEcho {
    /// Opens the gate and answers everyone waiting, from this thread.
    fn release(open: &AtomicBool, waiting: &Mutex<Vec<(Responder, String)>>) {
        let all = {
            let mut w = waiting.lock().unwrap();
            open.store(true, Ordering::Release);
            std::mem::take(&mut *w)
        };
        for (done, message) in all {
            done.send(Ok(codec::encode(&EchoResponse { message })));
        }
    }
}

fn start_gated() -> (Server, Arc<AtomicBool>, Waiting) {
    let svc = GatedEcho::default();
    let (open, waiting) = (svc.open.clone(), svc.waiting.clone());
    let mut server = Server::new(Default::default());
    server.add_service(svc).unwrap();
    server.start("127.0.0.1:0").unwrap();
    (server, open, waiting)
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn ten_thousand_deferred_requests_hold_no_fibers_and_all_are_answered() {
    const N: usize = 10_000;
    let (server, open, waiting) = start_gated();
    let addr = server.listen_addr().unwrap();
    let options = fibrpc::ChannelOptions {
        timeout: Some(Duration::from_secs(60)),
        ..Default::default()
    };
    let ch = fibrpc::Channel::new(addr, options).unwrap();
    let answered = Arc::new(AtomicUsize::new(0));
    // Connect first, so that every asynchronous call finds the connection
    // and holds no fiber while in flight. The warm-up call waits at the
    // gate with the others; waiting for it to arrive (rather than giving
    // it a short timeout) keeps the test independent of the machine's load.
    let warm_up_answered = answered.clone();
    ch.call_async(
        SERVICE,
        "Echo",
        Controller::new(),
        &req("warm-up"),
        move |_, r: Result<EchoResponse, RpcError>| {
            assert_eq!(r.unwrap().message, "warm-up");
            warm_up_answered.fetch_add(1, Ordering::Relaxed);
        },
    );
    wait_until("the warm-up call to reach its handler", || {
        waiting.lock().unwrap().len() == 1
    });
    for i in 0..N {
        let answered = answered.clone();
        ch.call_async(
            SERVICE,
            "Echo",
            Controller::new(),
            &req(&i.to_string()),
            move |_, r: Result<EchoResponse, RpcError>| {
                assert_eq!(r.unwrap().message, i.to_string());
                answered.fetch_add(1, Ordering::Relaxed);
            },
        );
    }
    wait_until("every request to reach its handler", || {
        waiting.lock().unwrap().len() == N + 1
    });
    // Client and server are in this process: neither the pending calls
    // nor the pending answers hold fibers (the runtime's own, a few
    // readers and acceptors, stay under the bound).
    let alive = fibrpc::fiber::stats().alive();
    assert!(
        alive < 200,
        "{alive} fibers alive with {N} deferred requests"
    );
    assert_eq!(answered.load(Ordering::Relaxed), 0);
    // Released from a plain thread.
    let (o, w) = (open.clone(), waiting.clone());
    std::thread::spawn(move || GatedEcho::release(&o, &w))
        .join()
        .unwrap();
    wait_until("every answer", || answered.load(Ordering::Relaxed) == N + 1);
    let stats = server.method_stats(SERVICE, "Echo").unwrap();
    assert_eq!(stats.calls as usize, N + 1);
}

#[test]
fn a_dropped_responder_answers_an_error() {
    struct Forgetful;
    impl Service for Forgetful {
        fn service_name(&self) -> &'static str {
            SERVICE
        }
        fn method_names(&self) -> &'static [&'static str] {
            &["Echo"]
        }
        fn call_method(&self, _: usize, _: &mut Controller, _: &IOBuf) -> Result<IOBuf, RpcError> {
            unreachable!()
        }
        fn defers(&self, _: usize) -> bool {
            true
        }
        fn call_method_deferred(&self, _: usize, _: IOBuf, done: Responder) {
            drop(done);
        }
    }
    let mut server = Server::new(Default::default());
    server.add_service(Forgetful).unwrap();
    server.start("127.0.0.1:0").unwrap();
    let ch = fibrpc::Channel::new(server.listen_addr().unwrap(), Default::default()).unwrap();
    let e = rpc_common::echo(&ch, &mut Controller::new(), &req("x")).unwrap_err();
    assert_eq!(e.code, fibrpc::errno::EINTERNAL, "{e}");
    assert!(e.text.contains("dropped its responder"), "{e}");
}

#[test]
fn deferred_methods_answer_over_http_too() {
    let (server, open, waiting) = start_gated();
    let addr = server.listen_addr().unwrap();
    let http = fibrpc::http::HttpChannel::new(&addr.to_string(), Default::default()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let body = codec::encode(&req("over http"));
    let mut request = fibrpc::http::Request::post(format!("/{SERVICE}/Echo"))
        .body(body)
        .unwrap();
    request.headers_mut().insert(
        fibrpc::http::header::CONTENT_TYPE,
        fibrpc::http::HeaderValue::from_static("application/proto"),
    );
    http.request_async(Controller::new(), request, move |_, r| tx.send(r).unwrap());
    wait_until("the request to wait", || waiting.lock().unwrap().len() == 1);
    GatedEcho::release(&open, &waiting);
    let resp = rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    let out: EchoResponse = codec::decode_response(resp.body()).unwrap();
    assert_eq!(out.message, "over http");
}

/// 1,000 calls at once from a current-thread tokio runtime. The handlers
/// wait until a tokio task opens the gate, which it can do only after
/// every call was issued: had issuing or polling a call blocked tokio's
/// only thread, this would never finish.
#[tokio::test(flavor = "current_thread")]
async fn a_thousand_concurrent_calls_from_tokio_without_blocking_its_thread() {
    const N: usize = 1000;
    let (server, open, waiting) = start_gated();
    let addr = server.listen_addr().unwrap();
    let ch = fibrpc::Channel::new(addr, Default::default()).unwrap();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..N {
        let ch = ch.clone();
        set.spawn(async move {
            let mut cntl = Controller::new();
            cntl.set_timeout(Duration::from_secs(30));
            let (cntl, r) = ch
                .call_future::<_, EchoResponse>(SERVICE, "Echo", cntl, &req(&i.to_string()))
                .await;
            assert!(!cntl.failed());
            assert_eq!(r.unwrap().message, i.to_string());
        });
    }
    // Every call reaches its handler while tokio's thread keeps running
    // this task.
    let t = Instant::now();
    while waiting.lock().unwrap().len() < N {
        assert!(t.elapsed() < Duration::from_secs(30), "calls never arrived");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    GatedEcho::release(&open, &waiting);
    let mut done = 0;
    while let Some(r) = set.join_next().await {
        r.unwrap();
        done += 1;
    }
    assert_eq!(done, N);

    // HttpChannel has the same form.
    let http = fibrpc::http::HttpChannel::new(&addr.to_string(), Default::default()).unwrap();
    let get = fibrpc::http::Request::get("/health")
        .body(IOBuf::new())
        .unwrap();
    let (_, r) = http.request_future(Controller::new(), get).await;
    assert_eq!(r.unwrap().body().to_vec(), b"OK\n");
}
