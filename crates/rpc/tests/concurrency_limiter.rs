//! Per-method concurrency limiters against a real server on 127.0.0.1:
//! a constant `max_concurrency` answers `ELIMIT` to the request one over
//! it while deferred requests hold their slots, and bRPC's `auto`
//! limiter lowers its limit when the method's latency rises; `/status`
//! shows each method's limiter, limit and requests in flight.

mod rpc_common;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use fibrpc::server::{AdaptiveMaxConcurrency, AutoConcurrencyOptions};
use fibrpc::{
    codec, errno, Channel, ChannelOptions, Controller, IOBuf, Responder, RpcError, Server,
    ServerOptions, Service,
};
use rpc_common::{req, wait_until, EchoResponse, SERVICE};

/// Holds every request's responder until the test answers it.
#[derive(Default, Clone)]
struct Held {
    held: Arc<Mutex<Vec<Responder>>>,
}

impl Held {
    fn count(&self) -> usize {
        self.held.lock().unwrap().len()
    }

    fn answer_all(&self) {
        for r in self.held.lock().unwrap().drain(..) {
            r.send(Ok(codec::encode(&EchoResponse {
                message: "late".into(),
            })));
        }
    }
}

impl Service for Held {
    fn service_name(&self) -> &'static str {
        SERVICE
    }
    fn method_names(&self) -> &'static [&'static str] {
        &["Echo", "Other"]
    }
    fn call_method(&self, _: usize, _: &mut Controller, _: &IOBuf) -> Result<IOBuf, RpcError> {
        unreachable!("every method defers")
    }
    fn defers(&self, _: usize) -> bool {
        true
    }
    fn call_method_deferred(&self, _: usize, _: IOBuf, done: Responder) {
        self.held.lock().unwrap().push(done);
    }
}

fn channel(server: &Server) -> Channel {
    let options = ChannelOptions {
        timeout: Some(Duration::from_secs(5)),
        ..ChannelOptions::default()
    };
    Channel::new(server.listen_addr().unwrap(), options).unwrap()
}

/// Starts `n` calls of `method` that the server holds; their outcomes
/// come on the receiver.
fn start_held(ch: &Channel, method: &str, n: usize) -> mpsc::Receiver<Result<IOBuf, RpcError>> {
    let (tx, rx) = mpsc::channel();
    for _ in 0..n {
        let tx = tx.clone();
        ch.call_raw_async(
            SERVICE,
            method,
            Controller::new(),
            codec::encode(&req("h")),
            move |_, r| {
                let _ = tx.send(r);
            },
        );
    }
    rx
}

fn call(ch: &Channel, method: &str) -> Result<IOBuf, RpcError> {
    ch.call_raw(
        SERVICE,
        method,
        &mut Controller::new(),
        codec::encode(&req("x")),
    )
}

#[test]
fn a_constant_limit_answers_elimit_one_over_it() {
    let held = Held::default();
    let mut server = Server::new(ServerOptions::default());
    server.add_service(held.clone()).unwrap();
    server
        .set_max_concurrency_of(
            &format!("{SERVICE}.Echo"),
            AdaptiveMaxConcurrency::Constant(3),
        )
        .unwrap();
    let e = server
        .set_max_concurrency_of("nope.Service.M", AdaptiveMaxConcurrency::Constant(1))
        .unwrap_err();
    assert_eq!(e.code, errno::ENOMETHOD);
    server.start("127.0.0.1:0").unwrap();
    assert_eq!(
        server.max_concurrency_of(&format!("{SERVICE}.Echo")),
        Some(3)
    );
    assert_eq!(
        server.max_concurrency_of(&format!("{SERVICE}.Other")),
        Some(0)
    );
    let ch = channel(&server);

    let rx = start_held(&ch, "Echo", 3);
    assert!(wait_until(Duration::from_secs(5), || held.count() == 3));
    // The fourth is refused at once, before the handler.
    let e = call(&ch, "Echo").unwrap_err();
    assert_eq!(e.code, errno::ELIMIT, "{e}");
    assert!(!e.is_local(), "the server answered it: {e}");
    assert_eq!(held.count(), 3);
    // Another method is not limited by this one's.
    let other = start_held(&ch, "Other", 1);
    assert!(wait_until(Duration::from_secs(5), || held.count() == 4));

    held.answer_all();
    for _ in 0..3 {
        rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    }
    other.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    // The slots are free again.
    let rx = start_held(&ch, "Echo", 3);
    assert!(wait_until(Duration::from_secs(5), || held.count() == 3));
    held.answer_all();
    for _ in 0..3 {
        rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    }
    let stats = server.method_stats(SERVICE, "Echo").unwrap();
    assert_eq!(stats.errors, 1);
    assert_eq!(stats.max_concurrency, 3);
}

#[test]
fn method_max_concurrency_applies_to_every_method() {
    let held = Held::default();
    let mut server = Server::new(ServerOptions {
        method_max_concurrency: "2".parse().unwrap(),
        ..ServerOptions::default()
    });
    server.add_service(held.clone()).unwrap();
    server.start("127.0.0.1:0").unwrap();
    let ch = channel(&server);
    let rx = start_held(&ch, "Echo", 2);
    let rx2 = start_held(&ch, "Other", 2);
    assert!(wait_until(Duration::from_secs(5), || held.count() == 4));
    assert_eq!(code(call(&ch, "Echo")), errno::ELIMIT);
    assert_eq!(code(call(&ch, "Other")), errno::ELIMIT);
    held.answer_all();
    for rx in [rx, rx2] {
        for _ in 0..2 {
            rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
        }
    }
}

fn code<T>(r: Result<T, RpcError>) -> i32 {
    r.err().map_or(0, |e| e.code)
}

/// An echo whose handler sleeps `latency_ms` (changed while it runs).
struct Sleepy {
    latency_ms: Arc<AtomicU32>,
}

impl Service for Sleepy {
    fn service_name(&self) -> &'static str {
        SERVICE
    }
    fn method_names(&self) -> &'static [&'static str] {
        &["Echo"]
    }
    fn call_method(&self, _: usize, _: &mut Controller, _: &IOBuf) -> Result<IOBuf, RpcError> {
        let ms = self.latency_ms.load(Ordering::Relaxed);
        fibrpc::fiber::sleep(Duration::from_millis(ms.into())).unwrap();
        Ok(codec::encode(&EchoResponse {
            message: "ok".into(),
        }))
    }
}

#[test]
fn the_auto_limiter_shrinks_when_latency_rises() {
    let latency_ms = Arc::new(AtomicU32::new(2));
    let mut server = Server::new(ServerOptions::default());
    server
        .add_service(Sleepy {
            latency_ms: latency_ms.clone(),
        })
        .unwrap();
    // bRPC's algorithm with short windows, a faster EMA and no
    // re-measure, so that the test runs in seconds.
    let auto = AutoConcurrencyOptions {
        sample_window_size: Duration::from_millis(200),
        min_sample_count: 20,
        max_sample_count: 100,
        alpha_factor_for_ema: 1.0,
        noload_latency_remeasure_interval: Duration::from_secs(3600),
        ..AutoConcurrencyOptions::default()
    };
    let method = format!("{SERVICE}.Echo");
    server
        .set_max_concurrency_of(&method, AdaptiveMaxConcurrency::Auto(auto))
        .unwrap();
    server.start("127.0.0.1:0").unwrap();
    let ch = channel(&server);

    // 16 callers in a loop, each backing off 1 ms after an ELIMIT.
    let stop = Arc::new(AtomicBool::new(false));
    let rejected = Arc::new(AtomicUsize::new(0));
    let callers: Vec<_> = (0..16)
        .map(|_| {
            let (ch, stop, rejected) = (ch.clone(), stop.clone(), rejected.clone());
            std::thread::spawn(move || {
                let end = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::Relaxed) && Instant::now() < end {
                    match call(&ch, "Echo") {
                        Err(e) if e.code == errno::ELIMIT => {
                            rejected.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        Err(e) => panic!("{e}"),
                        Ok(_) => {}
                    }
                }
            })
        })
        .collect();

    // At 2 ms the limit settles near the callers' 16 (explored above).
    let limit = || server.max_concurrency_of(&method).unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || limit() != 40),
        "the limit never left its initial 40"
    );
    std::thread::sleep(Duration::from_secs(1));
    let before = limit();
    assert!(before >= 4, "{before}");

    // Twenty times slower: the peak qps decays and the limit with it.
    latency_ms.store(40, Ordering::Relaxed);
    let shrunk = wait_until(Duration::from_secs(30), || limit() * 2 < before);
    let after = limit();
    stop.store(true, Ordering::Relaxed);
    for c in callers {
        c.join().unwrap();
    }
    assert!(shrunk, "limit {before} -> {after}");
    assert!(
        rejected.load(Ordering::Relaxed) > 0,
        "the excess was rejected"
    );
}

/// `/status` as text: the rows of the concurrency limits' table, as
/// (method, limiter, max_concurrency, in_flight).
fn status_limits(addr: std::net::SocketAddr) -> Vec<[String; 4]> {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        c,
        "GET /status HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    c.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    let mut lines = raw
        .lines()
        .skip_while(|l| !l.split_whitespace().any(|w| w == "limiter"));
    let header: Vec<&str> = lines
        .next()
        .expect("no limiter table")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["method", "limiter", "max_concurrency", "in_flight"]
    );
    lines
        .take_while(|l| !l.trim().is_empty() && !l.starts_with('['))
        .map(|l| {
            let cells: Vec<String> = l.split_whitespace().map(str::to_string).collect();
            cells.try_into().unwrap_or_else(|c| panic!("bad row {c:?}"))
        })
        .collect()
}

#[test]
fn status_shows_each_methods_limiter_limit_and_in_flight() {
    let held = Held::default();
    let mut server = Server::new(ServerOptions::default());
    server.add_service(held.clone()).unwrap();
    server
        .set_max_concurrency_of(
            &format!("{SERVICE}.Echo"),
            AdaptiveMaxConcurrency::Constant(3),
        )
        .unwrap();
    server
        .set_max_concurrency_of(&format!("{SERVICE}.Other"), AdaptiveMaxConcurrency::auto())
        .unwrap();
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();
    let ch = channel(&server);
    let rx = start_held(&ch, "Echo", 2);
    assert!(wait_until(Duration::from_secs(5), || held.count() == 2));
    let auto_limit = server
        .max_concurrency_of(&format!("{SERVICE}.Other"))
        .unwrap()
        .to_string();
    let row = |m: &str, kind: &str, max: &str, n: &str| [m, kind, max, n].map(str::to_string);
    assert_eq!(
        status_limits(addr),
        [
            row("Echo", "constant", "3", "2"),
            row("Other", "auto", &auto_limit, "0"),
        ]
    );
    held.answer_all();
    for _ in 0..2 {
        rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    }
    assert!(wait_until(Duration::from_secs(5), || {
        status_limits(addr)[0] == row("Echo", "constant", "3", "0")
    }));

    // Without a limiter.
    let mut plain = Server::new(ServerOptions::default());
    plain.add_service(Held::default()).unwrap();
    plain.start("127.0.0.1:0").unwrap();
    assert_eq!(
        status_limits(plain.listen_addr().unwrap())[0],
        row("Echo", "unlimited", "unlimited", "0")
    );
}
