//! Cluster health and recovery over real fibrpc servers on 127.0.0.1:
//! circuit breakers (a replica failing half its calls is tripped,
//! isolated, re-admitted, and isolated longer when it trips again), the
//! recovery policy (`EREJECT` in proportion while a cluster comes back),
//! user health checks deciding re-admission, and the `/cluster` page.

mod rpc_common;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fibrpc::channel::cluster::{
    CircuitBreakerOptions, ClusterSelector, ClusterServer, HealthCheck, ServerState,
};
use fibrpc::http::{HttpChannel, HttpContext, Request, Response, StatusCode};
use fibrpc::{
    codec, errno, Channel, ChannelOptions, Controller, IOBuf, RpcError, Server, ServerOptions,
    Service,
};
use rpc_common::{echo, req, wait_until, EchoRequest, EchoResponse, SERVICE};

/// An echo service that, while `failing`, answers every other call with
/// an error.
#[derive(Default, Clone)]
struct Flaky {
    calls: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
}

impl Service for Flaky {
    fn service_name(&self) -> &'static str {
        SERVICE
    }
    fn method_names(&self) -> &'static [&'static str] {
        &["Echo"]
    }
    fn call_method(
        &self,
        _: usize,
        _: &mut Controller,
        request: &IOBuf,
    ) -> Result<IOBuf, RpcError> {
        let r: EchoRequest = codec::decode_request(request)?;
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        if self.failing.load(Ordering::Relaxed) && n % 2 == 0 {
            return Err(RpcError::new(errno::EINTERNAL, "failing half the calls"));
        }
        Ok(codec::encode(&EchoResponse { message: r.message }))
    }
}

/// A server of `service` on `addr` (port 0: any).
fn serve_on(addr: &str, service: Flaky, ready: Option<Arc<AtomicBool>>) -> (Server, SocketAddr) {
    let mut server = Server::new(ServerOptions::default());
    server.add_service(service).unwrap();
    if let Some(ready) = ready {
        server
            .add_http_handler("/ready", move |_: Request<IOBuf>, _: &HttpContext| {
                if ready.load(Ordering::Relaxed) {
                    fibrpc::http::text(StatusCode::OK, "ready\n")
                } else {
                    fibrpc::http::text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                }
            })
            .unwrap();
    }
    server.start(addr).unwrap();
    let addr = server.listen_addr().unwrap();
    (server, addr)
}

/// `N` distinct addresses nothing listens on (bound together, then
/// closed).
fn dead_addrs<const N: usize>() -> [SocketAddr; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap())
}

fn url(addrs: &[SocketAddr]) -> String {
    let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    format!("list://{}", list.join(","))
}

fn options() -> ChannelOptions {
    ChannelOptions {
        timeout: Some(Duration::from_secs(2)),
        max_retry: 0,
        health_check_interval: Duration::from_millis(100),
        ..ChannelOptions::default()
    }
}

/// A cluster channel and its selector (to read the servers' states).
fn cluster(url: &str, lb: &str, options: ChannelOptions) -> (Channel, Arc<ClusterSelector>) {
    let selector = Arc::new(ClusterSelector::from_url(url, lb, &options).unwrap());
    (Channel::with_selector(selector.clone(), options), selector)
}

fn server_of(sel: &ClusterSelector, addr: SocketAddr) -> ClusterServer {
    sel.servers()
        .into_iter()
        .find(|s| s.node.addr == addr)
        .unwrap()
}

/// One call; its error code (0: success).
fn call(ch: &Channel) -> i32 {
    let mut cntl = Controller::new();
    match echo(ch, &mut cntl, &req("hi")) {
        Ok(_) => 0,
        Err(e) => e.code,
    }
}

fn tripped_remaining(sel: &ClusterSelector, addr: SocketAddr) -> Option<Duration> {
    match server_of(sel, addr).state {
        ServerState::Tripped { remaining } => Some(remaining),
        _ => None,
    }
}

/// Calls until `addr` is tripped (at most 20 000 calls or 20 s); the
/// isolation left when it was first seen.
fn call_until_tripped(ch: &Channel, sel: &ClusterSelector, addr: SocketAddr) -> Duration {
    let t0 = Instant::now();
    for _ in 0..20_000 {
        call(ch);
        if let Some(left) = tripped_remaining(sel, addr) {
            return left;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "never tripped");
    }
    panic!("not tripped after 20 000 calls: {:?}", server_of(sel, addr));
}

#[test]
fn a_replica_failing_half_its_calls_is_tripped_isolated_readmitted_and_isolated_longer() {
    let flaky = Flaky::default();
    flaky.failing.store(true, Ordering::Relaxed);
    let (_s0, bad) = serve_on("127.0.0.1:0", flaky.clone(), None);
    let (_s1, good1) = serve_on("127.0.0.1:0", Flaky::default(), None);
    let (_s2, good2) = serve_on("127.0.0.1:0", Flaky::default(), None);
    let opts = ChannelOptions {
        enable_circuit_breaker: true,
        circuit_breaker: CircuitBreakerOptions {
            min_isolation: Duration::from_millis(600),
            ..CircuitBreakerOptions::default()
        },
        ..options()
    };
    let (ch, sel) = cluster(&url(&[bad, good1, good2]), "rr", opts);

    // First trip: isolated for the minimum isolation.
    let left = call_until_tripped(&ch, &sel, bad);
    let s = server_of(&sel, bad);
    let b = s.breaker.unwrap();
    assert_eq!(b.trips, 1);
    assert_eq!(b.isolation, Duration::from_millis(600));
    assert!(left <= Duration::from_millis(600), "{left:?}");
    assert!(s.errors > 100, "{s:?}");
    for other in [good1, good2] {
        assert_eq!(server_of(&sel, other).state, ServerState::Healthy);
    }

    // The page shows it tripped, and the healthy ones healthy.
    let page = HttpChannel::new(&bad.to_string(), ChannelOptions::default())
        .unwrap()
        .get("/cluster")
        .unwrap();
    let page = String::from_utf8(page.body().to_vec()).unwrap();
    assert!(page.contains(&url(&[bad, good1, good2])), "{page}");
    assert!(page.contains("tripped (breaker;"), "{page}");
    assert!(page.contains("healthy"), "{page}");
    assert!(page.contains("% of 10%"), "{page}");

    // While isolated, it gets no call.
    let before = flaky.calls.load(Ordering::Relaxed);
    let mut during = 0;
    while tripped_remaining(&sel, bad).is_some_and(|l| l > Duration::from_millis(50)) {
        assert_eq!(call(&ch), 0, "the healthy replicas answer");
        during += 1;
        if during >= 2_000 {
            break;
        }
    }
    assert!(during >= 10, "only {during} calls during the isolation");
    assert_eq!(
        flaky.calls.load(Ordering::Relaxed),
        before,
        "calls reached the tripped replica"
    );

    // Re-admitted after the isolation (its health check passes).
    assert!(
        wait_until(Duration::from_secs(5), || server_of(&sel, bad).state
            == ServerState::Healthy),
        "not re-admitted: {:?}",
        server_of(&sel, bad)
    );
    for _ in 0..30 {
        call(&ch);
    }
    assert!(
        flaky.calls.load(Ordering::Relaxed) > before,
        "no call after re-admission"
    );

    // Tripping again soon after: the isolation doubles.
    let left = call_until_tripped(&ch, &sel, bad);
    let b = server_of(&sel, bad).breaker.unwrap();
    assert_eq!(b.trips, 2);
    assert_eq!(b.isolation, Duration::from_millis(1200));
    assert!(left > Duration::from_millis(600), "{left:?}");
}

#[test]
fn without_the_breaker_a_failing_replica_keeps_its_share() {
    let flaky = Flaky::default();
    flaky.failing.store(true, Ordering::Relaxed);
    let (_s0, bad) = serve_on("127.0.0.1:0", flaky.clone(), None);
    let (_s1, good) = serve_on("127.0.0.1:0", Flaky::default(), None);
    let (ch, sel) = cluster(&url(&[bad, good]), "rr", options());
    let failed = (0..2_000).filter(|_| call(&ch) != 0).count();
    assert_eq!(flaky.calls.load(Ordering::Relaxed), 1_000);
    assert_eq!(failed, 500);
    let s = server_of(&sel, bad);
    assert_eq!(s.state, ServerState::Healthy);
    assert_eq!((s.calls, s.errors, s.breaker), (1_000, 500, None));
}

#[test]
fn a_recovering_cluster_rejects_calls_in_proportion_until_the_hold_passes() {
    let [a, b] = dead_addrs();
    let opts = ChannelOptions {
        max_retry: 1,
        ..options()
    };
    let (ch, sel) = cluster(
        &url(&[a, b]),
        "rr:min_working_instances=2 hold_seconds=2",
        opts,
    );
    // Both refused (the first attempt and its retry), then isolated.
    assert_eq!(call(&ch), libc::ECONNREFUSED);
    assert_eq!(call(&ch), libc::EHOSTDOWN);
    assert!(sel.recovering());
    // Nothing usable: every call is rejected.
    assert_eq!(call(&ch), errno::EREJECT);

    let calls = Arc::new(AtomicUsize::new(0));
    let back = Flaky {
        calls: calls.clone(),
        ..Flaky::default()
    };
    let (_server, _) = serve_on(&a.to_string(), back, None);
    assert!(
        wait_until(Duration::from_secs(3), || server_of(&sel, a).state
            == ServerState::Healthy),
        "not re-admitted"
    );
    let back_at = Instant::now();
    // One of min_working_instances=2 usable: about half pass.
    let codes: Vec<i32> = (0..200).map(|_| call(&ch)).collect();
    let rejected = codes.iter().filter(|&&c| c == errno::EREJECT).count();
    let ok = codes.iter().filter(|&&c| c == 0).count();
    assert_eq!(rejected + ok, 200, "{codes:?}");
    assert!((30..170).contains(&rejected), "{rejected} of 200 rejected");
    assert_eq!(calls.load(Ordering::Relaxed), ok);

    // Once the usable count held for hold_seconds, every call passes.
    assert!(
        wait_until(Duration::from_secs(8), || {
            call(&ch);
            !sel.recovering()
        }),
        "still recovering"
    );
    assert!(
        back_at.elapsed() >= Duration::from_secs(2),
        "recovery ended before the hold"
    );
    for _ in 0..50 {
        assert_eq!(call(&ch), 0);
    }
}

/// A cluster of a healthy server and `addr`, where nothing listens yet:
/// the first call isolates `addr`.
fn with_isolated(addr: SocketAddr, check: HealthCheck) -> (Channel, Arc<ClusterSelector>, Server) {
    let (good_server, good) = serve_on("127.0.0.1:0", Flaky::default(), None);
    let opts = ChannelOptions {
        max_retry: 1,
        health_check: check,
        ..options()
    };
    let (ch, sel) = cluster(&url(&[addr, good]), "rr", opts);
    for _ in 0..4 {
        assert_eq!(call(&ch), 0);
    }
    assert_eq!(server_of(&sel, addr).state, ServerState::Isolated);
    (ch, sel, good_server)
}

/// Calls for `ms` milliseconds; asserts each succeeds.
fn calls_for(ch: &Channel, ms: u64) {
    let end = Instant::now() + Duration::from_millis(ms);
    for _ in 0..10_000 {
        if Instant::now() >= end {
            break;
        }
        assert_eq!(call(ch), 0);
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn an_http_health_check_keeps_a_server_that_accepts_connections_isolated_until_ready() {
    let [addr] = dead_addrs();
    let (ch, sel, _good) = with_isolated(addr, HealthCheck::HttpGet("/ready".into()));
    let ready = Arc::new(AtomicBool::new(false));
    let service = Flaky::default();
    let (_server, _) = serve_on(&addr.to_string(), service.clone(), Some(ready.clone()));
    // It accepts connections, but /ready answers 503: ten probe intervals
    // later it is still out.
    calls_for(&ch, 1_000);
    assert_eq!(server_of(&sel, addr).state, ServerState::Isolated);
    assert_eq!(service.calls.load(Ordering::Relaxed), 0);

    ready.store(true, Ordering::Relaxed);
    assert!(
        wait_until(Duration::from_secs(3), || {
            call(&ch);
            service.calls.load(Ordering::Relaxed) > 0
        }),
        "not re-admitted once ready"
    );
    assert_eq!(server_of(&sel, addr).state, ServerState::Healthy);
}

#[test]
fn a_custom_health_check_decides_readmission() {
    let [addr] = dead_addrs();
    let healthy = Arc::new(AtomicBool::new(false));
    let probes = Arc::new(AtomicUsize::new(0));
    let (h, p) = (healthy.clone(), probes.clone());
    let check = HealthCheck::custom(move |a| {
        p.fetch_add(1, Ordering::Relaxed);
        a == addr && h.load(Ordering::Relaxed)
    });
    let (ch, sel, _good) = with_isolated(addr, check);
    let service = Flaky::default();
    let (_server, _) = serve_on(&addr.to_string(), service.clone(), None);
    calls_for(&ch, 600);
    assert!(
        probes.load(Ordering::Relaxed) >= 2,
        "the function was not asked"
    );
    assert_eq!(server_of(&sel, addr).state, ServerState::Isolated);
    assert_eq!(service.calls.load(Ordering::Relaxed), 0);

    healthy.store(true, Ordering::Relaxed);
    assert!(
        wait_until(Duration::from_secs(3), || server_of(&sel, addr).state
            == ServerState::Healthy),
        "not re-admitted"
    );
    assert!(wait_until(Duration::from_secs(2), || {
        call(&ch);
        service.calls.load(Ordering::Relaxed) > 0
    }));
}

#[test]
fn the_cluster_page_lists_every_cluster_with_its_servers() {
    let (_server, live) = serve_on("127.0.0.1:0", Flaky::default(), None);
    let [dead] = dead_addrs();
    let u = url(&[live, dead]);
    let opts = ChannelOptions {
        max_retry: 1,
        enable_circuit_breaker: true,
        ..options()
    };
    let (ch, _sel) = cluster(&u, "rr:min_working_instances=1 hold_seconds=3", opts);
    for _ in 0..4 {
        assert_eq!(call(&ch), 0);
    }
    let http = HttpChannel::new(&live.to_string(), ChannelOptions::default()).unwrap();
    let text = String::from_utf8(http.get("/cluster").unwrap().body().to_vec()).unwrap();
    let section = text.split_once(&format!("[{u}]")).expect(&text).1;
    for want in [
        "load balancer   : rr",
        "circuit breaker : on",
        "min_working_instances=1 hold_seconds=3",
        "short_window_errors",
        &format!("{live}"),
        &format!("{dead}"),
        "isolated (connection failed)",
        "healthy",
    ] {
        assert!(section.contains(want), "no {want:?} in {text}");
    }
    let mut cntl = Controller::new();
    let html = http
        .request(
            &mut cntl,
            Request::get("/cluster")
                .header("Accept", "text/html")
                .body(IOBuf::new())
                .unwrap(),
        )
        .unwrap();
    let html: Response<IOBuf> = html;
    let html = String::from_utf8(html.body().to_vec()).unwrap();
    assert!(html.contains("<th>state</th>"), "{html}");
    assert!(html.contains(&format!("<h2>{u}</h2>")), "{html}");

    // A dropped channel leaves the page.
    drop(ch);
    drop(_sel);
    let text = String::from_utf8(http.get("/cluster").unwrap().body().to_vec()).unwrap();
    assert!(!text.contains(&format!("[{u}]")), "{text}");
}
