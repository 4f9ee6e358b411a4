//! fibrpc in one process: an `example.EchoService` server and a client
//! calling it synchronously (from a thread and from fibers), with an
//! attachment and compression, asynchronously, and with a failing call;
//! then a graceful stop.
//!
//! ```text
//! cargo run --release -p fibrpc --example echo_demo
//! ```

#[path = "common/logging.rs"]
mod logging;

use std::sync::mpsc;
use std::time::Duration;

use fibrpc::{
    errno, Channel, ChannelOptions, CompressType, Controller, RpcError, Server, ServerOptions,
};
use fibrpc_example::{
    EchoRequest, EchoResponse, EchoService, EchoServiceClient, EchoServiceServer,
};

struct Echo;

impl EchoService for Echo {
    fn echo(&self, cntl: &mut Controller, req: EchoRequest) -> Result<EchoResponse, RpcError> {
        if req.message == "please fail" {
            // A handler error reaches the caller with its code and text.
            return Err(RpcError::new(errno::EINTERNAL, "failing on request"));
        }
        // Handlers are plain blocking code running in fibers.
        fibrpc::fiber::sleep(Duration::from_millis(1)).unwrap();
        let att = cntl.request_attachment().clone();
        *cntl.response_attachment_mut() = att;
        Ok(EchoResponse {
            message: req.message,
        })
    }
}

fn main() -> Result<(), RpcError> {
    logging::init();
    let mut server = Server::new(ServerOptions::default());
    server.add_service(EchoServiceServer::new(Echo))?;
    server.start("127.0.0.1:0")?;
    let addr = server.listen_addr().expect("started");
    println!("server listening on {addr}");

    let client = EchoServiceClient::new(Channel::new(addr, ChannelOptions::default())?);

    // 1. A synchronous call from this (plain) thread, with an attachment
    //    and a compressed payload.
    let mut cntl = Controller::new();
    cntl.request_attachment_mut().append(b"attached bytes");
    cntl.set_compress_type(CompressType::Snappy);
    let resp = client.echo(
        &mut cntl,
        &EchoRequest {
            message: "hello".into(),
        },
    )?;
    println!(
        "sync:  {:?} attachment={:?} latency={:?}",
        resp.message,
        String::from_utf8_lossy(&cntl.response_attachment().to_vec()),
        cntl.latency()
    );

    // 2. 100 concurrent calls from fibers, multiplexed on one connection.
    let handles: Vec<_> = (0..100)
        .map(|i| {
            let client = client.clone();
            fibrpc::fiber::spawn(move || {
                let mut cntl = Controller::new();
                client.echo(
                    &mut cntl,
                    &EchoRequest {
                        message: format!("fiber {i}"),
                    },
                )
            })
        })
        .collect();
    let ok = handles
        .into_iter()
        .map(|h| h.join().expect("no panic"))
        .filter(|r| r.is_ok())
        .count();
    println!("fibers: {ok}/100 concurrent calls succeeded");

    // 3. An asynchronous call: the callback runs in a fiber.
    let (tx, rx) = mpsc::channel();
    client.echo_async(
        Controller::new(),
        &EchoRequest {
            message: "async".into(),
        },
        move |cntl, r| {
            let _ = tx.send((cntl.latency(), r));
        },
    );
    let (latency, r) = rx.recv().expect("callback ran");
    println!("async: {:?} latency={latency:?}", r.map(|r| r.message));

    // 4. A failing call: code and text come back.
    let mut cntl = Controller::new();
    let e = client
        .echo(
            &mut cntl,
            &EchoRequest {
                message: "please fail".into(),
            },
        )
        .unwrap_err();
    println!("error: {e}");

    // 5. Graceful stop: whatever is in flight is answered first.
    server.stop();
    server.join();
    let s = server
        .method_stats("example.EchoService", "Echo")
        .expect("registered");
    println!("served {} calls ({} errors)", s.calls, s.errors);
    Ok(())
}
