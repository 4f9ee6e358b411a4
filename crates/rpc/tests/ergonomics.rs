//! The short ways in: `fibrpc::connect` / `Channel::connect` and the
//! generated client's form without a controller
//! (`EchoServiceClient::echo_simple`).

mod rpc_common;

use fibrpc::{Channel, Controller, RpcError, Server, ServerOptions};
use fibrpc_example::{
    EchoRequest, EchoResponse, EchoService, EchoServiceClient, EchoServiceServer,
};

struct Echo;

impl EchoService for Echo {
    fn echo(&self, _: &mut Controller, request: EchoRequest) -> Result<EchoResponse, RpcError> {
        if request.message == "fail" {
            return Err(RpcError::new(3001, "asked to fail"));
        }
        Ok(EchoResponse {
            message: request.message,
        })
    }
}

fn start() -> Server {
    let mut server = Server::new(ServerOptions::default());
    server.add_service(EchoServiceServer::new(Echo)).unwrap();
    server.start("127.0.0.1:0").unwrap();
    server
}

fn request(message: &str) -> EchoRequest {
    EchoRequest {
        message: message.into(),
    }
}

#[test]
fn connect_then_call_without_a_controller() {
    let server = start();
    let client = EchoServiceClient::new(fibrpc::connect(server.listen_addr().unwrap()).unwrap());
    // Connected before the first call (the server lists the connection
    // once its acceptor took it, which may be just after `connect`).
    assert_eq!(rpc_common::wait_for_connections(&server, 1), 1);
    let response = client.echo_simple(&request("hi")).unwrap();
    assert_eq!(response.message, "hi");
    let e = client.echo_simple(&request("fail")).unwrap_err();
    assert_eq!((e.code, e.text.as_str()), (3001, "asked to fail"));
    // The other forms are unchanged.
    let mut cntl = Controller::new();
    assert_eq!(client.echo(&mut cntl, &request("x")).unwrap().message, "x");
    let (_, r) = fibrpc::fiber::block_on(client.echo_future(Controller::new(), &request("y")));
    assert_eq!(r.unwrap().message, "y");
    assert_eq!(
        server.connection_count(),
        1,
        "one connection for every call"
    );
}

#[test]
fn connect_reports_an_unreachable_server_at_once() {
    // A port nobody listens on: bound, then closed.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let e = Channel::connect(addr).unwrap_err();
    assert_eq!(e.code, libc::ECONNREFUSED, "{e}");
    // Channel::new stays lazy.
    let ch = Channel::new(addr, Default::default()).unwrap();
    let client = EchoServiceClient::new(ch);
    let e = client.echo_simple(&request("x")).unwrap_err();
    assert_eq!(e.code, libc::ECONNREFUSED, "{e}");
    assert!(e.text.contains("earlier attempts"), "{e}");
}
