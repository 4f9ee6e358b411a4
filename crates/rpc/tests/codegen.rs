//! The code `fibrpc-build` generates for `proto/echo.proto`
//! (`fibrpc_example`): the server wrapper dispatches, decodes and
//! encodes as `fibrpc::Service` promises; the client stub calls a served
//! wrapper in its three forms (waiting, callback, `Future`). The deferred
//! form is in `tests/codegen_deferred.rs`.
//! Also `fibrpc-build`'s `greeter.proto` (several methods, one named
//! with a Rust keyword), generated for outside fibrpc (`::fibrpc` paths).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fibrpc::{codec, errno, Controller, IOBuf, RpcError, Service};
use fibrpc_example::{
    EchoRequest, EchoResponse, EchoService, EchoServiceClient, EchoServiceServer,
    ECHO_SERVICE_METHOD_NAMES, ECHO_SERVICE_NAME,
};

/// Echoes, counting calls; the message "fail" fails the call.
#[derive(Default)]
struct Echo {
    calls: AtomicUsize,
}

impl EchoService for Echo {
    fn echo(&self, cntl: &mut Controller, request: EchoRequest) -> Result<EchoResponse, RpcError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if request.message == "fail" {
            return Err(RpcError::new(errno::EINTERNAL, "asked to fail"));
        }
        assert!(!cntl.failed());
        Ok(EchoResponse {
            message: request.message,
        })
    }
}

fn iobuf(bytes: &[u8]) -> IOBuf {
    let mut buf = IOBuf::new();
    buf.append(bytes);
    buf
}

#[test]
fn names_match_the_proto() {
    let server = EchoServiceServer::new(Echo::default());
    assert_eq!(server.service_name(), "example.EchoService");
    assert_eq!(server.method_names(), &["Echo"]);
    assert_eq!(ECHO_SERVICE_NAME, "example.EchoService");
    assert_eq!(ECHO_SERVICE_METHOD_NAMES, &["Echo"]);
}

#[test]
fn call_method_decodes_calls_and_encodes() {
    let server = EchoServiceServer::new(Echo::default());
    let request = codec::encode(&EchoRequest {
        message: "hi".into(),
    });
    let response = server
        .call_method(0, &mut Controller::new(), &request)
        .unwrap();
    let response: EchoResponse = codec::decode_response(&response).unwrap();
    assert_eq!(response.message, "hi");
    assert_eq!(server.get_ref().calls.load(Ordering::Relaxed), 1);
}

#[test]
fn works_as_a_dyn_service_sharing_the_impl() {
    let imp = Arc::new(Echo::default());
    let service: Box<dyn Service> = Box::new(EchoServiceServer::from_arc(imp.clone()));
    let request = codec::encode(&EchoRequest {
        message: "shared".into(),
    });
    service
        .call_method(0, &mut Controller::new(), &request)
        .unwrap();
    assert_eq!(imp.calls.load(Ordering::Relaxed), 1);
}

#[test]
fn handler_error_passes_through() {
    let server = EchoServiceServer::new(Echo::default());
    let request = codec::encode(&EchoRequest {
        message: "fail".into(),
    });
    let err = server
        .call_method(0, &mut Controller::new(), &request)
        .unwrap_err();
    assert_eq!(err.code, errno::EINTERNAL);
    assert_eq!(err.text, "asked to fail");
}

#[test]
fn bad_payload_is_erequest_and_skips_the_handler() {
    let server = EchoServiceServer::new(Echo::default());
    let garbage: &[&[u8]] = &[
        // Field 1, length 5, but one byte follows.
        &[0x0a, 0x05, b'h'],
        // A varint that never ends.
        &[0xff],
        // Field 1 with wire type 7, which does not exist.
        &[0x0f],
    ];
    for bytes in garbage {
        let err = server
            .call_method(0, &mut Controller::new(), &iobuf(bytes))
            .unwrap_err();
        assert_eq!(err.code, errno::EREQUEST, "{bytes:?}: {err}");
    }
    assert_eq!(server.get_ref().calls.load(Ordering::Relaxed), 0);
}

/// prost does not check proto2 `required`: an empty payload is an
/// `EchoRequest` with an empty message, not an EREQUEST (bRPC's C++ would
/// reject it). Pinned here so a change in prost shows up.
#[test]
fn empty_payload_is_an_empty_message() {
    let server = EchoServiceServer::new(Echo::default());
    let response = server
        .call_method(0, &mut Controller::new(), &IOBuf::new())
        .unwrap();
    let response: EchoResponse = codec::decode_response(&response).unwrap();
    assert_eq!(response.message, "");
}

#[test]
fn unknown_method_is_enomethod() {
    let server = EchoServiceServer::new(Echo::default());
    let request = codec::encode(&EchoRequest::default());
    for method in [1, usize::MAX] {
        let err = server
            .call_method(method, &mut Controller::new(), &request)
            .unwrap_err();
        assert_eq!(err.code, errno::ENOMETHOD);
    }
    assert_eq!(server.get_ref().calls.load(Ordering::Relaxed), 0);
}

#[test]
fn client_stub_calls_the_sync_server_in_every_form() {
    let imp = Arc::new(Echo::default());
    let mut server = fibrpc::Server::new(Default::default());
    server
        .add_service(EchoServiceServer::from_arc(imp.clone()))
        .unwrap();
    server.start("127.0.0.1:0").unwrap();
    let channel = fibrpc::Channel::new(server.listen_addr().unwrap(), Default::default()).unwrap();
    let client = EchoServiceClient::new(channel).clone();
    let _: &fibrpc::Channel = client.channel();
    let request = |message: &str| EchoRequest {
        message: message.into(),
    };

    // Waiting.
    let mut cntl = Controller::new();
    let response = client.echo(&mut cntl, &request("sync")).unwrap();
    assert_eq!(response.message, "sync");
    assert!(!cntl.failed());

    // Callback.
    let (tx, rx) = std::sync::mpsc::channel();
    client.echo_async(
        Controller::new(),
        &request("callback"),
        move |cntl, result| {
            tx.send((cntl.failed(), result)).unwrap();
        },
    );
    let (failed, result) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(!failed);
    assert_eq!(result.unwrap().message, "callback");

    // Future, driven by `block_on`.
    let (cntl, result) =
        fibrpc::fiber::block_on(client.echo_future(Controller::new(), &request("future")));
    assert!(!cntl.failed());
    assert_eq!(result.unwrap().message, "future");

    // A failing handler fails the future's controller too.
    let (cntl, result) =
        fibrpc::fiber::block_on(client.echo_future(Controller::new(), &request("fail")));
    let err = result.unwrap_err();
    assert_eq!(err.code, errno::EINTERNAL);
    assert_eq!(err.text, "asked to fail");
    assert_eq!(cntl.error_code(), errno::EINTERNAL);

    assert_eq!(imp.calls.load(Ordering::Relaxed), 4);
}

/// fibrpc-build's `tests/protos/greeter.proto`, built by `build.rs`.
/// Private here, so the parts no test uses would warn.
#[allow(dead_code)]
mod greeter {
    include!(concat!(env!("OUT_DIR"), "/codegen_test/test.greeter.rs"));
}

/// Says hello, goodbye, or matches (echoes) the name.
struct Greeter;

impl greeter::Greeter for Greeter {
    fn say_hello(
        &self,
        _: &mut Controller,
        request: greeter::HelloRequest,
    ) -> Result<greeter::HelloReply, RpcError> {
        Ok(greeter::HelloReply {
            text: format!("hello {}", request.name),
        })
    }

    fn say_goodbye(
        &self,
        _: &mut Controller,
        request: greeter::HelloRequest,
    ) -> Result<greeter::HelloReply, RpcError> {
        Ok(greeter::HelloReply {
            text: format!("goodbye {}", request.name),
        })
    }

    fn r#match(
        &self,
        _: &mut Controller,
        request: greeter::HelloRequest,
    ) -> Result<greeter::HelloReply, RpcError> {
        Ok(greeter::HelloReply { text: request.name })
    }
}

#[test]
fn multi_method_service_dispatches_by_index() {
    let server = greeter::GreeterServer::new(Greeter);
    assert_eq!(server.service_name(), "test.greeter.Greeter");
    assert_eq!(server.method_names(), &["SayHello", "SayGoodbye", "Match"]);
    let request = codec::encode(&greeter::HelloRequest { name: "bob".into() });
    let want = ["hello bob", "goodbye bob", "bob"];
    for (method, want) in want.iter().enumerate() {
        let response = server
            .call_method(method, &mut Controller::new(), &request)
            .unwrap();
        let response: greeter::HelloReply = codec::decode_response(&response).unwrap();
        assert_eq!(response.text, *want);
    }
    let err = server
        .call_method(3, &mut Controller::new(), &request)
        .unwrap_err();
    assert_eq!(err.code, errno::ENOMETHOD);
}

/// Compile check only (the keyword-named method in every form; the
/// deferred tests call them).
#[allow(dead_code)]
fn greeter_stub_type_checks(client: &greeter::GreeterClient) {
    let request = greeter::HelloRequest::default();
    let _: Result<greeter::HelloReply, RpcError> = client.r#match(&mut Controller::new(), &request);
    client.match_async(Controller::new(), &request, |_, _| {});
    drop(client.match_future(Controller::new(), &request));
    let _: Result<greeter::HelloReply, RpcError> =
        client.say_goodbye(&mut Controller::new(), &request);
}
