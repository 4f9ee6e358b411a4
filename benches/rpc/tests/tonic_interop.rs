//! gRPC interop with tonic, unary: fibrpc's `GrpcChannel` calling a
//! tonic server, and a tonic client calling fibrpc's server. Here rather
//! than in the fibrpc crate, which then needs no tonic to build its
//! tests.

use std::net::SocketAddr;
use std::time::Duration;

use fibrpc::{errno, ChannelOptions, Controller, GrpcChannel, Server, ServerOptions};
use fibrpc_bench_rpc::pb;
use tonic::{Code, Request, Response, Status};

/// A tonic echo service: `fail:CODE:TEXT` answers status CODE, `big:N`
/// N bytes, anything else is echoed.
struct TonicEcho;

#[tonic::async_trait]
impl pb::echo_service_server::EchoService for TonicEcho {
    async fn echo(
        &self,
        request: Request<pb::EchoRequest>,
    ) -> Result<Response<pb::EchoResponse>, Status> {
        let m = request.into_inner().message;
        if let Some(rest) = m.strip_prefix("fail:") {
            let (code, text) = rest.split_once(':').unwrap_or((rest, ""));
            return Err(Status::new(Code::from_i32(code.parse().unwrap()), text));
        }
        Ok(Response::new(pb::EchoResponse { message: m }))
    }

    /// The throughput benchmark's method (every chunk echoed back).
    type BidiThroughputStream = tonic::Streaming<pb::ThroughputChunk>;

    async fn bidi_throughput(
        &self,
        request: Request<tonic::Streaming<pb::ThroughputChunk>>,
    ) -> Result<Response<Self::BidiThroughputStream>, Status> {
        Ok(Response::new(request.into_inner()))
    }
}

/// A tonic server on a free port, on a runtime of its own (a thread).
fn start_tonic() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            tonic::transport::Server::builder()
                .add_service(
                    pb::echo_service_server::EchoServiceServer::new(TonicEcho)
                        .max_decoding_message_size(64 << 20)
                        .max_encoding_message_size(64 << 20),
                )
                .serve_with_incoming(incoming)
                .await
                .unwrap();
        });
    });
    rx.recv_timeout(Duration::from_secs(30)).unwrap()
}

#[test]
fn fibrpc_client_calls_a_tonic_server() {
    let addr = start_tonic();
    let ch = GrpcChannel::new(
        addr,
        ChannelOptions {
            timeout: Some(Duration::from_secs(30)),
            ..Default::default()
        },
    )
    .unwrap();
    let client = fibrpc_example::EchoServiceClient::new(ch);
    let call = |m: &str| {
        client.echo_simple(&fibrpc_example::EchoRequest {
            message: m.to_string(),
        })
    };
    assert_eq!(call("hello tonic").unwrap().message, "hello tonic");
    let big = "y".repeat(16 << 20);
    assert!(call(&big).unwrap().message == big);
    let e = call("fail:8:busy").unwrap_err();
    assert_eq!(e.code, errno::ELIMIT, "{e}");
    assert!(e.text.contains("busy"), "{e}");
    let e = call("fail:12:nope").unwrap_err();
    assert_eq!(e.code, errno::ENOMETHOD, "{e}");
    // Many at once on the one connection.
    let (tx, rx) = std::sync::mpsc::channel();
    for i in 0..200 {
        let tx = tx.clone();
        client.echo_async(
            Controller::new(),
            &fibrpc_example::EchoRequest {
                message: format!("#{i}"),
            },
            move |_, r| {
                let _ = tx.send(r.map(|r| r.message == format!("#{i}")));
            },
        );
    }
    for _ in 0..200 {
        let r = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(r, Ok(true));
    }
}

/// fibrpc's echo service: echoes, or fails with `fail:CODE`.
struct FibrpcEcho;

impl fibrpc_example::EchoService for FibrpcEcho {
    fn echo(
        &self,
        _cntl: &mut Controller,
        req: fibrpc_example::EchoRequest,
    ) -> Result<fibrpc_example::EchoResponse, fibrpc::RpcError> {
        if let Some(code) = req.message.strip_prefix("fail:") {
            return Err(fibrpc::RpcError::new(
                code.parse().unwrap(),
                "asked to fail",
            ));
        }
        Ok(fibrpc_example::EchoResponse {
            message: req.message,
        })
    }
}

#[test]
fn tonic_client_calls_a_fibrpc_server() {
    let mut server = Server::new(ServerOptions::default());
    server
        .add_service(fibrpc_example::EchoServiceServer::new(FibrpcEcho))
        .unwrap();
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .timeout(Duration::from_secs(30))
            .connect()
            .await
            .unwrap();
        let mut client = pb::echo_service_client::EchoServiceClient::new(channel)
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20);
        let r = client
            .echo(pb::EchoRequest {
                message: "hello fibrpc".into(),
            })
            .await
            .unwrap();
        assert_eq!(r.into_inner().message, "hello fibrpc");
        let big = "z".repeat(16 << 20);
        let r = client
            .echo(pb::EchoRequest {
                message: big.clone(),
            })
            .await
            .unwrap();
        assert!(r.into_inner().message == big);
        // bRPC's ErrorCodeToGrpcStatus: ELIMIT is RESOURCE_EXHAUSTED.
        let s = client
            .echo(pb::EchoRequest {
                message: format!("fail:{}", errno::ELIMIT),
            })
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert_eq!(s.message(), "[E2004]asked to fail");
    });
}
