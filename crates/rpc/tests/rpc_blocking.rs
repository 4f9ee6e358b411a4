//! A handler that blocks its worker's OS thread must not hold up other
//! responses. Its own test binary (so its own process): a test running
//! next to it could occupy the other worker with a long computation, and
//! with both workers busy nothing can run, whatever the scheduler does.

mod rpc_common;

use std::time::Duration;

use fibrpc::{IOBuf, ServerOptions};
use rpc_common::*;

/// Two requests arrive in one read: a handler that blocks its worker's OS
/// thread, then a quick one. The quick response is queued behind the
/// blocked fiber on that worker (responses of a batch are written
/// together); another worker must still write it long before the blocked
/// thread comes back.
#[test]
fn a_response_is_not_held_by_a_handler_blocking_its_thread() {
    use fibrpc::protocol::baidu_std::{self, ParseResult, RpcMeta, RpcRequestMeta};
    use std::io::{Read, Write};
    use std::time::Instant;

    let (server, _) = start_server(ServerOptions::default());
    let frame = |corr: i64, r: &EchoRequest| {
        let meta = RpcMeta {
            request: Some(RpcRequestMeta {
                service_name: SERVICE.into(),
                method_name: "Echo".into(),
                ..Default::default()
            }),
            correlation_id: Some(corr),
            ..Default::default()
        };
        let mut out = IOBuf::new();
        baidu_std::encode(&meta, &fibrpc::codec::encode(r), &IOBuf::new(), &mut out).unwrap();
        out.to_vec()
    };
    let mut blocking = req("blocking");
    blocking.block_thread_ms = Some(1500);
    let mut both = frame(1, &blocking);
    both.extend(frame(2, &req("quick")));
    let mut s = std::net::TcpStream::connect(server.listen_addr().unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let t = Instant::now();
    s.write_all(&both).unwrap();
    let mut buf = IOBuf::new();
    let mut chunk = [0u8; 4096];
    let first = loop {
        if let ParseResult::Complete(f) = baidu_std::parse(&mut buf, 1 << 20) {
            break f;
        }
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "closed");
        buf.append(&chunk[..n]);
    };
    let took = t.elapsed();
    assert_eq!(
        first.meta.correlation_id(),
        2,
        "the quick one answers first"
    );
    assert!(
        took < Duration::from_millis(1000),
        "the quick response waited {took:?} for the blocked thread"
    );
}
