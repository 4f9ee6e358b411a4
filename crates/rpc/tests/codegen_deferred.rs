//! The deferred form `fibrpc-build` generates (`EchoServiceDeferred`,
//! `EchoServiceDeferredServer`) served end to end: handlers answer from
//! plain threads, the generated client stub calls in its three forms
//! (waiting, callback, `Future`), a payload that does not decode is
//! answered `EREQUEST` without the handler. Also fibrpc-build's
//! `greeter.proto` in deferred form (several methods, one named with a
//! Rust keyword).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use fibrpc::server::TypedResponder;
use fibrpc::{errno, Channel, Controller, IOBuf, RpcError, Server, Service};
use fibrpc_example::{
    EchoRequest, EchoResponse, EchoServiceClient, EchoServiceDeferred, EchoServiceDeferredServer,
    ECHO_SERVICE_METHOD_NAMES, ECHO_SERVICE_NAME,
};

/// Echoes from a new plain thread, once the handler has returned.
/// The message "fail" fails the call, "drop" drops the responder; the
/// response echoes the request's log id after a `#`.
#[derive(Default)]
struct ThreadEcho {
    calls: AtomicUsize,
    /// Answers sent from the handler's threads.
    answered: Arc<AtomicUsize>,
}

impl EchoServiceDeferred for ThreadEcho {
    fn echo(&self, request: EchoRequest, done: TypedResponder<EchoResponse>) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let log_id = done.controller().log_id();
        let answered = self.answered.clone();
        let (returned, handler_returned) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            // Answers only once the handler is at its end (it drops `returned` last).
            let _ = handler_returned.recv();
            answered.fetch_add(1, Ordering::Relaxed);
            match request.message.as_str() {
                "fail" => done.send(Err(RpcError::new(errno::EINTERNAL, "asked to fail"))),
                "drop" => drop(done),
                message => done.send(Ok(EchoResponse {
                    message: format!("{message}#{log_id}"),
                })),
            }
        });
        // The handler's last act: wakes the thread.
        drop(returned);
    }
}

fn serve(service: impl Service) -> (Server, SocketAddr) {
    let mut server = Server::new(Default::default());
    server.add_service(service).unwrap();
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();
    (server, addr)
}

fn client(addr: SocketAddr) -> EchoServiceClient {
    EchoServiceClient::new(Channel::new(addr, Default::default()).unwrap())
}

fn req(message: &str) -> EchoRequest {
    EchoRequest {
        message: message.into(),
    }
}

fn log_id(id: u64) -> Controller {
    let mut cntl = Controller::new();
    cntl.set_log_id(id);
    cntl.set_timeout(Duration::from_secs(10));
    cntl
}

#[test]
fn the_wrapper_defers_every_method() {
    let server = EchoServiceDeferredServer::new(ThreadEcho::default());
    assert_eq!(server.service_name(), ECHO_SERVICE_NAME);
    assert_eq!(server.method_names(), ECHO_SERVICE_METHOD_NAMES);
    assert!(server.descriptor_set().is_some_and(|d| !d.is_empty()));
    assert!(server.defers(0));
    // The synchronous entry is never the way in.
    let err = server
        .call_method(0, &mut Controller::new(), &IOBuf::new())
        .unwrap_err();
    assert_eq!(err.code, errno::EINTERNAL);
    assert!(err.text.contains("deferred"), "{err}");
    assert_eq!(server.get_ref().calls.load(Ordering::Relaxed), 0);
}

#[test]
fn answers_from_plain_threads_to_every_client_form() {
    let imp = Arc::new(ThreadEcho::default());
    let (_server, addr) = serve(EchoServiceDeferredServer::from_arc(imp.clone()));
    let client = client(addr);

    // Waiting.
    let mut cntl = log_id(1);
    let resp = client.echo(&mut cntl, &req("sync")).unwrap();
    assert_eq!(resp.message, "sync#1");
    assert!(!cntl.failed());

    // Callback.
    let (tx, rx) = mpsc::channel();
    client.echo_async(log_id(2), &req("callback"), move |cntl, r| {
        tx.send((cntl.failed(), r)).unwrap();
    });
    let (failed, r) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(!failed);
    assert_eq!(r.unwrap().message, "callback#2");

    // Future.
    let (cntl, r) = fibrpc::fiber::block_on(client.echo_future(log_id(3), &req("future")));
    assert!(!cntl.failed());
    assert_eq!(r.unwrap().message, "future#3");

    // A future outlives the stub and the request it was made from.
    let fut = {
        let request = req("detached");
        EchoServiceClient::new(client.channel().clone()).echo_future(log_id(4), &request)
    };
    let (_, r) = std::thread::spawn(move || fibrpc::fiber::block_on(fut))
        .join()
        .unwrap();
    assert_eq!(r.unwrap().message, "detached#4");

    assert_eq!(imp.calls.load(Ordering::Relaxed), 4);
    assert_eq!(imp.answered.load(Ordering::Relaxed), 4);
}

#[test]
fn handler_errors_and_dropped_responders_reach_the_caller() {
    let (_server, addr) = serve(EchoServiceDeferredServer::new(ThreadEcho::default()));
    let client = client(addr);
    let err = client.echo(&mut log_id(0), &req("fail")).unwrap_err();
    assert_eq!(err.code, errno::EINTERNAL);
    assert_eq!(err.text, "asked to fail");
    let (cntl, r) = fibrpc::fiber::block_on(client.echo_future(log_id(0), &req("drop")));
    let err = r.unwrap_err();
    assert_eq!(err.code, errno::EINTERNAL);
    assert!(err.text.contains("dropped its responder"), "{err}");
    assert!(cntl.failed());
}

#[test]
fn bad_payload_is_erequest_and_skips_the_handler() {
    let imp = Arc::new(ThreadEcho::default());
    let (_server, addr) = serve(EchoServiceDeferredServer::from_arc(imp.clone()));
    let channel = Channel::new(addr, Default::default()).unwrap();
    let garbage: &[&[u8]] = &[
        // Field 1, length 5, but one byte follows.
        &[0x0a, 0x05, b'h'],
        // A varint that never ends.
        &[0xff],
        // Field 1 with wire type 7, which does not exist.
        &[0x0f],
    ];
    for bytes in garbage {
        let mut payload = IOBuf::new();
        payload.append(bytes);
        let err = channel
            .call_raw(ECHO_SERVICE_NAME, "Echo", &mut log_id(0), payload)
            .unwrap_err();
        assert_eq!(err.code, errno::EREQUEST, "{bytes:?}: {err}");
    }
    assert_eq!(imp.calls.load(Ordering::Relaxed), 0);
    // The connection and the service are still good.
    let resp = client(addr).echo(&mut log_id(9), &req("after")).unwrap();
    assert_eq!(resp.message, "after#9");
}

/// fibrpc-build's `tests/protos/greeter.proto`, built by `build.rs` with
/// every form. Private here, so the parts no test uses would warn.
#[allow(dead_code)]
mod greeter {
    include!(concat!(env!("OUT_DIR"), "/codegen_test/test.greeter.rs"));
}

/// Answers each method from a new plain thread.
struct DeferredGreeter;

impl greeter::GreeterDeferred for DeferredGreeter {
    fn say_hello(&self, request: greeter::HelloRequest, done: TypedResponder<greeter::HelloReply>) {
        std::thread::spawn(move || {
            done.send(Ok(greeter::HelloReply {
                text: format!("hello {}", request.name),
            }))
        });
    }

    fn say_goodbye(
        &self,
        request: greeter::HelloRequest,
        done: TypedResponder<greeter::HelloReply>,
    ) {
        std::thread::spawn(move || {
            done.send(Ok(greeter::HelloReply {
                text: format!("goodbye {}", request.name),
            }))
        });
    }

    fn r#match(&self, request: greeter::HelloRequest, done: TypedResponder<greeter::HelloReply>) {
        std::thread::spawn(move || done.send(Ok(greeter::HelloReply { text: request.name })));
    }
}

#[test]
fn multi_method_deferred_service_dispatches_by_name() {
    let server = greeter::GreeterDeferredServer::new(DeferredGreeter);
    assert_eq!(server.service_name(), "test.greeter.Greeter");
    assert!((0..3).all(|m| server.defers(m)));
    let (_server, addr) = serve(server);
    let client = greeter::GreeterClient::new(Channel::new(addr, Default::default()).unwrap());
    let request = greeter::HelloRequest { name: "bob".into() };
    let hello = client.say_hello(&mut Controller::new(), &request).unwrap();
    assert_eq!(hello.text, "hello bob");
    let (_, goodbye) =
        fibrpc::fiber::block_on(client.say_goodbye_future(Controller::new(), &request));
    assert_eq!(goodbye.unwrap().text, "goodbye bob");
    let (_, matched) = fibrpc::fiber::block_on(client.match_future(Controller::new(), &request));
    assert_eq!(matched.unwrap().text, "bob");
}
