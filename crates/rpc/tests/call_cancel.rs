//! Cancelling calls in flight (bRPC's `StartCancel`), and a
//! `ParallelChannel` cancelling the sub-calls it no longer needs once
//! `fail_limit` or `success_limit` decided the call: the cancelled
//! sub-calls end with `ECANCELED` at once, are not retried, and the late
//! responses their servers still send are dropped — the connection serves
//! the next calls with their own responses. Echo servers on 127.0.0.1.

mod rpc_common;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use fibrpc::channel::combo::{map_request, ParallelChannel, ParallelChannelOptions, SubCall};
use fibrpc::channel::RawDone;
use fibrpc::{
    errno, Channel, ChannelOptions, ConnectionType, Controller, IOBuf, RpcChannel, RpcError,
    Server, ServerOptions,
};

use rpc_common::{req, Echo, EchoRequest, EchoResponse, SERVICE};

/// How long the slow handlers sleep: far longer than a cancel takes.
const SLOW_MS: u32 = 600;
/// Bound of every wait for an outcome.
const WAIT: Duration = Duration::from_secs(10);

fn server() -> (Server, Arc<AtomicUsize>, SocketAddr) {
    let echo = Echo::default();
    let calls = echo.calls.clone();
    let mut server = Server::new(ServerOptions::default());
    server.add_service(echo).unwrap();
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();
    (server, calls, addr)
}

fn channel(addr: SocketAddr, kind: ConnectionType) -> Arc<Channel> {
    let options = ChannelOptions {
        timeout: Some(Duration::from_secs(5)),
        connection_type: kind,
        max_retry: 3,
        ..ChannelOptions::default()
    };
    Arc::new(Channel::new(addr, options).unwrap())
}

fn slow(msg: &str) -> EchoRequest {
    EchoRequest {
        sleep_ms: Some(SLOW_MS),
        ..req(msg)
    }
}

/// A sub-channel that reports how each of its calls ended (the error
/// code its callback saw) when it ends.
struct Observed {
    inner: Arc<dyn RpcChannel>,
    ended: Mutex<mpsc::Sender<i32>>,
}

impl Observed {
    fn wrap(inner: Arc<dyn RpcChannel>) -> (Arc<dyn RpcChannel>, mpsc::Receiver<i32>) {
        let (tx, rx) = mpsc::channel();
        let ended = Mutex::new(tx);
        (Arc::new(Observed { inner, ended }), rx)
    }
}

impl RpcChannel for Observed {
    fn call_raw(
        &self,
        service: &str,
        method: &str,
        cntl: &mut Controller,
        request: IOBuf,
    ) -> Result<IOBuf, RpcError> {
        let r = self.inner.call_raw(service, method, cntl, request);
        let _ = self.ended.lock().unwrap().send(cntl.error_code());
        r
    }

    fn call_raw_async(
        &self,
        service: &str,
        method: &str,
        cntl: Controller,
        request: IOBuf,
        done: RawDone,
    ) {
        let tx = self.ended.lock().unwrap().clone();
        let done: RawDone = Box::new(move |c, r| {
            let _ = tx.send(c.error_code());
            done(c, r)
        });
        self.inner
            .call_raw_async(service, method, cntl, request, done)
    }
}

/// The next calls on `ch` get their own responses: one while the
/// cancelled call's handler still runs, one after its late response came.
fn serves_own_responses(ch: &Channel, tag: &str) {
    for round in 0..2 {
        let msg = format!("{tag}-after-cancel-{round}");
        let mut cntl = Controller::new();
        let resp: EchoResponse = ch
            .call(SERVICE, "Echo", &mut cntl, &req(&msg))
            .unwrap_or_else(|e| panic!("{tag}: {e}"));
        assert_eq!(
            resp.message, msg,
            "{tag}: a late response answered this call"
        );
        if round == 0 {
            std::thread::sleep(Duration::from_millis(u64::from(SLOW_MS) + 200));
        }
    }
}

#[test]
fn success_limit_cancels_the_sub_calls_still_running() {
    for kind in [ConnectionType::Single, ConnectionType::Pooled] {
        let (_fast_server, _, fast_addr) = server();
        let (_slow_server, slow_calls, slow_addr) = server();
        let slow_channel = channel(slow_addr, kind);
        let (observed, ended) = Observed::wrap(slow_channel.clone());
        let mut p = ParallelChannel::new(ParallelChannelOptions {
            timeout: Some(Duration::from_secs(5)),
            success_limit: Some(1),
            ..ParallelChannelOptions::default()
        });
        let mapper = Arc::new(map_request(|i, _n, r: &EchoRequest| {
            // Sub-channel 1 is the slow one.
            let sub = if i == 1 { slow(&r.message) } else { r.clone() };
            SubCall::message(&sub)
        }));
        p.add_channel(channel(fast_addr, kind), Some(mapper.clone()), None);
        p.add_channel(observed, Some(mapper), None);
        let mut cntl = Controller::new();
        let resp: EchoResponse = p.call(SERVICE, "Echo", &mut cntl, &req("m")).unwrap();
        assert_eq!(resp.message, "m");
        assert_eq!(cntl.sub(1).unwrap().error_code(), errno::EPCHANFINISH);
        // The slow sub-call was cancelled, not left to finish.
        let code = ended
            .recv_timeout(WAIT)
            .expect("the slow sub-call never ended");
        assert_eq!(code, libc::ECANCELED, "{kind:?}");
        serves_own_responses(&slow_channel, &format!("{kind:?}"));
        // Cancelled, not retried: the slow server ran it at most once
        // (not at all if the fast answer came before it was sent), plus
        // the two calls above.
        let n = slow_calls.load(Ordering::Relaxed);
        assert!((2..=3).contains(&n), "{kind:?}: {n}");
    }
}

#[test]
fn fail_limit_cancels_the_sub_calls_still_running() {
    let (_slow_server, _, slow_addr) = server();
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let slow_channel = channel(slow_addr, ConnectionType::Single);
    let (observed, ended) = Observed::wrap(slow_channel.clone());
    let mut p = ParallelChannel::new(ParallelChannelOptions {
        timeout: Some(Duration::from_secs(5)),
        fail_limit: Some(1),
        ..ParallelChannelOptions::default()
    });
    let mapper = Arc::new(map_request(|_i, _n, r: &EchoRequest| {
        SubCall::message(&slow(&r.message))
    }));
    p.add_channel(observed, Some(mapper.clone()), None);
    p.add_channel(channel(dead, ConnectionType::Single), Some(mapper), None);
    let mut cntl = Controller::new();
    let e = p
        .call::<_, EchoResponse>(SERVICE, "Echo", &mut cntl, &req("m"))
        .unwrap_err();
    assert_eq!(e.code, errno::ETOOMANYFAILS, "{e}");
    let code = ended
        .recv_timeout(WAIT)
        .expect("the slow sub-call never ended");
    assert_eq!(code, libc::ECANCELED);
    serves_own_responses(&slow_channel, "fail_limit");
}

/// Cancels through `canceller` once the server has the request.
fn cancel_when_running(calls: &Arc<AtomicUsize>, canceller: fibrpc::channel::CallCanceller) {
    let calls = calls.clone();
    std::thread::spawn(move || {
        for _ in 0..1000 {
            if calls.load(Ordering::Relaxed) > 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        canceller.cancel();
    });
}

#[test]
fn a_cancelled_call_fails_with_ecanceled_and_is_not_retried() {
    for kind in [ConnectionType::Single, ConnectionType::Pooled] {
        let (_server, calls, addr) = server();
        let ch = channel(addr, kind);
        let mut cntl = Controller::new();
        cancel_when_running(&calls, cntl.canceller());
        let e = ch
            .call::<_, EchoResponse>(SERVICE, "Echo", &mut cntl, &slow("x"))
            .unwrap_err();
        assert_eq!(e.code, libc::ECANCELED, "{kind:?}: {e}");
        assert_eq!(cntl.retried_count(), 0);
        serves_own_responses(&ch, &format!("sync {kind:?}"));
        assert_eq!(calls.load(Ordering::Relaxed), 3);

        // The callback form, cancelled while in flight.
        calls.store(0, Ordering::Relaxed);
        let mut cntl = Controller::new();
        cancel_when_running(&calls, cntl.canceller());
        let (tx, rx) = mpsc::channel();
        ch.call_async(SERVICE, "Echo", cntl, &slow("y"), move |c, r| {
            let _: Result<EchoResponse, _> = r;
            let _ = tx.send(c.error_code());
        });
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), libc::ECANCELED, "{kind:?}");
    }
}

#[test]
fn a_call_cancelled_before_it_starts_sends_nothing() {
    let (_server, calls, addr) = server();
    let ch = channel(addr, ConnectionType::Single);
    let mut cntl = Controller::new();
    cntl.canceller().cancel();
    let e = ch
        .call::<_, EchoResponse>(SERVICE, "Echo", &mut cntl, &req("x"))
        .unwrap_err();
    assert_eq!(e.code, libc::ECANCELED, "{e}");
    assert_eq!(calls.load(Ordering::Relaxed), 0);
}

#[test]
fn cancelling_a_parallel_call_cancels_every_sub_call() {
    let servers: Vec<_> = (0..2).map(|_| server()).collect();
    let mut p = ParallelChannel::new(ParallelChannelOptions {
        timeout: Some(Duration::from_secs(5)),
        ..ParallelChannelOptions::default()
    });
    let mut ended = Vec::new();
    for (_, _, addr) in &servers {
        let (observed, rx) = Observed::wrap(channel(*addr, ConnectionType::Single));
        p.add_channel(observed, None, None);
        ended.push(rx);
    }
    let mut cntl = Controller::new();
    cancel_when_running(&servers[1].1, cntl.canceller());
    let e = p
        .call::<_, EchoResponse>(SERVICE, "Echo", &mut cntl, &slow("m"))
        .unwrap_err();
    assert_eq!(e.code, libc::ECANCELED, "{e}");
    for rx in &ended {
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), libc::ECANCELED);
    }
}
