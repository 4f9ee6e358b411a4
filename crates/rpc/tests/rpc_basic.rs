//! End-to-end calls over loopback: sync and async, attachments,
//! compression, checksums, concurrency on one connection.

mod rpc_common;

use std::sync::mpsc;
use std::time::Duration;

use fibrpc::{Channel, ChannelOptions, CompressType, Controller, IOBuf, ServerOptions};
use rpc_common::*;

fn channel(server: &fibrpc::Server) -> Channel {
    Channel::new(server.listen_addr().unwrap(), ChannelOptions::default()).unwrap()
}

#[test]
fn sync_call_from_a_thread_and_a_fiber() {
    let (server, _) = start_server(ServerOptions::default());
    let ch = channel(&server);
    let mut cntl = Controller::new();
    let resp = echo(&ch, &mut cntl, &req("hello")).unwrap();
    assert_eq!(resp.message, "hello");
    assert!(!cntl.failed());
    assert_eq!(cntl.remote_side(), server.listen_addr());
    let ch2 = ch.clone();
    let h = fibrpc::fiber::spawn(move || {
        let mut cntl = Controller::new();
        echo(&ch2, &mut cntl, &req("from a fiber")).unwrap().message
    });
    assert_eq!(h.join().unwrap(), "from a fiber");
    let stats = server.method_stats(SERVICE, "Echo").unwrap();
    assert_eq!(stats.calls, 2);
    assert_eq!(stats.errors, 0);
}

#[test]
fn attachments_of_0_1mib_and_32mib_come_back() {
    let (server, _) = start_server(ServerOptions::default());
    let ch = channel(&server);
    for size in [0usize, 1 << 20, 32 << 20] {
        let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        let mut cntl = Controller::new();
        cntl.set_timeout(Duration::from_secs(20));
        *cntl.request_attachment_mut() = IOBuf::from(&data[..]);
        let resp = echo(&ch, &mut cntl, &req("att")).unwrap();
        assert_eq!(resp.message, "att");
        assert_eq!(cntl.response_attachment().len(), size);
        assert!(cntl.response_attachment().equals(&data), "size {size}");
    }
}

#[test]
fn every_compression_type_and_checksums() {
    let (server, _) = start_server(ServerOptions::default());
    let ch = channel(&server);
    let text = "compress me ".repeat(500);
    for ct in CompressType::ALL {
        for checksum in [false, true] {
            let mut cntl = Controller::new();
            cntl.set_compress_type(ct);
            cntl.set_checksum(checksum);
            cntl.request_attachment_mut().append(b"tail");
            let resp = echo(&ch, &mut cntl, &req(&text))
                .unwrap_or_else(|e| panic!("{ct:?} checksum={checksum}: {e}"));
            assert_eq!(resp.message, text);
            assert_eq!(cntl.response_attachment(), &IOBuf::from("tail"));
        }
    }
}

#[test]
fn async_calls_run_their_callbacks() {
    let (server, _) = start_server(ServerOptions::default());
    let ch = channel(&server);
    let (tx, rx) = mpsc::channel();
    for i in 0..10 {
        let tx = tx.clone();
        ch.call_async(
            SERVICE,
            "Echo",
            Controller::new(),
            &req(&format!("async {i}")),
            move |cntl, r: Result<EchoResponse, _>| {
                tx.send((i, cntl.failed(), r.map(|r| r.message))).unwrap();
            },
        );
    }
    let mut got: Vec<_> = (0..10)
        .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
        .collect();
    got.sort_by_key(|g| g.0);
    for (i, failed, r) in got {
        assert!(!failed);
        assert_eq!(r.unwrap(), format!("async {i}"));
    }
}

#[test]
fn a_thousand_concurrent_calls_share_one_connection() {
    let (server, calls) = start_server(ServerOptions::default());
    let ch = channel(&server);
    let handles: Vec<_> = (0..1000)
        .map(|i| {
            let ch = ch.clone();
            fibrpc::fiber::spawn(move || {
                let mut cntl = Controller::new();
                cntl.set_timeout(Duration::from_secs(20));
                let mut r = req(&format!("m{i}"));
                r.sleep_ms = Some(20);
                echo(&ch, &mut cntl, &r).map(|r| r.message)
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.join().unwrap().unwrap(), format!("m{i}"));
    }
    assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 1000);
    assert_eq!(server.connection_count(), 1, "one multiplexed connection");
}
