//! gRPC interop with tonic, unary and streaming: fibrpc's `GrpcChannel`
//! calling a tonic server, and a tonic client calling fibrpc's server.
//! Here rather than in the fibrpc crate, which then needs no tonic to
//! build its tests.

use std::net::SocketAddr;
use std::time::Duration;

use fibrpc::protocol::grpc::{BidiStream, ClientStreamReader, ServerStreamWriter};
use fibrpc::{errno, ChannelOptions, Controller, GrpcChannel, RpcError, Server, ServerOptions};
use fibrpc_bench_rpc::pb;
use fibrpc_bench_rpc::stream_echo::TonicStreamEcho;
use fibrpc_example::{StreamEchoServiceClient, StreamRequest, StreamResponse};
use tonic::codegen::tokio_stream::{self, StreamExt};
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
                .add_service(
                    pb::stream_echo_service_server::StreamEchoServiceServer::new(TonicStreamEcho)
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

fn stream_req(message: &str, size: u32) -> StreamRequest {
    StreamRequest {
        message: message.to_string(),
        count: 0,
        size,
    }
}

#[test]
fn fibrpc_client_streams_with_a_tonic_server() {
    let addr = start_tonic();
    let ch = GrpcChannel::new(
        addr,
        ChannelOptions {
            timeout: Some(Duration::from_secs(60)),
            ..Default::default()
        },
    )
    .unwrap();
    let client = StreamEchoServiceClient::new(ch);
    // Bidirectional, in lockstep: many messages, in order.
    let call = client.chat(&mut Controller::new()).unwrap();
    for i in 0..10_000u32 {
        call.send(&stream_req(&format!("m{i}"), 0)).unwrap();
        let r = call.recv().unwrap().unwrap();
        assert_eq!((r.index, r.message), (i, format!("m{i}")));
    }
    call.close_send().unwrap();
    assert!(call.recv().unwrap().is_none());
    // 16 MiB each way on one stream.
    let call = client.chat(&mut Controller::new()).unwrap();
    let big = "b".repeat(16 << 20);
    call.send(&stream_req(&big, 16 << 20)).unwrap();
    let r = call.recv().unwrap().unwrap();
    assert_eq!((r.message.len(), r.padding.len()), (16 << 20, 16 << 20));
    call.close_send().unwrap();
    assert!(call.recv().unwrap().is_none());
    // Server and client streaming.
    let mut cntl = Controller::new();
    let got: Vec<u32> = client
        .expand(
            &mut cntl,
            &StreamRequest {
                message: "x".into(),
                count: 3,
                size: 0,
            },
        )
        .unwrap()
        .map(|r| r.unwrap().index)
        .collect();
    assert_eq!(got, vec![0, 1, 2]);
    let call = client.collect(&mut Controller::new()).unwrap();
    call.send(&stream_req("ab", 0)).unwrap();
    call.send(&stream_req("cde", 0)).unwrap();
    assert_eq!(call.finish().unwrap().message, "n 2 bytes 5");
}

/// Thousands of small messages sent ahead of their answers on one
/// stream. h2 servers count the DATA frames they hold unread and end a
/// connection that sends too many small ones ("too_many_data_frames",
/// `ENHANCE_YOUR_CALM`): the client must coalesce queued messages into
/// frames as tonic's does, not send a frame per message.
#[test]
fn fibrpc_client_sends_small_messages_ahead_to_a_tonic_server() {
    const N: u32 = 40_000;
    let addr = start_tonic();
    let ch = GrpcChannel::new(
        addr,
        ChannelOptions {
            timeout: Some(Duration::from_secs(60)),
            ..Default::default()
        },
    )
    .unwrap();
    let client = StreamEchoServiceClient::new(ch);
    let call = client.chat(&mut Controller::new()).unwrap();
    for i in 0..N {
        call.send(&stream_req(&format!("m{i}"), 0)).unwrap();
    }
    call.close_send().unwrap();
    for i in 0..N {
        let r = call.recv().unwrap().unwrap();
        assert_eq!((r.index, r.message), (i, format!("m{i}")));
    }
    assert!(call.recv().unwrap().is_none());
}

/// fibrpc's streaming echo: the same answers as `TonicStreamEcho`.
struct FibrpcStreamEcho;

fn fibrpc_response(message: String, index: u32, size: u32) -> StreamResponse {
    StreamResponse {
        message,
        index,
        padding: vec![b'p'; size as usize],
    }
}

impl fibrpc_example::StreamEchoService for FibrpcStreamEcho {
    fn echo(&self, _: &mut Controller, req: StreamRequest) -> Result<StreamResponse, RpcError> {
        Ok(fibrpc_response(req.message, 0, req.size))
    }

    fn expand(
        &self,
        _: &mut Controller,
        req: StreamRequest,
        responses: ServerStreamWriter<StreamResponse>,
    ) -> Result<(), RpcError> {
        for i in 0..req.count {
            responses.send(&fibrpc_response(req.message.clone(), i, req.size))?;
        }
        Ok(())
    }

    fn collect(
        &self,
        _: &mut Controller,
        requests: ClientStreamReader<StreamRequest>,
    ) -> Result<StreamResponse, RpcError> {
        let (mut n, mut bytes) = (0, 0);
        for r in requests {
            n += 1;
            bytes += r?.message.len();
        }
        Ok(fibrpc_response(format!("n {n} bytes {bytes}"), 0, 0))
    }

    fn chat(
        &self,
        _: &mut Controller,
        stream: BidiStream<StreamRequest, StreamResponse>,
    ) -> Result<(), RpcError> {
        let mut i = 0;
        while let Some(r) = stream.recv()? {
            stream.send(&fibrpc_response(r.message, i, r.size))?;
            i += 1;
        }
        Ok(())
    }
}

#[test]
fn tonic_client_streams_with_a_fibrpc_server() {
    let mut server = Server::new(ServerOptions::default());
    server
        .add_service(fibrpc_example::StreamEchoServiceServer::new(
            FibrpcStreamEcho,
        ))
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
            .timeout(Duration::from_secs(60))
            .connect()
            .await
            .unwrap();
        let mut client = pb::stream_echo_service_client::StreamEchoServiceClient::new(channel)
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20);
        let big = "t".repeat(16 << 20);
        let mut requests = vec![pb::StreamRequest {
            message: big,
            count: 0,
            size: 16 << 20,
        }];
        requests.extend((0..10_000u32).map(|i| pb::StreamRequest {
            message: i.to_string(),
            count: 0,
            size: 0,
        }));
        let mut responses = client
            .chat(tokio_stream::iter(requests))
            .await
            .unwrap()
            .into_inner();
        let first = responses.next().await.unwrap().unwrap();
        assert_eq!(
            (first.message.len(), first.padding.len()),
            (16 << 20, 16 << 20)
        );
        for i in 0..10_000u32 {
            let r = responses.next().await.unwrap().unwrap();
            assert_eq!((r.index, r.message), (i + 1, i.to_string()));
        }
        assert!(responses.next().await.is_none());
    });
}
