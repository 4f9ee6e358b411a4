//! When a fiber cannot start (no stack could be mapped: injected here
//! with `fibrpc::fiber::fault`), the work it carried fails loudly: the
//! connection whose reader could not start closes, an asynchronous call
//! still hears its outcome, and everything else keeps working. Its own
//! binary: the injection is process-wide, so its tests run one at a time.

mod rpc_common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::{mpsc, Mutex, MutexGuard};
use std::time::Duration;

use fibrpc::fiber::fault;
use fibrpc::{ChannelOptions, Controller, ServerOptions};
use rpc_common::*;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn turn() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn start_failures() -> u64 {
    fibrpc::fiber::stats().total().start_failures
}

#[test]
fn a_connection_whose_reader_cannot_start_closes() {
    let _t = turn();
    let (server, _) = start_server(ServerOptions::default());
    let addr = server.listen_addr().unwrap();
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(wait_for_connections(&server, 1), 1);
    let before = start_failures();
    // The next fiber to start is the reader this request's arrival spawns.
    fault::fail_next_stacks(1);
    c.write_all(&echo_frame(1, &req("x"))).unwrap();
    let mut buf = [0u8; 256];
    match c.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("the connection should close, got {other:?}"),
    }
    assert_eq!(fault::pending_stack_failures(), 0);
    assert!(start_failures() > before, "the failure is counted");
    assert_eq!(
        wait_for_connections(&server, 0),
        0,
        "the connection is gone"
    );
    // Others are served as before.
    let ch = fibrpc::Channel::new(addr, ChannelOptions::default()).unwrap();
    echo(&ch, &mut Controller::new(), &req("after")).unwrap();
}

#[test]
fn an_asynchronous_call_whose_fibers_cannot_start_still_completes() {
    let _t = turn();
    let (server, _) = start_server(ServerOptions::default());
    let ch = fibrpc::Channel::new(
        server.listen_addr().unwrap(),
        ChannelOptions {
            timeout: Some(Duration::from_secs(2)),
            max_retry: 0,
            ..ChannelOptions::default()
        },
    )
    .unwrap();
    echo(&ch, &mut Controller::new(), &req("warm")).unwrap();
    // Whichever fibers the call needs (its reader, its callback's), the
    // first few cannot start: the callback must run all the same.
    for n in 1..=3 {
        fault::fail_next_stacks(n);
        let (tx, rx) = mpsc::channel();
        ch.call_async::<EchoRequest, EchoResponse>(
            SERVICE,
            "Echo",
            Controller::new(),
            &req("async"),
            move |_, r| {
                let _ = tx.send(r.map(|r| r.message));
            },
        );
        let got = rx.recv_timeout(Duration::from_secs(10));
        assert!(
            got.is_ok(),
            "the callback never ran ({n} failures injected)"
        );
        // Use up what the call did not, before the next round.
        let mut spins = 0;
        while fault::pending_stack_failures() > 0 && spins < 100 {
            let _ = echo(&ch, &mut Controller::new(), &req("drain"));
            spins += 1;
        }
    }
    echo(&ch, &mut Controller::new(), &req("after")).unwrap();
}
